/*
 * archive_driver.c - drive src/backup/archive from the shell, so that
 * scenarios can check backup sets against the real openssl, tar and zstd
 * tools, and benchmarks can measure it on large files.
 *
 *   archive_driver write OUT --signer KEY CERT [--chain PEM]
 *       --recip CERT [--recip CERT]... [--level N] [--tmpdir DIR]
 *       NAME=FILE...
 *     Writes a set (OUT created 0600, refused if it exists) with one part
 *     per NAME=FILE and a manifest listing every part's name, sizes and
 *     SHA-256; prints "archive <sha256> <size>".
 *
 *   archive_driver read SET --key KEY [--cert CERT] [--trust PEM]
 *       [--out DIR]
 *     Reads and checks a set; with --out, writes each part decompressed
 *     to DIR/<name without .zst> and the signed manifest to
 *     DIR/manifest.json. Prints "part <name> <size> <raw_size> <sha256>"
 *     per part, "archive <sha256> <size>", "signer <subject>" and
 *     "maxrss_kb <peak resident set size>".
 *
 * Errors go to stderr as "archive_driver: <reason>", exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "backup/archive.h"
#include "common/err.h"

#define MAX_RECIP 8

static void
die(const char *what)
{
	fprintf(stderr, "archive_driver: %s\n", what);
	exit(1);
}

static void
die_ck(void)
{
	die(ck_err_msg()[0] != '\0' ? ck_err_msg() : "failed");
}

static EVP_PKEY *
load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL)
		die(path);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL)
		die("cannot read a private key");
	return k;
}

/* Every certificate of a PEM file, appended to SK. */
static X509 *
load_certs(const char *path, STACK_OF(X509) *sk)
{
	FILE *f = fopen(path, "r");
	X509 *x, *first = NULL;

	if (f == NULL)
		die(path);
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (first == NULL)
			first = x;
		if (sk_X509_push(sk, x) <= 0)
			die("out of memory");
	}
	ERR_clear_error();
	fclose(f);
	if (first == NULL)
		die("no certificate in a PEM file");
	return first;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int
cmd_write(int argc, char **argv)
{
	STACK_OF(X509) *recips = sk_X509_new_null();
	STACK_OF(X509) *chain = sk_X509_new_null();
	STACK_OF(X509) *signer_sk = sk_X509_new_null();
	struct ck_archive_writer *w = NULL;
	struct ck_archive_part info;
	EVP_PKEY *skey = NULL;
	X509 *scert = NULL;
	const char *out, *tmpdir = NULL;
	json_t *manifest, *parts;
	unsigned char sha[32], *buf;
	char h[65], *text;
	int i, fd, in, level = 3;
	ssize_t n;

	if (argc < 3 || recips == NULL || chain == NULL || signer_sk == NULL)
		die("usage: write OUT --signer KEY CERT --recip CERT... "
		    "NAME=FILE...");
	out = argv[2];
	manifest = json_pack("{s:s}", "format", "certkeep-backup/1");
	parts = json_array();
	if ((buf = malloc(1 << 16)) == NULL || manifest == NULL ||
	    parts == NULL)
		die("out of memory");
	for (i = 3; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--signer") == 0 && i + 2 < argc) {
			skey = load_key(argv[++i]);
			scert = load_certs(argv[++i], signer_sk);
		} else if (strcmp(argv[i], "--chain") == 0 && i + 1 < argc) {
			load_certs(argv[++i], chain);
		} else if (strcmp(argv[i], "--recip") == 0 && i + 1 < argc) {
			load_certs(argv[++i], recips);
		} else if (strcmp(argv[i], "--level") == 0 && i + 1 < argc) {
			level = (int)strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--tmpdir") == 0 && i + 1 < argc) {
			tmpdir = argv[++i];
		} else {
			die("unknown option");
		}
	}
	if (skey == NULL)
		die("--signer is required");
	if (tmpdir == NULL && (tmpdir = getenv("TMPDIR")) == NULL)
		tmpdir = "/tmp";
	if (ck_archive_signer_check(skey, scert) != 0)
		die_ck();
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die(strerror(errno));
	if (ck_archive_writer_open(fd, tmpdir, recips, level, &w) != 0)
		die_ck();
	for (; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL)
			die("parts are given as NAME=FILE");
		*eq = '\0';
		if ((in = open(eq + 1, O_RDONLY | O_CLOEXEC)) < 0)
			die(strerror(errno));
		if (ck_archive_part_begin(w, argv[i]) != 0)
			die_ck();
		while ((n = read(in, buf, 1 << 16)) > 0)
			if (ck_archive_part_write(w, buf, (size_t)n) != 0)
				die_ck();
		if (n < 0)
			die(strerror(errno));
		close(in);
		if (ck_archive_part_end(w, &info) != 0)
			die_ck();
		hex(info.sha256, 32, h);
		json_array_append_new(parts, json_pack("{s:s,s:I,s:I,s:s}",
		    "name", info.name, "size", (json_int_t)info.size,
		    "raw_size", (json_int_t)info.raw_size, "sha256", h));
	}
	json_object_set_new(manifest, "parts", parts);
	if ((text = json_dumps(manifest, JSON_INDENT(2))) == NULL)
		die("json");
	if (ck_archive_writer_finish(w, text, strlen(text), skey, scert,
	    chain, sha) != 0)
		die_ck();
	ck_archive_writer_free(w);
	if (close(fd) != 0)
		die(strerror(errno));
	{
		struct stat st;

		if (stat(out, &st) != 0)
			die(strerror(errno));
		hex(sha, 32, h);
		printf("archive %s %lld\n", h, (long long)st.st_size);
	}
	free(text);
	free(buf);
	json_decref(manifest);
	EVP_PKEY_free(skey);
	sk_X509_pop_free(recips, X509_free);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(signer_sk, X509_free);
	return 0;
}

