/*
 * csr_der.c - decoding a PKCS#10 request without OpenSSL 3.0's generic
 * key decoders.
 *
 * d2i_X509_REQ() decodes the public key through OSSL_DECODER, and putting
 * such a key into a certificate goes through OSSL_ENCODER: together about
 * ten times the cost of checking the request's signature. Here the request
 * is decoded with ASN.1 templates that keep the SubjectPublicKeyInfo as
 * an algorithm and a bit string; EC (P-256, P-384) and RSA keys are then
 * built directly from those bits on cached curve groups, Ed25519 keys from
 * their raw bytes, and anything else falls back to d2i_PUBKEY(). The
 * signature is checked over the exact bytes received.
 *
 * XXX uses the EC_KEY/RSA APIs that OpenSSL 3 deprecates, because they
 * are the fast path on 3.0; revisit when the provider path catches up.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "x509/csr_der.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "x509/sigcheck.h"

typedef struct {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *key;
} CK_SPKI;

typedef struct {
	ASN1_INTEGER *version;
	X509_NAME *subject;
	CK_SPKI *spki;
	STACK_OF(X509_ATTRIBUTE) *attributes;
} CK_CRI;

DECLARE_ASN1_FUNCTIONS(CK_SPKI)
DECLARE_ASN1_FUNCTIONS(CK_CRI)

ASN1_SEQUENCE(CK_SPKI) = {
	ASN1_SIMPLE(CK_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(CK_SPKI, key, ASN1_BIT_STRING)
} ASN1_SEQUENCE_END(CK_SPKI)

ASN1_SEQUENCE(CK_CRI) = {
	ASN1_SIMPLE(CK_CRI, version, ASN1_INTEGER),
	ASN1_SIMPLE(CK_CRI, subject, X509_NAME),
	ASN1_SIMPLE(CK_CRI, spki, CK_SPKI),
	ASN1_IMP_SET_OF_OPT(CK_CRI, attributes, X509_ATTRIBUTE, 0)
} ASN1_SEQUENCE_END(CK_CRI)

IMPLEMENT_ASN1_FUNCTIONS(CK_SPKI)
IMPLEMENT_ASN1_FUNCTIONS(CK_CRI)

static pthread_once_t groups_once = PTHREAD_ONCE_INIT;
static EC_GROUP *group_p256, *group_p384;

static void
groups_init(void)
{
	group_p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	group_p384 = EC_GROUP_new_by_curve_name(NID_secp384r1);
}

/*
 * A key only to check the request's signature, when the caller needs no
 * EVP_PKEY (the issuance path copies the SubjectPublicKeyInfo bytes):
 * one EC_KEY per thread and curve, its group set once, so a request costs
 * no group copy and no key objects. Freed when the thread ends.
 */
