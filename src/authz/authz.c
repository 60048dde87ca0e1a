/*
 * authz.c - the action -> role table and the rule of authz.h.
 */
#include "authz/authz.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"

#define OWNER_OPERATORS 1	/* operator management: recovery */
#define OWNER_OFFLINE 2		/* works on the files, service stopped */

static const struct {
	const char *name;
	enum store_role role;
	int owner;
} actions[AUTHZ_ACTION__MAX] = {
	[AUTHZ_OPERATOR_ADD] = { "operator-add", STORE_ROLE_CA_ADMIN,
	    OWNER_OPERATORS },
	[AUTHZ_OPERATOR_GRANT] = { "operator-grant", STORE_ROLE_CA_ADMIN,
	    OWNER_OPERATORS },
	[AUTHZ_OPERATOR_REMOVE] = { "operator-remove", STORE_ROLE_CA_ADMIN,
	    OWNER_OPERATORS },
	[AUTHZ_OPERATOR_LIST] = { "operator-list", STORE_ROLE_CA_ADMIN,
	    OWNER_OPERATORS },
	[AUTHZ_OPERATOR_SEPARATION] = { "operator-role-separation",
	    STORE_ROLE_CA_ADMIN, OWNER_OPERATORS },
	[AUTHZ_CONFIG] = { "config", STORE_ROLE_CA_ADMIN, 0 },
	/*
	 * Tokens and ACME EAB keys are credentials that let a client enrol
	 * within a profile's limits: handing them out is configuring who
	 * may enrol, the CA administrator's business (as AD CS leaves
	 * enrollment permissions on templates to the CA administrator),
	 * not the certificate manager's, who judges single certificates.
	 * Kept away from cert-manager, it also means nobody can both mint
	 * an enrolment credential and approve what it asks for.
	 */
	[AUTHZ_TOKEN_CREATE] = { "token-create", STORE_ROLE_CA_ADMIN, 0 },
	[AUTHZ_TOKEN_LIST] = { "token-list", STORE_ROLE_CA_ADMIN, 0 },
	[AUTHZ_TOKEN_REVOKE] = { "token-revoke", STORE_ROLE_CA_ADMIN, 0 },
	[AUTHZ_EAB_CREATE] = { "acme-eab-create", STORE_ROLE_CA_ADMIN, 0 },
	[AUTHZ_EAB_LIST] = { "acme-eab-list", STORE_ROLE_CA_ADMIN, 0 },
	[AUTHZ_EAB_REVOKE] = { "acme-eab-revoke", STORE_ROLE_CA_ADMIN, 0 },
	[AUTHZ_REVOKE] = { "revoke", STORE_ROLE_CERT_MANAGER, 0 },
	[AUTHZ_APPROVE] = { "approve", STORE_ROLE_CERT_MANAGER, 0 },
	[AUTHZ_DENY] = { "deny", STORE_ROLE_CERT_MANAGER, 0 },
	/* Requests awaiting approval: read by those who decide them. */
	[AUTHZ_REQUEST_LIST] = { "request-list", STORE_ROLE_CERT_MANAGER, 0 },
	[AUTHZ_AUDIT_SHOW] = { "audit-show", STORE_ROLE_AUDITOR, 0 },
	[AUTHZ_AUDIT_VERIFY] = { "audit-verify", STORE_ROLE_AUDITOR, 0 },
	[AUTHZ_AUDIT_EXPORT] = { "audit-export", STORE_ROLE_AUDITOR, 0 },
	[AUTHZ_BACKUP] = { "backup", STORE_ROLE_BACKUP_OPERATOR, 0 },
	[AUTHZ_BACKUP_COLD] = { "backup-cold", STORE_ROLE_BACKUP_OPERATOR,
	    OWNER_OFFLINE },
	[AUTHZ_RESTORE] = { "restore", STORE_ROLE_BACKUP_OPERATOR,
	    OWNER_OFFLINE },
	[AUTHZ_DRILL] = { "drill", STORE_ROLE_BACKUP_OPERATOR, 0 },
	[AUTHZ_CUSTODY] = { "custody", STORE_ROLE_BACKUP_OPERATOR, 0 },
	/* Before there is a store there is nobody else to ask. */
	[AUTHZ_INIT] = { "init", STORE_ROLE_CA_ADMIN, OWNER_OFFLINE },
	/* Binding a certificate to an operator is operator management. */
	[AUTHZ_OPERATOR_CERT] = { "operator-cert", STORE_ROLE_CA_ADMIN,
	    OWNER_OPERATORS },
	/*
	 * Issuing a certificate by hand and publishing the CRL are the
	 * certificate manager's acts (AD CS: "Issue and Manage
	 * Certificates"): deciding about single certificates and their
	 * revocation, not configuring the CA. Listing and showing the
	 * certificates is the same role's working view (which certificate
	 * to revoke, what was issued to whom): an auditor reads the audit
	 * log, which records every issuance and revocation, and does not
	 * need the certificate database itself.
	 */
	[AUTHZ_ISSUE] = { "issue", STORE_ROLE_CERT_MANAGER, 0 },
	[AUTHZ_CRL] = { "crl", STORE_ROLE_CERT_MANAGER, 0 },
	[AUTHZ_CERT_LIST] = { "cert-list", STORE_ROLE_CERT_MANAGER, 0 },
	[AUTHZ_CERT_SHOW] = { "cert-show", STORE_ROLE_CERT_MANAGER, 0 },
	/* Anchoring the log now is the auditor's (certkeepd also does it
	 * on its own every checkpoint_interval). */
	[AUTHZ_AUDIT_CHECKPOINT] = { "checkpoint", STORE_ROLE_AUDITOR,
	    0 },
};

