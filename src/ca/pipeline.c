#include "ca/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "store/store.h"

/* Largest group commit; larger batches only delay the first answers. */
#define PL_MAX_BATCH 1024
/* How long the committer holds a group open for the items still being
 * signed or answered (see group_ready). Every durable commit costs a WAL
 * header, the tree pages it touched and an fsync whatever its size, so
 * a group that waits for its neighbours costs less per certificate; the
 * wait is short next to a request's time in the queue. */
#define PL_LINGER_NS 2000000L
#define PL_MAX_SIGNERS 64

enum pl_kind { PL_LOG, PL_RECORD, PL_RECORD_FAILED, PL_WRITE, PL_KIND__MAX };

struct pl_item {
	struct pl_item *next;
	enum pl_kind kind;
	struct ck_issue_job *job;
	ck_issue_done done;
	void *arg;
	ck_write_fn fn;
	void *fnarg;
	ck_write_done wdone;
	int r;
	char msg[512];
};

struct pl_queue {
	struct pl_item *head, *tail;
	size_t n;
};

struct ck_pipeline {
	struct ck_ca *ca;
	pthread_mutex_t mu;
	pthread_cond_t commit_cv;
	pthread_cond_t sign_cv;
	pthread_cond_t idle_cv;
	struct pl_queue commitq;
	struct pl_queue signq;
	struct pl_queue doneq;	/* answered by the signing threads, so that
				 * the committer only commits */
	size_t inflight;	/* items anywhere in the pipeline */
	int commit_want;	/* the committer waits for work: wake it
				 * (0: it is busy and will look anyway) */
	int commit_gather;	/* ... and for a ready group, not just any
				 * item */
	int stopping;
	pthread_t committer;
	/* The committer's scratch space for a group's jobs. */
	struct ck_issue_job *logs[PL_MAX_BATCH];
	struct ck_issue_job *records[PL_MAX_BATCH];
	pthread_t signers[PL_MAX_SIGNERS];
	unsigned nsigners;
	struct ck_pipeline_stats stats;
};

static void
q_push(struct pl_queue *q, struct pl_item *it)
{
	it->next = NULL;
	if (q->tail != NULL)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n++;
}

static struct pl_item *
q_pop(struct pl_queue *q)
{
	struct pl_item *it = q->head;

	if (it != NULL) {
		q->head = it->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->n--;
		it->next = NULL;
	}
	return it;
}

/*
 * A group is ready when everything in the pipeline waits for the committer
 * (nothing is being signed or answered that would join it), or when it is
 * full, or at the end. Lock held.
 */
static int
group_ready(const struct ck_pipeline *pl)
{
	return pl->commitq.n >= pl->inflight || pl->commitq.n >= PL_MAX_BATCH ||
	    pl->stopping;
}

/* Wake the committer if it waits for what is queued now; lock held. */
static void
commit_wake(struct ck_pipeline *pl)
{
	if (pl->commit_want && (!pl->commit_gather || group_ready(pl)))
		pthread_cond_signal(&pl->commit_cv);
}

/* Deliver a finished item; called without the lock held. */
static void
finish(struct ck_pipeline *pl, struct pl_item *it)
{
	if (it->kind == PL_WRITE) {
		if (it->wdone != NULL)
			it->wdone(it->arg, it->r, it->msg);
	} else
		it->done(it->arg, it->r, it->msg, it->job);
	pthread_mutex_lock(&pl->mu);
	if (it->kind == PL_WRITE)
		pl->stats.writes++;
	else if (it->r == 0)
		pl->stats.issued++;
	else
		pl->stats.failed++;
	pl->inflight--;
	if (pl->inflight == 0)
		pthread_cond_broadcast(&pl->idle_cv);
	commit_wake(pl);
	pthread_mutex_unlock(&pl->mu);
	free(it);
}

static int
run_item(struct ck_pipeline *pl, struct pl_item *it)
{
	switch (it->kind) {
	case PL_LOG:
		return ck_issue_log(pl->ca, it->job);
	case PL_RECORD:
		return ck_issue_record(pl->ca, it->job);
	case PL_RECORD_FAILED:
		/* Record the failure; the item keeps its original error. */
		return ck_issue_record_failed(pl->ca, it->job, it->msg);
	case PL_WRITE:
		return it->fn(pl->ca, it->fnarg);
	default:
		return CK_E_INTERNAL;
	}
}

