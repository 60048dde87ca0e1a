/*
 * test_keybackup.c - src/backup/keybackup: Shamir over GF(2^8), the
 * passphrase form (PBES2/scrypt PKCS#8, also at the full 1 GiB cost), and
 * M-of-N share files with every refusal the join makes.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "backup/keybackup.h"
#include "common/err.h"
#include "common/secmem.h"

#define TEST_LOG2N 10
#define PASS "a long enough backup passphrase"

struct fx {
	char dir[4096];
	char path[4200];
	char sdir[4200];
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
	tu_path(fx->path, sizeof(fx->path), fx->dir, "ca-key.p8");
	tu_path(fx->sdir, sizeof(fx->sdir), fx->dir, "shares");
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

/* Sign with `priv`, verify with `pub`. */
static void
assert_same_key(EVP_PKEY *priv, EVP_PKEY *pub)
{
	static const unsigned char msg[] = "certkeep key backup test";
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx;
	int id = EVP_PKEY_get_base_id(pub);
	const EVP_MD *md = id == EVP_PKEY_ED25519 ? NULL : EVP_sha256();

	assert_int_equal(EVP_PKEY_eq(priv, pub), 1);
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, priv), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg,
	    sizeof(msg)), 1);
	EVP_MD_CTX_free(ctx);
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, siglen, msg,
	    sizeof(msg)), 1);
	EVP_MD_CTX_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Shamir */

/* Next M-subset of 0..N-1; 0 after the last. */
static int
next_subset(int *idx, int m, int n)
{
	int i = m - 1;

	while (i >= 0 && idx[i] == n - m + i)
		i--;
	if (i < 0)
		return 0;
	idx[i]++;
	for (i++; i < m; i++)
		idx[i] = idx[i - 1] + 1;
	return 1;
}

/* Join every K-subset of the N shares; count those that give SECRET. */
static void
join_subsets(unsigned char **shares, int n, int k, size_t len,
    const unsigned char *secret, int *right, int *wrong)
{
	const unsigned char *ys[CK_KEYBACKUP_MAX_SHARES];
	unsigned char xs[CK_KEYBACKUP_MAX_SHARES], got[64];
	int idx[CK_KEYBACKUP_MAX_SHARES], i;

	*right = *wrong = 0;
	for (i = 0; i < k; i++)
		idx[i] = i;
	do {
		for (i = 0; i < k; i++) {
			ys[i] = shares[idx[i]];
			xs[i] = (unsigned char)(idx[i] + 1);
		}
		assert_int_equal(ck_shamir_join(ys, xs, k, len, got), 0);
		if (memcmp(got, secret, len) == 0)
			(*right)++;
		else
			(*wrong)++;
	} while (next_subset(idx, k, n));
}

static void
test_shamir_subsets(void **state)
{
	unsigned char secret[32], *shares[10], buf[10][32];
	int n, m, i, right, wrong;

	(void)state;
	for (i = 0; i < 10; i++)
		shares[i] = buf[i];
	for (n = 2; n <= 10; n++)
		for (m = 2; m <= n; m++) {
			/* M = 2..5 and M = N, for every N up to 10. */
			if (m > 5 && m != n)
				continue;
			assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
			assert_int_equal(ck_shamir_split(secret,
			    sizeof(secret), m, n, shares), 0);
			join_subsets(shares, n, m, sizeof(secret), secret,
			    &right, &wrong);
			assert_true(right > 0);
			assert_int_equal(wrong, 0);
			/* M-1 shares: never the secret (a chance of 2^-256
			 * per subset that it is by accident). */
			join_subsets(shares, n, m - 1, sizeof(secret), secret,
			    &right, &wrong);
			assert_int_equal(right, 0);
			assert_true(wrong > 0);
		}
}

/* Lengths other than 32, the largest N, and fresh randomness each time. */
static void
test_shamir_sizes(void **state)
{
	unsigned char secret[64], got[64], *shares[255], *again[255];
	const unsigned char *ys[255];
	unsigned char xs[255];
	size_t lens[] = { 1, 17, 64 }, li;
	int i;

	(void)state;
	for (i = 0; i < 255; i++) {
		shares[i] = malloc(64);
		again[i] = malloc(64);
		assert_non_null(shares[i]);
		assert_non_null(again[i]);
	}
	for (li = 0; li < 3; li++) {
		assert_int_equal(RAND_bytes(secret, (int)lens[li]), 1);
		assert_int_equal(ck_shamir_split(secret, lens[li], 3, 255,
		    shares), 0);
		/* Shares 255, 128 and 1 (x = i + 1). */
		ys[0] = shares[254];
		xs[0] = 255;
		ys[1] = shares[127];
		xs[1] = 128;
		ys[2] = shares[0];
		xs[2] = 1;
		assert_int_equal(ck_shamir_join(ys, xs, 3, lens[li], got), 0);
		assert_memory_equal(got, secret, lens[li]);
	}
	/* Same secret twice: different shares (random coefficients). */
	assert_int_equal(ck_shamir_split(secret, 32, 2, 3, shares), 0);
	assert_int_equal(ck_shamir_split(secret, 32, 2, 3, again), 0);
	assert_memory_not_equal(shares[0], again[0], 32);
	for (i = 0; i < 255; i++) {
		free(shares[i]);
		free(again[i]);
	}
}

