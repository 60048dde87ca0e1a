/*
 * test_ocsp.c - src/proto/ocsp and signer_ocsp_*(): an in-memory CA
 * (EC P-256, then Ed25519) with two issued leaves, a status table behind
 * the lookup callback, and OpenSSL's OCSP client API on the other side:
 * good / revoked / unknown answers, foreign issuers and hash algorithms,
 * nonces, malformed requests, the GET form, the cache and its
 * invalidation, many threads, and signing with RSA and P-384 CA keys.
 * Then a delegated responder: its certificate (signer_ocsp_cert_prepare),
 * what the responder refuses as one, answers it signs that OpenSSL
 * accepts, nextUpdate cut at its expiry, swaps under load.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "proto/ocsp.h"
#include "signer/signer.h"
#include "x509/certbuild.h"
#include "x509/keygen.h"
#include "x509/serial.h"

#define VALIDITY 3600
#define REVOKED_AT INT64_C(1700000000)

/* ---- the status table behind the lookup callback ---- */

#define DB_MAX 8

struct db_row {
	char serial[CK_SERIAL_HEX_MAX];
	struct ocsp_status st;
};

static struct {
	pthread_mutex_t mu;
	struct db_row rows[DB_MAX];
	size_t n;
	int fail;
	atomic_int calls;
} db = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int
db_lookup(void *arg, const char *serial_hex, struct ocsp_status *out)
{
	size_t i;
	int r = 0;

	assert_ptr_equal(arg, &db);
	atomic_fetch_add(&db.calls, 1);
	pthread_mutex_lock(&db.mu);
	memset(out, 0, sizeof(*out));
	if (db.fail)
		r = ck_err_set(CK_E_STORE, "test store failure");
	for (i = 0; r == 0 && i < db.n; i++)
		if (strcmp(db.rows[i].serial, serial_hex) == 0)
			*out = db.rows[i].st;
	pthread_mutex_unlock(&db.mu);
	return r;
}

static void
db_set(const char *serial, int revoked, int64_t at, int reason)
{
	size_t i;

	pthread_mutex_lock(&db.mu);
	for (i = 0; i < db.n; i++)
		if (strcmp(db.rows[i].serial, serial) == 0)
			break;
	assert_true(i < DB_MAX);
	if (i == db.n) {
		snprintf(db.rows[i].serial, sizeof(db.rows[i].serial), "%s",
		    serial);
		db.n++;
	}
	db.rows[i].st.known = 1;
	db.rows[i].st.revoked = revoked;
	db.rows[i].st.revoked_at = at;
	db.rows[i].st.reason = reason;
	pthread_mutex_unlock(&db.mu);
}

static int
db_calls(void)
{
	return atomic_load(&db.calls);
}

/* ---- an in-memory CA ---- */

struct ca {
	EVP_PKEY *key;		/* a reference; the signer holds another */
	X509 *cert;
	struct signer *sg;
};

static X509_NAME *
cn_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	assert_non_null(n);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	return n;
}

/* A certificate for `pub` signed by `sg` (self-signed if `self`). */
static X509 *
issue(struct signer *sg, EVP_PKEY *pub, const char *cn, int is_ca, int self,
    char hex[CK_SERIAL_HEX_MAX])
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	unsigned char digest[32], *der = NULL;
	const unsigned char *q;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL);
	X509 *x;
	int r;

	memset(&t, 0, sizeof(t));
	t.subject = cn_name(cn);
	t.pubkey = pub;
	t.not_before = now - 3600;
	t.not_after = now + (is_ca ? 3650 : 30) * INT64_C(86400);
	t.is_ca = is_ca;
	t.path_len = -1;
	t.ku = is_ca ? (1u << CK_KU_KEY_CERT_SIGN) | (1u << CK_KU_CRL_SIGN) |
	    (1u << CK_KU_DIGITAL_SIGNATURE) : (1u << CK_KU_DIGITAL_SIGNATURE);
	r = signer_cert_prepare(sg, &t, self, &p, digest);
	if (r != 0)
		fail_msg("signer_cert_prepare: %d %s", r, ck_err_msg());
	if (hex != NULL)
		snprintf(hex, CK_SERIAL_HEX_MAX, "%s",
		    signer_pending_serial(p));
	r = signer_cert_sign(sg, p, &der, &len);
	if (r != 0)
		fail_msg("signer_cert_sign: %d %s", r, ck_err_msg());
	q = der;
	x = d2i_X509(NULL, &q, (long)len);
	assert_non_null(x);
	OPENSSL_free(der);
	X509_NAME_free((X509_NAME *)t.subject);
	return x;
}

static void
ca_make(struct ca *ca, enum ck_key_type type, const char *cn)
{
	int r;

	memset(ca, 0, sizeof(*ca));
	assert_int_equal(ck_key_generate(type, &ca->key), 0);
	assert_int_equal(EVP_PKEY_up_ref(ca->key), 1);
	assert_int_equal(signer_new(ca->key, NULL, &ca->sg), 0);
	ca->cert = issue(ca->sg, ca->key, cn, 1, 1, NULL);
	r = signer_set_cert(ca->sg, ca->cert);
	if (r != 0)
		fail_msg("signer_set_cert: %d %s", r, ck_err_msg());
}

static void
ca_free(struct ca *ca)
{
	signer_free(ca->sg);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	memset(ca, 0, sizeof(*ca));
}

/* ---- the fixture: one CA, two leaves, a foreign CA, a responder ---- */

static struct {
	enum ck_key_type type;
	struct ca ca, foreign;
	X509 *leaf[2];
	char leaf_hex[2][CK_SERIAL_HEX_MAX];
	struct ocsp_responder *r;
} F;

static int
fixture_setup(enum ck_key_type type)
{
	EVP_PKEY *k;
	int i;

	memset(&F, 0, sizeof(F));
	F.type = type;
	ca_make(&F.ca, type, "Test OCSP CA");
	ca_make(&F.foreign, CK_KEY_EC_P256, "Foreign CA");
	for (i = 0; i < 2; i++) {
		assert_int_equal(ck_key_generate(CK_KEY_EC_P256, &k), 0);
		F.leaf[i] = issue(F.ca.sg, k, i ? "leaf-revoked" : "leaf-good",
		    0, 0, F.leaf_hex[i]);
		EVP_PKEY_free(k);
	}
	pthread_mutex_lock(&db.mu);
	db.n = 0;
	db.fail = 0;
	pthread_mutex_unlock(&db.mu);
	db_set(F.leaf_hex[0], 0, 0, 0);
	db_set(F.leaf_hex[1], 1, REVOKED_AT, 1 /* keyCompromise */);
	assert_int_equal(ocsp_responder_new(F.ca.sg, F.ca.cert, db_lookup, &db,
	    VALIDITY, &F.r), 0);
	return 0;
}

static int
setup_p256(void **state)
{
	(void)state;
	return fixture_setup(CK_KEY_EC_P256);
}

static int
setup_ed25519(void **state)
{
	(void)state;
	return fixture_setup(CK_KEY_ED25519);
}

static int
fixture_teardown(void **state)
{
	(void)state;
	ocsp_responder_free(F.r);
	X509_free(F.leaf[0]);
	X509_free(F.leaf[1]);
	ca_free(&F.ca);
	ca_free(&F.foreign);
	memset(&F, 0, sizeof(F));
	return 0;
}

/* ---- client side helpers (OpenSSL's OCSP client API) ---- */

/* A CertID for `leaf` as issued by `issuer`, with digest `md` (NULL:
 * SHA-1). */
