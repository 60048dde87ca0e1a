/*
 * pub.c - what certkeepd serves over plain HTTP, as is customary for
 * revocation data: the CRL at the URL its certificates name, the CA
 * certificate (AIA caIssuers), the OCSP responder (POST and the RFC 5019
 * GET form), a health document and Prometheus metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/ocsp.h>

#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "ca/ca.h"
#include "daemon/server.h"
#include "proto/ocsp.h"
#include "signer/signer.h"

#define OCSP_REQUEST_MAX (16 * 1024)

static enum http_result
pub_crl(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct server *sv = ctx;

	(void)req;
	pthread_rwlock_rdlock(&sv->lock);
	if (sv->crl_der == NULL)
		http_problem(resp, 503, "unavailable", "no CRL yet");
	else {
		http_respond(resp, 200, "application/pkix-crl", sv->crl_der,
		    sv->crl_len);
		resp->cache_control = "max-age=300";
	}
	pthread_rwlock_unlock(&sv->lock);
	return HTTP_DONE;
}

static enum http_result
pub_cacert(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;

	(void)req;
	http_respond(resp, 200, "application/pkix-cert", sv->ca_der,
	    sv->ca_der_len);
	resp->cache_control = "max-age=86400";
	return HTTP_DONE;
}

static enum http_result
ocsp_answer(struct server *sv, int r, unsigned char *der, size_t len,
    struct http_response *resp, uint64_t start)
{
	if (r != 0) {
		/* An unsigned internalError, as RFC 6960 section 2.3 says. */
		if (ocsp_respond_status(OCSP_RESPONSE_STATUS_INTERNALERROR,
		    &der, &len) != 0) {
			http_problem(resp, 500, "internal", "OCSP failure");
			return HTTP_DONE;
		}
	}
	free(resp->body);
	resp->status = 200;
	resp->content_type = "application/ocsp-response";
	resp->body = der;
	resp->body_len = len;
	metrics_observe(&sv->m.ocsp_latency, metrics_now_us() - start);
	return HTTP_DONE;
}

/* POST /ocsp (the DER request is the body) and GET /ocsp/BASE64. */
static enum http_result
pub_ocsp(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct server *sv = ctx;
	unsigned char *der = NULL;
	size_t len = 0;
	uint64_t start = metrics_now_us();
	int r;

	if (strcmp(req->method, "POST") == 0)
		r = ocsp_respond_der(sv->ocsp, req->body, req->body_len, &der,
		    &len);
	else if ((r = ocsp_respond_get(sv->ocsp, req->path + strlen("/ocsp/"),
	    &der, &len)) == 0)
		resp->cache_control = "max-age=60, public";
	return ocsp_answer(sv, r, der, len, resp, start);
}

static enum http_result
pub_health(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;
	int64_t now = ck_time_now();
	char nu[32], why[256];
	json_t *j;
	char *s;
	int ok, sgn;

	(void)req;
	/* A token key that failed: "signer unavailable" (a reload is
	 * tried at most once a second). */
	sgn = signer_available(sv->ca->signer, 1, why, sizeof(why));
	pthread_rwlock_rdlock(&sv->lock);
	ok = sv->crl_der != NULL && sv->crl_next_update > now && sgn;
	ck_time_format(sv->crl_next_update, nu, sizeof(nu));
	j = json_pack("{s:s, s:I, s:I, s:s, s:I, s:s, s:s}", "status", ok ?
	    "ok" : "degraded", "uptime_seconds",
	    (json_int_t)(now - sv->started_at), "crl_number",
	    (json_int_t)sv->crl_number, "crl_next_update", nu, "change_seq",
	    (json_int_t)sv->seen_seq, "signer", sgn ? "available" :
	    "unavailable", "signer_error", why);
	pthread_rwlock_unlock(&sv->lock);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (s == NULL) {
		http_problem(resp, 500, "internal", "encoding");
		return HTTP_DONE;
	}
	http_respond(resp, ok ? 200 : 503, "application/json", s, strlen(s));
	free(s);
	return HTTP_DONE;
}

