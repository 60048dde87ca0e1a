/*
 * fuzz_share.c - the key share file parser, ck_keyshare_parse().
 *
 * Two kinds of input:
 *  - anything not starting with a NUL byte is a share file as is;
 *  - a NUL byte, then a binary share body without its checksum: the
 *    target appends the SHA-256 and wraps it in a valid text header, so
 *    that the body parser behind the checksum is reached too (a fuzzer
 *    would hardly ever hit a correct SHA-256 by itself).
 * Whatever parses must encode again, and the encoding must parse to the
 * same encoding.
 *
 * Seeds (corpus/share/): share files written by `certkeep key backup
 * --shares` for throwaway test keys (RSA, P-256, Ed25519), variants of
 * them (CR LF, cut short, one character changed, text after the end), and
 * their bodies in the second form.
 */
#include <string.h>

#include <openssl/evp.h>

#include "backup/keybackup.h"

#include "fuzz.h"

#define FUZZ_SHARE_MAX (64 * 1024)

static const char hdr[] =
    "-----BEGIN CERTKEEP KEY SHARE-----\n"
    "Custodian: alice\n"
    "CA: fuzz\n"
    "Key-Fingerprint: "
    "0000000000000000000000000000000000000000000000000000000000000000\n"
    "Set: 00000000000000000000000000000000\n"
    "Share: 1 of 2\n"
    "Threshold: 2\n"
    "Created: 2026-01-01T00:00:00Z\n"
    "\n";
static const char ftr[] = "-----END CERTKEEP KEY SHARE-----\n";

/* NUL, body: a whole share text around body + SHA-256(body). */
static unsigned char *
wrap_body(const uint8_t *body, size_t len, size_t *outlen)
{
	unsigned char *raw, *b64, *out;
	unsigned int mdlen = 32;
	size_t n, o, i, chunk;

	if (len > FUZZ_SHARE_MAX)
		return NULL;
	raw = malloc(len + 32);
	b64 = malloc(4 * ((len + 32 + 2) / 3) + 1);
	out = malloc(sizeof(hdr) + sizeof(ftr) + 2 * (4 * ((len + 34) / 3))
	    + 8);
	FUZZ_CHECK(raw != NULL && b64 != NULL && out != NULL);
	if (len > 0)
		memcpy(raw, body, len);
	FUZZ_CHECK(EVP_Digest(raw, len, raw + len, &mdlen, EVP_sha256(),
	    NULL) == 1);
	n = (size_t)EVP_EncodeBlock(b64, raw, (int)(len + 32));
	o = sizeof(hdr) - 1;
	memcpy(out, hdr, o);
	for (i = 0; i < n; i += chunk) {
		chunk = n - i < 64 ? n - i : 64;
		memcpy(out + o, b64 + i, chunk);
		o += chunk;
		out[o++] = '\n';
	}
	memcpy(out + o, ftr, sizeof(ftr) - 1);
	o += sizeof(ftr) - 1;
	free(raw);
	free(b64);
	*outlen = o;
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ck_keyshare *s = NULL, *s2 = NULL;
	unsigned char *wrapped = NULL;
	const unsigned char *in = data;
	char *t1 = NULL, *t2 = NULL;
	size_t len = size, l1 = 0, l2 = 0;

	if (size > 0 && data[0] == 0) {
		if ((wrapped = wrap_body(data + 1, size - 1, &len)) == NULL)
			return 0;
		in = wrapped;
	}
	if (ck_keyshare_parse(in, len, &s) == 0) {
		FUZZ_CHECK(s != NULL);
		FUZZ_CHECK(ck_keyshare_encode(s, &t1, &l1) == 0);
		FUZZ_CHECK(strlen(t1) == l1);
		FUZZ_CHECK(ck_keyshare_parse((unsigned char *)t1, l1,
		    &s2) == 0);
		FUZZ_CHECK(ck_keyshare_encode(s2, &t2, &l2) == 0);
		FUZZ_CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0);
	}
	ck_keyshare_free(s);
	ck_keyshare_free(s2);
	free(t1);
	free(t2);
	free(wrapped);
	return 0;
}
