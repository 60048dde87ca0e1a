/*
 * checkpoint.c - signed checkpoints of the audit log and verifiable
 * extracts (checkpoint.h).
 */
#include "audit/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "ca/ca.h"
#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "signer/signer.h"
#include "x509/cms.h"

#define CP_TAG "certkeep-audit-checkpoint"
#define CP_CMS_MAX (64u * 1024)
#define EXPORT_TAG "certkeep-audit-export"
#define HEAD_TAG "certkeep-audit-head"
#define HEAD_KEY "audit_head_signed"

/*
 * The signed head: a second signature, over the checkpoint entry just
 * written (its id and its own hash, which covers the first signature),
 * kept in the store's metadata and replaced by every checkpoint. Nobody
 * can make it for an earlier checkpoint afterwards, so a log cut back to
 * an earlier checkpoint no longer matches it.
 */
static int
head_sign(struct ck_ca *ca)
{
	unsigned char h[32], *der = NULL;
	char hex[65], content[256], *val = NULL;
	size_t derlen = 0;
	int64_t id;
	int r;

	if ((r = store_audit_last(ca->st, &id, h)) != 0)
		return r;
	ck_hex_encode(h, 32, hex);
	snprintf(content, sizeof(content), "{\"" HEAD_TAG "\":1,"
	    "\"checkpoint_id\":%lld,\"checkpoint_hash\":\"%s\","
	    "\"time\":%lld}", (long long)id, hex, (long long)ck_time_now());
	if ((r = signer_cms_sign(ca->signer, (const unsigned char *)content,
	    strlen(content), NULL, &der, &derlen)) != 0)
		return r;
	if ((val = malloc(2 * derlen + 1)) == NULL) {
		OPENSSL_free(der);
		return CK_E_NOMEM;
	}
	ck_hex_encode(der, derlen, val);
	OPENSSL_free(der);
	r = store_meta_set(ca->st, HEAD_KEY, val);
	free(val);
	return r;
}

static int
last_is_cp(const struct store_audit_entry *e, void *arg)
{
	*(int *)arg = strcmp(e->action, AUDIT_CHECKPOINT_ACTION) == 0;
	return 0;
}

