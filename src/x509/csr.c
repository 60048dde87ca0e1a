#include "x509/csr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "x509/csr_der.h"
#include "x509/keygen.h"

#define CK_CSR_MAX_ATTRS 32

int
ck_name_is_der(const X509_NAME *nm)
{
	const X509_NAME_ENTRY *e;
	X509_NAME *re;
	unsigned char *a = NULL, *b = NULL;
	int i, n, set, prev = -1, la, lb, ok = -1;

	if ((re = X509_NAME_new()) == NULL)
		return -1;
	n = X509_NAME_entry_count(nm);
	for (i = 0; i < n; i++) {
		e = X509_NAME_get_entry(nm, i);
		set = X509_NAME_ENTRY_set(e);
		/* Same RDN as the entry before: join it (-1), else a new
		 * one (0); the encoder sorts each SET. */
		if (!X509_NAME_add_entry(re, e, -1, i > 0 && set == prev ?
		    -1 : 0))
			goto out;
		prev = set;
	}
	if ((la = i2d_X509_NAME(nm, &a)) < 0 ||
	    (lb = i2d_X509_NAME(re, &b)) < 0)
		goto out;
	ok = la == lb && memcmp(a, b, (size_t)la) == 0;
out:
	OPENSSL_free(a);
	OPENSSL_free(b);
	X509_NAME_free(re);
	ERR_clear_error();
	return ok;
}

static int
read_subject(struct ck_csr *c)
{
	const X509_NAME *nm = c->subject;
	const X509_NAME_ENTRY *e;
	const ASN1_OBJECT *obj;
	unsigned char *utf8 = NULL;
	int i, n, len, nid;

	n = X509_NAME_entry_count(nm);
	if (n > CK_CSR_MAX_ATTRS)
		return ck_err_set(CK_E_POLICY, "subject has %d attributes, "
		    "more than %d", n, CK_CSR_MAX_ATTRS);
	if (n == 0)
		return 0;
	if ((c->attrs = calloc((size_t)n, sizeof(*c->attrs))) == NULL)
		return CK_E_NOMEM;
	for (i = 0; i < n; i++) {
		e = X509_NAME_get_entry(nm, i);
		obj = X509_NAME_ENTRY_get_object(e);
		nid = OBJ_obj2nid(obj);
		if (nid != NID_undef)
			snprintf(c->attrs[i].type, sizeof(c->attrs[i].type),
			    "%s", OBJ_nid2sn(nid));
		else
			OBJ_obj2txt(c->attrs[i].type, sizeof(c->attrs[i].type),
			    obj, 1);
		len = ASN1_STRING_to_UTF8(&utf8,
		    X509_NAME_ENTRY_get_data(e));
		if (len < 0)
			return ck_err_set(CK_E_PARSE, "subject attribute %s "
			    "cannot be decoded", c->attrs[i].type);
		if ((size_t)len >= sizeof(c->attrs[i].value) ||
		    memchr(utf8, '\0', (size_t)len) != NULL) {
			OPENSSL_free(utf8);
			return ck_err_set(CK_E_POLICY, "subject attribute %s "
			    "is too long or contains NUL", c->attrs[i].type);
		}
		memcpy(c->attrs[i].value, utf8, (size_t)len);
		c->attrs[i].value[len] = '\0';
		OPENSSL_free(utf8);
		utf8 = NULL;
		c->nattrs++;
	}
	return 0;
}

static int
read_extensions(struct ck_csr *c)
{
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ext;
	ASN1_BIT_STRING *ku = NULL;
	EXTENDED_KEY_USAGE *eku = NULL;
	BASIC_CONSTRAINTS *bc = NULL;
	GENERAL_NAMES *gens = NULL;
	char oid[80];
	int i, j, nid, r = 0, seen_san = 0;

	exts = c->exts;
	if (exts == NULL)
		return 0;
	for (i = 0; i < sk_X509_EXTENSION_num(exts) && r == 0; i++) {
		ext = sk_X509_EXTENSION_value(exts, i);
		nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
		switch (nid) {
		case NID_subject_alt_name:
			if (seen_san++) {
				r = ck_err_set(CK_E_PARSE,
				    "subjectAltName requested twice");
				break;
			}
			if ((gens = X509V3_EXT_d2i(ext)) == NULL) {
				r = ck_err_set(CK_E_PARSE,
				    "malformed subjectAltName");
				break;
			}
			r = ck_names_from_general(gens, &c->names);
			GENERAL_NAMES_free(gens);
			break;
		case NID_key_usage:
			if ((ku = X509V3_EXT_d2i(ext)) == NULL) {
				r = ck_err_set(CK_E_PARSE,
				    "malformed keyUsage");
				break;
			}
			c->has_ku = 1;
			for (j = 0; j < 9; j++)
				if (ASN1_BIT_STRING_get_bit(ku, j))
					c->ku |= 1u << j;
			ASN1_BIT_STRING_free(ku);
			break;
		case NID_ext_key_usage:
			if ((eku = X509V3_EXT_d2i(ext)) == NULL) {
				r = ck_err_set(CK_E_PARSE,
				    "malformed extendedKeyUsage");
				break;
			}
			c->has_eku = 1;
			for (j = 0; j < sk_ASN1_OBJECT_num(eku) && r == 0;
			    j++) {
				ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, j);
				int en = OBJ_obj2nid(o);
				if (en != NID_undef)
					r = ck_strlist_add(&c->eku,
					    OBJ_nid2sn(en));
				else {
					OBJ_obj2txt(oid, sizeof(oid), o, 1);
					r = ck_strlist_add(&c->eku, oid);
				}
			}
			EXTENDED_KEY_USAGE_free(eku);
			break;
		case NID_basic_constraints:
			if ((bc = X509V3_EXT_d2i(ext)) == NULL) {
				r = ck_err_set(CK_E_PARSE,
				    "malformed basicConstraints");
				break;
			}
			c->has_bc = 1;
			c->bc_ca = bc->ca ? 1 : 0;
			c->bc_pathlen = bc->pathlen ?
			    ASN1_INTEGER_get(bc->pathlen) : -1;
			BASIC_CONSTRAINTS_free(bc);
			break;
		case NID_subject_key_identifier:
			/* Harmless: the CA computes its own. */
			break;
		default:
			if (nid != NID_undef)
				snprintf(oid, sizeof(oid), "%s",
				    OBJ_nid2sn(nid));
			else
				OBJ_obj2txt(oid, sizeof(oid),
				    X509_EXTENSION_get_object(ext), 1);
			r = ck_strlist_add(&c->other_exts, oid);
		}
	}
	return r;
}

