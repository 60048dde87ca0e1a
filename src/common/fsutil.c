#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

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

	return lstat(path, &st) == 0;
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
