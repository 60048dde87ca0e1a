/*
 * ca_issue.c - issuing a certificate: check, log, sign, record.
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
#include "x509/serial.h"

/* How far notBefore is set in the past, for clients with slow clocks. */
#define ISSUE_BACKDATE 60
/* Attempts at a fresh serial should one collide. */
#define ISSUE_SERIAL_TRIES 4

/* Record a refusal in the audit log; keep the reason for the caller. */
static int
refused(struct ck_ca *ca, int r, const char *profile)
{
	char msg[1024], obj[128];

	snprintf(msg, sizeof(msg), "%s", ck_err_msg()[0] ? ck_err_msg() :
	    ck_strerror(r));
	snprintf(obj, sizeof(obj), "profile %s", profile ? profile : "?");
	(void)ck_ca_audit(ca, "issue", obj, AUDIT_REFUSED, msg);
	return ck_err_set(r, "%s", msg);
}

int
ck_ca_issue(struct ck_ca *ca, const struct ck_issue_params *p,
    struct ck_issue_result *res)
{
	const struct ck_profile *prof;
	struct ck_csr *csr = NULL;
	struct ck_issue_request rq;
	struct ck_issue_decision d;
	struct ck_cert_template t;
	struct signer_pending *pend = NULL;
	struct store_cert rec;
	ASN1_INTEGER *serial = NULL;
	unsigned char digest[32], *der = NULL;
	size_t der_len = 0;
	char subj[1024], names[2048], detail[512];
	int64_t now = ck_time_now();
	int r, tries;

	memset(&d, 0, sizeof(d));
	memset(res, 0, sizeof(*res));
	if (ca->signer == NULL || ca->cert == NULL)
		return ck_err_set(CK_E_STATE, ca->cert == NULL ?
		    "this CA has no certificate installed yet" :
		    "the CA key is locked");
	if ((prof = ck_config_profile(ca->cfg, p->profile)) == NULL)
		return refused(ca, ck_err_set(CK_E_POLICY, "no profile named "
		    "'%s'", p->profile), p->profile);
	if ((r = ck_csr_parse(p->csr, p->csr_len, &csr)) != 0)
		return refused(ca, r, p->profile);
	memset(&rq, 0, sizeof(rq));
	rq.csr = csr;
	rq.days = p->days;
	rq.path_len = p->path_len;
	if ((r = ck_profile_check(prof, &rq, &d)) != 0) {
		r = refused(ca, r, p->profile);
		goto out;
	}

	memset(&t, 0, sizeof(t));
	t.subject = X509_REQ_get_subject_name(csr->req);
	t.pubkey = csr->pubkey;
	t.not_before = now - ISSUE_BACKDATE;
	t.not_after = now + (int64_t)d.days * 86400;
	/* Without an explicit --days, the profile's maximum is cut short
	 * by the CA's own expiry; an explicit request beyond it is refused
	 * by the signer. */
	if (p->days == 0) {
		struct tm tm;
		if (ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &tm) == 1 &&
		    (int64_t)timegm(&tm) < t.not_after)
			t.not_after = (int64_t)timegm(&tm);
	}
	t.is_ca = d.is_ca;
	t.path_len = d.path_len;
	t.ku = d.ku;
	t.eku = &d.eku;
	t.sans = &d.sans;
	t.crl_url = ca->cfg->crl_url;
	t.ocsp_url = ca->cfg->ocsp_url;
	t.issuer_url = ca->cfg->issuer_url;

	X509_NAME_oneline(t.subject, subj, sizeof(subj));
	ck_names_format(&d.sans, names, sizeof(names));
	memset(&rec, 0, sizeof(rec));
	rec.subject = subj;
	rec.names = names;
	rec.profile = (char *)prof->name;
	rec.requester = (char *)(p->requester ? p->requester :
	    audit_os_user());
	rec.not_before = t.not_before;
	rec.not_after = t.not_after;
	rec.created_at = now;
	rec.is_ca = d.is_ca;

	/* Log before sign: the pending row is durable before any signature
	 * exists. A serial collision (never expected) draws again. */
	for (tries = 0;; tries++) {
		ASN1_INTEGER_free(serial);
		serial = NULL;
		signer_pending_free(pend);
		pend = NULL;
		if ((r = ck_serial_random(&serial, rec.serial)) != 0)
			goto out;
		t.serial = serial;
		if ((r = signer_cert_prepare(ca->signer, &t, 0, &pend,
		    digest)) != 0) {
			r = refused(ca, r, p->profile);
			goto out;
		}
		ck_hex_encode(digest, 32, rec.tbs_sha256);
		r = store_cert_insert_pending(ca->st, &rec);
		if (r != CK_E_EXISTS || tries + 1 >= ISSUE_SERIAL_TRIES)
			break;
	}
	if (r != 0)
		goto out;

	r = signer_cert_sign(ca->signer, pend, &der, &der_len);
	pend = NULL;
	if (r != 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		if (store_tx_begin(ca->st) == 0) {
			if (store_cert_mark_failed(ca->st, rec.serial) == 0 &&
			    ck_ca_audit(ca, "issue", rec.serial, AUDIT_FAILED,
			    msg) == 0)
				(void)store_tx_commit(ca->st);
			else
				store_tx_rollback(ca->st);
		}
		r = ck_err_set(r, "%s", msg);
		goto out;
	}
	snprintf(detail, sizeof(detail), "profile %s, subject %.200s, "
	    "names %.200s", prof->name, subj, names);
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = store_cert_mark_issued(ca->st, rec.serial, der,
	    der_len)) != 0 ||
	    (r = ck_ca_audit(ca, "issue", rec.serial, AUDIT_OK, detail)) != 0) {
		store_tx_rollback(ca->st);
		goto out;
	}
	if ((r = store_tx_commit(ca->st)) != 0)
		goto out;
	/* Durable: hand the certificate over. */
	memcpy(res->serial, rec.serial, sizeof(res->serial));
	res->der = der;
	res->der_len = der_len;
	der = NULL;
out:
	OPENSSL_free(der);
	signer_pending_free(pend);
	ASN1_INTEGER_free(serial);
	ck_issue_decision_clear(&d);
	ck_csr_free(csr);
	return r;
}
