#include "ca/ca.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "common/err.h"
#include "common/log.h"
#include "common/privs.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "keystore/keystore.h"
#include "keystore/pkcs11.h"
#include "signer/signer.h"
#include "signer/signer_proc.h"

int
ck_ca_path(const struct ck_ca *ca, const char *name, char *buf, size_t bufsz)
{
	return ck_path_join(buf, bufsz, ca->home, name);
}

int
ck_ca_audit(struct ck_ca *ca, const char *action, const char *object,
    const char *result, const char *detail)
{
	return audit_append(ca->st, NULL, action, object, result, detail);
}

/* Load a PEM file of certificates into a new stack. */
static int
load_certs(const char *path, STACK_OF(X509) **out)
{
	unsigned char *buf = NULL;
	size_t len;
	BIO *bio = NULL;
	STACK_OF(X509) *sk = NULL;
	X509 *x;
	int r;

	if ((r = ck_fs_read(path, 1024 * 1024, &buf, &len)) != 0)
		return r;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			r = CK_E_NOMEM;
			goto out;
		}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		r = ck_err_set(CK_E_PARSE, "%s holds no certificate", path);
		goto out;
	}
	*out = sk;
	sk = NULL;
	r = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	free(buf);
	return r;
}

int
ck_ca_record_config(struct ck_ca *ca, const unsigned char *text, size_t len)
{
	unsigned char md[32];
	unsigned int mdlen = sizeof(md);
	char hex[65], last[65];
	int r;

	if (!EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL))
		return ck_err_ssl(CK_E_CRYPTO, "hashing the configuration");
	ck_hex_encode(md, 32, hex);
	r = store_config_latest(ca->st, last);
	if (r == 0 && strcmp(last, hex) == 0)
		return 0;
	if (r != 0 && r != CK_E_NOTFOUND)
		return r;
	if ((r = store_tx_begin(ca->st)) != 0)
		return r;
	if ((r = store_config_insert(ca->st, ck_time_now(), audit_os_user(),
	    hex, (const char *)text)) != 0 ||
	    (r = ck_ca_audit(ca, "config-change", CK_CONFIG_FILE, AUDIT_OK,
	    hex)) != 0) {
		store_tx_rollback(ca->st);
		return r;
	}
	return store_tx_commit(ca->st);
}

/*
 * A home split between a key owner and a service user (docs/signer.md):
 * another's directory, sticky, writable by our primary group, nothing
 * for others. Whose it is the key owner's business (the signer checks).
 */
static int
split_home_shape(const char *home)
{
	struct stat st;

	return lstat(home, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_uid != geteuid() && st.st_uid != 0 &&
	    (st.st_mode & S_ISVTX) != 0 && (st.st_mode & 0007) == 0 &&
	    (st.st_mode & 0070) == 0070 && st.st_gid == getegid();
}

/* 1 if NAME is the user this process runs as. */
static int
is_user(const char *name)
{
	struct passwd *pw;

	return name[0] != '\0' && (pw = getpwnam(name)) != NULL &&
	    pw->pw_uid == geteuid();
}

int
ck_ca_open(const char *home, struct ck_ca **out)
{
	struct ck_ca *ca = NULL;
	unsigned char *text = NULL;
	size_t len = 0;
	char path[4096], why[1024];
	int r, split = 0;

	if ((r = ck_fs_check_private_dir(home)) != 0) {
		if (r == CK_E_NOTFOUND)
			return ck_err_set(r, "no CA home at %s (create one "
			    "with 'certkeep init')", home);
		if (r != CK_E_PERM || !split_home_shape(home))
			return r;
		/* The service user of a home with a key owner; the
		 * configuration must name us, below. */
		snprintf(why, sizeof(why), "%s", ck_err_msg());
		ck_err_clear();
		split = 1;
	}
	if ((ca = calloc(1, sizeof(*ca))) == NULL)
		return CK_E_NOMEM;
	if ((r = ck_strcpy_bounded(ca->home, sizeof(ca->home), home)) != 0 ||
	    (r = ck_ca_path(ca, CK_CONFIG_FILE, path, sizeof(path))) != 0 ||
	    (r = ck_fs_read(path, CK_CONFIG_MAX, &text, &len)) != 0 ||
	    (r = ck_config_parse((const char *)text, len, &ca->cfg)) != 0)
		goto fail;
	if (split && !is_user(ca->cfg->server.user)) {
		r = ck_err_set(CK_E_PERM, "%s", why);
		goto fail;
	}
	if ((r = ck_ca_path(ca, ca->cfg->store_path, path,
	    sizeof(path))) != 0 ||
	    (r = store_open(path, 0, &ca->st)) != 0)
		goto fail;
	if ((r = ck_ca_path(ca, ca->cfg->chain_file, path,
	    sizeof(path))) != 0)
		goto fail;
	if (ck_fs_exists(path)) {
		if ((r = load_certs(path, &ca->chain)) != 0)
			goto fail;
		ca->cert = sk_X509_value(ca->chain, 0);
		if (!X509_up_ref(ca->cert)) {
			r = CK_E_INTERNAL;
			ca->cert = NULL;
			goto fail;
		}
	}
	if ((r = ck_ca_record_config(ca, text, len)) != 0)
		goto fail;
	free(text);
	*out = ca;
	return 0;
fail:
	free(text);
	ck_ca_close(ca);
	return r;
}

static int
unlock_refused(struct ck_ca *ca, int r)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", ck_err_msg());
	(void)ck_ca_audit(ca, "unlock", ca->cfg->key_uri[0] ? ca->cfg->key_uri :
	    ca->cfg->key_file, AUDIT_REFUSED, msg);
	return ck_err_set(r, "%s", msg);
}