static int
is_issue(const struct pl_item *it)
{
	return it->kind != PL_WRITE;
}

/* Record the outcome of one item run in its own savepoint. */
static void
run_one(struct ck_pipeline *pl, struct pl_item *it)
{
	int ir;

	ck_err_clear();
	if ((ir = store_tx_begin(pl->ca->st)) == 0) {
		ir = run_item(pl, it);
		if (ir == 0)
			ir = store_tx_commit(pl->ca->st);
		else
			store_tx_rollback(pl->ca->st);
	}
	if (it->kind == PL_RECORD_FAILED)
		return;
	if (ir != 0)
		snprintf(it->msg, sizeof(it->msg), "%s",
		    ck_err_msg()[0] ? ck_err_msg() : ck_strerror(ir));
	it->r = ir;
}

/*
 * Run the issuance items from `first` up to (not including) `end`: all in
 * one savepoint, the pending rows and the issued ones each with one
 * statement prepared once (ck_issue_log_many, ck_issue_record_many), as
 * they nearly always succeed; if one fails, that
 * savepoint is rolled back and each runs again in a savepoint of its own,
 * so that one failure fails nobody else. (Other writes are never run
 * twice: they always get their own savepoint.)
 */
static void
run_group(struct ck_pipeline *pl, struct pl_item *first, struct pl_item *end)
{
	struct pl_item *it;
	int ok = 0;

	size_t nlog = 0, nrec = 0;

	ck_err_clear();
	if (store_tx_begin(pl->ca->st) == 0) {
		ok = 1;
		for (it = first; it != end && ok; it = it->next)
			if (it->kind == PL_LOG)
				pl->logs[nlog++] = it->job;
			else if (it->kind == PL_RECORD)
				pl->records[nrec++] = it->job;
			else
				ok = run_item(pl, it) == 0;
		if (ok)
			ok = ck_issue_log_many(pl->ca, pl->logs, nlog) == 0 &&
			    ck_issue_record_many(pl->ca, pl->records,
			    nrec) == 0;
		if (ok)
			ok = store_tx_commit(pl->ca->st) == 0;
		else
			store_tx_rollback(pl->ca->st);
	}
	for (it = first; it != end; it = it->next) {
		if (!ok)
			run_one(pl, it);
		else if (it->kind != PL_RECORD_FAILED)
			it->r = 0;
	}
}

static void *
committer_main(void *arg)
{
	struct ck_pipeline *pl = arg;
	struct pl_item *batch, *it, *next, **tailp, *end;
	size_t n;
	int r;

	/* Named for top and perf. */
	(void)pthread_setname_np(pthread_self(), "ck-commit");
	for (;;) {
		pthread_mutex_lock(&pl->mu);
		pl->commit_want = 1;
		while (pl->commitq.n == 0 &&
		    !(pl->stopping && pl->inflight == 0))
			pthread_cond_wait(&pl->commit_cv, &pl->mu);
		if (pl->commitq.n == 0) {
			pthread_mutex_unlock(&pl->mu);
			break;
		}
		if (!group_ready(pl)) {
			struct timespec dl;
			clock_gettime(CLOCK_MONOTONIC, &dl);
			dl.tv_nsec += PL_LINGER_NS;
			if (dl.tv_nsec >= 1000000000L) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000L;
			}
			pl->commit_gather = 1;
			while (!group_ready(pl) && pthread_cond_timedwait(
			    &pl->commit_cv, &pl->mu, &dl) != ETIMEDOUT)
				;
			pl->commit_gather = 0;
		}
		pl->commit_want = 0;
		batch = NULL;
		tailp = &batch;
		for (n = 0; n < PL_MAX_BATCH && pl->commitq.n > 0; n++) {
			*tailp = q_pop(&pl->commitq);
			tailp = &(*tailp)->next;
		}
		pthread_mutex_unlock(&pl->mu);

		r = store_tx_begin(pl->ca->st);
		for (it = batch; it != NULL; it = end) {
			if (r != 0) {
				it->r = r;
				end = it->next;
				continue;
			}
			if (!is_issue(it)) {
				run_one(pl, it);
				end = it->next;
				continue;
			}
			for (end = it->next; end != NULL && is_issue(end);
			    end = end->next)
				;
			run_group(pl, it, end);
		}
		if (r == 0)
			r = store_tx_commit(pl->ca->st);
		if (r != 0) {
			/* Nothing of this batch is durable: fail it all. A
			 * signed certificate is then not handed out; its row
			 * (if an earlier batch logged it) stays pending. */
			char m[256];
			snprintf(m, sizeof(m), "the store could not commit: %s",
			    ck_err_msg());
			for (it = batch; it != NULL; it = it->next) {
				it->r = r;
				snprintf(it->msg, sizeof(it->msg), "%s", m);
			}
		}
		pthread_mutex_lock(&pl->mu);
		pl->stats.commits++;
		pl->stats.committed_items += n;
		if (n > pl->stats.max_batch)
			pl->stats.max_batch = n;
		for (it = batch; it != NULL; it = next) {
			next = it->next;
			/* Logged durably: now it may be signed. Anything
			 * else is finished: a signing thread answers it. */
			q_push(it->kind == PL_LOG && it->r == 0 ? &pl->signq :
			    &pl->doneq, it);
		}
		pthread_cond_broadcast(&pl->sign_cv);
		pthread_mutex_unlock(&pl->mu);
	}
	return NULL;
}

