/*
 * test_keystore.c - src/keystore: CA keys at rest, encrypted PKCS#8 with
 * PBES2/scrypt/AES-256-CBC, files 0600, refusals.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/secmem.h"
#include "keystore/keystore.h"

#define TEST_LOG2N 10
#define PASS "correct horse battery staple"

struct fx {
	char dir[4096];
	char path[4200];
	struct ck_secret *pass;
};

static struct ck_secret *
secret_of(const char *v)
{
	struct ck_secret *s = ck_secret_new(1024);

	assert_non_null(s);
	s->len = strlen(v);
	memcpy(s->buf, v, s->len);
	s->buf[s->len] = '\0';
	return s;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->path, sizeof(fx->path), fx->dir, "ca.key");
	fx->pass = secret_of(PASS);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	ck_secret_free(fx->pass);
	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

/* Sign with `priv`, verify with `pub`: the two halves belong together. */
static void
assert_same_key(EVP_PKEY *priv, EVP_PKEY *pub)
{
	static const unsigned char msg[] = "certkeep keystore test";
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx;
	int id = EVP_PKEY_get_base_id(pub);
	const EVP_MD *md = id == EVP_PKEY_ED25519 ? NULL : EVP_sha256();

	assert_int_equal(EVP_PKEY_eq(priv, pub), 1);
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, priv), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(ctx);
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(ctx);
}

static void
round_trip(struct fx *fx, const char *type)
{
	EVP_PKEY *k = tu_key(type), *back = NULL;
	unsigned char *buf;
	size_t len;

	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N), 0);
	assert_int_equal(tu_file_mode(fx->path), 0600);
	buf = tu_read_file(fx->path, &len);
	assert_true(strncmp((char *)buf,
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0);
	free(buf);

	assert_int_equal(keystore_load(fx->path, fx->pass, &back), 0);
	assert_non_null(back);
	assert_same_key(back, k);
	EVP_PKEY_free(back);
	EVP_PKEY_free(k);
	assert_int_equal(remove(fx->path), 0);
}

static void
test_round_trip(void **state)
{
	struct fx *fx = *state;

	round_trip(fx, "ec-p256");
	round_trip(fx, "ed25519");
	round_trip(fx, "rsa2048");
}

/* The private key never appears in the clear in the file. */
static void
test_no_clear_key(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *file, *der;
	size_t len;
	BIO *bio;
	long derlen;
	char *name = NULL, *header = NULL;

	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N), 0);
	file = tu_read_file(fx->path, &len);
	bio = BIO_new_mem_buf(file, (int)len);
	assert_non_null(bio);
	assert_int_equal(PEM_read_bio(bio, &name, &header, &der, &derlen), 1);
	assert_string_equal(name, "ENCRYPTED PRIVATE KEY");
	assert_string_equal(header, "");
	{
		BIGNUM *d = NULL;
		unsigned char raw[32];

		assert_int_equal(EVP_PKEY_get_bn_param(k, "priv", &d), 1);
		assert_int_equal(BN_bn2binpad(d, raw, sizeof(raw)), 32);
		assert_null(memmem(der, (size_t)derlen, raw, sizeof(raw)));
		BN_clear_free(d);
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	free(file);
	EVP_PKEY_free(k);
}

static void
test_wrong_passphrase(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back = NULL;
	static const char *const wrong[] = {
		"correct horse battery stapl", "correct horse battery staple ",
		"Correct horse battery staple", "x",
	};
	struct ck_secret *w;
	size_t i;

	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N), 0);
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		w = secret_of(wrong[i]);
		ck_err_clear();
		assert_int_equal(keystore_load(fx->path, w, &back),
		    CK_E_PASSPHRASE);
		assert_null(back);
		assert_contains(ck_err_msg(), "passphrase");
		ck_secret_free(w);
	}
	/* The right one still works afterwards. */
	assert_int_equal(keystore_load(fx->path, fx->pass, &back), 0);
	EVP_PKEY_free(back);
	EVP_PKEY_free(k);
}

static void
test_unsafe_mode_refused(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back = NULL;
	static const mode_t bad[] = { 0644, 0640, 0604, 0660 };
	size_t i;

	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(fx->path, bad[i]), 0);
		ck_err_clear();
		assert_int_equal(keystore_load(fx->path, fx->pass, &back),
		    CK_E_PERM);
		assert_null(back);
		assert_contains(ck_err_msg(), "chmod 600");
	}
	/* Read-only for the owner is fine. */
	assert_int_equal(chmod(fx->path, 0400), 0);
	assert_int_equal(keystore_load(fx->path, fx->pass, &back), 0);
	EVP_PKEY_free(back);
	EVP_PKEY_free(k);
}

