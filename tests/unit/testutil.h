/*
 * testutil.h - helpers shared by the cmocka unit tests: private temporary
 * directories, small file helpers, test keys and CSRs built with OpenSSL.
 *
 * Every helper asserts (cmocka) on failure, so a test never runs on with
 * a broken fixture.
 */
#ifndef CK_TESTS_UNIT_TESTUTIL_H
#define CK_TESTS_UNIT_TESTUTIL_H

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/types.h>

#include <openssl/evp.h>

/* Create a new directory (mode 0700) under $TMPDIR or /tmp. */
void tu_tmpdir(char *buf, size_t bufsz);

/* Remove a directory tree (no symlinks followed); errors are ignored. */
void tu_rmtree(const char *path);

/* buf = dir/name; asserts that it fits. */
void tu_path(char *buf, size_t bufsz, const char *dir, const char *name);

/* Create or truncate `path`, write `len` bytes, then chmod to `mode`. */
void tu_write_file(const char *path, const void *data, size_t len,
    mode_t mode);

/* Read a whole file into a new NUL-terminated buffer (caller frees). */
unsigned char *tu_read_file(const char *path, size_t *len);

/* Permission bits (07777) of `path`, asserting that it exists. */
mode_t tu_file_mode(const char *path);

/* Fail the test unless `needle` occurs in `hay`. */
void tu_assert_contains(const char *hay, const char *needle,
    const char *file, int line);
#define assert_contains(hay, needle) \
	tu_assert_contains((hay), (needle), __FILE__, __LINE__)

/*
 * A test key (new reference; free with EVP_PKEY_free). Types: "ec-p256",
 * "ec-p384", "secp256k1", "rsa1024", "rsa2048", "ed25519", "ed448".
 * Keys are generated once per process and shared.
 */
EVP_PKEY *tu_key(const char *type);

/* A freshly generated key of that type, never shared. */
EVP_PKEY *tu_key_new(const char *type);

/* Release the shared keys (call before exit, for leak checkers). */
void tu_keys_free(void);

/* What a test CSR holds; NULL fields are left out. */
struct tu_csr {
	const char *subject;	/* "CN=a,O=b" (no escaping); NULL: empty */
	const char *san;	/* v3 config syntax: "DNS:a,IP:1.2.3.4" */
	const char *ku;		/* "digitalSignature,keyEncipherment" */
	const char *eku;	/* "serverAuth,clientAuth" */
	const char *bc;		/* "CA:TRUE,pathlen:1" */
	const char *ext_name;	/* one more extension (short name or OID) */
	const char *ext_value;	/* its v3 config value */
	int pem;		/* 1: PEM, 0: DER */
};

/* Build a CSR signed by `key`; *out is a new buffer (free()). */
void tu_csr_make(EVP_PKEY *key, const struct tu_csr *o, unsigned char **out,
    size_t *outlen);

#endif
