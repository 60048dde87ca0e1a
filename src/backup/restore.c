/*
 * restore.c - checking backup sets and restoring them into a new CA home.
 *
 * A restore builds the new home in a staging directory beside it, one
 * store transaction per set: a set's rows are only committed once the whole
 * set has been read, its manifest signature checked and every part's digest
 * matched against the manifest. Any fault removes the staging directory, so
 * a failed restore leaves nothing. The finished home is renamed into place
 * in one step.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <sqlite3.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "audit/audit.h"
#include "backup/archive.h"
#include "backup/backup.h"
#include "backup/custody.h"
#include "backup/manifest.h"
#include "ca/config.h"
#include "ca/home_split.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/privs.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "daemon/service.h"
#include "store/store_int.h"

#define LINE_MAX_BYTES (16u * 1024 * 1024)

/* The parts the archive layer read must be exactly the manifest's. */
static int
check_parts(const char *file, const struct ck_archive_result *res,
    const struct ck_manifest *m)
{
	size_t i;

	if (res->nparts != m->nparts)
		return ck_err_set(CK_E_TAMPER, "%s: the set holds %zu parts, "
		    "its manifest lists %zu", file, res->nparts, m->nparts);
	for (i = 0; i < m->nparts; i++) {
		if (strcmp(res->parts[i].name, m->parts[i].name) != 0)
			return ck_err_set(CK_E_TAMPER, "%s: part %zu is '%s', "
			    "the manifest says '%s'", file, i + 1,
			    res->parts[i].name, m->parts[i].name);
		if (res->parts[i].size != m->parts[i].size ||
		    res->parts[i].raw_size != m->parts[i].raw_size ||
		    memcmp(res->parts[i].sha256, m->parts[i].sha256, 32) != 0)
			return ck_err_set(CK_E_TAMPER, "%s: part '%s' does not "
			    "match its digest in the manifest: it was altered",
			    file, m->parts[i].name);
	}
	return 0;
}

/* Everything about one set that does not need its predecessor. */
static int
check_set(const struct ck_backup_reader *rd, const char *file,
    const struct ck_archive_result *res, struct ck_manifest *m)
{
	char hex[65];
	int r;

	if ((r = ck_manifest_parse(res->manifest, res->manifest_len, m)) != 0)
		return ck_err_set(r, "%s: %s", file, ck_err_msg());
	if ((r = check_parts(file, res, m)) != 0)
		return r;
	if (res->signer == NULL)
		return ck_err_set(CK_E_BADSIG, "%s: the manifest names no "
		    "signer", file);
	if ((r = ck_backup_cert_sha256(res->signer, hex)) != 0)
		return r;
	if (strcmp(hex, m->ca_cert_sha256) != 0)
		return ck_err_set(CK_E_TAMPER, "%s: the manifest is not signed "
		    "by the CA it names", file);
	if (rd->ca_cert != NULL) {
		if ((r = ck_backup_cert_sha256(rd->ca_cert, hex)) != 0)
			return r;
		if (strcmp(hex, m->ca_cert_sha256) != 0)
			return ck_err_set(CK_E_TAMPER, "%s: this is a backup "
			    "of another CA (%s)", file, m->ca_subject);
	}
	return 0;
}

/* Does set M follow PREV in a chain? */
static int
check_link(const char *file, const struct ck_manifest *prev,
    const struct ck_manifest *m)
{
	char phex[65];

	if (strcmp(m->kind, "incremental") != 0)
		return ck_err_set(CK_E_STATE, "%s: a full set where an "
		    "incremental after set %.12s was expected", file, prev->id);
	if (strcmp(m->chain, prev->chain) != 0)
		return ck_err_set(CK_E_STATE, "%s: belongs to another backup "
		    "chain than the sets before it", file);
	if (strcmp(m->ca_cert_sha256, prev->ca_cert_sha256) != 0)
		return ck_err_set(CK_E_TAMPER, "%s: a set of another CA", file);
	ck_hex_encode(prev->manifest_sha256, 32, phex);
	if (strcmp(m->parent_id, prev->id) != 0)
		return ck_err_set(CK_E_STATE, "%s: its parent is set %.12s, "
		    "not %.12s before it: a set is missing or out of order",
		    file, m->parent_id, prev->id);
	if (strcmp(m->parent_manifest_sha256, phex) != 0)
		return ck_err_set(CK_E_TAMPER, "%s: its parent's manifest "
		    "digest does not match set %.12s", file, prev->id);
	if (m->seq_from != prev->seq_to)
		return ck_err_set(CK_E_STATE, "%s: starts at sequence %lld, "
		    "its parent ends at %lld", file, (long long)m->seq_from,
		    (long long)prev->seq_to);
	return 0;
}

