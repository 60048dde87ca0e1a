/*
 * test_store_dump.c - src/store/store_dump.c and the tables of migration 3:
 * dump and load round trips (full, incremental), JSON escaping, snapshot
 * isolation beside a committing writer, every refusal of the loader,
 * counts, the backup catalogue and the custody ledger.
 *
 * Stores are compared through sqlite3 directly, row by row and byte by
 * byte, so the comparison does not trust the code under test.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "common/err.h"
#include "store/store.h"
#include "store/store_acme.h"
#include "store/store_authz.h"
#include "store/store_request.h"
#include "store/store_dump.h"
#include "store/store_int.h"

#define NTABLES 19

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

#define OK(expr) do {							\
	int r_ = (expr);						\
	if (r_ != 0)							\
		fail_msg("%s: %d: %s", #expr, r_, ck_err_msg());	\
} while (0)

/* ---- populating ---- */

/* A DER-like blob of LEN bytes holding every byte value. */
static unsigned char *
fake_der(size_t len, unsigned seed)
{
	unsigned char *d = malloc(len);
	size_t i;

	assert_non_null(d);
	for (i = 0; i < len; i++)
		d[i] = (unsigned char)(i * 7 + seed);
	if (len > 2) {
		d[0] = 0x30;
		d[1] = 0x00;
	}
	return d;
}

static void
cert_pending(struct store *st, const char *serial, const char *subject)
{
	struct store_cert c;

	memset(&c, 0, sizeof(c));
	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	c.subject = (char *)subject;
	c.names = (char *)"DNS:a.example, IP:192.0.2.1";
	c.profile = (char *)"server";
	c.requester = (char *)"tester \"q\" \\ back";
	memset(c.tbs_sha256, 'b', 64);
	c.not_before = 1700000000;
	c.not_after = 1800000000;
	c.created_at = 1700000000 + (int64_t)strlen(serial);
	c.reason = -1;
	OK(store_cert_insert_pending(st, &c));
}

static void
cert_issued(struct store *st, const char *serial, const char *subject,
    size_t derlen)
{
	unsigned char *der = fake_der(derlen, (unsigned)serial[0]);

	cert_pending(st, serial, subject);
	OK(store_cert_mark_issued(st, serial, der, derlen));
	free(der);
}

static void
audit_add(struct store *st, const char *detail)
{
	struct store_audit_entry e;
	unsigned char last[32];
	int64_t id;

	OK(store_audit_last(st, &id, last));
	memset(&e, 0, sizeof(e));
	e.id = id + 1;
	e.time = 1700000100 + id;
	e.user = (char *)"root";
	e.action = (char *)"issue";
	e.object = (char *)"0A";
	e.result = (char *)"ok";
	e.detail = (char *)detail;
	memcpy(e.prev_hash, last, 32);
	memset(e.hash, (int)(0x40 + id), 32);
	e.hash[0] = 0;		/* a NUL inside a blob */
	OK(store_audit_insert(st, &e));
}

static void
custody_add(struct store *st, const char *artefact, const char *event)
{
	struct store_custody e;
	int64_t id;

	memset(&e, 0, sizeof(e));
	OK(store_custody_last(st, &id, e.prev_hash));
	e.time = 1700000200 + id;
	e.operator_name = (char *)"alice";
	e.event = (char *)event;
	e.artefact = (char *)artefact;
	e.kind = (char *)"data-backup";
	e.place = (char *)"safe 2, shelf \"B\"";
	e.detail = (char *)"";
	memset(e.hash, (int)(0x10 + id), 32);
	OK(store_custody_insert(st, &e));
	assert_int_equal(e.id, id + 1);
}

static void
backup_add(struct store *st, const char *id, int64_t from, int64_t to)
{
	struct store_backup b;

	memset(&b, 0, sizeof(b));
	snprintf(b.id, sizeof(b.id), "%s", id);
	snprintf(b.kind, sizeof(b.kind), "%s", from == 0 ? "full" :
	    "incremental");
	snprintf(b.chain, sizeof(b.chain), "00112233445566778899aabbccddeeff");
	b.seq_from = from;
	b.seq_to = to;
	b.created_at = 1700000300 + to;
	memset(b.manifest_sha256, 'c', 64);
	memset(b.archive_sha256, 'd', 64);
	b.size = 12345;
	b.copies = (char *)"[{\"path\":\"/x\",\"ok\":true}]";
	OK(store_backup_put(st, &b));
}

/* Text that needs every kind of care: quotes, backslash, controls, DEL,
 * multi-byte UTF-8 (2, 3 and 4 bytes). */
static const char nasty[] = "CN=\"q\\u\",O=a\nb\tc\r\x01\x1f\x7f"
    "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e end";

/* A configuration with a Latin-1 byte: not UTF-8. */
static const char latin1[] = "# caf\xe9 \xff\n[ca]\nname = x\n";

/* EAB keys: one bound and revoked, one fresh; the sealed keys are any
 * bytes to the store (a NUL and 0xff among them). */
static void
acme_eab_add(struct store *st)
{
	struct store_acme_eab e;
	unsigned char sealed[77];
	size_t i;

	for (i = 0; i < sizeof(sealed); i++)
		sealed[i] = (unsigned char)(i * 37 + 255);
	memset(&e, 0, sizeof(e));
	snprintf(e.kid, sizeof(e.kid), "eab1");
	e.sealed = sealed;
	e.sealed_len = sizeof(sealed);
	e.note = (char *)nasty;
	e.created_at = 1700000900;
	OK(store_acme_eab_create(st, &e));
	OK(store_acme_eab_bind(st, "eab1", "acct1", 1700000910));
	OK(store_acme_eab_revoke(st, "eab1", 1700000920));
	snprintf(e.kid, sizeof(e.kid), "eab2");
	e.note = NULL;
	e.sealed_len = 1;
	OK(store_acme_eab_create(st, &e));
}

/* Operators: one active with a role, one removed (NULL and non-NULL
 * columns both). */
static void
operators_add(struct store *st)
{
	struct store_operator op;

	memset(&op, 0, sizeof(op));
	snprintf(op.name, sizeof(op.name), "alice");
	snprintf(op.os_user, sizeof(op.os_user), "alice");
	snprintf(op.created_by, sizeof(op.created_by), "%s", nasty);
	op.created_at = 1700000930;
	OK(store_operator_add(st, &op));
	OK(store_operator_grant(st, "alice", STORE_ROLE_AUDITOR, 1700000931,
	    "root"));
	snprintf(op.name, sizeof(op.name), "bob");
	snprintf(op.os_user, sizeof(op.os_user), "bob");
	OK(store_operator_add(st, &op));
	OK(store_operator_grant(st, "bob", STORE_ROLE_CA_ADMIN, 1700000932,
	    "root"));
	OK(store_operator_remove(st, "bob", 1700000933));
}

/* Requests awaiting approval: one denied with a reason, one pending
 * with an approval (NULL and non-NULL columns both). */
