/*
 * rest.c - the JSON enrollment API (served over HTTPS).
 *
 *   POST /api/v1/certificates               {"profile", "csr", "days"?}
 *   GET  /api/v1/certificates/SERIAL
 *   POST /api/v1/certificates/SERIAL/revoke {"reason"?}
 *   GET  /api/v1/requests/ID                (a request awaiting approval)
 *   GET  /api/v1/ca/chain
 *
 * A profile with approvals (src/ca/approval.h) answers a request with 202
 * and the id of a request to poll, instead of a certificate.
 *
 * Callers authenticate with "Authorization: Bearer ckt_..." (a token bound
 * to profiles and name rules) or a TLS client certificate from this CA
 * (which may request the profiles in [server] client_cert_profiles, for
 * the names in its own certificate only). Errors are problem documents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/audit.h"
#include "ca/approval.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "daemon/adminhttp.h"
#include "daemon/server.h"
#include "proto/rest.h"
#include "x509/certbuild.h"
#include "x509/csr.h"
#include "x509/serial.h"

#define REST_JSON_MAX_DEPTH 4
/* Retry-After of a request awaiting approval, seconds. */
#define REST_REQUEST_RETRY_S 30

/* Who is asking. */
struct principal {
	char name[160];			/* "token:NAME" or "cert:SERIAL" */
	const struct ck_token *token;	/* valid under sv->lock (read) */
	struct ck_profile *cert_rules;	/* a client certificate's names */
	int is_cert;
};

static void
principal_clear(struct principal *p)
{
	if (p->cert_rules != NULL) {
		ck_profile_clear(p->cert_rules);
		free(p->cert_rules);
	}
	memset(p, 0, sizeof(*p));
}

/* A client certificate: issued by this CA, currently issued (not revoked)
 * in the store. Its own names become the rules for what it may request. */
static int
auth_cert(struct server *sv, const struct http_request *req,
    struct principal *pr)
{
	const unsigned char *q = req->client_cert;
	X509 *x = NULL;
	GENERAL_NAMES *gens = NULL;
	struct ck_names names = { 0 };
	char serial[CK_SERIAL_HEX_MAX];
	enum store_cert_status st;
	int64_t rat;
	int reason, r = CK_E_PERM;
	size_t i;

	if ((x = d2i_X509(NULL, &q, (long)req->client_cert_len)) == NULL)
		goto out;
	if (X509_check_issued(sv->ca->cert, x) != X509_V_OK ||
	    X509_verify(x, X509_get0_pubkey(sv->ca->cert)) != 1)
		goto out;
	if (ck_serial_to_hex(X509_get0_serialNumber(x), serial) != 0)
		goto out;
	pthread_mutex_lock(&sv->rd_mu);
	r = store_cert_status(sv->rd, serial, &st, &rat, &reason);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0 || st != STORE_CERT_ISSUED) {
		r = CK_E_PERM;
		goto out;
	}
	r = CK_E_PERM;
	/* Only a certificate meant for client authentication logs in. */
	if (X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) != 1)
		goto out;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (gens != NULL && ck_names_from_general(gens, &names) != 0)
		goto out;
	/* It may ask for its own names, exactly: nothing below them. */
	if ((pr->cert_rules = calloc(1, sizeof(*pr->cert_rules))) == NULL ||
	    ck_profile_init(pr->cert_rules, "client certificate") != 0) {
		r = CK_E_NOMEM;
		goto out;
	}
	pr->cert_rules->exact_only = 1;
	for (i = 0; i < names.n; i++)
		if (ck_names_add(&pr->cert_rules->exact, names.v[i].type,
		    names.v[i].value) != 0)
			goto out;
	snprintf(pr->name, sizeof(pr->name), "cert:%s", serial);
	pr->is_cert = 1;
	r = 0;
out:
	GENERAL_NAMES_free(gens);
	ck_names_clear(&names);
	X509_free(x);
	return r;
}

/* Authenticate; on success the caller holds sv->lock for reading. */
static int
authenticate(struct server *sv, const struct http_request *req,
    struct principal *pr)
{
	const char *a = req->authorization;

	memset(pr, 0, sizeof(*pr));
	pthread_rwlock_rdlock(&sv->lock);
	if (a != NULL && strncasecmp(a, "Bearer ", 7) == 0) {
		pr->token = ck_token_find(sv->tokens, a + 7);
		if (pr->token == NULL) {
			/* Perhaps created a moment ago: look once more. */
			pthread_rwlock_unlock(&sv->lock);
			(void)server_tokens_refresh(sv);
			pthread_rwlock_rdlock(&sv->lock);
			pr->token = ck_token_find(sv->tokens, a + 7);
		}
		if (pr->token != NULL) {
			snprintf(pr->name, sizeof(pr->name), "token:%s",
			    pr->token->name);
			return 0;
		}
	} else if (a == NULL && req->client_cert != NULL &&
	    auth_cert(sv, req, pr) == 0)
		return 0;
	pthread_rwlock_unlock(&sv->lock);
	principal_clear(pr);
	atomic_fetch_add(&sv->m.unauthorized, 1);
	return CK_E_PERM;
}

