/*
 * test_x509.c - src/x509: CSR parsing and its refusals, names and IP
 * ranges, serial numbers, key types, key usages, CRL reasons, and the
 * certificate and CRL builders.
 */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "x509/certbuild.h"
#include "x509/csr.h"
#include "x509/keygen.h"
#include "x509/names.h"
#include "x509/serial.h"

#include "ber_names.h"

/* ---- CSR ---- */

static const struct tu_csr full_csr = {
	.subject = "CN=www.example.com,O=Example Ltd",
	.san = "DNS:www.example.com,DNS:*.example.com,IP:10.0.0.1,"
	    "IP:2001:db8::1,email:admin@example.com,URI:https://example.com/x",
	.ku = "critical,digitalSignature,keyEncipherment",
	.eku = "serverAuth,clientAuth,1.2.3.4.5",
	.bc = "critical,CA:TRUE,pathlen:3",
};

static struct ck_csr *
parse_ok(const unsigned char *buf, size_t len)
{
	struct ck_csr *c = NULL;
	int r = ck_csr_parse(buf, len, &c);

	if (r != 0)
		fail_msg("ck_csr_parse: %d %s", r, ck_err_msg());
	assert_non_null(c);
	return c;
}

static void
check_full(const struct ck_csr *c, const char *key_desc)
{
	assert_string_equal(c->key_desc, key_desc);
	assert_non_null(c->subject);
	assert_non_null(c->pubkey);

	assert_int_equal(c->nattrs, 2);
	assert_string_equal(ck_csr_subject_get(c, "CN"), "www.example.com");
	assert_string_equal(ck_csr_subject_get(c, "O"), "Example Ltd");
	assert_null(ck_csr_subject_get(c, "OU"));

	assert_int_equal(c->names.n, 6);
	assert_int_equal(c->names.v[0].type, CK_NAME_DNS);
	assert_string_equal(c->names.v[0].value, "www.example.com");
	assert_int_equal(c->names.v[1].type, CK_NAME_DNS);
	assert_string_equal(c->names.v[1].value, "*.example.com");
	assert_int_equal(c->names.v[2].type, CK_NAME_IP);
	assert_string_equal(c->names.v[2].value, "10.0.0.1");
	assert_int_equal(c->names.v[3].type, CK_NAME_IP);
	assert_string_equal(c->names.v[3].value, "2001:db8::1");
	assert_int_equal(c->names.v[4].type, CK_NAME_EMAIL);
	assert_string_equal(c->names.v[4].value, "admin@example.com");
	assert_int_equal(c->names.v[5].type, CK_NAME_URI);
	assert_string_equal(c->names.v[5].value, "https://example.com/x");

	assert_true(c->has_ku);
	assert_int_equal(c->ku, (1u << CK_KU_DIGITAL_SIGNATURE) |
	    (1u << CK_KU_KEY_ENCIPHERMENT));
	assert_true(c->has_eku);
	assert_int_equal(c->eku.n, 3);
	assert_string_equal(c->eku.v[0], "serverAuth");
	assert_string_equal(c->eku.v[1], "clientAuth");
	assert_string_equal(c->eku.v[2], "1.2.3.4.5");
	assert_true(c->has_bc);
	assert_int_equal(c->bc_ca, 1);
	assert_int_equal(c->bc_pathlen, 3);
	assert_int_equal(c->other_exts.n, 0);
}

static void
csr_good(const char *keytype, const char *desc, int pem)
{
	struct tu_csr o = full_csr;
	EVP_PKEY *k = tu_key(keytype);
	unsigned char *buf;
	size_t len;
	struct ck_csr *c;

	o.pem = pem;
	tu_csr_make(k, &o, &buf, &len);
	if (pem)
		assert_non_null(memmem(buf, len, "-----BEGIN", 10));
	else
		assert_int_equal(buf[0], 0x30);
	c = parse_ok(buf, len);
	check_full(c, desc);
	/* The public key is the one that signed. */
	assert_int_equal(EVP_PKEY_eq(c->pubkey, k), 1);
	ck_csr_free(c);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_csr_ec_pem(void **state)
{
	(void)state;
	csr_good("ec-p256", "ec-p256", 1);
}

static void
test_csr_ec_der(void **state)
{
	(void)state;
	csr_good("ec-p256", "ec-p256", 0);
}

static void
test_csr_rsa(void **state)
{
	(void)state;
	csr_good("rsa2048", "rsa2048", 1);
	csr_good("rsa2048", "rsa2048", 0);
}

static void
test_csr_ed25519(void **state)
{
	(void)state;
	csr_good("ed25519", "ed25519", 1);
	csr_good("ed25519", "ed25519", 0);
}

static void
test_csr_other_keys_described(void **state)
{
	struct tu_csr o = { .subject = "CN=x.example.com" };
	static const char *const types[][2] = {
		{ "rsa1024", "rsa1024" }, { "ec-p384", "ec-p384" },
		{ "secp256k1", "ec-secp256k1" }, { "ed448", "ed448" },
	};
	unsigned char *buf;
	size_t len, i;
	struct ck_csr *c;
	EVP_PKEY *k;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		k = tu_key(types[i][0]);
		tu_csr_make(k, &o, &buf, &len);
		c = parse_ok(buf, len);
		assert_string_equal(c->key_desc, types[i][1]);
		ck_csr_free(c);
		free(buf);
		EVP_PKEY_free(k);
	}
}