static void
requests_add(struct store *st)
{
	static unsigned char csr[] = { 0x30, 0x00, 0xff, 0x0a, 0x00 };
	struct store_request rq;
	struct store_request_approval a;

	memset(&rq, 0, sizeof(rq));
	snprintf(rq.profile, sizeof(rq.profile), "tls-server");
	rq.path_len = -1;
	rq.csr = csr;
	rq.csr_len = sizeof(csr);
	rq.subject = (char *)nasty;
	rq.names = (char *)"DNS:a.example";
	snprintf(rq.requester, sizeof(rq.requester), "token:bot");
	snprintf(rq.acme_order, sizeof(rq.acme_order), "ord1");
	rq.created_at = 1700000940;
	OK(store_request_insert(st, &rq));
	OK(store_request_transition(st, rq.id, STORE_REQUEST_PENDING,
	    STORE_REQUEST_DENIED, 1700000941, nasty));
	rq.acme_order[0] = '\0';
	snprintf(rq.requester_os_user, sizeof(rq.requester_os_user), "bob");
	OK(store_request_insert(st, &rq));
	memset(&a, 0, sizeof(a));
	a.request_id = rq.id;
	snprintf(a.approver, sizeof(a.approver), "alice");
	snprintf(a.actor, sizeof(a.actor), "alice/cert-manager");
	a.at = 1700000942;
	snprintf(a.reason, sizeof(a.reason), "%s", nasty);
	OK(store_request_approval_add(st, &a));
}

/* An ACME account with one order, authorization and challenge, so that
 * every table of the schema has a row. */
static void
acme_add(struct store *st)
{
	struct store_acme_account a;
	struct store_acme_order o;
	struct store_acme_authz z;
	struct store_acme_challenge c;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "acct1");
	snprintf(a.jwk_thumbprint, sizeof(a.jwk_thumbprint), "thumb1");
	a.jwk = (char *)"{\"crv\":\"P-256\",\"kty\":\"EC\"}";
	a.contact = (char *)nasty;
	OK(store_acme_account_create(st, &a));
	memset(&o, 0, sizeof(o));
	memset(&z, 0, sizeof(z));
	memset(&c, 0, sizeof(c));
	snprintf(o.id, sizeof(o.id), "ord1");
	snprintf(o.account_id, sizeof(o.account_id), "acct1");
	o.identifiers = (char *)"[{\"type\":\"dns\",\"value\":\"a.example\"}]";
	o.expires = 1700600000;
	snprintf(z.id, sizeof(z.id), "az1");
	snprintf(z.identifier_type, sizeof(z.identifier_type), "dns");
	snprintf(z.identifier_value, sizeof(z.identifier_value), "a.example");
	z.challenges = &c;
	z.nchallenges = 1;
	snprintf(c.id, sizeof(c.id), "ch1");
	snprintf(c.type, sizeof(c.type), "http-01");
	snprintf(c.token, sizeof(c.token), "tok1");
	OK(store_acme_order_create(st, &o, &z, 1));
	acme_eab_add(st);
	operators_add(st);
	requests_add(st);
}

static void
populate(struct store *st)
{
	struct store_token t;
	unsigned char *crl;
	uint64_t n;

	cert_issued(st, "0A1B", nasty, 700);
	cert_issued(st, "0B", "CN=b", 1);
	cert_issued(st, "0C", "CN=c", 2);
	cert_issued(st, "0D", "CN=d", 3);
	cert_issued(st, "AA", "CN=revoked", 500);
	OK(store_cert_revoke(st, "AA", 1700000500, 1));
	cert_pending(st, "BB", "CN=pending");
	cert_pending(st, "CC", "CN=failed");
	OK(store_cert_mark_failed(st, "CC"));

	audit_add(st, "first");
	audit_add(st, nasty);
	audit_add(st, "");

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "tok1");
	t.name = (char *)"ci";
	memset(t.secret_sha256, 0x5c, 32);
	t.profiles = (char *)"server,client";
	t.can_revoke = 1;
	t.created_at = 1700000400;
	t.created_by = (char *)"root";
	OK(store_token_insert(st, &t));
	snprintf(t.id, sizeof(t.id), "tok2");
	t.name = (char *)"old";
	t.dns_suffixes = (char *)".example.com";
	OK(store_token_insert(st, &t));
	OK(store_token_revoke(st, "old", 1700000450));

	OK(store_crl_next_number(st, &n));
	crl = fake_der(300, 9);
	OK(store_crl_insert(st, n, 1700000000, 1700086400, crl, 300));
	free(crl);

	OK(store_meta_set(st, "state", "ready"));
	OK(store_meta_set(st, "weird", nasty));
	OK(store_config_insert(st, 1700000600, "root", "ab12", latin1));
	OK(store_config_insert(st, 1700000700, "root", "cd34", "plain\n"));

	backup_add(st, "b1", 0, 10);
	custody_add(st, "aa11", "created");
	custody_add(st, "bb22", "created");
	custody_add(st, "aa11", "copied");
	acme_add(st);
}

/* ---- dumping into memory ---- */

struct buf {
	char *p;
	size_t len, cap;
	size_t chunks;
	int bad_chunk;		/* a chunk broke the 64 KiB / whole-line rule */
};

static int
emit_buf(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;
	const char *d = data;
	size_t nl = 0, i;

	for (i = 0; i < len; i++)
		nl += d[i] == '\n';
	if (len == 0 || d[len - 1] != '\n' || (len > 65536 && nl != 1))
		b->bad_chunk = 1;
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	b->chunks++;
	return 0;
}

struct dump {
	int64_t seq;
	struct buf t[NTABLES];
	uint64_t rows[NTABLES];
	struct store_dump_counts counts;
};

static void
dump_free(struct dump *d)
{
	int i;

	for (i = 0; i < NTABLES; i++)
		free(d->t[i].p);
	memset(d, 0, sizeof(*d));
}

static void
dump_store(const char *path, int64_t after, struct dump *d)
{
	struct store_snapshot *s = NULL;
	int i;

	memset(d, 0, sizeof(*d));
	OK(store_snapshot_open(path, &s));
	d->seq = store_snapshot_seq(s);
	for (i = 0; store_dump_tables[i] != NULL; i++) {
		assert_true(i < NTABLES);
		OK(store_dump_table(s, store_dump_tables[i], after, emit_buf,
		    &d->t[i], &d->rows[i]));
		assert_false(d->t[i].bad_chunk);
	}
	assert_int_equal(i, NTABLES);
	OK(store_snapshot_counts(s, &d->counts));
	store_snapshot_close(s);
}

static int
table_index(const char *name)
{
	int i;

	for (i = 0; store_dump_tables[i] != NULL; i++)
		if (strcmp(store_dump_tables[i], name) == 0)
			return i;
	fail_msg("no table %s", name);
	return -1;
}

/* Load every line of D into ST in one transaction. */
static void
load_dump(struct store *st, const struct dump *d, int64_t after)
{
	const char *p, *nl;
	uint64_t n;
	int i;

	OK(store_tx_begin(st));
	for (i = 0; i < NTABLES; i++) {
		n = 0;
		for (p = d->t[i].p; p != NULL && *p != '\0'; p = nl + 1) {
			nl = strchr(p, '\n');
			assert_non_null(nl);
			if (store_load_line(st, store_dump_tables[i], p,
			    (size_t)(nl - p), after, d->seq) != 0)
				fail_msg("load %s: %.*s: %s",
				    store_dump_tables[i], (int)(nl - p), p,
				    ck_err_msg());
			n++;
		}
		assert_int_equal(n, d->rows[i]);
	}
	OK(store_tx_commit(st));
	OK(store_load_finish(st, d->seq));
}

/* ---- comparing two store files through sqlite3 ---- */

