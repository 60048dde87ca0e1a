/*
 * test_backup.c - src/backup: sets made, verified and restored through the
 * library; manifests built and parsed strictly; chains checked; retention.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "backup/archive.h"
#include "backup/backup.h"
#include "backup/drill.h"
#include "backup/manifest.h"
#include "ca/ca.h"
#include "common/err.h"
#include "store/store_dump.h"
#include "testutil.h"

#define PASSPHRASE "correct horse battery staple"

static struct {
	char base[4096];
	char home[4200], pass[4200], m1[4200], m2[4200];
	struct ck_pass_src src;
	EVP_PKEY *rkey, *rkey2;
	X509 *rcert, *rcert2;
} g;

static X509 *
self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static int
group_setup(void **state)
{
	struct ck_init_params p;

	(void)state;
	tu_tmpdir(g.base, sizeof(g.base));
	tu_path(g.home, sizeof(g.home), g.base, "ca");
	tu_path(g.pass, sizeof(g.pass), g.base, "pass");
	tu_path(g.m1, sizeof(g.m1), g.base, "m1");
	tu_path(g.m2, sizeof(g.m2), g.base, "m2");
	mkdir(g.m1, 0700);
	mkdir(g.m2, 0700);
	tu_write_file(g.pass, PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0600);
	g.src.kind = CK_PASS_FILE;
	g.src.file = g.pass;
	g.src.fd = -1;
	memset(&p, 0, sizeof(p));
	p.home = g.home;
	p.root = 1;
	p.subject = "CN=Backup Test Root";
	p.key_type = CK_KEY_EC_P256;
	p.days = 3000;
	p.path_len = -1;
	p.domain = "example.com";
	p.pass = &g.src;
	p.scrypt_log2n = 10;
	if (ck_ca_init(&p) != 0) {
		fprintf(stderr, "ck_ca_init: %s\n", ck_err_msg());
		return -1;
	}
	g.rkey = EVP_EC_gen("P-256");
	g.rkey2 = EVP_RSA_gen(2048);
	g.rcert = self_signed(g.rkey, "recipient");
	g.rcert2 = self_signed(g.rkey2, "other recipient");
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	X509_free(g.rcert);
	X509_free(g.rcert2);
	EVP_PKEY_free(g.rkey);
	EVP_PKEY_free(g.rkey2);
	tu_rmtree(g.base);
	tu_keys_free();
	return 0;
}

static struct ck_ca *
open_ca(void)
{
	struct ck_ca *ca = NULL;

	if (ck_ca_open(g.home, &ca) != 0 || ck_ca_unlock(ca, &g.src) != 0)
		fail_msg("opening the CA: %s", ck_err_msg());
	return ca;
}

static void
make(struct ck_ca *ca, int incremental, int two, unsigned keep_last,
    struct ck_backup_result *res)
{
	struct ck_backup_opts o;
	STACK_OF(X509) *rc = sk_X509_new_null();

	memset(&o, 0, sizeof(o));
	sk_X509_push(rc, g.rcert);
	o.incremental = incremental;
	o.dests[0] = g.m1;
	o.dests[1] = g.m2;
	o.ndests = two ? 2 : 1;
	o.recipients = rc;
	o.zlevel = 3;
	/* Small pieces: a full set's store file comes in several. */
	o.store_chunk = 64 * 1024;
	o.retention.keep_last = keep_last;
	if (ck_backup_make(ca, &o, res) != 0)
		fail_msg("backup: %s", ck_err_msg());
	sk_X509_free(rc);
}

static void
reader(struct ck_ca *ca, struct ck_backup_reader *rd)
{
	memset(rd, 0, sizeof(*rd));
	rd->rkey = g.rkey;
	rd->rcert = g.rcert;
	rd->trusted = ca->chain;
	rd->ca_cert = ca->cert;
}

