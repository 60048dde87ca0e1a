/*
 * test_store_acme.c - src/store/store_acme.c and migration 4: ACME
 * accounts, orders, authorizations and challenges in the store; their
 * guarded transitions, atomic order creation, survival across a reopen,
 * the upgrade of a version-3 store, and their dump/load round trip.
 *
 * What is on disk is checked through sqlite3 directly where it matters,
 * so the checks do not trust the code under test.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store.h"
#include "store/store_acme.h"
#include "store/store_dump.h"
#include "store/store_int.h"

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

static int64_t
seq_now(struct store *st)
{
	int64_t v = -1;

	OK(store_change_seq(st, &v));
	return v;
}

/* One integer from SQL on its own connection to PATH. */
static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* ---- fixtures ---- */

static void
account_add(struct store *st, const char *id, const char *thumb)
{
	struct store_acme_account a;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "%s", id);
	snprintf(a.jwk_thumbprint, sizeof(a.jwk_thumbprint), "%s", thumb);
	a.jwk = (char *)"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"AA\","
	    "\"y\":\"BB\"}";
	a.contact = (char *)"[\"mailto:ops@example.com\"]";
	a.tos_agreed = 1;
	a.created_at = 1700000000;
	OK(store_acme_account_create(st, &a));
}

/* An order ID of ACCOUNT: authorizations ID-a (dns example.com) and ID-b
 * (dns *.example.org), each with challenges ID-a-h (http-01), ID-a-d
 * (dns-01); the wildcard gets only dns-01. */
struct order_fx {
	struct store_acme_order o;
	struct store_acme_authz az[2];
	struct store_acme_challenge ch[3];
};

static void
order_fill(struct order_fx *f, const char *id, const char *account)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->o.id, sizeof(f->o.id), "%s", id);
	snprintf(f->o.account_id, sizeof(f->o.account_id), "%s", account);
	f->o.expires = 1700604800;
	f->o.identifiers = (char *)"[{\"type\":\"dns\",\"value\":"
	    "\"example.com\"},{\"type\":\"dns\",\"value\":\"*.example.org\"}]";
	f->o.not_after = 1707776000;
	f->o.profile = (char *)"server";
	f->o.replaces = (char *)"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
	f->o.created_at = 1700000100;

	snprintf(f->az[0].id, sizeof(f->az[0].id), "%s-a", id);
	snprintf(f->az[0].identifier_type, sizeof(f->az[0].identifier_type),
	    "dns");
	snprintf(f->az[0].identifier_value,
	    sizeof(f->az[0].identifier_value), "example.com");
	f->az[0].expires = 1700604800;
	f->az[0].created_at = 1700000100;
	f->az[0].challenges = &f->ch[0];
	f->az[0].nchallenges = 2;
	snprintf(f->az[1].id, sizeof(f->az[1].id), "%s-b", id);
	snprintf(f->az[1].identifier_type, sizeof(f->az[1].identifier_type),
	    "dns");
	snprintf(f->az[1].identifier_value,
	    sizeof(f->az[1].identifier_value), "example.org");
	f->az[1].wildcard = 1;
	f->az[1].expires = 1700604800;
	f->az[1].created_at = 1700000100;
	f->az[1].challenges = &f->ch[2];
	f->az[1].nchallenges = 1;

	snprintf(f->ch[0].id, sizeof(f->ch[0].id), "%s-a-h", id);
	snprintf(f->ch[0].type, sizeof(f->ch[0].type), "http-01");
	snprintf(f->ch[0].token, sizeof(f->ch[0].token), "tok-%s-a-h", id);
	snprintf(f->ch[1].id, sizeof(f->ch[1].id), "%s-a-d", id);
	snprintf(f->ch[1].type, sizeof(f->ch[1].type), "dns-01");
	snprintf(f->ch[1].token, sizeof(f->ch[1].token), "tok-%s-a-d", id);
	snprintf(f->ch[2].id, sizeof(f->ch[2].id), "%s-b-d", id);
	snprintf(f->ch[2].type, sizeof(f->ch[2].type), "dns-01");
	snprintf(f->ch[2].token, sizeof(f->ch[2].token), "tok-%s-b-d", id);
}

static void
order_add(struct store *st, const char *id, const char *account)
{
	struct order_fx f;

	order_fill(&f, id, account);
	OK(store_acme_order_create(st, &f.o, f.az, 2));
}

/* Number of rows of the four ACME tables whose id starts with PREFIX. */
static int64_t
acme_rows(const char *path, const char *prefix)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT (SELECT count(*) FROM acme_orders "
	    "WHERE id LIKE '%s%%') + (SELECT count(*) FROM acme_authzs WHERE "
	    "id LIKE '%s%%') + (SELECT count(*) FROM acme_challenges WHERE "
	    "id LIKE '%s%%')", prefix, prefix, prefix);
	return sql_int(path, sql);
}

/* ---- accounts ---- */

