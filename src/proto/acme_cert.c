/*
 * acme_cert.c - ACME finalize (RFC 8555 7.4), certificate download
 * (7.4.2), revocation (7.6) and renewal information (RFC 9773).
 *
 * Finalize takes a ready order through three durable steps: the order
 * becomes "processing" with the serial of the certificate about to be
 * signed; the certificate is issued by the pipeline (logged, signed,
 * recorded like any other); the order becomes "valid". The client is
 * answered after the last one. If certkeepd stops in between, the order
 * is settled at the next start from the certificate's row: issued (or
 * since revoked) makes it valid, anything else invalid.
 *
 * Under a profile with approvals (src/ca/approval.h) finalize keeps the
 * CSR as a request awaiting approval and the order processing (RFC 8555
 * 7.4 allows the wait; the order carries Retry-After); the approval that
 * completes the count makes it valid, a denial invalid. Such orders are
 * not settled here: they wait for their request.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/audit.h"
#include "ca/approval.h"
#include "ca/ca.h"
#include "ca/config.h"
#include "ca/pipeline.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "daemon/server.h"
#include "profile/profile.h"
#include "proto/acme.h"
#include "proto/acme_int.h"
#include "x509/csr.h"
#include "x509/names.h"
#include "x509/serial.h"

/* ---- refusals: audited, then answered ---- */

struct acme_refusal {
	struct server *sv;
	struct http_pending *pending;
	char base[ACME_BASE_SIZE];
	char user[96];
	char action[32];
	char object[96];
	char profile[64];	/* "issue" refusals: the profile */
	int status;
	char type[48];
	char reason[640];
};

static int
refusal_write(struct ck_ca *ca, void *arg)
{
	struct acme_refusal *rf = arg;

	if (rf->profile[0] != '\0')
		return ck_ca_audit_refusal(ca, rf->user, rf->profile,
		    rf->reason);
	return audit_append(ca->st, rf->user, rf->action, rf->object,
	    AUDIT_REFUSED, rf->reason);
}

static void
refusal_done(void *arg, int r, const char *msg)
{
	struct acme_refusal *rf = arg;
	struct http_response resp;
	struct acme_ctx cx;

	memset(&resp, 0, sizeof(resp));
	acme_ctx_for(&cx, rf->sv, rf->base);
	if (r != 0)
		acme_problem(&cx, &resp, 500, "serverInternal", "the refusal "
		    "could not be recorded: %s", msg ? msg : ck_strerror(r));
	else
		acme_problem(&cx, &resp, rf->status, rf->type, "%s",
		    rf->reason);
	http_pending_finish(rf->pending, &resp);
	free(rf);
}

/* Refuse a request after recording why in the audit log (an issuance
 * refusal when PROFILE is set). */
static enum http_result
refuse(struct acme_ctx *cx, const struct http_request *req,
    struct http_response *resp, const char *user, const char *action,
    const char *object, const char *profile, int status, const char *type,
    const char *reason)
{
	struct acme_refusal *rf = calloc(1, sizeof(*rf));

	atomic_fetch_add(&cx->sv->m.refused, 1);
	if (rf == NULL) {
		acme_problem(cx, resp, 500, "serverInternal", "out of memory");
		return HTTP_DONE;
	}
	rf->sv = cx->sv;
	rf->pending = req->pending;
	snprintf(rf->base, sizeof(rf->base), "%s", cx->base);
	snprintf(rf->user, sizeof(rf->user), "%s", user);
	snprintf(rf->action, sizeof(rf->action), "%s", action);
	snprintf(rf->object, sizeof(rf->object), "%s", object);
	snprintf(rf->profile, sizeof(rf->profile), "%s", profile ? profile :
	    "");
	rf->status = status;
	snprintf(rf->type, sizeof(rf->type), "%s", type);
	snprintf(rf->reason, sizeof(rf->reason), "%s", reason);
	ck_pipeline_write(cx->sv->pl, refusal_write, rf, refusal_done, rf);
	return HTTP_DEFERRED;
}

/* ---- the identifiers of a CSR against those of its order ---- */

struct idset {
	char (*v)[ACME_IDENT_SIZE + 8];	/* "dns:NAME", "ip:ADDR" */
	size_t n, cap;
};

static int
idset_add(struct idset *s, const char *type, const char *value)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strncmp(s->v[i], type, strlen(type)) == 0 &&
		    strcmp(s->v[i] + strlen(type) + 1, value) == 0)
			return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 8;
		void *nv = realloc(s->v, nc * sizeof(*s->v));
		if (nv == NULL)
			return CK_E_NOMEM;
		s->v = nv;
		s->cap = nc;
	}
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s:%s", type, value);
	return 0;
}

static int
idset_has(const struct idset *s, const char *item)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i], item) == 0)
			return 1;
	return 0;
}

/* A name from a CSR as an identifier: lower-case DNS, canonical IP.
 * -1 for anything ACME does not order. */
