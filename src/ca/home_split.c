#include "ca/home_split.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/eab_seal.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/privs.h"
#include "daemon/service.h"

/* The key owner's files at the top of the home, besides the configured
 * certificate files (all read by the service too). */
static const char *const key_owner_files[] = {
	CK_CONFIG_FILE, "ca.pem", "chain.pem", "ca.csr", EAB_SEAL_PUB_FILE,
	NULL
};

struct who {
	uid_t uid;
	gid_t gid;
};

static int
lookup(const char *name, const char *what, struct who *w)
{
	struct passwd *pw;

	if (name == NULL || name[0] == '\0' || (pw = getpwnam(name)) == NULL)
		return ck_err_set(CK_E_NOTFOUND, "no user named '%s' (%s)",
		    name != NULL ? name : "", what);
	if (pw->pw_uid == 0)
		return ck_err_set(CK_E_INVAL, "the %s cannot be root", what);
	w->uid = pw->pw_uid;
	w->gid = pw->pw_gid;
	return 0;
}

/* The home is open to the service user's primary group: a group of its
 * own, or others could create files there (the names certkeepd will
 * make: its lock, pid and URL files). XXX: users whose primary group it
 * is are not looked for (that takes walking every account). */
static int
group_own(const char *svc, gid_t gid)
{
	struct group *gr = getgrgid(gid);
	size_t i;

	if (gr == NULL)
		return ck_err_set(CK_E_NOTFOUND, "the group %u of %s does not "
		    "exist", (unsigned)gid, svc);
	for (i = 0; gr->gr_mem != NULL && gr->gr_mem[i] != NULL; i++)
		if (strcmp(gr->gr_mem[i], svc) != 0)
			return ck_err_set(CK_E_INVAL, "the service user's group "
			    "%s has other members (%s): the home is opened to "
			    "that group; give %s a group of its own", gr->gr_name,
			    gr->gr_mem[i], svc);
	return 0;
}

/*
 * Give NAME in directory DFD to W with MODE (the type's bits are kept),
 * through a descriptor opened without following a symlink: the service
 * user could swap a name for a link between a check and a chmod.
 * Missing: 0. A symlink or another type, a file with other hard links,
 * or one owned by someone else than root, W or PREV_UID (the home's
 * owner before): CK_E_PERM.
 */
static int
give(int dfd, const char *shown, const char *name, const struct who *w,
    uid_t prev_uid, mode_t mode, int want_dir)
{
	struct stat st;
	int fd, r = 0;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
	    (want_dir ? O_DIRECTORY : 0));
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return ck_err_set(errno == ELOOP || errno == ENOTDIR ?
		    CK_E_PERM : CK_E_IO, "%s/%s: %s (symbolic links are "
		    "refused)", shown, name, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || (want_dir ? !S_ISDIR(st.st_mode) :
	    !S_ISREG(st.st_mode)))
		r = ck_err_set(CK_E_PERM, "%s/%s is not a %s", shown, name,
		    want_dir ? "directory" : "regular file");
	else if (!want_dir && st.st_nlink != 1)
		/* A hard link to a file elsewhere: given, it would be that
		 * file (another's key, /etc/shadow) that changes owner. */
		r = ck_err_set(CK_E_PERM, "%s/%s has %lu links: refusing to give "
		    "a file linked elsewhere; check it, and copy it if it is "
		    "right", shown, name, (unsigned long)st.st_nlink);
	else if (st.st_uid != 0 && st.st_uid != w->uid &&
	    st.st_uid != prev_uid)
		/* Not the key owner's already, nor root's, nor the home
		 * owner's before (a join's service user): a name someone
		 * else planted. */
		r = ck_err_set(CK_E_PERM, "%s/%s belongs to uid %u, not to "
		    "root or the home's owner: refusing to adopt it; remove it "
		    "if it is not yours", shown, name, (unsigned)st.st_uid);
	else if (fchown(fd, w->uid, w->gid) != 0 || fchmod(fd, mode) != 0)
		r = ck_err_set(CK_E_IO, "cannot give %s/%s to uid %u: %s",
		    shown, name, (unsigned)w->uid, strerror(errno));
	close(fd);
	return r;
}

