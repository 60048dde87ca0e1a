/*
 * test_signer_msg.c - src/signer/signer_msg.c: every message type encodes
 * and decodes back to the same fields and the same bytes; headers with an
 * unknown type, flags, or a length over the type's maximum are refused;
 * a body one byte short or one byte long is refused; field limits hold on
 * both sides.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "signer/signer_msg.h"

/* Encode, check the header, decode the body, re-encode: same bytes. */
static void
roundtrip(const struct signer_msg *m, struct signer_msg *out,
    struct signer_buf *b)
{
	struct signer_buf b2 = { 0 };
	unsigned type;
	uint32_t id, len;

	assert_int_equal(signer_msg_encode(m, b), 0);
	assert_int_equal(signer_msg_header(b->p, &type, &id, &len), 0);
	assert_int_equal(type, m->type);
	assert_int_equal(id, m->id);
	assert_int_equal(len, b->len - SIGNER_MSG_HDR);
	assert_int_equal(signer_msg_decode(type, id, b->p + SIGNER_MSG_HDR,
	    len, out), 0);
	assert_int_equal(signer_msg_encode(out, &b2), 0);
	assert_int_equal(b2.len, b->len);
	assert_memory_equal(b2.p, b->p, b->len);
	signer_buf_free(&b2);
	/* One byte short, one byte long: refused. */
	{
		struct signer_msg x;
		unsigned char *longer = malloc(len + 1);
		assert_non_null(longer);
		if (len > 0) {
			assert_int_equal(signer_msg_decode(type, id,
			    b->p + SIGNER_MSG_HDR, len - 1, &x), CK_E_PARSE);
			signer_msg_clear(&x);
		}
		memcpy(longer, b->p + SIGNER_MSG_HDR, len);
		longer[len] = 0;
		assert_int_equal(signer_msg_decode(type, id, longer, len + 1,
		    &x), CK_E_PARSE);
		signer_msg_clear(&x);
		free(longer);
	}
}

/* `m` encodes (the encoder checks lengths, not values) and the decoder
 * refuses it. */
static void
assert_decode_refused(const struct signer_msg *m, struct signer_buf *b)
{
	struct signer_msg d;

	assert_int_equal(signer_msg_encode(m, b), 0);
	assert_int_equal(signer_msg_decode(m->type, m->id,
	    b->p + SIGNER_MSG_HDR, b->len - SIGNER_MSG_HDR, &d), CK_E_PARSE);
	signer_msg_clear(&d);
}

static void
test_prepare(void **state)
{
	struct signer_msg m, d;
	struct signer_msg_prepare q;
	struct signer_msg_san sans[2] = { { CK_NAME_DNS, "a.example" },
	    { CK_NAME_IP, "10.0.0.1" } };
	struct signer_buf b = { 0 };

	(void)state;
	memset(&q, 0, sizeof(q));
	q.kind = SIGNER_CERT_PROFILE;
	snprintf(q.profile, sizeof(q.profile), "tls-server");
	q.subject = (const unsigned char *)"\x30\x00";
	q.subject_len = 2;
	q.spki = (const unsigned char *)"\x30\x03\x02\x01\x00";
	q.spki_len = 5;
	q.not_before = -5;
	q.not_after = 1700000000;
	q.path_len = -1;
	q.ku = 5;
	q.neku = 2;
	snprintf(q.eku[0], SIGNER_EKU_LEN, "serverAuth");
	snprintf(q.eku[1], SIGNER_EKU_LEN, "1.2.3.4");
	q.nsans = 2;
	q.sans = sans;
	snprintf(q.crl_url, sizeof(q.crl_url), "http://x/crl");
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CERT_PREPARE;
	m.id = 7;
	m.u.prepare = &q;
	roundtrip(&m, &d, &b);
	assert_string_equal(d.u.prepare->profile, "tls-server");
	assert_int_equal(d.u.prepare->not_before, -5);
	assert_int_equal(d.u.prepare->path_len, -1);
	assert_int_equal(d.u.prepare->nsans, 2);
	assert_string_equal(d.u.prepare->sans[1].value, "10.0.0.1");
	assert_string_equal(d.u.prepare->eku[1], "1.2.3.4");
	signer_msg_clear(&d);
	/* cert-issue: the same fields, a reserved serial and the digest. */
	m.type = SIGNER_MSG_CERT_ISSUE;
	memcpy(q.serial, "\x7f\x01", 2);
	q.serial_len = 2;
	memset(q.digest, 0x5a, 32);
	roundtrip(&m, &d, &b);
	assert_string_equal(d.u.prepare->profile, "tls-server");
	assert_int_equal(d.u.prepare->serial_len, 2);
	assert_memory_equal(d.u.prepare->serial, "\x7f\x01", 2);
	assert_memory_equal(d.u.prepare->digest, q.digest, 32);
	signer_msg_clear(&d);
	q.serial[0] = 0x80;	/* negative */
	assert_decode_refused(&m, &b);
	m.type = SIGNER_MSG_CERT_PREPARE;
	/* Limits: too many names, key usage bits out of range. */
	q.nsans = SIGNER_SAN_MAX + 1;
	assert_int_equal(signer_msg_encode(&m, &b), CK_E_TOOBIG);
	q.nsans = 2;
	q.ku = 1u << CK_KU__MAX;
	assert_decode_refused(&m, &b);
	signer_buf_free(&b);
}

