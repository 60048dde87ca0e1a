/*
 * cms.c - opening the CMS SignedData records certkeep signs with the CA key
 * (custody files, audit checkpoints): strictly, so that a record has one
 * encoding and a signature over exactly what it says.
 */
#include "x509/cms.h"

#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "common/err.h"

/* The next element of [*P, END): tag, class, content and its length;
 * *P moves past it. 0, or -1 if malformed or of indefinite length. */
static int
der_next(const unsigned char **p, const unsigned char *end, int *tag,
    int *cls, const unsigned char **content, long *len)
{
	const unsigned char *q = *p;
	int ret;

	if (q >= end)
		return -1;
	ret = ASN1_get_object(&q, len, tag, cls, end - q);
	if ((ret & 0x80) != 0 || ret == 0x21)
		return -1;
	*content = q;
	*p = q + *len;
	return 0;
}

static int
der_is_v1(const unsigned char *c, long len, int tag, int cls)
{
	return tag == V_ASN1_INTEGER && cls == V_ASN1_UNIVERSAL && len == 1 &&
	    c[0] == 1;
}

/*
 * The fields of a SignedData that its signature does not cover and
 * OpenSSL does not check: the versions of the SignedData and of each
 * SignerInfo (1: issuerAndSerialNumber, id-data). BUF is canonical DER.
 */
static int
cms_versions_ok(const unsigned char *buf, size_t len)
{
	const unsigned char *p = buf, *end = buf + len, *c, *sd, *sdend;
	const unsigned char *last = NULL, *si, *siend, *f;
	long l, lastlen = 0;
	int tag, cls, lasttag = -1;

	/* ContentInfo ::= SEQUENCE { OID, [0] EXPLICIT SignedData } */
	if (der_next(&p, end, &tag, &cls, &c, &l) != 0)
		return 0;
	p = c;
	end = c + l;
	if (der_next(&p, end, &tag, &cls, &c, &l) != 0 ||
	    der_next(&p, end, &tag, &cls, &c, &l) != 0 ||
	    cls != V_ASN1_CONTEXT_SPECIFIC || tag != 0)
		return 0;
	p = c;
	end = c + l;
	if (der_next(&p, end, &tag, &cls, &sd, &l) != 0)
		return 0;
	sdend = sd + l;
	p = sd;
	if (der_next(&p, sdend, &tag, &cls, &c, &l) != 0 ||
	    !der_is_v1(c, l, tag, cls))
		return 0;
	/* signerInfos is the last member. */
	while (p < sdend) {
		if (der_next(&p, sdend, &tag, &cls, &c, &l) != 0)
			return 0;
		last = c;
		lastlen = l;
		lasttag = cls == V_ASN1_UNIVERSAL ? tag : -1;
	}
	if (last == NULL || lasttag != V_ASN1_SET)
		return 0;
	p = last;
	end = last + lastlen;
	while (p < end) {
		if (der_next(&p, end, &tag, &cls, &si, &l) != 0)
			return 0;
		siend = si + l;
		f = si;
		if (der_next(&f, siend, &tag, &cls, &c, &l) != 0 ||
		    !der_is_v1(c, l, tag, cls))
			return 0;
	}
	return 1;
}

/* The signer's algorithms are the ones certkeep signs with: SHA-256,
 * and a signature algorithm that is the signer key's, with the
 * parameters it must have. */
static int
cms_algs_ok(CMS_SignerInfo *si)
{
	X509_ALGOR *dig = NULL, *sig = NULL;
	EVP_PKEY *pk = NULL;
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, nid, mdnid, pknid, base;

	CMS_SignerInfo_get0_algs(si, &pk, NULL, &dig, &sig);
	if (pk == NULL || dig == NULL || sig == NULL)
		return 0;
	X509_ALGOR_get0(&obj, &ptype, &pval, dig);
	if (OBJ_obj2nid(obj) != NID_sha256 || (ptype != V_ASN1_UNDEF &&
	    ptype != V_ASN1_NULL))
		return 0;
	base = EVP_PKEY_get_base_id(pk);
	X509_ALGOR_get0(&obj, &ptype, &pval, sig);
	nid = OBJ_obj2nid(obj);
	if (OBJ_find_sigid_algs(nid, &mdnid, &pknid)) {
		if (mdnid != NID_sha256 || pknid != base)
			return 0;
	} else if (nid != base)
		return 0;
	if (base == EVP_PKEY_RSA)
		return ptype == V_ASN1_NULL;
	if (base == EVP_PKEY_EC)
		return ptype == V_ASN1_UNDEF;
	return 0;
}

/* The signer is named by issuer and serial exactly as in CERT: names
 * compare case-insensitively, so a re-cased issuer would still match. */
