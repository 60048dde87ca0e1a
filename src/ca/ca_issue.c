/*
 * ca_issue.c - issuing a certificate: judge, log, sign, record.
 *
 * The four phases are separate so that the server can run many requests
 * through them at once: judging and signing in parallel, logging and
 * recording in group commits. ck_ca_issue() runs them in order for one
 * request (the command line).
 */
#include "ca/ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "profile/profile.h"
#include "signer/signer.h"
#include "x509/csr.h"

/* How far notBefore is set in the past, for clients with slow clocks. */
#define ISSUE_BACKDATE 60

struct ck_issue_job {
	struct ck_csr *csr;
	struct ck_issue_decision d;
	struct ck_cert_template t;
	struct signer_pending *pend;
	struct store_cert rec;
	unsigned char digest[32];
	char subj[1024];
	char names[2048];
	char requester[128];
	char profile[CK_PROFILE_NAME_MAX];
	char detail[600];	/* of the audit entry */
	unsigned char *der;
	size_t der_len;
};

int
ck_ca_audit_refusal(struct ck_ca *ca, const char *requester,
    const char *profile, const char *reason)
{
	char obj[128];

	snprintf(obj, sizeof(obj), "profile %s", profile ? profile : "?");
	return audit_append(ca->st, requester, "issue", obj, AUDIT_REFUSED,
	    reason);
}

/* Have the signer build the TBS and choose the serial; both the digest
 * and the serial go into the record logged before signing. */
static int
job_draw(struct ck_ca *ca, struct ck_issue_job *j)
{
	int r;

	if ((r = signer_cert_prepare_der(ca->signer, &j->t, &j->pend,
	    j->digest)) != 0)
		return r;
	snprintf(j->rec.serial, sizeof(j->rec.serial), "%s",
	    signer_pending_serial(j->pend));
	ck_hex_encode(j->digest, 32, j->rec.tbs_sha256);
	return 0;
}

