#include "backup/tar.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

#define BLK 512

/* Offsets and widths of the ustar header fields. */
#define F_NAME		0
#define W_NAME		100
#define F_MODE		100
#define F_UID		108
#define F_GID		116
#define F_SIZE		124
#define W_SIZE		12
#define F_MTIME		136
#define W_MTIME		12
#define F_CHKSUM	148
#define W_CHKSUM	8
#define F_TYPE		156
#define F_LINK		157
#define W_LINK		100
#define F_MAGIC		257
#define F_VERSION	263
#define F_UNAME		265
#define W_UNAME		32
#define F_GNAME		297
#define F_DEVMAJ	329
#define F_DEVMIN	337
#define F_PREFIX	345
#define W_PREFIX	155
#define F_PAD		500

/* Largest size the octal field holds: 11 octal digits. */
#define OCTAL_SIZE_MAX 077777777777ULL
/* Entries larger than this are refused on reading (no real set is near). */
#define TAR_ENTRY_MAX (1ULL << 56)

int
ck_tar_name_valid(const char *name)
{
	const char *p, *comp;
	size_t len, clen;

	len = strlen(name);
	if (len == 0 || len > W_PREFIX + 1 + W_NAME || name[0] == '/')
		return 0;
	for (p = name; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return 0;
	comp = name;
	for (;;) {
		p = strchr(comp, '/');
		clen = p != NULL ? (size_t)(p - comp) : strlen(comp);
		if (clen == 0 || (clen == 1 && comp[0] == '.') ||
		    (clen == 2 && comp[0] == '.' && comp[1] == '.'))
			return 0;
		if (p == NULL)
			break;
		comp = p + 1;
	}
	return 1;
}

static void
put_octal(unsigned char *f, size_t width, uint64_t v)
{
	/* width-1 digits, zero-filled, then NUL. */
	f[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0;) {
		f[i] = (unsigned char)('0' + (v & 7));
		v >>= 3;
	}
}

static void
set_checksum(unsigned char *h)
{
	unsigned sum = 0;

	memset(h + F_CHKSUM, ' ', W_CHKSUM);
	for (size_t i = 0; i < BLK; i++)
		sum += h[i];
	/* Six digits, NUL, space: what POSIX and GNU tar write. */
	put_octal(h + F_CHKSUM, 7, sum);
	h[F_CHKSUM + 7] = ' ';
}

int
ck_tar_header(const struct ck_tar_io *io, const char *name, uint64_t size,
    int64_t mtime)
{
	unsigned char h[BLK];
	size_t len, plen = 0;
	const char *base = name;

	if (!ck_tar_name_valid(name))
		return ck_err_set(CK_E_INVAL, "invalid name in a tar stream: "
		    "\"%.120s\"", name);
	len = strlen(name);
	if (len > W_NAME) {
		/* Split at a '/' so the leading part fits the prefix field
		 * and the rest the name field. */
		const char *s;

		for (s = name + len - 1; s > name; s--) {
			if (*s != '/')
				continue;
			if ((size_t)(s - name) <= W_PREFIX &&
			    strlen(s + 1) <= W_NAME)
				break;
		}
		if (s == name)
			return ck_err_set(CK_E_TOOBIG, "name too long for a "
			    "ustar header: %.120s", name);
		plen = (size_t)(s - name);
		base = s + 1;
	}
	memset(h, 0, sizeof(h));
	memcpy(h + F_NAME, base, strlen(base));
	if (plen > 0)
		memcpy(h + F_PREFIX, name, plen);
	put_octal(h + F_MODE, 8, 0600);
	put_octal(h + F_UID, 8, 0);
	put_octal(h + F_GID, 8, 0);
	if (size <= OCTAL_SIZE_MAX) {
		put_octal(h + F_SIZE, W_SIZE, size);
	} else {
		/* GNU base-256: a 0x80 marker, then the size big-endian. */
		uint64_t v = size;

		h[F_SIZE] = 0x80;
		for (int i = W_SIZE - 1; i > 0; i--) {
			h[F_SIZE + i] = (unsigned char)(v & 0xff);
			v >>= 8;
		}
	}
	if (mtime < 0)
		mtime = 0;
	if ((uint64_t)mtime > OCTAL_SIZE_MAX)
		mtime = (int64_t)OCTAL_SIZE_MAX;
	put_octal(h + F_MTIME, W_MTIME, (uint64_t)mtime);
	h[F_TYPE] = '0';
	memcpy(h + F_MAGIC, "ustar", 6);
	memcpy(h + F_VERSION, "00", 2);
	put_octal(h + F_DEVMAJ, 8, 0);
	put_octal(h + F_DEVMIN, 8, 0);
	set_checksum(h);
	return io->write(io->arg, h, sizeof(h));
}

int
ck_tar_pad(const struct ck_tar_io *io, uint64_t size)
{
	static const unsigned char zero[BLK];
	size_t pad = (size_t)((BLK - size % BLK) % BLK);

	return pad > 0 ? io->write(io->arg, zero, pad) : 0;
}

int
ck_tar_end(const struct ck_tar_io *io)
{
	static const unsigned char zero[2 * BLK];

	return io->write(io->arg, zero, sizeof(zero));
}

/* ---- reading ---- */

/* Read exactly LEN bytes. 0, 1 if the stream ended before the first byte,
 * or a CK_E* error (truncation inside is CK_E_PARSE, naming WHAT). */
static int
read_full(struct ck_tar_reader *r, void *buf, size_t len, const char *what)
{
	unsigned char *p = buf;
	size_t got = 0;
	long n;

	while (got < len) {
		n = r->io->read(r->io->arg, p + got, len - got);
		if (n < 0)
			return CK_E_IO;
		if (n == 0) {
			if (got == 0)
				return 1;
			return ck_err_set(CK_E_PARSE, "tar stream truncated "
			    "in %s", what);
		}
		got += (size_t)n;
	}
	return 0;
}

static int
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

#define NUM_B256	1	/* GNU base-256 allowed */
#define NUM_DIGIT	2	/* at least one digit required */

/* A numeric field: optional leading spaces, octal digits, then only NUL or
 * space to the end; or (NUM_B256) GNU base-256, first byte 0x80 or 0xff.
 * Sets *V for octal or positive base-256 values; returns 0 or -1. */
static int
parse_num(const unsigned char *f, size_t w, int flags, uint64_t *v)
{
	int b256 = (flags & NUM_B256) != 0;

	size_t i = 0;
	uint64_t x = 0;
	int digits = 0;

	if (b256 && (f[0] == 0x80 || f[0] == 0xff)) {
		if (f[0] == 0xff)
			return -1;	/* negative */
		for (i = 1; i < w; i++) {
			if (x >> 56)
				return -1;
			x = (x << 8) | f[i];
		}
		*v = x;
		return 0;
	}
	while (i < w && f[i] == ' ')
		i++;
	for (; i < w && f[i] >= '0' && f[i] <= '7'; i++) {
		if (x >> 60)
			return -1;
		x = (x << 3) | (uint64_t)(f[i] - '0');
		digits++;
	}
	for (; i < w; i++)
		if (f[i] != '\0' && f[i] != ' ')
			return -1;
	if ((flags & NUM_DIGIT) && digits == 0)
		return -1;
	*v = x;
	return 0;
}

/* A NUL-padded text field: printable bytes, then only NULs. Copies it. */
static int
text_field(const unsigned char *f, size_t w, char *out)
{
	size_t n = 0;

	while (n < w && f[n] != '\0') {
		if (f[n] < 0x20 || f[n] > 0x7e)
			return -1;
		n++;
	}
	if (!all_zero(f + n, w - n))
		return -1;
	if (out != NULL) {
		memcpy(out, f, n);
		out[n] = '\0';
	}
	return 0;
}

static int
check_header(const unsigned char *h, char *name, size_t namesz,
    uint64_t *size)
{
	char nm[W_NAME + 1], pf[W_PREFIX + 1], full[W_PREFIX + W_NAME + 2];
	unsigned usum = 0;
	int ssum = 0;
	uint64_t sum, v;
	size_t i;

	if (parse_num(h + F_CHKSUM, W_CHKSUM, NUM_DIGIT, &sum) != 0)
		return ck_err_set(CK_E_PARSE, "tar header with a malformed "
		    "checksum field");
	for (i = 0; i < BLK; i++) {
		unsigned char c = (i >= F_CHKSUM && i < F_CHKSUM + W_CHKSUM) ?
		    ' ' : h[i];
		usum += c;
		ssum += (signed char)c;
	}
	/* POSIX sums unsigned bytes; some old tars summed signed ones. */
	if (sum != usum && (ssum < 0 || sum != (uint64_t)ssum))
		return ck_err_set(CK_E_PARSE, "tar header checksum mismatch "
		    "(recorded %llu, computed %u)", (unsigned long long)sum,
		    usum);
	if (memcmp(h + F_MAGIC, "ustar\0" "00", 8) != 0 &&
	    memcmp(h + F_MAGIC, "ustar  \0", 8) != 0)
		return ck_err_set(CK_E_PARSE, "tar header is not ustar");
	if (text_field(h + F_NAME, W_NAME, nm) != 0 ||
	    text_field(h + F_PREFIX, W_PREFIX, pf) != 0)
		return ck_err_set(CK_E_PARSE, "tar header with a malformed "
		    "name");
	if (pf[0] != '\0')
		snprintf(full, sizeof(full), "%s/%s", pf, nm);
	else
		snprintf(full, sizeof(full), "%s", nm);
	if (h[F_TYPE] != '0' && h[F_TYPE] != '\0') {
		if (h[F_TYPE] >= 0x20 && h[F_TYPE] <= 0x7e)
			return ck_err_set(CK_E_PARSE, "tar entry \"%s\" is "
			    "not a regular file (type '%c')", full, h[F_TYPE]);
		return ck_err_set(CK_E_PARSE, "tar entry \"%s\" is not a "
		    "regular file (type 0x%02x)", full, h[F_TYPE]);
	}
	if (!ck_tar_name_valid(full))
		return ck_err_set(CK_E_PARSE, "tar entry name \"%s\" refused: "
		    "names must be relative, without \"..\", \".\" or empty "
		    "components", full);
	if (parse_num(h + F_MODE, 8, 0, &v) != 0 ||
	    parse_num(h + F_UID, 8, NUM_B256, &v) != 0 ||
	    parse_num(h + F_GID, 8, NUM_B256, &v) != 0 ||
	    parse_num(h + F_MTIME, W_MTIME, NUM_B256, &v) != 0 ||
	    parse_num(h + F_DEVMAJ, 8, 0, &v) != 0 ||
	    parse_num(h + F_DEVMIN, 8, 0, &v) != 0)
		return ck_err_set(CK_E_PARSE, "tar entry \"%s\": malformed "
		    "numeric field", full);
	if (!all_zero(h + F_LINK, W_LINK) ||
	    text_field(h + F_UNAME, W_UNAME, NULL) != 0 ||
	    text_field(h + F_GNAME, W_UNAME, NULL) != 0 ||
	    !all_zero(h + F_PAD, BLK - F_PAD))
		return ck_err_set(CK_E_PARSE, "tar entry \"%s\": unexpected "
		    "bytes in the header", full);
	if (parse_num(h + F_SIZE, W_SIZE, NUM_B256 | NUM_DIGIT, &v) != 0 || v > TAR_ENTRY_MAX)
		return ck_err_set(CK_E_PARSE, "tar entry \"%s\": malformed or "
		    "absurd size", full);
	if (strlen(full) >= namesz)
		return ck_err_set(CK_E_TOOBIG, "tar entry name too long: "
		    "\"%s\"", full);
	memcpy(name, full, strlen(full) + 1);
	*size = v;
	return 0;
}

/* Discard the rest of the current entry and its padding. */
static int
finish_entry(struct ck_tar_reader *r)
{
	unsigned char buf[BLK];
	long n;
	int rc;

	while (r->left > 0) {
		n = r->io->read(r->io->arg, buf,
		    r->left < sizeof(buf) ? (size_t)r->left : sizeof(buf));
		if (n < 0)
			return CK_E_IO;
		if (n == 0)
			return ck_err_set(CK_E_PARSE, "tar stream truncated "
			    "in the data of an entry");
		r->left -= (uint64_t)n < r->left ? (uint64_t)n : r->left;
	}
	if (r->pad > 0) {
		rc = read_full(r, buf, r->pad, "the padding of an entry");
		if (rc == 1)
			return ck_err_set(CK_E_PARSE, "tar stream truncated "
			    "in the padding of an entry");
		if (rc != 0)
			return rc;
		if (!all_zero(buf, r->pad))
			return ck_err_set(CK_E_PARSE, "tar padding after an "
			    "entry is not zero");
		r->pad = 0;
	}
	return 0;
}

int
ck_tar_next(struct ck_tar_reader *r, char *name, size_t namesz,
    uint64_t *size)
{
	unsigned char h[BLK];
	uint64_t sz = 0;
	int rc;

	if (r->ended)
		return 0;
	if ((rc = finish_entry(r)) != 0)
		return rc;
	rc = read_full(r, h, BLK, "a header");
	if (rc == 1)
		return ck_err_set(CK_E_PARSE, "tar stream truncated: it ends "
		    "without the end-of-archive blocks");
	if (rc != 0)
		return rc;
	if (all_zero(h, BLK)) {
		rc = read_full(r, h, BLK, "the end-of-archive blocks");
		if (rc == 1)
			return ck_err_set(CK_E_PARSE, "tar stream truncated: "
			    "only one of the two end-of-archive blocks");
		if (rc != 0)
			return rc;
		if (!all_zero(h, BLK))
			return ck_err_set(CK_E_PARSE, "tar stream has a zero "
			    "block followed by data");
		/* Blocking may pad with zeros; anything else is refused. */
		for (;;) {
			long n = r->io->read(r->io->arg, h, sizeof(h));
			if (n < 0)
				return CK_E_IO;
			if (n == 0)
				break;
			if (!all_zero(h, (size_t)n))
				return ck_err_set(CK_E_PARSE, "data after the "
				    "end of the tar archive");
		}
		r->ended = 1;
		return 0;
	}
	if ((rc = check_header(h, name, namesz, &sz)) != 0)
		return rc;
	r->size = sz;
	r->left = sz;
	r->pad = (unsigned)((BLK - sz % BLK) % BLK);
	*size = sz;
	return 1;
}

long
ck_tar_read_data(struct ck_tar_reader *r, void *buf, size_t len)
{
	long n;

	if (r->left == 0 || len == 0)
		return 0;
	if (len > r->left)
		len = (size_t)r->left;
	if (len > (1u << 30))
		len = 1u << 30;
	n = r->io->read(r->io->arg, buf, len);
	if (n < 0)
		return -1;
	if (n == 0) {
		ck_err_set(CK_E_PARSE, "tar stream truncated in the data of "
		    "an entry (%llu bytes missing)",
		    (unsigned long long)r->left);
		return -1;
	}
	if ((size_t)n > len)	/* defensive: an io returning too much */
		n = (long)len;
	r->left -= (uint64_t)n;
	return n;
}

int
ck_tar_skip_pad(struct ck_tar_reader *r)
{
	return finish_entry(r);
}
