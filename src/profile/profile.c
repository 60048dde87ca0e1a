#include "profile/profile.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "x509/certbuild.h"
#include "x509/keygen.h"

static const char *const cn_rule_names[CK_CN__MAX] = {
	"none", "dns", "email", "any"
};

int
ck_profile_init(struct ck_profile *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	if (strlen(name) >= sizeof(p->name) || name[0] == '\0')
		return ck_err_set(CK_E_PARSE, "bad profile name '%s'", name);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->max_days = 397;
	p->max_path_len = 0;
	p->cn_rule = CK_CN_DNS;
	return 0;
}

void
ck_profile_clear(struct ck_profile *p)
{
	if (p == NULL)
		return;
	ck_strlist_clear(&p->eku);
	ck_strlist_clear(&p->key_types);
	ck_strlist_clear(&p->dns_suffixes);
	ck_strlist_clear(&p->email_domains);
	ck_strlist_clear(&p->subject_attrs);
	free(p->ip_ranges);
	p->ip_ranges = NULL;
	p->nip_ranges = 0;
	ck_names_clear(&p->exact);
	p->exact_only = 0;
}

static int
parse_bool(const char *v, int *out)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0)
		*out = 1;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcmp(v, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

#define BAD(...) ck_err_set(CK_E_PARSE, __VA_ARGS__)

int
ck_profile_set(struct ck_profile *p, const char *key, const char *value)
{
	struct ck_strlist items = { 0 };
	struct ck_ip_range *nr;
	uint64_t n;
	size_t i;
	int r = 0, bit;

	if (strcmp(key, "ca") == 0) {
		if (parse_bool(value, &p->is_ca) != 0)
			return BAD("profile %s: ca must be yes or no", p->name);
		return 0;
	}
	if (strcmp(key, "allow_wildcard") == 0) {
		if (parse_bool(value, &p->allow_wildcard) != 0)
			return BAD("profile %s: allow_wildcard must be yes or "
			    "no", p->name);
		return 0;
	}
	if (strcmp(key, "max_validity_days") == 0) {
		if ((r = ck_parse_u64(value, 1, CK_PROFILE_MAX_DAYS,
		    "max_validity_days", &n)) != 0)
			return r;
		p->max_days = (uint32_t)n;
		return 0;
	}
	if (strcmp(key, "approvals") == 0) {
		if ((r = ck_parse_u64(value, 0, CK_PROFILE_MAX_APPROVALS,
		    "approvals", &n)) != 0)
			return r;
		p->approvals = (int)n;
		return 0;
	}
	if (strcmp(key, "max_path_length") == 0) {
		if ((r = ck_parse_u64(value, 0, 16, "max_path_length",
		    &n)) != 0)
			return r;
		p->max_path_len = (int)n;
		return 0;
	}
	if (strcmp(key, "common_name") == 0) {
		for (i = 0; i < CK_CN__MAX; i++)
			if (strcmp(value, cn_rule_names[i]) == 0) {
				p->cn_rule = (enum ck_cn_rule)i;
				return 0;
			}
		return BAD("profile %s: common_name must be none, dns, email "
		    "or any", p->name);
	}
	if ((r = ck_strlist_split(&items, value)) != 0)
		return r;
	if (strcmp(key, "key_usage") == 0) {
		p->ku = 0;
		for (i = 0; i < items.n; i++) {
			if ((bit = ck_ku_parse(items.v[i])) < 0) {
				r = BAD("profile %s: unknown key usage '%s'",
				    p->name, items.v[i]);
				break;
			}
			p->ku |= 1u << bit;
		}
	} else if (strcmp(key, "ext_key_usage") == 0) {
		ck_strlist_clear(&p->eku);
		for (i = 0; i < items.n && r == 0; i++) {
			if (!ck_eku_valid(items.v[i]))
				r = BAD("profile %s: unknown extended key "
				    "usage '%s'", p->name, items.v[i]);
			else
				r = ck_strlist_add(&p->eku, items.v[i]);
		}
	} else if (strcmp(key, "key_types") == 0) {
		ck_strlist_clear(&p->key_types);
		for (i = 0; i < items.n && r == 0; i++) {
			if (ck_key_type_parse(items.v[i]) < 0)
				r = BAD("profile %s: unknown key type '%s'",
				    p->name, items.v[i]);
			else
				r = ck_strlist_add(&p->key_types, items.v[i]);
		}
	} else if (strcmp(key, "dns_suffixes") == 0) {
		ck_strlist_clear(&p->dns_suffixes);
		for (i = 0; i < items.n && r == 0; i++) {
			const char *s = items.v[i];
			if (!ck_dns_name_valid(s[0] == '.' ? s + 1 : s) ||
			    strchr(s, '*') != NULL)
				r = BAD("profile %s: bad DNS suffix '%s'",
				    p->name, s);
			else
				r = ck_strlist_add(&p->dns_suffixes, s);
		}
	} else if (strcmp(key, "ip_ranges") == 0) {
		free(p->ip_ranges);
		p->ip_ranges = NULL;
		p->nip_ranges = 0;
		if (items.n > 0) {
			if ((nr = calloc(items.n, sizeof(*nr))) == NULL)
				r = CK_E_NOMEM;
			p->ip_ranges = nr;
			for (i = 0; i < items.n && r == 0; i++) {
				r = ck_ip_range_parse(items.v[i], &nr[i]);
				if (r == 0)
					p->nip_ranges++;
			}
		}
	} else if (strcmp(key, "email_domains") == 0) {
		ck_strlist_clear(&p->email_domains);
		for (i = 0; i < items.n && r == 0; i++) {
			if (!ck_dns_name_valid(items.v[i]))
				r = BAD("profile %s: bad e-mail domain '%s'",
				    p->name, items.v[i]);
			else
				r = ck_strlist_add(&p->email_domains,
				    items.v[i]);
		}
	} else if (strcmp(key, "subject_attributes") == 0) {
		ck_strlist_clear(&p->subject_attrs);
		for (i = 0; i < items.n && r == 0; i++)
			r = ck_strlist_add(&p->subject_attrs, items.v[i]);
	} else
		r = BAD("profile %s: unknown setting '%s'", p->name, key);
	ck_strlist_clear(&items);
	return r;
}

int
ck_profile_finish(struct ck_profile *p)
{
	if (p->key_types.n == 0)
		return BAD("profile %s: key_types is empty", p->name);
	if (p->is_ca) {
		if (!(p->ku & (1u << CK_KU_KEY_CERT_SIGN)))
			return BAD("profile %s: a CA profile needs keyCertSign "
			    "in key_usage", p->name);
	} else if (p->ku & ((1u << CK_KU_KEY_CERT_SIGN) |
	    (1u << CK_KU_CRL_SIGN)))
		return BAD("profile %s: keyCertSign/cRLSign need ca = yes",
		    p->name);
	if (p->subject_attrs.n == 0 && ck_strlist_add(&p->subject_attrs,
	    "CN") != 0)
		return CK_E_NOMEM;
	return 0;
}

static int
refuse(const struct ck_profile *p, const char *fmt, const char *arg)
{
	char why[512];

	snprintf(why, sizeof(why), fmt, arg);
	return ck_err_set(CK_E_POLICY, "refused by profile %s: %s", p->name,
	    why);
}

int
ck_profile_dns_allowed(const struct ck_profile *p, const char *name)
{
	size_t i, nl = strlen(name), sl;
	const char *s;

	for (i = 0; i < p->dns_suffixes.n; i++) {
		s = p->dns_suffixes.v[i];
		if (s[0] == '.') {
			/* ".example.com": strictly below */
			sl = strlen(s);
			if (nl > sl && strcasecmp(name + nl - sl, s) == 0)
				return 1;
		} else {
			/* "example.com": itself or below */
			sl = strlen(s);
			if (strcasecmp(name, s) == 0)
				return 1;
			if (nl > sl + 1 && name[nl - sl - 1] == '.' &&
			    strcasecmp(name + nl - sl, s) == 0)
				return 1;
		}
	}
	return 0;
}

int
ck_profile_name_check(const struct ck_profile *p, const struct ck_name *n)
{
	unsigned char ip[16];
	const char *dom;
	size_t i;
	int len;

	if (p->exact_only) {
		for (i = 0; i < p->exact.n; i++)
			if (p->exact.v[i].type == n->type &&
			    strcasecmp(p->exact.v[i].value, n->value) == 0)
				return 0;
		return refuse(p, "name '%s' is not one of the names it may "
		    "request", n->value);
	}

	switch (n->type) {
	case CK_NAME_DNS:
		if (!ck_dns_name_valid(n->value))
			return refuse(p, "'%s' is not a valid DNS name",
			    n->value);
		if (n->value[0] == '*' && !p->allow_wildcard)
			return refuse(p, "wildcard name '%s' is not allowed",
			    n->value);
		if (!ck_profile_dns_allowed(p, n->value))
			return refuse(p, "DNS name '%s' is outside the "
			    "allowed suffixes", n->value);
		return 0;
	case CK_NAME_IP:
		if ((len = ck_ip_parse(n->value, ip)) == 0)
			return refuse(p, "'%s' is not an IP address",
			    n->value);
		for (i = 0; i < p->nip_ranges; i++)
			if (ck_ip_range_contains(&p->ip_ranges[i], ip, len))
				return 0;
		return refuse(p, "IP address %s is outside the allowed "
		    "ranges", n->value);
	case CK_NAME_EMAIL:
		if (!ck_email_valid(n->value))
			return refuse(p, "'%s' is not a valid e-mail address",
			    n->value);
		dom = strchr(n->value, '@') + 1;
		for (i = 0; i < p->email_domains.n; i++)
			if (strcasecmp(dom, p->email_domains.v[i]) == 0)
				return 0;
		return refuse(p, "e-mail address %s is outside the allowed "
		    "domains", n->value);
	default:
		return refuse(p, "name '%s' is of a type certkeep does not "
		    "issue", n->value);
	}
}

static int
names_has(const struct ck_names *l, enum ck_name_type t, const char *v)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].type == t && strcasecmp(l->v[i].value, v) == 0)
			return 1;
	return 0;
}

