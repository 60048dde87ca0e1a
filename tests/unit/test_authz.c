/*
 * test_authz.c - src/authz (the action -> role matrix as a table, the
 * rule, the admin actions run locally on a real CA), src/store/store_authz.c
 * (operators, roles, role separation) and the admin socket's request
 * decoder.
 */
#include "testutil.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "authz/admin.h"
#include "authz/authz.h"
#include "ca/ca.h"
#include "common/err.h"
#include "daemon/adminsock.h"
#include "store/store_authz.h"

#define OK(expr) do {							\
	int r_ = (expr);						\
	if (r_ != 0)							\
		fail_msg("%s: %d: %s", #expr, r_, ck_err_msg());	\
} while (0)

/*
 * The matrix, written out here rather than read from authz.c, so that a
 * change of the table shows as a failing test: each action, the role it
 * needs, and whether the home's owner may do it once operators exist.
 */
static const struct {
	const char *action;
	const char *role;
	int owner_exempt;
} matrix[] = {
	{ "operator-add", "ca-admin", 1 },
	{ "operator-grant", "ca-admin", 1 },
	{ "operator-remove", "ca-admin", 1 },
	{ "operator-list", "ca-admin", 1 },
	{ "operator-role-separation", "ca-admin", 1 },
	{ "config", "ca-admin", 0 },
	{ "token-create", "ca-admin", 0 },
	{ "token-list", "ca-admin", 0 },
	{ "token-revoke", "ca-admin", 0 },
	{ "acme-eab-create", "ca-admin", 0 },
	{ "acme-eab-list", "ca-admin", 0 },
	{ "acme-eab-revoke", "ca-admin", 0 },
	{ "revoke", "cert-manager", 0 },
	{ "approve", "cert-manager", 0 },
	{ "deny", "cert-manager", 0 },
	{ "request-list", "cert-manager", 0 },
	{ "audit-show", "auditor", 0 },
	{ "audit-verify", "auditor", 0 },
	{ "audit-export", "auditor", 0 },
	{ "backup", "backup-operator", 0 },
	{ "backup-cold", "backup-operator", 1 },
	{ "restore", "backup-operator", 1 },
	{ "drill", "backup-operator", 0 },
	{ "custody", "backup-operator", 0 },
	{ "init", "ca-admin", 1 },
	{ "operator-cert", "ca-admin", 1 },
	{ "issue", "cert-manager", 0 },
	{ "crl", "cert-manager", 0 },
	{ "cert-list", "cert-manager", 0 },
	{ "cert-show", "cert-manager", 0 },
	{ "checkpoint", "auditor", 0 },
};
#define NMATRIX (sizeof(matrix) / sizeof(matrix[0]))

static void
principal(struct authz_principal *p, int owner, const char *opname,
    unsigned roles)
{
	memset(p, 0, sizeof(*p));
	p->uid = owner ? 1000 : 1001;
	snprintf(p->os_user, sizeof(p->os_user), "%s", owner ? "ckowner" :
	    "someone");
	p->is_owner = owner;
	if (opname != NULL) {
		p->is_operator = 1;
		snprintf(p->op.name, sizeof(p->op.name), "%s", opname);
		p->op.roles = roles;
	}
}

