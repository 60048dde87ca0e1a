/*
 * fuzz_eab_unseal - a sealed ACME EAB key as the store holds it (bytes
 * that came back from a backup are as untrusted as any) through
 * eab_unseal(). Whatever the input: a known refusal, or a key of 1 to
 * EAB_SEAL_KEY_MAX bytes that opens for its own kid only. The seeds are
 * sealed to the fixed key below, so that the replay reaches the AES-GCM
 * check and success.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ca/eab_seal.h"
#include "common/err.h"
#include "common/secmem.h"
#include "fuzz.h"

#define FUZZ_KID "fuzz-kid"

/* The target's X25519 private key (a test key, nothing else). */
static const unsigned char fuzz_priv[32] = {
	0x70, 0x7a, 0x1c, 0x3e, 0x55, 0x21, 0x9b, 0x0d,
	0x4f, 0x83, 0x62, 0xaa, 0x17, 0xc5, 0x38, 0x90,
	0xe2, 0x0b, 0x6d, 0x44, 0xf1, 0x2c, 0x99, 0x5e,
	0x13, 0xb7, 0x86, 0x3a, 0xd0, 0x4c, 0x21, 0x6f,
};

static EVP_PKEY *key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	key = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, fuzz_priv,
	    sizeof(fuzz_priv));
	FUZZ_CHECK(key != NULL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ck_secret *out = NULL, *again = NULL;
	unsigned char *resealed = NULL;
	size_t rlen = 0;
	int r;

	if (key == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	r = eab_unseal(key, FUZZ_KID, data, size, &out);
	FUZZ_CHECK(r == 0 || r == CK_E_PARSE || r == CK_E_TAMPER);
	FUZZ_CHECK((r == 0) == (out != NULL));
	if (r != 0)
		return 0;
	FUZZ_CHECK(out->len >= 1 && out->len <= EAB_SEAL_KEY_MAX &&
	    size == EAB_SEALED_LEN(out->len));
	/* Bound to its kid. */
	FUZZ_CHECK(eab_unseal(key, FUZZ_KID "x", data, size, &again) ==
	    CK_E_TAMPER && again == NULL);
	/* Sealed again, it opens to the same key. */
	FUZZ_CHECK(eab_seal(key, FUZZ_KID, out->buf, out->len, &resealed,
	    &rlen) == 0);
	FUZZ_CHECK(eab_unseal(key, FUZZ_KID, resealed, rlen, &again) == 0);
	FUZZ_CHECK(again->len == out->len &&
	    memcmp(again->buf, out->buf, out->len) == 0);
	ck_secret_free(again);
	ck_secret_free(out);
	free(resealed);
	return 0;
}
