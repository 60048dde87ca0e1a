/*
 * test_jws.c - src/proto/jws: base64url, JWKs and thumbprints, ACME
 * request bodies signed here with OpenSSL (ES256, ES384, ES512, RS256,
 * EdDSA) and checked, everything RFC 8555 6.2 says to refuse, and the
 * external account binding.
 *
 * The requests are built by this file's own helpers (its own base64url,
 * its own JWKs from OpenSSL's key parameters), not by the code under
 * test, so that a bug on both sides cannot cancel out.
 *
 * With CK_JWS_CORPUS_DIR set, the program instead writes the fuzz seed
 * corpus (valid requests of each algorithm and malformed ones) into that
 * directory: CK_JWS_CORPUS_DIR=tests/fuzz/corpus/jws build/tests/unit/test_jws
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <jansson.h>

#include "common/err.h"
#include "proto/jws.h"

#define MAX_BODY 65536
#define NONCE "Y2VydGtlZXAtbm9uY2UtMDE"
#define URL_NEWACCT "https://ca.example/acme/new-account"
#define URL_ORDER "https://ca.example/acme/new-order"
#define KID "https://ca.example/acme/acct/1"
/* The EAB key the fuzz target also uses, so that its seed verifies. */
#define EAB_KEY "certkeep-fuzz-eab-hmac-key-0123456789"
#define EAB_KID "eab-key-1"

/* ------------------------------------------------- the test's own JOSE */

/* base64url through OpenSSL's base64, independent of ck_jws_b64url_*. */
static char *
t_b64(const void *in, size_t n)
{
	char *s = malloc(4 * (n / 3 + 2) + 1), *p, *q;

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, in, (int)n);
	for (p = q = s; *p != '\0'; p++) {
		if (*p == '=')
			continue;
		*q++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	}
	*q = '\0';
	return s;
}

static char *
t_b64s(const char *s)
{
	return t_b64(s, strlen(s));
}

static char *
t_bn_b64(const BIGNUM *bn, size_t len)
{
	unsigned char buf[1100];
	size_t n = len != 0 ? len : (size_t)BN_num_bytes(bn);

	assert_true(n <= sizeof(buf));
	assert_int_equal(BN_bn2binpad(bn, buf, (int)n), (int)n);
	return t_b64(buf, n);
}

static const char *
t_crv(EVP_PKEY *k, size_t *clen)
{
	char name[64];
	size_t len;

	assert_true(EVP_PKEY_get_group_name(k, name, sizeof(name), &len));
	if (strcmp(name, "prime256v1") == 0) {
		*clen = 32;
		return "P-256";
	}
	if (strcmp(name, "secp384r1") == 0) {
		*clen = 48;
		return "P-384";
	}
	if (strcmp(name, "secp521r1") == 0) {
		*clen = 66;
		return "P-521";
	}
	*clen = 32;
	return "secp256k1";
}

/*
 * The public JWK of k with its members in a non-canonical order, plus
 * `extra` (e.g. ",\"d\":\"AAAA\"") before the closing brace.
 */
static char *
t_jwk(EVP_PKEY *k, const char *extra)
{
	unsigned char buf[200];
	size_t len = 0, clen;
	BIGNUM *n = NULL, *e = NULL;
	char *a, *b, *s = NULL;
	const char *crv;

	if (extra == NULL)
		extra = "";
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC:
		crv = t_crv(k, &clen);
		assert_true(EVP_PKEY_get_octet_string_param(k,
		    OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof(buf), &len));
		assert_int_equal(len, 1 + 2 * clen);
		assert_int_equal(buf[0], 4);
		a = t_b64(buf + 1, clen);
		b = t_b64(buf + 1 + clen, clen);
		assert_true(asprintf(&s, "{\"kty\":\"EC\",\"x\":\"%s\","
		    "\"y\":\"%s\",\"crv\":\"%s\",\"use\":\"sig\"%s}", a, b, crv,
		    extra) > 0);
		free(a);
		free(b);
		break;
	case EVP_PKEY_RSA:
		assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n));
		assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e));
		a = t_bn_b64(n, 0);
		b = t_bn_b64(e, 0);
		assert_true(asprintf(&s, "{\"n\":\"%s\",\"kty\":\"RSA\","
		    "\"e\":\"%s\"%s}", a, b, extra) > 0);
		free(a);
		free(b);
		BN_free(n);
		BN_free(e);
		break;
	case EVP_PKEY_ED25519:
		len = sizeof(buf);
		assert_true(EVP_PKEY_get_raw_public_key(k, buf, &len));
		a = t_b64(buf, len);
		assert_true(asprintf(&s, "{\"x\":\"%s\",\"kty\":\"OKP\","
		    "\"crv\":\"Ed25519\"%s}", a, extra) > 0);
		free(a);
		break;
	default:
		fail_msg("no JWK for this key type");
	}
	return s;
}

/* Sign msg with k as alg wants it: ECDSA as R||S, others as OpenSSL
 * gives them. */
static unsigned char *
t_sign(EVP_PKEY *k, const char *alg, const void *msg, size_t len,
    size_t *siglen)
{
	const EVP_MD *md = NULL;
	unsigned char *sig, *raw;
	const unsigned char *p;
	EVP_MD_CTX *ctx;
	size_t n = 0, half = 0;
	ECDSA_SIG *es;

	if (strcmp(alg, "ES256") == 0 || strcmp(alg, "RS256") == 0)
		md = EVP_sha256();
	else if (strcmp(alg, "ES384") == 0)
		md = EVP_sha384();
	else if (strcmp(alg, "ES512") == 0)
		md = EVP_sha512();
	if (strncmp(alg, "ES", 2) == 0)
		half = strcmp(alg, "ES256") == 0 ? 32 :
		    strcmp(alg, "ES384") == 0 ? 48 : 66;
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, &n, msg, len), 1);
	assert_non_null(sig = malloc(n));
	assert_int_equal(EVP_DigestSign(ctx, sig, &n, msg, len), 1);
	EVP_MD_CTX_free(ctx);
	if (half == 0) {
		*siglen = n;
		return sig;
	}
	p = sig;
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)n));
	assert_non_null(raw = malloc(2 * half));
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)half),
	    (int)half);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + half,
	    (int)half), (int)half);
	ECDSA_SIG_free(es);
	free(sig);
	*siglen = 2 * half;
	return raw;
}

/* A protected header; NULL members are left out, `jwk` is JSON. */
static char *
t_hdr(const char *alg, const char *nonce, const char *url, const char *kid,
    const char *jwk, const char *extra)
{
	char *s = NULL;

	assert_true(asprintf(&s, "{%s%s%s" "%s%s%s" "%s%s%s" "%s%s%s"
	    "%s%s%s" "%s}",
	    alg ? "\"alg\":\"" : "", alg ? alg : "", alg ? "\"," : "",
	    nonce ? "\"nonce\":\"" : "", nonce ? nonce : "",
	    nonce ? "\"," : "",
	    url ? "\"url\":\"" : "", url ? url : "", url ? "\"," : "",
	    kid ? "\"kid\":\"" : "", kid ? kid : "", kid ? "\"," : "",
	    jwk ? "\"jwk\":" : "", jwk ? jwk : "", jwk ? "," : "",
	    extra ? extra : "\"typ\":\"x\"") > 0);
	return s;
}

/*
 * A flattened JWS of hdr and payload (NULL: empty, POST-as-GET) signed
 * with k as alg (k NULL: HMAC with EAB_KEY, alg HS*).
 */
static char *
t_jws(const char *hdr, const char *payload, EVP_PKEY *k, const char *alg)
{
	char *p64 = t_b64s(hdr), *pl64 = t_b64s(payload ? payload : "");
	char *input = NULL, *s64, *body = NULL;
	unsigned char *sig, mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t siglen;

	assert_true(asprintf(&input, "%s.%s", p64, pl64) > 0);
	if (k != NULL) {
		sig = t_sign(k, alg, input, strlen(input), &siglen);
		s64 = t_b64(sig, siglen);
		free(sig);
	} else {
		assert_non_null(HMAC(strcmp(alg, "HS384") == 0 ? EVP_sha384() :
		    strcmp(alg, "HS512") == 0 ? EVP_sha512() : EVP_sha256(),
		    EAB_KEY, (int)strlen(EAB_KEY),
		    (unsigned char *)input, strlen(input), mac, &maclen));
		s64 = t_b64(mac, maclen);
	}
	assert_true(asprintf(&body, "{\"protected\":\"%s\",\"payload\":\"%s\","
	    "\"signature\":\"%s\"}", p64, pl64, s64) > 0);
	free(p64);
	free(pl64);
	free(input);
	free(s64);
	return body;
}