int
audit_checkpoint(struct ck_ca *ca, const char *user, int *written)
{
	unsigned char prev[32], *der = NULL;
	char hex[65], obj[32], *content = NULL, *detail = NULL;
	size_t derlen = 0;
	int64_t id;
	int r, is_cp = 0;

	if (written != NULL)
		*written = 0;
	if (ca->signer == NULL)
		return ck_err_set(CK_E_STATE, "audit checkpoint: the CA key "
		    "is locked");
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_audit_last(ca->st, &id, prev)) != 0)
		goto fail;
	/* Nothing new since the last checkpoint: none needed. */
	if (id > 0 && (r = store_audit_iter(ca->st, id, last_is_cp,
	    &is_cp)) != 0)
		goto fail;
	if (is_cp || id == 0) {
		store_tx_rollback(ca->st);
		return 0;
	}
	ck_hex_encode(prev, 32, hex);
	if ((content = malloc(256)) == NULL) {
		r = CK_E_NOMEM;
		goto fail;
	}
	snprintf(content, 256, "{\"" CP_TAG "\":1,\"last_id\":%lld,"
	    "\"last_hash\":\"%s\",\"time\":%lld}", (long long)id, hex,
	    (long long)ck_time_now());
	if ((r = signer_cms_sign(ca->signer, (const unsigned char *)content,
	    strlen(content), NULL, &der, &derlen)) != 0)
		goto fail;
	if ((detail = malloc(2 * derlen + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto fail;
	}
	ck_hex_encode(der, derlen, detail);
	snprintf(obj, sizeof(obj), "%lld", (long long)id);
	if ((r = audit_append(ca->st, user, AUDIT_CHECKPOINT_ACTION, obj,
	    AUDIT_OK, detail)) != 0 || (r = head_sign(ca)) != 0)
		goto fail;
	if ((r = store_tx_commit(ca->st)) != 0)
		goto out;
	if (written != NULL)
		*written = 1;
	goto out;
fail:
	store_tx_rollback(ca->st);
out:
	OPENSSL_free(der);
	free(detail);
	free(content);
	return r;
}

/* ---- verification ---- */

struct cp_state {
	STACK_OF(X509) *trusted;
	struct audit_signed_report *rep;
	unsigned char last_cp_hash[32];
	int key_used;		/* an entry that needed the certified key */
};

/* Check checkpoint E: its signature, and that it names the entry before
 * it (whose hash is E's prev_hash). */
static int
cp_check(const struct store_audit_entry *e, struct cp_state *cs)
{
	unsigned char *der = NULL, h[32];
	char *content = NULL;
	size_t dlen = strlen(e->detail) / 2, clen = 0;
	json_t *j = NULL;
	const char *lh;
	json_int_t lid;
	int r = CK_E_TAMPER;

	if (dlen == 0 || dlen > CP_CMS_MAX ||
	    (der = malloc(dlen)) == NULL ||
	    ck_hex_decode(e->detail, strlen(e->detail), der, dlen) != 0) {
		snprintf(cs->rep->chain.reason, sizeof(cs->rep->chain.reason),
		    "checkpoint: the signature is not hex");
		goto out;
	}
	ck_err_clear();
	if (ck_cms_open(der, dlen, CP_CMS_MAX, cs->trusted, "audit checkpoint",
	    &content, &clen) != 0) {
		snprintf(cs->rep->chain.reason, sizeof(cs->rep->chain.reason),
		    "%s", ck_err_msg());
		goto out;
	}
	j = json_loadb(content, clen, JSON_REJECT_DUPLICATES, NULL);
	lh = json_string_value(json_object_get(j, "last_hash"));
	lid = json_integer_value(json_object_get(j, "last_id"));
	if (j == NULL || json_integer_value(json_object_get(j, CP_TAG)) != 1 ||
	    lh == NULL || ck_hex_decode(lh, strlen(lh), h, 32) != 0) {
		snprintf(cs->rep->chain.reason, sizeof(cs->rep->chain.reason),
		    "checkpoint: the signed content is not a checkpoint");
		goto out;
	}
	if (lid != e->id - 1 || memcmp(h, e->prev_hash, 32) != 0 ||
	    strtoll(e->object, NULL, 10) != e->id - 1) {
		snprintf(cs->rep->chain.reason, sizeof(cs->rep->chain.reason),
		    "checkpoint signed for entry %lld does not follow it "
		    "(entries were removed, replaced or reordered)",
		    (long long)lid);
		goto out;
	}
	cs->rep->checkpoints++;
	cs->rep->last_checkpoint = e->id;
	memcpy(cs->last_cp_hash, e->hash, 32);
	cs->rep->last_checkpoint_time = json_integer_value(
	    json_object_get(j, "time"));
	r = 0;
out:
	json_decref(j);
	free(content);
	free(der);
	return r;
}

static int
head_bad(struct cp_state *cs, const char *why)
{
	cs->rep->chain.first_bad = cs->rep->last_checkpoint;
	snprintf(cs->rep->chain.reason, sizeof(cs->rep->chain.reason), "%s",
	    why);
	return CK_E_TAMPER;
}

/* The signed head must name the last checkpoint of the log. */
static int
head_check(struct store *st, struct cp_state *cs)
{
	unsigned char *der = NULL, h[32];
	char *val = NULL, *content = NULL;
	size_t dlen, clen = 0;
	const char *hh;
	json_t *j = NULL;
	int r;

	r = store_meta_get(st, HEAD_KEY, &val);
	if (r == CK_E_NOTFOUND)
		return head_bad(cs, "the log has checkpoints but its signed "
		    "head is missing");
	if (r != 0)
		return r;
	dlen = strlen(val) / 2;
	if (dlen == 0 || dlen > CP_CMS_MAX || (der = malloc(dlen)) == NULL ||
	    ck_hex_decode(val, strlen(val), der, dlen) != 0) {
		r = head_bad(cs, "the signed head is not hex");
		goto out;
	}
	ck_err_clear();
	if (ck_cms_open(der, dlen, CP_CMS_MAX, cs->trusted, "signed head",
	    &content, &clen) != 0) {
		r = head_bad(cs, ck_err_msg());
		goto out;
	}
	j = json_loadb(content, clen, JSON_REJECT_DUPLICATES, NULL);
	hh = json_string_value(json_object_get(j, "checkpoint_hash"));
	if (j == NULL || json_integer_value(json_object_get(j, HEAD_TAG)) !=
	    1 || hh == NULL || ck_hex_decode(hh, strlen(hh), h, 32) != 0) {
		r = head_bad(cs, "the signed head is not a head");
		goto out;
	}
	if (json_integer_value(json_object_get(j, "checkpoint_id")) !=
	    cs->rep->last_checkpoint ||
	    memcmp(h, cs->last_cp_hash, 32) != 0) {
		char why[200];
		snprintf(why, sizeof(why), "the signed head names checkpoint "
		    "%lld, the log's last is %lld: entries at the end were "
		    "removed or replaced", (long long)json_integer_value(
		    json_object_get(j, "checkpoint_id")),
		    (long long)cs->rep->last_checkpoint);
		r = head_bad(cs, why);
		goto out;
	}
	r = 0;
out:
	json_decref(j);
	free(content);
	free(der);
	free(val);
	return r;
}

/* Entries that only a certified CA key at hand can have produced; after
 * any of them, certkeep has written a checkpoint. */
static int
key_use(const struct store_audit_entry *e)
{
	static const char *const acts[] = { "issue", "crl", "service-start",
	    "backup", NULL };
	size_t i;

	if (strcmp(e->result, AUDIT_OK) != 0)
		return 0;
	for (i = 0; acts[i] != NULL; i++)
		if (strcmp(e->action, acts[i]) == 0)
			return 1;
	return 0;
}

static int
verify_each(const struct store_audit_entry *e, void *arg)
{
	struct cp_state *cs = arg;

	if (key_use(e))
		cs->key_used = 1;
	if (strcmp(e->action, AUDIT_CHECKPOINT_ACTION) != 0)
		return 0;
	return cp_check(e, cs);
}

/* 0 when the CA's key cannot make the CMS signatures of checkpoints
 * (Ed25519 and Ed448 with OpenSSL 3.0): such a log has none. */
static int
cms_capable(STACK_OF(X509) *trusted)
{
	int i, id;

	for (i = 0; i < sk_X509_num(trusted); i++) {
		id = EVP_PKEY_get_base_id(X509_get0_pubkey(
		    sk_X509_value(trusted, i)));
		if (id != EVP_PKEY_ED25519 && id != EVP_PKEY_ED448)
			return 1;
	}
	return 0;
}

int
audit_verify_signed(struct store *st, STACK_OF(X509) *trusted,
    struct audit_signed_report *rep)
{
	struct cp_state cs;
	char *head = NULL;
	int r;

	memset(rep, 0, sizeof(*rep));
	memset(&cs, 0, sizeof(cs));
	cs.trusted = trusted;
	cs.rep = rep;
	r = audit_verify_each(st, verify_each, &cs, &rep->chain);
	if (r == 0 && rep->checkpoints > 0)
		r = head_check(st, &cs);
	else if (r == 0 && ((cs.key_used && cms_capable(trusted)) ||
	    store_meta_get(st, HEAD_KEY, &head) == 0)) {
		/* The key was at hand, so checkpoints were written: a log
		 * without any was rebuilt without them. */
		free(head);
		rep->chain.first_bad = rep->chain.entries;
		snprintf(rep->chain.reason, sizeof(rep->chain.reason),
		    "no signed checkpoint, although %s (if this CA predates "
		    "checkpoints: certkeep audit checkpoint)", cs.key_used ?
		    "the CA key was used" : "the log has a signed head");
		r = CK_E_TAMPER;
	}
	if (r == 0)
		rep->unanchored = rep->chain.entries - rep->last_checkpoint;
	return r;
}

/* ---- extracts ---- */

struct export_state {
	FILE *out;
	int64_t to;
	int64_t last;
	int done;
	int err;
};

static int
export_one(const struct store_audit_entry *e, void *arg)
{
	struct export_state *xs = arg;
	char ph[65], h[65], *s;
	json_t *j;

	if (xs->done)
		return 1;	/* stop the walk */
	ck_hex_encode(e->prev_hash, 32, ph);
	ck_hex_encode(e->hash, 32, h);
	j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "id", (json_int_t)e->id, "time", (json_int_t)e->time, "user",
	    e->user, "action", e->action, "object", e->object, "result",
	    e->result, "detail", e->detail, "prev_hash", ph, "hash", h);
	s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	if (s == NULL) {
		xs->err = CK_E_NOMEM;
		return 1;
	}
	if (fprintf(xs->out, "%s\n", s) < 0)
		xs->err = ck_err_set(CK_E_IO, "cannot write the extract");
	free(s);
	xs->last = e->id;
	if (e->id >= xs->to &&
	    strcmp(e->action, AUDIT_CHECKPOINT_ACTION) == 0)
		xs->done = 1;
	return xs->err != 0;
}

