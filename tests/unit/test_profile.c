/*
 * test_profile.c - src/profile: parsing profile settings, and judging
 * requests (CSRs built in the test) against a profile.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "profile/profile.h"
#include "x509/certbuild.h"
#include "x509/csr.h"

#define KU(b) (1u << (CK_KU_ ## b))

/* A leaf profile in the shape of the default tls-server one. */
static const char *const server_settings[][2] = {
	{ "key_usage", "digitalSignature, keyEncipherment" },
	{ "ext_key_usage", "serverAuth, clientAuth" },
	{ "max_validity_days", "90" },
	{ "key_types", "ec-p256, rsa2048, ed25519" },
	{ "dns_suffixes", "example.com, .internal.test" },
	{ "ip_ranges", "10.0.0.0/8, 2001:db8::/32" },
	{ "email_domains", "example.org" },
	{ "subject_attributes", "CN, O" },
	{ "common_name", "dns" },
	{ "allow_wildcard", "no" },
	{ NULL, NULL },
};

static const char *const subca_settings[][2] = {
	{ "ca", "yes" },
	{ "max_path_length", "1" },
	{ "key_usage", "digitalSignature, keyCertSign, cRLSign" },
	{ "max_validity_days", "3650" },
	{ "key_types", "ec-p256, ec-p384, rsa2048" },
	{ "subject_attributes", "*" },
	{ NULL, NULL },
};

static void
profile_make(struct ck_profile *p, const char *name,
    const char *const settings[][2])
{
	size_t i;
	int r;

	assert_int_equal(ck_profile_init(p, name), 0);
	for (i = 0; settings[i][0] != NULL; i++) {
		r = ck_profile_set(p, settings[i][0], settings[i][1]);
		if (r != 0)
			fail_msg("%s = %s: %s", settings[i][0],
			    settings[i][1], ck_err_msg());
	}
	assert_int_equal(ck_profile_finish(p), 0);
}

struct fx {
	struct ck_profile server;
	struct ck_profile subca;
	EVP_PKEY *ec;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	profile_make(&fx->server, "tls-server", server_settings);
	profile_make(&fx->subca, "sub-ca", subca_settings);
	fx->ec = tu_key("ec-p256");
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	ck_profile_clear(&fx->server);
	ck_profile_clear(&fx->subca);
	EVP_PKEY_free(fx->ec);
	free(fx);
	return 0;
}

static struct ck_csr *
csr_for(EVP_PKEY *key, const struct tu_csr *o)
{
	unsigned char *buf;
	size_t len;
	struct ck_csr *c = NULL;
	int r;

	tu_csr_make(key, o, &buf, &len);
	r = ck_csr_parse(buf, len, &c);
	free(buf);
	if (r != 0)
		fail_msg("ck_csr_parse: %s", ck_err_msg());
	return c;
}

/* Judge a request; on success *d is filled (caller clears). */
static int
judge(const struct ck_profile *p, EVP_PKEY *key, const struct tu_csr *o,
    uint32_t days, int path_len, struct ck_issue_decision *d)
{
	struct ck_issue_request rq;
	struct ck_csr *c = csr_for(key, o);
	int r;

	memset(&rq, 0, sizeof(rq));
	rq.csr = c;
	rq.days = days;
	rq.path_len = path_len;
	ck_err_clear();
	r = ck_profile_check(p, &rq, d);
	ck_csr_free(c);
	return r;
}

/* Expect a refusal whose reason mentions `why`. */
static void
refused(const struct ck_profile *p, EVP_PKEY *key, const struct tu_csr *o,
    uint32_t days, int path_len, const char *why)
{
	struct ck_issue_decision d;
	int r = judge(p, key, o, days, path_len, &d);

	if (r != CK_E_POLICY)
		fail_msg("expected a refusal mentioning '%s', got %d (%s)",
		    why, r, ck_err_msg());
	assert_contains(ck_err_msg(), why);
	assert_contains(ck_err_msg(), p->name);
	/* Nothing is left to free in a refused decision. */
	assert_int_equal(d.sans.n, 0);
	assert_int_equal(d.eku.n, 0);
}

static void
allowed(const struct ck_profile *p, EVP_PKEY *key, const struct tu_csr *o,
    uint32_t days, int path_len, struct ck_issue_decision *d)
{
	int r = judge(p, key, o, days, path_len, d);

	if (r != 0)
		fail_msg("expected the request to be allowed: %d (%s)", r,
		    ck_err_msg());
}

