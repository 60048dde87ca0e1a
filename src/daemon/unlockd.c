/*
 * unlockd.c - the locked start-up (unlockd.h).
 */
#include "daemon/unlockd.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authz/admin.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "daemon/adminsock.h"

#define SHARE_END "-----END CERTKEEP KEY SHARE-----"

static void
wipe_free(void *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

void
unlockd_json_wipe(void)
{
	json_set_alloc_funcs(malloc, wipe_free);
}

int
unlockd_request_parse(const json_t *req, const char **op, const char **share,
    size_t *len)
{
	const char *key;
	json_t *v, *o, *sh = NULL;

	*op = NULL;
	*share = NULL;
	*len = 0;
	if (!json_is_object(req))
		return ck_err_set(CK_E_PARSE, "unlock request: not a JSON "
		    "object");
	if (!json_is_string(o = json_object_get(req, "action")))
		return ck_err_set(CK_E_PARSE, "certkeepd is locked, waiting "
		    "for key shares: only unlock and unlock-status are served");
	json_object_foreach((json_t *)req, key, v) {
		if (strcmp(key, "action") == 0)
			continue;
		if (strcmp(key, "share") == 0 && json_is_string(v)) {
			sh = v;
			continue;
		}
		return ck_err_set(CK_E_PARSE, "unlock request: unexpected "
		    "member \"%.64s\" (certkeepd is locked, waiting for key "
		    "shares)", key);
	}
	if (strcmp(json_string_value(o), "unlock-status") == 0) {
		if (sh != NULL)
			return ck_err_set(CK_E_PARSE, "unlock request: a share "
			    "with unlock-status");
		*op = "unlock-status";
		return 0;
	}
	if (strcmp(json_string_value(o), "unlock") != 0)
		return ck_err_set(CK_E_PARSE, "certkeepd is locked, waiting "
		    "for key shares: only unlock and unlock-status are served "
		    "(not \"%.64s\")", json_string_value(o));
	if (sh == NULL || json_string_length(sh) == 0)
		return ck_err_set(CK_E_PARSE, "unlock request: no share");
	if (json_string_length(sh) > UNLOCK_SHARE_MAX)
		return ck_err_set(CK_E_TOOBIG, "unlock request: a share of "
		    "%zu bytes (at most %u)", json_string_length(sh),
		    UNLOCK_SHARE_MAX);
	*op = "unlock";
	*share = json_string_value(sh);
	*len = json_string_length(sh);
	return 0;
}

/* ---- the socket -------------------------------------------------------- */

static void
send_reply(int fd, json_t *j)
{
	unsigned char hdr[4];
	char *text;
	size_t len, off = 0;
	ssize_t n;

	if (j == NULL || (text = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		return;
	}
	len = strlen(text);
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	if (send(fd, hdr, 4, MSG_NOSIGNAL) == 4)
		while (off < len && ((n = send(fd, text + off, len - off,
		    MSG_NOSIGNAL)) > 0 || (n < 0 && errno == EINTR)))
			off += n > 0 ? (size_t)n : 0;
	free(text);
	json_decref(j);
}

static void
send_error(int fd, int code, const char *msg)
{
	char buf[1200];

	snprintf(buf, sizeof(buf), "error: %s", msg);
	send_reply(fd, json_pack("{s:b, s:i, s:s, s:b}", "ok", 0, "code", code,
	    "error", buf, "refused", 0));
}

static json_t *
progress(const struct unlock_collector *c, const char *what)
{
	char out[512];
	unsigned have = unlock_collector_have(c), need =
	    unlock_collector_need(c);

	snprintf(out, sizeof(out), "%s%slocked: %u of %u shares (%u more "
	    "needed)\n", what, what[0] ? "\n" : "", have, need, need - have);
	return json_pack("{s:b, s:b, s:i, s:i, s:s}", "ok", 1, "locked", 1,
	    "have", (int)have, "need", (int)need, "out", out);
}

/* "uid 1000 (alice)" */
static void
peer_name(uid_t uid, char *buf, size_t bufsz)
{
	struct passwd pw, *res = NULL;
	char pbuf[1024];

	if (getpwuid_r(uid, &pw, pbuf, sizeof(pbuf), &res) == 0 && res != NULL)
		snprintf(buf, bufsz, "uid %u (%s)", (unsigned)uid, pw.pw_name);
	else
		snprintf(buf, bufsz, "uid %u", (unsigned)uid);
}

/* One connection. 1 when the key's passphrase is rebuilt (*pw). */
static int
serve_one(struct unlock_collector *c, int fd, struct ck_secret **pw)
{
	struct timeval tv = { ADMINSOCK_TIMEOUT_S, 0 };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct ck_secret *buf = NULL;
	json_t *req = NULL;
	const char *op, *share;
	char from[128], msg[1024];
	size_t slen;
	uint32_t n;
	int r, done = 0;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    clen != sizeof(cred))
		return 0;
	peer_name(cred.uid, from, sizeof(from));
	if ((buf = ck_secret_new(4 + ADMIN_REQUEST_MAX)) == NULL) {
		send_error(fd, CK_E_NOMEM, "out of memory");
		return 0;
	}
	if (ck_read_full(fd, buf->buf, 4) != 0)
		goto out;
	n = (uint32_t)buf->buf[0] << 24 | (uint32_t)buf->buf[1] << 16 |
	    (uint32_t)buf->buf[2] << 8 | buf->buf[3];
	if (n == 0 || n > ADMIN_REQUEST_MAX) {
		send_error(fd, CK_E_TOOBIG, "request too large");
		goto out;
	}
	if (ck_read_full(fd, buf->buf + 4, n) != 0)
		goto out;
	buf->len = 4 + (size_t)n;
	if ((r = adminsock_decode(buf->buf, buf->len, &req)) != 0 ||
	    (r = unlockd_request_parse(req, &op, &share, &slen)) != 0) {
		ck_warn("locked admin socket: %s: %s", from, ck_err_msg());
		send_error(fd, r, ck_err_msg());
		goto out;
	}
	if (strcmp(op, "unlock-status") == 0) {
		send_reply(fd, progress(c, ""));
		goto out;
	}
	if ((r = unlock_collector_add(c, (const unsigned char *)share, slen,
	    from)) != 0) {
		snprintf(msg, sizeof(msg), "%s (it does not count; %u of %u "
		    "shares in)", ck_err_msg(), unlock_collector_have(c),
		    unlock_collector_need(c));
		ck_warn("unlock: share from %s refused: %s", from, msg);
		send_error(fd, r, msg);
		goto out;
	}
	ck_info("unlock: a share from %s accepted (%u of %u)", from,
	    unlock_collector_have(c), unlock_collector_need(c));
	if (unlock_collector_have(c) < unlock_collector_need(c)) {
		send_reply(fd, progress(c, "share accepted"));
		goto out;
	}
	if ((r = unlock_collector_finish(c, pw)) != 0) {
		ck_error("unlock: %s", ck_err_msg());
		send_error(fd, r, ck_err_msg());
		goto out;
	}
	send_reply(fd, json_pack("{s:b, s:b, s:b, s:i, s:i, s:s}", "ok", 1,
	    "locked", 0, "unlocked", 1, "have", (int)unlock_collector_need(c),
	    "need", (int)unlock_collector_need(c), "out",
	    "share accepted: the unlock secret is rebuilt; certkeepd opens "
	    "the key and starts serving\n"));
	done = 1;
out:
	if (req != NULL) {
		/* The share's text in the JSON string: wiped with the rest
		 * by wipe_free, but only if jansson frees it here. */
		json_decref(req);
	}
	ck_secret_free(buf);
	return done;
}

int
unlockd_wait(const char *home, struct unlock_collector *c,
    const sigset_t *stop, int *listen_fd, struct ck_secret **pw)
{
	struct sockaddr_un sa;
	struct pollfd pfd[2];
	struct signalfd_siginfo si;
	socklen_t salen;
	int lfd = -1, sfd = -1, fd, r;

	*listen_fd = -1;
	*pw = NULL;
	unlockd_json_wipe();
	if ((r = adminsock_address(home, &sa, &salen)) != 0)
		return r;
	if ((sfd = signalfd(-1, stop, SFD_CLOEXEC)) < 0)
		return ck_err_set(CK_E_IO, "signalfd: %s", strerror(errno));
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		r = ck_err_set(CK_E_IO, "admin socket: %s", strerror(errno));
		goto out;
	}
	if (bind(lfd, (struct sockaddr *)&sa, salen) != 0) {
		r = errno == EADDRINUSE ? ck_err_set(CK_E_BUSY, "the admin "
		    "socket @%s is taken (by another process that is not "
		    "this home's certkeepd?)", sa.sun_path + 1) :
		    ck_err_set(CK_E_IO, "admin socket: bind: %s",
		    strerror(errno));
		goto out;
	}
	if (listen(lfd, 16) != 0) {
		r = ck_err_set(CK_E_IO, "admin socket: listen: %s",
		    strerror(errno));
		goto out;
	}
	ck_info("locked: waiting for %u key shares (certkeep unlock --share "
	    "FILE)", unlock_collector_need(c));
	for (;;) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = ck_err_set(CK_E_IO, "poll: %s", strerror(errno));
			goto out;
		}
		if (pfd[1].revents & POLLIN) {
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
			    si.ssi_signo == SIGHUP)
				continue;	/* nothing to reload yet */
			r = ck_err_set(CK_E_STATE, "stopped while locked "
			    "(%u of %u key shares given)",
			    unlock_collector_have(c),
			    unlock_collector_need(c));
			goto out;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		r = serve_one(c, fd, pw);
		close(fd);
		if (r == 1)
			break;
	}
	*listen_fd = lfd;
	lfd = -1;
	r = 0;
