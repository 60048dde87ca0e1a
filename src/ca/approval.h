/*
 * approval.h - requests that wait for certificate managers (docs/roles.md,
 * "Approvals").
 *
 * A profile with approvals = N (1 or 2) signs nothing on request: the
 * request is judged as usual, then kept (store_request.h) with an audit
 * entry, and the client is told its id. Certificate managers approve or
 * deny it; the approval that completes the count issues the certificate
 * through the normal durable path (pending row, sign, record) from the
 * stored CSR, judged again against the profile as it is then; a request
 * the profile no longer allows becomes denied with the reason.
 *
 * The writes run in the caller's write path (certkeepd's committer, or a
 * transaction in the CLI); the signature is made between two of them,
 * never inside one, so that the pending row is durable before it:
 *   write 1  log the certificate's pending row and the request's serial
 *   sign
 *   write 2  record the certificate, the request issued, its ACME order
 *            valid, in one transaction
 * A request left approved by a stop is issued at the next start
 * (ck_request_settle) unless its certificate was recorded: exactly one
 * certificate comes of it.
 */
#ifndef CK_CA_APPROVAL_H
#define CK_CA_APPROVAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "ca/pipeline.h"
#include "store/store_request.h"

/* Who asks, as the store keeps it (store_request.h); NULL fields: none. */
struct ck_request_origin {
	const char *requester;		/* audited and shown */
	const char *operator_name;	/* a local person who is an operator */
	const char *os_user;		/* a local person's OS user */
	const char *acme_order;		/* an ACME order's id */
};

/*
 * Judge P (CSR, profile, days, path length) against its profile without
 * the CA key, and fill RQ (clear it with store_request_clear) for
 * ck_request_record(). CK_E_POLICY, CK_E_PARSE, CK_E_BADSIG with the
 * reason, as issuance refuses.
 */
int ck_request_build(struct ck_ca *ca, const struct ck_issue_params *p,
    const struct ck_request_origin *o, struct store_request *rq);

/* Record RQ as pending and audit it ("request", "request N"), inside the
 * caller's transaction; RQ->id gets the id. */
int ck_request_record(struct ck_ca *ca, struct store_request *rq);

/* The approvals a request under profile PROFILE needs now: the profile's
 * count, at least 1 (a request that waits needs one decision); 1 for a
 * profile that is gone (issuance will refuse it). */
int ck_request_needed(const struct ck_ca *ca, const char *profile);

/* Who approves or denies. */
struct ck_approver {
	const char *key;		/* operator name, or the OS user of the
					 * home's owner acting as owner */
	const char *operator_name;	/* NULL: not an operator */
	const char *os_user;
	const char *actor;		/* as audited: NAME/ROLE */
};

enum ck_approval_verdict {
	CK_APPROVAL_REFUSED,	/* why says why; nothing is recorded */
	CK_APPROVAL_RECORDED,	/* one more approval, more are needed */
	CK_APPROVAL_COMPLETE,	/* this approval completes the count */
	CK_APPROVAL_VERDICT__MAX
};

/*
 * The state machine (pure): what an approval by WHO of RQ, which has the
 * NHAVE approvals HAVE and needs NEEDED, does. Refused: RQ is not
 * pending, WHO asked for it, or WHO approved it already.
 */
enum ck_approval_verdict ck_approval_judge(const struct store_request *rq,
    const struct store_request_approval *have, size_t nhave,
    const struct ck_approver *who, int needed, char *why, size_t whysz);

/* An approval or denial, run as a write (ck_write_fn) in the caller's
 * transaction; a refusal leaves only its audit entry and returns
 * CK_E_POLICY (CK_E_STATE when the request is not pending, CK_E_NOTFOUND
 * when there is none), with the reason. */
struct ck_request_decision {
	int64_t id;
	struct ck_approver who;
	const char *reason;		/* approve: may be NULL; deny: needed */
	/* out */
	int complete;			/* approve: the count is complete */
	int have, needed;		/* approvals now, and needed */
};
int ck_request_approve_write(struct ck_ca *ca, void *arg);
int ck_request_deny_write(struct ck_ca *ca, void *arg);

/* Where issuance writes and reads. */
struct ck_request_io {
	struct ck_ca *ca;		/* unlocked */
	struct ck_pipeline *pl;		/* NULL: write on ca->st directly */
	struct store *rd;		/* reads (ca->st without pl) */
	pthread_mutex_t *rd_mu;		/* NULL: reads need no lock */
	pthread_rwlock_t *cfg_lock;	/* held to read ca->cfg off the
					 * write path; may be NULL */
};

/*
 * Issue approved request ID (write 1, sign, write 2 above); SERIAL gets
 * the certificate's serial. A request the profile no longer allows
 * becomes denied (CK_E_POLICY with the reason); one whose certificate is
 * recorded already is just marked issued. Other failures leave it
 * approved, for ck_request_settle().
 */
int ck_request_issue(const struct ck_request_io *io, int64_t id,
    char serial[80]);

/* Issue every approved request (at start, after a stop); *n gets how
 * many were looked at. Only store failures are returned; a request that
 * cannot be issued is logged and left. */
int ck_request_settle(const struct ck_request_io *io, size_t *n);

#endif
