#include "x509/certbuild.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "common/err.h"

static const char *const ku_names[CK_KU__MAX] = {
	"digitalSignature", "nonRepudiation", "keyEncipherment",
	"dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign",
	"encipherOnly", "decipherOnly"
};

const char *
ck_ku_name(enum ck_ku bit)
{
	if ((unsigned)bit >= CK_KU__MAX)
		return "unknown";
	return ku_names[bit];
}

int
ck_ku_parse(const char *name)
{
	int i;

	for (i = 0; i < CK_KU__MAX; i++)
		if (strcmp(name, ku_names[i]) == 0)
			return i;
	return -1;
}

int
ck_eku_valid(const char *name)
{
	static const char *const known[] = {
		"serverAuth", "clientAuth", "codeSigning", "emailProtection",
		"timeStamping", "OCSPSigning"
	};
	ASN1_OBJECT *o;
	size_t i;

	const char *c;
	int arcs = 1;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i]) == 0)
			return 1;
	/* Otherwise a dotted OID, strictly: digits, single dots, at least
	 * two arcs, no empty arc (OpenSSL alone accepts "1..2"). */
	if (name[0] < '0' || name[0] > '9')
		return 0;
	for (c = name; *c != '\0'; c++) {
		if (*c == '.') {
			if (c[1] < '0' || c[1] > '9')
				return 0;
			arcs++;
		} else if (*c < '0' || *c > '9')
			return 0;
	}
	if (arcs < 2)
		return 0;
	if ((o = OBJ_txt2obj(name, 1)) == NULL)
		return 0;
	ASN1_OBJECT_free(o);
	return 1;
}

/* URLs go into v3 config strings: refuse anything that would change
 * their meaning there. */
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

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (ext == NULL)
		return ck_err_ssl(CK_E_INVAL, OBJ_nid2sn(nid));
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : CK_E_NOMEM;
}

/* The certificate's public key: the request's own bytes when we have
 * them, else an encoding of the key. */
static int
set_spki(X509 *x, const struct ck_cert_template *t)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	ASN1_OBJECT *o = NULL;
	void *pv = NULL;
	unsigned char *bits = NULL;
	int ptype;

	if (t->spki_alg == NULL || t->spki_key == NULL)
		return X509_set_pubkey(x, t->pubkey);
	X509_ALGOR_get0(&obj, &ptype, &pval, t->spki_alg);
	if ((o = OBJ_dup(obj)) == NULL)
		return 0;
	if (ptype == V_ASN1_OBJECT) {
		if ((pv = OBJ_dup(pval)) == NULL)
			goto fail;
	} else if (ptype == V_ASN1_SEQUENCE) {
		if ((pv = ASN1_STRING_dup(pval)) == NULL)
			goto fail;
	} else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		goto fail;
	if (t->spki_key->length > 0 &&
	    (bits = OPENSSL_memdup(t->spki_key->data,
	    (size_t)t->spki_key->length)) == NULL)
		goto fail;
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), o, ptype, pv,
	    bits, t->spki_key->length))
		goto fail;
	return 1;
fail:
	ASN1_OBJECT_free(o);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pv);
	else
		ASN1_STRING_free(pv);
	OPENSSL_free(bits);
	return 0;
}

static int
set_time(ASN1_TIME *t, int64_t when)
{
	return ASN1_TIME_adj(t, (time_t)when, 0, 0) != NULL;
}