static void
test_csr_minimal(void **state)
{
	struct tu_csr o = { .subject = "CN=plain.example.com" };
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf;
	size_t len;
	struct ck_csr *c;

	(void)state;
	tu_csr_make(k, &o, &buf, &len);
	c = parse_ok(buf, len);
	assert_int_equal(c->nattrs, 1);
	assert_int_equal(c->names.n, 0);
	assert_false(c->has_ku);
	assert_int_equal(c->ku, 0);
	assert_false(c->has_eku);
	assert_int_equal(c->eku.n, 0);
	assert_false(c->has_bc);
	assert_int_equal(c->bc_pathlen, -1);
	assert_int_equal(c->other_exts.n, 0);
	ck_csr_free(c);
	free(buf);

	/* An empty subject is parsed (profiles judge it). */
	o.subject = NULL;
	o.san = "DNS:only-san.example.com";
	tu_csr_make(k, &o, &buf, &len);
	c = parse_ok(buf, len);
	assert_int_equal(c->nattrs, 0);
	assert_null(ck_csr_subject_get(c, "CN"));
	assert_int_equal(c->names.n, 1);
	ck_csr_free(c);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_csr_basic_constraints_leaf(void **state)
{
	struct tu_csr o = { .subject = "CN=leaf.example.com",
		.bc = "CA:FALSE" };
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf;
	size_t len;
	struct ck_csr *c;

	(void)state;
	tu_csr_make(k, &o, &buf, &len);
	c = parse_ok(buf, len);
	assert_true(c->has_bc);
	assert_int_equal(c->bc_ca, 0);
	assert_int_equal(c->bc_pathlen, -1);
	ck_csr_free(c);
	free(buf);

	o.bc = "critical,CA:TRUE";
	tu_csr_make(k, &o, &buf, &len);
	c = parse_ok(buf, len);
	assert_true(c->has_bc);
	assert_int_equal(c->bc_ca, 1);
	assert_int_equal(c->bc_pathlen, -1);
	ck_csr_free(c);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_csr_other_extensions(void **state)
{
	struct tu_csr o = { .subject = "CN=x.example.com",
		.ext_name = "nsComment", .ext_value = "hello" };
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf;
	size_t len;
	struct ck_csr *c;

	(void)state;
	tu_csr_make(k, &o, &buf, &len);
	c = parse_ok(buf, len);
	assert_int_equal(c->other_exts.n, 1);
	assert_string_equal(c->other_exts.v[0], "nsComment");
	ck_csr_free(c);
	free(buf);

	/* An extension OpenSSL does not know is listed by OID. */
	o.ext_name = "1.2.3.4.5.6";
	o.ext_value = "ASN1:NULL";
	tu_csr_make(k, &o, &buf, &len);
	c = parse_ok(buf, len);
	assert_int_equal(c->other_exts.n, 1);
	assert_string_equal(c->other_exts.v[0], "1.2.3.4.5.6");
	ck_csr_free(c);
	free(buf);

	/* A subject key identifier is harmless and not listed. */
	o.ext_name = "subjectKeyIdentifier";
	o.ext_value = "hash";
	tu_csr_make(k, &o, &buf, &len);
	c = parse_ok(buf, len);
	assert_int_equal(c->other_exts.n, 0);
	ck_csr_free(c);
	free(buf);
	EVP_PKEY_free(k);
}

/* Wrap DER bytes in PEM armour, whatever they hold. */
static unsigned char *
pem_wrap(const unsigned char *der, size_t len, size_t *outlen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *bm;
	unsigned char *out;

	assert_non_null(bio);
	assert_true(PEM_write_bio(bio, "CERTIFICATE REQUEST", "", der,
	    (long)len) > 0);
	BIO_get_mem_ptr(bio, &bm);
	out = malloc(bm->length);
	assert_non_null(out);
	memcpy(out, bm->data, bm->length);
	*outlen = bm->length;
	BIO_free(bio);
	return out;
}

static void
expect_parse_error(const unsigned char *buf, size_t len, int want)
{
	struct ck_csr *c = NULL;
	int r = ck_csr_parse(buf, len, &c);

	if (r != want)
		fail_msg("ck_csr_parse returned %d (%s), wanted %d", r,
		    ck_err_msg(), want);
	assert_null(c);
}

/* PEM text of DER with `width` base64 characters a line, `eol` after each
 * line, `lead` before the BEGIN line and `tail` after the END line. */
static char *
pem_layout(const unsigned char *der, size_t len, size_t width,
    const char *eol, const char *lead, const char *tail)
{
	char *b64 = malloc((len + 2) / 3 * 4 + 1), *out;
	size_t n, off, cap, o = 0;

	assert_non_null(b64);
	n = (size_t)EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
	cap = strlen(lead) + strlen(tail) + n + (n / width + 3) * 4 + 128;
	out = malloc(cap);
	assert_non_null(out);
	o += (size_t)snprintf(out + o, cap - o, "%s-----BEGIN CERTIFICATE "
	    "REQUEST-----%s", lead, eol);
	for (off = 0; off < n; off += width)
		o += (size_t)snprintf(out + o, cap - o, "%.*s%s",
		    (int)(n - off < width ? n - off : width), b64 + off, eol);
	snprintf(out + o, cap - o, "-----END CERTIFICATE REQUEST-----%s",
	    tail);
	free(b64);
	return out;
}

/* Whatever the layout of the armour (the quick reading of the usual one,
 * or OpenSSL's of any other), the same request comes out; broken armour
 * is refused either way. */
static void
test_csr_pem_layouts(void **state)
{
	static const struct {
		size_t width;
		const char *eol, *lead, *tail;
	} ok[] = {
		{ 64, "\n", "", "" },		/* as openssl writes it */
		{ 64, "\r\n", "", "" },
		{ 64, "\n", " \n\n", "\n\n " },
		{ 64, "\n", "", "-" },		/* no newline after END */
		{ 76, "\n", "", "" },		/* other widths: OpenSSL */
		{ 16, "\r\n", "", "" },
		{ 64, "\n", "a note\n", "\ntrailing text\n" },
	};
	struct tu_csr o = full_csr;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *der;
	size_t len, i;
	struct ck_csr *ref, *c;
	char *pem, *p;

	(void)state;
	tu_csr_make(k, &o, &der, &len);
	ref = parse_ok(der, len);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		pem = pem_layout(der, len, ok[i].width, ok[i].eol, ok[i].lead,
		    ok[i].tail);
		/* "-" as tail: drop the END line's newline instead. */
		if (strcmp(ok[i].tail, "-") == 0)
			pem[strlen(pem) - 1] = '\0';
		c = parse_ok((unsigned char *)pem, strlen(pem));
		/* OpenSSL reads every one of them the same. */
		{
			BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
			unsigned char *d = NULL;
			long dlen = 0;

			assert_non_null(bio);
			assert_int_equal(PEM_bytes_read_bio(&d, &dlen, NULL,
			    PEM_STRING_X509_REQ, bio, NULL, NULL), 1);
			assert_int_equal(dlen, (long)len);
			assert_memory_equal(d, der, len);
			OPENSSL_free(d);
			BIO_free(bio);
		}
		check_full(c, "ec-p256");
		assert_int_equal(c->spki_der_len, ref->spki_der_len);
		assert_memory_equal(c->spki_der, ref->spki_der,
		    ref->spki_der_len);
		assert_int_equal(X509_NAME_cmp(c->subject, ref->subject), 0);
		ck_csr_free(c);
		free(pem);
	}

	/* BEGIN not at the start of its line, a character outside base64,
	 * a short line in the middle, padding in the middle, no END line,
	 * a second block: refused. */
	pem = pem_layout(der, len, 64, "\n", "\n\t", "");
	expect_parse_error((unsigned char *)pem, strlen(pem), CK_E_PARSE);
	free(pem);
	pem = pem_layout(der, len, 64, "\n", "", "");
	p = strchr(pem, '\n') + 10;
	*p = '!';
	expect_parse_error((unsigned char *)pem, strlen(pem), CK_E_PARSE);
	free(pem);
	pem = pem_layout(der, len, 64, "\n", "", "");
	p = strchr(pem, '\n') + 1 + 64;
	memmove(p - 4, p, strlen(p) + 1);	/* first line 60 long */
	expect_parse_error((unsigned char *)pem, strlen(pem), CK_E_PARSE);
	free(pem);
	pem = pem_layout(der, len, 64, "\n", "", "");
	p = strchr(pem, '\n') + 1;
	p[3] = '=';
	expect_parse_error((unsigned char *)pem, strlen(pem), CK_E_PARSE);
	free(pem);
	pem = pem_layout(der, len, 64, "\n", "", "");
	*strstr(pem, "-----END") = '\0';
	expect_parse_error((unsigned char *)pem, strlen(pem), CK_E_PARSE);
	free(pem);
	pem = pem_layout(der, len, 64, "\n", "", "\n-----BEGIN CERTIFICATE "
	    "REQUEST-----\n");
	expect_parse_error((unsigned char *)pem, strlen(pem), CK_E_PARSE);
	free(pem);

	ck_csr_free(ref);
	free(der);
	EVP_PKEY_free(k);
}

static void
test_csr_bad_signature(void **state)
{
	static const char *const types[] = { "ec-p256", "rsa2048", "ed25519" };
	struct tu_csr o = full_csr;
	unsigned char *buf, *pem;
	size_t len, pemlen, i;
	EVP_PKEY *k;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		k = tu_key(types[i]);
		tu_csr_make(k, &o, &buf, &len);
		/* The signature's BIT STRING ends the DER. */
		buf[len - 1] ^= 0x01;
		ck_err_clear();
		expect_parse_error(buf, len, CK_E_BADSIG);
		assert_contains(ck_err_msg(), "signature");
		pem = pem_wrap(buf, len, &pemlen);
		expect_parse_error(pem, pemlen, CK_E_BADSIG);
		free(pem);
		free(buf);
		EVP_PKEY_free(k);
	}
}

