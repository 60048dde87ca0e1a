/*
 * admin.c - the admin actions behind the admin socket and the CLI
 * (admin.h).
 */
#include "authz/admin.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "backup/backup.h"
#include "backup/custody.h"
#include "authz/authz.h"
#include "ca/approval.h"
#include "ca/config.h"
#include "ca/eab_seal.h"
#include "ca/token.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "profile/profile.h"
#include "proto/jws.h"
#include "store/store_acme.h"
#include "store/store_authz.h"
#include "store/store_request.h"
#include "x509/certbuild.h"
#include "x509/csr.h"
#include "x509/serial.h"

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

/* "cert": a PEM certificate of at most 16 KiB, or absent (NULL). */
static int
arg_cert(const json_t *req, const char **out)
{
	json_t *v = json_object_get(req, "cert");

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > 16384 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return ck_err_set(CK_E_INVAL, "request: \"cert\" must be a "
		    "PEM certificate of at most 16384 bytes");
	*out = json_string_value(v);
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
	char cert_sha256[65];	/* "" = none (operator-cert: unbind) */
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
		    (a->os_user != NULL &&
		    strlen(a->os_user) >= sizeof(op.os_user))) {
			r = ck_err_set(CK_E_INVAL, "operator name or OS user "
			    "too long");
			break;
		}
		snprintf(op.os_user, sizeof(op.os_user), "%s", a->os_user ?
		    a->os_user : "");
		snprintf(op.cert_sha256, sizeof(op.cert_sha256), "%s",
		    a->cert_sha256);
		op.created_at = now;
		snprintf(op.created_by, sizeof(op.created_by), "%s",
		    audit_actor());
		if ((r = store_operator_add(ca->st, &op)) == 0)
			r = store_operator_grant(ca->st, a->name, a->role, now,
			    audit_actor());
		snprintf(detail, sizeof(detail), "role %s, OS user %s, "
		    "certificate %s", store_role_name(a->role),
		    a->os_user ? a->os_user : "-",
		    a->cert_sha256[0] ? a->cert_sha256 : "-");
		break;
	case AUTHZ_OPERATOR_CERT:
		r = store_operator_set_cert(ca->st, a->name, a->cert_sha256);
		snprintf(detail, sizeof(detail), "certificate %s",
		    a->cert_sha256[0] ? a->cert_sha256 : "unbound");
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
		fprintf(f, "%-16s %-16s %-20s %-8s %-16s %s\n", "NAME",
		    "OS USER", "CREATED", "STATE", "ROLES", "CERTIFICATE");
	for (i = 0; i < STORE_ROLE__MAX; i++)
		if (op->roles & (1u << i)) {
			snprintf(roles + len, sizeof(roles) - len, "%s%s",
			    len ? "," : "", store_role_name(i));
			len = strlen(roles);
		}
	ck_time_format(op->created_at, c, sizeof(c));
	/* The certificate by the start of its SHA-256 fingerprint. */
	fprintf(f, "%-16s %-16s %-20s %-8s %-16s %.16s\n", op->name,
	    op->os_user[0] ? op->os_user : "-", c,
	    op->disabled_at ? "removed" : "active", roles[0] ? roles : "-",
	    op->cert_sha256[0] ? op->cert_sha256 : "-");
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


/* ---- ACME external account binding keys --------------------------------- */

/* An HS256 key's size, and a kid's (hex: never starts with '-'). */
#define EAB_HMAC_BYTES 32
#define EAB_KID_BYTES 16

static int
print_eab(const struct store_acme_eab *e, void *arg)
{
	FILE *f = arg;
	char c[32], rv[32] = "-", b[32] = "";

	if (ftell(f) == 0)
		fprintf(f, "%-32s %-8s %-20s %-20s %-22s %s\n", "KID", "STATE",
		    "CREATED", "REVOKED", "ACCOUNT", "NOTE");
	ck_time_format(e->created_at, c, sizeof(c));
	if (e->revoked_at != 0)
		ck_time_format(e->revoked_at, rv, sizeof(rv));
	if (e->bound_at != 0)
		ck_time_format(e->bound_at, b, sizeof(b));
	fprintf(f, "%-32s %-8s %-20s %-20s %-22s %s%s%s%s\n", e->kid,
	    e->revoked_at ? "revoked" : e->account_id[0] ? "bound" : "valid",
	    c, rv, e->account_id[0] ? e->account_id : "-", e->note,
	    b[0] ? (e->note[0] ? " (bound " : "(bound ") : "", b,
	    b[0] ? ")" : "");
	return 0;
}

struct eab_args {
	struct store_acme_eab e;
	const char *kid;
	char detail[512];
};

static int
eab_create_fn(struct ck_ca *ca, void *arg)
{
	struct eab_args *a = arg;
	int r;

	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_acme_eab_create(ca->st, &a->e)) != 0 ||
	    (r = ck_ca_audit(ca, "acme-eab-create", a->e.kid, AUDIT_OK,
	    a->detail)) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

static int
eab_revoke_fn(struct ck_ca *ca, void *arg)
{
	struct eab_args *a = arg;
	int r;

	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_acme_eab_revoke(ca->st, a->kid, ck_time_now())) != 0 ||
	    (r = ck_ca_audit(ca, "acme-eab-revoke", a->kid, AUDIT_OK,
	    NULL)) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

/*
 * acme-eab-create in certkeepd, which made the home's EAB key pair at its
 * first start: a new kid and HMAC key, sealed to the pair's public half,
 * stored; "out" shows them once. (Without certkeepd the CLI does it
 * itself, making the pair under the CA passphrase if need be.)
 */
static json_t *
run_eab_create(struct admin_env *env, const json_t *req, const char *actor)
{
	struct eab_args a;
	struct ck_secret *key = NULL, *text = NULL;
	unsigned char idb[EAB_KID_BYTES], *sealed = NULL;
	const unsigned char *q;
	const char *note = NULL;
	EVP_PKEY *pub = NULL;
	char out[256];
	json_t *j = NULL;
	int r;

	if (env->pl == NULL)
		return reply_fail(ck_err_set(CK_E_STATE, "an EAB key through "
		    "the admin interface needs certkeepd"));
	if ((r = arg_str(req, "note", 0, &note)) != 0)
		return reply_fail(r);
	if (note == NULL)
		note = "";
	if (strlen(note) > STORE_ACME_EAB_NOTE_MAX)
		return reply_fail(ck_err_set(CK_E_INVAL, "the note is longer "
		    "than %d bytes", STORE_ACME_EAB_NOTE_MAX));
	for (q = (const unsigned char *)note; *q != '\0'; q++)
		if (*q < 0x20 || *q == 0x7f)
			return reply_fail(ck_err_set(CK_E_INVAL, "the note "
			    "must be one line of text"));
	memset(&a, 0, sizeof(a));
	if ((r = eab_pub_load(env->ca->home, &pub)) != 0) {
		if (r == CK_E_NOTFOUND)
			r = ck_err_set(CK_E_STATE, "this CA has no EAB key pair "
			    "yet: certkeepd makes it at start when [acme] "
			    "enabled = true; or create the first key with "
			    "certkeepd stopped");
		goto out;
	}
	if ((key = ck_secret_new(EAB_HMAC_BYTES)) == NULL ||
	    (text = ck_secret_new(ck_jws_b64url_len(EAB_HMAC_BYTES))) ==
	    NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    RAND_priv_bytes(key->buf, EAB_HMAC_BYTES) != 1) {
		r = ck_err_set(CK_E_CRYPTO, "random number generator");
		goto out;
	}
	key->len = EAB_HMAC_BYTES;
	ck_hex_encode(idb, sizeof(idb), a.e.kid);
	ck_jws_b64url_encode(key->buf, key->len, (char *)text->buf);
	if ((r = eab_seal(pub, a.e.kid, key->buf, key->len, &sealed,
	    &a.e.sealed_len)) != 0)
		goto out;
	a.e.sealed = sealed;
	a.e.note = (char *)note;
	a.e.created_at = ck_time_now();
	snprintf(a.detail, sizeof(a.detail), "HS256 key of %d bytes, sealed"
	    "%s%s%s", EAB_HMAC_BYTES, note[0] ? "; note \"" : "", note,
	    note[0] ? "\"" : "");
	if ((r = env_write(env, actor, eab_create_fn, &a)) != 0)
		goto out;
	snprintf(out, sizeof(out), "kid: %s\nhmac-key: %s\n", a.e.kid,
	    (const char *)text->buf);
	{
		char note_out[128];
		snprintf(note_out, sizeof(note_out), "EAB key id %s created; "
		    "its HMAC key is shown only this once", a.e.kid);
		/* XXX the key passes through jansson's buffers unwiped, as
		 * a token does. */
		j = reply_ok(out, note_out);
	}
	OPENSSL_cleanse(out, sizeof(out));
out:
	if (j == NULL && r != 0)
		j = reply_fail(r);
	free(sealed);
	EVP_PKEY_free(pub);
	ck_secret_free(text);
	ck_secret_free(key);
	return j;
}

