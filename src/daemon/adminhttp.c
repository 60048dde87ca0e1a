/*
 * adminhttp.c - the admin requests over HTTPS (adminhttp.h).
 */
#include "daemon/adminhttp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/audit.h"
#include "authz/admin.h"
#include "authz/authz.h"
#include "common/err.h"
#include "common/log.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "daemon/adminsock.h"
#include "daemon/server.h"
#include "x509/serial.h"

/* One request waiting for a worker: what the handler copied. */
struct job {
	struct job *next;
	struct http_pending *pending;
	unsigned char *body;
	size_t body_len;
	int json_type;		/* the Content-Type was application/json */
	unsigned char *cert;	/* DER, or NULL */
	size_t cert_len;
	char peer[64];
};

struct adminhttp {
	struct server *sv;
	struct admin_env env;
	pthread_t threads[ADMINHTTP_THREADS];
	int nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	unsigned queued;
	int stopping;
	struct ck_budget refusals;	/* ADMINHTTP_REFUSALS_PER_S */
};

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->body);
	free(j->cert);
	free(j);
}

int
adminhttp_cert_check(struct ck_ca *ca, struct store *st,
    const unsigned char *der, size_t len, char *sha256hex, char *serial)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	const unsigned char *q = der;
	enum store_cert_status status;
	int64_t rat;
	X509 *x = NULL;
	int reason, r = CK_E_PERM;

	sha256hex[0] = serial[0] = '\0';
	if (len == 0 || len > 65536 ||
	    (x = d2i_X509(NULL, &q, (long)len)) == NULL ||
	    q != der + len) {
		r = ck_err_set(CK_E_PERM, "the client certificate does not "
		    "parse");
		goto out;
	}
	SHA256(der, len, md);
	ck_hex_encode(md, sizeof(md), sha256hex);
	if (ck_serial_to_hex(X509_get0_serialNumber(x), serial) != 0) {
		serial[0] = '\0';
		r = ck_err_set(CK_E_PERM, "the client certificate's serial "
		    "number is not one of ours");
		goto out;
	}
	/* GnuTLS checked the chain; this CA's own certificate must be the
	 * issuer (not a parent CA's other children). */
	if (ca->cert == NULL || X509_check_issued(ca->cert, x) != X509_V_OK ||
	    X509_verify(x, X509_get0_pubkey(ca->cert)) != 1) {
		r = ck_err_set(CK_E_PERM, "the client certificate was not "
		    "issued by this CA");
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		r = ck_err_set(CK_E_PERM, "the client certificate %s is not "
		    "within its validity", serial);
		goto out;
	}
	if (X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) != 1) {
		r = ck_err_set(CK_E_PERM, "the client certificate %s is not "
		    "for TLS client authentication", serial);
		goto out;
	}
	r = store_cert_status(st, serial, &status, &rat, &reason);
	if (r == CK_E_NOTFOUND || (r == 0 && status != STORE_CERT_ISSUED)) {
		r = ck_err_set(CK_E_PERM, "the client certificate %s is %s",
		    serial, r == CK_E_NOTFOUND ? "not in this CA's records" :
		    store_cert_status_name(status));
		goto out;
	}
	if (r != 0)
		goto out;
	r = 0;
out:
	X509_free(x);
	return r;
}

/* ---- answers ------------------------------------------------------------ */

static int
status_of(int code)
{
	switch (code) {
	case CK_E_POLICY:
	case CK_E_PERM:
		return 403;
	case CK_E_INVAL:
	case CK_E_PARSE:
	case CK_E_TOOBIG:
		return 400;
	case CK_E_NOTFOUND:
		return 404;
	case CK_E_STATE:
	case CK_E_EXISTS:
		return 409;
	case CK_E_BUSY:
		return 503;
	default:
		return 500;
	}
}

/*
 * A problem document (STATUS, TYPE, MSG) that is also a failed admin
 * reply: "ok": false, "code", "error" (as the CLI prints it after
 * "certkeep: "), "refused".
 */
static void
problem_reply(struct http_response *resp, int status, const char *type,
    int code, const char *error, int refused)
{
	const char *detail = error;
	json_t *j;
	char *s;

	if (strncmp(detail, "error: ", 7) == 0)
		detail += 7;
	http_problem(resp, status, type, "%s", detail);
	if ((j = json_loadb((const char *)resp->body, resp->body_len, 0,
	    NULL)) == NULL)
		return;
	if (json_object_set_new(j, "ok", json_false()) == 0 &&
	    json_object_set_new(j, "code", json_integer(code)) == 0 &&
	    json_object_set_new(j, "error", json_string(error)) == 0 &&
	    json_object_set_new(j, "refused", json_boolean(refused)) == 0 &&
	    (s = json_dumps(j, JSON_COMPACT)) != NULL) {
		free(resp->body);
		resp->body = (unsigned char *)s;
		resp->body_len = strlen(s);
	}
	json_decref(j);
}

