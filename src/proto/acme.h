/*
 * acme.h - the ACME server (RFC 8555) on the API listener (HTTPS).
 *
 *   GET       /acme/directory
 *   HEAD, GET /acme/new-nonce
 *   POST      /acme/new-account       (external account binding: acme_eab.h)
 *   POST      /acme/acct/ID           (POST-as-GET, contact, deactivate)
 *   POST      /acme/key-change        (account key rollover)
 *   POST      /acme/new-order         (RFC 8555 7.4; ip per RFC 8738;
 *                                     "replaces" per RFC 9773)
 *   POST      /acme/order/ID          (POST-as-GET)
 *   POST      /acme/order/ID/finalize (acme_cert.c)
 *   POST      /acme/acct/ID/orders[/CURSOR]  (the account's orders, paged
 *                                     by Link rel="next")
 *   POST      /acme/authz/ID          (POST-as-GET, deactivation)
 *   POST      /acme/chall/ID          (POST-as-GET; POST {} starts
 *                                     validation: acme_chall.c)
 *   POST      /acme/cert/ID           (the certificate of order ID, with
 *                                     its chain)
 *   POST      /acme/revoke-cert
 *   GET       /acme/renewal-info/CERTID   (RFC 9773)
 *
 * Orders are judged by the name rules of the [acme] profile (tls-server
 * unless configured). Orders, authorizations, challenges and certificates
 * are visible to their account only. docs/acme.md describes the whole.
 *
 * URLs are absolute and built from the request's Host header
 * ("https://" HOST), because the configuration names no public URL for
 * the API listener; a Host that is not a plain host name or address with
 * an optional port is refused. Requests signed for one host name are
 * therefore refused when sent through another ("url" must match).
 *
 * Every ACME answer carries a fresh Replay-Nonce and
 * Link: <directory>;rel="index"; errors are RFC 8555 problem documents
 * (urn:ietf:params:acme:error:*). Bodies over ACME_MAX_BODY are refused
 * with 413 by the HTTP layer before they reach the handlers (that answer
 * carries no nonce).
 *
 * Every write goes through the issuance pipeline's group transaction
 * together with its audit entries; reads use the server's read
 * connection.
 */
#ifndef CK_PROTO_ACME_H
#define CK_PROTO_ACME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/http.h"

/* Largest ACME request body accepted. */
#define ACME_MAX_BODY (64u * 1024u)

/* ---- nonces (RFC 8555 6.5) ---- */

/* Text length of a nonce: 16 random bytes and a 4-byte slot number,
 * base64url (27 characters). */
#define ACME_NONCE_LEN 27

struct acme_nonces;

/*
 * A nonce service holding at most CAP (>= 1) outstanding nonces, each
 * valid for TTL_S seconds and usable once. When full, issuing a nonce
 * forgets the oldest one. Thread-safe. 0, CK_E_INVAL or CK_E_NOMEM;
 * *out is the caller's (acme_nonces_free()).
 */
int acme_nonces_new(size_t cap, int64_t ttl_s, struct acme_nonces **out);

/* Accepts NULL. */
void acme_nonces_free(struct acme_nonces *ns);

/* A new nonce issued at NOW into out (NUL-terminated). 0 or CK_E_CRYPTO
 * (random number generator). */
int acme_nonce_issue(struct acme_nonces *ns, int64_t now,
    char out[ACME_NONCE_LEN + 1]);

/*
 * Use up NONCE at NOW: 0 if it was issued here, has not been used and
 * has not expired (it is then forgotten); CK_E_NOTFOUND otherwise.
 */
int acme_nonce_consume(struct acme_nonces *ns, int64_t now,
    const char *nonce);

/* ---- newOrder requests (RFC 8555 7.4; RFC 8738) ---- */

#define ACME_ORDER_MAX_IDS 100	/* identifiers in one order */
#define ACME_IDENT_SIZE 256	/* a DNS name (253) or an address, + NUL */
#define ACME_CERTID_SIZE 192	/* an ARI certificate id, + NUL */

struct acme_ident {
	char type[8];		/* "dns" or "ip" */
	char value[ACME_IDENT_SIZE]; /* dns: lower case, without "*."; ip:
					 canonical text (RFC 5952) */
	int wildcard;		/* dns only: it was "*." value */
};

struct acme_order_req {
	struct acme_ident *ids;	/* malloc'd, nids entries */
	size_t nids;
	int64_t not_before;	/* 0: not requested */
	int64_t not_after;	/* 0: not requested */
	char replaces[ACME_CERTID_SIZE]; /* ARI (RFC 9773): "" or the
					    certificate id it replaces */
};

/*
 * Parse a newOrder payload (untrusted JSON, LEN bytes): "identifiers"
 * (1 to ACME_ORDER_MAX_IDS of {"type": "dns"|"ip", "value"}, none twice;
 * a wildcard only as "*.name" and only for dns), the optional
 * "notBefore"/"notAfter" times, in that order, and the optional
 * "replaces" (RFC 9773: base64url "." base64url, checked for form only). Whether a name is allowed
 * is the profile's business, not this function's. 0 and *out (free with
 * acme_order_req_clear()); otherwise CK_E_PARSE with the reason in
 * ck_err_msg() and the RFC 8555 problem type (without its prefix:
 * "malformed", "rejectedIdentifier" or "unsupportedIdentifier") in
 * *ptype, or CK_E_NOMEM.
 */
int acme_order_parse(const unsigned char *payload, size_t len,
    struct acme_order_req *out, const char **ptype);

/* Accepts a zeroed struct. */
void acme_order_req_clear(struct acme_order_req *rq);

/* ---- routes ---- */

/* The ACME routes for the API listener; ctx is the struct server. */
extern const struct http_route acme_routes[];
extern const size_t acme_nroutes;

#endif