static void
auth_done(struct server *sv, struct principal *pr)
{
	pthread_rwlock_unlock(&sv->lock);
	principal_clear(pr);
}

static int
json_respond(struct http_response *resp, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int r;

	json_decref(j);
	if (s == NULL) {
		http_problem(resp, 500, "internal", "cannot encode response");
		return CK_E_NOMEM;
	}
	free(resp->body);
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = (unsigned char *)s;
	resp->body_len = strlen(s);
	r = 0;
	return r;
}

/* Parse a JSON object body; NULL with a problem in resp on failure. */
static json_t *
parse_body(const struct http_request *req, struct http_response *resp)
{
	json_error_t err;
	json_t *j;

	if (req->content_type == NULL ||
	    strncasecmp(req->content_type, "application/json", 16) != 0) {
		http_problem(resp, 415, "content-type",
		    "send the request as application/json");
		return NULL;
	}
	j = json_loadb((const char *)req->body, req->body_len,
	    JSON_REJECT_DUPLICATES, &err);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		http_problem(resp, 400, "malformed", "the body is not a JSON "
		    "object%s%s", j == NULL ? ": " : "",
		    j == NULL ? err.text : "");
		return NULL;
	}
	return j;
}

static int
problem_status(int r)
{
	switch (r) {
	case CK_E_POLICY:
		return 403;
	case CK_E_PARSE:
	case CK_E_BADSIG:
	case CK_E_TOOBIG:
	case CK_E_INVAL:
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

static const char *
problem_type(int r)
{
	switch (r) {
	case CK_E_POLICY:
		return "rejected";
	case CK_E_PARSE:
	case CK_E_TOOBIG:
		return "bad-csr";
	case CK_E_BADSIG:
		return "bad-signature";
	case CK_E_INVAL:
		return "malformed";
	case CK_E_NOTFOUND:
		return "not-found";
	case CK_E_STATE:
	case CK_E_EXISTS:
		return "conflict";
	default:
		return "internal";
	}
}

/* A refusal is answered once its audit entry is durable. */
struct refusal {
	struct server *sv;
	struct http_pending *pending;
	char action[32];	/* "issue", or "authenticate" */
	char object[160];	/* for "authenticate": the path */
	char requester[160];
	char profile[64];
	char reason[768];
	int status;
	char type[32];
};

static int
refusal_write(struct ck_ca *ca, void *arg)
{
	struct refusal *rf = arg;

	if (strcmp(rf->action, "issue") != 0)
		return audit_append(ca->st, rf->requester, rf->action,
		    rf->object, AUDIT_REFUSED, rf->reason);
	return ck_ca_audit_refusal(ca, rf->requester, rf->profile,
	    rf->reason);
}

static void
refusal_done(void *arg, int r, const char *msg)
{
	struct refusal *rf = arg;
	struct http_response resp;

	memset(&resp, 0, sizeof(resp));
	if (r != 0)
		http_problem(&resp, 503, "internal", "the refusal could not "
		    "be recorded: %s", msg);
	else
		http_problem(&resp, rf->status, rf->type, "%s", rf->reason);
	http_pending_finish(rf->pending, &resp);
	free(rf);
}

static enum http_result
refuse_as(struct server *sv, const struct http_request *req,
    struct http_response *resp, const char *action, const char *requester,
    const char *profile, int status, const char *type, const char *reason)
{
	struct refusal *rf = calloc(1, sizeof(*rf));

	atomic_fetch_add(&sv->m.refused, 1);
	if (rf == NULL) {
		http_problem(resp, 503, "internal", "out of memory");
		return HTTP_DONE;
	}
	rf->sv = sv;
	rf->pending = req->pending;
	rf->status = status;
	snprintf(rf->action, sizeof(rf->action), "%s", action);
	snprintf(rf->object, sizeof(rf->object), "%s %s", req->method,
	    req->path);
	snprintf(rf->requester, sizeof(rf->requester), "%s", requester);
	snprintf(rf->profile, sizeof(rf->profile), "%s", profile ? profile :
	    "?");
	snprintf(rf->reason, sizeof(rf->reason), "%s", reason);
	snprintf(rf->type, sizeof(rf->type), "%s", type);
	ck_pipeline_write(sv->pl, refusal_write, rf, refusal_done, rf);
	return HTTP_DEFERRED;
}

static enum http_result
refuse(struct server *sv, const struct http_request *req,
    struct http_response *resp, const char *requester, const char *profile,
    int status, const char *type, const char *reason)
{
	return refuse_as(sv, req, resp, "issue", requester, profile, status,
	    type, reason);
}

/*
 * A request that did not authenticate: audited (from where, for what) and
 * answered 401 once the entry is durable; past AUDIT_UNAUTH_PER_S such
 * entries a second, only counted (certkeep_unauthorized_total) and
 * answered at once, so that a flood cannot fill the store.
 */
static enum http_result
refuse_unauthenticated(struct server *sv, const struct http_request *req,
    struct http_response *resp)
{
	char who[160];
	int64_t now = ck_time_now();
	int audit;

	pthread_mutex_lock(&sv->unauth_mu);
	if (sv->unauth_second != now) {
		sv->unauth_second = now;
		sv->unauth_audited = 0;
	}
	audit = sv->unauth_audited < AUDIT_UNAUTH_PER_S;
	if (audit)
		sv->unauth_audited++;
	else
		sv->unauth_unaudited++;
	pthread_mutex_unlock(&sv->unauth_mu);
	if (!audit) {
		http_problem(resp, 401, "unauthorized", "a valid API token or "
		    "client certificate is required");
		return HTTP_DONE;
	}
	snprintf(who, sizeof(who), "anonymous@%s", req->peer);
	return refuse_as(sv, req, resp, "authenticate", who, NULL, 401,
	    "unauthorized", req->authorization != NULL ?
	    "the API token is not valid" : "a valid API token "
	    "(Authorization: Bearer ...) or client certificate is required");
}

struct issue_wait {
	struct server *sv;
	struct http_pending *pending;
	uint64_t start_us;
};

/* A growing output buffer for the issuance answer. */
struct obuf {
	char *p;
	size_t len, cap;
	int err;
};

static void
ob_reserve(struct obuf *b, size_t n)
{
	char *np;
	size_t cap;

	if (b->err || b->len + n <= b->cap)
		return;
	for (cap = b->cap ? b->cap : 4096; cap < b->len + n; cap *= 2)
		;
	if ((np = realloc(b->p, cap)) == NULL) {
		b->err = 1;
		return;
	}
	b->p = np;
	b->cap = cap;
}

static void
ob_put(struct obuf *b, const char *s, size_t n)
{
	ob_reserve(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* A JSON string of ASCII text, escaped as jansson escapes it; 0, or -1 for
 * a byte that is not ASCII (the caller then lets jansson do it). */
static int
ob_json_string(struct obuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, run;

	ob_reserve(b, n + 2);
	ob_put(b, "\"", 1);
	for (i = 0; i < n; i += run) {
		unsigned char c = (unsigned char)s[i];
		for (run = 0; i + run < n; run++) {
			c = (unsigned char)s[i + run];
			if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
				break;
		}
		if (run > 0) {
			ob_put(b, s + i, run);
			continue;
		}
		run = 1;
		switch (c) {
		case '"': ob_put(b, "\\\"", 2); break;
		case '\\': ob_put(b, "\\\\", 2); break;
		case '\b': ob_put(b, "\\b", 2); break;
		case '\f': ob_put(b, "\\f", 2); break;
		case '\n': ob_put(b, "\\n", 2); break;
		case '\r': ob_put(b, "\\r", 2); break;
		case '\t': ob_put(b, "\\t", 2); break;
		default:
			if (c >= 0x80)
				return -1;
			{
				char u[6] = { '\\', 'u', '0', '0', hex[c >> 4],
				    hex[c & 15] };
				ob_put(b, u, 6);
			}
		}
	}
	ob_put(b, "\"", 1);
	return 0;
}

/* The certificate as a JSON string of its PEM text, written in one pass:
 * 64 base64 characters a line, as PEM_write_bio() writes them. */
static void
ob_json_pem(struct obuf *b, const unsigned char *der, size_t len)
{
	static const char begin[] = "\"-----BEGIN CERTIFICATE-----\\n";
	static const char end[] = "-----END CERTIFICATE-----\\n\"";
	size_t off, chunk;

	ob_reserve(b, sizeof(begin) + sizeof(end) + (len + 2) / 3 * 4 +
	    (len / 48 + 1) * 2);
	ob_put(b, begin, sizeof(begin) - 1);
	for (off = 0; off < len && !b->err; off += chunk) {
		chunk = len - off < 48 ? len - off : 48;
		unsigned char *o = (unsigned char *)b->p + b->len;
		b->len += (size_t)EVP_EncodeBlock(o, der + off, (int)chunk);
		ob_put(b, "\\n", 2);
	}
	ob_put(b, end, sizeof(end) - 1);
}

/* {"serial": ..., "certificate": PEM, "chain": PEM} with JSON_COMPACT's
 * layout; jansson for anything but ASCII. Caller holds sv->lock. */
static int
issue_body(struct server *sv, const char *serial, const unsigned char *der,
    size_t der_len, struct http_response *resp)
{
	struct obuf b = { NULL, 0, 0, 0 };
	char *pem = NULL;
	size_t pemlen = 0;
	json_t *j;

	ob_reserve(&b, 2 * der_len + sv->chain_len + 256);
	ob_put(&b, "{\"serial\":", 10);
	if (ob_json_string(&b, serial, strlen(serial)) != 0)
		goto slow;
	ob_put(&b, ",\"certificate\":", 15);
	ob_json_pem(&b, der, der_len);
	ob_put(&b, ",\"chain\":", 9);
	if (ob_json_string(&b, sv->chain_pem, sv->chain_len) != 0)
		goto slow;
	ob_put(&b, "}", 1);
	if (b.err) {
		free(b.p);
		return CK_E_NOMEM;
	}
	http_respond_take(resp, 201, "application/json", b.p, b.len);
	return 0;
slow:
	free(b.p);
	if (ck_der_to_pem(der, der_len, &pem, &pemlen) != 0)
		return CK_E_NOMEM;
	j = json_pack("{s:s, s:s, s:s%}", "serial", serial, "certificate",
	    pem, "chain", sv->chain_pem, sv->chain_len);
	free(pem);
	if (j == NULL)
		return CK_E_NOMEM;
	return json_respond(resp, 201, j);
}

static void
issue_done(void *arg, int r, const char *msg, struct ck_issue_job *job)
{
	struct issue_wait *w = arg;
	struct server *sv = w->sv;
	struct http_response resp;
	unsigned char *der = NULL;
	size_t der_len = 0;

	memset(&resp, 0, sizeof(resp));
	if (r != 0) {
		atomic_fetch_add(&sv->m.failed, 1);
		http_problem(&resp, problem_status(r) == 500 ? 503 :
		    problem_status(r), problem_type(r), "%s", msg);
		goto out;
	}
	der = ck_issue_job_take_der(job, &der_len);
	pthread_rwlock_rdlock(&sv->lock);
	r = issue_body(sv, ck_issue_job_serial(job), der, der_len, &resp);
	pthread_rwlock_unlock(&sv->lock);
	if (r != 0) {
		http_problem(&resp, 500, "internal", "cannot encode response");
		goto out;
	}
	snprintf(resp.location, sizeof(resp.location),
	    "/api/v1/certificates/%s", ck_issue_job_serial(job));
	atomic_fetch_add(&sv->m.issued, 1);
	metrics_observe(&sv->m.issue_latency, metrics_now_us() - w->start_us);
out:
	http_pending_finish(w->pending, &resp);
	OPENSSL_free(der);
	ck_issue_job_free(job);
	free(w);
}

static const unsigned char *
skip_ws(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	return p;
}

/*
 * A JSON string at p (after its opening quote) of printable ASCII with the
 * short escapes; NULL for anything else (\u, control characters, other
 * bytes), which jansson then judges. `dst` (room for the source length)
 * gets the text if not NULL; *n its length; returns past the closing
 * quote.
 */
static const unsigned char *
fast_string(const unsigned char *p, const unsigned char *end,
    unsigned char *dst, size_t *n)
{
	size_t o = 0;
	unsigned char c;

	while (p < end) {
		c = *p++;
		if (c == '"') {
			*n = o;
			return p;
		}
		if (c < 0x20 || c >= 0x7f)
			return NULL;
		if (c == '\\') {
			if (p >= end)
				return NULL;
			switch (*p++) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case '/': c = '/'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			default: return NULL;
			}
		}
		if (dst != NULL)
			dst[o] = c;
		o++;
	}
	return NULL;
}

/* The common body, read without building a JSON tree: 1 when read (out
 * filled), 0 when jansson must read it. */
static int
parse_issue_fast(const unsigned char *body, size_t len,
    struct rest_issue_req *out)
{
	const unsigned char *p = body, *end = body + len, *v;
	unsigned char key[8];
	size_t n, vn;
	int seen_profile = 0, seen_csr = 0, seen_days = 0;
	unsigned long days;

	memset(out, 0, sizeof(*out));
	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return 0;
	for (;;) {
		p = skip_ws(p, end);
		if (p >= end || *p != '"')
			return 0;
		/* Keys: only the three known ones, without escapes. */
		for (++p, n = 0; p < end && *p != '"' && *p != '\\' &&
		    n < sizeof(key); p++)
			key[n++] = *p;
		if (p >= end || *p != '"')
			return 0;
		p = skip_ws(p + 1, end);
		if (p >= end || *p++ != ':')
			return 0;
		p = skip_ws(p, end);
		if (p >= end)
			return 0;
		if (n == 7 && memcmp(key, "profile", 7) == 0 && !seen_profile &&
		    *p == '"') {
			seen_profile = 1;
			v = p + 1;
			if ((p = fast_string(v, end, NULL, &vn)) == NULL ||
			    vn == 0 || vn >= sizeof(out->profile))
				return 0;
			(void)fast_string(v, end, (unsigned char *)out->profile,
			    &vn);
			out->profile[vn] = '\0';
		} else if (n == 3 && memcmp(key, "csr", 3) == 0 && !seen_csr &&
		    *p == '"') {
			seen_csr = 1;
			v = p + 1;
			if ((p = fast_string(v, end, NULL, &vn)) == NULL)
				return 0;
			free(out->csr_buf);
			if ((out->csr_buf = malloc(vn + 1)) == NULL)
				return 0;
			(void)fast_string(v, end, out->csr_buf, &vn);
			out->csr_buf[vn] = '\0';
			out->csr = out->csr_buf;
			out->csr_len = vn;
		} else if (n == 4 && memcmp(key, "days", 4) == 0 &&
		    !seen_days && *p >= '1' && *p <= '9') {
			seen_days = 1;
			for (days = 0, n = 0; p < end && *p >= '0' &&
			    *p <= '9' && n < 6; p++, n++)
				days = days * 10 + (unsigned long)(*p - '0');
			/* A fraction, an exponent or a longer number is for
			 * jansson to read (and refuse). */
			if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' ||
			    *p == 'e' || *p == 'E'))
				return 0;
			if (days < 1 || days > 36500)
				return 0;
			out->days = (uint32_t)days;
		} else
			return 0;
		p = skip_ws(p, end);
		if (p >= end)
			return 0;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p++ != '}')
			break;
		p = skip_ws(p, end);
		if (p != end || !seen_profile || !seen_csr)
			break;
		return 1;
	}
	return 0;
}

