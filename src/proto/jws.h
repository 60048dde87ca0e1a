/*
 * jws.h - JSON Web Signatures and Keys as ACME uses them (RFC 8555 6.2,
 * 7.3.4, 7.3.5; RFC 7515, 7517, 7518, 7638, 8037).
 *
 * Only what an ACME server needs, strictly read:
 *  - base64url without padding; a text that does not re-encode to itself
 *    (padding, other alphabets, stray low bits) is refused, so the bytes
 *    signed are the only spelling of the value;
 *  - public JWKs: EC P-256/P-384/P-521, RSA 2048..8192 bits, Ed25519;
 *    private members, other key types and off-curve points are refused;
 *  - a request body: one flattened JWS {protected, payload, signature},
 *    nothing else, no duplicate keys, no unprotected header, no "crit",
 *    no unencoded payload; asymmetric algorithms only;
 *  - the external account binding: an HMAC-signed inner JWS.
 *
 * Parsing checks form; ck_jws_verify() checks the signature with the key
 * the caller chose (the embedded "jwk" or the account's key for "kid").
 * Nonce, URL and account look-ups are the caller's.
 *
 * Errors are the CK_JWS_E_* codes below, one per RFC 8555 problem type
 * that can come from here (ck_jws_problem() names it), with the reason in
 * ck_err_msg(). All functions are safe to call from several threads.
 */
#ifndef CK_PROTO_JWS_H
#define CK_PROTO_JWS_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

/* Results: 0 or one of these. Never renumbered. */
enum ck_jws_err {
	CK_JWS_OK = 0,
	CK_JWS_E_INTERNAL = -1,	/* out of memory, library failure:
				 * serverInternal */
	CK_JWS_E_MALFORMED = -2,	/* malformed */
	CK_JWS_E_TOOBIG = -3,	/* body over the limit: malformed (413) */
	CK_JWS_E_BADALG = -4,	/* badSignatureAlgorithm */
	CK_JWS_E_BADKEY = -5,	/* badPublicKey */
	CK_JWS_E_BADSIG = -6,	/* signature or MAC wrong: unauthorized */
	CK_JWS_E_BADNONCE = -7,	/* "nonce" missing or not base64url:
				 * badNonce */
	CK_JWS_E__MAX = -8
};

/* Short fixed description of a code; never NULL. */
const char *ck_jws_strerror(int code);

/* The RFC 8555 problem type for a code, without the
 * "urn:ietf:params:acme:error:" prefix ("malformed", "badPublicKey",
 * ...); "serverInternal" for CK_JWS_E_INTERNAL and unknown codes. */
const char *ck_jws_problem(int code);

enum ck_jws_alg {
	CK_JWS_ES256,
	CK_JWS_ES384,
	CK_JWS_ES512,
	CK_JWS_RS256,
	CK_JWS_EDDSA,
	CK_JWS_HS256,		/* the HMAC ones: external account binding */
	CK_JWS_HS384,
	CK_JWS_HS512,
	CK_JWS_ALG__MAX
};

/* The JWA name ("ES256", "EdDSA", ...), or "?" if out of range. */
const char *ck_jws_alg_name(enum ck_jws_alg alg);

/* The signature algorithms accepted on requests, for the "algorithms"
 * member of a badSignatureAlgorithm problem: a static array of *n names. */
const char *const *ck_jws_algs_supported(size_t *n);

/* ---- base64url (RFC 4648 section 5, unpadded, RFC 7515 section 2) ---- */

/* Characters needed for n bytes, without the terminating NUL. */
size_t ck_jws_b64url_len(size_t n);

/* Encode n bytes into out, which has room for ck_jws_b64url_len(n) + 1
 * characters; the result is NUL-terminated. */
void ck_jws_b64url_encode(const unsigned char *in, size_t n, char *out);

/*
 * Decode the len characters at s. Refused (CK_JWS_E_MALFORMED, the
 * message names `what`): '=' padding, any character outside A-Z a-z 0-9
 * - _, a length of 4k+1, non-zero unused low bits. On success *out is a
 * new buffer the caller frees (free()), NUL-terminated after *outlen
 * bytes for convenience. CK_JWS_E_INTERNAL on allocation failure.
 */
int ck_jws_b64url_decode(const char *s, size_t len, const char *what,
    unsigned char **out, size_t *outlen);

/* ---- JWK ---- */

/*
 * A public JWK object as a new EVP_PKEY (*out, caller frees):
 *  kty "EC": crv "P-256", "P-384" or "P-521", x and y each exactly the
 *    coordinate size, the point on the curve;
 *  kty "RSA": n of 2048..8192 bits, e odd, 3..2^64-1, both minimal;
 *  kty "OKP": crv "Ed25519", x 32 bytes.
 * Other members ("kid", "use", "alg", ...) are ignored, except private
 * ones ("d", "p", "q", "dp", "dq", "qi", "oth", "k"): refused.
 * CK_JWS_E_MALFORMED if the JSON shape is wrong (a member missing or not
 * a string, not base64url); CK_JWS_E_BADKEY if the key is one we do not
 * take; CK_JWS_E_INTERNAL.
 */
