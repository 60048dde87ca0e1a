/*
 * test_signer_proc.c - the signer process, started over a socketpair
 * exactly as certkeepd starts it (signer_proc_start, then the passphrase),
 * driven by a test that plays a compromised service process:
 *
 *   - honest requests work (certificate, CRL, OCSP, CMS checkpoint);
 *   - forbidden requests that are well formed are refused with an error
 *     reply and the signer stays up: CA:TRUE under a leaf profile, too
 *     long a validity, a validity beyond the CA's, names, key usages and
 *     URLs outside the profile, an unknown profile, OCSP statuses for a
 *     foreign issuer, CMS of arbitrary content;
 *   - malformed or impossible messages kill it (exit status 3): unknown
 *     type, truncated, oversized, a trailing (unknown) field, a reply type,
 *     a second unlock, a request before unlock, the sign of a handle never
 *     given out or already used; the death is detected and every later
 *     call fails with "signer unavailable";
 *   - the seccomp filter: in kill mode a forbidden system call kills the
 *     process (SIGSYS); in log mode it is reported and fails with ENOSYS.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "audit/checkpoint.h"
#include "ca/ca.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/secmem.h"
#include "signer/signer.h"
#include "signer/signer_msg.h"
#include "signer/signer_proc.h"
#include "x509/csr.h"
#include "x509/serial.h"

#include "ber_names.h"

#define PASSPHRASE "correct horse battery staple"
#define LOG2N 10
#define ROOT_DAYS 3000

static struct {
	char base[4096];
	char root[4200], other[4200], pass[4200], allowca[4200];
	char onethread[4200];
	struct ck_pass_src src;
	struct ck_secret *pw;
} g;

/* One started and unlocked signer process with the CA open over it. */
struct fx {
	struct signer_proc *sp;
	struct ck_ca *ca;
	atomic_int deaths;	/* counted after why is written */
	char why[256];
};

static int
make_ca(const char *home, const char *subject)
{
	struct ck_init_params p;

	memset(&p, 0, sizeof(p));
	p.home = home;
	p.root = 1;
	p.subject = subject;
	p.key_type = CK_KEY_EC_P256;
	p.days = ROOT_DAYS;
	p.path_len = -1;
	p.base_url = "http://ca.example.com";
	p.domain = "example.com";
	p.pass = &g.src;
	p.scrypt_log2n = LOG2N;
	if (ck_ca_init(&p) != 0) {
		fprintf(stderr, "ck_ca_init: %s\n", ck_err_msg());
		return -1;
	}
	return 0;
}

/* Add `text` to the configuration of the CA at `home`. */
static int
conf_append(const char *home, const char *text)
{
	char conf[4300];
	FILE *fp;

	tu_path(conf, sizeof(conf), home, "certkeep.conf");
	if ((fp = fopen(conf, "a")) == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp) == 0 ? 0 : -1;
}

static int
group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	tu_tmpdir(g.base, sizeof(g.base));
	tu_path(g.root, sizeof(g.root), g.base, "root");
	tu_path(g.other, sizeof(g.other), g.base, "other");
	tu_path(g.pass, sizeof(g.pass), g.base, "pass");
	tu_path(g.allowca, sizeof(g.allowca), g.base, "allowca");
	tu_path(g.onethread, sizeof(g.onethread), g.base, "onethread");
	tu_write_file(g.pass, PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0600);
	g.src.kind = CK_PASS_FILE;
	g.src.file = g.pass;
	g.src.fd = -1;
	if ((g.pw = ck_secret_new(64)) == NULL)
		return -1;
	memcpy(g.pw->buf, PASSPHRASE, strlen(PASSPHRASE));
	g.pw->len = strlen(PASSPHRASE);
	if (make_ca(g.root, "CN=Signer Test Root,O=certkeep tests") != 0 ||
	    make_ca(g.other, "CN=Someone Else,O=elsewhere") != 0 ||
	    make_ca(g.allowca, "CN=Allow CA Root,O=certkeep tests") != 0 ||
	    make_ca(g.onethread, "CN=One Thread Root,O=certkeep tests") != 0)
		return -1;
	/* A CA whose operator weakened the boundary on purpose; a signer
	 * with one signing thread (test_budget_holds). */
	if (conf_append(g.allowca, "\n[signer]\nallow_ca = yes\n") != 0 ||
	    conf_append(g.onethread, "\n[signer]\nthreads = 1\n") != 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	ck_secret_free(g.pw);
	tu_rmtree(g.base);
	tu_keys_free();
	return 0;
}

static void
on_death(void *arg, const char *why)
{
	struct fx *f = arg;

	snprintf(f->why, sizeof(f->why), "%s", why);
	atomic_fetch_add(&f->deaths, 1);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || signer_proc_start(g.root, &f->sp) != 0 ||
	    ck_ca_open(g.root, &f->ca) != 0 ||
	    ck_ca_unlock_proc(f->ca, f->sp, g.pw) != 0) {
		fprintf(stderr, "starting the signer: %s\n", ck_err_msg());
		return -1;
	}
	signer_proc_on_death(f->sp, on_death, f);
	*state = f;
	return 0;
}

static int
setup_home(void **state, const char *home)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || signer_proc_start(home, &f->sp) != 0 ||
	    ck_ca_open(home, &f->ca) != 0 ||
	    ck_ca_unlock_proc(f->ca, f->sp, g.pw) != 0) {
		fprintf(stderr, "starting the signer: %s\n", ck_err_msg());
		return -1;
	}
	signer_proc_on_death(f->sp, on_death, f);
	*state = f;
	return 0;
}

static int
setup_allowca(void **state)
{
	return setup_home(state, g.allowca);
}

static int
setup_onethread(void **state)
{
	return setup_home(state, g.onethread);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	ck_ca_close(f->ca);
	signer_proc_free(f->sp);
	free(f);
	return 0;
}

/* The signer's exit: its status from waitpid (waits). */
static int
signer_exit(struct fx *f)
{
	int st = 0;

	assert_int_equal(waitpid(signer_proc_pid(f->sp), &st, 0),
	    signer_proc_pid(f->sp));
	return st;
}

/* It died of a protocol violation (exit 3), was noticed, and nothing
 * signs any more. */
static void
assert_killed(struct fx *f)
{
	struct signer_msg req, rep;
	unsigned char *body = NULL;
	char why[256];
	int st = signer_exit(f), i;

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
	for (i = 0; i < 200 && atomic_load(&f->deaths) == 0; i++)
		usleep(10000);
	assert_true(signer_proc_dead(f->sp, why, sizeof(why)));
	assert_int_equal(atomic_load(&f->deaths), 1);
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_STATUS;
	assert_int_equal(signer_proc_call(f->sp, &req, &rep, &body),
	    CK_E_CRYPTO);
	assert_contains(ck_err_msg(), "signer unavailable");
	assert_false(signer_available(f->ca->signer, 1, NULL, 0));
}

/* Still serving: a status request is answered. */
static void
assert_alive(struct fx *f)
{
	assert_true(signer_available(f->ca->signer, 0, NULL, 0));
	assert_false(signer_proc_dead(f->sp, NULL, 0));
}

static void
send_raw(struct fx *f, const void *buf, size_t len)
{
	assert_int_equal(write(signer_proc_fd(f->sp), buf, len),
	    (ssize_t)len);
}

static void
hdr(unsigned char h[SIGNER_MSG_HDR], unsigned type, uint32_t id,
    uint32_t len)
{
	h[0] = (unsigned char)(type >> 8);
	h[1] = (unsigned char)type;
	h[2] = h[3] = 0;
	h[4] = (unsigned char)(id >> 24);
	h[5] = (unsigned char)(id >> 16);
	h[6] = (unsigned char)(id >> 8);
	h[7] = (unsigned char)id;
	h[8] = (unsigned char)(len >> 24);
	h[9] = (unsigned char)(len >> 16);
	h[10] = (unsigned char)(len >> 8);
	h[11] = (unsigned char)len;
}

/* ---- a certificate template for the tls-server profile ---- */

struct tmpl {
	struct ck_cert_template t;
	X509_NAME *subject;
	unsigned char *spki;
	struct ck_names sans;
	struct ck_strlist eku;
	struct ck_csr *csr;	/* tmpl_csr(): the key's parts from it */
};

