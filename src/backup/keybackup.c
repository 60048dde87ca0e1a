#include "backup/keybackup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"

/* Largest backup or share file read. */
#define KB_FILE_MAX (64u * 1024)
/* Largest PKCS#8 DER of a key (RSA 8192 needs about 4.8 KiB). */
#define KB_KEY_DER_MAX (16u * 1024)

#define KB_SCRYPT_R 8
#define KB_SCRYPT_P 1
#define KB_SALT_LEN 16
#define KB_CBC_IV_LEN 16
#define KB_AES_KEY_LEN 32
/* Reading: scrypt may use at most 2 GiB (twice the default) and
 * N * r * p at most 2^26 (8 times the default's work). */
#define KB_SCRYPT_READ_MEM (2ull * 1024 * 1024 * 1024)
#define KB_SCRYPT_READ_WORK (1ull << 26)

/* Shares */
#define KS_K_LEN 32
#define KS_SET_LEN 16
#define KS_FP_LEN 32
#define KS_IV_LEN 12
#define KS_TAG_LEN 16
#define KS_MAGIC "CKS1"
/* Format 1: key backup shares (no purpose field, as certkeep always wrote
 * them); format 2: a purpose byte after N, a "Purpose:" header line, and
 * the purpose in the AAD, so a share of one kind cannot pass as another. */
#define KS_VERSION 1
#define KS_VERSION_PURPOSE 2
#define KS_AAD_LEN (KS_SET_LEN + KS_FP_LEN + 2 + 1)
/* magic, version, x, m, n, [purpose,] set, fp, created, 2 names with
 * their length, iv, tag, share, wrapped length, wrapped key, checksum */
#define KS_BODY_MAX (4 + 4 + 1 + KS_SET_LEN + KS_FP_LEN + 8 + \
	2 * (1 + CK_KEYBACKUP_NAME_MAX) + KS_IV_LEN + KS_TAG_LEN + KS_K_LEN + \
	2 + KB_KEY_DER_MAX + 32)
#define KS_B64_MAX (4 * ((KS_BODY_MAX + 2) / 3))
#define KS_B64_LINE 64
#define KS_LINE_MAX 128
#define KS_BEGIN "-----BEGIN CERTKEEP KEY SHARE-----"
#define KS_END "-----END CERTKEEP KEY SHARE-----"
/* Years 1970..9999: what the Created: line can show. */
#define KS_TIME_MAX 253402300799ll
/* Trying other subsets of the shares to find an altered one. */
#define KS_SUBSET_TRIES 4096

struct ck_keyshare {
	enum ck_share_purpose purpose;
	char custodian[CK_KEYBACKUP_NAME_MAX + 1];
	char label[CK_KEYBACKUP_NAME_MAX + 1];
	unsigned char set[KS_SET_LEN];
	unsigned char fp[KS_FP_LEN];
	int64_t created;
	unsigned x, m, n;
	unsigned char iv[KS_IV_LEN];
	unsigned char tag[KS_TAG_LEN];
	unsigned char y[KS_K_LEN];	/* this share of K */
	unsigned char *wrapped;
	size_t wrapped_len;
};

/* ------------------------------------------------------------------ */
/* Helpers */

int
ck_key_fingerprint(EVP_PKEY *key, char hex[65])
{
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = sizeof(md);
	int len, ok;

	if (key == NULL)
		return ck_err_set(CK_E_INVAL, "no key to fingerprint");
	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return ck_err_ssl(CK_E_CRYPTO, "encoding the public key");
	ok = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (!ok)
		return ck_err_ssl(CK_E_CRYPTO, "hashing the public key");
	ck_hex_encode(md, sizeof(md), hex);
	return 0;
}

static int
fingerprint_raw(EVP_PKEY *key, unsigned char fp[KS_FP_LEN])
{
	unsigned char *der = NULL;
	unsigned int mdlen = KS_FP_LEN;
	int len, ok;

	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return ck_err_ssl(CK_E_CRYPTO, "encoding the public key");
	ok = EVP_Digest(der, (size_t)len, fp, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok ? 0 : ck_err_ssl(CK_E_CRYPTO, "hashing the public key");
}

static int
name_char_ok(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* The characters of a name, LEN bytes that need not be NUL-terminated. */
static int
name_ok_n(const char *s, size_t len)
{
	size_t i;

	if (len < 1 || len > CK_KEYBACKUP_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!name_char_ok((unsigned char)s[i]))
			return 0;
	/* "." and ".." would be odd in a file name; a leading '-' reads as
	 * an option on a command line. */
	if (s[0] == '.' || s[0] == '-')
		return 0;
	return 1;
}

int
ck_keybackup_name_ok(const char *name)
{
	return name != NULL && name_ok_n(name, strnlen(name,
	    CK_KEYBACKUP_NAME_MAX + 1));
}

/* The key's PKCS#8 PrivateKeyInfo DER, in a new secret. */
static int
key_to_der(EVP_PKEY *key, struct ck_secret **out)
{
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	struct ck_secret *s = NULL;
	unsigned char *p;
	int len, r = CK_E_CRYPTO;

	if ((p8 = EVP_PKEY2PKCS8(key)) == NULL ||
	    (len = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the key as PKCS#8");
		goto out;
	}
	if ((size_t)len > KB_KEY_DER_MAX) {
		r = ck_err_set(CK_E_TOOBIG, "the key is too large (%d bytes "
		    "of PKCS#8)", len);
		goto out;
	}
	if ((s = ck_secret_new((size_t)len)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	p = s->buf;
	if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != len) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the key as PKCS#8");
		goto out;
	}
	s->len = (size_t)len;
	*out = s;
	s = NULL;
	r = 0;
out:
	ck_secret_free(s);
	PKCS8_PRIV_KEY_INFO_free(p8);	/* cleanses */
	return r;
}

/* A key from PKCS#8 DER that must fill LEN exactly. */
static int
key_from_der(const unsigned char *der, size_t len, EVP_PKEY **out)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8;
	EVP_PKEY *k = NULL;

	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
	if (p8 != NULL && p == der + len)
		k = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);	/* cleanses */
	ERR_clear_error();
	if (k == NULL)
		return CK_E_PARSE;
	*out = k;
	return 0;
}

/* Bytes scrypt needs for these parameters (as OpenSSL counts them). */
static uint64_t
scrypt_mem(uint64_t n, uint64_t r, uint64_t p)
{
	return 128 * r * (n + 2) + 128 * r * p;
}

static int
scrypt_derive(const struct ck_secret *pass, const unsigned char *salt,
    size_t saltlen, uint64_t n, uint64_t r, uint64_t p, unsigned char *key)
{
	/* The explicit limit is what lets 1 GiB through (OpenSSL's default
	 * is 32 MiB); 1 MiB over the exact need for OpenSSL's rounding. */
	if (EVP_PBE_scrypt((const char *)pass->buf, pass->len, salt, saltlen,
	    n, r, p, scrypt_mem(n, r, p) + (1u << 20), key,
	    KB_AES_KEY_LEN) != 1)
		return ck_err_ssl(CK_E_CRYPTO, "scrypt failed (out of "
		    "memory?)");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Passphrase form */

/*
 * Fill ALG with the AlgorithmIdentifier PKCS8_encrypt would write: PBES2,
 * scrypt (salt, N, r, p; no key length), AES-256-CBC with IV. Built by
 * hand because PKCS5_pbe2_set_scrypt() checks the parameters against
 * OpenSSL's 32 MiB default and refuses N = 2^20, r = 8.
 */
static int
pbes2_scrypt_algor(X509_ALGOR *alg, const unsigned char *salt,
    size_t saltlen, const unsigned char iv[KB_CBC_IV_LEN], uint64_t n)
{
	SCRYPT_PARAMS *sp = NULL;
	PBE2PARAM *pbe2 = NULL;
	ASN1_OCTET_STRING *ivs = NULL;
	ASN1_STRING *seq = NULL;
	int r = CK_E_CRYPTO;

	if ((sp = SCRYPT_PARAMS_new()) == NULL ||
	    (pbe2 = PBE2PARAM_new()) == NULL ||
	    (ivs = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(sp->salt, salt, (int)saltlen) ||
	    !ASN1_INTEGER_set_uint64(sp->costParameter, n) ||
	    !ASN1_INTEGER_set_uint64(sp->blockSize, KB_SCRYPT_R) ||
	    !ASN1_INTEGER_set_uint64(sp->parallelizationParameter,
	    KB_SCRYPT_P) ||
	    ASN1_item_pack(sp, ASN1_ITEM_rptr(SCRYPT_PARAMS), &seq) == NULL ||
	    !X509_ALGOR_set0(pbe2->keyfunc, OBJ_nid2obj(NID_id_scrypt),
	    V_ASN1_SEQUENCE, seq))
		goto out;
	seq = NULL;
	if (!ASN1_OCTET_STRING_set(ivs, iv, KB_CBC_IV_LEN) ||
	    !X509_ALGOR_set0(pbe2->encryption, OBJ_nid2obj(NID_aes_256_cbc),
	    V_ASN1_OCTET_STRING, ivs))
		goto out;
	ivs = NULL;
	if (ASN1_item_pack(pbe2, ASN1_ITEM_rptr(PBE2PARAM), &seq) == NULL ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_pbes2), V_ASN1_SEQUENCE,
	    seq))
		goto out;
	seq = NULL;
	r = 0;
out:
	if (r != 0)
		ck_err_ssl(r, "encoding the PBES2 parameters");
	ASN1_STRING_free(seq);
	ASN1_OCTET_STRING_free(ivs);
	PBE2PARAM_free(pbe2);
	SCRYPT_PARAMS_free(sp);
	return r;
}

int
ck_keybackup_write_pass(const char *path, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n)
{
	struct ck_secret *der = NULL, *dk = NULL;
	unsigned char salt[KB_SALT_LEN], iv[KB_CBC_IV_LEN];
	unsigned char *ct = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *digest;
	X509_SIG *sig = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	uint64_t n;
	int ctlen = 0, fl = 0, r;

	if (path == NULL || key == NULL || pass == NULL)
		return ck_err_set(CK_E_INVAL, "key backup: missing argument");
	if (log2n == 0)
		log2n = CK_KEYBACKUP_SCRYPT_LOG2N;
	if (log2n < CK_KEYBACKUP_LOG2N_MIN || log2n > CK_KEYBACKUP_LOG2N_MAX)
		return ck_err_set(CK_E_INVAL, "scrypt log2(N) must be %d..%d, "
		    "not %d", CK_KEYBACKUP_LOG2N_MIN, CK_KEYBACKUP_LOG2N_MAX,
		    log2n);
	if (pass->len < CK_KEYBACKUP_PASS_MIN)
		return ck_err_set(CK_E_PASSPHRASE, "backup passphrase too "
		    "short: at least %d characters", CK_KEYBACKUP_PASS_MIN);
	/* Before the expensive part; the exclusive create decides. */
	if (ck_fs_exists(path))
		return ck_err_set(CK_E_EXISTS, "%s already exists; not "
		    "overwriting it", path);
	n = (uint64_t)1 << log2n;
	if ((r = key_to_der(key, &der)) != 0)
		goto out;
	if ((dk = ck_secret_new(KB_AES_KEY_LEN)) == NULL ||
	    (ct = malloc(der->len + KB_CBC_IV_LEN)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    RAND_bytes(iv, sizeof(iv)) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "no random bytes");
		goto out;
	}
	if ((r = scrypt_derive(pass, salt, sizeof(salt), n, KB_SCRYPT_R,
	    KB_SCRYPT_P, dk->buf)) != 0)
		goto out;
	r = CK_E_CRYPTO;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, dk->buf,
	    iv) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &ctlen, der->buf, (int)der->len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + ctlen, &fl) != 1)
		goto out;
	ctlen += fl;
	if ((sig = X509_SIG_new()) == NULL)
		goto out;
	X509_SIG_getm(sig, &alg, &digest);
	if ((r = pbes2_scrypt_algor(alg, salt, sizeof(salt), iv, n)) != 0)
		goto out;
	r = CK_E_CRYPTO;
	if (ASN1_OCTET_STRING_set(digest, ct, ctlen) != 1)
		goto out;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PKCS8(bio, sig))
		goto out;
	BIO_get_mem_ptr(bio, &bm);
	r = ck_fs_write_new(path, bm->data, bm->length, 0600);
