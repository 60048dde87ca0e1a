/*
 * custody.h - the chain-of-custody ledger of backup artefacts.
 *
 * Every hand-over of an artefact (a data backup set, a key backup, a key
 * share) is one entry in the store's `custody` table: time, operator,
 * event, the artefact's SHA-256 (its id), its kind, the place or medium,
 * and a free detail. Entries are hash-chained like the audit log
 * (audit_chain_hash() with the tag "certkeep-custody-v1" over id, time,
 * operator, event, artefact, kind, place, detail, then the previous
 * entry's hash), and the head of the chain ("id:hash") is kept in the
 * store's meta `custody_head` in the same transaction, so that entries
 * deleted at the end are detected too. Each entry is also an audit-log
 * entry, written in the same transaction.
 *
 * An artefact's entries travel beside it as `<artefact file>.custody`: a
 * JSON document with the artefact's entries and their place in the chain,
 * wrapped in CMS SignedData (attached, DER, SHA-256, one signer: the CA
 * key, its certificate and chain included). It opens with standard tools:
 *   openssl cms -verify -binary -inform DER -CAfile chain.pem
 *       -in X.custody -out X.json
 * The document (every member required, no others):
 *   {"format": "certkeep-custody/1", "artefact": "<hex SHA-256>",
 *    "kind": "data-backup", "exported": "<UTC text>", "exported_unix": N,
 *    "entries": [{"id": N, "time": "<UTC text>", "time_unix": N,
 *      "operator": "...", "event": "...", "artefact": "...", "kind": "...",
 *      "place": "...", "detail": "...", "prev_hash": "<hex>",
 *      "hash": "<hex>"}, ...]}
 * with the entries in ledger order, each as stored (ids are ledger ids).
 * A record is only accepted in exactly the form certkeep writes it.
 *
 * Rules an artefact's entries follow (checked on record and on verify):
 * its kind never changes; "created" can only be its first entry; nothing
 * follows "destroyed".
 *
 * XXX: the chain is not keyed: someone who can write the store can
 * rewrite the whole ledger and its head consistently. The signed .custody
 * files are the anchor against that: checking one against the store
 * (ck_custody_check_file) finds any rewritten entry it holds.
 */
#ifndef CK_BACKUP_CUSTODY_H
#define CK_BACKUP_CUSTODY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "store/store.h"

struct ck_ca;

#define CK_CUSTODY_FORMAT "certkeep-custody/1"
#define CK_CUSTODY_SUFFIX ".custody"
/* Largest .custody file read, and longest field text accepted. */
#define CK_CUSTODY_FILE_MAX (4u * 1024 * 1024)
#define CK_CUSTODY_FIELD_MAX 1024
#define CK_CUSTODY_DETAIL_MAX 4096

enum ck_custody_event {
	CK_CUSTODY_CREATED,
	CK_CUSTODY_COPIED,
	CK_CUSTODY_MOVED,
	CK_CUSTODY_VERIFIED,
	CK_CUSTODY_STORED,
	CK_CUSTODY_RETRIEVED,
	CK_CUSTODY_RESTORED,
	CK_CUSTODY_DESTROYED,
	CK_CUSTODY_EVENT__MAX
};

enum ck_custody_kind {
	CK_CUSTODY_DATA_BACKUP,
	CK_CUSTODY_KEY_BACKUP,
	CK_CUSTODY_KEY_SHARE,
	CK_CUSTODY_KIND__MAX
};

/* Names ("created", ..., "data-backup", ...); "unknown" if out of range.
 * The _parse functions return the value or -1. */
const char *ck_custody_event_name(enum ck_custody_event e);
int ck_custody_event_parse(const char *s);
const char *ck_custody_kind_name(enum ck_custody_kind k);
int ck_custody_kind_parse(const char *s);

/* The kind a file name suggests by its extension (.ckb, .p8, .share), or
 * -1. */
int ck_custody_kind_guess(const char *path);

/*
 * Record one custody event of an artefact:
 *   EVENT     one of the event names ("created", "copied", ...)
 *   ARTEFACT  the artefact's SHA-256, 64 hex digits (either case; kept
 *             in lower case)
 *   KIND      "data-backup", "key-backup" or "key-share"; NULL: the kind
 *             the artefact already has in the ledger
 *   PLACE     where it is or what medium (required, e.g. "safe B, shelf
 *             2", "USB stick #4", "s3://bucket/path")
 *   DETAIL    free text, may be NULL
 *   OPERATOR  who handed it over; NULL: the operating-system user
 * Text must be UTF-8 without control characters, PLACE and OPERATOR at
 * most CK_CUSTODY_FIELD_MAX bytes, DETAIL CK_CUSTODY_DETAIL_MAX.
 * The entry and an audit entry ("custody") are written in one transaction
 * (nested in the caller's, if one is open). Returns 0; CK_E_INVAL for a
 * bad argument (nothing recorded); CK_E_STATE if the artefact's history
 * forbids the event (another kind, "created" again, anything after
 * "destroyed": recorded in the audit log as refused); or a store error.
 *
 * For the backup command, e.g. after writing a set:
 *   ck_custody_record(ca, "created", hex, "data-backup", dest, NULL, NULL);
 *   ck_custody_export(ca, hex, "<set path>.custody");
 */