static int
has_name(const struct ck_names *l, enum ck_name_type t, const char *v)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].type == t && strcmp(l->v[i].value, v) == 0)
			return 1;
	return 0;
}

/* ---- parsing ---- */

static void
test_defaults(void **state)
{
	struct ck_profile p;

	(void)state;
	assert_int_equal(ck_profile_init(&p, "leaf"), 0);
	assert_string_equal(p.name, "leaf");
	assert_false(p.is_ca);
	assert_int_equal(p.cn_rule, CK_CN_DNS);
	assert_false(p.allow_wildcard);
	assert_true(p.max_days > 0 && p.max_days <= 398);
	/* No key types means nothing could ever be issued: refused. */
	ck_err_clear();
	assert_int_equal(ck_profile_finish(&p), CK_E_PARSE);
	assert_contains(ck_err_msg(), "key_types");
	assert_int_equal(ck_profile_set(&p, "key_types", "ec-p256"), 0);
	assert_int_equal(ck_profile_finish(&p), 0);
	/* Subject attributes default to CN only. */
	assert_int_equal(p.subject_attrs.n, 1);
	assert_string_equal(p.subject_attrs.v[0], "CN");
	ck_profile_clear(&p);
	ck_profile_clear(NULL);

	assert_int_equal(ck_profile_init(&p, ""), CK_E_PARSE);
	{
		char longname[CK_PROFILE_NAME_MAX + 1];

		memset(longname, 'n', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(ck_profile_init(&p, longname), CK_E_PARSE);
	}
}

static void
test_settings_parsed(void **state)
{
	struct fx *fx = *state;
	const struct ck_profile *p = &fx->server;

	assert_int_equal(p->ku, KU(DIGITAL_SIGNATURE) | KU(KEY_ENCIPHERMENT));
	assert_int_equal(p->eku.n, 2);
	assert_string_equal(p->eku.v[0], "serverAuth");
	assert_int_equal(p->max_days, 90);
	assert_int_equal(p->key_types.n, 3);
	assert_int_equal(p->dns_suffixes.n, 2);
	assert_int_equal(p->nip_ranges, 2);
	assert_int_equal(p->ip_ranges[1].len, 16);
	assert_int_equal(p->ip_ranges[1].prefix, 32);
	assert_int_equal(p->email_domains.n, 1);
	assert_int_equal(p->subject_attrs.n, 2);
	assert_false(p->is_ca);

	p = &fx->subca;
	assert_true(p->is_ca);
	assert_int_equal(p->max_path_len, 1);
	assert_true(p->ku & KU(KEY_CERT_SIGN));
	assert_true(ck_strlist_has(&p->subject_attrs, "*"));
}

static void
test_setting_replaces(void **state)
{
	struct ck_profile p;

	(void)state;
	assert_int_equal(ck_profile_init(&p, "x"), 0);
	assert_int_equal(ck_profile_set(&p, "key_types", "ec-p256, rsa2048"),
	    0);
	assert_int_equal(ck_profile_set(&p, "key_types", "ed25519"), 0);
	assert_int_equal(p.key_types.n, 1);
	assert_string_equal(p.key_types.v[0], "ed25519");
	assert_int_equal(ck_profile_set(&p, "key_usage", "keyAgreement"), 0);
	assert_int_equal(ck_profile_set(&p, "key_usage", "digitalSignature"),
	    0);
	assert_int_equal(p.ku, KU(DIGITAL_SIGNATURE));
	assert_int_equal(ck_profile_set(&p, "ip_ranges", "10.0.0.0/8"), 0);
	assert_int_equal(ck_profile_set(&p, "ip_ranges", ""), 0);
	assert_int_equal(p.nip_ranges, 0);
	assert_int_equal(ck_profile_set(&p, "common_name", "email"), 0);
	assert_int_equal(p.cn_rule, CK_CN_EMAIL);
	assert_int_equal(ck_profile_set(&p, "allow_wildcard", "TRUE"), 0);
	assert_true(p.allow_wildcard);
	assert_int_equal(ck_profile_set(&p, "allow_wildcard", "0"), 0);
	assert_false(p.allow_wildcard);
	ck_profile_clear(&p);
}

static void
test_unknown_key_refused(void **state)
{
	struct ck_profile p;

	(void)state;
	assert_int_equal(ck_profile_init(&p, "x"), 0);
	ck_err_clear();
	assert_int_equal(ck_profile_set(&p, "max_validity", "30"), CK_E_PARSE);
	assert_contains(ck_err_msg(), "max_validity");
	assert_int_equal(ck_profile_set(&p, "Key_Usage", "digitalSignature"),
	    CK_E_PARSE);
	assert_int_equal(ck_profile_set(&p, "", "x"), CK_E_PARSE);
	ck_profile_clear(&p);
}

static void
test_bad_values_refused(void **state)
{
	static const char *const bad[][2] = {
		{ "ca", "maybe" },
		{ "ca", "" },
		{ "allow_wildcard", "2" },
		{ "max_validity_days", "0" },
		{ "max_validity_days", "36501" },
		{ "max_validity_days", "-1" },
		{ "max_validity_days", "30d" },
		{ "max_path_length", "17" },
		{ "max_path_length", "-1" },
		{ "common_name", "DNS" },
		{ "common_name", "anything" },
		{ "key_usage", "digitalSignatur" },
		{ "key_usage", "digitalSignature, sign" },
		{ "ext_key_usage", "serverAuth, webAuth" },
		{ "key_types", "rsa1024" },
		{ "key_types", "ec-p256, dsa" },
		{ "dns_suffixes", "*.example.com" },
		{ "dns_suffixes", "example..com" },
		{ "dns_suffixes", "-example.com" },
		{ "ip_ranges", "10.0.0.0/33" },
		{ "ip_ranges", "10.0.0.0/8, not-an-ip" },
		{ "email_domains", "-bad.example" },
		{ "email_domains", "user@example.com" },
	};
	struct ck_profile p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ck_profile_init(&p, "x"), 0);
		ck_err_clear();
		if (ck_profile_set(&p, bad[i][0], bad[i][1]) != CK_E_PARSE)
			fail_msg("%s = '%s' was accepted", bad[i][0],
			    bad[i][1]);
		assert_true(strlen(ck_err_msg()) > 0);
		ck_profile_clear(&p);
	}

	/* The reason names the bad value. */
	assert_int_equal(ck_profile_init(&p, "x"), 0);
	assert_int_equal(ck_profile_set(&p, "ext_key_usage", "webAuth"),
	    CK_E_PARSE);
	assert_contains(ck_err_msg(), "webAuth");
	assert_int_equal(ck_profile_set(&p, "max_validity_days", "99999"),
	    CK_E_PARSE);
	assert_contains(ck_err_msg(), "max_validity_days");
	ck_profile_clear(&p);
}

