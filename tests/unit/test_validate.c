/*
 * test_validate.c - src/proto/dns and src/proto/acme_validate against
 * servers this file runs in threads on 127.0.0.1 (ephemeral ports):
 *
 *  - DNS responders (UDP and TCP on one port) answering from a small
 *    zone table, in four modes: normal, TC on every UDP answer (forcing
 *    TCP), SERVFAIL, and silent (for time-outs);
 *  - an HTTP server whose answer depends on the token in the path (right
 *    and wrong key authorization, 404, oversized bodies, chunked, slow,
 *    redirects of every kind);
 *  - a TLS server with ALPN acme-tls/1 serving a certificate chosen by
 *    the test (right, wrong digest, non-critical extension, two SANs,
 *    another name, an IP SAN, no ALPN at all).
 *
 * The DNS messages the parser tests feed in, and the responders' answers,
 * are built by this file's own encoder, not by the code under test. Each
 * validation outcome is asserted together with its problem type.
 *
 * With CK_DNS_CORPUS_DIR set, the program instead writes the crafted
 * responses as the fuzz seed corpus into that directory:
 *   CK_DNS_CORPUS_DIR=tests/fuzz/corpus/dns build/tests/unit/test_validate
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "proto/acme_validate.h"
#include "proto/dns.h"

#define THUMB "n0tARealThumbprintButTheRightLength-0123456"
#define CA_ID "ca.example"
#define ACCT1 "https://ca.example/acme/acct/1"

/* ------------------------------------------------ the test's own DNS */

struct msg {
	unsigned char b[4096];
	size_t n;
};

static void
m_u8(struct msg *m, unsigned v)
{
	assert_true(m->n < sizeof(m->b));
	m->b[m->n++] = (unsigned char)v;
}

static void
m_u16(struct msg *m, unsigned v)
{
	m_u8(m, v >> 8 & 0xff);
	m_u8(m, v & 0xff);
}

static void
m_u32(struct msg *m, unsigned long v)
{
	m_u16(m, (unsigned)(v >> 16 & 0xffff));
	m_u16(m, (unsigned)(v & 0xffff));
}

static void
m_bytes(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof(m->b));
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

/* An uncompressed name ("" or "." is the root). */
static void
m_name(struct msg *m, const char *s)
{
	const char *dot;

	while (*s != '\0' && strcmp(s, ".") != 0) {
		dot = strchr(s, '.');
		size_t l = dot != NULL ? (size_t)(dot - s) : strlen(s);

		m_u8(m, (unsigned)l);
		m_bytes(m, s, l);
		s += l + (dot != NULL);
	}
	m_u8(m, 0);
}

static void
m_ptr(struct msg *m, unsigned off)
{
	m_u16(m, 0xc000 | off);
}

static void
m_hdr(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
	m->n = 0;
	m_u16(m, id);
	m_u16(m, flags);
	m_u16(m, qd);
	m_u16(m, an);
	m_u16(m, 0);
	m_u16(m, 0);
}

/* Start a record: owner as a pointer (off) or a name; type, class IN,
 * TTL 300, and the RDLENGTH that m_rr_end() fills in. */
static size_t
m_rr(struct msg *m, int ptr, const char *owner, unsigned type)
{
	size_t at;

	if (ptr >= 0)
		m_ptr(m, (unsigned)ptr);
	else
		m_name(m, owner);
	m_u16(m, type);
	m_u16(m, 1);
	m_u32(m, 300);
	at = m->n;
	m_u16(m, 0);
	return at;
}

static void
m_rr_end(struct msg *m, size_t at)
{
	size_t l = m->n - at - 2;

	m->b[at] = (unsigned char)(l >> 8);
	m->b[at + 1] = (unsigned char)l;
}

/* A CAA record owned by the question name. */
static void
m_caa(struct msg *m, unsigned flags, const char *tag, const char *value)
{
	size_t at = m_rr(m, 12, NULL, DNS_T_CAA);

	m_u8(m, flags);
	m_u8(m, (unsigned)strlen(tag));
	m_bytes(m, tag, strlen(tag));
	m_bytes(m, value, strlen(value));
	m_rr_end(m, at);
}

#define QFLAGS_OK 0x8180	/* QR RD RA, NOERROR */

/* A response header and question (name at offset 12). */
static void
m_start(struct msg *m, unsigned id, unsigned flags, const char *q,
    unsigned qtype, unsigned an)
{
	m_hdr(m, id, flags, 1, an);
	m_name(m, q);
	m_u16(m, qtype);
	m_u16(m, 1);
}

/* ---------------------------------------------------- crafted replies */

enum sample {
	S_A,		/* www.example.com A, owner compressed */
	S_TXT,		/* two TXT records, one of three strings */
	S_CAA,		/* three CAA records */
	S_CNAME,	/* alias -> mid -> www, compressed targets, A */
	S_AAAA,
	S_NXDOMAIN,
	S_TC,
	S_SERVFAIL,
	S_OTHER_OWNER,	/* an A record for another name only */
	S_CHAIN9,	/* nine CNAME links */
	S_LOOP_SELF,	/* a pointer pointing at itself */
	S_LOOP_FWD,	/* a pointer pointing forwards */
	S_LOOP_TWO,	/* pointers that would chase each other */
	S_BAD_A_LEN,
	S_BAD_CAA,	/* tag length 0 */
	S_BAD_LABEL,	/* label type 0x40 */
	S_LONG_NAME,	/* a name over 255 bytes through pointers */
	S_CUT,		/* an A answer cut in its RDATA */
	S__MAX
};

static const char *const sample_names[S__MAX] = {
	"a-compressed", "txt-multi", "caa", "cname-chain", "aaaa",
	"nxdomain", "truncated-tc", "servfail", "other-owner", "cname-9",
	"ptr-self", "ptr-forward", "ptr-two", "bad-a-len", "bad-caa",
	"bad-label", "long-name", "cut-rdata"
};

#define SID 0x4b1d

static void
sample(enum sample s, struct msg *m)
{
	size_t at;
	unsigned i;

	switch (s) {
	case S_A:
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 2);
		at = m_rr(m, 12, NULL, DNS_T_A);
		m_bytes(m, "\xc0\x00\x02\x01", 4);
		m_rr_end(m, at);
		at = m_rr(m, 12, NULL, DNS_T_A);
		m_bytes(m, "\x7f\x00\x00\x01", 4);
		m_rr_end(m, at);
		break;
	case S_TXT:
		m_start(m, SID, QFLAGS_OK, "_acme-challenge.example.com",
		    DNS_T_TXT, 2);
		at = m_rr(m, 12, NULL, DNS_T_TXT);
		m_bytes(m, "\x05hello", 6);
		m_rr_end(m, at);
		at = m_rr(m, 12, NULL, DNS_T_TXT);
		m_bytes(m, "\x03one\x00\x05three", 11);
		m_rr_end(m, at);
		break;
	case S_CAA:
		m_start(m, SID, QFLAGS_OK, "example.com", DNS_T_CAA, 3);
		m_caa(m, 0, "issue", "ca.example; accounturi=https://ca."
		    "example/acme/acct/1");
		m_caa(m, 128, "tbs", "x");
		m_caa(m, 0, "iodef", "mailto:a@example.com");
		break;
	case S_CNAME: {
		size_t mid;

		m_start(m, SID, QFLAGS_OK, "alias.example.com", DNS_T_A, 4);
		/* alias CNAME mid.example.com (suffix compressed) */
		at = m_rr(m, 12, NULL, DNS_T_CNAME);
		mid = m->n;
		m_u8(m, 3);
		m_bytes(m, "mid", 3);
		m_ptr(m, 12 + 6);	/* "example.com" of the question */
		m_rr_end(m, at);
		/* an unrelated record in between */
		at = m_rr(m, -1, "elsewhere.example.org", DNS_T_A);
		m_bytes(m, "\x0a\x00\x00\x09", 4);
		m_rr_end(m, at);
		/* mid CNAME www.example.com */
		at = m_rr(m, (int)mid, NULL, DNS_T_CNAME);
		m_u8(m, 3);
		m_bytes(m, "WWW", 3);	/* case must not matter */
		m_ptr(m, 12 + 6);
		m_rr_end(m, at);
		at = m_rr(m, -1, "www.example.com", DNS_T_A);
		m_bytes(m, "\xc6\x33\x64\x07", 4);
		m_rr_end(m, at);
		break;
	}
	case S_AAAA:
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_AAAA, 1);
		at = m_rr(m, 12, NULL, DNS_T_AAAA);
		m_bytes(m, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
		m_rr_end(m, at);
		break;
	case S_NXDOMAIN:
		m_start(m, SID, 0x8183, "nope.example.com", DNS_T_A, 0);
		break;
	case S_TC:
		m_start(m, SID, QFLAGS_OK | 0x0200, "_acme-challenge.example."
		    "com", DNS_T_TXT, 3);
		at = m_rr(m, 12, NULL, DNS_T_TXT);
		m_bytes(m, "\x05hello", 6);
		m_rr_end(m, at);
		m->n -= 3;	/* cut, as a truncated answer may be */
		break;
	case S_SERVFAIL:
		m_start(m, SID, 0x8182, "example.com", DNS_T_CAA, 0);
		break;
	case S_OTHER_OWNER:
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 1);
		at = m_rr(m, -1, "evil.example.net", DNS_T_A);
		m_bytes(m, "\x01\x02\x03\x04", 4);
		m_rr_end(m, at);
		break;
	case S_CHAIN9: {
		char a[32], b[32];

		m_start(m, SID, QFLAGS_OK, "c0.example.com", DNS_T_A, 10);
		for (i = 0; i < 9; i++) {
			snprintf(a, sizeof(a), "c%u.example.com", i);
			snprintf(b, sizeof(b), "c%u.example.com", i + 1);
			at = m_rr(m, -1, a, DNS_T_CNAME);
			m_name(m, b);
			m_rr_end(m, at);
		}
		at = m_rr(m, -1, "c9.example.com", DNS_T_A);
		m_bytes(m, "\x01\x02\x03\x04", 4);
		m_rr_end(m, at);
		break;
	}
	case S_LOOP_SELF:
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 1);
		at = m->n;
		m_ptr(m, (unsigned)at);	/* owner points at itself */
		m_u16(m, DNS_T_A);
		m_u16(m, 1);
		m_u32(m, 300);
		m_u16(m, 4);
		m_bytes(m, "\x01\x02\x03\x04", 4);
		break;
	case S_LOOP_FWD:
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 1);
		at = m->n;
		m_ptr(m, (unsigned)at + 2);
		m_u16(m, DNS_T_A);
		m_u16(m, 1);
		m_u32(m, 300);
		m_u16(m, 4);
		m_bytes(m, "\x01\x02\x03\x04", 4);
		break;
	case S_LOOP_TWO:
		/* At A: label "x" then a pointer to A: backwards, but the
		 * name it reads leads back to the same pointer. */
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 1);
		at = m->n;
		m_u8(m, 1);
		m_bytes(m, "x", 1);
		m_ptr(m, (unsigned)at);
		m_u16(m, DNS_T_A);
		m_u16(m, 1);
		m_u32(m, 300);
		m_u16(m, 4);
		m_bytes(m, "\x01\x02\x03\x04", 4);
		break;
	case S_BAD_A_LEN:
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 1);
		at = m_rr(m, 12, NULL, DNS_T_A);
		m_bytes(m, "\x01\x02\x03", 3);
		m_rr_end(m, at);
		break;
	case S_BAD_CAA:
		m_start(m, SID, QFLAGS_OK, "example.com", DNS_T_CAA, 1);
		at = m_rr(m, 12, NULL, DNS_T_CAA);
		m_bytes(m, "\x00\x00issue", 7);
		m_rr_end(m, at);
		break;
	case S_BAD_LABEL:
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 1);
		m_u8(m, 0x41);
		m_u8(m, 0);
		m_u16(m, DNS_T_A);
		m_u16(m, 1);
		m_u32(m, 300);
		m_u16(m, 4);
		m_bytes(m, "\x01\x02\x03\x04", 4);
		break;
	case S_LONG_NAME: {
		/* A first record (of a type nobody asks for) whose RDATA is
		 * five 60-byte labels, each ending in a pointer to the one
		 * before, the first to the question; the A record's owner
		 * is the last label: 322 bytes decoded. */
		size_t prev = 12, cur;
		char lab[61];

		memset(lab, 'a', 60);
		lab[60] = '\0';
		m_start(m, SID, QFLAGS_OK, "www.example.com", DNS_T_A, 2);
		at = m_rr(m, 12, NULL, 0xff00);
		for (i = 0; i < 5; i++) {
			cur = m->n;
			m_u8(m, 60);
			m_bytes(m, lab, 60);
			m_ptr(m, (unsigned)prev);
			prev = cur;
		}
		m_rr_end(m, at);
		at = m_rr(m, (int)prev, NULL, DNS_T_A);
		m_bytes(m, "\x01\x02\x03\x04", 4);
		m_rr_end(m, at);
		break;
	}
	case S_CUT:
		sample(S_A, m);
		m->n -= 2;
		break;
	default:
		fail();
	}
}