int
ck_issue_prepare(struct ck_ca *ca, const struct ck_issue_params *p,
    const struct ck_profile *extra, struct ck_issue_job **out)
{
	const struct ck_profile *prof;
	struct ck_issue_request rq;
	struct ck_issue_job *j = NULL;
	int64_t now = ck_time_now();
	unsigned char ipb[16];
	const char *cn;
	size_t i;
	int r;

	if (ca->signer == NULL || ca->cert == NULL)
		return ck_err_set(CK_E_STATE, ca->cert == NULL ?
		    "this CA has no certificate installed yet" :
		    "the CA key is locked");
	if ((prof = p->profile_obj) == NULL &&
	    (prof = ck_config_profile(ca->cfg, p->profile)) == NULL)
		return ck_err_set(CK_E_POLICY, "no profile named '%s'",
		    p->profile);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return CK_E_NOMEM;
	snprintf(j->profile, sizeof(j->profile), "%s", prof->name);
	snprintf(j->requester, sizeof(j->requester), "%s",
	    p->requester ? p->requester : audit_os_user());
	/* The certificate carries the SubjectPublicKeyInfo as received: no
	 * key object is needed beyond the signature check. */
	if ((r = ck_csr_parse_ex(p->csr, p->csr_len, CK_CSR_NO_PUBKEY,
	    &j->csr)) != 0)
		goto fail;
	memset(&rq, 0, sizeof(rq));
	rq.csr = j->csr;
	rq.days = p->days;
	rq.path_len = p->path_len;
	if ((r = ck_profile_check(prof, &rq, &j->d)) != 0)
		goto fail;
	/* Narrower name rules of the requester (an API token or a client
	 * certificate), also for a free-text CN that reads as a name. */
	if (extra != NULL && (cn = ck_csr_subject_get(j->csr, "CN")) != NULL &&
	    (ck_ip_parse(cn, ipb) || (strchr(cn, '.') != NULL &&
	    ck_dns_name_valid(cn)))) {
		struct ck_name nm;
		nm.type = ck_ip_parse(cn, ipb) ? CK_NAME_IP : CK_NAME_DNS;
		snprintf(nm.value, sizeof(nm.value), "%s", cn);
		if ((r = ck_profile_name_check(extra, &nm)) != 0) {
			char why[512];
			snprintf(why, sizeof(why), "%s", ck_err_msg());
			r = ck_err_set(CK_E_POLICY, "not permitted for %s: "
			    "common name: %s", j->requester, why);
			goto fail;
		}
	}
	for (i = 0; extra != NULL && i < j->d.sans.n; i++)
		if ((r = ck_profile_name_check(extra, &j->d.sans.v[i])) != 0) {
			/* A copy: ck_err_set() writes the buffer it reads. */
			char why[512];
			snprintf(why, sizeof(why), "%s", ck_err_msg());
			r = ck_err_set(CK_E_POLICY, "not permitted for %s: %s",
			    j->requester, why);
			goto fail;
		}

	j->t.subject = j->csr->subject;
	j->t.pubkey = j->csr->pubkey;
	j->t.spki_alg = j->csr->spki_alg;
	j->t.spki_key = j->csr->spki_key;
	j->t.spki_der = j->csr->spki_der;
	j->t.spki_der_len = j->csr->spki_der_len;
	j->t.not_before = now - ISSUE_BACKDATE;
	j->t.not_after = now + (int64_t)j->d.days * 86400;
	/* Without an explicit --days, the profile's maximum is cut short
	 * by the CA's own expiry; an explicit request beyond it is refused
	 * by the signer. */
	if (p->days == 0) {
		struct tm tm;
		if (ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &tm) == 1 &&
		    (int64_t)timegm(&tm) < j->t.not_after)
			j->t.not_after = (int64_t)timegm(&tm);
	}
	j->t.is_ca = j->d.is_ca;
	j->t.path_len = j->d.path_len;
	j->t.ku = j->d.ku;
	j->t.eku = &j->d.eku;
	j->t.sans = &j->d.sans;
	j->t.crl_url = ca->cfg->crl_url;
	j->t.ocsp_url = ca->cfg->ocsp_url;
	j->t.issuer_url = ca->cfg->issuer_url;
	j->t.profile = j->profile;
	j->t.service_tls = p->profile_obj != NULL;

	X509_NAME_oneline(j->t.subject, j->subj, sizeof(j->subj));
	ck_names_format(&j->d.sans, j->names, sizeof(j->names));
	snprintf(j->detail, sizeof(j->detail), "profile %s, subject %.200s, "
	    "names %.300s", j->profile, j->subj, j->names);
	j->rec.subject = j->subj;
	j->rec.names = j->names;
	j->rec.profile = j->profile;
	j->rec.requester = j->requester;
	j->rec.not_before = j->t.not_before;
	j->rec.not_after = j->t.not_after;
	j->rec.created_at = now;
	j->rec.is_ca = j->d.is_ca;
	if ((r = job_draw(ca, j)) != 0)
		goto fail;
	/* The certificate carries the key as received: the decoded key is
	 * not needed again, and it is freed more cheaply here, by the
	 * thread that made it. */
	if (j->t.spki_der != NULL && j->t.spki_alg != NULL &&
	    j->t.spki_key != NULL) {
		EVP_PKEY_free(j->csr->pubkey);
		j->csr->pubkey = NULL;
		j->t.pubkey = NULL;
	}
	*out = j;
	return 0;
fail:
	ck_issue_job_free(j);
	return r;
}

int
ck_issue_log(struct ck_ca *ca, struct ck_issue_job *j)
{
	/* A serial already in the store (the store refuses it, never
	 * overwrites) would be the signer's fault, never expected with 127
	 * random bits: the request fails, it is not drawn again. */
	return store_cert_insert_pending(ca->st, &j->rec);
}

int
ck_issue_sign(struct ck_ca *ca, struct ck_issue_job *j)
{
	int r;

	r = signer_cert_sign(ca->signer, j->pend, &j->der, &j->der_len);
	j->pend = NULL;
	return r;
}

void
ck_issue_sign_many(struct ck_ca *ca, struct ck_issue_job *const *jobs,
    size_t n, int *rs, char *const *msgs, size_t msgsz)
{
	struct signer_pending *p[SIGNER_SIGN_MANY_MAX];
	struct signer_signed o[SIGNER_SIGN_MANY_MAX];
	size_t i, k, m;

	for (i = 0; i < n; i += m) {
		m = n - i < SIGNER_SIGN_MANY_MAX ? n - i : SIGNER_SIGN_MANY_MAX;
		for (k = 0; k < m; k++) {
			p[k] = jobs[i + k]->pend;
			jobs[i + k]->pend = NULL;
		}
		signer_cert_sign_many(ca->signer, p, m, o);
		for (k = 0; k < m; k++) {
			struct ck_issue_job *j = jobs[i + k];
			rs[i + k] = o[k].r;
			if (o[k].r == 0) {
				j->der = o[k].der;
				j->der_len = o[k].len;
			} else
				snprintf(msgs[i + k], msgsz, "%s", o[k].msg);
		}
	}
}

int
ck_issue_record(struct ck_ca *ca, struct ck_issue_job *j)
{
	int r;

	if ((r = store_cert_mark_issued(ca->st, j->rec.serial, j->der,
	    j->der_len)) != 0)
		return r;
	return audit_append(ca->st, j->requester, "issue", j->rec.serial,
	    AUDIT_OK, j->detail);
}

