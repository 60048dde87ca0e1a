/*
 * test_ca.c - src/ca: a root CA created with ck_ca_init, opened,
 * unlocked, issuing and refusing, revoking and publishing CRLs; an issuing
 * CA set up and installed with a certificate from the root.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/audit.h"
#include "ca/ca.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "store/store.h"
#include "x509/certbuild.h"
#include "x509/serial.h"

#define PASSPHRASE "correct horse battery staple"
#define ROOT_SUBJECT "CN=certkeep Test Root,O=certkeep tests"
#define LOG2N 10
/* Shorter than the sub-ca profile's 3650 days, on purpose. */
#define ROOT_DAYS 3000

struct gfx {
	char base[4096];
	char root[4200];	/* the root CA's home */
	char pass[4200];	/* passphrase file */
	char wrong[4200];	/* a wrong passphrase */
	struct ck_pass_src src;
	struct ck_pass_src wrong_src;
};

static struct gfx g;

static void
init_params(struct ck_init_params *p, const char *home, int root,
    const char *subject)
{
	memset(p, 0, sizeof(*p));
	p->home = home;
	p->root = root;
	p->subject = subject;
	p->key_type = CK_KEY_EC_P256;
	p->days = ROOT_DAYS;
	p->path_len = -1;
	p->base_url = "http://ca.example.com";
	p->domain = "example.com";
	p->pass = &g.src;
	p->scrypt_log2n = LOG2N;
}

static int
group_setup(void **state)
{
	struct ck_init_params p;
	int r;

	(void)state;
	tu_tmpdir(g.base, sizeof(g.base));
	tu_path(g.root, sizeof(g.root), g.base, "root");
	tu_path(g.pass, sizeof(g.pass), g.base, "pass");
	tu_path(g.wrong, sizeof(g.wrong), g.base, "wrong");
	tu_write_file(g.pass, PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0600);
	tu_write_file(g.wrong, "incorrect horse\n", 16, 0600);
	g.src.kind = CK_PASS_FILE;
	g.src.file = g.pass;
	g.src.fd = -1;
	g.wrong_src = g.src;
	g.wrong_src.file = g.wrong;

	init_params(&p, g.root, 1, ROOT_SUBJECT);
	if ((r = ck_ca_init(&p)) != 0) {
		fprintf(stderr, "ck_ca_init: %d %s\n", r, ck_err_msg());
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	tu_rmtree(g.base);
	tu_keys_free();
	return 0;
}

/* Per test: the root, opened and unlocked. */
static int
setup_root(void **state)
{
	struct ck_ca *ca = NULL;

	if (ck_ca_open(g.root, &ca) != 0 || ck_ca_unlock(ca, &g.src) != 0) {
		fprintf(stderr, "opening the root: %s\n", ck_err_msg());
		ck_ca_close(ca);
		return -1;
	}
	*state = ca;
	return 0;
}

static int
teardown_root(void **state)
{
	ck_ca_close(*state);
	return 0;
}

/* ---- helpers ---- */

static int64_t
audit_last_id(struct ck_ca *ca)
{
	unsigned char h[32];
	int64_t id = -1;

	assert_int_equal(store_audit_last(ca->st, &id, h), 0);
	return id;
}

struct entry {
	char action[64], object[128], result[16], detail[1024], user[64];
};

static int
grab_entry(const struct store_audit_entry *e, void *arg)
{
	struct entry *x = arg;

	snprintf(x->action, sizeof(x->action), "%s", e->action);
	snprintf(x->object, sizeof(x->object), "%s", e->object);
	snprintf(x->result, sizeof(x->result), "%s", e->result);
	snprintf(x->detail, sizeof(x->detail), "%s", e->detail);
	snprintf(x->user, sizeof(x->user), "%s", e->user);
	return 1;	/* just the first */
}

static struct entry
audit_entry(struct ck_ca *ca, int64_t id)
{
	struct entry x;

	memset(&x, 0, sizeof(x));
	assert_int_equal(store_audit_iter(ca->st, id, grab_entry, &x), 1);
	return x;
}

static void
audit_intact(struct ck_ca *ca)
{
	struct audit_report rep;

	if (audit_verify(ca->st, &rep) != 0)
		fail_msg("audit log broken at %lld: %s",
		    (long long)rep.first_bad, rep.reason);
}

static int
count_cb(const struct store_cert *c, void *arg)
{
	(void)c;
	(*(size_t *)arg)++;
	return 0;
}

static size_t
cert_count(struct ck_ca *ca)
{
	struct store_cert_filter f;
	size_t n = 0;

	memset(&f, 0, sizeof(f));
	f.status = -1;
	assert_int_equal(store_cert_list(ca->st, &f, count_cb, &n), 0);
	return n;
}

static void
make_csr(EVP_PKEY *k, const char *subject, const char *san, int pem,
    unsigned char **out, size_t *len)
{
	struct tu_csr o;

	memset(&o, 0, sizeof(o));
	o.subject = subject;
	o.san = san;
	o.pem = pem;
	tu_csr_make(k, &o, out, len);
}

static int
issue(struct ck_ca *ca, const unsigned char *csr, size_t len,
    const char *profile, struct ck_issue_result *res)
{
	struct ck_issue_params ip;

	memset(&ip, 0, sizeof(ip));
	ip.csr = csr;
	ip.csr_len = len;
	ip.profile = profile;
	ip.path_len = -1;
	ip.requester = "unit-test";
	ck_err_clear();
	return ck_ca_issue(ca, &ip, res);
}

static X509 *
der_cert(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	assert_non_null(x);
	assert_ptr_equal(p, der + len);
	return x;
}

/* Hex SHA-256 of the TBSCertificate bytes exactly as they are in `der`. */
static void
tbs_sha256_hex(const unsigned char *der, size_t len, char hex[65])
{
	const unsigned char *p = der, *tbs;
	unsigned char md[SHA256_DIGEST_LENGTH];
	long clen;
	int tag, cls, ret;

	ret = ASN1_get_object(&p, &clen, &tag, &cls, (long)len);
	assert_int_equal(ret & 0x80, 0);
	assert_int_equal(tag, V_ASN1_SEQUENCE);
	tbs = p;
	ret = ASN1_get_object(&p, &clen, &tag, &cls,
	    (long)(len - (size_t)(p - der)));
	assert_int_equal(ret & 0x80, 0);
	assert_int_equal(tag, V_ASN1_SEQUENCE);
	assert_true(p + clen <= der + len);
	SHA256(tbs, (size_t)(p - tbs) + (size_t)clen, md);
	ck_hex_encode(md, sizeof(md), hex);
}

static char *
cert_names(X509 *x)
{
	static char buf[512];
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	int i;

	buf[0] = '\0';
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);

		if (gn->type == GEN_DNS) {
			size_t off = strlen(buf);
			snprintf(buf + off, sizeof(buf) - off, "%s ",
			    (const char *)ASN1_STRING_get0_data(
			    gn->d.dNSName));
		}
	}
	GENERAL_NAMES_free(gens);
	return buf;
}