static void
tmpl_init(struct tmpl *m, struct ck_ca *ca, const char *cn)
{
	EVP_PKEY *key = tu_key("ec-p256");
	int n;
	int64_t now = (int64_t)time(NULL);

	memset(m, 0, sizeof(*m));
	assert_int_equal(ck_dn_parse(cn, &m->subject), 0);
	n = i2d_PUBKEY(key, &m->spki);
	EVP_PKEY_free(key);
	assert_true(n > 0);
	assert_int_equal(ck_names_add(&m->sans, CK_NAME_DNS,
	    strchr(cn, '=') + 1), 0);
	assert_int_equal(ck_strlist_add(&m->eku, "serverAuth"), 0);
	m->t.subject = m->subject;
	m->t.spki_der = m->spki;
	m->t.spki_der_len = (size_t)n;
	m->t.not_before = now - 60;
	m->t.not_after = now + 90 * 86400;
	m->t.path_len = -1;
	m->t.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
	m->t.eku = &m->eku;
	m->t.sans = &m->sans;
	m->t.crl_url = ca->cfg->crl_url;
	m->t.ocsp_url = ca->cfg->ocsp_url;
	m->t.issuer_url = ca->cfg->issuer_url;
	m->t.profile = "tls-server";
}

/* The template's key: a new one of `type` (tu_key()). */
static void
tmpl_key(struct tmpl *m, const char *type)
{
	EVP_PKEY *key = tu_key(type);
	int n;

	assert_non_null(key);
	OPENSSL_free(m->spki);
	m->spki = NULL;
	n = i2d_PUBKEY(key, &m->spki);
	EVP_PKEY_free(key);
	assert_true(n > 0);
	m->t.spki_der = m->spki;
	m->t.spki_der_len = (size_t)n;
}

/* The template's key from a CSR, its SubjectPublicKeyInfo parts as the
 * issuance path passes them: the service then prepares with a serial
 * the signer reserved and issues in one call (cert-issue). */
static void
tmpl_csr(struct tmpl *m)
{
	EVP_PKEY *key = tu_key("ec-p256");
	struct tu_csr o = { .subject = "CN=www.example.com" };
	unsigned char *der = NULL;
	size_t len = 0;

	tu_csr_make(key, &o, &der, &len);
	EVP_PKEY_free(key);
	assert_int_equal(ck_csr_parse_ex(der, len, CK_CSR_NO_PUBKEY,
	    &m->csr), 0);
	free(der);
	m->t.spki_der = m->csr->spki_der;
	m->t.spki_der_len = m->csr->spki_der_len;
	m->t.spki_alg = m->csr->spki_alg;
	m->t.spki_key = m->csr->spki_key;
}

static void
tmpl_clear(struct tmpl *m)
{
	ck_csr_free(m->csr);
	X509_NAME_free(m->subject);
	OPENSSL_free(m->spki);
	ck_names_clear(&m->sans);
	ck_strlist_clear(&m->eku);
}

/* Prepare `m`: 0 and signed, or the refusal's code. */
static int
try_issue(struct fx *f, struct tmpl *m, X509 **out)
{
	struct signer_pending *p = NULL;
	unsigned char d[32], *der = NULL;
	const unsigned char *q;
	size_t len = 0;
	int r;

	char want[CK_SERIAL_HEX_MAX], got[CK_SERIAL_HEX_MAX];

	if ((r = signer_cert_prepare_der(f->ca->signer, &m->t, &p, d)) != 0)
		return r;
	/* The serial the signer chose and returned is the certificate's. */
	snprintf(want, sizeof(want), "%s", signer_pending_serial(p));
	assert_int_equal(signer_cert_sign(f->ca->signer, p, &der, &len), 0);
	q = der;
	*out = d2i_X509(NULL, &q, (long)len);
	assert_non_null(*out);
	assert_int_equal(ck_serial_to_hex(X509_get0_serialNumber(*out), got),
	    0);
	assert_string_equal(got, want);
	OPENSSL_free(der);
	return 0;
}

static void
assert_refused(struct fx *f, struct tmpl *m, const char *why)
{
	X509 *x = NULL;

	assert_int_equal(try_issue(f, m, &x), CK_E_POLICY);
	assert_contains(ck_err_msg(), why);
	assert_null(x);
	assert_alive(f);
}

/* ---- honest use ---- */

static void
test_honest(void **state)
{
	struct fx *f = *state;
	struct tmpl m;
	X509 *x = NULL;
	X509_STORE *st;
	X509_STORE_CTX *ctx;
	unsigned char *crl = NULL;
	size_t crllen = 0;
	uint64_t number = 0;
	int written = 0;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	assert_int_equal(try_issue(f, &m, &x), 0);
	/* Issued by the CA, verifiable. */
	assert_non_null(st = X509_STORE_new());
	assert_int_equal(X509_STORE_add_cert(st, f->ca->cert), 1);
	assert_non_null(ctx = X509_STORE_CTX_new());
	assert_int_equal(X509_STORE_CTX_init(ctx, st, x, NULL), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
	tmpl_clear(&m);
	/* A CRL and a signed checkpoint. */
	assert_int_equal(ck_ca_crl(f->ca, &crl, &crllen, &number), 0);
	assert_true(crllen > 0);
	free(crl);
	assert_int_equal(audit_checkpoint(f->ca, NULL, &written), 0);
	assert_int_equal(written, 1);
	assert_alive(f);
}

static void
test_ocsp(void **state)
{
	struct fx *f = *state;
	struct ck_ca *other = NULL;
	OCSP_BASICRESP *bs;
	OCSP_CERTID *id;
	ASN1_TIME *tu, *nu;
	ASN1_INTEGER *ser = ASN1_INTEGER_new();
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509_STORE *st = X509_STORE_new();
	time_t now = time(NULL);

	assert_int_equal(ASN1_INTEGER_set(ser, 4242), 1);
	tu = ASN1_GENERALIZEDTIME_set(NULL, now);
	nu = ASN1_GENERALIZEDTIME_set(NULL, now + 3600);
	/* Ours: good. Signed by the CA, verifiable. */
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(f->ca->cert),
	    X509_get0_pubkey_bitstr(f->ca->cert), ser);
	assert_non_null(bs = OCSP_BASICRESP_new());
	assert_non_null(OCSP_basic_add1_status(bs, id,
	    V_OCSP_CERTSTATUS_GOOD, 0, NULL, tu, nu));
	assert_int_equal(signer_ocsp_sign(f->ca->signer, &bs, 0), 0);
	assert_int_equal(X509_STORE_add_cert(st, f->ca->cert), 1);
	sk_X509_push(certs, f->ca->cert);
	assert_int_equal(OCSP_basic_verify(bs, certs, st, OCSP_TRUSTOTHER),
	    1);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	/* A foreign issuer's: "good" refused, "unknown" allowed. */
	assert_int_equal(ck_ca_open(g.other, &other), 0);
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(other->cert),
	    X509_get0_pubkey_bitstr(other->cert), ser);
	assert_non_null(bs = OCSP_BASICRESP_new());
	assert_non_null(OCSP_basic_add1_status(bs, id,
	    V_OCSP_CERTSTATUS_GOOD, 0, NULL, tu, nu));
	assert_int_equal(signer_ocsp_sign(f->ca->signer, &bs, 0),
	    CK_E_POLICY);
	assert_contains(ck_err_msg(), "not for this CA");
	OCSP_BASICRESP_free(bs);
	assert_non_null(bs = OCSP_BASICRESP_new());
	assert_non_null(OCSP_basic_add1_status(bs, id,
	    V_OCSP_CERTSTATUS_UNKNOWN, 0, NULL, tu, nu));
	assert_int_equal(signer_ocsp_sign(f->ca->signer, &bs, 0), 0);
	OCSP_BASICRESP_free(bs);
	/* nextUpdate beyond [server] ocsp_validity: refused. */
	ASN1_TIME_free(nu);
	nu = ASN1_GENERALIZEDTIME_set(NULL, now + 400 * 86400);
	assert_non_null(bs = OCSP_BASICRESP_new());
	assert_non_null(OCSP_basic_add1_status(bs, id,
	    V_OCSP_CERTSTATUS_UNKNOWN, 0, NULL, tu, nu));
	assert_int_equal(signer_ocsp_sign(f->ca->signer, &bs, 0),
	    CK_E_POLICY);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ck_ca_close(other);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(ser);
	sk_X509_free(certs);
	X509_STORE_free(st);
	assert_alive(f);
}

