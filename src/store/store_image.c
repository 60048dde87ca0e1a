/*
 * store_image.c - the store as one SQLite database file, streamed from a
 * snapshot (store_dump.h: store_snapshot_image), for full backups.
 *
 * SQLite's online backup copies the snapshot's pages into a destination
 * database. Here the destination is a file of a private VFS that owns no
 * storage: each page SQLite writes is handed on as it comes, so a store of
 * any size is streamed with the memory of a small page cache and without a
 * second copy on disk. This is what makes a full backup cost about what
 * SQLite's own copy costs (ARCHITECTURE.md, backups).
 *
 * The destination is in journal mode OFF and written once: SQLite spills
 * pages 2.. in increasing order while copying and writes the rest, with
 * page 1, when it commits (the b-tree keeps page 1 referenced for the
 * whole transaction, so it is never spilled early). Page 1 is therefore
 * kept in memory and handed to the caller last; every other page must
 * come in order, once. The one gap SQLite leaves is the page holding the
 * lock byte at 1 GiB, which a database never uses: it is written as
 * zeros. Anything else (a page written twice, out of order, or read back)
 * fails the image with a message rather than produce a wrong file; a
 * restore also runs SQLite's own check on what it gets.
 */
#include "store/store_dump.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store_int.h"

/* SQLite's lock byte: the page that holds it is never part of a database. */
#define PENDING_BYTE_OFF 0x40000000ull

/* Pages are handed on in chunks of this size. */
#define IMAGE_CHUNK (1024u * 1024)

struct img {
	size_t pagesize;
	uint64_t npages;	/* of the snapshot */
	unsigned char *page1;
	int have_page1;
	uint64_t tail;		/* end of what was handed on (from page 2) */
	unsigned char *buf;	/* pending chunk */
	size_t buflen;
	int (*emit)(void *, const void *, size_t);
	void *arg;
	int rc;			/* first failure (ck_err code) */
};

struct img_file {
	sqlite3_file base;
	struct img *img;
};

static int
img_fail(struct img *g, int rc)
{
	if (g->rc == 0)
		g->rc = rc;
	return g->rc;
}

static int
img_flush(struct img *g)
{
	int rc;

	if (g->buflen == 0)
		return 0;
	rc = g->emit(g->arg, g->buf, g->buflen);
	g->buflen = 0;
	if (rc != 0)
		return img_fail(g, rc < 0 ? rc : CK_E_IO);
	return 0;
}

static int
img_feed(struct img *g, const void *data, size_t len)
{
	const unsigned char *p = data;
	int rc;

	while (len > 0) {
		size_t take = IMAGE_CHUNK - g->buflen;
		if (take > len)
			take = len;
		if (p != NULL)
			memcpy(g->buf + g->buflen, p, take);
		else
			memset(g->buf + g->buflen, 0, take);
		g->buflen += take;
		if (p != NULL)
			p += take;
		len -= take;
		g->tail += take;
		if (g->buflen == IMAGE_CHUNK && (rc = img_flush(g)) != 0)
			return rc;
	}
	return 0;
}

static uint64_t
img_size(const struct img *g)
{
	if (g->tail > g->pagesize)
		return g->tail;
	return g->have_page1 ? g->pagesize : 0;
}

static int
img_close(sqlite3_file *f)
{
	(void)f;
	return SQLITE_OK;
}

static int
img_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	struct img *g = ((struct img_file *)f)->img;

	if (amt < 0 || off < 0)
		return SQLITE_IOERR_READ;
	if (g->have_page1 && (uint64_t)off + (uint64_t)amt <= g->pagesize) {
		memcpy(buf, g->page1 + off, (size_t)amt);
		return SQLITE_OK;
	}
	if ((uint64_t)off >= img_size(g)) {
		memset(buf, 0, (size_t)amt);
		return SQLITE_IOERR_SHORT_READ;
	}
	if (g->rc == 0)
		img_fail(g, ck_err_set(CK_E_INTERNAL, "store image: SQLite "
		    "read back %d bytes at %lld, which were handed on already",
		    amt, (long long)off));
	return SQLITE_IOERR_READ;
}

static int
img_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off)
{
	struct img *g = ((struct img_file *)f)->img;
	uint64_t o = (uint64_t)off;

	if (g->rc != 0)
		return SQLITE_IOERR_WRITE;
	if (amt <= 0 || off < 0 || (size_t)amt % g->pagesize != 0 ||
	    o % g->pagesize != 0) {
		img_fail(g, ck_err_set(CK_E_INTERNAL, "store image: a write of "
		    "%d bytes at %lld is not whole pages", amt,
		    (long long)off));
		return SQLITE_IOERR_WRITE;
	}
	if (o == 0) {
		memcpy(g->page1, data, g->pagesize);
		g->have_page1 = 1;
		if ((size_t)amt == g->pagesize)
			return SQLITE_OK;
		data = (const unsigned char *)data + g->pagesize;
		amt -= (int)g->pagesize;
		o = g->pagesize;
	}
	if (o > g->tail) {
		/* Only the lock-byte page may be skipped. */
		if (o - g->tail != g->pagesize || g->tail > PENDING_BYTE_OFF ||
		    o <= PENDING_BYTE_OFF) {
			img_fail(g, ck_err_set(CK_E_INTERNAL, "store image: "
			    "SQLite skipped from %" PRIu64 " to %" PRIu64,
			    g->tail, o));
			return SQLITE_IOERR_WRITE;
		}
		if (img_feed(g, NULL, g->pagesize) != 0)
			return SQLITE_IOERR_WRITE;
	}
	if (o < g->tail) {
		img_fail(g, ck_err_set(CK_E_INTERNAL, "store image: SQLite "
		    "wrote again at %" PRIu64 ", before %" PRIu64, o,
		    g->tail));
		return SQLITE_IOERR_WRITE;
	}
	if (img_feed(g, data, (size_t)amt) != 0)
		return SQLITE_IOERR_WRITE;
	return SQLITE_OK;
}

