/*
 * fuzz_unlock_request.c - what a locked certkeepd reads from its admin
 * socket (src/daemon/unlockd.c): the framing and JSON decoder
 * (adminsock_decode), the unlock request's checks
 * (unlockd_request_parse), then the share it carries through the
 * collector (unlock_collector_add: the share parser and every check of
 * set, key, purpose, threshold and duplicates).
 *
 * The collector expects the set and key the share names (so that a good
 * share gets past the set checks to the duplicate check); the share is
 * offered twice and must count at most once, and then once more to a
 * collector of another set, which must refuse it. When the share text
 * holds a second share after the first END line (certkeepd would refuse
 * that as one share; the target splits it there), the second is offered
 * too, and with M in, the rebuild and its wipe run.
 *
 * Seeds (corpus/unlock_request/): framed unlock requests with shares of a
 * throwaway 2-of-3 set, unlock-status, other actions, extra members,
 * wrong types, bad lengths.
 */
#include <string.h>

#include <jansson.h>

#include "backup/keybackup.h"
#include "common/err.h"
#include "daemon/adminsock.h"
#include "daemon/unlockd.h"
#include "keystore/unlock.h"

#include "fuzz.h"

#define END_LINE "-----END CERTKEEP KEY SHARE-----\n"

/* Offer TEXT to C; the result code. */
static int
offer(struct unlock_collector *c, const char *text, size_t len)
{
	return unlock_collector_add(c, (const unsigned char *)text, len,
	    "fuzz");
}

static void
exercise(const char *text, size_t len)
{
	struct ck_keyshare *s = NULL;
	struct unlock_collector *c = NULL, *other = NULL;
	struct ck_secret *pw = NULL;
	const char *end;
	char set[33], fp[65];
	size_t first = len;
	unsigned have;
	int r1;

	end = memmem(text, len, END_LINE, strlen(END_LINE));
	if (end != NULL)
		first = (size_t)(end - text) + strlen(END_LINE);
	if (ck_keyshare_parse((const unsigned char *)text, first, &s) != 0) {
		/* Not a share: a collector must refuse it all the same. */
		if (unlock_collector_new(2, 3, "00000000000000000000000000000000",
		    "00000000000000000000000000000000000000000000000000000000"
		    "00000000", &c) == 0) {
			FUZZ_CHECK(offer(c, text, len) != 0);
			FUZZ_CHECK(unlock_collector_have(c) == 0);
		}
		unlock_collector_free(c);
		return;
	}
	ck_keyshare_set_hex(s, set);
	ck_keyshare_fp_hex(s, fp);
	if (unlock_collector_new(ck_keyshare_threshold(s),
	    ck_keyshare_count(s), set, fp, &c) != 0) {
		ck_keyshare_free(s);
		return;
	}
	r1 = offer(c, text, first);
	FUZZ_CHECK((r1 == 0) == (ck_keyshare_purpose(s) == CK_SHARE_UNLOCK));
	have = unlock_collector_have(c);
	FUZZ_CHECK(offer(c, text, first) != 0);
	FUZZ_CHECK(unlock_collector_have(c) == have);
	if (r1 == 0 && first < len) {
		if (offer(c, text + first, len - first) == 0 &&
		    unlock_collector_have(c) == unlock_collector_need(c)) {
			if (unlock_collector_finish(c, &pw) == 0)
				FUZZ_CHECK(pw->len == 2 * UNLOCK_SECRET_LEN);
			FUZZ_CHECK(!unlock_collector_holds_values(c));
		}
	}
	set[0] = set[0] == '0' ? '1' : '0';
	if (unlock_collector_new(ck_keyshare_threshold(s),
	    ck_keyshare_count(s), set, fp, &other) == 0) {
		FUZZ_CHECK(offer(other, text, first) != 0);
		FUZZ_CHECK(unlock_collector_have(other) == 0);
	}
	ck_secret_free(pw);
	unlock_collector_free(other);
	unlock_collector_free(c);
	ck_keyshare_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = NULL;
	const char *op, *share;
	size_t len;

	if (adminsock_decode(data, size, &req) != 0) {
		FUZZ_CHECK(req == NULL);
		return 0;
	}
	FUZZ_CHECK(json_is_object(req));
	if (unlockd_request_parse(req, &op, &share, &len) == 0) {
		FUZZ_CHECK(strcmp(op, "unlock") == 0 ||
		    strcmp(op, "unlock-status") == 0);
		if (strcmp(op, "unlock") == 0) {
			FUZZ_CHECK(share != NULL && len > 0 &&
			    len <= UNLOCK_SHARE_MAX);
			exercise(share, len);
		}
	}
	json_decref(req);
	return 0;
}
