/*
 * jws.c - JWS and JWK for ACME requests (jws.h).
 *
 * Everything here reads untrusted bytes: sizes are checked before
 * anything is copied, every string member's type is checked before use,
 * and a text that is not the one canonical spelling of its value is
 * refused rather than normalised (what is signed must be what is meant).
 */
#include "proto/jws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "common/err.h"
#include "x509/sigcheck.h"

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define RSA_MAX_E_BYTES 8	/* e up to 2^64-1; 65537 in practice */
#define ED25519_LEN 32
#define ED25519_SIG_LEN 64

static const char *const jws_err_names[] = {
	"success",
	"internal error",
	"malformed JWS",
	"request too large",
	"unsupported signature algorithm",
	"unsupported public key",
	"signature does not verify",
	"bad or missing nonce",
};

static const char *const jws_problems[] = {
	"serverInternal",	/* not an error; never looked up */
	"serverInternal",
	"malformed",
	"malformed",
	"badSignatureAlgorithm",
	"badPublicKey",
	"unauthorized",
	"badNonce",
};

_Static_assert(sizeof(jws_err_names) / sizeof(jws_err_names[0]) ==
    -CK_JWS_E__MAX, "jws_err_names must cover every code");
_Static_assert(sizeof(jws_problems) / sizeof(jws_problems[0]) ==
    -CK_JWS_E__MAX, "jws_problems must cover every code");

/* The EC curves a JWK may name: JWA name, OpenSSL group, size of a
 * coordinate (and of R and of S in a signature). */
struct jwk_curve {
	const char *crv;
	const char *group;
	int nid;
	size_t len;
};

static const struct jwk_curve jwk_curves[] = {
	{ "P-256", "prime256v1", NID_X9_62_prime256v1, 32 },
	{ "P-384", "secp384r1", NID_secp384r1, 48 },
	{ "P-521", "secp521r1", NID_secp521r1, 66 },
};
#define NCURVES (sizeof(jwk_curves) / sizeof(jwk_curves[0]))

static const struct jws_alg_info {
	const char *name;
	int mdnid;		/* NID_undef: EdDSA (no separate digest) */
	int curve;		/* ECDSA: the curve's NID, else NID_undef */
	int hmac;
} jws_algs[CK_JWS_ALG__MAX] = {
	[CK_JWS_ES256] = { "ES256", NID_sha256, NID_X9_62_prime256v1, 0 },
	[CK_JWS_ES384] = { "ES384", NID_sha384, NID_secp384r1, 0 },
	[CK_JWS_ES512] = { "ES512", NID_sha512, NID_secp521r1, 0 },
	[CK_JWS_RS256] = { "RS256", NID_sha256, NID_undef, 0 },
	[CK_JWS_EDDSA] = { "EdDSA", NID_undef, NID_undef, 0 },
	[CK_JWS_HS256] = { "HS256", NID_sha256, NID_undef, 1 },
	[CK_JWS_HS384] = { "HS384", NID_sha384, NID_undef, 1 },
	[CK_JWS_HS512] = { "HS512", NID_sha512, NID_undef, 1 },
};

static const char *const jws_supported[] = {
	"ES256", "ES384", "ES512", "RS256", "EdDSA",
};

/* Members that only a private or symmetric JWK has (RFC 7518 6.2.2,
 * 6.3.2, 6.4; RFC 8037 2). */
static const char *const jwk_private_members[] = {
	"d", "p", "q", "dp", "dq", "qi", "oth", "k",
};

const char *
ck_jws_strerror(int code)
{
	if (code > 0 || code <= CK_JWS_E__MAX)
		return "unknown error";
	return jws_err_names[-code];
}

const char *
ck_jws_problem(int code)
{
	if (code > 0 || code <= CK_JWS_E__MAX)
		return "serverInternal";
	return jws_problems[-code];
}

const char *
ck_jws_alg_name(enum ck_jws_alg alg)
{
	if ((unsigned)alg >= CK_JWS_ALG__MAX)
		return "?";
	return jws_algs[alg].name;
}

const char *const *
ck_jws_algs_supported(size_t *n)
{
	*n = sizeof(jws_supported) / sizeof(jws_supported[0]);
	return jws_supported;
}

