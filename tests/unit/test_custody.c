/*
 * test_custody.c - src/backup/custody: the chain-of-custody ledger of a
 * real CA home. Events are recorded through the API, then the store file
 * is tampered with using sqlite3 directly, as an intruder with write
 * access to it would; custody records are exported signed by the CA key,
 * then damaged, cut short or forged.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "backup/custody.h"
#include "ca/ca.h"
#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "signer/signer.h"
#include "store/store.h"

#define PASSPHRASE "correct horse battery staple"
#define LOG2N 10
#define NENTRIES 6

/* Three artefacts: A (a data backup), B (a key backup), C (unused). */
#define ART_A "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1" \
	"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define ART_B "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2" \
	"b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
#define ART_C "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3" \
	"c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"

struct fx {
	char dir[4096];
	char home[4200];
	char pass[4200];
	char db[4300];
	char file[4300];	/* where records are exported */
	struct ck_pass_src src;
	struct ck_ca *ca;
	int64_t t0, t1;
};

/* The ledger every test starts from: A's and B's events interleaved. */
static const struct {
	const char *event, *art, *kind, *place, *detail, *op;
} script[NENTRIES] = {
	{ "created", ART_A, "data-backup", "ca host /var/backups", NULL,
	  "alice" },
	{ "created", ART_B, "key-backup", "ca host", "2 of 3 shares too",
	  "alice" },
	{ "copied", ART_A, NULL, "USB stick #4", "for the safe", "bob" },
	{ "stored", ART_A, "data-backup", "safe 1, shelf 2", NULL, "bob" },
	{ "stored", ART_B, NULL, "safe 2", NULL, "carol" },
	{ "verified", ART_A, NULL, "safe 1, shelf 2", "sha256sum matched",
	  "alice" },
};

static int
make_ca(struct fx *fx, enum ck_key_type kt)
{
	struct ck_init_params p;

	memset(&p, 0, sizeof(p));
	p.home = fx->home;
	p.root = 1;
	p.subject = "CN=certkeep custody test,O=certkeep tests";
	p.key_type = kt;
	p.days = 365;
	p.path_len = -1;
	p.domain = "example.com";
	p.pass = &fx->src;
	p.scrypt_log2n = LOG2N;
	if (ck_ca_init(&p) != 0 || ck_ca_open(fx->home, &fx->ca) != 0) {
		fprintf(stderr, "CA set-up: %s\n", ck_err_msg());
		return -1;
	}
	return 0;
}

static struct fx *
fx_new(enum ck_key_type kt)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return NULL;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->home, sizeof(fx->home), fx->dir, "ca");
	tu_path(fx->pass, sizeof(fx->pass), fx->dir, "pass");
	tu_path(fx->file, sizeof(fx->file), fx->dir, "a.ckb.custody");
	tu_write_file(fx->pass, PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0600);
	fx->src.kind = CK_PASS_FILE;
	fx->src.file = fx->pass;
	fx->src.fd = -1;
	if (make_ca(fx, kt) != 0) {
		free(fx);
		return NULL;
	}
	tu_path(fx->db, sizeof(fx->db), fx->home, fx->ca->cfg->store_path);
	return fx;
}

static int
setup(void **state)
{
	struct fx *fx = fx_new(CK_KEY_EC_P256);
	int i;

	if (fx == NULL)
		return -1;
	fx->t0 = ck_time_now();
	for (i = 0; i < NENTRIES; i++)
		if (ck_custody_record(fx->ca, script[i].event, script[i].art,
		    script[i].kind, script[i].place, script[i].detail,
		    script[i].op) != 0) {
			fprintf(stderr, "recording %d: %s\n", i, ck_err_msg());
			return -1;
		}
	fx->t1 = ck_time_now();
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	ck_ca_close(fx->ca);
	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

/* Run SQL on the store file through a connection of our own, with the
 * store closed meanwhile. */
static void
tamper(struct fx *fx, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	store_close(fx->ca->st);
	fx->ca->st = NULL;
	assert_int_equal(sqlite3_open_v2(fx->db, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
	assert_int_equal(store_open(fx->db, 0, &fx->ca->st), 0);
}

static void
expect_ok(struct fx *fx, int64_t entries)
{
	struct ck_custody_report rep;
	int r = ck_custody_verify(fx->ca, &rep);

	if (r != 0)
		fail_msg("ck_custody_verify: %d, first bad %lld: %s", r,
		    (long long)rep.first_bad, rep.reason);
	assert_int_equal(rep.entries, entries);
	assert_int_equal(rep.first_bad, 0);
}

static void
expect_tamper(struct fx *fx, int64_t first_bad, const char *why)
{
	struct ck_custody_report rep;
	int r = ck_custody_verify(fx->ca, &rep);

	if (r != CK_E_TAMPER)
		fail_msg("tampering not detected (%d, %lld entries)", r,
		    (long long)rep.entries);
	if (rep.first_bad != first_bad)
		fail_msg("first bad entry %lld, expected %lld (%s)",
		    (long long)rep.first_bad, (long long)first_bad,
		    rep.reason);
	if (why != NULL)
		assert_contains(rep.reason, why);
}

struct collected {
	struct store_custody e[32];
	size_t n;
};

static int
collect(const struct store_custody *e, void *arg)
{
	struct collected *c = arg;
	struct store_custody *d;

	assert_true(c->n < 32);
	d = &c->e[c->n++];
	*d = *e;
	d->operator_name = strdup(e->operator_name);
	d->event = strdup(e->event);
	d->artefact = strdup(e->artefact);
	d->kind = strdup(e->kind);
	d->place = strdup(e->place);
	d->detail = strdup(e->detail);
	return 0;
}

static void
collected_free(struct collected *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->e[i].operator_name);
		free(c->e[i].event);
		free(c->e[i].artefact);
		free(c->e[i].kind);
		free(c->e[i].place);
		free(c->e[i].detail);
	}
	c->n = 0;
}

static int64_t
count_ledger(struct fx *fx, const char *art)
{
	struct collected c;
	int64_t n;

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_custody_iter(fx->ca->st, art, collect, &c), 0);
	n = (int64_t)c.n;
	collected_free(&c);
	return n;
}

struct audit_count {
	int64_t all, custody_ok, custody_refused, exported;
	char last_detail[512];
};

static int
audit_cb(const struct store_audit_entry *e, void *arg)
{
	struct audit_count *ac = arg;

	ac->all++;
	if (strcmp(e->action, "custody") == 0) {
		if (strcmp(e->result, AUDIT_OK) == 0)
			ac->custody_ok++;
		else if (strcmp(e->result, AUDIT_REFUSED) == 0)
			ac->custody_refused++;
		snprintf(ac->last_detail, sizeof(ac->last_detail), "%s",
		    e->detail);
	}
	if (strcmp(e->action, "custody-export") == 0)
		ac->exported++;
	return 0;
}

