/*
 * config.h - the CA home's configuration file (INI, parsed by inih).
 *
 *   [ca]           key_file, cert_file, chain_file, csr_file, crl_file,
 *                  crl_url, ocsp_url, issuer_url, crl_validity_hours,
 *                  key_uri and pkcs11_module (a key in a PKCS#11 token,
 *                  RFC 7512 URI, used instead of key_file); unlock_shares,
 *                  unlock_set, unlock_key_fingerprint (the key file opens
 *                  only with M of N custodians' shares, set by
 *                  `certkeep key protect`)
 *   [store]        backend (sqlite), path
 *   [server]       api_listen, http_listen (ADDR:PORT, "" to disable),
 *                  tls_names, tls_cert, tls_key, threads, signers,
 *                  max_connections, max_per_ip, timeout, max_body, user,
 *                  client_cert_profiles, ocsp_validity_hours,
 *                  ocsp_signer, ocsp_signer_validity_hours, ocsp_cert,
 *                  ocsp_key
 *   [backup]       to, recipients (comma-separated), keep_last, daily,
 *                  weekly, monthly, zstd_level
 *   [acme]         enabled, profile, days, eab_required, dns_servers,
 *                  http01_port, tlsalpn01_port, validation_timeout,
 *                  caa_identity, orders_per_hour, certs_per_name_per_week,
 *                  ari_percent, validation_allow_loopback
 *   [audit]        checkpoint_interval (seconds, 0: only at start and
 *                  stop), syslog (true: certkeepd sends every entry to
 *                  syslog, facility authpriv), syslog_socket (the local
 *                  datagram socket syslog listens on, /dev/log)
 *   [signer]       mode, seccomp, threads (see below)
 *   [profile.NAME] see profile.h
 *
 * OCSP signing ([server]): ocsp_signer = ca (the default) signs every
 * response with the CA key. ocsp_signer = delegated signs them with a
 * delegated responder certificate (RFC 6960 section 4.2.2.2): the one in
 * ocsp_cert with its unencrypted PEM key ocsp_key (0600), issued by this
 * CA for id-kp-OCSPSigning; or, without those, one certkeepd issues itself
 * at each start for a fresh key that exists only in memory, valid for
 * ocsp_signer_validity_hours (default 48, at least twice
 * ocsp_validity_hours, so that no response outlives its signer) and
 * renewed at half its life.
 *
 * Relative paths are relative to the CA home. Unknown sections and keys
 * are errors: a typo must not silently weaken a profile.
 */
#ifndef CK_CA_CONFIG_H
#define CK_CA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

#define CK_CONFIG_MAX (1024u * 1024)
#define CK_CONFIG_MAX_PROFILES 64
#define CK_CONFIG_STR 512

struct ck_listen {
	char addr[64];		/* "" when disabled */
	uint16_t port;
};

/* Who signs OCSP responses. */
enum ck_ocsp_signer {
	CK_OCSP_SIGNER_CA,		/* the CA key */
	CK_OCSP_SIGNER_DELEGATED,	/* a delegated responder certificate */
	CK_OCSP_SIGNER__MAX
};

/* "ca", "delegated"; "unknown" for anything else. */
const char *ck_ocsp_signer_name(enum ck_ocsp_signer s);

struct ck_server_config {
	struct ck_listen api;	/* HTTPS: REST enrollment */
	struct ck_listen http;	/* HTTP: CRL, OCSP, CA certificate, health */
	char tls_names[CK_CONFIG_STR]; /* names in certkeepd's own TLS cert */
	char tls_cert[CK_CONFIG_STR];  /* operator-provided instead */
	char tls_key[CK_CONFIG_STR];
	unsigned threads;	/* HTTP threads per listener */
	unsigned signers;	/* signing threads */
	unsigned max_connections;
	unsigned max_per_ip;
	unsigned timeout_s;
	size_t max_body;
	char user[64];		/* service user when started as root */
	char client_cert_profiles[CK_CONFIG_STR];
	uint32_t ocsp_validity_s;
	enum ck_ocsp_signer ocsp_signer;
	uint32_t ocsp_signer_validity_s; /* self-issued responder cert */
	char ocsp_cert[CK_CONFIG_STR];	/* operator-provided responder cert */
	char ocsp_key[CK_CONFIG_STR];	/* and its key (PEM, 0600) */
};

