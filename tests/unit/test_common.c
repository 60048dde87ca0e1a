/*
 * test_common.c - src/common: errors, secrets, careful file handling,
 * passphrase sources, times and small string helpers.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/passphrase.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "common/timeutil.h"

struct fx {
	char dir[4096];
};

static int
setup_dir(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	tu_tmpdir(fx->dir, sizeof(fx->dir));
	*state = fx;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct fx *fx = *state;

	tu_rmtree(fx->dir);
	free(fx);
	return 0;
}

/* ---- err ---- */

static void
test_err_strerror(void **state)
{
	int code, other;

	(void)state;
	assert_string_equal(ck_strerror(CK_OK), "success");
	assert_string_equal(ck_strerror(CK_E_PERM), "unsafe permissions");
	assert_string_equal(ck_strerror(CK_E_BUSY), "busy");
	/* Every code has its own description. */
	for (code = CK_OK; code > CK_E__MAX; code--) {
		assert_non_null(ck_strerror(code));
		assert_string_not_equal(ck_strerror(code), "unknown error");
		for (other = code - 1; other > CK_E__MAX; other--)
			assert_string_not_equal(ck_strerror(code),
			    ck_strerror(other));
	}
	assert_string_equal(ck_strerror(CK_E__MAX), "unknown error");
	assert_string_equal(ck_strerror(-1000), "unknown error");
	assert_string_equal(ck_strerror(5), "unknown error");
}

static void
test_err_message(void **state)
{
	(void)state;
	ck_err_clear();
	assert_string_equal(ck_err_msg(), "");
	assert_int_equal(ck_err_set(CK_E_POLICY, "name %s refused (%d)",
	    "a.example", 7), CK_E_POLICY);
	assert_string_equal(ck_err_msg(), "name a.example refused (7)");
	/* The newest reason replaces the previous one. */
	ck_err_set(CK_E_IO, "second");
	assert_string_equal(ck_err_msg(), "second");
	ck_err_clear();
	assert_string_equal(ck_err_msg(), "");
}

