/*
 * metrics.h - counters and latency histograms for /metrics (Prometheus
 * text format 0.0.4). Updated lock-free from any thread.
 */
#ifndef CK_PROTO_METRICS_H
#define CK_PROTO_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 14

struct metrics_hist {
	atomic_uint_fast64_t bucket[METRICS_BUCKETS + 1]; /* last: +Inf */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_us;
};

struct metrics {
	atomic_uint_fast64_t issued;
	atomic_uint_fast64_t refused;
	atomic_uint_fast64_t failed;
	atomic_uint_fast64_t revoked;
	atomic_uint_fast64_t unauthorized;
	atomic_uint_fast64_t http_4xx;
	atomic_uint_fast64_t http_5xx;
	struct metrics_hist issue_latency;
	struct metrics_hist ocsp_latency;
};

/* Record one observation of `us` microseconds. */
void metrics_observe(struct metrics_hist *h, uint64_t us);

/* Microseconds on a monotonic clock. */
uint64_t metrics_now_us(void);

/* Append the histogram `name` in text format to buf (at *off, size sz). */
void metrics_format_hist(const struct metrics_hist *h, const char *name,
    const char *help, char *buf, size_t sz, size_t *off);

/* Append "# HELP/# TYPE" and one sample. */
void metrics_format_value(const char *name, const char *type,
    const char *help, double v, char *buf, size_t sz, size_t *off);

#endif