int ck_jwk_parse(const json_t *jwk, EVP_PKEY **out);

/* The same from JSON text (duplicate member names refused). */
int ck_jwk_parse_text(const char *text, size_t len, EVP_PKEY **out);

/*
 * The RFC 7638 canonical form of a public key this module supports: only
 * the required members, in lexicographic order, no white space, e.g.
 * {"crv":"P-256","kty":"EC","x":"...","y":"..."}. It is itself a JWK
 * ck_jwk_parse() takes back, and a fit form for storing the key. *out is a
 * new NUL-terminated string (free()). CK_JWS_E_BADKEY for other keys.
 */
int ck_jwk_canonical(EVP_PKEY *pk, char **out);

/* base64url of a SHA-256 digest: 43 characters. */
#define CK_JWK_THUMBPRINT_LEN 43

/*
 * RFC 7638 thumbprint (SHA-256, base64url) of a public key, computed from
 * its canonical form, into out (NUL-terminated). Equal keys have equal
 * thumbprints however their JWKs were spelt. 0, CK_JWS_E_BADKEY or
 * CK_JWS_E_INTERNAL.
 */
int ck_jwk_thumbprint(EVP_PKEY *pk, char out[CK_JWK_THUMBPRINT_LEN + 1]);

/* 1 if a and b are the same public key (type, curve and value), else 0
 * (also when either is NULL). */
int ck_jwk_equal(const EVP_PKEY *a, const EVP_PKEY *b);

/* ---- ACME requests ---- */

/* A parsed flattened JWS. Every pointer is owned by the struct. */
struct ck_jws {
	enum ck_jws_alg alg;
	char *nonce;		/* NULL in an inner JWS (CK_JWS_INNER, EAB) */
	char *url;
	char *kid;		/* exactly one of kid and jwk is set */
	EVP_PKEY *jwk;
	unsigned char *payload;	/* decoded, NUL after payload_len bytes;
				 * payload_len 0: POST-as-GET */
	size_t payload_len;
	char *signing_input;	/* ASCII "protected.payload", NUL-terminated */
	size_t signing_input_len;
	unsigned char *sig;	/* decoded signature */
	size_t sig_len;
};

/* Flags for ck_jws_parse(). */
#define CK_JWS_INNER	0x1u	/* key-change inner JWS (RFC 8555 7.3.5):
				 * "nonce" must be absent, not present */

/*
 * Parse an ACME request body of len bytes (refused, CK_JWS_E_TOOBIG,
 * above max bytes): exactly the members "protected", "payload" and
 * "signature", all base64url strings; "protected" a JSON object with
 * "alg" (an asymmetric algorithm: "none", HMAC and unknown ones are
 * CK_JWS_E_BADALG), "nonce" (base64url; CK_JWS_E_BADNONCE if missing or
 * not; absent with CK_JWS_INNER), "url", and exactly one of "kid" (a
 * string) and "jwk" (parsed with ck_jwk_parse()); no "crit", "b64" only
 * if true. Other protected members are ignored. The payload is returned
 * as bytes; it is the caller's to parse. The signature is not checked.
 * On success *out is new (ck_jws_free()); CK_JWS_E_* otherwise.
 */
int ck_jws_parse(const unsigned char *body, size_t len, size_t max,
    unsigned int flags, struct ck_jws **out);

/*
 * Check jws's signature with pk (jws->jwk or the account's key). The
 * algorithm must fit the key: ES256 a P-256 key, ES384 P-384, ES512
 * P-521, RS256 an RSA key of 2048..8192 bits, EdDSA Ed25519; else
 * CK_JWS_E_BADALG. ECDSA signatures are R||S of the curve's size. 0,
 * CK_JWS_E_BADSIG (signature wrong or wrongly sized) or CK_JWS_E_INTERNAL.
 */
int ck_jws_verify(const struct ck_jws *jws, EVP_PKEY *pk);

/* Free a parsed JWS; accepts NULL. */
void ck_jws_free(struct ck_jws *jws);

/* ---- external account binding (RFC 8555 7.3.4) ---- */

/*
 * Parse the "externalAccountBinding" member of a newAccount payload: a
 * flattened JWS object as ck_jws_parse() reads one, but with "alg"
 * HS256, HS384 or HS512 (anything else CK_JWS_E_BADALG), "kid" (the EAB
 * key id; "jwk" refused), "url", and no "nonce". The payload must not be
 * empty. *out is new (ck_jws_free()).
 */
int ck_jws_eab_parse(const json_t *eab, struct ck_jws **out);

/*
 * Check a parsed binding against the outer newAccount request and the
 * HMAC key (key, keylen bytes, not empty) found for eab->kid: its "url"
 * must be the outer one, its MAC must verify (compared in constant time)
 * and its payload must be a JWK of the outer "jwk" key. 0;
 * CK_JWS_E_BADSIG if the MAC is wrong or the payload is another key;
 * CK_JWS_E_MALFORMED if the URLs differ, the outer request has no "jwk"
 * or the payload is no JWK; CK_JWS_E_INTERNAL.
 */
int ck_jws_eab_verify(const struct ck_jws *eab, const struct ck_jws *outer,
    const unsigned char *key, size_t keylen);

#endif
