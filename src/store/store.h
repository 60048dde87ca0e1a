/*
 * store.h - the CA's records, behind one interface.
 *
 * Nothing outside src/store/ speaks SQL. The embedded backend is SQLite in
 * WAL mode with synchronous=FULL (a commit is durable when it returns); a
 * PostgreSQL backend will implement the same functions.
 *
 * Change sequence: every mutation stamps the rows it touches with the next
 * value of one monotonic counter, inside the same transaction. Incremental
 * backups and cache refresh read "everything after sequence N".
 *
 * Transactions: store_tx_begin() nests. The outermost level is a
 * BEGIN IMMEDIATE ... COMMIT; inner levels are savepoints, so an inner
 * rollback undoes only what was done since its begin and the outer
 * transaction goes on (a batch of independent operations in one durable
 * commit). Mutating functions called outside a transaction run in one of
 * their own.
 *
 * Serials are upper-case hexadecimal without leading zeros (BN_bn2hex).
 */
#ifndef CK_STORE_STORE_H
#define CK_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum store_cert_status {
	STORE_CERT_PENDING,	/* logged before signing, not yet signed */
	STORE_CERT_ISSUED,
	STORE_CERT_REVOKED,
	STORE_CERT_FAILED,	/* logged, then signing failed: never issued */
	STORE_CERT_STATUS__MAX
};

/* Name of a status ("pending", "issued", ...); store_cert_status_parse()
 * returns the status or -1. */
const char *store_cert_status_name(enum store_cert_status s);
int store_cert_status_parse(const char *s);

struct store_cert {
	char serial[80];
	enum store_cert_status status;
	char *subject;		/* RFC 2253 text */
	char *names;		/* "DNS:a, IP:b, email:c" */
	char *profile;
	char *requester;
	char tbs_sha256[65];	/* hex SHA-256 of the TBSCertificate DER */
	int64_t not_before;
	int64_t not_after;
	int64_t created_at;
	int is_ca;
	unsigned char *der;	/* NULL while pending */
	size_t der_len;
	int64_t revoked_at;	/* 0 unless revoked */
	int reason;		/* RFC 5280 CRLReason, -1 unless revoked */
	int64_t change_seq;
};

/* Filters for store_cert_list(); zero/NULL fields match everything. */
struct store_cert_filter {
	int status;		/* -1 any, else enum store_cert_status */
	int expired;		/* 1: only not_after < now; 0: no filter */
	int64_t now;
	int64_t expiring_before; /* 0: none, else not_after < this */
	const char *profile;
	const char *name;	/* substring of subject or names */
	int64_t after_seq;	/* only rows with change_seq > this */
	size_t limit;		/* 0: no limit */
};

struct store_revoked {
	char serial[80];
	int64_t revoked_at;
	int reason;
};

struct store_audit_entry {
	int64_t id;		/* 1, 2, 3, ... without gaps */
	int64_t time;
	char *user;
	char *action;
	char *object;
	char *result;
	char *detail;
	unsigned char prev_hash[32];
	unsigned char hash[32];
	int64_t change_seq;
};

/*
 * Open (and with `create`, create and migrate) the store at `path`.
 * Creating refuses an existing file (CK_E_EXISTS). The file is 0600.
 */
int store_open(const char *path, int create, struct store **out);

/* Close; accepts NULL. An open transaction is rolled back. */
void store_close(struct store *st);

int store_tx_begin(struct store *st);

/* Current nesting depth (0: no transaction open). */
int store_tx_depth(const struct store *st);
int store_tx_commit(struct store *st);
void store_tx_rollback(struct store *st);

/* The last change-sequence value handed out (0 for a new store). */
int store_change_seq(struct store *st, int64_t *out);

/* Small key/value settings (CA state, ...). CK_E_NOTFOUND if unset.
 * *out is a new string the caller frees. */
int store_meta_get(struct store *st, const char *key, char **out);
int store_meta_set(struct store *st, const char *key, const char *value);

/*
 * Log-before-sign: record a certificate about to be signed, status
 * PENDING, with its TBS digest. CK_E_EXISTS if the serial was ever used.
 */
int store_cert_insert_pending(struct store *st, const struct store_cert *c);

/* PENDING -> ISSUED with the signed DER (its TBS digest must match what
 * was logged: checked by the caller). CK_E_STATE if not pending. */
int store_cert_mark_issued(struct store *st, const char *serial,
    const unsigned char *der, size_t der_len);

/* PENDING -> FAILED. */
int store_cert_mark_failed(struct store *st, const char *serial);

/*
 * The same for n certificates at once, in one savepoint with consecutive
 * change sequence values: all or nothing. insert_pending_many: CK_E_EXISTS
 * if any serial was ever used. mark_issued_many takes each c[i]->serial,
 * der and der_len; CK_E_STATE if any is not pending.
 */
int store_cert_insert_pending_many(struct store *st,
    const struct store_cert *const *c, size_t n);
int store_cert_mark_issued_many(struct store *st,
    const struct store_cert *const *c, size_t n);

/*
 * ISSUED -> REVOKED with time and reason; CK_E_NOTFOUND, or CK_E_STATE
 * (with a message) if it is not an issued, unrevoked certificate.
 */
int store_cert_revoke(struct store *st, const char *serial, int64_t when,
    int reason);

/* Fetch one certificate; *out freed with store_cert_free(). */
int store_cert_get(struct store *st, const char *serial,
    struct store_cert **out);

/* Call `cb` for each matching certificate, newest first; a non-zero return
 * from cb stops the walk and is returned. */
int store_cert_list(struct store *st, const struct store_cert_filter *f,
    int (*cb)(const struct store_cert *c, void *arg), void *arg);

