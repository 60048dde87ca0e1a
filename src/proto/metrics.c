#include "proto/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* Upper bounds in seconds. */
static const double bounds[METRICS_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5, 10
};

uint64_t
metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
metrics_observe(struct metrics_hist *h, uint64_t us)
{
	double s = (double)us / 1e6;
	int i;

	for (i = 0; i < METRICS_BUCKETS; i++)
		if (s <= bounds[i])
			break;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, us);
}

static void
put(char *buf, size_t sz, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= sz)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, sz - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n < sz - *off ? (size_t)n : sz - *off;
}

void
metrics_format_hist(const struct metrics_hist *h, const char *name,
    const char *help, char *buf, size_t sz, size_t *off)
{
	uint64_t cum = 0;
	int i;

	put(buf, sz, off, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
	    name);
	for (i = 0; i < METRICS_BUCKETS; i++) {
		cum += atomic_load(&h->bucket[i]);
		put(buf, sz, off, "%s_bucket{le=\"%g\"} %llu\n", name,
		    bounds[i], (unsigned long long)cum);
	}
	cum += atomic_load(&h->bucket[METRICS_BUCKETS]);
	put(buf, sz, off, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	put(buf, sz, off, "%s_sum %.6f\n%s_count %llu\n", name,
	    (double)atomic_load(&h->sum_us) / 1e6, name,
	    (unsigned long long)atomic_load(&h->count));
}

void
metrics_format_value(const char *name, const char *type, const char *help,
    double v, char *buf, size_t sz, size_t *off)
{
	put(buf, sz, off, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help,
	    name, type, name, v);
}