static void
test_matrix_table(void **state)
{
	struct authz_principal p;
	struct authz_decision d;
	size_t i;
	int a, role, owner, other, want;
	char want_actor[160];

	(void)state;
	assert_int_equal(NMATRIX, AUTHZ_ACTION__MAX);
	for (i = 0; i < NMATRIX; i++) {
		a = authz_action_parse(matrix[i].action);
		assert_true(a >= 0);
		assert_string_equal(authz_action_name(a), matrix[i].action);
		role = store_role_parse(matrix[i].role);
		assert_true(role >= 0);
		assert_int_equal(authz_action_role(a), role);
		assert_int_equal(authz_action_owner_exempt(a) != 0,
		    matrix[i].owner_exempt);
		/* An operator of each role, owner or not, operators exist. */
		for (other = 0; other < STORE_ROLE__MAX; other++)
			for (owner = 0; owner <= 1; owner++) {
				principal(&p, owner, "op", 1u << other);
				want = other == role ||
				    (owner && matrix[i].owner_exempt);
				assert_int_equal(authz_check(&p, 3, a, &d),
				    want);
				assert_int_equal(d.allowed, want);
				assert_int_equal(d.role, role);
				if (other == role) {
					snprintf(want_actor,
					    sizeof(want_actor), "op/%s",
					    matrix[i].role);
					assert_string_equal(d.actor,
					    want_actor);
				}
				if (!want) {
					char msg[256];
					snprintf(msg, sizeof(msg), "%s needs "
					    "the %s role; op is %s",
					    matrix[i].action, matrix[i].role,
					    store_role_name(other));
					assert_string_equal(d.reason, msg);
				}
			}
		/* The owner who is no operator: everything while there is
		 * no operator, then only the exempt actions. */
		principal(&p, 1, NULL, 0);
		assert_int_equal(authz_check(&p, 0, a, &d), 1);
		assert_string_equal(d.actor, "ckowner");
		assert_int_equal(authz_check(&p, 1, a, &d),
		    matrix[i].owner_exempt);
		/* Anyone else who is no operator: nothing, ever. */
		principal(&p, 0, NULL, 0);
		assert_int_equal(authz_check(&p, 0, a, &d), 0);
		assert_contains(d.reason, "no operator is defined yet");
		assert_int_equal(authz_check(&p, 5, a, &d), 0);
		assert_contains(d.reason, "OS user someone is no operator");
		/* An operator without a role (all taken away). */
		principal(&p, 0, "idle", 0);
		assert_int_equal(authz_check(&p, 5, a, &d), 0);
		assert_contains(d.reason, "idle is without a role");
		/* Two roles (role separation off): both work. */
		principal(&p, 0, "two", (1u << STORE_ROLE_AUDITOR) |
		    (1u << STORE_ROLE_CERT_MANAGER));
		assert_int_equal(authz_check(&p, 5, a, &d),
		    role == STORE_ROLE_AUDITOR ||
		    role == STORE_ROLE_CERT_MANAGER);
		if (!d.allowed)
			assert_contains(d.reason, "two is cert-manager and "
			    "auditor");
	}
	/* The example refusal in docs/roles.md, word for word. */
	principal(&p, 0, "alice", 1u << STORE_ROLE_AUDITOR);
	assert_int_equal(authz_check(&p, 4, AUTHZ_REVOKE, &d), 0);
	assert_string_equal(d.reason, "revoke needs the cert-manager role; "
	    "alice is auditor");
	assert_string_equal(d.actor, "alice/auditor");
	assert_int_equal(authz_action_parse("format-disk"), -1);
	assert_int_equal(authz_action_parse(NULL), -1);
	assert_string_equal(authz_action_name(AUTHZ_ACTION__MAX), "unknown");
	assert_int_equal(authz_check(&p, 4, AUTHZ_ACTION__MAX, &d), 0);
	assert_string_equal(store_role_name(STORE_ROLE__MAX), "unknown");
	assert_int_equal(store_role_parse("root"), -1);
}

/* ---- the store ---- */

struct sfx {
	char dir[4096];
	char path[4200];
	struct store *st;
};

