/*
 * test_approval.c - requests awaiting approval: the store functions
 * (store_request.h), the state machine (ck_approval_judge), and the
 * flow on a real CA (src/ca/approval.h): recorded, approved by the
 * count, issued once through the durable path, settled after a stop,
 * denied when the profile no longer allows the request.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "audit/audit.h"
#include "ca/approval.h"
#include "ca/ca.h"
#include "common/err.h"
#include "profile/profile.h"
#include "store/store.h"
#include "store/store_request.h"

#define PASSPHRASE "correct horse battery staple"

#define OK(x) assert_int_equal((x), 0)

/* ---- the store -------------------------------------------------------- */

struct sfx {
	char dir[4096];
	char path[4200];
	struct store *st;
};

static int
store_setup(void **state)
{
	struct sfx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->path, sizeof(fx->path), fx->dir, "store.db");
	if (store_open(fx->path, 1, &fx->st) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int
store_teardown(void **state)
{
	struct sfx *fx = *state;

	store_close(fx->st);
	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

static void
fill(struct store_request *rq, const char *who, const char *order)
{
	static unsigned char csr[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };

	memset(rq, 0, sizeof(*rq));
	snprintf(rq->profile, sizeof(rq->profile), "tls-server");
	rq->days = 30;
	rq->path_len = -1;
	rq->csr = csr;
	rq->csr_len = sizeof(csr);
	rq->subject = (char *)"/CN=a.example.com";
	rq->names = (char *)"DNS:a.example.com";
	snprintf(rq->requester, sizeof(rq->requester), "%s", who);
	snprintf(rq->requester_os_user, sizeof(rq->requester_os_user),
	    "%s", who);
	if (order != NULL)
		snprintf(rq->acme_order, sizeof(rq->acme_order), "%s", order);
	rq->created_at = 1000;
}

static int
count_cb(const struct store_request *rq, void *arg)
{
	(void)rq;
	(*(int *)arg)++;
	return 0;
}

static void
test_store_requests(void **state)
{
	struct sfx *fx = *state;
	struct store_request rq, got;
	struct store_request_approval a, *v = NULL;
	size_t n;
	int cnt;

	fill(&rq, "alice", NULL);
	OK(store_request_insert(fx->st, &rq));
	assert_int_equal(rq.id, 1);
	fill(&rq, "bob", "ORDER1");
	OK(store_request_insert(fx->st, &rq));
	assert_int_equal(rq.id, 2);
	fill(&rq, "", NULL);
	assert_int_equal(store_request_insert(fx->st, &rq), CK_E_INVAL);

	OK(store_request_get(fx->st, 1, &got));
	assert_int_equal(got.status, STORE_REQUEST_PENDING);
	assert_string_equal(got.requester, "alice");
	assert_string_equal(got.requester_os_user, "alice");
	assert_string_equal(got.requester_operator, "");
	assert_string_equal(got.acme_order, "");
	assert_int_equal(got.csr_len, 5);
	assert_int_equal(got.days, 30);
	assert_int_equal(got.path_len, -1);
	assert_string_equal(got.names, "DNS:a.example.com");
	assert_null(got.reason);
	store_request_clear(&got);
	assert_int_equal(store_request_get(fx->st, 9, &got), CK_E_NOTFOUND);
	OK(store_request_by_acme_order(fx->st, "ORDER1", &got));
	assert_int_equal(got.id, 2);
	store_request_clear(&got);
	assert_int_equal(store_request_by_acme_order(fx->st, "nope", &got),
	    CK_E_NOTFOUND);

	/* Approvals: one per approver. */
	memset(&a, 0, sizeof(a));
	a.request_id = 1;
	snprintf(a.approver, sizeof(a.approver), "cm1");
	snprintf(a.actor, sizeof(a.actor), "cm1/cert-manager");
	a.at = 2000;
	snprintf(a.reason, sizeof(a.reason), "fine");
	OK(store_request_approval_add(fx->st, &a));
	assert_int_equal(store_request_approval_add(fx->st, &a), CK_E_EXISTS);
	snprintf(a.approver, sizeof(a.approver), "cm2");
	a.reason[0] = '\0';
	OK(store_request_approval_add(fx->st, &a));
	OK(store_request_approvals(fx->st, 1, &v, &n));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].approver, "cm1");
	assert_string_equal(v[0].reason, "fine");
	assert_string_equal(v[1].approver, "cm2");
	free(v);
	OK(store_request_approvals(fx->st, 2, &v, &n));
	assert_int_equal(n, 0);
	free(v);

	/* The states. */
	assert_int_equal(store_request_set_serial(fx->st, 1, "AB"),
	    CK_E_STATE);
	assert_int_equal(store_request_transition(fx->st, 1,
	    STORE_REQUEST_PENDING, STORE_REQUEST_ISSUED, 1, NULL),
	    CK_E_INVAL);
	OK(store_request_transition(fx->st, 1, STORE_REQUEST_PENDING,
	    STORE_REQUEST_APPROVED, 3000, NULL));
	assert_int_equal(store_request_transition(fx->st, 1,
	    STORE_REQUEST_PENDING, STORE_REQUEST_APPROVED, 3000, NULL),
	    CK_E_STATE);
	assert_contains(ck_err_msg(), "is approved, not pending");
	OK(store_request_set_serial(fx->st, 1, "AB"));
	OK(store_request_get(fx->st, 1, &got));
	assert_string_equal(got.cert_serial, "AB");
	assert_int_equal(got.decided_at, 3000);
	store_request_clear(&got);
	OK(store_request_set_serial(fx->st, 1, ""));
	OK(store_request_get(fx->st, 1, &got));
	assert_string_equal(got.cert_serial, "");
	store_request_clear(&got);
	OK(store_request_mark_issued(fx->st, 1, "CD"));
	assert_int_equal(store_request_mark_issued(fx->st, 1, "CD"),
	    CK_E_STATE);
	OK(store_request_transition(fx->st, 2, STORE_REQUEST_PENDING,
	    STORE_REQUEST_DENIED, 4000, "not ours"));
	OK(store_request_get(fx->st, 2, &got));
	assert_int_equal(got.status, STORE_REQUEST_DENIED);
	assert_string_equal(got.reason, "not ours");
	store_request_clear(&got);
	assert_int_equal(store_request_transition(fx->st, 9,
	    STORE_REQUEST_PENDING, STORE_REQUEST_DENIED, 1, "x"),
	    CK_E_NOTFOUND);

	cnt = 0;
	OK(store_request_list(fx->st, -1, count_cb, &cnt));
	assert_int_equal(cnt, 2);
	cnt = 0;
	OK(store_request_list(fx->st, STORE_REQUEST_ISSUED, count_cb, &cnt));
	assert_int_equal(cnt, 1);
	cnt = 0;
	OK(store_request_list(fx->st, STORE_REQUEST_PENDING, count_cb, &cnt));
	assert_int_equal(cnt, 0);

	assert_string_equal(store_request_status_name(STORE_REQUEST_DENIED),
	    "denied");
	assert_int_equal(store_request_status_parse("issued"),
	    STORE_REQUEST_ISSUED);
	assert_int_equal(store_request_status_parse("bogus"), -1);
}

