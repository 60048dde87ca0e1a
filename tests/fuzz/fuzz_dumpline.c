/*
 * fuzz_dumpline - store_load_line() on arbitrary lines of a backup's store
 * parts, as a restore reads them from a set.
 *
 * Input: a table name, '\n', then the line (the rest of the input, which
 * may hold more newlines). Each line is loaded into a scratch store in a
 * transaction that is rolled back, so every input meets the same store.
 * A refusal must come with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "store/store.h"
#include "store/store_dump.h"

#include "fuzz.h"

static struct store *st;
static char dir[4096], path[4200];

static void
cleanup(void)
{
	char p[4300];

	store_close(st);
	st = NULL;
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/certkeep-fuzz-dumpline.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("fuzz_dumpline: mkdtemp");
		abort();
	}
	snprintf(path, sizeof(path), "%s/store.db", dir);
	if (store_open(path, 1, &st) != 0) {
		fprintf(stderr, "fuzz_dumpline: %s\n", ck_err_msg());
		abort();
	}
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char table[64];
	size_t tlen;
	int r;

	if (st == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	if (nl == NULL || (tlen = (size_t)(nl - data)) >= sizeof(table))
		return 0;
	memcpy(table, data, tlen);
	table[tlen] = '\0';
	FUZZ_CHECK(store_tx_begin(st) == 0);
	ck_err_clear();
	r = store_load_line(st, table, (const char *)nl + 1,
	    size - tlen - 1, 0, 1000000);
	FUZZ_CHECK(r <= 0 && r > CK_E__MAX);
	FUZZ_CHECK(r == 0 || ck_err_msg()[0] != '\0');
	FUZZ_CHECK(store_tx_depth(st) == 1);
	store_tx_rollback(st);
	return 0;
}
