/*
 * dns.c - the stub DNS client of dns.h: query building, the response
 * parser, UDP/TCP transport with deadlines.
 */
#include "proto/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/err.h"

#define DNS_HDR 12
#define DNS_CLASS_IN 1
#define DNS_T_OPT 41
#define DNS_EDNS_SIZE 1232	/* the DNS flag day 2020 recommendation */
#define DNS_MSG_MAX 65535
#define DNS_MAX_ANS 256		/* answer-section records looked at */
#define DNS_MAX_HOPS 128	/* compression pointers in one name */
#define DNS_ROUNDS 2		/* times the server list is tried */

/* ------------------------------------------------------------ names */

const char *
dns_type_name(uint16_t type)
{
	switch (type) {
	case DNS_T_A:
		return "A";
	case DNS_T_CNAME:
		return "CNAME";
	case DNS_T_TXT:
		return "TXT";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_CAA:
		return "CAA";
	default:
		return "?";
	}
}

const char *
dns_rcode_name(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR",
	    "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED" };

	if (rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	return "RCODE?";
}

static unsigned char
lc(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/*
 * Text name to wire form (lower case). Only what this client asks for:
 * labels of letters, digits, '-' and '_', 1..63 bytes, an optional final
 * dot; the root alone is not asked for.
 */
static int
name_to_wire(const char *s, unsigned char out[DNS_NAME_WIRE_MAX],
    size_t *outlen)
{
	size_t o = 0, lab = 0, n = strlen(s);
	unsigned char c;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return ck_err_set(CK_E_INVAL, "bad DNS name '%.300s'", s);
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (i == lab || i - lab > 63)
				return ck_err_set(CK_E_INVAL, "bad DNS name "
				    "'%.300s': empty or long label", s);
			out[o++] = (unsigned char)(i - lab);
			for (size_t j = lab; j < i; j++)
				out[o++] = lc((unsigned char)s[j]);
			lab = i + 1;
			continue;
		}
		c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return ck_err_set(CK_E_INVAL, "bad DNS name '%.300s': "
			    "character 0x%02x", s, c);
	}
	out[o++] = 0;
	*outlen = o;
	return 0;
}

/* Wire name to text; bytes other than letters, digits, '-' and '_' as
 * \DDD (so that a '.' inside a label cannot pass for a separator). */
static void
name_to_text(const unsigned char *w, size_t wlen, char *out, size_t outsz)
{
	size_t p = 0, o = 0;
	int n;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if (wlen == 0 || w[0] == 0) {
		snprintf(out, outsz, ".");
		return;
	}
	while (p < wlen && w[p] != 0) {
		size_t l = w[p++];

		if (o > 0 && o + 1 < outsz)
			out[o++] = '.';
		for (size_t i = 0; i < l && p < wlen; i++, p++) {
			unsigned char c = w[p];

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_') {
				if (o + 1 < outsz)
					out[o++] = (char)c;
			} else if (o + 4 < outsz) {
				n = snprintf(out + o, outsz - o, "\\%03u", c);
				o += (size_t)n;
			}
		}
	}
	out[o < outsz ? o : outsz - 1] = '\0';
}

/*
 * Read the possibly compressed name at *pos of msg[0..len) into out (wire
 * form, lower case) and move *pos past it. Every pointer must point
 * strictly before the start of the run of labels it ends, so positions
 * only ever decrease and no loop is possible; the decoded name is at most
 * DNS_NAME_WIRE_MAX bytes.
 */