/*
 * Known answer, independent of the implementation: in GF(2^8) with the
 * AES polynomial 0x57 * 0x83 = 0xc1 (FIPS-197 4.2). The line
 * f(x) = s + 0x57 x passes through (0x01, s ^ 0x57) and (0x83, s ^ 0xc1).
 */
static void
test_shamir_known_answer(void **state)
{
	unsigned char y1[2], y2[2], got[2];
	const unsigned char *ys[2] = { y1, y2 };
	unsigned char xs[2] = { 0x01, 0x83 };
	const unsigned char s[2] = { 0x00, 0xaa };
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		y1[i] = s[i] ^ 0x57;
		y2[i] = s[i] ^ 0xc1;
	}
	assert_int_equal(ck_shamir_join(ys, xs, 2, 2, got), 0);
	assert_memory_equal(got, s, 2);
}

static void
test_shamir_refusals(void **state)
{
	unsigned char secret[8] = "secret!", b[3][8], got[8];
	unsigned char *shares[3] = { b[0], b[1], b[2] };
	const unsigned char *ys[3] = { b[0], b[1], b[2] };
	unsigned char dup[3] = { 1, 2, 1 }, zero[3] = { 0, 1, 2 };

	(void)state;
	assert_int_equal(ck_shamir_split(secret, 8, 1, 3, shares), CK_E_INVAL);
	assert_int_equal(ck_shamir_split(secret, 8, 4, 3, shares), CK_E_INVAL);
	assert_int_equal(ck_shamir_split(secret, 8, 2, 256, shares),
	    CK_E_INVAL);
	assert_int_equal(ck_shamir_split(secret, 0, 2, 3, shares), CK_E_INVAL);
	assert_int_equal(ck_shamir_split(secret, 8, 2, 3, shares), 0);
	assert_int_equal(ck_shamir_join(ys, dup, 3, 8, got), CK_E_INVAL);
	assert_int_equal(ck_shamir_join(ys, zero, 3, 8, got), CK_E_INVAL);
	assert_int_equal(ck_shamir_join(ys, zero + 1, 0, 8, got), CK_E_INVAL);
}

/* ------------------------------------------------------------------ */
/* Passphrase form */

struct pbes2 {
	int kdf_nid, cipher_nid;
	uint64_t n, r, p;
	int saltlen;
};

static void
read_pbes2(const char *path, struct pbes2 *out)
{
	unsigned char *pem;
	size_t len;
	BIO *bio;
	X509_SIG *p8;
	const X509_ALGOR *alg;
	PBE2PARAM *pbe2;
	SCRYPT_PARAMS *sp;

	memset(out, 0, sizeof(*out));
	pem = tu_read_file(path, &len);
	assert_non_null(strstr((char *)pem,
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
	bio = BIO_new_mem_buf(pem, (int)len);
	assert_non_null(bio);
	p8 = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL);
	assert_non_null(p8);
	X509_SIG_get0(p8, &alg, NULL);
	assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_pbes2);
	pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
	    alg->parameter);
	assert_non_null(pbe2);
	out->kdf_nid = OBJ_obj2nid(pbe2->keyfunc->algorithm);
	out->cipher_nid = OBJ_obj2nid(pbe2->encryption->algorithm);
	assert_int_equal(out->kdf_nid, NID_id_scrypt);
	sp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS),
	    pbe2->keyfunc->parameter);
	assert_non_null(sp);
	assert_int_equal(ASN1_INTEGER_get_uint64(&out->n, sp->costParameter),
	    1);
	assert_int_equal(ASN1_INTEGER_get_uint64(&out->r, sp->blockSize), 1);
	assert_int_equal(ASN1_INTEGER_get_uint64(&out->p,
	    sp->parallelizationParameter), 1);
	out->saltlen = ASN1_STRING_length(sp->salt);
	SCRYPT_PARAMS_free(sp);
	PBE2PARAM_free(pbe2);
	X509_SIG_free(p8);
	BIO_free(bio);
	free(pem);
}

