/*
 * eab_seal.c - the CA home's EAB key pair and sealed EAB HMAC keys
 * (eab_seal.h).
 */
#include "ca/eab_seal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "keystore/keystore.h"

#define X25519_LEN 32
#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16
#define AES_KEY_LEN 32
/* Offsets in the sealed form. */
#define OFF_EPH 1
#define OFF_IV (OFF_EPH + X25519_LEN)
#define OFF_CT (OFF_IV + GCM_IV_LEN)
/* Largest public key file read. */
#define PUB_FILE_MAX 4096

static const char hkdf_info[] = "certkeep acme-eab seal v1";

int
eab_keypair_generate(EVP_PKEY **out)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");

	if (k == NULL)
		return ck_err_ssl(CK_E_CRYPTO, "cannot make an X25519 key");
	*out = k;
	return 0;
}

static int
is_x25519(EVP_PKEY *k)
{
	return k != NULL && EVP_PKEY_is_a(k, "X25519");
}

static int
raw_pub(EVP_PKEY *k, unsigned char out[X25519_LEN])
{
	size_t len = X25519_LEN;

	if (!is_x25519(k) || EVP_PKEY_get_raw_public_key(k, out, &len) != 1 ||
	    len != X25519_LEN) {
		ERR_clear_error();
		return ck_err_set(CK_E_INVAL, "the EAB key is not an X25519 "
		    "key");
	}
	return 0;
}

int
eab_key_match(EVP_PKEY *a, EVP_PKEY *b)
{
	unsigned char pa[X25519_LEN], pb[X25519_LEN];

	if (raw_pub(a, pa) != 0 || raw_pub(b, pb) != 0) {
		ck_err_clear();
		return 0;
	}
	return memcmp(pa, pb, X25519_LEN) == 0;
}

