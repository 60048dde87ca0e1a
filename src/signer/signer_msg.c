#include "signer/signer_msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/fsutil.h"

static const struct {
	unsigned type;
	const char *name;
	size_t max;
} types[] = {
	{ SIGNER_MSG_UNLOCK, "unlock", 4 + SIGNER_SECRET_MAX },
	{ SIGNER_MSG_STATUS, "status", 1 },
	{ SIGNER_MSG_CERT_PREPARE, "cert-prepare", 256 * 1024 },
	{ SIGNER_MSG_CERT_SIGN, "cert-sign", 8 },
	{ SIGNER_MSG_CERT_ABORT, "cert-abort", 8 },
	{ SIGNER_MSG_CRL_SIGN, "crl-sign", 28 + (size_t)SIGNER_CRL_MAX * 58 },
	{ SIGNER_MSG_OCSP_SIGN, "ocsp-sign", 32 + SIGNER_NONCE_MAX +
	    SIGNER_OCSP_MAX * (4 + SIGNER_CERTID_MAX + 13) },
	{ SIGNER_MSG_CMS_SIGN, "cms-sign", 5 + SIGNER_CMS_MAX },
	{ SIGNER_MSG_SERIALS, "serials", 4 },
	{ SIGNER_MSG_CERT_ISSUE, "cert-issue", 256 * 1024 + 4 +
	    SIGNER_SERIAL_MAX + 4 + 32 },
	{ SIGNER_MSG_R_OK, "ok", 0 },
	{ SIGNER_MSG_R_ERR, "error", 8 + SIGNER_ERRMSG_MAX },
	{ SIGNER_MSG_R_PREPARED, "prepared", 8 + 4 + 32 + 4 +
	    SIGNER_SERIAL_MAX },
	{ SIGNER_MSG_R_DER, "der", 4 + SIGNER_DER_MAX },
	{ SIGNER_MSG_R_STATUS, "status-reply", 1 + 4 + 255 },
	{ SIGNER_MSG_R_SERIALS, "serials-reply", 4 + SIGNER_SIGALG_MAX +
	    4 + 32 + 4 + SIGNER_SERIALS_MAX * (4 + SIGNER_SERIAL_MAX) },
};

const char *
signer_msg_type_name(unsigned type)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	return "unknown";
}

size_t
signer_msg_max_body(unsigned type)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].max;
	return 0;
}

size_t
signer_msg_cost(unsigned type, size_t len)
{
	size_t n;

	switch (type) {
	case SIGNER_MSG_UNLOCK:
	case SIGNER_MSG_STATUS:
	case SIGNER_MSG_CERT_SIGN:
	case SIGNER_MSG_CERT_ABORT:
	case SIGNER_MSG_CMS_SIGN:
		return len;
	case SIGNER_MSG_SERIALS:
		/* The serials drawn and their reply. */
		return len + SIGNER_SERIALS_MAX *
		    (sizeof(struct signer_msg_serial) + 4 + SIGNER_SERIAL_MAX);
	case SIGNER_MSG_CERT_PREPARE:
	case SIGNER_MSG_CERT_ISSUE:
		return len + sizeof(struct signer_msg_prepare) +
		    SIGNER_SAN_MAX * sizeof(struct signer_msg_san);
	case SIGNER_MSG_CRL_SIGN:
		/* dec_crl() allocates entries only for what the body can
		 * hold, 13 bytes each at least. */
		n = len / SIGNER_CRL_ENTRY_MIN;
		if (n > SIGNER_CRL_MAX)
			n = SIGNER_CRL_MAX;
		return len + n * sizeof(struct signer_msg_crl_entry);
	case SIGNER_MSG_OCSP_SIGN:
		return len + SIGNER_OCSP_MAX *
		    sizeof(struct signer_msg_ocsp_single);
	default:
		return 0;
	}
}

int
signer_msg_admit(size_t held, size_t cost)
{
	return held == 0 || (held <= SIGNER_HELD_MAX &&
	    cost <= SIGNER_HELD_MAX - held);
}

/* Encoding */