static void
test_account_create_get(void **state)
{
	struct fx *fx = *state;
	struct store_acme_account a, b;
	int64_t s0;

	s0 = seq_now(fx->st);
	account_add(fx->st, "acct1", "thumb1");
	assert_int_equal(seq_now(fx->st), s0 + 1);

	OK(store_acme_account_get(fx->st, "acct1", &a));
	assert_string_equal(a.id, "acct1");
	assert_string_equal(a.jwk_thumbprint, "thumb1");
	assert_string_equal(a.status, "valid");
	assert_string_equal(a.contact, "[\"mailto:ops@example.com\"]");
	assert_non_null(strstr(a.jwk, "\"kty\":\"EC\""));
	assert_null(a.eab_kid);
	assert_int_equal(a.tos_agreed, 1);
	assert_int_equal(a.created_at, 1700000000);
	assert_int_equal(a.change_seq, s0 + 1);

	OK(store_acme_account_get_by_key(fx->st, "thumb1", &b));
	assert_string_equal(b.id, "acct1");
	assert_string_equal(b.jwk, a.jwk);
	store_acme_account_clear(&a);
	store_acme_account_clear(&b);

	/* With an EAB key id and no contact. */
	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "acct2");
	snprintf(a.jwk_thumbprint, sizeof(a.jwk_thumbprint), "thumb2");
	a.jwk = (char *)"{\"kty\":\"OKP\"}";
	a.eab_kid = (char *)"kid-7";
	OK(store_acme_account_create(fx->st, &a));
	OK(store_acme_account_get(fx->st, "acct2", &b));
	assert_string_equal(b.eab_kid, "kid-7");
	assert_string_equal(b.contact, "[]");
	assert_int_equal(b.tos_agreed, 0);
	assert_int_equal(b.change_seq, s0 + 2);
	store_acme_account_clear(&b);

	/* Refusals change nothing, not even the sequence. */
	s0 = seq_now(fx->st);
	snprintf(a.id, sizeof(a.id), "acct3");
	snprintf(a.jwk_thumbprint, sizeof(a.jwk_thumbprint), "thumb1");
	assert_int_equal(store_acme_account_create(fx->st, &a), CK_E_EXISTS);
	assert_contains(ck_err_msg(), "acct1");	/* the key's owner */
	snprintf(a.id, sizeof(a.id), "acct1");
	snprintf(a.jwk_thumbprint, sizeof(a.jwk_thumbprint), "thumb3");
	assert_int_equal(store_acme_account_create(fx->st, &a), CK_E_EXISTS);
	assert_contains(ck_err_msg(), "acct1 already exists");
	snprintf(a.id, sizeof(a.id), "acct4");
	snprintf(a.status, sizeof(a.status), "pending");
	assert_int_equal(store_acme_account_create(fx->st, &a), CK_E_INVAL);
	a.status[0] = '\0';
	a.jwk = NULL;
	assert_int_equal(store_acme_account_create(fx->st, &a), CK_E_INVAL);
	assert_int_equal(seq_now(fx->st), s0);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM "
	    "acme_accounts"), 2);
	assert_int_equal(store_tx_depth(fx->st), 0);

	assert_int_equal(store_acme_account_get(fx->st, "nope", &a),
	    CK_E_NOTFOUND);
	assert_int_equal(store_acme_account_get_by_key(fx->st, "nope", &a),
	    CK_E_NOTFOUND);
	store_acme_account_clear(&a);	/* zeroed by the failed get */
}

static void
test_account_update(void **state)
{
	struct fx *fx = *state;
	struct store_acme_account a;
	int64_t s0;

	account_add(fx->st, "acct1", "thumb1");
	account_add(fx->st, "acct2", "thumb2");

	s0 = seq_now(fx->st);
	OK(store_acme_account_update(fx->st, "acct1", NULL,
	    "[\"mailto:new@example.com\"]"));
	OK(store_acme_account_get(fx->st, "acct1", &a));
	assert_string_equal(a.contact, "[\"mailto:new@example.com\"]");
	assert_string_equal(a.status, "valid");
	assert_int_equal(a.change_seq, s0 + 1);
	store_acme_account_clear(&a);

	/* Key rollover. */
	OK(store_acme_account_key_change(fx->st, "acct1", "thumb1", "thumb9",
	    "{\"kty\":\"RSA\"}"));
	OK(store_acme_account_get_by_key(fx->st, "thumb9", &a));
	assert_string_equal(a.id, "acct1");
	assert_string_equal(a.jwk, "{\"kty\":\"RSA\"}");
	assert_int_equal(a.change_seq, s0 + 2);
	store_acme_account_clear(&a);
	assert_int_equal(store_acme_account_get_by_key(fx->st, "thumb1", &a),
	    CK_E_NOTFOUND);

	s0 = seq_now(fx->st);
	/* The new key is another account's. */
	assert_int_equal(store_acme_account_key_change(fx->st, "acct1",
	    "thumb9", "thumb2", "{}"), CK_E_EXISTS);
	/* A concurrent rollover already replaced the old key. */
	assert_int_equal(store_acme_account_key_change(fx->st, "acct1",
	    "thumb1", "thumb8", "{}"), CK_E_STATE);
	assert_int_equal(store_acme_account_key_change(fx->st, "nope",
	    "thumb1", "thumb8", "{}"), CK_E_NOTFOUND);
	/* Only the edges of RFC 8555. */
	assert_int_equal(store_acme_account_update(fx->st, "acct1", "valid",
	    NULL), CK_E_INVAL);
	assert_int_equal(store_acme_account_update(fx->st, "nope",
	    "deactivated", NULL), CK_E_NOTFOUND);
	assert_int_equal(seq_now(fx->st), s0);
	OK(store_acme_account_get(fx->st, "acct1", &a));
	assert_string_equal(a.jwk_thumbprint, "thumb9");
	assert_string_equal(a.jwk, "{\"kty\":\"RSA\"}");
	store_acme_account_clear(&a);

	/* Deactivated: stays so, and takes no more changes. */
	OK(store_acme_account_update(fx->st, "acct1", "deactivated", NULL));
	s0 = seq_now(fx->st);
	assert_int_equal(store_acme_account_update(fx->st, "acct1", NULL,
	    "[]"), CK_E_STATE);
	assert_contains(ck_err_msg(), "deactivated");
	assert_int_equal(store_acme_account_update(fx->st, "acct1", "revoked",
	    NULL), CK_E_STATE);
	assert_int_equal(store_acme_account_key_change(fx->st, "acct1",
	    "thumb9", "thumb7", "{}"), CK_E_STATE);
	assert_int_equal(seq_now(fx->st), s0);
	OK(store_acme_account_get(fx->st, "acct1", &a));
	assert_string_equal(a.status, "deactivated");
	assert_string_equal(a.contact, "[\"mailto:new@example.com\"]");
	assert_string_equal(a.jwk_thumbprint, "thumb9");
	assert_int_equal(a.change_seq, s0);
	store_acme_account_clear(&a);
	assert_int_equal(store_tx_depth(fx->st), 0);
}

