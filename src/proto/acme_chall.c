/*
 * acme_chall.c - challenges (RFC 8555 7.5.1, 8): a client's POST {} moves
 * a pending challenge to "processing" (durably, through the pipeline) and
 * hands it to a pool of validation workers; a worker checks it over the
 * network (acme_validate.h: http-01, dns-01, tls-alpn-01, then CAA) and
 * records the outcome in one transaction: the challenge, its
 * authorization, and the order when that was its last pending
 * authorization (ready) or when it failed (invalid), with audit entries.
 *
 * Validation is blocking network work bounded by [acme]
 * validation_timeout, so it never runs on an HTTP thread or on the
 * pipeline's committer. Challenges still "processing" when certkeepd
 * stopped are validated again at the next start.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "ca/ca.h"
#include "ca/config.h"
#include "ca/pipeline.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "daemon/server.h"
#include "proto/acme.h"
#include "proto/acme_int.h"
#include "proto/acme_validate.h"

/* Validation waits on the network (each bounded by the timeout), so
 * there are more workers than cores. */
#define VA_WORKERS 16
#define VA_QUEUE_MAX 4096	/* challenges waiting for a worker */

struct va_job {
	struct va_job *next;
	struct server *sv;
	char chall_id[STORE_ACME_ID_SIZE];
	char base[ACME_BASE_SIZE];	/* "" when requeued at start */
	/* filled by the worker */
	struct store_acme_challenge c;
	struct store_acme_authz a;
	int ok;
	char problem[1024];	/* the challenge's error (JSON) when !ok */
	char detail[640];
};

struct acme_va {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct va_job *head, *tail;
	size_t n;
	int stopping;
	pthread_t workers[VA_WORKERS];
	unsigned nworkers;
	struct acme_vconf conf;
	char dns_list[CK_CONFIG_STR];
	char caa_identity[256];
};

static void
va_job_free(struct va_job *j)
{
	if (j == NULL)
		return;
	store_acme_challenge_clear(&j->c);
	store_acme_authz_clear(&j->a);
	free(j);
}

/* Queue challenge ID for validation: 0, or CK_E_BUSY when the queue is
 * full (the challenge stays processing and is retried at the next
 * start). */
static int
va_enqueue(struct server *sv, const char *id, const char *base)
{
	struct acme_va *va = sv->acme_va;
	struct va_job *j;

	if (va == NULL)
		return ck_err_set(CK_E_STATE, "challenge validation is not "
		    "running");
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	j->sv = sv;
	snprintf(j->chall_id, sizeof(j->chall_id), "%s", id);
	snprintf(j->base, sizeof(j->base), "%s", base);
	pthread_mutex_lock(&va->mu);
	if (va->n >= VA_QUEUE_MAX || va->stopping) {
		pthread_mutex_unlock(&va->mu);
		free(j);
		return ck_err_set(CK_E_BUSY, "too many challenges are waiting "
		    "for validation");
	}
	if (va->tail != NULL)
		va->tail->next = j;
	else
		va->head = j;
	va->tail = j;
	va->n++;
	pthread_cond_signal(&va->cv);
	pthread_mutex_unlock(&va->mu);
	return 0;
}

/* ---- recording the outcome (on the committer) ---- */

static int
authz_valid_cb(const struct store_acme_authz *a, void *arg)
{
	if (strcmp(a->status, "valid") != 0)
		*(int *)arg = 0;
	return 0;
}

static int
va_record(struct ck_ca *ca, void *arg)
{
	struct va_job *j = arg;
	int64_t now = ck_time_now();
	char user[96], detail[1024];
	int r, all_valid = 1;

	acme_user(j->a.account_id, user);
	if ((r = store_acme_challenge_transition(ca->st, j->c.id,
	    "processing", j->ok ? "valid" : "invalid", now,
	    j->ok ? NULL : j->problem)) != 0)
		return r;
	snprintf(detail, sizeof(detail), "%s for %s %s%s%s%s", j->c.type,
	    j->a.identifier_type, j->a.wildcard ? "*." : "",
	    j->a.identifier_value, j->ok ? "" : ": ", j->ok ? "" : j->detail);
	if ((r = audit_append(ca->st, user, j->ok ? "acme-challenge-valid" :
	    "acme-challenge-invalid", j->c.id, j->ok ? AUDIT_OK : AUDIT_FAILED,
	    detail)) != 0)
		return r;
	/* The authorization may have been deactivated meanwhile: then the
	 * outcome is only the challenge's. */
	r = store_acme_authz_transition(ca->st, j->a.id, "pending",
	    j->ok ? "valid" : "invalid");
	if (r == CK_E_STATE)
		return 0;
	if (r != 0)
		return r;
	if (!j->ok) {
		char err[1200];
		snprintf(err, sizeof(err), "{\"type\":\"" ACME_ERR_PREFIX
		    "unauthorized\",\"detail\":\"an authorization failed\","
		    "\"subproblems\":[%s]}", j->problem);
		r = store_acme_order_transition(ca->st, j->a.order_id,
		    "pending", "invalid", err);
		return r == CK_E_STATE ? 0 : r;
	}
	/* Was it the order's last pending authorization? */
	if ((r = store_acme_order_authzs(ca->st, j->a.order_id, authz_valid_cb,
	    &all_valid)) != 0)
		return r;
	if (!all_valid)
		return 0;
	r = store_acme_order_transition(ca->st, j->a.order_id, "pending",
	    "ready", NULL);
	return r == CK_E_STATE ? 0 : r;
}

