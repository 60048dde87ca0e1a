/*
 * profile.h - certificate profiles (templates), as pure functions.
 *
 * A profile fixes what a certificate may be: key usage, extended key usage,
 * maximum validity, allowed key types, which subject attributes and names
 * may appear (DNS suffixes, IP ranges, e-mail domains), and whether it is a
 * CA certificate (with a path length limit). ck_profile_check() judges a
 * request against a profile and either refuses it with a reason or says
 * exactly what to issue. A request is never silently narrowed or widened:
 * anything it asks for that the profile does not allow is a refusal.
 */
#ifndef CK_PROFILE_PROFILE_H
#define CK_PROFILE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/strutil.h"
#include "x509/csr.h"
#include "x509/names.h"

enum ck_cn_rule {
	CK_CN_NONE,	/* no CN allowed */
	CK_CN_DNS,	/* CN must be an allowed DNS name or IP; copied to SAN */
	CK_CN_EMAIL,	/* CN must be an allowed e-mail address */
	CK_CN_ANY,	/* free text (a person's or device's name) */
	CK_CN__MAX
};

#define CK_PROFILE_NAME_MAX 64
#define CK_PROFILE_MAX_DAYS 36500
#define CK_PROFILE_MAX_APPROVALS 2

struct ck_profile {
	char name[CK_PROFILE_NAME_MAX];
	int is_ca;
	int max_path_len;	/* CA profiles: largest pathLenConstraint */
	unsigned ku;
	struct ck_strlist eku;
	uint32_t max_days;
	struct ck_strlist key_types;
	struct ck_strlist dns_suffixes;
	struct ck_ip_range *ip_ranges;
	size_t nip_ranges;
	struct ck_strlist email_domains;
	struct ck_strlist subject_attrs; /* allowed types; "*" = any */
	enum ck_cn_rule cn_rule;
	int allow_wildcard;
	/* Certificate managers who must approve a request before it is
	 * signed (0: none; 2: two distinct ones, docs/roles.md). */
	int approvals;
	/* When set, names must be exactly one of these (the rules a client
	 * certificate carries: its own names, nothing below them). */
	struct ck_names exact;
	int exact_only;
};

/* Initialise with defaults for a leaf profile called `name`. */
int ck_profile_init(struct ck_profile *p, const char *name);

/* Apply one "key = value" setting; CK_E_PARSE naming the key if wrong. */
int ck_profile_set(struct ck_profile *p, const char *key, const char *value);

/* Check the profile is coherent once all settings are applied. */
int ck_profile_finish(struct ck_profile *p);

/* Release what the profile owns; accepts NULL. */
void ck_profile_clear(struct ck_profile *p);

/* What a request asks for. */
struct ck_issue_request {
	const struct ck_csr *csr;
	uint32_t days;		/* 0: the profile's maximum */
	int path_len;		/* CA profiles: -1 for the profile's maximum */
};

/* What to issue, when the profile allows the request. */
struct ck_issue_decision {
	unsigned ku;
	struct ck_strlist eku;
	struct ck_names sans;
	int is_ca;
	int path_len;
	uint32_t days;
};

/*
 * Judge `rq` against `p`. Returns 0 and fills `d` (free with
 * ck_issue_decision_clear), or CK_E_POLICY with the reason (also in
 * ck_err_msg()).
 */
int ck_profile_check(const struct ck_profile *p,
    const struct ck_issue_request *rq, struct ck_issue_decision *d);

void ck_issue_decision_clear(struct ck_issue_decision *d);

/*
 * Check a key's type (as ck_key_describe() names it: "rsa2048", "ec-p256",
 * ...; ck_spki_describe() for a SubjectPublicKeyInfo) against the
 * profile's key_types. 0 or CK_E_POLICY with the reason. The CSR check
 * and the signer process both judge keys with it.
 */
int ck_profile_key_check(const struct ck_profile *p, const char *key_desc);

/*
 * Check one name against the profile's name rules (syntax, wildcard,
 * suffixes, IP ranges, e-mail domains). 0 or CK_E_POLICY with the reason.
 * Also used for the narrower rules an API token carries.
 */
int ck_profile_name_check(const struct ck_profile *p, const struct ck_name *n);

/* 1 if the DNS name is allowed by the profile's suffixes, else 0. */
int ck_profile_dns_allowed(const struct ck_profile *p, const char *name);

#endif