/* A request signed by k with its jwk in the header. */
static char *
t_req_jwk(EVP_PKEY *k, const char *alg, const char *payload)
{
	char *jwk = t_jwk(k, NULL), *hdr, *body;

	hdr = t_hdr(alg, NONCE, URL_NEWACCT, NULL, jwk, NULL);
	body = t_jws(hdr, payload, k, alg);
	free(jwk);
	free(hdr);
	return body;
}

static int
t_parse(const char *body, unsigned int flags, struct ck_jws **out)
{
	return ck_jws_parse((const unsigned char *)body, strlen(body),
	    MAX_BODY, flags, out);
}

/* Parse hdr+payload signed by k: expect `want` from the parser. */
static void
t_expect_parse(const char *hdr, const char *payload, EVP_PKEY *k,
    const char *alg, int want, const char *msg_part)
{
	struct ck_jws *j = (struct ck_jws *)1;
	char *body = t_jws(hdr, payload, k, alg);

	assert_int_equal(t_parse(body, 0, &j), want);
	if (want != 0) {
		assert_null(j);
		if (msg_part != NULL)
			assert_contains(ck_err_msg(), msg_part);
	}
	ck_jws_free(j);
	free(body);
}

/* testutil has no P-521 key; one is made here once (a new reference). */
static EVP_PKEY *p521_key;

static EVP_PKEY *
t_p521(void)
{
	if (p521_key == NULL)
		assert_non_null(p521_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
		    "P-521"));
	assert_int_equal(EVP_PKEY_up_ref(p521_key), 1);
	return p521_key;
}

/* The JWK of an EC key with y changed in one bit: off the curve. */
static char *
t_jwk_offcurve(EVP_PKEY *k)
{
	unsigned char buf[200];
	size_t len = sizeof(buf), clen;
	const char *crv = t_crv(k, &clen);
	char *x, *y, *s = NULL;

	assert_true(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
	    buf, sizeof(buf), &len));
	buf[len - 1] ^= 1;
	x = t_b64(buf + 1, clen);
	y = t_b64(buf + 1 + clen, clen);
	assert_true(asprintf(&s, "{\"kty\":\"EC\",\"crv\":\"%s\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", crv, x, y) > 0);
	free(x);
	free(y);
	return s;
}

/* ---------------------------------------------------------- base64url */