static OCSP_CERTID *
cid_for(const EVP_MD *md, X509 *leaf, X509 *issuer)
{
	OCSP_CERTID *id = OCSP_cert_to_id(md, leaf, issuer);

	assert_non_null(id);
	return id;
}

/* A CertID of this CA for an arbitrary serial. */
static OCSP_CERTID *
cid_serial(const EVP_MD *md, const char *hex)
{
	ASN1_INTEGER *ai = NULL;
	OCSP_CERTID *id;

	assert_int_equal(ck_serial_from_hex(hex, &ai), 0);
	id = OCSP_cert_id_new(md != NULL ? md : EVP_sha1(),
	    X509_get_subject_name(F.ca.cert),
	    X509_get0_pubkey_bitstr(F.ca.cert), ai);
	assert_non_null(id);
	ASN1_INTEGER_free(ai);
	return id;
}

/* Encode a request for `n` CertIDs (copied), with a random nonce of
 * `nonce_len` bytes if > 0. *reqp (if not NULL) keeps the request. */
static void
req_make(OCSP_CERTID *const *ids, int n, int nonce_len, OCSP_REQUEST **reqp,
    unsigned char **der, size_t *len)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	unsigned char *buf = NULL;
	int i, l;

	assert_non_null(req);
	for (i = 0; i < n; i++)
		assert_non_null(OCSP_request_add0_id(req,
		    OCSP_CERTID_dup(ids[i])));
	if (nonce_len > 0)
		assert_int_equal(OCSP_request_add1_nonce(req, NULL, nonce_len),
		    1);
	l = i2d_OCSP_REQUEST(req, &buf);
	assert_true(l > 0);
	*der = buf;
	*len = (size_t)l;
	if (reqp != NULL)
		*reqp = req;
	else
		OCSP_REQUEST_free(req);
}

static int
resp_status(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *o = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	int st;

	assert_non_null(o);
	assert_ptr_equal(p, der + len);
	st = OCSP_response_status(o);
	OCSP_RESPONSE_free(o);
	return st;
}

/* Verify a basic response as a client trusting the CA would. `strict`
 * also applies OpenSSL's check that the signer is the CertIDs' issuer. */
static int
verify_with(OCSP_BASICRESP *bs, X509 *ca, unsigned long flags)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509_STORE *st = X509_STORE_new();
	int ok;

	assert_non_null(certs);
	assert_non_null(st);
	assert_int_equal(sk_X509_push(certs, ca), 1);
	assert_int_equal(X509_STORE_add_cert(st, ca), 1);
	ok = OCSP_basic_verify(bs, certs, st, flags);
	ERR_clear_error();
	sk_X509_free(certs);
	X509_STORE_free(st);
	return ok;
}

/* Parse a successful response, check its signature, responder ID and
 * that it carries no certificates. */
static OCSP_BASICRESP *
resp_basic(const unsigned char *der, size_t len, int strict)
{
	const unsigned char *p = der;
	const ASN1_OCTET_STRING *keyid = NULL;
	const X509_NAME *name = NULL;
	unsigned char kh[EVP_MAX_MD_SIZE];
	unsigned int khlen = 0;
	OCSP_RESPONSE *o;
	OCSP_BASICRESP *bs;

	o = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	assert_non_null(o);
	assert_ptr_equal(p, der + len);
	assert_int_equal(OCSP_response_status(o),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(o);
	assert_non_null(bs);
	OCSP_RESPONSE_free(o);

	/* no certificates (OpenSSL leaves the stack out: -1) */
	assert_true(sk_X509_num(OCSP_resp_get0_certs(bs)) <= 0);
	assert_int_equal(OCSP_resp_get0_id(bs, &keyid, &name), 1);
	assert_non_null(keyid);
	assert_null(name);
	assert_int_equal(X509_pubkey_digest(F.ca.cert, EVP_sha1(), kh, &khlen),
	    1);
	assert_int_equal(ASN1_STRING_length(keyid), (int)khlen);
	assert_memory_equal(ASN1_STRING_get0_data(keyid), kh, khlen);

	if (strict)
		assert_int_equal(verify_with(bs, F.ca.cert, 0), 1);
	else
		assert_int_equal(verify_with(bs, F.ca.cert, OCSP_NOCHECKS), 1);
	/* Not valid under another CA. */
	assert_true(verify_with(bs, F.foreign.cert, 0) <= 0);
	return bs;
}

static int64_t
t64(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;

	assert_non_null(t);
	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return (int64_t)timegm(&tm);
}

struct got {
	int status;
	int reason;
	int64_t rev;
	int64_t this_upd;
	int64_t next_upd;
};

static void
find(OCSP_BASICRESP *bs, OCSP_CERTID *id, struct got *g)
{
	ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;

	memset(g, 0, sizeof(*g));
	assert_int_equal(OCSP_resp_find_status(bs, id, &g->status, &g->reason,
	    &rev, &tu, &nu), 1);
	g->rev = rev != NULL ? t64(rev) : -1;
	g->this_upd = t64(tu);
	g->next_upd = t64(nu);
	assert_int_equal(OCSP_check_validity(tu, nu, 5, -1), 1);
	assert_true(g->next_upd - g->this_upd == VALIDITY);
}

/* POST one CertID, with or without a nonce; check the nonce and the
 * times; returns the status in *g. */
static void
query1(OCSP_CERTID *id, int nonce, int strict, struct got *g)
{
	OCSP_REQUEST *req = NULL;
	OCSP_BASICRESP *bs;
	unsigned char *der, *resp = NULL;
	size_t len, resp_len = 0;
	int64_t t0 = (int64_t)time(NULL), t1;
	int r;

	req_make(&id, 1, nonce ? 16 : 0, &req, &der, &len);
	r = ocsp_respond_der(F.r, der, len, &resp, &resp_len);
	if (r != 0)
		fail_msg("ocsp_respond_der: %d %s", r, ck_err_msg());
	t1 = (int64_t)time(NULL);
	bs = resp_basic(resp, resp_len, strict);
	assert_int_equal(OCSP_check_nonce(req, bs), nonce ? 1 : 2);
	find(bs, id, g);
	if (nonce) {
		/* Fresh answers: thisUpdate is now. */
		assert_true(g->this_upd >= t0 && g->this_upd <= t1);
	}
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);
	OPENSSL_free(der);
	free(resp);
}

/* POST raw bytes; returns the response (free()). */
static unsigned char *
post(const unsigned char *der, size_t len, size_t *resp_len)
{
	unsigned char *resp = NULL;
	int r = ocsp_respond_der(F.r, der, len, &resp, resp_len);

	if (r != 0)
		fail_msg("ocsp_respond_der: %d %s", r, ck_err_msg());
	assert_non_null(resp);
	return resp;
}

static unsigned char *
get(const char *b64, size_t *resp_len)
{
	unsigned char *resp = NULL;
	int r = ocsp_respond_get(F.r, b64, &resp, resp_len);

	if (r != 0)
		fail_msg("ocsp_respond_get: %d %s", r, ck_err_msg());
	assert_non_null(resp);
	return resp;
}

static void
assert_malformed_post(const unsigned char *der, size_t len)
{
	static const unsigned char want[] = { 0x30, 0x03, 0x0a, 0x01, 0x01 };
	unsigned char *resp;
	size_t rl = 0;

	resp = post(der, len, &rl);
	assert_int_equal(rl, sizeof(want));
	assert_memory_equal(resp, want, sizeof(want));
	assert_int_equal(resp_status(resp, rl),
	    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	free(resp);
}

static void
assert_malformed_get(const char *s)
{
	unsigned char *resp;
	size_t rl = 0;

	resp = get(s, &rl);
	assert_int_equal(resp_status(resp, rl),
	    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	free(resp);
}

/* Standard base64 with padding. */
static char *
b64_encode(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	assert_non_null(out);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)out, in, (int)len),
	    (int)(4 * ((len + 2) / 3)));
	return out;
}