static int
name_read(const unsigned char *msg, size_t len, size_t *pos,
    unsigned char out[DNS_NAME_WIRE_MAX], size_t *outlen)
{
	size_t p = *pos, run = *pos, end = 0, o = 0, ptr;
	unsigned hops = 0;
	unsigned char c;

	for (;;) {
		if (p >= len)
			return ck_err_set(CK_E_PARSE, "name runs past the end "
			    "of the message");
		c = msg[p];
		if (c == 0) {
			if (hops == 0)
				end = p + 1;
			out[o++] = 0;
			break;
		}
		if ((c & 0xc0) == 0xc0) {
			if (p + 1 >= len)
				return ck_err_set(CK_E_PARSE, "compression "
				    "pointer cut short");
			ptr = ((size_t)(c & 0x3f) << 8) | msg[p + 1];
			if (hops == 0)
				end = p + 2;
			if (ptr >= run)
				return ck_err_set(CK_E_PARSE, "compression "
				    "pointer at %zu does not point backwards "
				    "(%zu)", p, ptr);
			if (++hops > DNS_MAX_HOPS)	/* defensive */
				return ck_err_set(CK_E_PARSE, "too many "
				    "compression pointers");
			p = run = ptr;
			continue;
		}
		if ((c & 0xc0) != 0)
			return ck_err_set(CK_E_PARSE, "label type 0x%02x not "
			    "supported", c & 0xc0);
		if (p + 1 + c > len)
			return ck_err_set(CK_E_PARSE, "label runs past the end "
			    "of the message");
		if (o + 1 + c + 1 > DNS_NAME_WIRE_MAX)
			return ck_err_set(CK_E_PARSE, "name longer than 255 "
			    "bytes");
		out[o++] = c;
		for (size_t i = 0; i < c; i++)
			out[o++] = lc(msg[p + 1 + i]);
		p += 1 + (size_t)c;
	}
	*pos = end;
	*outlen = o;
	return 0;
}

