/*
 * signer.h - the only code that touches the CA's private key.
 *
 * Two forms behind one interface of plain structs and DER: the signer in
 * this process (signer_new: the command line's offline commands), and a
 * signer whose key lives in certkeepd's signer process
 * (signer_new_remote, signer_proc.h), to which every call below becomes
 * a typed request. Either way the signer builds every TBSCertificate
 * itself from a template and re-checks what no caller may override:
 * validity within its own certificate's, path length below its own
 * constraint (and, in the signer process, everything its own copy of the
 * profile says: docs/signer.md).
 *
 * The signer also chooses every serial number (16 random octets, made
 * positive): a caller that could choose it could give two certificates
 * one serial, and revoking one would revoke both.
 *
 * Issuance is two steps so that the store can log before signing:
 *   signer_cert_prepare() -> TBS digest and serial (log them durably) ->
 *   signer_cert_sign()    -> certificate DER, whose TBS digest is checked
 *                            against the prepared one before release.
 */
#ifndef CK_SIGNER_SIGNER_H
#define CK_SIGNER_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "signer/signer_msg.h"
#include "x509/certbuild.h"

struct signer;
struct signer_pending;

/*
 * New signer holding `key` (ownership passes to the signer, also on
 * failure) and, if not NULL, the CA certificate `cert` (a reference is
 * taken). CK_E_INVAL if the certificate does not belong to the key.
 */
int signer_new(EVP_PKEY *key, X509 *cert, struct signer **out);

/*
 * A signer whose key is in the signer process `sp` (signer_proc.h, which
 * must outlive it), already unlocked; `cert` is the CA certificate (a
 * reference is taken). Every function below then sends a request; those
 * the signer process does not take (self-signed certificates, requests,
 * a new certificate) fail with CK_E_STATE.
 */
struct signer_proc;
int signer_new_remote(struct signer_proc *sp, X509 *cert,
    struct signer **out);

/* Wipe and free; accepts NULL. */
void signer_free(struct signer *s);

/* Install (or replace) the CA certificate; it must match the key. */
int signer_set_cert(struct signer *s, X509 *cert);

/*
 * 1 if the signer can sign; 0 in the "signer unavailable" state of a key
 * in a PKCS#11 token that failed (reason into `why`, may be NULL), which
 * lasts until the token is back: a signature attempt or a probe reloads
 * it, at most once a second. With `probe`, check the token now (a test
 * signature, or a reload when unavailable). A software key: always 1.
 * Safe from any thread. Signing while unavailable fails with CK_E_CRYPTO
 * and "signer unavailable: ...".
 */
int signer_available(struct signer *s, int probe, char *why, size_t whysz);

/* 1 if `cert`'s public key is the signer's key. */
int signer_key_matches(const struct signer *s, X509 *cert);

/*
 * Build the TBS for `t` (issued by the signer's certificate, or
 * self-signed when `self_signed`) with a serial number the signer draws
 * (signer_pending_serial()), fix the signature algorithm and return the
 * SHA-256 of the TBS DER. t->serial must be NULL (CK_E_INVAL otherwise:
 * nobody but the signer chooses serials). *out is released by
 * signer_cert_sign() or signer_pending_free().
 */
int signer_cert_prepare(struct signer *s, const struct ck_cert_template *t,
    int self_signed, struct signer_pending **out, unsigned char digest[32]);

/*
 * signer_cert_sign() for n certificates at once (at most
 * SIGNER_SIGN_MANY_MAX), each with its own outcome: der (OPENSSL_free)
 * and len, or r and msg. With the signer process, the cert-issue requests
 * go in one write and their replies come back together; the signer judges
 * each on its own, exactly as one at a time. Every p[i] is released.
 */
#define SIGNER_SIGN_MANY_MAX 64
struct signer_signed {
	unsigned char *der;
	size_t len;
	int r;
	char msg[SIGNER_ERRMSG_MAX];
};
void signer_cert_sign_many(struct signer *s, struct signer_pending **p,
    size_t n, struct signer_signed *out);

/*
 * signer_cert_prepare() (not self-signed) writing the TBS straight to DER
 * (ck_cert_tbs_der), for the issuance path: the same certificate at a
 * fraction of the cost. Falls back to signer_cert_prepare() when the
 * template has no SubjectPublicKeyInfo DER or the CA certificate no
 * subject key identifier. EC and RSA keys then sign the digest with
 * reused contexts. The result is signed with signer_cert_sign(), which
 * checks the TBS against the digest before it signs.
 */
int signer_cert_prepare_der(struct signer *s,
    const struct ck_cert_template *t, struct signer_pending **out,
    unsigned char digest[32]);