struct ec_scratch {
	EC_KEY *key[2];		/* P-256, P-384 */
	EC_POINT *pt[2];
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_ok;

static void
scratch_free(void *arg)
{
	struct ec_scratch *sc = arg;
	int i;

	for (i = 0; i < 2; i++) {
		EC_POINT_free(sc->pt[i]);
		EC_KEY_free(sc->key[i]);
	}
	free(sc);
}

static void
scratch_init(void)
{
	scratch_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* This thread's EC_KEY and point for group g (index i), or NULL. */
static EC_KEY *
scratch_get(int i, const EC_GROUP *g, EC_POINT **pt)
{
	struct ec_scratch *sc;

	pthread_once(&scratch_once, scratch_init);
	if (!scratch_ok)
		return NULL;
	if ((sc = pthread_getspecific(scratch_key)) == NULL) {
		if ((sc = calloc(1, sizeof(*sc))) == NULL)
			return NULL;
		if (pthread_setspecific(scratch_key, sc) != 0) {
			free(sc);
			return NULL;
		}
	}
	if (sc->key[i] == NULL) {
		EC_KEY *k = EC_KEY_new();
		EC_POINT *p = EC_POINT_new(g);
		if (k == NULL || p == NULL || EC_KEY_set_group(k, g) != 1) {
			EC_KEY_free(k);
			EC_POINT_free(p);
			return NULL;
		}
		sc->key[i] = k;
		sc->pt[i] = p;
	}
	*pt = sc->pt[i];
	return sc->key[i];
}

/* Check the signature with the key of `bits` on curve_nid (P-256 or
 * P-384) in this thread's scratch key; the same point checks as
 * ec_key_from_bits(). */
static int
ec_verify_bits(int curve_nid, const ASN1_BIT_STRING *bits,
    const X509_ALGOR *sigalg, const ASN1_BIT_STRING *sig,
    const unsigned char *tbs, size_t tbs_len, char *desc, size_t descsz)
{
	const EC_GROUP *g;
	EC_POINT *pt = NULL;
	EC_KEY *ec;
	int i = curve_nid == NID_X9_62_prime256v1 ? 0 : 1;

	pthread_once(&groups_once, groups_init);
	g = i == 0 ? group_p256 : group_p384;
	snprintf(desc, descsz, i == 0 ? "ec-p256" : "ec-p384");
	if (g == NULL || (ec = scratch_get(i, g, &pt)) == NULL)
		return CK_E_NOMEM;
	if (EC_POINT_oct2point(g, pt, bits->data, (size_t)bits->length,
	    NULL) != 1 || EC_POINT_is_at_infinity(g, pt) ||
	    EC_KEY_set_public_key(ec, pt) != 1)
		return ck_err_set(CK_E_PARSE, "the CSR's EC public key is not a "
		    "valid point");
	return ck_sig_verify_ec(ec, sigalg, sig, "CSR", tbs, tbs_len);
}

static int
ec_key_from_bits(int curve_nid, const ASN1_BIT_STRING *bits, EVP_PKEY **out,
    char *desc, size_t descsz)
{
	EC_GROUP *g;
	EC_KEY *ec = NULL;
	EC_POINT *pt = NULL;
	EVP_PKEY *pk = NULL;
	int r = CK_E_PARSE;

	pthread_once(&groups_once, groups_init);
	if (curve_nid == NID_X9_62_prime256v1) {
		g = group_p256;
		snprintf(desc, descsz, "ec-p256");
	} else {
		g = group_p384;
		snprintf(desc, descsz, "ec-p384");
	}
	if (g == NULL)
		return CK_E_CRYPTO;
	if ((ec = EC_KEY_new()) == NULL || EC_KEY_set_group(ec, g) != 1 ||
	    (pt = EC_POINT_new(g)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	/* oct2point checks that the point is on the curve; with cofactor 1
	 * (P-256, P-384) that is all there is to check but infinity. */
	if (EC_POINT_oct2point(g, pt, bits->data, (size_t)bits->length,
	    NULL) != 1 || EC_POINT_is_at_infinity(g, pt) ||
	    EC_KEY_set_public_key(ec, pt) != 1) {
		r = ck_err_set(CK_E_PARSE, "the CSR's EC public key is not a "
		    "valid point");
		goto out;
	}
	if ((pk = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_EC_KEY(pk, ec) !=
	    1) {
		r = CK_E_NOMEM;
		goto out;
	}
	ec = NULL;
	*out = pk;
	pk = NULL;
	r = 0;
out:
	EVP_PKEY_free(pk);
	EC_POINT_free(pt);
	EC_KEY_free(ec);
	return r;
}

static int
rsa_key_from_bits(const ASN1_BIT_STRING *bits, EVP_PKEY **out, char *desc,
    size_t descsz)
{
	const unsigned char *p = bits->data;
	RSA *rsa;
	EVP_PKEY *pk;

	rsa = d2i_RSAPublicKey(NULL, &p, bits->length);
	if (rsa == NULL || p != bits->data + bits->length) {
		RSA_free(rsa);
		return ck_err_set(CK_E_PARSE, "the CSR's RSA public key is "
		    "malformed");
	}
	{
		const BIGNUM *e = NULL;
		RSA_get0_key(rsa, NULL, &e, NULL);
		if (e == NULL || !BN_is_odd(e) || BN_is_one(e)) {
			RSA_free(rsa);
			return ck_err_set(CK_E_PARSE, "the CSR's RSA public "
			    "exponent must be odd and at least 3");
		}
	}
	if (RSA_bits(rsa) > 16384) {
		RSA_free(rsa);
		return ck_err_set(CK_E_PARSE, "RSA key of %d bits is too "
		    "large", RSA_bits(rsa));
	}
	snprintf(desc, descsz, "rsa%d", RSA_bits(rsa));
	if ((pk = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_RSA(pk, rsa) !=
	    1) {
		EVP_PKEY_free(pk);
		RSA_free(rsa);
		return CK_E_NOMEM;
	}
	*out = pk;
	return 0;
}

/* The key of the SPKI, with a description as ck_key_describe() gives. */
static int
spki_key(const CK_SPKI *spki, const unsigned char *spki_der, long spki_len,
    EVP_PKEY **out, char *desc, size_t descsz)
{
	int nid = OBJ_obj2nid(spki->alg->algorithm);
	const ASN1_OBJECT *pobj;
	const void *pval;
	const unsigned char *p;
	int ptype;

	if (spki->key->flags & 0x07)
		return ck_err_set(CK_E_PARSE, "the CSR's public key has unused "
		    "bits");
	X509_ALGOR_get0(&pobj, &ptype, &pval, spki->alg);
	if (nid == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT) {
		int curve = OBJ_obj2nid(pval);
		if (curve == NID_X9_62_prime256v1 || curve == NID_secp384r1)
			return ec_key_from_bits(curve, spki->key, out, desc,
			    descsz);
	} else if (nid == NID_rsaEncryption &&
	    (ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF))
		return rsa_key_from_bits(spki->key, out, desc, descsz);
	else if (nid == NID_ED25519 && ptype == V_ASN1_UNDEF) {
		if (spki->key->length != 32)
			return ck_err_set(CK_E_PARSE, "malformed Ed25519 key");
		if ((*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
		    spki->key->data, 32)) == NULL)
			return ck_err_ssl(CK_E_PARSE, "Ed25519 key");
		snprintf(desc, descsz, "ed25519");
		return 0;
	}
	/* A curve must be named: explicit parameters (RFC 5480 forbids
	 * them in certificates) would be copied into the certificate. */
	if (nid == NID_X9_62_id_ecPublicKey && ptype != V_ASN1_OBJECT)
		return ck_err_set(CK_E_PARSE, "the CSR's EC key must name its "
		    "curve (explicit curve parameters are not accepted)");
	/* Any other key: the generic (slow) decoder. */
	p = spki_der;
	if ((*out = d2i_PUBKEY(NULL, &p, spki_len)) == NULL)
		return ck_err_ssl(CK_E_PARSE, "the CSR's public key cannot be "
		    "decoded");
	desc[0] = '\0';		/* the caller describes it */
	return 0;
}

int
csr_der_spki_describe(const unsigned char *der, size_t len, char *desc,
    size_t descsz, EVP_PKEY **key)
{
	const unsigned char *p = der;
	CK_SPKI *spki = NULL;
	int r;

	*key = NULL;
	if (len > 0x7fffffff)
		return ck_err_set(CK_E_TOOBIG, "SubjectPublicKeyInfo too large");
	if ((spki = d2i_CK_SPKI(NULL, &p, (long)len)) == NULL ||
	    p != der + len)
		r = ck_err_ssl(CK_E_PARSE, "malformed SubjectPublicKeyInfo");
	else
		r = spki_key(spki, der, (long)len, key, desc, descsz);
	CK_SPKI_free(spki);
	return r;
}

int
csr_der_decode(const unsigned char *der, size_t len, struct csr_der *out)
{
	return csr_der_decode_ex(der, len, 0, out);
}

/* The curve of an SPKI that ec_verify_bits() handles, or NID_undef. */
static int
spki_fast_curve(const CK_SPKI *spki)
{
	const ASN1_OBJECT *pobj;
	const void *pval;
	int ptype, curve;

	if (OBJ_obj2nid(spki->alg->algorithm) != NID_X9_62_id_ecPublicKey ||
	    (spki->key->flags & 0x07))
		return NID_undef;
	X509_ALGOR_get0(&pobj, &ptype, &pval, spki->alg);
	if (ptype != V_ASN1_OBJECT)
		return NID_undef;
	curve = OBJ_obj2nid(pval);
	return curve == NID_X9_62_prime256v1 || curve == NID_secp384r1 ?
	    curve : NID_undef;
}

int
csr_der_decode_ex(const unsigned char *der, size_t len, unsigned flags,
    struct csr_der *out)
{
	int curve;
	const unsigned char *p = der, *end = der + len, *cri, *q;
	const unsigned char *spki_start;
	CK_CRI *info = NULL;
	X509_ALGOR *sigalg = NULL;
	ASN1_BIT_STRING *sig = NULL;
	unsigned char *spki_der = NULL;
	long l, cri_len;
	int spki_len, r, i;

	memset(out, 0, sizeof(*out));
	if (len > 0x7fffffff)
		return ck_err_set(CK_E_TOOBIG, "CSR too large");
	/* CertificationRequest ::= SEQUENCE { info, algorithm, signature } */
	if ((r = ck_der_tlv(&p, (long)len, V_ASN1_SEQUENCE, &l, "CSR")) != 0)
		return r;
	if (p + l != end)
		return ck_err_set(CK_E_PARSE, p + l < end ? "CSR has %ld bytes "
		    "of trailing data" : "malformed or truncated DER CSR",
		    (long)(end - (p + l)));
	cri = p;
	q = p;
	if ((r = ck_der_tlv(&q, (long)(end - p), V_ASN1_SEQUENCE, &l,
	    "CSR")) != 0)
		return r;
	cri_len = (long)(q - cri) + l;
	q = cri;
	if ((info = d2i_CK_CRI(NULL, &q, cri_len)) == NULL ||
	    q != cri + cri_len) {
		r = ck_err_ssl(CK_E_PARSE, "malformed CSR request info");
		goto out;
	}
	if (ASN1_INTEGER_get(info->version) != 0) {
		r = ck_err_set(CK_E_PARSE, "unknown CSR version");
		goto out;
	}
	p = q;
	if ((sigalg = d2i_X509_ALGOR(NULL, &p, (long)(end - p))) == NULL ||
	    (sig = d2i_ASN1_BIT_STRING(NULL, &p, (long)(end - p))) == NULL ||
	    p != end) {
		r = ck_err_ssl(CK_E_PARSE, "malformed CSR signature");
		goto out;
	}
	/* The SPKI as received, for the slow fallback and for copying. */
	if ((spki_len = i2d_CK_SPKI(info->spki, &spki_der)) <= 0) {
		r = CK_E_NOMEM;
		goto out;
	}
	spki_start = spki_der;
	if ((flags & CSR_DER_NO_PUBKEY) &&
	    (curve = spki_fast_curve(info->spki)) != NID_undef) {
		if ((r = ec_verify_bits(curve, info->spki->key, sigalg, sig,
		    cri, (size_t)cri_len, out->key_desc,
		    sizeof(out->key_desc))) != 0)
			goto out;
	} else if ((r = spki_key(info->spki, spki_start, spki_len,
	    &out->pubkey, out->key_desc, sizeof(out->key_desc))) != 0 ||
	    (r = ck_sig_verify(out->pubkey, sigalg, sig, "CSR", cri,
	    (size_t)cri_len)) != 0)
		goto out;
	/* extensionRequest, if any (at most one). */
	for (i = 0; i < sk_X509_ATTRIBUTE_num(info->attributes); i++) {
		X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(info->attributes, i);
		ASN1_TYPE *t;
		const unsigned char *ep;
		if (OBJ_obj2nid(X509_ATTRIBUTE_get0_object(a)) !=
		    NID_ext_req)
			continue;
		if (out->exts != NULL || X509_ATTRIBUTE_count(a) != 1 ||
		    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL ||
		    t->type != V_ASN1_SEQUENCE) {
			r = ck_err_set(CK_E_PARSE, "malformed extension "
			    "request in the CSR");
			goto out;
		}
		ep = t->value.sequence->data;
		out->exts = d2i_X509_EXTENSIONS(NULL, &ep,
		    t->value.sequence->length);
		if (out->exts == NULL || ep != t->value.sequence->data +
		    t->value.sequence->length) {
			r = ck_err_ssl(CK_E_PARSE, "malformed extension "
			    "request in the CSR");
			goto out;
		}
	}
	out->subject = info->subject;
	info->subject = NULL;
	out->spki_alg = info->spki->alg;
	info->spki->alg = NULL;
	out->spki_key = info->spki->key;
	info->spki->key = NULL;
	out->spki_der = spki_der;
	out->spki_der_len = (size_t)spki_len;
	spki_der = NULL;
	r = 0;
out:
	if (r != 0)
		csr_der_clear(out);
	OPENSSL_free(spki_der);
	ASN1_BIT_STRING_free(sig);
	X509_ALGOR_free(sigalg);
	CK_CRI_free(info);
	ERR_clear_error();
	return r;
}

void
csr_der_clear(struct csr_der *d)
{
	EVP_PKEY_free(d->pubkey);
	X509_NAME_free(d->subject);
	X509_ALGOR_free(d->spki_alg);
	ASN1_BIT_STRING_free(d->spki_key);
	OPENSSL_free(d->spki_der);
	sk_X509_EXTENSION_pop_free(d->exts, X509_EXTENSION_free);
	memset(d, 0, sizeof(*d));
}
