/*
 * backup.c - making data backup sets (docs/backup.md).
 *
 * Order of a backup, so that nothing is reported good that is not:
 *   1. a snapshot of the store (its own connection: certkeepd goes on);
 *   2. the set is written to the first destination under a temporary name,
 *      its manifest signed by the CA key, fsync'd, renamed;
 *   3. it is copied to each other destination the same way;
 *   4. every copy is read back and its SHA-256 compared with what was
 *      written;
 *   5. only then: the catalogue, the custody ledger and the audit log
 *      record it, and the metrics' "last good backup" moves;
 *   6. retention, last, and only over sets recorded good.
 * A failure at any step removes what this run wrote and records the failure
 * in the audit log.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "audit/audit.h"
#include "backup/archive.h"
#include "backup/backup.h"
#include "backup/custody.h"
#include "backup/manifest.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "signer/signer.h"

#define META_CHAIN "backup_chain"
#define META_LAST_GOOD "last_good_backup"

struct dump_ctx {
	struct ck_archive_writer *w;
	const char *table;
	int progress;
	uint64_t bytes;
	time_t last_report;
};

static int
dump_emit(void *arg, const void *buf, size_t len)
{
	struct dump_ctx *d = arg;
	time_t now;

	d->bytes += len;
	if (d->progress && (now = time(NULL)) != d->last_report) {
		d->last_report = now;
		fprintf(stderr, "\rbackup: %-16s %10.1f MiB", d->table,
		    (double)d->bytes / (1024.0 * 1024.0));
	}
	return ck_archive_part_write(d->w, buf, len);
}

static int
add_manifest_part(struct ck_manifest *m, const struct ck_archive_part *info,
    uint64_t rows)
{
	if (m->nparts >= sizeof(m->parts) / sizeof(m->parts[0]))
		return ck_err_set(CK_E_INTERNAL, "too many parts");
	snprintf(m->parts[m->nparts].name, sizeof(m->parts[m->nparts].name),
	    "%s", info->name);
	m->parts[m->nparts].size = info->size;
	m->parts[m->nparts].raw_size = info->raw_size;
	m->parts[m->nparts].rows = rows;
	memcpy(m->parts[m->nparts].sha256, info->sha256, 32);
	m->nparts++;
	return 0;
}

/* A full set's store: the SQLite file as of the snapshot, in parts named
 * by the offset of their first byte (16 hex digits), so that they sort in
 * file order and `cat parts/store/store.db.*.zst | zstd -d` is the file.
 * The file's first page comes last (SQLite writes it last). The parts are
 * cut every STORE_CHUNK bytes or more, so that each is put into the set
 * while the next is compressed. */
#define STORE_CHUNK (128ull * 1024 * 1024)
#define STORE_MAX_CHUNKS 48

struct image_ctx {
	struct dump_ctx d;
	struct ck_manifest *m;
	uint64_t chunk;		/* cut after this many bytes */
	uint64_t off;		/* file offset of the next byte */
	uint64_t in_part;	/* bytes in the open part */
	int open;
};

static int
image_part_begin(struct image_ctx *c, uint64_t off)
{
	char name[CK_ARCHIVE_NAME_MAX];
	int r;

	snprintf(name, sizeof(name), "%s%016" PRIx64 ".zst",
	    CK_BACKUP_STORE_PREFIX, off);
	if ((r = ck_archive_part_begin(c->d.w, name)) != 0)
		return r;
	c->open = 1;
	c->in_part = 0;
	return 0;
}

static int
image_part_end(struct image_ctx *c)
{
	struct ck_archive_part info;
	int r;

	c->open = 0;
	if ((r = ck_archive_part_end(c->d.w, &info)) != 0)
		return r;
	return add_manifest_part(c->m, &info, 0);
}

static int
image_emit(void *arg, const void *buf, size_t len)
{
	struct image_ctx *c = arg;
	const unsigned char *p = buf;
	size_t take;
	int r;

	while (len > 0) {
		if (!c->open && (r = image_part_begin(c, c->off)) != 0)
			return r;
		take = c->chunk - c->in_part < len ?
		    (size_t)(c->chunk - c->in_part) : len;
		if ((r = dump_emit(&c->d, p, take)) != 0)
			return r;
		p += take;
		len -= take;
		c->off += take;
		c->in_part += take;
		if (c->in_part == c->chunk && (r = image_part_end(c)) != 0)
			return r;
	}
	return 0;
}

