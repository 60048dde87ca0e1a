/*
 * test_unlock.c - M-of-N unlock (src/keystore/unlock, src/daemon/unlockd
 * and the share format's purpose in src/backup/keybackup): format 2
 * shares and format 1 kept for key backups; the collector's checks of
 * each share as it arrives (set, key, purpose, duplicate, damage,
 * threshold); the wipe paths (a share's value leaves the parsed share,
 * the collector holds nothing after finishing, also after a failed
 * rebuild); the configuration edit; re-encryption of key files; the
 * locked socket's request parser; the prompt over a pipe.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "backup/keybackup.h"
#include "ca/config.h"
#include "common/err.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "daemon/unlockd.h"
#include "keystore/keystore.h"
#include "keystore/unlock.h"

struct fx {
	char dir[4096];
	struct ck_secret *s;		/* the unlock secret */
	char **paths;			/* 3 shares, 2 needed */
	char set[33], fp[65];
	EVP_PKEY *key;
};

static const char *const cust[] = { "alice", "bob", "carol" };

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char sdir[4200];

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(sdir, sizeof(sdir), fx->dir, "shares");
	fx->key = tu_key("ec-p256");
	fx->s = ck_secret_new(UNLOCK_SECRET_LEN);
	assert_non_null(fx->s);
	assert_int_equal(RAND_bytes(fx->s->buf, UNLOCK_SECRET_LEN), 1);
	fx->s->len = UNLOCK_SECRET_LEN;
	assert_int_equal(ck_keyshare_split_secret(fx->s, fx->key,
	    CK_SHARE_UNLOCK, 2, 3, cust, sdir, "test-ca", &fx->paths,
	    fx->set), 0);
	assert_int_equal(ck_key_fingerprint(fx->key, fx->fp), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	int i;

	for (i = 0; i < 3; i++)
		free(fx->paths[i]);
	free(fx->paths);
	ck_secret_free(fx->s);
	EVP_PKEY_free(fx->key);
	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

static struct unlock_collector *
collector(struct fx *fx)
{
	struct unlock_collector *c = NULL;

	assert_int_equal(unlock_collector_new(2, 3, fx->set, fx->fp, &c), 0);
	return c;
}

/* Offer the share file PATH; the result code. */
static int
offer(struct unlock_collector *c, const char *path)
{
	unsigned char *t;
	size_t len;
	int r;

	t = tu_read_file(path, &len);
	r = unlock_collector_add(c, t, len, "test");
	free(t);
	return r;
}

static void
assert_pw_is_secret(struct fx *fx, const struct ck_secret *pw)
{
	char hex[2 * UNLOCK_SECRET_LEN + 1];

	ck_hex_encode(fx->s->buf, UNLOCK_SECRET_LEN, hex);
	assert_int_equal(pw->len, 2 * UNLOCK_SECRET_LEN);
	assert_memory_equal(pw->buf, hex, pw->len);
}

/* Format 2 for unlock shares, format 1 (unchanged) for key backups. */
static void
test_format(void **state)
{
	struct fx *fx = *state;
	struct ck_keyshare *s = NULL;
	unsigned char *t;
	char *enc = NULL, *bpaths_dir, set[33], **bpaths = NULL;
	size_t len, elen;
	int i;

	t = tu_read_file(fx->paths[1], &len);
	assert_contains((char *)t, "\nPurpose: unlock\n\n");
	assert_contains((char *)t, "Share: 2 of 3\nThreshold: 2\n");
	assert_int_equal(ck_keyshare_parse(t, len, &s), 0);
	assert_int_equal(ck_keyshare_purpose(s), CK_SHARE_UNLOCK);
	assert_string_equal(ck_keyshare_custodian(s), "bob");
	assert_int_equal(ck_keyshare_index(s), 2);
	ck_keyshare_set_hex(s, set);
	assert_string_equal(set, fx->set);
	assert_int_equal(ck_keyshare_encode(s, &enc, &elen), 0);
	assert_int_equal(elen, len);
	assert_memory_equal(enc, t, len);
	free(enc);
	ck_keyshare_free(s);
	free(t);

	/* A key backup's shares: no purpose line, format 1 as before. */
	bpaths_dir = calloc(1, 4200);
	assert_non_null(bpaths_dir);
	tu_path(bpaths_dir, 4200, fx->dir, "backup");
	assert_int_equal(ck_keybackup_split(fx->key, 2, 3, cust, bpaths_dir,
	    "test-ca", &bpaths), 0);
	t = tu_read_file(bpaths[0], &len);
	assert_null(strstr((char *)t, "Purpose:"));
	assert_int_equal(ck_keyshare_parse(t, len, &s), 0);
	assert_int_equal(ck_keyshare_purpose(s), CK_SHARE_KEY_BACKUP);
	ck_keyshare_free(s);
	free(t);
	/* Unlock shares are not a key backup: the join refuses them. */
	{
		const char *two[2] = { fx->paths[0], fx->paths[1] };
		EVP_PKEY *k = NULL;
		assert_int_equal(ck_keybackup_join(two, 2, &k), CK_E_INVAL);
		assert_contains(ck_err_msg(), "not of a key backup");
		assert_null(k);
	}
	for (i = 0; i < 3; i++)
		free(bpaths[i]);
	free(bpaths);
	free(bpaths_dir);
	/* A purpose line that names key-backup is not canonical: refused. */
	t = tu_read_file(fx->paths[0], &len);
	{
		char *p = strstr((char *)t, "Purpose: unlock");
		char *n = malloc(len + 16);
		size_t o = (size_t)(p - (char *)t);
		assert_non_null(n);
		memcpy(n, t, o);
		memcpy(n + o, "Purpose: key-backup", 19);
		memcpy(n + o + 19, p + 15, len - o - 15);
		assert_int_equal(ck_keyshare_parse((unsigned char *)n,
		    len + 4, &s), CK_E_PARSE);
		free(n);
	}
	free(t);
}

/* Any 2 of the 3 shares rebuild the secret; the passphrase is its hex. */
static void
test_collect(void **state)
{
	struct fx *fx = *state;
	static const int pairs[3][2] = { { 0, 1 }, { 2, 0 }, { 1, 2 } };
	struct unlock_collector *c;
	struct ck_secret *pw = NULL;
	const struct unlock_event *ev;
	int i;

	for (i = 0; i < 3; i++) {
		c = collector(fx);
		assert_int_equal(unlock_collector_need(c), 2);
		assert_int_equal(unlock_collector_finish(c, &pw), CK_E_STATE);
		assert_int_equal(offer(c, fx->paths[pairs[i][0]]), 0);
		assert_int_equal(unlock_collector_have(c), 1);
		assert_int_equal(unlock_collector_finish(c, &pw), CK_E_STATE);
		assert_int_equal(offer(c, fx->paths[pairs[i][1]]), 0);
		assert_int_equal(unlock_collector_have(c), 2);
		/* A third is not needed and does not count. */
		assert_int_equal(offer(c, fx->paths[3 - pairs[i][0] -
		    pairs[i][1]]), CK_E_STATE);
		assert_true(unlock_collector_holds_values(c));
		assert_int_equal(unlock_collector_finish(c, &pw), 0);
		assert_pw_is_secret(fx, pw);
		/* The wipe path: nothing of the shares is left. */
		assert_false(unlock_collector_holds_values(c));
		assert_int_equal(unlock_collector_have(c), 0);
		assert_int_equal(unlock_collector_events(c, &ev), 3);
		assert_true(ev[0].ok && ev[1].ok && !ev[2].ok);
		assert_string_equal(ev[0].from, "test");
		ck_secret_free(pw);
		pw = NULL;
		unlock_collector_free(c);
	}
}

/* Each wrong share is refused as it arrives and does not count. */
static void
test_refusals(void **state)
{
	struct fx *fx = *state;
	struct unlock_collector *c = collector(fx), *c2 = NULL;
	struct ck_secret *pw = NULL;
	char d2[4200], d3[4200], d4[4200], bad[4200], **p2 = NULL, **p3 = NULL;
	char **p4 = NULL, set2[33];
	unsigned char *t;
	size_t len;
	EVP_PKEY *k2 = tu_key("ed25519");
	const struct unlock_event *ev;
	int i;

	tu_path(d2, sizeof(d2), fx->dir, "second");
	tu_path(d3, sizeof(d3), fx->dir, "otherkey");
	tu_path(d4, sizeof(d4), fx->dir, "backup");
	/* Another set of the same key, and a set of another key. */
	assert_int_equal(ck_keyshare_split_secret(fx->s, fx->key,
	    CK_SHARE_UNLOCK, 2, 3, cust, d2, "test-ca", &p2, set2), 0);
	assert_int_equal(ck_keyshare_split_secret(fx->s, k2,
	    CK_SHARE_UNLOCK, 2, 3, cust, d3, "test-ca", &p3, NULL), 0);
	assert_int_equal(ck_keybackup_split(fx->key, 2, 3, cust, d4,
	    "test-ca", &p4), 0);

	assert_int_equal(offer(c, p2[0]), CK_E_INVAL);
	assert_contains(ck_err_msg(), "of share set");
	assert_int_equal(offer(c, p3[0]), CK_E_INVAL);
	assert_contains(ck_err_msg(), "another key");
	assert_int_equal(offer(c, p4[0]), CK_E_INVAL);
	assert_contains(ck_err_msg(), "key backup");
	assert_int_equal(unlock_collector_have(c), 0);
	assert_int_equal(offer(c, fx->paths[0]), 0);
	assert_int_equal(offer(c, fx->paths[0]), CK_E_INVAL);
	assert_contains(ck_err_msg(), "given already");
	/* Damage: one base64 character changed. */
	t = tu_read_file(fx->paths[1], &len);
	{
		char *b = strstr((char *)t, "\n\n") + 2;
		b[10] = b[10] == 'A' ? 'B' : 'A';
	}
	assert_int_equal(unlock_collector_add(c, t, len, "x"), CK_E_TAMPER);
	free(t);
	/* Junk, empty, over the size limit. */
	assert_int_equal(unlock_collector_add(c, (const unsigned char *)"x",
	    1, "x"), CK_E_PARSE);
	assert_int_equal(unlock_collector_add(c, (const unsigned char *)"",
	    0, "x"), CK_E_PARSE);
	t = calloc(1, UNLOCK_SHARE_MAX + 1);
	assert_non_null(t);
	assert_int_equal(unlock_collector_add(c, t, UNLOCK_SHARE_MAX + 1,
	    "x"), CK_E_TOOBIG);
	free(t);
	assert_int_equal(unlock_collector_have(c), 1);
	assert_true(unlock_collector_events(c, &ev) == 9);
	for (i = 0; i < 9; i++)
		assert_int_equal(ev[i].ok, i == 3);
	assert_string_equal(ev[1].custodian, "alice");
	/* The right share still counts after all that. */
	assert_int_equal(offer(c, fx->paths[2]), 0);
	assert_int_equal(unlock_collector_finish(c, &pw), 0);
	assert_pw_is_secret(fx, pw);
	ck_secret_free(pw);
	unlock_collector_free(c);

	/* A collector that expects another threshold refuses the set. */
	assert_int_equal(unlock_collector_new(3, 3, fx->set, fx->fp, &c2), 0);
	assert_int_equal(offer(c2, fx->paths[0]), CK_E_TAMPER);
	assert_contains(ck_err_msg(), "the home records 3 of 3");
	unlock_collector_free(c2);
	assert_int_equal(unlock_collector_new(1, 3, fx->set, fx->fp, &c2),
	    CK_E_INVAL);
	assert_int_equal(unlock_collector_new(2, 3, "zz", fx->fp, &c2),
	    CK_E_INVAL);

	/* An altered value with a recomputed checksum: caught only when
	 * rebuilding; every value is then dropped. */
	tu_path(bad, sizeof(bad), fx->dir, "bad.share");
	t = tu_read_file(fx->paths[1], &len);
	{
		struct ck_keyshare *s = NULL;
		unsigned char v[CK_KEYSHARE_VALUE_LEN], zero[
		    CK_KEYSHARE_VALUE_LEN];
		char *enc = NULL;
		size_t elen;
		assert_int_equal(ck_keyshare_parse(t, len, &s), 0);
		ck_keyshare_take_value(s, v);
		/* take_value wipes the value in the share */
		assert_int_equal(ck_keyshare_encode(s, &enc, &elen), 0);
		ck_keyshare_free(s);
		s = NULL;
		assert_int_equal(ck_keyshare_parse((unsigned char *)enc, elen,
		    &s), 0);
		ck_keyshare_take_value(s, zero);
		memset(v, 0, sizeof(v));
		assert_memory_equal(zero, v, sizeof(v));
		ck_keyshare_free(s);
		tu_write_file(bad, enc, elen, 0600);
		free(enc);
	}
	free(t);
	c = collector(fx);
	assert_int_equal(offer(c, fx->paths[0]), 0);
	assert_int_equal(offer(c, bad), 0);	/* looks fine on its own */
	pw = NULL;
	assert_int_equal(unlock_collector_finish(c, &pw), CK_E_TAMPER);
	assert_null(pw);
	assert_false(unlock_collector_holds_values(c));
	assert_int_equal(unlock_collector_have(c), 0);
	/* Start again with good shares. */
	assert_int_equal(offer(c, fx->paths[1]), 0);
	assert_int_equal(offer(c, fx->paths[0]), 0);
	assert_int_equal(unlock_collector_finish(c, &pw), 0);
	assert_pw_is_secret(fx, pw);
	ck_secret_free(pw);
	unlock_collector_free(c);

	for (i = 0; i < 3; i++) {
		free(p2[i]);
		free(p3[i]);
		free(p4[i]);
	}
	free(p2);
	free(p3);
	free(p4);
	EVP_PKEY_free(k2);
}

static void
test_config_edit(void **state)
{
	struct fx *fx = *state;
	static const char base[] = "# a comment\n[ca]\nkey_file = "
	    "private/ca.key\n\n[server]\nthreads = 2\n";
	static const char noca[] = "[server]\nthreads = 2";
	struct ck_config *cfg = NULL;
	struct unlock_collector *c = NULL;
	char *out = NULL, *out2 = NULL;
	size_t len, len2;

	assert_int_equal(unlock_config_edit(base, strlen(base), "2/3", fx->set,
	    fx->fp, &out, &len), 0);
	assert_int_equal(strlen(out), len);
	assert_contains(out, "[ca]\nunlock_shares = 2/3\nunlock_set = ");
	assert_contains(out, "# a comment\n");
	assert_contains(out, "[server]\nthreads = 2\n");
	assert_int_equal(ck_config_parse(out, len, &cfg), 0);
	assert_string_equal(cfg->unlock_shares, "2/3");
	assert_string_equal(cfg->unlock_set, fx->set);
	assert_string_equal(cfg->unlock_key_fingerprint, fx->fp);
	assert_int_equal(unlock_collector_from_config(cfg, &c), 0);
	assert_non_null(c);
	assert_int_equal(offer(c, fx->paths[2]), 0);
	unlock_collector_free(c);
	ck_config_free(cfg);
	/* Replaced, not added twice. */
	assert_int_equal(unlock_config_edit(out, len, "3/3", fx->set, fx->fp,
	    &out2, &len2), 0);
	assert_null(strstr(out2, "2/3"));
	assert_non_null(strstr(out2, "unlock_shares = 3/3\n"));
	assert_null(strstr(strstr(out2, "unlock_set") + 1, "unlock_set"));
	free(out2);
	/* Removed: back to the text we started from. */
	assert_int_equal(unlock_config_edit(out, len, NULL, NULL, NULL, &out2,
	    &len2), 0);
	assert_string_equal(out2, base);
	free(out2);
	free(out);
	/* No [ca] section (and no final newline): one is added. */
	assert_int_equal(unlock_config_edit(noca, strlen(noca), "2/2",
	    fx->set, fx->fp, &out, &len), 0);
	assert_int_equal(ck_config_parse(out, len, &cfg), 0);
	assert_string_equal(cfg->unlock_shares, "2/2");
	ck_config_free(cfg);
	free(out);
	/* The parser: all three or none, well formed. */
	assert_int_equal(ck_config_parse("[ca]\nunlock_shares = 2/3\n", 25,
	    &cfg), CK_E_PARSE);
	{
		static const char one[] = "[ca]\nunlock_shares = 1/3\n"
		    "unlock_set = 00000000000000000000000000000000\n"
		    "unlock_key_fingerprint = 000000000000000000000000000000"
		    "0000000000000000000000000000000000\n";
		char two[sizeof(one)];
		assert_int_equal(ck_config_parse(one, strlen(one), &cfg),
		    CK_E_PARSE);
		assert_contains(ck_err_msg(), "M/N");
		/* The same with 2/3 parses: the refusal was the 1. */
		memcpy(two, one, sizeof(one));
		two[strlen("[ca]\nunlock_shares = ")] = '2';
		assert_int_equal(ck_config_parse(two, strlen(two), &cfg), 0);
		ck_config_free(cfg);
	}
	assert_int_equal(unlock_config_edit(base, strlen(base), "2/3", NULL,
	    fx->fp, &out, &len), CK_E_INVAL);
}

static void
test_rekey(void **state)
{
	struct fx *fx = *state;
	struct ck_secret *a = ck_secret_new(64), *b = ck_secret_new(64);
	char p1[4200], p2[4200], nn[4300];
	const char *paths[3];
	EVP_PKEY *k = NULL;

	assert_non_null(a);
	assert_non_null(b);
	memcpy(a->buf, "old passphrase", 14);
	a->len = 14;
	memcpy(b->buf, "new passphrase", 14);
	b->len = 14;
	tu_path(p1, sizeof(p1), fx->dir, "ca.key");
	tu_path(p2, sizeof(p2), fx->dir, "eab.key");
	assert_int_equal(keystore_save(p1, fx->key, a, 10), 0);
	k = tu_key("ec-p384");
	assert_int_equal(keystore_save(p2, k, a, 10), 0);
	EVP_PKEY_free(k);
	k = NULL;
	paths[0] = p1;
	paths[1] = p2;
	paths[2] = "/nonexistent/skipped.key";
	/* Prepared, then aborted: the old files as they were. */
	assert_int_equal(unlock_rekey_prepare(paths, 3, a, b, 10), 0);
	snprintf(nn, sizeof(nn), "%s.new", p1);
	assert_int_equal(tu_file_mode(nn), 0600);
	assert_int_equal(keystore_load(nn, b, &k), 0);
	EVP_PKEY_free(k);
	k = NULL;
	unlock_rekey_abort(paths, 3);
	assert_int_equal(access(nn, F_OK), -1);
	assert_int_equal(keystore_load(p1, a, &k), 0);
	EVP_PKEY_free(k);
	k = NULL;
	/* A wrong old passphrase: nothing is left behind. */
	assert_int_equal(unlock_rekey_prepare(paths, 3, b, a, 10),
	    CK_E_PASSPHRASE);
	assert_int_equal(access(nn, F_OK), -1);
	/* A leftover .new stops it. */
	tu_write_file(nn, "x", 1, 0600);
	assert_int_equal(unlock_rekey_prepare(paths, 3, a, b, 10),
	    CK_E_EXISTS);
	unlink(nn);
	/* Prepared and committed: the new passphrase only. */
	assert_int_equal(unlock_rekey_prepare(paths, 3, a, b, 10), 0);
	assert_int_equal(unlock_rekey_commit(paths, 3), 0);
	assert_int_equal(access(nn, F_OK), -1);
	assert_int_equal(keystore_load(p1, a, &k), CK_E_PASSPHRASE);
	assert_int_equal(keystore_load(p1, b, &k), 0);
	assert_int_equal(EVP_PKEY_eq(k, fx->key), 1);
	EVP_PKEY_free(k);
	k = NULL;
	assert_int_equal(keystore_load(p2, b, &k), 0);
	EVP_PKEY_free(k);
	assert_int_equal(tu_file_mode(p1), 0600);
	ck_secret_free(a);
	ck_secret_free(b);
}

static void
test_request_parse(void **state)
{
	static const struct {
		const char *json;
		int r;
		const char *op;
	} cases[] = {
		{ "{\"action\":\"unlock\",\"share\":\"abc\"}", 0, "unlock" },
		{ "{\"action\":\"unlock-status\"}", 0, "unlock-status" },
		{ "{\"action\":\"unlock\"}", CK_E_PARSE, NULL },
		{ "{\"action\":\"unlock\",\"share\":\"\"}", CK_E_PARSE, NULL },
		{ "{\"action\":\"unlock\",\"share\":5}", CK_E_PARSE, NULL },
		{ "{\"action\":\"unlock-status\",\"share\":\"a\"}", CK_E_PARSE,
		    NULL },
		{ "{\"action\":\"token-list\"}", CK_E_PARSE, NULL },
		{ "{\"action\":\"unlock\",\"share\":\"a\",\"x\":1}", CK_E_PARSE,
		    NULL },
		{ "{\"share\":\"a\"}", CK_E_PARSE, NULL },
		{ "[]", CK_E_PARSE, NULL },
	};
	const char *op, *share;
	size_t i, len;
	json_t *j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		j = json_loads(cases[i].json, 0, NULL);
		assert_non_null(j);
		assert_int_equal(unlockd_request_parse(j, &op, &share, &len),
		    cases[i].r);
		if (cases[i].r == 0)
			assert_string_equal(op, cases[i].op);
		json_decref(j);
	}
	j = json_loads("{\"action\":\"unlock\",\"share\":\"abc\"}", 0, NULL);
	assert_int_equal(unlockd_request_parse(j, &op, &share, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(share, "abc", 3);
	json_decref(j);
	/* With the wiping allocator in place jansson still works. */
	unlockd_json_wipe();
	j = json_pack("{s:s}", "action", "unlock-status");
	assert_int_equal(unlockd_request_parse(j, &op, &share, &len), 0);
	json_decref(j);
	json_set_alloc_funcs(malloc, free);
}

/* The prompt over a pipe: a wrong share, then two good ones. */
static void
test_prompt(void **state)
{
	struct fx *fx = *state;
	struct unlock_collector *c = collector(fx);
	struct ck_secret *pw = NULL;
	unsigned char *t;
	size_t len;
	FILE *out = tmpfile();
	char buf[4096];
	int fds[2], i;
	static const int order[3] = { 1, 1, 0 };

	assert_non_null(out);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "\n\nnot a share\n"
	    "-----END CERTKEEP KEY SHARE-----\n", 47), 47);
	for (i = 0; i < 3; i++) {
		t = tu_read_file(fx->paths[order[i]], &len);
		assert_int_equal(write(fds[1], t, len), (ssize_t)len);
		free(t);
	}
	close(fds[1]);
	assert_int_equal(unlockd_prompt(fds[0], out, c, &pw), 0);
	assert_pw_is_secret(fx, pw);
	rewind(out);
	len = fread(buf, 1, sizeof(buf) - 1, out);
	buf[len] = '\0';
	assert_contains(buf, "needs 2 key shares");
	assert_contains(buf, "refused: ");
	assert_contains(buf, "given already");
	assert_contains(buf, "accepted: 2 of 2 shares");
	assert_false(unlock_collector_holds_values(c));
	ck_secret_free(pw);
	pw = NULL;
	close(fds[0]);
	/* The input ends before enough shares. */
	assert_int_equal(pipe(fds), 0);
	t = tu_read_file(fx->paths[2], &len);
	assert_int_equal(write(fds[1], t, len), (ssize_t)len);
	free(t);
	close(fds[1]);
	assert_int_equal(unlockd_prompt(fds[0], out, c, &pw), CK_E_STATE);
	assert_null(pw);
	close(fds[0]);
	fclose(out);
	unlock_collector_free(c);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_format),
		T(test_collect),
		T(test_refusals),
		T(test_config_edit),
		T(test_rekey),
		T(test_request_parse),
		T(test_prompt),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	tu_keys_free();
	return r;
}