int
audit_export(struct store *st, STACK_OF(X509) *certs, int64_t from,
    int64_t to, FILE *out, int64_t *last)
{
	struct export_state xs;
	unsigned char prev[32];
	BIO *b = NULL;
	BUF_MEM *bm;
	json_t *hdr;
	char *s;
	int64_t head;
	int i, r;

	if ((r = store_audit_last(st, &head, prev)) != 0)
		return r;
	if (to == 0 || to > head)
		to = head;
	if (from < 1 || from > to)
		return ck_err_set(CK_E_INVAL, "audit export: no entries from "
		    "%lld to %lld (the log has %lld)", (long long)from,
		    (long long)to, (long long)head);
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return CK_E_NOMEM;
	for (i = 0; i < sk_X509_num(certs); i++)
		if (PEM_write_bio_X509(b, sk_X509_value(certs, i)) != 1) {
			BIO_free(b);
			return ck_err_ssl(CK_E_CRYPTO, "audit export: PEM");
		}
	BIO_get_mem_ptr(b, &bm);
	hdr = json_pack("{s:i, s:I, s:s%}", EXPORT_TAG, 1, "from",
	    (json_int_t)from, "ca", bm->data, bm->length);
	BIO_free(b);
	s = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
	json_decref(hdr);
	if (s == NULL)
		return CK_E_NOMEM;
	if (fprintf(out, "%s\n", s) < 0) {
		free(s);
		return ck_err_set(CK_E_IO, "cannot write the extract");
	}
	free(s);
	memset(&xs, 0, sizeof(xs));
	xs.out = out;
	xs.to = to;
	r = store_audit_iter(st, from, export_one, &xs);
	if (xs.err != 0)
		return xs.err;
	if (r != 0 && r != 1)
		return r;
	*last = xs.last;
	if (!xs.done)
		return ck_err_set(CK_E_STATE, "audit export: no checkpoint "
		    "covers entry %lld yet (certkeepd writes one every "
		    "checkpoint_interval; offline: certkeep audit checkpoint)",
		    (long long)to);
	return 0;
}

