/*
 * certkeep key backup|restore|fingerprint: backups of the CA key itself,
 * apart from data backups (docs/backup.md), made only when asked for.
 *
 * A backup is read back before the command reports success: the
 * passphrase form is decrypted again, the shares are rejoined from two
 * different subsets. A restore writes the key only into a home that has
 * the CA certificate and no key, and only a key that matches it.
 *
 * A home with an ACME EAB key pair (src/ca/eab_seal.h) has the pair's
 * private key backed up with the CA key: in the passphrase form as a
 * second ENCRYPTED PRIVATE KEY block after the CA key's, same scheme, same
 * backup passphrase (whatever reads only the first block, an older
 * certkeep or `openssl pkey`, sees the CA key as before); in the share
 * form as a second set of shares for the same custodians, labelled
 * "<ca>-acme-eab", given back with --eab-share. A backup without it
 * restores the CA key alone, as before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "backup/custody.h"
#include "backup/keybackup.h"
#include "ca/ca.h"
#include "ca/eab_seal.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "keystore/keystore.h"

static const char key_usage[] =
    "certkeep key backup --home DIR --out FILE|DIR\n"
    "        [--backup-passphrase-file FILE | --backup-passphrase-fd N]\n"
    "        [--scrypt-log2n N]\n"
    "       certkeep key backup --home DIR --shares N --threshold M\n"
    "        --custodian NAME (N times) --out-dir DIR\n"
    "       certkeep key restore --home DIR --from FILE\n"
    "        [--backup-passphrase-file FILE | --backup-passphrase-fd N]\n"
    "       certkeep key restore --home DIR --share FILE --share FILE ...\n"
    "        [--eab-share FILE --eab-share FILE ...]\n"
    "       certkeep key fingerprint --home DIR\n"
    "       certkeep key protect|unprotect ... (M-of-N unlock: see\n"
    "        'certkeep key protect --help')\n"
    "\n"
    "backup reads the CA key's passphrase (--passphrase-file/-fd or the\n"
    "terminal); the backup passphrase (at least 12 characters) must differ\n"
    "from it. restore asks for the passphrase the restored key file gets\n"
    "(--passphrase-file/-fd or the terminal). --scrypt-log2n: backup: the\n"
    "backup's scrypt cost (14..22, default 20); restore: the key file's\n"
    "(10..15, as init).\n"
    "\n"
    "A CA with an ACME EAB key pair has its private key backed up too: in\n"
    "the passphrase file, or as shares of its own (\"-acme-eab-\" in their\n"
    "names), which restore takes as --eab-share.";

enum { O_OUT = CLI_OPT__FIRST_LOCAL, O_BPFILE, O_BPFD, O_LOG2N, O_SHARES,
	O_THRESHOLD, O_CUSTODIAN, O_OUTDIR, O_FROM, O_SHARE, O_EAB_SHARE };

struct key_opts {
	struct cli_common com;
	struct ck_pass_src bpass;	/* the backup passphrase */
	const char *out, *out_dir, *from;
	const char *custodians[CK_KEYBACKUP_MAX_SHARES];
	const char *shares[CK_KEYBACKUP_MAX_SHARES];
	const char *eab_shares[CK_KEYBACKUP_MAX_SHARES];
	int ncust, nshare, neab, n, m, log2n;
};

/* Audit a failure of ACTION; the error message is kept for the user. */
static int
audit_failure(struct ck_ca *ca, const char *action, const char *object,
    int r)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", ck_err_msg()[0] ? ck_err_msg() :
	    ck_strerror(r));
	(void)ck_ca_audit(ca, action, object, r == CK_E_PASSPHRASE ||
	    r == CK_E_EXISTS || r == CK_E_INVAL || r == CK_E_PERM ?
	    AUDIT_REFUSED : AUDIT_FAILED, msg);
	return ck_err_set(r, "%s", msg);
}

/*
 * A name for file names: the CA certificate's common name with everything
 * but [A-Za-z0-9._-] turned into '-', else the home directory's name.
 */
void
cli_ca_label(const struct ck_ca *ca, char *out, size_t outsz)
{
	unsigned char *utf8 = NULL;
	const char *src = NULL, *slash;
	X509_NAME_ENTRY *e;
	size_t o = 0, i;
	int idx, c;

	if (ca->cert != NULL &&
	    (idx = X509_NAME_get_index_by_NID(X509_get_subject_name(ca->cert),
	    NID_commonName, -1)) >= 0 &&
	    (e = X509_NAME_get_entry(X509_get_subject_name(ca->cert),
	    idx)) != NULL &&
	    ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e)) > 0)
		src = (const char *)utf8;
	if (src == NULL) {
		slash = strrchr(ca->home, '/');
		src = slash != NULL && slash[1] != '\0' ? slash + 1 : ca->home;
	}
	for (i = 0; src[i] != '\0' && o + 1 < outsz &&
	    o < CK_KEYBACKUP_NAME_MAX; i++) {
		c = (unsigned char)src[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' ||
		    ((c == '.' || c == '-') && o > 0))
			out[o++] = (char)c;
		else if (o > 0 && out[o - 1] != '-')
			out[o++] = '-';
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
	if (!ck_keybackup_name_ok(out))
		snprintf(out, outsz, "ca");
	OPENSSL_free(utf8);
}

