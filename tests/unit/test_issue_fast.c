/*
 * test_issue_fast.c - the issuance path's shortcuts give the same answers
 * as the general code:
 *   - ck_csr_parse_ex(CK_CSR_NO_PUBKEY) (the CSR's EC signature checked in
 *     a per-thread scratch key) accepts and refuses exactly what
 *     ck_csr_parse() does, over every single-byte corruption of P-256 and
 *     P-384 requests, from several threads;
 *   - the store's certs CHECK, rewritten from an IN list to comparisons,
 *     still refuses any other status, on new stores and on stores that
 *     still have the old text.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store.h"
#include "x509/csr.h"

/* Parse with and without the flag: 1 if the results agree. Safe in any
 * thread (no cmocka assertion here). */
static int
agree(const unsigned char *buf, size_t len, int *rc)
{
	struct ck_csr *a = NULL, *b = NULL;
	int ra, rb, same;

	ra = ck_csr_parse(buf, len, &a);
	rb = ck_csr_parse_ex(buf, len, CK_CSR_NO_PUBKEY, &b);
	same = ra == rb;
	if (same && ra == 0)
		same = a->pubkey != NULL &&
		    strcmp(a->key_desc, b->key_desc) == 0 &&
		    a->spki_der_len == b->spki_der_len &&
		    memcmp(a->spki_der, b->spki_der, a->spki_der_len) == 0 &&
		    X509_NAME_cmp(a->subject, b->subject) == 0 &&
		    a->names.n == b->names.n;
	ck_csr_free(a);
	ck_csr_free(b);
	*rc = ra;
	return same;
}

static void
same_result(const unsigned char *buf, size_t len, int *rc)
{
	assert_true(agree(buf, len, rc));
}

struct corrupt_arg {
	const char *type;
	unsigned char *der;	/* made before the threads start */
	size_t len;
	int ok, badsig, parse, differ, first;
};

/* Every byte of a DER CSR flipped in turn. */
static void *
corrupt_all(void *arg)
{
	struct corrupt_arg *ca = arg;
	unsigned char *der = ca->der;
	size_t i;
	int rc;

	ca->differ += !agree(der, ca->len, &ca->first);
	for (i = 0; i < ca->len; i++) {
		der[i] ^= 0x01;
		ca->differ += !agree(der, ca->len, &rc);
		if (rc == 0)
			ca->ok++;
		else if (rc == CK_E_BADSIG)
			ca->badsig++;
		else
			ca->parse++;
		der[i] ^= 0x01;
	}
	return NULL;
}

static void
test_csr_no_pubkey_agrees(void **state)
{
	static const char *const types[4] = { "ec-p256", "ec-p384", "ec-p256",
	    "rsa2048" };
	struct tu_csr o = { "CN=host.example.com", "DNS:host.example.com",
	    NULL, "serverAuth", NULL, NULL, NULL, 0 };
	struct corrupt_arg args[4];
	pthread_t th[4];
	int i;

	(void)state;
	memset(args, 0, sizeof(args));
	for (i = 0; i < 4; i++) {
		EVP_PKEY *k = tu_key(types[i]);
		args[i].type = types[i];
		tu_csr_make(k, &o, &args[i].der, &args[i].len);
		EVP_PKEY_free(k);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, corrupt_all,
		    &args[i]), 0);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++) {
		assert_int_equal(args[i].first, 0);
		assert_int_equal(args[i].differ, 0);
		/* Corruptions in the signature or the key are caught by
		 * the signature check, others by the parser. */
		assert_true(args[i].badsig > 0);
		assert_true(args[i].parse > 0);
		free(args[i].der);
	}
}

/* An EC key that is not a point on its curve is refused as before. */
static void
test_csr_no_pubkey_bad_point(void **state)
{
	struct tu_csr o = { "CN=p.example.com", NULL, NULL, NULL, NULL, NULL,
	    NULL, 0 };
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *der = NULL, *pt;
	struct ck_csr *c = NULL;
	size_t len = 0, i;
	int rc;
	static const unsigned char p256_spki_prefix[] = { 0x03, 0x42, 0x00,
	    0x04 };

	(void)state;
	tu_csr_make(k, &o, &der, &len);
	pt = NULL;
	for (i = 0; i + sizeof(p256_spki_prefix) < len; i++)
		if (memcmp(der + i, p256_spki_prefix,
		    sizeof(p256_spki_prefix)) == 0) {
			pt = der + i + sizeof(p256_spki_prefix);
			break;
		}
	assert_non_null(pt);
	pt[63] ^= 0x55;		/* y no longer fits x */
	same_result(der, len, &rc);
	assert_int_equal(rc, CK_E_PARSE);
	assert_int_equal(ck_csr_parse_ex(der, len, CK_CSR_NO_PUBKEY, &c),
	    CK_E_PARSE);
	assert_contains(ck_err_msg(), "not a valid point");
	free(der);
	EVP_PKEY_free(k);
}

