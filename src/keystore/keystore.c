#include "keystore/keystore.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/fsutil.h"

#define KEYSTORE_FILE_MAX (64u * 1024)

int
keystore_encode(EVP_PKEY *key, const struct ck_secret *pass, int log2n,
    char **out, size_t *outlen)
{
	PKCS8_PRIV_KEY_INFO *p8inf = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *p8 = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm = NULL;
	char *buf = NULL;
	unsigned char salt[16];
	int r = CK_E_CRYPTO;

	if (log2n == 0)
		log2n = KEYSTORE_SCRYPT_LOG2N;
	if ((p8inf = EVP_PKEY2PKCS8(key)) == NULL)
		goto out;
	/* A 16-byte salt (OpenSSL's default is 8). */
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		goto out;
	pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof(salt),
	    NULL, (uint64_t)1 << log2n, KEYSTORE_SCRYPT_R, KEYSTORE_SCRYPT_P);
	if (pbe == NULL)
		goto out;
	if ((p8 = PKCS8_set0_pbe((const char *)pass->buf, (int)pass->len,
	    p8inf, pbe)) == NULL)
		goto out;
	pbe = NULL;		/* owned by p8 now */
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PKCS8(bio, p8))
		goto out;
	BIO_get_mem_ptr(bio, &bm);
	if ((buf = malloc(bm->length + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy(buf, bm->data, bm->length);
	buf[bm->length] = '\0';
	*outlen = bm->length;
	*out = buf;
	r = 0;
out:
	if (r == CK_E_CRYPTO)
		ck_err_ssl(r, "cannot encrypt the key");
	BIO_free(bio);
	X509_SIG_free(p8);
	X509_ALGOR_free(pbe);
	PKCS8_PRIV_KEY_INFO_free(p8inf);	/* cleanses */
	return r;
}

int
keystore_save(const char *path, EVP_PKEY *key, const struct ck_secret *pass,
    int log2n)
{
	char *pem = NULL;
	size_t len = 0;
	int r;

	if ((r = keystore_encode(key, pass, log2n, &pem, &len)) != 0)
		return r;
	r = ck_fs_write_new(path, pem, len, 0600);
	free(pem);
	return r;
}

int
keystore_load(const char *path, const struct ck_secret *pass, EVP_PKEY **out)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *k = NULL;
	X509_SIG *p8 = NULL;
	PKCS8_PRIV_KEY_INFO *p8inf = NULL;
	int r;

	if ((r = ck_fs_check_private_file(path)) != 0)
		return r;
	if ((r = ck_fs_read(path, KEYSTORE_FILE_MAX, &buf, &len)) != 0)
		return r;
	if (strstr((char *)buf, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ==
	    NULL) {
		r = ck_err_set(CK_E_PARSE, "%s is not an encrypted PKCS#8 key;"
		    " certkeep never uses unencrypted keys", path);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	/* Only an ENCRYPTED PRIVATE KEY block is read: any other key in
	 * the file (a plaintext one) is never used. */
	if ((p8 = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PARSE, "%s is not an encrypted PKCS#8 key;"
		    " certkeep never uses unencrypted keys", path);
		goto out;
	}
	if ((p8inf = PKCS8_decrypt(p8, (const char *)pass->buf,
	    (int)pass->len)) == NULL ||
	    (k = EVP_PKCS82PKEY(p8inf)) == NULL) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PASSPHRASE, "cannot decrypt %s: wrong "
		    "passphrase (or the key file is damaged)", path);
		goto out;
	}
	*out = k;
	r = 0;
out:
	PKCS8_PRIV_KEY_INFO_free(p8inf);	/* cleanses */
	X509_SIG_free(p8);
	BIO_free(bio);
	ck_wipe(buf, len);
	free(buf);
	return r;
}
