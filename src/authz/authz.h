/*
 * authz.h - who may do which admin action (docs/roles.md).
 *
 * Every admin action needs one role (the table in authz.c). A principal is
 * an OS user, known by the uid the admin socket reads with SO_PEERCRED (or
 * the CLI's own uid when it works locally), who may be an operator
 * (store_authz.h) and may be the CA home's owner.
 *
 * The rule:
 *   - while no operator exists, the home's owner may do everything (the
 *     bootstrap, and CAs that do not use operators), nobody else anything;
 *   - once one exists, an action needs an operator holding its role;
 *   - except that the home's owner may always manage operators (recovery:
 *     an owner who lost every ca-admin gets back in) and run the offline
 *     commands (init, restore, cold backup), which work on the files with
 *     the service stopped, where a role check would only be theatre.
 * Root counts as the home's owner: it can do anything to the files anyway.
 */
#ifndef CK_AUTHZ_AUTHZ_H
#define CK_AUTHZ_AUTHZ_H

#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"
#include "store/store_authz.h"

enum authz_action {
	/* ca-admin */
	AUTHZ_OPERATOR_ADD,
	AUTHZ_OPERATOR_GRANT,
	AUTHZ_OPERATOR_REMOVE,
	AUTHZ_OPERATOR_LIST,
	AUTHZ_OPERATOR_SEPARATION,
	AUTHZ_CONFIG,
	AUTHZ_TOKEN_CREATE,
	AUTHZ_TOKEN_LIST,
	AUTHZ_TOKEN_REVOKE,
	AUTHZ_EAB_CREATE,
	AUTHZ_EAB_LIST,
	AUTHZ_EAB_REVOKE,
	/* cert-manager */
	AUTHZ_REVOKE,
	AUTHZ_APPROVE,
	AUTHZ_DENY,
	AUTHZ_REQUEST_LIST,
	/* auditor */
	AUTHZ_AUDIT_SHOW,
	AUTHZ_AUDIT_VERIFY,
	AUTHZ_AUDIT_EXPORT,
	/* backup-operator */
	AUTHZ_BACKUP,
	AUTHZ_BACKUP_COLD,
	AUTHZ_RESTORE,
	AUTHZ_DRILL,
	AUTHZ_CUSTODY,
	/* the owner only */
	AUTHZ_INIT,
	/* added with remote operators: ca-admin */
	AUTHZ_OPERATOR_CERT,
	/* cert-manager */
	AUTHZ_ISSUE,
	AUTHZ_CRL,
	AUTHZ_CERT_LIST,
	AUTHZ_CERT_SHOW,
	/* auditor */
	AUTHZ_AUDIT_CHECKPOINT,
	AUTHZ_ACTION__MAX
};

/* The action's name ("revoke", "token-create", ...; "unknown");
 * authz_action_parse() returns the action or -1. */
const char *authz_action_name(enum authz_action a);
int authz_action_parse(const char *name);

/* The role ACTION needs. */
enum store_role authz_action_role(enum authz_action a);

/* 1 for operator management (the owner may always), 2 for the offline
 * commands (the owner may always, with the service stopped), else 0. */
int authz_action_owner_exempt(enum authz_action a);

struct authz_principal {
	uid_t uid;
	char os_user[STORE_OPERATOR_USER_SIZE + 16]; /* or "uid:N" */
	int is_owner;		/* the home's owner, or root */
	int is_operator;	/* an active operator is this OS user */
	struct store_operator op;
};

/*
 * Who UID is, for a home owned by OWNER: its user name, and the active
 * operator of that name (read from ST). 0 or a negative code.
 */
int authz_principal_load(struct store *st, uid_t uid, uid_t owner,
    struct authz_principal *p);

/*
 * A remote caller known by the SHA-256 (lower-case hex) of the TLS client
 * certificate it presented (which the caller has checked: issued by this
 * CA, valid, not revoked): the active operator bound to it, if any. Never
 * the home's owner, and no OS user ("cert:" and the first 16 hex digits
 * stand for the caller in messages). 0 or a negative code.
 */
int authz_principal_load_cert(struct store *st, const char *cert_sha256,
    struct authz_principal *p);

struct authz_decision {
	int allowed;
	enum store_role role;	/* the role the action needs */
	char actor[160];	/* the audit user: "NAME/ROLE", or the OS user
				 * when the owner acts as owner */
	char reason[320];	/* why refused, e.g. "revoke needs the
				 * cert-manager role; alice is auditor" */
};

/*
 * Decide ACTION for P when NOPERATORS operators are active (pure: the
 * table test calls it directly). Always fills D; returns D->allowed.
 */
int authz_check(const struct authz_principal *p, int64_t noperators,
    enum authz_action action, struct authz_decision *d);

/* The same reading the number of operators from ST. 0 or a negative
 * code (the decision is in D). */
int authz_decide(struct store *st, const struct authz_principal *p,
    enum authz_action action, struct authz_decision *d);

#endif
