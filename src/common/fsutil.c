#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

/* Files opened before a drop of privileges (ck_fs_preopen_add). */
#define PREOPEN_MAX 32
static struct {
	char *path;
	int fd;		/* -1: refused, for the reason in why */
	char *why;
} preopened[PREOPEN_MAX];
#define PREOPEN_REFUSED (-2)
static pthread_mutex_t preopen_mu = PTHREAD_MUTEX_INITIALIZER;

/* The registered descriptor of `path`, PREOPEN_REFUSED (the reason set
 * as the error), or -1. Under preopen_mu. */
static int
preopen_find(const char *path)
{
	size_t i;

	for (i = 0; i < PREOPEN_MAX; i++)
		if (preopened[i].path != NULL &&
		    strcmp(preopened[i].path, path) == 0) {
			if (preopened[i].fd >= 0)
				return preopened[i].fd;
			ck_err_set(CK_E_PERM, "%s", preopened[i].why);
			return PREOPEN_REFUSED;
		}
	return -1;
}

int
ck_fs_mkdir_private(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno == EEXIST)
		return ck_err_set(CK_E_EXISTS, "%s already exists", path);
	return ck_err_set(CK_E_IO, "cannot create directory %s: %s", path,
	    strerror(errno));
}

static int
check_private(const char *path, int want_dir)
{
	struct stat st;
	int fd;

	pthread_mutex_lock(&preopen_mu);
	fd = want_dir ? -1 : preopen_find(path);
	if (fd == PREOPEN_REFUSED) {
		pthread_mutex_unlock(&preopen_mu);
		return CK_E_PERM;
	}
	if (fd >= 0 && fstat(fd, &st) == 0) {
		/* Opened and judged for its owner, the key owner, before
		 * this process gave up root: still nobody else's to read. */
		pthread_mutex_unlock(&preopen_mu);
		if ((st.st_mode & 077) != 0)
			return ck_err_set(CK_E_PERM, "refusing to use %s: other "
			    "users can access it (mode %04o); run: chmod 600 %s",
			    path, (unsigned)(st.st_mode & 07777), path);
		return 0;
	}
	pthread_mutex_unlock(&preopen_mu);
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return ck_err_set(CK_E_NOTFOUND, "%s does not exist",
			    path);
		return ck_err_set(CK_E_IO, "cannot stat %s: %s", path,
		    strerror(errno));
	}
	if (want_dir && !S_ISDIR(st.st_mode))
		return ck_err_set(CK_E_PERM, "%s is not a directory", path);
	if (!want_dir && !S_ISREG(st.st_mode))
		return ck_err_set(CK_E_PERM,
		    "%s is not a regular file (symlinks are refused)", path);
	if (st.st_uid != geteuid())
		return ck_err_set(CK_E_PERM,
		    "refusing to use %s: it is owned by uid %u, not by the "
		    "user running certkeep (uid %u)", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 077) != 0)
		return ck_err_set(CK_E_PERM,
		    "refusing to use %s: other users can access it (mode %04o);"
		    " run: chmod %s %s", path, (unsigned)(st.st_mode & 07777),
		    want_dir ? "700" : "600", path);
	return 0;
}

int
ck_fs_check_private_dir(const char *path)
{
	return check_private(path, 1);
}

int
ck_fs_check_private_file(const char *path)
{
	return check_private(path, 0);
}

static int
write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ck_fs_write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd, saved;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return ck_err_set(CK_E_EXISTS,
			    "%s already exists; not overwriting it", path);
		return ck_err_set(CK_E_IO, "cannot create %s: %s", path,
		    strerror(errno));
	}
	if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(path);
		return ck_err_set(CK_E_IO, "cannot write %s: %s", path,
		    strerror(saved));
	}
	if (close(fd) != 0) {
		saved = errno;
		unlink(path);
		return ck_err_set(CK_E_IO, "cannot write %s: %s", path,
		    strerror(saved));
	}
	return 0;
}