static void
test_csr_altered_content(void **state)
{
	struct tu_csr o = { .subject = "CN=www.example.com" };
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf, *p;
	size_t len;

	(void)state;
	tu_csr_make(k, &o, &buf, &len);
	/* Change the requested name after signing: www -> wwx. */
	p = memmem(buf, len, "www.example.com", 15);
	assert_non_null(p);
	p[2] = 'x';
	expect_parse_error(buf, len, CK_E_BADSIG);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_csr_truncated(void **state)
{
	struct tu_csr o = full_csr;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf;
	size_t len, cut;

	(void)state;
	tu_csr_make(k, &o, &buf, &len);
	/* Every truncation of the DER is malformed, never accepted. */
	for (cut = 1; cut < len; cut++) {
		struct ck_csr *c = NULL;
		int r = ck_csr_parse(buf, cut, &c);

		if (r != CK_E_PARSE)
			fail_msg("truncated to %zu of %zu bytes: %d", cut,
			    len, r);
		assert_null(c);
	}
	expect_parse_error(buf, 0, CK_E_PARSE);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_csr_trailing_junk(void **state)
{
	struct tu_csr o = full_csr;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf, *junk, *pem;
	size_t len, pemlen;

	(void)state;
	tu_csr_make(k, &o, &buf, &len);
	junk = malloc(2 * len);
	assert_non_null(junk);
	memcpy(junk, buf, len);

	junk[len] = 0;
	ck_err_clear();
	expect_parse_error(junk, len + 1, CK_E_PARSE);
	assert_contains(ck_err_msg(), "trailing");

	memcpy(junk + len, "junk", 4);
	expect_parse_error(junk, len + 4, CK_E_PARSE);

	/* Two requests back to back are not one request. */
	memcpy(junk + len, buf, len);
	expect_parse_error(junk, 2 * len, CK_E_PARSE);

	/* The same inside PEM armour. */
	pem = pem_wrap(junk, len + 4, &pemlen);
	expect_parse_error(pem, pemlen, CK_E_PARSE);
	free(pem);

	/* The unaltered DER, armoured the same way, parses. */
	pem = pem_wrap(buf, len, &pemlen);
	ck_csr_free(parse_ok(pem, pemlen));
	free(pem);

	free(junk);
	free(buf);
	EVP_PKEY_free(k);
}

/* A request signed with SHA-1 proves nothing: refused as a bad signature,
 * as is an RSA key with an even public exponent. */
static void
test_csr_weak_signature(void **state)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *nm = X509_NAME_new();
	EVP_PKEY *k = tu_key("ec-p256");
	struct ck_csr *c = NULL;
	unsigned char *der = NULL;
	int len;

	(void)state;
	assert_non_null(req);
	assert_true(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"www.example.com", -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, nm));
	assert_true(X509_REQ_set_pubkey(req, k));
	assert_true(X509_REQ_sign(req, k, EVP_sha1()) > 0);
	len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);
	assert_int_equal(ck_csr_parse(der, (size_t)len, &c), CK_E_BADSIG);
	assert_contains(ck_err_msg(), "weak digest");
	assert_null(c);
	OPENSSL_free(der);
	X509_NAME_free(nm);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	tu_keys_free();
}

static void
test_csr_garbage(void **state)
{
	static const char bad_pem[] =
	    "-----BEGIN CERTIFICATE REQUEST-----\n"
	    "bm90IGEgcmVxdWVzdA==\n"
	    "-----END CERTIFICATE REQUEST-----\n";
	static const char not_b64[] =
	    "-----BEGIN CERTIFICATE REQUEST-----\n"
	    "!!!!\n"
	    "-----END CERTIFICATE REQUEST-----\n";
	static const unsigned char seq[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };

	(void)state;
	expect_parse_error((const unsigned char *)bad_pem, strlen(bad_pem),
	    CK_E_PARSE);
	expect_parse_error((const unsigned char *)not_b64, strlen(not_b64),
	    CK_E_PARSE);
	expect_parse_error((const unsigned char *)"hello", 5, CK_E_PARSE);
	expect_parse_error(seq, sizeof(seq), CK_E_PARSE);
}

/*
 * A PEM "encrypted" header on a request must not make OpenSSL ask for a
 * pass phrase on the operator's terminal: run the parse in a child whose
 * controlling terminal is a pseudo-terminal we watch.
 */
static void
test_csr_pem_encrypted_header_no_prompt(void **state)
{
	struct tu_csr o = { .subject = "CN=www.example.com", .pem = 1 };
	static const char hdr[] = "Proc-Type: 4,ENCRYPTED\n"
	    "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n";
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *buf, *pem;
	size_t len, pemlen, cut;
	char out[512];
	size_t got = 0;
	int master, status;
	pid_t pid;

	(void)state;
	tu_csr_make(k, &o, &buf, &len);
	/* Put the header right after the BEGIN line. */
	cut = (size_t)((unsigned char *)memchr(buf, '\n', len) - buf) + 1;
	pemlen = len + strlen(hdr);
	pem = malloc(pemlen);
	assert_non_null(pem);
	memcpy(pem, buf, cut);
	memcpy(pem + cut, hdr, strlen(hdr));
	memcpy(pem + cut + strlen(hdr), buf + cut, len - cut);

	master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ck_csr *c = NULL;
		int slave, r;

		(void)setsid();
		slave = open(ptsname(master), O_RDWR);
		if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) != 0)
			_exit(3);
		close(master);
		(void)dup2(slave, 0);
		(void)dup2(slave, 1);
		(void)dup2(slave, 2);
		alarm(20);
		r = ck_csr_parse(pem, pemlen, &c);
		ck_csr_free(c);
		_exit(r == CK_E_PARSE ? 0 : 1);
	}
	/* Collect whatever the child writes on its terminal; answer any
	 * question so that it cannot hang. */
	for (;;) {
		struct pollfd pfd = { master, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 3000) <= 0)
			break;
		n = read(master, out + got, sizeof(out) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		(void)!write(master, "guess\n", 6);
		if (got >= sizeof(out) - 1)
			break;
	}
	out[got] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(master);
	if (strstr(out, "hrase") != NULL)
		fail_msg("parsing a CSR asked the terminal: %s", out);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	free(pem);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_csr_oversize(void **state)
{
	unsigned char *buf = calloc(1, CK_CSR_MAX + 1);
	struct tu_csr o = full_csr;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *csr;
	size_t len;

	(void)state;
	assert_non_null(buf);
	ck_err_clear();
	expect_parse_error(buf, CK_CSR_MAX + 1, CK_E_TOOBIG);
	assert_contains(ck_err_msg(), "65536");
	/* At the limit it is judged on its content, not its size. */
	expect_parse_error(buf, CK_CSR_MAX, CK_E_PARSE);

	/* A valid CSR padded past the limit is refused for its size. */
	o.pem = 1;
	tu_csr_make(k, &o, &csr, &len);
	memcpy(buf, csr, len);
	memset(buf + len, '\n', CK_CSR_MAX + 1 - len);
	expect_parse_error(buf, CK_CSR_MAX + 1, CK_E_TOOBIG);
	free(csr);
	free(buf);
	EVP_PKEY_free(k);
}

static void
test_csr_certificate_is_not_a_request(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256");
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	unsigned char *der = NULL;
	int len;

	(void)state;
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"c", -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, nm), 1);
	assert_int_equal(X509_set_issuer_name(x, nm), 1);
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 60));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	len = i2d_X509(x, &der);
	assert_true(len > 0);
	expect_parse_error(der, (size_t)len, CK_E_PARSE);
	OPENSSL_free(der);
	X509_NAME_free(nm);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* A CSR for `name` as its bytes are (a decoded name keeps them, and so
 * does the CSR built on it), signed. */
