/*
 * ca_revoke.c - revocation and CRLs.
 */
#include "ca/ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/timeutil.h"
#include "signer/signer.h"
#include "x509/certbuild.h"
#include "x509/serial.h"

int
ck_ca_revoke(struct ck_ca *ca, const char *serial_in, int reason)
{
	return ck_ca_revoke_as(ca, NULL, serial_in, reason);
}

int
ck_ca_revoke_as(struct ck_ca *ca, const char *requester,
    const char *serial_in, int reason)
{
	char serial[CK_SERIAL_HEX_MAX], msg[1024];
	int r;

	/* removeFromCRL (8) is for delta CRLs, not a revocation. */
	if (!ck_crl_reason_valid(reason) || reason == 8) {
		r = ck_err_set(CK_E_INVAL, "reason %d cannot be used to revoke",
		    reason);
		goto refuse;
	}
	if ((r = ck_serial_normalize(serial_in, serial)) != 0)
		goto refuse;
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_cert_revoke(ca->st, serial, ck_time_now(),
	    reason)) != 0) {
		store_tx_rollback(ca->st);
		goto refuse;
	}
	if ((r = audit_append(ca->st, requester, "revoke", serial, AUDIT_OK,
	    ck_crl_reason_name(reason))) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
refuse:
	snprintf(msg, sizeof(msg), "%s", ck_err_msg());
	(void)audit_append(ca->st, requester, "revoke", serial_in,
	    AUDIT_REFUSED, msg);
	return ck_err_set(r, "%s", msg);
}

int
ck_ca_crl_publish(struct ck_ca *ca, const unsigned char *der, size_t len)
{
	const unsigned char *q = der;
	X509_CRL *crl = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	char path[4096], pempath[4200];
	int r;

	if ((r = ck_ca_path(ca, ca->cfg->crl_file, path, sizeof(path))) != 0)
		return r;
	if ((r = ck_fs_write_atomic(path, der, len, 0644)) != 0)
		return r;
	snprintf(pempath, sizeof(pempath), "%s.pem", path);
	if ((crl = d2i_X509_CRL(NULL, &q, (long)len)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_CRL(bio, crl)) {
		r = CK_E_NOMEM;
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	r = ck_fs_write_atomic(pempath, bm->data, bm->length, 0644);
out:
	BIO_free(bio);
	X509_CRL_free(crl);
	return r;
}

int
ck_ca_crl(struct ck_ca *ca, unsigned char **der_out, size_t *len_out,
    uint64_t *number_out)
{
	struct store_revoked *rv = NULL;
	struct ck_crl_entry *ents = NULL;
	unsigned char *der = NULL;
	size_t n = 0, i, der_len = 0;
	uint64_t number = 0;
	int64_t now = ck_time_now(), next;
	char obj[64];
	int r;

	if (ca->signer == NULL || ca->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA key is locked or has no "
		    "certificate");
	next = now + (int64_t)ca->cfg->crl_validity_hours * 3600;
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_crl_next_number(ca->st, &number)) != 0 ||
	    (r = store_revoked_list(ca->st, now, &rv, &n)) != 0)
		goto fail;
	if (n > 0 && (ents = calloc(n, sizeof(*ents))) == NULL) {
		r = CK_E_NOMEM;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		ents[i].serial_hex = rv[i].serial;
		ents[i].revoked_at = rv[i].revoked_at;
		ents[i].reason = rv[i].reason;
	}
	if ((r = signer_crl_sign(ca->signer, ents, n, number, now, next, &der,
	    &der_len)) != 0 ||
	    (r = store_crl_insert(ca->st, number, now, next, der,
	    der_len)) != 0)
		goto fail;
	snprintf(obj, sizeof(obj), "CRL %llu", (unsigned long long)number);
	{
		char detail[64];
		snprintf(detail, sizeof(detail), "%zu revoked", n);
		if ((r = ck_ca_audit(ca, "crl", obj, AUDIT_OK, detail)) != 0)
			goto fail;
	}
	if ((r = store_tx_commit(ca->st)) != 0)
		goto out;
	/* Recorded: publish, unless this runs inside a caller's transaction
	 * (the server's group commit), whose caller publishes once that is
	 * durable, so a CRL number never appears that could be rolled back. */
	if (store_tx_depth(ca->st) == 0 &&
	    (r = ck_ca_crl_publish(ca, der, der_len)) != 0)
		goto out;
	if (number_out != NULL)
		*number_out = number;
	if (der_out != NULL) {
		*der_out = der;
		*len_out = der_len;
		der = NULL;
	}
	goto out;
fail:
	store_tx_rollback(ca->st);
out:
	OPENSSL_free(der);
	free(ents);
	free(rv);
	return r;
}