static int
xbad(struct audit_signed_report *rep, int64_t id, const char *why)
{
	rep->chain.first_bad = id;
	snprintf(rep->chain.reason, sizeof(rep->chain.reason), "%s", why);
	return CK_E_TAMPER;
}

/* One line of an extract as an entry (strings borrowed from J). */
static int
x_entry(json_t *j, struct store_audit_entry *e)
{
	const char *ph, *h;

	memset(e, 0, sizeof(*e));
	e->id = json_integer_value(json_object_get(j, "id"));
	e->time = json_integer_value(json_object_get(j, "time"));
	e->user = (char *)json_string_value(json_object_get(j, "user"));
	e->action = (char *)json_string_value(json_object_get(j, "action"));
	e->object = (char *)json_string_value(json_object_get(j, "object"));
	e->result = (char *)json_string_value(json_object_get(j, "result"));
	e->detail = (char *)json_string_value(json_object_get(j, "detail"));
	ph = json_string_value(json_object_get(j, "prev_hash"));
	h = json_string_value(json_object_get(j, "hash"));
	if (!json_is_integer(json_object_get(j, "id")) || e->id < 1 ||
	    e->user == NULL || e->action == NULL || e->object == NULL ||
	    e->result == NULL || e->detail == NULL || ph == NULL ||
	    h == NULL || ck_hex_decode(ph, strlen(ph), e->prev_hash, 32) != 0 ||
	    ck_hex_decode(h, strlen(h), e->hash, 32) != 0)
		return -1;
	return 0;
}

