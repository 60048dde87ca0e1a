/*
 * certder.c - writing a TBSCertificate straight to DER.
 *
 * ck_cert_build() goes through X509 objects, v3 configuration strings and
 * OpenSSL's template encoder, which costs several times the signature on
 * the issuance path. For the certificates the CA issues (not self-signed,
 * the key as received in a CSR) this writes the same bytes directly: the
 * unit tests compare both encoders byte for byte.
 */
#include "x509/certbuild.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/err.h"

/* Nesting of constructed values in a TBS: TBS, [3], Extensions,
 * Extension, OCTET STRING, value, and three more inside CRLDP. */
#define DER_DEPTH 12

struct der {
	unsigned char *p;
	size_t len, cap;
	size_t open[DER_DEPTH];	/* content offsets of open values */
	int depth;
	int err;
};

static void
der_reserve(struct der *d, size_t n)
{
	unsigned char *np;
	size_t cap;

	if (d->err || d->len + n <= d->cap)
		return;
	cap = d->cap ? d->cap : 1024;
	while (cap < d->len + n)
		cap *= 2;
	if ((np = OPENSSL_realloc(d->p, cap)) == NULL) {
		d->err = CK_E_NOMEM;
		return;
	}
	d->p = np;
	d->cap = cap;
}

static void
der_put(struct der *d, const void *b, size_t n)
{
	der_reserve(d, n);
	if (d->err || n == 0)
		return;
	memcpy(d->p + d->len, b, n);
	d->len += n;
}

static void
der_byte(struct der *d, unsigned char c)
{
	der_put(d, &c, 1);
}

size_t
ck_der_len_size(size_t n)
{
	size_t k = 1;

	if (n < 0x80)
		return 1;
	while (n > 0) {
		k++;
		n >>= 8;
	}
	return k;
}

void
ck_der_len_write(unsigned char *p, size_t n)
{
	size_t k = ck_der_len_size(n), i;

	if (k == 1) {
		p[0] = (unsigned char)n;
		return;
	}
	p[0] = (unsigned char)(0x80 | (k - 1));
	for (i = k - 1; i > 0; i--) {
		p[i] = (unsigned char)(n & 0xff);
		n >>= 8;
	}
}

static void
der_tlv(struct der *d, unsigned char tag, const void *b, size_t n)
{
	unsigned char h[10];

	h[0] = tag;
	ck_der_len_write(h + 1, n);
	der_put(d, h, 1 + ck_der_len_size(n));
	der_put(d, b, n);
}

/* Open a constructed value; its length is written by der_close(). */
static void
der_open(struct der *d, unsigned char tag)
{
	if (d->depth >= DER_DEPTH) {
		d->err = CK_E_INTERNAL;
		return;
	}
	der_byte(d, tag);
	der_byte(d, 0);
	if (!d->err)
		d->open[d->depth++] = d->len;
}

static void
der_close(struct der *d)
{
	size_t start, n, k;

	if (d->err)
		return;
	start = d->open[--d->depth];
	n = d->len - start;
	k = ck_der_len_size(n);
	if (k > 1) {
		der_reserve(d, k - 1);
		if (d->err)
			return;
		memmove(d->p + start + k - 1, d->p + start, n);
		d->len += k - 1;
	}
	ck_der_len_write(d->p + start - 1, n);
}

static void
der_oid(struct der *d, const ASN1_OBJECT *o)
{
	der_tlv(d, V_ASN1_OBJECT, OBJ_get0_data(o), OBJ_length(o));
}

/* DER of a public value (an X509_NAME, an INTEGER) from its encoder. */
static int
der_i2d(struct der *d, int len, const void *obj,
    int (*enc)(const void *, unsigned char **))
{
	unsigned char *q;

	if (len <= 0)
		return d->err = CK_E_INVAL;
	der_reserve(d, (size_t)len);
	if (d->err)
		return d->err;
	q = d->p + d->len;
	if (enc(obj, &q) != len)
		return d->err = CK_E_INTERNAL;
	d->len += (size_t)len;
	return 0;
}

static int
enc_name(const void *o, unsigned char **q)
{
	return i2d_X509_NAME(o, q);
}

static int
enc_int(const void *o, unsigned char **q)
{
	return i2d_ASN1_INTEGER(o, q);
}

/* UTCTime from 1950 to 2049, GeneralizedTime otherwise, as
 * ASN1_TIME_adj() chooses. */