static int
cms_sid_ok(CMS_SignerInfo *si, X509 *cert)
{
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *sno = NULL;
	const unsigned char *a, *b;
	size_t alen, blen;

	if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &sno) != 1 ||
	    keyid != NULL || issuer == NULL || sno == NULL ||
	    ASN1_INTEGER_cmp(sno, X509_get0_serialNumber(cert)) != 0)
		return 0;
	if (X509_NAME_get0_der(issuer, &a, &alen) != 1 ||
	    X509_NAME_get0_der(X509_get_issuer_name(cert), &b, &blen) != 1)
		return 0;
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* The eContentType, and the signed contentType attribute, are id-data. */
static int
cms_content_type_ok(CMS_ContentInfo *cms, CMS_SignerInfo *si)
{
	ASN1_OBJECT *ct;

	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data)
		return 0;
	ct = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_contentType),
	    -3, V_ASN1_OBJECT);
	return ct != NULL && OBJ_obj2nid(ct) == NID_pkcs7_data;
}

int
ck_cms_open(const unsigned char *buf, size_t len, size_t max,
    STACK_OF(X509) *trusted, const char *what, char **content, size_t *clen)
{
	const unsigned char *p = buf;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *signers = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	BIO *out = NULL;
	BUF_MEM *bm;
	unsigned char *der = NULL;
	char *c = NULL;
	int r, i, j, found, derlen;

	if (trusted == NULL || sk_X509_num(trusted) == 0)
		return ck_err_set(CK_E_INVAL, "%s: no trusted CA "
		    "certificate to check it against", what);
	if (len > max)
		return ck_err_set(CK_E_TOOBIG, "%s: larger than %zu bytes",
		    what, max);
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		return ck_err_set(CK_E_PARSE, "%s: not a CMS "
		    "structure (DER)", what);
	}
	if (p != buf + len) {
		r = ck_err_set(CK_E_PARSE, "%s: data after the CMS "
		    "structure", what);
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		r = ck_err_set(CK_E_PARSE, "%s: not CMS SignedData", what);
		goto out;
	}
	/* Only canonical DER: no second encoding of the same record. */
	if ((derlen = i2d_CMS_ContentInfo(cms, &der)) <= 0 ||
	    (size_t)derlen != len || memcmp(der, buf, len) != 0 ||
	    !cms_versions_ok(buf, len)) {
		r = ck_err_set(CK_E_PARSE, "%s: not the DER encoding "
		    "of a CMS SignedData certkeep writes", what);
		goto out;
	}
	sis = CMS_get0_SignerInfos(cms);
	if (sk_CMS_SignerInfo_num(sis) != 1) {
		r = ck_err_set(CK_E_BADSIG, "%s: not exactly one "
		    "signer", what);
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	/* The signer is checked below by identity with a trusted
	 * certificate, not by path validation: records must stay
	 * verifiable after the CA certificate has expired. */
	if (CMS_verify(cms, NULL, NULL, NULL, out, CMS_BINARY |
	    CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		ERR_clear_error();
		r = ck_err_set(CK_E_BADSIG, "%s: the signature does "
		    "not verify", what);
		goto out;
	}
	if ((signers = CMS_get0_signers(cms)) == NULL ||
	    sk_X509_num(signers) == 0) {
		r = ck_err_set(CK_E_BADSIG, "%s: no signer", what);
		goto out;
	}
	if (sk_X509_num(signers) != 1 ||
	    !cms_sid_ok(sk_CMS_SignerInfo_value(sis, 0),
	    sk_X509_value(signers, 0)) ||
	    !cms_content_type_ok(cms, sk_CMS_SignerInfo_value(sis, 0)) ||
	    !cms_algs_ok(sk_CMS_SignerInfo_value(sis, 0))) {
		r = ck_err_set(CK_E_BADSIG, "%s: unexpected signer "
		    "identifier, content type or algorithms in the "
		    "signature", what);
		goto out;
	}
	for (i = 0; i < sk_X509_num(signers); i++) {
		found = 0;
		for (j = 0; j < sk_X509_num(trusted); j++)
			if (X509_cmp(sk_X509_value(signers, i),
			    sk_X509_value(trusted, j)) == 0)
				found = 1;
		if (!found) {
			r = ck_err_set(CK_E_BADSIG, "%s: signed by "
			    "a certificate that is not this CA's", what);
			goto out;
		}
	}
	BIO_get_mem_ptr(out, &bm);
	if ((c = malloc(bm->length + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if (bm->length > 0)
		memcpy(c, bm->data, bm->length);
	c[bm->length] = '\0';
	*content = c;
	*clen = bm->length;
	r = 0;
out:
	OPENSSL_free(der);
	sk_X509_free(signers);
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return r;
}

