/*
 * drill.h - restore drills (see drill.c).
 */
#ifndef CK_BACKUP_DRILL_H
#define CK_BACKUP_DRILL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "backup/backup.h"
#include "ca/ca.h"

struct ck_drill_opts {
	EVP_PKEY *key;		/* the CA key (the live home's or a key
				   backup's) */
	const char *certkeepd;	/* the server program */
	const char *service_user;	/* run as root: who the throwaway
					   certkeepd serves as */
	int progress;
};

/* Restore FILES into a scratch home, check it, serve from it, issue a test
 * certificate, tear it down. REPORT gets a one-line summary on success. */
int ck_backup_drill(const struct ck_backup_reader *rd,
    const char *const *files, size_t nfiles, const struct ck_drill_opts *o,
    struct ck_manifest *last, char *report, size_t reportsz);

/* Every certificate in CA's store must verify under the CA's key and name
 * it as issuer (checked on every core). *CHECKED gets how many were
 * checked; CK_E_BADSIG says how many fail and names one. */
int ck_drill_check_certs(struct ck_ca *ca, uint64_t *checked);

#endif