static int
name_eq(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* ----------------------------------------------------------- parser */

/* One answer-section record, by position in the message. */
struct ans_rec {
	size_t owner;		/* offset of its owner name */
	uint16_t type;
	uint16_t class;
	uint32_t ttl;
	size_t rdata;		/* offset of RDATA */
	uint16_t rdlen;
};

static int
rdata_check(uint16_t type, const unsigned char *d, size_t n)
{
	size_t p;

	switch (type) {
	case DNS_T_A:
		if (n != 4)
			return ck_err_set(CK_E_PARSE, "A record of %zu bytes",
			    n);
		return 0;
	case DNS_T_AAAA:
		if (n != 16)
			return ck_err_set(CK_E_PARSE, "AAAA record of %zu "
			    "bytes", n);
		return 0;
	case DNS_T_TXT:
		/* One or more <length><bytes>, filling the RDATA exactly. */
		if (n == 0)
			return ck_err_set(CK_E_PARSE, "empty TXT record");
		for (p = 0; p < n; p += 1 + (size_t)d[p])
			if (p + 1 + d[p] > n)
				return ck_err_set(CK_E_PARSE, "TXT string "
				    "runs past its record");
		return 0;
	case DNS_T_CAA:
		/* flags, tag length (1..15), tag (letters and digits),
		 * value (the rest; RFC 8659 4.1). */
		if (n < 2 || d[1] < 1 || d[1] > 15 || (size_t)2 + d[1] > n)
			return ck_err_set(CK_E_PARSE, "CAA record with a bad "
			    "tag length");
		for (p = 2; p < (size_t)2 + d[1]; p++)
			if (!((d[p] >= 'a' && d[p] <= 'z') ||
			    (d[p] >= 'A' && d[p] <= 'Z') ||
			    (d[p] >= '0' && d[p] <= '9')))
				return ck_err_set(CK_E_PARSE, "CAA tag with "
				    "character 0x%02x", d[p]);
		return 0;
	default:
		return 0;
	}
}

static int
parse_wire(const unsigned char *msg, size_t len, const unsigned char *qw,
    size_t qwlen, uint16_t qtype, uint16_t id, unsigned max_cname,
    struct dns_answer *out)
{
	struct ans_rec *recs = NULL;
	unsigned char nm[DNS_NAME_WIRE_MAX], cur[DNS_NAME_WIRE_MAX],
	    tgt[DNS_NAME_WIRE_MAX];
	size_t nmlen, curlen, tgtlen, pos, nrec = 0, i, found;
	uint16_t flags, qd, an;
	int r;

	memset(out, 0, sizeof(*out));
	if (len < DNS_HDR)
		return ck_err_set(CK_E_PARSE, "message of %zu bytes is "
		    "shorter than a header", len);
	flags = get16(msg + 2);
	if (get16(msg) != id)
		return ck_err_set(CK_E_NOTFOUND, "id %u is not the query's "
		    "(%u)", get16(msg), id);
	if (!(flags & 0x8000))
		return ck_err_set(CK_E_NOTFOUND, "a query, not a response");
	if ((flags >> 11 & 0xf) != 0)
		return ck_err_set(CK_E_NOTFOUND, "opcode %u, not QUERY",
		    flags >> 11 & 0xf);
	qd = get16(msg + 4);
	an = get16(msg + 6);
	if (qd != 1)
		return ck_err_set(CK_E_PARSE, "%u questions in the response, "
		    "not 1", qd);
	pos = DNS_HDR;
	if ((r = name_read(msg, len, &pos, nm, &nmlen)) != 0)
		return r;
	if (pos + 4 > len)
		return ck_err_set(CK_E_PARSE, "question cut short");
	if (!name_eq(nm, nmlen, qw, qwlen) || get16(msg + pos) != qtype ||
	    get16(msg + pos + 2) != DNS_CLASS_IN)
		return ck_err_set(CK_E_NOTFOUND, "the response is to another "
		    "question");
	pos += 4;
	out->rcode = flags & 0xf;
	out->truncated = (flags & 0x0200) != 0;
	memcpy(out->wname, qw, qwlen);
	out->wnamelen = qwlen;
	name_to_text(qw, qwlen, out->name, sizeof(out->name));
	/* Truncated: the records may be cut anywhere; errors: no records. */
	if (out->truncated || (out->rcode != DNS_RCODE_NOERROR &&
	    out->rcode != DNS_RCODE_NXDOMAIN))
		return 0;
	if (an > DNS_MAX_ANS)
		return ck_err_set(CK_E_TOOBIG, "%u answer records (at most "
		    "%d)", an, DNS_MAX_ANS);
	if (an > 0 && (recs = calloc(an, sizeof(*recs))) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");

	/* The answer section: form and bounds of every record. */
	for (i = 0; i < an; i++) {
		struct ans_rec *rc = &recs[nrec];

		rc->owner = pos;
		if ((r = name_read(msg, len, &pos, nm, &nmlen)) != 0)
			goto out;
		if (pos + 10 > len) {
			r = ck_err_set(CK_E_PARSE, "answer record %zu cut "
			    "short", i);
			goto out;
		}
		rc->type = get16(msg + pos);
		rc->class = get16(msg + pos + 2);
		rc->ttl = get32(msg + pos + 4);
		rc->rdlen = get16(msg + pos + 8);
		rc->rdata = pos + 10;
		if (rc->rdata + rc->rdlen > len) {
			r = ck_err_set(CK_E_PARSE, "answer record %zu: RDATA "
			    "runs past the end of the message", i);
			goto out;
		}
		pos = rc->rdata + rc->rdlen;
		if (rc->class != DNS_CLASS_IN)
			continue;	/* not ours to read */
		if (rc->type == DNS_T_CNAME) {
			size_t tp = rc->rdata;

			if ((r = name_read(msg, len, &tp, tgt, &tgtlen)) != 0)
				goto out;
			if (tp != rc->rdata + rc->rdlen) {
				r = ck_err_set(CK_E_PARSE, "CNAME RDATA is not "
				    "one name");
				goto out;
			}
		}
		nrec++;
	}

	/* Follow the CNAME chain from the question name. */
	memcpy(cur, qw, qwlen);
	curlen = qwlen;
	for (;;) {
		found = 0;
		for (i = 0; i < nrec; i++) {
			size_t op = recs[i].owner, tp = recs[i].rdata;

			if (recs[i].type != DNS_T_CNAME)
				continue;
			(void)name_read(msg, len, &op, nm, &nmlen);
			if (!name_eq(nm, nmlen, cur, curlen))
				continue;
			if (found++ > 0) {
				r = ck_err_set(CK_E_PARSE, "two CNAMEs for "
				    "one name");
				goto out;
			}
			(void)name_read(msg, len, &tp, tgt, &tgtlen);
		}
		if (found == 0)
			break;
		if (out->ncname >= max_cname) {
			r = ck_err_set(CK_E_PARSE, "CNAME chain longer than "
			    "%d links (or a loop)", DNS_MAX_CNAME);
			goto out;
		}
		out->ncname++;
		memcpy(cur, tgt, tgtlen);
		curlen = tgtlen;
	}
	memcpy(out->wname, cur, curlen);
	out->wnamelen = curlen;
	name_to_text(cur, curlen, out->name, sizeof(out->name));

	/* The records of qtype owned by the end of the chain. */
	for (i = 0; i < nrec; i++) {
		size_t op = recs[i].owner;
		struct dns_rr *rr;

		if (recs[i].type != qtype)
			continue;
		(void)name_read(msg, len, &op, nm, &nmlen);
		if (!name_eq(nm, nmlen, cur, curlen))
			continue;
		if ((r = rdata_check(qtype, msg + recs[i].rdata,
		    recs[i].rdlen)) != 0)
			goto out;
		if (out->nrr >= DNS_MAX_RR ||
		    out->datalen + recs[i].rdlen > DNS_DATA_MAX) {
			r = ck_err_set(CK_E_TOOBIG, "more than %d records or "
			    "%d bytes of %s records", DNS_MAX_RR, DNS_DATA_MAX,
			    dns_type_name(qtype));
			goto out;
		}
		rr = &out->rr[out->nrr++];
		rr->type = qtype;
		rr->ttl = recs[i].ttl;
		rr->off = (uint16_t)out->datalen;
		rr->len = recs[i].rdlen;
		memcpy(out->data + out->datalen, msg + recs[i].rdata,
		    recs[i].rdlen);
		out->datalen += recs[i].rdlen;
	}
	if (out->rcode == DNS_RCODE_NXDOMAIN && out->nrr > 0) {
		r = ck_err_set(CK_E_PARSE, "NXDOMAIN with records");
		goto out;
	}
	r = 0;
out:
	free(recs);
	if (r != 0) {
		int rcode = out->rcode;

		memset(out, 0, sizeof(*out));
		out->rcode = rcode;
	}
	return r;
}

int
dns_parse_response(const unsigned char *buf, size_t len, const char *qname,
    uint16_t qtype, uint16_t id, struct dns_answer *out)
{
	unsigned char qw[DNS_NAME_WIRE_MAX];
	size_t qwlen;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = name_to_wire(qname, qw, &qwlen)) != 0)
		return r;
	return parse_wire(buf, len, qw, qwlen, qtype, id, DNS_MAX_CNAME, out);
}