static void
test_others(void **state)
{
	struct signer_msg m, d;
	struct signer_msg_crl_entry ents[2] = { { "01ab", 5, 1 },
	    { "ff", 6, 0 } };
	struct signer_msg_ocsp_single os[1] = { {
	    (const unsigned char *)"\x30\x00", 2, 1, 99, 4 } };
	struct signer_buf b = { 0 };

	(void)state;
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_UNLOCK;
	m.id = 1;
	m.u.secret.buf = (const unsigned char *)"pass";
	m.u.secret.len = 4;
	roundtrip(&m, &d, &b);
	assert_int_equal(d.u.secret.len, 4);
	signer_msg_clear(&d);

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CRL_SIGN;
	m.id = 2;
	m.u.crl.number = 9;
	m.u.crl.this_update = 1;
	m.u.crl.next_update = 2;
	m.u.crl.n = 2;
	m.u.crl.entries = ents;
	roundtrip(&m, &d, &b);
	assert_string_equal(d.u.crl.entries[0].serial_hex, "01ab");
	signer_msg_clear(&d);

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_OCSP_SIGN;
	m.id = 3;
	m.u.ocsp.this_update = 10;
	m.u.ocsp.next_update = 20;
	m.u.ocsp.has_nonce = 1;
	m.u.ocsp.nonce = (const unsigned char *)"\x04\x02\xaa\xbb";
	m.u.ocsp.nonce_len = 4;
	m.u.ocsp.n = 1;
	m.u.ocsp.v = os;
	roundtrip(&m, &d, &b);
	assert_int_equal(d.u.ocsp.v[0].reason, 4);
	signer_msg_clear(&d);

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CMS_SIGN;
	m.id = 4;
	m.u.cms.with_chain = 1;
	m.u.cms.buf = (const unsigned char *)"{}";
	m.u.cms.len = 2;
	roundtrip(&m, &d, &b);
	signer_msg_clear(&d);

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_R_ERR;
	m.id = 5;
	m.u.err.code = CK_E_POLICY;
	snprintf(m.u.err.msg, sizeof(m.u.err.msg), "no");
	roundtrip(&m, &d, &b);
	assert_int_equal(d.u.err.code, CK_E_POLICY);
	signer_msg_clear(&d);

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_R_PREPARED;
	m.id = 6;
	m.u.prepared.handle = 0x1122334455667788ULL;
	memset(m.u.prepared.digest, 0xab, 32);
	memcpy(m.u.prepared.serial, "\x00\x80\x01", 3);
	m.u.prepared.serial_len = 3;
	roundtrip(&m, &d, &b);
	assert_true(d.u.prepared.handle == 0x1122334455667788ULL);
	assert_int_equal(d.u.prepared.serial_len, 3);
	assert_memory_equal(d.u.prepared.serial, "\x00\x80\x01", 3);
	signer_msg_clear(&d);
	/* The signer's serial: positive, minimal, not zero, 1-20 octets. */
	{
		static const struct { const char *s; size_t n; } bad[] = {
			{ "", 0 }, { "\x80", 1 }, { "\x00\x01", 2 },
			{ "\x00", 1 }, { "\x00\x00", 2 },
			{ "123456789012345678901", 21 },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			memcpy(m.u.prepared.serial, bad[i].s, bad[i].n > 20 ?
			    20 : bad[i].n);
			m.u.prepared.serial_len = bad[i].n;
			if (bad[i].n > SIGNER_SERIAL_MAX) {
				assert_int_equal(signer_msg_encode(&m, &b),
				    CK_E_TOOBIG);
				continue;
			}
			assert_decode_refused(&m, &b);
		}
	}

	/* Serials reserved for cert-issue: a count of 1 to
	 * SIGNER_SERIALS_MAX; the reply's serials each checked as above. */
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_SERIALS;
	m.id = 9;
	m.u.nserials = SIGNER_SERIALS_MAX;
	roundtrip(&m, &d, &b);
	assert_int_equal(d.u.nserials, SIGNER_SERIALS_MAX);
	signer_msg_clear(&d);
	{
		static const uint32_t badn[] = { 0, SIGNER_SERIALS_MAX + 1 };
		size_t i;

		for (i = 0; i < 2; i++) {
			m.u.nserials = badn[i];
			assert_decode_refused(&m, &b);
		}
	}
	{
		struct signer_msg_serial v[2] = { { "\x01\x02", 2 },
		    { "\x00\x80", 2 } };

		memset(&m, 0, sizeof(m));
		m.type = SIGNER_MSG_R_SERIALS;
		m.id = 10;
		m.u.serials.sigalg = (const unsigned char *)
		    "\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02";
		m.u.serials.sigalg_len = 12;
		m.u.serials.issuer = (const unsigned char *)
		    "0123456789abcdef0123456789abcdef";
		m.u.serials.issuer_len = 32;
		m.u.serials.n = 2;
		m.u.serials.v = v;
		roundtrip(&m, &d, &b);
		assert_int_equal(d.u.serials.n, 2);
		assert_int_equal(d.u.serials.sigalg_len, 12);
		assert_memory_equal(d.u.serials.v[1].v, "\x00\x80", 2);
		assert_memory_equal(d.u.serials.issuer, m.u.serials.issuer,
		    32);
		signer_msg_clear(&d);
		/* The issuer's digest goes with an algorithm, and only. */
		m.u.serials.issuer_len = 31;
		assert_decode_refused(&m, &b);
		m.u.serials.sigalg_len = 0;
		m.u.serials.issuer_len = 32;
		assert_decode_refused(&m, &b);
		m.u.serials.issuer_len = 0;
		roundtrip(&m, &d, &b);
		signer_msg_clear(&d);
		m.u.serials.sigalg_len = 12;
		m.u.serials.issuer_len = 32;
		/* A serial with a needless leading zero, and none at all. */
		v[1].v[1] = 0x01;
		assert_decode_refused(&m, &b);
		m.u.serials.n = 0;
		assert_decode_refused(&m, &b);
	}

	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CERT_SIGN;
	m.id = 8;
	m.u.handle = 77;
	roundtrip(&m, &d, &b);
	signer_msg_clear(&d);
	signer_buf_free(&b);
}

