/*
 * catalogue.c - the sets a CA knows of: listing, chains, retention, and
 * recording checks.
 *
 * Retention keeps the union of its rules (the newest N sets; the newest set
 * of each of the last N days, weeks, months), always the newest set, and
 * then every ancestor of a kept set, so no kept incremental loses the full
 * or the incrementals it needs. Only sets outside that are deleted, every
 * copy of them, each deletion recorded as "destroyed" in the custody
 * ledger.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "backup/archive.h"
#include "backup/backup.h"
#include "backup/custody.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"

struct setlist {
	struct store_backup *v;
	size_t n, cap;
};

static int
collect_cb(const struct store_backup *b, void *arg)
{
	struct setlist *l = arg;
	struct store_backup *c;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		void *p;
		if (cap > CK_BACKUP_MAX_SETS * 16 ||
		    (p = realloc(l->v, cap * sizeof(*l->v))) == NULL)
			return ck_err_set(CK_E_NOMEM, "too many backup sets");
		l->v = p;
		l->cap = cap;
	}
	c = &l->v[l->n];
	memcpy(c, b, sizeof(*b));
	c->copies = b->copies ? strdup(b->copies) : NULL;
	c->verify_result = b->verify_result ? strdup(b->verify_result) : NULL;
	c->drill_result = b->drill_result ? strdup(b->drill_result) : NULL;
	l->n++;
	return 0;
}

static void
setlist_free(struct setlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		store_backup_clear(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
setlist_load(struct ck_ca *ca, struct setlist *l)
{
	memset(l, 0, sizeof(*l));
	return store_backup_list(ca->st, collect_cb, l);
}

int
ck_backup_catalogue_forget_copies(struct store *st)
{
	struct setlist l;
	size_t i;
	int r;

	memset(&l, 0, sizeof(l));
	r = store_backup_list(st, collect_cb, &l);
	for (i = 0; i < l.n && r == 0; i++) {
		free(l.v[i].copies);
		l.v[i].copies = strdup("[]");
		r = l.v[i].copies ? store_backup_put(st, &l.v[i]) :
		    ck_err_set(CK_E_NOMEM, "out of memory");
	}
	setlist_free(&l);
	return r;
}

static ssize_t
setlist_find(const struct setlist *l, const char *id)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].id, id) == 0)
			return (ssize_t)i;
	return -1;
}

/* Copies of a set: recorded, and present on disk with the right size. */
static void
copy_state(const struct store_backup *b, int *recorded, int *present,
    char *first, size_t firstsz)
{
	json_t *a, *c;
	size_t i;

	*recorded = *present = 0;
	if (first)
		first[0] = '\0';
	if (b->copies == NULL ||
	    (a = json_loads(b->copies, 0, NULL)) == NULL)
		return;
	json_array_foreach(a, i, c) {
		const char *p = json_string_value(json_object_get(c, "path"));
		struct stat sb;
		if (p == NULL)
			continue;
		(*recorded)++;
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_size == b->size) {
			if (*present == 0 && first)
				snprintf(first, firstsz, "%s", p);
			(*present)++;
		}
	}
	json_decref(a);
}

