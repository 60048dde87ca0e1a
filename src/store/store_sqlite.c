/*
 * store_sqlite.c - the embedded SQLite backend of store.h.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/timeutil.h"

/* Prepared statements are kept for reuse, keyed by the address of their
 * SQL text (always a string literal here). */
#define STMT_CACHE 128

struct stmt_slot {
	const char *sql;
	sqlite3_stmt *s;
	int busy;
};

/* Transaction statements kept prepared for the first levels of nesting
 * (the server's group commit opens and releases a savepoint per item:
 * parsing their text each time was a measurable share of a commit). */
#define TX_LEVELS 8

enum tx_op { TX_BEGIN, TX_RELEASE, TX_ROLLBACK_TO, TX_OP__MAX };

struct store {
	sqlite3 *db;
	int depth;		/* transaction nesting */
	struct stmt_slot cache[STMT_CACHE];
	sqlite3_stmt *tx[TX_OP__MAX][TX_LEVELS];
};

static void store_tx_rollback_level(struct store *st);
static int next_seq_n(struct store *st, size_t n, int64_t *first);

static const char *const status_names[STORE_CERT_STATUS__MAX] = {
	"pending", "issued", "revoked", "failed"
};

/* Versioned migrations: entry i brings user_version from i to i+1. */
static const char *const migrations[] = {
	/* 1: the foundation schema */
	"CREATE TABLE change_seq (id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  value INTEGER NOT NULL);"
	"INSERT INTO change_seq VALUES (1, 0);"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE TABLE certs ("
	"  serial TEXT PRIMARY KEY,"
	"  status TEXT NOT NULL CHECK (status IN"
	"    ('pending','issued','revoked','failed')),"
	"  subject TEXT NOT NULL, names TEXT NOT NULL, profile TEXT NOT NULL,"
	"  requester TEXT NOT NULL, tbs_sha256 TEXT NOT NULL,"
	"  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL, is_ca INTEGER NOT NULL,"
	"  der BLOB, revoked_at INTEGER, reason INTEGER,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE INDEX certs_status ON certs (status, not_after);"
	"CREATE INDEX certs_seq ON certs (change_seq);"
	"CREATE INDEX certs_created ON certs (created_at);"
	"CREATE TABLE crl_counter (id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  value INTEGER NOT NULL, change_seq INTEGER NOT NULL);"
	"INSERT INTO crl_counter VALUES (1, 0, 0);"
	"CREATE TABLE crls (number INTEGER PRIMARY KEY,"
	"  this_update INTEGER NOT NULL, next_update INTEGER NOT NULL,"
	"  der BLOB NOT NULL, change_seq INTEGER NOT NULL);"
	"CREATE TABLE audit (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
	"  user TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL,"
	"  result TEXT NOT NULL, detail TEXT NOT NULL,"
	"  prev_hash BLOB NOT NULL, hash BLOB NOT NULL,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE TABLE config_history (id INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL, user TEXT NOT NULL, sha256 TEXT NOT NULL,"
	"  content TEXT NOT NULL, change_seq INTEGER NOT NULL);",
	/* 2: API tokens */
	"CREATE TABLE api_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL "
	"  UNIQUE, secret_sha256 BLOB NOT NULL, profiles TEXT NOT NULL,"
	"  dns_suffixes TEXT NOT NULL, ip_ranges TEXT NOT NULL,"
	"  email_domains TEXT NOT NULL, can_revoke INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL, created_by TEXT NOT NULL,"
	"  revoked_at INTEGER, change_seq INTEGER NOT NULL);",
	/* 3: the backup catalogue and the custody ledger (docs/backup.md) */
	"CREATE TABLE backups (id TEXT PRIMARY KEY, kind TEXT NOT NULL"
	"  CHECK (kind IN ('full','incremental')), chain TEXT NOT NULL,"
	"  parent TEXT NOT NULL, seq_from INTEGER NOT NULL,"
	"  seq_to INTEGER NOT NULL, created_at INTEGER NOT NULL,"
	"  manifest_sha256 TEXT NOT NULL, archive_sha256 TEXT NOT NULL,"
	"  size INTEGER NOT NULL, copies TEXT NOT NULL,"
	"  verified_at INTEGER NOT NULL, verify_result TEXT,"
	"  drilled_at INTEGER NOT NULL, drill_result TEXT,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE TABLE custody (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
	"  operator TEXT NOT NULL, event TEXT NOT NULL,"
	"  artefact TEXT NOT NULL, kind TEXT NOT NULL, place TEXT NOT NULL,"
	"  detail TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE INDEX custody_artefact ON custody (artefact, id);",
	/* 4: ACME (RFC 8555) accounts, orders, authorizations, challenges
	 * (store_acme.h). No foreign keys: a restore loads tables in any
	 * order. The change_seq indexes keep an incremental dump's cost that
	 * of the changes: these tables grow with issuance, as certs does. */
	"CREATE TABLE acme_accounts (id TEXT PRIMARY KEY,"
	"  jwk_thumbprint TEXT NOT NULL UNIQUE, jwk TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN"
	"    ('valid','deactivated','revoked')),"
	"  contact TEXT NOT NULL, eab_kid TEXT, tos_agreed INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL, change_seq INTEGER NOT NULL);"
	"CREATE TABLE acme_orders (id TEXT PRIMARY KEY,"
	"  account_id TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN"
	"    ('pending','ready','processing','valid','invalid')),"
	"  expires INTEGER NOT NULL, identifiers TEXT NOT NULL,"
	"  not_before INTEGER, not_after INTEGER, profile TEXT NOT NULL,"
	"  cert_serial TEXT, error TEXT, replaces TEXT,"
	"  created_at INTEGER NOT NULL, change_seq INTEGER NOT NULL);"
	"CREATE INDEX acme_orders_account ON acme_orders (account_id, id);"
	"CREATE INDEX acme_orders_seq ON acme_orders (change_seq);"
	"CREATE TABLE acme_authzs (id TEXT PRIMARY KEY,"
	"  account_id TEXT NOT NULL, order_id TEXT NOT NULL,"
	"  identifier_type TEXT NOT NULL CHECK (identifier_type IN"
	"    ('dns','ip')),"
	"  identifier_value TEXT NOT NULL, wildcard INTEGER NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('pending','valid',"
	"    'invalid','deactivated','expired','revoked')),"
	"  expires INTEGER NOT NULL, created_at INTEGER NOT NULL,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE INDEX acme_authzs_order ON acme_authzs (order_id);"
	"CREATE INDEX acme_authzs_reuse ON acme_authzs (account_id,"
	"  identifier_type, identifier_value, wildcard, status, expires);"
	"CREATE INDEX acme_authzs_seq ON acme_authzs (change_seq);"
	"CREATE TABLE acme_challenges (id TEXT PRIMARY KEY,"
	"  authz_id TEXT NOT NULL,"
	"  type TEXT NOT NULL CHECK (type IN"
	"    ('http-01','dns-01','tls-alpn-01')),"
	"  token TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN"
	"    ('pending','processing','valid','invalid')),"
	"  validated INTEGER, error TEXT, change_seq INTEGER NOT NULL);"
	"CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id);"
	"CREATE INDEX acme_challenges_seq ON acme_challenges (change_seq);",
	/* 5: ACME external account binding keys (store_acme.h): the HMAC key
	 * only sealed to the home's EAB key (src/ca/eab_seal.h), never in
	 * the clear. */
	"CREATE TABLE acme_eab (kid TEXT PRIMARY KEY, sealed BLOB NOT NULL,"
	"  note TEXT NOT NULL, created_at INTEGER NOT NULL,"
	"  revoked_at INTEGER, account_id TEXT, bound_at INTEGER,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE INDEX acme_eab_seq ON acme_eab (change_seq);",
	/* 6: ACME rate limits (orders of an account in a period,
	 * certificates for a name in a period) and lookups by the
	 * certificate an order produced or replaces. */
	"CREATE INDEX acme_orders_recent ON acme_orders (account_id,"
	"  created_at);"
	"CREATE INDEX acme_orders_cert ON acme_orders (cert_serial);"
	"CREATE INDEX acme_orders_replaces ON acme_orders (replaces);"
	"CREATE INDEX acme_authzs_ident ON acme_authzs (identifier_type,"
	"  identifier_value, wildcard);",
	/* 7: operators and their roles (store_authz.h). Rows are never
	 * deleted (incremental backups carry every change); the OS user and
	 * the certificate are unique among active operators. */
	"CREATE TABLE operators (name TEXT PRIMARY KEY, os_user TEXT,"
	"  cert_sha256 TEXT, created_at INTEGER NOT NULL,"
	"  created_by TEXT NOT NULL, disabled_at INTEGER,"
	"  change_seq INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX operators_os_user ON operators (os_user)"
	"  WHERE disabled_at IS NULL;"
	"CREATE UNIQUE INDEX operators_cert ON operators (cert_sha256)"
	"  WHERE disabled_at IS NULL;"
	"CREATE TABLE operator_roles (operator TEXT NOT NULL,"
	"  role TEXT NOT NULL CHECK (role IN ('ca-admin','cert-manager',"
	"    'auditor','backup-operator')),"
	"  granted_at INTEGER NOT NULL, granted_by TEXT NOT NULL,"
	"  revoked_at INTEGER, change_seq INTEGER NOT NULL,"
	"  PRIMARY KEY (operator, role));",
	/* 8: requests awaiting approval and their approvals
	 * (store_request.h). Rows are never deleted. */
	"CREATE TABLE requests (id INTEGER PRIMARY KEY,"
	"  status TEXT NOT NULL CHECK (status IN ('pending','approved',"
	"    'denied','issued')),"
	"  profile TEXT NOT NULL, days INTEGER NOT NULL,"
	"  path_len INTEGER NOT NULL, csr BLOB NOT NULL,"
	"  subject TEXT NOT NULL, names TEXT NOT NULL,"
	"  requester TEXT NOT NULL, requester_operator TEXT,"
	"  requester_os_user TEXT, acme_order TEXT,"
	"  created_at INTEGER NOT NULL, decided_at INTEGER, reason TEXT,"
	"  cert_serial TEXT, change_seq INTEGER NOT NULL);"
	"CREATE INDEX requests_status ON requests (status);"
	"CREATE INDEX requests_acme_order ON requests (acme_order);"
	"CREATE TABLE request_approvals (request_id INTEGER NOT NULL,"
	"  approver TEXT NOT NULL, actor TEXT NOT NULL,"
	"  at INTEGER NOT NULL, reason TEXT NOT NULL,"
	"  change_seq INTEGER NOT NULL,"
	"  PRIMARY KEY (request_id, approver));",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

const char *
store_cert_status_name(enum store_cert_status s)
{
	if ((unsigned)s >= STORE_CERT_STATUS__MAX)
		return "unknown";
	return status_names[s];
}

int
store_cert_status_parse(const char *s)
{
	int i;

	for (i = 0; i < STORE_CERT_STATUS__MAX; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return -1;
}

static int
db_err(struct store *st, const char *what)
{
	int code = sqlite3_errcode(st->db);

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return ck_err_set(CK_E_BUSY, "%s: the store is busy: %s", what,
		    sqlite3_errmsg(st->db));
	if (code == SQLITE_FULL)
		return ck_err_set(CK_E_IO, "%s: disk full: %s", what,
		    sqlite3_errmsg(st->db));
	return ck_err_set(CK_E_STORE, "%s: %s", what, sqlite3_errmsg(st->db));
}

static int
exec(struct store *st, const char *sql)
{
	char *msg = NULL;
	int r;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		r = db_err(st, "store");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

static int
prepare(struct store *st, const char *sql, sqlite3_stmt **out)
{
	struct stmt_slot *free_slot = NULL;
	int i;

	for (i = 0; i < STMT_CACHE; i++) {
		if (st->cache[i].sql == sql && !st->cache[i].busy) {
			st->cache[i].busy = 1;
			*out = st->cache[i].s;
			return 0;
		}
		if (st->cache[i].sql == NULL && free_slot == NULL)
			free_slot = &st->cache[i];
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, free_slot ?
	    SQLITE_PREPARE_PERSISTENT : 0, out, NULL) != SQLITE_OK)
		return db_err(st, "store prepare");
	if (free_slot != NULL) {
		free_slot->sql = sql;
		free_slot->s = *out;
		free_slot->busy = 1;
	}
	return 0;
}

/* Done with a statement from prepare(): reset a cached one, finalize
 * any other. */
static void
stmt_done(struct store *st, sqlite3_stmt *s)
{
	int i;

	for (i = 0; i < STMT_CACHE; i++)
		if (st->cache[i].s == s && st->cache[i].busy) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			st->cache[i].busy = 0;
			return;
		}
	sqlite3_finalize(s);
}

/* Run a statement that returns no rows; releases it. */
static int
step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s), r = 0;

	if (rc != SQLITE_DONE)
		r = db_err(st, what);
	stmt_done(st, s);
	return r;
}