int ck_custody_record(struct ck_ca *ca, const char *event,
    const char *artefact_sha256_hex, const char *kind, const char *place,
    const char *detail, const char *operator_name);

/* The entry's chained hash from its fields and prev_hash. */
void ck_custody_entry_hash(const struct store_custody *e,
    unsigned char out[32]);

/* What a check found. */
struct ck_custody_report {
	int64_t entries;	/* ledger entries (verify) or file entries
				   (check_file) checked */
	int64_t first_bad;	/* ledger id of the first bad entry, 0 if
				   none or if the fault has no entry */
	int64_t last_id;	/* check_file: id of the file's last entry */
	int64_t later;		/* check_file with a store: the artefact's
				   entries in the ledger after the file's
				   last one (a file older than the ledger:
				   not a fault) */
	char artefact[65];	/* check_file: the file's artefact */
	char kind[16];		/* check_file: its kind */
	char reason[256];	/* what is wrong */
};

/*
 * Walk the whole ledger: ids 1, 2, ... without gaps, each entry's link to
 * the previous one, its hash, the rules above, and the recorded head.
 * Returns 0 if intact, CK_E_TAMPER with REP naming the first altered,
 * deleted or reordered entry, or another code if it cannot be read.
 */
int ck_custody_verify(struct ck_ca *ca, struct ck_custody_report *rep);

/* The same on a store. */
int ck_custody_verify_store(struct store *st, struct ck_custody_report *rep);

/*
 * Write the ledger entries of ARTEFACT (hex SHA-256) to OUT_PATH (by
 * convention "<artefact file>.custody"), signed by the CA key: the CA
 * must be unlocked (ck_ca_unlock). The file is replaced atomically, mode
 * 0600, and the export is recorded in the audit log. CK_E_NOTFOUND if the
 * ledger has no entry for it; CK_E_STATE if the CA is locked or its key
 * cannot make CMS signatures (Ed25519 with OpenSSL 3.0).
 */
int ck_custody_export(struct ck_ca *ca, const char *artefact,
    const char *out_path);

/* 0 if ck_custody_export() can sign for this CA (unlocked, with a
 * certificate, a key type CMS can sign with), else CK_E_STATE saying why:
 * lets a caller refuse before it records anything. */
int ck_custody_export_check(struct ck_ca *ca);

/*
 * Check a .custody file: its CMS signature by a certificate of TRUSTED
 * (the CA certificate and chain; the signer must be one of them), the
 * document's form, each entry's hash, and that entries adjacent in the
 * chain link. With a store ST (may be NULL), also: the ledger verifies,
 * every entry of the file is in it unchanged, and the file's entries are
 * exactly the ledger's entries of that artefact up to the file's last
 * one (an entry missing from the file is a gap). Returns 0 (REP filled),
 * CK_E_BADSIG for a bad signature or signer, CK_E_PARSE for a malformed
 * file, CK_E_TAMPER for altered, missing or foreign entries (REP naming
 * the first), or another code.
 */
int ck_custody_check_file(const char *path, STACK_OF(X509) *trusted,
    struct store *st, struct ck_custody_report *rep);

/* The same on the bytes of a file. */
int ck_custody_check_buf(const unsigned char *buf, size_t len,
    STACK_OF(X509) *trusted, struct store *st, struct ck_custody_report *rep);

/*
 * Parse a custody document (the signed JSON content) strictly and check
 * its entries' hashes and links; no signature, no store. On success *OUT
 * (may be NULL) gets the entries, oldest first (free with
 * ck_custody_entries_free), and REP the artefact, kind, count and last id.
 * CK_E_PARSE for a malformed document, CK_E_TAMPER for a bad hash or link.
 */
int ck_custody_parse(const char *json, size_t len, struct store_custody **out,
    size_t *n, struct ck_custody_report *rep);
void ck_custody_entries_free(struct store_custody *v, size_t n);

/* The ledger's entries (ARTEFACT's, or all if NULL) as a JSON array of
 * objects with the members of a custody file's entries; *OUT is new text
 * (free()). */
int ck_custody_list_json(struct store *st, const char *artefact, char **out);

/* Hex SHA-256 of a whole file (an artefact's id). */
int ck_custody_file_sha256(const char *path, char hex[65]);

#endif