void store_cert_free(struct store_cert *c);

/* Status of one serial without loading the certificate: CK_E_NOTFOUND if
 * unknown; revoked_at/reason only meaningful when revoked. */
int store_cert_status(struct store *st, const char *serial,
    enum store_cert_status *status, int64_t *revoked_at, int *reason);

/* Serials whose rows changed after `after_seq`, in sequence order, with
 * their status; *last_seq gets the highest sequence seen. */
int store_cert_changed(struct store *st, int64_t after_seq,
    int (*cb)(const char *serial, enum store_cert_status status, void *arg),
    void *arg, int64_t *last_seq);

/* All revoked certificates whose not_after is later than `not_after_min`
 * (expired ones may leave the CRL). *out is a new array. */
int store_revoked_list(struct store *st, int64_t not_after_min,
    struct store_revoked **out, size_t *n);

/* Take the next CRL number (1, 2, ...); stamps the change sequence. */
int store_crl_next_number(struct store *st, uint64_t *out);

/* Record a signed CRL. */
/* Make sure the next CRL number is above NUMBER (a CRL published after the
 * backup a CA was restored from). */
int store_crl_number_floor(struct store *st, uint64_t number);

int store_crl_insert(struct store *st, uint64_t number, int64_t this_update,
    int64_t next_update, const unsigned char *der, size_t der_len);

/* Last audit entry's id and hash (0 and zeros on an empty log). */
int store_audit_last(struct store *st, int64_t *id, unsigned char hash[32]);

/* Append an entry (id must be last id + 1); stamps change_seq into e. */
int store_audit_insert(struct store *st, struct store_audit_entry *e);

/* Append n entries in order (ids consecutive from last id + 1), all or
 * nothing, with one statement; stamps each one's change_seq. */
int store_audit_insert_many(struct store *st, struct store_audit_entry *e,
    size_t n);

/* Walk entries with id >= from_id in id order (rows as stored). */
int store_audit_iter(struct store *st, int64_t from_id,
    int (*cb)(const struct store_audit_entry *e, void *arg), void *arg);

/* An API token: only the SHA-256 of its secret is stored. */
struct store_token {
	char id[40];
	char *name;
	unsigned char secret_sha256[32];
	char *profiles;		/* comma-separated profile names */
	char *dns_suffixes;	/* narrower name rules; "" = the profile's */
	char *ip_ranges;
	char *email_domains;
	int can_revoke;
	int64_t created_at;
	char *created_by;
	int64_t revoked_at;	/* 0 while valid */
	int64_t change_seq;
};

/* Record a new token; CK_E_EXISTS if the id or name is taken. */
int store_token_insert(struct store *st, const struct store_token *t);

/* Revoke a token by id or name; CK_E_NOTFOUND, CK_E_STATE if revoked. */
int store_token_revoke(struct store *st, const char *id_or_name,
    int64_t when);

/* The highest change sequence of any token row (0 if none): tells
 * whether the tokens changed. */
int store_token_seq(struct store *st, int64_t *out);

/* Walk all tokens (revoked ones too), oldest first. */
int store_token_list(struct store *st,
    int (*cb)(const struct store_token *t, void *arg), void *arg);

/* Hex SHA-256 of the newest recorded configuration, or CK_E_NOTFOUND. */
int store_config_latest(struct store *st, char hash_hex[65]);

/* Record a configuration version. */
int store_config_insert(struct store *st, int64_t when, const char *user,
    const char *hash_hex, const char *content);

/* The backup catalogue (docs/backup.md): one row per set made or checked
 * here. COPIES is a JSON array of {"path","sha256","verified_at","ok"}. */
struct store_backup {
	char id[65];		/* hex, from the manifest */
	char kind[16];		/* "full" or "incremental" */
	char chain[33];
	char parent[65];	/* "" for a full */
	int64_t seq_from, seq_to;
	int64_t created_at;
	char manifest_sha256[65];
	char archive_sha256[65];
	int64_t size;
	char *copies;		/* JSON */
	int64_t verified_at;	/* 0: never */
	char *verify_result;	/* "ok" or the fault; NULL: never */
	int64_t drilled_at;
	char *drill_result;
	int64_t change_seq;
};

/* Insert or replace the row with this id. */
int store_backup_put(struct store *st, const struct store_backup *b);
/* CK_E_NOTFOUND if absent. Free with store_backup_clear(). */
int store_backup_get(struct store *st, const char *id, struct store_backup *out);
/* Walk every row, oldest (created_at, then seq_to) first. */
int store_backup_list(struct store *st,
    int (*cb)(const struct store_backup *b, void *arg), void *arg);
void store_backup_clear(struct store_backup *b);

/* The custody ledger: hash-chained like the audit log. HASH is SHA-256 over
 * prev_hash and the entry's fields (computed by src/backup/custody.c). */
struct store_custody {
	int64_t id;		/* assigned on insert */
	int64_t time;
	char *operator_name;
	char *event;		/* created, copied, moved, verified, stored,
				   retrieved, restored, destroyed */
	char *artefact;		/* artefact id (its SHA-256, hex) */
	char *kind;		/* data-backup, key-backup, key-share */
	char *place;		/* place or medium */
	char *detail;
	unsigned char prev_hash[32];
	unsigned char hash[32];
	int64_t change_seq;
};
int store_custody_last(struct store *st, int64_t *id, unsigned char hash[32]);
int store_custody_insert(struct store *st, struct store_custody *e);
/* Walk entries in id order; ARTEFACT NULL for all. */
int store_custody_iter(struct store *st, const char *artefact,
    int (*cb)(const struct store_custody *e, void *arg), void *arg);

#endif