static int
img_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct img *g = ((struct img_file *)f)->img;

	if (size >= 0 && (uint64_t)size == img_size(g))
		return SQLITE_OK;
	if (g->rc == 0)
		img_fail(g, ck_err_set(CK_E_INTERNAL, "store image: SQLite cut "
		    "the file to %lld bytes after writing %" PRIu64,
		    (long long)size, img_size(g)));
	return SQLITE_IOERR_TRUNCATE;
}

static int
img_sync(sqlite3_file *f, int flags)
{
	(void)f;
	(void)flags;
	return SQLITE_OK;
}

static int
img_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	*size = (sqlite3_int64)img_size(((struct img_file *)f)->img);
	return SQLITE_OK;
}

static int
img_lock(sqlite3_file *f, int level)
{
	(void)f;
	(void)level;
	return SQLITE_OK;
}

static int
img_check_reserved(sqlite3_file *f, int *out)
{
	(void)f;
	*out = 0;
	return SQLITE_OK;
}

static int
img_file_control(sqlite3_file *f, int op, void *arg)
{
	(void)f;
	(void)op;
	(void)arg;
	return SQLITE_NOTFOUND;
}

static int
img_sector_size(sqlite3_file *f)
{
	(void)f;
	return 4096;
}

static int
img_device_characteristics(sqlite3_file *f)
{
	(void)f;
	return 0;
}

static const sqlite3_io_methods img_io = {
	1, img_close, img_read, img_write, img_truncate, img_sync,
	img_file_size, img_lock, img_lock, img_check_reserved,
	img_file_control, img_sector_size, img_device_characteristics,
	NULL, NULL, NULL, NULL, NULL, NULL
};

static int
vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *outflags)
{
	struct img_file *p = (struct img_file *)f;

	(void)name;
	/* The destination runs without journal or temporary files. */
	if ((flags & SQLITE_OPEN_MAIN_DB) == 0)
		return SQLITE_CANTOPEN;
	p->img = vfs->pAppData;
	p->base.pMethods = &img_io;
	if (outflags != NULL)
		*outflags = flags;
	return SQLITE_OK;
}

static int
vfs_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	(void)name;
	(void)sync;
	return SQLITE_OK;
}

static int
vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	(void)name;
	(void)flags;
	*out = 0;
	return SQLITE_OK;
}

static int
vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	snprintf(out, (size_t)n, "%s", name);
	return SQLITE_OK;
}

static int
vfs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	sqlite3_vfs *d = sqlite3_vfs_find(NULL);

	(void)vfs;
	return d->xRandomness(d, n, out);
}

static int
vfs_sleep(sqlite3_vfs *vfs, int us)
{
	sqlite3_vfs *d = sqlite3_vfs_find(NULL);

	(void)vfs;
	return d->xSleep(d, us);
}

static int
vfs_current_time(sqlite3_vfs *vfs, double *t)
{
	sqlite3_vfs *d = sqlite3_vfs_find(NULL);

	(void)vfs;
	return d->xCurrentTime(d, t);
}

static int
vfs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	if (n > 0)
		out[0] = '\0';
	return 0;
}

