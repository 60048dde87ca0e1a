/*
 * store_int.h - what the SQLite backend shares with the other files of
 * src/store/ (store_dump.c,
 * store_image.c). Not for use outside src/store/.
 */
#ifndef CK_STORE_STORE_INT_H
#define CK_STORE_STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

/* The schema version (PRAGMA user_version) this code creates and reads. */
int store_schema_version(void);

/* The store's connection; owned by the store. */
sqlite3 *store_sqlite_db(struct store *st);

/*
 * A prepared statement for SQL, from the store's cache when SQL is a
 * string with static storage (the cache is keyed by its address). Hand it
 * back with store_stmt_done(), which resets and unbinds it.
 */
int store_stmt_prepare(struct store *st, const char *sql, sqlite3_stmt **out);
void store_stmt_done(struct store *st, sqlite3_stmt *s);

/* The next change-sequence value; inside a transaction. */
int store_next_seq(struct store *st, int64_t *out);

/* A transaction level and the next change-sequence value, for a
 * mutation; on failure the level is already ended. */
int store_tx_begin_seq(struct store *st, int64_t *seq);

/* End a mutation's own transaction: commit if R is 0, else roll back;
 * returns R or the commit's error. */
int store_tx_end(struct store *st, int r);

/* CK_E_BUSY, CK_E_IO (disk full) or CK_E_STORE with the connection's last
 * error, prefixed by WHAT. */
int store_db_err(struct store *st, const char *what);

/* The connection of a snapshot (store_dump.h), in its read transaction. */
struct store_snapshot;
sqlite3 *store_snapshot_db(struct store_snapshot *s);

#endif
