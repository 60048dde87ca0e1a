/*
 * admin.h - the admin actions, run on behalf of a principal.
 *
 * One code path for both ways an admin command reaches the CA: certkeepd
 * runs requests that arrive on its admin socket (src/daemon/adminsock.c),
 * and the CLI runs the very same request objects itself when no certkeepd
 * serves the home. Either way the request is judged by authz.h, a refusal
 * is audited and answered with the role it needs, and what the action
 * audits names the operator and role ("alice/cert-manager").
 *
 * Writes go through ENV's write path: under certkeepd, the issuance
 * pipeline's committer (ck_pipeline_write_wait), the only writer of the
 * store; in the CLI, directly in a transaction. Reads use ENV->rd (under
 * rd_mu when set).
 *
 * A request is a JSON object: {"action": NAME, ...arguments}; the reply
 * is {"ok": true, "out": TEXT [, "note": TEXT] [, "data": TEXT]} or
 * {"ok": false, "code": N, "error": TEXT, "refused": BOOL}. OUT is what
 * the CLI prints on standard output, NOTE on standard error, DATA what it
 * writes to a file (an audit extract); ERROR is printed after
 * "certkeep: " (refusals and tamper reports as they are, other errors
 * after "error: "). Actions and their arguments:
 *
 *   revoke            serial (string), reason (integer, RFC 5280)
 *   token-create      name, profiles, dns_suffixes, ip_ranges,
 *                     email_domains (strings), can_revoke (boolean)
 *   token-list        -
 *   token-revoke      id (id or name)
 *   operator-add      name, role (strings); os_user and/or cert (PEM of a
 *                     certificate of this CA's "operator" profile, CN =
 *                     name)
 *   operator-cert     name; cert (PEM: bind, replacing any earlier) or
 *                     none (unbind)
 *   operator-grant    name, role
 *   operator-remove   name
 *   operator-list     all (boolean)
 *   operator-role-separation  on (boolean)
 *   audit-show        from (integer)
 *   audit-verify      -
 *   audit-export      from, to (integers; to 0 is the last)
 *   request-list      status (string, may be absent), or id (integer):
 *                     the one request in detail
 *   approve           id (integer), reason (string, may be absent)
 *   deny              id (integer), reason (string)
 *   checkpoint        - (sign one now)                   (certkeepd only)
 *   issue             profile, csr (PEM), days, path_len, cert_only
 *                     (the requester is the caller)      (certkeepd only)
 *   crl               -; "out" is the CRL's PEM          (certkeepd only)
 *   cert-list         status, profile, name (strings), expiring_before
 *                     (Unix time), limit
 *   cert-show         serial, pem (boolean)
 *   acme-eab-create   note; "out" shows the kid and HMAC key once
 *                     (certkeepd only: the CLI makes the first pair)
 *   acme-eab-list     -
 *   acme-eab-revoke   kid
 *   backup            op "make" (certkeepd only): kind ("full",
 *                     "incremental", "incremental-or-full"), logical;
 *                     the home's owner acting as owner only: to (array
 *                     of directories), recipients (array of PEM),
 *                     keep_last, daily, weekly, monthly, zstd_level
 *                     (else [backup]); the reply also has set, artefact
 *                     (first copy's path), size, sha256.
 *                     op "list": json (boolean).
 *                     op "verify": a check made by the CLI, recorded:
 *                     set (64 hex, may be absent: audited by file
 *                     only), file, ok (boolean), detail
 *   drill             op "files": set (may be absent: the newest); "out"
 *                     lists the chain's files, one a line. op "record":
 *                     as backup's "verify"
 *   custody           op "add": artefact (64 hex), event, place, kind or
 *                     kind_guess (used for a new artefact only), detail,
 *                     operator (recorded as "CALLER (for OPERATOR)").
 *                     op "show": artefact (may be absent), json.
 *                     op "verify": the ledger
 *   config            op "reload" (certkeepd only: as SIGHUP)
 *
 * An operator's successful reads of the audit log (show, verify, export)
 * are audited too, under the reader's name.
 */
#ifndef CK_AUTHZ_ADMIN_H
#define CK_AUTHZ_ADMIN_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "ca/ca.h"
#include "ca/pipeline.h"
#include "common/budget.h"

/* A request's size limit on the socket, and a reply's. */
#define ADMIN_REQUEST_MAX (64u * 1024)
#define ADMIN_REPLY_MAX (256u * 1024 * 1024)
/* A string argument's limit. */
#define ADMIN_ARG_MAX 1024

struct admin_env {
	struct ck_ca *ca;
	struct store *rd;		/* reads (ca->st in the CLI) */
	pthread_mutex_t *rd_mu;		/* NULL: reads need no lock */
	struct ck_pipeline *pl;		/* NULL: write on ca->st directly */
	uid_t owner;			/* the home's owner */
	/* Called after a successful revocation (REVOKED 1) or token change
	 * (0): certkeepd wakes its housekeeper, for a new CRL or to reload
	 * the tokens at once; may be NULL. */
	void (*changed)(void *arg, int revoked);
	void *changed_arg;
	/* Refusals audited one by one per second (certkeepd caps them, so
	 * that no caller can fill the store with them; the ones over the
	 * cap are counted in the next that is audited); NULL: all. */
	struct ck_budget *refusals;
	/* Held for reading to read ca->cfg off the write path (certkeepd
	 * swaps it on reload); NULL: no lock. */
	pthread_rwlock_t *cfg_lock;
	/* The CLI: the passphrase for an approval, which may issue (the
	 * key is unlocked when ca->signer is NULL); NULL in certkeepd. */
	const struct ck_pass_src *pass;
};

/*
 * Judge and run REQ for the OS user PEER. Returns a new reply object
 * (caller decrefs), NULL only when out of memory. A malformed request
 * gets an "ok": false reply with code CK_E_INVAL.
 */
json_t *admin_exec(struct admin_env *env, uid_t peer, const json_t *req);

/*
 * The same for a principal known otherwise (a remote operator by its TLS
 * client certificate, authz_principal_load_cert()): one code path for
 * the socket, the CLI and the HTTPS admin route.
 */
struct authz_principal;
json_t *admin_exec_as(struct admin_env *env, const struct authz_principal *p,
    const json_t *req);

/* The profile a remote operator's certificate must be issued under. */
#define ADMIN_OPERATOR_PROFILE "operator"

/* The owner of the CA home at HOME (stat). 0 or a negative code. */
int admin_home_owner(const char *home, uid_t *out);

#endif
