/*
 * sigcheck.h - checking signatures over DER the caller already holds: a
 * request's or a certificate's, without building OpenSSL objects for the
 * whole structure (which costs several times the signature check).
 */
#ifndef CK_X509_SIGCHECK_H
#define CK_X509_SIGCHECK_H

#include <stddef.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* One definite-length TLV header at *P (AVAIL bytes left) whose tag is
 * WANT (universal); *P moves past it, *LEN gets the content length.
 * CK_E_PARSE "malformed or truncated DER <WHAT>" otherwise. */
int ck_der_tlv(const unsigned char **p, long avail, int want, long *len,
    const char *what);

/* The digest for a signature's digest NID; SHA-2 fetched once. */
const EVP_MD *ck_md_for(int mdnid);

/*
 * Check SIG, made with ALG, by PK over TBS. Only SHA-2 digests or EdDSA
 * (MD5 and SHA-1 signatures prove nothing); the algorithm must fit the
 * key. WHAT names the signed thing in messages ("CSR", "certificate").
 * 0 or CK_E_BADSIG.
 */
int ck_sig_verify(EVP_PKEY *pk, const X509_ALGOR *alg,
    const ASN1_BIT_STRING *sig, const char *what, const unsigned char *tbs,
    size_t tbs_len);

/* ck_sig_verify() for an EC key held as an EC_KEY (no EVP_PKEY around
 * it): the same checks, ECDSA only. */
int ck_sig_verify_ec(const EC_KEY *ec, const X509_ALGOR *alg,
    const ASN1_BIT_STRING *sig, const char *what, const unsigned char *tbs,
    size_t tbs_len);

/*
 * DER must be exactly one X.509 certificate whose issuer is ISSUER (the
 * issuer's subject as DER, compared byte for byte, as this CA writes it),
 * whose outer signature algorithm is the one inside its TBS, and whose
 * signature verifies under PK. 0, CK_E_PARSE (not such a certificate) or
 * CK_E_BADSIG. Safe to call from several threads with the same PK.
 */
int ck_cert_check_issued(EVP_PKEY *pk, const unsigned char *issuer,
    size_t issuer_len, const unsigned char *der, size_t len);

#endif