int
audit_export_verify(const unsigned char *buf, size_t len,
    STACK_OF(X509) *trusted, struct audit_signed_report *rep)
{
	const unsigned char *p = buf, *end = buf + len, *nl;
	struct store_audit_entry e;
	struct cp_state cs;
	unsigned char prev[32], h[32];
	int64_t expect = 0;
	int line = 0, r = 0, last_cp = 0;
	json_t *j;

	memset(rep, 0, sizeof(*rep));
	cs.trusted = trusted;
	cs.rep = rep;
	if (len > AUDIT_EXPORT_MAX)
		return ck_err_set(CK_E_TOOBIG, "audit extract: larger than %u "
		    "bytes", AUDIT_EXPORT_MAX);
	while (p < end && r == 0) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return ck_err_set(CK_E_PARSE, "audit extract: line %d "
			    "is not terminated (truncated?)", line + 1);
		j = json_loadb((const char *)p, (size_t)(nl - p),
		    JSON_REJECT_DUPLICATES, NULL);
		p = nl + 1;
		line++;
		if (j == NULL || !json_is_object(j)) {
			json_decref(j);
			return ck_err_set(CK_E_PARSE, "audit extract: line %d "
			    "is not a JSON object", line);
		}
		if (line == 1) {
			if (json_integer_value(json_object_get(j,
			    EXPORT_TAG)) != 1 || (expect = json_integer_value(
			    json_object_get(j, "from"))) < 1) {
				json_decref(j);
				return ck_err_set(CK_E_PARSE, "audit extract: "
				    "not a certkeep audit extract");
			}
			json_decref(j);
			continue;
		}
		if (x_entry(j, &e) != 0) {
			json_decref(j);
			return ck_err_set(CK_E_PARSE, "audit extract: line %d "
			    "is not an entry", line);
		}
		if (e.id != expect)
			r = xbad(rep, expect, e.id > expect ? "entry is missing "
			    "(deleted)" : "entry id out of sequence");
		else if (line > 2 && memcmp(e.prev_hash, prev, 32) != 0)
			r = xbad(rep, e.id, "link to the previous entry is "
			    "broken (entries deleted or reordered)");
		else {
			audit_entry_hash(&e, h);
			if (memcmp(h, e.hash, 32) != 0)
				r = xbad(rep, e.id, "entry was altered (hash "
				    "mismatch)");
		}
		last_cp = r == 0 &&
		    strcmp(e.action, AUDIT_CHECKPOINT_ACTION) == 0;
		if (last_cp && (r = cp_check(&e, &cs)) != 0)
			rep->chain.first_bad = e.id;
		if (r == 0) {
			memcpy(prev, e.hash, 32);
			rep->chain.entries++;
			expect++;
		}
		json_decref(j);
	}
	if (r != 0)
		return r;
	if (rep->chain.entries == 0)
		return ck_err_set(CK_E_PARSE, "audit extract: no entries");
	if (!last_cp)
		return xbad(rep, expect - 1, "the extract does not end with a "
		    "checkpoint (entries at its end were removed?)");
	rep->unanchored = 0;
	return 0;
}