/* PEM password callback that never supplies one. */
static int
no_pass_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static const unsigned char *
skip_space(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' ||
	    *p == '\n'))
		p++;
	return p;
}

/* Past the line `s` (and its LF or CRLF) at p, or NULL. */
static const unsigned char *
match_line(const unsigned char *p, const unsigned char *end, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(end - p) < n || memcmp(p, s, n) != 0)
		return NULL;
	p += n;
	if (p < end && *p == '\r')
		p++;
	if (p >= end || *p != '\n')
		return NULL;
	return p + 1;
}

static int
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

/*
 * The upload as nearly every tool writes it, read without a BIO: only
 * blank lines and whitespace around one CERTIFICATE REQUEST block with no headers, full
 * 64-character base64 lines and a shorter last one, padding only at the
 * end. 1 with *der (OPENSSL_malloc'd) when so; 0 for anything else, which
 * PEM_bytes_read_bio() then reads (or refuses) as before.
 */
static int
pem_fast(const unsigned char *buf, size_t len, unsigned char **der,
    long *derlen)
{
	static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----";
	static const char endl[] = "-----END CERTIFICATE REQUEST-----";
	const unsigned char *p = buf, *end = buf + len;
	unsigned char *b64 = NULL, *out = NULL;
	size_t nb = 0, line, pad = 0;
	int last = 0, n;

	/* Blank lines before BEGIN, which starts a line (as OpenSSL wants). */
	p = skip_space(p, end);
	if ((p > buf && p[-1] != '\n') ||
	    (p = match_line(p, end, begin)) == NULL)
		return 0;
	if ((b64 = malloc(len)) == NULL)
		return 0;
	for (;;) {
		if ((size_t)(end - p) >= sizeof(endl) - 1 &&
		    memcmp(p, endl, sizeof(endl) - 1) == 0) {
			p += sizeof(endl) - 1;
			break;
		}
		/* A line after the short one, or no END line. */
		if (last)
			goto no;
		for (line = 0; p < end && line <= 64 && b64_char(*p); p++)
			b64[nb + line++] = *p;
		if (line == 0 || line > 64)
			goto no;
		if (p < end && *p == '\r')
			p++;
		if (p >= end || *p++ != '\n')
			goto no;
		nb += line;
		last = line < 64;
	}
	if (skip_space(p, end) != end || nb == 0 || nb % 4 != 0)
		goto no;
	while (pad < 2 && b64[nb - 1 - pad] == '=')
		pad++;
	if (memchr(b64, '=', nb - pad) != NULL)
		goto no;
	if ((out = OPENSSL_malloc(nb / 4 * 3)) == NULL)
		goto no;
	n = EVP_DecodeBlock(out, b64, (int)nb);
	if (n < 0 || (size_t)n != nb / 4 * 3)
		goto no;
	free(b64);
	*der = out;
	*derlen = n - (long)pad;
	return 1;
no:
	OPENSSL_free(out);
	free(b64);
	return 0;
}

int
ck_csr_parse(const unsigned char *buf, size_t len, struct ck_csr **out)
{
	return ck_csr_parse_ex(buf, len, 0, out);
}

/* The key's description: the decoder's, or ck_key_describe()'s when the
 * decoder left it to that. */
static void
key_desc_set(char out[32], const char *dec, EVP_PKEY *key)
{
	if (dec[0] != '\0')
		snprintf(out, 32, "%s", dec);
	else
		ck_key_describe(key, out, 32);
}

