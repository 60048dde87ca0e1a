#include "proto/ocsp.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/timeutil.h"
#include "signer/signer.h"
#include "x509/serial.h"

/*
 * The cache is OCSP_STRIPES independent hash tables, each behind its own
 * rwlock. Entries are placed by a keyed hash (SipHash-2-4, random key per
 * responder) of the serial, so that all the CertIDs of one serial (SHA-1,
 * SHA-256, ... forms) share a bucket and ocsp_invalidate() visits one
 * bucket; within it the DER of the CertID is compared. Only CertIDs that
 * name this CA are cached, so a bucket holds a handful of entries per
 * serial at most.
 *
 * Every stripe has a generation, bumped (under its write lock) by each
 * invalidation that touches it. A miss records the generation before the
 * status lookup, and the answer is only inserted if the generation is
 * still the same: a "good" read just before a revocation is never cached
 * after the revocation's invalidation.
 *
 * A delegated responder is held by reference count: a thread signing
 * takes a reference under dlg_mu and signs without the lock, so that
 * ocsp_responder_set_delegate() swaps at once and the old one is freed
 * when its last signature is done. Cached answers are not touched by a
 * swap: the old certificate is still valid when they expire.
 */
#define OCSP_STRIPES 64		/* a power of two */
#define OCSP_STRIPE_SHIFT 58	/* 64 - log2(OCSP_STRIPES) */
#define OCSP_BUCKETS 2048	/* per stripe; a power of two */
#define OCSP_STRIPE_CAP (OCSP_CACHE_MAX / OCSP_STRIPES)
#define OCSP_NONCE_MAX 128	/* RFC 9654 */
#define OCSP_SERIAL_MAX_BYTES 32 /* longer serials are never ours */
#define OCSP_NHASH 4

struct cache_ent {
	struct cache_ent *next;
	int64_t created;
	int64_t fresh_until;	/* reused before this */
	size_t key_len;
	size_t resp_len;
	unsigned char data[];	/* CertID DER, response DER, serial, NUL */
};

struct stripe {
	pthread_rwlock_t lock;
	uint64_t gen;
	size_t n;
	size_t cursor;		/* eviction scan position */
	struct cache_ent *buckets[OCSP_BUCKETS];
};

struct issuer_id {
	int nid;
	unsigned int len;
	unsigned char name[EVP_MAX_MD_SIZE];
	unsigned char key[EVP_MAX_MD_SIZE];
};

/* A delegated responder: its signer (key and certificate) and how long
 * the certificate is valid. */
struct delegate {
	_Atomic unsigned refs;
	struct signer *sg;
	int64_t not_after;
};

struct ocsp_responder {
	struct signer *signer;
	X509 *ca;
	pthread_mutex_t dlg_mu;
	int dlg_mu_ok;
	struct delegate *dlg;	/* NULL: the CA signs */
	ocsp_lookup_fn lookup;
	void *arg;
	uint32_t validity;
	struct issuer_id ids[OCSP_NHASH];
	uint64_t sipkey[2];
	struct stripe *stripes;
	size_t nlocks;		/* initialised stripe locks */
	_Atomic uint64_t n_requests;
	_Atomic uint64_t n_cached;
	_Atomic uint64_t n_signed;
	_Atomic uint64_t n_malformed;
};

/* What a request's CertID refers to. */
struct certid_info {
	OCSP_CERTID *cid;	/* borrowed from the request */
	int ours;		/* this CA's, with a usable serial */
	char serial[CK_SERIAL_HEX_MAX];
};

