/*
 * store_acme.c - ACME accounts, orders, authorizations and challenges in
 * the SQLite store (store_acme.h; the tables are migration 4 of
 * store_sqlite.c, their backup descriptions are in store_dump.c).
 *
 * Same habits as store_sqlite.c: statements are string literals handed to
 * the store's statement cache, every mutation takes the next change
 * sequence value inside its own transaction level, and a failed mutation
 * rolls that level back, so a refusal changes nothing, not even the
 * sequence.
 */
#include "store/store_acme.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store_int.h"

/* ------------------------------------------------------- state machines */

static const char *const account_statuses[] = {
	"valid", "deactivated", "revoked", NULL
};
static const char *const order_statuses[] = {
	"pending", "ready", "processing", "valid", "invalid", NULL
};
static const char *const authz_statuses[] = {
	"pending", "valid", "invalid", "deactivated", "expired", "revoked",
	NULL
};
static const char *const challenge_statuses[] = {
	"pending", "processing", "valid", "invalid", NULL
};
static const char *const challenge_types[] = {
	"http-01", "dns-01", "tls-alpn-01", NULL
};
static const char *const identifier_types[] = { "dns", "ip", NULL };

struct edge {
	const char *from, *to;
};

/* RFC 8555 section 7.1.6; nothing goes back. */
static const struct edge account_edges[] = {
	{ "valid", "deactivated" }, { "valid", "revoked" }, { NULL, NULL }
};
static const struct edge order_edges[] = {
	{ "pending", "ready" }, { "pending", "invalid" },
	{ "ready", "processing" }, { "ready", "invalid" },
	{ "processing", "valid" }, { "processing", "invalid" },
	{ NULL, NULL }
};
static const struct edge authz_edges[] = {
	{ "pending", "valid" }, { "pending", "invalid" },
	{ "pending", "deactivated" }, { "pending", "expired" },
	{ "pending", "revoked" },
	{ "valid", "deactivated" }, { "valid", "expired" },
	{ "valid", "revoked" },
	{ NULL, NULL }
};
static const struct edge challenge_edges[] = {
	{ "pending", "processing" }, { "processing", "valid" },
	{ "processing", "invalid" }, { NULL, NULL }
};

static int
name_in(const char *const *list, const char *s)
{
	if (s == NULL)
		return 0;
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

static int
edge_ok(const struct edge *e, const char *from, const char *to)
{
	if (from == NULL || to == NULL)
		return 0;
	for (; e->from != NULL; e++)
		if (strcmp(e->from, from) == 0 && strcmp(e->to, to) == 0)
			return 1;
	return 0;
}

int
store_acme_account_status_valid(const char *name)
{
	return name_in(account_statuses, name);
}

int
store_acme_order_status_valid(const char *name)
{
	return name_in(order_statuses, name);
}

int
store_acme_authz_status_valid(const char *name)
{
	return name_in(authz_statuses, name);
}

int
store_acme_challenge_status_valid(const char *name)
{
	return name_in(challenge_statuses, name);
}

/* ------------------------------------------------------------- helpers */

/* A non-empty string that fits a field of SIZE bytes. */
static int
fits(const char *s, size_t size)
{
	return s != NULL && *s != '\0' && strnlen(s, size) < size;
}

/* A fixed field's status, "" standing for DEF; "" (refused by the
 * callers' checks) if the field is not terminated. */
static const char *
status_or(const char *s, const char *def)
{
	if (strnlen(s, STORE_ACME_STATUS_SIZE) == STORE_ACME_STATUS_SIZE)
		return "";
	return s[0] == '\0' ? def : s;
}

static void
bind_opt(sqlite3_stmt *s, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

/* Bind a fixed-size text field, never reading past its array. */
static void
bind_fixed(sqlite3_stmt *s, int i, const char *v, size_t size)
{
	sqlite3_bind_text(s, i, v, (int)strnlen(v, size), SQLITE_STATIC);
}

/* Copy text column I into a fixed field; refuses what does not fit. */
static int
col_fixed(sqlite3_stmt *s, int i, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);

	if (n >= size)
		return ck_err_set(CK_E_STORE, "ACME store: %s is %zu bytes, "
		    "longer than %zu", sqlite3_column_name(s, i), n, size - 1);
	memcpy(dst, t != NULL ? (const char *)t : "", n);
	dst[n] = '\0';
	return 0;
}

/* A copy of text column I; NULL stays NULL unless NONNULL ("" then). */
static int
col_dup(sqlite3_stmt *s, int i, int nonnull, char **out)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	*out = NULL;
	if (t == NULL && sqlite3_column_type(s, i) == SQLITE_NULL &&
	    !nonnull)
		return 0;
	if ((*out = strdup(t != NULL ? (const char *)t : "")) == NULL)
		return CK_E_NOMEM;
	return 0;
}