/* ---- certificates: list and show -------------------------------------- */

struct cert_rows {
	FILE *f;
	int count;
};

static int
print_cert_row(const struct store_cert *c, void *arg)
{
	struct cert_rows *cr = arg;
	char na[32];

	ck_time_format(c->not_after, na, sizeof(na));
	if (cr->count == 0)
		fprintf(cr->f, "%-34s %-8s %-12s %-20s %s\n", "SERIAL",
		    "STATUS", "PROFILE", "NOT AFTER", "SUBJECT / NAMES");
	fprintf(cr->f, "%-34s %-8s %-12s %-20s %s%s%s\n", c->serial,
	    store_cert_status_name(c->status), c->profile, na, c->subject,
	    c->names[0] ? "  " : "", c->names);
	cr->count++;
	return 0;
}

/* cert-list: the filter from REQ, the rows as text into F. */
static int
cert_list(struct admin_env *env, const json_t *req, FILE *f)
{
	struct store_cert_filter flt;
	struct cert_rows cr = { f, 0 };
	const char *status = NULL;
	int64_t before, limit;
	int r;

	memset(&flt, 0, sizeof(flt));
	flt.status = -1;
	if ((r = arg_str(req, "status", 0, &status)) != 0 ||
	    (r = arg_str(req, "profile", 0, &flt.profile)) != 0 ||
	    (r = arg_str(req, "name", 0, &flt.name)) != 0 ||
	    (r = arg_int(req, "expiring_before", 0, INT64_MAX, 0,
	    &before)) != 0 ||
	    (r = arg_int(req, "limit", 0, 100000000, 0, &limit)) != 0)
		return r;
	flt.expiring_before = before;
	flt.limit = (size_t)limit;
	if (status != NULL && strcmp(status, "expired") == 0) {
		flt.expired = 1;
		flt.now = ck_time_now();
	} else if (status != NULL &&
	    (flt.status = store_cert_status_parse(status)) < 0)
		return ck_err_set(CK_E_INVAL, "unknown status '%.40s'",
		    status);
	rd_lock(env);
	r = store_cert_list(env->rd, &flt, print_cert_row, &cr);
	rd_unlock(env);
	return r;
}

