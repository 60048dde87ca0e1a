/*
 * test_audit.c - src/audit: the hash-chained audit log. Entries are
 * appended through the API, then the store file is tampered with using
 * sqlite3 directly, as an intruder with write access to it would.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "store/store.h"

#define NENTRIES 5

struct fx {
	char dir[4096];
	char path[4200];
	struct store *st;
	int64_t t0, t1;		/* time around the appends */
};

static const char *const actions[NENTRIES] = {
	"init", "issue", "issue", "revoke", "crl"
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char obj[32], detail[64];
	int i;

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->path, sizeof(fx->path), fx->dir, "store.db");
	if (store_open(fx->path, 1, &fx->st) != 0)
		return -1;
	fx->t0 = ck_time_now();
	for (i = 0; i < NENTRIES; i++) {
		snprintf(obj, sizeof(obj), "serial %X", 0xA0 + i);
		snprintf(detail, sizeof(detail), "entry number %d", i + 1);
		if (audit_append(fx->st, "alice", actions[i], obj,
		    i == 2 ? AUDIT_REFUSED : AUDIT_OK, detail) != 0)
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

	store_close(fx->st);
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

	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
	assert_int_equal(store_open(fx->path, 0, &fx->st), 0);
}

static void
expect_ok(struct fx *fx, int64_t entries)
{
	struct audit_report rep;
	int r = audit_verify(fx->st, &rep);

	if (r != 0)
		fail_msg("audit_verify: %d, first bad %lld: %s", r,
		    (long long)rep.first_bad, rep.reason);
	assert_int_equal(rep.entries, entries);
	assert_int_equal(rep.first_bad, 0);
}

static void
expect_tamper(struct fx *fx, int64_t first_bad, const char *why)
{
	struct audit_report rep;
	int r = audit_verify(fx->st, &rep);

	if (r != CK_E_TAMPER)
		fail_msg("tampering not detected (%d, %lld entries)", r,
		    (long long)rep.entries);
	assert_int_equal(rep.first_bad, first_bad);
	if (why != NULL)
		assert_contains(rep.reason, why);
}

struct collected {
	struct store_audit_entry e[16];
	size_t n;
};

static int
collect(const struct store_audit_entry *e, void *arg)
{
	struct collected *c = arg;
	struct store_audit_entry *d;

	assert_true(c->n < 16);
	d = &c->e[c->n++];
	*d = *e;
	d->user = strdup(e->user);
	d->action = strdup(e->action);
	d->object = strdup(e->object);
	d->result = strdup(e->result);
	d->detail = strdup(e->detail);
	return 0;
}

static void
collected_free(struct collected *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->e[i].user);
		free(c->e[i].action);
		free(c->e[i].object);
		free(c->e[i].result);
		free(c->e[i].detail);
	}
	c->n = 0;
}

/* ---- appending ---- */

static void
test_append_and_verify(void **state)
{
	struct fx *fx = *state;
	struct collected c;
	unsigned char zero[32] = { 0 }, h[32], last[32];
	int64_t last_id;
	size_t i;

	expect_ok(fx, NENTRIES);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_audit_iter(fx->st, 1, collect, &c), 0);
	assert_int_equal(c.n, NENTRIES);
	for (i = 0; i < c.n; i++) {
		char want[64];

		assert_int_equal(c.e[i].id, (int64_t)i + 1);
		assert_true(c.e[i].time >= fx->t0 && c.e[i].time <= fx->t1);
		assert_string_equal(c.e[i].user, "alice");
		assert_string_equal(c.e[i].action, actions[i]);
		assert_string_equal(c.e[i].result,
		    i == 2 ? "refused" : "ok");
		snprintf(want, sizeof(want), "entry number %zu", i + 1);
		assert_string_equal(c.e[i].detail, want);
		/* The chain: each entry names the previous one's hash. */
		if (i == 0)
			assert_memory_equal(c.e[i].prev_hash, zero, 32);
		else
			assert_memory_equal(c.e[i].prev_hash,
			    c.e[i - 1].hash, 32);
		audit_entry_hash(&c.e[i], h);
		assert_memory_equal(h, c.e[i].hash, 32);
	}
	assert_int_equal(store_audit_last(fx->st, &last_id, last), 0);
	assert_int_equal(last_id, NENTRIES);
	assert_memory_equal(last, c.e[NENTRIES - 1].hash, 32);
	collected_free(&c);
}