/* ---------------------------------------------------------- base64url */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t
ck_jws_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void
ck_jws_b64url_encode(const unsigned char *in, size_t n, char *out)
{
	uint32_t v;
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = b64url_chars[v >> 18];
		*out++ = b64url_chars[(v >> 12) & 63];
		*out++ = b64url_chars[(v >> 6) & 63];
		*out++ = b64url_chars[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = b64url_chars[v >> 18];
		*out++ = b64url_chars[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = b64url_chars[v >> 18];
		*out++ = b64url_chars[(v >> 12) & 63];
		*out++ = b64url_chars[(v >> 6) & 63];
	}
	*out = '\0';
}

int
ck_jws_b64url_decode(const char *s, size_t len, const char *what,
    unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0, v;

	if (len % 4 == 1)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s is not base64url "
		    "(a length of %zu characters cannot be)", what, len);
	if ((buf = malloc(len / 4 * 3 + 3)) == NULL)
		return ck_err_set(CK_JWS_E_INTERNAL, "out of memory");
	for (i = 0; i < len; i++) {
		if ((v = b64url_value((unsigned char)s[i])) < 0) {
			free(buf);
			if (s[i] == '=')
				return ck_err_set(CK_JWS_E_MALFORMED, "%s is "
				    "not base64url: '=' padding is not allowed",
				    what);
			return ck_err_set(CK_JWS_E_MALFORMED, "%s is not "
			    "base64url: character %zu is not in the base64url "
			    "alphabet", what, i + 1);
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Whatever is left are the unused low bits of the last character:
	 * zero in the one canonical spelling. */
	if (acc != 0) {
		free(buf);
		return ck_err_set(CK_JWS_E_MALFORMED, "%s is not canonical "
		    "base64url (the last character has unused bits set)", what);
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

/* ------------------------------------------------------------ helpers */

/*
 * obj[name] as a string: *out NULL if absent. A member that is there but
 * not a string (or holds a NUL) is CK_JWS_E_MALFORMED.
 */
static int
member_str(const json_t *obj, const char *name, const char *what,
    const char **out, size_t *outlen)
{
	json_t *v = json_object_get(obj, name);
	const char *s;

	*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return ck_err_set(CK_JWS_E_MALFORMED, "%s member \"%s\" is not "
		    "a string", what, name);
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return ck_err_set(CK_JWS_E_MALFORMED, "%s member \"%s\" holds "
		    "a NUL character", what, name);
	*out = s;
	if (outlen != NULL)
		*outlen = json_string_length(v);
	return 0;
}

/* A required string member. */
static int
member_str_req(const json_t *obj, const char *name, const char *what,
    const char **out, size_t *outlen)
{
	int rc;

	if ((rc = member_str(obj, name, what, out, outlen)) != 0)
		return rc;
	if (*out == NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s has no \"%s\"", what,
		    name);
	return 0;
}

/* A required base64url member, decoded into a new buffer. */
static int
member_b64(const json_t *obj, const char *name, const char *what,
    unsigned char **out, size_t *outlen)
{
	char label[96];
	const char *s;
	size_t len;
	int rc;

	if ((rc = member_str_req(obj, name, what, &s, &len)) != 0)
		return rc;
	snprintf(label, sizeof(label), "%s member \"%s\"", what, name);
	return ck_jws_b64url_decode(s, len, label, out, outlen);
}

static const struct jwk_curve *
curve_by_crv(const char *crv)
{
	size_t i;

	for (i = 0; i < NCURVES; i++)
		if (strcmp(jwk_curves[i].crv, crv) == 0)
			return &jwk_curves[i];
	return NULL;
}

/* The curve of an EC key, NULL if not one of ours. */
static const struct jwk_curve *
curve_of(const EVP_PKEY *pk)
{
	char name[64];
	size_t i, len = 0;
	int nid;

	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_group_name(pk, name, sizeof(name), &len)) {
		ERR_clear_error();
		return NULL;
	}
	if ((nid = OBJ_sn2nid(name)) == NID_undef)
		nid = EC_curve_nist2nid(name);
	for (i = 0; i < NCURVES; i++)
		if (jwk_curves[i].nid == nid)
			return &jwk_curves[i];
	return NULL;
}

/* A new EVP_PKEY of type `type` from params (public part only). */
static int
pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int rc = -1;

	*out = NULL;
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0)
		goto out;
	if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		*out = NULL;
		rc = 1;		/* the data, not the library */
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return rc;
}

/* ---------------------------------------------------------------- JWK */

static int
jwk_ec(const json_t *jwk, EVP_PKEY **out)
{
	const struct jwk_curve *c;
	unsigned char *x = NULL, *y = NULL, *pub = NULL;
	size_t xlen = 0, ylen = 0;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY_CTX *chk = NULL;
	EVP_PKEY *pk = NULL;
	const char *crv;
	int rc, r;

	if ((rc = member_str_req(jwk, "crv", "jwk", &crv, NULL)) != 0)
		goto out;
	if ((c = curve_by_crv(crv)) == NULL) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: EC curve \"%.32s\" is "
		    "not supported (P-256, P-384, P-521 are)", crv);
		goto out;
	}
	if ((rc = member_b64(jwk, "x", "jwk", &x, &xlen)) != 0 ||
	    (rc = member_b64(jwk, "y", "jwk", &y, &ylen)) != 0)
		goto out;
	/* RFC 7518 6.2.1.2: full size, leading zeros kept. */
	if (xlen != c->len || ylen != c->len) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: %s coordinates are %zu "
		    "bytes each; x has %zu, y %zu", c->crv, c->len, xlen, ylen);
		goto out;
	}
	if ((pub = malloc(1 + 2 * c->len)) == NULL) {
		rc = ck_err_set(CK_JWS_E_INTERNAL, "out of memory");
		goto out;
	}
	pub[0] = POINT_CONVERSION_UNCOMPRESSED;
	memcpy(pub + 1, x, c->len);
	memcpy(pub + 1 + c->len, y, c->len);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    c->group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    pub, 1 + 2 * c->len)) {
		rc = ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: EC parameters");
		goto out;
	}
	if ((r = pkey_fromdata("EC", bld, &pk)) != 0) {
		rc = r < 0 ? ck_err_set(CK_JWS_E_INTERNAL, "jwk: cannot make "
		    "an EC key") : ck_err_set(CK_JWS_E_BADKEY, "jwk: (x, y) "
		    "is not a point on %s", c->crv);
		goto out;
	}
	/* OpenSSL already refuses points off the curve when it decodes
	 * them; this also checks the point's order. */
	if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL) {
		rc = ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: EC key check");
		goto out;
	}
	if (EVP_PKEY_public_check(chk) != 1) {
		ERR_clear_error();
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: (x, y) is not a valid "
		    "public key on %s", c->crv);
		goto out;
	}
	*out = pk;
	pk = NULL;
	rc = 0;
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_free(pk);
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	free(pub);
	return rc;
}