/* cert-show: one certificate as text (or PEM when "pem") into F. */
static int
cert_show(struct admin_env *env, const json_t *req, FILE *f)
{
	struct store_cert *c = NULL;
	const char *in;
	char serial[CK_SERIAL_HEX_MAX], t1[32], t2[32], t3[32], *pem = NULL;
	size_t pemlen;
	int r, aspem;

	if ((r = arg_str(req, "serial", 1, &in)) != 0 ||
	    (r = arg_bool(req, "pem", &aspem)) != 0 ||
	    (r = ck_serial_normalize(in, serial)) != 0)
		return r;
	rd_lock(env);
	r = store_cert_get(env->rd, serial, &c);
	rd_unlock(env);
	if (r != 0)
		return r;
	if (aspem) {
		if (c->der == NULL)
			r = ck_err_set(CK_E_STATE, "certificate %s was never "
			    "issued (status %s)", serial,
			    store_cert_status_name(c->status));
		else if ((r = ck_der_to_pem(c->der, c->der_len, &pem,
		    &pemlen)) == 0)
			fwrite(pem, 1, pemlen, f);
		free(pem);
		store_cert_free(c);
		return r;
	}
	ck_time_format(c->not_before, t1, sizeof(t1));
	ck_time_format(c->not_after, t2, sizeof(t2));
	ck_time_format(c->created_at, t3, sizeof(t3));
	fprintf(f, "serial:      %s\n", c->serial);
	fprintf(f, "status:      %s\n", store_cert_status_name(c->status));
	fprintf(f, "subject:     %s\n", c->subject);
	fprintf(f, "names:       %s\n", c->names);
	fprintf(f, "profile:     %s\n", c->profile);
	fprintf(f, "requester:   %s\n", c->requester);
	fprintf(f, "CA:          %s\n", c->is_ca ? "yes" : "no");
	fprintf(f, "not before:  %s\n", t1);
	fprintf(f, "not after:   %s\n", t2);
	fprintf(f, "recorded:    %s\n", t3);
	fprintf(f, "TBS SHA-256: %s\n", c->tbs_sha256);
	if (c->status == STORE_CERT_REVOKED) {
		ck_time_format(c->revoked_at, t1, sizeof(t1));
		fprintf(f, "revoked:     %s (%s)\n", t1,
		    ck_crl_reason_name(c->reason));
	}
	fprintf(f, "change seq:  %lld\n", (long long)c->change_seq);
	store_cert_free(c);
	return 0;
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
run_read_text(struct admin_env *env, enum authz_action action,
    const json_t *req)
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
	case AUTHZ_CERT_LIST:
		r = cert_list(env, req, t.f);
		break;
	case AUTHZ_EAB_LIST:
		rd_lock(env);
		r = store_acme_eab_list(env->rd, print_eab, t.f);
		rd_unlock(env);
		if (r == 0 && (r = text_close(&t)) == 0)
			j = reply_ok(t.buf, t.len == 0 ? "no EAB keys" : NULL);
		else
			j = reply_fail(r);
		text_free(&t);
		return j;
	case AUTHZ_CERT_SHOW:
		r = cert_show(env, req, t.f);
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

struct read_note {
	const char *actor, *action;
	char detail[160];
};

static int
read_note_write(struct ck_ca *ca, void *arg)
{
	struct read_note *rn = arg;

	return audit_append(ca->st, rn->actor, rn->action, "", AUDIT_OK,
	    rn->detail);
}

/*
 * A read action; an operator's successful read of the audit log is
 * itself audited (who read it, from where on), so that looking is on
 * record too. The home's owner acting as owner is not: they can read the
 * store's file directly, so an entry would only record the reads they
 * chose to leave a trace of.
 */
static json_t *
run_read(struct admin_env *env, enum authz_action action, const json_t *req,
    const char *actor, int by_operator)
{
	struct read_note rn;
	json_t *j = run_read_text(env, action, req);
	int64_t from = 1;
	int r;

	if (j == NULL || !by_operator ||
	    !json_is_true(json_object_get(j, "ok")) ||
	    (action != AUTHZ_AUDIT_SHOW && action != AUTHZ_AUDIT_VERIFY &&
	    action != AUTHZ_AUDIT_EXPORT))
		return j;
	memset(&rn, 0, sizeof(rn));
	rn.actor = actor;
	rn.action = authz_action_name(action);
	if (action != AUTHZ_AUDIT_VERIFY &&
	    arg_int(req, "from", 1, INT64_MAX, 1, &from) != 0)
		ck_err_clear();
	if (action == AUTHZ_AUDIT_VERIFY)
		snprintf(rn.detail, sizeof(rn.detail), "the whole log read "
		    "and verified");
	else if (action == AUTHZ_AUDIT_EXPORT)
		snprintf(rn.detail, sizeof(rn.detail), "entries %lld to %lld "
		    "exported", (long long)from, (long long)json_integer_value(
		    json_object_get(j, "last")));
	else
		snprintf(rn.detail, sizeof(rn.detail), "entries from %lld "
		    "read", (long long)from);
	if ((r = env_write(env, actor, read_note_write, &rn)) != 0) {
		/* Unrecorded, the read is not handed out. */
		json_decref(j);
		return reply_fail(r);
	}
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

/* ---- certificate-manager and auditor acts in certkeepd ---------------- */

/* An issuance handed to the pipeline, waited for. */
struct issue_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, r;
	char msg[768];
	char serial[CK_SERIAL_HEX_MAX];
	unsigned char *der;
	size_t len;
};

static void
issue_waited(void *arg, int r, const char *msg, struct ck_issue_job *job)
{
	struct issue_wait *w = arg;

	pthread_mutex_lock(&w->mu);
	w->r = r;
	if (r != 0)
		snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
	else {
		snprintf(w->serial, sizeof(w->serial), "%s",
		    ck_issue_job_serial(job));
		w->der = ck_issue_job_take_der(job, &w->len);
	}
	ck_issue_job_free(job);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

struct issue_refusal {
	const char *actor, *profile, *reason;
};

static int
issue_refusal_write(struct ck_ca *ca, void *arg)
{
	struct issue_refusal *ir = arg;

	return ck_ca_audit_refusal(ca, ir->actor, ir->profile, ir->reason);
}

/*
 * issue: the CSR (PEM) under a profile, through certkeepd's durable
 * pipeline (pending row, signature, record), requested by ACTOR. The
 * reply's "out" is the certificate's PEM, with the chain unless
 * "cert_only"; "note" names the serial.
 */
static int
request_record_fn(struct ck_ca *ca, void *arg)
{
	return ck_request_record(ca, arg);
}

/*
 * issue under a profile that needs approval: the request is judged and
 * kept, not signed (as the CLI and REST do); "out" is its id and "note"
 * says so. PR is who asks, so that they cannot approve it themselves.
 */
static json_t *
run_issue_pending(struct admin_env *env, const struct ck_issue_params *p,
    const struct authz_principal *pr, const char *actor)
{
	struct ck_request_origin o;
	struct store_request rq;
	struct issue_refusal ir;
	char out[64], note[256], reason[768];
	json_t *j;
	int r, needed;

	memset(&o, 0, sizeof(o));
	memset(&rq, 0, sizeof(rq));
	o.requester = p->requester;
	o.operator_name = pr->is_operator ? pr->op.name : NULL;
	o.os_user = pr->uid != (uid_t)-1 ? pr->os_user : NULL;
	if (env->cfg_lock != NULL)
		pthread_rwlock_rdlock(env->cfg_lock);
	r = ck_request_build(env->ca, p, &o, &rq);
	needed = ck_request_needed(env->ca, p->profile);
	if (env->cfg_lock != NULL)
		pthread_rwlock_unlock(env->cfg_lock);
	if (r != 0) {
		snprintf(reason, sizeof(reason), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		ir.actor = p->requester;
		ir.profile = p->profile;
		ir.reason = reason;
		(void)env_write(env, actor, issue_refusal_write, &ir);
		return reply_fail(ck_err_set(r, "%s", reason));
	}
	if ((r = env_write(env, actor, request_record_fn, &rq)) != 0) {
		store_request_clear(&rq);
		return reply_fail(r);
	}
	snprintf(out, sizeof(out), "%lld\n", (long long)rq.id);
	snprintf(note, sizeof(note), "request %lld waits for %d certificate "
	    "manager approval(s) (profile %s); see 'certkeep request show "
	    "%lld'", (long long)rq.id, needed, p->profile, (long long)rq.id);
	if ((j = reply_ok(out, note)) != NULL &&
	    json_object_set_new(j, "request", json_integer(rq.id)) != 0) {
		json_decref(j);
		j = NULL;
	}
	store_request_clear(&rq);
	return j;
}

static json_t *
run_issue(struct admin_env *env, const json_t *req,
    const struct authz_principal *pr, const char *actor)
{
	struct ck_issue_params p;
	struct ck_issue_job *job = NULL;
	struct issue_wait w;
	struct issue_refusal ir;
	const char *csr;
	char *pem = NULL, *chain = NULL, *all = NULL, note[160];
	size_t pemlen = 0, chainlen = 0;
	int64_t days, path_len;
	json_t *j = NULL;
	int r, cert_only;

	if (env->pl == NULL)
		return reply_fail(ck_err_set(CK_E_STATE, "issue through the "
		    "admin interface needs certkeepd"));
	memset(&p, 0, sizeof(p));
	if ((r = arg_str(req, "profile", 1, &p.profile)) != 0 ||
	    (r = arg_int(req, "days", 0, 36500, 0, &days)) != 0 ||
	    (r = arg_int(req, "path_len", -1, 16, -1, &path_len)) != 0 ||
	    (r = arg_bool(req, "cert_only", &cert_only)) != 0)
		return reply_fail(r);
	/* The CSR is the one argument longer than ADMIN_ARG_MAX. */
	{
		json_t *v = json_object_get(req, "csr");
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > CK_CSR_MAX)
			return reply_fail(ck_err_set(CK_E_INVAL, "request: "
			    "\"csr\" must be a PEM CSR of at most %u bytes",
			    CK_CSR_MAX));
		csr = json_string_value(v);
		p.csr = (const unsigned char *)csr;
		p.csr_len = json_string_length(v);
	}
	p.days = (uint32_t)days;
	p.path_len = (int)path_len;
	/* Who asked: the operator and role (or the owner's OS user). */
	p.requester = actor != NULL ? actor : audit_os_user();
	{
		const struct ck_profile *prof;
		int approvals;
		if (env->cfg_lock != NULL)
			pthread_rwlock_rdlock(env->cfg_lock);
		prof = ck_config_profile(env->ca->cfg, p.profile);
		approvals = prof != NULL ? prof->approvals : 0;
		if (env->cfg_lock != NULL)
			pthread_rwlock_unlock(env->cfg_lock);
		if (approvals > 0)
			return run_issue_pending(env, &p, pr, actor);
	}
	if (env->cfg_lock != NULL)
		pthread_rwlock_rdlock(env->cfg_lock);
	r = ck_issue_prepare(env->ca, &p, NULL, &job);
	if (env->cfg_lock != NULL)
		pthread_rwlock_unlock(env->cfg_lock);
	if (r != 0) {
		char reason[768];
		snprintf(reason, sizeof(reason), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		ir.actor = p.requester;
		ir.profile = p.profile;
		ir.reason = reason;
		(void)env_write(env, actor, issue_refusal_write, &ir);
		return reply_fail(ck_err_set(r, "%s", reason));
	}
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	ck_pipeline_issue(env->pl, job, issue_waited, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	if (w.r != 0)
		return reply_fail(ck_err_set(w.r, "%s", w.msg));
	if ((r = ck_der_to_pem(w.der, w.len, &pem, &pemlen)) != 0 ||
	    (!cert_only && (r = ck_ca_chain_pem(env->ca, &chain,
	    &chainlen)) != 0)) {
		j = reply_fail(r);
		goto out;
	}
	if ((all = malloc(pemlen + chainlen + 1)) == NULL)
		goto out;
	memcpy(all, pem, pemlen);
	if (chainlen > 0)
		memcpy(all + pemlen, chain, chainlen);
	all[pemlen + chainlen] = '\0';
	snprintf(note, sizeof(note), "issued certificate serial %s", w.serial);
	if ((j = reply_ok(all, note)) != NULL &&
	    json_object_set_new(j, "serial", json_string(w.serial)) != 0) {
		json_decref(j);
		j = NULL;
	}
out:
	free(all);
	free(chain);
	free(pem);
	OPENSSL_free(w.der);
	return j;
}

struct crl_args {
	unsigned char *der;
	size_t len;
	uint64_t number;
};

static int
crl_fn(struct ck_ca *ca, void *arg)
{
	struct crl_args *a = arg;
	int r;

	if ((r = ck_ca_crl(ca, &a->der, &a->len, &a->number)) != 0)
		return r;
	return ck_ca_crl_publish(ca, a->der, a->len);
}

/* crl: sign, record and publish a CRL in certkeepd; "out" is its PEM. */
static json_t *
run_crl(struct admin_env *env, const char *actor)
{
	struct crl_args a;
	const unsigned char *q;
	X509_CRL *crl = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	char note[96];
	json_t *j = NULL;
	int r;

	if (env->pl == NULL)
		return reply_fail(ck_err_set(CK_E_STATE, "a CRL through the "
		    "admin interface needs certkeepd"));
	memset(&a, 0, sizeof(a));
	if ((r = env_write(env, actor, crl_fn, &a)) != 0)
		return reply_fail(r);
	/* certkeepd serves the newest CRL. */
	if (env->changed != NULL)
		env->changed(env->changed_arg, 1);
	q = a.der;
	if ((crl = d2i_X509_CRL(NULL, &q, (long)a.len)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_CRL(bio, crl) || BIO_write(bio, "", 1) != 1) {
		j = reply_fail(ck_err_set(CK_E_NOMEM, "cannot encode the CRL"));
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	snprintf(note, sizeof(note), "published CRL number %llu",
	    (unsigned long long)a.number);
	j = reply_ok(bm->data, note);
out:
	BIO_free(bio);
	X509_CRL_free(crl);
	OPENSSL_free(a.der);
	return j;
}

struct checkpoint_args {
	const char *actor;
	int written;
};

static int
checkpoint_fn(struct ck_ca *ca, void *arg)
{
	struct checkpoint_args *a = arg;

	return audit_checkpoint(ca, a->actor, &a->written);
}

static json_t *
run_checkpoint(struct admin_env *env, const char *actor)
{
	struct checkpoint_args a = { actor, 0 };
	int r;

	if (env->pl == NULL)
		return reply_fail(ck_err_set(CK_E_STATE, "a checkpoint through "
		    "the admin interface needs certkeepd"));
	if ((r = env_write(env, actor, checkpoint_fn, &a)) != 0)
		return reply_fail(r);
	return reply_ok(a.written ? "checkpoint written\n" :
	    "the last entry is a checkpoint already\n", NULL);
}

/*
 * The certificate PEM binds operator NAME when it is this CA's, current
 * (within its validity, issued and not revoked in the store), for client
 * authentication, issued under the "operator" profile, and names NAME as
 * its common name: HEX gets its SHA-256.
 */
static int
operator_cert_check(struct admin_env *env, const char *name, const char *pem,
    char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH], *der = NULL;
	struct store_cert *c = NULL;
	char serial[CK_SERIAL_HEX_MAX], cn[STORE_OPERATOR_NAME_SIZE + 1];
	BIO *bio = NULL;
	X509 *x = NULL;
	int r = 0, len;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		r = ck_err_set(CK_E_PARSE, "the operator's certificate is not "
		    "a PEM certificate");
		goto out;
	}
	if (env->ca->cert == NULL ||
	    X509_check_issued(env->ca->cert, x) != X509_V_OK ||
	    X509_verify(x, X509_get0_pubkey(env->ca->cert)) != 1) {
		r = ck_err_set(CK_E_POLICY, "the operator's certificate was not "
		    "issued by this CA");
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		r = ck_err_set(CK_E_POLICY, "the operator's certificate is "
		    "not within its validity");
		goto out;
	}
	if (X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) != 1) {
		r = ck_err_set(CK_E_POLICY, "the operator's certificate is not "
		    "for TLS client authentication");
		goto out;
	}
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, sizeof(cn)) < 0 || strcmp(cn, name) != 0) {
		r = ck_err_set(CK_E_POLICY, "the operator's certificate must "
		    "name the operator (CN=%s)", name);
		goto out;
	}
	if ((r = ck_serial_to_hex(X509_get0_serialNumber(x), serial)) != 0)
		goto out;
	rd_lock(env);
	r = store_cert_get(env->rd, serial, &c);
	rd_unlock(env);
	if (r == CK_E_NOTFOUND)
		r = ck_err_set(CK_E_POLICY, "the operator's certificate %s is "
		    "not in this CA's records", serial);
	if (r != 0)
		goto out;
	if (c->status != STORE_CERT_ISSUED) {
		r = ck_err_set(CK_E_POLICY, "the operator's certificate %s is "
		    "%s", serial, store_cert_status_name(c->status));
		goto out;
	}
	if (strcmp(c->profile, ADMIN_OPERATOR_PROFILE) != 0) {
		r = ck_err_set(CK_E_POLICY, "the operator's certificate %s was "
		    "issued under profile %s, not %s", serial, c->profile,
		    ADMIN_OPERATOR_PROFILE);
		goto out;
	}
	if ((len = i2d_X509(x, &der)) <= 0) {
		r = CK_E_NOMEM;
		goto out;
	}
	SHA256(der, (size_t)len, md);
	ck_hex_encode(md, sizeof(md), hex);
out:
	OPENSSL_free(der);
	store_cert_free(c);
	X509_free(x);
	BIO_free(bio);
	return r;
}

/* ---- backups (docs/backup.md) ----------------------------------------- */

/*
 * certkeepd makes a hot backup itself, as the service user, to the
 * destinations of [backup] "to", encrypted to [backup] "recipients": a
 * path or recipient in an operator's request would let a backup operator
 * have the process that reads the whole store write it wherever the
 * service user may, or encrypt it to a key of their choosing. Only the
 * home's owner acting as owner (the account the files and the service are
 * anyway) may name them in the request. It runs in the worker thread that
 * took the request (one of the socket's or the HTTPS route's), on the
 * store's online snapshot, so issuance goes on; one at a time, a second
 * request meanwhile is refused at once rather than holding another worker.
 */
static atomic_int backup_busy;

struct bk_write {
	struct admin_env *env;
	const char *actor;
};

static int
bk_write_cb(void *arg, int (*fn)(struct ck_ca *, void *), void *fnarg)
{
	struct bk_write *b = arg;

	return env_write(b->env, b->actor, fn, fnarg);
}

/* The first certificate of the PEM file PATH (relative: in HOME). */
static int
bk_load_recipient(const char *home, const char *name, STACK_OF(X509) *sk)
{
	char path[4200];
	X509 *x;
	BIO *b;
	int r;

	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else if ((r = ck_path_join(path, sizeof(path), home, name)) != 0)
		return r;
	if ((b = BIO_new_file(path, "r")) == NULL)
		return ck_err_set(CK_E_NOTFOUND, "cannot read the recipient "
		    "certificate %s", path);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	if (x == NULL)
		return ck_err_set(CK_E_PARSE, "%s holds no PEM certificate",
		    path);
	if (!sk_X509_push(sk, x)) {
		X509_free(x);
		return ck_err_set(CK_E_NOMEM, "out of memory");
	}
	return 0;
}

/* The owner's choices in the request: "to" (directories), "recipients"
 * (PEM certificates), retention counts, "zstd_level". *ANY: some given. */
static int
bk_request_opts(const json_t *req, struct ck_backup_opts *o,
    struct ck_strlist *dests, int *any, int *rset)
{
	static const char *const counts[] = { "keep_last", "daily", "weekly",
	    "monthly", NULL };
	unsigned *cv[] = { &o->retention.keep_last, &o->retention.daily,
	    &o->retention.weekly, &o->retention.monthly };
	json_t *v, *e;
	int64_t n;
	size_t i;
	int r;

	*any = *rset = 0;
	if ((v = json_object_get(req, "to")) != NULL) {
		if (!json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > CK_BACKUP_MAX_DESTS)
			return ck_err_set(CK_E_INVAL, "request: \"to\" is an "
			    "array of 1 to %d directories", CK_BACKUP_MAX_DESTS);
		json_array_foreach(v, i, e) {
			if (!json_is_string(e) || json_string_length(e) == 0 ||
			    json_string_length(e) > ADMIN_ARG_MAX ||
			    strlen(json_string_value(e)) !=
			    json_string_length(e))
				return ck_err_set(CK_E_INVAL, "request: \"to\" "
				    "holds directory names");
			if ((r = ck_strlist_add(dests, json_string_value(e)))
			    != 0)
				return r;
		}
		for (i = 0; i < dests->n; i++)
			o->dests[o->ndests++] = dests->v[i];
		*any = 1;
	}
	if ((v = json_object_get(req, "recipients")) != NULL) {
		if (!json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > 16)
			return ck_err_set(CK_E_INVAL, "request: \"recipients\" "
			    "is an array of 1 to 16 PEM certificates");
		json_array_foreach(v, i, e) {
			BIO *b;
			X509 *x = NULL;
			if (!json_is_string(e) || json_string_length(e) > 16384)
				return ck_err_set(CK_E_INVAL, "request: a "
				    "recipient is a PEM certificate of at most "
				    "16384 bytes");
			if ((b = BIO_new_mem_buf(json_string_value(e),
			    (int)json_string_length(e))) != NULL)
				x = PEM_read_bio_X509(b, NULL, NULL, NULL);
			BIO_free(b);
			ERR_clear_error();
			if (x == NULL)
				return ck_err_set(CK_E_PARSE, "request: a "
				    "recipient is not a PEM certificate");
			if (!sk_X509_push(o->recipients, x)) {
				X509_free(x);
				return ck_err_set(CK_E_NOMEM, "out of memory");
			}
		}
		*any = 1;
	}
	for (i = 0; counts[i] != NULL; i++) {
		if (json_object_get(req, counts[i]) == NULL)
			continue;
		if ((r = arg_int(req, counts[i], 0, 100000, 0, &n)) != 0)
			return r;
		*cv[i] = (unsigned)n;
		*any = *rset = 1;
	}
	if (json_object_get(req, "zstd_level") != NULL) {
		if ((r = arg_int(req, "zstd_level", -7, 19, 0, &n)) != 0)
			return r;
		if (n == 0)
			return ck_err_set(CK_E_INVAL, "request: \"zstd_level\" "
			    "is -7..-1 or 1..19");
		o->zlevel = (int)n;
		*any = 1;
	}
	return 0;
}

/* Destinations, recipients, retention and compression from [backup],
 * where the request (the owner's) did not name them. */
static int
bk_config(const struct ck_ca *ca, struct ck_backup_opts *o,
    struct ck_strlist *dests, int rset)
{
	const struct ck_backup_config *b = &ca->cfg->backup;
	struct ck_strlist l;
	size_t i;
	int r;

	if (o->ndests > 0)
		goto recipients;
	if (b->to[0] == '\0')
		return ck_err_set(CK_E_STATE, "no destination for backups is "
		    "configured ('to = DIR' in [backup] of certkeep.conf): "
		    "certkeepd writes backups only where the configuration "
		    "says");
	if ((r = ck_strlist_split(dests, b->to)) != 0)
		return r;
	for (i = 0; i < dests->n && o->ndests < CK_BACKUP_MAX_DESTS; i++)
		o->dests[o->ndests++] = dests->v[i];
recipients:
	if (sk_X509_num(o->recipients) > 0)
		goto rest;
	if (b->recipients[0] == '\0')
		return ck_err_set(CK_E_STATE, "no recipient for backups is "
		    "configured ('recipients = CERT' in [backup] of "
		    "certkeep.conf)");
	memset(&l, 0, sizeof(l));
	if ((r = ck_strlist_split(&l, b->recipients)) != 0)
		return r;
	for (i = 0; i < l.n && r == 0; i++)
		r = bk_load_recipient(ca->home, l.v[i], o->recipients);
	ck_strlist_clear(&l);
	if (r != 0)
		return r;
rest:
	if (!rset) {
		o->retention.keep_last = b->keep_last;
		o->retention.daily = b->daily;
		o->retention.weekly = b->weekly;
		o->retention.monthly = b->monthly;
	}
	if (o->zlevel == 0)
		o->zlevel = b->zstd_level ? b->zstd_level :
		    CK_BACKUP_ZSTD_LEVEL;
	return 0;
}

static json_t *
run_backup_make(struct admin_env *env, const json_t *req,
    const struct authz_principal *p, const char *actor)
{
	struct ck_backup_opts o;
	struct ck_backup_result res;
	struct ck_strlist dests;
	struct bk_write bw = { env, actor };
	const char *kind;
	char out[4096];
	size_t i, len;
	json_t *j;
	int r, logical, any = 0, rset = 0;

	if ((r = arg_str(req, "kind", 0, &kind)) != 0 ||
	    (r = arg_bool(req, "logical", &logical)) != 0)
		return reply_fail(r);
	memset(&o, 0, sizeof(o));
	if (kind == NULL || strcmp(kind, "full") == 0)
		o.incremental = 0;
	else if (strcmp(kind, "incremental") == 0)
		o.incremental = 1;
	else if (strcmp(kind, "incremental-or-full") == 0)
		o.incremental = CK_BACKUP_INCR_IF_POSSIBLE;
	else
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"kind\" is "
		    "full, incremental or incremental-or-full"));
	o.logical = logical;
	o.actor = actor;
	o.write = bk_write_cb;
	o.write_arg = &bw;
	/* What the request may name is checked first, whoever serves it. */
	memset(&dests, 0, sizeof(dests));
	if ((o.recipients = sk_X509_new_null()) == NULL)
		return reply_fail(ck_err_set(CK_E_NOMEM, "out of memory"));
	r = bk_request_opts(req, &o, &dests, &any, &rset);
	if (r == 0 && any && (p->is_operator || !p->is_owner))
		r = ck_err_set(CK_E_POLICY, "an operator's backup goes where "
		    "[backup] of certkeep.conf says (to, recipients, "
		    "retention, zstd_level): naming them is the home "
		    "owner's");
	if (r == 0 && env->pl == NULL)
		r = ck_err_set(CK_E_STATE, "a backup through the admin "
		    "interface needs certkeepd");
	if (r != 0) {
		ck_strlist_clear(&dests);
		sk_X509_pop_free(o.recipients, X509_free);
		return reply_fail(r);
	}
	if (atomic_exchange(&backup_busy, 1) != 0) {
		ck_strlist_clear(&dests);
		sk_X509_pop_free(o.recipients, X509_free);
		return reply_fail(ck_err_set(CK_E_BUSY, "a backup of this CA "
		    "is being made: try again when it is done"));
	}
	/* The configuration stays as it is for the backup's length (a
	 * reload waits). */
	if (env->cfg_lock != NULL)
		pthread_rwlock_rdlock(env->cfg_lock);
	r = bk_config(env->ca, &o, &dests, rset);
	if (r == 0)
		r = ck_backup_make(env->ca, &o, &res);
	if (env->cfg_lock != NULL)
		pthread_rwlock_unlock(env->cfg_lock);
	ck_strlist_clear(&dests);
	sk_X509_pop_free(o.recipients, X509_free);
	atomic_store(&backup_busy, 0);
	if (r != 0)
		return reply_fail(r);
	len = (size_t)snprintf(out, sizeof(out), "%s backup %s: sequence "
	    "%lld..%lld, %llu bytes, SHA-256 %s\n", res.kind, res.id,
	    (long long)res.seq_from, (long long)res.seq_to,
	    (unsigned long long)res.size, res.archive_sha256);
	for (i = 0; i < res.npaths && len < sizeof(out); i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len,
		    "  %s (read back: ok)\n", res.paths[i]);
	if (res.deleted && len < sizeof(out))
		snprintf(out + len, sizeof(out) - len, "retention: %u older "
		    "set%s deleted\n", res.deleted, res.deleted == 1 ? "" : "s");
	if (res.warning[0] != '\0') {
		char note[1024];
		snprintf(note, sizeof(note), "warning: the backup is good, but "
		    "%s", res.warning);
		j = reply_ok(out, note);
	} else
		j = reply_ok(out, res.npaths == 1 ? "warning: this restore "
		    "point has a single copy: configure a second destination "
		    "on other media" : NULL);
	if (j != NULL && (json_object_set_new(j, "artefact",
	    json_string(res.paths[0])) != 0 ||
	    json_object_set_new(j, "set", json_string(res.id)) != 0 ||
	    json_object_set_new(j, "size", json_integer((json_int_t)
	    res.size)) != 0 ||
	    json_object_set_new(j, "sha256",
	    json_string(res.archive_sha256)) != 0)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* A verification or drill the CLI made (it holds the recipient's key,
 * which never crosses the socket), recorded here. */
struct check_args {
	const char *what, *set, *file, *detail;
	int ok;
};

static int
check_record_fn(struct ck_ca *ca, void *arg)
{
	struct check_args *a = arg;
	struct ck_manifest *m;
	int r;

	if (a->set == NULL)
		return audit_append(ca->st, NULL, strcmp(a->what, "drill") ==
		    0 ? "backup-drill" : "backup-verify", a->file ? a->file :
		    "-", a->ok ? AUDIT_OK : AUDIT_FAILED, a->detail);
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	snprintf(m->id, sizeof(m->id), "%s", a->set);
	r = ck_backup_record_check(ca, a->what, m, a->file, a->ok, a->detail);
	free(m);
	return r;
}

static json_t *
run_check_record(struct admin_env *env, const char *what, const json_t *req,
    const char *actor)
{
	struct check_args a;
	int r;

	memset(&a, 0, sizeof(a));
	a.what = what;
	if ((r = arg_str(req, "set", 0, &a.set)) != 0 ||
	    (r = arg_str(req, "file", 0, &a.file)) != 0 ||
	    (r = arg_str(req, "detail", 1, &a.detail)) != 0 ||
	    (r = arg_bool(req, "ok", &a.ok)) != 0)
		return reply_fail(r);
	if (a.set != NULL && (strlen(a.set) != 64 ||
	    strspn(a.set, "0123456789abcdef") != 64))
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"set\" is "
		    "a set's id (64 lower-case hex digits)"));
	/* JSON strings are UTF-8 already; the catalogue's text lines must
	 * stay lines. */
	if (has_control(a.detail) || (a.file != NULL && has_control(a.file)))
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"detail\" "
		    "and \"file\" must be text without control characters"));
	if ((r = env_write(env, actor, check_record_fn, &a)) != 0)
		return reply_fail(r);
	return reply_ok(a.set != NULL ? "recorded\n" : "recorded (audit log "
	    "only: no set was read)\n", NULL);
}

