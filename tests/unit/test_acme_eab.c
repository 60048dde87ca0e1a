/*
 * test_acme_eab.c - ACME external account binding keys: their rows in the
 * store (src/store/store_acme_eab.c, migration 5: create, get, list, the
 * guarded revoke and bind, a refusal changing nothing) and
 * acme_eab_check() (src/proto/acme_eab.c) against sealed keys, with
 * newAccount requests and bindings built and signed here with OpenSSL
 * (not with the code under test).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include "ca/eab_seal.h"
#include "common/err.h"
#include "daemon/server.h"
#include "proto/acme_eab.h"
#include "proto/jws.h"
#include "store/store.h"
#include "store/store_acme.h"

#define URL_NEWACCT "https://ca.example/acme/new-account"
#define NONCE "Y2VydGtlZXAtbm9uY2UtMDE"

#define OK(expr) do {							\
	int r_ = (expr);						\
	if (r_ != 0)							\
		fail_msg("%s: %d: %s", #expr, r_, ck_err_msg());	\
} while (0)

struct fx {
	char dir[4096];
	char path[4200];
	struct store *st;
	struct server sv;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->path, sizeof(fx->path), fx->dir, "store.db");
	if (store_open(fx->path, 1, &fx->st) != 0 ||
	    store_open(fx->path, 0, &fx->sv.rd) != 0 ||
	    eab_keypair_generate(&fx->sv.eab_key) != 0) {
		fprintf(stderr, "setup: %s\n", ck_err_msg());
		return -1;
	}
	pthread_mutex_init(&fx->sv.rd_mu, NULL);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	EVP_PKEY_free(fx->sv.eab_key);
	store_close(fx->sv.rd);
	pthread_mutex_destroy(&fx->sv.rd_mu);
	store_close(fx->st);
	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

static int64_t
seq_now(struct store *st)
{
	int64_t v = -1;

	OK(store_change_seq(st, &v));
	return v;
}

/* A row for KID holding KEY sealed to the fixture's EAB key. */
static void
eab_add(struct fx *fx, const char *kid, const char *key, const char *note)
{
	struct store_acme_eab e;
	unsigned char *sealed = NULL;
	size_t len = 0;

	memset(&e, 0, sizeof(e));
	snprintf(e.kid, sizeof(e.kid), "%s", kid);
	OK(eab_seal(fx->sv.eab_key, kid, (const unsigned char *)key,
	    strlen(key), &sealed, &len));
	e.sealed = sealed;
	e.sealed_len = len;
	e.note = (char *)note;
	e.created_at = 1700000000;
	OK(store_acme_eab_create(fx->st, &e));
	free(sealed);
}

/* ------------------------------------------------------------- store */

static int
collect(const struct store_acme_eab *e, void *arg)
{
	char *s = arg;	/* 256 bytes (test_store) */
	size_t n = strlen(s);

	snprintf(s + n, 256 - n, "%s%s%s ", e->kid, e->revoked_at ? "-r" :
	    "", e->account_id[0] ? "-b" : "");
	return 0;
}

static int
stop_at_first(const struct store_acme_eab *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return 42;
}