static void
issue_one(struct ck_ca *ca, const char *cn)
{
	struct ck_issue_params ip;
	struct ck_issue_result res;
	struct tu_csr o;
	unsigned char *csr = NULL;
	size_t csrlen;
	char san[300];

	snprintf(san, sizeof(san), "DNS:%s", cn);
	memset(&o, 0, sizeof(o));
	o.subject = NULL;
	o.san = san;
	{
		EVP_PKEY *k = tu_key("ec-p256");	/* a reference */
		tu_csr_make(k, &o, &csr, &csrlen);
		EVP_PKEY_free(k);
	}
	memset(&ip, 0, sizeof(ip));
	ip.profile = "tls-server";
	ip.csr = csr;
	ip.csr_len = csrlen;
	ip.days = 30;
	ip.path_len = -1;
	memset(&res, 0, sizeof(res));
	if (ck_ca_issue(ca, &ip, &res) != 0)
		fail_msg("issue: %s", ck_err_msg());
	free(csr);
	OPENSSL_free(res.der);
}

static void
test_full_incremental_restore(void **state)
{
	struct ck_ca *ca = open_ca(), *rca = NULL;
	struct ck_backup_result full, inc;
	struct ck_backup_reader rd;
	struct ck_manifest mf[2], last;
	struct ck_restore_opts ro;
	struct store_dump_counts a, b;
	char dst[4300];
	const char *files[2];

	(void)state;
	issue_one(ca, "one.example.com");
	make(ca, 0, 1, 0, &full);
	assert_string_equal(full.kind, "full");
	assert_int_equal(full.npaths, 2);
	assert_int_equal(tu_file_mode(full.paths[0]) & 0777, 0600);
	assert_int_equal(tu_file_mode(full.paths[1]) & 0777, 0600);
	issue_one(ca, "two.example.com");
	assert_int_not_equal(ck_ca_revoke(ca, "0BADC0DE", 1), 0); /* no such */
	make(ca, 1, 0, 0, &inc);
	assert_string_equal(inc.kind, "incremental");
	assert_int_equal(inc.seq_from, full.seq_to);

	reader(ca, &rd);
	files[0] = full.paths[0];
	files[1] = inc.paths[0];
	assert_int_equal(ck_backup_verify(&rd, files, 2, 1, mf), 0);
	assert_string_equal(mf[1].parent_id, mf[0].id);
	/* The full set's store file came in several pieces (64 KiB here),
	 * first page last; the incremental holds rows. */
	{
		size_t k, pieces = 0, rows = 0;
		for (k = 0; k < mf[0].nparts; k++)
			pieces += strncmp(mf[0].parts[k].name,
			    CK_BACKUP_STORE_PREFIX,
			    strlen(CK_BACKUP_STORE_PREFIX)) == 0;
		assert_true(pieces >= 3);
		assert_true(strstr(mf[0].parts[pieces - 1].name,
		    "0000000000000000") != NULL);
		for (k = 0; k < mf[1].nparts; k++)
			rows += strstr(mf[1].parts[k].name, ".jsonl.zst") !=
			    NULL;
		assert_true(rows > 0);
	}
	/* The other order, and the incremental alone as a chain. */
	files[0] = inc.paths[0];
	files[1] = full.paths[0];
	assert_int_not_equal(ck_backup_verify(&rd, files, 2, 1, mf), 0);

	files[0] = full.paths[0];
	files[1] = inc.paths[0];
	assert_int_equal(ck_backup_verify(&rd, files, 2, 1, mf), 0);
	tu_path(dst, sizeof(dst), g.base, "restored");
	memset(&ro, 0, sizeof(ro));
	ro.home = dst;
	files[0] = full.paths[0];
	files[1] = inc.paths[0];
	assert_int_equal(ck_backup_restore(&rd, files, 2, &ro, &last), 0);
	assert_int_equal(ck_ca_open(dst, &rca), 0);
	assert_int_equal(store_counts(rca->st, &b), 0);
	/* What the manifest said the CA held at the incremental. */
	a = last.counts;
	assert_int_equal(a.certs, b.certs);
	assert_int_equal(a.issued, b.issued);
	assert_true(b.audit > a.audit);		/* + the restore itself */
	assert_true(a.certs >= 3);		/* root + two */
	ck_ca_close(rca);
	/* Never over a CA. */
	assert_int_equal(ck_backup_restore(&rd, files, 2, &ro, &last),
	    CK_E_EXISTS);
	/* A point in time: the sets up to it, not the one after. */
	tu_path(dst, sizeof(dst), g.base, "restored-early");
	ro.home = dst;
	ro.upto_seq = full.seq_to;
	assert_int_equal(ck_backup_restore(&rd, files, 2, &ro, &last), 0);
	assert_string_equal(last.id, mf[0].id);
	assert_int_equal(ck_ca_open(dst, &rca), 0);
	assert_int_equal(store_counts(rca->st, &b), 0);
	assert_int_equal(b.certs, mf[0].counts.certs);
	assert_true(b.certs < a.certs);
	ck_ca_close(rca);
	/* A point before the full: refused, nothing made. */
	tu_path(dst, sizeof(dst), g.base, "restored-never");
	ro.home = dst;
	ro.upto_seq = 1;
	assert_int_equal(ck_backup_restore(&rd, files, 2, &ro, &last),
	    CK_E_STATE);
	assert_false(access(dst, F_OK) == 0);
	ck_ca_close(ca);
}