/* The files of a set's chain in the catalogue, for a drill in the CLI. */
struct chain_args {
	const char *set;
	char **files;
	size_t n;
};

static int
chain_fn(struct ck_ca *ca, void *arg)
{
	struct chain_args *a = arg;

	return ck_backup_chain_files(ca, a->set, &a->files, &a->n);
}

static json_t *
run_drill(struct admin_env *env, const json_t *req, const char *actor)
{
	struct chain_args ca;
	struct text t;
	const char *op;
	size_t i;
	json_t *j;
	int r;

	if ((r = arg_str(req, "op", 1, &op)) != 0)
		return reply_fail(r);
	if (strcmp(op, "record") == 0)
		return run_check_record(env, "drill", req, actor);
	if (strcmp(op, "files") != 0)
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"op\" of "
		    "drill is files or record"));
	memset(&ca, 0, sizeof(ca));
	if ((r = arg_str(req, "set", 0, &ca.set)) != 0)
		return reply_fail(r);
	/* A read, on the committer's connection (the catalogue's reader). */
	if ((r = env_write(env, actor, chain_fn, &ca)) != 0)
		return reply_fail(r);
	if ((r = text_open(&t)) == 0) {
		for (i = 0; i < ca.n; i++)
			fprintf(t.f, "%s\n", ca.files[i]);
		r = text_close(&t);
	}
	for (i = 0; i < ca.n; i++)
		free(ca.files[i]);
	free(ca.files);
	j = r == 0 ? reply_ok(t.buf, NULL) : reply_fail(r);
	text_free(&t);
	return j;
}