/* The CA's public key: from its certificate, else from its request. */
static int
ca_public_key(struct ck_ca *ca, EVP_PKEY **out)
{
	unsigned char *buf = NULL;
	char path[4096];
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	BIO *bio = NULL;
	size_t len;
	int r;

	if (ca->cert != NULL) {
		if ((pub = X509_get_pubkey(ca->cert)) == NULL)
			return ck_err_ssl(CK_E_PARSE, "the CA certificate's "
			    "public key");
		*out = pub;
		return 0;
	}
	if ((r = ck_ca_path(ca, ca->cfg->csr_file, path, sizeof(path))) != 0)
		return r;
	if ((r = ck_fs_read(path, 65536, &buf, &len)) != 0)
		return r == CK_E_NOTFOUND ? ck_err_set(r, "the CA has neither "
		    "a certificate nor a request") : r;
	r = CK_E_PARSE;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL &&
	    (req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) != NULL &&
	    (pub = X509_REQ_get_pubkey(req)) != NULL) {
		*out = pub;
		r = 0;
	} else
		ck_err_ssl(r, "reading the CA's request");
	X509_REQ_free(req);
	BIO_free(bio);
	free(buf);
	return r;
}

/*
 * Unlock the CA as every command does (audited refusals, the key checked
 * against the certificate), then load a copy of the key for the backup:
 * the signer never hands its key out. *pw gets the passphrase.
 */
static int
load_ca_key(struct ck_ca *ca, const struct ck_pass_src *src,
    struct ck_secret **pw, EVP_PKEY **key)
{
	char path[4096];
	int r;

	if (ca->cfg->key_uri[0] != '\0')
		return ck_err_set(CK_E_STATE, "the CA key is in a PKCS#11 "
		    "token (%s) and never leaves it: back it up with the "
		    "token's own tools (the HSM's backup, cloning or "
		    "key-wrapping procedure); certkeep's data backups keep "
		    "only its reference", ca->cfg->key_uri);
	if ((r = ck_ca_path(ca, ca->cfg->key_file, path, sizeof(path))) != 0)
		return r;
	if ((r = ck_fs_check_private_file(path)) != 0) {
		if (r == CK_E_NOTFOUND)
			r = ck_err_set(r, "no CA key at %s", path);
		return r;
	}
	if ((r = ck_passphrase_read(src, "CA key passphrase: ", 0, 0,
	    pw)) != 0 ||
	    (r = ck_ca_unlock_with(ca, *pw)) != 0 ||
	    (r = keystore_load(path, *pw, key)) != 0)
		return r;
	return 0;
}

/* Read the backup passphrase; a new one is asked twice and must differ
 * from the CA key's. */
static int
backup_passphrase(const struct ck_pass_src *src, int new,
    const struct ck_secret *capw, struct ck_secret **out)
{
	int r;

	if ((r = ck_passphrase_read(src, new ? "New key backup passphrase: " :
	    "Key backup passphrase: ", new, new ? CK_KEYBACKUP_PASS_MIN : 0,
	    out)) != 0)
		return r;
	if (capw != NULL && ck_secret_equal(*out, capw)) {
		ck_secret_free(*out);
		*out = NULL;
		return ck_err_set(CK_E_PASSPHRASE, "the backup passphrase must "
		    "differ from the CA key's passphrase");
	}
	return 0;
}

/* ---- the ACME EAB key in key backups (see the top of the file) ---- */

/* Largest passphrase-form file read here (the CA key and the EAB key). */
#define PASS_SET_MAX (64u * 1024)

/* The home's EAB private key, under the CA key's passphrase PW; *out stays
 * NULL if the home has none. */
static int
eab_backup_key(struct ck_ca *ca, const struct ck_secret *pw, EVP_PKEY **out)
{
	int r;

	*out = NULL;
	if ((r = eab_key_load(ca->home, pw, out)) == CK_E_NOTFOUND) {
		ck_err_clear();
		return 0;
	}
	return r;
}

/* A private scratch directory (mkdtemp, 0700) under $TMPDIR or /tmp: the
 * key backup functions read and write files by name only. What goes in it
 * is encrypted under the backup passphrase. */