/* ---- hashing ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

static uint64_t
siphash24(const uint64_t k[2], const unsigned char *in, size_t len)
{
	uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
	uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
	uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
	uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, j, end = len & ~(size_t)7;

	for (i = 0; i < end; i += 8) {
		m = 0;
		for (j = 0; j < 8; j++)
			m |= (uint64_t)in[i + j] << (8 * j);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (j = 0; j < (len & 7); j++)
		b |= (uint64_t)in[end + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t
serial_hash(const struct ocsp_responder *r, const char *serial)
{
	return siphash24(r->sipkey, (const unsigned char *)serial,
	    strlen(serial));
}

static struct stripe *
stripe_of(struct ocsp_responder *r, uint64_t h)
{
	return &r->stripes[h >> OCSP_STRIPE_SHIFT];
}

/* ---- the cache ---- */

static const char *
ent_serial(const struct cache_ent *e)
{
	return (const char *)e->data + e->key_len + e->resp_len;
}

static int
ent_fresh(const struct cache_ent *e, int64_t now)
{
	/* A clock that went backwards makes every entry stale too. */
	return now >= e->created && now < e->fresh_until;
}

static void
stripe_clear(struct stripe *s)
{
	struct cache_ent *e, *next;
	size_t i;

	for (i = 0; i < OCSP_BUCKETS; i++) {
		for (e = s->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		s->buckets[i] = NULL;
	}
	s->n = 0;
}

/* Remove some entry of a full stripe (the first one found from a moving
 * position: cheap and good enough). */
static void
stripe_evict(struct stripe *s)
{
	struct cache_ent *e;
	size_t i;

	for (i = 0; i < OCSP_BUCKETS; i++) {
		s->cursor = (s->cursor + 1) & (OCSP_BUCKETS - 1);
		if ((e = s->buckets[s->cursor]) != NULL) {
			s->buckets[s->cursor] = e->next;
			free(e);
			s->n--;
			return;
		}
	}
}

/*
 * Look `key` up. 0 and a malloc'd copy of the response on a hit;
 * CK_E_NOTFOUND on a miss, with *gen set to the stripe's generation.
 */
static int
cache_get(struct ocsp_responder *r, uint64_t h, const unsigned char *key,
    size_t key_len, int64_t now, unsigned char **resp, size_t *resp_len,
    uint64_t *gen)
{
	struct stripe *s = stripe_of(r, h);
	struct cache_ent *e;
	unsigned char *copy;
	int rc = CK_E_NOTFOUND;

	if (pthread_rwlock_rdlock(&s->lock) != 0)
		return ck_err_set(CK_E_INTERNAL, "OCSP cache lock");
	*gen = s->gen;
	for (e = s->buckets[h & (OCSP_BUCKETS - 1)]; e != NULL; e = e->next) {
		if (e->key_len != key_len || memcmp(e->data, key, key_len) != 0)
			continue;
		if (!ent_fresh(e, now))
			break;
		if ((copy = malloc(e->resp_len)) == NULL) {
			rc = CK_E_NOMEM;
			break;
		}
		memcpy(copy, e->data + e->key_len, e->resp_len);
		*resp = copy;
		*resp_len = e->resp_len;
		rc = 0;
		break;
	}
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

/* Insert (or replace) an answer valid for `life` seconds from `now`,
 * unless an invalidation ran since cache_get() read `gen`. It is reused
 * for half its life. Failures only mean it is not cached. */
static void
cache_put(struct ocsp_responder *r, uint64_t h, uint64_t gen, int64_t now,
    int64_t life, const unsigned char *key, size_t key_len,
    const unsigned char *resp, size_t resp_len, const char *serial)
{
	struct stripe *s = stripe_of(r, h);
	struct cache_ent *e, **pp;
	size_t slen = strlen(serial);

	if ((e = malloc(sizeof(*e) + key_len + resp_len + slen + 1)) == NULL)
		return;
	e->next = NULL;
	e->created = now;
	e->fresh_until = now + life / 2;
	e->key_len = key_len;
	e->resp_len = resp_len;
	memcpy(e->data, key, key_len);
	memcpy(e->data + key_len, resp, resp_len);
	memcpy(e->data + key_len + resp_len, serial, slen + 1);

	if (pthread_rwlock_wrlock(&s->lock) != 0) {
		free(e);
		return;
	}
	if (s->gen != gen) {
		pthread_rwlock_unlock(&s->lock);
		free(e);
		return;
	}
	pp = &s->buckets[h & (OCSP_BUCKETS - 1)];
	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->key_len == key_len &&
		    memcmp((*pp)->data, key, key_len) == 0)
			break;
	if (*pp != NULL) {
		/* A stale entry, or another thread's answer: replace. */
		e->next = (*pp)->next;
		free(*pp);
		*pp = e;
	} else {
		if (s->n >= OCSP_STRIPE_CAP)
			stripe_evict(s);
		pp = &s->buckets[h & (OCSP_BUCKETS - 1)];
		e->next = *pp;
		*pp = e;
		s->n++;
	}
	pthread_rwlock_unlock(&s->lock);
}

void
ocsp_invalidate(struct ocsp_responder *r, const char *serial_hex)
{
	char norm[CK_SERIAL_HEX_MAX];
	struct cache_ent **pp, *e;
	struct stripe *s;
	uint64_t h;

	if (ck_serial_normalize(serial_hex, norm) != 0) {
		/* Nothing is cached under a name we cannot read; drop
		 * everything rather than guess. */
		ocsp_invalidate_all(r);
		return;
	}
	h = serial_hash(r, norm);
	s = stripe_of(r, h);
	if (pthread_rwlock_wrlock(&s->lock) != 0)
		abort();	/* only fails on a bug; never serve stale */
	s->gen++;
	pp = &s->buckets[h & (OCSP_BUCKETS - 1)];
	while ((e = *pp) != NULL) {
		if (strcmp(ent_serial(e), norm) == 0) {
			*pp = e->next;
			free(e);
			s->n--;
		} else {
			pp = &e->next;
		}
	}
	pthread_rwlock_unlock(&s->lock);
}

void
ocsp_invalidate_all(struct ocsp_responder *r)
{
	struct stripe *s;
	size_t i;

	for (i = 0; i < OCSP_STRIPES; i++) {
		s = &r->stripes[i];
		if (pthread_rwlock_wrlock(&s->lock) != 0)
			abort();
		s->gen++;
		stripe_clear(s);
		pthread_rwlock_unlock(&s->lock);
	}
}

/* ---- the delegated responder ---- */

static void
delegate_unref(struct delegate *d)
{
	if (d == NULL || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	signer_free(d->sg);
	free(d);
}

/* The current delegate with a reference (NULL: the CA signs). */
static struct delegate *
delegate_get(struct ocsp_responder *r)
{
	struct delegate *d;

	pthread_mutex_lock(&r->dlg_mu);
	if ((d = r->dlg) != NULL)
		atomic_fetch_add(&d->refs, 1);
	pthread_mutex_unlock(&r->dlg_mu);
	return d;
}

static int
time_of(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return ck_err_set(CK_E_PARSE, "unreadable certificate time");
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* What RFC 6960 section 4.2.2.2 asks of a delegated responder, and what
 * OpenSSL's OCSP_basic_verify() checks: issued (and signed) by this CA,
 * id-kp-OCSPSigning, a key usage (if any) allowing signatures, valid now,
 * and for `key`. */
static int
delegate_check(const struct ocsp_responder *r, EVP_PKEY *key, X509 *cert,
    int64_t now, int64_t *not_after)
{
	EVP_PKEY *capub = X509_get0_pubkey(r->ca);
	int64_t nb = 0, na = 0;
	char when[32];
	uint32_t fl;
	int rc;

	if (X509_check_issued(r->ca, cert) != X509_V_OK || capub == NULL ||
	    X509_verify(cert, capub) != 1) {
		ERR_clear_error();
		return ck_err_set(CK_E_INVAL, "the OCSP responder certificate "
		    "is not issued by this CA");
	}
	fl = X509_get_extension_flags(cert);
	if (!(fl & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(cert) & XKU_OCSP_SIGN))
		return ck_err_set(CK_E_INVAL, "the OCSP responder certificate "
		    "does not carry the extended key usage id-kp-OCSPSigning");
	if ((fl & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE))
		return ck_err_set(CK_E_INVAL, "the OCSP responder certificate's "
		    "key usage does not allow digitalSignature");
	if (X509_get0_pubkey(cert) == NULL ||
	    EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
		ERR_clear_error();
		return ck_err_set(CK_E_INVAL, "the OCSP responder certificate "
		    "does not belong to its key");
	}
	if ((rc = time_of(X509_get0_notBefore(cert), &nb)) != 0 ||
	    (rc = time_of(X509_get0_notAfter(cert), &na)) != 0)
		return rc;
	if (now < nb || now >= na) {
		ck_time_format(now < nb ? nb : na, when, sizeof(when));
		return ck_err_set(CK_E_INVAL, "the OCSP responder certificate "
		    "is not valid now: it %s %s", now < nb ? "starts" :
		    "expired", when);
	}
	*not_after = na;
	return 0;
}

int
ocsp_responder_set_delegate(struct ocsp_responder *r, EVP_PKEY *key,
    X509 *cert)
{
	struct delegate *d = NULL, *old;
	int64_t na = 0;
	int rc;

	if (key == NULL || cert == NULL) {
		EVP_PKEY_free(key);
		return ck_err_set(CK_E_INVAL, "OCSP responder: missing key or "
		    "certificate");
	}
	if ((rc = delegate_check(r, key, cert, (int64_t)time(NULL),
	    &na)) != 0) {
		EVP_PKEY_free(key);
		return rc;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		EVP_PKEY_free(key);
		return CK_E_NOMEM;
	}
	atomic_init(&d->refs, 1);
	d->not_after = na;
	if ((rc = signer_new(key, cert, &d->sg)) != 0) {
		free(d);
		return rc;
	}
	pthread_mutex_lock(&r->dlg_mu);
	old = r->dlg;
	r->dlg = d;
	pthread_mutex_unlock(&r->dlg_mu);
	delegate_unref(old);
	return 0;
}

/* ---- set-up ---- */

static int
issuer_ids_init(struct ocsp_responder *r)
{
	static const int nids[OCSP_NHASH] = {
		NID_sha1, NID_sha256, NID_sha384, NID_sha512
	};
	struct issuer_id *id;
	const EVP_MD *md;
	unsigned int nlen, klen;
	int i;

	for (i = 0; i < OCSP_NHASH; i++) {
		id = &r->ids[i];
		id->nid = nids[i];
		if ((md = EVP_get_digestbynid(nids[i])) == NULL ||
		    !X509_NAME_digest(X509_get_subject_name(r->ca), md,
		    id->name, &nlen) ||
		    !X509_pubkey_digest(r->ca, md, id->key, &klen) ||
		    nlen != klen)
			return ck_err_ssl(CK_E_CRYPTO, "hashing the CA name "
			    "and key");
		id->len = nlen;
	}
	return 0;
}

int
ocsp_responder_new(struct signer *signer, X509 *ca_cert,
    ocsp_lookup_fn lookup, void *arg, uint32_t validity_s,
    struct ocsp_responder **out)
{
	struct ocsp_responder *r;
	int rc;

	if (signer == NULL || ca_cert == NULL || lookup == NULL)
		return ck_err_set(CK_E_INVAL, "OCSP responder: missing "
		    "argument");
	if (validity_s == 0)
		return ck_err_set(CK_E_INVAL, "OCSP responses must be valid "
		    "for at least a second");
	if (!signer_key_matches(signer, ca_cert))
		return ck_err_set(CK_E_INVAL, "the CA certificate does not "
		    "belong to the signer's key");
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return CK_E_NOMEM;
	if (pthread_mutex_init(&r->dlg_mu, NULL) != 0) {
		free(r);
		return ck_err_set(CK_E_NOMEM, "OCSP responder lock");
	}
	r->dlg_mu_ok = 1;
	r->signer = signer;
	r->lookup = lookup;
	r->arg = arg;
	r->validity = validity_s;
	atomic_init(&r->n_requests, 0);
	atomic_init(&r->n_cached, 0);
	atomic_init(&r->n_signed, 0);
	atomic_init(&r->n_malformed, 0);
	if (!X509_up_ref(ca_cert)) {
		rc = CK_E_INTERNAL;
		goto out;
	}
	r->ca = ca_cert;
	if ((rc = issuer_ids_init(r)) != 0)
		goto out;
	if (RAND_bytes((unsigned char *)r->sipkey, sizeof(r->sipkey)) != 1) {
		rc = ck_err_ssl(CK_E_CRYPTO, "random number generator");
		goto out;
	}
	if ((r->stripes = calloc(OCSP_STRIPES, sizeof(*r->stripes))) ==
	    NULL) {
		rc = CK_E_NOMEM;
		goto out;
	}
	for (; r->nlocks < OCSP_STRIPES; r->nlocks++)
		if (pthread_rwlock_init(&r->stripes[r->nlocks].lock, NULL) !=
		    0) {
			rc = ck_err_set(CK_E_NOMEM, "OCSP cache locks");
			goto out;
		}
	*out = r;
	r = NULL;
	rc = 0;
out:
	ocsp_responder_free(r);
	return rc;
}

void
ocsp_responder_free(struct ocsp_responder *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->stripes != NULL) {
		for (i = 0; i < r->nlocks; i++) {
			stripe_clear(&r->stripes[i]);
			pthread_rwlock_destroy(&r->stripes[i].lock);
		}
		free(r->stripes);
	}
	delegate_unref(r->dlg);
	if (r->dlg_mu_ok)
		pthread_mutex_destroy(&r->dlg_mu);
	X509_free(r->ca);
	free(r);
}

void
ocsp_get_stats(struct ocsp_responder *r, struct ocsp_stats *out)
{
	out->requests = atomic_load_explicit(&r->n_requests,
	    memory_order_relaxed);
	out->cached = atomic_load_explicit(&r->n_cached, memory_order_relaxed);
	out->signed_ = atomic_load_explicit(&r->n_signed,
	    memory_order_relaxed);
	out->malformed = atomic_load_explicit(&r->n_malformed,
	    memory_order_relaxed);
}

/* ---- answering ---- */

static void
count(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

int
ocsp_respond_status(int status, unsigned char **resp, size_t *resp_len)
{
	/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } */
	unsigned char *buf;

	switch (status) {
	case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
	case OCSP_RESPONSE_STATUS_INTERNALERROR:
	case OCSP_RESPONSE_STATUS_TRYLATER:
	case OCSP_RESPONSE_STATUS_SIGREQUIRED:
	case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
		break;
	default:
		return ck_err_set(CK_E_INVAL, "not an OCSP error status: %d",
		    status);
	}
	if ((buf = malloc(5)) == NULL)
		return CK_E_NOMEM;
	buf[0] = 0x30;
	buf[1] = 0x03;
	buf[2] = 0x0a;
	buf[3] = 0x01;
	buf[4] = (unsigned char)status;
	*resp = buf;
	*resp_len = 5;
	return 0;
}

/* 0: no nonce; 1: a nonce to echo; -1: malformed (twice, or a length
 * outside 1..128 octets). */
static int
nonce_check(OCSP_REQUEST *req)
{
	const unsigned char *p, *data;
	ASN1_OCTET_STRING *v, *inner;
	int idx, len;

	idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
	if (idx < 0)
		return 0;
	if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, idx) >= 0)
		return -1;
	if ((v = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(req, idx))) ==
	    NULL)
		return -1;
	/* The value is an OCTET STRING holding the nonce; some old clients
	 * put the bare nonce there. */
	data = p = ASN1_STRING_get0_data(v);
	len = ASN1_STRING_length(v);
	inner = d2i_ASN1_OCTET_STRING(NULL, &p, len);
	if (inner != NULL && p == data + len)
		len = ASN1_STRING_length(inner);
	ASN1_OCTET_STRING_free(inner);
	ERR_clear_error();
	return len >= 1 && len <= OCSP_NONCE_MAX ? 1 : -1;
}

