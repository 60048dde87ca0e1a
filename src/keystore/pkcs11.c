/*
 * pkcs11.c - CA keys inside a PKCS#11 token; see pkcs11.h.
 *
 * OpenSSL 3.0 deprecates the RSA_METHOD / EC_KEY_METHOD API this file
 * needs: it is how libp11 0.4 (Debian 12) makes a token key an EVP_PKEY,
 * and how the wrapper below stays the same EVP_PKEY across module
 * reloads. A provider would avoid it but is not packaged for Debian 12
 * (libp11 0.5 brings one). The deprecation is confined to this file.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "keystore/pkcs11.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libp11.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <p11-kit/pkcs11.h>

#include "common/err.h"
#include "common/strutil.h"

/* A reload is tried at most this often (milliseconds); a working token
 * is probed with a test signature at most every P11_PROBE_MS. */
#define P11_RETRY_MS 1000
#define P11_PROBE_MS 5000

/* The token behind a wrapper key. */
struct p11_token {
	atomic_int refs;
	pthread_rwlock_t lock;		/* read: signing; write: reload */
	pthread_mutex_t probe_mu;	/* one reload or probe at a time */
	char *module;
	struct keystore_p11_uri uri;
	struct ck_secret *pin;		/* NUL-terminated, for re-login */
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	EVP_PKEY *inner;		/* libp11's key; NULL while down */
	EVP_PKEY *pub;			/* its public half, to recognise it */
	atomic_int available;
	_Atomic int64_t last_try_ms;
	pthread_mutex_t why_mu;
	char why[256];
};

static pthread_once_t meth_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *wrap_rsa_meth;
static EC_KEY_METHOD *wrap_ec_meth;
static int rsa_idx = -1, ec_idx = -1;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- RFC 7512 URIs ---- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode [s, s+n) into dst (cap bytes); *outlen gets the length. */
static int
pct_decode(const char *s, size_t n, unsigned char *dst, size_t cap,
    size_t *outlen, const char *attr)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (n - i < 3)
				return ck_err_set(CK_E_PARSE, "PKCS#11 URI: "
				    "truncated %%-escape in %s", attr);
			if ((hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0)
				return ck_err_set(CK_E_PARSE, "PKCS#11 URI: "
				    "bad %%-escape in %s", attr);
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c < 0x21 || c > 0x7e)
			return ck_err_set(CK_E_PARSE, "PKCS#11 URI: "
			    "unescaped character 0x%02x in %s", c, attr);
		if (o >= cap)
			return ck_err_set(CK_E_PARSE, "PKCS#11 URI: %s is too "
			    "long", attr);
		dst[o++] = c;
	}
	*outlen = o;
	return 0;
}

/* Decode a text attribute into a NUL-terminated string of cap-1 bytes. */
static int
pct_text(const char *s, size_t n, char *dst, size_t cap, const char *attr)
{
	size_t len = 0;
	int r;

	if ((r = pct_decode(s, n, (unsigned char *)dst, cap - 1, &len,
	    attr)) != 0)
		return r;
	if (memchr(dst, '\0', len) != NULL)
		return ck_err_set(CK_E_PARSE, "PKCS#11 URI: NUL in %s", attr);
	dst[len] = '\0';
	return 0;
}

