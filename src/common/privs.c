#include "common/privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/secmem.h"

int
ck_privs_lookup(const char *user, unsigned *uid, unsigned *gid)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		return ck_err_set(CK_E_NOTFOUND, "no user named '%s'", user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
ck_privs_drop(const char *user, const char *path, int allow_root,
    int *switched)
{
	struct passwd *pw;
	struct stat st;

	*switched = 0;
	if (geteuid() != 0)
		return 0;
	if (user != NULL && user[0] != '\0') {
		if ((pw = getpwnam(user)) == NULL)
			return ck_err_set(CK_E_NOTFOUND, "no user named '%s'",
			    user);
	} else {
		if (stat(path, &st) != 0)
			return ck_err_set(CK_E_NOTFOUND, "%s does not exist",
			    path);
		if ((pw = getpwuid(st.st_uid)) == NULL)
			return ck_err_set(CK_E_PERM, "the owner (uid %u) of %s "
			    "has no account", (unsigned)st.st_uid, path);
	}
	if (pw->pw_uid == 0) {
		if (allow_root)
			return 0;
		return ck_err_set(CK_E_PERM, "refusing to serve as root: give "
		    "the CA home to a service user (certkeep init --user, or "
		    "chown -R certkeep: %s) or set [server] user", path);
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		return ck_err_set(CK_E_PERM, "cannot become %s: %s",
		    pw->pw_name, strerror(errno));
	if (setuid(0) == 0)
		return ck_err_set(CK_E_INTERNAL, "root could be regained");
	/* The uid change made us dumpable again (fs.suid_dumpable): the
	 * new user could ptrace us and read what root read. */
	ck_process_nodump();
	*switched = 1;
	return 0;
}

int
ck_privs_home_users(const char *home, const char *svc_user,
    struct ck_home_users *out)
{
	struct passwd *pw;
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (stat(home, &st) != 0)
		return ck_err_set(CK_E_NOTFOUND, "%s does not exist", home);
	out->key_uid = out->svc_uid = st.st_uid;
	out->key_gid = out->svc_gid = st.st_gid;
	if ((pw = getpwuid(st.st_uid)) != NULL) {
		snprintf(out->key_user, sizeof(out->key_user), "%s",
		    pw->pw_name);
		out->key_gid = out->svc_gid = pw->pw_gid;
	}
	snprintf(out->svc_user, sizeof(out->svc_user), "%s", out->key_user);
	if (svc_user == NULL || svc_user[0] == '\0')
		return 0;
	if ((pw = getpwnam(svc_user)) == NULL)
		return ck_err_set(CK_E_NOTFOUND, "no user named '%s' ([server] "
		    "user)", svc_user);
	if (pw->pw_uid == st.st_uid || st.st_uid == 0)
		return 0;
	if (out->key_user[0] == '\0')
		return ck_err_set(CK_E_NOTFOUND, "the owner (uid %u) of %s has "
		    "no account", (unsigned)st.st_uid, home);
	out->split = 1;
	out->svc_uid = pw->pw_uid;
	out->svc_gid = pw->pw_gid;
	snprintf(out->svc_user, sizeof(out->svc_user), "%s", pw->pw_name);
	return 0;
}

static int root_caller;

void
ck_privs_note_root_caller(void)
{
	root_caller = 1;
}

uid_t
ck_privs_caller_uid(void)
{
	return root_caller ? 0 : getuid();
}