/* ---- init and open ---- */

static void
test_init_layout(void **state)
{
	struct ck_ca *ca = *state;
	char path[4300], *v = NULL;
	unsigned char *buf;
	size_t len;
	X509 *x;

	assert_int_equal(tu_file_mode(g.root), 0700);
	tu_path(path, sizeof(path), g.root, "private");
	assert_int_equal(tu_file_mode(path), 0700);
	tu_path(path, sizeof(path), g.root, "private/ca.key");
	assert_int_equal(tu_file_mode(path), 0600);
	buf = tu_read_file(path, &len);
	assert_true(strncmp((char *)buf,
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37) == 0);
	free(buf);
	tu_path(path, sizeof(path), g.root, "certkeep.conf");
	assert_true(ck_fs_exists(path));
	tu_path(path, sizeof(path), g.root, "store.db");
	assert_int_equal(tu_file_mode(path), 0600);
	tu_path(path, sizeof(path), g.root, "ca.pem");
	assert_true(ck_fs_exists(path));
	tu_path(path, sizeof(path), g.root, "ca.csr");
	assert_false(ck_fs_exists(path));

	/* The root certificate: self-signed CA with the subject asked for. */
	x = ca->cert;
	assert_non_null(x);
	assert_int_equal(sk_X509_num(ca->chain), 1);
	assert_int_equal(X509_check_issued(x, x), X509_V_OK);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
	assert_true(X509_get_extension_flags(x) & EXFLAG_CA);
	assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_key_usage(x) & KU_CRL_SIGN);
	{
		char subj[256];

		X509_NAME_oneline(X509_get_subject_name(x), subj,
		    sizeof(subj));
		assert_string_equal(subj,
		    "/CN=certkeep Test Root/O=certkeep tests");
	}
	{
		int days = 0, secs = 0;

		assert_int_equal(ASN1_TIME_diff(&days, &secs,
		    X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
		assert_int_equal(days, ROOT_DAYS);
	}

	/* Recorded like any other certificate; the CA is active. */
	{
		char serial[CK_SERIAL_HEX_MAX];
		struct store_cert *c = NULL;
		unsigned char *der = NULL;
		int dlen = i2d_X509(x, &der);

		assert_int_equal(ck_serial_to_hex(X509_get0_serialNumber(x),
		    serial), 0);
		assert_int_equal(store_cert_get(ca->st, serial, &c), 0);
		assert_int_equal(c->status, STORE_CERT_ISSUED);
		assert_int_equal(c->is_ca, 1);
		assert_int_equal(c->der_len, (size_t)dlen);
		assert_memory_equal(c->der, der, (size_t)dlen);
		store_cert_free(c);
		OPENSSL_free(der);
	}
	assert_int_equal(store_meta_get(ca->st, "ca_state", &v), 0);
	assert_string_equal(v, "active");
	free(v);
	audit_intact(ca);
	/* The configuration's first version is on record. */
	{
		char h[65];

		assert_int_equal(store_config_latest(ca->st, h), 0);
	}
}

static void
test_init_refuses_existing_home(void **state)
{
	struct ck_init_params p;
	char path[4300];

	(void)state;
	init_params(&p, g.root, 1, "CN=Second Root");
	ck_err_clear();
	assert_int_equal(ck_ca_init(&p), CK_E_EXISTS);
	/* Nothing of the existing CA was touched. */
	tu_path(path, sizeof(path), g.root, "private/ca.key");
	assert_true(ck_fs_exists(path));
	tu_path(path, sizeof(path), g.root, "store.db");
	assert_true(ck_fs_exists(path));
}

static void
test_init_failure_leaves_nothing(void **state)
{
	struct ck_init_params p;
	struct ck_pass_src src = g.src;
	char home[4300], pass[4300];

	(void)state;
	tu_path(home, sizeof(home), g.base, "failed");
	tu_path(pass, sizeof(pass), g.base, "open-pass");

	/* A passphrase file others can read. */
	tu_write_file(pass, PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0644);
	src.file = pass;
	init_params(&p, home, 1, "CN=Failed Root");
	p.pass = &src;
	assert_int_equal(ck_ca_init(&p), CK_E_PERM);
	assert_false(ck_fs_exists(home));

	/* A passphrase too short for a new key. */
	tu_write_file(pass, "short\n", 6, 0600);
	assert_int_equal(ck_ca_init(&p), CK_E_PASSPHRASE);
	assert_false(ck_fs_exists(home));

	/* A bad subject. */
	p.pass = &g.src;
	p.subject = "no equals sign";
	assert_int_equal(ck_ca_init(&p), CK_E_PARSE);
	assert_false(ck_fs_exists(home));

	/* A root valid for no time at all. */
	p.subject = "CN=Failed Root";
	p.days = 0;
	assert_int_not_equal(ck_ca_init(&p), 0);
	assert_false(ck_fs_exists(home));
}

static void
test_open_refuses_unsafe_home(void **state)
{
	struct ck_ca *ca = NULL;
	char missing[4300];

	(void)state;
	assert_int_equal(chmod(g.root, 0750), 0);
	ck_err_clear();
	assert_int_equal(ck_ca_open(g.root, &ca), CK_E_PERM);
	assert_null(ca);
	assert_contains(ck_err_msg(), "chmod 700");
	assert_int_equal(chmod(g.root, 0700), 0);

	tu_path(missing, sizeof(missing), g.base, "nowhere");
	assert_int_equal(ck_ca_open(missing, &ca), CK_E_NOTFOUND);
	assert_contains(ck_err_msg(), "certkeep init");
}

static void
test_config_change_recorded(void **state)
{
	struct ck_ca *ca = NULL;
	char conf[4300], before[65], after[65];
	unsigned char *text;
	size_t len;
	int64_t id;
	struct entry e;

	(void)state;
	assert_int_equal(ck_ca_open(g.root, &ca), 0);
	assert_int_equal(store_config_latest(ca->st, before), 0);
	id = audit_last_id(ca);
	ck_ca_close(ca);

	/* Opening again without a change records nothing. */
	assert_int_equal(ck_ca_open(g.root, &ca), 0);
	assert_int_equal(audit_last_id(ca), id);
	ck_ca_close(ca);

	tu_path(conf, sizeof(conf), g.root, "certkeep.conf");
	text = tu_read_file(conf, &len);
	text = realloc(text, len + 64);
	assert_non_null(text);
	memcpy(text + len, "# edited by a unit test\n", 24);
	tu_write_file(conf, text, len + 24, 0600);
	free(text);

	assert_int_equal(ck_ca_open(g.root, &ca), 0);
	assert_int_equal(store_config_latest(ca->st, after), 0);
	assert_string_not_equal(before, after);
	assert_int_equal(audit_last_id(ca), id + 1);
	e = audit_entry(ca, id + 1);
	assert_string_equal(e.action, "config-change");
	assert_string_equal(e.result, "ok");
	assert_string_equal(e.detail, after);
	audit_intact(ca);
	ck_ca_close(ca);
}

static void
test_config_typo_refused(void **state)
{
	struct ck_ca *ca = NULL;
	char conf[4300];
	unsigned char *orig;
	size_t len;
	char *bad;

	(void)state;
	tu_path(conf, sizeof(conf), g.root, "certkeep.conf");
	orig = tu_read_file(conf, &len);
	bad = malloc(len + 64);
	assert_non_null(bad);
	memcpy(bad, orig, len);
	memcpy(bad + len, "[profile.tls-server]\nalow_wildcard = yes\n", 41);
	tu_write_file(conf, bad, len + 41, 0600);
	ck_err_clear();
	assert_int_equal(ck_ca_open(g.root, &ca), CK_E_PARSE);
	assert_null(ca);
	assert_contains(ck_err_msg(), "alow_wildcard");
	tu_write_file(conf, orig, len, 0600);
	free(bad);
	free(orig);
}

/* ---- unlock ---- */

static void
test_unlock_wrong_passphrase(void **state)
{
	struct ck_ca *ca = NULL;
	int64_t id;
	struct entry e;

	(void)state;
	assert_int_equal(ck_ca_open(g.root, &ca), 0);
	id = audit_last_id(ca);
	ck_err_clear();
	assert_int_equal(ck_ca_unlock(ca, &g.wrong_src), CK_E_PASSPHRASE);
	assert_null(ca->signer);
	assert_contains(ck_err_msg(), "passphrase");
	/* The refusal is on record. */
	assert_int_equal(audit_last_id(ca), id + 1);
	e = audit_entry(ca, id + 1);
	assert_string_equal(e.action, "unlock");
	assert_string_equal(e.result, "refused");
	/* A locked CA issues nothing. */
	{
		struct ck_issue_result res;
		unsigned char *csr;
		size_t len;
		EVP_PKEY *k = tu_key("ec-p256");

		make_csr(k, "CN=www.example.com", NULL, 1, &csr, &len);
		assert_int_equal(issue(ca, csr, len, "tls-server", &res),
		    CK_E_STATE);
		assert_null(res.der);
		free(csr);
		EVP_PKEY_free(k);
	}
	/* The right passphrase still works. */
	assert_int_equal(ck_ca_unlock(ca, &g.src), 0);
	assert_non_null(ca->signer);
	ck_ca_close(ca);
}

static void
test_unlock_world_readable_key(void **state)
{
	struct ck_ca *ca = NULL;
	char key[4300];
	int64_t id;
	struct entry e;

	(void)state;
	tu_path(key, sizeof(key), g.root, "private/ca.key");
	assert_int_equal(ck_ca_open(g.root, &ca), 0);
	id = audit_last_id(ca);
	assert_int_equal(chmod(key, 0644), 0);
	ck_err_clear();
	assert_int_equal(ck_ca_unlock(ca, &g.src), CK_E_PERM);
	assert_int_equal(chmod(key, 0600), 0);
	assert_null(ca->signer);
	assert_contains(ck_err_msg(), "chmod 600");
	e = audit_entry(ca, id + 1);
	assert_string_equal(e.action, "unlock");
	assert_string_equal(e.result, "refused");

	/* Group-readable is refused too. */
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(ck_ca_unlock(ca, &g.src), CK_E_PERM);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(ck_ca_unlock(ca, &g.src), 0);
	ck_ca_close(ca);
}

static void
test_unlock_from_fd(void **state)
{
	struct ck_ca *ca = NULL;
	struct ck_pass_src src = { CK_PASS_FD, NULL, -1 };
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], PASSPHRASE "\n",
	    strlen(PASSPHRASE) + 1), (ssize_t)strlen(PASSPHRASE) + 1);
	close(fds[1]);
	src.fd = fds[0];
	assert_int_equal(ck_ca_open(g.root, &ca), 0);
	assert_int_equal(ck_ca_unlock(ca, &src), 0);
	assert_non_null(ca->signer);
	close(fds[0]);
	ck_ca_close(ca);
}

