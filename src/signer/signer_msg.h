/*
 * signer_msg.h - the messages between certkeepd and its signer process.
 *
 * One message on the socketpair (SOCK_STREAM; see docs/signer.md for why)
 * is a fixed 12-byte header followed by a body:
 *
 *   u16 type | u16 flags (0) | u32 request id | u32 body length
 *
 * all big-endian. Each type has a maximum body length, checked on the
 * header before the body is read. A body is a fixed sequence of explicit
 * fields, no tags, no optional parts: u8, i32, u32, u64, i64, and byte
 * strings (u32 length + bytes) each with its own maximum; text fields may
 * not hold NUL bytes. The decoder checks every length and consumes the
 * body exactly: a trailing byte is as fatal as a missing one.
 *
 * Requests (service -> signer) have types below 0x80, replies (signer ->
 * service) 0x80 and above; a reply carries the id of its request, so that
 * replies to concurrent requests may come back in any order.
 */
#ifndef CK_SIGNER_SIGNER_MSG_H
#define CK_SIGNER_SIGNER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "x509/certbuild.h"

#define SIGNER_MSG_HDR 12

enum signer_msg_type {
	SIGNER_MSG_NONE = 0,
	SIGNER_MSG_UNLOCK = 1,		/* passphrase or PIN, once */
	SIGNER_MSG_STATUS = 2,		/* available? (probe) */
	SIGNER_MSG_CERT_PREPARE = 3,	/* template -> handle, digest, serial */
	SIGNER_MSG_CERT_SIGN = 4,	/* handle -> certificate */
	SIGNER_MSG_CERT_ABORT = 5,	/* handle released unsigned */
	SIGNER_MSG_CRL_SIGN = 6,	/* entries -> CRL */
	SIGNER_MSG_OCSP_SIGN = 7,	/* statuses -> BasicOCSPResponse */
	SIGNER_MSG_CMS_SIGN = 8,	/* checkpoint/manifest -> CMS */
	SIGNER_MSG_SERIALS = 9,		/* count -> serials reserved */
	SIGNER_MSG_CERT_ISSUE = 10,	/* template, reserved serial, TBS
					 * digest -> certificate */
	SIGNER_MSG_REQ__MAX = 11,
	SIGNER_MSG_R_OK = 0x81,
	SIGNER_MSG_R_ERR = 0x82,	/* code + message */
	SIGNER_MSG_R_PREPARED = 0x83,	/* handle, digest, serial */
	SIGNER_MSG_R_DER = 0x84,	/* DER of what was signed */
	SIGNER_MSG_R_STATUS = 0x85,	/* available + why not */
	SIGNER_MSG_R_SERIALS = 0x86,	/* signature algorithm + serials */
	SIGNER_MSG__MAX = 0x87
};

/* "unlock", "cert-prepare", ...; "unknown" for others. */
const char *signer_msg_type_name(unsigned type);

/* The largest body a type may have; 0 for an unknown type. */
size_t signer_msg_max_body(unsigned type);

/* Field limits. */
#define SIGNER_SECRET_MAX 4096
#define SIGNER_NAME_DER_MAX 8192
#define SIGNER_SPKI_DER_MAX 8192
#define SIGNER_SERIAL_MAX 20
#define SIGNER_EKU_MAX 16
#define SIGNER_EKU_LEN 64
#define SIGNER_SAN_MAX 256
#define SIGNER_URL_MAX 1024
#define SIGNER_CRL_MAX (1u << 20)	/* entries */
#define SIGNER_CRL_ENTRY_MIN 13		/* bytes an entry takes at least */
#define SIGNER_OCSP_MAX 64		/* SingleResponses */
#define SIGNER_CERTID_MAX 512
#define SIGNER_NONCE_MAX 128
#define SIGNER_CMS_MAX (4u * 1024 * 1024)
#define SIGNER_DER_MAX (64u * 1024 * 1024)
#define SIGNER_ERRMSG_MAX 1024
#define SIGNER_SERIALS_MAX 256		/* serials per reservation */
#define SIGNER_SIGALG_MAX 128		/* AlgorithmIdentifier, DER */
#define SIGNER_RESERVED_MAX 4096	/* serials reserved, not yet used */
#define SIGNER_RESERVE_TTL 600		/* s a reserved serial stays usable */