static void
test_store(void **state)
{
	struct fx *fx = *state;
	struct store_acme_eab e, g;
	unsigned char blob[40];
	char listed[256] = "", note[STORE_ACME_EAB_NOTE_MAX + 2];
	int64_t seq;
	int n = 0;

	memset(&e, 0, sizeof(e));
	memset(blob, 0xa5, sizeof(blob));
	snprintf(e.kid, sizeof(e.kid), "kid-a");
	e.sealed = blob;
	e.sealed_len = sizeof(blob);
	e.created_at = 1700000100;
	e.revoked_at = 99;	/* ignored on create */
	snprintf(e.account_id, sizeof(e.account_id), "ignored");
	seq = seq_now(fx->st);
	OK(store_acme_eab_create(fx->st, &e));
	assert_int_equal(seq_now(fx->st), seq + 1);
	OK(store_acme_eab_get(fx->st, "kid-a", &g));
	assert_string_equal(g.kid, "kid-a");
	assert_int_equal(g.sealed_len, sizeof(blob));
	assert_memory_equal(g.sealed, blob, sizeof(blob));
	assert_string_equal(g.note, "");
	assert_int_equal(g.created_at, 1700000100);
	assert_int_equal(g.revoked_at, 0);
	assert_string_equal(g.account_id, "");
	assert_int_equal(g.bound_at, 0);
	assert_int_equal(g.change_seq, seq + 1);
	store_acme_eab_clear(&g);

	/* Refusals change nothing, not even the sequence. */
	seq = seq_now(fx->st);
	assert_int_equal(store_acme_eab_create(fx->st, &e), CK_E_EXISTS);
	e.kid[0] = '\0';
	assert_int_equal(store_acme_eab_create(fx->st, &e), CK_E_INVAL);
	snprintf(e.kid, sizeof(e.kid), "kid-b");
	e.sealed_len = 0;
	assert_int_equal(store_acme_eab_create(fx->st, &e), CK_E_INVAL);
	e.sealed_len = STORE_ACME_EAB_SEALED_MAX + 1;
	assert_int_equal(store_acme_eab_create(fx->st, &e), CK_E_INVAL);
	e.sealed_len = sizeof(blob);
	memset(note, 'n', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	e.note = note;
	assert_int_equal(store_acme_eab_create(fx->st, &e), CK_E_INVAL);
	assert_int_equal(store_acme_eab_get(fx->st, "kid-b", &g),
	    CK_E_NOTFOUND);
	assert_int_equal(seq_now(fx->st), seq);
	note[STORE_ACME_EAB_NOTE_MAX] = '\0';
	e.created_at = 1700000200;
	OK(store_acme_eab_create(fx->st, &e));
	OK(store_acme_eab_get(fx->st, "kid-b", &g));
	assert_string_equal(g.note, note);
	store_acme_eab_clear(&g);
	e.note = (char *)"third";
	e.created_at = 1700000300;
	snprintf(e.kid, sizeof(e.kid), "kid-c");
	OK(store_acme_eab_create(fx->st, &e));

	/* Bind: once, and not a revoked kid. */
	seq = seq_now(fx->st);
	OK(store_acme_eab_bind(fx->st, "kid-a", "acct1", 1700000400));
	assert_int_equal(seq_now(fx->st), seq + 1);
	assert_int_equal(store_acme_eab_bind(fx->st, "kid-a", "acct2",
	    1700000500), CK_E_STATE);
	assert_contains(ck_err_msg(), "bound to account acct1");
	assert_int_equal(store_acme_eab_bind(fx->st, "nope", "acct2",
	    1700000500), CK_E_NOTFOUND);
	assert_int_equal(store_acme_eab_bind(fx->st, "kid-b", "", 1),
	    CK_E_INVAL);
	assert_int_equal(seq_now(fx->st), seq + 1);
	OK(store_acme_eab_get(fx->st, "kid-a", &g));
	assert_string_equal(g.account_id, "acct1");
	assert_int_equal(g.bound_at, 1700000400);
	store_acme_eab_clear(&g);

	/* Revoke: once; a revoked kid binds nothing; a bound one may be
	 * revoked (its account stays). */
	OK(store_acme_eab_revoke(fx->st, "kid-b", 1700000600));
	assert_int_equal(store_acme_eab_revoke(fx->st, "kid-b", 1700000700),
	    CK_E_STATE);
	assert_contains(ck_err_msg(), "revoked");
	assert_int_equal(store_acme_eab_bind(fx->st, "kid-b", "acct3",
	    1700000700), CK_E_STATE);
	assert_contains(ck_err_msg(), "revoked");
	assert_int_equal(store_acme_eab_revoke(fx->st, "nope", 1700000700),
	    CK_E_NOTFOUND);
	OK(store_acme_eab_revoke(fx->st, "kid-a", 1700000800));
	OK(store_acme_eab_get(fx->st, "kid-b", &g));
	assert_int_equal(g.revoked_at, 1700000600);
	assert_string_equal(g.account_id, "");
	store_acme_eab_clear(&g);

	/* Listed in creation order; a callback's return stops the walk. */
	OK(store_acme_eab_list(fx->st, collect, listed));
	assert_string_equal(listed, "kid-a-r-b kid-b-r kid-c ");
	assert_int_equal(store_acme_eab_list(fx->st, stop_at_first, &n), 42);
	assert_int_equal(n, 1);

	/* Survives a reopen. */
	store_close(fx->st);
	OK(store_open(fx->path, 0, &fx->st));
	OK(store_acme_eab_get(fx->st, "kid-c", &g));
	assert_string_equal(g.note, "third");
	store_acme_eab_clear(&g);
}

/* ------------------------------------------------- requests, signed here */

static char *
b64(const void *in, size_t n)
{
	char *s = malloc(4 * (n / 3 + 2) + 1), *p, *q;

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, in, (int)n);
	for (p = q = s; *p != '\0'; p++) {
		if (*p == '=')
			continue;
		*q++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	}
	*q = '\0';
	return s;
}