static int
certid_examine(const struct ocsp_responder *r, OCSP_CERTID *cid,
    struct certid_info *ci)
{
	ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
	ASN1_OBJECT *alg = NULL;
	ASN1_INTEGER *serial = NULL;
	const struct issuer_id *id = NULL;
	int i, nid, rc;

	memset(ci, 0, sizeof(*ci));
	ci->cid = cid;
	if (cid == NULL || !OCSP_id_get0_info(&nh, &alg, &kh, &serial, cid) ||
	    nh == NULL || alg == NULL || kh == NULL || serial == NULL)
		return 0;
	nid = OBJ_obj2nid(alg);
	for (i = 0; i < OCSP_NHASH; i++)
		if (r->ids[i].nid == nid)
			id = &r->ids[i];
	if (id == NULL ||
	    ASN1_STRING_length(nh) != (int)id->len ||
	    ASN1_STRING_length(kh) != (int)id->len ||
	    memcmp(ASN1_STRING_get0_data(nh), id->name, id->len) != 0 ||
	    memcmp(ASN1_STRING_get0_data(kh), id->key, id->len) != 0)
		return 0;
	/* Negative, zero or huge serials were never issued by certkeep. */
	if (ASN1_STRING_type(serial) != V_ASN1_INTEGER ||
	    ASN1_STRING_length(serial) > OCSP_SERIAL_MAX_BYTES)
		return 0;
	if ((rc = ck_serial_to_hex(serial, ci->serial)) != 0)
		return rc;
	if (strcmp(ci->serial, "0") == 0)
		return 0;
	ci->ours = 1;
	return 0;
}

