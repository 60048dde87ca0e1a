/*
 * store_acme_eab.c - ACME external account binding keys in the SQLite
 * store (the last block of store_acme.h; the table is migration 5 of
 * store_sqlite.c, its backup description is in store_dump.c).
 *
 * Same habits as store_acme.c: statements are string literals for the
 * store's statement cache, every mutation takes the next change sequence
 * value inside its own transaction level, and a refused mutation rolls
 * that level back, so it changes nothing, not even the sequence.
 */
#include "store/store_acme.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store_int.h"

#define EAB_COLS "kid, sealed, note, created_at, revoked_at, account_id, " \
	"bound_at, change_seq"

/* A non-empty string that fits a field of SIZE bytes. */
static int
fits(const char *s, size_t size)
{
	return s != NULL && *s != '\0' && strnlen(s, size) < size;
}

int
store_acme_eab_create(struct store *st, const struct store_acme_eab *e)
{
	sqlite3_stmt *s = NULL;
	const char *note = e->note != NULL ? e->note : "";
	int64_t seq;
	int r, rc;

	if (!fits(e->kid, sizeof(e->kid)))
		return ck_err_set(CK_E_INVAL, "ACME EAB: a key id of 1 to %d "
		    "characters is required", STORE_ACME_ID_SIZE - 1);
	if (e->sealed == NULL || e->sealed_len == 0 ||
	    e->sealed_len > STORE_ACME_EAB_SEALED_MAX)
		return ck_err_set(CK_E_INVAL, "ACME EAB %s: the sealed key "
		    "must have 1 to %d bytes", e->kid,
		    STORE_ACME_EAB_SEALED_MAX);
	if (strlen(note) > STORE_ACME_EAB_NOTE_MAX)
		return ck_err_set(CK_E_INVAL, "ACME EAB %s: the note is longer "
		    "than %d bytes", e->kid, STORE_ACME_EAB_NOTE_MAX);
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "INSERT INTO acme_eab (" EAB_COLS
	    ") VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?)", &s)) != 0)
		return store_tx_end(st, r);
	sqlite3_bind_text(s, 1, e->kid, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, e->sealed, (int)e->sealed_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, note, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, e->created_at);
	sqlite3_bind_int64(s, 5, seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		r = ck_err_set(CK_E_EXISTS, "ACME EAB key id %s already exists",
		    e->kid);
	else if (rc != SQLITE_DONE)
		r = store_db_err(st, "recording ACME EAB key");
	store_stmt_done(st, s);
	return store_tx_end(st, r);
}

static int
eab_from_row(sqlite3_stmt *s, struct store_acme_eab *e)
{
	const unsigned char *t;
	const void *b;
	size_t n;

	memset(e, 0, sizeof(*e));
	t = sqlite3_column_text(s, 0);
	n = (size_t)sqlite3_column_bytes(s, 0);
	if (t == NULL || n == 0 || n >= sizeof(e->kid))
		return ck_err_set(CK_E_STORE, "ACME EAB: a stored key id is "
		    "empty or longer than %d", STORE_ACME_ID_SIZE - 1);
	memcpy(e->kid, t, n);
	b = sqlite3_column_blob(s, 1);
	n = (size_t)sqlite3_column_bytes(s, 1);
	if (b == NULL || n == 0 || n > STORE_ACME_EAB_SEALED_MAX)
		return ck_err_set(CK_E_STORE, "ACME EAB %s: the stored sealed "
		    "key has %zu bytes", e->kid, n);
	if ((e->sealed = malloc(n)) == NULL)
		return CK_E_NOMEM;
	memcpy(e->sealed, b, n);
	e->sealed_len = n;
	t = sqlite3_column_text(s, 2);
	if ((e->note = strdup(t != NULL ? (const char *)t : "")) == NULL) {
		store_acme_eab_clear(e);
		return CK_E_NOMEM;
	}
	e->created_at = sqlite3_column_int64(s, 3);
	e->revoked_at = sqlite3_column_int64(s, 4);	/* NULL reads 0 */
	t = sqlite3_column_text(s, 5);
	n = (size_t)sqlite3_column_bytes(s, 5);
	if (n >= sizeof(e->account_id)) {
		store_acme_eab_clear(e);
		return ck_err_set(CK_E_STORE, "ACME EAB: the account bound to "
		    "a key id has an id longer than %d",
		    STORE_ACME_ID_SIZE - 1);
	}
	if (t != NULL)
		memcpy(e->account_id, t, n);
	e->bound_at = sqlite3_column_int64(s, 6);
	e->change_seq = sqlite3_column_int64(s, 7);
	return 0;
}

