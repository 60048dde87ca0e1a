/*
 * fuzz_config.c - ck_config_parse() on arbitrary text. An accepted
 * configuration is walked (every profile looked up by name and asked a
 * DNS question) and freed.
 */
#include <string.h>

#include "ca/config.h"
#include "profile/profile.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ck_config *cfg = NULL;
	const struct ck_profile *p;
	size_t i;

	if (ck_config_parse((const char *)data, size, &cfg) != 0)
		return 0;
	FUZZ_CHECK(cfg->nprofiles <= CK_CONFIG_MAX_PROFILES);
	FUZZ_CHECK(strcmp(cfg->store_backend, "sqlite") == 0);
	for (i = 0; i < cfg->nprofiles; i++) {
		p = ck_config_profile(cfg, cfg->profiles[i].name);
		FUZZ_CHECK(p == &cfg->profiles[i]);
		FUZZ_CHECK(p->key_types.n > 0);
		FUZZ_CHECK(p->max_days >= 1 &&
		    p->max_days <= CK_PROFILE_MAX_DAYS);
		(void)ck_profile_dns_allowed(p, "www.example.com");
	}
	ck_config_free(cfg);
	return 0;
}
