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
 * RECIPIENTS: at least one certificate (RSA or EC key). ZLEVEL: zstd level. */
int ck_archive_writer_open(int fd, const char *tmpdir,
    STACK_OF(X509) *recipients, int zlevel, struct ck_archive_writer **out);

/* One part: begin (name must end in ".zst" and is compressed), write raw
 * bytes any number of times, end (INFO gets its figures). */
int ck_archive_part_begin(struct ck_archive_writer *w, const char *name);
int ck_archive_part_write(struct ck_archive_writer *w, const void *buf,
    size_t len);
int ck_archive_part_end(struct ck_archive_writer *w,
    struct ck_archive_part *info);

/* Sign MANIFEST (CMS SignedData, attached, SHA-256, signer certificate and
 * chain included) with KEY/CERT, write manifest.json and manifest.p7s, end
 * the tar stream and the envelope, fsync FD. On success the set is complete;
 * *ARCHIVE_SHA256 (if not NULL) gets the SHA-256 of the whole file as
 * written. */
int ck_archive_writer_finish(struct ck_archive_writer *w,
    const char *manifest, size_t manifest_len, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *chain, unsigned char archive_sha256[32]);

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
 * equal manifest.json. Errors say what is wrong: not a CMS file, not for
 * this recipient, truncated, a tar fault, a zstd fault, a missing or
 * misplaced manifest, a bad signature, a signer not from TRUSTED. */
int ck_archive_read(int fd, EVP_PKEY *rkey, X509 *rcert,
    STACK_OF(X509) *trusted, const struct ck_archive_reader_cb *cb,
    struct ck_archive_result *res);
void ck_archive_result_clear(struct ck_archive_result *res);

/* SHA-256 of a whole file (for checking copies without decrypting). */
int ck_archive_file_sha256(int fd, unsigned char out[32], uint64_t *size);

#endif