static void
test_finish_checks_coherence(void **state)
{
	struct ck_profile p;

	(void)state;
	/* A CA profile must allow keyCertSign. */
	assert_int_equal(ck_profile_init(&p, "ca"), 0);
	assert_int_equal(ck_profile_set(&p, "ca", "yes"), 0);
	assert_int_equal(ck_profile_set(&p, "key_types", "ec-p256"), 0);
	assert_int_equal(ck_profile_set(&p, "key_usage", "digitalSignature"),
	    0);
	assert_int_equal(ck_profile_finish(&p), CK_E_PARSE);
	assert_contains(ck_err_msg(), "keyCertSign");
	ck_profile_clear(&p);

	/* A leaf profile must not. */
	assert_int_equal(ck_profile_init(&p, "leaf"), 0);
	assert_int_equal(ck_profile_set(&p, "key_types", "ec-p256"), 0);
	assert_int_equal(ck_profile_set(&p, "key_usage",
	    "digitalSignature, cRLSign"), 0);
	assert_int_equal(ck_profile_finish(&p), CK_E_PARSE);
	assert_int_equal(ck_profile_set(&p, "key_usage",
	    "digitalSignature, keyCertSign"), 0);
	assert_int_equal(ck_profile_finish(&p), CK_E_PARSE);
	ck_profile_clear(&p);
}

static void
test_dns_allowed(void **state)
{
	struct fx *fx = *state;
	const struct ck_profile *p = &fx->server;

	/* "example.com": itself and below. */
	assert_true(ck_profile_dns_allowed(p, "example.com"));
	assert_true(ck_profile_dns_allowed(p, "www.example.com"));
	assert_true(ck_profile_dns_allowed(p, "a.b.example.com"));
	assert_true(ck_profile_dns_allowed(p, "WWW.Example.COM"));
	assert_false(ck_profile_dns_allowed(p, "evil-example.com"));
	assert_false(ck_profile_dns_allowed(p, "wwwexample.com"));
	assert_false(ck_profile_dns_allowed(p, "example.com.evil.net"));
	assert_false(ck_profile_dns_allowed(p, "example.co"));
	assert_false(ck_profile_dns_allowed(p, "xample.com"));
	assert_false(ck_profile_dns_allowed(p, ".example.com"));
	/* ".internal.test": strictly below. */
	assert_true(ck_profile_dns_allowed(p, "db.internal.test"));
	assert_false(ck_profile_dns_allowed(p, "internal.test"));
	assert_false(ck_profile_dns_allowed(p, "evilinternal.test"));
	assert_false(ck_profile_dns_allowed(p, "other.test"));
}

