/*
 * store_dump.c - snapshot, dump and load of the store's tables as JSON
 * lines (store_dump.h), for the SQLite backend.
 *
 * Every table is described once below: its columns with type and
 * nullability, and the SQL to read and to write it. The dump writes JSON
 * by hand (a million certificates must go quickly); the loader parses with
 * jansson and checks each line against the description before binding it.
 *
 * TEXT that is not valid UTF-8 cannot be a JSON string without losing
 * bytes, and a stored configuration may hold such bytes (a Latin-1
 * comment). Such a value is written as {"base64": "..."} and loaded back
 * byte for byte; every other value follows the plain format.
 */
#include "store/store_dump.h"

#include <endian.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "store/store_int.h"

/* Output is handed to EMIT in chunks of at most this size. */
#define DUMP_CHUNK (64u * 1024)

/* Room for ',"column_name":' */
#define KEY_MAX 32

/* Longest line the loader accepts: a CRL of a large CA, base64. */
#define LOAD_LINE_MAX (256u * 1024 * 1024)

enum col_type { COL_INTEGER, COL_TEXT, COL_BLOB };

static const char *const col_type_names[] = { "integer", "text", "blob" };

struct col {
	const char *name;
	enum col_type type;
	int nullable;
};

#define MAX_COLS 20

struct table {
	const char *name;
	const struct col *cols;
	int ncols;
	int seq_col;		/* index of change_seq, -1 if none */
	int singleton;		/* one row, always dumped, never goes back */
	const char *sql_all;	/* every row (see below for the order) */
	const char *sql_after;	/* rows with change_seq > ?1, same order */
	const char *sql_insert;
	/* Singletons: the columns that must not go back, read from the row
	 * in place (the key, first column, bound as ?1), and the column
	 * that must not pass the set's sequence. */
	const char *sql_current;
	const int *mono;	/* description indices of those columns */
	int nmono;
	int upto_col;
};

#define I COL_INTEGER
#define T COL_TEXT
#define B COL_BLOB
#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct col cols_change_seq[] = {
	{ "id", I, 0 }, { "value", I, 0 },
};
static const int mono_change_seq[] = { 1 };

static const struct col cols_meta[] = {
	{ "key", T, 0 }, { "value", T, 0 }, { "change_seq", I, 0 },
};

static const struct col cols_certs[] = {
	{ "serial", T, 0 }, { "status", T, 0 }, { "subject", T, 0 },
	{ "names", T, 0 }, { "profile", T, 0 }, { "requester", T, 0 },
	{ "tbs_sha256", T, 0 }, { "not_before", I, 0 },
	{ "not_after", I, 0 }, { "created_at", I, 0 }, { "is_ca", I, 0 },
	{ "der", B, 1 }, { "revoked_at", I, 1 }, { "reason", I, 1 },
	{ "change_seq", I, 0 },
};

static const struct col cols_crl_counter[] = {
	{ "id", I, 0 }, { "value", I, 0 }, { "change_seq", I, 0 },
};
static const int mono_crl_counter[] = { 1, 2 };

static const struct col cols_crls[] = {
	{ "number", I, 0 }, { "this_update", I, 0 }, { "next_update", I, 0 },
	{ "der", B, 0 }, { "change_seq", I, 0 },
};

static const struct col cols_audit[] = {
	{ "id", I, 0 }, { "time", I, 0 }, { "user", T, 0 },
	{ "action", T, 0 }, { "object", T, 0 }, { "result", T, 0 },
	{ "detail", T, 0 }, { "prev_hash", B, 0 }, { "hash", B, 0 },
	{ "change_seq", I, 0 },
};

static const struct col cols_config_history[] = {
	{ "id", I, 0 }, { "time", I, 0 }, { "user", T, 0 },
	{ "sha256", T, 0 }, { "content", T, 0 }, { "change_seq", I, 0 },
};

static const struct col cols_api_tokens[] = {
	{ "id", T, 0 }, { "name", T, 0 }, { "secret_sha256", B, 0 },
	{ "profiles", T, 0 }, { "dns_suffixes", T, 0 },
	{ "ip_ranges", T, 0 }, { "email_domains", T, 0 },
	{ "can_revoke", I, 0 }, { "created_at", I, 0 },
	{ "created_by", T, 0 }, { "revoked_at", I, 1 },
	{ "change_seq", I, 0 },
};

static const struct col cols_backups[] = {
	{ "id", T, 0 }, { "kind", T, 0 }, { "chain", T, 0 },
	{ "parent", T, 0 }, { "seq_from", I, 0 }, { "seq_to", I, 0 },
	{ "created_at", I, 0 }, { "manifest_sha256", T, 0 },
	{ "archive_sha256", T, 0 }, { "size", I, 0 }, { "copies", T, 0 },
	{ "verified_at", I, 0 }, { "verify_result", T, 1 },
	{ "drilled_at", I, 0 }, { "drill_result", T, 1 },
	{ "change_seq", I, 0 },
};

static const struct col cols_custody[] = {
	{ "id", I, 0 }, { "time", I, 0 }, { "operator", T, 0 },
	{ "event", T, 0 }, { "artefact", T, 0 }, { "kind", T, 0 },
	{ "place", T, 0 }, { "detail", T, 0 }, { "prev_hash", B, 0 },
	{ "hash", B, 0 }, { "change_seq", I, 0 },
};

static const struct col cols_acme_accounts[] = {
	{ "id", T, 0 }, { "jwk_thumbprint", T, 0 }, { "jwk", T, 0 },
	{ "status", T, 0 }, { "contact", T, 0 }, { "eab_kid", T, 1 },
	{ "tos_agreed", I, 0 }, { "created_at", I, 0 },
	{ "change_seq", I, 0 },
};

static const struct col cols_acme_orders[] = {
	{ "id", T, 0 }, { "account_id", T, 0 }, { "status", T, 0 },
	{ "expires", I, 0 }, { "identifiers", T, 0 },
	{ "not_before", I, 1 }, { "not_after", I, 1 }, { "profile", T, 0 },
	{ "cert_serial", T, 1 }, { "error", T, 1 }, { "replaces", T, 1 },
	{ "created_at", I, 0 }, { "change_seq", I, 0 },
};

