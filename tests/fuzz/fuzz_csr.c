/*
 * fuzz_csr.c - ck_csr_parse() on arbitrary bytes (PEM or DER), and for
 * every CSR it accepts, the profile check against fixed profiles: a
 * tls-server-like leaf profile (DNS/IP names, serverAuth) and a sub-CA
 * profile (path length, e-mail names, any subject attribute). An accepted
 * decision's names are also encoded back to GeneralNames, as issuance does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "profile/profile.h"
#include "x509/certbuild.h"
#include "x509/csr.h"
#include "x509/names.h"

#include "fuzz.h"

static const char *const tls_server_settings[][2] = {
	{ "key_usage", "digitalSignature, keyEncipherment" },
	{ "ext_key_usage", "serverAuth" },
	{ "max_validity_days", "397" },
	{ "key_types", "rsa2048, rsa3072, rsa4096, ec-p256, ec-p384, "
	    "ed25519" },
	{ "dns_suffixes", "example.com, .example.net" },
	{ "ip_ranges", "127.0.0.0/8, 10.0.0.0/8, ::1/128, 2001:db8::/32" },
	{ "subject_attributes", "CN, O, OU, C" },
	{ "common_name", "dns" },
	{ "allow_wildcard", "yes" },
};

static const char *const sub_ca_settings[][2] = {
	{ "ca", "yes" },
	{ "max_path_length", "2" },
	{ "key_usage", "digitalSignature, keyCertSign, cRLSign" },
	{ "ext_key_usage", "serverAuth, clientAuth, emailProtection" },
	{ "max_validity_days", "3650" },
	{ "key_types", "rsa2048, rsa3072, rsa4096, ec-p256, ec-p384, "
	    "ed25519" },
	{ "dns_suffixes", "example.com" },
	{ "email_domains", "example.com" },
	{ "subject_attributes", "*" },
	{ "common_name", "any" },
};

static struct ck_profile profiles[2];
static int ready;

static void
build_profile(struct ck_profile *p, const char *name,
    const char *const (*settings)[2], size_t n)
{
	size_t i;

	if (ck_profile_init(p, name) != 0) {
		fprintf(stderr, "fuzz_csr: %s\n", ck_err_msg());
		abort();
	}
	for (i = 0; i < n; i++)
		if (ck_profile_set(p, settings[i][0], settings[i][1]) != 0) {
			fprintf(stderr, "fuzz_csr: %s\n", ck_err_msg());
			abort();
		}
	if (ck_profile_finish(p) != 0) {
		fprintf(stderr, "fuzz_csr: %s\n", ck_err_msg());
		abort();
	}
}

static void
free_profiles(void)
{
	ck_profile_clear(&profiles[0]);
	ck_profile_clear(&profiles[1]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (ready)
		return 0;
	build_profile(&profiles[0], "tls-server", tls_server_settings,
	    sizeof(tls_server_settings) / sizeof(tls_server_settings[0]));
	build_profile(&profiles[1], "sub-ca", sub_ca_settings,
	    sizeof(sub_ca_settings) / sizeof(sub_ca_settings[0]));
	atexit(free_profiles);
	ready = 1;
	return 0;
}

static void
check(const struct ck_profile *p, const struct ck_csr *csr)
{
	struct ck_issue_request rq;
	struct ck_issue_decision d;
	GENERAL_NAMES *gens = NULL;
	char buf[1024];
	size_t i;

	memset(&rq, 0, sizeof(rq));
	rq.csr = csr;
	rq.days = 0;
	rq.path_len = -1;
	if (ck_profile_check(p, &rq, &d) != 0)
		return;
	FUZZ_CHECK(d.days >= 1 && d.days <= p->max_days);
	FUZZ_CHECK(d.is_ca == p->is_ca);
	FUZZ_CHECK((d.ku & ~p->ku) == 0);
	if (d.is_ca)
		FUZZ_CHECK(d.path_len >= 0 && d.path_len <= p->max_path_len);
	for (i = 0; i < d.eku.n; i++)
		FUZZ_CHECK(ck_strlist_has(&p->eku, d.eku.v[i]));
	for (i = 0; i < d.sans.n; i++)
		FUZZ_CHECK(d.sans.v[i].type != CK_NAME_OTHER);
	ck_names_format(&d.sans, buf, sizeof(buf));
	if (ck_names_to_general(&d.sans, &gens) == 0)
		GENERAL_NAMES_free(gens);
	ck_issue_decision_clear(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ck_csr *csr = NULL;
	char buf[1024];

	if (!ready)
		LLVMFuzzerInitialize(NULL, NULL);
	if (ck_csr_parse(data, size, &csr) != 0) {
		ERR_clear_error();
		return 0;
	}
	(void)ck_csr_subject_get(csr, "CN");
	ck_names_format(&csr->names, buf, sizeof(buf));
	check(&profiles[0], csr);
	check(&profiles[1], csr);
	ck_csr_free(csr);
	ERR_clear_error();
	return 0;
}