static void
test_empty_log(void **state)
{
	char dir[4096], path[4200];
	struct store *st = NULL;
	struct audit_report rep;

	(void)state;
	tu_tmpdir(dir, sizeof(dir));
	tu_path(path, sizeof(path), dir, "store.db");
	assert_int_equal(store_open(path, 1, &st), 0);
	assert_int_equal(audit_verify(st, &rep), 0);
	assert_int_equal(rep.entries, 0);
	assert_int_equal(rep.first_bad, 0);
	store_close(st);
	tu_rmtree(dir);
}

static void
test_append_defaults(void **state)
{
	struct fx *fx = *state;
	struct collected c;

	assert_int_equal(audit_append(fx->st, NULL, "open", NULL, AUDIT_OK,
	    NULL), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_audit_iter(fx->st, NENTRIES + 1, collect, &c),
	    0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.e[0].id, NENTRIES + 1);
	/* No user given: the operating-system user. */
	assert_string_equal(c.e[0].user, audit_os_user());
	assert_true(strlen(audit_os_user()) > 0);
	assert_string_equal(c.e[0].object, "");
	assert_string_equal(c.e[0].detail, "");
	collected_free(&c);
	expect_ok(fx, NENTRIES + 1);
}

/* A batch chains exactly as the same entries appended one by one, writes
 * the head once, and is all or nothing. */
static void
test_append_many(void **state)
{
	struct fx *fx = *state;
	struct audit_item items[AUDIT_BATCH_MAX + 1];
	struct collected c;
	char objs[AUDIT_BATCH_MAX + 1][16];
	unsigned char h[32], last[32];
	int64_t last_id, seq0, seq1;
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(objs[i], sizeof(objs[i]), "B%zu", i);
		items[i].user = i == 1 ? NULL : "carol";
		items[i].action = "issue";
		items[i].object = objs[i];
		items[i].result = AUDIT_OK;
		items[i].detail = i == 2 ? NULL : "batched";
	}
	assert_int_equal(store_change_seq(fx->st, &seq0), 0);
	assert_int_equal(audit_append_many(fx->st, items, 3), 0);
	assert_int_equal(store_change_seq(fx->st, &seq1), 0);
	/* Three entries and one head. */
	assert_int_equal(seq1 - seq0, 4);
	expect_ok(fx, NENTRIES + 3);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_audit_iter(fx->st, NENTRIES, collect, &c), 0);
	assert_int_equal(c.n, 4);
	for (i = 1; i < 4; i++) {
		assert_int_equal(c.e[i].id, NENTRIES + (int64_t)i);
		assert_memory_equal(c.e[i].prev_hash, c.e[i - 1].hash, 32);
		audit_entry_hash(&c.e[i], h);
		assert_memory_equal(h, c.e[i].hash, 32);
		assert_string_equal(c.e[i].object, objs[i - 1]);
		assert_int_equal(c.e[i].change_seq, seq0 + (int64_t)i);
	}
	assert_string_equal(c.e[1].user, "carol");
	assert_string_equal(c.e[2].user, audit_os_user());
	assert_string_equal(c.e[1].detail, "batched");
	assert_string_equal(c.e[3].detail, "");
	assert_int_equal(store_audit_last(fx->st, &last_id, last), 0);
	assert_int_equal(last_id, NENTRIES + 3);
	assert_memory_equal(last, c.e[3].hash, 32);
	collected_free(&c);

	/* Too many at once: refused, nothing written. */
	for (i = 0; i <= AUDIT_BATCH_MAX; i++)
		items[i] = items[0];
	assert_int_equal(audit_append_many(fx->st, items, AUDIT_BATCH_MAX + 1),
	    CK_E_INVAL);
	/* A failing entry (a NULL action) fails the batch: nothing of it
	 * stays, and the log goes on from where it was. */
	items[1].action = NULL;
	assert_int_not_equal(audit_append_many(fx->st, items, 3), 0);
	assert_int_equal(audit_append_many(fx->st, items, 0), 0);
	expect_ok(fx, NENTRIES + 3);
	assert_int_equal(audit_append_many(fx->st, items, 1), 0);
	expect_ok(fx, NENTRIES + 4);
}

static void
test_append_follows_caller_tx(void **state)
{
	struct fx *fx = *state;

	/* Rolled back with the operation it records. */
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(audit_append(fx->st, "bob", "issue", "x", AUDIT_OK,
	    NULL), 0);
	assert_int_equal(store_meta_set(fx->st, "other", "change"), 0);
	store_tx_rollback(fx->st);
	expect_ok(fx, NENTRIES);

	/* Committed with it. */
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(audit_append(fx->st, "bob", "issue", "x", AUDIT_OK,
	    NULL), 0);
	assert_int_equal(audit_append(fx->st, "bob", "issue", "y", AUDIT_OK,
	    NULL), 0);
	assert_int_equal(store_tx_commit(fx->st), 0);
	expect_ok(fx, NENTRIES + 2);
}

