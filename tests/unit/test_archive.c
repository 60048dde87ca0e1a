/*
 * test_archive.c - src/backup/tar and src/backup/archive: the ustar
 * writer and strict reader, and the backup set container (CMS envelope to
 * RSA and EC recipients, zstd parts, signed manifest): round trips, a
 * streamed multi-megabyte part, and every fault a reader must refuse
 * (flipped bytes, truncation, wrong key, foreign signer, a manifest that
 * is not the signed one, misplaced, duplicate or climbing entries).
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <zstd.h>

#include "backup/archive.h"
#include "backup/tar.h"
#include "common/err.h"

/* A call that must succeed; the reason is shown if it does not. */
#define assert_ck(expr) do {						\
	int rc_ = (expr);						\
	if (rc_ != 0)							\
		fail_msg("%s: %d: %s", #expr, rc_, ck_err_msg());	\
} while (0)

/* ------------------------------------------------------------------ */
/* Certificates and keys, made once. */

struct pki {
	EVP_PKEY *rsa, *ec, *ec384, *other_rsa, *other_ec, *ed;
	X509 *rsa_cert, *ec_cert, *ec384_cert, *other_rsa_cert, *ed_cert;
	EVP_PKEY *ca_key, *ca2_key, *int_key;
	X509 *ca, *ca2, *inter;	/* root, an unrelated root, intermediate */
};

static struct pki pki;

static X509 *
make_cert(EVP_PKEY *key, const char *cn, EVP_PKEY *ikey, X509 *icert,
    int ca)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	unsigned char serial[8];
	BIGNUM *bn;
	int eddsa;

	assert_non_null(x);
	assert_non_null(nm);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(RAND_bytes(serial, sizeof(serial)), 1);
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	BN_free(bn);
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, nm), 1);
	assert_int_equal(X509_set_issuer_name(x, icert != NULL ?
	    X509_get_subject_name(icert) : nm), 1);
	X509_NAME_free(nm);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&v3, icert != NULL ? icert : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, ca ?
	    "critical,digitalSignature,keyCertSign,cRLSign" :
	    "critical,digitalSignature,keyEncipherment,keyAgreement");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier,
	    "hash");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	eddsa = EVP_PKEY_is_a(ikey, "ED25519") || EVP_PKEY_is_a(ikey, "ED448");
	assert_true(X509_sign(x, ikey, eddsa ? NULL : EVP_sha256()) > 0);
	return x;
}

static int
group_setup(void **state)
{
	(void)state;
	pki.rsa = tu_key("rsa2048");
	pki.ec = tu_key("ec-p256");
	pki.ec384 = tu_key("ec-p384");
	pki.ed = tu_key("ed25519");
	pki.other_rsa = tu_key_new("rsa2048");
	pki.other_ec = tu_key_new("ec-p256");
	pki.ca_key = tu_key_new("ec-p256");
	pki.ca2_key = tu_key_new("ec-p256");
	pki.int_key = tu_key_new("ec-p384");
	pki.rsa_cert = make_cert(pki.rsa, "backup rsa", pki.rsa, NULL, 0);
	pki.ec_cert = make_cert(pki.ec, "backup ec", pki.ec, NULL, 0);
	pki.ec384_cert = make_cert(pki.ec384, "backup ec384", pki.ec384,
	    NULL, 0);
	pki.other_rsa_cert = make_cert(pki.other_rsa, "other rsa",
	    pki.other_rsa, NULL, 0);
	pki.ed_cert = make_cert(pki.ed, "backup ed25519", pki.ed, NULL, 0);
	pki.ca = make_cert(pki.ca_key, "Test Root CA", pki.ca_key, NULL, 1);
	pki.ca2 = make_cert(pki.ca2_key, "Other Root CA", pki.ca2_key, NULL,
	    1);
	pki.inter = make_cert(pki.int_key, "Test Issuing CA", pki.ca_key,
	    pki.ca, 1);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(pki.rsa);
	EVP_PKEY_free(pki.ec);
	EVP_PKEY_free(pki.ec384);
	EVP_PKEY_free(pki.ed);
	EVP_PKEY_free(pki.other_rsa);
	EVP_PKEY_free(pki.other_ec);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.ca2_key);
	EVP_PKEY_free(pki.int_key);
	X509_free(pki.rsa_cert);
	X509_free(pki.ec_cert);
	X509_free(pki.ec384_cert);
	X509_free(pki.other_rsa_cert);
	X509_free(pki.ed_cert);
	X509_free(pki.ca);
	X509_free(pki.ca2);
	X509_free(pki.inter);
	tu_keys_free();
	return 0;
}

static STACK_OF(X509) *
stack_of(X509 *a, X509 *b)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	assert_non_null(sk);
	if (a != NULL)
		assert_true(sk_X509_push(sk, a) > 0);
	if (b != NULL)
		assert_true(sk_X509_push(sk, b) > 0);
	return sk;
}

/* ------------------------------------------------------------------ */
/* Fixture: a private directory. */

