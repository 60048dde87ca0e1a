/*
 * store_request.h - certificate requests that wait for a certificate
 * manager's approval (migration 8; docs/roles.md, "Approvals").
 *
 * A request under a profile with approvals = N is not signed: it is kept
 * here with its CSR until N distinct certificate managers approve it (it
 * is then issued through the normal pipeline and becomes "issued") or one
 * denies it. Its states:
 *
 *   pending --N approvals--> approved --issued--> issued
 *      |                        |
 *      +--deny-------------+----+--the profile refuses it now--> denied
 *
 * An approved request records the serial of the certificate being issued
 * for it (cert_serial) in the transaction that logs that certificate's
 * pending row, and becomes issued in the one that records it: a request
 * left approved by a stop is issued (again, from its CSR) at the next
 * start unless its certificate was recorded, so exactly one certificate
 * comes of it.
 *
 * Rows are never deleted (incremental backups carry every change); every
 * mutation takes the next change sequence value in its own transaction
 * level.
 */
#ifndef CK_STORE_STORE_REQUEST_H
#define CK_STORE_STORE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

enum store_request_status {
	STORE_REQUEST_PENDING,
	STORE_REQUEST_APPROVED,
	STORE_REQUEST_DENIED,
	STORE_REQUEST_ISSUED,
	STORE_REQUEST_STATUS__MAX
};

/* "pending", "approved", "denied", "issued" ("unknown"); parse: -1. */
const char *store_request_status_name(enum store_request_status s);
int store_request_status_parse(const char *s);

#define STORE_REQUEST_WHO_SIZE 160	/* requester, actor */
#define STORE_REQUEST_REASON_MAX 1024	/* a reason's bytes */

struct store_request {
	int64_t id;			/* 1, 2, ... assigned on insert */
	enum store_request_status status;
	char profile[64];
	uint32_t days;			/* 0: the profile's maximum */
	int path_len;			/* -1: the profile's maximum */
	unsigned char *csr;		/* DER */
	size_t csr_len;
	char *subject;			/* as in the certs table */
	char *names;
	/* Who asked: "token:NAME", "cert:SERIAL", "acme:ACCOUNT", an
	 * operator's name or an OS user; and, when a person on this host
	 * asked, the operator (if they were one) and OS user, so that they
	 * cannot approve it themselves. */
	char requester[STORE_REQUEST_WHO_SIZE];
	char requester_operator[64];	/* "" = none */
	char requester_os_user[40];	/* "" = none */
	char acme_order[64];		/* "" = not an ACME order */
	int64_t created_at;
	int64_t decided_at;		/* approved or denied; 0: pending */
	char *reason;			/* why denied; NULL otherwise */
	char cert_serial[80];		/* "" until issuance began */
	int64_t change_seq;
};

struct store_request_approval {
	int64_t request_id;
	/* The operator's name, or the OS user of the home's owner acting
	 * as owner. */
	char approver[STORE_REQUEST_WHO_SIZE];
	char actor[STORE_REQUEST_WHO_SIZE];	/* as audited: NAME/ROLE */
	int64_t at;
	char reason[STORE_REQUEST_REASON_MAX + 1];
};

/* Free what RQ owns and zero it; accepts NULL. */
void store_request_clear(struct store_request *rq);

/*
 * Record a new pending request (status, decided_at, reason, cert_serial
 * and change_seq of RQ are ignored); RQ->id gets its id. CK_E_INVAL for
 * fields too long.
 */
int store_request_insert(struct store *st, struct store_request *rq);

/* One request by id, or the one of ACME order ORDER_ID (the newest).
 * CK_E_NOTFOUND. Clear OUT with store_request_clear(). */
int store_request_get(struct store *st, int64_t id,
    struct store_request *out);
int store_request_by_acme_order(struct store *st, const char *order_id,
    struct store_request *out);

/* Walk requests of STATUS (-1: all), oldest first; a non-zero return
 * from CB stops the walk and is returned. The row is the callee's to
 * read only. */
int store_request_list(struct store *st, int status,
    int (*cb)(const struct store_request *rq, void *arg), void *arg);

/*
 * FROM -> TO at WHEN (decided_at is set for approved and denied; REASON,
 * may be NULL, is kept for denied). CK_E_NOTFOUND, CK_E_STATE (with the
 * state it is in) if the request is not in FROM.
 */
int store_request_transition(struct store *st, int64_t id,
    enum store_request_status from, enum store_request_status to,
    int64_t when, const char *reason);

/* An approved request's certificate is being issued under SERIAL (or,
 * with SERIAL "", no longer: its issuance failed). CK_E_STATE if it is
 * not approved. */
int store_request_set_serial(struct store *st, int64_t id,
    const char *serial);

/* approved -> issued with certificate SERIAL. CK_E_STATE otherwise. */
int store_request_mark_issued(struct store *st, int64_t id,
    const char *serial);

/* Record A (its request_id, approver, actor, at, reason). CK_E_EXISTS if
 * that approver approved that request already. */
int store_request_approval_add(struct store *st,
    const struct store_request_approval *a);

/* The approvals of request ID in the order given: *out is a new array
 * (free()), *n its length. */
int store_request_approvals(struct store *st, int64_t id,
    struct store_request_approval **out, size_t *n);

#endif
