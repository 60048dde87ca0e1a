/*
 * server.c - bringing certkeepd's parts up and down, and housekeeping.
 */
#include "daemon/server.h"
#include "daemon/adminhttp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/secmem.h"
#include "common/timeutil.h"
#include "ca/approval.h"
#include "ca/eab_seal.h"
#include "proto/acme.h"
#include "proto/acme_int.h"
#include "proto/ocsp.h"
#include "signer/signer.h"
#include "x509/certbuild.h"
#include "x509/keygen.h"
#include "x509/names.h"

/* Housekeeping period. A revocation is visible to OCSP within this. */
#define HK_PERIOD_MS 200
/* How long a stop waits for accepted requests to be answered. */
#define STOP_DRAIN_S 30
/* The TLS certificate certkeepd issues itself at each start. */
#define SELF_TLS_DAYS 30
/* Outstanding ACME nonces (the oldest are forgotten beyond this) and how
 * long one stays usable. */
#define ACME_NONCES_MAX 65536
#define ACME_NONCE_TTL_S 3600

static int
ocsp_lookup(void *arg, const char *serial, struct ocsp_status *out)
{
	struct server *sv = arg;
	enum store_cert_status st;
	int64_t rat = 0;
	int reason = 0, r;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&sv->rd_mu);
	r = store_cert_status(sv->rd, serial, &st, &rat, &reason);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r == CK_E_NOTFOUND)
		return 0;
	if (r != 0)
		return r;
	/* Pending and failed rows were never handed out: unknown. */
	if (st == STORE_CERT_ISSUED)
		out->known = 1;
	else if (st == STORE_CERT_REVOKED) {
		out->known = 1;
		out->revoked = 1;
		out->revoked_at = rat;
		out->reason = reason;
	}
	return 0;
}

struct crl_out {
	unsigned char *der;
	size_t len;
	uint64_t number;
	int64_t validity;
};

static int
crl_write(struct ck_ca *ca, void *arg)
{
	struct crl_out *co = arg;

	/* The committer is the only thread that swaps the configuration. */
	co->validity = (int64_t)ca->cfg->crl_validity_hours * 3600;
	return ck_ca_crl(ca, &co->der, &co->len, &co->number);
}

/* In the committer too: it alone may read the configuration unlocked. */
static int
crl_publish_write(struct ck_ca *ca, void *arg)
{
	struct crl_out *co = arg;

	return ck_ca_crl_publish(ca, co->der, co->len);
}

int
server_crl_refresh(struct server *sv)
{
	struct crl_out co;
	char msg[512];
	int r;

	memset(&co, 0, sizeof(co));
	r = ck_pipeline_write_wait(sv->pl, crl_write, &co, msg, sizeof(msg));
	if (r != 0) {
		ck_error("cannot sign a new CRL: %s", msg);
		return ck_err_set(r, "%s", msg);
	}
	/* Durable now: publish the files as well. */
	if ((r = ck_pipeline_write_wait(sv->pl, crl_publish_write, &co, msg,
	    sizeof(msg))) != 0)
		ck_error("cannot publish the CRL: %s", msg);
	pthread_rwlock_wrlock(&sv->lock);
	OPENSSL_free(sv->crl_der);
	sv->crl_der = co.der;
	sv->crl_len = co.len;
	sv->crl_number = co.number;
	sv->crl_this_update = ck_time_now();
	sv->crl_next_update = sv->crl_this_update + co.validity;
	pthread_rwlock_unlock(&sv->lock);
	return 0;
}

int
server_revoke_write(struct ck_ca *ca, void *arg)
{
	struct server_revocation *rev = arg;

	/* Always commit: a refused revocation leaves its audit entry. */
	rev->r = ck_ca_revoke_as(ca, rev->requester, rev->serial,
	    rev->reason);
	if (rev->r != 0)
		snprintf(rev->msg, sizeof(rev->msg), "%s", ck_err_msg());
	return 0;
}

void
server_revoked(struct server *sv)
{
	atomic_fetch_add(&sv->m.revoked, 1);
	pthread_mutex_lock(&sv->hk_mu);
	sv->crl_wanted = 1;
	pthread_cond_signal(&sv->hk_cv);
	pthread_mutex_unlock(&sv->hk_mu);
}

static int
tokens_reload(struct server *sv)
{
	struct ck_token_set *set = NULL, *old;
	int64_t seq = 0;
	int r;

	pthread_mutex_lock(&sv->rd_mu);
	if ((r = store_token_seq(sv->rd, &seq)) == 0)
		r = ck_token_set_load(sv->rd, &set);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0)
		return r;
	pthread_rwlock_wrlock(&sv->lock);
	old = sv->tokens;
	sv->tokens = set;
	sv->tokens_seq = seq;
	pthread_rwlock_unlock(&sv->lock);
	ck_token_set_free(old);
	return 0;
}

int
server_tokens_refresh(struct server *sv)
{
	int64_t seq = 0, have;
	int r;

	/* One small query; a reload only when a token row changed. */
	pthread_mutex_lock(&sv->rd_mu);
	r = store_token_seq(sv->rd, &seq);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0)
		return r;
	pthread_rwlock_rdlock(&sv->lock);
	have = sv->tokens_seq;
	pthread_rwlock_unlock(&sv->lock);
	return seq == have ? 0 : tokens_reload(sv);
}

struct change_scan {
	struct server *sv;
	int revoked;
};

static int
on_change(const char *serial, enum store_cert_status st, void *arg)
{
	struct change_scan *cs = arg;

	ocsp_invalidate(cs->sv->ocsp, serial);
	if (st == STORE_CERT_REVOKED)
		cs->revoked = 1;
	return 0;
}