/*
 * After a guarded UPDATE touched no row: CK_E_NOTFOUND if there is no row
 * ID (SQL selects its status), else CK_E_STATE naming the state it is in.
 */
static int
refusal(struct store *st, const char *sql, const char *what, const char *id,
    const char *expected)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = ck_err_set(CK_E_STATE, "ACME %s %s is %s, not %s", what,
		    id, (const char *)sqlite3_column_text(s, 0), expected);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no ACME %s %s", what, id);
		break;
	default:
		r = store_db_err(st, what);
	}
	store_stmt_done(st, s);
	return r;
}

static const char account_status_sql[] =
    "SELECT status FROM acme_accounts WHERE id = ?1";
static const char order_status_sql[] =
    "SELECT status FROM acme_orders WHERE id = ?1";
static const char authz_status_sql[] =
    "SELECT status FROM acme_authzs WHERE id = ?1";
static const char challenge_status_sql[] =
    "SELECT status FROM acme_challenges WHERE id = ?1";

/*
 * Run a guarded UPDATE in its own transaction level. SQL's parameters:
 * ?1 the new status (unbound when TO is NULL), ?2 the sequence, ?3 the id,
 * ?4 the expected status, ?5 IVAL (unbound when 0), ?6 TEXT (unbound when
 * NULL). No row changed: the refusal of STATUS_SQL.
 */
static int
guarded_update(struct store *st, const char *sql, const char *status_sql,
    const char *what, const char *id, const char *from, const char *to,
    int64_t ival, const char *text)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		return store_tx_end(st, r);
	if (to != NULL)
		sqlite3_bind_text(s, 1, to, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, from, -1, SQLITE_STATIC);
	if (ival != 0)
		sqlite3_bind_int64(s, 5, ival);
	if (text != NULL)
		sqlite3_bind_text(s, 6, text, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, what);
	else if (sqlite3_changes(store_sqlite_db(st)) != 1)
		r = refusal(st, status_sql, what, id, from);
	store_stmt_done(st, s);
	return store_tx_end(st, r);
}

/* ------------------------------------------------------------ accounts */

#define ACCOUNT_COLS "id, jwk_thumbprint, jwk, status, contact, eab_kid, " \
	"tos_agreed, created_at, change_seq"

int
store_acme_account_create(struct store *st,
    const struct store_acme_account *a)
{
	sqlite3_stmt *s = NULL;
	const char *status = status_or(a->status, "valid");
	int64_t seq;
	int r, rc;

	if (!fits(a->id, sizeof(a->id)) ||
	    !fits(a->jwk_thumbprint, sizeof(a->jwk_thumbprint)) ||
	    a->jwk == NULL || a->jwk[0] == '\0')
		return ck_err_set(CK_E_INVAL, "ACME account: id, key "
		    "thumbprint and key are required");
	if (!name_in(account_statuses, status))
		return ck_err_set(CK_E_INVAL, "ACME account %.64s: no status "
		    "'%.15s'", a->id, status);
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "INSERT INTO acme_accounts ("
	    ACCOUNT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", &s)) != 0)
		return store_tx_end(st, r);
	bind_fixed(s, 1, a->id, sizeof(a->id));
	bind_fixed(s, 2, a->jwk_thumbprint, sizeof(a->jwk_thumbprint));
	sqlite3_bind_text(s, 3, a->jwk, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, a->contact != NULL ? a->contact : "[]", -1,
	    SQLITE_STATIC);
	bind_opt(s, 6, a->eab_kid);
	sqlite3_bind_int(s, 7, a->tos_agreed ? 1 : 0);
	sqlite3_bind_int64(s, 8, a->created_at);
	sqlite3_bind_int64(s, 9, seq);
	rc = sqlite3_step(s);
	store_stmt_done(st, s);
	if (rc == SQLITE_CONSTRAINT) {
		struct store_acme_account other;

		/* Say which: the key (a racing new-account with the same
		 * key, RFC 8555 7.3.1) or the id. */
		memset(&other, 0, sizeof(other));
		if (store_acme_account_get_by_key(st, a->jwk_thumbprint,
		    &other) == 0)
			r = ck_err_set(CK_E_EXISTS, "the key %.64s is already "
			    "registered (ACME account %s)", a->jwk_thumbprint,
			    other.id);
		else
			r = ck_err_set(CK_E_EXISTS, "ACME account %.64s "
			    "already exists", a->id);
		store_acme_account_clear(&other);
	} else if (rc != SQLITE_DONE)
		r = store_db_err(st, "recording ACME account");
	return store_tx_end(st, r);
}

