#include "common/secmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

struct ck_secret *
ck_secret_new(size_t cap)
{
	struct ck_secret *s = NULL;
	long pg = sysconf(_SC_PAGESIZE);
	size_t maplen;
	void *p;

	if (pg <= 0)
		pg = 4096;
	if (cap == 0 || cap > (1u << 24))
		return NULL;
	maplen = ((cap + 1 + (size_t)pg - 1) / (size_t)pg) * (size_t)pg;
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)mlock(p, maplen);		/* best effort */
#ifdef MADV_DONTDUMP
	(void)madvise(p, maplen, MADV_DONTDUMP);
#endif
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		munmap(p, maplen);
		return NULL;
	}
	s->buf = p;
	s->cap = cap;
	s->maplen = maplen;
	return s;
}

void
ck_secret_free(struct ck_secret *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s->buf, s->maplen);
	munlock(s->buf, s->maplen);
	munmap(s->buf, s->maplen);
	free(s);
}

int
ck_secret_equal(const struct ck_secret *a, const struct ck_secret *b)
{
	if (a == NULL || b == NULL || a->len != b->len)
		return 0;
	return CRYPTO_memcmp(a->buf, b->buf, a->len) == 0;
}

void
ck_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

#if defined(__SANITIZE_ADDRESS__)
#define CK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CK_ASAN 1
#endif
#endif

void
ck_process_harden(void)
{
	struct rlimit rl = { 0, 0 };

	umask(077);
	(void)setrlimit(RLIMIT_CORE, &rl);
#ifndef CK_ASAN
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Private key BIGNUMs then live in locked, guarded pages. */
	(void)CRYPTO_secure_malloc_init(1u << 17, 32);
#endif
}

void
ck_process_nodump(void)
{
#ifndef CK_ASAN
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}
