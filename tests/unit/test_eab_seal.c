/*
 * test_eab_seal.c - src/ca/eab_seal: sealed ACME EAB keys open only with
 * the home's private key, for their own key id, unaltered; the key pair's
 * files in a CA home (private key encrypted 0600 in a 0700 directory,
 * public key beside it) and their refusals.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ca/eab_seal.h"
#include "common/err.h"
#include "common/secmem.h"

#define OK(expr) do {							\
	int r_ = (expr);						\
	if (r_ != 0)							\
		fail_msg("%s: %d: %s", #expr, r_, ck_err_msg());	\
} while (0)

static const unsigned char hmac_key[32] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
};

static struct ck_secret *
pass(const char *s)
{
	struct ck_secret *p = ck_secret_new(strlen(s));

	assert_non_null(p);
	memcpy(p->buf, s, strlen(s));
	p->len = strlen(s);
	return p;
}

static EVP_PKEY *
keypair(void)
{
	EVP_PKEY *k = NULL;

	OK(eab_keypair_generate(&k));
	assert_true(EVP_PKEY_is_a(k, "X25519"));
	return k;
}

static void
seal(EVP_PKEY *k, const char *kid, const unsigned char *key, size_t n,
    unsigned char **out, size_t *outlen)
{
	OK(eab_seal(k, kid, key, n, out, outlen));
	assert_int_equal(*outlen, EAB_SEALED_LEN(n));
	assert_int_equal((*out)[0], EAB_SEAL_VERSION);
	/* The key is not in the sealed form as it is (8 bytes: a shorter
	 * match may be chance). */
	if (n >= 8)
		assert_null(memmem(*out, *outlen, key, 8));
}