static int
account_from_row(sqlite3_stmt *s, struct store_acme_account *a)
{
	int r;

	memset(a, 0, sizeof(*a));
	if ((r = col_fixed(s, 0, a->id, sizeof(a->id))) != 0 ||
	    (r = col_fixed(s, 1, a->jwk_thumbprint,
	    sizeof(a->jwk_thumbprint))) != 0 ||
	    (r = col_fixed(s, 3, a->status, sizeof(a->status))) != 0 ||
	    (r = col_dup(s, 2, 1, &a->jwk)) != 0 ||
	    (r = col_dup(s, 4, 1, &a->contact)) != 0 ||
	    (r = col_dup(s, 5, 0, &a->eab_kid)) != 0) {
		store_acme_account_clear(a);
		return r;
	}
	a->tos_agreed = sqlite3_column_int(s, 6);
	a->created_at = sqlite3_column_int64(s, 7);
	a->change_seq = sqlite3_column_int64(s, 8);
	return 0;
}

/* One account by SQL's ?1 = KEY. */
static int
account_get(struct store *st, const char *sql, const char *key,
    struct store_acme_account *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = account_from_row(s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no ACME account %s", key);
		break;
	default:
		r = store_db_err(st, "reading ACME account");
	}
	store_stmt_done(st, s);
	return r;
}

int
store_acme_account_get(struct store *st, const char *id,
    struct store_acme_account *out)
{
	return account_get(st, "SELECT " ACCOUNT_COLS " FROM acme_accounts "
	    "WHERE id = ?1", id, out);
}

int
store_acme_account_get_by_key(struct store *st, const char *thumbprint,
    struct store_acme_account *out)
{
	return account_get(st, "SELECT " ACCOUNT_COLS " FROM acme_accounts "
	    "WHERE jwk_thumbprint = ?1", thumbprint, out);
}

int
store_acme_account_update(struct store *st, const char *id,
    const char *status, const char *contact)
{
	if (status != NULL && !edge_ok(account_edges, "valid", status))
		return ck_err_set(CK_E_INVAL, "ACME account %s: cannot go "
		    "from valid to '%.15s'", id, status);
	return guarded_update(st, "UPDATE acme_accounts SET "
	    "status = coalesce(?1, status), contact = coalesce(?6, contact), "
	    "change_seq = ?2 WHERE id = ?3 AND status = ?4",
	    account_status_sql, "account", id, "valid", status, 0, contact);
}

int
store_acme_account_key_change(struct store *st, const char *id,
    const char *old_thumbprint, const char *new_thumbprint,
    const char *new_jwk)
{
	struct store_acme_account cur;
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r, rc;

	if (!fits(new_thumbprint, STORE_ACME_ID_SIZE) || new_jwk == NULL ||
	    new_jwk[0] == '\0' || old_thumbprint == NULL)
		return ck_err_set(CK_E_INVAL, "ACME account %s: the new key "
		    "and its thumbprint are required", id);
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "UPDATE acme_accounts SET "
	    "jwk_thumbprint = ?1, jwk = ?2, change_seq = ?3 WHERE id = ?4 "
	    "AND status = 'valid' AND jwk_thumbprint = ?5", &s)) != 0)
		return store_tx_end(st, r);
	sqlite3_bind_text(s, 1, new_thumbprint, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, new_jwk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, seq);
	sqlite3_bind_text(s, 4, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, old_thumbprint, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		r = ck_err_set(CK_E_EXISTS, "the key %.64s belongs to another "
		    "ACME account", new_thumbprint);
	else if (rc != SQLITE_DONE)
		r = store_db_err(st, "changing ACME account key");
	else if (sqlite3_changes(store_sqlite_db(st)) != 1) {
		memset(&cur, 0, sizeof(cur));
		if ((r = store_acme_account_get(st, id, &cur)) == 0) {
			if (strcmp(cur.status, "valid") != 0)
				r = ck_err_set(CK_E_STATE, "ACME account %s "
				    "is %s, not valid", id, cur.status);
			else
				r = ck_err_set(CK_E_STATE, "ACME account %s: "
				    "its key is no longer %.64s", id,
				    old_thumbprint);
		}
		store_acme_account_clear(&cur);
	}
	store_stmt_done(st, s);
	return store_tx_end(st, r);
}

void
store_acme_account_clear(struct store_acme_account *a)
{
	if (a == NULL)
		return;
	free(a->jwk);
	free(a->contact);
	free(a->eab_kid);
	memset(a, 0, sizeof(*a));
}

/* -------------------------------------------------------------- orders */

#define ORDER_COLS "id, account_id, status, expires, identifiers, " \
	"not_before, not_after, profile, cert_serial, error, replaces, " \
	"created_at, change_seq"
#define AUTHZ_COLS "id, account_id, order_id, identifier_type, " \
	"identifier_value, wildcard, status, expires, created_at, change_seq"
