/*
 * fuzz_csr_issue.c - the issuance path's CSR parse,
 * ck_csr_parse_ex(CK_CSR_NO_PUBKEY), against ck_csr_parse() on the same
 * bytes: both must accept or refuse alike (the same error code), and an
 * accepted request must come out the same but for the key object (key
 * description, SubjectPublicKeyInfo, subject, names, extensions). The
 * flag changes how P-256 and P-384 keys are decoded and their signature
 * checked (a per-thread scratch key), so that is what this compares.
 *
 * As in fuzz_csr.c, an input that decodes as a CSR is also re-signed, here
 * with a fixed P-256 or P-384 key, so that the accepting path is reached
 * and not only the refusals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "x509/csr.h"

#include "fuzz.h"

static EVP_PKEY *keys[2];	/* P-256, P-384 */
static int ready;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (ready)
		return 0;
	keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	FUZZ_CHECK(keys[0] != NULL && keys[1] != NULL);
	ready = 1;
	return 0;
}

static void
compare(const unsigned char *buf, size_t len)
{
	struct ck_csr *a = NULL, *b = NULL;
	int ra, rb;

	ra = ck_csr_parse(buf, len, &a);
	rb = ck_csr_parse_ex(buf, len, CK_CSR_NO_PUBKEY, &b);
	FUZZ_CHECK(ra == rb);
	if (ra == 0) {
		FUZZ_CHECK(a->pubkey != NULL);
		FUZZ_CHECK(strcmp(a->key_desc, b->key_desc) == 0);
		FUZZ_CHECK(a->spki_der_len == b->spki_der_len &&
		    memcmp(a->spki_der, b->spki_der, a->spki_der_len) == 0);
		FUZZ_CHECK(X509_NAME_cmp(a->subject, b->subject) == 0);
		FUZZ_CHECK(a->nattrs == b->nattrs);
		FUZZ_CHECK(a->names.n == b->names.n);
		FUZZ_CHECK(a->has_ku == b->has_ku && a->ku == b->ku);
		FUZZ_CHECK(a->has_bc == b->has_bc && a->bc_ca == b->bc_ca &&
		    a->bc_pathlen == b->bc_pathlen);
		FUZZ_CHECK(a->eku.n == b->eku.n);
	}
	ck_csr_free(a);
	ck_csr_free(b);
}

/* DER of the input's CSR re-signed with a fixed EC key, or NULL. */
static unsigned char *
resign(const uint8_t *data, size_t size, int *outlen)
{
	X509_REQ *req = NULL;
	const unsigned char *p = data;
	unsigned char *der = NULL;
	EVP_PKEY *key;
	BIO *bio;
	int n;

	if (size == 0 || size > CK_CSR_MAX)
		return NULL;
	if (size >= 11 && memmem(data, size, "-----BEGIN ", 11) != NULL) {
		if ((bio = BIO_new_mem_buf(data, (int)size)) == NULL)
			return NULL;
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else
		req = d2i_X509_REQ(NULL, &p, (long)size);
	if (req == NULL)
		return NULL;
	key = keys[data[size - 1] & 1];
	if (X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, (data[size - 1] & 2) ? EVP_sha384() :
	    EVP_sha256()) <= 0 || (n = i2d_X509_REQ(req, &der)) <= 0) {
		X509_REQ_free(req);
		return NULL;
	}
	X509_REQ_free(req);
	*outlen = n;
	return der;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *der;
	int len = 0;

	if (!ready)
		LLVMFuzzerInitialize(NULL, NULL);
	compare(data, size);
	if ((der = resign(data, size, &len)) != NULL) {
		compare(der, (size_t)len);
		OPENSSL_free(der);
	}
	ERR_clear_error();
	return 0;
}