static void
test_name_check(void **state)
{
	struct fx *fx = *state;
	struct ck_name n;

	n.type = CK_NAME_DNS;
	snprintf(n.value, sizeof(n.value), "api.example.com");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), 0);
	snprintf(n.value, sizeof(n.value), "api.example.org");
	ck_err_clear();
	assert_int_equal(ck_profile_name_check(&fx->server, &n), CK_E_POLICY);
	assert_contains(ck_err_msg(), "api.example.org");
	snprintf(n.value, sizeof(n.value), "bad_name.example.com");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), CK_E_POLICY);

	n.type = CK_NAME_IP;
	snprintf(n.value, sizeof(n.value), "10.9.8.7");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), 0);
	snprintf(n.value, sizeof(n.value), "8.8.8.8");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), CK_E_POLICY);
	snprintf(n.value, sizeof(n.value), "10.0.0.256");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), CK_E_POLICY);

	n.type = CK_NAME_EMAIL;
	snprintf(n.value, sizeof(n.value), "a@example.org");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), 0);
	snprintf(n.value, sizeof(n.value), "a@example.com");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), CK_E_POLICY);

	n.type = CK_NAME_URI;
	snprintf(n.value, sizeof(n.value), "https://www.example.com/");
	assert_int_equal(ck_profile_name_check(&fx->server, &n), CK_E_POLICY);
	n.type = CK_NAME_OTHER;
	assert_int_equal(ck_profile_name_check(&fx->server, &n), CK_E_POLICY);

	/* A profile without suffixes, ranges or domains allows no name. */
	n.type = CK_NAME_DNS;
	snprintf(n.value, sizeof(n.value), "ca.example.com");
	assert_int_equal(ck_profile_name_check(&fx->subca, &n), CK_E_POLICY);
	n.type = CK_NAME_IP;
	snprintf(n.value, sizeof(n.value), "10.0.0.1");
	assert_int_equal(ck_profile_name_check(&fx->subca, &n), CK_E_POLICY);
}

/* ---- checks ---- */

static void
test_allowed_request(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = {
		.subject = "CN=www.example.com,O=Example",
		.san = "DNS:www.example.com,DNS:db.internal.test,"
		    "IP:10.1.2.3,IP:2001:db8::5,email:ops@example.org",
	};
	struct ck_issue_decision d;

	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_false(d.is_ca);
	assert_int_equal(d.path_len, -1);
	assert_int_equal(d.days, 90);
	/* An EC key cannot encipher keys: only the signing usage is
	 * granted to it. */
	assert_int_equal(d.ku, KU(DIGITAL_SIGNATURE));
	assert_int_equal(d.eku.n, 2);
	assert_string_equal(d.eku.v[0], "serverAuth");
	assert_string_equal(d.eku.v[1], "clientAuth");
	/* The CN is already among the names: not added twice. */
	assert_int_equal(d.sans.n, 5);
	assert_true(has_name(&d.sans, CK_NAME_DNS, "www.example.com"));
	assert_true(has_name(&d.sans, CK_NAME_DNS, "db.internal.test"));
	assert_true(has_name(&d.sans, CK_NAME_IP, "10.1.2.3"));
	assert_true(has_name(&d.sans, CK_NAME_IP, "2001:db8::5"));
	assert_true(has_name(&d.sans, CK_NAME_EMAIL, "ops@example.org"));
	ck_issue_decision_clear(&d);
	ck_issue_decision_clear(NULL);
}

static void
test_other_key_types_allowed(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com" };
	struct ck_issue_decision d;
	EVP_PKEY *k;

	/* RSA gets every usage of the profile. */
	k = tu_key("rsa2048");
	allowed(&fx->server, k, &o, 0, -1, &d);
	assert_int_equal(d.ku, fx->server.ku);
	ck_issue_decision_clear(&d);
	EVP_PKEY_free(k);
	/* Ed25519 signs only. */
	k = tu_key("ed25519");
	allowed(&fx->server, k, &o, 0, -1, &d);
	assert_int_equal(d.ku, KU(DIGITAL_SIGNATURE));
	ck_issue_decision_clear(&d);
	EVP_PKEY_free(k);
}

