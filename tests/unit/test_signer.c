/*
 * test_signer.c - the signer: the only code that touches the CA key.
 *
 * It must sign exactly the TBS whose digest it reported before signing,
 * refuse what no caller may override (validity beyond its own certificate,
 * CA certificates past its path length), and keep the key to itself.
 */
#include "testutil.h"

#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "signer/signer.h"
#include "x509/certbuild.h"
#include "x509/csr.h"
#include "x509/serial.h"

static X509_NAME *
name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	assert_non_null(n);
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0));
	return n;
}

/* A signer with a self-signed CA certificate (path length `pathlen`,
 * valid `days` days); *cert gets a reference. */
static struct signer *
make_ca(const char *keytype, int pathlen, int days, X509 **cert)
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	struct signer *s = NULL;
	EVP_PKEY *key = tu_key_new(keytype);
	X509_NAME *n = name("Signer Test CA");
	unsigned char d[32], *der = NULL;
	const unsigned char *q;
	size_t len = 0;

	memset(&t, 0, sizeof(t));
	t.subject = n;
	t.pubkey = key;
	t.not_before = (int64_t)time(NULL) - 60;
	t.not_after = (int64_t)time(NULL) + (int64_t)days * 86400;
	t.is_ca = 1;
	t.path_len = pathlen;
	t.ku = (1u << CK_KU_KEY_CERT_SIGN) | (1u << CK_KU_CRL_SIGN);
	assert_true(EVP_PKEY_up_ref(key));
	assert_int_equal(signer_new(key, NULL, &s), 0);
	assert_int_equal(signer_cert_prepare(s, &t, 1, &p, d), 0);
	assert_int_equal(signer_cert_sign(s, p, &der, &len), 0);
	q = der;
	*cert = d2i_X509(NULL, &q, (long)len);
	assert_non_null(*cert);
	assert_int_equal(signer_set_cert(s, *cert), 0);
	OPENSSL_free(der);
	X509_NAME_free(n);
	EVP_PKEY_free(key);
	return s;
}

/* A leaf template for `key` (a reference the caller frees with
 * EVP_PKEY_free(t->pubkey)); the caller also frees *n. No serial: the
 * signer draws it. */
static void
leaf(struct ck_cert_template *t, EVP_PKEY *key, X509_NAME **n, int days)
{
	*n = name("leaf.example.com");
	memset(t, 0, sizeof(*t));
	t->subject = *n;
	t->pubkey = key;
	t->not_before = (int64_t)time(NULL) - 60;
	t->not_after = (int64_t)time(NULL) + (int64_t)days * 86400;
	t->path_len = -1;
	t->ku = 1u << CK_KU_DIGITAL_SIGNATURE;
}

static void
sha256_tbs(X509 *x, unsigned char out[32])
{
	unsigned char *tbs = NULL;
	unsigned int l = 32;
	int n = i2d_re_X509_tbs(x, &tbs);

	assert_true(n > 0);
	assert_true(EVP_Digest(tbs, (size_t)n, out, &l, EVP_sha256(), NULL));
	OPENSSL_free(tbs);
}

/* The digest reported before signing is the digest of what is signed,
 * and the certificate verifies under the CA key, for every key type. */
static void
test_prepare_digest_matches_signed(void **state)
{
	static const char *const types[] = { "ec-p256", "ec-p384",
	    "rsa2048", "ed25519" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct ck_cert_template t;
		struct signer_pending *p = NULL;
		X509_NAME *n = NULL;
		X509 *ca = NULL, *x;
		struct signer *s = make_ca(types[i], 0, 3650, &ca);
		unsigned char d1[32], d2[32], *der = NULL;
		const unsigned char *q;
		size_t len = 0;

		leaf(&t, tu_key("ec-p256"), &n, 30);
		assert_int_equal(signer_cert_prepare(s, &t, 0, &p, d1), 0);
		assert_int_equal(signer_cert_sign(s, p, &der, &len), 0);
		q = der;
		x = d2i_X509(NULL, &q, (long)len);
		assert_non_null(x);
		sha256_tbs(x, d2);
		assert_memory_equal(d1, d2, 32);
		assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)), 1);
		assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
		X509_free(x);
		OPENSSL_free(der);
		X509_NAME_free(n);
	EVP_PKEY_free(t.pubkey);
		X509_free(ca);
		signer_free(s);
	}
	tu_keys_free();
}

/* The signer chooses every serial: a template that brings one is refused;
 * each prepare draws a new one (16 random octets, positive), the one the
 * certificate carries and signer_pending_serial() reports. */
