/*
 * token.h - API tokens for the REST enrollment API.
 *
 * A token is "ckt_<id>_<secret>": the id (16 hex digits) finds the record,
 * the secret (32 random bytes, base64url) proves possession. Only the
 * SHA-256 of the secret is stored; the token is shown once, at creation.
 * Each token is bound to profiles and may carry name rules narrower than
 * its profiles' (DNS suffixes, IP ranges, e-mail domains), and may or may
 * not revoke certificates issued under its profiles.
 */
#ifndef CK_CA_TOKEN_H
#define CK_CA_TOKEN_H

#include <stddef.h>

#include "ca/ca.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "profile/profile.h"

#define CK_TOKEN_PREFIX "ckt_"

struct ck_token_params {
	const char *name;
	const char *profiles;	/* comma-separated, each must exist */
	const char *dns_suffixes; /* may be NULL */
	const char *ip_ranges;
	const char *email_domains;
	int can_revoke;
};

/* Create a token and audit it; the token text is put in a new secret
 * *out (caller shows it once and frees it). */
int ck_token_create(struct ck_ca *ca, const struct ck_token_params *p,
    struct ck_secret **out);

/* Revoke by id or name, audited. */
int ck_token_revoke(struct ck_ca *ca, const char *id_or_name);

struct ck_token {
	char id[40];
	char name[64];
	unsigned char secret_sha256[32];
	struct ck_strlist profiles;
	struct ck_profile *rules;	/* NULL: only the profile's rules */
	int can_revoke;
};

struct ck_token_set {
	struct ck_token *v;
	size_t n;
};

/* Load the valid (unrevoked) tokens. */
int ck_token_set_load(struct store *st, struct ck_token_set **out);
void ck_token_set_free(struct ck_token_set *set);

/* The token `bearer` proves, or NULL (the secret is compared in constant
 * time; an unknown id and a wrong secret are not told apart). */
const struct ck_token *ck_token_find(const struct ck_token_set *set,
    const char *bearer);

/* 1 if the token may use `profile`. */
int ck_token_allows_profile(const struct ck_token *t, const char *profile);

#endif