/* ---- tests ---- */

static void
test_good(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	struct got g;

	(void)state;
	query1(id, 1, 1, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
	assert_int_equal(g.rev, -1);
	query1(id, 0, 1, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
	OCSP_CERTID_free(id);
}

static void
test_revoked(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[1], F.ca.cert);
	struct got g;

	(void)state;
	query1(id, 1, 1, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	assert_true(g.rev == REVOKED_AT);
	OCSP_CERTID_free(id);
}

static void
test_revoked_reason_omitted(void **state)
{
	OCSP_CERTID *id;
	struct got g;

	(void)state;
	/* unspecified (0) is left out of the response */
	db_set("5EED0001", 1, REVOKED_AT + 60, 0);
	id = cid_serial(EVP_sha256(), "5EED0001");
	query1(id, 1, 1, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_NOSTATUS);
	assert_true(g.rev == REVOKED_AT + 60);
	OCSP_CERTID_free(id);

	/* superseded (4) is kept; the unused code 7 is left out */
	db_set("5EED0002", 1, REVOKED_AT, 4);
	id = cid_serial(NULL, "5EED0002");
	query1(id, 0, 1, &g);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_SUPERSEDED);
	OCSP_CERTID_free(id);
	db_set("5EED0003", 1, REVOKED_AT, 7);
	id = cid_serial(NULL, "5EED0003");
	query1(id, 0, 1, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_NOSTATUS);
	OCSP_CERTID_free(id);
}

static void
test_unknown_serial(void **state)
{
	OCSP_CERTID *id;
	struct got g;
	char hex[CK_SERIAL_HEX_MAX];
	ASN1_INTEGER *ai = NULL;
	int calls;

	(void)state;
	assert_int_equal(ck_serial_random(&ai, hex), 0);
	ASN1_INTEGER_free(ai);
	id = cid_serial(NULL, hex);
	calls = db_calls();
	query1(id, 1, 1, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	assert_int_equal(db_calls(), calls + 1);
	OCSP_CERTID_free(id);
}

static void
test_wrong_issuer(void **state)
{
	OCSP_CERTID *id;
	struct got g;
	int calls;

	(void)state;
	/* leaf[0]'s serial is known, but asked for under another CA */
	calls = db_calls();
	id = cid_for(NULL, F.leaf[0], F.foreign.cert);
	query1(id, 1, 0, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_CERTID_free(id);
	id = cid_for(EVP_sha256(), F.leaf[0], F.foreign.cert);
	query1(id, 0, 0, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_CERTID_free(id);
	/* the right name with the wrong key, and a foreign CA's cert
	 * asked about under its own name */
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(F.ca.cert),
	    X509_get0_pubkey_bitstr(F.foreign.cert),
	    X509_get0_serialNumber(F.leaf[0]));
	assert_non_null(id);
	query1(id, 0, 0, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_CERTID_free(id);
	assert_int_equal(db_calls(), calls);
}

static void
test_hash_algorithms(void **state)
{
	const EVP_MD *mds[] = {
		EVP_sha1(), EVP_sha256(), EVP_sha384(), EVP_sha512()
	};
	OCSP_CERTID *id;
	struct got g;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
		id = cid_for(mds[i], F.leaf[0], F.ca.cert);
		query1(id, 1, 1, &g);
		assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
		OCSP_CERTID_free(id);
		id = cid_for(mds[i], F.leaf[1], F.ca.cert);
		query1(id, 0, 1, &g);
		assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
		OCSP_CERTID_free(id);
	}
	/* SHA-224 is not one of ours: unknown */
	id = cid_for(EVP_sha224(), F.leaf[0], F.ca.cert);
	query1(id, 1, 0, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_CERTID_free(id);
}

static void
test_multiple(void **state)
{
	OCSP_CERTID *ids[OCSP_MAX_CERTIDS + 1];
	OCSP_REQUEST *req = NULL;
	OCSP_BASICRESP *bs;
	unsigned char *der, *resp;
	size_t len, rl = 0;
	struct got g;
	int i;

	(void)state;
	ids[0] = cid_for(NULL, F.leaf[0], F.ca.cert);
	ids[1] = cid_for(EVP_sha256(), F.leaf[1], F.ca.cert);
	ids[2] = cid_serial(NULL, "ABCDEF");
	ids[3] = cid_for(NULL, F.leaf[1], F.foreign.cert);
	for (i = 4; i <= OCSP_MAX_CERTIDS; i++)
		ids[i] = cid_for(i % 2 ? EVP_sha384() : EVP_sha512(),
		    F.leaf[i % 2], F.ca.cert);

	req_make(ids, OCSP_MAX_CERTIDS, 32, &req, &der, &len);
	resp = post(der, len, &rl);
	bs = resp_basic(resp, rl, 0);
	assert_int_equal(OCSP_resp_count(bs), OCSP_MAX_CERTIDS);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	find(bs, ids[0], &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
	find(bs, ids[1], &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	find(bs, ids[2], &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	find(bs, ids[3], &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	for (i = 4; i < OCSP_MAX_CERTIDS; i++) {
		find(bs, ids[i], &g);
		assert_int_equal(g.status, i % 2 ? V_OCSP_CERTSTATUS_REVOKED :
		    V_OCSP_CERTSTATUS_GOOD);
	}
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);
	OPENSSL_free(der);
	free(resp);

	/* one CertID too many */
	req_make(ids, OCSP_MAX_CERTIDS + 1, 0, NULL, &der, &len);
	assert_malformed_post(der, len);
	OPENSSL_free(der);
	for (i = 0; i <= OCSP_MAX_CERTIDS; i++)
		OCSP_CERTID_free(ids[i]);
}

/* Add a nonce extension whose extnValue is `len` bytes of `der`. */
static void
add_nonce_ext(OCSP_REQUEST *req, const unsigned char *der, int len)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;

	assert_non_null(os);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, len), 1);
	ext = X509_EXTENSION_create_by_NID(NULL, NID_id_pkix_OCSP_Nonce, 0,
	    os);
	assert_non_null(ext);
	assert_int_equal(OCSP_REQUEST_add_ext(req, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
}

static void
test_nonce(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	OCSP_REQUEST *req = NULL;
	OCSP_BASICRESP *bs;
	unsigned char *der, *resp, val[18];
	size_t len, rl = 0;
	int sizes[] = { 1, 16, 32, 128 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		req_make(&id, 1, sizes[i], &req, &der, &len);
		resp = post(der, len, &rl);
		bs = resp_basic(resp, rl, 1);
		assert_int_equal(OCSP_check_nonce(req, bs), 1);
		OCSP_BASICRESP_free(bs);
		OCSP_REQUEST_free(req);
		OPENSSL_free(der);
		free(resp);
	}

	/* over 128 octets: malformed (RFC 9654) */
	req_make(&id, 1, 129, NULL, &der, &len);
	assert_malformed_post(der, len);
	OPENSSL_free(der);

	/* empty: malformed */
	req_make(&id, 1, 0, &req, &der, &len);
	OPENSSL_free(der);
	add_nonce_ext(req, (const unsigned char *)"\x04\x00", 2);
	der = NULL;
	len = (size_t)i2d_OCSP_REQUEST(req, &der);
	assert_malformed_post(der, len);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);

	/* two nonces: malformed */
	req_make(&id, 1, 16, &req, &der, &len);
	OPENSSL_free(der);
	memset(val, 0x42, sizeof(val));
	val[0] = 0x04;
	val[1] = 16;
	add_nonce_ext(req, val, 18);
	der = NULL;
	len = (size_t)i2d_OCSP_REQUEST(req, &der);
	assert_malformed_post(der, len);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);

	/* a bare nonce (not wrapped in an OCTET STRING, as some old clients
	 * send it): accepted and echoed */
	req_make(&id, 1, 0, &req, &der, &len);
	OPENSSL_free(der);
	add_nonce_ext(req, val + 2, 16);
	der = NULL;
	len = (size_t)i2d_OCSP_REQUEST(req, &der);
	resp = post(der, len, &rl);
	bs = resp_basic(resp, rl, 1);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	OCSP_BASICRESP_free(bs);
	free(resp);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
}

static void
test_malformed(void **state)
{
	static const unsigned char garbage[] = "this is not an OCSP request";
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	OCSP_REQUEST *empty;
	struct ocsp_stats s0, s1;
	unsigned char *der, *big, *eder = NULL;
	size_t len, i;
	int elen;

	(void)state;
	ocsp_get_stats(F.r, &s0);
	assert_malformed_post(garbage, sizeof(garbage) - 1);
	assert_malformed_post(garbage, 0);

	req_make(&id, 1, 16, NULL, &der, &len);
	for (i = 1; i < len; i += (i < 8 ? 1 : 7))
		assert_malformed_post(der, len - i);	/* truncated */
	assert_malformed_post(der + 1, len - 1);
	big = calloc(1, OCSP_MAX_REQUEST + 1);
	assert_non_null(big);
	memcpy(big, der, len);
	assert_malformed_post(big, len + 1);	/* trailing garbage */
	assert_malformed_post(big, OCSP_MAX_REQUEST + 1); /* oversized */
	free(big);
	/* a flipped tag */
	der[0] ^= 0x01;
	assert_malformed_post(der, len);
	OPENSSL_free(der);

	/* no CertID at all */
	empty = OCSP_REQUEST_new();
	assert_non_null(empty);
	elen = i2d_OCSP_REQUEST(empty, &eder);
	assert_true(elen > 0);
	assert_malformed_post(eder, (size_t)elen);
	OPENSSL_free(eder);
	OCSP_REQUEST_free(empty);

	ocsp_get_stats(F.r, &s1);
	assert_true(s1.malformed - s0.malformed >= 10);
	assert_true(s1.malformed - s0.malformed == s1.requests - s0.requests);
	assert_true(s1.signed_ == s0.signed_);
	OCSP_CERTID_free(id);
}

/* Rewrite standard base64 into other accepted GET spellings. */
static char *
respell(const char *b64, int how)
{
	size_t i, n = strlen(b64);
	char *out = malloc(3 * n + 1), *o = out;

	assert_non_null(out);
	for (i = 0; i < n; i++) {
		if (how == 0 && b64[i] == '=')
			continue;		/* unpadded */
		if (how == 1 && (b64[i] == '+' || b64[i] == '/' ||
		    b64[i] == '=')) {	/* percent-encoded */
			snprintf(o, 4, "%%%02X", (unsigned char)b64[i]);
			if (i % 2)	/* lower-case hex too */
				o[2] = (char)(o[2] >= 'A' ? o[2] - 'A' + 'a' :
				    o[2]);
			o += 3;
			continue;
		}
		if (how == 2 && b64[i] == '+')
			*o++ = '-';	/* URL-safe */
		else if (how == 2 && b64[i] == '/')
			*o++ = '_';
		else
			*o++ = b64[i];
	}
	*o = '\0';
	return out;
}

static void
test_get(void **state)
{
	OCSP_CERTID *id = cid_for(EVP_sha256(), F.leaf[0], F.ca.cert);
	OCSP_REQUEST *req = NULL;
	OCSP_BASICRESP *bs;
	unsigned char *der, *a, *b;
	size_t len, al = 0, bl = 0;
	char *s, *v;
	struct got g;
	int how, found = 0;

	(void)state;
	/* no nonce: GET first, then POST: the same answer */
	ocsp_invalidate_all(F.r);
	req_make(&id, 1, 0, NULL, &der, &len);
	s = b64_encode(der, len);
	a = get(s, &al);
	bs = resp_basic(a, al, 1);
	find(bs, id, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
	OCSP_BASICRESP_free(bs);
	b = post(der, len, &bl);
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);
	free(b);
	for (how = 0; how < 3; how++) {
		v = respell(s, how);
		b = get(v, &bl);
		assert_int_equal(al, bl);
		assert_memory_equal(a, b, al);
		free(b);
		free(v);
	}
	free(a);
	OPENSSL_free(der);
	free(s);

	/* GET with a nonce: echoed; make sure the encoding has '+', '/' or
	 * '=' to exercise the escapes */
	while (!found) {
		req_make(&id, 1, 16, &req, &der, &len);
		s = b64_encode(der, len);
		found = strpbrk(s, "+/=") != NULL;
		v = respell(s, 1);
		a = get(v, &al);
		bs = resp_basic(a, al, 1);
		assert_int_equal(OCSP_check_nonce(req, bs), 1);
		find(bs, id, &g);
		assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
		OCSP_BASICRESP_free(bs);
		OCSP_REQUEST_free(req);
		OPENSSL_free(der);
		free(a);
		free(v);
		free(s);
	}

	/* malformed GETs */
	assert_malformed_get("");
	assert_malformed_get("!!!!");
	assert_malformed_get("MA==AA");
	assert_malformed_get("MA===");
	assert_malformed_get("MAA==");
	assert_malformed_get("M");
	assert_malformed_get("MA%41");
	assert_malformed_get("MA%2");
	assert_malformed_get("MA%");
	assert_malformed_get("MAo A");
	assert_malformed_get("MAoGCCqGSM49BAMC");	/* decodes, not OCSP */
	OCSP_CERTID_free(id);
}

static void
test_get_oversized(void **state)
{
	size_t n = 4 * (OCSP_MAX_REQUEST / 3 + 2);
	unsigned char *raw = calloc(1, OCSP_MAX_REQUEST + 6);
	char *s;

	(void)state;
	assert_non_null(raw);
	raw[0] = 0x30;
	s = b64_encode(raw, OCSP_MAX_REQUEST + 6);
	assert_true(strlen(s) >= n);
	assert_malformed_get(s);
	free(s);
	free(raw);
}

static void
test_cache(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	OCSP_BASICRESP *bs;
	struct ocsp_stats s0, s1;
	unsigned char *der, *a, *b;
	size_t len, al = 0, bl = 0;
	char lower[CK_SERIAL_HEX_MAX];
	struct got g;
	size_t i;
	int calls;

	(void)state;
	ocsp_invalidate_all(F.r);
	req_make(&id, 1, 0, NULL, &der, &len);
	calls = db_calls();
	ocsp_get_stats(F.r, &s0);
	a = post(der, len, &al);
	for (i = 0; i < 5; i++) {
		b = post(der, len, &bl);
		assert_int_equal(al, bl);
		assert_memory_equal(a, b, al);
		free(b);
	}
	assert_int_equal(db_calls(), calls + 1);
	ocsp_get_stats(F.r, &s1);
	assert_true(s1.requests - s0.requests == 6);
	assert_true(s1.cached - s0.cached == 5);
	assert_true(s1.signed_ - s0.signed_ == 1);

	/* revoked in the store: the cache still answers good ... */
	db_set(F.leaf_hex[0], 1, REVOKED_AT, 3);
	b = post(der, len, &bl);
	assert_memory_equal(a, b, al);
	free(b);
	/* ... until invalidated (in any spelling of the serial) */
	for (i = 0; F.leaf_hex[0][i] != '\0'; i++)
		lower[i] = (char)(F.leaf_hex[0][i] >= 'A' ?
		    F.leaf_hex[0][i] - 'A' + 'a' : F.leaf_hex[0][i]);
	lower[i] = '\0';
	ocsp_invalidate(F.r, "0x0123");		/* another serial */
	b = post(der, len, &bl);
	assert_memory_equal(a, b, al);
	free(b);
	ocsp_invalidate(F.r, lower);
	b = post(der, len, &bl);
	assert_true(bl != al || memcmp(a, b, al) != 0);
	bs = resp_basic(b, bl, 1);
	find(bs, id, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_AFFILIATIONCHANGED);
	assert_true(g.rev == REVOKED_AT);
	OCSP_BASICRESP_free(bs);
	free(a);
	a = b;
	al = bl;
	assert_int_equal(db_calls(), calls + 2);

	/* ocsp_invalidate_all() too */
	db_set(F.leaf_hex[0], 0, 0, 0);
	ocsp_invalidate_all(F.r);
	b = post(der, len, &bl);
	bs = resp_basic(b, bl, 1);
	find(bs, id, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
	OCSP_BASICRESP_free(bs);
	free(b);
	free(a);
	OPENSSL_free(der);

	/* requests with a nonce are never cached */
	req_make(&id, 1, 16, NULL, &der, &len);
	calls = db_calls();
	ocsp_get_stats(F.r, &s0);
	a = post(der, len, &al);
	b = post(der, len, &bl);
	assert_int_equal(db_calls(), calls + 2);
	ocsp_get_stats(F.r, &s1);
	assert_true(s1.cached == s0.cached);
	assert_true(s1.signed_ - s0.signed_ == 2);
	free(a);
	free(b);
	OPENSSL_free(der);
	OCSP_CERTID_free(id);
}

static void
test_cache_expiry(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	struct ocsp_responder *r = NULL;
	unsigned char *der, *a = NULL, *b = NULL;
	size_t len, al = 0, bl = 0;
	int calls;

	(void)state;
	/* valid 4 s: reused for 2 s */
	assert_int_equal(ocsp_responder_new(F.ca.sg, F.ca.cert, db_lookup, &db,
	    4, &r), 0);
	req_make(&id, 1, 0, NULL, &der, &len);
	calls = db_calls();
	assert_int_equal(ocsp_respond_der(r, der, len, &a, &al), 0);
	assert_int_equal(ocsp_respond_der(r, der, len, &b, &bl), 0);
	assert_memory_equal(a, b, al);
	assert_int_equal(db_calls(), calls + 1);
	free(b);
	sleep(3);
	assert_int_equal(ocsp_respond_der(r, der, len, &b, &bl), 0);
	assert_int_equal(db_calls(), calls + 2);
	assert_true(al != bl || memcmp(a, b, al) != 0);
	free(a);
	free(b);
	OPENSSL_free(der);
	OCSP_CERTID_free(id);
	ocsp_responder_free(r);
}

static void
test_lookup_failure(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	unsigned char *der, *resp = NULL;
	size_t len, rl = 0;

	(void)state;
	ocsp_invalidate_all(F.r);
	req_make(&id, 1, 0, NULL, &der, &len);
	pthread_mutex_lock(&db.mu);
	db.fail = 1;
	pthread_mutex_unlock(&db.mu);
	assert_int_equal(ocsp_respond_der(F.r, der, len, &resp, &rl),
	    CK_E_STORE);
	assert_null(resp);
	pthread_mutex_lock(&db.mu);
	db.fail = 0;
	pthread_mutex_unlock(&db.mu);
	/* nothing was cached */
	resp = post(der, len, &rl);
	assert_int_equal(resp_status(resp, rl),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	free(resp);
	OPENSSL_free(der);
	OCSP_CERTID_free(id);

	assert_int_equal(ocsp_respond_status(OCSP_RESPONSE_STATUS_TRYLATER,
	    &resp, &rl), 0);
	assert_int_equal(resp_status(resp, rl),
	    OCSP_RESPONSE_STATUS_TRYLATER);
	free(resp);
	assert_int_equal(ocsp_respond_status(OCSP_RESPONSE_STATUS_SUCCESSFUL,
	    &resp, &rl), CK_E_INVAL);
}

static void
test_new_refusals(void **state)
{
	struct ocsp_responder *r = NULL;

	(void)state;
	assert_int_equal(ocsp_responder_new(F.ca.sg, F.foreign.cert,
	    db_lookup, &db, VALIDITY, &r), CK_E_INVAL);
	assert_int_equal(ocsp_responder_new(F.ca.sg, F.ca.cert, db_lookup,
	    &db, 0, &r), CK_E_INVAL);
	assert_int_equal(ocsp_responder_new(F.ca.sg, F.ca.cert, NULL, &db,
	    VALIDITY, &r), CK_E_INVAL);
	assert_null(r);
	ocsp_responder_free(NULL);
}

/* ---- many threads: cached answers, signing and invalidation ---- */

#define THREADS 4
#define ITER 3000

struct worker {
	pthread_t t;
	unsigned char *der[2];
	size_t len[2];
	int bad;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	const unsigned char *p;
	OCSP_RESPONSE *o;
	unsigned char *resp;
	size_t rl;
	int i;

	for (i = 0; i < ITER; i++) {
		resp = NULL;
		if (ocsp_respond_der(F.r, w->der[i & 1], w->len[i & 1], &resp,
		    &rl) != 0) {
			w->bad++;
			continue;
		}
		p = resp;
		o = d2i_OCSP_RESPONSE(NULL, &p, (long)rl);
		if (o == NULL || OCSP_response_status(o) !=
		    OCSP_RESPONSE_STATUS_SUCCESSFUL)
			w->bad++;
		OCSP_RESPONSE_free(o);
		free(resp);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	OCSP_CERTID *ids[2];
	OCSP_BASICRESP *bs;
	struct worker w[THREADS];
	struct ocsp_stats s0, s1;
	struct timespec t0, t1;
	unsigned char *der, *resp;
	size_t len, rl;
	struct got g;
	double secs;
	int i, j;

	(void)state;
	ids[0] = cid_for(NULL, F.leaf[0], F.ca.cert);
	ids[1] = cid_for(EVP_sha256(), F.leaf[1], F.ca.cert);
	ocsp_get_stats(F.r, &s0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		for (j = 0; j < 2; j++)
			req_make(&ids[j], 1, 0, NULL, &w[i].der[j],
			    &w[i].len[j]);
		assert_int_equal(pthread_create(&w[i].t, NULL, worker_run,
		    &w[i]), 0);
	}
	/* Meanwhile: flip leaf[0] between good and revoked, invalidating
	 * each time, and ask with nonces (always signed). Ends revoked. */
	for (i = 0; i < 40; i++) {
		db_set(F.leaf_hex[0], i % 2 == 0, REVOKED_AT, 0);
		if (i % 10 == 9)
			ocsp_invalidate_all(F.r);
		else
			ocsp_invalidate(F.r, F.leaf_hex[0]);
		req_make(&ids[i & 1], 1, 16, NULL, &der, &len);
		resp = post(der, len, &rl);
		assert_int_equal(resp_status(resp, rl),
		    OCSP_RESPONSE_STATUS_SUCCESSFUL);
		free(resp);
		OPENSSL_free(der);
	}
	db_set(F.leaf_hex[0], 1, REVOKED_AT, 0);
	ocsp_invalidate(F.r, F.leaf_hex[0]);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(w[i].t, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ocsp_get_stats(F.r, &s1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("%d threads: %.0f answers/s (%llu cached, %llu "
	    "signed)\n", THREADS, THREADS * ITER / secs,
	    (unsigned long long)(s1.cached - s0.cached),
	    (unsigned long long)(s1.signed_ - s0.signed_));
	for (i = 0; i < THREADS; i++)
		assert_int_equal(w[i].bad, 0);
	assert_true(s1.requests - s0.requests == THREADS * ITER + 40);
	assert_true(s1.cached - s0.cached > 0);
	assert_true(s1.requests - s0.requests ==
	    (s1.cached - s0.cached) + (s1.signed_ - s0.signed_));

	/* No answer from before the last invalidation survived it. */
	for (j = 0; j < 2; j++) {
		resp = post(w[0].der[0], w[0].len[0], &rl);
		bs = resp_basic(resp, rl, 1);
		find(bs, ids[0], &g);
		assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
		OCSP_BASICRESP_free(bs);
		free(resp);
	}
	db_set(F.leaf_hex[0], 0, 0, 0);
	ocsp_invalidate(F.r, F.leaf_hex[0]);
	for (i = 0; i < THREADS; i++)
		for (j = 0; j < 2; j++)
			OPENSSL_free(w[i].der[j]);
	OCSP_CERTID_free(ids[0]);
	OCSP_CERTID_free(ids[1]);
}

/* ---- other CA key types ---- */

static void
check_key_type(enum ck_key_type type)
{
	struct ca saved = F.ca;
	struct ocsp_responder *saved_r = F.r;
	OCSP_CERTID *id;
	struct got g;
	ASN1_INTEGER *ai = NULL;
	char hex[CK_SERIAL_HEX_MAX];

	ca_make(&F.ca, type, "Other CA");
	assert_int_equal(ocsp_responder_new(F.ca.sg, F.ca.cert, db_lookup, &db,
	    VALIDITY, &F.r), 0);
	assert_int_equal(ck_serial_random(&ai, hex), 0);
	ASN1_INTEGER_free(ai);
	db_set(hex, 1, REVOKED_AT, 5);
	id = cid_serial(EVP_sha256(), hex);
	query1(id, 1, 1, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_CESSATIONOFOPERATION);
	OCSP_CERTID_free(id);
	ocsp_responder_free(F.r);
	ca_free(&F.ca);
	F.ca = saved;
	F.r = saved_r;
}

static void
test_other_keys(void **state)
{
	(void)state;
	check_key_type(CK_KEY_EC_P384);
	check_key_type(CK_KEY_RSA2048);
}

static void
test_signer_without_cert(void **state)
{
	EVP_PKEY *k = NULL;
	struct signer *sg = NULL;
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();

	(void)state;
	assert_non_null(bs);
	assert_int_equal(ck_key_generate(CK_KEY_EC_P256, &k), 0);
	assert_int_equal(signer_new(k, NULL, &sg), 0);
	assert_int_equal(signer_ocsp_sign(sg, &bs, 0), CK_E_STATE);
	assert_int_equal(signer_ocsp_sign(sg, &bs, 1), CK_E_STATE);
	signer_free(sg);
	OCSP_BASICRESP_free(bs);
}

/* ---- a delegated responder (RFC 6960 section 4.2.2.2) ---- */

/* A responder certificate from `ca` for a new key of `type`, valid from
 * `nb` to `na` (seconds from now); *key gets the key. */
static X509 *
delegate_make(struct ca *ca, enum ck_key_type type, int64_t nb, int64_t na,
    EVP_PKEY **key)
{
	struct ck_cert_template t;
	struct ck_strlist eku = { 0 };
	struct signer_pending *p = NULL;
	unsigned char digest[32], *der = NULL;
	const unsigned char *q;
	int64_t now = (int64_t)time(NULL);
	size_t len = 0;
	X509 *x;
	int r;

	assert_int_equal(ck_key_generate(type, key), 0);
	assert_int_equal(ck_strlist_add(&eku, "OCSPSigning"), 0);
	memset(&t, 0, sizeof(t));
	t.subject = cn_name("Test OCSP responder");
	t.pubkey = *key;
	t.not_before = now + nb;
	t.not_after = now + na;
	t.path_len = -1;
	t.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
	t.eku = &eku;
	r = signer_ocsp_cert_prepare(ca->sg, &t, &p, digest);
	if (r != 0)
		fail_msg("signer_ocsp_cert_prepare: %d %s", r, ck_err_msg());
	r = signer_cert_sign(ca->sg, p, &der, &len);
	if (r != 0)
		fail_msg("signer_cert_sign: %d %s", r, ck_err_msg());
	q = der;
	x = d2i_X509(NULL, &q, (long)len);
	assert_non_null(x);
	OPENSSL_free(der);
	X509_NAME_free((X509_NAME *)t.subject);
	ck_strlist_clear(&eku);
	return x;
}

/* Set a delegate (the key passes to the responder). */
static void
delegate_set(EVP_PKEY *key, X509 *cert)
{
	int r = ocsp_responder_set_delegate(F.r, key, cert);

	if (r != 0)
		fail_msg("ocsp_responder_set_delegate: %d %s", r,
		    ck_err_msg());
}

/* Parse a successful response signed by the delegate `dcert`: the
 * responder is named by the hash of its key, its certificate (only) is
 * included, and a client trusting the CA accepts it with all of
 * OpenSSL's checks (the signer is the CA's delegate for OCSPSigning). */
static OCSP_BASICRESP *
resp_basic_dlg(const unsigned char *der, size_t len, X509 *dcert)
{
	const unsigned char *p = der;
	const ASN1_OCTET_STRING *keyid = NULL;
	const X509_NAME *name = NULL;
	const STACK_OF(X509) *certs;
	unsigned char kh[EVP_MAX_MD_SIZE];
	unsigned int khlen = 0;
	OCSP_RESPONSE *o;
	OCSP_BASICRESP *bs;
	X509 *signer = NULL;

	o = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	assert_non_null(o);
	assert_int_equal(OCSP_response_status(o),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(o);
	assert_non_null(bs);
	OCSP_RESPONSE_free(o);

	certs = OCSP_resp_get0_certs(bs);
	assert_int_equal(sk_X509_num(certs), 1);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 0), dcert), 0);
	assert_int_equal(OCSP_resp_get0_id(bs, &keyid, &name), 1);
	assert_non_null(keyid);
	assert_null(name);
	assert_int_equal(X509_pubkey_digest(dcert, EVP_sha1(), kh, &khlen), 1);
	assert_int_equal(ASN1_STRING_length(keyid), (int)khlen);
	assert_memory_equal(ASN1_STRING_get0_data(keyid), kh, khlen);
	assert_int_equal(OCSP_resp_get0_signer(bs, &signer, NULL), 1);
	assert_int_equal(X509_cmp(signer, dcert), 0);
	assert_int_equal(OCSP_basic_verify(bs, NULL, NULL, OCSP_NOVERIFY),
	    1);
	assert_int_equal(verify_with(bs, F.ca.cert, 0), 1);
	assert_true(verify_with(bs, F.foreign.cert, 0) <= 0);
	return bs;
}

static void
test_delegate_cert(void **state)
{
	struct ck_cert_template t;
	struct ck_strlist eku = { 0 };
	struct signer_pending *p = NULL;
	unsigned char digest[32];
	ASN1_OCTET_STRING *ext;
	EVP_PKEY *k = NULL;
	X509 *x;
	int idx;

	(void)state;
	x = delegate_make(&F.ca, CK_KEY_EC_P256, -60, 3600, &k);
	/* What RFC 6960 section 4.2.2.2 and OpenSSL ask. */
	assert_int_equal(X509_check_issued(F.ca.cert, x), X509_V_OK);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(F.ca.cert)), 1);
	assert_true(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_OCSP_SIGN);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_OCSP_HELPER, 0),
	    1);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_non_null(X509_get0_authority_key_id(x));
	/* id-pkix-ocsp-nocheck: present, not critical, NULL. */
	idx = X509_get_ext_by_NID(x, NID_id_pkix_OCSP_noCheck, -1);
	assert_true(idx >= 0);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, idx)),
	    0);
	ext = X509_EXTENSION_get_data(X509_get_ext(x, idx));
	assert_int_equal(ASN1_STRING_length(ext), 2);
	assert_memory_equal(ASN1_STRING_get0_data(ext), "\x05\x00", 2);
	X509_free(x);
	EVP_PKEY_free(k);

	/* Nothing else goes through this path. */
	assert_int_equal(ck_key_generate(CK_KEY_EC_P256, &k), 0);
	memset(&t, 0, sizeof(t));
	t.subject = cn_name("not a responder");
	t.pubkey = k;
	t.not_before = (int64_t)time(NULL);
	t.not_after = t.not_before + 3600;
	t.path_len = -1;
	t.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
	assert_int_equal(signer_ocsp_cert_prepare(F.ca.sg, &t, &p, digest),
	    CK_E_INVAL);			/* no EKU */
	assert_int_equal(ck_strlist_add(&eku, "serverAuth"), 0);
	t.eku = &eku;
	assert_int_equal(signer_ocsp_cert_prepare(F.ca.sg, &t, &p, digest),
	    CK_E_INVAL);			/* another EKU */
	ck_strlist_clear(&eku);
	assert_int_equal(ck_strlist_add(&eku, "OCSPSigning"), 0);
	assert_int_equal(ck_strlist_add(&eku, "clientAuth"), 0);
	assert_int_equal(signer_ocsp_cert_prepare(F.ca.sg, &t, &p, digest),
	    CK_E_INVAL);			/* more than OCSPSigning */
	ck_strlist_clear(&eku);
	assert_int_equal(ck_strlist_add(&eku, "OCSPSigning"), 0);
	t.ku |= 1u << CK_KU_KEY_ENCIPHERMENT;
	assert_int_equal(signer_ocsp_cert_prepare(F.ca.sg, &t, &p, digest),
	    CK_E_INVAL);			/* another usage */
	t.ku = (1u << CK_KU_KEY_CERT_SIGN) | (1u << CK_KU_DIGITAL_SIGNATURE);
	t.is_ca = 1;
	assert_int_equal(signer_ocsp_cert_prepare(F.ca.sg, &t, &p, digest),
	    CK_E_INVAL);			/* a CA */
	assert_null(p);
	ck_strlist_clear(&eku);
	X509_NAME_free((X509_NAME *)t.subject);
	EVP_PKEY_free(k);
}

