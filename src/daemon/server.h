/*
 * server.h - certkeepd's running state, shared by its HTTP handlers.
 *
 * Threads: the HTTP servers' threads judge requests and answer them; the
 * issuance pipeline (committer + signers) owns the store connection in
 * ca->st and does every write; a housekeeping thread watches the change
 * sequence (through its own read connection) to refresh tokens, drop
 * stale OCSP answers and re-sign the CRL on revocation and well before
 * next-update. Reads for requests use `rd`, serialised by rd_mu.
 */
#ifndef CK_DAEMON_SERVER_H
#define CK_DAEMON_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "audit/checkpoint.h"
#include "ca/ca.h"
#include "ca/pipeline.h"
#include "ca/token.h"
#include "proto/http.h"
#include "proto/metrics.h"
#include "x509/serial.h"

struct ocsp_responder;
struct acme_nonces;
struct adminhttp;

struct server {
	struct ck_ca *ca;
	struct ck_pipeline *pl;
	struct store *rd;
	pthread_mutex_t rd_mu;

	pthread_rwlock_t lock;	/* guards tokens, crl_*, chain_pem */
	struct ck_token_set *tokens;
	int64_t tokens_seq;	/* the tokens' highest change sequence */
	unsigned char *crl_der;
	size_t crl_len;
	uint64_t crl_number;
	int64_t crl_this_update;
	int64_t crl_next_update;
	char *chain_pem;
	size_t chain_len;
	unsigned char *ca_der;
	size_t ca_der_len;
	struct ck_strlist client_cert_profiles;

	struct ocsp_responder *ocsp;
	struct acme_nonces *acme_nonces; /* ACME Replay-Nonce values */
	/* Opens the sealed ACME EAB keys (src/ca/eab_seal.h); NULL if the
	 * home has none. Set by server_eab_unlock() before server_start(),
	 * read-only while serving, freed by server_stop(). */
	EVP_PKEY *eab_key;
	struct acme_va *acme_va;	/* ACME challenge validation */
	struct adminhttp *adminhttp;	/* POST /admin/v1 (adminhttp.h) */
	/* The audit log's checkpoints and its syslog copy (housekeeper). */
	int64_t audit_cp_at;		/* time of the last checkpoint */
	int audit_syslog;		/* [audit] syslog, fixed at start */
	struct audit_syslog syslog_sink;
	int64_t audit_syslog_next;	/* the next entry to send */
	/* Who signs OCSP responses, fixed at start ([server] ocsp_signer);
	 * the rest only the housekeeper touches (ocsp_reload_wanted under
	 * hk_mu). */
	int ocsp_mode;		/* enum in server.c */
	int ocsp_reload_wanted;	/* SIGHUP: renew, or re-read the files */
	int64_t ocsp_not_after;	/* the delegated certificate's */
	int64_t ocsp_renew_at;	/* certkeepd's own: renew from then on */
	int64_t ocsp_warned_at;	/* the files' certificate expires soon */
	struct metrics m;
	struct http_server *api;
	struct http_server *pub;
	uint16_t api_port;
	uint16_t pub_port;

	pthread_t housekeeper;
	int hk_running;
	int stopping;
	int crl_wanted;		/* a revocation since the last CRL */
	int64_t seen_seq;
	int64_t started_at;
	pthread_mutex_t hk_mu;
	pthread_cond_t hk_cv;

	/* Audited refusals of unauthenticated requests, per second: beyond
	 * AUDIT_UNAUTH_PER_S they are only counted, so that nobody can fill
	 * the store with them. */
	pthread_mutex_t unauth_mu;
	int64_t unauth_second;
	unsigned unauth_audited;
	uint64_t unauth_unaudited;
};

#define AUDIT_UNAUTH_PER_S 20

/*
 * Bring the server up on an opened, unlocked CA: issue certkeepd's own TLS
 * certificate, start the pipeline, the housekeeper and the listeners.
 */
int server_start(struct server *sv, struct ck_ca *ca);

/*
 * Unlock the home's ACME EAB key (private/acme-eab.key) with PW, the CA
 * key's passphrase, into sv->eab_key, for the server_start() that follows
 * on the same SV (call it on a zeroed struct, after ck_ca_unlock_with()).
 * A home without the key is fine (sv->eab_key stays NULL), unless ACME is
 * enabled with [acme] eab_required: CK_E_STATE saying how to make one.
 * PW NULL: sv->eab_key was set (or not: no key) by the caller already
 * (certkeepd on a split home decrypts it as root, so that the service
 * user never holds the passphrase); only the checks above are made.
 */
int server_eab_unlock(struct server *sv, struct ck_ca *ca,
    const struct ck_secret *pw);

/* Stop accepting, finish in-flight requests, stop everything. */
void server_stop(struct server *sv);

/* After server_stop() and the last entries of the run (service-stop, the
 * final checkpoint): send them to syslog and remember where the copy
 * ends, for the next start. */
void server_audit_stopped(struct server *sv);

/* Re-read what a SIGHUP reloads: tokens, CRL (re-signed); a delegated
 * OCSP responder certificate is renewed, or re-read from its files, soon
 * after (by the housekeeper). */
int server_reload(struct server *sv);

/* Re-read certkeep.conf: profiles, URLs, CRL lifetime and client
 * certificate profiles take effect; listeners, threads and TLS names need
 * a restart. A bad file is refused and the old configuration kept. The new
 * version is recorded in the store and audited. */
int server_reload_config(struct server *sv);

/* The HTTP routes (rest.c, pub.c). */
extern const struct http_route rest_routes[];
extern const size_t rest_nroutes;
extern const struct http_route pub_routes[];
extern const size_t pub_nroutes;

/* Re-read the tokens if the store changed since they were read (a token
 * the command line just created works at once). */
int server_tokens_refresh(struct server *sv);

/* Write a new CRL through the pipeline and load it for serving. */
int server_crl_refresh(struct server *sv);

/*
 * A revocation a protocol (REST, ACME) has authorized, written through the
 * pipeline: ck_pipeline_write(sv->pl, server_revoke_write, rev, done, ...)
 * with REV embedded in the protocol's own job. The write always commits,
 * so that a refused revocation keeps its audit entry; R and MSG carry
 * ck_ca_revoke_as()'s result to the done callback.
 */
struct server_revocation {
	char requester[160];
	char serial[CK_SERIAL_HEX_MAX];
	int reason;
	int r;
	char msg[512];
};
int server_revoke_write(struct ck_ca *ca, void *rev);

/* A revocation was committed: count it and have the housekeeper write a
 * new CRL now. */
void server_revoked(struct server *sv);

#endif
