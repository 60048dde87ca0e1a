/*
 * service.h - running certkeepd like any other daemon: one instance per
 * CA home (an exclusive lock on HOME/certkeepd.lock held for the server's
 * life), a pid file, and the signals the command line sends.
 */
#ifndef CK_DAEMON_SERVICE_H
#define CK_DAEMON_SERVICE_H

#include <sys/types.h>

#define SERVICE_LOCK_FILE "certkeepd.lock"
#define SERVICE_PID_FILE "certkeepd.pid"
#define SERVICE_URLS_FILE "certkeepd.urls"

/* Take the home's lock; CK_E_BUSY naming the running pid if held. */
int service_lock(const char *home, int *fd_out);

/* Write our pid to `path` (atomically, 0644). */
int service_pid_write(const char *path);

/*
 * Is a server running on `home`? Returns 1 (and *pid) if its lock is
 * held, 0 if not, or a negative code.
 */
int service_running(const char *home, pid_t *pid);

/* Send `sig` to the running server; CK_E_STATE if none runs. */
int service_signal(const char *home, int sig);

/* Wait up to `timeout_s` for the server to stop; CK_E_BUSY if it did
 * not. */
int service_wait_stopped(const char *home, unsigned timeout_s);

/*
 * Start certkeepd (the program EXE) on HOME with the passphrase PW handed
 * over a pipe, and wait until it serves or fails (it reports either way
 * before it detaches). QUIET: its "serving" message is not shown.
 */
struct ck_secret;
int service_spawn(const char *exe, const char *home,
    const struct ck_secret *pw, int quiet);

#endif