static int
image_head(void *arg, const void *buf, size_t len)
{
	struct image_ctx *c = arg;
	int r;

	if (c->open && (r = image_part_end(c)) != 0)
		return r;
	if ((r = image_part_begin(c, 0)) != 0 ||
	    (r = dump_emit(&c->d, buf, len)) != 0)
		return r;
	return image_part_end(c);
}

static int
add_store_image(struct ck_archive_writer *w, struct store_snapshot *snap,
    const struct ck_backup_opts *o, struct ck_manifest *m)
{
	struct image_ctx c;
	size_t pagesize;
	uint64_t npages;
	int r;

	memset(&c, 0, sizeof(c));
	c.d.w = w;
	c.d.table = "store";
	c.d.progress = o->progress;
	c.m = m;
	if ((r = store_snapshot_pages(snap, &pagesize, &npages)) != 0)
		return r;
	c.chunk = o->store_chunk ? o->store_chunk : STORE_CHUNK;
	if (npages * pagesize / STORE_MAX_CHUNKS > c.chunk)
		c.chunk = npages * pagesize / STORE_MAX_CHUNKS;
	/* Whole pages in every piece. */
	c.chunk = (c.chunk + pagesize - 1) / pagesize * pagesize;
	c.off = pagesize;
	return store_snapshot_image(snap, image_emit, image_head, &c, NULL);
}

/* The store as rows: every table's rows changed after the parent's
 * sequence (all of them for a full set in the logical form). */
static int
add_store_dumps(struct ck_archive_writer *w, struct store_snapshot *snap,
    int progress, struct ck_manifest *m)
{
	struct ck_archive_part info;
	char name[100];
	size_t t;
	int r;

	for (t = 0; store_dump_tables[t] != NULL; t++) {
		struct dump_ctx d = { w, store_dump_tables[t], progress, 0,
			0 };
		uint64_t rows = 0;

		snprintf(name, sizeof(name), "parts/store/%s.jsonl.zst",
		    store_dump_tables[t]);
		if ((r = ck_archive_part_begin(w, name)) != 0 ||
		    (r = store_dump_table(snap, store_dump_tables[t],
			m->seq_from, dump_emit, &d, &rows)) != 0 ||
		    (r = ck_archive_part_end(w, &info)) != 0 ||
		    (r = add_manifest_part(m, &info, rows)) != 0)
			return r;
	}
	return 0;
}

/* A short, file-name-safe label for the CA: its CN, else "ca". */
static void
ca_label(const struct ck_ca *ca, char *buf, size_t bufsz)
{
	char cn[128] = "";
	size_t i, n = 0;

	if (ca->cert != NULL)
		X509_NAME_get_text_by_NID(X509_get_subject_name(ca->cert),
		    NID_commonName, cn, sizeof(cn));
	for (i = 0; cn[i] != '\0' && n + 1 < bufsz && n < 40; i++) {
		char c = cn[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			buf[n++] = c;
		else if (n > 0 && buf[n - 1] != '-')
			buf[n++] = '-';
	}
	while (n > 0 && buf[n - 1] == '-')
		n--;
	if (n == 0)
		n = (size_t)snprintf(buf, bufsz, "ca");
	buf[n] = '\0';
}

int
ck_backup_cert_sha256(X509 *x, char hex[65])
{
	unsigned char *der = NULL, md[32];
	int len;

	if (x == NULL)
		return ck_err_set(CK_E_STATE, "this CA has no certificate yet");
	if ((len = i2d_X509(x, &der)) <= 0)
		return ck_err_ssl(CK_E_CRYPTO, "encoding a certificate");
	SHA256(der, (size_t)len, md);
	OPENSSL_free(der);
	ck_hex_encode(md, 32, hex);
	return 0;
}

static int
has_part(const struct ck_manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nparts; i++)
		if (strcmp(m->parts[i].name, name) == 0)
			return 1;
	return 0;
}