size_t
dns_rr_addr(const struct dns_answer *a, size_t i, unsigned char out[16])
{
	if (i >= a->nrr)
		return 0;
	if (a->rr[i].type == DNS_T_A && a->rr[i].len == 4) {
		memcpy(out, a->data + a->rr[i].off, 4);
		return 4;
	}
	if (a->rr[i].type == DNS_T_AAAA && a->rr[i].len == 16) {
		memcpy(out, a->data + a->rr[i].off, 16);
		return 16;
	}
	return 0;
}

int
dns_rr_txt_next(const struct dns_answer *a, size_t i, size_t *pos,
    const unsigned char **s, size_t *slen)
{
	const unsigned char *d;
	size_t n, l;

	if (i >= a->nrr || a->rr[i].type != DNS_T_TXT)
		return 0;
	d = a->data + a->rr[i].off;
	n = a->rr[i].len;
	if (*pos >= n)
		return 0;
	l = d[*pos];
	if (*pos + 1 + l > n)	/* defensive: checked when parsed */
		return 0;
	*s = d + *pos + 1;
	*slen = l;
	*pos += 1 + l;
	return 1;
}

int
dns_rr_caa(const struct dns_answer *a, size_t i, struct dns_caa *out)
{
	const unsigned char *d;
	size_t n, tl;

	memset(out, 0, sizeof(*out));
	if (i >= a->nrr || a->rr[i].type != DNS_T_CAA)
		return CK_E_INVAL;
	d = a->data + a->rr[i].off;
	n = a->rr[i].len;
	tl = n >= 2 ? d[1] : 0;
	if (tl < 1 || tl >= sizeof(out->tag) || 2 + tl > n)	/* defensive */
		return CK_E_INVAL;
	out->flags = d[0];
	memcpy(out->tag, d + 2, tl);
	out->tag[tl] = '\0';
	out->value = d + 2 + tl;
	out->vlen = n - 2 - tl;
	return 0;
}

