/*
 * approval.c - requests that wait for certificate managers (approval.h).
 */
#include "ca/approval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "profile/profile.h"
#include "store/store_acme.h"
#include "x509/csr.h"

/* End a transaction level: commit if R is 0, else roll back. */
static int
tx_end(struct store *st, int r)
{
	if (r == 0)
		return store_tx_commit(st);
	store_tx_rollback(st);
	return r;
}

/* ---- submitting ------------------------------------------------------- */

/* The DER of a CSR given as PEM or DER (parsed before: it is one). */
static int
csr_der(const unsigned char *in, size_t len, unsigned char **out,
    size_t *outlen)
{
	X509_REQ *req = NULL;
	BIO *b = NULL;
	unsigned char *p = NULL;
	size_t i = 0;
	int n, r = 0;

	while (i < len && (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' ||
	    in[i] == '\n'))
		i++;
	if (i == len || in[i] != '-') {
		if ((p = malloc(len)) == NULL)
			return CK_E_NOMEM;
		memcpy(p, in, len);
		*out = p;
		*outlen = len;
		return 0;
	}
	if ((b = BIO_new_mem_buf(in, (int)len)) == NULL ||
	    (req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL)) == NULL ||
	    (n = i2d_X509_REQ(req, NULL)) <= 0 ||
	    (p = malloc((size_t)n)) == NULL) {
		r = ck_err_set(CK_E_PARSE, "cannot re-encode the CSR");
		goto out;
	}
	{
		unsigned char *q = p;
		if (i2d_X509_REQ(req, &q) != n) {
			r = ck_err_set(CK_E_PARSE, "cannot re-encode the CSR");
			goto out;
		}
	}
	*out = p;
	*outlen = (size_t)n;
	p = NULL;
out:
	free(p);
	X509_REQ_free(req);
	BIO_free(b);
	return r;
}

int
ck_request_build(struct ck_ca *ca, const struct ck_issue_params *p,
    const struct ck_request_origin *o, struct store_request *rq)
{
	const struct ck_profile *prof;
	struct ck_issue_request ir;
	struct ck_issue_decision d;
	struct ck_csr *csr = NULL;
	char subj[1024], names[2048];
	int r;

	memset(rq, 0, sizeof(*rq));
	memset(&d, 0, sizeof(d));
	if ((prof = ck_config_profile(ca->cfg, p->profile)) == NULL)
		return ck_err_set(CK_E_POLICY, "no profile named '%s'",
		    p->profile);
	if ((r = ck_csr_parse(p->csr, p->csr_len, &csr)) != 0)
		return r;
	memset(&ir, 0, sizeof(ir));
	ir.csr = csr;
	ir.days = p->days;
	ir.path_len = p->path_len;
	if ((r = ck_profile_check(prof, &ir, &d)) != 0)
		goto out;
	X509_NAME_oneline(csr->subject, subj, sizeof(subj));
	ck_names_format(&d.sans, names, sizeof(names));
	if ((r = csr_der(p->csr, p->csr_len, &rq->csr, &rq->csr_len)) != 0)
		goto out;
	if ((rq->subject = strdup(subj)) == NULL ||
	    (rq->names = strdup(names)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	snprintf(rq->profile, sizeof(rq->profile), "%s", prof->name);
	rq->days = p->days;
	rq->path_len = p->path_len;
	snprintf(rq->requester, sizeof(rq->requester), "%s",
	    o != NULL && o->requester != NULL ? o->requester :
	    audit_os_user());
	if (o != NULL && o->operator_name != NULL)
		snprintf(rq->requester_operator,
		    sizeof(rq->requester_operator), "%s", o->operator_name);
	if (o != NULL && o->os_user != NULL)
		snprintf(rq->requester_os_user, sizeof(rq->requester_os_user),
		    "%s", o->os_user);
	if (o != NULL && o->acme_order != NULL)
		snprintf(rq->acme_order, sizeof(rq->acme_order), "%s",
		    o->acme_order);
	rq->created_at = ck_time_now();
out:
	if (r != 0)
		store_request_clear(rq);
	ck_issue_decision_clear(&d);
	ck_csr_free(csr);
	return r;
}

int
ck_request_needed(const struct ck_ca *ca, const char *profile)
{
	const struct ck_profile *prof = ca->cfg != NULL ?
	    ck_config_profile(ca->cfg, profile) : NULL;

	return prof == NULL || prof->approvals < 1 ? 1 : prof->approvals;
}

int
ck_request_record(struct ck_ca *ca, struct store_request *rq)
{
	char obj[48], detail[1024];
	int r;

	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_request_insert(ca->st, rq)) != 0)
		goto out;
	snprintf(obj, sizeof(obj), "request %lld", (long long)rq->id);
	snprintf(detail, sizeof(detail), "pending: %d approval(s) needed; "
	    "profile %s, subject %.200s, names %.300s",
	    ck_request_needed(ca, rq->profile), rq->profile, rq->subject,
	    rq->names);
	r = audit_append(ca->st, rq->requester, "request", obj, AUDIT_OK,
	    detail);
out:
	return tx_end(ca->st, r);
}

