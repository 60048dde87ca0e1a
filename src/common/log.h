/*
 * log.h - diagnostics to stderr (or syslog later, for the daemon).
 * Never pass secrets to these functions.
 */
#ifndef CK_COMMON_LOG_H
#define CK_COMMON_LOG_H

enum ck_log_level { CK_LOG_ERROR, CK_LOG_WARN, CK_LOG_INFO, CK_LOG_DEBUG,
	CK_LOG__MAX };

/* Set the most verbose level that is printed (default CK_LOG_WARN). */
void ck_log_set_level(enum ck_log_level lvl);

/* Print a message prefixed by the program name and level. */
void ck_log(enum ck_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ck_error(...) ck_log(CK_LOG_ERROR, __VA_ARGS__)
#define ck_warn(...) ck_log(CK_LOG_WARN, __VA_ARGS__)
#define ck_info(...) ck_log(CK_LOG_INFO, __VA_ARGS__)
#define ck_debug(...) ck_log(CK_LOG_DEBUG, __VA_ARGS__)

#endif