static char *
jwk_of(EVP_PKEY *k)
{
	unsigned char raw[32];
	size_t len = sizeof(raw);
	char *x, *s = NULL;

	assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
	x = b64(raw, len);
	assert_true(asprintf(&s, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"x\":\"%s\"}", x) > 0);
	free(x);
	return s;
}

/* A flattened JWS of HDR and PAYLOAD: signed by K (EdDSA), or with HMAC
 * key HKEY when K is NULL (HS256/384/512 by ALG). */
static char *
jws(const char *hdr, const char *payload, EVP_PKEY *k, const char *alg,
    const char *hkey)
{
	char *p64 = b64(hdr, strlen(hdr)), *pl64 = b64(payload,
	    strlen(payload)), *input = NULL, *s64, *body = NULL;
	unsigned char sig[EVP_MAX_MD_SIZE + 64];
	unsigned int maclen = 0;
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx;

	assert_true(asprintf(&input, "%s.%s", p64, pl64) > 0);
	if (k != NULL) {
		assert_non_null(ctx = EVP_MD_CTX_new());
		assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k),
		    1);
		assert_int_equal(EVP_DigestSign(ctx, sig, &siglen,
		    (unsigned char *)input, strlen(input)), 1);
		EVP_MD_CTX_free(ctx);
	} else {
		assert_non_null(HMAC(strcmp(alg, "HS384") == 0 ? EVP_sha384() :
		    strcmp(alg, "HS512") == 0 ? EVP_sha512() : EVP_sha256(),
		    hkey, (int)strlen(hkey), (unsigned char *)input,
		    strlen(input), sig, &maclen));
		siglen = maclen;
	}
	s64 = b64(sig, siglen);
	assert_true(asprintf(&body, "{\"protected\":\"%s\",\"payload\":\"%s\","
	    "\"signature\":\"%s\"}", p64, pl64, s64) > 0);
	free(p64);
	free(pl64);
	free(input);
	free(s64);
	return body;
}

/* A binding by KID under HKEY (ALG) over the JWK text BOUND for URL. */
static char *
binding_text(const char *alg, const char *kid, const char *url,
    const char *bound, const char *hkey)
{
	char *hdr = NULL, *b;

	assert_true(asprintf(&hdr, "{\"alg\":\"%s\",\"kid\":\"%s\","
	    "\"url\":\"%s\"}", alg, kid, url) > 0);
	b = jws(hdr, bound, NULL, alg, hkey);
	free(hdr);
	return b;
}

struct req {
	struct ck_jws *outer;
	json_t *payload;
	const json_t *binding;
};

/* A newAccount request signed by K carrying BINDING (JSON text); parsed
 * and verified as acme.c does before it looks at the binding. */
