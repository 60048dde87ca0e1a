/*
 * acme_int.h - what the ACME server's files share (acme.c: directory,
 * nonces, accounts, orders, authorizations; acme_chall.c: challenge
 * validation; acme_cert.c: finalize, certificate download, revocation and
 * renewal information). Not an interface for anything else.
 */
#ifndef CK_PROTO_ACME_INT_H
#define CK_PROTO_ACME_INT_H

#include <stdint.h>

#include <jansson.h>

#include "proto/http.h"
#include "proto/jws.h"
#include "store/store_acme.h"

struct server;

#define ACME_ERR_PREFIX "urn:ietf:params:acme:error:"
/* Retry-After of an order that is processing, seconds. */
#define ACME_PROCESSING_RETRY_S 5
#define ACME_HOST_MAX 160	/* so that every URL fits a Location header */
#define ACME_BASE_SIZE (8 + ACME_HOST_MAX + 1)
#define ACME_URL_SIZE 512

/* What every handler knows about its request: the base URL from Host and
 * the request's own URL. */
struct acme_ctx {
	struct server *sv;
	char base[ACME_BASE_SIZE];
	char url[ACME_URL_SIZE];
};

/* The base URL ("https://" HOST) and the request URL; CK_E_INVAL for an
 * unusable Host. */
int acme_ctx_init(struct acme_ctx *cx, struct server *sv,
    const struct http_request *req);

/* A context for an answer given later (a pipeline callback). */
void acme_ctx_for(struct acme_ctx *cx, struct server *sv, const char *base);

/* The headers every ACME answer carries: a fresh nonce and the index. */
void acme_decorate(struct server *sv, const char *base,
    struct http_response *resp);

/* An RFC 8555 problem document of TYPE (without its prefix). STATUS 0:
 * the usual one for TYPE. */
void acme_problem(struct acme_ctx *cx, struct http_response *resp,
    int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* rejectedIdentifier with subproblems SUB (borrowed). */
void acme_problem_rejected(struct server *sv, const char *base,
    struct http_response *resp, const char *detail, json_t *sub);

/* 200/201 with J as the body (J is borrowed). */
void acme_respond_json(struct server *sv, const char *base,
    struct http_response *resp, int status, json_t *j);

/* No usable Host. */
enum http_result acme_bad_host(struct server *sv, struct http_response *resp);

#define WANT_JWK 1	/* signed with its own key (newAccount) */
#define WANT_KID 2	/* signed by an account */
#define WANT_ANY 3	/* either (revokeCert) */

/*
 * Check an ACME POST: media type, JWS form, nonce, url, key choice and
 * signature. On success *out is the parsed request and, when signed by
 * "kid", *acct the (valid) account that signed it (acct->id is "" for a
 * "jwk" request). Otherwise resp holds the problem and -1 is returned.
 */
int acme_post_begin(struct acme_ctx *cx, const struct http_request *req,
    struct http_response *resp, int want, struct ck_jws **out,
    struct store_acme_account *acct);

/* The payload as a JSON object; NULL with resp filled otherwise. */
json_t *acme_payload_object(struct acme_ctx *cx, const struct ck_jws *jws,
    struct http_response *resp);

/* The result R of reading an object (WHAT) owned by OWNER for account
 * ACCT: 0 to go on, or -1 with the problem answered. */
int acme_own_object(struct acme_ctx *cx, struct http_response *resp, int r,
    const char *what, const char *owner, const char *acct);

/* A fresh id or token: 128 random bits, base64url. */
int acme_new_id(char out[STORE_ACME_ID_SIZE]);

/* A path's last segment after PREFIX into id; -1 if it is not one. */
int acme_path_id(const char *path, const char *prefix,
    char id[STORE_ACME_ID_SIZE]);

void acme_time_str(int64_t t, char buf[32]);

/* Status as the client sees it at NOW: a pending or ready order whose
 * time has passed is "invalid", a pending or valid authorization
 * "expired" (RFC 8555 7.1.6); the store keeps the last recorded state. */
const char *acme_order_status_now(const struct store_acme_order *o,
    int64_t now);
const char *acme_authz_status_now(const struct store_acme_authz *a,
    int64_t now);

json_t *acme_order_json(const char *base, const struct store_acme_order *o,
    const json_t *authz_ids);
json_t *acme_challenge_json(const char *base,
    const struct store_acme_challenge *c);
json_t *acme_authz_json(const char *base, const struct store_acme_authz *a);

/* Answer with order O, its authorizations read from the read connection. */
void acme_order_respond(struct server *sv, const char *base,
    struct http_response *resp, int status,
    const struct store_acme_order *o);

/* Drop the parsed account keys (at server stop). */
void acme_key_cache_clear(void);

/* The profile ACME issues under ([acme] profile). */
const char *acme_profile_name(const struct server *sv);

/* The audit user of an account: "acme:ID". */
void acme_user(const char *account_id, char out[96]);

/* ---- challenge validation (acme_chall.c) ---- */

/* Start and stop the validation workers (server start and stop). */
int acme_validators_start(struct server *sv);
void acme_validators_stop(struct server *sv);

/* An ARI certificate id (RFC 9773 4.1) of one of this CA's certificates:
 * 0 and its serial (hex, as stored); CK_E_PARSE if it is not one,
 * CK_E_NOTFOUND if another CA's (ck_err_msg() says). */
int acme_certid_parse(struct server *sv, const char *certid,
    char serial[80]);

/* Settle the orders a stop left processing (acme_cert.c): valid if
 * their certificate was recorded, invalid otherwise. At start. */
int acme_orders_settle(struct server *sv);

/* The handlers living outside acme.c. */
enum http_result acme_challenge(void *ctx, const struct http_request *req,
    struct http_response *resp);
enum http_result acme_finalize(void *ctx, const struct http_request *req,
    struct http_response *resp);
enum http_result acme_cert(void *ctx, const struct http_request *req,
    struct http_response *resp);
enum http_result acme_revoke_cert(void *ctx, const struct http_request *req,
    struct http_response *resp);
enum http_result acme_renewal_info(void *ctx,
    const struct http_request *req, struct http_response *resp);

#endif
