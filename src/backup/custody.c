/*
 * custody.c - the chain-of-custody ledger (see custody.h).
 */
#include "backup/custody.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "ca/ca.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "signer/signer.h"
#include "x509/cms.h"
#include "x509/keygen.h"

#define CUSTODY_TAG "certkeep-custody-v1"
#define CUSTODY_HEAD_KEY "custody_head"
/* More entries than any artefact's life should see: a bound for parsing. */
#define CUSTODY_FILE_ENTRIES_MAX 100000
/* 9999-12-31T23:59:59Z: times beyond cannot be written as text. */
#define CUSTODY_TIME_MAX INT64_C(253402300799)

static const char *const event_names[CK_CUSTODY_EVENT__MAX] = {
	"created", "copied", "moved", "verified", "stored", "retrieved",
	"restored", "destroyed"
};

static const char *const kind_names[CK_CUSTODY_KIND__MAX] = {
	"data-backup", "key-backup", "key-share"
};

const char *
ck_custody_event_name(enum ck_custody_event e)
{
	if ((unsigned)e >= CK_CUSTODY_EVENT__MAX)
		return "unknown";
	return event_names[e];
}

int
ck_custody_event_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < CK_CUSTODY_EVENT__MAX; i++)
		if (strcmp(s, event_names[i]) == 0)
			return i;
	return -1;
}

const char *
ck_custody_kind_name(enum ck_custody_kind k)
{
	if ((unsigned)k >= CK_CUSTODY_KIND__MAX)
		return "unknown";
	return kind_names[k];
}

int
ck_custody_kind_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < CK_CUSTODY_KIND__MAX; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int
ck_custody_kind_guess(const char *path)
{
	if (ends_with(path, ".ckb"))
		return CK_CUSTODY_DATA_BACKUP;
	if (ends_with(path, ".p8"))
		return CK_CUSTODY_KEY_BACKUP;
	if (ends_with(path, ".share"))
		return CK_CUSTODY_KEY_SHARE;
	return -1;
}

/* ---- field checks ---- */

/* 1 if S is well-formed UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF) without control characters. */
static int
text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;
	int n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			if (*p < 0x20 || *p == 0x7f)
				return 0;
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf) {
			n = 1;
			cp = *p & 0x1f;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			n = 2;
			cp = *p & 0x0f;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			n = 3;
			cp = *p & 0x07;
		} else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp <= 0x9f))
			return 0;
		p += n + 1;
	}
	return 1;
}

static int
check_text(const char *s, size_t max, int required, const char *what)
{
	if (s == NULL || s[0] == '\0') {
		if (required)
			return ck_err_set(CK_E_INVAL, "custody: the %s is "
			    "required", what);
		return 0;
	}
	if (strlen(s) > max)
		return ck_err_set(CK_E_INVAL, "custody: the %s is longer than "
		    "%zu bytes", what, max);
	if (!text_ok(s))
		return ck_err_set(CK_E_INVAL, "custody: the %s is not UTF-8 "
		    "text without control characters", what);
	return 0;
}

