/*
 * store_request.c - requests awaiting approval in the SQLite store
 * (store_request.h; the tables are migration 8 of store_sqlite.c, their
 * backup description is in store_dump.c).
 */
#include "store/store_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store_int.h"

#define RQ_COLS "id, status, profile, days, path_len, csr, subject, names, " \
	"requester, requester_operator, requester_os_user, acme_order, " \
	"created_at, decided_at, reason, cert_serial, change_seq"

static const char *const status_names[STORE_REQUEST_STATUS__MAX] = {
	"pending", "approved", "denied", "issued"
};

const char *
store_request_status_name(enum store_request_status s)
{
	if ((unsigned)s >= STORE_REQUEST_STATUS__MAX)
		return "unknown";
	return status_names[s];
}

int
store_request_status_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < STORE_REQUEST_STATUS__MAX; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return -1;
}

void
store_request_clear(struct store_request *rq)
{
	if (rq == NULL)
		return;
	free(rq->csr);
	free(rq->subject);
	free(rq->names);
	free(rq->reason);
	memset(rq, 0, sizeof(*rq));
}

/* Copy column COL into DST of SIZE; CK_E_STORE if it does not fit. */
static int
col_copy(sqlite3_stmt *s, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	if ((size_t)sqlite3_column_bytes(s, col) >= size)
		return ck_err_set(CK_E_STORE, "a stored request has a field "
		    "longer than allowed");
	snprintf(dst, size, "%s", t != NULL ? (const char *)t : "");
	return 0;
}

static char *
col_dup(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return strdup(t != NULL ? (const char *)t : "");
}

static int
rq_from_row(sqlite3_stmt *s, struct store_request *rq)
{
	const void *blob;
	int st, n;

	memset(rq, 0, sizeof(*rq));
	rq->id = sqlite3_column_int64(s, 0);
	if ((st = store_request_status_parse((const char *)
	    sqlite3_column_text(s, 1))) < 0)
		return ck_err_set(CK_E_STORE, "request %lld: unknown status",
		    (long long)rq->id);
	rq->status = (enum store_request_status)st;
	if (col_copy(s, 2, rq->profile, sizeof(rq->profile)) != 0 ||
	    col_copy(s, 8, rq->requester, sizeof(rq->requester)) != 0 ||
	    col_copy(s, 9, rq->requester_operator,
	    sizeof(rq->requester_operator)) != 0 ||
	    col_copy(s, 10, rq->requester_os_user,
	    sizeof(rq->requester_os_user)) != 0 ||
	    col_copy(s, 11, rq->acme_order, sizeof(rq->acme_order)) != 0 ||
	    col_copy(s, 15, rq->cert_serial, sizeof(rq->cert_serial)) != 0)
		return CK_E_STORE;
	rq->days = (uint32_t)sqlite3_column_int64(s, 3);
	rq->path_len = sqlite3_column_int(s, 4);
	blob = sqlite3_column_blob(s, 5);
	n = sqlite3_column_bytes(s, 5);
	if (blob == NULL || n <= 0)
		return ck_err_set(CK_E_STORE, "request %lld: no CSR",
		    (long long)rq->id);
	if ((rq->csr = malloc((size_t)n)) == NULL)
		return CK_E_NOMEM;
	memcpy(rq->csr, blob, (size_t)n);
	rq->csr_len = (size_t)n;
	if ((rq->subject = col_dup(s, 6)) == NULL ||
	    (rq->names = col_dup(s, 7)) == NULL)
		return CK_E_NOMEM;
	rq->created_at = sqlite3_column_int64(s, 12);
	rq->decided_at = sqlite3_column_int64(s, 13);
	if (sqlite3_column_type(s, 14) != SQLITE_NULL &&
	    (rq->reason = col_dup(s, 14)) == NULL)
		return CK_E_NOMEM;
	rq->change_seq = sqlite3_column_int64(s, 16);
	return 0;
}

static void
bind_opt_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v != NULL && v[0] != '\0')
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

int
store_request_insert(struct store *st, struct store_request *rq)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r;

	if (rq->csr == NULL || rq->csr_len == 0 ||
	    rq->csr_len > INT32_MAX || rq->profile[0] == '\0' ||
	    rq->requester[0] == '\0')
		return ck_err_set(CK_E_INVAL, "a request needs a CSR, a "
		    "profile and a requester");
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "INSERT INTO requests (" RQ_COLS ") "
	    "VALUES (NULL, 'pending', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10, ?11, NULL, NULL, NULL, ?12)", &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, rq->profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, rq->days);
	sqlite3_bind_int(s, 3, rq->path_len);
	sqlite3_bind_blob(s, 4, rq->csr, (int)rq->csr_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, rq->subject ? rq->subject : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 6, rq->names ? rq->names : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 7, rq->requester, -1, SQLITE_STATIC);
	bind_opt_text(s, 8, rq->requester_operator);
	bind_opt_text(s, 9, rq->requester_os_user);
	bind_opt_text(s, 10, rq->acme_order);
	sqlite3_bind_int64(s, 11, rq->created_at);
	sqlite3_bind_int64(s, 12, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "recording request");
	else {
		rq->id = sqlite3_last_insert_rowid(store_sqlite_db(st));
		rq->status = STORE_REQUEST_PENDING;
		rq->change_seq = seq;
	}
	store_stmt_done(st, s);