out:
	if (r == CK_E_CRYPTO)
		ck_err_ssl(r, "cannot encrypt the key backup");
	BIO_free(bio);
	X509_SIG_free(sig);
	EVP_CIPHER_CTX_free(ctx);
	free(ct);
	ck_secret_free(dk);
	ck_secret_free(der);
	return r;
}

static int
asn1_u64(const ASN1_INTEGER *a, uint64_t *v)
{
	return a != NULL && ASN1_INTEGER_get_uint64(v, a) == 1;
}

/* Check PBES2/scrypt/AES-256-CBC parameters and pull them out. */
static int
pbes2_scrypt_params(const X509_ALGOR *alg, const char *path,
    unsigned char *salt, size_t *saltlen, unsigned char iv[KB_CBC_IV_LEN],
    uint64_t *n, uint64_t *rr, uint64_t *p)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	const ASN1_STRING *ivs;
	PBE2PARAM *pbe2 = NULL;
	SCRYPT_PARAMS *sp = NULL;
	uint64_t kl;
	int ptype, r = CK_E_PARSE;

	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_pbes2 || ptype != V_ASN1_SEQUENCE ||
	    (pbe2 = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBE2PARAM))) ==
	    NULL) {
		r = ck_err_set(CK_E_PARSE, "%s is not a certkeep key backup: "
		    "not encrypted with PBES2", path);
		goto out;
	}
	X509_ALGOR_get0(&obj, &ptype, &pval, pbe2->keyfunc);
	if (OBJ_obj2nid(obj) != NID_id_scrypt || ptype != V_ASN1_SEQUENCE ||
	    (sp = ASN1_item_unpack(pval, ASN1_ITEM_rptr(SCRYPT_PARAMS))) ==
	    NULL) {
		r = ck_err_set(CK_E_PARSE, "%s is not a certkeep key backup: "
		    "its key derivation is not scrypt", path);
		goto out;
	}
	X509_ALGOR_get0(&obj, &ptype, &pval, pbe2->encryption);
	ivs = pval;
	if (OBJ_obj2nid(obj) != NID_aes_256_cbc ||
	    ptype != V_ASN1_OCTET_STRING ||
	    ASN1_STRING_length(ivs) != KB_CBC_IV_LEN) {
		r = ck_err_set(CK_E_PARSE, "%s is not a certkeep key backup: "
		    "its cipher is not AES-256-CBC", path);
		goto out;
	}
	memcpy(iv, ASN1_STRING_get0_data(ivs), KB_CBC_IV_LEN);
	if (ASN1_STRING_length(sp->salt) < 1 ||
	    ASN1_STRING_length(sp->salt) > 64 ||
	    !asn1_u64(sp->costParameter, n) || !asn1_u64(sp->blockSize, rr) ||
	    !asn1_u64(sp->parallelizationParameter, p) ||
	    (sp->keyLength != NULL && (!asn1_u64(sp->keyLength, &kl) ||
	    kl != KB_AES_KEY_LEN))) {
		r = ck_err_set(CK_E_PARSE, "%s: bad scrypt parameters", path);
		goto out;
	}
	*saltlen = (size_t)ASN1_STRING_length(sp->salt);
	memcpy(salt, ASN1_STRING_get0_data(sp->salt), *saltlen);
	if (*n < 2 || (*n & (*n - 1)) != 0 || *rr < 1 || *rr > 32 || *p < 1 ||
	    *p > 16 || *n > ((uint64_t)1 << CK_KEYBACKUP_LOG2N_MAX)) {
		r = ck_err_set(CK_E_PARSE, "%s: bad scrypt parameters (N=%llu "
		    "r=%llu p=%llu)", path, (unsigned long long)*n,
		    (unsigned long long)*rr, (unsigned long long)*p);
		goto out;
	}
	if (scrypt_mem(*n, *rr, *p) > KB_SCRYPT_READ_MEM ||
	    *n * *rr * *p > KB_SCRYPT_READ_WORK) {
		r = ck_err_set(CK_E_TOOBIG, "%s asks for more scrypt work than "
		    "certkeep allows (N=%llu r=%llu p=%llu)", path,
		    (unsigned long long)*n, (unsigned long long)*rr,
		    (unsigned long long)*p);
		goto out;
	}
	r = 0;