static enum http_result
pub_metrics(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;
	struct ck_pipeline_stats ps;
	struct ocsp_stats os;
	size_t sz = 16384, off = 0;
	char *buf, *lastb = NULL;
	double crl_age, last_backup = 0, last_drill = 0;
	int64_t now = ck_time_now();

	(void)req;
	if ((buf = malloc(sz)) == NULL) {
		http_problem(resp, 503, "internal", "out of memory");
		return HTTP_DONE;
	}
	buf[0] = '\0';
	ck_pipeline_get_stats(sv->pl, &ps);
	ocsp_get_stats(sv->ocsp, &os);
	pthread_rwlock_rdlock(&sv->lock);
	crl_age = sv->crl_der ? (double)(now - sv->crl_this_update) : -1;
	pthread_rwlock_unlock(&sv->lock);
	pthread_mutex_lock(&sv->rd_mu);
	/* Written by 'certkeep backup' and 'backup drill' (unix seconds). */
	if (store_meta_get(sv->rd, "last_good_backup", &lastb) == 0) {
		uint64_t t;
		if (ck_parse_u64(lastb, 0, INT64_MAX, "last_good_backup", &t)
		    == 0)
			last_backup = (double)t;
		free(lastb);
		lastb = NULL;
	}
	if (store_meta_get(sv->rd, "last_good_drill", &lastb) == 0) {
		uint64_t t;
		if (ck_parse_u64(lastb, 0, INT64_MAX, "last_good_drill", &t)
		    == 0)
			last_drill = (double)t;
		free(lastb);
	}
	ck_err_clear();
	pthread_mutex_unlock(&sv->rd_mu);
#define V(name, type, help, val) metrics_format_value(name, type, help, \
	(double)(val), buf, sz, &off)
	V("certkeep_certificates_issued_total", "counter",
	    "Certificates issued and durably recorded.",
	    atomic_load(&sv->m.issued));
	V("certkeep_certificates_refused_total", "counter",
	    "Issuance or revocation requests refused.",
	    atomic_load(&sv->m.refused));
	V("certkeep_certificates_failed_total", "counter",
	    "Issuance requests that failed after acceptance.",
	    atomic_load(&sv->m.failed));
	V("certkeep_certificates_revoked_total", "counter",
	    "Certificates revoked through the API.",
	    atomic_load(&sv->m.revoked));
	V("certkeep_unauthorized_total", "counter",
	    "Requests with a bad or missing token or certificate.",
	    atomic_load(&sv->m.unauthorized));
	metrics_format_hist(&sv->m.issue_latency,
	    "certkeep_issue_latency_seconds",
	    "Time from request to durable certificate.", buf, sz, &off);
	V("certkeep_store_commits_total", "counter",
	    "Durable store transactions.", ps.commits);
	V("certkeep_store_committed_items_total", "counter",
	    "Operations committed (many per transaction).",
	    ps.committed_items);
	V("certkeep_store_largest_batch", "gauge",
	    "Most operations in one transaction.", ps.max_batch);
	V("certkeep_crl_age_seconds", "gauge",
	    "Age of the CRL being served (-1: none).", crl_age);
	V("certkeep_ocsp_requests_total", "counter", "OCSP requests.",
	    os.requests);
	V("certkeep_ocsp_cached_total", "counter",
	    "OCSP requests answered from the cache.", os.cached);
	V("certkeep_ocsp_signed_total", "counter",
	    "OCSP responses signed.", os.signed_);
	V("certkeep_ocsp_malformed_total", "counter",
	    "Malformed OCSP requests.", os.malformed);
	metrics_format_hist(&sv->m.ocsp_latency,
	    "certkeep_ocsp_latency_seconds", "OCSP response time.", buf, sz,
	    &off);
	V("certkeep_last_good_backup_timestamp_seconds", "gauge",
	    "When the last backup, read back from every medium, finished "
	    "(0: never).", last_backup);
	V("certkeep_last_good_drill_timestamp_seconds", "gauge",
	    "When the last restore drill passed (0: never).", last_drill);
	V("certkeep_signer_available", "gauge",
	    "1 if the CA key can sign, 0 if its token failed.",
	    signer_available(sv->ca->signer, 1, NULL, 0));
#undef V
	free(resp->body);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4";
	resp->body = (unsigned char *)buf;
	resp->body_len = off;
	return HTTP_DONE;
}

const struct http_route pub_routes[] = {
	{ "GET", "/crl/ca.crl", pub_crl, 0 },
	{ "GET", "/ca.crt", pub_cacert, 0 },
	{ "POST", "/ocsp", pub_ocsp, OCSP_REQUEST_MAX },
	{ "GET", "/ocsp/", pub_ocsp, 0 },
	{ "GET", "/health", pub_health, 0 },
	{ "GET", "/metrics", pub_metrics, 0 },
};
const size_t pub_nroutes = sizeof(pub_routes) / sizeof(pub_routes[0]);