static void
compare_stores(const char *a, const char *b)
{
	sqlite3 *da = NULL, *db = NULL;
	sqlite3_stmt *sa = NULL, *sb = NULL;
	char sql[128];
	int i, c, ra, rb, rows;

	assert_int_equal(sqlite3_open_v2(a, &da, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_open_v2(b, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	for (i = 0; store_dump_tables[i] != NULL; i++) {
		snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY 1",
		    store_dump_tables[i]);
		assert_int_equal(sqlite3_prepare_v2(da, sql, -1, &sa, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &sb, NULL),
		    SQLITE_OK);
		rows = 0;
		for (;;) {
			ra = sqlite3_step(sa);
			rb = sqlite3_step(sb);
			if (ra != rb)
				fail_msg("%s: row %d: present in only one "
				    "store", store_dump_tables[i], rows);
			if (ra != SQLITE_ROW)
				break;
			assert_int_equal(sqlite3_column_count(sa),
			    sqlite3_column_count(sb));
			for (c = 0; c < sqlite3_column_count(sa); c++) {
				int ta = sqlite3_column_type(sa, c);
				int na, nb;
				const void *pa, *pb;

				if (ta != sqlite3_column_type(sb, c))
					fail_msg("%s row %d col %s: type %d "
					    "vs %d", store_dump_tables[i], rows,
					    sqlite3_column_name(sa, c), ta,
					    sqlite3_column_type(sb, c));
				if (ta == SQLITE_INTEGER) {
					assert_int_equal(
					    sqlite3_column_int64(sa, c),
					    sqlite3_column_int64(sb, c));
					continue;
				}
				pa = ta == SQLITE_TEXT ? (const void *)
				    sqlite3_column_text(sa, c) :
				    sqlite3_column_blob(sa, c);
				pb = ta == SQLITE_TEXT ? (const void *)
				    sqlite3_column_text(sb, c) :
				    sqlite3_column_blob(sb, c);
				na = sqlite3_column_bytes(sa, c);
				nb = sqlite3_column_bytes(sb, c);
				if (na != nb || (na > 0 &&
				    memcmp(pa, pb, (size_t)na) != 0))
					fail_msg("%s row %d col %s differs",
					    store_dump_tables[i], rows,
					    sqlite3_column_name(sa, c));
			}
			rows++;
		}
		assert_int_equal(ra, SQLITE_DONE);
		sqlite3_finalize(sa);
		sqlite3_finalize(sb);
	}
	sqlite3_close(da);
	sqlite3_close(db);
}

/* A fresh store beside the fixture's. */
static struct store *
fresh_store(struct fx *fx, const char *name, char *path, size_t size)
{
	struct store *st = NULL;

	tu_path(path, size, fx->dir, name);
	OK(store_open(path, 1, &st));
	return st;
}

static int64_t
seq_now(struct store *st)
{
	int64_t v = -1;

	OK(store_change_seq(st, &v));
	return v;
}

/* ---- the tests ---- */

/* Every table of the schema is dumped, with exactly its columns, in
 * schema order; every line is a JSON object. */
static void
test_schema_covered(void **state)
{
	struct fx *fx = *state;
	struct dump d;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL, *ti = NULL;
	json_t *o;
	json_error_t je;
	const char *name, *k;
	char sql[128];
	int n = 0, i, c;
	size_t nkeys;

	populate(fx->st);
	dump_store(fx->path, 0, &d);
	assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM "
	    "sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
	    -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(s, 0);
		i = table_index(name);
		n++;
		/* Its first line names the columns. */
		assert_true(d.rows[i] > 0);
		o = json_loadb(d.t[i].p, strcspn(d.t[i].p, "\n"), 0, &je);
		if (o == NULL)
			fail_msg("%s: %s", name, je.text);
		snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", name);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &ti, NULL),
		    SQLITE_OK);
		c = 0;
		while (sqlite3_step(ti) == SQLITE_ROW) {
			const char *col = (const char *)
			    sqlite3_column_text(ti, 1);
			json_t *v = json_object_get(o, col);

			if (v == NULL)
				fail_msg("%s.%s is not dumped", name, col);
			/* Dumped in schema order. */
			assert_non_null(strstr(d.t[i].p, col));
			c++;
		}
		sqlite3_finalize(ti);
		nkeys = json_object_size(o);
		assert_int_equal(nkeys, (size_t)c);
		/* Key order follows the schema. */
		c = 0;
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &ti, NULL),
		    SQLITE_OK);
		{
			const char *line = d.t[i].p, *prev = line;
			char pat[80];

			while (sqlite3_step(ti) == SQLITE_ROW) {
				const char *at;

				k = (const char *)sqlite3_column_text(ti, 1);
				snprintf(pat, sizeof(pat), "\"%s\":", k);
				at = strstr(line, pat);
				assert_non_null(at);
				assert_true(at >= prev);
				prev = at;
			}
		}
		sqlite3_finalize(ti);
		json_decref(o);
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_int_equal(n, NTABLES);
	dump_free(&d);
}

static void
test_roundtrip_full(void **state)
{
	struct fx *fx = *state;
	struct store_dump_counts c2;
	struct dump d;
	struct store *st2;
	char path2[4200];

	populate(fx->st);
	dump_store(fx->path, 0, &d);
	assert_int_equal(d.seq, seq_now(fx->st));
	assert_int_equal(d.rows[table_index("certs")], 7);
	assert_int_equal(d.rows[table_index("audit")], 3);
	assert_int_equal(d.rows[table_index("change_seq")], 1);
	assert_int_equal(d.rows[table_index("crl_counter")], 1);
	assert_int_equal(d.rows[table_index("custody")], 3);
	assert_int_equal(d.rows[table_index("acme_eab")], 2);
	assert_non_null(strstr(d.t[table_index("acme_eab")].p,
	    "\"account_id\":\"acct1\""));

	/* Counts at the snapshot. */
	assert_int_equal(d.counts.certs, 7);
	assert_int_equal(d.counts.issued, 4);
	assert_int_equal(d.counts.revoked, 1);
	assert_int_equal(d.counts.pending, 1);
	assert_int_equal(d.counts.failed, 1);
	assert_int_equal(d.counts.audit, 3);
	assert_int_equal(d.counts.audit_last_id, 3);
	assert_int_equal(d.counts.audit_head[0], 0);
	assert_int_equal(d.counts.audit_head[1], 0x42);
	assert_int_equal(d.counts.crl_number, 1);
	assert_int_equal(d.counts.tokens, 2);

	st2 = fresh_store(fx, "copy.db", path2, sizeof(path2));
	load_dump(st2, &d, 0);
	OK(store_counts(st2, &c2));
	assert_memory_equal(&c2, &d.counts, sizeof(c2));
	assert_int_equal(seq_now(st2), d.seq);
	store_close(st2);
	compare_stores(fx->path, path2);
	dump_free(&d);
}