static struct audit_count
count_audit(struct fx *fx)
{
	struct audit_count ac;

	memset(&ac, 0, sizeof(ac));
	assert_int_equal(store_audit_iter(fx->ca->st, 1, audit_cb, &ac), 0);
	return ac;
}

static void
hex32(const unsigned char *b, char out[65])
{
	ck_hex_encode(b, 32, out);
}

/* ---- recording ---- */

static void
test_chain(void **state)
{
	struct fx *fx = *state;
	struct collected c;
	struct audit_count ac;
	struct audit_report arep;
	unsigned char zero[32] = { 0 }, h[32], last[32];
	char *head = NULL, want[128], hex[65];
	int64_t last_id;
	size_t i;

	expect_ok(fx, NENTRIES);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_custody_iter(fx->ca->st, NULL, collect, &c), 0);
	assert_int_equal(c.n, NENTRIES);
	for (i = 0; i < c.n; i++) {
		assert_int_equal(c.e[i].id, (int64_t)i + 1);
		assert_true(c.e[i].time >= fx->t0 && c.e[i].time <= fx->t1);
		assert_string_equal(c.e[i].event, script[i].event);
		assert_string_equal(c.e[i].artefact, script[i].art);
		/* No kind given: the artefact's own. */
		assert_string_equal(c.e[i].kind, strcmp(script[i].art,
		    ART_A) == 0 ? "data-backup" : "key-backup");
		assert_string_equal(c.e[i].place, script[i].place);
		assert_string_equal(c.e[i].detail, script[i].detail ?
		    script[i].detail : "");
		assert_string_equal(c.e[i].operator_name, script[i].op);
		/* The chain: each entry names the previous one's hash. */
		if (i == 0)
			assert_memory_equal(c.e[i].prev_hash, zero, 32);
		else
			assert_memory_equal(c.e[i].prev_hash,
			    c.e[i - 1].hash, 32);
		ck_custody_entry_hash(&c.e[i], h);
		assert_memory_equal(h, c.e[i].hash, 32);
	}
	/* The head of the ledger is recorded beside it. */
	assert_int_equal(store_custody_last(fx->ca->st, &last_id, last), 0);
	assert_int_equal(last_id, NENTRIES);
	assert_memory_equal(last, c.e[NENTRIES - 1].hash, 32);
	assert_int_equal(store_meta_get(fx->ca->st, "custody_head", &head), 0);
	hex32(last, hex);
	snprintf(want, sizeof(want), "%d:%s", NENTRIES, hex);
	assert_string_equal(head, want);
	free(head);
	collected_free(&c);

	/* Each entry is also in the audit log, which still verifies. */
	ac = count_audit(fx);
	assert_int_equal(ac.custody_ok, NENTRIES);
	assert_contains(ac.last_detail, "entry 6: verified data-backup at "
	    "safe 1, shelf 2 by alice");
	assert_int_equal(audit_verify(fx->ca->st, &arep), 0);

	/* Per artefact. */
	assert_int_equal(count_ledger(fx, ART_A), 4);
	assert_int_equal(count_ledger(fx, ART_B), 2);
	assert_int_equal(count_ledger(fx, ART_C), 0);
}

static void
test_empty_ledger(void **state)
{
	struct fx *fx = fx_new(CK_KEY_EC_P256);
	struct ck_custody_report rep;

	(void)state;
	assert_non_null(fx);
	assert_int_equal(ck_custody_verify(fx->ca, &rep), 0);
	assert_int_equal(rep.entries, 0);
	ck_ca_close(fx->ca);
	tu_rmtree(fx->dir);
	free(fx);
}

static void
test_defaults(void **state)
{
	struct fx *fx = *state;
	struct collected c;

	/* Upper-case hex is accepted and kept in lower case; no operator:
	 * the operating-system user; no detail: "". */
	assert_int_equal(ck_custody_record(fx->ca, "stored",
	    "C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3",
	    "key-share", "vault", NULL, NULL), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_custody_iter(fx->ca->st, ART_C, collect, &c),
	    0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.e[0].id, NENTRIES + 1);
	assert_string_equal(c.e[0].operator_name, audit_os_user());
	assert_string_equal(c.e[0].detail, "");
	assert_string_equal(c.e[0].kind, "key-share");
	collected_free(&c);
	expect_ok(fx, NENTRIES + 1);
}

static void
test_invalid_refused(void **state)
{
	struct fx *fx = *state;
	struct audit_count before = count_audit(fx), after;
	char longtext[CK_CUSTODY_DETAIL_MAX + 2];
	size_t i;
	static const struct {
		const char *event, *art, *kind, *place, *detail, *op;
	} bad[] = {
		{ "lost", ART_C, "data-backup", "x", NULL, NULL },
		{ "Created", ART_C, "data-backup", "x", NULL, NULL },
		{ "", ART_C, "data-backup", "x", NULL, NULL },
		{ NULL, ART_C, "data-backup", "x", NULL, NULL },
		{ "created", ART_C, "backup", "x", NULL, NULL },
		{ "created", ART_C, "data_backup", "x", NULL, NULL },
		{ "created", ART_C, "", "x", NULL, NULL },
		/* no kind and no history to take it from */
		{ "created", ART_C, NULL, "x", NULL, NULL },
		{ "created", "c3c3", "data-backup", "x", NULL, NULL },
		{ "created", ART_C "00", "data-backup", "x", NULL, NULL },
		{ "created", "g3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
		  "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3", "data-backup", "x",
		  NULL, NULL },
		{ "created", NULL, "data-backup", "x", NULL, NULL },
		{ "created", ART_C, "data-backup", NULL, NULL, NULL },
		{ "created", ART_C, "data-backup", "", NULL, NULL },
		{ "created", ART_C, "data-backup", "x", NULL, "" },
		{ "created", ART_C, "data-backup", "line\nbreak", NULL, NULL },
		{ "created", ART_C, "data-backup", "x", "tab\there", NULL },
		{ "created", ART_C, "data-backup", "x", NULL, "esc\x1b[31m" },
		{ "created", ART_C, "data-backup", "x", "bad \xc3 utf-8",
		  NULL },
		{ "created", ART_C, "data-backup", "x", "overlong \xc0\xaf",
		  NULL },
		{ "created", ART_C, "data-backup", "surrogate \xed\xa0\x80",
		  NULL, NULL },
	};

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = ck_custody_record(fx->ca, bad[i].event, bad[i].art,
		    bad[i].kind, bad[i].place, bad[i].detail, bad[i].op);

		if (r != CK_E_INVAL)
			fail_msg("case %zu: %d, expected CK_E_INVAL", i, r);
		assert_true(ck_err_msg()[0] != '\0');
	}
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	assert_int_equal(ck_custody_record(fx->ca, "created", ART_C,
	    "data-backup", "x", longtext, NULL), CK_E_INVAL);
	assert_int_equal(ck_custody_record(fx->ca, "created", ART_C,
	    "data-backup", longtext + CK_CUSTODY_DETAIL_MAX -
	    CK_CUSTODY_FIELD_MAX, NULL, NULL), CK_E_INVAL);
	/* Non-ASCII text is fine. */
	assert_int_equal(ck_custody_record(fx->ca, "created", ART_C,
	    "data-backup", "Tresor im Keller, Fach \xc3\xa4", NULL,
	    "J\xc3\xb6rg"), 0);

	/* Nothing of the refusals reached the ledger or the log. */
	assert_int_equal(count_ledger(fx, NULL), NENTRIES + 1);
	after = count_audit(fx);
	assert_int_equal(after.all, before.all + 1);
	expect_ok(fx, NENTRIES + 1);
}

