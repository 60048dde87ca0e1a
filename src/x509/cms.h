/*
 * cms.h - CMS SignedData records signed by the CA (signer_cms_sign()).
 */
#ifndef CK_X509_CMS_H
#define CK_X509_CMS_H

#include <stddef.h>

#include <openssl/x509.h>

/*
 * The content of the CMS SignedData in BUF (LEN bytes, at most MAX),
 * checked strictly: canonical DER and nothing after it, versions 1, one
 * SignerInfo by issuer and serial, content type id-data, SHA-256 and an
 * algorithm signer_cms_sign() uses, a signature that verifies, and a
 * signer certificate equal to one of TRUSTED (identity, not path
 * validation: records stay verifiable after the CA certificate expires).
 * *content is a new NUL-terminated buffer (free()) of *clen bytes.
 * CK_E_TOOBIG, CK_E_PARSE, CK_E_BADSIG or CK_E_INVAL; messages start with
 * WHAT ("custody file", "audit checkpoint").
 */
int ck_cms_open(const unsigned char *buf, size_t len, size_t max,
    STACK_OF(X509) *trusted, const char *what, char **content, size_t *clen);

#endif