/* The admin reply as the HTTP answer. */
static void
reply_answer(struct http_response *resp, json_t *reply)
{
	const char *err;
	json_int_t code;
	char *s;

	if (reply == NULL) {
		problem_reply(resp, 503, "internal", CK_E_NOMEM,
		    "error: out of memory", 0);
		return;
	}
	if (json_is_true(json_object_get(reply, "ok"))) {
		if ((s = json_dumps(reply, JSON_COMPACT)) == NULL) {
			problem_reply(resp, 503, "internal", CK_E_NOMEM,
			    "error: out of memory", 0);
			return;
		}
		http_respond_take(resp, 200, "application/json", s,
		    strlen(s));
		return;
	}
	err = json_string_value(json_object_get(reply, "error"));
	code = json_integer_value(json_object_get(reply, "code"));
	if (json_is_true(json_object_get(reply, "refused")))
		problem_reply(resp, 403, "forbidden", (int)code, err ? err :
		    "refused", 1);
	else
		problem_reply(resp, status_of((int)code), code == CK_E_TAMPER ?
		    "tampered" : "failed", (int)code, err ? err :
		    "error: the request failed", 0);
}

struct auth_refusal {
	char who[160], object[96], reason[600];
};

static int
auth_refusal_write(struct ck_ca *ca, void *arg)
{
	struct auth_refusal *a = arg;

	return audit_append(ca->st, a->who, "admin-authenticate", a->object,
	    AUDIT_REFUSED, a->reason);
}

/* Refuse a caller who is nobody here: audited (within the budget). */
static void
refuse_caller(struct adminhttp *ah, struct http_response *resp, int status,
    const char *who, const char *peer, const char *reason)
{
	struct auth_refusal a;
	char msg[1024];
	uint64_t over = 0;

	memset(&a, 0, sizeof(a));
	snprintf(a.who, sizeof(a.who), "%s@%s", who, peer);
	snprintf(a.object, sizeof(a.object), "POST %s", ADMINHTTP_PATH);
	if (ck_budget_take(&ah->refusals, &over)) {
		ck_budget_reason(&ah->refusals, over, reason, a.reason,
		    sizeof(a.reason));
		if (ck_pipeline_write_wait(ah->sv->pl, auth_refusal_write, &a,
		    msg, sizeof(msg)) != 0)
			ck_warn("admin over HTTPS: a refusal not audited: %s",
			    msg);
	}
	problem_reply(resp, status, status == 401 ? "unauthorized" :
	    "forbidden", CK_E_PERM, reason, 1);
}

