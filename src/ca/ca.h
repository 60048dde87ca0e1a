/*
 * ca.h - the CA's operations, shared by the CLI and (later) the server.
 *
 * This is the registration-authority layer: it opens a CA home, enforces
 * profiles, logs to the store before the signer signs, keeps the audit log,
 * and publishes CRLs. It never touches key bytes itself: the signer does.
 *
 * A CA home (mode 0700) holds:
 *   certkeep.conf      the configuration (its history is kept in the store)
 *   store.db           the store (SQLite, WAL)
 *   private/ca.key     the CA key, encrypted PKCS#8 (scrypt), 0600
 *   ca.pem, chain.pem  the CA certificate, and it with its parents to root
 *   ca.csr             an issuing CA's request, until its certificate is
 *                      installed
 *   crl/ca.crl(.pem)   the latest CRL
 */
#ifndef CK_CA_CA_H
#define CK_CA_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ca/config.h"
#include "common/passphrase.h"
#include "store/store.h"
#include "x509/keygen.h"

#define CK_CONFIG_FILE "certkeep.conf"

struct signer;

struct ck_ca {
	char home[4096];
	struct ck_config *cfg;
	struct store *st;
	X509 *cert;		/* NULL while an issuing CA awaits it */
	STACK_OF(X509) *chain;	/* cert and its parents up to the root */
	struct signer *signer;	/* NULL until unlocked */
};

/* Build "home/name" (name from the config; absolute names kept). */
int ck_ca_path(const struct ck_ca *ca, const char *name, char *buf,
    size_t bufsz);

/*
 * Open a CA home: check its permissions, parse the configuration, open
 * the store, load the CA certificate and chain (if installed), and record
 * a changed configuration in the store and audit log.
 */
int ck_ca_open(const char *home, struct ck_ca **out);

/* Record configuration text in the store and audit log if it differs from
 * the last recorded version. */
int ck_ca_record_config(struct ck_ca *ca, const unsigned char *text,
    size_t len);

/* Decrypt the CA key (passphrase from `pass`) and start the signer. */
int ck_ca_unlock(struct ck_ca *ca, const struct ck_pass_src *pass);

/* The same with a passphrase already read (certkeepd reads it before it
 * gives up root). */
int ck_ca_unlock_with(struct ck_ca *ca, const struct ck_secret *pw);

/*
 * The same with the key in the signer process `sp` (signer_proc.h, which
 * must outlive the CA): the passphrase (or PIN) is sent to it once, and
 * the signer it unlocks becomes the CA's. certkeepd's way; the key never
 * enters this process. `pw` NULL: the signer was unlocked already
 * (certkeepd on a split home does it as root: signer_proc_unlock()).
 */
struct signer_proc;
int ck_ca_unlock_proc(struct ck_ca *ca, struct signer_proc *sp,
    const struct ck_secret *pw);

/* Close and wipe; accepts NULL. */
void ck_ca_close(struct ck_ca *ca);

/*
 * Who HOME belongs to (ck_privs_home_users), with the service user from
 * its configuration, trusted only if the configuration is the home
 * owner's (ck_fs_open_trusted); a configuration that is not, or cannot
 * be read, names no service user (*hu says: not split). CK_E_NOTFOUND
 * if there is no home or the configured user does not exist.
 */
struct ck_home_users;
int ck_ca_home_users(const char *home, struct ck_home_users *hu);

/* With ON, ck_ca_close() of an unlocked, certified CA first appends a
 * signed audit checkpoint (the command line: every command that used the
 * key leaves the log anchored). */
void ck_ca_checkpoint_on_close(int on);

/* Append to the audit log as the operating-system user. */
int ck_ca_audit(struct ck_ca *ca, const char *action, const char *object,
    const char *result, const char *detail);

struct ck_init_params {
	const char *home;
	int root;		/* 1: self-signed root; 0: issuing CA */
	const char *subject;	/* "CN=...,O=..." */
	enum ck_key_type key_type;
	uint32_t days;		/* root certificate validity */
	int path_len;		/* root: -1 for none */
	const char *base_url;	/* for CRL/OCSP/issuer URLs; may be NULL */
	const char *domain;	/* DNS/e-mail domain for the default profiles */
	const struct ck_pass_src *pass;
	int scrypt_log2n;	/* 0: default */
	const char *user;	/* run as root: the service user who will own
				 * the home (NULL: root keeps it) */
	const char *pkcs11_module; /* with pkcs11_uri: the key is in a token */
	const char *pkcs11_uri;	/* RFC 7512; NULL: a key file */
	int pkcs11_generate;	/* 1: generate it there (key_type) */
};

/* Create a new CA home. Nothing is left behind on failure. */
int ck_ca_init(const struct ck_init_params *p);

/*
 * Install an issuing CA's certificate (PEM) and its chain (PEM, parents up
 * to and including the root). The certificate must be for this CA's key,
 * be a CA certificate, and verify up the chain.
 */