static void
fsync_parent(const char *path)
{
	char tmp[4096];
	int dfd;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return;
	dfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
}

int
ck_fs_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return ck_err_set(CK_E_IO, "cannot sync %s: %s", dir,
		    strerror(e));
	}
	close(fd);
	return 0;
}

int
ck_fs_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode)
{
	char tmp[4096];
	int r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return ck_err_set(CK_E_TOOBIG, "path too long: %s", path);
	(void)unlink(tmp);
	if ((r = ck_fs_write_new(tmp, data, len, mode)) != 0)
		return r;
	if (rename(tmp, path) != 0) {
		r = errno;
		unlink(tmp);
		return ck_err_set(CK_E_IO, "cannot replace %s: %s", path,
		    strerror(r));
	}
	fsync_parent(path);
	return 0;
}

int
ck_fs_read_fd(int fd, size_t max, unsigned char **out, size_t *outlen)
{
	unsigned char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t n;

	if (max > CK_FS_READ_MAX)
		max = CK_FS_READ_MAX;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap == 0 ? 4096 : cap * 2;
			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= len) {
				free(buf);
				return ck_err_set(CK_E_TOOBIG,
				    "input is larger than %zu bytes", max);
			}
			if ((nb = realloc(buf, ncap + 1)) == NULL) {
				free(buf);
				return CK_E_NOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return ck_err_set(CK_E_IO, "read failed: %s",
			    strerror(errno));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			return ck_err_set(CK_E_TOOBIG,
			    "input is larger than %zu bytes", max);
		}
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return CK_E_NOMEM;
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int
ck_fs_read(const char *path, size_t max, unsigned char **out, size_t *outlen)
{
	int fd, r;

	pthread_mutex_lock(&preopen_mu);
	if ((fd = preopen_find(path)) == PREOPEN_REFUSED) {
		pthread_mutex_unlock(&preopen_mu);
		return CK_E_PERM;
	}
	if (fd >= 0) {
		r = lseek(fd, 0, SEEK_SET) == 0 ?
		    ck_fs_read_fd(fd, max, out, outlen) :
		    ck_err_set(CK_E_IO, "cannot read %s: %s", path,
		    strerror(errno));
		pthread_mutex_unlock(&preopen_mu);
		if (r == CK_E_TOOBIG)
			return ck_err_set(r, "%s is larger than %zu bytes",
			    path, max);
		return r;
	}
	pthread_mutex_unlock(&preopen_mu);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return ck_err_set(CK_E_NOTFOUND, "%s does not exist",
			    path);
		return ck_err_set(CK_E_IO, "cannot open %s: %s", path,
		    strerror(errno));
	}
	r = ck_fs_read_fd(fd, max, out, outlen);
	close(fd);
	if (r == CK_E_TOOBIG)
		return ck_err_set(r, "%s is larger than %zu bytes", path, max);
	if (r != 0 && r != CK_E_NOMEM)
		return ck_err_set(r, "cannot read %s", path);
	return r;
}

int
ck_path_join(char *buf, size_t bufsz, const char *dir, const char *name)
{
	int n;

	size_t dl = strlen(dir);

	/* "dir/" and "dir" give the same path. */
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (name[0] == '/')
		n = snprintf(buf, bufsz, "%s", name);
	else
		n = snprintf(buf, bufsz, "%.*s/%s", (int)dl, dir, name);
	if (n < 0 || (size_t)n >= bufsz)
		return ck_err_set(CK_E_TOOBIG, "path too long: %s/%s", dir,
		    name);
	return 0;
}

int
ck_fs_exists(const char *path)
{
	struct stat st;
	int found;

	pthread_mutex_lock(&preopen_mu);
	found = preopen_find(path) != -1;
	pthread_mutex_unlock(&preopen_mu);
	return found || lstat(path, &st) == 0;
}

int
ck_fs_trust_check(const char *path, const struct stat *st, uid_t owner,
    enum ck_fs_trust kind)
{
	int dir = kind == CK_FS_TRUST_HOME || kind == CK_FS_TRUST_DIR;
	mode_t m = st->st_mode & 07777;