static unsigned char *
csr_with_name(const unsigned char *name, size_t nlen, size_t *len)
{
	EVP_PKEY *k = tu_key("ec-p256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *nm;
	const unsigned char *p = name;
	unsigned char *der = NULL;
	int l;

	assert_non_null(nm = d2i_X509_NAME(NULL, &p, (long)nlen));
	assert_ptr_equal(p, name + nlen);
	assert_int_equal(X509_REQ_set_subject_name(req, nm), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	assert_true((l = i2d_X509_REQ(req, &der)) > 0);
	/* The BER went into the request as it was. */
	assert_non_null(memmem(der, (size_t)l, name, nlen));
	*len = (size_t)l;
	X509_NAME_free(nm);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return der;
}

/* V4: the subject is copied into the certificate as received; a BER one
 * is refused, a DER one (multi-valued RDN included) taken. */
static void
test_csr_subject_ber(void **state)
{
	struct ck_csr *c;
	unsigned char *der;
	size_t len, i;

	(void)state;
	der = csr_with_name(name_der, sizeof(name_der), &len);
	c = parse_ok(der, len);
	assert_string_equal(ck_csr_subject_get(c, "CN"), "ab");
	ck_csr_free(c);
	OPENSSL_free(der);
	der = csr_with_name(name_der_multi, sizeof(name_der_multi), &len);
	c = parse_ok(der, len);
	assert_string_equal(ck_csr_subject_get(c, "O"), "cd");
	ck_csr_free(c);
	OPENSSL_free(der);
	for (i = 0; i < BER_NAMES; i++) {
		der = csr_with_name(ber_names[i].der, ber_names[i].len, &len);
		c = NULL;
		if (ck_csr_parse(der, len, &c) != CK_E_PARSE)
			fail_msg("a subject with %s: not refused",
			    ber_names[i].what);
		assert_null(c);
		assert_contains(ck_err_msg(), "the CSR's subject is not DER");
		OPENSSL_free(der);
	}
}

/* ---- names ---- */

static void
test_dns_name_valid(void **state)
{
	static const char *const good[] = {
		"example.com", "www.example.com", "a", "localhost",
		"a-b.example.com", "xn--bcher-kva.example", "1.example.com",
		"*.example.com", "EXAMPLE.COM", "a.b.c.d.e.f",
	};
	static const char *const bad[] = {
		"", ".", "example.com.", ".example.com", "a..b", "-a.com",
		"a-.com", "a.-b.com", "ex_ample.com", "a b.com", "*",
		"*.", "*example.com", "foo.*.example.com", "www.*.com",
		"**.example.com", "*.*.example.com", "a.com/", "a.com:443",
		"exa\xc3\xa9mple.com", "user@example.com",
	};
	char label63[80], label64[80], long254[310], long253[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_dns_name_valid(good[i]))
			fail_msg("'%s' should be a valid DNS name", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ck_dns_name_valid(bad[i]))
			fail_msg("'%s' should not be a valid DNS name",
			    bad[i]);

	memset(label63, 'a', 63);
	snprintf(label63 + 63, sizeof(label63) - 63, ".com");
	assert_true(ck_dns_name_valid(label63));
	memset(label64, 'a', 64);
	snprintf(label64 + 64, sizeof(label64) - 64, ".com");
	assert_false(ck_dns_name_valid(label64));

	/* 253 characters in all is the most a name may have. */
	memset(long253, 0, sizeof(long253));
	for (i = 0; i < 253; i++)
		long253[i] = (i % 50 == 49) ? '.' : 'a';
	assert_int_equal(strlen(long253), 253);
	assert_true(ck_dns_name_valid(long253));
	memcpy(long254, long253, 253);
	long254[253] = 'a';
	long254[254] = '\0';
	assert_false(ck_dns_name_valid(long254));
}

static void
test_email_valid(void **state)
{
	static const char *const good[] = {
		"user@example.com", "first.last+tag@mail.example.org",
		"a@b", "x_y-z@example.com",
	};
	static const char *const bad[] = {
		"", "user", "@example.com", "user@", "a@b@c.com",
		"us er@example.com", "user@exa mple.com", "user@*.example.com",
		"user@-bad.com", "user@example..com", "<user>@example.com",
		"user,x@example.com", "\"quoted\"@example.com",
		"user@example.com.", "us\ter@example.com",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ck_email_valid(good[i]))
			fail_msg("'%s' should be a valid address", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ck_email_valid(bad[i]))
			fail_msg("'%s' should not be a valid address", bad[i]);
}

static void
test_ip_parse(void **state)
{
	unsigned char ip[16];
	static const unsigned char v4[4] = { 192, 0, 2, 1 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 1 };

	(void)state;
	assert_int_equal(ck_ip_parse("192.0.2.1", ip), 4);
	assert_memory_equal(ip, v4, 4);
	assert_int_equal(ck_ip_parse("2001:db8::1", ip), 16);
	assert_memory_equal(ip, v6, 16);
	assert_int_equal(ck_ip_parse("::", ip), 16);
	assert_int_equal(ck_ip_parse("::ffff:1.2.3.4", ip), 16);
	assert_int_equal(ck_ip_parse("1.2.3", ip), 0);
	assert_int_equal(ck_ip_parse("256.1.1.1", ip), 0);
	assert_int_equal(ck_ip_parse("1.2.3.4.5", ip), 0);
	assert_int_equal(ck_ip_parse("", ip), 0);
	assert_int_equal(ck_ip_parse("example.com", ip), 0);
	assert_int_equal(ck_ip_parse("2001:db8:::1", ip), 0);
	assert_int_equal(ck_ip_parse("10.0.0.0/8", ip), 0);
}

static void
test_ip_canon(void **state)
{
	char t[CK_IP_TEXT_MAX];

	(void)state;
	assert_int_equal(ck_ip_canon("192.0.2.1", t), 0);
	assert_string_equal(t, "192.0.2.1");
	/* RFC 5952: lower case, longest zero run compressed, no leading
	 * zeros. */
	assert_int_equal(ck_ip_canon("2001:0DB8:0000:0000:0000:0000:0000:0001",
	    t), 0);
	assert_string_equal(t, "2001:db8::1");
	assert_int_equal(ck_ip_canon("2001:db8:0:0:1:0:0:1", t), 0);
	assert_string_equal(t, "2001:db8::1:0:0:1");
	assert_int_equal(ck_ip_canon("::FFFF:192.0.2.1", t), 0);
	assert_string_equal(t, "::ffff:192.0.2.1");
	assert_int_equal(ck_ip_canon("example.com", t), -1);
	assert_string_equal(t, "");
	assert_int_equal(ck_ip_canon("192.0.2.1 ", t), -1);
	assert_int_equal(ck_ip_canon("1::2::3", t), -1);
}

static int
in_range(const char *range, const char *addr)
{
	struct ck_ip_range r;
	unsigned char ip[16];
	int len;

	assert_int_equal(ck_ip_range_parse(range, &r), 0);
	len = ck_ip_parse(addr, ip);
	assert_int_not_equal(len, 0);
	return ck_ip_range_contains(&r, ip, len);
}

static void
test_ip_ranges(void **state)
{
	struct ck_ip_range r;

	(void)state;
	assert_true(in_range("10.0.0.0/8", "10.0.0.0"));
	assert_true(in_range("10.0.0.0/8", "10.255.255.255"));
	assert_true(in_range("10.0.0.0/8", "10.1.2.3"));
	assert_false(in_range("10.0.0.0/8", "11.0.0.0"));
	assert_false(in_range("10.0.0.0/8", "9.255.255.255"));

	/* A prefix that is not a whole number of bytes. */
	assert_true(in_range("192.168.1.0/28", "192.168.1.0"));
	assert_true(in_range("192.168.1.0/28", "192.168.1.15"));
	assert_false(in_range("192.168.1.0/28", "192.168.1.16"));
	assert_true(in_range("172.16.0.0/12", "172.31.255.255"));
	assert_false(in_range("172.16.0.0/12", "172.32.0.0"));
	assert_false(in_range("172.16.0.0/12", "172.15.255.255"));

	/* A bare address is a host route. */
	assert_true(in_range("192.0.2.7", "192.0.2.7"));
	assert_false(in_range("192.0.2.7", "192.0.2.8"));
	assert_true(in_range("192.0.2.7/32", "192.0.2.7"));
	assert_false(in_range("192.0.2.7/32", "192.0.2.6"));

	/* /0 holds every address of its family, and only those. */
	assert_true(in_range("0.0.0.0/0", "203.0.113.9"));
	assert_false(in_range("0.0.0.0/0", "::1"));
	assert_true(in_range("::/0", "2001:db8::1"));
	assert_false(in_range("::/0", "127.0.0.1"));

	assert_true(in_range("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in_range("2001:db8::/32", "2001:db9::1"));
	assert_true(in_range("fe80::/10", "febf::1"));
	assert_false(in_range("fe80::/10", "fec0::1"));
	assert_true(in_range("::1/128", "::1"));
	assert_false(in_range("::1/128", "::2"));
	/* An IPv4-mapped IPv6 address is not the IPv4 address. */
	assert_false(in_range("127.0.0.0/8", "::ffff:127.0.0.1"));

	assert_int_equal(ck_ip_range_parse("10.0.0.0/8", &r), 0);
	assert_int_equal(r.len, 4);
	assert_int_equal(r.prefix, 8);
	assert_int_equal(ck_ip_range_parse("::1", &r), 0);
	assert_int_equal(r.len, 16);
	assert_int_equal(r.prefix, 128);
}

static void
test_ip_ranges_bad(void **state)
{
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1",
		"10.0.0.0/8x", "10.0.0.0/ 8", "10.0.0/8", "::/129",
		"example.com/8", "10.0.0.0/8/8", "10.0.0.0/0x8",
	};
	struct ck_ip_range r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_err_clear();
		if (ck_ip_range_parse(bad[i], &r) != CK_E_PARSE)
			fail_msg("bad IP range '%s' accepted", bad[i]);
		assert_contains(ck_err_msg(), "bad IP range");
	}
}

static void
test_names_general_round_trip(void **state)
{
	struct ck_names l = { 0 }, back = { 0 };
	GENERAL_NAMES *gens = NULL;
	char buf[256], small[12];
	size_t i;

	(void)state;
	assert_int_equal(ck_names_add(&l, CK_NAME_DNS, "a.example.com"), 0);
	assert_int_equal(ck_names_add(&l, CK_NAME_IP, "192.0.2.1"), 0);
	assert_int_equal(ck_names_add(&l, CK_NAME_IP, "2001:db8::2"), 0);
	assert_int_equal(ck_names_add(&l, CK_NAME_EMAIL, "x@example.com"), 0);
	assert_int_equal(ck_names_add(&l, CK_NAME_URI, "https://e.example/"),
	    0);
	ck_names_format(&l, buf, sizeof(buf));
	assert_string_equal(buf, "DNS:a.example.com, IP:192.0.2.1, "
	    "IP:2001:db8::2, email:x@example.com, URI:https://e.example/");
	/* Truncated formatting stays within the buffer. */
	ck_names_format(&l, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));

	assert_int_equal(ck_names_to_general(&l, &gens), 0);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 5);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 1)->type, GEN_IPADD);
	assert_int_equal(ck_names_from_general(gens, &back), 0);
	assert_int_equal(back.n, l.n);
	for (i = 0; i < l.n; i++) {
		assert_int_equal(back.v[i].type, l.v[i].type);
		assert_string_equal(back.v[i].value, l.v[i].value);
	}
	GENERAL_NAMES_free(gens);
	ck_names_clear(&back);

	/* "other" names and bad IPs cannot be put in a certificate. */
	assert_int_equal(ck_names_add(&l, CK_NAME_OTHER, "x"), 0);
	assert_int_equal(ck_names_to_general(&l, &gens), CK_E_INVAL);
	ck_names_clear(&l);
	assert_int_equal(ck_names_add(&l, CK_NAME_IP, "not-an-ip"), 0);
	assert_int_equal(ck_names_to_general(&l, &gens), CK_E_INVAL);
	ck_names_clear(&l);
	assert_int_equal(l.n, 0);
	ck_names_clear(NULL);

	assert_string_equal(ck_name_type_label(CK_NAME_EMAIL), "email");
	assert_string_equal(ck_name_type_label(CK_NAME__MAX), "other");
}