/* ---- issue ---- */

static void
test_issue(void **state)
{
	struct ck_ca *ca = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	struct ck_issue_result res;
	struct store_cert *c = NULL;
	unsigned char *csr;
	size_t len;
	char hex[65];
	int64_t id;
	X509 *x;
	struct entry e;

	id = audit_last_id(ca);
	make_csr(k, "CN=www.example.com", "DNS:www.example.com,"
	    "DNS:api.example.com", 1, &csr, &len);
	if (issue(ca, csr, len, "tls-server", &res) != 0)
		fail_msg("issue: %s", ck_err_msg());
	assert_non_null(res.der);
	assert_true(res.serial[0] != '\0');

	/* What was handed over is a certificate from this CA. */
	x = der_cert(res.der, res.der_len);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(ca->cert)), 1);
	assert_int_equal(X509_check_issued(ca->cert, x), X509_V_OK);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
	assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_false(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	assert_string_equal(cert_names(x), "www.example.com api.example.com ");
	{
		char serial[CK_SERIAL_HEX_MAX];

		assert_int_equal(ck_serial_to_hex(X509_get0_serialNumber(x),
		    serial), 0);
		assert_string_equal(serial, res.serial);
	}
	{
		int days = 0, secs = 0;

		assert_int_equal(ASN1_TIME_diff(&days, &secs,
		    X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
		assert_true(days <= 397);
		assert_true(days >= 396);
	}

	/* Recorded as issued, with the very DER, whose TBS is the one
	 * logged before signing. */
	assert_int_equal(store_cert_get(ca->st, res.serial, &c), 0);
	assert_int_equal(c->status, STORE_CERT_ISSUED);
	assert_int_equal(c->der_len, res.der_len);
	assert_memory_equal(c->der, res.der, res.der_len);
	tbs_sha256_hex(c->der, c->der_len, hex);
	assert_string_equal(c->tbs_sha256, hex);
	assert_string_equal(c->profile, "tls-server");
	assert_string_equal(c->requester, "unit-test");
	assert_contains(c->names, "DNS:www.example.com");
	assert_contains(c->names, "DNS:api.example.com");
	assert_int_equal(c->is_ca, 0);
	store_cert_free(c);

	/* One audit entry, naming the serial. */
	assert_int_equal(audit_last_id(ca), id + 1);
	e = audit_entry(ca, id + 1);
	assert_string_equal(e.action, "issue");
	assert_string_equal(e.object, res.serial);
	assert_string_equal(e.result, "ok");
	audit_intact(ca);

	X509_free(x);
	OPENSSL_free(res.der);
	free(csr);
	EVP_PKEY_free(k);
}

/* The group commit's phases: all or nothing for a group, each member's
 * row and audit entry when they succeed. */
static void
test_issue_many(void **state)
{
	struct ck_ca *ca = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	struct ck_issue_params ip;
	struct ck_issue_job *j[3] = { NULL, NULL, NULL }, *v[2];
	struct store_cert *c = NULL;
	unsigned char *csr, *der;
	size_t len, dlen;
	char hex[65];
	int64_t id;
	int i;

	make_csr(k, "CN=many.example.com", "DNS:many.example.com", 1, &csr,
	    &len);
	memset(&ip, 0, sizeof(ip));
	ip.csr = csr;
	ip.csr_len = len;
	ip.profile = "tls-server";
	ip.path_len = -1;
	ip.requester = "unit-test";
	for (i = 0; i < 3; i++)
		assert_int_equal(ck_issue_prepare(ca, &ip, NULL, &j[i]), 0);

	assert_int_equal(store_tx_begin(ca->st), 0);
	assert_int_equal(ck_issue_log_many(ca, j, 2), 0);
	assert_int_equal(store_tx_commit(ca->st), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(store_cert_get(ca->st,
		    ck_issue_job_serial(j[i]), &c), 0);
		assert_int_equal(c->status, STORE_CERT_PENDING);
		store_cert_free(c);
	}
	/* A serial in use fails the whole group. */
	v[0] = j[2];
	v[1] = j[0];
	assert_int_equal(store_tx_begin(ca->st), 0);
	assert_int_equal(ck_issue_log_many(ca, v, 2), CK_E_EXISTS);
	store_tx_rollback(ca->st);
	assert_int_equal(store_cert_get(ca->st, ck_issue_job_serial(j[2]), &c),
	    CK_E_NOTFOUND);

	assert_int_equal(ck_issue_sign(ca, j[0]), 0);
	assert_int_equal(ck_issue_sign(ca, j[1]), 0);
	/* One that is not pending fails the whole group too. */
	v[0] = j[0];
	v[1] = j[2];
	assert_int_equal(ck_issue_sign(ca, j[2]), 0);
	assert_int_equal(store_tx_begin(ca->st), 0);
	assert_int_equal(ck_issue_record_many(ca, v, 2), CK_E_STATE);
	store_tx_rollback(ca->st);
	assert_int_equal(store_cert_get(ca->st, ck_issue_job_serial(j[0]), &c),
	    0);
	assert_int_equal(c->status, STORE_CERT_PENDING);
	store_cert_free(c);

	id = audit_last_id(ca);
	assert_int_equal(store_tx_begin(ca->st), 0);
	assert_int_equal(ck_issue_record_many(ca, j, 2), 0);
	assert_int_equal(store_tx_commit(ca->st), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(store_cert_get(ca->st,
		    ck_issue_job_serial(j[i]), &c), 0);
		assert_int_equal(c->status, STORE_CERT_ISSUED);
		der = ck_issue_job_take_der(j[i], &dlen);
		assert_int_equal(c->der_len, dlen);
		assert_memory_equal(c->der, der, dlen);
		tbs_sha256_hex(c->der, c->der_len, hex);
		assert_string_equal(c->tbs_sha256, hex);
		store_cert_free(c);
		OPENSSL_free(der);
	}
	assert_int_equal(audit_last_id(ca), id + 2);
	audit_intact(ca);
	for (i = 0; i < 3; i++)
		ck_issue_job_free(j[i]);
	free(csr);
	EVP_PKEY_free(k);
}

static void
test_issue_der_rsa_and_days(void **state)
{
	struct ck_ca *ca = *state;
	EVP_PKEY *k = tu_key("rsa2048");
	struct ck_issue_params ip;
	struct ck_issue_result res;
	unsigned char *csr;
	size_t len;
	X509 *x;
	int days = 0, secs = 0;

	make_csr(k, "CN=db.example.com", NULL, 0, &csr, &len);
	memset(&ip, 0, sizeof(ip));
	ip.csr = csr;
	ip.csr_len = len;
	ip.profile = "tls-server";
	ip.days = 30;
	ip.path_len = -1;
	assert_int_equal(ck_ca_issue(ca, &ip, &res), 0);
	x = der_cert(res.der, res.der_len);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
	    X509_get0_notAfter(x)), 1);
	assert_int_equal(days, 30);
	/* The CN became the subjectAltName. */
	assert_string_equal(cert_names(x), "db.example.com ");
	{
		struct store_cert *c = NULL;

		/* No requester given: the operating-system user. */
		assert_int_equal(store_cert_get(ca->st, res.serial, &c), 0);
		assert_string_equal(c->requester, audit_os_user());
		store_cert_free(c);
	}
	X509_free(x);
	OPENSSL_free(res.der);
	free(csr);
	EVP_PKEY_free(k);
}