#define CHALLENGE_COLS "id, authz_id, type, token, status, validated, " \
	"error, change_seq"

/* Check what store_acme_order_create() is given, before any write. */
static int
order_check(const struct store_acme_order *o,
    const struct store_acme_authz *az, size_t n)
{
	const struct store_acme_challenge *c;
	size_t i, j;

	if (!fits(o->id, sizeof(o->id)) ||
	    !fits(o->account_id, sizeof(o->account_id)) ||
	    o->identifiers == NULL)
		return ck_err_set(CK_E_INVAL, "ACME order: id, account and "
		    "identifiers are required");
	if (!name_in(order_statuses, status_or(o->status, "pending")) ||
	    strcmp(status_or(o->status, "pending"), "valid") == 0)
		return ck_err_set(CK_E_INVAL, "ACME order %s: cannot be "
		    "created with status '%.15s'", o->id, o->status);
	for (i = 0; i < n; i++) {
		if (!fits(az[i].id, sizeof(az[i].id)) ||
		    !fits(az[i].identifier_value,
		    sizeof(az[i].identifier_value)) ||
		    !fits(az[i].identifier_type,
		    sizeof(az[i].identifier_type)) ||
		    !name_in(identifier_types, az[i].identifier_type) ||
		    (az[i].wildcard != 0 && az[i].wildcard != 1) ||
		    (az[i].wildcard &&
		    strcmp(az[i].identifier_type, "dns") != 0))
			return ck_err_set(CK_E_INVAL, "ACME order %s: "
			    "authorization %zu: bad id or identifier", o->id,
			    i);
		if (!name_in(authz_statuses, status_or(az[i].status,
		    "pending")))
			return ck_err_set(CK_E_INVAL, "ACME order %s: "
			    "authorization %s: no status '%.15s'", o->id,
			    az[i].id, az[i].status);
		if (az[i].nchallenges > 0 && az[i].challenges == NULL)
			return ck_err_set(CK_E_INVAL, "ACME order %s: "
			    "authorization %s: no challenges given", o->id,
			    az[i].id);
		for (j = 0; j < az[i].nchallenges; j++) {
			c = &az[i].challenges[j];
			if (!fits(c->id, sizeof(c->id)) ||
			    !fits(c->token, sizeof(c->token)) ||
			    !fits(c->type, sizeof(c->type)) ||
			    !name_in(challenge_types, c->type) ||
			    !name_in(challenge_statuses,
			    status_or(c->status, "pending")))
				return ck_err_set(CK_E_INVAL, "ACME order %s: "
				    "authorization %s: challenge %zu: bad "
				    "id, token, type or status", o->id,
				    az[i].id, j);
		}
	}
	return 0;
}

/* Step an INSERT; CK_E_EXISTS (naming WHAT and ID) on a constraint. */
static int
insert_step(struct store *st, sqlite3_stmt *s, const char *what,
    const char *id)
{
	int rc = sqlite3_step(s), r = 0;

	if (rc == SQLITE_CONSTRAINT)
		r = ck_err_set(CK_E_EXISTS, "ACME %s %s already exists", what,
		    id);
	else if (rc != SQLITE_DONE)
		r = store_db_err(st, what);
	sqlite3_reset(s);
	return r;
}

static int
order_insert(struct store *st, const struct store_acme_order *o, int64_t seq)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_stmt_prepare(st, "INSERT INTO acme_orders ("
	    ORDER_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    &s)) != 0)
		return r;
	bind_fixed(s, 1, o->id, sizeof(o->id));
	bind_fixed(s, 2, o->account_id, sizeof(o->account_id));
	sqlite3_bind_text(s, 3, status_or(o->status, "pending"), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, o->expires);
	sqlite3_bind_text(s, 5, o->identifiers, -1, SQLITE_STATIC);
	if (o->not_before != 0)
		sqlite3_bind_int64(s, 6, o->not_before);
	if (o->not_after != 0)
		sqlite3_bind_int64(s, 7, o->not_after);
	sqlite3_bind_text(s, 8, o->profile != NULL ? o->profile : "", -1,
	    SQLITE_STATIC);
	/* 9, cert_serial: NULL until the order is valid. */
	bind_opt(s, 10, o->error);
	bind_opt(s, 11, o->replaces);
	sqlite3_bind_int64(s, 12, o->created_at);
	sqlite3_bind_int64(s, 13, seq);
	r = insert_step(st, s, "order", o->id);
	store_stmt_done(st, s);
	return r;
}