out:
	if (lfd >= 0)
		close(lfd);
	close(sfd);
	/* Every share has passed; the server's JSON need not pay for the
	 * wipe (the allocator underneath is the same). */
	json_set_alloc_funcs(malloc, free);
	return r;
}

/* ---- the prompt -------------------------------------------------------- */

/* One share's text from IN into BUF, up to and with its END line. 0, or
 * 1 at the end of input before any text, or a negative code. */
static int
read_share(int in, struct ck_secret *buf)
{
	size_t line = 0;
	ssize_t n;
	unsigned char ch;

	buf->len = 0;
	for (;;) {
		n = read(in, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return buf->len == 0 ? 1 : ck_err_set(CK_E_PARSE,
			    "the input ended inside a share");
		if (buf->len == 0 && (ch == '\n' || ch == '\r' || ch == ' ' ||
		    ch == '\t'))
			continue;	/* blank lines between shares */
		if (buf->len == buf->cap)
			return ck_err_set(CK_E_TOOBIG, "a share of over %zu "
			    "bytes", buf->cap);
		buf->buf[buf->len++] = ch;
		if (ch != '\n') {
			continue;
		}
		/* The line that just ended: the END line closes the share. */
		{
			size_t ll = buf->len - line - 1;
			const unsigned char *l = buf->buf + line;
			if (ll > 0 && l[ll - 1] == '\r')
				ll--;
			if (ll == strlen(SHARE_END) &&
			    memcmp(l, SHARE_END, ll) == 0)
				return 0;
		}
		line = buf->len;
	}
}

int
unlockd_prompt(int in, FILE *out, struct unlock_collector *c,
    struct ck_secret **pw)
{
	struct termios old, quiet;
	struct ck_secret *buf = NULL;
	int tty = isatty(in), restore = 0, r;

	*pw = NULL;
	if ((buf = ck_secret_new(UNLOCK_SHARE_MAX)) == NULL)
		return CK_E_NOMEM;
	if (tty && tcgetattr(in, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(in, TCSAFLUSH, &quiet) == 0;
	}
	fprintf(out, "The CA key needs %u key shares. Paste each share "
	    "file's text, one after another%s.\n", unlock_collector_need(c),
	    restore ? " (not shown)" : "");
	for (;;) {
		fprintf(out, "Share %u of %u: ", unlock_collector_have(c) + 1,
		    unlock_collector_need(c));
		fflush(out);
		if ((r = read_share(in, buf)) != 0) {
			/* The end of input, or a share that cannot end
			 * (cut short, oversized): nothing more to read. */
			if (r == 1)
				r = ck_err_set(CK_E_STATE, "the input ended: "
				    "%u of %u key shares given",
				    unlock_collector_have(c),
				    unlock_collector_need(c));
			fprintf(out, "\n%s\n", ck_err_msg());
			goto out;
		}
		r = unlock_collector_add(c, buf->buf, buf->len, "prompt");
		ck_wipe(buf->buf, buf->len);
		buf->len = 0;
		if (r != 0) {
			fprintf(out, "\nrefused: %s (it does not count)\n",
			    ck_err_msg());
			continue;
		}
		fprintf(out, "\naccepted: %u of %u shares\n",
		    unlock_collector_have(c), unlock_collector_need(c));
		if (unlock_collector_have(c) < unlock_collector_need(c))
			continue;
		if ((r = unlock_collector_finish(c, pw)) != 0) {
			fprintf(out, "%s\n", ck_err_msg());
			continue;
		}
		fprintf(out, "the unlock secret is rebuilt\n");
		r = 0;
		break;
	}
out:
	fflush(out);
	if (restore)
		(void)tcsetattr(in, TCSAFLUSH, &old);
	ck_secret_free(buf);
	return r;
}