static void
test_err_long_message_truncated(void **state)
{
	char big[4000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_err_set(CK_E_INVAL, "%s", big);
	assert_true(strlen(ck_err_msg()) > 0);
	assert_true(strlen(ck_err_msg()) < sizeof(big) - 1);
	assert_int_equal(ck_err_msg()[0], 'x');
}

static void *
err_thread(void *arg)
{
	char *seen = arg;

	/* A new thread starts with no reason of its own... */
	snprintf(seen, 64, "%s", ck_err_msg());
	/* ...and its reasons do not leak into other threads. */
	ck_err_set(CK_E_IO, "from the thread");
	return NULL;
}

static void
test_err_thread_local(void **state)
{
	pthread_t th;
	char seen[64] = "unset";

	(void)state;
	ck_err_set(CK_E_INVAL, "main thread reason");
	assert_int_equal(pthread_create(&th, NULL, err_thread, seen), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_string_equal(seen, "");
	assert_string_equal(ck_err_msg(), "main thread reason");
}

static void
test_err_ssl(void **state)
{
	(void)state;
	ERR_clear_error();
	assert_int_equal(ck_err_ssl(CK_E_CRYPTO, "nothing queued"),
	    CK_E_CRYPTO);
	assert_string_equal(ck_err_msg(), "nothing queued");
	/* Provoke a real OpenSSL error: it is appended and drained. */
	(void)EVP_PKEY_Q_keygen(NULL, NULL, "NO-SUCH-ALGORITHM");
	assert_int_not_equal(ERR_peek_last_error(), 0);
	assert_int_equal(ck_err_ssl(CK_E_CRYPTO, "keygen"), CK_E_CRYPTO);
	assert_true(strncmp(ck_err_msg(), "keygen: ", 8) == 0);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- secmem ---- */

static void
test_secret_new_free(void **state)
{
	struct ck_secret *s;

	(void)state;
	s = ck_secret_new(100);
	assert_non_null(s);
	assert_int_equal(s->cap, 100);
	assert_int_equal(s->len, 0);
	assert_true(s->maplen >= s->cap + 1);
	assert_int_equal(s->buf[0], 0);
	/* The whole capacity plus the NUL is usable. */
	memset(s->buf, 'a', s->cap);
	s->buf[s->cap] = '\0';
	s->len = s->cap;
	ck_secret_free(s);
	ck_secret_free(NULL);

	/* A secret bigger than one page. */
	s = ck_secret_new(10000);
	assert_non_null(s);
	memset(s->buf, 'b', 10001);
	ck_secret_free(s);

	assert_null(ck_secret_new(0));
	assert_null(ck_secret_new((size_t)1 << 30));
}

static struct ck_secret *
secret_of(const char *v)
{
	struct ck_secret *s = ck_secret_new(64);

	assert_non_null(s);
	s->len = strlen(v);
	memcpy(s->buf, v, s->len);
	s->buf[s->len] = '\0';
	return s;
}

static void
test_secret_equal(void **state)
{
	struct ck_secret *a = secret_of("correct horse");
	struct ck_secret *b = secret_of("correct horse");
	struct ck_secret *c = secret_of("correct horsf");
	struct ck_secret *d = secret_of("correct hors");
	struct ck_secret *e = secret_of("");
	struct ck_secret *f = secret_of("");

	(void)state;
	assert_true(ck_secret_equal(a, b));
	assert_true(ck_secret_equal(b, a));
	assert_false(ck_secret_equal(a, c));
	assert_false(ck_secret_equal(a, d));
	assert_false(ck_secret_equal(d, a));
	assert_true(ck_secret_equal(e, f));
	assert_false(ck_secret_equal(a, NULL));
	assert_false(ck_secret_equal(NULL, a));
	ck_secret_free(a);
	ck_secret_free(b);
	ck_secret_free(c);
	ck_secret_free(d);
	ck_secret_free(e);
	ck_secret_free(f);
}

static void
test_wipe(void **state)
{
	unsigned char buf[32];
	unsigned char zero[32] = { 0 };

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	ck_wipe(buf, sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
	ck_wipe(NULL, 10);
}

/* ---- fsutil ---- */

static void
test_fs_write_new(void **state)
{
	struct fx *fx = *state;
	char path[4200];
	unsigned char *buf;
	size_t len;

	tu_path(path, sizeof(path), fx->dir, "secret");
	assert_int_equal(ck_fs_write_new(path, "hello", 5, 0600), 0);
	assert_int_equal(tu_file_mode(path), 0600);
	buf = tu_read_file(path, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	free(buf);

	/* An existing file is never overwritten. */
	ck_err_clear();
	assert_int_equal(ck_fs_write_new(path, "other!", 6, 0600),
	    CK_E_EXISTS);
	assert_contains(ck_err_msg(), "secret");
	buf = tu_read_file(path, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	free(buf);

	/* The mode asked for is the mode given, whatever the umask. */
	tu_path(path, sizeof(path), fx->dir, "public");
	assert_int_equal(ck_fs_write_new(path, "", 0, 0644), 0);
	assert_int_equal(tu_file_mode(path), 0644);
}

static void
test_fs_write_new_refuses_symlink(void **state)
{
	struct fx *fx = *state;
	char target[4200], link[4200];

	tu_path(target, sizeof(target), fx->dir, "target");
	tu_path(link, sizeof(link), fx->dir, "link");
	assert_int_equal(symlink(target, link), 0);
	/* A dangling symlink must not be followed to create the target. */
	assert_int_not_equal(ck_fs_write_new(link, "x", 1, 0600), 0);
	assert_false(ck_fs_exists(target));
}

static void
test_fs_write_new_missing_dir(void **state)
{
	struct fx *fx = *state;
	char path[4200];

	tu_path(path, sizeof(path), fx->dir, "no/such/dir/file");
	assert_int_equal(ck_fs_write_new(path, "x", 1, 0600), CK_E_IO);
}

static void
test_fs_write_atomic(void **state)
{
	struct fx *fx = *state;
	char path[4200];
	unsigned char *buf;
	size_t len;

	tu_path(path, sizeof(path), fx->dir, "crl");
	assert_int_equal(ck_fs_write_atomic(path, "one", 3, 0644), 0);
	assert_int_equal(ck_fs_write_atomic(path, "second", 6, 0600), 0);
	buf = tu_read_file(path, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "second", 6);
	free(buf);
	assert_int_equal(tu_file_mode(path), 0600);
}

static void
test_fs_check_private_dir(void **state)
{
	struct fx *fx = *state;
	char path[4200];

	tu_path(path, sizeof(path), fx->dir, "home");
	assert_int_equal(ck_fs_mkdir_private(path), 0);
	assert_int_equal(tu_file_mode(path), 0700);
	assert_int_equal(ck_fs_check_private_dir(path), 0);
	assert_int_equal(ck_fs_mkdir_private(path), CK_E_EXISTS);

	assert_int_equal(chmod(path, 0750), 0);
	ck_err_clear();
	assert_int_equal(ck_fs_check_private_dir(path), CK_E_PERM);
	assert_contains(ck_err_msg(), "chmod 700");
	assert_contains(ck_err_msg(), path);

	assert_int_equal(chmod(path, 0701), 0);
	assert_int_equal(ck_fs_check_private_dir(path), CK_E_PERM);
	assert_contains(ck_err_msg(), "chmod");
	assert_int_equal(chmod(path, 0700), 0);

	tu_path(path, sizeof(path), fx->dir, "missing");
	assert_int_equal(ck_fs_check_private_dir(path), CK_E_NOTFOUND);

	/* A file is not a directory. */
	tu_path(path, sizeof(path), fx->dir, "file");
	tu_write_file(path, "x", 1, 0600);
	assert_int_equal(ck_fs_check_private_dir(path), CK_E_PERM);
}

static void
test_fs_check_private_file(void **state)
{
	struct fx *fx = *state;
	char path[4200], link[4200];
	static const mode_t bad[] = { 0644, 0640, 0604, 0660, 0602, 0610 };
	size_t i;

	tu_path(path, sizeof(path), fx->dir, "key");
	tu_write_file(path, "k", 1, 0600);
	assert_int_equal(ck_fs_check_private_file(path), 0);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(ck_fs_check_private_file(path), 0);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(path, bad[i]), 0);
		ck_err_clear();
		assert_int_equal(ck_fs_check_private_file(path), CK_E_PERM);
		assert_contains(ck_err_msg(), "chmod 600");
	}
	assert_int_equal(chmod(path, 0600), 0);

	/* Symlinks to a private file are refused too. */
	tu_path(link, sizeof(link), fx->dir, "link");
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(ck_fs_check_private_file(link), CK_E_PERM);

	/* So is a directory. */
	assert_int_equal(ck_fs_check_private_file(fx->dir), CK_E_PERM);

	tu_path(path, sizeof(path), fx->dir, "missing");
	assert_int_equal(ck_fs_check_private_file(path), CK_E_NOTFOUND);
}

/* ---- trusted files (a home split between a key owner and a service
 * user: StrictModes) ---- */

static struct stat
st_of(mode_t mode, uid_t uid)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = mode;
	st.st_uid = uid;
	return st;
}

static int
trust(mode_t mode, uid_t uid, enum ck_fs_trust kind)
{
	struct stat st = st_of(mode, uid);

	ck_err_clear();
	return ck_fs_trust_check("/h/x", &st, 1000, kind);
}

static void
test_fs_trust_check(void **state)
{
	(void)state;
	/* The home: the owner's or root's; writable by others only if
	 * sticky. */
	assert_int_equal(trust(S_IFDIR | 0700, 1000, CK_FS_TRUST_HOME), 0);
	assert_int_equal(trust(S_IFDIR | 01770, 1000, CK_FS_TRUST_HOME), 0);
	assert_int_equal(trust(S_IFDIR | 01777, 0, CK_FS_TRUST_HOME), 0);
	assert_int_equal(trust(S_IFDIR | 0770, 1000, CK_FS_TRUST_HOME),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "not sticky");
	assert_contains(ck_err_msg(), "chmod +t /h/x");
	assert_int_equal(trust(S_IFDIR | 0702, 1000, CK_FS_TRUST_HOME),
	    CK_E_PERM);
	assert_int_equal(trust(S_IFDIR | 01770, 1001, CK_FS_TRUST_HOME),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "owned by uid 1001, not by the key "
	    "owner (uid 1000)");
	assert_int_equal(trust(S_IFREG | 0700, 1000, CK_FS_TRUST_HOME),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "not a directory");
	assert_int_equal(trust(S_IFLNK | 0777, 1000, CK_FS_TRUST_HOME),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "symbolic link");

	/* Below it, sticky is no excuse. */
	assert_int_equal(trust(S_IFDIR | 0755, 1000, CK_FS_TRUST_DIR), 0);
	assert_int_equal(trust(S_IFDIR | 0700, 0, CK_FS_TRUST_DIR), 0);
	assert_int_equal(trust(S_IFDIR | 01775, 1000, CK_FS_TRUST_DIR),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "chmod go-w /h/x");
	assert_int_equal(trust(S_IFDIR | 0700, 1001, CK_FS_TRUST_DIR),
	    CK_E_PERM);

	/* Files others read but none writes. */
	assert_int_equal(trust(S_IFREG | 0644, 1000, CK_FS_TRUST_FILE), 0);
	assert_int_equal(trust(S_IFREG | 0444, 0, CK_FS_TRUST_FILE), 0);
	assert_int_equal(trust(S_IFREG | 0664, 1000, CK_FS_TRUST_FILE),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "group or others can write it "
	    "(mode 0664)");
	assert_int_equal(trust(S_IFREG | 0646, 1000, CK_FS_TRUST_FILE),
	    CK_E_PERM);
	assert_int_equal(trust(S_IFREG | 0644, 1001, CK_FS_TRUST_FILE),
	    CK_E_PERM);
	assert_int_equal(trust(S_IFDIR | 0755, 1000, CK_FS_TRUST_FILE),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "not a regular file");
	assert_int_equal(trust(S_IFLNK | 0777, 1000, CK_FS_TRUST_FILE),
	    CK_E_PERM);
	assert_int_equal(trust(S_IFIFO | 0600, 1000, CK_FS_TRUST_FILE),
	    CK_E_PERM);

	/* Secrets nobody else even reads. */
	assert_int_equal(trust(S_IFREG | 0600, 1000, CK_FS_TRUST_SECRET), 0);
	assert_int_equal(trust(S_IFREG | 0400, 0, CK_FS_TRUST_SECRET), 0);
	assert_int_equal(trust(S_IFREG | 0640, 1000, CK_FS_TRUST_SECRET),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "chmod 600 /h/x");
	assert_int_equal(trust(S_IFREG | 0604, 1000, CK_FS_TRUST_SECRET),
	    CK_E_PERM);
	assert_int_equal(trust(S_IFREG | 0600, 1001, CK_FS_TRUST_SECRET),
	    CK_E_PERM);
}

/* open_trusted HOME REL SECRET: the result (the descriptor closed). */
static int
open_trusted(const char *home, const char *rel, uid_t owner, int secret)
{
	int fd = -1, r;

	ck_err_clear();
	r = ck_fs_open_trusted(home, rel, owner, secret, &fd);
	if (r == 0) {
		assert_true(fd >= 0);
		close(fd);
	} else
		assert_int_equal(fd, -1);
	return r;
}

/* The directories above a split home, and a module's path. */
static void
test_fs_check_ancestors(void **state)
{
	struct fx *fx = *state;
	char open_dir[4200], home[4200], link[4200], file[4200];
	uid_t me = geteuid();
	int fd;

	/* Root's and written by nobody else on any system we run on. */
	assert_int_equal(ck_fs_check_ancestors("/usr/bin", me), 0);
	assert_int_equal(ck_fs_check_trusted_path("/bin/sh", me), 0);
	assert_int_equal(ck_fs_check_trusted_path("bin/sh", me), CK_E_INVAL);

	/* A world-writable directory above: refused, naming a directory
	 * and the fix (maybe one above ours already: the test directory is
	 * often in /tmp). */
	tu_path(open_dir, sizeof(open_dir), fx->dir, "open");
	assert_int_equal(mkdir(open_dir, 0700), 0);
	assert_int_equal(chmod(open_dir, 0777), 0);
	tu_path(home, sizeof(home), open_dir, "home");
	assert_int_equal(mkdir(home, 0700), 0);
	assert_int_equal(ck_fs_check_ancestors(home, me), CK_E_PERM);
	assert_contains(ck_err_msg(), "chown root:root");
	assert_contains(ck_err_msg(), "chmod 755");
	tu_path(file, sizeof(file), open_dir, "mod.so");
	tu_write_file(file, "x", 1, 0644);
	assert_int_equal(ck_fs_check_trusted_path(file, me), CK_E_PERM);
	/* Sticky does not help (/tmp is refused too). */
	assert_int_equal(chmod(open_dir, 01777), 0);
	assert_int_equal(ck_fs_check_ancestors(home, me), CK_E_PERM);
	assert_int_equal(chmod(open_dir, 0700), 0);

	/* The home itself is no symbolic link. */
	tu_path(file, sizeof(file), home, "certkeep.conf");
	tu_write_file(file, "conf", 4, 0644);
	tu_path(link, sizeof(link), fx->dir, "homelink");
	assert_int_equal(symlink(home, link), 0);
	assert_int_equal(ck_fs_open_trusted(link, "certkeep.conf", me, 0,
	    &fd), CK_E_PERM);
	assert_contains(ck_err_msg(), "symbolic link");
	assert_int_equal(ck_fs_open_trusted(home, "certkeep.conf", me, 0,
	    &fd), 0);
	close(fd);
}

static void
test_fs_open_trusted(void **state)
{
	struct fx *fx = *state;
	char home[4200], path[4200], link[4200];
	unsigned char *buf = NULL;
	size_t len;
	uid_t me = geteuid();
	int fd;

	tu_path(home, sizeof(home), fx->dir, "home");
	assert_int_equal(mkdir(home, 0700), 0);
	tu_path(path, sizeof(path), home, "private");
	assert_int_equal(mkdir(path, 0700), 0);
	tu_path(path, sizeof(path), home, "private/ca.key");
	tu_write_file(path, "key", 3, 0600);
	tu_path(path, sizeof(path), home, "certkeep.conf");
	tu_write_file(path, "conf", 4, 0644);

	assert_int_equal(ck_fs_open_trusted(home, "certkeep.conf", me, 0,
	    &fd), 0);
	assert_int_equal(ck_fs_read_fd(fd, 100, &buf, &len), 0);
	close(fd);
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "conf", 4);
	free(buf);
	assert_int_equal(open_trusted(home, "private/ca.key", me, 1), 0);
	assert_int_equal(open_trusted(home, "missing", me, 0), CK_E_NOTFOUND);
	assert_int_equal(open_trusted(home, "private/missing", me, 1),
	    CK_E_NOTFOUND);

	/* Only plain relative names inside the home. */
	assert_int_equal(open_trusted(home, "../home/certkeep.conf", me, 0),
	    CK_E_INVAL);
	assert_contains(ck_err_msg(), "inside the CA home");
	assert_int_equal(open_trusted(home, "private/../certkeep.conf", me,
	    0), CK_E_INVAL);
	assert_int_equal(open_trusted(home, "./certkeep.conf", me, 0),
	    CK_E_INVAL);
	assert_int_equal(open_trusted(home, path, me, 0), CK_E_INVAL);
	assert_int_equal(open_trusted(home, "private//ca.key", me, 1),
	    CK_E_INVAL);
	assert_int_equal(open_trusted(home, "", me, 0), CK_E_INVAL);

	/* A symlink is never followed: not the file, not a directory on
	 * the way. */
	tu_path(link, sizeof(link), home, "link.conf");
	assert_int_equal(symlink("certkeep.conf", link), 0);
	assert_int_equal(open_trusted(home, "link.conf", me, 0), CK_E_PERM);
	assert_contains(ck_err_msg(), "symbolic link");
	tu_path(link, sizeof(link), home, "priv2");
	assert_int_equal(symlink("private", link), 0);
	assert_int_equal(open_trusted(home, "priv2/ca.key", me, 1), CK_E_PERM);
	assert_contains(ck_err_msg(), "symbolic link");

	/* Modes: the secret, the file, the directory, the home. */
	tu_path(path, sizeof(path), home, "private/ca.key");
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(open_trusted(home, "private/ca.key", me, 1),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "private/ca.key");
	assert_int_equal(open_trusted(home, "private/ca.key", me, 0), 0);
	assert_int_equal(chmod(path, 0600), 0);
	tu_path(path, sizeof(path), home, "certkeep.conf");
	assert_int_equal(chmod(path, 0664), 0);
	assert_int_equal(open_trusted(home, "certkeep.conf", me, 0),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "certkeep.conf: group or others can "
	    "write it");
	assert_int_equal(chmod(path, 0644), 0);
	tu_path(path, sizeof(path), home, "private");
	assert_int_equal(chmod(path, 0770), 0);
	assert_int_equal(open_trusted(home, "private/ca.key", me, 1),
	    CK_E_PERM);
	assert_int_equal(chmod(path, 0700), 0);
	assert_int_equal(chmod(home, 0770), 0);
	assert_int_equal(open_trusted(home, "certkeep.conf", me, 0),
	    CK_E_PERM);
	assert_contains(ck_err_msg(), "not sticky");
	assert_int_equal(chmod(home, 01770), 0);
	assert_int_equal(open_trusted(home, "certkeep.conf", me, 0), 0);
	assert_int_equal(chmod(home, 0700), 0);

	/* Someone else's file (root's counts as the owner's). */
	if (me == 0) {
		tu_path(path, sizeof(path), home, "certkeep.conf");
		assert_int_equal(chown(path, 54321, 0), 0);
		assert_int_equal(open_trusted(home, "certkeep.conf", 1000, 0),
		    CK_E_PERM);
		assert_contains(ck_err_msg(), "owned by uid 54321");
		assert_int_equal(chown(path, 0, 0), 0);
		assert_int_equal(open_trusted(home, "certkeep.conf", 1000, 0),
		    0);
	} else {
		assert_int_equal(open_trusted(home, "certkeep.conf", me + 1, 0),
		    CK_E_PERM);
		assert_contains(ck_err_msg(), "owned by uid");
	}
}

/* A file opened before a drop of privileges is read through its
 * descriptor under the path it was registered as. */
static void
test_fs_preopen(void **state)
{
	struct fx *fx = *state;
	char path[4200], other[4200];
	unsigned char *buf = NULL;
	size_t len;
	int fd;

	tu_path(path, sizeof(path), fx->dir, "secret");
	tu_write_file(path, "s3cret", 6, 0600);
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	assert_int_equal(unlink(path), 0);
	assert_false(ck_fs_exists(path));
	assert_int_equal(ck_fs_preopen_add(path, fd), 0);
	assert_true(ck_fs_exists(path));
	assert_int_equal(ck_fs_check_private_file(path), 0);
	/* Twice: each read starts at the beginning. */
	assert_int_equal(ck_fs_read(path, 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "s3cret", 6);
	free(buf);
	assert_int_equal(ck_fs_read(path, 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	free(buf);
	assert_int_equal(ck_fs_read(path, 3, &buf, &len), CK_E_TOOBIG);
	/* Only that exact path. */
	tu_path(other, sizeof(other), fx->dir, "secret2");
	assert_false(ck_fs_exists(other));
	assert_int_equal(fchmod(fd, 0640), 0);
	assert_int_equal(ck_fs_check_private_file(path), CK_E_PERM);
	ck_fs_preopen_clear();
	assert_false(ck_fs_exists(path));
	assert_int_equal(ck_fs_read(path, 100, &buf, &len), CK_E_NOTFOUND);
	assert_int_equal(fcntl(fd, F_GETFD), -1);

	/* Forgotten (a child after close_range): not closed, the number
	 * may be someone else's by now. */
	tu_write_file(path, "s3cret", 6, 0600);
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	assert_int_equal(ck_fs_preopen_add(path, fd), 0);
	ck_fs_preopen_forget();
	assert_true(fcntl(fd, F_GETFD) >= 0);
	close(fd);
	assert_int_equal(unlink(path), 0);
	assert_false(ck_fs_exists(path));

	/* Refused: never tried as this user, the reason given instead. */
	tu_write_file(path, "mine", 4, 0600);
	assert_int_equal(ck_fs_preopen_refuse(path, "refusing to trust it"),
	    0);
	assert_true(ck_fs_exists(path));
	assert_int_equal(ck_fs_read(path, 100, &buf, &len), CK_E_PERM);
	assert_contains(ck_err_msg(), "refusing to trust it");
	assert_int_equal(ck_fs_check_private_file(path), CK_E_PERM);
	assert_contains(ck_err_msg(), "refusing to trust it");
	ck_fs_preopen_clear();
	assert_int_equal(ck_fs_check_private_file(path), 0);
}

static void
test_fs_read(void **state)
{
	struct fx *fx = *state;
	char path[4200], data[100];
	unsigned char *buf = NULL;
	size_t len = 0;

	memset(data, 'z', sizeof(data));
	tu_path(path, sizeof(path), fx->dir, "f");
	tu_write_file(path, data, sizeof(data), 0600);

	assert_int_equal(ck_fs_read(path, 100, &buf, &len), 0);
	assert_int_equal(len, 100);
	assert_memory_equal(buf, data, 100);
	assert_int_equal(buf[100], '\0');
	free(buf);
	buf = NULL;

	ck_err_clear();
	assert_int_equal(ck_fs_read(path, 99, &buf, &len), CK_E_TOOBIG);
	assert_null(buf);
	assert_contains(ck_err_msg(), path);

	/* An empty file gives an empty, NUL-terminated buffer. */
	tu_path(path, sizeof(path), fx->dir, "empty");
	tu_write_file(path, "", 0, 0600);
	assert_int_equal(ck_fs_read(path, 10, &buf, &len), 0);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], '\0');
	free(buf);
	buf = NULL;

	tu_path(path, sizeof(path), fx->dir, "missing");
	assert_int_equal(ck_fs_read(path, 10, &buf, &len), CK_E_NOTFOUND);
}

static void
test_fs_read_large(void **state)
{
	struct fx *fx = *state;
	char path[4200];
	size_t n = 300 * 1000, len = 0;
	unsigned char *data = malloc(n), *buf = NULL;
	size_t i;

	assert_non_null(data);
	for (i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 7);
	tu_path(path, sizeof(path), fx->dir, "big");
	tu_write_file(path, data, n, 0600);
	/* Larger than the first read buffers: grows and keeps every byte. */
	assert_int_equal(ck_fs_read(path, n, &buf, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(buf, data, n);
	free(buf);
	buf = NULL;
	assert_int_equal(ck_fs_read(path, n - 1, &buf, &len), CK_E_TOOBIG);
	free(data);
}

static void
test_fs_read_fd_pipe(void **state)
{
	int fds[2];
	unsigned char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "abcdef", 6), 6);
	close(fds[1]);
	assert_int_equal(ck_fs_read_fd(fds[0], 5, &buf, &len), CK_E_TOOBIG);
	close(fds[0]);

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "abcdef", 6), 6);
	close(fds[1]);
	assert_int_equal(ck_fs_read_fd(fds[0], 6, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal((char *)buf, "abcdef");
	free(buf);
	close(fds[0]);
}

static void
test_path_join(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(ck_path_join(buf, sizeof(buf), "/home", "ca.pem"), 0);
	assert_string_equal(buf, "/home/ca.pem");
	/* Absolute names are kept as they are. */
	assert_int_equal(ck_path_join(buf, sizeof(buf), "/home", "/etc/x"), 0);
	assert_string_equal(buf, "/etc/x");
	assert_int_equal(ck_path_join(buf, sizeof(buf), "/home",
	    "a-very-long-name"), CK_E_TOOBIG);
	/* Exactly filling the buffer (15 chars + NUL) fits. */
	assert_int_equal(ck_path_join(buf, sizeof(buf), "/home", "123456789"),
	    0);
	assert_int_equal(ck_path_join(buf, sizeof(buf), "/home",
	    "1234567890"), CK_E_TOOBIG);
}

static void
test_fs_exists(void **state)
{
	struct fx *fx = *state;
	char path[4200];

	tu_path(path, sizeof(path), fx->dir, "x");
	assert_false(ck_fs_exists(path));
	tu_write_file(path, "", 0, 0600);
	assert_true(ck_fs_exists(path));
	assert_true(ck_fs_exists(fx->dir));
}

/* ---- passphrase ---- */

static int
read_pass_file(const char *path, size_t min_len, struct ck_secret **out)
{
	struct ck_pass_src src = { CK_PASS_FILE, path, -1 };

	return ck_passphrase_read(&src, "unused: ", 0, min_len, out);
}

static void
test_pass_file(void **state)
{
	struct fx *fx = *state;
	struct ck_secret *s = NULL;
	char path[4200];

	tu_path(path, sizeof(path), fx->dir, "pass");
	tu_write_file(path, "correct horse\n", 14, 0600);
	assert_int_equal(read_pass_file(path, 8, &s), 0);
	assert_non_null(s);
	assert_int_equal(s->len, 13);
	assert_string_equal((char *)s->buf, "correct horse");
	ck_secret_free(s);
	s = NULL;

	/* CR LF and no final newline both work; only line one counts. */
	tu_write_file(path, "dos line\r\nsecond line\n", 22, 0600);
	assert_int_equal(read_pass_file(path, 0, &s), 0);
	assert_string_equal((char *)s->buf, "dos line");
	assert_int_equal(s->len, 8);
	ck_secret_free(s);
	s = NULL;
	tu_write_file(path, "no newline", 10, 0600);
	assert_int_equal(read_pass_file(path, 0, &s), 0);
	assert_string_equal((char *)s->buf, "no newline");
	ck_secret_free(s);
	s = NULL;

	/* Spaces inside and at the ends are part of the passphrase. */
	tu_write_file(path, " a b \n", 6, 0600);
	assert_int_equal(read_pass_file(path, 0, &s), 0);
	assert_string_equal((char *)s->buf, " a b ");
	ck_secret_free(s);
	s = NULL;
}

static void
test_pass_file_refused(void **state)
{
	struct fx *fx = *state;
	struct ck_secret *s = NULL;
	char path[4200], big[CK_PASSPHRASE_MAX + 10];

	tu_path(path, sizeof(path), fx->dir, "pass");
	tu_write_file(path, "correct horse\n", 14, 0644);
	ck_err_clear();
	assert_int_equal(read_pass_file(path, 0, &s), CK_E_PERM);
	assert_null(s);
	assert_contains(ck_err_msg(), "chmod 600");

	tu_write_file(path, "", 0, 0600);
	assert_int_equal(read_pass_file(path, 0, &s), CK_E_PASSPHRASE);
	assert_null(s);
	tu_write_file(path, "\n", 1, 0600);
	assert_int_equal(read_pass_file(path, 0, &s), CK_E_PASSPHRASE);
	tu_write_file(path, "\r\n", 2, 0600);
	assert_int_equal(read_pass_file(path, 0, &s), CK_E_PASSPHRASE);
	assert_null(s);

	/* Too short for a new passphrase. */
	tu_write_file(path, "short\n", 6, 0600);
	ck_err_clear();
	assert_int_equal(read_pass_file(path, CK_PASSPHRASE_MIN, &s),
	    CK_E_PASSPHRASE);
	assert_contains(ck_err_msg(), "too short");
	assert_null(s);
	tu_write_file(path, "12345678\n", 9, 0600);
	assert_int_equal(read_pass_file(path, CK_PASSPHRASE_MIN, &s), 0);
	ck_secret_free(s);
	s = NULL;

	/* Too long. */
	memset(big, 'p', sizeof(big));
	tu_write_file(path, big, sizeof(big), 0600);
	assert_int_equal(read_pass_file(path, 0, &s), CK_E_TOOBIG);
	assert_null(s);

	tu_path(path, sizeof(path), fx->dir, "missing");
	assert_int_equal(read_pass_file(path, 0, &s), CK_E_NOTFOUND);
	assert_null(s);
}

static void
test_pass_fd(void **state)
{
	struct ck_pass_src src = { CK_PASS_FD, NULL, -1 };
	struct ck_secret *s = NULL;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "from a pipe\nrest", 16), 16);
	close(fds[1]);
	src.fd = fds[0];
	assert_int_equal(ck_passphrase_read(&src, "x", 0, 8, &s), 0);
	assert_string_equal((char *)s->buf, "from a pipe");
	assert_int_equal(s->len, 11);
	ck_secret_free(s);
	s = NULL;
	close(fds[0]);

	/* An empty pipe gives no passphrase. */
	assert_int_equal(pipe(fds), 0);
	close(fds[1]);
	src.fd = fds[0];
	assert_int_equal(ck_passphrase_read(&src, "x", 0, 0, &s),
	    CK_E_PASSPHRASE);
	assert_null(s);
	close(fds[0]);

	src.fd = -1;
	assert_int_equal(ck_passphrase_read(&src, "x", 0, 0, &s), CK_E_INVAL);
	assert_null(s);
}

/* ---- timeutil ---- */

static void
test_time_parse(void **state)
{
	int64_t t = 0, u = 0;

	(void)state;
	assert_int_equal(ck_time_parse("1970-01-01", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(ck_time_parse("2024-02-29", &t), 0);
	assert_int_equal(t, 1709164800);
	assert_int_equal(ck_time_parse("2024-02-29T12:34:56Z", &t), 0);
	assert_int_equal(t, 1709164800 + 12 * 3600 + 34 * 60 + 56);
	assert_int_equal(ck_time_parse("2024-02-29 12:34:56", &u), 0);
	assert_int_equal(u, t);
	assert_int_equal(ck_time_parse("2024-02-29T12:34:56", &u), 0);
	assert_int_equal(u, t);
	assert_int_equal(ck_time_parse("2000-02-29", &t), 0);
	assert_int_equal(ck_time_parse("9999-12-31T23:59:59Z", &t), 0);
	assert_int_equal(t, 253402300799LL);
}

static void
test_time_format_round_trip(void **state)
{
	static const int64_t times[] = {
		0, 1, 86399, 951782400, 1709164800, 1709209496,
		2147483647, 2147483648LL, 4102444800LL, 253402300799LL
	};
	char buf[32];
	int64_t back;
	size_t i;

	(void)state;
	ck_time_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	ck_time_format(1709209496, buf, sizeof(buf));
	assert_string_equal(buf, "2024-02-29T12:24:56Z");
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		ck_time_format(times[i], buf, sizeof(buf));
		assert_int_equal(strlen(buf), 20);
		assert_int_equal(ck_time_parse(buf, &back), 0);
		assert_int_equal(back, times[i]);
	}
	/* Too small a buffer gives an empty string, not a partial date. */
	ck_time_format(0, buf, 10);
	assert_string_equal(buf, "");
}

static void
test_time_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "2024", "2024-1-01", "24-01-01", "2024/01/01",
		"2024-01-01x", "2024-01-01T", "2024-13-01", "2024-00-10",
		"2024-01-00", "2024-01-32", "2024-04-31", "2024-06-31",
		"2023-02-29", "2024-02-30", "1900-02-29", "1969-12-31",
		"2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z",
		"2024-01-01T23:59:61Z", "2024-01-01T00:00:00X",
		"2024-01-01X00:00:00Z", "2024-01-01T00:00:00+01",
		"2024-01-01T0:00:000Z", "2024-01-01T00:00:00Z ",
		" 2024-01-01", "2024-01-01T-1:00:00Z", "abcd-ef-gh",
		"10000-01-01",
	};
	int64_t t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 12345;
		ck_err_clear();
		if (ck_time_parse(bad[i], &t) != CK_E_PARSE)
			fail_msg("ck_time_parse accepted bad date '%s'",
			    bad[i]);
		assert_int_equal(t, 12345);
		assert_contains(ck_err_msg(), "bad date");
	}
}

