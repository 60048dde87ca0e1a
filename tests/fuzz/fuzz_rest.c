/*
 * fuzz_rest - the REST API's JSON request body (POST /api/v1/certificates)
 * and the CSR inside it. The body's own reader and jansson's must agree
 * on every body the former accepts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/rest.h"
#include "x509/csr.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rest_issue_req req, ref;
	struct ck_csr *csr = NULL;
	char err[256], err2[256];
	int r, r2;

	r = rest_parse_issue(data, size, &req, err, sizeof(err));
	r2 = rest_parse_issue_json(data, size, &ref, err2, sizeof(err2));
	if (r != r2)
		abort();
	if (r == 0 && (strcmp(req.profile, ref.profile) != 0 ||
	    req.days != ref.days || req.csr_len != ref.csr_len ||
	    memcmp(req.csr, ref.csr, req.csr_len) != 0))
		abort();
	if (r != 0 && strcmp(err, err2) != 0)
		abort();
	if (r == 0 && ck_csr_parse(req.csr, req.csr_len, &csr) == 0)
		ck_csr_free(csr);
	rest_issue_req_clear(&req);
	rest_issue_req_clear(&ref);
	return 0;
}