static void
test_faults(void **state)
{
	struct ck_ca *ca = open_ca();
	struct ck_backup_result full;
	struct ck_backup_reader rd;
	struct ck_restore_opts ro;
	struct ck_manifest last;
	char bad[4300], dst[4300];
	const char *files[1];
	unsigned char *buf;
	size_t len, off;

	(void)state;
	make(ca, 0, 0, 0, &full);
	reader(ca, &rd);
	buf = tu_read_file(full.paths[0], &len);
	tu_path(bad, sizeof(bad), g.base, "bad.ckb");
	tu_path(dst, sizeof(dst), g.base, "never");
	memset(&ro, 0, sizeof(ro));
	ro.home = dst;
	files[0] = bad;
	/* A flipped byte anywhere, or a cut: refused, nothing left. */
	for (off = 0; off < len; off += len / 7 + 1) {
		buf[off] ^= 0x5a;
		unlink(bad);
		tu_write_file(bad, buf, len, 0600);
		assert_int_not_equal(ck_backup_verify(&rd, files, 1, 1, NULL),
		    0);
		assert_int_not_equal(ck_backup_restore(&rd, files, 1, &ro,
		    &last), 0);
		assert_false(access(dst, F_OK) == 0);
		buf[off] ^= 0x5a;
	}
	unlink(bad);
	tu_write_file(bad, buf, len / 2, 0600);
	assert_int_not_equal(ck_backup_verify(&rd, files, 1, 1, NULL), 0);
	free(buf);
	/* Another recipient's key. */
	files[0] = full.paths[0];
	rd.rkey = g.rkey2;
	rd.rcert = g.rcert2;
	assert_int_not_equal(ck_backup_verify(&rd, files, 1, 1, NULL), 0);
	assert_contains(ck_err_msg(), "not encrypted to");
	ck_ca_close(ca);
}

static void
test_manifest(void **state)
{
	struct ck_manifest m, m2;
	char *json = NULL;
	size_t len;

	(void)state;
	memset(&m, 0, sizeof(m));
	snprintf(m.kind, sizeof(m.kind), "incremental");
	snprintf(m.chain, sizeof(m.chain), "%032d", 2);
	snprintf(m.parent_id, sizeof(m.parent_id), "%064d", 3);
	snprintf(m.parent_manifest_sha256, sizeof(m.parent_manifest_sha256),
	    "%064d", 4);
	snprintf(m.ca_subject, sizeof(m.ca_subject), "/CN=x");
	snprintf(m.ca_cert_sha256, sizeof(m.ca_cert_sha256), "%064d", 5);
	m.seq_from = 10;
	m.seq_to = 20;
	m.counts.certs = 3;
	m.nparts = 1;
	snprintf(m.parts[0].name, sizeof(m.parts[0].name), "parts/x.zst");
	m.parts[0].sha256[0] = 0xab;
	m.created = 1795000000;
	{
		/* The id the fields hash to (a wrong one is refused). */
		char src[256];
		unsigned char md[32];
		snprintf(m.id, sizeof(m.id), "%064d", 1);
		assert_int_equal(ck_manifest_build(&m, &json, &len), 0);
		assert_int_not_equal(ck_manifest_parse(json, len, &m2), 0);
		assert_contains(ck_err_msg(), "id");
		free(json);
		snprintf(src, sizeof(src), "%s|%s|%lld|%lld|%lld", m.chain,
		    m.kind, (long long)m.seq_from, (long long)m.seq_to,
		    (long long)m.created);
		SHA256((unsigned char *)src, strlen(src), md);
		for (size_t k = 0; k < 32; k++)
			snprintf(m.id + 2 * k, 3, "%02x", md[k]);
	}
	assert_int_equal(ck_manifest_build(&m, &json, &len), 0);
	assert_int_equal(ck_manifest_parse(json, len, &m2), 0);
	assert_string_equal(m2.parent_id, m.parent_id);
	assert_int_equal(m2.seq_to, 20);
	assert_int_equal(m2.parts[0].sha256[0], 0xab);
	free(json);
	/* Strict: wrong kind, a full with a parent, sequences backwards. */
	assert_int_not_equal(ck_manifest_parse("{}", 2, &m2), 0);
	{
		static const char *const bad[] = {
		    "\"kind\": \"incremental\"", "\"kind\": \"sideways\"",
		    "\"seq_to\": 20", "\"seq_to\": 5",
		    "\"certs\": 3", "\"certs\": -3",
		    "\"format\": \"certkeep-backup/1\"", "\"format\": \"v2\"",
		};
		size_t i;
		assert_int_equal(ck_manifest_build(&m, &json, &len), 0);
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i += 2) {
			char *p = strstr(json, bad[i]), *j2;
			assert_non_null(p);
			assert_int_equal(asprintf(&j2, "%.*s%s%s",
			    (int)(p - json), json, bad[i + 1],
			    p + strlen(bad[i])) > 0, 1);
			assert_int_not_equal(ck_manifest_parse(j2, strlen(j2),
			    &m2), 0);
			free(j2);
		}
		free(json);
	}
}