static void
test_history_rules(void **state)
{
	struct fx *fx = *state;
	struct audit_count before = count_audit(fx), after;

	/* Created only once, first. */
	assert_int_equal(ck_custody_record(fx->ca, "created", ART_A,
	    "data-backup", "x", NULL, NULL), CK_E_STATE);
	assert_contains(ck_err_msg(), "first event");
	/* The kind is the artefact's for life. */
	assert_int_equal(ck_custody_record(fx->ca, "moved", ART_A,
	    "key-share", "x", NULL, NULL), CK_E_STATE);
	assert_contains(ck_err_msg(), "another kind");
	/* Nothing after destroyed. */
	assert_int_equal(ck_custody_record(fx->ca, "destroyed", ART_B, NULL,
	    "shredder", "witnessed by carol", NULL), 0);
	assert_int_equal(ck_custody_record(fx->ca, "retrieved", ART_B, NULL,
	    "safe 2", NULL, NULL), CK_E_STATE);
	assert_contains(ck_err_msg(), "destroyed");
	assert_int_equal(ck_custody_record(fx->ca, "destroyed", ART_B, NULL,
	    "shredder", NULL, NULL), CK_E_STATE);
	/* A first entry need not be "created" (made before the ledger). */
	assert_int_equal(ck_custody_record(fx->ca, "retrieved", ART_C,
	    "key-share", "custodian's safe", NULL, NULL), 0);

	assert_int_equal(count_ledger(fx, NULL), NENTRIES + 2);
	after = count_audit(fx);
	/* Refusals are audited as such. */
	assert_int_equal(after.custody_refused, before.custody_refused + 4);
	assert_int_equal(after.custody_ok, before.custody_ok + 2);
	expect_ok(fx, NENTRIES + 2);
}

static void
test_follows_caller_tx(void **state)
{
	struct fx *fx = *state;
	struct audit_count before = count_audit(fx), after;

	/* Rolled back with the operation it records: entry, head and
	 * audit entry together. */
	assert_int_equal(store_tx_begin(fx->ca->st), 0);
	assert_int_equal(ck_custody_record(fx->ca, "moved", ART_A, NULL,
	    "safe 3", NULL, NULL), 0);
	store_tx_rollback(fx->ca->st);
	expect_ok(fx, NENTRIES);
	after = count_audit(fx);
	assert_int_equal(after.all, before.all);

	/* Committed with it. */
	assert_int_equal(store_tx_begin(fx->ca->st), 0);
	assert_int_equal(ck_custody_record(fx->ca, "moved", ART_A, NULL,
	    "safe 3", NULL, NULL), 0);
	assert_int_equal(ck_custody_record(fx->ca, "verified", ART_A, NULL,
	    "safe 3", NULL, NULL), 0);
	assert_int_equal(store_tx_commit(fx->ca->st), 0);
	expect_ok(fx, NENTRIES + 2);
	after = count_audit(fx);
	assert_int_equal(after.custody_ok, before.custody_ok + 2);
}

static void
test_entry_hash(void **state)
{
	struct store_custody e, f;
	unsigned char h1[32], h2[32];
	char hex[65];

	(void)state;
	memset(&e, 0, sizeof(e));
	e.id = 7;
	e.time = 1700000000;
	e.operator_name = (char *)"alice";
	e.event = (char *)"copied";
	e.artefact = (char *)ART_A;
	e.kind = (char *)"data-backup";
	e.place = (char *)"safe";
	e.detail = (char *)"d";
	memset(e.prev_hash, 0x55, 32);
	ck_custody_entry_hash(&e, h1);
	/* The encoding is part of the format: pinned. */
	hex32(h1, hex);
	assert_string_equal(hex, "d080158c7a3dde5c88ae7f31f28bebfd"
	    "d81bae9287ab6b9e1b7363ed5c3bcfe0");
	ck_custody_entry_hash(&e, h2);
	assert_memory_equal(h1, h2, 32);

#define CHANGED(stmt) do { \
	f = e; stmt; ck_custody_entry_hash(&f, h2); \
	assert_memory_not_equal(h1, h2, 32); \
} while (0)
	CHANGED(f.id = 8);
	CHANGED(f.time = 1700000001);
	CHANGED(f.operator_name = (char *)"alicf");
	CHANGED(f.event = (char *)"moved");
	CHANGED(f.artefact = (char *)ART_B);
	CHANGED(f.kind = (char *)"key-share");
	CHANGED(f.place = (char *)"safe2");
	CHANGED(f.detail = (char *)"e");
	CHANGED(f.prev_hash[31] ^= 1);
	/* Length-prefixed: moving a boundary changes it. */
	CHANGED((f.place = (char *)"saf", f.detail = (char *)"ed"));
	CHANGED((f.operator_name = (char *)"alicecopied",
	    f.event = (char *)""));
#undef CHANGED
	/* The stored hash and change_seq are not inputs. */
	f = e;
	memset(f.hash, 0xff, 32);
	f.change_seq = 99;
	ck_custody_entry_hash(&f, h2);
	assert_memory_equal(h1, h2, 32);
}

