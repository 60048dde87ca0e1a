/*
 * acme_validate.c - http-01, dns-01 and tls-alpn-01 validation and CAA,
 * as acme_validate.h describes.
 */
#include "proto/acme_validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "proto/dns.h"
#include "proto/jws.h"
#include "x509/names.h"

#define V_MAX_TARGETS 16	/* addresses tried for one host */
#define V_HDR_MAX 8192		/* HTTP status line and headers */
#define V_RAW_MAX (V_HDR_MAX + 4 * ACME_V_HTTP_MAX_BODY) /* with chunking */
#define V_URL_MAX 2048
#define V_TOKEN_MAX 256
#define V_KEYAUTH_MAX 1024
#define V_ACME_ID_OID "1.3.6.1.5.5.7.1.31"	/* id-pe-acmeIdentifier */

/* One validation or CAA check. */
struct vctx {
	const struct acme_vconf *cf;
	struct dns_client dns;
	struct dns_answer *ans;	/* scratch, for every query */
	int64_t deadline;
	uint16_t http_port;
	uint16_t tls_port;
	int iplen;		/* ip identifier: its address, else 0 */
	unsigned char ip[16];
	const char **ptype;
	char *detail;
	size_t dlen;
};

/* An address to connect to. */
struct target {
	struct sockaddr_storage sa;
	socklen_t salen;
	char text[80];		/* "1.2.3.4:80" */
};

__attribute__((format(printf, 4, 5)))
static int
fail(struct vctx *v, int code, const char *ptype, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	*v->ptype = ptype;
	if (v->dlen > 0)
		snprintf(v->detail, v->dlen, "%s", buf);
	return ck_err_set(code, "%s", buf);
}

/* Printable text of untrusted bytes, for a detail: at most max of them,
 * others as '?', "..." when cut. */