static void
test_time_now(void **state)
{
	int64_t a = ck_time_now();

	(void)state;
	/* Later than 2024-01-01 and not absurdly far ahead. */
	assert_true(a > 1704067200);
	assert_true(a < 4102444800LL);
	assert_true(ck_time_now() >= a);
}

/* ---- strutil ---- */

static void
test_strlist_split(void **state)
{
	struct ck_strlist l = { 0 };

	(void)state;
	assert_int_equal(ck_strlist_split(&l, "a, b,,c \t d\n,e"), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0], "a");
	assert_string_equal(l.v[1], "b");
	assert_string_equal(l.v[2], "c");
	assert_string_equal(l.v[3], "d");
	assert_string_equal(l.v[4], "e");
	assert_true(ck_strlist_has(&l, "c"));
	assert_false(ck_strlist_has(&l, "C"));
	assert_false(ck_strlist_has(&l, "a,"));
	assert_false(ck_strlist_has(&l, ""));

	/* Appends to what is there. */
	assert_int_equal(ck_strlist_split(&l, "  f  "), 0);
	assert_int_equal(l.n, 6);
	assert_string_equal(l.v[5], "f");
	assert_int_equal(ck_strlist_add(&l, "with space"), 0);
	assert_true(ck_strlist_has(&l, "with space"));

	ck_strlist_clear(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	assert_false(ck_strlist_has(&l, "a"));

	/* Empty and separator-only inputs add nothing. */
	assert_int_equal(ck_strlist_split(&l, ""), 0);
	assert_int_equal(ck_strlist_split(&l, " , ,\t"), 0);
	assert_int_equal(l.n, 0);

	/* Reusable after clear. */
	assert_int_equal(ck_strlist_split(&l, "x"), 0);
	assert_int_equal(l.n, 1);
	ck_strlist_clear(&l);
	ck_strlist_clear(NULL);
}

