/*
 * secmem.h - one home for secret bytes (passphrases, decrypted keys).
 *
 * A ck_secret lives in its own anonymous mapping that is locked in memory
 * (best effort: mlock may be refused by RLIMIT_MEMLOCK), excluded from core
 * dumps, and wiped with OPENSSL_cleanse before it is unmapped.
 */
#ifndef CK_COMMON_SECMEM_H
#define CK_COMMON_SECMEM_H

#include <stddef.h>

struct ck_secret {
	unsigned char *buf;	/* always NUL-terminated within cap */
	size_t len;		/* bytes in use */
	size_t cap;		/* usable capacity (excludes the NUL) */
	size_t maplen;
};

/* Allocate an empty secret able to hold `cap` bytes. NULL on failure. */
struct ck_secret *ck_secret_new(size_t cap);

/* Wipe and release; accepts NULL. */
void ck_secret_free(struct ck_secret *s);

/* Constant-time equality of two secrets (length leaks, contents do not). */
int ck_secret_equal(const struct ck_secret *a, const struct ck_secret *b);

/* Wipe any buffer (wrapper for OPENSSL_cleanse). */
void ck_wipe(void *p, size_t len);

/*
 * Harden a process that may hold key material, before it touches any:
 * umask 077, no core dumps and not ptrace-able by the same user
 * (PR_SET_DUMPABLE 0; skipped under AddressSanitizer, whose leak checker
 * needs it), and OpenSSL's secure heap for private key numbers.
 */
void ck_process_harden(void);

/*
 * PR_SET_DUMPABLE 0 again (as above, not under AddressSanitizer): a
 * change of uid resets it to fs.suid_dumpable, so every drop of
 * privileges calls this (ck_privs_drop).
 */
void ck_process_nodump(void);

#endif