static int
store_setup(void **state)
{
	struct sfx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->path, sizeof(fx->path), fx->dir, "store.db");
	if (store_open(fx->path, 1, &fx->st) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int
store_teardown(void **state)
{
	struct sfx *fx = *state;

	store_close(fx->st);
	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

static void
op_make(struct store_operator *op, const char *name, const char *user)
{
	memset(op, 0, sizeof(*op));
	snprintf(op->name, sizeof(op->name), "%s", name);
	snprintf(op->os_user, sizeof(op->os_user), "%s", user);
	snprintf(op->created_by, sizeof(op->created_by), "test");
	op->created_at = 1700000000;
}

static int
collect(const struct store_operator *op, void *arg)
{
	char *buf = arg;

	snprintf(buf + strlen(buf), 512 - strlen(buf), "%s:%s:%u:%d;",
	    op->name, op->os_user, op->roles, op->disabled_at != 0);
	return 0;
}

static void
test_store_operators(void **state)
{
	struct sfx *fx = *state;
	struct store_operator op, got;
	int64_t n, seq0, seq1;
	char list[512];
	int on;

	/* Separation is on in a store that never set it. */
	OK(store_role_separation_get(fx->st, &on));
	assert_int_equal(on, 1);
	OK(store_operator_count(fx->st, &n));
	assert_int_equal(n, 0);

	op_make(&op, "alice", "alice");
	OK(store_operator_add(fx->st, &op));
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_EXISTS);
	op_make(&op, "alice2", "alice");
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_EXISTS);
	assert_contains(ck_err_msg(), "OS user alice is operator alice");
	op_make(&op, "bad name", "x");
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_INVAL);
	op_make(&op, "-opt", "x");
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_INVAL);
	op_make(&op, "bob", "bob;rm");
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_INVAL);
	op_make(&op, "nobody", "");
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_INVAL);
	op_make(&op, "carol", "");
	snprintf(op.cert_sha256, sizeof(op.cert_sha256), "%064d", 7);
	OK(store_operator_add(fx->st, &op));
	OK(store_operator_by_cert(fx->st, op.cert_sha256, &got));
	assert_string_equal(got.name, "carol");
	assert_string_equal(got.os_user, "");
	snprintf(op.cert_sha256, sizeof(op.cert_sha256), "%064d", 8);
	op.cert_sha256[3] = 'G';
	snprintf(op.name, sizeof(op.name), "dave");
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_INVAL);

	/* One role each with separation on; a second is refused and
	 * changes nothing, not even the change sequence. */
	OK(store_operator_grant(fx->st, "alice", STORE_ROLE_AUDITOR, 1, "t"));
	assert_int_equal(store_operator_grant(fx->st, "alice",
	    STORE_ROLE_AUDITOR, 2, "t"), CK_E_EXISTS);
	OK(store_change_seq(fx->st, &seq0));
	assert_int_equal(store_operator_grant(fx->st, "alice",
	    STORE_ROLE_CERT_MANAGER, 2, "t"), CK_E_POLICY);
	assert_contains(ck_err_msg(), "role separation is on: operator alice "
	    "is auditor and may not also be cert-manager");
	OK(store_change_seq(fx->st, &seq1));
	assert_int_equal(seq0, seq1);
	OK(store_operator_by_os_user(fx->st, "alice", &got));
	assert_int_equal(got.roles, 1u << STORE_ROLE_AUDITOR);
	assert_int_equal(store_operator_grant(fx->st, "zed",
	    STORE_ROLE_AUDITOR, 2, "t"), CK_E_NOTFOUND);

	/* Off: two roles; on again is refused while alice has two. */
	OK(store_role_separation_set(fx->st, 0));
	OK(store_role_separation_get(fx->st, &on));
	assert_int_equal(on, 0);
	OK(store_operator_grant(fx->st, "alice", STORE_ROLE_CERT_MANAGER, 3,
	    "t"));
	assert_int_equal(store_role_separation_set(fx->st, 1), CK_E_POLICY);
	assert_contains(ck_err_msg(), "operator alice holds more than one");
	OK(store_role_separation_get(fx->st, &on));
	assert_int_equal(on, 0);
	OK(store_operator_ungrant(fx->st, "alice", STORE_ROLE_CERT_MANAGER,
	    4));
	assert_int_equal(store_operator_ungrant(fx->st, "alice",
	    STORE_ROLE_CERT_MANAGER, 4), CK_E_NOTFOUND);
	OK(store_role_separation_set(fx->st, 1));

	list[0] = '\0';
	OK(store_operator_list(fx->st, 0, collect, list));
	assert_string_equal(list, "alice:alice:4:0;carol::0:0;");

	/* Removal disables and takes the roles; the OS user is free for
	 * another; the name comes back without its old roles. */
	OK(store_operator_remove(fx->st, "alice", 10));
	assert_int_equal(store_operator_remove(fx->st, "alice", 11),
	    CK_E_STATE);
	assert_int_equal(store_operator_by_os_user(fx->st, "alice", &got),
	    CK_E_NOTFOUND);
	OK(store_operator_get(fx->st, "alice", &got));
	assert_int_equal(got.disabled_at, 10);
	assert_int_equal(got.roles, 0);
	assert_int_equal(store_operator_grant(fx->st, "alice",
	    STORE_ROLE_AUDITOR, 12, "t"), CK_E_STATE);
	OK(store_operator_count(fx->st, &n));
	assert_int_equal(n, 1);
	op_make(&op, "alicia", "alice");
	OK(store_operator_add(fx->st, &op));
	op_make(&op, "alice", "alice");
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_EXISTS);
	op_make(&op, "alice", "alice-new");
	OK(store_operator_add(fx->st, &op));
	OK(store_operator_get(fx->st, "alice", &got));
	assert_int_equal(got.disabled_at, 0);
	assert_int_equal(got.roles, 0);
	assert_string_equal(got.os_user, "alice-new");
	list[0] = '\0';
	OK(store_operator_list(fx->st, 1, collect, list));
	assert_string_equal(list, "alice:alice-new:0:0;alicia:alice:0:0;"
	    "carol::0:0;");
}