/* ---- the delegated OCSP responder ([server] ocsp_signer) ---- */

enum ocsp_mode {
	OCSP_MODE_CA,		/* the CA key signs every response */
	OCSP_MODE_SELF,		/* a certificate certkeepd issues itself */
	OCSP_MODE_FILES,	/* ocsp_cert and ocsp_key */
	OCSP_MODE__MAX
};

/* The certificate certkeepd issues itself is recorded under this
 * profile name. */
#define OCSP_SELF_PROFILE "certkeepd-ocsp"
/* How far its notBefore is set in the past, for clients with slow clocks
 * (as for any other certificate). */
#define OCSP_SELF_BACKDATE 60
/* A failed renewal is tried again after this. */
#define OCSP_RENEW_RETRY_S 60
/* ocsp_key and ocsp_cert are at most this large. */
#define OCSP_FILE_MAX (256u * 1024)
/* Warn about an expiring operator certificate at most this often. */
#define OCSP_WARN_EVERY_S 3600

/* One issuance of certkeepd's own responder certificate. */
struct ocsp_self {
	EVP_PKEY *key;
	X509_NAME *subject;
	struct ck_strlist eku;
	struct ck_cert_template t;
	struct signer_pending *pend;
	struct store_cert rec;
	char subj[1024];
	char crl_url[CK_CONFIG_STR];
	char issuer_url[CK_CONFIG_STR];
	unsigned char *der;
	size_t der_len;
	char why[512];		/* why signing failed */
};

static void
ocsp_self_clear(struct ocsp_self *o)
{
	EVP_PKEY_free(o->key);
	X509_NAME_free(o->subject);
	ck_strlist_clear(&o->eku);
	signer_pending_free(o->pend);
	OPENSSL_free(o->der);
	memset(o, 0, sizeof(*o));
}

/*
 * Judge and build: a fresh key of the CA key's type, the TBS of
 * a responder certificate valid for `validity_s` (cut at the CA's own
 * expiry) and its store row. The URLs must be in o already.
 */
static int
ocsp_self_prepare(struct ck_ca *ca, uint32_t validity_s, struct ocsp_self *o)
{
	unsigned char digest[32];
	char kdesc[32];
	int64_t now = ck_time_now(), ca_na = 0;
	struct tm tm;
	int kt, r;

	ck_key_describe(X509_get0_pubkey(ca->cert), kdesc, sizeof(kdesc));
	if ((kt = ck_key_type_parse(kdesc)) < 0)
		return ck_err_set(CK_E_INVAL, "cannot make an OCSP responder "
		    "key of the CA key's type (%s): set [server] ocsp_cert and "
		    "ocsp_key, or ocsp_signer = ca", kdesc);
	if ((r = ck_key_generate((enum ck_key_type)kt, &o->key)) != 0 ||
	    (r = signer_ocsp_responder_subject(ca->cert,
	    &o->subject)) != 0 ||
	    (r = ck_strlist_add(&o->eku, "OCSPSigning")) != 0)
		return r;
	o->t.subject = o->subject;
	o->t.pubkey = o->key;
	o->t.not_before = now - OCSP_SELF_BACKDATE;
	o->t.not_after = now + (int64_t)validity_s;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &tm) == 1 &&
	    (ca_na = (int64_t)timegm(&tm)) < o->t.not_after)
		o->t.not_after = ca_na;
	o->t.is_ca = 0;
	o->t.path_len = -1;
	o->t.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
	o->t.eku = &o->eku;
	/* No OCSP URL: with id-pkix-ocsp-nocheck nobody asks about it. */
	o->t.crl_url = o->crl_url;
	o->t.issuer_url = o->issuer_url;
	if ((r = signer_ocsp_cert_prepare(ca->signer, &o->t, &o->pend,
	    digest)) != 0)
		return r;
	/* The serial is the signer's choice, logged with the digest. */
	snprintf(o->rec.serial, sizeof(o->rec.serial), "%s",
	    signer_pending_serial(o->pend));
	ck_hex_encode(digest, 32, o->rec.tbs_sha256);
	X509_NAME_oneline(o->subject, o->subj, sizeof(o->subj));
	o->rec.subject = o->subj;
	o->rec.names = "";
	o->rec.profile = OCSP_SELF_PROFILE;
	o->rec.requester = "certkeepd";
	o->rec.not_before = o->t.not_before;
	o->rec.not_after = o->t.not_after;
	o->rec.created_at = now;
	o->rec.is_ca = 0;
	return 0;
}

/* Log before sign (a write: at start on the store directly, later in the
 * committer). */
static int
ocsp_self_log(struct ck_ca *ca, void *arg)
{
	struct ocsp_self *o = arg;

	return store_cert_insert_pending(ca->st, &o->rec);
}

static int
ocsp_self_record(struct ck_ca *ca, void *arg)
{
	struct ocsp_self *o = arg;
	char detail[600];
	int r;

	snprintf(detail, sizeof(detail), "profile %s, subject %.200s, "
	    "names ", OCSP_SELF_PROFILE, o->subj);
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_cert_mark_issued(ca->st, o->rec.serial, o->der,
	    o->der_len)) != 0 ||
	    (r = audit_append(ca->st, "certkeepd", "issue", o->rec.serial,
	    AUDIT_OK, detail)) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

static int
ocsp_self_record_failed(struct ck_ca *ca, void *arg)
{
	struct ocsp_self *o = arg;
	int r;

	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_cert_mark_failed(ca->st, o->rec.serial)) != 0 ||
	    (r = audit_append(ca->st, "certkeepd", "issue", o->rec.serial,
	    AUDIT_FAILED, o->why)) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

