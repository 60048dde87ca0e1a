#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static const char *const ck_err_names[] = {
	"success",
	"internal error",
	"out of memory",
	"input/output error",
	"invalid argument",
	"malformed input",
	"input too large",
	"cryptographic failure",
	"bad signature",
	"refused by policy",
	"wrong passphrase or unreadable key",
	"unsafe permissions",
	"already exists",
	"not found",
	"store failure",
	"integrity check failed",
	"invalid state",
	"busy",
};

_Static_assert(sizeof(ck_err_names) / sizeof(ck_err_names[0]) == -CK_E__MAX,
    "ck_err_names must cover every code");

static _Thread_local char ck_err_buf[1024];

const char *
ck_strerror(int code)
{
	if (code > 0 || code <= CK_E__MAX)
		return "unknown error";
	return ck_err_names[-code];
}

int
ck_err_set(int code, const char *fmt, ...)
{
	char tmp[sizeof(ck_err_buf)];
	va_list ap;

	/* Through a copy: callers may pass ck_err_msg() itself to add
	 * context ("file: <reason>"). */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(ck_err_buf, tmp, sizeof(tmp));
	return code;
}

const char *
ck_err_msg(void)
{
	return ck_err_buf;
}

void
ck_err_clear(void)
{
	ck_err_buf[0] = '\0';
}

int
ck_err_ssl(int code, const char *what)
{
	unsigned long e;
	char sslbuf[256] = "";

	e = ERR_peek_last_error();
	if (e != 0)
		ERR_error_string_n(e, sslbuf, sizeof(sslbuf));
	ERR_clear_error();
	if (sslbuf[0] != '\0')
		return ck_err_set(code, "%s: %s", what, sslbuf);
	return ck_err_set(code, "%s", what);
}
