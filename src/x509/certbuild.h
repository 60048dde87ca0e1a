/*
 * certbuild.h - building TBSCertificates and CRLs from plain structs.
 *
 * These functions never sign: the signer (src/signer) takes the result,
 * fixes the signature algorithm, logs, and signs. Keeping the building here
 * and the key there is what lets the signer move into its own process.
 */
#ifndef CK_X509_CERTBUILD_H
#define CK_X509_CERTBUILD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/strutil.h"
#include "x509/names.h"

/* RFC 5280 KeyUsage bit numbers. */
enum ck_ku {
	CK_KU_DIGITAL_SIGNATURE,
	CK_KU_NON_REPUDIATION,
	CK_KU_KEY_ENCIPHERMENT,
	CK_KU_DATA_ENCIPHERMENT,
	CK_KU_KEY_AGREEMENT,
	CK_KU_KEY_CERT_SIGN,
	CK_KU_CRL_SIGN,
	CK_KU_ENCIPHER_ONLY,
	CK_KU_DECIPHER_ONLY,
	CK_KU__MAX
};

/* "digitalSignature", ...; ck_ku_parse() returns the bit or -1. */
const char *ck_ku_name(enum ck_ku bit);
int ck_ku_parse(const char *name);

/* 1 if `name` is an extended key usage certkeep can put in a cert
 * (serverAuth, clientAuth, codeSigning, emailProtection, timeStamping,
 * OCSPSigning, or a dotted OID). */
int ck_eku_valid(const char *name);

struct ck_cert_template {
	const X509_NAME *subject;
	EVP_PKEY *pubkey;
	/* The SubjectPublicKeyInfo to copy as is (from a CSR), or NULL to
	 * encode `pubkey` (slow with OpenSSL 3.0's encoders). */
	const X509_ALGOR *spki_alg;
	const ASN1_BIT_STRING *spki_key;
	/* The same SubjectPublicKeyInfo as DER, for ck_cert_tbs_der(). */
	const unsigned char *spki_der;
	size_t spki_der_len;
	const ASN1_INTEGER *serial;
	int64_t not_before;
	int64_t not_after;
	int is_ca;
	int path_len;		/* -1: no pathLenConstraint */
	unsigned ku;		/* bits of enum ck_ku; 0 omits the extension */
	const struct ck_strlist *eku; /* NULL or empty omits it */
	const struct ck_names *sans;  /* NULL or empty omits it */
	const char *crl_url;	/* NULL omits CRL distribution points */
	const char *ocsp_url;	/* NULL/"" omit from AIA */
	const char *issuer_url;
	/* For a signer in its own process, which rules judge the request:
	 * the profile's name, or certkeepd's own TLS certificate. */
	const char *profile;
	int service_tls;
};

/*
 * Build an unsigned v3 certificate. `issuer` is the CA certificate, or
 * NULL for a self-signed one (the issuer is then the subject and the AKI
 * is the certificate's own key id). *out is owned by the caller.
 */
int ck_cert_build(const struct ck_cert_template *t, X509 *issuer, X509 **out);

/* What a TBS needs of its issuer, encoded once per CA certificate. */
struct ck_tbs_issuer {
	unsigned char *name_der;	/* the issuer's subject, DER */
	size_t name_len;
	unsigned char skid[64];		/* its subject key identifier */
	size_t skid_len;
};

/* Fill `iss` from the CA certificate; CK_E_INVAL if it has no subject key
 * identifier. Free with ck_tbs_issuer_clear() (accepts a cleared one). */
int ck_tbs_issuer_init(struct ck_tbs_issuer *iss, X509 *issuer);
void ck_tbs_issuer_clear(struct ck_tbs_issuer *iss);

/*
 * Encode the TBSCertificate of `t` issued by `iss` straight to DER: the
 * same bytes as ck_cert_build() with that issuer followed by setting the
 * signature algorithm to `sigalg` (a DER AlgorithmIdentifier), at a
 * fraction of the cost. Needs t->spki_der and t->spki_key (a key from a
 * CSR); self-signed certificates go through ck_cert_build(). *out (caller
 * frees with OPENSSL_free) gets the DER.
 */
int ck_cert_tbs_der(const struct ck_cert_template *t,
    const struct ck_tbs_issuer *iss, const unsigned char *sigalg,
    size_t sigalg_len, unsigned char **out, size_t *outlen);

/* DER length octets: how many `n` takes, and writing them at `p`. */
size_t ck_der_len_size(size_t n);
void ck_der_len_write(unsigned char *p, size_t n);

struct ck_crl_entry {
	const char *serial_hex;
	int64_t revoked_at;
	int reason;		/* RFC 5280 CRLReason */
};

/*
 * Build an unsigned v2 CRL with CRL number, AKI, thisUpdate and
 * nextUpdate, one entry per revocation (reason omitted when unspecified).
 */
int ck_crl_build(X509 *issuer, const struct ck_crl_entry *entries,
    size_t n, uint64_t number, int64_t this_update, int64_t next_update,
    X509_CRL **out);

/* RFC 5280 reason names: "unspecified", "keyCompromise", ... (code 7 is
 * unused). ck_crl_reason_parse() returns the code or -1. */
const char *ck_crl_reason_name(int code);
int ck_crl_reason_parse(const char *name);

/* 1 if `code` is a CRLReason of RFC 5280 (0-10 but the unused 7), for a
 * CRL entry or an OCSP revocation alike; 0 if not. */
int ck_crl_reason_valid(int code);

#endif
