/*
 * sigcheck.c - signatures over DER held by the caller (sigcheck.h).
 *
 * XXX uses the EC_KEY/RSA APIs that OpenSSL 3 deprecates, because they
 * are the fast path on 3.0 (no provider fetch per signature); revisit when
 * the provider path catches up.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "x509/sigcheck.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "common/err.h"

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
/* EVP_get_digestbynid()'s digests are fetched again on every use. */
static EVP_MD *md_sha256, *md_sha384, *md_sha512;

static void
md_init(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
	md_sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
}

const EVP_MD *
ck_md_for(int mdnid)
{
	const EVP_MD *md = NULL;

	pthread_once(&md_once, md_init);
	if (mdnid == NID_sha256)
		md = md_sha256;
	else if (mdnid == NID_sha384)
		md = md_sha384;
	else if (mdnid == NID_sha512)
		md = md_sha512;
	return md != NULL ? md : EVP_get_digestbynid(mdnid);
}

/* The checks every signature gets before its key is used: no unused
 * bits, a known algorithm, SHA-2 or none. 0 or CK_E_BADSIG. */
static int
sig_precheck(const X509_ALGOR *sigalg, const ASN1_BIT_STRING *sig,
    const char *what, int *mdnid, int *pknid, int *ptype)
{
	int signid = OBJ_obj2nid(sigalg->algorithm);

	*mdnid = NID_undef;
	*pknid = NID_undef;
	if (sig->flags & 0x07)
		return ck_err_set(CK_E_BADSIG, "%s signature has unused bits",
		    what);
	if (!OBJ_find_sigid_algs(signid, mdnid, pknid))
		return ck_err_set(CK_E_BADSIG, "unknown %s signature "
		    "algorithm", what);
	/* SHA-2 or none (EdDSA): MD5 and SHA-1 signatures prove nothing. */
	if (*mdnid != NID_undef && *mdnid != NID_sha256 &&
	    *mdnid != NID_sha384 && *mdnid != NID_sha512)
		return ck_err_set(CK_E_BADSIG, "the %s is signed with a weak "
		    "digest (%s); use SHA-256 or better", what,
		    OBJ_nid2sn(*mdnid));
	X509_ALGOR_get0(NULL, ptype, NULL, sigalg);
	return 0;
}

/* ECDSA with the digest mdnid (checked by sig_precheck). */
static int
ec_verify(const EC_KEY *ec, int mdnid, const ASN1_BIT_STRING *sig,
    const char *what, const unsigned char *tbs, size_t tbs_len, int *ok)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const EVP_MD *evpmd;

	if ((evpmd = ck_md_for(mdnid)) == NULL ||
	    !EVP_Digest(tbs, tbs_len, md, &mdlen, evpmd, NULL))
		return ck_err_set(CK_E_BADSIG, "%s digest", what);
	/* ECDSA_verify() does not change the key; 3.0 lacks the const. */
	*ok = ECDSA_verify(0, md, (int)mdlen, sig->data, sig->length,
	    (EC_KEY *)(uintptr_t)ec) == 1;
	return 0;
}

int
ck_sig_verify_ec(const EC_KEY *ec, const X509_ALGOR *sigalg,
    const ASN1_BIT_STRING *sig, const char *what, const unsigned char *tbs,
    size_t tbs_len)
{
	int mdnid, pknid, ptype, ok = 0, r;

	if ((r = sig_precheck(sigalg, sig, what, &mdnid, &pknid, &ptype)) != 0)
		return r;
	if (pknid != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_UNDEF)
		return ck_err_set(CK_E_BADSIG, "the %s's signature algorithm "
		    "does not match its key", what);
	if ((r = ec_verify(ec, mdnid, sig, what, tbs, tbs_len, &ok)) != 0)
		return r;
	ERR_clear_error();
	return ok ? 0 : ck_err_set(CK_E_BADSIG, "%s signature does not "
	    "verify", what);
}