static void
test_entry_hash(void **state)
{
	struct store_audit_entry e, f;
	unsigned char h1[32], h2[32];

	(void)state;
	memset(&e, 0, sizeof(e));
	e.id = 7;
	e.time = 1700000000;
	e.user = (char *)"alice";
	e.action = (char *)"issue";
	e.object = (char *)"AB";
	e.result = (char *)"ok";
	e.detail = (char *)"c";
	memset(e.prev_hash, 0x55, 32);
	audit_entry_hash(&e, h1);
	audit_entry_hash(&e, h2);
	assert_memory_equal(h1, h2, 32);	/* deterministic */

	/* Every field counts. */
#define CHANGED(stmt) do { \
	f = e; stmt; audit_entry_hash(&f, h2); \
	assert_memory_not_equal(h1, h2, 32); \
} while (0)
	CHANGED(f.id = 8);
	CHANGED(f.time = 1700000001);
	CHANGED(f.user = (char *)"alicf");
	CHANGED(f.action = (char *)"revoke");
	CHANGED(f.object = (char *)"AC");
	CHANGED(f.result = (char *)"refused");
	CHANGED(f.detail = (char *)"d");
	CHANGED(f.prev_hash[31] ^= 1);
	/* Fields are length-prefixed: moving a boundary changes it. */
	CHANGED((f.object = (char *)"A", f.result = (char *)"Bok"));
	CHANGED((f.result = (char *)"okc", f.detail = (char *)""));
#undef CHANGED
	/* The stored hash itself is not an input. */
	f = e;
	memset(f.hash, 0xff, 32);
	audit_entry_hash(&f, h2);
	assert_memory_equal(h1, h2, 32);
}

/* ---- tampering ---- */