/* The flag only leaves the key out: a good request parses the same. */
static void
test_csr_no_pubkey_fields(void **state)
{
	struct tu_csr o = { "CN=f.example.com,O=Example", "DNS:f.example.com,"
	    "DNS:g.example.com", "digitalSignature", "serverAuth", NULL, NULL,
	    NULL, 1 };
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *pem = NULL;
	struct ck_csr *c = NULL;
	size_t len = 0;

	(void)state;
	tu_csr_make(k, &o, &pem, &len);
	assert_int_equal(ck_csr_parse_ex(pem, len, CK_CSR_NO_PUBKEY, &c), 0);
	assert_null(c->pubkey);
	assert_string_equal(c->key_desc, "ec-p256");
	assert_non_null(c->spki_alg);
	assert_non_null(c->spki_key);
	assert_int_equal(c->names.n, 2);
	assert_string_equal(ck_csr_subject_get(c, "O"), "Example");
	ck_csr_free(c);
	free(pem);
	EVP_PKEY_free(k);
}

/* ---- the certs table's status CHECK ---- */

static char *
certs_sql(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char *out = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema "
	    "WHERE type = 'table' AND name = 'certs'", -1, &s, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	out = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_non_null(out);
	return out;
}

/* Insert a row of that status with sqlite3 itself: SQLite's result. */
static int
raw_insert(const char *path, const char *serial, const char *status)
{
	sqlite3 *db = NULL;
	char sql[512];
	int rc;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "INSERT INTO certs (serial, status, "
	    "subject, names, profile, requester, tbs_sha256, not_before, "
	    "not_after, created_at, is_ca, change_seq) VALUES ('%s', '%s', "
	    "'', '', '', '', '', 0, 0, 0, 0, 0)", serial, status);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static void
check_statuses(const char *path)
{
	assert_int_equal(raw_insert(path, "01", "pending"), SQLITE_OK);
	assert_int_equal(raw_insert(path, "02", "issued"), SQLITE_OK);
	assert_int_equal(raw_insert(path, "03", "revoked"), SQLITE_OK);
	assert_int_equal(raw_insert(path, "04", "failed"), SQLITE_OK);
	assert_int_equal(raw_insert(path, "05", "bogus"), SQLITE_CONSTRAINT);
	assert_int_equal(raw_insert(path, "06", "Issued"), SQLITE_CONSTRAINT);
	assert_int_equal(raw_insert(path, "07", ""), SQLITE_CONSTRAINT);
}

static void
test_certs_check(void **state)
{
	char dir[4096], path[4200], *sql;
	struct store *st = NULL;
	sqlite3 *db = NULL;

	(void)state;
	tu_tmpdir(dir, sizeof(dir));
	tu_path(path, sizeof(path), dir, "store.db");
	assert_int_equal(store_open(path, 1, &st), 0);
	store_close(st);
	sql = certs_sql(path);
	assert_contains(sql, "CHECK (status = 'pending' OR status = 'issued' "
	    "OR status = 'revoked' OR status = 'failed')");
	assert_null(strstr(sql, " IN "));
	free(sql);
	check_statuses(path);

	/* A store that still has the IN list (as every store made before
	 * had) gets the comparisons when opened, and keeps its rows. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA writable_schema = ON; "
	    "UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (status = "
	    "''pending'' OR status = ''issued'' OR status = ''revoked'' OR "
	    "status = ''failed'')', 'CHECK (status IN    (''pending'',"
	    "''issued'',''revoked'',''failed''))') WHERE name = 'certs'; "
	    "PRAGMA writable_schema = OFF", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	sql = certs_sql(path);
	assert_contains(sql, "status IN    ('pending'");
	free(sql);
	assert_int_equal(store_open(path, 0, &st), 0);
	store_close(st);
	sql = certs_sql(path);
	assert_contains(sql, "CHECK (status = 'pending' OR");
	free(sql);
	assert_int_equal(raw_insert(path, "08", "bogus"), SQLITE_CONSTRAINT);
	assert_int_equal(raw_insert(path, "09", "issued"), SQLITE_OK);
	/* The rows from before are all there and the file is sound. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *s = NULL;
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) "
		    "FROM certs), (SELECT quick_check FROM pragma_quick_check)",
		    -1, &s, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(s, 0), 5);
		assert_string_equal((const char *)sqlite3_column_text(s, 1),
		    "ok");
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_no_pubkey_agrees),
		cmocka_unit_test(test_csr_no_pubkey_bad_point),
		cmocka_unit_test(test_csr_no_pubkey_fields),
		cmocka_unit_test(test_certs_check),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	tu_keys_free();
	return r;
}