static void
test_signer_chooses_serial(void **state)
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	X509_NAME *n = NULL;
	X509 *ca = NULL, *x;
	struct signer *s = make_ca("ec-p256", 0, 3650, &ca);
	ASN1_INTEGER *mine = NULL;
	unsigned char d[32], *der = NULL;
	const unsigned char *q, *oct;
	char hex[CK_SERIAL_HEX_MAX], seen[8][CK_SERIAL_HEX_MAX];
	size_t len = 0, olen, i, k;

	(void)state;
	leaf(&t, tu_key("ec-p256"), &n, 30);
	assert_int_equal(ck_serial_random(&mine, hex), 0);
	t.serial = mine;
	assert_int_equal(signer_cert_prepare(s, &t, 0, &p, d), CK_E_INVAL);
	assert_contains(ck_err_msg(), "the signer chooses the serial");
	assert_null(p);
	assert_int_equal(signer_cert_prepare_der(s, &t, &p, d), CK_E_INVAL);
	assert_null(p);
	t.serial = NULL;
	for (i = 0; i < 8; i++) {
		assert_int_equal(signer_cert_prepare(s, &t, 0, &p, d), 0);
		snprintf(seen[i], sizeof(seen[i]), "%s",
		    signer_pending_serial(p));
		signer_pending_serial_octets(p, &oct, &olen);
		assert_int_equal(olen, CK_SERIAL_BYTES);
		assert_true(oct[0] != 0 && oct[0] < 0x80);
		for (k = 0; k < i; k++)
			assert_string_not_equal(seen[k], seen[i]);
		assert_int_equal(signer_cert_sign(s, p, &der, &len), 0);
		q = der;
		assert_non_null(x = d2i_X509(NULL, &q, (long)len));
		assert_int_equal(ck_serial_to_hex(X509_get0_serialNumber(x),
		    hex), 0);
		assert_string_equal(hex, seen[i]);
		X509_free(x);
		OPENSSL_free(der);
	}
	ASN1_INTEGER_free(mine);
	X509_NAME_free(n);
	EVP_PKEY_free(t.pubkey);
	X509_free(ca);
	signer_free(s);
	tu_keys_free();
}

/* Validity past the CA's own expiry is refused by the signer itself. */
static void
test_refuses_validity_beyond_ca(void **state)
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	X509_NAME *n = NULL;
	X509 *ca = NULL;
	struct signer *s = make_ca("ec-p256", 0, 10, &ca);
	unsigned char d[32];

	(void)state;
	leaf(&t, tu_key("ec-p256"), &n, 11);
	assert_int_equal(signer_cert_prepare(s, &t, 0, &p, d), CK_E_POLICY);
	assert_null(p);
	assert_contains(ck_err_msg(), "expires");
	X509_NAME_free(n);
	EVP_PKEY_free(t.pubkey);
	X509_free(ca);
	signer_free(s);
	tu_keys_free();
}

/* A CA whose path length is 0 signs no CA; one with 1 signs a CA only
 * with path length 0. */
static void
test_path_length_enforced(void **state)
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	X509_NAME *n = NULL;
	X509 *ca0 = NULL, *ca1 = NULL;
	struct signer *s0 = make_ca("ec-p256", 0, 3650, &ca0);
	struct signer *s1 = make_ca("ec-p256", 1, 3650, &ca1);
	unsigned char d[32];

	(void)state;
	leaf(&t, tu_key("ec-p256"), &n, 30);
	t.is_ca = 1;
	t.ku = (1u << CK_KU_KEY_CERT_SIGN) | (1u << CK_KU_CRL_SIGN);
	t.path_len = 0;
	assert_int_equal(signer_cert_prepare(s0, &t, 0, &p, d), CK_E_POLICY);
	assert_contains(ck_err_msg(), "forbids subordinate CAs");
	t.path_len = 1;
	assert_int_equal(signer_cert_prepare(s1, &t, 0, &p, d), CK_E_POLICY);
	t.path_len = -1;
	assert_int_equal(signer_cert_prepare(s1, &t, 0, &p, d), CK_E_POLICY);
	t.path_len = 0;
	assert_int_equal(signer_cert_prepare(s1, &t, 0, &p, d), 0);
	signer_pending_free(p);
	X509_NAME_free(n);
	EVP_PKEY_free(t.pubkey);
	X509_free(ca0);
	X509_free(ca1);
	signer_free(s0);
	signer_free(s1);
	tu_keys_free();
}

/* A certificate for another key cannot be installed; a self-signed
 * certificate for a foreign key cannot be made. */