/* Authenticate, judge and run one request. */
static void
run_job(struct adminhttp *ah, struct job *jb, struct http_response *resp)
{
	struct server *sv = ah->sv;
	struct authz_principal p;
	char hex[65], serial[CK_SERIAL_HEX_MAX], who[CK_SERIAL_HEX_MAX + 8];
	char reason[600];
	json_error_t jerr;
	json_t *req = NULL, *reply;
	int r;

	if (jb->cert == NULL) {
		refuse_caller(ah, resp, 401, "anonymous", jb->peer, "admin "
		    "requests need the TLS client certificate of an operator");
		return;
	}
	pthread_mutex_lock(&sv->rd_mu);
	r = adminhttp_cert_check(sv->ca, sv->rd, jb->cert, jb->cert_len, hex,
	    serial);
	snprintf(reason, sizeof(reason), "%s", ck_err_msg());
	if (r == 0)
		r = authz_principal_load_cert(sv->rd, hex, &p);
	pthread_mutex_unlock(&sv->rd_mu);
	snprintf(who, sizeof(who), "cert:%s", serial[0] ? serial : "?");
	if (r == CK_E_PERM) {
		refuse_caller(ah, resp, 401, who, jb->peer, reason);
		return;
	}
	if (r != 0) {
		problem_reply(resp, 500, "internal", r, ck_err_msg(), 0);
		return;
	}
	if (!p.is_operator) {
		snprintf(reason, sizeof(reason), "the client certificate %s "
		    "(SHA-256 %.16s...) is bound to no operator", serial, hex);
		refuse_caller(ah, resp, 403, who, jb->peer, reason);
		return;
	}
	if (!jb->json_type) {
		problem_reply(resp, 415, "content-type", CK_E_INVAL, "error: "
		    "send the request as application/json", 0);
		return;
	}
	if ((req = json_loadb((const char *)jb->body, jb->body_len,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
	    !json_is_object(req)) {
		snprintf(reason, sizeof(reason), "error: admin request: not a "
		    "JSON object%s%s", req == NULL ? ": " : "",
		    req == NULL ? jerr.text : "");
		json_decref(req);
		problem_reply(resp, 400, "malformed", CK_E_PARSE, reason, 0);
		return;
	}
	reply = admin_exec_as(&ah->env, &p, req);
	reply_answer(resp, reply);
	json_decref(reply);
	json_decref(req);
}

static void *
worker_main(void *arg)
{
	struct adminhttp *ah = arg;
	struct http_response resp;
	struct job *jb;

	for (;;) {
		pthread_mutex_lock(&ah->mu);
		while (ah->head == NULL && !ah->stopping)
			pthread_cond_wait(&ah->cv, &ah->mu);
		if ((jb = ah->head) == NULL) {
			pthread_mutex_unlock(&ah->mu);
			break;
		}
		ah->head = jb->next;
		if (ah->head == NULL)
			ah->tail = NULL;
		ah->queued--;
		pthread_mutex_unlock(&ah->mu);
		memset(&resp, 0, sizeof(resp));
		run_job(ah, jb, &resp);
		http_pending_finish(jb->pending, &resp);
		job_free(jb);
	}
	return NULL;
}

enum http_result
adminhttp_handle(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;
	struct adminhttp *ah = sv->adminhttp;
	struct job *jb;

	if (ah == NULL) {
		http_problem(resp, 503, "internal", "admin requests are not "
		    "served yet");
		return HTTP_DONE;
	}
	if ((jb = calloc(1, sizeof(*jb))) == NULL ||
	    (jb->body = malloc(req->body_len + 1)) == NULL ||
	    (req->client_cert != NULL &&
	    (jb->cert = malloc(req->client_cert_len)) == NULL)) {
		job_free(jb);
		http_problem(resp, 503, "internal", "out of memory");
		return HTTP_DONE;
	}
	memcpy(jb->body, req->body, req->body_len);
	jb->body[req->body_len] = '\0';
	jb->body_len = req->body_len;
	jb->json_type = req->content_type != NULL &&
	    strncasecmp(req->content_type, "application/json", 16) == 0;
	if (req->client_cert != NULL) {
		memcpy(jb->cert, req->client_cert, req->client_cert_len);
		jb->cert_len = req->client_cert_len;
	}
	snprintf(jb->peer, sizeof(jb->peer), "%s", req->peer);
	jb->pending = req->pending;
	pthread_mutex_lock(&ah->mu);
	if (ah->stopping || ah->queued >= ADMINHTTP_QUEUE_MAX) {
		pthread_mutex_unlock(&ah->mu);
		job_free(jb);
		http_problem(resp, 503, "busy", "too many admin requests at "
		    "once; try again");
		resp->retry_after = 1;
		return HTTP_DONE;
	}
	if (ah->tail != NULL)
		ah->tail->next = jb;
	else
		ah->head = jb;
	ah->tail = jb;
	ah->queued++;
	pthread_cond_signal(&ah->cv);
	pthread_mutex_unlock(&ah->mu);
	return HTTP_DEFERRED;
}

int
adminhttp_start(struct server *sv, struct adminhttp **out)
{
	struct adminhttp *ah;
	int r, i;

	if ((ah = calloc(1, sizeof(*ah))) == NULL)
		return CK_E_NOMEM;
	ah->sv = sv;
	ah->env.ca = sv->ca;
	ah->env.rd = sv->rd;
	ah->env.rd_mu = &sv->rd_mu;
	ah->env.cfg_lock = &sv->lock;
	ah->env.pl = sv->pl;
	ah->env.changed = adminsock_changed;
	ah->env.changed_arg = sv;
	ah->env.refusals = &ah->refusals;
	pthread_mutex_init(&ah->mu, NULL);
	pthread_cond_init(&ah->cv, NULL);
	ck_budget_init(&ah->refusals, ADMINHTTP_REFUSALS_PER_S);
	if ((r = admin_home_owner(sv->ca->home, &ah->env.owner)) != 0)
		goto fail;
	for (i = 0; i < ADMINHTTP_THREADS; i++) {
		if (pthread_create(&ah->threads[i], NULL, worker_main, ah) != 0)
			break;
		ah->nthreads++;
	}
	if (ah->nthreads == 0) {
		r = ck_err_set(CK_E_INTERNAL, "admin over HTTPS: no thread");
		goto fail;
	}
	*out = ah;
	return 0;
fail:
	pthread_mutex_destroy(&ah->mu);
	pthread_cond_destroy(&ah->cv);
	ck_budget_destroy(&ah->refusals);
	free(ah);
	return r;
}

void
adminhttp_stop(struct adminhttp *ah)
{
	int i;

	if (ah == NULL)
		return;
	pthread_mutex_lock(&ah->mu);
	ah->stopping = 1;
	pthread_cond_broadcast(&ah->cv);
	pthread_mutex_unlock(&ah->mu);
	/* The workers answer what is queued, then leave. */
	for (i = 0; i < ah->nthreads; i++)
		pthread_join(ah->threads[i], NULL);
	pthread_mutex_destroy(&ah->mu);
	pthread_cond_destroy(&ah->cv);
	ck_budget_destroy(&ah->refusals);
	free(ah);
}