out:
	return store_tx_end(st, r);
}

/* A one-row query with one bound parameter (integer ID, or text TEXT). */
static int
rq_query(struct store *st, const char *sql, int64_t id, const char *text,
    struct store_request *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		return r;
	if (text != NULL)
		sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(s, 1, id);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		if ((r = rq_from_row(s, out)) != 0)
			store_request_clear(out);
		break;
	case SQLITE_DONE:
		r = text != NULL ? ck_err_set(CK_E_NOTFOUND, "no request for "
		    "ACME order %.64s", text) : ck_err_set(CK_E_NOTFOUND,
		    "no request %lld", (long long)id);
		break;
	default:
		r = store_db_err(st, "reading request");
	}
	store_stmt_done(st, s);
	return r;
}

int
store_request_get(struct store *st, int64_t id, struct store_request *out)
{
	return rq_query(st, "SELECT " RQ_COLS " FROM requests WHERE id = ?1",
	    id, NULL, out);
}

int
store_request_by_acme_order(struct store *st, const char *order_id,
    struct store_request *out)
{
	return rq_query(st, "SELECT " RQ_COLS " FROM requests WHERE "
	    "acme_order = ?1 ORDER BY id DESC LIMIT 1", 0, order_id, out);
}

int
store_request_list(struct store *st, int status,
    int (*cb)(const struct store_request *rq, void *arg), void *arg)
{
	struct store_request rq;
	sqlite3_stmt *s = NULL;
	int r, rc;

	if (status >= STORE_REQUEST_STATUS__MAX)
		return ck_err_set(CK_E_INVAL, "no such request status");
	if (status < 0)
		r = store_stmt_prepare(st, "SELECT " RQ_COLS " FROM requests "
		    "ORDER BY id", &s);
	else
		r = store_stmt_prepare(st, "SELECT " RQ_COLS " FROM requests "
		    "WHERE status = ?1 ORDER BY id", &s);
	if (r != 0)
		return r;
	if (status >= 0)
		sqlite3_bind_text(s, 1, status_names[status], -1,
		    SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = rq_from_row(s, &rq)) == 0)
			r = cb(&rq, arg);
		store_request_clear(&rq);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "listing requests");
	store_stmt_done(st, s);
	return r;
}

/* The current status of ID into *status. */
static int
rq_status(struct store *st, int64_t id, int *status)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_stmt_prepare(st, "SELECT status FROM requests WHERE "
	    "id = ?1", &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, id);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		*status = store_request_status_parse((const char *)
		    sqlite3_column_text(s, 0));
		break;
	case SQLITE_DONE:
		r = ck_err_set(CK_E_NOTFOUND, "no request %lld",
		    (long long)id);
		break;
	default:
		r = store_db_err(st, "reading request");
	}
	store_stmt_done(st, s);
	return r;
}

/*
 * Run SQL (?1 id, ?2 seq, ?3 from-status, ?4 text argument, ?5 integer
 * argument; a statement may leave the arguments unused, their binding
 * then fails harmlessly) on request ID if it is in FROM; CK_E_STATE
 * otherwise.
 */
static int
rq_update(struct store *st, const char *sql, int64_t id,
    enum store_request_status from, const char *text, int64_t num)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r, cur = -1;

	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = rq_status(st, id, &cur)) != 0)
		goto out;
	if (cur != (int)from) {
		r = ck_err_set(CK_E_STATE, "request %lld is %s, not %s",
		    (long long)id, store_request_status_name(cur),
		    store_request_status_name(from));
		goto out;
	}
	if ((r = store_stmt_prepare(st, sql, &s)) != 0)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_text(s, 3, status_names[from], -1, SQLITE_STATIC);
	if (text != NULL)
		sqlite3_bind_text(s, 4, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, num);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_db_err(st, "updating request");
	else if (sqlite3_changes(store_sqlite_db(st)) != 1)
		r = ck_err_set(CK_E_STATE, "request %lld changed meanwhile",
		    (long long)id);
	store_stmt_done(st, s);
out:
	return store_tx_end(st, r);
}

