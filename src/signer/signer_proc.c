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
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

/* The callers of one signer_proc_call_many(): woken once, by the last
 * reply (or the signer's death). */
struct wgroup {
	pthread_cond_t cv;
	size_t left;		/* waiters not done */
};

struct waiter {
	uint32_t id;
	int done;		/* 1: reply in; -1: the signer died */
	struct signer_msg rep;
	unsigned char *body;
	struct wgroup *g;
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
	struct signer_rbuf rb;	/* the reader thread's */
	void (*on_death)(void *, const char *);
	void *arg;
	unsigned timeout_s;	/* a reply later than this: taken for dead */
};

/* All of iov[0..n) (modified), or -1. */
static int
write_iov(int fd, struct iovec *iov, size_t n)
{
	struct msghdr mh;
	ssize_t k;

	while (n > 0) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = n;
		k = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (unsigned char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

/* One waiter is done; lock held. */
static void
waiter_done(struct waiter *w, int how)
{
	w->done = how;
	if (--w->g->left == 0)
		pthread_cond_signal(&w->g->cv);
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
		if (!w->done)
			waiter_done(w, -1);
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
		if (signer_rbuf_read(sp->fd, &sp->rb, hdr, sizeof(hdr)) != 0) {
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
		    signer_rbuf_read(sp->fd, &sp->rb, body, len) != 0)) {
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
			waiter_done(w, 1);
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
	int r;

	*body = NULL;
	if ((r = signer_proc_call_many(sp, &b, 1, rep, body)) != 0)
		return r;	/* no reply: nothing to free */
	if (rep->type == SIGNER_MSG_R_ERR) {
		r = ck_err_set(rep->u.err.code, "%s", rep->u.err.msg);
		signer_msg_clear(rep);
		free(*body);
		*body = NULL;
	}
	return r;
}

int
signer_proc_call_many(struct signer_proc *sp, struct signer_buf *const *b,
    size_t n, struct signer_msg *reps, unsigned char **bodies)
{
	struct waiter w1, *w, **pp;
	struct iovec iov[SIGNER_PROC_MANY_MAX];
	struct wgroup g;
	pthread_condattr_t ca;
	struct timespec until;
	size_t i, left;
	uint32_t id;
	int r = 0, late = 0, missing = 0;

	if (n == 0 || n > SIGNER_PROC_MANY_MAX)
		return ck_err_set(CK_E_INVAL, "signer call of %zu requests", n);
	for (i = 0; i < n; i++) {
		memset(&reps[i], 0, sizeof(reps[i]));
		bodies[i] = NULL;
		if (b[i]->len < SIGNER_MSG_HDR)
			return ck_err_set(CK_E_INVAL, "signer message: not "
			    "encoded");
	}
	/* A waiter holds a whole reply: on the heap for more than one. */
	if (n == 1)
		w = &w1;
	else if ((w = malloc(n * sizeof(*w))) == NULL)
		return CK_E_NOMEM;
	memset(w, 0, n * sizeof(*w));
	memset(&g, 0, sizeof(g));
	/* Monotonic: a clock step must not end (or stretch) the wait. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g.cv, &ca);
	pthread_condattr_destroy(&ca);
	g.left = n;
	pthread_mutex_lock(&sp->mu);
	if (sp->dead) {
		pthread_mutex_unlock(&sp->mu);
		r = ck_err_set(CK_E_CRYPTO, "signer unavailable: %s",
		    sp->why);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((id = sp->next_id++) == 0)
			id = sp->next_id++;
		w[i].id = id;
		w[i].g = &g;
		w[i].next = sp->waiters;
		sp->waiters = &w[i];
		b[i]->p[4] = (unsigned char)(id >> 24);
		b[i]->p[5] = (unsigned char)(id >> 16);
		b[i]->p[6] = (unsigned char)(id >> 8);
		b[i]->p[7] = (unsigned char)id;
		iov[i].iov_base = b[i]->p;
		iov[i].iov_len = b[i]->len;
	}
	pthread_mutex_unlock(&sp->mu);

	/* All in one write: the signer reads them with one read. */
	pthread_mutex_lock(&sp->wmu);
	if (write_iov(sp->fd, iov, n) != 0)
		r = CK_E_IO;
	pthread_mutex_unlock(&sp->wmu);
	if (r != 0)
		set_dead(sp, "the signer process died (it takes no more "
		    "requests)");

	/* The timeout runs from the last reply in: a signer that answers
	 * a batch one by one, slowly (a token), is not taken for stuck. */
	pthread_mutex_lock(&sp->mu);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += sp->timeout_s;
	left = g.left;
	while (g.left > 0)
		if (pthread_cond_timedwait(&g.cv, &sp->mu, &until) ==
		    ETIMEDOUT && g.left > 0) {
			if (g.left < left) {
				left = g.left;
				clock_gettime(CLOCK_MONOTONIC, &until);
				until.tv_sec += sp->timeout_s;
				continue;
			}
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
	for (i = 0; i < n; i++) {
		for (pp = &sp->waiters; *pp != NULL; pp = &(*pp)->next)
			if (*pp == &w[i]) {
				*pp = w[i].next;
				break;
			}
		/* What came in is kept: a certificate signed before the
		 * signer died is still a certificate. */
		if (w[i].done > 0) {
			reps[i] = w[i].rep;
			bodies[i] = w[i].body;
		} else
			missing = 1;
	}
	pthread_mutex_unlock(&sp->mu);
	if (missing)
		r = ck_err_set(CK_E_CRYPTO, "signer unavailable: %s",
		    sp->why);
	else
		r = 0;
out:
	pthread_cond_destroy(&g.cv);
	if (w != &w1)
		free(w);
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