static void
refused_once(struct ck_ca *ca, const unsigned char *csr, size_t len,
    const char *profile, int want, const char *why)
{
	struct ck_issue_result res;
	size_t certs = cert_count(ca);
	int64_t id = audit_last_id(ca);
	struct entry e;
	int r;

	memset(&res, 0x5a, sizeof(res));
	r = issue(ca, csr, len, profile, &res);
	if (r != want)
		fail_msg("issue returned %d (%s), wanted %d", r, ck_err_msg(),
		    want);
	assert_contains(ck_err_msg(), why);
	assert_null(res.der);
	/* Exactly one audit entry, and no certificate row at all. */
	assert_int_equal(audit_last_id(ca), id + 1);
	e = audit_entry(ca, id + 1);
	assert_string_equal(e.action, "issue");
	assert_string_equal(e.result, "refused");
	assert_string_equal(e.user, "unit-test");	/* the requester */
	assert_contains(e.detail, why);
	assert_int_equal(cert_count(ca), certs);
	audit_intact(ca);
}

static void
test_issue_refused(void **state)
{
	struct ck_ca *ca = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *csr;
	size_t len;

	make_csr(k, "CN=www.example.net", NULL, 1, &csr, &len);
	refused_once(ca, csr, len, "tls-server", CK_E_POLICY,
	    "www.example.net");
	free(csr);

	make_csr(k, "CN=www.example.com", "DNS:*.example.com", 1, &csr, &len);
	refused_once(ca, csr, len, "tls-server", CK_E_POLICY, "wildcard");
	free(csr);

	make_csr(k, "CN=www.example.com", NULL, 1, &csr, &len);
	refused_once(ca, csr, len, "no-such-profile", CK_E_POLICY,
	    "no-such-profile");
	free(csr);

	/* A request whose signature does not verify. */
	make_csr(k, "CN=www.example.com", NULL, 0, &csr, &len);
	csr[len - 1] ^= 0x01;
	refused_once(ca, csr, len, "tls-server", CK_E_BADSIG, "signature");
	free(csr);

	refused_once(ca, (const unsigned char *)"garbage", 7, "tls-server",
	    CK_E_PARSE, "");
	{
		unsigned char *big = calloc(1, 64 * 1024 + 1);

		assert_non_null(big);
		refused_once(ca, big, 64 * 1024 + 1, "tls-server",
		    CK_E_TOOBIG, "limit");
		free(big);
	}
	EVP_PKEY_free(k);
	{
		EVP_PKEY *weak = tu_key("rsa1024");

		make_csr(weak, "CN=www.example.com", NULL, 1, &csr, &len);
		refused_once(ca, csr, len, "tls-server", CK_E_POLICY,
		    "rsa1024");
		free(csr);
		EVP_PKEY_free(weak);
	}
}