static int
authzs_insert(struct store *st, const struct store_acme_order *o,
    const struct store_acme_authz *az, size_t n, int64_t seq)
{
	sqlite3_stmt *s = NULL, *c = NULL;
	const struct store_acme_challenge *ch;
	size_t i, j;
	int r;

	if ((r = store_stmt_prepare(st, "INSERT INTO acme_authzs ("
	    AUTHZ_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &s)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "INSERT INTO acme_challenges ("
	    CHALLENGE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &c)) != 0) {
		store_stmt_done(st, s);
		return r;
	}
	for (i = 0; i < n && r == 0; i++) {
		bind_fixed(s, 1, az[i].id, sizeof(az[i].id));
		bind_fixed(s, 2, o->account_id, sizeof(o->account_id));
		bind_fixed(s, 3, o->id, sizeof(o->id));
		sqlite3_bind_text(s, 4, az[i].identifier_type, -1,
		    SQLITE_STATIC);
		bind_fixed(s, 5, az[i].identifier_value,
		    sizeof(az[i].identifier_value));
		sqlite3_bind_int(s, 6, az[i].wildcard);
		sqlite3_bind_text(s, 7, status_or(az[i].status, "pending"),
		    -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 8, az[i].expires);
		sqlite3_bind_int64(s, 9, az[i].created_at);
		sqlite3_bind_int64(s, 10, seq);
		if ((r = insert_step(st, s, "authorization", az[i].id)) != 0)
			break;
		for (j = 0; j < az[i].nchallenges; j++) {
			ch = &az[i].challenges[j];
			bind_fixed(c, 1, ch->id, sizeof(ch->id));
			bind_fixed(c, 2, az[i].id, sizeof(az[i].id));
			sqlite3_bind_text(c, 3, ch->type, -1, SQLITE_STATIC);
			bind_fixed(c, 4, ch->token, sizeof(ch->token));
			sqlite3_bind_text(c, 5, status_or(ch->status,
			    "pending"), -1, SQLITE_STATIC);
			if (ch->validated != 0)
				sqlite3_bind_int64(c, 6, ch->validated);
			else
				sqlite3_bind_null(c, 6);
			bind_opt(c, 7, ch->error);
			sqlite3_bind_int64(c, 8, seq);
			if ((r = insert_step(st, c, "challenge", ch->id)) != 0)
				break;
		}
	}
	store_stmt_done(st, c);
	store_stmt_done(st, s);
	return r;
}

int
store_acme_order_create(struct store *st,
    const struct store_acme_order *o, const struct store_acme_authz *authzs,
    size_t nauthz)
{
	int64_t seq;
	int r;

	if ((r = order_check(o, authzs, nauthz)) != 0)
		return r;
	/* One sequence value for the lot: they were made together. */
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = order_insert(st, o, seq)) == 0)
		r = authzs_insert(st, o, authzs, nauthz, seq);
	return store_tx_end(st, r);
}

static int
order_from_row(sqlite3_stmt *s, struct store_acme_order *o)
{
	int r;

	memset(o, 0, sizeof(*o));
	if ((r = col_fixed(s, 0, o->id, sizeof(o->id))) != 0 ||
	    (r = col_fixed(s, 1, o->account_id, sizeof(o->account_id))) != 0 ||
	    (r = col_fixed(s, 2, o->status, sizeof(o->status))) != 0 ||
	    (r = col_fixed(s, 8, o->cert_serial,
	    sizeof(o->cert_serial))) != 0 ||
	    (r = col_dup(s, 4, 1, &o->identifiers)) != 0 ||
	    (r = col_dup(s, 7, 1, &o->profile)) != 0 ||
	    (r = col_dup(s, 9, 0, &o->error)) != 0 ||
	    (r = col_dup(s, 10, 0, &o->replaces)) != 0) {
		store_acme_order_clear(o);
		return r;
	}
	o->expires = sqlite3_column_int64(s, 3);
	o->not_before = sqlite3_column_int64(s, 5);
	o->not_after = sqlite3_column_int64(s, 6);
	o->created_at = sqlite3_column_int64(s, 11);
	o->change_seq = sqlite3_column_int64(s, 12);
	return 0;
}

int
store_acme_order_get(struct store *st, const char *id,
    struct store_acme_order *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, "SELECT " ORDER_COLS " FROM "
	    "acme_orders WHERE id = ?1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = order_from_row(s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no ACME order %s", id);
		break;
	default:
		r = store_db_err(st, "reading ACME order");
	}
	store_stmt_done(st, s);
	return r;
}

