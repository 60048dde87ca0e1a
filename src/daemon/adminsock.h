/*
 * adminsock.h - certkeepd's admin socket, and the CLI's end of it.
 *
 * A Unix stream socket in the abstract namespace (Linux), named
 * "@certkeep-admin-" and the first 32 hex digits of the SHA-256 of the CA
 * home's real path. Abstract names have no file, so the CLI of any OS user
 * reaches it while the home stays 0700; who is calling is then learnt from
 * the kernel (SO_PEERCRED), never from the request, and judged by
 * src/authz/. Because anyone could bind such a name first, the client
 * checks in turn that the server's uid is the home's owner (or root)
 * before it sends anything, and certkeepd refuses to start when the name
 * is taken.
 *
 * One request per connection: a 4-byte big-endian length and that many
 * bytes of JSON (a src/authz/admin.h request, at most ADMIN_REQUEST_MAX),
 * answered the same way with the reply (at most ADMIN_REPLY_MAX); then the
 * server closes. A malformed, oversized or slow request gets an error
 * reply (when it can still be sent) and the connection closed; the server
 * goes on serving. A few threads serve, so one slow client does not hold
 * up the others; every store write goes through the pipeline's committer.
 */
#ifndef CK_DAEMON_ADMINSOCK_H
#define CK_DAEMON_ADMINSOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <jansson.h>

struct server;
struct adminsock;

#define ADMINSOCK_THREADS 4
#define ADMINSOCK_TIMEOUT_S 10	/* to receive a request, or send a reply */
/* Refusals audited one by one per second; beyond, counted into the next
 * audited one (common/budget.h). */
#define ADMINSOCK_REFUSALS_PER_S 200

/* The socket's address for the CA home HOME. 0 or a negative code. */
int adminsock_address(const char *home, struct sockaddr_un *sa,
    socklen_t *salen);

/* Listen for HOME and serve with SV's pipeline and read connection.
 * CK_E_BUSY if the name is taken. */
int adminsock_start(struct server *sv, const char *home,
    struct adminsock **out);

/* The admin_env "changed" hook for certkeepd (ARG: struct server): wakes
 * the housekeeper, for a new CRL after a revocation (REVOKED) or to reload
 * the tokens. Shared with the HTTPS admin route (adminhttp.h). */
void adminsock_changed(void *arg, int revoked);

/* The same on FD, a socket already bound to HOME's name and listening
 * (certkeepd's locked start-up, src/daemon/unlockd.h, hands it over so
 * that the name is never free); FD is taken, also on failure. */
int adminsock_start_fd(struct server *sv, const char *home, int fd,
    struct adminsock **out);

/* Stop serving (finishes the requests being served); accepts NULL. */
void adminsock_stop(struct adminsock *as);

/*
 * Decode one framed request (length prefix and JSON, LEN bytes in all)
 * into a JSON object: CK_E_PARSE or CK_E_TOOBIG with a message for
 * anything else. The socket's parser, also the fuzz target's.
 */
int adminsock_decode(const unsigned char *buf, size_t len, json_t **out);

/*
 * The client: send REQ to the certkeepd serving HOME and wait for the
 * reply (*reply, caller decrefs). CK_E_NOTFOUND when no certkeepd serves
 * HOME (nothing listens on the name); CK_E_PERM if what listens is not
 * the home's owner.
 */
int adminsock_call(const char *home, const json_t *req, json_t **reply);

/*
 * The command line run as root on a split home gives up root for the
 * service user, but speaks to certkeepd as root (who counts as the
 * home's owner there; the peer's credentials are those of connect()).
 * Before the drop it forks a helper that stays root and does one thing:
 * on each request, connect to HOME's admin socket and hand the
 * connected descriptor back (SCM_RIGHTS). It ends when this process
 * does. 0 or CK_E_IO.
 */
int adminsock_connector_start(const char *home);

/* A socket connected to HOME's admin socket (through the helper if one
 * was started): 0 and *fd, CK_E_NOTFOUND if nothing listens, CK_E_IO. */
int adminsock_connect(const char *home, int *fd);

#endif
