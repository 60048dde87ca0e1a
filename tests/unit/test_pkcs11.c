/*
 * test_pkcs11.c - src/keystore/pkcs11: RFC 7512 URIs; with SoftHSM2 (else
 * those tests are skipped): key pairs generated in a token, loaded as an
 * EVP_PKEY whose signatures verify with the public key, a wrong PIN and a
 * missing key refused, concurrent signing from several threads (timed:
 * the numbers are printed), and the "unavailable" state when the token
 * goes away and its end when it comes back.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/config.h"
#include "common/err.h"
#include "common/secmem.h"
#include "keystore/pkcs11.h"

#define PIN "31415926"

static const char *module;
static char dir[4096];
static char tokens[4200];

static struct ck_secret *
secret_of(const char *v)
{
	struct ck_secret *s = ck_secret_new(256);

	assert_non_null(s);
	s->len = strlen(v);
	memcpy(s->buf, v, s->len);
	s->buf[s->len] = '\0';
	return s;
}

/* ---- URIs ---- */

static void
test_uri_ok(void **state)
{
	struct keystore_p11_uri u;

	(void)state;
	assert_int_equal(keystore_p11_uri_parse("pkcs11:token=My%20CA;"
	    "object=root;id=%01%ff;type=private;serial=42;"
	    "library-description=x;slot-id=1", &u), 0);
	assert_string_equal(u.token, "My CA");
	assert_string_equal(u.object, "root");
	assert_string_equal(u.serial, "42");
	assert_int_equal(u.id_len, 2);
	assert_int_equal(u.id[0], 0x01);
	assert_int_equal(u.id[1], 0xff);
	assert_int_equal(keystore_p11_uri_parse("pkcs11:id=%AB", &u), 0);
	assert_int_equal(u.id_len, 1);
	assert_string_equal(u.token, "");
}

static void
test_uri_refused(void **state)
{
	static const char *const bad[] = {
		"pkcs11:object=a?pin-value=1234",	/* a PIN in the URI */
		"pkcs11:object=a;pin-value=1234",
		"pkcs11:object=a?module-path=/x.so",
		"pkcs11:token=t",			/* no key named */
		"pkcs11:object=a;",
		"pkcs11:object",
		"pkcs11:=a",
		"pkcs11:object=%4",
		"pkcs11:object=%zz",
		"pkcs11:object=%00a",
		"pkcs11:object=a b",
		"pkcs11:type=cert;object=a",
		"pkcs11:id=",
		"pkcs11:token=123456789012345678901234567890123;object=a",
		"pkcs:object=a",
		"",
		NULL
	};
	struct keystore_p11_uri u;
	char longuri[KEYSTORE_P11_URI_MAX + 32];
	int i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		if (keystore_p11_uri_parse(bad[i], &u) != CK_E_PARSE)
			fail_msg("accepted: %s", bad[i]);
	}
	memset(longuri, 'a', sizeof(longuri) - 1);
	longuri[sizeof(longuri) - 1] = '\0';
	memcpy(longuri, "pkcs11:object=", 14);
	assert_int_equal(keystore_p11_uri_parse(longuri, &u), CK_E_PARSE);
	assert_int_equal(keystore_p11_uri_parse("pkcs11:object=a?pin-value=1",
	    &u), CK_E_PARSE);
	assert_contains(ck_err_msg(), "PIN");
}

/* [ca] key_uri and pkcs11_module in certkeep.conf. */
static void
test_config(void **state)
{
	static const char *const bad[] = {
		"[ca]\nkey_uri = pkcs11:object=a\n",	/* no module */
		"[ca]\npkcs11_module = /m.so\n",		/* no URI */
		"[ca]\nkey_uri = pkcs11:object=a\npkcs11_module = m.so\n",
		"[ca]\nkey_uri = pkcs11:object=a;pin-value=1\n"
		    "pkcs11_module = /m.so\n",
		"[ca]\nkey_uri = pkcs11:object=a?pin-source=/f\n"
		    "pkcs11_module = /m.so\n",
		"[ca]\nkey_uri = /srv/key\npkcs11_module = /m.so\n",
		NULL
	};
	const char *good = "[ca]\nkey_uri = pkcs11:token=t;object=spin-1\n"
	    "pkcs11_module = /usr/lib/softhsm/libsofthsm2.so\n";
	struct ck_config *cfg = NULL;
	int i;

	(void)state;
	assert_int_equal(ck_config_parse(good, strlen(good), &cfg), 0);
	assert_string_equal(cfg->key_uri, "pkcs11:token=t;object=spin-1");
	assert_string_equal(cfg->pkcs11_module,
	    "/usr/lib/softhsm/libsofthsm2.so");
	ck_config_free(cfg);
	for (i = 0; bad[i] != NULL; i++) {
		cfg = NULL;
		if (ck_config_parse(bad[i], strlen(bad[i]), &cfg) !=
		    CK_E_PARSE)
			fail_msg("accepted: %s", bad[i]);
		assert_null(cfg);
		assert_contains(ck_err_msg(), "key_uri");
	}
}