/* ---- the admin actions, run locally on a real CA ---- */

struct afx {
	char dir[4096];
	char home[4200];
	char pass[4200];
	struct ck_ca *ca;
	struct admin_env env;
	char me[64];
};

static int
admin_setup(void **state)
{
	struct afx *fx = calloc(1, sizeof(*fx));
	struct ck_pass_src src = { CK_PASS_FILE, NULL, -1 };
	struct ck_init_params p;
	struct passwd *pw = getpwuid(getuid());

	if (fx == NULL || pw == NULL)
		return -1;
	snprintf(fx->me, sizeof(fx->me), "%s", pw->pw_name);
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->home, sizeof(fx->home), fx->dir, "ca");
	tu_path(fx->pass, sizeof(fx->pass), fx->dir, "pass");
	tu_write_file(fx->pass, "admin test passphrase\n", 22, 0600);
	src.file = fx->pass;
	memset(&p, 0, sizeof(p));
	p.home = fx->home;
	p.root = 1;
	p.subject = "CN=authz test root";
	p.key_type = CK_KEY_EC_P256;
	p.days = 100;
	p.path_len = -1;
	p.domain = "example.com";
	p.pass = &src;
	p.scrypt_log2n = 10;
	if (ck_ca_init(&p) != 0 || ck_ca_open(fx->home, &fx->ca) != 0) {
		fprintf(stderr, "CA: %s\n", ck_err_msg());
		return -1;
	}
	fx->env.ca = fx->ca;
	fx->env.rd = fx->ca->st;
	fx->env.owner = getuid();
	*state = fx;
	return 0;
}

static int
admin_teardown(void **state)
{
	struct afx *fx = *state;

	ck_ca_close(fx->ca);
	tu_rmtree(fx->dir);
	free(fx);
	tu_keys_free();
	return 0;
}

/* Run a request given as JSON text as UID; the reply. */
static json_t *
exec_text(struct afx *fx, uid_t uid, const char *text)
{
	json_t *req = json_loads(text, 0, NULL), *reply;

	assert_non_null(req);
	reply = admin_exec(&fx->env, uid, req);
	json_decref(req);
	assert_non_null(reply);
	return reply;
}

static int
reply_ok(const json_t *j)
{
	return json_is_true(json_object_get(j, "ok"));
}

static const char *
reply_str(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s != NULL ? s : "";
}

static int
last_entry(const struct store_audit_entry *e, void *arg)
{
	char *buf = arg;

	snprintf(buf, 600, "%s|%s|%s|%s|%s", e->user, e->action, e->object,
	    e->result, e->detail);
	return 0;
}

