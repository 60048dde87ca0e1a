#include "common/timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

int64_t
ck_time_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
ck_time_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

int
ck_time_parse(const char *s, int64_t *out)
{
	static const int mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
	char sep, z;
	size_t len = strlen(s);

	memset(&tm, 0, sizeof(tm));
	/* Exactly the digits and separators of the formats: sscanf alone
	 * would also take " 1" and "+1". */
	{
		static const char pat[] = "dddd-dd-dd?dd:dd:ddZ";
		size_t i;
		for (i = 0; i < len && i < sizeof(pat) - 1; i++) {
			if (pat[i] == 'd' && (s[i] < '0' || s[i] > '9'))
				goto bad;
			if (pat[i] == '-' || pat[i] == ':' || pat[i] == 'Z')
				if (s[i] != pat[i])
					goto bad;
		}
	}
	if (len == 10) {
		if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
			goto bad;
	} else if (len == 19 || len == 20) {
		if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep,
		    &h, &mi, &se, &n) != 7 || n != 19 ||
		    (sep != 'T' && sep != ' '))
			goto bad;
		if (len == 20) {
			z = s[19];
			if (z != 'Z')
				goto bad;
		}
	} else
		goto bad;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || se > 59 || h < 0 || mi < 0 || se < 0)
		goto bad;
	/* timegm() would quietly turn April 31 into May 1. */
	if (d > mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) ||
	    y % 400 == 0)))
		goto bad;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = (int64_t)timegm(&tm);
	return 0;
bad:
	return ck_err_set(CK_E_PARSE,
	    "bad date '%s': use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", s);
}

void
ck_time_format(int64_t t, char *buf, size_t bufsz)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (bufsz > 0)
			buf[0] = '\0';
	}
}