static const struct col cols_acme_authzs[] = {
	{ "id", T, 0 }, { "account_id", T, 0 }, { "order_id", T, 0 },
	{ "identifier_type", T, 0 }, { "identifier_value", T, 0 },
	{ "wildcard", I, 0 }, { "status", T, 0 }, { "expires", I, 0 },
	{ "created_at", I, 0 }, { "change_seq", I, 0 },
};

static const struct col cols_acme_challenges[] = {
	{ "id", T, 0 }, { "authz_id", T, 0 }, { "type", T, 0 },
	{ "token", T, 0 }, { "status", T, 0 }, { "validated", I, 1 },
	{ "error", T, 1 }, { "change_seq", I, 0 },
};

static const struct col cols_acme_eab[] = {
	{ "kid", T, 0 }, { "sealed", B, 0 }, { "note", T, 0 },
	{ "created_at", I, 0 }, { "revoked_at", I, 1 },
	{ "account_id", T, 1 }, { "bound_at", I, 1 }, { "change_seq", I, 0 },
};

static const struct col cols_operators[] = {
	{ "name", T, 0 }, { "os_user", T, 1 }, { "cert_sha256", T, 1 },
	{ "created_at", I, 0 }, { "created_by", T, 0 },
	{ "disabled_at", I, 1 }, { "change_seq", I, 0 },
};

static const struct col cols_operator_roles[] = {
	{ "operator", T, 0 }, { "role", T, 0 }, { "granted_at", I, 0 },
	{ "granted_by", T, 0 }, { "revoked_at", I, 1 },
	{ "change_seq", I, 0 },
};

static const struct col cols_requests[] = {
	{ "id", I, 0 }, { "status", T, 0 }, { "profile", T, 0 },
	{ "days", I, 0 }, { "path_len", I, 0 }, { "csr", B, 0 },
	{ "subject", T, 0 }, { "names", T, 0 }, { "requester", T, 0 },
	{ "requester_operator", T, 1 }, { "requester_os_user", T, 1 },
	{ "acme_order", T, 1 }, { "created_at", I, 0 },
	{ "decided_at", I, 1 }, { "reason", T, 1 }, { "cert_serial", T, 1 },
	{ "change_seq", I, 0 },
};

static const struct col cols_request_approvals[] = {
	{ "request_id", I, 0 }, { "approver", T, 0 }, { "actor", T, 0 },
	{ "at", I, 0 }, { "reason", T, 0 }, { "change_seq", I, 0 },
};

#undef I
#undef T
#undef B

/*
 * The SQL is spelled out per table (the statement cache is keyed by the
 * address of a literal). The column lists must follow the descriptions;
 * the unit test compares both with the schema.
 *
 * A full dump walks the primary key, except for certs: its rows are
 * walked in storage order (a sequential read; the serial order costs one
 * index lookup per row, twice the time at a million rows). An incremental
 * one finds its rows by change_seq where there is an index on it (certs),
 * in that order, instead of walking every row; the other tables are small
 * or append-only. A load does not depend on the order. The append-only
 * tables (audit, custody, config_history, crls) take their rows in the
 * order of the change sequence, so an incremental walks back from the end
 * to the first row at or before the parent's sequence: its cost is the
 * number of changes, not the size of the table.
 */
#define CERTS_COLS "serial, status, subject, names, profile, requester, " \
	"tbs_sha256, not_before, not_after, created_at, is_ca, der, " \
	"revoked_at, reason, change_seq"
#define AUDIT_COLS "id, time, user, action, object, result, detail, " \
	"prev_hash, hash, change_seq"
#define TOKEN_COLS "id, name, secret_sha256, profiles, dns_suffixes, " \
	"ip_ranges, email_domains, can_revoke, created_at, created_by, " \
	"revoked_at, change_seq"
#define BACKUP_COLS "id, kind, chain, parent, seq_from, seq_to, " \
	"created_at, manifest_sha256, archive_sha256, size, copies, " \
	"verified_at, verify_result, drilled_at, drill_result, change_seq"
#define CUSTODY_COLS "id, time, operator, event, artefact, kind, place, " \
	"detail, prev_hash, hash, change_seq"
#define ACME_ACCOUNT_COLS "id, jwk_thumbprint, jwk, status, contact, " \
	"eab_kid, tos_agreed, created_at, change_seq"
#define ACME_ORDER_COLS "id, account_id, status, expires, identifiers, " \
	"not_before, not_after, profile, cert_serial, error, replaces, " \
	"created_at, change_seq"
#define ACME_AUTHZ_COLS "id, account_id, order_id, identifier_type, " \
	"identifier_value, wildcard, status, expires, created_at, change_seq"
#define ACME_CHALLENGE_COLS "id, authz_id, type, token, status, " \
	"validated, error, change_seq"
#define ACME_EAB_COLS "kid, sealed, note, created_at, revoked_at, " \
	"account_id, bound_at, change_seq"
#define OPERATOR_COLS "name, os_user, cert_sha256, created_at, " \
	"created_by, disabled_at, change_seq"
#define OPERATOR_ROLE_COLS "operator, role, granted_at, granted_by, " \
	"revoked_at, change_seq"
#define REQUEST_COLS "id, status, profile, days, path_len, csr, subject, " \
	"names, requester, requester_operator, requester_os_user, " \
	"acme_order, created_at, decided_at, reason, cert_serial, change_seq"
#define REQUEST_APPROVAL_COLS "request_id, approver, actor, at, reason, " \
	"change_seq"