/* POST one CertID; the response must be the delegate's. */
static void
query_dlg(OCSP_CERTID *id, int nonce, X509 *dcert, struct got *g)
{
	OCSP_REQUEST *req = NULL;
	OCSP_BASICRESP *bs;
	unsigned char *der, *resp;
	size_t len, rl = 0;

	req_make(&id, 1, nonce ? 16 : 0, &req, &der, &len);
	resp = post(der, len, &rl);
	bs = resp_basic_dlg(resp, rl, dcert);
	assert_int_equal(OCSP_check_nonce(req, bs), nonce ? 1 : 2);
	find(bs, id, g);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);
	OPENSSL_free(der);
	free(resp);
}

static void
test_delegate_sign(void **state)
{
	OCSP_CERTID *id0 = cid_for(NULL, F.leaf[0], F.ca.cert);
	OCSP_CERTID *id1 = cid_for(EVP_sha256(), F.leaf[1], F.ca.cert);
	OCSP_CERTID *idu = cid_serial(NULL, "0123456789ABCDEF");
	struct ocsp_stats s0, s1;
	EVP_PKEY *k = NULL;
	struct got g;
	X509 *d;

	(void)state;
	d = delegate_make(&F.ca, F.type, -60, 2 * VALIDITY, &k);
	delegate_set(k, d);
	ocsp_get_stats(F.r, &s0);
	query_dlg(id0, 1, d, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
	query_dlg(id1, 0, d, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(g.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	query_dlg(idu, 0, d, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_UNKNOWN);
	/* Cached answers are the delegate's too. */
	query_dlg(id1, 0, d, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_REVOKED);
	ocsp_get_stats(F.r, &s1);
	assert_int_equal(s1.cached - s0.cached, 1);
	X509_free(d);
	OCSP_CERTID_free(id0);
	OCSP_CERTID_free(id1);
	OCSP_CERTID_free(idu);
}

static void
test_delegate_refusals(void **state)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	X509 *x;

	(void)state;
	/* from another CA */
	x = delegate_make(&F.foreign, CK_KEY_EC_P256, -60, 3600, &k);
	assert_int_equal(ocsp_responder_set_delegate(F.r, k, x), CK_E_INVAL);
	assert_non_null(strstr(ck_err_msg(), "not issued by this CA"));
	X509_free(x);
	/* without OCSPSigning */
	assert_int_equal(ck_key_generate(CK_KEY_EC_P256, &k), 0);
	x = issue(F.ca.sg, k, "no-eku", 0, 0, NULL);
	assert_int_equal(ocsp_responder_set_delegate(F.r, k, x), CK_E_INVAL);
	assert_non_null(strstr(ck_err_msg(), "OCSPSigning"));
	X509_free(x);
	/* the CA certificate itself is no delegate */
	assert_int_equal(EVP_PKEY_up_ref(F.ca.key), 1);
	assert_int_equal(ocsp_responder_set_delegate(F.r, F.ca.key,
	    F.ca.cert), CK_E_INVAL);
	/* another key */
	x = delegate_make(&F.ca, CK_KEY_EC_P256, -60, 3600, &k);
	assert_int_equal(ck_key_generate(CK_KEY_EC_P256, &k2), 0);
	assert_int_equal(ocsp_responder_set_delegate(F.r, k2, x), CK_E_INVAL);
	assert_non_null(strstr(ck_err_msg(), "does not belong to its key"));
	X509_free(x);
	EVP_PKEY_free(k);
	/* not valid now */
	x = delegate_make(&F.ca, CK_KEY_EC_P256, -7200, -3600, &k);
	assert_int_equal(ocsp_responder_set_delegate(F.r, k, x), CK_E_INVAL);
	assert_non_null(strstr(ck_err_msg(), "expired"));
	X509_free(x);
	x = delegate_make(&F.ca, CK_KEY_EC_P256, 3600, 7200, &k);
	assert_int_equal(ocsp_responder_set_delegate(F.r, k, x), CK_E_INVAL);
	assert_non_null(strstr(ck_err_msg(), "starts"));
	X509_free(x);
	assert_int_equal(ocsp_responder_set_delegate(F.r, NULL, F.ca.cert),
	    CK_E_INVAL);
	/* Still the CA's own answers. */
	{
		OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
		struct got g;
		query1(id, 1, 1, &g);
		assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
		OCSP_CERTID_free(id);
	}
}

/* nextUpdate is cut at the delegate's notAfter, and such an answer is
 * cached for half of what is left; once it has expired nothing is signed. */
static void
test_delegate_expiry(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	OCSP_BASICRESP *bs;
	ASN1_GENERALIZEDTIME *tu = NULL, *nu = NULL;
	unsigned char *der, *a, *b, *resp = NULL;
	size_t len, al = 0, bl = 0;
	EVP_PKEY *k = NULL;
	int st = 0, reason = 0;
	int64_t na;
	X509 *d;

	(void)state;
	d = delegate_make(&F.ca, F.type, -60, 4, &k);
	na = (int64_t)time(NULL) + 4;
	delegate_set(k, d);
	req_make(&id, 1, 0, NULL, &der, &len);
	a = post(der, len, &al);
	bs = resp_basic_dlg(a, al, d);
	assert_int_equal(OCSP_resp_find_status(bs, id, &st, &reason, NULL,
	    &tu, &nu), 1);
	assert_true(t64(nu) <= na && t64(nu) >= na - 1);
	assert_true(t64(nu) - t64(tu) < VALIDITY);
	OCSP_BASICRESP_free(bs);
	b = post(der, len, &bl);
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);	/* cached */
	free(b);
	sleep(5);
	assert_int_equal(ocsp_respond_der(F.r, der, len, &resp, &bl),
	    CK_E_STATE);
	assert_null(resp);
	assert_non_null(strstr(ck_err_msg(), "expired"));
	free(a);
	OPENSSL_free(der);
	OCSP_CERTID_free(id);
	X509_free(d);
}

/* A new delegate signs from now on; answers cached before stay (and
 * verify: the old certificate is still valid). */
static void
test_delegate_swap(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	OCSP_BASICRESP *bs;
	unsigned char *der, *a, *b;
	size_t len, al = 0, bl = 0;
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	struct got g;
	X509 *d1, *d2;

	(void)state;
	d1 = delegate_make(&F.ca, F.type, -60, 2 * VALIDITY, &k1);
	d2 = delegate_make(&F.ca, F.type, -60, 2 * VALIDITY, &k2);
	delegate_set(k1, d1);
	ocsp_invalidate_all(F.r);
	req_make(&id, 1, 0, NULL, &der, &len);
	a = post(der, len, &al);
	OCSP_BASICRESP_free(resp_basic_dlg(a, al, d1));
	delegate_set(k2, d2);
	b = post(der, len, &bl);
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);
	bs = resp_basic_dlg(b, bl, d1);
	OCSP_BASICRESP_free(bs);
	free(b);
	query_dlg(id, 1, d2, &g);
	assert_int_equal(g.status, V_OCSP_CERTSTATUS_GOOD);
	ocsp_invalidate(F.r, F.leaf_hex[0]);
	b = post(der, len, &bl);
	OCSP_BASICRESP_free(resp_basic_dlg(b, bl, d2));
	free(a);
	free(b);
	OPENSSL_free(der);
	OCSP_CERTID_free(id);
	X509_free(d1);
	X509_free(d2);
}