/*
 * Memory the signer holds for requests (read, queued or being signed: the
 * bodies and what the decoder allocates for them). The count of queued
 * requests (256) alone would not bound it: a crl-sign of 2^20 entries is
 * a body of up to 58 MiB decoded into 64 MiB more, 30 GiB for 256 of
 * them. The reader reserves signer_msg_cost() before it reads a body and
 * waits while the budget would be exceeded (signer_msg_admit()); one
 * request over the budget is read only when no other is held.
 */
#define SIGNER_HELD_MAX (256u * 1024 * 1024)

/*
 * The most memory a request of `type` with a body of `len` bytes holds
 * in the signer once read and decoded: the body and the decoder's arrays
 * (no more entries than the body can hold). 0 for a type that is not a
 * request.
 */
size_t signer_msg_cost(unsigned type, size_t len);

/* 1 if a request costing `cost` may be read while `held` bytes are held
 * (SIGNER_HELD_MAX), 0 if the reader must wait for some to be freed. */
int signer_msg_admit(size_t held, size_t cost);

/* What a certificate is for; each kind has its own rules in the signer. */
enum signer_cert_kind {
	SIGNER_CERT_PROFILE,	/* a [profile.NAME] of the configuration */
	SIGNER_CERT_OCSP,	/* a delegated OCSP responder certificate */
	SIGNER_CERT_SERVICE_TLS, /* certkeepd's own TLS certificate */
	SIGNER_CERT__MAX
};

struct signer_msg_san {
	uint8_t type;			/* enum ck_name_type */
	char value[256];
};

struct signer_msg_prepare {
	uint8_t kind;			/* enum signer_cert_kind */
	char profile[CK_PROFILE_NAME_MAX];
	const unsigned char *subject;	/* Name, DER */
	size_t subject_len;
	const unsigned char *spki;	/* SubjectPublicKeyInfo, DER */
	size_t spki_len;
	/* No serial: the signer chooses it (the service could reuse one). */
	int64_t not_before, not_after;
	uint8_t is_ca;
	int32_t path_len;
	uint32_t ku;
	uint32_t neku;
	char eku[SIGNER_EKU_MAX][SIGNER_EKU_LEN];
	uint32_t nsans;
	struct signer_msg_san *sans;	/* owned (decoder) */
	char crl_url[SIGNER_URL_MAX];
	char ocsp_url[SIGNER_URL_MAX];
	char issuer_url[SIGNER_URL_MAX];
	/* cert-issue only: a serial the signer reserved for the service
	 * (positive, minimal content octets) and the SHA-256 of the TBS the
	 * service logged before asking. */
	unsigned char serial[SIGNER_SERIAL_MAX];
	size_t serial_len;
	unsigned char digest[32];
};

/* A serial's content octets. */
struct signer_msg_serial {
	unsigned char v[SIGNER_SERIAL_MAX];
	size_t len;
};

struct signer_msg_crl_entry {
	char serial_hex[SIGNER_SERIAL_MAX * 2 + 1];
	int64_t revoked_at;
	uint8_t reason;
};

struct signer_msg_crl {
	uint64_t number;
	int64_t this_update, next_update;
	uint32_t n;
	struct signer_msg_crl_entry *entries;	/* owned (decoder) */
};

struct signer_msg_ocsp_single {
	const unsigned char *certid;	/* CertID, DER */
	size_t certid_len;
	uint8_t status;			/* V_OCSP_CERTSTATUS_* */
	int64_t revoked_at;
	int32_t reason;			/* -1: none */
};