static void
test_names_add_too_long(void **state)
{
	struct ck_names l = { 0 };
	char v[CK_NAME_MAX + 1];

	(void)state;
	memset(v, 'a', CK_NAME_MAX);
	v[CK_NAME_MAX] = '\0';
	assert_int_equal(ck_names_add(&l, CK_NAME_DNS, v), CK_E_TOOBIG);
	assert_int_equal(l.n, 0);
	v[CK_NAME_MAX - 1] = '\0';
	assert_int_equal(ck_names_add(&l, CK_NAME_DNS, v), 0);
	assert_int_equal(strlen(l.v[0].value), CK_NAME_MAX - 1);
	ck_names_clear(&l);
}

static void
test_names_from_general_unsupported(void **state)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	struct ck_names l = { 0 };

	(void)state;
	assert_non_null(gens);
	assert_non_null(g);
	/* A DNS name with a NUL inside must not be taken as text. */
	assert_int_equal(ASN1_STRING_set(s, "good.com\0.evil.com", 18), 1);
	GENERAL_NAME_set0_value(g, GEN_DNS, s);
	assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	assert_int_equal(ck_names_from_general(gens, &l), CK_E_PARSE);
	ck_names_clear(&l);
	GENERAL_NAMES_free(gens);

	/* A registeredID is kept as an OTHER name, never dropped. */
	gens = sk_GENERAL_NAME_new_null();
	g = GENERAL_NAME_new();
	assert_non_null(gens);
	assert_non_null(g);
	GENERAL_NAME_set0_value(g, GEN_RID, OBJ_txt2obj("1.2.3.4", 1));
	assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	assert_int_equal(ck_names_from_general(gens, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].type, CK_NAME_OTHER);
	ck_names_clear(&l);
	GENERAL_NAMES_free(gens);
}

/* ---- serials ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void
test_serial_random(void **state)
{
	enum { N = 1000 };
	char (*hex)[CK_SERIAL_HEX_MAX] = calloc(N, CK_SERIAL_HEX_MAX);
	char norm[CK_SERIAL_HEX_MAX], back[CK_SERIAL_HEX_MAX];
	ASN1_INTEGER *ai;
	BIGNUM *bn;
	size_t i, j;

	(void)state;
	assert_non_null(hex);
	for (i = 0; i < N; i++) {
		ai = NULL;
		assert_int_equal(ck_serial_random(&ai, hex[i]), 0);
		assert_non_null(ai);
		/* Positive, 16 content bytes, no sign padding needed. */
		assert_int_equal(ASN1_STRING_type(ai), V_ASN1_INTEGER);
		assert_int_equal(ASN1_STRING_length(ai), CK_SERIAL_BYTES);
		assert_int_not_equal(ASN1_STRING_get0_data(ai)[0], 0);
		assert_true(ASN1_STRING_get0_data(ai)[0] < 0x80);
		bn = ASN1_INTEGER_to_BN(ai, NULL);
		assert_non_null(bn);
		assert_false(BN_is_negative(bn));
		assert_false(BN_is_zero(bn));
		assert_true(BN_num_bits(bn) > 120);
		assert_true(BN_num_bits(bn) <= 127);
		BN_free(bn);
		/* The hex form is upper-case without leading zeros, the
		 * same as the canonical form of user input. */
		for (j = 0; hex[i][j] != '\0'; j++)
			assert_non_null(strchr("0123456789ABCDEF",
			    hex[i][j]));
		assert_true(j == 31 || j == 32);
		assert_int_not_equal(hex[i][0], '0');
		assert_int_equal(ck_serial_normalize(hex[i], norm), 0);
		assert_string_equal(norm, hex[i]);
		assert_int_equal(ck_serial_to_hex(ai, back), 0);
		assert_string_equal(back, hex[i]);
		ASN1_INTEGER_free(ai);
	}
	qsort(hex, N, CK_SERIAL_HEX_MAX, cmp_str);
	for (i = 1; i < N; i++)
		assert_string_not_equal(hex[i - 1], hex[i]);
	free(hex);
}

static void
test_serial_normalize(void **state)
{
	static const char *const bad[] = {
		"", "0", "00", "0x", "0x00", "::", "xyz", "12 34", "0xg1",
		"-1", "12\n",
	};
	char out[CK_SERIAL_HEX_MAX];
	char big[CK_SERIAL_HEX_MAX + 10];
	size_t i;

	(void)state;
	assert_int_equal(ck_serial_normalize("0x00ab:CD", out), 0);
	assert_string_equal(out, "ABCD");
	assert_int_equal(ck_serial_normalize("ab:cd:ef", out), 0);
	assert_string_equal(out, "ABCDEF");
	assert_int_equal(ck_serial_normalize("0X0001", out), 0);
	assert_string_equal(out, "1");
	assert_int_equal(ck_serial_normalize("7F", out), 0);
	assert_string_equal(out, "7F");
	assert_int_equal(ck_serial_normalize("00:0f:a0", out), 0);
	assert_string_equal(out, "FA0");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(out, sizeof(out), "untouched");
		if (ck_serial_normalize(bad[i], out) != CK_E_PARSE)
			fail_msg("serial '%s' accepted", bad[i]);
		assert_string_equal(out, "untouched");
	}

	/* The longest form that fits, and one digit more. */
	memset(big, 'A', CK_SERIAL_HEX_MAX - 1);
	big[CK_SERIAL_HEX_MAX - 1] = '\0';
	assert_int_equal(ck_serial_normalize(big, out), 0);
	assert_int_equal(strlen(out), CK_SERIAL_HEX_MAX - 1);
	big[CK_SERIAL_HEX_MAX - 1] = 'A';
	big[CK_SERIAL_HEX_MAX] = '\0';
	assert_int_equal(ck_serial_normalize(big, out), CK_E_PARSE);
}

