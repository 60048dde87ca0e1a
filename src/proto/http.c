#include "proto/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <microhttpd.h>

#include "common/err.h"

#define HTTP_MAX_DAEMONS 16
#define HTTP_IP_SLOTS 4096

/* Connections per client address, across all of a server's listeners. */
struct ip_slot {
	unsigned char addr[16];
	int len;
	unsigned count;
};

struct http_server {
	/* One single-threaded daemon per thread, each with its own
	 * SO_REUSEPORT socket on the same port: the kernel spreads new
	 * connections over them (a thread pool sharing one socket lets one
	 * thread take them all). */
	struct MHD_Daemon *d[HTTP_MAX_DAEMONS];
	unsigned nd;
	pthread_mutex_t ip_mu;
	struct ip_slot *ips;
	unsigned max_per_ip;
	struct http_route *routes;
	size_t nroutes;
	void *ctx;
	int tls_client_auth;
	int quiesced;
	/* Draining: handlers run under gate (read); closed stops them. */
	pthread_rwlock_t gate;
	int closed;
	atomic_uint active;	/* dispatched, not yet completed */
};

enum rs_state { RS_BODY, RS_WAITING, RS_READY, RS_SENT };

/* Bodies over a route's limit but under this are read and dropped before
 * the 413, larger ones are cut off. */
#define HTTP_DISCARD_MAX (4u * 1024 * 1024)

/* Per-request state, also the struct http_pending of deferred requests. */
struct http_pending {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const struct http_route *route;
	unsigned char *body;
	size_t body_len;
	int overflow;		/* over the route's limit: discarding */
	size_t discarded;
	pthread_mutex_t mu;
	enum rs_state state;
	int suspended;
	struct http_response resp;
	unsigned char *cert_der;
	size_t cert_len;
	int dispatched;		/* counted in srv->active */
};

static void
resp_clear(struct http_response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

void
http_respond_take(struct http_response *resp, int status, const char *ctype,
    void *body, size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = body;
	resp->body_len = len;
}

int
http_respond(struct http_response *resp, int status, const char *ctype,
    const void *body, size_t len)
{
	unsigned char *b = NULL;

	if (len > 0) {
		if ((b = malloc(len)) == NULL)
			return CK_E_NOMEM;
		memcpy(b, body, len);
	}
	free(resp->body);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = b;
	resp->body_len = len;
	return 0;
}

void
http_problem(struct http_response *resp, int status, const char *type,
    const char *fmt, ...)
{
	char detail[1024], urn[128];
	const char *title;
	json_t *j;
	char *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (strchr(type, ':') != NULL)
		snprintf(urn, sizeof(urn), "%s", type);
	else
		snprintf(urn, sizeof(urn), "urn:certkeep:problem:%s", type);
	switch (status) {
	case 400: title = "Bad Request"; break;
	case 401: title = "Unauthorized"; break;
	case 403: title = "Forbidden"; break;
	case 404: title = "Not Found"; break;
	case 405: title = "Method Not Allowed"; break;
	case 409: title = "Conflict"; break;
	case 413: title = "Payload Too Large"; break;
	case 415: title = "Unsupported Media Type"; break;
	case 503: title = "Service Unavailable"; break;
	default: title = status >= 500 ? "Server Error" : "Error";
	}
	j = json_pack("{s:s, s:s, s:i, s:s}", "type", urn, "title", title,
	    "status", status, "detail", detail);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	free(resp->body);
	resp->status = status;
	resp->content_type = "application/problem+json";
	resp->body = (unsigned char *)s;
	resp->body_len = s ? strlen(s) : 0;
}

static enum MHD_Result
send_response(struct MHD_Connection *c, struct http_response *r)
{
	struct MHD_Response *mr;
	enum MHD_Result ret;
	unsigned char *body = r->body;

	if (r->status == 0)
		r->status = 500;
	mr = MHD_create_response_from_buffer_with_free_callback(r->body_len,
	    body ? (void *)body : (void *)"", body ? free : NULL);
	if (mr == NULL)
		return MHD_NO;
	r->body = NULL;		/* MHD frees it */
	if (r->content_type != NULL)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
		    r->content_type);
	if (r->location[0] != '\0')
		MHD_add_response_header(mr, MHD_HTTP_HEADER_LOCATION,
		    r->location);
	if (r->cache_control != NULL)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL,
		    r->cache_control);
	if (r->replay_nonce[0] != '\0')
		MHD_add_response_header(mr, "Replay-Nonce", r->replay_nonce);
	if (r->link[0] != '\0')
		MHD_add_response_header(mr, "Link", r->link);
	if (r->retry_after != 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", r->retry_after);
		MHD_add_response_header(mr, "Retry-After", ra);
	}
	MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, (unsigned int)r->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

