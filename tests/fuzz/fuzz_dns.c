/*
 * fuzz_dns - DNS responses (untrusted, from the network) through
 * dns_parse_response().
 *
 * The expected id is the message's own and the expected name its own
 * question when that is a plain, askable name (so that the fuzzer gets
 * past the question check), else "example.com"; every record type the
 * client asks for is tried. Whatever the input, a parse that succeeds
 * leaves an answer whose records are in bounds and of their type's form,
 * as the accessors read them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz.h"
#include "proto/dns.h"

/* The question name of msg as text, if it is uncompressed LDH/_ labels. */
static void
question_name(const uint8_t *msg, size_t len, char *out, size_t outsz)
{
	size_t p = 12, o = 0;

	snprintf(out, outsz, "example.com");
	if (len < 13)
		return;
	while (p < len && msg[p] != 0) {
		size_t l = msg[p++];

		if (l > 63 || p + l > len || o + l + 2 >= outsz)
			goto fallback;
		if (o > 0)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++, p++) {
			uint8_t c = msg[p];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_'))
				goto fallback;
			out[o++] = (char)c;
		}
	}
	if (o == 0)
		goto fallback;
	out[o] = '\0';
	return;
fallback:
	snprintf(out, outsz, "example.com");
}

static void
check_answer(const struct dns_answer *a, uint16_t qtype)
{
	unsigned char ip[16];
	const unsigned char *s;
	struct dns_caa caa;
	size_t pos, sl, total;

	FUZZ_CHECK(a->nrr <= DNS_MAX_RR);
	FUZZ_CHECK(a->datalen <= DNS_DATA_MAX);
	FUZZ_CHECK(a->ncname <= DNS_MAX_CNAME);
	FUZZ_CHECK(memchr(a->name, '\0', sizeof(a->name)) != NULL);
	FUZZ_CHECK(a->wnamelen >= 1 && a->wnamelen <= DNS_NAME_WIRE_MAX);
	FUZZ_CHECK(a->wname[a->wnamelen - 1] == 0);
	if (a->truncated || (a->rcode != DNS_RCODE_NOERROR &&
	    a->rcode != DNS_RCODE_NXDOMAIN))
		FUZZ_CHECK(a->nrr == 0);
	if (a->rcode == DNS_RCODE_NXDOMAIN)
		FUZZ_CHECK(a->nrr == 0);
	for (size_t i = 0; i < a->nrr; i++) {
		FUZZ_CHECK(a->rr[i].type == qtype);
		FUZZ_CHECK((size_t)a->rr[i].off + a->rr[i].len <= a->datalen);
		switch (qtype) {
		case DNS_T_A:
			FUZZ_CHECK(dns_rr_addr(a, i, ip) == 4);
			break;
		case DNS_T_AAAA:
			FUZZ_CHECK(dns_rr_addr(a, i, ip) == 16);
			break;
		case DNS_T_TXT:
			pos = 0;
			total = 0;
			while (dns_rr_txt_next(a, i, &pos, &s, &sl))
				total += 1 + sl;
			FUZZ_CHECK(total == a->rr[i].len);
			break;
		case DNS_T_CAA:
			FUZZ_CHECK(dns_rr_caa(a, i, &caa) == 0);
			FUZZ_CHECK(strlen(caa.tag) >= 1 &&
			    strlen(caa.tag) <= 15);
			FUZZ_CHECK(caa.value + caa.vlen <=
			    a->data + a->datalen);
			break;
		default:
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_TXT,
	    DNS_T_CAA, DNS_T_CNAME };
	struct dns_answer *a;
	char qname[300];
	uint16_t id;
	int r;

	if ((a = malloc(sizeof(*a))) == NULL)
		return 0;
	id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	question_name(data, size, qname, sizeof(qname));
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		r = dns_parse_response(data, size, qname, types[t], id, a);
		FUZZ_CHECK(r == 0 || r == CK_E_PARSE || r == CK_E_NOTFOUND ||
		    r == CK_E_TOOBIG || r == CK_E_NOMEM || r == CK_E_INVAL);
		if (r == 0)
			check_answer(a, types[t]);
		else
			FUZZ_CHECK(a->nrr == 0);
	}
	/* Another id is never taken. */
	r = dns_parse_response(data, size, qname, DNS_T_A, (uint16_t)(id + 1),
	    a);
	FUZZ_CHECK(r != 0);
	free(a);
	return 0;
}
