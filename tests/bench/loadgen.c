/*
 * loadgen - a small, cheap HTTP/1.1 load generator for certkeep's benchmarks.
 *
 * Closed loop: C keep-alive connections (plain TCP or TLS via OpenSSL 3),
 * each sending its next request as soon as the previous response is in.
 * Non-blocking sockets driven by epoll (edge-triggered), one thread by
 * default, so that the generator costs little CPU next to the server under
 * test. Every request is prepared before the run starts: a POST whose JSON
 * body is a template with each CSR of a pool put in it (JSON-escaped), or a
 * GET of one path of a list (OCSP GET requests). Responses are parsed
 * (Content-Length, chunked, or read to close), checked (2xx and, if asked,
 * a substring of the body), and their latencies go into a log-linear
 * histogram (< 1% error).
 *
 * Build: tests/bench/build.sh (cc -O2, -lssl -lcrypto -lpthread).
 * Usage: loadgen --help
 *
 * Exit status: 0 when at least one request succeeded and none failed,
 * 1 when any request failed (or none succeeded), 2 on a usage or setup
 * error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);
	memcpy(p, s, n);
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A growable byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->p && b->len + extra <= b->cap)
		return;
	if (extra > SIZE_MAX / 4 - b->len)
		die("buffer too large");
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

static void buf_add(struct buf *b, const void *d, size_t n)
{
	buf_reserve(b, n + 1);
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_addf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("formatting failed");
	if ((size_t)n < sizeof tmp) {
		buf_add(b, tmp, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open %s: %s", path, strerror(errno));
	struct buf b = {0};
	char tmp[8192];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_add(&b, tmp, n);
	if (ferror(f))
		die("cannot read %s", path);
	fclose(f);
	if (!b.p)
		buf_add(&b, "", 0);
	*len = b.len;
	return b.p;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;
	if (!s || !*s)
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return false;
	if (*end == 's' && end[1] == '\0')
		;
	else if (*end == 'm' && end[1] == 's' && end[2] == '\0')
		v /= 1000.0;
	else if (*end == 'm' && end[1] == '\0')
		v *= 60.0;
	else if (*end)
		return false;
	*out = v;
	return true;
}

/* ------------------------------------------------------------------------ */
/* Latency histogram: microseconds, log-linear, 128 sub-buckets per power   */
/* of two above 256 us (relative error < 0.8%).                            */

#define H_SUB_BITS 7
#define H_SUB (1u << H_SUB_BITS)
#define H_LINEAR (2u * H_SUB)
#define H_BUCKETS (H_LINEAR + 48u * H_SUB)

struct hist {
	uint64_t b[H_BUCKETS];
	uint64_t count, sum_us, max_us, min_us;
};

static unsigned hist_index(uint64_t us)
{
	if (us < H_LINEAR)
		return (unsigned)us;
	unsigned msb = 63u - (unsigned)__builtin_clzll(us);
	unsigned shift = msb - H_SUB_BITS;
	unsigned idx = (shift + 1) * H_SUB + (unsigned)((us >> shift) - H_SUB);
	return idx < H_BUCKETS ? idx : H_BUCKETS - 1;
}

/* Highest value that falls into bucket idx. */
static uint64_t hist_upper(unsigned idx)
{
	if (idx < H_LINEAR)
		return idx;
	unsigned shift = idx / H_SUB - 1;
	uint64_t sub = idx % H_SUB + H_SUB;
	return ((sub + 1) << shift) - 1;
}

static void hist_add(struct hist *h, uint64_t us)
{
	h->b[hist_index(us)]++;
	if (h->count == 0 || us < h->min_us)
		h->min_us = us;
	if (us > h->max_us)
		h->max_us = us;
	h->count++;
	h->sum_us += us;
}

static void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < H_BUCKETS; i++)
		dst->b[i] += src->b[i];
	if (src->count && (dst->count == 0 || src->min_us < dst->min_us))
		dst->min_us = src->min_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
	dst->count += src->count;
	dst->sum_us += src->sum_us;
}

static uint64_t hist_pct(const struct hist *h, double pct)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)((double)h->count * pct / 100.0 + 0.999999);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = hist_upper(i);
			return v > h->max_us ? h->max_us : v;
		}
	}
	return h->max_us;
}

/* ------------------------------------------------------------------------ */
/* Options and the prepared requests                                        */

enum err_class {
	E_CONNECT,	/* TCP connect failed */
	E_TLS,		/* TLS handshake failed (including verification) */
	E_WRITE,	/* sending the request failed */
	E_READ,		/* receiving failed (reset, TLS error) */
	E_CLOSED,	/* the peer closed before the response was complete */
	E_TIMEOUT,	/* no complete response within --timeout */
	E_PARSE,	/* malformed response */
	E_STATUS3,	/* 3xx */
	E_STATUS4,	/* 4xx */
	E_STATUS5,	/* 5xx and anything else that is not 2xx */
	E_EXPECT,	/* 2xx without the --expect substring */
	E_COUNT
};

static const char *const err_names[E_COUNT] = {
	"connect", "tls", "write", "read", "closed", "timeout", "parse",
	"status_3xx", "status_4xx", "status_5xx", "expect",
};

struct request {
	const char *data;
	size_t len;
};

static struct {
	const char *url;
	bool tls;
	char *host;		/* as in the URL, without brackets */
	char *hostport;		/* Host: header value */
	char *port;
	char *path;
	const char *verify_name;
	const char *cacert;
	bool insecure;
	bool tls_resume;
	unsigned concurrency;
	unsigned threads;
	double duration;	/* seconds; 0: not set */
	double warmup;
	double timeout;
	uint64_t requests;	/* 0: duration mode */
	const char *tmpl;
	const char *csr_dir;
	const char *get_file;
	const char *body_file;
	const char *body_dir;
	const char *content_type;
	const char *expect;
	size_t expect_len;
	struct buf headers;	/* extra header lines, each ending in CRLF */
	bool keepalive;
	bool json;
	bool allow_remote;
	unsigned show_errors;
	const char *label;
} opt = {
	.concurrency = 1,
	.threads = 1,
	.timeout = 30.0,
	.tls_resume = true,
	.keepalive = true,
	.content_type = "application/json",
};

static struct request *reqs;
static size_t nreqs;
static const char *method_name = "GET";

static struct sockaddr_storage peer_addr;
static socklen_t peer_addrlen;
static SSL_CTX *ssl_ctx;
static bool verify_is_ip;

/* Run-wide state shared by the workers. */
static atomic_uint_fast64_t g_issued;	/* requests handed out */
static atomic_uint_fast64_t g_done;	/* requests finished (ok or failed) */
static atomic_bool g_stop;
static atomic_uint g_shown;		/* failing responses shown so far */
static atomic_bool g_tls_err_shown;
static atomic_bool g_conn_err_shown;
static uint64_t g_start_ns, g_measure_ns, g_deadline_ns;
static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	g_interrupted = 1;
	atomic_store(&g_stop, true);
}