static const struct http_route *
find_route(struct http_server *srv, const char *method, const char *url,
    int *method_mismatch)
{
	size_t i, len;

	*method_mismatch = 0;
	for (i = 0; i < srv->nroutes; i++) {
		const struct http_route *rt = &srv->routes[i];
		len = strlen(rt->path);
		if (rt->path[len - 1] == '/' ? strncmp(url, rt->path, len) != 0 :
		    strcmp(url, rt->path) != 0)
			continue;
		if (strcmp(method, rt->method) == 0)
			return rt;
		*method_mismatch = 1;
	}
	return NULL;
}

static void
peer_address(struct MHD_Connection *c, char *buf, size_t bufsz)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	snprintf(buf, bufsz, "?");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, buf, (socklen_t)bufsz);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, buf, (socklen_t)bufsz);
}

/* The verified TLS client certificate, if any (GnuTLS checked it against
 * the configured trust anchors). */
static void
client_cert(struct http_pending *p)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *certs;
	unsigned int n = 0, status = 0;
	gnutls_session_t s;

	if (!p->srv->tls_client_auth)
		return;
	ci = MHD_get_connection_info(p->conn,
	    MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;
	s = (gnutls_session_t)ci->tls_session;
	certs = gnutls_certificate_get_peers(s, &n);
	if (certs == NULL || n == 0)
		return;
	if (gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0)
		return;
	if ((p->cert_der = malloc(certs[0].size)) == NULL)
		return;
	memcpy(p->cert_der, certs[0].data, certs[0].size);
	p->cert_len = certs[0].size;
}

static enum MHD_Result
early(struct MHD_Connection *c, int status, const char *type, const char *msg)
{
	struct http_response r;
	enum MHD_Result ret;

	memset(&r, 0, sizeof(r));
	http_problem(&r, status, type, "%s", msg);
	ret = send_response(c, &r);
	resp_clear(&r);
	return ret;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_pending *p = *con_cls;
	struct http_request req;
	struct http_response resp;
	enum http_result hr;
	const char *cl;
	int mismatch, over;

	(void)version;
	if (p == NULL) {
		const struct http_route *rt = find_route(srv, method, url,
		    &mismatch);
		if (rt == NULL)
			return mismatch ?
			    early(c, 405, "method", "method not allowed") :
			    early(c, 404, "not-found", "no such resource");
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		over = 0;
		if (cl != NULL) {
			char *end;
			unsigned long long v;
			errno = 0;
			v = strtoull(cl, &end, 10);
			if (errno != 0 || *end != '\0' ||
			    v > HTTP_DISCARD_MAX)
				return early(c, 413, "too-large",
				    "request body too large");
			/* A little too large: read it into the void and then
			 * answer 413, so that the client, still sending,
			 * gets the answer rather than a reset connection. */
			over = v > rt->max_body;
		}
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return MHD_NO;
		p->overflow = over;
		pthread_mutex_init(&p->mu, NULL);
		p->srv = srv;
		p->conn = c;
		p->route = rt;
		*con_cls = p;
		return MHD_YES;
	}
	pthread_mutex_lock(&p->mu);
	if (p->state == RS_READY) {
		enum MHD_Result ret;
		p->state = RS_SENT;
		pthread_mutex_unlock(&p->mu);
		ret = send_response(c, &p->resp);
		resp_clear(&p->resp);
		return ret;
	}
	pthread_mutex_unlock(&p->mu);
	if (p->state != RS_BODY)
		return MHD_YES;
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (p->overflow || p->body_len + n > p->route->max_body) {
			/* Past the limit: discard (up to HTTP_DISCARD_MAX in
			 * all, then stop reading), answer 413 at the end. */
			if (!p->overflow) {
				free(p->body);
				p->body = NULL;
				p->discarded = p->body_len;
				p->body_len = 0;
				p->overflow = 1;
			}
			p->discarded += n;
			return p->discarded > HTTP_DISCARD_MAX ? MHD_NO :
			    MHD_YES;
		}
		{
			unsigned char *nb = realloc(p->body, p->body_len + n + 1);
			if (nb == NULL)
				return MHD_NO;
			p->body = nb;
		}
		memcpy(p->body + p->body_len, upload_data, n);
		p->body_len += n;
		p->body[p->body_len] = '\0';
		return MHD_YES;
	}
	if (p->overflow) {
		p->state = RS_SENT;
		return early(c, 413, "too-large", "request body too large");
	}
	/* The whole request is here. */
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = method;
	req.path = url;
	req.body = p->body ? p->body : (const unsigned char *)"";
	req.body_len = p->body_len;
	req.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	req.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	req.host = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	peer_address(c, req.peer, sizeof(req.peer));
	client_cert(p);
	req.client_cert = p->cert_der;
	req.client_cert_len = p->cert_len;
	req.pending = p;
	pthread_rwlock_rdlock(&srv->gate);
	if (srv->closed) {
		/* Stopping: not accepted, closed without an answer. */
		pthread_rwlock_unlock(&srv->gate);
		return MHD_NO;
	}
	p->dispatched = 1;
	atomic_fetch_add(&srv->active, 1);
	hr = p->route->fn(srv->ctx, &req, &resp);
	pthread_rwlock_unlock(&srv->gate);
	if (hr == HTTP_DONE) {
		enum MHD_Result ret;
		p->state = RS_SENT;
		ret = send_response(c, &resp);
		resp_clear(&resp);
		return ret;
	}
	/* Deferred: it may already be finished by another thread. */
	pthread_mutex_lock(&p->mu);
	if (p->state == RS_READY) {
		enum MHD_Result ret;
		p->state = RS_SENT;
		pthread_mutex_unlock(&p->mu);
		ret = send_response(c, &p->resp);
		resp_clear(&p->resp);
		return ret;
	}
	p->state = RS_WAITING;
	p->suspended = 1;
	MHD_suspend_connection(c);
	pthread_mutex_unlock(&p->mu);
	return MHD_YES;
}