out:
	SCRYPT_PARAMS_free(sp);
	PBE2PARAM_free(pbe2);
	ERR_clear_error();
	return r;
}

int
ck_keybackup_read_pass(const char *path, const struct ck_secret *pass,
    EVP_PKEY **out)
{
	unsigned char *buf = NULL, salt[64], iv[KB_CBC_IV_LEN];
	struct ck_secret *dk = NULL, *der = NULL;
	const X509_ALGOR *alg;
	const ASN1_OCTET_STRING *digest;
	EVP_CIPHER_CTX *ctx = NULL;
	X509_SIG *sig = NULL;
	BIO *bio = NULL;
	size_t len = 0, saltlen = 0, ctlen;
	uint64_t n, rr, p;
	int outl = 0, fl = 0, r;

	if (path == NULL || pass == NULL || out == NULL)
		return ck_err_set(CK_E_INVAL, "key backup: missing argument");
	if ((r = ck_fs_read(path, KB_FILE_MAX, &buf, &len)) != 0)
		return r;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((sig = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PARSE, "%s is not a key backup: no "
		    "ENCRYPTED PRIVATE KEY (PKCS#8) in it", path);
		goto out;
	}
	X509_SIG_get0(sig, &alg, &digest);
	if ((r = pbes2_scrypt_params(alg, path, salt, &saltlen, iv, &n, &rr,
	    &p)) != 0)
		goto out;
	ctlen = (size_t)ASN1_STRING_length(digest);
	if (ctlen == 0 || ctlen % KB_CBC_IV_LEN != 0 ||
	    ctlen > KB_KEY_DER_MAX + KB_CBC_IV_LEN) {
		r = ck_err_set(CK_E_PARSE, "%s: the encrypted key has a bad "
		    "length (%zu bytes)", path, ctlen);
		goto out;
	}
	if ((dk = ck_secret_new(KB_AES_KEY_LEN)) == NULL ||
	    (der = ck_secret_new(ctlen + KB_CBC_IV_LEN)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((r = scrypt_derive(pass, salt, saltlen, n, rr, p, dk->buf)) != 0)
		goto out;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, dk->buf,
	    iv) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "cannot decrypt the key backup");
		goto out;
	}
	/* A wrong passphrase shows as bad padding or, 1 time in 256, as
	 * DER that does not parse: the same message for both. */
	if (EVP_DecryptUpdate(ctx, der->buf, &outl,
	    ASN1_STRING_get0_data(digest), (int)ctlen) != 1 ||
	    EVP_DecryptFinal_ex(ctx, der->buf + outl, &fl) != 1 ||
	    key_from_der(der->buf, (size_t)(outl + fl), out) != 0) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PASSPHRASE, "cannot decrypt %s: wrong "
		    "passphrase (or the backup is damaged)", path);
		goto out;
	}
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	ck_secret_free(der);
	ck_secret_free(dk);
	X509_SIG_free(sig);
	BIO_free(bio);
	free(buf);
	return r;
}

/* ------------------------------------------------------------------ */
/*
 * Shamir over GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1.
 * Multiplication is shift-and-add with masks instead of branches or
 * log/exp tables, so neither its timing nor its memory accesses depend on
 * the secret bytes; inversion is a fixed chain of multiplications
 * (a^254). The loops over shares and bytes depend only on public sizes.
 */

static uint8_t
gf_mul(uint8_t a, uint8_t b)
{
	unsigned r = 0, aa = a, bb = b;
	int i;

	for (i = 0; i < 8; i++) {
		r ^= aa & (0u - (bb & 1u));
		bb >>= 1;
		aa = (aa << 1) ^ (0x11bu & (0u - (aa >> 7)));
	}
	return (uint8_t)r;
}

static uint8_t
gf_inv(uint8_t a)
{
	uint8_t r = 1, s = a;
	int i;

	for (i = 1; i < 8; i++) {
		s = gf_mul(s, s);	/* a^(2^i) */
		r = gf_mul(r, s);
	}
	return r;			/* a^254; 0 for 0 */
}

int
ck_shamir_split(const unsigned char *secret, size_t len, int m, int n,
    unsigned char **shares)
{
	unsigned char coef[CK_KEYBACKUP_MAX_SHARES];
	size_t b;
	int i, k;
	uint8_t x, y;

	if (secret == NULL || shares == NULL || len == 0)
		return ck_err_set(CK_E_INVAL, "shamir: nothing to split");
	if (m < 2 || n < m || n > CK_KEYBACKUP_MAX_SHARES)
		return ck_err_set(CK_E_INVAL, "shamir: need 2 <= M <= N <= %d "
		    "(M=%d, N=%d)", CK_KEYBACKUP_MAX_SHARES, m, n);
	for (i = 0; i < n; i++)
		if (shares[i] == NULL)
			return ck_err_set(CK_E_INVAL, "shamir: no buffer for "
			    "share %d", i + 1);
	for (b = 0; b < len; b++) {
		/* coef[0] is the secret byte, coef[1..m-1] random. */
		coef[0] = secret[b];
		if (RAND_priv_bytes(coef + 1, m - 1) != 1) {
			ck_wipe(coef, sizeof(coef));
			return ck_err_ssl(CK_E_CRYPTO, "no random bytes");
		}
		for (i = 0; i < n; i++) {
			x = (uint8_t)(i + 1);
			y = coef[m - 1];
			for (k = m - 2; k >= 0; k--)
				y = gf_mul(y, x) ^ coef[k];
			shares[i][b] = y;
		}
	}
	ck_wipe(coef, sizeof(coef));
	return 0;
}

/* The polynomial through the M points, evaluated at AT (0: the secret). */
static int
shamir_eval(const unsigned char *const *shares, const unsigned char *xs,
    int m, size_t len, uint8_t at, unsigned char *out)
{
	uint8_t l[CK_KEYBACKUP_MAX_SHARES], num, den, acc;
	size_t b;
	int j, k;

	if (shares == NULL || xs == NULL || out == NULL || len == 0)
		return ck_err_set(CK_E_INVAL, "shamir: nothing to join");
	if (m < 1 || m > CK_KEYBACKUP_MAX_SHARES)
		return ck_err_set(CK_E_INVAL, "shamir: %d shares", m);
	for (j = 0; j < m; j++) {
		if (xs[j] == 0 || shares[j] == NULL)
			return ck_err_set(CK_E_INVAL, "shamir: share %d has "
			    "x = 0 or no data", j + 1);
		for (k = 0; k < j; k++)
			if (xs[k] == xs[j])
				return ck_err_set(CK_E_INVAL, "shamir: x = %u "
				    "given twice", xs[j]);
	}
	/* Lagrange basis at AT: l_j = prod (at - x_k) / (x_j - x_k);
	 * subtraction is XOR. These depend only on the public x values. */
	for (j = 0; j < m; j++) {
		num = 1;
		den = 1;
		for (k = 0; k < m; k++) {
			if (k == j)
				continue;
			num = gf_mul(num, at ^ xs[k]);
			den = gf_mul(den, xs[j] ^ xs[k]);
		}
		l[j] = gf_mul(num, gf_inv(den));
	}
	for (b = 0; b < len; b++) {
		acc = 0;
		for (j = 0; j < m; j++)
			acc ^= gf_mul(l[j], shares[j][b]);
		out[b] = acc;
	}
	return 0;
}

int
ck_shamir_join(const unsigned char *const *shares, const unsigned char *xs,
    int m, size_t len, unsigned char *secret)
{
	return shamir_eval(shares, xs, m, len, 0, secret);
}

/* ------------------------------------------------------------------ */
/* AES-256-GCM key wrapping */

/* The AAD; its length (format 1 has no purpose byte). */
static int
ks_aad(const struct ck_keyshare *s, unsigned char aad[KS_AAD_LEN])
{
	memcpy(aad, s->set, KS_SET_LEN);
	memcpy(aad + KS_SET_LEN, s->fp, KS_FP_LEN);
	aad[KS_SET_LEN + KS_FP_LEN] = (unsigned char)s->m;
	aad[KS_SET_LEN + KS_FP_LEN + 1] = (unsigned char)s->n;
	if (s->purpose == CK_SHARE_KEY_BACKUP)
		return KS_AAD_LEN - 1;
	aad[KS_SET_LEN + KS_FP_LEN + 2] = (unsigned char)s->purpose;
	return KS_AAD_LEN;
}