/* JSON-escape s[0..n) into b (without the quotes). */
static void json_escape(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		switch (ch) {
		case '"': buf_adds(b, "\\\""); break;
		case '\\': buf_adds(b, "\\\\"); break;
		case '\n': buf_adds(b, "\\n"); break;
		case '\r': buf_adds(b, "\\r"); break;
		case '\t': buf_adds(b, "\\t"); break;
		default:
			if (ch < 0x20)
				buf_addf(b, "\\u%04x", ch);
			else
				buf_add(b, &s[i], 1);
		}
	}
}

/* Substitute every %CSR% of the template with the escaped PEM. */
static void fill_template(struct buf *body, const char *tmpl, const char *pem, size_t pemlen)
{
	const char *p = tmpl;
	const char *hit;
	while ((hit = strstr(p, "%CSR%")) != NULL) {
		buf_add(body, p, (size_t)(hit - p));
		json_escape(body, pem, pemlen);
		p = hit + 5;
	}
	buf_adds(body, p);
}

static void add_request(const char *method, const char *path, const char *body, size_t bodylen)
{
	struct buf r = {0};
	buf_addf(&r, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: certkeep-loadgen\r\n"
		 "Accept: */*\r\n", method, path, opt.hostport);
	if (!opt.keepalive)
		buf_adds(&r, "Connection: close\r\n");
	if (opt.headers.len)
		buf_add(&r, opt.headers.p, opt.headers.len);
	if (body) {
		buf_addf(&r, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", opt.content_type, bodylen);
		buf_add(&r, body, bodylen);
	} else {
		buf_adds(&r, "\r\n");
	}
	reqs = xrealloc(reqs, (nreqs + 1) * sizeof *reqs);
	reqs[nreqs].data = r.p;
	reqs[nreqs].len = r.len;
	nreqs++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The sorted names of DIR's files (not starting with '.'), those ending in
 * one of the suffixes if any are given. */
static char **list_dir(const char *dir, const char *const *suffixes, size_t *count)
{
	DIR *d = opendir(dir);
	if (!d)
		die("cannot open %s: %s", dir, strerror(errno));
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		bool want = !suffixes;
		for (size_t i = 0; suffixes && suffixes[i] && !want; i++)
			want = has_suffix(de->d_name, suffixes[i]);
		if (!want)
			continue;
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	*count = n;
	return names;
}

static void load_csr_requests(void)
{
	static const char *const sfx[] = {".pem", ".csr", NULL};
	size_t nnames;
	char **names = list_dir(opt.csr_dir, sfx, &nnames);
	if (nnames == 0)
		die("no *.pem or *.csr files in %s", opt.csr_dir);
	struct buf path = {0}, body = {0};
	for (size_t i = 0; i < nnames; i++) {
		path.len = 0;
		buf_addf(&path, "%s/%s", opt.csr_dir, names[i]);
		size_t len;
		char *pem = read_file(path.p, &len);
		if (!memmem(pem, len, "-----BEGIN", 10))
			die("%s holds no PEM", path.p);
		/* Trim trailing whitespace: the CSR goes into JSON as it is. */
		while (len > 0 && isspace((unsigned char)pem[len - 1]))
			len--;
		body.len = 0;
		fill_template(&body, opt.tmpl, pem, len);
		add_request(method_name, opt.path, body.p, body.len);
		free(pem);
		free(names[i]);
	}
	free(names);
	free(path.p);
	free(body.p);
}

/* --body-dir: every file is one POST body, sent as it is. */
static void load_body_requests(void)
{
	size_t nnames;
	char **names = list_dir(opt.body_dir, NULL, &nnames);
	if (nnames == 0)
		die("no files in --body-dir %s", opt.body_dir);
	struct buf path = {0};
	for (size_t i = 0; i < nnames; i++) {
		path.len = 0;
		buf_addf(&path, "%s/%s", opt.body_dir, names[i]);
		size_t len;
		char *body = read_file(path.p, &len);
		add_request("POST", opt.path, body, len);
		free(body);
		free(names[i]);
	}
	free(names);
	free(path.p);
}

static void load_get_requests(void)
{
	size_t len;
	char *text = read_file(opt.get_file, &len);
	struct buf path = {0};
	char *save = NULL;
	for (char *line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		while (isspace((unsigned char)*line))
			line++;
		size_t n = strlen(line);
		while (n > 0 && isspace((unsigned char)line[n - 1]))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		path.len = 0;
		if (strncmp(line, "http://", 7) == 0 || strncmp(line, "https://", 8) == 0) {
			/* A whole URL: keep its path (the target is --url's). */
			const char *p = strchr(line + (line[4] == 's' ? 8 : 7), '/');
			buf_adds(&path, p ? p : "/");
		} else if (line[0] == '/') {
			buf_adds(&path, line);
		} else {
			/* Relative: appended to the --url path. */
			buf_adds(&path, opt.path);
			if (path.len == 0 || path.p[path.len - 1] != '/')
				buf_adds(&path, "/");
			buf_adds(&path, line);
		}
		add_request("GET", path.p, NULL, 0);
	}
	free(path.p);
	free(text);
	if (nreqs == 0)
		die("no paths in --get-file %s", opt.get_file);
}

/* ------------------------------------------------------------------------ */
/* URL and address                                                          */

static void parse_url(const char *url)
{
	const char *p;
	if (strncmp(url, "http://", 7) == 0) {
		opt.tls = false;
		p = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		opt.tls = true;
		p = url + 8;
	} else {
		die("--url must start with http:// or https://");
	}
	const char *hend, *after;
	if (*p == '[') {
		hend = strchr(p, ']');
		if (!hend)
			die("bad IPv6 literal in --url");
		opt.host = strndup(p + 1, (size_t)(hend - p - 1));
		after = hend + 1;
	} else {
		hend = p + strcspn(p, ":/?");
		opt.host = strndup(p, (size_t)(hend - p));
		after = hend;
	}
	if (!opt.host || !*opt.host)
		die("no host in --url");
	const char *pathp = strchr(after, '/');
	if (*after == ':') {
		size_t n = pathp ? (size_t)(pathp - after - 1) : strlen(after + 1);
		opt.port = strndup(after + 1, n);
	} else {
		opt.port = xstrdup(opt.tls ? "443" : "80");
	}
	uint64_t portnum;
	if (!parse_u64(opt.port, &portnum) || portnum == 0 || portnum > 65535)
		die("bad port in --url");
	opt.path = xstrdup(pathp ? pathp : "/");
	opt.hostport = strndup(p, (size_t)((pathp ? pathp : p + strlen(p)) - p));
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return s6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static void resolve(void)
{
	struct addrinfo hints = {0}, *res;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
	if (rc != 0)
		die("cannot resolve %s: %s", opt.host, gai_strerror(rc));
	memcpy(&peer_addr, res->ai_addr, res->ai_addrlen);
	peer_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	if (!opt.allow_remote && !is_loopback((struct sockaddr *)&peer_addr))
		die("%s is not a loopback address; this tool loads local servers only "
		    "(--allow-remote to override)", opt.host);
}

/* ------------------------------------------------------------------------ */
/* TLS                                                                      */

static void tls_setup(void)
{
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!ssl_ctx)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read what the socket has in one call rather than a record header,
	 * then its body: a response in two records took four reads. Safe
	 * because a connection reads until SSL_read() wants more. */
	SSL_CTX_set_read_ahead(ssl_ctx, 1);
	if (opt.insecure) {
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
		if (opt.cacert) {
			if (SSL_CTX_load_verify_locations(ssl_ctx, opt.cacert, NULL) != 1) {
				ERR_print_errors_fp(stderr);
				die("cannot load --cacert %s", opt.cacert);
			}
		} else if (SSL_CTX_set_default_verify_paths(ssl_ctx) != 1) {
			die("cannot load the default CA store");
		}
	}
	if (!opt.verify_name)
		opt.verify_name = opt.host;
	unsigned char tmp[16];
	verify_is_ip = inet_pton(AF_INET, opt.verify_name, tmp) == 1 ||
		       inet_pton(AF_INET6, opt.verify_name, tmp) == 1;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */

enum cstate {
	S_IDLE,		/* nothing to do (stopped or no requests left) */
	S_BACKOFF,	/* waiting to reconnect after a connect failure */
	S_CONNECTING,
	S_HANDSHAKE,
	S_SENDING,
	S_RECEIVING,
};

enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER };

#define MAX_HEADER (64u * 1024u)
#define MAX_RESPONSE (16u * 1024u * 1024u)

struct worker;

struct conn {
	struct worker *w;
	int fd;
	SSL *ssl;
	SSL_SESSION *sess;
	enum cstate state;
	const struct request *req;
	size_t woff;
	uint64_t t_start;	/* when the request was handed out */
	uint64_t retry_at;
	uint64_t served;	/* responses on the current connection */
	bool fresh;		/* connection opened for this request */
	/* response */
	struct buf rb;
	size_t scan;		/* header search resumes here */
	size_t hdr_end;		/* 0 until the header is in */
	int status;
	bool close_after;
	bool chunked;
	bool until_eof;
	uint64_t clen;
	size_t pos;		/* chunked: parse position in rb */
	enum chunk_state cst;
	uint64_t chunk_rem;
	struct buf body;	/* chunked: decoded body */
};

struct stats {
	struct hist h;
	uint64_t ok;
	uint64_t err[E_COUNT];
	uint64_t unfinished;	/* completed after the deadline or in flight */
	uint64_t connects, handshakes, resumed;
	uint64_t bytes_in, bytes_out;
	uint64_t last_done_ns;
};

struct worker {
	unsigned id;
	int ep;
	struct conn *conns;
	unsigned nconns;
	struct stats st;
	pthread_t thread;
};

static void conn_next(struct conn *c);
static void conn_drive(struct conn *c, uint32_t ev);

static bool counted(uint64_t t_start, uint64_t t_end)
{
	return t_start >= g_measure_ns && (opt.requests || t_end <= g_deadline_ns);
}

static void request_finished(void)
{
	if (opt.requests && atomic_fetch_add(&g_done, 1) + 1 >= opt.requests)
		atomic_store(&g_stop, true);
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		if (c->served > 0 && !c->req) {
			/* A clean close between requests: keep the session for a
			 * resumption (SSL_free would mark it unresumable without a
			 * shutdown) and tell the peer (close_notify). */
			if (opt.tls_resume && !c->sess)
				c->sess = SSL_get1_session(c->ssl);
			SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
	}
	if (c->fd >= 0) {
		close(c->fd);	/* also removes it from the epoll set */
		c->fd = -1;
	}
	c->served = 0;
	c->rb.len = 0;
}

static void show_tls_error(struct conn *c)
{
	if (atomic_exchange(&g_tls_err_shown, true))
		return;
	char msg[256] = "";
	unsigned long e = ERR_peek_error();
	if (e)
		ERR_error_string_n(e, msg, sizeof msg);
	long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	fprintf(stderr, "loadgen: TLS handshake failed: %s%s%s\n", msg[0] ? msg : "connection closed",
		vr != X509_V_OK ? "; certificate verification: " : "",
		vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
}

/* The request in flight on c failed: count it, drop the connection, and go on. */
static void conn_fail(struct conn *c, enum err_class cls, int sys_errno)
{
	uint64_t t = now_ns();
	if (cls == E_TLS)
		show_tls_error(c);
	else if ((cls == E_CONNECT || cls == E_READ || cls == E_WRITE) && sys_errno &&
		 !atomic_exchange(&g_conn_err_shown, true))
		fprintf(stderr, "loadgen: %s error: %s\n", err_names[cls], strerror(sys_errno));
	ERR_clear_error();
	if (counted(c->t_start, t)) {
		c->w->st.err[cls]++;
		c->w->st.last_done_ns = t;
	} else {
		c->w->st.unfinished++;
	}
	request_finished();
	conn_close(c);	/* with c->req set: not a clean close */
	c->req = NULL;
	if (cls == E_CONNECT) {
		c->state = S_BACKOFF;
		c->retry_at = t + 50u * 1000000u;
		return;
	}
	conn_next(c);
}

static void conn_open(struct conn *c)
{
	c->fd = socket(peer_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
	if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->w->st.connects++;
	c->fresh = true;
	c->served = 0;
	if (opt.tls) {
		c->ssl = SSL_new(ssl_ctx);
		if (!c->ssl)
			die("SSL_new failed");
		SSL_set_fd(c->ssl, c->fd);
		if (!opt.insecure) {
			if (verify_is_ip)
				X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), opt.verify_name);
			else
				SSL_set1_host(c->ssl, opt.verify_name);
		}
		if (!verify_is_ip)
			SSL_set_tlsext_host_name(c->ssl, opt.verify_name);
		if (c->sess) {
			SSL_set_session(c->ssl, c->sess);
			SSL_SESSION_free(c->sess);
			c->sess = NULL;
		}
		SSL_set_connect_state(c->ssl);
	}
	if (connect(c->fd, (struct sockaddr *)&peer_addr, peer_addrlen) == 0) {
		c->state = opt.tls ? S_HANDSHAKE : S_SENDING;
	} else if (errno == EINPROGRESS) {
		c->state = S_CONNECTING;
	} else {
		conn_fail(c, E_CONNECT, errno);
	}
}

static const struct request *next_request(void)
{
	if (atomic_load(&g_stop))
		return NULL;
	uint64_t n = atomic_fetch_add(&g_issued, 1);
	if (opt.requests && n >= opt.requests)
		return NULL;
	return &reqs[n % nreqs];
}

static void reset_response(struct conn *c)
{
	c->rb.len = 0;
	c->scan = 0;
	c->hdr_end = 0;
	c->status = 0;
	c->close_after = false;
	c->chunked = false;
	c->until_eof = false;
	c->clen = 0;
	c->pos = 0;
	c->cst = CH_SIZE;
	c->chunk_rem = 0;
	c->body.len = 0;
}

/* Hand the next request to c (connecting first if need be), or idle it. */
static void conn_next(struct conn *c)
{
	c->req = next_request();
	if (!c->req) {
		if (c->fd >= 0 && !opt.keepalive)
			conn_close(c);
		c->state = S_IDLE;
		return;
	}
	c->woff = 0;
	c->t_start = now_ns();
	reset_response(c);
	if (c->fd < 0) {
		conn_open(c);
	} else {
		c->fresh = false;
		c->state = S_SENDING;
	}
}

/* ---- response parsing --------------------------------------------------- */

enum parse_result { P_MORE, P_DONE, P_ERROR };

static bool ci_contains(const char *s, size_t n, const char *word)
{
	size_t m = strlen(word);
	for (size_t i = 0; i + m <= n; i++)
		if (strncasecmp(s + i, word, m) == 0)
			return true;
	return false;
}

static enum parse_result parse_header(struct conn *c)
{
	for (;;) {
		char *rb = c->rb.p;
		size_t from = c->scan;
		char *end = c->rb.len >= from + 4 ? memmem(rb + from, c->rb.len - from, "\r\n\r\n", 4) : NULL;
		if (!end) {
			c->scan = c->rb.len > 3 ? c->rb.len - 3 : 0;
			return c->rb.len > MAX_HEADER ? P_ERROR : P_MORE;
		}
		size_t hdr_end = (size_t)(end - rb) + 4;
		if (hdr_end < 14 || memcmp(rb, "HTTP/1.", 7) != 0 || rb[8] != ' ' ||
		    !isdigit((unsigned char)rb[9]) || !isdigit((unsigned char)rb[10]) ||
		    !isdigit((unsigned char)rb[11]))
			return P_ERROR;
		int status = (rb[9] - '0') * 100 + (rb[10] - '0') * 10 + (rb[11] - '0');
		bool http10 = rb[7] == '0';
		bool close_after = http10, chunked = false, have_len = false;
		uint64_t clen = 0;
		char *line = memchr(rb, '\n', hdr_end) + 1;
		while (line < rb + hdr_end - 2) {
			char *eol = memchr(line, '\n', (size_t)(rb + hdr_end - line));
			size_t llen = (size_t)(eol - line);
			if (llen > 0 && line[llen - 1] == '\r')
				llen--;
			char *colon = memchr(line, ':', llen);
			if (colon) {
				size_t nlen = (size_t)(colon - line);
				char *v = colon + 1;
				size_t vlen = llen - nlen - 1;
				while (vlen && (*v == ' ' || *v == '\t')) {
					v++;
					vlen--;
				}
				if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
					uint64_t x = 0;
					size_t k = 0;
					for (; k < vlen && isdigit((unsigned char)v[k]); k++)
						x = x * 10 + (uint64_t)(v[k] - '0');
					if (k == 0 || x > MAX_RESPONSE)
						return P_ERROR;
					clen = x;
					have_len = true;
				} else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
					if (ci_contains(v, vlen, "chunked"))
						chunked = true;
				} else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
					if (ci_contains(v, vlen, "close"))
						close_after = true;
					else if (ci_contains(v, vlen, "keep-alive"))
						close_after = false;
				}
			}
			line = eol + 1;
		}
		if (status >= 100 && status < 200) {
			/* Interim response: drop it and parse what follows. */
			memmove(rb, rb + hdr_end, c->rb.len - hdr_end);
			c->rb.len -= hdr_end;
			c->scan = 0;
			continue;
		}
		c->hdr_end = hdr_end;
		c->status = status;
		c->close_after = close_after;
		if (status == 204 || status == 304) {
			c->clen = 0;
		} else if (chunked) {
			c->chunked = true;
			c->pos = hdr_end;
			c->cst = CH_SIZE;
		} else if (have_len) {
			c->clen = clen;
		} else {
			c->until_eof = true;
			c->close_after = true;
		}
		return P_MORE;
	}
}