/* ---- deciding --------------------------------------------------------- */

enum ck_approval_verdict
ck_approval_judge(const struct store_request *rq,
    const struct store_request_approval *have, size_t nhave,
    const struct ck_approver *who, int needed, char *why, size_t whysz)
{
	size_t i;

	why[0] = '\0';
	if (rq->status != STORE_REQUEST_PENDING) {
		snprintf(why, whysz, "request %lld is %s, not pending",
		    (long long)rq->id, store_request_status_name(rq->status));
		return CK_APPROVAL_REFUSED;
	}
	if ((who->operator_name != NULL && who->operator_name[0] != '\0' &&
	    strcmp(who->operator_name, rq->requester_operator) == 0) ||
	    (who->os_user != NULL && who->os_user[0] != '\0' &&
	    strcmp(who->os_user, rq->requester_os_user) == 0)) {
		snprintf(why, whysz, "a certificate manager cannot approve "
		    "their own request (request %lld was made by %s)",
		    (long long)rq->id, rq->requester);
		return CK_APPROVAL_REFUSED;
	}
	for (i = 0; i < nhave; i++)
		if (strcmp(have[i].approver, who->key) == 0) {
			snprintf(why, whysz, "%s approved request %lld "
			    "already; it needs %d distinct approvers",
			    who->key, (long long)rq->id, needed);
			return CK_APPROVAL_REFUSED;
		}
	if (needed < 1)
		needed = 1;
	return (int)nhave + 1 >= needed ? CK_APPROVAL_COMPLETE :
	    CK_APPROVAL_RECORDED;
}

/* Audit a refused decision as the current actor; returns ck_err_set(R). */
static int
decision_refused(struct ck_ca *ca, const char *action, int64_t id, int r,
    const char *why)
{
	char obj[48], msg[1024];

	snprintf(msg, sizeof(msg), "%s", why);
	snprintf(obj, sizeof(obj), "request %lld", (long long)id);
	(void)audit_append(ca->st, NULL, action, obj, AUDIT_REFUSED, msg);
	return ck_err_set(r, "%s", msg);
}