int
rest_parse_issue(const unsigned char *body, size_t len,
    struct rest_issue_req *out, char *err, size_t errsz)
{
	if (parse_issue_fast(body, len, out))
		return 0;
	rest_issue_req_clear(out);
	return rest_parse_issue_json(body, len, out, err, errsz);
}

int
rest_parse_issue_json(const unsigned char *body, size_t len,
    struct rest_issue_req *out, char *err, size_t errsz)
{
	json_error_t jerr;
	json_t *j, *v;

	memset(out, 0, sizeof(*out));
	j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j)) {
		snprintf(err, errsz, "the body is not a JSON object%s%s",
		    j == NULL ? ": " : "", j == NULL ? jerr.text : "");
		json_decref(j);
		return CK_E_PARSE;
	}
	if (!json_is_string(v = json_object_get(j, "profile")) ||
	    json_string_length(v) == 0 || json_string_length(v) >= 64 ||
	    !json_is_string(json_object_get(j, "csr"))) {
		snprintf(err, errsz, "\"profile\" and \"csr\" (PEM) are "
		    "required strings");
		json_decref(j);
		return CK_E_PARSE;
	}
	snprintf(out->profile, sizeof(out->profile), "%s",
	    json_string_value(v));
	if (strlen(out->profile) != json_string_length(v)) {
		snprintf(err, errsz, "\"profile\" contains a NUL character");
		json_decref(j);
		return CK_E_PARSE;
	}
	if ((v = json_object_get(j, "days")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 36500) {
			snprintf(err, errsz, "\"days\" must be an integer from "
			    "1 to 36500");
			json_decref(j);
			return CK_E_PARSE;
		}
		out->days = (uint32_t)json_integer_value(v);
	}
	out->json = j;
	out->csr = (const unsigned char *)json_string_value(
	    json_object_get(j, "csr"));
	out->csr_len = json_string_length(json_object_get(j, "csr"));
	return 0;
}

