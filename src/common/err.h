/*
 * err.h - the one error vocabulary of certkeep.
 *
 * Functions return 0 on success or a negative CK_E_* code; functions that
 * return pointers return NULL on failure. Codes are never renumbered: add
 * new ones before CK_E__MAX. A detailed, human-readable reason for the last
 * failure on this thread is kept by ck_err_set()/ck_err_msg() so that the
 * CLI and the server can show *why* something was refused.
 */
#ifndef CK_COMMON_ERR_H
#define CK_COMMON_ERR_H

#include <stddef.h>

enum ck_err {
	CK_OK = 0,
	CK_E_INTERNAL = -1,	/* a bug or an unexpected library failure */
	CK_E_NOMEM = -2,
	CK_E_IO = -3,		/* reading or writing a file failed */
	CK_E_INVAL = -4,	/* bad argument or bad input */
	CK_E_PARSE = -5,	/* malformed DER/PEM/config */
	CK_E_TOOBIG = -6,	/* input over its size limit */
	CK_E_CRYPTO = -7,	/* a cryptographic operation failed */
	CK_E_BADSIG = -8,	/* a signature did not verify */
	CK_E_POLICY = -9,	/* refused by a profile or policy */
	CK_E_PASSPHRASE = -10,	/* wrong passphrase or unreadable key */
	CK_E_PERM = -11,	/* file or directory permissions unsafe */
	CK_E_EXISTS = -12,	/* would overwrite something that exists */
	CK_E_NOTFOUND = -13,
	CK_E_STORE = -14,	/* the store failed */
	CK_E_TAMPER = -15,	/* integrity check failed */
	CK_E_STATE = -16,	/* operation not valid in this state */
	CK_E_BUSY = -17,	/* the store or home is locked by another */
	CK_E__MAX = -18
};

/* Short fixed description of a code; never NULL. */
const char *ck_strerror(int code);

/*
 * Record a detailed reason for the failure being returned, printf-style.
 * Returns `code` so that callers can write `return ck_err_set(CK_E_X, ...)`.
 */
int ck_err_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Detailed reason for the last failure on this thread, or "" if none. */
const char *ck_err_msg(void);

/* Forget the recorded reason. */
void ck_err_clear(void);

/*
 * Append the most recent OpenSSL error (if any) to a message buffer and
 * drain OpenSSL's error queue. Returns `code`.
 */
int ck_err_ssl(int code, const char *what);

#endif
