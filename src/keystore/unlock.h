/*
 * unlock.h - M-of-N unlock of a CA key file.
 *
 * `certkeep key protect` gives the key file (and the ACME EAB key file,
 * which shares its passphrase) a new passphrase: the 64 lower-case hex
 * digits of a random 256-bit secret S that nobody types or sees. S is
 * split among N custodians with the key backups' share code and format
 * (backup/keybackup.h, purpose "unlock"); any M shares rebuild it, M-1
 * reveal nothing. The home's configuration records M/N, the set's id and
 * the key's fingerprint ([ca] unlock_shares, unlock_set,
 * unlock_key_fingerprint), so a share of another set or key is refused as
 * it arrives, not after M of them.
 *
 * A collector takes shares one at a time (certkeepd's locked start-up over
 * the admin socket or at a prompt; `certkeep key unprotect`): each is
 * parsed strictly and checked (purpose, set, key, M and N, the same
 * wrapped secret as the first, not a duplicate); a refused one does not
 * count. Share values live only in one ck_secret; the parsed share is
 * wiped at once. Once M are in, S is rebuilt (the AES-GCM tag of the
 * wrapped copy proves it), the values are wiped, and S is turned into the
 * passphrase: a ck_secret, exactly what --passphrase-file gives.
 */
#ifndef CK_KEYSTORE_UNLOCK_H
#define CK_KEYSTORE_UNLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "ca/config.h"
#include "common/secmem.h"

#define UNLOCK_SECRET_LEN 32
/* Largest share text taken (a share of S is under 1 KiB). */
#define UNLOCK_SHARE_MAX (16u * 1024)
/* Events kept for the audit log (later ones are counted only). */
#define UNLOCK_EVENTS_MAX 64
/* scrypt cost of a protected key file: S has 256 random bits, so a
 * memory-hard KDF adds nothing; the lowest cost keeps start-up quick. */
#define UNLOCK_SCRYPT_LOG2N 10

struct unlock_collector;

/* Who offered a share, and what became of it. */
struct unlock_event {
	int64_t at;
	char from[96];		/* "uid 1000 (alice)", "prompt" */
	char custodian[65];	/* "" if the share did not parse */
	unsigned index;		/* x, 0 if unknown */
	int ok;			/* 1: counted */
	char why[256];		/* the refusal */
};

/* A collector for M of N shares of set SET_HEX for the key with
 * fingerprint FP_HEX. CK_E_INVAL for bad parameters. */
int unlock_collector_new(unsigned m, unsigned n, const char *set_hex,
    const char *fp_hex, struct unlock_collector **out);

/* The same from a configuration; *out stays NULL (and 0 is returned) when
 * its key is not protected. */
int unlock_collector_from_config(const struct ck_config *cfg,
    struct unlock_collector **out);

/* The same from HOME's certkeep.conf. */
int unlock_collector_for_home(const char *home,
    struct unlock_collector **out);

/*
 * Offer one share (TEXT, LEN bytes, untrusted) from FROM. 0 if it counts;
 * else CK_E_PARSE/CK_E_TAMPER (damaged), CK_E_INVAL (another set, key or
 * purpose, a duplicate), CK_E_STATE (M are in already), with a message;
 * a refused share does not count. Every offer is logged.
 */
int unlock_collector_add(struct unlock_collector *c,
    const unsigned char *text, size_t len, const char *from);

unsigned unlock_collector_have(const struct unlock_collector *c);
unsigned unlock_collector_need(const struct unlock_collector *c);

/*
 * With M shares in: rebuild S, wipe the share values and S, and hand out
 * the key file's passphrase (*pw, a new secret the caller frees).
 * CK_E_STATE with fewer; CK_E_TAMPER if the shares do not rebuild S (a
 * share altered with its checksum recomputed): the values are dropped and
 * collecting starts again.
 */
int unlock_collector_finish(struct unlock_collector *c,
    struct ck_secret **pw);

/* The events so far (valid until the next add or free). */
size_t unlock_collector_events(const struct unlock_collector *c,
    const struct unlock_event **ev);

/* 1 if any byte of a share value is still held (for the tests of the
 * wipe paths), else 0. */
int unlock_collector_holds_values(const struct unlock_collector *c);

/* Wipe and free; accepts NULL. */
void unlock_collector_free(struct unlock_collector *c);

/* The passphrase of secret S: its hex, in a new secret. */
int unlock_secret_passphrase(const struct ck_secret *s,
    struct ck_secret **pw);

/*
 * Re-encrypt key files, in two steps so that a key file is never without
 * a durable copy. prepare: for each of PATHS (NPATHS; a missing one is
 * skipped), decrypt with OLDPW, write "PATH.new" (0600, exclusive, fsync)
 * under NEWPW (scrypt 2^LOG2N, 0: the default) and read it back with
 * NEWPW. commit: rename each PATH.new over PATH and sync the directory.
 * abort: remove the PATH.new files. Nothing of OLDPW or NEWPW is kept.
 */
int unlock_rekey_prepare(const char *const *paths, int npaths,
    const struct ck_secret *oldpw, const struct ck_secret *newpw, int log2n);
int unlock_rekey_commit(const char *const *paths, int npaths);
void unlock_rekey_abort(const char *const *paths, int npaths);

/*
 * Configuration TEXT with [ca] unlock_shares, unlock_set and
 * unlock_key_fingerprint set to SHARES, SET, FP (all three NULL: removed).
 * Other lines are kept as they are. *OUT is new (NUL-terminated).
 */
int unlock_config_edit(const char *text, size_t len, const char *shares,
    const char *set, const char *fp, char **out, size_t *outlen);

#endif