static void
test_b64url(void **state)
{
	static const struct {
		const char *bin;
		size_t len;
		const char *text;
	} v[] = {
		{ "", 0, "" }, { "f", 1, "Zg" }, { "fo", 2, "Zm8" },
		{ "foo", 3, "Zm9v" }, { "foob", 4, "Zm9vYg" },
		{ "\xfb\xff", 2, "-_8" }, { "\xff\xff\xfe", 3, "___-" },
	};
	static const char *const bad[] = {
		"Zg==", "Zm8=", "Zg=", "Z", "Zm9vY", "Zm9v+", "Zm9v/w", "Zm 9v",
		"Zh", "Zm9", "Zm-", "AB", "Zm9v\n", "A", "Zm9vA", "AAAAA",
	};
	unsigned char *out, bin[256];
	char text[400];
	size_t i, n, len;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(ck_jws_b64url_len(v[i].len),
		    strlen(v[i].text));
		ck_jws_b64url_encode((const unsigned char *)v[i].bin, v[i].len,
		    text);
		assert_string_equal(text, v[i].text);
		assert_int_equal(ck_jws_b64url_decode(v[i].text,
		    strlen(v[i].text), "t", &out, &len), 0);
		assert_int_equal(len, v[i].len);
		assert_memory_equal(out, v[i].bin, len);
		assert_int_equal(out[len], 0);
		free(out);
	}
	/* Every length and every byte value round-trips. */
	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(255 - i);
	for (n = 0; n <= sizeof(bin); n++) {
		ck_jws_b64url_encode(bin, n, text);
		assert_int_equal(strlen(text), ck_jws_b64url_len(n));
		assert_int_equal(ck_jws_b64url_decode(text, strlen(text), "t",
		    &out, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(out, bin, n);
		free(out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = NULL;
		assert_int_equal(ck_jws_b64url_decode(bad[i], strlen(bad[i]),
		    "the thing", &out, &len), CK_JWS_E_MALFORMED);
		assert_null(out);
		assert_contains(ck_err_msg(), "the thing");
	}
	assert_int_equal(ck_jws_b64url_decode("Zg==", 4, "x", &out, &len),
	    CK_JWS_E_MALFORMED);
	assert_contains(ck_err_msg(), "padding");
	assert_int_equal(ck_jws_b64url_decode("Zh", 2, "x", &out, &len),
	    CK_JWS_E_MALFORMED);
	assert_contains(ck_err_msg(), "unused bits");
}

/* ------------------------------------------------------------- JWK */

static void
test_thumbprint_rfc7638(void **state)
{
	/* RFC 7638 section 3.1, with its "alg" and "kid" members. */
	static const char jwk[] =
	    "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2"
	    "aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjB"
	    "ZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ"
	    "5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvR"
	    "L5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3X"
	    "PksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\","
	    "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
	char tp[CK_JWK_THUMBPRINT_LEN + 1], *canon = NULL;
	EVP_PKEY *k = NULL;

	(void)state;
	assert_int_equal(ck_jwk_parse_text(jwk, strlen(jwk), &k), 0);
	assert_int_equal(EVP_PKEY_get_bits(k), 2048);
	assert_int_equal(ck_jwk_thumbprint(k, tp), 0);
	assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	assert_int_equal(ck_jwk_canonical(k, &canon), 0);
	assert_true(strncmp(canon, "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":"
	    "\"0vx7ago", 36) == 0);
	assert_true(strcmp(canon + strlen(canon) - 8, "qDKgw\"}") == 0 ||
	    strcmp(canon + strlen(canon) - 7, "qDKgw\"}") == 0);
	free(canon);
	EVP_PKEY_free(k);
}

/* The canonical form and thumbprint of every key type, the thumbprint
 * checked against one the test computes itself. */
static void
test_jwk_canonical(void **state)
{
	const char *types[] = { "ec-p256", "ec-p384", "rsa2048", "ed25519" };
	char tp[CK_JWK_THUMBPRINT_LEN + 1], tp2[CK_JWK_THUMBPRINT_LEN + 1];
	char *jwk, *canon, *want = NULL, *a, *b;
	unsigned char buf[200], md[32];
	EVP_PKEY *k, *p, *q;
	size_t i, len;

	(void)state;
	for (i = 0; i <= sizeof(types) / sizeof(types[0]); i++) {
		k = i < sizeof(types) / sizeof(types[0]) ? tu_key(types[i]) :
		    t_p521();
		jwk = t_jwk(k, NULL);
		assert_int_equal(ck_jwk_parse_text(jwk, strlen(jwk), &p), 0);
		assert_true(ck_jwk_equal(p, k));
		assert_int_equal(ck_jwk_canonical(p, &canon), 0);
		/* Canonical text parses back to the same key. */
		assert_int_equal(ck_jwk_parse_text(canon, strlen(canon), &q), 0);
		assert_true(ck_jwk_equal(p, q));
		/* Thumbprints agree between the private key, the parsed JWK
		 * and its canonical form. */
		assert_int_equal(ck_jwk_thumbprint(k, tp), 0);
		assert_int_equal(ck_jwk_thumbprint(q, tp2), 0);
		assert_string_equal(tp, tp2);
		assert_int_equal(strlen(tp), CK_JWK_THUMBPRINT_LEN);
		EVP_PKEY_free(q);
		EVP_PKEY_free(p);
		free(canon);
		free(jwk);
		EVP_PKEY_free(k);
	}

	/* P-256 by hand: members in order, no white space, SHA-256. */
	k = tu_key("ec-p256");
	len = sizeof(buf);
	assert_true(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
	    buf, sizeof(buf), &len));
	a = t_b64(buf + 1, 32);
	b = t_b64(buf + 33, 32);
	assert_true(asprintf(&want, "{\"crv\":\"P-256\",\"kty\":\"EC\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", a, b) > 0);
	assert_int_equal(ck_jwk_canonical(k, &canon), 0);
	assert_string_equal(canon, want);
	SHA256((unsigned char *)want, strlen(want), md);
	free(a);
	a = t_b64(md, sizeof(md));
	assert_int_equal(ck_jwk_thumbprint(k, tp), 0);
	assert_string_equal(tp, a);
	free(a);
	free(b);
	free(want);
	free(canon);

	/* Two different keys are not equal, nor are their thumbprints. */
	p = tu_key_new("ec-p256");
	assert_false(ck_jwk_equal(k, p));
	assert_int_equal(ck_jwk_thumbprint(p, tp2), 0);
	assert_string_not_equal(tp, tp2);
	assert_false(ck_jwk_equal(k, NULL));
	q = tu_key("ed25519");
	assert_false(ck_jwk_equal(k, q));
	/* Keys outside the supported set have no canonical form. */
	EVP_PKEY_free(q);
	q = tu_key("ed448");
	assert_int_equal(ck_jwk_canonical(q, &canon), CK_JWS_E_BADKEY);
	assert_null(canon);
	EVP_PKEY_free(q);
	q = tu_key("secp256k1");
	assert_int_equal(ck_jwk_thumbprint(q, tp2), CK_JWS_E_BADKEY);
	EVP_PKEY_free(q);
	EVP_PKEY_free(p);
	EVP_PKEY_free(k);
}

static void
expect_jwk(const char *jwk, int want, const char *msg_part)
{
	EVP_PKEY *k = (EVP_PKEY *)1;

	assert_int_equal(ck_jwk_parse_text(jwk, strlen(jwk), &k), want);
	assert_null(k);
	if (msg_part != NULL)
		assert_contains(ck_err_msg(), msg_part);
}

static void
test_jwk_refused(void **state)
{
	unsigned char buf[200], nb[257];
	char *jwk, *a, *b, *s;
	EVP_PKEY *k, *q;
	BIGNUM *n = NULL;
	size_t len;

	(void)state;
	/* Private members of each key type. */
	k = tu_key("ec-p256");
	jwk = t_jwk(k, ",\"d\":\"AAAA\"");
	expect_jwk(jwk, CK_JWS_E_BADKEY, "private");
	free(jwk);
	EVP_PKEY_free(k);
	k = tu_key("rsa2048");
	jwk = t_jwk(k, ",\"p\":\"AAAA\",\"q\":\"AAAA\"");
	expect_jwk(jwk, CK_JWS_E_BADKEY, "private");
	free(jwk);
	/* ... and the same key without them parses (the refusal is the
	 * member); unknown public members are ignored. */
	jwk = t_jwk(k, ",\"kid\":\"x\",\"alg\":\"RS256\"");
	assert_int_equal(ck_jwk_parse_text(jwk, strlen(jwk), &q), 0);
	assert_true(ck_jwk_equal(q, k));
	EVP_PKEY_free(q);
	free(jwk);
	EVP_PKEY_free(k);
	k = tu_key("ed25519");
	jwk = t_jwk(k, ",\"d\":\"AAAA\"");
	expect_jwk(jwk, CK_JWS_E_BADKEY, "\"d\"");
	free(jwk);
	EVP_PKEY_free(k);

	/* RSA: 1024 bits, leading zero, even modulus, bad exponents. */
	k = tu_key("rsa1024");
	jwk = t_jwk(k, NULL);
	expect_jwk(jwk, CK_JWS_E_BADKEY, "2048");
	free(jwk);
	EVP_PKEY_free(k);
	k = tu_key("rsa2048");
	assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n));
	assert_int_equal(BN_bn2binpad(n, nb, 257), 257);
	assert_int_equal(nb[0], 0);
	b = t_b64(nb, 257);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"AQAB\","
	    "\"n\":\"%s\"}", b) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "leading zero");
	free(s);
	free(b);
	nb[256] ^= 1;	/* even */
	b = t_b64(nb + 1, 256);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"AQAB\","
	    "\"n\":\"%s\"}", b) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "even");
	free(s);
	free(b);
	nb[256] ^= 1;
	b = t_b64(nb + 1, 256);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"AQ\","
	    "\"n\":\"%s\"}", b) > 0);	/* e = 1 */
	expect_jwk(s, CK_JWS_E_BADKEY, "exponent");
	free(s);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"AQAA\","
	    "\"n\":\"%s\"}", b) > 0);	/* e = 65536 */
	expect_jwk(s, CK_JWS_E_BADKEY, "exponent");
	free(s);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\","
	    "\"e\":\"AQAAAAAAAAAB\",\"n\":\"%s\"}", b) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "exponent");	/* 9 bytes */
	free(s);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"Aw\","
	    "\"n\":\"%s\"}", b) > 0);	/* e = 3 is fine */
	assert_int_equal(ck_jwk_parse_text(s, strlen(s), &q), 0);
	EVP_PKEY_free(q);
	free(s);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"AQAB\","
	    "\"n\":\"%.340s\"}", b) > 0);	/* 255 bytes: 2040 bits */
	expect_jwk(s, CK_JWS_E_BADKEY, "2040 bits");
	free(s);
	free(b);
	nb[1] = 0x7f;		/* 256 bytes, 2047 bits */
	b = t_b64(nb + 1, 256);
	assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"AQAB\","
	    "\"n\":\"%s\"}", b) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "2047 bits");
	free(s);
	free(b);
	{
		/* 8200 bits: 1025 bytes of 0xff. */
		unsigned char big[1025];

		memset(big, 0xff, sizeof(big));
		b = t_b64(big, sizeof(big));
		assert_true(asprintf(&s, "{\"kty\":\"RSA\",\"e\":\"AQAB\","
		    "\"n\":\"%s\"}", b) > 0);
		expect_jwk(s, CK_JWS_E_BADKEY, "over 8192");
		free(s);
		free(b);
	}
	BN_free(n);
	EVP_PKEY_free(k);

	/* EC: the point moved off the curve, short and long coordinates,
	 * curves we do not take. */
	k = tu_key("ec-p256");
	len = sizeof(buf);
	assert_true(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
	    buf, sizeof(buf), &len));
	buf[64] ^= 1;
	a = t_b64(buf + 1, 32);
	b = t_b64(buf + 33, 32);
	assert_true(asprintf(&s, "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", a, b) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "not a point on P-256");
	free(s);
	q = tu_key("ec-p384");
	s = t_jwk_offcurve(q);
	expect_jwk(s, CK_JWS_E_BADKEY, "P-384");
	free(s);
	EVP_PKEY_free(q);
	q = t_p521();
	s = t_jwk_offcurve(q);
	expect_jwk(s, CK_JWS_E_BADKEY, "P-521");
	free(s);
	EVP_PKEY_free(q);
	free(b);
	buf[64] ^= 1;
	b = t_b64(buf + 33, 32);
	assert_true(asprintf(&s, "{\"kty\":\"EC\",\"crv\":\"P-384\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", a, b) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "48 bytes");
	free(s);
	assert_true(asprintf(&s, "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", a, b) > 0);
	assert_int_equal(ck_jwk_parse_text(s, strlen(s), &q), 0);
	assert_true(ck_jwk_equal(q, k));
	EVP_PKEY_free(q);
	EVP_PKEY_free(k);
	free(s);
	free(a);
	a = t_b64(buf + 2, 31);
	assert_true(asprintf(&s, "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", a, b) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "x has 31");
	free(s);
	free(a);
	free(b);
	k = tu_key("secp256k1");
	jwk = t_jwk(k, NULL);
	expect_jwk(jwk, CK_JWS_E_BADKEY, "secp256k1");
	free(jwk);
	EVP_PKEY_free(k);
	k = tu_key("ed448");
	len = sizeof(buf);
	assert_true(EVP_PKEY_get_raw_public_key(k, buf, &len));
	a = t_b64(buf, len);
	assert_true(asprintf(&s, "{\"kty\":\"OKP\",\"crv\":\"Ed448\","
	    "\"x\":\"%s\"}", a) > 0);
	expect_jwk(s, CK_JWS_E_BADKEY, "Ed448");
	free(s);
	assert_true(asprintf(&s, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"x\":\"%s\"}", a) > 0);	/* 57 bytes */
	expect_jwk(s, CK_JWS_E_BADKEY, "32 bytes");
	free(s);
	free(a);
	EVP_PKEY_free(k);

	/* Shapes. */
	expect_jwk("{\"kty\":\"oct\",\"k\":\"AAAA\"}", CK_JWS_E_BADKEY, NULL);
	expect_jwk("{\"kty\":\"oct\"}", CK_JWS_E_BADKEY, "oct");
	expect_jwk("{\"crv\":\"P-256\"}", CK_JWS_E_MALFORMED, "kty");
	expect_jwk("{\"kty\":1}", CK_JWS_E_MALFORMED, "not a string");
	expect_jwk("[1]", CK_JWS_E_MALFORMED, "object");
	expect_jwk("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\"}",
	    CK_JWS_E_MALFORMED, "\"y\"");
	expect_jwk("{\"kty\":\"EC\",\"kty\":\"EC\"}", CK_JWS_E_MALFORMED,
	    "duplicate");
	expect_jwk("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA==\"}",
	    CK_JWS_E_MALFORMED, "padding");
	{
		/* A JSON object built by a caller may hold a NUL in a
		 * string; it must not cut the string short. */
		json_t *o = json_pack("{s:s%}", "kty", "OKP\0x", (size_t)5);

		assert_non_null(o);
		k = (EVP_PKEY *)1;
		assert_int_equal(ck_jwk_parse(o, &k), CK_JWS_E_MALFORMED);
		assert_null(k);
		assert_contains(ck_err_msg(), "NUL");
		json_decref(o);
	}
}