/* The JSON written for awkward text and blobs, read back with jansson. */
static void
test_escaping(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *key, *val;
		size_t len;
		int utf8;
	} cases[] = {
		{ "nasty", nasty, sizeof(nasty) - 1, 1 },
		{ "nul", "a\0b", 3, 1 },
		{ "u0080", "\xc2\x80", 2, 1 },
		{ "uffff", "\xef\xbf\xbf", 3, 1 },
		{ "u10ffff", "\xf4\x8f\xbf\xbf", 4, 1 },
		{ "latin1", "caf\xe9", 4, 0 },
		{ "overlong", "\xc0\x80", 2, 0 },
		{ "overlong3", "\xe0\x80\xaf", 3, 0 },
		{ "surrogate", "\xed\xa0\x80", 3, 0 },
		{ "above", "\xf4\x90\x80\x80", 4, 0 },
		{ "truncated", "\xe2\x82", 2, 0 },
		{ "lonecont", "\x80", 1, 0 },
		{ "f5", "\xf5\x80\x80\x80", 4, 0 },
		{ "empty", "", 0, 1 },
	};
	struct dump d;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	const char *p, *nl;
	json_t *o, *v;
	json_error_t je;
	size_t i, found = 0;
	char path2[4200];
	struct store *st2;

	/* Written directly, so that NUL and invalid UTF-8 are really in the
	 * file as TEXT. */
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO meta (key, value, "
	    "change_seq) VALUES (?, ?, 1)", -1, &s, NULL), SQLITE_OK);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sqlite3_bind_text(s, 1, cases[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, cases[i].val, (int)cases[i].len,
		    SQLITE_STATIC);
		assert_int_equal(sqlite3_step(s), SQLITE_DONE);
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	/* An empty blob is not NULL. */
	assert_int_equal(sqlite3_exec(db, "UPDATE change_seq SET value = 1; "
	    "INSERT INTO crls VALUES (7, 1, 2, x'', 1)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	dump_store(fx->path, 0, &d);
	assert_int_equal(d.rows[table_index("meta")],
	    sizeof(cases) / sizeof(cases[0]));
	for (p = d.t[table_index("meta")].p; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		/* Each line is JSON on its own; raw control bytes never
		 * appear in it. */
		for (i = 0; p + i < nl; i++)
			assert_true((unsigned char)p[i] >= 0x20);
		o = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &je);
		if (o == NULL)
			fail_msg("invalid JSON: %s: %.*s", je.text,
			    (int)(nl - p), p);
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			if (strcmp(json_string_value(json_object_get(o, "key")),
			    cases[i].key) == 0)
				break;
		assert_true(i < sizeof(cases) / sizeof(cases[0]));
		v = json_object_get(o, "value");
		if (cases[i].utf8) {
			assert_true(json_is_string(v));
			assert_int_equal(json_string_length(v), cases[i].len);
			assert_memory_equal(json_string_value(v), cases[i].val,
			    cases[i].len);
		} else {
			/* Not UTF-8: bytes kept, as base64. */
			assert_true(json_is_object(v));
			assert_true(json_is_string(json_object_get(v,
			    "base64")));
		}
		found++;
		json_decref(o);
	}
	assert_int_equal(found, sizeof(cases) / sizeof(cases[0]));
	/* Valid multi-byte UTF-8 is written as it is, not escaped. */
	assert_non_null(strstr(d.t[table_index("meta")].p,
	    "\xf0\x9d\x84\x9e end"));
	assert_non_null(strstr(d.t[table_index("meta")].p,
	    "\\\"q\\\\u\\\",O=a\\nb\\tc\\r\\u0001\\u001f\x7f"));
	assert_non_null(strstr(d.t[table_index("crls")].p, "\"der\":\"\""));

	/* And all of it comes back byte for byte. */
	st2 = fresh_store(fx, "copy.db", path2, sizeof(path2));
	load_dump(st2, &d, 0);
	store_close(st2);
	compare_stores(fx->path, path2);
	dump_free(&d);
}

/* Special bytes at every offset of strings around the 8-byte steps of
 * the writer's fast path: each line is valid JSON and every value comes
 * back byte for byte. */
static void
test_escaping_offsets(void **state)
{
	struct fx *fx = *state;
	static const char *const specials[] = {
		"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9",
		"\xe2\x82\xac", "\xf0\x9d\x84\x9e", "\xff", "\xe2\x82",
		"\xc0\xaf", "\xed\xb0\x80",
	};
	struct dump d;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char key[32], val[64], path2[4200];
	const char *p, *nl;
	json_t *o;
	json_error_t je;
	size_t i, pos, len, n = 0;
	struct store *st2;

	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "BEGIN; UPDATE change_seq SET "
	    "value = 1", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO meta (key, value, "
	    "change_seq) VALUES (?, ?, 1)", -1, &s, NULL), SQLITE_OK);
	for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		for (pos = 0; pos <= 18; pos++)
			for (len = pos + strlen(specials[i]); len <= 26;
			    len += 7) {
				memset(val, 'a' + (int)(pos % 26), sizeof(val));
				memcpy(val + pos, specials[i],
				    strlen(specials[i]));
				snprintf(key, sizeof(key), "k%zu-%zu-%zu", i,
				    pos, len);
				sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
				sqlite3_bind_text(s, 2, val, (int)len,
				    SQLITE_STATIC);
				assert_int_equal(sqlite3_step(s), SQLITE_DONE);
				sqlite3_reset(s);
				n++;
			}
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	dump_store(fx->path, 0, &d);
	assert_int_equal(d.rows[table_index("meta")], n);
	for (p = d.t[table_index("meta")].p; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		o = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &je);
		if (o == NULL)
			fail_msg("invalid JSON: %s: %.*s", je.text,
			    (int)(nl - p), p);
		json_decref(o);
	}
	st2 = fresh_store(fx, "copy.db", path2, sizeof(path2));
	load_dump(st2, &d, 0);
	store_close(st2);
	compare_stores(fx->path, path2);
	dump_free(&d);
}

/* Rows of every table that changed after a snapshot, and only those. */
static void
test_incremental(void **state)
{
	struct fx *fx = *state;
	struct dump full, inc, again;
	struct store_token t;
	struct store *st2;
	char path2[4200];
	const char *p, *nl;
	json_t *o;
	int64_t n1;
	uint64_t crl;
	int i;

	populate(fx->st);
	dump_store(fx->path, 0, &full);
	n1 = full.seq;

	/* Changes: new rows, and updates of rows already dumped. */
	cert_issued(fx->st, "0E", "CN=new", 650);
	OK(store_cert_revoke(fx->st, "0B", 1700001000, 4));
	OK(store_cert_mark_issued(fx->st, "BB", (const unsigned char *)"\x30",
	    1));
	audit_add(fx->st, "after");
	OK(store_meta_set(fx->st, "state", "changed"));
	OK(store_crl_next_number(fx->st, &crl));
	OK(store_token_revoke(fx->st, "ci", 1700001100));
	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "tok3");
	t.name = (char *)"new";
	t.profiles = (char *)"server";
	t.created_by = (char *)"root";
	OK(store_token_insert(fx->st, &t));
	backup_add(fx->st, "b1", 0, 20);	/* replaced */
	backup_add(fx->st, "b2", 20, 30);
	custody_add(fx->st, "bb22", "moved");
	OK(store_acme_eab_bind(fx->st, "eab2", "acct9", 1700001000));

	dump_store(fx->path, n1, &inc);
	assert_true(inc.seq > n1);
	assert_int_equal(inc.rows[table_index("certs")], 3);
	assert_int_equal(inc.rows[table_index("audit")], 1);
	assert_int_equal(inc.rows[table_index("meta")], 1);
	assert_int_equal(inc.rows[table_index("api_tokens")], 2);
	assert_int_equal(inc.rows[table_index("backups")], 2);
	assert_int_equal(inc.rows[table_index("custody")], 1);
	assert_int_equal(inc.rows[table_index("acme_eab")], 1);
	assert_int_equal(inc.rows[table_index("crls")], 0);
	assert_int_equal(inc.rows[table_index("config_history")], 0);
	/* The counters always. */
	assert_int_equal(inc.rows[table_index("change_seq")], 1);
	assert_int_equal(inc.rows[table_index("crl_counter")], 1);
	/* Every row in it changed after the full. */
	for (i = 0; i < NTABLES; i++) {
		if (strcmp(store_dump_tables[i], "change_seq") == 0 ||
		    strcmp(store_dump_tables[i], "crl_counter") == 0)
			continue;
		for (p = inc.t[i].p; p != NULL && *p != '\0'; p = nl + 1) {
			nl = strchr(p, '\n');
			o = json_loadb(p, (size_t)(nl - p), 0, NULL);
			assert_non_null(o);
			assert_true(json_integer_value(json_object_get(o,
			    "change_seq")) > n1);
			json_decref(o);
		}
	}
	/* The changed certificates, each once (order: by change). */
	p = inc.t[table_index("certs")].p;
	assert_non_null(strstr(p, "\"0B\""));
	assert_non_null(strstr(p, "\"0E\""));
	assert_non_null(strstr(p, "\"BB\""));
	assert_null(strstr(strstr(p, "\"0B\"") + 1, "\"0B\""));

	/* Full + incremental rebuilds the source. */
	st2 = fresh_store(fx, "copy.db", path2, sizeof(path2));
	load_dump(st2, &full, 0);
	load_dump(st2, &inc, n1);
	assert_int_equal(seq_now(st2), inc.seq);
	store_close(st2);
	compare_stores(fx->path, path2);

	/* Nothing changed: only the counters. */
	dump_store(fx->path, inc.seq, &again);
	for (i = 0; i < NTABLES; i++)
		assert_int_equal(again.rows[i],
		    strcmp(store_dump_tables[i], "change_seq") == 0 ||
		    strcmp(store_dump_tables[i], "crl_counter") == 0 ? 1 : 0);
	dump_free(&full);
	dump_free(&inc);
	dump_free(&again);
}

