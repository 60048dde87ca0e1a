/*
 * acme.c - the ACME server endpoints (RFC 8555): directory, nonces,
 * accounts. See acme.h for the routes and how URLs are built.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit/audit.h"
#include "ca/config.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "daemon/server.h"
#include "proto/acme.h"
#include "proto/acme_eab.h"
#include "proto/acme_int.h"
#include "x509/names.h"
#include "proto/jws.h"
#include "profile/profile.h"
#include "store/store_acme.h"
#include "x509/serial.h"

#define ACME_NONCE_RAND 16
#define ACME_NONCE_BYTES (ACME_NONCE_RAND + 4)
#define ACME_CONTACT_MAX 8
#define ACME_CONTACT_LEN 320

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


/* "https://" HOST, for a Host that is a host name, an IPv4 address or a
 * bracketed IPv6 address, with an optional port. */
int
acme_ctx_init(struct acme_ctx *cx, struct server *sv,
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

void
acme_ctx_for(struct acme_ctx *cx, struct server *sv, const char *base)
{
	memset(cx, 0, sizeof(*cx));
	cx->sv = sv;
	snprintf(cx->base, sizeof(cx->base), "%s", base);
}

void
acme_decorate(struct server *sv, const char *base, struct http_response *resp)
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
		acme_decorate(sv, base, resp);
}

void
acme_problem(struct acme_ctx *cx, struct http_response *resp, int status,
    const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	problem_v(cx->sv, cx->base[0] != '\0' ? cx->base : NULL, resp, status,
	    type, fmt, ap);
	va_end(ap);
}

/*
 * The result R of reading one of an account's objects (WHAT: "order",
 * "authorization", "challenge") owned by OWNER, for account ACCT: 0 to go
 * on; otherwise the problem (404 unknown, 500 unreadable, 403 another
 * account's) is answered and -1 returned.
 */
int
acme_own_object(struct acme_ctx *cx, struct http_response *resp, int r,
    const char *what, const char *owner, const char *acct)
{
	if (r == CK_E_NOTFOUND)
		acme_problem(cx, resp, 404, "malformed", "no such %s", what);
	else if (r != 0)
		acme_problem(cx, resp, 500, "serverInternal", "cannot read the %s",
		    what);
	else if (strcmp(owner, acct) != 0)
		acme_problem(cx, resp, 403, "unauthorized", "the %s belongs to "
		    "another account", what);
	else
		return 0;
	return -1;
}


void
acme_respond_json(struct server *sv, const char *base, struct http_response *resp,
    int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s == NULL) {
		struct acme_ctx cx;
		acme_ctx_for(&cx, sv, base);
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		return;
	}
	http_respond_take(resp, status, "application/json", s, strlen(s));
	acme_decorate(sv, base, resp);
}

/* No usable Host: no URLs to give, so no Link, but still a nonce. */
enum http_result
acme_bad_host(struct server *sv, struct http_response *resp)
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
	char u[6][ACME_URL_SIZE];
	const struct ck_acme_config *ac;
	json_t *j, *meta;

	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	snprintf(u[0], sizeof(u[0]), "%s/acme/new-nonce", cx.base);
	snprintf(u[1], sizeof(u[1]), "%s/acme/new-account", cx.base);
	snprintf(u[2], sizeof(u[2]), "%s/acme/new-order", cx.base);
	snprintf(u[3], sizeof(u[3]), "%s/acme/revoke-cert", cx.base);
	snprintf(u[4], sizeof(u[4]), "%s/acme/key-change", cx.base);
	snprintf(u[5], sizeof(u[5]), "%s/acme/renewal-info", cx.base);
	/* The configuration is swapped under the write lock (SIGHUP). */
	pthread_rwlock_rdlock(&cx.sv->lock);
	ac = &cx.sv->ca->cfg->acme;
	meta = json_pack("{s:b}", "externalAccountRequired",
	    ac->eab_required);
	if (meta != NULL && ac->caa_identity[0] != '\0')
		json_object_set_new(meta, "caaIdentities",
		    json_pack("[s]", ac->caa_identity));
	pthread_rwlock_unlock(&cx.sv->lock);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
	    "newNonce", u[0], "newAccount", u[1], "newOrder", u[2],
	    "revokeCert", u[3], "keyChange", u[4], "renewalInfo", u[5],
	    "meta", meta);
	acme_respond_json(cx.sv, cx.base, resp, 200, j);
	json_decref(j);
	return HTTP_DONE;
}

/* RFC 8555 7.2: 200 to HEAD, 204 to GET, never cached. */
static enum http_result
acme_new_nonce(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;

	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	http_respond(resp, strcmp(req->method, "HEAD") == 0 ? 200 : 204,
	    NULL, NULL, 0);
	resp->cache_control = "no-store";
	acme_decorate(cx.sv, cx.base, resp);
	return HTTP_DONE;
}