/* -------------------------------------------------- request round trips */

static void
round_trip(EVP_PKEY *k, const char *alg, enum ck_jws_alg want_alg)
{
	static const char payload[] =
	    "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]}";
	char *body, *hdr;
	struct ck_jws *j = NULL;

	/* With the key in the header, as in newAccount. */
	body = t_req_jwk(k, alg, payload);
	assert_int_equal(t_parse(body, 0, &j), 0);
	assert_int_equal(j->alg, want_alg);
	assert_string_equal(ck_jws_alg_name(j->alg), alg);
	assert_string_equal(j->nonce, NONCE);
	assert_string_equal(j->url, URL_NEWACCT);
	assert_null(j->kid);
	assert_non_null(j->jwk);
	assert_true(ck_jwk_equal(j->jwk, k));
	assert_int_equal(j->payload_len, strlen(payload));
	assert_memory_equal(j->payload, payload, j->payload_len);
	assert_int_equal(j->payload[j->payload_len], 0);
	assert_int_equal(strlen(j->signing_input), j->signing_input_len);
	assert_non_null(strchr(j->signing_input, '.'));
	assert_int_equal(ck_jws_verify(j, j->jwk), 0);
	assert_int_equal(ck_jws_verify(j, k), 0);
	ck_jws_free(j);
	free(body);

	/* By account URL, as every later request; and POST-as-GET. */
	hdr = t_hdr(alg, NONCE, URL_ORDER, KID, NULL, NULL);
	body = t_jws(hdr, NULL, k, alg);
	assert_int_equal(t_parse(body, 0, &j), 0);
	assert_string_equal(j->kid, KID);
	assert_null(j->jwk);
	assert_string_equal(j->url, URL_ORDER);
	assert_int_equal(j->payload_len, 0);
	assert_non_null(j->payload);
	assert_int_equal(ck_jws_verify(j, k), 0);
	ck_jws_free(j);
	free(body);
	free(hdr);

	/* The same request checked with another key of the same type. */
	hdr = t_hdr(alg, NONCE, URL_ORDER, KID, NULL, NULL);
	body = t_jws(hdr, payload, k, alg);
	assert_int_equal(t_parse(body, 0, &j), 0);
	{
		EVP_PKEY *other;

		if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
			other = tu_key_new("rsa2048");
		else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519)
			other = tu_key_new("ed25519");
		else if (want_alg == CK_JWS_ES256)
			other = tu_key_new("ec-p256");
		else if (want_alg == CK_JWS_ES384)
			other = tu_key_new("ec-p384");
		else
			other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
		assert_non_null(other);
		assert_int_equal(ck_jws_verify(j, other), CK_JWS_E_BADSIG);
		assert_string_equal(ck_jws_problem(CK_JWS_E_BADSIG),
		    "unauthorized");
		EVP_PKEY_free(other);
	}
	ck_jws_free(j);
	free(body);
	free(hdr);
}

static void
test_round_trip_es256(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256");

	(void)state;
	round_trip(k, "ES256", CK_JWS_ES256);
	EVP_PKEY_free(k);
}

static void
test_round_trip_es384(void **state)
{
	EVP_PKEY *k = tu_key("ec-p384");

	(void)state;
	round_trip(k, "ES384", CK_JWS_ES384);
	EVP_PKEY_free(k);
}

static void
test_round_trip_es512(void **state)
{
	EVP_PKEY *k = t_p521();

	(void)state;
	round_trip(k, "ES512", CK_JWS_ES512);
	EVP_PKEY_free(k);
}

static void
test_round_trip_rs256(void **state)
{
	EVP_PKEY *k = tu_key("rsa2048");

	(void)state;
	round_trip(k, "RS256", CK_JWS_RS256);
	EVP_PKEY_free(k);
}

static void
test_round_trip_eddsa(void **state)
{
	EVP_PKEY *k = tu_key("ed25519");

	(void)state;
	round_trip(k, "EdDSA", CK_JWS_EDDSA);
	EVP_PKEY_free(k);
}

/* ------------------------------------------------------------ refusals */

static void
test_alg_refused(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256");
	const char *const *algs;
	char *hdr, *jwk = t_jwk(k, NULL);
	size_t n;

	(void)state;
	hdr = t_hdr("none", NONCE, URL_ORDER, NULL, jwk, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADALG, "none");
	assert_string_equal(ck_jws_problem(CK_JWS_E_BADALG),
	    "badSignatureAlgorithm");
	free(hdr);
	hdr = t_hdr("HS256", NONCE, URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", NULL, "HS256", CK_JWS_E_BADALG, "HS256");
	free(hdr);
	hdr = t_hdr("PS256", NONCE, URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADALG, "PS256");
	free(hdr);
	hdr = t_hdr("es256", NONCE, URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADALG, NULL);
	free(hdr);
	hdr = t_hdr(NULL, NONCE, URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "\"alg\"");
	free(hdr);
	hdr = t_hdr(NULL, NONCE, URL_ORDER, KID, NULL, "\"alg\":256");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "string");
	free(hdr);

	/* What the problem document lists. */
	algs = ck_jws_algs_supported(&n);
	assert_int_equal(n, 5);
	assert_string_equal(algs[0], "ES256");
	assert_string_equal(algs[4], "EdDSA");
	free(jwk);
	EVP_PKEY_free(k);
}

/* The header names an algorithm that does not fit the key. */
static void
test_alg_key_mismatch(void **state)
{
	EVP_PKEY *p256 = tu_key("ec-p256"), *p384 = tu_key("ec-p384");
	EVP_PKEY *rsa = tu_key("rsa2048"), *ed = tu_key("ed25519");
	struct {
		EVP_PKEY *signer;	/* signs with sign_alg */
		const char *sign_alg;
		const char *hdr_alg;	/* what the header claims */
	} c[] = {
		{ p256, "ES256", "ES384" },
		{ p384, "ES384", "ES256" },
		{ p256, "ES256", "ES512" },
		{ p256, "ES256", "RS256" },
		{ rsa, "RS256", "ES256" },
		{ rsa, "RS256", "EdDSA" },
		{ ed, "EdDSA", "RS256" },
		{ ed, "EdDSA", "ES256" },
	};
	struct ck_jws *j;
	char *hdr, *jwk, *body;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		jwk = t_jwk(c[i].signer, NULL);
		hdr = t_hdr(c[i].hdr_alg, NONCE, URL_NEWACCT, NULL, jwk, NULL);
		body = t_jws(hdr, "{}", c[i].signer, c[i].sign_alg);
		assert_int_equal(t_parse(body, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, j->jwk), CK_JWS_E_BADALG);
		assert_contains(ck_err_msg(), c[i].hdr_alg);
		ck_jws_free(j);
		free(body);
		free(hdr);
		free(jwk);
	}
	/* An RSA-1024 account key (stored before a policy change, say) is
	 * refused at verification too. */
	{
		EVP_PKEY *small = tu_key("rsa1024");

		hdr = t_hdr("RS256", NONCE, URL_ORDER, KID, NULL, NULL);
		body = t_jws(hdr, "{}", small, "RS256");
		assert_int_equal(t_parse(body, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, small), CK_JWS_E_BADALG);
		assert_contains(ck_err_msg(), "1024");
		ck_jws_free(j);
		free(body);
		free(hdr);
		EVP_PKEY_free(small);
	}
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