/* Run a store write: directly before the pipeline owns the store, else
 * through it (durable when this returns). */
static int
ocsp_write(struct server *sv, ck_write_fn fn, void *arg)
{
	char msg[512];
	int r;

	if (sv->pl == NULL)
		return fn(sv->ca, arg);
	if ((r = ck_pipeline_write_wait(sv->pl, fn, arg, msg,
	    sizeof(msg))) != 0)
		ck_err_set(r, "%s", msg);
	return r;
}

/*
 * Issue certkeepd's own responder certificate through log, sign, record,
 * and make it the responder's delegate.
 */
static int
ocsp_self_issue(struct server *sv)
{
	struct ck_ca *ca = sv->ca;
	struct ocsp_self o;
	const unsigned char *p;
	uint32_t validity;
	X509 *x = NULL;
	char na[32];
	int r;

	memset(&o, 0, sizeof(o));
	/* The committer swaps the configuration under the lock. */
	pthread_rwlock_rdlock(&sv->lock);
	validity = ca->cfg->server.ocsp_signer_validity_s;
	snprintf(o.crl_url, sizeof(o.crl_url), "%s", ca->cfg->crl_url);
	snprintf(o.issuer_url, sizeof(o.issuer_url), "%s",
	    ca->cfg->issuer_url);
	pthread_rwlock_unlock(&sv->lock);
	if ((r = ocsp_self_prepare(ca, validity, &o)) != 0 ||
	    (r = ocsp_write(sv, ocsp_self_log, &o)) != 0)
		goto out;
	r = signer_cert_sign(ca->signer, o.pend, &o.der, &o.der_len);
	o.pend = NULL;
	if (r != 0) {
		snprintf(o.why, sizeof(o.why), "%s", ck_err_msg());
		(void)ocsp_write(sv, ocsp_self_record_failed, &o);
		r = ck_err_set(r, "%s", o.why);
		goto out;
	}
	if ((r = ocsp_write(sv, ocsp_self_record, &o)) != 0)
		goto out;
	p = o.der;
	if ((x = d2i_X509(NULL, &p, (long)o.der_len)) == NULL) {
		r = ck_err_ssl(CK_E_INTERNAL, "the new OCSP responder "
		    "certificate");
		goto out;
	}
	r = ocsp_responder_set_delegate(sv->ocsp, o.key, x);
	o.key = NULL;		/* the responder's now, also on failure */
	if (r != 0)
		goto out;
	sv->ocsp_not_after = o.rec.not_after;
	sv->ocsp_renew_at = o.rec.not_before +
	    (o.rec.not_after - o.rec.not_before) / 2;
	/* (Cut short by the CA's own expiry, it must not renew in a loop.) */
	if (sv->ocsp_renew_at < o.rec.created_at + OCSP_RENEW_RETRY_S)
		sv->ocsp_renew_at = o.rec.created_at + OCSP_RENEW_RETRY_S;
	ck_time_format(o.rec.not_after, na, sizeof(na));
	ck_info("OCSP responses are signed by certificate %s (%s), valid "
	    "until %s", o.rec.serial, OCSP_SELF_PROFILE, na);
out:
	X509_free(x);
	ocsp_self_clear(&o);
	return r;
}

/* Prefix the last error message (ck_err_set() writes the buffer
 * ck_err_msg() reads: copy it first). */
static int
err_prefix(int r, const char *what)
{
	char msg[768];

	snprintf(msg, sizeof(msg), "%s", ck_err_msg());
	return ck_err_set(r, "%s%s", what, msg);
}

/* PEM password callback: the operator's key is not encrypted. */
static int
no_pass_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * The operator's responder certificate and key ([server] ocsp_cert,
 * ocsp_key): the key file must be private to us, like any key file; both
 * are checked by the responder before use.
 */
static int
ocsp_files_load(struct server *sv, const char *cert_name,
    const char *key_name)
{
	char cpath[4096], kpath[4096], na[32];
	unsigned char *kbuf = NULL, *cbuf = NULL;
	size_t klen = 0, clen = 0;
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int64_t not_after = 0;
	struct tm tm;
	int r;

	if ((r = ck_ca_path(sv->ca, key_name, kpath, sizeof(kpath))) != 0 ||
	    (r = ck_ca_path(sv->ca, cert_name, cpath, sizeof(cpath))) != 0)
		return r;
	if ((r = ck_fs_check_private_file(kpath)) != 0 ||
	    (r = ck_fs_read(kpath, OCSP_FILE_MAX, &kbuf, &klen)) != 0) {
		r = err_prefix(r, "[server] ocsp_key: ");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(kbuf, (int)klen)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((key = PEM_read_bio_PrivateKey(bio, NULL, no_pass_cb,
	    NULL)) == NULL) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PARSE, "[server] ocsp_key: %s is not an "
		    "unencrypted PEM private key", kpath);
		goto out;
	}
	BIO_free(bio);
	bio = NULL;
	if ((r = ck_fs_read(cpath, OCSP_FILE_MAX, &cbuf, &clen)) != 0) {
		r = err_prefix(r, "[server] ocsp_cert: ");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(cbuf, (int)clen)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PARSE, "[server] ocsp_cert: %s is not a "
		    "PEM certificate", cpath);
		goto out;
	}
	if (X509_get_ext_by_NID(x, NID_id_pkix_OCSP_noCheck, -1) < 0)
		ck_warn("[server] ocsp_cert %s has no id-pkix-ocsp-nocheck "
		    "extension: clients may ask about its own status",
		    cpath);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		not_after = (int64_t)timegm(&tm);
	r = ocsp_responder_set_delegate(sv->ocsp, key, x);
	key = NULL;		/* the responder's now, also on failure */
	if (r != 0) {
		char what[4200];
		snprintf(what, sizeof(what), "[server] ocsp_cert %s: ", cpath);
		r = err_prefix(r, what);
		goto out;
	}
	sv->ocsp_not_after = not_after;
	ck_time_format(not_after, na, sizeof(na));
	ck_info("OCSP responses are signed by %s, valid until %s", cpath, na);
