#include "signer/signer.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/timeutil.h"
#include "keystore/pkcs11.h"
#include "signer/signer_proc.h"
#include "x509/keygen.h"
#include "x509/serial.h"

/* Signing contexts kept for reuse across certificates. */
#define SIGNER_POOL 16

struct signer {
	EVP_PKEY *key;		/* NULL when the key is in `proc` */
	struct signer_proc *proc; /* the signer process, not owned */
	X509 *cert;
	/* Issuance without X509 objects (signer_cert_prepare_der): the
	 * issuer's encoded side of the TBS, the signature algorithm's
	 * AlgorithmIdentifier, and for EC and RSA keys signing contexts
	 * that sign a digest. */
	struct ck_tbs_issuer iss;	/* name_der NULL: not usable */
	unsigned char sigalg[128];
	size_t sigalg_len;		/* 0: not usable */
	EVP_MD *sha256;
	EVP_MD *md;			/* the signature's digest, if any */
	int sign_digest;		/* 1: EVP_PKEY_sign over md */
	pthread_mutex_t pool_mu;
	EVP_PKEY_CTX *pool[SIGNER_POOL];
	int npool;
	/* With the signer process: serials it reserved for this service
	 * (SIGNER_MSG_SERIALS), taken one per certificate, so that a
	 * certificate costs one call (cert-issue) instead of two. */
	pthread_mutex_t ser_mu;
	pthread_cond_t ser_cv;	/* a refill ended */
	struct {
		struct signer_msg_serial v;
		int64_t at;	/* reserved at (monotonic s) */
	} ser[2 * SIGNER_SERIALS_MAX];	/* a ring, oldest first */
	unsigned ser_head, nser;
	int refilling;		/* a thread asks for more (unlocked) */
	int64_t refill_after;	/* after a failed refill: not before */
	int issue_off;		/* the signer process cannot say its
				 * signature algorithm, or means another
				 * issuer: prepare there */
};

struct signer_pending {
	struct signer_proc *proc; /* prepared in the signer process: */
	uint64_t handle;	  /* its handle there (0: used) */
	X509 *x;
	EVP_MD_CTX *mctx;
	unsigned char digest[32];
	unsigned char *tbs;	/* without x: the TBS DER */
	size_t tbs_len;
	/* The serial the signer chose: content octets and hex. */
	unsigned char serial[SIGNER_SERIAL_MAX];
	size_t serial_len;
	char serial_hex[CK_SERIAL_HEX_MAX];
	/* With a reserved serial: the cert-issue request, encoded when
	 * prepared (its id is set when it is sent). */
	struct signer_buf issue;
};

/* Only the signer chooses serials: a template that brings one comes from
 * a caller that thinks it chose it. */
static int
serial_unset(const struct ck_cert_template *t)
{
	if (t->serial != NULL)
		return ck_err_set(CK_E_INVAL, "the signer chooses the serial "
		    "number: the template must not have one");
	return 0;
}

/* Draw the serial of `p`: *ai (caller frees) goes into the template. */
static int
pending_draw_serial(struct signer_pending *p, ASN1_INTEGER **ai)
{
	int r;

	if ((r = ck_serial_random(ai, p->serial_hex)) != 0)
		return r;
	p->serial_len = (size_t)ASN1_STRING_length(*ai);
	memcpy(p->serial, ASN1_STRING_get0_data(*ai), p->serial_len);
	return 0;
}

/* A failed signature: with a token key that is now unavailable, say so
 * plainly rather than pass on OpenSSL's error. */
static int
sign_fail(struct signer *s, const char *what)
{
	char why[256];

	if (!keystore_p11_available(s->key, why, sizeof(why))) {
		ERR_clear_error();
		return ck_err_set(CK_E_CRYPTO, "signer unavailable: %s (%s)",
		    why, what);
	}
	return ck_err_ssl(CK_E_CRYPTO, what);
}

/* Cache what signer_cert_prepare_der() needs of the key; without it that
 * path falls back to signer_cert_prepare(). */
static void
fast_init(struct signer *s)
{
	const EVP_MD *md = ck_key_sign_md(s->key);
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx;
	unsigned char aid[128];
	OSSL_PARAM params[2];
	int id = EVP_PKEY_get_base_id(s->key);

	pthread_mutex_init(&s->pool_mu, NULL);
	if ((s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		goto out;
	if (md != NULL && (s->md = EVP_MD_fetch(NULL, EVP_MD_get0_name(md),
	    NULL)) == NULL)
		goto out;
	s->sign_digest = md != NULL && (id == EVP_PKEY_EC ||
	    id == EVP_PKEY_RSA);
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, NULL, md, NULL, s->key) != 1 ||
	    (pctx = EVP_MD_CTX_get_pkey_ctx(mctx)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid));
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_CTX_get_params(pctx, params) != 1 ||
	    !OSSL_PARAM_modified(&params[0]) ||
	    params[0].return_size > sizeof(s->sigalg))
		goto out;
	memcpy(s->sigalg, aid, params[0].return_size);
	s->sigalg_len = params[0].return_size;
out:
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
}

/* The issuer's side of the TBS for the current certificate. */
static void
fast_set_issuer(struct signer *s)
{
	ck_tbs_issuer_clear(&s->iss);
	if (s->cert != NULL && X509_get0_subject_key_id(s->cert) != NULL &&
	    ck_tbs_issuer_init(&s->iss, s->cert) != 0)
		ck_tbs_issuer_clear(&s->iss);
	ERR_clear_error();
}

/* The signer process (signer_proc.h): the same operations as requests. */

/* The reply to the request in `b` if it is of type `want`; else the error
 * an R_ERR carries, or one for the wrong type, and the reply released. */
static int
reply_check(const struct signer_buf *b, unsigned want, struct signer_msg *rep,
    unsigned char **body)
{
	int r = 0;

	if (rep->type == SIGNER_MSG_R_ERR)
		r = ck_err_set(rep->u.err.code, "%s", rep->u.err.msg);
	else if (rep->type != want)
		r = ck_err_set(CK_E_INTERNAL, "the signer process answered "
		    "%s with %s", signer_msg_type_name((unsigned)b->p[0] << 8 |
		    b->p[1]), signer_msg_type_name(rep->type));
	if (r != 0) {
		signer_msg_clear(rep);
		free(*body);
		*body = NULL;
	}
	return r;
}

/* The DER a reply to the request in `b` carries, into a buffer of the
 * caller's (OPENSSL_free); the reply is released either way. */
static int
reply_der(const struct signer_buf *b, struct signer_msg *rep,
    unsigned char *body, unsigned char **der, size_t *der_len)
{
	int r;

	if ((r = reply_check(b, SIGNER_MSG_R_DER, rep, &body)) != 0)
		return r;
	if ((*der = OPENSSL_memdup(rep->u.der.buf, rep->u.der.len)) == NULL)
		r = ck_err_set(CK_E_NOMEM, "out of memory");
	else
		*der_len = rep->u.der.len;
	signer_msg_clear(rep);
	free(body);
	return r;
}

/* A request encoded before (its id is set here) and a reply of type
 * `want`, or an error. */
static int
remote_call_buf(struct signer *s, struct signer_buf *b, unsigned want,
    struct signer_msg *rep, unsigned char **body)
{
	int r;