struct sink {
	const char *dir;
	int fd;
};

/* mkdir -p for the directories of PATH (relative to the cwd). */
static void
make_parents(char *path)
{
	for (char *p = strchr(path, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			die(strerror(errno));
		*p = '/';
	}
}

static int
s_begin(void *arg, const char *name)
{
	struct sink *s = arg;
	char path[4096];
	size_t len;

	if (s->dir == NULL)
		return 0;
	len = (size_t)snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	if (len >= sizeof(path) || len < 4)
		die("path too long");
	path[len - 4] = '\0';	/* ".zst" */
	make_parents(path);
	s->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->fd < 0)
		die(strerror(errno));
	return 0;
}

static int
s_data(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;
	const char *p = buf;
	ssize_t n;

	while (s->fd >= 0 && len > 0) {
		if ((n = write(s->fd, p, len)) < 0)
			die(strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
s_end(void *arg, const struct ck_archive_part *info)
{
	struct sink *s = arg;

	(void)info;
	if (s->fd >= 0 && close(s->fd) != 0)
		die(strerror(errno));
	s->fd = -1;
	return 0;
}

static int
cmd_read(int argc, char **argv)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	STACK_OF(X509) *trusted = NULL;
	struct sink s = { NULL, -1 };
	struct ck_archive_reader_cb cb = { s_begin, s_data, s_end, &s };
	struct ck_archive_result res;
	struct rusage ru;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char h[65], subj[512], path[4096];
	int i, fd;

	if (argc < 3 || certs == NULL)
		die("usage: read SET --key KEY [--cert CERT] [--trust PEM] "
		    "[--out DIR]");
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
			key = load_key(argv[++i]);
		} else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
			cert = load_certs(argv[++i], certs);
		} else if (strcmp(argv[i], "--trust") == 0 && i + 1 < argc) {
			if (trusted == NULL &&
			    (trusted = sk_X509_new_null()) == NULL)
				die("out of memory");
			load_certs(argv[++i], trusted);
		} else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			s.dir = argv[++i];
		} else {
			die("unknown option");
		}
	}
	if (key == NULL)
		die("--key is required");
	if ((fd = open(argv[2], O_RDONLY | O_CLOEXEC)) < 0)
		die(strerror(errno));
	if (ck_archive_read(fd, key, cert, trusted, &cb, &res) != 0)
		die_ck();
	close(fd);
	for (size_t j = 0; j < res.nparts; j++) {
		hex(res.parts[j].sha256, 32, h);
		printf("part %s %llu %llu %s\n", res.parts[j].name,
		    (unsigned long long)res.parts[j].size,
		    (unsigned long long)res.parts[j].raw_size, h);
	}
	hex(res.archive_sha256, 32, h);
	printf("archive %s %llu\n", h, (unsigned long long)res.archive_size);
	X509_NAME_oneline(X509_get_subject_name(res.signer), subj,
	    sizeof(subj));
	printf("signer %s\n", subj);
	if (s.dir != NULL) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/manifest.json", s.dir);
		if ((f = fopen(path, "wx")) == NULL ||
		    fwrite(res.manifest, 1, res.manifest_len, f) !=
		    res.manifest_len || fclose(f) != 0)
			die("cannot write manifest.json");
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("maxrss_kb %ld\n", ru.ru_maxrss);
	ck_archive_result_clear(&res);
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(trusted, X509_free);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "write") == 0)
		return cmd_write(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "read") == 0)
		return cmd_read(argc, argv);
	die("usage: archive_driver write|read ...");
	return 1;
}
