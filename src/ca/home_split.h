/*
 * home_split.h - a CA home split between a key owner and a service user.
 *
 * The key owner K owns the home (mode 01770, group: the service user's
 * primary group) and everything the signer trusts: certkeep.conf,
 * ca.pem, chain.pem, ca.csr, acme-eab.pub (0644), private/ (0700) and
 * the keys in it (0600). The service user S ([server] user) owns the
 * store and the rest of its files, where they always were. The sticky
 * bit lets S create its files in the home but not rename, remove or
 * replace K's. Design and limits: docs/signer.md.
 */
#ifndef CK_CA_HOME_SPLIT_H
#define CK_CA_HOME_SPLIT_H

struct ck_home_users;

/*
 * As root: give HOME the split layout, K = `key_user`, S = `svc_user`
 * (K != S, neither root), or with `key_user` NULL give it back whole to
 * S (the layout before). [server] user is set to S in the
 * configuration if it names nobody; a configuration naming another user
 * is refused. certkeepd must not be running (CK_E_BUSY). Symlinks are
 * refused, never followed. CK_E_PERM (not root), CK_E_NOTFOUND, CK_E_IO.
 */
int ck_home_layout(const char *home, const char *svc_user,
    const char *key_user);

/*
 * As root, before giving up root for the service user of the split home
 * described by HU: open the key owner's secrets that a command may read
 * (the CA key file, the ACME EAB key), judged by ck_fs_open_trusted(),
 * and register them (ck_fs_preopen_add). Missing ones are skipped; one
 * refused is registered as refused (ck_fs_preopen_refuse: not tried
 * again as the service user), does not keep the other from being
 * opened, and the first refusal is returned.
 */
int ck_home_split_preopen(const char *home, const struct ck_home_users *hu);

#endif
