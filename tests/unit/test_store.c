/*
 * test_store.c - src/store (SQLite backend): creation, the change
 * sequence, certificate states, listing filters, revocations, CRL numbers,
 * nested transactions (savepoints), metadata, configuration history,
 * audit rows, API tokens.
 *
 * Some checks read the database file with sqlite3 directly, to see what
 * is really on disk.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "store/store.h"

struct fx {
	char dir[4096];
	char path[4200];
	struct store *st;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->path, sizeof(fx->path), fx->dir, "store.db");
	if (store_open(fx->path, 1, &fx->st) != 0) {
		fprintf(stderr, "store_open: %s\n", ck_err_msg());
		return -1;
	}
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

static int64_t
seq_now(struct store *st)
{
	int64_t v = -1;

	assert_int_equal(store_change_seq(st, &v), 0);
	return v;
}

/* One integer from the database file, through a separate connection. */
static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static struct store_cert
rec(const char *serial, const char *profile, const char *subject,
    const char *names, int64_t not_after, int64_t created_at)
{
	struct store_cert c;

	memset(&c, 0, sizeof(c));
	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	c.status = STORE_CERT_PENDING;
	c.subject = (char *)subject;
	c.names = (char *)names;
	c.profile = (char *)profile;
	c.requester = (char *)"tester";
	memset(c.tbs_sha256, 'a', 64);
	c.tbs_sha256[64] = '\0';
	c.not_before = created_at - 60;
	c.not_after = not_after;
	c.created_at = created_at;
	c.reason = -1;
	return c;
}

static void
insert(struct store *st, const char *serial, const char *profile,
    const char *subject, const char *names, int64_t not_after,
    int64_t created_at)
{
	struct store_cert c = rec(serial, profile, subject, names, not_after,
	    created_at);
	int r = store_cert_insert_pending(st, &c);

	if (r != 0)
		fail_msg("insert %s: %s", serial, ck_err_msg());
}

static struct store_cert *
get(struct store *st, const char *serial)
{
	struct store_cert *c = NULL;

	assert_int_equal(store_cert_get(st, serial, &c), 0);
	assert_non_null(c);
	return c;
}

static const unsigned char der1[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

/* ---- open / create ---- */

static void
test_open_create(void **state)
{
	char dir[4096], path[4200], missing[4200];
	struct store *st = NULL;
	char *v = NULL;

	(void)state;
	tu_tmpdir(dir, sizeof(dir));
	tu_path(path, sizeof(path), dir, "store.db");
	tu_path(missing, sizeof(missing), dir, "missing.db");

	assert_int_equal(store_open(path, 1, &st), 0);
	assert_int_equal(tu_file_mode(path), 0600);
	assert_int_equal(seq_now(st), 0);
	assert_int_equal(store_meta_set(st, "k", "v"), 0);
	store_close(st);
	st = NULL;

	/* Creating again refuses, and leaves the store as it was. */
	ck_err_clear();
	assert_int_equal(store_open(path, 1, &st), CK_E_EXISTS);
	assert_null(st);
	assert_int_equal(store_open(path, 0, &st), 0);
	assert_int_equal(store_meta_get(st, "k", &v), 0);
	assert_string_equal(v, "v");
	free(v);
	assert_int_equal(seq_now(st), 1);
	store_close(st);
	st = NULL;

	/* Opening (not creating) a missing store does not create it. */
	assert_int_equal(store_open(missing, 0, &st), CK_E_NOTFOUND);
	assert_null(st);
	assert_false(ck_fs_exists(missing));

	/* A file that is not a store is refused. */
	{
		static const char junk[] = "this is not a database\n";

		tu_write_file(missing, junk, strlen(junk), 0600);
	}
	assert_int_not_equal(store_open(missing, 0, &st), 0);
	assert_null(st);
	store_close(NULL);
	tu_rmtree(dir);
}

static void
test_status_names(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < STORE_CERT_STATUS__MAX; i++)
		assert_int_equal(store_cert_status_parse(
		    store_cert_status_name((enum store_cert_status)i)), i);
	assert_string_equal(store_cert_status_name(STORE_CERT_REVOKED),
	    "revoked");
	assert_string_equal(store_cert_status_name(STORE_CERT_STATUS__MAX),
	    "unknown");
	assert_int_equal(store_cert_status_parse("Issued"), -1);
	assert_int_equal(store_cert_status_parse(""), -1);
}

/* ---- change sequence ---- */

