/*
 * dns.h - a small stub DNS client for ACME challenge validation and CAA
 * checks (RFC 1035, RFC 3596, RFC 6891, RFC 8659).
 *
 * Deliberately not the system resolver: no libresolv, no
 * /etc/resolv.conf, no /etc/hosts. Queries go only to the servers the
 * caller names ("ADDR:PORT", IPv4 or "[v6]:port"), which are expected to
 * be recursive resolvers: RD is set, answers are taken as they come.
 *
 *  - UDP first, from a fresh connected socket (random source port chosen
 *    by the kernel) with a random 16-bit id (OpenSSL's RNG) and an EDNS0
 *    OPT record offering 1232 bytes; TCP when the answer has TC set.
 *  - A datagram whose id, question or flags do not fit is ignored and the
 *    wait goes on (an off-path spoofer must also guess the port).
 *  - Each try is bounded by a per-try timeout and by the caller's overall
 *    deadline; servers are tried in order, the list twice.
 *  - SERVFAIL, REFUSED and the like, timeouts and malformed answers are
 *    errors; NXDOMAIN and NODATA are answers with no records (CAA needs
 *    that distinction: RFC 8659 refuses issuance on a lookup error).
 *  - CNAME chains in the answer section are followed (at most
 *    DNS_MAX_CNAME links in all); when a chain ends without records of
 *    the asked type, its end is asked for in a new query.
 *
 * The response parser, dns_parse_response(), is a pure function over
 * untrusted bytes: every read is bounds-checked, compressed names must
 * point strictly backwards (so they cannot loop) and decode to at most
 * 255 bytes. Only records of the asked type owned by the question name
 * (or the end of its CNAME chain) are kept, each checked for its type's
 * form. It has a fuzz target, tests/fuzz/fuzz_dns.c.
 *
 * The dns_net_* helpers are the non-blocking socket primitives with
 * deadlines that this client uses; acme_validate.c uses them too.
 * Deadlines are absolute times of dns_clock_ms().
 *
 * XXX No DNSSEC validation: the configured resolvers are trusted.
 */
#ifndef CK_PROTO_DNS_H
#define CK_PROTO_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#define DNS_MAX_SERVERS 8
#define DNS_MAX_CNAME 8		/* CNAME links followed for one query */
#define DNS_MAX_RR 64		/* records kept from one answer */
#define DNS_DATA_MAX 16384	/* their RDATA, in all */
#define DNS_NAME_WIRE_MAX 255	/* RFC 1035 2.3.4 */
#define DNS_NAME_TEXT_MAX 1024	/* text form, with \DDD escapes */
#define DNS_TRY_TIMEOUT_MS 2000	/* default wait for one UDP or TCP try */

/* The record types this client asks for. */
enum dns_type {
	DNS_T_A = 1,
	DNS_T_CNAME = 5,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_CAA = 257
};

/* RCODEs (RFC 1035 4.1.1) that matter here. */
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_REFUSED 5

/* "A", "TXT", ...; "TYPE<n>" style names are not built: "?" for others. */
const char *dns_type_name(uint16_t type);

/* "NOERROR", "SERVFAIL", ...; "RCODE?" for the others. */
const char *dns_rcode_name(int rcode);

/* One record of the asked type; its RDATA is data[off .. off+len). */
struct dns_rr {
	uint16_t type;
	uint32_t ttl;
	uint16_t off;
	uint16_t len;
};

/*
 * A parsed answer. Self-contained: nothing points into the message.
 * When truncated is set, or rcode is neither NOERROR nor NXDOMAIN, only
 * rcode and truncated are meaningful.
 */
struct dns_answer {
	int rcode;
	int truncated;		/* TC was set: ask again over TCP */
	unsigned ncname;	/* CNAME links followed */
	char name[DNS_NAME_TEXT_MAX]; /* owner of the records: the question
					 or the end of its CNAME chain */
	unsigned char wname[DNS_NAME_WIRE_MAX]; /* the same, wire form,
						   lower case */
	size_t wnamelen;
	size_t nrr;
	struct dns_rr rr[DNS_MAX_RR];
	size_t datalen;
	unsigned char data[DNS_DATA_MAX];
};

