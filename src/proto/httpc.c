/*
 * httpc.c - parsing an HTTP/1.1 response (httpc.h).
 */
#include "proto/httpc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

/* The line at P (ending at "\r\n" before END): its length, or -1. */
static long
line_len(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *q;

	for (q = p; q + 1 < end; q++)
		if (q[0] == '\r' && q[1] == '\n')
			return (long)(q - p);
	return -1;
}

int
httpc_parse_response(const unsigned char *buf, size_t len,
    struct httpc_response *out)
{
	const unsigned char *p = buf, *end, *hend;
	uint64_t clen = 0;
	int have_clen = 0, i;
	long n;

	memset(out, 0, sizeof(*out));
	end = buf + len;
	hend = buf + (len < HTTPC_HEADERS_MAX ? len : HTTPC_HEADERS_MAX);
	/* "HTTP/1.x NNN reason" */
	if ((n = line_len(p, hend)) < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return ck_err_set(CK_E_PARSE, "HTTP response: no status line");
	for (i = 9; i < 12; i++)
		if (p[i] < '0' || p[i] > '9')
			return ck_err_set(CK_E_PARSE, "HTTP response: a bad "
			    "status code");
	out->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (out->status < 100 || out->status > 599 || (n > 12 && p[12] != ' '))
		return ck_err_set(CK_E_PARSE, "HTTP response: a bad status "
		    "code");
	p += n + 2;
	for (;;) {
		const unsigned char *colon, *v;
		size_t vlen, nlen;

		if ((n = line_len(p, hend)) < 0)
			return ck_err_set(CK_E_PARSE, "HTTP response: the "
			    "headers do not end within %u bytes",
			    HTTPC_HEADERS_MAX);
		if (n == 0) {
			p += 2;
			break;
		}
		if ((colon = memchr(p, ':', (size_t)n)) == NULL || colon == p)
			return ck_err_set(CK_E_PARSE, "HTTP response: a bad "
			    "header line");
		nlen = (size_t)(colon - p);
		v = colon + 1;
		while (v < p + n && (*v == ' ' || *v == '\t'))
			v++;
		vlen = (size_t)(p + n - v);
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (nlen == 14 && strncasecmp((const char *)p,
		    "Content-Length", 14) == 0) {
			uint64_t c = 0;
			size_t k;
			if (vlen == 0 || vlen > 15 || have_clen)
				return ck_err_set(CK_E_PARSE, "HTTP response: "
				    "a bad Content-Length");
			for (k = 0; k < vlen; k++) {
				if (v[k] < '0' || v[k] > '9')
					return ck_err_set(CK_E_PARSE, "HTTP "
					    "response: a bad Content-Length");
				c = c * 10 + (uint64_t)(v[k] - '0');
			}
			clen = c;
			have_clen = 1;
		} else if (nlen == 17 && strncasecmp((const char *)p,
		    "Transfer-Encoding", 17) == 0) {
			if (!(vlen == 8 && strncasecmp((const char *)v,
			    "identity", 8) == 0))
				return ck_err_set(CK_E_PARSE, "HTTP response: "
				    "transfer encodings are not supported");
		} else if (nlen == 12 && strncasecmp((const char *)p,
		    "Content-Type", 12) == 0) {
			if (vlen >= sizeof(out->content_type))
				vlen = sizeof(out->content_type) - 1;
			memcpy(out->content_type, v, vlen);
			out->content_type[vlen] = '\0';
		}
		p += n + 2;
	}
	out->body_off = (size_t)(p - buf);
	out->body_len = (size_t)(end - p);
	if (have_clen && clen != out->body_len)
		return ck_err_set(CK_E_PARSE, "HTTP response: %zu body bytes "
		    "for a Content-Length of %llu", out->body_len,
		    (unsigned long long)clen);
	return 0;
}