/*
 * In the signer process, for cert-issue: build the TBS of `t` with
 * `serial` (content octets, reserved by the caller) as
 * signer_cert_prepare_der() would, and sign it only if its SHA-256 is
 * `digest` (what the service logged). *der caller frees. CK_E_STATE
 * without the TBS-to-DER path (signer_sigalg() says 0).
 */
int signer_cert_issue_der(struct signer *s, const struct ck_cert_template *t,
    const unsigned char *serial, size_t serial_len,
    const unsigned char digest[32], unsigned char **der, size_t *der_len);

/* The AlgorithmIdentifier (DER) of the signer's TBS-to-DER path: its
 * length and *der, or 0 if it has none (or the key is in the signer
 * process); `issuer` gets the SHA-256 of the issuer's name and key
 * identifier as that path writes them. */
size_t signer_sigalg(const struct signer *s, const unsigned char **der,
    unsigned char issuer[32]);

/* Sign a prepared certificate; always consumes `p`. *der caller frees. */
int signer_cert_sign(struct signer *s, struct signer_pending *p,
    unsigned char **der, size_t *der_len);

void signer_pending_free(struct signer_pending *p);

/* The serial number the signer chose for a prepared certificate, in the
 * stored hex form (x509/serial.h); valid as long as `p`. */
const char *signer_pending_serial(const struct signer_pending *p);

/* The same serial as the INTEGER's minimal content octets: *len of them
 * (at most 20) at *octets, valid as long as `p`. */
void signer_pending_serial_octets(const struct signer_pending *p,
    const unsigned char **octets, size_t *len);

/* Build and sign a CRL; *der caller frees. */
int signer_crl_sign(struct signer *s, const struct ck_crl_entry *entries,
    size_t n, uint64_t number, int64_t this_update, int64_t next_update,
    unsigned char **der, size_t *der_len);

/* A PKCS#10 request for the signer's own key (issuing CA set-up). */
int signer_csr_make(struct signer *s, const X509_NAME *subject,
    unsigned char **der, size_t *der_len);

/*
 * Sign a BasicOCSPResponse that the OCSP responder (src/proto/ocsp.c) has
 * filled with its SingleResponses and extensions: sets producedAt to now,
 * the responder ID to the SHA-1 hash of the signer's key (byKey), and
 * signs with the signer's key and ck_key_sign_md() (RSA, EC P-256/P-384,
 * Ed25519). The signer is the CA itself, or a delegated responder (a
 * signer holding the responder key and its certificate, RFC 6960 section
 * 4.2.2.2). With `with_cert` the signer's certificate goes into `certs`,
 * as a delegated responder's must for clients to find it; without, no
 * certificates are included (the CA signing its own responses).
 * CK_E_STATE if the signer has no certificate yet. Safe to call from
 * several threads at once as long as signer_set_cert() is not called
 * meanwhile.
 *
 * With a signer process, *bs is replaced: its SingleResponses (CertIDs,
 * statuses, revocation times and reasons, thisUpdate/nextUpdate) and its
 * nonce go as a structured request (nothing else may be in it), and the
 * signer process builds and signs the response itself, re-checking that
 * the CertIDs with a status other than unknown name its CA. (A delegated
 * responder's key need not move: it is not the CA's.)
 */
int signer_ocsp_sign(struct signer *s, OCSP_BASICRESP **bs, int with_cert);

/*
 * The subject of the delegated OCSP responder certificate certkeepd makes
 * for the CA certificate `ca`: its subject with the CN replaced by "OCSP
 * responder for <CN>" (cut to the 64 characters a CN may have, at a
 * character boundary). The signer process signs no other subject for
 * such a certificate. 0 or CK_E_NOMEM.
 */
int signer_ocsp_responder_subject(const X509 *ca, X509_NAME **out);

/*
 * signer_cert_prepare() for a delegated OCSP responder certificate issued
 * by the signer's certificate: the template must be a leaf with keyUsage
 * digitalSignature alone and the single extended key usage OCSPSigning
 * (else CK_E_INVAL), and the id-pkix-ocsp-nocheck extension (RFC 6960
 * section 4.2.2.2.1) is added to what it builds; the digest covers it.
 * Sign with signer_cert_sign() as any other prepared certificate.
 */
int signer_ocsp_cert_prepare(struct signer *s,
    const struct ck_cert_template *t, struct signer_pending **out,
    unsigned char digest[32]);

/*
 * Sign DATA as CMS SignedData with the content attached (DER), SHA-256,
 * the signer's key and certificate (included, with the certificates of
 * CHAIN, which may be NULL or hold the signer's own). *der (caller frees
 * with OPENSSL_free) gets the encoding. CK_E_STATE if the signer has no
 * certificate yet or its key cannot make CMS signatures with OpenSSL 3.0
 * (Ed25519).
 */
int signer_cms_sign(struct signer *s, const unsigned char *data, size_t len,
    STACK_OF(X509) *chain, unsigned char **der, size_t *derlen);

#endif