struct signer_msg_ocsp {
	int64_t this_update, next_update;
	uint8_t has_nonce;
	const unsigned char *nonce;	/* the nonce's octets */
	size_t nonce_len;
	uint32_t n;
	struct signer_msg_ocsp_single *v;	/* owned (decoder) */
};

/* A decoded message. Pointers point into the body it was decoded from
 * (which must outlive it) or to arrays it owns. */
struct signer_msg {
	unsigned type;
	uint32_t id;
	union {
		struct { const unsigned char *buf; size_t len; } secret;
		uint8_t probe;
		struct signer_msg_prepare *prepare;	/* owned */
		uint64_t handle;
		struct signer_msg_crl crl;
		struct signer_msg_ocsp ocsp;
		struct {
			uint8_t with_chain;
			const unsigned char *buf;
			size_t len;
		} cms;
		struct { int32_t code; char msg[SIGNER_ERRMSG_MAX]; } err;
		struct {
			uint64_t handle;
			unsigned char digest[32];
			/* The serial the signer chose: a positive INTEGER's
			 * minimal content octets. */
			unsigned char serial[SIGNER_SERIAL_MAX];
			size_t serial_len;
		} prepared;
		struct { const unsigned char *buf; size_t len; } der;
		struct { uint8_t available; char why[256]; } status;
		uint32_t nserials;	/* serials: how many to reserve */
		struct {
			/* The AlgorithmIdentifier the signer's certificates
			 * carry (empty: it cannot say; the service then
			 * prepares through the signer). */
			const unsigned char *sigalg;
			size_t sigalg_len;
			/* SHA-256 of the issuer name and key identifier
			 * its TBSs carry (empty with an empty sigalg) */
			const unsigned char *issuer;
			size_t issuer_len;
			uint32_t n;
			struct signer_msg_serial *v;	/* owned (decoder) */
		} serials;
	} u;
};

/* A growing output buffer with a hard cap. */
struct signer_buf {
	unsigned char *p;
	size_t len, cap, max;
	int err;		/* set once something did not fit */
};

/*
 * Encode `m` (header and body) into `b` (whose contents are replaced; an
 * empty buffer is allocated). CK_E_TOOBIG if a field is over its limit,
 * CK_E_INVAL for an unknown type. Free with signer_buf_free().
 */
int signer_msg_encode(const struct signer_msg *m, struct signer_buf *b);

/* Release (and wipe: it may hold a passphrase) the buffer. */
void signer_buf_free(struct signer_buf *b);

/*
 * Parse a header: type, id and body length. CK_E_PARSE for an unknown
 * type, non-zero flags or a length over the type's maximum.
 */
int signer_msg_header(const unsigned char hdr[SIGNER_MSG_HDR],
    unsigned *type, uint32_t *id, uint32_t *len);

/*
 * Decode the body of a message of `type`: CK_E_PARSE (reason in
 * ck_err_msg()) for anything malformed. `m` is cleared first; release with
 * signer_msg_clear() (also after a failure).
 */
int signer_msg_decode(unsigned type, uint32_t id, const unsigned char *body,
    size_t len, struct signer_msg *m);

void signer_msg_clear(struct signer_msg *m);

/*
 * Buffered reading of messages from the socket, for its one reader: a
 * read() takes whatever has arrived, so that requests or replies sent
 * together (signer_proc_call_many()) cost one system call, not two each.
 * The bytes handed out are wiped from the buffer (the unlock message
 * carries the passphrase).
 */
struct signer_rbuf {
	unsigned char b[16384];
	size_t off, len;
	unsigned long reads;	/* read() calls that filled b */
};

/* Exactly `n` bytes into `dst`: 0, or -1 at end of stream or an error. */
int signer_rbuf_read(int fd, struct signer_rbuf *rb, void *dst, size_t n);

#endif
