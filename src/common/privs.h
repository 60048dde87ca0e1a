/*
 * privs.h - giving up root.
 *
 * A CA home belongs to a service user. certkeepd never serves as root, and
 * the certkeep command run as root acts as the home's owner, so that every
 * file in the home keeps one owner and the server can use it. A home may
 * instead be split between a key owner and the service user (below,
 * src/ca/home_split.h): then certkeepd runs its signer as the key owner
 * and serves as the service user, and the command line run as root works
 * as the service user.
 */
#ifndef CK_COMMON_PRIVS_H
#define CK_COMMON_PRIVS_H

#include <sys/types.h>

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

/*
 * A CA home may be split between two users (docs/signer.md): the key
 * owner K owns the home (sticky, group-writable for S's group) and every
 * file the signer trusts; the service user S (`[server] user`) owns the
 * store and the rest. The home is split when `svc_user` (the
 * configuration's [server] user, read from a file K owns) is set, names
 * someone else than the home's owner, and the owner is not root.
 */
struct ck_home_users {
	int split;
	uid_t key_uid;		/* the home's owner */
	gid_t key_gid;
	char key_user[64];	/* "" if the owner has no account */
	uid_t svc_uid;		/* split: S; else the home's owner */
	gid_t svc_gid;
	char svc_user[64];
};

/* Who the home belongs to. CK_E_NOTFOUND (no home, no such user). */
int ck_privs_home_users(const char *home, const char *svc_user,
    struct ck_home_users *out);

/* The command line, started as root, gives up root for the service user
 * of a split home: it still acts for root, the key owner's peer, in role
 * checks (ck_privs_caller_uid). */
void ck_privs_note_root_caller(void);

/* The uid role checks judge: 0 after ck_privs_note_root_caller(), else
 * the real uid. */
uid_t ck_privs_caller_uid(void);

#endif