/* The most a signing thread takes at once: one call to the signer
 * process for them all. */
#define PL_SIGN_MANY 32
#define PL_SIGN_INFLIGHT 128
/* So that every signing thread takes at least one. */
_Static_assert(PL_SIGN_INFLIGHT >= PL_MAX_SIGNERS, "PL_SIGN_INFLIGHT");

static void *
signer_main(void *arg)
{
	struct ck_pipeline *pl = arg;
	struct pl_item *it, *items[PL_SIGN_MANY];
	struct ck_issue_job *jobs[PL_SIGN_MANY];
	char *msgs[PL_SIGN_MANY];
	int rs[PL_SIGN_MANY];
	size_t i, n, want, nsg;

	(void)pthread_setname_np(pthread_self(), "ck-sign");
	for (;;) {
		pthread_mutex_lock(&pl->mu);
		while (pl->signq.n == 0 && pl->doneq.n == 0 && !pl->stopping)
			pthread_cond_wait(&pl->sign_cv, &pl->mu);
		if ((it = q_pop(&pl->doneq)) != NULL) {
			pthread_mutex_unlock(&pl->mu);
			finish(pl, it);
			continue;
		}
		/* A share of what waits, so that the other signing threads
		 * (and the signer's) have theirs; with many signing threads,
		 * fewer each: no more than PL_SIGN_INFLIGHT at the signer in
		 * all (it queues 256, then stops reading). */
		nsg = pl->nsigners > 0 ? pl->nsigners : 1;
		want = (pl->signq.n + nsg - 1) / nsg;
		if (want > PL_SIGN_INFLIGHT / nsg)
			want = PL_SIGN_INFLIGHT / nsg;
		if (want > PL_SIGN_MANY)
			want = PL_SIGN_MANY;
		for (n = 0; n < want && (it = q_pop(&pl->signq)) != NULL; n++)
			items[n] = it;
		if (n == 0) {	/* stopping and nothing left */
			pthread_mutex_unlock(&pl->mu);
			break;
		}
		pthread_mutex_unlock(&pl->mu);
		for (i = 0; i < n; i++) {
			jobs[i] = items[i]->job;
			msgs[i] = items[i]->msg;
		}
		ck_err_clear();
		ck_issue_sign_many(pl->ca, jobs, n, rs, msgs,
		    sizeof(items[0]->msg));
		pthread_mutex_lock(&pl->mu);
		for (i = 0; i < n; i++) {
			if (rs[i] == 0)
				items[i]->kind = PL_RECORD;
			else {
				items[i]->kind = PL_RECORD_FAILED;
				items[i]->r = rs[i];
			}
			q_push(&pl->commitq, items[i]);
		}
		commit_wake(pl);
		pthread_mutex_unlock(&pl->mu);
	}
	return NULL;
}

