/*
 * signer_main.c - the signer process: the only code that holds the key.
 *
 * The main thread reads one message at a time, checks its header against
 * the table of request types (signer_msg.h) and decodes it; anything
 * unknown, malformed, or a handle it never gave out ends the process at
 * once (an honest service process never sends such a thing, so the
 * service must be compromised). Decoded requests go to a small pool of
 * worker threads, which check them against this process's own copy of
 * the configuration, build, sign and reply (replies carry the request id
 * and may come back in any order).
 */
#include "signer/signer_proc.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "common/fsutil.h"
#include "common/privs.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "keystore/keystore.h"
#include "keystore/pkcs11.h"
#include "signer/signer.h"
#include "x509/csr.h"
#include "x509/keygen.h"
#include "x509/serial.h"

/* Prepared certificates not yet signed or aborted. */
#define SIGNER_PENDING_MAX 4096
/* Decoded requests waiting for a worker. */
#define SIGNER_QUEUE_MAX 256
#define SIGNER_THREADS_MAX 64
/* How far a certificate's notBefore may lie from now (the service
 * backdates by a minute; clocks of the two processes are the same). */
#define SIGNER_CLOCK_SLACK 600
#define SIGNER_NO_CA_MSG "the signer process issues no CA certificates: " \
	"issue them offline with certkeep issue while certkeepd is stopped"

/* The subjectPublicKeyInfo as received, re-encoded to check it is DER. */
typedef struct {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *key;
} SG_SPKI;

