/*
 * fuzz_p11uri.c - the RFC 7512 PKCS#11 URI parser
 * (keystore_p11_uri_parse), on the input as one NUL-terminated string
 * (it stops at its first NUL byte or at FUZZ_P11URI_MAX bytes). An
 * accepted URI names a key, and its text fields are NUL-terminated
 * within their arrays.
 */
#include <string.h>

#include "keystore/pkcs11.h"

#include "fuzz.h"

#define FUZZ_P11URI_MAX (KEYSTORE_P11_URI_MAX + 64)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[FUZZ_P11URI_MAX + 1];
	struct keystore_p11_uri u;

	if (size > FUZZ_P11URI_MAX)
		size = FUZZ_P11URI_MAX;
	memcpy(s, data, size);
	s[size] = '\0';
	if (keystore_p11_uri_parse(s, &u) != 0)
		return 0;
	FUZZ_CHECK(strncmp(s, "pkcs11:", 7) == 0);
	FUZZ_CHECK(strlen(s) <= KEYSTORE_P11_URI_MAX);
	FUZZ_CHECK(u.object[0] != '\0' || u.id_len > 0);
	FUZZ_CHECK(u.id_len <= sizeof(u.id));
	FUZZ_CHECK(memchr(u.token, '\0', sizeof(u.token)) != NULL);
	FUZZ_CHECK(memchr(u.manufacturer, '\0', sizeof(u.manufacturer)) !=
	    NULL);
	FUZZ_CHECK(memchr(u.model, '\0', sizeof(u.model)) != NULL);
	FUZZ_CHECK(memchr(u.serial, '\0', sizeof(u.serial)) != NULL);
	FUZZ_CHECK(memchr(u.object, '\0', sizeof(u.object)) != NULL);
	FUZZ_CHECK(strchr(s, '?') == NULL);
	return 0;
}