/* ---------------------------------------------------------- sockets */

int64_t
dns_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
dns_addr_format(const struct sockaddr *sa, char *buf, size_t bufsz)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, bufsz, "%s:%u", a, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, bufsz, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, bufsz, "(family %d)", sa->sa_family);
	}
}

int
dns_net_wait(int fd, short events, int64_t deadline_ms)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		left = deadline_ms - dns_clock_ms();
		if (left <= 0)
			return ck_err_set(CK_E_IO, "timed out");
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ck_err_set(CK_E_IO, "poll: %s", strerror(errno));
		if (n > 0)
			return 0;	/* ready, or an error the I/O reports */
	}
}

int
dns_net_connect(const struct sockaddr *sa, socklen_t salen, int socktype,
    int64_t deadline_ms, int *fdp)
{
	char addr[80];
	socklen_t elen = sizeof(int);
	int fd, err = 0, r;

	*fdp = -1;
	dns_addr_format(sa, addr, sizeof(addr));
	fd = socket(sa->sa_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ck_err_set(CK_E_IO, "%s: socket: %s", addr,
		    strerror(errno));
	if (connect(fd, sa, salen) != 0) {
		if (errno != EINPROGRESS) {
			err = errno;
			goto fail;
		}
		if ((r = dns_net_wait(fd, POLLOUT, deadline_ms)) != 0) {
			close(fd);
			return ck_err_set(r, "%s: connection timed out", addr);
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
			err = errno;
		if (err != 0)
			goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return ck_err_set(CK_E_IO, "%s: %s", addr, strerror(err));
}

int
dns_net_send(int fd, const void *buf, size_t n, int64_t deadline_ms)
{
	const unsigned char *p = buf;
	ssize_t k;
	int r;

	while (n > 0) {
		k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((r = dns_net_wait(fd, POLLOUT, deadline_ms)) != 0)
				return ck_err_set(r, "sending timed out");
			continue;
		}
		if (k < 0)
			return ck_err_set(CK_E_IO, "send: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int
dns_net_recv(int fd, void *buf, size_t cap, int64_t deadline_ms, size_t *got)
{
	ssize_t k;
	int r;

	*got = 0;
	for (;;) {
		k = recv(fd, buf, cap, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((r = dns_net_wait(fd, POLLIN, deadline_ms)) != 0)
				return ck_err_set(r, "no data in time");
			continue;
		}
		if (k < 0)
			return ck_err_set(CK_E_IO, "%s", strerror(errno));
		*got = (size_t)k;
		return 0;
	}
}

/* ----------------------------------------------------------- client */

static int
server_parse(const char *s, size_t n, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	char host[64], port[8];
	const char *colon;
	size_t hl;
	unsigned long pv = 53;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (rb == NULL)
			return -1;
		hl = (size_t)(rb - s) - 1;
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		colon = rb + 1 < s + n ? rb + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return -1;
	} else {
		colon = memchr(s, ':', n);
		hl = colon != NULL ? (size_t)(colon - s) : n;
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (colon != NULL) {
		size_t pl = (size_t)(s + n - colon - 1);

		if (pl == 0 || pl >= sizeof(port))
			return -1;
		memcpy(port, colon + 1, pl);
		port[pl] = '\0';
		for (size_t i = 0; i < pl; i++)
			if (port[i] < '0' || port[i] > '9')
				return -1;
		pv = strtoul(port, &end, 10);
		if (*end != '\0' || pv == 0 || pv > 65535)
			return -1;
	}
	if (s[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)pv);
		*sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)pv);
		*sslen = sizeof(*s4);
	}
	return 0;
}

int
dns_client_init(struct dns_client *c, const char *servers,
    int try_timeout_ms)
{
	const char *p = servers != NULL ? servers : "", *e;
	size_t n;

	memset(c, 0, sizeof(*c));
	c->try_timeout_ms = try_timeout_ms > 0 ? try_timeout_ms :
	    DNS_TRY_TIMEOUT_MS;
	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		for (e = p; *e != '\0' && *e != ',' && *e != ' ' &&
		    *e != '\t'; e++)
			;
		n = (size_t)(e - p);
		if (c->nsrv == DNS_MAX_SERVERS)
			return ck_err_set(CK_E_PARSE, "more than %d DNS "
			    "servers", DNS_MAX_SERVERS);
		if (server_parse(p, n, &c->srv[c->nsrv],
		    &c->srvlen[c->nsrv]) != 0)
			return ck_err_set(CK_E_PARSE, "DNS server '%.*s': not "
			    "ADDR:PORT or [ADDR]:PORT with an IP address",
			    (int)(n > 100 ? 100 : n), p);
		c->nsrv++;
		p = e;
	}
	if (c->nsrv == 0)
		return ck_err_set(CK_E_PARSE, "no DNS server configured");
	return 0;
}

/* The query: header (RD), one question, an EDNS0 OPT record. */
static size_t
query_build(unsigned char *q, uint16_t id, const unsigned char *qw,
    size_t qwlen, uint16_t qtype)
{
	size_t o = 0;

	q[o++] = (unsigned char)(id >> 8);
	q[o++] = (unsigned char)id;
	q[o++] = 0x01;		/* RD */
	q[o++] = 0x00;
	q[o++] = 0; q[o++] = 1;	/* QDCOUNT */
	q[o++] = 0; q[o++] = 0;	/* ANCOUNT */
	q[o++] = 0; q[o++] = 0;	/* NSCOUNT */
	q[o++] = 0; q[o++] = 1;	/* ARCOUNT: the OPT record */
	memcpy(q + o, qw, qwlen);
	o += qwlen;
	q[o++] = (unsigned char)(qtype >> 8);
	q[o++] = (unsigned char)qtype;
	q[o++] = 0; q[o++] = DNS_CLASS_IN;
	q[o++] = 0;		/* OPT: root owner */
	q[o++] = 0; q[o++] = DNS_T_OPT;
	q[o++] = DNS_EDNS_SIZE >> 8; q[o++] = DNS_EDNS_SIZE & 0xff;
	q[o++] = 0; q[o++] = 0; q[o++] = 0; q[o++] = 0;	/* ext. RCODE, flags */
	q[o++] = 0; q[o++] = 0;	/* RDLEN */
	return o;
}

static int
random_id(uint16_t *id)
{
	unsigned char b[2];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return ck_err_set(CK_E_CRYPTO, "no random numbers");
	*id = (uint16_t)(b[0] << 8 | b[1]);
	return 0;
}

/*
 * One try over UDP: 0 and *out for an answer to our question (whatever
 * its RCODE or TC); otherwise an error with the reason in ck_err_msg().
 * Datagrams that are not an answer to the question are ignored.
 */
static int
try_udp(const struct sockaddr *sa, socklen_t salen, const unsigned char *qw,
    size_t qwlen, uint16_t qtype, unsigned max_cname, int64_t until,
    unsigned char *buf, struct dns_answer *out)
{
	unsigned char q[DNS_HDR + DNS_NAME_WIRE_MAX + 4 + 11];
	size_t qlen, got;
	char lasterr[256] = "";
	uint16_t id = 0;
	int fd = -1, r;
	ssize_t k;

	if ((r = random_id(&id)) != 0)
		return r;
	qlen = query_build(q, id, qw, qwlen, qtype);
	if ((r = dns_net_connect(sa, salen, SOCK_DGRAM, until, &fd)) != 0)
		return r;
	if ((r = dns_net_send(fd, q, qlen, until)) != 0)
		goto out;
	for (;;) {
		if ((r = dns_net_wait(fd, POLLIN, until)) != 0) {
			r = lasterr[0] != '\0' ? ck_err_set(CK_E_IO, "no "
			    "usable answer in time (ignored: %s)", lasterr) :
			    ck_err_set(CK_E_IO, "no answer in time");
			goto out;
		}
		k = recv(fd, buf, DNS_MSG_MAX, MSG_TRUNC);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0) {
			r = ck_err_set(CK_E_IO, "%s", strerror(errno));
			goto out;
		}
		got = (size_t)k;
		if (got > DNS_MSG_MAX)	/* cannot happen for UDP; defensive */
			continue;
		r = parse_wire(buf, got, qw, qwlen, qtype, id, max_cname, out);
		if (r == 0 || r == CK_E_NOMEM)
			goto out;
		/* Spoofed or garbled: wait on for the real answer. */
		snprintf(lasterr, sizeof(lasterr), "%s", ck_err_msg());
	}
out:
	close(fd);
	return r;
}