static void
test_names(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < CK_CUSTODY_EVENT__MAX; i++)
		assert_int_equal(ck_custody_event_parse(
		    ck_custody_event_name(i)), i);
	for (i = 0; i < CK_CUSTODY_KIND__MAX; i++)
		assert_int_equal(ck_custody_kind_parse(
		    ck_custody_kind_name(i)), i);
	assert_string_equal(ck_custody_event_name(CK_CUSTODY_EVENT__MAX),
	    "unknown");
	assert_int_equal(ck_custody_event_parse("unknown"), -1);
	assert_int_equal(ck_custody_kind_parse(NULL), -1);
	assert_int_equal(ck_custody_kind_guess("ca-2026-full.ckb"),
	    CK_CUSTODY_DATA_BACKUP);
	assert_int_equal(ck_custody_kind_guess("ca-key-ab.p8"),
	    CK_CUSTODY_KEY_BACKUP);
	assert_int_equal(ck_custody_kind_guess("x-share-1of3-bob.share"),
	    CK_CUSTODY_KEY_SHARE);
	assert_int_equal(ck_custody_kind_guess("notes.txt"), -1);
}

/* ---- tampering with the ledger ---- */

static void
test_altered_fields(void **state)
{
	struct fx *fx = *state;
	static const char *const alter[][2] = {
		{ "UPDATE custody SET detail = detail || 'x' WHERE id = 3",
		  "UPDATE custody SET detail = substr(detail, 1, "
		  "length(detail) - 1) WHERE id = 3" },
		{ "UPDATE custody SET place = 'USB stick #5' WHERE id = 3",
		  "UPDATE custody SET place = 'USB stick #4' WHERE id = 3" },
		{ "UPDATE custody SET operator = 'mallory' WHERE id = 3",
		  "UPDATE custody SET operator = 'bob' WHERE id = 3" },
		{ "UPDATE custody SET event = 'moved' WHERE id = 3",
		  "UPDATE custody SET event = 'copied' WHERE id = 3" },
		{ "UPDATE custody SET kind = 'key-share' WHERE id = 3",
		  "UPDATE custody SET kind = 'data-backup' WHERE id = 3" },
		{ "UPDATE custody SET artefact = '" ART_C "' WHERE id = 3",
		  "UPDATE custody SET artefact = '" ART_A "' WHERE id = 3" },
		{ "UPDATE custody SET time = time - 3600 WHERE id = 3",
		  "UPDATE custody SET time = time + 3600 WHERE id = 3" },
		{ "UPDATE custody SET prev_hash = zeroblob(32) WHERE id = 3",
		  NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(alter) / sizeof(alter[0]); i++) {
		tamper(fx, alter[i][0]);
		expect_tamper(fx, 3, NULL);
		if (alter[i][1] != NULL) {
			tamper(fx, alter[i][1]);
			expect_ok(fx, NENTRIES);
		}
	}
}

static void
test_altered_hash(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "UPDATE custody SET hash = zeroblob(32) WHERE id = 3");
	expect_tamper(fx, 3, "altered");
}

/* Rewrite entries FROM..NENTRIES with DETAIL and a consistent chain of
 * their own; returns nothing, the store is tampered. */
static void
rewrite_from(struct fx *fx, int64_t from, const char *detail, int head)
{
	struct collected c;
	unsigned char prev[32];
	char hex[65], phex[65], sql[512];
	size_t i;

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_custody_iter(fx->ca->st, NULL, collect, &c), 0);
	memcpy(prev, c.e[from - 2].hash, 32);
	for (i = (size_t)from - 1; i < c.n; i++) {
		free(c.e[i].detail);
		c.e[i].detail = strdup(detail);
		memcpy(c.e[i].prev_hash, prev, 32);
		ck_custody_entry_hash(&c.e[i], c.e[i].hash);
		memcpy(prev, c.e[i].hash, 32);
		hex32(c.e[i].hash, hex);
		hex32(c.e[i].prev_hash, phex);
		snprintf(sql, sizeof(sql), "UPDATE custody SET detail = '%s', "
		    "prev_hash = x'%s', hash = x'%s' WHERE id = %lld", detail,
		    phex, hex, (long long)c.e[i].id);
		tamper(fx, sql);
	}
	if (head) {
		snprintf(sql, sizeof(sql), "UPDATE meta SET value = '%zu:%s' "
		    "WHERE key = 'custody_head'", c.n, hex);
		tamper(fx, sql);
	}
	collected_free(&c);
}

static void
test_altered_and_rehashed(void **state)
{
	struct fx *fx = *state;
	struct collected c;
	unsigned char h[32];
	char hex[65], sql[256];

	/* Entry 3 altered with a correct hash of its own: entry 4's link
	 * no longer matches. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_custody_iter(fx->ca->st, NULL, collect, &c), 0);
	free(c.e[2].place);
	c.e[2].place = strdup("nowhere");
	ck_custody_entry_hash(&c.e[2], h);
	hex32(h, hex);
	snprintf(sql, sizeof(sql), "UPDATE custody SET place = 'nowhere', "
	    "hash = x'%s' WHERE id = 3", hex);
	collected_free(&c);
	tamper(fx, sql);
	expect_tamper(fx, 4, "link");
}

static void
test_rewritten_tail(void **state)
{
	struct fx *fx = *state;

	/* A consistent rewrite of entries 3..6: only the recorded head of
	 * the ledger can tell. */
	rewrite_from(fx, 3, "rewritten", 0);
	expect_tamper(fx, NENTRIES, "head");
}

static void
test_deleted_entry(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM custody WHERE id = 3");
	expect_tamper(fx, 3, "missing");
}

static void
test_deleted_first_entry(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM custody WHERE id = 1");
	expect_tamper(fx, 1, "missing");
}

static void
test_deleted_last_entries(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM custody WHERE id = 6");
	expect_tamper(fx, 6, "deleted");
	tamper(fx, "DELETE FROM custody WHERE id >= 4");
	expect_tamper(fx, 4, "deleted");
	tamper(fx, "DELETE FROM custody");
	expect_tamper(fx, 1, NULL);
}

static void
test_head_removed(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM meta WHERE key = 'custody_head'");
	expect_tamper(fx, 1, "head");
}

static void
test_swapped_rows(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "UPDATE custody SET id = -1 WHERE id = 3;"
	    "UPDATE custody SET id = 3 WHERE id = 4;"
	    "UPDATE custody SET id = 4 WHERE id = -1;");
	expect_tamper(fx, 3, NULL);
}

static void
test_swapped_far_rows(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "UPDATE custody SET id = -1 WHERE id = 2;"
	    "UPDATE custody SET id = 2 WHERE id = 6;"
	    "UPDATE custody SET id = 6 WHERE id = -1;");
	expect_tamper(fx, 2, NULL);
}

static void
test_renumbered_entry(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "UPDATE custody SET id = 9 WHERE id = 6");
	expect_tamper(fx, 6, NULL);
}