static int
scratch_dir(char *buf, size_t size)
{
	const char *tmp = getenv("TMPDIR");

	if (snprintf(buf, size, "%s/certkeep-key.XXXXXX", tmp != NULL &&
	    tmp[0] != '\0' ? tmp : "/tmp") >= (int)size)
		return ck_err_set(CK_E_TOOBIG, "$TMPDIR is too long");
	if (mkdtemp(buf) == NULL)
		return ck_err_set(CK_E_IO, "cannot make a scratch directory: "
		    "%s", strerror(errno));
	return 0;
}

/*
 * Write the passphrase form to PATH (exclusive, 0600): the CA key's block
 * and, if EAB is not NULL, the EAB key's after it, each as
 * ck_keybackup_write_pass() makes them under BPW.
 */
static int
write_pass_set(const char *path, EVP_PKEY *key, EVP_PKEY *eab,
    const struct ck_secret *bpw, int log2n)
{
	unsigned char *b1 = NULL, *b2 = NULL, *all = NULL;
	char dir[4200], p1[4300], p2[4300];
	size_t l1 = 0, l2 = 0;
	int r;

	if (eab == NULL)
		return ck_keybackup_write_pass(path, key, bpw, log2n);
	if (ck_fs_exists(path))
		return ck_err_set(CK_E_EXISTS, "%s already exists; not "
		    "overwriting it", path);
	if ((r = scratch_dir(dir, sizeof(dir))) != 0)
		return r;
	snprintf(p1, sizeof(p1), "%s/ca.p8", dir);
	snprintf(p2, sizeof(p2), "%s/acme-eab.p8", dir);
	if ((r = ck_keybackup_write_pass(p1, key, bpw, log2n)) != 0 ||
	    (r = ck_keybackup_write_pass(p2, eab, bpw, log2n)) != 0 ||
	    (r = ck_fs_read(p1, PASS_SET_MAX, &b1, &l1)) != 0 ||
	    (r = ck_fs_read(p2, PASS_SET_MAX, &b2, &l2)) != 0)
		goto out;
	if ((all = malloc(l1 + l2)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy(all, b1, l1);
	memcpy(all + l1, b2, l2);
	r = ck_fs_write_new(path, all, l1 + l2, 0600);
out:
	(void)unlink(p1);
	(void)unlink(p2);
	(void)rmdir(dir);
	free(all);
	free(b1);
	free(b2);
	return r;
}

/*
 * The EAB key of the passphrase-form backup at PATH: its second ENCRYPTED
 * PRIVATE KEY block, decrypted with BPW (*out, caller frees); *out stays
 * NULL for a backup without one.
 */
static int
read_pass_eab(const char *path, const struct ck_secret *bpw, EVP_PKEY **out)
{
	unsigned char *buf = NULL;
	X509_SIG *sig = NULL;
	BIO *in = NULL, *mem = NULL;
	BUF_MEM *bm;
	char dir[4200] = "", p[4300] = "", msg[1024];
	unsigned long e;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = ck_fs_read(path, PASS_SET_MAX, &buf, &len)) != 0)
		return r;
	if ((in = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	/* The first block is the CA key, read by ck_keybackup_read_pass(). */
	if ((sig = PEM_read_bio_PKCS8(in, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		r = ck_err_set(CK_E_PARSE, "%s is not a key backup: no "
		    "ENCRYPTED PRIVATE KEY (PKCS#8) in it", path);
		goto out;
	}
	X509_SIG_free(sig);
	if ((sig = PEM_read_bio_PKCS8(in, NULL, NULL, NULL)) == NULL) {
		e = ERR_peek_last_error();
		ERR_clear_error();
		if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
		    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
			r = 0;		/* a backup without an EAB key */
		else
			r = ck_err_set(CK_E_PARSE, "%s: the block after the CA "
			    "key is not an encrypted PKCS#8 key", path);
		goto out;
	}
	if ((mem = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PKCS8(mem, sig) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "copying the EAB key block");
		goto out;
	}
	BIO_get_mem_ptr(mem, &bm);
	if ((r = scratch_dir(dir, sizeof(dir))) != 0) {
		dir[0] = '\0';
		goto out;
	}
	snprintf(p, sizeof(p), "%s/acme-eab.p8", dir);
	if ((r = ck_fs_write_new(p, bm->data, bm->length, 0600)) != 0)
		goto out;
	if ((r = ck_keybackup_read_pass(p, bpw, out)) != 0) {
		/* Name the backup, not the scratch copy. */
		snprintf(msg, sizeof(msg), "%s", r == CK_E_PASSPHRASE ?
		    "wrong passphrase (or the backup is damaged)" :
		    ck_err_msg());
		r = ck_err_set(r, "cannot decrypt the ACME EAB key in %s: %s",
		    path, msg);
		goto out;
	}
	if (!EVP_PKEY_is_a(*out, "X25519")) {
		EVP_PKEY_free(*out);
		*out = NULL;
		r = ck_err_set(CK_E_PARSE, "%s: the second key is not an ACME "
		    "EAB key (X25519)", path);
	}
out:
	if (p[0] != '\0')
		(void)unlink(p);
	if (dir[0] != '\0')
		(void)rmdir(dir);
	BIO_free(mem);
	BIO_free(in);
	X509_SIG_free(sig);
	free(buf);
	return r;
}

/*
 * Whether a restore writes the backed-up EAB key EAB (*write): yes into a
 * home without one; a home that has one keeps it if it is the same key
 * and opens with the restored CA key's passphrase PW (certkeepd unlocks
 * both with one passphrase); otherwise refused, before anything is
 * written.
 */
static int
eab_restore_plan(struct ck_ca *ca, EVP_PKEY *eab, const struct ck_secret *pw,
    int *write)
{
	EVP_PKEY *cur = NULL;
	int r, same;

	*write = 0;
	if ((r = eab_key_restore_check(ca->home, eab)) == 0) {
		*write = 1;
		return 0;
	}
	if (r != CK_E_EXISTS)
		return r;
	r = eab_key_load(ca->home, pw, &cur);
	same = r == 0 && eab_key_match(cur, eab);
	EVP_PKEY_free(cur);
	if (same)
		return 0;
	return ck_err_set(CK_E_EXISTS, "%s is in the home already, but %s: "
	    "move it away to restore the backed-up one", EAB_SEAL_KEY_FILE,
	    r == 0 ? "it is another key" : r == CK_E_PASSPHRASE ?
	    "it does not open with the new CA key passphrase" :
	    "it cannot be read");
}

/* The custody ledger: the artefact is created, and its record is written
 * beside it, signed (the CA is unlocked for the backup). */
static int
record_created(struct ck_ca *ca, const char *path, const char *kind,
    const char *what)
{
	char hex[65], cpath[4200];
	int r;

	if ((r = ck_custody_file_sha256(path, hex)) != 0 ||
	    (r = ck_custody_record(ca, "created", hex, kind, path, what,
		NULL)) != 0)
		return r;
	if (snprintf(cpath, sizeof(cpath), "%s.custody", path) >=
	    (int)sizeof(cpath))
		return ck_err_set(CK_E_INVAL, "path too long: %s", path);
	return ck_custody_export(ca, hex, cpath);
}

static int
key_backup_pass(struct ck_ca *ca, struct key_opts *o, EVP_PKEY *key,
    EVP_PKEY *eab, const struct ck_secret *capw, const char *fp,
    char *detail, size_t dsz)
{
	struct ck_secret *bpw = NULL;
	EVP_PKEY *back = NULL, *eback = NULL;
	char path[4096], label[CK_KEYBACKUP_NAME_MAX + 1], name[256];
	char msg[1024];
	struct stat st;
	int r, log2n = o->log2n ? o->log2n : CK_KEYBACKUP_SCRYPT_LOG2N;

	/* A directory gets the standard name. */
	if (stat(o->out, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_ca_label(ca, label, sizeof(label));
		snprintf(name, sizeof(name), "%s-key-%.16s.p8", label, fp);
		if ((r = ck_path_join(path, sizeof(path), o->out, name)) != 0)
			return r;
	} else if ((r = ck_strcpy_bounded(path, sizeof(path), o->out)) != 0)
		return r;
	if (ck_fs_exists(path))
		return ck_err_set(CK_E_EXISTS, "%s already exists; not "
		    "overwriting it", path);
	if ((r = backup_passphrase(&o->bpass, 1, capw, &bpw)) != 0)
		goto out;
	fprintf(stderr, "certkeep: encrypting the key (scrypt N=2^%d, "
	    "%llu MiB)...\n", log2n, (1ull << log2n) / 1024);
	if ((r = write_pass_set(path, key, eab, bpw, log2n)) != 0)
		goto out;
	/* Read back what was written before calling it a backup, as a
	 * restore reads it. */
	if ((r = ck_keybackup_read_pass(path, bpw, &back)) != 0 ||
	    EVP_PKEY_eq(back, key) != 1 ||
	    (eab != NULL && ((r = read_pass_eab(path, bpw, &eback)) != 0 ||
	    eback == NULL || !eab_key_match(eback, eab)))) {
		(void)unlink(path);
		snprintf(msg, sizeof(msg), "%s", r ? ck_err_msg() :
		    "it holds another key");
		r = ck_err_set(r ? r : CK_E_INTERNAL, "the key backup does not "
		    "read back (%s); removed it", msg);
		goto out;
	}
	if ((r = record_created(ca, path, "key-backup", eab != NULL ?
	    "passphrase form (scrypt), with the ACME EAB key" :
	    "passphrase form (scrypt)")) != 0)
		goto out;
	printf("Wrote %s (key %s%s); it decrypts to the CA key.\n", path, fp,
	    eab != NULL ? ", and the ACME EAB key" : "");
	snprintf(detail, dsz, "passphrase form, scrypt N=2^%d, %.1024s%s",
	    log2n, path, eab != NULL ? ", with the ACME EAB key" : "");
out:
	EVP_PKEY_free(eback);
	EVP_PKEY_free(back);
	ck_secret_free(bpw);
	return r;
}

static int
join_check(char **paths, int from, int m, EVP_PKEY *key)
{
	EVP_PKEY *k = NULL;
	int r;

	if ((r = ck_keybackup_join((const char *const *)paths + from, m,
	    &k)) != 0)
		return r;
	r = EVP_PKEY_eq(k, key) == 1 ? 0 : ck_err_set(CK_E_INTERNAL,
	    "the shares rejoin to another key");
	EVP_PKEY_free(k);
	return r;
}

/* Split KEY into shares labelled LABEL and check that they rejoin;
 * nothing is left behind on failure. */
static int
split_checked(struct key_opts *o, EVP_PKEY *key, const char *label,
    char ***paths)
{
	char msg[1024];
	int i, r;

	if ((r = ck_keybackup_split(key, o->m, o->n, o->custodians,
	    o->out_dir, label, paths)) != 0)
		return r;
	/* The first M and the last M shares must each give the key back. */
	if ((r = join_check(*paths, 0, o->m, key)) != 0 ||
	    (r = join_check(*paths, o->n - o->m, o->m, key)) != 0) {
		for (i = 0; i < o->n; i++) {
			(void)unlink((*paths)[i]);
			free((*paths)[i]);
		}
		free(*paths);
		*paths = NULL;
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		return ck_err_set(r, "the shares do not rejoin (%s); removed "
		    "them", msg);
	}
	return 0;
}

static int
key_backup_shares(struct ck_ca *ca, struct key_opts *o, EVP_PKEY *key,
    EVP_PKEY *eab, char *detail, size_t dsz)
{
	char label[CK_KEYBACKUP_NAME_MAX + 1], elabel[CK_KEYBACKUP_NAME_MAX + 1];
	char **paths = NULL, **epaths = NULL, what[256];
	size_t dl;
	int i, r;

	cli_ca_label(ca, label, sizeof(label));
	/* The EAB key's shares: a set of their own, named apart. */
	snprintf(elabel, sizeof(elabel), "%.*s-acme-eab",
	    CK_KEYBACKUP_NAME_MAX - 9, label);
	if ((r = split_checked(o, key, label, &paths)) != 0)
		return r;
	if (eab != NULL && (r = split_checked(o, eab, elabel, &epaths)) != 0) {
		/* All or nothing. */
		for (i = 0; i < o->n; i++)
			(void)unlink(paths[i]);
		goto out;
	}
	for (i = 0; i < o->n; i++) {
		snprintf(what, sizeof(what), "share %d of %d (any %d), "
		    "custodian %s", i + 1, o->n, o->m, o->custodians[i]);
		if ((r = record_created(ca, paths[i], "key-share", what)) != 0)
			goto out;
	}
	for (i = 0; epaths != NULL && i < o->n; i++) {
		snprintf(what, sizeof(what), "ACME EAB key share %d of %d "
		    "(any %d), custodian %s", i + 1, o->n, o->m,
		    o->custodians[i]);
		if ((r = record_created(ca, epaths[i], "key-share", what)) != 0)
			goto out;
	}
	dl = (size_t)snprintf(detail, dsz, "%d of %d shares in %s to", o->m,
	    o->n, o->out_dir);
	for (i = 0; i < o->n; i++) {
		printf("%s\n", paths[i]);
		if (dl < dsz)
			dl += (size_t)snprintf(detail + dl, dsz - dl, "%s %s",
			    i ? "," : "", o->custodians[i]);
	}
	for (i = 0; epaths != NULL && i < o->n; i++)
		printf("%s\n", epaths[i]);
	if (epaths != NULL && dl < dsz)
		(void)snprintf(detail + dl, dsz - dl, "; with the ACME EAB "
		    "key's shares");
	fprintf(stderr, "certkeep: wrote %d shares%s; any %d of them restore "
	    "the key. Give each file to its custodian only.\n", o->n,
	    epaths != NULL ? ", and as many of the ACME EAB key" : "", o->m);
out:
	for (i = 0; paths != NULL && i < o->n; i++)
		free(paths[i]);
	free(paths);
	for (i = 0; epaths != NULL && i < o->n; i++)
		free(epaths[i]);
	free(epaths);
	return r;
}

static int
key_backup(const char *home, struct key_opts *o)
{
	struct ck_ca *ca = NULL;
	struct ck_secret *capw = NULL;
	EVP_PKEY *key = NULL, *eab = NULL;
	char fp[65] = "", detail[2048] = "";
	int r;

	if ((r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if ((r = load_ca_key(ca, &o->com.pass, &capw, &key)) != 0 ||
	    (r = ck_key_fingerprint(key, fp)) != 0 ||
	    (r = eab_backup_key(ca, capw, &eab)) != 0)
		goto fail;
	if (o->out != NULL)
		r = key_backup_pass(ca, o, key, eab, capw, fp, detail,
		    sizeof(detail));
	else
		r = key_backup_shares(ca, o, key, eab, detail, sizeof(detail));
	if (r != 0)
		goto fail;
	if ((r = ck_ca_audit(ca, "key-backup", fp, AUDIT_OK, detail)) != 0)
		goto fail;
	EVP_PKEY_free(eab);
	EVP_PKEY_free(key);
	ck_secret_free(capw);
	ck_ca_close(ca);
	return CLI_EXIT_OK;
fail:
	r = audit_failure(ca, "key-backup", fp[0] ? fp : ca->cfg->key_file,
	    r);
	EVP_PKEY_free(eab);
	EVP_PKEY_free(key);
	ck_secret_free(capw);
	ck_ca_close(ca);
	return cli_fail(r);
}

static int
key_restore(const char *home, struct key_opts *o)
{
	struct ck_ca *ca = NULL;
	struct ck_secret *bpw = NULL, *pw = NULL;
	EVP_PKEY *key = NULL, *eab = NULL;
	char path[4096], dir[4096], fp[65] = "", cfp[65] = "", detail[2048];
	char epub[4096], ekey[4096], *slash;
	size_t dl;
	int i, r, eab_write = 0;

	if ((r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if ((r = ck_ca_path(ca, ca->cfg->key_file, path, sizeof(path))) != 0)
		goto fail;
	if (ca->cert == NULL) {
		r = ck_err_set(CK_E_STATE, "%s has no CA certificate to check "
		    "a restored key against", home);
		goto fail;
	}
	if ((r = ck_key_fingerprint(X509_get0_pubkey(ca->cert), cfp)) != 0)
		goto fail;
	if (ck_fs_exists(path)) {
		r = ck_err_set(CK_E_EXISTS, "a CA key is already at %s; key "
		    "restore only fills a home that has none", path);
		goto fail;
	}
	if (o->from != NULL) {
		if ((r = backup_passphrase(&o->bpass, 0, NULL, &bpw)) != 0 ||
		    (r = ck_keybackup_read_pass(o->from, bpw, &key)) != 0 ||
		    (r = read_pass_eab(o->from, bpw, &eab)) != 0)
			goto fail;
		snprintf(detail, sizeof(detail), "from the passphrase backup "
		    "%s", o->from);
	} else {
		if ((r = ck_keybackup_join(o->shares, o->nshare, &key)) != 0)
			goto fail;
		dl = (size_t)snprintf(detail, sizeof(detail), "from %d shares:",
		    o->nshare);
		for (i = 0; i < o->nshare && dl < sizeof(detail); i++) {
			slash = strrchr(o->shares[i], '/');
			dl += (size_t)snprintf(detail + dl, sizeof(detail) - dl,
			    "%s %s", i ? "," : "", slash ? slash + 1 :
			    o->shares[i]);
		}
	}
	if ((r = ck_key_fingerprint(key, fp)) != 0)
		goto fail;
	if (EVP_PKEY_eq(X509_get0_pubkey(ca->cert), key) != 1) {
		r = ck_err_set(CK_E_INVAL, "the backed-up key (%s) does not "
		    "belong to this CA's certificate (key %s)", fp, cfp);
		goto fail;
	}
	if (o->neab > 0) {
		if ((r = ck_keybackup_join(o->eab_shares, o->neab, &eab)) != 0)
			goto fail;
		if (!EVP_PKEY_is_a(eab, "X25519")) {
			r = ck_err_set(CK_E_INVAL, "the --eab-share files hold "
			    "no ACME EAB key (X25519): CA key shares?");
			goto fail;
		}
	}
	if ((r = ck_path_join(epub, sizeof(epub), ca->home,
	    EAB_SEAL_PUB_FILE)) != 0 ||
	    (r = ck_path_join(ekey, sizeof(ekey), ca->home,
	    EAB_SEAL_KEY_FILE)) != 0)
		goto fail;
	/* Refused before anything is written: an EAB public key of another
	 * pair (the store's sealed keys would not open). */
	if (eab != NULL && (r = eab_key_restore_check(ca->home, eab)) != 0 &&
	    r != CK_E_EXISTS)
		goto fail;
	if ((r = ck_passphrase_read(&o->com.pass, "New CA key passphrase: ", 1,
	    CK_PASSPHRASE_MIN, &pw)) != 0)
		goto fail;
	if (eab != NULL && (r = eab_restore_plan(ca, eab, pw,
	    &eab_write)) != 0)
		goto fail;
	if (eab == NULL && ck_fs_exists(epub) && !ck_fs_exists(ekey))
		fprintf(stderr, "certkeep: warning: this CA has ACME EAB keys "
		    "(%s) but the backup holds no EAB private key: bindings "
		    "cannot be checked until %s is back%s\n", EAB_SEAL_PUB_FILE,
		    EAB_SEAL_KEY_FILE, o->from == NULL ? " (its shares go in "
		    "as --eab-share)" : "");
	/* private/ may have gone with the key. */
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if (!ck_fs_exists(dir) && (r = ck_fs_mkdir_private(dir)) != 0)
			goto fail;
	}
	if ((r = keystore_save(path, key, pw, o->log2n)) != 0)
		goto fail;
	/* The file as certkeep will open it from now on. */
	if ((r = ck_ca_unlock_with(ca, pw)) != 0) {
		(void)unlink(path);
		goto fail;
	}
	/* Under the same passphrase: certkeepd unlocks both with it. */
	if (eab_write && (r = eab_key_restore(ca->home, eab, pw,
	    o->log2n)) != 0) {
		(void)unlink(path);
		goto fail;
	}
	if (eab != NULL) {
		dl = strlen(detail);
		snprintf(detail + dl, sizeof(detail) - dl, "; %s ACME EAB key",
		    eab_write ? "with the" : "kept the home's");
	}
	if ((r = ck_ca_audit(ca, "key-restore", fp, AUDIT_OK, detail)) != 0)
		goto fail;
	printf("Restored the CA key (%s) into %s.\n", fp, path);
	if (eab_write)
		printf("Restored the ACME EAB key into %s.\n", ekey);
	else if (eab != NULL)
		printf("Kept the ACME EAB key in %s: the backed-up one is the "
		    "same.\n", ekey);
	EVP_PKEY_free(eab);
	EVP_PKEY_free(key);
	ck_secret_free(pw);
	ck_secret_free(bpw);
	ck_ca_close(ca);
	return CLI_EXIT_OK;
fail:
	r = audit_failure(ca, "key-restore", fp[0] ? fp : cfp[0] ? cfp :
	    ca->cfg->key_file, r);
	EVP_PKEY_free(eab);
	EVP_PKEY_free(key);
	ck_secret_free(pw);
	ck_secret_free(bpw);
	ck_ca_close(ca);
	return cli_fail(r);
}

static int
key_fingerprint(const char *home)
{
	struct ck_ca *ca = NULL;
	EVP_PKEY *pub = NULL;
	char fp[65];
	int r;

	if ((r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if ((r = ca_public_key(ca, &pub)) != 0 ||
	    (r = ck_key_fingerprint(pub, fp)) != 0 ||
	    (r = ck_ca_audit(ca, "key-fingerprint", fp, AUDIT_OK,
	    NULL)) != 0) {
		EVP_PKEY_free(pub);
		ck_ca_close(ca);
		return cli_fail(r);
	}
	printf("%s\n", fp);
	EVP_PKEY_free(pub);
	ck_ca_close(ca);
	return CLI_EXIT_OK;
}

static int
parse_int(const char *arg, uint64_t min, uint64_t max, const char *what,
    int *out)
{
	uint64_t v;

	if (ck_parse_u64(arg, min, max, what, &v) != 0) {
		fprintf(stderr, "certkeep: %s\n", ck_err_msg());
		return -1;
	}
	*out = (int)v;
	return 0;
}

int
cmd_key(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "out", required_argument, NULL, O_OUT },
		{ "backup-passphrase-file", required_argument, NULL, O_BPFILE },
		{ "backup-passphrase-fd", required_argument, NULL, O_BPFD },
		{ "scrypt-log2n", required_argument, NULL, O_LOG2N },
		{ "shares", required_argument, NULL, O_SHARES },
		{ "threshold", required_argument, NULL, O_THRESHOLD },
		{ "custodian", required_argument, NULL, O_CUSTODIAN },
		{ "out-dir", required_argument, NULL, O_OUTDIR },
		{ "from", required_argument, NULL, O_FROM },
		{ "share", required_argument, NULL, O_SHARE },
		{ "eab-share", required_argument, NULL, O_EAB_SHARE },
		{ NULL, 0, NULL, 0 }
	};
	struct key_opts o;
	const char *home, *sub;
	int opt, fd, backup, restore, bp;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(key_usage);
	/* M-of-N unlock of the key file: cmd_keyprotect.c. */
	if (strcmp(sub, "protect") == 0 || strcmp(sub, "unprotect") == 0)
		return cmd_key_protect(sub, argc, argv);
	memset(&o, 0, sizeof(o));
	cli_common_init(&o.com);
	o.bpass.kind = CK_PASS_TTY;
	o.bpass.fd = -1;
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &o.com)) != -1) {
		switch (opt) {
		case CLI_OPT_BAD:
			return CLI_EXIT_USAGE;
		case O_OUT:
			o.out = optarg;
			break;
		case O_BPFILE:
			o.bpass.kind = CK_PASS_FILE;
			o.bpass.file = optarg;
			break;
		case O_BPFD:
			if (parse_int(optarg, 0, 1024, "--backup-passphrase-fd",
			    &fd) != 0)
				return CLI_EXIT_USAGE;
			o.bpass.kind = CK_PASS_FD;
			o.bpass.fd = fd;
			break;
		case O_LOG2N:
			if (parse_int(optarg, 10, CK_KEYBACKUP_LOG2N_MAX,
			    "--scrypt-log2n", &o.log2n) != 0)
				return CLI_EXIT_USAGE;
			break;
		case O_SHARES:
			if (parse_int(optarg, 2, CK_KEYBACKUP_MAX_SHARES,
			    "--shares", &o.n) != 0)
				return CLI_EXIT_USAGE;
			break;
		case O_THRESHOLD:
			if (parse_int(optarg, 2, CK_KEYBACKUP_MAX_SHARES,
			    "--threshold", &o.m) != 0)
				return CLI_EXIT_USAGE;
			break;
		case O_CUSTODIAN:
			if (o.ncust == CK_KEYBACKUP_MAX_SHARES)
				return cli_usage(key_usage);
			o.custodians[o.ncust++] = optarg;
			break;
		case O_OUTDIR:
			o.out_dir = optarg;
			break;
		case O_FROM:
			o.from = optarg;
			break;
		case O_SHARE:
			if (o.nshare == CK_KEYBACKUP_MAX_SHARES)
				return cli_usage(key_usage);
			o.shares[o.nshare++] = optarg;
			break;
		case O_EAB_SHARE:
			if (o.neab == CK_KEYBACKUP_MAX_SHARES)
				return cli_usage(key_usage);
			o.eab_shares[o.neab++] = optarg;
			break;
		default:
			return cli_usage(key_usage);
		}
	}
	if (o.com.help)
		return cli_help(key_usage);
	if (optind != argc)
		return cli_usage(key_usage);
	if ((home = cli_home(&o.com)) == NULL)
		return CLI_EXIT_USAGE;
	backup = strcmp(sub, "backup") == 0;
	restore = strcmp(sub, "restore") == 0;
	bp = o.bpass.kind != CK_PASS_TTY;
	if (backup) {
		if ((o.out != NULL) == (o.n != 0 || o.m != 0 || o.ncust != 0 ||
		    o.out_dir != NULL) || o.from != NULL || o.nshare != 0 ||
		    o.neab != 0)
			return cli_usage(key_usage);
		if (o.out == NULL) {
			if (o.n == 0 || o.m == 0 || o.out_dir == NULL || bp)
				return cli_usage(key_usage);
			if (o.m > o.n) {
				fprintf(stderr, "certkeep: the threshold (%d) "
				    "is more than the number of shares (%d)\n",
				    o.m, o.n);
				return CLI_EXIT_USAGE;
			}
			if (o.ncust != o.n) {
				fprintf(stderr, "certkeep: %d shares need %d "
				    "--custodian names, %d given\n", o.n, o.n,
				    o.ncust);
				return CLI_EXIT_USAGE;
			}
		} else if (o.log2n != 0 && o.log2n < 14) {
			fprintf(stderr, "certkeep: --scrypt-log2n must be 14.."
			    "%d for a key backup\n", CK_KEYBACKUP_LOG2N_MAX);
			return CLI_EXIT_USAGE;
		}
		return key_backup(home, &o);
	}
	if (restore) {
		if ((o.from != NULL) == (o.nshare != 0) || o.out != NULL ||
		    o.out_dir != NULL || o.n != 0 || o.m != 0 ||
		    o.ncust != 0 || (bp && o.from == NULL) ||
		    (o.neab != 0 && o.from != NULL))
			return cli_usage(key_usage);
		if (o.log2n > KEYSTORE_SCRYPT_LOG2N) {
			fprintf(stderr, "certkeep: --scrypt-log2n must be 10..%d "
			    "for the restored key file\n",
			    KEYSTORE_SCRYPT_LOG2N);
			return CLI_EXIT_USAGE;
		}
		return key_restore(home, &o);
	}
	if (strcmp(sub, "fingerprint") == 0) {
		if (o.out || o.out_dir || o.from || o.nshare || o.ncust ||
		    o.n || o.m || o.log2n || bp || o.neab)
			return cli_usage(key_usage);
		return key_fingerprint(home);
	}
	return cli_usage(key_usage);
}
