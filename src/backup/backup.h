/*
 * backup.h - data backup sets: make, check, restore, drill (docs/backup.md).
 *
 * A set is made from one consistent snapshot of the store (hot: certkeepd
 * keeps committing meanwhile) or with the service stopped (cold); it is
 * written to the first destination, copied to the others, and every copy is
 * read back and compared before the set is recorded as good. Sets are
 * recorded in the store's catalogue, in the custody ledger and in the audit
 * log.
 */
#ifndef CK_BACKUP_BACKUP_H
#define CK_BACKUP_BACKUP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/x509.h>

#include "ca/ca.h"
#include "store/store_dump.h"

#define CK_BACKUP_MAX_DESTS 8

/* The default compression: zstd's fast level -2. On a store of DER
 * certificates it makes sets about a tenth larger than level 1 for about
 * two thirds of the compression time, which is most of a full backup's. */
#define CK_BACKUP_ZSTD_LEVEL (-2)

/* A full set's store, as a SQLite database file in parts
 * "parts/store/store.db.<offset of the part's first byte, 16 hex
 * digits>.zst" (the logical form has one parts/store/<table>.jsonl.zst per
 * table instead). */
#define CK_BACKUP_STORE_PREFIX "parts/store/store.db."
#define CK_BACKUP_MAX_SETS 1024

struct ck_retention {
	unsigned keep_last;	/* newest N sets (0: no rule) */
	unsigned daily;		/* newest set of each of the last N days */
	unsigned weekly;
	unsigned monthly;
};

#define CK_BACKUP_INCR_IF_POSSIBLE 2

struct ck_backup_opts {
	int incremental;		/* 1: incremental; 0: full;
					   CK_BACKUP_INCR_IF_POSSIBLE: an
					   incremental if the chain allows */
	const char *dests[CK_BACKUP_MAX_DESTS];
	size_t ndests;
	STACK_OF(X509) *recipients;
	int zlevel;
	int logical;			/* a full set's store as rows (JSON
					   lines, any backend) rather than
					   the store's file */
	uint64_t store_chunk;		/* the store file's pieces: at least
					   this many bytes (0: 128 MiB) */
	int progress;			/* report progress on stderr */
	const char *operator_name;	/* NULL: the login name */
	struct ck_retention retention;	/* all 0: keep everything */
	/* certkeepd: who asked ("alice/backup-operator"), named as is in
	 * the manifest, catalogue, custody ledger and audit log (NULL: the
	 * OS user, with OPERATOR_NAME as above). */
	const char *actor;
	/* certkeepd: every use of the CA's store connection (reads of the
	 * catalogue, the records, the custody files, retention) runs as
	 * WRITE(WRITE_ARG, FN, FNARG) on the committer, whose result is
	 * FN's; NULL: FN runs here on ca->st. The snapshot and the writing
	 * of the set use their own connection and files, off that path. */
	int (*write)(void *write_arg, int (*fn)(struct ck_ca *, void *),
	    void *fnarg);
	void *write_arg;
};

struct ck_backup_result {
	char id[65];
	char kind[16];
	int64_t seq_from, seq_to;
	uint64_t size;
	char archive_sha256[65];
	char paths[CK_BACKUP_MAX_DESTS][4096];
	size_t npaths;
	unsigned deleted;		/* sets removed by retention */
	char warning[768];		/* a step after the set was made and
					   recorded failed ("" if none) */
};

/* Make a set of CA (unlocked: the manifest is signed with its key). */
int ck_backup_make(struct ck_ca *ca, const struct ck_backup_opts *o,
    struct ck_backup_result *res);

/* What a set says about itself, from its signed manifest. */
struct ck_manifest {
	char id[65];
	char kind[16];
	char chain[33];
	char parent_id[65];		/* "" for a full */
	char parent_manifest_sha256[65];
	char ca_subject[512];
	char ca_cert_sha256[65];
	int64_t created;
	char host[256];
	char operator_name[128];
	int64_t seq_from, seq_to;
	struct store_dump_counts counts;
	struct {
		char name[100];
		uint64_t size, raw_size, rows;
		unsigned char sha256[32];
	} parts[64];
	size_t nparts;
	unsigned char manifest_sha256[32];	/* of manifest.json */
};