static void
test_serial_hex_round_trip(void **state)
{
	ASN1_INTEGER *ai = NULL;
	char hex[CK_SERIAL_HEX_MAX];

	(void)state;
	assert_int_equal(ck_serial_from_hex("0x00ab:CD", &ai), 0);
	assert_int_equal(ASN1_INTEGER_get(ai), 0xabcd);
	assert_int_equal(ck_serial_to_hex(ai, hex), 0);
	assert_string_equal(hex, "ABCD");
	ASN1_INTEGER_free(ai);
	ai = NULL;

	/* A leading zero nibble is never printed. */
	assert_int_equal(ck_serial_from_hex("0fab", &ai), 0);
	assert_int_equal(ASN1_INTEGER_get(ai), 0xfab);
	assert_int_equal(ck_serial_to_hex(ai, hex), 0);
	assert_string_equal(hex, "FAB");
	ASN1_INTEGER_free(ai);
	ai = NULL;

	assert_int_equal(ck_serial_from_hex("1", &ai), 0);
	assert_int_equal(ck_serial_to_hex(ai, hex), 0);
	assert_string_equal(hex, "1");
	ASN1_INTEGER_free(ai);
	ai = NULL;

	assert_int_equal(ck_serial_from_hex("zz", &ai), CK_E_PARSE);
	assert_null(ai);
}

/* ---- key types ---- */

static void
test_key_type_names(void **state)
{
	static const char *const names[] = {
		"rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384",
		"ed25519",
	};
	int i, t;

	(void)state;
	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		t = ck_key_type_parse(names[i]);
		assert_int_equal(t, i);
		assert_string_equal(ck_key_type_name((enum ck_key_type)t),
		    names[i]);
	}
	assert_int_equal(ck_key_type_parse("ec-p256"), CK_KEY_EC_P256);
	assert_int_equal(ck_key_type_parse("ed25519"), CK_KEY_ED25519);
	ck_err_clear();
	assert_int_equal(ck_key_type_parse("rsa1024"), -1);
	assert_contains(ck_err_msg(), "rsa1024");
	assert_contains(ck_err_msg(), "ec-p256");
	assert_int_equal(ck_key_type_parse(""), -1);
	assert_int_equal(ck_key_type_parse("ec-p256 "), -1);
	assert_int_equal(ck_key_type_parse("dsa"), -1);
	assert_string_equal(ck_key_type_name(CK_KEY__MAX), "unknown");
}

static void
describe_is(const char *keytype, const char *want)
{
	EVP_PKEY *k = tu_key(keytype);
	char buf[32];

	memset(buf, 'X', sizeof(buf));
	ck_key_describe(k, buf, sizeof(buf));
	assert_string_equal(buf, want);
	EVP_PKEY_free(k);
}

static void
test_key_describe(void **state)
{
	(void)state;
	describe_is("rsa1024", "rsa1024");
	describe_is("rsa2048", "rsa2048");
	describe_is("ec-p256", "ec-p256");
	describe_is("ec-p384", "ec-p384");
	describe_is("secp256k1", "ec-secp256k1");
	describe_is("ed25519", "ed25519");
	describe_is("ed448", "ed448");
}

static void
test_key_generate(void **state)
{
	EVP_PKEY *k = NULL;
	char buf[32];

	(void)state;
	assert_int_equal(ck_key_generate(CK_KEY_EC_P384, &k), 0);
	ck_key_describe(k, buf, sizeof(buf));
	assert_string_equal(buf, "ec-p384");
	assert_ptr_equal(ck_key_sign_md(k), EVP_sha384());
	EVP_PKEY_free(k);
	k = NULL;
	assert_int_equal(ck_key_generate(CK_KEY_ED25519, &k), 0);
	ck_key_describe(k, buf, sizeof(buf));
	assert_string_equal(buf, "ed25519");
	assert_null(ck_key_sign_md(k));
	EVP_PKEY_free(k);
	k = NULL;
	assert_int_equal(ck_key_generate(CK_KEY_EC_P256, &k), 0);
	assert_ptr_equal(ck_key_sign_md(k), EVP_sha256());
	EVP_PKEY_free(k);
	k = NULL;
	assert_int_equal(ck_key_generate(CK_KEY__MAX, &k), CK_E_INVAL);
	assert_null(k);

	k = tu_key("rsa2048");
	assert_ptr_equal(ck_key_sign_md(k), EVP_sha256());
	EVP_PKEY_free(k);
}

/* ---- key usages ---- */

static void
test_ku_eku_names(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < CK_KU__MAX; i++)
		assert_int_equal(ck_ku_parse(ck_ku_name((enum ck_ku)i)), i);
	assert_string_equal(ck_ku_name(CK_KU_KEY_CERT_SIGN), "keyCertSign");
	assert_string_equal(ck_ku_name(CK_KU_DIGITAL_SIGNATURE),
	    "digitalSignature");
	assert_string_equal(ck_ku_name(CK_KU__MAX), "unknown");
	assert_int_equal(ck_ku_parse("digitalsignature"), -1);
	assert_int_equal(ck_ku_parse(""), -1);

	assert_true(ck_eku_valid("serverAuth"));
	assert_true(ck_eku_valid("OCSPSigning"));
	assert_true(ck_eku_valid("1.3.6.1.5.5.7.3.1"));
	assert_false(ck_eku_valid("serverauth"));
	assert_false(ck_eku_valid("anything"));
	assert_false(ck_eku_valid(""));
	assert_false(ck_eku_valid("1.2.x"));
	assert_false(ck_eku_valid("3.1"));
}

/* ---- CRL reasons ---- */

static void
test_crl_reasons(void **state)
{
	static const char *const names[] = {
		"unspecified", "keyCompromise", "cACompromise",
		"affiliationChanged", "superseded", "cessationOfOperation",
		"certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn",
		"aACompromise",
	};
	int i;

	(void)state;
	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		if (names[i] == NULL) {
			assert_string_equal(ck_crl_reason_name(i), "unknown");
			continue;
		}
		assert_string_equal(ck_crl_reason_name(i), names[i]);
		assert_int_equal(ck_crl_reason_parse(names[i]), i);
	}
	assert_string_equal(ck_crl_reason_name(-1), "unknown");
	assert_string_equal(ck_crl_reason_name(11), "unknown");
	assert_int_equal(ck_crl_reason_parse("unknown"), -1);
	assert_int_equal(ck_crl_reason_parse(""), -1);
	assert_int_equal(ck_crl_reason_parse("key-compromise"), -1);
}

/* ---- builders ---- */

