/*
 * fuzz_signer_msg.c - the signer process's message decoder
 * (signer_msg_header, signer_msg_decode), on a header and body as they
 * come from the socket. What decodes re-encodes to exactly the same
 * bytes (no two encodings of one message), and its text fields are
 * NUL-terminated within their arrays.
 */
#include <string.h>

#include "signer/signer_msg.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct signer_msg m;
	struct signer_buf b = { 0 };
	unsigned type;
	uint32_t id, len;
	uint32_t i;

	if (size < SIGNER_MSG_HDR ||
	    signer_msg_header(data, &type, &id, &len) != 0)
		return 0;
	FUZZ_CHECK(len <= signer_msg_max_body(type));
	if (len != size - SIGNER_MSG_HDR)
		return 0;
	if (signer_msg_decode(type, id, data + SIGNER_MSG_HDR, len, &m) != 0) {
		signer_msg_clear(&m);
		return 0;
	}
	if (type == SIGNER_MSG_CERT_PREPARE || type == SIGNER_MSG_CERT_ISSUE) {
		FUZZ_CHECK(memchr(m.u.prepare->profile, 0,
		    sizeof(m.u.prepare->profile)) != NULL);
		FUZZ_CHECK(m.u.prepare->nsans <= SIGNER_SAN_MAX);
		for (i = 0; i < m.u.prepare->nsans; i++)
			FUZZ_CHECK(m.u.prepare->sans[i].value[0] != '\0');
	}
	FUZZ_CHECK(signer_msg_encode(&m, &b) == 0);
	FUZZ_CHECK(b.len == size && memcmp(b.p, data, size) == 0);
	signer_buf_free(&b);
	signer_msg_clear(&m);
	return 0;
}
