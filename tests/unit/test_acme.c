/*
 * test_acme.c - src/proto/acme: the nonce service. Each nonce works once,
 * only before it expires, only as issued (any altered character or slot
 * number is refused); a full set forgets its oldest; nonces are distinct
 * and well formed; several threads issuing and using nonces at once each
 * get every one of theirs accepted exactly once. newOrder payloads:
 * identifiers normalised (lower case, "*." taken off), and each kind of
 * bad request refused with its RFC 8555 problem type.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "proto/acme.h"

static void
test_nonce_once(void **state)
{
	struct acme_nonces *ns = NULL;
	char a[ACME_NONCE_LEN + 1], b[ACME_NONCE_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(acme_nonces_new(16, 60, &ns), 0);
	assert_int_equal(acme_nonce_issue(ns, 1000, a), 0);
	assert_int_equal(acme_nonce_issue(ns, 1000, b), 0);
	assert_int_equal(strlen(a), ACME_NONCE_LEN);
	for (i = 0; i < ACME_NONCE_LEN; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
	assert_string_not_equal(a, b);
	assert_int_equal(acme_nonce_consume(ns, 1001, b), 0);
	assert_int_equal(acme_nonce_consume(ns, 1001, b), CK_E_NOTFOUND);
	assert_int_equal(acme_nonce_consume(ns, 1001, a), 0);
	assert_int_equal(acme_nonce_consume(ns, 1001, a), CK_E_NOTFOUND);
	/* Junk of every kind. */
	assert_int_equal(acme_nonce_consume(ns, 1001, NULL), CK_E_NOTFOUND);
	assert_int_equal(acme_nonce_consume(ns, 1001, ""), CK_E_NOTFOUND);
	assert_int_equal(acme_nonce_consume(ns, 1001, "abc"), CK_E_NOTFOUND);
	assert_int_equal(acme_nonce_consume(ns, 1001,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAA="), CK_E_NOTFOUND);
	assert_int_equal(acme_nonce_consume(ns, 1001,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAA"), CK_E_NOTFOUND);
	acme_nonces_free(ns);
	acme_nonces_free(NULL);
	assert_int_equal(acme_nonces_new(0, 60, &ns), CK_E_INVAL);
	assert_int_equal(acme_nonces_new(4, 0, &ns), CK_E_INVAL);
}

static void
test_nonce_altered(void **state)
{
	struct acme_nonces *ns = NULL;
	char a[ACME_NONCE_LEN + 1], t[ACME_NONCE_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(acme_nonces_new(4, 60, &ns), 0);
	assert_int_equal(acme_nonce_issue(ns, 5, a), 0);
	/* Any changed character (random part or slot) is refused, and does
	 * not use the real one up. */
	for (i = 0; i < ACME_NONCE_LEN; i++) {
		memcpy(t, a, sizeof(t));
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_int_equal(acme_nonce_consume(ns, 5, t), CK_E_NOTFOUND);
	}
	assert_int_equal(acme_nonce_consume(ns, 5, a), 0);
	acme_nonces_free(ns);
}

static void
test_nonce_expiry(void **state)
{
	struct acme_nonces *ns = NULL;
	char a[ACME_NONCE_LEN + 1], b[ACME_NONCE_LEN + 1];

	(void)state;
	assert_int_equal(acme_nonces_new(8, 30, &ns), 0);
	assert_int_equal(acme_nonce_issue(ns, 100, a), 0);
	assert_int_equal(acme_nonce_issue(ns, 100, b), 0);
	assert_int_equal(acme_nonce_consume(ns, 131, a), CK_E_NOTFOUND);
	assert_int_equal(acme_nonce_consume(ns, 130, b), 0);
	acme_nonces_free(ns);
}

static void
test_nonce_bounded(void **state)
{
	struct acme_nonces *ns = NULL;
	char n[6][ACME_NONCE_LEN + 1];
	int i;

	(void)state;
	assert_int_equal(acme_nonces_new(4, 60, &ns), 0);
	for (i = 0; i < 6; i++)
		assert_int_equal(acme_nonce_issue(ns, 10, n[i]), 0);
	/* Four outstanding at most: the two oldest are gone. */
	assert_int_equal(acme_nonce_consume(ns, 10, n[0]), CK_E_NOTFOUND);
	assert_int_equal(acme_nonce_consume(ns, 10, n[1]), CK_E_NOTFOUND);
	for (i = 2; i < 6; i++)
		assert_int_equal(acme_nonce_consume(ns, 10, n[i]), 0);
	acme_nonces_free(ns);
}

#define THREADS 8
#define PER_THREAD 2000

struct worker {
	struct acme_nonces *ns;
	int ok, again;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char n[ACME_NONCE_LEN + 1];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		if (acme_nonce_issue(w->ns, 50, n) != 0)
			continue;
		if (acme_nonce_consume(w->ns, 50, n) == 0)
			w->ok++;
		if (acme_nonce_consume(w->ns, 50, n) == 0)
			w->again++;
	}
	return NULL;
}

static void
test_nonce_threads(void **state)
{
	struct acme_nonces *ns = NULL;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	int i;

	(void)state;
	/* Room for every nonce issued, so that none is forgotten however
	 * the threads are scheduled. */
	assert_int_equal(acme_nonces_new(THREADS * PER_THREAD, 60, &ns), 0);
	for (i = 0; i < THREADS; i++) {
		w[i].ns = ns;
		w[i].ok = w[i].again = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker_main,
		    &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, PER_THREAD);
		assert_int_equal(w[i].again, 0);
	}
	acme_nonces_free(ns);
}

/* Parse PAYLOAD; 0 or the problem type's first letter. */
static int
order_parse(const char *payload, struct acme_order_req *rq)
{
	const char *ptype = NULL;
	int r;

	memset(rq, 0, sizeof(*rq));
	r = acme_order_parse((const unsigned char *)payload, strlen(payload),
	    rq, &ptype);
	if (r == 0)
		return 0;
	assert_int_equal(r, CK_E_PARSE);
	assert_non_null(ptype);
	assert_null(rq->ids);
	return ptype[0];
}

static void
test_order_parse(void **state)
{
	struct acme_order_req rq;

	(void)state;
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"dns\","
	    "\"value\":\"*.Apps.Example.TEST\"},{\"type\":\"ip\",\"value\":"
	    "\"0:0::01\"}],\"notBefore\":\"2030-01-01T00:00:00Z\"}", &rq), 0);
	assert_int_equal(rq.nids, 2);
	assert_string_equal(rq.ids[0].type, "dns");
	assert_string_equal(rq.ids[0].value, "apps.example.test");
	assert_int_equal(rq.ids[0].wildcard, 1);
	assert_string_equal(rq.ids[1].type, "ip");
	assert_string_equal(rq.ids[1].value, "::1");
	assert_int_equal(rq.ids[1].wildcard, 0);
	assert_int_equal(rq.not_before, 1893456000);
	assert_int_equal(rq.not_after, 0);
	acme_order_req_clear(&rq);

	/* malformed, rejectedIdentifier, unsupportedIdentifier */
	assert_int_equal(order_parse("[]", &rq), 'm');
	assert_int_equal(order_parse("{\"identifiers\":[]}", &rq), 'm');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"dns\"}]}",
	    &rq), 'm');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"dns\","
	    "\"value\":\"a.test\"},{\"type\":\"dns\",\"value\":\"A.test\"}]}",
	    &rq), 'm');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"dns\","
	    "\"value\":\"a.test\"}],\"notBefore\":\"2031-01-01T00:00:00Z\","
	    "\"notAfter\":\"2030-01-01T00:00:00Z\"}", &rq), 'm');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"dns\","
	    "\"value\":\"a.*.test\"}]}", &rq), 'r');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"dns\","
	    "\"value\":\"*\"}]}", &rq), 'r');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"ip\","
	    "\"value\":\"*.0.0.1\"}]}", &rq), 'r');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"dns\","
	    "\"value\":\"a b.test\"}]}", &rq), 'r');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"ip\","
	    "\"value\":\"::1\"},{\"type\":\"ip\",\"value\":\"0::1\"}]}",
	    &rq), 'm');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"ip\","
	    "\"value\":\"127.1\"}]}", &rq), 'r');
	assert_int_equal(order_parse("{\"identifiers\":[{\"type\":\"email\","
	    "\"value\":\"a@b.test\"}]}", &rq), 'u');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nonce_once),
		cmocka_unit_test(test_nonce_altered),
		cmocka_unit_test(test_nonce_expiry),
		cmocka_unit_test(test_nonce_bounded),
		cmocka_unit_test(test_nonce_threads),
		cmocka_unit_test(test_order_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