int
ck_spki_describe(const unsigned char *der, size_t len, char desc[32])
{
	EVP_PKEY *key = NULL;
	char dec[32] = "";
	int r;

	if ((r = csr_der_spki_describe(der, len, dec, sizeof(dec),
	    &key)) == 0)
		key_desc_set(desc, dec, key);
	EVP_PKEY_free(key);
	return r;
}

int
ck_csr_parse_ex(const unsigned char *buf, size_t len, unsigned flags,
    struct ck_csr **out)
{
	unsigned dflags = (flags & CK_CSR_NO_PUBKEY) ? CSR_DER_NO_PUBKEY : 0;
	struct ck_csr *c = NULL;
	struct csr_der d;
	unsigned char *der = NULL;
	long derlen = 0;
	BIO *bio = NULL;
	char rest[16];
	int r, pem;

	memset(&d, 0, sizeof(d));
	if (len > CK_CSR_MAX)
		return ck_err_set(CK_E_TOOBIG, "CSR is %zu bytes; the limit is "
		    "%u", len, CK_CSR_MAX);
	if (len == 0 || buf == NULL)
		return ck_err_set(CK_E_PARSE, "CSR is empty");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CK_E_NOMEM;
	c->bc_pathlen = -1;
	pem = len >= 11 && memmem(buf, len, "-----BEGIN ", 11) != NULL;
	if (pem && pem_fast(buf, len, &der, &derlen)) {
		if ((r = csr_der_decode_ex(der, (size_t)derlen, dflags, &d)) ==
		    CK_E_PARSE) {
			char why[512];
			snprintf(why, sizeof(why), "%s", ck_err_msg());
			r = ck_err_set(CK_E_PARSE, "malformed PEM CSR: %s",
			    why);
		}
	} else if (pem) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
			r = CK_E_NOMEM;
			goto out;
		}
		/* The DER inside the armour gets the same checks as bare
		 * DER (no trailing data); no password callback is ever run
		 * for an encrypted PEM header. */
		if (!PEM_bytes_read_bio(&der, &derlen, NULL,
		    PEM_STRING_X509_REQ, bio, no_pass_cb, NULL)) {
			r = ck_err_ssl(CK_E_PARSE, "malformed PEM CSR");
			goto out;
		}
		/* One request per upload: a second PEM block is refused
		 * rather than silently ignored. */
		{
			int n;
			while ((n = BIO_gets(bio, rest, sizeof(rest))) > 0)
				if (strncmp(rest, "-----BEGIN", 10) == 0) {
					r = ck_err_set(CK_E_PARSE, "more than "
					    "one PEM block after the CSR");
					goto out;
				}
		}
		if ((r = csr_der_decode_ex(der, (size_t)derlen, dflags, &d)) ==
		    CK_E_PARSE) {
			char why[512];
			snprintf(why, sizeof(why), "%s", ck_err_msg());
			r = ck_err_set(CK_E_PARSE, "malformed PEM CSR: %s",
			    why);
		}
	} else
		r = csr_der_decode_ex(buf, len, dflags, &d);
	if (r != 0)
		goto out;
	c->subject = d.subject;
	c->pubkey = d.pubkey;
	c->spki_alg = d.spki_alg;
	c->spki_key = d.spki_key;
	c->spki_der = d.spki_der;
	c->spki_der_len = d.spki_der_len;
	c->exts = d.exts;
	key_desc_set(c->key_desc, d.key_desc, c->pubkey);
	memset(&d, 0, sizeof(d));
	/* The subject is copied into the certificate as it is: BER there
	 * would be signed as received. */
	if ((r = ck_name_is_der(c->subject)) != 1) {
		r = r < 0 ? CK_E_NOMEM : ck_err_set(CK_E_PARSE, "the CSR's "
		    "subject is not DER (long-form or indefinite lengths, an "
		    "unsorted SET or a constructed string)");
		goto out;
	}
	if ((r = read_subject(c)) != 0 || (r = read_extensions(c)) != 0)
		goto out;
	*out = c;
	c = NULL;
out:
	csr_der_clear(&d);
	OPENSSL_free(der);
	BIO_free(bio);
	ck_csr_free(c);
	ERR_clear_error();
	return r;
}

void
ck_csr_free(struct ck_csr *c)
{
	if (c == NULL)
		return;
	X509_NAME_free(c->subject);
	EVP_PKEY_free(c->pubkey);
	X509_ALGOR_free(c->spki_alg);
	ASN1_BIT_STRING_free(c->spki_key);
	OPENSSL_free(c->spki_der);
	sk_X509_EXTENSION_pop_free(c->exts, X509_EXTENSION_free);
	free(c->attrs);
	ck_names_clear(&c->names);
	ck_strlist_clear(&c->eku);
	ck_strlist_clear(&c->other_exts);
	free(c);
}

const char *
ck_csr_subject_get(const struct ck_csr *c, const char *type)
{
	size_t i;

	for (i = 0; i < c->nattrs; i++)
		if (strcmp(c->attrs[i].type, type) == 0)
			return c->attrs[i].value;
	return NULL;
}
