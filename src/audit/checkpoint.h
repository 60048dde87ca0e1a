/*
 * checkpoint.h - signed checkpoints of the audit log, and extracts of it
 * that an outside auditor verifies with nothing but the CA certificate.
 *
 * The hash chain (audit.h) shows any edit, deletion or reordering of
 * entries before the head, and the head is kept in the store's metadata;
 * but whoever can write the store file can also truncate the log and
 * rewrite that head. A checkpoint is an entry of the log itself (action
 * "audit-checkpoint", object the id it covers) whose detail is a CMS
 * SignedData by the CA key over
 *
 *   {"certkeep-audit-checkpoint":1,"last_id":N,"last_hash":"<hex>",
 *    "time":T}
 *
 * where N is the entry just before it and last_hash that entry's hash.
 * Without the CA key nobody can make one, so removing or rewriting any
 * entry a checkpoint covers, or any checkpoint, is detected by
 * audit_verify_signed(); entries after the last checkpoint are reported
 * as not yet anchored. certkeepd writes one when it starts, every
 * [audit] checkpoint_interval seconds while the log grows, and when it
 * stops; `certkeep audit checkpoint` writes one offline.
 *
 * Checkpoints, being entries, are in every backup and every extract.
 * What no local check can show is a truncation that also removes every
 * checkpoint after some point: the copies outside the CA (syslog, audit
 * extracts kept by auditors) show that.
 */
#ifndef CK_AUDIT_CHECKPOINT_H
#define CK_AUDIT_CHECKPOINT_H

#include <stdint.h>
#include <stdio.h>

#include <openssl/x509.h>

#include "audit/audit.h"
#include "store/store.h"

#define AUDIT_CHECKPOINT_ACTION "audit-checkpoint"
#define AUDIT_EXPORT_MAX (1024u * 1024 * 1024)	/* an extract, in bytes */

struct ck_ca;

/*
 * Append a checkpoint signed by CA's key (unlocked) covering the current
 * last entry, as USER (NULL: the OS user), in its own transaction (or the
 * caller's). If the last entry is already a checkpoint, nothing is
 * written and *written (if not NULL) is 0.
 */
int audit_checkpoint(struct ck_ca *ca, const char *user, int *written);

struct audit_signed_report {
	struct audit_report chain;	/* audit_verify()'s */
	int64_t checkpoints;		/* checkpoints verified */
	int64_t last_checkpoint;	/* id of the last one, 0 if none */
	int64_t last_checkpoint_time;
	int64_t unanchored;		/* entries after the last one */
};

/*
 * audit_verify() and every checkpoint's signature against TRUSTED (the
 * CA's certificates) and against the entry it names. 0 if intact;
 * CK_E_TAMPER with rep->chain naming the first bad entry.
 */
int audit_verify_signed(struct store *st, STACK_OF(X509) *trusted,
    struct audit_signed_report *rep);

/*
 * Write entries FROM..TO (TO 0: the last) to OUT as an extract: a header
 * line with the CA certificates (PEM) and one JSON line per entry with
 * its hashes, extended past TO up to the first checkpoint at or after it,
 * so that the extract ends anchored. CK_E_STATE if no checkpoint covers
 * TO yet. *last gets the last id written.
 */
int audit_export(struct store *st, STACK_OF(X509) *certs, int64_t from,
    int64_t to, FILE *out, int64_t *last);

/*
 * Verify an extract (BUF, LEN bytes) offline: every entry's hash and link,
 * consecutive ids, every checkpoint's signature against TRUSTED, and that
 * the extract ends with a checkpoint. rep->chain.entries and the
 * checkpoint counts are filled. 0, CK_E_TAMPER (with rep->chain naming the
 * entry), CK_E_PARSE for what is not an extract.
 */
int audit_export_verify(const unsigned char *buf, size_t len,
    STACK_OF(X509) *trusted, struct audit_signed_report *rep);

/*
 * The syslog copy. certkeepd writes to the local syslog socket itself
 * (RFC 3164 datagrams, facility authpriv, as syslog(3) would) rather than
 * through syslog(3), so that it knows which entries arrived: an entry is
 * counted as sent only when the socket took it, and one that could not be
 * sent (no syslog listening, its queue full) is sent again later, in
 * order. syslog(3) drops such messages without telling. The socket is
 * [audit] syslog_socket (/dev/log: syslog, or journald's syslog socket).
 */
struct audit_syslog {
	int fd;			/* -1: not connected */
	int down;		/* the last attempt failed (logged once) */
	char path[108];
};

/* Remember PATH; the socket is connected when first needed. */
void audit_syslog_open(struct audit_syslog *sl, const char *path);
void audit_syslog_close(struct audit_syslog *sl);

/*
 * The next entries from id FROM (at most AUDIT_SYSLOG_BATCH) as syslog
 * lines, collected so that they are sent after the store is released:
 * collect under the caller's lock, flush (send and free) outside it.
 * b->last is the last id collected (FROM - 1 if none).
 */
#define AUDIT_SYSLOG_BATCH 512
struct audit_syslog_batch {
	char *lines[AUDIT_SYSLOG_BATCH];
	int64_t ids[AUDIT_SYSLOG_BATCH];
	size_t n;
	int64_t last;
};
int audit_syslog_collect(struct store *st, int64_t from,
    struct audit_syslog_batch *b);

/*
 * Send B's lines in order, stopping at the first the socket does not
 * take; free them all. Returns the id of the last line sent (FROM - 1 of
 * the collect when none was).
 */
int64_t audit_syslog_flush(struct audit_syslog *sl,
    struct audit_syslog_batch *b, int64_t from);

/*
 * Send the committed entries from id FROM on, until one is not taken
 * (one line each, control characters replaced, long fields cut); *last is
 * the last id sent (FROM - 1 if none). auditsyslog.c.
 */
int audit_syslog_send(struct audit_syslog *sl, struct store *st,
    int64_t from, int64_t *last);

#endif
