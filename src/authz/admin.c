/*
 * admin.c - the admin actions behind the admin socket and the CLI
 * (admin.h).
 */
#include "authz/admin.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "authz/authz.h"
#include "ca/approval.h"
#include "ca/token.h"
#include "common/err.h"
#include "common/secmem.h"
#include "common/timeutil.h"
#include "store/store_authz.h"
#include "store/store_request.h"
#include "x509/certbuild.h"

int
admin_home_owner(const char *home, uid_t *out)
{
	struct stat sb;

	if (stat(home, &sb) != 0)
		return ck_err_set(CK_E_NOTFOUND, "no CA home at %s", home);
	*out = sb.st_uid;
	return 0;
}

/* ---- replies ---------------------------------------------------------- */

/*
 * A copy of S with every byte that is not part of valid UTF-8 (an audit
 * entry may hold whatever a refused request carried) replaced by '?':
 * JSON strings are UTF-8, and one bad entry must not make the whole log
 * unreadable through the socket. Caller frees.
 */
static char *
utf8_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, n, k;
	unsigned char c;
	char *out;

	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(out, s, len + 1);
	while (i < len) {
		c = p[i];
		n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 && c >= 0xc2 ? 2 :
		    (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 && c <= 0xf4 ?
		    4 : 0;
		for (k = 1; n > 1 && k < n; k++)
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
				n = 0;
		/* Overlong, surrogate and out-of-range forms. */
		if (n == 3 && ((c == 0xe0 && p[i + 1] < 0xa0) ||
		    (c == 0xed && p[i + 1] >= 0xa0)))
			n = 0;
		if (n == 4 && ((c == 0xf0 && p[i + 1] < 0x90) ||
		    (c == 0xf4 && p[i + 1] >= 0x90)))
			n = 0;
		if (n == 0) {
			out[i++] = '?';
			continue;
		}
		i += n;
	}
	return out;
}

/* A JSON string of S, cleaned (NULL when out of memory). */
static json_t *
text_json(const char *s)
{
	char *c = utf8_clean(s);
	json_t *j;

	if (c == NULL)
		return NULL;
	j = json_string(c);
	free(c);
	return j;
}

static json_t *
reply_err(int code, const char *msg, int refused)
{
	if (msg == NULL || msg[0] == '\0')
		msg = ck_strerror(code);
	return json_pack("{s:b, s:i, s:o, s:b}", "ok", 0, "code", code,
	    "error", text_json(msg), "refused", refused);
}

/* The error of the last failure on this thread, code R. */
static json_t *
reply_fail(int r)
{
	char msg[1200];

	snprintf(msg, sizeof(msg), "error: %s", ck_err_msg()[0] ?
	    ck_err_msg() : ck_strerror(r));
	return reply_err(r, msg, 0);
}