/* A part holding BUF. */
static int
add_buf_part(struct ck_archive_writer *w, const unsigned char *buf,
    size_t len, const char *part, struct ck_manifest *m)
{
	struct ck_archive_part info;
	int r;

	if ((r = ck_archive_part_begin(w, part)) != 0 ||
	    (r = ck_archive_part_write(w, buf, len)) != 0 ||
	    (r = ck_archive_part_end(w, &info)) != 0)
		return r;
	return add_manifest_part(m, &info, 0);
}

/* The newest CRL and configuration as the snapshot has them, so that the
 * set is one point in time (the files in the home may be newer). */
static int
add_snapshot_part(struct ck_archive_writer *w, struct store_snapshot *snap,
    const char *what, const char *part, struct ck_manifest *m)
{
	unsigned char *buf = NULL;
	size_t len;
	int r;

	if ((r = store_snapshot_latest(snap, what, &buf, &len)) != 0) {
		if (r == CK_E_NOTFOUND) {
			ck_err_clear();
			return 0;
		}
		return r;
	}
	r = add_buf_part(w, buf, len, part, m);
	free(buf);
	return r;
}

/* A part holding a file of the CA home as it is (missing: skipped). */
static int
add_file_part(struct ck_archive_writer *w, const struct ck_ca *ca,
    const char *file, const char *part, struct ck_manifest *m)
{
	char path[4200];
	unsigned char *buf = NULL;
	size_t len;
	int r;

	if ((r = ck_ca_path(ca, file, path, sizeof(path))) != 0)
		return r;
	if ((r = ck_fs_read(path, 64u * 1024 * 1024, &buf, &len)) != 0) {
		if (r == CK_E_NOTFOUND) {
			ck_err_clear();
			return 0;
		}
		return r;
	}
	r = add_buf_part(w, buf, len, part, m);
	free(buf);
	return r;
}

struct latest_ctx {
	const char *chain;
	struct store_backup best;
	int found;
};

static int
latest_cb(const struct store_backup *b, void *arg)
{
	struct latest_ctx *l = arg;

	if (strcmp(b->chain, l->chain) != 0)
		return 0;
	if (!l->found || b->seq_to > l->best.seq_to ||
	    (b->seq_to == l->best.seq_to && b->created_at >=
	    l->best.created_at)) {
		store_backup_clear(&l->best);
		memset(&l->best, 0, sizeof(l->best));
		memcpy(&l->best, b, sizeof(*b));
		l->best.copies = b->copies ? strdup(b->copies) : NULL;
		l->best.verify_result = b->verify_result ?
		    strdup(b->verify_result) : NULL;
		l->best.drill_result = b->drill_result ?
		    strdup(b->drill_result) : NULL;
		l->found = 1;
	}
	return 0;
}

/* Copy SRC to DST (new file, 0600), fsync'd, and return the copy's SHA-256
 * as read back from disk. */
static int
copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in, out, r = 0;
	ssize_t n;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return ck_err_set(CK_E_IO, "cannot open %s: %s", src,
		    strerror(errno));
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600))
	    < 0) {
		close(in);
		return ck_err_set(errno == EEXIST ? CK_E_EXISTS : CK_E_IO,
		    "cannot create %s: %s", dst, strerror(errno));
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		char *p = buf;
		while (n > 0) {
			ssize_t k = write(out, p, (size_t)n);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				r = ck_err_set(CK_E_IO, "writing %s: %s", dst,
				    strerror(errno));
				goto out;
			}
			p += k;
			n -= k;
		}
	}
	if (n < 0)
		r = ck_err_set(CK_E_IO, "reading %s: %s", src, strerror(errno));
	else if (fsync(out) != 0)
		r = ck_err_set(CK_E_IO, "writing %s: %s", dst, strerror(errno));
out:
	if (close(out) != 0 && r == 0)
		r = ck_err_set(CK_E_IO, "writing %s: %s", dst, strerror(errno));
	close(in);
	return r;
}

/* Rename TMP to PATH, never over an existing file. */
static int
publish(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOSYS) {
		/* A file system without it (some removable media). */
		if (ck_fs_exists(path))
			errno = EEXIST;
		else if (rename(tmp, path) == 0)
			return 0;
	}
	return ck_err_set(errno == EEXIST ? CK_E_EXISTS : CK_E_IO,
	    "cannot publish %s: %s", path, strerror(errno));
}