/* ---- orders ---- */

static int
collect_authz(const struct store_acme_authz *a, void *arg)
{
	struct store_acme_authz *out = arg;
	size_t i;

	for (i = 0; out[i].id[0] != '\0'; i++)
		;
	assert_true(i < 4);
	out[i] = *a;
	out[i].challenges = NULL;
	return 0;
}

static void
test_order_create_get(void **state)
{
	struct fx *fx = *state;
	struct store_acme_order o;
	struct store_acme_authz a, list[5];
	struct store_acme_challenge c;
	int64_t s0;

	account_add(fx->st, "acct1", "thumb1");
	s0 = seq_now(fx->st);
	order_add(fx->st, "ord1", "acct1");
	/* One sequence value for the lot, on every row. */
	assert_int_equal(seq_now(fx->st), s0 + 1);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM acme_orders "
	    "WHERE change_seq = (SELECT value FROM change_seq)"), 1);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM acme_authzs "
	    "WHERE change_seq = (SELECT value FROM change_seq)"), 2);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM "
	    "acme_challenges WHERE change_seq = (SELECT value FROM "
	    "change_seq)"), 3);
	/* Absent values are NULL on disk. */
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM acme_orders "
	    "WHERE not_before IS NULL AND cert_serial IS NULL AND error IS "
	    "NULL AND not_after = 1707776000"), 1);

	OK(store_acme_order_get(fx->st, "ord1", &o));
	assert_string_equal(o.id, "ord1");
	assert_string_equal(o.account_id, "acct1");
	assert_string_equal(o.status, "pending");
	assert_int_equal(o.expires, 1700604800);
	assert_non_null(strstr(o.identifiers, "*.example.org"));
	assert_int_equal(o.not_before, 0);
	assert_int_equal(o.not_after, 1707776000);
	assert_string_equal(o.profile, "server");
	assert_string_equal(o.cert_serial, "");
	assert_null(o.error);
	assert_string_equal(o.replaces, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	assert_int_equal(o.created_at, 1700000100);
	assert_int_equal(o.change_seq, s0 + 1);
	store_acme_order_clear(&o);

	OK(store_acme_authz_get(fx->st, "ord1-a", &a));
	assert_string_equal(a.account_id, "acct1");
	assert_string_equal(a.order_id, "ord1");
	assert_string_equal(a.identifier_type, "dns");
	assert_string_equal(a.identifier_value, "example.com");
	assert_int_equal(a.wildcard, 0);
	assert_string_equal(a.status, "pending");
	assert_int_equal(a.expires, 1700604800);
	assert_int_equal(a.nchallenges, 2);
	/* Sorted by type. */
	assert_string_equal(a.challenges[0].type, "dns-01");
	assert_string_equal(a.challenges[0].id, "ord1-a-d");
	assert_string_equal(a.challenges[0].token, "tok-ord1-a-d");
	assert_string_equal(a.challenges[0].authz_id, "ord1-a");
	assert_string_equal(a.challenges[0].status, "pending");
	assert_int_equal(a.challenges[0].validated, 0);
	assert_null(a.challenges[0].error);
	assert_string_equal(a.challenges[1].type, "http-01");
	store_acme_authz_clear(&a);

	OK(store_acme_authz_get(fx->st, "ord1-b", &a));
	assert_int_equal(a.wildcard, 1);
	assert_int_equal(a.nchallenges, 1);
	assert_string_equal(a.challenges[0].id, "ord1-b-d");
	store_acme_authz_clear(&a);

	memset(list, 0, sizeof(list));
	OK(store_acme_order_authzs(fx->st, "ord1", collect_authz, list));
	assert_string_equal(list[0].id, "ord1-a");
	assert_string_equal(list[1].id, "ord1-b");
	assert_string_equal(list[2].id, "");
	OK(store_acme_order_authzs(fx->st, "nope", collect_authz, list + 2));
	assert_string_equal(list[2].id, "");

	OK(store_acme_challenge_get(fx->st, "ord1-a-h", &c));
	assert_string_equal(c.authz_id, "ord1-a");
	assert_string_equal(c.type, "http-01");
	store_acme_challenge_clear(&c);

	assert_int_equal(store_acme_order_get(fx->st, "nope", &o),
	    CK_E_NOTFOUND);
	assert_int_equal(store_acme_authz_get(fx->st, "nope", &a),
	    CK_E_NOTFOUND);
	assert_int_equal(store_acme_challenge_get(fx->st, "nope", &c),
	    CK_E_NOTFOUND);
}