static int
csr_ident(enum ck_name_type t, const char *value, struct idset *s)
{
	char buf[ACME_IDENT_SIZE + 8], ip[INET6_ADDRSTRLEN];
	size_t i;

	if (t == CK_NAME_DNS) {
		if (strlen(value) >= ACME_IDENT_SIZE)
			return -1;
		for (i = 0; value[i] != '\0'; i++)
			buf[i] = (char)((value[i] >= 'A' && value[i] <= 'Z') ?
			    value[i] + 32 : value[i]);
		buf[i] = '\0';
		return idset_add(s, "dns", buf) == 0 ? 0 : -2;
	}
	if (t == CK_NAME_IP) {
		(void)ck_ip_canon(value, ip);
		if (ip[0] == '\0')
			return -1;
		return idset_add(s, "ip", ip) == 0 ? 0 : -2;
	}
	return -1;
}

static int
order_ids_cb(const struct store_acme_authz *a, void *arg)
{
	char v[ACME_IDENT_SIZE + 2];

	snprintf(v, sizeof(v), "%s%s", a->wildcard ? "*." : "",
	    a->identifier_value);
	return idset_add(arg, a->identifier_type, v);
}

/*
 * RFC 8555 7.4: the CSR names exactly the order's identifiers, in its
 * subjectAltName, its commonName or both, and nothing else. 0, or -1 with
 * the reason in why.
 */
static int
csr_matches_order(const struct ck_csr *csr, const struct idset *order,
    char *why, size_t whylen)
{
	struct idset got;
	const char *cn;
	char ip[INET6_ADDRSTRLEN];
	size_t i;
	int r = 0;

	memset(&got, 0, sizeof(got));
	for (i = 0; i < csr->names.n && r == 0; i++) {
		if (csr_ident(csr->names.v[i].type, csr->names.v[i].value,
		    &got) != 0) {
			snprintf(why, whylen, "the CSR names %s:%s, which is "
			    "not an identifier of the order",
			    ck_name_type_label(csr->names.v[i].type),
			    csr->names.v[i].value);
			r = -1;
		}
	}
	if (r == 0 && (cn = ck_csr_subject_get(csr, "CN")) != NULL) {
		(void)ck_ip_canon(cn, ip);
		if (csr_ident(ip[0] ? CK_NAME_IP : CK_NAME_DNS, cn, &got) !=
		    0) {
			snprintf(why, whylen, "the CSR's commonName '%.200s' "
			    "is not an identifier of the order", cn);
			r = -1;
		}
	}
	for (i = 0; i < got.n && r == 0; i++)
		if (!idset_has(order, got.v[i])) {
			snprintf(why, whylen, "the CSR names %s, which the "
			    "order does not", got.v[i]);
			r = -1;
		}
	for (i = 0; i < order->n && r == 0; i++)
		if (!idset_has(&got, order->v[i])) {
			snprintf(why, whylen, "the CSR does not name %s, which "
			    "the order does", order->v[i]);
			r = -1;
		}
	free(got.v);
	return r;
}

/* ---- finalize ---- */

struct fin_job {
	struct server *sv;
	struct http_pending *pending;
	char base[ACME_BASE_SIZE];
	char order_id[STORE_ACME_ID_SIZE];
	char account_id[STORE_ACME_ID_SIZE];
	char serial[CK_SERIAL_HEX_MAX];
	struct ck_issue_job *job;
	struct store_request rq; /* kept for approval instead (rq.csr set) */
	int failed;		/* issuance failed: the order becomes invalid */
	const char *ptype;	/* ... for this reason (RFC 8555 type) */
	char why[640];
};

static void
fin_free(struct fin_job *f)
{
	if (f == NULL)
		return;
	ck_issue_job_free(f->job);
	store_request_clear(&f->rq);
	free(f);
}

static void
fin_answer_order(struct fin_job *f, struct http_response *resp)
{
	struct store_acme_order o;
	struct acme_ctx cx;
	int r;

	memset(&o, 0, sizeof(o));
	pthread_mutex_lock(&f->sv->rd_mu);
	r = store_acme_order_get(f->sv->rd, f->order_id, &o);
	pthread_mutex_unlock(&f->sv->rd_mu);
	if (r != 0) {
		acme_ctx_for(&cx, f->sv, f->base);
		acme_problem(&cx, resp, 500, "serverInternal", "the order "
		    "cannot be read back");
	} else
		acme_order_respond(f->sv, f->base, resp, 200, &o);
	store_acme_order_clear(&o);
}

