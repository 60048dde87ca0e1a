/*
 * adminsock.c - the admin socket (adminsock.h).
 */
#include "daemon/adminsock.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "authz/admin.h"
#include "common/err.h"
#include "ca/ca.h"
#include "common/fsutil.h"
#include "common/privs.h"
#include "common/log.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "daemon/server.h"

#define NAME_PREFIX "certkeep-admin-"

struct adminsock {
	int fd;
	struct admin_env env;
	struct server *sv;
	pthread_t threads[ADMINSOCK_THREADS];
	int nthreads;
	int stopping;		/* read racily by the threads: only a hint */
	struct ck_budget refusals;	/* ADMINSOCK_REFUSALS_PER_S */
};

int
adminsock_address(const char *home, struct sockaddr_un *sa,
    socklen_t *salen)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char real[PATH_MAX], hex[65];
	size_t n;

	/* The real path: "--home ca" and "--home /srv/ca" meet. */
	if (realpath(home, real) == NULL)
		return ck_err_set(CK_E_NOTFOUND, "no CA home at %s: %s", home,
		    strerror(errno));
	SHA256((const unsigned char *)real, strlen(real), md);
	ck_hex_encode(md, 16, hex);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* sun_path[0] = '\0': the abstract namespace. */
	n = (size_t)snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
	    "%s%s", NAME_PREFIX, hex);
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	return 0;
}

