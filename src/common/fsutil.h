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

#endif
