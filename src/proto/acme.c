/*
 * acme.c - the ACME server endpoints (RFC 8555): directory, nonces,
 * accounts. See acme.h for the routes and how URLs are built.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "daemon/server.h"
#include "proto/acme.h"
#include "proto/jws.h"
#include "store/store_acme.h"

#define ACME_ERR_PREFIX "urn:ietf:params:acme:error:"
#define ACME_NONCE_RAND 16
#define ACME_NONCE_BYTES (ACME_NONCE_RAND + 4)
#define ACME_CONTACT_MAX 8
#define ACME_CONTACT_LEN 320
#define ACME_HOST_MAX 160	/* so that every URL fits a Location header */
#define ACME_BASE_SIZE (8 + ACME_HOST_MAX + 1)
#define ACME_URL_SIZE 512

/* ---- nonces ---- */

struct nonce_slot {
	unsigned char rnd[ACME_NONCE_RAND];
	int64_t issued;
	int live;
};

struct acme_nonces {
	pthread_mutex_t mu;
	struct nonce_slot *slots;
	size_t cap;
	size_t next;		/* the slot the next nonce takes */
	int64_t ttl;
};

int
acme_nonces_new(size_t cap, int64_t ttl_s, struct acme_nonces **out)
{
	struct acme_nonces *ns;

	if (cap == 0 || cap > UINT32_MAX || ttl_s <= 0)
		return ck_err_set(CK_E_INVAL, "nonce service: bad capacity "
		    "or lifetime");
	if ((ns = calloc(1, sizeof(*ns))) == NULL ||
	    (ns->slots = calloc(cap, sizeof(*ns->slots))) == NULL) {
		free(ns);
		return ck_err_set(CK_E_NOMEM, "nonce service: out of memory");
	}
	pthread_mutex_init(&ns->mu, NULL);
	ns->cap = cap;
	ns->ttl = ttl_s;
	*out = ns;
	return 0;
}

void
acme_nonces_free(struct acme_nonces *ns)
{
	if (ns == NULL)
		return;
	pthread_mutex_destroy(&ns->mu);
	OPENSSL_cleanse(ns->slots, ns->cap * sizeof(*ns->slots));
	free(ns->slots);
	free(ns);
}

int
acme_nonce_issue(struct acme_nonces *ns, int64_t now,
    char out[ACME_NONCE_LEN + 1])
{
	unsigned char b[ACME_NONCE_BYTES];
	struct nonce_slot *s;
	uint32_t i;

	if (RAND_bytes(b, ACME_NONCE_RAND) != 1)
		return ck_err_ssl(CK_E_CRYPTO, "nonce: random number generator");
	/* Slots are reused in order, so a full set forgets its oldest. The
	 * slot number travels in the nonce: one look-up, no table. */
	pthread_mutex_lock(&ns->mu);
	i = (uint32_t)ns->next;
	ns->next = (ns->next + 1) % ns->cap;
	s = &ns->slots[i];
	memcpy(s->rnd, b, ACME_NONCE_RAND);
	s->issued = now;
	s->live = 1;
	pthread_mutex_unlock(&ns->mu);
	b[ACME_NONCE_RAND] = (unsigned char)(i >> 24);
	b[ACME_NONCE_RAND + 1] = (unsigned char)(i >> 16);
	b[ACME_NONCE_RAND + 2] = (unsigned char)(i >> 8);
	b[ACME_NONCE_RAND + 3] = (unsigned char)i;
	ck_jws_b64url_encode(b, sizeof(b), out);
	return 0;
}

int
acme_nonce_consume(struct acme_nonces *ns, int64_t now, const char *nonce)
{
	unsigned char *b = NULL;
	size_t n = 0;
	struct nonce_slot *s;
	uint32_t i;
	int r = CK_E_NOTFOUND;

	if (nonce == NULL || strlen(nonce) != ACME_NONCE_LEN ||
	    ck_jws_b64url_decode(nonce, ACME_NONCE_LEN, "nonce", &b, &n) != 0 ||
	    n != ACME_NONCE_BYTES)
		goto out;
	i = (uint32_t)b[ACME_NONCE_RAND] << 24 |
	    (uint32_t)b[ACME_NONCE_RAND + 1] << 16 |
	    (uint32_t)b[ACME_NONCE_RAND + 2] << 8 |
	    (uint32_t)b[ACME_NONCE_RAND + 3];
	if (i >= ns->cap)
		goto out;
	pthread_mutex_lock(&ns->mu);
	s = &ns->slots[i];
	if (s->live && CRYPTO_memcmp(s->rnd, b, ACME_NONCE_RAND) == 0 &&
	    now - s->issued <= ns->ttl && now >= s->issued - 1) {
		s->live = 0;
		r = 0;
	}
	pthread_mutex_unlock(&ns->mu);
out:
	free(b);
	if (r != 0)
		ck_err_set(r, "unknown, used or expired nonce");
	return r;
}