static int
der_time(struct der *d, int64_t when)
{
	time_t tt = (time_t)when;
	struct tm tm;
	char s[32];
	int n, y;

	if (gmtime_r(&tt, &tm) == NULL)
		return d->err = CK_E_INVAL;
	y = tm.tm_year + 1900;
	if (y < 0 || y > 9999)
		return d->err = CK_E_INVAL;
	if (y >= 1950 && y < 2050)
		n = snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", y % 100,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
	else
		n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", y,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
	der_tlv(d, y >= 1950 && y < 2050 ? V_ASN1_UTCTIME :
	    V_ASN1_GENERALIZEDTIME, s, (size_t)n);
	return 0;
}

/* Extension OIDs (contents octets). */
static const unsigned char oid_bc[] = { 0x55, 0x1d, 0x13 };
static const unsigned char oid_ku[] = { 0x55, 0x1d, 0x0f };
static const unsigned char oid_eku[] = { 0x55, 0x1d, 0x25 };
static const unsigned char oid_ski[] = { 0x55, 0x1d, 0x0e };
static const unsigned char oid_aki[] = { 0x55, 0x1d, 0x23 };
static const unsigned char oid_san[] = { 0x55, 0x1d, 0x11 };
static const unsigned char oid_crldp[] = { 0x55, 0x1d, 0x1f };
static const unsigned char oid_aia[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07,
	0x01, 0x01 };
static const unsigned char oid_ocsp[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07,
	0x30, 0x01 };
static const unsigned char oid_caissuers[] = { 0x2b, 0x06, 0x01, 0x05, 0x05,
	0x07, 0x30, 0x02 };

/* Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue }:
 * opens the OCTET STRING, which the caller fills and closes twice. */
static void
ext_open(struct der *d, const unsigned char *oid, size_t oidlen, int critical)
{
	static const unsigned char crit[] = { 0x01, 0x01, 0xff };

	der_open(d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
	der_tlv(d, V_ASN1_OBJECT, oid, oidlen);
	if (critical)
		der_put(d, crit, sizeof(crit));
	der_open(d, V_ASN1_OCTET_STRING);
}

static void
ext_close(struct der *d)
{
	der_close(d);
	der_close(d);
}

/* GeneralName with an IA5String or OCTET STRING body. */
static int
der_general_name(struct der *d, const struct ck_name *nm)
{
	unsigned char ip[16];
	int iplen;

	switch (nm->type) {
	case CK_NAME_DNS:
		der_tlv(d, 0x82, nm->value, strlen(nm->value));
		return 0;
	case CK_NAME_EMAIL:
		der_tlv(d, 0x81, nm->value, strlen(nm->value));
		return 0;
	case CK_NAME_URI:
		der_tlv(d, 0x86, nm->value, strlen(nm->value));
		return 0;
	case CK_NAME_IP:
		if ((iplen = ck_ip_parse(nm->value, ip)) == 0)
			break;
		der_tlv(d, 0x87, ip, (size_t)iplen);
		return 0;
	default:
		break;
	}
	return ck_err_set(CK_E_INVAL, "a name of type %s cannot go into a "
	    "certificate", ck_name_type_label(nm->type));
}

static const struct {
	const char *name;
	int nid;
} eku_nids[] = {
	{ "serverAuth", NID_server_auth },
	{ "clientAuth", NID_client_auth },
	{ "codeSigning", NID_code_sign },
	{ "emailProtection", NID_email_protect },
	{ "timeStamping", NID_time_stamp },
	{ "OCSPSigning", NID_OCSP_sign },
};

static int
der_eku(struct der *d, const struct ck_strlist *eku)
{
	ASN1_OBJECT *o;
	size_t i, k;

	ext_open(d, oid_eku, sizeof(oid_eku), 0);
	der_open(d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
	for (i = 0; i < eku->n; i++) {
		for (k = 0; k < sizeof(eku_nids) / sizeof(eku_nids[0]); k++)
			if (strcmp(eku->v[i], eku_nids[k].name) == 0)
				break;
		if (k < sizeof(eku_nids) / sizeof(eku_nids[0])) {
			der_oid(d, OBJ_nid2obj(eku_nids[k].nid));
			continue;
		}
		if (!ck_eku_valid(eku->v[i]) ||
		    (o = OBJ_txt2obj(eku->v[i], 1)) == NULL)
			return ck_err_set(CK_E_INVAL, "unknown extended key "
			    "usage %s", eku->v[i]);
		der_oid(d, o);
		ASN1_OBJECT_free(o);
	}
	der_close(d);
	ext_close(d);
	return 0;
}

/* KeyUsage: a named bit list, so DER drops trailing zero bits. */
static void
der_ku(struct der *d, unsigned ku)
{
	unsigned char b[3] = { 0, 0, 0 };
	size_t n = 0;
	int i, unused = 0;

	for (i = 0; i < CK_KU__MAX; i++)
		if (ku & (1u << i))
			b[1 + i / 8] |= (unsigned char)(0x80 >> (i % 8));
	if (b[2] != 0)
		n = 2;
	else if (b[1] != 0)
		n = 1;
	while (n > 0 && unused < 8 && !(b[n] & (1u << unused)))
		unused++;
	b[0] = (unsigned char)unused;
	ext_open(d, oid_ku, sizeof(oid_ku), 1);
	der_tlv(d, V_ASN1_BIT_STRING, b, n + 1);
	ext_close(d);
}

static int
url_ok(const char *u)
{
	const char *p;

	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0 &&
	    strncmp(u, "ldap://", 7) != 0)
		return 0;
	for (p = u; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == ',' || *p == ';')
			return 0;
	return 1;
}

static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha1_md;

static void
sha1_init(void)
{
	sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}

int
ck_tbs_issuer_init(struct ck_tbs_issuer *iss, X509 *issuer)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
	int len;

	memset(iss, 0, sizeof(*iss));
	if (ski == NULL || ski->length <= 0 ||
	    (size_t)ski->length > sizeof(iss->skid))
		return ck_err_set(CK_E_INVAL, "the CA certificate has no "
		    "usable subject key identifier");
	memcpy(iss->skid, ski->data, (size_t)ski->length);
	iss->skid_len = (size_t)ski->length;
	if ((len = i2d_X509_NAME(X509_get_subject_name(issuer),
	    &iss->name_der)) <= 0)
		return ck_err_ssl(CK_E_NOMEM, "encoding the issuer name");
	iss->name_len = (size_t)len;
	return 0;
}

