/*
 * test_httpc.c - the HTTP response parser of the CLI's remote mode
 * (src/proto/httpc.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "proto/httpc.h"

static int
parse(const char *s, struct httpc_response *hr)
{
	return httpc_parse_response((const unsigned char *)s, strlen(s), hr);
}

static void
test_good(void **state)
{
	struct httpc_response hr;
	const char *s = "HTTP/1.1 403 Forbidden\r\nContent-Type: "
	    "application/problem+json\r\ncontent-length:  4 \r\n\r\n{\"a\"";

	(void)state;
	assert_int_equal(parse(s, &hr), 0);
	assert_int_equal(hr.status, 403);
	assert_string_equal(hr.content_type, "application/problem+json");
	assert_int_equal(hr.body_len, 4);
	assert_memory_equal(s + hr.body_off, "{\"a\"", 4);
	/* Without a length: everything to the end. */
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\nabc", &hr), 0);
	assert_int_equal(hr.status, 200);
	assert_int_equal(hr.body_len, 3);
	assert_string_equal(hr.content_type, "");
	/* No reason phrase. */
	assert_int_equal(parse("HTTP/1.1 204\r\n\r\n", &hr), 0);
	assert_int_equal(hr.status, 204);
	assert_int_equal(hr.body_len, 0);
}

static void
test_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"HTTP/1.1\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 099 Low\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ntoo long",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1"
		    "\r\n\r\nx"),
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: unterminated",
	};
	struct httpc_response hr;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_err_clear();
		if (parse(bad[i], &hr) != CK_E_PARSE)
			fail_msg("accepted: %s", bad[i]);
		assert_true(ck_err_msg()[0] != '\0');
	}
}

static void
test_header_limit(void **state)
{
	struct httpc_response hr;
	char buf[HTTPC_HEADERS_MAX + 64];
	size_t n;

	(void)state;
	n = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nX: ");
	memset(buf + n, 'a', sizeof(buf) - n - 5);
	memcpy(buf + sizeof(buf) - 5, "\r\n\r\n", 5);
	assert_int_equal(httpc_parse_response((unsigned char *)buf,
	    sizeof(buf) - 1, &hr), CK_E_PARSE);
	assert_non_null(strstr(ck_err_msg(), "do not end"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_header_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