/* ---- refused with an error reply ---- */

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	struct tmpl m;
	int64_t now = (int64_t)time(NULL);

	/* CA:TRUE under a leaf profile. */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	m.t.is_ca = 1;
	m.t.path_len = 0;
	assert_refused(f, &m, "CA:TRUE");
	tmpl_clear(&m);
	/* Over-long validity (tls-server: 397 days). */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	m.t.not_after = now + 500 * 86400;
	assert_refused(f, &m, "maximum");
	tmpl_clear(&m);
	/* A validity beyond the CA's own (sub-ca allows 3650 days, the CA
	 * has 3000). */
	tmpl_init(&m, f->ca, "CN=Sub CA");
	ck_names_clear(&m.sans);
	ck_strlist_clear(&m.eku);
	m.t.profile = "sub-ca";
	m.t.is_ca = 1;
	m.t.path_len = 0;
	m.t.ku = 1u << CK_KU_KEY_CERT_SIGN;
	m.t.not_after = now + 3500 * 86400;
	assert_refused(f, &m, "within the CA certificate");
	tmpl_clear(&m);
	/* Backdated far into the past. */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	m.t.not_before = now - 30 * 86400;
	assert_refused(f, &m, "notBefore");
	tmpl_clear(&m);
	/* A name outside the profile, in the SAN and in the CN. */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	assert_int_equal(ck_names_add(&m.sans, CK_NAME_DNS, "www.evil.org"), 0);
	assert_refused(f, &m, "evil.org");
	tmpl_clear(&m);
	tmpl_init(&m, f->ca, "CN=bank.evil.org");
	ck_names_clear(&m.sans);
	assert_refused(f, &m, "CN");
	tmpl_clear(&m);
	/* A key usage and an extended key usage the profile lacks. */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	m.t.ku |= 1u << CK_KU_KEY_CERT_SIGN;
	assert_refused(f, &m, "key usage");
	tmpl_clear(&m);
	tmpl_init(&m, f->ca, "CN=www.example.com");
	assert_int_equal(ck_strlist_add(&m.eku, "codeSigning"), 0);
	assert_refused(f, &m, "codeSigning");
	tmpl_clear(&m);
	/* No key usage at all (would mean any usage). */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	m.t.ku = 0;
	assert_refused(f, &m, "key usage");
	tmpl_clear(&m);
	/* Someone else's distribution point. */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	m.t.crl_url = "http://evil.example.org/ca.crl";
	assert_refused(f, &m, "CRL URL");
	tmpl_clear(&m);
	/* A profile the signer does not know. */
	tmpl_init(&m, f->ca, "CN=www.example.com");
	m.t.profile = "anything-goes";
	assert_refused(f, &m, "no profile");
	tmpl_clear(&m);
}

/* A subordinate CA under the default sub-ca profile, valid a year. */
static void
tmpl_sub_ca(struct tmpl *m, struct ck_ca *ca)
{
	tmpl_init(m, ca, "CN=Sub CA");
	ck_names_clear(&m->sans);
	ck_strlist_clear(&m->eku);
	m->t.profile = "sub-ca";
	m->t.is_ca = 1;
	m->t.path_len = 0;
	m->t.ku = 1u << CK_KU_KEY_CERT_SIGN | 1u << CK_KU_CRL_SIGN;
	m->t.not_after = m->t.not_before + 365 * 86400;
}

/* V3: a compromised service must not mint a subordinate CA, even under
 * a CA profile of the configuration. */
static void
test_no_sub_ca(void **state)
{
	struct fx *f = *state;
	struct tmpl m;

	tmpl_sub_ca(&m, f->ca);
	assert_refused(f, &m, "the signer process issues no CA "
	    "certificates: issue them offline with certkeep issue while "
	    "certkeepd is stopped");
	tmpl_clear(&m);
}

/* The same request is signed where [signer] allow_ca = yes: it is the
 * setting, and nothing else, that refuses it above. */
static void
test_sub_ca_allowed(void **state)
{
	struct fx *f = *state;
	struct tmpl m;
	X509 *x = NULL;

	tmpl_sub_ca(&m, f->ca);
	assert_int_equal(try_issue(f, &m, &x), 0);
	assert_non_null(x);
	assert_int_equal(X509_check_ca(x), 1);
	X509_free(x);
	tmpl_clear(&m);
	assert_alive(f);
}

/* A delegated OCSP responder certificate for `subject` (NULL: the one
 * certkeepd makes): 0 and signed, or the refusal's code. */
static int
try_ocsp_cert(struct fx *f, const char *subject)
{
	struct tmpl m;
	struct signer_pending *p = NULL;
	unsigned char d[32], *der = NULL;
	size_t len = 0;
	int r;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	ck_names_clear(&m.sans);
	ck_strlist_clear(&m.eku);
	assert_int_equal(ck_strlist_add(&m.eku, "OCSPSigning"), 0);
	X509_NAME_free(m.subject);
	m.subject = NULL;
	if (subject != NULL)
		assert_int_equal(ck_dn_parse(subject, &m.subject), 0);
	else
		assert_int_equal(signer_ocsp_responder_subject(f->ca->cert,
		    &m.subject), 0);
	m.t.subject = m.subject;
	m.t.profile = NULL;
	m.t.ocsp_url = "";
	m.t.not_after = m.t.not_before + 3600;
	if ((r = signer_ocsp_cert_prepare(f->ca->signer, &m.t, &p, d)) == 0) {
		assert_int_equal(signer_cert_sign(f->ca->signer, p, &der,
		    &len), 0);
		OPENSSL_free(der);
	}
	tmpl_clear(&m);
	return r;
}

/* H5: the signer decodes the key and judges its type by the profile's
 * key_types, as the service judges a CSR's: an RSA-1024 key, a curve the
 * profile does not list are refused; the types it lists are signed. */
static void
test_key_types(void **state)
{
	struct fx *f = *state;
	struct tmpl m;
	X509 *x = NULL;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	tmpl_key(&m, "rsa1024");
	assert_refused(f, &m, "key type rsa1024 is not allowed");
	tmpl_key(&m, "secp256k1");
	assert_refused(f, &m, "key type ec-secp256k1 is not allowed");
	tmpl_key(&m, "rsa2048");
	assert_int_equal(try_issue(f, &m, &x), 0);
	X509_free(x);
	tmpl_key(&m, "ec-p384");
	assert_int_equal(try_issue(f, &m, &x), 0);
	X509_free(x);
	tmpl_clear(&m);
	assert_alive(f);
}

/* An OCSP "revoked" with `reason`, for a certificate of this CA. */
static int
ocsp_revoked(struct fx *f, int reason)
{
	OCSP_BASICRESP *bs;
	OCSP_CERTID *id;
	ASN1_INTEGER *ser = ASN1_INTEGER_new();
	ASN1_TIME *tu, *nu, *rev;
	time_t now = time(NULL);
	int r;

	assert_int_equal(ASN1_INTEGER_set(ser, 4343), 1);
	tu = ASN1_GENERALIZEDTIME_set(NULL, now);
	nu = ASN1_GENERALIZEDTIME_set(NULL, now + 3600);
	rev = ASN1_GENERALIZEDTIME_set(NULL, now - 60);
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(f->ca->cert),
	    X509_get0_pubkey_bitstr(f->ca->cert), ser);
	assert_non_null(bs = OCSP_BASICRESP_new());
	assert_non_null(OCSP_basic_add1_status(bs, id,
	    V_OCSP_CERTSTATUS_REVOKED, reason, rev, tu, nu));
	r = signer_ocsp_sign(f->ca->signer, &bs, 0);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_INTEGER_free(ser);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_TIME_free(rev);
	return r;
}

/* H8: reason 7 is unused in RFC 5280; neither a CRL entry nor an OCSP
 * revocation may carry it (one check for both); the others are signed. */
static void
test_revocation_reasons(void **state)
{
	struct fx *f = *state;
	struct ck_crl_entry e = { "4343", 0, 7 };
	unsigned char *der = NULL;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL);

	e.revoked_at = now - 60;
	assert_int_equal(signer_crl_sign(f->ca->signer, &e, 1, 5, now,
	    now + 86400, &der, &len), CK_E_POLICY);
	assert_null(der);
	assert_int_equal(ocsp_revoked(f, 7), CK_E_POLICY);
	assert_contains(ck_err_msg(), "reason 7");
	assert_alive(f);
	e.reason = 1;
	assert_int_equal(signer_crl_sign(f->ca->signer, &e, 1, 5, now,
	    now + 86400, &der, &len), 0);
	OPENSSL_free(der);
	assert_int_equal(ocsp_revoked(f, 1), 0);
	assert_int_equal(ocsp_revoked(f, 10), 0);
	assert_int_equal(ocsp_revoked(f, OCSP_REVOKED_STATUS_NOSTATUS), 0);
	assert_alive(f);
}

/* A CRL of many entries is signed in the sandbox (OpenSSL sorts them with
 * qsort(), which asks for sysinfo() once). */
static void
test_crl_many(void **state)
{
	struct fx *f = *state;
	struct ck_crl_entry *e;
	char (*hex)[16];
	unsigned char *der = NULL;
	size_t len = 0, i, n = 2000;
	int64_t now = (int64_t)time(NULL);

	assert_non_null(e = calloc(n, sizeof(*e)));
	assert_non_null(hex = calloc(n, sizeof(*hex)));
	for (i = 0; i < n; i++) {
		snprintf(hex[i], sizeof(hex[i]), "%zX", n - i);
		e[i].serial_hex = hex[i];
		e[i].revoked_at = now - 60;
		e[i].reason = 1;
	}
	assert_int_equal(signer_crl_sign(f->ca->signer, e, n, 9, now,
	    now + 86400, &der, &len), 0);
	assert_true(len > n * 20);
	OPENSSL_free(der);
	free(e);
	free(hex);
	assert_alive(f);
}

