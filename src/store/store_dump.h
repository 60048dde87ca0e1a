/*
 * store_dump.h - the store's logical contents, backend-neutral, for backups.
 *
 * A snapshot is a read transaction on a connection of its own: it sees the
 * store as of its opening while certkeepd keeps committing (SQLite WAL), so
 * a hot backup never blocks issuance.
 *
 * A dump is one JSON object per row and per line ("{...}\n"), columns by
 * name: integers as JSON integers, text as strings, BLOBs as base64
 * strings, NULL as null; a text value that is not valid UTF-8 (a config
 * file's comment in Latin-1) is written as {"base64": "..."}. Rows of the
 * certs table come in storage order, those of the others in primary-key
 * order; loading does not depend on it. The format is the same whatever
 * the backend (docs/backup.md).
 */
#ifndef CK_STORE_STORE_DUMP_H
#define CK_STORE_STORE_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store_snapshot;

/* The tables a backup holds, in dump and load order; NULL-terminated. */
extern const char *const store_dump_tables[];

/* Open the store file at PATH read-only and begin a snapshot. */
int store_snapshot_open(const char *path, struct store_snapshot **out);
void store_snapshot_close(struct store_snapshot *s);

/* The change sequence the snapshot sees (everything up to it is in it). */
int64_t store_snapshot_seq(const struct store_snapshot *s);

/* Emit the rows of TABLE whose change_seq is greater than AFTER_SEQ (0 for
 * all rows) as JSON lines. EMIT gets whole lines, in chunks of at most
 * 64 KiB (one longer line alone); a non-zero return from EMIT stops the
 * dump and is returned. *NROWS (if not NULL) gets the number of rows. */
int store_dump_table(struct store_snapshot *s, const char *table,
    int64_t after_seq, int (*emit)(void *arg, const void *buf, size_t len),
    void *arg, uint64_t *nrows);

/* The whole store as of the snapshot as one SQLite database file, the
 * file SQLite's own backup would write (every table and index), streamed:
 * bytes from the second page on are handed to EMIT in order, in chunks of
 * at most 1 MiB, each a whole number of pages; the first page, which
 * SQLite writes last, is handed to HEAD once, at the end. Memory stays
 * that of a small page cache whatever the size of the store. *SIZE (if
 * not NULL) gets the file's size. A non-zero return from EMIT or HEAD
 * stops it and is returned. SQLite-specific: another backend would write
 * its full sets as dumps (store_dump_table).
 * store_snapshot_pages() gives the page size and the number of pages the
 * file will have. */
int store_snapshot_pages(struct store_snapshot *s, size_t *pagesize,
    uint64_t *npages);
int store_snapshot_image(struct store_snapshot *s,
    int (*emit)(void *arg, const void *buf, size_t len),
    int (*head)(void *arg, const void *buf, size_t len), void *arg,
    uint64_t *size);

/* SQLite's check of every page and record of the store file at PATH made
 * from an image, on a read-only connection, before anything writes to it
 * (CK_E_TAMPER with SQLite's first complaint). */
int store_image_check(const char *path);

/* The newest of WHAT at the snapshot: "crl" (its DER) or "config" (the
 * configuration text in force). *OUT (NUL-terminated, caller frees);
 * CK_E_NOTFOUND if there is none. */
int store_snapshot_latest(struct store_snapshot *s, const char *what,
    unsigned char **out, size_t *len);

/* What the store holds at the snapshot, for the manifest and for checking a
 * restore. */
struct store_dump_counts {
	uint64_t certs, issued, revoked, pending, failed;
	uint64_t audit;			/* audit entries */
	int64_t audit_last_id;
	unsigned char audit_head[32];	/* hash of the last audit entry */
	uint64_t crl_number;		/* last CRL number handed out */
	uint64_t tokens;
};
int store_snapshot_counts(struct store_snapshot *s,
    struct store_dump_counts *c);

/* The same counts on an open store (after a restore). */
int store_counts(struct store *st, struct store_dump_counts *c);

/* Load one line (without its '\n') of a dump of TABLE into ST, which the
 * caller holds in a transaction: insert, or replace the row with the same
 * primary key (a later set's row supersedes an earlier one). Refused with a
 * precise message: an unknown table or column, a missing column, a wrong
 * type, bad base64, and a row whose change_seq is not in
 * (AFTER_SEQ, UPTO_SEQ]. */
int store_load_line(struct store *st, const char *table, const char *line,
    size_t len, int64_t after_seq, int64_t upto_seq);

/* After the last line of a set: raise the change sequence to at least
 * UPTO_SEQ, so the restored CA never hands out a sequence again. */
int store_load_finish(struct store *st, int64_t upto_seq);

#endif