/* private/ and what is in it (one level: keys and their kin). */
static int
give_private(int homefd, const char *home, const struct who *w,
    uid_t prev_uid)
{
	char shown[4200];
	struct dirent *e;
	DIR *d;
	int fd, r;

	if ((r = give(homefd, home, "private", w, prev_uid, 0700, 1)) != 0)
		return r;
	fd = openat(homefd, "private", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : ck_err_set(CK_E_IO,
		    "%s/private: %s", home, strerror(errno));
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return ck_err_set(CK_E_IO, "%s/private: %s", home,
		    strerror(errno));
	}
	snprintf(shown, sizeof(shown), "%s/private", home);
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		r = give(dirfd(d), shown, e->d_name, w, prev_uid, 0600,
		    0);
	}
	closedir(d);
	return r;
}

/* A configured file name at the top of the home (the default layout),
 * else NULL: the split layout keeps the key owner's files there. */
static const char *
top_name(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	    strcmp(name, "..") != 0 && strcmp(name, ".") != 0 ? name : NULL;
}

/* The configuration (not followed if a link), with [server] user = SVC
 * added if it names nobody. */
static int
config_user(int homefd, const char *home, const char *svc,
    struct ck_config **cfgp)
{
	char path[4200], line[128];
	unsigned char *text = NULL;
	char *out = NULL, *at;
	size_t len, n, cap, head;
	int fd, r;