/* ---- answers ---- */

/* What every handler knows about its request: the base URL from Host and
 * the request's own URL. */
struct acme_ctx {
	struct server *sv;
	char base[ACME_BASE_SIZE];
	char url[ACME_URL_SIZE];
};

/* "https://" HOST, for a Host that is a host name, an IPv4 address or a
 * bracketed IPv6 address, with an optional port. */
static int
ctx_init(struct acme_ctx *cx, struct server *sv,
    const struct http_request *req)
{
	const char *h = req->host, *p;
	size_t n;

	memset(cx, 0, sizeof(*cx));
	cx->sv = sv;
	if (h == NULL || (n = strlen(h)) == 0 || n > ACME_HOST_MAX)
		return CK_E_INVAL;
	for (p = h; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		    *p == ':' || *p == '[' || *p == ']'))
			return CK_E_INVAL;
	snprintf(cx->base, sizeof(cx->base), "https://%s", h);
	if ((size_t)snprintf(cx->url, sizeof(cx->url), "%s%s", cx->base,
	    req->path) >= sizeof(cx->url))
		return CK_E_INVAL;
	return 0;
}

/* The headers every ACME answer carries: a fresh nonce and the index. */
static void
decorate(struct server *sv, const char *base, struct http_response *resp)
{
	if (acme_nonce_issue(sv->acme_nonces, ck_time_now(),
	    resp->replay_nonce) != 0)
		resp->replay_nonce[0] = '\0';
	snprintf(resp->link, sizeof(resp->link),
	    "<%s/acme/directory>;rel=\"index\"", base);
}

static int
problem_status(const char *type)
{
	if (strcmp(type, "unauthorized") == 0)
		return 403;
	if (strcmp(type, "serverInternal") == 0)
		return 500;
	return 400;
}

/* An RFC 8555 problem document of TYPE (without its prefix). STATUS 0:
 * the usual one for TYPE. */
static void
problem_v(struct server *sv, const char *base, struct http_response *resp,
    int status, const char *type, const char *fmt, va_list ap)
{
	char detail[768], urn[96];
	json_t *j;
	char *s = NULL;

	vsnprintf(detail, sizeof(detail), fmt, ap);
	snprintf(urn, sizeof(urn), "%s%s", ACME_ERR_PREFIX, type);
	if (status == 0)
		status = problem_status(type);
	j = json_pack("{s:s, s:s, s:i}", "type", urn, "detail", detail,
	    "status", status);
	if (j != NULL && strcmp(type, "badSignatureAlgorithm") == 0) {
		size_t n, i;
		const char *const *algs = ck_jws_algs_supported(&n);
		json_t *a = json_array();
		for (i = 0; a != NULL && i < n; i++)
			json_array_append_new(a, json_string(algs[i]));
		json_object_set_new(j, "algorithms", a);
	}
	if (j != NULL)
		s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	http_respond_take(resp, status, "application/problem+json", s,
	    s ? strlen(s) : 0);
	if (base != NULL)
		decorate(sv, base, resp);
}

static void
problem(struct acme_ctx *cx, struct http_response *resp, int status,
    const char *type, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
problem(struct acme_ctx *cx, struct http_response *resp, int status,
    const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	problem_v(cx->sv, cx->base[0] != '\0' ? cx->base : NULL, resp, status,
	    type, fmt, ap);
	va_end(ap);
}

static void
respond_json(struct server *sv, const char *base, struct http_response *resp,
    int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s == NULL) {
		struct acme_ctx cx;
		memset(&cx, 0, sizeof(cx));
		cx.sv = sv;
		snprintf(cx.base, sizeof(cx.base), "%s", base);
		problem(&cx, resp, 500, "serverInternal", "out of memory");
		return;
	}
	http_respond_take(resp, status, "application/json", s, strlen(s));
	decorate(sv, base, resp);
}

/* No usable Host: no URLs to give, so no Link, but still a nonce. */
static enum http_result
bad_host(struct server *sv, struct http_response *resp)
{
	http_problem(resp, 400, ACME_ERR_PREFIX "malformed",
	    "missing or unusable Host header");
	if (acme_nonce_issue(sv->acme_nonces, ck_time_now(),
	    resp->replay_nonce) != 0)
		resp->replay_nonce[0] = '\0';
	return HTTP_DONE;
}

/* ---- directory and nonces ---- */