static void
va_recorded(void *arg, int r, const char *msg)
{
	struct va_job *j = arg;

	if (r != 0)
		fprintf(stderr, "certkeepd: ACME challenge %s: the outcome "
		    "could not be recorded (%s); it is validated again at the "
		    "next start\n", j->chall_id, msg ? msg : ck_strerror(r));
	va_job_free(j);
}

/* ---- the workers ---- */

/* The challenge's error document for TYPE and DETAIL. */
static void
va_problem(struct va_job *j, const char *type, const char *detail)
{
	char urn[96];
	json_t *p;
	char *s;

	snprintf(urn, sizeof(urn), "%s%s", ACME_ERR_PREFIX, type);
	snprintf(j->detail, sizeof(j->detail), "%s", detail);
	p = json_pack("{s:s, s:s, s:i}", "type", urn, "detail", detail,
	    "status", strcmp(type, "unauthorized") == 0 ? 403 : 400);
	s = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (s != NULL && strlen(s) < sizeof(j->problem))
		snprintf(j->problem, sizeof(j->problem), "%s", s);
	else
		snprintf(j->problem, sizeof(j->problem), "{\"type\":\"%s\","
		    "\"detail\":\"validation failed\",\"status\":400}", urn);
	free(s);
}

/*
 * Validate J: read the challenge, its authorization and the account's
 * current key (the key authorization follows a key rollover), check, and
 * hand the outcome to the committer. A challenge that is no longer
 * processing was settled meanwhile: nothing to do.
 */
static void
va_validate(struct acme_va *va, struct va_job *j)
{
	struct server *sv = j->sv;
	struct store_acme_account acct;
	char keyauth[2 * STORE_ACME_ID_SIZE + 2], detail[512];
	const char *ptype = NULL;
	int r;

	memset(&acct, 0, sizeof(acct));
	pthread_mutex_lock(&sv->rd_mu);
	r = store_acme_challenge_get(sv->rd, j->chall_id, &j->c);
	if (r == 0)
		r = store_acme_authz_get(sv->rd, j->c.authz_id, &j->a);
	if (r == 0)
		r = store_acme_account_get(sv->rd, j->a.account_id, &acct);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0 || strcmp(j->c.status, "processing") != 0) {
		if (r != 0)
			fprintf(stderr, "certkeepd: ACME challenge %s cannot "
			    "be read: %s\n", j->chall_id, ck_err_msg());
		store_acme_account_clear(&acct);
		va_job_free(j);
		return;
	}
	snprintf(keyauth, sizeof(keyauth), "%s.%s", j->c.token,
	    acct.jwk_thumbprint);
	detail[0] = '\0';
	if (strcmp(acme_authz_status_now(&j->a, ck_time_now()), "pending") !=
	    0) {
		r = CK_E_STATE;
		ptype = "unauthorized";
		snprintf(detail, sizeof(detail), "the authorization is %s",
		    acme_authz_status_now(&j->a, ck_time_now()));
	} else {
		ck_err_clear();
		r = acme_validate(&va->conf, j->c.type, j->a.identifier_type,
		    j->a.identifier_value, j->a.wildcard, j->c.token, keyauth,
		    &ptype, detail, sizeof(detail));
	}
	if (r == 0 && va->caa_identity[0] != '\0' &&
	    strcmp(j->a.identifier_type, "dns") == 0) {
		char uri[ACME_URL_SIZE];
		snprintf(uri, sizeof(uri), "%s/acme/acct/%s", j->base,
		    acct.id);
		ck_err_clear();
		r = acme_caa_check(&va->conf, j->a.identifier_value,
		    j->a.wildcard, j->base[0] ? uri : NULL, j->c.type,
		    &ptype, detail, sizeof(detail));
	}
	store_acme_account_clear(&acct);
	j->ok = r == 0;
	if (!j->ok)
		va_problem(j, ptype ? ptype : "serverInternal", detail[0] ?
		    detail : "validation failed");
	ck_pipeline_write(sv->pl, va_record, j, va_recorded, j);
}

