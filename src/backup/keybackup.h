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
 *
 * The passphrase form is standard PKCS#8, but with 1 GiB of scrypt memory
 * OpenSSL's PBES2 code refuses it (its limit is 32 MiB and cannot be raised
 * through PKCS8_decrypt), so both directions run scrypt and AES-256-CBC
 * here with an explicit memory limit. Reading bounds N, r and p so that a
 * hostile file cannot ask for more than twice the default's memory.
 *
 * A share file is text (docs/backup.md): a header for people, then base64
 * of a binary body that repeats every header field, the share of K, the
 * GCM IV and tag and the wrapped key, closed by a SHA-256 checksum over
 * all of it. The checksum catches damage and transcription errors, not an
 * attacker (who can recompute it); AES-GCM over the key, with the set id,
 * fingerprint, M and N as AAD, catches that.
 */
#ifndef CK_BACKUP_KEYBACKUP_H
#define CK_BACKUP_KEYBACKUP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/secmem.h"

#define CK_KEYBACKUP_SCRYPT_LOG2N 20
#define CK_KEYBACKUP_MAX_SHARES 255
/* log2(N) accepted when writing the passphrase form. */
#define CK_KEYBACKUP_LOG2N_MIN 10
#define CK_KEYBACKUP_LOG2N_MAX 22
/* Shortest passphrase the passphrase form accepts. */
#define CK_KEYBACKUP_PASS_MIN 12
/* Custodian names and CA labels: [A-Za-z0-9._-], 1..64 characters. */
#define CK_KEYBACKUP_NAME_MAX 64

/* SHA-256 of the key's SubjectPublicKeyInfo DER, lower-case hex. */
int ck_key_fingerprint(EVP_PKEY *key, char hex[65]);

/* 1 if NAME may be a custodian name or CA label, else 0. */
int ck_keybackup_name_ok(const char *name);

/* Passphrase form. Writes PATH (created 0600 in an existing directory,
 * refused with CK_E_EXISTS if it exists) with scrypt N = 2^LOG2N
 * (CK_KEYBACKUP_LOG2N_MIN..MAX; 0 means CK_KEYBACKUP_SCRYPT_LOG2N). The
 * passphrase must have at least CK_KEYBACKUP_PASS_MIN bytes. */
int ck_keybackup_write_pass(const char *path, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n);
/* Read it back: CK_E_PARSE if it is not PBES2/scrypt/AES-256-CBC PKCS#8,
 * CK_E_TOOBIG if its scrypt cost is over the limits, CK_E_PASSPHRASE for
 * a wrong passphrase. *OUT is a new key the caller frees. */
int ck_keybackup_read_pass(const char *path, const struct ck_secret *pass,
    EVP_PKEY **out);

/* Shares: write N share files, one per custodian, into DIR (0700, made if
 * missing; an existing one must be private); PATHS gets their names (an
 * array of N strings; the caller frees each and the array with free()).
 * 2 <= M <= N <= 255; custodian names and CA_LABEL as ck_keybackup_name_ok,
 * custodians distinct (ignoring case). Nothing is left behind on failure. */
int ck_keybackup_split(EVP_PKEY *key, int m, int n,
    const char *const *custodians, const char *dir, const char *ca_label,
    char ***paths);
/* Rejoin: at least M share files of one set. Refused with a precise
 * message: shares of different sets or keys, duplicates, too few, altered. */
int ck_keybackup_join(const char *const *paths, int npaths, EVP_PKEY **out);

/* One share file, parsed strictly (untrusted input: every length bounded,
 * checksum checked, header and body must agree). The share bytes are
 * wiped by ck_keyshare_free(), which accepts NULL. */
struct ck_keyshare;
int ck_keyshare_parse(const unsigned char *buf, size_t len,
    struct ck_keyshare **out);
/* The file text of a share (NUL-terminated; the caller wipes and frees). */
int ck_keyshare_encode(const struct ck_keyshare *s, char **out,
    size_t *outlen);
void ck_keyshare_free(struct ck_keyshare *s);

/*
 * What a share set is of. Key backup shares are written in format 1 (no
 * purpose field: as every certkeep wrote them, so older versions read
 * them); the other purposes in format 2, which adds a "Purpose:" header
 * line and a purpose byte to the body and to the AAD. Both formats are
 * read.
 */
enum ck_share_purpose {
	CK_SHARE_KEY_BACKUP,	/* the key itself ("key-backup") */
	CK_SHARE_UNLOCK,	/* the secret that opens the key file ("unlock") */
	CK_SHARE__MAX
};

/* "key-backup", "unlock"; "unknown" for anything else. */
const char *ck_share_purpose_name(enum ck_share_purpose p);

/* Split SECRET (1..16 KiB) as ck_keybackup_split() splits a key, with
 * PURPOSE (not CK_SHARE_KEY_BACKUP) and KEY's fingerprint in every share;
 * files are named "<ca>-<purpose>-<fp>-share-<i>of<n>-<custodian>.share".
 * SET_HEX (may be NULL) gets the new set's id. */
int ck_keyshare_split_secret(const struct ck_secret *secret, EVP_PKEY *key,
    enum ck_share_purpose purpose, int m, int n,
    const char *const *custodians, const char *dir, const char *ca_label,
    char ***paths, char set_hex[33]);

/* Fields of a parsed share. */
enum ck_share_purpose ck_keyshare_purpose(const struct ck_keyshare *s);
const char *ck_keyshare_custodian(const struct ck_keyshare *s);
unsigned ck_keyshare_index(const struct ck_keyshare *s);	/* x, 1..N */
unsigned ck_keyshare_threshold(const struct ck_keyshare *s);	/* M */
unsigned ck_keyshare_count(const struct ck_keyshare *s);	/* N */
void ck_keyshare_set_hex(const struct ck_keyshare *s, char out[33]);
void ck_keyshare_fp_hex(const struct ck_keyshare *s, char out[65]);

/* NULL if A and B are shares of one set that agree on everything but
 * their index, custodian and value; else what they disagree on. */
const char *ck_keyshare_disagree(const struct ck_keyshare *a,
    const struct ck_keyshare *b);

/* Bytes of a share's value. */
#define CK_KEYSHARE_VALUE_LEN 32

/* Copy S's value into OUT (the caller's locked memory) and wipe it in S:
 * a collector keeps values only in ck_secret memory. */
void ck_keyshare_take_value(struct ck_keyshare *s,
    unsigned char out[CK_KEYSHARE_VALUE_LEN]);

/* Rebuild what the set wraps from M values (VALUES: M times
 * CK_KEYSHARE_VALUE_LEN bytes, XS their indexes) and REF, any share of
 * the set: *PAYLOAD is a new secret. CK_E_TAMPER if the values do not
 * rebuild it (one is altered). */
int ck_keyshare_join_values(const struct ck_keyshare *ref,
    const unsigned char *values, const unsigned char *xs, int m,
    struct ck_secret **payload);

/* Low level, for tests: Shamir over GF(2^8). split: SECRET of LEN bytes
 * into N caller buffers SHARES[0..N-1] of LEN bytes each (share i has
 * x = i + 1), 2 <= M <= N <= 255. join: from M >= 1 (x, share) pairs with
 * distinct non-zero x; fewer pairs than the threshold give a value that
 * has nothing to do with the secret (and no error: nothing can tell). */
int ck_shamir_split(const unsigned char *secret, size_t len, int m, int n,
    unsigned char **shares);
int ck_shamir_join(const unsigned char *const *shares, const unsigned char *xs,
    int m, size_t len, unsigned char *secret);

#endif