static const struct table tables[] = {
	{ "change_seq", cols_change_seq, N(cols_change_seq), -1, 1,
	  "SELECT id, value FROM change_seq ORDER BY id",
	  NULL,
	  "INSERT OR REPLACE INTO change_seq (id, value) VALUES (?, ?)",
	  "SELECT value FROM change_seq WHERE id = ?1",
	  mono_change_seq, N(mono_change_seq), 1 },
	{ "meta", cols_meta, N(cols_meta), 2, 0,
	  "SELECT key, value, change_seq FROM meta ORDER BY key",
	  "SELECT key, value, change_seq FROM meta WHERE change_seq > ?1 "
	  "ORDER BY key",
	  "INSERT OR REPLACE INTO meta (key, value, change_seq) "
	  "VALUES (?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "certs", cols_certs, N(cols_certs), 14, 0,
	  "SELECT " CERTS_COLS " FROM certs ORDER BY rowid",
	  "SELECT " CERTS_COLS " FROM certs INDEXED BY certs_seq "
	  "WHERE change_seq > ?1 ORDER BY change_seq",
	  "INSERT OR REPLACE INTO certs (" CERTS_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "crl_counter", cols_crl_counter, N(cols_crl_counter), 2, 1,
	  "SELECT id, value, change_seq FROM crl_counter ORDER BY id",
	  NULL,
	  "INSERT OR REPLACE INTO crl_counter (id, value, change_seq) "
	  "VALUES (?, ?, ?)",
	  "SELECT value, change_seq FROM crl_counter WHERE id = ?1",
	  mono_crl_counter, N(mono_crl_counter), 2 },
	{ "crls", cols_crls, N(cols_crls), 4, 0,
	  "SELECT number, this_update, next_update, der, change_seq "
	  "FROM crls ORDER BY number",
	  "SELECT number, this_update, next_update, der, change_seq "
	  "FROM crls WHERE number > coalesce((SELECT number FROM crls "
	  "WHERE change_seq <= ?1 ORDER BY number DESC LIMIT 1), 0) "
	  "AND change_seq > ?1 ORDER BY number",
	  "INSERT OR REPLACE INTO crls (number, this_update, next_update, "
	  "der, change_seq) VALUES (?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "audit", cols_audit, N(cols_audit), 9, 0,
	  "SELECT " AUDIT_COLS " FROM audit ORDER BY id",
	  "SELECT " AUDIT_COLS " FROM audit WHERE id > coalesce((SELECT id "
	  "FROM audit WHERE change_seq <= ?1 ORDER BY id DESC LIMIT 1), 0) "
	  "AND change_seq > ?1 ORDER BY id",
	  "INSERT OR REPLACE INTO audit (" AUDIT_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "config_history", cols_config_history, N(cols_config_history), 5, 0,
	  "SELECT id, time, user, sha256, content, change_seq "
	  "FROM config_history ORDER BY id",
	  "SELECT id, time, user, sha256, content, change_seq "
	  "FROM config_history WHERE id > coalesce((SELECT id FROM "
	  "config_history WHERE change_seq <= ?1 ORDER BY id DESC LIMIT 1), "
	  "0) AND change_seq > ?1 ORDER BY id",
	  "INSERT OR REPLACE INTO config_history (id, time, user, sha256, "
	  "content, change_seq) VALUES (?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "api_tokens", cols_api_tokens, N(cols_api_tokens), 11, 0,
	  "SELECT " TOKEN_COLS " FROM api_tokens ORDER BY id",
	  "SELECT " TOKEN_COLS " FROM api_tokens WHERE change_seq > ?1 "
	  "ORDER BY id",
	  "INSERT OR REPLACE INTO api_tokens (" TOKEN_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "backups", cols_backups, N(cols_backups), 15, 0,
	  "SELECT " BACKUP_COLS " FROM backups ORDER BY id",
	  "SELECT " BACKUP_COLS " FROM backups WHERE change_seq > ?1 "
	  "ORDER BY id",
	  "INSERT OR REPLACE INTO backups (" BACKUP_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "custody", cols_custody, N(cols_custody), 10, 0,
	  "SELECT " CUSTODY_COLS " FROM custody ORDER BY id",
	  "SELECT " CUSTODY_COLS " FROM custody WHERE id > coalesce((SELECT "
	  "id FROM custody WHERE change_seq <= ?1 ORDER BY id DESC LIMIT 1), "
	  "0) AND change_seq > ?1 ORDER BY id",
	  "INSERT OR REPLACE INTO custody (" CUSTODY_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	/* ACME: accounts are few and updated in place; orders, authzs and
	 * challenges grow with issuance and are found by their change_seq
	 * index in an incremental, as certs are. */
	{ "acme_accounts", cols_acme_accounts, N(cols_acme_accounts), 8, 0,
	  "SELECT " ACME_ACCOUNT_COLS " FROM acme_accounts ORDER BY id",
	  "SELECT " ACME_ACCOUNT_COLS " FROM acme_accounts "
	  "WHERE change_seq > ?1 ORDER BY id",
	  "INSERT OR REPLACE INTO acme_accounts (" ACME_ACCOUNT_COLS ") "
	  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "acme_orders", cols_acme_orders, N(cols_acme_orders), 12, 0,
	  "SELECT " ACME_ORDER_COLS " FROM acme_orders ORDER BY id",
	  "SELECT " ACME_ORDER_COLS " FROM acme_orders INDEXED BY "
	  "acme_orders_seq WHERE change_seq > ?1 ORDER BY change_seq",
	  "INSERT OR REPLACE INTO acme_orders (" ACME_ORDER_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "acme_authzs", cols_acme_authzs, N(cols_acme_authzs), 9, 0,
	  "SELECT " ACME_AUTHZ_COLS " FROM acme_authzs ORDER BY id",
	  "SELECT " ACME_AUTHZ_COLS " FROM acme_authzs INDEXED BY "
	  "acme_authzs_seq WHERE change_seq > ?1 ORDER BY change_seq",
	  "INSERT OR REPLACE INTO acme_authzs (" ACME_AUTHZ_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "acme_challenges", cols_acme_challenges, N(cols_acme_challenges), 7,
	  0,
	  "SELECT " ACME_CHALLENGE_COLS " FROM acme_challenges ORDER BY id",
	  "SELECT " ACME_CHALLENGE_COLS " FROM acme_challenges INDEXED BY "
	  "acme_challenges_seq WHERE change_seq > ?1 ORDER BY change_seq",
	  "INSERT OR REPLACE INTO acme_challenges (" ACME_CHALLENGE_COLS ") "
	  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	/* EAB keys: few, updated in place (revoked, bound). The sealed key
	 * is opaque here; it opens only with the home's EAB key, which is
	 * never in a data backup. */
	{ "acme_eab", cols_acme_eab, N(cols_acme_eab), 7, 0,
	  "SELECT " ACME_EAB_COLS " FROM acme_eab ORDER BY kid",
	  "SELECT " ACME_EAB_COLS " FROM acme_eab WHERE change_seq > ?1 "
	  "ORDER BY kid",
	  "INSERT OR REPLACE INTO acme_eab (" ACME_EAB_COLS ") "
	  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	/* Operators and their roles: few, updated in place (removed,
	 * granted, taken away), never deleted. */
	{ "operators", cols_operators, N(cols_operators), 6, 0,
	  "SELECT " OPERATOR_COLS " FROM operators ORDER BY name",
	  "SELECT " OPERATOR_COLS " FROM operators WHERE change_seq > ?1 "
	  "ORDER BY name",
	  "INSERT OR REPLACE INTO operators (" OPERATOR_COLS ") "
	  "VALUES (?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "operator_roles", cols_operator_roles, N(cols_operator_roles), 5, 0,
	  "SELECT " OPERATOR_ROLE_COLS " FROM operator_roles "
	  "ORDER BY operator, role",
	  "SELECT " OPERATOR_ROLE_COLS " FROM operator_roles "
	  "WHERE change_seq > ?1 ORDER BY operator, role",
	  "INSERT OR REPLACE INTO operator_roles (" OPERATOR_ROLE_COLS ") "
	  "VALUES (?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	/* Requests awaiting approval: few, updated in place (approved,
	 * denied, issued), never deleted; their approvals only grow. */
	{ "requests", cols_requests, N(cols_requests), 16, 0,
	  "SELECT " REQUEST_COLS " FROM requests ORDER BY id",
	  "SELECT " REQUEST_COLS " FROM requests WHERE change_seq > ?1 "
	  "ORDER BY id",
	  "INSERT OR REPLACE INTO requests (" REQUEST_COLS ") VALUES "
	  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
	{ "request_approvals", cols_request_approvals,
	  N(cols_request_approvals), 5, 0,
	  "SELECT " REQUEST_APPROVAL_COLS " FROM request_approvals "
	  "ORDER BY request_id, approver",
	  "SELECT " REQUEST_APPROVAL_COLS " FROM request_approvals "
	  "WHERE change_seq > ?1 ORDER BY request_id, approver",
	  "INSERT OR REPLACE INTO request_approvals (" REQUEST_APPROVAL_COLS
	  ") VALUES (?, ?, ?, ?, ?, ?)",
	  NULL, NULL, 0, -1 },
};

/* No table depends on another (there are no foreign keys), so any order
 * loads; this one puts the counters first. */
const char *const store_dump_tables[] = {
	"change_seq", "meta", "certs", "crl_counter", "crls", "audit",
	"config_history", "api_tokens", "backups", "custody",
	"acme_accounts", "acme_orders", "acme_authzs", "acme_challenges",
	"acme_eab", "operators", "operator_roles", "requests",
	"request_approvals", NULL
};

static const struct table *
table_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		if (strcmp(tables[i].name, name) == 0)
			return &tables[i];
	return NULL;
}

/* ------------------------------------------------------------ snapshot */

struct store_snapshot {
	sqlite3 *db;
	int64_t seq;
	unsigned char *buf;	/* output being assembled */
	size_t cap;
};

static int
snap_err(struct store_snapshot *s, const char *what)
{
	int code = sqlite3_errcode(s->db);

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return ck_err_set(CK_E_BUSY, "%s: the store is busy: %s", what,
		    sqlite3_errmsg(s->db));
	return ck_err_set(CK_E_STORE, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* One integer (or text, into TXT) from the first row of SQL. */
static int
snap_one(struct store_snapshot *s, const char *sql, int64_t *v, char *txt,
    size_t txtsz, const char *what)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return snap_err(s, what);
	if (sqlite3_step(st) != SQLITE_ROW)
		r = snap_err(s, what);
	else if (txt != NULL)
		snprintf(txt, txtsz, "%s",
		    (const char *)sqlite3_column_text(st, 0));
	else
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

int
store_snapshot_open(const char *path, struct store_snapshot **out)
{
	struct store_snapshot *s = NULL;
	char mode[16];
	int64_t version = 0;
	int r;

	if (!ck_fs_exists(path))
		return ck_err_set(CK_E_NOTFOUND, "no store at %s", path);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CK_E_NOMEM;
	/* One thread uses a snapshot at a time: no mutex needed. */
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		r = ck_err_set(CK_E_STORE, "cannot open store %s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 10000);
	sqlite3_extended_result_codes(s->db, 0);
	/* No memory mapping of the store: it would be quicker to read (a
	 * dump reads all of it), but the mapped pages would count against
	 * the process, and a backup's memory must not grow with the CA. */
	(void)sqlite3_exec(s->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
	/* Only WAL lets a long read run beside certkeepd's commits; in any
	 * other mode this snapshot would hold them off. */
	if ((r = snap_one(s, "PRAGMA journal_mode", NULL, mode, sizeof(mode),
	    "store journal mode")) != 0)
		goto fail;
	if (strcmp(mode, "wal") != 0) {
		r = ck_err_set(CK_E_STORE, "store %s is in journal mode '%s', "
		    "not WAL: a snapshot would block writers", path, mode);
		goto fail;
	}
	/* The first read after BEGIN pins the snapshot: everything below
	 * sees the store as of this moment. */
	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		r = snap_err(s, "store snapshot");
		goto fail;
	}
	if ((r = snap_one(s, "PRAGMA user_version", &version, NULL, 0,
	    "store version")) != 0)
		goto fail;
	if (version != store_schema_version()) {
		r = ck_err_set(CK_E_STORE, "store %s has schema version %lld, "
		    "this certkeep backs up version %d (open it with this "
		    "certkeep once to migrate it)", path, (long long)version,
		    store_schema_version());
		goto fail;
	}
	if ((r = snap_one(s, "SELECT value FROM change_seq WHERE id = 1",
	    &s->seq, NULL, 0, "change sequence")) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_snapshot_close(s);
	return r;
}

void
store_snapshot_close(struct store_snapshot *s)
{
	if (s == NULL)
		return;
	/* A read transaction: ending it changes nothing. */
	if (s->db != NULL && !sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s->buf);
	free(s);
}

sqlite3 *
store_snapshot_db(struct store_snapshot *s)
{
	return s->db;
}

int64_t
store_snapshot_seq(const struct store_snapshot *s)
{
	return s->seq;
}

int
store_snapshot_latest(struct store_snapshot *s, const char *what,
    unsigned char **out, size_t *len)
{
	const char *sql;
	sqlite3_stmt *st = NULL;
	const void *p;
	int r, n;

	*out = NULL;
	*len = 0;
	if (strcmp(what, "crl") == 0)
		sql = "SELECT der FROM crls ORDER BY number DESC LIMIT 1";
	else if (strcmp(what, "config") == 0)
		sql = "SELECT content FROM config_history ORDER BY id DESC "
		    "LIMIT 1";
	else
		return ck_err_set(CK_E_INVAL, "no snapshot item '%s'", what);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return snap_err(s, "reading the snapshot");
	if ((r = sqlite3_step(st)) == SQLITE_DONE) {
		sqlite3_finalize(st);
		return ck_err_set(CK_E_NOTFOUND, "the store holds no %s", what);
	}
	if (r != SQLITE_ROW) {
		r = snap_err(s, "reading the snapshot");
		sqlite3_finalize(st);
		return r;
	}
	p = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	if ((*out = malloc((size_t)n + 1)) == NULL) {
		sqlite3_finalize(st);
		return ck_err_set(CK_E_NOMEM, "out of memory");
	}
	if (n > 0)
		memcpy(*out, p, (size_t)n);
	(*out)[n] = '\0';
	*len = (size_t)n;
	sqlite3_finalize(st);
	return 0;
}

/* ------------------------------------------------------- JSON writing */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t
b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* Every 12-bit value as its two base64 characters: half the lookups. */
static unsigned char b64_pairs[4096][2];
static pthread_once_t b64_pairs_once = PTHREAD_ONCE_INIT;

static void
b64_pairs_init(void)
{
	int i;

	for (i = 0; i < 4096; i++) {
		b64_pairs[i][0] = (unsigned char)b64_alphabet[i >> 6];
		b64_pairs[i][1] = (unsigned char)b64_alphabet[i & 63];
	}
}

/* Standard base64 with padding; returns the length written. */
static size_t
b64_encode(const unsigned char *in, size_t n, unsigned char *out)
{
	unsigned char *o = out;
	uint64_t w;
	uint32_t v;
	size_t i;

	/* Six bytes at a time through one 8-byte load, while 8 remain. */
	for (i = 0; i + 8 <= n; i += 6) {
		memcpy(&w, in + i, 8);
		w = be64toh(w);
		memcpy(o, b64_pairs[w >> 52], 2);
		memcpy(o + 2, b64_pairs[(w >> 40) & 4095], 2);
		memcpy(o + 4, b64_pairs[(w >> 28) & 4095], 2);
		memcpy(o + 6, b64_pairs[(w >> 16) & 4095], 2);
		o += 8;
	}
	for (; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		memcpy(o, b64_pairs[v >> 12], 2);
		memcpy(o + 2, b64_pairs[v & 4095], 2);
		o += 4;
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		memcpy(o, b64_pairs[v >> 12], 2);
		o[2] = '=';
		o[3] = '=';
		o += 4;
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		memcpy(o, b64_pairs[v >> 12], 2);
		o[2] = (unsigned char)b64_alphabet[(v >> 6) & 63];
		o[3] = '=';
		o += 4;
	}
	return (size_t)(o - out);
}

/* Length of the valid UTF-8 sequence at P (at most N bytes, P[0] >=
 * 0x80), or 0 if it is not one (overlong forms, surrogates and code points
 * above U+10FFFF are invalid: RFC 3629). */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* 0: copied as is; 1: escaped; 2: start of a multi-byte sequence. */
static const unsigned char json_class[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* '"' */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,	/* '\\' */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

#define BYTES(b) (0x0101010101010101ull * (b))

/* Whether any byte of W is below 0x20, a '"', a '\\' or above 0x7f:
 * the classic "has a zero byte" test (x - 0x01..) & ~x & 0x80.. applied
 * to W < 0x20, W ^ '"' and W ^ '\\'. */
static int
word_needs_care(uint64_t w)
{
	uint64_t q = w ^ BYTES('"'), b = w ^ BYTES('\\');

	return ((((w - BYTES(0x20)) & ~w) | ((q - BYTES(1)) & ~q) |
	    ((b - BYTES(1)) & ~b) | w) & BYTES(0x80)) != 0;
}

/*
 * Write P[0..N) as a quoted JSON string at OUT (room for 6 * N + 2 bytes).
 * Returns the length written, or 0 if P is not valid UTF-8.
 */
static size_t
put_json_string(const unsigned char *p, size_t n, unsigned char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char *o = out, c;
	size_t i = 0, len;
	uint64_t w;

	*o++ = '"';
	while (i < n) {
		/* Eight plain bytes at a time while there are eight. */
		while (i + 8 <= n) {
			memcpy(&w, p + i, 8);
			if (word_needs_care(w))
				break;
			memcpy(o, &w, 8);
			o += 8;
			i += 8;
		}
		while (i < n && json_class[p[i]] == 0)
			*o++ = p[i++];
		if (i >= n)
			break;
		c = p[i];
		if (json_class[c] == 2) {
			if ((len = utf8_seq(p + i, n - i)) == 0)
				return 0;
			memcpy(o, p + i, len);
			o += len;
			i += len;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = (unsigned char)hex[c >> 4];
			*o++ = (unsigned char)hex[c & 15];
		}
		i++;
	}
	*o++ = '"';
	return (size_t)(o - out);
}

/* Decimal V at OUT, which has room for INT_MAX_LEN bytes (the digits
 * are copied as one fixed-size block). Returns the length. */
#define INT_MAX_LEN 24

static size_t
put_json_int(int64_t v, unsigned char *out)
{
	static const char pairs[] =
	    "00010203040506070809101112131415161718192021222324252627282930"
	    "31323334353637383940414243444546474849505152535455565758596061"
	    "62636465666768697071727374757677787980818283848586878889909192"
	    "93949596979899";
	unsigned char tmp[2 * INT_MAX_LEN], *end = tmp + INT_MAX_LEN, *p = end;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	while (u >= 100) {
		p -= 2;
		memcpy(p, pairs + u % 100 * 2, 2);
		u /= 100;
	}
	if (u >= 10) {
		p -= 2;
		memcpy(p, pairs + u * 2, 2);
	} else
		*--p = (unsigned char)('0' + u);
	if (v < 0)
		*--p = '-';
	memcpy(out, p, INT_MAX_LEN);
	return (size_t)(end - p);
}

/* The value of one column of the current row, checked against its
 * description. */
struct cell {
	sqlite3_value *v;
	int type;		/* SQLITE_* storage class */
	const unsigned char *p;
	size_t n;
};

static int
dump_row_error(const struct table *t, sqlite3_stmt *st, int col,
    const char *what)
{
	return ck_err_set(CK_E_STORE, "table %s, row %.80s: column %s %s",
	    t->name, sqlite3_column_type(st, 0) == SQLITE_NULL ? "(null)" :
	    (const char *)sqlite3_column_text(st, 0), t->cols[col].name, what);
}

static int
grow(struct store_snapshot *s, size_t need)
{
	unsigned char *nb;
	size_t cap = s->cap ? s->cap : 2 * DUMP_CHUNK;

	while (cap < need)
		cap *= 2;
	if (cap == s->cap)
		return 0;
	if ((nb = realloc(s->buf, cap)) == NULL)
		return CK_E_NOMEM;
	s->buf = nb;
	s->cap = cap;
	return 0;
}

int
store_dump_table(struct store_snapshot *s, const char *table,
    int64_t after_seq, int (*emit)(void *arg, const void *buf, size_t len),
    void *arg, uint64_t *nrows)
{
	const struct table *t = table_find(table);
	struct cell cells[MAX_COLS];
	/* Each column's '{"name":' or ',"name":', copied as a fixed-size
	 * block (no library call per value); klen is its real length. */
	unsigned char key[MAX_COLS][KEY_MAX];
	size_t klen[MAX_COLS];
	sqlite3_stmt *st = NULL;
	uint64_t rows = 0;
	size_t len = 0, est, k;
	unsigned char *o;
	int r = 0, rc, i, type;

	if (nrows != NULL)
		*nrows = 0;
	if (t == NULL)
		return ck_err_set(CK_E_INVAL, "no store table '%s' to dump",
		    table);
	if (after_seq < 0)
		return ck_err_set(CK_E_INVAL, "dump of %s: negative sequence "
		    "%lld", table, (long long)after_seq);
	if (sqlite3_prepare_v2(s->db, after_seq > 0 && !t->singleton ?
	    t->sql_after : t->sql_all, -1, &st, NULL) != SQLITE_OK)
		return snap_err(s, t->name);
	if (after_seq > 0 && !t->singleton)
		sqlite3_bind_int64(st, 1, after_seq);
	if ((r = grow(s, 2 * DUMP_CHUNK)) != 0)
		goto out;
	pthread_once(&b64_pairs_once, b64_pairs_init);
	memset(key, 0, sizeof(key));
	for (i = 0; i < t->ncols; i++) {
		k = strlen(t->cols[i].name);
		if (k + 4 > KEY_MAX) {
			/* Defensive: the descriptions above are fixed. */
			r = ck_err_set(CK_E_INTERNAL, "column name %s too long",
			    t->cols[i].name);
			goto out;
		}
		key[i][0] = i == 0 ? '{' : ',';
		key[i][1] = '"';
		memcpy(&key[i][2], t->cols[i].name, k);
		key[i][k + 2] = '"';
		key[i][k + 3] = ':';
		klen[i] = k + 4;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* Check every value and bound the line's length first (with
		 * room for the last fixed-size key copy). */
		est = 2 + KEY_MAX;
		for (i = 0; i < t->ncols; i++) {
			/* The value itself, read without the per-call
			 * checks of sqlite3_column_*(): this connection is
			 * used by one thread only. */
			cells[i].v = sqlite3_column_value(st, i);
			type = sqlite3_value_type(cells[i].v);
			cells[i].type = type;
			est += klen[i];
			if (type == SQLITE_NULL) {
				if (!t->cols[i].nullable) {
					r = dump_row_error(t, st, i,
					    "is NULL");
					goto out;
				}
				est += 4;
				continue;
			}
			if ((t->cols[i].type == COL_INTEGER &&
			    type != SQLITE_INTEGER) ||
			    (t->cols[i].type == COL_TEXT &&
			    type != SQLITE_TEXT) ||
			    (t->cols[i].type == COL_BLOB &&
			    type != SQLITE_BLOB)) {
				r = dump_row_error(t, st, i, t->cols[i].type ==
				    COL_INTEGER ? "is not an integer" :
				    t->cols[i].type == COL_TEXT ?
				    "is not text" : "is not a blob");
				goto out;
			}
			if (type == SQLITE_INTEGER) {
				est += INT_MAX_LEN;
				continue;
			}
			cells[i].p = type == SQLITE_TEXT ?
			    sqlite3_value_text(cells[i].v) :
			    sqlite3_value_blob(cells[i].v);
			cells[i].n = (size_t)sqlite3_value_bytes(cells[i].v);
			if (cells[i].p == NULL && cells[i].n > 0) {
				r = CK_E_NOMEM;
				goto out;
			}
			if (type == SQLITE_TEXT)
				est += 6 * cells[i].n + 16 +
				    b64_len(cells[i].n);
			else
				est += b64_len(cells[i].n) + 2;
		}
		/* Whole lines per chunk: hand over what is there first if
		 * this line would overflow it. */
		if (len > 0 && len + est > DUMP_CHUNK) {
			if ((r = emit(arg, s->buf, len)) != 0)
				goto out;
			len = 0;
		}
		if ((r = grow(s, len + est)) != 0)
			goto out;
		o = s->buf + len;
		for (i = 0; i < t->ncols; i++) {
			memcpy(o, key[i], KEY_MAX);
			o += klen[i];
			switch (cells[i].type) {
			case SQLITE_NULL:
				memcpy(o, "null", 4);
				o += 4;
				break;
			case SQLITE_INTEGER:
				o += put_json_int(sqlite3_value_int64(
				    cells[i].v), o);
				break;
			case SQLITE_TEXT:
				if ((k = put_json_string(cells[i].p, cells[i].n,
				    o)) != 0) {
					o += k;
					break;
				}
				memcpy(o, "{\"base64\":\"", 11);
				o += 11;
				o += b64_encode(cells[i].p, cells[i].n, o);
				memcpy(o, "\"}", 2);
				o += 2;
				break;
			default:
				*o++ = '"';
				o += b64_encode(cells[i].p, cells[i].n, o);
				*o++ = '"';
			}
		}
		*o++ = '}';
		*o++ = '\n';
		len = (size_t)(o - s->buf);
		rows++;
		/* A line longer than a chunk goes alone. */
		if (est > DUMP_CHUNK) {
			if ((r = emit(arg, s->buf, len)) != 0)
				goto out;
			len = 0;
		}
	}
	if (rc != SQLITE_DONE) {
		r = snap_err(s, t->name);
		goto out;
	}
	if (len > 0 && (r = emit(arg, s->buf, len)) != 0)
		goto out;
	if (nrows != NULL)
		*nrows = rows;
out:
	sqlite3_finalize(st);
	return r;
}

/* --------------------------------------------------------------- counts */

static int
counts_err(sqlite3 *db, const char *what)
{
	return ck_err_set(CK_E_STORE, "store counts: %s: %s", what,
	    sqlite3_errmsg(db));
}

/*
 * FAST (a backup's snapshot): audit ids run 1, 2, 3, ... without gaps, so
 * the last id is the count and nothing is scanned; an incremental then
 * costs its changes, not the size of the log. Not fast (after a restore):
 * the rows are counted, so a row missing from what was loaded shows.
 */
static int
counts_db(sqlite3 *db, struct store_dump_counts *c, int fast)
{
	sqlite3_stmt *st = NULL;
	const char *status;
	int r = 0, rc;

	memset(c, 0, sizeof(*c));
	if (sqlite3_prepare_v2(db, "SELECT status, count(*) FROM certs "
	    "GROUP BY status", -1, &st, NULL) != SQLITE_OK)
		return counts_err(db, "certificates");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);

		status = (const char *)sqlite3_column_text(st, 0);
		c->certs += n;
		switch (status ? store_cert_status_parse(status) : -1) {
		case STORE_CERT_PENDING: c->pending += n; break;
		case STORE_CERT_ISSUED: c->issued += n; break;
		case STORE_CERT_REVOKED: c->revoked += n; break;
		case STORE_CERT_FAILED: c->failed += n; break;
		default: break;		/* the schema's CHECK forbids it */
		}
	}
	if (rc != SQLITE_DONE)
		r = counts_err(db, "certificates");
	sqlite3_finalize(st);
	st = NULL;
	if (r != 0)
		return r;

	if (sqlite3_prepare_v2(db, fast ?
	    "SELECT coalesce(max(id), 0), coalesce(max(id), 0), "
	    "(SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit" :
	    "SELECT count(*), coalesce(max(id), 0), "
	    "(SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit",
	    -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		r = counts_err(db, "audit log");
		goto out;
	}
	c->audit = (uint64_t)sqlite3_column_int64(st, 0);
	c->audit_last_id = sqlite3_column_int64(st, 1);
	if (sqlite3_column_bytes(st, 2) == 32)
		memcpy(c->audit_head, sqlite3_column_blob(st, 2), 32);
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT (SELECT value FROM crl_counter "
	    "WHERE id = 1), (SELECT count(*) FROM api_tokens)", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		r = counts_err(db, "CRL number and tokens");
		goto out;
	}
	c->crl_number = (uint64_t)sqlite3_column_int64(st, 0);
	c->tokens = (uint64_t)sqlite3_column_int64(st, 1);
out:
	sqlite3_finalize(st);
	return r;
}

int
store_snapshot_counts(struct store_snapshot *s, struct store_dump_counts *c)
{
	return counts_db(s->db, c, 1);
}

int
store_counts(struct store *st, struct store_dump_counts *c)
{
	return counts_db(store_sqlite_db(st), c, 0);
}

/* -------------------------------------------------------------- loading */

/* Value of a base64 character, -1 for any other byte. */
static const signed char b64_value[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/*
 * Strict base64 (RFC 4648 section 4, with padding, no whitespace, unused
 * bits zero) of IN[0..N) into OUT (room for n / 4 * 3). Returns the length
 * decoded or -1.
 */
static long
b64_decode(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t i, o = 0, pad = 0;
	int a, b, c, d;

	if (n % 4 != 0)
		return -1;
	if (n > 0 && in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n; i += 4) {
		a = b64_value[in[i]];
		b = b64_value[in[i + 1]];
		if (i + 4 == n && pad > 0) {
			c = pad == 2 ? 0 : b64_value[in[i + 2]];
			d = 0;
		} else {
			c = b64_value[in[i + 2]];
			d = b64_value[in[i + 3]];
		}
		if ((a | b | c | d) < 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (i + 4 == n && pad == 2) {
			if (b & 15)
				return -1;
			break;
		}
		out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		if (i + 4 == n && pad == 1) {
			if (c & 3)
				return -1;
			break;
		}
		out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	return (long)o;
}

/* A short printable form of the row's key for messages. */
static void
row_name(const json_t *obj, const struct table *t, char *buf, size_t size)
{
	const json_t *k = json_object_get(obj, t->cols[0].name);
	const char *v;
	size_t i, n;

	if (json_is_integer(k)) {
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(k));
		return;
	}
	if (!json_is_string(k)) {
		snprintf(buf, size, "?");
		return;
	}
	v = json_string_value(k);
	n = json_string_length(k);
	for (i = 0; i < n && i + 1 < size && i < 64; i++)
		buf[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
	buf[i] = '\0';
}

/* The bytes of a BLOB value (base64 string) or of a TEXT value written as
 * {"base64": "..."}; *out is new. */
static int
load_b64(const json_t *v, unsigned char **out, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)json_string_value(v);
	size_t n = json_string_length(v);
	unsigned char *d;
	long dl;

	if ((d = malloc(n / 4 * 3 + 1)) == NULL)
		return CK_E_NOMEM;
	if ((dl = b64_decode(p, n, d)) < 0) {
		free(d);
		return CK_E_PARSE;
	}
	*out = d;
	*outlen = (size_t)dl;
	return 0;
}

/* The singleton row in place must not be ahead of the one loaded. */
static int
load_check_singleton(struct store *st, const struct table *t,
    const json_t *obj, const char *rname, int64_t upto_seq)
{
	sqlite3_stmt *s = NULL;
	json_int_t v;
	int r, i, c;

	v = json_integer_value(json_object_get(obj, t->cols[t->upto_col].name));
	if (v > upto_seq)
		return ck_err_set(CK_E_PARSE, "table %s, row %s: %s %lld is "
		    "beyond the set's sequence %lld", t->name, rname,
		    t->cols[t->upto_col].name, (long long)v,
		    (long long)upto_seq);
	if ((r = store_stmt_prepare(st, t->sql_current, &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, json_integer_value(json_object_get(obj,
	    t->cols[0].name)));
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		for (i = 0; i < t->nmono; i++) {
			c = t->mono[i];
			v = json_integer_value(json_object_get(obj,
			    t->cols[c].name));
			if (v < sqlite3_column_int64(s, i)) {
				r = ck_err_set(CK_E_STATE, "table %s, row %s: "
				    "%s would go back from %lld to %lld",
				    t->name, rname, t->cols[c].name,
				    (long long)sqlite3_column_int64(s, i),
				    (long long)v);
				break;
			}
		}
		break;
	case SQLITE_DONE:
		break;
	default:
		r = store_db_err(st, t->name);
	}
	store_stmt_done(st, s);
	return r;
}

int
store_load_line(struct store *st, const char *table, const char *line,
    size_t len, int64_t after_seq, int64_t upto_seq)
{
	const struct table *t = table_find(table);
	struct {
		unsigned char *p;
		size_t n;
	} bytes[MAX_COLS];
	const json_t *v, *b64;
	json_t *obj = NULL;
	json_error_t jerr;
	sqlite3_stmt *s = NULL;
	const char *key;
	char rname[72];
	json_int_t seq;
	int r = 0, i, rc;

	memset(bytes, 0, sizeof(bytes));
	if (t == NULL)
		return ck_err_set(CK_E_PARSE, "unknown store table '%.64s'",
		    table);
	if (store_tx_depth(st) == 0)
		return ck_err_set(CK_E_STATE, "loading %s: not in a "
		    "transaction", t->name);
	if (len > LOAD_LINE_MAX)
		return ck_err_set(CK_E_TOOBIG, "table %s: a line of %zu bytes, "
		    "more than %u", t->name, len, LOAD_LINE_MAX);
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &jerr);
	if (obj == NULL) {
		r = ck_err_set(CK_E_PARSE, "table %s: invalid JSON at byte "
		    "%d: %s", t->name, jerr.position, jerr.text);
		goto out;
	}
	if (!json_is_object(obj)) {
		r = ck_err_set(CK_E_PARSE, "table %s: a row must be a JSON "
		    "object", t->name);
		goto out;
	}
	row_name(obj, t, rname, sizeof(rname));
	json_object_foreach(obj, key, v) {
		for (i = 0; i < t->ncols; i++)
			if (strcmp(key, t->cols[i].name) == 0)
				break;
		if (i == t->ncols) {
			r = ck_err_set(CK_E_PARSE, "table %s, row %s: unknown "
			    "column '%.64s'", t->name, rname, key);
			goto out;
		}
	}
	/* Every column present with its type; the object has no others,
	 * so checking each description once covers it. */
	for (i = 0; i < t->ncols; i++) {
		v = json_object_get(obj, t->cols[i].name);
		if (v == NULL) {
			r = ck_err_set(CK_E_PARSE, "table %s, row %s: column "
			    "%s is missing", t->name, rname, t->cols[i].name);
			goto out;
		}
		if (json_is_null(v)) {
			if (!t->cols[i].nullable) {
				r = ck_err_set(CK_E_PARSE, "table %s, row %s: "
				    "column %s may not be null", t->name,
				    rname, t->cols[i].name);
				goto out;
			}
			continue;
		}
		b64 = NULL;
		switch (t->cols[i].type) {
		case COL_INTEGER:
			if (json_is_integer(v))
				continue;
			break;
		case COL_BLOB:
			if (json_is_string(v))
				b64 = v;
			break;
		case COL_TEXT:
			if (json_is_string(v))
				continue;
			/* Text that is not UTF-8, as the dump writes it. */
			if (json_is_object(v) && json_object_size(v) == 1 &&
			    json_is_string(json_object_get(v, "base64")))
				b64 = json_object_get(v, "base64");
			break;
		}
		if (b64 == NULL) {
			r = ck_err_set(CK_E_PARSE, "table %s, row %s: column "
			    "%s must be %s", t->name, rname, t->cols[i].name,
			    t->cols[i].type == COL_BLOB ? "a base64 string" :
			    col_type_names[t->cols[i].type]);
			goto out;
		}
		if ((r = load_b64(b64, &bytes[i].p, &bytes[i].n)) != 0) {
			if (r == CK_E_PARSE)
				r = ck_err_set(CK_E_PARSE, "table %s, row %s: "
				    "column %s is not valid base64", t->name,
				    rname, t->cols[i].name);
			goto out;
		}
	}
	if (t->seq_col >= 0 && !t->singleton) {
		seq = json_integer_value(json_object_get(obj,
		    t->cols[t->seq_col].name));
		if (seq <= after_seq || seq > upto_seq) {
			r = ck_err_set(CK_E_PARSE, "table %s, row %s: "
			    "change_seq %lld is outside the set's range "
			    "(%lld, %lld]", t->name, rname, (long long)seq,
			    (long long)after_seq, (long long)upto_seq);
			goto out;
		}
	}
	if (t->singleton &&
	    (r = load_check_singleton(st, t, obj, rname, upto_seq)) != 0)
		goto out;

	if ((r = store_stmt_prepare(st, t->sql_insert, &s)) != 0)
		goto out;
	for (i = 0; i < t->ncols; i++) {
		v = json_object_get(obj, t->cols[i].name);
		if (bytes[i].p != NULL) {
			/* Decoded from base64 above. */
			if (t->cols[i].type == COL_TEXT)
				sqlite3_bind_text(s, i + 1,
				    (const char *)bytes[i].p, (int)bytes[i].n,
				    SQLITE_STATIC);
			else if (bytes[i].n == 0)
				/* A NULL pointer would bind NULL, and a
				 * zero length an empty blob only this way. */
				sqlite3_bind_zeroblob(s, i + 1, 0);
			else
				sqlite3_bind_blob(s, i + 1, bytes[i].p,
				    (int)bytes[i].n, SQLITE_STATIC);
		} else if (json_is_integer(v))
			sqlite3_bind_int64(s, i + 1, json_integer_value(v));
		else if (json_is_string(v))
			sqlite3_bind_text(s, i + 1, json_string_value(v),
			    (int)json_string_length(v), SQLITE_STATIC);
		/* else null: left unbound. */
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		r = ck_err_set(CK_E_PARSE, "table %s, row %s: refused by the "
		    "store: %s", t->name, rname,
		    sqlite3_errmsg(store_sqlite_db(st)));
	else if (rc != SQLITE_DONE)
		r = store_db_err(st, t->name);
out:
	if (s != NULL)
		store_stmt_done(st, s);
	for (i = 0; i < t->ncols; i++)
		free(bytes[i].p);
	json_decref(obj);
	return r;
}

int
store_load_finish(struct store *st, int64_t upto_seq)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_stmt_prepare(st, "UPDATE change_seq SET value = "
	    "max(value, ?) WHERE id = 1", &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, upto_seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "raising the change sequence");
	store_stmt_done(st, s);
	return r;
}
