#include "x509/serial.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/err.h"

static int
bn_to_hex(const BIGNUM *bn, char hex[CK_SERIAL_HEX_MAX])
{
	char *h = BN_bn2hex(bn);
	const char *s;
	int r = 0;

	if (h == NULL)
		return CK_E_NOMEM;
	/* BN_bn2hex prints whole bytes ("0A12..."); the stored form, which
	 * ck_serial_normalize() produces from user input, has no leading
	 * zeros. */
	for (s = h; s[0] == '0' && s[1] != '\0'; s++)
		;
	if (strlen(s) >= CK_SERIAL_HEX_MAX)
		r = ck_err_set(CK_E_TOOBIG, "serial too long");
	else
		snprintf(hex, CK_SERIAL_HEX_MAX, "%s", s);
	OPENSSL_free(h);
	return r;
}

int
ck_serial_octets_hex(const unsigned char *b, size_t n,
    char hex[CK_SERIAL_HEX_MAX])
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, o = 0;

	while (n > 1 && b[0] == 0) {
		b++;
		n--;
	}
	if (n == 0 || 2 * n >= CK_SERIAL_HEX_MAX)
		return ck_err_set(CK_E_TOOBIG, "serial too long");
	for (i = 0; i < n; i++) {
		if (i > 0 || b[i] >= 0x10)
			hex[o++] = digits[b[i] >> 4];
		hex[o++] = digits[b[i] & 15];
	}
	hex[o] = '\0';
	return 0;
}

int
ck_serial_random(ASN1_INTEGER **out, char hex[CK_SERIAL_HEX_MAX])
{
	unsigned char b[CK_SERIAL_BYTES];
	ASN1_INTEGER *ai = NULL;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return ck_err_ssl(CK_E_CRYPTO, "random number generator");
	b[0] &= 0x7f;		/* positive */
	if (b[0] == 0)
		b[0] = 0x01;	/* never short, never zero */
	/* The first byte is not zero, so these are the integer's minimal
	 * content octets, and the hex form starts with a non-zero digit. */
	if ((ai = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_STRING_set(ai, b, sizeof(b))) {
		ASN1_INTEGER_free(ai);
		return CK_E_NOMEM;
	}
	(void)ck_serial_octets_hex(b, sizeof(b), hex);
	*out = ai;
	return 0;
}

int
ck_serial_to_hex(const ASN1_INTEGER *ai, char hex[CK_SERIAL_HEX_MAX])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	int r;

	if (bn == NULL)
		return CK_E_NOMEM;
	r = bn_to_hex(bn, hex);
	BN_free(bn);
	return r;
}

int
ck_serial_normalize(const char *in, char out[CK_SERIAL_HEX_MAX])
{
	char clean[CK_SERIAL_HEX_MAX];
	size_t n = 0;
	const char *p = in;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	for (; *p != '\0'; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)*p))
			return ck_err_set(CK_E_PARSE, "serial '%s' is not "
			    "hexadecimal", in);
		if (n == 0 && *p == '0')
			continue;	/* leading zero */
		if (n + 1 >= sizeof(clean))
			return ck_err_set(CK_E_PARSE, "serial '%s' is too "
			    "long", in);
		clean[n++] = (char)toupper((unsigned char)*p);
	}
	if (n == 0)
		return ck_err_set(CK_E_PARSE, "serial '%s' is empty or zero",
		    in);
	clean[n] = '\0';
	memcpy(out, clean, n + 1);
	return 0;
}

int
ck_serial_from_hex(const char *hex, ASN1_INTEGER **out)
{
	char norm[CK_SERIAL_HEX_MAX];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai;
	int r;

	if ((r = ck_serial_normalize(hex, norm)) != 0)
		return r;
	if (BN_hex2bn(&bn, norm) == 0)
		return ck_err_set(CK_E_PARSE, "bad serial '%s'", hex);
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (ai == NULL)
		return CK_E_NOMEM;
	*out = ai;
	return 0;
}