out:
	BIO_free(bio);
	EVP_PKEY_free(key);
	X509_free(x);
	ck_wipe(kbuf, klen);
	free(kbuf);
	free(cbuf);
	return r;
}

/* At start, before the pipeline owns the store: who signs OCSP. */
static int
ocsp_signer_start(struct server *sv)
{
	const struct ck_server_config *cf = &sv->ca->cfg->server;

	if (cf->ocsp_signer != CK_OCSP_SIGNER_DELEGATED) {
		sv->ocsp_mode = OCSP_MODE_CA;
		return 0;
	}
	if (cf->ocsp_cert[0] != '\0') {
		sv->ocsp_mode = OCSP_MODE_FILES;
		return ocsp_files_load(sv, cf->ocsp_cert, cf->ocsp_key);
	}
	sv->ocsp_mode = OCSP_MODE_SELF;
	return ocsp_self_issue(sv);
}

/* In the housekeeper: renew certkeepd's own certificate at half its life
 * (or when a reload asks), re-read the files on a reload, and warn about
 * an operator certificate that expires soon. */
static void
ocsp_signer_tend(struct server *sv, int64_t now, int reload)
{
	char cert[CK_CONFIG_STR], key[CK_CONFIG_STR], na[32];
	int64_t margin;
	int same;

	switch (sv->ocsp_mode) {
	case OCSP_MODE_SELF:
		if (!reload && now < sv->ocsp_renew_at)
			return;
		if (ocsp_self_issue(sv) != 0) {
			/* The old certificate serves on meanwhile. */
			ck_error("cannot renew the OCSP responder certificate "
			    "(trying again in %d s): %s", OCSP_RENEW_RETRY_S,
			    ck_err_msg());
			sv->ocsp_renew_at = now + OCSP_RENEW_RETRY_S;
		}
		return;
	case OCSP_MODE_FILES:
		if (reload) {
			pthread_rwlock_rdlock(&sv->lock);
			same = sv->ca->cfg->server.ocsp_signer ==
			    CK_OCSP_SIGNER_DELEGATED &&
			    sv->ca->cfg->server.ocsp_cert[0] != '\0';
			snprintf(cert, sizeof(cert), "%s",
			    sv->ca->cfg->server.ocsp_cert);
			snprintf(key, sizeof(key), "%s",
			    sv->ca->cfg->server.ocsp_key);
			pthread_rwlock_unlock(&sv->lock);
			if (!same)
				ck_warn("a change of [server] ocsp_signer "
				    "takes effect at the next start");
			else if (ocsp_files_load(sv, cert, key) != 0)
				ck_error("OCSP responder certificate not "
				    "replaced: %s", ck_err_msg());
			else
				sv->ocsp_warned_at = 0;
		}
		/* Nobody renews it but the operator: say so in time. */
		pthread_rwlock_rdlock(&sv->lock);
		margin = 2 * (int64_t)sv->ca->cfg->server.ocsp_validity_s;
		pthread_rwlock_unlock(&sv->lock);
		if (now >= sv->ocsp_not_after - margin &&
		    now >= sv->ocsp_warned_at + OCSP_WARN_EVERY_S) {
			ck_time_format(sv->ocsp_not_after, na, sizeof(na));
			ck_warn("the OCSP responder certificate ([server] "
			    "ocsp_cert) expires %s: replace it and reload",
			    na);
			sv->ocsp_warned_at = now;
		}
		return;
	default:
		return;
	}
}

/* ---- the audit log: checkpoints and the syslog copy ---- */

#define AUDIT_SYSLOG_NEXT_KEY "audit_syslog_next"
#define AUDIT_SYSLOG_BACKLOG 10000	/* at most sent at start */

static int
cp_write(struct ck_ca *ca, void *arg)
{
	(void)arg;
	return audit_checkpoint(ca, NULL, NULL);
}

/* A checkpoint now (through the committer, which owns the store). */
static int
audit_cp_now(struct server *sv)
{
	char msg[256];
	int r;

	if ((r = ck_pipeline_write_wait(sv->pl, cp_write, NULL, msg,
	    sizeof(msg))) != 0)
		ck_error("audit checkpoint: %s", msg);
	sv->audit_cp_at = ck_time_now();
	return r;
}

/* At start: a checkpoint over what happened while we were stopped, and
 * the syslog copy resumed where the last run left it. */