/* H1: the signer draws every serial; prepares never return the same one
 * (and try_issue() checks that the certificate carries the one
 * returned). */
static void
test_serials_distinct(void **state)
{
	struct fx *f = *state;
	struct signer_pending *p;
	struct tmpl m;
	unsigned char d[32];
	char seen[32][CK_SERIAL_HEX_MAX];
	X509 *x = NULL;
	size_t i, k;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	for (i = 0; i < 32; i++) {
		assert_int_equal(signer_cert_prepare_der(f->ca->signer, &m.t,
		    &p, d), 0);
		snprintf(seen[i], sizeof(seen[i]), "%s",
		    signer_pending_serial(p));
		/* 16 random octets, positive: 31 or 32 hex digits. */
		assert_true(strlen(seen[i]) >= 31 && strlen(seen[i]) <= 32);
		for (k = 0; k < i; k++)
			assert_string_not_equal(seen[k], seen[i]);
		signer_pending_free(p);		/* aborts it */
	}
	assert_int_equal(try_issue(f, &m, &x), 0);
	X509_free(x);
	tmpl_clear(&m);
	assert_alive(f);
}

/* ---- cert-issue: serials reserved ahead, one call per certificate ---- */

/* Reserve `n` serials as a service would: 0 and the reply, or the
 * refusal's code. */
static int
reserve(struct fx *f, uint32_t n, struct signer_msg *rep,
    unsigned char **body)
{
	struct signer_msg req;

	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_SERIALS;
	req.u.nserials = n;
	return signer_proc_call(f->sp, &req, rep, body);
}

/* cert-issue of the template `m` (tls-server) with `serial` and the
 * digest `d`, as a compromised service would send it: 0 and the
 * certificate, or the refusal's code. */
static void
issue_encode(struct tmpl *m, const struct signer_msg_serial *ser,
    const unsigned char d[32], struct signer_buf *b)
{
	struct signer_msg req;
	struct signer_msg_prepare *q = calloc(1, sizeof(*q));
	unsigned char *subj = NULL;
	int n;

	assert_non_null(q);
	q->kind = SIGNER_CERT_PROFILE;
	snprintf(q->profile, sizeof(q->profile), "tls-server");
	n = i2d_X509_NAME(m->subject, &subj);
	assert_true(n > 0);
	q->subject = subj;
	q->subject_len = (size_t)n;
	q->spki = m->t.spki_der;
	q->spki_len = m->t.spki_der_len;
	q->not_before = m->t.not_before;
	q->not_after = m->t.not_after;
	q->is_ca = m->t.is_ca ? 1 : 0;
	q->path_len = m->t.path_len;
	q->ku = m->t.ku;
	q->neku = 1;
	snprintf(q->eku[0], sizeof(q->eku[0]), "serverAuth");
	q->nsans = 1;
	q->sans = calloc(1, sizeof(*q->sans));
	assert_non_null(q->sans);
	q->sans[0].type = CK_NAME_DNS;
	snprintf(q->sans[0].value, sizeof(q->sans[0].value), "%s",
	    m->sans.v[0].value);
	snprintf(q->crl_url, sizeof(q->crl_url), "%s", m->t.crl_url);
	snprintf(q->ocsp_url, sizeof(q->ocsp_url), "%s", m->t.ocsp_url);
	snprintf(q->issuer_url, sizeof(q->issuer_url), "%s",
	    m->t.issuer_url);
	memcpy(q->serial, ser->v, ser->len);
	q->serial_len = ser->len;
	memcpy(q->digest, d, 32);
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_ISSUE;
	req.u.prepare = q;
	assert_int_equal(signer_msg_encode(&req, b), 0);
	free(q->sans);
	free(q);
	OPENSSL_free(subj);
}

static int
issue_raw(struct fx *f, struct tmpl *m, const struct signer_msg_serial *ser,
    const unsigned char d[32], X509 **out)
{
	struct signer_buf b = { 0 };
	struct signer_msg rep;
	unsigned char *body = NULL;
	const unsigned char *p;
	int r;

	issue_encode(m, ser, d, &b);
	r = signer_proc_call_encoded(f->sp, &b, &rep, &body);
	signer_buf_free(&b);
	*out = NULL;
	if (r != 0)
		return r;
	assert_int_equal(rep.type, SIGNER_MSG_R_DER);
	p = rep.u.der.buf;
	*out = d2i_X509(NULL, &p, (long)rep.u.der.len);
	assert_non_null(*out);
	signer_msg_clear(&rep);
	free(body);
	return 0;
}

/* The SHA-256 of a certificate's TBS as signed. */
static void
tbs_sha256(X509 *x, unsigned char d[32])
{
	unsigned char *der = NULL;
	int n = i2d_re_X509_tbs(x, &der);

	assert_true(n > 0);
	assert_int_equal(EVP_Digest(der, (size_t)n, d, NULL, EVP_sha256(),
	    NULL), 1);
	OPENSSL_free(der);
}

/* The service's path: the serial is one the signer reserved, the
 * certificate carries it, and its TBS is the one whose digest the
 * service logged. */
static void
test_issue_reserved(void **state)
{
	struct fx *f = *state;
	struct signer_pending *p;
	struct tmpl m;
	unsigned char d[32], d2[32], *der = NULL;
	const unsigned char *q;
	char want[CK_SERIAL_HEX_MAX], got[CK_SERIAL_HEX_MAX];
	static char seen[SIGNER_SERIALS_MAX + 40][CK_SERIAL_HEX_MAX];
	size_t len = 0, i, k;
	X509 *x;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	tmpl_csr(&m);
	/* Past a batch of reserved serials: refilled on the way. */
	for (i = 0; i < SIGNER_SERIALS_MAX + 40; i++) {
		assert_int_equal(signer_cert_prepare_der(f->ca->signer, &m.t,
		    &p, d), 0);
		snprintf(want, sizeof(want), "%s", signer_pending_serial(p));
		assert_int_equal(signer_cert_sign(f->ca->signer, p, &der,
		    &len), 0);
		q = der;
		assert_non_null(x = d2i_X509(NULL, &q, (long)len));
		assert_int_equal(ck_serial_to_hex(X509_get0_serialNumber(x),
		    got), 0);
		assert_string_equal(got, want);
		for (k = 0; k < i; k++)
			assert_string_not_equal(seen[k], got);
		snprintf(seen[i], sizeof(seen[i]), "%s", got);
		tbs_sha256(x, d2);
		assert_memory_equal(d, d2, 32);
		assert_int_equal(X509_verify(x, X509_get0_pubkey(
		    f->ca->cert)), 1);
		X509_free(x);
		OPENSSL_free(der);
		der = NULL;
	}
	tmpl_clear(&m);
	assert_alive(f);
}

/* Many at once (the pipeline's signing threads): each certificate is the
 * one its own pending asked for, in the caller's order whatever order the
 * replies came back in; one prepared by the two-call path among them is
 * signed too. */
static void
test_issue_many(void **state)
{
	struct fx *f = *state;
	enum { N = 40 };
	struct signer_pending *p[N];
	struct signer_signed o[N];
	unsigned char d[N][32], d2[32];
	char want[N][CK_SERIAL_HEX_MAX], got[CK_SERIAL_HEX_MAX];
	const unsigned char *q;
	struct tmpl m;
	size_t i, k;
	X509 *x;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	tmpl_csr(&m);
	for (i = 0; i < N; i++) {
		if (i == 7)	/* cert-prepare, then cert-sign */
			assert_int_equal(signer_cert_prepare(f->ca->signer,
			    &m.t, 0, &p[i], d[i]), 0);
		else
			assert_int_equal(signer_cert_prepare_der(
			    f->ca->signer, &m.t, &p[i], d[i]), 0);
		snprintf(want[i], sizeof(want[i]), "%s",
		    signer_pending_serial(p[i]));
	}
	signer_cert_sign_many(f->ca->signer, p, N, o);
	for (i = 0; i < N; i++) {
		assert_null(p[i]);
		assert_int_equal(o[i].r, 0);
		q = o[i].der;
		assert_non_null(x = d2i_X509(NULL, &q, (long)o[i].len));
		assert_int_equal(ck_serial_to_hex(X509_get0_serialNumber(x),
		    got), 0);
		assert_string_equal(got, want[i]);
		for (k = 0; k < i; k++)
			assert_string_not_equal(want[k], got);
		tbs_sha256(x, d2);
		assert_memory_equal(d[i], d2, 32);
		assert_int_equal(X509_verify(x, X509_get0_pubkey(
		    f->ca->cert)), 1);
		X509_free(x);
		OPENSSL_free(o[i].der);
	}
	tmpl_clear(&m);
	assert_alive(f);
}

