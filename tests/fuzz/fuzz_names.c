/*
 * fuzz_names.c - the small text parsers of names, serials and times:
 * ck_ip_range_parse, ck_ip_parse, ck_dns_name_valid, ck_email_valid,
 * ck_serial_normalize (and ck_serial_from_hex) and ck_time_parse, each on
 * the input as one NUL-terminated string of bounded length (the input
 * stops at its first NUL byte or at FUZZ_NAMES_MAX bytes).
 */
#include <string.h>

#include <openssl/asn1.h>

#include "common/timeutil.h"
#include "x509/names.h"
#include "x509/serial.h"

#include "fuzz.h"

#define FUZZ_NAMES_MAX 1024

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[FUZZ_NAMES_MAX + 1];
	char hex[CK_SERIAL_HEX_MAX], hex2[CK_SERIAL_HEX_MAX];
	unsigned char ip[16];
	struct ck_ip_range range;
	ASN1_INTEGER *ai = NULL;
	char tb[32];
	int64_t t, t2;
	int len;

	if (size > FUZZ_NAMES_MAX)
		size = FUZZ_NAMES_MAX;
	memcpy(s, data, size);
	s[size] = '\0';

	if (ck_ip_range_parse(s, &range) == 0) {
		FUZZ_CHECK(range.len == 4 || range.len == 16);
		FUZZ_CHECK(range.prefix >= 0 && range.prefix <= range.len * 8);
		FUZZ_CHECK(ck_ip_range_contains(&range, range.addr,
		    range.len) == 1);
	}
	if ((len = ck_ip_parse(s, ip)) != 0)
		FUZZ_CHECK(len == 4 || len == 16);
	if (ck_dns_name_valid(s))
		FUZZ_CHECK(strlen(s) <= 253);
	if (ck_email_valid(s))
		FUZZ_CHECK(strchr(s, '@') != NULL);
	if (ck_serial_normalize(s, hex) == 0) {
		FUZZ_CHECK(hex[0] != '\0' && hex[0] != '0');
		FUZZ_CHECK(ck_serial_normalize(hex, hex2) == 0);
		FUZZ_CHECK(strcmp(hex, hex2) == 0);
		if (ck_serial_from_hex(s, &ai) == 0) {
			FUZZ_CHECK(ck_serial_to_hex(ai, hex2) == 0);
			/* What is stored (to_hex) must be what a user's
			 * input normalises to, or revoke/show cannot find it
			 * ("01" vs "1" once did). */
			FUZZ_CHECK(strcmp(hex, hex2) == 0);
			ASN1_INTEGER_free(ai);
		}
	}
	if (ck_time_parse(s, &t) == 0) {
		FUZZ_CHECK(t >= 0);
		/* What ck_time_format() prints parses back to the same time
		 * (a leap second at the end of 9999 prints as year 10000). */
		ck_time_format(t, tb, sizeof(tb));
		if (strlen(tb) == 20) {
			FUZZ_CHECK(ck_time_parse(tb, &t2) == 0);
			FUZZ_CHECK(t2 == t);
		}
	}
	return 0;
}