const char *
authz_action_name(enum authz_action a)
{
	if ((unsigned)a >= AUTHZ_ACTION__MAX)
		return "unknown";
	return actions[a].name;
}

int
authz_action_parse(const char *name)
{
	int i;

	for (i = 0; name != NULL && i < AUTHZ_ACTION__MAX; i++)
		if (strcmp(name, actions[i].name) == 0)
			return i;
	return -1;
}

enum store_role
authz_action_role(enum authz_action a)
{
	if ((unsigned)a >= AUTHZ_ACTION__MAX)
		return STORE_ROLE__MAX;
	return actions[a].role;
}

int
authz_action_owner_exempt(enum authz_action a)
{
	if ((unsigned)a >= AUTHZ_ACTION__MAX)
		return 0;
	return actions[a].owner;
}

int
authz_principal_load(struct store *st, uid_t uid, uid_t owner,
    struct authz_principal *p)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	memset(p, 0, sizeof(*p));
	p->uid = uid;
	p->is_owner = uid == owner || uid == 0;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL || strlen(pw.pw_name) >= STORE_OPERATOR_USER_SIZE) {
		/* No name: no operator can be this user. */
		snprintf(p->os_user, sizeof(p->os_user), "uid:%u",
		    (unsigned)uid);
		return 0;
	}
	snprintf(p->os_user, sizeof(p->os_user), "%s", pw.pw_name);
	r = store_operator_by_os_user(st, p->os_user, &p->op);
	if (r == CK_E_NOTFOUND) {
		ck_err_clear();
		return 0;
	}
	if (r != 0)
		return r;
	p->is_operator = 1;
	return 0;
}

int
authz_principal_load_cert(struct store *st, const char *cert_sha256,
    struct authz_principal *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	p->uid = (uid_t)-1;
	snprintf(p->os_user, sizeof(p->os_user), "cert:%.16s", cert_sha256);
	r = store_operator_by_cert(st, cert_sha256, &p->op);
	if (r == CK_E_NOTFOUND) {
		ck_err_clear();
		return 0;
	}
	if (r != 0)
		return r;
	p->is_operator = 1;
	return 0;
}

/* The roles in SET as "a and b", or "no role". */
static void
roles_text(unsigned set, char *buf, size_t size)
{
	size_t len = 0;
	int i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < STORE_ROLE__MAX; i++)
		if (set & (1u << i)) {
			snprintf(buf + len, size - len, "%s%s",
			    n++ ? " and " : "", store_role_name(i));
			len = strlen(buf);
		}
	if (n == 0)
		snprintf(buf, size, "without a role");
}

int
authz_check(const struct authz_principal *p, int64_t noperators,
    enum authz_action action, struct authz_decision *d)
{
	const char *name = authz_action_name(action);
	char held[96];

	memset(d, 0, sizeof(*d));
	if ((unsigned)action >= AUTHZ_ACTION__MAX) {
		snprintf(d->reason, sizeof(d->reason), "unknown action");
		d->role = STORE_ROLE__MAX;
		snprintf(d->actor, sizeof(d->actor), "%s", p->os_user);
		return 0;
	}
	d->role = actions[action].role;
	/* An operator holding the role acts as that operator, owner or not:
	 * the audit log names the person, not the account. */
	if (p->is_operator && (p->op.roles & (1u << d->role))) {
		d->allowed = 1;
		snprintf(d->actor, sizeof(d->actor), "%s/%s", p->op.name,
		    store_role_name(d->role));
		return 1;
	}
	if (p->is_owner && (noperators == 0 || actions[action].owner != 0)) {
		d->allowed = 1;
		snprintf(d->actor, sizeof(d->actor), "%s", p->os_user);
		return 1;
	}
	if (p->is_operator) {
		roles_text(p->op.roles, held, sizeof(held));
		snprintf(d->actor, sizeof(d->actor), "%s/%s", p->op.name,
		    p->op.roles ? held : "none");
		snprintf(d->reason, sizeof(d->reason), "%s needs the %s role; "
		    "%s is %s", name, store_role_name(d->role), p->op.name,
		    held);
	} else if (noperators == 0) {
		snprintf(d->actor, sizeof(d->actor), "%s", p->os_user);
		snprintf(d->reason, sizeof(d->reason), "%s needs the %s role; "
		    "no operator is defined yet, so only the CA home's owner "
		    "may act, and %s is not", name, store_role_name(d->role),
		    p->os_user);
	} else {
		snprintf(d->actor, sizeof(d->actor), "%s", p->os_user);
		snprintf(d->reason, sizeof(d->reason), "%s needs the %s role; "
		    "%s %s is no operator", name, store_role_name(d->role),
		    strncmp(p->os_user, "cert:", 5) == 0 ? "certificate" :
		    "OS user", p->os_user);
	}
	return 0;
}

int
authz_decide(struct store *st, const struct authz_principal *p,
    enum authz_action action, struct authz_decision *d)
{
	int64_t n;
	int r;

	if ((r = store_operator_count(st, &n)) != 0) {
		memset(d, 0, sizeof(*d));
		return r;
	}
	(void)authz_check(p, n, action, d);
	return 0;
}