static int
migrate(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int version, r, i;
	char sql[64];

	if ((r = prepare(st, "PRAGMA user_version", &s)) != 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW) {
		stmt_done(st, s);
		return db_err(st, "store version");
	}
	version = sqlite3_column_int(s, 0);
	stmt_done(st, s);
	if (version > NMIGRATIONS)
		return ck_err_set(CK_E_STORE,
		    "the store has schema version %d, newer than this "
		    "certkeep understands (%d)", version, NMIGRATIONS);
	for (i = version; i < NMIGRATIONS; i++) {
		if ((r = exec(st, "BEGIN IMMEDIATE")) != 0)
			return r;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", i + 1);
		if ((r = exec(st, migrations[i])) != 0 ||
		    (r = exec(st, sql)) != 0) {
			(void)exec(st, "ROLLBACK");
			return r;
		}
		if ((r = exec(st, "COMMIT")) != 0)
			return r;
	}
	return 0;
}

/*
 * The certs table's status CHECK as migration 1 wrote it, and the same
 * constraint as comparisons. SQLite evaluates an IN list of more than two
 * constants through an ephemeral index built for every row written (a
 * b-tree and its page buffers, opened, filled and freed each time), which
 * made the CHECK cost as much as the rest of writing the row; the
 * comparisons cost next to nothing and accept exactly the same values.
 */
static const char certs_check_in[] =
    "CHECK (status IN    ('pending','issued','revoked','failed'))";
static const char certs_check_eq[] =
    "CHECK (status = 'pending' OR status = 'issued' OR "
    "status = 'revoked' OR status = 'failed')";