static void
test_change_seq(void **state)
{
	struct fx *fx = *state;
	struct store_cert *c;
	struct store_audit_entry e;
	uint64_t crl = 0;
	int64_t s0, s;

	s0 = seq_now(fx->st);
	assert_int_equal(s0, 0);

	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	s = seq_now(fx->st);
	assert_int_equal(s, s0 + 1);
	assert_int_equal(raw_int(fx->path,
	    "SELECT change_seq FROM meta WHERE key = 'a'"), s);

	insert(fx->st, "A1", "p", "CN=a", "", 5000, 100);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	c = get(fx->st, "A1");
	assert_int_equal(c->change_seq, s);
	store_cert_free(c);

	assert_int_equal(store_cert_mark_issued(fx->st, "A1", der1,
	    sizeof(der1)), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	c = get(fx->st, "A1");
	assert_int_equal(c->change_seq, s);
	store_cert_free(c);

	assert_int_equal(store_cert_revoke(fx->st, "A1", 200, 1), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	c = get(fx->st, "A1");
	assert_int_equal(c->change_seq, s);
	store_cert_free(c);

	assert_int_equal(store_crl_next_number(fx->st, &crl), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	assert_int_equal(raw_int(fx->path,
	    "SELECT change_seq FROM crl_counter"), s);

	assert_int_equal(store_crl_insert(fx->st, crl, 300, 400, der1,
	    sizeof(der1)), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	assert_int_equal(raw_int(fx->path,
	    "SELECT change_seq FROM crls WHERE number = 1"), s);

	memset(&e, 0, sizeof(e));
	e.id = 1;
	e.time = 500;
	e.user = (char *)"u";
	e.action = (char *)"a";
	e.object = (char *)"o";
	e.result = (char *)"ok";
	e.detail = (char *)"";
	assert_int_equal(store_audit_insert(fx->st, &e), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	assert_int_equal(e.change_seq, s);
	assert_int_equal(raw_int(fx->path,
	    "SELECT change_seq FROM audit WHERE id = 1"), s);

	assert_int_equal(store_config_insert(fx->st, 600, "u",
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    "[ca]\n"), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	assert_int_equal(raw_int(fx->path,
	    "SELECT max(change_seq) FROM config_history"), s);

	/* Updating a setting restamps it. */
	assert_int_equal(store_meta_set(fx->st, "a", "2"), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	s++;
	assert_int_equal(raw_int(fx->path,
	    "SELECT change_seq FROM meta WHERE key = 'a'"), s);

	/* Refused mutations hand out nothing. */
	assert_int_equal(store_cert_revoke(fx->st, "A1", 700, 1), CK_E_STATE);
	assert_int_equal(store_cert_mark_issued(fx->st, "A1", der1,
	    sizeof(der1)), CK_E_STATE);
	insert(fx->st, "B2", "p", "CN=b", "", 5000, 100);
	s++;
	{
		struct store_cert dup = rec("B2", "p", "CN=b", "", 5000, 100);

		assert_int_equal(store_cert_insert_pending(fx->st, &dup),
		    CK_E_EXISTS);
	}
	assert_int_equal(seq_now(fx->st), s);

	/* Reading hands out nothing either. */
	c = get(fx->st, "B2");
	store_cert_free(c);
	assert_int_equal(seq_now(fx->st), s);
}

static void
test_change_seq_one_per_mutation_in_tx(void **state)
{
	struct fx *fx = *state;
	struct store_cert *a, *b;
	int64_t s0 = seq_now(fx->st);

	/* Inside one transaction each mutation still gets its own value. */
	assert_int_equal(store_tx_begin(fx->st), 0);
	insert(fx->st, "A1", "p", "CN=a", "", 5000, 100);
	insert(fx->st, "B2", "p", "CN=b", "", 5000, 100);
	assert_int_equal(store_tx_commit(fx->st), 0);
	assert_int_equal(seq_now(fx->st), s0 + 2);
	a = get(fx->st, "A1");
	b = get(fx->st, "B2");
	assert_true(b->change_seq > a->change_seq);
	assert_true(a->change_seq > s0);
	store_cert_free(a);
	store_cert_free(b);
}

/* ---- certificate states ---- */

static void
test_cert_fields(void **state)
{
	struct fx *fx = *state;
	struct store_cert in = rec("0ABC", "tls-server", "CN=www.example.com",
	    "DNS:www.example.com", 9000, 1000);
	struct store_cert *c;

	in.is_ca = 1;
	in.requester = (char *)"alice";
	memcpy(in.tbs_sha256, "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef", 65);
	assert_int_equal(store_cert_insert_pending(fx->st, &in), 0);
	c = get(fx->st, "0ABC");
	assert_string_equal(c->serial, "0ABC");
	assert_int_equal(c->status, STORE_CERT_PENDING);
	assert_string_equal(c->subject, "CN=www.example.com");
	assert_string_equal(c->names, "DNS:www.example.com");
	assert_string_equal(c->profile, "tls-server");
	assert_string_equal(c->requester, "alice");
	assert_string_equal(c->tbs_sha256, in.tbs_sha256);
	assert_int_equal(c->not_before, 940);
	assert_int_equal(c->not_after, 9000);
	assert_int_equal(c->created_at, 1000);
	assert_int_equal(c->is_ca, 1);
	assert_null(c->der);
	assert_int_equal(c->der_len, 0);
	assert_int_equal(c->revoked_at, 0);
	assert_int_equal(c->reason, -1);
	store_cert_free(c);
	store_cert_free(NULL);

	assert_int_equal(store_cert_get(fx->st, "FFFF", &c), CK_E_NOTFOUND);
}

static void
test_transitions(void **state)
{
	struct fx *fx = *state;
	struct store_cert *c;

	insert(fx->st, "A1", "p", "CN=a", "", 5000, 100);
	/* A pending certificate cannot be revoked: it was never issued. */
	ck_err_clear();
	assert_int_equal(store_cert_revoke(fx->st, "A1", 150, 1), CK_E_STATE);
	assert_contains(ck_err_msg(), "A1");

	assert_int_equal(store_cert_mark_issued(fx->st, "A1", der1,
	    sizeof(der1)), 0);
	c = get(fx->st, "A1");
	assert_int_equal(c->status, STORE_CERT_ISSUED);
	assert_int_equal(c->der_len, sizeof(der1));
	assert_memory_equal(c->der, der1, sizeof(der1));
	assert_int_equal(c->reason, -1);
	store_cert_free(c);

	/* Issued only once; never back to failed. */
	ck_err_clear();
	assert_int_equal(store_cert_mark_issued(fx->st, "A1", der1,
	    sizeof(der1)), CK_E_STATE);
	assert_contains(ck_err_msg(), "not pending");
	assert_int_equal(store_cert_mark_failed(fx->st, "A1"), CK_E_STATE);

	assert_int_equal(store_cert_revoke(fx->st, "A1", 200, 4), 0);
	c = get(fx->st, "A1");
	assert_int_equal(c->status, STORE_CERT_REVOKED);
	assert_int_equal(c->revoked_at, 200);
	assert_int_equal(c->reason, 4);
	/* The certificate itself is kept. */
	assert_memory_equal(c->der, der1, sizeof(der1));
	store_cert_free(c);

	/* Revoked once; the first revocation stands. */
	ck_err_clear();
	assert_int_equal(store_cert_revoke(fx->st, "A1", 300, 1), CK_E_STATE);
	assert_contains(ck_err_msg(), "already revoked");
	assert_int_equal(store_cert_mark_issued(fx->st, "A1", der1,
	    sizeof(der1)), CK_E_STATE);
	assert_int_equal(store_cert_mark_failed(fx->st, "A1"), CK_E_STATE);
	c = get(fx->st, "A1");
	assert_int_equal(c->status, STORE_CERT_REVOKED);
	assert_int_equal(c->revoked_at, 200);
	assert_int_equal(c->reason, 4);
	store_cert_free(c);

	/* pending -> failed, and failed is final. */
	insert(fx->st, "B2", "p", "CN=b", "", 5000, 100);
	assert_int_equal(store_cert_mark_failed(fx->st, "B2"), 0);
	c = get(fx->st, "B2");
	assert_int_equal(c->status, STORE_CERT_FAILED);
	assert_null(c->der);
	store_cert_free(c);
	assert_int_equal(store_cert_mark_issued(fx->st, "B2", der1,
	    sizeof(der1)), CK_E_STATE);
	assert_int_equal(store_cert_revoke(fx->st, "B2", 300, 1), CK_E_STATE);
	assert_int_equal(store_cert_mark_failed(fx->st, "B2"), CK_E_STATE);

	/* Unknown serials. */
	assert_int_equal(store_cert_revoke(fx->st, "C3", 300, 1),
	    CK_E_NOTFOUND);
	assert_int_not_equal(store_cert_mark_issued(fx->st, "C3", der1,
	    sizeof(der1)), 0);
	assert_int_not_equal(store_cert_mark_failed(fx->st, "C3"), 0);
	assert_int_equal(store_cert_get(fx->st, "C3", &c), CK_E_NOTFOUND);
}

static void
test_duplicate_serial(void **state)
{
	struct fx *fx = *state;
	struct store_cert dup = rec("A1", "other", "CN=other", "", 1, 1);
	struct store_cert *c;

	insert(fx->st, "A1", "p", "CN=a", "", 5000, 100);
	ck_err_clear();
	assert_int_equal(store_cert_insert_pending(fx->st, &dup), CK_E_EXISTS);
	assert_contains(ck_err_msg(), "A1");
	/* Also once the first one failed: a serial is never reused. */
	assert_int_equal(store_cert_mark_failed(fx->st, "A1"), 0);
	assert_int_equal(store_cert_insert_pending(fx->st, &dup), CK_E_EXISTS);
	c = get(fx->st, "A1");
	assert_string_equal(c->subject, "CN=a");
	assert_int_equal(c->status, STORE_CERT_FAILED);
	store_cert_free(c);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certs"), 1);
}

/* ---- listing ---- */

struct seen {
	char serial[16][80];
	size_t n;
	int stop_after;		/* return 7 after this many; 0: never */
};

static int
collect(const struct store_cert *c, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < 16);
	snprintf(s->serial[s->n], sizeof(s->serial[0]), "%s", c->serial);
	s->n++;
	if (s->stop_after > 0 && (int)s->n >= s->stop_after)
		return 7;
	return 0;
}

static struct store_cert_filter
no_filter(void)
{
	struct store_cert_filter f;

	memset(&f, 0, sizeof(f));
	f.status = -1;
	return f;
}

/* List with `f` and compare with the expected serials, in order. */
static void
expect_list(struct store *st, const struct store_cert_filter *f,
    const char *want)
{
	struct seen s;
	char got[512] = "";
	size_t i;

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_list(st, f, collect, &s), 0);
	for (i = 0; i < s.n; i++) {
		size_t off = strlen(got);
		snprintf(got + off, sizeof(got) - off, "%s%s", i ? " " : "",
		    s.serial[i]);
	}
	assert_string_equal(got, want);
}

static void
fill(struct store *st)
{
	insert(st, "11", "tls-server", "CN=alpha.example.com",
	    "DNS:alpha.example.com", 1000, 100);
	assert_int_equal(store_cert_mark_issued(st, "11", der1, sizeof(der1)),
	    0);
	insert(st, "22", "tls-server", "CN=beta.example.com",
	    "DNS:beta.example.com, IP:10.0.0.2", 2000, 200);
	assert_int_equal(store_cert_mark_issued(st, "22", der1, sizeof(der1)),
	    0);
	assert_int_equal(store_cert_revoke(st, "22", 250, 1), 0);
	insert(st, "33", "tls-client", "CN=Carol", "email:carol@example.org",
	    3000, 300);
	insert(st, "44", "sub-ca", "CN=Issuing CA", "", 4000, 400);
	assert_int_equal(store_cert_mark_issued(st, "44", der1, sizeof(der1)),
	    0);
	insert(st, "55", "tls-client", "CN=Dave", "email:dave@example.org",
	    5000, 500);
	assert_int_equal(store_cert_mark_failed(st, "55"), 0);
}

static void
test_list_filters(void **state)
{
	struct fx *fx = *state;
	struct store_cert_filter f;
	struct seen s;
	int64_t mark;

	fill(fx->st);

	f = no_filter();
	expect_list(fx->st, &f, "55 44 33 22 11");	/* newest first */

	f.status = STORE_CERT_ISSUED;
	expect_list(fx->st, &f, "44 11");
	f.status = STORE_CERT_REVOKED;
	expect_list(fx->st, &f, "22");
	f.status = STORE_CERT_PENDING;
	expect_list(fx->st, &f, "33");
	f.status = STORE_CERT_FAILED;
	expect_list(fx->st, &f, "55");

	f = no_filter();
	f.expired = 1;
	f.now = 2500;
	expect_list(fx->st, &f, "22 11");
	f.now = 1000;		/* not_after < now, strictly */
	expect_list(fx->st, &f, "");

	f = no_filter();
	f.expiring_before = 3000;
	expect_list(fx->st, &f, "22 11");
	f.expiring_before = 3001;
	expect_list(fx->st, &f, "33 22 11");

	f = no_filter();
	f.profile = "tls-client";
	expect_list(fx->st, &f, "55 33");
	f.profile = "tls";
	expect_list(fx->st, &f, "");

	f = no_filter();
	f.name = "EXAMPLE.ORG";
	expect_list(fx->st, &f, "55 33");
	f.name = "beta";
	expect_list(fx->st, &f, "22");
	f.name = "10.0.0.2";
	expect_list(fx->st, &f, "22");
	f.name = "issuing";	/* in the subject only */
	expect_list(fx->st, &f, "44");
	f.name = "nothing-like-this";
	expect_list(fx->st, &f, "");

	f = no_filter();
	f.limit = 2;
	expect_list(fx->st, &f, "55 44");
	f.limit = 1;
	f.status = STORE_CERT_ISSUED;
	expect_list(fx->st, &f, "44");

	/* Filters combine. */
	f = no_filter();
	f.status = STORE_CERT_ISSUED;
	f.profile = "tls-server";
	expect_list(fx->st, &f, "11");
	f.name = "beta";
	expect_list(fx->st, &f, "");

	/* Only what changed after a given point. */
	mark = seq_now(fx->st);
	f = no_filter();
	f.after_seq = mark;
	expect_list(fx->st, &f, "");
	assert_int_equal(store_cert_revoke(fx->st, "11", 600, 0), 0);
	expect_list(fx->st, &f, "11");
	f.after_seq = 0;
	expect_list(fx->st, &f, "55 44 33 22 11");

	/* The callback can stop the walk; its value is returned. */
	f = no_filter();
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(store_cert_list(fx->st, &f, collect, &s), 7);
	assert_int_equal(s.n, 2);
}

static void
test_revoked_list(void **state)
{
	struct fx *fx = *state;
	struct store_revoked *v = NULL;
	size_t n = 99;

	assert_int_equal(store_revoked_list(fx->st, 0, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
	v = NULL;

	fill(fx->st);
	assert_int_equal(store_cert_revoke(fx->st, "11", 600, 0), 0);
	assert_int_equal(store_cert_revoke(fx->st, "44", 550, 5), 0);

	assert_int_equal(store_revoked_list(fx->st, 0, &v, &n), 0);
	assert_int_equal(n, 3);
	/* In order of revocation. */
	assert_string_equal(v[0].serial, "22");
	assert_int_equal(v[0].revoked_at, 250);
	assert_int_equal(v[0].reason, 1);
	assert_string_equal(v[1].serial, "44");
	assert_int_equal(v[1].reason, 5);
	assert_string_equal(v[2].serial, "11");
	assert_int_equal(v[2].revoked_at, 600);
	assert_int_equal(v[2].reason, 0);
	free(v);
	v = NULL;

	/* Expired certificates may leave the CRL: not_after > min. */
	assert_int_equal(store_revoked_list(fx->st, 1000, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].serial, "22");
	assert_string_equal(v[1].serial, "44");
	free(v);
	v = NULL;
	assert_int_equal(store_revoked_list(fx->st, 4000, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
}

static void
test_many_revoked(void **state)
{
	struct fx *fx = *state;
	struct store_revoked *v = NULL;
	char serial[16];
	size_t n = 0;
	int i;

	/* More than one allocation's worth. */
	assert_int_equal(store_tx_begin(fx->st), 0);
	for (i = 0; i < 150; i++) {
		snprintf(serial, sizeof(serial), "%X", 0x1000 + i);
		insert(fx->st, serial, "p", "CN=x", "", 9000, 100 + i);
		assert_int_equal(store_cert_mark_issued(fx->st, serial, der1,
		    sizeof(der1)), 0);
		assert_int_equal(store_cert_revoke(fx->st, serial, 1000 + i,
		    1), 0);
	}
	assert_int_equal(store_tx_commit(fx->st), 0);
	assert_int_equal(store_revoked_list(fx->st, 0, &v, &n), 0);
	assert_int_equal(n, 150);
	assert_string_equal(v[0].serial, "1000");
	assert_string_equal(v[149].serial, "1095");
	free(v);
}

static void
test_cert_status(void **state)
{
	struct fx *fx = *state;
	enum store_cert_status st = STORE_CERT_STATUS__MAX;
	int64_t when = -1;
	int reason = -7;

	fill(fx->st);
	assert_int_equal(store_cert_status(fx->st, "22", &st, &when, &reason),
	    0);
	assert_int_equal(st, STORE_CERT_REVOKED);
	assert_int_equal(when, 250);
	assert_int_equal(reason, 1);
	assert_int_equal(store_cert_status(fx->st, "11", &st, &when, &reason),
	    0);
	assert_int_equal(st, STORE_CERT_ISSUED);
	assert_int_equal(store_cert_status(fx->st, "33", &st, &when, &reason),
	    0);
	assert_int_equal(st, STORE_CERT_PENDING);
	assert_int_equal(store_cert_status(fx->st, "55", &st, &when, &reason),
	    0);
	assert_int_equal(st, STORE_CERT_FAILED);
	assert_int_equal(store_cert_status(fx->st, "66", &st, &when, &reason),
	    CK_E_NOTFOUND);
}

struct changes {
	char serial[16][80];
	enum store_cert_status status[16];
	size_t n;
};

static int
collect_changes(const char *serial, enum store_cert_status status,
    void *arg)
{
	struct changes *c = arg;

	assert_true(c->n < 16);
	snprintf(c->serial[c->n], sizeof(c->serial[0]), "%s", serial);
	c->status[c->n] = status;
	c->n++;
	return 0;
}

static void
test_cert_changed(void **state)
{
	struct fx *fx = *state;
	struct changes c;
	int64_t mark, last = -1;

	fill(fx->st);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_cert_changed(fx->st, 0, collect_changes, &c,
	    &last), 0);
	assert_int_equal(c.n, 5);
	/* In sequence order: the row changed last comes last. */
	assert_string_equal(c.serial[0], "11");
	assert_string_equal(c.serial[4], "55");
	assert_int_equal(c.status[4], STORE_CERT_FAILED);
	assert_int_equal(last, seq_now(fx->st));

	/* Only what changed after the mark, and the new mark. */
	mark = last;
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_cert_changed(fx->st, mark, collect_changes, &c,
	    &last), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(store_cert_revoke(fx->st, "11", 600, 0), 0);
	assert_int_equal(store_meta_set(fx->st, "unrelated", "x"), 0);
	assert_int_equal(store_cert_changed(fx->st, mark, collect_changes, &c,
	    &last), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.serial[0], "11");
	assert_int_equal(c.status[0], STORE_CERT_REVOKED);
	assert_int_equal(last, mark + 1);
}

/* ---- API tokens ---- */

struct tokens {
	char id[8][40];
	char name[8][32];
	int64_t revoked_at[8];
	int can_revoke[8];
	unsigned char sha[8][32];
	size_t n;
};

static int
collect_tokens(const struct store_token *t, void *arg)
{
	struct tokens *c = arg;

	assert_true(c->n < 8);
	snprintf(c->id[c->n], sizeof(c->id[0]), "%s", t->id);
	snprintf(c->name[c->n], sizeof(c->name[0]), "%s", t->name);
	c->revoked_at[c->n] = t->revoked_at;
	c->can_revoke[c->n] = t->can_revoke;
	memcpy(c->sha[c->n], t->secret_sha256, 32);
	c->n++;
	return 0;
}

static struct store_token
token(const char *id, const char *name, int64_t created)
{
	struct store_token t;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	t.name = (char *)name;
	memset(t.secret_sha256, name[0], 32);
	t.profiles = (char *)"tls-server";
	t.created_at = created;
	t.created_by = (char *)"tester";
	return t;
}

static void
test_tokens(void **state)
{
	struct fx *fx = *state;
	struct store_token a = token("tok1", "deploy", 100);
	struct store_token b = token("tok2", "backup", 200);
	struct store_token dup;
	struct tokens c;
	int64_t s;

	b.can_revoke = 1;
	b.dns_suffixes = (char *)"backup.example.com";
	assert_int_equal(store_token_insert(fx->st, &a), 0);
	assert_int_equal(store_token_insert(fx->st, &b), 0);
	/* Ids and names are unique. */
	dup = token("tok1", "other", 300);
	assert_int_equal(store_token_insert(fx->st, &dup), CK_E_EXISTS);
	dup = token("tok3", "deploy", 300);
	assert_int_equal(store_token_insert(fx->st, &dup), CK_E_EXISTS);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_token_list(fx->st, collect_tokens, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.id[0], "tok1");	/* oldest first */
	assert_string_equal(c.name[1], "backup");
	assert_int_equal(c.can_revoke[0], 0);
	assert_int_equal(c.can_revoke[1], 1);
	assert_int_equal(c.revoked_at[0], 0);
	assert_int_equal(c.sha[0][0], 'd');

	/* Revoked by name or by id; once. */
	s = seq_now(fx->st);
	assert_int_equal(store_token_revoke(fx->st, "deploy", 500), 0);
	assert_int_equal(seq_now(fx->st), s + 1);
	assert_int_equal(store_token_revoke(fx->st, "tok2", 600), 0);
	ck_err_clear();
	assert_int_equal(store_token_revoke(fx->st, "tok1", 700), CK_E_STATE);
	assert_int_equal(store_token_revoke(fx->st, "backup", 700),
	    CK_E_STATE);
	assert_int_equal(store_token_revoke(fx->st, "nobody", 700),
	    CK_E_NOTFOUND);
	assert_int_equal(seq_now(fx->st), s + 2);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_token_list(fx->st, collect_tokens, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.revoked_at[0], 500);
	assert_int_equal(c.revoked_at[1], 600);
}

/* ---- CRL numbers ---- */

static void
test_crl_numbers(void **state)
{
	struct fx *fx = *state;
	uint64_t n = 0;
	struct store *st2 = NULL;

	assert_int_equal(store_crl_next_number(fx->st, &n), 0);
	assert_true(n == 1);
	assert_int_equal(store_crl_insert(fx->st, n, 100, 200, der1,
	    sizeof(der1)), 0);
	assert_int_equal(store_crl_next_number(fx->st, &n), 0);
	assert_true(n == 2);
	assert_int_equal(store_crl_next_number(fx->st, &n), 0);
	assert_true(n == 3);
	assert_int_equal(store_crl_insert(fx->st, 3, 100, 200, der1,
	    sizeof(der1)), 0);
	/* A number is recorded once. */
	assert_int_not_equal(store_crl_insert(fx->st, 3, 100, 200, der1,
	    sizeof(der1)), 0);

	/* A number taken in a rolled-back transaction is taken again. */
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_crl_next_number(fx->st, &n), 0);
	assert_true(n == 4);
	store_tx_rollback(fx->st);
	assert_int_equal(store_crl_next_number(fx->st, &n), 0);
	assert_true(n == 4);

	/* The counter survives closing the store. */
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(store_open(fx->path, 0, &st2), 0);
	fx->st = st2;
	assert_int_equal(store_crl_next_number(fx->st, &n), 0);
	assert_true(n == 5);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM crls"), 2);
}

/* ---- transactions ---- */

static void
expect_meta_missing(struct store *st, const char *key)
{
	char *v = NULL;

	if (store_meta_get(st, key, &v) != CK_E_NOTFOUND)
		fail_msg("meta %s is set (to '%s') but should not be", key,
		    v ? v : "?");
}

static void
expect_meta(struct store *st, const char *key, const char *want)
{
	char *v = NULL;

	assert_int_equal(store_meta_get(st, key, &v), 0);
	assert_string_equal(v, want);
	free(v);
}

static void
test_tx_commit(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "b", "2"), 0);
	/* The inner commit writes nothing yet. */
	assert_int_equal(store_tx_commit(fx->st), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM meta"), 0);
	assert_int_equal(store_tx_commit(fx->st), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM meta"), 2);
	expect_meta(fx->st, "a", "1");
	expect_meta(fx->st, "b", "2");

	ck_err_clear();
	assert_int_equal(store_tx_commit(fx->st), CK_E_STATE);
	store_tx_rollback(fx->st);	/* harmless without a transaction */
	expect_meta(fx->st, "a", "1");
}

static void
test_tx_outer_rollback(void **state)
{
	struct fx *fx = *state;
	int64_t s0 = seq_now(fx->st);

	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	insert(fx->st, "A1", "p", "CN=a", "", 5000, 100);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "b", "2"), 0);
	assert_int_equal(store_tx_commit(fx->st), 0);
	store_tx_rollback(fx->st);
	expect_meta_missing(fx->st, "a");
	expect_meta_missing(fx->st, "b");
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certs"), 0);
	assert_int_equal(seq_now(fx->st), s0);
}

static void
test_tx_inner_rollback(void **state)
{
	struct fx *fx = *state;
	int64_t s0 = seq_now(fx->st);
	struct store_cert *a, *c = NULL;
	char *v = NULL;

	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	insert(fx->st, "A1", "p", "CN=a", "", 5000, 100);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "b", "2"), 0);
	insert(fx->st, "B2", "p", "CN=b", "", 5000, 100);
	/* An inner rollback undoes only what was done since its begin... */
	store_tx_rollback(fx->st);
	assert_int_equal(store_cert_get(fx->st, "B2", &c), CK_E_NOTFOUND);
	assert_int_equal(store_meta_get(fx->st, "b", &v), CK_E_NOTFOUND);
	/* ...and the outer transaction goes on. */
	assert_int_equal(store_meta_set(fx->st, "c", "3"), 0);
	/* Nothing is visible outside before the outer commit. */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM meta"), 0);
	assert_int_equal(store_tx_commit(fx->st), 0);

	expect_meta(fx->st, "a", "1");
	expect_meta_missing(fx->st, "b");
	expect_meta(fx->st, "c", "3");
	a = get(fx->st, "A1");
	assert_int_equal(store_cert_get(fx->st, "B2", &c), CK_E_NOTFOUND);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certs"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM meta"), 2);
	/* The sequence still increases strictly over what was kept. */
	assert_true(a->change_seq > s0);
	assert_true(raw_int(fx->path, "SELECT change_seq FROM meta WHERE "
	    "key = 'c'") > a->change_seq);
	assert_int_equal(seq_now(fx->st), raw_int(fx->path,
	    "SELECT change_seq FROM meta WHERE key = 'c'"));
	store_cert_free(a);
}

static void
test_tx_deep_nesting(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "b", "2"), 0);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "c", "3"), 0);
	store_tx_rollback(fx->st);		/* level 3: c */
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "d", "4"), 0);
	assert_int_equal(store_tx_commit(fx->st), 0);	/* level 3: d */
	assert_int_equal(store_tx_commit(fx->st), 0);	/* level 2 */
	assert_int_equal(store_tx_commit(fx->st), 0);	/* level 1 */
	expect_meta(fx->st, "a", "1");
	expect_meta(fx->st, "b", "2");
	expect_meta_missing(fx->st, "c");
	expect_meta(fx->st, "d", "4");

	/* Rolling back the outer level takes every inner level with it,
	 * committed or not. */
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "e", "5"), 0);
	assert_int_equal(store_tx_commit(fx->st), 0);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "f", "6"), 0);
	store_tx_rollback(fx->st);
	store_tx_rollback(fx->st);
	expect_meta_missing(fx->st, "e");
	expect_meta_missing(fx->st, "f");
	/* All levels are closed. */
	assert_int_equal(store_tx_commit(fx->st), CK_E_STATE);
	assert_int_equal(store_meta_set(fx->st, "g", "7"), 0);
	expect_meta(fx->st, "g", "7");
}

