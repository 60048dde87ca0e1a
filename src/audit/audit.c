#include "audit/audit.h"

#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"

#define AUDIT_HEAD_KEY "audit_head"

const char *
audit_os_user(void)
{
	static char name[64];
	struct passwd *pw;

	if (name[0] != '\0')
		return name;
	pw = getpwuid(geteuid());
	if (pw != NULL && pw->pw_name != NULL)
		snprintf(name, sizeof(name), "%s", pw->pw_name);
	else
		snprintf(name, sizeof(name), "uid:%u", (unsigned)geteuid());
	return name;
}

static _Thread_local char actor[160];

void
audit_actor_set(const char *a)
{
	snprintf(actor, sizeof(actor), "%s", a != NULL ? a : "");
}

const char *
audit_actor(void)
{
	return actor[0] != '\0' ? actor : audit_os_user();
}

static void
put_u64(EVP_MD_CTX *ctx, uint64_t v)
{
	unsigned char b[8];
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	EVP_DigestUpdate(ctx, b, sizeof(b));
}

static void
put_str(EVP_MD_CTX *ctx, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	put_u64(ctx, n);
	if (n > 0)
		EVP_DigestUpdate(ctx, s, n);
}

/* SHA-256 fetched once (EVP_sha256() is looked up on every use): the
 * server hashes an entry per certificate. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void
sha256_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
audit_chain_hash(const char *tag, const int64_t *nums, size_t nnums,
    const char *const *strs, size_t nstrs, const unsigned char prev[32],
    unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 32;
	size_t i;

	memset(out, 0, 32);
	if (ctx == NULL)
		return;
	(void)pthread_once(&sha256_once, sha256_init);
	if (EVP_DigestInit_ex(ctx, sha256_md != NULL ? sha256_md : EVP_sha256(),
	    NULL) == 1) {
		/* The tag with its NUL, as the audit log has always had it. */
		EVP_DigestUpdate(ctx, tag, strlen(tag) + 1);
		for (i = 0; i < nnums; i++)
			put_u64(ctx, (uint64_t)nums[i]);
		for (i = 0; i < nstrs; i++)
			put_str(ctx, strs[i]);
		EVP_DigestUpdate(ctx, prev, 32);
		EVP_DigestFinal_ex(ctx, out, &len);
	}
	EVP_MD_CTX_free(ctx);
}

void
audit_entry_hash(const struct store_audit_entry *e, unsigned char out[32])
{
	const int64_t nums[] = { e->id, e->time };
	const char *const strs[] = { e->user, e->action, e->object,
	    e->result, e->detail };

	audit_chain_hash("certkeep-audit-v1", nums, 2, strs, 5, e->prev_hash,
	    out);
}

int
audit_append(struct store *st, const char *user, const char *action,
    const char *object, const char *result, const char *detail)
{
	const struct audit_item it = { user, action, object, result, detail };

	return audit_append_many(st, &it, 1);
}

int
audit_append_many(struct store *st, const struct audit_item *items, size_t n)
{
	struct store_audit_entry ebuf[AUDIT_BATCH_MAX], *e;
	unsigned char prev[32];
	char head[128], hex[65];
	int64_t last, now;
	size_t i;
	int r;

	if (n == 0)
		return 0;
	if (n > AUDIT_BATCH_MAX)
		return ck_err_set(CK_E_INVAL, "at most %d audit entries at "
		    "once", AUDIT_BATCH_MAX);
	if ((r = store_tx_begin(st)) != 0)
		return r;
	if ((r = store_audit_last(st, &last, prev)) != 0)
		goto fail;
	now = ck_time_now();
	for (i = 0; i < n; i++) {
		e = &ebuf[i];
		memset(e, 0, sizeof(*e));
		e->id = last + 1 + (int64_t)i;
		e->time = now;
		e->user = (char *)(items[i].user ? items[i].user :
		    audit_actor());
		e->action = (char *)items[i].action;
		e->object = (char *)(items[i].object ? items[i].object : "");
		e->result = (char *)items[i].result;
		e->detail = (char *)(items[i].detail ? items[i].detail : "");
		memcpy(e->prev_hash, i == 0 ? prev : ebuf[i - 1].hash, 32);
		audit_entry_hash(e, e->hash);
	}
	if ((r = store_audit_insert_many(st, ebuf, n)) != 0)
		goto fail;
	/* The head once for the lot: it names the last entry. */
	ck_hex_encode(ebuf[n - 1].hash, 32, hex);
	snprintf(head, sizeof(head), "%lld:%s", (long long)ebuf[n - 1].id,
	    hex);
	if ((r = store_meta_set(st, AUDIT_HEAD_KEY, head)) != 0)
		goto fail;
	return store_tx_commit(st);
fail:
	store_tx_rollback(st);
	return r;
}

