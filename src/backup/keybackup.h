/*
 * keybackup.h - backups of a CA key, apart from data backups and stronger.
 *
 * Two forms (docs/backup.md):
 *  - passphrase: encrypted PKCS#8 PEM, PBES2 + scrypt (N=2^20, r=8, p=1)
 *    + AES-256-CBC;
 *  - M-of-N shares: the key's PKCS#8 DER wrapped with AES-256-GCM under a
 *    random 256-bit key that is split with Shamir's scheme over GF(2^8);
 *    each share file names its custodian and the key's fingerprint and
 *    carries the wrapped key, so any M shares restore it and M-1 reveal
 *    nothing.
 * Key bytes live only in locked, wiped memory (common/secmem.h).
 */
#ifndef CK_BACKUP_KEYBACKUP_H
#define CK_BACKUP_KEYBACKUP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/secmem.h"

#define CK_KEYBACKUP_SCRYPT_LOG2N 20
#define CK_KEYBACKUP_MAX_SHARES 255

/* SHA-256 of the key's SubjectPublicKeyInfo DER, lower-case hex. */
int ck_key_fingerprint(EVP_PKEY *key, char hex[65]);

/* Passphrase form. Writes PATH (created 0600, refused if it exists). */
int ck_keybackup_write_pass(const char *path, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n);
int ck_keybackup_read_pass(const char *path, const struct ck_secret *pass,
    EVP_PKEY **out);

/* Shares: write N share files, one per custodian, into DIR (0700, made if
 * missing); PATHS gets their names (N strings the caller frees with
 * free()). 2 <= M <= N <= 255. */
int ck_keybackup_split(EVP_PKEY *key, int m, int n,
    const char *const *custodians, const char *dir, const char *ca_label,
    char ***paths);
/* Rejoin: at least M share files of one set. Refused with a precise
 * message: shares of different sets or keys, duplicates, too few, altered. */
int ck_keybackup_join(const char *const *paths, int npaths, EVP_PKEY **out);

/* Low level, for tests: Shamir over GF(2^8). split: SECRET of LEN bytes
 * into N shares of LEN bytes each (share i has x = i + 1). join: from M
 * (x, share) pairs. */
int ck_shamir_split(const unsigned char *secret, size_t len, int m, int n,
    unsigned char **shares);
int ck_shamir_join(const unsigned char *const *shares, const unsigned char *xs,
    int m, size_t len, unsigned char *secret);

#endif