int
store_request_transition(struct store *st, int64_t id,
    enum store_request_status from, enum store_request_status to,
    int64_t when, const char *reason)
{
	if ((unsigned)from >= STORE_REQUEST_STATUS__MAX ||
	    (unsigned)to >= STORE_REQUEST_STATUS__MAX)
		return ck_err_set(CK_E_INVAL, "no such request status");
	if (reason != NULL && strlen(reason) > STORE_REQUEST_REASON_MAX)
		return ck_err_set(CK_E_INVAL, "a reason is at most %d bytes",
		    STORE_REQUEST_REASON_MAX);
	/* The statement text differs per target (the cache is keyed by the
	 * literal's address). */
	switch (to) {
	case STORE_REQUEST_APPROVED:
		return rq_update(st, "UPDATE requests SET status = 'approved', "
		    "decided_at = ?5, change_seq = ?2 WHERE id = ?1 AND "
		    "status = ?3", id, from, NULL, when);
	case STORE_REQUEST_DENIED:
		return rq_update(st, "UPDATE requests SET status = 'denied', "
		    "decided_at = ?5, reason = ?4, change_seq = ?2 WHERE "
		    "id = ?1 AND status = ?3", id, from, reason ? reason : "",
		    when);
	default:
		return ck_err_set(CK_E_INVAL, "a request becomes %s only by "
		    "its own step", store_request_status_name(to));
	}
}

int
store_request_set_serial(struct store *st, int64_t id, const char *serial)
{
	if (serial == NULL || strlen(serial) >= 80)
		return ck_err_set(CK_E_INVAL, "bad serial");
	return rq_update(st, "UPDATE requests SET cert_serial = nullif(?4, ''),"
	    " change_seq = ?2 WHERE id = ?1 AND status = ?3", id,
	    STORE_REQUEST_APPROVED, serial, 0);
}

int
store_request_mark_issued(struct store *st, int64_t id, const char *serial)
{
	if (serial == NULL || serial[0] == '\0' || strlen(serial) >= 80)
		return ck_err_set(CK_E_INVAL, "bad serial");
	return rq_update(st, "UPDATE requests SET status = 'issued', "
	    "cert_serial = ?4, change_seq = ?2 WHERE id = ?1 AND status = ?3",
	    id, STORE_REQUEST_APPROVED, serial, 0);
}

int
store_request_approval_add(struct store *st,
    const struct store_request_approval *a)
{
	sqlite3_stmt *s = NULL;
	int64_t seq;
	int r, rc;

	if (a->approver[0] == '\0' || strlen(a->reason) >
	    STORE_REQUEST_REASON_MAX)
		return ck_err_set(CK_E_INVAL, "an approval needs an approver "
		    "and a reason of at most %d bytes",
		    STORE_REQUEST_REASON_MAX);
	if ((r = store_tx_begin_seq(st, &seq)) != 0)
		return r;
	if ((r = store_stmt_prepare(st, "INSERT INTO request_approvals "
	    "(request_id, approver, actor, at, reason, change_seq) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6)", &s)) != 0)
		goto out;
	sqlite3_bind_int64(s, 1, a->request_id);
	sqlite3_bind_text(s, 2, a->approver, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, a->actor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, a->at);
	sqlite3_bind_text(s, 5, a->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		r = ck_err_set(CK_E_EXISTS, "%s approved request %lld already",
		    a->approver, (long long)a->request_id);
	else if (rc != SQLITE_DONE)
		r = store_db_err(st, "recording approval");
	store_stmt_done(st, s);
out:
	return store_tx_end(st, r);
}

int
store_request_approvals(struct store *st, int64_t id,
    struct store_request_approval **out, size_t *n)
{
	struct store_request_approval *v = NULL, *nv;
	sqlite3_stmt *s = NULL;
	size_t k = 0;
	int r, rc;

	*out = NULL;
	*n = 0;
	if ((r = store_stmt_prepare(st, "SELECT approver, actor, at, reason "
	    "FROM request_approvals WHERE request_id = ?1 ORDER BY "
	    "change_seq", &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL) {
			r = CK_E_NOMEM;
			break;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		v[k].request_id = id;
		if ((r = col_copy(s, 0, v[k].approver,
		    sizeof(v[k].approver))) != 0 ||
		    (r = col_copy(s, 1, v[k].actor, sizeof(v[k].actor))) != 0 ||
		    (r = col_copy(s, 3, v[k].reason, sizeof(v[k].reason))) != 0)
			break;
		v[k].at = sqlite3_column_int64(s, 2);
		k++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(st, "reading approvals");
	store_stmt_done(st, s);
	if (r != 0) {
		free(v);
		return r;
	}
	*out = v;
	*n = k;
	return 0;
}