/* Requests sent together are judged one by one: each refusal is its own
 * reply, with its own reason, to its own request, and the signer stays up.
 * A call of no request or of more than the most is refused. */
static void
test_issue_many_refusals(void **state)
{
	struct fx *f = *state;
	struct signer_buf b[3] = { { 0 } }, *bp[3] = { &b[0], &b[1], &b[2] };
	struct signer_msg rep, reps[3];
	struct signer_msg_serial ser[2], forged;
	unsigned char *body = NULL, *bodies[3], d[32];
	struct tmpl m;
	int i;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	assert_int_equal(reserve(f, 2, &rep, &body), 0);
	assert_int_equal(rep.u.serials.n, 2);
	ser[0] = rep.u.serials.v[0];
	ser[1] = rep.u.serials.v[1];
	signer_msg_clear(&rep);
	free(body);
	memset(d, 0, sizeof(d));
	forged = ser[1];
	forged.v[forged.len - 1] ^= 1;
	issue_encode(&m, &ser[0], d, &b[0]);	/* wrong digest */
	issue_encode(&m, &forged, d, &b[1]);	/* never reserved */
	m.t.is_ca = 1;				/* CA:TRUE, a good serial */
	m.t.path_len = 0;
	issue_encode(&m, &ser[1], d, &b[2]);
	m.t.is_ca = 0;
	m.t.path_len = -1;
	assert_int_equal(signer_proc_call_many(f->sp, bp, 3, reps, bodies), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(reps[i].type, SIGNER_MSG_R_ERR);
	assert_contains(reps[0].u.err.msg, "TBS digest");
	assert_contains(reps[1].u.err.msg, "did not reserve");
	assert_int_equal(reps[2].u.err.code, CK_E_POLICY);
	assert_contains(reps[2].u.err.msg, "CA");
	for (i = 0; i < 3; i++) {
		signer_msg_clear(&reps[i]);
		free(bodies[i]);
	}
	assert_alive(f);
	assert_int_equal(signer_proc_call_many(f->sp, bp, 0, reps, bodies),
	    CK_E_INVAL);
	assert_int_equal(signer_proc_call_many(f->sp, bp,
	    SIGNER_PROC_MANY_MAX + 1, reps, bodies), CK_E_INVAL);
	for (i = 0; i < 3; i++)
		signer_buf_free(&b[i]);
	tmpl_clear(&m);
	assert_alive(f);
}

/* The signer dies in the middle of requests sent together: the replies
 * that came in before are kept (a certificate signed is still one), only
 * the others fail. One signer thread, so that the order is certain: a
 * refused cert-issue, then an abort of a handle never given out, which
 * kills the signer (its held reply is written before it starts). */
static void
test_many_death_keeps_replies(void **state)
{
	struct fx *f = *state;
	struct signer_buf b[2] = { { 0 } }, *bp[2] = { &b[0], &b[1] };
	struct signer_msg rep, reps[2], req;
	struct signer_msg_serial ser;
	unsigned char *body = NULL, *bodies[2], d[32];
	struct tmpl m;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	assert_int_equal(reserve(f, 1, &rep, &body), 0);
	ser = rep.u.serials.v[0];
	signer_msg_clear(&rep);
	free(body);
	memset(d, 0, sizeof(d));
	issue_encode(&m, &ser, d, &b[0]);
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_ABORT;
	req.u.handle = 0x123456789abcdefULL;
	assert_int_equal(signer_msg_encode(&req, &b[1]), 0);
	assert_int_equal(signer_proc_call_many(f->sp, bp, 2, reps, bodies),
	    CK_E_CRYPTO);
	assert_contains(ck_err_msg(), "signer unavailable");
	assert_int_equal(reps[0].type, SIGNER_MSG_R_ERR);
	assert_contains(reps[0].u.err.msg, "TBS digest");
	assert_int_equal(reps[1].type, SIGNER_MSG_NONE);
	assert_null(bodies[1]);
	signer_msg_clear(&reps[0]);
	free(bodies[0]);
	signer_buf_free(&b[0]);
	signer_buf_free(&b[1]);
	tmpl_clear(&m);
	assert_killed(f);
}

/* A compromised service with cert-issue: a serial never reserved, one
 * used already, a digest that is not the TBS's, a template outside the
 * profile with a good serial: each refused, the signer stays up; a
 * serial is used up by a refused request too. Reservations are bounded. */
static void
test_issue_refusals(void **state)
{
	struct fx *f = *state;
	struct signer_msg rep;
	struct signer_msg_serial ser[4], forged;
	unsigned char *body = NULL, d[32];
	struct tmpl m;
	X509 *x = NULL;
	uint32_t i;
	int n;

	tmpl_init(&m, f->ca, "CN=www.example.com");
	assert_int_equal(reserve(f, 4, &rep, &body), 0);
	assert_int_equal(rep.type, SIGNER_MSG_R_SERIALS);
	assert_int_equal(rep.u.serials.n, 4);
	assert_true(rep.u.serials.sigalg_len > 0);
	for (i = 0; i < 4; i++)
		ser[i] = rep.u.serials.v[i];
	signer_msg_clear(&rep);
	free(body);

	/* A digest that is not that of the TBS the signer builds (the
	 * service would have logged something else than what is signed)... */
	memset(d, 0, sizeof(d));
	assert_int_equal(issue_raw(f, &m, &ser[0], d, &x), CK_E_POLICY);
	assert_contains(ck_err_msg(), "TBS digest");
	assert_alive(f);
	/* ... and that refusal used ser[0] up. */
	assert_int_equal(issue_raw(f, &m, &ser[0], d, &x), CK_E_POLICY);
	assert_contains(ck_err_msg(), "did not reserve, or used already");
	/* A serial never reserved. */
	forged = ser[1];
	forged.v[forged.len - 1] ^= 1;
	assert_int_equal(issue_raw(f, &m, &forged, d, &x), CK_E_POLICY);
	assert_contains(ck_err_msg(), "did not reserve");
	assert_alive(f);

	/* CA:TRUE with a good serial: refused by the profile check. */
	m.t.is_ca = 1;
	m.t.path_len = 0;
	assert_int_equal(issue_raw(f, &m, &ser[2], d, &x), CK_E_POLICY);
	assert_null(x);
	assert_alive(f);
	m.t.is_ca = 0;
	m.t.path_len = -1;
	/* ser[2] is gone with it. */
	assert_int_equal(issue_raw(f, &m, &ser[2], d, &x), CK_E_POLICY);
	assert_contains(ck_err_msg(), "used already");

	/* Reservations are bounded: past SIGNER_RESERVED_MAX unused ones,
	 * refused (the rest expire after SIGNER_RESERVE_TTL). */
	for (n = 0; n < SIGNER_RESERVED_MAX / SIGNER_SERIALS_MAX + 1; n++) {
		int r = reserve(f, SIGNER_SERIALS_MAX, &rep, &body);
		if (r != 0) {
			assert_int_equal(r, CK_E_BUSY);
			assert_contains(ck_err_msg(), "reserved and not used");
			break;
		}
		signer_msg_clear(&rep);
		free(body);
	}
	assert_true(n < SIGNER_RESERVED_MAX / SIGNER_SERIALS_MAX + 1);
	/* The service's path then falls back on cert-prepare: issuance
	 * goes on. */
	tmpl_csr(&m);
	assert_int_equal(try_issue(f, &m, &x), 0);
	X509_free(x);
	tmpl_clear(&m);
	assert_alive(f);
}

/* A service whose CA certificate is not the signer's (another issuer)
 * would build TBSs the signer never signs: the issuer digest in the
 * serials reply turns cert-issue off, and issuance goes through
 * cert-prepare, with the signer's own issuer, instead of failing. */
static void
test_issue_other_issuer(void **state)
{
	struct fx *f = *state;
	struct ck_ca *other = NULL;
	struct signer *s = NULL;
	struct signer_pending *p;
	struct tmpl m;
	unsigned char d[32], *der = NULL;
	const unsigned char *q;
	size_t len = 0;
	X509 *x;

	assert_int_equal(ck_ca_open(g.other, &other), 0);
	assert_int_equal(signer_new_remote(f->sp, other->cert, &s), 0);
	tmpl_init(&m, f->ca, "CN=www.example.com");
	tmpl_csr(&m);
	assert_int_equal(signer_cert_prepare_der(s, &m.t, &p, d), 0);
	assert_int_equal(signer_cert_sign(s, p, &der, &len), 0);
	q = der;
	assert_non_null(x = d2i_X509(NULL, &q, (long)len));
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(f->ca->cert)), 0);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(f->ca->cert)), 1);
	X509_free(x);
	OPENSSL_free(der);
	signer_free(s);
	ck_ca_close(other);
	tmpl_clear(&m);
	assert_alive(f);
}