int
ck_ca_unlock_with(struct ck_ca *ca, const struct ck_secret *pw)
{
	EVP_PKEY *key = NULL;
	char path[4096];
	int r;

	if (ca->signer != NULL)
		return 0;
	if (ca->cfg->key_uri[0] != '\0') {
		/* A token key: `pw` is its PIN; signer_new() checks that the
		 * token's key is the CA certificate's. */
		if ((r = keystore_p11_load(ca->cfg->pkcs11_module,
		    ca->cfg->key_uri, pw, &key)) != 0 ||
		    (r = signer_new(key, ca->cert, &ca->signer)) != 0)
			return unlock_refused(ca, r);
		return 0;
	}
	if ((r = ck_ca_path(ca, ca->cfg->key_file, path, sizeof(path))) != 0)
		return r;
	if ((r = keystore_load(path, pw, &key)) != 0 ||
	    (r = signer_new(key, ca->cert, &ca->signer)) != 0)
		return unlock_refused(ca, r);
	return 0;
}

int
ck_ca_unlock_proc(struct ck_ca *ca, struct signer_proc *sp,
    const struct ck_secret *pw)
{
	int r;

	if (ca->signer != NULL)
		return 0;
	if (ca->cert == NULL)
		return ck_err_set(CK_E_STATE, "this CA has no certificate yet");
	if ((pw != NULL && (r = signer_proc_unlock(sp, pw)) != 0) ||
	    (r = signer_new_remote(sp, ca->cert, &ca->signer)) != 0)
		return unlock_refused(ca, r);
	return 0;
}

int
ck_ca_unlock(struct ck_ca *ca, const struct ck_pass_src *pass)
{
	struct ck_secret *pw = NULL;
	char path[4096];
	int r;

	if (ca->signer != NULL)
		return 0;
	if (ca->cfg->key_uri[0] != '\0') {
		if ((r = ck_passphrase_read(pass, "Token PIN: ", 0, 0,
		    &pw)) != 0)
			return unlock_refused(ca, r);
		r = ck_ca_unlock_with(ca, pw);
		ck_secret_free(pw);
		return r;
	}
	if ((r = ck_ca_path(ca, ca->cfg->key_file, path, sizeof(path))) != 0)
		return r;
	/* Check permissions before asking for anything. */
	if ((r = ck_fs_check_private_file(path)) != 0 ||
	    (r = ck_passphrase_read(pass, "CA key passphrase: ", 0, 0,
	    &pw)) != 0)
		return unlock_refused(ca, r);
	r = ck_ca_unlock_with(ca, pw);
	ck_secret_free(pw);
	return r;
}

static int checkpoint_on_close;

void
ck_ca_checkpoint_on_close(int on)
{
	checkpoint_on_close = on;
}

void
ck_ca_close(struct ck_ca *ca)
{
	if (ca == NULL)
		return;
	/* What this process wrote with the key at hand ends signed. */
	if (checkpoint_on_close && ca->signer != NULL && ca->cert != NULL &&
	    audit_checkpoint(ca, NULL, NULL) != 0)
		ck_warn("audit checkpoint: %s", ck_err_msg());
	signer_free(ca->signer);
	store_close(ca->st);
	ck_config_free(ca->cfg);
	X509_free(ca->cert);
	sk_X509_pop_free(ca->chain, X509_free);
	free(ca);
}