static void
write_pem(const char *path, int (*wr)(BIO *, EVP_PKEY *), EVP_PKEY *k,
    const char *prefix)
{
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *bm;

	assert_non_null(bio);
	if (prefix != NULL)
		assert_true(BIO_puts(bio, prefix) > 0);
	assert_int_equal(wr(bio, k), 1);
	BIO_get_mem_ptr(bio, &bm);
	tu_write_file(path, bm->data, bm->length, 0600);
	BIO_free(bio);
}

static int
write_pkcs8_plain(BIO *bio, EVP_PKEY *k)
{
	return PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
}

static int
write_traditional(BIO *bio, EVP_PKEY *k)
{
	return PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0,
	    NULL, NULL);
}

static int
write_traditional_encrypted(BIO *bio, EVP_PKEY *k)
{
	return PEM_write_bio_PrivateKey_traditional(bio, k, EVP_aes_256_cbc(),
	    (unsigned char *)PASS, (int)strlen(PASS), NULL, NULL);
}

static void
test_plaintext_refused(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back = NULL;

	/* Unencrypted PKCS#8. */
	write_pem(fx->path, write_pkcs8_plain, k, NULL);
	ck_err_clear();
	assert_int_equal(keystore_load(fx->path, fx->pass, &back), CK_E_PARSE);
	assert_null(back);
	assert_contains(ck_err_msg(), "encrypted");

	/* Unencrypted traditional format. */
	write_pem(fx->path, write_traditional, k, NULL);
	assert_int_equal(keystore_load(fx->path, fx->pass, &back), CK_E_PARSE);
	assert_null(back);

	/* Legacy PEM encryption is not PKCS#8 either. */
	write_pem(fx->path, write_traditional_encrypted, k, NULL);
	assert_int_equal(keystore_load(fx->path, fx->pass, &back), CK_E_PARSE);
	assert_null(back);

	/* A plaintext key behind a line that merely mentions the marker. */
	write_pem(fx->path, write_pkcs8_plain, k,
	    "note: -----BEGIN ENCRYPTED PRIVATE KEY-----\n");
	assert_int_equal(keystore_load(fx->path, fx->pass, &back), CK_E_PARSE);
	assert_null(back);

	/* Not a key at all. */
	tu_write_file(fx->path, "hello\n", 6, 0600);
	assert_int_equal(keystore_load(fx->path, fx->pass, &back), CK_E_PARSE);
	assert_null(back);
	EVP_PKEY_free(k);
}

static void
test_damaged_file(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back = NULL;
	unsigned char *buf;
	size_t len;
	char *p;

	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N), 0);
	buf = tu_read_file(fx->path, &len);
	/* Change one base64 character in the middle of the body. */
	p = (char *)buf + len / 2;
	while (*p == '\n')
		p--;
	*p = *p == 'A' ? 'B' : 'A';
	assert_int_equal(remove(fx->path), 0);
	tu_write_file(fx->path, buf, len, 0600);
	assert_int_not_equal(keystore_load(fx->path, fx->pass, &back), 0);
	assert_null(back);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_missing_file(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *back = NULL;

	assert_int_equal(keystore_load(fx->path, fx->pass, &back),
	    CK_E_NOTFOUND);
	assert_null(back);
}

static void
test_save_refuses_existing(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf;
	size_t len;

	tu_write_file(fx->path, "precious", 8, 0600);
	ck_err_clear();
	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N),
	    CK_E_EXISTS);
	buf = tu_read_file(fx->path, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "precious", 8);
	free(buf);

	/* Nor does it write into a directory that does not exist. */
	tu_path(fx->path, sizeof(fx->path), fx->dir, "nodir/ca.key");
	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N),
	    CK_E_IO);
	EVP_PKEY_free(k);
}

struct pbes2 {
	int outer_nid;		/* NID_pbes2 */
	int kdf_nid;		/* NID_id_scrypt */
	int cipher_nid;		/* NID_aes_256_cbc */
	uint64_t n, r, p;
	int saltlen;
};