static void
test_admin_local(void **state)
{
	struct afx *fx = *state;
	char text[512], last[600], want[600];
	uid_t me = getuid(), other = me + 4242;
	json_t *j;

	/* Bootstrap: the owner does everything, nobody else anything. */
	j = exec_text(fx, me, "{\"action\":\"token-list\"}");
	assert_true(reply_ok(j));
	json_decref(j);
	j = exec_text(fx, other, "{\"action\":\"token-list\"}");
	assert_false(reply_ok(j));
	assert_true(json_is_true(json_object_get(j, "refused")));
	assert_contains(reply_str(j, "error"), "token-list needs the ca-admin "
	    "role; no operator is defined yet");
	json_decref(j);
	OK(store_audit_iter(fx->ca->st, 1, last_entry, last));
	assert_contains(last, "|token-list||refused|token-list needs the "
	    "ca-admin role");

	/* The owner makes themself an auditor. */
	snprintf(text, sizeof(text), "{\"action\":\"operator-add\","
	    "\"name\":\"me\",\"role\":\"auditor\",\"os_user\":\"%s\"}",
	    fx->me);
	j = exec_text(fx, me, text);
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "Operator me");
	json_decref(j);
	OK(store_audit_iter(fx->ca->st, 1, last_entry, last));
	snprintf(want, sizeof(want), "|operator-add|me|ok|role auditor, OS "
	    "user %s", fx->me);
	assert_contains(last, want);

	/* Now a revocation needs a certificate manager. */
	j = exec_text(fx, me, "{\"action\":\"revoke\",\"serial\":\"0A\"}");
	assert_false(reply_ok(j));
	assert_string_equal(reply_str(j, "error"), "revoke needs the "
	    "cert-manager role; me is auditor");
	json_decref(j);
	OK(store_audit_iter(fx->ca->st, 1, last_entry, last));
	assert_string_equal(last, "me/auditor|revoke|0A|refused|revoke needs "
	    "the cert-manager role; me is auditor");

	/* What the auditor may, named as operator and role. */
	j = exec_text(fx, me, "{\"action\":\"audit-show\",\"from\":1}");
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "me/auditor");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"audit-verify\"}");
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "audit log intact");
	json_decref(j);
	/* An entry that is not UTF-8 (written by anything that audits raw
	 * input) shows with '?' instead of breaking the reply. */
	OK(audit_append(fx->ca->st, NULL, "x-test", "a\xff\xc0\x80" "b\xed\xa0"
	    "\x80" "c\xe2\x82", AUDIT_OK, "caf\xc3\xa9"));
	j = exec_text(fx, me, "{\"action\":\"audit-show\",\"from\":1}");
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "a???b???c?? -- caf\xc3\xa9");
	json_decref(j);

	/* The owner still manages operators; a second role is refused. */
	j = exec_text(fx, me, "{\"action\":\"operator-grant\",\"name\":\"me\","
	    "\"role\":\"cert-manager\"}");
	assert_false(reply_ok(j));
	assert_false(json_is_true(json_object_get(j, "refused")));
	assert_contains(reply_str(j, "error"), "role separation is on");
	json_decref(j);
	OK(store_audit_iter(fx->ca->st, 1, last_entry, last));
	assert_contains(last, "|operator-grant|me|refused|role separation");
	j = exec_text(fx, me, "{\"action\":\"operator-list\"}");
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "auditor");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"token-list\"}");
	assert_false(reply_ok(j));
	json_decref(j);

	/* Malformed requests: refused before anything is judged. */
	j = exec_text(fx, me, "[1]");
	assert_int_equal(json_integer_value(json_object_get(j, "code")),
	    CK_E_INVAL);
	json_decref(j);
	j = exec_text(fx, me, "{}");
	assert_contains(reply_str(j, "error"), "\"action\" is missing");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":7}");
	assert_contains(reply_str(j, "error"), "must be a string");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"init\"}");
	assert_contains(reply_str(j, "error"), "unknown admin action");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"audit-show\",\"from\":\"x\"}");
	assert_false(reply_ok(j));
	assert_contains(reply_str(j, "error"), "must be an integer");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"operator-add\",\"name\":\"x\","
	    "\"role\":\"god\",\"os_user\":\"x\"}");
	assert_contains(reply_str(j, "error"), "unknown role");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"operator-add\",\"name\":\"x\","
	    "\"role\":\"auditor\",\"os_user\":\"no-such-user-ck7\"}");
	assert_contains(reply_str(j, "error"), "no OS user 'no-such-user-ck7'");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"operator-role-separation\"}");
	assert_contains(reply_str(j, "error"), "\"on\" is missing");
	json_decref(j);

	/* Removing the last operator gives the owner everything back. */
	j = exec_text(fx, me, "{\"action\":\"operator-remove\",\"name\":"
	    "\"me\"}");
	assert_true(reply_ok(j));
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"token-list\"}");
	assert_true(reply_ok(j));
	json_decref(j);
}