static void
test_header_refused(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256"), *jk;
	char *jwk = t_jwk(k, NULL), *hdr;
	struct ck_jws *j;

	(void)state;
	/* kid and jwk: both, neither. */
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, jwk, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "both");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, NULL, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "neither");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, NULL, NULL, "\"kid\":7");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "kid");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, "", NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED,
	    "\"kid\" is empty");
	free(hdr);
	/* A NUL escaped inside a string: jansson refuses it. */
	hdr = t_hdr("ES256", NONCE, URL_ORDER, "a\\u0000b", NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, NULL);
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, NULL, "\"a string\"", NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "object");
	free(hdr);

	/* nonce: missing, not base64url, empty, not a string. */
	hdr = t_hdr("ES256", NULL, URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADNONCE,
	    "has no \"nonce\"");
	assert_string_equal(ck_jws_problem(CK_JWS_E_BADNONCE), "badNonce");
	free(hdr);
	hdr = t_hdr("ES256", "bm9uY2U=", URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADNONCE, "padding");
	free(hdr);
	hdr = t_hdr("ES256", "a+b", URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADNONCE, NULL);
	free(hdr);
	hdr = t_hdr("ES256", "", URL_ORDER, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADNONCE, "empty");
	free(hdr);
	hdr = t_hdr("ES256", NULL, URL_ORDER, KID, NULL, "\"nonce\":1");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADNONCE, NULL);
	free(hdr);

	/* url: missing, empty, not a string. */
	hdr = t_hdr("ES256", NONCE, NULL, KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "\"url\"");
	assert_string_equal(ck_jws_problem(CK_JWS_E_MALFORMED), "malformed");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, "", KID, NULL, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "empty");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, NULL, KID, NULL, "\"url\":[]");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "string");
	free(hdr);

	/* crit (with anything in it) and unencoded payloads. */
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL,
	    "\"crit\":[\"b64\"],\"b64\":false");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "crit");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL, "\"crit\":[]");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "crit");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL, "\"b64\":false");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "b64");
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL, "\"b64\":true");
	t_expect_parse(hdr, "{}", k, "ES256", 0, NULL);
	free(hdr);

	/* A private key in the jwk; an RSA-1024 jwk; a point off the
	 * curve: badPublicKey. */
	free(jwk);
	jwk = t_jwk(k, ",\"d\":\"AAAA\"");
	hdr = t_hdr("ES256", NONCE, URL_NEWACCT, NULL, jwk, NULL);
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADKEY, "private");
	assert_string_equal(ck_jws_problem(CK_JWS_E_BADKEY), "badPublicKey");
	free(hdr);
	free(jwk);
	jk = tu_key("rsa1024");
	jwk = t_jwk(jk, NULL);
	hdr = t_hdr("RS256", NONCE, URL_NEWACCT, NULL, jwk, NULL);
	t_expect_parse(hdr, "{}", jk, "RS256", CK_JWS_E_BADKEY, "1024");
	free(hdr);
	free(jwk);
	EVP_PKEY_free(jk);
	{
		unsigned char buf[100];
		size_t len = sizeof(buf);
		char *x, *y;

		assert_true(EVP_PKEY_get_octet_string_param(k,
		    OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof(buf), &len));
		buf[40] ^= 0x80;
		x = t_b64(buf + 1, 32);
		y = t_b64(buf + 33, 32);
		assert_true(asprintf(&jwk, "{\"kty\":\"EC\",\"crv\":\"P-256\","
		    "\"x\":\"%s\",\"y\":\"%s\"}", x, y) > 0);
		hdr = t_hdr("ES256", NONCE, URL_NEWACCT, NULL, jwk, NULL);
		t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_BADKEY,
		    "point");
		free(hdr);
		free(jwk);
		free(x);
		free(y);
	}

	/* Duplicate members in the protected header. */
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL,
	    "\"url\":\"https://evil.example/\"");
	t_expect_parse(hdr, "{}", k, "ES256", CK_JWS_E_MALFORMED, "duplicate");
	free(hdr);

	/* The header is JSON but not an object; or not JSON. */
	t_expect_parse("[\"alg\"]", "{}", k, "ES256", CK_JWS_E_MALFORMED,
	    "not a JSON object");
	t_expect_parse("{\"alg\":", "{}", k, "ES256", CK_JWS_E_MALFORMED,
	    "not a JSON object");

	/* Unknown protected members are ignored (RFC 7515 4). */
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL,
	    "\"typ\":\"JOSE+JSON\",\"x-extra\":{\"a\":1}");
	{
		char *body = t_jws(hdr, "{}", k, "ES256");

		assert_int_equal(t_parse(body, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, k), 0);
		ck_jws_free(j);
		free(body);
	}
	free(hdr);
	EVP_PKEY_free(k);
}

/* Replace the first occurrence of `from` in s (a new string). */
static char *
t_replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	char *r = NULL;

	assert_non_null(p);
	assert_true(asprintf(&r, "%.*s%s%s", (int)(p - s), s, to,
	    p + strlen(from)) > 0);
	return r;
}

/* The value of member `name` in a JWS body (a new string). */
static char *
t_member(const char *body, const char *name)
{
	json_t *j = json_loads(body, 0, NULL);
	char *s;

	assert_non_null(j);
	assert_non_null(s = strdup(json_string_value(json_object_get(j,
	    name))));
	json_decref(j);
	return s;
}

static void
test_body_refused(void **state)
{
	EVP_PKEY *k = tu_key("ec-p256");
	char *body = t_req_jwk(k, "ES256", "{\"contact\":[]}");
	char *prot = t_member(body, "protected");
	char *pl = t_member(body, "payload");
	char *sig = t_member(body, "signature");
	char *bad, *tmp;
	struct ck_jws *j = (struct ck_jws *)1;
	size_t len;

	(void)state;
	/* The good one first: every refusal below is of one change. */
	assert_int_equal(t_parse(body, 0, &j), 0);
	assert_int_equal(ck_jws_verify(j, j->jwk), 0);
	ck_jws_free(j);

#define REFUSE(text, code, part) do {					\
	j = (struct ck_jws *)1;						\
	assert_int_equal(t_parse((text), 0, &j), (code));		\
	assert_null(j);							\
	if ((part) != NULL)						\
		assert_contains(ck_err_msg(), (part));			\
} while (0)

	/* Extra top-level members, an unprotected header, the general
	 * serialization, missing members. */
	bad = t_replace(body, "{", "{\"extra\":1,");
	REFUSE(bad, CK_JWS_E_MALFORMED, "\"extra\"");
	free(bad);
	bad = t_replace(body, "{", "{\"header\":{\"kid\":\"x\"},");
	REFUSE(bad, CK_JWS_E_MALFORMED, "unprotected");
	free(bad);
	assert_true(asprintf(&bad, "{\"payload\":\"%s\",\"signatures\":"
	    "[{\"protected\":\"%s\",\"signature\":\"%s\"}]}", pl, prot,
	    sig) > 0);
	REFUSE(bad, CK_JWS_E_MALFORMED, "general");
	free(bad);
	assert_true(asprintf(&bad, "{\"protected\":\"%s\",\"payload\":\"%s\"}",
	    prot, pl) > 0);
	REFUSE(bad, CK_JWS_E_MALFORMED, "\"signature\"");
	free(bad);
	assert_true(asprintf(&bad, "{\"protected\":\"%s\",\"signature\":"
	    "\"%s\"}", prot, sig) > 0);
	REFUSE(bad, CK_JWS_E_MALFORMED, "\"payload\"");
	free(bad);
	assert_true(asprintf(&bad, "{\"protected\":\"%s\",\"payload\":null,"
	    "\"signature\":\"%s\"}", prot, sig) > 0);
	REFUSE(bad, CK_JWS_E_MALFORMED, "string");
	free(bad);

	/* Duplicate keys at the top level: the second payload would be
	 * what some other reader sees. */
	assert_true(asprintf(&bad, "{\"protected\":\"%s\",\"payload\":\"%s\","
	    "\"signature\":\"%s\",\"payload\":\"e30\"}", prot, pl, sig) > 0);
	REFUSE(bad, CK_JWS_E_MALFORMED, "duplicate");
	free(bad);

	/* Padding in any of the three. */
	assert_true(asprintf(&tmp, "%s=", sig) > 0);
	bad = t_replace(body, sig, tmp);
	REFUSE(bad, CK_JWS_E_MALFORMED, "padding");
	free(bad);
	free(tmp);
	len = strlen(pl);
	assert_true(asprintf(&tmp, "%s%s", pl, len % 4 == 2 ? "==" :
	    len % 4 == 3 ? "=" : "") > 0);
	if (len % 4 != 0) {
		bad = t_replace(body, pl, tmp);
		REFUSE(bad, CK_JWS_E_MALFORMED, "padding");
		free(bad);
	}
	free(tmp);
	/* Standard base64 characters. */
	tmp = strdup(prot);
	tmp[3] = '+';
	bad = t_replace(body, prot, tmp);
	REFUSE(bad, CK_JWS_E_MALFORMED, "alphabet");
	free(bad);
	free(tmp);

	/* Not JSON, not an object, empty, too big. */
	REFUSE("", CK_JWS_E_MALFORMED, "empty");
	REFUSE("[]", CK_JWS_E_MALFORMED, "object");
	REFUSE("{\"protected\":", CK_JWS_E_MALFORMED, "not JSON");
	REFUSE("\"protected\"", CK_JWS_E_MALFORMED, NULL);
	j = (struct ck_jws *)1;
	assert_int_equal(ck_jws_parse((const unsigned char *)body,
	    strlen(body), strlen(body) - 1, 0, &j), CK_JWS_E_TOOBIG);
	assert_null(j);
	assert_int_equal(ck_jws_parse((const unsigned char *)body,
	    strlen(body), strlen(body), 0, &j), 0);
	ck_jws_free(j);
	{
		/* A body of 1 MiB is refused before it is read. */
		size_t big = 1u << 20;
		unsigned char *b = malloc(big);

		assert_non_null(b);
		memset(b, '[', big);
		assert_int_equal(ck_jws_parse(b, big, MAX_BODY, 0, &j),
		    CK_JWS_E_TOOBIG);
		assert_string_equal(ck_jws_problem(CK_JWS_E_TOOBIG),
		    "malformed");
		free(b);
	}
	/* Deep nesting inside an allowed body is only JSON's problem. */
	{
		char deep[5000];

		memset(deep, '[', sizeof(deep) - 1);
		deep[sizeof(deep) - 1] = '\0';
		REFUSE(deep, CK_JWS_E_MALFORMED, NULL);
	}
	/* An empty protected header or signature. */
	bad = t_replace(body, prot, "");
	REFUSE(bad, CK_JWS_E_MALFORMED, "\"protected\" is empty");
	free(bad);
	bad = t_replace(body, sig, "");
	REFUSE(bad, CK_JWS_E_MALFORMED, "\"signature\" is empty");
	free(bad);