static json_t *
reply_ok(const char *out, const char *note)
{
	json_t *j = json_pack("{s:b, s:o}", "ok", 1, "out",
	    text_json(out != NULL ? out : ""));

	if (j != NULL && note != NULL &&
	    json_object_set_new(j, "note", text_json(note)) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A text buffer written with stdio. */
struct text {
	FILE *f;
	char *buf;
	size_t len;
};

static int
text_open(struct text *t)
{
	memset(t, 0, sizeof(*t));
	if ((t->f = open_memstream(&t->buf, &t->len)) == NULL)
		return CK_E_NOMEM;
	return 0;
}

/* Finish writing; t->buf is NUL-terminated. */
static int
text_close(struct text *t)
{
	int bad = t->f == NULL || ferror(t->f);

	if (t->f != NULL && fclose(t->f) != 0)
		bad = 1;
	t->f = NULL;
	return bad ? CK_E_NOMEM : 0;
}

static void
text_free(struct text *t)
{
	if (t->f != NULL)
		fclose(t->f);
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

/* ---- arguments -------------------------------------------------------- */

/* String argument KEY: NULL if absent (CK_E_INVAL if REQUIRED), refused
 * if not a string or longer than ADMIN_ARG_MAX. */
static int
arg_str(const json_t *req, const char *key, int required, const char **out)
{
	json_t *v = json_object_get(req, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return ck_err_set(CK_E_INVAL, "request: \"%s\" is "
			    "missing", key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) > ADMIN_ARG_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return ck_err_set(CK_E_INVAL, "request: \"%s\" must be a "
		    "string of at most %u bytes", key, ADMIN_ARG_MAX);
	*out = json_string_value(v);
	return 0;
}

static int
arg_int(const json_t *req, const char *key, int64_t min, int64_t max,
    int64_t dflt, int64_t *out)
{
	json_t *v = json_object_get(req, key);

	*out = dflt;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return ck_err_set(CK_E_INVAL, "request: \"%s\" must be an "
		    "integer from %lld to %lld", key, (long long)min,
		    (long long)max);
	*out = json_integer_value(v);
	return 0;
}

static int
arg_bool(const json_t *req, const char *key, int *out)
{
	json_t *v = json_object_get(req, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return ck_err_set(CK_E_INVAL, "request: \"%s\" must be true "
		    "or false", key);
	*out = json_is_true(v);
	return 0;
}

/* ---- reads and writes ------------------------------------------------- */

static void
rd_lock(struct admin_env *env)
{
	if (env->rd_mu != NULL)
		pthread_mutex_lock(env->rd_mu);
}

static void
rd_unlock(struct admin_env *env)
{
	if (env->rd_mu != NULL)
		pthread_mutex_unlock(env->rd_mu);
}

/* A write run for ACTOR: FN's result and message travel in here, and the
 * write itself always commits, so that what FN audited of a refusal
 * stays (as rest.c's revocations do). */
struct write_job {
	int (*fn)(struct ck_ca *ca, void *arg);
	void *arg;
	const char *actor;
	int r;
	char msg[1024];
};

static int
write_tramp(struct ck_ca *ca, void *arg)
{
	struct write_job *w = arg;

	audit_actor_set(w->actor);
	ck_err_clear();
	w->r = w->fn(ca, w->arg);
	if (w->r != 0)
		snprintf(w->msg, sizeof(w->msg), "%s", ck_err_msg());
	audit_actor_set(NULL);
	return 0;
}

/* Run FN(ca, ARG) on the write path as ACTOR; its result, with its
 * message set on this thread. */
static int
env_write(struct admin_env *env, const char *actor,
    int (*fn)(struct ck_ca *, void *), void *arg)
{
	struct write_job w;
	char msg[1024];
	int r;

	memset(&w, 0, sizeof(w));
	w.fn = fn;
	w.arg = arg;
	w.actor = actor;
	if (env->pl != NULL) {
		if ((r = ck_pipeline_write_wait(env->pl, write_tramp, &w, msg,
		    sizeof(msg))) != 0)
			return ck_err_set(r, "%s", msg);
	} else {
		if ((r = store_tx_begin(env->ca->st)) != 0)
			return r;
		(void)write_tramp(env->ca, &w);
		if ((r = store_tx_commit(env->ca->st)) != 0)
			return r;
	}
	if (w.r != 0)
		return ck_err_set(w.r, "%s", w.msg);
	return 0;
}

struct refusal {
	const char *actor, *action, *object, *reason;
};

static int
refusal_write(struct ck_ca *ca, void *arg)
{
	struct refusal *rf = arg;

	return audit_append(ca->st, rf->actor, rf->action, rf->object,
	    AUDIT_REFUSED, rf->reason);
}

/* ---- actions ---------------------------------------------------------- */

struct revoke_args {
	const char *serial;
	int reason;
};

static int
revoke_fn(struct ck_ca *ca, void *arg)
{
	struct revoke_args *a = arg;

	return ck_ca_revoke_as(ca, NULL, a->serial, a->reason);
}

struct token_args {
	struct ck_token_params tp;
	const char *id;
	struct ck_secret *tok;
};

static int
token_create_fn(struct ck_ca *ca, void *arg)
{
	struct token_args *a = arg;

	return ck_token_create(ca, &a->tp, &a->tok);
}

static int
token_revoke_fn(struct ck_ca *ca, void *arg)
{
	struct token_args *a = arg;

	return ck_token_revoke(ca, a->id);
}

struct operator_args {
	enum authz_action action;
	const char *name, *os_user;
	int role;
	int on;
};

static int
operator_fn(struct ck_ca *ca, void *arg)
{
	struct operator_args *a = arg;
	struct store_operator op;
	const char *what = authz_action_name(a->action);
	char detail[256] = "", msg[1024];
	int64_t now = ck_time_now();
	int r;

	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	switch (a->action) {
	case AUTHZ_OPERATOR_ADD:
		memset(&op, 0, sizeof(op));
		snprintf(op.name, sizeof(op.name), "%s", a->name);
		if (strlen(a->name) >= sizeof(op.name) ||
		    strlen(a->os_user) >= sizeof(op.os_user)) {
			r = ck_err_set(CK_E_INVAL, "operator name or OS user "
			    "too long");
			break;
		}
		snprintf(op.os_user, sizeof(op.os_user), "%s", a->os_user);
		op.created_at = now;
		snprintf(op.created_by, sizeof(op.created_by), "%s",
		    audit_actor());
		if ((r = store_operator_add(ca->st, &op)) == 0)
			r = store_operator_grant(ca->st, a->name, a->role, now,
			    audit_actor());
		snprintf(detail, sizeof(detail), "role %s, OS user %s",
		    store_role_name(a->role), a->os_user);
		break;
	case AUTHZ_OPERATOR_GRANT:
		r = store_operator_grant(ca->st, a->name, a->role, now,
		    audit_actor());
		snprintf(detail, sizeof(detail), "role %s",
		    store_role_name(a->role));
		break;
	case AUTHZ_OPERATOR_REMOVE:
		r = store_operator_remove(ca->st, a->name, now);
		break;
	case AUTHZ_OPERATOR_SEPARATION:
		r = store_role_separation_set(ca->st, a->on);
		snprintf(detail, sizeof(detail), "%s", a->on ? "on" : "off");
		break;
	default:
		r = ck_err_set(CK_E_INTERNAL, "not an operator action");
	}
	if (r == 0 && (r = audit_append(ca->st, NULL, what, a->name ?
	    a->name : "", AUDIT_OK, detail)) == 0)
		return store_tx_commit(ca->st);
	store_tx_rollback(ca->st);
	/* Refused: nothing changed, but the attempt is on record. */
	snprintf(msg, sizeof(msg), "%s", ck_err_msg());
	(void)audit_append(ca->st, NULL, what, a->name ? a->name : "",
	    AUDIT_REFUSED, msg);
	return ck_err_set(r, "%s", msg);
}

static int
print_token(const struct store_token *t, void *arg)
{
	FILE *f = arg;
	char c[32];

	if (ftell(f) == 0)
		fprintf(f, "%-16s %-20s %-8s %-20s %s\n", "ID", "NAME",
		    "STATE", "CREATED", "PROFILES / RULES");
	ck_time_format(t->created_at, c, sizeof(c));
	fprintf(f, "%-16s %-20s %-8s %-20s %s%s%s%s%s%s%s%s\n", t->id,
	    t->name, t->revoked_at ? "revoked" : "valid", c, t->profiles,
	    t->dns_suffixes[0] ? " dns:" : "", t->dns_suffixes,
	    t->ip_ranges[0] ? " ip:" : "", t->ip_ranges,
	    t->email_domains[0] ? " email:" : "", t->email_domains,
	    t->can_revoke ? " (may revoke)" : "");
	return 0;
}

static int
print_operator(const struct store_operator *op, void *arg)
{
	FILE *f = arg;
	char c[32], roles[96] = "";
	size_t len = 0;
	int i;

	if (ftell(f) == 0)
		fprintf(f, "%-16s %-16s %-20s %-8s %s\n", "NAME", "OS USER",
		    "CREATED", "STATE", "ROLES");
	for (i = 0; i < STORE_ROLE__MAX; i++)
		if (op->roles & (1u << i)) {
			snprintf(roles + len, sizeof(roles) - len, "%s%s",
			    len ? "," : "", store_role_name(i));
			len = strlen(roles);
		}
	ck_time_format(op->created_at, c, sizeof(c));
	fprintf(f, "%-16s %-16s %-20s %-8s %s\n", op->name,
	    op->os_user[0] ? op->os_user : "-", c,
	    op->disabled_at ? "removed" : "active", roles[0] ? roles : "-");
	return 0;
}

static int
print_entry(const struct store_audit_entry *e, void *arg)
{
	FILE *f = arg;
	char t[32];

	ck_time_format(e->time, t, sizeof(t));
	if (strcmp(e->action, AUDIT_CHECKPOINT_ACTION) == 0) {
		fprintf(f, "%6lld %s %-10s %-20s %-8s covers entries up to %s "
		    "(signed)\n", (long long)e->id, t, e->user, e->action,
		    e->result, e->object);
		return 0;
	}
	fprintf(f, "%6lld %s %-10s %-20s %-8s %s%s%s\n", (long long)e->id, t,
	    e->user, e->action, e->result, e->object,
	    e->detail[0] ? " -- " : "", e->detail);
	return 0;
}

/* The text of a verification's outcome, as the CLI always printed it. */
static json_t *
verify_reply(int r, const struct audit_signed_report *rep)
{
	char buf[1024], t[32];
	int n;

	if (r == CK_E_TAMPER) {
		snprintf(buf, sizeof(buf), "audit log TAMPERED: entry %lld: %s "
		    "(%lld entries before it verified)",
		    (long long)rep->chain.first_bad, rep->chain.reason,
		    (long long)rep->chain.entries);
		return reply_err(r, buf, 0);
	}
	if (r != 0)
		return reply_fail(r);
	n = snprintf(buf, sizeof(buf), "audit log intact: %lld entries "
	    "verified, %lld signed checkpoint(s)",
	    (long long)rep->chain.entries, (long long)rep->checkpoints);
	if (rep->last_checkpoint != 0) {
		ck_time_format(rep->last_checkpoint_time, t, sizeof(t));
		snprintf(buf + n, sizeof(buf) - (size_t)n, "; the last, entry "
		    "%lld of %s, anchors all but the last %lld entries\n",
		    (long long)rep->last_checkpoint, t,
		    (long long)rep->unanchored);
	} else
		snprintf(buf + n, sizeof(buf) - (size_t)n, "; no checkpoint "
		    "yet: nothing is anchored by a signature\n");
	return reply_ok(buf, NULL);
}

/* ---- requests awaiting approval -------------------------------------- */

struct rq_print {
	FILE *f;
	struct admin_env *env;
	int r;
};

/* The approvals a request under PROFILE needs; the caller holds the
 * configuration's lock. */
static int
env_needed(struct admin_env *env, const char *profile)
{
	return ck_request_needed(env->ca, profile);
}

static int
print_request(const struct store_request *rq, void *arg)
{
	struct rq_print *rp = arg;
	struct store_request_approval *a = NULL;
	char c[32], count[16];
	size_t n = 0;
	int r;

	/* Reads on the connection the walk holds: the caller's lock. */
	if ((r = store_request_approvals(rp->env->rd, rq->id, &a, &n)) != 0)
		return r;
	free(a);
	if (ftell(rp->f) == 0)
		fprintf(rp->f, "%-6s %-9s %-20s %-16s %-9s %-24s %s\n", "ID",
		    "STATUS", "CREATED", "PROFILE", "APPROVALS", "REQUESTER",
		    "SUBJECT / NAMES");
	ck_time_format(rq->created_at, c, sizeof(c));
	snprintf(count, sizeof(count), "%zu/%d", n,
	    env_needed(rp->env, rq->profile));
	fprintf(rp->f, "%-6lld %-9s %-20s %-16s %-9s %-24s %s%s%s\n",
	    (long long)rq->id, store_request_status_name(rq->status), c,
	    rq->profile, count, rq->requester, rq->subject,
	    rq->names[0] ? " " : "", rq->names);
	return 0;
}

static int
show_request(struct admin_env *env, int64_t id, FILE *f)
{
	struct store_request rq;
	struct store_request_approval *a = NULL;
	char t[32];
	size_t n = 0, i;
	int r;

	if ((r = store_request_get(env->rd, id, &rq)) != 0)
		return r;
	if ((r = store_request_approvals(env->rd, id, &a, &n)) != 0) {
		store_request_clear(&rq);
		return r;
	}
	ck_time_format(rq.created_at, t, sizeof(t));
	fprintf(f, "request:    %lld\nstatus:     %s\nprofile:    %s\n"
	    "subject:    %s\nnames:      %s\nrequester:  %s\ncreated:    %s\n",
	    (long long)rq.id, store_request_status_name(rq.status),
	    rq.profile, rq.subject, rq.names[0] ? rq.names : "-",
	    rq.requester, t);
	if (rq.days != 0)
		fprintf(f, "days:       %u\n", rq.days);
	if (rq.acme_order[0] != '\0')
		fprintf(f, "ACME order: %s\n", rq.acme_order);
	fprintf(f, "approvals:  %zu of %d\n", n, env_needed(env,
	    rq.profile));
	for (i = 0; i < n; i++) {
		ck_time_format(a[i].at, t, sizeof(t));
		fprintf(f, "  %s %s%s%s\n", t, a[i].actor,
		    a[i].reason[0] ? ": " : "", a[i].reason);
	}
	if (rq.status == STORE_REQUEST_DENIED) {
		ck_time_format(rq.decided_at, t, sizeof(t));
		fprintf(f, "denied:     %s: %s\n", t, rq.reason ? rq.reason :
		    "");
	}
	if (rq.cert_serial[0] != '\0')
		fprintf(f, "serial:     %s\n", rq.cert_serial);
	free(a);
	store_request_clear(&rq);
	return 0;
}

static int
run_request_read(struct admin_env *env, const json_t *req, FILE *f)
{
	struct rq_print rp;
	const char *status = NULL;
	int64_t id;
	int st = -1, r;

	if ((r = arg_int(req, "id", 0, INT64_MAX, 0, &id)) != 0 ||
	    (r = arg_str(req, "status", 0, &status)) != 0)
		return r;
	if (status != NULL && strcmp(status, "all") != 0 &&
	    (st = store_request_status_parse(status)) < 0)
		return ck_err_set(CK_E_INVAL, "unknown request status '%.40s' "
		    "(pending, approved, denied, issued, all)", status);
	/* The configuration's lock first, as the request threads take
	 * it before the read connection's. */
	if (env->cfg_lock != NULL)
		pthread_rwlock_rdlock(env->cfg_lock);
	rd_lock(env);
	if (id != 0)
		r = show_request(env, id, f);
	else {
		rp.f = f;
		rp.env = env;
		rp.r = 0;
		r = store_request_list(env->rd, st, print_request, &rp);
	}
	rd_unlock(env);
	if (env->cfg_lock != NULL)
		pthread_rwlock_unlock(env->cfg_lock);
	return r;
}

struct decision_job {
	enum authz_action action;
	struct ck_request_decision d;
};

static int
decision_fn(struct ck_ca *ca, void *arg)
{
	struct decision_job *j = arg;

	return j->action == AUTHZ_APPROVE ?
	    ck_request_approve_write(ca, &j->d) :
	    ck_request_deny_write(ca, &j->d);
}

/* Approve or deny for P, allowed as D says. */
static json_t *
run_decision(struct admin_env *env, enum authz_action action,
    const json_t *req, const struct authz_principal *p,
    const struct authz_decision *d, const char *actor)
{
	struct decision_job j;
	struct ck_request_io io;
	char out[1600], serial[80];
	const char *reason = NULL;
	int64_t id;
	size_t nsettled;
	int r;

	memset(&j, 0, sizeof(j));
	if ((r = arg_int(req, "id", 1, INT64_MAX, 0, &id)) != 0 ||
	    (r = arg_str(req, "reason", action == AUTHZ_DENY, &reason)) != 0)
		return reply_fail(r);
	if (id == 0)
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"id\" is "
		    "missing"));
	if (action == AUTHZ_DENY && reason[0] == '\0')
		return reply_fail(ck_err_set(CK_E_INVAL, "a denial needs a "
		    "reason"));
	j.action = action;
	j.d.id = id;
	j.d.reason = reason;
	/* An operator acting in the role is known by name; the home's owner
	 * acting as owner (no operators yet) by OS user. */
	if (p->is_operator && (p->op.roles & (1u << d->role))) {
		j.d.who.key = p->op.name;
		j.d.who.operator_name = p->op.name;
	} else
		j.d.who.key = p->os_user;
	j.d.who.os_user = p->os_user;
	j.d.who.actor = d->actor;
	/* The CLI issues itself when the approval completes the count: the
	 * key is unlocked first, so that an approval never waits for a
	 * passphrase nobody gives. */
	if (action == AUTHZ_APPROVE && env->ca->signer == NULL) {
		if (env->pass == NULL)
			return reply_fail(ck_err_set(CK_E_STATE, "the CA key "
			    "is locked"));
		if ((r = ck_ca_unlock(env->ca, env->pass)) != 0)
			return reply_fail(r);
	}
	if ((r = env_write(env, actor, decision_fn, &j)) != 0)
		return reply_fail(r);
	if (action == AUTHZ_DENY) {
		snprintf(out, sizeof(out), "Request %lld denied.\n",
		    (long long)id);
		return reply_ok(out, NULL);
	}
	if (!j.d.complete) {
		snprintf(out, sizeof(out), "Request %lld: approval %d of %d "
		    "recorded; %d more from another certificate manager.\n",
		    (long long)id, j.d.have, j.d.needed,
		    j.d.needed - j.d.have);
		return reply_ok(out, NULL);
	}
	memset(&io, 0, sizeof(io));
	io.ca = env->ca;
	io.pl = env->pl;
	io.rd = env->rd;
	io.rd_mu = env->rd_mu;
	io.cfg_lock = env->cfg_lock;
	r = ck_request_issue(&io, id, serial);
	if (r == 0 && env->pl == NULL)
		/* Without certkeepd nobody settles at start: approvals a
		 * stop interrupted are issued now. */
		r = ck_request_settle(&io, &nsettled);
	if (r != 0) {
		char msg[1200];
		snprintf(msg, sizeof(msg), "request %lld is approved, but %s%s",
		    (long long)id, ck_err_msg(), r == CK_E_POLICY ? "" :
		    " (it is issued when certkeepd starts)");
		return reply_fail(ck_err_set(r, "%s", msg));
	}
	snprintf(out, sizeof(out), "Request %lld approved (%d of %d) and "
	    "issued: serial %s\n", (long long)id, j.d.have, j.d.needed,
	    serial);
	return reply_ok(out, NULL);
}

/* Run a read action; the reply. */
static json_t *
run_read(struct admin_env *env, enum authz_action action, const json_t *req)
{
	struct audit_signed_report rep;
	struct text t;
	json_t *j = NULL;
	int64_t from, to, last = 0;
	int r, all;

	if ((r = text_open(&t)) != 0)
		return NULL;
	switch (action) {
	case AUTHZ_TOKEN_LIST:
		rd_lock(env);
		r = store_token_list(env->rd, print_token, t.f);
		rd_unlock(env);
		break;
	case AUTHZ_OPERATOR_LIST:
		if ((r = arg_bool(req, "all", &all)) != 0)
			break;
		rd_lock(env);
		r = store_operator_list(env->rd, all, print_operator, t.f);
		rd_unlock(env);
		break;
	case AUTHZ_REQUEST_LIST:
		r = run_request_read(env, req, t.f);
		break;
	case AUTHZ_AUDIT_SHOW:
		if ((r = arg_int(req, "from", 1, INT64_MAX, 1, &from)) != 0)
			break;
		rd_lock(env);
		r = store_audit_iter(env->rd, from, print_entry, t.f);
		rd_unlock(env);
		break;
	case AUTHZ_AUDIT_VERIFY: {
		/* Checkpoints are signed by this CA's key, not a parent's. */
		STACK_OF(X509) *own = sk_X509_new_null();
		memset(&rep, 0, sizeof(rep));
		if (own == NULL || (env->ca->cert != NULL &&
		    !sk_X509_push(own, env->ca->cert)))
			r = CK_E_NOMEM;
		else {
			rd_lock(env);
			r = audit_verify_signed(env->rd, own, &rep);
			rd_unlock(env);
		}
		sk_X509_free(own);
		text_free(&t);
		return verify_reply(r, &rep);
	}
	case AUTHZ_AUDIT_EXPORT:
		if ((r = arg_int(req, "from", 1, INT64_MAX, 1, &from)) != 0 ||
		    (r = arg_int(req, "to", 0, INT64_MAX, 0, &to)) != 0)
			break;
		rd_lock(env);
		r = audit_export(env->rd, env->ca->chain, from, to, t.f,
		    &last);
		rd_unlock(env);
		if (r == 0 && (r = text_close(&t)) == 0 &&
		    t.len > ADMIN_REPLY_MAX - 4096)
			r = ck_err_set(CK_E_TOOBIG, "the extract has %zu bytes,"
			    " more than a reply may carry: export it in parts "
			    "(--from, --to)", t.len);
		if (r == 0) {
			char out[160];
			snprintf(out, sizeof(out), "entries %lld to %lld",
			    (long long)from, (long long)last);
			json_t *data = json_stringn(t.buf, t.len);
			/* Byte for byte, or not at all: the hashes cover
			 * the bytes. */
			if (data == NULL) {
				text_free(&t);
				return reply_fail(ck_err_set(CK_E_PARSE,
				    "the extract is not UTF-8 text"));
			}
			if ((j = reply_ok(out, NULL)) == NULL)
				json_decref(data);
			else if ((json_object_set_new(j, "data", data) != 0 ||
			    json_object_set_new(j, "last",
			    json_integer(last)) != 0)) {
				json_decref(j);
				j = NULL;
			}
			text_free(&t);
			return j;
		}
		break;
	default:
		r = ck_err_set(CK_E_INTERNAL, "not a read action");
	}
	if (r == 0 && (r = text_close(&t)) == 0)
		j = reply_ok(t.buf, NULL);
	else
		j = reply_fail(r);
	text_free(&t);
	return j;
}

/* The object an action is about, for the audit entry of a refusal. */
static const char *
action_object(const json_t *req)
{
	static const char *const keys[] = { "serial", "name", "id", NULL };
	static _Thread_local char num[48];
	const char *v;
	json_t *id;
	int i;

	for (i = 0; keys[i] != NULL; i++)
		if (arg_str(req, keys[i], 0, &v) == 0 && v != NULL)
			return v;
	ck_err_clear();
	/* A request awaiting approval is known by a number. */
	if ((id = json_object_get(req, "id")) != NULL && json_is_integer(id)) {
		snprintf(num, sizeof(num), "request %lld",
		    (long long)json_integer_value(id));
		return num;
	}
	return "";
}

static int
os_user_exists(const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	return getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 &&
	    res != NULL;
}

/* Judge, then run a write action as D's actor. */
static json_t *
run_write(struct admin_env *env, enum authz_action action,
    const json_t *req, const char *actor)
{
	struct revoke_args rv;
	struct token_args ta;
	struct operator_args oa;
	const char *role = NULL;
	char out[512];
	int64_t reason;
	json_t *j;
	int r;

	memset(&ta, 0, sizeof(ta));
	memset(&oa, 0, sizeof(oa));
	oa.action = action;
	switch (action) {
	case AUTHZ_REVOKE:
		if ((r = arg_str(req, "serial", 1, &rv.serial)) != 0 ||
		    (r = arg_int(req, "reason", 0, 10, 0, &reason)) != 0)
			return reply_fail(r);
		rv.reason = (int)reason;
		if ((r = env_write(env, actor, revoke_fn, &rv)) != 0)
			return reply_fail(r);
		if (env->changed != NULL)
			env->changed(env->changed_arg, 1);
		snprintf(out, sizeof(out), "Revoked %s (%s). Publish a new CRL "
		    "with 'certkeep crl'.\n", rv.serial,
		    ck_crl_reason_name(rv.reason));
		return reply_ok(out, NULL);
	case AUTHZ_TOKEN_CREATE:
		if ((r = arg_str(req, "name", 1, &ta.tp.name)) != 0 ||
		    (r = arg_str(req, "profiles", 1, &ta.tp.profiles)) != 0 ||
		    (r = arg_str(req, "dns_suffixes", 0,
		    &ta.tp.dns_suffixes)) != 0 ||
		    (r = arg_str(req, "ip_ranges", 0, &ta.tp.ip_ranges)) != 0 ||
		    (r = arg_str(req, "email_domains", 0,
		    &ta.tp.email_domains)) != 0 ||
		    (r = arg_bool(req, "can_revoke", &ta.tp.can_revoke)) != 0)
			return reply_fail(r);
		if ((r = env_write(env, actor, token_create_fn, &ta)) != 0)
			return reply_fail(r);
		if (env->changed != NULL)
			env->changed(env->changed_arg, 0);
		snprintf(out, sizeof(out), "token '%s' created; it is shown "
		    "only this once", ta.tp.name);
		/* XXX the token passes through jansson's buffers, which are
		 * freed without being wiped. */
		j = reply_ok((const char *)ta.tok->buf, out);
		ck_secret_free(ta.tok);
		return j;
	case AUTHZ_TOKEN_REVOKE:
		if ((r = arg_str(req, "id", 1, &ta.id)) != 0)
			return reply_fail(r);
		if ((r = env_write(env, actor, token_revoke_fn, &ta)) != 0)
			return reply_fail(r);
		if (env->changed != NULL)
			env->changed(env->changed_arg, 0);
		snprintf(out, sizeof(out), "Revoked token %s.\n", ta.id);
		return reply_ok(out, NULL);
	case AUTHZ_OPERATOR_ADD:
	case AUTHZ_OPERATOR_GRANT:
		if ((r = arg_str(req, "name", 1, &oa.name)) != 0 ||
		    (r = arg_str(req, "role", 1, &role)) != 0 ||
		    (action == AUTHZ_OPERATOR_ADD &&
		    (r = arg_str(req, "os_user", 1, &oa.os_user)) != 0))
			return reply_fail(r);
		if ((oa.role = store_role_parse(role)) < 0)
			return reply_fail(ck_err_set(CK_E_INVAL, "unknown role "
			    "'%.40s' (ca-admin, cert-manager, auditor, "
			    "backup-operator)", role));
		/* A typo would make an operator nobody can ever be. */
		if (oa.os_user != NULL && !os_user_exists(oa.os_user))
			return reply_fail(ck_err_set(CK_E_NOTFOUND, "there is "
			    "no OS user '%.40s' here", oa.os_user));
		break;
	case AUTHZ_OPERATOR_REMOVE:
		if ((r = arg_str(req, "name", 1, &oa.name)) != 0)
			return reply_fail(r);
		break;
	case AUTHZ_OPERATOR_SEPARATION:
		if (json_object_get(req, "on") == NULL)
			return reply_fail(ck_err_set(CK_E_INVAL, "request: "
			    "\"on\" is missing"));
		if ((r = arg_bool(req, "on", &oa.on)) != 0)
			return reply_fail(r);
		break;
	default:
		return reply_fail(ck_err_set(CK_E_INTERNAL, "not a write "
		    "action"));
	}
	if ((r = env_write(env, actor, operator_fn, &oa)) != 0)
		return reply_fail(r);
	switch (action) {
	case AUTHZ_OPERATOR_ADD:
		snprintf(out, sizeof(out), "Operator %s (OS user %s) is %s.\n",
		    oa.name, oa.os_user, store_role_name(oa.role));
		break;
	case AUTHZ_OPERATOR_GRANT:
		snprintf(out, sizeof(out), "Operator %s is %s now.\n", oa.name,
		    store_role_name(oa.role));
		break;
	case AUTHZ_OPERATOR_REMOVE:
		snprintf(out, sizeof(out), "Operator %s removed.\n", oa.name);
		break;
	default:
		snprintf(out, sizeof(out), "Role separation is %s.\n",
		    oa.on ? "on" : "off");
	}
	return reply_ok(out, NULL);
}

json_t *
admin_exec(struct admin_env *env, uid_t peer, const json_t *req)
{
	struct authz_principal p;
	struct authz_decision d;
	struct refusal rf;
	const char *name;
	int action, r;

	ck_err_clear();
	if (!json_is_object(req))
		return reply_err(CK_E_INVAL, "error: a request is a JSON "
		    "object", 0);
	if ((r = arg_str(req, "action", 1, &name)) != 0)
		return reply_fail(r);
	/* Only what the socket serves; the rest of the table is checked
	 * by the CLI where the command runs. */
	action = authz_action_parse(name);
	switch (action) {
	case AUTHZ_REVOKE:
	case AUTHZ_TOKEN_CREATE:
	case AUTHZ_TOKEN_LIST:
	case AUTHZ_TOKEN_REVOKE:
	case AUTHZ_OPERATOR_ADD:
	case AUTHZ_OPERATOR_GRANT:
	case AUTHZ_OPERATOR_REMOVE:
	case AUTHZ_OPERATOR_LIST:
	case AUTHZ_OPERATOR_SEPARATION:
	case AUTHZ_AUDIT_SHOW:
	case AUTHZ_AUDIT_VERIFY:
	case AUTHZ_AUDIT_EXPORT:
	case AUTHZ_APPROVE:
	case AUTHZ_DENY:
	case AUTHZ_REQUEST_LIST:
		break;
	default:
		return reply_fail(ck_err_set(CK_E_INVAL, "unknown admin "
		    "action '%.40s'", name));
	}
	rd_lock(env);
	if ((r = authz_principal_load(env->rd, peer, env->owner, &p)) == 0)
		r = authz_decide(env->rd, &p, action, &d);
	rd_unlock(env);
	if (r != 0)
		return reply_fail(r);
	if (!d.allowed) {
		rf.actor = d.actor;
		rf.action = authz_action_name(action);
		rf.object = action_object(req);
		rf.reason = d.reason;
		if ((env->refusal_budget == NULL ||
		    env->refusal_budget(env->budget_arg)) &&
		    (r = env_write(env, d.actor, refusal_write, &rf)) != 0)
			return reply_fail(r);
		return reply_err(CK_E_POLICY, d.reason, 1);
	}
	switch (action) {
	case AUTHZ_TOKEN_LIST:
	case AUTHZ_OPERATOR_LIST:
	case AUTHZ_AUDIT_SHOW:
	case AUTHZ_AUDIT_VERIFY:
	case AUTHZ_AUDIT_EXPORT:
	case AUTHZ_REQUEST_LIST:
		return run_read(env, action, req);
	case AUTHZ_APPROVE:
	case AUTHZ_DENY:
		return run_decision(env, action, req, &p, &d, env->pl == NULL &&
		    !p.is_operator ? NULL : d.actor);
	default:
		/* The owner acting as owner in the CLI: as before operators,
		 * the log names whoever ran certkeep (root stays root). */
		return run_write(env, action, req, env->pl == NULL &&
		    !p.is_operator ? NULL : d.actor);
	}
}