/* Lower-case copy of a 64-digit hex SHA-256; 0 or -1. */
static int
hex_norm(const char *s, char out[65])
{
	size_t i;
	char c;

	if (s == NULL || strlen(s) != 64)
		return -1;
	for (i = 0; i < 64; i++) {
		c = s[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		out[i] = c;
	}
	out[64] = '\0';
	return 0;
}

void
ck_custody_entry_hash(const struct store_custody *e, unsigned char out[32])
{
	const int64_t nums[] = { e->id, e->time };
	const char *const strs[] = { e->operator_name, e->event, e->artefact,
	    e->kind, e->place, e->detail };

	audit_chain_hash(CUSTODY_TAG, nums, 2, strs, 6, e->prev_hash, out);
}

/* ---- an artefact's history, and the rules it follows ---- */

struct history {
	int64_t n;		/* entries so far */
	int kind;		/* of the first entry, -1 if none */
	int destroyed;		/* a "destroyed" entry was seen */
};

/* Whether an event may follow HISTORY; NULL if so, else why not. */
static const char *
rule_broken(const struct history *h, int event, int kind)
{
	if (h->n > 0 && kind != h->kind)
		return "the artefact already has another kind";
	if (h->destroyed)
		return "the artefact was destroyed";
	if (h->n > 0 && event == CK_CUSTODY_CREATED)
		return "\"created\" can only be an artefact's first event";
	return NULL;
}

static void
history_add(struct history *h, int event, int kind)
{
	if (h->n++ == 0)
		h->kind = kind;
	if (event == CK_CUSTODY_DESTROYED)
		h->destroyed = 1;
}

static int
history_cb(const struct store_custody *e, void *arg)
{
	history_add(arg, ck_custody_event_parse(e->event),
	    ck_custody_kind_parse(e->kind));
	return 0;
}

/* ---- recording ---- */

static int
set_head(struct store *st, int64_t id, const unsigned char hash[32])
{
	char hex[65], head[128];

	ck_hex_encode(hash, 32, hex);
	snprintf(head, sizeof(head), "%lld:%s", (long long)id, hex);
	return store_meta_set(st, CUSTODY_HEAD_KEY, head);
}

int
ck_custody_record(struct ck_ca *ca, const char *event,
    const char *artefact_sha256_hex, const char *kind, const char *place,
    const char *detail, const char *operator_name)
{
	struct store_custody e;
	struct history h = { 0, -1, 0 };
	char ad[CK_CUSTODY_FIELD_MAX * 2 + CK_CUSTODY_DETAIL_MAX + 128];
	char art[65], msg[512];
	const char *why;
	int ev, kd = -1, r;
	int64_t last;

	if ((ev = ck_custody_event_parse(event)) < 0)
		return ck_err_set(CK_E_INVAL, "custody: unknown event '%s' "
		    "(created, copied, moved, verified, stored, retrieved, "
		    "restored, destroyed)", event ? event : "");
	if (kind != NULL && (kd = ck_custody_kind_parse(kind)) < 0)
		return ck_err_set(CK_E_INVAL, "custody: unknown kind '%s' "
		    "(data-backup, key-backup, key-share)", kind);
	if (hex_norm(artefact_sha256_hex, art) != 0)
		return ck_err_set(CK_E_INVAL, "custody: the artefact must be "
		    "named by its SHA-256 (64 hex digits)");
	if (operator_name == NULL)
		operator_name = audit_os_user();
	if ((r = check_text(place, CK_CUSTODY_FIELD_MAX, 1, "place")) != 0 ||
	    (r = check_text(operator_name, CK_CUSTODY_FIELD_MAX, 1,
	    "operator")) != 0 ||
	    (r = check_text(detail, CK_CUSTODY_DETAIL_MAX, 0, "detail")) != 0)
		return r;

	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_custody_iter(ca->st, art, history_cb, &h)) != 0)
		goto fail;
	if (kd < 0) {
		if (h.n == 0 || h.kind < 0) {
			r = ck_err_set(CK_E_INVAL, "custody: artefact %.16s... "
			    "has no entry yet: give its kind", art);
			goto fail;
		}
		kd = h.kind;
	}
	if ((why = rule_broken(&h, ev, kd)) != NULL) {
		store_tx_rollback(ca->st);
		snprintf(msg, sizeof(msg), "custody: refused to record "
		    "\"%s\" for artefact %.16s...: %s", event, art, why);
		snprintf(ad, sizeof(ad), "event=%s kind=%s: %s", event,
		    ck_custody_kind_name(kd), why);
		(void)ck_ca_audit(ca, "custody", art, AUDIT_REFUSED, ad);
		return ck_err_set(CK_E_STATE, "%s", msg);
	}

	memset(&e, 0, sizeof(e));
	if ((r = store_custody_last(ca->st, &last, e.prev_hash)) != 0)
		goto fail;
	e.id = last + 1;
	e.time = ck_time_now();
	e.operator_name = (char *)operator_name;
	e.event = (char *)event_names[ev];
	e.artefact = art;
	e.kind = (char *)kind_names[kd];
	e.place = (char *)place;
	e.detail = (char *)(detail ? detail : "");
	ck_custody_entry_hash(&e, e.hash);
	if ((r = store_custody_insert(ca->st, &e)) != 0)
		goto fail;
	/* The id is part of the hash: the store must have kept it. */
	if (e.id != last + 1) {
		r = ck_err_set(CK_E_INTERNAL, "custody: the store numbered "
		    "the entry %lld, expected %lld", (long long)e.id,
		    (long long)(last + 1));
		goto fail;
	}
	snprintf(ad, sizeof(ad), "entry %lld: %s %s at %s by %s%s%s",
	    (long long)e.id, e.event, e.kind, place, operator_name,
	    e.detail[0] ? ": " : "", e.detail);
	if ((r = set_head(ca->st, e.id, e.hash)) != 0 ||
	    (r = ck_ca_audit(ca, "custody", art, AUDIT_OK, ad)) != 0)
		goto fail;
	return store_tx_commit(ca->st);