static int
jwk_rsa(const json_t *jwk, EVP_PKEY **out)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pk = NULL;
	int rc, bits;

	if ((rc = member_b64(jwk, "n", "jwk", &n, &nlen)) != 0 ||
	    (rc = member_b64(jwk, "e", "jwk", &e, &elen)) != 0)
		goto out;
	/* RFC 7518 6.3.1: Base64urlUInt, the fewest octets. */
	if (nlen == 0 || n[0] == 0 || elen == 0 || e[0] == 0) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: RSA \"%s\" is empty or "
		    "has leading zero bytes", (nlen == 0 || n[0] == 0) ? "n" :
		    "e");
		goto out;
	}
	/* Too long is seen on the bytes, before any big number is made. */
	if (nlen > RSA_MAX_BITS / 8) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: RSA modulus of over %d "
		    "bits; %d to %d bits are accepted", RSA_MAX_BITS,
		    RSA_MIN_BITS, RSA_MAX_BITS);
		goto out;
	}
	if ((bn_n = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (elen <= RSA_MAX_E_BYTES &&
	    (bn_e = BN_bin2bn(e, (int)elen, NULL)) == NULL)) {
		rc = ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: RSA numbers");
		goto out;
	}
	bits = BN_num_bits(bn_n);
	if (bits < RSA_MIN_BITS) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: RSA modulus of %d bits; "
		    "%d to %d bits are accepted", bits, RSA_MIN_BITS,
		    RSA_MAX_BITS);
		goto out;
	}
	if (!BN_is_odd(bn_n)) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: RSA modulus is even");
		goto out;
	}
	if (bn_e == NULL || !BN_is_odd(bn_e) || BN_is_one(bn_e)) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: RSA exponent must be odd, "
		    "at least 3 and at most 64 bits");
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
		rc = ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: RSA parameters");
		goto out;
	}
	if (pkey_fromdata("RSA", bld, &pk) != 0) {
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: OpenSSL does not take "
		    "this RSA key");
		goto out;
	}
	*out = pk;
	pk = NULL;
	rc = 0;
out:
	EVP_PKEY_free(pk);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	free(n);
	free(e);
	return rc;
}

static int
jwk_okp(const json_t *jwk, EVP_PKEY **out)
{
	unsigned char *x = NULL;
	const char *crv;
	size_t xlen = 0;
	EVP_PKEY *pk;
	int rc;

	if ((rc = member_str_req(jwk, "crv", "jwk", &crv, NULL)) != 0)
		return rc;
	if (strcmp(crv, "Ed25519") != 0)
		return ck_err_set(CK_JWS_E_BADKEY, "jwk: OKP curve \"%.32s\" is "
		    "not supported (Ed25519 is)", crv);
	if ((rc = member_b64(jwk, "x", "jwk", &x, &xlen)) != 0)
		return rc;
	if (xlen != ED25519_LEN) {
		free(x);
		return ck_err_set(CK_JWS_E_BADKEY, "jwk: an Ed25519 key is %d "
		    "bytes, not %zu", ED25519_LEN, xlen);
	}
	/* XXX the point is not decoded here (OpenSSL 3.0 has no public
	 * check for Ed25519 keys); a key that is no point fails every
	 * signature check instead. */
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen);
	free(x);
	if (pk == NULL)
		return ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: Ed25519 key");
	*out = pk;
	return 0;
}

