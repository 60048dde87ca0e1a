#include "x509/keygen.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include "common/err.h"

static const char *const key_names[CK_KEY__MAX] = {
	"rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384", "ed25519"
};

const char *
ck_key_type_name(enum ck_key_type t)
{
	if ((unsigned)t >= CK_KEY__MAX)
		return "unknown";
	return key_names[t];
}

int
ck_key_type_parse(const char *s)
{
	int i;

	for (i = 0; i < CK_KEY__MAX; i++)
		if (strcmp(s, key_names[i]) == 0)
			return i;
	ck_err_set(CK_E_INVAL, "unknown key type '%s' (use rsa2048, rsa3072, "
	    "rsa4096, ec-p256, ec-p384 or ed25519)", s);
	return -1;
}

int
ck_key_generate(enum ck_key_type t, EVP_PKEY **out)
{
	EVP_PKEY *k = NULL;

	switch (t) {
	case CK_KEY_RSA2048:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case CK_KEY_RSA3072:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case CK_KEY_RSA4096:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
		break;
	case CK_KEY_EC_P256:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case CK_KEY_EC_P384:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case CK_KEY_ED25519:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	default:
		return ck_err_set(CK_E_INVAL, "unknown key type");
	}
	if (k == NULL)
		return ck_err_ssl(CK_E_CRYPTO, "key generation failed");
	*out = k;
	return 0;
}

void
ck_key_describe(EVP_PKEY *pkey, char *buf, size_t bufsz)
{
	char curve[64] = "";
	size_t clen = 0;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		snprintf(buf, bufsz, "rsa%d", EVP_PKEY_get_bits(pkey));
		return;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(pkey,
		    OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
		    &clen) != 1) {
			snprintf(buf, bufsz, "ec-unknown");
			return;
		}
		if (strcmp(curve, "prime256v1") == 0 ||
		    strcmp(curve, "P-256") == 0)
			snprintf(buf, bufsz, "ec-p256");
		else if (strcmp(curve, "secp384r1") == 0 ||
		    strcmp(curve, "P-384") == 0)
			snprintf(buf, bufsz, "ec-p384");
		else
			snprintf(buf, bufsz, "ec-%s", curve);
		return;
	case EVP_PKEY_ED25519:
		snprintf(buf, bufsz, "ed25519");
		return;
	case EVP_PKEY_ED448:
		snprintf(buf, bufsz, "ed448");
		return;
	default:
		snprintf(buf, bufsz, "unknown");
	}
}

const EVP_MD *
ck_key_sign_md(EVP_PKEY *pkey)
{
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_ED25519:
	case EVP_PKEY_ED448:
		return NULL;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_bits(pkey) > 256)
			return EVP_sha384();
		return EVP_sha256();
	default:
		return EVP_sha256();
	}
}