static void
test_issue_beyond_ca_validity_refused(void **state)
{
	struct ck_ca *ca = *state;
	EVP_PKEY *k = tu_key("ec-p256");
	struct ck_issue_params ip;
	struct ck_issue_result res;
	unsigned char *csr;
	size_t len, certs = cert_count(ca);

	/* sub-ca allows 3650 days, but the root itself ends sooner: an
	 * explicit request for that long is refused. */
	make_csr(k, "CN=Too Long CA", NULL, 1, &csr, &len);
	memset(&ip, 0, sizeof(ip));
	ip.csr = csr;
	ip.csr_len = len;
	ip.profile = "sub-ca";
	ip.days = 3650;
	ip.path_len = -1;
	assert_int_equal(ck_ca_issue(ca, &ip, &res), CK_E_POLICY);
	assert_contains(ck_err_msg(), "expires");
	assert_null(res.der);
	assert_int_equal(cert_count(ca), certs);
	free(csr);
	EVP_PKEY_free(k);
}

/* ---- revoke and CRL ---- */

static X509_CRL *
der_crl(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

	assert_non_null(crl);
	assert_ptr_equal(p, der + len);
	return crl;
}

/* The reason listed for `serial_hex` in `crl`: -1 absent, -2 listed
 * without a reason. */
static int
crl_reason(X509_CRL *crl, const char *serial_hex)
{
	ASN1_INTEGER *s = NULL;
	X509_REVOKED *rev = NULL;
	ASN1_ENUMERATED *e;
	int r;

	assert_int_equal(ck_serial_from_hex(serial_hex, &s), 0);
	r = X509_CRL_get0_by_serial(crl, &rev, s);
	ASN1_INTEGER_free(s);
	if (r != 1)
		return -1;
	e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
	if (e == NULL)
		return -2;
	r = (int)ASN1_ENUMERATED_get(e);
	ASN1_ENUMERATED_free(e);
	return r;
}