static void
test_appended_forgery(void **state)
{
	struct fx *fx = *state;
	struct collected c;
	char hex[65], phex[65], sql[768];

	/* A well-linked entry with a correct hash added behind certkeep's
	 * back: the head does not match. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_custody_iter(fx->ca->st, NULL, collect, &c), 0);
	c.e[NENTRIES - 1].id = NENTRIES + 1;
	memcpy(c.e[NENTRIES - 1].prev_hash, c.e[NENTRIES - 1].hash, 32);
	free(c.e[NENTRIES - 1].event);
	c.e[NENTRIES - 1].event = strdup("destroyed");
	ck_custody_entry_hash(&c.e[NENTRIES - 1], c.e[NENTRIES - 1].hash);
	hex32(c.e[NENTRIES - 1].hash, hex);
	hex32(c.e[NENTRIES - 1].prev_hash, phex);
	snprintf(sql, sizeof(sql), "INSERT INTO custody VALUES (%d, %lld, "
	    "'%s', 'destroyed', '%s', 'data-backup', '%s', '%s', x'%s', "
	    "x'%s', 99)", NENTRIES + 1, (long long)c.e[NENTRIES - 1].time,
	    c.e[NENTRIES - 1].operator_name, ART_A, c.e[NENTRIES - 1].place,
	    c.e[NENTRIES - 1].detail, phex, hex);
	collected_free(&c);
	tamper(fx, sql);
	expect_tamper(fx, NENTRIES + 1, "head");
}

static void
test_impossible_history(void **state)
{
	struct fx *fx = *state;

	/* An entry of a consistent chain and head, but one certkeep would
	 * never have written: a second "created" of A. */
	tamper(fx, "UPDATE custody SET event = 'created' WHERE id = 4");
	rewrite_from(fx, 4, "forged", 1);
	expect_tamper(fx, 4, "history");
}

/* ---- custody records ---- */

static void
unlock(struct fx *fx)
{
	if (ck_ca_unlock(fx->ca, &fx->src) != 0)
		fail_msg("unlock: %s", ck_err_msg());
}

static int
check(struct fx *fx, const unsigned char *buf, size_t len,
    struct store *st, struct ck_custody_report *rep)
{
	return ck_custody_check_buf(buf, len, fx->ca->chain, st, rep);
}

static void
test_export_verifies(void **state)
{
	struct fx *fx = *state;
	struct ck_custody_report rep;
	struct audit_count ac;
	struct store_custody *v = NULL;
	unsigned char *buf;
	size_t len, n = 0;
	BIO *bio;
	CMS_ContentInfo *cms;
	X509_STORE *xs;
	const unsigned char *p;

	/* A locked CA cannot sign. */
	assert_int_equal(ck_custody_export(fx->ca, ART_A, fx->file),
	    CK_E_STATE);
	unlock(fx);
	assert_int_equal(ck_custody_export_check(fx->ca), 0);
	/* Nothing to export for an unknown artefact. */
	assert_int_equal(ck_custody_export(fx->ca, ART_C, fx->file),
	    CK_E_NOTFOUND);
	assert_int_equal(ck_custody_export(fx->ca, "abc", fx->file),
	    CK_E_INVAL);

	assert_int_equal(ck_custody_export(fx->ca, ART_A, fx->file), 0);
	assert_int_equal(tu_file_mode(fx->file), 0600);
	assert_int_equal(ck_custody_check_file(fx->file, fx->ca->chain,
	    fx->ca->st, &rep), 0);
	assert_int_equal(rep.entries, 4);
	assert_int_equal(rep.last_id, 6);
	assert_int_equal(rep.later, 0);
	assert_string_equal(rep.artefact, ART_A);
	assert_string_equal(rep.kind, "data-backup");
	/* Without a store: signature, form and hashes only. */
	assert_int_equal(ck_custody_check_file(fx->file, fx->ca->chain, NULL,
	    &rep), 0);
	assert_int_equal(rep.entries, 4);
	ac = count_audit(fx);
	assert_int_equal(ac.exported, 1);

	/* Standard tools open it: CMS SignedData, content attached, that
	 * verifies against the CA certificate as a trust anchor. */
	buf = tu_read_file(fx->file, &len);
	p = buf;
	assert_non_null(cms = d2i_CMS_ContentInfo(NULL, &p, (long)len));
	assert_non_null(xs = X509_STORE_new());
	assert_int_equal(X509_STORE_add_cert(xs, fx->ca->cert), 1);
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(CMS_verify(cms, NULL, xs, NULL, bio, CMS_BINARY), 1);
	{
		char *data;
		long dl = BIO_get_mem_data(bio, &data);

		assert_int_equal(ck_custody_parse(data, (size_t)dl, &v, &n,
		    &rep), 0);
		assert_int_equal(n, 4);
		assert_int_equal(v[0].id, 1);
		assert_int_equal(v[1].id, 3);
		assert_int_equal(v[2].id, 4);
		assert_int_equal(v[3].id, 6);
		assert_string_equal(v[1].place, "USB stick #4");
		assert_string_equal(v[1].operator_name, "bob");
		assert_string_equal(v[3].event, "verified");
		ck_custody_entries_free(v, n);
	}
	BIO_free(bio);
	X509_STORE_free(xs);
	CMS_ContentInfo_free(cms);
	free(buf);

	/* The ledger moves on: the file is older, not wrong. */
	assert_int_equal(ck_custody_record(fx->ca, "retrieved", ART_A, NULL,
	    "safe 1", NULL, NULL), 0);
	assert_int_equal(ck_custody_record(fx->ca, "moved", ART_B, NULL,
	    "safe 3", NULL, NULL), 0);
	assert_int_equal(ck_custody_check_file(fx->file, fx->ca->chain,
	    fx->ca->st, &rep), 0);
	assert_int_equal(rep.later, 1);
	/* Re-exported, it holds the new entry. */
	assert_int_equal(ck_custody_export(fx->ca, ART_A, fx->file), 0);
	assert_int_equal(ck_custody_check_file(fx->file, fx->ca->chain,
	    fx->ca->st, &rep), 0);
	assert_int_equal(rep.entries, 5);
	assert_int_equal(rep.last_id, NENTRIES + 1);
	assert_int_equal(rep.later, 0);
}

/* Where NEEDLE (N bytes) is in BUF, or len if not. */
static size_t
find(const unsigned char *buf, size_t len, const void *needle, size_t n)
{
	const unsigned char *p = memmem(buf, len, needle, n);

	return p != NULL ? (size_t)(p - buf) : len;
}

/*
 * Flip bits of a good record, one change at a time: every change must be
 * refused. Every bit of every byte of the CMS structure; in the signed
 * content and the embedded certificate (each taken whole by a digest)
 * one bit a byte, bit (SHIFT + offset) modulo 8.
 */