struct fx {
	char dir[4096];
	char set[4200];
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	tu_path(fx->set, sizeof(fx->set), fx->dir, "set.ckb");
	*state = fx;
	ck_err_clear();
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tar over memory. */

struct membuf {
	unsigned char *p;
	size_t len, cap, pos;
	size_t max_read;	/* 0: no limit per read call */
};

static int
mem_write(void *arg, const void *buf, size_t len)
{
	struct membuf *m = arg;

	if (m->len + len > m->cap) {
		size_t ncap = m->cap == 0 ? 4096 : m->cap;

		while (ncap < m->len + len)
			ncap *= 2;
		m->p = realloc(m->p, ncap);
		assert_non_null(m->p);
		m->cap = ncap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static long
mem_read(void *arg, void *buf, size_t len)
{
	struct membuf *m = arg;

	if (m->max_read > 0 && len > m->max_read)
		len = m->max_read;
	if (len > m->len - m->pos)
		len = m->len - m->pos;
	memcpy(buf, m->p + m->pos, len);
	m->pos += len;
	return (long)len;
}

/* A ustar header made here, independently of tar.c, so that the reader
 * can be shown headers the writer refuses to make. */
static void
raw_tar_header(unsigned char h[512], const char *name, uint64_t size,
    char type)
{
	unsigned sum = 0;

	memset(h, 0, 512);
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	memcpy(h + 100, "0000600", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	memcpy(h + 136, "14000000000", 12);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar\0" "00", 8);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static void
raw_tar_entry(struct membuf *m, const char *name, const void *data,
    size_t len, char type)
{
	static const unsigned char zero[512];
	unsigned char h[512];

	raw_tar_header(h, name, len, type);
	mem_write(m, h, sizeof(h));
	mem_write(m, data, len);
	mem_write(m, zero, (512 - len % 512) % 512);
}

static void
raw_tar_end(struct membuf *m)
{
	static const unsigned char zero[1024];

	mem_write(m, zero, sizeof(zero));
}

/* Read a whole tar stream; returns the first error (or 0) and the number
 * of entries; checks every entry's data against its size. */
static int
tar_read_all(struct membuf *m, size_t *nentries, char names[][256],
    size_t maxnames)
{
	struct ck_tar_io io = { NULL, mem_read, m };
	struct ck_tar_reader r;
	unsigned char buf[700];
	char name[256];
	uint64_t size, got;
	long n;
	int rc;

	memset(&r, 0, sizeof(r));
	r.io = &io;
	*nentries = 0;
	m->pos = 0;
	while ((rc = ck_tar_next(&r, name, sizeof(name), &size)) == 1) {
		got = 0;
		while ((n = ck_tar_read_data(&r, buf, sizeof(buf))) > 0)
			got += (uint64_t)n;
		if (n < 0)
			return CK_E_PARSE;
		assert_true(got == size);
		if ((rc = ck_tar_skip_pad(&r)) != 0)
			return rc;
		if (*nentries < maxnames)
			snprintf(names[*nentries], 256, "%s", name);
		(*nentries)++;
	}
	return rc;
}

static void
test_tar_roundtrip(void **state)
{
	struct membuf m = { 0 };
	struct ck_tar_io io = { mem_write, NULL, &m };
	char names[8][256], longname[200];
	unsigned char data[1300];
	static const unsigned char zeros[10240];
	size_t sizes[] = { 0, 1, 511, 512, 513, 1300 }, n, i;
	char nm[32];

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7);
	for (i = 0; i < 6; i++) {
		snprintf(nm, sizeof(nm), "d/f%zu", i);
		assert_ck(ck_tar_header(&io, nm, sizes[i], 1700000000));
		assert_int_equal(io.write(io.arg, data, sizes[i]), 0);
		assert_ck(ck_tar_pad(&io, sizes[i]));
	}
	/* A name over 100 bytes goes through the prefix field. */
	memset(longname, 'a', sizeof(longname));
	memcpy(longname + 60, "/", 1);
	longname[150] = '\0';
	assert_ck(ck_tar_header(&io, longname, 3, 0));
	assert_int_equal(io.write(io.arg, "abc", 3), 0);
	assert_ck(ck_tar_pad(&io, 3));
	assert_ck(ck_tar_end(&io));
	assert_int_equal(m.len % 512, 0);
	/* Blocking pads with zeros: accepted. */
	mem_write(&m, zeros, sizeof(zeros));

	m.max_read = 100;	/* short reads everywhere */
	assert_int_equal(tar_read_all(&m, &n, names, 8), 0);
	assert_int_equal(n, 7);
	assert_string_equal(names[0], "d/f0");
	assert_string_equal(names[5], "d/f5");
	assert_string_equal(names[6], longname);
	free(m.p);
}

static void
test_tar_gnu_base256(void **state)
{
	struct membuf m = { 0 };
	struct ck_tar_io io = { mem_write, mem_read, &m };
	struct ck_tar_reader r;
	char name[64];
	uint64_t size, big = 8ULL * 1024 * 1024 * 1024 + 5;

	(void)state;
	assert_ck(ck_tar_header(&io, "big", big, 0));
	assert_int_equal(m.p[124], 0x80);
	assert_ck(ck_tar_header(&io, "edge", 077777777777ULL, 0));
	assert_int_equal(m.p[512 + 124], '7');
	memset(&r, 0, sizeof(r));
	r.io = &io;
	m.len = 512;	/* only the header: its size is what is checked */
	assert_int_equal(ck_tar_next(&r, name, sizeof(name), &size), 1);
	assert_true(size == big);
	assert_string_equal(name, "big");
	/* Its data is missing: truncation. */
	assert_int_equal(ck_tar_skip_pad(&r), CK_E_PARSE);
	assert_contains(ck_err_msg(), "truncated");
	free(m.p);
}

/* A tar stream with one entry of NAME and TYPE, patched by PATCH. */
static int
tar_fault(const char *name, char type, void (*patch)(struct membuf *),
    const char *want)
{
	struct membuf m = { 0 };
	char names[4][256];
	size_t n;
	int rc;

	raw_tar_entry(&m, name, "hello", 5, type);
	raw_tar_end(&m);
	if (patch != NULL)
		patch(&m);
	ck_err_clear();
	rc = tar_read_all(&m, &n, names, 4);
	if (want != NULL) {
		assert_true(rc < 0);
		assert_contains(ck_err_msg(), want);
	}
	free(m.p);
	return rc;
}

/* Damage done to a one-entry tar stream ("hello", then the end). */
static void
flip_chksum(struct membuf *m)
{
	m->p[150] ^= 1;
}

static void
flip_name(struct membuf *m)
{
	m->p[0] ^= 1;
}

static void
pad_nonzero(struct membuf *m)
{
	m->p[512 + 100] = 1;
}

static void
trailing_garbage(struct membuf *m)
{
	mem_write(m, "x", 1);
}

static void
trailing_zero(struct membuf *m)
{
	static const unsigned char z[700];

	mem_write(m, z, sizeof(z));
}

static void
drop_end_block(struct membuf *m)
{
	m->len -= 512;
}

static void
drop_both_ends(struct membuf *m)
{
	m->len -= 1024;
}

static void
cut_data(struct membuf *m)
{
	m->len = 512 + 3;
}

static void
cut_header(struct membuf *m)
{
	m->len = 100;
}

static void
zero_then_data(struct membuf *m)
{
	unsigned char h[512];

	raw_tar_header(h, "late", 0, '0');
	m->len -= 512;
	mem_write(m, h, sizeof(h));
}

/* Another magic, with a checksum that matches it. */
static void
bad_magic(struct membuf *m)
{
	unsigned sum = 0;

	m->p[257] = 'X';
	memset(m->p + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += m->p[i];
	snprintf((char *)m->p + 148, 8, "%06o", sum);
}

static void
test_tar_refusals(void **state)
{
	struct membuf m = { 0 };
	struct ck_tar_io io = { mem_write, NULL, &m };

	(void)state;
	assert_int_equal(tar_fault("ok", '0', NULL, NULL), 0);
	assert_int_equal(tar_fault("ok", '\0', NULL, NULL), 0);
	tar_fault("ok", '0', flip_chksum, "checksum");
	tar_fault("ok", '0', flip_name, "checksum");
	tar_fault("link", '2', NULL, "not a regular file (type '2')");
	tar_fault("dir", '5', NULL, "not a regular file");
	tar_fault("/etc/passwd", '0', NULL, "refused");
	tar_fault("../x", '0', NULL, "refused");
	tar_fault("a/../../x", '0', NULL, "refused");
	tar_fault("a//b", '0', NULL, "refused");
	tar_fault("./a", '0', NULL, "refused");
	tar_fault("a/", '0', NULL, "refused");
	tar_fault("a\tb", '0', NULL, "malformed name");
	tar_fault("ok", '0', pad_nonzero, "padding");
	tar_fault("ok", '0', trailing_garbage, "after the end");
	assert_int_equal(tar_fault("ok", '0', trailing_zero, NULL), 0);
	tar_fault("ok", '0', drop_end_block, "one of the two");
	tar_fault("ok", '0', drop_both_ends, "without the end-of-archive");
	tar_fault("ok", '0', cut_data, "truncated");
	tar_fault("ok", '0', cut_header, "truncated");
	tar_fault("ok", '0', zero_then_data, "zero block followed by data");
	tar_fault("ok", '0', bad_magic, "not ustar");

	/* The writer refuses the same names. */
	assert_int_equal(ck_tar_header(&io, "../x", 0, 0), CK_E_INVAL);
	assert_int_equal(ck_tar_header(&io, "/x", 0, 0), CK_E_INVAL);
	assert_int_equal(ck_tar_header(&io, "", 0, 0), CK_E_INVAL);
	assert_int_equal(m.len, 0);
	free(m.p);
}

/* ------------------------------------------------------------------ */
/* Sets. */

struct part_spec {
	const char *name;
	const unsigned char *data;
	size_t len;
};

static char *
hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
	return out;
}

/* Write a set and return its manifest (which lists the part digests). */
static char *
write_set(const char *path, const char *tmpdir, STACK_OF(X509) *recips,
    const struct part_spec *ps, size_t n, EVP_PKEY *skey, X509 *scert,
    STACK_OF(X509) *chain, unsigned char sha[32])
{
	struct ck_archive_writer *w = NULL;
	struct ck_archive_part info;
	char *manifest, h[65];
	size_t cap = 256 + n * 200, len;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_ck(ck_archive_writer_open(fd, tmpdir, recips, 3, &w));
	manifest = malloc(cap);
	assert_non_null(manifest);
	len = (size_t)snprintf(manifest, cap, "{\"format\":\"test\",\"parts\":[");
	for (size_t i = 0; i < n; i++) {
		size_t off = 0, step;

		assert_ck(ck_archive_part_begin(w, ps[i].name));
		/* Uneven writes. */
		while (off < ps[i].len) {
			step = ps[i].len - off < 777 + off ? ps[i].len - off :
			    777 + off;
			assert_ck(ck_archive_part_write(w,
			    ps[i].data + off, step));
			off += step;
		}
		assert_ck(ck_archive_part_end(w, &info));
		assert_string_equal(info.name, ps[i].name);
		assert_true(info.raw_size == ps[i].len);
		assert_true(info.size > 0);
		len += (size_t)snprintf(manifest + len, cap - len,
		    "%s{\"name\":\"%s\",\"sha256\":\"%s\"}", i ? "," : "",
		    info.name, hex(info.sha256, 32, h));
	}
	len += (size_t)snprintf(manifest + len, cap - len, "]}");
	assert_ck(ck_archive_writer_finish(w, manifest, len, skey,
	    scert, chain, sha));
	ck_archive_writer_free(w);
	assert_int_equal(close(fd), 0);
	return manifest;
}

/* What a caller does after ck_archive_read(): every part's digest must
 * be the one the signed manifest lists for it. */
static int
digests_match(const struct ck_archive_result *res)
{
	char want[512], h[65];

	for (size_t i = 0; i < res->nparts; i++) {
		snprintf(want, sizeof(want), "{\"name\":\"%s\",\"sha256\":"
		    "\"%s\"}", res->parts[i].name,
		    hex(res->parts[i].sha256, 32, h));
		if (strstr(res->manifest, want) == NULL)
			return 0;
	}
	return 1;
}

struct collect {
	char names[CK_ARCHIVE_MAX_PARTS][CK_ARCHIVE_NAME_MAX];
	unsigned char *data[CK_ARCHIVE_MAX_PARTS];
	size_t len[CK_ARCHIVE_MAX_PARTS];
	size_t n, calls, maxchunk;
	int ended[CK_ARCHIVE_MAX_PARTS];
	int keep;		/* 0: only count */
	int stop_at;		/* stop in part_begin of this part (1-based) */
};

static int
c_begin(void *arg, const char *name)
{
	struct collect *c = arg;

	assert_true(c->n < CK_ARCHIVE_MAX_PARTS);
	if (c->stop_at > 0 && (size_t)c->stop_at == c->n + 1)
		return ck_err_set(CK_E_POLICY, "stopped by the test at %s",
		    name);
	snprintf(c->names[c->n], CK_ARCHIVE_NAME_MAX, "%s", name);
	c->n++;
	return 0;
}

static int
c_data(void *arg, const void *buf, size_t len)
{
	struct collect *c = arg;
	size_t i = c->n - 1;

	c->calls++;
	if (len > c->maxchunk)
		c->maxchunk = len;
	if (c->keep) {
		c->data[i] = realloc(c->data[i], c->len[i] + len);
		assert_non_null(c->data[i]);
		memcpy(c->data[i] + c->len[i], buf, len);
	}
	c->len[i] += len;
	return 0;
}

static int
c_end(void *arg, const struct ck_archive_part *info)
{
	struct collect *c = arg;

	assert_string_equal(info->name, c->names[c->n - 1]);
	assert_true(info->raw_size == c->len[c->n - 1]);
	c->ended[c->n - 1] = 1;
	return 0;
}

static void
collect_free(struct collect *c)
{
	for (size_t i = 0; i < CK_ARCHIVE_MAX_PARTS; i++)
		free(c->data[i]);
	memset(c, 0, sizeof(*c));
}

/* The same from a buffer, through a memory file (no disk). */
static int
read_buf(const unsigned char *buf, size_t len, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *trusted, struct collect *c, struct ck_archive_result *res)
{
	struct ck_archive_reader_cb cb = { c_begin, c_data, c_end, c };
	int fd = memfd_create("set", MFD_CLOEXEC), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	ck_err_clear();
	rc = ck_archive_read(fd, key, cert, trusted, c != NULL ? &cb : NULL,
	    res);
	close(fd);
	return rc;
}

static int
read_set(const char *path, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *trusted, struct collect *c, struct ck_archive_result *res)
{
	struct ck_archive_reader_cb cb = { c_begin, c_data, c_end, c };
	int fd, rc;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ck_err_clear();
	rc = ck_archive_read(fd, key, cert, trusted, c != NULL ? &cb : NULL,
	    res);
	close(fd);
	return rc;
}

static unsigned char sample_a[] = "id,serial\n1,01\n2,02\n";
static unsigned char sample_b[5000];

static void
fill_sample(void)
{
	for (size_t i = 0; i < sizeof(sample_b); i++)
		sample_b[i] = (unsigned char)("certkeep"[i % 8] + (i / 100));
}

static const struct part_spec *
sample_parts(size_t *n)
{
	static struct part_spec ps[3];

	fill_sample();
	ps[0] = (struct part_spec){ "parts/store/certs.jsonl.zst", sample_a,
	    sizeof(sample_a) - 1 };
	ps[1] = (struct part_spec){ "parts/ca/ca.pem.zst", sample_b,
	    sizeof(sample_b) };
	ps[2] = (struct part_spec){ "parts/store/empty.jsonl.zst", sample_a,
	    0 };
	*n = 3;
	return ps;
}

static void
check_roundtrip(struct fx *fx, STACK_OF(X509) *recips, EVP_PKEY *key,
    X509 *cert, EVP_PKEY *skey, X509 *scert, STACK_OF(X509) *chain,
    STACK_OF(X509) *trusted)
{
	struct ck_archive_result res;
	struct collect c = { .keep = 1 };
	unsigned char sha[32], fsha[32];
	uint64_t fsize;
	size_t n;
	const struct part_spec *ps = sample_parts(&n);
	char *manifest;
	struct stat st;
	int fd;

	(void)unlink(fx->set);
	manifest = write_set(fx->set, fx->dir, recips, ps, n, skey, scert,
	    chain, sha);
	assert_int_equal(stat(fx->set, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_ck(read_set(fx->set, key, cert, trusted, &c, &res));
	assert_int_equal(res.nparts, n);
	assert_int_equal(c.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(res.parts[i].name, ps[i].name);
		assert_string_equal(c.names[i], ps[i].name);
		assert_true(c.ended[i]);
		assert_int_equal(c.len[i], ps[i].len);
		if (ps[i].len > 0)
			assert_memory_equal(c.data[i], ps[i].data, ps[i].len);
		assert_true(res.parts[i].raw_size == ps[i].len);
	}
	assert_true(digests_match(&res));
	assert_string_equal(res.manifest, manifest);
	assert_int_equal(res.manifest_len, strlen(manifest));
	assert_non_null(res.signer);
	assert_int_equal(X509_cmp(res.signer, scert), 0);
	/* The digest of the whole file, three ways. */
	assert_memory_equal(res.archive_sha256, sha, 32);
	fd = open(fx->set, O_RDONLY);
	assert_ck(ck_archive_file_sha256(fd, fsha, &fsize));
	close(fd);
	assert_memory_equal(fsha, sha, 32);
	assert_true(fsize == (uint64_t)st.st_size);
	assert_true(res.archive_size == fsize);
	ck_archive_result_clear(&res);
	assert_null(res.manifest);
	collect_free(&c);
	free(manifest);
}

static void
test_roundtrip_rsa(void **state)
{
	STACK_OF(X509) *r = stack_of(pki.rsa_cert, NULL);
	STACK_OF(X509) *t = stack_of(pki.ca, NULL);

	check_roundtrip(*state, r, pki.rsa, pki.rsa_cert, pki.ca_key, pki.ca,
	    NULL, t);
	check_roundtrip(*state, r, pki.rsa, NULL, pki.ca_key, pki.ca, NULL,
	    NULL);
	sk_X509_free(r);
	sk_X509_free(t);
}

static void
test_roundtrip_ec(void **state)
{
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	STACK_OF(X509) *r2 = stack_of(pki.ec384_cert, NULL);
	STACK_OF(X509) *t = stack_of(pki.ca, NULL);

	check_roundtrip(*state, r, pki.ec, pki.ec_cert, pki.ca_key, pki.ca,
	    NULL, t);
	check_roundtrip(*state, r, pki.ec, NULL, pki.ca_key, pki.ca, NULL, t);
	check_roundtrip(*state, r2, pki.ec384, pki.ec384_cert, pki.ca_key,
	    pki.ca, NULL, t);
	sk_X509_free(r);
	sk_X509_free(r2);
	sk_X509_free(t);
}

static void
test_roundtrip_two_recipients(void **state)
{
	STACK_OF(X509) *r = stack_of(pki.rsa_cert, pki.ec_cert);
	STACK_OF(X509) *t = stack_of(pki.ca, NULL);
	STACK_OF(X509) *chain = stack_of(pki.ca, pki.inter);

	check_roundtrip(*state, r, pki.rsa, pki.rsa_cert, pki.ca_key, pki.ca,
	    NULL, t);
	check_roundtrip(*state, r, pki.ec, pki.ec_cert, pki.ca_key, pki.ca,
	    NULL, t);
	check_roundtrip(*state, r, pki.ec, NULL, pki.ca_key, pki.ca, NULL, t);
	check_roundtrip(*state, r, pki.rsa, NULL, pki.ca_key, pki.ca, NULL,
	    t);
	/* An issuing CA signs; the root alone is trusted; the chain (with
	 * duplicates of the signer) travels in manifest.p7s. */
	check_roundtrip(*state, r, pki.rsa, NULL, pki.int_key, pki.inter,
	    chain, t);
	sk_X509_free(r);
	sk_X509_free(t);
	sk_X509_free(chain);
}

/* OpenSSL 3.0's CMS cannot sign with EdDSA: refused up front, clearly,
 * and the writer stays usable. */
static void
test_ed25519_signer_refused(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *k = tu_key_new("ed25519");
	X509 *ca = make_cert(k, "Ed25519 CA", k, NULL, 1);
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	struct ck_archive_writer *w = NULL;
	unsigned char sha[32];
	int fd = open(fx->set, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_int_equal(ck_archive_signer_check(k, ca), CK_E_INVAL);
	assert_contains(ck_err_msg(), "ED25519");
	assert_int_equal(ck_archive_signer_check(pki.ca_key, ca), CK_E_INVAL);
	assert_contains(ck_err_msg(), "does not belong");
	assert_ck(ck_archive_signer_check(pki.ca_key, pki.ca));
	assert_true(fd >= 0);
	assert_ck(ck_archive_writer_open(fd, fx->dir, r, 3, &w));
	assert_int_equal(ck_archive_writer_finish(w, "{}", 2, k, ca, NULL,
	    sha), CK_E_INVAL);
	assert_ck(ck_archive_writer_finish(w, "{}", 2, pki.ca_key, pki.ca,
	    NULL, sha));
	ck_archive_writer_free(w);
	close(fd);
	sk_X509_free(r);
	X509_free(ca);
	EVP_PKEY_free(k);
}

static void
test_ed25519_recipient_refused(void **state)
{
	struct fx *fx = *state;
	struct ck_archive_writer *w = NULL;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, pki.ed_cert);
	STACK_OF(X509) *empty = stack_of(NULL, NULL);
	int fd = open(fx->set, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ck_archive_writer_open(fd, fx->dir, r, 3, &w),
	    CK_E_INVAL);
	assert_null(w);
	assert_contains(ck_err_msg(), "ED25519");
	assert_contains(ck_err_msg(), "cannot do CMS key agreement");
	assert_int_equal(ck_archive_writer_open(fd, fx->dir, empty, 3, &w),
	    CK_E_INVAL);
	assert_int_equal(ck_archive_writer_open(fd, fx->dir, empty, 3, &w),
	    CK_E_INVAL);
	sk_X509_free(r);
	sk_X509_free(empty);
	close(fd);
}

static void
test_writer_refusals(void **state)
{
	struct fx *fx = *state;
	struct ck_archive_writer *w = NULL;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	char big[CK_ARCHIVE_NAME_MAX + 10], nm[64];
	int fd = open(fx->set, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ck_archive_writer_open(fd, fx->dir, r, 22, &w),
	    CK_E_INVAL);
	assert_contains(ck_err_msg(), "zstd level 22");
	assert_ck(ck_archive_writer_open(fd, fx->dir, r, 19, &w));
	assert_int_equal(ck_archive_part_begin(w, "parts/a.txt"), CK_E_INVAL);
	assert_int_equal(ck_archive_part_begin(w, "other/a.zst"), CK_E_INVAL);
	assert_int_equal(ck_archive_part_begin(w, "parts/../a.zst"),
	    CK_E_INVAL);
	memset(big, 'a', sizeof(big));
	memcpy(big, "parts/", 6);
	memcpy(big + sizeof(big) - 5, ".zst", 5);
	assert_int_equal(ck_archive_part_begin(w, big), CK_E_INVAL);
	assert_int_equal(ck_archive_part_write(w, "x", 1), CK_E_STATE);
	assert_ck(ck_archive_part_begin(w, "parts/a.zst"));
	assert_int_equal(ck_archive_part_begin(w, "parts/b.zst"), CK_E_STATE);
	assert_int_equal(ck_archive_writer_finish(w, "{}", 2, pki.ca_key,
	    pki.ca, NULL, NULL), CK_E_STATE);
	assert_ck(ck_archive_part_end(w, NULL));
	assert_int_equal(ck_archive_part_begin(w, "parts/a.zst"), CK_E_EXISTS);
	for (int i = 1; i < CK_ARCHIVE_MAX_PARTS; i++) {
		snprintf(nm, sizeof(nm), "parts/p%d.zst", i);
		assert_ck(ck_archive_part_begin(w, nm));
		assert_ck(ck_archive_part_end(w, NULL));
	}
	assert_int_equal(ck_archive_part_begin(w, "parts/one-more.zst"),
	    CK_E_TOOBIG);
	/* A key that is not the certificate's: refused, writer intact. */
	assert_int_equal(ck_archive_writer_finish(w, "{}", 2, pki.ca2_key,
	    pki.ca, NULL, NULL), CK_E_INVAL);
	assert_ck(ck_archive_writer_finish(w, "{}", 2, pki.ca_key, pki.ca,
	    NULL, NULL));
	assert_int_equal(ck_archive_part_begin(w, "parts/z.zst"), CK_E_STATE);
	assert_contains(ck_err_msg(), "finished");
	ck_archive_writer_free(w);
	ck_archive_writer_free(NULL);
	sk_X509_free(r);
	close(fd);
}

/* A part of several megabytes goes through in bounded chunks. */
static void
test_big_part(void **state)
{
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	struct ck_archive_result res;
	struct collect c = { .keep = 1 };
	size_t len = 6 * 1024 * 1024 + 123, flen = 1024 * 1024;
	unsigned char *data = malloc(len), *flat = malloc(flen), sha[32];
	struct part_spec ps[3];
	char *manifest;

	assert_non_null(data);
	/* Half random (does not compress), half text. */
	assert_int_equal(RAND_bytes(data, (int)(len / 2)), 1);
	for (size_t i = len / 2; i < len; i++)
		data[i] = (unsigned char)('a' + (i * 31 + i / 1000) % 26);
	/* A multiple of zstd's block size that compresses to almost
	 * nothing: its frame ends exactly as an output buffer fills. */
	assert_non_null(flat);
	memset(flat, 'x', flen);
	ps[0] = (struct part_spec){ "parts/big.zst", data, len };
	ps[1] = (struct part_spec){ "parts/small.zst", sample_a, 3 };
	ps[2] = (struct part_spec){ "parts/flat.zst", flat, flen };
	manifest = write_set(fx->set, fx->dir, r, ps, 3, pki.ca_key, pki.ca,
	    NULL, sha);
	assert_ck(read_set(fx->set, pki.ec, NULL, NULL, &c, &res));
	assert_int_equal(c.len[0], len);
	assert_memory_equal(c.data[0], data, len);
	assert_int_equal(c.len[2], flen);
	assert_memory_equal(c.data[2], flat, flen);
	assert_true(res.parts[2].size < 1024);
	assert_true(c.calls > 20);
	assert_true(c.maxchunk <= 256 * 1024);
	assert_true(res.parts[0].size > len / 2);
	assert_true(digests_match(&res));
	ck_archive_result_clear(&res);
	collect_free(&c);
	free(manifest);
	free(data);
	free(flat);
	sk_X509_free(r);
}

static void
test_wrong_recipient(void **state)
{
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.rsa_cert, pki.ec_cert);
	struct ck_archive_result res;
	unsigned char sha[32];
	size_t n;
	const struct part_spec *ps = sample_parts(&n);
	char *m;

	m = write_set(fx->set, fx->dir, r, ps, n, pki.ca_key, pki.ca, NULL,
	    sha);
	/* An RSA key that is not a recipient, without and with its
	 * certificate. */
	assert_int_equal(read_set(fx->set, pki.other_rsa, NULL, NULL, NULL,
	    &res), CK_E_CRYPTO);
	assert_contains(ck_err_msg(), "not encrypted to the given key");
	assert_null(res.manifest);
	assert_int_equal(read_set(fx->set, pki.other_rsa, pki.other_rsa_cert,
	    NULL, NULL, &res), CK_E_CRYPTO);
	assert_contains(ck_err_msg(), "not encrypted to the given key");
	assert_contains(ck_err_msg(), "other rsa");
	/* An EC key that is not a recipient; a P-384 key against P-256. */
	assert_int_equal(read_set(fx->set, pki.other_ec, NULL, NULL, NULL,
	    &res), CK_E_CRYPTO);
	assert_contains(ck_err_msg(), "not encrypted to the given key");
	assert_int_equal(read_set(fx->set, pki.ec384, NULL, NULL, NULL, &res),
	    CK_E_CRYPTO);
	/* A key that is not the certificate's. */
	assert_int_equal(read_set(fx->set, pki.other_rsa, pki.rsa_cert, NULL,
	    NULL, &res), CK_E_INVAL);
	assert_contains(ck_err_msg(), "does not belong");
	/* An Ed25519 key cannot be one. */
	assert_int_equal(read_set(fx->set, pki.ed, NULL, NULL, NULL, &res),
	    CK_E_CRYPTO);
	/* The right ones still work. */
	assert_ck(read_set(fx->set, pki.rsa, NULL, NULL, NULL, &res));
	ck_archive_result_clear(&res);
	free(m);
	sk_X509_free(r);
}

static void
test_untrusted_signer(void **state)
{
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	STACK_OF(X509) *t = stack_of(pki.ca, NULL);
	STACK_OF(X509) *t2 = stack_of(pki.ca2, NULL);
	struct ck_archive_result res;
	unsigned char sha[32];
	size_t n;
	const struct part_spec *ps = sample_parts(&n);
	char *m;

	m = write_set(fx->set, fx->dir, r, ps, n, pki.ca2_key, pki.ca2, NULL,
	    sha);
	assert_int_equal(read_set(fx->set, pki.ec, NULL, t, NULL, &res),
	    CK_E_BADSIG);
	assert_contains(ck_err_msg(), "Other Root CA");
	assert_contains(ck_err_msg(), "not one of the trusted");
	assert_null(res.signer);
	/* Without TRUSTED the signature is checked, not the signer. */
	assert_ck(read_set(fx->set, pki.ec, NULL, NULL, NULL, &res));
	assert_int_equal(X509_cmp(res.signer, pki.ca2), 0);
	ck_archive_result_clear(&res);
	assert_ck(read_set(fx->set, pki.ec, NULL, t2, NULL, &res));
	ck_archive_result_clear(&res);
	free(m);
	sk_X509_free(r);
	sk_X509_free(t);
	sk_X509_free(t2);
}

/* ------------------------------------------------------------------ */
/* Sets built by hand, to hold what the writer never makes. */

static void
zstd_of(const void *data, size_t len, unsigned char **out, size_t *outlen)
{
	size_t cap = ZSTD_compressBound(len), n;

	*out = malloc(cap);
	assert_non_null(*out);
	n = ZSTD_compress(*out, cap, data, len, 3);
	assert_false(ZSTD_isError(n));
	*outlen = n;
}

static void
sign_der(const char *content, EVP_PKEY *key, X509 *cert, unsigned char **out,
    size_t *outlen)
{
	BIO *in = BIO_new_mem_buf(content, (int)strlen(content));
	CMS_ContentInfo *cms;
	int n;

	assert_non_null(in);
	cms = CMS_sign(cert, key, NULL, in, CMS_BINARY | CMS_NOSMIMECAP);
	assert_non_null(cms);
	*out = NULL;
	n = i2d_CMS_ContentInfo(cms, out);
	assert_true(n > 0);
	*outlen = (size_t)n;
	CMS_ContentInfo_free(cms);
	BIO_free(in);
}

/* Encrypt a tar stream to RECIP and write it to PATH: DER (definite
 * lengths, one primitive content) or streamed BER. */
static void
envelope_to(const char *path, const struct membuf *tar, X509 *recip,
    int stream)
{
	STACK_OF(X509) *r = stack_of(recip, NULL);
	BIO *in = BIO_new_mem_buf(tar->p, (int)tar->len);
	BIO *out = BIO_new_file(path, "wb");
	unsigned flags = CMS_BINARY | (stream ? CMS_STREAM : 0);
	CMS_ContentInfo *cms;

	assert_non_null(in);
	assert_non_null(out);
	cms = CMS_encrypt(r, in, EVP_aes_256_cbc(), flags);
	assert_non_null(cms);
	if (stream)
		assert_int_equal(i2d_CMS_bio_stream(out, cms, in, flags), 1);
	else
		assert_int_equal(i2d_CMS_bio(out, cms), 1);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	sk_X509_free(r);
}

enum {
	RAW_OK, RAW_MISMATCH, RAW_EXTRA, RAW_DUP, RAW_DOTDOT, RAW_NOMANIFEST,
	RAW_P7S_FIRST, RAW_UNKNOWN, RAW_SYMLINK, RAW_PART_AFTER, RAW_BADZSTD,
	RAW_NOP7S, RAW_PARTNAME
};

static void
raw_set(const char *path, int kind, int stream)
{
	static const char json[] = "{\"format\":\"raw\"}";
	struct membuf tar = { 0 };
	unsigned char *z, *sig;
	size_t zlen, siglen;

	zstd_of(sample_a, sizeof(sample_a) - 1, &z, &zlen);
	sign_der(kind == RAW_MISMATCH ? "{\"format\":\"other\"}" : json,
	    pki.ca_key, pki.ca, &sig, &siglen);
	if (kind == RAW_P7S_FIRST) {
		raw_tar_entry(&tar, "manifest.p7s", sig, siglen, '0');
		raw_tar_entry(&tar, "manifest.json", json, strlen(json), '0');
		goto end;
	}
	raw_tar_entry(&tar, kind == RAW_DOTDOT ? "parts/../x.zst" :
	    kind == RAW_PARTNAME ? "parts/x.gz" : "parts/a.zst", z, zlen,
	    kind == RAW_SYMLINK ? '2' : '0');
	if (kind == RAW_DUP)
		raw_tar_entry(&tar, "parts/a.zst", z, zlen, '0');
	if (kind == RAW_UNKNOWN)
		raw_tar_entry(&tar, "notes.txt", "hi", 2, '0');
	if (kind == RAW_BADZSTD)
		raw_tar_entry(&tar, "parts/b.zst", z, zlen - 2, '0');
	if (kind != RAW_NOMANIFEST) {
		raw_tar_entry(&tar, "manifest.json", json, strlen(json), '0');
		if (kind == RAW_PART_AFTER)
			raw_tar_entry(&tar, "parts/late.zst", z, zlen, '0');
		if (kind != RAW_NOP7S)
			raw_tar_entry(&tar, "manifest.p7s", sig, siglen, '0');
	}
	if (kind == RAW_EXTRA)
		raw_tar_entry(&tar, "parts/extra.zst", z, zlen, '0');
end:
	raw_tar_end(&tar);
	(void)unlink(path);
	envelope_to(path, &tar, pki.ec_cert, stream);
	free(tar.p);
	free(z);
	OPENSSL_free(sig);
}

static void
expect_raw(struct fx *fx, int kind, int code, const char *msg)
{
	struct ck_archive_result res;
	struct collect c = { 0 };
	STACK_OF(X509) *t = stack_of(pki.ca, NULL);

	for (int stream = 0; stream < 2; stream++) {
		raw_set(fx->set, kind, stream);
		assert_int_equal(read_set(fx->set, pki.ec, pki.ec_cert, t, &c,
		    &res), code);
		if (msg != NULL)
			assert_contains(ck_err_msg(), msg);
		if (code == 0) {
			assert_string_equal(res.manifest, "{\"format\":\"raw\"}");
			assert_int_equal(res.nparts, 1);
		} else {
			assert_null(res.manifest);
		}
		ck_archive_result_clear(&res);
		collect_free(&c);
	}
	sk_X509_free(t);
}

static void
test_raw_sets(void **state)
{
	struct fx *fx = *state;

	/* Made with OpenSSL's own encoders, DER and streamed BER: read. */
	expect_raw(fx, RAW_OK, 0, NULL);
	expect_raw(fx, RAW_MISMATCH, CK_E_TAMPER,
	    "manifest.json differs from the signed manifest");
	expect_raw(fx, RAW_EXTRA, CK_E_TAMPER, "after manifest.p7s");
	expect_raw(fx, RAW_DUP, CK_E_TAMPER, "appears twice");
	expect_raw(fx, RAW_DOTDOT, CK_E_TAMPER, "refused");
	expect_raw(fx, RAW_NOMANIFEST, CK_E_TAMPER, "no manifest");
	expect_raw(fx, RAW_NOP7S, CK_E_TAMPER, "manifest.p7s is missing");
	expect_raw(fx, RAW_P7S_FIRST, CK_E_TAMPER, "not right after");
	expect_raw(fx, RAW_UNKNOWN, CK_E_TAMPER, "unexpected entry");
	expect_raw(fx, RAW_SYMLINK, CK_E_TAMPER, "not a regular file");
	expect_raw(fx, RAW_PART_AFTER, CK_E_TAMPER, "after manifest.json");
	expect_raw(fx, RAW_BADZSTD, CK_E_TAMPER, "zstd");
	expect_raw(fx, RAW_PARTNAME, CK_E_TAMPER, "bad part name");
}

/* A manifest signed elsewhere (the signer process) is checked before it
 * is written. */
static void
test_finish_signed(void **state)
{
	static const char json[] = "{\"format\":\"signed elsewhere\"}";
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	STACK_OF(X509) *t = stack_of(pki.ca, NULL);
	struct ck_archive_writer *w = NULL;
	struct ck_archive_result res;
	unsigned char *sig, *other, sha[32];
	size_t siglen, otherlen;
	int fd = open(fx->set, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	sign_der(json, pki.ca_key, pki.ca, &sig, &siglen);
	sign_der("{}", pki.ca_key, pki.ca, &other, &otherlen);
	assert_ck(ck_archive_writer_open(fd, fx->dir, r, 3, &w));
	assert_ck(ck_archive_part_begin(w, "parts/a.zst"));
	assert_ck(ck_archive_part_write(w, "abc", 3));
	assert_ck(ck_archive_part_end(w, NULL));
	/* Over another content; not CMS at all: refused, writer intact. */
	assert_int_equal(ck_archive_writer_finish_signed(w, json,
	    strlen(json), other, otherlen, sha), CK_E_CRYPTO);
	assert_contains(ck_err_msg(), "differs from the signed manifest");
	assert_int_equal(ck_archive_writer_finish_signed(w, json,
	    strlen(json), (const unsigned char *)json, strlen(json), sha),
	    CK_E_CRYPTO);
	assert_ck(ck_archive_writer_finish_signed(w, json, strlen(json), sig,
	    siglen, sha));
	ck_archive_writer_free(w);
	close(fd);
	assert_ck(read_set(fx->set, pki.ec, NULL, t, NULL, &res));
	assert_string_equal(res.manifest, json);
	assert_int_equal(res.nparts, 1);
	assert_memory_equal(res.archive_sha256, sha, 32);
	ck_archive_result_clear(&res);
	OPENSSL_free(sig);
	OPENSSL_free(other);
	sk_X509_free(r);
	sk_X509_free(t);
}

static void
test_callback_stops(void **state)
{
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	struct ck_archive_result res;
	struct collect c = { .stop_at = 2 };
	unsigned char sha[32];
	size_t n;
	const struct part_spec *ps = sample_parts(&n);
	char *m;

	m = write_set(fx->set, fx->dir, r, ps, n, pki.ca_key, pki.ca, NULL,
	    sha);
	assert_int_equal(read_set(fx->set, pki.ec, NULL, NULL, &c, &res),
	    CK_E_POLICY);
	assert_contains(ck_err_msg(), "stopped by the test");
	collect_free(&c);
	free(m);
	sk_X509_free(r);
}

/* ------------------------------------------------------------------ */
/* Damage. */

static unsigned char *
load(const char *path, size_t *len)
{
	return tu_read_file(path, len);
}

static void
store(const char *path, const unsigned char *p, size_t len)
{
	(void)unlink(path);
	tu_write_file(path, p, len, 0600);
}

/* Every byte of a small set flipped in turn: the read fails, or the flip
 * was in the recipient identifiers, which no key covers (without the
 * recipient's certificate they are not checked at all; with it, names
 * compare case-insensitively). Then the data is intact and the file
 * digest, which callers compare with the catalogue, differs. Altered data
 * is never handed out as good. */
static void
test_flip_every_byte(void **state)
{
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	STACK_OF(X509) *t = stack_of(pki.ca, NULL);
	struct ck_archive_result res;
	struct collect c = { .keep = 1 };
	unsigned char sha[32], *orig, *bad;
	size_t n, len, i, passed = 0;
	const struct part_spec *ps = sample_parts(&n);
	char *m;
	int rc, withcert;

	m = write_set(fx->set, fx->dir, r, ps, 2, pki.ca_key, pki.ca, NULL,
	    sha);
	orig = load(fx->set, &len);
	bad = malloc(len);
	assert_non_null(bad);
	for (withcert = 1; withcert >= 0; withcert--) {
		passed = 0;
		/* Without the certificate only the envelope header (the
		 * first few hundred bytes) reads differently. */
		for (i = 0; i < (withcert ? len : 600); i++) {
			memcpy(bad, orig, len);
			bad[i] ^= (unsigned char)(1u << (i % 8));
			rc = read_buf(bad, len, pki.ec, withcert ? pki.ec_cert :
			    NULL, t, &c, &res);
			if (rc != 0) {
				assert_null(res.manifest);
				assert_true(ck_err_msg()[0] != '\0');
			} else {
				assert_true(digests_match(&res));
				for (size_t j = 0; j < 2; j++) {
					assert_int_equal(c.len[j], ps[j].len);
					assert_memory_equal(c.data[j],
					    ps[j].data, ps[j].len);
				}
				assert_memory_not_equal(res.archive_sha256,
				    sha, 32);
				ck_archive_result_clear(&res);
				passed++;
			}
			collect_free(&c);
			c.keep = 1;
		}
		/* Only a few bytes of the recipient's issuer and serial
		 * (with the certificate: letter case in the issuer). */
		assert_true(withcert ? passed <= 9 : passed < 64);
	}
	free(bad);
	free(orig);
	free(m);
	sk_X509_free(r);
	sk_X509_free(t);
}

static void
test_truncation(void **state)
{
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.rsa_cert, NULL);
	struct ck_archive_result res;
	unsigned char sha[32], *orig;
	char path[4200];
	size_t n, len, cut;
	const struct part_spec *ps = sample_parts(&n);
	char *m;
	int rc;

	m = write_set(fx->set, fx->dir, r, ps, n, pki.ca_key, pki.ca, NULL,
	    sha);
	orig = load(fx->set, &len);
	tu_path(path, sizeof(path), fx->dir, "cut.ckb");
	for (cut = 0; cut < len; cut += (cut < 64 || cut + 64 > len) ? 1 : 13) {
		rc = read_buf(orig, cut, pki.rsa, NULL, NULL, NULL, &res);
		assert_true(rc < 0);
		assert_null(res.manifest);
		if (cut == 0)
			assert_contains(ck_err_msg(), "empty");
		else if (rc == CK_E_TAMPER && cut > len / 2)
			assert_contains(ck_err_msg(), "truncated");
	}
	/* Data after the end. */
	orig = realloc(orig, len + 2);
	assert_non_null(orig);
	memcpy(orig + len, "\0\0", 2);
	store(path, orig, len + 2);
	assert_int_equal(read_set(path, pki.rsa, NULL, NULL, NULL, &res),
	    CK_E_TAMPER);
	assert_contains(ck_err_msg(), "after the end of the CMS structure");
	free(orig);
	free(m);
	sk_X509_free(r);
}

static void
test_not_a_set(void **state)
{
	struct fx *fx = *state;
	struct ck_archive_result res;
	unsigned char *sig;
	size_t siglen;
	unsigned char junk[300];

	memset(junk, 'x', sizeof(junk));
	store(fx->set, junk, sizeof(junk));
	assert_int_equal(read_set(fx->set, pki.ec, NULL, NULL, NULL, &res),
	    CK_E_PARSE);
	assert_contains(ck_err_msg(), "not a CMS");
	sign_der("{}", pki.ca_key, pki.ca, &sig, &siglen);
	store(fx->set, sig, siglen);
	assert_int_equal(read_set(fx->set, pki.ec, NULL, NULL, NULL, &res),
	    CK_E_PARSE);
	assert_contains(ck_err_msg(), "signedData, not an EnvelopedData");
	/* Absurd lengths in the header. */
	{
		unsigned char absurd[] = { 0x30, 0x80, 0x06, 0x09, 0x2a, 0x86,
		    0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x80, 0x30,
		    0x80, 0x02, 0x01, 0x00, 0x31, 0x88, 0x7f, 0xff, 0xff, 0xff,
		    0xff, 0xff, 0xff, 0xff };
		store(fx->set, absurd, sizeof(absurd));
		assert_true(read_set(fx->set, pki.ec, NULL, NULL, NULL, &res)
		    < 0);
		assert_contains(ck_err_msg(), "absurd");
		absurd[21] = 0x84;	/* 2 GiB of recipients */
		store(fx->set, absurd, 27);
		assert_int_equal(read_set(fx->set, pki.ec, NULL, NULL, NULL,
		    &res), CK_E_TOOBIG);
	}
	OPENSSL_free(sig);
}

static void
test_envelope_check(void **state)
{
	struct fx *fx = *state;
	STACK_OF(X509) *r = stack_of(pki.rsa_cert, pki.ec_cert);
	unsigned char sha[32], *buf, *hdr = NULL;
	const unsigned char *p;
	CMS_ContentInfo *cms;
	size_t n, len, hlen;
	uint64_t clen;
	const struct part_spec *ps = sample_parts(&n);
	char *m;

	m = write_set(fx->set, fx->dir, r, ps, n, pki.ca_key, pki.ca, NULL,
	    sha);
	buf = load(fx->set, &len);
	assert_ck(ck_archive_envelope_check(buf, len, &hdr, &hlen,
	    &clen));
	assert_true(clen > 3 * 512 && clen < len && clen % 16 == 0);
	p = hdr;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)hlen);
	assert_non_null(cms);
	assert_int_equal(sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms)),
	    2);
	CMS_ContentInfo_free(cms);
	free(hdr);
	assert_int_equal(ck_archive_envelope_check(buf, len - 1, NULL, NULL,
	    NULL), CK_E_TAMPER);
	free(buf);
	free(m);
	sk_X509_free(r);
}

/* A medium that fills up while parts are moved into the set by the
 * writer's thread: the failure comes back to the caller, with the
 * system's reason, at the latest when the set is finished, and every call
 * after it is refused. */
static void
test_disk_full(void **state)
{
	struct ck_archive_writer *w = NULL;
	STACK_OF(X509) *r = stack_of(pki.ec_cert, NULL);
	struct fx *fx = *state;
	unsigned char *data = malloc(1024 * 1024);
	char nm[64];
	int fd, rc = 0, i;

	assert_non_null(data);
	assert_int_equal(RAND_bytes(data, 1024 * 1024), 1);
	fd = open("/dev/full", O_WRONLY);
	if (fd < 0)
		skip();
	rc = ck_archive_writer_open(fd, fx->dir, r, 1, &w);
	for (i = 0; rc == 0 && i < 8; i++) {
		snprintf(nm, sizeof(nm), "parts/p%d.zst", i);
		if ((rc = ck_archive_part_begin(w, nm)) == 0 &&
		    (rc = ck_archive_part_write(w, data, 1024 * 1024)) == 0)
			rc = ck_archive_part_end(w, NULL);
	}
	if (rc == 0)
		rc = ck_archive_writer_finish(w, "{}", 2, pki.ca_key, pki.ca,
		    NULL, NULL);
	assert_int_equal(rc, CK_E_IO);
	assert_contains(ck_err_msg(), "No space left");
	if (w != NULL) {
		assert_int_not_equal(ck_archive_part_begin(w, "parts/x.zst"),
		    0);
		assert_int_not_equal(ck_archive_writer_finish(w, "{}", 2,
		    pki.ca_key, pki.ca, NULL, NULL), 0);
	}
	ck_archive_writer_free(w);
	close(fd);
	sk_X509_free(r);
	free(data);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_tar_roundtrip),
		T(test_tar_gnu_base256),
		T(test_tar_refusals),
		T(test_roundtrip_rsa),
		T(test_roundtrip_ec),
		T(test_roundtrip_two_recipients),
		T(test_ed25519_signer_refused),
		T(test_ed25519_recipient_refused),
		T(test_writer_refusals),
		T(test_big_part),
		T(test_disk_full),
		T(test_wrong_recipient),
		T(test_untrusted_signer),
		T(test_raw_sets),
		T(test_finish_signed),
		T(test_callback_stops),
		T(test_flip_every_byte),
		T(test_truncation),
		T(test_not_a_set),
		T(test_envelope_check),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