static void
show(const unsigned char *p, size_t n, size_t max, char *out, size_t outsz)
{
	size_t o = 0, i;

	for (i = 0; i < n && i < max && o + 1 < outsz; i++)
		out[o++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	if (i < n && o + 4 < outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static int
wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int
alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
b64url_chars(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

static int
sha256(const char *s, unsigned char out[32])
{
	unsigned int n = 0;

	if (EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL) != 1 ||
	    n != 32)
		return ck_err_ssl(CK_E_CRYPTO, "SHA-256");
	return 0;
}

/* The part of the whole time that is left for one of `left` steps. */
static int64_t
share_of(const struct vctx *v, size_t left)
{
	int64_t now = dns_clock_ms(), rest = v->deadline - now;

	if (left <= 1 || rest <= 0)
		return v->deadline;
	return now + rest / (int64_t)left;
}

static int
vctx_init(struct vctx *v, const struct acme_vconf *cf, const char **ptype,
    char *detail, size_t dlen)
{
	int timeout, r;

	memset(v, 0, sizeof(*v));
	v->cf = cf;
	v->ptype = ptype;
	v->detail = detail;
	v->dlen = dlen;
	*ptype = NULL;
	if (dlen > 0)
		detail[0] = '\0';
	timeout = cf->timeout_ms > 0 ? cf->timeout_ms : ACME_V_TIMEOUT_MS;
	v->deadline = dns_clock_ms() + timeout;
	v->http_port = cf->http_port != 0 ? cf->http_port : ACME_V_HTTP_PORT;
	v->tls_port = cf->tls_port != 0 ? cf->tls_port : ACME_V_TLS_PORT;
	/* A quarter of the time per DNS try, so that a dead first server
	 * leaves time for the others (and for what follows the lookup). */
	r = dns_client_init(&v->dns, cf->dns_servers,
	    timeout / 4 < DNS_TRY_TIMEOUT_MS ? timeout / 4 + 1 :
	    DNS_TRY_TIMEOUT_MS);
	if (r != 0)
		return fail(v, CK_E_INVAL, "serverInternal", "validation is "
		    "not configured: %s", ck_err_msg());
	if ((v->ans = malloc(sizeof(*v->ans))) == NULL)
		return fail(v, CK_E_NOMEM, "serverInternal", "out of memory");
	return 0;
}

static void
vctx_clear(struct vctx *v)
{
	free(v->ans);
	v->ans = NULL;
}

/* --------------------------------------------------------- addresses */

static void
target_set(struct target *t, const unsigned char *ip, size_t iplen,
    uint16_t port)
{
	memset(t, 0, sizeof(*t));
	if (iplen == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, ip, 4);
		t->salen = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, ip, 16);
		t->salen = sizeof(*s6);
	}
	dns_addr_format((struct sockaddr *)&t->sa, t->text, sizeof(t->text));
}

/*
 * Addresses the validator must not be sent to: unspecified, "this
 * network", multicast, broadcast, link-local (cloud metadata services
 * live there) and, unless [acme] validation_allow_loopback, loopback (the
 * CA's own host). An IPv4-mapped IPv6 address is judged as its IPv4
 * address. Private ranges are allowed: an organisation's CA validates its
 * own networks.
 */
/* Base64url characters around one dot, at most 200 bytes. */
static int
looks_like_keyauth(const unsigned char *b, size_t n)
{
	size_t i, dots = 0;

	if (n == 0 || n > 200)
		return 0;
	for (i = 0; i < n; i++) {
		if (b[i] == '.')
			dots++;
		else if (!((b[i] >= 'a' && b[i] <= 'z') ||
		    (b[i] >= 'A' && b[i] <= 'Z') ||
		    (b[i] >= '0' && b[i] <= '9') || b[i] == '-' ||
		    b[i] == '_'))
			return 0;
	}
	return dots == 1;
}

static int
addr_unusable(const struct vctx *v, const unsigned char *ip, size_t len)
{
	static const unsigned char zero[16];
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	static const unsigned char lo6[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 1 };
	int loop_ok = v->cf->allow_loopback;

	if (len == 16 && memcmp(ip, mapped, 12) == 0) {
		ip += 12;
		len = 4;
	}
	if (len == 4)
		return ip[0] == 0 || (ip[0] & 0xf0) == 0xe0 ||
		    memcmp(ip, "\xff\xff\xff\xff", 4) == 0 ||
		    (ip[0] == 169 && ip[1] == 254) ||
		    (ip[0] == 127 && !loop_ok);
	return memcmp(ip, zero, 16) == 0 || ip[0] == 0xff ||
	    (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) ||
	    (memcmp(ip, lo6, 16) == 0 && !loop_ok);
}

/*
 * The addresses of host for port: an address literal as it is; a name
 * by AAAA then A through the configured servers. 0 and *nt >= 1, or a
 * "dns" failure.
 */
static int
resolve(struct vctx *v, const char *host, uint16_t port, struct target *t,
    size_t *nt)
{
	static const uint16_t types[2] = { DNS_T_AAAA, DNS_T_A };
	char errs[2][600];
	unsigned char ip[16];
	size_t n = 0, nerr = 0, skipped = 0, len;
	int r, iplen;

	*nt = 0;
	if ((iplen = ck_ip_parse(host, ip)) != 0) {
		if (addr_unusable(v, ip, (size_t)iplen))
			return fail(v, CK_E_IO, "connection", "%s is not an "
			    "address that can be connected to", host);
		target_set(&t[0], ip, (size_t)iplen, port);
		*nt = 1;
		return 0;
	}
	for (size_t k = 0; k < 2; k++) {
		if ((r = dns_query(&v->dns, host, types[k], v->deadline,
		    v->ans)) != 0) {
			if (r == CK_E_NOMEM)
				return fail(v, r, "serverInternal", "out of "
				    "memory");
			snprintf(errs[nerr++], sizeof(errs[0]), "%s",
			    ck_err_msg());
			continue;
		}
		for (size_t i = 0; i < v->ans->nrr && n < V_MAX_TARGETS; i++) {
			if ((len = dns_rr_addr(v->ans, i, ip)) == 0)
				continue;
			if (addr_unusable(v, ip, len)) {
				skipped++;
				continue;
			}
			target_set(&t[n++], ip, len, port);
		}
	}
	if (n > 0) {
		*nt = n;
		return 0;
	}
	if (nerr == 2)
		return fail(v, CK_E_IO, "dns", "%s; %s", errs[0], errs[1]);
	if (nerr == 1)
		return fail(v, CK_E_IO, "dns", "%s (and no address of the "
		    "other family)", errs[0]);
	if (skipped > 0)
		return fail(v, CK_E_IO, "dns", "%s has only addresses the "
		    "validator may not connect to (unspecified, multicast, "
		    "broadcast, link-local, or loopback)", host);
	return fail(v, CK_E_IO, "dns", "no A or AAAA records for %s", host);
}

/*
 * Connect to the first of t[0..n) that accepts, each given an equal share
 * of the time left. 0 and *fd, *which; or a "connection" failure listing
 * what each address did.
 */
static int
connect_any(struct vctx *v, const char *host, const struct target *t,
    size_t n, int *fd, size_t *which)
{
	char why[800];
	size_t i, l;

	why[0] = '\0';
	for (i = 0; i < n; i++) {
		if (dns_net_connect((const struct sockaddr *)&t[i].sa,
		    t[i].salen, SOCK_STREAM, share_of(v, n - i), fd) == 0) {
			*which = i;
			return 0;
		}
		l = strlen(why);
		if (l + 1 < sizeof(why))
			snprintf(why + l, sizeof(why) - l, "%s%s",
			    l > 0 ? "; " : "", ck_err_msg());
	}
	return fail(v, CK_E_IO, "connection", "could not connect to %s: %s",
	    host, why);
}

/* ------------------------------------------------------------- HTTP */

struct http_res {
	int status;
	char location[V_URL_MAX + 1];
	int has_location;
	unsigned char body[ACME_V_HTTP_MAX_BODY];
	size_t bodylen;
};

/* Find the end of the header block: offset after the blank line, or 0. */
static size_t
hdr_end(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (b[i] != '\n')
			continue;
		if (b[i + 1] == '\n')
			return i + 2;
		if (b[i + 1] == '\r' && i + 2 < n && b[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/*
 * Decode a chunked body in raw[0..n) into res->body. 1: complete; 0: more
 * needed; CK_E_PARSE; CK_E_TOOBIG.
 */
static int
chunked_decode(const unsigned char *raw, size_t n, struct http_res *res)
{
	size_t p = 0, sz, digits, e;

	res->bodylen = 0;
	for (;;) {
		sz = 0;
		digits = 0;
		for (e = p; e < n && raw[e] != '\n'; e++)
			;
		if (e >= n)
			return e - p > 1024 ? CK_E_PARSE : 0;
		for (; p < e; p++) {
			unsigned char c = raw[p];
			int d = c >= '0' && c <= '9' ? c - '0' :
			    c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

			if (d < 0)
				break;
			if (++digits > 8)
				return CK_E_PARSE;
			sz = sz * 16 + (size_t)d;
		}
		if (digits == 0)
			return CK_E_PARSE;
		/* chunk extensions and CR up to the LF are skipped */
		p = e + 1;
		if (sz == 0)
			return 1;	/* trailers are not needed */
		if (res->bodylen + sz > ACME_V_HTTP_MAX_BODY)
			return CK_E_TOOBIG;
		if (n - p < sz)
			return 0;
		memcpy(res->body + res->bodylen, raw + p, sz);
		res->bodylen += sz;
		p += sz;
		if (p < n && raw[p] == '\r')
			p++;
		if (p >= n)
			return 0;
		if (raw[p] != '\n')
			return CK_E_PARSE;
		p++;
	}
}

/*
 * Parse the status line and headers in b[0..n) (n the header block's
 * length). Sets res->status, location; *clen (-1: none), *chunked.
 */
static int
http_head_parse(const unsigned char *b, size_t n, struct http_res *res,
    long long *clen, int *chunked, char *err, size_t errsz)
{
	size_t p = 0, e, l, vs, ve, nl;
	long long v;

	*clen = -1;
	*chunked = 0;
	res->has_location = 0;
	if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ' ||
	    b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' ||
	    b[11] < '0' || b[11] > '9' || (n > 12 && b[12] != ' ' &&
	    b[12] != '\r' && b[12] != '\n')) {
		snprintf(err, errsz, "not an HTTP/1.x status line");
		return CK_E_PARSE;
	}
	res->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
	for (e = 0; e < n && b[e] != '\n'; e++)
		;
	p = e + 1;
	while (p < n) {
		for (e = p; e < n && b[e] != '\n'; e++)
			;
		l = e - p;
		if (l > 0 && b[p + l - 1] == '\r')
			l--;
		if (l == 0)
			break;		/* the blank line */
		if (wsp(b[p])) {
			snprintf(err, errsz, "folded header line");
			return CK_E_PARSE;
		}
		for (nl = 0; nl < l && b[p + nl] != ':'; nl++)
			;
		if (nl == l || nl == 0) {
			snprintf(err, errsz, "malformed header line");
			return CK_E_PARSE;
		}
		for (vs = p + nl + 1; vs < p + l && wsp(b[vs]); vs++)
			;
		for (ve = p + l; ve > vs && wsp(b[ve - 1]); ve--)
			;
		if (nl == 14 && strncasecmp((const char *)b + p,
		    "content-length", 14) == 0) {
			v = 0;
			if (ve == vs)
				goto badlen;
			for (size_t i = vs; i < ve; i++) {
				if (b[i] < '0' || b[i] > '9' || v > 1000000000)
					goto badlen;
				v = v * 10 + (b[i] - '0');
			}
			if (*clen >= 0 && *clen != v)
				goto badlen;
			*clen = v;
		} else if (nl == 17 && strncasecmp((const char *)b + p,
		    "transfer-encoding", 17) == 0) {
			if (ve - vs != 7 || strncasecmp((const char *)b + vs,
			    "chunked", 7) != 0) {
				snprintf(err, errsz, "transfer coding other "
				    "than chunked");
				return CK_E_PARSE;
			}
			*chunked = 1;
		} else if (nl == 8 && strncasecmp((const char *)b + p,
		    "location", 8) == 0) {
			if (res->has_location || ve - vs > V_URL_MAX) {
				snprintf(err, errsz, "two Location headers, or "
				    "one over %d bytes", V_URL_MAX);
				return CK_E_PARSE;
			}
			memcpy(res->location, b + vs, ve - vs);
			res->location[ve - vs] = '\0';
			res->has_location = 1;
		}
		p = e + 1;
	}
	return 0;
badlen:
	snprintf(err, errsz, "bad Content-Length");
	return CK_E_PARSE;
}

/*
 * GET path from the server on fd. 0 and *res (the body only for 2xx
 * and other non-redirect answers); CK_E_IO (the exchange failed: err
 * says how); CK_E_PARSE (not HTTP as we take it); CK_E_TOOBIG (body over
 * the limit).
 */
static int
http_exchange(struct vctx *v, int fd, const char *hosthdr, const char *path,
    struct http_res *res, char *err, size_t errsz)
{
	char req[V_URL_MAX + 512];
	unsigned char *raw = NULL;
	size_t n = 0, got, he = 0, skip = 0;
	long long clen = -1;
	int chunked = 0, r, n1xx = 0, eof = 0;

	memset(res, 0, sizeof(*res));
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: certkeep-acme-validator\r\nAccept: */*\r\n"
	    "Connection: close\r\n\r\n", path, hosthdr);
	if ((r = dns_net_send(fd, req, strlen(req), v->deadline)) != 0) {
		snprintf(err, errsz, "sending the request: %s", ck_err_msg());
		return CK_E_IO;
	}
	if ((raw = malloc(V_RAW_MAX)) == NULL)
		return CK_E_NOMEM;
	for (;;) {
		/* Have the header block (after any 1xx ones)? */
		if (he == 0 && (he = hdr_end(raw + skip, n - skip)) != 0) {
			he += skip;
			r = http_head_parse(raw + skip, he - skip, res, &clen,
			    &chunked, err, errsz);
			if (r != 0)
				goto out;
			if (res->status < 200) {	/* 1xx: another head */
				if (++n1xx > 5) {
					snprintf(err, errsz, "too many 1xx "
					    "responses");
					r = CK_E_PARSE;
					goto out;
				}
				skip = he;
				he = 0;
				continue;
			}
			if ((res->status >= 300 && res->status < 400) ||
			    res->status == 204) {
				r = 0;	/* the body does not matter */
				goto out;
			}
			if (clen > ACME_V_HTTP_MAX_BODY) {
				snprintf(err, errsz, "Content-Length %lld is "
				    "over %d bytes", clen,
				    ACME_V_HTTP_MAX_BODY);
				r = CK_E_TOOBIG;
				goto out;
			}
		}
		if (he == 0 && n - skip >= V_HDR_MAX) {
			snprintf(err, errsz, "headers over %d bytes",
			    V_HDR_MAX);
			r = CK_E_PARSE;
			goto out;
		}
		if (he != 0) {
			size_t bl = n - he;

			if (chunked) {
				r = chunked_decode(raw + he, bl, res);
				if (r == 1) {
					r = 0;
					goto out;
				}
				if (r == CK_E_TOOBIG)
					snprintf(err, errsz, "chunked body over "
					    "%d bytes", ACME_V_HTTP_MAX_BODY);
				else if (r != 0)
					snprintf(err, errsz, "malformed "
					    "chunked body");
				if (r != 0)
					goto out;
			} else {
				/* Bytes past Content-Length are not the
				 * body's: ignored. */
				if (clen >= 0 && bl > (size_t)clen)
					bl = (size_t)clen;
				if (bl > ACME_V_HTTP_MAX_BODY) {
					snprintf(err, errsz, "body over %d "
					    "bytes", ACME_V_HTTP_MAX_BODY);
					r = CK_E_TOOBIG;
					goto out;
				}
				if ((clen >= 0 && bl == (size_t)clen) || eof) {
					memcpy(res->body, raw + he, bl);
					res->bodylen = bl;
					r = 0;
					goto out;
				}
			}
		}
		if (eof) {
			snprintf(err, errsz, he == 0 ? "connection closed "
			    "before the end of the headers" : "connection "
			    "closed before the end of the body");
			r = CK_E_IO;
			goto out;
		}
		if (n == V_RAW_MAX) {	/* defensive: limits above hit first */
			snprintf(err, errsz, "response too long");
			r = CK_E_TOOBIG;
			goto out;
		}
		if ((r = dns_net_recv(fd, raw + n, V_RAW_MAX - n, v->deadline,
		    &got)) != 0) {
			snprintf(err, errsz, "reading the response: %s",
			    strcmp(ck_err_msg(), "no data in time") == 0 ?
			    "timed out" : ck_err_msg());
			r = CK_E_IO;
			goto out;
		}
		if (got == 0)
			eof = 1;
		n += got;
	}
out:
	free(raw);
	return r;
}

/* An IP literal host in a URL ("[v6]" or v4) as 4/16 bytes, else 0. */
static int
url_host_ip(const char *host, unsigned char ip[16])
{
	char b[64];
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(b)) {
		memcpy(b, host + 1, n - 2);
		b[n - 2] = '\0';
		return strchr(b, ':') != NULL ? ck_ip_parse(b, ip) : 0;
	}
	if (strchr(host, ':') != NULL)
		return 0;
	return ck_ip_parse(host, ip);
}

/*
 * Where a redirect goes: *host (a name, lower case, or "[v6]"/v4) and
 * *path. Only "http://HOST[:PORT]PATH" with PORT the configured one, or
 * an absolute path on the same host. 0, or -1 with why.
 */
static int
redirect_parse(struct vctx *v, const char *loc, char *host, size_t hostsz,
    char *path, size_t pathsz, char *why, size_t whysz)
{
	const char *a, *e, *pe, *colon = NULL;
	unsigned char ip[16];
	size_t hl;
	int iplen;

	for (const char *c = loc; *c != '\0'; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
			snprintf(why, whysz, "it holds a space or a control "
			    "or non-ASCII character");
			return -1;
		}
	if (loc[0] == '/' && loc[1] != '/') {
		pe = strchr(loc, '#');
		hl = pe != NULL ? (size_t)(pe - loc) : strlen(loc);
		if (hl >= pathsz)
			goto toolong;
		memcpy(path, loc, hl);
		path[hl] = '\0';
		return 0;	/* same host */
	}
	if (strncasecmp(loc, "http://", 7) != 0) {
		snprintf(why, whysz, "only http:// URLs are followed");
		return -1;
	}
	a = loc + 7;
	for (e = a; *e != '\0' && *e != '/' && *e != '?' && *e != '#'; e++)
		if (*e == '@') {
			snprintf(why, whysz, "user information in the URL");
			return -1;
		}
	/* HOST is a name, an IPv4 address or "[IPv6]"; then ":PORT". */
	if (*a == '[') {
		const char *rb = memchr(a, ']', (size_t)(e - a));

		if (rb == NULL || (rb + 1 < e && rb[1] != ':')) {
			snprintf(why, whysz, "bad host in the URL");
			return -1;
		}
		colon = rb + 1 < e ? rb + 1 : NULL;
	} else {
		colon = memchr(a, ':', (size_t)(e - a));
	}
	hl = (size_t)((colon != NULL ? colon : e) - a);
	if (hl == 0 || hl >= hostsz) {
		snprintf(why, whysz, "no usable host in the URL");
		return -1;
	}
	memcpy(host, a, hl);
	host[hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		host[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ?
		    host[i] + 32 : host[i]);
	if (colon != NULL && colon + 1 < e) {
		unsigned long port = 0;

		for (const char *c = colon + 1; c < e; c++) {
			if (*c < '0' || *c > '9' || port > 65535) {
				snprintf(why, whysz, "bad port in the URL");
				return -1;
			}
			port = port * 10 + (unsigned long)(*c - '0');
		}
		if (port != v->http_port) {
			snprintf(why, whysz, "port %lu is not the http-01 "
			    "port %u", port, v->http_port);
			return -1;
		}
	}
	if ((iplen = url_host_ip(host, ip)) != 0) {
		if (iplen != v->iplen || memcmp(ip, v->ip, (size_t)iplen) != 0) {
			snprintf(why, whysz, "redirects to IP addresses are "
			    "not followed");
			return -1;
		}
	} else if (host[0] == '[' || !ck_dns_name_valid(host) ||
	    strchr(host, '*') != NULL) {
		snprintf(why, whysz, "'%s' is not a valid host name", host);
		return -1;
	}
	pe = strchr(e, '#');
	hl = pe != NULL ? (size_t)(pe - e) : strlen(e);
	if (hl + 2 > pathsz)
		goto toolong;
	if (hl == 0 || e[0] != '/')
		path[0] = '/';
	memcpy(path + (hl == 0 || e[0] != '/'), e, hl);
	path[hl + (hl == 0 || e[0] != '/')] = '\0';
	return 0;
toolong:
	snprintf(why, whysz, "URL too long");
	return -1;
}

/* The Host header value for host (name, v4, "[v6]" or a bare v6). */
static void
host_header(const char *host, uint16_t port, char *out, size_t outsz)
{
	int v6 = strchr(host, ':') != NULL && host[0] != '[';

	if (port == 80)
		snprintf(out, outsz, "%s%s%s", v6 ? "[" : "", host,
		    v6 ? "]" : "");
	else
		snprintf(out, outsz, "%s%s%s:%u", v6 ? "[" : "", host,
		    v6 ? "]" : "", port);
}

static int
validate_http01(struct vctx *v, const char *idvalue, const char *token,
    const char *keyauth)
{
	struct target t[V_MAX_TARGETS];
	struct http_res *res = NULL;
	char host[300], path[V_URL_MAX + 1], hosthdr[320], url[V_URL_MAX + 400],
	    err[300], seen[120], why[200];
	size_t nt, which, bl;
	int fd = -1, r, hop;

	snprintf(host, sizeof(host), "%s", idvalue);
	snprintf(path, sizeof(path), "/.well-known/acme-challenge/%s", token);
	if ((res = malloc(sizeof(*res))) == NULL)
		return fail(v, CK_E_NOMEM, "serverInternal", "out of memory");
	for (hop = 0;; hop++) {
		host_header(host, v->http_port, hosthdr, sizeof(hosthdr));
		snprintf(url, sizeof(url), "http://%s%s", hosthdr, path);
		if ((r = resolve(v, host[0] == '[' ? idvalue : host,
		    v->http_port, t, &nt)) != 0)
			goto out;
		if ((r = connect_any(v, url, t, nt, &fd, &which)) != 0)
			goto out;
		r = http_exchange(v, fd, hosthdr, path, res, err, sizeof(err));
		close(fd);
		fd = -1;
		if (r == CK_E_NOMEM) {
			r = fail(v, r, "serverInternal", "out of memory");
			goto out;
		}
		if (r == CK_E_IO) {
			r = fail(v, CK_E_IO, "connection", "%s (address %s): "
			    "%s", url, t[which].text, err);
			goto out;
		}
		if (r != 0) {
			r = fail(v, CK_E_POLICY, "incorrectResponse", "%s "
			    "(address %s): %s", url, t[which].text, err);
			goto out;
		}
		if (res->status >= 300 && res->status < 400) {
			if (res->status != 301 && res->status != 302 &&
			    res->status != 303 && res->status != 307 &&
			    res->status != 308) {
				r = fail(v, CK_E_POLICY, "incorrectResponse",
				    "%s (address %s): status %d", url,
				    t[which].text, res->status);
				goto out;
			}
			if (!res->has_location) {
				r = fail(v, CK_E_POLICY, "incorrectResponse",
				    "%s (address %s): redirect (%d) without "
				    "a Location", url, t[which].text,
				    res->status);
				goto out;
			}
			if (hop >= ACME_V_MAX_REDIRECTS) {
				r = fail(v, CK_E_POLICY, "incorrectResponse",
				    "%s (address %s): more than %d redirects",
				    url, t[which].text, ACME_V_MAX_REDIRECTS);
				goto out;
			}
			{
				char nhost[sizeof(host)], npath[sizeof(path)];

				if (redirect_parse(v, res->location, nhost,
				    sizeof(nhost), npath, sizeof(npath), why,
				    sizeof(why)) != 0) {
					r = fail(v, CK_E_POLICY,
					    "incorrectResponse", "%s (address "
					    "%s): a redirect (%d) not "
					    "followed: %s", url, t[which].text,
					    res->status, why);
					goto out;
				}
				if (res->location[0] != '/')
					memcpy(host, nhost, sizeof(host));
				memcpy(path, npath, sizeof(path));
			}
			continue;
		}
		if (res->status == 404) {
			r = fail(v, CK_E_POLICY, "unauthorized", "%s (address "
			    "%s): 404, no key authorization is published",
			    url, t[which].text);
			goto out;
		}
		if (res->status != 200) {
			r = fail(v, CK_E_POLICY, "incorrectResponse", "%s "
			    "(address %s): status %d, not 200", url,
			    t[which].text, res->status);
			goto out;
		}
		break;
	}
	/* RFC 8555 8.3: trailing white space is not significant. */
	bl = res->bodylen;
	while (bl > 0 && (res->body[bl - 1] == ' ' ||
	    res->body[bl - 1] == '\t' || res->body[bl - 1] == '\r' ||
	    res->body[bl - 1] == '\n'))
		bl--;
	if (bl != strlen(keyauth) || memcmp(res->body, keyauth, bl) != 0) {
		/* The body is shown only if it looks like a key
		 * authorization: the validator must not become a way to
		 * read what other services answer. */
		if (looks_like_keyauth(res->body, bl)) {
			show(res->body, bl, 100, seen, sizeof(seen));
			r = fail(v, CK_E_POLICY, "incorrectResponse", "%s "
			    "(address %s): the body \"%s\" is not the key "
			    "authorization \"%s\"", url, t[which].text, seen,
			    keyauth);
		} else
			r = fail(v, CK_E_POLICY, "incorrectResponse", "%s "
			    "(address %s): the body (%zu bytes) is not a key "
			    "authorization", url, t[which].text, res->bodylen);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(res);
	return r;
}

/* ------------------------------------------------------------ dns-01 */

static int
validate_dns01(struct vctx *v, const char *idvalue, const char *keyauth)
{
	unsigned char dg[32], joined[DNS_DATA_MAX];
	char want[CK_JWK_THUMBPRINT_LEN + 1], name[300], seen[400], one[80];
	const unsigned char *s;
	size_t pos, sl, jl, i, o = 0;
	int r;

	if ((r = sha256(keyauth, dg)) != 0)
		return fail(v, r, "serverInternal", "%s", ck_err_msg());
	ck_jws_b64url_encode(dg, sizeof(dg), want);
	snprintf(name, sizeof(name), "_acme-challenge.%s", idvalue);
	if ((r = dns_query(&v->dns, name, DNS_T_TXT, v->deadline,
	    v->ans)) != 0)
		return fail(v, r == CK_E_NOMEM ? r : CK_E_IO, r == CK_E_NOMEM ?
		    "serverInternal" : "dns", "%s", ck_err_msg());
	if (v->ans->nrr == 0)
		return fail(v, CK_E_POLICY, "unauthorized", "no TXT record at "
		    "%s (%s)", name, v->ans->rcode == DNS_RCODE_NXDOMAIN ?
		    "NXDOMAIN" : "no data");
	seen[0] = '\0';
	for (i = 0; i < v->ans->nrr; i++) {
		pos = 0;
		jl = 0;
		while (dns_rr_txt_next(v->ans, i, &pos, &s, &sl)) {
			if (sl == strlen(want) && memcmp(s, want, sl) == 0)
				return 0;
			memcpy(joined + jl, s, sl);	/* fits: <= RDATA */
			jl += sl;
		}
		if (jl == strlen(want) && memcmp(joined, want, jl) == 0)
			return 0;
		show(joined, jl, 60, one, sizeof(one));
		if (o + 1 < sizeof(seen))
			o += (size_t)snprintf(seen + o, sizeof(seen) - o,
			    "%s\"%s\"", i > 0 ? ", " : "", one);
		if (o >= sizeof(seen))
			o = sizeof(seen) - 1;
	}
	return fail(v, CK_E_POLICY, "incorrectResponse", "%zu TXT record(s) "
	    "at %s, none is \"%s\": %s", v->ans->nrr, name, want, seen);
}

/* ------------------------------------------------------- tls-alpn-01 */

/* Move what OpenSSL wrote into the pair to the socket. */
static int
tls_flush(struct vctx *v, int fd, BIO *net)
{
	unsigned char buf[4096];
	int k;

	while (BIO_ctrl_pending(net) > 0) {
		if ((k = BIO_read(net, buf, sizeof(buf))) <= 0)
			break;
		if (dns_net_send(fd, buf, (size_t)k, v->deadline) != 0)
			return CK_E_IO;
	}
	return 0;
}

/*
 * The handshake over a BIO pair, so that every socket operation is ours
 * (deadline, no SIGPIPE). 0, or CK_E_IO with err.
 */
static int
tls_handshake(struct vctx *v, int fd, SSL *ssl, BIO *net, char *err,
    size_t errsz)
{
	unsigned char buf[4096];
	size_t got, room;
	unsigned long e;
	int k, se;

	for (;;) {
		ERR_clear_error();
		k = SSL_do_handshake(ssl);
		if (tls_flush(v, fd, net) != 0) {
			snprintf(err, errsz, "sending: %s", ck_err_msg());
			return CK_E_IO;
		}
		if (k == 1)
			return 0;
		se = SSL_get_error(ssl, k);
		if (se == SSL_ERROR_WANT_WRITE)
			continue;
		if (se != SSL_ERROR_WANT_READ) {
			e = ERR_peek_last_error();
			snprintf(err, errsz, "TLS handshake failed: %s",
			    e != 0 ? ERR_reason_error_string(e) != NULL ?
			    ERR_reason_error_string(e) : "error" :
			    "connection closed");
			ERR_clear_error();
			return CK_E_IO;
		}
		room = BIO_ctrl_get_write_guarantee(net);
		if (room == 0)		/* defensive: OpenSSL reads first */
			continue;
		if (dns_net_recv(fd, buf, room < sizeof(buf) ? room :
		    sizeof(buf), v->deadline, &got) != 0) {
			snprintf(err, errsz, "TLS handshake: %s",
			    strcmp(ck_err_msg(), "no data in time") == 0 ?
			    "timed out" : ck_err_msg());
			return CK_E_IO;
		}
		if (got == 0) {
			snprintf(err, errsz, "TLS handshake: connection "
			    "closed by the server");
			return CK_E_IO;
		}
		if (BIO_write(net, buf, (int)got) != (int)got) {
			snprintf(err, errsz, "TLS handshake: BIO_write");
			return CK_E_IO;
		}
	}
}

/* The certificate's one subjectAltName entry must be the identifier. */
static int
tls_check_san(X509 *cert, const char *idvalue, const unsigned char *ip,
    int iplen, char *err, size_t errsz)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	const ASN1_STRING *s;
	char seen[120];
	int crit = -1, ok = 0, n;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		snprintf(err, errsz, crit == -2 ? "more than one "
		    "subjectAltName extension" : "no (readable) "
		    "subjectAltName extension");
		return -1;
	}
	if ((n = sk_GENERAL_NAME_num(gens)) != 1) {
		snprintf(err, errsz, "%d subjectAltName entries, not exactly "
		    "one", n);
		goto out;
	}
	g = sk_GENERAL_NAME_value(gens, 0);
	if (iplen == 0 && g->type == GEN_DNS) {
		s = g->d.dNSName;
		if ((size_t)ASN1_STRING_length(s) == strlen(idvalue) &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(s),
		    idvalue, strlen(idvalue)) == 0 &&
		    memchr(ASN1_STRING_get0_data(s), '\0',
		    (size_t)ASN1_STRING_length(s)) == NULL)
			ok = 1;
		else {
			show(ASN1_STRING_get0_data(s),
			    (size_t)ASN1_STRING_length(s), 100, seen,
			    sizeof(seen));
			snprintf(err, errsz, "subjectAltName is DNS:%s, not "
			    "%s", seen, idvalue);
		}
	} else if (iplen != 0 && g->type == GEN_IPADD) {
		s = g->d.iPAddress;
		if (ASN1_STRING_length(s) == iplen &&
		    memcmp(ASN1_STRING_get0_data(s), ip, (size_t)iplen) == 0)
			ok = 1;
		else
			snprintf(err, errsz, "subjectAltName is another IP "
			    "address than %s", idvalue);
	} else {
		snprintf(err, errsz, "subjectAltName entry is not a %s",
		    iplen != 0 ? "iPAddress" : "dNSName");
	}
out:
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -1;
}

