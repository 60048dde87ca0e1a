/*
 * ca_init.c - creating a CA home, and installing an issuing CA's
 * certificate.
 */
#include "ca/ca.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/privs.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "keystore/keystore.h"
#include "keystore/pkcs11.h"
#include "signer/signer.h"
#include "x509/names.h"

#define CONFIG_TEMPLATE \
"# certkeep CA configuration. Changes are recorded in the store and the\n" \
"# audit log the next time certkeep opens this CA.\n" \
"\n" \
"[ca]\n" \
"key_file = private/ca.key\n" \
"cert_file = ca.pem\n" \
"chain_file = chain.pem\n" \
"csr_file = ca.csr\n" \
"crl_file = crl/ca.crl\n" \
"%s%s%s" \
"crl_validity_hours = 168\n" \
"\n" \
"[store]\n" \
"backend = sqlite\n" \
"path = store.db\n" \
"\n" \
"# certkeepd: REST API over HTTPS; CRL, OCSP and the CA certificate over\n" \
"# plain HTTP. Its own TLS certificate is issued by this CA at each start\n" \
"# for tls_names, with a key that exists only in memory.\n" \
"[server]\n" \
"api_listen = 127.0.0.1:8443\n" \
"http_listen = 127.0.0.1:8080\n" \
"tls_names = localhost, 127.0.0.1\n" \
"max_connections = 1024\n" \
"max_per_ip = 256\n" \
"timeout = 15\n" \
"max_body = 65536\n" \
"\n" \
"# TLS servers: names under the allowed DNS suffixes and IP ranges.\n" \
"[profile.tls-server]\n" \
"key_usage = digitalSignature, keyEncipherment\n" \
"ext_key_usage = serverAuth\n" \
"max_validity_days = 397\n" \
"key_types = rsa2048, rsa3072, rsa4096, ec-p256, ec-p384, ed25519\n" \
"dns_suffixes = %s\n" \
"ip_ranges = 127.0.0.0/8, ::1/128\n" \
"subject_attributes = CN\n" \
"common_name = dns\n" \
"allow_wildcard = no\n" \
"\n" \
"# TLS clients: people and devices.\n" \
"[profile.tls-client]\n" \
"key_usage = digitalSignature\n" \
"ext_key_usage = clientAuth\n" \
"max_validity_days = 397\n" \
"key_types = rsa2048, rsa3072, rsa4096, ec-p256, ec-p384, ed25519\n" \
"dns_suffixes = %s\n" \
"email_domains = %s\n" \
"subject_attributes = CN, O, OU\n" \
"common_name = any\n" \
"\n" \
"# Remote operators: a TLS client certificate whose common name is the\n" \
"# operator's name, bound to the operator with 'certkeep operator add\n" \
"# --cert' or 'operator cert'; short-lived, renewed by issuing another.\n" \
"[profile.operator]\n" \
"key_usage = digitalSignature\n" \
"ext_key_usage = clientAuth\n" \
"max_validity_days = 30\n" \
"key_types = rsa2048, rsa3072, rsa4096, ec-p256, ec-p384, ed25519\n" \
"subject_attributes = CN\n" \
"common_name = any\n" \
"\n" \
"# Subordinate (issuing) CAs.\n" \
"[profile.sub-ca]\n" \
"ca = yes\n" \
"max_path_length = 0\n" \
"key_usage = digitalSignature, keyCertSign, cRLSign\n" \
"max_validity_days = 3650\n" \
"key_types = rsa2048, rsa3072, rsa4096, ec-p256, ec-p384, ed25519\n" \
"subject_attributes = *\n"