/* Past the levels whose statements are kept prepared (8), and back, the
 * same rules hold; a statement reused at a level behaves as the first. */
static void
test_tx_nesting_past_prepared(void **state)
{
	struct fx *fx = *state;
	char key[8];
	int round, i;

	for (round = 0; round < 2; round++) {
		for (i = 0; i < 12; i++) {
			assert_int_equal(store_tx_begin(fx->st), 0);
			snprintf(key, sizeof(key), "k%d_%d", round, i);
			assert_int_equal(store_meta_set(fx->st, key, "v"), 0);
		}
		assert_int_equal(store_tx_depth(fx->st), 12);
		/* Levels 12 and 11 are undone, 10 is kept, 9 is undone
		 * (with 10 inside it), the rest is committed. */
		store_tx_rollback(fx->st);
		store_tx_rollback(fx->st);
		assert_int_equal(store_tx_commit(fx->st), 0);
		store_tx_rollback(fx->st);
		while (store_tx_depth(fx->st) > 0)
			assert_int_equal(store_tx_commit(fx->st), 0);
		for (i = 0; i < 12; i++) {
			snprintf(key, sizeof(key), "k%d_%d", round, i);
			if (i < 8)
				expect_meta(fx->st, key, "v");
			else
				expect_meta_missing(fx->st, key);
		}
	}
	assert_int_equal(store_tx_commit(fx->st), CK_E_STATE);
}