/* A reservation of 0 or of more than SIGNER_SERIALS_MAX is malformed. */
static void
test_kill_serials_count(void **state)
{
	struct fx *f = *state;
	unsigned char msg[SIGNER_MSG_HDR + 4] = { 0 };

	hdr(msg, SIGNER_MSG_SERIALS, 7, 4);
	msg[SIGNER_MSG_HDR + 2] = (SIGNER_SERIALS_MAX + 1) >> 8;
	msg[SIGNER_MSG_HDR + 3] = (SIGNER_SERIALS_MAX + 1) & 0xff;
	send_raw(f, msg, sizeof(msg));
	assert_killed(f);
}

/* V5: the responder certificate's subject is certkeepd's, no other (it
 * would be a certificate for any name the service chose). */
static void
test_ocsp_responder_subject(void **state)
{
	struct fx *f = *state;

	assert_int_equal(try_ocsp_cert(f, NULL), 0);
	assert_int_equal(try_ocsp_cert(f, "CN=www.example.com"), CK_E_POLICY);
	assert_contains(ck_err_msg(), "subject is not the one certkeepd");
	assert_int_equal(try_ocsp_cert(f, "CN=OCSP responder for Signer "
	    "Test Root"), CK_E_POLICY);
	assert_alive(f);
}

/* cert-prepare of a tls-client certificate for the subject bytes as
 * they are: 0 (then aborted) or the refusal's code. */
static int
prepare_subject(struct fx *f, const unsigned char *subj, size_t len)
{
	struct signer_msg req, rep;
	struct signer_msg_prepare q;
	unsigned char *body = NULL, *spki = NULL;
	int64_t now = (int64_t)time(NULL);
	int r;

	memset(&q, 0, sizeof(q));
	q.kind = SIGNER_CERT_PROFILE;
	snprintf(q.profile, sizeof(q.profile), "tls-client");
	q.subject = subj;
	q.subject_len = len;
	{
		EVP_PKEY *key = tu_key("ec-p256");
		q.spki_len = (size_t)i2d_PUBKEY(key, &spki);
		EVP_PKEY_free(key);
	}
	q.spki = spki;
	q.not_before = now;
	q.not_after = now + 86400;
	q.path_len = -1;
	q.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
	q.neku = 1;
	snprintf(q.eku[0], sizeof(q.eku[0]), "clientAuth");
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_PREPARE;
	req.u.prepare = &q;
	r = signer_proc_call(f->sp, &req, &rep, &body);
	OPENSSL_free(spki);
	if (r != 0)
		return r;
	assert_int_equal(rep.type, SIGNER_MSG_R_PREPARED);
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_ABORT;
	req.u.handle = rep.u.prepared.handle;
	signer_msg_clear(&rep);
	free(body);
	assert_int_equal(signer_proc_call(f->sp, &req, &rep, &body), 0);
	signer_msg_clear(&rep);
	free(body);
	return 0;
}

/* V4: a subject in BER is refused (it would be signed as it is); the
 * same names in DER are taken. */
static void
test_subject_ber(void **state)
{
	struct fx *f = *state;
	size_t i;

	assert_int_equal(prepare_subject(f, name_der, sizeof(name_der)), 0);
	assert_int_equal(prepare_subject(f, name_der_multi,
	    sizeof(name_der_multi)), 0);
	for (i = 0; i < BER_NAMES; i++) {
		if (prepare_subject(f, ber_names[i].der, ber_names[i].len) !=
		    CK_E_PARSE)
			fail_msg("a subject with %s: not refused",
			    ber_names[i].what);
		assert_contains(ck_err_msg(), "not a DER Name");
		assert_alive(f);
	}
}

static void
test_cms_content(void **state)
{
	struct fx *f = *state;
	unsigned char *der = NULL;
	size_t len = 0;
	static const char *const bad[] = {
		"hello, sign me",
		"{\"certkeep-audit-checkpoint\":1}",
		"{\"format\":\"something-else/1\"}",
		"[\"certkeep-backup/1\"]",
		"{\"format\":\"certkeep-backup/1\",\"format\":\"x\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(signer_cms_sign(f->ca->signer,
		    (const unsigned char *)bad[i], strlen(bad[i]), NULL, &der,
		    &len), CK_E_POLICY);
		assert_null(der);
	}
	assert_int_equal(signer_cms_sign(f->ca->signer,
	    (const unsigned char *)"{\"format\":\"certkeep-backup/1\"}", 30,
	    f->ca->chain, &der, &len), 0);
	assert_true(len > 0);
	OPENSSL_free(der);
	assert_alive(f);
}

/* A crl-sign request of `n` entries, encoded into `b`. */
static void
crl_request(struct signer_buf *b, uint32_t n, int valid)
{
	struct signer_msg m;
	struct signer_msg_crl_entry *e;
	int64_t now = (int64_t)time(NULL);
	uint32_t i;

	assert_non_null(e = calloc(n, sizeof(*e)));
	for (i = 0; i < n; i++) {
		if (valid)
			snprintf(e[i].serial_hex, sizeof(e[i].serial_hex),
			    "%X", i + 1);
		else
			memset(e[i].serial_hex, 'A', SIGNER_SERIAL_MAX * 2);
		e[i].revoked_at = now - 60;
		e[i].reason = 1;
	}
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CRL_SIGN;
	m.id = 1000 + n;
	m.u.crl.number = 7;
	m.u.crl.this_update = now;
	m.u.crl.next_update = now + 86400;
	m.u.crl.n = n;
	m.u.crl.entries = e;
	assert_int_equal(signer_msg_encode(&m, b), 0);
	free(e);
}

/*
 * H6: the requests a signer holds are bounded in bytes, not only in
 * number. Its one signing thread is kept busy (its reply to a CRL is
 * larger than the socket's buffer, and nobody reads it); then CRL
 * requests of 2^20 entries (55 MiB each, 122 MiB once decoded) are sent
 * as fast as the signer reads them. It reads two (SIGNER_HELD_MAX, 256
 * MiB), then no more: the writes stall. (A queue bounded only by its
 * 256 requests would read them all.)
 */
static void
test_budget_holds(void **state)
{
	struct signer_buf small = { 0 }, big = { 0 }, ub = { 0 };
	struct signer_msg m;
	struct pollfd pfd;
	unsigned char rh[SIGNER_MSG_HDR];
	size_t sent = 0, total, off;
	ssize_t k;
	pid_t pid;
	int sv[2], st;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fflush(NULL);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		close(sv[0]);
		signer_proc_child(sv[1], g.onethread);
	}
	close(sv[1]);
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_UNLOCK;
	m.id = 1;
	m.u.secret.buf = g.pw->buf;
	m.u.secret.len = g.pw->len;
	assert_int_equal(signer_msg_encode(&m, &ub), 0);
	assert_int_equal(write(sv[0], ub.p, ub.len), (ssize_t)ub.len);
	signer_buf_free(&ub);
	assert_int_equal(ck_read_full(sv[0], rh, sizeof(rh)), 0);
	assert_int_equal(rh[1], SIGNER_MSG_R_OK);
	/* The worker signs this one and blocks writing its reply. */
	crl_request(&small, 30000, 1);
	assert_int_equal(write(sv[0], small.p, small.len),
	    (ssize_t)small.len);
	crl_request(&big, SIGNER_CRL_MAX, 0);
	assert_true(signer_msg_cost(SIGNER_MSG_CRL_SIGN, big.len -
	    SIGNER_MSG_HDR) * 2 < SIGNER_HELD_MAX);
	assert_true(signer_msg_cost(SIGNER_MSG_CRL_SIGN, big.len -
	    SIGNER_MSG_HDR) * 3 > SIGNER_HELD_MAX);
	total = 5 * big.len;
	pfd.fd = sv[0];
	pfd.events = POLLOUT;
	/* As much as it takes, until nothing moves for 3 seconds. */
	while (sent < total && poll(&pfd, 1, 3000) == 1) {
		off = sent % big.len;
		k = send(sv[0], big.p + off, big.len - off, MSG_DONTWAIT);
		if (k < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				int e = errno;
				(void)waitpid(pid, &st, 0);
				fail_msg("send: %s (after %zu bytes), "
				    "signer status %#x", strerror(e), sent,
				    st);
			}
			continue;
		}
		sent += (size_t)k;
	}
	/* Two read, the third's header at most; plus the socket buffer. */
	if (sent >= 3 * big.len)
		fail_msg("the signer read %zu bytes of requests (%zu each) "
		    "while its thread was busy", sent, big.len);
	assert_true(sent >= 2 * big.len);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(sv[0]);
	signer_buf_free(&small);
	signer_buf_free(&big);
}

/* ---- messages that kill ---- */

static void
test_kill_unknown_type(void **state)
{
	struct fx *f = *state;
	unsigned char h[SIGNER_MSG_HDR];

	hdr(h, 0x7f, 99, 0);
	send_raw(f, h, sizeof(h));
	assert_killed(f);
}