	if (S_ISLNK(st->st_mode))
		return ck_err_set(CK_E_PERM, "refusing to trust %s: it is a "
		    "symbolic link", path);
	if (dir && !S_ISDIR(st->st_mode))
		return ck_err_set(CK_E_PERM, "refusing to trust %s: not a "
		    "directory", path);
	if (!dir && !S_ISREG(st->st_mode))
		return ck_err_set(CK_E_PERM, "refusing to trust %s: not a "
		    "regular file", path);
	if (st->st_uid != owner && st->st_uid != 0)
		return ck_err_set(CK_E_PERM, "refusing to trust %s: it is "
		    "owned by uid %u, not by the key owner (uid %u) or root; "
		    "run: chown %u %s", path, (unsigned)st->st_uid,
		    (unsigned)owner, (unsigned)owner, path);
	if (kind == CK_FS_TRUST_HOME) {
		if ((m & 022) != 0 && (m & S_ISVTX) == 0)
			return ck_err_set(CK_E_PERM, "refusing to trust %s: "
			    "others can write into it (mode %04o) and it is not "
			    "sticky, so they could replace the key owner's "
			    "files; run: chmod +t %s", path, (unsigned)m, path);
		return 0;
	}
	if (kind == CK_FS_TRUST_SECRET && (m & 077) != 0)
		return ck_err_set(CK_E_PERM, "refusing to trust %s: other "
		    "users can access it (mode %04o); run: chmod 600 %s", path,
		    (unsigned)m, path);
	if ((m & 022) != 0)
		return ck_err_set(CK_E_PERM, "refusing to trust %s: group or "
		    "others can write it (mode %04o); run: chmod go-w %s",
		    path, (unsigned)m, path);
	return 0;
}

/* Each directory above PATH (absolute), from / down; WHAT names the
 * thing below them in messages. */