static void
test_pass_round_trip(void **state)
{
	struct fx *fx = *state;
	const char *types[] = { "ec-p256", "ed25519", "rsa2048" };
	struct pbes2 pb;
	EVP_PKEY *k, *back;
	unsigned char *pem;
	size_t i, len;

	for (i = 0; i < 3; i++) {
		k = tu_key(types[i]);
		(void)unlink(fx->path);
		assert_int_equal(ck_keybackup_write_pass(fx->path, k, fx->pass,
		    TEST_LOG2N), 0);
		assert_int_equal(tu_file_mode(fx->path), 0600);
		read_pbes2(fx->path, &pb);
		assert_int_equal(pb.cipher_nid, NID_aes_256_cbc);
		assert_true(pb.n == 1u << TEST_LOG2N);
		assert_true(pb.r == 8 && pb.p == 1);
		assert_int_equal(pb.saltlen, 16);
		/* Nothing in the clear. */
		pem = tu_read_file(fx->path, &len);
		assert_null(strstr((char *)pem, "BEGIN PRIVATE KEY"));
		free(pem);
		back = NULL;
		assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass,
		    &back), 0);
		assert_same_key(back, k);
		EVP_PKEY_free(back);
		EVP_PKEY_free(k);
	}
}

static void
test_pass_wrong_passphrase(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back = NULL;
	struct ck_secret *wrong = secret_of(PASS "!");
	int i;

	assert_int_equal(ck_keybackup_write_pass(fx->path, k, fx->pass,
	    TEST_LOG2N), 0);
	/* CBC padding catches most wrong keys; DER parsing the rest. Try a
	 * few so both paths are likely taken. */
	for (i = 0; i < 8; i++) {
		wrong->buf[wrong->len - 1] = (unsigned char)('a' + i);
		ck_err_clear();
		assert_int_equal(ck_keybackup_read_pass(fx->path, wrong,
		    &back), CK_E_PASSPHRASE);
		assert_null(back);
		assert_contains(ck_err_msg(), "wrong passphrase");
	}
	ck_secret_free(wrong);
	EVP_PKEY_free(k);
}

static void
test_pass_refusals(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back = NULL;
	struct ck_secret *shortpw = secret_of("elevenchars");
	char nodir[4300];
	unsigned char *buf;
	size_t len;

	/* An existing file is never overwritten. */
	tu_write_file(fx->path, "precious", 8, 0600);
	assert_int_equal(ck_keybackup_write_pass(fx->path, k, fx->pass,
	    TEST_LOG2N), CK_E_EXISTS);
	buf = tu_read_file(fx->path, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "precious", 8);
	free(buf);
	/* Nor is a directory made. */
	tu_path(nodir, sizeof(nodir), fx->dir, "nodir/k.p8");
	assert_int_equal(ck_keybackup_write_pass(nodir, k, fx->pass,
	    TEST_LOG2N), CK_E_IO);
	/* Too short a passphrase, a cost out of range. */
	(void)unlink(fx->path);
	assert_int_equal(ck_keybackup_write_pass(fx->path, k, shortpw,
	    TEST_LOG2N), CK_E_PASSPHRASE);
	assert_int_equal(ck_keybackup_write_pass(fx->path, k, fx->pass, 9),
	    CK_E_INVAL);
	assert_int_equal(ck_keybackup_write_pass(fx->path, k, fx->pass, 23),
	    CK_E_INVAL);
	assert_int_equal(access(fx->path, F_OK), -1);
	/* Not a backup at all. */
	tu_write_file(fx->path, "hello\n", 6, 0600);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_PARSE);
	assert_null(back);
	ck_secret_free(shortpw);
	EVP_PKEY_free(k);
}

/* A PBES2 PKCS#8 with PBKDF2 (what `openssl pkcs8 -topk8` writes by
 * default) is standard but not a certkeep key backup. */
static void
test_pass_pbkdf2_refused(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *bm;

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, k,
	    EVP_aes_256_cbc(), PASS, (int)strlen(PASS), NULL, NULL), 1);
	BIO_get_mem_ptr(bio, &bm);
	tu_write_file(fx->path, bm->data, bm->length, 0600);
	ck_err_clear();
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_PARSE);
	assert_null(back);
	assert_contains(ck_err_msg(), "scrypt");
	BIO_free(bio);
	EVP_PKEY_free(k);
}

/* Write an ENCRYPTED PRIVATE KEY with the given scrypt parameters and
 * junk ciphertext: the reader must refuse before it derives anything. */