static enum parse_result parse_chunked(struct conn *c)
{
	char *rb = c->rb.p;
	size_t len = c->rb.len;
	for (;;) {
		switch (c->cst) {
		case CH_SIZE: {
			char *eol = len > c->pos ? memmem(rb + c->pos, len - c->pos, "\r\n", 2) : NULL;
			if (!eol)
				return len - c->pos > 1024 ? P_ERROR : P_MORE;
			uint64_t size = 0;
			size_t k = c->pos, digits = 0;
			for (; rb + k < eol && isxdigit((unsigned char)rb[k]); k++, digits++) {
				int ch = tolower((unsigned char)rb[k]);
				size = size * 16 + (uint64_t)(isdigit(ch) ? ch - '0' : ch - 'a' + 10);
				if (size > MAX_RESPONSE)
					return P_ERROR;
			}
			if (digits == 0)
				return P_ERROR;
			c->pos = (size_t)(eol - rb) + 2;
			if (size == 0) {
				c->cst = CH_TRAILER;
			} else {
				c->chunk_rem = size;
				c->cst = CH_DATA;
			}
			break;
		}
		case CH_DATA: {
			size_t avail = len - c->pos;
			size_t take = avail < c->chunk_rem ? avail : (size_t)c->chunk_rem;
			if (opt.expect || opt.show_errors)
				buf_add(&c->body, rb + c->pos, take);
			c->pos += take;
			c->chunk_rem -= take;
			if (c->chunk_rem)
				return P_MORE;
			c->cst = CH_DATA_CRLF;
			break;
		}
		case CH_DATA_CRLF:
			if (len - c->pos < 2)
				return P_MORE;
			if (rb[c->pos] != '\r' || rb[c->pos + 1] != '\n')
				return P_ERROR;
			c->pos += 2;
			c->cst = CH_SIZE;
			break;
		case CH_TRAILER: {
			if (len - c->pos < 2)
				return P_MORE;
			if (rb[c->pos] == '\r' && rb[c->pos + 1] == '\n') {
				c->pos += 2;
				return c->pos == len ? P_DONE : P_ERROR;
			}
			char *eol = memmem(rb + c->pos, len - c->pos, "\r\n", 2);
			if (!eol)
				return P_MORE;
			c->pos = (size_t)(eol - rb) + 2;
			break;
		}
		}
	}
}