/* The last step: valid with the certificate, or invalid. */
static int
fin_end_write(struct ck_ca *ca, void *arg)
{
	struct fin_job *f = arg;
	char user[96], err[1024];
	json_t *p;
	char *s;
	int r;

	acme_user(f->account_id, user);
	if (!f->failed) {
		if ((r = store_acme_order_set_cert(ca->st, f->order_id,
		    f->serial)) != 0)
			return r;
		return audit_append(ca->st, user, "acme-order-valid",
		    f->order_id, AUDIT_OK, f->serial);
	}
	{
		char urn[96];
		snprintf(urn, sizeof(urn), "%s%s", ACME_ERR_PREFIX, f->ptype);
		p = json_pack("{s:s, s:s, s:i}", "type", urn, "detail",
		    f->why, "status", strcmp(f->ptype, "badCSR") == 0 ? 400 :
		    500);
	}
	s = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	snprintf(err, sizeof(err), "%s", s ? s : "{\"type\":\""
	    ACME_ERR_PREFIX "serverInternal\"}");
	free(s);
	if ((r = store_acme_order_transition(ca->st, f->order_id,
	    "processing", "invalid", err)) != 0)
		return r;
	return audit_append(ca->st, user, "acme-order-invalid", f->order_id,
	    AUDIT_FAILED, f->why);
}

static void
fin_end_done(void *arg, int r, const char *msg)
{
	struct fin_job *f = arg;
	struct http_response resp;
	struct acme_ctx cx;

	memset(&resp, 0, sizeof(resp));
	acme_ctx_for(&cx, f->sv, f->base);
	if (r != 0)
		acme_problem(&cx, &resp, 500, "serverInternal", "the order "
		    "could not be completed: %s", msg ? msg : ck_strerror(r));
	else if (f->failed)
		acme_problem(&cx, &resp, strcmp(f->ptype, "badCSR") == 0 ? 400 :
		    500, f->ptype, "%s", f->why);
	else {
		atomic_fetch_add(&f->sv->m.issued, 1);
		fin_answer_order(f, &resp);
	}
	http_pending_finish(f->pending, &resp);
	fin_free(f);
}

static void
fin_issued(void *arg, int r, const char *msg, struct ck_issue_job *job)
{
	struct fin_job *f = arg;

	ck_issue_job_free(job);
	if (r != 0) {
		f->failed = 1;
		/* The request's fault, or ours (the signer unavailable, the
		 * store): the client must be told which. */
		f->ptype = r == CK_E_POLICY || r == CK_E_PARSE ||
		    r == CK_E_BADSIG ? "badCSR" : "serverInternal";
		snprintf(f->why, sizeof(f->why), "the certificate could not "
		    "be issued: %s", msg ? msg : ck_strerror(r));
	}
	ck_pipeline_write(f->sv->pl, fin_end_write, f, fin_end_done, f);
}

struct name_limit {
	struct ck_ca *ca;
	unsigned limit;
	int64_t since;
};

static int
name_limit_cb(const struct store_acme_authz *a, void *arg)
{
	struct name_limit *nl = arg;
	int64_t n;
	int r;

	if ((r = store_acme_certs_for_name_since(nl->ca->st,
	    a->identifier_type, a->identifier_value, a->wildcard, nl->since,
	    &n)) != 0)
		return r;
	if (n >= (int64_t)nl->limit)
		return ck_err_set(CK_E_POLICY, "%lld certificates for %s%s in "
		    "the last week; the limit is %u", (long long)n,
		    a->wildcard ? "*." : "", a->identifier_value, nl->limit);
	return 0;
}

static int
fin_begin_write(struct ck_ca *ca, void *arg)
{
	struct fin_job *f = arg;
	struct name_limit nl;
	char user[96];
	int r;

	/* [acme] certs_per_name_per_week again, here on the committer: at
	 * newOrder, orders not yet finalized did not count. */
	nl.ca = ca;
	nl.limit = ca->cfg->acme.certs_per_name_per_week;
	nl.since = ck_time_now() - 7 * 86400;
	if (nl.limit != 0 && (r = store_acme_order_authzs(ca->st, f->order_id,
	    name_limit_cb, &nl)) != 0)
		return r;
	if ((r = store_acme_order_begin_issue(ca->st, f->order_id,
	    f->serial)) != 0)
		return r;
	acme_user(f->account_id, user);
	return audit_append(ca->st, user, "acme-order-finalize", f->order_id,
	    AUDIT_OK, f->serial);
}

static void
fin_begin_done(void *arg, int r, const char *msg)
{
	struct fin_job *f = arg;
	struct http_response resp;
	struct acme_ctx cx;
	struct ck_issue_job *job;

	if (r == 0) {
		job = f->job;
		f->job = NULL;
		ck_pipeline_issue(f->sv->pl, job, fin_issued, f);
		return;
	}
	memset(&resp, 0, sizeof(resp));
	acme_ctx_for(&cx, f->sv, f->base);
	if (r == CK_E_STATE)
		acme_problem(&cx, &resp, 403, "orderNotReady", "the order is "
		    "no longer ready (finalized by another request?)");
	else if (r == CK_E_POLICY) {
		acme_problem(&cx, &resp, 429, "rateLimited", "%s", msg ? msg :
		    "rate limited");
		resp.retry_after = 86400;
	} else
		acme_problem(&cx, &resp, 500, "serverInternal", "the order "
		    "could not be finalized: %s", msg ? msg : ck_strerror(r));
	http_pending_finish(f->pending, &resp);
	fin_free(f);
}