/* A software key is always available, with an empty reason. */
static void
test_software_key(void **state)
{
	EVP_PKEY *key = NULL;
	char why[32] = "stale";

	(void)state;
	assert_int_equal(ck_key_generate(CK_KEY_EC_P256, &key), 0);
	assert_false(keystore_p11_is_token_key(key));
	assert_int_equal(keystore_p11_available(key, why, sizeof(why)), 1);
	assert_string_equal(why, "");
	assert_int_equal(keystore_p11_probe(key), 1);
	EVP_PKEY_free(key);
}

/* ---- SoftHSM2 ---- */

static int
hsm_setup(void **state)
{
	static const char *const mods[] = {
		"/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		NULL
	};
	char conf[4200], text[4400], cmd[8800];
	int i;

	(void)state;
	for (i = 0; mods[i] != NULL; i++)
		if (access(mods[i], R_OK) == 0)
			module = mods[i];
	if (module == NULL || system("command -v softhsm2-util >/dev/null")
	    != 0) {
		module = NULL;
		return 0;
	}
	tu_tmpdir(dir, sizeof(dir));
	tu_path(tokens, sizeof(tokens), dir, "tokens");
	tu_path(conf, sizeof(conf), dir, "softhsm2.conf");
	if (mkdir(tokens, 0700) != 0)
		return -1;
	snprintf(text, sizeof(text), "directories.tokendir = %s\n"
	    "objectstore.backend = file\nlog.level = ERROR\n", tokens);
	tu_write_file(conf, text, strlen(text), 0600);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof(cmd), "softhsm2-util --init-token --free "
	    "--label unit --pin %s --so-pin 27182818 >/dev/null", PIN);
	return system(cmd) == 0 ? 0 : -1;
}

static int
hsm_teardown(void **state)
{
	(void)state;
	if (module != NULL)
		tu_rmtree(dir);
	return 0;
}

static void
sign_verify(EVP_PKEY *key)
{
	static const unsigned char msg[] = "to be signed by the token";
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY *pub;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	assert_non_null(m);
	assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL,
	    key), 1);
	assert_int_equal(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(m);
	/* Verify with a plain copy of the public key. */
	len = i2d_PUBKEY(key, &der);
	assert_true(len > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	assert_non_null(pub);
	assert_non_null(m = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL,
	    pub), 1);
	assert_int_equal(EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(pub);
}

static void
test_generate_load_sign(void **state)
{
	static const struct { enum ck_key_type t; const char *uri; int id; }
	    k[] = {
		{ CK_KEY_RSA3072, "pkcs11:token=unit;object=rsa", EVP_PKEY_RSA },
		{ CK_KEY_EC_P384, "pkcs11:token=unit;object=ec;id=%42",
		  EVP_PKEY_EC },
	};
	struct ck_secret *pin = secret_of(PIN), *bad = secret_of("nope");
	EVP_PKEY *key = NULL;
	size_t i;

	(void)state;
	if (module == NULL) {
		ck_secret_free(pin);
		ck_secret_free(bad);
		skip();
	}
	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		assert_int_equal(keystore_p11_generate(module, k[i].uri,
		    k[i].t, pin), 0);
		assert_int_equal(keystore_p11_generate(module, k[i].uri,
		    k[i].t, pin), CK_E_EXISTS);
		assert_int_equal(keystore_p11_load(module, k[i].uri, pin,
		    &key), 0);
		assert_int_equal(EVP_PKEY_get_base_id(key), k[i].id);
		assert_true(keystore_p11_is_token_key(key));
		assert_true(keystore_p11_available(key, NULL, 0));
		sign_verify(key);
		EVP_PKEY_free(key);
		key = NULL;
	}
	assert_int_equal(keystore_p11_generate(module,
	    "pkcs11:token=unit;object=ed", CK_KEY_ED25519, pin), CK_E_INVAL);
	assert_int_equal(keystore_p11_load(module,
	    "pkcs11:token=unit;object=rsa", bad, &key), CK_E_PASSPHRASE);
	assert_contains(ck_err_msg(), "PIN");
	assert_int_equal(keystore_p11_load(module,
	    "pkcs11:token=unit;object=none", pin, &key), CK_E_NOTFOUND);
	assert_int_equal(keystore_p11_load(module,
	    "pkcs11:token=other;object=rsa", pin, &key), CK_E_NOTFOUND);
	assert_null(key);
	ck_secret_free(pin);
	ck_secret_free(bad);
}