/* The acmeIdentifier extension: one, critical, OCTET STRING of dg. */
static int
tls_check_acmeid(X509 *cert, const unsigned char dg[32], char *err,
    size_t errsz)
{
	ASN1_OBJECT *obj;
	X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *val;
	unsigned char want[34];
	int idx, r = -1;

	if ((obj = OBJ_txt2obj(V_ACME_ID_OID, 1)) == NULL) {
		snprintf(err, errsz, "OpenSSL cannot make the acmeIdentifier "
		    "OID");
		return -1;
	}
	if ((idx = X509_get_ext_by_OBJ(cert, obj, -1)) < 0) {
		snprintf(err, errsz, "no acmeIdentifier extension (%s)",
		    V_ACME_ID_OID);
		goto out;
	}
	if (X509_get_ext_by_OBJ(cert, obj, idx) >= 0) {
		snprintf(err, errsz, "two acmeIdentifier extensions");
		goto out;
	}
	ext = X509_get_ext(cert, idx);
	if (!X509_EXTENSION_get_critical(ext)) {
		snprintf(err, errsz, "the acmeIdentifier extension is not "
		    "critical");
		goto out;
	}
	val = X509_EXTENSION_get_data(ext);
	want[0] = V_ASN1_OCTET_STRING;
	want[1] = 32;
	memcpy(want + 2, dg, 32);
	if (ASN1_STRING_length(val) != (int)sizeof(want) ||
	    CRYPTO_memcmp(ASN1_STRING_get0_data(val), want,
	    sizeof(want)) != 0) {
		snprintf(err, errsz, "the acmeIdentifier extension is not the "
		    "SHA-256 digest of the key authorization");
		goto out;
	}
	r = 0;
out:
	ASN1_OBJECT_free(obj);
	return r;
}