int
ck_cert_build(const struct ck_cert_template *t, X509 *issuer, X509 **out)
{
	X509 *x = NULL;
	X509V3_CTX ctx;
	GENERAL_NAMES *gens = NULL;
	char buf[1024];
	size_t off, i;
	int r, n;

	if ((x = X509_new()) == NULL)
		return CK_E_NOMEM;
	r = CK_E_NOMEM;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_serialNumber(x, (ASN1_INTEGER *)t->serial) ||
	    !X509_set_subject_name(x, t->subject) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) :
	    t->subject) ||
	    !set_spki(x, t) ||
	    !set_time(X509_getm_notBefore(x), t->not_before) ||
	    !set_time(X509_getm_notAfter(x), t->not_after))
		goto fail;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);

	if (t->is_ca) {
		if (t->path_len >= 0)
			snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d",
			    t->path_len);
		else
			snprintf(buf, sizeof(buf), "critical,CA:TRUE");
		if ((r = add_ext(x, &ctx, NID_basic_constraints, buf)) != 0)
			goto fail;
	} else if ((r = add_ext(x, &ctx, NID_basic_constraints,
	    "critical,CA:FALSE")) != 0)
		goto fail;

	if (t->ku != 0) {
		off = (size_t)snprintf(buf, sizeof(buf), "critical");
		for (i = 0; i < CK_KU__MAX; i++)
			if (t->ku & (1u << i)) {
				n = snprintf(buf + off, sizeof(buf) - off,
				    ",%s", ku_names[i]);
				if (n < 0 || (size_t)n >= sizeof(buf) - off)
					goto toolong;
				off += (size_t)n;
			}
		if ((r = add_ext(x, &ctx, NID_key_usage, buf)) != 0)
			goto fail;
	}
	if (t->eku != NULL && t->eku->n > 0) {
		off = 0;
		buf[0] = '\0';
		for (i = 0; i < t->eku->n; i++) {
			if (!ck_eku_valid(t->eku->v[i])) {
				r = ck_err_set(CK_E_INVAL,
				    "unknown extended key usage %s",
				    t->eku->v[i]);
				goto fail;
			}
			n = snprintf(buf + off, sizeof(buf) - off, "%s%s",
			    i ? "," : "", t->eku->v[i]);
			if (n < 0 || (size_t)n >= sizeof(buf) - off)
				goto toolong;
			off += (size_t)n;
		}
		if ((r = add_ext(x, &ctx, NID_ext_key_usage, buf)) != 0)
			goto fail;
	}
	if ((r = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) != 0)
		goto fail;
	/* For a self-signed certificate the issuer is x itself, whose SKI
	 * was just added. */
	if ((r = add_ext(x, &ctx, NID_authority_key_identifier,
	    "keyid:always")) != 0)
		goto fail;
	if (t->sans != NULL && t->sans->n > 0) {
		if ((r = ck_names_to_general(t->sans, &gens)) != 0)
			goto fail;
		/* Critical when the subject is empty (RFC 5280 4.2.1.6). */
		if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens,
		    X509_NAME_entry_count(t->subject) == 0,
		    X509V3_ADD_DEFAULT)) {
			r = ck_err_ssl(CK_E_INVAL, "subjectAltName");
			goto fail;
		}
	}
	if (t->crl_url != NULL && t->crl_url[0] != '\0') {
		if (!url_ok(t->crl_url))
			goto badurl;
		snprintf(buf, sizeof(buf), "URI:%s", t->crl_url);
		if ((r = add_ext(x, &ctx, NID_crl_distribution_points,
		    buf)) != 0)
			goto fail;
	}
	if ((t->ocsp_url && t->ocsp_url[0]) ||
	    (t->issuer_url && t->issuer_url[0])) {
		if ((t->ocsp_url && t->ocsp_url[0] && !url_ok(t->ocsp_url)) ||
		    (t->issuer_url && t->issuer_url[0] &&
		    !url_ok(t->issuer_url)))
			goto badurl;
		n = snprintf(buf, sizeof(buf), "%s%s%s%s%s",
		    t->ocsp_url && t->ocsp_url[0] ? "OCSP;URI:" : "",
		    t->ocsp_url && t->ocsp_url[0] ? t->ocsp_url : "",
		    t->ocsp_url && t->ocsp_url[0] &&
		    t->issuer_url && t->issuer_url[0] ? "," : "",
		    t->issuer_url && t->issuer_url[0] ? "caIssuers;URI:" : "",
		    t->issuer_url && t->issuer_url[0] ? t->issuer_url : "");
		if (n < 0 || (size_t)n >= sizeof(buf))
			goto toolong;
		if ((r = add_ext(x, &ctx, NID_info_access, buf)) != 0)
			goto fail;
	}
	GENERAL_NAMES_free(gens);
	*out = x;
	return 0;
badurl:
	r = ck_err_set(CK_E_INVAL, "distribution URLs must be http(s) or "
	    "ldap URLs without spaces, commas or semicolons");
	goto fail;
toolong:
	r = ck_err_set(CK_E_TOOBIG, "extension value too long");
fail:
	GENERAL_NAMES_free(gens);
	X509_free(x);
	return r;
}