/*
 * Parse the response in buf[0..len) to the query (qname, qtype, id).
 * qname is text ("_acme-challenge.example.com", a trailing dot allowed;
 * letters, digits, '-' and '_' only). Returns:
 *   0 - the response answers that question: see out->rcode,
 *       out->truncated, and the records of qtype in out->rr (for
 *       NOERROR; none for NODATA and NXDOMAIN);
 *   CK_E_NOTFOUND - well-formed enough, but not an answer to this
 *       question (id, QR, question name, type or class differ);
 *   CK_E_PARSE - malformed: cut short, a bad name or compression
 *       pointer, a record of qtype that is not of its type's form, a CNAME
 *       chain longer than DNS_MAX_CNAME, NXDOMAIN with records;
 *   CK_E_TOOBIG - more records than DNS_MAX_RR or DNS_DATA_MAX bytes;
 *   CK_E_INVAL - qname is not a name this client can ask for.
 * ck_err_msg() says why. out is always written (zeroed first).
 */
int dns_parse_response(const unsigned char *buf, size_t len,
    const char *qname, uint16_t qtype, uint16_t id, struct dns_answer *out);

/* The address of A/AAAA record i into out; returns 4 or 16 (0 if record
 * i is neither or out of range). */
size_t dns_rr_addr(const struct dns_answer *a, size_t i,
    unsigned char out[16]);

/*
 * The character-strings of TXT record i, one per call: *pos starts at 0;
 * returns 1 and sets *s (not NUL-terminated) and *slen, or 0 when there
 * are no more (or i is not a TXT record).
 */
int dns_rr_txt_next(const struct dns_answer *a, size_t i, size_t *pos,
    const unsigned char **s, size_t *slen);

/* A CAA record (RFC 8659 4.1); value points into the answer. */
struct dns_caa {
	unsigned flags;
	char tag[16];		/* 1..15 letters and digits, NUL-terminated,
				   as sent (tags compare case-insensitively) */
	const unsigned char *value;
	size_t vlen;
};

/* CAA record i into out. 0, or CK_E_INVAL if i is not a CAA record. */
int dns_rr_caa(const struct dns_answer *a, size_t i, struct dns_caa *out);

/* ---- the client ---- */

struct dns_client {
	struct sockaddr_storage srv[DNS_MAX_SERVERS];
	socklen_t srvlen[DNS_MAX_SERVERS];
	size_t nsrv;
	int try_timeout_ms;	/* one UDP or TCP try */
};

/*
 * Set up a client for the servers in `servers`: a list separated by
 * commas or white space of "A.B.C.D:PORT" or "[IPV6]:PORT" (":PORT" may be
 * left out for 53). try_timeout_ms bounds each try (<= 0:
 * DNS_TRY_TIMEOUT_MS). 0, or CK_E_PARSE naming the entry that is wrong
 * (none at all, more than DNS_MAX_SERVERS, a bad address or port).
 */
int dns_client_init(struct dns_client *c, const char *servers,
    int try_timeout_ms);

/*
 * Ask the configured servers for the records of qtype at name (as for
 * dns_parse_response()), following CNAMEs, until deadline_ms. 0 with
 * *out filled: out->rcode NOERROR or NXDOMAIN, out->nrr records (0:
 * NODATA or NXDOMAIN). Otherwise an error, ck_err_msg() saying what each
 * server did: CK_E_IO (no answer in time, network errors, SERVFAIL,
 * REFUSED and other RCODEs, malformed answers), CK_E_INVAL (bad name),
 * CK_E_NOMEM. Blocks at most until deadline_ms. Thread-safe.
 */
int dns_query(const struct dns_client *c, const char *name, uint16_t qtype,
    int64_t deadline_ms, struct dns_answer *out);

/* ---- non-blocking sockets with deadlines ---- */

/* Milliseconds of CLOCK_MONOTONIC: the clock of every deadline here. */
int64_t dns_clock_ms(void);

/* "1.2.3.4:53" or "[::1]:53" into buf. */
void dns_addr_format(const struct sockaddr *sa, char *buf, size_t bufsz);

/*
 * A new non-blocking socket of socktype (SOCK_STREAM, SOCK_DGRAM)
 * connected to sa by deadline_ms, into *fd (the caller closes it). 0, or
 * CK_E_IO ("timed out", "Connection refused", ... naming the address).
 */
int dns_net_connect(const struct sockaddr *sa, socklen_t salen,
    int socktype, int64_t deadline_ms, int *fd);

/* Wait until fd is ready for events (POLLIN/POLLOUT). 0, or CK_E_IO on
 * time-out or poll error. */
int dns_net_wait(int fd, short events, int64_t deadline_ms);

/* Send all n bytes (never raising SIGPIPE). 0 or CK_E_IO. */
int dns_net_send(int fd, const void *buf, size_t n, int64_t deadline_ms);

/* Receive at most cap (> 0) bytes once data is there: 0 and *got (0 at
 * end of stream), or CK_E_IO. */
int dns_net_recv(int fd, void *buf, size_t cap, int64_t deadline_ms,
    size_t *got);

#endif