/* An ACME order's error document for a denial. */
static char *
acme_denied_error(const char *reason)
{
	char detail[1200];
	json_t *j;
	char *s;

	snprintf(detail, sizeof(detail), "the certificate request was "
	    "denied: %s", reason);
	j = json_pack("{s:s, s:s, s:i}", "type",
	    "urn:ietf:params:acme:error:unauthorized", "detail", detail,
	    "status", 403);
	s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

/* Request RQ, approved or pending, becomes denied for REASON; its ACME
 * order becomes invalid. Inside the caller's transaction. */
static int
deny_rq(struct ck_ca *ca, const struct store_request *rq,
    const char *reason)
{
	char *err;
	int r;

	if ((r = store_request_transition(ca->st, rq->id, rq->status,
	    STORE_REQUEST_DENIED, ck_time_now(), reason)) != 0)
		return r;
	if (rq->acme_order[0] == '\0')
		return 0;
	if ((err = acme_denied_error(reason)) == NULL)
		return CK_E_NOMEM;
	r = store_acme_order_transition(ca->st, rq->acme_order, "processing",
	    "invalid", err);
	free(err);
	if (r == CK_E_STATE || r == CK_E_NOTFOUND) {
		/* The order went another way (expired, a restore): the
		 * request's decision stands. */
		ck_err_clear();
		return 0;
	}
	if (r == 0)
		r = audit_append(ca->st, rq->requester, "acme-order-invalid",
		    rq->acme_order, AUDIT_FAILED, reason);
	return r;
}

int
ck_request_approve_write(struct ck_ca *ca, void *arg)
{
	struct ck_request_decision *d = arg;
	struct store_request rq;
	struct store_request_approval *have = NULL, a;
	enum ck_approval_verdict v;
	size_t n = 0;
	char why[600], obj[48], detail[1400];
	int r;

	d->complete = 0;
	if ((r = store_request_get(ca->st, d->id, &rq)) != 0)
		return decision_refused(ca, "approve", d->id, r, ck_err_msg());
	if ((r = store_request_approvals(ca->st, d->id, &have, &n)) != 0)
		goto out;
	d->needed = ck_request_needed(ca, rq.profile);
	v = ck_approval_judge(&rq, have, n, &d->who, d->needed, why,
	    sizeof(why));
	if (v == CK_APPROVAL_REFUSED) {
		r = decision_refused(ca, "approve", d->id,
		    rq.status != STORE_REQUEST_PENDING ? CK_E_STATE :
		    CK_E_POLICY, why);
		goto out;
	}
	memset(&a, 0, sizeof(a));
	a.request_id = d->id;
	snprintf(a.approver, sizeof(a.approver), "%s", d->who.key);
	snprintf(a.actor, sizeof(a.actor), "%s", d->who.actor);
	a.at = ck_time_now();
	if (d->reason != NULL && strlen(d->reason) > STORE_REQUEST_REASON_MAX) {
		r = ck_err_set(CK_E_INVAL, "a reason is at most %d bytes",
		    STORE_REQUEST_REASON_MAX);
		goto out;
	}
	snprintf(a.reason, sizeof(a.reason), "%s", d->reason ? d->reason :
	    "");
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = store_request_approval_add(ca->st, &a)) == 0 &&
	    v == CK_APPROVAL_COMPLETE)
		r = store_request_transition(ca->st, d->id,
		    STORE_REQUEST_PENDING, STORE_REQUEST_APPROVED, a.at, NULL);
	if (r == 0) {
		d->have = (int)n + 1;
		d->complete = v == CK_APPROVAL_COMPLETE;
		snprintf(obj, sizeof(obj), "request %lld", (long long)d->id);
		snprintf(detail, sizeof(detail), "approval %d of %d%s%s; "
		    "profile %s, subject %.200s", d->have, d->needed,
		    a.reason[0] ? ": " : "", a.reason, rq.profile,
		    rq.subject);
		r = audit_append(ca->st, NULL, "approve", obj, AUDIT_OK,
		    detail);
	}
	r = tx_end(ca->st, r);
out:
	free(have);
	store_request_clear(&rq);
	return r;
}

int
ck_request_deny_write(struct ck_ca *ca, void *arg)
{
	struct ck_request_decision *d = arg;
	struct store_request rq;
	char why[300], obj[48], detail[1400];
	int r;

	if (d->reason == NULL || d->reason[0] == '\0')
		return ck_err_set(CK_E_INVAL, "a denial needs a reason");
	if (strlen(d->reason) > STORE_REQUEST_REASON_MAX)
		return ck_err_set(CK_E_INVAL, "a reason is at most %d bytes",
		    STORE_REQUEST_REASON_MAX);
	if ((r = store_request_get(ca->st, d->id, &rq)) != 0)
		return decision_refused(ca, "deny", d->id, r, ck_err_msg());
	if (rq.status != STORE_REQUEST_PENDING) {
		snprintf(why, sizeof(why), "request %lld is %s, not pending",
		    (long long)d->id, store_request_status_name(rq.status));
		r = decision_refused(ca, "deny", d->id, CK_E_STATE, why);
		goto out;
	}
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = deny_rq(ca, &rq, d->reason)) == 0) {
		snprintf(obj, sizeof(obj), "request %lld", (long long)d->id);
		snprintf(detail, sizeof(detail), "%s; profile %s, subject "
		    "%.200s", d->reason, rq.profile, rq.subject);
		r = audit_append(ca->st, NULL, "deny", obj, AUDIT_OK, detail);
	}
	r = tx_end(ca->st, r);
out:
	store_request_clear(&rq);
	return r;
}

/* ---- issuing ---------------------------------------------------------- */

static int
io_write(const struct ck_request_io *io, ck_write_fn fn, void *arg)
{
	char msg[1024];
	int r;

	if (io->pl != NULL) {
		if ((r = ck_pipeline_write_wait(io->pl, fn, arg, msg,
		    sizeof(msg))) != 0)
			return ck_err_set(r, "%s", msg[0] ? msg :
			    ck_strerror(r));
		return 0;
	}
	if ((r = store_tx_begin(io->ca->st)) != 0)
		return r;
	if ((r = fn(io->ca, arg)) != 0) {
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		store_tx_rollback(io->ca->st);
		return ck_err_set(r, "%s", msg);
	}
	return store_tx_commit(io->ca->st);
}