static void
test_cert_build(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256");
	X509_NAME *nm = X509_NAME_new();
	ASN1_INTEGER *serial = NULL;
	struct ck_strlist eku = { 0 };
	struct ck_names sans = { 0 };
	struct ck_cert_template t;
	X509 *x = NULL;
	BASIC_CONSTRAINTS *bc;
	GENERAL_NAMES *gens;
	char hex[CK_SERIAL_HEX_MAX];
	int crit = -1;

	(void)state;
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"leaf.example.com", -1, -1, 0), 1);
	assert_int_equal(ck_serial_random(&serial, hex), 0);
	assert_int_equal(ck_strlist_add(&eku, "serverAuth"), 0);
	assert_int_equal(ck_names_add(&sans, CK_NAME_DNS, "leaf.example.com"),
	    0);
	memset(&t, 0, sizeof(t));
	t.subject = nm;
	t.pubkey = k;
	t.serial = serial;
	t.not_before = 1700000000;
	t.not_after = 1700000000 + 86400;
	t.path_len = -1;
	t.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
	t.eku = &eku;
	t.sans = &sans;
	t.crl_url = "http://ca.example.com/crl/ca.crl";
	assert_int_equal(ck_cert_build(&t, NULL, &x), 0);
	/* Signed, so that OpenSSL computes its extension flags. */
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);

	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), serial),
	    0);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
	GENERAL_NAMES_free(gens);
	assert_true(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) >=
	    0);
	assert_true(X509_get_ext_by_NID(x, NID_subject_key_identifier, -1) >=
	    0);
	X509_free(x);
	x = NULL;

	/* A URL that would change the meaning of the extension config. */
	t.crl_url = "http://a.example/x,URI:http://evil.example/";
	assert_int_equal(ck_cert_build(&t, NULL, &x), CK_E_INVAL);
	assert_null(x);
	t.crl_url = "file:///etc/passwd";
	assert_int_equal(ck_cert_build(&t, NULL, &x), CK_E_INVAL);
	t.crl_url = NULL;

	/* A CA certificate with a path length. */
	t.is_ca = 1;
	t.path_len = 2;
	t.ku = (1u << CK_KU_KEY_CERT_SIGN) | (1u << CK_KU_CRL_SIGN);
	t.eku = NULL;
	t.sans = NULL;
	assert_int_equal(ck_cert_build(&t, NULL, &x), 0);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_int_equal(X509_check_issued(x, x), X509_V_OK);
	assert_true(X509_get_extension_flags(x) & EXFLAG_CA);
	assert_int_equal(X509_get_pathlen(x), 2);
	assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1);
	assert_int_equal(X509_get_ext_by_NID(x, NID_ext_key_usage, -1), -1);
	X509_free(x);

	ck_names_clear(&sans);
	ck_strlist_clear(&eku);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(nm);
	EVP_PKEY_free(k);
}

static void
test_crl_build(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256");
	X509_NAME *nm = X509_NAME_new();
	ASN1_INTEGER *serial = NULL;
	struct ck_cert_template t;
	struct ck_crl_entry ents[2];
	X509 *ca = NULL;
	X509_CRL *crl = NULL;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *num, *s;
	ASN1_ENUMERATED *reason;
	char hex[CK_SERIAL_HEX_MAX];

	(void)state;
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"Test CA", -1, -1, 0), 1);
	assert_int_equal(ck_serial_random(&serial, hex), 0);
	memset(&t, 0, sizeof(t));
	t.subject = nm;
	t.pubkey = k;
	t.serial = serial;
	t.not_before = 1700000000;
	t.not_after = 1800000000;
	t.is_ca = 1;
	t.path_len = -1;
	t.ku = 1u << CK_KU_KEY_CERT_SIGN | 1u << CK_KU_CRL_SIGN;
	assert_int_equal(ck_cert_build(&t, NULL, &ca), 0);

	ents[0].serial_hex = "0A1B2C";
	ents[0].revoked_at = 1700001000;
	ents[0].reason = 1;
	ents[1].serial_hex = "abcdef";
	ents[1].revoked_at = 1700002000;
	ents[1].reason = 0;
	assert_int_equal(ck_crl_build(ca, ents, 2, 42, 1700003000,
	    1700003000 + 3600, &crl), 0);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_non_null(num);
	assert_int_equal(ASN1_INTEGER_get(num), 42);
	ASN1_INTEGER_free(num);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);

	s = ASN1_INTEGER_new();
	assert_int_equal(ASN1_INTEGER_set(s, 0x0a1b2c), 1);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, s), 1);
	reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
	assert_non_null(reason);
	assert_int_equal(ASN1_ENUMERATED_get(reason), 1);
	ASN1_ENUMERATED_free(reason);
	/* "unspecified" is left out, as RFC 5280 recommends. */
	assert_int_equal(ASN1_INTEGER_set(s, 0xabcdef), 1);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, s), 1);
	assert_int_equal(X509_REVOKED_get_ext_by_NID(rev, NID_crl_reason, -1),
	    -1);
	assert_int_equal(ASN1_INTEGER_set(s, 0x1234), 1);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, s), 0);
	ASN1_INTEGER_free(s);
	X509_CRL_free(crl);
	crl = NULL;

	/* A bad serial in the list fails the whole CRL. */
	ents[1].serial_hex = "not hex";
	assert_int_not_equal(ck_crl_build(ca, ents, 2, 43, 1700003000,
	    1700003000 + 3600, &crl), 0);
	assert_null(crl);

	X509_free(ca);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(nm);
	EVP_PKEY_free(k);
}

/* ---- the direct DER writer against the X509-object builder ---- */

/* What ck_cert_build() then setting the signature algorithm gives. */
static void
tbs_reference(const struct ck_cert_template *t, X509 *issuer,
    const unsigned char *aid, size_t aidlen, unsigned char **der, int *len)
{
	const unsigned char *p = aid;
	X509_ALGOR *alg;
	X509 *x = NULL;

	if (ck_cert_build(t, issuer, &x) != 0)
		fail_msg("ck_cert_build: %s", ck_err_msg());
	alg = d2i_X509_ALGOR(NULL, &p, (long)aidlen);
	assert_non_null(alg);
	assert_int_equal(X509_ALGOR_copy((X509_ALGOR *)X509_get0_tbs_sigalg(x),
	    alg), 1);
	X509_ALGOR_free(alg);
	*der = NULL;
	*len = i2d_re_X509_tbs(x, der);
	assert_true(*len > 0);
	X509_free(x);
}

static void
tbs_compare(const struct ck_cert_template *t, X509 *issuer,
    const struct ck_tbs_issuer *iss, const unsigned char *aid, size_t aidlen)
{
	unsigned char *want = NULL, *got = NULL;
	size_t gotlen = 0;
	int wantlen = 0;

	tbs_reference(t, issuer, aid, aidlen, &want, &wantlen);
	if (ck_cert_tbs_der(t, iss, aid, aidlen, &got, &gotlen) != 0)
		fail_msg("ck_cert_tbs_der: %s", ck_err_msg());
	assert_int_equal(gotlen, (size_t)wantlen);
	assert_memory_equal(got, want, gotlen);
	OPENSSL_free(want);
	OPENSSL_free(got);
}