static int
write_config(const char *path, const struct ck_init_params *p)
{
	char crl[CK_CONFIG_STR + 16] = "", ocsp[CK_CONFIG_STR + 16] = "";
	char iss[3 * CK_CONFIG_STR + 64] = "";
	char *text = NULL;
	const char *dom = p->domain ? p->domain : "example.com";
	int n, r;

	if (p->base_url != NULL && p->base_url[0] != '\0') {
		const char *b = p->base_url;
		size_t bl = strlen(b);
		const char *sl = (bl > 0 && b[bl - 1] == '/') ? "" : "/";
		snprintf(crl, sizeof(crl), "crl_url = %s%scrl/ca.crl\n", b, sl);
		snprintf(ocsp, sizeof(ocsp), "ocsp_url = %s%socsp\n", b, sl);
		snprintf(iss, sizeof(iss), "issuer_url = %s%sca.crt\n", b, sl);
	}
	if (p->pkcs11_uri != NULL) {
		size_t l = strlen(iss);
		/* The key is in a token: key_file stays unused. */
		snprintf(iss + l, sizeof(iss) - l, "key_uri = %s\n"
		    "pkcs11_module = %s\n", p->pkcs11_uri, p->pkcs11_module);
	}
	n = asprintf(&text, CONFIG_TEMPLATE, crl, ocsp, iss, dom, dom, dom);
	if (n < 0)
		return CK_E_NOMEM;
	r = ck_fs_write_new(path, text, (size_t)n, 0600);
	free(text);
	return r;
}

static int
write_pem_x509(const char *path, X509 *const *certs, size_t n, int atomic)
{
	BIO *bio;
	BUF_MEM *bm;
	size_t i;
	int r;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return CK_E_NOMEM;
	for (i = 0; i < n; i++)
		if (!PEM_write_bio_X509(bio, certs[i])) {
			BIO_free(bio);
			return CK_E_NOMEM;
		}
	BIO_get_mem_ptr(bio, &bm);
	if (atomic)
		r = ck_fs_write_atomic(path, bm->data, bm->length, 0600);
	else
		r = ck_fs_write_new(path, bm->data, bm->length, 0600);
	BIO_free(bio);
	return r;
}

/* Root: sign the self-signed certificate, logging it first like any
 * other. */
static int
init_root(struct ck_ca *ca, const struct ck_init_params *p,
    const X509_NAME *subject, EVP_PKEY *pub)
{
	struct ck_cert_template t;
	struct signer_pending *pend = NULL;
	struct store_cert rec;
	unsigned char digest[32], *der = NULL;
	const unsigned char *q;
	size_t der_len = 0;
	X509 *x = NULL, *certs[1];
	char path[4096], subj[1024];
	int64_t now = ck_time_now();
	int r;

	memset(&t, 0, sizeof(t));
	memset(&rec, 0, sizeof(rec));
	t.subject = subject;
	t.pubkey = pub;
	t.not_before = now - 60;
	t.not_after = now + (int64_t)p->days * 86400;
	t.is_ca = 1;
	t.path_len = p->path_len;
	t.ku = (1u << CK_KU_DIGITAL_SIGNATURE) | (1u << CK_KU_KEY_CERT_SIGN) |
	    (1u << CK_KU_CRL_SIGN);
	if ((r = signer_cert_prepare(ca->signer, &t, 1, &pend, digest)) != 0)
		goto out;
	snprintf(rec.serial, sizeof(rec.serial), "%s",
	    signer_pending_serial(pend));
	X509_NAME_oneline(subject, subj, sizeof(subj));
	ck_hex_encode(digest, 32, rec.tbs_sha256);
	rec.subject = subj;
	rec.names = (char *)"";
	rec.profile = (char *)"root";
	rec.requester = (char *)audit_os_user();
	rec.not_before = t.not_before;
	rec.not_after = t.not_after;
	rec.created_at = now;
	rec.is_ca = 1;
	if ((r = store_cert_insert_pending(ca->st, &rec)) != 0)
		goto out;
	r = signer_cert_sign(ca->signer, pend, &der, &der_len);
	pend = NULL;
	if (r != 0) {
		(void)store_cert_mark_failed(ca->st, rec.serial);
		goto out;
	}
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = store_cert_mark_issued(ca->st, rec.serial, der,
	    der_len)) != 0 ||
	    (r = ck_ca_audit(ca, "issue", rec.serial, AUDIT_OK,
	    "self-signed root CA certificate")) != 0) {
		store_tx_rollback(ca->st);
		goto out;
	}
	if ((r = store_tx_commit(ca->st)) != 0)
		goto out;
	q = der;
	if ((x = d2i_X509(NULL, &q, (long)der_len)) == NULL) {
		r = ck_err_ssl(CK_E_INTERNAL, "re-reading the root");
		goto out;
	}
	certs[0] = x;
	if ((r = ck_ca_path(ca, ca->cfg->cert_file, path, sizeof(path))) != 0 ||
	    (r = write_pem_x509(path, certs, 1, 0)) != 0 ||
	    (r = ck_ca_path(ca, ca->cfg->chain_file, path, sizeof(path))) != 0 ||
	    (r = write_pem_x509(path, certs, 1, 0)) != 0)
		goto out;
	r = store_meta_set(ca->st, "ca_state", "active");
	/* The signer now has its certificate (audit checkpoints are CMS
	 * signatures naming it). */
	if (r == 0)
		r = signer_set_cert(ca->signer, x);