static int
add_status(struct ocsp_responder *r, OCSP_BASICRESP *bs,
    const struct certid_info *ci, ASN1_TIME *thisupd, ASN1_TIME *nextupd)
{
	struct ocsp_status st;
	ASN1_TIME *revtime = NULL;
	int status = V_OCSP_CERTSTATUS_UNKNOWN;
	int reason = OCSP_REVOKED_STATUS_NOSTATUS;
	int rc;

	memset(&st, 0, sizeof(st));
	if (ci->ours) {
		if ((rc = r->lookup(r->arg, ci->serial, &st)) != 0)
			return rc < 0 ? rc : ck_err_set(CK_E_INTERNAL,
			    "OCSP status lookup returned %d", rc);
		if (st.known && st.revoked) {
			status = V_OCSP_CERTSTATUS_REVOKED;
			if ((revtime = ASN1_GENERALIZEDTIME_set(NULL,
			    (time_t)st.revoked_at)) == NULL)
				return ck_err_ssl(CK_E_INTERNAL, "revocation "
				    "time out of range");
			/* unspecified (0) is left out; 7 is unused */
			if (st.reason >= 1 && st.reason <= 10 &&
			    st.reason != 7)
				reason = st.reason;
		} else if (st.known) {
			status = V_OCSP_CERTSTATUS_GOOD;
		}
	}
	rc = 0;
	if (OCSP_basic_add1_status(bs, ci->cid, status, reason, revtime,
	    thisupd, nextupd) == NULL)
		rc = ck_err_ssl(CK_E_NOMEM, "adding an OCSP status");
	ASN1_TIME_free(revtime);
	return rc;
}