int
keystore_p11_uri_parse(const char *uri, struct keystore_p11_uri *out)
{
	struct keystore_p11_uri u;
	const char *p, *end, *semi, *eq;
	size_t n, len, alen;
	char attr[32], type[16];
	int r;

	memset(&u, 0, sizeof(u));
	if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
		return ck_err_set(CK_E_PARSE, "a PKCS#11 URI starts with "
		    "\"pkcs11:\" (RFC 7512)");
	len = strlen(uri);
	if (len > KEYSTORE_P11_URI_MAX)
		return ck_err_set(CK_E_PARSE, "PKCS#11 URI longer than %d "
		    "bytes", KEYSTORE_P11_URI_MAX);
	if (strchr(uri, '?') != NULL || strchr(uri, '#') != NULL)
		return ck_err_set(CK_E_PARSE, "PKCS#11 URI: query attributes "
		    "(pin-value, pin-source, module-path, ...) are not "
		    "accepted; the PIN is asked for like a passphrase and the "
		    "module is [ca] pkcs11_module");
	p = uri + 7;
	end = uri + len;
	while (p < end) {
		semi = memchr(p, ';', (size_t)(end - p));
		n = semi ? (size_t)(semi - p) : (size_t)(end - p);
		if (n == 0)
			return ck_err_set(CK_E_PARSE, "PKCS#11 URI: empty "
			    "attribute");
		if ((eq = memchr(p, '=', n)) == NULL)
			return ck_err_set(CK_E_PARSE, "PKCS#11 URI: attribute "
			    "without '='");
		alen = (size_t)(eq - p);
		if (alen == 0 || alen >= sizeof(attr))
			return ck_err_set(CK_E_PARSE, "PKCS#11 URI: bad "
			    "attribute name");
		memcpy(attr, p, alen);
		attr[alen] = '\0';
		eq++;
		n -= alen + 1;
		if (strcmp(attr, "token") == 0)
			r = pct_text(eq, n, u.token, sizeof(u.token), attr);
		else if (strcmp(attr, "manufacturer") == 0)
			r = pct_text(eq, n, u.manufacturer,
			    sizeof(u.manufacturer), attr);
		else if (strcmp(attr, "model") == 0)
			r = pct_text(eq, n, u.model, sizeof(u.model), attr);
		else if (strcmp(attr, "serial") == 0)
			r = pct_text(eq, n, u.serial, sizeof(u.serial), attr);
		else if (strcmp(attr, "object") == 0)
			r = pct_text(eq, n, u.object, sizeof(u.object), attr);
		else if (strcmp(attr, "id") == 0) {
			r = pct_decode(eq, n, u.id, sizeof(u.id), &u.id_len,
			    attr);
			if (r == 0 && u.id_len == 0)
				r = ck_err_set(CK_E_PARSE, "PKCS#11 URI: "
				    "empty id");
		} else if (strcmp(attr, "type") == 0) {
			if ((r = pct_text(eq, n, type, sizeof(type),
			    attr)) == 0 && strcmp(type, "private") != 0)
				r = ck_err_set(CK_E_PARSE, "PKCS#11 URI: the "
				    "CA key is type=private, not %s", type);
		} else if (strncmp(attr, "library-", 8) == 0 ||
		    strncmp(attr, "slot-", 5) == 0)
			r = 0;	/* selects modules and slots we choose */
		else
			r = ck_err_set(CK_E_PARSE, "PKCS#11 URI: unknown "
			    "attribute \"%s\"", attr);
		if (r != 0)
			return r;
		p += alen + 1 + n + (semi ? 1 : 0);
		if (semi != NULL && p == end)
			return ck_err_set(CK_E_PARSE, "PKCS#11 URI: trailing "
			    "';'");
	}
	if (u.object[0] == '\0' && u.id_len == 0)
		return ck_err_set(CK_E_PARSE, "PKCS#11 URI: name the key with "
		    "object= (its label) or id=");
	*out = u;
	return 0;
}

/* ---- reading errors ---- */

/* The last libp11/OpenSSL error as text (the queue is cleared). */
static void
last_error(char *buf, size_t bufsz, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	char tmp[160];

	if (reason == NULL && e != 0) {
		ERR_error_string_n(e, tmp, sizeof(tmp));
		reason = tmp;
	}
	snprintf(buf, bufsz, "%s%s%s", what, reason ? ": " : "",
	    reason ? reason : "");
	ERR_clear_error();
}

/* The PKCS#11 return value libp11 queued (its CKR errors carry it as the
 * reason), or -1; the queue is cleared. */
static int
queue_ckr(void)
{
	unsigned long e;
	int ckr = -1, lib = ERR_get_CKR_code();

	while ((e = ERR_get_error()) != 0)
		if (lib != 0 && ERR_GET_LIB(e) == lib)
			ckr = ERR_GET_REASON(e);
	return ckr;
}

static void
set_why(struct p11_token *t, const char *why)
{
	pthread_mutex_lock(&t->why_mu);
	snprintf(t->why, sizeof(t->why), "%s", why);
	pthread_mutex_unlock(&t->why_mu);
}

/* ---- opening the token (libp11) ---- */

static int
field_match(const char *want, const char *have)
{
	return want[0] == '\0' || (have != NULL && strcmp(want, have) == 0);
}

static void
token_down(struct p11_token *t)
{
	EVP_PKEY_free(t->inner);
	t->inner = NULL;
	if (t->slots != NULL)
		PKCS11_release_all_slots(t->ctx, t->slots, t->nslots);
	t->slots = NULL;
	t->nslots = 0;
	if (t->ctx != NULL) {
		PKCS11_CTX_unload(t->ctx);
		PKCS11_CTX_free(t->ctx);
	}
	t->ctx = NULL;
}

/*
 * Load the module, find the token and key, log in. On failure everything
 * is released, `why` says what went wrong and the CK_E_* code is returned
 * (without setting the thread's error message).
 */
