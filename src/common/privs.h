/*
 * privs.h - giving up root.
 *
 * A CA home belongs to a service user. certkeepd never serves as root, and
 * the certkeep command run as root acts as the home's owner, so that every
 * file in the home keeps one owner and the server can use it.
 */
#ifndef CK_COMMON_PRIVS_H
#define CK_COMMON_PRIVS_H

/*
 * If running as root, become `user` (when not NULL or empty) or else the
 * owner of `path`, with its groups; refuse (CK_E_PERM) if that is root
 * itself and `allow_root` is 0. After success root cannot be regained.
 * Does nothing when not root. *switched is set to 1 if it switched.
 */
int ck_privs_drop(const char *user, const char *path, int allow_root,
    int *switched);

/* Look up a user's uid and gid; CK_E_NOTFOUND if there is none. */
int ck_privs_lookup(const char *user, unsigned *uid, unsigned *gid);

#endif
