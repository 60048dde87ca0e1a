/*
 * fuzz_ocsp.c - the OCSP responder on arbitrary bytes: as a POST body
 * (ocsp_respond_der()) and, NUL-terminated, as the path of a GET
 * (ocsp_respond_get()); then the same string as a serial to
 * ocsp_invalidate().
 *
 * The responder is set up once with a small CA generated at start-up:
 * an Ed25519 key from a fixed seed and a self-signed certificate with the
 * subject "CN=certkeep fuzz CA". A CertID depends only on the issuer's
 * name and key, so the seed corpus (corpus/ocsp/, requests made with
 * `openssl ocsp -reqout` against the same CA, as shown below)
 * reaches the status lookup rather than stopping at "unknown issuer".
 * The status table is a function of the serial's last hex digit: 0-7
 * good, 8-B revoked (with a reason), C-F unknown.
 *
 * Invariants: every call returns 0 (the lookup never fails) with a DER
 * OCSPResponse that parses completely and is either malformedRequest or a
 * successful response, signed by the CA, with 1 to 16 SingleResponses.
 *
 * The seeds were made by hand with openssl 3 (the seed below in hex is
 * 636572746b6565702066757a7a204341206b65792c2074657374206f6e6c7921):
 *   printf '302e020100300506032b657004220420%s' SEED | xxd -r -p >ca.der
 *   openssl req -x509 -new -key ca.der -keyform DER \
 *       -subj '/CN=certkeep fuzz CA' -days 3650 -out ca.pem
 *   openssl ocsp -issuer ca.pem [-sha256|-sha384|-sha512] \
 *       -serial 0x1A2B3C01 [-cert leaf.pem] [-no_nonce] -reqout NAME.der
 * plus a foreign issuer, 17 CertIDs, truncated copies (trunc-*), and two
 * GET forms (get-*.b64: base64, and base64 with %2B/%2F/%3D).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "proto/ocsp.h"
#include "signer/signer.h"
#include "x509/certbuild.h"
#include "x509/serial.h"

#include "fuzz.h"

/* The CA key's seed (test only). */
static const unsigned char ca_seed[32] = {
	0x63, 0x65, 0x72, 0x74, 0x6b, 0x65, 0x65, 0x70,	/* "certkeep" */
	0x20, 0x66, 0x75, 0x7a, 0x7a, 0x20, 0x43, 0x41,	/* " fuzz CA" */
	0x20, 0x6b, 0x65, 0x79, 0x2c, 0x20, 0x74, 0x65,	/* " key, te" */
	0x73, 0x74, 0x20, 0x6f, 0x6e, 0x6c, 0x79, 0x21,	/* "st only!" */
};

static struct signer *sg;
static X509 *ca;
static X509_STORE *store;
static STACK_OF(X509) *certs;
static struct ocsp_responder *responder;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_ocsp: %s: %s\n", what, ck_err_msg());
	abort();
}

static int
lookup(void *arg, const char *serial_hex, struct ocsp_status *out)
{
	size_t n = strlen(serial_hex);
	int d;

	(void)arg;
	memset(out, 0, sizeof(*out));
	FUZZ_CHECK(n > 0 && n < CK_SERIAL_HEX_MAX);
	d = serial_hex[n - 1];
	FUZZ_CHECK((d >= '0' && d <= '9') || (d >= 'A' && d <= 'F'));
	d = d <= '9' ? d - '0' : d - 'A' + 10;
	if (d >= 12)
		return 0;
	out->known = 1;
	if (d >= 8) {
		out->revoked = 1;
		out->revoked_at = INT64_C(1700000000) + d;
		out->reason = (d - 8) * 3;	/* 0, 3, 6, 9 */
	}
	return 0;
}

static void
free_all(void)
{
	ocsp_responder_free(responder);
	sk_X509_free(certs);
	X509_STORE_free(store);
	X509_free(ca);
	signer_free(sg);
}

static void
make_ca(void)
{
	struct ck_cert_template t;
	struct signer_pending *p = NULL;
	unsigned char digest[32], *der = NULL;
	const unsigned char *q;
	X509_NAME *name = NULL;
	EVP_PKEY *key;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL);

	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, ca_seed,
	    sizeof(ca_seed));
	if (key == NULL || !EVP_PKEY_up_ref(key))
		die("CA key");
	if (signer_new(key, NULL, &sg) != 0)
		die("signer");
	if ((name = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"certkeep fuzz CA", -1, -1, 0))
		die("CA name");
	memset(&t, 0, sizeof(t));
	t.subject = name;
	t.pubkey = key;
	t.not_before = now - 86400;
	t.not_after = now + 3650 * INT64_C(86400);
	t.is_ca = 1;
	t.path_len = -1;
	t.ku = (1u << CK_KU_KEY_CERT_SIGN) | (1u << CK_KU_CRL_SIGN);
	if (signer_cert_prepare(sg, &t, 1, &p, digest) != 0 ||
	    signer_cert_sign(sg, p, &der, &len) != 0)
		die("CA certificate");
	q = der;
	if ((ca = d2i_X509(NULL, &q, (long)len)) == NULL ||
	    signer_set_cert(sg, ca) != 0)
		die("CA certificate");
	OPENSSL_free(der);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (responder != NULL)
		return 0;
	make_ca();
	if ((store = X509_STORE_new()) == NULL ||
	    !X509_STORE_add_cert(store, ca) ||
	    (certs = sk_X509_new_null()) == NULL || !sk_X509_push(certs, ca))
		die("trust store");
	if (ocsp_responder_new(sg, ca, lookup, NULL, 3600, &responder) != 0)
		die("responder");
	atexit(free_all);
	return 0;
}

static void
check(int rc, unsigned char *resp, size_t len)
{
	const unsigned char *p = resp;
	OCSP_RESPONSE *o;
	OCSP_BASICRESP *bs;
	int n;

	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(resp != NULL && len > 0);
	o = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	FUZZ_CHECK(o != NULL && p == resp + len);
	if (OCSP_response_status(o) == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		bs = OCSP_response_get1_basic(o);
		FUZZ_CHECK(bs != NULL);
		n = OCSP_resp_count(bs);
		FUZZ_CHECK(n >= 1 && n <= OCSP_MAX_CERTIDS);
		FUZZ_CHECK(OCSP_basic_verify(bs, certs, store,
		    OCSP_NOCHECKS) == 1);
		OCSP_BASICRESP_free(bs);
	} else {
		FUZZ_CHECK(OCSP_response_status(o) ==
		    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
		FUZZ_CHECK(len == 5);
	}
	OCSP_RESPONSE_free(o);
	free(resp);
	ERR_clear_error();
}

static int
hex_only(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isxdigit((unsigned char)*s))
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *resp = NULL;
	size_t len = 0;
	char *s;
	int rc;

	if (responder == NULL)
		LLVMFuzzerInitialize(NULL, NULL);

	rc = ocsp_respond_der(responder, data, size, &resp, &len);
	check(rc, resp, len);

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	resp = NULL;
	rc = ocsp_respond_get(responder, s, &resp, &len);
	check(rc, resp, len);

	/* Short inputs also name a serial to invalidate; one starting with
	 * '!' goes the "unreadable serial" way (everything is dropped).
	 * Longer ones leave the cache as it is, so that it gets used. */
	if (size > 0 && size <= 40 && (s[0] == '!' || hex_only(s)))
		ocsp_invalidate(responder, s);
	free(s);
	return 0;
}
