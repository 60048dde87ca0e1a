/*
 * fsutil.h - careful file handling for a CA home.
 *
 * Private files are created 0600 with O_EXCL|O_NOFOLLOW, private
 * directories 0700; anything that holds a secret is checked before use and
 * refused if a user other than the owner could read it.
 */
#ifndef CK_COMMON_FSUTIL_H
#define CK_COMMON_FSUTIL_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Largest file ck_fs_read() will ever load, whatever the caller asks. */
#define CK_FS_READ_MAX (64u * 1024 * 1024)

/*
 * Create directory `path` with mode 0700. Returns 0, CK_E_EXISTS if it
 * already exists (and is left untouched), or CK_E_IO.
 */
int ck_fs_mkdir_private(const char *path);

/*
 * Check that `path` is a directory owned by the effective user and that
 * neither group nor others have any access. CK_E_PERM with a message
 * naming the problem and the fix, CK_E_NOTFOUND, or 0.
 */
int ck_fs_check_private_dir(const char *path);

/* Same for a regular file holding a secret (must not be a symlink). */
int ck_fs_check_private_file(const char *path);

/*
 * Create `path` exclusively (fails with CK_E_EXISTS if it exists) with
 * `mode`, write `len` bytes and fsync. On any failure the file is removed.
 */
int ck_fs_write_new(const char *path, const void *data, size_t len,
    mode_t mode);

/* fsync a directory, so that the names created or renamed in it are
 * durable. CK_E_IO naming it on failure. */
int ck_fs_sync_dir(const char *dir);

/*
 * Replace `path` atomically: write a temporary file beside it with `mode`,
 * fsync, rename over `path`, fsync the directory.
 */
int ck_fs_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode);

/* Read exactly N bytes from FD (a socket or pipe), retrying on EINTR: 0,
 * or -1 on an error, a timeout or an early end. */
int ck_read_full(int fd, void *buf, size_t n);

/*
 * Read a whole file of at most `max` bytes into a new NUL-terminated buffer
 * (*out, caller frees). CK_E_TOOBIG if larger, CK_E_NOTFOUND, CK_E_IO.
 */
int ck_fs_read(const char *path, size_t max, unsigned char **out,
    size_t *outlen);

/* Read everything from an open descriptor, same limits and ownership. */
int ck_fs_read_fd(int fd, size_t max, unsigned char **out, size_t *outlen);

/* Join dir and name into buf; CK_E_TOOBIG if it does not fit. */
int ck_path_join(char *buf, size_t bufsz, const char *dir, const char *name);

/* 1 if `path` exists (any type), 0 if not. */
int ck_fs_exists(const char *path);

/*
 * Trusted files (sshd's StrictModes): what a process acting for the key
 * owner reads from a CA home that another user (the service user) can
 * write into. Each is owned by the key owner or root, is not a symlink,
 * and cannot be written by group or others, except the home itself,
 * which may be group-writable (the service user's group creates its
 * files there) only if it is sticky, so that no one but the owner of a
 * name can rename, remove or replace it.
 */
enum ck_fs_trust {
	CK_FS_TRUST_HOME,	/* a directory; group/other-writable if sticky */
	CK_FS_TRUST_DIR,	/* a directory below it */
	CK_FS_TRUST_FILE,	/* a regular file (configuration, certificates) */
	CK_FS_TRUST_SECRET,	/* a regular file nobody else may even read */
	CK_FS_TRUST__MAX
};

/*
 * Judge `st` (from lstat or fstat of `path`, named in messages) as a
 * `kind` owned by `owner` (or root). 0, or CK_E_PERM with a message that
 * names the file, what is wrong and the fix.
 */
int ck_fs_trust_check(const char *path, const struct stat *st, uid_t owner,
    enum ck_fs_trust kind);

/*
 * Open `rel` (relative, no ".." component) under the home `home` for
 * reading, one component at a time with O_NOFOLLOW, judging the home,
 * each directory and the file as above (a secret if `secret`). 0 and
 * *fd (caller closes); CK_E_NOTFOUND if it does not exist; CK_E_PERM,
 * CK_E_INVAL (an absolute path or ".."), CK_E_IO.
 */
int ck_fs_open_trusted(const char *home, const char *rel, uid_t owner,
    int secret, int *fd);

/*
 * The directories above a CA home with a key owner, as root uses it:
 * each directory from / down to the home's parent, of the path as given
 * (made absolute) and of the path with its links resolved, must be owned
 * by root or `owner` and writable by nobody else, sticky or not (/tmp is
 * refused): whoever can write one could rename the home aside and put a
 * home of its own in its place between two starts. 0; CK_E_PERM naming
 * the first directory at fault and the fix; CK_E_NOTFOUND, CK_E_IO.
 */
int ck_fs_check_ancestors(const char *home, uid_t owner);

/*
 * A file outside the home the key owner's process will run, such as a
 * PKCS#11 module: absolute; the file (links resolved) a regular file
 * owned by root or `owner` that nobody else can write, and every
 * directory above it, as above. 0; CK_E_PERM naming what and the fix;
 * CK_E_INVAL, CK_E_NOTFOUND, CK_E_IO.
 */
int ck_fs_check_trusted_path(const char *path, uid_t owner);

/*
 * Files opened before privileges were dropped: a process that gave up
 * root (the command line on a CA home with a separate key owner, or
 * certkeepd for its ACME EAB key) registers the descriptor of a file it
 * can no longer open under the path it will ask for. Then
 * ck_fs_read(), ck_fs_exists() and ck_fs_check_private_file() of that
 * exact path use it (the file was judged by ck_fs_open_trusted(), or is
 * one the operator named: src/cli/main.c). Takes the descriptor;
 * CK_E_TOOBIG when the table (32) is full.
 */
int ck_fs_preopen_add(const char *path, int fd);

/* Register `path` as refused: ck_fs_read(), ck_fs_check_private_file()
 * of it fail with CK_E_PERM and `why` (ck_fs_exists() says it exists),
 * instead of trying the file as this user. */
int ck_fs_preopen_refuse(const char *path, const char *why);

/* A new descriptor (caller closes) for the registered file `path`, at
 * its start, for readers that need one (a passphrase file, a PEM key);
 * -1 if none is registered. */
int ck_fs_preopen_dup(const char *path);

/* Close and forget every registered descriptor. */
void ck_fs_preopen_clear(void);

/* Forget them without closing: in a child whose descriptors went with
 * close_range() (their numbers may be taken again already). */
void ck_fs_preopen_forget(void);

#endif