/* A writer that commits while a dump is running, with no busy wait
 * allowed: the snapshot must neither block it nor see its rows. */
struct writer {
	struct store *st;
	int n;
};

static int
emit_and_write(void *arg, const void *data, size_t len)
{
	struct writer *w = arg;
	char serial[16];

	(void)data;
	(void)len;
	snprintf(serial, sizeof(serial), "F%03d", w->n++);
	cert_issued(w->st, serial, "CN=during", 100);
	return 0;
}

static void
test_snapshot_isolation(void **state)
{
	struct fx *fx = *state;
	struct store_snapshot *s = NULL;
	struct store_dump_counts c;
	struct writer w = { fx->st, 0 };
	struct buf b = { 0 };
	char serial[16];
	uint64_t rows;
	int64_t seq0;
	int i;

	/* Enough to take several 64 KiB chunks. */
	for (i = 0; i < 300; i++) {
		snprintf(serial, sizeof(serial), "%04X", i);
		cert_issued(fx->st, serial, "CN=before", 700);
	}
	seq0 = seq_now(fx->st);
	/* Any lock conflict now fails at once instead of waiting. */
	sqlite3_busy_timeout(store_sqlite_db(fx->st), 0);

	OK(store_snapshot_open(fx->path, &s));
	assert_int_equal(store_snapshot_seq(s), seq0);
	/* Commits between the snapshot and the dump. */
	cert_issued(fx->st, "E000", "CN=after", 100);
	audit_add(fx->st, "after");
	/* Commits between the chunks of a dump. */
	OK(store_dump_table(s, "certs", 0, emit_and_write, &w, &rows));
	assert_true(w.n >= 3);
	assert_int_equal(rows, 300);
	/* The dump's own chunks, counted the same way. */
	OK(store_dump_table(s, "certs", 0, emit_buf, &b, &rows));
	assert_int_equal(rows, 300);
	assert_false(b.bad_chunk);
	assert_true(b.chunks >= 3);
	assert_null(strstr(b.p, "E000"));
	assert_null(strstr(b.p, "F000"));
	assert_null(strstr(b.p, "during"));
	free(b.p);
	memset(&b, 0, sizeof(b));
	OK(store_dump_table(s, "audit", 0, emit_buf, &b, &rows));
	assert_int_equal(rows, 0);
	OK(store_snapshot_counts(s, &c));
	assert_int_equal(c.certs, 300);
	assert_int_equal(c.audit, 0);
	assert_int_equal(store_snapshot_seq(s), seq0);
	store_snapshot_close(s);
	free(b.p);

	/* The writes are all there. */
	OK(store_counts(fx->st, &c));
	assert_int_equal(c.certs, 300 + 1 + (uint64_t)w.n);
	assert_int_equal(c.audit, 1);
	sqlite3_busy_timeout(store_sqlite_db(fx->st), 10000);
}

/* A snapshot of a store nobody has open (no -wal or -shm beside it). */
static void
test_snapshot_cold(void **state)
{
	static const char junk[] = "not a database, only text\n";
	struct fx *fx = *state;
	struct store_snapshot *s = NULL;
	char other[4200];
	struct buf b = { 0 };

	populate(fx->st);
	store_close(fx->st);
	fx->st = NULL;
	OK(store_snapshot_open(fx->path, &s));
	OK(store_dump_table(s, "certs", 0, emit_buf, &b, NULL));
	assert_non_null(strstr(b.p, "\"0A1B\""));
	free(b.p);
	store_snapshot_close(s);
	OK(store_open(fx->path, 0, &fx->st));

	/* No store, and a file that is not one. */
	tu_path(other, sizeof(other), fx->dir, "none.db");
	assert_int_equal(store_snapshot_open(other, &s), CK_E_NOTFOUND);
	tu_write_file(other, junk, sizeof(junk) - 1, 0600);
	assert_int_not_equal(store_snapshot_open(other, &s), 0);
	assert_true(ck_err_msg()[0] != '\0');
	/* Unknown table, negative sequence. */
	OK(store_snapshot_open(fx->path, &s));
	assert_int_equal(store_dump_table(s, "sqlite_master", 0, emit_buf, &b,
	    NULL), CK_E_INVAL);
	assert_int_equal(store_dump_table(s, "certs", -1, emit_buf, &b, NULL),
	    CK_E_INVAL);
	store_snapshot_close(s);
	store_snapshot_close(NULL);
}

static int
emit_stop(void *arg, const void *data, size_t len)
{
	(void)data;
	(void)len;
	++*(int *)arg;
	return CK_E_IO;
}

/* A line longer than a chunk goes alone; EMIT's error stops the dump. */
static void
test_chunks(void **state)
{
	struct fx *fx = *state;
	struct store_snapshot *s = NULL;
	struct buf b = { 0 };
	unsigned char *crl;
	uint64_t n, rows;
	int calls = 0;

	OK(store_crl_next_number(fx->st, &n));
	crl = fake_der(40000, 1);
	OK(store_crl_insert(fx->st, n, 1, 2, crl, 40000));
	OK(store_crl_next_number(fx->st, &n));
	crl = realloc(crl, 200000);
	assert_non_null(crl);
	memset(crl, 0xab, 200000);
	OK(store_crl_insert(fx->st, n, 3, 4, crl, 200000));
	OK(store_crl_next_number(fx->st, &n));
	OK(store_crl_insert(fx->st, n, 5, 6, crl, 10));
	free(crl);

	OK(store_snapshot_open(fx->path, &s));
	OK(store_dump_table(s, "crls", 0, emit_buf, &b, &rows));
	assert_int_equal(rows, 3);
	assert_false(b.bad_chunk);
	/* 53 KiB line, then the 266 KiB line alone, then the short one. */
	assert_int_equal(b.chunks, 3);
	free(b.p);
	assert_int_equal(store_dump_table(s, "crls", 0, emit_stop, &calls,
	    &rows), CK_E_IO);
	assert_int_equal(calls, 1);
	store_snapshot_close(s);
}

/* Load one NUL-terminated line into (10, 20]. */
static int
load_str(struct store *st, const char *table, const char *line)
{
	return store_load_line(st, table, line, strlen(line), 10, 20);
}