static json_t *
run_backup(struct admin_env *env, const json_t *req,
    const struct authz_principal *p, const char *actor)
{
	const char *op;
	struct text t;
	json_t *j;
	int r, json;

	if ((r = arg_str(req, "op", 1, &op)) != 0)
		return reply_fail(r);
	if (strcmp(op, "make") == 0)
		return run_backup_make(env, req, p, actor);
	if (strcmp(op, "verify") == 0)
		return run_check_record(env, "verify", req, actor);
	if (strcmp(op, "list") != 0)
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"op\" of "
		    "backup is make, list or verify"));
	if ((r = arg_bool(req, "json", &json)) != 0 ||
	    (r = text_open(&t)) != 0)
		return reply_fail(r);
	rd_lock(env);
	r = ck_backup_catalogue_fprint(env->rd, json, t.f, t.f);
	rd_unlock(env);
	if (r == 0)
		r = text_close(&t);
	j = r == 0 ? reply_ok(t.buf, NULL) : reply_fail(r);
	text_free(&t);
	return j;
}

/* Custody entries are the ledger's writes: on the write path. */
struct custody_args {
	const char *event, *artefact, *kind, *kind_guess, *place, *detail;
	const char *op;
	int64_t id;
};

static int
custody_count_cb(const struct store_custody *e, void *arg)
{
	(void)e;
	(*(int64_t *)arg)++;
	return 0;
}