DECLARE_ASN1_FUNCTIONS(SG_SPKI)
ASN1_SEQUENCE(SG_SPKI) = {
	ASN1_SIMPLE(SG_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(SG_SPKI, key, ASN1_BIT_STRING)
} ASN1_SEQUENCE_END(SG_SPKI)
IMPLEMENT_ASN1_FUNCTIONS(SG_SPKI)

struct slot {
	uint64_t handle;	/* 0: free */
	struct signer_pending *p;
};

struct job {
	struct signer_msg m;
	unsigned char *body;
	size_t cost;		/* reserved in sctx.held */
	unsigned long read_no;	/* its header came with this read() */
	struct job *next;
};

/* Replies held back at most (send_msg()). */
#define SIGNER_OUT_MAX 32
#define SIGNER_OUT_BYTES (64u * 1024)

struct sctx {
	int fd;
	struct signer_rbuf rb;	/* the reading thread's */
	/* Replies held back (wmu; see send_msg()). */
	unsigned char out[SIGNER_OUT_BYTES];
	size_t out_len;
	unsigned nout;
	struct ck_config *cfg;
	X509 *cert;
	STACK_OF(X509) *chain;
	int64_t ca_not_before, ca_not_after;
	struct ck_profile tls;		/* certkeepd's own TLS certificate */
	int have_tls;
	struct signer *sg;
	pthread_mutex_t wmu;
	pthread_mutex_t pmu;
	struct slot slots[SIGNER_PENDING_MAX];
	pthread_mutex_t qmu;
	pthread_cond_t qcv, qspace;
	struct job *head, *tail;
	unsigned qlen;
	size_t held;		/* signer_msg_cost() of the jobs not freed */
	/* Serials reserved for cert-issue (pmu): open addressing on the
	 * serial's random octets, twice SIGNER_RESERVED_MAX slots. */
	struct rsv {
		unsigned char v[SIGNER_SERIAL_MAX];
		uint8_t len;	/* 0: free */
		int64_t at;	/* reserved at (monotonic s) */
	} rsv[2 * SIGNER_RESERVED_MAX];
	unsigned nrsv;
	int strict;		/* split home: trust only the key owner's */
};

static void die(const char *fmt, ...) __attribute__((noreturn,
    format(printf, 1, 2)));

/* A protocol violation: say what, and end without cleaning up (the key
 * goes with the process). */
static void
die(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "certkeep-signer: fatal: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	(void)!write(2, buf, strlen(buf));
	(void)!write(2, "\n", 1);
	_exit(3);
}

static int
write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	ssize_t k;

	while (n > 0) {
		k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * A worker that took a certificate request sent together with the next
 * one queued (worker()) holds its reply back, so that the replies to
 * requests sent together go back in one write. Whoever sends next without
 * holding back, or goes idle, writes them all; so does the reply that
 * makes SIGNER_OUT_MAX.
 */
static _Thread_local int hold_reply;

/* Write the replies held back; wmu held. */
static void
out_flush_locked(struct sctx *c)
{
	int w;

	if (c->out_len == 0)
		return;
	w = write_full(c->fd, c->out, c->out_len);
	c->out_len = 0;
	c->nout = 0;
	/* The service process is gone: so is our reason to exist. */
	if (w != 0)
		_exit(0);
}

static void
out_flush(struct sctx *c)
{
	pthread_mutex_lock(&c->wmu);
	out_flush_locked(c);
	pthread_mutex_unlock(&c->wmu);
}

static void
send_msg(struct sctx *c, const struct signer_msg *m)
{
	struct signer_buf b = { 0 };
	int w = 0;

	if (signer_msg_encode(m, &b) != 0)
		die("cannot encode a reply: %s", ck_err_msg());
	pthread_mutex_lock(&c->wmu);
	if (c->out_len + b.len <= sizeof(c->out)) {
		memcpy(c->out + c->out_len, b.p, b.len);
		c->out_len += b.len;
		if (!hold_reply || ++c->nout >= SIGNER_OUT_MAX)
			out_flush_locked(c);
	} else {
		out_flush_locked(c);
		w = write_full(c->fd, b.p, b.len);
	}
	pthread_mutex_unlock(&c->wmu);
	signer_buf_free(&b);
	if (w != 0)
		_exit(0);
}

static void
reply_err(struct sctx *c, uint32_t id, int code, const char *msg)
{
	struct signer_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_R_ERR;
	m.id = id;
	m.u.err.code = code < 0 && code > CK_E__MAX ? code : CK_E_INTERNAL;
	snprintf(m.u.err.msg, sizeof(m.u.err.msg), "%s", msg[0] ? msg :
	    ck_strerror(code));
	send_msg(c, &m);
}

static void
reply_der(struct sctx *c, uint32_t id, const unsigned char *der, size_t len)
{
	struct signer_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_R_DER;
	m.id = id;
	m.u.der.buf = der;
	m.u.der.len = len;
	send_msg(c, &m);
}

static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* Set-up, before the key */

/* Read the home's file NAME. On a split home only as the key owner's
 * (ck_fs_open_trusted: owned by us or root, written by nobody else, no
 * symlink, inside the home), as sshd's StrictModes does: the service
 * user can create files in the home. */
static int
read_home_file(struct sctx *c, const char *home, const char *name,
    size_t max, unsigned char **buf, size_t *len)
{
	char path[4096];
	int fd, r;

	if ((r = ck_path_join(path, sizeof(path), home, name)) != 0)
		return r;
	if (!c->strict)
		return ck_fs_read(path, max, buf, len);
	if ((r = ck_fs_open_trusted(home, name, getuid(), 0, &fd)) != 0)
		return r;
	r = ck_fs_read_fd(fd, max, buf, len);
	close(fd);
	if (r != 0 && r != CK_E_NOMEM)
		return ck_err_set(r, "cannot read %s", path);
	return r;
}

static int
load_chain(struct sctx *c, const char *home)
{
	unsigned char *buf = NULL;
	char path[4096];
	size_t len;
	BIO *bio = NULL;
	X509 *x;
	int r;

	if ((r = ck_path_join(path, sizeof(path), home,
	    c->cfg->chain_file)) != 0 ||
	    (r = read_home_file(c, home, c->cfg->chain_file, 1024 * 1024,
	    &buf, &len)) != 0)
		return r;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (c->chain = sk_X509_new_null()) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(c->chain, x)) {
			X509_free(x);
			r = CK_E_NOMEM;
			goto out;
		}
	ERR_clear_error();
	if (sk_X509_num(c->chain) == 0) {
		r = ck_err_set(CK_E_PARSE, "%s holds no certificate", path);
		goto out;
	}
	c->cert = sk_X509_value(c->chain, 0);
	if (!X509_up_ref(c->cert) ||
	    asn1_time_unix(X509_get0_notBefore(c->cert),
	    &c->ca_not_before) != 0 ||
	    asn1_time_unix(X509_get0_notAfter(c->cert),
	    &c->ca_not_after) != 0) {
		r = ck_err_set(CK_E_PARSE, "the CA certificate's validity");
		goto out;
	}
	r = 0;
out:
	BIO_free(bio);
	free(buf);
	return r;
}

/* The profile certkeepd's own TLS certificate is judged by (the same as
 * the service builds in self_tls(): [server] tls_names, serverAuth, at
 * most 30 days). */
static int
tls_profile(struct sctx *c)
{
	struct ck_strlist names = { 0 };
	char dns[CK_CONFIG_STR] = "", ipr[CK_CONFIG_STR] = "";
	unsigned char ip[16];
	size_t i, off;
	int r;

	if ((r = ck_profile_init(&c->tls, "certkeepd-tls")) != 0)
		return r;
	if ((r = ck_strlist_split(&names, c->cfg->server.tls_names)) != 0 ||
	    names.n == 0)
		goto out;
	for (i = 0; i < names.n; i++) {
		char *dst = ck_ip_parse(names.v[i], ip) ? ipr : dns;
		off = strlen(dst);
		if (dst == ipr)
			snprintf(dst + off, CK_CONFIG_STR - off, "%s%s/%d",
			    off ? "," : "", names.v[i],
			    strchr(names.v[i], ':') ? 128 : 32);
		else
			snprintf(dst + off, CK_CONFIG_STR - off, "%s%s",
			    off ? "," : "", names.v[i]);
	}
	if ((r = ck_profile_set(&c->tls, "key_usage",
	    "digitalSignature")) != 0 ||
	    (r = ck_profile_set(&c->tls, "ext_key_usage", "serverAuth")) != 0 ||
	    (r = ck_profile_set(&c->tls, "key_types", "ec-p256")) != 0 ||
	    (r = ck_profile_set(&c->tls, "max_validity_days", "30")) != 0 ||
	    (dns[0] && (r = ck_profile_set(&c->tls, "dns_suffixes",
	    dns)) != 0) ||
	    (ipr[0] && (r = ck_profile_set(&c->tls, "ip_ranges", ipr)) != 0) ||
	    (r = ck_profile_finish(&c->tls)) != 0)
		goto out;
	c->have_tls = names.n > 0;
out:
	ck_strlist_clear(&names);
	return r;
}

static int
load_config(struct sctx *c, const char *home)
{
	unsigned char *text = NULL;
	char path[4096];
	size_t len;
	int r;

	if ((r = ck_path_join(path, sizeof(path), home,
	    CK_CONFIG_FILE)) != 0 ||
	    (r = read_home_file(c, home, CK_CONFIG_FILE, CK_CONFIG_MAX, &text,
	    &len)) != 0 ||
	    (r = ck_config_parse((const char *)text, len, &c->cfg)) != 0)
		goto out;
	if ((r = load_chain(c, home)) != 0)
		goto out;
	if (c->strict) {
		/* The certificate is checked too (the service reads it), and
		 * the key file is opened now, judged before any passphrase
		 * arrives; keystore_load() reads it through this descriptor. */
		int fd;
		if ((r = ck_fs_open_trusted(home, c->cfg->cert_file, getuid(),
		    0, &fd)) != 0)
			goto out;
		close(fd);
		if (c->cfg->key_uri[0] == '\0' &&
		    ((r = ck_fs_open_trusted(home, c->cfg->key_file, getuid(),
		    1, &fd)) != 0 ||
		    (r = ck_path_join(path, sizeof(path), home,
		    c->cfg->key_file)) != 0 ||
		    (r = ck_fs_preopen_add(path, fd)) != 0))
			goto out;
		/* The token's module runs in this process, as the key owner,
		 * and gets the PIN: the service user must not be able to
		 * write it or put another in its place. */
		if (c->cfg->key_uri[0] != '\0' &&
		    c->cfg->pkcs11_module[0] != '\0' &&
		    (r = ck_fs_check_trusted_path(c->cfg->pkcs11_module,
		    getuid())) != 0)
			goto out;
	}
	r = tls_profile(c);
out:
	free(text);
	return r;
}

static int
unlock_key(struct sctx *c, const char *home, const struct ck_secret *pw)
{
	EVP_PKEY *key = NULL;
	char path[4096];
	int r;

	if (c->cfg->key_uri[0] != '\0')
		r = keystore_p11_load(c->cfg->pkcs11_module, c->cfg->key_uri,
		    pw, &key);
	else if ((r = ck_path_join(path, sizeof(path), home,
	    c->cfg->key_file)) == 0)
		r = keystore_load(path, pw, &key);
	if (r != 0)
		return r;
	/* signer_new() refuses a key that is not the certificate's. */
	return signer_new(key, c->cert, &c->sg);
}

/* Certificates */

/* Strict DER: decode exactly `len` bytes as `it` and re-encode them to
 * the same bytes. The object (free with ASN1_item_free(.., it) or the
 * type's _free) or NULL. */
static ASN1_VALUE *
parse_der(const unsigned char *der, size_t len, const ASN1_ITEM *it)
{
	const unsigned char *p = der;
	unsigned char *re = NULL;
	ASN1_VALUE *v = NULL;
	int rl;

	if (len > LONG_MAX || (v = ASN1_item_d2i(NULL, &p, (long)len,
	    it)) == NULL)
		goto out;
	if (p != der + len || (rl = ASN1_item_i2d(v, &re, it)) < 0 ||
	    (size_t)rl != len || memcmp(re, der, len) != 0) {
		ASN1_item_free(v, it);
		v = NULL;
	}
out:
	OPENSSL_free(re);
	ERR_clear_error();
	return v;
}

static X509_NAME *
parse_name(const unsigned char *der, size_t len)
{
	X509_NAME *n = (X509_NAME *)parse_der(der, len,
	    ASN1_ITEM_rptr(X509_NAME));

	/* parse_der() only sees the bytes received again (a decoded name
	 * keeps them): rebuilt from its entries, it must encode the same. */
	if (n != NULL && ck_name_is_der(n) != 1) {
		X509_NAME_free(n);
		n = NULL;
	}
	ERR_clear_error();
	return n;
}

/* The subject's attributes, as the profile judges them. */
static int
check_subject(const struct ck_profile *p, const X509_NAME *nm,
    const struct ck_names *sans, int is_ca)
{
	const X509_NAME_ENTRY *e;
	unsigned char *u = NULL, ip[16];
	char type[80], cn[CK_NAME_MAX] = "";
	struct ck_name tmp;
	int i, n = X509_NAME_entry_count(nm), ncn = 0, nid, ul;
	int any = ck_strlist_has(&p->subject_attrs, "*");
	size_t k;

	if (is_ca && n == 0)
		return ck_err_set(CK_E_POLICY, "a CA certificate needs a "
		    "subject name");
	for (i = 0; i < n; i++) {
		e = X509_NAME_get_entry(nm, i);
		nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		if (nid != NID_undef)
			snprintf(type, sizeof(type), "%s", OBJ_nid2sn(nid));
		else if (OBJ_obj2txt(type, sizeof(type),
		    X509_NAME_ENTRY_get_object(e), 1) <= 0)
			return ck_err_set(CK_E_POLICY, "subject attribute "
			    "type unreadable");
		if (!any && !ck_strlist_has(&p->subject_attrs, type))
			return ck_err_set(CK_E_POLICY, "subject attribute %s "
			    "is not allowed by profile %s", type, p->name);
		if (nid == NID_commonName) {
			if ((ul = ASN1_STRING_to_UTF8(&u,
			    X509_NAME_ENTRY_get_data(e))) < 0 ||
			    (size_t)ul >= sizeof(cn) ||
			    memchr(u, 0, (size_t)ul) != NULL) {
				OPENSSL_free(u);
				return ck_err_set(CK_E_POLICY, "subject CN "
				    "unreadable");
			}
			memcpy(cn, u, (size_t)ul);
			cn[ul] = '\0';
			OPENSSL_free(u);
			u = NULL;
			ncn++;
		}
	}
	if (ncn > 1)
		return ck_err_set(CK_E_POLICY, "the subject has more than one "
		    "CN");
	if (!is_ca && ncn == 0 && sans->n == 0)
		return ck_err_set(CK_E_POLICY, "the certificate names no one");
	if (ncn == 0 || is_ca)
		return 0;
	switch (p->cn_rule) {
	case CK_CN_NONE:
		return ck_err_set(CK_E_POLICY, "profile %s allows no common "
		    "name", p->name);
	case CK_CN_ANY:
		return 0;
	case CK_CN_EMAIL:
		tmp.type = CK_NAME_EMAIL;
		break;
	case CK_CN_DNS:
		tmp.type = ck_ip_parse(cn, ip) ? CK_NAME_IP : CK_NAME_DNS;
		break;
	default:
		return CK_E_INTERNAL;
	}
	snprintf(tmp.value, sizeof(tmp.value), "%s", cn);
	if (ck_profile_name_check(p, &tmp) != 0)
		return ck_err_set(CK_E_POLICY, "subject CN: %s",
		    ck_err_msg());
	/* The profile copies such a CN into the subjectAltName. */
	for (k = 0; k < sans->n; k++)
		if (sans->v[k].type == tmp.type &&
		    strcasecmp(sans->v[k].value, cn) == 0)
			return 0;
	return ck_err_set(CK_E_POLICY, "the subject CN is not among the "
	    "subjectAltNames");
}

/* A URL may be left out, or be the configured one: nothing else. */
static int
url_is(const char *got, const char *want, const char *what)
{
	if (got[0] == '\0' || strcmp(got, want) == 0)
		return 0;
	return ck_err_set(CK_E_POLICY, "%s is not this CA's", what);
}

/* A delegated OCSP responder certificate names the responder certkeepd
 * makes (signer_ocsp_responder_subject), nobody else: its subject would
 * otherwise be the service's choice. */
static int
ocsp_subject_ok(struct sctx *c, const struct signer_msg_prepare *q)
{
	X509_NAME *want = NULL;
	unsigned char *der = NULL;
	int len, ok, r;

	if ((r = signer_ocsp_responder_subject(c->cert, &want)) != 0)
		return r;
	len = i2d_X509_NAME(want, &der);
	X509_NAME_free(want);
	if (len < 0)
		return CK_E_NOMEM;
	ok = (size_t)len == q->subject_len &&
	    memcmp(der, q->subject, q->subject_len) == 0;
	OPENSSL_free(der);
	return ok ? 0 : ck_err_set(CK_E_POLICY, "an OCSP responder "
	    "certificate's subject is not the one certkeepd makes for it");
}

/* A delegated OCSP responder's key is of the CA key's type: certkeepd
 * makes it so (ocsp_self_prepare), and there is no profile to say
 * otherwise. */
static int
ocsp_key_ok(struct sctx *c, const char *key_desc)
{
	char ca[32];

	ck_key_describe(X509_get0_pubkey(c->cert), ca, sizeof(ca));
	if (strcmp(ca, key_desc) != 0)
		return ck_err_set(CK_E_POLICY, "an OCSP responder certificate's "
		    "key is of the CA key's type (%s), not %s", ca, key_desc);
	return 0;
}

/*
 * Everything a certificate request may ask for, judged against this
 * process's own configuration: the profile (or the fixed rules of the
 * two certificates certkeepd makes for itself), the CA certificate's
 * validity and constraints, the key's type (`key_desc`, as
 * ck_spki_describe() names it). The names and templates built are kept
 * in `sans`/`eku`.
 */
static int
check_prepare(struct sctx *c, const struct signer_msg_prepare *q,
    const X509_NAME *subject, const char *key_desc, struct ck_names *sans,
    struct ck_strlist *eku)
{
	const struct ck_profile *p;
	int64_t now = (int64_t)time(NULL), span;
	uint32_t i;
	int r;

	switch (q->kind) {
	case SIGNER_CERT_PROFILE:
		if ((p = ck_config_profile(c->cfg, q->profile)) == NULL)
			return ck_err_set(CK_E_POLICY, "no profile named '%s'",
			    q->profile);
		break;
	case SIGNER_CERT_SERVICE_TLS:
		if (!c->have_tls)
			return ck_err_set(CK_E_POLICY, "[server] tls_names is "
			    "empty");
		p = &c->tls;
		break;
	case SIGNER_CERT_OCSP:
		/* signer_ocsp_cert_prepare() checks the shape; the names
		 * are none; the subject is the one certkeepd gives it. */
		p = NULL;
		if ((r = ocsp_subject_ok(c, q)) != 0 ||
		    (r = ocsp_key_ok(c, key_desc)) != 0)
			return r;
		break;
	default:
		return ck_err_set(CK_E_POLICY, "unknown certificate kind");
	}
	/* The key: a type the profile allows, judged by the function that
	 * judges a CSR's key in the service. */
	if (p != NULL && (r = ck_profile_key_check(p, key_desc)) != 0)
		return r;
	/* Validity */
	if (q->not_after <= q->not_before)
		return ck_err_set(CK_E_POLICY, "validity ends before it "
		    "starts");
	if (q->not_before < now - SIGNER_CLOCK_SLACK ||
	    q->not_before > now + SIGNER_CLOCK_SLACK)
		return ck_err_set(CK_E_POLICY, "notBefore is not now");
	if (q->not_before < c->ca_not_before ||
	    q->not_after > c->ca_not_after)
		return ck_err_set(CK_E_POLICY, "the validity is not within "
		    "the CA certificate's");
	span = q->not_after - q->not_before;
	if (p != NULL && span > (int64_t)p->max_days * 86400 +
	    SIGNER_CLOCK_SLACK)
		return ck_err_set(CK_E_POLICY, "a validity of %lld days is "
		    "over profile %s's maximum of %u", (long long)(span /
		    86400), p->name, p->max_days);
	if (p == NULL && span > (int64_t)c->cfg->server.ocsp_signer_validity_s
	    + SIGNER_CLOCK_SLACK)
		return ck_err_set(CK_E_POLICY, "an OCSP responder certificate "
		    "valid for longer than ocsp_signer_validity_hours");
	/* CA or not */
	if (p == NULL ? q->is_ca : q->is_ca != (p->is_ca != 0))
		return ck_err_set(CK_E_POLICY, q->is_ca ? "CA:TRUE is not "
		    "allowed by this profile" : "CA:FALSE under a CA profile");
	if (q->is_ca && (q->path_len < 0 || q->path_len > p->max_path_len))
		return ck_err_set(CK_E_POLICY, "path length %d is not allowed "
		    "(at most %d)", q->path_len, p->max_path_len);
	if (!q->is_ca && q->path_len != -1)
		return ck_err_set(CK_E_POLICY, "a path length for a leaf");
	/* A subordinate CA is the one thing a compromised service must
	 * never get: refused unless the operator weakened the boundary on
	 * purpose ([signer] allow_ca). */
	if (q->is_ca && !c->cfg->signer.allow_ca)
		return ck_err_set(CK_E_POLICY, "%s", SIGNER_NO_CA_MSG);
	/* Usages: within the profile's; not omitted when it sets some
	 * (no extension means any usage). */
	if (p != NULL) {
		if ((q->ku & ~p->ku) != 0 || (p->ku != 0 && q->ku == 0))
			return ck_err_set(CK_E_POLICY, "key usage not allowed "
			    "by profile %s", p->name);
		if (p->eku.n > 0 && q->neku == 0)
			return ck_err_set(CK_E_POLICY, "profile %s requires "
			    "extended key usages", p->name);
	}
	for (i = 0; i < q->neku; i++) {
		if (!ck_eku_valid(q->eku[i]) || (p != NULL &&
		    !ck_strlist_has(&p->eku, q->eku[i])))
			return ck_err_set(CK_E_POLICY, "extended key usage %s "
			    "is not allowed", q->eku[i]);
		if ((r = ck_strlist_add(eku, q->eku[i])) != 0)
			return r;
	}
	/* Names */
	if (p == NULL && q->nsans > 0)
		return ck_err_set(CK_E_POLICY, "an OCSP responder certificate "
		    "has no subjectAltName");
	for (i = 0; i < q->nsans; i++) {
		if ((r = ck_names_add(sans, (enum ck_name_type)
		    q->sans[i].type, q->sans[i].value)) != 0)
			return r;
		if (p != NULL && ck_profile_name_check(p,
		    &sans->v[sans->n - 1]) != 0)
			return ck_err_set(CK_E_POLICY, "%s", ck_err_msg());
	}
	if (p != NULL && (r = check_subject(p, subject, sans, q->is_ca)) != 0)
		return r;
	/* The distribution points are this CA's own. */
	if ((r = url_is(q->crl_url, c->cfg->crl_url, "the CRL URL")) != 0 ||
	    (r = url_is(q->ocsp_url, c->cfg->ocsp_url, "the OCSP URL")) != 0 ||
	    (r = url_is(q->issuer_url, c->cfg->issuer_url,
	    "the issuer URL")) != 0)
		return r;
	return 0;
}

static uint64_t
slot_put(struct sctx *c, struct signer_pending *p)
{
	uint64_t h, rnd;
	unsigned i;

	if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
		return 0;
	pthread_mutex_lock(&c->pmu);
	for (i = 0; i < SIGNER_PENDING_MAX; i++)
		if (c->slots[i].handle == 0)
			break;
	if (i == SIGNER_PENDING_MAX) {
		pthread_mutex_unlock(&c->pmu);
		return 0;
	}
	h = (rnd << 12) | i;
	if (h == 0)
		h = (uint64_t)1 << 12 | i;
	c->slots[i].handle = h;
	c->slots[i].p = p;
	pthread_mutex_unlock(&c->pmu);
	return h;
}

/* Take the prepared certificate of a handle, or die: a handle we never
 * gave out (or gave out and took back) is a forged request. */
static struct signer_pending *
slot_take(struct sctx *c, uint64_t h)
{
	unsigned i = (unsigned)(h & (SIGNER_PENDING_MAX - 1));
	struct signer_pending *p = NULL;

	pthread_mutex_lock(&c->pmu);
	if (h != 0 && c->slots[i].handle == h) {
		p = c->slots[i].p;
		c->slots[i].handle = 0;
		c->slots[i].p = NULL;
	}
	pthread_mutex_unlock(&c->pmu);
	if (p == NULL)
		die("sign or abort of a handle never given out or already "
		    "used (%#llx)", (unsigned long long)h);
	return p;
}

/* What a cert-prepare or cert-issue asks for, decoded strictly and
 * checked (check_prepare), into a template of the signer's own. */
struct tmpl {
	struct ck_cert_template t;
	struct ck_names sans;
	struct ck_strlist eku;
	X509_NAME *subject;
	SG_SPKI *spki;
};

static void
tmpl_clear(struct tmpl *x)
{
	SG_SPKI_free(x->spki);
	X509_NAME_free(x->subject);
	ck_names_clear(&x->sans);
	ck_strlist_clear(&x->eku);
	memset(x, 0, sizeof(*x));
}

static int
tmpl_make(struct sctx *c, const struct signer_msg_prepare *q, struct tmpl *x)
{
	struct ck_cert_template *t = &x->t;
	char key_desc[32];
	int r;

	memset(x, 0, sizeof(*x));
	if ((x->subject = parse_name(q->subject, q->subject_len)) == NULL)
		return ck_err_set(CK_E_PARSE, "the subject is not a DER Name "
		    "(long-form or indefinite lengths, an unsorted SET or a "
		    "constructed string)");
	if ((x->spki = (SG_SPKI *)parse_der(q->spki, q->spki_len,
	    ASN1_ITEM_rptr(SG_SPKI))) == NULL)
		return ck_err_set(CK_E_PARSE, "the public key is not a DER "
		    "SubjectPublicKeyInfo");
	if ((r = ck_spki_describe(q->spki, q->spki_len, key_desc)) != 0 ||
	    (r = check_prepare(c, q, x->subject, key_desc, &x->sans,
	    &x->eku)) != 0)
		return r;
	t->subject = x->subject;
	t->spki_alg = x->spki->alg;
	t->spki_key = x->spki->key;
	t->spki_der = q->spki;
	t->spki_der_len = q->spki_len;
	/* t->serial stays NULL: the serial is the signer's (drawn here, or
	 * reserved before). */
	t->not_before = q->not_before;
	t->not_after = q->not_after;
	t->is_ca = q->is_ca;
	t->path_len = q->path_len;
	t->ku = q->ku;
	t->eku = &x->eku;
	t->sans = &x->sans;
	t->crl_url = q->crl_url;
	t->ocsp_url = q->ocsp_url;
	t->issuer_url = q->issuer_url;
	return 0;
}

static void
do_prepare(struct sctx *c, const struct signer_msg *m)
{
	const struct signer_msg_prepare *q = m->u.prepare;
	struct tmpl x;
	struct ck_cert_template t;
	struct signer_pending *pend = NULL;
	struct signer_msg rep;
	const unsigned char *serial;
	size_t serial_len;
	unsigned char digest[32];
	uint64_t h;
	int r;

	if ((r = tmpl_make(c, q, &x)) != 0)
		goto out;
	t = x.t;
	if (q->kind == SIGNER_CERT_OCSP)
		r = signer_ocsp_cert_prepare(c->sg, &t, &pend, digest);
	else
		r = signer_cert_prepare_der(c->sg, &t, &pend, digest);
	if (r != 0)
		goto out;
	memset(&rep, 0, sizeof(rep));
	signer_pending_serial_octets(pend, &serial, &serial_len);
	memcpy(rep.u.prepared.serial, serial, serial_len);
	rep.u.prepared.serial_len = serial_len;
	if ((h = slot_put(c, pend)) == 0) {
		r = ck_err_set(CK_E_BUSY, "too many prepared certificates "
		    "(%d) not signed yet", SIGNER_PENDING_MAX);
		goto out;
	}
	pend = NULL;
	rep.type = SIGNER_MSG_R_PREPARED;
	rep.id = m->id;
	rep.u.prepared.handle = h;
	memcpy(rep.u.prepared.digest, digest, 32);
	send_msg(c, &rep);
	r = 0;
out:
	if (r != 0)
		reply_err(c, m->id, r, ck_err_msg());
	signer_pending_free(pend);
	tmpl_clear(&x);
}

/* Reserved serials (cert-issue) */

#define RSV_SLOTS (2 * SIGNER_RESERVED_MAX)

/* The slot of serial v: the first of its probe sequence that holds it,
 * or (with `free_ok`) the first free one. -1 if neither. pmu held. */
static int
rsv_find(struct sctx *c, const unsigned char *v, size_t len, int free_ok)
{
	uint32_t h = 2166136261u;
	size_t i, k;

	for (i = 0; i < len; i++)
		h = (h ^ v[i]) * 16777619u;
	for (k = 0; k < RSV_SLOTS; k++) {
		struct rsv *e = &c->rsv[(h + k) % RSV_SLOTS];
		if (e->len == 0)
			return free_ok ? (int)((h + k) % RSV_SLOTS) : -1;
		if (e->len == len && memcmp(e->v, v, len) == 0)
			return (int)((h + k) % RSV_SLOTS);
	}
	return -1;
}

/* Remove slot i, moving later entries of its probe runs back so that no
 * lookup stops short at the hole (linear probing). pmu held. */
static void
rsv_remove(struct sctx *c, size_t i)
{
	size_t j = i, k;
	uint32_t h;

	c->rsv[i].len = 0;
	c->nrsv--;
	for (;;) {
		j = (j + 1) % RSV_SLOTS;
		if (c->rsv[j].len == 0)
			return;
		h = 2166136261u;
		for (k = 0; k < c->rsv[j].len; k++)
			h = (h ^ c->rsv[j].v[k]) * 16777619u;
		k = h % RSV_SLOTS;	/* j's home slot */
		/* Move j into the hole i unless its home lies cyclically
		 * in (i, j]. */
		if ((i < j) ? (k <= i || k > j) : (k <= i && k > j)) {
			c->rsv[i] = c->rsv[j];
			c->rsv[j].len = 0;
			i = j;
		}
	}
}

/* Forget reservations older than SIGNER_RESERVE_TTL. pmu held. */
static void
rsv_expire(struct sctx *c, int64_t now)
{
	size_t i;

	for (i = 0; i < RSV_SLOTS; i++)
		while (c->rsv[i].len != 0 &&
		    now - c->rsv[i].at > SIGNER_RESERVE_TTL)
			rsv_remove(c, i);	/* may move another into i */
}

static void
do_serials(struct sctx *c, const struct signer_msg *m)
{
	struct signer_msg rep;
	struct signer_msg_serial *v;
	ASN1_INTEGER *ai = NULL;
	unsigned char issuer[32];
	char hex[CK_SERIAL_HEX_MAX];
	int64_t now = ck_time_mono();
	uint32_t i, n = m->u.nserials;
	int r = 0, slot;

	if ((v = calloc(n, sizeof(*v))) == NULL)
		die("out of memory");
	/* Drawn before the lock: it also guards the handles. */
	for (i = 0; r == 0 && i < n; i++) {
		if ((r = ck_serial_random(&ai, hex)) != 0)
			break;
		v[i].len = (size_t)ASN1_STRING_length(ai);
		memcpy(v[i].v, ASN1_STRING_get0_data(ai), v[i].len);
		ASN1_INTEGER_free(ai);
		ai = NULL;
	}
	pthread_mutex_lock(&c->pmu);
	if (r == 0 && c->nrsv + n > SIGNER_RESERVED_MAX)
		rsv_expire(c, now);
	if (r == 0 && c->nrsv + n > SIGNER_RESERVED_MAX)
		r = ck_err_set(CK_E_BUSY, "%u serials reserved and not used "
		    "(at most %d)", c->nrsv, SIGNER_RESERVED_MAX);
	for (i = 0; r == 0 && i < n; i++) {
		/* 127 random bits drawn twice would be reserved once, and
		 * the reply would name it twice: refused instead. */
		if ((slot = rsv_find(c, v[i].v, v[i].len, 1)) < 0 ||
		    c->rsv[slot].len != 0) {
			while (i-- > 0)
				rsv_remove(c, (size_t)rsv_find(c, v[i].v,
				    v[i].len, 0));
			r = ck_err_set(CK_E_CRYPTO, "the random serials "
			    "repeat");
			break;
		}
		memcpy(c->rsv[slot].v, v[i].v, v[i].len);
		c->rsv[slot].len = (uint8_t)v[i].len;
		c->rsv[slot].at = now;
		c->nrsv++;
	}
	pthread_mutex_unlock(&c->pmu);
	if (r != 0)
		reply_err(c, m->id, r, ck_err_msg());
	else {
		memset(&rep, 0, sizeof(rep));
		rep.type = SIGNER_MSG_R_SERIALS;
		rep.id = m->id;
		rep.u.serials.sigalg_len = signer_sigalg(c->sg,
		    &rep.u.serials.sigalg, issuer);
		if (rep.u.serials.sigalg_len > 0) {
			rep.u.serials.issuer = issuer;
			rep.u.serials.issuer_len = 32;
		}
		rep.u.serials.n = n;
		rep.u.serials.v = v;
		send_msg(c, &rep);
	}
	free(v);
}

/* Take a reserved serial: 1 if it was reserved (and unused, and not
 * expired), 0 if not. Used up whatever comes after. */
static int
rsv_take(struct sctx *c, const unsigned char *v, size_t len)
{
	int slot, ok = 0;

	pthread_mutex_lock(&c->pmu);
	if ((slot = rsv_find(c, v, len, 0)) >= 0) {
		ok = ck_time_mono() - c->rsv[slot].at <= SIGNER_RESERVE_TTL;
		rsv_remove(c, (size_t)slot);
	}
	pthread_mutex_unlock(&c->pmu);
	return ok;
}

static void
do_issue(struct sctx *c, const struct signer_msg *m)
{
	const struct signer_msg_prepare *q = m->u.prepare;
	struct tmpl x;
	unsigned char *der = NULL;
	size_t len = 0;
	int r;

	memset(&x, 0, sizeof(x));
	/* A serial it never reserved, or one used before: refused (the
	 * service cannot get two certificates under one serial). */
	if (!rsv_take(c, q->serial, q->serial_len))
		r = ck_err_set(CK_E_POLICY, "cert-issue with a serial this "
		    "signer did not reserve, or used already");
	else if (q->kind != SIGNER_CERT_PROFILE)
		r = ck_err_set(CK_E_POLICY, "cert-issue is for profile "
		    "certificates only");
	else if ((r = tmpl_make(c, q, &x)) == 0)
		r = signer_cert_issue_der(c->sg, &x.t, q->serial,
		    q->serial_len, q->digest, &der, &len);
	if (r != 0)
		reply_err(c, m->id, r, ck_err_msg());
	else
		reply_der(c, m->id, der, len);
	OPENSSL_free(der);
	tmpl_clear(&x);
}

static void
do_sign(struct sctx *c, const struct signer_msg *m)
{
	struct signer_pending *p = slot_take(c, m->u.handle);
	unsigned char *der = NULL;
	size_t len = 0;
	int r;

	if ((r = signer_cert_sign(c->sg, p, &der, &len)) != 0)
		reply_err(c, m->id, r, ck_err_msg());
	else
		reply_der(c, m->id, der, len);
	OPENSSL_free(der);
}

static void
do_abort(struct sctx *c, const struct signer_msg *m)
{
	struct signer_msg rep;

	signer_pending_free(slot_take(c, m->u.handle));
	memset(&rep, 0, sizeof(rep));
	rep.type = SIGNER_MSG_R_OK;
	rep.id = m->id;
	send_msg(c, &rep);
}

/* CRLs */

static void
do_crl(struct sctx *c, const struct signer_msg *m)
{
	const struct signer_msg_crl *l = &m->u.crl;
	struct ck_crl_entry *ents = NULL;
	char norm[CK_SERIAL_HEX_MAX];
	char (*serials)[CK_SERIAL_HEX_MAX] = NULL;
	unsigned char *der = NULL;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL);
	uint32_t i;
	int r;

	if (l->this_update < now - 86400 || l->this_update > now +
	    SIGNER_CLOCK_SLACK || l->next_update <= l->this_update ||
	    l->next_update - l->this_update > (int64_t)366 * 86400) {
		r = ck_err_set(CK_E_POLICY, "CRL thisUpdate/nextUpdate out "
		    "of range");
		goto out;
	}
	if (l->n > 0 && ((ents = calloc(l->n, sizeof(*ents))) == NULL ||
	    (serials = calloc(l->n, sizeof(*serials))) == NULL)) {
		r = CK_E_NOMEM;
		goto out;
	}
	for (i = 0; i < l->n; i++) {
		if (ck_serial_normalize(l->entries[i].serial_hex, norm) != 0 ||
		    strcmp(norm, l->entries[i].serial_hex) != 0 ||
		    !ck_crl_reason_valid(l->entries[i].reason) ||
		    l->entries[i].revoked_at > now + SIGNER_CLOCK_SLACK) {
			r = ck_err_set(CK_E_POLICY, "CRL entry %u is not a "
			    "valid revocation", i);
			goto out;
		}
		memcpy(serials[i], norm, sizeof(norm));
		ents[i].serial_hex = serials[i];
		ents[i].revoked_at = l->entries[i].revoked_at;
		ents[i].reason = l->entries[i].reason;
	}
	if ((r = signer_crl_sign(c->sg, ents, l->n, l->number,
	    l->this_update, l->next_update, &der, &len)) != 0)
		goto out;
	reply_der(c, m->id, der, len);
out:
	if (r != 0)
		reply_err(c, m->id, r, ck_err_msg());
	OPENSSL_free(der);
	free(ents);
	free(serials);
}