static void
test_key_binding(void **state)
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	X509_NAME *n = NULL;
	X509 *ca = NULL, *other = NULL;
	struct signer *s = make_ca("ec-p256", 0, 3650, &ca);
	struct signer *s2 = make_ca("ec-p256", 0, 3650, &other);
	unsigned char d[32];

	(void)state;
	assert_true(signer_key_matches(s, ca));
	assert_false(signer_key_matches(s, other));
	assert_int_equal(signer_set_cert(s, other), CK_E_INVAL);
	leaf(&t, tu_key("ec-p256"), &n, 30);
	assert_int_equal(signer_cert_prepare(s, &t, 1, &p, d), CK_E_INVAL);
	assert_null(p);
	X509_NAME_free(n);
	EVP_PKEY_free(t.pubkey);
	X509_free(ca);
	X509_free(other);
	signer_free(s);
	signer_free(s2);
	tu_keys_free();
}

/* Without a certificate the signer signs nothing but its own. */
static void
test_no_cert_no_issuance(void **state)
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	struct signer *s = NULL;
	X509_NAME *n = NULL;
	unsigned char d[32], *der = NULL;
	size_t len = 0;
	EVP_PKEY *key = tu_key_new("ec-p256");

	(void)state;
	assert_int_equal(signer_new(key, NULL, &s), 0);
	leaf(&t, tu_key("ec-p256"), &n, 30);
	assert_int_equal(signer_cert_prepare(s, &t, 0, &p, d), CK_E_STATE);
	assert_int_equal(signer_crl_sign(s, NULL, 0, 1, time(NULL),
	    time(NULL) + 3600, &der, &len), CK_E_STATE);
	X509_NAME_free(n);
	EVP_PKEY_free(t.pubkey);
	signer_free(s);
	tu_keys_free();
}

/* CRLs and the CA's own request verify under its key. */
static void
test_crl_and_csr(void **state)
{
	struct ck_crl_entry e = { "1A2B3C", 0, 1 };
	X509 *ca = NULL;
	struct signer *s = make_ca("ed25519", 0, 3650, &ca);
	unsigned char *der = NULL;
	const unsigned char *q;
	size_t len = 0;
	X509_CRL *crl;
	X509_REQ *req;
	X509_NAME *n = name("Request");

	(void)state;
	e.revoked_at = (int64_t)time(NULL);
	assert_int_equal(signer_crl_sign(s, &e, 1, 7, time(NULL),
	    time(NULL) + 3600, &der, &len), 0);
	q = der;
	crl = d2i_X509_CRL(NULL, &q, (long)len);
	assert_non_null(crl);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	der = NULL;
	assert_int_equal(signer_csr_make(s, n, &der, &len), 0);
	q = der;
	req = d2i_X509_REQ(NULL, &q, (long)len);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, X509_get0_pubkey(ca)), 1);
	X509_REQ_free(req);
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_free(ca);
	signer_free(s);
	tu_keys_free();
}

/* TBS DER of a signed certificate. */
static unsigned char *
tbs_of(const unsigned char *der, size_t len, const unsigned char *serial_of,
    size_t serial_of_len, int *tbslen)
{
	const unsigned char *q = der;
	unsigned char *tbs = NULL;
	X509 *x = d2i_X509(NULL, &q, (long)len), *o;

	assert_non_null(x);
	assert_ptr_equal(q, der + len);
	/* With the serial of the certificate `serial_of` (which differs). */
	if (serial_of != NULL) {
		q = serial_of;
		assert_non_null(o = d2i_X509(NULL, &q, (long)serial_of_len));
		assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(
		    x), X509_get0_serialNumber(o)), 0);
		assert_int_equal(X509_set_serialNumber(x,
		    (ASN1_INTEGER *)X509_get0_serialNumber(o)), 1);
		X509_free(o);
	}
	*tbslen = i2d_re_X509_tbs(x, &tbs);
	assert_true(*tbslen > 0);
	X509_free(x);
	return tbs;
}

/* The direct DER path issues the same certificate as the X509 path, its
 * reported digest is that of what it signs, the DER is canonical, and it
 * keeps the signer's limits; without a received SPKI it falls back. */