#undef REFUSE

	free(prot);
	free(pl);
	free(sig);
	free(body);
	EVP_PKEY_free(k);
}

/* Parsed, but the signature is wrong. */
static void
test_signature_refused(void **state)
{
	const char *algs[] = { "ES256", "RS256", "EdDSA", "ES384" };
	const char *types[] = { "ec-p256", "rsa2048", "ed25519", "ec-p384" };
	unsigned char *raw;
	char *body, *pl, *sig, *bad, *enc;
	struct ck_jws *j;
	EVP_PKEY *k;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		k = tu_key(types[i]);
		body = t_req_jwk(k, algs[i], "{\"onlyReturnExisting\":true}");
		pl = t_member(body, "payload");
		sig = t_member(body, "signature");

		/* A payload byte flipped (re-encoded, so it parses). */
		assert_int_equal(ck_jws_b64url_decode(pl, strlen(pl), "t",
		    &raw, &len), 0);
		raw[2] ^= 0x01;
		enc = t_b64(raw, len);
		bad = t_replace(body, pl, enc);
		assert_int_equal(t_parse(bad, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, j->jwk), CK_JWS_E_BADSIG);
		assert_contains(ck_err_msg(), "does not verify");
		ck_jws_free(j);
		free(bad);
		free(enc);
		free(raw);

		/* A signature byte flipped. */
		assert_int_equal(ck_jws_b64url_decode(sig, strlen(sig), "t",
		    &raw, &len), 0);
		raw[len / 2] ^= 0x40;
		enc = t_b64(raw, len);
		bad = t_replace(body, sig, enc);
		assert_int_equal(t_parse(bad, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, j->jwk), CK_JWS_E_BADSIG);
		ck_jws_free(j);
		free(bad);
		free(enc);

		/* Truncated by a byte, and cut in half. */
		raw[len / 2] ^= 0x40;
		enc = t_b64(raw, len - 1);
		bad = t_replace(body, sig, enc);
		assert_int_equal(t_parse(bad, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, j->jwk), CK_JWS_E_BADSIG);
		assert_contains(ck_err_msg(), "bytes");
		ck_jws_free(j);
		free(bad);
		free(enc);
		enc = t_b64(raw, len / 2);
		bad = t_replace(body, sig, enc);
		assert_int_equal(t_parse(bad, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, j->jwk), CK_JWS_E_BADSIG);
		ck_jws_free(j);
		free(bad);
		free(enc);

		/* ... and the untouched signature still verifies. */
		enc = t_b64(raw, len);
		bad = t_replace(body, sig, enc);
		assert_int_equal(t_parse(bad, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, j->jwk), 0);
		ck_jws_free(j);
		free(bad);
		free(enc);
		free(raw);
		free(pl);
		free(sig);
		free(body);
		EVP_PKEY_free(k);
	}

	/* ECDSA: a DER signature where R||S belongs is refused. */
	k = tu_key("ec-p256");
	{
		char *hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL, NULL);
		char *p64 = t_b64s(hdr), *input = NULL, *s64;
		unsigned char der[80];
		size_t dlen = sizeof(der);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		assert_true(asprintf(&input, "%s.", p64) > 0);
		assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(),
		    NULL, k), 1);
		assert_int_equal(EVP_DigestSign(ctx, der, &dlen,
		    (unsigned char *)input, strlen(input)), 1);
		s64 = t_b64(der, dlen);
		body = NULL;
		assert_true(asprintf(&body, "{\"protected\":\"%s\","
		    "\"payload\":\"\",\"signature\":\"%s\"}", p64, s64) > 0);
		assert_int_equal(t_parse(body, 0, &j), 0);
		assert_int_equal(ck_jws_verify(j, k), CK_JWS_E_BADSIG);
		ck_jws_free(j);
		EVP_MD_CTX_free(ctx);
		free(body);
		free(s64);
		free(input);
		free(p64);
		free(hdr);
	}
	EVP_PKEY_free(k);
}

/* The key-change inner JWS: no nonce. */
static void
test_inner(void **state)
{
	EVP_PKEY *k = tu_key("ed25519");
	char *jwk = t_jwk(k, NULL), *hdr, *body;
	struct ck_jws *j;

	(void)state;
	hdr = t_hdr("EdDSA", NULL, URL_NEWACCT, NULL, jwk, NULL);
	body = t_jws(hdr, "{\"account\":\"" KID "\",\"oldKey\":{}}", k,
	    "EdDSA");
	assert_int_equal(t_parse(body, CK_JWS_INNER, &j), 0);
	assert_null(j->nonce);
	assert_int_equal(ck_jws_verify(j, j->jwk), 0);
	ck_jws_free(j);
	assert_int_equal(t_parse(body, 0, &j), CK_JWS_E_BADNONCE);
	free(body);
	free(hdr);
	hdr = t_hdr("EdDSA", NONCE, URL_NEWACCT, NULL, jwk, NULL);
	body = t_jws(hdr, "{}", k, "EdDSA");
	assert_int_equal(t_parse(body, CK_JWS_INNER, &j), CK_JWS_E_MALFORMED);
	assert_contains(ck_err_msg(), "nonce");
	free(body);
	free(hdr);
	free(jwk);
	EVP_PKEY_free(k);
}

/* ------------------------------------------------------------------ EAB */

/* A binding over the JWK text `payload`, as a JSON object text. */
static char *
t_eab(const char *alg, const char *url, const char *payload,
    const char *extra)
{
	char *hdr = t_hdr(alg, NULL, url, EAB_KID, NULL, extra);
	char *eab = t_jws(hdr, payload, NULL, alg);

	free(hdr);
	return eab;
}

