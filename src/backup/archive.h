/*
 * archive.h - the container of a data backup set (docs/backup.md).
 *
 * Writing: CMS EnvelopedData to the recipients (streamed, BER indefinite
 * lengths, AES-256-CBC) around a ustar stream of zstd-compressed parts and,
 * last, manifest.json and manifest.p7s. A part is compressed into an
 * unlinked temporary file (O_TMPFILE, 0600) so its size is known for its tar
 * header; memory stays bounded whatever the size of the CA.
 *
 * Reading: the envelope is decrypted as a stream (the ciphertext is never
 * held whole), the tar stream is read strictly, every part is decompressed
 * and handed to the caller in chunks while its SHA-256 (of the stored,
 * compressed bytes) is computed, and the manifest signature is checked. The
 * caller compares the part digests with the manifest it gets back: a part
 * is only trustworthy once ck_archive_read() has returned 0 and the digests
 * match, so callers stage what they read.
 */
#ifndef CK_BACKUP_ARCHIVE_H
#define CK_BACKUP_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CK_ARCHIVE_NAME_MAX 100
#define CK_ARCHIVE_MAX_PARTS 64
#define CK_ARCHIVE_MANIFEST_MAX (1024 * 1024)

struct ck_archive_part {
	char name[CK_ARCHIVE_NAME_MAX];	/* e.g. "parts/store/certs.jsonl.zst" */
	uint64_t size;			/* stored (compressed) bytes */
	uint64_t raw_size;		/* bytes before compression */
	unsigned char sha256[32];	/* of the stored bytes */
};

struct ck_archive_writer;

/* Start a set written to FD (a new 0600 file the caller made). TMPDIR is
 * where part spools go (the CA home's private/ or a 0700 directory).
 * RECIPIENTS: at least one certificate (RSA or EC key; RSA is used with
 * OAEP/SHA-256; Ed25519/Ed448 are refused: they cannot do CMS key
 * agreement). ZLEVEL: zstd level, at most 19 (levels above need windows
 * larger than the reader accepts). Returns 0 or a CK_E* code; on success
 * *OUT is the writer (ck_archive_writer_free() it). */
int ck_archive_writer_open(int fd, const char *tmpdir,
    STACK_OF(X509) *recipients, int zlevel, struct ck_archive_writer **out);

/* One part: begin (name must start with "parts/", end in ".zst", be
 * shorter than CK_ARCHIVE_NAME_MAX and new in the set; it is compressed),
 * write raw bytes any number of times, end (INFO, if not NULL, gets its
 * figures). A failure other than a refused argument ends the writer: only
 * ck_archive_writer_free() is left. */
int ck_archive_part_begin(struct ck_archive_writer *w, const char *name);
int ck_archive_part_write(struct ck_archive_writer *w, const void *buf,
    size_t len);
int ck_archive_part_end(struct ck_archive_writer *w,
    struct ck_archive_part *info);

/* Sign MANIFEST (CMS SignedData, attached, SHA-256, signer certificate and
 * chain included) with KEY/CERT, write manifest.json and manifest.p7s, end
 * the tar stream and the envelope, fsync FD. On success the set is complete;
 * *ARCHIVE_SHA256 (if not NULL) gets the SHA-256 of the whole file as
 * written. A part still open, a manifest over CK_ARCHIVE_MANIFEST_MAX
 * (CK_E_TOOBIG) or an unusable key (see ck_archive_signer_check()) is
 * refused with the writer left usable; other failures end it. */
int ck_archive_writer_finish(struct ck_archive_writer *w,
    const char *manifest, size_t manifest_len, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *chain, unsigned char archive_sha256[32]);

/* The same with the manifest signed by the caller (P7S: CMS SignedData,
 * DER, attached content equal to MANIFEST), for keys held by a signer.
 * P7S is checked first as a reader will (it verifies, its content is
 * MANIFEST byte for byte): CK_E_CRYPTO if not, with the writer left
 * usable. */
