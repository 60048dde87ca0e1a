/*
 * auditsyslog.c - a copy of the audit log in syslog (checkpoint.h explains
 * why a copy outside the CA matters): entries are sent once committed,
 * never before, so syslog holds nothing that did not happen; and every
 * committed entry is sent, again if syslog was not there to take it.
 */
#include "audit/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/strutil.h"

#define SYSLOG_FIELD 512	/* longer fields are cut, marked "..." */

/* S without control characters (syslog is line-based), at most
 * SYSLOG_FIELD bytes. */
static void
clean(const char *s, char out[SYSLOG_FIELD + 4])
{
	size_t i, n = 0;

	for (i = 0; s[i] != '\0' && n < SYSLOG_FIELD; i++)
		out[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ?
		    '?' : s[i];
	if (s[i] != '\0') {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static int
collect_one(const struct store_audit_entry *e, void *arg)
{
	struct audit_syslog_batch *b = arg;
	char user[SYSLOG_FIELD + 4], action[SYSLOG_FIELD + 4];
	char object[SYSLOG_FIELD + 4], detail[SYSLOG_FIELD + 4], hash[65];
	char *line;
	int n;

	clean(e->user, user);
	clean(e->action, action);
	clean(e->object, object);
	/* A checkpoint's detail is its signature: the hash names it. */
	clean(strcmp(e->action, AUDIT_CHECKPOINT_ACTION) == 0 ? "(signed "
	    "checkpoint)" : e->detail, detail);
	ck_hex_encode(e->hash, 32, hash);
	n = asprintf(&line, "audit id=%lld time=%lld user=%s action=%s "
	    "object=%s result=%s hash=%s detail=%s", (long long)e->id,
	    (long long)e->time, user, action, object, e->result, hash,
	    detail);
	if (n < 0)
		return CK_E_NOMEM;
	b->ids[b->n] = e->id;
	b->lines[b->n++] = line;
	b->last = e->id;
	return b->n == AUDIT_SYSLOG_BATCH;	/* 1: full, stop the walk */
}

int
audit_syslog_collect(struct store *st, int64_t from,
    struct audit_syslog_batch *b)
{
	int r;

	b->n = 0;
	b->last = from - 1;
	r = store_audit_iter(st, from, collect_one, b);
	return r == 1 ? 0 : r;
}

void
audit_syslog_open(struct audit_syslog *sl, const char *path)
{
	sl->fd = -1;
	sl->down = 0;
	snprintf(sl->path, sizeof(sl->path), "%s", path);
}

void
audit_syslog_close(struct audit_syslog *sl)
{
	if (sl->fd >= 0)
		(void)close(sl->fd);
	sl->fd = -1;
}

static int
sl_connect(struct audit_syslog *sl)
{
	struct sockaddr_un sa;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sl->path, strlen(sl->path) + 1);
	if ((sl->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(sl->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		audit_syslog_close(sl);
		return -1;
	}
	return 0;
}

/* One datagram, never waiting: a full queue is tried again later. 0 if
 * the socket took it. */
static int
sl_send(struct audit_syslog *sl, const char *line)
{
	char hdr[64], ts[32], *msg;
	time_t now = time(NULL);
	struct tm tm;
	int n, r = -1, tries, err = 0;

	/* RFC 3164: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG, local time. */
	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
	snprintf(hdr, sizeof(hdr), "<%d>%s certkeepd[%ld]: ",
	    LOG_AUTHPRIV | LOG_NOTICE, ts, (long)getpid());
	if ((n = asprintf(&msg, "%s%s", hdr, line)) < 0)
		return -1;
	for (tries = 0; tries < 2 && r != 0; tries++) {
		if (sl->fd < 0 && sl_connect(sl) != 0) {
			err = errno;
			break;
		}
		if (send(sl->fd, msg, (size_t)n, MSG_DONTWAIT |
		    MSG_NOSIGNAL) == n) {
			r = 0;
			break;
		}
		err = errno;
		if (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ENOBUFS)
			break;
		/* The listener went away (syslog restarted): once more on
		 * a new connection. */
		audit_syslog_close(sl);
	}
	free(msg);
	if (r != 0 && !sl->down)
		ck_warn("audit syslog copy: %s does not take entries (%s); "
		    "they are sent when it does", sl->path,
		    err != 0 ? strerror(err) : "short write");
	else if (r == 0 && sl->down)
		ck_info("audit syslog copy: %s takes entries again",
		    sl->path);
	sl->down = r != 0;
	return r;
}

int64_t
audit_syslog_flush(struct audit_syslog *sl, struct audit_syslog_batch *b,
    int64_t from)
{
	int64_t sent = from - 1;
	size_t i;
	int ok = 1;

	for (i = 0; i < b->n; i++) {
		if (ok && sl_send(sl, b->lines[i]) == 0)
			sent = b->ids[i];
		else
			ok = 0;
		free(b->lines[i]);
	}
	b->n = 0;
	return sent;
}

int
audit_syslog_send(struct audit_syslog *sl, struct store *st, int64_t from,
    int64_t *last)
{
	struct audit_syslog_batch *b;
	int r, more;

	if ((b = malloc(sizeof(*b))) == NULL)
		return CK_E_NOMEM;
	*last = from - 1;
	do {
		r = audit_syslog_collect(st, *last + 1, b);
		more = r == 0 && b->n == AUDIT_SYSLOG_BATCH;
		if (r == 0) {
			int64_t want = b->last;
			*last = audit_syslog_flush(sl, b, *last + 1);
			more = more && *last == want;
		} else
			audit_syslog_flush(sl, b, *last + 1);
	} while (more);
	free(b);
	return r;
}