static void
test_failed_mutation_in_tx(void **state)
{
	struct fx *fx = *state;
	struct store_cert dup = rec("A1", "p", "CN=dup", "", 5000, 100);
	struct store_cert *c;
	int64_t s;

	insert(fx->st, "A1", "p", "CN=a", "", 5000, 100);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	s = seq_now(fx->st);
	/* A refused step undoes only itself (a batch of independent
	 * operations in one commit)... */
	assert_int_equal(store_cert_insert_pending(fx->st, &dup), CK_E_EXISTS);
	assert_int_equal(store_cert_revoke(fx->st, "A1", 100, 1), CK_E_STATE);
	assert_int_equal(seq_now(fx->st), s);
	insert(fx->st, "B2", "p", "CN=b", "", 5000, 100);
	assert_int_equal(store_tx_commit(fx->st), 0);
	/* ...and the rest commits. */
	expect_meta(fx->st, "a", "1");
	c = get(fx->st, "A1");
	assert_string_equal(c->subject, "CN=a");
	assert_int_equal(c->status, STORE_CERT_PENDING);
	store_cert_free(c);
	c = get(fx->st, "B2");
	store_cert_free(c);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certs"), 2);
}

static void
test_close_rolls_back(void **state)
{
	struct fx *fx = *state;
	struct store *st = NULL;

	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(store_open(fx->path, 0, &st), 0);
	fx->st = st;
	expect_meta_missing(fx->st, "a");
	assert_int_equal(seq_now(fx->st), 0);
}

