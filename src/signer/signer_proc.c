/*
 * signer_proc.c - the service process's side of the signer process:
 * starting it, and calling it from many threads at once.
 *
 * Writers take a lock for the length of one message; one reader thread
 * reads every reply and hands it to the thread waiting for its id. A
 * reply that is not well formed, or carries an id nobody waits for, is
 * treated like the death of the signer: the process is killed and every
 * call fails from then on (fail closed).
 */
#include "signer/signer_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

struct waiter {
	uint32_t id;
	int done;		/* 1: reply in; -1: the signer died */
	struct signer_msg rep;
	unsigned char *body;
	pthread_cond_t cv;
	struct waiter *next;
};

struct signer_proc {
	pid_t pid;
	int fd;
	pthread_mutex_t mu;	/* waiters, dead, why, next_id */
	pthread_mutex_t wmu;	/* one message at a time on the socket */
	struct waiter *waiters;
	uint32_t next_id;
	int dead;
	char why[256];
	int reader_started;
	pthread_t reader;
	void (*on_death)(void *, const char *);
	void *arg;
	unsigned timeout_s;	/* a reply later than this: taken for dead */
};

static int
write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	ssize_t k;

	while (n > 0) {
		k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Mark the signer gone: wake everyone, tell the owner once. */
static void
set_dead(struct signer_proc *sp, const char *why)
{
	struct waiter *w;
	void (*fn)(void *, const char *) = NULL;
	int first;

	pthread_mutex_lock(&sp->mu);
	first = !sp->dead;
	if (first) {
		sp->dead = 1;
		snprintf(sp->why, sizeof(sp->why), "%s", why);
		fn = sp->on_death;
	}
	for (w = sp->waiters; w != NULL; w = w->next)
		if (!w->done) {
			w->done = -1;
			pthread_cond_signal(&w->cv);
		}
	pthread_mutex_unlock(&sp->mu);
	if (first && sp->pid > 0)
		(void)kill(sp->pid, SIGKILL);
	if (fn != NULL)
		fn(sp->arg, why);
}

static void *
reader_main(void *arg)
{
	struct signer_proc *sp = arg;
	unsigned char hdr[SIGNER_MSG_HDR], *body;
	struct signer_msg m;
	struct waiter *w;
	unsigned type;
	uint32_t id, len;
	char why[256];

	for (;;) {
		body = NULL;
		if (ck_read_full(sp->fd, hdr, sizeof(hdr)) != 0) {
			set_dead(sp, "the signer process died");
			break;
		}
		if (signer_msg_header(hdr, &type, &id, &len) != 0 ||
		    type < 0x80) {
			snprintf(why, sizeof(why), "the signer process sent a "
			    "bad reply: %s", ck_err_msg());
			set_dead(sp, why);
			break;
		}
		if (len > 0 && ((body = malloc(len)) == NULL ||
		    ck_read_full(sp->fd, body, len) != 0)) {
			free(body);
			set_dead(sp, "the signer process died mid-reply");
			break;
		}
		if (signer_msg_decode(type, id, body, len, &m) != 0) {
			snprintf(why, sizeof(why), "the signer process sent a "
			    "bad reply: %s", ck_err_msg());
			signer_msg_clear(&m);
			free(body);
			set_dead(sp, why);
			break;
		}
		pthread_mutex_lock(&sp->mu);
		for (w = sp->waiters; w != NULL; w = w->next)
			if (w->id == id && !w->done)
				break;
		if (w != NULL) {
			w->rep = m;
			w->body = body;
			w->done = 1;
			pthread_cond_signal(&w->cv);
		}
		pthread_mutex_unlock(&sp->mu);
		if (w == NULL) {
			signer_msg_clear(&m);
			free(body);
			set_dead(sp, "the signer process replied to a request "
			    "never made");
			break;
		}
	}
	return NULL;
}

static int keep_stderr = 1;

void
signer_proc_keep_stderr(int keep)
{
	keep_stderr = keep;
}

int
signer_proc_start(const char *home, struct signer_proc **out)
{
	return signer_proc_start_as(home, NULL, out);
}

int
signer_proc_start_as(const char *home, const char *key_user,
    struct signer_proc **out)
{
	struct signer_proc *sp;
	int sv[2];
	pid_t pid;

	if ((sp = calloc(1, sizeof(*sp))) == NULL)
		return CK_E_NOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		free(sp);
		return ck_err_set(CK_E_IO, "socketpair: %s", strerror(errno));
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(sv[0]);
		close(sv[1]);
		free(sp);
		return ck_err_set(CK_E_IO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* Nothing of the service's but the socket and stdio. */
		if (sv[1] != 3) {
			if (dup2(sv[1], 3) < 0)
				_exit(3);
		} else
			(void)fcntl(3, F_SETFD, 0);
		/* Not the starter's terminal (root's, maybe): stdin and
		 * stdout never, stderr only when asked (--foreground: the
		 * signer's fatal lines, the seccomp log mode). */
		{
			int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (nul < 0)
				_exit(3);
			(void)dup2(nul, 0);
			(void)dup2(nul, 1);
			if (!keep_stderr)
				(void)dup2(nul, 2);
		}
		(void)syscall(SYS_close_range, 4U, ~0U, 0U);
		signer_proc_child_as(3, home, key_user);
	}
	close(sv[1]);
	sp->pid = pid;
	sp->fd = sv[0];
	sp->next_id = 1;
	sp->timeout_s = SIGNER_PROC_TIMEOUT;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_mutex_init(&sp->wmu, NULL);
	if (pthread_create(&sp->reader, NULL, reader_main, sp) != 0) {
		signer_proc_free(sp);
		return ck_err_set(CK_E_INTERNAL, "cannot start the signer "
		    "reader thread");
	}
	sp->reader_started = 1;
	*out = sp;
	return 0;
}

int
signer_proc_call(struct signer_proc *sp, const struct signer_msg *req,
    struct signer_msg *rep, unsigned char **body)
{
	struct signer_buf b = { 0 };
	int r;

	memset(rep, 0, sizeof(*rep));
	*body = NULL;
	if ((r = signer_msg_encode(req, &b)) == 0)
		r = signer_proc_call_encoded(sp, &b, rep, body);
	signer_buf_free(&b);
	return r;
}

int
signer_proc_call_encoded(struct signer_proc *sp, struct signer_buf *b,
    struct signer_msg *rep, unsigned char **body)
{
	struct waiter w, **pp;
	uint32_t id;
	pthread_condattr_t ca;
	struct timespec until;
	int r, done, late = 0;

	memset(rep, 0, sizeof(*rep));
	*body = NULL;
	memset(&w, 0, sizeof(w));
	/* Monotonic: a clock step must not end (or stretch) the wait. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&sp->mu);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += sp->timeout_s;
	if (sp->dead) {
		pthread_mutex_unlock(&sp->mu);
		r = ck_err_set(CK_E_CRYPTO, "signer unavailable: %s",
		    sp->why);
		goto out;
	}
	if ((id = sp->next_id++) == 0)
		id = sp->next_id++;
	w.id = id;
	w.next = sp->waiters;
	sp->waiters = &w;
	pthread_mutex_unlock(&sp->mu);

	r = 0;
	if (b->len < SIGNER_MSG_HDR)
		r = ck_err_set(CK_E_INVAL, "signer message: not encoded");
	else {
		b->p[4] = (unsigned char)(id >> 24);
		b->p[5] = (unsigned char)(id >> 16);
		b->p[6] = (unsigned char)(id >> 8);
		b->p[7] = (unsigned char)id;
		pthread_mutex_lock(&sp->wmu);
		if (write_full(sp->fd, b->p, b->len) != 0)
			r = CK_E_IO;
		pthread_mutex_unlock(&sp->wmu);
		if (r != 0)
			set_dead(sp, "the signer process died (it takes no "
			    "more requests)");
	}

	pthread_mutex_lock(&sp->mu);
	while (r == 0 && !w.done)
		if (pthread_cond_timedwait(&w.cv, &sp->mu, &until) ==
		    ETIMEDOUT && !w.done) {
			late = 1;
			break;
		}
	if (late) {
		/* Stopped or stuck (SIGSTOP, a hung token): as dead, so that
		 * no thread waits on it again; set_dead() takes the lock. */
		pthread_mutex_unlock(&sp->mu);
		{
			char why[128];
			snprintf(why, sizeof(why), "the signer process did "
			    "not answer within %u s", sp->timeout_s);
			set_dead(sp, why);
		}
		pthread_mutex_lock(&sp->mu);
	}
	for (pp = &sp->waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	done = w.done;
	pthread_mutex_unlock(&sp->mu);
	if (r != 0) {
		if (r == CK_E_IO)
			r = ck_err_set(CK_E_CRYPTO, "signer unavailable: %s",
			    sp->why);
		goto out;
	}
	if (done < 0) {
		r = ck_err_set(CK_E_CRYPTO, "signer unavailable: %s",
		    sp->why);
		goto out;
	}
	if (w.rep.type == SIGNER_MSG_R_ERR) {
		r = ck_err_set(w.rep.u.err.code, "%s", w.rep.u.err.msg);
		signer_msg_clear(&w.rep);
		free(w.body);
		goto out;
	}
	*rep = w.rep;
	*body = w.body;
	r = 0;
out:
	pthread_cond_destroy(&w.cv);
	return r;
}

int
signer_proc_unlock(struct signer_proc *sp, const struct ck_secret *pw)
{
	struct signer_msg req, rep;
	unsigned char *body = NULL;
	int r;

	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_UNLOCK;
	req.u.secret.buf = pw->buf;
	req.u.secret.len = pw->len;
	/* The encoded copy is wiped by signer_buf_free(). */
	r = signer_proc_call(sp, &req, &rep, &body);
	if (r == 0 && rep.type != SIGNER_MSG_R_OK)
		r = ck_err_set(CK_E_INTERNAL, "the signer process answered "
		    "unlock with %s", signer_msg_type_name(rep.type));
	signer_msg_clear(&rep);
	free(body);
	return r;
}

void
signer_proc_set_timeout(struct signer_proc *sp, unsigned seconds)
{
	pthread_mutex_lock(&sp->mu);
	sp->timeout_s = seconds > 0 ? seconds : SIGNER_PROC_TIMEOUT;
	pthread_mutex_unlock(&sp->mu);
}

void
signer_proc_on_death(struct signer_proc *sp, void (*fn)(void *,
    const char *), void *arg)
{
	char why[sizeof(sp->why)];
	int dead;

	pthread_mutex_lock(&sp->mu);
	sp->on_death = fn;
	sp->arg = arg;
	dead = sp->dead;
	snprintf(why, sizeof(why), "%s", sp->why);
	pthread_mutex_unlock(&sp->mu);
	/* Died before anyone listened: tell now, or the owner would serve
	 * on with every signature failing. */
	if (dead && fn != NULL)
		fn(arg, why);
}

int
signer_proc_dead(struct signer_proc *sp, char *why, size_t whysz)
{
	int d;

	pthread_mutex_lock(&sp->mu);
	d = sp->dead;
	if (why != NULL && whysz > 0)
		snprintf(why, whysz, "%s", d ? sp->why : "");
	pthread_mutex_unlock(&sp->mu);
	return d;
}

pid_t
signer_proc_pid(const struct signer_proc *sp)
{
	return sp->pid;
}

int
signer_proc_fd(const struct signer_proc *sp)
{
	return sp->fd;
}

void
signer_proc_free(struct signer_proc *sp)
{
	int status;

	if (sp == NULL)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->on_death = NULL;	/* an orderly stop is not a death */
	pthread_mutex_unlock(&sp->mu);
	/* The signer exits when its end reads EOF; the reader thread then
	 * sees EOF too. */
	(void)shutdown(sp->fd, SHUT_RDWR);
	if (sp->reader_started)
		pthread_join(sp->reader, NULL);
	close(sp->fd);
	if (sp->pid > 0)
		(void)waitpid(sp->pid, &status, 0);
	pthread_mutex_destroy(&sp->mu);
	pthread_mutex_destroy(&sp->wmu);
	free(sp);
}