int
ck_jwk_parse(const json_t *jwk, EVP_PKEY **out)
{
	const char *kty;
	size_t i;
	int rc;

	*out = NULL;
	if (!json_is_object(jwk))
		return ck_err_set(CK_JWS_E_MALFORMED, "jwk is not a JSON object");
	if ((rc = member_str_req(jwk, "kty", "jwk", &kty, NULL)) != 0)
		return rc;
	for (i = 0; i < sizeof(jwk_private_members) /
	    sizeof(jwk_private_members[0]); i++)
		if (json_object_get(jwk, jwk_private_members[i]) != NULL)
			return ck_err_set(CK_JWS_E_BADKEY, "jwk has the private "
			    "key member \"%s\"; send only the public key",
			    jwk_private_members[i]);
	if (strcmp(kty, "EC") == 0)
		return jwk_ec(jwk, out);
	if (strcmp(kty, "RSA") == 0)
		return jwk_rsa(jwk, out);
	if (strcmp(kty, "OKP") == 0)
		return jwk_okp(jwk, out);
	return ck_err_set(CK_JWS_E_BADKEY, "jwk: key type \"%.32s\" is not "
	    "supported (EC, RSA, OKP are)", kty);
}

int
ck_jwk_parse_text(const char *text, size_t len, EVP_PKEY **out)
{
	json_error_t jerr;
	json_t *j;
	int rc;

	*out = NULL;
	if ((j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "jwk is not JSON: %s",
		    jerr.text);
	rc = ck_jwk_parse(j, out);
	json_decref(j);
	return rc;
}

/* b64url of a big number in exactly len bytes (len 0: its own size) as
 * a new string. */
static char *
bn_b64url(const BIGNUM *bn, size_t len)
{
	unsigned char *bin;
	char *s = NULL;

	if (len == 0)
		len = (size_t)BN_num_bytes(bn);
	if ((bin = malloc(len > 0 ? len : 1)) == NULL)
		return NULL;
	if (BN_bn2binpad(bn, bin, (int)len) == (int)len &&
	    (s = malloc(ck_jws_b64url_len(len) + 1)) != NULL)
		ck_jws_b64url_encode(bin, len, s);
	free(bin);
	return s;
}

int
ck_jwk_canonical(EVP_PKEY *pk, char **out)
{
	unsigned char raw[ED25519_LEN];
	char *a = NULL, *b = NULL, *s = NULL;
	BIGNUM *bn_a = NULL, *bn_b = NULL;
	const struct jwk_curve *c;
	size_t rawlen = sizeof(raw), need;
	int rc = CK_JWS_E_INTERNAL;

	*out = NULL;
	if (pk == NULL)
		return ck_err_set(CK_JWS_E_INTERNAL, "jwk: no key");
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		if ((c = curve_of(pk)) == NULL) {
			rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: EC key on a curve "
			    "that is not supported");
			goto out;
		}
		if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &bn_a) ||
		    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &bn_b) ||
		    (a = bn_b64url(bn_a, c->len)) == NULL ||
		    (b = bn_b64url(bn_b, c->len)) == NULL) {
			rc = ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: EC point");
			goto out;
		}
		need = strlen(a) + strlen(b) + 64;
		if ((s = malloc(need)) == NULL)
			goto nomem;
		snprintf(s, need, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\","
		    "\"y\":\"%s\"}", c->crv, a, b);
		break;
	case EVP_PKEY_RSA:
		if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &bn_a) ||
		    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn_b) ||
		    (a = bn_b64url(bn_a, 0)) == NULL ||
		    (b = bn_b64url(bn_b, 0)) == NULL) {
			rc = ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: RSA numbers");
			goto out;
		}
		need = strlen(a) + strlen(b) + 32;
		if ((s = malloc(need)) == NULL)
			goto nomem;
		snprintf(s, need, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
		    a, b);
		break;
	case EVP_PKEY_ED25519:
		if (!EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) ||
		    rawlen != ED25519_LEN) {
			rc = ck_err_ssl(CK_JWS_E_INTERNAL, "jwk: Ed25519 key");
			goto out;
		}
		if ((a = malloc(ck_jws_b64url_len(rawlen) + 1)) == NULL)
			goto nomem;
		ck_jws_b64url_encode(raw, rawlen, a);
		need = strlen(a) + 48;
		if ((s = malloc(need)) == NULL)
			goto nomem;
		snprintf(s, need, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\","
		    "\"x\":\"%s\"}", a);
		break;
	default:
		rc = ck_err_set(CK_JWS_E_BADKEY, "jwk: key type %s is not "
		    "supported", EVP_PKEY_get0_type_name(pk) != NULL ?
		    EVP_PKEY_get0_type_name(pk) : "?");
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
	goto out;