static void *
va_main(void *arg)
{
	struct acme_va *va = arg;
	struct va_job *j;

	(void)pthread_setname_np(pthread_self(), "ck-acme-va");
	for (;;) {
		pthread_mutex_lock(&va->mu);
		while (va->head == NULL && !va->stopping)
			pthread_cond_wait(&va->cv, &va->mu);
		if (va->head == NULL) {
			pthread_mutex_unlock(&va->mu);
			return NULL;
		}
		j = va->head;
		va->head = j->next;
		if (va->head == NULL)
			va->tail = NULL;
		va->n--;
		pthread_mutex_unlock(&va->mu);
		j->next = NULL;
		va_validate(va, j);
	}
}

/* [acme] dns_servers, or else the first "nameserver" of
 * /etc/resolv.conf (port 53). */
static int
dns_servers_pick(const char *conf, char *out, size_t outsz)
{
	char line[512], addr[128];
	FILE *f;

	if (conf[0] != '\0') {
		snprintf(out, outsz, "%s", conf);
		return 0;
	}
	if ((f = fopen("/etc/resolv.conf", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, " nameserver %127s", addr) == 1) {
				fclose(f);
				if (strchr(addr, ':') != NULL)
					snprintf(out, outsz, "[%s]:53", addr);
				else
					snprintf(out, outsz, "%s:53", addr);
				return 0;
			}
		fclose(f);
	}
	return ck_err_set(CK_E_INVAL, "[acme] dns_servers is not set and "
	    "/etc/resolv.conf names no nameserver: ACME cannot validate "
	    "challenges");
}

static int
requeue_cb(const char *id, void *arg)
{
	/* A full queue leaves the rest for the next start. */
	(void)va_enqueue(arg, id, "");
	return 0;
}