/* A failure midway leaves no row of the order; inside an outer
 * transaction, only the failed order is undone. */
static void
test_order_atomic(void **state)
{
	struct fx *fx = *state;
	struct order_fx f;
	int64_t s0;

	account_add(fx->st, "acct1", "thumb1");
	order_add(fx->st, "ord1", "acct1");
	s0 = seq_now(fx->st);

	/* The last challenge's id repeats the first. */
	order_fill(&f, "ord2", "acct1");
	snprintf(f.ch[2].id, sizeof(f.ch[2].id), "ord2-a-h");
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_EXISTS);
	assert_contains(ck_err_msg(), "challenge ord2-a-h");
	assert_int_equal(acme_rows(fx->path, "ord2"), 0);
	/* An authorization id of another order. */
	order_fill(&f, "ord2", "acct1");
	snprintf(f.az[1].id, sizeof(f.az[1].id), "ord1-a");
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_EXISTS);
	assert_int_equal(acme_rows(fx->path, "ord2"), 0);
	/* The order's own id. */
	order_fill(&f, "ord1", "acct1");
	snprintf(f.az[0].id, sizeof(f.az[0].id), "new-a");
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_EXISTS);
	assert_int_equal(acme_rows(fx->path, "new"), 0);
	assert_int_equal(seq_now(fx->st), s0);
	assert_int_equal(acme_rows(fx->path, "ord1"), 6);

	/* Refused before any write. */
	order_fill(&f, "ord3", "acct1");
	snprintf(f.az[0].identifier_type, sizeof(f.az[0].identifier_type),
	    "email");
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_INVAL);
	order_fill(&f, "ord3", "acct1");
	snprintf(f.az[1].identifier_type, sizeof(f.az[1].identifier_type),
	    "ip");			/* a wildcard IP */
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_INVAL);
	order_fill(&f, "ord3", "acct1");
	snprintf(f.ch[1].type, sizeof(f.ch[1].type), "tls-sni-01");
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_INVAL);
	order_fill(&f, "ord3", "acct1");
	snprintf(f.o.status, sizeof(f.o.status), "valid");
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_INVAL);
	order_fill(&f, "ord3", "acct1");
	f.ch[0].token[0] = '\0';
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_INVAL);
	assert_int_equal(acme_rows(fx->path, "ord3"), 0);
	assert_int_equal(seq_now(fx->st), s0);

	/* In a batch: the good order stays, the bad one is undone. */
	OK(store_tx_begin(fx->st));
	order_add(fx->st, "ord4", "acct1");
	order_fill(&f, "ord5", "acct1");
	snprintf(f.ch[1].id, sizeof(f.ch[1].id), "ord4-a-h");
	assert_int_equal(store_acme_order_create(fx->st, &f.o, f.az, 2),
	    CK_E_EXISTS);
	assert_int_equal(store_tx_depth(fx->st), 1);
	OK(store_tx_commit(fx->st));
	assert_int_equal(acme_rows(fx->path, "ord4"), 6);
	assert_int_equal(acme_rows(fx->path, "ord5"), 0);
	assert_int_equal(seq_now(fx->st), s0 + 1);
}

struct collect_orders {
	char ids[8][STORE_ACME_ID_SIZE];
	size_t n;
	size_t stop_at;		/* 1-based; 0: never */
};

static int
collect_order(const struct store_acme_order *o, void *arg)
{
	struct collect_orders *c = arg;

	assert_true(c->n < 8);
	snprintf(c->ids[c->n++], STORE_ACME_ID_SIZE, "%s", o->id);
	assert_string_equal(o->status, "pending");
	return c->stop_at != 0 && c->n == c->stop_at ? 42 : 0;
}

static void
test_order_list(void **state)
{
	struct fx *fx = *state;
	struct collect_orders c;
	size_t n;

	account_add(fx->st, "acct1", "thumb1");
	account_add(fx->st, "acct2", "thumb2");
	order_add(fx->st, "o3", "acct1");
	order_add(fx->st, "o1", "acct1");
	order_add(fx->st, "o5", "acct2");
	order_add(fx->st, "o2", "acct1");
	order_add(fx->st, "o4", "acct1");

	memset(&c, 0, sizeof(c));
	OK(store_acme_order_list(fx->st, "acct1", NULL, 0, collect_order, &c,
	    &n));
	assert_int_equal(n, 4);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.ids[0], "o1");
	assert_string_equal(c.ids[1], "o2");
	assert_string_equal(c.ids[2], "o3");
	assert_string_equal(c.ids[3], "o4");

	/* Pages of two. */
	memset(&c, 0, sizeof(c));
	OK(store_acme_order_list(fx->st, "acct1", "", 2, collect_order, &c,
	    &n));
	assert_int_equal(n, 2);
	assert_string_equal(c.ids[1], "o2");
	OK(store_acme_order_list(fx->st, "acct1", "o2", 2, collect_order, &c,
	    &n));
	assert_int_equal(n, 2);
	assert_string_equal(c.ids[2], "o3");
	assert_string_equal(c.ids[3], "o4");
	OK(store_acme_order_list(fx->st, "acct1", "o4", 2, collect_order, &c,
	    &n));
	assert_int_equal(n, 0);

	memset(&c, 0, sizeof(c));
	OK(store_acme_order_list(fx->st, "acct2", NULL, 0, collect_order, &c,
	    &n));
	assert_int_equal(n, 1);
	assert_string_equal(c.ids[0], "o5");
	OK(store_acme_order_list(fx->st, "nope", NULL, 0, collect_order, &c,
	    &n));
	assert_int_equal(n, 0);

	/* The callback stops the walk. */
	memset(&c, 0, sizeof(c));
	c.stop_at = 2;
	assert_int_equal(store_acme_order_list(fx->st, "acct1", NULL, 0,
	    collect_order, &c, &n), 42);
	assert_int_equal(c.n, 2);
}

