/*
 * store_authz.c - operators and roles in the SQLite store (store_authz.h;
 * the tables are migration 7 of store_sqlite.c, their backup description
 * is in store_dump.c).
 */
#include "store/store_authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store_int.h"

#define OP_COLS "name, os_user, cert_sha256, created_at, created_by, " \
	"disabled_at, change_seq"
#define SEPARATION_KEY "role_separation"

static const char *const role_names[STORE_ROLE__MAX] = {
	"ca-admin", "cert-manager", "auditor", "backup-operator"
};

const char *
store_role_name(enum store_role r)
{
	if ((unsigned)r >= STORE_ROLE__MAX)
		return "unknown";
	return role_names[r];
}

int
store_role_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < STORE_ROLE__MAX; i++)
		if (strcmp(s, role_names[i]) == 0)
			return i;
	return -1;
}

/* 1..SIZE-1 characters of [A-Za-z0-9._-], not starting with '-'. */
static int
valid_word(const char *s, size_t size)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '-')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i + 1 >= size)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-'))
			return 0;
	}
	return 1;
}

static int
valid_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

static void
copy_col(sqlite3_stmt *s, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, size, "%s", t != NULL ? (const char *)t : "");
}

/* The active roles of NAME as a bit set. */
static int
load_roles(struct store *st, const char *name, unsigned *roles)
{
	sqlite3_stmt *s = NULL;
	int r, rc, role;

	*roles = 0;
	if ((r = store_stmt_prepare(st, "SELECT role FROM operator_roles "
	    "WHERE operator = ?1 AND revoked_at IS NULL", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		role = store_role_parse((const char *)sqlite3_column_text(s,
		    0));
		if (role < 0) {
			r = ck_err_set(CK_E_STORE, "operator %s: an unknown "
			    "role is stored", name);
			break;
		}
		*roles |= 1u << role;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "reading operator roles");
	store_stmt_done(st, s);
	return r;
}

static int
op_from_row(struct store *st, sqlite3_stmt *s, struct store_operator *op)
{
	memset(op, 0, sizeof(*op));
	if (sqlite3_column_bytes(s, 0) >= (int)sizeof(op->name) ||
	    sqlite3_column_bytes(s, 1) >= (int)sizeof(op->os_user) ||
	    sqlite3_column_bytes(s, 2) >= (int)sizeof(op->cert_sha256))
		return ck_err_set(CK_E_STORE, "a stored operator has a field "
		    "longer than allowed");
	copy_col(s, 0, op->name, sizeof(op->name));
	copy_col(s, 1, op->os_user, sizeof(op->os_user));
	copy_col(s, 2, op->cert_sha256, sizeof(op->cert_sha256));
	op->created_at = sqlite3_column_int64(s, 3);
	copy_col(s, 4, op->created_by, sizeof(op->created_by));
	op->disabled_at = sqlite3_column_int64(s, 5);
	op->change_seq = sqlite3_column_int64(s, 6);
	return load_roles(st, op->name, &op->roles);
}

/* Run a one-row operator query with one text parameter. */
static int
op_query(struct store *st, const char *sql, const char *arg,
    const char *what, struct store_operator *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = op_from_row(st, s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no operator %s %.64s", what,
		    arg);
		break;
	default:
		r = store_db_err(st, "reading operator");
	}
	store_stmt_done(st, s);
	return r;
}

int
store_operator_get(struct store *st, const char *name,
    struct store_operator *out)
{
	return op_query(st, "SELECT " OP_COLS " FROM operators WHERE "
	    "name = ?1", name, "named", out);
}

int
store_operator_by_os_user(struct store *st, const char *os_user,
    struct store_operator *out)
{
	return op_query(st, "SELECT " OP_COLS " FROM operators WHERE "
	    "os_user = ?1 AND disabled_at IS NULL", os_user,
	    "for OS user", out);
}

int
store_operator_by_cert(struct store *st, const char *cert_sha256,
    struct store_operator *out)
{
	return op_query(st, "SELECT " OP_COLS " FROM operators WHERE "
	    "cert_sha256 = ?1 AND disabled_at IS NULL", cert_sha256,
	    "with certificate", out);
}

int
store_operator_add(struct store *st, const struct store_operator *op)
{
	struct store_operator old;
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r, rc, revive = 0;

	if (!valid_word(op->name, sizeof(op->name)))
		return ck_err_set(CK_E_INVAL, "an operator name is 1 to %d "
		    "letters, digits, '.', '_' or '-'",
		    STORE_OPERATOR_NAME_SIZE - 1);
	if (op->os_user[0] != '\0' &&
	    !valid_word(op->os_user, sizeof(op->os_user)))
		return ck_err_set(CK_E_INVAL, "operator %s: '%.40s' is not an "
		    "OS user name", op->name, op->os_user);
	if (op->cert_sha256[0] != '\0' && !valid_sha256_hex(op->cert_sha256))
		return ck_err_set(CK_E_INVAL, "operator %s: a certificate "
		    "fingerprint is 64 lower-case hex digits", op->name);
	if (op->os_user[0] == '\0' && op->cert_sha256[0] == '\0')
		return ck_err_set(CK_E_INVAL, "operator %s: an OS user or a "
		    "certificate is needed to know them by", op->name);
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	r = store_operator_get(st, op->name, &old);
	if (r == 0 && old.disabled_at == 0) {
		r = ck_err_set(CK_E_EXISTS, "operator %s exists already",
		    op->name);
		goto out;
	}
	if (r == 0)
		revive = 1;
	else if (r != CK_E_NOTFOUND)
		goto out;
	ck_err_clear();
	if (op->os_user[0] != '\0' &&
	    (r = store_operator_by_os_user(st, op->os_user, &old)) !=
	    CK_E_NOTFOUND) {
		if (r == 0)
			r = ck_err_set(CK_E_EXISTS, "OS user %s is operator "
			    "%s already", op->os_user, old.name);
		goto out;
	}
	if (op->cert_sha256[0] != '\0' &&
	    (r = store_operator_by_cert(st, op->cert_sha256, &old)) !=
	    CK_E_NOTFOUND) {
		if (r == 0)
			r = ck_err_set(CK_E_EXISTS, "that certificate is "
			    "operator %s's already", old.name);
		goto out;
	}
	ck_err_clear();
	r = revive ? store_stmt_prepare(st, "UPDATE operators SET "
	    "os_user = ?2, cert_sha256 = ?3, created_at = ?4, created_by = ?5,"
	    " disabled_at = NULL, change_seq = ?6 WHERE name = ?1", &s) :
	    store_stmt_prepare(st, "INSERT INTO operators (" OP_COLS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)", &s);
	if (r != 0)
		goto out;
	sqlite3_bind_text(s, 1, op->name, -1, SQLITE_STATIC);
	if (op->os_user[0] != '\0')
		sqlite3_bind_text(s, 2, op->os_user, -1, SQLITE_STATIC);
	if (op->cert_sha256[0] != '\0')
		sqlite3_bind_text(s, 3, op->cert_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, op->created_at);
	sqlite3_bind_text(s, 5, op->created_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)	/* Defensive: checked above. */
		r = ck_err_set(CK_E_EXISTS, "operator %s: the name, OS user "
		    "or certificate is in use", op->name);
	else if (rc != SQLITE_DONE)
		r = store_db_err(st, "recording operator");
	store_stmt_done(st, s);
out:
	return store_tx_end(st, r);
}

int
store_operator_remove(struct store *st, const char *name, int64_t when)
{
	struct store_operator op;
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_operator_get(st, name, &op)) != 0)
		goto out;
	if (op.disabled_at != 0) {
		r = ck_err_set(CK_E_STATE, "operator %s was removed already",
		    name);
		goto out;
	}
	if ((r = store_stmt_prepare(st, "UPDATE operators SET disabled_at = "
	    "?2, change_seq = ?3 WHERE name = ?1", &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, when);
	sqlite3_bind_int64(s, 3, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "removing operator");
	store_stmt_done(st, s);
	if (r != 0)
		goto out;
	if ((r = store_stmt_prepare(st, "UPDATE operator_roles SET "
	    "revoked_at = ?2, change_seq = ?3 WHERE operator = ?1 AND "
	    "revoked_at IS NULL", &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, when);
	sqlite3_bind_int64(s, 3, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "revoking operator roles");
	store_stmt_done(st, s);
out:
	return store_tx_end(st, r);
}

int
store_operator_set_cert(struct store *st, const char *name,
    const char *cert_sha256)
{
	struct store_operator op, old;
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if (cert_sha256[0] != '\0' && !valid_sha256_hex(cert_sha256))
		return ck_err_set(CK_E_INVAL, "operator %s: a certificate "
		    "fingerprint is 64 lower-case hex digits", name);
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_operator_get(st, name, &op)) != 0)
		goto out;
	if (op.disabled_at != 0) {
		r = ck_err_set(CK_E_STATE, "operator %s was removed", name);
		goto out;
	}
	if (cert_sha256[0] == '\0' && op.os_user[0] == '\0') {
		r = ck_err_set(CK_E_STATE, "operator %s has no OS user: without "
		    "its certificate nobody could ever be them (remove the "
		    "operator instead)", name);
		goto out;
	}
	if (cert_sha256[0] != '\0' &&
	    (r = store_operator_by_cert(st, cert_sha256, &old)) !=
	    CK_E_NOTFOUND) {
		if (r == 0)
			r = ck_err_set(CK_E_EXISTS, "that certificate is "
			    "operator %s's already", old.name);
		goto out;
	}
	ck_err_clear();
	if ((r = store_stmt_prepare(st, "UPDATE operators SET cert_sha256 = "
	    "?2, change_seq = ?3 WHERE name = ?1", &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if (cert_sha256[0] != '\0')
		sqlite3_bind_text(s, 2, cert_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "binding the operator's certificate");
	store_stmt_done(st, s);
out:
	return store_tx_end(st, r);
}

int
store_operator_list(struct store *st, int all,
    int (*cb)(const struct store_operator *op, void *arg), void *arg)
{
	struct store_operator *v = NULL, *nv;
	sqlite3_stmt *s = NULL;
	size_t n = 0, cap = 0, i;
	int r, rc;

	/* Collected first: the roles of each take another statement, and
	 * CB may use the store. */
	if ((r = store_stmt_prepare(st, all ? "SELECT " OP_COLS " FROM "
	    "operators ORDER BY name" : "SELECT " OP_COLS " FROM operators "
	    "WHERE disabled_at IS NULL ORDER BY name", &s)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				r = CK_E_NOMEM;
				break;
			}
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		if (sqlite3_column_bytes(s, 0) >= (int)sizeof(v[n].name) ||
		    sqlite3_column_bytes(s, 1) >= (int)sizeof(v[n].os_user) ||
		    sqlite3_column_bytes(s, 2) >=
		    (int)sizeof(v[n].cert_sha256)) {
			r = ck_err_set(CK_E_STORE, "a stored operator has a "
			    "field longer than allowed");
			break;
		}
		copy_col(s, 0, v[n].name, sizeof(v[n].name));
		copy_col(s, 1, v[n].os_user, sizeof(v[n].os_user));
		copy_col(s, 2, v[n].cert_sha256, sizeof(v[n].cert_sha256));
		v[n].created_at = sqlite3_column_int64(s, 3);
		copy_col(s, 4, v[n].created_by, sizeof(v[n].created_by));
		v[n].disabled_at = sqlite3_column_int64(s, 5);
		v[n].change_seq = sqlite3_column_int64(s, 6);
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "listing operators");
	store_stmt_done(st, s);
	for (i = 0; r == 0 && i < n; i++)
		if ((r = load_roles(st, v[i].name, &v[i].roles)) == 0)
			r = cb(&v[i], arg);
	free(v);
	return r;
}

int
store_operator_count(struct store *st, int64_t *n)
{
	sqlite3_stmt *s = NULL;
	int r;

	*n = 0;
	if ((r = store_stmt_prepare(st, "SELECT count(*) FROM operators "
	    "WHERE disabled_at IS NULL", &s)) != 0)
		return r;
	if (sqlite3_step(s) == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	else
		r = store_db_err(st, "counting operators");
	store_stmt_done(st, s);
	return r;
}

/* The roles in SET as "a, b" into BUF. */
static void
roles_text(unsigned set, char *buf, size_t size)
{
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < STORE_ROLE__MAX; i++)
		if (set & (1u << i)) {
			snprintf(buf + len, size - len, "%s%s",
			    len ? ", " : "", role_names[i]);
			len = strlen(buf);
		}
}

int
store_operator_grant(struct store *st, const char *name,
    enum store_role role, int64_t when, const char *by)
{
	struct store_operator op;
	sqlite3_stmt *s = NULL;
	char held[128];
	int64_t seq;
	int r, on;

	if ((unsigned)role >= STORE_ROLE__MAX)
		return ck_err_set(CK_E_INVAL, "unknown role");
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_operator_get(st, name, &op)) != 0)
		goto out;
	if (op.disabled_at != 0) {
		r = ck_err_set(CK_E_STATE, "operator %s was removed", name);
		goto out;
	}
	if (op.roles & (1u << role)) {
		r = ck_err_set(CK_E_EXISTS, "operator %s holds the %s role "
		    "already", name, role_names[role]);
		goto out;
	}
	if ((r = store_role_separation_get(st, &on)) != 0)
		goto out;
	if (on && op.roles != 0) {
		roles_text(op.roles, held, sizeof(held));
		r = ck_err_set(CK_E_POLICY, "role separation is on: operator "
		    "%s is %s and may not also be %s (one role per operator)",
		    name, held, role_names[role]);
		goto out;
	}
	if ((r = store_stmt_prepare(st, "INSERT INTO operator_roles "
	    "(operator, role, granted_at, granted_by, revoked_at, change_seq)"
	    " VALUES (?1, ?2, ?3, ?4, NULL, ?5) ON CONFLICT (operator, role) "
	    "DO UPDATE SET granted_at = excluded.granted_at, granted_by = "
	    "excluded.granted_by, revoked_at = NULL, change_seq = "
	    "excluded.change_seq", &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, role_names[role], -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, when);
	sqlite3_bind_text(s, 4, by != NULL ? by : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "granting role");
	store_stmt_done(st, s);
out:
	return store_tx_end(st, r);
}

int
store_operator_ungrant(struct store *st, const char *name,
    enum store_role role, int64_t when)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((unsigned)role >= STORE_ROLE__MAX)
		return ck_err_set(CK_E_INVAL, "unknown role");
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "UPDATE operator_roles SET "
	    "revoked_at = ?3, change_seq = ?4 WHERE operator = ?1 AND "
	    "role = ?2 AND revoked_at IS NULL", &s)) != 0)
		return store_tx_end(st, r);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, role_names[role], -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, when);
	sqlite3_bind_int64(s, 4, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "taking a role");
	else if (sqlite3_changes(store_sqlite_db(st)) != 1)
		r = ck_err_set(CK_E_NOTFOUND, "operator %s does not hold the "
		    "%s role", name, role_names[role]);
	store_stmt_done(st, s);
	return store_tx_end(st, r);
}