	if ((r = signer_proc_call_encoded(s->proc, b, rep, body)) != 0)
		return r;
	return reply_check(b, want, rep, body);
}

static int
remote_call(struct signer *s, const struct signer_msg *req, unsigned want,
    struct signer_msg *rep, unsigned char **body)
{
	struct signer_buf b = { 0 };
	int r;

	memset(rep, 0, sizeof(*rep));
	*body = NULL;
	if ((r = signer_msg_encode(req, &b)) == 0)
		r = remote_call_buf(s, &b, want, rep, body);
	signer_buf_free(&b);
	return r;
}

/* A DER reply to an encoded request into a buffer of the caller's
 * (OPENSSL_free). */
static int
remote_der_buf(struct signer *s, struct signer_buf *b, unsigned char **der,
    size_t *der_len)
{
	struct signer_msg rep;
	unsigned char *body = NULL;
	int r;

	if ((r = signer_proc_call_encoded(s->proc, b, &rep, &body)) != 0)
		return r;
	return reply_der(b, &rep, body, der, der_len);
}

static int
remote_der(struct signer *s, const struct signer_msg *req,
    unsigned char **der, size_t *der_len)
{
	struct signer_buf b = { 0 };
	int r;

	if ((r = signer_msg_encode(req, &b)) == 0)
		r = remote_der_buf(s, &b, der, der_len);
	signer_buf_free(&b);
	return r;
}

static int
remote_available(struct signer *s, int probe, char *why, size_t whysz)
{
	struct signer_msg req, rep;
	unsigned char *body = NULL;
	int ok;

	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_STATUS;
	req.u.probe = probe ? 1 : 0;
	if (remote_call(s, &req, SIGNER_MSG_R_STATUS, &rep, &body) != 0) {
		if (why != NULL && whysz > 0)
			snprintf(why, whysz, "%s", ck_err_msg());
		return 0;
	}
	ok = rep.u.status.available;
	if (why != NULL && whysz > 0)
		snprintf(why, whysz, "%s", rep.u.status.why);
	signer_msg_clear(&rep);
	free(body);
	return ok;
}

/* The request fields of template `t` into `q` (cleared by the caller);
 * *subj and *spki (caller frees with OPENSSL_free) hold what q points to
 * that t does not; q->sans is allocated (caller frees). */
static int
prepare_fill(const struct ck_cert_template *t, enum signer_cert_kind kind,
    struct signer_msg_prepare *q, unsigned char **subj, unsigned char **spki)
{
	int r, n;
	size_t i;

	q->kind = (uint8_t)kind;
	if (kind == SIGNER_CERT_PROFILE && (t->profile == NULL ||
	    snprintf(q->profile, sizeof(q->profile), "%s", t->profile) >=
	    (int)sizeof(q->profile))) {
		r = ck_err_set(CK_E_INVAL, "a certificate for the signer "
		    "process names its profile");
		goto out;
	}
	r = CK_E_NOMEM;
	if ((n = i2d_X509_NAME(t->subject, subj)) <= 0)
		goto out;
	q->subject = *subj;
	q->subject_len = (size_t)n;
	if (t->spki_der != NULL) {
		q->spki = t->spki_der;
		q->spki_len = t->spki_der_len;
	} else {
		if (t->pubkey == NULL || (n = i2d_PUBKEY(t->pubkey,
		    spki)) <= 0)
			goto out;
		q->spki = *spki;
		q->spki_len = (size_t)n;
	}
	q->not_before = t->not_before;
	q->not_after = t->not_after;
	q->is_ca = t->is_ca ? 1 : 0;
	q->path_len = t->path_len;
	q->ku = t->ku;
	if (t->eku != NULL) {
		if (t->eku->n > SIGNER_EKU_MAX) {
			r = ck_err_set(CK_E_TOOBIG, "too many extended key "
			    "usages");
			goto out;
		}
		for (i = 0; i < t->eku->n; i++)
			snprintf(q->eku[i], sizeof(q->eku[i]), "%s",
			    t->eku->v[i]);
		q->neku = (uint32_t)t->eku->n;
	}
	if (t->sans != NULL && t->sans->n > 0) {
		if (t->sans->n > SIGNER_SAN_MAX) {
			r = ck_err_set(CK_E_TOOBIG, "too many names");
			goto out;
		}
		if ((q->sans = calloc(t->sans->n, sizeof(*q->sans))) == NULL)
			goto out;
		for (i = 0; i < t->sans->n; i++) {
			q->sans[i].type = (uint8_t)t->sans->v[i].type;
			snprintf(q->sans[i].value, sizeof(q->sans[i].value),
			    "%s", t->sans->v[i].value);
		}
		q->nsans = (uint32_t)t->sans->n;
	}
	snprintf(q->crl_url, sizeof(q->crl_url), "%s", t->crl_url ?
	    t->crl_url : "");
	snprintf(q->ocsp_url, sizeof(q->ocsp_url), "%s", t->ocsp_url ?
	    t->ocsp_url : "");
	snprintf(q->issuer_url, sizeof(q->issuer_url), "%s", t->issuer_url ?
	    t->issuer_url : "");
	r = 0;
out:
	return r;
}

static int
remote_prepare(struct signer *s, const struct ck_cert_template *t,
    enum signer_cert_kind kind, struct signer_pending **out,
    unsigned char digest[32])
{
	struct signer_msg_prepare *q = NULL;
	struct signer_msg req, rep;
	struct signer_pending *p = NULL;
	unsigned char *subj = NULL, *spki = NULL, *body = NULL;
	int r;

	memset(&rep, 0, sizeof(rep));
	if ((r = serial_unset(t)) != 0)
		return r;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return CK_E_NOMEM;
	if ((r = prepare_fill(t, kind, q, &subj, &spki)) != 0)
		goto out;
	r = CK_E_NOMEM;
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_PREPARE;
	req.u.prepare = q;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto out;
	if ((r = remote_call(s, &req, SIGNER_MSG_R_PREPARED, &rep,
	    &body)) != 0)
		goto out;
	p->proc = s->proc;
	p->handle = rep.u.prepared.handle;
	memcpy(p->digest, rep.u.prepared.digest, 32);
	/* The decoder checked the shape (positive, minimal). */
	p->serial_len = rep.u.prepared.serial_len;
	memcpy(p->serial, rep.u.prepared.serial, p->serial_len);
	if ((r = ck_serial_octets_hex(p->serial, p->serial_len,
	    p->serial_hex)) != 0)
		goto out;
	memcpy(digest, p->digest, 32);
	*out = p;
	p = NULL;
	r = 0;
out:
	signer_msg_clear(&rep);
	free(body);
	signer_pending_free(p);	/* aborts a handle given out, if any */
	if (q != NULL)
		free(q->sans);
	free(q);
	OPENSSL_free(subj);
	OPENSSL_free(spki);
	return r;
}

static int
remote_sign(struct signer *s, struct signer_pending *p, unsigned char **der,
    size_t *der_len)
{
	struct signer_msg req;
	int r;

	if (p->issue.len > 0) {
		r = remote_der_buf(s, &p->issue, der, der_len);
		signer_pending_free(p);
		return r;
	}
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_SIGN;
	req.u.handle = p->handle;
	/* Used up, whatever the answer. */
	p->handle = 0;
	r = remote_der(s, &req, der, der_len);
	signer_pending_free(p);
	return r;
}