/* ---- transitions ---- */

static void
status_is(struct store *st, const char *kind, const char *id,
    const char *status)
{
	struct store_acme_order o;
	struct store_acme_authz a;
	struct store_acme_challenge c;

	if (strcmp(kind, "order") == 0) {
		OK(store_acme_order_get(st, id, &o));
		assert_string_equal(o.status, status);
		store_acme_order_clear(&o);
	} else if (strcmp(kind, "authz") == 0) {
		OK(store_acme_authz_get(st, id, &a));
		assert_string_equal(a.status, status);
		store_acme_authz_clear(&a);
	} else {
		OK(store_acme_challenge_get(st, id, &c));
		assert_string_equal(c.status, status);
		store_acme_challenge_clear(&c);
	}
}

static void
test_transitions(void **state)
{
	struct fx *fx = *state;
	struct store_acme_challenge c;
	struct store_acme_order o;
	int64_t s0;

	account_add(fx->st, "acct1", "thumb1");
	order_add(fx->st, "ord1", "acct1");

	/* Challenge: pending -> processing -> valid. */
	s0 = seq_now(fx->st);
	OK(store_acme_challenge_transition(fx->st, "ord1-a-h", "pending",
	    "processing", 0, NULL));
	OK(store_acme_challenge_get(fx->st, "ord1-a-h", &c));
	assert_string_equal(c.status, "processing");
	assert_int_equal(c.change_seq, s0 + 1);
	store_acme_challenge_clear(&c);
	/* A second request for the same challenge loses. */
	assert_int_equal(store_acme_challenge_transition(fx->st, "ord1-a-h",
	    "pending", "processing", 0, NULL), CK_E_STATE);
	assert_contains(ck_err_msg(), "processing");
	/* Valid needs its time. */
	assert_int_equal(store_acme_challenge_transition(fx->st, "ord1-a-h",
	    "processing", "valid", 0, NULL), CK_E_INVAL);
	OK(store_acme_challenge_transition(fx->st, "ord1-a-h", "processing",
	    "valid", 1700000200, NULL));
	OK(store_acme_challenge_get(fx->st, "ord1-a-h", &c));
	assert_string_equal(c.status, "valid");
	assert_int_equal(c.validated, 1700000200);
	assert_null(c.error);
	assert_int_equal(c.change_seq, s0 + 2);
	store_acme_challenge_clear(&c);
	/* Never back. */
	assert_int_equal(store_acme_challenge_transition(fx->st, "ord1-a-h",
	    "valid", "pending", 0, NULL), CK_E_INVAL);
	assert_int_equal(store_acme_challenge_transition(fx->st, "ord1-a-h",
	    "processing", "invalid", 0, "{}"), CK_E_STATE);
	assert_int_equal(store_acme_challenge_transition(fx->st, "nope",
	    "pending", "processing", 0, NULL), CK_E_NOTFOUND);
	assert_int_equal(seq_now(fx->st), s0 + 2);
	status_is(fx->st, "challenge", "ord1-a-h", "valid");

	/* Another challenge fails, with its problem document. */
	OK(store_acme_challenge_transition(fx->st, "ord1-b-d", "pending",
	    "processing", 0, NULL));
	OK(store_acme_challenge_transition(fx->st, "ord1-b-d", "processing",
	    "invalid", 0, "{\"type\":\"urn:ietf:params:acme:error:dns\"}"));
	OK(store_acme_challenge_get(fx->st, "ord1-b-d", &c));
	assert_string_equal(c.status, "invalid");
	assert_string_equal(c.error,
	    "{\"type\":\"urn:ietf:params:acme:error:dns\"}");
	assert_int_equal(c.validated, 0);
	store_acme_challenge_clear(&c);

	/* Authorizations. */
	s0 = seq_now(fx->st);
	OK(store_acme_authz_transition(fx->st, "ord1-a", "pending", "valid"));
	assert_int_equal(seq_now(fx->st), s0 + 1);
	assert_int_equal(store_acme_authz_transition(fx->st, "ord1-a",
	    "pending", "invalid"), CK_E_STATE);
	assert_int_equal(store_acme_authz_transition(fx->st, "ord1-a",
	    "valid", "pending"), CK_E_INVAL);
	assert_int_equal(store_acme_authz_transition(fx->st, "ord1-a",
	    "invalid", "valid"), CK_E_INVAL);
	assert_int_equal(store_acme_authz_transition(fx->st, "nope",
	    "pending", "valid"), CK_E_NOTFOUND);
	assert_int_equal(seq_now(fx->st), s0 + 1);
	status_is(fx->st, "authz", "ord1-a", "valid");
	OK(store_acme_authz_transition(fx->st, "ord1-b", "pending", "valid"));

	/* Order: pending -> ready -> processing -> valid with its cert. */
	s0 = seq_now(fx->st);
	assert_int_equal(store_acme_order_transition(fx->st, "ord1", "ready",
	    "processing", NULL), CK_E_STATE);
	assert_int_equal(store_acme_order_set_cert(fx->st, "ord1", "0A1B"),
	    CK_E_STATE);
	assert_int_equal(store_acme_order_transition(fx->st, "ord1",
	    "processing", "valid", NULL), CK_E_INVAL);
	assert_int_equal(store_acme_order_transition(fx->st, "ord1", "pending",
	    "processing", NULL), CK_E_INVAL);
	assert_int_equal(seq_now(fx->st), s0);
	OK(store_acme_order_transition(fx->st, "ord1", "pending", "ready",
	    NULL));
	OK(store_acme_order_transition(fx->st, "ord1", "ready", "processing",
	    NULL));
	status_is(fx->st, "order", "ord1", "processing");
	OK(store_acme_order_set_cert(fx->st, "ord1", "0A1B"));
	OK(store_acme_order_get(fx->st, "ord1", &o));
	assert_string_equal(o.status, "valid");
	assert_string_equal(o.cert_serial, "0A1B");
	assert_null(o.error);
	assert_int_equal(o.change_seq, s0 + 3);
	store_acme_order_clear(&o);
	assert_int_equal(store_acme_order_set_cert(fx->st, "ord1", "FFFF"),
	    CK_E_STATE);
	assert_int_equal(store_acme_order_transition(fx->st, "ord1",
	    "processing", "invalid", "{}"), CK_E_STATE);
	assert_int_equal(store_acme_order_set_cert(fx->st, "nope", "01"),
	    CK_E_NOTFOUND);
	OK(store_acme_order_get(fx->st, "ord1", &o));
	assert_string_equal(o.cert_serial, "0A1B");
	assert_int_equal(o.change_seq, s0 + 3);
	store_acme_order_clear(&o);
	assert_int_equal(seq_now(fx->st), s0 + 3);

	/* An order that fails keeps its problem document. */
	order_add(fx->st, "ord2", "acct1");
	OK(store_acme_order_transition(fx->st, "ord2", "pending", "invalid",
	    "{\"type\":\"urn:ietf:params:acme:error:unauthorized\"}"));
	OK(store_acme_order_get(fx->st, "ord2", &o));
	assert_string_equal(o.status, "invalid");
	assert_string_equal(o.error,
	    "{\"type\":\"urn:ietf:params:acme:error:unauthorized\"}");
	store_acme_order_clear(&o);
	assert_int_equal(store_acme_order_transition(fx->st, "ord2", "invalid",
	    "pending", NULL), CK_E_INVAL);
	assert_int_equal(store_tx_depth(fx->st), 0);
}