/* Backups, drills and custody as admin requests: the new arguments. */
static void
test_admin_backup(void **state)
{
	struct afx *fx = *state;
	char text[512], last[600];
	uid_t me = getuid(), other = me + 4242;
	const char *art =
	    "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
	json_t *j;

	/* Custody: an entry (kind from the file's extension: a new
	 * artefact), the ledger shown and verified. */
	snprintf(text, sizeof(text), "{\"action\":\"custody\",\"op\":\"add\","
	    "\"artefact\":\"%s\",\"event\":\"created\",\"kind_guess\":"
	    "\"key-share\",\"place\":\"safe B\",\"detail\":\"bag 7\"}", art);
	j = exec_text(fx, me, text);
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "Recorded custody entry 1: "
	    "created, artefact c0ffee00c0ffee00...");
	json_decref(j);
	/* The guess does not change an artefact's kind. */
	snprintf(text, sizeof(text), "{\"action\":\"custody\",\"op\":\"add\","
	    "\"artefact\":\"%s\",\"event\":\"stored\",\"kind_guess\":"
	    "\"data-backup\",\"place\":\"safe C\"}", art);
	j = exec_text(fx, me, text);
	assert_true(reply_ok(j));
	json_decref(j);
	snprintf(text, sizeof(text), "{\"action\":\"custody\",\"op\":\"show\","
	    "\"artefact\":\"%s\",\"json\":true}", art);
	j = exec_text(fx, me, text);
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "\"place\": \"safe C\"");
	assert_contains(reply_str(j, "out"), "\"kind\": \"key-share\"");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"custody\",\"op\":\"verify\"}");
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "custody ledger intact: 2 "
	    "entries verified");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"custody\",\"op\":\"add\","
	    "\"artefact\":\"C0FFEE\",\"event\":\"stored\",\"place\":\"x\"}");
	assert_false(reply_ok(j));
	assert_contains(reply_str(j, "error"), "64 lower-case hex digits");
	json_decref(j);
	snprintf(text, sizeof(text), "{\"action\":\"custody\",\"op\":\"add\","
	    "\"artefact\":\"%s\",\"event\":\"stored\",\"kind_guess\":"
	    "\"teapot\",\"place\":\"x\"}", art);
	j = exec_text(fx, me, text);
	assert_contains(reply_str(j, "error"), "\"kind_guess\" is not a kind");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"custody\",\"op\":\"burn\"}");
	assert_contains(reply_str(j, "error"), "add, show or verify");
	json_decref(j);

	/* A verification made elsewhere, recorded; a failure before any
	 * set was read is audited by the file's name. */
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"verify\","
	    "\"set\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaa\",\"ok\":true,\"detail\":\"all checked\"}");
	assert_true(reply_ok(j));
	json_decref(j);
	OK(store_audit_iter(fx->ca->st, 1, last_entry, last));
	assert_contains(last, "|backup-verify|aaaaaaaa");
	assert_contains(last, "|ok|ok: all checked");
	j = exec_text(fx, me, "{\"action\":\"drill\",\"op\":\"record\","
	    "\"file\":\"x.ckb\",\"ok\":false,\"detail\":\"not the key\"}");
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "audit log only");
	json_decref(j);
	OK(store_audit_iter(fx->ca->st, 1, last_entry, last));
	assert_contains(last, "|backup-drill|x.ckb|failed|not the key");
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"verify\","
	    "\"set\":\"ab\",\"ok\":true,\"detail\":\"d\"}");
	assert_contains(reply_str(j, "error"), "\"set\" is a set's id");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"verify\","
	    "\"ok\":true,\"detail\":\"two\\nlines\"}");
	assert_contains(reply_str(j, "error"), "without control characters");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"verify\","
	    "\"ok\":true}");
	assert_contains(reply_str(j, "error"), "\"detail\" is missing");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"list\"}");
	assert_true(reply_ok(j));
	assert_contains(reply_str(j, "out"), "No backup sets recorded.");
	json_decref(j);

	/* A backup is certkeepd's to make; the owner may name where. */
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"make\","
	    "\"to\":[\"/nonexistent\"],\"keep_last\":2}");
	assert_contains(reply_str(j, "error"), "needs certkeepd");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"config\",\"op\":\"reload\"}");
	assert_contains(reply_str(j, "error"), "reload through the admin "
	    "interface needs certkeepd");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"config\",\"op\":\"install\"}");
	assert_contains(reply_str(j, "error"), "ca install is offline work");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"make\","
	    "\"kind\":\"sideways\"}");
	assert_contains(reply_str(j, "error"), "full, incremental or "
	    "incremental-or-full");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"make\","
	    "\"recipients\":[\"not a certificate\"]}");
	assert_contains(reply_str(j, "error"), "not a PEM certificate");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"make\","
	    "\"zstd_level\":0}");
	assert_contains(reply_str(j, "error"), "-7..-1 or 1..19");
	json_decref(j);

	/* An operator: the configured destinations only. */
	snprintf(text, sizeof(text), "{\"action\":\"operator-add\","
	    "\"name\":\"keeper\",\"role\":\"backup-operator\",\"os_user\":"
	    "\"%s\"}", fx->me);
	j = exec_text(fx, me, text);
	assert_true(reply_ok(j));
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"backup\",\"op\":\"make\","
	    "\"to\":[\"/elsewhere\"]}");
	assert_false(reply_ok(j));
	assert_contains(reply_str(j, "error"), "naming them is the home "
	    "owner's");
	json_decref(j);
	j = exec_text(fx, me, "{\"action\":\"custody\",\"op\":\"verify\"}");
	assert_true(reply_ok(j));
	json_decref(j);
	/* Everyone else: refused, audited. */
	j = exec_text(fx, other, "{\"action\":\"custody\",\"op\":\"show\"}");
	assert_false(reply_ok(j));
	assert_true(json_is_true(json_object_get(j, "refused")));
	assert_contains(reply_str(j, "error"), "custody needs the "
	    "backup-operator role");
	json_decref(j);
	OK(store_audit_iter(fx->ca->st, 1, last_entry, last));
	assert_contains(last, "|custody||refused|custody needs the "
	    "backup-operator role");
	j = exec_text(fx, me, "{\"action\":\"config\",\"op\":\"install\"}");
	assert_contains(reply_str(j, "error"), "config needs the ca-admin role");
	json_decref(j);
	j = exec_text(fx, other, "{\"action\":\"drill\",\"op\":\"files\"}");
	assert_contains(reply_str(j, "error"), "drill needs the "
	    "backup-operator role");
	json_decref(j);
}