fail:
	store_tx_rollback(ca->st);
	return r;
}

/* ---- verifying the ledger ---- */

/* A small open-addressing table: artefact id -> its history so far. */
struct art_slot {
	char id[65];
	struct history h;
};

struct art_table {
	struct art_slot *v;
	size_t cap, n;
};

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static struct art_slot *
art_find(struct art_table *t, const char *id)
{
	struct art_slot *nv, *s;
	size_t i, j, ncap;

	if (t->n * 2 >= t->cap) {
		ncap = t->cap ? t->cap * 2 : 64;
		if ((nv = calloc(ncap, sizeof(*nv))) == NULL)
			return NULL;
		for (i = 0; i < t->cap; i++) {
			if (t->v[i].id[0] == '\0')
				continue;
			j = fnv1a(t->v[i].id) & (ncap - 1);
			while (nv[j].id[0] != '\0')
				j = (j + 1) & (ncap - 1);
			nv[j] = t->v[i];
		}
		free(t->v);
		t->v = nv;
		t->cap = ncap;
	}
	i = fnv1a(id) & (t->cap - 1);
	for (;;) {
		s = &t->v[i];
		if (s->id[0] == '\0') {
			memcpy(s->id, id, 65);
			s->h.kind = -1;
			t->n++;
			return s;
		}
		if (strcmp(s->id, id) == 0)
			return s;
		i = (i + 1) & (t->cap - 1);
	}
}

struct verify_state {
	struct ck_custody_report *rep;
	struct art_table arts;
	int64_t expect_id;
	unsigned char prev[32];
};

static int
bad(struct ck_custody_report *rep, int64_t id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
bad(struct ck_custody_report *rep, int64_t id, const char *fmt, ...)
{
	va_list ap;

	rep->first_bad = id;
	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
	va_end(ap);
	return ck_err_set(CK_E_TAMPER, "custody: entry %lld: %s",
	    (long long)id, rep->reason);
}

static int
verify_one(const struct store_custody *e, void *arg)
{
	struct verify_state *vs = arg;
	struct art_slot *a;
	unsigned char h[32];
	const char *why;
	char art[65];
	int ev, kd;

	if (e->id != vs->expect_id) {
		if (e->id > vs->expect_id)
			return bad(vs->rep, vs->expect_id,
			    "entry is missing (deleted)");
		return bad(vs->rep, e->id, "entry id out of sequence");
	}
	if (memcmp(e->prev_hash, vs->prev, 32) != 0)
		return bad(vs->rep, e->id, "link to the previous entry is "
		    "broken (entries deleted or reordered)");
	ck_custody_entry_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0)
		return bad(vs->rep, e->id, "entry was altered (hash mismatch)");
	/* A consistent hash over impossible fields: written by something
	 * other than certkeep. */
	ev = ck_custody_event_parse(e->event);
	kd = ck_custody_kind_parse(e->kind);
	if (ev < 0 || kd < 0 || e->artefact == NULL ||
	    hex_norm(e->artefact, art) != 0 || strcmp(art, e->artefact) != 0)
		return bad(vs->rep, e->id, "entry has an unknown event, kind "
		    "or artefact id");
	if ((a = art_find(&vs->arts, art)) == NULL)
		return CK_E_NOMEM;
	if ((why = rule_broken(&a->h, ev, kd)) != NULL)
		return bad(vs->rep, e->id, "entry breaks the artefact's "
		    "history: %s", why);
	history_add(&a->h, ev, kd);
	memcpy(vs->prev, e->hash, 32);
	vs->expect_id++;
	vs->rep->entries++;
	return 0;
}