static enum http_result
acme_directory(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	char u[5][ACME_URL_SIZE];
	json_t *j;

	if (ctx_init(&cx, ctx, req) != 0)
		return bad_host(ctx, resp);
	snprintf(u[0], sizeof(u[0]), "%s/acme/new-nonce", cx.base);
	snprintf(u[1], sizeof(u[1]), "%s/acme/new-account", cx.base);
	snprintf(u[2], sizeof(u[2]), "%s/acme/new-order", cx.base);
	snprintf(u[3], sizeof(u[3]), "%s/acme/revoke-cert", cx.base);
	snprintf(u[4], sizeof(u[4]), "%s/acme/key-change", cx.base);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:b}}",
	    "newNonce", u[0], "newAccount", u[1], "newOrder", u[2],
	    "revokeCert", u[3], "keyChange", u[4],
	    "meta", "externalAccountRequired", 0);
	respond_json(cx.sv, cx.base, resp, 200, j);
	json_decref(j);
	return HTTP_DONE;
}

/* RFC 8555 7.2: 200 to HEAD, 204 to GET, never cached. */
static enum http_result
acme_new_nonce(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;

	if (ctx_init(&cx, ctx, req) != 0)
		return bad_host(ctx, resp);
	http_respond(resp, strcmp(req->method, "HEAD") == 0 ? 200 : 204,
	    NULL, NULL, 0);
	resp->cache_control = "no-store";
	decorate(cx.sv, cx.base, resp);
	return HTTP_DONE;
}

/* ---- POST checks common to every ACME request (RFC 8555 6.2-6.5) ---- */

#define WANT_JWK 1	/* signed with its own key (newAccount) */
#define WANT_KID 2	/* signed by an account */

static int
jws_status(int code)
{
	switch (code) {
	case CK_JWS_E_TOOBIG:
		return 413;
	case CK_JWS_E_BADSIG:
		return 403;
	case CK_JWS_E_INTERNAL:
		return 500;
	default:
		return 400;
	}
}

static void
jws_problem(struct acme_ctx *cx, struct http_response *resp, int code)
{
	problem(cx, resp, jws_status(code), ck_jws_problem(code), "%s",
	    ck_err_msg()[0] != '\0' ? ck_err_msg() : ck_jws_strerror(code));
}

/* The account id in a kid (the account's URL), or NULL if it is not one
 * of ours. */
static const char *
kid_account_id(const struct acme_ctx *cx, const char *kid)
{
	size_t n = strlen(cx->base);
	const char *id;

	if (strncmp(kid, cx->base, n) != 0 ||
	    strncmp(kid + n, "/acme/acct/", 11) != 0)
		return NULL;
	id = kid + n + 11;
	if (*id == '\0' || strlen(id) >= STORE_ACME_ID_SIZE ||
	    strchr(id, '/') != NULL)
		return NULL;
	return id;
}

/*
 * Check an ACME POST: media type, JWS form, nonce, url, key choice and
 * signature. On success *out is the parsed request and, for WANT_KID,
 * *acct the (valid) account that signed it. Otherwise resp holds the
 * problem and -1 is returned.
 */
static int
post_begin(struct acme_ctx *cx, const struct http_request *req,
    struct http_response *resp, int want, struct ck_jws **out,
    struct store_acme_account *acct)
{
	struct ck_jws *jws = NULL;
	EVP_PKEY *key = NULL;
	const char *ct = req->content_type, *id;
	size_t ctlen = strlen("application/jose+json");
	int r, ret = -1;