static void
test_name_outside_suffixes(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com",
		.san = "DNS:www.example.com,DNS:www.example.net" };

	refused(&fx->server, fx->ec, &o, 0, -1, "www.example.net");
	o.san = "DNS:evil-example.com";
	refused(&fx->server, fx->ec, &o, 0, -1, "evil-example.com");
	o.san = "DNS:internal.test";
	refused(&fx->server, fx->ec, &o, 0, -1, "internal.test");
	/* The CN is judged like any other name. */
	o.subject = "CN=www.example.net";
	o.san = NULL;
	refused(&fx->server, fx->ec, &o, 0, -1, "www.example.net");
}

static void
test_ip_outside_ranges(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com",
		.san = "DNS:www.example.com,IP:192.168.1.1" };
	struct ck_issue_decision d;

	refused(&fx->server, fx->ec, &o, 0, -1, "192.168.1.1");
	o.san = "IP:11.0.0.1";
	refused(&fx->server, fx->ec, &o, 0, -1, "11.0.0.1");
	o.san = "IP:2001:db9::1";
	refused(&fx->server, fx->ec, &o, 0, -1, "2001:db9::1");
	o.san = "IP:10.255.255.255";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	ck_issue_decision_clear(&d);

	/* An IP address as CN is checked against the ranges... */
	o.san = NULL;
	o.subject = "CN=172.16.0.1";
	refused(&fx->server, fx->ec, &o, 0, -1, "172.16.0.1");
	/* ...and copied into the names as an IP address. */
	o.subject = "CN=10.0.0.5";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.sans.n, 1);
	assert_true(has_name(&d.sans, CK_NAME_IP, "10.0.0.5"));
	ck_issue_decision_clear(&d);
}

static void
test_email_domain(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com",
		.san = "email:alice@example.org" };
	struct ck_issue_decision d;

	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_true(has_name(&d.sans, CK_NAME_EMAIL, "alice@example.org"));
	ck_issue_decision_clear(&d);
	o.san = "email:alice@EXAMPLE.ORG";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	ck_issue_decision_clear(&d);

	o.san = "email:bob@example.com";
	refused(&fx->server, fx->ec, &o, 0, -1, "bob@example.com");
	o.san = "email:bob@sub.example.org";
	refused(&fx->server, fx->ec, &o, 0, -1, "bob@sub.example.org");
	o.san = "email:bob@evilexample.org";
	refused(&fx->server, fx->ec, &o, 0, -1, "bob@evilexample.org");
	o.san = "email:not-an-address";
	refused(&fx->server, fx->ec, &o, 0, -1, "not-an-address");
}

static void
test_email_cn_rule(void **state)
{
	struct ck_profile p;
	struct tu_csr o = { .subject = "CN=carol@example.org" };
	struct ck_issue_decision d;
	EVP_PKEY *k = tu_key("ec-p256");

	(void)state;
	assert_int_equal(ck_profile_init(&p, "mail"), 0);
	assert_int_equal(ck_profile_set(&p, "key_types", "ec-p256"), 0);
	assert_int_equal(ck_profile_set(&p, "email_domains", "example.org"), 0);
	assert_int_equal(ck_profile_set(&p, "common_name", "email"), 0);
	assert_int_equal(ck_profile_finish(&p), 0);
	allowed(&p, k, &o, 0, -1, &d);
	assert_int_equal(d.sans.n, 1);
	assert_true(has_name(&d.sans, CK_NAME_EMAIL, "carol@example.org"));
	ck_issue_decision_clear(&d);
	o.subject = "CN=carol@example.net";
	refused(&p, k, &o, 0, -1, "carol@example.net");

	/* common_name = none: no CN at all. */
	assert_int_equal(ck_profile_set(&p, "common_name", "none"), 0);
	o.subject = "CN=carol@example.org";
	refused(&p, k, &o, 0, -1, "common name");
	o.subject = NULL;
	o.san = "email:carol@example.org";
	allowed(&p, k, &o, 0, -1, &d);
	ck_issue_decision_clear(&d);

	/* common_name = any: free text, not copied into the names. */
	assert_int_equal(ck_profile_set(&p, "common_name", "any"), 0);
	o.subject = "CN=Carol Example";
	allowed(&p, k, &o, 0, -1, &d);
	assert_int_equal(d.sans.n, 1);
	ck_issue_decision_clear(&d);
	ck_profile_clear(&p);
	EVP_PKEY_free(k);
}

