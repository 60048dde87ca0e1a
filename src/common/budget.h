/*
 * budget.h - how many refusals a second are audited one by one.
 *
 * A caller who is refused can ask again at once, and every refusal is an
 * audit entry written through the store's committer: unbounded, a flood
 * would fill the log and hold up the writes that matter. So at most
 * PER_S refusals a second get an entry each; the ones over that are
 * counted, and the count goes into the next refusal that is audited, so
 * that the log still says how many there were.
 */
#ifndef CK_COMMON_BUDGET_H
#define CK_COMMON_BUDGET_H

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

struct ck_budget {
	pthread_mutex_t mu;
	unsigned per_s;
	int64_t second;
	unsigned used;
	uint64_t over;		/* not audited since the last that was */
};

void ck_budget_init(struct ck_budget *b, unsigned per_s);
void ck_budget_destroy(struct ck_budget *b);

/*
 * 1 if this refusal is audited; then *over is the number of refusals
 * that were not since the last one that was (to be named in its entry),
 * and is reset. 0 if not (it is counted).
 */
int ck_budget_take(struct ck_budget *b, uint64_t *over);

/* REASON with ", after N refusals over the limit of M a second that were
 * not audited one by one" appended when OVER > 0, into OUT. */
void ck_budget_reason(const struct ck_budget *b, uint64_t over,
    const char *reason, char *out, size_t outsz);

#endif