	memset(acct, 0, sizeof(*acct));
	if (ct == NULL || strncasecmp(ct, "application/jose+json", ctlen) != 0 ||
	    (ct[ctlen] != '\0' && ct[ctlen] != ';' && ct[ctlen] != ' ')) {
		problem(cx, resp, 415, "malformed", "Content-Type must be "
		    "application/jose+json");
		goto out;
	}
	ck_err_clear();
	if ((r = ck_jws_parse(req->body, req->body_len, ACME_MAX_BODY, 0,
	    &jws)) != 0) {
		jws_problem(cx, resp, r);
		goto out;
	}
	if (acme_nonce_consume(cx->sv->acme_nonces, ck_time_now(),
	    jws->nonce) != 0) {
		problem(cx, resp, 400, "badNonce", "the nonce is unknown, "
		    "used or expired");
		goto out;
	}
	if (strcmp(jws->url, cx->url) != 0) {
		problem(cx, resp, 403, "unauthorized", "the signed \"url\" "
		    "is not the URL of this request");
		goto out;
	}
	if (want == WANT_JWK) {
		if (jws->jwk == NULL) {
			problem(cx, resp, 400, "malformed", "this request "
			    "must be signed with \"jwk\", not \"kid\"");
			goto out;
		}
		key = jws->jwk;
		EVP_PKEY_up_ref(key);
	} else {
		if (jws->kid == NULL) {
			problem(cx, resp, 400, "malformed", "this request "
			    "must be signed with \"kid\", not \"jwk\"");
			goto out;
		}
		if ((id = kid_account_id(cx, jws->kid)) == NULL) {
			problem(cx, resp, 400, "accountDoesNotExist",
			    "\"kid\" is not an account URL of this server");
			goto out;
		}
		pthread_mutex_lock(&cx->sv->rd_mu);
		r = store_acme_account_get(cx->sv->rd, id, acct);
		pthread_mutex_unlock(&cx->sv->rd_mu);
		if (r == CK_E_NOTFOUND) {
			problem(cx, resp, 400, "accountDoesNotExist", "no "
			    "such account");
			goto out;
		} else if (r != 0) {
			problem(cx, resp, 500, "serverInternal", "cannot "
			    "read the account");
			goto out;
		}
		if (strcmp(acct->status, "valid") != 0) {
			problem(cx, resp, 403, "unauthorized", "the account "
			    "is %s", acct->status);
			goto out;
		}
		ck_err_clear();
		if ((r = ck_jwk_parse_text(acct->jwk, strlen(acct->jwk),
		    &key)) != 0) {
			problem(cx, resp, 500, "serverInternal", "the "
			    "account's key cannot be read");
			goto out;
		}
	}
	ck_err_clear();
	if ((r = ck_jws_verify(jws, key)) != 0) {
		jws_problem(cx, resp, r);
		goto out;
	}
	*out = jws;
	jws = NULL;
	ret = 0;
out:
	EVP_PKEY_free(key);
	ck_jws_free(jws);
	if (ret != 0)
		store_acme_account_clear(acct);
	return ret;
}

/* The payload as a JSON object; NULL with resp filled otherwise. */
static json_t *
payload_object(struct acme_ctx *cx, const struct ck_jws *jws,
    struct http_response *resp)
{
	json_error_t e;
	json_t *j;

	j = json_loadb((const char *)jws->payload, jws->payload_len,
	    JSON_REJECT_DUPLICATES, &e);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		problem(cx, resp, 400, "malformed", "the payload is not a "
		    "JSON object");
		return NULL;
	}
	return j;
}

/* "contact" checked (mailto: URLs of one address each) and as compact
 * JSON text in *out; NULL member: *out NULL. 0, or -1 with resp filled. */
static int
contacts_check(struct acme_ctx *cx, const json_t *c,
    struct http_response *resp, char **out)
{
	size_t i;
	const json_t *v;

	*out = NULL;
	if (c == NULL)
		return 0;
	if (!json_is_array(c)) {
		problem(cx, resp, 400, "malformed", "\"contact\" is not an "
		    "array");
		return -1;
	}
	if (json_array_size(c) > ACME_CONTACT_MAX) {
		problem(cx, resp, 400, "invalidContact", "more than %d "
		    "contacts", ACME_CONTACT_MAX);
		return -1;
	}
	json_array_foreach(c, i, v) {
		const char *s, *p;
		if (!json_is_string(v)) {
			problem(cx, resp, 400, "malformed", "a contact is "
			    "not a string");
			return -1;
		}
		s = json_string_value(v);
		if (strncasecmp(s, "mailto:", 7) != 0) {
			problem(cx, resp, 400, "unsupportedContact", "only "
			    "mailto: contacts are supported");
			return -1;
		}
		/* One plain address: no hfields, no list, printable. */
		if (strlen(s) > ACME_CONTACT_LEN || strchr(s + 7, '@') == NULL) {
			problem(cx, resp, 400, "invalidContact", "not an "
			    "e-mail address");
			return -1;
		}
		for (p = s + 7; *p != '\0'; p++)
			if (*p <= ' ' || *p >= 127 || *p == ',' || *p == '?' ||
			    *p == '<' || *p == '>' || *p == '"') {
				problem(cx, resp, 400, "invalidContact", "not "
				    "a single plain e-mail address");
				return -1;
			}
	}
	if ((*out = json_dumps(c, JSON_COMPACT)) == NULL) {
		problem(cx, resp, 500, "serverInternal", "out of memory");
		return -1;
	}
	return 0;
}