/* [backup]: what 'certkeep backup' does when its options do not say. */
struct ck_backup_config {
	char to[CK_CONFIG_STR];		/* comma-separated directories */
	char recipients[CK_CONFIG_STR];	/* comma-separated certificate files */
	unsigned keep_last, daily, weekly, monthly;
	int zstd_level;			/* 0: default */
};

/*
 * [acme]: the ACME server on the API listener (src/proto/acme.h).
 * Validation goes to the DNS servers named here (none: the first
 * "nameserver" of /etc/resolv.conf at start) and to the http-01 and
 * tls-alpn-01 ports named here (80 and 443 unless set: tests and closed
 * networks move them). caa_identity "" skips CAA checking; a public CA
 * names its domain (RFC 8659). Rate limits of 0 are off.
 */
struct ck_acme_config {
	int enabled;			/* default 1 */
	char profile[64];		/* default "tls-server" */
	uint32_t days;			/* 0: the profile's maximum */
	int eab_required;		/* newAccount needs a binding */
	char dns_servers[CK_CONFIG_STR]; /* "ADDR[:PORT], ..." */
	uint16_t http01_port;
	uint16_t tlsalpn01_port;
	unsigned validation_timeout_s;
	int validation_allow_loopback;	/* default 0 */
	char caa_identity[256];
	unsigned orders_per_hour;	/* per account */
	unsigned certs_per_name_per_week;
	unsigned ari_percent;		/* renewal window start, % of life */
};

struct ck_audit_config {
	unsigned checkpoint_interval_s;	/* default 300 */
	int syslog;			/* default 1 */
	char syslog_socket[108];	/* default "/dev/log" */
};

/*
 * [signer]: certkeepd's signer process (docs/signer.md): the key lives
 * only in a separate, sandboxed process (certkeepd --signer-inprocess,
 * a flag for benchmarks, is the only way to keep it in the service; the
 * CLI always signs in-process). seccomp = kill (default) or log (report
 * a forbidden system call on stderr and fail it instead of killing: for
 * debugging a new libc or PKCS#11 module). threads: signing threads in the signer
 * process (0: one per CPU). allow_ca = yes lets the signer process sign
 * CA:TRUE certificates under a CA profile (default no: a compromised
 * service process could otherwise mint a subordinate CA; issue those
 * offline with the CLI while certkeepd is stopped). timeout: seconds a
 * request may wait for the signer's answer (default 30, for slow tokens);
 * then the signer is taken for dead (fail closed).
 */
enum ck_seccomp_mode { CK_SECCOMP_KILL, CK_SECCOMP_LOG, CK_SECCOMP__MAX };

struct ck_signer_config {
	enum ck_seccomp_mode seccomp;
	unsigned threads;
	int allow_ca;			/* default 0 */
	unsigned timeout_s;		/* default 30 */
};

struct ck_config {
	char key_file[CK_CONFIG_STR];
	char key_uri[CK_CONFIG_STR];	/* "": the key is in key_file */
	char pkcs11_module[CK_CONFIG_STR];
	/* M-of-N unlock (src/keystore/unlock.h): "M/N", the share set's id
	 * (32 hex digits) and the key's fingerprint (64); all "" when the
	 * key file has a passphrase. */
	char unlock_shares[16];
	char unlock_set[33];
	char unlock_key_fingerprint[65];
	char cert_file[CK_CONFIG_STR];
	char chain_file[CK_CONFIG_STR];
	char csr_file[CK_CONFIG_STR];
	char crl_file[CK_CONFIG_STR];
	char crl_url[CK_CONFIG_STR];
	char ocsp_url[CK_CONFIG_STR];
	char issuer_url[CK_CONFIG_STR];
	uint32_t crl_validity_hours;
	char store_backend[32];
	char store_path[CK_CONFIG_STR];
	struct ck_server_config server;
	struct ck_backup_config backup;
	struct ck_acme_config acme;
	struct ck_audit_config audit;
	struct ck_signer_config signer;
	struct ck_profile *profiles;
	size_t nprofiles;
};

/*
 * Parse configuration text (need not be NUL-terminated). Returns 0 and
 * *out (free with ck_config_free), or CK_E_PARSE with the line and reason.
 */
int ck_config_parse(const char *text, size_t len, struct ck_config **out);

void ck_config_free(struct ck_config *cfg);

/* The profile called `name`, or NULL. */
const struct ck_profile *ck_config_profile(const struct ck_config *cfg,
    const char *name);

#endif