/* OCSP */

/* 1 if the CertID names this CA (its name and key hashed with the
 * CertID's algorithm), 0 if not, -1 for an algorithm we do not take. */
static int
certid_is_ours(struct sctx *c, OCSP_CERTID *cid)
{
	ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
	ASN1_OBJECT *alg = NULL;
	ASN1_INTEGER *serial = NULL;
	const EVP_MD *md;
	const ASN1_BIT_STRING *key;
	unsigned char *nder = NULL, h1[EVP_MAX_MD_SIZE], h2[EVP_MAX_MD_SIZE];
	unsigned int l1 = 0, l2 = 0;
	int nlen, nid, ok;

	if (OCSP_id_get0_info(&nh, &alg, &kh, &serial, cid) != 1)
		return -1;
	nid = OBJ_obj2nid(alg);
	if (nid != NID_sha1 && nid != NID_sha256 && nid != NID_sha384 &&
	    nid != NID_sha512)
		return -1;
	md = EVP_get_digestbynid(nid);
	key = X509_get0_pubkey_bitstr(c->cert);
	if (md == NULL || key == NULL || (nlen = i2d_X509_NAME(
	    X509_get_subject_name(c->cert), &nder)) <= 0)
		return -1;
	ok = EVP_Digest(nder, (size_t)nlen, h1, &l1, md, NULL) &&
	    EVP_Digest(key->data, (size_t)key->length, h2, &l2, md, NULL);
	OPENSSL_free(nder);
	if (!ok)
		return -1;
	return (size_t)ASN1_STRING_length(nh) == l1 &&
	    memcmp(ASN1_STRING_get0_data(nh), h1, l1) == 0 &&
	    (size_t)ASN1_STRING_length(kh) == l2 &&
	    memcmp(ASN1_STRING_get0_data(kh), h2, l2) == 0;
}