static void
req_make(struct req *rq, EVP_PKEY *k, const char *binding)
{
	char *jwk = jwk_of(k), *hdr = NULL, *payload = NULL, *body;

	assert_true(asprintf(&hdr, "{\"alg\":\"EdDSA\",\"nonce\":\"%s\","
	    "\"url\":\"%s\",\"jwk\":%s}", NONCE, URL_NEWACCT, jwk) > 0);
	assert_true(asprintf(&payload, "{\"termsOfServiceAgreed\":true,"
	    "\"externalAccountBinding\":%s}", binding) > 0);
	body = jws(hdr, payload, k, "EdDSA", NULL);
	OK(ck_jws_parse((unsigned char *)body, strlen(body), 65536, 0,
	    &rq->outer));
	OK(ck_jws_verify(rq->outer, rq->outer->jwk));
	assert_non_null(rq->payload = json_loadb((char *)rq->outer->payload,
	    rq->outer->payload_len, 0, NULL));
	rq->binding = json_object_get(rq->payload, "externalAccountBinding");
	assert_non_null(rq->binding);
	free(body);
	free(payload);
	free(hdr);
	free(jwk);
}

static void
req_free(struct req *rq)
{
	ck_jws_free(rq->outer);
	json_decref(rq->payload);
	memset(rq, 0, sizeof(*rq));
}

/* acme_eab_check() on a request by K with the binding given; WANT the
 * code, PTYPE the problem type (NULL: success). */
static void
expect(struct fx *fx, EVP_PKEY *k, const char *binding, int want,
    const char *ptype, const char *kid_want)
{
	struct req rq;
	char kid[STORE_ACME_ID_SIZE], detail[256];
	const char *pt = NULL;
	int r;

	req_make(&rq, k, binding);
	r = acme_eab_check(&fx->sv, rq.binding, rq.outer, kid, &pt, detail,
	    sizeof(detail));
	if (r != want)
		fail_msg("acme_eab_check: %d, not %d: %s", r, want,
		    ck_err_msg());
	if (ptype != NULL) {
		assert_non_null(pt);
		assert_string_equal(pt, ptype);
		assert_true(detail[0] != '\0');
	}
	if (kid_want != NULL)
		assert_string_equal(kid, kid_want);
	req_free(&rq);
}

#define HKEY "0123456789abcdef0123456789abcdef"