static int
gcm_wrap(const unsigned char *k, struct ck_keyshare *s,
    const struct ck_secret *der)
{
	unsigned char aad[KS_AAD_LEN];
	EVP_CIPHER_CTX *ctx;
	int outl = 0, fl = 0, ok, al;

	al = ks_aad(s, aad);
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return CK_E_NOMEM;
	ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KS_IV_LEN,
	    NULL) &&
	    EVP_EncryptInit_ex(ctx, NULL, NULL, k, s->iv) &&
	    EVP_EncryptUpdate(ctx, NULL, &outl, aad, al) &&
	    EVP_EncryptUpdate(ctx, s->wrapped, &outl, der->buf,
	    (int)der->len) &&
	    EVP_EncryptFinal_ex(ctx, s->wrapped + outl, &fl) &&
	    (size_t)(outl + fl) == der->len &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KS_TAG_LEN,
	    s->tag);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : ck_err_ssl(CK_E_CRYPTO, "wrapping the key");
}

/* Unwrap into a new secret; CK_E_TAMPER if the tag does not verify. */
static int
gcm_unwrap(const unsigned char *k, const struct ck_keyshare *s,
    struct ck_secret **out)
{
	unsigned char aad[KS_AAD_LEN], tag[KS_TAG_LEN];
	struct ck_secret *der;
	EVP_CIPHER_CTX *ctx;
	int outl = 0, fl = 0, r = CK_E_CRYPTO, al;

	al = ks_aad(s, aad);
	memcpy(tag, s->tag, sizeof(tag));
	if ((der = ck_secret_new(s->wrapped_len)) == NULL)
		return CK_E_NOMEM;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL) {
		ck_secret_free(der);
		return CK_E_NOMEM;
	}
	if (!EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KS_IV_LEN,
	    NULL) ||
	    !EVP_DecryptInit_ex(ctx, NULL, NULL, k, s->iv) ||
	    !EVP_DecryptUpdate(ctx, NULL, &outl, aad, al) ||
	    !EVP_DecryptUpdate(ctx, der->buf, &outl, s->wrapped,
	    (int)s->wrapped_len) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KS_TAG_LEN, tag))
		goto out;
	if (EVP_DecryptFinal_ex(ctx, der->buf + outl, &fl) <= 0) {
		r = CK_E_TAMPER;
		goto out;
	}
	der->len = (size_t)(outl + fl);
	*out = der;
	der = NULL;
	r = 0;
out:
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx);
	ck_secret_free(der);
	return r;
}

/* ------------------------------------------------------------------ */
/* Share files: encoding */

void
ck_keyshare_free(struct ck_keyshare *s)
{
	if (s == NULL)
		return;
	free(s->wrapped);
	ck_wipe(s, sizeof(*s));
	free(s);
}

static void
put_u16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* The binary body (with its checksum) into BUF of KS_BODY_MAX bytes. */
static size_t
ks_body(const struct ck_keyshare *s, unsigned char *buf)
{
	unsigned int mdlen = 32;
	size_t o = 0, cl = strlen(s->custodian), ll = strlen(s->label);

	memcpy(buf, KS_MAGIC, 4);
	o = 4;
	buf[o++] = s->purpose == CK_SHARE_KEY_BACKUP ? KS_VERSION :
	    KS_VERSION_PURPOSE;
	buf[o++] = (unsigned char)s->x;
	buf[o++] = (unsigned char)s->m;
	buf[o++] = (unsigned char)s->n;
	if (s->purpose != CK_SHARE_KEY_BACKUP)
		buf[o++] = (unsigned char)s->purpose;
	memcpy(buf + o, s->set, KS_SET_LEN);
	o += KS_SET_LEN;
	memcpy(buf + o, s->fp, KS_FP_LEN);
	o += KS_FP_LEN;
	put_u64(buf + o, (uint64_t)s->created);
	o += 8;
	buf[o++] = (unsigned char)cl;
	memcpy(buf + o, s->custodian, cl);
	o += cl;
	buf[o++] = (unsigned char)ll;
	memcpy(buf + o, s->label, ll);
	o += ll;
	memcpy(buf + o, s->iv, KS_IV_LEN);
	o += KS_IV_LEN;
	memcpy(buf + o, s->tag, KS_TAG_LEN);
	o += KS_TAG_LEN;
	memcpy(buf + o, s->y, KS_K_LEN);
	o += KS_K_LEN;
	put_u16(buf + o, (unsigned)s->wrapped_len);
	o += 2;
	memcpy(buf + o, s->wrapped, s->wrapped_len);
	o += s->wrapped_len;
	(void)EVP_Digest(buf, o, buf + o, &mdlen, EVP_sha256(), NULL);
	return o + 32;
}

int
ck_keyshare_encode(const struct ck_keyshare *s, char **out, size_t *outlen)
{
	unsigned char *body = NULL, *b64 = NULL;
	char fphex[2 * KS_FP_LEN + 1], sethex[2 * KS_SET_LEN + 1], created[32];
	char *text = NULL;
	size_t blen = 0, elen, cap, o, i, chunk;
	int r = CK_E_NOMEM, hl;

	if (s == NULL || s->wrapped_len == 0 || s->x < 1 || s->x > s->n ||
	    s->n > CK_KEYBACKUP_MAX_SHARES || s->m < 2 || s->m > s->n ||
	    s->wrapped_len > KB_KEY_DER_MAX || s->created < 0 ||
	    (unsigned)s->purpose >= CK_SHARE__MAX ||
	    s->created > KS_TIME_MAX ||
	    !ck_keybackup_name_ok(s->custodian) ||
	    !ck_keybackup_name_ok(s->label))
		return ck_err_set(CK_E_INVAL, "key share: bad fields");
	if ((body = malloc(KS_BODY_MAX)) == NULL ||
	    (b64 = malloc(KS_B64_MAX + 1)) == NULL)
		goto out;
	blen = ks_body(s, body);
	elen = (size_t)EVP_EncodeBlock(b64, body, (int)blen);
	ck_hex_encode(s->fp, KS_FP_LEN, fphex);
	ck_hex_encode(s->set, KS_SET_LEN, sethex);
	ck_time_format(s->created, created, sizeof(created));
	cap = 1024 + elen + elen / KS_B64_LINE + 1;
	if ((text = malloc(cap)) == NULL)
		goto out;
	hl = snprintf(text, cap, "%s\n"
	    "Custodian: %s\n"
	    "CA: %s\n"
	    "Key-Fingerprint: %s\n"
	    "Set: %s\n"
	    "Share: %u of %u\n"
	    "Threshold: %u\n"
	    "Created: %s\n"
	    "%s%s%s"
	    "\n", KS_BEGIN, s->custodian, s->label, fphex, sethex, s->x, s->n,
	    s->m, created, s->purpose == CK_SHARE_KEY_BACKUP ? "" :
	    "Purpose: ", s->purpose == CK_SHARE_KEY_BACKUP ? "" :
	    ck_share_purpose_name(s->purpose), s->purpose ==
	    CK_SHARE_KEY_BACKUP ? "" : "\n");
	if (hl < 0 || (size_t)hl >= cap) {
		r = CK_E_INTERNAL;
		goto out;
	}
	o = (size_t)hl;
	for (i = 0; i < elen; i += chunk) {
		chunk = elen - i < KS_B64_LINE ? elen - i : KS_B64_LINE;
		memcpy(text + o, b64 + i, chunk);
		o += chunk;
		text[o++] = '\n';
	}
	hl = snprintf(text + o, cap - o, "%s\n", KS_END);
	if (hl < 0 || (size_t)hl >= cap - o) {
		r = CK_E_INTERNAL;
		goto out;
	}
	o += (size_t)hl;
	*out = text;
	*outlen = o;
	text = NULL;
	r = 0;
out:
	if (text != NULL) {
		ck_wipe(text, cap);
		free(text);
	}
	if (b64 != NULL) {
		ck_wipe(b64, KS_B64_MAX + 1);
		free(b64);
	}
	if (body != NULL) {
		ck_wipe(body, KS_BODY_MAX);
		free(body);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Share files: strict parsing of untrusted text */

struct ks_cursor {
	const unsigned char *buf;
	size_t len, pos;
	unsigned line;
};

/* Next line (without "\n" or "\r\n"); CK_E_PARSE at the end of input,
 * on a line over KS_LINE_MAX or one holding a NUL or a lone CR. */
static int
ks_line(struct ks_cursor *c, const char **l, size_t *ll)
{
	const unsigned char *p, *nl;
	size_t rest, n, i;

	if (c->pos >= c->len)
		return ck_err_set(CK_E_PARSE, "line %u: unexpected end of "
		    "file", c->line + 1);
	c->line++;
	p = c->buf + c->pos;
	rest = c->len - c->pos;
	nl = memchr(p, '\n', rest < KS_LINE_MAX + 2 ? rest : KS_LINE_MAX + 2);
	if (nl == NULL && rest > KS_LINE_MAX + 1)
		return ck_err_set(CK_E_PARSE, "line %u: too long", c->line);
	n = nl != NULL ? (size_t)(nl - p) : rest;
	c->pos += nl != NULL ? n + 1 : n;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n > KS_LINE_MAX)
		return ck_err_set(CK_E_PARSE, "line %u: too long", c->line);
	for (i = 0; i < n; i++)
		if (p[i] == '\0' || p[i] == '\r')
			return ck_err_set(CK_E_PARSE, "line %u: control "
			    "character", c->line);
	*l = (const char *)p;
	*ll = n;
	return 0;
}

/* A header line "Key: value"; VAL points into the line. */
static int
ks_field(struct ks_cursor *c, const char *key, const char **val,
    size_t *vl)
{
	const char *l;
	size_t ll, kl = strlen(key);
	int r;

	if ((r = ks_line(c, &l, &ll)) != 0)
		return r;
	if (ll < kl + 2 || memcmp(l, key, kl) != 0 || l[kl] != ':' ||
	    l[kl + 1] != ' ')
		return ck_err_set(CK_E_PARSE, "line %u: expected '%s: '",
		    c->line, key);
	*val = l + kl + 2;
	*vl = ll - kl - 2;
	return 0;
}

/* Decimal 1..255 without sign or leading zero. */
static int
ks_small_uint(const char *s, size_t len, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (len < 1 || len > 3 || s[0] == '0')
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > CK_KEYBACKUP_MAX_SHARES)
		return -1;
	*out = v;
	return 0;
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict base64: whole quanta, '=' only as final padding, unused bits
 * zero. OUT has room for 3 * len / 4 bytes. */
static int
ks_b64_decode(const unsigned char *in, size_t len, unsigned char *out,
    size_t *outlen)
{
	size_t i, o = 0, pad = 0;
	unsigned v;
	int k, d[4];

	if (len == 0 || len % 4 != 0)
		return -1;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len; i += 4) {
		for (k = 0; k < 4; k++) {
			if (i + (size_t)k >= len - pad)
				d[k] = 0;
			else if ((d[k] = b64val(in[i + (size_t)k])) < 0)
				return -1;
		}
		v = (unsigned)d[0] << 18 | (unsigned)d[1] << 12 |
		    (unsigned)d[2] << 6 | (unsigned)d[3];
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
		out[o++] = (unsigned char)v;
	}
	/* The padded positions: one '=' leaves 8 unused bits, two 16; and
	 * a byte of padding must be zero in what it stands for. */
	if (pad == 1 && (out[o - 1] != 0))
		return -1;
	if (pad == 2 && (out[o - 1] != 0 || out[o - 2] != 0))
		return -1;
	*outlen = o - pad;
	return 0;
}