static void
test_kill_truncated(void **state)
{
	struct fx *f = *state;
	unsigned char h[SIGNER_MSG_HDR], body[10] = { 0 };

	hdr(h, SIGNER_MSG_CMS_SIGN, 99, 100);
	send_raw(f, h, sizeof(h));
	send_raw(f, body, sizeof(body));
	/* The rest never comes. */
	assert_int_equal(shutdown(signer_proc_fd(f->sp), SHUT_WR), 0);
	assert_killed(f);
}

static void
test_kill_oversized(void **state)
{
	struct fx *f = *state;
	unsigned char h[SIGNER_MSG_HDR];

	hdr(h, SIGNER_MSG_CERT_SIGN, 99, 9);
	send_raw(f, h, sizeof(h));
	assert_killed(f);
}

static void
test_kill_short_field(void **state)
{
	struct fx *f = *state;
	unsigned char h[SIGNER_MSG_HDR], body[7] = { 0 };

	hdr(h, SIGNER_MSG_CERT_ABORT, 99, sizeof(body));
	send_raw(f, h, sizeof(h));
	send_raw(f, body, sizeof(body));
	assert_killed(f);
}

/* A cert-prepare, well formed but for `n` bytes spliced in after the
 * SubjectPublicKeyInfo (`after_spki`) or at the end: *out (caller frees)
 * of *outlen bytes, header included. */
static void
prepare_spliced(struct fx *f, const char *bytes, size_t n, int after_spki,
    unsigned char **out, size_t *outlen)
{
	struct signer_msg m;
	struct signer_msg_prepare *q = calloc(1, sizeof(*q));
	struct signer_buf b = { 0 };
	unsigned char *grown, *name = NULL;
	size_t off;
	int nl;

	assert_non_null(q);
	nl = i2d_X509_NAME(X509_get_subject_name(f->ca->cert), &name);
	q->kind = SIGNER_CERT_PROFILE;
	snprintf(q->profile, sizeof(q->profile), "tls-server");
	q->subject = name;
	q->subject_len = (size_t)nl;
	q->spki = name;
	q->spki_len = (size_t)nl;
	q->path_len = -1;
	memset(&m, 0, sizeof(m));
	m.type = SIGNER_MSG_CERT_PREPARE;
	m.id = 99;
	m.u.prepare = q;
	assert_int_equal(signer_msg_encode(&m, &b), 0);
	/* After kind, profile, subject and SubjectPublicKeyInfo. */
	off = after_spki ? SIGNER_MSG_HDR + 1 + 4 + strlen(q->profile) + 4 +
	    q->subject_len + 4 + q->spki_len : b.len;
	assert_non_null(grown = malloc(b.len + n));
	memcpy(grown, b.p, off);
	memcpy(grown + off, bytes, n);
	memcpy(grown + off + n, b.p + off, b.len - off);
	hdr(grown, SIGNER_MSG_CERT_PREPARE, 99,
	    (uint32_t)(b.len + n - SIGNER_MSG_HDR));
	*out = grown;
	*outlen = b.len + n;
	signer_buf_free(&b);
	free(q);
	OPENSSL_free(name);
}

/* Send prepare_spliced(): it does not decode, and kills the signer. */
static void
kill_spliced(struct fx *f, const char *bytes, size_t n, int after_spki)
{
	struct signer_msg dm;
	unsigned char *msg;
	size_t len;

	prepare_spliced(f, bytes, n, after_spki, &msg, &len);
	assert_int_equal(signer_msg_decode(SIGNER_MSG_CERT_PREPARE, 99,
	    msg + SIGNER_MSG_HDR, len - SIGNER_MSG_HDR, &dm), CK_E_PARSE);
	signer_msg_clear(&dm);
	send_raw(f, msg, len);
	free(msg);
	assert_killed(f);
}

/* A well-formed request with one more field (an issuer, say) after it. */
static void
test_kill_extra_field(void **state)
{
	static const char extra[] = "\0\0\0\x0e" "CN=Other Root!";

	kill_spliced(*state, extra, sizeof(extra) - 1, 0);
}

/* H1: the request of the old format, which carried the service's choice
 * of serial after the public key, is malformed now. */
static void
test_kill_serial_field(void **state)
{
	static const char serial[] = "\0\0\0\x02\x12\x34";

	kill_spliced(*state, serial, sizeof(serial) - 1, 1);
}

static void
test_kill_reply_type(void **state)
{
	struct fx *f = *state;
	unsigned char h[SIGNER_MSG_HDR];

	hdr(h, SIGNER_MSG_R_OK, 99, 0);
	send_raw(f, h, sizeof(h));
	assert_killed(f);
}

static void
test_kill_second_unlock(void **state)
{
	struct fx *f = *state;

	assert_int_not_equal(signer_proc_unlock(f->sp, g.pw), 0);
	assert_killed(f);
}

static void
test_kill_unknown_handle(void **state)
{
	struct fx *f = *state;
	struct signer_msg req, rep;
	unsigned char *body = NULL;

	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_SIGN;
	req.u.handle = 0x123456789abcdefULL;
	assert_int_equal(signer_proc_call(f->sp, &req, &rep, &body),
	    CK_E_CRYPTO);
	assert_killed(f);
}

/* Prepare and sign honestly, then ask for the same handle again. */
static void
test_kill_used_handle(void **state)
{
	struct fx *f = *state;
	struct signer_msg req, rep;
	struct signer_msg_prepare q;
	struct signer_msg_san san = { CK_NAME_DNS, "www.example.com" };
	unsigned char *body = NULL, *subj = NULL, *spki = NULL;
	uint64_t handle;
	int64_t now = (int64_t)time(NULL);
	X509_NAME *nm = NULL;

	memset(&q, 0, sizeof(q));
	q.kind = SIGNER_CERT_PROFILE;
	snprintf(q.profile, sizeof(q.profile), "tls-server");
	assert_int_equal(ck_dn_parse("CN=www.example.com", &nm), 0);
	q.subject_len = (size_t)i2d_X509_NAME(nm, &subj);
	q.subject = subj;
	{
		EVP_PKEY *key = tu_key("ec-p256");
		q.spki_len = (size_t)i2d_PUBKEY(key, &spki);
		EVP_PKEY_free(key);
	}
	q.spki = spki;
	q.not_before = now;
	q.not_after = now + 86400;
	q.path_len = -1;
	q.ku = 1u << CK_KU_DIGITAL_SIGNATURE;
	q.neku = 1;
	snprintf(q.eku[0], sizeof(q.eku[0]), "serverAuth");
	q.nsans = 1;
	q.sans = &san;
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_PREPARE;
	req.u.prepare = &q;
	assert_int_equal(signer_proc_call(f->sp, &req, &rep, &body), 0);
	assert_int_equal(rep.type, SIGNER_MSG_R_PREPARED);
	handle = rep.u.prepared.handle;
	signer_msg_clear(&rep);
	free(body);
	memset(&req, 0, sizeof(req));
	req.type = SIGNER_MSG_CERT_SIGN;
	req.u.handle = handle;
	assert_int_equal(signer_proc_call(f->sp, &req, &rep, &body), 0);
	assert_int_equal(rep.type, SIGNER_MSG_R_DER);
	signer_msg_clear(&rep);
	free(body);
	assert_alive(f);
	/* Again: the signer dies rather than sign twice. */
	assert_int_equal(signer_proc_call(f->sp, &req, &rep, &body),
	    CK_E_CRYPTO);
	assert_killed(f);
	X509_NAME_free(nm);
	OPENSSL_free(subj);
	OPENSSL_free(spki);
}

/* Before the passphrase, nothing but the passphrase. */
static void
test_kill_before_unlock(void **state)
{
	struct signer_proc *sp = NULL;
	unsigned char h[SIGNER_MSG_HDR + 1];
	int st = 0;

	(void)state;
	assert_int_equal(signer_proc_start(g.root, &sp), 0);
	hdr(h, SIGNER_MSG_STATUS, 1, 1);
	h[SIGNER_MSG_HDR] = 0;
	assert_int_equal(write(signer_proc_fd(sp), h, sizeof(h)),
	    (ssize_t)sizeof(h));
	assert_int_equal(waitpid(signer_proc_pid(sp), &st, 0),
	    signer_proc_pid(sp));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
	signer_proc_free(sp);
}

static void
test_wrong_passphrase(void **state)
{
	struct signer_proc *sp = NULL;
	struct ck_secret *bad = ck_secret_new(16);

	(void)state;
	memcpy(bad->buf, "wrong", 5);
	bad->len = 5;
	assert_int_equal(signer_proc_start(g.root, &sp), 0);
	assert_int_equal(signer_proc_unlock(sp, bad), CK_E_PASSPHRASE);
	signer_proc_free(sp);
	ck_secret_free(bad);
}