static void
test_cert_tbs_der(void **state)
{
	static const char *const keys[] = { "ec-p256", "ec-p384", "rsa2048",
		"ed25519" };
	static const struct tu_csr csr_opts[] = {
		{ .subject = "CN=leaf.example.com,O=Example Ltd,C=DE",
		  .san = "DNS:leaf.example.com" },
		{ .subject = NULL, .san = "DNS:a.example.com" },
		{ .subject = "CN=x" },
	};
	static const unsigned char aid_p256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a,
		0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	static const unsigned char aid_rsa[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a,
		0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00 };
	static const int64_t times[][2] = {
		{ 1700000000, 1700000000 + 90 * 86400 },
		{ -631152000 + 1, 2524607999 },	/* 1950 .. 2049 */
		{ 1700000000, 2524608000 },	/* GeneralizedTime: 2050 */
		{ 1700000000, 4102444800 },	/* 2100 */
	};
	EVP_PKEY *cak = tu_key("ec-p256");
	X509_NAME *canm = X509_NAME_new();
	ASN1_INTEGER *serial = NULL;
	struct ck_cert_template t;
	struct ck_tbs_issuer iss;
	struct ck_strlist eku = { 0 }, eku2 = { 0 };
	struct ck_names sans = { 0 }, many = { 0 };
	char hex[CK_SERIAL_HEX_MAX], nm[64];
	X509 *ca = NULL;
	size_t ki, ci, ti, i;
	unsigned ku;

	(void)state;
	/* The issuing CA, as ck_ca_init makes one. */
	assert_int_equal(X509_NAME_add_entry_by_txt(canm, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"Test CA \xc3\xa9", -1, -1, 0), 1);
	assert_int_equal(ck_serial_random(&serial, hex), 0);
	memset(&t, 0, sizeof(t));
	t.subject = canm;
	t.pubkey = cak;
	t.serial = serial;
	t.not_before = 1600000000;
	t.not_after = 4102444800;
	t.is_ca = 1;
	t.path_len = -1;
	t.ku = 1u << CK_KU_KEY_CERT_SIGN | 1u << CK_KU_CRL_SIGN;
	assert_int_equal(ck_cert_build(&t, NULL, &ca), 0);
	assert_true(X509_sign(ca, cak, EVP_sha256()) > 0);
	assert_int_equal(ck_tbs_issuer_init(&iss, ca), 0);

	assert_int_equal(ck_strlist_add(&eku, "serverAuth"), 0);
	assert_int_equal(ck_strlist_add(&eku, "clientAuth"), 0);
	assert_int_equal(ck_strlist_add(&eku2, "codeSigning"), 0);
	assert_int_equal(ck_strlist_add(&eku2, "emailProtection"), 0);
	assert_int_equal(ck_strlist_add(&eku2, "timeStamping"), 0);
	assert_int_equal(ck_strlist_add(&eku2, "OCSPSigning"), 0);
	assert_int_equal(ck_strlist_add(&eku2, "1.3.6.1.4.1.99999.1.2"), 0);
	assert_int_equal(ck_names_add(&sans, CK_NAME_DNS, "leaf.example.com"),
	    0);
	assert_int_equal(ck_names_add(&sans, CK_NAME_DNS, "*.example.com"), 0);
	assert_int_equal(ck_names_add(&sans, CK_NAME_IP, "192.0.2.7"), 0);
	assert_int_equal(ck_names_add(&sans, CK_NAME_IP, "2001:db8::1"), 0);
	assert_int_equal(ck_names_add(&sans, CK_NAME_EMAIL, "a@example.com"),
	    0);
	assert_int_equal(ck_names_add(&sans, CK_NAME_URI,
	    "https://example.com/x"), 0);
	/* Enough names that the lengths need more than one octet. */
	for (i = 0; i < 300; i++) {
		snprintf(nm, sizeof(nm), "host-%zu.long-name.example.com", i);
		assert_int_equal(ck_names_add(&many, CK_NAME_DNS, nm), 0);
	}

	for (ki = 0; ki < sizeof(keys) / sizeof(keys[0]); ki++)
		for (ci = 0; ci < sizeof(csr_opts) / sizeof(csr_opts[0]);
		    ci++) {
			EVP_PKEY *k = tu_key(keys[ki]);
			unsigned char *buf = NULL;
			size_t len = 0;
			struct ck_csr *csr = NULL;

			tu_csr_make(k, &csr_opts[ci], &buf, &len);
			csr = parse_ok(buf, len);
			memset(&t, 0, sizeof(t));
			t.subject = csr->subject;
			t.pubkey = csr->pubkey;
			t.spki_alg = csr->spki_alg;
			t.spki_key = csr->spki_key;
			t.spki_der = csr->spki_der;
			t.spki_der_len = csr->spki_der_len;
			t.serial = serial;
			for (ti = 0; ti < sizeof(times) / sizeof(times[0]);
			    ti++) {
				t.not_before = times[ti][0];
				t.not_after = times[ti][1];
				t.path_len = -1;
				t.is_ca = 0;
				t.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
				t.eku = &eku;
				t.sans = &csr->names;
				t.crl_url = "http://ca.example.com/crl/ca.crl";
				t.ocsp_url = "http://ca.example.com/ocsp";
				t.issuer_url = "http://ca.example.com/ca.pem";
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
				tbs_compare(&t, ca, &iss, aid_rsa,
				    sizeof(aid_rsa));
				t.sans = &sans;
				t.eku = &eku2;
				t.ocsp_url = NULL;
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
				t.ocsp_url = "http://ca.example.com/ocsp";
				t.issuer_url = "";
				t.crl_url = NULL;
				t.sans = &many;
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
				t.sans = NULL;
				t.eku = NULL;
				t.ocsp_url = NULL;
				for (ku = 1; ku < (1u << CK_KU__MAX);
				    ku = ku * 3 + 1) {
					t.ku = ku;
					tbs_compare(&t, ca, &iss, aid_p256,
					    sizeof(aid_p256));
				}
				t.ku = 0;
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
				t.is_ca = 1;
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
				t.path_len = 0;
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
				t.path_len = 200;
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
				t.path_len = 1000;
				tbs_compare(&t, ca, &iss, aid_p256,
				    sizeof(aid_p256));
			}
			/* Refused as the X509 builder refuses them. */
			{
				unsigned char *out = NULL;
				size_t outlen = 0;
				t.crl_url = "http://a.example/x,URI:http://e/";
				assert_int_equal(ck_cert_tbs_der(&t, &iss,
				    aid_p256, sizeof(aid_p256), &out, &outlen),
				    CK_E_INVAL);
				t.crl_url = NULL;
				t.ocsp_url = "file:///etc/passwd";
				assert_int_equal(ck_cert_tbs_der(&t, &iss,
				    aid_p256, sizeof(aid_p256), &out, &outlen),
				    CK_E_INVAL);
				t.ocsp_url = NULL;
				t.eku = &eku;
				assert_int_equal(ck_strlist_add(&eku, "1..2"),
				    0);
				assert_int_equal(ck_cert_tbs_der(&t, &iss,
				    aid_p256, sizeof(aid_p256), &out, &outlen),
				    CK_E_INVAL);
				ck_strlist_clear(&eku);
				assert_int_equal(ck_strlist_add(&eku,
				    "serverAuth"), 0);
				assert_int_equal(ck_strlist_add(&eku,
				    "clientAuth"), 0);
				t.eku = NULL;
				t.spki_der = NULL;
				assert_int_equal(ck_cert_tbs_der(&t, &iss,
				    aid_p256, sizeof(aid_p256), &out, &outlen),
				    CK_E_INVAL);
				assert_null(out);
			}
			ck_csr_free(csr);
			free(buf);
			EVP_PKEY_free(k);
		}
	ck_tbs_issuer_clear(&iss);
	ck_tbs_issuer_clear(&iss);
	ck_names_clear(&sans);
	ck_names_clear(&many);
	ck_strlist_clear(&eku);
	ck_strlist_clear(&eku2);
	X509_free(ca);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(canm);
	EVP_PKEY_free(cak);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_ec_pem),
		cmocka_unit_test(test_csr_pem_layouts),
		cmocka_unit_test(test_csr_ec_der),
		cmocka_unit_test(test_csr_rsa),
		cmocka_unit_test(test_csr_ed25519),
		cmocka_unit_test(test_csr_other_keys_described),
		cmocka_unit_test(test_csr_minimal),
		cmocka_unit_test(test_csr_basic_constraints_leaf),
		cmocka_unit_test(test_csr_other_extensions),
		cmocka_unit_test(test_csr_bad_signature),
		cmocka_unit_test(test_csr_altered_content),
		cmocka_unit_test(test_csr_truncated),
		cmocka_unit_test(test_csr_trailing_junk),
		cmocka_unit_test(test_csr_weak_signature),
		cmocka_unit_test(test_csr_garbage),
		cmocka_unit_test(test_csr_pem_encrypted_header_no_prompt),
		cmocka_unit_test(test_csr_oversize),
		cmocka_unit_test(test_csr_certificate_is_not_a_request),
		cmocka_unit_test(test_csr_subject_ber),
		cmocka_unit_test(test_dns_name_valid),
		cmocka_unit_test(test_email_valid),
		cmocka_unit_test(test_ip_parse),
		cmocka_unit_test(test_ip_canon),
		cmocka_unit_test(test_ip_ranges),
		cmocka_unit_test(test_ip_ranges_bad),
		cmocka_unit_test(test_names_general_round_trip),
		cmocka_unit_test(test_names_add_too_long),
		cmocka_unit_test(test_names_from_general_unsupported),
		cmocka_unit_test(test_serial_random),
		cmocka_unit_test(test_serial_normalize),
		cmocka_unit_test(test_serial_hex_round_trip),
		cmocka_unit_test(test_key_type_names),
		cmocka_unit_test(test_key_describe),
		cmocka_unit_test(test_key_generate),
		cmocka_unit_test(test_ku_eku_names),
		cmocka_unit_test(test_crl_reasons),
		cmocka_unit_test(test_cert_build),
		cmocka_unit_test(test_crl_build),
		cmocka_unit_test(test_cert_tbs_der),
	};
	int r;

	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_keys_free();
	return r;
}