int ck_ca_install(struct ck_ca *ca, const unsigned char *cert_pem,
    size_t cert_len, const unsigned char *chain_pem, size_t chain_len);

struct ck_issue_params {
	const unsigned char *csr;
	size_t csr_len;
	const char *profile;
	uint32_t days;		/* 0: the profile's maximum */
	int path_len;		/* CA profiles: -1 for the profile's maximum */
	const char *requester;	/* who asked; NULL: the OS user */
	const struct ck_profile *profile_obj; /* instead of `profile`, for
					       * certificates certkeepd makes
					       * for itself */
};

struct ck_issue_result {
	char serial[80];
	unsigned char *der;	/* caller frees (OPENSSL_free) */
	size_t der_len;
};

/*
 * Issue a certificate: check the CSR and the profile, log, sign, record.
 * A refusal returns CK_E_POLICY (or the parse error) and adds only an audit
 * entry. The CA must be unlocked.
 */
int ck_ca_issue(struct ck_ca *ca, const struct ck_issue_params *p,
    struct ck_issue_result *res);

/*
 * The phases of ck_ca_issue(), for the server's pipeline:
 *   prepare  judge the request (CSR, profile, and the narrower name rules
 *            `extra` of an API token, may be NULL), draw a serial, build
 *            the TBS; refusals are returned, not audited (see
 *            ck_ca_audit_refusal)
 *   log      record the pending row (within the caller's transaction)
 *   sign     sign; touches no store; safe on several threads at once
 *   record   mark issued and audit (or record_failed), within the
 *            caller's transaction or savepoint, which the caller rolls
 *            back if it fails
 * A job owns its CSR, TBS and, once signed, the DER.
 */
struct ck_issue_job;
struct ck_profile;
int ck_issue_prepare(struct ck_ca *ca, const struct ck_issue_params *p,
    const struct ck_profile *extra, struct ck_issue_job **out);
int ck_issue_log(struct ck_ca *ca, struct ck_issue_job *job);
int ck_issue_sign(struct ck_ca *ca, struct ck_issue_job *job);
/* sign for n jobs at once (one call to the signer process for them all),
 * each with its own outcome: rs[i], and for an error its message in
 * msgs[i] (msgsz bytes). */
void ck_issue_sign_many(struct ck_ca *ca, struct ck_issue_job *const *jobs,
    size_t n, int *rs, char *const *msgs, size_t msgsz);
int ck_issue_record(struct ck_ca *ca, struct ck_issue_job *job);
int ck_issue_record_failed(struct ck_ca *ca, struct ck_issue_job *job,
    const char *why);
/* log and record for n jobs at once (the server's group commit), all or
 * nothing, within the caller's transaction or savepoint, which the caller
 * rolls back on failure. A serial collision fails the lot: log them one
 * by one then (ck_issue_log draws again). */
int ck_issue_log_many(struct ck_ca *ca, struct ck_issue_job *const *jobs,
    size_t n);
int ck_issue_record_many(struct ck_ca *ca, struct ck_issue_job *const *jobs,
    size_t n);
const char *ck_issue_job_serial(const struct ck_issue_job *job);
const char *ck_issue_job_requester(const struct ck_issue_job *job);
/* Take the signed DER (caller frees with OPENSSL_free). */
unsigned char *ck_issue_job_take_der(struct ck_issue_job *job, size_t *len);
void ck_issue_job_free(struct ck_issue_job *job);

/* Audit a refused issuance request (requester NULL: the OS user). */
int ck_ca_audit_refusal(struct ck_ca *ca, const char *requester,
    const char *profile, const char *reason);

/* Revoke by serial with an RFC 5280 reason code. */
int ck_ca_revoke(struct ck_ca *ca, const char *serial, int reason);

/* The same on behalf of `requester` (audited as them; NULL: OS user). */
int ck_ca_revoke_as(struct ck_ca *ca, const char *requester,
    const char *serial, int reason);

/*
 * Make, record and publish (crl_file as DER, and .pem beside it) a new
 * CRL. *der (caller frees) may be NULL if not wanted.
 */
int ck_ca_crl(struct ck_ca *ca, unsigned char **der, size_t *der_len,
    uint64_t *number);

/* Write a CRL to crl_file (DER) and crl_file.pem, atomically. */
int ck_ca_crl_publish(struct ck_ca *ca, const unsigned char *der,
    size_t len);

/* PEM text of the chain (CA certificate first), new buffer. */
int ck_ca_chain_pem(const struct ck_ca *ca, char **out, size_t *outlen);

/* PEM text of one DER certificate, new buffer. */
int ck_der_to_pem(const unsigned char *der, size_t len, char **out,
    size_t *outlen);

/* Parse "CN=a,O=b" (or "/CN=a/O=b") into a name. */
int ck_dn_parse(const char *s, X509_NAME **out);

#endif
