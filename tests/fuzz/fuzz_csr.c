/*
 * fuzz_csr.c - ck_csr_parse() on arbitrary bytes (PEM or DER), and for
 * every CSR it accepts, the profile check against fixed profiles: a
 * tls-server-like leaf profile (DNS/IP names, serverAuth) and a sub-CA
 * profile (path length, e-mail names, any subject attribute). An accepted
 * decision's names are also encoded back to GeneralNames, as issuance does.
 *
 * Almost every mutation of a CSR breaks its self-signature, so the code
 * after the signature check (subject, extensions, the profiles) would only
 * ever see the seeds. So, as well as the input itself, an input that
 * decodes as a CSR is re-signed with a fixed key (Ed25519 mostly, P-256 or
 * RSA 2048 for some inputs, so that the key-type rules are reached too)
 * and that DER goes through the same path: its subject and requested
 * extensions are the fuzzer's, byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
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
static EVP_PKEY *keys[3];	/* Ed25519, P-256, RSA 2048 */
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
free_all(void)
{
	size_t i;

	ck_profile_clear(&profiles[0]);
	ck_profile_clear(&profiles[1]);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		EVP_PKEY_free(keys[i]);
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
	keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (keys[0] == NULL || keys[1] == NULL || keys[2] == NULL) {
		fprintf(stderr, "fuzz_csr: key generation failed\n");
		abort();
	}
	atexit(free_all);
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

/* Never a password prompt. */
static int
no_pass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static void
parse_and_check(const uint8_t *data, size_t size)
{
	struct ck_csr *csr = NULL;
	char buf[1024];

	if (ck_csr_parse(data, size, &csr) != 0)
		return;
	FUZZ_CHECK(csr->subject != NULL && csr->pubkey != NULL);
	/* PEM accepted (by the quick reading of the usual layout or by
	 * OpenSSL's): OpenSSL must read the same armour too. */
	if (size >= 11 && memmem(data, size, "-----BEGIN ", 11) != NULL) {
		BIO *bio = BIO_new_mem_buf(data, (int)size);
		unsigned char *der = NULL;
		long derlen = 0;

		FUZZ_CHECK(bio != NULL && PEM_bytes_read_bio(&der, &derlen,
		    NULL, PEM_STRING_X509_REQ, bio, no_pass, NULL) == 1);
		OPENSSL_free(der);
		BIO_free(bio);
	}
	(void)ck_csr_subject_get(csr, "CN");
	ck_names_format(&csr->names, buf, sizeof(buf));
	check(&profiles[0], csr);
	check(&profiles[1], csr);
	ck_csr_free(csr);
}

/* DER of the input's CSR re-signed with one of the fixed keys, or NULL. */
static unsigned char *
resign(const uint8_t *data, size_t size, int *outlen)
{
	X509_REQ *req = NULL;
	const unsigned char *p = data;
	unsigned char *der = NULL;
	EVP_PKEY *key;
	BIO *bio;
	int n;

	if (size == 0 || size > CK_CSR_MAX)
		return NULL;
	if (size >= 11 && memmem(data, size, "-----BEGIN ", 11) != NULL) {
		if ((bio = BIO_new_mem_buf(data, (int)size)) == NULL)
			return NULL;
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else
		req = d2i_X509_REQ(NULL, &p, (long)size);
	if (req == NULL)
		return NULL;
	/* Mostly Ed25519 (fast); now and then P-256 or RSA. */
	switch (data[size - 1] & 7) {
	case 6:
		key = keys[1];
		break;
	case 7:
		key = keys[2];
		break;
	default:
		key = keys[0];
	}
	if (X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, EVP_PKEY_get_base_id(key) ==
	    EVP_PKEY_ED25519 ? NULL : EVP_sha256()) <= 0 ||
	    (n = i2d_X509_REQ(req, &der)) <= 0) {
		X509_REQ_free(req);
		return NULL;
	}
	X509_REQ_free(req);
	*outlen = n;
	return der;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *der;
	int len = 0;

	if (!ready)
		LLVMFuzzerInitialize(NULL, NULL);
	parse_and_check(data, size);
	if ((der = resign(data, size, &len)) != NULL) {
		parse_and_check(der, (size_t)len);
		OPENSSL_free(der);
	}
	ERR_clear_error();
	return 0;
}