static void
issue_leaf(struct ck_ca *ca, const char *cn, struct ck_issue_result *res)
{
	EVP_PKEY *k = tu_key("ec-p256");
	unsigned char *csr;
	size_t len;
	char subj[128];

	snprintf(subj, sizeof(subj), "CN=%s", cn);
	make_csr(k, subj, NULL, 1, &csr, &len);
	if (issue(ca, csr, len, "tls-server", res) != 0)
		fail_msg("issue %s: %s", cn, ck_err_msg());
	free(csr);
	EVP_PKEY_free(k);
}

static void
test_revoke_and_crl(void **state)
{
	struct ck_ca *ca = *state;
	struct ck_issue_result a, b;
	struct store_cert *c = NULL;
	unsigned char *der = NULL, *file;
	size_t der_len = 0, flen;
	uint64_t number = 0, number2 = 0;
	X509_CRL *crl;
	char path[4300];
	int64_t id;
	struct entry e;

	issue_leaf(ca, "revoked.example.com", &a);
	issue_leaf(ca, "kept.example.com", &b);

	id = audit_last_id(ca);
	assert_int_equal(ck_ca_revoke(ca, a.serial, 1), 0);
	assert_int_equal(store_cert_get(ca->st, a.serial, &c), 0);
	assert_int_equal(c->status, STORE_CERT_REVOKED);
	assert_int_equal(c->reason, 1);
	assert_true(c->revoked_at > 0);
	store_cert_free(c);
	e = audit_entry(ca, id + 1);
	assert_string_equal(e.action, "revoke");
	assert_string_equal(e.object, a.serial);
	assert_string_equal(e.result, "ok");
	assert_string_equal(e.detail, "keyCompromise");

	/* Twice is refused, and the refusal is on record. */
	assert_int_equal(ck_ca_revoke(ca, a.serial, 4), CK_E_STATE);
	e = audit_entry(ca, id + 2);
	assert_string_equal(e.result, "refused");
	assert_int_equal(store_cert_get(ca->st, a.serial, &c), 0);
	assert_int_equal(c->reason, 1);
	store_cert_free(c);

	assert_int_equal(ck_ca_crl(ca, &der, &der_len, &number), 0);
	assert_true(number >= 1);
	crl = der_crl(der, der_len);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca->cert)), 0);
	assert_int_equal(crl_reason(crl, a.serial), 1);
	assert_int_equal(crl_reason(crl, b.serial), -1);
	{
		ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number,
		    NULL, NULL);

		assert_non_null(n);
		assert_true((uint64_t)ASN1_INTEGER_get(n) == number);
		ASN1_INTEGER_free(n);
	}
	{
		int days = 0, secs = 0;

		assert_int_equal(ASN1_TIME_diff(&days, &secs,
		    X509_CRL_get0_lastUpdate(crl),
		    X509_CRL_get0_nextUpdate(crl)), 1);
		assert_int_equal(days * 86400 + secs, 168 * 3600);
	}
	X509_CRL_free(crl);

	/* Published: DER and PEM. */
	tu_path(path, sizeof(path), g.root, "crl/ca.crl");
	file = tu_read_file(path, &flen);
	assert_int_equal(flen, der_len);
	assert_memory_equal(file, der, der_len);
	free(file);
	tu_path(path, sizeof(path), g.root, "crl/ca.crl.pem");
	file = tu_read_file(path, &flen);
	assert_true(strncmp((char *)file, "-----BEGIN X509 CRL-----", 24) == 0);
	free(file);
	OPENSSL_free(der);
	der = NULL;

	/* Serial numbers as users type them; the next CRL has both. */
	{
		char typed[200];
		size_t i, o = 0;

		o += (size_t)snprintf(typed, sizeof(typed), "0x");
		for (i = 0; b.serial[i] != '\0'; i++) {
			typed[o++] = (char)(b.serial[i] | 0x20);
			if (i % 2 == 1 && b.serial[i + 1] != '\0')
				typed[o++] = ':';
		}
		typed[o] = '\0';
		assert_int_equal(ck_ca_revoke(ca, typed, 0), 0);
	}
	assert_int_equal(ck_ca_crl(ca, &der, &der_len, &number2), 0);
	assert_true(number2 == number + 1);
	crl = der_crl(der, der_len);
	assert_int_equal(crl_reason(crl, a.serial), 1);
	/* "unspecified" is listed without a reason code. */
	assert_int_equal(crl_reason(crl, b.serial), -2);
	X509_CRL_free(crl);
	OPENSSL_free(der);

	/* Without wanting the DER back. */
	assert_int_equal(ck_ca_crl(ca, NULL, NULL, NULL), 0);
	audit_intact(ca);
	OPENSSL_free(a.der);
	OPENSSL_free(b.der);
}

static void
test_revoke_refused(void **state)
{
	struct ck_ca *ca = *state;
	struct ck_issue_result a;
	int64_t id;

	issue_leaf(ca, "target.example.com", &a);
	id = audit_last_id(ca);
	/* 7 is not a reason; removeFromCRL (8) is not for revoking. */
	assert_int_equal(ck_ca_revoke(ca, a.serial, 7), CK_E_INVAL);
	assert_int_equal(ck_ca_revoke(ca, a.serial, 8), CK_E_INVAL);
	assert_int_equal(ck_ca_revoke(ca, a.serial, 11), CK_E_INVAL);
	assert_int_equal(ck_ca_revoke(ca, a.serial, -1), CK_E_INVAL);
	assert_int_equal(ck_ca_revoke(ca, "not-hex", 1), CK_E_PARSE);
	assert_int_equal(ck_ca_revoke(ca, "0ABCDEF0123", 1), CK_E_NOTFOUND);
	/* Every refusal is on record. */
	assert_int_equal(audit_last_id(ca), id + 6);
	{
		struct store_cert *c = NULL;

		assert_int_equal(store_cert_get(ca->st, a.serial, &c), 0);
		assert_int_equal(c->status, STORE_CERT_ISSUED);
		store_cert_free(c);
	}
	audit_intact(ca);
	OPENSSL_free(a.der);
}

/* ---- issuing CA ---- */

static char *
to_pem(const unsigned char *der, size_t len, size_t *outlen)
{
	char *pem = NULL;

	assert_int_equal(ck_der_to_pem(der, len, &pem, outlen), 0);
	return pem;
}