static void
test_wildcard(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com",
		.san = "DNS:*.example.com" };
	struct ck_issue_decision d;

	refused(&fx->server, fx->ec, &o, 0, -1, "wildcard");
	o.subject = "CN=*.example.com";
	o.san = NULL;
	refused(&fx->server, fx->ec, &o, 0, -1, "wildcard");

	assert_int_equal(ck_profile_set(&fx->server, "allow_wildcard", "yes"),
	    0);
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_true(has_name(&d.sans, CK_NAME_DNS, "*.example.com"));
	ck_issue_decision_clear(&d);
	o.subject = "CN=www.example.com";
	o.san = "DNS:*.example.com";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	ck_issue_decision_clear(&d);
	/* Wildcards are still bound by the suffixes. */
	o.san = "DNS:*.example.net";
	refused(&fx->server, fx->ec, &o, 0, -1, "*.example.net");
	/* And by DNS syntax. */
	o.san = "DNS:www.*.example.com";
	refused(&fx->server, fx->ec, &o, 0, -1, "www.*.example.com");
}

static void
test_key_type_not_allowed(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com" };
	EVP_PKEY *k;

	k = tu_key("rsa1024");
	refused(&fx->server, k, &o, 0, -1, "rsa1024");
	EVP_PKEY_free(k);
	k = tu_key("ec-p384");
	refused(&fx->server, k, &o, 0, -1, "ec-p384");
	EVP_PKEY_free(k);
	k = tu_key("secp256k1");
	refused(&fx->server, k, &o, 0, -1, "ec-secp256k1");
	EVP_PKEY_free(k);
}

static void
test_validity(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com" };
	struct ck_issue_decision d;

	refused(&fx->server, fx->ec, &o, 91, -1, "91 days");
	refused(&fx->server, fx->ec, &o, 36500, -1, "too long");
	allowed(&fx->server, fx->ec, &o, 90, -1, &d);
	assert_int_equal(d.days, 90);
	ck_issue_decision_clear(&d);
	allowed(&fx->server, fx->ec, &o, 30, -1, &d);
	assert_int_equal(d.days, 30);
	ck_issue_decision_clear(&d);
	allowed(&fx->server, fx->ec, &o, 1, -1, &d);
	assert_int_equal(d.days, 1);
	ck_issue_decision_clear(&d);
}

static void
test_key_usage(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com" };
	struct ck_issue_decision d;
	EVP_PKEY *rsa = tu_key("rsa2048");

	/* Wider than the profile: refused, naming the usage. */
	o.ku = "digitalSignature, keyCertSign";
	refused(&fx->server, rsa, &o, 0, -1, "keyCertSign");
	refused(&fx->server, fx->ec, &o, 0, -1, "keyCertSign");
	o.ku = "digitalSignature, dataEncipherment";
	refused(&fx->server, rsa, &o, 0, -1, "dataEncipherment");
	o.ku = "nonRepudiation";
	refused(&fx->server, rsa, &o, 0, -1, "nonRepudiation");

	/* Narrower: kept as asked. */
	o.ku = "digitalSignature";
	allowed(&fx->server, rsa, &o, 0, -1, &d);
	assert_int_equal(d.ku, KU(DIGITAL_SIGNATURE));
	ck_issue_decision_clear(&d);
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.ku, KU(DIGITAL_SIGNATURE));
	ck_issue_decision_clear(&d);
	o.ku = "critical, keyEncipherment";
	allowed(&fx->server, rsa, &o, 0, -1, &d);
	assert_int_equal(d.ku, KU(KEY_ENCIPHERMENT));
	ck_issue_decision_clear(&d);
	/* Equal. */
	o.ku = "digitalSignature, keyEncipherment";
	allowed(&fx->server, rsa, &o, 0, -1, &d);
	assert_int_equal(d.ku, KU(DIGITAL_SIGNATURE) | KU(KEY_ENCIPHERMENT));
	ck_issue_decision_clear(&d);

	/* A usage the key's algorithm cannot have is refused, even when
	 * the profile allows it. */
	o.ku = "digitalSignature, keyEncipherment";
	refused(&fx->server, fx->ec, &o, 0, -1, "keyEncipherment");
	o.ku = "keyEncipherment";
	{
		EVP_PKEY *ed = tu_key("ed25519");

		refused(&fx->server, ed, &o, 0, -1, "keyEncipherment");
		EVP_PKEY_free(ed);
	}
	EVP_PKEY_free(rsa);
}