int
ck_issue_log_many(struct ck_ca *ca, struct ck_issue_job *const *jobs,
    size_t n)
{
	const struct store_cert *recs[64];
	size_t i, k, m;
	int r;

	for (i = 0; i < n; i += m) {
		m = n - i < 64 ? n - i : 64;
		for (k = 0; k < m; k++)
			recs[k] = &jobs[i + k]->rec;
		if ((r = store_cert_insert_pending_many(ca->st, recs, m)) != 0)
			return r;
	}
	return 0;
}

int
ck_issue_record_many(struct ck_ca *ca, struct ck_issue_job *const *jobs,
    size_t n)
{
	const struct store_cert *recs[AUDIT_BATCH_MAX];
	struct audit_item items[AUDIT_BATCH_MAX];
	size_t i, k, m;
	int r;

	for (i = 0; i < n; i += m) {
		m = n - i < AUDIT_BATCH_MAX ? n - i : AUDIT_BATCH_MAX;
		for (k = 0; k < m; k++) {
			struct ck_issue_job *j = jobs[i + k];
			j->rec.der = j->der;
			j->rec.der_len = j->der_len;
			recs[k] = &j->rec;
			items[k].user = j->requester;
			items[k].action = "issue";
			items[k].object = j->rec.serial;
			items[k].result = AUDIT_OK;
			items[k].detail = j->detail;
		}
		r = store_cert_mark_issued_many(ca->st, recs, m);
		for (k = 0; k < m; k++) {
			jobs[i + k]->rec.der = NULL;
			jobs[i + k]->rec.der_len = 0;
		}
		/* An entry per certificate, the chain's head once. */
		if (r != 0 || (r = audit_append_many(ca->st, items, m)) != 0)
			return r;
	}
	return 0;
}

int
ck_issue_record_failed(struct ck_ca *ca, struct ck_issue_job *j,
    const char *why)
{
	int r;

	if ((r = store_cert_mark_failed(ca->st, j->rec.serial)) != 0)
		return r;
	return audit_append(ca->st, j->requester, "issue", j->rec.serial,
	    AUDIT_FAILED, why);
}

const char *
ck_issue_job_serial(const struct ck_issue_job *j)
{
	return j->rec.serial;
}

const char *
ck_issue_job_requester(const struct ck_issue_job *j)
{
	return j->requester;
}

unsigned char *
ck_issue_job_take_der(struct ck_issue_job *j, size_t *len)
{
	unsigned char *d = j->der;

	*len = j->der_len;
	j->der = NULL;
	j->der_len = 0;
	return d;
}

void
ck_issue_job_free(struct ck_issue_job *j)
{
	if (j == NULL)
		return;
	OPENSSL_free(j->der);
	signer_pending_free(j->pend);
	ck_issue_decision_clear(&j->d);
	ck_csr_free(j->csr);
	free(j);
}

int
ck_ca_issue(struct ck_ca *ca, const struct ck_issue_params *p,
    struct ck_issue_result *res)
{
	struct ck_issue_job *j = NULL;
	char msg[1024];
	int r;

	memset(res, 0, sizeof(*res));
	if (ca->signer == NULL || ca->cert == NULL)
		return ck_issue_prepare(ca, p, NULL, &j);
	if ((r = ck_issue_prepare(ca, p, NULL, &j)) != 0) {
		snprintf(msg, sizeof(msg), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		(void)ck_ca_audit_refusal(ca, p->requester, p->profile, msg);
		return ck_err_set(r, "%s", msg);
	}
	/* Log before sign: the pending row is durable before any
	 * signature exists. */
	if ((r = ck_issue_log(ca, j)) != 0)
		goto out;
	if ((r = ck_issue_sign(ca, j)) != 0) {
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		if (store_tx_begin(ca->st) == 0) {
			if (ck_issue_record_failed(ca, j, msg) == 0)
				(void)store_tx_commit(ca->st);
			else
				store_tx_rollback(ca->st);
		}
		r = ck_err_set(r, "%s", msg);
		goto out;
	}
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = ck_issue_record(ca, j)) != 0) {
		store_tx_rollback(ca->st);
		goto out;
	}
	if ((r = store_tx_commit(ca->st)) != 0)
		goto out;
	/* Durable: hand the certificate over. */
	snprintf(res->serial, sizeof(res->serial), "%s", j->rec.serial);
	res->der = ck_issue_job_take_der(j, &res->der_len);
out:
	ck_issue_job_free(j);
	return r;
}
