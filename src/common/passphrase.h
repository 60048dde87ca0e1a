/*
 * passphrase.h - where a passphrase may come from.
 *
 * Only three sources exist on purpose: the controlling terminal (echo off),
 * a file that only its owner can read, or an inherited file descriptor.
 * Never argv, never the environment. The first line is the passphrase
 * (trailing CR/LF removed). The result lives in a ck_secret.
 */
#ifndef CK_COMMON_PASSPHRASE_H
#define CK_COMMON_PASSPHRASE_H

#include "common/secmem.h"

#define CK_PASSPHRASE_MAX 1024
#define CK_PASSPHRASE_MIN 8

/* CK_PASS_SECRET: the one already in memory, set by
 * ck_passphrase_set_secret() (rebuilt from M-of-N key shares,
 * src/keystore/unlock.h); it is copied, never taken. */
enum ck_pass_kind { CK_PASS_TTY, CK_PASS_FILE, CK_PASS_FD, CK_PASS_SECRET,
	CK_PASS__MAX };

struct ck_pass_src {
	enum ck_pass_kind kind;
	const char *file;	/* CK_PASS_FILE */
	int fd;			/* CK_PASS_FD */
};

/* The passphrase CK_PASS_SECRET gives (one per process; the caller keeps
 * it alive while it may be read; NULL clears). */
void ck_passphrase_set_secret(const struct ck_secret *s);

/*
 * Obtain a passphrase. `prompt` is shown on the terminal; if `confirm` is
 * set and the source is the terminal, it is asked twice and must match.
 * `min_len` rejects short new passphrases (0 to accept any non-empty).
 * On success *out is a new secret the caller frees with ck_secret_free().
 */
int ck_passphrase_read(const struct ck_pass_src *src, const char *prompt,
    int confirm, size_t min_len, struct ck_secret **out);

#endif
