/*
 * fuzz_httpc.c - the CLI's parser of an HTTP response from a remote
 * certkeepd (src/proto/httpc.c) on arbitrary bytes.
 *
 * Invariants: a parsed response has a status from 100 to 599, its body
 * lies within the input and ends where the input ends, and its content
 * type is a NUL-terminated string; a refused one says why.
 *
 * Seeds (corpus/httpc/): an admin reply, a problem document, a response
 * without Content-Length, and broken ones (no status line, a bad status,
 * a short body, chunked, an endless header section, a bad length).
 */
#include <string.h>

#include "common/err.h"
#include "proto/httpc.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpc_response hr;

	ck_err_clear();
	if (httpc_parse_response(data, size, &hr) != 0) {
		FUZZ_CHECK(ck_err_msg()[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(hr.status >= 100 && hr.status <= 599);
	FUZZ_CHECK(hr.body_off <= size);
	FUZZ_CHECK(hr.body_off + hr.body_len == size);
	FUZZ_CHECK(strlen(hr.content_type) < sizeof(hr.content_type));
	return 0;
}
