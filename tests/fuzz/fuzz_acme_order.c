/*
 * fuzz_acme_order - a newOrder payload (untrusted JSON) through
 * acme_order_parse(). Whatever the input, it is refused with a problem
 * type, or every identifier it gives back is a well-formed dns or ip
 * identifier, once each.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "fuzz.h"
#include "proto/acme.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_order_req rq;
	const char *ptype = NULL;
	size_t i, k;
	int r;

	memset(&rq, 0, sizeof(rq));
	r = acme_order_parse(data, size, &rq, &ptype);
	if (r != 0) {
		FUZZ_CHECK(r == CK_E_PARSE || r == CK_E_NOMEM);
		FUZZ_CHECK(r != CK_E_PARSE || (ptype != NULL &&
		    (strcmp(ptype, "malformed") == 0 ||
		    strcmp(ptype, "rejectedIdentifier") == 0 ||
		    strcmp(ptype, "unsupportedIdentifier") == 0)));
		FUZZ_CHECK(rq.ids == NULL && rq.nids == 0);
		return 0;
	}
	FUZZ_CHECK(rq.nids >= 1 && rq.nids <= ACME_ORDER_MAX_IDS);
	FUZZ_CHECK(rq.not_before == 0 || rq.not_after == 0 ||
	    rq.not_before < rq.not_after);
	for (i = 0; i < rq.nids; i++) {
		const struct acme_ident *id = &rq.ids[i];
		FUZZ_CHECK(strcmp(id->type, "dns") == 0 ||
		    strcmp(id->type, "ip") == 0);
		FUZZ_CHECK(id->value[0] != '\0' &&
		    strchr(id->value, '*') == NULL);
		FUZZ_CHECK(!id->wildcard || strcmp(id->type, "dns") == 0);
		if (strcmp(id->type, "dns") == 0)
			FUZZ_CHECK(strspn(id->value, "abcdefghijklmnopqrstuvwxyz"
			    "0123456789-.") == strlen(id->value) &&
			    strlen(id->value) <= 253);
		for (k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(rq.ids[k].type, id->type) != 0 ||
			    strcmp(rq.ids[k].value, id->value) != 0 ||
			    rq.ids[k].wildcard != id->wildcard);
	}
	acme_order_req_clear(&rq);
	return 0;
}