int
ck_custody_verify_store(struct store *st, struct ck_custody_report *rep)
{
	struct verify_state vs;
	char *head = NULL, hex[65], want[128];
	long long headid;
	int r;

	memset(rep, 0, sizeof(*rep));
	memset(&vs, 0, sizeof(vs));
	vs.rep = rep;
	vs.expect_id = 1;
	r = store_custody_iter(st, NULL, verify_one, &vs);
	free(vs.arts.v);
	if (r != 0)
		return r;
	r = store_meta_get(st, CUSTODY_HEAD_KEY, &head);
	if (r == CK_E_NOTFOUND) {
		ck_err_clear();
		if (rep->entries == 0)
			return 0;
		return bad(rep, 1, "the recorded head of the ledger is "
		    "missing");
	}
	if (r != 0)
		return r;
	ck_hex_encode(vs.prev, 32, hex);
	snprintf(want, sizeof(want), "%lld:%s", (long long)rep->entries, hex);
	if (strcmp(head, want) != 0) {
		headid = strtoll(head, NULL, 10);
		free(head);
		if (headid > rep->entries)
			return bad(rep, rep->entries + 1, "entries at the end "
			    "of the ledger were deleted");
		return bad(rep, rep->entries, "the last entry does not match "
		    "the recorded head of the ledger");
	}
	free(head);
	return 0;
}

int
ck_custody_verify(struct ck_ca *ca, struct ck_custody_report *rep)
{
	return ck_custody_verify_store(ca->st, rep);
}

/* ---- entries held in memory ---- */

static void
entry_clear(struct store_custody *e)
{
	free(e->operator_name);
	free(e->event);
	free(e->artefact);
	free(e->kind);
	free(e->place);
	free(e->detail);
	memset(e, 0, sizeof(*e));
}

void
ck_custody_entries_free(struct store_custody *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		entry_clear(&v[i]);
	free(v);
}

static int
entry_copy(struct store_custody *d, const struct store_custody *s)
{
	memset(d, 0, sizeof(*d));
	d->id = s->id;
	d->time = s->time;
	memcpy(d->prev_hash, s->prev_hash, 32);
	memcpy(d->hash, s->hash, 32);
	d->change_seq = s->change_seq;
	if ((d->operator_name = strdup(s->operator_name ? s->operator_name :
	    "")) == NULL || (d->event = strdup(s->event ? s->event : ""))
	    == NULL || (d->artefact = strdup(s->artefact ? s->artefact : ""))
	    == NULL || (d->kind = strdup(s->kind ? s->kind : "")) == NULL ||
	    (d->place = strdup(s->place ? s->place : "")) == NULL ||
	    (d->detail = strdup(s->detail ? s->detail : "")) == NULL) {
		entry_clear(d);
		return CK_E_NOMEM;
	}
	return 0;
}

struct entry_vec {
	struct store_custody *v;
	size_t n, cap;
};

static int
collect_cb(const struct store_custody *e, void *arg)
{
	struct entry_vec *ev = arg;
	struct store_custody *nv;
	size_t ncap;

	if (ev->n == ev->cap) {
		ncap = ev->cap ? ev->cap * 2 : 16;
		if ((nv = realloc(ev->v, ncap * sizeof(*nv))) == NULL)
			return CK_E_NOMEM;
		ev->v = nv;
		ev->cap = ncap;
	}
	if (entry_copy(&ev->v[ev->n], e) != 0)
		return CK_E_NOMEM;
	ev->n++;
	return 0;
}

/* ---- the custody document ---- */

static json_t *
entry_json(const struct store_custody *e)
{
	char t[32], ph[65], h[65];

	ck_time_format(e->time, t, sizeof(t));
	ck_hex_encode(e->prev_hash, 32, ph);
	ck_hex_encode(e->hash, 32, h);
	return json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:s, s:s}", "id", (json_int_t)e->id, "time", t, "time_unix",
	    (json_int_t)e->time, "operator", e->operator_name, "event",
	    e->event, "artefact", e->artefact, "kind", e->kind, "place",
	    e->place, "detail", e->detail, "prev_hash", ph, "hash", h);
}

