/*
 * signer_proc.h - the signer process: the CA key in its own process.
 *
 * certkeepd forks it at start, before it unlocks anything:
 *
 *   service process (network, store, profiles)   signer process (key)
 *     signer_proc_start()  ---- fork + socketpair ---->  signer_proc_child()
 *                                                        loads its own config,
 *                                                        profiles, CA chain
 *     signer_proc_unlock() ---- UNLOCK (passphrase) -->  decrypts the key or
 *                                                        logs into the token,
 *                                                        then sandboxes itself
 *     signer_new_remote()  ---- typed requests ------->  checks, builds, signs
 *
 * Only the signer process ever holds the key. It builds every TBS itself
 * from a structured request and re-checks it against its own copy of the
 * profiles (signer_main.c); it exits on any unknown or malformed message.
 * When it dies, calls fail with "signer unavailable" and the death
 * callback runs (certkeepd stops serving). Messages: signer_msg.h; design:
 * docs/signer.md.
 */
#ifndef CK_SIGNER_SIGNER_PROC_H
#define CK_SIGNER_SIGNER_PROC_H

#include <stdint.h>
#include <sys/types.h>

#include "common/secmem.h"
#include "signer/signer_msg.h"

struct signer_proc;

/*
 * Fork the signer process for the CA home `home` (it reads the home's
 * configuration and chain itself). In the parent: 0 and *out (free with
 * signer_proc_free). The child never returns from here. Call before
 * starting threads: only the calling thread survives fork().
 */
int signer_proc_start(const char *home, struct signer_proc **out);

/*
 * Whether the signer started next keeps the caller's stderr (1, the
 * default) or gets /dev/null (its stdin and stdout always do): certkeepd
 * keeps it only with --foreground.
 */
void signer_proc_keep_stderr(int keep);

/*
 * The same for a home split between a key owner and a service user
 * (docs/signer.md): called as root, the child becomes `key_user` (for
 * good) before it reads anything, and trusts only files the key owner
 * or root owns and nobody else can write (ck_fs_open_trusted); the
 * caller then gives up root itself. `key_user` NULL: signer_proc_start().
 */
int signer_proc_start_as(const char *home, const char *key_user,
    struct signer_proc **out);

/*
 * Send the passphrase (or token PIN) once; the signer decrypts the key
 * (or logs into the token), checks it against the CA certificate, wipes
 * the passphrase and sandboxes itself. The message buffer is wiped here
 * too. CK_E_PASSPHRASE etc. as keystore_load() would return.
 */
int signer_proc_unlock(struct signer_proc *sp, const struct ck_secret *pw);

/*
 * Send a request and wait for its reply (any thread; replies may come
 * back in any order). 0 with *rep filled (release with signer_msg_clear,
 * then free *body); an error reply becomes its code with its message;
 * CK_E_CRYPTO "signer unavailable: ..." once the process is gone.
 */
int signer_proc_call(struct signer_proc *sp, const struct signer_msg *req,
    struct signer_msg *rep, unsigned char **body);

/* signer_proc_call() with a request encoded before (signer_msg_encode()):
 * its id is set in `b` here. */
int signer_proc_call_encoded(struct signer_proc *sp, struct signer_buf *b,
    struct signer_msg *rep, unsigned char **body);

/*
 * `n` requests encoded before (ids set here; at most SIGNER_PROC_MANY_MAX)
 * sent in one write, and their replies in reps[i] and bodies[i] (free()
 * each after signer_msg_clear()), R_ERR replies included: the signer
 * answers each on its own. 0 when every request has its reply; else
 * CK_E_CRYPTO "signer unavailable" (the signer died, or stopped answering
 * for the timeout, which runs from the last reply in), with the replies
 * that did come in returned all the same and reps[i].type SIGNER_MSG_NONE
 * for the others. CK_E_INVAL, and nothing sent, for n out of range.
 */
#define SIGNER_PROC_MANY_MAX 64
int signer_proc_call_many(struct signer_proc *sp, struct signer_buf *const *b,
    size_t n, struct signer_msg *reps, unsigned char **bodies);

/* How long a call waits for its reply (default SIGNER_PROC_TIMEOUT
 * seconds; 0: the default). A later reply is not waited for: the signer
 * is killed and taken for dead, the death callback runs, every call
 * fails from then on (a stopped or stuck signer must not hang every
 * service thread). */
#define SIGNER_PROC_TIMEOUT 30
void signer_proc_set_timeout(struct signer_proc *sp, unsigned seconds);

/* Called once, from the reader thread, when the process is gone; at once
 * (from the caller's thread) if it is already gone. */
void signer_proc_on_death(struct signer_proc *sp, void (*fn)(void *,
    const char *), void *arg);

/* 1 once the process is gone (why into `why`, may be NULL). */
int signer_proc_dead(struct signer_proc *sp, char *why, size_t whysz);

pid_t signer_proc_pid(const struct signer_proc *sp);

/* The socket, for tests that play a compromised service process. */
int signer_proc_fd(const struct signer_proc *sp);

/* Close the socket (the signer exits), reap it, free; accepts NULL. */
void signer_proc_free(struct signer_proc *sp);

/* The child's side (signer_main.c): never returns. */
void signer_proc_child(int fd, const char *home)
    __attribute__((noreturn));
void signer_proc_child_as(int fd, const char *home, const char *key_user)
    __attribute__((noreturn));

/*
 * The sandbox (signer_sandbox.c): allow only what a signer needs after
 * start (plus, with `token`, the file access a PKCS#11 module needs) and
 * apply it to every thread of the process. `log_mode` reports a forbidden
 * system call on stderr and fails it with ENOSYS instead of killing the
 * process. Also sets PR_SET_NO_NEW_PRIVS. 0 or CK_E_INTERNAL.
 */
int signer_sandbox_apply(int token, int log_mode);

#endif
