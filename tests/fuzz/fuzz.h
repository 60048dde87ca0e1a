/*
 * fuzz.h - the libFuzzer entry points, declared once so that the targets
 * and the replay driver build cleanly with -Wmissing-prototypes.
 *
 * Every tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput() and may
 * define LLVMFuzzerInitialize(). The same object is linked either with
 * libFuzzer (-Dfuzzing=true, clang) or with replay.c, which feeds it the
 * seed corpus under `meson test --suite fuzz`.
 */
#ifndef CK_TESTS_FUZZ_H
#define CK_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional; called once before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A failed invariant in a target: report and abort so that libFuzzer
 * and the replay driver both see a crash. */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#endif