static void
test_altered_fields(void **state)
{
	struct fx *fx = *state;
	static const char *const alter[][2] = {
		{ "UPDATE audit SET detail = detail || 'x' WHERE id = 3",
		  "UPDATE audit SET detail = substr(detail, 1, "
		  "length(detail) - 1) WHERE id = 3" },
		{ "UPDATE audit SET result = 'ok' WHERE id = 3",
		  "UPDATE audit SET result = 'refused' WHERE id = 3" },
		{ "UPDATE audit SET user = 'mallory' WHERE id = 3",
		  "UPDATE audit SET user = 'alice' WHERE id = 3" },
		{ "UPDATE audit SET action = 'crl' WHERE id = 3",
		  "UPDATE audit SET action = 'issue' WHERE id = 3" },
		{ "UPDATE audit SET object = object || 'x' WHERE id = 3",
		  "UPDATE audit SET object = substr(object, 1, "
		  "length(object) - 1) WHERE id = 3" },
		{ "UPDATE audit SET time = time - 3600 WHERE id = 3",
		  "UPDATE audit SET time = time + 3600 WHERE id = 3" },
		{ "UPDATE audit SET hash = zeroblob(32) WHERE id = 3", NULL },
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
test_altered_detail(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "UPDATE audit SET detail = 'nothing happened' WHERE id = 3");
	expect_tamper(fx, 3, "altered");
}

static void
test_altered_and_rehashed(void **state)
{
	struct fx *fx = *state;
	struct collected c;
	unsigned char h[32];
	char hex[65], sql[256];
	size_t i;

	/* Alter entry 3 and give it a correct hash of its own: the next
	 * entry's link no longer matches. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_audit_iter(fx->st, 3, collect, &c), 0);
	free(c.e[0].detail);
	c.e[0].detail = strdup("nothing happened");
	audit_entry_hash(&c.e[0], h);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	snprintf(sql, sizeof(sql), "UPDATE audit SET detail = "
	    "'nothing happened', hash = x'%s' WHERE id = 3", hex);
	collected_free(&c);
	tamper(fx, sql);
	expect_tamper(fx, 4, "link");
}

static void
test_rewritten_tail(void **state)
{
	struct fx *fx = *state;
	struct collected c;
	unsigned char prev[32];
	char hex[65], phex[65], sql[512];
	size_t i, j;

	/* Rewrite entries 3..5 into a consistent chain; only the recorded
	 * head of the log can tell. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_audit_iter(fx->st, 1, collect, &c), 0);
	memcpy(prev, c.e[1].hash, 32);
	for (i = 2; i < NENTRIES; i++) {
		free(c.e[i].detail);
		c.e[i].detail = strdup("rewritten");
		memcpy(c.e[i].prev_hash, prev, 32);
		audit_entry_hash(&c.e[i], c.e[i].hash);
		memcpy(prev, c.e[i].hash, 32);
		for (j = 0; j < 32; j++) {
			snprintf(hex + 2 * j, 3, "%02x", c.e[i].hash[j]);
			snprintf(phex + 2 * j, 3, "%02x", c.e[i].prev_hash[j]);
		}
		snprintf(sql, sizeof(sql), "UPDATE audit SET detail = "
		    "'rewritten', prev_hash = x'%s', hash = x'%s' WHERE id = "
		    "%lld", phex, hex, (long long)c.e[i].id);
		tamper(fx, sql);
	}
	collected_free(&c);
	expect_tamper(fx, NENTRIES, "head");
}

static void
test_deleted_entry(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM audit WHERE id = 2");
	expect_tamper(fx, 2, "missing");
}

static void
test_deleted_first_entry(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM audit WHERE id = 1");
	expect_tamper(fx, 1, NULL);
}

static void
test_swapped_rows(void **state)
{
	struct fx *fx = *state;

	tamper(fx,
	    "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (2, 4);"
	    "UPDATE audit SET (time, user, action, object, result, detail, "
	    "  prev_hash, hash, change_seq) = (SELECT time, user, action, "
	    "  object, result, detail, prev_hash, hash, change_seq FROM t "
	    "  WHERE t.id = 6 - audit.id) WHERE id IN (2, 4);");
	expect_tamper(fx, 2, NULL);
}

static void
test_swapped_adjacent_rows(void **state)
{
	struct fx *fx = *state;

	tamper(fx,
	    "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (3, 4);"
	    "UPDATE audit SET (time, user, action, object, result, detail, "
	    "  prev_hash, hash, change_seq) = (SELECT time, user, action, "
	    "  object, result, detail, prev_hash, hash, change_seq FROM t "
	    "  WHERE t.id = 7 - audit.id) WHERE id IN (3, 4);");
	expect_tamper(fx, 3, NULL);
}

static void
test_deleted_last_entry(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM audit WHERE id = 5");
	expect_tamper(fx, 5, "deleted");
}

static void
test_deleted_last_entries(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM audit WHERE id >= 4");
	expect_tamper(fx, 4, "deleted");
}

static void
test_deleted_everything(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM audit");
	expect_tamper(fx, 1, NULL);
}

static void
test_renumbered_entry(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "UPDATE audit SET id = 9 WHERE id = 5");
	expect_tamper(fx, 5, NULL);
}

static void
test_head_removed(void **state)
{
	struct fx *fx = *state;

	tamper(fx, "DELETE FROM meta WHERE key = 'audit_head'");
	expect_tamper(fx, 1, "head");
}

static void
test_appended_forgery(void **state)
{
	struct fx *fx = *state;
	struct collected c;
	char sql[512], phex[65];
	size_t j;

	/* A well-linked entry added behind the log's back. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_audit_iter(fx->st, NENTRIES, collect, &c), 0);
	free(c.e[0].detail);
	c.e[0].detail = strdup("forged");
	free(c.e[0].object);
	c.e[0].object = strdup("x");
	c.e[0].id = NENTRIES + 1;
	memcpy(c.e[0].prev_hash, c.e[0].hash, 32);
	for (j = 0; j < 32; j++)
		snprintf(phex + 2 * j, 3, "%02x", c.e[0].prev_hash[j]);
	audit_entry_hash(&c.e[0], c.e[0].hash);
	{
		char hex[65];

		for (j = 0; j < 32; j++)
			snprintf(hex + 2 * j, 3, "%02x", c.e[0].hash[j]);
		snprintf(sql, sizeof(sql), "INSERT INTO audit VALUES (%lld, "
		    "%lld, 'alice', 'crl', 'x', 'ok', 'forged', x'%s', x'%s', "
		    "99)", (long long)c.e[0].id, (long long)c.e[0].time, phex,
		    hex);
	}
	collected_free(&c);
	tamper(fx, sql);
	expect_tamper(fx, NENTRIES + 1, NULL);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_append_and_verify),
		cmocka_unit_test(test_empty_log),
		T(test_append_defaults),
		T(test_append_follows_caller_tx),
		T(test_append_many),
		cmocka_unit_test(test_entry_hash),
		T(test_altered_fields),
		T(test_altered_detail),
		T(test_altered_and_rehashed),
		T(test_rewritten_tail),
		T(test_deleted_entry),
		T(test_deleted_first_entry),
		T(test_swapped_rows),
		T(test_swapped_adjacent_rows),
		T(test_deleted_last_entry),
		T(test_deleted_last_entries),
		T(test_deleted_everything),
		T(test_renumbered_entry),
		T(test_head_removed),
		T(test_appended_forgery),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