nomem:
	rc = ck_err_set(CK_JWS_E_INTERNAL, "out of memory");
out:
	BN_free(bn_a);
	BN_free(bn_b);
	free(a);
	free(b);
	free(s);
	return rc;
}

int
ck_jwk_thumbprint(EVP_PKEY *pk, char out[CK_JWK_THUMBPRINT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *canon = NULL;
	int rc;

	out[0] = '\0';
	if ((rc = ck_jwk_canonical(pk, &canon)) != 0)
		return rc;
	if (!EVP_Digest(canon, strlen(canon), md, &mdlen,
	    ck_md_for(NID_sha256), NULL) || mdlen != 32) {
		free(canon);
		return ck_err_ssl(CK_JWS_E_INTERNAL, "jwk thumbprint");
	}
	free(canon);
	ck_jws_b64url_encode(md, mdlen, out);
	return 0;
}

int
ck_jwk_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
	int r;

	if (a == NULL || b == NULL)
		return 0;
	r = EVP_PKEY_eq(a, b);
	ERR_clear_error();
	return r == 1;
}

/* ---------------------------------------------------------------- JWS */

void
ck_jws_free(struct ck_jws *jws)
{
	if (jws == NULL)
		return;
	free(jws->nonce);
	free(jws->url);
	free(jws->kid);
	EVP_PKEY_free(jws->jwk);
	free(jws->payload);
	free(jws->signing_input);
	free(jws->sig);
	free(jws);
}

static char *
dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

/* The "alg" of a header: only HMAC ones for a binding, only signature
 * ones for a request. */
static int
header_alg(const json_t *hdr, int eab, const char *what,
    enum ck_jws_alg *out)
{
	const char *alg;
	size_t i;
	int rc;

	if ((rc = member_str_req(hdr, "alg", what, &alg, NULL)) != 0)
		return rc;
	for (i = 0; i < CK_JWS_ALG__MAX; i++)
		if (strcmp(jws_algs[i].name, alg) == 0)
			break;
	if (eab) {
		if (i == CK_JWS_ALG__MAX || !jws_algs[i].hmac)
			return ck_err_set(CK_JWS_E_BADALG, "%s: alg \"%.32s\" is "
			    "not a MAC algorithm (HS256, HS384, HS512 are "
			    "accepted)", what, alg);
	} else if (i == CK_JWS_ALG__MAX) {
		return ck_err_set(CK_JWS_E_BADALG, "%s: alg \"%.32s\" is not "
		    "supported (ES256, ES384, ES512, RS256, EdDSA are)", what,
		    alg);
	} else if (jws_algs[i].hmac) {
		return ck_err_set(CK_JWS_E_BADALG, "%s: MAC algorithm %s is "
		    "not accepted on requests (RFC 8555 6.2); sign with the "
		    "account key", what, alg);
	}
	*out = (enum ck_jws_alg)i;
	return 0;
}

static int
nonce_check(const char *nonce, size_t len, const char *what)
{
	unsigned char *bin = NULL;
	size_t binlen = 0;
	int rc;

	if (len == 0)
		return ck_err_set(CK_JWS_E_BADNONCE, "%s: \"nonce\" is empty",
		    what);
	rc = ck_jws_b64url_decode(nonce, len, "nonce", &bin, &binlen);
	free(bin);
	if (rc == CK_JWS_E_MALFORMED)
		rc = CK_JWS_E_BADNONCE;
	return rc;
}

/*
 * The protected header, decoded: everything but the signature. EAB: a
 * binding (MAC, kid, no nonce); else a request.
 */
static int
parse_header(const json_t *hdr, int eab, unsigned int flags,
    struct ck_jws *j)
{
	const char *what = eab ? "externalAccountBinding protected header" :
	    "JWS protected header";
	const char *url, *kid, *nonce;
	size_t nonce_len;
	json_t *b64, *jwk;
	int rc;