/* --------------------------------------------------------- parser */

static struct dns_answer *
answer_new(void)
{
	struct dns_answer *a = malloc(sizeof(*a));

	assert_non_null(a);
	return a;
}

static void
test_parse_a(void **state)
{
	struct dns_answer *a = answer_new();
	unsigned char ip[16];
	struct msg m;

	(void)state;
	sample(S_A, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "www.example.com",
	    DNS_T_A, SID, a), 0);
	assert_int_equal(a->rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a->nrr, 2);
	assert_int_equal(dns_rr_addr(a, 0, ip), 4);
	assert_memory_equal(ip, "\xc0\x00\x02\x01", 4);
	assert_int_equal(dns_rr_addr(a, 1, ip), 4);
	assert_memory_equal(ip, "\x7f\x00\x00\x01", 4);
	assert_int_equal(a->rr[0].ttl, 300);
	assert_string_equal(a->name, "www.example.com");
	/* Case and a final dot do not matter in the question. */
	assert_int_equal(dns_parse_response(m.b, m.n, "WWW.Example.COM.",
	    DNS_T_A, SID, a), 0);
	assert_int_equal(a->nrr, 2);
	/* Another id, name, type: not an answer to this question. */
	assert_int_equal(dns_parse_response(m.b, m.n, "www.example.com",
	    DNS_T_A, SID + 1, a), CK_E_NOTFOUND);
	assert_int_equal(a->nrr, 0);
	assert_int_equal(dns_parse_response(m.b, m.n, "ww.example.com",
	    DNS_T_A, SID, a), CK_E_NOTFOUND);
	assert_int_equal(dns_parse_response(m.b, m.n, "www.example.com",
	    DNS_T_AAAA, SID, a), CK_E_NOTFOUND);
	/* A query (QR clear) is no answer. */
	m.b[2] &= 0x7f;
	assert_int_equal(dns_parse_response(m.b, m.n, "www.example.com",
	    DNS_T_A, SID, a), CK_E_NOTFOUND);
	/* Names the client would never ask for. */
	assert_int_equal(dns_parse_response(m.b, m.n, "a..b", DNS_T_A, SID,
	    a), CK_E_INVAL);
	assert_int_equal(dns_parse_response(m.b, m.n, "", DNS_T_A, SID, a),
	    CK_E_INVAL);
	assert_int_equal(dns_parse_response(m.b, m.n, "a b.example",
	    DNS_T_A, SID, a), CK_E_INVAL);
	free(a);
}

static void
test_parse_txt_caa_aaaa(void **state)
{
	struct dns_answer *a = answer_new();
	const unsigned char *s;
	struct dns_caa c;
	unsigned char ip[16];
	size_t pos = 0, sl;
	struct msg m;

	(void)state;
	sample(S_TXT, &m);
	assert_int_equal(dns_parse_response(m.b, m.n,
	    "_acme-challenge.example.com", DNS_T_TXT, SID, a), 0);
	assert_int_equal(a->nrr, 2);
	assert_true(dns_rr_txt_next(a, 0, &pos, &s, &sl));
	assert_int_equal(sl, 5);
	assert_memory_equal(s, "hello", 5);
	assert_false(dns_rr_txt_next(a, 0, &pos, &s, &sl));
	pos = 0;
	assert_true(dns_rr_txt_next(a, 1, &pos, &s, &sl));
	assert_int_equal(sl, 3);
	assert_memory_equal(s, "one", 3);
	assert_true(dns_rr_txt_next(a, 1, &pos, &s, &sl));
	assert_int_equal(sl, 0);
	assert_true(dns_rr_txt_next(a, 1, &pos, &s, &sl));
	assert_int_equal(sl, 5);
	assert_memory_equal(s, "three", 5);
	assert_false(dns_rr_txt_next(a, 1, &pos, &s, &sl));

	sample(S_CAA, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "example.com",
	    DNS_T_CAA, SID, a), 0);
	assert_int_equal(a->nrr, 3);
	assert_int_equal(dns_rr_caa(a, 0, &c), 0);
	assert_int_equal(c.flags, 0);
	assert_string_equal(c.tag, "issue");
	assert_int_equal(c.vlen, strlen("ca.example; accounturi=https://"
	    "ca.example/acme/acct/1"));
	assert_memory_equal(c.value, "ca.example;", 11);
	assert_int_equal(dns_rr_caa(a, 1, &c), 0);
	assert_int_equal(c.flags, 128);
	assert_string_equal(c.tag, "tbs");
	assert_int_equal(c.vlen, 1);
	assert_int_equal(dns_rr_caa(a, 2, &c), 0);
	assert_string_equal(c.tag, "iodef");
	assert_int_equal(dns_rr_caa(a, 3, &c), CK_E_INVAL);
	assert_int_equal(dns_rr_addr(a, 0, ip), 0);

	sample(S_AAAA, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "www.example.com",
	    DNS_T_AAAA, SID, a), 0);
	assert_int_equal(a->nrr, 1);
	assert_int_equal(dns_rr_addr(a, 0, ip), 16);
	assert_memory_equal(ip, "\x20\x01\x0d\xb8", 4);
	free(a);
}

static void
test_parse_cname(void **state)
{
	struct dns_answer *a = answer_new();
	unsigned char ip[16];
	struct msg m;

	(void)state;
	sample(S_CNAME, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "alias.example.com",
	    DNS_T_A, SID, a), 0);
	assert_int_equal(a->ncname, 2);
	assert_string_equal(a->name, "www.example.com");
	/* Only the chain's end's record, not the one in between. */
	assert_int_equal(a->nrr, 1);
	assert_int_equal(dns_rr_addr(a, 0, ip), 4);
	assert_memory_equal(ip, "\xc6\x33\x64\x07", 4);

	sample(S_CHAIN9, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "c0.example.com",
	    DNS_T_A, SID, a), CK_E_PARSE);
	assert_int_equal(a->nrr, 0);
	/* Eight links from c1 are fine. */
	{
		struct msg m8;
		size_t at;
		char x[32], y[32];

		m_start(&m8, SID, QFLAGS_OK, "c1.example.com", DNS_T_A, 9);
		for (unsigned i = 1; i < 9; i++) {
			snprintf(x, sizeof(x), "c%u.example.com", i);
			snprintf(y, sizeof(y), "c%u.example.com", i + 1);
			at = m_rr(&m8, -1, x, DNS_T_CNAME);
			m_name(&m8, y);
			m_rr_end(&m8, at);
		}
		at = m_rr(&m8, -1, "c9.example.com", DNS_T_A);
		m_bytes(&m8, "\x01\x02\x03\x04", 4);
		m_rr_end(&m8, at);
		assert_int_equal(dns_parse_response(m8.b, m8.n,
		    "c1.example.com", DNS_T_A, SID, a), 0);
		assert_int_equal(a->ncname, 8);
		assert_int_equal(a->nrr, 1);
	}

	sample(S_OTHER_OWNER, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "www.example.com",
	    DNS_T_A, SID, a), 0);
	assert_int_equal(a->nrr, 0);	/* another name's record is not ours */
	free(a);
}

