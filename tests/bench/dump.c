/*
 * dump.c - how long the store's backup dump and load take on a large CA.
 *
 *   dump [-n CERTS] [-d DER_BYTES] [-k] [-r] DIR
 *
 * Fills a new store in DIR with CERTS issued certificates (random serials,
 * DER_BYTES random bytes each, one in twenty revoked, one audit entry per
 * certificate), then times, each on the closed store file:
 *
 *   sqlite-backup   SQLite's online backup API (what `.backup` does)
 *   dump            store_dump_table() of every table to a byte counter
 *   dump+write      the same into a file
 *   load            store_load_line() of that file into a new store, one
 *                   transaction, then store_load_finish()
 *   incremental     a dump after_seq of the last 1000 changes
 *
 * and checks that the loaded store's counts equal the source's. -k keeps
 * the files in DIR; -r reuses the store a -k run left there (for
 * profiling). Built and run by dump.sh; not part of the tests.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/err.h"
#include "store/store.h"
#include "store/store_dump.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) used so far: the wall clock of a shared
 * machine says less. */
static double
cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double cpu0;

/* Start a measurement. */
static double
start(void)
{
	cpu0 = cpu();
	return now();
}

static void
die(const char *what)
{
	fprintf(stderr, "dump: %s: %s\n", what, ck_err_msg());
	exit(1);
}

static void
hex(const unsigned char *in, size_t n, char *out)
{
	static const char d[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
populate(struct store *st, long n, size_t derlen)
{
	struct store_cert c;
	struct store_audit_entry e;
	unsigned char *der = malloc(derlen), rnd[16];
	int64_t id = 0;
	long i;

	if (der == NULL)
		exit(1);
	memset(&c, 0, sizeof(c));
	c.subject = (char *)"CN=host.example.com,O=Example Ltd,C=DE";
	c.names = (char *)"DNS:host.example.com, DNS:www.host.example.com";
	c.profile = (char *)"server";
	c.requester = (char *)"token:ci";
	c.not_before = 1700000000;
	c.not_after = 1731536000;
	memset(&e, 0, sizeof(e));
	e.user = (char *)"certkeepd";
	e.action = (char *)"issue";
	e.result = (char *)"ok";
	e.detail = (char *)"profile=server";
	for (i = 0; i < n; i++) {
		if (i % 10000 == 0 && store_tx_begin(st) != 0)
			die("begin");
		if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
		    RAND_bytes(der, (int)derlen) != 1)
			exit(1);
		rnd[0] &= 0x7f;
		hex(rnd, sizeof(rnd), c.serial);
		hex(rnd, sizeof(rnd), c.tbs_sha256);
		memcpy(c.tbs_sha256 + 32, c.tbs_sha256, 32);
		c.tbs_sha256[64] = '\0';
		c.created_at = 1700000000 + i;
		if (store_cert_insert_pending(st, &c) != 0 ||
		    store_cert_mark_issued(st, c.serial, der, derlen) != 0)
			die("insert");
		if (i % 20 == 7 && store_cert_revoke(st, c.serial,
		    1700000000 + i, 1) != 0)
			die("revoke");
		memcpy(e.prev_hash, e.hash, 32);
		e.id = ++id;
		e.time = c.created_at;
		e.object = c.serial;
		memcpy(e.hash, der, 32);
		if (store_audit_insert(st, &e) != 0)
			die("audit");
		if (i % 10000 == 9999 || i == n - 1) {
			if (store_tx_commit(st) != 0)
				die("commit");
			if ((i + 1) % 100000 == 0)
				fprintf(stderr, "\r  %ld rows", i + 1);
		}
	}
	fprintf(stderr, "\n");
	free(der);
}

static double
sqlite_backup(const char *from, const char *to)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	double t0 = start();

	if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_open(to, &dst) != SQLITE_OK)
		exit(1);
	if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL)
		exit(1);
	if (sqlite3_backup_step(b, -1) != SQLITE_DONE)
		exit(1);
	sqlite3_backup_finish(b);
	sqlite3_close(dst);
	sqlite3_close(src);
	return now() - t0;
}

struct sink {
	unsigned long long bytes;
	int fd;
};