/*
 * Rewrite the certs table's CHECK from certs_check_in to certs_check_eq
 * where it still has the first. The table's records do not change (a
 * CHECK is not stored in them): this is the schema-text edit SQLite
 * documents for constraint changes (writable_schema, then a new
 * schema_version so that every connection reloads the schema). The
 * schema's user_version stays: the constraint means the same, and an
 * older certkeep reads the store as before. Best effort: if SQLite
 * refuses (a defensive build), the store keeps the slower CHECK.
 */
/* 1 if the certs table's schema text still has certs_check_in. */
static int
certs_check_old(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(st->db, "SELECT instr(sql, ?) FROM "
	    "sqlite_schema WHERE type = 'table' AND name = 'certs'", -1, &s,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, certs_check_in, -1, SQLITE_STATIC);
		found = sqlite3_step(s) == SQLITE_ROW &&
		    sqlite3_column_int(s, 0) > 0;
	}
	sqlite3_finalize(s);
	return found;
}

static void
certs_check_fixup(struct store *st)
{
	sqlite3_stmt *s = NULL;
	char sql[64];
	int found = 0, ok = 0;
	sqlite3_int64 ver = 0;

	/* Read first: a store that has it (all but the first open) takes
	 * no write lock. */
	if (!certs_check_old(st) || sqlite3_exec(st->db, "BEGIN IMMEDIATE",
	    NULL, NULL, NULL) != SQLITE_OK)
		return;
	if (!(found = certs_check_old(st)))
		goto out;
	if (sqlite3_prepare_v2(st->db, "PRAGMA schema_version", -1, &s,
	    NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW)
		goto out;
	ver = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_exec(st->db, "PRAGMA writable_schema = ON", NULL, NULL,
	    NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(st->db, "UPDATE sqlite_schema SET sql = "
	    "replace(sql, ?, ?) WHERE type = 'table' AND name = 'certs'", -1,
	    &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, certs_check_in, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, certs_check_eq, -1, SQLITE_STATIC);
		ok = sqlite3_step(s) == SQLITE_DONE &&
		    sqlite3_changes(st->db) == 1;
	}
	sqlite3_finalize(s);
	s = NULL;
	snprintf(sql, sizeof(sql), "PRAGMA schema_version = %lld",
	    (long long)ver + 1);
	ok = ok && sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK;
	ok = sqlite3_exec(st->db, "PRAGMA writable_schema = OFF", NULL, NULL,
	    NULL) == SQLITE_OK && ok;
out:
	sqlite3_finalize(s);
	if (!(found && ok) || sqlite3_exec(st->db, "COMMIT", NULL, NULL,
	    NULL) != SQLITE_OK)
		(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int
store_open(const char *path, int create, struct store **out)
{
	struct store *st = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, r, fd;

	if (create) {
		/* Create the file ourselves: exclusive, 0600. */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd < 0)
			return ck_err_set(CK_E_EXISTS,
			    "cannot create store %s (it may already exist)",
			    path);
		close(fd);
	} else if (!ck_fs_exists(path))
		return ck_err_set(CK_E_NOTFOUND, "no store at %s", path);
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return CK_E_NOMEM;
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		r = ck_err_set(CK_E_STORE, "cannot open store %s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 10000);
	sqlite3_extended_result_codes(st->db, 0);
	if ((r = exec(st, "PRAGMA journal_mode=WAL")) != 0 ||
	    (r = exec(st, "PRAGMA synchronous=FULL")) != 0 ||
	    (r = exec(st, "PRAGMA foreign_keys=ON")) != 0 ||
	    (r = exec(st, "PRAGMA secure_delete=ON")) != 0 ||
	    (r = exec(st, "PRAGMA temp_store=MEMORY")) != 0 ||
	    (r = migrate(st)) != 0)
		goto fail;
	certs_check_fixup(st);
	*out = st;
	return 0;
fail:
	store_close(st);
	if (create)
		unlink(path);
	return r;
}

void
store_close(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	if (st->depth > 0)
		(void)exec(st, "ROLLBACK");
	for (i = 0; i < STMT_CACHE; i++)
		if (st->cache[i].s != NULL)
			sqlite3_finalize(st->cache[i].s);
	for (i = 0; i < TX_OP__MAX * TX_LEVELS; i++)
		sqlite3_finalize(st->tx[i / TX_LEVELS][i % TX_LEVELS]);
	sqlite3_close(st->db);
	free(st);
}

/*
 * Run transaction statement `op` for nesting level `level` (0: BEGIN
 * IMMEDIATE, COMMIT, ROLLBACK; above: SAVEPOINT spN, RELEASE spN,
 * ROLLBACK TO spN), prepared once per level.
 */
static int
tx_exec(struct store *st, enum tx_op op, int level)
{
	static const char *const top[TX_OP__MAX] = { "BEGIN IMMEDIATE",
	    "COMMIT", "ROLLBACK" };
	static const char *const fmt[TX_OP__MAX] = { "SAVEPOINT sp%d",
	    "RELEASE sp%d", "ROLLBACK TO sp%d" };
	sqlite3_stmt **slot, *s = NULL;
	char sql[48];
	int rc, r;

	slot = level < TX_LEVELS ? &st->tx[op][level] : NULL;
	if (slot == NULL || *slot == NULL) {
		if (level == 0)
			snprintf(sql, sizeof(sql), "%s", top[op]);
		else
			snprintf(sql, sizeof(sql), fmt[op], level);
		if (slot == NULL)
			return exec(st, sql);
		if (sqlite3_prepare_v3(st->db, sql, -1,
		    SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
			*slot = NULL;
			return db_err(st, "store");
		}
	}
	s = *slot;
	rc = sqlite3_step(s);
	r = rc == SQLITE_DONE ? 0 : db_err(st, "store");
	sqlite3_reset(s);
	return r;
}

int
store_tx_begin(struct store *st)
{
	int r;

	if ((r = tx_exec(st, TX_BEGIN, st->depth)) != 0)
		return r;
	st->depth++;
	return 0;
}

int
store_tx_depth(const struct store *st)
{
	return st->depth;
}

int
store_tx_commit(struct store *st)
{
	int r;

	if (st->depth <= 0)
		return ck_err_set(CK_E_STATE, "commit without a transaction");
	st->depth--;
	if ((r = tx_exec(st, TX_RELEASE, st->depth)) != 0) {
		if (st->depth > 0)
			store_tx_rollback_level(st);
		else
			(void)exec(st, "ROLLBACK");
		return r;
	}
	return 0;
}

/* Undo the savepoint whose RELEASE failed (depth already lowered). */
static void
store_tx_rollback_level(struct store *st)
{
	st->depth++;
	store_tx_rollback(st);
}

void
store_tx_rollback(struct store *st)
{
	if (st->depth <= 0)
		return;
	st->depth--;
	(void)tx_exec(st, TX_ROLLBACK_TO, st->depth);
	if (st->depth > 0)
		(void)tx_exec(st, TX_RELEASE, st->depth);
}

/* Finish a one-statement mutation's own transaction. */
int
store_tx_end(struct store *st, int r)
{
	if (r == 0)
		return store_tx_commit(st);
	store_tx_rollback(st);
	return r;
}

/* Next change-sequence value; must be called inside a transaction. */
int
store_next_seq(struct store *st, int64_t *out)
{
	return next_seq_n(st, 1, out);
}

int
store_tx_begin_seq(struct store *st, int64_t *seq)
{
	int r;

	if ((r = store_tx_begin(st)) != 0)
		return r;
	if ((r = store_next_seq(st, seq)) != 0)
		store_tx_rollback(st);
	return r;
}

/*
 * Begin a mutation: a transaction (or savepoint), the next change
 * sequence value, and the statement `sql`. On failure the transaction is
 * already ended and the error is returned.
 */
static int
mutation_begin(struct store *st, const char *sql, sqlite3_stmt **s,
    int64_t *seq)
{
	int r;

	if ((r = store_tx_begin(st)) != 0)
		return r;
	if ((r = store_next_seq(st, seq)) != 0 || (r = prepare(st, sql, s)) != 0) {
		store_tx_rollback(st);
		return r;
	}
	return 0;
}

int
store_change_seq(struct store *st, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, "SELECT value FROM change_seq WHERE id = 1",
	    &s)) != 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW) {
		r = db_err(st, "change sequence");
		stmt_done(st, s);
		return r;
	}
	*out = sqlite3_column_int64(s, 0);
	stmt_done(st, s);
	return 0;
}

int
store_meta_get(struct store *st, const char *key, char **out)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, "SELECT value FROM meta WHERE key = ?", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		*out = strdup((const char *)sqlite3_column_text(s, 0));
		r = *out == NULL ? CK_E_NOMEM : 0;
		break;
	case SQLITE_DONE:
		r = CK_E_NOTFOUND;
		break;
	default:
		r = db_err(st, "meta");
	}
	stmt_done(st, s);
	return r;
}