static void
flip_every_byte(unsigned char *buf, size_t len, STACK_OF(X509) *chain,
    struct store *st, unsigned shift)
{
	struct ck_custody_report rep;
	const unsigned char *p = buf;
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING **content;
	unsigned char *cert = NULL;
	size_t i, passed = 0, coff, clen, xoff, xlen, tried = 0;
	unsigned b, bits;
	int n;

	assert_int_equal(ck_custody_check_buf(buf, len, chain, st, &rep), 0);
	assert_non_null(cms = d2i_CMS_ContentInfo(NULL, &p, (long)len));
	assert_non_null(content = CMS_get0_content(cms));
	clen = (size_t)ASN1_STRING_length(*content);
	coff = find(buf, len, ASN1_STRING_get0_data(*content), clen);
	CMS_ContentInfo_free(cms);
	assert_true((n = i2d_X509(sk_X509_value(chain, 0), &cert)) > 0);
	xlen = (size_t)n;
	xoff = find(buf, len, cert, xlen);
	OPENSSL_free(cert);
	assert_true(coff < len && xoff < len);

	for (i = 0; i < len; i++) {
		bits = (i >= coff && i < coff + clen) ||
		    (i >= xoff && i < xoff + xlen) ?
		    1u << ((shift + i) % 8) : 0xffu;
		for (b = 1; b < 0x100; b <<= 1) {
			if ((bits & b) == 0)
				continue;
			buf[i] ^= (unsigned char)b;
			tried++;
			if (ck_custody_check_buf(buf, len, chain, st, &rep)
			    == 0) {
				fprintf(stderr, "byte %zu of %zu with bit %02x "
				    "flipped passed\n", i, len, b);
				passed++;
			}
			buf[i] ^= (unsigned char)b;
		}
	}
	assert_true(tried > len);
	assert_int_equal(passed, 0);
	assert_int_equal(ck_custody_check_buf(buf, len, chain, st, &rep), 0);
}

static void
test_export_flipped_byte(void **state)
{
	struct fx *fx = *state;
	struct ck_custody_report rep;
	unsigned char *buf;
	size_t len;

	unlock(fx);
	assert_int_equal(ck_custody_export(fx->ca, ART_A, fx->file), 0);
	buf = tu_read_file(fx->file, &len);
	flip_every_byte(buf, len, fx->ca->chain, fx->ca->st, 0);
	/* Cut short, or with something after it. */
	assert_int_equal(check(fx, buf, len - 1, fx->ca->st, &rep),
	    CK_E_PARSE);
	assert_int_equal(check(fx, buf, len / 2, fx->ca->st, &rep),
	    CK_E_PARSE);
	assert_int_equal(check(fx, buf, 0, fx->ca->st, &rep), CK_E_PARSE);
	{
		unsigned char *more = malloc(len + 1);

		assert_non_null(more);
		memcpy(more, buf, len);
		more[len] = 0;
		assert_int_equal(check(fx, more, len + 1, fx->ca->st, &rep),
		    CK_E_PARSE);
		free(more);
	}
	free(buf);
}

/* Sign JSON text with the CA key into a custody file. */
static void
sign_doc(struct fx *fx, const char *text, unsigned char **der,
    size_t *derlen)
{
	if (signer_cms_sign(fx->ca->signer, (const unsigned char *)text,
	    strlen(text), fx->ca->chain, der, derlen) != 0)
		fail_msg("signing: %s", ck_err_msg());
}

/* The custody document of ART as exported now, parsed. */
static json_t *
doc_of(struct fx *fx, const char *art)
{
	struct ck_custody_report rep;
	unsigned char *buf;
	const unsigned char *p;
	size_t len;
	CMS_ContentInfo *cms;
	BIO *bio;
	char *data;
	long dl;
	json_t *doc;

	assert_int_equal(ck_custody_export(fx->ca, art, fx->file), 0);
	assert_int_equal(ck_custody_check_file(fx->file, fx->ca->chain,
	    fx->ca->st, &rep), 0);
	buf = tu_read_file(fx->file, &len);
	p = buf;
	assert_non_null(cms = d2i_CMS_ContentInfo(NULL, &p, (long)len));
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(CMS_verify(cms, NULL, NULL, NULL, bio, CMS_BINARY |
	    CMS_NO_SIGNER_CERT_VERIFY), 1);
	dl = BIO_get_mem_data(bio, &data);
	assert_non_null(doc = json_loadb(data, (size_t)dl, 0, NULL));
	BIO_free(bio);
	CMS_ContentInfo_free(cms);
	free(buf);
	return doc;
}

/* Sign DOC (consumed) and check it against the store. */
static int
check_doc(struct fx *fx, json_t *doc, struct store *st,
    struct ck_custody_report *rep)
{
	unsigned char *der = NULL;
	size_t derlen = 0;
	char *text;
	int r;

	assert_non_null(text = json_dumps(doc, JSON_PRESERVE_ORDER));
	json_decref(doc);
	sign_doc(fx, text, &der, &derlen);
	free(text);
	r = check(fx, der, derlen, st, rep);
	OPENSSL_free(der);
	return r;
}

/* Recompute entry I's hash in DOC (as a forger with the key would). */
static void
rehash(json_t *doc, size_t i)
{
	json_t *e = json_array_get(json_object_get(doc, "entries"), i);
	struct store_custody s;
	unsigned char h[32];
	char hex[65];
	const char *ph;
	size_t k;

	memset(&s, 0, sizeof(s));
	s.id = json_integer_value(json_object_get(e, "id"));
	s.time = json_integer_value(json_object_get(e, "time_unix"));
	s.operator_name = (char *)json_string_value(json_object_get(e,
	    "operator"));
	s.event = (char *)json_string_value(json_object_get(e, "event"));
	s.artefact = (char *)json_string_value(json_object_get(e,
	    "artefact"));
	s.kind = (char *)json_string_value(json_object_get(e, "kind"));
	s.place = (char *)json_string_value(json_object_get(e, "place"));
	s.detail = (char *)json_string_value(json_object_get(e, "detail"));
	ph = json_string_value(json_object_get(e, "prev_hash"));
	for (k = 0; k < 32; k++) {
		unsigned int b;

		assert_int_equal(sscanf(ph + 2 * k, "%2x", &b), 1);
		s.prev_hash[k] = (unsigned char)b;
	}
	ck_custody_entry_hash(&s, h);
	hex32(h, hex);
	json_object_set_new(e, "hash", json_string(hex));
}