static void
test_parse_rcodes(void **state)
{
	struct dns_answer *a = answer_new();
	struct msg m;

	(void)state;
	sample(S_NXDOMAIN, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "nope.example.com",
	    DNS_T_A, SID, a), 0);
	assert_int_equal(a->rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(a->nrr, 0);
	sample(S_SERVFAIL, &m);
	assert_int_equal(dns_parse_response(m.b, m.n, "example.com",
	    DNS_T_CAA, SID, a), 0);
	assert_int_equal(a->rcode, DNS_RCODE_SERVFAIL);
	assert_int_equal(a->nrr, 0);
	sample(S_TC, &m);
	assert_int_equal(dns_parse_response(m.b, m.n,
	    "_acme-challenge.example.com", DNS_T_TXT, SID, a), 0);
	assert_true(a->truncated);
	assert_int_equal(a->nrr, 0);
	free(a);
}

static void
test_parse_malformed(void **state)
{
	static const struct { enum sample s; const char *q; uint16_t t; }
	    bad[] = {
		{ S_LOOP_SELF, "www.example.com", DNS_T_A },
		{ S_LOOP_FWD, "www.example.com", DNS_T_A },
		{ S_LOOP_TWO, "www.example.com", DNS_T_A },
		{ S_BAD_A_LEN, "www.example.com", DNS_T_A },
		{ S_BAD_CAA, "example.com", DNS_T_CAA },
		{ S_BAD_LABEL, "www.example.com", DNS_T_A },
		{ S_LONG_NAME, "www.example.com", DNS_T_A },
		{ S_CUT, "www.example.com", DNS_T_A },
	};
	struct dns_answer *a = answer_new();
	struct msg m;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sample(bad[i].s, &m);
		assert_int_equal(dns_parse_response(m.b, m.n, bad[i].q,
		    bad[i].t, SID, a), CK_E_PARSE);
		assert_int_equal(a->nrr, 0);
	}
	/* Every proper prefix of a good answer is refused. */
	sample(S_CNAME, &m);
	for (n = 0; n < m.n; n++)
		assert_int_not_equal(dns_parse_response(m.b, n,
		    "alias.example.com", DNS_T_A, SID, a), 0);
	/* Two questions. */
	sample(S_A, &m);
	m.b[5] = 2;
	assert_int_equal(dns_parse_response(m.b, m.n, "www.example.com",
	    DNS_T_A, SID, a), CK_E_PARSE);
	free(a);
}

static void
write_corpus(void **state)
{
	const char *dir = getenv("CK_DNS_CORPUS_DIR");
	char path[1024];
	struct msg m;

	(void)state;
	assert_non_null(dir);
	for (int s = 0; s < S__MAX; s++) {
		sample((enum sample)s, &m);
		snprintf(path, sizeof(path), "%s/%s", dir, sample_names[s]);
		tu_write_file(path, m.b, m.n, 0644);
	}
}

/* ------------------------------------------------- the DNS responder */

struct zrec {
	char name[128];
	uint16_t type;
	char val[256];	/* A/AAAA text; TXT strings split at '|'; CAA
			   "FLAGS TAG VALUE"; CNAME target ('!' first: the
			   responder does not follow it, as for another
			   zone) */
};

static struct zrec zone[80];
static size_t nzone;

static void
zone_add(const char *name, uint16_t type, const char *val)
{
	assert_true(nzone < sizeof(zone) / sizeof(zone[0]));
	snprintf(zone[nzone].name, sizeof(zone[0].name), "%s", name);
	zone[nzone].type = type;
	snprintf(zone[nzone].val, sizeof(zone[0].val), "%s", val);
	nzone++;
}

enum dmode { D_OK, D_TC, D_SERVFAIL, D_SILENT };

struct dnssrv {
	enum dmode mode;
	int udp, tcp, stop[2];
	uint16_t port;
	pthread_t th;
	atomic_int nudp, ntcp;
	/* the last queries' ids and source ports, for the randomness check */
	atomic_uint ids[4], ports[4];
	atomic_int nq;
	atomic_int last_ar, last_rd;
};

static const char *
name_tail(const char *name, const char *sub)
{
	size_t a = strlen(name), b = strlen(sub);

	return b > a && sub[b - a - 1] == '.' &&
	    strcasecmp(sub + b - a, name) == 0 ? sub : NULL;
}

static void
rr_rdata(struct msg *m, const struct zrec *z)
{
	unsigned char ip[16];
	const char *p, *bar;

	switch (z->type) {
	case DNS_T_A:
		assert_int_equal(inet_pton(AF_INET, z->val, ip), 1);
		m_bytes(m, ip, 4);
		break;
	case DNS_T_AAAA:
		assert_int_equal(inet_pton(AF_INET6, z->val, ip), 1);
		m_bytes(m, ip, 16);
		break;
	case DNS_T_TXT:
		for (p = z->val;; p = bar + 1) {
			bar = strchr(p, '|');
			size_t l = bar != NULL ? (size_t)(bar - p) : strlen(p);

			m_u8(m, (unsigned)l);
			m_bytes(m, p, l);
			if (bar == NULL)
				break;
		}
		break;
	case DNS_T_CAA: {
		unsigned flags;
		char tag[32];
		int off = 0;

		assert_int_equal(sscanf(z->val, "%u %31s %n", &flags, tag,
		    &off), 2);
		m_u8(m, flags);
		m_u8(m, (unsigned)strlen(tag));
		m_bytes(m, tag, strlen(tag));
		m_bytes(m, z->val + off, strlen(z->val + off));
		break;
	}
	case DNS_T_CNAME:
		m_name(m, z->val[0] == '!' ? z->val + 1 : z->val);
		break;
	default:
		fail();
	}
}

/* Answer query q[0..qn) into r. 0 to answer, -1 to drop it. */
static int
dns_respond(struct dnssrv *sv, const unsigned char *q, size_t qn, int tcp,
    struct msg *r)
{
	char qname[256], cur[256];
	size_t p = 12, o = 0, qend, at;
	unsigned qtype, an = 0, links = 0, rcode = 0;
	int known, follow;

	if (qn < 17)
		return -1;
	atomic_store(&sv->last_rd, (q[2] & 0x01) != 0);
	atomic_store(&sv->last_ar, q[10] << 8 | q[11]);
	while (p < qn && q[p] != 0) {
		size_t l = q[p];

		if (o > 0)
			qname[o++] = '.';
		assert_true(p + 1 + l < qn && o + l < sizeof(qname) - 1);
		memcpy(qname + o, q + p + 1, l);
		o += l;
		p += 1 + l;
	}
	qname[o] = '\0';
	qend = p + 5;
	assert_true(qend <= qn);
	qtype = (unsigned)(q[p + 1] << 8 | q[p + 2]);
	r->n = 0;
	m_bytes(r, q, 2);	/* id */
	m_u16(r, 0x8180);
	m_u16(r, 1);
	m_u16(r, 0);		/* ANCOUNT, set below */
	m_u16(r, 0);
	m_u16(r, 0);
	m_bytes(r, q + 12, qend - 12);
	if (sv->mode == D_SERVFAIL) {
		r->b[3] |= DNS_RCODE_SERVFAIL;
		return 0;
	}
	if (sv->mode == D_TC && !tcp) {
		r->b[2] |= 0x02;
		return 0;
	}
	snprintf(cur, sizeof(cur), "%s", qname);
	for (;;) {
		follow = 0;
		for (size_t i = 0; i < nzone; i++) {
			if (zone[i].type != DNS_T_CNAME || qtype == DNS_T_CNAME ||
			    strcasecmp(zone[i].name, cur) != 0)
				continue;
			at = m_rr(r, strcasecmp(cur, qname) == 0 ? 12 : -1,
			    cur, DNS_T_CNAME);
			rr_rdata(r, &zone[i]);
			m_rr_end(r, at);
			an++;
			if (zone[i].val[0] != '!' && links++ < 10) {
				snprintf(cur, sizeof(cur), "%s", zone[i].val);
				follow = 1;
			}
			break;
		}
		if (!follow)
			break;
	}
	known = 0;
	for (size_t i = 0; i < nzone; i++) {
		if (strcasecmp(zone[i].name, cur) == 0 ||
		    name_tail(cur, zone[i].name) != NULL)
			known = 1;
		if (zone[i].type != qtype || strcasecmp(zone[i].name, cur) != 0)
			continue;
		at = m_rr(r, strcasecmp(cur, qname) == 0 ? 12 : -1, cur,
		    qtype);
		rr_rdata(r, &zone[i]);
		m_rr_end(r, at);
		an++;
	}
	if (!known && an == 0)
		rcode = DNS_RCODE_NXDOMAIN;
	r->b[3] |= (unsigned char)rcode;
	r->b[6] = (unsigned char)(an >> 8);
	r->b[7] = (unsigned char)an;
	return 0;
}

static void
dns_note_query(struct dnssrv *sv, const unsigned char *q,
    const struct sockaddr_in *from)
{
	int i = atomic_fetch_add(&sv->nq, 1) % 4;

	atomic_store(&sv->ids[i], (unsigned)(q[0] << 8 | q[1]));
	atomic_store(&sv->ports[i], from != NULL ? ntohs(from->sin_port) : 0);
}

static void *
dns_main(void *arg)
{
	struct dnssrv *sv = arg;
	struct pollfd pf[3];
	unsigned char q[4096];
	struct msg r;
	struct sockaddr_in from;
	socklen_t fl;
	ssize_t k;

	for (;;) {
		pf[0].fd = sv->udp;
		pf[1].fd = sv->tcp;
		pf[2].fd = sv->stop[0];
		for (int i = 0; i < 3; i++) {
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		if (poll(pf, 3, -1) < 0)
			continue;
		if (pf[2].revents)
			break;
		if (pf[0].revents) {
			fl = sizeof(from);
			k = recvfrom(sv->udp, q, sizeof(q), 0,
			    (struct sockaddr *)&from, &fl);
			if (k <= 0)
				continue;
			atomic_fetch_add(&sv->nudp, 1);
			if (k >= 12)
				dns_note_query(sv, q, &from);
			if (sv->mode == D_SILENT ||
			    dns_respond(sv, q, (size_t)k, 0, &r) != 0)
				continue;
			(void)sendto(sv->udp, r.b, r.n, 0,
			    (struct sockaddr *)&from, fl);
		}
		if (pf[1].revents) {
			struct timeval tv = { 1, 0 };
			unsigned char lb[2];
			size_t need, have = 0;
			int c = accept(sv->tcp, NULL, NULL);

			if (c < 0)
				continue;
			atomic_fetch_add(&sv->ntcp, 1);
			setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			if (sv->mode == D_SILENT ||
			    recv(c, lb, 2, MSG_WAITALL) != 2) {
				close(c);
				continue;
			}
			need = (size_t)(lb[0] << 8 | lb[1]);
			while (have < need && have < sizeof(q)) {
				k = recv(c, q + have, need - have, 0);
				if (k <= 0)
					break;
				have += (size_t)k;
			}
			if (have == need && dns_respond(sv, q, need, 1, &r) ==
			    0) {
				lb[0] = (unsigned char)(r.n >> 8);
				lb[1] = (unsigned char)r.n;
				(void)send(c, lb, 2, MSG_NOSIGNAL);
				(void)send(c, r.b, r.n, MSG_NOSIGNAL);
			}
			close(c);
		}
	}
	return NULL;
}

/* A listening or bound socket on 127.0.0.1:port (0: any). */
static int
bind_local(int type, uint16_t port, uint16_t *got)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd, one = 1;

	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	if (got != NULL)
		*got = ntohs(sa.sin_port);
	return fd;
}