static int
token_up(struct p11_token *t, char *why, size_t whysz)
{
	PKCS11_SLOT *slot = NULL;
	PKCS11_KEY *keys = NULL, *key = NULL;
	unsigned int i, nkeys = 0;
	int r = CK_E_CRYPTO, ckr;

	if ((t->ctx = PKCS11_CTX_new()) == NULL) {
		snprintf(why, whysz, "out of memory");
		return CK_E_NOMEM;
	}
	if (PKCS11_CTX_load(t->ctx, t->module) != 0) {
		last_error(why, whysz, "cannot load the PKCS#11 module");
		PKCS11_CTX_free(t->ctx);
		t->ctx = NULL;
		return CK_E_CRYPTO;
	}
	if (PKCS11_enumerate_slots(t->ctx, &t->slots, &t->nslots) != 0) {
		last_error(why, whysz, "cannot list the token slots");
		goto fail;
	}
	for (i = 0; i < t->nslots; i++) {
		PKCS11_TOKEN *tok = t->slots[i].token;

		if (tok != NULL && tok->initialized &&
		    field_match(t->uri.token, tok->label) &&
		    field_match(t->uri.manufacturer, tok->manufacturer) &&
		    field_match(t->uri.model, tok->model) &&
		    field_match(t->uri.serial, tok->serialnr)) {
			slot = &t->slots[i];
			break;
		}
	}
	if (slot == NULL) {
		snprintf(why, whysz, "no token \"%s\" is present",
		    t->uri.token[0] ? t->uri.token : "(any)");
		r = CK_E_NOTFOUND;
		goto fail;
	}
	if (slot->token->userPinLocked) {
		snprintf(why, whysz, "the token's user PIN is locked");
		r = CK_E_PASSPHRASE;
		goto fail;
	}
	ERR_clear_error();
	if (PKCS11_login(slot, 0, (const char *)t->pin->buf) != 0) {
		ckr = queue_ckr();
		r = ckr == CKR_PIN_INCORRECT || ckr == CKR_PIN_LEN_RANGE ||
		    ckr == CKR_PIN_LOCKED || ckr == CKR_PIN_EXPIRED ?
		    CK_E_PASSPHRASE : CK_E_CRYPTO;
		if (ckr == CKR_PIN_INCORRECT)
			snprintf(why, whysz, "wrong token PIN");
		else if (r == CK_E_PASSPHRASE)
			snprintf(why, whysz, "the token PIN is locked, expired "
			    "or of the wrong length (CKR 0x%x)", ckr);
		else
			snprintf(why, whysz, "token login failed (CKR 0x%x)",
			    ckr);
		goto fail;
	}
	if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
		last_error(why, whysz, "cannot list the token's keys");
		goto fail;
	}
	for (i = 0; i < nkeys; i++) {
		if (!keys[i].isPrivate)
			continue;
		if (t->uri.object[0] != '\0' && (keys[i].label == NULL ||
		    strcmp(keys[i].label, t->uri.object) != 0))
			continue;
		if (t->uri.id_len > 0 && (keys[i].id_len != t->uri.id_len ||
		    memcmp(keys[i].id, t->uri.id, t->uri.id_len) != 0))
			continue;
		if (key != NULL) {
			snprintf(why, whysz, "the URI names more than one "
			    "private key");
			r = CK_E_INVAL;
			goto fail;
		}
		key = &keys[i];
	}
	if (key == NULL) {
		snprintf(why, whysz, "no private key \"%s\" in token \"%s\"",
		    t->uri.object, slot->token->label);
		r = CK_E_NOTFOUND;
		goto fail;
	}
	if ((t->inner = PKCS11_get_private_key(key)) == NULL) {
		last_error(why, whysz, "cannot use the token's key");
		goto fail;
	}
	return 0;
fail:
	ERR_clear_error();
	token_down(t);
	return r;
}

static void
token_unref(struct p11_token *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	token_down(t);
	EVP_PKEY_free(t->pub);
	ck_secret_free(t->pin);
	free(t->module);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->probe_mu);
	pthread_mutex_destroy(&t->why_mu);
	free(t);
}

/* ---- the wrapper key ---- */

static void
mark_failed(struct p11_token *t, const char *what)
{
	char why[256];

	last_error(why, sizeof(why), what);
	/* The first failure's reason is the one worth keeping. */
	if (atomic_exchange(&t->available, 0) == 1) {
		set_why(t, why);
		atomic_store(&t->last_try_ms, now_ms());
	}
}

static int try_reload(struct p11_token *t, int force);

/* Take the read lock on a usable token (reloading it if due). */
static int
token_enter(struct p11_token *t)
{
	if (!atomic_load(&t->available))
		(void)try_reload(t, 0);
	pthread_rwlock_rdlock(&t->lock);
	if (atomic_load(&t->available) && t->inner != NULL)
		return 1;
	pthread_rwlock_unlock(&t->lock);
	ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL,
	    "signer unavailable");
	return 0;
}

