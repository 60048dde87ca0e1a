#include "signer/signer.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "x509/keygen.h"

struct signer {
	EVP_PKEY *key;
	X509 *cert;
};

struct signer_pending {
	X509 *x;
	EVP_MD_CTX *mctx;
	unsigned char digest[32];
};

int
signer_new(EVP_PKEY *key, X509 *cert, struct signer **out)
{
	struct signer *s;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		EVP_PKEY_free(key);
		return CK_E_NOMEM;
	}
	s->key = key;
	if (cert != NULL && (r = signer_set_cert(s, cert)) != 0) {
		signer_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void
signer_free(struct signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);	/* OpenSSL cleanses key material */
	X509_free(s->cert);
	free(s);
}

int
signer_key_matches(const struct signer *s, X509 *cert)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	return pub != NULL && EVP_PKEY_eq(pub, s->key) == 1;
}

int
signer_set_cert(struct signer *s, X509 *cert)
{
	if (!signer_key_matches(s, cert))
		return ck_err_set(CK_E_INVAL, "the CA certificate does not "
		    "belong to the CA key");
	if (!X509_up_ref(cert))
		return CK_E_INTERNAL;
	X509_free(s->cert);
	s->cert = cert;
	return 0;
}

static int
tbs_digest(X509 *x, unsigned char out[32])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 32;
	int len, ok;

	if ((len = i2d_re_X509_tbs(x, &der)) <= 0)
		return ck_err_ssl(CK_E_CRYPTO, "encoding the TBS");
	ok = EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok ? 0 : ck_err_ssl(CK_E_CRYPTO, "hashing the TBS");
}

/* Put the AlgorithmIdentifier the signature will carry into the TBS now,
 * so that the digest logged before signing is the digest of what gets
 * signed. */
static int
fix_sigalg(X509 *x, EVP_MD_CTX *mctx)
{
	EVP_PKEY_CTX *pctx = EVP_MD_CTX_get_pkey_ctx(mctx);
	unsigned char aid[128];
	const unsigned char *p = aid;
	OSSL_PARAM params[2];
	X509_ALGOR *alg = NULL;
	int ok;

	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid));
	params[1] = OSSL_PARAM_construct_end();
	if (pctx == NULL || EVP_PKEY_CTX_get_params(pctx, params) != 1 ||
	    !OSSL_PARAM_modified(&params[0]))
		return ck_err_ssl(CK_E_CRYPTO, "signature algorithm id");
	if ((alg = d2i_X509_ALGOR(NULL, &p, (long)params[0].return_size)) ==
	    NULL)
		return ck_err_ssl(CK_E_CRYPTO, "signature algorithm id");
	/* The TBS signature field is reachable only as const; the object is
	 * ours and mutable. */
	ok = X509_ALGOR_copy((X509_ALGOR *)X509_get0_tbs_sigalg(x), alg);
	X509_ALGOR_free(alg);
	return ok ? 0 : CK_E_NOMEM;
}

static int
check_limits(struct signer *s, const struct ck_cert_template *t)
{
	const ASN1_TIME *na;
	int64_t ca_not_after;
	long ca_pathlen;
	time_t tt;
	struct tm tm;

	if (t->not_after <= t->not_before)
		return ck_err_set(CK_E_POLICY, "validity ends before it "
		    "starts");
	if (s->cert == NULL)
		return 0;
	na = X509_get0_notAfter(s->cert);
	if (ASN1_TIME_to_tm(na, &tm) != 1)
		return ck_err_set(CK_E_INTERNAL, "CA notAfter unreadable");
	tt = timegm(&tm);
	ca_not_after = (int64_t)tt;
	if (t->not_after > ca_not_after)
		return ck_err_set(CK_E_POLICY, "the requested validity ends "
		    "after the CA certificate expires");
	if (t->is_ca) {
		if (!(X509_get_extension_flags(s->cert) & EXFLAG_CA))
			return ck_err_set(CK_E_POLICY, "this CA may not sign "
			    "CA certificates");
		ca_pathlen = X509_get_pathlen(s->cert);
		if (ca_pathlen == 0)
			return ck_err_set(CK_E_POLICY, "this CA's path length "
			    "constraint (0) forbids subordinate CAs");
		if (ca_pathlen > 0 && (t->path_len < 0 ||
		    t->path_len >= ca_pathlen))
			return ck_err_set(CK_E_POLICY, "a subordinate CA's "
			    "path length must be below this CA's (%ld)",
			    ca_pathlen);
	}
	return 0;
}