/* A valid, unexpired authorization of the account for the identifier. */
static void
test_find_valid(void **state)
{
	struct fx *fx = *state;
	struct store_acme_authz a;
	struct order_fx f;

	account_add(fx->st, "acct1", "thumb1");
	account_add(fx->st, "acct2", "thumb2");
	order_add(fx->st, "ord1", "acct1");
	assert_int_equal(store_acme_authz_find_valid(fx->st, "acct1", "dns",
	    "example.com", 0, 1700000000, &a), CK_E_NOTFOUND);
	OK(store_acme_authz_transition(fx->st, "ord1-a", "pending", "valid"));
	OK(store_acme_authz_transition(fx->st, "ord1-b", "pending", "valid"));

	OK(store_acme_authz_find_valid(fx->st, "acct1", "dns", "example.com",
	    0, 1700000000, &a));
	assert_string_equal(a.id, "ord1-a");
	assert_string_equal(a.status, "valid");
	store_acme_authz_clear(&a);
	/* Expired at its expiry. */
	assert_int_equal(store_acme_authz_find_valid(fx->st, "acct1", "dns",
	    "example.com", 0, 1700604800, &a), CK_E_NOTFOUND);
	/* Not for another account, type or wildcard. */
	assert_int_equal(store_acme_authz_find_valid(fx->st, "acct2", "dns",
	    "example.com", 0, 1700000000, &a), CK_E_NOTFOUND);
	assert_int_equal(store_acme_authz_find_valid(fx->st, "acct1", "ip",
	    "example.com", 0, 1700000000, &a), CK_E_NOTFOUND);
	assert_int_equal(store_acme_authz_find_valid(fx->st, "acct1", "dns",
	    "example.com", 1, 1700000000, &a), CK_E_NOTFOUND);
	OK(store_acme_authz_find_valid(fx->st, "acct1", "dns", "example.org",
	    1, 1700000000, &a));
	assert_string_equal(a.id, "ord1-b");
	assert_int_equal(a.wildcard, 1);
	store_acme_authz_clear(&a);

	/* Of two, the one that lasts longer; a deactivated one not. */
	order_fill(&f, "ord2", "acct1");
	f.az[0].expires = 1709000000;
	snprintf(f.az[0].status, sizeof(f.az[0].status), "valid");
	OK(store_acme_order_create(fx->st, &f.o, f.az, 2));
	OK(store_acme_authz_find_valid(fx->st, "acct1", "dns", "example.com",
	    0, 1700000000, &a));
	assert_string_equal(a.id, "ord2-a");
	store_acme_authz_clear(&a);
	OK(store_acme_authz_transition(fx->st, "ord2-a", "valid",
	    "deactivated"));
	OK(store_acme_authz_find_valid(fx->st, "acct1", "dns", "example.com",
	    0, 1700000000, &a));
	assert_string_equal(a.id, "ord1-a");
	store_acme_authz_clear(&a);
	assert_int_equal(store_acme_authz_find_valid(fx->st, "acct1", "dns",
	    "example.com", 0, 1701000000, &a), CK_E_NOTFOUND);
}