/* The document for the entries V (one artefact), as new text. */
static int
doc_make(const struct store_custody *v, size_t n, char **out)
{
	json_t *doc = NULL, *arr = NULL, *je;
	char t[32], *text = NULL;
	int64_t now = ck_time_now();
	size_t i;
	int r = CK_E_NOMEM;

	ck_time_format(now, t, sizeof(t));
	if ((arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		if ((je = entry_json(&v[i])) == NULL ||
		    json_array_append_new(arr, je) != 0)
			goto out;
	if ((doc = json_pack("{s:s, s:s, s:s, s:s, s:I, s:O}", "format",
	    CK_CUSTODY_FORMAT, "artefact", v[0].artefact, "kind", v[0].kind,
	    "exported", t, "exported_unix", (json_int_t)now, "entries", arr))
	    == NULL)
		goto out;
	if ((text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER))
	    == NULL)
		goto out;
	*out = text;
	r = 0;
out:
	json_decref(arr);
	json_decref(doc);
	return r;
}

int
ck_custody_export_check(struct ck_ca *ca)
{
	if (ca->signer == NULL)
		return ck_err_set(CK_E_STATE, "custody: signing a custody "
		    "record needs the CA key unlocked");
	if (ca->cert == NULL)
		return ck_err_set(CK_E_STATE, "custody: the CA has no "
		    "certificate yet to sign custody records with");
	/* XXX: OpenSSL 3.0's CMS cannot sign with EdDSA. */
	if (ck_key_sign_md(X509_get0_pubkey(ca->cert)) == NULL)
		return ck_err_set(CK_E_STATE, "custody: signed custody "
		    "records need an RSA or EC CA key: OpenSSL %s cannot make "
		    "CMS signatures with EdDSA",
		    OpenSSL_version(OPENSSL_VERSION_STRING));
	return 0;
}

int
ck_custody_export(struct ck_ca *ca, const char *artefact,
    const char *out_path)
{
	struct entry_vec ev = { NULL, 0, 0 };
	unsigned char *der = NULL;
	size_t derlen = 0;
	char art[65], *text = NULL, ad[4200];
	int r;

	if (hex_norm(artefact, art) != 0)
		return ck_err_set(CK_E_INVAL, "custody: the artefact must be "
		    "named by its SHA-256 (64 hex digits)");
	if ((r = ck_custody_export_check(ca)) != 0)
		return r;
	if ((r = store_custody_iter(ca->st, art, collect_cb, &ev)) != 0)
		goto out;
	if (ev.n == 0) {
		r = ck_err_set(CK_E_NOTFOUND, "custody: the ledger has no "
		    "entry for artefact %s", art);
		goto out;
	}
	if ((r = doc_make(ev.v, ev.n, &text)) != 0 ||
	    (r = signer_cms_sign(ca->signer, (const unsigned char *)text,
	    strlen(text), ca->chain, &der, &derlen)) != 0 ||
	    (r = ck_fs_write_atomic(out_path, der, derlen, 0600)) != 0)
		goto out;
	snprintf(ad, sizeof(ad), "%zu entr%s, up to entry %lld, to %s",
	    ev.n, ev.n == 1 ? "y" : "ies", (long long)ev.v[ev.n - 1].id,
	    out_path);
	r = ck_ca_audit(ca, "custody-export", art, AUDIT_OK, ad);
out:
	ck_custody_entries_free(ev.v, ev.n);
	free(text);
	OPENSSL_free(der);
	return r;
}

int
ck_custody_list_json(struct store *st, const char *artefact, char **out)
{
	struct entry_vec ev = { NULL, 0, 0 };
	json_t *arr = NULL, *je;
	char *text = NULL;
	size_t i;
	int r;

	if ((r = store_custody_iter(st, artefact, collect_cb, &ev)) != 0)
		goto out;
	r = CK_E_NOMEM;
	if ((arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < ev.n; i++) {
		if ((je = entry_json(&ev.v[i])) == NULL) {
			r = ck_err_set(CK_E_INVAL, "custody: entry %lld is not "
			    "UTF-8 text", (long long)ev.v[i].id);
			goto out;
		}
		if (json_array_append_new(arr, je) != 0)
			goto out;
	}
	if ((text = json_dumps(arr, JSON_INDENT(1) | JSON_PRESERVE_ORDER))
	    == NULL)
		goto out;
	*out = text;
	r = 0;
out:
	json_decref(arr);
	ck_custody_entries_free(ev.v, ev.n);
	return r;
}

/* A string member that must be present, without NULs, within MAX. */
static int
get_str(json_t *o, const char *key, size_t max, const char **out)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (v == NULL || !json_is_string(v))
		return ck_err_set(CK_E_PARSE, "custody file: \"%s\" is missing "
		    "or not a string", key);
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || strlen(s) > max ||
	    !text_ok(s))
		return ck_err_set(CK_E_PARSE, "custody file: \"%s\" is not "
		    "valid text", key);
	*out = s;
	return 0;
}

static int
get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL || !json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return ck_err_set(CK_E_PARSE, "custody file: \"%s\" is missing "
		    "or not a valid integer", key);
	*out = json_integer_value(v);
	return 0;
}