int
store_meta_set(struct store *st, const char *key, const char *value)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = mutation_begin(st, "INSERT INTO meta (key, value, change_seq) "
	    "VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
	    "value = excluded.value, change_seq = excluded.change_seq",
	    &s, &seq)) != 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, seq);
	return store_tx_end(st, step_done(st, s, "meta"));
}

static const char cert_insert_sql[] = "INSERT INTO certs (serial, status, "
    "subject, names, profile, requester, tbs_sha256, not_before, not_after, "
    "created_at, is_ca, change_seq) VALUES "
    "(?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char cert_issued_sql[] = "UPDATE certs SET status = 'issued', "
    "change_seq = ?, der = ? WHERE serial = ? AND status = 'pending'";

/* Bind and run the prepared cert_insert_sql for one record. */
static int
cert_insert_row(struct store *st, sqlite3_stmt *s, const struct store_cert *c,
    int64_t seq)
{
	int rc, r = 0;

	sqlite3_bind_text(s, 1, c->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->subject ? c->subject : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 3, c->names ? c->names : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, c->profile ? c->profile : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 5, c->requester ? c->requester : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 6, c->tbs_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, c->not_before);
	sqlite3_bind_int64(s, 8, c->not_after);
	sqlite3_bind_int64(s, 9, c->created_at);
	sqlite3_bind_int(s, 10, c->is_ca ? 1 : 0);
	sqlite3_bind_int64(s, 11, seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		r = ck_err_set(CK_E_EXISTS, "serial %s is already in use",
		    c->serial);
	else if (rc != SQLITE_DONE)
		r = db_err(st, "recording certificate");
	sqlite3_reset(s);
	return r;
}

int
store_cert_insert_pending(struct store *st, const struct store_cert *c)
{
	return store_cert_insert_pending_many(st, &c, 1);
}

/* Take n change sequence values; *first is the first of them. Inside a
 * transaction. An UPDATE and a SELECT rather than UPDATE ... RETURNING,
 * which SQLite runs through an ephemeral table opened for every use. */
static int
next_seq_n(struct store *st, size_t n, int64_t *first)
{
	static const char upd[] = "UPDATE change_seq SET value = value + ? "
	    "WHERE id = 1";
	static const char sel[] = "SELECT value FROM change_seq WHERE id = 1";
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, upd, &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)n);
	if ((r = step_done(st, s, "change sequence")) != 0)
		return r;
	if (sqlite3_changes(st->db) != 1)
		return ck_err_set(CK_E_STORE, "change sequence: no counter");
	if ((r = prepare(st, sel, &s)) != 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW)
		r = db_err(st, "change sequence");
	else
		*first = sqlite3_column_int64(s, 0) - (int64_t)n + 1;
	stmt_done(st, s);
	return r;
}

int
store_cert_insert_pending_many(struct store *st,
    const struct store_cert *const *c, size_t n)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	size_t i;
	int r;

	if (n == 0)
		return 0;
	if ((r = store_tx_begin(st)) != 0)
		return r;
	if ((r = next_seq_n(st, n, &seq)) != 0 ||
	    (r = prepare(st, cert_insert_sql, &s)) != 0) {
		store_tx_rollback(st);
		return r;
	}
	for (i = 0; i < n && r == 0; i++)
		r = cert_insert_row(st, s, c[i], seq + (int64_t)i);
	stmt_done(st, s);
	return store_tx_end(st, r);
}

int
store_cert_mark_issued_many(struct store *st,
    const struct store_cert *const *c, size_t n)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	size_t i;
	int r = 0;

	if (n == 0)
		return 0;
	if ((r = store_tx_begin(st)) != 0)
		return r;
	if ((r = next_seq_n(st, n, &seq)) != 0 ||
	    (r = prepare(st, cert_issued_sql, &s)) != 0) {
		store_tx_rollback(st);
		return r;
	}
	for (i = 0; i < n && r == 0; i++) {
		sqlite3_bind_int64(s, 1, seq + (int64_t)i);
		sqlite3_bind_blob(s, 2, c[i]->der, (int)c[i]->der_len,
		    SQLITE_STATIC);
		sqlite3_bind_text(s, 3, c[i]->serial, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE)
			r = db_err(st, "updating certificate");
		else if (sqlite3_changes(st->db) != 1)
			r = ck_err_set(CK_E_STATE, "certificate %s is not "
			    "pending", c[i]->serial);
		sqlite3_reset(s);
	}
	stmt_done(st, s);
	return store_tx_end(st, r);
}

/* UPDATE ... WHERE serial = ? AND status = ?; CK_E_STATE if no row. */
static int
cert_transition(struct store *st, const char *sql, const char *serial,
    const unsigned char *der, size_t der_len, int64_t when, int reason)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r, i = 1;

	if ((r = mutation_begin(st, sql, &s, &seq)) != 0)
		return r;
	sqlite3_bind_int64(s, i++, seq);
	if (der != NULL)
		sqlite3_bind_blob(s, i++, der, (int)der_len, SQLITE_STATIC);
	if (when != 0) {
		sqlite3_bind_int64(s, i++, when);
		sqlite3_bind_int(s, i++, reason);
	}
	sqlite3_bind_text(s, i, serial, -1, SQLITE_STATIC);
	if ((r = step_done(st, s, "updating certificate")) == 0 &&
	    sqlite3_changes(st->db) != 1)
		r = CK_E_STATE;
	return store_tx_end(st, r);
}

int
store_cert_mark_issued(struct store *st, const char *serial,
    const unsigned char *der, size_t der_len)
{
	int r = cert_transition(st, cert_issued_sql, serial, der, der_len, 0,
	    0);

	if (r == CK_E_STATE)
		return ck_err_set(r, "certificate %s is not pending", serial);
	return r;
}