/* ---- durability, upgrade, backup ---- */

static void
test_reopen(void **state)
{
	struct fx *fx = *state;
	struct store_acme_account a;
	struct store_acme_order o;
	struct store_acme_authz z;
	int64_t s0;

	account_add(fx->st, "acct1", "thumb1");
	order_add(fx->st, "ord1", "acct1");
	OK(store_acme_challenge_transition(fx->st, "ord1-a-d", "pending",
	    "processing", 0, NULL));
	OK(store_acme_order_transition(fx->st, "ord1", "pending", "invalid",
	    "{\"detail\":\"x\"}"));
	s0 = seq_now(fx->st);
	store_close(fx->st);
	fx->st = NULL;
	OK(store_open(fx->path, 0, &fx->st));
	assert_int_equal(seq_now(fx->st), s0);
	OK(store_acme_account_get_by_key(fx->st, "thumb1", &a));
	assert_string_equal(a.id, "acct1");
	store_acme_account_clear(&a);
	OK(store_acme_order_get(fx->st, "ord1", &o));
	assert_string_equal(o.status, "invalid");
	assert_string_equal(o.error, "{\"detail\":\"x\"}");
	store_acme_order_clear(&o);
	OK(store_acme_authz_get(fx->st, "ord1-a", &z));
	assert_int_equal(z.nchallenges, 2);
	assert_string_equal(z.challenges[0].status, "processing");
	store_acme_authz_clear(&z);
	/* And it goes on from there. */
	OK(store_acme_challenge_transition(fx->st, "ord1-a-d", "processing",
	    "valid", 1700000300, NULL));
	assert_int_equal(seq_now(fx->st), s0 + 1);
}

/* A store of schema version 3 gains the ACME tables when opened, and
 * keeps what it held. */