static int
wrap_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	struct p11_token *t = RSA_get_ex_data(rsa, rsa_idx);
	int n;

	if (t == NULL || !token_enter(t))
		return -1;
	/* get0 is const in 3.0 but libp11 keeps no state in the key. */
	n = RSA_private_encrypt(flen, from, to,
	    (RSA *)EVP_PKEY_get0_RSA(t->inner), padding);
	pthread_rwlock_unlock(&t->lock);
	if (n < 0)
		mark_failed(t, "the token failed to sign");
	return n;
}

static int
wrap_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	(void)flen; (void)from; (void)to; (void)rsa; (void)padding;
	/* A CA key signs; it never decrypts. */
	ERR_raise(ERR_LIB_RSA, ERR_R_OPERATION_FAIL);
	return -1;
}

static int
wrap_rsa_finish(RSA *rsa)
{
	token_unref(RSA_get_ex_data(rsa, rsa_idx));
	(void)RSA_set_ex_data(rsa, rsa_idx, NULL);
	return 1;
}

static ECDSA_SIG *
wrap_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	struct p11_token *t = EC_KEY_get_ex_data(ec, ec_idx);
	ECDSA_SIG *sig;

	(void)kinv; (void)r;
	if (t == NULL || !token_enter(t))
		return NULL;
	sig = ECDSA_do_sign(dgst, dlen,
	    (EC_KEY *)EVP_PKEY_get0_EC_KEY(t->inner));
	pthread_rwlock_unlock(&t->lock);
	if (sig == NULL)
		mark_failed(t, "the token failed to sign");
	return sig;
}

static int
wrap_ec_sign_setup(EC_KEY *ec, BN_CTX *ctx, BIGNUM **kinv, BIGNUM **r)
{
	(void)ec; (void)ctx; (void)kinv; (void)r;
	return 1;	/* the token draws its own nonce */
}

static void
wrap_ec_finish(EC_KEY *ec)
{
	token_unref(EC_KEY_get_ex_data(ec, ec_idx));
	(void)EC_KEY_set_ex_data(ec, ec_idx, NULL);
}

/* A copy of the RSA/EC_KEY (OpenSSL may dup keys) holds a reference. */
static int
ex_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d,
    int idx, long argl, void *argp)
{
	struct p11_token *t = *(struct p11_token **)from_d;

	(void)to; (void)from; (void)idx; (void)argl; (void)argp;
	if (t != NULL)
		atomic_fetch_add(&t->refs, 1);
	return 1;
}

static void
meth_init(void)
{
	int (*ec_sign)(int, const unsigned char *, int, unsigned char *,
	    unsigned int *, const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;
	int (*ec_init)(EC_KEY *) = NULL;
	void (*ec_finish)(EC_KEY *) = NULL;
	int (*ec_copy)(EC_KEY *, const EC_KEY *) = NULL;
	int (*ec_set_group)(EC_KEY *, const EC_GROUP *) = NULL;
	int (*ec_set_priv)(EC_KEY *, const BIGNUM *) = NULL;
	int (*ec_set_pub)(EC_KEY *, const EC_POINT *) = NULL;

	rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, ex_dup, NULL);
	ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, ex_dup, NULL);
	if ((wrap_rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) != NULL &&
	    (RSA_meth_set1_name(wrap_rsa_meth, "certkeep PKCS#11") != 1 ||
	    RSA_meth_set_priv_enc(wrap_rsa_meth, wrap_rsa_priv_enc) != 1 ||
	    RSA_meth_set_priv_dec(wrap_rsa_meth, wrap_rsa_priv_dec) != 1 ||
	    RSA_meth_set_finish(wrap_rsa_meth, wrap_rsa_finish) != 1)) {
		RSA_meth_free(wrap_rsa_meth);
		wrap_rsa_meth = NULL;
	}
	if ((wrap_ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) != NULL) {
		EC_KEY_METHOD_get_sign(wrap_ec_meth, &ec_sign, NULL, NULL);
		EC_KEY_METHOD_set_sign(wrap_ec_meth, ec_sign,
		    wrap_ec_sign_setup, wrap_ec_sign_sig);
		EC_KEY_METHOD_get_init(wrap_ec_meth, &ec_init, &ec_finish,
		    &ec_copy, &ec_set_group, &ec_set_priv, &ec_set_pub);
		EC_KEY_METHOD_set_init(wrap_ec_meth, ec_init, wrap_ec_finish,
		    ec_copy, ec_set_group, ec_set_priv, ec_set_pub);
	}
}