static void
test_second_connection_sees_commits_only(void **state)
{
	struct fx *fx = *state;
	struct store *other = NULL;
	char *v = NULL;

	assert_int_equal(store_open(fx->path, 0, &other), 0);
	assert_int_equal(store_tx_begin(fx->st), 0);
	assert_int_equal(store_meta_set(fx->st, "a", "1"), 0);
	assert_int_equal(store_meta_get(other, "a", &v), CK_E_NOTFOUND);
	assert_int_equal(store_tx_commit(fx->st), 0);
	assert_int_equal(store_meta_get(other, "a", &v), 0);
	assert_string_equal(v, "1");
	free(v);
	store_close(other);
}

/* ---- metadata and configuration ---- */

static void
test_meta(void **state)
{
	struct fx *fx = *state;
	char *v = (char *)"untouched";

	assert_int_equal(store_meta_get(fx->st, "ca_state", &v),
	    CK_E_NOTFOUND);
	assert_string_equal(v, "untouched");
	assert_int_equal(store_meta_set(fx->st, "ca_state", "active"), 0);
	expect_meta(fx->st, "ca_state", "active");
	assert_int_equal(store_meta_set(fx->st, "ca_state", "retired"), 0);
	expect_meta(fx->st, "ca_state", "retired");
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM meta"), 1);
	/* Keys are exact. */
	expect_meta_missing(fx->st, "CA_STATE");
	expect_meta_missing(fx->st, "ca_stat");
	/* Values are kept as given. */
	assert_int_equal(store_meta_set(fx->st, "odd", "it's; DROP TABLE "
	    "meta; --"), 0);
	expect_meta(fx->st, "odd", "it's; DROP TABLE meta; --");
	assert_int_equal(store_meta_set(fx->st, "empty", ""), 0);
	expect_meta(fx->st, "empty", "");
}

