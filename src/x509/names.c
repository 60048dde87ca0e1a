#include "x509/names.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/strutil.h"

static const char *const labels[CK_NAME__MAX] = {
	"DNS", "IP", "email", "URI", "other"
};

const char *
ck_name_type_label(enum ck_name_type t)
{
	if ((unsigned)t >= CK_NAME__MAX)
		return "other";
	return labels[t];
}

int
ck_names_add(struct ck_names *l, enum ck_name_type t, const char *v)
{
	struct ck_name *nv;

	if (strlen(v) >= CK_NAME_MAX)
		return ck_err_set(CK_E_TOOBIG, "name too long (over %d bytes)",
		    CK_NAME_MAX - 1);
	if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL)
		return CK_E_NOMEM;
	l->v = nv;
	l->v[l->n].type = t;
	snprintf(l->v[l->n].value, CK_NAME_MAX, "%s", v);
	l->n++;
	return 0;
}

void
ck_names_clear(struct ck_names *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Copy an IA5String that must be printable ASCII without NUL. */
static int
ia5_text(const ASN1_IA5STRING *s, char *buf, size_t bufsz)
{
	int i, len = ASN1_STRING_length(s);
	const unsigned char *d = ASN1_STRING_get0_data(s);

	if (len < 0 || (size_t)len >= bufsz)
		return ck_err_set(CK_E_TOOBIG, "name too long");
	for (i = 0; i < len; i++)
		if (d[i] < 0x21 || d[i] > 0x7e)
			return ck_err_set(CK_E_PARSE,
			    "name contains a non-printable character");
	memcpy(buf, d, (size_t)len);
	buf[len] = '\0';
	return 0;
}

int
ck_names_from_general(const GENERAL_NAMES *gens, struct ck_names *out)
{
	char buf[CK_NAME_MAX];
	const GENERAL_NAME *g;
	const unsigned char *ip;
	int i, r, iplen;

	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		switch (g->type) {
		case GEN_DNS:
			if ((r = ia5_text(g->d.dNSName, buf, sizeof(buf))) != 0)
				return r;
			r = ck_names_add(out, CK_NAME_DNS, buf);
			break;
		case GEN_EMAIL:
			if ((r = ia5_text(g->d.rfc822Name, buf,
			    sizeof(buf))) != 0)
				return r;
			r = ck_names_add(out, CK_NAME_EMAIL, buf);
			break;
		case GEN_URI:
			if ((r = ia5_text(g->d.uniformResourceIdentifier, buf,
			    sizeof(buf))) != 0)
				return r;
			r = ck_names_add(out, CK_NAME_URI, buf);
			break;
		case GEN_IPADD:
			ip = ASN1_STRING_get0_data(g->d.iPAddress);
			iplen = ASN1_STRING_length(g->d.iPAddress);
			if (iplen == 4)
				inet_ntop(AF_INET, ip, buf, sizeof(buf));
			else if (iplen == 16)
				inet_ntop(AF_INET6, ip, buf, sizeof(buf));
			else
				return ck_err_set(CK_E_PARSE,
				    "IP address of %d bytes", iplen);
			r = ck_names_add(out, CK_NAME_IP, buf);
			break;
		default:
			snprintf(buf, sizeof(buf), "GeneralName type %d",
			    g->type);
			r = ck_names_add(out, CK_NAME_OTHER, buf);
		}
		if (r != 0)
			return r;
	}
	return 0;
}

int
ck_names_to_general(const struct ck_names *l, GENERAL_NAMES **out)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *g = NULL;
	ASN1_IA5STRING *s = NULL;
	ASN1_OCTET_STRING *o = NULL;
	unsigned char ip[16];
	size_t i;
	int iplen, type;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return CK_E_NOMEM;
	for (i = 0; i < l->n; i++) {
		if ((g = GENERAL_NAME_new()) == NULL)
			goto nomem;
		switch (l->v[i].type) {
		case CK_NAME_IP:
			if ((iplen = ck_ip_parse(l->v[i].value, ip)) == 0)
				goto bad;
			if ((o = ASN1_OCTET_STRING_new()) == NULL ||
			    !ASN1_OCTET_STRING_set(o, ip, iplen))
				goto nomem;
			GENERAL_NAME_set0_value(g, GEN_IPADD, o);
			o = NULL;
			break;
		case CK_NAME_DNS:
		case CK_NAME_EMAIL:
		case CK_NAME_URI:
			type = l->v[i].type == CK_NAME_DNS ? GEN_DNS :
			    l->v[i].type == CK_NAME_EMAIL ? GEN_EMAIL : GEN_URI;
			if ((s = ASN1_IA5STRING_new()) == NULL ||
			    !ASN1_STRING_set(s, l->v[i].value, -1))
				goto nomem;
			GENERAL_NAME_set0_value(g, type, s);
			s = NULL;
			break;
		default:
			goto bad;
		}
		if (!sk_GENERAL_NAME_push(gens, g))
			goto nomem;
		g = NULL;
	}
	*out = gens;
	return 0;