static void
dns_start(struct dnssrv *sv, enum dmode mode)
{
	int tries;

	memset(sv, 0, sizeof(*sv));
	sv->mode = mode;
	/* UDP and TCP on the same port number. */
	for (tries = 0; tries < 50; tries++) {
		sv->udp = bind_local(SOCK_DGRAM, 0, &sv->port);
		assert_true(sv->udp >= 0);
		if ((sv->tcp = bind_local(SOCK_STREAM, sv->port, NULL)) >= 0)
			break;
		close(sv->udp);
	}
	assert_true(sv->tcp >= 0);
	assert_int_equal(pipe(sv->stop), 0);
	assert_int_equal(pthread_create(&sv->th, NULL, dns_main, sv), 0);
}

static void
srv_stop(int stop[2], pthread_t th)
{
	assert_int_equal(write(stop[1], "x", 1), 1);
	pthread_join(th, NULL);
	close(stop[0]);
	close(stop[1]);
}

/* ---------------------------------------------------- the HTTP server */

struct httpsrv {
	int fd, stop[2];
	uint16_t port;
	pthread_t th;
	atomic_int nreq;
	pthread_mutex_t mu;
	char last_host[256];
	char last_line[512];
	int held[8];
	int nheld;
};

static void
keyauth_of(const char *token, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s.%s", token, THUMB);

	assert_true(n > 0 && (size_t)n < outsz);
}

static void
http_send(int c, const char *s, size_t n)
{
	(void)send(c, s, n, MSG_NOSIGNAL);
}

static void
http_reply(struct httpsrv *sv, int c, const char *path)
{
	char buf[8192], ka[300], tok[200];
	const char *t = NULL;
	int hop, n;

	if (strncmp(path, "/.well-known/acme-challenge/", 28) == 0)
		t = path + 28;
	if (strncmp(path, "/final/", 7) == 0) {
		keyauth_of(path + 7, ka, sizeof(ka));
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n"
		    "Content-Length: %zu\r\n\r\n%s", strlen(ka), ka);
		http_send(c, buf, (size_t)n);
		return;
	}
	if (sscanf(path, "/hop/%d/%199s", &hop, tok) == 2) {
		if (hop == 0) {
			keyauth_of(tok, ka, sizeof(ka));
			n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n"
			    "Content-Length: %zu\r\n\r\n%s", strlen(ka), ka);
		} else {
			n = snprintf(buf, sizeof(buf), "HTTP/1.1 302 Found\r\n"
			    "Location: /hop/%d/%s\r\nContent-Length: 0\r\n\r\n",
			    hop - 1, tok);
		}
		http_send(c, buf, (size_t)n);
		return;
	}
	if (t == NULL) {
		http_send(c, "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n",
		    39);
		return;
	}
	keyauth_of(t, ka, sizeof(ka));
	if (strcmp(t, "tok-good") == 0) {
		/* Trailing white space is allowed (RFC 8555 8.3). */
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Type:"
		    " application/octet-stream\r\nContent-Length: %zu\r\n\r\n"
		    "%s\r\n", strlen(ka) + 2, ka);
	} else if (strcmp(t, "tok-wrong") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n"
		    "Content-Length: 14\r\n\r\nsomething-else");
	} else if (strcmp(t, "tok-404") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 404 Not Found\r\n"
		    "Content-Length: 9\r\n\r\nnot found");
	} else if (strcmp(t, "tok-500") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 500 Oops\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcmp(t, "tok-big") == 0 || strcmp(t, "tok-bigeof") == 0) {
		size_t hl;

		if (t[7] == '\0')
			n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n"
			    "Content-Length: 5000\r\n\r\n");
		else
			n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n\r\n");
		hl = (size_t)n;
		memset(buf + hl, 'x', 5000);
		memcpy(buf + hl, ka, strlen(ka));
		n = (int)(hl + 5000);
	} else if (strcmp(t, "tok-chunked") == 0) {
		size_t kl = strlen(ka);

		n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n%zx;ext=1\r\n%.10s\r\n"
		    "%zx\r\n%s\n\r\n0\r\n\r\n", (size_t)10, ka, kl - 10 + 1,
		    ka + 10);
	} else if (strcmp(t, "tok-slow") == 0) {
		pthread_mutex_lock(&sv->mu);
		if (sv->nheld < 8) {
			sv->held[sv->nheld++] = c;
			c = -1;
		}
		pthread_mutex_unlock(&sv->mu);
		if (c < 0)
			return;
		n = 0;
	} else if (strcmp(t, "tok-redir") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 302 Found\r\n"
		    "Location: http://other.test:%u/final/tok-redir\r\n"
		    "Content-Length: 0\r\n\r\n", sv->port);
	} else if (strcmp(t, "tok-redirnoport") == 0) {
		/* No port: the configured http-01 port is used. */
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 307 Temporary\r\n"
		    "Location: HTTP://Other.Test/final/tok-redirnoport#frag\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcmp(t, "tok-redirrel") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 301 Moved\r\n"
		    "Location: /final/tok-redirrel\r\nContent-Length: 0\r\n\r\n");
	} else if (strcmp(t, "tok-redirhttps") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 302 Found\r\n"
		    "Location: https://other.test/final/tok-redirhttps\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcmp(t, "tok-redirport") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 302 Found\r\n"
		    "Location: http://other.test:1/final/tok-redirport\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcmp(t, "tok-redirip") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 302 Found\r\n"
		    "Location: http://127.0.0.1:%u/final/tok-redirip\r\n"
		    "Content-Length: 0\r\n\r\n", sv->port);
	} else if (strcmp(t, "tok-redirnoloc") == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 302 Found\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strncmp(t, "tok-hops", 8) == 0) {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 308 Permanent\r\n"
		    "Location: /hop/%d/%s\r\nContent-Length: 0\r\n\r\n",
		    (int)strtol(t + 8, NULL, 10) - 1, t);
	} else {
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 404 Not Found\r\n"
		    "Content-Length: 0\r\n\r\n");
	}
	http_send(c, buf, (size_t)n);
}

static void *
http_main(void *arg)
{
	struct httpsrv *sv = arg;
	struct pollfd pf[2];
	char req[4096], path[1024], *e, *h;
	size_t have;
	ssize_t k;
	int c;

	for (;;) {
		pf[0].fd = sv->fd;
		pf[0].events = POLLIN;
		pf[1].fd = sv->stop[0];
		pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			break;
		if ((c = accept(sv->fd, NULL, NULL)) < 0)
			continue;
		{
			struct timeval tv = { 1, 0 };

			setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		have = 0;
		while (have < sizeof(req) - 1) {
			k = recv(c, req + have, sizeof(req) - 1 - have, 0);
			if (k <= 0)
				break;
			have += (size_t)k;
			req[have] = '\0';
			if (strstr(req, "\r\n\r\n") != NULL)
				break;
		}
		req[have] = '\0';
		atomic_fetch_add(&sv->nreq, 1);
		pthread_mutex_lock(&sv->mu);
		e = strstr(req, "\r\n");
		snprintf(sv->last_line, sizeof(sv->last_line), "%.*s",
		    e != NULL ? (int)(e - req) : 0, req);
		sv->last_host[0] = '\0';
		if ((h = strstr(req, "\r\nHost: ")) != NULL) {
			e = strstr(h + 2, "\r\n");
			snprintf(sv->last_host, sizeof(sv->last_host), "%.*s",
			    e != NULL ? (int)(e - h - 8) : 0, h + 8);
		}
		pthread_mutex_unlock(&sv->mu);
		if (sscanf(req, "GET %1023s HTTP/1.1", path) == 1)
			http_reply(sv, c, path);
		pthread_mutex_lock(&sv->mu);
		for (int i = 0; i < sv->nheld; i++)
			if (sv->held[i] == c)
				c = -1;
		pthread_mutex_unlock(&sv->mu);
		if (c >= 0)
			close(c);
	}
	for (int i = 0; i < sv->nheld; i++)
		close(sv->held[i]);
	return NULL;
}

/* ----------------------------------------------------- the TLS server */

enum tmode { T_GOOD, T_WRONG_DIGEST, T_NONCRIT, T_TWO_SANS, T_OTHER_NAME,
	T_IP, T_NO_ALPN, T_NO_EXT, T__MAX };

struct tlssrv {
	int fd, stop[2];
	uint16_t port;
	pthread_t th;
	SSL_CTX *ctx[T__MAX];
	atomic_int mode;
	pthread_mutex_t mu;
	char last_sni[256];
	unsigned char last_alpn[64];	/* the client's offer, wire form */
	unsigned last_alpn_len;
	atomic_int nconn;
};

static int
sni_cb(SSL *ssl, int *al, void *arg)
{
	struct tlssrv *sv = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)al;
	pthread_mutex_lock(&sv->mu);
	snprintf(sv->last_sni, sizeof(sv->last_sni), "%s",
	    sni != NULL ? sni : "");
	pthread_mutex_unlock(&sv->mu);
	return SSL_TLSEXT_ERR_OK;
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct tlssrv *sv = arg;

	(void)ssl;
	pthread_mutex_lock(&sv->mu);
	sv->last_alpn_len = inlen < sizeof(sv->last_alpn) ? inlen : 0;
	memcpy(sv->last_alpn, in, sv->last_alpn_len);
	pthread_mutex_unlock(&sv->mu);
	if (atomic_load(&sv->mode) == T_NO_ALPN)
		return SSL_TLSEXT_ERR_NOACK;
	if (inlen >= 11 && memcmp(in, "\x0a" "acme-tls/1", 11) == 0) {
		*out = in + 1;
		*outlen = 10;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* A self-signed certificate with subjectAltName san (v3 config syntax)
 * and, if digest is set, the acmeIdentifier extension built by hand. */
static X509 *
make_cert(EVP_PKEY *key, const char *san, const unsigned char *digest,
    int critical)
{
	X509 *x = X509_new();
	X509_NAME *nm;
	X509V3_CTX v3;
	X509_EXTENSION *e;

	assert_non_null(x);
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 7));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	nm = X509_get_subject_name(x);
	assert_true(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"acme challenge", -1, -1, 0));
	assert_true(X509_set_issuer_name(x, nm));
	assert_true(X509_set_pubkey(x, key));
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	assert_non_null(e);
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	if (digest != NULL) {
		unsigned char der[34];
		ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
		ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);

		der[0] = 0x04;
		der[1] = 32;
		memcpy(der + 2, digest, 32);
		assert_non_null(val);
		assert_non_null(obj);
		assert_true(ASN1_OCTET_STRING_set(val, der, sizeof(der)));
		e = X509_EXTENSION_create_by_OBJ(NULL, obj, critical, val);
		assert_non_null(e);
		assert_true(X509_add_ext(x, e, -1));
		X509_EXTENSION_free(e);
		ASN1_OCTET_STRING_free(val);
		ASN1_OBJECT_free(obj);
	}
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static SSL_CTX *
tls_ctx(struct tlssrv *sv, EVP_PKEY *key, X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, sv);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, sv);
	X509_free(cert);
	return ctx;
}