int
acme_validators_start(struct server *sv)
{
	const struct ck_acme_config *ac = &sv->ca->cfg->acme;
	struct acme_va *va;
	unsigned i;
	int r;

	if ((va = calloc(1, sizeof(*va))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	pthread_mutex_init(&va->mu, NULL);
	pthread_cond_init(&va->cv, NULL);
	snprintf(va->caa_identity, sizeof(va->caa_identity), "%s",
	    ac->caa_identity);
	if ((r = dns_servers_pick(ac->dns_servers, va->dns_list,
	    sizeof(va->dns_list))) != 0) {
		pthread_cond_destroy(&va->cv);
		pthread_mutex_destroy(&va->mu);
		free(va);
		return r;
	}
	va->conf.dns_servers = va->dns_list;
	va->conf.http_port = ac->http01_port;
	va->conf.tls_port = ac->tlsalpn01_port;
	va->conf.timeout_ms = (int)ac->validation_timeout_s * 1000;
	va->conf.caa_identity = va->caa_identity;
	va->conf.allow_loopback = ac->validation_allow_loopback;
	for (i = 0; i < VA_WORKERS; i++) {
		if (pthread_create(&va->workers[i], NULL, va_main, va) != 0)
			break;
		va->nworkers++;
	}
	sv->acme_va = va;
	if (va->nworkers == 0) {
		acme_validators_stop(sv);
		return ck_err_set(CK_E_INTERNAL, "cannot start the ACME "
		    "validation threads");
	}
	/* What a stop interrupted. */
	if ((r = acme_orders_settle(sv)) != 0)
		return r;
	pthread_mutex_lock(&sv->rd_mu);
	r = store_acme_challenge_ids_in(sv->rd, "processing", requeue_cb, sv);
	pthread_mutex_unlock(&sv->rd_mu);
	return r;
}

/* Stop taking work, let the workers finish what they hold (each bounded
 * by the validation timeout) and drop what is queued: those challenges
 * stay processing and are validated at the next start. Call before the
 * pipeline stops. */
void
acme_validators_stop(struct server *sv)
{
	struct acme_va *va = sv->acme_va;
	struct va_job *j, *next;
	unsigned i;

	if (va == NULL)
		return;
	pthread_mutex_lock(&va->mu);
	va->stopping = 1;
	j = va->head;
	va->head = va->tail = NULL;
	va->n = 0;
	pthread_cond_broadcast(&va->cv);
	pthread_mutex_unlock(&va->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		va_job_free(j);
	}
	for (i = 0; i < va->nworkers; i++)
		pthread_join(va->workers[i], NULL);
	acme_key_cache_clear();
	pthread_cond_destroy(&va->cv);
	pthread_mutex_destroy(&va->mu);
	free(va);
	sv->acme_va = NULL;
}

/* ---- the challenge resource ---- */

struct chall_job {
	struct server *sv;
	struct http_pending *pending;
	char base[ACME_BASE_SIZE];
	struct store_acme_challenge c;
	struct store_acme_authz a;
};

static void
chall_job_free(struct chall_job *jb)
{
	store_acme_challenge_clear(&jb->c);
	store_acme_authz_clear(&jb->a);
	free(jb);
}

/* Answer with challenge ID as stored now, and its authorization as
 * Link rel="up". */
static void
chall_respond(struct server *sv, const char *base, const char *id,
    const char *authz_id, struct http_response *resp)
{
	struct store_acme_challenge c;
	struct acme_ctx cx;
	size_t n;
	json_t *j;
	int r;

	memset(&c, 0, sizeof(c));
	pthread_mutex_lock(&sv->rd_mu);
	r = store_acme_challenge_get(sv->rd, id, &c);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0) {
		acme_ctx_for(&cx, sv, base);
		acme_problem(&cx, resp, 500, "serverInternal", "the challenge "
		    "cannot be read");
		return;
	}
	j = acme_challenge_json(base, &c);
	acme_respond_json(sv, base, resp, 200, j);
	json_decref(j);
	store_acme_challenge_clear(&c);
	n = strlen(resp->link);
	snprintf(resp->link + n, sizeof(resp->link) - n,
	    ", <%s/acme/authz/%s>;rel=\"up\"", base, authz_id);
}

static int
chall_write(struct ck_ca *ca, void *arg)
{
	struct chall_job *jb = arg;
	char user[96], detail[512];
	int r;

	if ((r = store_acme_challenge_transition(ca->st, jb->c.id, "pending",
	    "processing", 0, NULL)) != 0)
		return r;
	acme_user(jb->a.account_id, user);
	snprintf(detail, sizeof(detail), "%s for %s %s%s", jb->c.type,
	    jb->a.identifier_type, jb->a.wildcard ? "*." : "",
	    jb->a.identifier_value);
	return audit_append(ca->st, user, "acme-challenge-start", jb->c.id,
	    AUDIT_OK, detail);
}

static void
chall_done(void *arg, int r, const char *msg)
{
	struct chall_job *jb = arg;
	struct http_response resp;
	struct acme_ctx cx;

	memset(&resp, 0, sizeof(resp));
	acme_ctx_for(&cx, jb->sv, jb->base);
	if (r == 0 && va_enqueue(jb->sv, jb->c.id, jb->base) != 0)
		fprintf(stderr, "certkeepd: ACME challenge %s: %s; it is "
		    "validated at the next start\n", jb->c.id, ck_err_msg());
	if (r == 0 || r == CK_E_STATE)	/* a concurrent POST started it */
		chall_respond(jb->sv, jb->base, jb->c.id, jb->a.id, &resp);
	else
		acme_problem(&cx, &resp, 500, "serverInternal", "the "
		    "challenge could not be started: %s", msg ? msg :
		    ck_strerror(r));
	http_pending_finish(jb->pending, &resp);
	chall_job_free(jb);
}

/*
 * POST-as-GET returns the challenge; POST {} (RFC 8555 7.5.1) asks for
 * validation. A challenge that is not pending any more is answered as it
 * is (a client repeating its request must not fail); one whose
 * authorization is no longer pending cannot be started.
 */
enum http_result
acme_challenge(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account acct;
	struct chall_job *jb = NULL;
	char id[STORE_ACME_ID_SIZE];
	json_t *p = NULL;
	enum http_result hr = HTTP_DONE;
	const char *ast;
	int r;

	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	if (acme_path_id(req->path, "/acme/chall/", id) != 0) {
		acme_problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &acct) != 0)
		return HTTP_DONE;
	if (jws->payload_len != 0 &&
	    (p = acme_payload_object(&cx, jws, resp)) == NULL)
		goto out;
	if ((jb = calloc(1, sizeof(*jb))) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_challenge_get(cx.sv->rd, id, &jb->c);
	if (r == 0)
		r = store_acme_authz_get(cx.sv->rd, jb->c.authz_id, &jb->a);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (acme_own_object(&cx, resp, r, "challenge", jb->a.account_id,
	    acct.id) != 0)
		goto out;
	if (p == NULL || strcmp(jb->c.status, "pending") != 0) {
		chall_respond(cx.sv, cx.base, jb->c.id, jb->a.id, resp);
		goto out;
	}
	ast = acme_authz_status_now(&jb->a, ck_time_now());
	if (strcmp(ast, "pending") != 0) {
		acme_problem(&cx, resp, 400, "malformed", "the authorization "
		    "is %s: its challenges cannot be started", ast);
		goto out;
	}
	jb->sv = cx.sv;
	jb->pending = req->pending;
	snprintf(jb->base, sizeof(jb->base), "%s", cx.base);
	ck_pipeline_write(cx.sv->pl, chall_write, jb, chall_done, jb);
	jb = NULL;
	hr = HTTP_DEFERRED;
out:
	if (jb != NULL)
		chall_job_free(jb);
	json_decref(p);
	store_acme_account_clear(&acct);
	ck_jws_free(jws);
	return hr;
}