/* ---- the state machine ------------------------------------------------ */

static void
test_judge(void **state)
{
	struct store_request rq;
	struct store_request_approval have[2];
	struct ck_approver who = { "cm1", "cm1", "u-cm1", "cm1/cert-manager" };
	struct ck_approver owner = { "root", NULL, "root", "root" };
	char why[300];

	(void)state;
	memset(&rq, 0, sizeof(rq));
	memset(have, 0, sizeof(have));
	rq.id = 7;
	rq.status = STORE_REQUEST_PENDING;
	snprintf(rq.requester, sizeof(rq.requester), "token:bot");

	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 1, why,
	    sizeof(why)), CK_APPROVAL_COMPLETE);
	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 0, why,
	    sizeof(why)), CK_APPROVAL_COMPLETE);
	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 2, why,
	    sizeof(why)), CK_APPROVAL_RECORDED);
	snprintf(have[0].approver, sizeof(have[0].approver), "cm2");
	assert_int_equal(ck_approval_judge(&rq, have, 1, &who, 2, why,
	    sizeof(why)), CK_APPROVAL_COMPLETE);
	/* The same approver twice. */
	snprintf(have[0].approver, sizeof(have[0].approver), "cm1");
	assert_int_equal(ck_approval_judge(&rq, have, 1, &who, 2, why,
	    sizeof(why)), CK_APPROVAL_REFUSED);
	assert_contains(why, "cm1 approved request 7 already");
	/* Their own request: by operator, and by OS user. */
	snprintf(rq.requester_operator, sizeof(rq.requester_operator), "cm1");
	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 1, why,
	    sizeof(why)), CK_APPROVAL_REFUSED);
	assert_contains(why, "cannot approve their own request");
	rq.requester_operator[0] = '\0';
	snprintf(rq.requester_os_user, sizeof(rq.requester_os_user), "root");
	assert_int_equal(ck_approval_judge(&rq, have, 0, &owner, 1, why,
	    sizeof(why)), CK_APPROVAL_REFUSED);
	assert_contains(why, "cannot approve their own request");
	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 1, why,
	    sizeof(why)), CK_APPROVAL_COMPLETE);
	/* Only pending requests. */
	rq.requester_os_user[0] = '\0';
	rq.status = STORE_REQUEST_APPROVED;
	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 1, why,
	    sizeof(why)), CK_APPROVAL_REFUSED);
	assert_contains(why, "is approved, not pending");
	rq.status = STORE_REQUEST_DENIED;
	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 1, why,
	    sizeof(why)), CK_APPROVAL_REFUSED);
	rq.status = STORE_REQUEST_ISSUED;
	assert_int_equal(ck_approval_judge(&rq, have, 0, &who, 1, why,
	    sizeof(why)), CK_APPROVAL_REFUSED);
}