static void
test_config_history(void **state)
{
	struct fx *fx = *state;
	char h[65];
	static const char h1[] =
	    "1111111111111111111111111111111111111111111111111111111111111111";
	static const char h2[] =
	    "2222222222222222222222222222222222222222222222222222222222222222";

	assert_int_equal(store_config_latest(fx->st, h), CK_E_NOTFOUND);
	assert_int_equal(store_config_insert(fx->st, 100, "alice", h1,
	    "[ca]\nkey_file = a\n"), 0);
	assert_int_equal(store_config_latest(fx->st, h), 0);
	assert_string_equal(h, h1);
	assert_int_equal(store_config_insert(fx->st, 200, "bob", h2,
	    "[ca]\nkey_file = b\n"), 0);
	assert_int_equal(store_config_latest(fx->st, h), 0);
	assert_string_equal(h, h2);
	/* Going back to an old version is a new version. */
	assert_int_equal(store_config_insert(fx->st, 300, "alice", h1,
	    "[ca]\nkey_file = a\n"), 0);
	assert_int_equal(store_config_latest(fx->st, h), 0);
	assert_string_equal(h, h1);
	assert_int_equal(raw_int(fx->path,
	    "SELECT count(*) FROM config_history"), 3);
	assert_int_equal(raw_int(fx->path,
	    "SELECT time FROM config_history ORDER BY id DESC LIMIT 1"), 300);
}