/* A newAccount request by k carrying `eab`; parsed, its binding parsed:
 * returns the binding's parse result. */
static int
t_newaccount(EVP_PKEY *k, const char *eab, struct ck_jws **outer,
    struct ck_jws **binding)
{
	char *payload = NULL, *body;
	json_t *pl;
	int rc;

	assert_true(asprintf(&payload, "{\"termsOfServiceAgreed\":true,"
	    "\"externalAccountBinding\":%s}", eab) > 0);
	body = t_req_jwk(k, "ES256", payload);
	assert_int_equal(t_parse(body, 0, outer), 0);
	assert_int_equal(ck_jws_verify(*outer, (*outer)->jwk), 0);
	assert_non_null(pl = json_loadb((char *)(*outer)->payload,
	    (*outer)->payload_len, JSON_REJECT_DUPLICATES, NULL));
	*binding = (struct ck_jws *)1;
	rc = ck_jws_eab_parse(json_object_get(pl, "externalAccountBinding"),
	    binding);
	if (rc != 0)
		assert_null(*binding);
	json_decref(pl);
	free(body);
	free(payload);
	return rc;
}

static void
test_eab(void **state)
{
	static const char *const algs[] = { "HS256", "HS384", "HS512" };
	EVP_PKEY *k = tu_key("ec-p256"), *other = tu_key_new("ec-p256");
	char *jwk = t_jwk(k, NULL), *jwk2 = t_jwk(other, NULL), *eab;
	struct ck_jws *outer, *b;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		eab = t_eab(algs[i], URL_NEWACCT, jwk, NULL);
		assert_int_equal(t_newaccount(k, eab, &outer, &b), 0);
		assert_string_equal(ck_jws_alg_name(b->alg), algs[i]);
		assert_string_equal(b->kid, EAB_KID);
		assert_null(b->nonce);
		assert_null(b->jwk);
		assert_int_equal(ck_jws_eab_verify(b, outer,
		    (const unsigned char *)EAB_KEY, strlen(EAB_KEY)), 0);
		/* Wrong HMAC key: one byte off, one byte short. */
		assert_int_equal(ck_jws_eab_verify(b, outer,
		    (const unsigned char *)"certkeep-fuzz-eab-hmac-key-0123456788",
		    strlen(EAB_KEY)), CK_JWS_E_BADSIG);
		assert_contains(ck_err_msg(), EAB_KID);
		assert_int_equal(ck_jws_eab_verify(b, outer,
		    (const unsigned char *)EAB_KEY, strlen(EAB_KEY) - 1),
		    CK_JWS_E_BADSIG);
		ck_jws_free(b);
		ck_jws_free(outer);
		free(eab);
	}

	/* The binding signs another key than the account's. */
	eab = t_eab("HS256", URL_NEWACCT, jwk2, NULL);
	assert_int_equal(t_newaccount(k, eab, &outer, &b), 0);
	assert_int_equal(ck_jws_eab_verify(b, outer,
	    (const unsigned char *)EAB_KEY, strlen(EAB_KEY)), CK_JWS_E_BADSIG);
	assert_contains(ck_err_msg(), "another key");
	ck_jws_free(b);
	ck_jws_free(outer);
	free(eab);

	/* The binding's payload is no JWK. */
	eab = t_eab("HS256", URL_NEWACCT, "{\"kty\":\"EC\"}", NULL);
	assert_int_equal(t_newaccount(k, eab, &outer, &b), 0);
	assert_int_equal(ck_jws_eab_verify(b, outer,
	    (const unsigned char *)EAB_KEY, strlen(EAB_KEY)),
	    CK_JWS_E_MALFORMED);
	ck_jws_free(b);
	ck_jws_free(outer);
	free(eab);

	/* Another URL than the outer request's. */
	eab = t_eab("HS256", URL_ORDER, jwk, NULL);
	assert_int_equal(t_newaccount(k, eab, &outer, &b), 0);
	assert_int_equal(ck_jws_eab_verify(b, outer,
	    (const unsigned char *)EAB_KEY, strlen(EAB_KEY)),
	    CK_JWS_E_MALFORMED);
	assert_contains(ck_err_msg(), "url");
	ck_jws_free(b);
	ck_jws_free(outer);
	free(eab);

	/* Refused when parsing: a signature alg, "none", a nonce, a jwk in
	 * place of kid, no kid, an empty payload, extra members. */
	eab = t_eab("ES256", URL_NEWACCT, jwk, NULL);
	assert_int_equal(t_newaccount(k, eab, &outer, &b), CK_JWS_E_BADALG);
	ck_jws_free(outer);
	free(eab);
	eab = t_eab("none", URL_NEWACCT, jwk, NULL);
	assert_int_equal(t_newaccount(k, eab, &outer, &b), CK_JWS_E_BADALG);
	ck_jws_free(outer);
	free(eab);
	eab = t_eab("HS256", URL_NEWACCT, jwk, "\"nonce\":\"" NONCE "\"");
	assert_int_equal(t_newaccount(k, eab, &outer, &b),
	    CK_JWS_E_MALFORMED);
	assert_contains(ck_err_msg(), "nonce");
	ck_jws_free(outer);
	free(eab);
	{
		char *hdr = t_hdr("HS256", NULL, URL_NEWACCT, NULL, jwk, NULL);

		eab = t_jws(hdr, jwk, NULL, "HS256");
		assert_int_equal(t_newaccount(k, eab, &outer, &b),
		    CK_JWS_E_MALFORMED);
		assert_contains(ck_err_msg(), "kid");
		ck_jws_free(outer);
		free(eab);
		free(hdr);
		hdr = t_hdr("HS256", NULL, URL_NEWACCT, NULL, NULL, NULL);
		eab = t_jws(hdr, jwk, NULL, "HS256");
		assert_int_equal(t_newaccount(k, eab, &outer, &b),
		    CK_JWS_E_MALFORMED);
		ck_jws_free(outer);
		free(eab);
		free(hdr);
	}
	eab = t_eab("HS256", URL_NEWACCT, "", NULL);
	assert_int_equal(t_newaccount(k, eab, &outer, &b), CK_JWS_E_MALFORMED);
	ck_jws_free(outer);
	free(eab);
	{
		char *e0 = t_eab("HS256", URL_NEWACCT, jwk, NULL);

		eab = t_replace(e0, "{", "{\"header\":{},");
		assert_int_equal(t_newaccount(k, eab, &outer, &b),
		    CK_JWS_E_MALFORMED);
		ck_jws_free(outer);
		free(eab);
		free(e0);
	}
	assert_int_equal(t_newaccount(k, "\"x\"", &outer, &b),
	    CK_JWS_E_MALFORMED);
	ck_jws_free(outer);

	/* A request that names its key by kid cannot carry a binding. */
	{
		char *hdr = t_hdr("ES256", NONCE, URL_NEWACCT, KID, NULL, NULL);
		char *body = t_jws(hdr, "{}", k, "ES256");

		eab = t_eab("HS256", URL_NEWACCT, jwk, NULL);
		assert_int_equal(t_newaccount(k, eab, &outer, &b), 0);
		ck_jws_free(outer);
		assert_int_equal(t_parse(body, 0, &outer), 0);
		assert_int_equal(ck_jws_eab_verify(b, outer,
		    (const unsigned char *)EAB_KEY, strlen(EAB_KEY)),
		    CK_JWS_E_MALFORMED);
		assert_contains(ck_err_msg(), "jwk");
		/* HMAC is never a request signature. */
		assert_int_equal(ck_jws_verify(b, k), CK_JWS_E_BADALG);
		ck_jws_free(b);
		ck_jws_free(outer);
		free(eab);
		free(body);
		free(hdr);
	}
	free(jwk);
	free(jwk2);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

static void
test_names(void **state)
{
	int c;

	(void)state;
	for (c = 0; c > CK_JWS_E__MAX; c--)
		assert_string_not_equal(ck_jws_strerror(c), "unknown error");
	assert_string_equal(ck_jws_strerror(CK_JWS_E__MAX), "unknown error");
	assert_string_equal(ck_jws_strerror(1), "unknown error");
	assert_string_equal(ck_jws_problem(CK_JWS_E_INTERNAL),
	    "serverInternal");
	assert_string_equal(ck_jws_problem(-100), "serverInternal");
	assert_string_equal(ck_jws_alg_name(CK_JWS_HS512), "HS512");
	assert_string_equal(ck_jws_alg_name(CK_JWS_ALG__MAX), "?");
}

