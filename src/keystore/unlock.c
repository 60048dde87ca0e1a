/*
 * unlock.c - M-of-N unlock of a CA key file (unlock.h).
 */
#include "keystore/unlock.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/keybackup.h"
#include "ca/ca.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "keystore/keystore.h"

struct unlock_collector {
	unsigned m, n;
	char set[33], fp[65];
	struct ck_keyshare *ref;	/* the first share in, value wiped */
	struct ck_secret *values;	/* M values, CK_KEYSHARE_VALUE_LEN each */
	unsigned char xs[CK_KEYBACKUP_MAX_SHARES];
	unsigned have;
	struct unlock_event ev[UNLOCK_EVENTS_MAX];
	size_t nev;
};

static int
hex_ok(const char *s, size_t bytes)
{
	unsigned char buf[64];

	return bytes <= sizeof(buf) && s != NULL &&
	    ck_hex_decode(s, strlen(s), buf, bytes) == 0;
}

int
unlock_collector_new(unsigned m, unsigned n, const char *set_hex,
    const char *fp_hex, struct unlock_collector **out)
{
	struct unlock_collector *c;

	*out = NULL;
	if (m < 2 || n < m || n > CK_KEYBACKUP_MAX_SHARES ||
	    !hex_ok(set_hex, 16) || !hex_ok(fp_hex, 32))
		return ck_err_set(CK_E_INVAL, "unlock: bad share set "
		    "parameters");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CK_E_NOMEM;
	if ((c->values = ck_secret_new((size_t)m *
	    CK_KEYSHARE_VALUE_LEN)) == NULL) {
		free(c);
		return CK_E_NOMEM;
	}
	c->m = m;
	c->n = n;
	snprintf(c->set, sizeof(c->set), "%s", set_hex);
	snprintf(c->fp, sizeof(c->fp), "%s", fp_hex);
	*out = c;
	return 0;
}

int
unlock_collector_from_config(const struct ck_config *cfg,
    struct unlock_collector **out)
{
	unsigned m = 0, n = 0;

	*out = NULL;
	if (cfg->unlock_shares[0] == '\0')
		return 0;
	/* ck_config_parse() checked the form. */
	if (sscanf(cfg->unlock_shares, "%u/%u", &m, &n) != 2)
		return ck_err_set(CK_E_PARSE, "[ca] unlock_shares: bad value");
	return unlock_collector_new(m, n, cfg->unlock_set,
	    cfg->unlock_key_fingerprint, out);
}

int
unlock_collector_for_home(const char *home, struct unlock_collector **out)
{
	struct ck_config *cfg = NULL;
	unsigned char *text = NULL;
	size_t len = 0;
	char path[4096];
	int r;

	*out = NULL;
	if ((r = ck_path_join(path, sizeof(path), home, CK_CONFIG_FILE)) != 0 ||
	    (r = ck_fs_read(path, CK_CONFIG_MAX, &text, &len)) != 0 ||
	    (r = ck_config_parse((const char *)text, len, &cfg)) != 0)
		goto out;
	r = unlock_collector_from_config(cfg, out);
out:
	ck_config_free(cfg);
	free(text);
	return r;
}

unsigned
unlock_collector_have(const struct unlock_collector *c)
{
	return c->have;
}

unsigned
unlock_collector_need(const struct unlock_collector *c)
{
	return c->m;
}

size_t
unlock_collector_events(const struct unlock_collector *c,
    const struct unlock_event **ev)
{
	*ev = c->ev;
	return c->nev;
}