static uint32_t
be32_get(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
be32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

int
adminsock_decode(const unsigned char *buf, size_t len, json_t **out)
{
	json_error_t jerr;
	json_t *j;
	uint32_t n;

	*out = NULL;
	if (len < 4)
		return ck_err_set(CK_E_PARSE, "admin request: %zu bytes, no "
		    "length", len);
	n = be32_get(buf);
	if (n == 0 || n > ADMIN_REQUEST_MAX)
		return ck_err_set(CK_E_TOOBIG, "admin request: a length of "
		    "%u bytes (1 to %u allowed)", n, ADMIN_REQUEST_MAX);
	if (n != len - 4)
		return ck_err_set(CK_E_PARSE, "admin request: %zu bytes after "
		    "a length of %u", len - 4, n);
	if ((j = json_loadb((const char *)buf + 4, n, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL)
		return ck_err_set(CK_E_PARSE, "admin request: not JSON: %s "
		    "(at byte %d)", jerr.text, jerr.position);
	if (!json_is_object(j)) {
		json_decref(j);
		return ck_err_set(CK_E_PARSE, "admin request: not a JSON "
		    "object");
	}
	*out = j;
	return 0;
}

static int
write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send J framed. */
static int
send_json(int fd, const json_t *j, size_t max)
{
	unsigned char hdr[4];
	char *text;
	size_t len;
	int r;

	if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
		return CK_E_NOMEM;
	len = strlen(text);
	if (len > max) {
		free(text);
		return ck_err_set(CK_E_TOOBIG, "admin message: %zu bytes, "
		    "more than %zu", len, max);
	}
	be32_put(hdr, (uint32_t)len);
	r = write_full(fd, hdr, 4) == 0 && write_full(fd, text, len) == 0 ?
	    0 : ck_err_set(CK_E_IO, "admin socket: cannot send: %s",
	    strerror(errno));
	free(text);
	return r;
}

static void
send_error(int fd, int code, const char *msg)
{
	char buf[1200];
	json_t *j;

	snprintf(buf, sizeof(buf), "error: %s", msg);
	j = json_pack("{s:b, s:i, s:s, s:b}", "ok", 0, "code", code, "error",
	    buf, "refused", 0);
	if (j != NULL)
		(void)send_json(fd, j, ADMIN_REPLY_MAX);
	json_decref(j);
}

static void
set_timeouts(int fd)
{
	struct timeval tv = { ADMINSOCK_TIMEOUT_S, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * After an error reply to a request not read in full: stop sending and
 * drop what the client still sends for a moment, so that closing with
 * unread data does not reset the connection before the client has read
 * the reply.
 */
static void
drain(int fd)
{
	struct timeval tv = { 1, 0 };
	char junk[4096];
	size_t total = 0;
	ssize_t n;

	(void)shutdown(fd, SHUT_WR);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (total < 4 * ADMIN_REQUEST_MAX &&
	    (n = read(fd, junk, sizeof(junk))) > 0)
		total += (size_t)n;
}

/* One connection: one request, one reply. */
static void
serve(struct adminsock *as, int fd)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	unsigned char *buf = NULL;
	json_t *req = NULL, *reply = NULL;
	uint32_t n;
	int r;

	set_timeouts(fd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    clen != sizeof(cred)) {
		ck_warn("admin socket: no peer credentials: %s",
		    strerror(errno));
		return;
	}
	if ((buf = malloc(4 + ADMIN_REQUEST_MAX)) == NULL) {
		send_error(fd, CK_E_NOMEM, "out of memory");
		return;
	}
	if (ck_read_full(fd, buf, 4) != 0) {
		ck_info("admin socket: uid %u sent no request",
		    (unsigned)cred.uid);
		goto out;
	}
	n = be32_get(buf);
	if (n == 0 || n > ADMIN_REQUEST_MAX) {
		(void)adminsock_decode(buf, 4, &req);
		ck_warn("admin socket: uid %u: %s", (unsigned)cred.uid,
		    ck_err_msg());
		send_error(fd, CK_E_TOOBIG, ck_err_msg());
		drain(fd);
		goto out;
	}
	if (ck_read_full(fd, buf + 4, n) != 0) {
		ck_warn("admin socket: uid %u: a request cut short",
		    (unsigned)cred.uid);
		goto out;
	}
	if ((r = adminsock_decode(buf, 4 + (size_t)n, &req)) != 0) {
		ck_warn("admin socket: uid %u: %s", (unsigned)cred.uid,
		    ck_err_msg());
		send_error(fd, r, ck_err_msg());
		goto out;
	}
	if ((reply = admin_exec(&as->env, cred.uid, req)) == NULL) {
		send_error(fd, CK_E_NOMEM, "out of memory");
		goto out;
	}
	if (send_json(fd, reply, ADMIN_REPLY_MAX) != 0) {
		ck_warn("admin socket: uid %u: %s", (unsigned)cred.uid,
		    ck_err_msg());
		if (ck_err_msg()[0] != '\0' && strstr(ck_err_msg(),
		    "more than") != NULL)
			send_error(fd, CK_E_TOOBIG, ck_err_msg());
	}
out:
	json_decref(req);
	json_decref(reply);
	free(buf);
}

static void *
serve_main(void *arg)
{
	struct adminsock *as = arg;
	int fd;

	for (;;) {
		fd = accept4(as->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (as->stopping || errno == EINVAL ||
			    errno == EBADF)
				break;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* EMFILE and the like: wait, do not spin. */
			ck_warn("admin socket: accept: %s", strerror(errno));
			usleep(100000);
			continue;
		}
		serve(as, fd);
		close(fd);
	}
	return NULL;
}

void
adminsock_changed(void *arg, int revoked)
{
	struct server *sv = arg;

	pthread_mutex_lock(&sv->hk_mu);
	if (revoked)
		sv->crl_wanted = 1;
	pthread_cond_signal(&sv->hk_cv);
	pthread_mutex_unlock(&sv->hk_mu);
}

int
adminsock_start(struct server *sv, const char *home, struct adminsock **out)
{
	return adminsock_start_fd(sv, home, -1, out);
}

int
adminsock_start_fd(struct server *sv, const char *home, int fd,
    struct adminsock **out)
{
	struct adminsock *as = NULL;
	struct sockaddr_un sa;
	socklen_t salen;
	int r, i;

	if ((as = calloc(1, sizeof(*as))) == NULL) {
		if (fd >= 0)
			close(fd);
		return CK_E_NOMEM;
	}
	as->fd = -1;
	as->sv = sv;
	as->env.ca = sv->ca;
	as->env.rd = sv->rd;
	as->env.rd_mu = &sv->rd_mu;
	as->env.cfg_lock = &sv->lock;
	as->env.pl = sv->pl;
	as->env.changed = adminsock_changed;
	as->env.changed_arg = sv;
	ck_budget_init(&as->refusals, ADMINSOCK_REFUSALS_PER_S);
	as->env.refusals = &as->refusals;
	if ((r = admin_home_owner(home, &as->env.owner)) != 0 ||
	    (r = adminsock_address(home, &sa, &salen)) != 0)
		goto fail;
	if (fd >= 0) {
		/* Already bound and listening (the locked start-up's). */
		as->fd = fd;
		fd = -1;
		goto threads;
	}
	if ((as->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		r = ck_err_set(CK_E_IO, "admin socket: %s", strerror(errno));
		goto fail;
	}
	if (bind(as->fd, (struct sockaddr *)&sa, salen) != 0) {
		r = errno == EADDRINUSE ? ck_err_set(CK_E_BUSY, "the admin "
		    "socket @%s is taken (by another process that is not "
		    "this home's certkeepd?)", sa.sun_path + 1) :
		    ck_err_set(CK_E_IO, "admin socket: bind: %s",
		    strerror(errno));
		goto fail;
	}
	if (listen(as->fd, 16) != 0) {
		r = ck_err_set(CK_E_IO, "admin socket: listen: %s",
		    strerror(errno));
		goto fail;
	}
threads:
	for (i = 0; i < ADMINSOCK_THREADS; i++) {
		if (pthread_create(&as->threads[i], NULL, serve_main, as) !=
		    0)
			break;
		as->nthreads++;
	}
	if (as->nthreads == 0) {
		r = ck_err_set(CK_E_INTERNAL, "admin socket: no thread");
		goto fail;
	}
	*out = as;
	return 0;
fail:
	if (as->fd >= 0)
		close(as->fd);
	if (fd >= 0)
		close(fd);
	ck_budget_destroy(&as->refusals);
	free(as);
	return r;
}

void
adminsock_stop(struct adminsock *as)
{
	int i;

	if (as == NULL)
		return;
	as->stopping = 1;
	/* Wakes every thread blocked in accept() (EINVAL). */
	(void)shutdown(as->fd, SHUT_RDWR);
	for (i = 0; i < as->nthreads; i++)
		pthread_join(as->threads[i], NULL);
	close(as->fd);
	ck_budget_destroy(&as->refusals);
	free(as);
}

/* ---- the client --------------------------------------------------------- */

/* Our end of the root helper's socketpair, or -1. */
static int connector_fd = -1;

static int
connect_to(const struct sockaddr_un *sa, socklen_t salen, int *err)
{
	int fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		*err = errno;
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)sa, salen) != 0) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

int
adminsock_connector_start(const char *home)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int sv[2], r;
	pid_t pid;

	if ((r = adminsock_address(home, &sa, &salen)) != 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return ck_err_set(CK_E_IO, "socketpair: %s", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(sv[0]);
		close(sv[1]);
		return ck_err_set(CK_E_IO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* Root, with nothing but this socket: one byte in, one
		 * connection (or errno) out, until the other end closes. */
		unsigned char b;
		int fd, err;
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		(void)syscall(SYS_close_range, 4U, ~0U, 0U);
		while (read(3, &b, 1) == 1) {
			char cbuf[CMSG_SPACE(sizeof(int))];
			struct msghdr mh;
			struct iovec iov;
			struct cmsghdr *cm;
			err = 0;
			fd = connect_to(&sa, salen, &err);
			memset(&mh, 0, sizeof(mh));
			memset(cbuf, 0, sizeof(cbuf));
			iov.iov_base = &err;
			iov.iov_len = sizeof(err);
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			if (fd >= 0) {
				mh.msg_control = cbuf;
				mh.msg_controllen = sizeof(cbuf);
				cm = CMSG_FIRSTHDR(&mh);
				cm->cmsg_level = SOL_SOCKET;
				cm->cmsg_type = SCM_RIGHTS;
				cm->cmsg_len = CMSG_LEN(sizeof(int));
				memcpy(CMSG_DATA(cm), &fd, sizeof(int));
			}
			if (sendmsg(3, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(err))
				_exit(1);
			if (fd >= 0)
				close(fd);
		}
		_exit(0);
	}
	close(sv[1]);
	connector_fd = sv[0];
	return 0;
}

int
adminsock_connect(const char *home, int *fdp)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int fd = -1, err = 0, r;

	*fdp = -1;
	if (connector_fd >= 0) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct msghdr mh;
		struct iovec iov;
		struct cmsghdr *cm;
		unsigned char b = 1;
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = &err;
		iov.iov_len = sizeof(err);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		if (write(connector_fd, &b, 1) != 1 ||
		    recvmsg(connector_fd, &mh, MSG_CMSG_CLOEXEC) !=
		    (ssize_t)sizeof(err))
			return ck_err_set(CK_E_IO, "admin socket: the "
			    "connecting helper is gone");
		cm = CMSG_FIRSTHDR(&mh);
		if (cm != NULL && cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		else if (err == 0)
			err = EIO;
	} else {
		if ((r = adminsock_address(home, &sa, &salen)) != 0)
			return r;
		fd = connect_to(&sa, salen, &err);
	}
	if (fd < 0)
		return err == ECONNREFUSED || err == ENOENT ?
		    ck_err_set(CK_E_NOTFOUND, "no certkeepd serves %s", home) :
		    ck_err_set(CK_E_IO, "admin socket: connect: %s",
		    strerror(err));
	*fdp = fd;
	return 0;
}

/* On a home split between a key owner and a service user, certkeepd
 * serves as the service user its configuration (the key owner's) names. */
static int
is_service_user(const char *home, uid_t uid)
{
	struct ck_home_users hu;

	if (ck_ca_home_users(home, &hu) != 0) {
		ck_err_clear();
		return 0;
	}
	return hu.split && hu.svc_uid == uid;
}

int
adminsock_call(const char *home, const json_t *req, json_t **reply)
{
	struct ucred cred;
	struct stat sb;
	socklen_t clen = sizeof(cred);
	unsigned char hdr[4], *buf = NULL;
	json_error_t jerr;
	uint32_t n;
	int fd = -1, r;

	*reply = NULL;
	if (stat(home, &sb) != 0)
		return ck_err_set(CK_E_NOTFOUND, "no CA home at %s", home);
	if ((r = adminsock_connect(home, &fd)) != 0)
		goto out;
	/* Whoever bound the name must be the one who owns the home. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (cred.uid != sb.st_uid && cred.uid != 0 &&
	    !is_service_user(home, cred.uid))) {
		r = ck_err_set(CK_E_PERM, "the admin socket of %s is held by "
		    "uid %u, not by the home's owner (uid %u): not talking "
		    "to it", home, (unsigned)cred.uid, (unsigned)sb.st_uid);
		goto out;
	}
	set_timeouts(fd);
	if ((r = send_json(fd, req, ADMIN_REQUEST_MAX)) != 0)
		goto out;
	/* The server may take long (a big audit log): no receive timeout. */
	{
		struct timeval tv = { 0, 0 };
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (ck_read_full(fd, hdr, 4) != 0) {
		r = ck_err_set(CK_E_IO, "certkeepd closed the admin socket "
		    "without a reply");
		goto out;
	}
	n = be32_get(hdr);
	if (n == 0 || n > ADMIN_REPLY_MAX) {
		r = ck_err_set(CK_E_TOOBIG, "admin reply of %u bytes", n);
		goto out;
	}
	if ((buf = malloc(n)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if (ck_read_full(fd, buf, n) != 0) {
		r = ck_err_set(CK_E_IO, "admin reply cut short");
		goto out;
	}
	if ((*reply = json_loadb((const char *)buf, n, 0, &jerr)) == NULL ||
	    !json_is_object(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		r = ck_err_set(CK_E_PARSE, "admin reply: not a JSON object");
		goto out;
	}
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}
