/*
 * replay.c - run a fuzz target over files, without libFuzzer.
 *
 *   replay_<name> PATH...
 *
 * Every regular file under each PATH (directories are walked recursively,
 * in sorted order; names starting with '.' are skipped) is read into a
 * buffer of exactly its size and passed to LLVMFuzzerTestOneInput(), so
 * that a sanitized build reports the same out-of-bounds reads libFuzzer
 * would. LLVMFuzzerInitialize() is called first if the target defines it.
 * Arguments starting with '-' (libFuzzer flags) are ignored. Exits non-zero
 * if a path cannot be read or if no input was found at all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Targets need not define it; libFuzzer declares it weak too. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv)
    __attribute__((weak));

#define REPLAY_MAX_FILE (16u * 1024 * 1024)

static size_t nrun;

static int
run_file(const char *path, off_t size)
{
	unsigned char *buf;
	size_t n;
	FILE *f;

	if (size < 0 || (unsigned long long)size > REPLAY_MAX_FILE) {
		fprintf(stderr, "replay: %s: too large\n", path);
		return -1;
	}
	/* At least one byte so that malloc(0) is never asked for, but the
	 * target is told the exact size. */
	if ((buf = malloc(size > 0 ? (size_t)size : 1)) == NULL) {
		fprintf(stderr, "replay: out of memory\n");
		return -1;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		free(buf);
		return -1;
	}
	n = fread(buf, 1, (size_t)size, f);
	if (ferror(f) || n != (size_t)size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	nrun++;
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_path(const char *path)
{
	struct dirent *de;
	struct stat st;
	char **names = NULL, **nn, *child;
	size_t n = 0, i, len;
	DIR *d;
	int r = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (S_ISREG(st.st_mode))
		return run_file(path, st.st_size);
	if (!S_ISDIR(st.st_mode))
		return 0;
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		len = strlen(path) + strlen(de->d_name) + 2;
		if ((child = malloc(len)) == NULL ||
		    (nn = realloc(names, (n + 1) * sizeof(*nn))) == NULL) {
			free(child);
			r = -1;
			break;
		}
		snprintf(child, len, "%s/%s", path, de->d_name);
		names = nn;
		names[n++] = child;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		if (r == 0 && run_path(names[i]) != 0)
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

int
main(int argc, char **argv)
{
	int i, r = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (run_path(argv[i]) != 0)
			r = 1;
	}
	printf("replay: %zu input(s) run\n", nrun);
	if (nrun == 0) {
		fprintf(stderr, "replay: no input found\n");
		return 1;
	}
	return r;
}