/* DER of a signed, successful response for every CertID of `req`;
 * *life is how long it is valid (nextUpdate - thisUpdate). */
static int
build_signed(struct ocsp_responder *r, OCSP_REQUEST *req,
    const struct certid_info *ci, int n, int nonce, int64_t now,
    unsigned char **resp, size_t *resp_len, int64_t *life)
{
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *ors = NULL;
	ASN1_TIME *thisupd = NULL, *nextupd = NULL;
	struct delegate *d = delegate_get(r);
	unsigned char *buf = NULL, *p;
	int64_t next = now + (int64_t)r->validity;
	int i, len, rc;

	/* A response never outlives the delegated certificate that signs
	 * it: clients check that certificate at the time they verify. */
	if (d != NULL) {
		if (d->not_after <= now) {
			rc = ck_err_set(CK_E_STATE, "the OCSP responder "
			    "certificate has expired");
			goto out;
		}
		if (next > d->not_after)
			next = d->not_after;
	}
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (thisupd = ASN1_GENERALIZEDTIME_set(NULL, (time_t)now)) == NULL ||
	    (nextupd = ASN1_GENERALIZEDTIME_set(NULL, (time_t)next)) ==
	    NULL) {
		rc = ck_err_ssl(CK_E_NOMEM, "OCSP response");
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((rc = add_status(r, bs, &ci[i], thisupd, nextupd)) != 0)
			goto out;
	if (nonce && OCSP_copy_nonce(bs, req) <= 0) {
		rc = ck_err_ssl(CK_E_NOMEM, "copying the OCSP nonce");
		goto out;
	}
	if ((rc = d != NULL ? signer_ocsp_sign(d->sg, &bs, 1) :
	    signer_ocsp_sign(r->signer, &bs, 0)) != 0)
		goto out;
	count(&r->n_signed);
	if ((ors = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL,
	    bs)) == NULL ||
	    (len = i2d_OCSP_RESPONSE(ors, NULL)) <= 0 ||
	    (buf = malloc((size_t)len)) == NULL) {
		rc = ck_err_ssl(CK_E_NOMEM, "encoding the OCSP response");
		goto out;
	}
	p = buf;
	if (i2d_OCSP_RESPONSE(ors, &p) != len) {
		rc = ck_err_ssl(CK_E_INTERNAL, "encoding the OCSP response");
		goto out;
	}
	*resp = buf;
	*resp_len = (size_t)len;
	*life = next - now;
	buf = NULL;
	rc = 0;
