/*
 * strutil.h - small string helpers: lists, hex, bounded copies.
 */
#ifndef CK_COMMON_STRUTIL_H
#define CK_COMMON_STRUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A list of owned strings. */
struct ck_strlist {
	char **v;
	size_t n;
};

/*
 * Split `s` at commas and white space into trimmed, non-empty items that are
 * appended to `l`. Returns 0 or CK_E_NOMEM.
 */
int ck_strlist_split(struct ck_strlist *l, const char *s);

/* Append a copy of `s`. */
int ck_strlist_add(struct ck_strlist *l, const char *s);

/* 1 if `s` is in the list (exact, case-sensitive). */
int ck_strlist_has(const struct ck_strlist *l, const char *s);

/* Free all items; the list is left empty and reusable; accepts NULL. */
void ck_strlist_clear(struct ck_strlist *l);

/* Lower-case hex of `len` bytes into `out` (2*len+1 bytes). */
void ck_hex_encode(const unsigned char *in, size_t len, char *out);

/* Exactly 2*n lower-case hex digits (LEN of them at S) into n bytes: 0,
 * or -1 for any other length or character (we only write lower case). */
int ck_hex_decode(const char *s, size_t len, unsigned char *out, size_t n);

/*
 * Parse an unsigned decimal integer in [min, max] with no trailing junk.
 * Returns 0 or CK_E_PARSE with a message naming `what`.
 */
int ck_parse_u64(const char *s, uint64_t min, uint64_t max, const char *what,
    uint64_t *out);

/* A zstd compression level for backups: -7 to -1 (fast) or 1 to 19;
 * 0 is refused (zstd reads it as "its default"). */
#define CK_ZSTD_LEVEL_MIN (-7)
#define CK_ZSTD_LEVEL_MAX 19
int ck_parse_zstd_level(const char *s, const char *what, int *out);

/* Copy with truncation check; CK_E_TOOBIG if `src` does not fit. */
int ck_strcpy_bounded(char *dst, size_t dstsz, const char *src);

#endif