/* A request kept for approval: answered once it is durable. */
struct submission {
	struct server *sv;
	struct http_pending *pending;
	struct store_request rq;
	int needed;
};

static int
submit_write(struct ck_ca *ca, void *arg)
{
	struct submission *sb = arg;

	return ck_request_record(ca, &sb->rq);
}

static void
submit_done(void *arg, int r, const char *msg)
{
	struct submission *sb = arg;
	struct http_response resp;
	json_t *j;

	memset(&resp, 0, sizeof(resp));
	if (r != 0)
		http_problem(&resp, 503, "internal", "the request could not be "
		    "recorded: %s", msg);
	else if ((j = json_pack("{s:I, s:s, s:s, s:i, s:i}", "id",
	    (json_int_t)sb->rq.id, "status", "pending", "profile",
	    sb->rq.profile, "approvals_needed", sb->needed, "approvals",
	    0)) == NULL)
		http_problem(&resp, 500, "internal", "cannot encode response");
	else {
		json_respond(&resp, 202, j);
		snprintf(resp.location, sizeof(resp.location),
		    "/api/v1/requests/%lld", (long long)sb->rq.id);
		resp.retry_after = REST_REQUEST_RETRY_S;
	}
	http_pending_finish(sb->pending, &resp);
	store_request_clear(&sb->rq);
	free(sb);
}