/* The account object (RFC 8555 7.1.2). */
static json_t *
account_json(const char *base, const struct store_acme_account *a)
{
	char orders[ACME_URL_SIZE];
	json_t *j, *c = NULL;

	if (a->contact != NULL)
		c = json_loads(a->contact, 0, NULL);
	if (c == NULL || !json_is_array(c)) {
		json_decref(c);
		c = json_array();
	}
	snprintf(orders, sizeof(orders), "%s/acme/acct/%s/orders", base,
	    a->id);
	j = json_pack("{s:s, s:o, s:b, s:s}", "status", a->status,
	    "contact", c, "termsOfServiceAgreed", a->tos_agreed,
	    "orders", orders);
	return j;
}

static void
account_respond(struct server *sv, const char *base,
    struct http_response *resp, int status,
    const struct store_acme_account *a)
{
	json_t *j = account_json(base, a);

	respond_json(sv, base, resp, status, j);
	json_decref(j);
	snprintf(resp->location, sizeof(resp->location), "%s/acme/acct/%s",
	    base, a->id);
}

/* ---- account writes, through the pipeline ---- */

enum acct_op { ACCT_CREATE, ACCT_UPDATE, ACCT_KEY_CHANGE };

struct acct_job {
	struct server *sv;
	struct http_pending *pending;
	char base[ACME_BASE_SIZE];
	enum acct_op op;
	struct store_acme_account a;	/* CREATE: the new account */
	char id[STORE_ACME_ID_SIZE];	/* UPDATE: which */
	char *status;			/* UPDATE: NULL or the new one */
	char *contact;			/* UPDATE: NULL or the new one */
	/* KEY_CHANGE: the key replaced; the new one in a.jwk and
	 * a.jwk_thumbprint. */
	char old_tp[CK_JWK_THUMBPRINT_LEN + 1];
};

static void
acct_job_free(struct acct_job *jb)
{
	if (jb == NULL)
		return;
	store_acme_account_clear(&jb->a);
	free(jb->status);
	free(jb->contact);
	free(jb);
}

static int
acct_write(struct ck_ca *ca, void *arg)
{
	struct acct_job *jb = arg;
	char user[96], detail[1024];
	int r;

	if (jb->op == ACCT_CREATE) {
		if ((r = store_acme_account_create(ca->st, &jb->a)) != 0)
			return r;
		snprintf(user, sizeof(user), "acme:%s", jb->a.id);
		snprintf(detail, sizeof(detail), "key %s, contact %s, terms "
		    "of service %s", jb->a.jwk_thumbprint,
		    jb->a.contact ? jb->a.contact : "[]",
		    jb->a.tos_agreed ? "agreed" : "not agreed");
		return audit_append(ca->st, user, "acme-account-new",
		    jb->a.id, AUDIT_OK, detail);
	}
	if (jb->op == ACCT_KEY_CHANGE) {
		if ((r = store_acme_account_key_change(ca->st, jb->id,
		    jb->old_tp, jb->a.jwk_thumbprint, jb->a.jwk)) != 0)
			return r;
		snprintf(user, sizeof(user), "acme:%s", jb->id);
		snprintf(detail, sizeof(detail), "key %s replaced by %s",
		    jb->old_tp, jb->a.jwk_thumbprint);
		return audit_append(ca->st, user, "acme-account-key-change",
		    jb->id, AUDIT_OK, detail);
	}
	if ((r = store_acme_account_update(ca->st, jb->id, jb->status,
	    jb->contact)) != 0)
		return r;
	snprintf(user, sizeof(user), "acme:%s", jb->id);
	snprintf(detail, sizeof(detail), "%s%s%s%s",
	    jb->status ? "status " : "", jb->status ? jb->status : "",
	    jb->contact ? (jb->status ? ", contact " : "contact ") : "",
	    jb->contact ? jb->contact : "");
	return audit_append(ca->st, user, jb->status != NULL &&
	    strcmp(jb->status, "deactivated") == 0 ?
	    "acme-account-deactivate" : "acme-account-update", jb->id,
	    AUDIT_OK, detail);
}