/* PEM of KEY's public half into a new buffer. */
static int
pub_pem(EVP_PKEY *key, char **out, size_t *outlen)
{
	BIO *bio = NULL;
	BUF_MEM *bm;
	char *p = NULL;
	int r = CK_E_CRYPTO;

	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, key) != 1) {
		ck_err_ssl(r, "cannot encode the EAB public key");
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	if ((p = malloc(bm->length + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy(p, bm->data, bm->length);
	p[bm->length] = '\0';
	*outlen = bm->length;
	*out = p;
	r = 0;
out:
	BIO_free(bio);
	return r;
}

static int
home_path(const char *home, const char *name, char *buf, size_t size)
{
	return ck_path_join(buf, size, home, name);
}

int
eab_pub_save(const char *home, EVP_PKEY *pub)
{
	char path[4096], *pem = NULL;
	size_t len = 0;
	int r;

	if (!is_x25519(pub))
		return ck_err_set(CK_E_INVAL, "the EAB key is not an X25519 "
		    "key");
	if ((r = home_path(home, EAB_SEAL_PUB_FILE, path, sizeof(path))) != 0 ||
	    (r = pub_pem(pub, &pem, &len)) != 0)
		goto out;
	r = ck_fs_write_new(path, pem, len, 0644);
out:
	free(pem);
	return r;
}

int
eab_keypair_save(const char *home, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n)
{
	char kpath[4096], ppath[4096], dir[4096];
	int r;

	if (!is_x25519(key))
		return ck_err_set(CK_E_INVAL, "the EAB key is not an X25519 "
		    "key");
	if ((r = home_path(home, EAB_SEAL_KEY_FILE, kpath,
	    sizeof(kpath))) != 0 ||
	    (r = home_path(home, EAB_SEAL_PUB_FILE, ppath,
	    sizeof(ppath))) != 0 ||
	    (r = home_path(home, "private", dir, sizeof(dir))) != 0)
		return r;
	/* Both checked first: a stray public key must not survive beside a
	 * new private key it does not belong to. */
	if (ck_fs_exists(kpath) || ck_fs_exists(ppath))
		return ck_err_set(CK_E_EXISTS, "the CA home already has an EAB "
		    "key (%s or %s)", EAB_SEAL_KEY_FILE, EAB_SEAL_PUB_FILE);
	if (ck_fs_exists(dir)) {
		if ((r = ck_fs_check_private_dir(dir)) != 0)
			return r;
	} else if ((r = ck_fs_mkdir_private(dir)) != 0)
		return r;
	if ((r = keystore_save(kpath, key, pass, log2n)) != 0)
		return r;
	if ((r = eab_pub_save(home, key)) != 0) {
		(void)unlink(kpath);
		return r;
	}
	return 0;
}

int
eab_pub_load(const char *home, EVP_PKEY **out)
{
	unsigned char *buf = NULL;
	char path[4096];
	EVP_PKEY *k = NULL;
	BIO *bio = NULL;
	size_t len = 0;
	int r;

	if ((r = home_path(home, EAB_SEAL_PUB_FILE, path, sizeof(path))) != 0)
		return r;
	if ((r = ck_fs_read(path, PUB_FILE_MAX, &buf, &len)) != 0) {
		if (r == CK_E_NOTFOUND)
			r = ck_err_set(r, "the CA home has no EAB key (%s)",
			    EAB_SEAL_PUB_FILE);
		return r;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL ||
	    !is_x25519(k)) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PARSE, "%s is not an X25519 public key in "
		    "PEM", path);
		goto out;
	}
	*out = k;
	k = NULL;
	r = 0;
out:
	EVP_PKEY_free(k);
	BIO_free(bio);
	free(buf);
	return r;
}

int
eab_key_load(const char *home, const struct ck_secret *pass,
    EVP_PKEY **out)
{
	EVP_PKEY *k = NULL, *pub = NULL;
	char path[4096];
	int r;

	if ((r = home_path(home, EAB_SEAL_KEY_FILE, path, sizeof(path))) != 0)
		return r;
	if (!ck_fs_exists(path))
		return ck_err_set(CK_E_NOTFOUND, "the CA home has no EAB key "
		    "(%s)", EAB_SEAL_KEY_FILE);
	if ((r = keystore_load(path, pass, &k)) != 0)
		return r;
	if (!is_x25519(k)) {
		r = ck_err_set(CK_E_PARSE, "%s is not an X25519 key", path);
		goto out;
	}
	/* The public file seals new keys: it must be this key's. */
	r = eab_pub_load(home, &pub);
	if (r == CK_E_NOTFOUND)
		ck_err_clear();
	else if (r != 0)
		goto out;
	else if (!eab_key_match(k, pub)) {
		r = ck_err_set(CK_E_TAMPER, "%s does not belong to %s: keys "
		    "sealed with it would not open", EAB_SEAL_PUB_FILE,
		    EAB_SEAL_KEY_FILE);
		goto out;
	}
	*out = k;
	k = NULL;
	r = 0;
out:
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	return r;
}

int
eab_key_restore_check(const char *home, EVP_PKEY *key)
{
	EVP_PKEY *pub = NULL;
	char path[4096];
	int r;

	if (!is_x25519(key))
		return ck_err_set(CK_E_INVAL, "the EAB key is not an X25519 "
		    "key");
	if ((r = home_path(home, EAB_SEAL_KEY_FILE, path, sizeof(path))) != 0)
		return r;
	if (ck_fs_exists(path))
		return ck_err_set(CK_E_EXISTS, "an EAB key is already at %s",
		    path);
	r = eab_pub_load(home, &pub);
	if (r == CK_E_NOTFOUND) {
		ck_err_clear();
		return 0;
	}
	if (r == 0 && !eab_key_match(key, pub))
		r = ck_err_set(CK_E_TAMPER, "the backed-up EAB key does not "
		    "belong to this home's %s: the EAB keys in the store were "
		    "sealed to another key", EAB_SEAL_PUB_FILE);
	EVP_PKEY_free(pub);
	return r;
}

int
eab_key_restore(const char *home, EVP_PKEY *key,
    const struct ck_secret *pass, int log2n)
{
	char kpath[4096], ppath[4096], dir[4096];
	int r, had_pub;

	if ((r = eab_key_restore_check(home, key)) != 0 ||
	    (r = home_path(home, EAB_SEAL_KEY_FILE, kpath,
	    sizeof(kpath))) != 0 ||
	    (r = home_path(home, EAB_SEAL_PUB_FILE, ppath,
	    sizeof(ppath))) != 0 ||
	    (r = home_path(home, "private", dir, sizeof(dir))) != 0)
		return r;
	had_pub = ck_fs_exists(ppath);
	if (ck_fs_exists(dir)) {
		if ((r = ck_fs_check_private_dir(dir)) != 0)
			return r;
	} else if ((r = ck_fs_mkdir_private(dir)) != 0)
		return r;
	if ((r = keystore_save(kpath, key, pass, log2n)) != 0)
		return r;
	if (!had_pub && (r = eab_pub_save(home, key)) != 0) {
		(void)unlink(kpath);
		return r;
	}
	return 0;
}

/*
 * The AES-256 key for a seal: X25519 of PRIV with PEER, then HKDF-SHA256
 * with salt EPH || RECIP (the ephemeral and the home's public keys).
 */
static int
seal_key(EVP_PKEY *priv, EVP_PKEY *peer, const unsigned char *eph,
    const unsigned char *recip, unsigned char key[AES_KEY_LEN])
{
	unsigned char shared[X25519_LEN], salt[2 * X25519_LEN];
	EVP_PKEY_CTX *dctx = NULL;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5];
	size_t slen = sizeof(shared);
	int r = CK_E_CRYPTO;

	/* OpenSSL refuses an all-zero result (a small-order peer key). */
	if ((dctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dctx) != 1 ||
	    EVP_PKEY_derive_set_peer(dctx, peer) != 1 ||
	    EVP_PKEY_derive(dctx, shared, &slen) != 1 ||
	    slen != sizeof(shared))
		goto out;
	memcpy(salt, eph, X25519_LEN);
	memcpy(salt + X25519_LEN, recip, X25519_LEN);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    shared, sizeof(shared));
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    salt, sizeof(salt));
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (char *)hkdf_info, sizeof(hkdf_info) - 1);
	params[4] = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
	    (kctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(kctx, key, AES_KEY_LEN, params) != 1)
		goto out;
	r = 0;
