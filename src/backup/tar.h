/*
 * tar.h - POSIX ustar, written and read as a stream.
 *
 * Only what backup sets need: regular files, relative names without "..",
 * sizes up to 8 GiB - 1 (octal field) or larger with the GNU base-256 size.
 * The reader is strict: bad checksums, unknown entry types, absolute or
 * climbing names, truncation and trailing garbage are errors.
 */
#ifndef CK_BACKUP_TAR_H
#define CK_BACKUP_TAR_H

#include <stddef.h>
#include <stdint.h>

/* Where bytes go (the writer) or come from (the reader). write returns 0 or
 * a CK_E* error; read returns bytes read (0 at the end) or -1. */
struct ck_tar_io {
	int (*write)(void *arg, const void *buf, size_t len);
	long (*read)(void *arg, void *buf, size_t len);
	void *arg;
};

/* The header of a regular file of SIZE bytes named NAME (mode 0600, the
 * given mtime; a name over 100 bytes is split into the prefix field). The
 * caller then writes exactly SIZE bytes and ck_tar_pad(). CK_E_INVAL for
 * a name ck_tar_name_valid() refuses, CK_E_TOOBIG if it cannot be split,
 * or the io's error. */
int ck_tar_header(const struct ck_tar_io *io, const char *name,
    uint64_t size, int64_t mtime);
int ck_tar_pad(const struct ck_tar_io *io, uint64_t size);
/* 1 if NAME is acceptable in a set (1..255 printable ASCII bytes, relative,
 * no empty, "." or ".." component), else 0. */
int ck_tar_name_valid(const char *name);
/* The two zero blocks that end an archive. */
int ck_tar_end(const struct ck_tar_io *io);

/* Reading: next header. Returns 1 with NAME and SIZE filled, 0 at the
 * end-of-archive blocks, or a CK_E* error (negative). The caller reads the
 * SIZE bytes with ck_tar_read_data() and then ck_tar_skip_pad(); data not
 * read is skipped by either call. Start with a zeroed reader whose io is
 * set. At the end the rest of the stream is read: only zero bytes may
 * follow the two end blocks. Format faults and truncation are CK_E_PARSE;
 * a failed io read is CK_E_IO with the io's message kept. The padding
 * after each entry must be zero bytes. */
struct ck_tar_reader {
	const struct ck_tar_io *io;
	uint64_t left;		/* data bytes left in the current entry */
	uint64_t size;
	unsigned pad;		/* padding bytes not yet skipped */
	int ended;		/* the end-of-archive blocks were read */
};
int ck_tar_next(struct ck_tar_reader *r, char *name, size_t namesz,
    uint64_t *size);
/* Up to LEN bytes of the current entry's data: bytes read, 0 at the end of
 * the entry, -1 on error (truncation or io failure; ck_err_msg() says). */
long ck_tar_read_data(struct ck_tar_reader *r, void *buf, size_t len);
int ck_tar_skip_pad(struct ck_tar_reader *r);

#endif