/* Read a file back and compare its digest. */
static int
check_copy(const char *path, const unsigned char want[32], uint64_t size)
{
	unsigned char got[32];
	uint64_t n;
	int fd, r;

	/* Drop the page cache's copy where we can, so the medium is read. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ck_err_set(CK_E_IO, "cannot read back %s: %s", path,
		    strerror(errno));
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	r = ck_archive_file_sha256(fd, got, &n);
	close(fd);
	if (r != 0)
		return r;
	if (n != size || memcmp(got, want, 32) != 0)
		return ck_err_set(CK_E_TAMPER, "the copy %s does not read back "
		    "as written (%llu bytes, digest differs)", path,
		    (unsigned long long)n);
	return 0;
}

static int
sign_manifest(struct ck_ca *ca, const char *json, size_t len,
    unsigned char **p7s, size_t *p7slen)
{
	return signer_cms_sign(ca->signer, (const unsigned char *)json, len,
	    ca->chain, p7s, p7slen);
}

/* FN(CA, ARG) where the CA's store may be used: on certkeepd's committer
 * (O->write), else here, in a transaction of its own. */
static int
bk_run(struct ck_ca *ca, const struct ck_backup_opts *o,
    int (*fn)(struct ck_ca *, void *), void *arg)
{
	int r;

	if (o->write != NULL)
		return o->write(o->write_arg, fn, arg);
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = fn(ca, arg)) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

/* Which chain, which parent. */
struct plan_ctx {
	int incremental;	/* in: as asked; out: as it will be */
	char *chain;
	struct latest_ctx lc;
};

static int
plan_fn(struct ck_ca *ca, void *arg)
{
	struct plan_ctx *p = arg;
	int r;

	r = store_meta_get(ca->st, META_CHAIN, &p->chain);
	if (r != 0 && r != CK_E_NOTFOUND)
		return r;
	ck_err_clear();
	if (p->incremental == CK_BACKUP_INCR_IF_POSSIBLE) {
		/* An incremental where the chain allows one, else a full. */
		p->incremental = 0;
		if (p->chain != NULL) {
			p->lc.chain = p->chain;
			if ((r = store_backup_list(ca->st, latest_cb, &p->lc))
			    != 0)
				return r;
			p->incremental = p->lc.found;
			store_backup_clear(&p->lc.best);
			memset(&p->lc, 0, sizeof(p->lc));
		}
	}
	if (p->incremental) {
		if (p->chain == NULL)
			return ck_err_set(CK_E_STATE, "no full backup has been "
			    "made of this CA (or it was restored since): make "
			    "a full backup first");
		p->lc.chain = p->chain;
		if ((r = store_backup_list(ca->st, latest_cb, &p->lc)) != 0)
			return r;
		if (!p->lc.found)
			return ck_err_set(CK_E_STATE, "the backup catalogue "
			    "has no set of the current chain: make a full "
			    "backup");
	}
	return 0;
}

/* Recording a good set: catalogue, chain, custody, audit, at once. */
struct record_ctx {
	const struct store_backup *cat;
	const struct ck_manifest *m;
	const struct ck_backup_result *res;
	const char *op;
};

static int
record_fn(struct ck_ca *ca, void *arg)
{
	struct record_ctx *c = arg;
	const struct ck_manifest *m = c->m;
	const struct ck_backup_result *res = c->res;
	char now[32], detail[512];
	size_t i;
	int r;

	snprintf(now, sizeof(now), "%lld", (long long)ck_time_now());
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_backup_put(ca->st, c->cat)) != 0 ||
	    (r = store_meta_set(ca->st, META_CHAIN, m->chain)) != 0 ||
	    (r = store_meta_set(ca->st, META_LAST_GOOD, now)) != 0)
		goto fail;
	for (i = 0; i < res->npaths && r == 0; i++) {
		snprintf(detail, sizeof(detail), "%s set %s, sequence "
		    "%lld..%lld, %llu bytes", m->kind, m->id,
		    (long long)m->seq_from, (long long)m->seq_to,
		    (unsigned long long)res->size);
		r = ck_custody_record(ca, i == 0 ? "created" : "copied",
		    res->archive_sha256, "data-backup", res->paths[i], detail,
		    c->op);
	}
	if (r == 0) {
		snprintf(detail, sizeof(detail), "%s %s seq %lld..%lld, %zu "
		    "cop%s, sha256 %s", m->kind, m->id, (long long)m->seq_from,
		    (long long)m->seq_to, res->npaths,
		    res->npaths == 1 ? "y" : "ies", res->archive_sha256);
		r = audit_append(ca->st, c->op, "backup", m->id, AUDIT_OK,
		    detail);
	}
	if (r != 0)
		goto fail;
	return store_tx_commit(ca->st);