out:
	if (r != 0)
		ck_err_ssl(r, "EAB key agreement");
	OPENSSL_cleanse(shared, sizeof(shared));
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	EVP_PKEY_CTX_free(dctx);
	return r;
}

/* AES-256-GCM over IN (N bytes) into OUT with AAD = version || kid;
 * ENC 1 seals (TAG written), 0 opens (TAG checked: CK_E_TAMPER). */
static int
gcm(int enc, const unsigned char key[AES_KEY_LEN], const unsigned char *iv,
    const char *kid, const unsigned char *in, size_t n, unsigned char *out,
    unsigned char tag[GCM_TAG_LEN])
{
	static const unsigned char version = EAB_SEAL_VERSION;
	EVP_CIPHER_CTX *c = NULL;
	int len = 0, r = CK_E_CRYPTO;

	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL,
	    enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, GCM_IV_LEN,
	    NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1 ||
	    EVP_CipherUpdate(c, NULL, &len, &version, 1) != 1 ||
	    EVP_CipherUpdate(c, NULL, &len, (const unsigned char *)kid,
	    (int)strlen(kid)) != 1 ||
	    EVP_CipherUpdate(c, out, &len, in, (int)n) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
	    tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, out + len, &len) != 1) {
		if (!enc) {
			ERR_clear_error();
			r = CK_E_TAMPER;
			goto out;
		}
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN,
	    tag) != 1)
		goto out;
	r = 0;
out:
	if (r == CK_E_CRYPTO)
		ck_err_ssl(r, "EAB key AES-GCM");
	EVP_CIPHER_CTX_free(c);
	return r;
}