static void
write_scrypt_pem(const char *path, uint64_t n, uint64_t r, uint64_t p)
{
	unsigned char salt[16] = { 1 }, iv[16] = { 2 }, ct[64] = { 3 };
	SCRYPT_PARAMS *sp = SCRYPT_PARAMS_new();
	PBE2PARAM *pbe2 = PBE2PARAM_new();
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *digest, *ivs = ASN1_OCTET_STRING_new();
	X509_SIG *sig = X509_SIG_new();
	ASN1_STRING *seq = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *bm;

	assert_true(sp && pbe2 && ivs && sig && bio);
	assert_int_equal(ASN1_OCTET_STRING_set(sp->salt, salt, 16), 1);
	assert_int_equal(ASN1_INTEGER_set_uint64(sp->costParameter, n), 1);
	assert_int_equal(ASN1_INTEGER_set_uint64(sp->blockSize, r), 1);
	assert_int_equal(ASN1_INTEGER_set_uint64(sp->parallelizationParameter,
	    p), 1);
	assert_non_null(ASN1_item_pack(sp, ASN1_ITEM_rptr(SCRYPT_PARAMS),
	    &seq));
	assert_int_equal(X509_ALGOR_set0(pbe2->keyfunc,
	    OBJ_nid2obj(NID_id_scrypt), V_ASN1_SEQUENCE, seq), 1);
	seq = NULL;
	assert_int_equal(ASN1_OCTET_STRING_set(ivs, iv, 16), 1);
	assert_int_equal(X509_ALGOR_set0(pbe2->encryption,
	    OBJ_nid2obj(NID_aes_256_cbc), V_ASN1_OCTET_STRING, ivs), 1);
	X509_SIG_getm(sig, &alg, &digest);
	assert_non_null(ASN1_item_pack(pbe2, ASN1_ITEM_rptr(PBE2PARAM),
	    &seq));
	assert_int_equal(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_pbes2),
	    V_ASN1_SEQUENCE, seq), 1);
	assert_int_equal(ASN1_OCTET_STRING_set(digest, ct, sizeof(ct)), 1);
	assert_int_equal(PEM_write_bio_PKCS8(bio, sig), 1);
	BIO_get_mem_ptr(bio, &bm);
	(void)unlink(path);
	tu_write_file(path, bm->data, bm->length, 0600);
	BIO_free(bio);
	X509_SIG_free(sig);
	PBE2PARAM_free(pbe2);
	SCRYPT_PARAMS_free(sp);
}

static void
test_pass_cost_limits(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *back = NULL;

	/* 2 GiB + of memory (r = 16 at N = 2^20): over the limit. */
	write_scrypt_pem(fx->path, (uint64_t)1 << 20, 16, 1);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_TOOBIG);
	/* Work: p = 16 at the default N and r. */
	write_scrypt_pem(fx->path, (uint64_t)1 << 20, 8, 16);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_TOOBIG);
	/* N beyond 2^22, not a power of two, r = 0. */
	write_scrypt_pem(fx->path, (uint64_t)1 << 30, 1, 1);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_PARSE);
	write_scrypt_pem(fx->path, 1000, 8, 1);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_PARSE);
	write_scrypt_pem(fx->path, 1024, 0, 1);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_PARSE);
	/* Within the limits: it is tried, and the junk does not decrypt. */
	write_scrypt_pem(fx->path, 1024, 8, 1);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    CK_E_PASSPHRASE);
	assert_null(back);
}

/* Run a program without a shell; its standard output to OUT. Returns its
 * exit status, or -1 if it could not be started. */
static int
run_prog(char *const argv[], const char *out)
{
	pid_t pid;
	int st, fd;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 127)
		return -1;
	return WEXITSTATUS(st);
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

/* At N = 2^14 (16 MiB) OpenSSL's own code opens the backup: it is
 * standard PKCS#8, `openssl pkey -passin file:` included. */
static void
test_pass_openssl_opens_log2n_14(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *back;
	char pwfile[4300], out[4300];
	char *argv[] = { "openssl", "pkey", "-in", fx->path, "-passin", NULL,
	    "-pubout", NULL };
	char passin[4400];
	unsigned char *pem, *want;
	size_t len, wlen;
	BIO *bio;
	BUF_MEM *bm;
	int st;

	assert_int_equal(ck_keybackup_write_pass(fx->path, k, fx->pass, 14),
	    0);
	pem = tu_read_file(fx->path, &len);
	bio = BIO_new_mem_buf(pem, (int)len);
	back = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, (void *)PASS);
	assert_non_null(back);
	assert_same_key(back, k);
	EVP_PKEY_free(back);
	BIO_free(bio);
	free(pem);

	tu_path(pwfile, sizeof(pwfile), fx->dir, "pw");
	tu_path(out, sizeof(out), fx->dir, "pub.pem");
	tu_write_file(pwfile, PASS "\n", strlen(PASS) + 1, 0600);
	snprintf(passin, sizeof(passin), "file:%s", pwfile);
	argv[5] = passin;
	st = run_prog(argv, out);
	if (st < 0) {
		EVP_PKEY_free(k);
		skip();		/* no openssl program here */
	}
	assert_int_equal(st, 0);
	want = tu_read_file(out, &len);
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
	BIO_get_mem_ptr(bio, &bm);
	wlen = bm->length;
	assert_int_equal(len, wlen);
	assert_memory_equal(want, bm->data, wlen);
	BIO_free(bio);
	free(want);
	EVP_PKEY_free(k);
}

