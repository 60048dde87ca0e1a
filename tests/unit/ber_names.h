/*
 * ber_names.h - a Name in DER and the same Name in four BER forms that
 * decoders accept and must not pass on as they are (tests of the CSR
 * parser and of the signer process).
 *
 * CN=ab is  30 09  06 03 55 04 03  0c 02 61 62;
 * O=cd  is  30 09  06 03 55 04 0a  0c 02 63 64.
 */
#ifndef CK_TESTS_BER_NAMES_H
#define CK_TESTS_BER_NAMES_H

#define BER_CN_AB 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, \
	0x61, 0x62
#define BER_O_CD 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x02, \
	0x63, 0x64

struct ber_name {
	const char *what;
	const unsigned char *der;
	size_t len;
};

/* DER: CN=ab; and one RDN {CN=ab, O=cd}, its SET sorted. */
static const unsigned char name_der[] = { 0x30, 0x0d, 0x31, 0x0b,
	BER_CN_AB };
static const unsigned char name_der_multi[] = { 0x30, 0x18, 0x31, 0x16,
	BER_CN_AB, BER_O_CD };
/* A short length in the long form (0c 81 02). */
static const unsigned char name_ber_longlen[] = { 0x30, 0x0e, 0x31, 0x0c,
	0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x81, 0x02, 0x61,
	0x62 };
/* The outer SEQUENCE of indefinite length. */
static const unsigned char name_ber_indef[] = { 0x30, 0x80, 0x31, 0x0b,
	BER_CN_AB, 0x00, 0x00 };
/* A multi-valued RDN whose SET is not sorted (O before CN). */
static const unsigned char name_ber_unsorted[] = { 0x30, 0x18, 0x31, 0x16,
	BER_O_CD, BER_CN_AB };
/* A constructed UTF8String (2c) holding one primitive segment. */
static const unsigned char name_ber_cons[] = { 0x30, 0x0f, 0x31, 0x0d,
	0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x2c, 0x04, 0x0c, 0x02,
	0x61, 0x62 };

#define BER_NAME(n, w) { w, n, sizeof(n) }
static const struct ber_name ber_names[] = {
	BER_NAME(name_ber_longlen, "long-form length"),
	BER_NAME(name_ber_indef, "indefinite length"),
	BER_NAME(name_ber_unsorted, "unsorted SET"),
	BER_NAME(name_ber_cons, "constructed UTF8String"),
};
#define BER_NAMES (sizeof(ber_names) / sizeof(ber_names[0]))

#endif