static void
test_prepare_der(void **state)
{
	static const char *const types[] = { "ec-p256", "ec-p384",
	    "rsa2048", "ed25519" };
	static const char *const leaves[] = { "ec-p256", "rsa2048",
	    "ed25519" };
	static const struct tu_csr co = { .subject = "CN=leaf.example.com",
	    .san = "DNS:leaf.example.com,IP:192.0.2.1" };
	size_t i, k, round;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
	for (k = 0; k < sizeof(leaves) / sizeof(leaves[0]); k++) {
		struct ck_cert_template t;
		struct signer_pending *p = NULL;
		struct ck_csr *csr = NULL;
		struct ck_strlist eku = { 0 };
		X509_NAME *n = NULL;
		X509 *ca = NULL, *x;
		struct signer *s = make_ca(types[i], 0, 3650, &ca);
		unsigned char d1[32], d2[32], *der = NULL, *der2 = NULL;
		unsigned char *csrbuf = NULL, *tbs1, *tbs2, *re = NULL;
		const unsigned char *q;
		size_t len = 0, len2 = 0, csrlen = 0;
		int tl1, tl2, relen;

		EVP_PKEY *lk = tu_key(leaves[k]);

		tu_csr_make(lk, &co, &csrbuf, &csrlen);
		EVP_PKEY_free(lk);
		assert_int_equal(ck_csr_parse(csrbuf, csrlen, &csr), 0);
		leaf(&t, csr->pubkey, &n, 30);
		assert_true(EVP_PKEY_up_ref(csr->pubkey));
		t.subject = csr->subject;
		t.spki_alg = csr->spki_alg;
		t.spki_key = csr->spki_key;
		t.spki_der = csr->spki_der;
		t.spki_der_len = csr->spki_der_len;
		t.sans = &csr->names;
		assert_int_equal(ck_strlist_add(&eku, "serverAuth"), 0);
		t.eku = &eku;
		t.crl_url = "http://ca.example.com/ca.crl";
		t.ocsp_url = "http://ca.example.com/ocsp";
		for (round = 0; round < 3; round++) {
			/* Again and again: the reused signing contexts. */
			assert_int_equal(signer_cert_prepare_der(s, &t, &p, d1),
			    0);
			assert_int_equal(signer_cert_sign(s, p, &der, &len), 0);
			q = der;
			x = d2i_X509(NULL, &q, (long)len);
			assert_non_null(x);
			sha256_tbs(x, d2);
			assert_memory_equal(d1, d2, 32);
			assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)),
			    1);
			assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
			relen = i2d_X509(x, &re);
			assert_int_equal((size_t)relen, len);
			assert_memory_equal(re, der, len);
			OPENSSL_free(re);
			re = NULL;
			X509_free(x);
			/* The X509 path: the same TBS, byte for byte, but
			 * for the serial each drew (never the same). */
			assert_int_equal(signer_cert_prepare(s, &t, 0, &p, d2),
			    0);
			assert_int_equal(signer_cert_sign(s, p, &der2, &len2),
			    0);
			tbs1 = tbs_of(der, len, NULL, 0, &tl1);
			tbs2 = tbs_of(der2, len2, der, len, &tl2);
			assert_int_equal(tl1, tl2);
			assert_memory_equal(tbs1, tbs2, (size_t)tl1);
			OPENSSL_free(tbs1);
			OPENSSL_free(tbs2);
			OPENSSL_free(der);
			OPENSSL_free(der2);
			der = der2 = NULL;
		}
		/* The signer's limits hold on this path too. */
		t.not_after = (int64_t)time(NULL) + 4000L * 86400;
		assert_int_equal(signer_cert_prepare_der(s, &t, &p, d1),
		    CK_E_POLICY);
		t.not_after = (int64_t)time(NULL) + 30L * 86400;
		/* No received SPKI: the X509 path, the same result. */
		t.spki_der = NULL;
		assert_int_equal(signer_cert_prepare_der(s, &t, &p, d1), 0);
		assert_int_equal(signer_cert_sign(s, p, &der, &len), 0);
		q = der;
		x = d2i_X509(NULL, &q, (long)len);
		assert_non_null(x);
		sha256_tbs(x, d2);
		assert_memory_equal(d1, d2, 32);
		assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)), 1);
		X509_free(x);
		OPENSSL_free(der);
		ck_strlist_clear(&eku);
		EVP_PKEY_free(t.pubkey);
		ck_csr_free(csr);
		free(csrbuf);
		X509_NAME_free(n);
		X509_free(ca);
		signer_free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prepare_digest_matches_signed),
		cmocka_unit_test(test_signer_chooses_serial),
		cmocka_unit_test(test_prepare_der),
		cmocka_unit_test(test_refuses_validity_beyond_ca),
		cmocka_unit_test(test_path_length_enforced),
		cmocka_unit_test(test_key_binding),
		cmocka_unit_test(test_no_cert_no_issuance),
		cmocka_unit_test(test_crl_and_csr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