int ck_archive_writer_finish_signed(struct ck_archive_writer *w,
    const char *manifest, size_t manifest_len, const unsigned char *p7s,
    size_t p7s_len, unsigned char archive_sha256[32]);

/* 0 if KEY (with CERT, its certificate) can sign a manifest, else
 * CK_E_INVAL saying why: the key is not the certificate's, or it is an
 * EdDSA key (OpenSSL 3.0's CMS cannot sign or verify with those). Check
 * it before writing a set; ck_archive_writer_finish() checks it too and
 * leaves the writer usable when it refuses. */
int ck_archive_signer_check(EVP_PKEY *key, X509 *cert);

/* Free a writer; one not finished leaves an incomplete file the caller
 * must delete. */
void ck_archive_writer_free(struct ck_archive_writer *w);

/* Reading a set. */
struct ck_archive_reader_cb {
	/* A part begins; a non-zero return stops reading. */
	int (*part_begin)(void *arg, const char *name);
	/* Decompressed bytes of the current part, in order. */
	int (*part_data)(void *arg, const void *buf, size_t len);
	/* The part ended; INFO has its stored size, raw size and digest. */
	int (*part_end)(void *arg, const struct ck_archive_part *info);
	void *arg;
};

struct ck_archive_result {
	char *manifest;		/* the signed manifest.json content (NUL-ended) */
	size_t manifest_len;
	X509 *signer;		/* the certificate that signed it */
	struct ck_archive_part parts[CK_ARCHIVE_MAX_PARTS];
	size_t nparts;		/* parts in the order read */
	unsigned char archive_sha256[32];	/* of the whole file */
	uint64_t archive_size;
};

/* Read the set in FD: decrypt with RKEY (the private key of one of the
 * recipients; RCERT its certificate, may be NULL), stream the parts to CB
 * (may be NULL: only check), and check the manifest signature against
 * TRUSTED (the CA certificate and chain the signer must verify to; if NULL,
 * the signature is checked but the signer is not). The signed content must
 * equal manifest.json. Without RCERT every recipient is tried and the
 * recipient identifiers (issuer and serial) are not checked, so such a
 * header alteration goes unnoticed except by archive_sha256. Errors say what is wrong: not a CMS file, not for
 * this recipient, truncated, a tar fault, a zstd fault, a missing or
 * misplaced manifest, a bad signature, a signer not from TRUSTED. */
int ck_archive_read(int fd, EVP_PKEY *rkey, X509 *rcert,
    STACK_OF(X509) *trusted, const struct ck_archive_reader_cb *cb,
    struct ck_archive_result *res);
void ck_archive_result_clear(struct ck_archive_result *res);
/* Codes of ck_archive_read(): CK_E_PARSE not a set (not CMS, not an
 * EnvelopedData, malformed header); CK_E_CRYPTO the key is not a
 * recipient; CK_E_TAMPER truncation, bad padding, tar or zstd faults,
 * misplaced or missing manifest, data after the end, manifest.json not the
 * signed content; CK_E_BADSIG the signature does not verify or the signer
 * is not from TRUSTED; CK_E_TOOBIG a manifest over its limit; CK_E_IO; or
 * the callback's own negative code. FD is read from its current offset to
 * its end. RES is zeroed first and left zeroed on failure. */

/* SHA-256 and size of a file from its current offset to its end (for
 * checking copies without decrypting). */
int ck_archive_file_sha256(int fd, unsigned char out[32], uint64_t *size);

/* For the fuzz target and tests: check that BUF has the outer BER layout
 * of a set (ContentInfo, EnvelopedData header, encrypted content as one
 * primitive or chunked OCTET STRINGs, then only end-of-contents octets)
 * without decrypting. On success *HDR (if HDR is not NULL; free() it)
 * gets the re-encoded header that ck_archive_read() hands to OpenSSL,
 * *CONTENT_LEN (if not NULL) the number of encrypted bytes. */
int ck_archive_envelope_check(const void *buf, size_t len,
    unsigned char **hdr, size_t *hdrlen, uint64_t *content_len);

#endif