int
eab_seal(EVP_PKEY *pub, const char *kid, const unsigned char *key,
    size_t keylen, unsigned char **out, size_t *outlen)
{
	unsigned char recip[X25519_LEN], aes[AES_KEY_LEN], *b = NULL;
	EVP_PKEY *eph = NULL;
	size_t n = EAB_SEALED_LEN(keylen);
	int r;

	if (kid == NULL || kid[0] == '\0' || key == NULL || keylen == 0 ||
	    keylen > EAB_SEAL_KEY_MAX)
		return ck_err_set(CK_E_INVAL, "EAB seal: a key id and a key of "
		    "1 to %d bytes are required", EAB_SEAL_KEY_MAX);
	if ((r = raw_pub(pub, recip)) != 0)
		return r;
	if ((b = malloc(n)) == NULL)
		return CK_E_NOMEM;
	b[0] = EAB_SEAL_VERSION;
	if ((r = eab_keypair_generate(&eph)) != 0 ||
	    (r = raw_pub(eph, b + OFF_EPH)) != 0)
		goto out;
	if (RAND_bytes(b + OFF_IV, GCM_IV_LEN) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "random number generator");
		goto out;
	}
	if ((r = seal_key(eph, pub, b + OFF_EPH, recip, aes)) != 0 ||
	    (r = gcm(1, aes, b + OFF_IV, kid, key, keylen, b + OFF_CT,
	    b + OFF_CT + keylen)) != 0)
		goto out;
	*out = b;
	*outlen = n;
	b = NULL;
out:
	OPENSSL_cleanse(aes, sizeof(aes));
	EVP_PKEY_free(eph);
	free(b);
	return r;
}

int
eab_unseal(EVP_PKEY *priv, const char *kid, const unsigned char *sealed,
    size_t len, struct ck_secret **out)
{
	unsigned char recip[X25519_LEN], aes[AES_KEY_LEN];
	unsigned char tag[GCM_TAG_LEN];
	struct ck_secret *k = NULL;
	EVP_PKEY *eph = NULL;
	size_t n;
	int r;

	if (kid == NULL || kid[0] == '\0' || sealed == NULL)
		return ck_err_set(CK_E_INVAL, "EAB unseal: a key id and a "
		    "sealed key are required");
	if (len <= EAB_SEAL_OVERHEAD || len > EAB_SEALED_LEN(EAB_SEAL_KEY_MAX))
		return ck_err_set(CK_E_PARSE, "the sealed key of EAB key id "
		    "%.64s has %zu bytes, not %d to %zu", kid, len,
		    EAB_SEAL_OVERHEAD + 1, EAB_SEALED_LEN(EAB_SEAL_KEY_MAX));
	if (sealed[0] != EAB_SEAL_VERSION)
		return ck_err_set(CK_E_PARSE, "the sealed key of EAB key id "
		    "%.64s has version %u, not %d", kid, sealed[0],
		    EAB_SEAL_VERSION);
	n = len - EAB_SEAL_OVERHEAD;
	if ((r = raw_pub(priv, recip)) != 0)
		return r;
	if ((eph = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL,
	    sealed + OFF_EPH, X25519_LEN)) == NULL)
		return ck_err_ssl(CK_E_CRYPTO, "EAB ephemeral key");
	if ((k = ck_secret_new(n)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy(tag, sealed + OFF_CT + n, GCM_TAG_LEN);
	if ((r = seal_key(priv, eph, sealed + OFF_EPH, recip, aes)) != 0) {
		/* A small-order point planted in the blob. */
		r = ck_err_set(CK_E_TAMPER, "the sealed key of EAB key id "
		    "%.64s does not open: its key agreement fails", kid);
		goto out;
	}
	if ((r = gcm(0, aes, sealed + OFF_IV, kid, sealed + OFF_CT, n, k->buf,
	    tag)) != 0) {
		if (r == CK_E_TAMPER)
			ck_err_set(r, "the sealed key of EAB key id %.64s does "
			    "not open: altered, moved from another key id, "
			    "or sealed to another EAB key", kid);
		goto out;
	}
	k->len = n;
	*out = k;
	k = NULL;
out:
	OPENSSL_cleanse(aes, sizeof(aes));
	ck_secret_free(k);
	EVP_PKEY_free(eph);
	return r;
}