/* The wrapper for t's current inner key; takes a reference to t. */
static int
wrap_key(struct p11_token *t, EVP_PKEY **out)
{
	EVP_PKEY *pk = NULL;
	RSA *rsa = NULL;
	EC_KEY *ec = NULL;
	const RSA *irsa;
	const EC_KEY *iec;
	const BIGNUM *n, *e;
	BIGNUM *n2 = NULL, *e2 = NULL;

	if ((pk = EVP_PKEY_new()) == NULL)
		return CK_E_NOMEM;
	switch (EVP_PKEY_get_base_id(t->inner)) {
	case EVP_PKEY_RSA:
		if (wrap_rsa_meth == NULL ||
		    (irsa = EVP_PKEY_get0_RSA(t->inner)) == NULL ||
		    (rsa = RSA_new()) == NULL ||
		    RSA_set_method(rsa, wrap_rsa_meth) != 1)
			goto fail;
		RSA_get0_key(irsa, &n, &e, NULL);
		if (n == NULL || e == NULL || (n2 = BN_dup(n)) == NULL ||
		    (e2 = BN_dup(e)) == NULL ||
		    RSA_set0_key(rsa, n2, e2, NULL) != 1)
			goto fail;
		n2 = e2 = NULL;
		atomic_fetch_add(&t->refs, 1);
		(void)RSA_set_ex_data(rsa, rsa_idx, t);
		if (EVP_PKEY_assign_RSA(pk, rsa) != 1)
			goto fail;
		rsa = NULL;
		break;
	case EVP_PKEY_EC:
		if (wrap_ec_meth == NULL ||
		    (iec = EVP_PKEY_get0_EC_KEY(t->inner)) == NULL ||
		    EC_KEY_get0_public_key(iec) == NULL ||
		    (ec = EC_KEY_new()) == NULL ||
		    EC_KEY_set_method(ec, wrap_ec_meth) != 1 ||
		    EC_KEY_set_group(ec, EC_KEY_get0_group(iec)) != 1 ||
		    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(iec))
		    != 1)
			goto fail;
		atomic_fetch_add(&t->refs, 1);
		(void)EC_KEY_set_ex_data(ec, ec_idx, t);
		if (EVP_PKEY_assign_EC_KEY(pk, ec) != 1)
			goto fail;
		ec = NULL;
		break;
	default:
		EVP_PKEY_free(pk);
		return ck_err_set(CK_E_INVAL, "the token key is neither RSA "
		    "nor EC");
	}
	*out = pk;
	return 0;
fail:
	BN_free(n2);
	BN_free(e2);
	RSA_free(rsa);		/* drops the reference, if it was taken */
	EC_KEY_free(ec);
	EVP_PKEY_free(pk);
	return ck_err_ssl(CK_E_CRYPTO, "wrapping the token key");
}

/* The token behind a wrapper key, or NULL for any other key. */
static struct p11_token *
token_of(const EVP_PKEY *key)
{
	const RSA *rsa;
	const EC_KEY *ec;

	/* A provider's key is not ours, and get0_RSA on it would make and
	 * keep a legacy copy of its private half. */
	if (key == NULL || EVP_PKEY_get0_provider(key) != NULL)
		return NULL;
	(void)pthread_once(&meth_once, meth_init);
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		rsa = EVP_PKEY_get0_RSA(key);
		if (rsa != NULL && wrap_rsa_meth != NULL &&
		    RSA_get_method(rsa) == wrap_rsa_meth)
			return RSA_get_ex_data(rsa, rsa_idx);
		break;
	case EVP_PKEY_EC:
		ec = EVP_PKEY_get0_EC_KEY(key);
		if (ec != NULL && wrap_ec_meth != NULL &&
		    EC_KEY_get_method(ec) == wrap_ec_meth)
			return EC_KEY_get_ex_data(ec, ec_idx);
		break;
	default:
		break;
	}
	ERR_clear_error();
	return NULL;
}

