#include "ca/token.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/timeutil.h"

#define TOKEN_SECRET_BYTES 32

static void
b64url(const unsigned char *in, size_t len, char *out)
{
	static const char al[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = al[(v >> 18) & 63];
		out[o++] = al[(v >> 12) & 63];
		out[o++] = al[(v >> 6) & 63];
		out[o++] = al[v & 63];
	}
	if (len - i == 1) {
		v = (unsigned)in[i] << 16;
		out[o++] = al[(v >> 18) & 63];
		out[o++] = al[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = al[(v >> 18) & 63];
		out[o++] = al[(v >> 12) & 63];
		out[o++] = al[(v >> 6) & 63];
	}
	out[o] = '\0';
}

/* SHA-256 fetched once: EVP_sha256() is looked up again on every use,
 * and every API request hashes its token. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void
sha256_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int
sha256(const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 32;

	(void)pthread_once(&sha256_once, sha256_init);
	return EVP_Digest(p, n, out, &len, sha256_md != NULL ? sha256_md :
	    EVP_sha256(), NULL) ? 0 : ck_err_ssl(CK_E_CRYPTO, "SHA-256");
}

/* Parse the narrower name rules into a profile; NULL if there are none. */
static int
rules_parse(const char *name, const char *dns, const char *ip,
    const char *email, struct ck_profile **out)
{
	struct ck_profile *p;
	char pname[CK_PROFILE_NAME_MAX];
	int r;

	*out = NULL;
	if ((dns == NULL || *dns == '\0') && (ip == NULL || *ip == '\0') &&
	    (email == NULL || *email == '\0'))
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return CK_E_NOMEM;
	snprintf(pname, sizeof(pname), "token %.40s", name);
	if ((r = ck_profile_init(p, pname)) != 0 ||
	    (dns && (r = ck_profile_set(p, "dns_suffixes", dns)) != 0) ||
	    (ip && (r = ck_profile_set(p, "ip_ranges", ip)) != 0) ||
	    (email && (r = ck_profile_set(p, "email_domains", email)) != 0)) {
		ck_profile_clear(p);
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

int
ck_token_create(struct ck_ca *ca, const struct ck_token_params *p,
    struct ck_secret **out)
{
	struct store_token t;
	struct ck_strlist profs = { 0 };
	struct ck_profile *rules = NULL;
	struct ck_secret *tok = NULL;
	unsigned char idb[8], sec[TOKEN_SECRET_BYTES];
	char secb64[64], detail[512];
	const char *c;
	size_t i;
	int r;

	memset(&t, 0, sizeof(t));
	if (p->name == NULL || p->name[0] == '\0' || strlen(p->name) > 60)
		return ck_err_set(CK_E_INVAL, "a token needs a name of 1 to 60 "
		    "characters");
	for (c = p->name; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
		    *c == '.'))
			return ck_err_set(CK_E_INVAL, "token names use letters, "
			    "digits, '.', '-' and '_'");
	if ((r = ck_strlist_split(&profs, p->profiles ? p->profiles : "")) != 0)
		goto out;
	if (profs.n == 0) {
		r = ck_err_set(CK_E_INVAL, "a token needs at least one profile");
		goto out;
	}
	for (i = 0; i < profs.n; i++) {
		const struct ck_profile *cp = ck_config_profile(ca->cfg,
		    profs.v[i]);
		if (cp == NULL) {
			r = ck_err_set(CK_E_INVAL, "no profile named '%s'",
			    profs.v[i]);
			goto out;
		}
		if (cp->is_ca) {
			r = ck_err_set(CK_E_INVAL, "profile '%s' issues CA "
			    "certificates; API tokens cannot use it",
			    profs.v[i]);
			goto out;
		}
	}
	if ((r = rules_parse(p->name, p->dns_suffixes, p->ip_ranges,
	    p->email_domains, &rules)) != 0)
		goto out;
	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    RAND_bytes(sec, sizeof(sec)) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "random number generator");
		goto out;
	}
	ck_hex_encode(idb, sizeof(idb), t.id);
	b64url(sec, sizeof(sec), secb64);
	if ((r = sha256(secb64, strlen(secb64), t.secret_sha256)) != 0)
		goto out;
	t.name = (char *)p->name;
	t.profiles = (char *)p->profiles;
	t.dns_suffixes = (char *)p->dns_suffixes;
	t.ip_ranges = (char *)p->ip_ranges;
	t.email_domains = (char *)p->email_domains;
	t.can_revoke = p->can_revoke;
	t.created_at = ck_time_now();
	t.created_by = (char *)audit_actor();
	if ((tok = ck_secret_new(128)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	tok->len = (size_t)snprintf((char *)tok->buf, tok->cap + 1, "%s%s_%s",
	    CK_TOKEN_PREFIX, t.id, secb64);
	snprintf(detail, sizeof(detail), "id %s, profiles %s%s%s", t.id,
	    p->profiles, p->can_revoke ? ", may revoke" : "",
	    rules ? ", with name rules" : "");
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = store_token_insert(ca->st, &t)) != 0 ||
	    (r = ck_ca_audit(ca, "token-create", p->name, AUDIT_OK,
	    detail)) != 0) {
		store_tx_rollback(ca->st);
		goto out;
	}
	if ((r = store_tx_commit(ca->st)) != 0)
		goto out;
	*out = tok;
	tok = NULL;
out:
	ck_wipe(sec, sizeof(sec));
	ck_wipe(secb64, sizeof(secb64));
	ck_secret_free(tok);
	if (rules != NULL) {
		ck_profile_clear(rules);
		free(rules);
	}
	ck_strlist_clear(&profs);
	return r;
}