int
store_acme_order_list(struct store *st, const char *account_id,
    const char *after_id, size_t limit,
    int (*cb)(const struct store_acme_order *o, void *arg), void *arg,
    size_t *count)
{
	struct store_acme_order o;
	sqlite3_stmt *s = NULL;
	size_t n = 0;
	int r, rc;

	if (count != NULL)
		*count = 0;
	if ((r = store_stmt_prepare(st, "SELECT " ORDER_COLS " FROM "
	    "acme_orders WHERE account_id = ?1 AND id > ?2 ORDER BY id "
	    "LIMIT ?3", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, account_id, -1, SQLITE_STATIC);
	/* Every id is non-empty, so all are greater than "". */
	sqlite3_bind_text(s, 2, after_id != NULL ? after_id : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, limit == 0 || limit > (size_t)INT64_MAX ?
	    -1 : (int64_t)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = order_from_row(s, &o)) != 0)
			break;
		n++;
		r = cb(&o, arg);
		store_acme_order_clear(&o);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "listing ACME orders");
	store_stmt_done(st, s);
	if (count != NULL)
		*count = n;
	return r;
}

int
store_acme_order_transition(struct store *st, const char *id,
    const char *from, const char *to, const char *error)
{
	/* Valid only with its certificate: store_acme_order_set_cert(). */
	if (!edge_ok(order_edges, from, to) || strcmp(to, "valid") == 0)
		return ck_err_set(CK_E_INVAL, "ACME order %s: no transition "
		    "from '%.15s' to '%.15s'", id, from ? from : "(null)",
		    to ? to : "(null)");
	return guarded_update(st, "UPDATE acme_orders SET status = ?1, "
	    "error = coalesce(?6, error), change_seq = ?2 WHERE id = ?3 AND "
	    "status = ?4", order_status_sql, "order", id, from, to, 0,
	    strcmp(to, "invalid") == 0 ? error : NULL);
}

int
store_acme_order_set_cert(struct store *st, const char *id,
    const char *cert_serial)
{
	if (!fits(cert_serial, sizeof(((struct store_acme_order *)0)->
	    cert_serial)))
		return ck_err_set(CK_E_INVAL, "ACME order %s: no certificate "
		    "serial", id);
	return guarded_update(st, "UPDATE acme_orders SET status = ?1, "
	    "cert_serial = ?6, change_seq = ?2 WHERE id = ?3 AND "
	    "status = ?4", order_status_sql, "order", id, "processing",
	    "valid", 0, cert_serial);
}

static int
count_query(struct store *st, const char *sql, const char *a,
    const char *b, int64_t i3, int64_t i4, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	*out = 0;
	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, i3);
	sqlite3_bind_int64(s, 4, i4);
	if (sqlite3_step(s) == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		r = store_db_err(st, "counting ACME orders");
	store_stmt_done(st, s);
	return r;
}

int
store_acme_orders_since(struct store *st, const char *account_id,
    int64_t since, int64_t *out)
{
	return count_query(st, "SELECT count(*) FROM acme_orders WHERE "
	    "account_id = ?1 AND created_at >= ?3 AND ?4 = 0", account_id,
	    NULL, since, 0, out);
}

int
store_acme_certs_for_name_since(struct store *st, const char *type,
    const char *value, int wildcard, int64_t since, int64_t *out)
{
	return count_query(st, "SELECT count(DISTINCT o.id) FROM acme_authzs a "
	    "JOIN acme_orders o ON o.id = a.order_id WHERE "
	    "a.identifier_type = ?1 AND a.identifier_value = ?2 AND "
	    "a.wildcard = ?4 AND o.status IN ('processing', 'valid') AND "
	    "o.created_at >= ?3", type, value, since, wildcard ? 1 : 0, out);
}

int
store_acme_order_replaced(struct store *st, const char *serial,
    int64_t *out)
{
	return count_query(st, "SELECT count(*) FROM acme_orders WHERE "
	    "replaces = ?1 AND status IN ('pending', 'ready', 'processing', "
	    "'valid') AND ?3 = 0 AND ?4 = 0", serial, NULL, 0, 0, out);
}

int
store_acme_order_begin_issue(struct store *st, const char *id,
    const char *cert_serial)
{
	if (cert_serial == NULL || cert_serial[0] == '\0' ||
	    !fits(cert_serial, sizeof(((struct store_acme_order *)0)->
	    cert_serial)))
		return ck_err_set(CK_E_INVAL, "ACME order %s: no certificate "
		    "serial", id);
	return guarded_update(st, "UPDATE acme_orders SET status = ?1, "
	    "cert_serial = ?6, change_seq = ?2 WHERE id = ?3 AND "
	    "status = ?4", order_status_sql, "order", id, "ready",
	    "processing", 0, cert_serial);
}