static void
test_profile_setting(void **state)
{
	struct ck_profile p;

	(void)state;
	OK(ck_profile_init(&p, "x"));
	assert_int_equal(p.approvals, 0);
	OK(ck_profile_set(&p, "approvals", "2"));
	assert_int_equal(p.approvals, 2);
	OK(ck_profile_set(&p, "approvals", "0"));
	assert_int_equal(p.approvals, 0);
	assert_int_not_equal(ck_profile_set(&p, "approvals", "3"), 0);
	assert_int_not_equal(ck_profile_set(&p, "approvals", "yes"), 0);
	ck_profile_clear(&p);
}

/* ---- the flow on a CA ------------------------------------------------- */

struct cfx {
	char dir[4096];
	char home[4200];
	char pass[4200];
	struct ck_pass_src src;
	struct ck_ca *ca;
	struct ck_request_io io;
};

static int
ca_setup(void **state)
{
	struct cfx *fx = calloc(1, sizeof(*fx));
	struct ck_init_params p;
	struct ck_profile *prof;

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->home, sizeof(fx->home), fx->dir, "ca");
	tu_path(fx->pass, sizeof(fx->pass), fx->dir, "pass");
	tu_write_file(fx->pass, PASSPHRASE "\n", strlen(PASSPHRASE) + 1,
	    0600);
	fx->src.kind = CK_PASS_FILE;
	fx->src.file = fx->pass;
	fx->src.fd = -1;
	memset(&p, 0, sizeof(p));
	p.home = fx->home;
	p.root = 1;
	p.subject = "CN=Approval Test Root";
	p.key_type = CK_KEY_EC_P256;
	p.days = 3000;
	p.path_len = -1;
	p.domain = "example.com";
	p.pass = &fx->src;
	p.scrypt_log2n = 10;
	if (ck_ca_init(&p) != 0 || ck_ca_open(fx->home, &fx->ca) != 0 ||
	    ck_ca_unlock(fx->ca, &fx->src) != 0) {
		fprintf(stderr, "CA: %s\n", ck_err_msg());
		return -1;
	}
	/* What "approvals = 2" in certkeep.conf sets. */
	prof = (struct ck_profile *)ck_config_profile(fx->ca->cfg,
	    "tls-server");
	if (prof == NULL)
		return -1;
	prof->approvals = 2;
	fx->io.ca = fx->ca;
	fx->io.rd = fx->ca->st;
	*state = fx;
	return 0;
}

static int
ca_teardown(void **state)
{
	struct cfx *fx = *state;

	ck_ca_close(fx->ca);
	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

static int64_t
submit(struct cfx *fx, const char *cn, const char *san, const char *os_user)
{
	struct tu_csr o = { 0 };
	struct ck_issue_params p;
	struct ck_request_origin ro = { "token:bot", NULL, os_user, NULL };
	struct store_request rq;
	unsigned char *csr = NULL;
	size_t len = 0;
	EVP_PKEY *k;
	int64_t id;

	o.subject = cn;
	o.san = san;
	o.pem = 1;
	k = tu_key("ec-p256");
	tu_csr_make(k, &o, &csr, &len);
	EVP_PKEY_free(k);
	memset(&p, 0, sizeof(p));
	p.csr = csr;
	p.csr_len = len;
	p.profile = "tls-server";
	p.path_len = -1;
	OK(ck_request_build(fx->ca, &p, &ro, &rq));
	OK(store_tx_begin(fx->ca->st));
	OK(ck_request_record(fx->ca, &rq));
	OK(store_tx_commit(fx->ca->st));
	id = rq.id;
	store_request_clear(&rq);
	free(csr);
	return id;
}

/* Run a decision write in a transaction that commits, as admin.c does. */
static int
decide(struct cfx *fx, int approve, int64_t id, const char *key,
    const char *reason, struct ck_request_decision *d)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->id = id;
	d->who.key = key;
	d->who.operator_name = key;
	d->who.os_user = key;
	d->who.actor = key;
	d->reason = reason;
	OK(store_tx_begin(fx->ca->st));
	r = approve ? ck_request_approve_write(fx->ca, d) :
	    ck_request_deny_write(fx->ca, d);
	OK(store_tx_commit(fx->ca->st));
	return r;
}