/* A self-signed CA certificate that certkeep never saw. */
static char *
foreign_root_pem(size_t *outlen)
{
	EVP_PKEY *k = tu_key_new("ec-p256");
	X509_NAME *nm = NULL;
	ASN1_INTEGER *serial = NULL;
	struct ck_cert_template t;
	char hex[CK_SERIAL_HEX_MAX];
	unsigned char *der = NULL;
	char *pem;
	X509 *x = NULL;
	int len;

	assert_int_equal(ck_dn_parse(ROOT_SUBJECT, &nm), 0);
	assert_int_equal(ck_serial_random(&serial, hex), 0);
	memset(&t, 0, sizeof(t));
	t.subject = nm;
	t.pubkey = k;
	t.serial = serial;
	t.not_before = time(NULL) - 60;
	t.not_after = time(NULL) + 86400 * 3650L;
	t.is_ca = 1;
	t.path_len = -1;
	t.ku = (1u << CK_KU_KEY_CERT_SIGN) | (1u << CK_KU_CRL_SIGN);
	assert_int_equal(ck_cert_build(&t, NULL, &x), 0);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	len = i2d_X509(x, &der);
	assert_true(len > 0);
	pem = to_pem(der, (size_t)len, outlen);
	OPENSSL_free(der);
	X509_free(x);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(nm);
	EVP_PKEY_free(k);
	return pem;
}

static void
install_refused(struct ck_ca *ca, const char *cert, size_t clen,
    const char *chain, size_t chlen, int want, const char *why)
{
	int64_t id = audit_last_id(ca);
	struct entry e;
	int r;

	ck_err_clear();
	r = ck_ca_install(ca, (const unsigned char *)cert, clen,
	    (const unsigned char *)chain, chlen);
	if (r != want)
		fail_msg("install returned %d (%s), wanted %d", r,
		    ck_err_msg(), want);
	assert_contains(ck_err_msg(), why);
	if (want != CK_E_STATE)
		assert_null(ca->cert);
	assert_int_equal(audit_last_id(ca), id + 1);
	e = audit_entry(ca, id + 1);
	assert_string_equal(e.action, "install-certificate");
	assert_string_equal(e.result, "refused");
}

static void
test_issuing_ca(void **state)
{
	struct ck_ca *root = *state, *sub = NULL;
	struct ck_init_params p;
	struct ck_issue_result res, other, leafcert, wrongkind;
	char home[4300], path[4300], *v = NULL;
	char *cert_pem, *other_pem, *chain_pem, *fake_pem, *leaf_pem;
	size_t cert_len, other_len, chain_len, fake_len, leaf_len, len;
	unsigned char *csr;

	tu_path(home, sizeof(home), g.base, "issuing");
	init_params(&p, home, 0, "CN=issuing.example.com");
	if (ck_ca_init(&p) != 0)
		fail_msg("init issuing: %s", ck_err_msg());
	tu_path(path, sizeof(path), home, "ca.csr");
	csr = tu_read_file(path, &len);
	tu_path(path, sizeof(path), home, "ca.pem");
	assert_false(ck_fs_exists(path));

	assert_int_equal(ck_ca_open(home, &sub), 0);
	assert_null(sub->cert);
	assert_int_equal(store_meta_get(sub->st, "ca_state", &v), 0);
	assert_string_equal(v, "awaiting-certificate");
	free(v);
	v = NULL;
	assert_int_equal(ck_ca_unlock(sub, &g.src), 0);
	{
		/* No certificate yet: nothing can be issued. */
		struct ck_issue_result r0;

		assert_int_equal(issue(sub, csr, len, "tls-server", &r0),
		    CK_E_STATE);
	}

	/* The root signs the issuing CA's request under sub-ca. */
	if (issue(root, csr, len, "sub-ca", &res) != 0)
		fail_msg("issue sub-ca: %s", ck_err_msg());
	cert_pem = to_pem(res.der, res.der_len, &cert_len);
	assert_int_equal(ck_ca_chain_pem(root, &chain_pem, &chain_len), 0);

	/* A CA certificate for another key is refused. */
	{
		EVP_PKEY *k = tu_key_new("ec-p256");
		unsigned char *ocsr;
		size_t olen;

		make_csr(k, "CN=Imposter CA", NULL, 1, &ocsr, &olen);
		assert_int_equal(issue(root, ocsr, olen, "sub-ca", &other), 0);
		other_pem = to_pem(other.der, other.der_len, &other_len);
		free(ocsr);
		EVP_PKEY_free(k);
	}
	install_refused(sub, other_pem, other_len, chain_pem, chain_len,
	    CK_E_INVAL, "not for this CA's key");

	/* A certificate for the right key that is not a CA's. */
	assert_int_equal(issue(root, csr, len, "tls-server", &wrongkind), 0);
	leaf_pem = to_pem(wrongkind.der, wrongkind.der_len, &leaf_len);
	install_refused(sub, leaf_pem, leaf_len, chain_pem, chain_len,
	    CK_E_INVAL, "not a CA certificate");

	/* The right certificate with a chain to some other root. */
	fake_pem = foreign_root_pem(&fake_len);
	install_refused(sub, cert_pem, cert_len, fake_pem, fake_len,
	    CK_E_BADSIG, "does not verify");
	/* ...or with no chain at all, or no certificate. */
	install_refused(sub, cert_pem, cert_len, "", 0, CK_E_PARSE, "chain");
	install_refused(sub, "junk", 4, chain_pem, chain_len, CK_E_PARSE,
	    "certificate");
	tu_path(path, sizeof(path), home, "ca.pem");
	assert_false(ck_fs_exists(path));

	/* Now the right one. */
	if (ck_ca_install(sub, (unsigned char *)cert_pem, cert_len,
	    (unsigned char *)chain_pem, chain_len) != 0)
		fail_msg("install: %s", ck_err_msg());
	assert_non_null(sub->cert);
	assert_int_equal(sk_X509_num(sub->chain), 2);
	assert_int_equal(store_meta_get(sub->st, "ca_state", &v), 0);
	assert_string_equal(v, "active");
	free(v);
	assert_true(ck_fs_exists(path));
	/* Only once. */
	install_refused(sub, cert_pem, cert_len, chain_pem, chain_len,
	    CK_E_STATE, "already");
	ck_ca_close(sub);
	sub = NULL;

	/* Reopened, it issues; its certificates chain up to the root. */
	assert_int_equal(ck_ca_open(home, &sub), 0);
	assert_non_null(sub->cert);
	assert_int_equal(sk_X509_num(sub->chain), 2);
	assert_int_equal(ck_ca_unlock(sub, &g.src), 0);
	issue_leaf(sub, "leaf.example.com", &leafcert);
	{
		X509 *leaf = der_cert(leafcert.der, leafcert.der_len);
		X509_STORE *trust = X509_STORE_new();
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		STACK_OF(X509) *untrusted = sk_X509_new_null();

		assert_non_null(trust);
		assert_non_null(ctx);
		assert_int_equal(X509_STORE_add_cert(trust, root->cert), 1);
		assert_true(sk_X509_push(untrusted, sub->cert) > 0);
		assert_int_equal(X509_STORE_CTX_init(ctx, trust, leaf,
		    untrusted), 1);
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
		if (X509_verify_cert(ctx) != 1)
			fail_msg("leaf does not verify: %s",
			    X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(ctx)));
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(trust);
		sk_X509_free(untrusted);
		X509_free(leaf);
	}
	/* The issuing CA's path length is 0: no CA below it. */
	{
		EVP_PKEY *k = tu_key_new("ec-p256");
		unsigned char *ocsr;
		size_t olen;
		struct ck_issue_result r2;

		make_csr(k, "CN=Too Deep CA", NULL, 1, &ocsr, &olen);
		assert_int_equal(issue(sub, ocsr, olen, "sub-ca", &r2),
		    CK_E_POLICY);
		free(ocsr);
		EVP_PKEY_free(k);
	}
	audit_intact(sub);
	ck_ca_close(sub);

	OPENSSL_free(res.der);
	OPENSSL_free(other.der);
	OPENSSL_free(wrongkind.der);
	OPENSSL_free(leafcert.der);
	free(cert_pem);
	free(other_pem);
	free(leaf_pem);
	free(fake_pem);
	free(chain_pem);
	free(csr);
}