/* ---- the socket's decoder ---- */

static void
test_decode(void **state)
{
	unsigned char buf[64];
	json_t *j = NULL;

	(void)state;
	memcpy(buf, "\0\0\0\x02{}", 6);
	OK(adminsock_decode(buf, 6, &j));
	assert_true(json_is_object(j));
	json_decref(j);
	assert_int_equal(adminsock_decode(buf, 3, &j), CK_E_PARSE);
	assert_null(j);
	assert_int_equal(adminsock_decode(buf, 5, &j), CK_E_PARSE);
	assert_int_equal(adminsock_decode(buf, 7, &j), CK_E_PARSE);
	memcpy(buf, "\0\0\0\0", 4);
	assert_int_equal(adminsock_decode(buf, 4, &j), CK_E_TOOBIG);
	memcpy(buf, "\0\x01\0\x01", 4);	/* 65537: one over */
	assert_int_equal(adminsock_decode(buf, 4, &j), CK_E_TOOBIG);
	memcpy(buf, "\0\0\0\x03[1]", 7);
	assert_int_equal(adminsock_decode(buf, 7, &j), CK_E_PARSE);
	assert_contains(ck_err_msg(), "not a JSON object");
	memcpy(buf, "\0\0\0\x0d{\"a\":1,\"a\":2}", 17);
	assert_int_equal(adminsock_decode(buf, 17, &j), CK_E_PARSE);
	memcpy(buf, "\0\0\0\x03{\0}", 7);
	assert_int_equal(adminsock_decode(buf, 7, &j), CK_E_PARSE);
	assert_null(j);
}