static void *
tls_main(void *arg)
{
	struct tlssrv *sv = arg;
	struct pollfd pf[2];
	SSL *ssl;
	int c;

	for (;;) {
		pf[0].fd = sv->fd;
		pf[0].events = POLLIN;
		pf[1].fd = sv->stop[0];
		pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			break;
		if ((c = accept(sv->fd, NULL, NULL)) < 0)
			continue;
		atomic_fetch_add(&sv->nconn, 1);
		{
			struct timeval tv = { 2, 0 };

			setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		ssl = SSL_new(sv->ctx[atomic_load(&sv->mode)]);
		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) == 1)
			(void)SSL_shutdown(ssl);
		ERR_clear_error();
		SSL_free(ssl);
		close(c);
	}
	return NULL;
}

/* ------------------------------------------------------------ fixture */

static struct dnssrv dns_ok, dns_tc, dns_fail, dns_silent;
static struct httpsrv http;
static struct tlssrv tls;
static char srv_ok[64], srv_tc[64], srv_fail[64], srv_silent[64],
    srv_failover[160];
static uint16_t dead_port;	/* nothing listens there */

static void
b64url(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
	    "stuvwxyz0123456789-_";
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = a[(in[i + 1] & 15) << 2 | in[i + 2] >> 6];
		out[o++] = a[in[i + 2] & 63];
	}
	if (n - i == 1) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = a[(in[i + 1] & 15) << 2];
	}
	out[o] = '\0';
}

static void
digest_of(const char *token, unsigned char dg[32])
{
	char ka[300];
	unsigned int n;

	keyauth_of(token, ka, sizeof(ka));
	assert_int_equal(EVP_Digest(ka, strlen(ka), dg, &n, EVP_sha256(),
	    NULL), 1);
}

static void
zone_fill(void)
{
	unsigned char dg[32];
	char d64[64], v[128];

	nzone = 0;
	zone_add("www.test", DNS_T_A, "127.0.0.1");
	zone_add("other.test", DNS_T_A, "127.0.0.1");
	zone_add("dual.test", DNS_T_AAAA, "::1");
	zone_add("dual.test", DNS_T_A, "127.0.0.1");
	zone_add("alias.test", DNS_T_CNAME, "www.test");
	zone_add("cut.test", DNS_T_CNAME, "!www.test");
	zone_add("loop1.test", DNS_T_CNAME, "loop2.test");
	zone_add("loop2.test", DNS_T_CNAME, "loop1.test");
	zone_add("noaddr.test", DNS_T_TXT, "nothing here");
	zone_add("zero.test", DNS_T_A, "0.0.0.0");
	/* dns-01: the digest split over two strings, next to another record */
	digest_of("tok-dns", dg);
	b64url(dg, 32, d64);
	zone_add("_acme-challenge.www.test", DNS_T_TXT, "unrelated");
	snprintf(v, sizeof(v), "%.20s|%s", d64, d64 + 20);
	zone_add("_acme-challenge.www.test", DNS_T_TXT, v);
	/* one record of two strings, the second the digest */
	snprintf(v, sizeof(v), "v=something|%s", d64);
	zone_add("_acme-challenge.single.test", DNS_T_TXT, v);
	zone_add("single.test", DNS_T_A, "127.0.0.1");
	zone_add("_acme-challenge.other.test", DNS_T_TXT, "not-the-digest");
	zone_add("_acme-challenge.other.test", DNS_T_TXT, "also|wrong");
	zone_add("_acme-challenge.calias.test", DNS_T_CNAME,
	    "_acme-challenge.www.test");
	/* CAA */
	zone_add("ours.test", DNS_T_CAA, "0 issue ca.example");
	zone_add("theirs.test", DNS_T_CAA, "0 issue other-ca.example");
	zone_add("wild.test", DNS_T_CAA, "0 issue ca.example");
	zone_add("wild.test", DNS_T_CAA, "0 issuewild other-ca.example");
	zone_add("wild2.test", DNS_T_CAA, "0 issue other-ca.example");
	zone_add("wild2.test", DNS_T_CAA, "0 issuewild ca.example");
	zone_add("crit.test", DNS_T_CAA, "128 tbs unknown");
	zone_add("crit.test", DNS_T_CAA, "0 issue ca.example");
	zone_add("noncrit.test", DNS_T_CAA, "0 tbs unknown");
	zone_add("noncrit.test", DNS_T_CAA, "0 issue ca.example");
	zone_add("critiodef.test", DNS_T_CAA, "128 iodef mailto:a@b.test");
	zone_add("critiodef.test", DNS_T_CAA, "0 issue ca.example");
	zone_add("acct.test", DNS_T_CAA, "0 issue ca.example; accounturi="
	    ACCT1);
	zone_add("acct2.test", DNS_T_CAA, "0 issue ca.example; accounturi="
	    ACCT1 "; accounturi=" ACCT1);
	zone_add("meth.test", DNS_T_CAA, "0 issue ca.example; "
	    "validationmethods=dns-01,tls-alpn-01");
	zone_add("params.test", DNS_T_CAA, "0 issue  ca.example ;  "
	    "policy=ev ; x-other=1");
	zone_add("forbid.test", DNS_T_CAA, "0 issue ;");
	zone_add("case.test", DNS_T_CAA, "0 ISSUE CA.Example");
	zone_add("iodef.test", DNS_T_CAA, "0 iodef mailto:a@b.test");
	zone_add("calias.test", DNS_T_CNAME, "theirs.test");
	zone_add("two.test", DNS_T_CAA, "0 issue other-ca.example");
	zone_add("two.test", DNS_T_CAA, "0 issue ca.example");
	zone_add("malformed.test", DNS_T_CAA, "0 issue ca.example; =x");
	zone_add("trailing.test", DNS_T_CAA, "0 issue ca.example; a=b;");
	zone_add("dotted.test", DNS_T_CAA, "0 issue ca.example.");
}

static int
group_setup(void **state)
{
	EVP_PKEY *key = tu_key("ec-p256");
	unsigned char dg[32], bad[32];
	int fd;

	(void)state;
	zone_fill();
	dns_start(&dns_ok, D_OK);
	dns_start(&dns_tc, D_TC);
	dns_start(&dns_fail, D_SERVFAIL);
	dns_start(&dns_silent, D_SILENT);
	snprintf(srv_ok, sizeof(srv_ok), "127.0.0.1:%u", dns_ok.port);
	snprintf(srv_tc, sizeof(srv_tc), "127.0.0.1:%u", dns_tc.port);
	snprintf(srv_fail, sizeof(srv_fail), "127.0.0.1:%u", dns_fail.port);
	snprintf(srv_silent, sizeof(srv_silent), "127.0.0.1:%u",
	    dns_silent.port);
	snprintf(srv_failover, sizeof(srv_failover), "%s, %s", srv_silent,
	    srv_ok);

	memset(&http, 0, sizeof(http));
	pthread_mutex_init(&http.mu, NULL);
	http.fd = bind_local(SOCK_STREAM, 0, &http.port);
	assert_true(http.fd >= 0);
	assert_int_equal(pipe(http.stop), 0);
	assert_int_equal(pthread_create(&http.th, NULL, http_main, &http), 0);

	memset(&tls, 0, sizeof(tls));
	pthread_mutex_init(&tls.mu, NULL);
	digest_of("tok-tls", dg);
	memcpy(bad, dg, 32);
	bad[31] ^= 1;
	tls.ctx[T_GOOD] = tls_ctx(&tls, key, make_cert(key, "DNS:www.test",
	    dg, 1));
	tls.ctx[T_WRONG_DIGEST] = tls_ctx(&tls, key, make_cert(key,
	    "DNS:www.test", bad, 1));
	tls.ctx[T_NONCRIT] = tls_ctx(&tls, key, make_cert(key, "DNS:www.test",
	    dg, 0));
	tls.ctx[T_TWO_SANS] = tls_ctx(&tls, key, make_cert(key,
	    "DNS:www.test,DNS:other.test", dg, 1));
	tls.ctx[T_OTHER_NAME] = tls_ctx(&tls, key, make_cert(key,
	    "DNS:other.test", dg, 1));
	tls.ctx[T_IP] = tls_ctx(&tls, key, make_cert(key, "IP:127.0.0.1", dg,
	    1));
	tls.ctx[T_NO_ALPN] = tls_ctx(&tls, key, make_cert(key, "DNS:www.test",
	    dg, 1));
	tls.ctx[T_NO_EXT] = tls_ctx(&tls, key, make_cert(key, "DNS:www.test",
	    NULL, 1));
	EVP_PKEY_free(key);
	tls.fd = bind_local(SOCK_STREAM, 0, &tls.port);
	assert_true(tls.fd >= 0);
	assert_int_equal(pipe(tls.stop), 0);
	assert_int_equal(pthread_create(&tls.th, NULL, tls_main, &tls), 0);

	fd = bind_local(SOCK_STREAM, 0, &dead_port);
	close(fd);		/* now nothing listens there */
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	srv_stop(dns_ok.stop, dns_ok.th);
	srv_stop(dns_tc.stop, dns_tc.th);
	srv_stop(dns_fail.stop, dns_fail.th);
	srv_stop(dns_silent.stop, dns_silent.th);
	close(dns_ok.udp);
	close(dns_ok.tcp);
	close(dns_tc.udp);
	close(dns_tc.tcp);
	close(dns_fail.udp);
	close(dns_fail.tcp);
	close(dns_silent.udp);
	close(dns_silent.tcp);
	srv_stop(http.stop, http.th);
	close(http.fd);
	pthread_mutex_destroy(&http.mu);
	srv_stop(tls.stop, tls.th);
	close(tls.fd);
	for (int i = 0; i < T__MAX; i++)
		SSL_CTX_free(tls.ctx[i]);
	pthread_mutex_destroy(&tls.mu);
	return 0;
}

