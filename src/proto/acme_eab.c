/*
 * acme_eab.c - an external account binding checked against the store's
 * sealed keys (acme_eab.h).
 *
 * Order of the checks: form, kid known, MAC, then the kid's state, so
 * that whoever does not hold the kid's key learns no more than whether
 * the kid exists (RFC 8555 requires an answer for an unknown kid anyway).
 */
#include "proto/acme_eab.h"

#include <stdio.h>
#include <string.h>

#include "ca/eab_seal.h"
#include "common/err.h"
#include "common/secmem.h"
#include "daemon/server.h"
#include "store/store_acme.h"

/* Record the refusal: ck_err_msg() keeps R's reason for the log; the
 * client's detail is TEXT (ck_err_msg() itself if NULL). */
static int
refuse(int r, const char *type, const char *text, const char **ptype,
    char *detail, size_t dlen)
{
	*ptype = type;
	if (dlen > 0)
		snprintf(detail, dlen, "%s", text != NULL ? text :
		    ck_err_msg());
	return r;
}

int
acme_eab_check(struct server *sv, const json_t *binding,
    const struct ck_jws *outer, char kid[STORE_ACME_ID_SIZE],
    const char **ptype, char *detail, size_t dlen)
{
	struct store_acme_eab row;
	struct ck_jws *eab = NULL;
	struct ck_secret *key = NULL;
	int r, jr;

	memset(&row, 0, sizeof(row));
	kid[0] = '\0';
	if ((jr = ck_jws_eab_parse(binding, &eab)) != 0) {
		r = refuse(jr == CK_JWS_E_INTERNAL ? CK_E_INTERNAL : CK_E_PARSE,
		    jr == CK_JWS_E_INTERNAL ? "serverInternal" : "malformed",
		    NULL, ptype, detail, dlen);
		goto out;
	}
	if (strlen(eab->kid) >= STORE_ACME_ID_SIZE) {
		ck_err_set(CK_E_PARSE, "externalAccountBinding: kid is longer "
		    "than %d characters", STORE_ACME_ID_SIZE - 1);
		r = refuse(CK_E_PARSE, "malformed", NULL, ptype, detail, dlen);
		goto out;
	}
	snprintf(kid, STORE_ACME_ID_SIZE, "%s", eab->kid);
	pthread_mutex_lock(&sv->rd_mu);
	r = store_acme_eab_get(sv->rd, kid, &row);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r == CK_E_NOTFOUND) {
		ck_err_set(r, "externalAccountBinding: no key id \"%s\" here",
		    kid);
		r = refuse(r, "unauthorized", NULL, ptype, detail, dlen);
		goto out;
	}
	if (r != 0) {
		r = refuse(r, "serverInternal", "the external account binding "
		    "cannot be checked now", ptype, detail, dlen);
		goto out;
	}
	if (sv->eab_key == NULL) {
		ck_err_set(CK_E_STATE, "externalAccountBinding with key id %s: "
		    "certkeepd has no EAB key loaded (%s was missing at start)",
		    kid, EAB_SEAL_KEY_FILE);
		r = refuse(CK_E_STATE, "serverInternal", "this server cannot "
		    "check external account bindings now", ptype, detail,
		    dlen);
		goto out;
	}
	if ((r = eab_unseal(sv->eab_key, kid, row.sealed, row.sealed_len,
	    &key)) != 0) {
		r = refuse(r, "serverInternal", "the external account binding "
		    "cannot be checked now", ptype, detail, dlen);
		goto out;
	}
	jr = ck_jws_eab_verify(eab, outer, key->buf, key->len);
	ck_secret_free(key);	/* wiped: needed for this one MAC only */
	key = NULL;
	if (jr != 0) {
		r = refuse(jr == CK_JWS_E_BADSIG ? CK_E_BADSIG :
		    jr == CK_JWS_E_INTERNAL ? CK_E_INTERNAL : CK_E_PARSE,
		    jr == CK_JWS_E_BADSIG ? "unauthorized" :
		    jr == CK_JWS_E_INTERNAL ? "serverInternal" : "malformed",
		    NULL, ptype, detail, dlen);
		goto out;
	}
	if (row.revoked_at != 0) {
		ck_err_set(CK_E_STATE, "externalAccountBinding: key id %s is "
		    "revoked", kid);
		r = refuse(CK_E_STATE, "unauthorized", NULL, ptype, detail,
		    dlen);
		goto out;
	}
	if (row.account_id[0] != '\0') {
		/* The detail does not name the account: not the client's
		 * business. */
		ck_err_set(CK_E_STATE, "externalAccountBinding: key id %s is "
		    "bound to account %s already", kid, row.account_id);
		r = refuse(CK_E_STATE, "unauthorized", "externalAccountBinding: "
		    "this key id is bound to another account already", ptype,
		    detail, dlen);
		goto out;
	}
	r = 0;
out:
	ck_secret_free(key);
	store_acme_eab_clear(&row);
	ck_jws_free(eab);
	return r;
}
