/*
 * auditsyslog.c - a copy of the audit log in syslog (checkpoint.h explains
 * why a copy outside the CA matters): entries are sent once committed,
 * never before, so syslog holds nothing that did not happen.
 */
#include "audit/checkpoint.h"

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

struct send_state {
	int64_t last;
};

static int
send_one(const struct store_audit_entry *e, void *arg)
{
	struct send_state *ss = arg;
	char user[SYSLOG_FIELD + 4], action[SYSLOG_FIELD + 4];
	char object[SYSLOG_FIELD + 4], detail[SYSLOG_FIELD + 4], hash[65];

	clean(e->user, user);
	clean(e->action, action);
	clean(e->object, object);
	/* A checkpoint's detail is its signature: the hash names it. */
	clean(strcmp(e->action, AUDIT_CHECKPOINT_ACTION) == 0 ? "(signed "
	    "checkpoint)" : e->detail, detail);
	ck_hex_encode(e->hash, 32, hash);
	syslog(LOG_AUTHPRIV | LOG_NOTICE, "audit id=%lld time=%lld user=%s "
	    "action=%s object=%s result=%s hash=%s detail=%s",
	    (long long)e->id, (long long)e->time, user, action, object,
	    e->result, hash, detail);
	ss->last = e->id;
	return 0;
}

int
audit_syslog_send(struct store *st, int64_t from, int64_t *last)
{
	struct send_state ss;
	int r;

	ss.last = from - 1;
	r = store_audit_iter(st, from, send_one, &ss);
	*last = ss.last;
	return r;
}
