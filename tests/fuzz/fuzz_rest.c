/*
 * fuzz_rest - the REST API's JSON request body (POST /api/v1/certificates)
 * and the CSR inside it.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "proto/rest.h"
#include "x509/csr.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rest_issue_req req;
	struct ck_csr *csr = NULL;
	char err[256];

	if (rest_parse_issue(data, size, &req, err, sizeof(err)) == 0 &&
	    ck_csr_parse(req.csr, req.csr_len, &csr) == 0)
		ck_csr_free(csr);
	rest_issue_req_clear(&req);
	return 0;
}