/* Keep P for approval (it passed every check); caller holds sv->lock. */
static enum http_result
submit(struct server *sv, const struct http_request *req,
    struct http_response *resp, const struct ck_issue_params *p,
    const char *requester)
{
	struct ck_request_origin o;
	struct submission *sb;
	char reason[768];
	int r;

	if ((sb = calloc(1, sizeof(*sb))) == NULL) {
		http_problem(resp, 503, "internal", "out of memory");
		return HTTP_DONE;
	}
	memset(&o, 0, sizeof(o));
	o.requester = requester;
	if ((r = ck_request_build(sv->ca, p, &o, &sb->rq)) != 0) {
		free(sb);
		snprintf(reason, sizeof(reason), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		return refuse(sv, req, resp, requester, p->profile,
		    problem_status(r), problem_type(r), reason);
	}
	sb->sv = sv;
	sb->pending = req->pending;
	sb->needed = ck_request_needed(sv->ca, sb->rq.profile);
	ck_pipeline_write(sv->pl, submit_write, sb, submit_done, sb);
	return HTTP_DEFERRED;
}

void
rest_issue_req_clear(struct rest_issue_req *r)
{
	json_decref(r->json);
	free(r->csr_buf);
	memset(r, 0, sizeof(*r));
}

static enum http_result
rest_issue(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;
	struct principal pr;
	struct ck_issue_params p;
	struct ck_issue_job *job = NULL;
	struct issue_wait *w;
	struct rest_issue_req ir;
	const char *profile = NULL;
	char reason[768], requester[160];
	uint64_t start = metrics_now_us();
	enum http_result hr;
	int r;

	if (authenticate(sv, req, &pr) != 0)
		return refuse_unauthenticated(sv, req, resp);
	snprintf(requester, sizeof(requester), "%s", pr.name);
	if (req->content_type == NULL ||
	    strncasecmp(req->content_type, "application/json", 16) != 0) {
		auth_done(sv, &pr);
		return refuse(sv, req, resp, requester, NULL, 415,
		    "content-type", "send the request as application/json");
	}
	if (rest_parse_issue(req->body, req->body_len, &ir, reason,
	    sizeof(reason)) != 0) {
		auth_done(sv, &pr);
		return refuse(sv, req, resp, requester, NULL, 400, "malformed",
		    reason);
	}
	memset(&p, 0, sizeof(p));
	p.path_len = -1;
	p.requester = requester;
	p.days = ir.days;
	profile = ir.profile;
	p.profile = profile;
	p.csr = ir.csr;
	p.csr_len = ir.csr_len;
	{
		/* No CA certificates through the API: a token's name rules
		 * would not bind what such a CA signs. */
		const struct ck_profile *cp = ck_config_profile(sv->ca->cfg,
		    profile);
		if (cp != NULL && cp->is_ca) {
			snprintf(reason, sizeof(reason), "profile '%s' issues "
			    "CA certificates, which the API does not",
			    profile);
			hr = refuse(sv, req, resp, requester, profile, 403,
			    "rejected", reason);
			goto out;
		}
	}
	if (pr.token != NULL ? !ck_token_allows_profile(pr.token, profile) :
	    !ck_strlist_has(&sv->client_cert_profiles, profile)) {
		snprintf(reason, sizeof(reason), "%s may not use profile '%s'",
		    requester, profile);
		hr = refuse(sv, req, resp, requester, profile, 403, "rejected",
		    reason);
		goto out;
	}
	r = ck_issue_prepare(sv->ca, &p, pr.token ? pr.token->rules :
	    pr.cert_rules, &job);
	if (r != 0) {
		snprintf(reason, sizeof(reason), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		hr = refuse(sv, req, resp, requester, profile,
		    problem_status(r), problem_type(r), reason);
		goto out;
	}
	{
		/* Judged like any request; kept, not signed, when the profile
		 * wants a certificate manager's approval. */
		const struct ck_profile *cp = ck_config_profile(sv->ca->cfg,
		    profile);
		if (cp != NULL && cp->approvals > 0) {
			ck_issue_job_free(job);
			hr = submit(sv, req, resp, &p, requester);
			goto out;
		}
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		ck_issue_job_free(job);
		http_problem(resp, 503, "internal", "out of memory");
		hr = HTTP_DONE;
		goto out;
	}
	w->sv = sv;
	w->pending = req->pending;
	w->start_us = start;
	ck_pipeline_issue(sv->pl, job, issue_done, w);
	hr = HTTP_DEFERRED;
out:
	auth_done(sv, &pr);
	rest_issue_req_clear(&ir);
	return hr;
}

/* "/api/v1/certificates/SERIAL[/revoke]" -> SERIAL; 0 or -1. */
static int
path_serial(const char *path, const char *suffix, char out[CK_SERIAL_HEX_MAX])
{
	const char *p = path + strlen("/api/v1/certificates/");
	char buf[CK_SERIAL_HEX_MAX + 16];
	size_t n = strlen(p), sl = suffix ? strlen(suffix) : 0;

	if (suffix != NULL) {
		if (n <= sl || strcmp(p + n - sl, suffix) != 0)
			return -1;
		n -= sl;
	}
	if (n == 0 || n >= sizeof(buf) || memchr(p, '/', n) != NULL)
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return ck_serial_normalize(buf, out) == 0 ? 0 : -1;
}

static enum http_result
rest_get(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;
	struct principal pr;
	struct store_cert *c = NULL;
	char serial[CK_SERIAL_HEX_MAX], nb[32], na[32], ra[32];
	char *pem = NULL;
	size_t pemlen;
	json_t *j;
	int r;

	if (authenticate(sv, req, &pr) != 0)
		return refuse_unauthenticated(sv, req, resp);
	auth_done(sv, &pr);
	if (path_serial(req->path, NULL, serial) != 0) {
		http_problem(resp, 404, "not-found", "no such certificate");
		return HTTP_DONE;
	}
	pthread_mutex_lock(&sv->rd_mu);
	r = store_cert_get(sv->rd, serial, &c);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0) {
		http_problem(resp, problem_status(r), problem_type(r),
		    "no certificate with serial %s", serial);
		return HTTP_DONE;
	}
	ck_time_format(c->not_before, nb, sizeof(nb));
	ck_time_format(c->not_after, na, sizeof(na));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "serial",
	    c->serial, "status", store_cert_status_name(c->status), "subject",
	    c->subject, "names", c->names, "profile", c->profile,
	    "not_before", nb, "not_after", na);
	if (j != NULL && c->der != NULL &&
	    ck_der_to_pem(c->der, c->der_len, &pem, &pemlen) == 0)
		json_object_set_new(j, "certificate", json_string(pem));
	if (j != NULL && c->status == STORE_CERT_REVOKED) {
		ck_time_format(c->revoked_at, ra, sizeof(ra));
		json_object_set_new(j, "revoked_at", json_string(ra));
		json_object_set_new(j, "reason",
		    json_string(ck_crl_reason_name(c->reason)));
	}
	free(pem);
	store_cert_free(c);
	if (j == NULL)
		http_problem(resp, 500, "internal", "cannot encode response");
	else
		json_respond(resp, 200, j);
	return HTTP_DONE;
}