static void
acct_done(void *arg, int r, const char *msg)
{
	struct acct_job *jb = arg;
	struct http_response resp;
	struct store_acme_account a;
	struct acme_ctx cx;
	int status = 200, g;

	memset(&resp, 0, sizeof(resp));
	memset(&a, 0, sizeof(a));
	memset(&cx, 0, sizeof(cx));
	cx.sv = jb->sv;
	snprintf(cx.base, sizeof(cx.base), "%s", jb->base);
	if (jb->op == ACCT_CREATE && r == 0) {
		account_respond(jb->sv, jb->base, &resp, 201, &jb->a);
		goto out;
	}
	if (jb->op == ACCT_CREATE && r == CK_E_EXISTS) {
		/* Registered by a request racing this one: that account. */
		pthread_mutex_lock(&jb->sv->rd_mu);
		g = store_acme_account_get_by_key(jb->sv->rd,
		    jb->a.jwk_thumbprint, &a);
		pthread_mutex_unlock(&jb->sv->rd_mu);
		if (g == 0 && strcmp(a.status, "valid") == 0) {
			account_respond(jb->sv, jb->base, &resp, 200, &a);
			goto out;
		}
		if (g == 0) {
			problem(&cx, &resp, 403, "unauthorized", "the account "
			    "of this key is %s", a.status);
			goto out;
		}
	}
	if (jb->op == ACCT_KEY_CHANGE && r == CK_E_EXISTS) {
		/* RFC 8555 7.3.5: 409 naming the account of the new key. */
		pthread_mutex_lock(&jb->sv->rd_mu);
		g = store_acme_account_get_by_key(jb->sv->rd,
		    jb->a.jwk_thumbprint, &a);
		pthread_mutex_unlock(&jb->sv->rd_mu);
		problem(&cx, &resp, 409, "malformed", "the new key belongs "
		    "to another account");
		if (g == 0)
			snprintf(resp.location, sizeof(resp.location),
			    "%s/acme/acct/%s", jb->base, a.id);
		goto out;
	}
	if (jb->op == ACCT_KEY_CHANGE && r == CK_E_STATE) {
		problem(&cx, &resp, 403, "unauthorized", "the account is no "
		    "longer valid or its key changed meanwhile");
		goto out;
	}
	if (jb->op == ACCT_UPDATE && r == CK_E_STATE) {
		problem(&cx, &resp, 403, "unauthorized", "the account is no "
		    "longer valid");
		goto out;
	}
	if (r != 0) {
		problem(&cx, &resp, 500, "serverInternal", "the account could "
		    "not be recorded: %s", msg ? msg : ck_strerror(r));
		goto out;
	}
	pthread_mutex_lock(&jb->sv->rd_mu);
	g = store_acme_account_get(jb->sv->rd, jb->id, &a);
	pthread_mutex_unlock(&jb->sv->rd_mu);
	if (g != 0)
		problem(&cx, &resp, 500, "serverInternal", "the account "
		    "cannot be read back");
	else
		account_respond(jb->sv, jb->base, &resp, status, &a);
out:
	store_acme_account_clear(&a);
	http_pending_finish(jb->pending, &resp);
	acct_job_free(jb);
}

/* ---- newAccount (RFC 8555 7.3) ---- */

static enum http_result
acme_new_account(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account none, a;
	struct acct_job *jb = NULL;
	char tp[CK_JWK_THUMBPRINT_LEN + 1], *contact = NULL, *jwk = NULL;
	unsigned char idb[16];
	json_t *p = NULL, *v;
	enum http_result hr = HTTP_DONE;
	int only_existing = 0, tos = 0, r;

	memset(&a, 0, sizeof(a));
	if (ctx_init(&cx, ctx, req) != 0)
		return bad_host(ctx, resp);
	if (post_begin(&cx, req, resp, WANT_JWK, &jws, &none) != 0)
		return HTTP_DONE;
	if ((p = payload_object(&cx, jws, resp)) == NULL)
		goto out;
	if ((v = json_object_get(p, "onlyReturnExisting")) != NULL) {
		if (!json_is_boolean(v)) {
			problem(&cx, resp, 400, "malformed",
			    "\"onlyReturnExisting\" is not a boolean");
			goto out;
		}
		only_existing = json_is_true(v);
	}
	if ((v = json_object_get(p, "termsOfServiceAgreed")) != NULL) {
		if (!json_is_boolean(v)) {
			problem(&cx, resp, 400, "malformed",
			    "\"termsOfServiceAgreed\" is not a boolean");
			goto out;
		}
		tos = json_is_true(v);
	}
	if (ck_jwk_thumbprint(jws->jwk, tp) != 0 ||
	    ck_jwk_canonical(jws->jwk, &jwk) != 0) {
		problem(&cx, resp, 400, "badPublicKey", "unsupported key");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_account_get_by_key(cx.sv->rd, tp, &a);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (r == 0) {
		/* RFC 8555 7.3.1: the existing account, 200, unchanged. */
		if (strcmp(a.status, "valid") != 0)
			problem(&cx, resp, 403, "unauthorized", "the account "
			    "of this key is %s", a.status);
		else
			account_respond(cx.sv, cx.base, resp, 200, &a);
		goto out;
	}
	if (r != CK_E_NOTFOUND) {
		problem(&cx, resp, 500, "serverInternal", "cannot read the "
		    "accounts");
		goto out;
	}
	if (only_existing) {
		problem(&cx, resp, 400, "accountDoesNotExist", "no account "
		    "has this key");
		goto out;
	}
	if (contacts_check(&cx, json_object_get(p, "contact"), resp,
	    &contact) != 0)
		goto out;
	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    (jb = calloc(1, sizeof(*jb))) == NULL) {
		problem(&cx, resp, 500, "serverInternal", "no account id");
		goto out;
	}
	jb->sv = cx.sv;
	jb->pending = req->pending;
	snprintf(jb->base, sizeof(jb->base), "%s", cx.base);
	jb->op = ACCT_CREATE;
	ck_jws_b64url_encode(idb, sizeof(idb), jb->a.id);
	snprintf(jb->id, sizeof(jb->id), "%s", jb->a.id);
	snprintf(jb->a.jwk_thumbprint, sizeof(jb->a.jwk_thumbprint), "%s", tp);
	snprintf(jb->a.status, sizeof(jb->a.status), "valid");
	jb->a.jwk = jwk;
	jb->a.contact = contact;
	jb->a.tos_agreed = tos;
	jb->a.created_at = ck_time_now();
	jwk = contact = NULL;
	ck_pipeline_write(cx.sv->pl, acct_write, jb, acct_done, jb);
	jb = NULL;
	hr = HTTP_DEFERRED;
out:
	acct_job_free(jb);
	store_acme_account_clear(&a);
	free(jwk);
	free(contact);
	json_decref(p);
	ck_jws_free(jws);
	return hr;
}