struct ks_reader {
	const unsigned char *p;
	size_t len, pos;
};

static int
rd(struct ks_reader *r, void *dst, size_t n)
{
	if (n > r->len - r->pos)
		return -1;
	memcpy(dst, r->p + r->pos, n);
	r->pos += n;
	return 0;
}

static int
rd_name(struct ks_reader *r, char *dst)
{
	unsigned char l;

	if (rd(r, &l, 1) != 0 || l < 1 || l > CK_KEYBACKUP_NAME_MAX ||
	    rd(r, dst, l) != 0)
		return -1;
	dst[l] = '\0';
	return name_ok_n(dst, l) ? 0 : -1;
}

/* The body: checksum first, then every field. */
static int
ks_parse_body(const unsigned char *b, size_t blen, struct ck_keyshare *s,
    const char *who)
{
	struct ks_reader r = { b, 0, 0 };
	unsigned char md[32], hdr[8], w[2];
	unsigned int mdlen = sizeof(md);
	uint64_t t = 0;
	int i;

	if (blen < 32 + 4 || blen > KS_BODY_MAX)
		return ck_err_set(CK_E_PARSE, "%s is damaged: its data has a "
		    "bad length", who);
	r.len = blen - 32;
	if (!EVP_Digest(b, r.len, md, &mdlen, EVP_sha256(), NULL))
		return ck_err_ssl(CK_E_CRYPTO, "hashing a share");
	if (CRYPTO_memcmp(md, b + r.len, 32) != 0)
		return ck_err_set(CK_E_TAMPER, "%s is altered: checksum "
		    "mismatch", who);
	if (rd(&r, hdr, 8) != 0 || memcmp(hdr, KS_MAGIC, 4) != 0 ||
	    (hdr[4] != KS_VERSION && hdr[4] != KS_VERSION_PURPOSE))
		return ck_err_set(CK_E_PARSE, "%s: unknown share format", who);
	s->x = hdr[5];
	s->m = hdr[6];
	s->n = hdr[7];
	s->purpose = CK_SHARE_KEY_BACKUP;
	if (hdr[4] == KS_VERSION_PURPOSE) {
		/* Format 2 exists only for the other purposes: one
		 * encoding per share. */
		if (rd(&r, w, 1) != 0)
			goto short_body;
		if (w[0] == CK_SHARE_KEY_BACKUP || w[0] >= CK_SHARE__MAX)
			return ck_err_set(CK_E_PARSE, "%s: unknown share "
			    "purpose %u", who, w[0]);
		s->purpose = (enum ck_share_purpose)w[0];
	}
	if (rd(&r, s->set, KS_SET_LEN) != 0 || rd(&r, s->fp, KS_FP_LEN) != 0 ||
	    rd(&r, hdr, 8) != 0)
		goto short_body;
	for (i = 0; i < 8; i++)
		t = t << 8 | hdr[i];
	if (t > KS_TIME_MAX)
		return ck_err_set(CK_E_PARSE, "%s: bad creation time", who);
	s->created = (int64_t)t;
	if (rd_name(&r, s->custodian) != 0 || rd_name(&r, s->label) != 0)
		return ck_err_set(CK_E_PARSE, "%s: bad custodian or CA name",
		    who);
	if (rd(&r, s->iv, KS_IV_LEN) != 0 || rd(&r, s->tag, KS_TAG_LEN) != 0 ||
	    rd(&r, s->y, KS_K_LEN) != 0 || rd(&r, w, 2) != 0)
		goto short_body;
	s->wrapped_len = (size_t)w[0] << 8 | w[1];
	if (s->wrapped_len == 0 || s->wrapped_len > KB_KEY_DER_MAX ||
	    s->wrapped_len != r.len - r.pos)
		return ck_err_set(CK_E_PARSE, "%s: bad wrapped key length",
		    who);
	if ((s->wrapped = malloc(s->wrapped_len)) == NULL)
		return CK_E_NOMEM;
	(void)rd(&r, s->wrapped, s->wrapped_len);
	return 0;
short_body:
	return ck_err_set(CK_E_PARSE, "%s: its data is cut short", who);
}

int
ck_keyshare_parse(const unsigned char *buf, size_t len,
    struct ck_keyshare **out)
{
	static const char *const keys[] = { "Custodian", "CA",
	    "Key-Fingerprint", "Set", "Share", "Threshold", "Created" };
	struct ks_cursor c = { buf, len, 0, 0 };
	struct ck_keyshare *s = NULL;
	const char *l, *v[7], *of;
	size_t ll, vl[7], b64len = 0, blen = 0;
	unsigned char *b64 = NULL, *body = NULL, fp[KS_FP_LEN];
	unsigned char set[KS_SET_LEN];
	char custodian[CK_KEYBACKUP_NAME_MAX + 1], label[CK_KEYBACKUP_NAME_MAX
	    + 1], who[128], tbuf[32], tcheck[32];
	unsigned x = 0, n = 0, m = 0;
	enum ck_share_purpose purpose = CK_SHARE_KEY_BACKUP;
	int64_t created = 0;
	int i, r;