struct verify_state {
	struct audit_report *rep;
	int64_t expect_id;
	unsigned char prev[32];
	int (*each)(const struct store_audit_entry *e, void *arg);
	void *arg;
};

static int
bad(struct audit_report *rep, int64_t id, const char *why)
{
	rep->first_bad = id;
	snprintf(rep->reason, sizeof(rep->reason), "%s", why);
	return CK_E_TAMPER;
}

static int
verify_one(const struct store_audit_entry *e, void *arg)
{
	struct verify_state *vs = arg;
	unsigned char h[32];

	if (e->id != vs->expect_id) {
		if (e->id > vs->expect_id)
			return bad(vs->rep, vs->expect_id,
			    "entry is missing (deleted)");
		return bad(vs->rep, e->id, "entry id out of sequence");
	}
	if (memcmp(e->prev_hash, vs->prev, 32) != 0)
		return bad(vs->rep, e->id, "link to the previous entry is "
		    "broken (entries deleted or reordered)");
	audit_entry_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0)
		return bad(vs->rep, e->id, "entry was altered (hash mismatch)");
	if (vs->each != NULL) {
		int r = vs->each(e, vs->arg);
		if (r == CK_E_TAMPER && vs->rep->first_bad == 0)
			vs->rep->first_bad = e->id;
		if (r != 0)
			return r;
	}
	memcpy(vs->prev, e->hash, 32);
	vs->expect_id++;
	vs->rep->entries++;
	return 0;
}

int
audit_verify(struct store *st, struct audit_report *rep)
{
	return audit_verify_each(st, NULL, NULL, rep);
}

int
audit_verify_each(struct store *st,
    int (*each)(const struct store_audit_entry *e, void *arg), void *arg,
    struct audit_report *rep)
{
	struct verify_state vs;
	char *head = NULL, hex[65], want[128];
	int r;

	memset(rep, 0, sizeof(*rep));
	memset(&vs, 0, sizeof(vs));
	vs.each = each;
	vs.arg = arg;
	vs.rep = rep;
	vs.expect_id = 1;
	if ((r = store_audit_iter(st, 1, verify_one, &vs)) != 0)
		return r;
	r = store_meta_get(st, AUDIT_HEAD_KEY, &head);
	if (r == CK_E_NOTFOUND) {
		if (rep->entries == 0)
			return 0;
		return bad(rep, 1, "the recorded head of the log is missing");
	}
	if (r != 0)
		return r;
	ck_hex_encode(vs.prev, 32, hex);
	snprintf(want, sizeof(want), "%lld:%s", (long long)rep->entries, hex);
	if (strcmp(head, want) != 0) {
		long long headid = strtoll(head, NULL, 10);
		free(head);
		if (headid > rep->entries)
			return bad(rep, rep->entries + 1,
			    "entries at the end of the log were deleted");
		return bad(rep, rep->entries, "the last entry does not match "
		    "the recorded head of the log");
	}
	free(head);
	return 0;
}