/* ---- the account (RFC 8555 7.3.2, 7.3.6) ---- */

static enum http_result
acme_account(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account a;
	struct acct_job *jb = NULL;
	const char *id = req->path + strlen("/acme/acct/");
	char *contact = NULL;
	json_t *p = NULL, *v;
	enum http_result hr = HTTP_DONE;
	const char *status = NULL;

	if (ctx_init(&cx, ctx, req) != 0)
		return bad_host(ctx, resp);
	if (*id == '\0' || strchr(id, '/') != NULL ||
	    strlen(id) >= STORE_ACME_ID_SIZE) {
		problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	if (post_begin(&cx, req, resp, WANT_KID, &jws, &a) != 0)
		return HTTP_DONE;
	/* Only the account itself may read or change it. */
	if (strcmp(jws->kid, cx.url) != 0) {
		problem(&cx, resp, 403, "unauthorized", "signed by another "
		    "account");
		goto out;
	}
	if (jws->payload_len == 0) {	/* POST-as-GET */
		account_respond(cx.sv, cx.base, resp, 200, &a);
		goto out;
	}
	if ((p = payload_object(&cx, jws, resp)) == NULL)
		goto out;
	if ((v = json_object_get(p, "status")) != NULL) {
		if (!json_is_string(v) || (strcmp(json_string_value(v),
		    "deactivated") != 0 && strcmp(json_string_value(v),
		    "valid") != 0)) {
			problem(&cx, resp, 400, "malformed", "an account's "
			    "\"status\" can only become \"deactivated\"");
			goto out;
		}
		if (strcmp(json_string_value(v), "deactivated") == 0)
			status = "deactivated";
	}
	if (contacts_check(&cx, json_object_get(p, "contact"), resp,
	    &contact) != 0)
		goto out;
	if (status == NULL && contact == NULL) {
		account_respond(cx.sv, cx.base, resp, 200, &a);
		goto out;
	}
	if ((jb = calloc(1, sizeof(*jb))) == NULL ||
	    (status != NULL && (jb->status = strdup(status)) == NULL)) {
		problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	jb->sv = cx.sv;
	jb->pending = req->pending;
	snprintf(jb->base, sizeof(jb->base), "%s", cx.base);
	jb->op = ACCT_UPDATE;
	snprintf(jb->id, sizeof(jb->id), "%s", a.id);
	jb->contact = contact;
	contact = NULL;
	ck_pipeline_write(cx.sv->pl, acct_write, jb, acct_done, jb);
	jb = NULL;
	hr = HTTP_DEFERRED;
out:
	acct_job_free(jb);
	free(contact);
	json_decref(p);
	store_acme_account_clear(&a);
	ck_jws_free(jws);
	return hr;
}

/* ---- key rollover (RFC 8555 7.3.5) ---- */

static enum http_result
acme_key_change(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL, *inner = NULL;
	struct store_acme_account a, other;
	struct acct_job *jb = NULL;
	char tp[CK_JWK_THUMBPRINT_LEN + 1], old_tp[CK_JWK_THUMBPRINT_LEN + 1];
	char *jwk = NULL;
	EVP_PKEY *old = NULL;
	json_t *p = NULL, *v;
	json_error_t e;
	enum http_result hr = HTTP_DONE;
	int r;

	memset(&other, 0, sizeof(other));
	if (ctx_init(&cx, ctx, req) != 0)
		return bad_host(ctx, resp);
	if (post_begin(&cx, req, resp, WANT_KID, &jws, &a) != 0)
		return HTTP_DONE;
	ck_err_clear();
	/* The payload is itself a JWS, signed by the new key, without a
	 * nonce. */
	if ((r = ck_jws_parse(jws->payload, jws->payload_len, ACME_MAX_BODY,
	    CK_JWS_INNER, &inner)) != 0) {
		jws_problem(&cx, resp, r);
		goto out;
	}
	if (inner->jwk == NULL) {
		problem(&cx, resp, 400, "malformed", "the inner JWS must be "
		    "signed with \"jwk\" (the new key)");
		goto out;
	}
	if (strcmp(inner->url, jws->url) != 0) {
		problem(&cx, resp, 400, "malformed", "the inner and outer "
		    "\"url\" differ");
		goto out;
	}
	ck_err_clear();
	if ((r = ck_jws_verify(inner, inner->jwk)) != 0) {
		jws_problem(&cx, resp, r);
		goto out;
	}
	p = json_loadb((const char *)inner->payload, inner->payload_len,
	    JSON_REJECT_DUPLICATES, &e);
	if (p == NULL || !json_is_object(p) ||
	    !json_is_string(v = json_object_get(p, "account")) ||
	    json_object_get(p, "oldKey") == NULL) {
		problem(&cx, resp, 400, "malformed", "the inner payload must "
		    "be {\"account\", \"oldKey\"}");
		goto out;
	}
	if (strcmp(json_string_value(v), jws->kid) != 0) {
		problem(&cx, resp, 400, "malformed", "the inner \"account\" "
		    "is not the signing account");
		goto out;
	}
	if (ck_jwk_parse(json_object_get(p, "oldKey"), &old) != 0 ||
	    ck_jwk_thumbprint(old, old_tp) != 0 ||
	    strcmp(old_tp, a.jwk_thumbprint) != 0) {
		problem(&cx, resp, 400, "malformed", "\"oldKey\" is not the "
		    "account's current key");
		goto out;
	}
	if (ck_jwk_thumbprint(inner->jwk, tp) != 0 ||
	    ck_jwk_canonical(inner->jwk, &jwk) != 0) {
		problem(&cx, resp, 400, "badPublicKey", "unsupported key");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_account_get_by_key(cx.sv->rd, tp, &other);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (r == 0) {
		problem(&cx, resp, 409, "malformed", "the new key belongs to "
		    "an account already");
		snprintf(resp->location, sizeof(resp->location),
		    "%s/acme/acct/%s", cx.base, other.id);
		goto out;
	}
	if ((jb = calloc(1, sizeof(*jb))) == NULL) {
		problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	jb->sv = cx.sv;
	jb->pending = req->pending;
	snprintf(jb->base, sizeof(jb->base), "%s", cx.base);
	jb->op = ACCT_KEY_CHANGE;
	snprintf(jb->id, sizeof(jb->id), "%s", a.id);
	snprintf(jb->old_tp, sizeof(jb->old_tp), "%s", old_tp);
	snprintf(jb->a.jwk_thumbprint, sizeof(jb->a.jwk_thumbprint), "%s", tp);
	jb->a.jwk = jwk;
	jwk = NULL;
	ck_pipeline_write(cx.sv->pl, acct_write, jb, acct_done, jb);
	jb = NULL;
	hr = HTTP_DEFERRED;
out:
	acct_job_free(jb);
	free(jwk);
	EVP_PKEY_free(old);
	json_decref(p);
	store_acme_account_clear(&other);
	store_acme_account_clear(&a);
	ck_jws_free(inner);
	ck_jws_free(jws);
	return hr;
}

const struct http_route acme_routes[] = {
	{ "GET", "/acme/directory", acme_directory, 0 },
	{ "HEAD", "/acme/new-nonce", acme_new_nonce, 0 },
	{ "GET", "/acme/new-nonce", acme_new_nonce, 0 },
	{ "POST", "/acme/new-account", acme_new_account, ACME_MAX_BODY },
	{ "POST", "/acme/acct/", acme_account, ACME_MAX_BODY },
	{ "POST", "/acme/key-change", acme_key_change, ACME_MAX_BODY },
};
const size_t acme_nroutes = sizeof(acme_routes) / sizeof(acme_routes[0]);