static void
remote_abort(struct signer_pending *p)
{
	struct signer_msg req, rep;
	unsigned char *body = NULL;

	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_ABORT;
	req.u.handle = p->handle;
	p->handle = 0;
	if (signer_proc_call(p->proc, &req, &rep, &body) == 0)
		signer_msg_clear(&rep);
	free(body);
}

/*
 * One call per certificate: the signer process reserves serials for this
 * service a batch at a time (it remembers them, and signs each at most
 * once); the service builds the TBS with one of them itself, the same
 * bytes the signer will build, so that it can log the serial and the
 * TBS digest before asking; cert-issue then carries the template, the
 * serial and that digest, and the signer checks the template, builds its
 * own TBS and signs it only if the digests agree.
 */

static int check_limits(struct signer *s, const struct ck_cert_template *t);

#define SER_RING (2 * SIGNER_SERIALS_MAX)
/* Ask for more when fewer are left, so that the others keep taking. */
#define SER_LOW (SIGNER_SERIALS_MAX / 4)

/* SHA-256 of the issuer's side of the TBS (name, key identifier), for
 * both sides to see they build TBSs for the same issuer. */
static void
iss_digest(const struct ck_tbs_issuer *iss, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(out, 0, 32);
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, iss->name_der, iss->name_len) == 1 &&
	    EVP_DigestUpdate(c, iss->skid, iss->skid_len) == 1)
		(void)EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
}

/* Take in a serials-reply; lock held. */
static void
serials_apply(struct signer *s, const struct signer_msg *rep)
{
	unsigned char mine[32];
	uint32_t i;

	iss_digest(&s->iss, mine);
	if (rep->u.serials.sigalg_len == 0 || rep->u.serials.sigalg_len >
	    sizeof(s->sigalg) || rep->u.serials.issuer_len != 32 ||
	    memcmp(rep->u.serials.issuer, mine, 32) != 0 ||
	    (s->sigalg_len != 0 && (rep->u.serials.sigalg_len !=
	    s->sigalg_len || memcmp(s->sigalg, rep->u.serials.sigalg,
	    s->sigalg_len) != 0))) {
		/* It cannot say, or means another issuer or algorithm than
		 * this service would build TBSs for: no digest of ours
		 * would match. */
		s->issue_off = 1;
		return;
	}
	/* Written once, before any thread has a serial to build with. */
	if (s->sigalg_len == 0) {
		memcpy(s->sigalg, rep->u.serials.sigalg,
		    rep->u.serials.sigalg_len);
		s->sigalg_len = rep->u.serials.sigalg_len;
	}
	for (i = 0; i < rep->u.serials.n && s->nser < SER_RING; i++) {
		unsigned k = (s->ser_head + s->nser) % SER_RING;
		s->ser[k].v = rep->u.serials.v[i];
		s->ser[k].at = ck_time_mono();
		s->nser++;
	}
}

/*
 * A reserved serial into *out: 1 if one was taken, 0 if the caller
 * prepares through the signer process instead (it cannot serve
 * cert-issue, or reserves no more just now: too many outstanding, or
 * gone), never an error. Serials near the end of their reservation are
 * dropped; the thread that finds few left asks for more, while the
 * others go on taking.
 */
static int
serial_take(struct signer *s, struct signer_msg_serial *out)
{
	struct signer_msg req, rep;
	unsigned char *body = NULL;
	int r, ok = 0;

	pthread_mutex_lock(&s->ser_mu);
	for (;;) {
		while (s->nser > 0 && ck_time_mono() - s->ser[s->ser_head].at >
		    SIGNER_RESERVE_TTL / 2) {
			s->ser_head = (s->ser_head + 1) % SER_RING;
			s->nser--;
		}
		if (s->issue_off)
			break;
		if (s->nser < SER_LOW && !s->refilling &&
		    ck_time_mono() >= s->refill_after) {
			s->refilling = 1;
			pthread_mutex_unlock(&s->ser_mu);
			memset(&req, 0, sizeof(req));
			req.type = SIGNER_MSG_SERIALS;
			req.u.nserials = SIGNER_SERIALS_MAX;
			r = remote_call(s, &req, SIGNER_MSG_R_SERIALS, &rep,
			    &body);
			pthread_mutex_lock(&s->ser_mu);
			s->refilling = 0;
			pthread_cond_broadcast(&s->ser_cv);
			if (r != 0) {
				s->refill_after = ck_time_mono() + 1;
				ck_err_clear();
			} else {
				serials_apply(s, &rep);
				signer_msg_clear(&rep);
				free(body);
				body = NULL;
			}
			continue;
		}
		if (s->nser > 0) {
			*out = s->ser[s->ser_head].v;
			s->ser_head = (s->ser_head + 1) % SER_RING;
			s->nser--;
			ok = 1;
			break;
		}
		if (!s->refilling)
			break;		/* none, and none coming for now */
		pthread_cond_wait(&s->ser_cv, &s->ser_mu);
	}
	pthread_mutex_unlock(&s->ser_mu);
	return ok;
}

/* An INTEGER from a serial's content octets. */
static ASN1_INTEGER *
serial_integer(const unsigned char *v, size_t len)
{
	unsigned char tlv[2 + SIGNER_SERIAL_MAX];
	const unsigned char *q = tlv;

	if (len == 0 || len > SIGNER_SERIAL_MAX)
		return NULL;
	tlv[0] = 0x02;
	tlv[1] = (unsigned char)len;
	memcpy(tlv + 2, v, len);
	return d2i_ASN1_INTEGER(NULL, &q, (long)(2 + len));
}

/* The TBS of `t` with serial `ser`, and its SHA-256 into `digest`. */
static int
tbs_with_serial(struct signer *s, const struct ck_cert_template *t,
    const unsigned char *ser, size_t ser_len, unsigned char digest[32],
    unsigned char **tbs, size_t *tbs_len)
{
	struct ck_cert_template tt = *t;
	ASN1_INTEGER *ai;
	int r;

	if ((ai = serial_integer(ser, ser_len)) == NULL)
		return ck_err_ssl(CK_E_INVAL, "the serial number");
	tt.serial = ai;
	r = ck_cert_tbs_der(&tt, &s->iss, s->sigalg, s->sigalg_len, tbs,
	    tbs_len);
	ASN1_INTEGER_free(ai);
	if (r != 0)
		return r;
	if (!EVP_Digest(*tbs, *tbs_len, digest, NULL, EVP_sha256(), NULL)) {
		OPENSSL_free(*tbs);
		*tbs = NULL;
		return ck_err_ssl(CK_E_CRYPTO, "hashing the TBS");
	}
	return 0;
}

/* Prepare `t` for cert-issue; 1 if this path cannot take it (the caller
 * prepares through the signer process), else 0 or an error. */
static int
remote_issue_prepare(struct signer *s, const struct ck_cert_template *t,
    struct signer_pending **out, unsigned char digest[32])
{
	struct signer_msg_prepare *q = NULL;
	struct signer_msg req;
	struct signer_pending *p = NULL;
	struct signer_msg_serial ser;
	unsigned char *subj = NULL, *spki = NULL, *tbs = NULL;
	size_t tbs_len = 0;
	int r;