int
ck_sig_verify(EVP_PKEY *pk, const X509_ALGOR *sigalg,
    const ASN1_BIT_STRING *sig, const char *what, const unsigned char *tbs,
    size_t tbs_len)
{
	int mdnid, pknid, ptype, ok = 0, r;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const EVP_MD *evpmd;
	EVP_MD_CTX *ctx;

	if ((r = sig_precheck(sigalg, sig, what, &mdnid, &pknid, &ptype)) != 0)
		return r;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		if (pknid != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_UNDEF)
			goto mismatch;
		{
			const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(pk);
			if (ec == NULL)
				break;
			if ((r = ec_verify(ec, mdnid, sig, what, tbs, tbs_len,
			    &ok)) != 0)
				return r;
		}
		break;
	case EVP_PKEY_RSA:
		if (pknid != NID_rsaEncryption || (ptype != V_ASN1_NULL &&
		    ptype != V_ASN1_UNDEF))
			goto mismatch;
		if ((evpmd = ck_md_for(mdnid)) == NULL ||
		    !EVP_Digest(tbs, tbs_len, md, &mdlen, evpmd, NULL))
			return ck_err_set(CK_E_BADSIG, "%s digest", what);
		{
			RSA *rsa = EVP_PKEY_get1_RSA(pk);
			ok = rsa != NULL && RSA_verify(mdnid, md, mdlen,
			    sig->data, (unsigned)sig->length, rsa) == 1;
			RSA_free(rsa);
		}
		break;
	default:
		/* Ed25519 and anything generic: the EVP path. */
		if (pknid != EVP_PKEY_get_base_id(pk))
			goto mismatch;
		if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 &&
		    (OBJ_obj2nid(sigalg->algorithm) != NID_ED25519 ||
		    ptype != V_ASN1_UNDEF))
			goto mismatch;
		if ((ctx = EVP_MD_CTX_new()) == NULL)
			return CK_E_NOMEM;
		evpmd = mdnid == NID_undef ? NULL : ck_md_for(mdnid);
		ok = EVP_DigestVerifyInit(ctx, NULL, evpmd, NULL, pk) == 1 &&
		    EVP_DigestVerify(ctx, sig->data, (size_t)sig->length, tbs,
		    tbs_len) == 1;
		EVP_MD_CTX_free(ctx);
	}
	ERR_clear_error();
	return ok == 1 ? 0 : ck_err_set(CK_E_BADSIG, "%s signature does not "
	    "verify", what);
mismatch:
	return ck_err_set(CK_E_BADSIG, "the %s's signature algorithm does "
	    "not match its key", what);
}

int
ck_der_tlv(const unsigned char **p, long avail, int want, long *len,
    const char *what)
{
	int tag, xclass, ret;

	ret = ASN1_get_object(p, len, &tag, &xclass, avail);
	if ((ret & 0x80) || ret == 0x21 || tag != want ||
	    xclass != V_ASN1_UNIVERSAL)
		return ck_err_set(CK_E_PARSE, "malformed or truncated DER %s",
		    what);
	return 0;
}

int
ck_cert_check_issued(EVP_PKEY *pk, const unsigned char *issuer,
    size_t issuer_len, const unsigned char *der, size_t len)
{
	const unsigned char *p = der, *end = der + len, *tbs, *tend, *q;
	const unsigned char *alg_in, *alg_out;
	long l, tlen, n;
	size_t alg_len;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *sig = NULL;
	int tag, xclass, r;

	if (len > 0x7fffffff)
		return ck_err_set(CK_E_PARSE, "not a DER certificate");
	/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature } */
	if ((r = ck_der_tlv(&p, (long)len, V_ASN1_SEQUENCE, &l,
	    "certificate")) != 0)
		return r;
	if (p + l != end)
		return ck_err_set(CK_E_PARSE, "not one DER certificate");
	tbs = p;
	if ((r = ck_der_tlv(&p, end - p, V_ASN1_SEQUENCE, &tlen,
	    "certificate")) != 0)
		return r;
	tend = p + tlen;
	q = p;
	/* TBSCertificate: [0] version (optional), serial, signature, issuer */
	if (q < tend && *q == 0xa0) {
		if (ASN1_get_object(&q, &n, &tag, &xclass, tend - q) & 0x80)
			return ck_err_set(CK_E_PARSE, "not a DER certificate");
		q += n;
	}
	if ((r = ck_der_tlv(&q, tend - q, V_ASN1_INTEGER, &n,
	    "certificate")) != 0)
		return r;
	q += n;
	alg_in = q;
	if ((r = ck_der_tlv(&q, tend - q, V_ASN1_SEQUENCE, &n,
	    "certificate")) != 0)
		return r;
	q += n;
	alg_len = (size_t)(q - alg_in);
	{
		const unsigned char *name = q;
		if ((r = ck_der_tlv(&q, tend - q, V_ASN1_SEQUENCE, &n,
		    "certificate")) != 0)
			return r;
		q += n;
		if ((size_t)(q - name) != issuer_len ||
		    memcmp(name, issuer, issuer_len) != 0)
			return ck_err_set(CK_E_BADSIG, "the certificate is not "
			    "issued by this CA");
	}
	p = tend;
	/* signatureAlgorithm: the same bytes as inside the TBS */
	alg_out = p;
	if ((alg = d2i_X509_ALGOR(NULL, &p, end - p)) == NULL) {
		ERR_clear_error();
		return ck_err_set(CK_E_PARSE, "not a DER certificate");
	}
	if ((size_t)(p - alg_out) != alg_len ||
	    memcmp(alg_out, alg_in, alg_len) != 0) {
		X509_ALGOR_free(alg);
		return ck_err_set(CK_E_BADSIG, "the certificate's two signature "
		    "algorithms differ");
	}
	if ((sig = d2i_ASN1_BIT_STRING(NULL, &p, end - p)) == NULL ||
	    p != end) {
		ERR_clear_error();
		X509_ALGOR_free(alg);
		ASN1_BIT_STRING_free(sig);
		return ck_err_set(CK_E_PARSE, "not a DER certificate");
	}
	r = ck_sig_verify(pk, alg, sig, "certificate", tbs,
	    (size_t)(tend - tbs));
	X509_ALGOR_free(alg);
	ASN1_BIT_STRING_free(sig);
	return r;
}
