/*
 * eab_seal.h - ACME external account binding keys at rest.
 *
 * An EAB HMAC key (RFC 8555 7.3.4) is a credential, but verifying a
 * binding needs the key itself, so it cannot be stored as a hash as API
 * tokens are. It is stored sealed instead, to an X25519 key pair of the
 * CA home:
 *
 *   acme-eab.pub          the public key, PEM (SubjectPublicKeyInfo): the
 *                         command line seals new keys with it and needs
 *                         no passphrase once the pair exists
 *   private/acme-eab.key  the private key, encrypted PKCS#8 like the CA
 *                         key (src/keystore) under the CA key's
 *                         passphrase, 0600 in the 0700 private directory;
 *                         certkeepd unlocks it at start and keeps it in
 *                         memory only
 *
 * Sealing is ECIES-like: an ephemeral X25519 key agrees a secret with the
 * home's public key; HKDF-SHA256 (salt: both public keys, info: a fixed
 * label) turns it into an AES-256-GCM key; the key id is the AAD, so a
 * sealed key moved to another kid's row does not open. Sealed form:
 *
 *   version (1 byte, 1) | ephemeral public key (32) | GCM IV (12) |
 *   ciphertext (as long as the HMAC key) | GCM tag (16)
 *
 * Without the private key (a data backup holds only sealed keys) nothing
 * opens. `certkeep key backup` carries the private key with the CA key.
 */
#ifndef CK_CA_EAB_SEAL_H
#define CK_CA_EAB_SEAL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "common/secmem.h"

/* The pair's files, relative to the CA home. */
#define EAB_SEAL_PUB_FILE "acme-eab.pub"
#define EAB_SEAL_KEY_FILE "private/acme-eab.key"

/* HMAC keys sealed here: 1 to this many bytes. */
#define EAB_SEAL_KEY_MAX 64
#define EAB_SEAL_VERSION 1
#define EAB_SEAL_OVERHEAD (1 + 32 + 12 + 16)
/* Size of a sealed key of N bytes. */
#define EAB_SEALED_LEN(n) ((size_t)(n) + EAB_SEAL_OVERHEAD)

/* A new X25519 key pair (*out, caller frees). 0 or CK_E_CRYPTO. */
int eab_keypair_generate(EVP_PKEY **out);

/*
 * Write KEY (X25519) into the CA home HOME: private/acme-eab.key first,
 * encrypted under PASS with scrypt N = 2^LOG2N (0: the keystore default),
 * then acme-eab.pub (0644). Both are created exclusively: CK_E_EXISTS if
 * either exists, and nothing is left behind on any failure. The private
 * directory is made (0700) if missing, else checked.
 */
int eab_keypair_save(const char *home, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n);

/*
 * Unlock HOME's private key with PASS (*out, caller frees). CK_E_NOTFOUND
 * if the home has none; CK_E_PASSPHRASE, CK_E_PERM as keystore_load();
 * CK_E_PARSE if it is not an X25519 key; CK_E_TAMPER if acme-eab.pub
 * exists and holds another key.
 */
int eab_key_load(const char *home, const struct ck_secret *pass,
    EVP_PKEY **out);

/* HOME's public key (*out, caller frees). CK_E_NOTFOUND; CK_E_PARSE if
 * the file is not an X25519 public key in PEM. */
int eab_pub_load(const char *home, EVP_PKEY **out);

/* Write PUB's PEM (the public half of a key) as HOME's acme-eab.pub,
 * exclusively (CK_E_EXISTS), 0644. For a restored private key. */
int eab_pub_save(const char *home, EVP_PKEY *pub);

/*
 * Put a private KEY from a key backup back into HOME. check: CK_E_EXISTS if
 * private/acme-eab.key exists, CK_E_TAMPER if acme-eab.pub exists and is
 * another key's (the sealed keys in the store would not open), CK_E_INVAL
 * if KEY is not X25519; writes nothing. restore: the same checks, then
 * private/acme-eab.key under PASS (scrypt 2^LOG2N, 0: default) and
 * acme-eab.pub if it is missing; nothing is left behind on failure.
 */
int eab_key_restore_check(const char *home, EVP_PKEY *key);
int eab_key_restore(const char *home, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n);

/* 1 if A and B hold the same X25519 public key, else 0. */
int eab_key_match(EVP_PKEY *a, EVP_PKEY *b);

/*
 * Seal the HMAC key KEY (1..EAB_SEAL_KEY_MAX bytes) for KID (non-empty) to
 * PUB. *out (caller frees, not secret) gets EAB_SEALED_LEN(keylen) bytes.
 * 0, CK_E_INVAL or CK_E_CRYPTO.
 */
int eab_seal(EVP_PKEY *pub, const char *kid, const unsigned char *key,
    size_t keylen, unsigned char **out, size_t *outlen);

/*
 * Open a sealed key of KID (untrusted bytes, LEN of them) with the private
 * key PRIV. *out gets the HMAC key in locked memory (ck_secret_free()
 * wipes it). CK_E_PARSE if the form is wrong (length, version);
 * CK_E_TAMPER if it does not open: another kid, another key, altered
 * bytes; CK_E_CRYPTO, CK_E_NOMEM.
 */
int eab_unseal(EVP_PKEY *priv, const char *kid, const unsigned char *sealed,
    size_t len, struct ck_secret **out);

#endif