	if (t->service_tls || t->spki_der == NULL || t->spki_alg == NULL ||
	    t->spki_key == NULL || s->iss.name_der == NULL)
		return 1;
	if ((r = serial_unset(t)) != 0 || (r = check_limits(s, t)) != 0)
		return r;
	if (!serial_take(s, &ser))
		return 1;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (q = calloc(1, sizeof(*q))) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((r = tbs_with_serial(s, t, ser.v, ser.len, p->digest, &tbs,
	    &tbs_len)) != 0 ||
	    (r = prepare_fill(t, SIGNER_CERT_PROFILE, q, &subj, &spki)) != 0)
		goto out;
	memcpy(q->serial, ser.v, ser.len);
	q->serial_len = ser.len;
	memcpy(q->digest, p->digest, 32);
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_ISSUE;
	req.u.prepare = q;
	if ((r = signer_msg_encode(&req, &p->issue)) != 0)
		goto out;
	p->proc = s->proc;
	memcpy(p->serial, ser.v, ser.len);
	p->serial_len = ser.len;
	if ((r = ck_serial_octets_hex(p->serial, p->serial_len,
	    p->serial_hex)) != 0)
		goto out;
	memcpy(digest, p->digest, 32);
	*out = p;
	p = NULL;
out:
	signer_pending_free(p);
	if (q != NULL)
		free(q->sans);
	free(q);
	OPENSSL_free(tbs);
	OPENSSL_free(subj);
	OPENSSL_free(spki);
	return r;
}

static int
remote_crl(struct signer *s, const struct ck_crl_entry *entries, size_t n,
    uint64_t number, int64_t this_update, int64_t next_update,
    unsigned char **der, size_t *der_len)
{
	struct signer_msg req;
	struct signer_msg_crl_entry *v = NULL;
	size_t i;
	int r;

	if (n > SIGNER_CRL_MAX)
		return ck_err_set(CK_E_TOOBIG, "a CRL of more than %u entries",
		    SIGNER_CRL_MAX);
	if (n > 0 && (v = calloc(n, sizeof(*v))) == NULL)
		return CK_E_NOMEM;
	for (i = 0; i < n; i++) {
		if (snprintf(v[i].serial_hex, sizeof(v[i].serial_hex), "%s",
		    entries[i].serial_hex) >= (int)sizeof(v[i].serial_hex)) {
			free(v);
			return ck_err_set(CK_E_TOOBIG, "serial too long");
		}
		v[i].revoked_at = entries[i].revoked_at;
		v[i].reason = (uint8_t)entries[i].reason;
	}
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CRL_SIGN;
	req.u.crl.number = number;
	req.u.crl.this_update = this_update;
	req.u.crl.next_update = next_update;
	req.u.crl.n = (uint32_t)n;
	req.u.crl.entries = v;
	r = remote_der(s, &req, der, der_len);
	free(v);
	return r;
}

static int
gtime_unix(const ASN1_GENERALIZEDTIME *t, int64_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* The responder's SingleResponses and nonce, taken from what it built,
 * sent as a structured request; the signer process builds and signs the
 * response itself and *bsp is replaced by it. */
static int
remote_ocsp(struct signer *s, OCSP_BASICRESP **bsp, int with_cert)
{
	OCSP_BASICRESP *bs = *bsp, *nbs = NULL;
	struct signer_msg req;
	struct signer_msg_ocsp_single *v = NULL;
	unsigned char **ids = NULL, *der = NULL;
	const unsigned char *p;
	const ASN1_OCTET_STRING *nv;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	size_t derlen = 0;
	int i, n = OCSP_resp_count(bs), r, reason, st, len, next;

	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_OCSP_SIGN;
	if (with_cert || n <= 0 || n > (int)SIGNER_OCSP_MAX)
		return ck_err_set(CK_E_INVAL, "an OCSP response for the signer "
		    "process has 1 to %u statuses and no certificates",
		    SIGNER_OCSP_MAX);
	next = OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce, -1);
	if (OCSP_BASICRESP_get_ext_count(bs) != (next >= 0 ? 1 : 0))
		return ck_err_set(CK_E_INVAL, "an OCSP response for the signer "
		    "process has no extension but the nonce");
	if (next >= 0) {
		nv = X509_EXTENSION_get_data(OCSP_BASICRESP_get_ext(bs, next));
		req.u.ocsp.has_nonce = 1;
		req.u.ocsp.nonce = ASN1_STRING_get0_data(nv);
		req.u.ocsp.nonce_len = (size_t)ASN1_STRING_length(nv);
	}
	if ((v = calloc((size_t)n, sizeof(*v))) == NULL ||
	    (ids = calloc((size_t)n, sizeof(*ids))) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
		int64_t tu = 0, nu = 0;

		st = OCSP_single_get0_status(sr, &reason, &rev, &thisupd,
		    &nextupd);
		if ((len = i2d_OCSP_CERTID((OCSP_CERTID *)
		    OCSP_SINGLERESP_get0_id(sr), &ids[i])) <= 0 || st < 0 ||
		    gtime_unix(thisupd, &tu) != 0 ||
		    gtime_unix(nextupd, &nu) != 0 || (i > 0 &&
		    (tu != req.u.ocsp.this_update ||
		    nu != req.u.ocsp.next_update))) {
			r = ck_err_set(CK_E_INVAL, "OCSP status %d cannot go "
			    "to the signer process", i);
			goto out;
		}
		req.u.ocsp.this_update = tu;
		req.u.ocsp.next_update = nu;
		v[i].certid = ids[i];
		v[i].certid_len = (size_t)len;
		v[i].status = (uint8_t)st;
		v[i].reason = st == V_OCSP_CERTSTATUS_REVOKED ? reason : -1;
		if (st == V_OCSP_CERTSTATUS_REVOKED &&
		    gtime_unix(rev, &v[i].revoked_at) != 0) {
			r = ck_err_set(CK_E_INVAL, "OCSP revocation time");
			goto out;
		}
	}
	req.u.ocsp.n = (uint32_t)n;
	req.u.ocsp.v = v;
	if ((r = remote_der(s, &req, &der, &derlen)) != 0)
		goto out;
	p = der;
	if ((nbs = d2i_OCSP_BASICRESP(NULL, &p, (long)derlen)) == NULL ||
	    p != der + derlen) {
		OCSP_BASICRESP_free(nbs);
		r = ck_err_ssl(CK_E_PARSE, "the signer's OCSP response");
		goto out;
	}
	OCSP_BASICRESP_free(bs);
	*bsp = nbs;
	r = 0;
out:
	for (i = 0; ids != NULL && i < n; i++)
		OPENSSL_free(ids[i]);
	free(ids);
	free(v);
	OPENSSL_free(der);
	return r;
}

static int
remote_cms(struct signer *s, const unsigned char *data, size_t len,
    STACK_OF(X509) *chain, unsigned char **der, size_t *derlen)
{
	struct signer_msg req;

	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CMS_SIGN;
	/* The signer adds its own copy of the chain. */
	req.u.cms.with_chain = chain != NULL;
	req.u.cms.buf = data;
	req.u.cms.len = len;
	return remote_der(s, &req, der, derlen);
}

