#include "x509/certbuild.h"

#include <string.h>

#include <openssl/x509v3.h>

#include "common/err.h"
#include "x509/serial.h"

static const char *const reason_names[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
	"superseded", "cessationOfOperation", "certificateHold", NULL,
	"removeFromCRL", "privilegeWithdrawn", "aACompromise"
};
#define NREASONS ((int)(sizeof(reason_names) / sizeof(reason_names[0])))

const char *
ck_crl_reason_name(int code)
{
	if (code < 0 || code >= NREASONS || reason_names[code] == NULL)
		return "unknown";
	return reason_names[code];
}

int
ck_crl_reason_valid(int code)
{
	return code >= 0 && code < NREASONS && reason_names[code] != NULL;
}

int
ck_crl_reason_parse(const char *name)
{
	int i;

	for (i = 0; i < NREASONS; i++)
		if (reason_names[i] != NULL &&
		    strcasecmp(name, reason_names[i]) == 0)
			return i;
	return -1;
}

static int
add_revoked(X509_CRL *crl, const struct ck_crl_entry *e)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *t = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int r = CK_E_NOMEM;

	if ((r = ck_serial_from_hex(e->serial_hex, &serial)) != 0)
		return r;
	r = CK_E_NOMEM;
	if ((rev = X509_REVOKED_new()) == NULL ||
	    (t = ASN1_TIME_set(NULL, (time_t)e->revoked_at)) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, serial) ||
	    !X509_REVOKED_set_revocationDate(rev, t))
		goto out;
	if (e->reason > 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    !ASN1_ENUMERATED_set(reason, e->reason) ||
		    !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0,
		    0))
			goto out;
	}
	if (!X509_CRL_add0_revoked(crl, rev))
		goto out;
	rev = NULL;
	r = 0;
out:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(serial);
	X509_REVOKED_free(rev);
	return r;
}

int
ck_crl_build(X509 *issuer, const struct ck_crl_entry *entries, size_t n,
    uint64_t number, int64_t this_update, int64_t next_update,
    X509_CRL **out)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *num = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	size_t i;
	int r = CK_E_NOMEM;

	if ((crl = X509_CRL_new()) == NULL)
		return CK_E_NOMEM;
	if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)))
		goto fail;
	if ((t = ASN1_TIME_set(NULL, (time_t)this_update)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, t))
		goto fail;
	ASN1_TIME_free(t);
	if ((t = ASN1_TIME_set(NULL, (time_t)next_update)) == NULL ||
	    !X509_CRL_set1_nextUpdate(crl, t))
		goto fail;
	for (i = 0; i < n; i++)
		if ((r = add_revoked(crl, &entries[i])) != 0)
			goto fail;
	r = CK_E_NOMEM;
	if ((num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set_uint64(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
		goto fail;
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx,
	    NID_authority_key_identifier, "keyid:always")) == NULL) {
		r = ck_err_ssl(CK_E_CRYPTO, "CRL authority key identifier");
		goto fail;
	}
	if (!X509_CRL_add_ext(crl, ext, -1))
		goto fail;
	X509_CRL_sort(crl);
	X509_EXTENSION_free(ext);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	*out = crl;
	return 0;
fail:
	X509_EXTENSION_free(ext);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return r;
}