/* The real thing: N = 2^20, r = 8 (1 GiB), which OpenSSL's PKCS#8 code
 * refuses and certkeep reads with its own limit. */
static void
test_pass_default_cost(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ed25519"), *back = NULL;
	struct pbes2 pb;
	unsigned char *pem;
	size_t len;
	BIO *bio;

	assert_int_equal(ck_keybackup_write_pass(fx->path, k, fx->pass, 0),
	    0);
	read_pbes2(fx->path, &pb);
	assert_true(pb.n == (uint64_t)1 << CK_KEYBACKUP_SCRYPT_LOG2N);
	assert_true(pb.r == 8 && pb.p == 1);
	pem = tu_read_file(fx->path, &len);
	bio = BIO_new_mem_buf(pem, (int)len);
	assert_null(PEM_read_bio_PrivateKey(bio, NULL, pass_cb,
	    (void *)PASS));
	ERR_clear_error();
	BIO_free(bio);
	free(pem);
	assert_int_equal(ck_keybackup_read_pass(fx->path, fx->pass, &back),
	    0);
	assert_same_key(back, k);
	EVP_PKEY_free(back);
	EVP_PKEY_free(k);
}

/* ------------------------------------------------------------------ */
/* Shares */

static const char *const cust5[] = { "alice", "bob", "carol", "dave",
    "erin" };
#define LABEL "Test-CA"

static char **
split_into(const char *dir, EVP_PKEY *k, int m, int n)
{
	char **paths = NULL;

	ck_err_clear();
	if (ck_keybackup_split(k, m, n, cust5, dir, LABEL, &paths) != 0)
		fail_msg("split: %s", ck_err_msg());
	assert_non_null(paths);
	return paths;
}

static void
free_paths(char **p, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(p[i]);
	free(p);
}

/* Join the named shares (indexes into PATHS); expect R and, on failure,
 * MSG in the error. */
static void
join_expect(char **paths, const int *idx, int k, int r, const char *msg,
    EVP_PKEY *want)
{
	const char *sel[16];
	EVP_PKEY *got = NULL;
	int i;

	for (i = 0; i < k; i++)
		sel[i] = paths[idx[i]];
	ck_err_clear();
	assert_int_equal(ck_keybackup_join(sel, k, &got), r);
	if (r == 0) {
		assert_non_null(got);
		assert_same_key(got, want);
		EVP_PKEY_free(got);
	} else {
		assert_null(got);
		assert_contains(ck_err_msg(), msg);
	}
}

static void
test_shares_every_subset(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	char **paths = split_into(fx->sdir, k, 3, 5), fp[65], want[4300];
	char name[256];
	int idx[5] = { 0, 1, 2, 3, 4 }, i;

	assert_int_equal(ck_key_fingerprint(k, fp), 0);
	assert_int_equal(tu_file_mode(fx->sdir), 0700);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), LABEL "-key-%.16s-share-%dof5-%s"
		    ".share", fp, i + 1, cust5[i]);
		tu_path(want, sizeof(want), fx->sdir, name);
		assert_string_equal(paths[i], want);
		assert_int_equal(tu_file_mode(paths[i]), 0600);
	}
	/* Any 3 of the 5, any 4, all 5. */
	do
		join_expect(paths, idx, 3, 0, NULL, k);
	while (next_subset(idx, 3, 5));
	for (i = 0; i < 5; i++)
		idx[i] = i;
	join_expect(paths, idx, 4, 0, NULL, k);
	join_expect(paths, idx, 5, 0, NULL, k);
	free_paths(paths, 5);
	EVP_PKEY_free(k);
}

static void
test_shares_key_types(void **state)
{
	struct fx *fx = *state;
	const char *types[] = { "rsa2048", "ec-p256", "ed25519" };
	char dir[4300], sub[16];
	int idx[3] = { 4, 0, 2 }, i;
	char **paths;
	EVP_PKEY *k;

	for (i = 0; i < 3; i++) {
		k = tu_key(types[i]);
		snprintf(sub, sizeof(sub), "s%d", i);
		tu_path(dir, sizeof(dir), fx->dir, sub);
		paths = split_into(dir, k, 3, 5);
		join_expect(paths, idx, 3, 0, NULL, k);
		free_paths(paths, 5);
		EVP_PKEY_free(k);
	}
	/* 2 of 2. */
	k = tu_key("ec-p256");
	tu_path(dir, sizeof(dir), fx->dir, "two");
	paths = split_into(dir, k, 2, 2);
	join_expect(paths, idx + 1, 1, CK_E_INVAL, "1 share given, 2 needed",
	    k);
	idx[0] = 1;
	idx[1] = 0;
	join_expect(paths, idx, 2, 0, NULL, k);
	free_paths(paths, 2);
	EVP_PKEY_free(k);
}