/* Only the keys in ALLOWED (NULL-terminated), all of them present. */
static int
only_keys(json_t *o, const char *const *allowed, const char *what)
{
	const char *k;
	json_t *v;
	size_t i, n = 0;

	json_object_foreach(o, k, v) {
		(void)v;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return ck_err_set(CK_E_PARSE, "custody file: unknown "
			    "member \"%.40s\" in %s", k, what);
		n++;
	}
	for (i = 0; allowed[i] != NULL; i++)
		;
	if (n != i)
		return ck_err_set(CK_E_PARSE, "custody file: members missing "
		    "from %s", what);
	return 0;
}

/* "time" must be the text form of "time_unix" (both are signed; a
 * reader who trusts the text must not be misled). */
static int
time_pair(json_t *o, const char *tkey, const char *ukey, int64_t *out)
{
	const char *t = NULL;
	char want[32];
	int r;

	if ((r = get_str(o, tkey, 31, &t)) != 0 ||
	    (r = get_int(o, ukey, 0, CUSTODY_TIME_MAX, out)) != 0)
		return r;
	ck_time_format(*out, want, sizeof(want));
	if (strcmp(t, want) != 0)
		return ck_err_set(CK_E_PARSE, "custody file: \"%s\" does not "
		    "match \"%s\"", tkey, ukey);
	return 0;
}

static int
entry_from_json(json_t *o, const char *art, const char *kind,
    struct store_custody *e)
{
	static const char *const keys[] = { "id", "time", "time_unix",
	    "operator", "event", "artefact", "kind", "place", "detail",
	    "prev_hash", "hash", NULL };
	struct store_custody tmp;
	const char *op, *ev, *ea, *ek, *pl, *de, *ph, *h;
	int r;

	memset(&tmp, 0, sizeof(tmp));
	if (!json_is_object(o))
		return ck_err_set(CK_E_PARSE, "custody file: an entry is not "
		    "an object");
	if ((r = only_keys(o, keys, "an entry")) != 0 ||
	    (r = get_int(o, "id", 1, INT64_MAX, &tmp.id)) != 0 ||
	    (r = time_pair(o, "time", "time_unix", &tmp.time)) != 0 ||
	    (r = get_str(o, "operator", CK_CUSTODY_FIELD_MAX, &op)) != 0 ||
	    (r = get_str(o, "event", 16, &ev)) != 0 ||
	    (r = get_str(o, "artefact", 64, &ea)) != 0 ||
	    (r = get_str(o, "kind", 16, &ek)) != 0 ||
	    (r = get_str(o, "place", CK_CUSTODY_FIELD_MAX, &pl)) != 0 ||
	    (r = get_str(o, "detail", CK_CUSTODY_DETAIL_MAX, &de)) != 0 ||
	    (r = get_str(o, "prev_hash", 64, &ph)) != 0 ||
	    (r = get_str(o, "hash", 64, &h)) != 0)
		return r;
	if (ck_custody_event_parse(ev) < 0)
		return ck_err_set(CK_E_PARSE, "custody file: entry %lld has an "
		    "unknown event", (long long)tmp.id);
	if (strcmp(ea, art) != 0 || strcmp(ek, kind) != 0)
		return ck_err_set(CK_E_PARSE, "custody file: entry %lld is of "
		    "another artefact or kind", (long long)tmp.id);
	if (op[0] == '\0' || pl[0] == '\0')
		return ck_err_set(CK_E_PARSE, "custody file: entry %lld has no "
		    "operator or place", (long long)tmp.id);
	if (ck_hex_decode(ph, strlen(ph), tmp.prev_hash, 32) != 0 ||
	    ck_hex_decode(h, strlen(h), tmp.hash, 32) != 0)
		return ck_err_set(CK_E_PARSE, "custody file: entry %lld has a "
		    "malformed hash", (long long)tmp.id);
	tmp.operator_name = (char *)op;
	tmp.event = (char *)ev;
	tmp.artefact = (char *)ea;
	tmp.kind = (char *)ek;
	tmp.place = (char *)pl;
	tmp.detail = (char *)de;
	return entry_copy(e, &tmp);
}