/*
 * GET /api/v1/requests/ID: a request awaiting approval, to whoever made
 * it (anyone else is told there is none): pending, approved (being
 * issued), denied with the reason, or issued with the certificate.
 */
static enum http_result
rest_request_get(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;
	struct principal pr;
	struct store_request rq;
	struct store_request_approval *a = NULL;
	struct store_cert *c = NULL;
	const char *p = req->path + strlen("/api/v1/requests/");
	char who[160], t[32], *pem = NULL, *end = NULL;
	size_t n = 0, pemlen = 0;
	long long id;
	json_t *j;
	int r, needed;

	if (authenticate(sv, req, &pr) != 0)
		return refuse_unauthenticated(sv, req, resp);
	snprintf(who, sizeof(who), "%s", pr.name);
	auth_done(sv, &pr);
	if (*p < '1' || *p > '9' || strlen(p) > 18 ||
	    (id = strtoll(p, &end, 10)) <= 0 || *end != '\0') {
		http_problem(resp, 404, "not-found", "no such request");
		return HTTP_DONE;
	}
	pthread_mutex_lock(&sv->rd_mu);
	r = store_request_get(sv->rd, id, &rq);
	if (r == 0 && strcmp(rq.requester, who) != 0) {
		store_request_clear(&rq);
		r = CK_E_NOTFOUND;
	}
	if (r == 0)
		r = store_request_approvals(sv->rd, id, &a, &n);
	if (r == 0 && rq.status == STORE_REQUEST_ISSUED)
		r = store_cert_get(sv->rd, rq.cert_serial, &c);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0) {
		store_request_clear(&rq);
		free(a);
		if (r == CK_E_NOTFOUND)
			http_problem(resp, 404, "not-found", "no request %lld",
			    id);
		else
			http_problem(resp, 500, "internal", "cannot read the "
			    "request");
		return HTTP_DONE;
	}
	pthread_rwlock_rdlock(&sv->lock);
	needed = ck_request_needed(sv->ca, rq.profile);
	pthread_rwlock_unlock(&sv->lock);
	ck_time_format(rq.created_at, t, sizeof(t));
	j = json_pack("{s:I, s:s, s:s, s:s, s:i, s:i}", "id", (json_int_t)id,
	    "status", store_request_status_name(rq.status), "profile",
	    rq.profile, "created_at", t, "approvals_needed", needed,
	    "approvals", (int)n);
	if (j != NULL && rq.status == STORE_REQUEST_DENIED) {
		ck_time_format(rq.decided_at, t, sizeof(t));
		json_object_set_new(j, "denied_at", json_string(t));
		json_object_set_new(j, "reason", json_string(rq.reason ?
		    rq.reason : ""));
	}
	if (j != NULL && c != NULL && c->der != NULL &&
	    ck_der_to_pem(c->der, c->der_len, &pem, &pemlen) == 0) {
		json_object_set_new(j, "serial", json_string(c->serial));
		json_object_set_new(j, "certificate", json_string(pem));
		pthread_rwlock_rdlock(&sv->lock);
		json_object_set_new(j, "chain", json_stringn(sv->chain_pem,
		    sv->chain_len));
		pthread_rwlock_unlock(&sv->lock);
	}
	free(pem);
	free(a);
	store_cert_free(c);
	if (j == NULL)
		http_problem(resp, 500, "internal", "cannot encode response");
	else {
		json_respond(resp, 200, j);
		if (rq.status == STORE_REQUEST_PENDING ||
		    rq.status == STORE_REQUEST_APPROVED)
			resp->retry_after = REST_REQUEST_RETRY_S;
	}
	store_request_clear(&rq);
	return HTTP_DONE;
}