/* Killed from outside (kill -9): noticed, calls fail closed. */
static void
test_killed_from_outside(void **state)
{
	struct fx *f = *state;
	struct tmpl m;
	X509 *x = NULL;
	int st, i;

	assert_int_equal(kill(signer_proc_pid(f->sp), SIGKILL), 0);
	st = signer_exit(f);
	assert_true(WIFSIGNALED(st));
	for (i = 0; i < 200 && atomic_load(&f->deaths) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&f->deaths), 1);
	assert_contains(f->why, "died");
	tmpl_init(&m, f->ca, "CN=www.example.com");
	assert_int_equal(try_issue(f, &m, &x), CK_E_CRYPTO);
	assert_contains(ck_err_msg(), "signer unavailable");
	assert_null(x);
	tmpl_clear(&m);
}

/* V6: a death before anyone listens (certkeepd registers its callback
 * around the unlock) is told at registration, not lost. */
static void
test_death_before_listening(void **state)
{
	struct fx f;
	int st, i;

	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(signer_proc_start(g.root, &f.sp), 0);
	assert_int_equal(kill(signer_proc_pid(f.sp), SIGKILL), 0);
	st = signer_exit(&f);
	assert_true(WIFSIGNALED(st));
	for (i = 0; i < 200 && !signer_proc_dead(f.sp, NULL, 0); i++)
		usleep(10000);
	assert_true(signer_proc_dead(f.sp, NULL, 0));
	assert_int_equal(atomic_load(&f.deaths), 0);
	signer_proc_on_death(f.sp, on_death, &f);
	assert_int_equal(atomic_load(&f.deaths), 1);
	assert_contains(f.why, "died");
	/* The unlock that follows fails closed. */
	assert_int_equal(signer_proc_unlock(f.sp, g.pw), CK_E_CRYPTO);
	assert_int_equal(atomic_load(&f.deaths), 1);
	signer_proc_free(f.sp);
}

/* V7: a stopped signer (SIGSTOP; a hung token alike) does not hang the
 * callers: after the timeout the call fails, the signer is killed and
 * taken for dead, the death is told. */
static void
test_stopped_signer_times_out(void **state)
{
	struct fx *f = *state;
	struct timespec t0, t1;
	double took;
	int st, i;

	signer_proc_set_timeout(f->sp, 1);
	assert_int_equal(kill(signer_proc_pid(f->sp), SIGSTOP), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_false(signer_available(f->ca->signer, 1, NULL, 0));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took >= 0.9 && took < 10);
	for (i = 0; i < 200 && atomic_load(&f->deaths) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&f->deaths), 1);
	assert_contains(f->why, "did not answer within 1 s");
	st = signer_exit(f);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_true(signer_proc_dead(f->sp, NULL, 0));
}

/* V2: keeping the key in the service process is not a setting the
 * service user could write; the new [signer] settings parse. */
static void
test_signer_settings(void **state)
{
	static const char inproc[] = "[signer]\nmode = inprocess\n";
	static const char proc[] = "[signer]\nmode = process\n"
	    "allow_ca = yes\ntimeout = 90\n";
	static const char zero[] = "[signer]\ntimeout = 0\n";
	struct ck_config *cfg = NULL;

	(void)state;
	assert_int_not_equal(ck_config_parse(inproc, strlen(inproc), &cfg),
	    0);
	assert_contains(ck_err_msg(), "certkeepd --signer-inprocess");
	ck_config_free(cfg);
	cfg = NULL;
	assert_int_equal(ck_config_parse(proc, strlen(proc), &cfg), 0);
	assert_int_equal(cfg->signer.allow_ca, 1);
	assert_int_equal(cfg->signer.timeout_s, 90);
	ck_config_free(cfg);
	cfg = NULL;
	assert_int_equal(ck_config_parse("", 0, &cfg), 0);
	assert_int_equal(cfg->signer.allow_ca, 0);
	assert_int_equal(cfg->signer.timeout_s, 30);
	ck_config_free(cfg);
	cfg = NULL;
	assert_int_not_equal(ck_config_parse(zero, strlen(zero), &cfg), 0);
	ck_config_free(cfg);
}

/* ---- the seccomp filter, in a child ---- */

static int
sandboxed(int token, int log_mode, int (*fn)(void), char *err,
    size_t errsz)
{
	int pfd[2], st = 0;
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], 2);
		/* No core file of a test that dies on purpose. */
		{
			struct rlimit rl = { 0, 0 };
			(void)setrlimit(RLIMIT_CORE, &rl);
		}
		if (signer_sandbox_apply(token, log_mode) != 0)
			_exit(90);
		_exit(fn());
	}
	close(pfd[1]);
	{
		size_t got = 0;
		while (got < errsz - 1 && (n = read(pfd[0], err + got,
		    errsz - 1 - got)) > 0)
			got += (size_t)n;
		err[got] = '\0';
	}
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static int
do_socket(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s >= 0)
		return 1;
	return errno == ENOSYS ? 0 : errno == EACCES ? 2 : 3;
}

static int
do_open(void)
{
	int fd = open("/dev/null", O_RDONLY);

	return fd >= 0 ? 0 : 1;
}

static int
do_unlink(void)
{
	(void)unlink("/nonexistent-certkeep-test-file");
	return 0;
}

static int
do_exec(void)
{
	char *const argv[] = { (char *)"true", NULL };

	execv("/bin/true", argv);
	return errno == ENOSYS ? 0 : 1;
}

/* tgkill/tkill (signal 0: harmless if it got through) to the parent:
 * another process of the same uid. */
static int
do_tgkill_parent(void)
{
	return syscall(SYS_tgkill, getppid(), getppid(), 0) == 0 ? 0 : 1;
}

static int
do_tkill_parent(void)
{
	return syscall(SYS_tkill, getppid(), 0) == 0 ? 0 : 1;
}

/* To itself: allowed (abort() needs it). */
static int
do_tgkill_self(void)
{
	return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 0) == 0 ?
	    0 : 1;
}

static int
do_abort(void)
{
	abort();
}

static int
do_compute(void)
{
	unsigned char md[32];
	unsigned int l = 32;
	void *p = malloc(1 << 20);

	if (p == NULL || !EVP_Digest("x", 1, md, &l, EVP_sha256(), NULL))
		return 1;
	free(p);
	return 0;
}

static void
test_seccomp(void **state)
{
	char err[512];
	int st;

	(void)state;
	/* What a signer does is allowed. */
	st = sandboxed(0, 0, do_compute, err, sizeof(err));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* Kill mode: a socket, an open, an exec kill the process. */
	st = sandboxed(0, 0, do_socket, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	st = sandboxed(0, 0, do_open, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	st = sandboxed(0, 0, do_exec, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	/* Signals: to itself (abort()), not to another process. */
	st = sandboxed(0, 0, do_tgkill_self, err, sizeof(err));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = sandboxed(0, 0, do_abort, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
	st = sandboxed(0, 0, do_tgkill_parent, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	st = sandboxed(1, 0, do_tkill_parent, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	/* Log mode: reported, failed with ENOSYS, the process goes on. */
	st = sandboxed(0, 1, do_socket, err, sizeof(err));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_contains(err, "seccomp: forbidden system call 41");
	/* A token's files are reachable; sockets still are not (denied,
	 * not killed, for a module's syslog), exec kills. */
	st = sandboxed(1, 0, do_open, err, sizeof(err));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = sandboxed(1, 0, do_socket, err, sizeof(err));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 2);
	/* Removing a file kills. */
	st = sandboxed(1, 0, do_unlink, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	st = sandboxed(1, 0, do_exec, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_honest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ocsp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_sub_ca, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sub_ca_allowed,
		    setup_allowca, teardown),
		cmocka_unit_test_setup_teardown(test_subject_ber, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ocsp_responder_subject,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cms_content, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_unknown_type, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_truncated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_oversized, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_short_field, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_extra_field, setup,
		    teardown),
		cmocka_unit_test(test_budget_holds),
		cmocka_unit_test_setup_teardown(test_kill_serial_field,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_reserved, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_issue_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_issue_many, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_issue_many_refusals,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_death_keeps_replies,
		    setup_onethread, teardown),
		cmocka_unit_test_setup_teardown(test_issue_other_issuer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_serials_count, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_serials_distinct,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_types, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_revocation_reasons, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crl_many, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_reply_type, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_second_unlock, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_unknown_handle,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_used_handle, setup,
		    teardown),
		cmocka_unit_test(test_kill_before_unlock),
		cmocka_unit_test(test_wrong_passphrase),
		cmocka_unit_test_setup_teardown(test_killed_from_outside,
		    setup, teardown),
		cmocka_unit_test(test_death_before_listening),
		cmocka_unit_test_setup_teardown(test_stopped_signer_times_out,
		    setup, teardown),
		cmocka_unit_test(test_signer_settings),
		cmocka_unit_test(test_seccomp),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