fail:
	store_tx_rollback(ca->st);
	return r;
}

/* What follows a recorded set cannot unmake it: the ledger beside each
 * copy (signed by the CA key), retention; a failure is a warning. */
struct after_ctx {
	const struct ck_backup_opts *o;
	struct ck_backup_result *res;
	const char *op, *id;
};

static int
after_fn(struct ck_ca *ca, void *arg)
{
	struct after_ctx *a = arg;
	struct ck_backup_result *res = a->res;
	size_t i;

	for (i = 0; i < res->npaths; i++) {
		char cpath[4200];
		snprintf(cpath, sizeof(cpath), "%s.custody", res->paths[i]);
		if (ck_custody_export(ca, res->archive_sha256, cpath) != 0) {
			snprintf(res->warning, sizeof(res->warning), "the "
			    "custody record beside %.300s was not written: "
			    "%.400s", res->paths[i], ck_err_msg());
			break;
		}
	}
	if (ck_backup_apply_retention(ca, &a->o->retention, a->op, a->id,
	    &res->deleted) != 0 && res->warning[0] == '\0')
		snprintf(res->warning, sizeof(res->warning), "retention: "
		    "%.700s", ck_err_msg());
	if (res->warning[0] != '\0')
		(void)audit_append(ca->st, a->op, "backup", a->id,
		    AUDIT_FAILED, res->warning);
	ck_err_clear();
	return 0;
}

struct note_ctx {
	const char *op, *id, *msg;
	const char *result;
};

static int
note_fn(struct ck_ca *ca, void *arg)
{
	struct note_ctx *n = arg;

	return audit_append(ca->st, n->op, "backup", n->id, n->result, n->msg);
}

static int
backup_make(struct ck_ca *ca, const struct ck_backup_opts *o,
    struct ck_backup_result *res, int *audited)
{
	struct store_snapshot *snap = NULL;
	struct ck_archive_writer *w = NULL;
	struct ck_manifest *m = NULL;
	struct plan_ctx pc;
	struct store_backup cat;
	char storepath[4200], label[64], ts[32], tmp[4200];
	char *json = NULL, *copies = NULL;
	unsigned char *p7s = NULL, digest[32], rnd[16], idmd[32];
	size_t jsonlen, p7slen, i;
	int fd = -1, r, made = 0, incremental;
	char opbuf[128];
	const char *op = o->actor != NULL ? o->actor : audit_os_user();

	/* --operator names who did it; the OS user who ran it stays. */
	if (o->actor == NULL && o->operator_name != NULL &&
	    strcmp(o->operator_name, op) != 0) {
		snprintf(opbuf, sizeof(opbuf), "%.40s (for %.64s)", op,
		    o->operator_name);
		op = opbuf;
	}
	json_t *jcopies = NULL;
	char dests[CK_BACKUP_MAX_DESTS][PATH_MAX];