/* Parse and check a manifest's JSON (strict: every field present and of
 * its type). */
int ck_manifest_parse(const char *json, size_t len, struct ck_manifest *m);

/* Reading sets: the recipient key that opens them and what they must be
 * signed by. */
struct ck_backup_reader {
	EVP_PKEY *rkey;			/* a recipient's private key */
	X509 *rcert;			/* its certificate (may be NULL) */
	STACK_OF(X509) *trusted;	/* the CA chain: signer must verify */
	X509 *ca_cert;			/* the CA the sets must be of (may be
					   NULL: take the full's) */
	const int *fds;			/* if not NULL: the sets, already open
					   (FILES then only name them) */
	int progress;
};

/* Check sets FILES (a full, then its incrementals in order, or a single
 * set of any kind when CHAIN_CHECK is 0) without restoring: envelope,
 * manifest signature, part digests, parent links, sequence ranges, CA.
 * MANIFESTS (if not NULL) gets each set's manifest. */
int ck_backup_verify(const struct ck_backup_reader *rd,
    const char *const *files, size_t nfiles, int chain_check,
    struct ck_manifest *manifests);

struct ck_restore_opts {
	const char *home;		/* new or empty directory */
	int64_t upto_seq;		/* 0: all sets */
	int64_t upto_time;		/* 0: all sets */
	const char *user;		/* root: the service user to own it */
	const char *key_owner;		/* with user: split the home between
					   them (src/ca/home_split.h) */
	uint64_t crl_floor;		/* CRL numbers go on after this (the
					   last published); 0: the backup's */
};

/* Restore a full and its incrementals into a new CA home. Nothing is left
 * behind on failure. The restored store starts a new backup chain. The CA
 * key is not in a data backup: restore it with `certkeep key restore`. */
int ck_backup_restore(const struct ck_backup_reader *rd,
    const char *const *files, size_t nfiles, const struct ck_restore_opts *o,
    struct ck_manifest *last);

/* The sets recorded in the catalogue of CA, with the state of their copies
 * (each copy is looked at on disk: present, size). */
int ck_backup_catalogue_print(struct ck_ca *ca, int json);

/* The same from the store ST, the list to OUT and warnings to WARN. */
int ck_backup_catalogue_fprint(struct store *st, int json, FILE *out,
    FILE *warn);

/* Record a verification or a drill of set ID in CA's catalogue (if it is
 * there), its custody ledger and audit log. */
int ck_backup_record_check(struct ck_ca *ca, const char *what,
    const struct ck_manifest *m, const char *file, int ok,
    const char *detail);

/* The files in a set's chain, newest last, as recorded in the catalogue
 * of CA: the set ID (or the newest if NULL) and its ancestors back to the
 * full. Only copies present on disk are listed (the first present copy of
 * each). The caller frees each string and the array. */
int ck_backup_chain_files(struct ck_ca *ca, const char *id, char ***files,
    size_t *nfiles);

/* Keep the catalogue rows of ST (a restored store: they are the source
 * CA's sets) as history, without their copies, so this CA never deletes
 * or builds on them. */
int ck_backup_catalogue_forget_copies(struct store *st);

/* Set KEYS to VALS (NULL-terminated lists) in [SECTION] of HOME's
 * certkeep.conf, keeping the rest of the file. */
int ck_backup_config_set(const char *home, const char *section,
    const char *const *keys, const char *const *vals);

/* Run FN(ARG, REPLY) in a child process that has become USER; REPLY
 * (REPLYSZ bytes, at most a pipe's buffer) comes back to the caller. */
int ck_backup_as_user(const char *user, int (*fn)(void *arg, void *reply),
    void *arg, void *reply, size_t replysz);

/* Remove a directory tree (scratch and staging directories). */
void ck_backup_rmtree(const char *dir);

/* Hex SHA-256 of a certificate's DER (how manifests name the CA). */
int ck_backup_cert_sha256(X509 *x, char hex[65]);

/* Apply a retention policy to the catalogue's sets (see catalogue.c). */
int ck_backup_apply_retention(struct ck_ca *ca,
    const struct ck_retention *rt, const char *operator_name,
    const char *keep_id, unsigned *deleted);

#endif