void
ck_tbs_issuer_clear(struct ck_tbs_issuer *iss)
{
	if (iss == NULL)
		return;
	OPENSSL_free(iss->name_der);
	memset(iss, 0, sizeof(*iss));
}

int
ck_cert_tbs_der(const struct ck_cert_template *t,
    const struct ck_tbs_issuer *iss, const unsigned char *sigalg,
    size_t sigalg_len, unsigned char **out, size_t *outlen)
{
	static const unsigned char version[] = { 0xa0, 0x03, 0x02, 0x01, 0x02 };
	static const unsigned char bc_leaf[] = { 0x30, 0x00 };
	unsigned char skid[EVP_MAX_MD_SIZE], bc[8];
	unsigned int skid_len = 0;
	struct der d;
	size_t i, n;
	int r;

	memset(&d, 0, sizeof(d));
	if (t->spki_der == NULL || t->spki_key == NULL || t->serial == NULL ||
	    iss == NULL || iss->name_der == NULL)
		return ck_err_set(CK_E_INVAL, "incomplete certificate "
		    "template");
	if ((t->crl_url != NULL && t->crl_url[0] != '\0' &&
	    !url_ok(t->crl_url)) ||
	    (t->ocsp_url != NULL && t->ocsp_url[0] != '\0' &&
	    !url_ok(t->ocsp_url)) ||
	    (t->issuer_url != NULL && t->issuer_url[0] != '\0' &&
	    !url_ok(t->issuer_url)))
		return ck_err_set(CK_E_INVAL, "distribution URLs must be "
		    "http(s) or ldap URLs without spaces, commas or "
		    "semicolons");
	if (t->spki_alg != NULL) {
		/* The parameter forms ck_cert_build() copies; others it
		 * refuses. */
		int ptype;
		X509_ALGOR_get0(NULL, &ptype, NULL, t->spki_alg);
		if (ptype != V_ASN1_OBJECT && ptype != V_ASN1_SEQUENCE &&
		    ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
			return ck_err_set(CK_E_INVAL, "unsupported public key "
			    "parameters");
	}
	pthread_once(&sha1_once, sha1_init);
	if (sha1_md == NULL || !EVP_Digest(t->spki_key->data,
	    (size_t)t->spki_key->length, skid, &skid_len, sha1_md, NULL))
		return ck_err_ssl(CK_E_CRYPTO, "subject key identifier");

	der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
	der_put(&d, version, sizeof(version));
	der_i2d(&d, i2d_ASN1_INTEGER(t->serial, NULL), t->serial, enc_int);
	der_put(&d, sigalg, sigalg_len);
	der_put(&d, iss->name_der, iss->name_len);
	der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
	der_time(&d, t->not_before);
	der_time(&d, t->not_after);
	der_close(&d);
	der_i2d(&d, i2d_X509_NAME(t->subject, NULL), t->subject, enc_name);
	der_put(&d, t->spki_der, t->spki_der_len);

	der_open(&d, 0xa3);
	der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
	/* basicConstraints, critical */
	ext_open(&d, oid_bc, sizeof(oid_bc), 1);
	if (!t->is_ca)
		der_put(&d, bc_leaf, sizeof(bc_leaf));
	else {
		n = 0;
		bc[n++] = 0x01;
		bc[n++] = 0x01;
		bc[n++] = 0xff;
		if (t->path_len >= 0) {
			/* Small non-negative INTEGER: pathlen is at most a
			 * few levels, but encode up to 2^15 correctly. */
			if (t->path_len > 0x7fff) {
				r = ck_err_set(CK_E_INVAL, "path length too "
				    "large");
				goto fail;
			}
			bc[n++] = 0x02;
			if (t->path_len > 0x7f) {
				bc[n++] = 0x02;
				bc[n++] = (unsigned char)(t->path_len >> 8);
			} else
				bc[n++] = 0x01;
			bc[n++] = (unsigned char)(t->path_len & 0xff);
		}
		der_tlv(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, bc, n);
	}
	ext_close(&d);
	if (t->ku != 0) {
		if ((t->ku & ((1u << CK_KU__MAX) - 1)) != t->ku) {
			r = ck_err_set(CK_E_INVAL, "unknown key usage bits");
			goto fail;
		}
		der_ku(&d, t->ku);
	}
	if (t->eku != NULL && t->eku->n > 0 && (r = der_eku(&d, t->eku)) != 0)
		goto fail;
	ext_open(&d, oid_ski, sizeof(oid_ski), 0);
	der_tlv(&d, V_ASN1_OCTET_STRING, skid, skid_len);
	ext_close(&d);
	ext_open(&d, oid_aki, sizeof(oid_aki), 0);
	der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
	der_tlv(&d, 0x80, iss->skid, iss->skid_len);
	der_close(&d);
	ext_close(&d);
	if (t->sans != NULL && t->sans->n > 0) {
		/* Critical when the subject is empty (RFC 5280 4.2.1.6). */
		ext_open(&d, oid_san, sizeof(oid_san),
		    X509_NAME_entry_count(t->subject) == 0);
		der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
		for (i = 0; i < t->sans->n; i++)
			if ((r = der_general_name(&d, &t->sans->v[i])) != 0)
				goto fail;
		der_close(&d);
		ext_close(&d);
	}
	if (t->crl_url != NULL && t->crl_url[0] != '\0') {
		ext_open(&d, oid_crldp, sizeof(oid_crldp), 0);
		der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
		der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
		der_open(&d, 0xa0);	/* distributionPoint */
		der_open(&d, 0xa0);	/* fullName */
		der_tlv(&d, 0x86, t->crl_url, strlen(t->crl_url));
		der_close(&d);
		der_close(&d);
		der_close(&d);
		der_close(&d);
		ext_close(&d);
	}
	if ((t->ocsp_url && t->ocsp_url[0]) ||
	    (t->issuer_url && t->issuer_url[0])) {
		ext_open(&d, oid_aia, sizeof(oid_aia), 0);
		der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
		if (t->ocsp_url && t->ocsp_url[0]) {
			der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
			der_tlv(&d, V_ASN1_OBJECT, oid_ocsp, sizeof(oid_ocsp));
			der_tlv(&d, 0x86, t->ocsp_url, strlen(t->ocsp_url));
			der_close(&d);
		}
		if (t->issuer_url && t->issuer_url[0]) {
			der_open(&d, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED);
			der_tlv(&d, V_ASN1_OBJECT, oid_caissuers,
			    sizeof(oid_caissuers));
			der_tlv(&d, 0x86, t->issuer_url,
			    strlen(t->issuer_url));
			der_close(&d);
		}
		der_close(&d);
		ext_close(&d);
	}
	der_close(&d);		/* Extensions */
	der_close(&d);		/* [3] */
	der_close(&d);		/* TBSCertificate */
	if (d.err != 0) {
		r = d.err;
		goto fail;
	}
	*out = d.p;
	*outlen = d.len;
	return 0;
fail:
	OPENSSL_free(d.p);
	return r != 0 ? r : CK_E_INTERNAL;
}