struct job {
	EVP_PKEY *key;
	int n, ok;
};

static void *
signer_thread(void *arg)
{
	struct job *j = arg;
	unsigned char md[32], sig[1024];
	size_t siglen;
	EVP_PKEY_CTX *c;
	int i;

	memset(md, 0x11, sizeof(md));
	for (i = 0; i < j->n; i++) {
		siglen = sizeof(sig);
		if ((c = EVP_PKEY_CTX_new(j->key, NULL)) != NULL &&
		    EVP_PKEY_sign_init(c) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(c, sig, &siglen, md, sizeof(md)) == 1)
			j->ok++;
		EVP_PKEY_CTX_free(c);
	}
	return NULL;
}

static double
run_threads(EVP_PKEY *key, int nthreads, int total)
{
	pthread_t th[8];
	struct job jobs[8];
	struct timespec a, b;
	int i, ok = 0;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < nthreads; i++) {
		jobs[i].key = key;
		jobs[i].n = total / nthreads;
		jobs[i].ok = 0;
		assert_int_equal(pthread_create(&th[i], NULL, signer_thread,
		    &jobs[i]), 0);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		ok += jobs[i].ok;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(ok, total / nthreads * nthreads);
	return (double)total / ((double)(b.tv_sec - a.tv_sec) +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e9);
}

/* Several threads sign at once (libp11's session pool under our read
 * lock); the rates are printed for the record, not asserted. */
static void
test_concurrent(void **state)
{
	static const char *const uris[] = { "pkcs11:token=unit;object=rsa",
	    "pkcs11:token=unit;object=ec" };
	struct ck_secret *pin = secret_of(PIN);
	EVP_PKEY *key = NULL;
	double r1, r2, r4;
	size_t i;

	(void)state;
	if (module == NULL) {
		ck_secret_free(pin);
		skip();
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(keystore_p11_load(module, uris[i], pin, &key),
		    0);
		r1 = run_threads(key, 1, 64);
		r2 = run_threads(key, 2, 64);
		r4 = run_threads(key, 4, 64);
		printf("# %s: %.0f signatures/s with 1 thread, %.0f with 2, "
		    "%.0f with 4\n", uris[i], r1, r2, r4);
		EVP_PKEY_free(key);
		key = NULL;
	}
	ck_secret_free(pin);
}

static void
test_unavailable_and_back(void **state)
{
	struct ck_secret *pin = secret_of(PIN);
	EVP_PKEY *key = NULL;
	char away[4300], why[256];
	unsigned char md[32], sig[1024];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *c;
	int i, ok;

	(void)state;
	if (module == NULL) {
		ck_secret_free(pin);
		skip();
	}
	memset(md, 7, sizeof(md));
	assert_int_equal(keystore_p11_load(module,
	    "pkcs11:token=unit;object=ec", pin, &key), 0);
	assert_int_equal(keystore_p11_probe(key), 1);
	snprintf(away, sizeof(away), "%s.away", tokens);
	assert_int_equal(rename(tokens, away), 0);
	/* Signing fails; the key is then unavailable, and stays so. */
	c = EVP_PKEY_CTX_new(key, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
	assert_int_not_equal(EVP_PKEY_sign(c, sig, &siglen, md, sizeof(md)),
	    1);
	assert_false(keystore_p11_available(key, why, sizeof(why)));
	assert_true(why[0] != '\0');
	usleep(1100 * 1000);
	assert_int_equal(keystore_p11_probe(key), 0);
	siglen = sizeof(sig);
	assert_int_not_equal(EVP_PKEY_sign(c, sig, &siglen, md, sizeof(md)),
	    1);
	/* Back: within a retry interval, signing works again. */
	assert_int_equal(rename(away, tokens), 0);
	for (i = 0, ok = 0; i < 30 && !ok; i++) {
		usleep(100 * 1000);
		siglen = sizeof(sig);
		ok = EVP_PKEY_sign(c, sig, &siglen, md, sizeof(md)) == 1;
	}
	assert_true(ok);
	assert_true(keystore_p11_available(key, NULL, 0));
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(key);
	ck_secret_free(pin);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_ok),
		cmocka_unit_test(test_uri_refused),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_software_key),
		cmocka_unit_test(test_generate_load_sign),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_unavailable_and_back),
	};

	return cmocka_run_group_tests(tests, hsm_setup, hsm_teardown);
}