static int
open_set(const struct ck_backup_reader *rd, size_t i, const char *file,
    int *fd)
{
	if (rd->fds != NULL) {
		if ((*fd = fcntl(rd->fds[i], F_DUPFD_CLOEXEC, 3)) < 0 ||
		    lseek(*fd, 0, SEEK_SET) != 0)
			return ck_err_set(CK_E_IO, "%s: %s", file,
			    strerror(errno));
		return 0;
	}
	if ((*fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return ck_err_set(errno == ENOENT ? CK_E_NOTFOUND : CK_E_IO,
		    "cannot open %s: %s", file, strerror(errno));
	return 0;
}

int
ck_backup_verify(const struct ck_backup_reader *rd,
    const char *const *files, size_t nfiles, int chain_check,
    struct ck_manifest *manifests)
{
	struct ck_manifest *m = NULL, *prev = NULL;
	struct ck_archive_result res;
	size_t i;
	int fd, r = 0;

	if (nfiles == 0)
		return ck_err_set(CK_E_INVAL, "no backup set named");
	if ((m = calloc(2, sizeof(*m))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	for (i = 0; i < nfiles && r == 0; i++) {
		struct ck_manifest *cur = &m[i % 2];
		memset(&res, 0, sizeof(res));
		if (rd->progress)
			fprintf(stderr, "verify: %s\n", files[i]);
		if ((r = open_set(rd, i, files[i], &fd)) != 0)
			break;
		r = ck_archive_read(fd, rd->rkey, rd->rcert, rd->trusted, NULL,
		    &res);
		close(fd);
		if (r != 0)
			r = ck_err_set(r, "%s: %s", files[i], ck_err_msg());
		else
			r = check_set(rd, files[i], &res, cur);
		ck_archive_result_clear(&res);
		if (r != 0)
			break;
		if (chain_check) {
			if (i == 0 && strcmp(cur->kind, "full") != 0 &&
			    nfiles > 1)
				r = ck_err_set(CK_E_STATE, "%s: a chain starts "
				    "with a full set, this is an incremental",
				    files[i]);
			else if (prev != NULL)
				r = check_link(files[i], prev, cur);
		}
		if (manifests)
			memcpy(&manifests[i], cur, sizeof(*cur));
		prev = cur;
	}
	free(m);
	return r;
}

/* --- restore --- */

/* A store file restored from a set is at most IMAGE_RATIO times the set's
 * size (or IMAGE_MIN): sets compress a store about three times, and a
 * mostly empty one a few dozen. */
#define IMAGE_RATIO 100ull
#define IMAGE_MIN (64ull * 1024 * 1024)

struct restore_ctx {
	struct store *st;
	int in_tx;		/* ST is in the current set's transaction */
	int image;		/* the current set holds the store's file */
	int image_fd;		/* its staging file */
	int image_part;		/* the current part is a piece of it */
	uint64_t image_pos;	/* where the part's next byte goes */
	uint64_t image_end;	/* end of the pieces after the first page */
	uint64_t page_size;	/* offset of the first of those pieces */
	uint64_t image_bytes;	/* written so far, all pieces */
	uint64_t image_max;	/* bound before the signature is checked */
	int head_seen;		/* the piece at 0 (the first page) came */
	const char *staging;
	const char *file;
	int64_t after_seq;
	/* current part */
	char table[64];		/* store part: its table */
	int fd;			/* file part: its staging file */
	char *line;
	size_t linelen, linecap;
	uint64_t fbytes, fmax;	/* file part: bytes so far, limit */
	uint64_t rows;
	int progress;
};

static int
load_line(struct restore_ctx *c, const char *p, size_t len)
{
	int r;

	if (len == 0)
		return 0;
	if ((r = store_load_line(c->st, c->table, p, len, c->after_seq,
	    INT64_MAX)) != 0)
		return ck_err_set(r, "%s: %s row %llu: %s", c->file, c->table,
		    (unsigned long long)c->rows + 1, ck_err_msg());
	c->rows++;
	if (c->progress && (c->rows & 0xffff) == 0)
		fprintf(stderr, "\rrestore: %-16s %10llu rows", c->table,
		    (unsigned long long)c->rows);
	return 0;
}

/* The restored store at its staging place, made new (no store file came
 * first) or opened from the file a full set brought. */
static int
store_ready(struct restore_ctx *c, int create)
{
	char path[4200];
	int r;

	snprintf(path, sizeof(path), "%s/store.db", c->staging);
	if ((r = store_open(path, create, &c->st)) != 0)
		return r;
	/* Each set loads in one transaction: a cache that holds more of it
	 * keeps SQLite from spilling pages to the WAL and reading them back.
	 * Bounded whatever the size of the CA: 64 MiB while a whole store is
	 * loaded from rows, 16 MiB for the incrementals on a store file. */
	(void)sqlite3_exec(store_sqlite_db(c->st), create ?
	    "PRAGMA cache_size = -65536" : "PRAGMA cache_size = -16384", NULL,
	    NULL, NULL);
	return 0;
}

/* Rows of a set go into one transaction of the store. */
static int
set_begin(struct restore_ctx *c)
{
	int r;

	if (c->st == NULL && (r = store_ready(c, 1)) != 0)
		return r;
	if (c->in_tx)
		return 0;
	if ((r = store_tx_begin(c->st)) != 0)
		return r;
	c->in_tx = 1;
	return 0;
}

/* A full set's store file, checked by the manifest: put it in place. */
static int
place_image(struct restore_ctx *c)
{
	char a[4200], b[4200];
	int r;

	if (!c->head_seen)
		return ck_err_set(CK_E_TAMPER, "%s: the store file's first page "
		    "is missing", c->file);
	r = fsync(c->image_fd) == 0 ? 0 : -1;
	if (close(c->image_fd) != 0)
		r = -1;
	c->image_fd = -1;
	if (r != 0)
		return ck_err_set(CK_E_IO, "writing the restored store: %s",
		    strerror(errno));
	snprintf(a, sizeof(a), "%s/.incoming-store.db", c->staging);
	snprintf(b, sizeof(b), "%s/store.db", c->staging);
	if ((r = store_image_check(a)) != 0)
		return ck_err_set(r, "%s: %s", c->file, ck_err_msg());
	if (rename(a, b) != 0)
		return ck_err_set(CK_E_IO, "cannot place %s: %s", b,
		    strerror(errno));
	if ((r = store_ready(c, 0)) != 0)
		return ck_err_set(r, "%s: the store it holds: %s", c->file,
		    ck_err_msg());
	return 0;
}

/* A piece of the store's file, named by the offset of its first byte
 * (backup.h): the pieces after the first page come in file order, one
 * after the other; the first page comes last and fills the room left
 * before them. Checked here, before the manifest vouches for anything, so
 * that no piece lands anywhere else. */
static int
image_begin(struct restore_ctx *c, const char *rest)
{
	char path[4200];
	uint64_t off = 0;
	size_t i;

	for (i = 0; i < 16; i++) {
		char h = rest[i];
		int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ?
		    h - 'a' + 10 : -1;
		if (v < 0)
			break;
		off = off << 4 | (uint64_t)v;
	}
	if (i != 16 || strcmp(rest + 16, ".zst") != 0)
		return ck_err_set(CK_E_PARSE, "%s: unexpected part '%s%s'",
		    c->file, CK_BACKUP_STORE_PREFIX, rest);
	/* Only a chain's first set can hold the store's file. */
	if (c->st != NULL)
		return ck_err_set(CK_E_PARSE, "%s: a store file in a set that "
		    "is not the first of its chain", c->file);
	if (c->head_seen)
		return ck_err_set(CK_E_PARSE, "%s: a piece of the store file "
		    "after its first page", c->file);
	if (off == 0) {
		c->head_seen = 1;
	} else if (c->page_size == 0) {
		if (off < 512 || off > 65536 || (off & (off - 1)) != 0)
			return ck_err_set(CK_E_PARSE, "%s: the store file's "
			    "second page at %llu is not after a page",
			    c->file, (unsigned long long)off);
		c->page_size = c->image_end = off;
	} else if (off != c->image_end) {
		return ck_err_set(CK_E_PARSE, "%s: a piece of the store file "
		    "at %llu, where %llu was next", c->file,
		    (unsigned long long)off, (unsigned long long)c->image_end);
	}
	if (c->image_fd < 0) {
		snprintf(path, sizeof(path), "%s/.incoming-store.db",
		    c->staging);
		if ((c->image_fd = open(path, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600)) < 0)
			return ck_err_set(CK_E_IO, "cannot write %s: %s", path,
			    strerror(errno));
	}
	c->image = 1;
	c->image_part = 1;
	c->image_pos = off;
	return 0;
}

static int
image_data(struct restore_ctx *c, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t k;

	/* Before the manifest vouches for anything, a forged set must not
	 * fill the disk: the file may be at most so many times the set. */
	if ((c->image_bytes += len) > c->image_max)
		return ck_err_set(CK_E_TOOBIG, "%s: the store file in it is over "
		    "%llu bytes, more than a set of its size can hold", c->file,
		    (unsigned long long)c->image_max);
	/* The first page: no more than the room before the second. */
	if (c->head_seen && c->image_pos + len > (c->page_size ?
	    c->page_size : 65536))
		return ck_err_set(CK_E_TAMPER, "%s: the store file's first "
		    "page is too long", c->file);
	while (len > 0) {
		k = pwrite(c->image_fd, p, len, (off_t)c->image_pos);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return ck_err_set(CK_E_IO, "writing the restored store: "
			    "%s", strerror(errno));
		}
		p += k;
		len -= (size_t)k;
		c->image_pos += (uint64_t)k;
	}
	if (!c->head_seen)
		c->image_end = c->image_pos;
	return 0;
}

static int
image_end(struct restore_ctx *c)
{
	uint64_t want = c->page_size;

	c->image_part = 0;
	if (!c->head_seen)
		return 0;
	/* A store of one page has no other piece: the page is all. */
	if (want == 0) {
		if (c->image_pos < 512 || c->image_pos > 65536 ||
		    (c->image_pos & (c->image_pos - 1)) != 0)
			return ck_err_set(CK_E_TAMPER, "%s: the store file is "
			    "one page of %llu bytes", c->file,
			    (unsigned long long)c->image_pos);
		want = c->image_end = c->image_pos;
	}
	if (c->image_pos != want)
		return ck_err_set(CK_E_TAMPER, "%s: the store file's first page "
		    "is %llu bytes, its pages %llu", c->file,
		    (unsigned long long)c->image_pos,
		    (unsigned long long)c->page_size);
	return 0;
}

static int
part_begin(void *arg, const char *name)
{
	struct restore_ctx *c = arg;
	char path[4200];
	const char *t;
	size_t n;

	c->table[0] = '\0';
	c->fd = -1;
	c->linelen = 0;
	c->rows = 0;
	if (strncmp(name, CK_BACKUP_STORE_PREFIX,
	    strlen(CK_BACKUP_STORE_PREFIX)) == 0)
		return image_begin(c, name + strlen(CK_BACKUP_STORE_PREFIX));
	if (strncmp(name, "parts/store/", 12) == 0) {
		t = name + 12;
		n = strlen(t);
		if (n < 11 || n - 10 >= sizeof(c->table) ||
		    strcmp(t + n - 10, ".jsonl.zst") != 0)
			return ck_err_set(CK_E_PARSE, "%s: unexpected part "
			    "'%s'", c->file, name);
		memcpy(c->table, t, n - 10);
		c->table[n - 10] = '\0';
		if (c->image)
			return ck_err_set(CK_E_PARSE, "%s: a set holds the store "
			    "either as a file or as rows, not both", c->file);
		return set_begin(c);
	}
	/* Files: staged as "part.<n>" and named after the manifest checks. */
	if (strcmp(name, "parts/ca/ca.pem.zst") != 0 &&
	    strcmp(name, "parts/ca/chain.pem.zst") != 0 &&
	    strcmp(name, "parts/config/certkeep.conf.zst") != 0 &&
	    strcmp(name, "parts/crl/ca.crl.zst") != 0)
		return ck_err_set(CK_E_PARSE, "%s: unexpected part '%s'",
		    c->file, name);
	c->fbytes = 0;
	c->fmax = strcmp(name, "parts/crl/ca.crl.zst") == 0 ?
	    256u * 1024 * 1024 : strcmp(name,
	    "parts/config/certkeep.conf.zst") == 0 ? CK_CONFIG_MAX :
	    16u * 1024 * 1024;
	snprintf(path, sizeof(path), "%s/.incoming-%s", c->staging,
	    strrchr(name, '/') + 1);
	if ((c->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return ck_err_set(CK_E_IO, "cannot write %s: %s", path,
		    strerror(errno));
	return 0;
}

static int
part_data(void *arg, const void *buf, size_t len)
{
	struct restore_ctx *c = arg;
	const char *p = buf, *nl;
	int r;

	if (c->image_part)
		return image_data(c, buf, len);
	if (c->fd >= 0) {
		/* Bounded before the manifest vouches for anything: a forged
		 * part cannot fill the disk. */
		if ((c->fbytes += len) > c->fmax)
			return ck_err_set(CK_E_TOOBIG, "%s: a file part is over "
			    "%llu bytes", c->file, (unsigned long long)c->fmax);
		while (len > 0) {
			ssize_t k = write(c->fd, p, len);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				return ck_err_set(CK_E_IO, "writing the "
				    "restored files: %s", strerror(errno));
			}
			p += k;
			len -= (size_t)k;
		}
		return 0;
	}
	while (len > 0) {
		nl = memchr(p, '\n', len);
		size_t take = nl ? (size_t)(nl - p) : len;
		if (c->linelen == 0 && nl != NULL) {
			/* Whole line in the buffer: no copy. */
			if ((r = load_line(c, p, take)) != 0)
				return r;
		} else {
			if (c->linelen + take > LINE_MAX_BYTES)
				return ck_err_set(CK_E_TOOBIG, "%s: a %s row "
				    "is over %u bytes", c->file, c->table,
				    LINE_MAX_BYTES);
			if (c->linelen + take > c->linecap) {
				size_t cap = c->linecap ? c->linecap : 4096;
				char *q;
				while (cap < c->linelen + take)
					cap *= 2;
				if ((q = realloc(c->line, cap)) == NULL)
					return ck_err_set(CK_E_NOMEM,
					    "out of memory");
				c->line = q;
				c->linecap = cap;
			}
			memcpy(c->line + c->linelen, p, take);
			c->linelen += take;
			if (nl != NULL) {
				if ((r = load_line(c, c->line, c->linelen))
				    != 0)
					return r;
				c->linelen = 0;
			}
		}
		if (nl == NULL)
			break;
		p = nl + 1;
		len -= take + 1;
	}
	return 0;
}

static int
part_end(void *arg, const struct ck_archive_part *info)
{
	struct restore_ctx *c = arg;

	(void)info;
	if (c->image_part)
		return image_end(c);
	if (c->fd >= 0) {
		int r = fsync(c->fd) == 0 ? 0 : -1;
		if (close(c->fd) != 0)
			r = -1;
		c->fd = -1;
		if (r != 0)
			return ck_err_set(CK_E_IO, "writing the restored "
			    "files: %s", strerror(errno));
		return 0;
	}
	if (c->linelen != 0)
		return ck_err_set(CK_E_PARSE, "%s: the %s rows end in the "
		    "middle of a line", c->file, c->table);
	if (c->progress && c->rows)
		fprintf(stderr, "\rrestore: %-16s %10llu rows\n", c->table,
		    (unsigned long long)c->rows);
	return 0;
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
ck_backup_rmtree(const char *dir)
{
	(void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Forget staged file parts of a set that is not applied. */
static void
drop_incoming(const char *staging)
{
	static const char *const f[] = { ".incoming-ca.pem.zst",
		".incoming-chain.pem.zst", ".incoming-certkeep.conf.zst",
		".incoming-ca.crl.zst", ".incoming-store.db", NULL };
	char a[4200];
	size_t i;

	for (i = 0; f[i] != NULL; i++) {
		snprintf(a, sizeof(a), "%s/%s", staging, f[i]);
		(void)unlink(a);
	}
}

/* Move the staged file parts to their places. */
static int
place_files(const char *staging)
{
	static const struct { const char *in, *out; } f[] = {
		{ ".incoming-ca.pem.zst", "ca.pem" },
		{ ".incoming-chain.pem.zst", "chain.pem" },
		{ ".incoming-certkeep.conf.zst", CK_CONFIG_FILE },
		{ ".incoming-ca.crl.zst", "crl/ca.crl" },
	};
	char a[4200], b[4200];
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		snprintf(a, sizeof(a), "%s/%s", staging, f[i].in);
		snprintf(b, sizeof(b), "%s/%s", staging, f[i].out);
		if (!ck_fs_exists(a))
			continue;
		if (rename(a, b) != 0)
			return ck_err_set(CK_E_IO, "cannot place %s: %s", b,
			    strerror(errno));
	}
	return 0;
}

/*
 * Set KEYS to VALS in [SECTION] of HOME's configuration: lines setting them
 * there are dropped and the values written at the end of the section (the
 * section is added if missing). Comments and everything else stay.
 */
int
ck_backup_config_set(const char *home, const char *section,
    const char *const *keys, const char *const *vals)
{
	char path[4400], hdr[80], *out = NULL, *line, *save = NULL;
	unsigned char *text = NULL;
	size_t len, olen = 0, cap, hl;
	int r, in_sec = 0, seen = 0, i;

	snprintf(path, sizeof(path), "%s/%s", home, CK_CONFIG_FILE);
	hl = (size_t)snprintf(hdr, sizeof(hdr), "[%s]", section);
	if ((r = ck_fs_read(path, CK_CONFIG_MAX, &text, &len)) != 0)
		return r;
	cap = len + 4096;
	if ((out = malloc(cap)) == NULL) {
		free(text);
		return ck_err_set(CK_E_NOMEM, "out of memory");
	}
#define EMIT(...) do { int n_ = snprintf(out + olen, cap - olen, \
    __VA_ARGS__); if (n_ < 0 || (size_t)n_ >= cap - olen) { \
    r = ck_err_set(CK_E_INTERNAL, "config too long"); goto out; } \
    olen += (size_t)n_; } while (0)
	for (line = strtok_r((char *)text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		const char *s = line;
		int skip = 0;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '[') {
			if (in_sec)
				for (i = 0; keys[i]; i++)
					EMIT("%s = %s\n", keys[i], vals[i]);
			in_sec = strncmp(s, hdr, hl) == 0;
			seen |= in_sec;
		} else if (in_sec) {
			for (i = 0; keys[i]; i++) {
				size_t kl = strlen(keys[i]);
				if (strncmp(s, keys[i], kl) == 0 &&
				    (s[kl] == ' ' || s[kl] == '=' ||
				    s[kl] == '\t'))
					skip = 1;
			}
		}
		if (!skip)
			EMIT("%s\n", line);
	}
	if (in_sec || !seen) {
		if (!seen)
			EMIT("%s\n", hdr);
		for (i = 0; keys[i]; i++)
			EMIT("%s = %s\n", keys[i], vals[i]);
	}
#undef EMIT
	r = ck_fs_write_atomic(path, out, olen, 0600);
out:
	free(out);
	free(text);
	return r;
}

/*
 * A restored home is self-contained: whatever paths the backed-up
 * configuration named (absolute ones could be the live CA's store), the
 * restored one names the files this restore made, in the home.
 */
static int
pin_paths(const char *home)
{
	static const char *const ca_keys[] = { "key_file", "cert_file",
		"chain_file", "csr_file", "crl_file", NULL };
	static const char *const ca_vals[] = { "private/ca.key", "ca.pem",
		"chain.pem", "ca.csr", "crl/ca.crl", NULL };
	static const char *const st_keys[] = { "backend", "path", NULL };
	static const char *const st_vals[] = { "sqlite", "store.db", NULL };
	int r;

	if ((r = ck_backup_config_set(home, "ca", ca_keys, ca_vals)) != 0)
		return r;
	return ck_backup_config_set(home, "store", st_keys, st_vals);
}

/* The CA certificate restored must be the one that signed the manifest. */
static int
check_ca_file(const char *staging, const struct ck_manifest *m)
{
	char path[4400], hex[65];
	BIO *b;
	X509 *x;
	int r;

	snprintf(path, sizeof(path), "%s/ca.pem", staging);
	if ((b = BIO_new_file(path, "r")) == NULL)
		return ck_err_set(CK_E_NOTFOUND, "the sets hold no CA "
		    "certificate");
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL)
		return ck_err_ssl(CK_E_PARSE, "the restored CA certificate");
	r = ck_backup_cert_sha256(x, hex);
	X509_free(x);
	if (r == 0 && strcmp(hex, m->ca_cert_sha256) != 0)
		r = ck_err_set(CK_E_TAMPER, "the CA certificate in the sets is "
		    "not the one that signed them");
	return r;
}

/* Is DIR absent or an empty directory? */
static int
home_usable(const char *home)
{
	DIR *d;
	struct dirent *e;
	pid_t pid;
	int n = 0;

	if (!ck_fs_exists(home))
		return 0;
	if (service_running(home, &pid) == 1)
		return ck_err_set(CK_E_BUSY, "certkeepd is running on %s (pid "
		    "%ld): a restore never overwrites a running CA", home,
		    (long)pid);
	if ((d = opendir(home)) == NULL)
		return ck_err_set(CK_E_IO, "%s: %s", home, strerror(errno));
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	if (n > 0)
		return ck_err_set(CK_E_EXISTS, "%s is not empty: restore into a "
		    "new or emptied directory (a restore never overwrites a "
		    "CA)", home);
	return 0;
}

static int
compare_counts(const struct store_dump_counts *a,
    const struct store_dump_counts *b)
{
#define CMP(f) if (a->f != b->f) return ck_err_set(CK_E_TAMPER, \
    "after the restore the store has %llu " #f ", the manifest says %llu", \
    (unsigned long long)a->f, (unsigned long long)b->f)
	CMP(certs);
	CMP(issued);
	CMP(revoked);
	CMP(pending);
	CMP(failed);
	CMP(audit);
	CMP(crl_number);
	CMP(tokens);
#undef CMP
	if (a->audit_last_id != b->audit_last_id ||
	    memcmp(a->audit_head, b->audit_head, 32) != 0)
		return ck_err_set(CK_E_TAMPER, "after the restore the audit "
		    "log does not end where the manifest says");
	return 0;
}


static int
restore_body(const struct ck_backup_reader *rd, const char *const *files,
    size_t nfiles, const struct ck_restore_opts *o, struct ck_manifest *last)
{
	struct restore_ctx c;
	struct ck_archive_reader_cb cb = { part_begin, part_data, part_end,
		NULL };
	struct ck_archive_result res;
	struct ck_manifest *m = NULL, *prev = NULL;
	struct store_dump_counts counts;
	char *hcopy = NULL, staging[4200], path[4300], detail[1200];
	unsigned char rnd[16];
	char chain[33], (*digests)[65] = NULL;
	size_t i, used = 0;
	int fd = -1, r;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	c.image_fd = -1;
	staging[0] = '\0';
	if (nfiles == 0)
		return ck_err_set(CK_E_INVAL, "no backup set named");
	if ((r = home_usable(o->home)) != 0)
		return r;
	if ((hcopy = strdup(o->home)) == NULL ||
	    (m = calloc(2, sizeof(*m))) == NULL ||
	    (digests = calloc(nfiles, sizeof(*digests))) == NULL) {
		free(m);
		free(hcopy);
		return ck_err_set(CK_E_NOMEM, "out of memory");
	}
	if (snprintf(staging, sizeof(staging), "%s/.%s.restore-XXXXXX",
	    dirname(hcopy), strrchr(o->home, '/') ? strrchr(o->home, '/') + 1
	    : o->home) >= (int)sizeof(staging) - 40 ||
	    mkdtemp(staging) == NULL) {
		r = ck_err_set(CK_E_IO, "cannot make a staging directory beside "
		    "%s: %s", o->home, strerror(errno));
		staging[0] = '\0';
		goto out;
	}
	chmod(staging, 0700);
	snprintf(path, sizeof(path), "%s/private", staging);
	if ((r = ck_fs_mkdir_private(path)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/crl", staging);
	if (mkdir(path, 0700) != 0) {
		r = ck_err_set(CK_E_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	c.staging = staging;
	c.progress = rd->progress;
	cb.arg = &c;
	for (i = 0; i < nfiles; i++) {
		struct ck_manifest *cur = &m[used % 2];
		memset(&res, 0, sizeof(res));
		c.file = files[i];
		c.after_seq = prev ? prev->seq_to : 0;
		c.image = 0;
		if ((r = open_set(rd, i, files[i], &fd)) != 0)
			goto out;
		{
			struct stat sb;
			uint64_t sz = fstat(fd, &sb) == 0 && sb.st_size > 0 ?
			    (uint64_t)sb.st_size : 0;
			c.image_max = sz > IMAGE_MIN / IMAGE_RATIO ?
			    sz * IMAGE_RATIO : IMAGE_MIN;
		}
		/* An incremental's rows go into the store the sets before it
		 * made, in one transaction; a full set brings its own. */
		if (c.st != NULL && (r = set_begin(&c)) != 0)
			goto out;
		if (rd->progress)
			fprintf(stderr, "restore: reading %s\n", files[i]);
		r = ck_archive_read(fd, rd->rkey, rd->rcert, rd->trusted, &cb,
		    &res);
		close(fd);
		fd = -1;
		if (c.fd >= 0) {
			close(c.fd);
			c.fd = -1;
		}
		if (r != 0)
			r = ck_err_set(r, "%s: %s", files[i], ck_err_msg());
		else if ((r = check_set(rd, files[i], &res, cur)) == 0) {
			if (prev != NULL)
				r = check_link(files[i], prev, cur);
			else if (strcmp(cur->kind, "full") != 0)
				r = ck_err_set(CK_E_STATE, "%s: a restore "
				    "starts with a full set, this is an "
				    "incremental", files[i]);
		}
		ck_hex_encode(res.archive_sha256, 32, digests[used]);
		ck_archive_result_clear(&res);
		if (r != 0)
			goto out;
		/* A point in time: stop before the first set after it. */
		if (prev != NULL && ((o->upto_seq && cur->seq_to >
		    o->upto_seq) || (o->upto_time && cur->created >
		    o->upto_time))) {
			if (c.in_tx)
				store_tx_rollback(c.st);
			c.in_tx = 0;
			drop_incoming(staging);
			break;
		}
		if (prev == NULL && ((o->upto_seq && cur->seq_to >
		    o->upto_seq) || (o->upto_time && cur->created >
		    o->upto_time))) {
			r = ck_err_set(CK_E_STATE, "the full set %s is already "
			    "after the point asked for: use an older full",
			    files[i]);
			goto out;
		}
		if (c.image && (r = place_image(&c)) != 0)
			goto out;
		if (c.st == NULL) {
			r = ck_err_set(CK_E_PARSE, "%s: the set holds no store",
			    files[i]);
			goto out;
		}
		if (c.in_tx && (r = store_tx_commit(c.st)) != 0)
			goto out;
		c.in_tx = 0;
		if ((r = place_files(staging)) != 0)
			goto out;
		prev = cur;
		used++;
	}
	if ((r = store_load_finish(c.st, prev->seq_to)) != 0 ||
	    (r = store_counts(c.st, &counts)) != 0 ||
	    (r = compare_counts(&counts, &prev->counts)) != 0)
		goto out;
	/* A new chain: the next backup is a full one, and no incremental of
	 * the old chain can be applied on top of this store. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "random chain id");
		goto out;
	}
	ck_hex_encode(rnd, sizeof(rnd), chain);
	snprintf(detail, sizeof(detail), "restored from %zu set%s up to set "
	    "%s (sequence %lld, made %lld by %s on %s)", used,
	    used == 1 ? "" : "s", prev->id, (long long)prev->seq_to,
	    (long long)prev->created, prev->operator_name, prev->host);
	if ((r = store_tx_begin(c.st)) != 0)
		goto out;
	c.in_tx = 1;
	if ((r = store_meta_set(c.st, "backup_chain", chain)) != 0 ||
	    (r = store_meta_set(c.st, "restored_from", prev->id)) != 0 ||
	    (r = store_meta_set(c.st, "last_good_backup", "0")) != 0 ||
	    (r = store_meta_set(c.st, "last_good_drill", "0")) != 0 ||
	    (r = ck_backup_catalogue_forget_copies(c.st)) != 0 ||
	    (o->crl_floor > 0 &&
		(r = store_crl_number_floor(c.st, o->crl_floor)) != 0) ||
	    (r = audit_append(c.st, NULL, "restore", prev->id, AUDIT_OK,
		detail)) != 0 ||
	    (r = store_tx_commit(c.st)) != 0)
		goto out;
	c.in_tx = 0;
	store_close(c.st);
	c.st = NULL;

	snprintf(path, sizeof(path), "%s/%s", staging, CK_CONFIG_FILE);
	if (!ck_fs_exists(path)) {
		r = ck_err_set(CK_E_NOTFOUND, "the sets hold no configuration");
		goto out;
	}
	if ((r = pin_paths(staging)) != 0 ||
	    (r = check_ca_file(staging, prev)) != 0)
		goto out;
	/* The custody ledger of the new home: each set was restored here. */
	{
		struct ck_ca *nca = NULL;
		if ((r = ck_ca_open(staging, &nca)) == 0)
			for (i = 0; i < used && r == 0; i++)
				r = ck_custody_record(nca, "restored",
				    digests[i], "data-backup", files[i],
				    "restored into a new CA home", NULL);
		ck_ca_close(nca);
		if (r != 0)
			goto out;
	}
	if (ck_fs_exists(o->home) && rmdir(o->home) != 0) {
		r = ck_err_set(CK_E_IO, "%s: %s", o->home, strerror(errno));
		goto out;
	}
	if ((r = ck_fs_sync_dir(staging)) != 0)
		goto out;
	if (rename(staging, o->home) != 0) {
		r = ck_err_set(CK_E_IO, "cannot move the restored home into "
		    "place at %s: %s", o->home, strerror(errno));
		goto out;
	}
	staging[0] = '\0';
	{
		/* Durable: the rename is in the parent directory. */
		char *pc = strdup(o->home);
		if (pc == NULL || (r = ck_fs_sync_dir(dirname(pc))) != 0) {
			free(pc);
			if (r == 0)
				r = ck_err_set(CK_E_NOMEM, "out of memory");
			goto done;
		}
		free(pc);
	}
	if (last)
		memcpy(last, prev, sizeof(*prev));
	goto done;
out:
	if (fd >= 0)
		close(fd);
	if (c.fd >= 0)
		close(c.fd);
	if (c.image_fd >= 0)
		close(c.image_fd);
	if (c.in_tx && c.st)
		store_tx_rollback(c.st);
	if (c.st)
		store_close(c.st);
	if (staging[0] != '\0')
		ck_backup_rmtree(staging);
done:
	free(c.line);
	free(hcopy);
	free(digests);
	free(m);
	return r;
}

/*
 * Run FN(ARG, REPLY) in a child process that has become USER, and copy the
 * REPLYSZ bytes of REPLY it filled back into the caller's REPLY. Returns
 * FN's result (its message carried over), or an error if the child could
 * not run or died.
 */
struct as_user_msg {
	int r;
	char msg[1024];
};

/* All LEN bytes to (WR) or from FD. */
static int
xfer(int fd, void *buf, size_t len, int wr)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ck_backup_as_user(const char *user, int (*fn)(void *arg, void *reply),
    void *arg, void *reply, size_t replysz)
{
	struct as_user_msg hdr;
	int p[2], status, r;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0 || (pid = fork()) < 0)
		return ck_err_set(CK_E_IO, "cannot start a process as %s: %s",
		    user, strerror(errno));
	if (pid == 0) {
		int sw;

		close(p[0]);
		memset(&hdr, 0, sizeof(hdr));
		if ((hdr.r = ck_privs_drop(user, NULL, 0, &sw)) == 0)
			hdr.r = fn(arg, reply);
		snprintf(hdr.msg, sizeof(hdr.msg), "%s", ck_err_msg());
		if (xfer(p[1], &hdr, sizeof(hdr), 1) != 0 ||
		    xfer(p[1], reply, replysz, 1) != 0)
			_exit(2);
		_exit(hdr.r == 0 ? 0 : 1);
	}
	close(p[1]);
	r = xfer(p[0], &hdr, sizeof(hdr), 0);
	if (r == 0)
		r = xfer(p[0], reply, replysz, 0);
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r != 0)
		return ck_err_set(CK_E_INTERNAL, "the process run as %s died",
		    user);
	if ((r = hdr.r) != 0)
		ck_err_set(r, "%s", hdr.msg);
	return r;
}

struct restore_job {
	const struct ck_backup_reader *rd;
	const char *const *files;
	size_t nfiles;
	const struct ck_restore_opts *o;
};

static int
restore_job_run(void *arg, void *reply)
{
	struct restore_job *j = arg;

	return restore_body(j->rd, j->files, j->nfiles, j->o, reply);
}

int
ck_backup_restore(const struct ck_backup_reader *rd,
    const char *const *files, size_t nfiles, const struct ck_restore_opts *o,
    struct ck_manifest *last)
{
	struct ck_backup_reader rd2;
	struct ck_restore_opts o2;
	struct restore_job job;
	struct ck_manifest *m = NULL;
	char splitdir[4096], splithome[4400];
	int *fds = NULL, r;
	size_t i;

	splitdir[0] = '\0';
	if (o->user == NULL || o->user[0] == '\0' || geteuid() != 0)
		return restore_body(rd, files, nfiles, o, last);
	/*
	 * Run as root for a service user: the whole restore runs as that
	 * user, so that every file is theirs from the start (no chown by
	 * path in a directory they could change meanwhile). The sets are
	 * opened here, as root.
	 */
	if ((fds = calloc(nfiles, sizeof(*fds))) == NULL ||
	    (m = calloc(1, sizeof(*m))) == NULL) {
		free(fds);
		return ck_err_set(CK_E_NOMEM, "out of memory");
	}
	for (i = 0; i < nfiles; i++)
		fds[i] = -1;
	for (i = 0; i < nfiles; i++)
		if (rd->fds == NULL &&
		    (fds[i] = open(files[i], O_RDONLY | O_CLOEXEC)) < 0) {
			r = ck_err_set(CK_E_IO, "cannot open %s: %s", files[i],
			    strerror(errno));
			goto out;
		}
	memcpy(&rd2, rd, sizeof(rd2));
	if (rd->fds == NULL)
		rd2.fds = fds;
	memcpy(&o2, o, sizeof(o2));
	o2.user = NULL;
	/* A new split home, as root: restored by the service user into a
	 * directory of theirs that root makes beside it, then moved into
	 * place by root; the parent stays root's (ck_fs_check_ancestors()),
	 * the service user needs no right to write into it. */
	if (o->key_owner != NULL && o->user != NULL && geteuid() == 0) {
		unsigned suid, sgid;
		char *hc = strdup(o->home);
		const char *base = strrchr(o->home, '/') != NULL ?
		    strrchr(o->home, '/') + 1 : o->home;
		if (hc == NULL) {
			r = CK_E_NOMEM;
			goto out;
		}
		r = snprintf(splitdir, sizeof(splitdir), "%s/.%s.split-XXXXXX",
		    dirname(hc), base) >= (int)sizeof(splitdir) - 300 ?
		    ck_err_set(CK_E_INVAL, "%s: too long", o->home) : 0;
		free(hc);
		if (r != 0 || (r = ck_privs_lookup(o->user, &suid, &sgid)) != 0)
			goto out;
		if (mkdtemp(splitdir) == NULL) {
			r = ck_err_set(CK_E_IO, "cannot make a directory beside "
			    "%s: %s", o->home, strerror(errno));
			splitdir[0] = '\0';
			goto out;
		}
		if (chown(splitdir, suid, sgid) != 0) {
			r = ck_err_set(CK_E_IO, "cannot give %s to %s: %s",
			    splitdir, o->user, strerror(errno));
			goto out;
		}
		snprintf(splithome, sizeof(splithome), "%s/%s", splitdir, base);
		o2.home = splithome;
	}
	job.rd = &rd2;
	job.files = files;
	job.nfiles = nfiles;
	job.o = &o2;
	if ((r = ck_backup_as_user(o->user, restore_job_run, &job, m,
	    sizeof(*m))) == 0 && last != NULL)
		memcpy(last, m, sizeof(*m));
	if (r == 0 && splitdir[0] != '\0' && rename(splithome, o->home) != 0)
		r = ck_err_set(CK_E_IO, "cannot move %s to %s: %s", splithome,
		    o->home, strerror(errno));
	/* Made whole as the service user; split as root. */
	if (r == 0 && o->key_owner != NULL &&
	    (r = ck_home_layout(o->home, o->user, o->key_owner)) != 0) {
		char why[1024];
		snprintf(why, sizeof(why), "%s", ck_err_msg());
		r = ck_err_set(r, "restored, but not split: %s (run certkeep "
		    "home split)", why);
	}
out:
	if (splitdir[0] != '\0' && rmdir(splitdir) != 0)
		ck_warn("%s is left behind: %s", splitdir, strerror(errno));
	for (i = 0; i < nfiles; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(m);
	return r;
}