int
signer_new_remote(struct signer_proc *sp, X509 *cert, struct signer **out)
{
	struct signer *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CK_E_NOMEM;
	if (!X509_up_ref(cert)) {
		free(s);
		return CK_E_INTERNAL;
	}
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_mutex_init(&s->ser_mu, NULL);
	pthread_cond_init(&s->ser_cv, NULL);
	s->proc = sp;
	s->cert = cert;
	fast_set_issuer(s);
	*out = s;
	return 0;
}

int
signer_new(EVP_PKEY *key, X509 *cert, struct signer **out)
{
	struct signer *s;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		EVP_PKEY_free(key);
		return CK_E_NOMEM;
	}
	s->key = key;
	fast_init(s);
	if (cert != NULL && (r = signer_set_cert(s, cert)) != 0) {
		signer_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void
signer_free(struct signer *s)
{
	if (s == NULL)
		return;
	while (s->npool > 0)
		EVP_PKEY_CTX_free(s->pool[--s->npool]);
	pthread_mutex_destroy(&s->pool_mu);
	if (s->proc != NULL) {
		pthread_mutex_destroy(&s->ser_mu);
		pthread_cond_destroy(&s->ser_cv);
	}
	OPENSSL_cleanse(s->ser, sizeof(s->ser));
	EVP_MD_free(s->sha256);
	EVP_MD_free(s->md);
	ck_tbs_issuer_clear(&s->iss);
	EVP_PKEY_free(s->key);	/* OpenSSL cleanses key material */
	X509_free(s->cert);
	free(s);
}

int
signer_key_matches(const struct signer *s, X509 *cert)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	if (s->proc != NULL)
		return pub != NULL && s->cert != NULL &&
		    EVP_PKEY_eq(pub, X509_get0_pubkey(s->cert)) == 1;
	return pub != NULL && EVP_PKEY_eq(pub, s->key) == 1;
}

int
signer_available(struct signer *s, int probe, char *why, size_t whysz)
{
	if (s->proc != NULL)
		return remote_available(s, probe, why, whysz);
	if (probe)
		(void)keystore_p11_probe(s->key);
	return keystore_p11_available(s->key, why, whysz);
}

int
signer_set_cert(struct signer *s, X509 *cert)
{
	if (s->proc != NULL)
		return ck_err_set(CK_E_STATE, "the signer process keeps the "
		    "CA certificate it started with");
	if (!signer_key_matches(s, cert))
		return ck_err_set(CK_E_INVAL, "the CA certificate does not "
		    "belong to the CA key");
	if (!X509_up_ref(cert))
		return CK_E_INTERNAL;
	X509_free(s->cert);
	s->cert = cert;
	fast_set_issuer(s);
	return 0;
}

static int
tbs_digest(X509 *x, unsigned char out[32])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 32;
	int len, ok;

	if ((len = i2d_re_X509_tbs(x, &der)) <= 0)
		return ck_err_ssl(CK_E_CRYPTO, "encoding the TBS");
	ok = EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok ? 0 : ck_err_ssl(CK_E_CRYPTO, "hashing the TBS");
}

static int
legacy_sigalg(X509 *x, EVP_PKEY *key, const EVP_MD *md)
{
	int id = key ? EVP_PKEY_get_base_id(key) : NID_undef, sig;

	if (md == NULL || (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) ||
	    !OBJ_find_sigid_by_algs(&sig, EVP_MD_get_type(md), id))
		return ck_err_set(CK_E_CRYPTO, "signature algorithm id: "
		    "unsupported key");
	return X509_ALGOR_set0((X509_ALGOR *)X509_get0_tbs_sigalg(x),
	    OBJ_nid2obj(sig), id == EVP_PKEY_RSA ? V_ASN1_NULL :
	    V_ASN1_UNDEF, NULL) == 1 ? 0 : CK_E_NOMEM;
}

/* Put the AlgorithmIdentifier the signature will carry into the TBS now,
 * so that the digest logged before signing is the digest of what gets
 * signed. */
static int
fix_sigalg(X509 *x, EVP_MD_CTX *mctx)
{
	EVP_PKEY_CTX *pctx = EVP_MD_CTX_get_pkey_ctx(mctx);
	unsigned char aid[128];
	const unsigned char *p = aid;
	OSSL_PARAM params[2];
	X509_ALGOR *alg = NULL;
	int ok;

	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid));
	params[1] = OSSL_PARAM_construct_end();
	if (pctx == NULL)
		return ck_err_ssl(CK_E_CRYPTO, "signature algorithm id");
	if (EVP_PKEY_CTX_get_params(pctx, params) != 1 ||
	    !OSSL_PARAM_modified(&params[0])) {
		/* A key outside the providers (a PKCS#11 token's) signs
		 * through the legacy path, which has no such parameter:
		 * the identifier is what that path writes, RSA with a NULL
		 * parameter, ECDSA without. */
		ERR_clear_error();
		return legacy_sigalg(x, EVP_PKEY_CTX_get0_pkey(pctx),
		    EVP_MD_CTX_get0_md(mctx));
	}
	if ((alg = d2i_X509_ALGOR(NULL, &p, (long)params[0].return_size)) ==
	    NULL)
		return ck_err_ssl(CK_E_CRYPTO, "signature algorithm id");
	/* The TBS signature field is reachable only as const; the object is
	 * ours and mutable. */
	ok = X509_ALGOR_copy((X509_ALGOR *)X509_get0_tbs_sigalg(x), alg);
	X509_ALGOR_free(alg);
	return ok ? 0 : CK_E_NOMEM;
}

static int
check_limits(struct signer *s, const struct ck_cert_template *t)
{
	const ASN1_TIME *na;
	int64_t ca_not_after;
	long ca_pathlen;
	time_t tt;
	struct tm tm;

	if (t->not_after <= t->not_before)
		return ck_err_set(CK_E_POLICY, "validity ends before it "
		    "starts");
	if (s->cert == NULL)
		return 0;
	na = X509_get0_notAfter(s->cert);
	if (ASN1_TIME_to_tm(na, &tm) != 1)
		return ck_err_set(CK_E_INTERNAL, "CA notAfter unreadable");
	tt = timegm(&tm);
	ca_not_after = (int64_t)tt;
	if (t->not_after > ca_not_after)
		return ck_err_set(CK_E_POLICY, "the requested validity ends "
		    "after the CA certificate expires");
	if (t->is_ca) {
		if (!(X509_get_extension_flags(s->cert) & EXFLAG_CA))
			return ck_err_set(CK_E_POLICY, "this CA may not sign "
			    "CA certificates");
		ca_pathlen = X509_get_pathlen(s->cert);
		if (ca_pathlen == 0)
			return ck_err_set(CK_E_POLICY, "this CA's path length "
			    "constraint (0) forbids subordinate CAs");
		if (ca_pathlen > 0 && (t->path_len < 0 ||
		    t->path_len >= ca_pathlen))
			return ck_err_set(CK_E_POLICY, "a subordinate CA's "
			    "path length must be below this CA's (%ld)",
			    ca_pathlen);
	}
	return 0;
}