int
signer_cert_prepare(struct signer *s, const struct ck_cert_template *t,
    int self_signed, struct signer_pending **out, unsigned char digest[32])
{
	struct signer_pending *p = NULL;
	int r;

	if (!self_signed && s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if (self_signed && !EVP_PKEY_eq(t->pubkey, s->key))
		return ck_err_set(CK_E_INVAL, "self-signed certificate for a "
		    "foreign key");
	if (!self_signed && (r = check_limits(s, t)) != 0)
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return CK_E_NOMEM;
	if ((r = ck_cert_build(t, self_signed ? NULL : s->cert, &p->x)) != 0)
		goto fail;
	if ((p->mctx = EVP_MD_CTX_new()) == NULL) {
		r = CK_E_NOMEM;
		goto fail;
	}
	if (EVP_DigestSignInit(p->mctx, NULL, ck_key_sign_md(s->key), NULL,
	    s->key) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "signature set-up");
		goto fail;
	}
	if ((r = fix_sigalg(p->x, p->mctx)) != 0 ||
	    (r = tbs_digest(p->x, p->digest)) != 0)
		goto fail;
	memcpy(digest, p->digest, 32);
	*out = p;
	return 0;
fail:
	signer_pending_free(p);
	return r;
}

int
signer_cert_sign(struct signer *s, struct signer_pending *p,
    unsigned char **der, size_t *der_len)
{
	unsigned char d2[32], *buf = NULL;
	int len, r;

	(void)s;
	if (X509_sign_ctx(p->x, p->mctx) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "signing the certificate");
		goto out;
	}
	if ((r = tbs_digest(p->x, d2)) != 0)
		goto out;
	if (memcmp(d2, p->digest, 32) != 0) {
		r = ck_err_set(CK_E_INTERNAL, "the signed TBS differs from "
		    "the logged one");
		goto out;
	}
	if ((len = i2d_X509(p->x, &buf)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the certificate");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = 0;
out:
	signer_pending_free(p);
	return r;
}

void
signer_pending_free(struct signer_pending *p)
{
	if (p == NULL)
		return;
	X509_free(p->x);
	EVP_MD_CTX_free(p->mctx);
	free(p);
}

int
signer_crl_sign(struct signer *s, const struct ck_crl_entry *entries,
    size_t n, uint64_t number, int64_t this_update, int64_t next_update,
    unsigned char **der, size_t *der_len)
{
	X509_CRL *crl = NULL;
	unsigned char *buf = NULL;
	int r, len;

	if (s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if ((r = ck_crl_build(s->cert, entries, n, number, this_update,
	    next_update, &crl)) != 0)
		return r;
	if (X509_CRL_sign(crl, s->key, ck_key_sign_md(s->key)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "signing the CRL");
		goto out;
	}
	if ((len = i2d_X509_CRL(crl, &buf)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the CRL");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = 0;
out:
	X509_CRL_free(crl);
	return r;
}

int
signer_csr_make(struct signer *s, const X509_NAME *subject,
    unsigned char **der, size_t *der_len)
{
	X509_REQ *req = NULL;
	unsigned char *buf = NULL;
	int r = CK_E_NOMEM, len;

	if ((req = X509_REQ_new()) == NULL)
		return CK_E_NOMEM;
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, subject) ||
	    !X509_REQ_set_pubkey(req, s->key))
		goto out;
	if (X509_REQ_sign(req, s->key, ck_key_sign_md(s->key)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "signing the request");
		goto out;
	}
	if ((len = i2d_X509_REQ(req, &buf)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the request");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = 0;
out:
	X509_REQ_free(req);
	return r;
}

int
signer_ocsp_sign(struct signer *s, OCSP_BASICRESP *bs)
{
	EVP_MD_CTX *mctx = NULL;
	int r;

	if (s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return CK_E_NOMEM;
	/* Our own context rather than OCSP_basic_sign(), so that a NULL
	 * digest (Ed25519) means "none" and not "the default". */
	if (EVP_DigestSignInit(mctx, NULL, ck_key_sign_md(s->key), NULL,
	    s->key) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "OCSP signature set-up");
		goto out;
	}
	if (OCSP_basic_sign_ctx(bs, s->cert, mctx, NULL,
	    OCSP_NOCERTS | OCSP_RESPID_KEY) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "signing the OCSP response");
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(mctx);
	return r;
}