int
store_acme_eab_get(struct store *st, const char *kid,
    struct store_acme_eab *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, "SELECT " EAB_COLS " FROM acme_eab "
	    "WHERE kid = ?1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, kid, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		r = eab_from_row(s, out);
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no ACME EAB key id %.64s", kid);
		break;
	default:
		r = store_db_err(st, "reading ACME EAB key");
	}
	store_stmt_done(st, s);
	return r;
}

int
store_acme_eab_list(struct store *st,
    int (*cb)(const struct store_acme_eab *e, void *arg), void *arg)
{
	struct store_acme_eab e;
	sqlite3_stmt *s = NULL;
	int r, rc;

	if ((r = store_stmt_prepare(st, "SELECT " EAB_COLS " FROM acme_eab "
	    "ORDER BY created_at, kid", &s)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = eab_from_row(s, &e)) != 0)
			break;
		r = cb(&e, arg);
		store_acme_eab_clear(&e);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "listing ACME EAB keys");
	store_stmt_done(st, s);
	return r;
}

/*
 * After a guarded UPDATE of KID touched no row: CK_E_NOTFOUND, or
 * CK_E_STATE saying whether the kid is revoked or bound (and to whom).
 */
static int
eab_refusal(struct store *st, const char *kid, const char *doing)
{
	struct store_acme_eab e;
	int r;

	if ((r = store_acme_eab_get(st, kid, &e)) != 0)
		return r;
	if (e.revoked_at != 0)
		r = ck_err_set(CK_E_STATE, "cannot %s ACME EAB key id %s: it "
		    "is revoked", doing, kid);
	else if (e.account_id[0] != '\0')
		r = ck_err_set(CK_E_STATE, "cannot %s ACME EAB key id %s: it "
		    "is bound to account %s already", doing, kid,
		    e.account_id);
	else	/* Defensive: the row changed between the two statements. */
		r = ck_err_set(CK_E_STATE, "cannot %s ACME EAB key id %s",
		    doing, kid);
	store_acme_eab_clear(&e);
	return r;
}

int
store_acme_eab_revoke(struct store *st, const char *kid, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if (kid == NULL || now <= 0)
		return ck_err_set(CK_E_INVAL, "ACME EAB revoke: a key id and a "
		    "time are required");
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "UPDATE acme_eab SET revoked_at = ?1,"
	    " change_seq = ?2 WHERE kid = ?3 AND revoked_at IS NULL",
	    &s)) != 0)
		return store_tx_end(st, r);
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_text(s, 3, kid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "revoking ACME EAB key");
	else if (sqlite3_changes(store_sqlite_db(st)) != 1)
		r = eab_refusal(st, kid, "revoke");
	store_stmt_done(st, s);
	return store_tx_end(st, r);
}

int
store_acme_eab_bind(struct store *st, const char *kid,
    const char *account_id, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if (kid == NULL || !fits(account_id, STORE_ACME_ID_SIZE) || now <= 0)
		return ck_err_set(CK_E_INVAL, "ACME EAB bind: a key id, an "
		    "account id and a time are required");
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "UPDATE acme_eab SET account_id = ?1,"
	    " bound_at = ?2, change_seq = ?3 WHERE kid = ?4 AND revoked_at IS "
	    "NULL AND account_id IS NULL", &s)) != 0)
		return store_tx_end(st, r);
	sqlite3_bind_text(s, 1, account_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, seq);
	sqlite3_bind_text(s, 4, kid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "binding ACME EAB key");
	else if (sqlite3_changes(store_sqlite_db(st)) != 1)
		r = eab_refusal(st, kid, "bind");
	store_stmt_done(st, s);
	return store_tx_end(st, r);
}

void
store_acme_eab_clear(struct store_acme_eab *e)
{
	if (e == NULL)
		return;
	free(e->sealed);
	free(e->note);
	memset(e, 0, sizeof(*e));
}