static enum parse_result parse_response(struct conn *c)
{
	if (!c->hdr_end) {
		enum parse_result r = parse_header(c);
		if (r != P_MORE || !c->hdr_end)
			return r;
	}
	if (c->rb.len > MAX_RESPONSE)
		return P_ERROR;
	if (c->chunked)
		return parse_chunked(c);
	if (c->until_eof)
		return P_MORE;
	size_t want = c->hdr_end + (size_t)c->clen;
	if (c->rb.len < want)
		return P_MORE;
	/* Bytes past the response: we never pipeline, so the peer is confused. */
	return c->rb.len == want ? P_DONE : P_ERROR;
}

static void show_failure(struct conn *c, const char *what, const char *body, size_t blen)
{
	if (atomic_fetch_add(&g_shown, 1) >= opt.show_errors)
		return;
	size_t n = blen < 300 ? blen : 300;
	fprintf(stderr, "loadgen: %s: HTTP %d, body: %.*s%s\n", what, c->status, (int)n, body,
		blen > n ? "..." : "");
}

/* A whole response is in. */
static void conn_complete(struct conn *c)
{
	uint64_t t = now_ns();
	struct stats *st = &c->w->st;
	const char *body;
	size_t blen;
	if (c->chunked) {
		body = c->body.p ? c->body.p : "";
		blen = c->body.len;
	} else {
		body = c->rb.p + c->hdr_end;
		blen = c->rb.len - c->hdr_end;
	}
	int cls = -1;
	if (c->status < 200 || c->status > 299) {
		cls = c->status >= 300 && c->status < 400 ? E_STATUS3
		      : c->status >= 400 && c->status < 500 ? E_STATUS4 : E_STATUS5;
		show_failure(c, "non-2xx response", body, blen);
	} else if (opt.expect && !memmem(body, blen, opt.expect, opt.expect_len)) {
		cls = E_EXPECT;
		show_failure(c, "--expect not found", body, blen);
	}
	if (counted(c->t_start, t)) {
		if (cls < 0) {
			st->ok++;
			hist_add(&st->h, (t - c->t_start) / 1000u);
		} else {
			st->err[cls]++;
		}
		st->last_done_ns = t;
	} else {
		st->unfinished++;
	}
	request_finished();
	c->served++;
	c->req = NULL;
	if (c->close_after || !opt.keepalive)
		conn_close(c);
	else if (opt.tls && opt.tls_resume && !c->sess && c->served == 1)
		c->sess = SSL_get1_session(c->ssl);
	conn_next(c);
}