/* 1 if every name of a stored "DNS:a, IP:b" list passes `rules` (or
 * there are no rules). */
static int
names_within(const struct ck_profile *rules, const char *list)
{
	char buf[4096], *tok, *save = NULL, *colon;
	struct ck_name nm;

	if (rules == NULL)
		return 1;
	if (strlen(list) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if ((colon = strchr(tok, ':')) == NULL)
			return 0;
		*colon = '\0';
		if (strcmp(tok, "DNS") == 0)
			nm.type = CK_NAME_DNS;
		else if (strcmp(tok, "IP") == 0)
			nm.type = CK_NAME_IP;
		else if (strcmp(tok, "email") == 0)
			nm.type = CK_NAME_EMAIL;
		else
			return 0;
		snprintf(nm.value, sizeof(nm.value), "%s", colon + 1);
		if (ck_profile_name_check(rules, &nm) != 0)
			return 0;
	}
	return 1;
}

struct revocation {
	struct server_revocation rev;
	struct server *sv;
	struct http_pending *pending;
};

static void
revoke_done(void *arg, int r, const char *msg)
{
	struct revocation *rv = arg;
	struct http_response resp;

	memset(&resp, 0, sizeof(resp));
	if (r != 0)
		http_problem(&resp, 503, "internal", "%s", msg);
	else if (rv->rev.r != 0)
		http_problem(&resp, problem_status(rv->rev.r),
		    problem_type(rv->rev.r), "%s", rv->rev.msg);
	else {
		json_t *j = json_pack("{s:s, s:s, s:s}", "serial",
		    rv->rev.serial, "status", "revoked", "reason",
		    ck_crl_reason_name(rv->rev.reason));
		server_revoked(rv->sv);
		if (j == NULL)
			http_problem(&resp, 500, "internal", "encoding");
		else
			json_respond(&resp, 200, j);
	}
	http_pending_finish(rv->pending, &resp);
	free(rv);
}

