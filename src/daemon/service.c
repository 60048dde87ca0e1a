#include "daemon/service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/secmem.h"
#include "common/strutil.h"

static int
read_pid(const char *home, pid_t *pid)
{
	unsigned char *buf = NULL;
	char path[4200];
	uint64_t v;
	size_t len, n;
	int r;

	if ((r = ck_path_join(path, sizeof(path), home,
	    SERVICE_PID_FILE)) != 0 ||
	    (r = ck_fs_read(path, 64, &buf, &len)) != 0)
		return r;
	for (n = len; n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '); n--)
		buf[n - 1] = '\0';
	r = ck_parse_u64((char *)buf, 1, 4194304, "pid file", &v);
	free(buf);
	if (r == 0)
		*pid = (pid_t)v;
	return r;
}

int
service_lock(const char *home, int *fd_out)
{
	char path[4200];
	pid_t pid = 0;
	int fd, r;

	if ((r = ck_path_join(path, sizeof(path), home,
	    SERVICE_LOCK_FILE)) != 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ck_err_set(CK_E_IO, "cannot open %s: %s", path,
		    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		if (read_pid(home, &pid) == 0)
			return ck_err_set(CK_E_BUSY, "certkeepd is already "
			    "running on %s (pid %ld)", home, (long)pid);
		return ck_err_set(CK_E_BUSY, "certkeepd is already running "
		    "on %s", home);
	}
	*fd_out = fd;
	return 0;
}

int
service_pid_write(const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	return ck_fs_write_atomic(path, buf, (size_t)n, 0644);
}

int
service_running(const char *home, pid_t *pid)
{
	char path[4200];
	int fd, r;

	*pid = 0;
	if ((r = ck_path_join(path, sizeof(path), home,
	    SERVICE_LOCK_FILE)) != 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;	/* never started here */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;	/* nobody holds it */
	}
	close(fd);
	(void)read_pid(home, pid);
	return 1;
}

int
service_signal(const char *home, int sig)
{
	pid_t pid;
	int r;

	if ((r = service_running(home, &pid)) < 0)
		return r;
	if (r == 0)
		return ck_err_set(CK_E_STATE, "certkeepd is not running on %s",
		    home);
	if (pid <= 0)
		return ck_err_set(CK_E_STATE, "certkeepd on %s is starting or "
		    "has no pid file", home);
	if (kill(pid, sig) != 0)
		return ck_err_set(CK_E_PERM, "cannot signal pid %ld: %s",
		    (long)pid, strerror(errno));
	return 0;
}

int
service_wait_stopped(const char *home, unsigned timeout_s)
{
	struct timespec ts = { 0, 100 * 1000000L };
	unsigned i;
	pid_t pid;

	for (i = 0; i < timeout_s * 10; i++) {
		if (service_running(home, &pid) == 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	return ck_err_set(CK_E_BUSY, "certkeepd on %s did not stop within %u "
	    "seconds", home, timeout_s);
}

int
service_spawn(const char *exe, const char *home, const struct ck_secret *pw,
    int quiet)
{
	int p[2], status;
	pid_t pid;
	ssize_t w;

	if (pipe2(p, O_CLOEXEC) != 0)
		return ck_err_set(CK_E_IO, "pipe: %s", strerror(errno));
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return ck_err_set(CK_E_IO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* The read end as descriptor 3, not closed on exec (when it
		 * is 3 already, dup2 does nothing: clear the flag). */
		if (p[0] == 3) {
			if (fcntl(3, F_SETFD, 0) != 0)
				_exit(127);
		} else if (dup2(p[0], 3) < 0)
			_exit(127);
		if (quiet) {
			int dn = open("/dev/null", O_WRONLY);
			if (dn >= 0)
				dup2(dn, 1);
		}
		execl(exe, exe, "--home", home, "--passphrase-fd", "3",
		    (char *)NULL);
		fprintf(stderr, "certkeep: cannot run %s: %s\n", exe,
		    strerror(errno));
		_exit(127);
	}
	close(p[0]);
	/* A child that failed to start must not kill us with SIGPIPE. */
	{
		struct sigaction ign, old;
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &ign, &old);
		w = write(p[1], pw->buf, pw->len);
		if (w == (ssize_t)pw->len)
			w = write(p[1], "\n", 1);
		close(p[1]);
		sigaction(SIGPIPE, &old, NULL);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return ck_err_set(CK_E_IO, "waitpid: %s",
			    strerror(errno));
	if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return ck_err_set(CK_E_STATE, "certkeepd did not start on %s "
		    "(see its message above)", home);
	return 0;
}