static void
do_ocsp(struct sctx *c, const struct signer_msg *m)
{
	const struct signer_msg_ocsp *o = &m->u.ocsp;
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *cid = NULL;
	ASN1_TIME *thisupd = NULL, *nextupd = NULL, *rev = NULL;
	ASN1_OCTET_STRING *nv = NULL;
	X509_EXTENSION *ext = NULL;
	unsigned char *der = NULL;
	int64_t now = (int64_t)time(NULL);
	uint32_t i;
	int r, len, ours;

	if (o->this_update < now - SIGNER_CLOCK_SLACK ||
	    o->this_update > now + SIGNER_CLOCK_SLACK ||
	    o->next_update <= o->this_update ||
	    o->next_update - o->this_update >
	    (int64_t)c->cfg->server.ocsp_validity_s + SIGNER_CLOCK_SLACK) {
		r = ck_err_set(CK_E_POLICY, "OCSP thisUpdate/nextUpdate out "
		    "of range");
		goto out;
	}
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (thisupd = ASN1_GENERALIZEDTIME_set(NULL,
	    (time_t)o->this_update)) == NULL ||
	    (nextupd = ASN1_GENERALIZEDTIME_set(NULL,
	    (time_t)o->next_update)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	for (i = 0; i < o->n; i++) {
		if ((cid = (OCSP_CERTID *)parse_der(o->v[i].certid,
		    o->v[i].certid_len, ASN1_ITEM_rptr(OCSP_CERTID))) ==
		    NULL) {
			r = ck_err_set(CK_E_PARSE, "OCSP: CertID %u is not "
			    "DER", i);
			goto out;
		}
		/* Good or revoked only for this CA's certificates; a
		 * foreign issuer's are "unknown". */
		ours = certid_is_ours(c, cid);
		if (ours < 0 || (ours == 0 && o->v[i].status !=
		    V_OCSP_CERTSTATUS_UNKNOWN)) {
			r = ck_err_set(CK_E_POLICY, "OCSP: CertID %u is not "
			    "for this CA", i);
			goto out;
		}
		if (o->v[i].status == V_OCSP_CERTSTATUS_REVOKED) {
			/* The same reasons as in a CRL (not 7, unused). */
			if (o->v[i].reason != -1 &&
			    !ck_crl_reason_valid(o->v[i].reason)) {
				r = ck_err_set(CK_E_POLICY, "OCSP: reason %d "
				    "is not a CRLReason", (int)o->v[i].reason);
				goto out;
			}
			if (o->v[i].revoked_at > now + SIGNER_CLOCK_SLACK ||
			    (rev = ASN1_GENERALIZEDTIME_set(NULL,
			    (time_t)o->v[i].revoked_at)) == NULL) {
				r = ck_err_set(CK_E_POLICY, "OCSP: revocation "
				    "time");
				goto out;
			}
		} else if (o->v[i].reason != -1) {
			r = ck_err_set(CK_E_POLICY, "OCSP: a reason without a "
			    "revocation");
			goto out;
		}
		if (OCSP_basic_add1_status(bs, cid, o->v[i].status,
		    o->v[i].reason < 0 ? OCSP_REVOKED_STATUS_NOSTATUS :
		    o->v[i].reason, rev, thisupd, nextupd) == NULL) {
			r = ck_err_ssl(CK_E_NOMEM, "OCSP status");
			goto out;
		}
		ASN1_TIME_free(rev);
		rev = NULL;
		OCSP_CERTID_free(cid);
		cid = NULL;
	}
	if (o->has_nonce) {
		/* The request's extension value, as it was. */
		if ((nv = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(nv, o->nonce, (int)o->nonce_len) ||
		    (ext = X509_EXTENSION_create_by_NID(NULL,
		    NID_id_pkix_OCSP_Nonce, 0, nv)) == NULL ||
		    OCSP_BASICRESP_add_ext(bs, ext, -1) != 1) {
			r = CK_E_NOMEM;
			goto out;
		}
	}
	if ((r = signer_ocsp_sign(c->sg, &bs, 0)) != 0)
		goto out;
	if ((len = i2d_OCSP_BASICRESP(bs, &der)) <= 0) {
		r = ck_err_ssl(CK_E_CRYPTO, "encoding the OCSP response");
		goto out;
	}
	reply_der(c, m->id, der, (size_t)len);
out:
	if (r != 0)
		reply_err(c, m->id, r, ck_err_msg());
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(nv);
	ASN1_TIME_free(rev);
	ASN1_TIME_free(thisupd);
	ASN1_TIME_free(nextupd);
	OCSP_CERTID_free(cid);
	OCSP_BASICRESP_free(bs);
}

/* CMS */

/* The content types certkeep signs: audit checkpoints and signed heads,
 * backup manifests and custody records, each a JSON object that says
 * what it is in its first-level keys. */
static int
cms_content_ok(const unsigned char *buf, size_t len)
{
	json_t *doc, *v;
	const char *fmt;
	int ok = 0;

	if ((doc = json_loadb((const char *)buf, len,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 0;
	if (!json_is_object(doc))
		goto out;
	if (((v = json_object_get(doc, "certkeep-audit-checkpoint")) != NULL ||
	    (v = json_object_get(doc, "certkeep-audit-head")) != NULL) &&
	    json_is_integer(v) && json_integer_value(v) == 1 &&
	    json_object_size(doc) == 4) {
		ok = 1;
		goto out;
	}
	if ((v = json_object_get(doc, "format")) != NULL &&
	    json_is_string(v) && (fmt = json_string_value(v)) != NULL &&
	    (strcmp(fmt, "certkeep-backup/1") == 0 ||
	    strcmp(fmt, "certkeep-custody/1") == 0))
		ok = 1;
out:
	json_decref(doc);
	return ok;
}

static void
do_cms(struct sctx *c, const struct signer_msg *m)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int r;

	if (!cms_content_ok(m->u.cms.buf, m->u.cms.len)) {
		r = ck_err_set(CK_E_POLICY, "CMS: the content is not an audit "
		    "checkpoint, a backup manifest or a custody record");
		goto out;
	}
	if ((r = signer_cms_sign(c->sg, m->u.cms.buf, m->u.cms.len,
	    m->u.cms.with_chain ? c->chain : NULL, &der, &len)) != 0)
		goto out;
	reply_der(c, m->id, der, len);
out:
	if (r != 0)
		reply_err(c, m->id, r, ck_err_msg());
	OPENSSL_free(der);
}

static void
do_status(struct sctx *c, const struct signer_msg *m)
{
	struct signer_msg rep;

	memset(&rep, 0, sizeof(rep));
	rep.type = SIGNER_MSG_R_STATUS;
	rep.id = m->id;
	rep.u.status.available = (uint8_t)signer_available(c->sg,
	    m->u.probe, rep.u.status.why, sizeof(rep.u.status.why));
	send_msg(c, &rep);
}

/* The loop */

/* Free a job and give its memory back to the budget (SIGNER_HELD_MAX). */
static void
job_free(struct sctx *c, struct job *j)
{
	size_t cost = j->cost;

	signer_msg_clear(&j->m);
	free(j->body);
	free(j);
	pthread_mutex_lock(&c->qmu);
	c->held -= cost;
	pthread_cond_signal(&c->qspace);
	pthread_mutex_unlock(&c->qmu);
}

static void *
worker(void *arg)
{
	struct sctx *c = arg;
	struct job *j;
	int quick;

	for (;;) {
		pthread_mutex_lock(&c->qmu);
		if (c->head == NULL) {
			/* Idle: nothing held back waits for us. */
			pthread_mutex_unlock(&c->qmu);
			out_flush(c);
			pthread_mutex_lock(&c->qmu);
		}
		while (c->head == NULL)
			pthread_cond_wait(&c->qcv, &c->qmu);
		j = c->head;
		if ((c->head = j->next) == NULL)
			c->tail = NULL;
		c->qlen--;
		/* Replies are held back only over certificate requests that
		 * came in the same read (sent together: their sender waits
		 * for them all), never over a CRL or a CMS signature, nor
		 * over requests of other callers. */
		quick = j->m.type == SIGNER_MSG_CERT_ISSUE ||
		    j->m.type == SIGNER_MSG_CERT_SIGN ||
		    j->m.type == SIGNER_MSG_CERT_PREPARE;
		hold_reply = quick && c->head != NULL &&
		    c->head->read_no == j->read_no;
		pthread_cond_signal(&c->qspace);
		pthread_mutex_unlock(&c->qmu);
		if (!quick)
			out_flush(c);
		ck_err_clear();
		switch (j->m.type) {
		case SIGNER_MSG_STATUS:
			do_status(c, &j->m);
			break;
		case SIGNER_MSG_CERT_PREPARE:
			do_prepare(c, &j->m);
			break;
		case SIGNER_MSG_CERT_SIGN:
			do_sign(c, &j->m);
			break;
		case SIGNER_MSG_CERT_ABORT:
			do_abort(c, &j->m);
			break;
		case SIGNER_MSG_SERIALS:
			do_serials(c, &j->m);
			break;
		case SIGNER_MSG_CERT_ISSUE:
			do_issue(c, &j->m);
			break;
		case SIGNER_MSG_CRL_SIGN:
			do_crl(c, &j->m);
			break;
		case SIGNER_MSG_OCSP_SIGN:
			do_ocsp(c, &j->m);
			break;
		case SIGNER_MSG_CMS_SIGN:
			do_cms(c, &j->m);
			break;
		default:
			die("request %s after start",
			    signer_msg_type_name(j->m.type));
		}
		job_free(c, j);
	}
	return NULL;
}

/* Read one message: header, checked; body, decoded. NULL at EOF. */
static struct job *
read_job(struct sctx *c)
{
	unsigned char hdr[SIGNER_MSG_HDR];
	struct job *j;
	unsigned type;
	uint32_t id, len;
	size_t cost;
	unsigned long read_no;

	if (signer_rbuf_read(c->fd, &c->rb, hdr, sizeof(hdr)) != 0)
		return NULL;
	read_no = c->rb.reads;
	if (signer_msg_header(hdr, &type, &id, &len) != 0)
		die("%s", ck_err_msg());
	if (type >= SIGNER_MSG_REQ__MAX)
		die("a reply type (%s) sent to the signer",
		    signer_msg_type_name(type));
	/* Memory first: the body is not read (the service waits) while
	 * the requests held would take more than the budget. */
	cost = sizeof(*j) + signer_msg_cost(type, len);
	pthread_mutex_lock(&c->qmu);
	while (!signer_msg_admit(c->held, cost))
		pthread_cond_wait(&c->qspace, &c->qmu);
	c->held += cost;
	pthread_mutex_unlock(&c->qmu);
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (len > 0 && (j->body = malloc(len)) == NULL))
		die("out of memory");
	if (len > 0 && signer_rbuf_read(c->fd, &c->rb, j->body, len) != 0)
		die("truncated %s message", signer_msg_type_name(type));
	j->cost = cost;
	j->read_no = read_no;
	if (signer_msg_decode(type, id, j->body, len, &j->m) != 0)
		die("%s", ck_err_msg());
	return j;
}

static unsigned
nthreads(const struct sctx *c)
{
	long n = c->cfg->signer.threads;

	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > SIGNER_THREADS_MAX)
		n = SIGNER_THREADS_MAX;
	return (unsigned)n;
}

void
signer_proc_child(int fd, const char *home)
{
	signer_proc_child_as(fd, home, NULL);
}

void
signer_proc_child_as(int fd, const char *home, const char *key_user)
{
	static struct sctx ctx;
	struct sctx *c = &ctx;
	struct ck_secret *pw = NULL;
	struct signer_msg rep;
	struct job *j;
	pthread_t t;
	unsigned i, n;
	int r;

	c->fd = fd;
	pthread_mutex_init(&c->wmu, NULL);
	pthread_mutex_init(&c->pmu, NULL);
	pthread_mutex_init(&c->qmu, NULL);
	pthread_cond_init(&c->qcv, NULL);
	pthread_cond_init(&c->qspace, NULL);
	/* Files certkeepd opened ahead for itself are not ours: their
	 * descriptors went with close_range, and their numbers are ours
	 * again (3 is the socket). */
	ck_fs_preopen_forget();
	if (key_user != NULL) {
		/* The key owner's for good, before reading anything (and
		 * before PR_SET_PDEATHSIG, which a change of uid clears). */
		int switched;
		if (ck_privs_drop(key_user, home, 0, &switched) != 0 ||
		    !switched)
			die("%s", ck_err_msg()[0] ? ck_err_msg() :
			    "not started as root");
		c->strict = 1;
	}
	/* Gone with the service process, whatever kills it. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() == 1)
		_exit(0);
	(void)prctl(PR_SET_NAME, "certkeep-signer", 0, 0, 0);
	ck_process_harden();
	if ((r = load_config(c, home)) != 0) {
		/* Said on stderr and as the answer to the passphrase, so
		 * that certkeepd's start fails with it. */
		char why[512];
		snprintf(why, sizeof(why), "%s", ck_err_msg());
		fprintf(stderr, "certkeep-signer: %s\n", why);
		if ((j = read_job(c)) != NULL &&
		    j->m.type == SIGNER_MSG_UNLOCK)
			reply_err(c, j->m.id, r, why);
		_exit(1);
	}
	/* The first message is the passphrase, and only that. */
	if ((j = read_job(c)) == NULL)
		_exit(0);
	if (j->m.type != SIGNER_MSG_UNLOCK)
		die("%s before unlock", signer_msg_type_name(j->m.type));
	if ((pw = ck_secret_new(SIGNER_SECRET_MAX)) == NULL)
		die("out of memory");
	memcpy(pw->buf, j->m.u.secret.buf, j->m.u.secret.len);
	pw->len = j->m.u.secret.len;
	pw->buf[pw->len] = '\0';
	ck_wipe(j->body, j->m.u.secret.len + 4);
	r = unlock_key(c, home, pw);
	ck_secret_free(pw);
	if (r != 0) {
		reply_err(c, j->m.id, r, ck_err_msg());
		_exit(1);
	}
	/* Seed OpenSSL's random generators now (after fork() it reseeds,
	 * and its seed source may open /dev/urandom, kept open for later
	 * reseeds): once sandboxed, nothing opens a file. */
	RAND_keep_random_devices_open(1);
	{
		unsigned char b[32];
		if (RAND_bytes(b, sizeof(b)) != 1 ||
		    RAND_priv_bytes(b, sizeof(b)) != 1)
			die("the random generator cannot be seeded");
	}
	/* jansson seeds its hash tables from /dev/urandom on first use. */
	json_object_seed(0);
	/* Workers first: once sandboxed, no new threads. */
	n = nthreads(c);
	for (i = 0; i < n; i++)
		if (pthread_create(&t, NULL, worker, c) != 0)
			die("cannot start signing threads");
	if (signer_sandbox_apply(c->cfg->key_uri[0] != '\0',
	    c->cfg->signer.seccomp == CK_SECCOMP_LOG) != 0)
		die("sandbox: %s", ck_err_msg());
	memset(&rep, 0, sizeof(rep));
	rep.type = SIGNER_MSG_R_OK;
	rep.id = j->m.id;
	job_free(c, j);
	send_msg(c, &rep);
	while ((j = read_job(c)) != NULL) {
		if (j->m.type == SIGNER_MSG_UNLOCK)
			die("a second unlock");
		pthread_mutex_lock(&c->qmu);
		while (c->qlen >= SIGNER_QUEUE_MAX)
			pthread_cond_wait(&c->qspace, &c->qmu);
		if (c->tail != NULL)
			c->tail->next = j;
		else
			c->head = j;
		c->tail = j;
		c->qlen++;
		pthread_cond_signal(&c->qcv);
		pthread_mutex_unlock(&c->qmu);
	}
	/* The service closed its end: stop. */
	_exit(0);
}
