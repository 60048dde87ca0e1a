/*
 * audit.h - the append-only, hash-chained audit log.
 *
 * Each entry's hash is SHA-256 over a length-prefixed encoding of its id,
 * time, user, action, object, result and detail, followed by the previous
 * entry's hash (32 zero bytes for the first). The head of the chain (last
 * id and hash) is also kept in the store's metadata in the same
 * transaction, so deleting entries at the end is detected too.
 * Entries are appended inside the caller's transaction when there is one,
 * so that an operation and its audit record commit together.
 */
#ifndef CK_AUDIT_AUDIT_H
#define CK_AUDIT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Results recorded in entries. */
#define AUDIT_OK "ok"
#define AUDIT_REFUSED "refused"
#define AUDIT_FAILED "failed"

/*
 * Append one entry. `user` NULL means the operating-system user running
 * this process. `detail` may be NULL. Returns 0 or a negative code.
 */
int audit_append(struct store *st, const char *user, const char *action,
    const char *object, const char *result, const char *detail);

/* One entry's fields for audit_append_many(); NULLs as for audit_append(). */
struct audit_item {
	const char *user;
	const char *action;
	const char *object;
	const char *result;
	const char *detail;
};

#define AUDIT_BATCH_MAX 64

/*
 * Append n (at most AUDIT_BATCH_MAX) entries in order, all or nothing,
 * chained as n calls of audit_append() would chain them, with the head of
 * the log written once. Returns 0 or a negative code.
 */
int audit_append_many(struct store *st, const struct audit_item *items,
    size_t n);

/* Compute an entry's chained hash from its fields and prev_hash. */
void audit_entry_hash(const struct store_audit_entry *e, unsigned char out[32]);

/*
 * The canonical encoding behind audit_entry_hash(), for other hash-chained
 * ledgers (the custody ledger): SHA-256 over TAG including its NUL, each of
 * NUMS as 8 bytes big-endian, each of STRS as its length (8 bytes
 * big-endian) and bytes (NULL counts as ""), then PREV (32 bytes).
 * A distinct TAG per ledger keeps an entry of one from passing as the other.
 */
void audit_chain_hash(const char *tag, const int64_t *nums, size_t nnums,
    const char *const *strs, size_t nstrs, const unsigned char prev[32],
    unsigned char out[32]);

struct audit_report {
	int64_t entries;	/* entries checked */
	int64_t first_bad;	/* id of the first bad entry, 0 if none */
	char reason[256];	/* what is wrong with it */
};

/*
 * Walk the whole log and check every link. Returns 0 if intact, else
 * CK_E_TAMPER with `rep` naming the first altered, deleted or reordered
 * entry, or another negative code if the log cannot be read.
 */
int audit_verify(struct store *st, struct audit_report *rep);

/*
 * audit_verify(), calling EACH (if not NULL) for every entry whose link
 * and hash are good, in order: a non-zero return stops the walk and is
 * returned (CK_E_TAMPER with rep->reason set by EACH names that entry).
 */
int audit_verify_each(struct store *st,
    int (*each)(const struct store_audit_entry *e, void *arg), void *arg,
    struct audit_report *rep);

/* The operating-system user name of this process (static storage). */
const char *audit_os_user(void);

/*
 * Who entries with a NULL user name, on this thread: ACTOR (e.g.
 * "alice/cert-manager", copied) until audit_actor_set(NULL); by default
 * the OS user. The admin paths (src/authz/admin.h) set it around an
 * operator's action so that everything the action audits names them.
 */
void audit_actor_set(const char *actor);
const char *audit_actor(void);

#endif