static int
check_subject(const struct ck_profile *p, const struct ck_csr *csr,
    struct ck_issue_decision *d)
{
	const char *cn = NULL;
	unsigned char ip[16];
	struct ck_name tmp;
	size_t i;
	int r, ncn = 0, any = ck_strlist_has(&p->subject_attrs, "*");

	for (i = 0; i < csr->nattrs; i++) {
		if (!any && !ck_strlist_has(&p->subject_attrs,
		    csr->attrs[i].type))
			return refuse(p, "subject attribute %s is not allowed",
			    csr->attrs[i].type);
		if (strcmp(csr->attrs[i].type, "CN") == 0) {
			cn = csr->attrs[i].value;
			ncn++;
		}
	}
	if (ncn > 1)
		return refuse(p, "%s", "the subject has more than one CN");
	if (cn == NULL || p->is_ca)
		return 0;
	switch (p->cn_rule) {
	case CK_CN_NONE:
		return refuse(p, "%s", "a common name is not allowed");
	case CK_CN_ANY:
		return 0;
	case CK_CN_EMAIL:
		tmp.type = CK_NAME_EMAIL;
		break;
	case CK_CN_DNS:
		tmp.type = ck_ip_parse(cn, ip) ? CK_NAME_IP : CK_NAME_DNS;
		break;
	default:
		return CK_E_INTERNAL;
	}
	snprintf(tmp.value, sizeof(tmp.value), "%s", cn);
	if ((r = ck_profile_name_check(p, &tmp)) != 0)
		return r;
	/* The CN must also be in the subjectAltName (RFC 6125). */
	if (!names_has(&d->sans, tmp.type, cn))
		return ck_names_add(&d->sans, tmp.type, cn);
	return 0;
}