static void
put(struct signer_buf *b, const void *p, size_t n)
{
	size_t ncap;
	unsigned char *np;

	if (b->err)
		return;
	if (n > b->max - b->len) {
		b->err = CK_E_TOOBIG;
		return;
	}
	if (b->len + n > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n)
			ncap *= 2;
		if (ncap > b->max)
			ncap = b->max;
		/* Grown by copy so that a passphrase leaves no stale copy. */
		if ((np = malloc(ncap)) == NULL) {
			b->err = CK_E_NOMEM;
			return;
		}
		if (b->len)
			memcpy(np, b->p, b->len);
		if (b->p != NULL)
			OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
		b->p = np;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
put_u8(struct signer_buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void
put_u32(struct signer_buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24),
	    (unsigned char)(v >> 16), (unsigned char)(v >> 8),
	    (unsigned char)v };

	put(b, x, 4);
}

static void
put_u64(struct signer_buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)(v >> 32));
	put_u32(b, (uint32_t)v);
}

static void
put_bytes(struct signer_buf *b, const void *p, size_t n, size_t max)
{
	if (n > max) {
		if (!b->err)
			b->err = CK_E_TOOBIG;
		return;
	}
	put_u32(b, (uint32_t)n);
	put(b, p, n);
}

static void
put_str(struct signer_buf *b, const char *s, size_t max)
{
	put_bytes(b, s, strlen(s), max);
}

