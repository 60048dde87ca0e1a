/*
 * fuzz_jws - an ACME request body (src/proto/jws): the flattened JWS
 * parser and, for a request that carries its key, the signature check;
 * then what a server reads inside the payload: an external account
 * binding (checked with a fixed HMAC key) or a key-change inner JWS.
 * The same input is also tried as a protected header (wrapped into a
 * body here, as mutations of base64url inside a body rarely make JSON)
 * and as a JWK on its own.
 *
 * Invariants: a refusal leaves nothing behind and is one of the codes;
 * a request parses either as an outer one (with a nonce) or as an inner
 * one (without), never both; a parsed key's canonical JWK parses back to
 * the same key with the same thumbprint; base64url decoding accepts only
 * texts that encode back to themselves.
 *
 * Seeds: CK_JWS_CORPUS_DIR=tests/fuzz/corpus/jws build/tests/unit/test_jws
 * writes valid requests of each algorithm, malformed ones, and protected
 * headers (hdr-*) for the second reading.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "proto/jws.h"

#define FUZZ_MAX_BODY 65536
/* The seeds' binding is made with this key (tests/unit/test_jws.c). */
#define EAB_KEY "certkeep-fuzz-eab-hmac-key-0123456789"

static int
is_code(int rc)
{
	return rc <= 0 && rc > CK_JWS_E__MAX;
}

static void
check_key(EVP_PKEY *pk)
{
	char tp[CK_JWK_THUMBPRINT_LEN + 1], tp2[CK_JWK_THUMBPRINT_LEN + 1];
	EVP_PKEY *back = NULL;
	char *canon = NULL;

	FUZZ_CHECK(ck_jwk_canonical(pk, &canon) == 0);
	FUZZ_CHECK(ck_jwk_parse_text(canon, strlen(canon), &back) == 0);
	FUZZ_CHECK(ck_jwk_equal(pk, back));
	FUZZ_CHECK(ck_jwk_thumbprint(pk, tp) == 0);
	FUZZ_CHECK(ck_jwk_thumbprint(back, tp2) == 0);
	FUZZ_CHECK(strcmp(tp, tp2) == 0);
	FUZZ_CHECK(strlen(tp) == CK_JWK_THUMBPRINT_LEN);
	EVP_PKEY_free(back);
	free(canon);
}

static void
check_parsed(const struct ck_jws *j, int inner)
{
	int rc;

	FUZZ_CHECK(j->url != NULL && j->url[0] != '\0');
	FUZZ_CHECK((j->kid == NULL) != (j->jwk == NULL));
	FUZZ_CHECK(inner ? j->nonce == NULL : j->nonce != NULL);
	FUZZ_CHECK(strlen(j->signing_input) == j->signing_input_len);
	FUZZ_CHECK(j->payload != NULL && j->payload[j->payload_len] == 0);
	FUZZ_CHECK(j->sig != NULL && j->sig_len > 0);
	if (j->jwk != NULL) {
		rc = ck_jws_verify(j, j->jwk);
		FUZZ_CHECK(rc == 0 || rc == CK_JWS_E_BADALG ||
		    rc == CK_JWS_E_BADSIG);
		check_key(j->jwk);
	}
}