/* Key usages a key algorithm can have at all (RFC 5480 section 3 for EC,
 * RFC 8410 section 5 for Ed25519); RSA can have any. */
static unsigned
ku_valid_for_key(const char *key_desc)
{
	const unsigned sign = (1u << CK_KU_DIGITAL_SIGNATURE) |
	    (1u << CK_KU_NON_REPUDIATION) | (1u << CK_KU_KEY_CERT_SIGN) |
	    (1u << CK_KU_CRL_SIGN);

	if (strncmp(key_desc, "ec-", 3) == 0)
		return sign | (1u << CK_KU_KEY_AGREEMENT) |
		    (1u << CK_KU_ENCIPHER_ONLY) | (1u << CK_KU_DECIPHER_ONLY);
	if (strcmp(key_desc, "ed25519") == 0 || strcmp(key_desc, "ed448") == 0)
		return sign;
	return (1u << CK_KU__MAX) - 1;
}

int
ck_profile_key_check(const struct ck_profile *p, const char *key_desc)
{
	if (!ck_strlist_has(&p->key_types, key_desc))
		return refuse(p, "key type %s is not allowed", key_desc);
	return 0;
}

int
ck_profile_check(const struct ck_profile *p, const struct ck_issue_request *rq,
    struct ck_issue_decision *d)
{
	const struct ck_csr *csr = rq->csr;
	size_t i;
	int r;