int
ck_der_to_pem(const unsigned char *der, size_t len, char **out,
    size_t *outlen)
{
	BIO *bio = NULL;
	BUF_MEM *bm;
	char *buf;
	int r = CK_E_NOMEM;

	const unsigned char *p = der;
	long l;
	int tag, xclass, ret;

	/* Armour only, after a check that it is one whole DER SEQUENCE: the
	 * DER is our own, and parsing it all again would cost more than
	 * signing it did (OpenSSL 3.0's key decoders). */
	ret = ASN1_get_object(&p, &l, &tag, &xclass, (long)len);
	if ((ret & 0x80) || ret != V_ASN1_CONSTRUCTED ||
	    tag != V_ASN1_SEQUENCE || p + l != der + len)
		return ck_err_set(CK_E_PARSE, "not a DER certificate");
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio(bio, PEM_STRING_X509, "", der, (long)len) <= 0)
		goto out;
	BIO_get_mem_ptr(bio, &bm);
	if ((buf = malloc(bm->length + 1)) == NULL)
		goto out;
	memcpy(buf, bm->data, bm->length);
	buf[bm->length] = '\0';
	*out = buf;
	*outlen = bm->length;
	r = 0;
out:
	BIO_free(bio);
	return r;
}

int
ck_ca_chain_pem(const struct ck_ca *ca, char **out, size_t *outlen)
{
	BIO *bio;
	BUF_MEM *bm;
	char *buf = NULL;
	int i, r = CK_E_NOMEM;

	if (ca->chain == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate yet");
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return CK_E_NOMEM;
	for (i = 0; i < sk_X509_num(ca->chain); i++)
		if (!PEM_write_bio_X509(bio, sk_X509_value(ca->chain, i)))
			goto out;
	BIO_get_mem_ptr(bio, &bm);
	if ((buf = malloc(bm->length + 1)) == NULL)
		goto out;
	memcpy(buf, bm->data, bm->length);
	buf[bm->length] = '\0';
	*out = buf;
	*outlen = bm->length;
	r = 0;
out:
	BIO_free(bio);
	return r;
}

int
ck_dn_parse(const char *s, X509_NAME **out)
{
	X509_NAME *nm = NULL;
	char buf[1024], *tok, *save = NULL, *eq;
	char sep[2] = ",";
	int r;

	if (strlen(s) >= sizeof(buf) || s[0] == '\0')
		return ck_err_set(CK_E_PARSE, "bad subject '%s'", s);
	snprintf(buf, sizeof(buf), "%s", s[0] == '/' ? s + 1 : s);
	if (s[0] == '/')
		sep[0] = '/';
	if ((nm = X509_NAME_new()) == NULL)
		return CK_E_NOMEM;
	for (tok = strtok_r(buf, sep, &save); tok != NULL;
	    tok = strtok_r(NULL, sep, &save)) {
		while (*tok == ' ')
			tok++;
		if ((eq = strchr(tok, '=')) == NULL || eq == tok ||
		    eq[1] == '\0') {
			r = ck_err_set(CK_E_PARSE, "bad subject '%s': use "
			    "CN=name,O=organisation", s);
			goto fail;
		}
		*eq = '\0';
		if (!X509_NAME_add_entry_by_txt(nm, tok, MBSTRING_UTF8,
		    (unsigned char *)eq + 1, -1, -1, 0)) {
			r = ck_err_ssl(CK_E_PARSE, "bad subject attribute");
			goto fail;
		}
	}
	if (X509_NAME_entry_count(nm) == 0) {
		r = ck_err_set(CK_E_PARSE, "empty subject");
		goto fail;
	}
	*out = nm;
	return 0;
fail:
	X509_NAME_free(nm);
	return r;
}

int
ck_ca_home_users(const char *home, struct ck_home_users *hu)
{
	struct ck_config *cfg = NULL;
	unsigned char *text = NULL;
	struct stat st;
	size_t len;
	int fd, r;

	if (lstat(home, &st) == 0 && S_ISLNK(st.st_mode)) {
		/* A home named through a link: as before, unless it is
		 * split, whose home must be named itself (the checks open
		 * it without following links). */
		char *real = realpath(home, NULL);
		if (real == NULL)
			return ck_err_set(CK_E_NOTFOUND, "no CA home at %s",
			    home);
		r = ck_ca_home_users(real, hu);
		if (r == 0 && hu->split)
			r = ck_err_set(CK_E_PERM, "%s is a symbolic link to a "
			    "CA home with a key owner: name the home itself "
			    "(%s)", home, real);
		free(real);
		return r;
	}
	if (stat(home, &st) != 0)
		return ck_err_set(CK_E_NOTFOUND, "no CA home at %s", home);
	if ((r = ck_fs_open_trusted(home, CK_CONFIG_FILE, st.st_uid, 0,
	    &fd)) != 0) {
		if (r != CK_E_NOTFOUND)
			return r;
		ck_err_clear();
		return ck_privs_home_users(home, NULL, hu);
	}
	r = ck_fs_read_fd(fd, CK_CONFIG_MAX, &text, &len);
	close(fd);
	if (r == 0 && ck_config_parse((const char *)text, len, &cfg) == 0)
		r = ck_privs_home_users(home, cfg->server.user, hu);
	else {
		ck_err_clear();
		r = ck_privs_home_users(home, NULL, hu);
	}
	ck_config_free(cfg);
	free(text);
	return r;
}