void
http_pending_finish(struct http_pending *p, struct http_response *resp)
{
	pthread_mutex_lock(&p->mu);
	resp_clear(&p->resp);
	p->resp = *resp;
	memset(resp, 0, sizeof(*resp));
	p->state = RS_READY;
	if (p->suspended) {
		p->suspended = 0;
		MHD_resume_connection(p->conn);
	}
	pthread_mutex_unlock(&p->mu);
}

static void
completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_pending *p = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (p == NULL)
		return;
	*con_cls = NULL;
	if (p->dispatched)
		atomic_fetch_sub(&p->srv->active, 1);
	resp_clear(&p->resp);
	pthread_mutex_destroy(&p->mu);
	free(p->cert_der);
	free(p->body);
	free(p);
}

static int
sockaddr_ip(const struct sockaddr *sa, unsigned char out[16])
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr, 16);
		return 16;
	}
	return 0;
}

/* The slot of an address (created when `create`), or NULL. Call with
 * ip_mu held. */
static struct ip_slot *
ip_find(struct http_server *srv, const unsigned char *ip, int len, int create)
{
	struct ip_slot *free_slot = NULL;
	unsigned i;

	for (i = 0; i < HTTP_IP_SLOTS; i++) {
		struct ip_slot *sl = &srv->ips[i];
		if (sl->len == len && memcmp(sl->addr, ip, (size_t)len) == 0)
			return sl;
		if (free_slot == NULL && sl->count == 0)
			free_slot = sl;
	}
	if (create && free_slot != NULL) {
		memcpy(free_slot->addr, ip, (size_t)len);
		free_slot->len = len;
	}
	return create ? free_slot : NULL;
}

static enum MHD_Result
accept_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_server *srv = cls;
	struct ip_slot *sl;
	unsigned char ip[16];
	int len, ok = 1;

	(void)addrlen;
	if (srv->max_per_ip == 0 || (len = sockaddr_ip(addr, ip)) == 0)
		return MHD_YES;
	pthread_mutex_lock(&srv->ip_mu);
	sl = ip_find(srv, ip, len, 0);
	if (sl != NULL && sl->count >= srv->max_per_ip)
		ok = 0;
	pthread_mutex_unlock(&srv->ip_mu);
	return ok ? MHD_YES : MHD_NO;
}

static void
notify_cb(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	struct ip_slot *sl;
	unsigned char ip[16];
	int len;

	if (srv->max_per_ip == 0)
		return;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci == NULL || (len = sockaddr_ip(ci->client_addr, ip)) == 0)
			return;
		pthread_mutex_lock(&srv->ip_mu);
		if ((sl = ip_find(srv, ip, len, 1)) != NULL) {
			sl->count++;
			*socket_context = sl;
		}
		pthread_mutex_unlock(&srv->ip_mu);
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED &&
	    (sl = *socket_context) != NULL) {
		pthread_mutex_lock(&srv->ip_mu);
		if (sl->count > 0)
			sl->count--;
		pthread_mutex_unlock(&srv->ip_mu);
		*socket_context = NULL;
	}
}

static void
quiet_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap;
}

