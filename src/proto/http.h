/*
 * http.h - the HTTP(S) front door: libmicrohttpd glue.
 *
 * One struct http_server per listening address. Requests are routed by
 * method and path prefix to handlers that see a fully-read, size-limited
 * body. A handler either answers at once or, for work done elsewhere (the
 * issuance pipeline), defers: it keeps the struct http_pending it was given
 * and later calls http_pending_finish() from any thread; the connection is
 * suspended meanwhile so the server thread serves others.
 *
 * Limits (all from the configuration): body size per route, total
 * connections, connections per client address, header memory per
 * connection, and an idle timeout. Over-long bodies get 413 without being
 * read; everything else malformed gets a 4xx problem document.
 */
#ifndef CK_PROTO_HTTP_H
#define CK_PROTO_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct http_server;
struct http_pending;

struct http_request {
	const char *method;
	const char *path;	/* without the query */
	const char *query;	/* raw query string or NULL */
	const unsigned char *body;
	size_t body_len;
	const char *content_type;
	const char *authorization;
	const char *host;	/* Host header or NULL */
	const unsigned char *client_cert; /* DER of a TLS client cert, or NULL */
	size_t client_cert_len;
	char peer[64];		/* client address, for logs and audit */
	struct http_pending *pending; /* for deferred answers */
};

struct http_response {
	int status;
	const char *content_type;
	unsigned char *body;	/* malloc'd; freed by the server */
	size_t body_len;
	char location[256];	/* optional Location header */
	const char *cache_control; /* optional */
	char replay_nonce[48];	/* optional Replay-Nonce header (ACME) */
	char link[640];		/* optional Link header (ACME): index, next */
	unsigned retry_after;	/* optional Retry-After header (seconds) */
};

/* Handler result. */
enum http_result {
	HTTP_DONE,		/* `resp` is filled: send it */
	HTTP_DEFERRED,		/* http_pending_finish() will be called */
	HTTP_RESULT__MAX
};

typedef enum http_result (*http_handler)(void *ctx,
    const struct http_request *req, struct http_response *resp);

struct http_route {
	const char *method;	/* "GET", "POST", ... */
	const char *path;	/* exact path, or a prefix if ending in '/' */
	http_handler fn;
	size_t max_body;	/* 0: no body allowed */
};

struct http_config {
	const char *addr;	/* IPv4 or IPv6 literal */
	uint16_t port;
	const char *tls_cert_pem; /* NULL: plain HTTP */
	const char *tls_key_pem;
	const char *tls_trust_pem; /* CAs for client certificates, or NULL */
	unsigned threads;
	unsigned max_connections;
	unsigned max_per_ip;
	unsigned timeout_s;
	size_t header_memory;	/* per-connection memory for headers */
};

/*
 * Start serving `routes` (copied) on cfg->addr:port. `ctx` is given to
 * handlers. Returns 0 or CK_E_IO with a message.
 */
int http_server_start(const struct http_config *cfg,
    const struct http_route *routes, size_t nroutes, void *ctx,
    struct http_server **out);

/* Stop accepting new connections; those open are still served.
 * Unsafe with certkeepd's epoll thread pool (libmicrohttpd 0.9.75's
 * MHD_quiesce_daemon() races the workers and may abort): drain instead. */
void http_server_quiesce(struct http_server *srv);

/* Dispatch no more requests to handlers (those not yet dispatched are
 * closed unanswered), and wait up to timeout_s seconds until every
 * dispatched request has been answered. Accepts NULL. */
void http_server_drain(struct http_server *srv, unsigned timeout_s);

/* Close everything and stop; accepts NULL. Drain first for a graceful
 * stop. */
void http_server_stop(struct http_server *srv);

/* The port actually bound (useful with port 0). */
uint16_t http_server_port(const struct http_server *srv);

/* Complete a deferred request with `resp` (taken over). Thread-safe. */
void http_pending_finish(struct http_pending *p, struct http_response *resp);

/* Fill `resp` with an RFC 7807 problem document. `type` is a short slug
 * appended to "urn:certkeep:problem:" (or a full URN when it contains ':').
 */
void http_problem(struct http_response *resp, int status, const char *type,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fill `resp` with `body` (malloc'd), which it takes over. */
void http_respond_take(struct http_response *resp, int status,
    const char *content_type, void *body, size_t len);

/* Fill `resp` with a copy of `body`. */
int http_respond(struct http_response *resp, int status,
    const char *content_type, const void *body, size_t len);

#endif
