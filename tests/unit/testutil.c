#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

void
tu_tmpdir(char *buf, size_t bufsz)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	n = snprintf(buf, bufsz, "%s/certkeep-unit-XXXXXX", base);
	assert_true(n > 0 && (size_t)n < bufsz);
	assert_non_null(mkdtemp(buf));
	assert_int_equal(chmod(buf, 0700), 0);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

void
tu_rmtree(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return;
	(void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void
tu_path(char *buf, size_t bufsz, const char *dir, const char *name)
{
	int n = snprintf(buf, bufsz, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < bufsz);
}

void
tu_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	const unsigned char *p = data;
	int fd;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (len > 0) {
		n = write(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

unsigned char *
tu_read_file(const char *path, size_t *len)
{
	unsigned char *buf;
	struct stat st;
	FILE *f;

	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f),
	    (size_t)st.st_size);
	fclose(f);
	buf[st.st_size] = '\0';
	if (len != NULL)
		*len = (size_t)st.st_size;
	return buf;
}

mode_t
tu_file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

void
tu_assert_contains(const char *hay, const char *needle, const char *file,
    int line)
{
	if (hay != NULL && strstr(hay, needle) != NULL)
		return;
	print_error("%s:%d: expected \"%s\" to contain \"%s\"\n", file,
	    line, hay ? hay : "(null)", needle);
	_fail(file, line);
}

static const char *const key_types[] = {
	"ec-p256", "ec-p384", "secp256k1", "rsa1024", "rsa2048", "ed25519",
	"ed448"
};
#define NKEYTYPES (sizeof(key_types) / sizeof(key_types[0]))
static EVP_PKEY *key_cache[NKEYTYPES];

EVP_PKEY *
tu_key_new(const char *type)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "ec-p256") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (strcmp(type, "ec-p384") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (strcmp(type, "secp256k1") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	else if (strcmp(type, "rsa1024") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	else if (strcmp(type, "rsa2048") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (strcmp(type, "ed25519") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (strcmp(type, "ed448") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	else
		fail_msg("unknown test key type %s", type);
	assert_non_null(k);
	return k;
}

EVP_PKEY *
tu_key(const char *type)
{
	size_t i;

	for (i = 0; i < NKEYTYPES; i++)
		if (strcmp(type, key_types[i]) == 0)
			break;
	assert_true(i < NKEYTYPES);
	if (key_cache[i] == NULL)
		key_cache[i] = tu_key_new(type);
	assert_int_equal(EVP_PKEY_up_ref(key_cache[i]), 1);
	return key_cache[i];
}

void
tu_keys_free(void)
{
	size_t i;

	for (i = 0; i < NKEYTYPES; i++) {
		EVP_PKEY_free(key_cache[i]);
		key_cache[i] = NULL;
	}
}

static void
add_subject(X509_NAME *nm, const char *subject)
{
	char buf[1024], *tok, *save = NULL, *eq;

	assert_true(strlen(subject) < sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", subject);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		eq = strchr(tok, '=');
		assert_non_null(eq);
		*eq = '\0';
		assert_int_equal(X509_NAME_add_entry_by_txt(nm, tok,
		    MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0), 1);
	}
}

static void
add_ext(STACK_OF(X509_EXTENSION) *exts, X509V3_CTX *ctx, const char *name,
    const char *value)
{
	X509_EXTENSION *ext;

	ext = X509V3_EXT_nconf(NULL, ctx, name, value);
	if (ext == NULL) {
		ERR_print_errors_fp(stderr);
		fail_msg("cannot build extension %s = %s", name, value);
	}
	assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
}

void
tu_csr_make(EVP_PKEY *key, const struct tu_csr *o, unsigned char **out,
    size_t *outlen)
{
	STACK_OF(X509_EXTENSION) *exts;
	X509_REQ *req;
	X509_NAME *nm;
	X509V3_CTX ctx;
	const EVP_MD *md;
	int id = EVP_PKEY_get_base_id(key);

	req = X509_REQ_new();
	assert_non_null(req);
	assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
	nm = X509_NAME_new();
	assert_non_null(nm);
	if (o->subject != NULL)
		add_subject(nm, o->subject);
	assert_int_equal(X509_REQ_set_subject_name(req, nm), 1);
	X509_NAME_free(nm);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);

	exts = sk_X509_EXTENSION_new_null();
	assert_non_null(exts);
	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	X509V3_set_ctx_nodb(&ctx);
	if (o->san != NULL)
		add_ext(exts, &ctx, "subjectAltName", o->san);
	if (o->ku != NULL)
		add_ext(exts, &ctx, "keyUsage", o->ku);
	if (o->eku != NULL)
		add_ext(exts, &ctx, "extendedKeyUsage", o->eku);
	if (o->bc != NULL)
		add_ext(exts, &ctx, "basicConstraints", o->bc);
	if (o->ext_name != NULL)
		add_ext(exts, &ctx, o->ext_name, o->ext_value);
	if (sk_X509_EXTENSION_num(exts) > 0)
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);

	md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL :
	    EVP_sha256();
	assert_true(X509_REQ_sign(req, key, md) > 0);

	if (o->pem) {
		BIO *bio = BIO_new(BIO_s_mem());
		BUF_MEM *bm;

		assert_non_null(bio);
		assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
		BIO_get_mem_ptr(bio, &bm);
		*out = malloc(bm->length);
		assert_non_null(*out);
		memcpy(*out, bm->data, bm->length);
		*outlen = bm->length;
		BIO_free(bio);
	} else {
		unsigned char *der = NULL;
		int len = i2d_X509_REQ(req, &der);

		assert_true(len > 0);
		*out = malloc((size_t)len);
		assert_non_null(*out);
		memcpy(*out, der, (size_t)len);
		*outlen = (size_t)len;
		OPENSSL_free(der);
	}
	X509_REQ_free(req);
}