int
ck_custody_parse(const char *json, size_t len, struct store_custody **out,
    size_t *n, struct ck_custody_report *rep)
{
	static const char *const keys[] = { "format", "artefact", "kind",
	    "exported", "exported_unix", "entries", NULL };
	static const unsigned char zero[32];
	struct store_custody *v = NULL;
	struct history h = { 0, -1, 0 };
	json_t *doc = NULL, *arr;
	json_error_t jerr;
	const char *fmt, *art, *kind, *why;
	char norm[65];
	unsigned char hh[32];
	size_t i, cnt = 0;
	int64_t exported;
	int r;

	memset(rep, 0, sizeof(*rep));
	if (len > CK_CUSTODY_FILE_MAX)
		return ck_err_set(CK_E_TOOBIG, "custody file: too large");
	if ((doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))
	    == NULL) {
		r = ck_err_set(CK_E_PARSE, "custody file: not JSON: %s (line "
		    "%d)", jerr.text, jerr.line);
		goto out;
	}
	if (!json_is_object(doc)) {
		r = ck_err_set(CK_E_PARSE, "custody file: not a JSON object");
		goto out;
	}
	if ((r = only_keys(doc, keys, "the document")) != 0 ||
	    (r = get_str(doc, "format", 32, &fmt)) != 0 ||
	    (r = get_str(doc, "artefact", 64, &art)) != 0 ||
	    (r = get_str(doc, "kind", 16, &kind)) != 0 ||
	    (r = time_pair(doc, "exported", "exported_unix", &exported)) != 0)
		goto out;
	if (strcmp(fmt, CK_CUSTODY_FORMAT) != 0) {
		r = ck_err_set(CK_E_PARSE, "custody file: format \"%s\" is not "
		    "%s", fmt, CK_CUSTODY_FORMAT);
		goto out;
	}
	if (hex_norm(art, norm) != 0 || strcmp(norm, art) != 0 ||
	    ck_custody_kind_parse(kind) < 0) {
		r = ck_err_set(CK_E_PARSE, "custody file: bad artefact id or "
		    "kind");
		goto out;
	}
	arr = json_object_get(doc, "entries");
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > CUSTODY_FILE_ENTRIES_MAX) {
		r = ck_err_set(CK_E_PARSE, "custody file: \"entries\" is not a "
		    "list of 1 to %d entries", CUSTODY_FILE_ENTRIES_MAX);
		goto out;
	}
	if ((v = calloc(json_array_size(arr), sizeof(*v))) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	snprintf(rep->artefact, sizeof(rep->artefact), "%s", art);
	snprintf(rep->kind, sizeof(rep->kind), "%s", kind);
	for (i = 0; i < json_array_size(arr); i++) {
		if ((r = entry_from_json(json_array_get(arr, i), art, kind,
		    &v[i])) != 0)
			goto out;
		cnt++;
		if (i > 0 && v[i].id <= v[i - 1].id) {
			r = ck_err_set(CK_E_PARSE, "custody file: entry %lld "
			    "is out of order", (long long)v[i].id);
			goto out;
		}
		ck_custody_entry_hash(&v[i], hh);
		if (memcmp(hh, v[i].hash, 32) != 0) {
			r = bad(rep, v[i].id, "entry was altered (hash "
			    "mismatch)");
			goto out;
		}
		/* Neighbours in the chain must link; others are checked
		 * against the ledger. */
		if ((v[i].id == 1 && memcmp(v[i].prev_hash, zero, 32) != 0) ||
		    (i > 0 && v[i].id == v[i - 1].id + 1 &&
		    memcmp(v[i].prev_hash, v[i - 1].hash, 32) != 0)) {
			r = bad(rep, v[i].id, "link to the previous entry is "
			    "broken");
			goto out;
		}
		if ((why = rule_broken(&h, ck_custody_event_parse(v[i].event),
		    ck_custody_kind_parse(kind))) != NULL) {
			r = bad(rep, v[i].id, "entry breaks the artefact's "
			    "history: %s", why);
			goto out;
		}
		history_add(&h, ck_custody_event_parse(v[i].event),
		    ck_custody_kind_parse(kind));
	}
	rep->entries = (int64_t)cnt;
	rep->last_id = v[cnt - 1].id;
	if (out != NULL) {
		*out = v;
		*n = cnt;
		v = NULL;
	}
	r = 0;
out:
	ck_custody_entries_free(v, cnt);
	json_decref(doc);
	return r;
}

/* ---- checking a file ---- */

static int
same_entry(const struct store_custody *a, const struct store_custody *b)
{
	return a->id == b->id && a->time == b->time &&
	    strcmp(a->operator_name, b->operator_name) == 0 &&
	    strcmp(a->event, b->event) == 0 &&
	    strcmp(a->artefact, b->artefact) == 0 &&
	    strcmp(a->kind, b->kind) == 0 &&
	    strcmp(a->place, b->place) == 0 &&
	    strcmp(a->detail, b->detail) == 0 &&
	    memcmp(a->prev_hash, b->prev_hash, 32) == 0 &&
	    memcmp(a->hash, b->hash, 32) == 0;
}