int
store_cert_mark_failed(struct store *st, const char *serial)
{
	int r = cert_transition(st, "UPDATE certs SET status = 'failed', "
	    "change_seq = ? WHERE serial = ? AND status = 'pending'",
	    serial, NULL, 0, 0, 0);

	if (r == CK_E_STATE)
		return ck_err_set(r, "certificate %s is not pending", serial);
	return r;
}

int
store_cert_revoke(struct store *st, const char *serial, int64_t when,
    int reason)
{
	struct store_cert *c = NULL;
	int r;

	if ((r = store_tx_begin(st)) != 0)
		return r;
	if ((r = store_cert_get(st, serial, &c)) != 0)
		goto out;
	if (c->status == STORE_CERT_REVOKED) {
		r = ck_err_set(CK_E_STATE, "certificate %s is already revoked",
		    serial);
		goto out;
	}
	if (c->status != STORE_CERT_ISSUED) {
		r = ck_err_set(CK_E_STATE, "certificate %s was never issued "
		    "(status %s)", serial, store_cert_status_name(c->status));
		goto out;
	}
	r = cert_transition(st, "UPDATE certs SET status = 'revoked', "
	    "change_seq = ?, revoked_at = ?, reason = ? WHERE serial = ? "
	    "AND status = 'issued'", serial, NULL, 0, when, reason);
out:
	store_cert_free(c);
	return store_tx_end(st, r);
}

static char *
col_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return strdup(t ? (const char *)t : "");
}

#define CERT_COLS "serial, status, subject, names, profile, requester, " \
	"tbs_sha256, not_before, not_after, created_at, is_ca, der, " \
	"revoked_at, reason, change_seq"

static int
cert_from_row(sqlite3_stmt *s, struct store_cert **out)
{
	struct store_cert *c;
	const void *blob;
	int st;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CK_E_NOMEM;
	snprintf(c->serial, sizeof(c->serial), "%s",
	    (const char *)sqlite3_column_text(s, 0));
	st = store_cert_status_parse((const char *)sqlite3_column_text(s, 1));
	c->status = st < 0 ? STORE_CERT_FAILED : (enum store_cert_status)st;
	c->subject = col_strdup(s, 2);
	c->names = col_strdup(s, 3);
	c->profile = col_strdup(s, 4);
	c->requester = col_strdup(s, 5);
	snprintf(c->tbs_sha256, sizeof(c->tbs_sha256), "%s",
	    (const char *)sqlite3_column_text(s, 6));
	c->not_before = sqlite3_column_int64(s, 7);
	c->not_after = sqlite3_column_int64(s, 8);
	c->created_at = sqlite3_column_int64(s, 9);
	c->is_ca = sqlite3_column_int(s, 10);
	blob = sqlite3_column_blob(s, 11);
	c->der_len = (size_t)sqlite3_column_bytes(s, 11);
	if (blob != NULL && c->der_len > 0) {
		if ((c->der = malloc(c->der_len)) == NULL) {
			store_cert_free(c);
			return CK_E_NOMEM;
		}
		memcpy(c->der, blob, c->der_len);
	} else
		c->der_len = 0;
	c->revoked_at = sqlite3_column_int64(s, 12);
	c->reason = sqlite3_column_type(s, 13) == SQLITE_NULL ? -1 :
	    sqlite3_column_int(s, 13);
	c->change_seq = sqlite3_column_int64(s, 14);
	if (c->subject == NULL || c->names == NULL || c->profile == NULL ||
	    c->requester == NULL) {
		store_cert_free(c);
		return CK_E_NOMEM;
	}
	*out = c;
	return 0;
}

int
store_cert_get(struct store *st, const char *serial, struct store_cert **out)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, "SELECT " CERT_COLS " FROM certs WHERE "
	    "serial = ?", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, serial, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = cert_from_row(s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no certificate with serial %s",
		    serial);
		break;
	default:
		r = db_err(st, "reading certificate");
	}
	stmt_done(st, s);
	return r;
}

int
store_cert_list(struct store *st, const struct store_cert_filter *f,
    int (*cb)(const struct store_cert *c, void *arg), void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_cert *c = NULL;
	int r, rc;

	/* Every filter is bound; a NULL/zero binding disables its clause. */
	if ((r = prepare(st, "SELECT " CERT_COLS " FROM certs WHERE "
	    "(?1 IS NULL OR status = ?1) AND "
	    "(?2 = 0 OR not_after < ?3) AND "
	    "(?4 = 0 OR not_after < ?4) AND "
	    "(?5 IS NULL OR profile = ?5) AND "
	    "(?6 IS NULL OR instr(lower(subject), lower(?6)) > 0 OR "
	    "  instr(lower(names), lower(?6)) > 0) AND "
	    "change_seq > ?7 "
	    "ORDER BY created_at DESC, serial LIMIT ?8", &s)) != 0)
		return r;
	if (f->status >= 0 && f->status < STORE_CERT_STATUS__MAX)
		sqlite3_bind_text(s, 1, status_names[f->status], -1,
		    SQLITE_STATIC);
	sqlite3_bind_int(s, 2, f->expired ? 1 : 0);
	sqlite3_bind_int64(s, 3, f->now);
	sqlite3_bind_int64(s, 4, f->expiring_before);
	if (f->profile != NULL)
		sqlite3_bind_text(s, 5, f->profile, -1, SQLITE_STATIC);
	if (f->name != NULL)
		sqlite3_bind_text(s, 6, f->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, f->after_seq);
	sqlite3_bind_int64(s, 8, f->limit ? (sqlite3_int64)f->limit : -1);
	r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = cert_from_row(s, &c)) != 0)
			break;
		r = cb(c, arg);
		store_cert_free(c);
		c = NULL;
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(st, "listing certificates");
	stmt_done(st, s);
	return r;
}

void
store_cert_free(struct store_cert *c)
{
	if (c == NULL)
		return;
	free(c->subject);
	free(c->names);
	free(c->profile);
	free(c->requester);
	free(c->der);
	free(c);
}

int
store_revoked_list(struct store *st, int64_t not_after_min,
    struct store_revoked **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct store_revoked *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r, rc;

	if ((r = prepare(st, "SELECT serial, revoked_at, reason FROM certs "
	    "WHERE status = 'revoked' AND not_after > ? ORDER BY revoked_at, "
	    "serial", &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, not_after_min);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				stmt_done(st, s);
				return CK_E_NOMEM;
			}
			v = nv;
		}
		snprintf(v[cnt].serial, sizeof(v[cnt].serial), "%s",
		    (const char *)sqlite3_column_text(s, 0));
		v[cnt].revoked_at = sqlite3_column_int64(s, 1);
		v[cnt].reason = sqlite3_column_int(s, 2);
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		r = db_err(st, "listing revocations");
		free(v);
		stmt_done(st, s);
		return r;
	}
	stmt_done(st, s);
	*out = v;
	*n = cnt;
	return 0;
}

int
store_crl_next_number(struct store *st, uint64_t *out)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = mutation_begin(st, "UPDATE crl_counter SET value = value + 1, "
	    "change_seq = ? WHERE id = 1 RETURNING value", &s, &seq)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, seq);
	if (sqlite3_step(s) != SQLITE_ROW)
		r = db_err(st, "CRL number");
	else
		*out = (uint64_t)sqlite3_column_int64(s, 0);
	while (r == 0 && sqlite3_step(s) == SQLITE_ROW)
		;
	stmt_done(st, s);
	return store_tx_end(st, r);
}