/* ---- POST checks common to every ACME request (RFC 8555 6.2-6.5) ---- */


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
	acme_problem(cx, resp, jws_status(code), ck_jws_problem(code), "%s",
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
 * Account keys, parsed and checked once: ck_jwk_parse() checks the point
 * (a scalar multiplication for EC keys), which cost more than verifying
 * the request's signature. Keyed by the SHA-256 of the account's
 * canonical JWK text, so a key change is simply another entry; a slot
 * holds the last key that hashed to it.
 */
#define KEY_CACHE_SLOTS 1024

static struct {
	unsigned char h[32];
	EVP_PKEY *key;
} key_cache[KEY_CACHE_SLOTS];
static pthread_mutex_t key_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static int
key_cache_get(const char *jwk, EVP_PKEY **out)
{
	unsigned char h[32];
	unsigned slot;
	EVP_PKEY *k = NULL;
	int r;

	if (EVP_Digest(jwk, strlen(jwk), h, NULL, EVP_sha256(), NULL) != 1)
		return ck_jwk_parse_text(jwk, strlen(jwk), out);
	slot = ((unsigned)h[0] << 8 | h[1]) % KEY_CACHE_SLOTS;
	pthread_mutex_lock(&key_cache_mu);
	if (key_cache[slot].key != NULL &&
	    memcmp(key_cache[slot].h, h, 32) == 0) {
		k = key_cache[slot].key;
		EVP_PKEY_up_ref(k);
	}
	pthread_mutex_unlock(&key_cache_mu);
	if (k != NULL) {
		*out = k;
		return 0;
	}
	if ((r = ck_jwk_parse_text(jwk, strlen(jwk), &k)) != 0)
		return r;
	EVP_PKEY_up_ref(k);
	pthread_mutex_lock(&key_cache_mu);
	EVP_PKEY_free(key_cache[slot].key);
	key_cache[slot].key = k;
	memcpy(key_cache[slot].h, h, 32);
	pthread_mutex_unlock(&key_cache_mu);
	*out = k;
	return 0;
}

void
acme_key_cache_clear(void)
{
	size_t i;

	pthread_mutex_lock(&key_cache_mu);
	for (i = 0; i < KEY_CACHE_SLOTS; i++) {
		EVP_PKEY_free(key_cache[i].key);
		key_cache[i].key = NULL;
	}
	pthread_mutex_unlock(&key_cache_mu);
}

/*
 * Check an ACME POST: media type, JWS form, nonce, url, key choice and
 * signature. On success *out is the parsed request and, for WANT_KID,
 * *acct the (valid) account that signed it. Otherwise resp holds the
 * problem and -1 is returned.
 */
int
acme_post_begin(struct acme_ctx *cx, const struct http_request *req,
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
		acme_problem(cx, resp, 415, "malformed", "Content-Type must be "
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
		acme_problem(cx, resp, 400, "badNonce", "the nonce is unknown, "
		    "used or expired");
		goto out;
	}
	if (strcmp(jws->url, cx->url) != 0) {
		acme_problem(cx, resp, 403, "unauthorized", "the signed \"url\" "
		    "is not the URL of this request");
		goto out;
	}
	if (want == WANT_ANY)
		want = jws->jwk != NULL ? WANT_JWK : WANT_KID;
	if (want == WANT_JWK) {
		if (jws->jwk == NULL) {
			acme_problem(cx, resp, 400, "malformed", "this request "
			    "must be signed with \"jwk\", not \"kid\"");
			goto out;
		}
		key = jws->jwk;
		EVP_PKEY_up_ref(key);
	} else {
		if (jws->kid == NULL) {
			acme_problem(cx, resp, 400, "malformed", "this request "
			    "must be signed with \"kid\", not \"jwk\"");
			goto out;
		}
		if ((id = kid_account_id(cx, jws->kid)) == NULL) {
			acme_problem(cx, resp, 400, "accountDoesNotExist",
			    "\"kid\" is not an account URL of this server");
			goto out;
		}
		pthread_mutex_lock(&cx->sv->rd_mu);
		r = store_acme_account_get(cx->sv->rd, id, acct);
		pthread_mutex_unlock(&cx->sv->rd_mu);
		if (r == CK_E_NOTFOUND) {
			acme_problem(cx, resp, 400, "accountDoesNotExist", "no "
			    "such account");
			goto out;
		} else if (r != 0) {
			acme_problem(cx, resp, 500, "serverInternal", "cannot "
			    "read the account");
			goto out;
		}
		if (strcmp(acct->status, "valid") != 0) {
			acme_problem(cx, resp, 403, "unauthorized", "the account "
			    "is %s", acct->status);
			goto out;
		}
		ck_err_clear();
		if ((r = key_cache_get(acct->jwk, &key)) != 0) {
			acme_problem(cx, resp, 500, "serverInternal", "the "
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
json_t *
acme_payload_object(struct acme_ctx *cx, const struct ck_jws *jws,
    struct http_response *resp)
{
	json_error_t e;
	json_t *j;

	j = json_loadb((const char *)jws->payload, jws->payload_len,
	    JSON_REJECT_DUPLICATES, &e);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		acme_problem(cx, resp, 400, "malformed", "the payload is not a "
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
		acme_problem(cx, resp, 400, "malformed", "\"contact\" is not an "
		    "array");
		return -1;
	}
	if (json_array_size(c) > ACME_CONTACT_MAX) {
		acme_problem(cx, resp, 400, "invalidContact", "more than %d "
		    "contacts", ACME_CONTACT_MAX);
		return -1;
	}
	json_array_foreach(c, i, v) {
		const char *s, *p;
		if (!json_is_string(v)) {
			acme_problem(cx, resp, 400, "malformed", "a contact is "
			    "not a string");
			return -1;
		}
		s = json_string_value(v);
		if (strncasecmp(s, "mailto:", 7) != 0) {
			acme_problem(cx, resp, 400, "unsupportedContact", "only "
			    "mailto: contacts are supported");
			return -1;
		}
		/* One plain address: no hfields, no list, printable. */
		if (strlen(s) > ACME_CONTACT_LEN || strchr(s + 7, '@') == NULL) {
			acme_problem(cx, resp, 400, "invalidContact", "not an "
			    "e-mail address");
			return -1;
		}
		for (p = s + 7; *p != '\0'; p++)
			if (*p <= ' ' || *p >= 127 || *p == ',' || *p == '?' ||
			    *p == '<' || *p == '>' || *p == '"') {
				acme_problem(cx, resp, 400, "invalidContact", "not "
				    "a single plain e-mail address");
				return -1;
			}
	}
	if ((*out = json_dumps(c, JSON_COMPACT)) == NULL) {
		acme_problem(cx, resp, 500, "serverInternal", "out of memory");
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

	acme_respond_json(sv, base, resp, status, j);
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
		/* The binding's guard refuses a kid bound or revoked since
		 * the request was checked. */
		if (jb->a.eab_kid != NULL && (r = store_acme_eab_bind(ca->st,
		    jb->a.eab_kid, jb->a.id, jb->a.created_at)) != 0)
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
	acme_ctx_for(&cx, jb->sv, jb->base);
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
			acme_problem(&cx, &resp, 403, "unauthorized", "the account "
			    "of this key is %s", a.status);
			goto out;
		}
	}
	if (jb->op == ACCT_CREATE && r == CK_E_STATE &&
	    jb->a.eab_kid != NULL) {
		acme_problem(&cx, &resp, 403, "unauthorized", "external "
		    "account binding: the key id was bound to another "
		    "account or revoked meanwhile");
		goto out;
	}
	if (jb->op == ACCT_KEY_CHANGE && r == CK_E_EXISTS) {
		/* RFC 8555 7.3.5: 409 naming the account of the new key. */
		pthread_mutex_lock(&jb->sv->rd_mu);
		g = store_acme_account_get_by_key(jb->sv->rd,
		    jb->a.jwk_thumbprint, &a);
		pthread_mutex_unlock(&jb->sv->rd_mu);
		acme_problem(&cx, &resp, 409, "malformed", "the new key belongs "
		    "to another account");
		if (g == 0)
			snprintf(resp.location, sizeof(resp.location),
			    "%s/acme/acct/%s", jb->base, a.id);
		goto out;
	}
	if (jb->op == ACCT_KEY_CHANGE && r == CK_E_STATE) {
		acme_problem(&cx, &resp, 403, "unauthorized", "the account is no "
		    "longer valid or its key changed meanwhile");
		goto out;
	}
	if (jb->op == ACCT_UPDATE && r == CK_E_STATE) {
		acme_problem(&cx, &resp, 403, "unauthorized", "the account is no "
		    "longer valid");
		goto out;
	}
	if (r != 0) {
		acme_problem(&cx, &resp, 500, "serverInternal", "the account could "
		    "not be recorded: %s", msg ? msg : ck_strerror(r));
		goto out;
	}
	pthread_mutex_lock(&jb->sv->rd_mu);
	g = store_acme_account_get(jb->sv->rd, jb->id, &a);
	pthread_mutex_unlock(&jb->sv->rd_mu);
	if (g != 0)
		acme_problem(&cx, &resp, 500, "serverInternal", "the account "
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
	char kid[STORE_ACME_ID_SIZE] = "";
	unsigned char idb[16];
	json_t *p = NULL, *v;
	enum http_result hr = HTTP_DONE;
	int only_existing = 0, tos = 0, r;

	memset(&a, 0, sizeof(a));
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	if (acme_post_begin(&cx, req, resp, WANT_JWK, &jws, &none) != 0)
		return HTTP_DONE;
	if ((p = acme_payload_object(&cx, jws, resp)) == NULL)
		goto out;
	if ((v = json_object_get(p, "onlyReturnExisting")) != NULL) {
		if (!json_is_boolean(v)) {
			acme_problem(&cx, resp, 400, "malformed",
			    "\"onlyReturnExisting\" is not a boolean");
			goto out;
		}
		only_existing = json_is_true(v);
	}
	if ((v = json_object_get(p, "termsOfServiceAgreed")) != NULL) {
		if (!json_is_boolean(v)) {
			acme_problem(&cx, resp, 400, "malformed",
			    "\"termsOfServiceAgreed\" is not a boolean");
			goto out;
		}
		tos = json_is_true(v);
	}
	if (ck_jwk_thumbprint(jws->jwk, tp) != 0 ||
	    ck_jwk_canonical(jws->jwk, &jwk) != 0) {
		acme_problem(&cx, resp, 400, "badPublicKey", "unsupported key");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_account_get_by_key(cx.sv->rd, tp, &a);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (r == 0) {
		/* RFC 8555 7.3.1: the existing account, 200, unchanged. */
		if (strcmp(a.status, "valid") != 0)
			acme_problem(&cx, resp, 403, "unauthorized", "the account "
			    "of this key is %s", a.status);
		else
			account_respond(cx.sv, cx.base, resp, 200, &a);
		goto out;
	}
	if (r != CK_E_NOTFOUND) {
		acme_problem(&cx, resp, 500, "serverInternal", "cannot read the "
		    "accounts");
		goto out;
	}
	if (only_existing) {
		acme_problem(&cx, resp, 400, "accountDoesNotExist", "no account "
		    "has this key");
		goto out;
	}
	v = json_object_get(p, "externalAccountBinding");
	pthread_rwlock_rdlock(&cx.sv->lock);
	r = cx.sv->ca->cfg->acme.eab_required;
	pthread_rwlock_unlock(&cx.sv->lock);
	if (v == NULL && r) {
		acme_problem(&cx, resp, 400, "externalAccountRequired", "this "
		    "server registers only accounts with an external account "
		    "binding (ask the CA's operators for a key id and key)");
		goto out;
	}
	if (v != NULL) {
		const char *ptype = "malformed";
		char detail[512];
		ck_err_clear();
		if (acme_eab_check(cx.sv, v, jws, kid, &ptype, detail,
		    sizeof(detail)) != 0) {
			acme_problem(&cx, resp, 0, ptype, "external account "
			    "binding: %s", detail);
			goto out;
		}
	}
	if (contacts_check(&cx, json_object_get(p, "contact"), resp,
	    &contact) != 0)
		goto out;
	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    (jb = calloc(1, sizeof(*jb))) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "no account id");
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
	if (v != NULL && (jb->a.eab_kid = strdup(kid)) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
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

static void orders_list(struct acme_ctx *cx, const struct http_request *req,
    struct http_response *resp, const struct ck_jws *jws,
    const struct store_acme_account *a, const char *id);

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

	const char *slash;
	char list_of[STORE_ACME_ID_SIZE];

	list_of[0] = '\0';
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	/* ID, or ID/orders[/CURSOR]: the account's orders list. */
	if ((slash = strchr(id, '/')) != NULL &&
	    strncmp(slash, "/orders", 7) == 0 &&
	    (slash[7] == '\0' || slash[7] == '/') &&
	    slash > id && (size_t)(slash - id) < STORE_ACME_ID_SIZE)
		snprintf(list_of, sizeof(list_of), "%.*s", (int)(slash - id),
		    id);
	else if (*id == '\0' || slash != NULL ||
	    strlen(id) >= STORE_ACME_ID_SIZE) {
		acme_problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &a) != 0)
		return HTTP_DONE;
	if (list_of[0] != '\0') {
		orders_list(&cx, req, resp, jws, &a, list_of);
		goto out;
	}
	/* Only the account itself may read or change it. */
	if (strcmp(jws->kid, cx.url) != 0) {
		acme_problem(&cx, resp, 403, "unauthorized", "signed by another "
		    "account");
		goto out;
	}
	if (jws->payload_len == 0) {	/* POST-as-GET */
		account_respond(cx.sv, cx.base, resp, 200, &a);
		goto out;
	}
	if ((p = acme_payload_object(&cx, jws, resp)) == NULL)
		goto out;
	if ((v = json_object_get(p, "status")) != NULL) {
		if (!json_is_string(v) || (strcmp(json_string_value(v),
		    "deactivated") != 0 && strcmp(json_string_value(v),
		    "valid") != 0)) {
			acme_problem(&cx, resp, 400, "malformed", "an account's "
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
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
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
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &a) != 0)
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
		acme_problem(&cx, resp, 400, "malformed", "the inner JWS must be "
		    "signed with \"jwk\" (the new key)");
		goto out;
	}
	if (strcmp(inner->url, jws->url) != 0) {
		acme_problem(&cx, resp, 400, "malformed", "the inner and outer "
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
		acme_problem(&cx, resp, 400, "malformed", "the inner payload must "
		    "be {\"account\", \"oldKey\"}");
		goto out;
	}
	if (strcmp(json_string_value(v), jws->kid) != 0) {
		acme_problem(&cx, resp, 400, "malformed", "the inner \"account\" "
		    "is not the signing account");
		goto out;
	}
	if (ck_jwk_parse(json_object_get(p, "oldKey"), &old) != 0 ||
	    ck_jwk_thumbprint(old, old_tp) != 0 ||
	    strcmp(old_tp, a.jwk_thumbprint) != 0) {
		acme_problem(&cx, resp, 400, "malformed", "\"oldKey\" is not the "
		    "account's current key");
		goto out;
	}
	if (ck_jwk_thumbprint(inner->jwk, tp) != 0 ||
	    ck_jwk_canonical(inner->jwk, &jwk) != 0) {
		acme_problem(&cx, resp, 400, "badPublicKey", "unsupported key");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_account_get_by_key(cx.sv->rd, tp, &other);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (r == 0) {
		acme_problem(&cx, resp, 409, "malformed", "the new key belongs to "
		    "an account already");
		snprintf(resp->location, sizeof(resp->location),
		    "%s/acme/acct/%s", cx.base, other.id);
		goto out;
	}
	if ((jb = calloc(1, sizeof(*jb))) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
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

/* ---- orders, authorizations, challenges (RFC 8555 7.4, 7.5; RFC 8738) */

#define ACME_ORDER_TTL (7 * 86400)
#define ACME_AUTHZ_TTL (7 * 86400)
#define ACME_CAA_REUSE_S (8 * 3600)
#define ACME_ORDERS_PAGE 50	/* orders per page of an account's list */

/*
 * The profile whose name rules bind what ACME orders may name: [acme]
 * profile, by default the server profile 'certkeep init' writes
 * (tls-server: the CA's DNS suffixes, loopback addresses, wildcards only
 * if that profile allows them).
 */
const char *
acme_profile_name(const struct server *sv)
{
	return sv->ca->cfg->acme.profile;
}

void
acme_user(const char *account_id, char out[96])
{
	snprintf(out, 96, "acme:%.80s", account_id);
}

/* A fresh id or token: 128 random bits, base64url (22 characters). */
int
acme_new_id(char out[STORE_ACME_ID_SIZE])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return ck_err_ssl(CK_E_CRYPTO, "ACME id: random number "
		    "generator");
	ck_jws_b64url_encode(b, sizeof(b), out);
	return 0;
}

/* A path's last segment after PREFIX into id; -1 if it is not one. */
int
acme_path_id(const char *path, const char *prefix, char id[STORE_ACME_ID_SIZE])
{
	const char *p = path + strlen(prefix);

	if (*p == '\0' || strchr(p, '/') != NULL ||
	    strlen(p) >= STORE_ACME_ID_SIZE)
		return -1;
	snprintf(id, STORE_ACME_ID_SIZE, "%s", p);
	return 0;
}

/* rejectedIdentifier (RFC 8555 6.7.1) with one subproblem per refused
 * identifier; SUB is borrowed. */
void
acme_problem_rejected(struct server *sv, const char *base,
    struct http_response *resp, const char *detail, json_t *sub)
{
	json_t *j;
	char *s = NULL;

	j = json_pack("{s:s, s:s, s:i, s:O}", "type",
	    ACME_ERR_PREFIX "rejectedIdentifier", "detail", detail, "status",
	    400, "subproblems", sub);
	if (j != NULL)
		s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	http_respond_take(resp, 400, "application/problem+json", s,
	    s ? strlen(s) : 0);
	acme_decorate(sv, base, resp);
}

void
acme_time_str(int64_t t, char buf[32])
{
	ck_time_format(t, buf, 32);
}

const char *
acme_order_status_now(const struct store_acme_order *o, int64_t now)
{
	if (o->expires <= now && (strcmp(o->status, "pending") == 0 ||
	    strcmp(o->status, "ready") == 0))
		return "invalid";
	return o->status;
}

const char *
acme_authz_status_now(const struct store_acme_authz *a, int64_t now)
{
	if (a->expires <= now && (strcmp(a->status, "pending") == 0 ||
	    strcmp(a->status, "valid") == 0))
		return "expired";
	return a->status;
}

/* The order object (RFC 8555 7.1.3); AUTHZ_IDS is borrowed. */
json_t *
acme_order_json(const char *base, const struct store_acme_order *o,
    const json_t *authz_ids)
{
	char u[ACME_URL_SIZE], t[32];
	json_t *j, *ids, *az, *v;
	size_t i;

	ids = json_loads(o->identifiers, 0, NULL);
	if (ids == NULL || !json_is_array(ids)) {
		json_decref(ids);
		ids = json_array();
	}
	if ((az = json_array()) == NULL) {
		json_decref(ids);
		return NULL;
	}
	json_array_foreach(authz_ids, i, v) {
		snprintf(u, sizeof(u), "%s/acme/authz/%s", base,
		    json_string_value(v));
		json_array_append_new(az, json_string(u));
	}
	acme_time_str(o->expires, t);
	snprintf(u, sizeof(u), "%s/acme/order/%s/finalize", base, o->id);
	j = json_pack("{s:s, s:s, s:o, s:o, s:s}", "status",
	    acme_order_status_now(o, ck_time_now()),
	    "expires", t, "identifiers", ids, "authorizations", az,
	    "finalize", u);
	if (j == NULL)
		return NULL;
	if (o->not_before != 0) {
		acme_time_str(o->not_before, t);
		json_object_set_new(j, "notBefore", json_string(t));
	}
	if (o->not_after != 0) {
		acme_time_str(o->not_after, t);
		json_object_set_new(j, "notAfter", json_string(t));
	}
	if (o->error != NULL && (v = json_loads(o->error, 0, NULL)) != NULL)
		json_object_set_new(j, "error", v);
	if (strcmp(o->status, "valid") == 0) {
		snprintf(u, sizeof(u), "%s/acme/cert/%s", base, o->id);
		json_object_set_new(j, "certificate", json_string(u));
	}
	if (o->replaces != NULL && o->replaces[0] != '\0')
		json_object_set_new(j, "replaces", json_string(o->replaces));
	return j;
}

json_t *
acme_challenge_json(const char *base, const struct store_acme_challenge *c)
{
	char u[ACME_URL_SIZE], t[32];
	json_t *j, *e;

	snprintf(u, sizeof(u), "%s/acme/chall/%s", base, c->id);
	j = json_pack("{s:s, s:s, s:s, s:s}", "type", c->type, "url", u,
	    "token", c->token, "status", c->status);
	if (j == NULL)
		return NULL;
	if (c->validated != 0) {
		acme_time_str(c->validated, t);
		json_object_set_new(j, "validated", json_string(t));
	}
	if (c->error != NULL && (e = json_loads(c->error, 0, NULL)) != NULL)
		json_object_set_new(j, "error", e);
	return j;
}

/* The authorization object (RFC 8555 7.1.4), with its challenges. */
json_t *
acme_authz_json(const char *base, const struct store_acme_authz *a)
{
	char t[32];
	json_t *j, *ch;
	size_t i;

	if ((ch = json_array()) == NULL)
		return NULL;
	for (i = 0; i < a->nchallenges; i++)
		json_array_append_new(ch, acme_challenge_json(base,
		    &a->challenges[i]));
	acme_time_str(a->expires, t);
	j = json_pack("{s:{s:s, s:s}, s:s, s:s, s:o}", "identifier", "type",
	    a->identifier_type, "value", a->identifier_value, "status",
	    acme_authz_status_now(a, ck_time_now()), "expires", t,
	    "challenges", ch);
	if (j != NULL && a->wildcard)
		json_object_set_new(j, "wildcard", json_true());
	return j;
}

static int
authz_id_cb(const struct store_acme_authz *a, void *arg)
{
	return json_array_append_new(arg, json_string(a->id)) == 0 ? 0 :
	    CK_E_NOMEM;
}

/* Answer with order O as read back from the read connection. */
void
acme_order_respond(struct server *sv, const char *base,
    struct http_response *resp, int status, const struct store_acme_order *o)
{
	struct acme_ctx cx;
	json_t *ids = json_array(), *j = NULL;
	int r = CK_E_NOMEM;

	if (ids != NULL) {
		pthread_mutex_lock(&sv->rd_mu);
		r = store_acme_order_authzs(sv->rd, o->id, authz_id_cb, ids);
		pthread_mutex_unlock(&sv->rd_mu);
	}
	if (r != 0) {
		acme_ctx_for(&cx, sv, base);
		acme_problem(&cx, resp, 500, "serverInternal", "cannot read the "
		    "order's authorizations");
		json_decref(ids);
		return;
	}
	j = acme_order_json(base, o, ids);
	acme_respond_json(sv, base, resp, status, j);
	/* Processing may last (an approval): say when to look again. */
	if (strcmp(o->status, "processing") == 0)
		resp->retry_after = ACME_PROCESSING_RETRY_S;
	json_decref(j);
	json_decref(ids);
	snprintf(resp->location, sizeof(resp->location), "%s/acme/order/%s",
	    base, o->id);
}

/* ---- newOrder, through the pipeline ---- */

struct order_job {
	struct server *sv;
	struct http_pending *pending;
	char base[ACME_BASE_SIZE];
	struct store_acme_order o;
	struct store_acme_authz *az;
	size_t naz;
	json_t *sub;		/* refused identifiers (subproblems) */
	const char *ptype;	/* a refusal other than the profile's */
	int pstatus;
	unsigned retry_after;
};

static void
order_job_free(struct order_job *jb)
{
	size_t i;

	if (jb == NULL)
		return;
	for (i = 0; i < jb->naz; i++)
		store_acme_authz_clear(&jb->az[i]);
	free(jb->az);
	store_acme_order_clear(&jb->o);
	json_decref(jb->sub);
	free(jb);
}

/* The challenges an identifier is offered (RFC 8555 8, RFC 8737, RFC
 * 8738): dns-01 only for a wildcard, no dns-01 for an address. */
static int
authz_add_challenges(struct store_acme_authz *a)
{
	const char *types[3];
	size_t n = 0, i;

	if (a->wildcard) {
		types[n++] = "dns-01";
	} else {
		types[n++] = "http-01";
		if (strcmp(a->identifier_type, "dns") == 0)
			types[n++] = "dns-01";
		types[n++] = "tls-alpn-01";
	}
	if ((a->challenges = calloc(n, sizeof(*a->challenges))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	a->nchallenges = n;
	for (i = 0; i < n; i++) {
		struct store_acme_challenge *c = &a->challenges[i];
		snprintf(c->type, sizeof(c->type), "%s", types[i]);
		snprintf(c->status, sizeof(c->status), "pending");
		if (acme_new_id(c->id) != 0 || acme_new_id(c->token) != 0)
			return CK_E_CRYPTO;
	}
	return 0;
}

/* Replace A's fresh challenges by copies of those of the valid
 * authorization FOUND (same tokens and results, new ids). */
static int
authz_reuse(struct store_acme_authz *a, const struct store_acme_authz *found)
{
	struct store_acme_challenge *c;
	size_t i;

	if ((c = calloc(found->nchallenges ? found->nchallenges : 1,
	    sizeof(*c))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	for (i = 0; i < a->nchallenges; i++)
		store_acme_challenge_clear(&a->challenges[i]);
	free(a->challenges);
	a->challenges = c;
	a->nchallenges = found->nchallenges;
	for (i = 0; i < found->nchallenges; i++) {
		snprintf(c[i].type, sizeof(c[i].type), "%s",
		    found->challenges[i].type);
		snprintf(c[i].token, sizeof(c[i].token), "%s",
		    found->challenges[i].token);
		snprintf(c[i].status, sizeof(c[i].status), "%s",
		    found->challenges[i].status);
		c[i].validated = found->challenges[i].validated;
		if (acme_new_id(c[i].id) != 0)
			return CK_E_CRYPTO;
	}
	snprintf(a->status, sizeof(a->status), "valid");
	a->expires = found->expires;
	return 0;
}

/*
 * Rate limits ([acme] orders_per_hour per account, certs_per_name_per_week
 * per identifier) and ARI's one replacement per certificate, judged on the
 * committer so that concurrent orders cannot all slip under a limit.
 */
static int
order_limits(struct ck_ca *ca, struct order_job *jb, int64_t now)
{
	const struct ck_acme_config *ac = &ca->cfg->acme;
	int64_t n;
	size_t i;
	int r;

	if (ac->orders_per_hour != 0) {
		if ((r = store_acme_orders_since(ca->st, jb->o.account_id,
		    now - 3600, &n)) != 0)
			return r;
		if (n >= (int64_t)ac->orders_per_hour) {
			jb->ptype = "rateLimited";
			jb->pstatus = 429;
			jb->retry_after = 3600;
			return ck_err_set(CK_E_POLICY, "this account created "
			    "%lld orders in the last hour; the limit is %u",
			    (long long)n, ac->orders_per_hour);
		}
	}
	for (i = 0; ac->certs_per_name_per_week != 0 && i < jb->naz; i++) {
		const struct store_acme_authz *a = &jb->az[i];
		if ((r = store_acme_certs_for_name_since(ca->st,
		    a->identifier_type, a->identifier_value, a->wildcard,
		    now - 7 * 86400, &n)) != 0)
			return r;
		if (n >= (int64_t)ac->certs_per_name_per_week) {
			jb->ptype = "rateLimited";
			jb->pstatus = 429;
			jb->retry_after = 86400;
			return ck_err_set(CK_E_POLICY, "%lld certificates for "
			    "%s%s in the last week; the limit is %u",
			    (long long)n, a->wildcard ? "*." : "",
			    a->identifier_value, ac->certs_per_name_per_week);
		}
	}
	if (jb->o.replaces != NULL) {
		if ((r = store_acme_order_replaced(ca->st, jb->o.replaces,
		    &n)) != 0)
			return r;
		if (n != 0) {
			jb->ptype = "alreadyReplaced";
			jb->pstatus = 409;
			return ck_err_set(CK_E_POLICY, "certificate %s is "
			    "already being replaced by another order",
			    jb->o.replaces);
		}
	}
	return 0;
}

/*
 * On the committer: judge the identifiers by the profile (the
 * configuration is only swapped there, so it cannot change under us),
 * reuse valid authorizations, record the order and audit it.
 */
static int
order_write(struct ck_ca *ca, void *arg)
{
	struct order_job *jb = arg;
	const struct ck_profile *pf;
	struct store_acme_authz found, full;
	struct ck_name n;
	char user[96], detail[1024];
	size_t i, reused = 0;
	int64_t now = ck_time_now();
	int r;

	memset(&found, 0, sizeof(found));
	memset(&full, 0, sizeof(full));
	if ((pf = ck_config_profile(ca->cfg, ca->cfg->acme.profile)) == NULL)
		return ck_err_set(CK_E_POLICY, "the configuration has no "
		    "profile '%s' for ACME", ca->cfg->acme.profile);
	for (i = 0; i < jb->naz; i++) {
		const struct store_acme_authz *a = &jb->az[i];
		memset(&n, 0, sizeof(n));
		n.type = strcmp(a->identifier_type, "ip") == 0 ?
		    CK_NAME_IP : CK_NAME_DNS;
		/* Lengths were checked on the way in (dns_ident). */
		if (a->wildcard) {
			memcpy(n.value, "*.", 2);
			snprintf(n.value + 2, sizeof(n.value) - 2, "%.253s",
			    a->identifier_value);
		} else
			snprintf(n.value, sizeof(n.value), "%s",
			    a->identifier_value);
		ck_err_clear();
		if (ck_profile_name_check(pf, &n) != 0)
			json_array_append_new(jb->sub, json_pack(
			    "{s:s, s:s, s:{s:s, s:s}}", "type",
			    ACME_ERR_PREFIX "rejectedIdentifier", "detail",
			    ck_err_msg(), "identifier", "type",
			    a->identifier_type, "value", n.value));
	}
	if (json_array_size(jb->sub) != 0)
		return ck_err_set(CK_E_POLICY, "identifiers refused by "
		    "profile '%s'", ca->cfg->acme.profile);
	if ((r = order_limits(ca, jb, now)) != 0)
		return r;
	for (i = 0; i < jb->naz; i++) {
		struct store_acme_authz *a = &jb->az[i];
		r = store_acme_authz_find_valid(ca->st, jb->o.account_id,
		    a->identifier_type, a->identifier_value, a->wildcard, now,
		    &found);
		if (r == CK_E_NOTFOUND)
			continue;
		/* CAA (RFC 8659 3) is checked when a name is validated; with
		 * CAA on, an authorization is reused only while that check is
		 * recent (the CA/Browser Forum's 8 hours), so a CAA change
		 * takes effect within that time. */
		if (r == 0 && ca->cfg->acme.caa_identity[0] != '\0' &&
		    strcmp(a->identifier_type, "dns") == 0 &&
		    found.created_at < now - ACME_CAA_REUSE_S) {
			store_acme_authz_clear(&found);
			continue;
		}
		if (r == 0)
			r = store_acme_authz_get(ca->st, found.id, &full);
		if (r == 0)
			r = authz_reuse(a, &full);
		store_acme_authz_clear(&found);
		store_acme_authz_clear(&full);
		if (r != 0)
			return r;
		reused++;
	}
	if (reused == jb->naz)
		snprintf(jb->o.status, sizeof(jb->o.status), "ready");
	/* The order cannot outlive what it needs: a reused authorization
	 * may expire sooner than a fresh order would. */
	for (i = 0; i < jb->naz; i++)
		if (jb->az[i].expires < jb->o.expires)
			jb->o.expires = jb->az[i].expires;
	if ((r = store_acme_order_create(ca->st, &jb->o, jb->az,
	    jb->naz)) != 0)
		return r;
	snprintf(user, sizeof(user), "acme:%s", jb->o.account_id);
	snprintf(detail, sizeof(detail), "identifiers %.900s, %zu "
	    "authorization(s) reused", jb->o.identifiers, reused);
	return audit_append(ca->st, user, "acme-order-new", jb->o.id,
	    AUDIT_OK, detail);
}

static void
order_done(void *arg, int r, const char *msg)
{
	struct order_job *jb = arg;
	struct http_response resp;
	struct store_acme_order o;
	struct acme_ctx cx;
	int g;

	memset(&resp, 0, sizeof(resp));
	memset(&o, 0, sizeof(o));
	acme_ctx_for(&cx, jb->sv, jb->base);
	if (r == CK_E_POLICY && jb->ptype != NULL) {
		acme_problem(&cx, &resp, jb->pstatus, jb->ptype, "%s",
		    msg ? msg : "refused");
		resp.retry_after = jb->retry_after;
		goto out;
	}
	if (r == CK_E_POLICY && json_array_size(jb->sub) != 0) {
		acme_problem_rejected(jb->sv, jb->base, &resp, "the profile does "
		    "not allow some of the identifiers", jb->sub);
		goto out;
	}
	if (r != 0) {
		acme_problem(&cx, &resp, 500, "serverInternal", "the order could "
		    "not be recorded: %s", msg ? msg : ck_strerror(r));
		goto out;
	}
	pthread_mutex_lock(&jb->sv->rd_mu);
	g = store_acme_order_get(jb->sv->rd, jb->o.id, &o);
	pthread_mutex_unlock(&jb->sv->rd_mu);
	if (g != 0)
		acme_problem(&cx, &resp, 500, "serverInternal", "the order cannot "
		    "be read back");
	else
		acme_order_respond(jb->sv, jb->base, &resp, 201, &o);
out:
	store_acme_order_clear(&o);
	http_pending_finish(jb->pending, &resp);
	order_job_free(jb);
}

/* A DNS name as ACME takes it: lower case, letters, digits, hyphens and
 * dots; "*." only in front (then *wildcard is set and it is dropped). */
static int
dns_ident(char *v, int *wildcard)
{
	char *p;

	*wildcard = 0;
	if (strncmp(v, "*.", 2) == 0) {
		*wildcard = 1;
		memmove(v, v + 2, strlen(v + 2) + 1);
	}
	if (*v == '\0' || *v == '.' || strlen(v) > 253)
		return -1;
	for (p = v; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
		else if (!((*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return -1;
	}
	/* A last label of digits only is an address in disguise (it would
	 * be connected to without any lookup): "ip" identifiers are for
	 * those. Empty labels are not names either. */
	if (p[-1] == '.' || strstr(v, "..") != NULL)
		return -1;
	if ((p = strrchr(v, '.')) == NULL)
		p = v;
	else
		p++;
	if (strspn(p, "0123456789") == strlen(p))
		return -1;
	return 0;
}

/* An address as RFC 8738 wants it (dotted quad, or RFC 5952 text for
 * IPv6), rewritten in its canonical form. */
static int
ip_ident(char *v)
{
	char t[CK_IP_TEXT_MAX];

	if (ck_ip_canon(v, t) != 0)
		return -1;
	snprintf(v, ACME_IDENT_SIZE, "%s", t);
	return 0;
}

/* "notBefore"/"notAfter" of a newOrder: absent (0) or an RFC 3339 time. */
static int
order_time(const json_t *p, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(p, key);

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || ck_time_parse(json_string_value(v),
	    out) != 0 || *out <= 0)
		return -1;
	return 0;
}

void
acme_order_req_clear(struct acme_order_req *rq)
{
	if (rq == NULL)
		return;
	free(rq->ids);
	memset(rq, 0, sizeof(*rq));
}

int
acme_order_parse(const unsigned char *payload, size_t len,
    struct acme_order_req *out, const char **ptype)
{
	struct acme_order_req rq;
	json_t *p = NULL, *ids, *v;
	json_error_t e;
	size_t i, k;
	int r = CK_E_PARSE;

	memset(&rq, 0, sizeof(rq));
	*ptype = "malformed";
	p = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &e);
	if (p == NULL || !json_is_object(p)) {
		ck_err_set(r, "the payload is not a JSON object");
		goto out;
	}
	ids = json_object_get(p, "identifiers");
	if (!json_is_array(ids) || json_array_size(ids) == 0) {
		ck_err_set(r, "\"identifiers\" must be a non-empty array");
		goto out;
	}
	if (json_array_size(ids) > ACME_ORDER_MAX_IDS) {
		*ptype = "rejectedIdentifier";
		ck_err_set(r, "more than %d identifiers", ACME_ORDER_MAX_IDS);
		goto out;
	}
	if (order_time(p, "notBefore", &rq.not_before) != 0 ||
	    order_time(p, "notAfter", &rq.not_after) != 0 ||
	    (rq.not_before != 0 && rq.not_after != 0 &&
	    rq.not_after <= rq.not_before)) {
		ck_err_set(r, "\"notBefore\" and \"notAfter\" must be RFC "
		    "3339 times, in that order");
		goto out;
	}
	if ((v = json_object_get(p, "replaces")) != NULL) {
		const char *c = json_string_value(v), *q;
		size_t dots = 0;
		if (c == NULL || json_string_length(v) == 0 ||
		    json_string_length(v) >= sizeof(rq.replaces)) {
			ck_err_set(r, "\"replaces\" must be a certificate "
			    "identifier (RFC 9773)");
			goto out;
		}
		for (q = c; *q != '\0'; q++) {
			if (*q == '.')
				dots++;
			else if (!((*q >= 'a' && *q <= 'z') ||
			    (*q >= 'A' && *q <= 'Z') ||
			    (*q >= '0' && *q <= '9') || *q == '-' ||
			    *q == '_'))
				break;
		}
		if (*q != '\0' || dots != 1 || c[0] == '.' ||
		    q[-1] == '.') {
			ck_err_set(r, "\"replaces\" must be a certificate "
			    "identifier (RFC 9773)");
			goto out;
		}
		snprintf(rq.replaces, sizeof(rq.replaces), "%s", c);
	}
	if ((rq.ids = calloc(json_array_size(ids), sizeof(*rq.ids))) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(ids, i, v) {
		struct acme_ident *id = &rq.ids[i];
		const char *type, *value;
		json_t *t = json_object_get(v, "type");
		json_t *val = json_object_get(v, "value");
		if (!json_is_object(v) || !json_is_string(t) ||
		    !json_is_string(val)) {
			*ptype = "malformed";
			ck_err_set(r, "an identifier must be {\"type\", "
			    "\"value\"}");
			goto out;
		}
		type = json_string_value(t);
		value = json_string_value(val);
		if (strcmp(type, "dns") != 0 && strcmp(type, "ip") != 0) {
			*ptype = "unsupportedIdentifier";
			ck_err_set(r, "identifier type '%.32s' is not "
			    "supported (dns, ip)", type);
			goto out;
		}
		*ptype = "rejectedIdentifier";
		if (strlen(value) != json_string_length(val) ||
		    strlen(value) >= sizeof(id->value)) {
			ck_err_set(r, "an identifier is too long or holds a "
			    "NUL");
			goto out;
		}
		snprintf(id->type, sizeof(id->type), "%s", type);
		snprintf(id->value, sizeof(id->value), "%s", value);
		if (strcmp(type, "dns") == 0 ? dns_ident(id->value,
		    &id->wildcard) != 0 : ip_ident(id->value) != 0) {
			ck_err_set(r, "'%.80s' is not a %s identifier "
			    "(wildcards only as \"*.name\" and only for dns)",
			    value, type);
			goto out;
		}
		for (k = 0; k < i; k++)
			if (strcmp(rq.ids[k].type, id->type) == 0 &&
			    strcmp(rq.ids[k].value, id->value) == 0 &&
			    rq.ids[k].wildcard == id->wildcard) {
				*ptype = "malformed";
				ck_err_set(r, "'%.80s' is named twice", value);
				goto out;
			}
		rq.nids = i + 1;
	}
	*out = rq;
	memset(&rq, 0, sizeof(rq));
	r = 0;
out:
	acme_order_req_clear(&rq);
	json_decref(p);
	return r;
}

static enum http_result
acme_new_order(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account a;
	struct acme_order_req rq;
	struct order_job *jb = NULL;
	const char *ptype;
	json_t *norm = NULL;
	enum http_result hr = HTTP_DONE;
	int64_t now = ck_time_now();
	size_t i;
	int r;

	memset(&rq, 0, sizeof(rq));
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &a) != 0)
		return HTTP_DONE;
	ck_err_clear();
	if ((r = acme_order_parse(jws->payload, jws->payload_len, &rq,
	    &ptype)) != 0) {
		if (r == CK_E_PARSE)
			acme_problem(&cx, resp, 400, ptype, "%s", ck_err_msg());
		else
			acme_problem(&cx, resp, 500, "serverInternal", "out of "
			    "memory");
		goto out;
	}
	if ((jb = calloc(1, sizeof(*jb))) == NULL ||
	    (jb->az = calloc(rq.nids, sizeof(*jb->az))) == NULL ||
	    (jb->sub = json_array()) == NULL ||
	    (norm = json_array()) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	jb->o.not_before = rq.not_before;
	jb->o.not_after = rq.not_after;
	if (rq.replaces[0] != '\0') {
		char serial[CK_SERIAL_HEX_MAX];
		r = acme_certid_parse(cx.sv, rq.replaces, serial);
		if (r != 0) {
			acme_problem(&cx, resp, 400, "malformed", "\"replaces\""
			    ": %s", ck_err_msg());
			goto out;
		}
		{
			struct store_cert *c = NULL;
			char user[96];
			acme_user(a.id, user);
			pthread_mutex_lock(&cx.sv->rd_mu);
			r = store_cert_get(cx.sv->rd, serial, &c);
			pthread_mutex_unlock(&cx.sv->rd_mu);
			if (r == 0 && (c->requester == NULL ||
			    strcmp(c->requester, user) != 0))
				r = CK_E_PERM;
			store_cert_free(c);
			if (r != 0) {
				acme_problem(&cx, resp, r == CK_E_PERM ? 403 :
				    400, r == CK_E_PERM ? "unauthorized" :
				    "malformed", "\"replaces\" names %s",
				    r == CK_E_PERM ? "a certificate this "
				    "account did not order" : "no certificate "
				    "of this CA");
				goto out;
			}
		}
		if ((jb->o.replaces = strdup(serial)) == NULL) {
			acme_problem(&cx, resp, 500, "serverInternal", "out of "
			    "memory");
			goto out;
		}
	}
	for (i = 0; i < rq.nids; i++) {
		struct store_acme_authz *az = &jb->az[i];
		char shown[ACME_IDENT_SIZE + 2];
		jb->naz = i + 1;
		snprintf(az->identifier_type, sizeof(az->identifier_type),
		    "%s", rq.ids[i].type);
		snprintf(az->identifier_value, sizeof(az->identifier_value),
		    "%s", rq.ids[i].value);
		az->wildcard = rq.ids[i].wildcard;
		snprintf(az->status, sizeof(az->status), "pending");
		az->expires = now + ACME_AUTHZ_TTL;
		az->created_at = now;
		if (acme_new_id(az->id) != 0 || authz_add_challenges(az) != 0) {
			acme_problem(&cx, resp, 500, "serverInternal", "no ids");
			goto out;
		}
		snprintf(shown, sizeof(shown), "%s%s",
		    az->wildcard ? "*." : "", az->identifier_value);
		json_array_append_new(norm, json_pack("{s:s, s:s}", "type",
		    az->identifier_type, "value", shown));
	}
	if (acme_new_id(jb->o.id) != 0 ||
	    (jb->o.identifiers = json_dumps(norm, JSON_COMPACT)) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "no order id");
		goto out;
	}
	jb->sv = cx.sv;
	jb->pending = req->pending;
	snprintf(jb->base, sizeof(jb->base), "%s", cx.base);
	snprintf(jb->o.account_id, sizeof(jb->o.account_id), "%s", a.id);
	snprintf(jb->o.status, sizeof(jb->o.status), "pending");
	jb->o.expires = now + ACME_ORDER_TTL;
	jb->o.created_at = now;
	ck_pipeline_write(cx.sv->pl, order_write, jb, order_done, jb);
	jb = NULL;
	hr = HTTP_DEFERRED;
out:
	order_job_free(jb);
	acme_order_req_clear(&rq);
	json_decref(norm);
	store_acme_account_clear(&a);
	ck_jws_free(jws);
	return hr;
}

/* ---- the order (RFC 8555 7.1.3) ---- */

static enum http_result
acme_order(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account a;
	struct store_acme_order o;
	char id[STORE_ACME_ID_SIZE];
	int r;

	memset(&o, 0, sizeof(o));
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	{
		size_t n = strlen(req->path);
		if (n > 9 && strcmp(req->path + n - 9, "/finalize") == 0)
			return acme_finalize(ctx, req, resp);
	}
	if (acme_path_id(req->path, "/acme/order/", id) != 0) {
		acme_problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &a) != 0)
		return HTTP_DONE;
	if (jws->payload_len != 0) {
		acme_problem(&cx, resp, 400, "malformed", "an order is read with "
		    "POST-as-GET (empty payload)");
		goto out;
	}
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_order_get(cx.sv->rd, id, &o);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (acme_own_object(&cx, resp, r, "order", o.account_id, a.id) != 0)
		goto out;
	acme_order_respond(cx.sv, cx.base, resp, 200, &o);
	resp->location[0] = '\0';
out:
	store_acme_order_clear(&o);
	store_acme_account_clear(&a);
	ck_jws_free(jws);
	return HTTP_DONE;
}

/* ---- the account's orders (RFC 8555 7.1.2.1), paged ---- */

struct orders_page {
	const char *base;
	json_t *urls;
	char last[STORE_ACME_ID_SIZE];
};

static int
orders_page_cb(const struct store_acme_order *o, void *arg)
{
	struct orders_page *pg = arg;
	char u[ACME_URL_SIZE];

	snprintf(pg->last, sizeof(pg->last), "%s", o->id);
	/* Invalid orders are left out, as the RFC suggests. */
	if (strcmp(o->status, "invalid") == 0)
		return 0;
	snprintf(u, sizeof(u), "%s/acme/order/%s", pg->base, o->id);
	return json_array_append_new(pg->urls, json_string(u)) == 0 ? 0 :
	    CK_E_NOMEM;
}

/*
 * The cursor of a page: the last segment of ".../orders/CURSOR" (the id
 * after which the page starts), or "" for ".../orders". The HTTP layer
 * gives handlers no query string, so the cursor is in the path.
 */
static int
orders_cursor(const char *path, char after[STORE_ACME_ID_SIZE])
{
	const char *c = strstr(path, "/orders");

	after[0] = '\0';
	if (c == NULL)
		return -1;
	c += 7;
	if (*c == '\0')
		return 0;
	c++;
	if (*c == '\0' || strlen(c) >= STORE_ACME_ID_SIZE ||
	    strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_") != strlen(c))
		return -1;
	snprintf(after, STORE_ACME_ID_SIZE, "%s", c);
	return 0;
}

/* ID is the account whose list is asked for; A signed the request. */
static void
orders_list(struct acme_ctx *cx, const struct http_request *req,
    struct http_response *resp, const struct ck_jws *jws,
    const struct store_acme_account *a, const char *id)
{
	struct orders_page pg;
	char after[STORE_ACME_ID_SIZE], acct_url[ACME_URL_SIZE];
	size_t count = 0;
	json_t *j;
	int r;

	snprintf(acct_url, sizeof(acct_url), "%s/acme/acct/%s", cx->base, id);
	if (strcmp(jws->kid, acct_url) != 0 || strcmp(a->id, id) != 0) {
		acme_problem(cx, resp, 403, "unauthorized", "another account's "
		    "orders");
		return;
	}
	if (jws->payload_len != 0) {
		acme_problem(cx, resp, 400, "malformed", "the orders list is read "
		    "with POST-as-GET (empty payload)");
		return;
	}
	if (orders_cursor(req->path, after) != 0) {
		acme_problem(cx, resp, 400, "malformed", "bad cursor");
		return;
	}
	memset(&pg, 0, sizeof(pg));
	pg.base = cx->base;
	if ((pg.urls = json_array()) == NULL) {
		acme_problem(cx, resp, 500, "serverInternal", "out of memory");
		return;
	}
	pthread_mutex_lock(&cx->sv->rd_mu);
	r = store_acme_order_list(cx->sv->rd, id, after, ACME_ORDERS_PAGE,
	    orders_page_cb, &pg, &count);
	pthread_mutex_unlock(&cx->sv->rd_mu);
	if (r != 0) {
		json_decref(pg.urls);
		acme_problem(cx, resp, 500, "serverInternal", "cannot list the "
		    "orders");
		return;
	}
	j = json_pack("{s:o}", "orders", pg.urls);
	acme_respond_json(cx->sv, cx->base, resp, 200, j);
	json_decref(j);
	/* A full page may have a successor: point at it. */
	if (count == ACME_ORDERS_PAGE && resp->status == 200) {
		size_t n = strlen(resp->link);
		snprintf(resp->link + n, sizeof(resp->link) - n,
		    ", <%s/orders/%s>;rel=\"next\"", acct_url,
		    pg.last);
	}
}

/* ---- authorizations (RFC 8555 7.5, 7.5.2) ---- */

struct authz_job {
	struct server *sv;
	struct http_pending *pending;
	char base[ACME_BASE_SIZE];
	struct store_acme_authz a;	/* as read before the change */
};

static int
authz_write(struct ck_ca *ca, void *arg)
{
	struct authz_job *jb = arg;
	char user[96], detail[512];
	static const char *const live[] = { "pending", "ready" };
	size_t i;
	int r;

	if ((r = store_acme_authz_transition(ca->st, jb->a.id, jb->a.status,
	    "deactivated")) != 0)
		return r;
	/* The order cannot be completed without it any more. */
	for (i = 0; i < 2; i++) {
		r = store_acme_order_transition(ca->st, jb->a.order_id,
		    live[i], "invalid", "{\"type\":\"" ACME_ERR_PREFIX
		    "unauthorized\",\"detail\":\"an authorization was "
		    "deactivated\"}");
		if (r == 0 || r != CK_E_STATE)
			break;
	}
	if (r != 0 && r != CK_E_STATE)
		return r;
	/* Its copies in other orders (reuse) end with it. */
	if (strcmp(jb->a.status, "valid") == 0 &&
	    (r = store_acme_authz_deactivate_ident(ca->st, jb->a.account_id,
	    jb->a.identifier_type, jb->a.identifier_value, jb->a.wildcard,
	    "{\"type\":\"" ACME_ERR_PREFIX "unauthorized\",\"detail\":\"an "
	    "authorization was deactivated\"}")) != 0)
		return r;
	snprintf(user, sizeof(user), "acme:%s", jb->a.account_id);
	snprintf(detail, sizeof(detail), "%s %s%s, was %s",
	    jb->a.identifier_type, jb->a.wildcard ? "*." : "",
	    jb->a.identifier_value, jb->a.status);
	return audit_append(ca->st, user, "acme-authz-deactivate", jb->a.id,
	    AUDIT_OK, detail);
}

static void
authz_done(void *arg, int r, const char *msg)
{
	struct authz_job *jb = arg;
	struct http_response resp;
	struct store_acme_authz a;
	struct acme_ctx cx;
	json_t *j;
	int g;

	memset(&resp, 0, sizeof(resp));
	memset(&a, 0, sizeof(a));
	acme_ctx_for(&cx, jb->sv, jb->base);
	if (r == CK_E_STATE) {
		acme_problem(&cx, &resp, 400, "malformed", "the authorization is "
		    "no longer pending or valid");
		goto out;
	}
	if (r != 0) {
		acme_problem(&cx, &resp, 500, "serverInternal", "the authorization "
		    "could not be changed: %s", msg ? msg : ck_strerror(r));
		goto out;
	}
	pthread_mutex_lock(&jb->sv->rd_mu);
	g = store_acme_authz_get(jb->sv->rd, jb->a.id, &a);
	pthread_mutex_unlock(&jb->sv->rd_mu);
	if (g != 0) {
		acme_problem(&cx, &resp, 500, "serverInternal", "the authorization "
		    "cannot be read back");
		goto out;
	}
	j = acme_authz_json(jb->base, &a);
	acme_respond_json(jb->sv, jb->base, &resp, 200, j);
	json_decref(j);
out:
	store_acme_authz_clear(&a);
	http_pending_finish(jb->pending, &resp);
	store_acme_authz_clear(&jb->a);
	free(jb);
}

static enum http_result
acme_authz(void *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct acme_ctx cx;
	struct ck_jws *jws = NULL;
	struct store_acme_account acct;
	struct store_acme_authz a;
	struct authz_job *jb = NULL;
	char id[STORE_ACME_ID_SIZE];
	json_t *p = NULL, *v, *j;
	enum http_result hr = HTTP_DONE;
	int r;

	memset(&a, 0, sizeof(a));
	if (acme_ctx_init(&cx, ctx, req) != 0)
		return acme_bad_host(ctx, resp);
	if (acme_path_id(req->path, "/acme/authz/", id) != 0) {
		acme_problem(&cx, resp, 404, "malformed", "no such resource");
		return HTTP_DONE;
	}
	if (acme_post_begin(&cx, req, resp, WANT_KID, &jws, &acct) != 0)
		return HTTP_DONE;
	pthread_mutex_lock(&cx.sv->rd_mu);
	r = store_acme_authz_get(cx.sv->rd, id, &a);
	pthread_mutex_unlock(&cx.sv->rd_mu);
	if (acme_own_object(&cx, resp, r, "authorization", a.account_id,
	    acct.id) != 0)
		goto out;
	if (jws->payload_len == 0) {	/* POST-as-GET */
		j = acme_authz_json(cx.base, &a);
		acme_respond_json(cx.sv, cx.base, resp, 200, j);
		json_decref(j);
		goto out;
	}
	if ((p = acme_payload_object(&cx, jws, resp)) == NULL)
		goto out;
	v = json_object_get(p, "status");
	if (!json_is_string(v) || strcmp(json_string_value(v),
	    "deactivated") != 0) {
		acme_problem(&cx, resp, 400, "malformed", "an authorization can "
		    "only be changed to {\"status\": \"deactivated\"}");
		goto out;
	}
	if (strcmp(a.status, "pending") != 0 && strcmp(a.status, "valid") != 0) {
		acme_problem(&cx, resp, 400, "malformed", "the authorization is %s",
		    a.status);
		goto out;
	}
	if ((jb = calloc(1, sizeof(*jb))) == NULL) {
		acme_problem(&cx, resp, 500, "serverInternal", "out of memory");
		goto out;
	}
	jb->sv = cx.sv;
	jb->pending = req->pending;
	snprintf(jb->base, sizeof(jb->base), "%s", cx.base);
	jb->a = a;
	memset(&a, 0, sizeof(a));
	ck_pipeline_write(cx.sv->pl, authz_write, jb, authz_done, jb);
	hr = HTTP_DEFERRED;
out:
	store_acme_authz_clear(&a);
	json_decref(p);
	store_acme_account_clear(&acct);
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
	{ "POST", "/acme/new-order", acme_new_order, ACME_MAX_BODY },
	{ "POST", "/acme/order/", acme_order, ACME_MAX_BODY },
	{ "POST", "/acme/authz/", acme_authz, ACME_MAX_BODY },
	{ "POST", "/acme/chall/", acme_challenge, ACME_MAX_BODY },
	{ "POST", "/acme/cert/", acme_cert, ACME_MAX_BODY },
	{ "POST", "/acme/revoke-cert", acme_revoke_cert, ACME_MAX_BODY },
	{ "GET", "/acme/renewal-info/", acme_renewal_info, 0 },
};
const size_t acme_nroutes = sizeof(acme_routes) / sizeof(acme_routes[0]);