static int
custody_add_fn(struct ck_ca *ca, void *arg)
{
	struct custody_args *a = arg;
	unsigned char hash[32];
	int64_t n = 0;
	int r;

	/* The file's extension names the kind of a new artefact only. */
	if (a->kind == NULL && a->kind_guess != NULL) {
		if ((r = store_custody_iter(ca->st, a->artefact,
		    custody_count_cb, &n)) != 0)
			return r;
		if (n == 0)
			a->kind = a->kind_guess;
	}
	if ((r = ck_custody_record(ca, a->event, a->artefact, a->kind,
	    a->place, a->detail, a->op)) != 0)
		return r;
	return store_custody_last(ca->st, &a->id, hash);
}

static int
custody_print(const struct store_custody *e, void *arg)
{
	FILE *f = arg;
	char t[32];

	ck_time_format(e->time, t, sizeof(t));
	fprintf(f, "%5lld %-20s %-12s %-9s %-11s %-24s %.12s%s%s\n",
	    (long long)e->id, t, e->operator_name, e->event, e->kind,
	    e->place, e->artefact, e->detail[0] ? " -- " : "", e->detail);
	return 0;
}

static json_t *
run_custody(struct admin_env *env, const json_t *req, const char *actor)
{
	struct custody_args a;
	struct ck_custody_report rep;
	const char *op, *who;
	char out[512], opbuf[300], *text = NULL;
	struct text t;
	json_t *j;
	int r, json;

	memset(&a, 0, sizeof(a));
	if ((r = arg_str(req, "op", 1, &op)) != 0 ||
	    (r = arg_str(req, "artefact", strcmp(op, "add") == 0,
	    &a.artefact)) != 0)
		return reply_fail(r);
	if (a.artefact != NULL && (strlen(a.artefact) != 64 ||
	    strspn(a.artefact, "0123456789abcdef") != 64))
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"artefact\" "
		    "is a SHA-256 (64 lower-case hex digits)"));
	if (strcmp(op, "add") == 0) {
		if ((r = arg_str(req, "event", 1, &a.event)) != 0 ||
		    (r = arg_str(req, "place", 1, &a.place)) != 0 ||
		    (r = arg_str(req, "kind", 0, &a.kind)) != 0 ||
		    (r = arg_str(req, "kind_guess", 0, &a.kind_guess)) != 0 ||
		    (r = arg_str(req, "detail", 0, &a.detail)) != 0 ||
		    (r = arg_str(req, "operator", 0, &who)) != 0)
			return reply_fail(r);
		if (a.kind_guess != NULL &&
		    ck_custody_kind_parse(a.kind_guess) < 0)
			return reply_fail(ck_err_set(CK_E_INVAL, "request: "
			    "\"kind_guess\" is not a kind"));
		/* The caller handed it over, or says for whom. */
		a.op = actor != NULL ? actor : audit_actor();
		if (who != NULL && actor != NULL && strcmp(who, actor) != 0) {
			snprintf(opbuf, sizeof(opbuf), "%.150s (for %.128s)",
			    actor, who);
			a.op = opbuf;
		}
		if ((r = env_write(env, actor, custody_add_fn, &a)) != 0)
			return reply_fail(r);
		snprintf(out, sizeof(out), "Recorded custody entry %lld: %s, "
		    "artefact %.16s...\n", (long long)a.id, a.event,
		    a.artefact);
		return reply_ok(out, NULL);
	}
	if (strcmp(op, "verify") == 0) {
		memset(&rep, 0, sizeof(rep));
		rd_lock(env);
		r = ck_custody_verify_store(env->rd, &rep);
		rd_unlock(env);
		if (r == CK_E_TAMPER) {
			snprintf(out, sizeof(out), "custody ledger TAMPERED: "
			    "entry %lld: %.200s (%lld entries before it "
			    "verified)", (long long)rep.first_bad, rep.reason,
			    (long long)rep.entries);
			return reply_err(CK_E_TAMPER, out, 0);
		}
		if (r != 0)
			return reply_fail(r);
		snprintf(out, sizeof(out), "custody ledger intact: %lld entries "
		    "verified\n", (long long)rep.entries);
		return reply_ok(out, NULL);
	}
	if (strcmp(op, "show") != 0)
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"op\" of "
		    "custody is add, show or verify"));
	if ((r = arg_bool(req, "json", &json)) != 0)
		return reply_fail(r);
	if (json) {
		rd_lock(env);
		r = ck_custody_list_json(env->rd, a.artefact, &text);
		rd_unlock(env);
		if (r != 0)
			return reply_fail(r);
		j = reply_ok(text, NULL);
		free(text);
		return j;
	}
	if ((r = text_open(&t)) != 0)
		return reply_fail(r);
	fprintf(t.f, "%5s %-20s %-12s %-9s %-11s %-24s %s\n", "ID", "TIME",
	    "OPERATOR", "EVENT", "KIND", "PLACE", "DIGEST");
	rd_lock(env);
	r = store_custody_iter(env->rd, a.artefact, custody_print, t.f);
	rd_unlock(env);
	if (r == 0)
		r = text_close(&t);
	j = r == 0 ? reply_ok(t.buf, NULL) : reply_fail(r);
	text_free(&t);
	return j;
}

