/*
 * auditsyslog.c - a copy of the audit log in syslog (checkpoint.h explains
 * why a copy outside the CA matters): entries are sent once committed,
 * never before, so syslog holds nothing that did not happen.
 */
#include "audit/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common/err.h"
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
audit_syslog_flush(struct audit_syslog_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", b->lines[i]);
		free(b->lines[i]);
	}
	b->n = 0;
}

int
audit_syslog_send(struct store *st, int64_t from, int64_t *last)
{
	struct audit_syslog_batch b;
	int r, full;

	*last = from - 1;
	do {
		r = audit_syslog_collect(st, *last + 1, &b);
		full = b.n == AUDIT_SYSLOG_BATCH;
		if (r == 0)
			*last = b.last;
		audit_syslog_flush(&b);
	} while (r == 0 && full);
	return r;
}