static struct acme_vconf
vconf(const char *servers)
{
	struct acme_vconf c;

	memset(&c, 0, sizeof(c));
	c.dns_servers = servers;
	c.http_port = http.port;
	c.tls_port = tls.port;
	c.timeout_ms = 3000;
	c.caa_identity = CA_ID;
	c.allow_loopback = 1;	/* every test server is on 127.0.0.1 */
	return c;
}

/* What the servers last saw, copied out under their locks (a failed
 * assertion must not leave a lock held). */
static void
http_last(char line[512], char host[256])
{
	pthread_mutex_lock(&http.mu);
	memcpy(line, http.last_line, sizeof(http.last_line));
	memcpy(host, http.last_host, sizeof(http.last_host));
	pthread_mutex_unlock(&http.mu);
}

static void
tls_last(char sni[256], unsigned char alpn[64], unsigned *alpnlen)
{
	pthread_mutex_lock(&tls.mu);
	memcpy(sni, tls.last_sni, sizeof(tls.last_sni));
	memcpy(alpn, tls.last_alpn, sizeof(tls.last_alpn));
	*alpnlen = tls.last_alpn_len;
	pthread_mutex_unlock(&tls.mu);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run one validation; check its result and problem type. */
static void
expect_v(const struct acme_vconf *c, const char *chtype, const char *idtype,
    const char *id, int wild, const char *token, int want_r,
    const char *want_ptype, const char *want_in_detail, int line)
{
	char ka[300], detail[1024];
	const char *ptype = "unset";
	int r;

	keyauth_of(token, ka, sizeof(ka));
	r = acme_validate(c, chtype, idtype, id, wild, token, ka, &ptype,
	    detail, sizeof(detail));
	if (r != want_r || (want_ptype == NULL) != (ptype == NULL) ||
	    (want_ptype != NULL && strcmp(ptype, want_ptype) != 0) ||
	    (want_in_detail != NULL && strstr(detail, want_in_detail) ==
	    NULL)) {
		print_error("line %d: %s %s:%s token %s: got %d (%s) \"%s\", "
		    "wanted %d (%s) with \"%s\"\n", line, chtype, idtype, id,
		    token, r, ptype != NULL ? ptype : "NULL", detail, want_r,
		    want_ptype != NULL ? want_ptype : "NULL",
		    want_in_detail != NULL ? want_in_detail : "");
		fail();
	}
	if (r != 0)
		assert_string_equal(ck_err_msg(), detail);
}
#define EXPECT_V(c, ch, it, id, w, tok, r, pt, det) \
	expect_v((c), (ch), (it), (id), (w), (tok), (r), (pt), (det), __LINE__)

static void
expect_caa(const struct acme_vconf *c, const char *name, int wild,
    const char *acct, const char *method, int want_r, const char *want_ptype,
    const char *want_in_detail, int line)
{
	char detail[1024];
	const char *ptype = "unset";
	int r;

	r = acme_caa_check(c, name, wild, acct, method, &ptype, detail,
	    sizeof(detail));
	if (r != want_r || (want_ptype == NULL) != (ptype == NULL) ||
	    (want_ptype != NULL && strcmp(ptype, want_ptype) != 0) ||
	    (want_in_detail != NULL && strstr(detail, want_in_detail) ==
	    NULL)) {
		print_error("line %d: CAA %s%s: got %d (%s) \"%s\", wanted %d "
		    "(%s) with \"%s\"\n", line, wild ? "*." : "", name, r,
		    ptype != NULL ? ptype : "NULL", detail, want_r,
		    want_ptype != NULL ? want_ptype : "NULL",
		    want_in_detail != NULL ? want_in_detail : "");
		fail();
	}
}
#define EXPECT_CAA(c, n, w, a, m, r, pt, det) \
	expect_caa((c), (n), (w), (a), (m), (r), (pt), (det), __LINE__)

/* ------------------------------------------------------- DNS client */

static void
test_client_init(void **state)
{
	struct dns_client c;
	char many[512];

	(void)state;
	assert_int_equal(dns_client_init(&c, "127.0.0.1:5353", 0), 0);
	assert_int_equal(c.nsrv, 1);
	assert_int_equal(c.try_timeout_ms, DNS_TRY_TIMEOUT_MS);
	assert_int_equal(dns_client_init(&c, " [::1]:53,10.1.2.3 [2001:db8::1]"
	    ",\t192.0.2.1:1", 100), 0);
	assert_int_equal(c.nsrv, 4);
	assert_int_equal(c.try_timeout_ms, 100);
	assert_int_equal(c.srv[0].ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in *)&c.srv[1])->sin_port),
	    53);
	assert_int_equal(ntohs(((struct sockaddr_in *)&c.srv[3])->sin_port),
	    1);
	assert_int_equal(dns_client_init(&c, "", 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, NULL, 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, "localhost:53", 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, "1.2.3.4:0", 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, "1.2.3.4:65536", 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, "1.2.3.4:5x", 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, "[::1", 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, "[::1]53", 0), CK_E_PARSE);
	assert_int_equal(dns_client_init(&c, "::1", 0), CK_E_PARSE);
	assert_contains(ck_err_msg(), "::1");
	many[0] = '\0';
	for (int i = 0; i < DNS_MAX_SERVERS + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		    "127.0.0.1:53,");
	assert_int_equal(dns_client_init(&c, many, 0), CK_E_PARSE);
}