static int
count_ckb(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".ckb") == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
test_retention(void **state)
{
	struct ck_ca *ca = open_ca();
	struct ck_backup_result r1, r2, r3;
	char **files = NULL;
	size_t n, i;

	(void)state;
	make(ca, 0, 0, 0, &r1);
	make(ca, 1, 0, 0, &r2);
	/* A new full, keeping only the newest set: the old full and its
	 * incremental go. */
	sleep(1);
	/* A file at a recorded path that is not the set recorded there
	 * (replaced since) is never deleted. */
	unlink(r2.paths[0]);
	tu_write_file(r2.paths[0], "not that set", 12, 0600);
	make(ca, 0, 0, 1, &r3);
	assert_true(r3.deleted >= 1);
	assert_false(access(r1.paths[0], F_OK) == 0);
	assert_true(access(r2.paths[0], F_OK) == 0);
	assert_true(access(r3.paths[0], F_OK) == 0);
	unlink(r2.paths[0]);
	/* An incremental keeping one set keeps its full too. */
	make(ca, 1, 0, 1, &r1);
	assert_true(access(r3.paths[0], F_OK) == 0);
	assert_true(access(r1.paths[0], F_OK) == 0);
	assert_int_equal(count_ckb(g.m1), 2);
	/* The chain of the newest set: the full, then the incremental. */
	assert_int_equal(ck_backup_chain_files(ca, NULL, &files, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(files[0], r3.paths[0]);
	assert_string_equal(files[1], r1.paths[0]);
	for (i = 0; i < n; i++)
		free(files[i]);
	free(files);
	ck_ca_close(ca);
}

/* A set with the given parts (zeros of the given lengths), signed by a
 * key that is not the CA's: the pieces of a store file are checked as
 * they come, before the manifest is read. */
static void
craft(const char *path, const char *const *names, const size_t *lens,
    size_t n)
{
	struct ck_archive_writer *w = NULL;
	STACK_OF(X509) *rc = sk_X509_new_null();
	unsigned char *zeros = calloc(1, 65536);
	size_t i;
	int fd;

	assert_non_null(zeros);
	sk_X509_push(rc, g.rcert);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	if (ck_archive_writer_open(fd, g.base, rc, 3, &w) != 0)
		fail_msg("writer: %s", ck_err_msg());
	for (i = 0; i < n; i++) {
		size_t left = lens[i];
		if (ck_archive_part_begin(w, names[i]) != 0)
			fail_msg("part %s: %s", names[i], ck_err_msg());
		while (left > 0) {
			size_t k = left < 65536 ? left : 65536;
			if (ck_archive_part_write(w, zeros, k) != 0)
				fail_msg("part %s: %s", names[i], ck_err_msg());
			left -= k;
		}
		if (ck_archive_part_end(w, NULL) != 0)
			fail_msg("part %s: %s", names[i], ck_err_msg());
	}
	if (ck_archive_writer_finish(w, "{}", 2, g.rkey, g.rcert, NULL,
	    NULL) != 0)
		fail_msg("finish: %s", ck_err_msg());
	ck_archive_writer_free(w);
	close(fd);
	sk_X509_free(rc);
	free(zeros);
}

#define PIECE(hex) "parts/store/store.db." hex ".zst"

static void
test_store_pieces(void **state)
{
	static const struct {
		const char *names[3];
		size_t lens[3];
		size_t n;
		const char *err;
	} cases[] = {
		/* a gap between pieces */
		{ { PIECE("0000000000001000"), PIECE("0000000000005000") },
		    { 8192, 4096 }, 2, "where 12288 was next" },
		/* a first piece that does not start after a page */
		{ { PIECE("0000000000001234") }, { 4096 }, 1,
		    "is not after a page" },
		/* a first page longer than the room for it */
		{ { PIECE("0000000000001000"), PIECE("0000000000000000") },
		    { 4096, 8192 }, 2, "too long" },
		/* a first page shorter than a page */
		{ { PIECE("0000000000001000"), PIECE("0000000000000000") },
		    { 4096, 100 }, 2, "is 100 bytes" },
		/* a piece after the first page */
		{ { PIECE("0000000000000000"), PIECE("0000000000001000") },
		    { 4096, 4096 }, 2, "after its first page" },
		/* a name that is no offset */
		{ { PIECE("00000000000010zz") }, { 4096 }, 1,
		    "unexpected part" },
		/* the store both as a file and as rows */
		{ { PIECE("0000000000001000"), "parts/store/certs.jsonl.zst" },
		    { 4096, 10 }, 2, "not both" },
		/* a first page of nothing */
		{ { PIECE("0000000000000000") }, { 0 }, 1, "one page of 0" },
		/* zeros that would fill the disk before the signature check */
		{ { PIECE("0000000000001000") }, { 80u * 1024 * 1024 }, 1,
		    "more than a set of its size can hold" },
	};
	struct ck_ca *ca = open_ca();
	struct ck_backup_reader rd;
	struct ck_restore_opts ro;
	struct ck_manifest last;
	char set[4300], dst[4300];
	const char *files[1] = { set };
	size_t i;

	(void)state;
	reader(ca, &rd);
	rd.trusted = NULL;
	tu_path(set, sizeof(set), g.base, "crafted.ckb");
	tu_path(dst, sizeof(dst), g.base, "never");
	memset(&ro, 0, sizeof(ro));
	ro.home = dst;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		craft(set, cases[i].names, cases[i].lens, cases[i].n);
		assert_int_not_equal(ck_backup_restore(&rd, files, 1, &ro,
		    &last), 0);
		if (strstr(ck_err_msg(), cases[i].err) == NULL)
			fail_msg("case %zu: %s", i, ck_err_msg());
		assert_false(access(dst, F_OK) == 0);
	}
	/* A store file in a set after a chain's first. */
	{
		static const char *const nm[] = { PIECE("0000000000001000") };
		static const size_t ln[] = { 4096 };
		struct ck_backup_result full;
		const char *two[2];

		make(ca, 0, 0, 0, &full);
		craft(set, nm, ln, 1);
		two[0] = full.paths[0];
		two[1] = set;
		assert_int_not_equal(ck_backup_restore(&rd, two, 2, &ro,
		    &last), 0);
		assert_contains(ck_err_msg(), "not the first of its chain");
		assert_false(access(dst, F_OK) == 0);
	}
	unlink(set);
	ck_ca_close(ca);
}

/* The drill's check of every certificate: all verify; one whose
 * signature or issuer is altered is found and named. */
static void
test_check_certs(void **state)
{
	struct ck_ca *ca = open_ca();
	sqlite3 *db = NULL;
	char path[4300], serial[80] = "";
	uint64_t n = 0, n0 = 0;
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		char cn[64];
		snprintf(cn, sizeof(cn), "check%d.example.com", i);
		issue_one(ca, cn);
	}
	if (ck_drill_check_certs(ca, &n0) != 0)
		fail_msg("check: %s", ck_err_msg());
	assert_true(n0 >= 5);
	ck_ca_close(ca);

	/* The last byte of one certificate (in its signature). */
	tu_path(path, sizeof(path), g.home, "store.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *q = NULL;
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT serial FROM "
		    "certs WHERE der IS NOT NULL ORDER BY rowid DESC LIMIT 1",
		    -1, &q, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		snprintf(serial, sizeof(serial), "%s",
		    (const char *)sqlite3_column_text(q, 0));
		sqlite3_finalize(q);
	}
	assert_int_equal(sqlite3_exec(db, "UPDATE certs SET der = "
	    "CAST(substr(der, 1, length(der) - 1) || CASE WHEN "
	    "substr(der, -1) = x'5a' THEN x'a5' ELSE x'5a' END AS BLOB) "
	    "WHERE rowid = (SELECT max(rowid) FROM certs WHERE der IS NOT "
	    "NULL)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	ca = open_ca();
	assert_int_equal(ck_drill_check_certs(ca, &n), CK_E_BADSIG);
	assert_contains(ck_err_msg(), "1 of");
	assert_contains(ck_err_msg(), serial);
	ck_ca_close(ca);

	/* Truncated: not a certificate at all. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE certs SET der = "
	    "substr(der, 1, 40) WHERE rowid = (SELECT min(rowid) FROM certs "
	    "WHERE der IS NOT NULL)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	ca = open_ca();
	assert_int_equal(ck_drill_check_certs(ca, &n), CK_E_BADSIG);
	assert_contains(ck_err_msg(), "2 of");
	ck_ca_close(ca);
}

/* A drill runs with SIGTERM blocked and stops at the next batch of
 * certificates when one is waiting. */
static void
test_check_interrupted(void **state)
{
	struct ck_ca *ca = open_ca();
	sigset_t set, old;
	struct timespec zero = { 0, 0 };
	uint64_t n = 0;
	int i;

	(void)state;
	for (i = 0; i < 530; i++) {
		char cn[64];
		snprintf(cn, sizeof(cn), "many%d.example.com", i);
		issue_one(ca, cn);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &set, &old), 0);
	assert_int_equal(raise(SIGTERM), 0);
	assert_int_equal(ck_drill_check_certs(ca, &n), CK_E_STATE);
	assert_contains(ck_err_msg(), "interrupted");
	/* Take the signal back and restore the mask. */
	assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGTERM);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
	ck_ca_close(ca);
}

/* A store with a damaged page is backed up as it is (the backup copies
 * pages), and the restore refuses it: SQLite's check of the file runs
 * before anything uses it. Last: it leaves the test CA damaged. */
static void
test_damaged_store(void **state)
{
	struct ck_ca *ca;
	struct ck_backup_result full;
	struct ck_backup_reader rd;
	struct ck_restore_opts ro;
	struct ck_manifest last;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	char path[4300], dst[4300];
	const char *files[1];
	unsigned char junk[512];
	int64_t pgno, pgsz;
	int fd;

	(void)state;
	tu_path(path, sizeof(path), g.home, "store.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)",
	    NULL, NULL, NULL), SQLITE_OK);
	/* A leaf page of the certificates' rows, which the backup's counts
	 * (indexes, the audit log's last row) never read. */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT pageno, "
	    "(SELECT page_size FROM pragma_page_size) FROM dbstat "
	    "WHERE name = 'certs' AND pagetype = 'leaf' "
	    "ORDER BY pageno LIMIT 1 OFFSET 3", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	pgno = sqlite3_column_int64(q, 0);
	pgsz = sqlite3_column_int64(q, 1);
	sqlite3_finalize(q);
	sqlite3_close(db);
	memset(junk, 0xee, sizeof(junk));
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof(junk),
	    (off_t)((pgno - 1) * pgsz + 8)), (ssize_t)sizeof(junk));
	close(fd);

	ca = open_ca();
	make(ca, 0, 0, 0, &full);
	reader(ca, &rd);
	tu_path(dst, sizeof(dst), g.base, "damaged");
	memset(&ro, 0, sizeof(ro));
	ro.home = dst;
	files[0] = full.paths[0];
	assert_int_equal(ck_backup_restore(&rd, files, 1, &ro, &last),
	    CK_E_TAMPER);
	assert_contains(ck_err_msg(), "damaged");
	assert_false(access(dst, F_OK) == 0);
	ck_ca_close(ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_full_incremental_restore),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_store_pieces),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_check_interrupted),
		cmocka_unit_test(test_check_certs),
		cmocka_unit_test(test_damaged_store),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