int
http_server_start(const struct http_config *cfg,
    const struct http_route *routes, size_t nroutes, void *ctx,
    struct http_server **out)
{
	struct http_server *srv;
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_OptionItem opts[16];
	unsigned nd, i, per_daemon;
	int n = 0;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(cfg->port);
	} else if (inet_pton(AF_INET6, cfg->addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(cfg->port);
		flags |= MHD_USE_IPv6;
	} else
		return ck_err_set(CK_E_INVAL, "listen address '%s' is not an "
		    "IP address", cfg->addr);
	if ((srv = calloc(1, sizeof(*srv))) == NULL ||
	    (srv->routes = calloc(nroutes, sizeof(*routes))) == NULL) {
		free(srv);
		return CK_E_NOMEM;
	}
	memcpy(srv->routes, routes, nroutes * sizeof(*routes));
	srv->nroutes = nroutes;
	pthread_rwlock_init(&srv->gate, NULL);
	pthread_mutex_init(&srv->ip_mu, NULL);
	srv->ctx = ctx;
	srv->max_per_ip = cfg->max_per_ip;
	if (srv->max_per_ip > 0 &&
	    (srv->ips = calloc(HTTP_IP_SLOTS, sizeof(*srv->ips))) == NULL) {
		http_server_stop(srv);
		return CK_E_NOMEM;
	}
	nd = cfg->threads ? cfg->threads : 2;
	if (nd > HTTP_MAX_DAEMONS)
		nd = HTTP_MAX_DAEMONS;
	per_daemon = ((cfg->max_connections ? cfg->max_connections : 1024) +
	    nd - 1) / nd;
	for (i = 0; i < nd; i++) {
		n = 0;
#define OPT(o, v, p) do { opts[n].option = (o); \
	opts[n].value = (intptr_t)(v); opts[n].ptr_value = (void *)(p); n++; \
	} while (0)
		OPT(MHD_OPTION_SOCK_ADDR, 0, &ss);
		OPT(MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL);
		OPT(MHD_OPTION_CONNECTION_LIMIT, per_daemon, NULL);
		OPT(MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ?
		    cfg->timeout_s : 30, NULL);
		OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->header_memory ?
		    cfg->header_memory : 32 * 1024, NULL);
		OPT(MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL);
		OPT(MHD_OPTION_NOTIFY_CONNECTION, notify_cb, srv);
		OPT(MHD_OPTION_EXTERNAL_LOGGER, quiet_logger, NULL);
		if (cfg->tls_cert_pem != NULL) {
			flags |= MHD_USE_TLS;
			OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, cfg->tls_cert_pem);
			OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, cfg->tls_key_pem);
			OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, "SECURE256:"
			    "+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
			if (cfg->tls_trust_pem != NULL) {
				OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0,
				    cfg->tls_trust_pem);
				srv->tls_client_auth = 1;
			}
		}
		OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
		srv->d[i] = MHD_start_daemon(flags, 0, accept_cb, srv,
		    access_cb, srv, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
		if (srv->d[i] == NULL) {
			http_server_stop(srv);
			return ck_err_set(CK_E_IO, "cannot listen on %s port %u "
			    "(in use, or a bad TLS key/certificate)", cfg->addr,
			    (unsigned)cfg->port);
		}
		srv->nd++;
		/* The others join the port the first one got. */
		if (i == 0 && cfg->port == 0) {
			uint16_t port = http_server_port(srv);
			if (ss.ss_family == AF_INET)
				s4->sin_port = htons(port);
			else
				s6->sin6_port = htons(port);
		}
	}
	*out = srv;
	return 0;
}

uint16_t
http_server_port(const struct http_server *srv)
{
	const union MHD_DaemonInfo *di;

	if (srv->nd == 0)
		return 0;
	di = MHD_get_daemon_info(srv->d[0], MHD_DAEMON_INFO_BIND_PORT);
	return di ? di->port : 0;
}

void
http_server_quiesce(struct http_server *srv)
{
	MHD_socket s;

	if (srv == NULL || srv->quiesced)
		return;
	for (unsigned i = 0; i < srv->nd; i++) {
		s = MHD_quiesce_daemon(srv->d[i]);
		if (s != MHD_INVALID_SOCKET)
			close(s);
	}
	srv->quiesced = 1;
}

void
http_server_drain(struct http_server *srv, unsigned timeout_s)
{
	struct timespec ts = { 0, 10 * 1000000L };
	unsigned i;

	if (srv == NULL)
		return;
	pthread_rwlock_wrlock(&srv->gate);
	srv->closed = 1;
	pthread_rwlock_unlock(&srv->gate);
	for (i = 0; i < timeout_s * 100 && atomic_load(&srv->active) > 0; i++)
		nanosleep(&ts, NULL);
}

void
http_server_stop(struct http_server *srv)
{
	unsigned i;

	if (srv == NULL)
		return;
	for (i = 0; i < srv->nd; i++)
		MHD_stop_daemon(srv->d[i]);
	pthread_rwlock_destroy(&srv->gate);
	pthread_mutex_destroy(&srv->ip_mu);
	free(srv->ips);
	free(srv->routes);
	free(srv);
}