/* Binding, rebinding and unbinding certificates; principals by cert. */
static void
test_store_operator_cert(void **state)
{
	struct sfx *fx = *state;
	struct store_operator op, got;
	struct authz_principal p;
	struct authz_decision d;
	char fp1[65], fp2[65];

	memset(fp1, 'a', 64);
	fp1[64] = '\0';
	memset(fp2, 'b', 64);
	fp2[64] = '\0';
	/* Known by a certificate only. */
	op_make(&op, "remote1", "");
	snprintf(op.cert_sha256, sizeof(op.cert_sha256), "%s", fp1);
	OK(store_operator_add(fx->st, &op));
	OK(store_operator_grant(fx->st, "remote1", STORE_ROLE_AUDITOR, 1,
	    "test"));
	OK(store_operator_by_cert(fx->st, fp1, &got));
	assert_string_equal(got.name, "remote1");
	/* The same certificate for another operator: refused. */
	op_make(&op, "remote2", "someone2");
	snprintf(op.cert_sha256, sizeof(op.cert_sha256), "%s", fp1);
	assert_int_equal(store_operator_add(fx->st, &op), CK_E_EXISTS);
	op.cert_sha256[0] = '\0';
	OK(store_operator_add(fx->st, &op));
	assert_int_equal(store_operator_set_cert(fx->st, "remote2", fp1),
	    CK_E_EXISTS);
	assert_int_equal(store_operator_set_cert(fx->st, "remote2", "AB"),
	    CK_E_INVAL);
	assert_int_equal(store_operator_set_cert(fx->st, "ghost", fp2),
	    CK_E_NOTFOUND);
	/* Rebinding: the old certificate is nobody's any more. */
	OK(store_operator_set_cert(fx->st, "remote1", fp2));
	assert_int_equal(store_operator_by_cert(fx->st, fp1, &got),
	    CK_E_NOTFOUND);
	OK(store_operator_by_cert(fx->st, fp2, &got));
	assert_string_equal(got.name, "remote1");
	/* Unbinding one known by nothing else is refused; with an OS user
	 * it works. */
	assert_int_equal(store_operator_set_cert(fx->st, "remote1", ""),
	    CK_E_STATE);
	assert_contains(ck_err_msg(), "has no OS user");
	OK(store_operator_set_cert(fx->st, "remote2", fp1));
	OK(store_operator_set_cert(fx->st, "remote2", ""));
	assert_int_equal(store_operator_by_cert(fx->st, fp1, &got),
	    CK_E_NOTFOUND);
	/* A principal by certificate: the operator, never the owner. */
	OK(authz_principal_load_cert(fx->st, fp2, &p));
	assert_int_equal(p.is_operator, 1);
	assert_int_equal(p.is_owner, 0);
	assert_int_equal(authz_check(&p, 2, AUTHZ_AUDIT_SHOW, &d), 1);
	assert_string_equal(d.actor, "remote1/auditor");
	assert_int_equal(authz_check(&p, 2, AUTHZ_OPERATOR_ADD, &d), 0);
	assert_string_equal(d.reason, "operator-add needs the ca-admin role; "
	    "remote1 is auditor");
	OK(authz_principal_load_cert(fx->st, fp1, &p));
	assert_int_equal(p.is_operator, 0);
	assert_int_equal(p.is_owner, 0);
	assert_int_equal(authz_check(&p, 2, AUTHZ_REVOKE, &d), 0);
	assert_contains(d.reason, "certificate cert:aaaaaaaaaaaaaaaa is no "
	    "operator");
	/* Removed: its certificate is nobody's. */
	OK(store_operator_remove(fx->st, "remote1", 2));
	OK(authz_principal_load_cert(fx->st, fp2, &p));
	assert_int_equal(p.is_operator, 0);
	assert_int_equal(store_operator_set_cert(fx->st, "remote1", fp2),
	    CK_E_STATE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix_table),
		cmocka_unit_test_setup_teardown(test_store_operators,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_store_operator_cert,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_admin_backup,
		    admin_setup, admin_teardown),
		cmocka_unit_test_setup_teardown(test_admin_local,
		    admin_setup, admin_teardown),
		cmocka_unit_test(test_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
