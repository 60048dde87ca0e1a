/*
 * serial.h - certificate serial numbers: 128 random bits (127 after the
 * sign bit is cleared), always positive, never zero, printed as upper-case
 * hexadecimal without leading zeros.
 */
#ifndef CK_X509_SERIAL_H
#define CK_X509_SERIAL_H

#include <stddef.h>

#include <openssl/asn1.h>

#define CK_SERIAL_BYTES 16
#define CK_SERIAL_HEX_MAX 80

/* New random serial: *out (caller frees) and its hex form in `hex`. */
int ck_serial_random(ASN1_INTEGER **out, char hex[CK_SERIAL_HEX_MAX]);

/* Hex form of a positive INTEGER's content octets (`n` of them, 1 to
 * CK_SERIAL_HEX_MAX / 2 - 1). CK_E_TOOBIG if too long. */
int ck_serial_octets_hex(const unsigned char *b, size_t n,
    char hex[CK_SERIAL_HEX_MAX]);

/* Hex form of an ASN1_INTEGER serial. */
int ck_serial_to_hex(const ASN1_INTEGER *ai, char hex[CK_SERIAL_HEX_MAX]);

/* Parse hex (optional "0x", colons, any case) into an ASN1_INTEGER. */
int ck_serial_from_hex(const char *hex, ASN1_INTEGER **out);

/* Canonicalise user input to the stored form. CK_E_PARSE if not hex. */
int ck_serial_normalize(const char *in, char out[CK_SERIAL_HEX_MAX]);

#endif