static int
ancestors_of(const char *path, const char *what, uid_t owner)
{
	char dir[4096];
	struct stat st;
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(dir) || path[0] != '/')
		return ck_err_set(CK_E_INVAL, "%s: not an absolute path", path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	for (i = 0; i < n; i++) {
		if (path[i] != '/' || (i > 0 && path[i - 1] == '/'))
			continue;
		/* dir = path[0..i], "/" for the root itself */
		memcpy(dir, path, i > 0 ? i : 1);
		dir[i > 0 ? i : 1] = '\0';
		if (stat(dir, &st) != 0)
			return ck_err_set(errno == ENOENT ? CK_E_NOTFOUND :
			    CK_E_IO, "cannot stat %s: %s", dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return ck_err_set(CK_E_PERM, "%s: not a directory", dir);
		if ((st.st_uid != 0 && st.st_uid != owner) ||
		    (st.st_mode & 022) != 0)
			return ck_err_set(CK_E_PERM, "refusing to use %s: the "
			    "directory %s above it is owned by uid %u, mode "
			    "%04o; only root and the key owner (uid %u) may "
			    "write there, or another user could put something "
			    "of its own in its place; run: chown root:root %s; "
			    "chmod 755 %s", what, dir, (unsigned)st.st_uid,
			    (unsigned)(st.st_mode & 07777), (unsigned)owner, dir,
			    dir);
	}
	return 0;
}

int
ck_fs_check_ancestors(const char *home, uid_t owner)
{
	char abs[4096], what[4200], *real;
	int r;

	snprintf(what, sizeof(what), "the CA home %s", home);
	if (home[0] == '/')
		snprintf(abs, sizeof(abs), "%s", home);
	else {
		char cwd[3072];
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return ck_err_set(CK_E_IO, "getcwd: %s",
			    strerror(errno));
		snprintf(abs, sizeof(abs), "%s/%s", cwd, home);
	}
	if ((r = ancestors_of(abs, what, owner)) != 0)
		return r;
	if ((real = realpath(home, NULL)) == NULL)
		return ck_err_set(errno == ENOENT ? CK_E_NOTFOUND : CK_E_IO,
		    "%s: %s", home, strerror(errno));
	r = ancestors_of(real, what, owner);
	free(real);
	return r;
}

int
ck_fs_check_trusted_path(const char *path, uid_t owner)
{
	char what[4200], *real = NULL;
	struct stat st;
	int r;

	snprintf(what, sizeof(what), "%s", path);
	if (path[0] != '/')
		return ck_err_set(CK_E_INVAL, "%s: not an absolute path", path);
	if ((r = ancestors_of(path, what, owner)) != 0)
		return r;
	if ((real = realpath(path, NULL)) == NULL)
		return ck_err_set(errno == ENOENT ? CK_E_NOTFOUND : CK_E_IO,
		    "%s: %s", path, strerror(errno));
	if ((r = ancestors_of(real, what, owner)) != 0)
		goto out;
	if (stat(real, &st) != 0) {
		r = ck_err_set(CK_E_IO, "%s: %s", real, strerror(errno));
		goto out;
	}
	r = ck_fs_trust_check(real, &st, owner, CK_FS_TRUST_FILE);
out:
	free(real);
	return r;
}

int
ck_fs_open_trusted(const char *home, const char *rel, uid_t owner,
    int secret, int *fdp)
{
	char shown[4096], comp[256];
	const char *p = rel, *slash;
	struct stat st;
	size_t n, off;
	int dfd, fd, last, r;

	*fdp = -1;
	if (rel[0] == '/' || rel[0] == '\0')
		return ck_err_set(CK_E_INVAL, "%s: the key owner's files must be "
		    "named relative to the CA home", rel);
	/* The home itself is no symlink either (its owner is judged
	 * below, of what was opened). */
	if ((dfd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		int e = errno;
		if (e == ELOOP || e == ENOTDIR)
			return ck_err_set(CK_E_PERM, "refusing to trust %s: it "
			    "is a symbolic link (or not a directory): name the "
			    "directory itself", home);
		return ck_err_set(e == ENOENT ? CK_E_NOTFOUND : CK_E_IO,
		    "cannot open %s: %s", home, strerror(e));
	}
	if (fstat(dfd, &st) != 0) {
		r = ck_err_set(CK_E_IO, "cannot stat %s: %s", home,
		    strerror(errno));
		goto out;
	}
	if ((r = ck_fs_trust_check(home, &st, owner, CK_FS_TRUST_HOME)) != 0)
		goto out;
	off = (size_t)snprintf(shown, sizeof(shown), "%s", home);
	for (;;) {
		slash = strchr(p, '/');
		n = slash != NULL ? (size_t)(slash - p) : strlen(p);
		last = slash == NULL;
		if (n == 0 || n >= sizeof(comp)) {
			r = ck_err_set(CK_E_INVAL, "%s: not a plain relative "
			    "path", rel);
			goto out;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0) {
			r = ck_err_set(CK_E_INVAL, "%s: the key owner's files "
			    "must lie inside the CA home (no '.' or '..')", rel);
			goto out;
		}
		if (off < sizeof(shown))
			off += (size_t)snprintf(shown + off,
			    sizeof(shown) - off, "/%s", comp);
		fd = openat(dfd, comp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
		    O_NONBLOCK | (last ? 0 : O_DIRECTORY));
		if (fd < 0 && errno != ENOENT && errno != ELOOP &&
		    fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (r = ck_fs_trust_check(shown, &st, owner, !last ?
		    CK_FS_TRUST_DIR : secret ? CK_FS_TRUST_SECRET :
		    CK_FS_TRUST_FILE)) != 0)
			goto out;	/* what is wrong, rather than EACCES */
		if (fd < 0) {
			if (errno == ELOOP || errno == ENOTDIR)
				r = ck_err_set(CK_E_PERM, "refusing to trust "
				    "%s: it is a symbolic link (or not a "
				    "directory)", shown);
			else
				r = ck_err_set(errno == ENOENT ? CK_E_NOTFOUND :
				    CK_E_IO, "cannot open %s: %s", shown,
				    strerror(errno));
			goto out;
		}
		if (fstat(fd, &st) != 0) {
			r = ck_err_set(CK_E_IO, "cannot stat %s: %s", shown,
			    strerror(errno));
			close(fd);
			goto out;
		}
		r = ck_fs_trust_check(shown, &st, owner, !last ?
		    CK_FS_TRUST_DIR : secret ? CK_FS_TRUST_SECRET :
		    CK_FS_TRUST_FILE);
		close(dfd);
		dfd = fd;
		if (r != 0)
			goto out;
		if (last)
			break;
		p = slash + 1;
	}
	/* Reads block as usual from here. */
	(void)fcntl(dfd, F_SETFL, 0);
	*fdp = dfd;
	dfd = -1;
	r = 0;
out:
	if (dfd >= 0)
		close(dfd);
	return r;
}

int
ck_fs_preopen_add(const char *path, int fd)
{
	size_t i;

	pthread_mutex_lock(&preopen_mu);
	for (i = 0; i < PREOPEN_MAX; i++)
		if (preopened[i].path == NULL)
			break;
	if (i == PREOPEN_MAX || (preopened[i].path = strdup(path)) == NULL) {
		pthread_mutex_unlock(&preopen_mu);
		close(fd);
		return i == PREOPEN_MAX ? ck_err_set(CK_E_TOOBIG, "too many "
		    "files opened ahead") : CK_E_NOMEM;
	}
	preopened[i].fd = fd;
	preopened[i].why = NULL;
	pthread_mutex_unlock(&preopen_mu);
	return 0;
}

int
ck_fs_preopen_refuse(const char *path, const char *why)
{
	size_t i;

	pthread_mutex_lock(&preopen_mu);
	for (i = 0; i < PREOPEN_MAX; i++)
		if (preopened[i].path == NULL)
			break;
	if (i == PREOPEN_MAX) {
		pthread_mutex_unlock(&preopen_mu);
		return ck_err_set(CK_E_TOOBIG, "too many files opened ahead");
	}
	if ((preopened[i].path = strdup(path)) == NULL ||
	    (preopened[i].why = strdup(why)) == NULL) {
		free(preopened[i].path);
		preopened[i].path = NULL;
		pthread_mutex_unlock(&preopen_mu);
		return CK_E_NOMEM;
	}
	preopened[i].fd = -1;
	pthread_mutex_unlock(&preopen_mu);
	return 0;
}

int
ck_fs_preopen_dup(const char *path)
{
	int fd, d = -1;

	pthread_mutex_lock(&preopen_mu);
	if ((fd = preopen_find(path)) >= 0 &&
	    (d = fcntl(fd, F_DUPFD_CLOEXEC, 3)) >= 0 &&
	    lseek(d, 0, SEEK_SET) != 0) {
		close(d);
		d = -1;
	}
	pthread_mutex_unlock(&preopen_mu);
	if (fd == PREOPEN_REFUSED)
		ck_err_clear();
	return d;
}

static void
preopen_drop(int close_them)
{
	size_t i;

	pthread_mutex_lock(&preopen_mu);
	for (i = 0; i < PREOPEN_MAX; i++)
		if (preopened[i].path != NULL) {
			free(preopened[i].path);
			free(preopened[i].why);
			preopened[i].path = NULL;
			preopened[i].why = NULL;
			if (close_them && preopened[i].fd >= 0)
				close(preopened[i].fd);
		}
	pthread_mutex_unlock(&preopen_mu);
}

void
ck_fs_preopen_clear(void)
{
	preopen_drop(1);
}

void
ck_fs_preopen_forget(void)
{
	preopen_drop(0);
}

int
ck_read_full(int fd, void *buf, size_t n)
{
	unsigned char *p = buf;
	ssize_t k;

	while (n > 0) {
		k = read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}
