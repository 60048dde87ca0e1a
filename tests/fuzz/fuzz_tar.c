/*
 * fuzz_tar.c - the strict ustar reader (src/backup/tar.c) over arbitrary
 * bytes, read in short pieces whose size the first input byte chooses.
 *
 * Invariants: an entry's data is exactly its size; every accepted name is
 * valid (relative, no "..", printable); once the end is reported it stays
 * reported; and the entries accepted, written again with the writer,
 * read back to the same names, sizes and data.
 *
 * Seeds (corpus/tar/): streams from the writer, GNU tar in ustar and gnu
 * formats (a directory entry), a long name in the prefix field, a GNU
 * base-256 size, the bare end blocks, and a few damaged ones.
 */
#include <string.h>

#include "backup/tar.h"

#include "fuzz.h"

#define MAX_ENTRIES 8
#define MAX_KEEP 8192

struct src {
	const uint8_t *p;
	size_t len, pos, step;
};

static long
src_read(void *arg, void *buf, size_t len)
{
	struct src *s = arg;

	if (len > s->step)
		len = s->step;
	if (len > s->len - s->pos)
		len = s->len - s->pos;
	memcpy(buf, s->p + s->pos, len);
	s->pos += len;
	return (long)len;
}

struct sink {
	uint8_t buf[MAX_ENTRIES * (MAX_KEEP + 1024) + 2048];
	size_t len;
};

static int
sink_write(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;

	FUZZ_CHECK(len <= sizeof(s->buf) - s->len);
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

struct entry {
	char name[300];
	uint64_t size;
	uint8_t data[MAX_KEEP];
};

static struct entry ents[MAX_ENTRIES];
static struct sink out;

/* Read everything; returns the number of entries kept (those with at
 * most MAX_KEEP bytes, the first MAX_ENTRIES), -1 if the stream was
 * refused. With CHECK, compare with ents[]. */
static int
read_all(const uint8_t *data, size_t size, size_t step, int check)
{
	struct src s = { data, size, 0, step };
	struct ck_tar_io io = { NULL, src_read, &s };
	struct ck_tar_reader r;
	uint8_t buf[1000];
	char name[300];
	uint64_t sz, got;
	long n;
	int rc, kept = 0;

	memset(&r, 0, sizeof(r));
	r.io = &io;
	while ((rc = ck_tar_next(&r, name, sizeof(name), &sz)) == 1) {
		int keep = kept < MAX_ENTRIES && sz <= MAX_KEEP;

		FUZZ_CHECK(ck_tar_name_valid(name));
		FUZZ_CHECK(strlen(name) < sizeof(name));
		if (check && keep) {
			FUZZ_CHECK(strcmp(name, ents[kept].name) == 0);
			FUZZ_CHECK(sz == ents[kept].size);
		}
		got = 0;
		while ((n = ck_tar_read_data(&r, buf, sizeof(buf))) > 0) {
			FUZZ_CHECK((uint64_t)n <= sz - got);
			if (keep && !check)
				memcpy(ents[kept].data + got, buf, (size_t)n);
			if (keep && check)
				FUZZ_CHECK(memcmp(ents[kept].data + got, buf,
				    (size_t)n) == 0);
			got += (uint64_t)n;
		}
		if (n < 0)
			return -1;
		FUZZ_CHECK(got == sz);
		if (ck_tar_skip_pad(&r) != 0)
			return -1;
		if (keep) {
			if (!check) {
				memcpy(ents[kept].name, name,
				    strlen(name) + 1);
				ents[kept].size = sz;
			}
			kept++;
		}
	}
	if (rc < 0)
		return -1;
	FUZZ_CHECK(r.ended);
	FUZZ_CHECK(ck_tar_next(&r, name, sizeof(name), &sz) == 0);
	return kept;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ck_tar_io io = { sink_write, NULL, &out };
	size_t step;
	int kept;

	if (size < 1)
		return 0;
	step = 1 + (size_t)data[0] * 7;
	kept = read_all(data + 1, size - 1, step, 0);
	if (kept <= 0)
		return 0;
	/* What was accepted, written again, reads back the same. */
	out.len = 0;
	for (int i = 0; i < kept; i++) {
		FUZZ_CHECK(ck_tar_header(&io, ents[i].name, ents[i].size, 0)
		    == 0);
		FUZZ_CHECK(sink_write(&out, ents[i].data,
		    (size_t)ents[i].size) == 0);
		FUZZ_CHECK(ck_tar_pad(&io, ents[i].size) == 0);
	}
	FUZZ_CHECK(ck_tar_end(&io) == 0);
	FUZZ_CHECK(read_all(out.buf, out.len, 512, 1) == kept);
	return 0;
}