/* One try over TCP (RFC 7766): two-byte length, then the message. */
static int
try_tcp(const struct sockaddr *sa, socklen_t salen, const unsigned char *qw,
    size_t qwlen, uint16_t qtype, unsigned max_cname, int64_t until,
    unsigned char *buf, struct dns_answer *out)
{
	unsigned char q[2 + DNS_HDR + DNS_NAME_WIRE_MAX + 4 + 11];
	size_t qlen, have = 0, need = 2, got;
	uint16_t id = 0;
	int fd = -1, r;

	if ((r = random_id(&id)) != 0)
		return r;
	qlen = query_build(q + 2, id, qw, qwlen, qtype);
	q[0] = (unsigned char)(qlen >> 8);
	q[1] = (unsigned char)qlen;
	if ((r = dns_net_connect(sa, salen, SOCK_STREAM, until, &fd)) != 0)
		return r;
	if ((r = dns_net_send(fd, q, qlen + 2, until)) != 0)
		goto out;
	/* buf holds DNS_MSG_MAX bytes: the length, then the message. */
	while (have < need) {
		if ((r = dns_net_recv(fd, buf + have, need - have, until,
		    &got)) != 0)
			goto out;
		if (got == 0) {
			r = ck_err_set(CK_E_IO, "TCP connection closed after "
			    "%zu bytes", have);
			goto out;
		}
		have += got;
		if (have == 2 && need == 2) {
			need = 2 + (size_t)get16(buf);
			if (need > DNS_MSG_MAX) {	/* cannot: 2 + 65535 */
				r = ck_err_set(CK_E_TOOBIG, "TCP answer too "
				    "long");
				goto out;
			}
			have = 0;
			need -= 2;
		}
	}
	r = parse_wire(buf, need, qw, qwlen, qtype, id, max_cname, out);
	if (r == 0 && out->truncated)
		r = ck_err_set(CK_E_PARSE, "TC set on a TCP answer");
out:
	close(fd);
	return r;
}