static void
test_key_usage_none_valid_for_key(void **state)
{
	struct ck_profile p;
	struct tu_csr o = { .subject = "CN=www.example.com" };
	EVP_PKEY *ec = tu_key("ec-p256"), *rsa = tu_key("rsa2048");
	struct ck_issue_decision d;

	(void)state;
	/* A profile for key transport only: nothing left for EC keys. */
	assert_int_equal(ck_profile_init(&p, "kt"), 0);
	assert_int_equal(ck_profile_set(&p, "key_types", "ec-p256, rsa2048"),
	    0);
	assert_int_equal(ck_profile_set(&p, "dns_suffixes", "example.com"), 0);
	assert_int_equal(ck_profile_set(&p, "key_usage", "keyEncipherment"),
	    0);
	assert_int_equal(ck_profile_finish(&p), 0);
	refused(&p, ec, &o, 0, -1, "ec-p256");
	allowed(&p, rsa, &o, 0, -1, &d);
	assert_int_equal(d.ku, KU(KEY_ENCIPHERMENT));
	ck_issue_decision_clear(&d);
	ck_profile_clear(&p);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

static void
test_ext_key_usage(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com" };
	struct ck_issue_decision d;

	o.eku = "serverAuth, codeSigning";
	refused(&fx->server, fx->ec, &o, 0, -1, "codeSigning");
	o.eku = "1.2.3.4.5";
	refused(&fx->server, fx->ec, &o, 0, -1, "1.2.3.4.5");
	o.eku = "emailProtection";
	refused(&fx->server, fx->ec, &o, 0, -1, "emailProtection");

	o.eku = "clientAuth";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.eku.n, 1);
	assert_string_equal(d.eku.v[0], "clientAuth");
	ck_issue_decision_clear(&d);
	o.eku = "serverAuth";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.eku.n, 1);
	assert_string_equal(d.eku.v[0], "serverAuth");
	ck_issue_decision_clear(&d);
}

static void
test_ca_request_under_leaf_profile(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com",
		.bc = "critical,CA:TRUE" };
	struct ck_issue_decision d;

	refused(&fx->server, fx->ec, &o, 0, -1, "CA");
	o.bc = "critical,CA:TRUE,pathlen:0";
	refused(&fx->server, fx->ec, &o, 0, -1, "CA");
	/* A path length makes no sense for a leaf. */
	o.bc = NULL;
	refused(&fx->server, fx->ec, &o, 0, 0, "path length");
	/* CA:FALSE is what a leaf gets anyway. */
	o.bc = "CA:FALSE";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_false(d.is_ca);
	ck_issue_decision_clear(&d);
}

static void
test_ca_profile_path_length(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=Issuing CA,O=Example" };
	struct ck_issue_decision d;

	/* Default: the profile's maximum. */
	allowed(&fx->subca, fx->ec, &o, 0, -1, &d);
	assert_true(d.is_ca);
	assert_int_equal(d.path_len, 1);
	assert_int_equal(d.days, 3650);
	assert_int_equal(d.ku, fx->subca.ku);
	/* A CA certificate is not a server: its CN is not a name. */
	assert_int_equal(d.sans.n, 0);
	ck_issue_decision_clear(&d);

	allowed(&fx->subca, fx->ec, &o, 0, 0, &d);
	assert_int_equal(d.path_len, 0);
	ck_issue_decision_clear(&d);
	refused(&fx->subca, fx->ec, &o, 0, 2, "path length 2");
	refused(&fx->subca, fx->ec, &o, 0, 16, "path length");

	/* Asked for in the request. */
	o.bc = "critical,CA:TRUE,pathlen:2";
	refused(&fx->subca, fx->ec, &o, 0, -1, "path length 2");
	o.bc = "critical,CA:TRUE,pathlen:0";
	allowed(&fx->subca, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.path_len, 0);
	ck_issue_decision_clear(&d);
	o.bc = "critical,CA:TRUE";
	allowed(&fx->subca, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.path_len, 1);
	ck_issue_decision_clear(&d);

	/* A CA profile does not issue leaves... */
	o.bc = "CA:FALSE";
	refused(&fx->subca, fx->ec, &o, 0, -1, "CA:FALSE");
	/* ...nor CAs without a subject... */
	o.bc = NULL;
	o.subject = NULL;
	refused(&fx->subca, fx->ec, &o, 0, -1, "subject");
	/* ...nor for keys it does not allow. */
	{
		EVP_PKEY *k = tu_key("ed25519");

		o.subject = "CN=Issuing CA";
		refused(&fx->subca, k, &o, 0, -1, "ed25519");
		EVP_PKEY_free(k);
	}
	refused(&fx->subca, fx->ec, &o, 3651, -1, "too long");
}