static void
test_migration(void **state)
{
	struct fx *fx = *state;
	struct store_snapshot *snap = NULL;
	sqlite3 *db = NULL;
	char *v = NULL;

	/* Migrations after 4 (EAB keys: 5) come along. */
	assert_true(store_schema_version() >= 4);
	assert_int_equal(sql_int(fx->path, "PRAGMA user_version"),
	    store_schema_version());
	OK(store_meta_set(fx->st, "kept", "yes"));
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE acme_challenges; "
	    "DROP TABLE acme_authzs; DROP TABLE acme_orders; "
	    "DROP TABLE acme_accounts; DROP TABLE acme_eab; "
	    "DROP TABLE operator_roles; DROP TABLE operators; "
	    "DROP TABLE request_approvals; DROP TABLE requests; "
	    "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM sqlite_master "
	    "WHERE name LIKE 'acme_%'"), 0);
	/* A backup refuses the old version until it is opened. */
	assert_int_equal(store_snapshot_open(fx->path, &snap), CK_E_STORE);
	assert_contains(ck_err_msg(), "schema version 3");

	OK(store_open(fx->path, 0, &fx->st));
	assert_int_equal(sql_int(fx->path, "PRAGMA user_version"),
	    store_schema_version());
	/* 4 tables and, from migration 5, acme_eab; at least 14 indexes: 5
	 * primary keys, 1 UNIQUE, 8 declared (later migrations add more). */
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name LIKE 'acme_%'"), 5);
	assert_true(sql_int(fx->path, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'index' AND tbl_name LIKE 'acme_%'") >= 14);
	OK(store_meta_get(fx->st, "kept", &v));
	assert_string_equal(v, "yes");
	free(v);
	account_add(fx->st, "acct1", "thumb1");
	order_add(fx->st, "ord1", "acct1");
	OK(store_snapshot_open(fx->path, &snap));
	store_snapshot_close(snap);
}

/* ---- dump and load ---- */

struct buf {
	char *p;
	size_t len;
};

static int
emit_buf(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;

	b->p = realloc(b->p, b->len + len + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

static const char *const acme_tables[] = {
	"acme_accounts", "acme_orders", "acme_authzs", "acme_challenges", NULL
};

/* Every table a backup holds, dumped from PATH after AFTER, loaded into
 * DST; returns the snapshot's sequence; ROWS[i] the rows of acme_tables[i]. */
static int64_t
dump_load(const char *path, int64_t after, struct store *dst,
    uint64_t rows[4])
{
	struct store_snapshot *s = NULL;
	struct buf b;
	const char *p, *nl;
	uint64_t n;
	int64_t seq;
	int i, j, found[4] = { 0, 0, 0, 0 };

	OK(store_snapshot_open(path, &s));
	seq = store_snapshot_seq(s);
	OK(store_tx_begin(dst));
	for (i = 0; store_dump_tables[i] != NULL; i++) {
		memset(&b, 0, sizeof(b));
		OK(store_dump_table(s, store_dump_tables[i], after, emit_buf,
		    &b, &n));
		for (j = 0; acme_tables[j] != NULL; j++)
			if (strcmp(acme_tables[j], store_dump_tables[i]) == 0) {
				rows[j] = n;
				found[j] = 1;
			}
		for (p = b.p; p != NULL && *p != '\0'; p = nl + 1) {
			nl = strchr(p, '\n');
			assert_non_null(nl);
			if (store_load_line(dst, store_dump_tables[i], p,
			    (size_t)(nl - p), after, seq) != 0)
				fail_msg("load %s: %.*s: %s",
				    store_dump_tables[i], (int)(nl - p), p,
				    ck_err_msg());
		}
		free(b.p);
	}
	OK(store_tx_commit(dst));
	OK(store_load_finish(dst, seq));
	store_snapshot_close(s);
	/* Every ACME table is in a backup. */
	for (j = 0; j < 4; j++)
		assert_true(found[j]);
	return seq;
}

/* A table's rows as text (type and value of every column), by id. */
static char *
table_text(const char *path, const char *table)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	struct buf b;
	char sql[128], cell[32];
	const char *t;
	int c;

	memset(&b, 0, sizeof(b));
	emit_buf(&b, "", 0);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY id", table);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		for (c = 0; c < sqlite3_column_count(s); c++) {
			snprintf(cell, sizeof(cell), "|%d:",
			    sqlite3_column_type(s, c));
			emit_buf(&b, cell, strlen(cell));
			t = (const char *)sqlite3_column_text(s, c);
			if (t != NULL)
				emit_buf(&b, t, strlen(t));
		}
		emit_buf(&b, "\n", 1);
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return b.p;
}

static void
compare_acme(const char *a, const char *b)
{
	char *ta, *tb;
	int i;

	for (i = 0; acme_tables[i] != NULL; i++) {
		ta = table_text(a, acme_tables[i]);
		tb = table_text(b, acme_tables[i]);
		if (strcmp(ta, tb) != 0)
			fail_msg("%s differs:\n%s\nvs\n%s", acme_tables[i], ta,
			    tb);
		free(ta);
		free(tb);
	}
}

static void
test_dump_roundtrip(void **state)
{
	struct fx *fx = *state;
	struct store_acme_account a;
	struct store *st2 = NULL;
	char path2[4200];
	uint64_t rows[4];
	int64_t seq, s1;
	char *t;

	account_add(fx->st, "acct1", "thumb1");
	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "acct2");
	snprintf(a.jwk_thumbprint, sizeof(a.jwk_thumbprint), "thumb2");
	/* Text that needs escaping in JSON. */
	a.jwk = (char *)"{\"k\":\"q\\\"\\\\\n\t\xc3\xa9\"}";
	a.eab_kid = (char *)"kid \"1\"";
	OK(store_acme_account_create(fx->st, &a));
	order_add(fx->st, "ord1", "acct1");
	order_add(fx->st, "ord2", "acct2");
	OK(store_acme_challenge_transition(fx->st, "ord1-a-h", "pending",
	    "processing", 0, NULL));
	OK(store_acme_challenge_transition(fx->st, "ord1-a-h", "processing",
	    "valid", 1700000200, NULL));
	OK(store_acme_order_transition(fx->st, "ord2", "pending", "invalid",
	    "{\"detail\":\"n\\u00e9\"}"));

	tu_path(path2, sizeof(path2), fx->dir, "copy.db");
	OK(store_open(path2, 1, &st2));
	seq = dump_load(fx->path, 0, st2, rows);
	assert_int_equal(rows[0], 2);
	assert_int_equal(rows[1], 2);
	assert_int_equal(rows[2], 4);
	assert_int_equal(rows[3], 6);
	assert_int_equal(seq_now(st2), seq);
	compare_acme(fx->path, path2);
	/* Not trivially equal: the rows are there. */
	t = table_text(path2, "acme_challenges");
	assert_non_null(strstr(t, "|3:ord1-a-h|3:ord1-a|3:http-01|"
	    "3:tok-ord1-a-h|3:valid|1:1700000200|5:|1:"));
	free(t);

	/* An incremental carries the changed rows only, and updates the
	 * copy's rows in place. */
	s1 = seq;
	OK(store_acme_account_update(fx->st, "acct2", "deactivated", NULL));
	OK(store_acme_authz_transition(fx->st, "ord1-a", "pending", "valid"));
	OK(store_acme_order_transition(fx->st, "ord1", "pending", "ready",
	    NULL));
	order_add(fx->st, "ord3", "acct1");
	seq = dump_load(fx->path, s1, st2, rows);
	assert_int_equal(rows[0], 1);
	assert_int_equal(rows[1], 2);
	assert_int_equal(rows[2], 3);
	assert_int_equal(rows[3], 3);
	assert_int_equal(seq_now(st2), seq);
	compare_acme(fx->path, path2);

	/* The restored store works on: the guards hold there too. */
	assert_int_equal(store_acme_order_transition(st2, "ord1", "pending",
	    "ready", NULL), CK_E_STATE);
	OK(store_acme_order_transition(st2, "ord1", "ready", "processing",
	    NULL));
	assert_int_equal(seq_now(st2), seq + 1);
	store_close(st2);

	/* The loader refuses what the schema refuses. */
	OK(store_tx_begin(fx->st));
	{
		static const char bad[] = "{\"id\":\"x\",\"authz_id\":\"y\","
		    "\"type\":\"tls-sni-01\",\"token\":\"t\",\"status\":"
		    "\"pending\",\"validated\":null,\"error\":null,"
		    "\"change_seq\":1}";

		assert_int_not_equal(store_load_line(fx->st,
		    "acme_challenges", bad, sizeof(bad) - 1, 0, seq), 0);
	}
	store_tx_rollback(fx->st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_account_create_get),
		T(test_account_update),
		T(test_order_create_get),
		T(test_order_atomic),
		T(test_order_list),
		T(test_transitions),
		T(test_find_valid),
		T(test_reopen),
		T(test_migration),
		T(test_dump_roundtrip),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
