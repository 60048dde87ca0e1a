/*
 * rest.h - the REST API's request parsing, apart from HTTP so that it can
 * be fuzzed on its own.
 */
#ifndef CK_PROTO_REST_H
#define CK_PROTO_REST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A parsed POST /api/v1/certificates body. */
struct rest_issue_req {
	char profile[64];
	const unsigned char *csr;	/* points into json */
	size_t csr_len;
	uint32_t days;			/* 0: the profile's maximum */
	json_t *json;
	unsigned char *csr_buf;		/* or csr points here */
};

/*
 * Parse {"profile": "...", "csr": "PEM", "days": N?} (duplicate keys
 * refused). 0, or CK_E_PARSE with a reason for the client in `err`.
 * Free with rest_issue_req_clear() in both cases.
 */
int rest_parse_issue(const unsigned char *body, size_t len,
    struct rest_issue_req *out, char *err, size_t errsz);

void rest_issue_req_clear(struct rest_issue_req *r);

/* rest_parse_issue() reads the common shape of the body (the three known
 * members, plain strings and a small integer) with a small reader of its
 * own and leaves anything else to jansson; this is jansson's reading
 * alone, which gives the same result, for the tests and the fuzzer. */
int rest_parse_issue_json(const unsigned char *body, size_t len,
    struct rest_issue_req *out, char *err, size_t errsz);

#endif
