/*
 * config.h - the CA home's configuration file (INI, parsed by inih).
 *
 *   [ca]           key_file, cert_file, chain_file, csr_file, crl_file,
 *                  crl_url, ocsp_url, issuer_url, crl_validity_hours
 *   [store]        backend (sqlite), path
 *   [profile.NAME] see profile.h
 *
 * Relative paths are relative to the CA home. Unknown sections and keys
 * are errors: a typo must not silently weaken a profile.
 */
#ifndef CK_CA_CONFIG_H
#define CK_CA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

#define CK_CONFIG_MAX (1024u * 1024)
#define CK_CONFIG_MAX_PROFILES 64
#define CK_CONFIG_STR 512

struct ck_config {
	char key_file[CK_CONFIG_STR];
	char cert_file[CK_CONFIG_STR];
	char chain_file[CK_CONFIG_STR];
	char csr_file[CK_CONFIG_STR];
	char crl_file[CK_CONFIG_STR];
	char crl_url[CK_CONFIG_STR];
	char ocsp_url[CK_CONFIG_STR];
	char issuer_url[CK_CONFIG_STR];
	uint32_t crl_validity_hours;
	char store_backend[32];
	char store_path[CK_CONFIG_STR];
	struct ck_profile *profiles;
	size_t nprofiles;
};

/*
 * Parse configuration text (need not be NUL-terminated). Returns 0 and
 * *out (free with ck_config_free), or CK_E_PARSE with the line and reason.
 */
int ck_config_parse(const char *text, size_t len, struct ck_config **out);

void ck_config_free(struct ck_config *cfg);

/* The profile called `name`, or NULL. */
const struct ck_profile *ck_config_profile(const struct ck_config *cfg,
    const char *name);

#endif