int
ck_backup_chain_files(struct ck_ca *ca, const char *id, char ***files,
    size_t *nfiles)
{
	struct setlist l;
	char **v = NULL, path[4096];
	size_t n = 0, i;
	ssize_t k;
	int r, rec, pres;

	*files = NULL;
	*nfiles = 0;
	if ((r = setlist_load(ca, &l)) != 0)
		return r;
	if (id != NULL) {
		/* A unique prefix of an id is enough. */
		k = -1;
		for (i = 0; i < l.n; i++)
			if (strncmp(l.v[i].id, id, strlen(id)) == 0) {
				if (k >= 0) {
					r = ck_err_set(CK_E_INVAL, "'%s' names "
					    "more than one set", id);
					goto out;
				}
				k = (ssize_t)i;
			}
	} else
		k = l.n ? (ssize_t)l.n - 1 : -1;
	if (k < 0) {
		r = ck_err_set(CK_E_NOTFOUND, id ? "no backup set '%s' in the "
		    "catalogue" : "the catalogue has no backup sets%s",
		    id ? id : "");
		goto out;
	}
	if ((v = calloc(l.n + 1, sizeof(*v))) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		copy_state(&l.v[k], &rec, &pres, path, sizeof(path));
		if (pres == 0) {
			r = ck_err_set(CK_E_NOTFOUND, "no copy of set %.12s "
			    "(%s) is left on disk", l.v[k].id, l.v[k].kind);
			goto out;
		}
		if (n == l.n) {
			r = ck_err_set(CK_E_TAMPER, "the catalogue's parent "
			    "links form a loop");
			goto out;
		}
		if ((v[n++] = strdup(path)) == NULL) {
			r = ck_err_set(CK_E_NOMEM, "out of memory");
			goto out;
		}
		if (strcmp(l.v[k].kind, "full") == 0)
			break;
		if ((k = setlist_find(&l, l.v[k].parent)) < 0) {
			r = ck_err_set(CK_E_NOTFOUND, "the parent of a set is "
			    "not in the catalogue");
			goto out;
		}
	}
	/* Oldest first. */
	for (i = 0; i < n / 2; i++) {
		char *t = v[i];
		v[i] = v[n - 1 - i];
		v[n - 1 - i] = t;
	}
	*files = v;
	*nfiles = n;
	v = NULL;
	r = 0;
out:
	if (v) {
		for (i = 0; i < n; i++)
			free(v[i]);
		free(v);
	}
	setlist_free(&l);
	return r;
}

int
ck_backup_catalogue_print(struct ck_ca *ca, int json)
{
	return ck_backup_catalogue_fprint(ca->st, json, stdout, stderr);
}

int
ck_backup_catalogue_fprint(struct store *st, int json, FILE *out,
    FILE *warn)
{
	struct setlist l;
	size_t i;
	int r, rec, pres, single = 0;
	char c[32], v[32], d[32];
	json_t *arr = NULL;

	memset(&l, 0, sizeof(l));
	if ((r = store_backup_list(st, collect_cb, &l)) != 0) {
		setlist_free(&l);
		return r;
	}
	if (json)
		arr = json_array();
	else if (l.n == 0)
		fprintf(out, "No backup sets recorded.\n");
	else
		fprintf(out, "%-12s %-11s %-20s %-15s %-12s %-6s %-24s %s\n", "SET",
		    "KIND", "CREATED", "SEQUENCE", "PARENT", "COPIES",
		    "VERIFIED", "DRILL");
	for (i = 0; i < l.n; i++) {
		const struct store_backup *b = &l.v[i];
		char seq[48];
		copy_state(b, &rec, &pres, NULL, 0);
		ck_time_format(b->created_at, c, sizeof(c));
		snprintf(v, sizeof(v), "never");
		if (b->verified_at)
			ck_time_format(b->verified_at, v, sizeof(v));
		snprintf(d, sizeof(d), "never");
		if (b->drilled_at)
			ck_time_format(b->drilled_at, d, sizeof(d));
		if (json) {
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, "
			    "s:s, s:I, s:I, s:I, s:s, s:s, s:I, s:I, s:s?, "
			    "s:I, s:s?, s:o}", "id", b->id, "kind", b->kind,
			    "chain", b->chain, "parent", b->parent,
			    "seq_from", (json_int_t)b->seq_from, "seq_to",
			    (json_int_t)b->seq_to, "created",
			    (json_int_t)b->created_at, "archive_sha256",
			    b->archive_sha256, "manifest_sha256",
			    b->manifest_sha256, "size", (json_int_t)b->size,
			    "verified_at", (json_int_t)b->verified_at,
			    "verify_result", b->verify_result,
			    "drilled_at", (json_int_t)b->drilled_at,
			    "drill_result", b->drill_result,
			    "copies", b->copies ? json_loads(b->copies, 0, NULL)
			    : json_array()));
			continue;
		}
		snprintf(seq, sizeof(seq), "%lld..%lld", (long long)b->seq_from,
		    (long long)b->seq_to);
		fprintf(out, "%-12.12s %-11s %-20s %-15s %-12.12s %d/%-4d %-24s %s\n",
		    b->id, b->kind, c, seq, b->parent[0] ? b->parent : "-",
		    pres, rec, b->verify_result ? (strncmp(b->verify_result,
		    "ok", 2) == 0 ? v : "FAILED") : "never",
		    b->drill_result ? (strncmp(b->drill_result, "ok", 2) == 0 ?
		    d : "FAILED") : "never");
		if (rec > 0 && pres == 1)
			single++;
		if (rec > 0 && pres == 0)
			fprintf(out, "  warning: no copy of this set is left on disk\n");
		else if (rec > 0 && pres == 1)
			fprintf(out, "  warning: this restore point has a single copy"
			    "\n");
		if (b->verify_result && strncmp(b->verify_result, "ok", 2) != 0)
			fprintf(out, "  last verification: %s\n", b->verify_result);
		if (b->drill_result && strncmp(b->drill_result, "ok", 2) != 0)
			fprintf(out, "  last drill: %s\n", b->drill_result);
	}
	if (json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		if (s)
			fprintf(out, "%s\n", s);
		free(s);
		json_decref(arr);
	} else if (single)
		fprintf(warn, "certkeep: warning: %d restore point%s a single "
		    "copy: copy %s to another medium\n", single,
		    single == 1 ? " has" : "s have", single == 1 ? "it" : "them");
	setlist_free(&l);
	return 0;
}