static int
validate_tlsalpn01(struct vctx *v, int isip, const char *idvalue,
    const char *keyauth)
{
	static const unsigned char alpn[] = "\x0a" ACME_V_ALPN;
	struct target t[V_MAX_TARGETS];
	unsigned char dg[32];
	const unsigned char *sel = NULL;
	char sni[80], err[300], where[400];
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	BIO *inner = NULL, *net = NULL;
	X509 *cert;
	size_t nt, which;
	unsigned int sellen = 0;
	int fd = -1, r;

	if ((r = sha256(keyauth, dg)) != 0)
		return fail(v, r, "serverInternal", "%s", ck_err_msg());
	if (isip) {
		if (acme_validate_reverse_name(idvalue, sni, sizeof(sni)) != 0)
			return fail(v, CK_E_INVAL, "rejectedIdentifier", "'%s' "
			    "is not an IP address", idvalue);
	} else {
		snprintf(sni, sizeof(sni), "%s", idvalue);
	}
	if ((r = resolve(v, idvalue, v->tls_port, t, &nt)) != 0)
		return r;
	if ((r = connect_any(v, idvalue, t, nt, &fd, &which)) != 0)
		return r;
	snprintf(where, sizeof(where), "%s (address %s, SNI %s)", idvalue,
	    t[which].text, sni);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    (ssl = SSL_new(ctx)) == NULL ||
	    !BIO_new_bio_pair(&inner, 0, &net, 0)) {
		r = fail(v, CK_E_INTERNAL, "serverInternal", "OpenSSL: cannot "
		    "set up TLS");
		goto out;
	}
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_bio(ssl, inner, inner);
	inner = NULL;
	/* SSL_set_alpn_protos() returns 0 on success. */
	if (!SSL_set_tlsext_host_name(ssl, sni) ||
	    SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) != 0) {
		r = fail(v, CK_E_INTERNAL, "serverInternal", "OpenSSL: cannot "
		    "set SNI or ALPN");
		goto out;
	}
	SSL_set_connect_state(ssl);
	if (tls_handshake(v, fd, ssl, net, err, sizeof(err)) != 0) {
		r = fail(v, CK_E_IO, "tls", "%s: %s", where, err);
		goto out;
	}
	SSL_get0_alpn_selected(ssl, &sel, &sellen);
	if (sellen != sizeof(alpn) - 2 ||
	    memcmp(sel, ACME_V_ALPN, sellen) != 0) {
		r = fail(v, CK_E_IO, "tls", "%s: the server did not negotiate "
		    "ALPN %s", where, ACME_V_ALPN);
		goto out;
	}
	if ((cert = SSL_get0_peer_certificate(ssl)) == NULL) {
		r = fail(v, CK_E_POLICY, "incorrectResponse", "%s: no "
		    "certificate", where);
		goto out;
	}
	if (tls_check_san(cert, idvalue, v->ip, v->iplen, err,
	    sizeof(err)) != 0 ||
	    tls_check_acmeid(cert, dg, err, sizeof(err)) != 0) {
		r = fail(v, CK_E_POLICY, "incorrectResponse", "%s: %s", where,
		    err);
		goto out;
	}
	/* A polite close_notify; what the server does with it is its own. */
	(void)SSL_shutdown(ssl);
	(void)tls_flush(v, fd, net);
	ERR_clear_error();
	r = 0;