static enum http_result
rest_revoke(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;
	struct principal pr;
	struct revocation *rv;
	struct store_cert *c = NULL;
	char serial[CK_SERIAL_HEX_MAX], reason_txt[300];
	json_t *body = NULL, *v;
	int reason = 0, allowed, r;

	if (path_serial(req->path, "/revoke", serial) != 0) {
		http_problem(resp, 404, "not-found", "no such certificate");
		return HTTP_DONE;
	}
	if (authenticate(sv, req, &pr) != 0)
		return refuse_unauthenticated(sv, req, resp);
	if (req->body_len > 0) {
		if ((body = parse_body(req, resp)) == NULL) {
			auth_done(sv, &pr);
			return HTTP_DONE;
		}
		if ((v = json_object_get(body, "reason")) != NULL) {
			if (!json_is_string(v) || (reason =
			    ck_crl_reason_parse(json_string_value(v))) < 0 ||
			    reason == 8) {
				auth_done(sv, &pr);
				json_decref(body);
				http_problem(resp, 400, "malformed", "unknown "
				    "revocation reason");
				return HTTP_DONE;
			}
		}
		json_decref(body);
	}
	pthread_mutex_lock(&sv->rd_mu);
	r = store_cert_get(sv->rd, serial, &c);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0) {
		auth_done(sv, &pr);
		http_problem(resp, 404, "not-found", "no certificate with "
		    "serial %s", serial);
		return HTTP_DONE;
	}
	/* A token with revoke rights, for its own profiles; or the holder
	 * of the certificate's own client certificate. */
	allowed = pr.token != NULL ? (pr.token->can_revoke &&
	    ck_token_allows_profile(pr.token, c->profile) &&
	    names_within(pr.token->rules, c->names)) :
	    (strcmp(pr.name + 5, serial) == 0);
	if (!allowed) {
		snprintf(reason_txt, sizeof(reason_txt), "%s may not revoke "
		    "certificates of profile %s", pr.name, c->profile);
		store_cert_free(c);
		{
			char who[160];
			enum http_result hr;
			snprintf(who, sizeof(who), "%s", pr.name);
			auth_done(sv, &pr);
			hr = refuse(sv, req, resp, who, NULL, 403, "rejected",
			    reason_txt);
			return hr;
		}
	}
	store_cert_free(c);
	if ((rv = calloc(1, sizeof(*rv))) == NULL) {
		auth_done(sv, &pr);
		http_problem(resp, 503, "internal", "out of memory");
		return HTTP_DONE;
	}
	rv->sv = sv;
	rv->pending = req->pending;
	snprintf(rv->rev.requester, sizeof(rv->rev.requester), "%s",
	    pr.name);
	snprintf(rv->rev.serial, sizeof(rv->rev.serial), "%s", serial);
	rv->rev.reason = reason;
	auth_done(sv, &pr);
	ck_pipeline_write(sv->pl, server_revoke_write, &rv->rev, revoke_done,
	    rv);
	return HTTP_DEFERRED;
}

static enum http_result
rest_chain(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct server *sv = ctx;

	(void)req;
	pthread_rwlock_rdlock(&sv->lock);
	http_respond(resp, 200, "application/pem-certificate-chain",
	    sv->chain_pem, sv->chain_len);
	pthread_rwlock_unlock(&sv->lock);
	return HTTP_DONE;
}

/* Revocation routes are matched first: "/api/v1/certificates/" is a
 * prefix of both. */
static enum http_result
rest_cert_post(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	return rest_revoke(ctx, req, resp);
}

const struct http_route rest_routes[] = {
	{ "POST", "/api/v1/certificates", rest_issue, 64 * 1024 },
	{ "GET", "/api/v1/certificates/", rest_get, 0 },
	{ "POST", "/api/v1/certificates/", rest_cert_post, 4096 },
	{ "GET", "/api/v1/requests/", rest_request_get, 0 },
	{ "GET", "/api/v1/ca/chain", rest_chain, 0 },
	/* Remote operators (adminhttp.h). */
	{ "POST", ADMINHTTP_PATH, adminhttp_handle, 64 * 1024 },
};
const size_t rest_nroutes = sizeof(rest_routes) / sizeof(rest_routes[0]);