int
ck_backup_record_check(struct ck_ca *ca, const char *what,
    const struct ck_manifest *m, const char *file, int ok,
    const char *detail)
{
	struct store_backup b;
	int r, known;
	int64_t now = ck_time_now();
	char res[512];

	snprintf(res, sizeof(res), "%s%s%s", ok ? "ok" : "failed",
	    detail && detail[0] ? ": " : "", detail ? detail : "");
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	known = store_backup_get(ca->st, m->id, &b) == 0;
	ck_err_clear();
	if (known) {
		if (strcmp(what, "drill") == 0) {
			free(b.drill_result);
			b.drill_result = strdup(res);
			b.drilled_at = now;
		} else {
			free(b.verify_result);
			b.verify_result = strdup(res);
			b.verified_at = now;
		}
		r = store_backup_put(ca->st, &b);
		if (r == 0 && ok && strcmp(what, "drill") == 0) {
			char t[32];
			snprintf(t, sizeof(t), "%lld", (long long)now);
			r = store_meta_set(ca->st, "last_good_drill", t);
		}
		if (r == 0 && file != NULL)
			r = ck_custody_record(ca, "verified", b.archive_sha256,
			    "data-backup", file, res, audit_actor());
		store_backup_clear(&b);
	}
	if (r == 0)
		r = audit_append(ca->st, NULL, strcmp(what, "drill") == 0 ?
		    "backup-drill" : "backup-verify", m->id,
		    ok ? AUDIT_OK : AUDIT_FAILED, res);
	if (r != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

static int
is_our_copy(const char *path, const struct store_backup *b)
{
	unsigned char md[32];
	char hex[65];
	uint64_t size;
	size_t n = strlen(path);
	int fd, r;

	if (n < 5 || strcmp(path + n - 4, ".ckb") != 0)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	r = ck_archive_file_sha256(fd, md, &size);
	close(fd);
	if (r != 0 || size != (uint64_t)b->size)
		return 0;
	ck_hex_encode(md, 32, hex);
	return strcmp(hex, b->archive_sha256) == 0;
}

static int64_t
day_of(int64_t t)
{
	return t / 86400;
}

static int64_t
week_of(int64_t t)
{
	/* Weeks starting on Monday (1970-01-01 was a Thursday). */
	return (t / 86400 + 3) / 7;
}

static int64_t
month_of(int64_t t)
{
	struct tm tmv;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tmv);
	return (int64_t)tmv.tm_year * 12 + tmv.tm_mon;
}

/* Keep the newest set of each of the last N periods. */
static void
keep_periods(const struct setlist *l, const char *live, unsigned n,
    int64_t (*period)(int64_t), char *keep)
{
	size_t i;
	unsigned seen = 0;
	int64_t last = INT64_MIN;

	if (n == 0)
		return;
	for (i = l->n; i-- > 0;) {
		int64_t p;
		if (!live[i])
			continue;
		p = period(l->v[i].created_at);
		if (p != last) {
			if (++seen > n)
				break;
			keep[i] = 1;
			last = p;
		}
	}
}

int
ck_backup_apply_retention(struct ck_ca *ca, const struct ck_retention *rt,
    const char *operator_name, const char *keep_id, unsigned *deleted)
{
	struct setlist l;
	char *keep = NULL, *live;
	size_t i, j;
	int r, changed;

	*deleted = 0;
	if (rt->keep_last == 0 && rt->daily == 0 && rt->weekly == 0 &&
	    rt->monthly == 0)
		return 0;
	if ((r = setlist_load(ca, &l)) != 0)
		return r;
	if (l.n == 0)
		goto out;
	if ((keep = calloc(2, l.n)) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	live = keep + l.n;
	/*
	 * The rules count only sets with a copy on disk: sets whose copies
	 * are gone (lost media) are history, and must not push restorable
	 * ones out. The set just made, and the newest restorable one, are
	 * always kept.
	 */
	for (i = 0; i < l.n; i++) {
		int rec, pres;
		copy_state(&l.v[i], &rec, &pres, NULL, 0);
		live[i] = pres > 0;
		if (keep_id != NULL && strcmp(l.v[i].id, keep_id) == 0)
			keep[i] = 1;
	}
	for (i = l.n, j = 0; i-- > 0;)
		if (live[i] && j++ < rt->keep_last)
			keep[i] = 1;
	keep_periods(&l, live, rt->daily, day_of, keep);
	keep_periods(&l, live, rt->weekly, week_of, keep);
	keep_periods(&l, live, rt->monthly, month_of, keep);
	for (i = l.n; i-- > 0;)
		if (live[i]) {
			keep[i] = 1;
			break;
		}
	/* A kept set keeps its ancestors. */
	do {
		changed = 0;
		for (i = 0; i < l.n; i++) {
			ssize_t p;
			if (!keep[i] || l.v[i].parent[0] == '\0')
				continue;
			if ((p = setlist_find(&l, l.v[i].parent)) >= 0 &&
			    !keep[p]) {
				keep[p] = 1;
				changed = 1;
			}
		}
	} while (changed);
	for (i = 0; i < l.n && r == 0; i++) {
		json_t *a, *c;
		size_t k;
		int any = 0, kept_any = 0;
		char places[1024];

		if (keep[i] || l.v[i].copies == NULL ||
		    (a = json_loads(l.v[i].copies, 0, NULL)) == NULL)
			continue;
		places[0] = '\0';
		json_array_foreach(a, k, c) {
			const char *p = json_string_value(json_object_get(c,
			    "path"));
			char cp[4200];
			size_t pl = strlen(places);
			if (p == NULL || !ck_fs_exists(p))
				continue;
			/* Only the very file this CA wrote: a set of this
			 * name, size and digest (never whatever a path in
			 * the store now names). */
			if (!is_our_copy(p, &l.v[i])) {
				fprintf(stderr, "certkeep: retention: %s is not "
				    "the set recorded there; left alone\n", p);
				kept_any = 1;
				continue;
			}
			if (unlink(p) != 0) {
				r = ck_err_set(CK_E_IO, "retention: cannot "
				    "delete %s: %s", p, strerror(errno));
				break;
			}
			snprintf(cp, sizeof(cp), "%s.custody", p);
			(void)unlink(cp);
			snprintf(places + pl, sizeof(places) - pl, "%s%s",
			    pl ? ", " : "", p);
			any = 1;
		}
		/* One artefact (every copy has its digest): one entry. */
		if (r == 0 && any)
			r = ck_custody_record(ca, "destroyed",
			    l.v[i].archive_sha256, "data-backup", places,
			    "every copy deleted by the retention policy",
			    operator_name);
		json_decref(a);
		if (r == 0 && any && !kept_any) {
			free(l.v[i].copies);
			l.v[i].copies = strdup("[]");
			if ((r = store_backup_put(ca->st, &l.v[i])) == 0)
				r = audit_append(ca->st, operator_name,
				    "backup-retention", l.v[i].id, AUDIT_OK,
				    "every copy deleted by the retention "
				    "policy");
			(*deleted)++;
		}
	}
out:
	free(keep);
	setlist_free(&l);
	return r;
}