	if (json_object_get(hdr, "crit") != NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: \"crit\" is not "
		    "accepted (no extension is understood here)", what);
	if ((b64 = json_object_get(hdr, "b64")) != NULL && !json_is_true(b64))
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: the payload must be "
		    "base64url encoded (\"b64\" must be true or absent)", what);
	if ((rc = header_alg(hdr, eab, what, &j->alg)) != 0)
		return rc;
	if ((rc = member_str_req(hdr, "url", what, &url, NULL)) != 0)
		return rc;
	if (*url == '\0')
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: \"url\" is empty",
		    what);
	if ((rc = member_str(hdr, "kid", what, &kid, NULL)) != 0)
		return rc;
	jwk = json_object_get(hdr, "jwk");
	if (kid != NULL && jwk != NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s has both \"kid\" and "
		    "\"jwk\"; exactly one is allowed", what);
	if (kid == NULL && jwk == NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s has neither \"kid\" "
		    "nor \"jwk\"", what);
	if (eab && jwk != NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: the binding names "
		    "its MAC key by \"kid\", not \"jwk\"", what);
	if (kid != NULL && *kid == '\0')
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: \"kid\" is empty",
		    what);
	if (jwk != NULL && (rc = ck_jwk_parse(jwk, &j->jwk)) != 0)
		return rc;
	if ((rc = member_str(hdr, "nonce", what, &nonce, &nonce_len)) != 0)
		return eab || (flags & CK_JWS_INNER) ? rc : CK_JWS_E_BADNONCE;
	if (eab || (flags & CK_JWS_INNER)) {
		if (nonce != NULL)
			return ck_err_set(CK_JWS_E_MALFORMED, "%s must not have "
			    "a \"nonce\" (RFC 8555 %s)", what, eab ? "7.3.4" :
			    "7.3.5");
	} else {
		if (nonce == NULL)
			return ck_err_set(CK_JWS_E_BADNONCE, "%s has no "
			    "\"nonce\"", what);
		if ((rc = nonce_check(nonce, nonce_len, what)) != 0)
			return rc;
		if ((j->nonce = dupstr(nonce)) == NULL)
			return ck_err_set(CK_JWS_E_INTERNAL, "out of memory");
	}
	if ((j->url = dupstr(url)) == NULL ||
	    (kid != NULL && (j->kid = dupstr(kid)) == NULL))
		return ck_err_set(CK_JWS_E_INTERNAL, "out of memory");
	return 0;
}

static int
parse_flattened(const json_t *obj, int eab, unsigned int flags,
    struct ck_jws **out)
{
	const char *what = eab ? "externalAccountBinding" : "JWS";
	const char *prot, *payload, *sig, *key;
	size_t prot_len, payload_len, sig_len, hdr_len = 0;
	unsigned char *hdr_bytes = NULL;
	struct ck_jws *j = NULL;
	json_error_t jerr;
	json_t *hdr = NULL, *v;
	int rc;