void
signer_buf_free(struct signer_buf *b)
{
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int
signer_rbuf_read(int fd, struct signer_rbuf *rb, void *dst, size_t n)
{
	unsigned char *p = dst;
	size_t k;
	ssize_t got;

	while (n > 0) {
		if (rb->off < rb->len) {
			k = rb->len - rb->off < n ? rb->len - rb->off : n;
			memcpy(p, rb->b + rb->off, k);
			OPENSSL_cleanse(rb->b + rb->off, k);
			rb->off += k;
			p += k;
			n -= k;
			continue;
		}
		rb->off = rb->len = 0;
		/* A large body goes straight where it belongs. */
		if (n >= sizeof(rb->b))
			return ck_read_full(fd, p, n);
		got = read(fd, rb->b, sizeof(rb->b));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		rb->len = (size_t)got;
		rb->reads++;
	}
	return 0;
}

static void
enc_prepare(struct signer_buf *b, const struct signer_msg_prepare *p)
{
	uint32_t i;

	put_u8(b, p->kind);
	put_str(b, p->profile, CK_PROFILE_NAME_MAX - 1);
	put_bytes(b, p->subject, p->subject_len, SIGNER_NAME_DER_MAX);
	put_bytes(b, p->spki, p->spki_len, SIGNER_SPKI_DER_MAX);
	put_u64(b, (uint64_t)p->not_before);
	put_u64(b, (uint64_t)p->not_after);
	put_u8(b, p->is_ca);
	put_u32(b, (uint32_t)p->path_len);
	put_u32(b, p->ku);
	if (p->neku > SIGNER_EKU_MAX || p->nsans > SIGNER_SAN_MAX) {
		b->err = CK_E_TOOBIG;
		return;
	}
	put_u32(b, p->neku);
	for (i = 0; i < p->neku; i++)
		put_str(b, p->eku[i], SIGNER_EKU_LEN - 1);
	put_u32(b, p->nsans);
	for (i = 0; i < p->nsans; i++) {
		put_u8(b, p->sans[i].type);
		put_str(b, p->sans[i].value, sizeof(p->sans[i].value) - 1);
	}
	put_str(b, p->crl_url, SIGNER_URL_MAX - 1);
	put_str(b, p->ocsp_url, SIGNER_URL_MAX - 1);
	put_str(b, p->issuer_url, SIGNER_URL_MAX - 1);
}

int
signer_msg_encode(const struct signer_msg *m, struct signer_buf *b)
{
	size_t max = signer_msg_max_body(m->type), blen;
	uint32_t i;

	signer_buf_free(b);
	if (max == 0 && m->type != SIGNER_MSG_R_OK)
		return ck_err_set(CK_E_INVAL, "signer message: unknown type "
		    "%u", m->type);
	b->max = SIGNER_MSG_HDR + max;
	put_u32(b, (uint32_t)m->type << 16);
	put_u32(b, m->id);
	put_u32(b, 0);		/* the length, below */
	switch (m->type) {
	case SIGNER_MSG_UNLOCK:
		put_bytes(b, m->u.secret.buf, m->u.secret.len,
		    SIGNER_SECRET_MAX);
		break;
	case SIGNER_MSG_STATUS:
		put_u8(b, m->u.probe);
		break;
	case SIGNER_MSG_CERT_PREPARE:
		enc_prepare(b, m->u.prepare);
		break;
	case SIGNER_MSG_CERT_ISSUE:
		enc_prepare(b, m->u.prepare);
		put_bytes(b, m->u.prepare->serial, m->u.prepare->serial_len,
		    SIGNER_SERIAL_MAX);
		put_bytes(b, m->u.prepare->digest, 32, 32);
		break;
	case SIGNER_MSG_SERIALS:
		put_u32(b, m->u.nserials);
		break;
	case SIGNER_MSG_R_SERIALS:
		put_bytes(b, m->u.serials.sigalg, m->u.serials.sigalg_len,
		    SIGNER_SIGALG_MAX);
		put_bytes(b, m->u.serials.issuer, m->u.serials.issuer_len, 32);
		if (m->u.serials.n > SIGNER_SERIALS_MAX) {
			b->err = CK_E_TOOBIG;
			break;
		}
		put_u32(b, m->u.serials.n);
		for (i = 0; i < m->u.serials.n; i++)
			put_bytes(b, m->u.serials.v[i].v,
			    m->u.serials.v[i].len, SIGNER_SERIAL_MAX);
		break;
	case SIGNER_MSG_CERT_SIGN:
	case SIGNER_MSG_CERT_ABORT:
		put_u64(b, m->u.handle);
		break;
	case SIGNER_MSG_CRL_SIGN:
		put_u64(b, m->u.crl.number);
		put_u64(b, (uint64_t)m->u.crl.this_update);
		put_u64(b, (uint64_t)m->u.crl.next_update);
		if (m->u.crl.n > SIGNER_CRL_MAX) {
			b->err = CK_E_TOOBIG;
			break;
		}
		put_u32(b, m->u.crl.n);
		for (i = 0; i < m->u.crl.n; i++) {
			put_str(b, m->u.crl.entries[i].serial_hex,
			    SIGNER_SERIAL_MAX * 2);
			put_u64(b, (uint64_t)m->u.crl.entries[i].revoked_at);
			put_u8(b, m->u.crl.entries[i].reason);
		}
		break;
	case SIGNER_MSG_OCSP_SIGN:
		put_u64(b, (uint64_t)m->u.ocsp.this_update);
		put_u64(b, (uint64_t)m->u.ocsp.next_update);
		put_u8(b, m->u.ocsp.has_nonce);
		put_bytes(b, m->u.ocsp.nonce, m->u.ocsp.nonce_len,
		    SIGNER_NONCE_MAX);
		if (m->u.ocsp.n > SIGNER_OCSP_MAX) {
			b->err = CK_E_TOOBIG;
			break;
		}
		put_u32(b, m->u.ocsp.n);
		for (i = 0; i < m->u.ocsp.n; i++) {
			put_bytes(b, m->u.ocsp.v[i].certid,
			    m->u.ocsp.v[i].certid_len, SIGNER_CERTID_MAX);
			put_u8(b, m->u.ocsp.v[i].status);
			put_u64(b, (uint64_t)m->u.ocsp.v[i].revoked_at);
			put_u32(b, (uint32_t)m->u.ocsp.v[i].reason);
		}
		break;
	case SIGNER_MSG_CMS_SIGN:
		put_u8(b, m->u.cms.with_chain);
		put_bytes(b, m->u.cms.buf, m->u.cms.len, SIGNER_CMS_MAX);
		break;
	case SIGNER_MSG_R_OK:
		break;
	case SIGNER_MSG_R_ERR:
		put_u32(b, (uint32_t)m->u.err.code);
		put_str(b, m->u.err.msg, SIGNER_ERRMSG_MAX - 1);
		break;
	case SIGNER_MSG_R_PREPARED:
		put_u64(b, m->u.prepared.handle);
		put_bytes(b, m->u.prepared.digest, 32, 32);
		put_bytes(b, m->u.prepared.serial, m->u.prepared.serial_len,
		    SIGNER_SERIAL_MAX);
		break;
	case SIGNER_MSG_R_DER:
		put_bytes(b, m->u.der.buf, m->u.der.len, SIGNER_DER_MAX);
		break;
	case SIGNER_MSG_R_STATUS:
		put_u8(b, m->u.status.available);
		put_str(b, m->u.status.why, sizeof(m->u.status.why) - 1);
		break;
	default:
		return ck_err_set(CK_E_INVAL, "signer message: unknown type "
		    "%u", m->type);
	}
	if (b->err)
		return ck_err_set(b->err, "signer message %s: a field is over "
		    "its limit", signer_msg_type_name(m->type));
	blen = b->len - SIGNER_MSG_HDR;
	b->p[8] = (unsigned char)(blen >> 24);
	b->p[9] = (unsigned char)(blen >> 16);
	b->p[10] = (unsigned char)(blen >> 8);
	b->p[11] = (unsigned char)blen;
	return 0;
}

/* Decoding */

struct cur {
	const unsigned char *p;
	size_t left;
	int bad;
	const char *what;	/* the first field that failed */
};

static const unsigned char *
take(struct cur *c, size_t n, const char *what)
{
	const unsigned char *p;

	if (c->bad)
		return NULL;
	if (n > c->left) {
		c->bad = 1;
		c->what = what;
		return NULL;
	}
	p = c->p;
	c->p += n;
	c->left -= n;
	return p;
}

static uint32_t
get_u32(struct cur *c, const char *what)
{
	const unsigned char *p = take(c, 4, what);

	if (p == NULL)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint8_t
get_u8(struct cur *c, const char *what)
{
	const unsigned char *p = take(c, 1, what);

	return p ? p[0] : 0;
}

static uint64_t
get_u64(struct cur *c, const char *what)
{
	uint64_t hi = get_u32(c, what);

	return hi << 32 | get_u32(c, what);
}

static void
fail(struct cur *c, const char *what)
{
	if (!c->bad) {
		c->bad = 1;
		c->what = what;
	}
}

static const unsigned char *
get_bytes(struct cur *c, size_t min, size_t max, size_t *len,
    const char *what)
{
	uint32_t n = get_u32(c, what);
	const unsigned char *p;

	*len = 0;
	if (c->bad)
		return NULL;
	if (n < min || n > max) {
		fail(c, what);
		return NULL;
	}
	if ((p = take(c, n, what)) != NULL)
		*len = n;
	return p;
}

/* A text field into a buffer of `cap` bytes: no NUL inside, and it fits
 * with its terminator. */
static void
get_str(struct cur *c, char *out, size_t cap, const char *what)
{
	size_t n;
	const unsigned char *p = get_bytes(c, 0, cap - 1, &n, what);

	out[0] = '\0';
	if (p == NULL)
		return;
	if (memchr(p, 0, n) != NULL) {
		fail(c, what);
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

/* A serial number's content octets: positive, minimal, not zero. */
static int
serial_ok(const unsigned char *s, size_t n)
{
	size_t i;

	if (s[0] & 0x80)
		return 0;
	if (n > 1 && s[0] == 0 && !(s[1] & 0x80))
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] != 0)
			return 1;
	return 0;
}

static void
dec_prepare(struct cur *c, struct signer_msg_prepare *p)
{
	uint32_t i;

	p->kind = get_u8(c, "kind");
	if (p->kind >= SIGNER_CERT__MAX)
		fail(c, "kind");
	get_str(c, p->profile, sizeof(p->profile), "profile");
	p->subject = get_bytes(c, 2, SIGNER_NAME_DER_MAX, &p->subject_len,
	    "subject");
	p->spki = get_bytes(c, 2, SIGNER_SPKI_DER_MAX, &p->spki_len, "spki");
	p->not_before = (int64_t)get_u64(c, "not_before");
	p->not_after = (int64_t)get_u64(c, "not_after");
	p->is_ca = get_u8(c, "is_ca");
	if (p->is_ca > 1)
		fail(c, "is_ca");
	p->path_len = (int32_t)get_u32(c, "path_len");
	if (p->path_len < -1)
		fail(c, "path_len");
	p->ku = get_u32(c, "ku");
	if (p->ku >> CK_KU__MAX)
		fail(c, "ku");
	p->neku = get_u32(c, "eku count");
	if (p->neku > SIGNER_EKU_MAX) {
		fail(c, "eku count");
		return;
	}
	for (i = 0; i < p->neku && !c->bad; i++)
		get_str(c, p->eku[i], SIGNER_EKU_LEN, "eku");
	p->nsans = get_u32(c, "san count");
	if (p->nsans > SIGNER_SAN_MAX) {
		fail(c, "san count");
		return;
	}
	if (c->bad)
		return;
	if (p->nsans > 0 && (p->sans = calloc(p->nsans,
	    sizeof(*p->sans))) == NULL) {
		fail(c, "memory");
		return;
	}
	for (i = 0; i < p->nsans && !c->bad; i++) {
		p->sans[i].type = get_u8(c, "san type");
		if (p->sans[i].type > CK_NAME_URI)
			fail(c, "san type");
		get_str(c, p->sans[i].value, sizeof(p->sans[i].value),
		    "san value");
		if (p->sans[i].value[0] == '\0')
			fail(c, "san value");
	}
	get_str(c, p->crl_url, sizeof(p->crl_url), "crl_url");
	get_str(c, p->ocsp_url, sizeof(p->ocsp_url), "ocsp_url");
	get_str(c, p->issuer_url, sizeof(p->issuer_url), "issuer_url");
}

/* A serial's content octets into `out`: positive, minimal. */
static void
get_serial(struct cur *c, unsigned char *out, size_t *outlen,
    const char *what)
{
	size_t n;
	const unsigned char *d = get_bytes(c, 1, SIGNER_SERIAL_MAX, &n, what);

	*outlen = 0;
	if (d == NULL)
		return;
	if (!serial_ok(d, n)) {
		fail(c, what);
		return;
	}
	memcpy(out, d, n);
	*outlen = n;
}

/* What cert-issue adds to cert-prepare: the serial and the digest. */
static void
dec_issue(struct cur *c, struct signer_msg_prepare *p)
{
	size_t n;
	const unsigned char *d;

	get_serial(c, p->serial, &p->serial_len, "serial");
	if ((d = get_bytes(c, 32, 32, &n, "digest")) != NULL)
		memcpy(p->digest, d, 32);
}

static void
dec_serials(struct cur *c, struct signer_msg *m)
{
	uint32_t i;

	m->u.serials.sigalg = get_bytes(c, 0, SIGNER_SIGALG_MAX,
	    &m->u.serials.sigalg_len, "sigalg");
	m->u.serials.issuer = get_bytes(c, 0, 32, &m->u.serials.issuer_len,
	    "issuer");
	if (!c->bad && m->u.serials.issuer_len != (m->u.serials.sigalg_len ?
	    32u : 0u))
		fail(c, "issuer");
	m->u.serials.n = get_u32(c, "count");
	if (c->bad || m->u.serials.n == 0 ||
	    m->u.serials.n > SIGNER_SERIALS_MAX) {
		fail(c, "count");
		return;
	}
	if ((m->u.serials.v = calloc(m->u.serials.n,
	    sizeof(*m->u.serials.v))) == NULL) {
		fail(c, "memory");
		return;
	}
	for (i = 0; i < m->u.serials.n && !c->bad; i++)
		get_serial(c, m->u.serials.v[i].v, &m->u.serials.v[i].len,
		    "serial");
}

static void
dec_crl(struct cur *c, struct signer_msg_crl *l)
{
	uint32_t i;

	l->number = get_u64(c, "number");
	l->this_update = (int64_t)get_u64(c, "this_update");
	l->next_update = (int64_t)get_u64(c, "next_update");
	l->n = get_u32(c, "entry count");
	/* No allocation for entries the body cannot hold. */
	if (c->bad || l->n > SIGNER_CRL_MAX ||
	    (size_t)l->n * SIGNER_CRL_ENTRY_MIN > c->left) {
		fail(c, "entry count");
		return;
	}
	if (l->n > 0 && (l->entries = calloc(l->n,
	    sizeof(*l->entries))) == NULL) {
		fail(c, "memory");
		return;
	}
	for (i = 0; i < l->n && !c->bad; i++) {
		get_str(c, l->entries[i].serial_hex,
		    sizeof(l->entries[i].serial_hex), "serial");
		l->entries[i].revoked_at = (int64_t)get_u64(c, "revoked_at");
		l->entries[i].reason = get_u8(c, "reason");
		if (l->entries[i].serial_hex[0] == '\0' ||
		    l->entries[i].reason > 10)
			fail(c, "entry");
	}
}

static void
dec_ocsp(struct cur *c, struct signer_msg_ocsp *o)
{
	uint32_t i;

	o->this_update = (int64_t)get_u64(c, "this_update");
	o->next_update = (int64_t)get_u64(c, "next_update");
	o->has_nonce = get_u8(c, "has_nonce");
	if (o->has_nonce > 1)
		fail(c, "has_nonce");
	o->nonce = get_bytes(c, 0, SIGNER_NONCE_MAX, &o->nonce_len, "nonce");
	if (!o->has_nonce && o->nonce_len != 0)
		fail(c, "nonce");
	o->n = get_u32(c, "count");
	if (c->bad || o->n == 0 || o->n > SIGNER_OCSP_MAX) {
		fail(c, "count");
		return;
	}
	if ((o->v = calloc(o->n, sizeof(*o->v))) == NULL) {
		fail(c, "memory");
		return;
	}
	for (i = 0; i < o->n && !c->bad; i++) {
		o->v[i].certid = get_bytes(c, 2, SIGNER_CERTID_MAX,
		    &o->v[i].certid_len, "certid");
		o->v[i].status = get_u8(c, "status");
		o->v[i].revoked_at = (int64_t)get_u64(c, "revoked_at");
		o->v[i].reason = (int32_t)get_u32(c, "reason");
		if (o->v[i].status > 2 || o->v[i].reason < -1 ||
		    o->v[i].reason > 10)
			fail(c, "status");
	}
}

int
signer_msg_header(const unsigned char h[SIGNER_MSG_HDR], unsigned *type,
    uint32_t *id, uint32_t *len)
{
	unsigned t = (unsigned)h[0] << 8 | h[1];
	unsigned flags = (unsigned)h[2] << 8 | h[3];

	*type = t;
	*id = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
	    (uint32_t)h[6] << 8 | h[7];
	*len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
	    (uint32_t)h[10] << 8 | h[11];
	if (strcmp(signer_msg_type_name(t), "unknown") == 0)
		return ck_err_set(CK_E_PARSE, "signer message: unknown type "
		    "%u", t);
	if (flags != 0)
		return ck_err_set(CK_E_PARSE, "signer message: flags %#x",
		    flags);
	if (*len > signer_msg_max_body(t))
		return ck_err_set(CK_E_PARSE, "signer message %s: %u bytes "
		    "(at most %zu)", signer_msg_type_name(t), *len,
		    signer_msg_max_body(t));
	return 0;
}

int
signer_msg_decode(unsigned type, uint32_t id, const unsigned char *body,
    size_t len, struct signer_msg *m)
{
	struct cur c = { body, len, 0, NULL };

	memset(m, 0, sizeof(*m));
	m->type = type;
	m->id = id;
	if (len > signer_msg_max_body(type))
		return ck_err_set(CK_E_PARSE, "signer message %s: too long",
		    signer_msg_type_name(type));
	switch (type) {
	case SIGNER_MSG_UNLOCK:
		m->u.secret.buf = get_bytes(&c, 0, SIGNER_SECRET_MAX,
		    &m->u.secret.len, "secret");
		break;
	case SIGNER_MSG_STATUS:
		m->u.probe = get_u8(&c, "probe");
		if (m->u.probe > 1)
			fail(&c, "probe");
		break;
	case SIGNER_MSG_CERT_PREPARE:
	case SIGNER_MSG_CERT_ISSUE:
		if ((m->u.prepare = calloc(1, sizeof(*m->u.prepare))) == NULL)
			return CK_E_NOMEM;
		dec_prepare(&c, m->u.prepare);
		if (type == SIGNER_MSG_CERT_ISSUE)
			dec_issue(&c, m->u.prepare);
		break;
	case SIGNER_MSG_SERIALS:
		m->u.nserials = get_u32(&c, "count");
		if (m->u.nserials == 0 || m->u.nserials > SIGNER_SERIALS_MAX)
			fail(&c, "count");
		break;
	case SIGNER_MSG_R_SERIALS:
		dec_serials(&c, m);
		break;
	case SIGNER_MSG_CERT_SIGN:
	case SIGNER_MSG_CERT_ABORT:
		m->u.handle = get_u64(&c, "handle");
		break;
	case SIGNER_MSG_CRL_SIGN:
		dec_crl(&c, &m->u.crl);
		break;
	case SIGNER_MSG_OCSP_SIGN:
		dec_ocsp(&c, &m->u.ocsp);
		break;
	case SIGNER_MSG_CMS_SIGN:
		m->u.cms.with_chain = get_u8(&c, "with_chain");
		if (m->u.cms.with_chain > 1)
			fail(&c, "with_chain");
		m->u.cms.buf = get_bytes(&c, 1, SIGNER_CMS_MAX, &m->u.cms.len,
		    "content");
		break;
	case SIGNER_MSG_R_OK:
		break;
	case SIGNER_MSG_R_ERR:
		m->u.err.code = (int32_t)get_u32(&c, "code");
		if (m->u.err.code >= 0 || m->u.err.code <= CK_E__MAX)
			fail(&c, "code");
		get_str(&c, m->u.err.msg, sizeof(m->u.err.msg), "message");
		break;
	case SIGNER_MSG_R_PREPARED: {
		size_t n;
		const unsigned char *d;

		m->u.prepared.handle = get_u64(&c, "handle");
		if ((d = get_bytes(&c, 32, 32, &n, "digest")) != NULL)
			memcpy(m->u.prepared.digest, d, 32);
		get_serial(&c, m->u.prepared.serial,
		    &m->u.prepared.serial_len, "serial");
		break;
	}
	case SIGNER_MSG_R_DER:
		m->u.der.buf = get_bytes(&c, 1, SIGNER_DER_MAX, &m->u.der.len,
		    "der");
		break;
	case SIGNER_MSG_R_STATUS:
		m->u.status.available = get_u8(&c, "available");
		if (m->u.status.available > 1)
			fail(&c, "available");
		get_str(&c, m->u.status.why, sizeof(m->u.status.why), "why");
		break;
	default:
		return ck_err_set(CK_E_PARSE, "signer message: unknown type "
		    "%u", type);
	}
	if (!c.bad && c.left != 0)
		fail(&c, "trailing bytes");
	if (c.bad)
		return ck_err_set(CK_E_PARSE, "signer message %s: bad field "
		    "'%s'", signer_msg_type_name(type), c.what);
	return 0;
}

void
signer_msg_clear(struct signer_msg *m)
{
	switch (m->type) {
	case SIGNER_MSG_CERT_PREPARE:
	case SIGNER_MSG_CERT_ISSUE:
		if (m->u.prepare != NULL)
			free(m->u.prepare->sans);
		free(m->u.prepare);
		break;
	case SIGNER_MSG_R_SERIALS:
		free(m->u.serials.v);
		break;
	case SIGNER_MSG_CRL_SIGN:
		free(m->u.crl.entries);
		break;
	case SIGNER_MSG_OCSP_SIGN:
		free(m->u.ocsp.v);
		break;
	default:
		break;
	}
	memset(m, 0, sizeof(*m));
}
