/*
 * fuzz_custody.c - custody records (src/backup/custody.c) on arbitrary
 * bytes: as the signed JSON document (ck_custody_parse()) and as a whole
 * .custody file (ck_custody_check_buf(), CMS SignedData). For the second,
 * the certificates the input carries are taken as the trusted ones, so
 * that a validly signed input reaches the document parser whoever signed
 * it; no store is involved.
 *
 * Invariants: a document that parses has 1 or more entries in increasing
 * id order, each whose hash is the hash of its fields, and a report that
 * agrees; a file that checks has a report with entries and an artefact.
 *
 * Seeds (corpus/custody/): *.custody files written by
 * `certkeep custody add --export` for CAs with EC P-256 and RSA keys,
 * their JSON content (`openssl cms -verify -noverify -inform DER -in F
 * -out F.json`), and hand-edited variants of it (unknown members,
 * duplicates, bad hashes, ids out of order, truncated).
 */
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "backup/custody.h"
#include "common/err.h"

#include "fuzz.h"

static void
check_document(const uint8_t *data, size_t size)
{
	struct ck_custody_report rep;
	struct store_custody *v = NULL;
	unsigned char h[32];
	size_t n = 0, i;

	if (ck_custody_parse((const char *)data, size, &v, &n, &rep) != 0) {
		FUZZ_CHECK(v == NULL);
		return;
	}
	FUZZ_CHECK(v != NULL && n >= 1);
	FUZZ_CHECK(rep.entries == (int64_t)n);
	FUZZ_CHECK(rep.last_id == v[n - 1].id);
	FUZZ_CHECK(strlen(rep.artefact) == 64);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(v[i].id >= 1);
		FUZZ_CHECK(i == 0 || v[i].id > v[i - 1].id);
		FUZZ_CHECK(strcmp(v[i].artefact, rep.artefact) == 0);
		FUZZ_CHECK(ck_custody_event_parse(v[i].event) >= 0);
		FUZZ_CHECK(ck_custody_kind_parse(v[i].kind) >= 0);
		ck_custody_entry_hash(&v[i], h);
		FUZZ_CHECK(memcmp(h, v[i].hash, 32) == 0);
	}
	ck_custody_entries_free(v, n);
}

static void
check_file(const uint8_t *data, size_t size)
{
	struct ck_custody_report rep;
	const unsigned char *p = data;
	CMS_ContentInfo *cms;
	STACK_OF(X509) *certs = NULL;

	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)size)) != NULL &&
	    OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed)
		certs = CMS_get1_certs(cms);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	if (ck_custody_check_buf(data, size, certs, NULL, &rep) == 0) {
		FUZZ_CHECK(certs != NULL);
		FUZZ_CHECK(rep.entries >= 1);
		FUZZ_CHECK(strlen(rep.artefact) == 64);
		FUZZ_CHECK(ck_custody_kind_parse(rep.kind) >= 0);
	}
	sk_X509_pop_free(certs, X509_free);
	ck_err_clear();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_document(data, size);
	check_file(data, size);
	return 0;
}