out:
	BIO_free(inner);
	BIO_free(net);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return r;
}

int
acme_validate_reverse_name(const char *ip, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char a[16];
	size_t o = 0;
	int n;

	n = ck_ip_parse(ip, a);
	if (n == 4) {
		if (snprintf(out, outsz, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2],
		    a[1], a[0]) >= (int)outsz)
			return CK_E_INVAL;
		return 0;
	}
	if (n != 16 || outsz < 16 * 4 + sizeof("ip6.arpa"))
		return CK_E_INVAL;
	for (int i = 15; i >= 0; i--) {
		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", sizeof("ip6.arpa"));
	return 0;
}

/* ------------------------------------------------------------- entry */

int
acme_validate(const struct acme_vconf *cf, const char *chtype,
    const char *idtype, const char *idvalue, int wildcard, const char *token,
    const char *keyauth, const char **ptype, char *detail, size_t detail_len)
{
	struct vctx v;
	int isip, r;

	if ((r = vctx_init(&v, cf, ptype, detail, detail_len)) != 0)
		goto out;
	if (chtype == NULL || idtype == NULL || idvalue == NULL ||
	    token == NULL || keyauth == NULL) {
		r = fail(&v, CK_E_INVAL, "malformed", "missing argument");
		goto out;
	}
	if (strcmp(idtype, "dns") != 0 && strcmp(idtype, "ip") != 0) {
		r = fail(&v, CK_E_INVAL, "malformed", "unknown identifier "
		    "type");
		goto out;
	}
	isip = strcmp(idtype, "ip") == 0;
	if (isip) {
		if ((v.iplen = ck_ip_parse(idvalue, v.ip)) == 0) {
			r = fail(&v, CK_E_INVAL, "rejectedIdentifier", "'%.100s' "
			    "is not an IP address", idvalue);
			goto out;
		}
	} else if (strlen(idvalue) > 253 || !ck_dns_name_valid(idvalue) ||
	    strchr(idvalue, '*') != NULL) {
		r = fail(&v, CK_E_INVAL, "rejectedIdentifier", "'%.300s' is "
		    "not a DNS name", idvalue);
		goto out;
	}
	if (!b64url_chars(token, V_TOKEN_MAX)) {
		r = fail(&v, CK_E_INVAL, "malformed", "the token is not "
		    "1 to %d base64url characters", V_TOKEN_MAX);
		goto out;
	}
	for (const char *c = keyauth; *c != '\0'; c++)
		if (*c <= 0x20 || *c >= 0x7f) {
			r = fail(&v, CK_E_INVAL, "malformed", "the key "
			    "authorization holds a non-printable character");
			goto out;
		}
	if (keyauth[0] == '\0' || strlen(keyauth) > V_KEYAUTH_MAX) {
		r = fail(&v, CK_E_INVAL, "malformed", "empty or long key "
		    "authorization");
		goto out;
	}
	if (strcmp(chtype, "dns-01") == 0) {
		if (isip)
			r = fail(&v, CK_E_INVAL, "rejectedIdentifier", "dns-01 "
			    "cannot validate an IP address (RFC 8738)");
		else
			r = validate_dns01(&v, idvalue, keyauth);
	} else if (strcmp(chtype, "http-01") == 0 ||
	    strcmp(chtype, "tls-alpn-01") == 0) {
		/* Defensive: RFC 8555 7.1.3 offers only dns-01 for these. */
		if (wildcard)
			r = fail(&v, CK_E_INVAL, "rejectedIdentifier", "a "
			    "wildcard can only be validated with dns-01");
		else if (chtype[0] == 'h')
			r = validate_http01(&v, idvalue, token, keyauth);
		else
			r = validate_tlsalpn01(&v, isip, idvalue, keyauth);
	} else {
		r = fail(&v, CK_E_INVAL, "malformed", "unknown challenge type "
		    "'%.40s'", chtype);
	}
out:
	vctx_clear(&v);
	return r;
}