struct match_state {
	const struct store_custody *v;	/* the file's entries */
	size_t n, i;			/* next file entry to match */
	struct ck_custody_report *rep;
};

static int
match_cb(const struct store_custody *e, void *arg)
{
	struct match_state *ms = arg;
	struct store_custody s = *e;

	if (ms->i == ms->n) {
		if (e->id > ms->v[ms->n - 1].id)
			ms->rep->later++;
		return 0;
	}
	if (e->id < ms->v[ms->i].id)
		return bad(ms->rep, e->id, "the ledger's entry %lld of this "
		    "artefact is missing from the file (a gap)",
		    (long long)e->id);
	if (e->id > ms->v[ms->i].id)
		return bad(ms->rep, ms->v[ms->i].id, "the file's entry %lld is "
		    "not in the ledger (or not for this artefact)",
		    (long long)ms->v[ms->i].id);
	/* Rows as stored may hold NULLs; compare them as "". */
	s.operator_name = e->operator_name ? e->operator_name : (char *)"";
	s.event = e->event ? e->event : (char *)"";
	s.artefact = e->artefact ? e->artefact : (char *)"";
	s.kind = e->kind ? e->kind : (char *)"";
	s.place = e->place ? e->place : (char *)"";
	s.detail = e->detail ? e->detail : (char *)"";
	if (!same_entry(&s, &ms->v[ms->i]))
		return bad(ms->rep, e->id, "the file's entry %lld differs from "
		    "the ledger's", (long long)e->id);
	ms->i++;
	return 0;
}

static int
check_against_store(struct store *st, const struct store_custody *v,
    size_t n, struct ck_custody_report *rep)
{
	struct ck_custody_report lrep;
	struct match_state ms;
	int r;

	if ((r = ck_custody_verify_store(st, &lrep)) != 0) {
		if (r == CK_E_TAMPER)
			return bad(rep, lrep.first_bad, "the ledger itself: "
			    "%.200s", lrep.reason);
		return r;
	}
	memset(&ms, 0, sizeof(ms));
	ms.v = v;
	ms.n = n;
	ms.rep = rep;
	if ((r = store_custody_iter(st, rep->artefact, match_cb, &ms)) != 0)
		return r;
	if (ms.i < n)
		return bad(rep, v[ms.i].id, "the file's entry %lld is not in "
		    "the ledger (or not for this artefact)",
		    (long long)v[ms.i].id);
	return 0;
}

int
ck_custody_check_buf(const unsigned char *buf, size_t len,
    STACK_OF(X509) *trusted, struct store *st, struct ck_custody_report *rep)
{
	struct store_custody *v = NULL;
	char *content = NULL;
	size_t clen = 0, n = 0;
	int r;

	memset(rep, 0, sizeof(*rep));
	if ((r = ck_cms_open(buf, len, CK_CUSTODY_FILE_MAX, trusted, "custody file",
	    &content, &clen)) != 0 ||
	    (r = ck_custody_parse(content, clen, &v, &n, rep)) != 0)
		goto out;
	if (st != NULL)
		r = check_against_store(st, v, n, rep);
out:
	ck_custody_entries_free(v, n);
	free(content);
	return r;
}

int
ck_custody_check_file(const char *path, STACK_OF(X509) *trusted,
    struct store *st, struct ck_custody_report *rep)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	memset(rep, 0, sizeof(*rep));
	if ((r = ck_fs_read(path, CK_CUSTODY_FILE_MAX, &buf, &len)) != 0)
		return r;
	r = ck_custody_check_buf(buf, len, trusted, st, rep);
	free(buf);
	return r;
}

int
ck_custody_file_sha256(const char *path, char hex[65])
{
	unsigned char buf[65536], md[32];
	unsigned int mdlen = sizeof(md);
	EVP_MD_CTX *ctx = NULL;
	ssize_t got;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ck_err_set(errno == ENOENT ? CK_E_NOTFOUND : CK_E_IO,
		    "cannot open %s: %s", path, strerror(errno));
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "SHA-256");
		goto out;
	}
	for (;;) {
		got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = ck_err_set(CK_E_IO, "cannot read %s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1) {
			r = ck_err_ssl(CK_E_CRYPTO, "SHA-256");
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "SHA-256");
		goto out;
	}
	ck_hex_encode(md, 32, hex);
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return r;
}