/* ---- configuration ---------------------------------------------------- */

static int
reload_note_fn(struct ck_ca *ca, void *arg)
{
	(void)arg;
	return audit_append(ca->st, NULL, "config", "reload", AUDIT_OK,
	    "reload requested through the admin interface");
}

/* "config" through certkeepd: a reload only (what SIGHUP does, for a
 * ca-admin who cannot signal the service user's process). Installing a
 * CA certificate changes the home's files: the owner's, offline. */
static json_t *
run_config(struct admin_env *env, const json_t *req, const char *actor)
{
	const char *op;
	int r;

	if ((r = arg_str(req, "op", 1, &op)) != 0)
		return reply_fail(r);
	if (strcmp(op, "reload") != 0)
		return reply_fail(ck_err_set(CK_E_INVAL, "request: \"op\" of "
		    "config is reload (ca install is offline work of the "
		    "home's owner)"));
	if (env->pl == NULL)
		return reply_fail(ck_err_set(CK_E_STATE, "a reload through the "
		    "admin interface needs certkeepd"));
	if ((r = env_write(env, actor, reload_note_fn, NULL)) != 0)
		return reply_fail(r);
	/* certkeepd's signal thread takes it, as from 'service reload'. */
	if (kill(getpid(), SIGHUP) != 0)
		return reply_fail(ck_err_set(CK_E_INTERNAL, "cannot signal "
		    "certkeepd: %s", strerror(errno)));
	return reply_ok("certkeepd is reloading\n", NULL);
}