/* ---- I/O ---------------------------------------------------------------- */

/* Returns bytes moved, 0 for "would block", -1 for EOF, -2 for an error. */
static ssize_t io_write(struct conn *c, const char *p, size_t n, int *err)
{
	if (c->ssl) {
		size_t w = 0;
		errno = 0;
		int r = SSL_write_ex(c->ssl, p, n, &w);
		if (r == 1)
			return (ssize_t)w;
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
			return 0;
		*err = e == SSL_ERROR_SYSCALL ? errno : 0;
		return -2;
	}
	ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	*err = errno;
	return -2;
}

static ssize_t io_read(struct conn *c, char *p, size_t n, int *err)
{
	if (c->ssl) {
		size_t got = 0;
		errno = 0;
		int r = SSL_read_ex(c->ssl, p, n, &got);
		if (r == 1)
			return (ssize_t)got;
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		if (e == SSL_ERROR_ZERO_RETURN)
			return -1;
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
			return -1;	/* EOF without close_notify */
		if (e == SSL_ERROR_SSL &&
		    ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			return -1;
		*err = e == SSL_ERROR_SYSCALL ? errno : 0;
		return -2;
	}
	ssize_t r = recv(c->fd, p, n, 0);
	if (r > 0)
		return r;
	if (r == 0)
		return -1;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	*err = errno;
	return -2;
}

static void conn_drive(struct conn *c, uint32_t ev)
{
	for (;;) {
		switch (c->state) {
		case S_IDLE:
			if (c->fd >= 0 && (ev & (EPOLLHUP | EPOLLERR | EPOLLIN))) {
				/* An idle keep-alive connection the peer closed. */
				char tmp[256];
				int err = 0;
				if (io_read(c, tmp, sizeof tmp, &err) != 0)
					conn_close(c);
			}
			return;
		case S_BACKOFF:
			return;
		case S_CONNECTING: {
			if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				return;
			int soerr = 0;
			socklen_t sl = sizeof soerr;
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
				soerr = errno;
			if (soerr) {
				conn_fail(c, E_CONNECT, soerr);
				return;
			}
			c->state = opt.tls ? S_HANDSHAKE : S_SENDING;
			break;
		}
		case S_HANDSHAKE: {
			ERR_clear_error();
			int r = SSL_do_handshake(c->ssl);
			if (r == 1) {
				c->w->st.handshakes++;
				if (SSL_session_reused(c->ssl))
					c->w->st.resumed++;
				c->state = S_SENDING;
				break;
			}
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			conn_fail(c, E_TLS, 0);
			return;
		}
		case S_SENDING: {
			int err = 0;
			ssize_t n = io_write(c, c->req->data + c->woff, c->req->len - c->woff, &err);
			if (n == 0)
				return;
			if (n < 0) {
				conn_fail(c, E_WRITE, err);
				return;
			}
			c->w->st.bytes_out += (uint64_t)n;
			c->woff += (size_t)n;
			if (c->woff == c->req->len)
				c->state = S_RECEIVING;
			break;
		}
		case S_RECEIVING: {
			buf_reserve(&c->rb, 16384);
			int err = 0;
			ssize_t n = io_read(c, c->rb.p + c->rb.len, c->rb.cap - c->rb.len - 1, &err);
			if (n == 0)
				return;
			if (n == -1) {
				if (c->hdr_end && c->until_eof) {
					conn_complete(c);
					break;
				}
				conn_fail(c, E_CLOSED, 0);
				return;
			}
			if (n < 0) {
				conn_fail(c, E_READ, err);
				return;
			}
			c->w->st.bytes_in += (uint64_t)n;
			c->rb.len += (size_t)n;
			c->rb.p[c->rb.len] = '\0';
			enum parse_result pr = parse_response(c);
			if (pr == P_DONE)
				conn_complete(c);
			else if (pr == P_ERROR) {
				show_failure(c, "malformed response", c->rb.p, c->rb.len);
				conn_fail(c, E_PARSE, 0);
				return;
			}
			break;
		}
		}
		ev = 0;
	}
}

/* ------------------------------------------------------------------------ */
/* Workers                                                                  */

static void worker_tick(struct worker *w, uint64_t t)
{
	uint64_t tmo = (uint64_t)(opt.timeout * 1e9);
	for (unsigned i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		if (c->state == S_BACKOFF && t >= c->retry_at) {
			conn_next(c);
			conn_drive(c, 0);
		} else if (c->state >= S_CONNECTING && tmo && t - c->t_start > tmo) {
			conn_fail(c, E_TIMEOUT, 0);
			conn_drive(c, 0);
		}
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];
	for (unsigned i = 0; i < w->nconns; i++) {
		conn_next(&w->conns[i]);
		conn_drive(&w->conns[i], 0);
	}
	uint64_t last_tick = now_ns();
	for (;;) {
		if (atomic_load(&g_stop))
			break;
		uint64_t t = now_ns();
		if (!opt.requests && t >= g_deadline_ns) {
			atomic_store(&g_stop, true);
			break;
		}
		int tmo = 50;
		if (!opt.requests && g_deadline_ns - t < 50u * 1000000u)
			tmo = (int)((g_deadline_ns - t) / 1000000u) + 1;
		int n = epoll_wait(w->ep, evs, (int)(sizeof evs / sizeof evs[0]), tmo);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			conn_drive(evs[i].data.ptr, evs[i].events);
		t = now_ns();
		if (t - last_tick >= 20u * 1000000u) {
			last_tick = t;
			worker_tick(w, t);
			bool busy = false;
			for (unsigned i = 0; i < w->nconns && !busy; i++)
				busy = w->conns[i].state != S_IDLE;
			if (!busy && opt.requests)
				break;	/* this worker's share is done */
		}
	}
	/* Whatever is still in flight did not finish in time. */
	for (unsigned i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		if (c->state >= S_CONNECTING && c->req)
			w->st.unfinished++;
		conn_close(c);
		if (c->sess)
			SSL_SESSION_free(c->sess);
		free(c->rb.p);
		free(c->body.p);
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                   */

static double cpu_seconds(const struct rusage *a, const struct rusage *b, bool user)
{
	const struct timeval *x = user ? &a->ru_utime : &a->ru_stime;
	const struct timeval *y = user ? &b->ru_utime : &b->ru_stime;
	return (double)(y->tv_sec - x->tv_sec) + (double)(y->tv_usec - x->tv_usec) / 1e6;
}

static void json_str(struct buf *b, const char *s)
{
	buf_adds(b, "\"");
	json_escape(b, s, strlen(s));
	buf_adds(b, "\"");
}

static void usage(FILE *f)
{
	fputs(
"usage: loadgen --url URL [options]\n"
"\n"
"Closed-loop HTTP/1.1 load generator (keep-alive, epoll, OpenSSL for https).\n"
"\n"
"target\n"
"  --url URL               http://HOST:PORT/PATH or https://...; HOST must be a\n"
"                          loopback address unless --allow-remote\n"
"  --cacert FILE           CA certificates to verify the server with (https)\n"
"  --verify-name NAME      name or IP the certificate must match (default: URL host)\n"
"  --insecure              do not verify the server certificate\n"
"  --no-tls-resume         full TLS handshake on every reconnect\n"
"requests (one of)\n"
"  --json-template T       POST T to URL, %CSR% replaced by each CSR of --csr-dir,\n"
"                          JSON-escaped (T may be @FILE)\n"
"  --csr-dir DIR           *.pem / *.csr files, one CSR each, used round robin\n"
"  --body-file FILE        POST FILE as it is (with --content-type)\n"
"  --body-dir DIR          POST each file of DIR as it is, round robin (e.g. DER\n"
"                          OCSP requests with --content-type application/ocsp-request)\n"
"  --get-file FILE         GET each path of FILE (one a line, '/abs', 'rel' to the\n"
"                          URL path, or a whole URL whose path is used), round robin\n"
"  --content-type TYPE     of POST bodies (default application/json)\n"
"  --header 'Name: value'  extra request header (repeatable)\n"
"  --no-keepalive          'Connection: close': a new connection per request\n"
"load\n"
"  --concurrency C         connections, each with one request in flight (default 1)\n"
"  --threads T             worker threads (default 1)\n"
"  --duration S            measure for S seconds (default 10; '500ms', '2m' work)\n"
"  --warmup S              run S seconds before measuring (not counted)\n"
"  --requests N            send exactly N requests, then stop (timed from the start)\n"
"  --timeout S             a request without a response by then fails (default 30)\n"
"checks and output\n"
"  --expect STR            a 2xx counts as ok only if its body contains STR\n"
"  --show-errors N         print the first N failing responses to stderr\n"
"  --json                  print one JSON line instead of text\n"
"  --label TEXT            copied into the report\n"
"\n"
"Exit status: 0 all ok, 1 some request failed or none succeeded, 2 usage/setup.\n",
	      f);
}

int main(int argc, char **argv)
{
	enum {
		O_URL = 256, O_CACERT, O_VNAME, O_INSECURE, O_NORESUME, O_TMPL, O_CSRDIR, O_BODY, O_BODYDIR,
		O_GET, O_CTYPE, O_HEADER, O_NOKA, O_CONC, O_THREADS, O_DUR, O_WARM, O_REQS,
		O_TMO, O_EXPECT, O_SHOW, O_JSON, O_LABEL, O_REMOTE, O_HELP
	};
	static const struct option lo[] = {
		{"url", required_argument, NULL, O_URL},
		{"cacert", required_argument, NULL, O_CACERT},
		{"verify-name", required_argument, NULL, O_VNAME},
		{"insecure", no_argument, NULL, O_INSECURE},
		{"no-tls-resume", no_argument, NULL, O_NORESUME},
		{"json-template", required_argument, NULL, O_TMPL},
		{"csr-dir", required_argument, NULL, O_CSRDIR},
		{"body-file", required_argument, NULL, O_BODY},
		{"body-dir", required_argument, NULL, O_BODYDIR},
		{"get-file", required_argument, NULL, O_GET},
		{"content-type", required_argument, NULL, O_CTYPE},
		{"header", required_argument, NULL, O_HEADER},
		{"no-keepalive", no_argument, NULL, O_NOKA},
		{"concurrency", required_argument, NULL, O_CONC},
		{"threads", required_argument, NULL, O_THREADS},
		{"duration", required_argument, NULL, O_DUR},
		{"warmup", required_argument, NULL, O_WARM},
		{"requests", required_argument, NULL, O_REQS},
		{"timeout", required_argument, NULL, O_TMO},
		{"expect", required_argument, NULL, O_EXPECT},
		{"show-errors", required_argument, NULL, O_SHOW},
		{"json", no_argument, NULL, O_JSON},
		{"label", required_argument, NULL, O_LABEL},
		{"allow-remote", no_argument, NULL, O_REMOTE},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	int o;
	uint64_t u;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case O_URL: opt.url = optarg; break;
		case O_CACERT: opt.cacert = optarg; break;
		case O_VNAME: opt.verify_name = optarg; break;
		case O_INSECURE: opt.insecure = true; break;
		case O_NORESUME: opt.tls_resume = false; break;
		case O_TMPL: opt.tmpl = optarg; break;
		case O_CSRDIR: opt.csr_dir = optarg; break;
		case O_BODY: opt.body_file = optarg; break;
		case O_BODYDIR: opt.body_dir = optarg; break;
		case O_GET: opt.get_file = optarg; break;
		case O_CTYPE: opt.content_type = optarg; break;
		case O_HEADER:
			if (!strchr(optarg, ':') || strpbrk(optarg, "\r\n"))
				die("--header wants 'Name: value'");
			buf_addf(&opt.headers, "%s\r\n", optarg);
			break;
		case O_NOKA: opt.keepalive = false; break;
		case O_CONC:
			if (!parse_u64(optarg, &u) || u == 0 || u > 100000)
				die("bad --concurrency");
			opt.concurrency = (unsigned)u;
			break;
		case O_THREADS:
			if (!parse_u64(optarg, &u) || u == 0 || u > 256)
				die("bad --threads");
			opt.threads = (unsigned)u;
			break;
		case O_DUR:
			if (!parse_seconds(optarg, &opt.duration) || opt.duration <= 0)
				die("bad --duration");
			break;
		case O_WARM:
			if (!parse_seconds(optarg, &opt.warmup))
				die("bad --warmup");
			break;
		case O_REQS:
			if (!parse_u64(optarg, &opt.requests) || opt.requests == 0)
				die("bad --requests");
			break;
		case O_TMO:
			if (!parse_seconds(optarg, &opt.timeout))
				die("bad --timeout");
			break;
		case O_EXPECT: opt.expect = optarg; opt.expect_len = strlen(optarg); break;
		case O_SHOW:
			if (!parse_u64(optarg, &u) || u > 1000000)
				die("bad --show-errors");
			opt.show_errors = (unsigned)u;
			break;
		case O_JSON: opt.json = true; break;
		case O_LABEL: opt.label = optarg; break;
		case O_REMOTE: opt.allow_remote = true; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !opt.url) {
		usage(stderr);
		return 2;
	}
	if (opt.expect && opt.expect_len == 0)
		opt.expect = NULL;
	int sources = (opt.tmpl != NULL) + (opt.get_file != NULL) + (opt.body_file != NULL) +
		      (opt.body_dir != NULL);
	if (sources > 1)
		die("give only one of --json-template, --body-file, --body-dir, --get-file");
	if (opt.csr_dir && !opt.tmpl)
		die("--csr-dir needs --json-template");
	if (opt.tmpl && strstr(opt.tmpl, "%CSR%") && !opt.csr_dir)
		die("the template has %%CSR%% but no --csr-dir was given");
	if (opt.requests && opt.warmup > 0)
		die("--warmup goes with --duration, not --requests");
	if (!opt.requests && opt.duration == 0)
		opt.duration = 10.0;
	if (opt.threads > opt.concurrency)
		opt.threads = opt.concurrency;
	if (opt.requests && opt.concurrency > opt.requests)
		opt.concurrency = (unsigned)opt.requests;
	if (opt.threads > opt.concurrency)
		opt.threads = opt.concurrency;

	parse_url(opt.url);
	resolve();
	if (opt.tls)
		tls_setup();

	char *tmpl_owned = NULL;
	if (opt.tmpl && opt.tmpl[0] == '@') {
		size_t n;
		tmpl_owned = read_file(opt.tmpl + 1, &n);
		while (n > 0 && isspace((unsigned char)tmpl_owned[n - 1]))
			tmpl_owned[--n] = '\0';
		opt.tmpl = tmpl_owned;
	}
	if (opt.tmpl) {
		method_name = "POST";
		if (opt.csr_dir) {
			load_csr_requests();
		} else {
			add_request("POST", opt.path, opt.tmpl, strlen(opt.tmpl));
		}
	} else if (opt.body_dir) {
		method_name = "POST";
		load_body_requests();
	} else if (opt.body_file) {
		size_t n;
		char *body = read_file(opt.body_file, &n);
		method_name = "POST";
		add_request("POST", opt.path, body, n);
		free(body);
	} else if (opt.get_file) {
		load_get_requests();
	} else {
		add_request("GET", opt.path, NULL, 0);
	}

	struct sigaction sa = {0};
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct worker *workers = calloc(opt.threads, sizeof *workers);
	struct conn *conns = calloc(opt.concurrency, sizeof *conns);
	if (!workers || !conns)
		die("out of memory");
	for (unsigned t = 0; t < opt.threads; t++) {
		struct worker *w = &workers[t];
		w->id = t;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w->ep < 0)
			die("epoll_create1: %s", strerror(errno));
		unsigned first = (unsigned)((uint64_t)opt.concurrency * t / opt.threads);
		unsigned last = (unsigned)((uint64_t)opt.concurrency * (t + 1) / opt.threads);
		w->conns = &conns[first];
		w->nconns = last - first;
		for (unsigned i = first; i < last; i++) {
			conns[i].w = w;
			conns[i].fd = -1;
			conns[i].state = S_IDLE;
		}
	}

	struct rusage ru0, ru1;
	g_start_ns = now_ns();
	g_measure_ns = g_start_ns + (uint64_t)(opt.warmup * 1e9);
	g_deadline_ns = g_measure_ns + (uint64_t)(opt.duration * 1e9);
	if (opt.requests && opt.duration == 0)
		g_deadline_ns = UINT64_MAX;
	getrusage(RUSAGE_SELF, &ru0);
	for (unsigned t = 0; t < opt.threads; t++)
		if (pthread_create(&workers[t].thread, NULL, worker_run, &workers[t]) != 0)
			die("pthread_create failed");
	if (opt.warmup > 0) {
		/* CPU is counted over the measured interval only. */
		uint64_t t = now_ns();
		while (t < g_measure_ns && !atomic_load(&g_stop)) {
			uint64_t left = g_measure_ns - t;
			struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
			nanosleep(&ts, NULL);
			t = now_ns();
		}
		getrusage(RUSAGE_SELF, &ru0);
	}
	if (opt.requests && opt.duration > 0) {
		/* --requests with --duration: whichever comes first. */
		while (!atomic_load(&g_stop) && now_ns() < g_deadline_ns) {
			struct timespec ts = {0, 20 * 1000000};
			nanosleep(&ts, NULL);
		}
		atomic_store(&g_stop, true);
	}
	for (unsigned t = 0; t < opt.threads; t++)
		pthread_join(workers[t].thread, NULL);
	getrusage(RUSAGE_SELF, &ru1);
	uint64_t t_end = now_ns();

	struct stats *all = calloc(1, sizeof *all);
	if (!all)
		die("out of memory");
	for (unsigned t = 0; t < opt.threads; t++) {
		struct stats *s = &workers[t].st;
		hist_merge(&all->h, &s->h);
		all->ok += s->ok;
		for (int e = 0; e < E_COUNT; e++)
			all->err[e] += s->err[e];
		all->unfinished += s->unfinished;
		all->connects += s->connects;
		all->handshakes += s->handshakes;
		all->resumed += s->resumed;
		all->bytes_in += s->bytes_in;
		all->bytes_out += s->bytes_out;
		if (s->last_done_ns > all->last_done_ns)
			all->last_done_ns = s->last_done_ns;
		close(workers[t].ep);
	}
	uint64_t errors = 0;
	for (int e = 0; e < E_COUNT; e++)
		errors += all->err[e];

	/* The measured interval: up to the deadline (duration mode, unless
	 * interrupted) or up to the last response (requests mode). */
	uint64_t end_ns;
	if (opt.requests)
		end_ns = all->last_done_ns > g_measure_ns ? all->last_done_ns : t_end;
	else
		end_ns = t_end < g_deadline_ns ? t_end : g_deadline_ns;
	double elapsed = end_ns > g_measure_ns ? (double)(end_ns - g_measure_ns) / 1e9 : 0.0;
	double rps = elapsed > 0 ? (double)all->ok / elapsed : 0.0;
	double cpu_user = cpu_seconds(&ru0, &ru1, true);
	double cpu_sys = cpu_seconds(&ru0, &ru1, false);
	double cpu = cpu_user + cpu_sys;
	double done = (double)(all->ok + errors);
	double per_cpu = cpu > 0 ? done / cpu : 0.0;
	double ms = 1000.0;
	double p50 = (double)hist_pct(&all->h, 50) / ms, p90 = (double)hist_pct(&all->h, 90) / ms;
	double p99 = (double)hist_pct(&all->h, 99) / ms, p999 = (double)hist_pct(&all->h, 99.9) / ms;
	double mx = (double)all->h.max_us / ms, mn = (double)all->h.min_us / ms;
	double mean = all->h.count ? (double)all->h.sum_us / (double)all->h.count / ms : 0.0;
	const char *mode = opt.get_file ? "GET" : method_name;

	struct buf out = {0};
	if (opt.json) {
		buf_adds(&out, "{");
		if (opt.label) {
			buf_adds(&out, "\"label\":");
			json_str(&out, opt.label);
			buf_adds(&out, ",");
		}
		buf_adds(&out, "\"url\":");
		json_str(&out, opt.url);
		buf_addf(&out, ",\"method\":\"%s\",\"concurrency\":%u,\"threads\":%u,\"keepalive\":%s,"
			 "\"elapsed_s\":%.3f,\"ok\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"unfinished\":%" PRIu64
			 ",\"rps\":%.1f,\"latency_ms\":{\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
			 "\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},\"error_classes\":{",
			 mode, opt.concurrency, opt.threads, opt.keepalive ? "true" : "false", elapsed,
			 all->ok, errors, all->unfinished, rps, mn, mean, p50, p90, p99, p999, mx);
		for (int e = 0; e < E_COUNT; e++)
			buf_addf(&out, "%s\"%s\":%" PRIu64, e ? "," : "", err_names[e], all->err[e]);
		buf_addf(&out, "},\"connections\":%" PRIu64 ",\"tls_handshakes\":%" PRIu64
			 ",\"tls_resumed\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
			 ",\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"cpu_pct\":%.1f,\"req_per_cpu_s\":%.0f}\n",
			 all->connects, all->handshakes, all->resumed, all->bytes_in, all->bytes_out,
			 cpu_user, cpu_sys, elapsed > 0 ? 100.0 * cpu / elapsed : 0.0, per_cpu);
	} else {
		if (opt.label)
			buf_addf(&out, "%s\n", opt.label);
		buf_addf(&out, "%s %s  concurrency %u, threads %u%s%s\n", mode, opt.url, opt.concurrency,
			 opt.threads, opt.keepalive ? "" : ", no keep-alive",
			 g_interrupted ? " (interrupted)" : "");
		buf_addf(&out, "  requests     %" PRIu64 " ok, %" PRIu64 " errors, %" PRIu64
			 " unfinished, in %.3f s\n", all->ok, errors, all->unfinished, elapsed);
		buf_addf(&out, "  throughput   %.1f requests/s\n", rps);
		buf_addf(&out, "  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  "
			 "(min %.3f, mean %.3f)\n", p50, p90, p99, p999, mx, mn, mean);
		buf_adds(&out, "  errors      ");
		for (int e = 0; e < E_COUNT; e++)
			buf_addf(&out, " %s %" PRIu64 "%s", err_names[e], all->err[e], e + 1 < E_COUNT ? "," : "\n");
		buf_addf(&out, "  connections  %" PRIu64 " opened", all->connects);
		if (opt.tls)
			buf_addf(&out, ", %" PRIu64 " TLS handshakes (%" PRIu64 " resumed)", all->handshakes,
				 all->resumed);
		buf_addf(&out, "; %.1f MB in, %.1f MB out\n", (double)all->bytes_in / 1e6,
			 (double)all->bytes_out / 1e6);
		buf_addf(&out, "  loadgen cpu  %.2f s (user %.2f, sys %.2f) = %.1f%% of one core, "
			 "%.0f requests per CPU-second\n", cpu, cpu_user, cpu_sys,
			 elapsed > 0 ? 100.0 * cpu / elapsed : 0.0, per_cpu);
	}
	fputs(out.p, stdout);
	fflush(stdout);

	int rc = (errors == 0 && all->ok > 0) ? 0 : 1;
	free(out.p);
	free(all);
	free(conns);
	free(workers);
	for (size_t i = 0; i < nreqs; i++)
		free((void *)reqs[i].data);
	free(reqs);
	free(tmpl_owned);
	free(opt.headers.p);
	free(opt.host);
	free(opt.hostport);
	free(opt.port);
	free(opt.path);
	if (ssl_ctx)
		SSL_CTX_free(ssl_ctx);
	return rc;
}
