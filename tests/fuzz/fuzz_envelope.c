/*
 * fuzz_envelope.c - the outer BER parser of a backup set
 * (ck_archive_envelope_check in src/backup/archive.c): ContentInfo,
 * EnvelopedData header, the encrypted content as one primitive or many
 * chunked OCTET STRINGs, the end-of-contents octets, over arbitrary bytes.
 *
 * Invariants: the content reported fits in the input; the re-encoded
 * header (what OpenSSL is given) is bounded by the input, is itself
 * accepted by the parser with an empty content, and re-encodes to the
 * same bytes; OpenSSL's d2i may refuse it but must not crash.
 *
 * Seeds (corpus/envelope/): sets made by the writer and by
 * 'openssl cms -encrypt' (DER and -stream BER; RSA, EC and both
 * recipients) over small contents, and a few damaged ones.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>

#include "backup/archive.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *hdr = NULL, *hdr2 = NULL;
	const unsigned char *p;
	size_t hlen = 0, hlen2 = 0;
	uint64_t clen = 0, clen2 = 1;
	CMS_ContentInfo *cms;

	if (ck_archive_envelope_check(data, size, &hdr, &hlen, &clen) != 0)
		return 0;
	FUZZ_CHECK(clen <= size);
	FUZZ_CHECK(hdr != NULL && hlen <= size + 64);
	FUZZ_CHECK(ck_archive_envelope_check(hdr, hlen, &hdr2, &hlen2,
	    &clen2) == 0);
	FUZZ_CHECK(clen2 == 0);
	FUZZ_CHECK(hlen2 == hlen && memcmp(hdr, hdr2, hlen) == 0);
	p = hdr;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)hlen);
	CMS_ContentInfo_free(cms);
	free(hdr);
	free(hdr2);
	return 0;
}