static int
io_read_request(const struct ck_request_io *io, int64_t id,
    struct store_request *rq)
{
	int r;

	if (io->rd_mu != NULL)
		pthread_mutex_lock(io->rd_mu);
	r = store_request_get(io->rd, id, rq);
	if (io->rd_mu != NULL)
		pthread_mutex_unlock(io->rd_mu);
	return r;
}

struct issue_step {
	int64_t id;
	struct ck_issue_job *job;
	const char *serial;	/* finish: the recorded certificate */
	const char *why;	/* deny, fail */
};

/* Reads the request again on the write path: what it was when read off
 * it may have changed. */
static int
step_get(struct ck_ca *ca, int64_t id, struct store_request *rq)
{
	int r;

	if ((r = store_request_get(ca->st, id, rq)) != 0)
		return r;
	if (rq->status != STORE_REQUEST_APPROVED) {
		r = ck_err_set(CK_E_STATE, "request %lld is %s, not approved",
		    (long long)id, store_request_status_name(rq->status));
		store_request_clear(rq);
	}
	return r;
}

/* The request issued with SERIAL, its ACME order valid. */
static int
finish_rq(struct ck_ca *ca, const struct store_request *rq,
    const char *serial)
{
	int r;

	if ((r = store_request_mark_issued(ca->st, rq->id, serial)) != 0)
		return r;
	if (rq->acme_order[0] == '\0')
		return 0;
	r = store_acme_order_set_cert(ca->st, rq->acme_order, serial);
	if (r == CK_E_STATE || r == CK_E_NOTFOUND) {
		ck_err_clear();
		return 0;
	}
	if (r == 0)
		r = audit_append(ca->st, rq->requester, "acme-order-valid",
		    rq->acme_order, AUDIT_OK, serial);
	return r;
}

static int
deny_write(struct ck_ca *ca, void *arg)
{
	struct issue_step *s = arg;
	struct store_request rq;
	char obj[48];
	int r;

	if ((r = step_get(ca, s->id, &rq)) != 0)
		return r;
	snprintf(obj, sizeof(obj), "request %lld", (long long)s->id);
	if ((r = deny_rq(ca, &rq, s->why)) == 0)
		r = audit_append(ca->st, rq.requester, "issue", obj,
		    AUDIT_REFUSED, s->why);
	store_request_clear(&rq);
	return r;
}

static int
log_write(struct ck_ca *ca, void *arg)
{
	struct issue_step *s = arg;
	struct store_request rq;
	int r;

	if ((r = step_get(ca, s->id, &rq)) != 0)
		return r;
	store_request_clear(&rq);
	if ((r = ck_issue_log(ca, s->job)) != 0)
		return r;
	return store_request_set_serial(ca->st, s->id,
	    ck_issue_job_serial(s->job));
}

static int
failed_write(struct ck_ca *ca, void *arg)
{
	struct issue_step *s = arg;
	int r;

	if ((r = ck_issue_record_failed(ca, s->job, s->why)) != 0)
		return r;
	return store_request_set_serial(ca->st, s->id, "");
}

static int
record_write(struct ck_ca *ca, void *arg)
{
	struct issue_step *s = arg;
	struct store_request rq;
	int r;

	if ((r = step_get(ca, s->id, &rq)) != 0)
		return r;
	if ((r = ck_issue_record(ca, s->job)) == 0)
		r = finish_rq(ca, &rq, ck_issue_job_serial(s->job));
	store_request_clear(&rq);
	return r;
}

/* The certificate was recorded before a stop: only the request is left
 * to finish. */
static int
finish_write(struct ck_ca *ca, void *arg)
{
	struct issue_step *s = arg;
	struct store_request rq;
	int r;

	if ((r = step_get(ca, s->id, &rq)) != 0)
		return r;
	r = finish_rq(ca, &rq, s->serial);
	store_request_clear(&rq);
	return r;
}