bad:
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	return ck_err_set(CK_E_INVAL, "cannot encode name '%s'",
	    l->v[i].value);
nomem:
	ASN1_IA5STRING_free(s);
	ASN1_OCTET_STRING_free(o);
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	return CK_E_NOMEM;
}

void
ck_names_format(const struct ck_names *l, char *buf, size_t bufsz)
{
	size_t i, off = 0;
	int n;

	if (bufsz == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < l->n; i++) {
		n = snprintf(buf + off, bufsz - off, "%s%s:%s",
		    i ? ", " : "", ck_name_type_label(l->v[i].type),
		    l->v[i].value);
		if (n < 0 || (size_t)n >= bufsz - off)
			return;
		off += (size_t)n;
	}
}

int
ck_dns_name_valid(const char *s)
{
	size_t len = strlen(s), lablen = 0, i;
	int labels_seen = 0;

	if (len == 0 || len > 253)
		return 0;
	if (s[0] == '*' && s[1] == '.') {
		s += 2;
		len -= 2;
		if (len == 0)
			return 0;
	}
	for (i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (lablen == 0 || lablen > 63)
				return 0;
			if (s[i - 1] == '-' || s[i - lablen] == '-')
				return 0;
			lablen = 0;
			labels_seen++;
			continue;
		}
		if (!(isalnum((unsigned char)c) || c == '-'))
			return 0;
		lablen++;
	}
	return labels_seen >= 1;
}

int
ck_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	const char *p;

	if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
		return 0;
	for (p = s; p < at; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '(' || *p == ')' ||
		    *p == '<' || *p == '>' || *p == ',' || *p == ';' ||
		    *p == ':' || *p == '\\' || *p == '"' || *p == '[' ||
		    *p == ']')
			return 0;
	return ck_dns_name_valid(at + 1) && at[1] != '*';
}

int
ck_ip_parse(const char *s, unsigned char out[16])
{
	if (strchr(s, ':') != NULL) {
		if (inet_pton(AF_INET6, s, out) == 1)
			return 16;
		return 0;
	}
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	return 0;
}

int
ck_ip_canon(const char *s, char out[CK_IP_TEXT_MAX])
{
	unsigned char b[16];
	int len = ck_ip_parse(s, b);

	out[0] = '\0';
	if (len == 0 || inet_ntop(len == 4 ? AF_INET : AF_INET6, b, out,
	    CK_IP_TEXT_MAX) == NULL) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int
ck_ip_range_parse(const char *s, struct ck_ip_range *out)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	uint64_t prefix;
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	if (alen >= sizeof(addr))
		goto bad;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if ((out->len = ck_ip_parse(addr, out->addr)) == 0)
		goto bad;
	if (slash != NULL) {
		if (ck_parse_u64(slash + 1, 0, (uint64_t)out->len * 8,
		    "IP prefix", &prefix) != 0)
			goto bad;
		out->prefix = (int)prefix;
	} else
		out->prefix = out->len * 8;
	return 0;
bad:
	return ck_err_set(CK_E_PARSE, "bad IP range '%s' (use a.b.c.d/n or "
	    "x:y::/n)", s);
}

int
ck_ip_range_contains(const struct ck_ip_range *r, const unsigned char *addr,
    int len)
{
	int full, rest;

	if (len != r->len)
		return 0;
	full = r->prefix / 8;
	rest = r->prefix % 8;
	if (memcmp(r->addr, addr, (size_t)full) != 0)
		return 0;
	if (rest != 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((r->addr[full] & mask) != (addr[full] & mask))
			return 0;
	}
	return 1;
}