static void
test_roundtrip(void **state)
{
	EVP_PKEY *k = keypair();
	struct ck_secret *out = NULL;
	unsigned char *s1 = NULL, *s2 = NULL;
	size_t l1 = 0, l2 = 0, n;

	(void)state;
	seal(k, "kid-1", hmac_key, sizeof(hmac_key), &s1, &l1);
	OK(eab_unseal(k, "kid-1", s1, l1, &out));
	assert_int_equal(out->len, sizeof(hmac_key));
	assert_memory_equal(out->buf, hmac_key, sizeof(hmac_key));
	ck_secret_free(out);
	out = NULL;
	/* A fresh ephemeral key and IV each time. */
	seal(k, "kid-1", hmac_key, sizeof(hmac_key), &s2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_not_equal(s1, s2, l1);
	free(s1);
	free(s2);
	/* Every size from 1 to the maximum. */
	for (n = 1; n <= EAB_SEAL_KEY_MAX; n += 7) {
		unsigned char buf[EAB_SEAL_KEY_MAX];

		memset(buf, (int)n, sizeof(buf));
		seal(k, "k", buf, n, &s1, &l1);
		OK(eab_unseal(k, "k", s1, l1, &out));
		assert_int_equal(out->len, n);
		assert_memory_equal(out->buf, buf, n);
		ck_secret_free(out);
		out = NULL;
		free(s1);
		s1 = NULL;
	}
	EVP_PKEY_free(k);
}

/* The key id is the AAD: a sealed key moved to another row stays shut. */
static void
test_wrong_kid(void **state)
{
	EVP_PKEY *k = keypair();
	struct ck_secret *out = NULL;
	unsigned char *s = NULL;
	size_t l = 0;

	(void)state;
	seal(k, "kid-1", hmac_key, sizeof(hmac_key), &s, &l);
	assert_int_equal(eab_unseal(k, "kid-2", s, l, &out), CK_E_TAMPER);
	assert_null(out);
	assert_contains(ck_err_msg(), "kid-2");
	assert_int_equal(eab_unseal(k, "kid-", s, l, &out), CK_E_TAMPER);
	assert_int_equal(eab_unseal(k, "kid-1 ", s, l, &out), CK_E_TAMPER);
	assert_int_equal(eab_unseal(k, "", s, l, &out), CK_E_INVAL);
	free(s);
	EVP_PKEY_free(k);
}

/* Any changed bit of the sealed form is refused; so are other lengths. */
static void
test_tampered(void **state)
{
	EVP_PKEY *k = keypair();
	struct ck_secret *out = NULL;
	unsigned char *s = NULL, *t;
	size_t l = 0, i;

	(void)state;
	seal(k, "kid-1", hmac_key, sizeof(hmac_key), &s, &l);
	assert_non_null(t = malloc(l + 1));
	for (i = 0; i < l; i++) {
		memcpy(t, s, l);
		t[i] ^= 0x01;
		assert_int_equal(eab_unseal(k, "kid-1", t, l, &out),
		    i == 0 ? CK_E_PARSE : CK_E_TAMPER);
		assert_null(out);
	}
	/* Short, long, only the overhead. */
	assert_int_equal(eab_unseal(k, "kid-1", s, l - 1, &out), CK_E_TAMPER);
	memcpy(t, s, l);
	t[l] = 0;
	assert_int_equal(eab_unseal(k, "kid-1", t, l + 1, &out), CK_E_TAMPER);
	assert_int_equal(eab_unseal(k, "kid-1", s, EAB_SEAL_OVERHEAD, &out),
	    CK_E_PARSE);
	assert_int_equal(eab_unseal(k, "kid-1", s, 0, &out), CK_E_PARSE);
	/* An all-zero ephemeral key (small order): no key agreement. */
	memcpy(t, s, l);
	memset(t + 1, 0, 32);
	assert_int_equal(eab_unseal(k, "kid-1", t, l, &out), CK_E_TAMPER);
	free(t);
	free(s);
	/* Longer than any key sealed here. */
	assert_non_null(t = calloc(1, EAB_SEALED_LEN(EAB_SEAL_KEY_MAX + 1)));
	t[0] = EAB_SEAL_VERSION;
	assert_int_equal(eab_unseal(k, "kid-1", t,
	    EAB_SEALED_LEN(EAB_SEAL_KEY_MAX + 1), &out), CK_E_PARSE);
	free(t);
	EVP_PKEY_free(k);
}

static void
test_wrong_key(void **state)
{
	EVP_PKEY *k = keypair(), *other = keypair(), *ed = tu_key("ed25519");
	struct ck_secret *out = NULL;
	unsigned char *s = NULL;
	size_t l = 0;

	(void)state;
	seal(k, "kid-1", hmac_key, sizeof(hmac_key), &s, &l);
	assert_int_equal(eab_unseal(other, "kid-1", s, l, &out), CK_E_TAMPER);
	assert_null(out);
	assert_int_equal(eab_unseal(ed, "kid-1", s, l, &out), CK_E_INVAL);
	free(s);
	s = NULL;
	/* Only X25519 keys seal; keys of 1..max bytes; a kid. */
	assert_int_equal(eab_seal(ed, "kid-1", hmac_key, 32, &s, &l),
	    CK_E_INVAL);
	assert_int_equal(eab_seal(k, "kid-1", hmac_key, 0, &s, &l),
	    CK_E_INVAL);
	assert_int_equal(eab_seal(k, "kid-1", hmac_key, EAB_SEAL_KEY_MAX + 1,
	    &s, &l), CK_E_INVAL);
	assert_int_equal(eab_seal(k, "", hmac_key, 32, &s, &l), CK_E_INVAL);
	assert_null(s);
	assert_int_equal(eab_key_match(k, k), 1);
	assert_int_equal(eab_key_match(k, other), 0);
	assert_int_equal(eab_key_match(k, ed), 0);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

/* The pair in a CA home: written, reloaded, refused when it should be. */
static void
test_keypair_files(void **state)
{
	char home[4096], kpath[4200], ppath[4200], dir[4200];
	struct ck_secret *pw = pass("the CA passphrase"), *bad = pass("wrong");
	EVP_PKEY *k = keypair(), *k2 = NULL, *pub = NULL, *other = keypair();
	struct ck_secret *out = NULL;
	unsigned char *s = NULL, *text;
	size_t l = 0, tl = 0, raw_len = 32;
	unsigned char raw[32];

	(void)state;
	tu_tmpdir(home, sizeof(home));
	tu_path(kpath, sizeof(kpath), home, EAB_SEAL_KEY_FILE);
	tu_path(ppath, sizeof(ppath), home, EAB_SEAL_PUB_FILE);
	tu_path(dir, sizeof(dir), home, "private");
	assert_int_equal(eab_pub_load(home, &pub), CK_E_NOTFOUND);
	assert_int_equal(eab_key_load(home, pw, &k2), CK_E_NOTFOUND);

	OK(eab_keypair_save(home, k, pw, 10));
	assert_int_equal(tu_file_mode(dir), 0700);
	assert_int_equal(tu_file_mode(kpath), 0600);
	assert_int_equal(tu_file_mode(ppath), 0644);
	/* Encrypted: the private key's bytes are not in the file. */
	text = tu_read_file(kpath, &tl);
	assert_non_null(strstr((char *)text,
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
	assert_int_equal(EVP_PKEY_get_raw_private_key(k, raw, &raw_len), 1);
	assert_null(memmem(text, tl, raw, sizeof(raw)));
	free(text);

	/* Sealed with the public file, opened with the private file. */
	OK(eab_pub_load(home, &pub));
	seal(pub, "kid-9", hmac_key, sizeof(hmac_key), &s, &l);
	OK(eab_key_load(home, pw, &k2));
	OK(eab_unseal(k2, "kid-9", s, l, &out));
	assert_memory_equal(out->buf, hmac_key, sizeof(hmac_key));
	ck_secret_free(out);
	EVP_PKEY_free(k2);
	k2 = NULL;

	assert_int_equal(eab_key_load(home, bad, &k2), CK_E_PASSPHRASE);
	assert_int_equal(eab_keypair_save(home, other, pw, 10), CK_E_EXISTS);
	/* Another pair's public file beside the private key is refused. */
	assert_int_equal(unlink(ppath), 0);
	assert_int_equal(eab_keypair_save(home, other, pw, 10), CK_E_EXISTS);
	OK(eab_pub_save(home, other));
	assert_int_equal(eab_key_load(home, pw, &k2), CK_E_TAMPER);
	assert_int_equal(unlink(ppath), 0);
	/* No public file: the private key alone still loads. */
	OK(eab_key_load(home, pw, &k2));
	assert_int_equal(eab_key_match(k2, k), 1);
	EVP_PKEY_free(k2);
	k2 = NULL;
	OK(eab_pub_save(home, k));
	assert_int_equal(eab_pub_save(home, k), CK_E_EXISTS);
	/* Others may not read the private key. */
	assert_int_equal(chmod(kpath, 0644), 0);
	assert_int_equal(eab_key_load(home, pw, &k2), CK_E_PERM);
	assert_int_equal(chmod(kpath, 0600), 0);
	/* A public file that is no X25519 key. */
	tu_write_file(ppath, "not a key\n", 10, 0644);
	EVP_PKEY_free(pub);
	pub = NULL;
	assert_int_equal(eab_pub_load(home, &pub), CK_E_PARSE);

	free(s);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
	ck_secret_free(pw);
	ck_secret_free(bad);
	tu_rmtree(home);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_wrong_kid),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_keypair_files),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	tu_keys_free();
	return r;
}
