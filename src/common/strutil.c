#include "common/strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int
ck_strlist_add(struct ck_strlist *l, const char *s)
{
	char **nv, *c;

	if ((c = strdup(s)) == NULL)
		return CK_E_NOMEM;
	if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL) {
		free(c);
		return CK_E_NOMEM;
	}
	l->v = nv;
	l->v[l->n++] = c;
	return 0;
}

int
ck_strlist_split(struct ck_strlist *l, const char *s)
{
	const char *p = s, *start;
	char item[1024];
	size_t len;
	int r;

	while (*p != '\0') {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
			p++;
		len = (size_t)(p - start);
		if (len >= sizeof(item))
			return ck_err_set(CK_E_TOOBIG, "list item too long");
		memcpy(item, start, len);
		item[len] = '\0';
		if ((r = ck_strlist_add(l, item)) != 0)
			return r;
	}
	return 0;
}

int
ck_strlist_has(const struct ck_strlist *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

void
ck_strlist_clear(struct ck_strlist *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
ck_hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
ck_hex_decode(const char *s, size_t len, unsigned char *out, size_t n)
{
	size_t i;
	int hi, lo;

	if (len != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		if ((hi = hex_digit((unsigned char)s[2 * i])) < 0 ||
		    (lo = hex_digit((unsigned char)s[2 * i + 1])) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int
ck_parse_u64(const char *s, uint64_t min, uint64_t max, const char *what,
    uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s == '\0' || !isdigit((unsigned char)*s))
		return ck_err_set(CK_E_PARSE, "%s: '%s' is not a number", what,
		    s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return ck_err_set(CK_E_PARSE, "%s: '%s' is not a number", what,
		    s);
	if (v < min || v > max)
		return ck_err_set(CK_E_PARSE,
		    "%s: %llu is out of range (%llu to %llu)", what, v,
		    (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int
ck_parse_zstd_level(const char *s, const char *what, int *out)
{
	uint64_t v;
	int neg = s != NULL && s[0] == '-';

	if (ck_parse_u64(neg ? s + 1 : s, 1, neg ?
	    (uint64_t)-CK_ZSTD_LEVEL_MIN : CK_ZSTD_LEVEL_MAX, what, &v) != 0)
		return ck_err_set(CK_E_PARSE, "%s: '%s' is not a zstd level "
		    "(%d to -1, or 1 to %d)", what, s ? s : "",
		    CK_ZSTD_LEVEL_MIN, CK_ZSTD_LEVEL_MAX);
	*out = neg ? -(int)v : (int)v;
	return 0;
}

int
ck_strcpy_bounded(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstsz)
		return ck_err_set(CK_E_TOOBIG, "string too long");
	memcpy(dst, src, n + 1);
	return 0;
}
