/*
 * adminhttp.h - the admin requests over HTTPS, for remote operators.
 *
 *   POST /admin/v1   (on the API listener; body: one src/authz/admin.h
 *                     request, application/json, at most
 *                     ADMIN_REQUEST_MAX bytes)
 *
 * The caller is known by its TLS client certificate only: it must chain
 * to this CA (GnuTLS checks that against the CA chain during the
 * handshake), be issued by this CA's own certificate, be within its
 * validity, be issued and not revoked in the store, and its SHA-256 must
 * be bound to an active operator (certkeep operator add --cert, operator
 * cert). No password, no token. Anything else is answered 401 (no or no
 * valid certificate) or 403 (a valid certificate bound to no operator)
 * with a problem document, and audited ("admin-authenticate", refused).
 *
 * An authenticated request runs through admin_exec_as(): the same
 * handler, role check and audit entries as the admin socket. The answer
 * is the handler's reply object: 200 when "ok" is true; otherwise an
 * application/problem+json document (403 for a role refusal, 400, 404,
 * 409 or 500 by the error) that also carries the reply's "ok", "code",
 * "error" and "refused" members, which the CLI's remote mode prints.
 *
 * Requests are run by a few worker threads, not the HTTP threads (an
 * audit export may take a while, and writes wait for the committer);
 * at most ADMINHTTP_QUEUE_MAX wait, beyond that 503.
 */
#ifndef CK_DAEMON_ADMINHTTP_H
#define CK_DAEMON_ADMINHTTP_H

#include "proto/http.h"

struct server;
struct adminhttp;

#define ADMINHTTP_PATH "/admin/v1"
#define ADMINHTTP_THREADS 2
#define ADMINHTTP_QUEUE_MAX 64
/* Refusals audited one by one per second; beyond, counted into the next
 * audited one (common/budget.h). */
#define ADMINHTTP_REFUSALS_PER_S 50

/* Start the workers for SV (its pipeline, read connection and CA must be
 * up). 0 or a negative code. */
int adminhttp_start(struct server *sv, struct adminhttp **out);

/* Answer what is queued, stop the workers; accepts NULL. Call after the
 * HTTP servers were drained and before the pipeline stops. */
void adminhttp_stop(struct adminhttp *ah);

/* The route's handler (ctx: struct server). */
enum http_result adminhttp_handle(void *ctx, const struct http_request *req,
    struct http_response *resp);

/*
 * The checks on a client certificate (DER) for SV's CA, except the
 * operator binding: issued by the CA's certificate, within validity, for
 * TLS client authentication, issued and not revoked in ST. 0, or
 * CK_E_PERM with the reason; SHA256HEX (65 bytes) and SERIAL
 * (CK_SERIAL_HEX_MAX) are filled when the certificate parses.
 */
struct ck_ca;
struct store;
int adminhttp_cert_check(struct ck_ca *ca, struct store *st,
    const unsigned char *der, size_t len, char *sha256hex, char *serial);

#endif
