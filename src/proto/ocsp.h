/*
 * ocsp.h - the OCSP responder core (RFC 6960, and the GET form of RFC 5019
 * and RFC 6960 appendix A.1), independent of HTTP and of the store.
 *
 * The HTTP layer hands over a POST body (application/ocsp-request) or the
 * path component after "/ocsp/" of a GET, and sends back the DER it gets
 * (application/ocsp-response). Certificate status comes from a lookup
 * callback. The CA signs the responses itself (responder ID by key hash,
 * no certificates included), or, once ocsp_responder_set_delegate() was
 * called, a delegated responder does (RFC 6960 section 4.2.2.2: responder
 * ID by the hash of its key, its certificate included, nextUpdate never
 * after that certificate's notAfter); the CA key is then not used.
 *
 * Every answer is an OCSPResponse: a request that cannot be parsed, is
 * over OCSP_MAX_REQUEST bytes, has no or more than OCSP_MAX_CERTIDS
 * CertIDs, or a nonce of 0 or more than 128 octets (RFC 9654) or twice,
 * gets malformedRequest. A CertID whose issuer hashes do not match the CA
 * certificate (hash algorithms SHA-1, SHA-256, SHA-384, SHA-512), or that
 * uses another hash algorithm, is answered "unknown".
 *
 * Caching: a request with exactly one CertID (for this CA) and no nonce is
 * answered from an in-memory cache keyed by the DER of the CertID. An
 * entry is reused until half of its validity (thisUpdate to nextUpdate)
 * has passed, also after the delegate changed, or until
 * ocsp_invalidate() / ocsp_invalidate_all() drops it; an answer signed
 * while an invalidation ran is not cached. Requests with a nonce are always
 * signed afresh. The cache holds at most OCSP_CACHE_MAX entries (an
 * arbitrary one is evicted when it is full).
 *
 * All functions except ocsp_responder_new() and ocsp_responder_free() may
 * be called from any number of threads at once.
 */
#ifndef CK_PROTO_OCSP_H
#define CK_PROTO_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define OCSP_MAX_REQUEST (16u * 1024)	/* DER bytes */
#define OCSP_MAX_CERTIDS 16		/* per request */
#define OCSP_CACHE_MAX 100000		/* cached answers */

struct signer;
struct ocsp_responder;

/* What the store knows about a serial number. */
struct ocsp_status {
	int known;		/* 0: never issued by this CA -> "unknown" */
	int revoked;		/* 1: "revoked", else "good" */
	int64_t revoked_at;	/* revocation time, seconds since the epoch */
	int reason;		/* RFC 5280 CRLReason; 0 (unspecified), 7
				 * and unknown codes are left out */
};

/*
 * Status lookup: fill *out for `serial_hex` (upper-case hexadecimal
 * without leading zeros, as from ck_serial_to_hex()). Return 0, also for
 * serials the store does not know (out->known = 0), or a negative CK_E_*
 * code if the store failed. Called from the threads answering requests,
 * so it must be thread-safe.
 */
typedef int (*ocsp_lookup_fn)(void *arg, const char *serial_hex,
    struct ocsp_status *out);

/* Counters, for metrics. */
struct ocsp_stats {
	uint64_t requests;	/* ocsp_respond_der/_get calls */
	uint64_t cached;	/* answered from the cache */
	uint64_t signed_;	/* responses signed */
	uint64_t malformed;	/* answered malformedRequest */
};

/*
 * New responder for the CA `ca_cert` (a reference is taken), signing with
 * `signer` (not owned: it must outlive the responder and hold the key of
 * `ca_cert`, else CK_E_INVAL). Status answers are valid for `validity_s`
 * seconds (nextUpdate = thisUpdate + validity_s; at least 1).
 */
int ocsp_responder_new(struct signer *signer, X509 *ca_cert,
    ocsp_lookup_fn lookup, void *arg, uint32_t validity_s,
    struct ocsp_responder **out);

/*
 * Sign from now on as the delegated responder `cert` with `key`
 * (ownership of the key passes to the responder, also on failure; a
 * reference to the certificate is taken), replacing the CA or an earlier
 * delegate at once; responses being signed meanwhile finish with the one
 * they started with, and cached ones stay. CK_E_INVAL, with the reason,
 * unless `cert` is issued and signed by the responder's CA, carries the
 * extended key usage id-kp-OCSPSigning, allows digitalSignature if it has
 * a key usage, is valid now and is `key`'s. Once it has expired, answers
 * fail with CK_E_STATE until another delegate is set. May be called while
 * other threads answer.
 */
int ocsp_responder_set_delegate(struct ocsp_responder *r, EVP_PKEY *key,
    X509 *cert);

/* Free the responder and its cache; accepts NULL. */
void ocsp_responder_free(struct ocsp_responder *r);

/*
 * Answer a DER OCSPRequest (a POST body). On success returns 0 and a DER
 * OCSPResponse in *resp (malloc'd: the caller free()s it) - also for
 * malformed requests, which get status malformedRequest. A negative
 * CK_E_* code only for internal failures (out of memory, the lookup
 * callback failed, signing failed); the caller may then send
 * ocsp_respond_status() with internalError or tryLater.
 */
int ocsp_respond_der(struct ocsp_responder *r, const unsigned char *req,
    size_t len, unsigned char **resp, size_t *resp_len);

/*
 * Answer a GET: `b64` is the request path after "/ocsp/", the base64 of a
 * DER OCSPRequest, with or without "=" padding. Percent-escapes %2B, %2F
 * and %3D (any case) are decoded; the URL-safe alphabet ('-', '_') is
 * accepted too. Anything else is malformedRequest. Results as for
 * ocsp_respond_der().
 */
int ocsp_respond_get(struct ocsp_responder *r, const char *b64,
    unsigned char **resp, size_t *resp_len);

/*
 * An unsigned OCSPResponse carrying only an error status
 * (OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, _INTERNALERROR, _TRYLATER,
 * _SIGREQUIRED or _UNAUTHORIZED from <openssl/ocsp.h>); *resp malloc'd.
 * CK_E_INVAL for any other status.
 */
int ocsp_respond_status(int status, unsigned char **resp, size_t *resp_len);

/* Drop the cached answers for one serial (any form ck_serial_normalize()
 * accepts). Call after the serial's status changed in the store. */
void ocsp_invalidate(struct ocsp_responder *r, const char *serial_hex);

/* Drop every cached answer (the store's change sequence moved). */
void ocsp_invalidate_all(struct ocsp_responder *r);

/* Current counters (each read atomically). */
void ocsp_get_stats(struct ocsp_responder *r, struct ocsp_stats *out);

#endif