static void
test_query(void **state)
{
	struct dns_answer *a = answer_new();
	struct dns_client c;
	unsigned char ip[16];
	unsigned ids[4], ports[4];
	int64_t t0;

	(void)state;
	assert_int_equal(dns_client_init(&c, srv_ok, 500), 0);
	atomic_store(&dns_ok.nq, 0);
	assert_int_equal(dns_query(&c, "www.test", DNS_T_A, now_ms() + 2000,
	    a), 0);
	assert_int_equal(a->nrr, 1);
	assert_int_equal(dns_rr_addr(a, 0, ip), 4);
	assert_memory_equal(ip, "\x7f\0\0\x01", 4);
	/* RD set, one OPT record offered. */
	assert_int_equal(atomic_load(&dns_ok.last_rd), 1);
	assert_int_equal(atomic_load(&dns_ok.last_ar), 1);
	/* NODATA and NXDOMAIN are answers without records. */
	assert_int_equal(dns_query(&c, "www.test", DNS_T_TXT, now_ms() + 2000,
	    a), 0);
	assert_int_equal(a->rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a->nrr, 0);
	assert_int_equal(dns_query(&c, "missing.test", DNS_T_A,
	    now_ms() + 2000, a), 0);
	assert_int_equal(a->rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(a->nrr, 0);
	assert_int_equal(dns_query(&c, "www.test", DNS_T_A, now_ms() + 2000,
	    a), 0);
	/* Ids and source ports vary from query to query. */
	for (int i = 0; i < 4; i++) {
		ids[i] = atomic_load(&dns_ok.ids[i]);
		ports[i] = atomic_load(&dns_ok.ports[i]);
	}
	assert_false(ids[0] == ids[1] && ids[1] == ids[2] && ids[2] == ids[3]);
	assert_false(ports[0] == ports[1] && ports[1] == ports[2] &&
	    ports[2] == ports[3]);
	/* Bad names never reach the wire. */
	assert_int_equal(dns_query(&c, "bad name.test", DNS_T_A,
	    now_ms() + 2000, a), CK_E_INVAL);

	/* CNAMEs: followed by the server, or cut and asked again. */
	assert_int_equal(dns_query(&c, "alias.test", DNS_T_A, now_ms() + 2000,
	    a), 0);
	assert_int_equal(a->ncname, 1);
	assert_string_equal(a->name, "www.test");
	assert_int_equal(a->nrr, 1);
	assert_int_equal(dns_query(&c, "cut.test", DNS_T_A, now_ms() + 2000,
	    a), 0);
	assert_int_equal(a->ncname, 1);
	assert_int_equal(a->nrr, 1);
	assert_string_equal(a->name, "www.test");
	assert_int_equal(dns_query(&c, "loop1.test", DNS_T_A, now_ms() + 2000,
	    a), CK_E_IO);
	assert_contains(ck_err_msg(), "CNAME");

	/* TC over UDP: the same question over TCP. */
	assert_int_equal(dns_client_init(&c, srv_tc, 500), 0);
	atomic_store(&dns_tc.ntcp, 0);
	assert_int_equal(dns_query(&c, "www.test", DNS_T_A, now_ms() + 2000,
	    a), 0);
	assert_int_equal(a->nrr, 1);
	assert_int_equal(atomic_load(&dns_tc.ntcp), 1);

	/* SERVFAIL is an error, not "no records". */
	assert_int_equal(dns_client_init(&c, srv_fail, 500), 0);
	assert_int_equal(dns_query(&c, "www.test", DNS_T_A, now_ms() + 2000,
	    a), CK_E_IO);
	assert_contains(ck_err_msg(), "SERVFAIL");
	assert_contains(ck_err_msg(), srv_fail);

	/* A silent server: an error at the deadline, not later. */
	assert_int_equal(dns_client_init(&c, srv_silent, 500), 0);
	t0 = now_ms();
	assert_int_equal(dns_query(&c, "www.test", DNS_T_A, t0 + 300, a),
	    CK_E_IO);
	assert_true(now_ms() - t0 >= 290 && now_ms() - t0 < 800);
	assert_contains(ck_err_msg(), "no answer in time");

	/* The next server answers when the first does not. */
	assert_int_equal(dns_client_init(&c, srv_failover, 100), 0);
	assert_int_equal(dns_query(&c, "www.test", DNS_T_A, now_ms() + 2000,
	    a), 0);
	assert_int_equal(a->nrr, 1);

	/* Connection refused (nothing on that UDP port). */
	{
		char dead[64];

		snprintf(dead, sizeof(dead), "127.0.0.1:%u", dead_port);
		assert_int_equal(dns_client_init(&c, dead, 200), 0);
		assert_int_equal(dns_query(&c, "www.test", DNS_T_A,
		    now_ms() + 1000, a), CK_E_IO);
	}
	free(a);
}

/* ---------------------------------------------------------- http-01 */

static void
test_http01(void **state)
{
	struct acme_vconf c = vconf(srv_ok);
	char want[300], line[512], host[256];

	(void)state;
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-good", 0, NULL,
	    NULL);
	http_last(line, host);
	assert_string_equal(line, "GET /.well-known/acme-challenge/tok-good "
	    "HTTP/1.1");
	snprintf(want, sizeof(want), "www.test:%u", http.port);
	assert_string_equal(host, want);
	/* Through a CNAME; and IPv6 first, then IPv4. */
	EXPECT_V(&c, "http-01", "dns", "alias.test", 0, "tok-good", 0, NULL,
	    NULL);
	EXPECT_V(&c, "http-01", "dns", "dual.test", 0, "tok-good", 0, NULL,
	    NULL);
	/* An ip identifier: the address itself, no DNS at all. */
	{
		struct acme_vconf nodns = vconf(srv_fail);

		EXPECT_V(&nodns, "http-01", "ip", "127.0.0.1", 0, "tok-good",
		    0, NULL, NULL);
		http_last(line, host);
		snprintf(want, sizeof(want), "127.0.0.1:%u", http.port);
		assert_string_equal(host, want);
	}
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-chunked", 0, NULL,
	    NULL);
	/* Through a server that sets TC: TCP. */
	{
		struct acme_vconf ctc = vconf(srv_tc);

		EXPECT_V(&ctc, "http-01", "dns", "www.test", 0, "tok-good", 0,
		    NULL, NULL);
	}

	/* A body that is no key authorization is not quoted back: the
	 * validator must not be a way to read other services' answers. */
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-wrong", CK_E_POLICY,
	    "incorrectResponse", "is not a key authorization");
	{
		char ka[300], detail[1024];
		const char *pt;
		keyauth_of("tok-wrong", ka, sizeof(ka));
		assert_int_not_equal(acme_validate(&c, "http-01", "dns",
		    "www.test", 0, "tok-wrong", ka, &pt, detail,
		    sizeof(detail)), 0);
		assert_null(strstr(detail, "something-else"));
	}
	/* Loopback only when allowed; link-local never. */
	{
		struct acme_vconf nl = vconf(srv_ok);

		nl.allow_loopback = 0;
		EXPECT_V(&nl, "http-01", "ip", "127.0.0.1", 0, "tok-good",
		    CK_E_IO, "connection", "can be connected to");
		EXPECT_V(&nl, "http-01", "dns", "www.test", 0, "tok-good",
		    CK_E_IO, "dns", "may not connect to");
		EXPECT_V(&c, "http-01", "ip", "169.254.169.254", 0,
		    "tok-good", CK_E_IO, "connection", "can be connected to");
		EXPECT_V(&c, "tls-alpn-01", "ip", "::ffff:169.254.169.254", 0,
		    "tok-good", CK_E_IO, "connection", "can be connected to");
	}
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-wrong", CK_E_POLICY,
	    "incorrectResponse", "127.0.0.1");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-404", CK_E_POLICY,
	    "unauthorized", "404");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-500", CK_E_POLICY,
	    "incorrectResponse", "status 500");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-big", CK_E_POLICY,
	    "incorrectResponse", "4096");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-bigeof",
	    CK_E_POLICY, "incorrectResponse", "4096");
}

static void
test_http01_redirects(void **state)
{
	struct acme_vconf c = vconf(srv_ok);
	char want[300], line[512], host[256];

	(void)state;
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-redir", 0, NULL,
	    NULL);
	http_last(line, host);
	snprintf(want, sizeof(want), "other.test:%u", http.port);
	assert_string_equal(host, want);
	assert_string_equal(line, "GET /final/tok-redir HTTP/1.1");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-redirnoport", 0,
	    NULL, NULL);
	http_last(line, host);
	assert_string_equal(line, "GET /final/tok-redirnoport HTTP/1.1");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-redirrel", 0, NULL,
	    NULL);
	/* Ten redirects are followed, eleven are not. */
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-hops10", 0, NULL,
	    NULL);
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-hops11",
	    CK_E_POLICY, "incorrectResponse", "more than 10 redirects");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-redirhttps",
	    CK_E_POLICY, "incorrectResponse", "only http://");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-redirport",
	    CK_E_POLICY, "incorrectResponse", "port 1");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-redirip",
	    CK_E_POLICY, "incorrectResponse", "IP addresses");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-redirnoloc",
	    CK_E_POLICY, "incorrectResponse", "Location");
	/* An ip identifier may be sent to its own address. */
	EXPECT_V(&c, "http-01", "ip", "127.0.0.1", 0, "tok-redirip", 0, NULL,
	    NULL);
}

static void
test_http01_failures(void **state)
{
	struct acme_vconf c = vconf(srv_ok), cs;
	int64_t t0;
	int n0;

	(void)state;
	/* Nothing listens on the port. */
	c.http_port = dead_port;
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok-good", CK_E_IO,
	    "connection", "Connection refused");
	c = vconf(srv_ok);
	/* An answer that never comes: bounded by the timeout. */
	cs = c;
	cs.timeout_ms = 500;
	t0 = now_ms();
	EXPECT_V(&cs, "http-01", "dns", "www.test", 0, "tok-slow", CK_E_IO,
	    "connection", "timed out");
	assert_true(now_ms() - t0 < 1500);
	/* DNS: no address, no name, SERVFAIL, silence. */
	EXPECT_V(&c, "http-01", "dns", "noaddr.test", 0, "tok-good", CK_E_IO,
	    "dns", "no A or AAAA");
	EXPECT_V(&c, "http-01", "dns", "missing.test", 0, "tok-good", CK_E_IO,
	    "dns", NULL);
	EXPECT_V(&c, "http-01", "dns", "zero.test", 0, "tok-good", CK_E_IO,
	    "dns", "may not connect to");
	cs = vconf(srv_fail);
	EXPECT_V(&cs, "http-01", "dns", "www.test", 0, "tok-good", CK_E_IO,
	    "dns", "SERVFAIL");
	cs = vconf(srv_silent);
	cs.timeout_ms = 400;
	t0 = now_ms();
	EXPECT_V(&cs, "http-01", "dns", "www.test", 0, "tok-good", CK_E_IO,
	    "dns", NULL);
	assert_true(now_ms() - t0 < 1200);
	/* A silent first server, then a good one. */
	cs = vconf(srv_failover);
	cs.timeout_ms = 2000;
	EXPECT_V(&cs, "http-01", "dns", "www.test", 0, "tok-good", 0, NULL,
	    NULL);

	/* Refused before anything is sent. */
	n0 = atomic_load(&http.nreq);
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok/../x", CK_E_INVAL,
	    "malformed", "token");
	EXPECT_V(&c, "http-01", "dns", "www.test", 0, "tok good", CK_E_INVAL,
	    "malformed", "token");
	EXPECT_V(&c, "http-01", "dns", "www.test", 1, "tok-good", CK_E_INVAL,
	    "rejectedIdentifier", "wildcard");
	EXPECT_V(&c, "http-02", "dns", "www.test", 0, "tok-good", CK_E_INVAL,
	    "malformed", "challenge type");
	EXPECT_V(&c, "http-01", "email", "www.test", 0, "tok-good",
	    CK_E_INVAL, "malformed", "identifier type");
	EXPECT_V(&c, "http-01", "dns", "www..test", 0, "tok-good", CK_E_INVAL,
	    "rejectedIdentifier", NULL);
	EXPECT_V(&c, "http-01", "ip", "127.0.0.256", 0, "tok-good",
	    CK_E_INVAL, "rejectedIdentifier", NULL);
	assert_int_equal(atomic_load(&http.nreq), n0);
	/* No DNS servers configured. */
	cs = vconf("");
	EXPECT_V(&cs, "http-01", "dns", "www.test", 0, "tok-good", CK_E_INVAL,
	    "serverInternal", "DNS");
}

/* ----------------------------------------------------------- dns-01 */

static void
test_dns01(void **state)
{
	struct acme_vconf c = vconf(srv_ok), cs;
	int64_t t0;

	(void)state;
	EXPECT_V(&c, "dns-01", "dns", "www.test", 0, "tok-dns", 0, NULL, NULL);
	/* A wildcard is validated on its base name. */
	EXPECT_V(&c, "dns-01", "dns", "www.test", 1, "tok-dns", 0, NULL, NULL);
	EXPECT_V(&c, "dns-01", "dns", "single.test", 0, "tok-dns", 0, NULL,
	    NULL);
	/* Through a CNAME at _acme-challenge. */
	EXPECT_V(&c, "dns-01", "dns", "calias.test", 0, "tok-dns", 0, NULL,
	    NULL);
	cs = vconf(srv_tc);
	EXPECT_V(&cs, "dns-01", "dns", "www.test", 0, "tok-dns", 0, NULL,
	    NULL);
	/* Another key authorization's digest is not this one's. */
	EXPECT_V(&c, "dns-01", "dns", "www.test", 0, "tok-other",
	    CK_E_POLICY, "incorrectResponse", "\"unrelated\"");
	EXPECT_V(&c, "dns-01", "dns", "other.test", 0, "tok-dns", CK_E_POLICY,
	    "incorrectResponse", "\"alsowrong\"");
	EXPECT_V(&c, "dns-01", "dns", "none.test", 0, "tok-dns", CK_E_POLICY,
	    "unauthorized", "_acme-challenge.none.test");
	EXPECT_V(&c, "dns-01", "ip", "127.0.0.1", 0, "tok-dns", CK_E_INVAL,
	    "rejectedIdentifier", "dns-01");
	cs = vconf(srv_fail);
	EXPECT_V(&cs, "dns-01", "dns", "www.test", 0, "tok-dns", CK_E_IO,
	    "dns", "SERVFAIL");
	cs = vconf(srv_silent);
	cs.timeout_ms = 400;
	t0 = now_ms();
	EXPECT_V(&cs, "dns-01", "dns", "www.test", 0, "tok-dns", CK_E_IO,
	    "dns", "no answer in time");
	assert_true(now_ms() - t0 < 1200);
}