/* Append "SERVER: reason" to why. */
static void
why_add(char *why, size_t whysz, const struct sockaddr *sa, const char *msg)
{
	char addr[80], one[400];
	size_t l = strlen(why);

	dns_addr_format(sa, addr, sizeof(addr));
	snprintf(one, sizeof(one), "%s: %s", addr, msg);
	if (strstr(why, one) != NULL)	/* the same again, next round */
		return;
	if (l + 1 < whysz)
		snprintf(why + l, whysz - l, "%s%s", l > 0 ? "; " : "", one);
}

/* One question asked of the servers in turn; no CNAME re-query here. */
static int
query_once(const struct dns_client *c, const unsigned char *qw, size_t qwlen,
    uint16_t qtype, unsigned max_cname, int64_t deadline_ms,
    unsigned char *buf, struct dns_answer *out, char *why, size_t whysz)
{
	const struct sockaddr *sa;
	int64_t until, now;
	size_t round, i;
	int r;

	for (round = 0; round < DNS_ROUNDS; round++) {
		for (i = 0; i < c->nsrv; i++) {
			now = dns_clock_ms();
			if (now >= deadline_ms)
				return CK_E_IO;
			until = now + c->try_timeout_ms;
			if (until > deadline_ms)
				until = deadline_ms;
			sa = (const struct sockaddr *)&c->srv[i];
			r = try_udp(sa, c->srvlen[i], qw, qwlen, qtype,
			    max_cname, until, buf, out);
			if (r == 0 && out->truncated) {
				now = dns_clock_ms();
				until = now + c->try_timeout_ms;
				if (until > deadline_ms)
					until = deadline_ms;
				r = try_tcp(sa, c->srvlen[i], qw, qwlen, qtype,
				    max_cname, until, buf, out);
				if (r != 0) {
					char m[300];

					snprintf(m, sizeof(m), "truncated over "
					    "UDP; TCP: %s", ck_err_msg());
					why_add(why, whysz, sa, m);
					continue;
				}
			}
			if (r == CK_E_NOMEM || r == CK_E_CRYPTO)
				return r;
			if (r != 0) {
				why_add(why, whysz, sa, ck_err_msg());
				continue;
			}
			if (out->rcode == DNS_RCODE_NOERROR ||
			    out->rcode == DNS_RCODE_NXDOMAIN)
				return 0;
			why_add(why, whysz, sa, dns_rcode_name(out->rcode));
		}
	}
	return CK_E_IO;
}