/* Threads answer (with nonces: always signed) while delegates are
 * swapped under them: every answer is signed by one of them and
 * verifies; none is lost or freed early. */
#define SWAPS 20

struct dworker {
	pthread_t t;
	unsigned char *der;
	size_t len;
	X509 **certs;		/* every delegate set, SWAPS + 1 */
	int bad;
};

static void *
dworker_run(void *arg)
{
	struct dworker *w = arg;
	const STACK_OF(X509) *certs;
	const unsigned char *p;
	OCSP_RESPONSE *o;
	OCSP_BASICRESP *bs;
	unsigned char *resp;
	size_t rl;
	int i, j, ours;

	for (i = 0; i < ITER / 10; i++) {
		resp = NULL;
		if (ocsp_respond_der(F.r, w->der, w->len, &resp, &rl) != 0) {
			w->bad++;
			continue;
		}
		p = resp;
		o = d2i_OCSP_RESPONSE(NULL, &p, (long)rl);
		bs = o != NULL ? OCSP_response_get1_basic(o) : NULL;
		certs = bs != NULL ? OCSP_resp_get0_certs(bs) : NULL;
		ours = 0;
		for (j = 0; certs != NULL && sk_X509_num(certs) == 1 &&
		    j <= SWAPS; j++)
			if (X509_cmp(sk_X509_value(certs, 0),
			    w->certs[j]) == 0)
				ours = 1;
		if (!ours || verify_with(bs, F.ca.cert, 0) != 1)
			w->bad++;
		OCSP_BASICRESP_free(bs);
		OCSP_RESPONSE_free(o);
		free(resp);
	}
	return NULL;
}