int
store_crl_number_floor(struct store *st, uint64_t number)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = mutation_begin(st, "UPDATE crl_counter SET value = max(value, "
	    "?), change_seq = ? WHERE id = 1", &s, &seq)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)number);
	sqlite3_bind_int64(s, 2, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = db_err(st, "CRL number");
	stmt_done(st, s);
	return store_tx_end(st, r);
}

int
store_crl_insert(struct store *st, uint64_t number, int64_t this_update,
    int64_t next_update, const unsigned char *der, size_t der_len)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = mutation_begin(st, "INSERT INTO crls (number, this_update, "
	    "next_update, der, change_seq) VALUES (?, ?, ?, ?, ?)", &s, &seq)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)number);
	sqlite3_bind_int64(s, 2, this_update);
	sqlite3_bind_int64(s, 3, next_update);
	sqlite3_bind_blob(s, 4, der, (int)der_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, seq);
	return store_tx_end(st, step_done(st, s, "recording CRL"));
}

int
store_audit_last(struct store *st, int64_t *id, unsigned char hash[32])
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, "SELECT id, hash FROM audit ORDER BY id DESC "
	    "LIMIT 1", &s)) != 0)
		return r;
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		*id = sqlite3_column_int64(s, 0);
		memset(hash, 0, 32);
		if (sqlite3_column_bytes(s, 1) == 32)
			memcpy(hash, sqlite3_column_blob(s, 1), 32);
		r = 0;
		break;
	case SQLITE_DONE:
		*id = 0;
		memset(hash, 0, 32);
		r = 0;
		break;
	default:
		r = db_err(st, "audit log");
	}
	stmt_done(st, s);
	return r;
}

static const char audit_insert_sql[] = "INSERT INTO audit (id, time, user, "
    "action, object, result, detail, prev_hash, hash, change_seq) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

int
store_audit_insert(struct store *st, struct store_audit_entry *e)
{
	return store_audit_insert_many(st, e, 1);
}

int
store_audit_insert_many(struct store *st, struct store_audit_entry *e,
    size_t n)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	size_t i;
	int r = 0, rc;

	if (n == 0)
		return 0;
	if ((r = store_tx_begin(st)) != 0)
		return r;
	if ((r = next_seq_n(st, n, &seq)) != 0 ||
	    (r = prepare(st, audit_insert_sql, &s)) != 0) {
		store_tx_rollback(st);
		return r;
	}
	for (i = 0; i < n && r == 0; i++) {
		e[i].change_seq = seq + (int64_t)i;
		sqlite3_bind_int64(s, 1, e[i].id);
		sqlite3_bind_int64(s, 2, e[i].time);
		sqlite3_bind_text(s, 3, e[i].user, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, e[i].action, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, e[i].object, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, e[i].result, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 7, e[i].detail, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 8, e[i].prev_hash, 32, SQLITE_STATIC);
		sqlite3_bind_blob(s, 9, e[i].hash, 32, SQLITE_STATIC);
		sqlite3_bind_int64(s, 10, e[i].change_seq);
		rc = sqlite3_step(s);
		if (rc != SQLITE_DONE)
			r = db_err(st, "appending to the audit log");
		sqlite3_reset(s);
	}
	stmt_done(st, s);
	return store_tx_end(st, r);
}

int
store_audit_iter(struct store *st, int64_t from_id,
    int (*cb)(const struct store_audit_entry *e, void *arg), void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_audit_entry e;
	int r, rc;

	if ((r = prepare(st, "SELECT id, time, user, action, object, result, "
	    "detail, prev_hash, hash, change_seq FROM audit WHERE id >= ? "
	    "ORDER BY id", &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, from_id);
	r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		e.id = sqlite3_column_int64(s, 0);
		e.time = sqlite3_column_int64(s, 1);
		e.user = (char *)sqlite3_column_text(s, 2);
		e.action = (char *)sqlite3_column_text(s, 3);
		e.object = (char *)sqlite3_column_text(s, 4);
		e.result = (char *)sqlite3_column_text(s, 5);
		e.detail = (char *)sqlite3_column_text(s, 6);
		if (sqlite3_column_bytes(s, 7) == 32)
			memcpy(e.prev_hash, sqlite3_column_blob(s, 7), 32);
		if (sqlite3_column_bytes(s, 8) == 32)
			memcpy(e.hash, sqlite3_column_blob(s, 8), 32);
		e.change_seq = sqlite3_column_int64(s, 9);
		if (e.user == NULL)
			e.user = (char *)"";
		if (e.action == NULL)
			e.action = (char *)"";
		if (e.object == NULL)
			e.object = (char *)"";
		if (e.result == NULL)
			e.result = (char *)"";
		if (e.detail == NULL)
			e.detail = (char *)"";
		if ((r = cb(&e, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(st, "reading the audit log");
	stmt_done(st, s);
	return r;
}

int
store_config_latest(struct store *st, char hash_hex[65])
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, "SELECT sha256 FROM config_history ORDER BY id "
	    "DESC LIMIT 1", &s)) != 0)
		return r;
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		snprintf(hash_hex, 65, "%s",
		    (const char *)sqlite3_column_text(s, 0));
		r = 0;
		break;
	case SQLITE_DONE:
		r = CK_E_NOTFOUND;
		break;
	default:
		r = db_err(st, "configuration history");
	}
	stmt_done(st, s);
	return r;
}

int
store_config_insert(struct store *st, int64_t when, const char *user,
    const char *hash_hex, const char *content)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = mutation_begin(st, "INSERT INTO config_history (time, user, sha256, "
	    "content, change_seq) VALUES (?, ?, ?, ?, ?)", &s, &seq)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, when);
	sqlite3_bind_text(s, 2, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, hash_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, content, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, seq);
	return store_tx_end(st, step_done(st, s, "recording configuration"));
}