static void
test_shares_file_format(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	char **paths = split_into(fx->sdir, k, 3, 5), fp[65], line[128];
	struct ck_keyshare *s = NULL;
	unsigned char *text;
	char *again = NULL;
	size_t len, alen;

	assert_int_equal(ck_key_fingerprint(k, fp), 0);
	text = tu_read_file(paths[1], &len);
	assert_memory_equal(text, "-----BEGIN CERTKEEP KEY SHARE-----\n"
	    "Custodian: bob\nCA: " LABEL "\nKey-Fingerprint: ", 69);
	snprintf(line, sizeof(line), "Key-Fingerprint: %s\nSet: ", fp);
	assert_contains((char *)text, line);
	assert_contains((char *)text, "\nShare: 2 of 5\nThreshold: 3\n"
	    "Created: 20");
	assert_contains((char *)text, "Z\n\n");
	assert_contains((char *)text, "\n-----END CERTKEEP KEY SHARE-----\n");
	/* Parsed and written again: the same bytes. */
	assert_int_equal(ck_keyshare_parse(text, len, &s), 0);
	assert_int_equal(ck_keyshare_encode(s, &again, &alen), 0);
	assert_int_equal(alen, len);
	assert_memory_equal(again, text, len);
	free(again);
	ck_keyshare_free(s);
	free(text);
	free_paths(paths, 5);
	EVP_PKEY_free(k);
}

/* Replace the first occurrence of FROM in the file with TO (same size
 * or not). */
static void
edit_file(const char *path, const char *from, const char *to)
{
	unsigned char *t;
	char *p, *n;
	size_t len, fl = strlen(from), tl = strlen(to);

	t = tu_read_file(path, &len);
	p = strstr((char *)t, from);
	assert_non_null(p);
	n = malloc(len - fl + tl + 1);
	assert_non_null(n);
	memcpy(n, t, (size_t)(p - (char *)t));
	memcpy(n + (p - (char *)t), to, tl);
	memcpy(n + (p - (char *)t) + tl, p + fl,
	    len - (size_t)(p - (char *)t) - fl);
	(void)unlink(path);
	tu_write_file(path, n, len - fl + tl, 0600);
	free(n);
	free(t);
}

/* Where the base64 body starts: after the blank line. */
static size_t
body_start(const unsigned char *t)
{
	const char *p = strstr((const char *)t, "\n\n");

	assert_non_null(p);
	return (size_t)(p + 2 - (const char *)t);
}

static void
test_shares_altered(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	char **paths = split_into(fx->sdir, k, 3, 5);
	int idx[3] = { 0, 1, 2 };
	unsigned char *t;
	size_t len, o;

	/* One base64 character of share 3 changed (for another valid one,
	 * in the middle of the first line). */
	t = tu_read_file(paths[2], &len);
	o = body_start(t) + 30;
	t[o] = t[o] == 'A' ? 'B' : 'A';
	(void)unlink(paths[2]);
	tu_write_file(paths[2], t, len, 0600);
	free(t);
	join_expect(paths, idx, 3, CK_E_TAMPER,
	    "share 3 (carol) is altered: checksum mismatch", k);

	/* A header line that no longer says what the data does. */
	edit_file(paths[1], "Threshold: 3", "Threshold: 2");
	idx[2] = 3;
	join_expect(paths, idx, 3, CK_E_TAMPER,
	    "share 2 (bob) is altered: its header does not match", k);
	/* The custodian renamed by hand. */
	edit_file(paths[3], "Custodian: dave", "Custodian: mallory");
	idx[1] = 4;
	join_expect(paths, idx, 3, CK_E_TAMPER,
	    "share 4 (mallory) is altered", k);
	/* Shares 1 and 5 alone are too few. */
	join_expect(paths, idx, 2, CK_E_INVAL, "2 shares given, 3 needed", k);
	free_paths(paths, 5);
	EVP_PKEY_free(k);
}

static void
b64_decode_body(const unsigned char *t, size_t len, unsigned char *body,
    size_t *blen, size_t *start, size_t *end)
{
	unsigned char b64[32768];
	size_t i, n = 0;
	const char *e;
	int r;

	*start = body_start(t);
	e = strstr((const char *)t + *start, "-----END");
	assert_non_null(e);
	*end = (size_t)(e - (const char *)t);
	for (i = *start; i < *end; i++)
		if (t[i] != '\n')
			b64[n++] = t[i];
	assert_true(n < sizeof(b64) && n <= len);
	r = EVP_DecodeBlock(body, b64, (int)n);
	assert_true(r > 0);
	*blen = (size_t)r - (b64[n - 1] == '=') - (b64[n - 2] == '=');
}

