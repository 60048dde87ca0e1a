/*
 * store_authz.h - operators and their roles in the store (migration 7).
 *
 * An operator is a named identity, authenticated as a local OS user (the
 * admin socket's SO_PEERCRED) or, remotely over HTTPS, by a TLS client
 * certificate (cert_sha256). Roles follow the Common Criteria CA roles
 * (docs/roles.md).
 *
 * Rows are never deleted, so that incremental backups carry every change:
 * removing an operator sets disabled_at and revokes its roles; adding a
 * removed name again brings the row back. os_user and cert_sha256 are
 * unique among active operators (partial unique indexes).
 *
 * Role separation (meta key "role_separation", "on" or "off"): when on, an
 * operator holds at most one role. A CA that never set it has it on.
 * Every mutation takes the next change sequence value in its own
 * transaction level; a refused one changes nothing.
 */
#ifndef CK_STORE_STORE_AUTHZ_H
#define CK_STORE_STORE_AUTHZ_H

#include <stdint.h>

#include "store/store.h"

enum store_role {
	STORE_ROLE_CA_ADMIN,
	STORE_ROLE_CERT_MANAGER,
	STORE_ROLE_AUDITOR,
	STORE_ROLE_BACKUP_OPERATOR,
	STORE_ROLE__MAX
};

/* "ca-admin", "cert-manager", "auditor", "backup-operator"; "unknown" for
 * anything else. store_role_parse() returns the role or -1. */
const char *store_role_name(enum store_role r);
int store_role_parse(const char *s);

#define STORE_OPERATOR_NAME_SIZE 64
#define STORE_OPERATOR_USER_SIZE 33	/* POSIX user names: 32 bytes */

struct store_operator {
	char name[STORE_OPERATOR_NAME_SIZE];	/* [A-Za-z0-9._-], 1..63 */
	char os_user[STORE_OPERATOR_USER_SIZE];	/* "" = none */
	char cert_sha256[65];	/* lower-case hex, "" = none */
	int64_t created_at;
	char created_by[128];
	int64_t disabled_at;	/* 0 while active */
	unsigned roles;		/* bit (1u << role) per role held */
	int64_t change_seq;
};

/*
 * Record a new operator (roles ignored: grant them after), or bring back
 * a removed one of the same name with the new fields. CK_E_INVAL for a bad
 * name, user or fingerprint; CK_E_EXISTS if the name is active or the
 * os_user or certificate belongs to another active operator.
 */
int store_operator_add(struct store *st, const struct store_operator *op);

/* One operator (active or removed) by name, active ones by OS user or by
 * certificate fingerprint, with their active roles. CK_E_NOTFOUND. */
int store_operator_get(struct store *st, const char *name,
    struct store_operator *out);
int store_operator_by_os_user(struct store *st, const char *os_user,
    struct store_operator *out);
int store_operator_by_cert(struct store *st, const char *cert_sha256,
    struct store_operator *out);

/* Disable an operator and revoke its roles. CK_E_NOTFOUND, CK_E_STATE if
 * removed already. */
int store_operator_remove(struct store *st, const char *name, int64_t when);

/*
 * Bind an active operator to the TLS client certificate of SHA-256
 * CERT_SHA256 (lower-case hex), replacing any earlier one; "" unbinds.
 * CK_E_NOTFOUND, CK_E_STATE (removed; or unbinding one with no OS user,
 * who could then never act), CK_E_EXISTS (another operator's
 * certificate), CK_E_INVAL (not a fingerprint).
 */
int store_operator_set_cert(struct store *st, const char *name,
    const char *cert_sha256);

/* Walk operators by name (removed ones too if ALL); a non-zero return
 * from CB stops the walk and is returned. */
int store_operator_list(struct store *st, int all,
    int (*cb)(const struct store_operator *op, void *arg), void *arg);

/* The number of active operators. */
int store_operator_count(struct store *st, int64_t *n);

/*
 * Give an active operator a role, recorded as granted by BY. With role
 * separation on, an operator who holds another role is refused
 * (CK_E_POLICY, saying which). CK_E_EXISTS if it holds this one already.
 */
int store_operator_grant(struct store *st, const char *name,
    enum store_role role, int64_t when, const char *by);

/* Take a role away. CK_E_NOTFOUND if the operator does not hold it. */
int store_operator_ungrant(struct store *st, const char *name,
    enum store_role role, int64_t when);

/* Role separation: *on is 1 unless it was turned off. Turning it on is
 * refused (CK_E_POLICY) while an operator holds more than one role. */
int store_role_separation_get(struct store *st, int *on);
int store_role_separation_set(struct store *st, int on);

#endif