/* What a stop leaves: the request approved, with SERIAL (NULL: the one
 * it has) as the certificate being issued for it. */
static void
unfinish(struct cfx *fx, int64_t id, const char *serial)
{
	char path[4300], sql[200];
	sqlite3 *db = NULL;

	tu_path(path, sizeof(path), fx->home, "store.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	snprintf(sql, sizeof(sql), "UPDATE requests SET status = 'approved'"
	    "%s%s%s WHERE id = %lld", serial ? ", cert_serial = '" : "",
	    serial ? serial : "", serial ? "'" : "", (long long)id);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int
cert_count_cb(const struct store_cert *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static int
issued_certs(struct cfx *fx)
{
	struct store_cert_filter f;
	int n = 0;

	memset(&f, 0, sizeof(f));
	f.status = STORE_CERT_ISSUED;
	OK(store_cert_list(fx->ca->st, &f, cert_count_cb, &n));
	return n;
}

static void
test_flow(void **state)
{
	struct cfx *fx = *state;
	struct ck_request_decision d;
	struct store_request rq;
	struct store_cert *c = NULL;
	char serial[80], serial2[80];
	int64_t id, id2;
	int before;
	size_t n;

	before = issued_certs(fx);
	/* A CSR the profile refuses is refused at once, nothing kept. */
	{
		struct tu_csr o = { 0 };
		struct ck_issue_params p;
		unsigned char *csr = NULL;
		size_t len = 0;
		EVP_PKEY *k;
		o.subject = "CN=x.elsewhere.org";
		o.san = "DNS:x.elsewhere.org";
		k = tu_key("ec-p256");
		tu_csr_make(k, &o, &csr, &len);
		EVP_PKEY_free(k);
		memset(&p, 0, sizeof(p));
		p.csr = csr;
		p.csr_len = len;
		p.profile = "tls-server";
		p.path_len = -1;
		assert_int_equal(ck_request_build(fx->ca, &p, NULL, &rq),
		    CK_E_POLICY);
		free(csr);
	}

	id = submit(fx, "CN=a.example.com", "DNS:a.example.com", "reqer");
	assert_int_equal(issued_certs(fx), before);
	assert_int_equal(ck_request_needed(fx->ca, "tls-server"), 2);
	assert_int_equal(ck_request_needed(fx->ca, "gone"), 1);

	/* The requester cannot; cm1 once; cm1 again refused; cm2 completes. */
	assert_int_equal(decide(fx, 1, id, "reqer", NULL, &d), CK_E_POLICY);
	assert_contains(ck_err_msg(), "cannot approve their own request");
	OK(decide(fx, 1, id, "cm1", "ok", &d));
	assert_int_equal(d.complete, 0);
	assert_int_equal(d.have, 1);
	assert_int_equal(d.needed, 2);
	assert_int_equal(decide(fx, 1, id, "cm1", NULL, &d), CK_E_POLICY);
	assert_contains(ck_err_msg(), "approved request");
	assert_int_equal(ck_request_issue(&fx->io, id, serial), CK_E_STATE);
	OK(decide(fx, 1, id, "cm2", NULL, &d));
	assert_int_equal(d.complete, 1);
	OK(store_request_get(fx->ca->st, id, &rq));
	assert_int_equal(rq.status, STORE_REQUEST_APPROVED);
	store_request_clear(&rq);

	OK(ck_request_issue(&fx->io, id, serial));
	assert_true(serial[0] != '\0');
	assert_int_equal(issued_certs(fx), before + 1);
	OK(store_cert_get(fx->ca->st, serial, &c));
	assert_int_equal(c->status, STORE_CERT_ISSUED);
	assert_string_equal(c->requester, "token:bot");
	store_cert_free(c);
	OK(store_request_get(fx->ca->st, id, &rq));
	assert_int_equal(rq.status, STORE_REQUEST_ISSUED);
	assert_string_equal(rq.cert_serial, serial);
	store_request_clear(&rq);
	/* Again: the same certificate, no new one. */
	OK(ck_request_issue(&fx->io, id, serial2));
	assert_string_equal(serial, serial2);
	assert_int_equal(issued_certs(fx), before + 1);
	assert_int_equal(decide(fx, 1, id, "cm3", NULL, &d), CK_E_STATE);
	assert_int_equal(decide(fx, 0, id, "cm3", "late", &d), CK_E_STATE);

	/* A stop after the certificate was recorded but before the request
	 * was: settling finishes the request, with no second certificate. */
	id2 = submit(fx, "CN=b.example.com", "DNS:b.example.com", "reqer");
	OK(decide(fx, 1, id2, "cm1", NULL, &d));
	OK(decide(fx, 1, id2, "cm2", NULL, &d));
	OK(ck_request_issue(&fx->io, id2, serial));
	assert_int_equal(issued_certs(fx), before + 2);
	unfinish(fx, id2, NULL);
	OK(ck_request_settle(&fx->io, &n));
	assert_int_equal(n, 1);
	assert_int_equal(issued_certs(fx), before + 2);
	OK(store_request_get(fx->ca->st, id2, &rq));
	assert_int_equal(rq.status, STORE_REQUEST_ISSUED);
	assert_string_equal(rq.cert_serial, serial);
	store_request_clear(&rq);

	/* A stop after the pending row was logged, before the certificate
	 * was recorded (it never left): issued anew, once. */
	id2 = submit(fx, "CN=e.example.com", "DNS:e.example.com", NULL);
	OK(decide(fx, 1, id2, "cm1", NULL, &d));
	OK(decide(fx, 1, id2, "cm2", NULL, &d));
	unfinish(fx, id2, "0BADC0DE");
	OK(ck_request_settle(&fx->io, &n));
	assert_int_equal(n, 1);
	assert_int_equal(issued_certs(fx), before + 3);
	OK(store_request_get(fx->ca->st, id2, &rq));
	assert_int_equal(rq.status, STORE_REQUEST_ISSUED);
	assert_string_not_equal(rq.cert_serial, "0BADC0DE");
	store_request_clear(&rq);
	OK(ck_request_settle(&fx->io, &n));
	assert_int_equal(n, 0);
	assert_int_equal(issued_certs(fx), before + 3);

	/* A denial needs a reason, and is final. */
	id = submit(fx, "CN=c.example.com", "DNS:c.example.com", NULL);
	assert_int_equal(decide(fx, 0, id, "cm1", "", &d), CK_E_INVAL);
	OK(decide(fx, 0, id, "cm1", "no such host", &d));
	OK(store_request_get(fx->ca->st, id, &rq));
	assert_int_equal(rq.status, STORE_REQUEST_DENIED);
	assert_string_equal(rq.reason, "no such host");
	store_request_clear(&rq);
	assert_int_equal(decide(fx, 1, id, "cm2", NULL, &d), CK_E_STATE);

	/* The profile as it is at issuance: narrowed meanwhile, denied. */
	id = submit(fx, "CN=d.example.com", "DNS:d.example.com", NULL);
	OK(decide(fx, 1, id, "cm1", NULL, &d));
	OK(decide(fx, 1, id, "cm2", NULL, &d));
	{
		struct ck_profile *prof = (struct ck_profile *)
		    ck_config_profile(fx->ca->cfg, "tls-server");
		OK(ck_profile_set(prof, "dns_suffixes", "other.org"));
		assert_int_equal(ck_request_issue(&fx->io, id, serial),
		    CK_E_POLICY);
		assert_contains(ck_err_msg(), "no longer allows it");
		OK(ck_profile_set(prof, "dns_suffixes", "example.com"));
	}
	OK(store_request_get(fx->ca->st, id, &rq));
	assert_int_equal(rq.status, STORE_REQUEST_DENIED);
	assert_contains(rq.reason, "no longer allows it");
	store_request_clear(&rq);
	assert_int_equal(issued_certs(fx), before + 3);
	assert_int_equal(decide(fx, 1, 999, "cm1", NULL, &d), CK_E_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_requests,
		    store_setup, store_teardown),
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_profile_setting),
		cmocka_unit_test_setup_teardown(test_flow, ca_setup,
		    ca_teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	tu_keys_free();
	return r;
}
