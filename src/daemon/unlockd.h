/*
 * unlockd.h - certkeepd's locked start-up: waiting for M-of-N key shares.
 *
 * A home whose key is protected by shares (src/keystore/unlock.h) starts
 * locked. certkeepd then binds its admin socket (the same abstract name,
 * adminsock.h) and nothing else: no network listener runs until the key
 * is open, so no network-facing code runs at all while custodians come
 * one by one. On the socket it serves two requests, one per connection,
 * framed as every admin request is:
 *
 *   {"action": "unlock", "share": "<the share file's text>"}
 *   {"action": "unlock-status"}
 *
 * and answers {"ok": true, "locked": true, "have": K, "need": M,
 * "out": "..."} (after the M-th share: "unlocked": true), or an error
 * reply for a refused share, which does not count, and for any other
 * request. Any local user may send a share: the share is the credential
 * (M of them open the key, fewer reveal nothing), the store of operators
 * and roles is not opened before the key is, and custodians need not be
 * certkeep operators. Who sent which custodian's share (SO_PEERCRED) is
 * written to the audit log once the store is open.
 *
 * Requests are served one at a time, each within ADMINSOCK_TIMEOUT_S;
 * request bytes live in a ck_secret and jansson's memory is wiped when
 * freed (unlockd_json_wipe) while shares pass through it.
 */
#ifndef CK_DAEMON_UNLOCKD_H
#define CK_DAEMON_UNLOCKD_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "common/secmem.h"
#include "keystore/unlock.h"

/*
 * Wait, locked, on HOME's admin socket until C has M shares and they
 * rebuild the secret: *PW is the key file's passphrase, *LISTEN_FD the
 * socket, still bound and listening, for adminsock_start_fd(). STOP (the
 * signals blocked by the caller) ends the wait: CK_E_STATE. CK_E_BUSY if
 * the socket's name is taken.
 */
int unlockd_wait(const char *home, struct unlock_collector *c,
    const sigset_t *stop, int *listen_fd, struct ck_secret **pw);

/*
 * Read shares from IN (a terminal: echo is turned off; or a pipe), one
 * after another, each up to its END line, reporting to OUT, until they
 * rebuild the secret: *PW as above. A refused share is reported and does
 * not count; the end of input before that is CK_E_STATE.
 */
int unlockd_prompt(int in, FILE *out, struct unlock_collector *c,
    struct ck_secret **pw);

/*
 * Check a decoded request (untrusted): *OP is "unlock" or
 * "unlock-status"; for unlock *SHARE and *LEN the share text (inside REQ).
 * CK_E_PARSE with a message for anything else.
 */
int unlockd_request_parse(const json_t *req, const char **op,
    const char **share, size_t *len);

/* From now on jansson wipes what it frees (malloc_usable_size bytes): the
 * text of shares that passed through a JSON request does not stay behind
 * in freed memory. */
void unlockd_json_wipe(void);

#endif
