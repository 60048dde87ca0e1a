/*
 * timeutil.h - UTC times as int64 seconds since the epoch.
 */
#ifndef CK_COMMON_TIMEUTIL_H
#define CK_COMMON_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Now, in seconds since the epoch (UTC). */
int64_t ck_time_now(void);

/* Seconds on the monotonic clock (for ages and deadlines: a step of the
 * wall clock does not move it). */
int64_t ck_time_mono(void);

/*
 * Parse "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DD HH:MM:SS" (UTC).
 * Returns 0 and sets *out, or CK_E_PARSE.
 */
int ck_time_parse(const char *s, int64_t *out);

/* Format as "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
void ck_time_format(int64_t t, char *buf, size_t bufsz);

#endif