	memset(res, 0, sizeof(*res));
	memset(&pc, 0, sizeof(pc));
	memset(&cat, 0, sizeof(cat));
	if (o->ndests == 0 || o->ndests > CK_BACKUP_MAX_DESTS)
		return ck_err_set(CK_E_INVAL, "name 1 to %d destinations "
		    "(--to DIR, or 'to = DIR,DIR' in [backup] of "
		    "certkeep.conf)", CK_BACKUP_MAX_DESTS);
	if (o->recipients == NULL || sk_X509_num(o->recipients) == 0)
		return ck_err_set(CK_E_INVAL, "name at least one recipient "
		    "certificate to encrypt the backup to (--recipient FILE, "
		    "or 'recipients = FILE' in [backup] of certkeep.conf)");
	if (ca->signer == NULL || ca->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA must be unlocked to "
		    "sign the backup's manifest");
	for (i = 0; i < o->ndests; i++) {
		struct stat sb;
		size_t j;
		if (realpath(o->dests[i], dests[i]) == NULL)
			return ck_err_set(CK_E_NOTFOUND, "destination %s is "
			    "not a directory: %s", o->dests[i],
			    strerror(errno));
		for (j = 0; j < i; j++)
			if (strcmp(dests[i], dests[j]) == 0)
				return ck_err_set(CK_E_INVAL, "destination %s "
				    "is named twice: copies must be on "
				    "different media", dests[i]);
		if (stat(o->dests[i], &sb) != 0 || !S_ISDIR(sb.st_mode))
			return ck_err_set(CK_E_NOTFOUND, "destination %s is "
			    "not a directory", o->dests[i]);
		if (access(o->dests[i], W_OK) != 0)
			return ck_err_set(CK_E_PERM, "destination %s is not "
			    "writable: %s", o->dests[i], strerror(errno));
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");

	/* Which chain, which parent. */
	pc.incremental = o->incremental;
	if ((r = bk_run(ca, o, plan_fn, &pc)) != 0)
		goto out;
	incremental = pc.incremental;
	if (incremental) {
		snprintf(m->kind, sizeof(m->kind), "incremental");
		snprintf(m->chain, sizeof(m->chain), "%s", pc.chain);
		snprintf(m->parent_id, sizeof(m->parent_id), "%s",
		    pc.lc.best.id);
		snprintf(m->parent_manifest_sha256,
		    sizeof(m->parent_manifest_sha256), "%s",
		    pc.lc.best.manifest_sha256);
		m->seq_from = pc.lc.best.seq_to;
	} else {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			r = ck_err_ssl(CK_E_CRYPTO, "random chain id");
			goto out;
		}
		snprintf(m->kind, sizeof(m->kind), "full");
		ck_hex_encode(rnd, sizeof(rnd), m->chain);
		m->seq_from = 0;
	}

	/* The snapshot: from here on certkeepd's commits are not in it. */
	if ((r = ck_ca_path(ca, ca->cfg->store_path, storepath,
	    sizeof(storepath))) != 0 ||
	    (r = store_snapshot_open(storepath, &snap)) != 0)
		goto out;
	m->seq_to = store_snapshot_seq(snap);
	if (m->seq_to < m->seq_from) {
		r = ck_err_set(CK_E_STATE, "the store's change sequence (%lld) "
		    "is behind the last backup's (%lld): was it restored "
		    "from an older copy?", (long long)m->seq_to,
		    (long long)m->seq_from);
		goto out;
	}
	if ((r = store_snapshot_counts(snap, &m->counts)) != 0)
		goto out;
	m->created = ck_time_now();
	if (gethostname(m->host, sizeof(m->host) - 1) != 0)
		snprintf(m->host, sizeof(m->host), "unknown");
	snprintf(m->operator_name, sizeof(m->operator_name), "%s", op);
	if ((r = ck_backup_cert_sha256(ca->cert, m->ca_cert_sha256)) != 0)
		goto out;
	X509_NAME_oneline(X509_get_subject_name(ca->cert), m->ca_subject,
	    sizeof(m->ca_subject));
	{
		char idsrc[256];
		int n = snprintf(idsrc, sizeof(idsrc), "%s|%s|%lld|%lld|%lld",
		    m->chain, m->kind, (long long)m->seq_from,
		    (long long)m->seq_to, (long long)m->created);
		SHA256((unsigned char *)idsrc, (size_t)n, idmd);
		ck_hex_encode(idmd, 32, m->id);
	}