int
store_token_insert(struct store *st, const struct store_token *t)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r, rc;

	if ((r = mutation_begin(st, "INSERT INTO api_tokens (id, name, secret_sha256, "
	    "profiles, dns_suffixes, ip_ranges, email_domains, can_revoke, "
	    "created_at, created_by, change_seq) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &s, &seq)) != 0)
		return r;
	sqlite3_bind_text(s, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, t->secret_sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, t->profiles, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, t->dns_suffixes ? t->dns_suffixes : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 6, t->ip_ranges ? t->ip_ranges : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 7, t->email_domains ? t->email_domains : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(s, 8, t->can_revoke ? 1 : 0);
	sqlite3_bind_int64(s, 9, t->created_at);
	sqlite3_bind_text(s, 10, t->created_by ? t->created_by : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 11, seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		r = ck_err_set(CK_E_EXISTS, "a token named '%s' already exists",
		    t->name);
	else if (rc != SQLITE_DONE)
		r = db_err(st, "recording token");
	stmt_done(st, s);
	return store_tx_end(st, r);
}

int
store_token_revoke(struct store *st, const char *id_or_name, int64_t when)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if ((r = mutation_begin(st, "UPDATE api_tokens SET revoked_at = ?, "
	    "change_seq = ? WHERE (id = ?3 OR name = ?3) AND revoked_at IS "
	    "NULL", &s, &seq)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, when);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_text(s, 3, id_or_name, -1, SQLITE_STATIC);
	if ((r = step_done(st, s, "revoking token")) == 0 &&
	    sqlite3_changes(st->db) != 1) {
		/* Unknown, or known and already revoked (CK_E_STATE). */
		r = ck_err_set(CK_E_NOTFOUND, "no valid token '%s'",
		    id_or_name);
		if (prepare(st, "SELECT 1 FROM api_tokens WHERE id = ?1 OR "
		    "name = ?1", &s) == 0) {
			sqlite3_bind_text(s, 1, id_or_name, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW)
				r = ck_err_set(CK_E_STATE, "token '%s' is "
				    "already revoked", id_or_name);
			stmt_done(st, s);
		}
	}
	return store_tx_end(st, r);
}

int
store_token_list(struct store *st,
    int (*cb)(const struct store_token *t, void *arg), void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_token t;
	int r, rc;

	if ((r = prepare(st, "SELECT id, name, secret_sha256, profiles, "
	    "dns_suffixes, ip_ranges, email_domains, can_revoke, created_at, "
	    "created_by, revoked_at, change_seq FROM api_tokens ORDER BY "
	    "created_at, id", &s)) != 0)
		return r;
	r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&t, 0, sizeof(t));
		snprintf(t.id, sizeof(t.id), "%s",
		    (const char *)sqlite3_column_text(s, 0));
		t.name = (char *)sqlite3_column_text(s, 1);
		if (sqlite3_column_bytes(s, 2) == 32)
			memcpy(t.secret_sha256, sqlite3_column_blob(s, 2), 32);
		t.profiles = (char *)sqlite3_column_text(s, 3);
		t.dns_suffixes = (char *)sqlite3_column_text(s, 4);
		t.ip_ranges = (char *)sqlite3_column_text(s, 5);
		t.email_domains = (char *)sqlite3_column_text(s, 6);
		t.can_revoke = sqlite3_column_int(s, 7);
		t.created_at = sqlite3_column_int64(s, 8);
		t.created_by = (char *)sqlite3_column_text(s, 9);
		t.revoked_at = sqlite3_column_int64(s, 10);
		t.change_seq = sqlite3_column_int64(s, 11);
		if ((r = cb(&t, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(st, "listing tokens");
	stmt_done(st, s);
	return r;
}

int
store_cert_status(struct store *st, const char *serial,
    enum store_cert_status *status, int64_t *revoked_at, int *reason)
{
	sqlite3_stmt *s = NULL;
	int r, v;

	if ((r = prepare(st, "SELECT status, revoked_at, reason FROM certs "
	    "WHERE serial = ?", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, serial, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		v = store_cert_status_parse(
		    (const char *)sqlite3_column_text(s, 0));
		*status = v < 0 ? STORE_CERT_FAILED : (enum store_cert_status)v;
		*revoked_at = sqlite3_column_int64(s, 1);
		*reason = sqlite3_column_int(s, 2);
		r = 0;
		break;
	case SQLITE_DONE:
		r = CK_E_NOTFOUND;
		break;
	default:
		r = db_err(st, "certificate status");
	}
	stmt_done(st, s);
	return r;
}

int
store_cert_changed(struct store *st, int64_t after_seq,
    int (*cb)(const char *serial, enum store_cert_status status, void *arg),
    void *arg, int64_t *last_seq)
{
	sqlite3_stmt *s = NULL;
	int r, rc, v;

	if ((r = prepare(st, "SELECT serial, status, change_seq FROM certs "
	    "WHERE change_seq > ? ORDER BY change_seq", &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, after_seq);
	r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = store_cert_status_parse(
		    (const char *)sqlite3_column_text(s, 1));
		if (last_seq != NULL)
			*last_seq = sqlite3_column_int64(s, 2);
		if ((r = cb((const char *)sqlite3_column_text(s, 0),
		    v < 0 ? STORE_CERT_FAILED : (enum store_cert_status)v,
		    arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(st, "listing changes");
	stmt_done(st, s);
	return r;
}

int
store_token_seq(struct store *st, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, "SELECT coalesce(max(change_seq), 0) FROM "
	    "api_tokens", &s)) != 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW)
		r = db_err(st, "token sequence");
	else
		*out = sqlite3_column_int64(s, 0);
	stmt_done(st, s);
	return r;
}

int
store_schema_version(void)
{
	return NMIGRATIONS;
}

sqlite3 *
store_sqlite_db(struct store *st)
{
	return st->db;
}

int
store_stmt_prepare(struct store *st, const char *sql, sqlite3_stmt **out)
{
	return prepare(st, sql, out);
}

void
store_stmt_done(struct store *st, sqlite3_stmt *s)
{
	stmt_done(st, s);
}

int
store_db_err(struct store *st, const char *what)
{
	return db_err(st, what);
}

/* Bind a fixed-size text field, never reading past its array. */
static void
bind_fixed(sqlite3_stmt *s, int i, const char *v, size_t size)
{
	sqlite3_bind_text(s, i, v, (int)strnlen(v, size), SQLITE_STATIC);
}

/* Copy text column I into a fixed-size field; refuses what does not fit. */
static int
col_fixed(sqlite3_stmt *s, int i, char *dst, size_t size, const char *what)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);

	if (n >= size)
		return ck_err_set(CK_E_STORE, "backup catalogue: %s is %zu "
		    "bytes, longer than %zu", what, n, size - 1);
	memcpy(dst, t ? (const char *)t : "", n);
	dst[n] = '\0';
	return 0;
}

#define BACKUP_COLS "id, kind, chain, parent, seq_from, seq_to, " \
	"created_at, manifest_sha256, archive_sha256, size, copies, " \
	"verified_at, verify_result, drilled_at, drill_result, change_seq"

/* Fill B from a BACKUP_COLS row; strings point into the statement's row
 * (valid until the next step) and are duplicated by the caller if kept. */
static int
backup_from_row(sqlite3_stmt *s, struct store_backup *b)
{
	int r;

	memset(b, 0, sizeof(*b));
	if ((r = col_fixed(s, 0, b->id, sizeof(b->id), "id")) != 0 ||
	    (r = col_fixed(s, 1, b->kind, sizeof(b->kind), "kind")) != 0 ||
	    (r = col_fixed(s, 2, b->chain, sizeof(b->chain), "chain")) != 0 ||
	    (r = col_fixed(s, 3, b->parent, sizeof(b->parent),
	    "parent")) != 0 ||
	    (r = col_fixed(s, 7, b->manifest_sha256,
	    sizeof(b->manifest_sha256), "manifest_sha256")) != 0 ||
	    (r = col_fixed(s, 8, b->archive_sha256,
	    sizeof(b->archive_sha256), "archive_sha256")) != 0)
		return r;
	b->seq_from = sqlite3_column_int64(s, 4);
	b->seq_to = sqlite3_column_int64(s, 5);
	b->created_at = sqlite3_column_int64(s, 6);
	b->size = sqlite3_column_int64(s, 9);
	b->copies = (char *)sqlite3_column_text(s, 10);
	b->verified_at = sqlite3_column_int64(s, 11);
	b->verify_result = (char *)sqlite3_column_text(s, 12);
	b->drilled_at = sqlite3_column_int64(s, 13);
	b->drill_result = (char *)sqlite3_column_text(s, 14);
	b->change_seq = sqlite3_column_int64(s, 15);
	if (b->copies == NULL)
		b->copies = (char *)"[]";
	return 0;
}

int
store_backup_put(struct store *st, const struct store_backup *b)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if (strcmp(b->kind, "full") != 0 && strcmp(b->kind, "incremental") != 0)
		return ck_err_set(CK_E_INVAL, "backup %.64s: kind '%.15s' is "
		    "neither full nor incremental", b->id, b->kind);
	if ((r = mutation_begin(st, "INSERT OR REPLACE INTO backups ("
	    BACKUP_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?)", &s, &seq)) != 0)
		return r;
	bind_fixed(s, 1, b->id, sizeof(b->id));
	bind_fixed(s, 2, b->kind, sizeof(b->kind));
	bind_fixed(s, 3, b->chain, sizeof(b->chain));
	bind_fixed(s, 4, b->parent, sizeof(b->parent));
	sqlite3_bind_int64(s, 5, b->seq_from);
	sqlite3_bind_int64(s, 6, b->seq_to);
	sqlite3_bind_int64(s, 7, b->created_at);
	bind_fixed(s, 8, b->manifest_sha256, sizeof(b->manifest_sha256));
	bind_fixed(s, 9, b->archive_sha256, sizeof(b->archive_sha256));
	sqlite3_bind_int64(s, 10, b->size);
	sqlite3_bind_text(s, 11, b->copies ? b->copies : "[]", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 12, b->verified_at);
	if (b->verify_result != NULL)
		sqlite3_bind_text(s, 13, b->verify_result, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 14, b->drilled_at);
	if (b->drill_result != NULL)
		sqlite3_bind_text(s, 15, b->drill_result, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 16, seq);
	return store_tx_end(st, step_done(st, s, "recording backup"));
}

/* strdup that keeps NULL. */
static int
dup_opt(char **p)
{
	if (*p != NULL && (*p = strdup(*p)) == NULL)
		return CK_E_NOMEM;
	return 0;
}

int
store_backup_get(struct store *st, const char *id, struct store_backup *out)
{
	sqlite3_stmt *s = NULL;
	struct store_backup b;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = prepare(st, "SELECT " BACKUP_COLS " FROM backups WHERE "
	    "id = ?", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		if ((r = backup_from_row(s, &b)) != 0)
			break;
		/* Each pointer is replaced by its copy or by NULL. */
		r = dup_opt(&b.copies);
		if (dup_opt(&b.verify_result) != 0)
			r = CK_E_NOMEM;
		if (dup_opt(&b.drill_result) != 0)
			r = CK_E_NOMEM;
		*out = b;
		if (r != 0)
			store_backup_clear(out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no backup set %s in the "
		    "catalogue", id);
		break;
	default:
		r = db_err(st, "reading the backup catalogue");
	}
	stmt_done(st, s);
	return r;
}

int
store_backup_list(struct store *st,
    int (*cb)(const struct store_backup *b, void *arg), void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_backup b;
	int r, rc;

	if ((r = prepare(st, "SELECT " BACKUP_COLS " FROM backups ORDER BY "
	    "created_at, seq_to, id", &s)) != 0)
		return r;
	r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = backup_from_row(s, &b)) != 0 || (r = cb(&b, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(st, "listing the backup catalogue");
	stmt_done(st, s);
	return r;
}

void
store_backup_clear(struct store_backup *b)
{
	if (b == NULL)
		return;
	free(b->copies);
	free(b->verify_result);
	free(b->drill_result);
	memset(b, 0, sizeof(*b));
}

int
store_custody_last(struct store *st, int64_t *id, unsigned char hash[32])
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = prepare(st, "SELECT id, hash FROM custody ORDER BY id DESC "
	    "LIMIT 1", &s)) != 0)
		return r;
	*id = 0;
	memset(hash, 0, 32);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		*id = sqlite3_column_int64(s, 0);
		if (sqlite3_column_bytes(s, 1) == 32)
			memcpy(hash, sqlite3_column_blob(s, 1), 32);
		r = 0;
		break;
	case SQLITE_DONE:
		r = 0;
		break;
	default:
		r = db_err(st, "custody ledger");
	}
	stmt_done(st, s);
	return r;
}

int
store_custody_insert(struct store *st, struct store_custody *e)
{
	sqlite3_stmt *s = NULL;
	unsigned char last_hash[32];
	int64_t last_id, seq;
	int r;

	if ((r = store_tx_begin(st)) != 0)
		return r;
	/* The caller hashed E onto the last entry it saw; refuse to fork the
	 * chain if another writer appended in between. */
	if ((r = store_custody_last(st, &last_id, last_hash)) != 0)
		goto out;
	if (memcmp(last_hash, e->prev_hash, 32) != 0) {
		r = ck_err_set(CK_E_STATE, "custody ledger: the entry's "
		    "previous hash does not match entry %lld, the last one",
		    (long long)last_id);
		goto out;
	}
	if ((r = mutation_begin(st, "INSERT INTO custody (id, time, operator, "
	    "event, artefact, kind, place, detail, prev_hash, hash, "
	    "change_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    &s, &seq)) != 0)
		goto out;
	sqlite3_bind_int64(s, 1, last_id + 1);
	sqlite3_bind_int64(s, 2, e->time);
	sqlite3_bind_text(s, 3, e->operator_name ? e->operator_name : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 4, e->event ? e->event : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, e->artefact ? e->artefact : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 6, e->kind ? e->kind : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, e->place ? e->place : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, e->detail ? e->detail : "", -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 9, e->prev_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(s, 10, e->hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 11, seq);
	if ((r = store_tx_end(st, step_done(st, s, "appending to the custody "
	    "ledger"))) == 0) {
		e->id = last_id + 1;
		e->change_seq = seq;
	}
out:
	return store_tx_end(st, r);
}

int
store_custody_iter(struct store *st, const char *artefact,
    int (*cb)(const struct store_custody *e, void *arg), void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_custody e;
	int r, rc;

	if ((r = prepare(st, "SELECT id, time, operator, event, artefact, "
	    "kind, place, detail, prev_hash, hash, change_seq FROM custody "
	    "WHERE ?1 IS NULL OR artefact = ?1 ORDER BY id", &s)) != 0)
		return r;
	if (artefact != NULL)
		sqlite3_bind_text(s, 1, artefact, -1, SQLITE_STATIC);
	r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		e.id = sqlite3_column_int64(s, 0);
		e.time = sqlite3_column_int64(s, 1);
		e.operator_name = (char *)sqlite3_column_text(s, 2);
		e.event = (char *)sqlite3_column_text(s, 3);
		e.artefact = (char *)sqlite3_column_text(s, 4);
		e.kind = (char *)sqlite3_column_text(s, 5);
		e.place = (char *)sqlite3_column_text(s, 6);
		e.detail = (char *)sqlite3_column_text(s, 7);
		if (sqlite3_column_bytes(s, 8) == 32)
			memcpy(e.prev_hash, sqlite3_column_blob(s, 8), 32);
		if (sqlite3_column_bytes(s, 9) == 32)
			memcpy(e.hash, sqlite3_column_blob(s, 9), 32);
		e.change_seq = sqlite3_column_int64(s, 10);
		if (e.operator_name == NULL)
			e.operator_name = (char *)"";
		if (e.event == NULL)
			e.event = (char *)"";
		if (e.artefact == NULL)
			e.artefact = (char *)"";
		if (e.kind == NULL)
			e.kind = (char *)"";
		if (e.place == NULL)
			e.place = (char *)"";
		if (e.detail == NULL)
			e.detail = (char *)"";
		if ((r = cb(&e, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(st, "reading the custody ledger");
	stmt_done(st, s);
	return r;
}