static int
audit_start(struct server *sv)
{
	char *v = NULL;
	unsigned char h[32];
	int64_t head = 0;
	int r;

	if ((r = audit_cp_now(sv)) != 0)
		return r;
	sv->audit_syslog = sv->ca->cfg->audit.syslog;
	if (!sv->audit_syslog)
		return 0;
	audit_syslog_open(&sv->syslog_sink, sv->ca->cfg->audit.syslog_socket);
	pthread_mutex_lock(&sv->rd_mu);
	if (store_audit_last(sv->rd, &head, h) != 0)
		head = 0;
	if (store_meta_get(sv->rd, AUDIT_SYSLOG_NEXT_KEY, &v) == 0)
		sv->audit_syslog_next = strtoll(v, NULL, 10);
	pthread_mutex_unlock(&sv->rd_mu);
	free(v);
	if (sv->audit_syslog_next < 1)
		sv->audit_syslog_next = 1;
	if (sv->audit_syslog_next < head - AUDIT_SYSLOG_BACKLOG + 1)
		sv->audit_syslog_next = head - AUDIT_SYSLOG_BACKLOG + 1;
	return 0;
}

static void
audit_tend(struct server *sv, int64_t now)
{
	unsigned interval;

	pthread_rwlock_rdlock(&sv->lock);
	interval = sv->ca->cfg->audit.checkpoint_interval_s;
	pthread_rwlock_unlock(&sv->lock);
	if (sv->audit_syslog) {
		/* Read under the read connection's lock, send after it: a
		 * slow syslog must not hold up the requests that read. */
		struct audit_syslog_batch *b = malloc(sizeof(*b));
		int64_t last;
		int full;
		do {
			full = 0;
			if (b == NULL)
				break;
			pthread_mutex_lock(&sv->rd_mu);
			if (audit_syslog_collect(sv->rd, sv->audit_syslog_next,
			    b) != 0)
				b->n = 0;
			pthread_mutex_unlock(&sv->rd_mu);
			full = b->n == AUDIT_SYSLOG_BATCH;
			/* What syslog did not take is sent next time. */
			last = b->n > 0 ? b->last : 0;
			sv->audit_syslog_next = audit_syslog_flush(
			    &sv->syslog_sink, b, sv->audit_syslog_next) + 1;
			full = full && sv->audit_syslog_next == last + 1;
		} while (full);
		free(b);
	}
	if (interval == 0 || now - sv->audit_cp_at < (int64_t)interval)
		return;
	(void)audit_cp_now(sv);
}

void
server_audit_stopped(struct server *sv)
{
	int64_t last;
	char v[32];

	if (!sv->audit_syslog)
		return;
	(void)audit_syslog_send(&sv->syslog_sink, sv->ca->st,
	    sv->audit_syslog_next, &last);
	sv->audit_syslog_next = last + 1;
	snprintf(v, sizeof(v), "%lld", (long long)sv->audit_syslog_next);
	(void)store_meta_set(sv->ca->st, AUDIT_SYSLOG_NEXT_KEY, v);
	audit_syslog_close(&sv->syslog_sink);
}

static void *
housekeeper_main(void *arg)
{
	struct server *sv = arg;
	struct change_scan cs;
	struct timespec ts;
	int64_t seq, last, now;
	int want_crl, want_ocsp;

	for (;;) {
		pthread_mutex_lock(&sv->hk_mu);
		if (!sv->stopping && !sv->crl_wanted &&
		    !sv->ocsp_reload_wanted) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += HK_PERIOD_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(&sv->hk_cv, &sv->hk_mu,
			    &ts);
		}
		if (sv->stopping) {
			pthread_mutex_unlock(&sv->hk_mu);
			break;
		}
		want_crl = sv->crl_wanted;
		sv->crl_wanted = 0;
		want_ocsp = sv->ocsp_reload_wanted;
		sv->ocsp_reload_wanted = 0;
		pthread_mutex_unlock(&sv->hk_mu);

		memset(&cs, 0, sizeof(cs));
		cs.sv = sv;
		pthread_mutex_lock(&sv->rd_mu);
		if (store_change_seq(sv->rd, &seq) != 0)
			seq = sv->seen_seq;
		last = sv->seen_seq;
		if (seq != sv->seen_seq)
			(void)store_cert_changed(sv->rd, sv->seen_seq,
			    on_change, &cs, &last);
		pthread_mutex_unlock(&sv->rd_mu);
		if (seq != sv->seen_seq) {
			/* Tokens may have been created or revoked by the
			 * command line, or anything else changed. */
			(void)server_tokens_refresh(sv);
			pthread_rwlock_wrlock(&sv->lock);
			sv->seen_seq = seq;
			pthread_rwlock_unlock(&sv->lock);
		}
		now = ck_time_now();
		/* A new CRL on every revocation (ours or the command
		 * line's), and at half its lifetime. */
		if (want_crl || cs.revoked || sv->crl_der == NULL ||
		    now >= sv->crl_this_update +
		    (sv->crl_next_update - sv->crl_this_update) / 2)
			(void)server_crl_refresh(sv);
		ocsp_signer_tend(sv, ck_time_now(), want_ocsp);
		audit_tend(sv, ck_time_now());
		/* A token key: notice a failed token, and bring it back,
		 * without waiting for a request. */
		(void)signer_available(sv->ca->signer, 1, NULL, 0);
	}
	return NULL;
}

/* certkeepd's own TLS certificate: a fresh key that exists only in this
 * process, certified by the CA for [server] tls_names, logged like every
 * other certificate. */
