#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>

static enum ck_log_level ck_log_level = CK_LOG_WARN;
static const char *const ck_log_names[CK_LOG__MAX] = {
	"error", "warning", "info", "debug"
};

void
ck_log_set_level(enum ck_log_level lvl)
{
	if (lvl < CK_LOG__MAX)
		ck_log_level = lvl;
}

void
ck_log(enum ck_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl >= CK_LOG__MAX || lvl > ck_log_level)
		return;
	fprintf(stderr, "certkeep: %s: ", ck_log_names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
