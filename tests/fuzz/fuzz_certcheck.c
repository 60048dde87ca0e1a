/*
 * fuzz_certcheck.c - ck_cert_check_issued() on arbitrary bytes: the
 * hand-made DER walk a restore drill runs over every restored certificate.
 * The issuer is a fixed P-256 CA (its certificate below; the seeds in
 * corpus/certcheck/ include certificates it issued, SHA-256 and SHA-384,
 * one of another key with its name, its own, and cut ones). A result other
 * than 0, CK_E_PARSE or CK_E_BADSIG is a bug, and so is 0 for an input
 * that OpenSSL's own verification refuses.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "x509/sigcheck.h"

#include "fuzz.h"

static const char ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBjDCCATGgAwIBAgIUbAGLBSv2bdP++WiWx2zG/nHp6ZQwCgYIKoZIzj0EAwIw\n"
    "GzEZMBcGA1UEAwwQY2VydGtlZXAgZnV6eiBDQTAeFw0yNjExMjIyMjAxMDVaFw0z\n"
    "NjExMTkyMjAxMDVaMBsxGTAXBgNVBAMMEGNlcnRrZWVwIGZ1enogQ0EwWTATBgcq\n"
    "hkjOPQIBBggqhkjOPQMBBwNCAARsGwihJMvBGC3LX+OKXeyn7QYZV2L9t0YJL6El\n"
    "8ZXG+f2htQ2hcjNjpVg4X7AjYs29uG9pO2zfgSH9YnE0osJ4o1MwUTAdBgNVHQ4E\n"
    "FgQUDZNT1PBBOuhqJqYcl+l9xmTXHqgwHwYDVR0jBBgwFoAUDZNT1PBBOuhqJqYc\n"
    "l+l9xmTXHqgwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA9PZn\n"
    "Zmt5YGtPArpF6mVNmzdGQR7k+iws8nWbN8beplsCIQDK9/0MLc/sv8x81lcSa0I2\n"
    "YL5NxyBKOw9gvZpVZBIMfw==\n"
    "-----END CERTIFICATE-----\n";

static X509 *ca;
static unsigned char *issuer;
static size_t issuer_len;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	BIO *b = BIO_new_mem_buf(ca_pem, -1);
	unsigned char *p;
	int n;

	(void)argc;
	(void)argv;
	ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	FUZZ_CHECK(ca != NULL);
	n = i2d_X509_NAME(X509_get_subject_name(ca), NULL);
	FUZZ_CHECK(n > 0);
	issuer = malloc((size_t)n);
	FUZZ_CHECK(issuer != NULL);
	p = issuer;
	issuer_len = (size_t)i2d_X509_NAME(X509_get_subject_name(ca), &p);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *x;
	int r;

	if (ca == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	r = ck_cert_check_issued(X509_get0_pubkey(ca), issuer, issuer_len,
	    data, size);
	FUZZ_CHECK(r == 0 || r == CK_E_PARSE || r == CK_E_BADSIG);
	if (r == 0) {
		/* What passed must be a certificate OpenSSL verifies. */
		x = d2i_X509(NULL, &p, (long)size);
		FUZZ_CHECK(x != NULL);
		FUZZ_CHECK(X509_verify(x, X509_get0_pubkey(ca)) == 1);
		X509_free(x);
	}
	ERR_clear_error();
	ck_err_clear();
	return 0;
}