/* Finalize under a profile with approvals: the order waits, processing,
 * for its request. */
static int
fin_hold_write(struct ck_ca *ca, void *arg)
{
	struct fin_job *f = arg;
	char user[96], detail[64];
	int r;

	if ((r = store_acme_order_transition(ca->st, f->order_id, "ready",
	    "processing", NULL)) != 0)
		return r;
	if ((r = ck_request_record(ca, &f->rq)) != 0)
		return r;
	acme_user(f->account_id, user);
	snprintf(detail, sizeof(detail), "awaiting approval: request %lld",
	    (long long)f->rq.id);
	return audit_append(ca->st, user, "acme-order-finalize", f->order_id,
	    AUDIT_OK, detail);
}

static void
fin_hold_done(void *arg, int r, const char *msg)
{
	struct fin_job *f = arg;
	struct http_response resp;
	struct acme_ctx cx;

	memset(&resp, 0, sizeof(resp));
	acme_ctx_for(&cx, f->sv, f->base);
	if (r == CK_E_STATE)
		acme_problem(&cx, &resp, 403, "orderNotReady", "the order is "
		    "no longer ready (finalized by another request?)");
	else if (r != 0)
		acme_problem(&cx, &resp, 500, "serverInternal", "the order "
		    "could not be finalized: %s", msg ? msg : ck_strerror(r));
	else
		fin_answer_order(f, &resp);
	http_pending_finish(f->pending, &resp);
	fin_free(f);
}

/* Days of validity: [acme] days (or the profile's maximum), no later than
 * the order's notAfter. */
static uint32_t
fin_days(const struct server *sv, const struct store_acme_order *o,
    int64_t now)
{
	uint32_t days = sv->ca->cfg->acme.days;

	if (o->not_after > now) {
		int64_t d = (o->not_after - now) / 86400;
		if (d < 1)
			d = 1;
		if (days == 0 || (uint32_t)d < days)
			days = (uint32_t)d;
	}
	return days;
}