int
ck_token_revoke(struct ck_ca *ca, const char *id_or_name)
{
	int r;

	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_token_revoke(ca->st, id_or_name, ck_time_now())) != 0 ||
	    (r = ck_ca_audit(ca, "token-revoke", id_or_name, AUDIT_OK,
	    NULL)) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

static int
load_one(const struct store_token *t, void *arg)
{
	struct ck_token_set *set = arg;
	struct ck_token *nv, *k;
	int r;

	if (t->revoked_at != 0)
		return 0;
	if ((nv = realloc(set->v, (set->n + 1) * sizeof(*nv))) == NULL)
		return CK_E_NOMEM;
	set->v = nv;
	k = &set->v[set->n];
	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", t->id);
	snprintf(k->name, sizeof(k->name), "%s", t->name ? t->name : "");
	memcpy(k->secret_sha256, t->secret_sha256, 32);
	k->can_revoke = t->can_revoke;
	if ((r = ck_strlist_split(&k->profiles, t->profiles ? t->profiles :
	    "")) != 0 ||
	    (r = rules_parse(k->name, t->dns_suffixes, t->ip_ranges,
	    t->email_domains, &k->rules)) != 0) {
		ck_strlist_clear(&k->profiles);
		return r;
	}
	set->n++;
	return 0;
}

int
ck_token_set_load(struct store *st, struct ck_token_set **out)
{
	struct ck_token_set *set;
	int r;

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return CK_E_NOMEM;
	if ((r = store_token_list(st, load_one, set)) != 0) {
		ck_token_set_free(set);
		return r;
	}
	*out = set;
	return 0;
}

void
ck_token_set_free(struct ck_token_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++) {
		ck_strlist_clear(&set->v[i].profiles);
		if (set->v[i].rules != NULL) {
			ck_profile_clear(set->v[i].rules);
			free(set->v[i].rules);
		}
	}
	ck_wipe(set->v, set->n * sizeof(*set->v));
	free(set->v);
	free(set);
}

const struct ck_token *
ck_token_find(const struct ck_token_set *set, const char *bearer)
{
	const char *idp, *us;
	unsigned char h[32];
	size_t i, idlen;

	if (set == NULL || bearer == NULL ||
	    strncmp(bearer, CK_TOKEN_PREFIX, strlen(CK_TOKEN_PREFIX)) != 0)
		return NULL;
	idp = bearer + strlen(CK_TOKEN_PREFIX);
	if ((us = strchr(idp, '_')) == NULL)
		return NULL;
	idlen = (size_t)(us - idp);
	if (idlen == 0 || idlen >= sizeof(set->v[0].id) || strlen(us + 1) > 100)
		return NULL;
	if (sha256(us + 1, strlen(us + 1), h) != 0)
		return NULL;
	for (i = 0; i < set->n; i++) {
		if (strlen(set->v[i].id) != idlen ||
		    memcmp(set->v[i].id, idp, idlen) != 0)
			continue;
		if (CRYPTO_memcmp(set->v[i].secret_sha256, h, 32) == 0)
			return &set->v[i];
		return NULL;
	}
	return NULL;
}

int
ck_token_allows_profile(const struct ck_token *t, const char *profile)
{
	return ck_strlist_has(&t->profiles, profile);
}
