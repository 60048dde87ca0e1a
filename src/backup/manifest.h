/*
 * manifest.h - building a backup set's manifest (parsing: backup.h).
 */
#ifndef CK_BACKUP_MANIFEST_H
#define CK_BACKUP_MANIFEST_H

#include <stddef.h>

#include "backup/backup.h"

#define CK_MANIFEST_FORMAT "certkeep-backup/1"

/* JSON text of M (*out: caller frees). */
int ck_manifest_build(const struct ck_manifest *m, char **out,
    size_t *outlen);

/* 64 lower-case hex digits into 32 bytes. */
int ck_hex_decode32(const char *hex, unsigned char out[32]);

#endif