out:
	delegate_unref(d);
	free(buf);
	OCSP_RESPONSE_free(ors);
	OCSP_BASICRESP_free(bs);
	ASN1_TIME_free(thisupd);
	ASN1_TIME_free(nextupd);
	return rc;
}

/* ocsp_respond_der() without the request count. */
static int
respond(struct ocsp_responder *r, const unsigned char *der, size_t len,
    unsigned char **resp, size_t *resp_len)
{
	struct certid_info ci[OCSP_MAX_CERTIDS];
	OCSP_REQUEST *req = NULL;
	const unsigned char *p = der;
	unsigned char *key = NULL;
	uint64_t h = 0, gen = 0;
	int64_t now, life = 0;
	int i, n, nonce, key_len = 0, cacheable = 0, rc;

	if (len == 0 || len > OCSP_MAX_REQUEST)
		goto malformed;
	if ((req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL ||
	    p != der + len)
		goto malformed;
	n = OCSP_request_onereq_count(req);
	if (n < 1 || n > OCSP_MAX_CERTIDS)
		goto malformed;
	if ((nonce = nonce_check(req)) < 0)
		goto malformed;
	for (i = 0; i < n; i++)
		if ((rc = certid_examine(r, OCSP_onereq_get0_id(
		    OCSP_request_onereq_get0(req, i)), &ci[i])) != 0)
			goto out;
	now = (int64_t)time(NULL);

	/* (Answers valid for a second would never be reused.) */
	if (n == 1 && !nonce && ci[0].ours && r->validity >= 2) {
		if ((key_len = i2d_OCSP_CERTID(ci[0].cid, &key)) <= 0) {
			rc = ck_err_ssl(CK_E_NOMEM, "encoding the CertID");
			goto out;
		}
		h = serial_hash(r, ci[0].serial);
		rc = cache_get(r, h, key, (size_t)key_len, now, resp,
		    resp_len, &gen);
		if (rc == 0)
			count(&r->n_cached);
		if (rc != CK_E_NOTFOUND)
			goto out;
		cacheable = 1;
	}
	if ((rc = build_signed(r, req, ci, n, nonce, now, resp, resp_len,
	    &life)) != 0)
		goto out;
	/* (Answers valid for a second would never be reused.) */
	if (cacheable && life >= 2)
		cache_put(r, h, gen, now, life, key, (size_t)key_len, *resp,
		    *resp_len, ci[0].serial);
	goto out;

malformed:
	ERR_clear_error();
	count(&r->n_malformed);
	rc = ocsp_respond_status(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, resp,
	    resp_len);
out:
	OPENSSL_free(key);
	OCSP_REQUEST_free(req);
	return rc;
}

int
ocsp_respond_der(struct ocsp_responder *r, const unsigned char *req,
    size_t len, unsigned char **resp, size_t *resp_len)
{
	count(&r->n_requests);
	return respond(r, req, len, resp, resp_len);
}

static int
b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode the GET form into out (at most outsz bytes). 0 or -1. */
static int
get_decode(const char *s, unsigned char *out, size_t outsz, size_t *outlen)
{
	uint32_t acc = 0;
	size_t n = 0, nchars = 0, pad = 0;
	int c, v;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c == '%') {
			/* s[2] is only read when s[1] is not the NUL. */
			if (s[1] == '2' && (s[2] == 'B' || s[2] == 'b'))
				c = '+';
			else if (s[1] == '2' && (s[2] == 'F' || s[2] == 'f'))
				c = '/';
			else if (s[1] == '3' && (s[2] == 'D' || s[2] == 'd'))
				c = '=';
			else
				return -1;
			s += 2;
		}
		if (c == '=') {
			if (++pad > 2)
				return -1;
			continue;
		}
		if (pad > 0 || (v = b64_value(c)) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		if (++nchars % 4 == 0) {
			if (outsz - n < 3)
				return -1;
			out[n++] = (unsigned char)(acc >> 16);
			out[n++] = (unsigned char)(acc >> 8);
			out[n++] = (unsigned char)acc;
			acc = 0;
		}
	}
	switch (nchars % 4) {
	case 0:
		if (pad != 0)
			return -1;
		break;
	case 2:
		if ((pad != 0 && pad != 2) || outsz - n < 1)
			return -1;
		out[n++] = (unsigned char)(acc >> 4);
		break;
	case 3:
		if ((pad != 0 && pad != 1) || outsz - n < 2)
			return -1;
		out[n++] = (unsigned char)(acc >> 10);
		out[n++] = (unsigned char)(acc >> 2);
		break;
	default:
		return -1;
	}
	*outlen = n;
	return 0;
}

int
ocsp_respond_get(struct ocsp_responder *r, const char *b64,
    unsigned char **resp, size_t *resp_len)
{
	unsigned char *der;
	size_t len = 0;
	int rc;

	count(&r->n_requests);
	/* One byte more than allowed, so that an oversized request is seen
	 * as such rather than cut. */
	if ((der = malloc(OCSP_MAX_REQUEST + 1)) == NULL)
		return CK_E_NOMEM;
	if (get_decode(b64, der, OCSP_MAX_REQUEST + 1, &len) != 0)
		len = 0;	/* malformed */
	rc = respond(r, der, len, resp, resp_len);
	free(der);
	return rc;
}