/* Every refusal of the loader, each with a message. */
static void
test_load_refusals(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *table, *line, *msg;
	} bad[] = {
		{ "nope", "{}", "unknown store table" },
		{ "certs", "{\"serial\":\"01\",\"status\":\"issued\","
		  "\"subject\":\"CN=a\",\"names\":\"\",\"profile\":\"p\","
		  "\"requester\":\"r\",\"tbs_sha256\":\"aa\",\"not_before\":1,"
		  "\"not_after\":2,\"created_at\":3,\"is_ca\":0,\"der\":\"MAA=\","
		  "\"revoked_at\":null,\"reason\":null,\"change_seq\":5,"
		  "\"extra\":1}", "unknown column 'extra'" },
		{ "certs", "{\"serial\":\"01\",\"status\":\"issued\","
		  "\"subject\":\"CN=a\",\"names\":\"\",\"profile\":\"p\","
		  "\"requester\":\"r\",\"tbs_sha256\":\"aa\",\"not_before\":1,"
		  "\"not_after\":2,\"created_at\":3,\"is_ca\":0,\"der\":\"MAA=\","
		  "\"revoked_at\":null,\"change_seq\":5}",
		  "column reason is missing" },
		{ "meta", "{\"key\":\"k\",\"value\":5,\"change_seq\":5}",
		  "column value must be text" },
		{ "meta", "{\"key\":\"k\",\"value\":\"v\",\"change_seq\":\"5\"}",
		  "column change_seq must be integer" },
		{ "meta", "{\"key\":\"k\",\"value\":\"v\",\"change_seq\":5.0}",
		  "must be integer" },
		{ "meta", "{\"key\":\"k\",\"value\":\"v\",\"change_seq\":true}",
		  "must be integer" },
		{ "meta", "{\"key\":\"k\",\"value\":null,\"change_seq\":5}",
		  "column value may not be null" },
		{ "meta", "{\"key\":\"k\",\"value\":{\"base64\":\"YQ==\","
		  "\"x\":1},\"change_seq\":5}", "must be text" },
		{ "meta", "{\"key\":\"k\",\"value\":{\"base64\":\"YQ=\"},"
		  "\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":5,\"change_seq\":5}", "must be a base64 string" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"abc\",\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"ab!c\",\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"YW Jj\",\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"YR==\",\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"YWJ=\",\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"=AAA\",\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"YQ==YQ==\",\"change_seq\":5}", "not valid base64" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"YQ==\",\"change_seq\":10}", "outside the set's "
		  "range (10, 20]" },
		{ "crls", "{\"number\":1,\"this_update\":1,\"next_update\":2,"
		  "\"der\":\"YQ==\",\"change_seq\":21}", "change_seq 21 is "
		  "outside" },
		{ "change_seq", "{\"id\":1,\"value\":21}", "beyond the set's "
		  "sequence 20" },
		{ "change_seq", "{\"id\":1,\"value\":2}", "value would go back "
		  "from 3 to 2" },
		{ "crl_counter", "{\"id\":1,\"value\":0,\"change_seq\":15}",
		  "value would go back from 1 to 0" },
		{ "crl_counter", "{\"id\":1,\"value\":5,\"change_seq\":25}",
		  "beyond the set's sequence" },
		{ "crl_counter", "{\"id\":2,\"value\":5,\"change_seq\":15}",
		  "refused by the store" },
		{ "certs", "{\"serial\":\"01\",\"status\":\"bogus\","
		  "\"subject\":\"CN=a\",\"names\":\"\",\"profile\":\"p\","
		  "\"requester\":\"r\",\"tbs_sha256\":\"aa\",\"not_before\":1,"
		  "\"not_after\":2,\"created_at\":3,\"is_ca\":0,\"der\":null,"
		  "\"revoked_at\":null,\"reason\":null,\"change_seq\":15}",
		  "refused by the store" },
		{ "meta", "{\"key\":\"k\",\"value\":\"v\",\"change_seq\":15",
		  "invalid JSON" },
		{ "meta", "{\"key\":\"k\",\"value\":\"v\",\"change_seq\":15}x",
		  "invalid JSON" },
		{ "meta", "", "invalid JSON" },
		{ "meta", "{\"key\":\"k\",\"key\":\"k\",\"value\":\"v\","
		  "\"change_seq\":15}", "invalid JSON" },
		{ "meta", "{\"key\":\"k\",\"value\":\"\xe9\",\"change_seq\":15}",
		  "invalid JSON" },
		{ "meta", "{\"key\":\"k\",\"value\":\"v\",\"change_seq\":"
		  "99999999999999999999}", "invalid JSON" },
		{ "meta", "[\"k\",\"v\",15]", "must be a JSON object" },
		{ "meta", "\"k\"", "invalid JSON" },
	};
	size_t i;
	int r;
	uint64_t crl;

	/* Raise the counters to something to go back from. */
	OK(store_meta_set(fx->st, "a", "1"));
	OK(store_crl_next_number(fx->st, &crl));
	assert_int_equal(seq_now(fx->st), 2);
	OK(store_meta_set(fx->st, "b", "1"));

	/* Outside a transaction. */
	ck_err_clear();
	assert_int_equal(store_load_line(fx->st, "meta", "{}", 2, 10, 20),
	    CK_E_STATE);
	assert_contains(ck_err_msg(), "not in a transaction");

	OK(store_tx_begin(fx->st));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_err_clear();
		r = store_load_line(fx->st, bad[i].table, bad[i].line,
		    strlen(bad[i].line), 10, 20);
		if (r == 0)
			fail_msg("accepted: %s: %s", bad[i].table,
			    bad[i].line);
		if (strstr(ck_err_msg(), bad[i].msg) == NULL)
			fail_msg("%s: message '%s', expected '%s'",
			    bad[i].line, ck_err_msg(), bad[i].msg);
	}
	/* "[...]" is a valid JSON value, just not a row. */
	r = store_load_line(fx->st, "meta", "[1]", 3, 10, 20);
	assert_int_equal(r, CK_E_PARSE);

	/* Sane lines pass, NULLs and the text escape included. */
	OK(load_str(fx->st, "meta", "{\"key\":\"k\",\"value\":"
	    "{\"base64\":\"Y2Fm6Q==\"},\"change_seq\":11}"));
	OK(load_str(fx->st, "change_seq", "{\"id\":1,\"value\":20}"));
	OK(load_str(fx->st, "crl_counter", "{ \"change_seq\" : 2, "
	    "\"value\": 1, \"id\": 1 }"));
	OK(load_str(fx->st, "certs", "{\"serial\":\"01\",\"status\":"
	    "\"pending\",\"subject\":\"CN=a\",\"names\":\"\",\"profile\":"
	    "\"p\",\"requester\":\"r\",\"tbs_sha256\":\"aa\",\"not_before\":1,"
	    "\"not_after\":2,\"created_at\":3,\"is_ca\":0,\"der\":null,"
	    "\"revoked_at\":null,\"reason\":null,\"change_seq\":20}"));
	OK(store_tx_commit(fx->st));
	{
		char *val = NULL;
		struct store_cert *c = NULL;

		OK(store_meta_get(fx->st, "k", &val));
		assert_string_equal(val, "caf\xe9");
		free(val);
		OK(store_cert_get(fx->st, "01", &c));
		assert_int_equal(c->status, STORE_CERT_PENDING);
		assert_null(c->der);
		assert_int_equal(c->reason, -1);
		store_cert_free(c);
	}
	/* No refused row got in. */
	{
		struct store_dump_counts c;

		OK(store_counts(fx->st, &c));
		assert_int_equal(c.certs, 1);
		assert_int_equal(c.crl_number, 1);
	}
	assert_int_equal(seq_now(fx->st), 20);
	/* Finishing raises the counter, never lowers it. */
	OK(store_load_finish(fx->st, 25));
	assert_int_equal(seq_now(fx->st), 25);
	OK(store_load_finish(fx->st, 7));
	assert_int_equal(seq_now(fx->st), 25);
}

