/*
 * acme_eab.h - checking an ACME external account binding (RFC 8555 7.3.4)
 * against the keys the operator created (`certkeep acme eab create`).
 *
 * The HMAC key of a kid is in the store only sealed (src/ca/eab_seal.h);
 * it is opened with the server's EAB key (struct server's eab_key) for
 * the one check and wiped at once. Binding the kid to the new account is
 * the caller's: store_acme_eab_bind() in the transaction that creates the
 * account, whose guard refuses a kid bound or revoked in the meantime.
 */
#ifndef CK_PROTO_ACME_EAB_H
#define CK_PROTO_ACME_EAB_H

#include <stddef.h>

#include <jansson.h>

#include "proto/jws.h"
#include "store/store_acme.h"

struct server;

/*
 * Check BINDING, the "externalAccountBinding" member of a newAccount
 * payload, against OUTER, that newAccount request (already verified with
 * its own "jwk"): its form (ck_jws_eab_parse), its kid in the store (read
 * on sv->rd under sv->rd_mu), its MAC under the kid's unsealed key, its
 * url and payload against OUTER (ck_jws_eab_verify), and that the kid is
 * neither revoked nor bound to an account.
 *
 * 0 and KID (NUL-terminated) on success. Otherwise a negative CK_E_* code,
 * *ptype the RFC 8555 problem type without its prefix and DETAIL (DLEN
 * bytes, NUL-terminated) a message for the client:
 *   CK_E_PARSE     "malformed": not a binding JWS of the accepted form, a
 *                  kid too long, another url, a payload that is no JWK,
 *                  an outer request without "jwk"
 *   CK_E_NOTFOUND  "unauthorized": no such kid
 *   CK_E_BADSIG    "unauthorized": wrong MAC, or the binding names
 *                  another key than the account's
 *   CK_E_STATE     "unauthorized": the kid is revoked or bound already
 *   CK_E_STATE     "serverInternal": the server has no EAB key loaded
 *   other          "serverInternal" (store, memory, a sealed key that does
 *                  not open: the message says so, the detail does not)
 * KID is also set for every refusal after parsing, for the audit ("" when
 * the binding did not parse). ck_err_msg() holds the full reason.
 */
int acme_eab_check(struct server *sv, const json_t *binding,
    const struct ck_jws *outer, char kid[STORE_ACME_ID_SIZE],
    const char **ptype, char *detail, size_t dlen);

#endif
