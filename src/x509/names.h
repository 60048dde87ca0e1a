/*
 * names.h - the names a certificate may carry: DNS names, IP addresses,
 * e-mail addresses, URIs; their syntax checks and IP range matching.
 */
#ifndef CK_X509_NAMES_H
#define CK_X509_NAMES_H

#include <stddef.h>

#include <openssl/x509v3.h>

enum ck_name_type {
	CK_NAME_DNS,
	CK_NAME_IP,
	CK_NAME_EMAIL,
	CK_NAME_URI,
	CK_NAME_OTHER,		/* any other GeneralName form: never allowed */
	CK_NAME__MAX
};

#define CK_NAME_MAX 256

struct ck_name {
	enum ck_name_type type;
	char value[CK_NAME_MAX];
};

struct ck_names {
	struct ck_name *v;
	size_t n;
};

/* Prefix used in text form ("DNS", "IP", "email", "URI", "other"). */
const char *ck_name_type_label(enum ck_name_type t);

/* Append a name; CK_E_TOOBIG if the value is too long. */
int ck_names_add(struct ck_names *l, enum ck_name_type t, const char *v);

/* Free the list's storage; accepts NULL. */
void ck_names_clear(struct ck_names *l);

/* Append every name of a GENERAL_NAMES (unsupported forms as OTHER). */
int ck_names_from_general(const GENERAL_NAMES *gens, struct ck_names *out);

/* Build a GENERAL_NAMES from the list (OTHER entries are an error). */
int ck_names_to_general(const struct ck_names *l, GENERAL_NAMES **out);

/* "DNS:a, IP:1.2.3.4, email:x@y" into buf (truncated if too small). */
void ck_names_format(const struct ck_names *l, char *buf, size_t bufsz);

/* 1 if `s` is a syntactically valid DNS name (LDH labels, optional
 * leading "*." wildcard label), else 0. */
int ck_dns_name_valid(const char *s);

/* 1 if `s` looks like local@domain with a valid DNS domain, else 0. */
int ck_email_valid(const char *s);

/* Parse an IPv4 or IPv6 literal: returns 4 or 16 (bytes in out), or 0. */
int ck_ip_parse(const char *s, unsigned char out[16]);

/* The canonical text of an IPv4 or IPv6 literal (dotted quad; RFC 5952
 * for IPv6) into OUT (at least 46 bytes, INET6_ADDRSTRLEN), so that one
 * address cannot be named twice in different spellings: 0, or -1 (OUT
 * empty) if S is not one. */
#define CK_IP_TEXT_MAX 46
int ck_ip_canon(const char *s, char out[CK_IP_TEXT_MAX]);

struct ck_ip_range {
	int len;		/* 4 or 16 */
	unsigned char addr[16];
	int prefix;
};

/* Parse "addr/prefix" (or a bare address = host route). 0 or CK_E_PARSE. */
int ck_ip_range_parse(const char *s, struct ck_ip_range *out);

/* 1 if the `len`-byte address lies in the range. */
int ck_ip_range_contains(const struct ck_ip_range *r,
    const unsigned char *addr, int len);

#endif