/* H6: the memory a request may hold in the signer is bounded by its cost,
 * and the reader admits no more than SIGNER_HELD_MAX of them at once. */
static void
test_budget(void **state)
{
	struct signer_msg m, d;
	struct signer_msg_crl_entry *ents;
	struct signer_msg_prepare q;
	struct signer_buf b = { 0 };
	size_t held, cost, crl_max, n, k;
	unsigned t;

	(void)state;
	/* Every request fits the budget alone; a count of 256 queued
	 * requests alone would allow far more than it. */
	for (t = SIGNER_MSG_UNLOCK; t < SIGNER_MSG_REQ__MAX; t++) {
		cost = signer_msg_cost(t, signer_msg_max_body(t));
		assert_true(cost >= signer_msg_max_body(t));
		assert_true(cost <= SIGNER_HELD_MAX);
	}
	assert_int_equal(signer_msg_cost(SIGNER_MSG_R_DER, 5), 0);
	crl_max = signer_msg_cost(SIGNER_MSG_CRL_SIGN,
	    signer_msg_max_body(SIGNER_MSG_CRL_SIGN));
	assert_true(crl_max > (size_t)100 * 1024 * 1024);
	assert_true(crl_max / 1024 * 256 > SIGNER_HELD_MAX / 1024);

	/* What the decoder allocates is within the cost: a CRL of the
	 * smallest entries (the most entries for its size). */
	n = 100000;
	assert_non_null(ents = calloc(n, sizeof(*ents)));
	for (k = 0; k < n; k++)
		snprintf(ents[k].serial_hex, sizeof(ents[k].serial_hex), "1");
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CRL_SIGN;
	m.u.crl.n = (uint32_t)n;
	m.u.crl.entries = ents;
	roundtrip(&m, &d, &b);
	assert_int_equal(d.u.crl.n, n);
	assert_true(b.len - SIGNER_MSG_HDR + n * sizeof(*ents) <=
	    signer_msg_cost(m.type, b.len - SIGNER_MSG_HDR));
	signer_msg_clear(&d);
	free(ents);
	/* A prepare with every name it may carry. */
	memset(&q, 0, sizeof(q));
	q.subject = (const unsigned char *)"\x30\x00";
	q.subject_len = 2;
	q.spki = q.subject;
	q.spki_len = 2;
	q.path_len = -1;
	q.nsans = SIGNER_SAN_MAX;
	assert_non_null(q.sans = calloc(q.nsans, sizeof(*q.sans)));
	for (k = 0; k < q.nsans; k++)
		snprintf(q.sans[k].value, sizeof(q.sans[k].value), "a");
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CERT_PREPARE;
	m.u.prepare = &q;
	roundtrip(&m, &d, &b);
	assert_true(b.len - SIGNER_MSG_HDR + sizeof(q) + q.nsans *
	    sizeof(*q.sans) <= signer_msg_cost(m.type, b.len -
	    SIGNER_MSG_HDR));
	signer_msg_clear(&d);
	free(q.sans);
	signer_buf_free(&b);

	/* The reader, nothing freed meanwhile: max-size CRLs are admitted
	 * until the next would pass the budget, then it waits; one freed,
	 * one more is admitted. */
	held = 0;
	for (k = 0; k < 256 && signer_msg_admit(held, crl_max); k++)
		held += crl_max;
	assert_true(k >= 1 && k < 256);
	assert_true(held <= SIGNER_HELD_MAX);
	assert_false(signer_msg_admit(held, crl_max));
	held -= crl_max;
	assert_true(signer_msg_admit(held, crl_max));
	/* Small requests fill it up to the budget, not beyond. */
	assert_true(signer_msg_admit(SIGNER_HELD_MAX - 10, 10));
	assert_false(signer_msg_admit(SIGNER_HELD_MAX - 10, 11));
	assert_false(signer_msg_admit(SIGNER_HELD_MAX + 1, 0));
	/* Alone, even a request over the budget is read. */
	assert_true(signer_msg_admit(0, (size_t)SIGNER_HELD_MAX + 1));
	assert_false(signer_msg_admit(1, SIGNER_HELD_MAX));
}