int
signer_cert_prepare(struct signer *s, const struct ck_cert_template *t,
    int self_signed, struct signer_pending **out, unsigned char digest[32])
{
	struct signer_pending *p = NULL;
	struct ck_cert_template tt;
	ASN1_INTEGER *serial = NULL;
	int r;

	if (s->proc != NULL) {
		if (self_signed)
			return ck_err_set(CK_E_STATE, "the signer process "
			    "makes no self-signed certificates");
		return remote_prepare(s, t, t->service_tls ?
		    SIGNER_CERT_SERVICE_TLS : SIGNER_CERT_PROFILE, out,
		    digest);
	}
	if (!self_signed && s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if (self_signed && !EVP_PKEY_eq(t->pubkey, s->key))
		return ck_err_set(CK_E_INVAL, "self-signed certificate for a "
		    "foreign key");
	if ((r = serial_unset(t)) != 0 ||
	    (!self_signed && (r = check_limits(s, t)) != 0))
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return CK_E_NOMEM;
	tt = *t;
	if ((r = pending_draw_serial(p, &serial)) != 0)
		goto fail;
	tt.serial = serial;
	if ((r = ck_cert_build(&tt, self_signed ? NULL : s->cert,
	    &p->x)) != 0)
		goto fail;
	if ((p->mctx = EVP_MD_CTX_new()) == NULL) {
		r = CK_E_NOMEM;
		goto fail;
	}
	if (EVP_DigestSignInit(p->mctx, NULL, ck_key_sign_md(s->key), NULL,
	    s->key) != 1) {
		r = sign_fail(s, "signature set-up");
		goto fail;
	}
	if ((r = fix_sigalg(p->x, p->mctx)) != 0 ||
	    (r = tbs_digest(p->x, p->digest)) != 0)
		goto fail;
	memcpy(digest, p->digest, 32);
	ASN1_INTEGER_free(serial);
	*out = p;
	return 0;
fail:
	ASN1_INTEGER_free(serial);
	signer_pending_free(p);
	return r;
}

int
signer_cert_prepare_der(struct signer *s, const struct ck_cert_template *t,
    struct signer_pending **out, unsigned char digest[32])
{
	struct signer_pending *p = NULL;
	struct ck_cert_template tt;
	ASN1_INTEGER *serial = NULL;
	int r;

	if (s->proc != NULL) {
		if ((r = remote_issue_prepare(s, t, out, digest)) != 1)
			return r;
		return signer_cert_prepare(s, t, 0, out, digest);
	}
	if (s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if (s->iss.name_der == NULL || s->sigalg_len == 0 ||
	    t->spki_der == NULL || t->spki_key == NULL)
		return signer_cert_prepare(s, t, 0, out, digest);
	if ((r = serial_unset(t)) != 0 || (r = check_limits(s, t)) != 0)
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return CK_E_NOMEM;
	tt = *t;
	if ((r = pending_draw_serial(p, &serial)) != 0)
		goto fail;
	tt.serial = serial;
	if ((r = ck_cert_tbs_der(&tt, &s->iss, s->sigalg, s->sigalg_len,
	    &p->tbs, &p->tbs_len)) != 0)
		goto fail;
	if (!EVP_Digest(p->tbs, p->tbs_len, p->digest, NULL, s->sha256,
	    NULL)) {
		r = ck_err_ssl(CK_E_CRYPTO, "hashing the TBS");
		goto fail;
	}
	memcpy(digest, p->digest, 32);
	ASN1_INTEGER_free(serial);
	*out = p;
	return 0;
fail:
	ASN1_INTEGER_free(serial);
	signer_pending_free(p);
	return r;
}

size_t
signer_sigalg(const struct signer *s, const unsigned char **der,
    unsigned char issuer[32])
{
	if (s->proc != NULL || s->iss.name_der == NULL)
		return 0;
	iss_digest(&s->iss, issuer);
	*der = s->sigalg;
	return s->sigalg_len;
}

static int sign_der(struct signer *s, struct signer_pending *p,
    unsigned char **der, size_t *der_len);

int
signer_cert_issue_der(struct signer *s, const struct ck_cert_template *t,
    const unsigned char *serial, size_t serial_len,
    const unsigned char digest[32], unsigned char **der, size_t *der_len)
{
	struct signer_pending *p = NULL;
	int r;

	if (s->proc != NULL || s->cert == NULL || s->iss.name_der == NULL ||
	    s->sigalg_len == 0 || t->spki_der == NULL || t->spki_key == NULL)
		return ck_err_set(CK_E_STATE, "this signer cannot issue with "
		    "a reserved serial");
	if ((r = serial_unset(t)) != 0 || (r = check_limits(s, t)) != 0)
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return CK_E_NOMEM;
	if ((r = tbs_with_serial(s, t, serial, serial_len, p->digest,
	    &p->tbs, &p->tbs_len)) != 0)
		goto fail;
	if (CRYPTO_memcmp(p->digest, digest, 32) != 0) {
		r = ck_err_set(CK_E_POLICY, "the TBS digest logged by the "
		    "service is not that of the certificate requested");
		goto fail;
	}
	/* sign_der() frees p. */
	return sign_der(s, p, der, der_len);
fail:
	signer_pending_free(p);
	return r;
}

static EVP_PKEY_CTX *
pool_get(struct signer *s)
{
	EVP_PKEY_CTX *ctx = NULL;

	pthread_mutex_lock(&s->pool_mu);
	if (s->npool > 0)
		ctx = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_mu);
	if (ctx != NULL)
		return ctx;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, s->md) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void
pool_put(struct signer *s, EVP_PKEY_CTX *ctx)
{
	pthread_mutex_lock(&s->pool_mu);
	if (s->npool < SIGNER_POOL) {
		s->pool[s->npool++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&s->pool_mu);
	EVP_PKEY_CTX_free(ctx);
}

/* Sign a TBS from signer_cert_prepare_der() after checking it against
 * the digest logged before: Certificate ::= SEQUENCE { tbs, algorithm,
 * BIT STRING signature }. */
static int
sign_der(struct signer *s, struct signer_pending *p, unsigned char **der,
    size_t *der_len)
{
	unsigned char d2[32], h[EVP_MAX_MD_SIZE], *sig = NULL, *buf = NULL;
	unsigned char hdr[8];
	unsigned int hlen = 0;
	size_t siglen, bitlen, body, total, hl, off;
	EVP_PKEY_CTX *ctx;
	EVP_MD_CTX *mctx = NULL;
	int r, ok;

	if (!EVP_Digest(p->tbs, p->tbs_len, d2, NULL, s->sha256, NULL)) {
		r = ck_err_ssl(CK_E_CRYPTO, "hashing the TBS");
		goto out;
	}
	if (memcmp(d2, p->digest, 32) != 0) {
		r = ck_err_set(CK_E_INTERNAL, "the signed TBS differs from "
		    "the logged one");
		goto out;
	}
	siglen = (size_t)EVP_PKEY_get_size(s->key);
	if ((sig = OPENSSL_malloc(siglen)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if (s->sign_digest) {
		if (EVP_MD_get_type(s->md) == NID_sha256) {
			memcpy(h, d2, 32);
			hlen = 32;
		} else if (!EVP_Digest(p->tbs, p->tbs_len, h, &hlen, s->md,
		    NULL)) {
			r = ck_err_ssl(CK_E_CRYPTO, "hashing the TBS");
			goto out;
		}
		if ((ctx = pool_get(s)) == NULL) {
			r = sign_fail(s, "signature set-up");
			goto out;
		}
		ok = EVP_PKEY_sign(ctx, sig, &siglen, h, hlen) == 1;
		if (ok)
			pool_put(s, ctx);
		else
			EVP_PKEY_CTX_free(ctx);
	} else {
		/* EdDSA signs the message itself. */
		ok = (mctx = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestSignInit(mctx, NULL, NULL, NULL, s->key) == 1 &&
		    EVP_DigestSign(mctx, sig, &siglen, p->tbs,
		    p->tbs_len) == 1;
	}
	if (!ok) {
		r = sign_fail(s, "signing the certificate");
		goto out;
	}
	bitlen = siglen + 1;
	body = p->tbs_len + s->sigalg_len + 1 + ck_der_len_size(bitlen) +
	    bitlen;
	hl = 1 + ck_der_len_size(body);
	total = hl + body;
	if ((buf = OPENSSL_malloc(total)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	hdr[0] = 0x30;
	ck_der_len_write(hdr + 1, body);
	memcpy(buf, hdr, hl);
	off = hl;
	memcpy(buf + off, p->tbs, p->tbs_len);
	off += p->tbs_len;
	memcpy(buf + off, s->sigalg, s->sigalg_len);
	off += s->sigalg_len;
	buf[off++] = 0x03;
	ck_der_len_write(buf + off, bitlen);
	off += ck_der_len_size(bitlen);
	buf[off++] = 0x00;
	memcpy(buf + off, sig, siglen);
	*der = buf;
	*der_len = total;
	buf = NULL;
	r = 0;
out:
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(sig);
	OPENSSL_free(buf);
	signer_pending_free(p);
	return r;
}

int
signer_cert_sign(struct signer *s, struct signer_pending *p,
    unsigned char **der, size_t *der_len)
{
	unsigned char d2[32], *buf = NULL;
	int len, r;

	if (p->proc != NULL)
		return remote_sign(s, p, der, der_len);
	if (p->x == NULL)
		return sign_der(s, p, der, der_len);
	if (X509_sign_ctx(p->x, p->mctx) <= 0) {
		r = sign_fail(s, "signing the certificate");
		goto out;
	}
	if ((r = tbs_digest(p->x, d2)) != 0)
		goto out;
	if (memcmp(d2, p->digest, 32) != 0) {
		r = ck_err_set(CK_E_INTERNAL, "the signed TBS differs from "
		    "the logged one");
		goto out;
	}
	if ((len = i2d_X509(p->x, &buf)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the certificate");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = 0;
out:
	signer_pending_free(p);
	return r;
}

/* The outcome of a call that failed: its code and message. */
static void
signed_fail(struct signer_signed *o, int r)
{
	o->r = r;
	snprintf(o->msg, sizeof(o->msg), "%s", ck_err_msg()[0] ?
	    ck_err_msg() : ck_strerror(r));
}

void
signer_cert_sign_many(struct signer *s, struct signer_pending **p, size_t n,
    struct signer_signed *out)
{
	struct signer_buf *bufs[SIGNER_SIGN_MANY_MAX];
	struct signer_msg reps[SIGNER_SIGN_MANY_MAX];
	unsigned char *bodies[SIGNER_SIGN_MANY_MAX];
	size_t idx[SIGNER_SIGN_MANY_MAX], i, k, m = 0;
	char why[SIGNER_ERRMSG_MAX];
	int r, call_r;

	for (i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		if (i < SIGNER_SIGN_MANY_MAX && s->proc != NULL &&
		    p[i]->proc != NULL && p[i]->issue.len > 0) {
			idx[m] = i;
			bufs[m++] = &p[i]->issue;
			continue;
		}
		/* One at a time: in-process, the two-call path, or past
		 * the most one call takes. */
		ck_err_clear();
		if ((r = signer_cert_sign(s, p[i], &out[i].der,
		    &out[i].len)) != 0)
			signed_fail(&out[i], r);
		p[i] = NULL;
	}
	if (m == 0)
		return;
	ck_err_clear();
	/* An error leaves the replies that came in: those are kept. */
	why[0] = '\0';
	call_r = signer_proc_call_many(s->proc, bufs, m, reps, bodies);
	if (call_r != 0)
		snprintf(why, sizeof(why), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(call_r));
	for (k = 0; k < m; k++) {
		struct signer_signed *o = &out[idx[k]];
		if (reps[k].type == SIGNER_MSG_NONE) {	/* call_r != 0 */
			o->r = call_r;
			snprintf(o->msg, sizeof(o->msg), "%s", why);
			continue;
		}
		ck_err_clear();
		if ((r = reply_der(bufs[k], &reps[k], bodies[k], &o->der,
		    &o->len)) != 0)
			signed_fail(o, r);
	}
	for (k = 0; k < m; k++) {
		signer_pending_free(p[idx[k]]);
		p[idx[k]] = NULL;
	}
}

const char *
signer_pending_serial(const struct signer_pending *p)
{
	return p->serial_hex;
}

void
signer_pending_serial_octets(const struct signer_pending *p,
    const unsigned char **octets, size_t *len)
{
	*octets = p->serial;
	*len = p->serial_len;
}

void
signer_pending_free(struct signer_pending *p)
{
	if (p == NULL)
		return;
	if (p->proc != NULL && p->handle != 0)
		remote_abort(p);
	OPENSSL_free(p->tbs);
	X509_free(p->x);
	EVP_MD_CTX_free(p->mctx);
	signer_buf_free(&p->issue);
	free(p);
}

int
signer_crl_sign(struct signer *s, const struct ck_crl_entry *entries,
    size_t n, uint64_t number, int64_t this_update, int64_t next_update,
    unsigned char **der, size_t *der_len)
{
	X509_CRL *crl = NULL;
	unsigned char *buf = NULL;
	int r, len;

	if (s->proc != NULL)
		return remote_crl(s, entries, n, number, this_update,
		    next_update, der, der_len);
	if (s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if ((r = ck_crl_build(s->cert, entries, n, number, this_update,
	    next_update, &crl)) != 0)
		return r;
	if (X509_CRL_sign(crl, s->key, ck_key_sign_md(s->key)) <= 0) {
		r = sign_fail(s, "signing the CRL");
		goto out;
	}
	if ((len = i2d_X509_CRL(crl, &buf)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the CRL");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = 0;
out:
	X509_CRL_free(crl);
	return r;
}

int
signer_csr_make(struct signer *s, const X509_NAME *subject,
    unsigned char **der, size_t *der_len)
{
	X509_REQ *req = NULL;
	unsigned char *buf = NULL;
	int r = CK_E_NOMEM, len;

	if (s->proc != NULL)
		return ck_err_set(CK_E_STATE, "the signer process makes no "
		    "requests");
	if ((req = X509_REQ_new()) == NULL)
		return CK_E_NOMEM;
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, subject) ||
	    !X509_REQ_set_pubkey(req, s->key))
		goto out;
	if (X509_REQ_sign(req, s->key, ck_key_sign_md(s->key)) <= 0) {
		r = sign_fail(s, "signing the request");
		goto out;
	}
	if ((len = i2d_X509_REQ(req, &buf)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the request");
		goto out;
	}
	*der = buf;
	*der_len = (size_t)len;
	r = 0;
out:
	X509_REQ_free(req);
	return r;
}

int
signer_ocsp_sign(struct signer *s, OCSP_BASICRESP **bsp, int with_cert)
{
	OCSP_BASICRESP *bs = *bsp;
	EVP_MD_CTX *mctx = NULL;
	unsigned long flags = OCSP_RESPID_KEY;
	int r;

	if (s->proc != NULL)
		return remote_ocsp(s, bsp, with_cert);
	if (s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if (!with_cert)
		flags |= OCSP_NOCERTS;
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return CK_E_NOMEM;
	/* Our own context rather than OCSP_basic_sign(), so that a NULL
	 * digest (Ed25519) means "none" and not "the default". */
	if (EVP_DigestSignInit(mctx, NULL, ck_key_sign_md(s->key), NULL,
	    s->key) != 1) {
		r = sign_fail(s, "OCSP signature set-up");
		goto out;
	}
	if (OCSP_basic_sign_ctx(bs, s->cert, mctx, NULL, flags) != 1) {
		r = sign_fail(s, "signing the OCSP response");
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(mctx);
	return r;
}

int
signer_ocsp_responder_subject(const X509 *ca, X509_NAME **out)
{
	static const char prefix[] = "OCSP responder for ";
	X509_NAME *n = NULL;
	X509_NAME_ENTRY *e;
	unsigned char *utf = NULL;
	char cn[65];
	size_t len;
	int idx, ulen = -1, r = CK_E_NOMEM;

	if ((n = X509_NAME_dup(X509_get_subject_name(ca))) == NULL)
		goto out;
	snprintf(cn, sizeof(cn), "%s", prefix);
	if ((idx = X509_NAME_get_index_by_NID(n, NID_commonName, -1)) >= 0)
		ulen = ASN1_STRING_to_UTF8(&utf, X509_NAME_ENTRY_get_data(
		    X509_NAME_get_entry(n, idx)));
	if (ulen > 0) {
		len = strlen(cn);
		if ((size_t)ulen > sizeof(cn) - 1 - len)
			ulen = (int)(sizeof(cn) - 1 - len);
		/* Not in the middle of a UTF-8 sequence. */
		while (ulen > 0 && (utf[ulen] & 0xc0) == 0x80)
			ulen--;
		memcpy(cn + len, utf, (size_t)ulen);
		cn[len + (size_t)ulen] = '\0';
	} else
		snprintf(cn, sizeof(cn), "certkeepd OCSP responder");
	while ((idx = X509_NAME_get_index_by_NID(n, NID_commonName, -1)) >= 0)
		X509_NAME_ENTRY_free(X509_NAME_delete_entry(n, idx));
	if ((e = X509_NAME_ENTRY_create_by_NID(NULL, NID_commonName,
	    MBSTRING_UTF8, (const unsigned char *)cn, -1)) == NULL)
		goto out;
	if (!X509_NAME_add_entry(n, e, -1, 0)) {
		X509_NAME_ENTRY_free(e);
		goto out;
	}
	X509_NAME_ENTRY_free(e);
	*out = n;
	n = NULL;
	r = 0;
out:
	OPENSSL_free(utf);
	X509_NAME_free(n);
	return r;
}

int
signer_ocsp_cert_prepare(struct signer *s, const struct ck_cert_template *t,
    struct signer_pending **out, unsigned char digest[32])
{
	struct signer_pending *p = NULL;
	ASN1_NULL *nocheck = NULL;
	int r;

	/* Only what a responder certificate is: nothing this path adds
	 * may go into any other certificate. */
	if (t->is_ca || t->ku != (1u << CK_KU_DIGITAL_SIGNATURE) ||
	    t->eku == NULL || t->eku->n != 1 ||
	    strcmp(t->eku->v[0], "OCSPSigning") != 0)
		return ck_err_set(CK_E_INVAL, "an OCSP responder certificate "
		    "is a leaf with keyUsage digitalSignature and the single "
		    "extended key usage OCSPSigning");
	if (s->proc != NULL)
		return remote_prepare(s, t, SIGNER_CERT_OCSP, out, digest);
	if ((r = signer_cert_prepare(s, t, 0, &p, digest)) != 0)
		return r;
	/* The signature algorithm is fixed already; adding the extension
	 * changes the TBS, so its digest is taken again. */
	if ((nocheck = ASN1_NULL_new()) == NULL ||
	    X509_add1_ext_i2d(p->x, NID_id_pkix_OCSP_noCheck, nocheck, 0,
	    X509V3_ADD_DEFAULT) != 1) {
		r = ck_err_ssl(CK_E_NOMEM, "id-pkix-ocsp-nocheck");
		goto out;
	}
	if ((r = tbs_digest(p->x, p->digest)) != 0)
		goto out;
	memcpy(digest, p->digest, 32);
	*out = p;
	p = NULL;
	r = 0;
out:
	ASN1_NULL_free(nocheck);
	signer_pending_free(p);
	return r;
}

int
signer_cms_sign(struct signer *s, const unsigned char *data, size_t len,
    STACK_OF(X509) *chain, unsigned char **der, size_t *derlen)
{
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	unsigned char *buf = NULL;
	const unsigned int flags = CMS_BINARY | CMS_PARTIAL;
	int r, i, n;

	if (s->proc != NULL)
		return remote_cms(s, data, len, chain, der, derlen);
	if (s->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	/* OpenSSL 3.0's CMS cannot sign with EdDSA (RFC 8419 came later). */
	if (ck_key_sign_md(s->key) == NULL)
		return ck_err_set(CK_E_STATE, "CMS signatures with this CA's "
		    "key type (EdDSA) are not supported by OpenSSL %s",
		    OpenSSL_version(OPENSSL_VERSION_STRING));
	if (len > INT_MAX)
		return ck_err_set(CK_E_TOOBIG, "data to sign is too large");
	if ((in = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL) {
		r = ck_err_ssl(CK_E_NOMEM, "CMS set-up");
		goto out;
	}
	if (CMS_add1_signer(cms, s->cert, s->key, EVP_sha256(), flags)
	    == NULL) {
		r = sign_fail(s, "CMS signer");
		goto out;
	}
	/* The chain, except the signer's own certificate (already in). */
	n = chain != NULL ? sk_X509_num(chain) : 0;
	for (i = 0; i < n; i++)
		if (X509_cmp(sk_X509_value(chain, i), s->cert) != 0 &&
		    CMS_add1_cert(cms, sk_X509_value(chain, i)) != 1) {
			r = ck_err_ssl(CK_E_CRYPTO, "CMS certificates");
			goto out;
		}
	if (CMS_final(cms, in, NULL, flags) != 1) {
		r = sign_fail(s, "CMS signing");
		goto out;
	}
	if ((n = i2d_CMS_ContentInfo(cms, &buf)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding CMS");
		goto out;
	}
	*der = buf;
	*derlen = (size_t)n;
	r = 0;
out:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return r;
}