/* Sign a fixed digest with the inner key (the caller holds the lock). */
static int
test_sign(struct p11_token *t)
{
	unsigned char md[32], sig[1024];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *ctx;
	int ok;

	memset(md, 0x5a, sizeof(md));
	ok = (ctx = EVP_PKEY_CTX_new(t->inner, NULL)) != NULL &&
	    EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(ctx, sig, &siglen, md, sizeof(md)) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/*
 * Reload the module and log in again, unless one was tried less than
 * P11_RETRY_MS ago (or `force`). Returns 1 if the token is available.
 */
static int
try_reload(struct p11_token *t, int force)
{
	char why[256];
	int64_t now = now_ms();
	int r;

	if (pthread_mutex_trylock(&t->probe_mu) != 0)
		return atomic_load(&t->available);
	if (atomic_load(&t->available) || (!force &&
	    now - atomic_load(&t->last_try_ms) < P11_RETRY_MS)) {
		pthread_mutex_unlock(&t->probe_mu);
		return atomic_load(&t->available);
	}
	atomic_store(&t->last_try_ms, now);
	pthread_rwlock_wrlock(&t->lock);
	token_down(t);
	if ((r = token_up(t, why, sizeof(why))) == 0) {
		if (EVP_PKEY_eq(t->inner, t->pub) != 1) {
			snprintf(why, sizeof(why), "the token now holds a "
			    "different key under that URI");
			token_down(t);
			r = CK_E_TAMPER;
		} else if (!test_sign(t)) {
			last_error(why, sizeof(why), "the token failed to "
			    "sign");
			token_down(t);
			r = CK_E_CRYPTO;
		}
	}
	ERR_clear_error();
	if (r == 0)
		atomic_store(&t->available, 1);
	else
		set_why(t, why);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_unlock(&t->probe_mu);
	return r == 0;
}

/* A plain public key equal to `key` (no tie to the token). */
static EVP_PKEY *
public_copy(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	const unsigned char *q;
	EVP_PKEY *pub = NULL;
	int len;

	if ((len = i2d_PUBKEY(key, &der)) > 0) {
		q = der;
		pub = d2i_PUBKEY(NULL, &q, len);
	}
	OPENSSL_free(der);
	return pub;
}

int
keystore_p11_load(const char *module, const char *uri,
    const struct ck_secret *pin, EVP_PKEY **out)
{
	struct p11_token *t = NULL;
	char why[256];
	int r;

	*out = NULL;
	(void)pthread_once(&meth_once, meth_init);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return CK_E_NOMEM;
	atomic_init(&t->refs, 1);
	atomic_init(&t->available, 0);
	atomic_init(&t->last_try_ms, 0);
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->probe_mu, NULL);
	pthread_mutex_init(&t->why_mu, NULL);
	if ((r = keystore_p11_uri_parse(uri, &t->uri)) != 0)
		goto out;
	if ((t->module = strdup(module)) == NULL ||
	    (t->pin = ck_secret_new(pin->len + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy(t->pin->buf, pin->buf, pin->len);
	t->pin->len = pin->len;
	t->pin->buf[pin->len] = '\0';
	if ((r = token_up(t, why, sizeof(why))) != 0) {
		r = ck_err_set(r, "PKCS#11 token (%s): %s", module, why);
		goto out;
	}
	if ((r = wrap_key(t, out)) != 0)
		goto out;
	if ((t->pub = public_copy(*out)) == NULL) {
		r = ck_err_ssl(CK_E_NOMEM, "copying the token's public key");
		EVP_PKEY_free(*out);
		*out = NULL;
		goto out;
	}
	atomic_store(&t->available, 1);
	r = 0;
out:
	ERR_clear_error();
	token_unref(t);	/* the wrapper holds its own reference */
	return r;
}

int
keystore_p11_is_token_key(const EVP_PKEY *key)
{
	return token_of(key) != NULL;
}

int
keystore_p11_available(const EVP_PKEY *key, char *why, size_t whysz)
{
	struct p11_token *t = token_of(key);
	int ok;

	if (why != NULL && whysz > 0)
		why[0] = '\0';
	if (t == NULL)
		return 1;
	ok = atomic_load(&t->available);
	if (why != NULL && whysz > 0) {
		pthread_mutex_lock(&t->why_mu);
		snprintf(why, whysz, "%s", ok ? "" : t->why);
		pthread_mutex_unlock(&t->why_mu);
	}
	return ok;
}

int
keystore_p11_probe(const EVP_PKEY *key)
{
	struct p11_token *t = token_of(key);
	int64_t now = now_ms();
	int ok;

	if (t == NULL)
		return 1;
	if (!atomic_load(&t->available))
		return try_reload(t, 0);
	if (now - atomic_load(&t->last_try_ms) < P11_PROBE_MS ||
	    pthread_mutex_trylock(&t->probe_mu) != 0)
		return atomic_load(&t->available);
	atomic_store(&t->last_try_ms, now);
	pthread_rwlock_rdlock(&t->lock);
	ok = t->inner != NULL && test_sign(t);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_unlock(&t->probe_mu);
	if (!ok)
		mark_failed(t, "the token failed a test signature");
	return ok;
}

/* ---- key generation (plain PKCS#11: libp11 0.4 generates RSA only) ---- */

struct p11_raw {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	int initialized;
	CK_SESSION_HANDLE sess;
	int have_sess;
};

static int
ckr_fail(CK_RV rv, const char *what)
{
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ||
	    rv == CKR_PIN_LEN_RANGE)
		return ck_err_set(CK_E_PASSPHRASE, "%s: wrong or locked token "
		    "PIN (CKR 0x%lx)", what, (unsigned long)rv);
	return ck_err_set(CK_E_CRYPTO, "%s: PKCS#11 error 0x%lx", what,
	    (unsigned long)rv);
}

static void
raw_close(struct p11_raw *p)
{
	if (p->have_sess) {
		(void)p->f->C_Logout(p->sess);
		(void)p->f->C_CloseSession(p->sess);
	}
	if (p->initialized)
		(void)p->f->C_Finalize(NULL);
	if (p->dl != NULL)
		dlclose(p->dl);
	memset(p, 0, sizeof(*p));
}

/* Copy a blank-padded PKCS#11 field into a trimmed C string. */
static void
padded(const unsigned char *f, size_t n, char *out)
{
	while (n > 0 && f[n - 1] == ' ')
		n--;
	memcpy(out, f, n);
	out[n] = '\0';
}

static int
raw_open(struct p11_raw *p, const char *module,
    const struct keystore_p11_uri *u, const struct ck_secret *pin)
{
	CK_C_GetFunctionList gfl;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID *slots = NULL, slot = 0;
	CK_ULONG n = 0, i;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	char label[33], manuf[33], model[17], serial[17];
	int found = 0, r;

	memset(p, 0, sizeof(*p));
	if ((p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return ck_err_set(CK_E_NOTFOUND, "cannot load the PKCS#11 "
		    "module %s: %s", module, dlerror());
	*(void **)&gfl = dlsym(p->dl, "C_GetFunctionList");
	if (gfl == NULL || gfl(&p->f) != CKR_OK || p->f == NULL) {
		r = ck_err_set(CK_E_INVAL, "%s is not a PKCS#11 module",
		    module);
		goto fail;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = p->f->C_Initialize(&args)) != CKR_OK &&
	    rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		r = ckr_fail(rv, "C_Initialize");
		goto fail;
	}
	p->initialized = rv == CKR_OK;
	if ((rv = p->f->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK) {
		r = ckr_fail(rv, "C_GetSlotList");
		goto fail;
	}
	if (n > 4096 || (slots = calloc(n + 1, sizeof(*slots))) == NULL) {
		r = CK_E_NOMEM;
		goto fail;
	}
	if ((rv = p->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		r = ckr_fail(rv, "C_GetSlotList");
		goto fail;
	}
	for (i = 0; i < n && !found; i++) {
		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		padded(ti.label, sizeof(ti.label), label);
		padded(ti.manufacturerID, sizeof(ti.manufacturerID), manuf);
		padded(ti.model, sizeof(ti.model), model);
		padded(ti.serialNumber, sizeof(ti.serialNumber), serial);
		if (field_match(u->token, label) &&
		    field_match(u->manufacturer, manuf) &&
		    field_match(u->model, model) &&
		    field_match(u->serial, serial)) {
			slot = slots[i];
			found = 1;
		}
	}
	if (!found) {
		r = ck_err_set(CK_E_NOTFOUND, "no PKCS#11 token \"%s\" is "
		    "present", u->token[0] ? u->token : "(any)");
		goto fail;
	}
	if ((rv = p->f->C_OpenSession(slot, CKF_SERIAL_SESSION |
	    CKF_RW_SESSION, NULL, NULL, &p->sess)) != CKR_OK) {
		r = ckr_fail(rv, "C_OpenSession");
		goto fail;
	}
	p->have_sess = 1;
	rv = p->f->C_Login(p->sess, CKU_USER, pin->buf, pin->len);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		r = ckr_fail(rv, "token login");
		goto fail;
	}
	free(slots);
	return 0;
fail:
	free(slots);
	raw_close(p);
	return r;
}

/* CK_E_EXISTS if a private key with this label or id is already there. */
static int
raw_check_free(struct p11_raw *p, const struct keystore_p11_uri *u,
    const unsigned char *id, size_t id_len)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[2];
	CK_OBJECT_HANDLE h;
	CK_ULONG found = 0;
	CK_RV rv;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		tmpl[0].type = CKA_CLASS;
		tmpl[0].pValue = &cls;
		tmpl[0].ulValueLen = sizeof(cls);
		if (pass == 0) {
			if (u->object[0] == '\0')
				continue;
			tmpl[1].type = CKA_LABEL;
			tmpl[1].pValue = (void *)u->object;
			tmpl[1].ulValueLen = strlen(u->object);
		} else {
			tmpl[1].type = CKA_ID;
			tmpl[1].pValue = (void *)id;
			tmpl[1].ulValueLen = id_len;
		}
		if ((rv = p->f->C_FindObjectsInit(p->sess, tmpl, 2)) != CKR_OK)
			return ckr_fail(rv, "C_FindObjectsInit");
		rv = p->f->C_FindObjects(p->sess, &h, 1, &found);
		(void)p->f->C_FindObjectsFinal(p->sess);
		if (rv != CKR_OK)
			return ckr_fail(rv, "C_FindObjects");
		if (found > 0)
			return ck_err_set(CK_E_EXISTS, "the token already "
			    "holds a private key with this %s; name another, "
			    "or use it without --pkcs11-generate",
			    pass == 0 ? "label" : "id");
	}
	return 0;
}

int
keystore_p11_generate(const char *module, const char *uri,
    enum ck_key_type type, const struct ck_secret *pin)
{
	static const unsigned char p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48,
	    0xce, 0x3d, 0x03, 0x01, 0x07 };
	static const unsigned char p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04,
	    0x00, 0x22 };
	static const unsigned char f4[] = { 0x01, 0x00, 0x01 };
	struct keystore_p11_uri u;
	struct p11_raw p;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 0;
	CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[9], priv[10];
	CK_ULONG npub = 0, npriv = 0;
	CK_OBJECT_HANDLE hpub, hpriv;
	unsigned char id[16];
	const unsigned char *idp;
	size_t id_len;
	CK_RV rv;
	int r;

#define A(arr, n, t, v, l) do { arr[n].type = (t); \
	arr[n].pValue = (void *)(v); arr[n].ulValueLen = (l); n++; } while (0)
	if ((r = keystore_p11_uri_parse(uri, &u)) != 0)
		return r;
	switch (type) {
	case CK_KEY_RSA2048: bits = 2048; break;
	case CK_KEY_RSA3072: bits = 3072; break;
	case CK_KEY_RSA4096: bits = 4096; break;
	case CK_KEY_EC_P256:
	case CK_KEY_EC_P384:
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		break;
	default:
		return ck_err_set(CK_E_INVAL, "a token key is RSA or EC "
		    "P-256/P-384, not %s", ck_key_type_name(type));
	}
	if (u.id_len > 0) {
		idp = u.id;
		id_len = u.id_len;
	} else {
		/* libp11 pairs an EC key with its public half by CKA_ID. */
		if (RAND_bytes(id, sizeof(id)) != 1)
			return ck_err_ssl(CK_E_CRYPTO, "random key id");
		idp = id;
		id_len = sizeof(id);
	}
	if ((r = raw_open(&p, module, &u, pin)) != 0)
		return r;
	if ((r = raw_check_free(&p, &u, idp, id_len)) != 0)
		goto out;
	A(pub, npub, CKA_TOKEN, &yes, sizeof(yes));
	A(pub, npub, CKA_PRIVATE, &no, sizeof(no));
	A(pub, npub, CKA_VERIFY, &yes, sizeof(yes));
	A(pub, npub, CKA_ENCRYPT, &no, sizeof(no));
	A(pub, npub, CKA_WRAP, &no, sizeof(no));
	A(pub, npub, CKA_ID, idp, id_len);
	if (u.object[0] != '\0')
		A(pub, npub, CKA_LABEL, u.object, strlen(u.object));
	if (bits != 0) {
		A(pub, npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
		A(pub, npub, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
	} else if (type == CK_KEY_EC_P256)
		A(pub, npub, CKA_EC_PARAMS, p256, sizeof(p256));
	else
		A(pub, npub, CKA_EC_PARAMS, p384, sizeof(p384));
	A(priv, npriv, CKA_TOKEN, &yes, sizeof(yes));
	A(priv, npriv, CKA_PRIVATE, &yes, sizeof(yes));
	A(priv, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
	A(priv, npriv, CKA_EXTRACTABLE, &no, sizeof(no));
	A(priv, npriv, CKA_SIGN, &yes, sizeof(yes));
	A(priv, npriv, CKA_DECRYPT, &no, sizeof(no));
	A(priv, npriv, CKA_UNWRAP, &no, sizeof(no));
	A(priv, npriv, CKA_DERIVE, &no, sizeof(no));
	A(priv, npriv, CKA_ID, idp, id_len);
	if (u.object[0] != '\0')
		A(priv, npriv, CKA_LABEL, u.object, strlen(u.object));
#undef A
	if ((rv = p.f->C_GenerateKeyPair(p.sess, &mech, pub, npub, priv,
	    npriv, &hpub, &hpriv)) != CKR_OK) {
		r = ckr_fail(rv, "generating the key pair in the token");
		goto out;
	}
	r = 0;
out:
	raw_close(&p);
	return r;
}
