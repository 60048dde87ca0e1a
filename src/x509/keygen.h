/*
 * keygen.h - the key types certkeep knows, their names, and generation.
 *
 * Names are used in configs and on the command line: rsa2048, rsa3072,
 * rsa4096, ec-p256, ec-p384, ed25519. ck_key_describe() names any public
 * key the same way (e.g. "rsa1024" for a key no profile should accept).
 */
#ifndef CK_X509_KEYGEN_H
#define CK_X509_KEYGEN_H

#include <stddef.h>

#include <openssl/evp.h>

enum ck_key_type {
	CK_KEY_RSA2048,
	CK_KEY_RSA3072,
	CK_KEY_RSA4096,
	CK_KEY_EC_P256,
	CK_KEY_EC_P384,
	CK_KEY_ED25519,
	CK_KEY__MAX
};

/* Name of a type, or "unknown". */
const char *ck_key_type_name(enum ck_key_type t);

/* Parse a name; returns the type or -1 with a message listing the names. */
int ck_key_type_parse(const char *s);

/* Generate a new key of type `t`; *out owned by the caller. */
int ck_key_generate(enum ck_key_type t, EVP_PKEY **out);

/*
 * Describe a public key as "rsaN", "ec-p256", "ec-p384", "ec-<curve>",
 * "ed25519", "ed448" or "unknown" into buf.
 */
void ck_key_describe(EVP_PKEY *pkey, char *buf, size_t bufsz);

/* The digest to sign with for this key (NULL for Ed25519). */
const EVP_MD *ck_key_sign_md(EVP_PKEY *pkey);

#endif