/* Take apart the AlgorithmIdentifier of an ENCRYPTED PRIVATE KEY PEM. */
static void
read_pbes2(const char *pem, size_t len, struct pbes2 *out)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509_SIG *p8;
	const X509_ALGOR *alg;
	PBE2PARAM *pbe2;
	SCRYPT_PARAMS *sp;

	memset(out, 0, sizeof(*out));
	assert_non_null(bio);
	p8 = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL);
	assert_non_null(p8);
	X509_SIG_get0(p8, &alg, NULL);
	out->outer_nid = OBJ_obj2nid(alg->algorithm);
	assert_int_equal(out->outer_nid, NID_pbes2);
	pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
	    alg->parameter);
	assert_non_null(pbe2);
	out->kdf_nid = OBJ_obj2nid(pbe2->keyfunc->algorithm);
	out->cipher_nid = OBJ_obj2nid(pbe2->encryption->algorithm);
	if (out->kdf_nid == NID_id_scrypt) {
		sp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS),
		    pbe2->keyfunc->parameter);
		assert_non_null(sp);
		assert_int_equal(ASN1_INTEGER_get_uint64(&out->n,
		    sp->costParameter), 1);
		assert_int_equal(ASN1_INTEGER_get_uint64(&out->r,
		    sp->blockSize), 1);
		assert_int_equal(ASN1_INTEGER_get_uint64(&out->p,
		    sp->parallelizationParameter), 1);
		out->saltlen = ASN1_STRING_length(sp->salt);
		SCRYPT_PARAMS_free(sp);
	}
	PBE2PARAM_free(pbe2);
	X509_SIG_free(p8);
	BIO_free(bio);
}

static void
test_format_is_pbes2_scrypt(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf;
	size_t len;
	struct pbes2 pb;

	assert_int_equal(keystore_save(fx->path, k, fx->pass, TEST_LOG2N), 0);
	buf = tu_read_file(fx->path, &len);
	read_pbes2((char *)buf, len, &pb);
	assert_int_equal(pb.outer_nid, NID_pbes2);
	assert_int_equal(pb.kdf_nid, NID_id_scrypt);
	assert_int_equal(pb.cipher_nid, NID_aes_256_cbc);
	assert_true(pb.n == (uint64_t)1 << TEST_LOG2N);
	assert_true(pb.r == KEYSTORE_SCRYPT_R);
	assert_true(pb.p == KEYSTORE_SCRYPT_P);
	assert_true(pb.saltlen >= 16);
	free(buf);
	EVP_PKEY_free(k);
}

static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
	const char *p = u;
	int n = (int)strlen(p);

	(void)rwflag;
	if (n > size)
		return -1;
	memcpy(buf, p, (size_t)n);
	return n;
}

/* At the default cost the file opens with OpenSSL's own defaults, like
 * `openssl pkey -in FILE` does; a fresh salt is drawn every time. */
static void
test_default_cost_opens_with_openssl(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back;
	char *pem1 = NULL, *pem2 = NULL;
	size_t len1 = 0, len2 = 0;
	struct pbes2 pb;
	BIO *bio;

	assert_int_equal(keystore_encode(k, fx->pass, 0, &pem1, &len1), 0);
	assert_int_equal(strlen(pem1), len1);
	read_pbes2(pem1, len1, &pb);
	assert_int_equal(pb.kdf_nid, NID_id_scrypt);
	assert_true(pb.n == (uint64_t)1 << KEYSTORE_SCRYPT_LOG2N);
	assert_true(pb.r == KEYSTORE_SCRYPT_R);

	bio = BIO_new_mem_buf(pem1, (int)len1);
	assert_non_null(bio);
	back = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, (void *)PASS);
	assert_non_null(back);
	assert_same_key(back, k);
	EVP_PKEY_free(back);
	BIO_free(bio);

	/* Same key, same passphrase: different salt, different file. */
	assert_int_equal(keystore_encode(k, fx->pass, TEST_LOG2N, &pem2,
	    &len2), 0);
	assert_false(len1 == len2 && memcmp(pem1, pem2, len1) == 0);
	free(pem1);
	free(pem2);
	EVP_PKEY_free(k);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_round_trip),
		T(test_no_clear_key),
		T(test_wrong_passphrase),
		T(test_unsafe_mode_refused),
		T(test_plaintext_refused),
		T(test_damaged_file),
		T(test_missing_file),
		T(test_save_refuses_existing),
		T(test_format_is_pbes2_scrypt),
		T(test_default_cost_opens_with_openssl),
	};
#undef T
	int r;

	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_keys_free();
	return r;
}