int
dns_query(const struct dns_client *c, const char *name, uint16_t qtype,
    int64_t deadline_ms, struct dns_answer *out)
{
	unsigned char qw[DNS_NAME_WIRE_MAX], *buf = NULL;
	char why[1024];
	size_t qwlen;
	unsigned links = 0;
	int r;

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (c->nsrv == 0)
		return ck_err_set(CK_E_INVAL, "no DNS server configured");
	if ((r = name_to_wire(name, qw, &qwlen)) != 0)
		return r;
	if ((buf = malloc(DNS_MSG_MAX)) == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	for (;;) {
		r = query_once(c, qw, qwlen, qtype, DNS_MAX_CNAME - links,
		    deadline_ms, buf, out, why, sizeof(why));
		if (r != 0)
			break;
		links += out->ncname;
		out->ncname = links;
		/* The chain ended on a name the answer gave nothing for:
		 * the resolver did not follow it (another zone); ask. */
		if (out->ncname == 0 || out->nrr > 0 ||
		    out->rcode != DNS_RCODE_NOERROR ||
		    name_eq(out->wname, out->wnamelen, qw, qwlen))
			break;
		if (links >= DNS_MAX_CNAME) {
			r = ck_err_set(CK_E_IO, "DNS %s query for %s: CNAME "
			    "chain longer than %d links", dns_type_name(qtype),
			    name, DNS_MAX_CNAME);
			goto out;
		}
		memcpy(qw, out->wname, out->wnamelen);
		qwlen = out->wnamelen;
	}
	if (r == CK_E_IO)
		r = ck_err_set(CK_E_IO, "DNS %s query for %s failed: %s",
		    dns_type_name(qtype), name, why[0] != '\0' ? why :
		    "no time left");
	else if (r != 0)
		r = ck_err_set(r, "DNS %s query for %s: %s",
		    dns_type_name(qtype), name, ck_err_msg());
out:
	if (r != 0) {
		memset(out, 0, sizeof(*out));
		out->rcode = -1;
	}
	free(buf);
	return r;
}