enum http_result
acme_finalize(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account acct;
	struct store_acme_order o;
	struct idset want;
	struct ck_csr *csr = NULL;
	struct ck_issue_params ip;
	struct fin_job *f = NULL;
	char id[STORE_ACME_ID_SIZE], user[96], why[640], profile[64];
	unsigned char *der = NULL;
	size_t der_len = 0, n;
	const char *st;
	json_t *p = NULL, *v;
	enum http_result hr = HTTP_DONE;
	int r;

	memset(&o, 0, sizeof(o));
	memset(&want, 0, sizeof(want));
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	n = strlen(req->path);
	if (n <= strlen("/acme/order/") + 9 || n - 9 - strlen("/acme/order/")
	    >= STORE_ACME_ID_SIZE) {
		acme_problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	memcpy(id, req->path + 12, n - 9 - 12);
	id[n - 9 - 12] = '\0';
	if (strchr(id, '/') != NULL) {
		acme_problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &acct) != 0)
		return HTTP_DONE;
	if ((p = acme_payload_object(&cx, jws, resp)) == NULL)
		goto out;
	v = json_object_get(p, "csr");
	if (!json_is_string(v)) {
		acme_problem(&cx, resp, 400, "malformed", "\"csr\" (base64url "
		    "DER) is missing");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_order_get(cx.sv->rd, id, &o);
	if (r == 0)
		r = store_acme_order_authzs(cx.sv->rd, id, order_ids_cb, &want);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (acme_own_object(&cx, resp, r, "order", o.account_id, acct.id) !=
	    0)
		goto out;
	st = acme_order_status_now(&o, ck_time_now());
	if (strcmp(st, "ready") != 0) {
		acme_problem(&cx, resp, 403, "orderNotReady", "the order is "
		    "%s, not ready", st);
		goto out;
	}
	ck_err_clear();
	if (ck_jws_b64url_decode(json_string_value(v),
	    json_string_length(v), "csr", &der, &der_len) != 0) {
		acme_problem(&cx, resp, 400, "badCSR", "%s", ck_err_msg());
		goto out;
	}
	ck_err_clear();
	if ((r = ck_csr_parse(der, der_len, &csr)) != 0) {
		acme_problem(&cx, resp, 400, "badCSR", "%s", ck_err_msg());
		goto out;
	}
	if (csr_matches_order(csr, &want, why, sizeof(why)) != 0) {
		acme_problem(&cx, resp, 400, "badCSR", "%s", why);
		goto out;
	}
	{
		EVP_PKEY *ak = NULL;
		int same = 0;
		if (ck_jwk_parse_text(acct.jwk, strlen(acct.jwk), &ak) == 0)
			same = ck_jwk_equal(ak, csr->pubkey);
		EVP_PKEY_free(ak);
		if (same) {
			acme_problem(&cx, resp, 400, "badCSR", "the CSR's key "
			    "is the account key");
			goto out;
		}
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	acme_user(acct.id, user);
	memset(&ip, 0, sizeof(ip));
	ip.csr = der;
	ip.csr_len = der_len;
	ip.profile = profile;
	ip.path_len = -1;
	ip.requester = user;
	/* The configuration is swapped under the write lock (SIGHUP). */
	pthread_rwlock_rdlock(&cx.sv->lock);
	snprintf(profile, sizeof(profile), "%s", acme_profile_name(cx.sv));
	ip.days = fin_days(cx.sv, &o, ck_time_now());
	ck_err_clear();
	r = ck_issue_prepare(cx.sv->ca, &ip, NULL, &f->job);
	if (r == 0) {
		const struct ck_profile *ap = ck_config_profile(
		    cx.sv->ca->cfg, profile);
		if (ap != NULL && ap->approvals > 0) {
			struct ck_request_origin ro;
			memset(&ro, 0, sizeof(ro));
			ro.requester = user;
			ro.acme_order = o.id;
			ck_issue_job_free(f->job);
			f->job = NULL;
			r = ck_request_build(cx.sv->ca, &ip, &ro, &f->rq);
		}
	}
	pthread_rwlock_unlock(&cx.sv->lock);
	if (r != 0) {
		snprintf(why, sizeof(why), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		hr = refuse(&cx, req, resp, user, "issue", o.id, ip.profile,
		    r == CK_E_POLICY || r == CK_E_PARSE || r == CK_E_BADSIG ?
		    400 : 500, r == CK_E_POLICY || r == CK_E_PARSE ||
		    r == CK_E_BADSIG ? "badCSR" : "serverInternal", why);
		goto out;
	}
	f->sv = cx.sv;
	f->pending = req->pending;
	snprintf(f->base, sizeof(f->base), "%s", cx.base);
	snprintf(f->order_id, sizeof(f->order_id), "%s", o.id);
	snprintf(f->account_id, sizeof(f->account_id), "%s", acct.id);
	if (f->job == NULL) {
		ck_pipeline_write(cx.sv->pl, fin_hold_write, f, fin_hold_done,
		    f);
		f = NULL;
		hr = HTTP_DEFERRED;
		goto out;
	}
	snprintf(f->serial, sizeof(f->serial), "%s",
	    ck_issue_job_serial(f->job));
	ck_pipeline_write(cx.sv->pl, fin_begin_write, f, fin_begin_done, f);
	f = NULL;
	hr = HTTP_DEFERRED;
out:
	fin_free(f);
	ck_csr_free(csr);
	free(der);
	free(want.v);
	json_decref(p);
	store_acme_order_clear(&o);
	store_acme_account_clear(&acct);
	ck_jws_free(jws);
	return hr;
}

/* ---- orders a stop left processing ---- */

struct settle {
	struct server *sv;
	size_t n;
};

static int
settle_one(struct ck_ca *ca, const char *id)
{
	struct store_acme_order o;
	struct store_cert *c = NULL;
	int r, ok;

	memset(&o, 0, sizeof(o));
	if ((r = store_acme_order_get(ca->st, id, &o)) != 0)
		return r;
	if (strcmp(o.status, "processing") != 0) {
		store_acme_order_clear(&o);
		return 0;
	}
	{
		/* Waiting for approval, or for its approved request to be
		 * issued (src/ca/approval.h): not ours to settle. */
		struct store_request rq;
		r = store_request_by_acme_order(ca->st, id, &rq);
		if (r == 0 && (rq.status == STORE_REQUEST_PENDING ||
		    rq.status == STORE_REQUEST_APPROVED)) {
			store_request_clear(&rq);
			store_acme_order_clear(&o);
			return 0;
		}
		store_request_clear(&rq);
		if (r != 0 && r != CK_E_NOTFOUND) {
			store_acme_order_clear(&o);
			return r;
		}
		ck_err_clear();
	}
	r = o.cert_serial[0] ? store_cert_get(ca->st, o.cert_serial, &c) :
	    CK_E_NOTFOUND;
	if (r != 0 && r != CK_E_NOTFOUND) {
		store_acme_order_clear(&o);
		return r;
	}
	ok = r == 0 && (c->status == STORE_CERT_ISSUED ||
	    c->status == STORE_CERT_REVOKED);
	store_cert_free(c);
	if (ok)
		r = store_acme_order_set_cert(ca->st, id, o.cert_serial);
	else
		r = store_acme_order_transition(ca->st, id, "processing",
		    "invalid", "{\"type\":\"" ACME_ERR_PREFIX "serverInternal"
		    "\",\"detail\":\"the server stopped while issuing the "
		    "certificate; order again\",\"status\":500}");
	if (r == 0) {
		char user[96];
		acme_user(o.account_id, user);
		r = audit_append(ca->st, user, ok ? "acme-order-valid" :
		    "acme-order-invalid", id, ok ? AUDIT_OK : AUDIT_FAILED,
		    "settled at start");
	}
	store_acme_order_clear(&o);
	return r;
}

static int
settle_cb(const char *id, void *arg)
{
	char (**ids)[STORE_ACME_ID_SIZE] = arg;
	size_t n = 0;
	void *nv;

	while ((*ids)[n][0] != '\0')
		n++;
	if ((nv = realloc(*ids, (n + 2) * sizeof(**ids))) == NULL)
		return CK_E_NOMEM;
	*ids = nv;
	snprintf((*ids)[n], STORE_ACME_ID_SIZE, "%s", id);
	(*ids)[n + 1][0] = '\0';
	return 0;
}

static int
settle_write(struct ck_ca *ca, void *arg)
{
	char (*ids)[STORE_ACME_ID_SIZE] = arg;
	size_t i;
	int r;

	for (i = 0; ids[i][0] != '\0'; i++)
		if ((r = settle_one(ca, ids[i])) != 0)
			return r;
	return 0;
}

int
acme_orders_settle(struct server *sv)
{
	char (*ids)[STORE_ACME_ID_SIZE];
	int r;

	if ((ids = calloc(1, sizeof(*ids))) == NULL)
		return CK_E_NOMEM;
	pthread_mutex_lock(&sv->rd_mu);
	r = store_acme_order_ids_in(sv->rd, "processing", settle_cb, &ids);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r == 0 && ids[0][0] != '\0')
		r = ck_pipeline_write_wait(sv->pl, settle_write, ids, NULL, 0);
	free(ids);
	return r;
}

/* ---- certificate download ---- */

enum http_result
acme_cert(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account acct;
	struct store_acme_order o;
	struct store_cert *c = NULL;
	char id[STORE_ACME_ID_SIZE], *pem = NULL, *body;
	size_t pemlen = 0;
	int r;

	memset(&o, 0, sizeof(o));
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	if (acme_path_id(req->path, "/acme/cert/", id) != 0) {
		acme_problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &acct) != 0)
		return HTTP_DONE;
	if (jws->payload_len != 0) {
		acme_problem(&cx, resp, 400, "malformed", "a certificate is "
		    "read with POST-as-GET (empty payload)");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_order_get(cx.sv->rd, id, &o);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (acme_own_object(&cx, resp, r, "certificate", o.account_id,
	    acct.id) != 0)
		goto out;
	if (strcmp(o.status, "valid") != 0 || o.cert_serial[0] == '\0') {
		acme_problem(&cx, resp, 404, "malformed", "no such "
		    "certificate");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_cert_get(cx.sv->rd, o.cert_serial, &c);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (r != 0 || c->der == NULL ||
	    ck_der_to_pem(c->der, c->der_len, &pem, &pemlen) != 0) {
		acme_problem(&cx, resp, 500, "serverInternal", "the "
		    "certificate cannot be read");
		goto out;
	}
	pthread_rwlock_rdlock(&cx.sv->lock);
	if ((body = malloc(pemlen + cx.sv->chain_len + 1)) != NULL) {
		memcpy(body, pem, pemlen);
		memcpy(body + pemlen, cx.sv->chain_pem, cx.sv->chain_len);
		pemlen += cx.sv->chain_len;
	}
	pthread_rwlock_unlock(&cx.sv->lock);
	if (body == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	http_respond_take(resp, 200, "application/pem-certificate-chain",
	    body, pemlen);
	acme_decorate(cx.sv, cx.base, resp);
out:
	free(pem);
	store_cert_free(c);
	store_acme_order_clear(&o);
	store_acme_account_clear(&acct);
	ck_jws_free(jws);
	return HTTP_DONE;
}

/* ---- revocation (RFC 8555 7.6) ---- */

struct rev_job {
	struct server_revocation rev;
	struct server *sv;
	struct http_pending *pending;
	char base[ACME_BASE_SIZE];
};

static void
rev_done(void *arg, int r, const char *msg)
{
	struct rev_job *rv = arg;
	struct http_response resp;
	struct acme_ctx cx;

	memset(&resp, 0, sizeof(resp));
	acme_ctx_for(&cx, rv->sv, rv->base);
	if (r != 0)
		acme_problem(&cx, &resp, 500, "serverInternal", "%s", msg ?
		    msg : ck_strerror(r));
	else if (rv->rev.r == CK_E_STATE)
		acme_problem(&cx, &resp, 400, "alreadyRevoked", "%s",
		    rv->rev.msg);
	else if (rv->rev.r != 0)
		acme_problem(&cx, &resp, 400, "malformed", "%s", rv->rev.msg);
	else {
		server_revoked(rv->sv);
		http_respond(&resp, 200, NULL, NULL, 0);
		acme_decorate(rv->sv, rv->base, &resp);
	}
	http_pending_finish(rv->pending, &resp);
	free(rv);
}

/* 1 if account ACCT holds a valid authorization for every name of X. */
static int
rev_authorized_by_names(struct server *sv, const char *acct, X509 *x)
{
	GENERAL_NAMES *gens;
	struct ck_names names;
	struct store_acme_authz a;
	char ip[INET6_ADDRSTRLEN];
	int64_t now = ck_time_now();
	size_t i;
	int ok = 1, r;

	memset(&names, 0, sizeof(names));
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL || ck_names_from_general(gens, &names) != 0 ||
	    names.n == 0)
		ok = 0;
	GENERAL_NAMES_free(gens);
	for (i = 0; ok && i < names.n; i++) {
		const char *v = names.v[i].value, *type = "dns";
		int wild = 0;
		if (names.v[i].type == CK_NAME_DNS) {
			if (strncmp(v, "*.", 2) == 0) {
				v += 2;
				wild = 1;
			}
		} else if (names.v[i].type == CK_NAME_IP) {
			(void)ck_ip_canon(v, ip);
			v = ip;
			type = "ip";
		} else {
			ok = 0;
			break;
		}
		memset(&a, 0, sizeof(a));
		pthread_mutex_lock(&sv->rd_mu);
		r = store_acme_authz_find_valid(sv->rd, acct, type, v, wild,
		    now, &a);
		pthread_mutex_unlock(&sv->rd_mu);
		store_acme_authz_clear(&a);
		if (r != 0)
			ok = 0;
	}
	ck_names_clear(&names);
	return ok;
}

enum http_result
acme_revoke_cert(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account acct;
	struct store_cert *c = NULL;
	struct rev_job *rv = NULL;
	unsigned char *der = NULL;
	const unsigned char *pp;
	size_t der_len = 0;
	char serial[CK_SERIAL_HEX_MAX], user[96];
	X509 *x = NULL;
	json_t *p = NULL, *v;
	enum http_result hr = HTTP_DONE;
	int reason = 0, r, allowed;

	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	if (acme_post_begin(&cx, req, resp, WANT_ANY, &jws, &acct) != 0)
		return HTTP_DONE;
	if ((p = acme_payload_object(&cx, jws, resp)) == NULL)
		goto out;
	v = json_object_get(p, "certificate");
	if (!json_is_string(v) || ck_jws_b64url_decode(json_string_value(v),
	    json_string_length(v), "certificate", &der, &der_len) != 0) {
		acme_problem(&cx, resp, 400, "malformed", "\"certificate\" "
		    "(base64url DER) is missing or not base64url");
		goto out;
	}
	if ((v = json_object_get(p, "reason")) != NULL) {
		if (!json_is_integer(v)) {
			acme_problem(&cx, resp, 400, "badRevocationReason",
			    "\"reason\" is not a number");
			goto out;
		}
		reason = (int)json_integer_value(v);
		/* RFC 8555 7.6 allows the RFC 5280 codes a subscriber may
		 * give: unspecified, keyCompromise, affiliationChanged,
		 * superseded, cessationOfOperation. */
		if (json_integer_value(v) != reason || !(reason == 0 ||
		    reason == 1 || reason == 3 || reason == 4 ||
		    reason == 5)) {
			acme_problem(&cx, resp, 400, "badRevocationReason",
			    "reason %" JSON_INTEGER_FORMAT " cannot be used: "
			    "use 0, 1, 3, 4 or 5", json_integer_value(v));
			goto out;
		}
	}
	pp = der;
	if ((x = d2i_X509(NULL, &pp, (long)der_len)) == NULL ||
	    pp != der + der_len ||
	    ck_serial_to_hex(X509_get0_serialNumber(x), serial) != 0) {
		ERR_clear_error();
		acme_problem(&cx, resp, 400, "malformed", "\"certificate\" is "
		    "not a DER certificate");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_cert_get(cx.sv->rd, serial, &c);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (r != 0 || c->der == NULL || c->der_len != der_len ||
	    memcmp(c->der, der, der_len) != 0) {
		acme_problem(&cx, resp, 404, "malformed", "this CA did not "
		    "issue that certificate");
		goto out;
	}
	if (c->status == STORE_CERT_REVOKED) {
		acme_problem(&cx, resp, 400, "alreadyRevoked", "the "
		    "certificate is already revoked");
		goto out;
	}
	if (jws->jwk != NULL) {
		/* Signed by the certificate's own key. */
		allowed = ck_jwk_equal(jws->jwk, X509_get0_pubkey(x));
		snprintf(user, sizeof(user), "acme:certificate-key");
	} else {
		acme_user(acct.id, user);
		allowed = (c->requester != NULL &&
		    strcmp(c->requester, user) == 0) ||
		    rev_authorized_by_names(cx.sv, acct.id, x);
	}
	if (!allowed) {
		char why[256];
		snprintf(why, sizeof(why), "revocation of %s refused: %s",
		    serial, jws->jwk != NULL ? "the request is not signed "
		    "by the certificate's key" : "the account neither "
		    "ordered the certificate nor holds authorizations for "
		    "all its names");
		hr = refuse(&cx, req, resp, jws->jwk != NULL ?
		    "acme:certificate-key" : user, "revoke", serial, NULL, 403,
		    "unauthorized", why);
		goto out;
	}
	if ((rv = calloc(1, sizeof(*rv))) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	rv->sv = cx.sv;
	rv->pending = req->pending;
	snprintf(rv->base, sizeof(rv->base), "%s", cx.base);
	snprintf(rv->rev.serial, sizeof(rv->rev.serial), "%s", serial);
	snprintf(rv->rev.requester, sizeof(rv->rev.requester), "%s", user);
	rv->rev.reason = reason;
	ck_pipeline_write(cx.sv->pl, server_revoke_write, &rv->rev, rev_done,
	    rv);
	hr = HTTP_DEFERRED;
out:
	X509_free(x);
	free(der);
	store_cert_free(c);
	json_decref(p);
	store_acme_account_clear(&acct);
	ck_jws_free(jws);
	return hr;
}

/* ---- renewal information (RFC 9773) ---- */

#define ARI_RETRY_AFTER_S (6 * 3600)

int
acme_certid_parse(struct server *sv, const char *certid,
    char serial[CK_SERIAL_HEX_MAX])
{
	const char *dot = strchr(certid, '.');
	unsigned char *aki = NULL, *sb = NULL;
	size_t aki_len = 0, sb_len = 0, i;
	char hex[2 * 64 + 1];
	const ASN1_OCTET_STRING *ski;
	const unsigned char *pp;
	X509 *ca = NULL;
	int r;

	if (dot == NULL || dot == certid || dot[1] == '\0' ||
	    strchr(dot + 1, '.') != NULL ||
	    ck_jws_b64url_decode(certid, (size_t)(dot - certid), "AKI", &aki,
	    &aki_len) != 0 || ck_jws_b64url_decode(dot + 1, strlen(dot + 1),
	    "serial", &sb, &sb_len) != 0 || sb_len == 0 || sb_len > 64) {
		r = ck_err_set(CK_E_PARSE, "not a certificate identifier "
		    "(RFC 9773 4.1)");
		goto out;
	}
	pp = sv->ca_der;
	if ((ca = d2i_X509(NULL, &pp, (long)sv->ca_der_len)) == NULL ||
	    (ski = X509_get0_subject_key_id(ca)) == NULL ||
	    (size_t)ASN1_STRING_length(ski) != aki_len ||
	    memcmp(ASN1_STRING_get0_data(ski), aki, aki_len) != 0) {
		ERR_clear_error();
		r = ck_err_set(CK_E_NOTFOUND, "the certificate was not issued "
		    "by this CA");
		goto out;
	}
	for (i = 0; i < sb_len; i++)
		snprintf(hex + 2 * i, 3, "%02X", sb[i]);
	if (ck_serial_normalize(hex, serial) != 0) {
		r = ck_err_set(CK_E_PARSE, "bad serial number");
		goto out;
	}
	r = 0;
out:
	X509_free(ca);
	free(aki);
	free(sb);
	return r;
}

/*
 * GET /acme/renewal-info/CERTID, CERTID = base64url(AKI keyIdentifier)
 * "." base64url(serial number bytes). The suggested window starts at
 * [acme] ari_percent of the certificate's life and ends half way from
 * there to its end; a revoked certificate should be replaced now.
 */
enum http_result
acme_renewal_info(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct store_cert *c = NULL;
	char serial[CK_SERIAL_HEX_MAX], t1[32], t2[32];
	int64_t start, end, life;
	unsigned pct;
	json_t *j;
	int r;

	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	ck_err_clear();
	if ((r = acme_certid_parse(cx.sv, req->path +
	    strlen("/acme/renewal-info/"), serial)) != 0) {
		acme_problem(&cx, resp, r == CK_E_NOTFOUND ? 404 : 400,
		    "malformed", "%s", ck_err_msg());
		return HTTP_DONE;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_cert_get(cx.sv->rd, serial, &c);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (r != 0 || (c->status != STORE_CERT_ISSUED &&
	    c->status != STORE_CERT_REVOKED)) {
		acme_problem(&cx, resp, 404, "malformed", "no such "
		    "certificate");
		goto out;
	}
	if (c->status == STORE_CERT_REVOKED) {
		start = c->revoked_at;
		end = c->revoked_at + 3600;
	} else {
		pthread_rwlock_rdlock(&cx.sv->lock);
		pct = cx.sv->ca->cfg->acme.ari_percent;
		pthread_rwlock_unlock(&cx.sv->lock);
		life = c->not_after - c->not_before;
		start = c->not_before + life * pct / 100;
		end = start + (c->not_after - start) / 2;
	}
	acme_time_str(start, t1);
	acme_time_str(end, t2);
	j = json_pack("{s:{s:s, s:s}}", "suggestedWindow", "start", t1, "end",
	    t2);
	acme_respond_json(cx.sv, cx.base, resp, 200, j);
	json_decref(j);
	resp->retry_after = ARI_RETRY_AFTER_S;
out:
	store_cert_free(c);
	return HTTP_DONE;
}