out:
	signer_pending_free(pend);
	X509_free(x);
	OPENSSL_free(der);
	return r;
}

static int
init_issuing(struct ck_ca *ca, const X509_NAME *subject)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	const unsigned char *q;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	char path[4096];
	int r;

	if ((r = signer_csr_make(ca->signer, subject, &der, &der_len)) != 0)
		return r;
	q = der;
	if ((req = d2i_X509_REQ(NULL, &q, (long)der_len)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_REQ(bio, req)) {
		r = CK_E_NOMEM;
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	if ((r = ck_ca_path(ca, ca->cfg->csr_file, path, sizeof(path))) != 0 ||
	    (r = ck_fs_write_new(path, bm->data, bm->length, 0600)) != 0)
		goto out;
	r = store_meta_set(ca->st, "ca_state", "awaiting-certificate");
out:
	BIO_free(bio);
	X509_REQ_free(req);
	OPENSSL_free(der);
	return r;
}

/* Remove what init created, deepest first. */
static void
init_cleanup(const char *home)
{
	static const char *const files[] = {
		"private/ca.key", "certkeep.conf", "store.db", "store.db-wal",
		"store.db-shm", "ca.pem", "chain.pem", "ca.csr", NULL
	};
	static const char *const dirs[] = { "private", "crl", NULL };
	char path[4096];
	int i;

	for (i = 0; files[i] != NULL; i++)
		if (ck_path_join(path, sizeof(path), home, files[i]) == 0)
			(void)unlink(path);
	for (i = 0; dirs[i] != NULL; i++)
		if (ck_path_join(path, sizeof(path), home, dirs[i]) == 0)
			(void)rmdir(path);
	(void)rmdir(home);
}

static int
dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

int
ck_ca_init(const struct ck_init_params *p)
{
	struct ck_ca *ca = NULL;
	struct ck_secret *pw = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *key = NULL, *pub = NULL;
	struct signer *sg = NULL;
	char path[4096], detail[1024], kdesc[32];
	int r, created = 0;

	if (p->days == 0 && p->root)
		return ck_err_set(CK_E_INVAL, "validity must be at least a "
		    "day");
	if (p->pkcs11_uri != NULL) {
		struct keystore_p11_uri u;
		if (p->pkcs11_module == NULL || p->pkcs11_module[0] != '/' ||
		    strpbrk(p->pkcs11_module, "\r\n") != NULL)
			return ck_err_set(CK_E_INVAL, "a token key needs "
			    "--pkcs11-module with the module's absolute path");
		if ((r = keystore_p11_uri_parse(p->pkcs11_uri, &u)) != 0)
			return r;
	}
	if ((r = ck_dn_parse(p->subject, &subject)) != 0)
		return r;
	r = ck_fs_mkdir_private(p->home);
	if (r == CK_E_EXISTS) {
		if (!dir_is_empty(p->home)) {
			r = ck_err_set(CK_E_EXISTS, "%s already exists and is "
			    "not empty; refusing to touch it", p->home);
			goto out;
		}
		if ((r = ck_fs_check_private_dir(p->home)) != 0)
			goto out;
	} else if (r != 0)
		goto out;
	created = 1;
	if (p->user != NULL && p->user[0] != '\0') {
		/* Hand the home to the service user and carry on as them. */
		unsigned uid, gid;
		int switched;
		if (geteuid() != 0) {
			r = ck_err_set(CK_E_PERM, "--user needs root");
			goto out;
		}
		(void)audit_os_user();
		if ((r = ck_privs_lookup(p->user, &uid, &gid)) != 0)
			goto out;
		if (chown(p->home, (uid_t)uid, (gid_t)gid) != 0) {
			r = ck_err_set(CK_E_IO, "cannot give %s to %s: %s",
			    p->home, p->user, strerror(errno));
			goto out;
		}
		if ((r = ck_privs_drop(p->user, p->home, 0, &switched)) != 0)
			goto out;
	}
	/* The passphrase first: a wrong or missing one leaves nothing. A
	 * token's PIN exists already: asked once. */
	if (p->pkcs11_uri != NULL)
		r = ck_passphrase_read(p->pass, "Token PIN: ", 0, 1, &pw);
	else
		r = ck_passphrase_read(p->pass, "New CA key passphrase: ", 1,
		    CK_PASSPHRASE_MIN, &pw);
	if (r != 0)
		goto out;
	if ((r = ck_path_join(path, sizeof(path), p->home, "private")) != 0 ||
	    (r = ck_fs_mkdir_private(path)) != 0 ||
	    (r = ck_path_join(path, sizeof(path), p->home, "crl")) != 0 ||
	    (r = ck_fs_mkdir_private(path)) != 0 ||
	    (r = ck_path_join(path, sizeof(path), p->home,
	    CK_CONFIG_FILE)) != 0 ||
	    (r = write_config(path, p)) != 0 ||
	    (r = ck_path_join(path, sizeof(path), p->home, "store.db")) != 0)
		goto out;
	{
		struct store *st = NULL;
		if ((r = store_open(path, 1, &st)) != 0)
			goto out;
		store_close(st);
	}
	if ((r = ck_ca_open(p->home, &ca)) != 0)
		goto out;
	if (p->pkcs11_uri != NULL) {
		/* XXX: a key generated here stays in the token if a later
		 * step fails; the error names it so that it can be reused. */
		if ((p->pkcs11_generate && (r = keystore_p11_generate(
		    p->pkcs11_module, p->pkcs11_uri, p->key_type, pw)) != 0) ||
		    (r = keystore_p11_load(p->pkcs11_module, p->pkcs11_uri,
		    pw, &key)) != 0)
			goto out;
	} else if ((r = ck_key_generate(p->key_type, &key)) != 0 ||
	    (r = ck_ca_path(ca, ca->cfg->key_file, path, sizeof(path))) != 0 ||
	    (r = keystore_save(path, key, pw, p->scrypt_log2n)) != 0)
		goto out;
	if (!EVP_PKEY_up_ref(key)) {
		r = CK_E_INTERNAL;
		goto out;
	}
	pub = key;
	r = signer_new(key, NULL, &sg);
	key = NULL;
	if (r != 0)
		goto out;
	ca->signer = sg;
	if (p->root)
		r = init_root(ca, p, subject, pub);
	else
		r = init_issuing(ca, subject);
	if (r != 0)
		goto out;
	ck_key_describe(pub, kdesc, sizeof(kdesc));
	snprintf(detail, sizeof(detail), "%s CA, %s key%s%s, subject %s",
	    p->root ? "root" : "issuing", kdesc,
	    p->pkcs11_uri ? " in token " : "",
	    p->pkcs11_uri ? p->pkcs11_uri : "", p->subject);
	r = ck_ca_audit(ca, "init", p->home, AUDIT_OK, detail);
	/* A root's log starts anchored (an issuing CA's once it has its
	 * certificate). Ed25519 keys cannot sign CMS with OpenSSL 3.0. */
	if (r == 0 && p->root) {
		int c = audit_checkpoint(ca, NULL, NULL);
		if (c != 0 && c != CK_E_STATE)
			r = c;
	}
out:
	ck_secret_free(pw);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	ck_ca_close(ca);
	X509_NAME_free(subject);
	if (r != 0 && created) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		init_cleanup(p->home);
		ck_err_set(r, "%s", msg);
	}
	return r;
}