int
ck_pipeline_start(struct ck_ca *ca, unsigned signers, struct ck_pipeline **out)
{
	struct ck_pipeline *pl;
	unsigned i;

	if (signers == 0)
		signers = 1;
	if (signers > PL_MAX_SIGNERS)
		signers = PL_MAX_SIGNERS;
	if ((pl = calloc(1, sizeof(*pl))) == NULL)
		return CK_E_NOMEM;
	pl->ca = ca;
	pthread_mutex_init(&pl->mu, NULL);
	{
		pthread_condattr_t cattr;
		pthread_condattr_init(&cattr);
		pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
		pthread_cond_init(&pl->commit_cv, &cattr);
		pthread_condattr_destroy(&cattr);
	}
	pthread_cond_init(&pl->sign_cv, NULL);
	pthread_cond_init(&pl->idle_cv, NULL);
	if (pthread_create(&pl->committer, NULL, committer_main, pl) != 0) {
		free(pl);
		return ck_err_set(CK_E_INTERNAL, "cannot start a thread");
	}
	for (i = 0; i < signers; i++) {
		if (pthread_create(&pl->signers[i], NULL, signer_main, pl) != 0)
			break;
		/* Read by the signing threads (under the lock). */
		pthread_mutex_lock(&pl->mu);
		pl->nsigners++;
		pthread_mutex_unlock(&pl->mu);
	}
	*out = pl;
	if (pl->nsigners == 0) {
		ck_pipeline_stop(pl);
		return ck_err_set(CK_E_INTERNAL, "cannot start a thread");
	}
	return 0;
}

void
ck_pipeline_stop(struct ck_pipeline *pl)
{
	unsigned i;

	if (pl == NULL)
		return;
	pthread_mutex_lock(&pl->mu);
	while (pl->inflight > 0)
		pthread_cond_wait(&pl->idle_cv, &pl->mu);
	pl->stopping = 1;
	pthread_cond_broadcast(&pl->commit_cv);
	pthread_cond_broadcast(&pl->sign_cv);
	pthread_mutex_unlock(&pl->mu);
	pthread_join(pl->committer, NULL);
	for (i = 0; i < pl->nsigners; i++)
		pthread_join(pl->signers[i], NULL);
	pthread_cond_destroy(&pl->commit_cv);
	pthread_cond_destroy(&pl->sign_cv);
	pthread_cond_destroy(&pl->idle_cv);
	pthread_mutex_destroy(&pl->mu);
	free(pl);
}

static void
submit(struct ck_pipeline *pl, struct pl_item *it)
{
	pthread_mutex_lock(&pl->mu);
	pl->inflight++;
	q_push(&pl->commitq, it);
	commit_wake(pl);
	pthread_mutex_unlock(&pl->mu);
}

void
ck_pipeline_issue(struct ck_pipeline *pl, struct ck_issue_job *job,
    ck_issue_done done, void *arg)
{
	struct pl_item *it = calloc(1, sizeof(*it));

	if (it == NULL) {
		done(arg, CK_E_NOMEM, "out of memory", job);
		return;
	}
	it->kind = PL_LOG;
	it->job = job;
	it->done = done;
	it->arg = arg;
	submit(pl, it);
}

void
ck_pipeline_write(struct ck_pipeline *pl, ck_write_fn fn, void *fnarg,
    ck_write_done done, void *arg)
{
	struct pl_item *it = calloc(1, sizeof(*it));

	if (it == NULL) {
		if (done != NULL)
			done(arg, CK_E_NOMEM, "out of memory");
		return;
	}
	it->kind = PL_WRITE;
	it->fn = fn;
	it->fnarg = fnarg;
	it->wdone = done;
	it->arg = arg;
	submit(pl, it);
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int r;
	char msg[512];
};

static void
wait_done(void *arg, int r, const char *msg)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->r = r;
	snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int
ck_pipeline_write_wait(struct ck_pipeline *pl, ck_write_fn fn, void *fnarg,
    char *msg, size_t msgsz)
{
	struct waiter w;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	ck_pipeline_write(pl, fn, fnarg, wait_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	if (msg != NULL && msgsz > 0)
		snprintf(msg, msgsz, "%s", w.msg);
	return w.r;
}

void
ck_pipeline_get_stats(struct ck_pipeline *pl, struct ck_pipeline_stats *out)
{
	pthread_mutex_lock(&pl->mu);
	*out = pl->stats;
	pthread_mutex_unlock(&pl->mu);
}