static void
test_delegate_threads(void **state)
{
	OCSP_CERTID *id = cid_for(NULL, F.leaf[0], F.ca.cert);
	struct dworker w[THREADS];
	X509 *certs[SWAPS + 1];
	EVP_PKEY *keys[SWAPS + 1];
	int i;

	(void)state;
	for (i = 0; i <= SWAPS; i++)
		certs[i] = delegate_make(&F.ca, F.type, -60, 2 * VALIDITY,
		    &keys[i]);
	delegate_set(keys[0], certs[0]);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		req_make(&id, 1, 16, NULL, &w[i].der, &w[i].len);
		w[i].certs = certs;
		assert_int_equal(pthread_create(&w[i].t, NULL, dworker_run,
		    &w[i]), 0);
	}
	for (i = 1; i <= SWAPS; i++) {
		usleep(2000);
		delegate_set(keys[i], certs[i]);
	}
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(w[i].t, NULL), 0);
		assert_int_equal(w[i].bad, 0);
		OPENSSL_free(w[i].der);
	}
	for (i = 0; i <= SWAPS; i++)
		X509_free(certs[i]);
	OCSP_CERTID_free(id);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_revoked_reason_omitted),
		cmocka_unit_test(test_unknown_serial),
		cmocka_unit_test(test_wrong_issuer),
		cmocka_unit_test(test_hash_algorithms),
		cmocka_unit_test(test_multiple),
		cmocka_unit_test(test_nonce),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_get_oversized),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_lookup_failure),
		cmocka_unit_test(test_new_refusals),
		cmocka_unit_test(test_threads),
	};
	const struct CMUnitTest dlg[] = {
		cmocka_unit_test(test_delegate_cert),
		cmocka_unit_test(test_delegate_refusals),
		cmocka_unit_test(test_delegate_sign),
		cmocka_unit_test(test_delegate_swap),
		cmocka_unit_test(test_delegate_threads),
	};
	const struct CMUnitTest dlg_once[] = {
		cmocka_unit_test(test_delegate_expiry),
	};
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_cache_expiry),
		cmocka_unit_test(test_other_keys),
		cmocka_unit_test(test_signer_without_cert),
	};
	int fails = 0;

	fails += cmocka_run_group_tests_name("ocsp-ec-p256", tests,
	    setup_p256, fixture_teardown);
	fails += cmocka_run_group_tests_name("ocsp-ed25519", tests,
	    setup_ed25519, fixture_teardown);
	fails += cmocka_run_group_tests_name("ocsp-misc", once, setup_p256,
	    fixture_teardown);
	/* Groups of their own: a delegate, once set, signs the rest. */
	fails += cmocka_run_group_tests_name("ocsp-delegated-ec-p256", dlg,
	    setup_p256, fixture_teardown);
	fails += cmocka_run_group_tests_name("ocsp-delegated-ed25519", dlg,
	    setup_ed25519, fixture_teardown);
	fails += cmocka_run_group_tests_name("ocsp-delegated-expiry",
	    dlg_once, setup_p256, fixture_teardown);
	return fails;
}