int
ck_ca_install(struct ck_ca *ca, const unsigned char *cert_pem,
    size_t cert_len, const unsigned char *chain_pem, size_t chain_len)
{
	BIO *bio = NULL;
	X509 *cert = NULL, *x;
	X509_REQ *req = NULL;
	STACK_OF(X509) *parents = NULL, *full = NULL;
	X509_STORE *trust = NULL;
	X509_STORE_CTX *ctx = NULL;
	unsigned char *csrbuf = NULL;
	size_t csrlen;
	char path[4096], *state = NULL, subj[512];
	int i, r;

	if (ca->cert != NULL) {
		r = ck_err_set(CK_E_STATE, "this CA already has a certificate");
		goto refuse;
	}
	if ((bio = BIO_new_mem_buf(cert_pem, (int)cert_len)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		r = ck_err_ssl(CK_E_PARSE, "the certificate is not a PEM "
		    "certificate");
		goto refuse;
	}
	BIO_free(bio);
	if ((bio = BIO_new_mem_buf(chain_pem, (int)chain_len)) == NULL ||
	    (parents = sk_X509_new_null()) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(parents, x)) {
			X509_free(x);
			r = CK_E_NOMEM;
			goto out;
		}
	ERR_clear_error();
	if (sk_X509_num(parents) == 0) {
		r = ck_err_set(CK_E_PARSE, "the chain holds no certificate");
		goto refuse;
	}
	/* The certificate must be for the key whose CSR init wrote. */
	if ((r = ck_ca_path(ca, ca->cfg->csr_file, path, sizeof(path))) != 0 ||
	    (r = ck_fs_read(path, 64 * 1024, &csrbuf, &csrlen)) != 0)
		goto refuse;
	BIO_free(bio);
	if ((bio = BIO_new_mem_buf(csrbuf, (int)csrlen)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if ((req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL) {
		r = ck_err_ssl(CK_E_PARSE, "this CA's request is unreadable");
		goto refuse;
	}
	if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), X509_get0_pubkey(cert)) !=
	    1) {
		r = ck_err_set(CK_E_INVAL, "the certificate is not for this "
		    "CA's key");
		goto refuse;
	}
	if (!(X509_get_extension_flags(cert) & EXFLAG_CA) ||
	    !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
		r = ck_err_set(CK_E_INVAL, "the certificate is not a CA "
		    "certificate (needs CA:TRUE and keyCertSign)");
		goto refuse;
	}
	/* Verify it up to the root at the end of the chain. */
	if ((trust = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	x = sk_X509_value(parents, sk_X509_num(parents) - 1);
	if (X509_check_issued(x, x) != X509_V_OK) {
		r = ck_err_set(CK_E_INVAL, "the last certificate of the chain "
		    "must be the self-signed root");
		goto refuse;
	}
	if (!X509_STORE_add_cert(trust, x) ||
	    !X509_STORE_CTX_init(ctx, trust, cert, parents)) {
		r = CK_E_NOMEM;
		goto out;
	}
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	if (X509_verify_cert(ctx) != 1) {
		r = ck_err_set(CK_E_BADSIG, "the certificate does not verify "
		    "up the chain: %s", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
		goto refuse;
	}
	if ((full = X509_STORE_CTX_get1_chain(ctx)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	/* Write the files, then record: the files are only read once
	 * ca_state says active. */
	{
		X509 **v = calloc((size_t)sk_X509_num(full), sizeof(*v));
		if (v == NULL) {
			r = CK_E_NOMEM;
			goto out;
		}
		for (i = 0; i < sk_X509_num(full); i++)
			v[i] = sk_X509_value(full, i);
		if ((r = ck_ca_path(ca, ca->cfg->cert_file, path,
		    sizeof(path))) == 0)
			r = write_pem_x509(path, v, 1, 1);
		if (r == 0 && (r = ck_ca_path(ca, ca->cfg->chain_file, path,
		    sizeof(path))) == 0)
			r = write_pem_x509(path, v, (size_t)i, 1);
		free(v);
		if (r != 0)
			goto out;
	}
	if (ca->signer != NULL && (r = signer_set_cert(ca->signer, cert)) != 0)
		goto out;
	ca->cert = cert;
	cert = NULL;
	ca->chain = full;
	full = NULL;
	X509_NAME_oneline(X509_get_subject_name(ca->cert), subj, sizeof(subj));
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = store_meta_set(ca->st, "ca_state", "active")) != 0 ||
	    (r = ck_ca_audit(ca, "install-certificate", subj, AUDIT_OK,
	    NULL)) != 0) {
		store_tx_rollback(ca->st);
		goto out;
	}
	r = store_tx_commit(ca->st);
	goto out;
refuse:
	{
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		(void)ck_ca_audit(ca, "install-certificate", "", AUDIT_REFUSED,
		    msg);
		ck_err_set(r, "%s", msg);
	}
out:
	free(state);
	free(csrbuf);
	X509_REQ_free(req);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(trust);
	sk_X509_pop_free(parents, X509_free);
	sk_X509_pop_free(full, X509_free);
	X509_free(cert);
	BIO_free(bio);
	return r;
}
