/*
 * fuzz_acme_nonce - the Replay-Nonce text a client sends back (untrusted)
 * through acme_nonce_consume(). Whatever the input, only the nonces the
 * service issued are taken, each once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz.h"
#include "proto/acme.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_nonces *ns = NULL;
	char issued[3][ACME_NONCE_LEN + 1], *text;
	int i, match = 0;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	FUZZ_CHECK(acme_nonces_new(2, 60, &ns) == 0);
	for (i = 0; i < 3; i++)		/* the first is forgotten */
		FUZZ_CHECK(acme_nonce_issue(ns, 100, issued[i]) == 0);
	for (i = 1; i < 3; i++)
		if (strcmp(text, issued[i]) == 0)
			match = 1;
	/* Random 128 bits: the input cannot guess a live nonce. */
	FUZZ_CHECK((acme_nonce_consume(ns, 100, text) == 0) == match);
	FUZZ_CHECK(acme_nonce_consume(ns, 100, text) == CK_E_NOTFOUND);
	FUZZ_CHECK(acme_nonce_consume(ns, 100, issued[0]) == CK_E_NOTFOUND);
	FUZZ_CHECK(acme_nonce_consume(ns, 100, issued[2]) == 0);
	acme_nonces_free(ns);
	free(text);
	return 0;
}
