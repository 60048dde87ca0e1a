/*
 * keystore.h - CA private keys at rest.
 *
 * A key is stored only as PEM "ENCRYPTED PRIVATE KEY" (PKCS#8, PBES2 with
 * scrypt and AES-256-CBC), so `openssl pkey -in FILE` opens it with the
 * passphrase and nothing else. Files are created exclusively with mode
 * 0600; a key file that anyone but its owner can read is refused.
 */
#ifndef CK_KEYSTORE_KEYSTORE_H
#define CK_KEYSTORE_KEYSTORE_H

#include <stdint.h>

#include <openssl/evp.h>

#include "common/secmem.h"

/*
 * scrypt cost for CA keys: N = 2^15, r = 7, p = 1 (28 MiB). OpenSSL refuses
 * to derive keys needing more than 32 MiB unless told otherwise, and
 * `openssl pkey` cannot be told: this is the most memory-hard setting it
 * still opens (its own default is 16 MiB).
 */
#define KEYSTORE_SCRYPT_LOG2N 15
#define KEYSTORE_SCRYPT_R 7
#define KEYSTORE_SCRYPT_P 1

/*
 * Encrypt `key` under `pass` and write it to `path` (must not exist).
 * `log2n` 0 means KEYSTORE_SCRYPT_LOG2N.
 */
int keystore_save(const char *path, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n);

/*
 * Encode `key` as encrypted PKCS#8 PEM into a new buffer (*out, caller
 * frees; it holds no secret in the clear).
 */
int keystore_encode(EVP_PKEY *key, const struct ck_secret *pass, int log2n,
    char **out, size_t *outlen);

/*
 * Check the file's permissions, then decrypt it. CK_E_PERM if others can
 * read it, CK_E_PARSE if it is not an encrypted PKCS#8 key,
 * CK_E_PASSPHRASE if the passphrase is wrong.
 */
int keystore_load(const char *path, const struct ck_secret *pass,
    EVP_PKEY **out);

#endif