static int
emit(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;
	const char *p = buf;
	ssize_t w;

	s->bytes += len;
	while (s->fd >= 0 && len > 0) {
		if ((w = write(s->fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return CK_E_IO;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Dump every table after AFTER; with FD, into that file as
 * "<table>\n" headers followed by the lines. */
static double
dump_all(const char *path, int64_t after, int fd, unsigned long long *bytes,
    unsigned long long *rows, struct store_dump_counts *c, int64_t *seq)
{
	struct store_snapshot *s = NULL;
	struct sink k = { 0, fd };
	uint64_t n;
	double t0 = start();
	int i;

	*rows = 0;
	if (store_snapshot_open(path, &s) != 0)
		die("snapshot");
	for (i = 0; store_dump_tables[i] != NULL; i++) {
		if (fd >= 0 && (emit(&k, "#", 1) != 0 ||
		    emit(&k, store_dump_tables[i],
		    strlen(store_dump_tables[i])) != 0 ||
		    emit(&k, "\n", 1) != 0))
			exit(1);
		if (store_dump_table(s, store_dump_tables[i], after, emit, &k,
		    &n) != 0)
			die(store_dump_tables[i]);
		*rows += n;
	}
	if (c != NULL && store_snapshot_counts(s, c) != 0)
		die("counts");
	*seq = store_snapshot_seq(s);
	store_snapshot_close(s);
	*bytes = k.bytes;
	return now() - t0;
}

static double
load_file(const char *dump, const char *path, int64_t upto,
    struct store_dump_counts *c)
{
	struct store *st = NULL;
	struct stat sb;
	const char *p, *end, *nl;
	char table[64] = "";
	double t0;
	void *m;
	int fd;

	if ((fd = open(dump, O_RDONLY)) < 0 || fstat(fd, &sb) != 0)
		exit(1);
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		exit(1);
	close(fd);
	t0 = start();
	if (store_open(path, 1, &st) != 0 || store_tx_begin(st) != 0)
		die("load open");
	end = (const char *)m + sb.st_size;
	for (p = m; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (*p == '#') {
			snprintf(table, sizeof(table), "%.*s",
			    (int)(nl - p - 1), p + 1);
			continue;
		}
		if (store_load_line(st, table, p, (size_t)(nl - p), 0,
		    upto) != 0)
			die("load");
	}
	if (store_tx_commit(st) != 0 || store_load_finish(st, upto) != 0)
		die("load commit");
	if (store_counts(st, c) != 0)
		die("load counts");
	store_close(st);
	munmap(m, (size_t)sb.st_size);
	return now() - t0;
}

static long long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int
main(int argc, char **argv)
{
	struct store_dump_counts c1, c2;
	struct store *st = NULL;
	unsigned long long bytes, rows;
	char db[4200], copy[4200], out[4200], loaded[4200];
	const char *dir;
	size_t derlen = 700;
	long n = 1000000;
	int64_t seq, seq2;
	double t;
	int o, keep = 0, reuse = 0, fd, i;

	while ((o = getopt(argc, argv, "n:d:kr")) != -1) {
		switch (o) {
		case 'n': n = strtol(optarg, NULL, 10); break;
		case 'd': derlen = (size_t)strtoul(optarg, NULL, 10); break;
		case 'k': keep = 1; break;
		case 'r': reuse = keep = 1; break;
		default:
			fprintf(stderr, "usage: dump [-n CERTS] [-d DER_BYTES] "
			    "[-k] [-r] DIR\n");
			return 2;
		}
	}
	if (optind + 1 != argc || n < 1 || derlen < 32)
		return 2;
	dir = argv[optind];
	snprintf(db, sizeof(db), "%s/store.db", dir);
	snprintf(copy, sizeof(copy), "%s/copy.db", dir);
	snprintf(out, sizeof(out), "%s/dump.jsonl", dir);
	snprintf(loaded, sizeof(loaded), "%s/loaded.db", dir);

	printf("%-16s %10s %10s\n", "", "wall", "cpu");
	if (!reuse) {
		fprintf(stderr, "populating %ld certificates of %zu DER "
		    "bytes\n", n, derlen);
		t = start();
		if (store_open(db, 1, &st) != 0)
			die("open");
		populate(st, n, derlen);
		store_close(st);
		t = now() - t;
		printf("%-16s %8.2f s %8.2f s  store %lld bytes\n",
		    "populate", t, cpu() - cpu0, file_size(db));
	}
	unlink(loaded);

	t = sqlite_backup(db, copy);
	printf("%-16s %8.2f s %8.2f s  copy %lld bytes\n", "sqlite-backup", t,
	    cpu() - cpu0, file_size(copy));
	unlink(copy);

	for (i = 0; i < 2; i++) {
		t = dump_all(db, 0, -1, &bytes, &rows, &c1, &seq);
		printf("%-16s %8.2f s %8.2f s  %llu rows, %llu bytes, "
		    "%.0f MB/s\n", "dump", t, cpu() - cpu0, rows, bytes,
		    (double)bytes / t / 1e6);
	}
	if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return 1;
	t = dump_all(db, 0, fd, &bytes, &rows, NULL, &seq);
	close(fd);
	printf("%-16s %8.2f s %8.2f s  %llu bytes\n", "dump+write", t,
	    cpu() - cpu0, bytes);

	t = load_file(out, loaded, seq, &c2);
	printf("%-16s %8.2f s %8.2f s  %llu rows, %.0f rows/s, store %lld "
	    "bytes\n", "load", t, cpu() - cpu0, rows, (double)rows / t,
	    file_size(loaded));
	if (memcmp(&c1, &c2, sizeof(c1)) != 0) {
		fprintf(stderr, "dump: the loaded store's counts differ\n");
		return 1;
	}
	printf("%-16s counts equal: %llu certs (%llu revoked), %llu audit\n",
	    "check", (unsigned long long)c2.certs,
	    (unsigned long long)c2.revoked, (unsigned long long)c2.audit);

	t = dump_all(db, seq - 1000, -1, &bytes, &rows, NULL, &seq2);
	printf("%-16s %8.3f s %8.3f s  %llu rows after seq %lld\n",
	    "incremental", t, cpu() - cpu0, rows, (long long)(seq - 1000));
	if (!keep) {
		char p[4300];
		const char *const f[] = { db, loaded, out };

		for (i = 0; i < 3; i++) {
			unlink(f[i]);
			snprintf(p, sizeof(p), "%s-wal", f[i]);
			unlink(p);
			snprintf(p, sizeof(p), "%s-shm", f[i]);
			unlink(p);
		}
	}
	return 0;
}
