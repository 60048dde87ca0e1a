/*
 * pipeline.h - concurrent issuance with group commit, for the server.
 *
 *   request threads --prepare--> [commit queue] --committer: one durable
 *   transaction logs many pending rows--> [sign queue] --signer threads
 *   sign in parallel--> [commit queue] --committer: one durable transaction
 *   records many issued certificates and their audit entries--> done()
 *
 * A client is answered (done() is called) only after its certificate is
 * durable. All writes of the server go through the committer, the store
 * connection's only user, each in its own savepoint inside the group
 * transaction, so one failure does not fail its neighbours.
 */
#ifndef CK_CA_PIPELINE_H
#define CK_CA_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"

struct ck_pipeline;

/* Called once per issuance, from a pipeline thread. r == 0: the job holds
 * the durable certificate (ck_issue_job_take_der). The callee owns `job`
 * and frees it. `msg` explains a failure. */
typedef void (*ck_issue_done)(void *arg, int r, const char *msg,
    struct ck_issue_job *job);

/* A write to run in the group transaction; its result goes to done. */
typedef int (*ck_write_fn)(struct ck_ca *ca, void *fnarg);
typedef void (*ck_write_done)(void *arg, int r, const char *msg);

struct ck_pipeline_stats {
	uint64_t issued;
	uint64_t failed;
	uint64_t writes;
	uint64_t commits;	/* durable transactions */
	uint64_t committed_items;
	uint64_t max_batch;
};

/* Start the committer and `signers` signing threads on an unlocked CA
 * (whose store connection the pipeline then owns). */
int ck_pipeline_start(struct ck_ca *ca, unsigned signers,
    struct ck_pipeline **out);

/* Finish everything queued, then stop the threads; accepts NULL. */
void ck_pipeline_stop(struct ck_pipeline *pl);

/* Queue a prepared job. Never fails: errors reach done(). */
void ck_pipeline_issue(struct ck_pipeline *pl, struct ck_issue_job *job,
    ck_issue_done done, void *arg);

/* Queue a write. `done` may be NULL. */
void ck_pipeline_write(struct ck_pipeline *pl, ck_write_fn fn, void *fnarg,
    ck_write_done done, void *arg);

/* Run a write and wait for its result (for admin paths). */
int ck_pipeline_write_wait(struct ck_pipeline *pl, ck_write_fn fn,
    void *fnarg, char *msg, size_t msgsz);

void ck_pipeline_get_stats(struct ck_pipeline *pl,
    struct ck_pipeline_stats *out);

#endif