/* An integer PRAGMA of the snapshot's connection. */
static int
pragma_int(sqlite3 *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		r = ck_err_set(CK_E_STORE, "%s: %s", sql, sqlite3_errmsg(db));
	else
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

int
store_snapshot_pages(struct store_snapshot *s, size_t *pagesize,
    uint64_t *npages)
{
	int64_t v = 0, n = 0;
	int r;

	if ((r = pragma_int(store_snapshot_db(s), "PRAGMA page_size", &v)) !=
	    0 || (r = pragma_int(store_snapshot_db(s), "PRAGMA page_count",
	    &n)) != 0)
		return r;
	if (v < 512 || v > 65536 || (v & (v - 1)) != 0 || n < 1)
		return ck_err_set(CK_E_STORE, "the store has %lld pages of %lld "
		    "bytes", (long long)n, (long long)v);
	*pagesize = (size_t)v;
	if (npages != NULL)
		*npages = (uint64_t)n;
	return 0;
}

int
store_snapshot_image(struct store_snapshot *s,
    int (*emit)(void *arg, const void *buf, size_t len),
    int (*head)(void *arg, const void *buf, size_t len), void *arg,
    uint64_t *size)
{
	sqlite3 *src = store_snapshot_db(s), *dst = NULL;
	sqlite3_backup *bk = NULL;
	sqlite3_vfs vfs;
	struct img g;
	char name[64];
	int r, registered = 0, step;

	memset(&g, 0, sizeof(g));
	memset(&vfs, 0, sizeof(vfs));
	if ((r = store_snapshot_pages(s, &g.pagesize, &g.npages)) != 0)
		return r;
	g.tail = g.pagesize;
	g.emit = emit;
	g.arg = arg;
	if ((g.page1 = calloc(1, g.pagesize)) == NULL ||
	    (g.buf = malloc(IMAGE_CHUNK)) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}

	/* A VFS of its own for this image: it carries G to its file. */
	snprintf(name, sizeof(name), "certkeep-image-%p", (void *)&g);
	vfs.iVersion = 1;
	vfs.szOsFile = (int)sizeof(struct img_file);
	vfs.mxPathname = 256;
	vfs.zName = name;
	vfs.pAppData = &g;
	vfs.xOpen = vfs_open;
	vfs.xDelete = vfs_delete;
	vfs.xAccess = vfs_access;
	vfs.xFullPathname = vfs_full_pathname;
	vfs.xRandomness = vfs_randomness;
	vfs.xSleep = vfs_sleep;
	vfs.xCurrentTime = vfs_current_time;
	vfs.xGetLastError = vfs_last_error;
	if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) {
		r = ck_err_set(CK_E_STORE, "cannot set up the store image");
		goto out;
	}
	registered = 1;
	if (sqlite3_open_v2("image.db", &dst, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, name) != SQLITE_OK ||
	    sqlite3_exec(dst, "PRAGMA journal_mode = OFF; "
	    "PRAGMA synchronous = OFF; PRAGMA cache_size = -2048", NULL, NULL,
	    NULL) != SQLITE_OK) {
		r = ck_err_set(CK_E_STORE, "cannot set up the store image: %s",
		    dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	if ((bk = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		r = ck_err_set(CK_E_STORE, "cannot copy the store: %s",
		    sqlite3_errmsg(dst));
		goto out;
	}
	/* All pages in one step, inside the snapshot's read transaction: the
	 * copy is the snapshot, whatever certkeepd commits meanwhile. */
	step = sqlite3_backup_step(bk, -1);
	r = sqlite3_backup_finish(bk);
	bk = NULL;
	if (step != SQLITE_DONE || r != SQLITE_OK || g.rc != 0) {
		r = g.rc != 0 ? g.rc : ck_err_set(CK_E_STORE, "copying the "
		    "store failed: %s", sqlite3_errstr(step != SQLITE_DONE ?
		    step : r));
		goto out;
	}
	if ((r = img_flush(&g)) != 0)
		goto out;
	if (!g.have_page1 || img_size(&g) != g.npages * g.pagesize) {
		r = ck_err_set(CK_E_INTERNAL, "store image: %" PRIu64 " bytes "
		    "written for %" PRIu64 " pages of %zu", img_size(&g),
		    g.npages, g.pagesize);
		goto out;
	}
	/* The header as of a rollback-journal database (bytes 18 and 19:
	 * file format versions 1), not WAL's 2 copied from the store: the
	 * file then opens with sqlite3 from read-only media too; a restore
	 * puts the store back into WAL mode. */
	g.page1[18] = 1;
	g.page1[19] = 1;
	if ((r = head(arg, g.page1, g.pagesize)) != 0)
		goto out;
	if (size != NULL)
		*size = img_size(&g);
	r = 0;
out:
	if (bk != NULL)
		sqlite3_backup_finish(bk);
	sqlite3_close(dst);
	if (registered)
		sqlite3_vfs_unregister(&vfs);
	free(g.page1);
	free(g.buf);
	return r;
}

int
store_image_check(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	const char *msg;
	int r = 0, rc;

	/* Read-only, before anything writes to it (migrations, WAL).
	 * quick_check: every page and record well-formed (integrity_check
	 * also matches indexes with tables, at many times the cost; the image
	 * arrives under a signed digest, this guards the copy itself). */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		r = ck_err_set(CK_E_TAMPER, "the restored store cannot be "
		    "opened: %s", db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return r;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &q, NULL) !=
	    SQLITE_OK) {
		r = ck_err_set(CK_E_TAMPER, "the restored store is damaged: %s",
		    sqlite3_errmsg(db));
		sqlite3_close(db);
		return r;
	}
	rc = sqlite3_step(q);
	msg = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
	if (rc != SQLITE_ROW)
		r = ck_err_set(CK_E_TAMPER, "the restored store is damaged: %s",
		    sqlite3_errmsg(db));
	else if (msg == NULL || strcmp(msg, "ok") != 0)
		r = ck_err_set(CK_E_TAMPER, "the restored store is damaged: %s",
		    msg ? msg : "?");
	sqlite3_finalize(q);
	sqlite3_close(db);
	return r;
}