/* ------------------------------------------------------ tls-alpn-01 */

static void
expect_tls(enum tmode mode, const char *idtype, const char *id, int want_r,
    const char *want_ptype, const char *want_in_detail, int line)
{
	struct acme_vconf c = vconf(srv_ok);

	atomic_store(&tls.mode, mode);
	expect_v(&c, "tls-alpn-01", idtype, id, 0, "tok-tls", want_r,
	    want_ptype, want_in_detail, line);
}
#define EXPECT_TLS(m, it, id, r, pt, det) \
	expect_tls((m), (it), (id), (r), (pt), (det), __LINE__)

static void
test_tlsalpn01(void **state)
{
	struct acme_vconf c = vconf(srv_ok);
	char sni[256];
	unsigned char alpn[64];
	unsigned alpnlen;

	(void)state;
	EXPECT_TLS(T_GOOD, "dns", "www.test", 0, NULL, NULL);
	tls_last(sni, alpn, &alpnlen);
	assert_string_equal(sni, "www.test");
	/* The only protocol offered is acme-tls/1. */
	assert_int_equal(alpnlen, 11);
	assert_memory_equal(alpn, "\x0a" "acme-tls/1", 11);
	EXPECT_TLS(T_IP, "ip", "127.0.0.1", 0, NULL, NULL);
	tls_last(sni, alpn, &alpnlen);
	assert_string_equal(sni, "1.0.0.127.in-addr.arpa");

	EXPECT_TLS(T_WRONG_DIGEST, "dns", "www.test", CK_E_POLICY,
	    "incorrectResponse", "SHA-256");
	EXPECT_TLS(T_NONCRIT, "dns", "www.test", CK_E_POLICY,
	    "incorrectResponse", "not critical");
	EXPECT_TLS(T_TWO_SANS, "dns", "www.test", CK_E_POLICY,
	    "incorrectResponse", "2 subjectAltName");
	EXPECT_TLS(T_OTHER_NAME, "dns", "www.test", CK_E_POLICY,
	    "incorrectResponse", "DNS:other.test");
	EXPECT_TLS(T_NO_EXT, "dns", "www.test", CK_E_POLICY,
	    "incorrectResponse", "no acmeIdentifier");
	EXPECT_TLS(T_IP, "dns", "www.test", CK_E_POLICY, "incorrectResponse",
	    "not a dNSName");
	EXPECT_TLS(T_GOOD, "ip", "127.0.0.1", CK_E_POLICY,
	    "incorrectResponse", "not a iPAddress");
	EXPECT_TLS(T_NO_ALPN, "dns", "www.test", CK_E_IO, "tls",
	    "acme-tls/1");
	/* A wrong key authorization is a wrong digest. */
	atomic_store(&tls.mode, T_GOOD);
	EXPECT_V(&c, "tls-alpn-01", "dns", "www.test", 0, "tok-other",
	    CK_E_POLICY, "incorrectResponse", "SHA-256");
	/* No TLS server there. */
	c.tls_port = dead_port;
	EXPECT_V(&c, "tls-alpn-01", "dns", "www.test", 0, "tok-tls", CK_E_IO,
	    "connection", "Connection refused");
	/* Not TLS at all: the HTTP server answers the ClientHello with
	 * nothing and closes. */
	c = vconf(srv_ok);
	c.tls_port = http.port;
	c.timeout_ms = 2500;
	EXPECT_V(&c, "tls-alpn-01", "dns", "www.test", 0, "tok-tls", CK_E_IO,
	    "tls", NULL);
}

static void
test_reverse_name(void **state)
{
	char out[80];

	(void)state;
	assert_int_equal(acme_validate_reverse_name("192.0.2.5", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "5.2.0.192.in-addr.arpa");
	assert_int_equal(acme_validate_reverse_name("2001:db8::567:89ab", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
	    ".0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(acme_validate_reverse_name("www.test", out,
	    sizeof(out)), CK_E_INVAL);
	assert_int_equal(acme_validate_reverse_name("::1", out, 20),
	    CK_E_INVAL);
}

/* -------------------------------------------------------------- CAA */

static void
test_caa(void **state)
{
	struct acme_vconf c = vconf(srv_ok), cs;

	(void)state;
	/* No CAA anywhere up to the TLD: allowed. */
	EXPECT_CAA(&c, "www.test", 0, NULL, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "ours.test", 0, NULL, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "ours.test", 1, NULL, "dns-01", 0, NULL, NULL);
	/* Found on a parent. */
	EXPECT_CAA(&c, "a.b.ours.test", 0, NULL, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "theirs.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    "other-ca.example");
	EXPECT_CAA(&c, "sub.theirs.test", 0, NULL, "http-01", CK_E_POLICY,
	    "caa", "CAA at theirs.test");
	/* issuewild governs wildcards when present. */
	EXPECT_CAA(&c, "wild.test", 0, NULL, "dns-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "wild.test", 1, NULL, "dns-01", CK_E_POLICY, "caa",
	    "issuewild");
	EXPECT_CAA(&c, "wild2.test", 0, NULL, "dns-01", CK_E_POLICY, "caa",
	    NULL);
	EXPECT_CAA(&c, "wild2.test", 1, NULL, "dns-01", 0, NULL, NULL);
	/* Critical flag on a property not understood. */
	EXPECT_CAA(&c, "crit.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    "tbs");
	EXPECT_CAA(&c, "noncrit.test", 0, NULL, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "critiodef.test", 0, NULL, "http-01", 0, NULL, NULL);
	/* accounturi (RFC 8657). */
	EXPECT_CAA(&c, "acct.test", 0, ACCT1, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "acct.test", 0, "https://ca.example/acme/acct/2",
	    "http-01", CK_E_POLICY, "caa", "accounturi");
	EXPECT_CAA(&c, "acct.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    "accounturi");
	EXPECT_CAA(&c, "acct2.test", 0, ACCT1, "http-01", CK_E_POLICY, "caa",
	    "twice");
	/* validationmethods (RFC 8657). */
	EXPECT_CAA(&c, "meth.test", 0, NULL, "dns-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "meth.test", 0, NULL, "tls-alpn-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "meth.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    "validationmethods");
	/* Unknown parameters and white space are fine. */
	EXPECT_CAA(&c, "params.test", 0, NULL, "http-01", 0, NULL, NULL);
	/* "issue ;" forbids everyone; malformed values authorise nobody. */
	EXPECT_CAA(&c, "forbid.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    NULL);
	EXPECT_CAA(&c, "malformed.test", 0, NULL, "http-01", CK_E_POLICY,
	    "caa", NULL);
	EXPECT_CAA(&c, "trailing.test", 0, NULL, "http-01", CK_E_POLICY,
	    "caa", NULL);
	EXPECT_CAA(&c, "dotted.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    NULL);
	/* Tags and issuer names compare case-insensitively. */
	EXPECT_CAA(&c, "case.test", 0, NULL, "http-01", 0, NULL, NULL);
	/* No issue property at all. */
	EXPECT_CAA(&c, "iodef.test", 0, NULL, "http-01", 0, NULL, NULL);
	/* One of several suffices; a CNAME leads to the target's set. */
	EXPECT_CAA(&c, "two.test", 0, NULL, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "calias.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    NULL);
	/* Another CA's identity. */
	cs = c;
	cs.caa_identity = "other-ca.example";
	EXPECT_CAA(&cs, "theirs.test", 0, NULL, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&cs, "ours.test", 0, NULL, "http-01", CK_E_POLICY, "caa",
	    NULL);
	/* Lookup errors forbid issuance. */
	cs = vconf(srv_fail);
	EXPECT_CAA(&cs, "www.test", 0, NULL, "http-01", CK_E_IO, "dns",
	    "SERVFAIL");
	cs = vconf(srv_silent);
	cs.timeout_ms = 300;
	EXPECT_CAA(&cs, "www.test", 0, NULL, "http-01", CK_E_IO, "dns", NULL);
	/* Not configured: no lookup at all (the servers would fail it). */
	cs = vconf(srv_fail);
	cs.caa_identity = NULL;
	EXPECT_CAA(&cs, "theirs.test", 0, NULL, "http-01", 0, NULL, NULL);
	cs.caa_identity = "";
	EXPECT_CAA(&cs, "theirs.test", 0, NULL, "http-01", 0, NULL, NULL);
	EXPECT_CAA(&c, "bad..name", 0, NULL, "http-01", CK_E_INVAL,
	    "rejectedIdentifier", NULL);
}

int
main(void)
{
	const struct CMUnitTest parser[] = {
		cmocka_unit_test(test_parse_a),
		cmocka_unit_test(test_parse_txt_caa_aaaa),
		cmocka_unit_test(test_parse_cname),
		cmocka_unit_test(test_parse_rcodes),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_client_init),
		cmocka_unit_test(test_reverse_name),
	};
	const struct CMUnitTest net[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_http01),
		cmocka_unit_test(test_http01_redirects),
		cmocka_unit_test(test_http01_failures),
		cmocka_unit_test(test_dns01),
		cmocka_unit_test(test_tlsalpn01),
		cmocka_unit_test(test_caa),
	};
	const struct CMUnitTest corpus[] = {
		cmocka_unit_test(write_corpus),
	};
	int fails;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("CK_DNS_CORPUS_DIR") != NULL) {
		fails = cmocka_run_group_tests_name("dns-corpus", corpus, NULL,
		    NULL);
	} else {
		fails = cmocka_run_group_tests_name("dns-parser", parser, NULL,
		    NULL);
		fails += cmocka_run_group_tests_name("validate", net,
		    group_setup, group_teardown);
	}
	tu_keys_free();
	return fails;
}
