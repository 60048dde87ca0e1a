/*
 * csr.h - certificate signing requests from untrusted sources.
 *
 * ck_csr_parse() takes PEM or DER bytes of at most CK_CSR_MAX, refuses
 * trailing junk, checks the self-signature, and lays out everything a
 * profile needs to judge the request: key type, subject attributes,
 * requested names and extensions. Nothing is trusted until a profile says
 * so.
 */
#ifndef CK_X509_CSR_H
#define CK_X509_CSR_H

#include <stddef.h>

#include <openssl/x509.h>

#include "common/strutil.h"
#include "x509/names.h"

#define CK_CSR_MAX (64u * 1024)

struct ck_subject_attr {
	char type[32];		/* short name: CN, O, OU, C, ... or an OID */
	char value[256];	/* UTF-8 */
};

struct ck_csr {
	X509_NAME *subject;
	EVP_PKEY *pubkey;
	X509_ALGOR *spki_alg;	/* the SubjectPublicKeyInfo as received, */
	ASN1_BIT_STRING *spki_key; /* copied as is into the certificate */
	unsigned char *spki_der; /* both as DER */
	size_t spki_der_len;
	STACK_OF(X509_EXTENSION) *exts; /* requested extensions, or NULL */
	char key_desc[32];	/* see ck_key_describe() */
	struct ck_subject_attr *attrs;
	size_t nattrs;
	struct ck_names names;	/* from a requested subjectAltName */
	int has_ku;
	unsigned ku;		/* bit i = RFC 5280 KeyUsage bit i */
	int has_eku;
	struct ck_strlist eku;	/* short names (serverAuth) or OIDs */
	int has_bc;
	int bc_ca;
	long bc_pathlen;	/* -1 if absent */
	struct ck_strlist other_exts; /* any other requested extension */
};

/*
 * Parse and check a CSR. Returns 0 and *out (caller frees with
 * ck_csr_free), CK_E_TOOBIG, CK_E_PARSE (malformed, truncated, trailing
 * data), or CK_E_BADSIG (the self-signature does not verify).
 */
int ck_csr_parse(const unsigned char *buf, size_t len, struct ck_csr **out);

/* The caller will not use csr->pubkey: it may be NULL afterwards (for EC
 * P-256 and P-384 keys, which are checked just the same; the
 * SubjectPublicKeyInfo fields are always set). Saves building key objects
 * on the issuance path. */
#define CK_CSR_NO_PUBKEY 0x1u

/*
 * 1 if `nm` re-encodes, entry by entry, to the bytes it was decoded from
 * (DER); 0 if not (long-form or indefinite lengths, a SET of an RDN not
 * sorted, a constructed string...); -1 on allocation failure. i2d of a
 * decoded X509_NAME returns the bytes received, whatever they were: only
 * a name rebuilt from its entries is encoded anew.
 */
int ck_name_is_der(const X509_NAME *nm);

/*
 * The key type of a SubjectPublicKeyInfo (DER, exactly `len` bytes),
 * decoded and described exactly as a CSR's key is (csr->key_desc, see
 * ck_key_describe(): "rsa2048", "ec-p256", ...), which is what a
 * profile's key_types judge (ck_profile_key_check()). CK_E_PARSE for a
 * malformed SPKI or key.
 */
int ck_spki_describe(const unsigned char *der, size_t len, char desc[32]);

/* ck_csr_parse() with CK_CSR_* flags. */
int ck_csr_parse_ex(const unsigned char *buf, size_t len, unsigned flags,
    struct ck_csr **out);

void ck_csr_free(struct ck_csr *csr);

/* The subject's value for a short name (first occurrence) or NULL. */
const char *ck_csr_subject_get(const struct ck_csr *csr, const char *type);

#endif