	/* Write to the first destination under a temporary name. */
	ca_label(ca, label, sizeof(label));
	{
		struct tm tmv;
		time_t tt = (time_t)m->created;
		gmtime_r(&tt, &tmv);
		strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tmv);
	}
	for (i = 0; i < o->ndests; i++) {
		if (snprintf(res->paths[i], sizeof(res->paths[i]),
		    "%s/%s-%s-%s-%lld.ckb", dests[i], label, ts,
		    incremental ? "incr" : "full", (long long)m->seq_to) >=
		    (int)sizeof(res->paths[i])) {
			r = ck_err_set(CK_E_INVAL, "destination path too long");
			goto out;
		}
		if (ck_fs_exists(res->paths[i])) {
			r = ck_err_set(CK_E_EXISTS, "%s exists already",
			    res->paths[i]);
			goto out;
		}
	}
	snprintf(tmp, sizeof(tmp), "%s.partial", res->paths[0]);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	    0) {
		r = ck_err_set(CK_E_IO, "cannot create %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	made = 1;
	{
		char tmpdir[4200];
		if ((r = ck_ca_path(ca, "private", tmpdir, sizeof(tmpdir))) !=
		    0)
			goto out;
		/* A split home's private/ is the key owner's: the service
		 * user's unnamed spool files go in the home (O_TMPFILE). */
		if (access(tmpdir, W_OK | X_OK) != 0)
			snprintf(tmpdir, sizeof(tmpdir), "%s", ca->home);
		if ((r = ck_archive_writer_open(fd, tmpdir, o->recipients,
		    o->zlevel, &w)) != 0)
			goto out;
	}
	if (!incremental && !o->logical)
		r = add_store_image(w, snap, o, m);
	else
		r = add_store_dumps(w, snap, o->progress, m);
	if (r != 0)
		goto out;
	if (o->progress)
		fprintf(stderr, "\rbackup: store done%30s\n", "");
	if ((r = add_file_part(w, ca, ca->cfg->cert_file, "parts/ca/ca.pem.zst",
	    m)) != 0 ||
	    (r = add_file_part(w, ca, ca->cfg->chain_file,
		"parts/ca/chain.pem.zst", m)) != 0 ||
	    (r = add_snapshot_part(w, snap, "config",
		"parts/config/certkeep.conf.zst", m)) != 0 ||
	    (!has_part(m, "parts/config/certkeep.conf.zst") &&
		(r = add_file_part(w, ca, CK_CONFIG_FILE,
		"parts/config/certkeep.conf.zst", m)) != 0) ||
	    (r = add_snapshot_part(w, snap, "crl", "parts/crl/ca.crl.zst",
		m)) != 0)
		goto out;
	store_snapshot_close(snap);
	snap = NULL;
	if ((r = ck_manifest_build(m, &json, &jsonlen)) != 0 ||
	    (r = sign_manifest(ca, json, jsonlen, &p7s, &p7slen)) != 0 ||
	    (r = ck_archive_writer_finish_signed(w, json, jsonlen, p7s,
		p7slen, digest)) != 0)
		goto out;
	ck_archive_writer_free(w);
	w = NULL;
	if (close(fd) != 0) {
		fd = -1;
		r = ck_err_set(CK_E_IO, "writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	{
		struct stat sb;
		if (stat(tmp, &sb) != 0) {
			r = ck_err_set(CK_E_IO, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		res->size = (uint64_t)sb.st_size;
	}
	if ((r = publish(tmp, res->paths[0])) != 0)
		goto out;
	res->npaths = 1;
	if ((r = ck_fs_sync_dir(dests[0])) != 0 ||
	    (r = check_copy(res->paths[0], digest, res->size)) != 0)
		goto out;

	/* The other destinations: copy, sync, read back. */
	for (i = 1; i < o->ndests; i++) {
		snprintf(tmp, sizeof(tmp), "%s.partial", res->paths[i]);
		if (o->progress)
			fprintf(stderr, "backup: copying to %s\n", o->dests[i]);
		if ((r = copy_file(res->paths[0], tmp)) != 0) {
			unlink(tmp);
			goto out;
		}
		if ((r = publish(tmp, res->paths[i])) != 0) {
			unlink(tmp);
			goto out;
		}
		res->npaths = i + 1;
		if ((r = ck_fs_sync_dir(dests[i])) != 0 ||
		    (r = check_copy(res->paths[i], digest, res->size)) != 0)
			goto out;
	}

	/* Good: record it. */
	ck_hex_encode(digest, 32, res->archive_sha256);
	snprintf(res->id, sizeof(res->id), "%s", m->id);
	snprintf(res->kind, sizeof(res->kind), "%s", m->kind);
	res->seq_from = m->seq_from;
	res->seq_to = m->seq_to;
	if ((jcopies = json_array()) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < res->npaths; i++)
		json_array_append_new(jcopies, json_pack("{s:s, s:I, s:b}",
		    "path", res->paths[i], "verified_at",
		    (json_int_t)ck_time_now(), "ok", 1));
	if ((copies = json_dumps(jcopies, JSON_COMPACT)) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	snprintf(cat.id, sizeof(cat.id), "%s", m->id);
	snprintf(cat.kind, sizeof(cat.kind), "%s", m->kind);
	snprintf(cat.chain, sizeof(cat.chain), "%s", m->chain);
	snprintf(cat.parent, sizeof(cat.parent), "%s", m->parent_id);
	cat.seq_from = m->seq_from;
	cat.seq_to = m->seq_to;
	cat.created_at = m->created;
	{
		unsigned char mmd[32];
		SHA256((unsigned char *)json, jsonlen, mmd);
		ck_hex_encode(mmd, 32, cat.manifest_sha256);
	}
	snprintf(cat.archive_sha256, sizeof(cat.archive_sha256), "%s",
	    res->archive_sha256);
	cat.size = (int64_t)res->size;
	cat.copies = copies;
	cat.verified_at = ck_time_now();
	cat.verify_result = (char *)"ok (read back after writing)";
	{
		struct record_ctx rc = { &cat, m, res, op };
		struct after_ctx ac = { o, res, op, m->id };
		if ((r = bk_run(ca, o, record_fn, &rc)) != 0)
			goto out;
		(void)bk_run(ca, o, after_fn, &ac);
	}
	r = 0;
	goto done;
out:
	/* The writer's thread stops writing to FD before FD goes. */
	ck_archive_writer_free(w);
	w = NULL;
	/* Nothing half-made stays behind. */
	if (made) {
		if (fd >= 0)
			close(fd);
		fd = -1;
		snprintf(tmp, sizeof(tmp), "%s.partial", res->paths[0]);
		unlink(tmp);
		/* Only what this run published (npaths counts those). */
		for (i = 0; i < res->npaths; i++)
			unlink(res->paths[i]);
		res->npaths = 0;
	}
	{
		char msg[512];
		struct note_ctx nc;
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		nc.op = op;
		nc.id = m->id[0] ? m->id : "-";
		nc.msg = msg;
		nc.result = AUDIT_FAILED;
		(void)bk_run(ca, o, note_fn, &nc);
		*audited = 1;
		ck_err_set(r, "%s", msg);
	}
done:
	if (fd >= 0)
		close(fd);
	ck_archive_writer_free(w);
	store_snapshot_close(snap);
	store_backup_clear(&pc.lc.best);
	json_decref(jcopies);
	free(copies);
	free(json);
	OPENSSL_free(p7s);
	free(pc.chain);
	free(m);
	return r;
}

int
ck_backup_make(struct ck_ca *ca, const struct ck_backup_opts *o,
    struct ck_backup_result *res)
{
	int audited = 0, r;
	char msg[1024];

	char lpath[4200];
	int lfd;

	/* One backup at a time per CA (timers may overlap): a second waits. */
	if ((r = ck_ca_path(ca, "backup.lock", lpath, sizeof(lpath))) != 0)
		return r;
	if ((lfd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return ck_err_set(CK_E_IO, "cannot open %s: %s", lpath,
		    strerror(errno));
	if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
		if (o->progress)
			fprintf(stderr, "backup: waiting for another backup of "
			    "this CA to finish\n");
		if (flock(lfd, LOCK_EX) != 0) {
			close(lfd);
			return ck_err_set(CK_E_IO, "cannot lock %s: %s", lpath,
			    strerror(errno));
		}
	}
	r = backup_make(ca, o, res, &audited);
	close(lfd);
	if (r != 0 && !audited) {
		/* Refused before it began: audited all the same. */
		struct note_ctx nc;
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		nc.op = o->actor != NULL ? o->actor : o->operator_name;
		nc.id = "-";
		nc.msg = msg;
		nc.result = AUDIT_REFUSED;
		(void)bk_run(ca, o, note_fn, &nc);
		ck_err_set(r, "%s", msg);
	}
	return r;
}