static void
test_strlist_split_long_item(void **state)
{
	struct ck_strlist l = { 0 };
	char big[2000];

	(void)state;
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ck_strlist_split(&l, big), CK_E_TOOBIG);
	ck_strlist_clear(&l);
}

static void
test_parse_u64(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(ck_parse_u64("42", 1, 100, "days", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(ck_parse_u64("1", 1, 100, "days", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ck_parse_u64("100", 1, 100, "days", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(ck_parse_u64("007", 0, 10, "days", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(ck_parse_u64("18446744073709551615", 0, UINT64_MAX,
	    "n", &v), 0);
	assert_true(v == UINT64_MAX);

	v = 99;
	ck_err_clear();
	assert_int_equal(ck_parse_u64("0", 1, 100, "days", &v), CK_E_PARSE);
	assert_contains(ck_err_msg(), "days");
	assert_contains(ck_err_msg(), "out of range");
	assert_int_equal(ck_parse_u64("101", 1, 100, "days", &v), CK_E_PARSE);
	assert_contains(ck_err_msg(), "1 to 100");
	assert_int_equal(v, 99);
}

/* zstd levels: fast (negative) and normal ones; 0 and the rest refused. */
static void
test_parse_zstd_level(void **state)
{
	static const char *const bad[] = {
		"0", "-0", "20", "-8", "--1", "-", "", "1x", "+3", " 1",
	};
	int v = 42;
	size_t i;

	(void)state;
	assert_int_equal(ck_parse_zstd_level("-2", "level", &v), 0);
	assert_int_equal(v, -2);
	assert_int_equal(ck_parse_zstd_level("-7", "level", &v), 0);
	assert_int_equal(v, -7);
	assert_int_equal(ck_parse_zstd_level("1", "level", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ck_parse_zstd_level("19", "level", &v), 0);
	assert_int_equal(v, 19);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		if (ck_parse_zstd_level(bad[i], "zstd_level", &v) !=
		    CK_E_PARSE || v != 42)
			fail_msg("accepted zstd level '%s'", bad[i]);
		assert_contains(ck_err_msg(), "zstd_level");
		assert_contains(ck_err_msg(), "-7 to -1, or 1 to 19");
	}
}

static void
test_parse_u64_bad(void **state)
{
	static const char *const bad[] = {
		"", "-1", "+5", " 5", "5 ", "5x", "0x10", "1e3", "abc",
		"18446744073709551616", "99999999999999999999999",
	};
	uint64_t v = 77;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_err_clear();
		if (ck_parse_u64(bad[i], 0, UINT64_MAX, "count", &v) !=
		    CK_E_PARSE)
			fail_msg("ck_parse_u64 accepted '%s'", bad[i]);
		assert_contains(ck_err_msg(), "count");
	}
	assert_int_equal(ck_parse_u64(NULL, 0, 10, "count", &v), CK_E_PARSE);
	assert_int_equal(v, 77);
}

static void
test_hex_and_bounded_copy(void **state)
{
	static const unsigned char in[] = { 0x00, 0x01, 0xab, 0xff, 0x7f };
	char out[11], dst[4];

	(void)state;
	ck_hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "0001abff7f");
	ck_hex_encode(in, 0, out);
	assert_string_equal(out, "");

	assert_int_equal(ck_strcpy_bounded(dst, sizeof(dst), "abc"), 0);
	assert_string_equal(dst, "abc");
	assert_int_equal(ck_strcpy_bounded(dst, sizeof(dst), "abcd"),
	    CK_E_TOOBIG);
	assert_string_equal(dst, "abc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_strerror),
		cmocka_unit_test(test_err_message),
		cmocka_unit_test(test_err_long_message_truncated),
		cmocka_unit_test(test_err_thread_local),
		cmocka_unit_test(test_err_ssl),
		cmocka_unit_test(test_secret_new_free),
		cmocka_unit_test(test_secret_equal),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test_setup_teardown(test_fs_write_new, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(
		    test_fs_write_new_refuses_symlink, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_write_new_missing_dir,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_write_atomic,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_check_private_dir,
		    setup_dir, teardown_dir),
		cmocka_unit_test(test_fs_trust_check),
		cmocka_unit_test_setup_teardown(test_fs_open_trusted,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_check_ancestors,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_preopen,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_check_private_file,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_read, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_read_large, setup_dir,
		    teardown_dir),
		cmocka_unit_test(test_fs_read_fd_pipe),
		cmocka_unit_test(test_path_join),
		cmocka_unit_test_setup_teardown(test_fs_exists, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_pass_file, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_pass_file_refused,
		    setup_dir, teardown_dir),
		cmocka_unit_test(test_pass_fd),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_time_format_round_trip),
		cmocka_unit_test(test_time_parse_bad),
		cmocka_unit_test(test_time_now),
		cmocka_unit_test(test_strlist_split),
		cmocka_unit_test(test_strlist_split_long_item),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_u64_bad),
		cmocka_unit_test(test_parse_zstd_level),
		cmocka_unit_test(test_hex_and_bounded_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