static void
test_file_entry_removed(void **state)
{
	struct fx *fx = *state;
	struct ck_custody_report rep;
	json_t *doc;

	unlock(fx);
	/* The middle one (ledger entry 3): a gap. Without the store the
	 * signed file alone cannot tell (its entries are not neighbours
	 * in the chain). */
	doc = doc_of(fx, ART_A);
	json_array_remove(json_object_get(doc, "entries"), 1);
	assert_int_equal(check_doc(fx, json_incref(doc), NULL, &rep), 0);
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 3);
	assert_contains(rep.reason, "gap");

	/* Another one in the middle (ledger entry 4). */
	doc = doc_of(fx, ART_A);
	json_array_remove(json_object_get(doc, "entries"), 2);
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 4);
	assert_contains(rep.reason, "gap");

	/* Cut short at the front. */
	doc = doc_of(fx, ART_A);
	json_array_remove(json_object_get(doc, "entries"), 0);
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 1);
	assert_contains(rep.reason, "gap");

	/* Cut short at the end: an older record, which is fine, and the
	 * check says how far behind it is. */
	doc = doc_of(fx, ART_A);
	json_array_remove(json_object_get(doc, "entries"), 3);
	json_array_remove(json_object_get(doc, "entries"), 2);
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), 0);
	assert_int_equal(rep.entries, 2);
	assert_int_equal(rep.last_id, 3);
	assert_int_equal(rep.later, 2);

	/* No entries at all. */
	doc = doc_of(fx, ART_A);
	json_array_clear(json_object_get(doc, "entries"));
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_PARSE);
}

static void
test_file_entry_forged(void **state)
{
	struct fx *fx = *state;
	struct ck_custody_report rep;
	json_t *doc, *e;

	unlock(fx);
	/* Altered, hash not recomputed: the file itself shows it. */
	doc = doc_of(fx, ART_A);
	e = json_array_get(json_object_get(doc, "entries"), 1);
	json_object_set_new(e, "place", json_string("USB stick #5"));
	assert_int_equal(check_doc(fx, doc, NULL, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 3);
	assert_contains(rep.reason, "altered");

	/* Altered and rehashed (a forger with the CA key): entry 4, its
	 * neighbour in the file, no longer links... */
	doc = doc_of(fx, ART_A);
	e = json_array_get(json_object_get(doc, "entries"), 1);
	json_object_set_new(e, "place", json_string("USB stick #5"));
	rehash(doc, 1);
	assert_int_equal(check_doc(fx, doc, NULL, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 4);
	assert_contains(rep.reason, "link");

	/* ...and the last entry, altered and rehashed, only the ledger
	 * can tell. */
	doc = doc_of(fx, ART_A);
	e = json_array_get(json_object_get(doc, "entries"), 3);
	json_object_set_new(e, "operator", json_string("mallory"));
	rehash(doc, 3);
	assert_int_equal(check_doc(fx, json_incref(doc), NULL, &rep), 0);
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 6);
	assert_contains(rep.reason, "differs");

	/* Another artefact's entry slipped in, relabelled and rehashed:
	 * its neighbours in the chain are in the file and do not link. */
	doc = doc_of(fx, ART_A);
	{
		json_t *b = doc_of(fx, ART_B);
		json_t *be = json_deep_copy(json_array_get(json_object_get(b,
		    "entries"), 1));

		json_object_set_new(be, "artefact", json_string(ART_A));
		json_object_set_new(be, "kind", json_string("data-backup"));
		json_array_insert_new(json_object_get(doc, "entries"), 3, be);
		rehash(doc, 3);
		json_decref(b);
	}
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 6);
	assert_contains(rep.reason, "link");

	/* An entry the ledger never had, beyond its end. */
	doc = doc_of(fx, ART_A);
	e = json_deep_copy(json_array_get(json_object_get(doc, "entries"),
	    3));
	json_object_set_new(e, "id", json_integer(100));
	json_object_set_new(e, "event", json_string("moved"));
	json_array_append_new(json_object_get(doc, "entries"), e);
	rehash(doc, 4);
	assert_int_equal(check_doc(fx, json_incref(doc), NULL, &rep), 0);
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 100);
	assert_contains(rep.reason, "not in the ledger");
}

static void
test_file_malformed(void **state)
{
	struct fx *fx = *state;
	struct ck_custody_report rep;
	json_t *doc, *e;

	unlock(fx);
#define BAD(stmt) do { \
	doc = doc_of(fx, ART_A); \
	e = json_array_get(json_object_get(doc, "entries"), 0); \
	(void)e; stmt; \
	assert_int_equal(check_doc(fx, doc, fx->ca->st, &rep), CK_E_PARSE); \
} while (0)
	BAD(json_object_set_new(doc, "format", json_string("certkeep-x/1")));
	BAD(json_object_set_new(doc, "extra", json_true()));
	BAD(json_object_del(doc, "kind"));
	BAD(json_object_set_new(doc, "kind", json_string("key-share")));
	BAD(json_object_set_new(doc, "artefact", json_string(ART_B)));
	BAD(json_object_set_new(doc, "exported_unix", json_integer(5)));
	BAD(json_object_set_new(doc, "entries", json_object()));
	BAD(json_object_set_new(e, "time",
	    json_string("2001-01-01T00:00:00Z")));
	BAD(json_object_set_new(e, "time_unix",
	    json_integer(INT64_C(253402300800))));
	BAD(json_object_set_new(e, "id", json_integer(0)));
	BAD(json_object_set_new(e, "id", json_string("1")));
	BAD(json_object_set_new(e, "event", json_string("lost")));
	BAD(json_object_set_new(e, "hash", json_string("00")));
	BAD(json_object_set_new(e, "hash", json_string("ZZ000000000000000000"
	    "00000000000000000000000000000000000000000000")));
	BAD(json_object_set_new(e, "detail", json_stringn("a\0b", 3)));
	BAD(json_object_set_new(e, "place", json_string("a\nb")));
	BAD(json_object_del(e, "place"));
	BAD(json_object_set_new(e, "more", json_null()));
	BAD(json_array_append_new(json_object_get(doc, "entries"),
	    json_string("x")));
	/* Out of order. */
	BAD(json_array_append(json_object_get(doc, "entries"), e));
#undef BAD

	/* Not JSON, and duplicate members. */
	{
		static const char dup[] = "{\"format\": \"certkeep-custody/"
		    "1\", \"format\": \"certkeep-custody/1\"}";
		static const char *const texts[] = {
			"", "not json", "[]", "{\"format\": 1}", dup,
		};
		unsigned char *der;
		size_t derlen, i;

		for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			sign_doc(fx, texts[i], &der, &derlen);
			assert_int_equal(check(fx, der, derlen, NULL, &rep),
			    CK_E_PARSE);
			OPENSSL_free(der);
		}
	}
}