/* Copy as much of SRC as fits. */
static void
copy_trunc(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
log_event(struct unlock_collector *c, const char *from,
    const struct ck_keyshare *s, int ok, const char *why)
{
	struct unlock_event *e;

	if (c->nev == UNLOCK_EVENTS_MAX)
		return;
	e = &c->ev[c->nev++];
	memset(e, 0, sizeof(*e));
	e->at = ck_time_now();
	copy_trunc(e->from, sizeof(e->from), from != NULL ? from : "?");
	if (s != NULL) {
		snprintf(e->custodian, sizeof(e->custodian), "%s",
		    ck_keyshare_custodian(s));
		e->index = ck_keyshare_index(s);
	}
	e->ok = ok;
	copy_trunc(e->why, sizeof(e->why), why != NULL ? why : "");
}

/* Why S does not belong here, or NULL. WHY gets the message. */
static int
share_check(struct unlock_collector *c, const struct ck_keyshare *s,
    char *why, size_t whysz)
{
	char set[33], fp[65], who[128];
	const char *what;
	unsigned i;

	snprintf(who, sizeof(who), "share %u (%s)", ck_keyshare_index(s),
	    ck_keyshare_custodian(s));
	ck_keyshare_set_hex(s, set);
	ck_keyshare_fp_hex(s, fp);
	if (ck_keyshare_purpose(s) != CK_SHARE_UNLOCK) {
		snprintf(why, whysz, "%s is a share of a %s, not an unlock "
		    "share", who, ck_keyshare_purpose(s) ==
		    CK_SHARE_KEY_BACKUP ? "key backup (certkeep key restore "
		    "takes it)" : ck_share_purpose_name(ck_keyshare_purpose(s)));
		return CK_E_INVAL;
	}
	if (strcmp(fp, c->fp) != 0) {
		snprintf(why, whysz, "%s is for another key (fingerprint "
		    "%.16s..., this CA's key is %.16s...)", who, fp, c->fp);
		return CK_E_INVAL;
	}
	if (strcmp(set, c->set) != 0) {
		snprintf(why, whysz, "%s is of share set %s; this key needs "
		    "set %s (the share is from an earlier or another "
		    "protection)", who, set, c->set);
		return CK_E_INVAL;
	}
	if (ck_keyshare_threshold(s) != c->m || ck_keyshare_count(s) != c->n) {
		snprintf(why, whysz, "%s says %u of %u; the home records %u "
		    "of %u", who, ck_keyshare_threshold(s),
		    ck_keyshare_count(s), c->m, c->n);
		return CK_E_TAMPER;
	}
	if (c->ref != NULL && (what = ck_keyshare_disagree(c->ref,
	    s)) != NULL) {
		snprintf(why, whysz, "%s disagrees with the shares already "
		    "given on %s: it is altered", who, what);
		return CK_E_TAMPER;
	}
	for (i = 0; i < c->have; i++)
		if (c->xs[i] == ck_keyshare_index(s)) {
			snprintf(why, whysz, "%s was given already", who);
			return CK_E_INVAL;
		}
	return 0;
}

int
unlock_collector_add(struct unlock_collector *c, const unsigned char *text,
    size_t len, const char *from)
{
	struct ck_keyshare *s = NULL;
	char why[1024];
	int r;

	if (c->have == c->m) {
		log_event(c, from, NULL, 0, "enough shares are in already");
		return ck_err_set(CK_E_STATE, "all %u shares needed are in "
		    "already", c->m);
	}
	if (len > UNLOCK_SHARE_MAX) {
		r = ck_err_set(CK_E_TOOBIG, "not a key share: over %u bytes",
		    UNLOCK_SHARE_MAX);
		log_event(c, from, NULL, 0, ck_err_msg());
		return r;
	}
	if ((r = ck_keyshare_parse(text, len, &s)) != 0) {
		snprintf(why, sizeof(why), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		log_event(c, from, NULL, 0, why);
		return ck_err_set(r, "%s", why);
	}
	if ((r = share_check(c, s, why, sizeof(why))) != 0) {
		log_event(c, from, s, 0, why);
		ck_keyshare_free(s);
		return ck_err_set(r, "%s", why);
	}
	ck_keyshare_take_value(s, c->values->buf +
	    (size_t)c->have * CK_KEYSHARE_VALUE_LEN);
	c->xs[c->have++] = (unsigned char)ck_keyshare_index(s);
	c->values->len = (size_t)c->have * CK_KEYSHARE_VALUE_LEN;
	log_event(c, from, s, 1, NULL);
	if (c->ref == NULL)
		c->ref = s;	/* its value is wiped: it names the set */
	else
		ck_keyshare_free(s);
	return 0;
}

/* Forget every value (and the set's reference share). */
static void
collector_reset(struct unlock_collector *c)
{
	ck_wipe(c->values->buf, c->values->cap);
	c->values->len = 0;
	memset(c->xs, 0, sizeof(c->xs));
	c->have = 0;
	ck_keyshare_free(c->ref);
	c->ref = NULL;
}

int
unlock_secret_passphrase(const struct ck_secret *s, struct ck_secret **pw)
{
	struct ck_secret *p;

	if (s == NULL || s->len != UNLOCK_SECRET_LEN)
		return ck_err_set(CK_E_INVAL, "unlock: the secret has %zu "
		    "bytes, not %d", s != NULL ? s->len : 0,
		    UNLOCK_SECRET_LEN);
	if ((p = ck_secret_new(2 * UNLOCK_SECRET_LEN)) == NULL)
		return CK_E_NOMEM;
	ck_hex_encode(s->buf, s->len, (char *)p->buf);
	p->len = 2 * UNLOCK_SECRET_LEN;
	*pw = p;
	return 0;
}

int
unlock_collector_finish(struct unlock_collector *c, struct ck_secret **pw)
{
	struct ck_secret *s = NULL;
	int r;

	if (c->have < c->m)
		return ck_err_set(CK_E_STATE, "%u of %u shares given", c->have,
		    c->m);
	r = ck_keyshare_join_values(c->ref, c->values->buf, c->xs,
	    (int)c->have, &s);
	/* The values are of no further use either way. */
	collector_reset(c);
	if (r == CK_E_TAMPER)
		return ck_err_set(r, "the %u shares do not rebuild the unlock "
		    "secret: one of them is altered (its checksum recomputed)."
		    " Every share given is dropped: give them again, "
		    "checking each custodian's copy", c->m);
	if (r != 0)
		return r;
	r = unlock_secret_passphrase(s, pw);
	ck_secret_free(s);
	return r;
}

int
unlock_collector_holds_values(const struct unlock_collector *c)
{
	unsigned char acc = 0;
	size_t i;

	for (i = 0; i < c->values->cap; i++)
		acc |= c->values->buf[i];
	return acc != 0;
}

void
unlock_collector_free(struct unlock_collector *c)
{
	if (c == NULL)
		return;
	ck_keyshare_free(c->ref);
	ck_secret_free(c->values);
	ck_wipe(c, sizeof(*c));
	free(c);
}

/* ---- re-encrypting key files ---------------------------------------- */

static int
new_name(const char *path, char *buf, size_t bufsz)
{
	if (snprintf(buf, bufsz, "%s.new", path) >= (int)bufsz)
		return ck_err_set(CK_E_TOOBIG, "path too long: %s", path);
	return 0;
}

void
unlock_rekey_abort(const char *const *paths, int npaths)
{
	char nn[4200];
	int i;

	for (i = 0; i < npaths; i++)
		if (new_name(paths[i], nn, sizeof(nn)) == 0)
			(void)unlink(nn);
}

int
unlock_rekey_prepare(const char *const *paths, int npaths,
    const struct ck_secret *oldpw, const struct ck_secret *newpw, int log2n)
{
	EVP_PKEY *key = NULL, *back = NULL;
	char nn[4200];
	int i, made = 0, r = 0;

	for (i = 0; i < npaths; i++) {
		if ((r = new_name(paths[i], nn, sizeof(nn))) != 0)
			goto out;
		if (ck_fs_exists(nn)) {
			r = ck_err_set(CK_E_EXISTS, "%s exists (left by an "
			    "interrupted run?): see docs/keys.md before "
			    "removing it", nn);
			goto out;
		}
	}
	for (i = 0; i < npaths; i++, made = i) {
		if (!ck_fs_exists(paths[i]))
			continue;
		if ((r = new_name(paths[i], nn, sizeof(nn))) != 0 ||
		    (r = keystore_load(paths[i], oldpw, &key)) != 0 ||
		    (r = keystore_save(nn, key, newpw, log2n)) != 0)
			goto out;
		made = i + 1;
		if ((r = keystore_load(nn, newpw, &back)) != 0)
			goto out;
		if (EVP_PKEY_eq(key, back) != 1) {
			r = ck_err_set(CK_E_INTERNAL, "%s does not hold the key "
			    "of %s", nn, paths[i]);
			goto out;
		}
		EVP_PKEY_free(key);
		EVP_PKEY_free(back);
		key = back = NULL;
	}
out:
	EVP_PKEY_free(key);
	EVP_PKEY_free(back);
	if (r != 0)
		unlock_rekey_abort(paths, made);
	return r;
}

int
unlock_rekey_commit(const char *const *paths, int npaths)
{
	char nn[4200], dir[4200];
	int i, r;

	for (i = 0; i < npaths; i++) {
		if ((r = new_name(paths[i], nn, sizeof(nn))) != 0)
			return r;
		if (!ck_fs_exists(nn))
			continue;
		if (rename(nn, paths[i]) != 0)
			return ck_err_set(CK_E_IO, "rename %s: %s", nn,
			    strerror(errno));
		snprintf(dir, sizeof(dir), "%s", paths[i]);
		if ((r = ck_fs_sync_dir(dirname(dir))) != 0)
			return r;
	}
	return 0;
}

/* ---- the configuration ---------------------------------------------- */

static const char *const unlock_keys[] = {
	"unlock_shares", "unlock_set", "unlock_key_fingerprint"
};

/* Is line L (LEN bytes) a setting of one of unlock_keys? */
static int
is_unlock_line(const char *l, size_t len)
{
	size_t i, k, kl;

	for (i = 0; i < len && (l[i] == ' ' || l[i] == '\t'); i++)
		;
	for (k = 0; k < sizeof(unlock_keys) / sizeof(unlock_keys[0]); k++) {
		kl = strlen(unlock_keys[k]);
		if (len - i > kl && memcmp(l + i, unlock_keys[k], kl) == 0 &&
		    (l[i + kl] == ' ' || l[i + kl] == '\t' ||
		    l[i + kl] == '='))
			return 1;
	}
	return 0;
}

/* A section header "[NAME]": NAME (into buf) or "" if not one. */
static void
section_of(const char *l, size_t len, char *buf, size_t bufsz)
{
	size_t i = 0, j;

	buf[0] = '\0';
	while (i < len && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i >= len || l[i] != '[')
		return;
	for (j = i + 1; j < len && l[j] != ']'; j++)
		;
	if (j >= len || j - i - 1 >= bufsz)
		return;
	memcpy(buf, l + i + 1, j - i - 1);
	buf[j - i - 1] = '\0';
}

int
unlock_config_edit(const char *text, size_t len, const char *shares,
    const char *set, const char *fp, char **out, size_t *outlen)
{
	char *buf, add[256], sect[128], cur[128] = "";
	size_t cap, o = 0, i = 0, ll, al = 0;
	const char *l, *nl;
	int placed = 0;

	if ((shares == NULL) != (set == NULL) || (set == NULL) != (fp == NULL))
		return ck_err_set(CK_E_INVAL, "unlock: all three settings or "
		    "none");
	if (shares != NULL) {
		int n = snprintf(add, sizeof(add), "unlock_shares = %s\n"
		    "unlock_set = %s\nunlock_key_fingerprint = %s\n", shares,
		    set, fp);
		if (n < 0 || (size_t)n >= sizeof(add))
			return ck_err_set(CK_E_INVAL, "unlock: settings too "
			    "long");
		al = (size_t)n;
	} else
		placed = 1;
	cap = len + al + 16;
	if ((buf = malloc(cap)) == NULL)
		return CK_E_NOMEM;
	while (i < len) {
		l = text + i;
		nl = memchr(l, '\n', len - i);
		ll = nl != NULL ? (size_t)(nl - l) + 1 : len - i;
		i += ll;
		section_of(l, ll, sect, sizeof(sect));
		if (sect[0] != '\0')
			snprintf(cur, sizeof(cur), "%s", sect);
		if (strcmp(cur, "ca") == 0 && sect[0] == '\0' &&
		    is_unlock_line(l, ll))
			continue;	/* replaced below */
		memcpy(buf + o, l, ll);
		o += ll;
		if (nl == NULL) {
			buf[o++] = '\n';
		}
		if (!placed && strcmp(sect, "ca") == 0) {
			memcpy(buf + o, add, al);
			o += al;
			placed = 1;
		}
	}
	if (!placed) {
		memcpy(buf + o, "\n[ca]\n", 6);
		o += 6;
		memcpy(buf + o, add, al);
		o += al;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}
