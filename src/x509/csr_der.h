/*
 * csr_der.h - the DER decoding behind ck_csr_parse() (see csr_der.c).
 */
#ifndef CK_X509_CSR_DER_H
#define CK_X509_CSR_DER_H

#include <stddef.h>

#include <openssl/x509.h>

struct csr_der {
	X509_NAME *subject;
	EVP_PKEY *pubkey;
	char key_desc[32];	/* "" when ck_key_describe() must say */
	X509_ALGOR *spki_alg;	/* the SubjectPublicKeyInfo as received */
	ASN1_BIT_STRING *spki_key;
	unsigned char *spki_der;	/* both re-encoded as DER */
	size_t spki_der_len;
	STACK_OF(X509_EXTENSION) *exts;	/* requested; NULL if none */
};

/*
 * Decode DER (exactly `len` bytes: no trailing data), build the key and
 * check the signature. CK_E_PARSE, CK_E_BADSIG or 0; on failure nothing
 * is left to free.
 */
int csr_der_decode(const unsigned char *der, size_t len, struct csr_der *out);

/* The caller needs no EVP_PKEY: out->pubkey may stay NULL (EC P-256 and
 * P-384 keys are then checked and used in a per-thread scratch key). */
#define CSR_DER_NO_PUBKEY 0x1u

/* csr_der_decode() with CSR_DER_* flags. */
int csr_der_decode_ex(const unsigned char *der, size_t len, unsigned flags,
    struct csr_der *out);

void csr_der_clear(struct csr_der *d);

/*
 * Decode a SubjectPublicKeyInfo (DER, exactly `len` bytes) and its key as
 * a CSR's is decoded, and describe it into `desc` ("" when
 * ck_key_describe() must say, as in struct csr_der). CK_E_PARSE for a
 * malformed SPKI or key.
 */
int csr_der_spki_describe(const unsigned char *der, size_t len, char *desc,
    size_t descsz, EVP_PKEY **key);

#endif