	*out = NULL;
	if (!json_is_object(obj))
		return ck_err_set(CK_JWS_E_MALFORMED, "%s is not a JSON object",
		    what);
	if (json_object_get(obj, "signatures") != NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s uses the general JSON "
		    "serialization; only the flattened one is accepted "
		    "(RFC 8555 6.2)", what);
	if (json_object_get(obj, "header") != NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s has an unprotected "
		    "header; every header member must be protected "
		    "(RFC 8555 6.2)", what);
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "protected") != 0 &&
		    strcmp(key, "payload") != 0 &&
		    strcmp(key, "signature") != 0)
			return ck_err_set(CK_JWS_E_MALFORMED, "%s has the "
			    "unknown member \"%.32s\"", what, key);
	}
	if ((rc = member_str_req(obj, "protected", what, &prot, &prot_len))
	    != 0 ||
	    (rc = member_str_req(obj, "payload", what, &payload, &payload_len))
	    != 0 ||
	    (rc = member_str_req(obj, "signature", what, &sig, &sig_len)) != 0)
		return rc;
	if (prot_len == 0)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: \"protected\" is "
		    "empty", what);
	if (sig_len == 0)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: \"signature\" is "
		    "empty", what);
	if (eab && payload_len == 0)
		return ck_err_set(CK_JWS_E_MALFORMED, "%s: the payload must be "
		    "the account key", what);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return ck_err_set(CK_JWS_E_INTERNAL, "out of memory");

	if ((rc = ck_jws_b64url_decode(prot, prot_len, eab ?
	    "externalAccountBinding \"protected\"" : "JWS \"protected\"",
	    &hdr_bytes, &hdr_len)) != 0 ||
	    (rc = ck_jws_b64url_decode(payload, payload_len, eab ?
	    "externalAccountBinding \"payload\"" : "JWS \"payload\"",
	    &j->payload, &j->payload_len)) != 0 ||
	    (rc = ck_jws_b64url_decode(sig, sig_len, eab ?
	    "externalAccountBinding \"signature\"" : "JWS \"signature\"",
	    &j->sig, &j->sig_len)) != 0)
		goto out;
	hdr = json_loadb((const char *)hdr_bytes, hdr_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (hdr == NULL || !json_is_object(hdr)) {
		rc = ck_err_set(CK_JWS_E_MALFORMED, "%s: the protected header "
		    "is not a JSON object%s%s", what, hdr == NULL ? ": " : "",
		    hdr == NULL ? jerr.text : "");
		goto out;
	}
	if ((rc = parse_header(hdr, eab, flags, j)) != 0)
		goto out;

	/* The signed bytes are the texts as sent; decoding was strict, so
	 * they are the only spelling of what was decoded. */
	j->signing_input_len = prot_len + 1 + payload_len;
	if ((j->signing_input = malloc(j->signing_input_len + 1)) == NULL) {
		rc = ck_err_set(CK_JWS_E_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(j->signing_input, prot, prot_len);
	j->signing_input[prot_len] = '.';
	memcpy(j->signing_input + prot_len + 1, payload, payload_len);
	j->signing_input[j->signing_input_len] = '\0';
	*out = j;
	j = NULL;
	rc = 0;
out:
	json_decref(hdr);
	free(hdr_bytes);
	ck_jws_free(j);
	return rc;
}

int
ck_jws_parse(const unsigned char *body, size_t len, size_t max,
    unsigned int flags, struct ck_jws **out)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	*out = NULL;
	if (len > max)
		return ck_err_set(CK_JWS_E_TOOBIG, "request body of %zu bytes; "
		    "at most %zu are accepted", len, max);
	if (body == NULL || len == 0)
		return ck_err_set(CK_JWS_E_MALFORMED, "request body is empty");
	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (root == NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "request body is not JSON "
		    "(line %d, column %d): %s", jerr.line, jerr.column,
		    jerr.text);
	rc = parse_flattened(root, 0, flags, out);
	json_decref(root);
	return rc;
}

int
ck_jws_eab_parse(const json_t *eab, struct ck_jws **out)
{
	return parse_flattened(eab, 1, 0, out);
}

/* ECDSA's R||S (each `half` bytes) as the DER OpenSSL verifies. */
static int
ecdsa_raw_to_der(const unsigned char *sig, size_t half, unsigned char **der,
    int *derlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int rc = -1;

	*der = NULL;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(sig, (int)half, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + half, (int)half, NULL)) == NULL ||
	    !ECDSA_SIG_set0(es, r, s))
		goto out;
	r = s = NULL;		/* owned by es now */
	if ((*derlen = i2d_ECDSA_SIG(es, der)) <= 0) {
		*der = NULL;
		goto out;
	}
	rc = 0;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return rc;
}

