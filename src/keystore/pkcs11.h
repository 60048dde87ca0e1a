/*
 * pkcs11.h - CA keys inside a PKCS#11 token (an HSM, or SoftHSM2 in tests).
 *
 * The key is named by an RFC 7512 URI ([ca] key_uri) and the module by its
 * path ([ca] pkcs11_module). The PIN comes from the same sources as a key
 * passphrase, never from the configuration: a URI carrying pin-value or
 * pin-source is refused.
 *
 * keystore_p11_load() returns an EVP_PKEY whose private operations go to
 * the token, so everything that signs (certificates, CRLs, OCSP, CMS)
 * keeps taking an EVP_PKEY. libp11's PKCS11_* API does the token work;
 * the EVP_PKEY handed out is a thin, stable wrapper around libp11's key,
 * so that when the token fails and comes back the module can be reloaded
 * underneath (C_Finalize/C_Initialize, re-login with the PIN kept in a
 * ck_secret) without invalidating the EVP_PKEY the signer holds.
 *
 * Availability: any failed signature marks the key unavailable; while it
 * is, signing fails at once with "signer unavailable", and at most once a
 * second a caller (or keystore_p11_probe) tries to reload the module, log
 * in, find the same key (same public key) and sign a test digest; success
 * makes it available again. Signing from several threads is safe: they
 * share a read lock and libp11 hands each its own session from its pool
 * (16 sessions per slot); a reload takes the write lock.
 */
#ifndef CK_KEYSTORE_PKCS11_H
#define CK_KEYSTORE_PKCS11_H

#include <stddef.h>

#include <openssl/evp.h>

#include "common/secmem.h"
#include "x509/keygen.h"

#define KEYSTORE_P11_URI_MAX 512

/* What of a PKCS#11 URI certkeep uses; "" / id_len 0: not given. */
struct keystore_p11_uri {
	char token[33];		/* CK_TOKEN_INFO label (32 bytes) */
	char manufacturer[33];
	char model[17];
	char serial[17];
	char object[129];	/* CKA_LABEL */
	unsigned char id[64];	/* CKA_ID */
	size_t id_len;
};

/*
 * Parse an RFC 7512 URI "pkcs11:attr=value;..." (percent-encoding
 * decoded). Accepted path attributes: token, manufacturer, model, serial,
 * object, id, type (only "private"), and library-* / slot-* (ignored).
 * Anything in the query part (pin-value, pin-source, module-path, ...) is
 * refused: the PIN and the module come from elsewhere. At least one of
 * object and id is required. CK_E_PARSE with the reason on error.
 */
int keystore_p11_uri_parse(const char *uri, struct keystore_p11_uri *out);

/*
 * Generate a key pair of type `t` (RSA 2048/3072/4096, EC P-256/P-384;
 * CK_E_INVAL for others) inside the token that `uri` names, logged in
 * with `pin`: the private key is a token object, private, sensitive,
 * never extractable, for signing only. The URI's object (CKA_LABEL) and
 * id (CKA_ID; random if not given) name both halves. CK_E_EXISTS if the
 * token already holds a private key with that label or id.
 */
int keystore_p11_generate(const char *module, const char *uri,
    enum ck_key_type t, const struct ck_secret *pin);

/*
 * Open the token, log in with `pin` (a copy is kept in locked memory for
 * re-login) and find the private key. *out is an EVP_PKEY backed by the
 * token, owned by the caller; the token stays open until the last
 * reference to it is freed. CK_E_PASSPHRASE for a wrong PIN,
 * CK_E_NOTFOUND for no such token or key, CK_E_CRYPTO for module errors.
 */
int keystore_p11_load(const char *module, const char *uri,
    const struct ck_secret *pin, EVP_PKEY **out);

/* 1 if `key` came from keystore_p11_load(). */
int keystore_p11_is_token_key(const EVP_PKEY *key);

/*
 * 1 if the token key is usable, 0 if it is in the "signer unavailable"
 * state (reason in `why`, may be NULL; "" when available). Software keys
 * are always 1. Does no I/O.
 */
int keystore_p11_available(const EVP_PKEY *key, char *why, size_t whysz);

/*
 * Check the token now, at most once a second (otherwise the last
 * result): when available, sign a test digest; when not, try to reload
 * and log in again. Returns what keystore_p11_available() then says.
 * Software keys: 1.
 */
int keystore_p11_probe(const EVP_PKEY *key);

#endif