int
store_role_separation_get(struct store *st, int *on)
{
	char *v = NULL;
	int r;

	*on = 1;
	if ((r = store_meta_get(st, SEPARATION_KEY, &v)) == CK_E_NOTFOUND) {
		ck_err_clear();
		return 0;
	}
	if (r != 0)
		return r;
	*on = strcmp(v, "off") != 0;
	free(v);
	return 0;
}

int
store_role_separation_set(struct store *st, int on)
{
	sqlite3_stmt *s = NULL;
	int r, rc;

	if ((r = store_tx_begin(st)) != 0)
		return r;
	if (on) {
		if ((r = store_stmt_prepare(st, "SELECT operator FROM "
		    "operator_roles WHERE revoked_at IS NULL GROUP BY operator"
		    " HAVING count(*) > 1 ORDER BY operator LIMIT 1",
		    &s)) != 0)
			goto out;
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			r = ck_err_set(CK_E_POLICY, "cannot turn role "
			    "separation on: operator %s holds more than one "
			    "role (take all but one away first)",
			    (const char *)sqlite3_column_text(s, 0));
		else if (rc != SQLITE_DONE)
			r = store_db_err(st, "checking roles");
		store_stmt_done(st, s);
		if (r != 0)
			goto out;
	}
	r = store_meta_set(st, SEPARATION_KEY, on ? "on" : "off");
out:
	return store_tx_end(st, r);
}