/* ---- migration 3: the catalogue and the ledger ---- */

struct collect {
	char ids[8][65];
	int n;
};

static int
collect_backup(const struct store_backup *b, void *arg)
{
	struct collect *c = arg;

	assert_true(c->n < 8);
	snprintf(c->ids[c->n++], 65, "%s", b->id);
	assert_non_null(b->copies);
	return 0;
}

static void
test_backup_catalogue(void **state)
{
	struct fx *fx = *state;
	struct store_backup b;
	struct collect c = { .n = 0 };
	int64_t before;

	backup_add(fx->st, "b2", 10, 30);
	backup_add(fx->st, "b1", 0, 10);
	before = seq_now(fx->st);
	memset(&b, 0, sizeof(b));
	OK(store_backup_get(fx->st, "b1", &b));
	assert_string_equal(b.kind, "full");
	assert_string_equal(b.parent, "");
	assert_int_equal(b.seq_to, 10);
	assert_int_equal(b.size, 12345);
	assert_string_equal(b.copies, "[{\"path\":\"/x\",\"ok\":true}]");
	assert_null(b.verify_result);
	assert_int_equal(b.verified_at, 0);
	assert_int_equal(b.change_seq, before);

	/* Replace: a verification recorded. */
	free(b.verify_result);
	b.verify_result = strdup("ok");
	b.verified_at = 1700009999;
	OK(store_backup_put(fx->st, &b));
	store_backup_clear(&b);
	assert_null(b.copies);
	OK(store_backup_get(fx->st, "b1", &b));
	assert_string_equal(b.verify_result, "ok");
	assert_int_equal(b.verified_at, 1700009999);
	assert_int_equal(b.change_seq, before + 1);
	store_backup_clear(&b);
	store_backup_clear(NULL);

	assert_int_equal(store_backup_get(fx->st, "zz", &b), CK_E_NOTFOUND);
	assert_contains(ck_err_msg(), "zz");
	memset(&b, 0, sizeof(b));
	snprintf(b.id, sizeof(b.id), "b3");
	snprintf(b.kind, sizeof(b.kind), "partial");
	assert_int_equal(store_backup_put(fx->st, &b), CK_E_INVAL);

	/* Oldest first. */
	OK(store_backup_list(fx->st, collect_backup, &c));
	assert_int_equal(c.n, 2);
	assert_string_equal(c.ids[0], "b1");
	assert_string_equal(c.ids[1], "b2");
}

struct custody_walk {
	int64_t ids[8];
	int n;
	unsigned char prev[32];
};

static int
collect_custody(const struct store_custody *e, void *arg)
{
	struct custody_walk *w = arg;

	assert_true(w->n < 8);
	w->ids[w->n++] = e->id;
	assert_string_equal(e->place, "safe 2, shelf \"B\"");
	return 0;
}

static int
check_chain(const struct store_custody *e, void *arg)
{
	struct custody_walk *w = arg;

	assert_memory_equal(e->prev_hash, w->prev, 32);
	memcpy(w->prev, e->hash, 32);
	w->n++;
	return 0;
}

static void
test_custody(void **state)
{
	struct fx *fx = *state;
	struct custody_walk w;
	struct store_custody e;
	unsigned char h[32];
	int64_t id;

	OK(store_custody_last(fx->st, &id, h));
	assert_int_equal(id, 0);
	custody_add(fx->st, "aa11", "created");
	custody_add(fx->st, "bb22", "created");
	custody_add(fx->st, "aa11", "stored");
	OK(store_custody_last(fx->st, &id, h));
	assert_int_equal(id, 3);
	assert_int_equal(h[0], 0x12);

	memset(&w, 0, sizeof(w));
	OK(store_custody_iter(fx->st, "aa11", collect_custody, &w));
	assert_int_equal(w.n, 2);
	assert_int_equal(w.ids[0], 1);
	assert_int_equal(w.ids[1], 3);
	memset(&w, 0, sizeof(w));
	OK(store_custody_iter(fx->st, NULL, check_chain, &w));
	assert_int_equal(w.n, 3);

	/* A stale previous hash would fork the chain: refused, nothing
	 * stored, the id untouched. */
	memset(&e, 0, sizeof(e));
	e.event = (char *)"moved";
	e.artefact = (char *)"aa11";
	e.id = 99;
	assert_int_equal(store_custody_insert(fx->st, &e), CK_E_STATE);
	assert_contains(ck_err_msg(), "entry 3");
	assert_int_equal(e.id, 99);
	OK(store_custody_last(fx->st, &id, h));
	assert_int_equal(id, 3);
	assert_int_equal(store_tx_depth(fx->st), 0);
}

/* A store of schema version 2 gains the new tables when opened; until
 * then a snapshot refuses it. */
static void
test_migration(void **state)
{
	struct fx *fx = *state;
	struct store_snapshot *s = NULL;
	sqlite3 *db = NULL;

	populate(fx->st);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE backups; DROP TABLE "
	    "custody; DROP TABLE acme_accounts; DROP TABLE acme_orders; "
	    "DROP TABLE acme_authzs; DROP TABLE acme_challenges; "
	    "DROP TABLE acme_eab; DROP TABLE operator_roles; DROP TABLE "
	    "operators; DROP TABLE request_approvals; DROP TABLE requests; "
	    "PRAGMA user_version = 2", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_snapshot_open(fx->path, &s), CK_E_STORE);
	assert_contains(ck_err_msg(), "schema version 2");
	OK(store_open(fx->path, 0, &fx->st));
	assert_true(store_schema_version() >= 5);
	custody_add(fx->st, "cc33", "created");
	backup_add(fx->st, "b9", 0, 1);
	OK(store_snapshot_open(fx->path, &s));
	store_snapshot_close(s);
}

/* ---- the store as a file (store_image.c) ---- */

struct imgout {
	int fd;
	uint64_t off;
	size_t calls, heads, fail_at;	/* fail_at: 1-based, 0 never */
	struct store *writer;		/* commits while the image is made */
	int written;
};

static int
img_emit(void *arg, const void *data, size_t len)
{
	struct imgout *o = arg;
	char serial[16];

	o->calls++;
	if (o->fail_at != 0 && o->calls == o->fail_at)
		return CK_E_IO;
	assert_true(len > 0 && len <= 1024 * 1024);
	assert_int_equal(pwrite(o->fd, data, len, (off_t)o->off),
	    (ssize_t)len);
	o->off += len;
	if (o->writer != NULL && o->written < 3) {
		snprintf(serial, sizeof(serial), "D%03d", o->written++);
		cert_issued(o->writer, serial, "CN=during the image", 100);
	}
	return 0;
}

static int
img_head(void *arg, const void *data, size_t len)
{
	struct imgout *o = arg;

	o->heads++;
	assert_int_equal(pwrite(o->fd, data, len, 0), (ssize_t)len);
	return 0;
}

/* Pages 2.. in order, then page 1: the file is the snapshot, sound for
 * SQLite, equal row for row to a copy made by SQLite's own backup at the
 * same moment, and nothing committed after the snapshot is in it. */