/* ------------------------------------------------------ the seed corpus */

static void
t_write(const char *dir, const char *name, const char *body)
{
	char path[4096];

	tu_path(path, sizeof(path), dir, name);
	tu_write_file(path, body, strlen(body), 0644);
	free((void *)body);
}

static void
write_corpus(void **state)
{
	const char *dir = getenv("CK_JWS_CORPUS_DIR");
	EVP_PKEY *p256 = tu_key("ec-p256"), *p384 = tu_key("ec-p384");
	EVP_PKEY *p521 = t_p521(), *rsa = tu_key("rsa2048");
	EVP_PKEY *ed = tu_key("ed25519"), *rsa1k = tu_key("rsa1024");
	char *jwk = t_jwk(p256, NULL), *hdr, *eab, *pl = NULL, *tmp;

	(void)state;
	t_write(dir, "ok-es256-jwk", t_req_jwk(p256, "ES256",
	    "{\"termsOfServiceAgreed\":true,\"contact\":"
	    "[\"mailto:a@example.org\"]}"));
	t_write(dir, "ok-es384-jwk", t_req_jwk(p384, "ES384", "{}"));
	t_write(dir, "ok-es512-jwk", t_req_jwk(p521, "ES512", "{}"));
	t_write(dir, "ok-rs256-jwk", t_req_jwk(rsa, "RS256",
	    "{\"onlyReturnExisting\":true}"));
	t_write(dir, "ok-eddsa-jwk", t_req_jwk(ed, "EdDSA", "{}"));
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL, NULL);
	t_write(dir, "ok-es256-kid", t_jws(hdr, "{\"identifiers\":[{\"type\":"
	    "\"dns\",\"value\":\"www.example.org\"}]}", p256, "ES256"));
	t_write(dir, "ok-post-as-get", t_jws(hdr, NULL, p256, "ES256"));
	free(hdr);

	/* newAccount with a binding that verifies under the fuzzer's key. */
	eab = t_eab("HS256", URL_NEWACCT, jwk, NULL);
	assert_true(asprintf(&pl, "{\"termsOfServiceAgreed\":true,"
	    "\"externalAccountBinding\":%s}", eab) > 0);
	t_write(dir, "ok-newaccount-eab", t_req_jwk(p256, "ES256", pl));
	free(pl);
	free(eab);

	/* keyChange: the payload is the inner JWS by the new key. */
	{
		char *ejwk = t_jwk(ed, NULL), *inner;

		hdr = t_hdr("EdDSA", NULL, "https://ca.example/acme/key-change",
		    NULL, ejwk, NULL);
		assert_true(asprintf(&pl, "{\"account\":\"%s\",\"oldKey\":%s}",
		    KID, jwk) > 0);
		inner = t_jws(hdr, pl, ed, "EdDSA");
		free(hdr);
		hdr = t_hdr("ES256", NONCE,
		    "https://ca.example/acme/key-change", KID, NULL, NULL);
		t_write(dir, "ok-keychange", t_jws(hdr, inner, p256, "ES256"));
		free(hdr);
		free(inner);
		free(pl);
		free(ejwk);
	}

	/* One fault each. */
	hdr = t_hdr("none", NONCE, URL_ORDER, KID, NULL, NULL);
	t_write(dir, "bad-alg-none", t_jws(hdr, "{}", p256, "ES256"));
	free(hdr);
	hdr = t_hdr("HS256", NONCE, URL_ORDER, KID, NULL, NULL);
	t_write(dir, "bad-alg-hs256", t_jws(hdr, "{}", NULL, "HS256"));
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, jwk, NULL);
	t_write(dir, "bad-kid-and-jwk", t_jws(hdr, "{}", p256, "ES256"));
	free(hdr);
	hdr = t_hdr("ES256", NULL, URL_ORDER, KID, NULL, NULL);
	t_write(dir, "bad-no-nonce", t_jws(hdr, "{}", p256, "ES256"));
	free(hdr);
	hdr = t_hdr("ES256", NONCE, URL_ORDER, KID, NULL,
	    "\"crit\":[\"b64\"],\"b64\":false");
	t_write(dir, "bad-crit-b64", t_jws(hdr, "{}", p256, "ES256"));
	free(hdr);
	tmp = t_jwk(p256, ",\"d\":\"AAAA\"");
	hdr = t_hdr("ES256", NONCE, URL_NEWACCT, NULL, tmp, NULL);
	t_write(dir, "bad-private-jwk", t_jws(hdr, "{}", p256, "ES256"));
	free(hdr);
	free(tmp);
	tmp = t_jwk(rsa1k, NULL);
	hdr = t_hdr("RS256", NONCE, URL_NEWACCT, NULL, tmp, NULL);
	t_write(dir, "bad-rsa1024", t_jws(hdr, "{}", rsa1k, "RS256"));
	free(hdr);
	free(tmp);
	tmp = t_jwk_offcurve(p256);
	hdr = t_hdr("ES256", NONCE, URL_NEWACCT, NULL, tmp, NULL);
	t_write(dir, "bad-offcurve", t_jws(hdr, "{}", p256, "ES256"));
	free(hdr);
	free(tmp);
	hdr = t_hdr("ES384", NONCE, URL_NEWACCT, NULL, jwk, NULL);
	t_write(dir, "bad-alg-key-mismatch", t_jws(hdr, "{}", p256, "ES256"));
	free(hdr);
	tmp = t_req_jwk(p256, "ES256", "{}");
	t_write(dir, "bad-extra-member", t_replace(tmp, "{", "{\"x\":1,"));
	t_write(dir, "bad-dup-key", t_replace(tmp, "{",
	    "{\"payload\":\"e30\","));
	t_write(dir, "bad-padding", t_replace(tmp, "\"}", "=\"}"));
	free(tmp);
	/* Protected headers alone, for the fuzz target's second reading. */
	t_write(dir, "hdr-es256-kid", t_hdr("ES256", NONCE, URL_ORDER, KID,
	    NULL, NULL));
	t_write(dir, "hdr-es256-jwk", t_hdr("ES256", NONCE, URL_NEWACCT, NULL,
	    jwk, NULL));
	tmp = t_jwk(rsa, NULL);
	t_write(dir, "hdr-rs256-jwk", t_hdr("RS256", NONCE, URL_NEWACCT, NULL,
	    tmp, NULL));
	free(tmp);
	tmp = t_jwk(ed, NULL);
	t_write(dir, "hdr-eddsa-jwk-inner", t_hdr("EdDSA", NULL, URL_NEWACCT,
	    NULL, tmp, "\"b64\":true"));
	free(tmp);
	tmp = t_jwk(p521, NULL);
	t_write(dir, "hdr-es512-jwk", t_hdr("ES512", NONCE, URL_NEWACCT, NULL,
	    tmp, "\"crit\":[]"));
	free(tmp);
	t_write(dir, "bad-general", strdup("{\"payload\":\"e30\",\"signatures\":"
	    "[{\"protected\":\"e30\",\"signature\":\"AAAA\"}]}"));
	free(jwk);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p521);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa1k);
	EVP_PKEY_free(ed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_thumbprint_rfc7638),
		cmocka_unit_test(test_jwk_canonical),
		cmocka_unit_test(test_jwk_refused),
		cmocka_unit_test(test_round_trip_es256),
		cmocka_unit_test(test_round_trip_es384),
		cmocka_unit_test(test_round_trip_es512),
		cmocka_unit_test(test_round_trip_rs256),
		cmocka_unit_test(test_round_trip_eddsa),
		cmocka_unit_test(test_alg_refused),
		cmocka_unit_test(test_alg_key_mismatch),
		cmocka_unit_test(test_header_refused),
		cmocka_unit_test(test_body_refused),
		cmocka_unit_test(test_signature_refused),
		cmocka_unit_test(test_inner),
		cmocka_unit_test(test_eab),
		cmocka_unit_test(test_names),
	};
	const struct CMUnitTest corpus[] = {
		cmocka_unit_test(write_corpus),
	};
	int fails;

	if (getenv("CK_JWS_CORPUS_DIR") != NULL)
		fails = cmocka_run_group_tests_name("jws-corpus", corpus, NULL,
		    NULL);
	else
		fails = cmocka_run_group_tests_name("jws", tests, NULL, NULL);
	tu_keys_free();
	EVP_PKEY_free(p521_key);
	return fails;
}