static void
test_file_foreign_signer(void **state)
{
	struct fx *fx = *state, *other;
	struct ck_custody_report rep;
	unsigned char *buf;
	size_t len;

	unlock(fx);
	assert_int_equal(ck_custody_export(fx->ca, ART_A, fx->file), 0);
	buf = tu_read_file(fx->file, &len);

	/* Checked against another CA: refused, whatever it holds. */
	assert_non_null(other = fx_new(CK_KEY_RSA2048));
	assert_int_equal(ck_custody_check_buf(buf, len, other->ca->chain,
	    NULL, &rep), CK_E_BADSIG);
	assert_int_equal(ck_custody_check_buf(buf, len, NULL, NULL, &rep),
	    CK_E_INVAL);

	/* Another CA signing this CA's document: refused here. RSA signs
	 * fine. */
	assert_int_equal(ck_ca_unlock(other->ca, &other->src), 0);
	assert_int_equal(ck_custody_record(other->ca, "created", ART_A,
	    "data-backup", "elsewhere", NULL, NULL), 0);
	assert_int_equal(ck_custody_export(other->ca, ART_A, other->file), 0);
	free(buf);
	buf = tu_read_file(other->file, &len);
	assert_int_equal(ck_custody_check_buf(buf, len, other->ca->chain,
	    other->ca->st, &rep), 0);
	assert_int_equal(ck_custody_check_buf(buf, len, fx->ca->chain,
	    fx->ca->st, &rep), CK_E_BADSIG);
	/* An RSA-signed record resists flipped bits as well. */
	flip_every_byte(buf, len, other->ca->chain, other->ca->st, 3);
	free(buf);
	ck_ca_close(other->ca);
	tu_rmtree(other->dir);
	free(other);
}

static void
test_file_vs_rolled_back_ledger(void **state)
{
	struct fx *fx = *state;
	struct ck_custody_report rep;
	struct collected c;
	char hex[65], sql[256];

	unlock(fx);
	assert_int_equal(ck_custody_export(fx->ca, ART_A, fx->file), 0);
	/* The ledger loses its last entry consistently (head included), as
	 * a store restored from an older backup would: it verifies, but
	 * the record holds an entry it lacks. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_custody_iter(fx->ca->st, NULL, collect, &c), 0);
	hex32(c.e[NENTRIES - 2].hash, hex);
	collected_free(&c);
	snprintf(sql, sizeof(sql), "DELETE FROM custody WHERE id = %d;"
	    "UPDATE meta SET value = '%d:%s' WHERE key = 'custody_head'",
	    NENTRIES, NENTRIES - 1, hex);
	tamper(fx, sql);
	expect_ok(fx, NENTRIES - 1);
	assert_int_equal(ck_custody_check_file(fx->file, fx->ca->chain,
	    fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, NENTRIES);
	assert_contains(rep.reason, "not in the ledger");

	/* A tampered ledger fails the check of any file, naming it. */
	tamper(fx, "UPDATE custody SET place = 'x' WHERE id = 2");
	assert_int_equal(ck_custody_check_file(fx->file, fx->ca->chain,
	    fx->ca->st, &rep), CK_E_TAMPER);
	assert_int_equal(rep.first_bad, 2);
	assert_contains(rep.reason, "ledger itself");
}

static void
test_eddsa_ca(void **state)
{
	struct fx *fx = fx_new(CK_KEY_ED25519);
	unsigned char *der = NULL;
	size_t derlen = 0;

	(void)state;
	assert_non_null(fx);
	/* The ledger works; signed records need a key CMS can sign with. */
	assert_int_equal(ck_custody_record(fx->ca, "created", ART_A,
	    "data-backup", "host", NULL, NULL), 0);
	unlock(fx);
	assert_int_equal(ck_custody_export_check(fx->ca), CK_E_STATE);
	assert_int_equal(ck_custody_export(fx->ca, ART_A, fx->file),
	    CK_E_STATE);
	assert_int_equal(signer_cms_sign(fx->ca->signer,
	    (const unsigned char *)"x", 1, NULL, &der, &derlen), CK_E_STATE);
	assert_null(der);
	ck_ca_close(fx->ca);
	tu_rmtree(fx->dir);
	free(fx);
}

static void
test_list_json(void **state)
{
	struct fx *fx = *state;
	json_t *arr;
	char *text = NULL;

	assert_int_equal(ck_custody_list_json(fx->ca->st, ART_B, &text), 0);
	assert_non_null(arr = json_loads(text, 0, NULL));
	assert_int_equal(json_array_size(arr), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(arr, 1), "place")), "safe 2");
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(arr, 1), "id")), 5);
	json_decref(arr);
	free(text);
	assert_int_equal(ck_custody_list_json(fx->ca->st, NULL, &text), 0);
	assert_non_null(arr = json_loads(text, 0, NULL));
	assert_int_equal(json_array_size(arr), NENTRIES);
	json_decref(arr);
	free(text);
}

static void
test_file_sha256(void **state)
{
	char dir[4096], path[4200], hex[65];

	(void)state;
	tu_tmpdir(dir, sizeof(dir));
	tu_path(path, sizeof(path), dir, "abc");
	tu_write_file(path, "abc", 3, 0600);
	assert_int_equal(ck_custody_file_sha256(path, hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	tu_path(path, sizeof(path), dir, "missing");
	assert_int_equal(ck_custody_file_sha256(path, hex), CK_E_NOTFOUND);
	tu_rmtree(dir);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_chain),
		cmocka_unit_test(test_empty_ledger),
		T(test_defaults),
		T(test_invalid_refused),
		T(test_history_rules),
		T(test_follows_caller_tx),
		cmocka_unit_test(test_entry_hash),
		cmocka_unit_test(test_names),
		T(test_altered_fields),
		T(test_altered_hash),
		T(test_altered_and_rehashed),
		T(test_rewritten_tail),
		T(test_deleted_entry),
		T(test_deleted_first_entry),
		T(test_deleted_last_entries),
		T(test_head_removed),
		T(test_swapped_rows),
		T(test_swapped_far_rows),
		T(test_renumbered_entry),
		T(test_appended_forgery),
		T(test_impossible_history),
		T(test_export_verifies),
		T(test_export_flipped_byte),
		T(test_file_entry_removed),
		T(test_file_entry_forged),
		T(test_file_malformed),
		T(test_file_foreign_signer),
		T(test_file_vs_rolled_back_ledger),
		cmocka_unit_test(test_eddsa_ca),
		T(test_list_json),
		cmocka_unit_test(test_file_sha256),
	};
#undef T
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	tu_keys_free();
	return r;
}
