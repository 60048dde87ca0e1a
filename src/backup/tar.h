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
 * given mtime). The caller then writes exactly SIZE bytes and
 * ck_tar_pad(). */
int ck_tar_header(const struct ck_tar_io *io, const char *name,
    uint64_t size, int64_t mtime);
int ck_tar_pad(const struct ck_tar_io *io, uint64_t size);
/* The two zero blocks that end an archive. */
int ck_tar_end(const struct ck_tar_io *io);

/* Reading: next header. Returns 1 with NAME and SIZE filled, 0 at the
 * end-of-archive blocks, or a CK_E* error (negative). The caller reads the
 * SIZE bytes with ck_tar_read_data() and then ck_tar_skip_pad(). */
struct ck_tar_reader {
	const struct ck_tar_io *io;
	uint64_t left;		/* data bytes left in the current entry */
	uint64_t size;
};
int ck_tar_next(struct ck_tar_reader *r, char *name, size_t namesz,
    uint64_t *size);
long ck_tar_read_data(struct ck_tar_reader *r, void *buf, size_t len);
int ck_tar_skip_pad(struct ck_tar_reader *r);

#endif