int
ck_jws_verify(const struct ck_jws *jws, EVP_PKEY *pk)
{
	const struct jws_alg_info *a;
	const struct jwk_curve *c;
	const unsigned char *sig;
	unsigned char *der = NULL;
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md = NULL;
	size_t sig_len, want;
	int rc, bits, derlen = 0, ok;

	if (jws == NULL || pk == NULL)
		return ck_err_set(CK_JWS_E_INTERNAL, "JWS check without a JWS "
		    "or a key");
	if ((unsigned)jws->alg >= CK_JWS_ALG__MAX || jws_algs[jws->alg].hmac)
		return ck_err_set(CK_JWS_E_BADALG, "alg %s is not a signature "
		    "algorithm", ck_jws_alg_name(jws->alg));
	a = &jws_algs[jws->alg];
	sig = jws->sig;
	sig_len = jws->sig_len;
	switch (jws->alg) {
	case CK_JWS_ES256:
	case CK_JWS_ES384:
	case CK_JWS_ES512:
		if ((c = curve_of(pk)) == NULL || c->nid != a->curve)
			return ck_err_set(CK_JWS_E_BADALG, "alg %s does not fit "
			    "the account key (%s%s%s)", a->name,
			    EVP_PKEY_get0_type_name(pk) != NULL ?
			    EVP_PKEY_get0_type_name(pk) : "?",
			    c != NULL ? " " : "", c != NULL ? c->crv : "");
		if (sig_len != 2 * c->len)
			return ck_err_set(CK_JWS_E_BADSIG, "%s signature is %zu "
			    "bytes; R||S is %zu", a->name, sig_len, 2 * c->len);
		if (ecdsa_raw_to_der(sig, c->len, &der, &derlen) != 0)
			return ck_err_ssl(CK_JWS_E_INTERNAL, "ECDSA signature");
		sig = der;
		sig_len = (size_t)derlen;
		break;
	case CK_JWS_RS256:
		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
			return ck_err_set(CK_JWS_E_BADALG, "alg RS256 needs an "
			    "RSA key; the account key is %s",
			    EVP_PKEY_get0_type_name(pk) != NULL ?
			    EVP_PKEY_get0_type_name(pk) : "?");
		bits = EVP_PKEY_get_bits(pk);
		if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
			return ck_err_set(CK_JWS_E_BADALG, "RSA key of %d bits; "
			    "%d to %d are accepted", bits, RSA_MIN_BITS,
			    RSA_MAX_BITS);
		want = (size_t)EVP_PKEY_get_size(pk);
		if (sig_len != want)
			return ck_err_set(CK_JWS_E_BADSIG, "RS256 signature is "
			    "%zu bytes; the key's is %zu", sig_len, want);
		break;
	case CK_JWS_EDDSA:
		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519)
			return ck_err_set(CK_JWS_E_BADALG, "alg EdDSA needs an "
			    "Ed25519 key; the account key is %s",
			    EVP_PKEY_get0_type_name(pk) != NULL ?
			    EVP_PKEY_get0_type_name(pk) : "?");
		if (sig_len != ED25519_SIG_LEN)
			return ck_err_set(CK_JWS_E_BADSIG, "EdDSA signature is "
			    "%zu bytes, not %d", sig_len, ED25519_SIG_LEN);
		break;
	default:
		return ck_err_set(CK_JWS_E_BADALG, "alg %s is not a signature "
		    "algorithm", a->name);
	}
	if (a->mdnid != NID_undef && (md = ck_md_for(a->mdnid)) == NULL) {
		rc = ck_err_ssl(CK_JWS_E_INTERNAL, "digest");
		goto out;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) != 1) {
		rc = ck_err_ssl(CK_JWS_E_INTERNAL, "signature check set-up");
		goto out;
	}
	ok = EVP_DigestVerify(ctx, sig, sig_len,
	    (const unsigned char *)jws->signing_input, jws->signing_input_len);
	ERR_clear_error();
	if (ok != 1) {
		rc = ck_err_set(CK_JWS_E_BADSIG, "the JWS signature (%s) does "
		    "not verify", a->name);
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return rc;
}

int
ck_jws_eab_verify(const struct ck_jws *eab, const struct ck_jws *outer,
    const unsigned char *key, size_t keylen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	EVP_PKEY *bound = NULL;
	const EVP_MD *md;
	int rc;

	if (eab == NULL || outer == NULL || key == NULL || keylen == 0 ||
	    keylen > INT32_MAX)
		return ck_err_set(CK_JWS_E_INTERNAL, "binding check without a "
		    "binding, a request or a key");
	if ((unsigned)eab->alg >= CK_JWS_ALG__MAX || !jws_algs[eab->alg].hmac)
		return ck_err_set(CK_JWS_E_BADALG, "externalAccountBinding: alg "
		    "%s is not a MAC algorithm", ck_jws_alg_name(eab->alg));
	if (outer->jwk == NULL)
		return ck_err_set(CK_JWS_E_MALFORMED, "a newAccount request with "
		    "an externalAccountBinding must carry its key as \"jwk\"");
	if (strcmp(eab->url, outer->url) != 0)
		return ck_err_set(CK_JWS_E_MALFORMED, "externalAccountBinding: "
		    "\"url\" is not the newAccount request's");
	if ((md = ck_md_for(jws_algs[eab->alg].mdnid)) == NULL ||
	    HMAC(md, key, (int)keylen,
	    (const unsigned char *)eab->signing_input, eab->signing_input_len,
	    mac, &maclen) == NULL)
		return ck_err_ssl(CK_JWS_E_INTERNAL, "HMAC");
	rc = eab->sig_len == maclen &&
	    CRYPTO_memcmp(eab->sig, mac, maclen) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!rc)
		return ck_err_set(CK_JWS_E_BADSIG, "externalAccountBinding: the "
		    "MAC does not verify with the key of kid \"%.64s\"",
		    eab->kid != NULL ? eab->kid : "");
	if (ck_jwk_parse_text((const char *)eab->payload, eab->payload_len,
	    &bound) != 0)
		return ck_err_set(CK_JWS_E_MALFORMED, "externalAccountBinding: "
		    "the payload is not the account key: %s", ck_err_msg());
	rc = ck_jwk_equal(bound, outer->jwk);
	EVP_PKEY_free(bound);
	if (!rc)
		return ck_err_set(CK_JWS_E_BADSIG, "externalAccountBinding binds "
		    "another key than the account's \"jwk\"");
	return 0;
}