/*
 * Someone who changes a share value and recomputes the checksum: with M
 * shares the key does not unwrap; with one more, certkeep finds a subset
 * that works and names the share that does not fit.
 */
static void
test_shares_forged(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	char **paths = split_into(fx->sdir, k, 3, 5);
	unsigned char *t, body[24576], b64[32768];
	unsigned int mdlen = 32;
	size_t len, blen, start, end, yoff, i, n, o;
	int idx[4] = { 0, 1, 2, 3 };
	FILE *f;

	t = tu_read_file(paths[1], &len);	/* bob's */
	b64_decode_body(t, len, body, &blen, &start, &end);
	/* magic+version+x+m+n, set, fp, created, custodian, label, iv,
	 * tag, then the share value. */
	yoff = 8 + 16 + 32 + 8 + 1 + strlen("bob") + 1 + strlen(LABEL) +
	    12 + 16;
	body[yoff + 5] ^= 0x01;
	assert_int_equal(EVP_Digest(body, blen - 32, body + blen - 32, &mdlen,
	    EVP_sha256(), NULL), 1);
	n = (size_t)EVP_EncodeBlock(b64, body, (int)blen);
	(void)unlink(paths[1]);
	f = fopen(paths[1], "w");
	assert_non_null(f);
	assert_int_equal(fwrite(t, 1, start, f), start);
	for (i = 0; i < n; i += 64) {
		o = n - i < 64 ? n - i : 64;
		assert_int_equal(fwrite(b64 + i, 1, o, f), o);
		fputc('\n', f);
	}
	assert_int_equal(fwrite(t + end, 1, len - end, f), len - end);
	assert_int_equal(fclose(f), 0);
	free(t);

	join_expect(paths, idx, 3, CK_E_TAMPER,
	    "the shares do not reconstruct the key", k);
	join_expect(paths, idx, 4, CK_E_TAMPER,
	    "share 2 (bob) is altered: its share value does not fit", k);
	/* Without bob's share the others still work. */
	idx[1] = 4;
	join_expect(paths, idx, 3, 0, NULL, k);
	free_paths(paths, 5);
	EVP_PKEY_free(k);
}

static void
test_shares_mixed_sets(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256"), *k2 = tu_key("ed25519");
	char d2[4300], d3[4300], **a, **b, **c;
	const char *sel[3];
	EVP_PKEY *got = NULL;

	tu_path(d2, sizeof(d2), fx->dir, "second");
	tu_path(d3, sizeof(d3), fx->dir, "other-key");
	a = split_into(fx->sdir, k, 3, 5);
	b = split_into(d2, k, 3, 5);
	c = split_into(d3, k2, 3, 5);
	/* Same key, two sets: shares 1 and 2 of one, 3 of the other. */
	sel[0] = a[0];
	sel[1] = a[1];
	sel[2] = b[2];
	assert_int_equal(ck_keybackup_join(sel, 3, &got), CK_E_INVAL);
	assert_contains(ck_err_msg(), "shares belong to different sets");
	sel[2] = c[2];
	assert_int_equal(ck_keybackup_join(sel, 3, &got), CK_E_INVAL);
	assert_contains(ck_err_msg(), "shares belong to different keys");
	assert_null(got);
	/* The same share twice, and the same file twice. */
	sel[2] = b[0];
	sel[0] = b[0];
	sel[1] = b[1];
	assert_int_equal(ck_keybackup_join(sel, 3, &got), CK_E_INVAL);
	assert_contains(ck_err_msg(), "share 1 (alice) is given twice");
	free_paths(a, 5);
	free_paths(b, 5);
	free_paths(c, 5);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

static void
test_shares_garbage(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	char **paths = split_into(fx->sdir, k, 2, 3), g[4300];
	const char *sel[2];
	unsigned char *t, rnd[512];
	EVP_PKEY *got = NULL;
	size_t len;
	char *crlf, *p;
	size_t i, o;
	int idx[2] = { 0, 1 };

	tu_path(g, sizeof(g), fx->dir, "garbage.share");
	sel[0] = paths[0];
	sel[1] = g;
	/* Empty, random, another PEM, cut short, text after END. */
	tu_write_file(g, "", 0, 0600);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), CK_E_PARSE);
	assert_contains(ck_err_msg(), g);
	assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
	tu_write_file(g, rnd, sizeof(rnd), 0600);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), CK_E_PARSE);
	assert_contains(ck_err_msg(), "not a certkeep key share");
	p = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	tu_write_file(g, p, strlen(p), 0600);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), CK_E_PARSE);
	t = tu_read_file(paths[1], &len);
	tu_write_file(g, t, len / 2, 0600);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), CK_E_PARSE);
	assert_contains(ck_err_msg(), "unexpected end of file");
	tu_write_file(g, t, len, 0600);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), 0);
	EVP_PKEY_free(got);
	got = NULL;
	p = malloc(len + 8);
	assert_non_null(p);
	memcpy(p, t, len);
	memcpy(p + len, "junk\n", 5);
	tu_write_file(g, p, len + 5, 0600);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), CK_E_PARSE);
	assert_contains(ck_err_msg(), "text after the END line");
	/* A file that went through an editor with CR LF still reads. */
	crlf = malloc(2 * len);
	assert_non_null(crlf);
	for (i = 0, o = 0; i < len; i++) {
		if (t[i] == '\n')
			crlf[o++] = '\r';
		crlf[o++] = (char)t[i];
	}
	tu_write_file(g, crlf, o, 0600);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), 0);
	assert_same_key(got, k);
	EVP_PKEY_free(got);
	got = NULL;
	/* No files at all; a missing file. */
	assert_int_equal(ck_keybackup_join(sel, 0, &got), CK_E_INVAL);
	(void)unlink(g);
	assert_int_equal(ck_keybackup_join(sel, 2, &got), CK_E_NOTFOUND);
	join_expect(paths, idx, 2, 0, NULL, k);
	free(crlf);
	free(p);
	free(t);
	free_paths(paths, 3);
	EVP_PKEY_free(k);
}