/* --------------------------------------------------------------- CAA */

/* label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT) ) */
static int
caa_label_ok(const unsigned char *s, size_t n)
{
	if (n == 0 || !alnum(s[0]) || !alnum(s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* issuer-domain-name = label *("." label) */
static int
caa_domain_ok(const unsigned char *s, size_t n)
{
	size_t st = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!caa_label_ok(s + st, i - st))
			return 0;
		st = i + 1;
	}
	return 1;
}

#define CAA_MAX_PARAMS 16

/*
 * Does the value of an issue/issuewild property (RFC 8659 4.2, RFC 8657)
 * let the CA issue? 1 yes; 0 no, with why when the property names this
 * CA but something else keeps it from fitting.
 */
static int
caa_issue_permits(const unsigned char *v, size_t n, const char *ident,
    const char *acct, const char *method, char *why, size_t whysz)
{
	struct { const unsigned char *t, *v; size_t tl, vl; }
	    par[CAA_MAX_PARAMS];
	size_t p = 0, s, np = 0, nacct = 0, nmeth = 0, i;
	const unsigned char *dom;
	size_t domlen;

	while (p < n && wsp(v[p]))
		p++;
	for (s = p; p < n && v[p] != ';' && !wsp(v[p]); p++)
		;
	dom = v + s;
	domlen = p - s;
	while (p < n && wsp(v[p]))
		p++;
	if (p < n) {
		if (v[p] != ';')
			return 0;	/* malformed */
		p++;
		while (p < n && wsp(v[p]))
			p++;
		while (p < n) {
			if (np == CAA_MAX_PARAMS)
				return 0;
			for (s = p; p < n && (alnum(v[p]) || v[p] == '-'); p++)
				;
			if (!caa_label_ok(v + s, p - s))
				return 0;
			par[np].t = v + s;
			par[np].tl = p - s;
			while (p < n && wsp(v[p]))
				p++;
			if (p >= n || v[p] != '=')
				return 0;
			p++;
			while (p < n && wsp(v[p]))
				p++;
			for (s = p; p < n && v[p] >= 0x21 && v[p] <= 0x7e &&
			    v[p] != ';'; p++)
				;
			par[np].v = v + s;
			par[np].vl = p - s;
			np++;
			while (p < n && wsp(v[p]))
				p++;
			if (p == n)
				break;
			if (v[p] != ';')
				return 0;
			p++;
			while (p < n && wsp(v[p]))
				p++;
			if (p == n)
				return 0;	/* ";" must lead to another */
		}
	}
	if (domlen == 0 || !caa_domain_ok(dom, domlen))
		return 0;
	if (domlen != strlen(ident) ||
	    strncasecmp((const char *)dom, ident, domlen) != 0)
		return 0;
	for (i = 0; i < np; i++) {
		if (par[i].tl == 10 && strncasecmp((const char *)par[i].t,
		    "accounturi", 10) == 0) {
			if (++nacct > 1) {
				snprintf(why, whysz, "accounturi given twice");
				return 0;
			}
			if (acct == NULL || par[i].vl != strlen(acct) ||
			    memcmp(par[i].v, acct, par[i].vl) != 0) {
				char seen[120];

				show(par[i].v, par[i].vl, 100, seen,
				    sizeof(seen));
				snprintf(why, whysz, "accounturi %s is not the "
				    "account's (%s)", seen,
				    acct != NULL ? acct : "none");
				return 0;
			}
		} else if (par[i].tl == 17 && strncasecmp((const char *)
		    par[i].t, "validationmethods", 17) == 0) {
			const unsigned char *m = par[i].v;
			size_t ml = par[i].vl, a = 0, b;
			int listed = 0;

			if (++nmeth > 1) {
				snprintf(why, whysz, "validationmethods given "
				    "twice");
				return 0;
			}
			for (b = 0; b <= ml; b++) {
				if (b < ml && m[b] != ',')
					continue;
				if (method != NULL && b - a == strlen(method) &&
				    strncasecmp((const char *)m + a, method,
				    b - a) == 0)
					listed = 1;
				a = b + 1;
			}
			if (!listed) {
				char seen[120];

				show(m, ml, 100, seen, sizeof(seen));
				snprintf(why, whysz, "validationmethods %s does "
				    "not list %s", seen,
				    method != NULL ? method : "the method");
				return 0;
			}
		}
		/* Other parameters are the CA's own; none is known here. */
	}
	return 1;
}

static int
caa_tag_is(const struct dns_caa *c, const char *tag)
{
	return strcasecmp(c->tag, tag) == 0;
}

/* Judge the relevant RRset, found at `at`. */
static int
caa_judge(struct vctx *v, const char *at, const char *dnsname, int wildcard,
    const char *acct, const char *method)
{
	const char *ident = v->cf->caa_identity, *prop;
	struct dns_caa c;
	char seen[400], one[120], why[300];
	size_t i, nprop = 0, o = 0;
	int havewild = 0;

	for (i = 0; i < v->ans->nrr; i++) {
		if (dns_rr_caa(v->ans, i, &c) != 0)
			continue;	/* defensive: only CAA records kept */
		if ((c.flags & 0x80) && !caa_tag_is(&c, "issue") &&
		    !caa_tag_is(&c, "issuewild") && !caa_tag_is(&c, "iodef"))
			return fail(v, CK_E_POLICY, "caa", "CAA at %s has the "
			    "critical property '%s', which is not understood: "
			    "no issuance for %s%s", at, c.tag,
			    wildcard ? "*." : "", dnsname);
		if (caa_tag_is(&c, "issuewild"))
			havewild = 1;
	}
	prop = wildcard && havewild ? "issuewild" : "issue";
	seen[0] = '\0';
	why[0] = '\0';
	for (i = 0; i < v->ans->nrr; i++) {
		if (dns_rr_caa(v->ans, i, &c) != 0 || !caa_tag_is(&c, prop))
			continue;
		nprop++;
		if (caa_issue_permits(c.value, c.vlen, ident, acct, method,
		    why, sizeof(why)))
			return 0;
		show(c.value, c.vlen, 100, one, sizeof(one));
		if (o + 1 < sizeof(seen))
			o += (size_t)snprintf(seen + o, sizeof(seen) - o,
			    "%s\"%s\"", nprop > 1 ? ", " : "", one);
		if (o >= sizeof(seen))
			o = sizeof(seen) - 1;
	}
	if (nprop == 0)
		return 0;	/* e.g. only iodef: issuance is not limited */
	return fail(v, CK_E_POLICY, "caa", "CAA at %s does not let %s issue "
	    "for %s%s: %s %s%s%s", at, ident, wildcard ? "*." : "", dnsname,
	    prop, seen, why[0] != '\0' ? "; " : "", why);
}

int
acme_caa_check(const struct acme_vconf *cf, const char *dnsname,
    int wildcard, const char *account_uri, const char *method,
    const char **ptype, char *detail, size_t dlen)
{
	struct vctx v;
	const char *at, *dot;
	int r;

	if (cf->caa_identity == NULL || cf->caa_identity[0] == '\0') {
		*ptype = NULL;
		if (dlen > 0)
			detail[0] = '\0';
		return 0;
	}
	if ((r = vctx_init(&v, cf, ptype, detail, dlen)) != 0)
		goto out;
	if (dnsname == NULL || strlen(dnsname) > 253 ||
	    !ck_dns_name_valid(dnsname) || strchr(dnsname, '*') != NULL) {
		r = fail(&v, CK_E_INVAL, "rejectedIdentifier", "'%.300s' is "
		    "not a DNS name", dnsname != NULL ? dnsname : "");
		goto out;
	}
	/* RFC 8659 3: climb until a non-empty RRset; the root is not asked. */
	for (at = dnsname;;) {
		if ((r = dns_query(&v.dns, at, DNS_T_CAA, v.deadline,
		    v.ans)) != 0) {
			r = fail(&v, r == CK_E_NOMEM ? r : CK_E_IO,
			    r == CK_E_NOMEM ? "serverInternal" : "dns", "CAA "
			    "lookup failed, so no issuance for %s: %s",
			    dnsname, ck_err_msg());
			goto out;
		}
		if (v.ans->nrr > 0) {
			r = caa_judge(&v, at, dnsname, wildcard, account_uri,
			    method);
			goto out;
		}
		if ((dot = strchr(at, '.')) == NULL || dot[1] == '\0')
			break;
		at = dot + 1;
	}
	r = 0;
out:
	vctx_clear(&v);
	return r;
}