int
ck_request_issue(const struct ck_request_io *io, int64_t id, char serial[80])
{
	struct store_request rq;
	struct store_cert *c = NULL;
	struct ck_issue_params p;
	struct issue_step s;
	char why[900], msg[700];
	int r;

	serial[0] = '\0';
	memset(&s, 0, sizeof(s));
	s.id = id;
	if ((r = io_read_request(io, id, &rq)) != 0)
		return r;
	if (rq.status == STORE_REQUEST_ISSUED) {
		snprintf(serial, 80, "%s", rq.cert_serial);
		goto out;
	}
	if (rq.status != STORE_REQUEST_APPROVED) {
		r = ck_err_set(CK_E_STATE, "request %lld is %s, not approved",
		    (long long)id, store_request_status_name(rq.status));
		goto out;
	}
	/* Issuance began before a stop: if its certificate was recorded,
	 * that is the one; otherwise it never left and is issued anew. */
	if (rq.cert_serial[0] != '\0') {
		if (io->rd_mu != NULL)
			pthread_mutex_lock(io->rd_mu);
		r = store_cert_get(io->rd, rq.cert_serial, &c);
		if (io->rd_mu != NULL)
			pthread_mutex_unlock(io->rd_mu);
		if (r != 0 && r != CK_E_NOTFOUND)
			goto out;
		ck_err_clear();
		if (r == 0 && (c->status == STORE_CERT_ISSUED ||
		    c->status == STORE_CERT_REVOKED)) {
			s.serial = rq.cert_serial;
			if ((r = io_write(io, finish_write, &s)) == 0)
				snprintf(serial, 80, "%s", rq.cert_serial);
			goto out;
		}
		r = 0;
	}
	memset(&p, 0, sizeof(p));
	p.csr = rq.csr;
	p.csr_len = rq.csr_len;
	p.profile = rq.profile;
	p.days = rq.days;
	p.path_len = rq.path_len;
	p.requester = rq.requester;
	/* The profile as it is now. */
	if (io->cfg_lock != NULL)
		pthread_rwlock_rdlock(io->cfg_lock);
	ck_err_clear();
	r = ck_issue_prepare(io->ca, &p, NULL, &s.job);
	if (io->cfg_lock != NULL)
		pthread_rwlock_unlock(io->cfg_lock);
	if (r == CK_E_POLICY || r == CK_E_PARSE || r == CK_E_BADSIG ||
	    r == CK_E_TOOBIG) {
		snprintf(why, sizeof(why), "profile %s no longer allows it: "
		    "%.600s", rq.profile, ck_err_msg()[0] ? ck_err_msg() :
		    ck_strerror(r));
		s.why = why;
		if ((r = io_write(io, deny_write, &s)) == 0)
			r = ck_err_set(CK_E_POLICY, "request %lld is denied: "
			    "%s", (long long)id, why);
		goto out;
	}
	if (r != 0)
		goto out;
	/* Log before sign: the pending row and the request's serial are
	 * durable before the signature exists. */
	if ((r = io_write(io, log_write, &s)) != 0)
		goto out;
	if ((r = ck_issue_sign(io->ca, s.job)) != 0) {
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		s.why = msg;
		(void)io_write(io, failed_write, &s);
		r = ck_err_set(r, "request %lld: signing failed: %s",
		    (long long)id, msg);
		goto out;
	}
	if ((r = io_write(io, record_write, &s)) != 0)
		goto out;
	snprintf(serial, 80, "%s", ck_issue_job_serial(s.job));
out:
	ck_issue_job_free(s.job);
	store_cert_free(c);
	store_request_clear(&rq);
	return r;
}

struct id_list {
	int64_t *v;
	size_t n;
};

static int
collect_id(const struct store_request *rq, void *arg)
{
	struct id_list *l = arg;
	int64_t *nv;

	if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL)
		return CK_E_NOMEM;
	l->v = nv;
	l->v[l->n++] = rq->id;
	return 0;
}

int
ck_request_settle(const struct ck_request_io *io, size_t *n)
{
	struct id_list l = { NULL, 0 };
	char serial[80];
	size_t i;
	int r;

	*n = 0;
	if (io->rd_mu != NULL)
		pthread_mutex_lock(io->rd_mu);
	r = store_request_list(io->rd, STORE_REQUEST_APPROVED, collect_id,
	    &l);
	if (io->rd_mu != NULL)
		pthread_mutex_unlock(io->rd_mu);
	for (i = 0; r == 0 && i < l.n; i++) {
		r = ck_request_issue(io, l.v[i], serial);
		if (r == 0)
			ck_info("approved request %lld issued: serial %s",
			    (long long)l.v[i], serial);
		else if (r != CK_E_STORE && r != CK_E_IO && r != CK_E_NOMEM) {
			ck_warn("approved request %lld not issued: %s",
			    (long long)l.v[i], ck_err_msg());
			r = 0;
		}
	}
	*n = l.n;
	free(l.v);
	return r;
}