static void
test_shares_refusals(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	const char *bad[][3] = {
		{ "alice", "bob", "al ice" },
		{ "alice", "bob", "../x" },
		{ "alice", "bob", "" },
		{ "alice", "bob", "-rf" },
		{ "alice", "bob", "Alice" },
	};
	char **paths = NULL, open_dir[4300], name[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ck_keybackup_split(k, 2, 3, bad[i], fx->sdir,
		    LABEL, &paths), CK_E_INVAL);
		assert_null(paths);
	}
	assert_int_equal(ck_keybackup_split(k, 2, 3, cust5, fx->sdir,
	    "bad label", &paths), CK_E_INVAL);
	assert_int_equal(ck_keybackup_split(k, 1, 3, cust5, fx->sdir, LABEL,
	    &paths), CK_E_INVAL);
	assert_int_equal(ck_keybackup_split(k, 4, 3, cust5, fx->sdir, LABEL,
	    &paths), CK_E_INVAL);
	assert_int_equal(access(fx->sdir, F_OK), -1);	/* nothing made */
	/* A directory others can read. */
	tu_path(open_dir, sizeof(open_dir), fx->dir, "open");
	assert_int_equal(mkdir(open_dir, 0755), 0);
	assert_int_equal(chmod(open_dir, 0755), 0);
	assert_int_equal(ck_keybackup_split(k, 2, 3, cust5, open_dir, LABEL,
	    &paths), CK_E_PERM);
	/* One share file already there: nothing is written. */
	paths = split_into(fx->sdir, k, 2, 3);
	assert_int_equal(unlink(paths[0]), 0);
	assert_int_equal(unlink(paths[2]), 0);
	snprintf(name, sizeof(name), "%s", paths[0]);
	free_paths(paths, 3);
	paths = NULL;
	assert_int_equal(ck_keybackup_split(k, 2, 3, cust5, fx->sdir, LABEL,
	    &paths), CK_E_EXISTS);
	assert_null(paths);
	assert_int_equal(access(name, F_OK), -1);
	EVP_PKEY_free(k);
}

static void
test_fingerprint(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *der = NULL, md[32];
	char fp[65], want[65];
	int len, i;

	(void)state;
	assert_int_equal(ck_key_fingerprint(k, fp), 0);
	len = i2d_PUBKEY(k, &der);
	assert_true(len > 0);
	SHA256(der, (size_t)len, md);
	for (i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(fp, want);
	OPENSSL_free(der);
	assert_true(ck_keybackup_name_ok("alice.b-c_d"));
	assert_false(ck_keybackup_name_ok("a/b"));
	assert_false(ck_keybackup_name_ok(".hidden"));
	assert_false(ck_keybackup_name_ok(
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "4"));
	EVP_PKEY_free(k);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_fingerprint),
		T(test_shamir_known_answer),
		T(test_shamir_subsets),
		T(test_shamir_sizes),
		T(test_shamir_refusals),
		T(test_pass_round_trip),
		T(test_pass_wrong_passphrase),
		T(test_pass_refusals),
		T(test_pass_pbkdf2_refused),
		T(test_pass_cost_limits),
		T(test_pass_openssl_opens_log2n_14),
		T(test_pass_default_cost),
		T(test_shares_every_subset),
		T(test_shares_key_types),
		T(test_shares_file_format),
		T(test_shares_altered),
		T(test_shares_forged),
		T(test_shares_mixed_sets),
		T(test_shares_garbage),
		T(test_shares_refusals),
	};
#undef T
	int r;

	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_keys_free();
	return r;
}
