/*
 * fuzz_spki.c - the signer process's decoding of a SubjectPublicKeyInfo
 * sent by the service (ck_spki_describe, the CSR parser's key code): no
 * crash, and a key it takes has a NUL-terminated, non-empty description.
 */
#include <string.h>

#include "x509/csr.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char desc[32];

	memset(desc, 0x55, sizeof(desc));
	if (ck_spki_describe(data, size, desc) == 0) {
		FUZZ_CHECK(memchr(desc, 0, sizeof(desc)) != NULL);
		FUZZ_CHECK(desc[0] != '\0');
	}
	return 0;
}