static void
test_headers(void **state)
{
	unsigned char h[SIGNER_MSG_HDR] = { 0 };
	unsigned type;
	uint32_t id, len;

	(void)state;
	h[1] = 0x7f;		/* unknown type */
	assert_int_equal(signer_msg_header(h, &type, &id, &len), CK_E_PARSE);
	h[1] = SIGNER_MSG_CERT_SIGN;
	h[11] = 8;
	assert_int_equal(signer_msg_header(h, &type, &id, &len), 0);
	h[11] = 9;		/* over the type's maximum */
	assert_int_equal(signer_msg_header(h, &type, &id, &len), CK_E_PARSE);
	h[11] = 8;
	h[3] = 1;		/* flags */
	assert_int_equal(signer_msg_header(h, &type, &id, &len), CK_E_PARSE);
}

/* The buffered reader: pieces of what was written together, a piece
 * larger than its buffer (read straight into place), what it handed out
 * wiped from its buffer, and the end of the stream. */
static void
test_rbuf(void **state)
{
	static struct signer_rbuf rb;
	static unsigned char big[50000], got[50000];
	unsigned char small[5];
	int sv[2];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], "abcdefgh", 8), 8);
	assert_int_equal(signer_rbuf_read(sv[1], &rb, small, 3), 0);
	assert_memory_equal(small, "abc", 3);
	/* Handed out, then wiped: only what is still to come is there. */
	assert_int_equal(rb.off, 3);
	assert_int_equal(rb.len, 8);
	for (i = 0; i < rb.off; i++)
		assert_int_equal(rb.b[i], 0);
	/* The rest of the buffer, then a large piece past it. */
	assert_int_equal(write(sv[0], big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(signer_rbuf_read(sv[1], &rb, small, 5), 0);
	assert_memory_equal(small, "defgh", 5);
	assert_int_equal(signer_rbuf_read(sv[1], &rb, got, sizeof(got)), 0);
	assert_memory_equal(got, big, sizeof(big));
	/* A piece cut short by the end of the stream. */
	assert_int_equal(write(sv[0], "xy", 2), 2);
	close(sv[0]);
	assert_int_equal(signer_rbuf_read(sv[1], &rb, small, 3), -1);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prepare),
		cmocka_unit_test(test_others),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_rbuf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