static void
test_check(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ed25519"), *other = tu_key_new("ed25519");
	char *jwk = jwk_of(k), *jwk2 = jwk_of(other), *b;
	static const char *const algs[] = { "HS256", "HS384", "HS512" };
	size_t i;

	eab_add(fx, "kid-1", HKEY, "ci");
	for (i = 0; i < 3; i++) {
		b = binding_text(algs[i], "kid-1", URL_NEWACCT, jwk, HKEY);
		expect(fx, k, b, 0, NULL, "kid-1");
		free(b);
	}

	/* Unknown kid; wrong HMAC key; another account key bound. */
	b = binding_text("HS256", "kid-2", URL_NEWACCT, jwk, HKEY);
	expect(fx, k, b, CK_E_NOTFOUND, "unauthorized", "kid-2");
	free(b);
	b = binding_text("HS256", "kid-1", URL_NEWACCT, jwk,
	    "0123456789abcdef0123456789abcdeX");
	expect(fx, k, b, CK_E_BADSIG, "unauthorized", "kid-1");
	free(b);
	b = binding_text("HS256", "kid-1", URL_NEWACCT, jwk2, HKEY);
	expect(fx, k, b, CK_E_BADSIG, "unauthorized", "kid-1");
	free(b);

	/* Malformed: another url, a payload that is no key, a signature
	 * algorithm, not a JWS at all, a kid too long to be one of ours. */
	b = binding_text("HS256", "kid-1", "https://ca.example/acme/x", jwk,
	    HKEY);
	expect(fx, k, b, CK_E_PARSE, "malformed", "kid-1");
	free(b);
	b = binding_text("HS256", "kid-1", URL_NEWACCT, "{\"kty\":\"OKP\"}",
	    HKEY);
	expect(fx, k, b, CK_E_PARSE, "malformed", "kid-1");
	free(b);
	b = binding_text("ES256", "kid-1", URL_NEWACCT, jwk, HKEY);
	expect(fx, k, b, CK_E_PARSE, "malformed", "");
	free(b);
	expect(fx, k, "\"kid-1\"", CK_E_PARSE, "malformed", "");
	expect(fx, k, "{}", CK_E_PARSE, "malformed", "");
	b = binding_text("HS256", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	    "kkkkkkkkkkkkkkkkkkkkkkkkkkk", URL_NEWACCT, jwk, HKEY);
	expect(fx, k, b, CK_E_PARSE, "malformed", "");
	free(b);

	/* Bound: refused, and the detail does not name the account. */
	OK(store_acme_eab_bind(fx->st, "kid-1", "acct-secret", 1700000000));
	b = binding_text("HS256", "kid-1", URL_NEWACCT, jwk, HKEY);
	{
		struct req rq;
		char kid[STORE_ACME_ID_SIZE], detail[256];
		const char *pt = NULL;

		req_make(&rq, k, b);
		assert_int_equal(acme_eab_check(&fx->sv, rq.binding, rq.outer,
		    kid, &pt, detail, sizeof(detail)), CK_E_STATE);
		assert_string_equal(pt, "unauthorized");
		assert_null(strstr(detail, "acct-secret"));
		assert_contains(ck_err_msg(), "acct-secret");
		req_free(&rq);
	}
	free(b);

	/* Revoked (and not bound). */
	eab_add(fx, "kid-3", HKEY, "");
	b = binding_text("HS256", "kid-3", URL_NEWACCT, jwk, HKEY);
	expect(fx, k, b, 0, NULL, "kid-3");
	OK(store_acme_eab_revoke(fx->st, "kid-3", 1700000000));
	expect(fx, k, b, CK_E_STATE, "unauthorized", "kid-3");
	free(b);

	/* A wrong MAC on a revoked kid says "wrong MAC", not "revoked": the
	 * state is told only to whoever holds the key. */
	b = binding_text("HS256", "kid-3", URL_NEWACCT, jwk, "other key");
	expect(fx, k, b, CK_E_BADSIG, "unauthorized", "kid-3");
	free(b);

	free(jwk);
	free(jwk2);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

/* The server's side of trouble: a sealed key moved to another kid's row,
 * a key sealed to another EAB key, no EAB key loaded. */
static void
test_check_server(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key("ed25519"), *saved;
	char *jwk = jwk_of(k), *b;
	sqlite3 *db = NULL;

	eab_add(fx, "kid-a", HKEY, "");
	eab_add(fx, "kid-b", "another HMAC key, 32 bytes long!", "");
	b = binding_text("HS256", "kid-b", URL_NEWACCT, jwk,
	    "another HMAC key, 32 bytes long!");
	expect(fx, k, b, 0, NULL, "kid-b");
	/* kid-a's sealed key copied into kid-b's row. */
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE acme_eab SET sealed = "
	    "(SELECT sealed FROM acme_eab WHERE kid = 'kid-a') WHERE kid = "
	    "'kid-b'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect(fx, k, b, CK_E_TAMPER, "serverInternal", "kid-b");
	assert_contains(ck_err_msg(), "does not open");
	free(b);

	/* Sealed to another pair than the server's. */
	b = binding_text("HS256", "kid-a", URL_NEWACCT, jwk, HKEY);
	expect(fx, k, b, 0, NULL, "kid-a");
	saved = fx->sv.eab_key;
	OK(eab_keypair_generate(&fx->sv.eab_key));
	expect(fx, k, b, CK_E_TAMPER, "serverInternal", "kid-a");
	EVP_PKEY_free(fx->sv.eab_key);
	fx->sv.eab_key = NULL;
	expect(fx, k, b, CK_E_STATE, "serverInternal", "kid-a");
	assert_contains(ck_err_msg(), "no EAB key");
	fx->sv.eab_key = saved;
	expect(fx, k, b, 0, NULL, "kid-a");
	free(b);
	free(jwk);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_server, setup,
		    teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	tu_keys_free();
	return r;
}