/* The ids SQL (one parameter, STATUS) yields, to CB. */
static int
ids_in(struct store *st, const char *sql, const char *status,
    int (*cb)(const char *id, void *arg), void *arg, const char *what)
{
	sqlite3_stmt *s = NULL;
	int r, rc;

	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, status, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((r = cb((const char *)sqlite3_column_text(s, 0), arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, what);
	store_stmt_done(st, s);
	return r;
}

int
store_acme_authz_deactivate_ident(struct store *st, const char *account_id,
    const char *type, const char *value, int wildcard, const char *error)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r, i;
	/* The orders first, while their authorizations still say valid. */
	static const char *const sql[2] = {
		"UPDATE acme_orders SET status = 'invalid', error = ?5, "
		"change_seq = ?1 WHERE status IN ('pending', 'ready') AND id IN "
		"(SELECT order_id FROM acme_authzs WHERE account_id = ?2 AND "
		"identifier_type = ?3 AND identifier_value = ?4 AND "
		"wildcard = ?6 AND status = 'valid')",
		"UPDATE acme_authzs SET status = 'deactivated', change_seq = ?1 "
		"WHERE account_id = ?2 AND identifier_type = ?3 AND "
		"identifier_value = ?4 AND wildcard = ?6 AND status = 'valid' "
		"AND ?5 IS NOT NULL"
	};

	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	for (i = 0; i < 2 && r == 0; i++) {
		if ((r = store_stmt_prepare(st, sql[i], &s)) != 0)
			break;
		sqlite3_bind_int64(s, 1, seq);
		sqlite3_bind_text(s, 2, account_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, type, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, value, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, error, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 6, wildcard ? 1 : 0);
		if (sqlite3_step(s) != SQLITE_DONE)
			r = store_db_err(st, "deactivating ACME authorizations");
		store_stmt_done(st, s);
	}
	return store_tx_end(st, r);
}

int
store_acme_order_ids_in(struct store *st, const char *status,
    int (*cb)(const char *id, void *arg), void *arg)
{
	return ids_in(st, "SELECT id FROM acme_orders WHERE status = ?1",
	    status, cb, arg, "listing ACME orders");
}

void
store_acme_order_clear(struct store_acme_order *o)
{
	if (o == NULL)
		return;
	free(o->identifiers);
	free(o->profile);
	free(o->error);
	free(o->replaces);
	memset(o, 0, sizeof(*o));
}

/* ------------------------------------------------------ authorizations */

static int
authz_from_row(sqlite3_stmt *s, struct store_acme_authz *a)
{
	int r;

	memset(a, 0, sizeof(*a));
	if ((r = col_fixed(s, 0, a->id, sizeof(a->id))) != 0 ||
	    (r = col_fixed(s, 1, a->account_id, sizeof(a->account_id))) != 0 ||
	    (r = col_fixed(s, 2, a->order_id, sizeof(a->order_id))) != 0 ||
	    (r = col_fixed(s, 3, a->identifier_type,
	    sizeof(a->identifier_type))) != 0 ||
	    (r = col_fixed(s, 4, a->identifier_value,
	    sizeof(a->identifier_value))) != 0 ||
	    (r = col_fixed(s, 6, a->status, sizeof(a->status))) != 0)
		return r;
	a->wildcard = sqlite3_column_int(s, 5);
	a->expires = sqlite3_column_int64(s, 7);
	a->created_at = sqlite3_column_int64(s, 8);
	a->change_seq = sqlite3_column_int64(s, 9);
	return 0;
}

int
store_acme_order_authzs(struct store *st, const char *order_id,
    int (*cb)(const struct store_acme_authz *a, void *arg), void *arg)
{
	struct store_acme_authz a;
	sqlite3_stmt *s = NULL;
	int r, rc;

	if ((r = store_stmt_prepare(st, "SELECT " AUTHZ_COLS " FROM "
	    "acme_authzs WHERE order_id = ?1 ORDER BY identifier_type, "
	    "identifier_value, wildcard, id", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, order_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((r = authz_from_row(s, &a)) != 0 || (r = cb(&a, arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "listing ACME authorizations");
	store_stmt_done(st, s);
	return r;
}

static int
challenge_from_row(sqlite3_stmt *s, struct store_acme_challenge *c)
{
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = col_fixed(s, 0, c->id, sizeof(c->id))) != 0 ||
	    (r = col_fixed(s, 1, c->authz_id, sizeof(c->authz_id))) != 0 ||
	    (r = col_fixed(s, 2, c->type, sizeof(c->type))) != 0 ||
	    (r = col_fixed(s, 3, c->token, sizeof(c->token))) != 0 ||
	    (r = col_fixed(s, 4, c->status, sizeof(c->status))) != 0 ||
	    (r = col_dup(s, 6, 0, &c->error)) != 0)
		return r;
	c->validated = sqlite3_column_int64(s, 5);
	c->change_seq = sqlite3_column_int64(s, 7);
	return 0;
}

/* The challenges of authorization A into a->challenges. */
static int
authz_challenges(struct store *st, struct store_acme_authz *a)
{
	struct store_acme_challenge *p;
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int r, rc;

	if ((r = store_stmt_prepare(st, "SELECT " CHALLENGE_COLS " FROM "
	    "acme_challenges WHERE authz_id = ?1 ORDER BY type, id", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (a->nchallenges == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			if ((p = realloc(a->challenges, cap *
			    sizeof(*p))) == NULL) {
				r = CK_E_NOMEM;
				break;
			}
			a->challenges = p;
		}
		if ((r = challenge_from_row(s,
		    &a->challenges[a->nchallenges])) != 0) {
			store_acme_challenge_clear(
			    &a->challenges[a->nchallenges]);
			break;
		}
		a->nchallenges++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "reading ACME challenges");
	store_stmt_done(st, s);
	return r;
}

int
store_acme_authz_get(struct store *st, const char *id,
    struct store_acme_authz *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, "SELECT " AUTHZ_COLS " FROM "
	    "acme_authzs WHERE id = ?1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = authz_from_row(s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no ACME authorization %s", id);
		break;
	default:
		r = store_db_err(st, "reading ACME authorization");
	}
	store_stmt_done(st, s);
	if (r == 0)
		r = authz_challenges(st, out);
	if (r != 0)
		store_acme_authz_clear(out);
	return r;
}

int
store_acme_authz_transition(struct store *st, const char *id,
    const char *from, const char *to)
{
	if (!edge_ok(authz_edges, from, to))
		return ck_err_set(CK_E_INVAL, "ACME authorization %s: no "
		    "transition from '%.15s' to '%.15s'", id,
		    from ? from : "(null)", to ? to : "(null)");
	return guarded_update(st, "UPDATE acme_authzs SET status = ?1, "
	    "change_seq = ?2 WHERE id = ?3 AND status = ?4", authz_status_sql,
	    "authorization", id, from, to, 0, NULL);
}

int
store_acme_authz_find_valid(struct store *st, const char *account_id,
    const char *type, const char *value, int wildcard, int64_t now,
    struct store_acme_authz *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, "SELECT " AUTHZ_COLS " FROM "
	    "acme_authzs WHERE account_id = ?1 AND identifier_type = ?2 AND "
	    "identifier_value = ?3 AND wildcard = ?4 AND status = 'valid' "
	    "AND expires > ?5 ORDER BY expires DESC, id LIMIT 1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, account_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, wildcard ? 1 : 0);
	sqlite3_bind_int64(s, 5, now);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = authz_from_row(s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no valid ACME authorization of "
		    "account %s for %s:%s%s", account_id, type,
		    wildcard ? "*." : "", value);
		break;
	default:
		r = store_db_err(st, "finding ACME authorization");
	}
	store_stmt_done(st, s);
	return r;
}

void
store_acme_authz_clear(struct store_acme_authz *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nchallenges; i++)
		store_acme_challenge_clear(&a->challenges[i]);
	free(a->challenges);
	memset(a, 0, sizeof(*a));
}

/* ---------------------------------------------------------- challenges */

int
store_acme_challenge_get(struct store *st, const char *id,
    struct store_acme_challenge *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, "SELECT " CHALLENGE_COLS " FROM "
	    "acme_challenges WHERE id = ?1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = challenge_from_row(s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no ACME challenge %s", id);
		break;
	default:
		r = store_db_err(st, "reading ACME challenge");
	}
	store_stmt_done(st, s);
	if (r != 0)
		store_acme_challenge_clear(out);
	return r;
}

