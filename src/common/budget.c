/*
 * budget.c - refusals audited one by one, up to a rate (budget.h).
 */
#include "common/budget.h"

#include <stdio.h>

#include "common/timeutil.h"

void
ck_budget_init(struct ck_budget *b, unsigned per_s)
{
	pthread_mutex_init(&b->mu, NULL);
	b->per_s = per_s;
	b->second = 0;
	b->used = 0;
	b->over = 0;
}

void
ck_budget_destroy(struct ck_budget *b)
{
	pthread_mutex_destroy(&b->mu);
}

int
ck_budget_take(struct ck_budget *b, uint64_t *over)
{
	int64_t now = ck_time_now();
	int ok;

	pthread_mutex_lock(&b->mu);
	if (b->second != now) {
		b->second = now;
		b->used = 0;
	}
	ok = b->used < b->per_s;
	if (ok) {
		b->used++;
		*over = b->over;
		b->over = 0;
	} else
		b->over++;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void
ck_budget_reason(const struct ck_budget *b, uint64_t over,
    const char *reason, char *out, size_t outsz)
{
	if (over == 0)
		snprintf(out, outsz, "%s", reason);
	else
		snprintf(out, outsz, "%s (after %llu refusals over the limit "
		    "of %u a second that were not audited one by one)",
		    reason, (unsigned long long)over, b->per_s);
}