/* ---- small helpers of ca.h ---- */

static void
test_dn_parse(void **state)
{
	X509_NAME *nm = NULL;
	char buf[256];

	(void)state;
	assert_int_equal(ck_dn_parse("CN=a, O=b", &nm), 0);
	X509_NAME_oneline(nm, buf, sizeof(buf));
	assert_string_equal(buf, "/CN=a/O=b");
	X509_NAME_free(nm);
	nm = NULL;
	assert_int_equal(ck_dn_parse("/CN=x/OU=y/C=DE", &nm), 0);
	X509_NAME_oneline(nm, buf, sizeof(buf));
	assert_string_equal(buf, "/CN=x/OU=y/C=DE");
	X509_NAME_free(nm);
	nm = NULL;
	assert_int_equal(ck_dn_parse("", &nm), CK_E_PARSE);
	assert_int_equal(ck_dn_parse("CN", &nm), CK_E_PARSE);
	assert_int_equal(ck_dn_parse("CN=", &nm), CK_E_PARSE);
	assert_int_equal(ck_dn_parse("=x", &nm), CK_E_PARSE);
	assert_int_equal(ck_dn_parse("NOSUCHATTR=x", &nm), CK_E_PARSE);
	assert_int_equal(ck_dn_parse(",,,", &nm), CK_E_PARSE);
	assert_null(nm);
}

static void
test_ca_path(void **state)
{
	struct ck_ca *ca = *state;
	char buf[8200];

	assert_int_equal(ck_ca_path(ca, "ca.pem", buf, sizeof(buf)), 0);
	assert_true(strncmp(buf, g.root, strlen(g.root)) == 0);
	assert_string_equal(buf + strlen(g.root), "/ca.pem");
	assert_int_equal(ck_ca_path(ca, "/abs/x", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/abs/x");
	assert_int_equal(ck_ca_path(ca, "ca.pem", buf, 5), CK_E_TOOBIG);
}

static void
test_der_to_pem(void **state)
{
	struct ck_ca *ca = *state;
	unsigned char *der = NULL;
	char *pem = NULL;
	size_t len = 0;
	int dlen = i2d_X509(ca->cert, &der);

	assert_true(dlen > 0);
	assert_int_equal(ck_der_to_pem(der, (size_t)dlen, &pem, &len), 0);
	assert_int_equal(strlen(pem), len);
	assert_true(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
	free(pem);
	pem = NULL;
	assert_int_equal(ck_der_to_pem(der, (size_t)dlen - 1, &pem, &len),
	    CK_E_PARSE);
	assert_null(pem);
	OPENSSL_free(der);

	assert_int_equal(ck_ca_chain_pem(ca, &pem, &len), 0);
	assert_true(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
	free(pem);
}

int
main(void)
{
#define R(f) cmocka_unit_test_setup_teardown(f, setup_root, teardown_root)
	const struct CMUnitTest tests[] = {
		R(test_init_layout),
		cmocka_unit_test(test_init_refuses_existing_home),
		cmocka_unit_test(test_init_failure_leaves_nothing),
		cmocka_unit_test(test_open_refuses_unsafe_home),
		cmocka_unit_test(test_config_change_recorded),
		cmocka_unit_test(test_config_typo_refused),
		cmocka_unit_test(test_unlock_wrong_passphrase),
		cmocka_unit_test(test_unlock_world_readable_key),
		cmocka_unit_test(test_unlock_from_fd),
		R(test_issue),
		R(test_issue_der_rsa_and_days),
		R(test_issue_many),
		R(test_issue_refused),
		R(test_issue_beyond_ca_validity_refused),
		R(test_revoke_and_crl),
		R(test_revoke_refused),
		R(test_issuing_ca),
		cmocka_unit_test(test_dn_parse),
		R(test_ca_path),
		R(test_der_to_pem),
	};
#undef R

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
