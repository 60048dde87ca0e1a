/*
 * fuzz_manifest.c - ck_manifest_parse, the strict reader of a backup set's
 * manifest, on arbitrary bytes. A manifest that parses is built again and
 * must parse to the same values (the builder and the parser agree).
 */
#include <stdlib.h>
#include <string.h>

#include "backup/backup.h"
#include "backup/manifest.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ck_manifest *m, *m2;
	char *json = NULL;
	size_t len, i;

	if (size > 256 * 1024)
		return 0;
	if ((m = calloc(2, sizeof(*m))) == NULL)
		return 0;
	m2 = m + 1;
	if (ck_manifest_parse((const char *)data, size, m) == 0) {
		FUZZ_CHECK(m->seq_from <= m->seq_to);
		FUZZ_CHECK(strcmp(m->kind, "full") == 0 ||
		    strcmp(m->kind, "incremental") == 0);
		FUZZ_CHECK(m->nparts <= sizeof(m->parts) / sizeof(m->parts[0]));
		FUZZ_CHECK(ck_manifest_build(m, &json, &len) == 0);
		FUZZ_CHECK(ck_manifest_parse(json, len, m2) == 0);
		FUZZ_CHECK(strcmp(m->id, m2->id) == 0);
		FUZZ_CHECK(strcmp(m->parent_id, m2->parent_id) == 0);
		FUZZ_CHECK(m->seq_to == m2->seq_to && m->nparts == m2->nparts);
		for (i = 0; i < m->nparts; i++)
			FUZZ_CHECK(memcmp(m->parts[i].sha256,
			    m2->parts[i].sha256, 32) == 0);
		FUZZ_CHECK(memcmp(&m->counts, &m2->counts,
		    sizeof(m->counts)) == 0);
		free(json);
	}
	free(m);
	return 0;
}