/* ---- audit rows ---- */

struct audit_seen {
	int64_t ids[8];
	char users[8][16];
	size_t n;
};

static int
audit_collect(const struct store_audit_entry *e, void *arg)
{
	struct audit_seen *s = arg;

	assert_true(s->n < 8);
	s->ids[s->n] = e->id;
	snprintf(s->users[s->n], sizeof(s->users[0]), "%s", e->user);
	s->n++;
	return 0;
}

static void
test_audit_rows(void **state)
{
	struct fx *fx = *state;
	struct store_audit_entry e;
	struct audit_seen seen;
	unsigned char hash[32], zero[32] = { 0 };
	int64_t id = -1;
	int i;

	assert_int_equal(store_audit_last(fx->st, &id, hash), 0);
	assert_int_equal(id, 0);
	assert_memory_equal(hash, zero, 32);

	for (i = 1; i <= 3; i++) {
		memset(&e, 0, sizeof(e));
		e.id = i;
		e.time = 1000 + i;
		e.user = (char *)(i == 2 ? "bob" : "alice");
		e.action = (char *)"issue";
		e.object = (char *)"A1";
		e.result = (char *)"ok";
		e.detail = (char *)"d";
		memset(e.prev_hash, i - 1, 32);
		memset(e.hash, i, 32);
		assert_int_equal(store_audit_insert(fx->st, &e), 0);
	}
	assert_int_equal(store_audit_last(fx->st, &id, hash), 0);
	assert_int_equal(id, 3);
	memset(zero, 3, 32);
	assert_memory_equal(hash, zero, 32);

	/* An id is used once. */
	e.id = 3;
	assert_int_not_equal(store_audit_insert(fx->st, &e), 0);

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_audit_iter(fx->st, 2, audit_collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.ids[0], 2);
	assert_string_equal(seen.users[0], "bob");
	assert_int_equal(seen.ids[1], 3);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_audit_iter(fx->st, 1, audit_collect, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.ids[0], 1);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_create),
		cmocka_unit_test(test_status_names),
		T(test_change_seq),
		T(test_change_seq_one_per_mutation_in_tx),
		T(test_cert_fields),
		T(test_transitions),
		T(test_duplicate_serial),
		T(test_list_filters),
		T(test_revoked_list),
		T(test_many_revoked),
		T(test_cert_status),
		T(test_cert_changed),
		T(test_tokens),
		T(test_crl_numbers),
		T(test_tx_commit),
		T(test_tx_outer_rollback),
		T(test_tx_inner_rollback),
		T(test_tx_deep_nesting),
		T(test_tx_nesting_past_prepared),
		T(test_failed_mutation_in_tx),
		T(test_close_rolls_back),
		T(test_second_connection_sees_commits_only),
		T(test_meta),
		T(test_config_history),
		T(test_audit_rows),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