static void
test_unknown_extension(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com",
		.ext_name = "nsComment", .ext_value = "please" };
	struct ck_issue_decision d;

	refused(&fx->server, fx->ec, &o, 0, -1, "nsComment");
	o.ext_name = "1.2.3.4.5.6";
	o.ext_value = "ASN1:NULL";
	refused(&fx->server, fx->ec, &o, 0, -1, "1.2.3.4.5.6");
	o.ext_name = "crlDistributionPoints";
	o.ext_value = "URI:http://evil.example/crl";
	refused(&fx->server, fx->ec, &o, 0, -1, "crlDistributionPoints");
	/* A subject key identifier is harmless: the CA sets its own. */
	o.ext_name = "subjectKeyIdentifier";
	o.ext_value = "hash";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	ck_issue_decision_clear(&d);
}

static void
test_cn_copied_into_sans(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=host.example.com" };
	struct ck_issue_decision d;

	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.sans.n, 1);
	assert_int_equal(d.sans.v[0].type, CK_NAME_DNS);
	assert_string_equal(d.sans.v[0].value, "host.example.com");
	ck_issue_decision_clear(&d);

	/* Added beside other names when missing from them. */
	o.san = "DNS:other.example.com";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.sans.n, 2);
	assert_true(has_name(&d.sans, CK_NAME_DNS, "other.example.com"));
	assert_true(has_name(&d.sans, CK_NAME_DNS, "host.example.com"));
	ck_issue_decision_clear(&d);

	/* Not duplicated when present (names compare case-insensitively). */
	o.san = "DNS:HOST.example.com";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.sans.n, 1);
	ck_issue_decision_clear(&d);
}

static void
test_subject_rules(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com,OU=Ops" };
	struct ck_issue_decision d;

	refused(&fx->server, fx->ec, &o, 0, -1, "OU");
	o.subject = "CN=www.example.com,CN=api.example.com";
	refused(&fx->server, fx->ec, &o, 0, -1, "more than one CN");
	o.subject = NULL;
	refused(&fx->server, fx->ec, &o, 0, -1, "names no one");
	/* A request with names only is fine. */
	o.san = "DNS:api.example.com";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	assert_int_equal(d.sans.n, 1);
	ck_issue_decision_clear(&d);
	o.subject = "CN=www.example.com,O=Example";
	allowed(&fx->server, fx->ec, &o, 0, -1, &d);
	ck_issue_decision_clear(&d);
}

static void
test_unsupported_name_forms(void **state)
{
	struct fx *fx = *state;
	struct tu_csr o = { .subject = "CN=www.example.com",
		.san = "URI:https://www.example.com/" };

	/* This profile has no rule for URIs: never issued. */
	refused(&fx->server, fx->ec, &o, 0, -1, "https://www.example.com/");
	o.san = "RID:1.2.3.4";
	refused(&fx->server, fx->ec, &o, 0, -1, "type");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_setting_replaces),
		cmocka_unit_test(test_unknown_key_refused),
		cmocka_unit_test(test_bad_values_refused),
		cmocka_unit_test(test_finish_checks_coherence),
		cmocka_unit_test(test_email_cn_rule),
		cmocka_unit_test(test_key_usage_none_valid_for_key),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_settings_parsed),
		T(test_dns_allowed),
		T(test_name_check),
		T(test_allowed_request),
		T(test_other_key_types_allowed),
		T(test_name_outside_suffixes),
		T(test_ip_outside_ranges),
		T(test_email_domain),
		T(test_wildcard),
		T(test_key_type_not_allowed),
		T(test_validity),
		T(test_key_usage),
		T(test_ext_key_usage),
		T(test_ca_request_under_leaf_profile),
		T(test_ca_profile_path_length),
		T(test_unknown_extension),
		T(test_cn_copied_into_sans),
		T(test_subject_rules),
		T(test_unsupported_name_forms),
#undef T
	};
	int r;

	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_keys_free();
	return r;
}