	if (buf == NULL || out == NULL)
		return ck_err_set(CK_E_INVAL, "key share: no input");
	if (len > KB_FILE_MAX)
		return ck_err_set(CK_E_TOOBIG, "not a key share: over %u "
		    "bytes", KB_FILE_MAX);
	if (ks_line(&c, &l, &ll) != 0 ||
	    ll != strlen(KS_BEGIN) || memcmp(l, KS_BEGIN, ll) != 0)
		return ck_err_set(CK_E_PARSE, "not a certkeep key share: "
		    "line 1 is not '%s'", KS_BEGIN);
	for (i = 0; i < 7; i++)
		if ((r = ks_field(&c, keys[i], &v[i], &vl[i])) != 0)
			return r;
	/* Header values, checked one by one. */
	if (!name_ok_n(v[0], vl[0]))
		return ck_err_set(CK_E_PARSE, "line 2: bad custodian name");
	memcpy(custodian, v[0], vl[0]);
	custodian[vl[0]] = '\0';
	if (!name_ok_n(v[1], vl[1]))
		return ck_err_set(CK_E_PARSE, "line 3: bad CA name");
	memcpy(label, v[1], vl[1]);
	label[vl[1]] = '\0';
	if (ck_hex_decode(v[2], vl[2], fp, sizeof(fp)) != 0)
		return ck_err_set(CK_E_PARSE, "line 4: the key fingerprint "
		    "must be 64 lower-case hex digits");
	if (ck_hex_decode(v[3], vl[3], set, sizeof(set)) != 0)
		return ck_err_set(CK_E_PARSE, "line 5: the set id must be 32 "
		    "lower-case hex digits");
	of = vl[4] >= 5 ? memchr(v[4], ' ', vl[4]) : NULL;
	if (of == NULL || (size_t)(v[4] + vl[4] - of) < 5 ||
	    memcmp(of, " of ", 4) != 0 ||
	    ks_small_uint(v[4], (size_t)(of - v[4]), &x) != 0 ||
	    ks_small_uint(of + 4, (size_t)(v[4] + vl[4] - of - 4), &n) != 0 ||
	    x > n)
		return ck_err_set(CK_E_PARSE, "line 6: expected 'Share: I of "
		    "N' with 1 <= I <= N <= %d", CK_KEYBACKUP_MAX_SHARES);
	if (ks_small_uint(v[5], vl[5], &m) != 0 || m < 2 || m > n)
		return ck_err_set(CK_E_PARSE, "line 7: the threshold must be "
		    "2..%u", n);
	if (vl[6] != 20)
		goto bad_time;
	memcpy(tbuf, v[6], 20);
	tbuf[20] = '\0';
	if (ck_time_parse(tbuf, &created) != 0)
		goto bad_time;
	ck_time_format(created, tcheck, sizeof(tcheck));
	if (strcmp(tbuf, tcheck) != 0)
		goto bad_time;
	snprintf(who, sizeof(who), "share %u (%s)", x, custodian);
	if ((r = ks_line(&c, &l, &ll)) != 0)
		return r;
	/* Format 2: "Purpose: NAME" ends the header. */
	if (ll > 9 && memcmp(l, "Purpose: ", 9) == 0) {
		for (i = 0; i < CK_SHARE__MAX; i++)
			if (i != CK_SHARE_KEY_BACKUP &&
			    strlen(ck_share_purpose_name(
			    (enum ck_share_purpose)i)) == ll - 9 &&
			    memcmp(l + 9, ck_share_purpose_name(
			    (enum ck_share_purpose)i), ll - 9) == 0)
				purpose = (enum ck_share_purpose)i;
		if (purpose == CK_SHARE_KEY_BACKUP)
			return ck_err_set(CK_E_PARSE, "line %u: unknown share "
			    "purpose", c.line);
		if ((r = ks_line(&c, &l, &ll)) != 0)
			return r;
	}
	if (ll != 0)
		return ck_err_set(CK_E_PARSE, "line %u: expected an empty "
		    "line after the header", c.line);
	/* Base64 lines up to the END line. */
	if ((b64 = malloc(KS_B64_MAX)) == NULL ||
	    (body = malloc(KS_B64_MAX / 4 * 3)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	for (;;) {
		if ((r = ks_line(&c, &l, &ll)) != 0)
			goto out;
		if (ll == strlen(KS_END) && memcmp(l, KS_END, ll) == 0)
			break;
		if (ll == 0 || ll > 76 || ll > KS_B64_MAX - b64len) {
			r = ck_err_set(CK_E_PARSE, "%s is damaged: line %u: "
			    "bad base64 line", who, c.line);
			goto out;
		}
		memcpy(b64 + b64len, l, ll);
		b64len += ll;
	}
	if (c.pos != c.len) {
		r = ck_err_set(CK_E_PARSE, "%s: text after the END line", who);
		goto out;
	}
	if (ks_b64_decode(b64, b64len, body, &blen) != 0) {
		r = ck_err_set(CK_E_PARSE, "%s is damaged: bad base64", who);
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((r = ks_parse_body(body, blen, s, who)) != 0)
		goto out;
	/* The header is for people; the body is checksummed. They must
	 * say the same. */
	if (s->x != x || s->n != n || s->m != m || s->created != created ||
	    s->purpose != purpose ||
	    strcmp(s->custodian, custodian) != 0 ||
	    strcmp(s->label, label) != 0 ||
	    memcmp(s->fp, fp, sizeof(fp)) != 0 ||
	    memcmp(s->set, set, sizeof(set)) != 0) {
		r = ck_err_set(CK_E_TAMPER, "%s is altered: its header does "
		    "not match its data", who);
		goto out;
	}
	if (s->x < 1 || s->x > s->n || s->m < 2 || s->m > s->n) {
		r = ck_err_set(CK_E_PARSE, "%s: bad share numbers", who);
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	ck_keyshare_free(s);
	if (body != NULL) {
		ck_wipe(body, KS_B64_MAX / 4 * 3);
		free(body);
	}
	if (b64 != NULL) {
		ck_wipe(b64, KS_B64_MAX);
		free(b64);
	}
	return r;
bad_time:
	return ck_err_set(CK_E_PARSE, "line 8: the creation time must be "
	    "YYYY-MM-DDTHH:MM:SSZ");
}

/* ------------------------------------------------------------------ */
/* Split and join */

static void
free_paths(char **p, int n)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < n; i++)
		free(p[i]);
	free(p);
}

static const char *const purpose_names[CK_SHARE__MAX] = {
	"key-backup", "unlock"
};

const char *
ck_share_purpose_name(enum ck_share_purpose p)
{
	return (unsigned)p < CK_SHARE__MAX ? purpose_names[p] : "unknown";
}

/*
 * Split: PAYLOAD (the key's DER, or a secret) is wrapped under a random K
 * and K is split. The file names say what the shares are of (KIND).
 */
static int
ks_split(const struct ck_secret *der, EVP_PKEY *key,
    enum ck_share_purpose purpose, const char *kind, int m, int n,
    const char *const *custodians, const char *dir, const char *ca_label,
    char ***paths, char set_hex[33])
{
	struct ck_secret *k = NULL, *ys = NULL;
	struct ck_keyshare s;
	unsigned char *yp[CK_KEYBACKUP_MAX_SHARES];
	char **names = NULL, fphex[65], fname[256], full[4096], *text = NULL;
	size_t tlen = 0;
	int i, j, written = 0, made_dir = 0, r;

	memset(&s, 0, sizeof(s));
	s.purpose = purpose;
	if (key == NULL || custodians == NULL || dir == NULL ||
	    ca_label == NULL || paths == NULL || der == NULL ||
	    der->len == 0 || der->len > KB_KEY_DER_MAX)
		return ck_err_set(CK_E_INVAL, "key shares: missing argument");
	if (m < 2 || n < m || n > CK_KEYBACKUP_MAX_SHARES)
		return ck_err_set(CK_E_INVAL, "key shares: need 2 <= threshold "
		    "<= shares <= %d (threshold %d, shares %d)",
		    CK_KEYBACKUP_MAX_SHARES, m, n);
	if (!ck_keybackup_name_ok(ca_label))
		return ck_err_set(CK_E_INVAL, "bad CA name '%s': use 1 to %d "
		    "of A-Z a-z 0-9 . _ - (not first . or -)", ca_label,
		    CK_KEYBACKUP_NAME_MAX);
	for (i = 0; i < n; i++) {
		if (custodians[i] == NULL || !ck_keybackup_name_ok(
		    custodians[i]))
			return ck_err_set(CK_E_INVAL, "bad custodian name '%s':"
			    " use 1 to %d of A-Z a-z 0-9 . _ - (not first . "
			    "or -)", custodians[i] ? custodians[i] : "",
			    CK_KEYBACKUP_NAME_MAX);
		/* One person with two shares lowers the threshold. */
		for (j = 0; j < i; j++)
			if (strcasecmp(custodians[i], custodians[j]) == 0)
				return ck_err_set(CK_E_INVAL, "custodian '%s' "
				    "is named twice: each share needs its own "
				    "custodian", custodians[i]);
	}
	if ((r = ck_key_fingerprint(key, fphex)) != 0 ||
	    (r = fingerprint_raw(key, s.fp)) != 0)
		return r;
	if (ck_fs_exists(dir)) {
		if ((r = ck_fs_check_private_dir(dir)) != 0)
			return r;
	} else if ((r = ck_fs_mkdir_private(dir)) != 0)
		return r;
	else
		made_dir = 1;
	if ((names = calloc((size_t)n, sizeof(*names))) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (snprintf(fname, sizeof(fname), "%s-%s-%.16s-share-%dof%d-"
		    "%s.share", ca_label, kind, fphex, i + 1, n,
		    custodians[i]) >=
		    (int)sizeof(fname) ||
		    ck_path_join(full, sizeof(full), dir, fname) != 0) {
			r = ck_err_set(CK_E_TOOBIG, "share file name too long");
			goto out;
		}
		if ((names[i] = strdup(full)) == NULL) {
			r = CK_E_NOMEM;
			goto out;
		}
		if (ck_fs_exists(names[i])) {
			r = ck_err_set(CK_E_EXISTS, "%s already exists; not "
			    "overwriting it", names[i]);
			goto out;
		}
	}
	if ((k = ck_secret_new(KS_K_LEN)) == NULL ||
	    (ys = ck_secret_new((size_t)n * KS_K_LEN)) == NULL ||
	    (s.wrapped = malloc(der->len)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if (RAND_priv_bytes(k->buf, KS_K_LEN) != 1 ||
	    RAND_bytes(s.set, KS_SET_LEN) != 1 ||
	    RAND_bytes(s.iv, KS_IV_LEN) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "no random bytes");
		goto out;
	}
	k->len = KS_K_LEN;
	s.m = (unsigned)m;
	s.n = (unsigned)n;
	s.wrapped_len = der->len;
	s.created = ck_time_now();
	(void)ck_strcpy_bounded(s.label, sizeof(s.label), ca_label);
	if ((r = gcm_wrap(k->buf, &s, der)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		yp[i] = ys->buf + (size_t)i * KS_K_LEN;
	if ((r = ck_shamir_split(k->buf, KS_K_LEN, m, n, yp)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		s.x = (unsigned)i + 1;
		memcpy(s.y, yp[i], KS_K_LEN);
		(void)ck_strcpy_bounded(s.custodian, sizeof(s.custodian),
		    custodians[i]);
		if ((r = ck_keyshare_encode(&s, &text, &tlen)) != 0)
			goto out;
		r = ck_fs_write_new(names[i], text, tlen, 0600);
		ck_wipe(text, tlen);
		free(text);
		text = NULL;
		if (r != 0)
			goto out;
		written++;
	}
	if (set_hex != NULL)
		ck_hex_encode(s.set, KS_SET_LEN, set_hex);
	*paths = names;
	names = NULL;
	r = 0;
out:
	/* All or nothing: a partial set is of no use to anyone. */
	for (i = 0; names != NULL && i < written; i++)
		(void)unlink(names[i]);
	if (r != 0 && made_dir)
		(void)rmdir(dir);
	free_paths(names, n);
	free(s.wrapped);
	ck_wipe(&s, sizeof(s));
	ck_secret_free(ys);
	ck_secret_free(k);
	return r;
}

int
ck_keybackup_split(EVP_PKEY *key, int m, int n,
    const char *const *custodians, const char *dir, const char *ca_label,
    char ***paths)
{
	struct ck_secret *der = NULL;
	int r;

	if (key == NULL)
		return ck_err_set(CK_E_INVAL, "key shares: missing argument");
	if ((r = key_to_der(key, &der)) != 0)
		return r;
	r = ks_split(der, key, CK_SHARE_KEY_BACKUP, "key", m, n, custodians,
	    dir, ca_label, paths, NULL);
	ck_secret_free(der);
	return r;
}

int
ck_keyshare_split_secret(const struct ck_secret *secret, EVP_PKEY *key,
    enum ck_share_purpose purpose, int m, int n,
    const char *const *custodians, const char *dir, const char *ca_label,
    char ***paths, char set_hex[33])
{
	if (purpose == CK_SHARE_KEY_BACKUP || (unsigned)purpose >=
	    CK_SHARE__MAX)
		return ck_err_set(CK_E_INVAL, "key shares: a secret's shares "
		    "need a purpose other than key-backup");
	return ks_split(secret, key, purpose, ck_share_purpose_name(purpose),
	    m, n, custodians, dir, ca_label, paths, set_hex);
}

/* Copy the current error message before building a new one from it. */
static int
err_prefix(int r, const char *prefix)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", ck_err_msg()[0] ? ck_err_msg() :
	    ck_strerror(r));
	return ck_err_set(r, "%s: %s", prefix, msg);
}

/* Shares of one set must agree on everything but x, custodian, y. */
static const char *
ks_disagree(const struct ck_keyshare *a, const struct ck_keyshare *b)
{
	if (memcmp(a->fp, b->fp, KS_FP_LEN) != 0)
		return "the key fingerprint";
	if (a->m != b->m || a->n != b->n)
		return "the threshold or the number of shares";
	if (strcmp(a->label, b->label) != 0)
		return "the CA name";
	if (a->created != b->created)
		return "the creation time";
	if (memcmp(a->iv, b->iv, KS_IV_LEN) != 0 ||
	    memcmp(a->tag, b->tag, KS_TAG_LEN) != 0 ||
	    a->wrapped_len != b->wrapped_len ||
	    memcmp(a->wrapped, b->wrapped, a->wrapped_len) != 0)
		return "the wrapped key";
	return NULL;
}

/* Reconstruct K from the shares picked by IDX and try to unwrap. */
static int
ks_try(struct ck_keyshare **sh, const int *idx, int m,
    struct ck_secret *k, struct ck_secret **der)
{
	const unsigned char *ys[CK_KEYBACKUP_MAX_SHARES];
	unsigned char xs[CK_KEYBACKUP_MAX_SHARES];
	int i, r;

	for (i = 0; i < m; i++) {
		ys[i] = sh[idx[i]]->y;
		xs[i] = (unsigned char)sh[idx[i]]->x;
	}
	if ((r = ck_shamir_join(ys, xs, m, KS_K_LEN, k->buf)) != 0)
		return r;
	return gcm_unwrap(k->buf, sh[idx[0]], der);
}

/* Next M-subset of 0..N-1 in lexicographic order; 0 after the last. */
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

/* With a subset that works, name a share that is off its polynomial. */
static int
ks_name_outlier(struct ck_keyshare **sh, int nsh, const int *idx, int m)
{
	const unsigned char *ys[CK_KEYBACKUP_MAX_SHARES];
	unsigned char xs[CK_KEYBACKUP_MAX_SHARES], y[KS_K_LEN];
	int i, j, in, bad = -1;

	for (i = 0; i < m; i++) {
		ys[i] = sh[idx[i]]->y;
		xs[i] = (unsigned char)sh[idx[i]]->x;
	}
	for (j = 0; j < nsh && bad < 0; j++) {
		for (in = 0, i = 0; i < m; i++)
			in |= idx[i] == j;
		if (in)
			continue;
		if (shamir_eval(ys, xs, m, KS_K_LEN, (uint8_t)sh[j]->x, y) ==
		    0 && CRYPTO_memcmp(y, sh[j]->y, KS_K_LEN) != 0)
			bad = j;
	}
	ck_wipe(y, sizeof(y));
	if (bad < 0)
		return ck_err_set(CK_E_TAMPER, "the shares do not agree: one "
		    "of them is altered");
	return ck_err_set(CK_E_TAMPER, "share %u (%s) is altered: its share "
	    "value does not fit the other shares (remove it and try again)",
	    sh[bad]->x, sh[bad]->custodian);
}

int
ck_keybackup_join(const char *const *paths, int npaths, EVP_PKEY **out)
{
	struct ck_keyshare *sh[CK_KEYBACKUP_MAX_SHARES];
	struct ck_secret *k = NULL, *der = NULL;
	unsigned char *buf = NULL, fp[KS_FP_LEN];
	char a[160], b[160], sa[33], sb[33];
	const char *what;
	EVP_PKEY *key = NULL;
	size_t len = 0;
	int idx[CK_KEYBACKUP_MAX_SHARES];
	int i, j, m, tries, found, r;

	memset(sh, 0, sizeof(sh));
	if (paths == NULL || out == NULL || npaths < 1)
		return ck_err_set(CK_E_INVAL, "no share files given");
	if (npaths > CK_KEYBACKUP_MAX_SHARES)
		return ck_err_set(CK_E_INVAL, "%d share files given; at most "
		    "%d", npaths, CK_KEYBACKUP_MAX_SHARES);
	for (i = 0; i < npaths; i++) {
		if ((r = ck_fs_read(paths[i], KB_FILE_MAX, &buf, &len)) != 0)
			goto out;
		r = ck_keyshare_parse(buf, len, &sh[i]);
		ck_wipe(buf, len);
		free(buf);
		buf = NULL;
		if (r != 0) {
			r = err_prefix(r, paths[i]);
			goto out;
		}
		if (sh[i]->purpose != CK_SHARE_KEY_BACKUP) {
			r = ck_err_set(CK_E_INVAL, "%s is share %u (%s) of an "
			    "%s secret, not of a key backup (give it to "
			    "'certkeep unlock' or 'certkeep key unprotect')",
			    paths[i], sh[i]->x, sh[i]->custodian,
			    ck_share_purpose_name(sh[i]->purpose));
			goto out;
		}
	}
	/* One set, one key, no share twice. */
	for (i = 1; i < npaths; i++) {
		snprintf(a, sizeof(a), "share %u (%s)", sh[0]->x,
		    sh[0]->custodian);
		snprintf(b, sizeof(b), "share %u (%s)", sh[i]->x,
		    sh[i]->custodian);
		if (memcmp(sh[i]->set, sh[0]->set, KS_SET_LEN) != 0) {
			ck_hex_encode(sh[0]->set, KS_SET_LEN, sa);
			ck_hex_encode(sh[i]->set, KS_SET_LEN, sb);
			r = ck_err_set(CK_E_INVAL, "shares belong to different "
			    "%s: %s is of set %s, %s of set %s",
			    memcmp(sh[i]->fp, sh[0]->fp, KS_FP_LEN) != 0 ?
			    "keys" : "sets", a, sa, b, sb);
			goto out;
		}
		if ((what = ks_disagree(sh[0], sh[i])) != NULL) {
			r = ck_err_set(CK_E_TAMPER, "%s and %s disagree on %s: "
			    "one of them is altered", a, b, what);
			goto out;
		}
	}
	for (i = 0; i < npaths; i++)
		for (j = 0; j < i; j++)
			if (sh[i]->x == sh[j]->x) {
				r = ck_err_set(CK_E_INVAL, "share %u (%s) is "
				    "given twice (%s and %s)", sh[i]->x,
				    sh[i]->custodian, paths[j], paths[i]);
				goto out;
			}
	m = (int)sh[0]->m;
	if (npaths < m) {
		r = ck_err_set(CK_E_INVAL, "%d share%s given, %d needed",
		    npaths, npaths == 1 ? "" : "s", m);
		goto out;
	}
	if ((k = ck_secret_new(KS_K_LEN)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	for (i = 0; i < m; i++)
		idx[i] = i;
	r = ks_try(sh, idx, m, k, &der);
	if (r == CK_E_TAMPER) {
		/* An altered share value still has a valid checksum only if
		 * someone recomputed it. With more than M shares, find a
		 * subset that works and name the share that does not. */
		found = 0;
		for (tries = 0; !found && tries < KS_SUBSET_TRIES &&
		    next_subset(idx, m, npaths); tries++)
			found = ks_try(sh, idx, m, k, &der) == 0;
		if (found)
			r = ks_name_outlier(sh, npaths, idx, m);
		else if (npaths > m)
			r = ck_err_set(CK_E_TAMPER, "the shares do not "
			    "reconstruct the key: more than one of them is "
			    "altered");
		else
			r = ck_err_set(CK_E_TAMPER, "the shares do not "
			    "reconstruct the key: one of them is altered "
			    "(with one more share certkeep can tell which)");
		goto out;
	}
	if (r != 0)
		goto out;
	if (key_from_der(der->buf, der->len, &key) != 0) {
		r = ck_err_set(CK_E_PARSE, "the shares reconstruct something "
		    "that is not a PKCS#8 key");
		goto out;
	}
	if ((r = fingerprint_raw(key, fp)) != 0)
		goto out;
	if (memcmp(fp, sh[0]->fp, KS_FP_LEN) != 0) {
		r = ck_err_set(CK_E_TAMPER, "the restored key does not have the "
		    "fingerprint the shares name");
		goto out;
	}
	*out = key;
	key = NULL;
	r = 0;
out:
	EVP_PKEY_free(key);
	ck_secret_free(der);
	ck_secret_free(k);
	for (i = 0; i < npaths && i < CK_KEYBACKUP_MAX_SHARES; i++)
		ck_keyshare_free(sh[i]);
	return r;
}

/* ------------------------------------------------------------------ */
/* Shares one at a time (the unlock collector) */

enum ck_share_purpose
ck_keyshare_purpose(const struct ck_keyshare *s)
{
	return s->purpose;
}

const char *
ck_keyshare_custodian(const struct ck_keyshare *s)
{
	return s->custodian;
}

unsigned
ck_keyshare_index(const struct ck_keyshare *s)
{
	return s->x;
}

unsigned
ck_keyshare_threshold(const struct ck_keyshare *s)
{
	return s->m;
}

unsigned
ck_keyshare_count(const struct ck_keyshare *s)
{
	return s->n;
}

void
ck_keyshare_set_hex(const struct ck_keyshare *s, char out[33])
{
	ck_hex_encode(s->set, KS_SET_LEN, out);
}

void
ck_keyshare_fp_hex(const struct ck_keyshare *s, char out[65])
{
	ck_hex_encode(s->fp, KS_FP_LEN, out);
}

const char *
ck_keyshare_disagree(const struct ck_keyshare *a, const struct ck_keyshare *b)
{
	if (memcmp(a->set, b->set, KS_SET_LEN) != 0)
		return "the set";
	if (a->purpose != b->purpose)
		return "the purpose";
	return ks_disagree(a, b);
}

void
ck_keyshare_take_value(struct ck_keyshare *s,
    unsigned char out[CK_KEYSHARE_VALUE_LEN])
{
	memcpy(out, s->y, KS_K_LEN);
	ck_wipe(s->y, KS_K_LEN);
}

int
ck_keyshare_join_values(const struct ck_keyshare *ref,
    const unsigned char *values, const unsigned char *xs, int m,
    struct ck_secret **payload)
{
	const unsigned char *ys[CK_KEYBACKUP_MAX_SHARES];
	struct ck_secret *k = NULL;
	int i, r;

	if (ref == NULL || values == NULL || xs == NULL || payload == NULL ||
	    m < 1 || m > CK_KEYBACKUP_MAX_SHARES || (unsigned)m < ref->m)
		return ck_err_set(CK_E_INVAL, "key shares: %d given, %u "
		    "needed", m, ref != NULL ? ref->m : 0);
	for (i = 0; i < m; i++)
		ys[i] = values + (size_t)i * KS_K_LEN;
	if ((k = ck_secret_new(KS_K_LEN)) == NULL)
		return CK_E_NOMEM;
	if ((r = ck_shamir_join(ys, xs, m, KS_K_LEN, k->buf)) == 0 &&
	    (r = gcm_unwrap(k->buf, ref, payload)) == CK_E_TAMPER)
		r = ck_err_set(CK_E_TAMPER, "the shares do not rebuild the "
		    "secret: at least one of them is altered");
	ck_secret_free(k);
	return r;
}