/* What the newAccount and keyChange handlers would do with the payload. */
static void
payload(const struct ck_jws *outer)
{
	struct ck_jws *eab = NULL, *inner = NULL;
	json_t *pl, *b;
	int rc;

	if (outer->payload_len == 0)
		return;
	pl = json_loadb((const char *)outer->payload, outer->payload_len,
	    JSON_REJECT_DUPLICATES, NULL);
	if (pl != NULL && (b = json_object_get(pl,
	    "externalAccountBinding")) != NULL) {
		rc = ck_jws_eab_parse(b, &eab);
		FUZZ_CHECK(is_code(rc) && (rc == 0) == (eab != NULL));
		if (rc == 0) {
			FUZZ_CHECK(eab->kid != NULL && eab->jwk == NULL &&
			    eab->nonce == NULL && eab->payload_len > 0);
			rc = ck_jws_eab_verify(eab, outer,
			    (const unsigned char *)EAB_KEY, strlen(EAB_KEY));
			FUZZ_CHECK(rc == 0 || rc == CK_JWS_E_BADSIG ||
			    rc == CK_JWS_E_MALFORMED);
			FUZZ_CHECK(rc != 0 || outer->jwk != NULL);
		}
		ck_jws_free(eab);
	}
	json_decref(pl);
	rc = ck_jws_parse(outer->payload, outer->payload_len, FUZZ_MAX_BODY,
	    CK_JWS_INNER, &inner);
	FUZZ_CHECK(is_code(rc) && (rc == 0) == (inner != NULL));
	if (rc == 0)
		check_parsed(inner, 1);
	ck_jws_free(inner);
}

static void
b64url_round_trip(const uint8_t *data, size_t size)
{
	unsigned char *bin = NULL;
	size_t len = 0;
	char *text;

	if (size > 4096 || ck_jws_b64url_decode((const char *)data, size, "in",
	    &bin, &len) != 0) {
		FUZZ_CHECK(bin == NULL);
		return;
	}
	FUZZ_CHECK(ck_jws_b64url_len(len) == size);
	text = malloc(size + 1);
	FUZZ_CHECK(text != NULL);
	ck_jws_b64url_encode(bin, len, text);
	FUZZ_CHECK(memcmp(text, data, size) == 0 && text[size] == '\0');
	free(text);
	free(bin);
}

/* Both readings of one body; returns nothing, checks everything. */
static void
body(const uint8_t *data, size_t size)
{
	struct ck_jws *j = NULL, *in = NULL;
	int rc, rc_inner;

	rc = ck_jws_parse(data, size, FUZZ_MAX_BODY, 0, &j);
	FUZZ_CHECK(is_code(rc) && (rc == 0) == (j != NULL));
	rc_inner = ck_jws_parse(data, size, FUZZ_MAX_BODY, CK_JWS_INNER, &in);
	FUZZ_CHECK(is_code(rc_inner) && (rc_inner == 0) == (in != NULL));
	/* "nonce" is required in one and refused in the other. */
	FUZZ_CHECK(rc != 0 || rc_inner != 0);
	if (rc == 0) {
		check_parsed(j, 0);
		payload(j);
	}
	if (rc_inner == 0)
		check_parsed(in, 1);
	ck_jws_free(j);
	ck_jws_free(in);
}

/* The input as the protected header of a body with a small payload. */
static void
header(const uint8_t *data, size_t size)
{
	static const char pre[] = "{\"protected\":\"";
	static const char post[] = "\",\"payload\":\"e30\","
	    "\"signature\":\"AAAA\"}";
	size_t n;
	char *b;

	if (size == 0 || size > FUZZ_MAX_BODY / 2)
		return;
	n = sizeof(pre) - 1 + ck_jws_b64url_len(size) + sizeof(post) - 1;
	b = malloc(n + 1);
	FUZZ_CHECK(b != NULL);
	memcpy(b, pre, sizeof(pre) - 1);
	ck_jws_b64url_encode(data, size, b + sizeof(pre) - 1);
	memcpy(b + sizeof(pre) - 1 + ck_jws_b64url_len(size), post,
	    sizeof(post));
	FUZZ_CHECK(strlen(b) == n);
	body((const uint8_t *)b, n);
	free(b);
}

static void
jwk(const uint8_t *data, size_t size)
{
	EVP_PKEY *pk = NULL;
	int rc;

	rc = ck_jwk_parse_text((const char *)data, size, &pk);
	FUZZ_CHECK(is_code(rc) && (rc == 0) == (pk != NULL));
	if (rc == 0)
		check_key(pk);
	EVP_PKEY_free(pk);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	body(data, size);
	header(data, size);
	jwk(data, size);
	b64url_round_trip(data, size);
	return 0;
}