int
store_acme_challenge_transition(struct store *st, const char *id,
    const char *from, const char *to, int64_t validated, const char *error)
{
	if (!edge_ok(challenge_edges, from, to))
		return ck_err_set(CK_E_INVAL, "ACME challenge %s: no "
		    "transition from '%.15s' to '%.15s'", id,
		    from ? from : "(null)", to ? to : "(null)");
	if (strcmp(to, "valid") == 0 && validated == 0)
		return ck_err_set(CK_E_INVAL, "ACME challenge %s: valid "
		    "without the time it was validated", id);
	return guarded_update(st, "UPDATE acme_challenges SET status = ?1, "
	    "validated = coalesce(?5, validated), error = coalesce(?6, error), "
	    "change_seq = ?2 WHERE id = ?3 AND status = ?4",
	    challenge_status_sql, "challenge", id, from, to,
	    strcmp(to, "valid") == 0 ? validated : 0,
	    strcmp(to, "invalid") == 0 ? error : NULL);
}

int
store_acme_challenge_ids_in(struct store *st, const char *status,
    int (*cb)(const char *id, void *arg), void *arg)
{
	return ids_in(st, "SELECT id FROM acme_challenges WHERE status = ?1",
	    status, cb, arg, "listing ACME challenges");
}

void
store_acme_challenge_clear(struct store_acme_challenge *c)
{
	if (c == NULL)
		return;
	free(c->error);
	memset(c, 0, sizeof(*c));
}