static int
self_tls(struct server *sv, struct ck_secret **key_pem, char **cert_pem)
{
	struct ck_ca *ca = sv->ca;
	struct ck_profile prof;
	struct ck_strlist names = { 0 };
	struct ck_issue_params p;
	struct ck_issue_result res;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *nm = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	unsigned char *csr = NULL, ip[16];
	char dns[CK_CONFIG_STR] = "", ipr[CK_CONFIG_STR] = "";
	char san[CK_CONFIG_STR * 2] = "", *chain = NULL, *leaf = NULL;
	size_t i, chainlen, leaflen, off;
	int r, csrlen;

	memset(&res, 0, sizeof(res));
	if ((r = ck_profile_init(&prof, "certkeepd-tls")) != 0)
		return r;
	if ((r = ck_strlist_split(&names, ca->cfg->server.tls_names)) != 0)
		goto out;
	if (names.n == 0) {
		r = ck_err_set(CK_E_INVAL, "[server] tls_names is empty");
		goto out;
	}
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
		off = strlen(san);
		snprintf(san + off, sizeof(san) - off, "%s%s:%s",
		    off ? "," : "", dst == ipr ? "IP" : "DNS", names.v[i]);
	}
	if ((r = ck_profile_set(&prof, "key_usage", "digitalSignature")) != 0 ||
	    (r = ck_profile_set(&prof, "ext_key_usage", "serverAuth")) != 0 ||
	    (r = ck_profile_set(&prof, "key_types", "ec-p256")) != 0 ||
	    (r = ck_profile_set(&prof, "max_validity_days", "30")) != 0 ||
	    (dns[0] && (r = ck_profile_set(&prof, "dns_suffixes",
	    dns)) != 0) ||
	    (ipr[0] && (r = ck_profile_set(&prof, "ip_ranges", ipr)) != 0) ||
	    (r = ck_profile_finish(&prof)) != 0)
		goto out;
	if ((r = ck_key_generate(CK_KEY_EC_P256, &key)) != 0)
		goto out;
	r = CK_E_NOMEM;
	if ((req = X509_REQ_new()) == NULL || (nm = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
	    (const unsigned char *)names.v[0], -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, nm) ||
	    !X509_REQ_set_pubkey(req, key) ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
	    san)) == NULL || !sk_X509_EXTENSION_push(exts, ext))
		goto out;
	ext = NULL;
	if (!X509_REQ_add_extensions(req, exts) ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    (csrlen = i2d_X509_REQ(req, &csr)) <= 0)
		goto out;
	memset(&p, 0, sizeof(p));
	p.csr = csr;
	p.csr_len = (size_t)csrlen;
	p.profile = "certkeepd-tls";
	p.profile_obj = &prof;
	p.days = SELF_TLS_DAYS;
	p.path_len = -1;
	p.requester = "certkeepd";
	if ((r = ck_ca_issue(ca, &p, &res)) != 0)
		goto out;
	if ((r = ck_der_to_pem(res.der, res.der_len, &leaf, &leaflen)) != 0 ||
	    (r = ck_ca_chain_pem(ca, &chain, &chainlen)) != 0)
		goto out;
	if ((*cert_pem = malloc(leaflen + chainlen + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy(*cert_pem, leaf, leaflen);
	memcpy(*cert_pem + leaflen, chain, chainlen + 1);
	/* The key in PEM, in locked memory, for the TLS library. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		r = CK_E_NOMEM;
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	if ((*key_pem = ck_secret_new(bm->length + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy((*key_pem)->buf, bm->data, bm->length);
	(*key_pem)->len = bm->length;
	(*key_pem)->buf[bm->length] = '\0';
	r = 0;
out:
	BIO_free(bio);
	free(chain);
	free(leaf);
	OPENSSL_free(res.der);
	OPENSSL_free(csr);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(nm);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	ck_strlist_clear(&names);
	ck_profile_clear(&prof);
	return r;
}

static int
load_chain(struct server *sv)
{
	unsigned char *der = NULL;
	int len;

	if (ck_ca_chain_pem(sv->ca, &sv->chain_pem, &sv->chain_len) != 0)
		return CK_E_NOMEM;
	if ((len = i2d_X509(sv->ca->cert, &der)) <= 0)
		return CK_E_NOMEM;
	sv->ca_der = der;
	sv->ca_der_len = (size_t)len;
	return 0;
}

static int
eab_live_cb(const struct store_acme_eab *e, void *arg)
{
	if (e->revoked_at == 0)
		++*(size_t *)arg;
	return 0;
}

/* Neither half of the EAB pair exists and no unrevoked sealed key waits
 * for the lost one. */
static int
eab_pair_absent(struct ck_ca *ca)
{
	char pub[4096];
	size_t live = 0;

	if (ck_path_join(pub, sizeof(pub), ca->home, EAB_SEAL_PUB_FILE) != 0 ||
	    ck_fs_exists(pub))
		return 0;
	if (store_acme_eab_list(ca->st, eab_live_cb, &live) != 0)
		return 0;
	return live == 0;
}

/* On a home split between a key owner and us, private/ is the key
 * owner's: the pair is made by 'certkeep acme eab create' run as root. */
static int
private_writable(struct ck_ca *ca)
{
	char dir[4096];

	return ck_path_join(dir, sizeof(dir), ca->home, "private") == 0 &&
	    access(dir, W_OK | X_OK) == 0;
}

int
server_eab_unlock(struct server *sv, struct ck_ca *ca,
    const struct ck_secret *pw)
{
	const struct ck_acme_config *ac = &ca->cfg->acme;
	int r;

	if (pw == NULL)
		r = sv->eab_key != NULL ? 0 : CK_E_NOTFOUND;
	else {
		EVP_PKEY_free(sv->eab_key);
		sv->eab_key = NULL;
		r = eab_key_load(ca->home, pw, &sv->eab_key);
	}
	/* No pair yet: make it now, while the passphrase is at hand, so that
	 * EAB keys created while we run ('certkeep acme eab create' seals to
	 * the public half) can be checked without a restart. Not over a
	 * lost pair whose sealed keys the store still holds. */
	if (r == CK_E_NOTFOUND && pw != NULL && ac->enabled &&
	    eab_pair_absent(ca) &&
	    private_writable(ca)) {
		EVP_PKEY *k = NULL;
		ck_err_clear();
		if ((r = eab_keypair_generate(&k)) == 0 &&
		    (r = eab_keypair_save(ca->home, k, pw, 0)) == 0) {
			sv->eab_key = k;
			k = NULL;
			ck_info("made the ACME EAB key pair (%s)",
			    EAB_SEAL_PUB_FILE);
		}
		EVP_PKEY_free(k);
		if (r != 0)
			return r;
	}
	if (r == CK_E_NOTFOUND && ac->enabled && ac->eab_required)
		return ck_err_set(CK_E_STATE, "[acme] eab_required is set, but "
		    "this CA has no EAB key (%s): create the first external "
		    "account binding key with 'certkeep acme eab create', or "
		    "set eab_required = false", EAB_SEAL_KEY_FILE);
	if (r == CK_E_NOTFOUND) {
		char pub[4096];

		ck_err_clear();
		if (ck_path_join(pub, sizeof(pub), ca->home,
		    EAB_SEAL_PUB_FILE) == 0 && ck_fs_exists(pub))
			ck_warn("%s is missing (%s is there): external account "
			    "bindings cannot be checked until it is restored "
			    "('certkeep key restore')", EAB_SEAL_KEY_FILE,
			    EAB_SEAL_PUB_FILE);
		return 0;
	}
	if (r == CK_E_PASSPHRASE) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		return ck_err_set(r, "%s; the ACME EAB key must be under the CA "
		    "key's passphrase", msg);
	}
	return r;
}

int
server_start(struct server *sv, struct ck_ca *ca)
{
	const struct ck_server_config *cf = &ca->cfg->server;
	struct http_config hc;
	struct http_route *routes = NULL;
	struct ck_secret *key_pem = NULL;
	char *cert_pem = NULL, path[4096];
	size_t i, nacme = 0;
	EVP_PKEY *eab_key = sv->eab_key;	/* server_eab_unlock() */
	int r;

	memset(sv, 0, sizeof(*sv));
	sv->eab_key = eab_key;
	sv->ca = ca;
	sv->started_at = ck_time_now();
	pthread_mutex_init(&sv->rd_mu, NULL);
	pthread_mutex_init(&sv->hk_mu, NULL);
	pthread_cond_init(&sv->hk_cv, NULL);
	pthread_mutex_init(&sv->unauth_mu, NULL);
	{
		/* Writers (token reload, configuration swap) must not starve
		 * behind a stream of request threads. */
		pthread_rwlockattr_t ra;
		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra,
		    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&sv->lock, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	if ((r = ck_strlist_split(&sv->client_cert_profiles,
	    cf->client_cert_profiles)) != 0)
		goto fail;
	if ((r = ck_ca_path(ca, ca->cfg->store_path, path,
	    sizeof(path))) != 0 ||
	    (r = store_open(path, 0, &sv->rd)) != 0 ||
	    (r = store_change_seq(sv->rd, &sv->seen_seq)) != 0 ||
	    (r = load_chain(sv)) != 0 ||
	    (r = ck_token_set_load(sv->rd, &sv->tokens)) != 0)
		goto fail;
	if ((r = ocsp_responder_new(ca->signer, ca->cert, ocsp_lookup, sv,
	    cf->ocsp_validity_s, &sv->ocsp)) != 0)
		goto fail;
	/* Before the pipeline owns the store: who signs OCSP, and our own
	 * TLS certificate. */
	if ((r = ocsp_signer_start(sv)) != 0)
		goto fail;
	if (cf->api.addr[0] != '\0' && (r = self_tls(sv, &key_pem,
	    &cert_pem)) != 0)
		goto fail;
	if ((r = ck_pipeline_start(ca, cf->signers, &sv->pl)) != 0)
		goto fail;
	if ((r = audit_start(sv)) != 0)
		goto fail;
	{
		/* Approved requests a stop left unissued (src/ca/approval.h). */
		struct ck_request_io io = { ca, sv->pl, sv->rd, &sv->rd_mu,
		    &sv->lock };
		size_t nsettled;
		if ((r = ck_request_settle(&io, &nsettled)) != 0)
			goto fail;
	}
	if ((r = server_crl_refresh(sv)) != 0)
		goto fail;
	if (pthread_create(&sv->housekeeper, NULL, housekeeper_main, sv) != 0) {
		r = ck_err_set(CK_E_INTERNAL, "cannot start a thread");
		goto fail;
	}
	sv->hk_running = 1;
	if ((r = adminhttp_start(sv, &sv->adminhttp)) != 0)
		goto fail;

	memset(&hc, 0, sizeof(hc));
	hc.threads = cf->threads;
	hc.max_connections = cf->max_connections;
	hc.max_per_ip = cf->max_per_ip;
	hc.timeout_s = cf->timeout_s;
	if (cf->http.addr[0] != '\0') {
		hc.addr = cf->http.addr;
		hc.port = cf->http.port;
		if ((r = http_server_start(&hc, pub_routes, pub_nroutes, sv,
		    &sv->pub)) != 0)
			goto fail;
		sv->pub_port = http_server_port(sv->pub);
	}
	if (cf->api.addr[0] != '\0') {
		if ((r = acme_nonces_new(ACME_NONCES_MAX, ACME_NONCE_TTL_S,
		    &sv->acme_nonces)) != 0)
			goto fail;
		if (ca->cfg->acme.enabled &&
		    (r = acme_validators_start(sv)) != 0)
			goto fail;
		if ((routes = calloc(rest_nroutes + acme_nroutes,
		    sizeof(*routes))) == NULL) {
			r = CK_E_NOMEM;
			goto fail;
		}
		memcpy(routes, rest_routes, rest_nroutes * sizeof(*routes));
		nacme = ca->cfg->acme.enabled ? acme_nroutes : 0;
		memcpy(routes + rest_nroutes, acme_routes,
		    nacme * sizeof(*routes));
		for (i = 0; i < rest_nroutes; i++)
			if (routes[i].max_body > 0 && strcmp(routes[i].path,
			    "/api/v1/certificates") == 0)
				routes[i].max_body = cf->max_body;
		hc.addr = cf->api.addr;
		hc.port = cf->api.port;
		hc.tls_cert_pem = cert_pem;
		hc.tls_key_pem = (const char *)key_pem->buf;
		hc.tls_trust_pem = sv->chain_pem;
		r = http_server_start(&hc, routes, rest_nroutes + nacme,
		    sv, &sv->api);
		free(routes);
		if (r != 0)
			goto fail;
		sv->api_port = http_server_port(sv->api);
	}
	ck_secret_free(key_pem);
	free(cert_pem);
	return 0;
fail:
	{
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		ck_secret_free(key_pem);
		free(cert_pem);
		server_stop(sv);
		ck_err_set(r, "%s", msg);
	}
	return r;
}

void
server_stop(struct server *sv)
{
	/* No new requests: those accepted are answered (the pipeline runs
	 * until then). Not http_server_quiesce(): MHD_quiesce_daemon()
	 * races the epoll thread pool's workers and can abort. */
	http_server_drain(sv->api, STOP_DRAIN_S);
	http_server_drain(sv->pub, STOP_DRAIN_S);
	if (sv->hk_running) {
		pthread_mutex_lock(&sv->hk_mu);
		sv->stopping = 1;
		pthread_cond_signal(&sv->hk_cv);
		pthread_mutex_unlock(&sv->hk_mu);
		pthread_join(sv->housekeeper, NULL);
		sv->hk_running = 0;
	}
	/* Drain the pipeline: every accepted request gets its answer. */
	adminhttp_stop(sv->adminhttp);	/* before the pipeline: they write */
	sv->adminhttp = NULL;
	acme_validators_stop(sv);	/* before the pipeline: they write */
	ck_pipeline_stop(sv->pl);
	sv->pl = NULL;
	http_server_stop(sv->api);
	http_server_stop(sv->pub);
	sv->api = sv->pub = NULL;
	ocsp_responder_free(sv->ocsp);
	sv->ocsp = NULL;
	acme_nonces_free(sv->acme_nonces);
	sv->acme_nonces = NULL;
	EVP_PKEY_free(sv->eab_key);
	sv->eab_key = NULL;
	ck_token_set_free(sv->tokens);
	sv->tokens = NULL;
	store_close(sv->rd);
	sv->rd = NULL;
	OPENSSL_free(sv->crl_der);
	OPENSSL_free(sv->ca_der);
	free(sv->chain_pem);
	sv->crl_der = NULL;
	sv->ca_der = NULL;
	sv->chain_pem = NULL;
	ck_strlist_clear(&sv->client_cert_profiles);
}

int
server_reload(struct server *sv)
{
	int r;

	if (sv->ocsp_mode != OCSP_MODE_CA) {
		pthread_mutex_lock(&sv->hk_mu);
		sv->ocsp_reload_wanted = 1;
		pthread_cond_signal(&sv->hk_cv);
		pthread_mutex_unlock(&sv->hk_mu);
	}
	if ((r = tokens_reload(sv)) != 0)
		return r;
	return server_crl_refresh(sv);
}

struct cfg_swap {
	struct server *sv;
	struct ck_config *cfg;
	unsigned char *text;
	size_t len;
};

static int
cfg_swap_write(struct ck_ca *ca, void *arg)
{
	struct cfg_swap *cs = arg;
	struct ck_config *old;
	struct ck_strlist ccp = { 0 };
	int r;

	if ((r = ck_ca_record_config(ca, cs->text, cs->len)) != 0)
		return r;
	if ((r = ck_strlist_split(&ccp,
	    cs->cfg->server.client_cert_profiles)) != 0)
		return r;
	/* Request threads judge under the read lock. */
	pthread_rwlock_wrlock(&cs->sv->lock);
	old = ca->cfg;
	ca->cfg = cs->cfg;
	ck_strlist_clear(&cs->sv->client_cert_profiles);
	cs->sv->client_cert_profiles = ccp;
	pthread_rwlock_unlock(&cs->sv->lock);
	cs->cfg = old;		/* freed by the caller */
	return 0;
}

int
server_reload_config(struct server *sv)
{
	struct cfg_swap cs;
	char path[4096], msg[512];
	int r;

	memset(&cs, 0, sizeof(cs));
	cs.sv = sv;
	if ((r = ck_ca_path(sv->ca, CK_CONFIG_FILE, path, sizeof(path))) != 0 ||
	    (r = ck_fs_read(path, CK_CONFIG_MAX, &cs.text, &cs.len)) != 0 ||
	    (r = ck_config_parse((const char *)cs.text, cs.len, &cs.cfg)) != 0)
		goto out;
	r = ck_pipeline_write_wait(sv->pl, cfg_swap_write, &cs, msg,
	    sizeof(msg));
	if (r != 0)
		ck_err_set(r, "%s", msg);
out:
	ck_config_free(cs.cfg);
	free(cs.text);
	return r;
}