	memset(d, 0, sizeof(*d));
	if ((r = ck_profile_key_check(p, csr->key_desc)) != 0)
		goto fail;
	d->days = rq->days ? rq->days : p->max_days;
	if (d->days > p->max_days) {
		char b[64];
		snprintf(b, sizeof(b), "%u days (the maximum is %u)", d->days,
		    p->max_days);
		r = refuse(p, "a validity of %s is too long", b);
		goto fail;
	}
	if (csr->other_exts.n > 0) {
		r = refuse(p, "the request asks for extension %s, which the "
		    "profile does not set", csr->other_exts.v[0]);
		goto fail;
	}
	/* CA or not */
	d->is_ca = p->is_ca;
	d->path_len = -1;
	if (p->is_ca) {
		if (csr->has_bc && !csr->bc_ca) {
			r = refuse(p, "%s", "the request asks for CA:FALSE "
			    "under a CA profile");
			goto fail;
		}
		d->path_len = rq->path_len < 0 ? p->max_path_len :
		    rq->path_len;
		if (csr->has_bc && csr->bc_pathlen >= 0) {
			if (rq->path_len >= 0 &&
			    csr->bc_pathlen != rq->path_len) {
				char b[96];
				snprintf(b, sizeof(b), "%ld, but %d was given "
				    "for it", csr->bc_pathlen, rq->path_len);
				r = refuse(p, "the request asks for path "
				    "length %s", b);
				goto fail;
			}
			/* Compare before narrowing to int: a pathlen of
			 * 2^32 + n must not wrap to n, or to a negative
			 * value, which means no pathLenConstraint at all. */
			if (csr->bc_pathlen > p->max_path_len) {
				char b[64];
				snprintf(b, sizeof(b), "%ld (the maximum is "
				    "%d)", csr->bc_pathlen, p->max_path_len);
				r = refuse(p, "path length %s is too long", b);
				goto fail;
			}
			d->path_len = (int)csr->bc_pathlen;
		}
		if (d->path_len > p->max_path_len) {
			char b[64];
			snprintf(b, sizeof(b), "%d (the maximum is %d)",
			    d->path_len, p->max_path_len);
			r = refuse(p, "path length %s is too long", b);
			goto fail;
		}
	} else if (csr->has_bc && csr->bc_ca) {
		r = refuse(p, "%s", "the request asks to be a CA");
		goto fail;
	} else if (rq->path_len >= 0) {
		r = refuse(p, "%s", "a path length only applies to CA "
		    "profiles");
		goto fail;
	}
	/* Key usage: the request may narrow, never widen. The profile's
	 * usages that the key's algorithm cannot have (keyEncipherment for
	 * an EC or Ed25519 key) are not granted to it. */
	d->ku = p->ku & ku_valid_for_key(csr->key_desc);
	if (csr->has_ku && (csr->ku & ~ku_valid_for_key(csr->key_desc))) {
		for (i = 0; i < CK_KU__MAX; i++)
			if ((csr->ku & ~ku_valid_for_key(csr->key_desc)) &
			    (1u << i))
				break;
		r = refuse(p, "key usage %s is not valid for this key type",
		    ck_ku_name((enum ck_ku)i));
		goto fail;
	}
	if (p->ku != 0 && d->ku == 0) {
		r = refuse(p, "no key usage of the profile is valid for key "
		    "type %s", csr->key_desc);
		goto fail;
	}
	if (csr->has_ku) {
		if ((csr->ku & ~p->ku) != 0) {
			for (i = 0; i < CK_KU__MAX; i++)
				if ((csr->ku & ~p->ku) & (1u << i))
					break;
			r = refuse(p, "key usage %s is not allowed",
			    ck_ku_name((enum ck_ku)i));
			goto fail;
		}
		if (csr->ku != 0)
			d->ku = csr->ku;
	}
	if (csr->has_eku) {
		for (i = 0; i < csr->eku.n; i++)
			if (!ck_strlist_has(&p->eku, csr->eku.v[i])) {
				r = refuse(p, "extended key usage %s is not "
				    "allowed", csr->eku.v[i]);
				goto fail;
			}
		for (i = 0; i < csr->eku.n; i++)
			if ((r = ck_strlist_add(&d->eku, csr->eku.v[i])) != 0)
				goto fail;
	} else
		for (i = 0; i < p->eku.n; i++)
			if ((r = ck_strlist_add(&d->eku, p->eku.v[i])) != 0)
				goto fail;
	/* Names */
	for (i = 0; i < csr->names.n; i++) {
		if ((r = ck_profile_name_check(p, &csr->names.v[i])) != 0)
			goto fail;
		if ((r = ck_names_add(&d->sans, csr->names.v[i].type,
		    csr->names.v[i].value)) != 0)
			goto fail;
	}
	if ((r = check_subject(p, csr, d)) != 0)
		goto fail;
	if (!p->is_ca && d->sans.n == 0 &&
	    ck_csr_subject_get(csr, "CN") == NULL) {
		r = refuse(p, "%s", "the request names no one: it has neither a common name nor a subjectAltName");
		goto fail;
	}
	if (p->is_ca && csr->nattrs == 0) {
		r = refuse(p, "%s", "a CA certificate needs a subject name");
		goto fail;
	}
	return 0;
fail:
	ck_issue_decision_clear(d);
	return r;
}

void
ck_issue_decision_clear(struct ck_issue_decision *d)
{
	if (d == NULL)
		return;
	ck_strlist_clear(&d->eku);
	ck_names_clear(&d->sans);
}