/* Judge, then run a write action as D's actor. */
static json_t *
run_write(struct admin_env *env, enum authz_action action,
    const json_t *req, const struct authz_principal *pr, const char *actor)
{
	struct revoke_args rv;
	struct token_args ta;
	struct operator_args oa;
	const char *role = NULL, *cert = NULL;
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
	case AUTHZ_ISSUE:
		return run_issue(env, req, pr, actor);
	case AUTHZ_EAB_CREATE:
		return run_eab_create(env, req, actor);
	case AUTHZ_EAB_REVOKE: {
		struct eab_args ea;
		memset(&ea, 0, sizeof(ea));
		if ((r = arg_str(req, "kid", 1, &ea.kid)) != 0 ||
		    (r = env_write(env, actor, eab_revoke_fn, &ea)) != 0)
			return reply_fail(r);
		snprintf(out, sizeof(out), "Revoked EAB key id %s.\n", ea.kid);
		return reply_ok(out, NULL);
	}
	case AUTHZ_CRL:
		return run_crl(env, actor);
	case AUTHZ_AUDIT_CHECKPOINT:
		return run_checkpoint(env, actor);
	case AUTHZ_OPERATOR_CERT:
		if ((r = arg_str(req, "name", 1, &oa.name)) != 0 ||
		    (r = arg_cert(req, &cert)) != 0)
			return reply_fail(r);
		if (cert != NULL && (r = operator_cert_check(env, oa.name, cert,
		    oa.cert_sha256)) != 0)
			return reply_fail(r);
		break;
	case AUTHZ_OPERATOR_ADD:
	case AUTHZ_OPERATOR_GRANT:
		if ((r = arg_str(req, "name", 1, &oa.name)) != 0 ||
		    (r = arg_str(req, "role", 1, &role)) != 0 ||
		    (action == AUTHZ_OPERATOR_ADD &&
		    ((r = arg_str(req, "os_user", 0, &oa.os_user)) != 0 ||
		    (r = arg_cert(req, &cert)) != 0)))
			return reply_fail(r);
		if (action == AUTHZ_OPERATOR_ADD && oa.os_user == NULL &&
		    cert == NULL)
			return reply_fail(ck_err_set(CK_E_INVAL, "request: "
			    "\"os_user\" or \"cert\" is needed to know the "
			    "operator by"));
		if (cert != NULL && (r = operator_cert_check(env, oa.name, cert,
		    oa.cert_sha256)) != 0)
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
		if (oa.os_user != NULL)
			snprintf(out, sizeof(out), "Operator %s (OS user %s) is "
			    "%s.\n", oa.name, oa.os_user,
			    store_role_name(oa.role));
		else
			snprintf(out, sizeof(out), "Operator %s (certificate "
			    "%.16s...) is %s.\n", oa.name, oa.cert_sha256,
			    store_role_name(oa.role));
		break;
	case AUTHZ_OPERATOR_CERT:
		if (oa.cert_sha256[0] != '\0')
			snprintf(out, sizeof(out), "Operator %s is known by the "
			    "certificate of SHA-256 %s now.\n", oa.name,
			    oa.cert_sha256);
		else
			snprintf(out, sizeof(out), "Operator %s has no "
			    "certificate now.\n", oa.name);
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

/* The action REQ names, if served here; -1 with a message if not. */
static int
request_action(const json_t *req)
{
	const char *name;
	int action;

	if (!json_is_object(req))
		return ck_err_set(CK_E_INVAL, "a request is a JSON object"), -1;
	if (arg_str(req, "action", 1, &name) != 0)
		return -1;
	/* Only what certkeepd serves; the rest of the table is checked by
	 * the CLI where the command runs. */
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
	case AUTHZ_OPERATOR_CERT:
	case AUTHZ_AUDIT_SHOW:
	case AUTHZ_AUDIT_VERIFY:
	case AUTHZ_AUDIT_EXPORT:
	case AUTHZ_AUDIT_CHECKPOINT:
	case AUTHZ_ISSUE:
	case AUTHZ_CRL:
	case AUTHZ_CERT_LIST:
	case AUTHZ_CERT_SHOW:
	case AUTHZ_EAB_CREATE:
	case AUTHZ_EAB_LIST:
	case AUTHZ_EAB_REVOKE:
	case AUTHZ_APPROVE:
	case AUTHZ_DENY:
	case AUTHZ_REQUEST_LIST:
	case AUTHZ_BACKUP:
	case AUTHZ_DRILL:
	case AUTHZ_CUSTODY:
	case AUTHZ_CONFIG:
		return action;
	default:
		ck_err_set(CK_E_INVAL, "unknown admin action '%.40s'", name);
		return -1;
	}
}

json_t *
admin_exec_as(struct admin_env *env, const struct authz_principal *p,
    const json_t *req)
{
	struct authz_decision d;
	struct refusal rf;
	const char *actor;
	int action, r;

	ck_err_clear();
	if ((action = request_action(req)) < 0)
		return reply_fail(CK_E_INVAL);
	rd_lock(env);
	r = authz_decide(env->rd, p, action, &d);
	rd_unlock(env);
	if (r != 0)
		return reply_fail(r);
	if (!d.allowed) {
		char why[sizeof(d.reason) + 128];
		uint64_t over = 0;

		rf.actor = d.actor;
		rf.action = authz_action_name(action);
		rf.object = action_object(req);
		rf.reason = why;
		snprintf(why, sizeof(why), "%s", d.reason);
		if (env->refusals == NULL ||
		    ck_budget_take(env->refusals, &over)) {
			if (env->refusals != NULL)
				ck_budget_reason(env->refusals, over, d.reason,
				    why, sizeof(why));
			if ((r = env_write(env, d.actor, refusal_write,
			    &rf)) != 0)
				return reply_fail(r);
		}
		return reply_err(CK_E_POLICY, d.reason, 1);
	}
	/* The owner acting as owner in the CLI: as before operators, the
	 * log names whoever ran certkeep (root stays root). */
	actor = env->pl == NULL && !p->is_operator ? NULL : d.actor;
	switch (action) {
	case AUTHZ_TOKEN_LIST:
	case AUTHZ_OPERATOR_LIST:
	case AUTHZ_AUDIT_SHOW:
	case AUTHZ_AUDIT_VERIFY:
	case AUTHZ_AUDIT_EXPORT:
	case AUTHZ_CERT_LIST:
	case AUTHZ_CERT_SHOW:
	case AUTHZ_EAB_LIST:
	case AUTHZ_REQUEST_LIST:
		return run_read(env, action, req, actor, p->is_operator);
	case AUTHZ_APPROVE:
	case AUTHZ_DENY:
		return run_decision(env, action, req, p, &d, actor);
	case AUTHZ_BACKUP:
		return run_backup(env, req, p, actor);
	case AUTHZ_DRILL:
		return run_drill(env, req, actor);
	case AUTHZ_CUSTODY:
		return run_custody(env, req, actor);
	case AUTHZ_CONFIG:
		return run_config(env, req, actor);
	default:
		return run_write(env, action, req, p, actor);
	}
}

json_t *
admin_exec(struct admin_env *env, uid_t peer, const json_t *req)
{
	struct authz_principal p;
	int r;

	ck_err_clear();
	if (request_action(req) < 0)
		return reply_fail(CK_E_INVAL);
	rd_lock(env);
	r = authz_principal_load(env->rd, peer, env->owner, &p);
	rd_unlock(env);
	if (r != 0)
		return reply_fail(r);
	return admin_exec_as(env, &p, req);
}