static void
test_image(void **state)
{
	struct fx *fx = *state;
	struct store_snapshot *s = NULL;
	struct store_dump_counts c0, c1;
	struct store *st = NULL;
	struct imgout o;
	sqlite3 *src = NULL, *ref = NULL;
	sqlite3_backup *bk;
	char img[4200], refpath[4200], serial[16];
	size_t pagesize = 0;
	uint64_t size = 0;
	struct stat sb;
	int i;

	populate(fx->st);
	/* More than the image's 2 MiB page cache: SQLite spills pages. */
	for (i = 0; i < 4000; i++) {
		snprintf(serial, sizeof(serial), "1%05X", i);
		cert_issued(fx->st, serial, "CN=filler", 900);
	}
	tu_path(img, sizeof(img), fx->dir, "image.db");
	tu_path(refpath, sizeof(refpath), fx->dir, "ref.db");

	OK(store_snapshot_open(fx->path, &s));
	/* The reference: SQLite's copy of the same moment. */
	assert_int_equal(sqlite3_open(refpath, &ref), SQLITE_OK);
	bk = sqlite3_backup_init(ref, "main", store_snapshot_db(s), "main");
	assert_non_null(bk);
	assert_int_equal(sqlite3_backup_step(bk, -1), SQLITE_DONE);
	assert_int_equal(sqlite3_backup_finish(bk), SQLITE_OK);
	sqlite3_close(ref);
	/* Commits after the snapshot and while the image is made. */
	cert_issued(fx->st, "E000", "CN=after", 100);
	OK(store_snapshot_counts(s, &c0));

	memset(&o, 0, sizeof(o));
	o.writer = fx->st;
	o.fd = open(img, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(o.fd >= 0);
	OK(store_snapshot_pages(s, &pagesize, NULL));
	o.off = pagesize;	/* what EMIT gets starts at the second page */
	OK(store_snapshot_image(s, img_emit, img_head, &o, &size));
	assert_int_equal(o.heads, 1);
	assert_true(o.calls >= 4);	/* streamed, in 1 MiB chunks */
	assert_int_equal(o.written, 3);
	assert_int_equal(size, o.off);
	assert_int_equal(size % pagesize, 0);
	close(o.fd);
	store_snapshot_close(s);
	assert_int_equal(stat(img, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, size);

	compare_stores(refpath, img);
	assert_int_equal(sqlite3_open_v2(img, &src, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	{
		sqlite3_stmt *q = NULL;
		assert_int_equal(sqlite3_prepare_v2(src, "SELECT count(*) "
		    "FROM certs WHERE serial IN ('E000', 'D000', 'D001')", -1,
		    &q, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(q, 0), 0);
		sqlite3_finalize(q);
	}
	sqlite3_close(src);

	/* A rollback-journal header (not the store's WAL one), so that it
	 * opens from read-only media. */
	{
		unsigned char hdr[100];
		int hfd = open(img, O_RDONLY);
		assert_true(hfd >= 0);
		assert_int_equal(read(hfd, hdr, sizeof(hdr)), 100);
		close(hfd);
		assert_memory_equal(hdr, "SQLite format 3", 16);
		assert_int_equal(hdr[18], 1);
		assert_int_equal(hdr[19], 1);
	}
	/* It passes the check, opens as a store, counts as the snapshot. */
	OK(store_image_check(img));
	OK(store_open(img, 0, &st));
	OK(store_counts(st, &c1));
	assert_int_equal(c1.certs, c0.certs);
	assert_int_equal(c1.audit, c0.audit);
	assert_memory_equal(c1.audit_head, c0.audit_head, 32);
	store_close(st);
}

/* A damaged store file is named by the check (or refused when opened);
 * a failing consumer stops the image with its error. */
static void
test_image_faults(void **state)
{
	struct fx *fx = *state;
	struct store_snapshot *s = NULL;
	struct store *st = NULL;
	struct imgout o;
	char img[4200], serial[16];
	unsigned char junk[64];
	size_t pagesize = 0;
	int i, r, fd;

	populate(fx->st);
	for (i = 0; i < 3000; i++) {
		snprintf(serial, sizeof(serial), "2%05X", i);
		cert_issued(fx->st, serial, "CN=filler", 900);
	}
	tu_path(img, sizeof(img), fx->dir, "image.db");
	OK(store_snapshot_open(fx->path, &s));
	OK(store_snapshot_pages(s, &pagesize, NULL));
	memset(&o, 0, sizeof(o));
	o.fail_at = 2;
	o.fd = open(img, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(o.fd >= 0);
	assert_int_equal(store_snapshot_image(s, img_emit, img_head, &o, NULL),
	    CK_E_IO);
	assert_int_equal(o.heads, 0);
	/* The snapshot is still usable: a second image goes through. */
	assert_int_equal(ftruncate(o.fd, 0), 0);
	memset(&o, 0, sizeof(o));
	o.fd = open(img, O_RDWR);
	o.off = pagesize;
	assert_true(o.fd >= 0);
	OK(store_snapshot_image(s, img_emit, img_head, &o, NULL));
	close(o.fd);
	store_snapshot_close(s);

	/* Garbage over the middle of a b-tree page deep in the file. */
	memset(junk, 0xa5, sizeof(junk));
	fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof(junk),
	    (off_t)(pagesize * 200)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(store_image_check(img), CK_E_TAMPER);
	assert_contains(ck_err_msg(), "damaged");
	(void)st;
	(void)r;
}

/* Stores with the smallest and the largest page sizes SQLite has. */
static void
test_image_page_sizes(void **state)
{
	static const int sizes[] = { 512, 65536 };
	struct fx *fx = *state;
	size_t k;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct store_snapshot *s = NULL;
		struct store *st = NULL;
		struct imgout o;
		sqlite3 *db = NULL;
		char path[4200], img[4200], sql[64], serial[16];
		size_t pagesize = 0;
		uint64_t npages = 0, size = 0;
		int i;

		snprintf(serial, sizeof(serial), "p%d.db", sizes[k]);
		tu_path(path, sizeof(path), fx->dir, serial);
		snprintf(serial, sizeof(serial), "i%d.db", sizes[k]);
		tu_path(img, sizeof(img), fx->dir, serial);
		/* The page size holds once the WAL header is written. */
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", sizes[k]);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL",
		    NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		/* An existing, empty database: opened, it gets the schema. */
		OK(store_open(path, 0, &st));
		populate(st);
		for (i = 0; i < 600; i++) {
			snprintf(serial, sizeof(serial), "3%05X", i);
			cert_issued(st, serial, "CN=filler", 700);
		}
		OK(store_snapshot_open(path, &s));
		OK(store_snapshot_pages(s, &pagesize, &npages));
		assert_int_equal(pagesize, (size_t)sizes[k]);
		memset(&o, 0, sizeof(o));
		o.fd = open(img, O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_true(o.fd >= 0);
		o.off = pagesize;
		OK(store_snapshot_image(s, img_emit, img_head, &o, &size));
		close(o.fd);
		store_snapshot_close(s);
		store_close(st);
		assert_int_equal(size, npages * pagesize);
		OK(store_image_check(img));
		compare_stores(path, img);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_schema_covered),
		T(test_roundtrip_full),
		T(test_escaping),
		T(test_escaping_offsets),
		T(test_incremental),
		T(test_snapshot_isolation),
		T(test_snapshot_cold),
		T(test_chunks),
		T(test_load_refusals),
		T(test_backup_catalogue),
		T(test_custody),
		T(test_migration),
		T(test_image),
		T(test_image_faults),
		T(test_image_page_sizes),
#undef T
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	tu_keys_free();
	return r;
}