	*cfgp = NULL;
	fd = openat(homefd, CK_CONFIG_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ck_err_set(errno == ENOENT ? CK_E_NOTFOUND : CK_E_IO,
		    "%s/%s: %s", home, CK_CONFIG_FILE, strerror(errno));
	r = ck_fs_read_fd(fd, CK_CONFIG_MAX, &text, &len);
	close(fd);
	if (r != 0 || (r = ck_config_parse((const char *)text, len,
	    cfgp)) != 0)
		goto out;
	if (strcmp((*cfgp)->server.user, svc) == 0)
		goto out;
	if ((*cfgp)->server.user[0] != '\0') {
		r = ck_err_set(CK_E_INVAL, "the configuration's [server] user "
		    "is %s, not %s: correct it first", (*cfgp)->server.user,
		    svc);
		goto out;
	}
	/* XXX: a "user =" line with an empty value is left and a second
	 * one added; the parser takes the last. */
	snprintf(line, sizeof(line), "user = %s\n", svc);
	cap = len + sizeof(line) + 16;
	if ((out = malloc(cap)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	/* Right after the [server] header, else in a new section. */
	if ((at = strstr((char *)text, "\n[server]\n")) != NULL) {
		head = (size_t)(at - (char *)text) + strlen("\n[server]\n");
		memcpy(out, text, head);
		n = head + (size_t)snprintf(out + head, cap - head, "%s", line);
		memcpy(out + n, text + head, len - head);
		n += len - head;
	} else {
		memcpy(out, text, len);
		n = len + (size_t)snprintf(out + len, cap - len, "\n[server]\n%s",
		    line);
	}
	ck_config_free(*cfgp);
	*cfgp = NULL;
	if ((r = ck_config_parse(out, n, cfgp)) != 0 ||
	    (r = ck_path_join(path, sizeof(path), home, CK_CONFIG_FILE)) != 0 ||
	    (r = ck_fs_write_atomic(path, out, n, 0600)) != 0)
		goto out;
out:
	free(out);
	free(text);
	if (r != 0) {
		ck_config_free(*cfgp);
		*cfgp = NULL;
	}
	return r;
}

int
ck_home_layout(const char *home, const char *svc_user, const char *key_user)
{
	struct ck_config *cfg = NULL;
	struct who s, k;
	const struct who *kw;
	const char *extra[3];
	struct stat hst;
	uid_t prev_uid;
	int homefd = -1, lockfd = -1, r, i;

	memset(&s, 0, sizeof(s));
	memset(&k, 0, sizeof(k));
	if (geteuid() != 0)
		return ck_err_set(CK_E_PERM, "changing the owners of a CA home "
		    "needs root");
	if ((r = lookup(svc_user, "the service user", &s)) != 0 ||
	    (key_user != NULL &&
	    (r = lookup(key_user, "the key owner", &k)) != 0))
		return r;
	if (key_user != NULL && k.uid == s.uid)
		return ck_err_set(CK_E_INVAL, "the key owner and the service "
		    "user must be two users");
	if (key_user != NULL && (r = group_own(svc_user, s.gid)) != 0)
		return r;
	kw = key_user != NULL ? &k : &s;
	if ((homefd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return ck_err_set(errno == ENOENT ? CK_E_NOTFOUND : CK_E_IO,
		    "%s: %s", home, strerror(errno));
	/* Not under a running certkeepd (its lock, never created here: a
	 * lock file of root's would keep the service user out). */
	lockfd = openat(homefd, SERVICE_LOCK_FILE, O_RDWR | O_NOFOLLOW |
	    O_CLOEXEC);
	if (lockfd >= 0 && flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		r = ck_err_set(CK_E_BUSY, "certkeepd is running on %s: stop it "
		    "first", home);
		goto out;
	}
	if ((r = config_user(homefd, home, svc_user, &cfg)) != 0)
		goto out;
	extra[0] = top_name(cfg->cert_file);
	extra[1] = top_name(cfg->chain_file);
	extra[2] = top_name(cfg->csr_file);
	if (fstat(homefd, &hst) != 0) {
		r = ck_err_set(CK_E_IO, "%s: %s", home, strerror(errno));
		goto out;
	}
	prev_uid = hst.st_uid;
	if ((r = give_private(homefd, home, kw, prev_uid)) != 0)
		goto out;
	for (i = 0; key_owner_files[i] != NULL && r == 0; i++)
		r = give(homefd, home, key_owner_files[i], kw, prev_uid,
		    key_user != NULL ? 0644 : 0600, 0);
	for (i = 0; i < 3 && r == 0; i++)
		if (extra[i] != NULL)
			r = give(homefd, home, extra[i], kw, prev_uid,
			    key_user != NULL ? 0644 : 0600, 0);
	if (r != 0)
		goto out;
	/* The home last: sticky and open to the service user's group, or
	 * the service user's alone again. */
	if (fchown(homefd, kw->uid, s.gid) != 0 ||
	    fchmod(homefd, key_user != NULL ? 01770 : 0700) != 0) {
		r = ck_err_set(CK_E_IO, "cannot give %s to uid %u: %s", home,
		    (unsigned)kw->uid, strerror(errno));
		goto out;
	}
	r = 0;
out:
	ck_config_free(cfg);
	if (lockfd >= 0)
		close(lockfd);
	close(homefd);
	return r;
}

int
ck_home_split_preopen(const char *home, const struct ck_home_users *hu)
{
	struct ck_config *cfg = NULL;
	unsigned char *text = NULL;
	const char *names[2];
	char path[4200], why[1024];
	size_t len;
	int fd, r, i, first = 0;

	if ((r = ck_fs_open_trusted(home, CK_CONFIG_FILE, hu->key_uid, 0,
	    &fd)) != 0)
		return r;
	r = ck_fs_read_fd(fd, CK_CONFIG_MAX, &text, &len);
	close(fd);
	if (r != 0 || (r = ck_config_parse((const char *)text, len,
	    &cfg)) != 0)
		goto out;
	names[0] = cfg->key_uri[0] == '\0' ? cfg->key_file : NULL;
	names[1] = EAB_SEAL_KEY_FILE;
	/* Each on its own: a key refused leaves the other usable. */
	for (i = 0; i < 2; i++) {
		if (names[i] == NULL)
			continue;
		r = ck_fs_open_trusted(home, names[i], hu->key_uid, 1, &fd);
		if (r == 0 && (r = ck_path_join(path, sizeof(path), home,
		    names[i])) != 0)
			close(fd);
		if (r == 0)
			r = ck_fs_preopen_add(path, fd);
		if (r != 0 && r != CK_E_NOTFOUND && first == 0) {
			first = r;
			snprintf(why, sizeof(why), "%s", ck_err_msg());
			/* Not tried again as the service user, who might
			 * own it: refused with this reason. */
			if (ck_path_join(path, sizeof(path), home,
			    names[i]) == 0)
				(void)ck_fs_preopen_refuse(path, why);
		}
	}
	r = first != 0 ? ck_err_set(first, "%s", why) : 0;
	if (r == 0)
		ck_err_clear();
out:
	ck_config_free(cfg);
	free(text);
	return r;
}
