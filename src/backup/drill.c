/*
 * drill.c - a restore drill: prove a backup restores before it is needed.
 *
 * The sets are restored into a scratch home, every certificate in the
 * restored store is checked against the CA's signature, the revocation
 * state and counts against the manifest and the CRL, the key against the
 * CA certificate; then a throwaway certkeepd is started on the scratch home
 * (127.0.0.1, kernel-chosen ports), a test certificate is requested over
 * its REST API like any client would, checked, and found in the store; the
 * server is stopped and the scratch home wiped. Nothing touches the live
 * CA but the record of the result.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backup/backup.h"
#include "backup/drill.h"
#include "ca/token.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/privs.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "daemon/service.h"
#include "keystore/keystore.h"
#include "x509/sigcheck.h"
#include "x509/serial.h"

/*
 * Checking every certificate's signature: the store is read in this
 * thread and the certificates are checked in batches by one thread per
 * core (at a million certificates the checking is most of a drill).
 */
#define CHECK_BATCH 512
#define CHECK_QUEUE 4
#define CHECK_THREADS_MAX 16

struct check_batch {
	size_t n, used, cap;
	unsigned char *buf;	/* the DERs, back to back */
	size_t off[CHECK_BATCH], len[CHECK_BATCH];
	char serial[CHECK_BATCH][80];
};

struct certcheck {
	EVP_PKEY *capub;
	unsigned char *issuer;	/* the CA's subject, DER */
	size_t issuer_len;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct check_batch *q[CHECK_QUEUE];
	size_t qhead, qlen;
	int stop;
	struct check_batch *cur;	/* being filled */
	uint64_t checked, bad;
	char first_bad[80];
};

/* The drill runs with SIGINT, SIGTERM and SIGHUP blocked (see
 * ck_backup_drill()); its long steps look for one waiting and stop early,
 * tearing down as on any failure, after which the signal takes effect. */
static int
drill_interrupted(void)
{
	sigset_t p;

	if (sigpending(&p) != 0)
		return 0;
	if (sigismember(&p, SIGINT) == 1 || sigismember(&p, SIGTERM) == 1 ||
	    sigismember(&p, SIGHUP) == 1)
		return ck_err_set(CK_E_STATE, "the drill was interrupted");
	return 0;
}

static void
batch_free(struct check_batch *b)
{
	if (b != NULL)
		free(b->buf);
	free(b);
}

static void
check_one_batch(struct certcheck *k, struct check_batch *b)
{
	uint64_t bad = 0;
	char first[80] = "";
	size_t i;

	for (i = 0; i < b->n; i++)
		if (ck_cert_check_issued(k->capub, k->issuer, k->issuer_len,
		    b->buf + b->off[i], b->len[i]) != 0 && bad++ == 0)
			snprintf(first, sizeof(first), "%s", b->serial[i]);
	ERR_clear_error();
	pthread_mutex_lock(&k->mu);
	k->checked += b->n;
	if (bad > 0 && k->bad == 0)
		snprintf(k->first_bad, sizeof(k->first_bad), "%s", first);
	k->bad += bad;
	pthread_mutex_unlock(&k->mu);
}

static void *
check_worker(void *arg)
{
	struct certcheck *k = arg;
	struct check_batch *b;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (k->qlen == 0 && !k->stop)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->qlen == 0)
			break;
		b = k->q[k->qhead];
		k->qhead = (k->qhead + 1) % CHECK_QUEUE;
		k->qlen--;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
		check_one_batch(k, b);
		batch_free(b);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* Hand the batch being filled to the workers (waits while they are
 * behind, so memory stays a few batches). */
static void
batch_push(struct certcheck *k)
{
	if (k->cur == NULL || k->cur->n == 0)
		return;
	pthread_mutex_lock(&k->mu);
	while (k->qlen == CHECK_QUEUE)
		pthread_cond_wait(&k->cv, &k->mu);
	k->q[(k->qhead + k->qlen) % CHECK_QUEUE] = k->cur;
	k->qlen++;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	k->cur = NULL;
}

static int
cert_cb(const struct store_cert *c, void *arg)
{
	struct certcheck *k = arg;
	struct check_batch *b;

	if (c->der == NULL)
		return 0;
	if (k->cur == NULL && (k->cur = calloc(1, sizeof(*k->cur))) == NULL)
		goto oom;
	b = k->cur;
	if (b->used + c->der_len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 512 * 1024;
		unsigned char *nb;
		while (cap < b->used + c->der_len)
			cap *= 2;
		if ((nb = realloc(b->buf, cap)) == NULL)
			goto oom;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->used, c->der, c->der_len);
	b->off[b->n] = b->used;
	b->len[b->n] = c->der_len;
	snprintf(b->serial[b->n], sizeof(b->serial[b->n]), "%s", c->serial);
	b->used += c->der_len;
	if (++b->n == CHECK_BATCH) {
		batch_push(k);
		return drill_interrupted();
	}
	return 0;
oom:
	return ck_err_set(CK_E_NOMEM, "out of memory");
}

int
ck_drill_check_certs(struct ck_ca *ca, uint64_t *checked)
{
	struct certcheck k;
	struct store_cert_filter f;
	pthread_t th[CHECK_THREADS_MAX];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int i, nth = 0, r, len;
	unsigned char *p;

	memset(&k, 0, sizeof(k));
	*checked = 0;
	if (ca->cert == NULL)
		return ck_err_set(CK_E_STATE, "the CA has no certificate");
	k.capub = X509_get0_pubkey(ca->cert);
	if (k.capub == NULL || (len = i2d_X509_NAME(
	    X509_get_subject_name(ca->cert), NULL)) <= 0 ||
	    (k.issuer = malloc((size_t)len)) == NULL)
		return ck_err_set(CK_E_INTERNAL, "the CA certificate's key or "
		    "name");
	p = k.issuer;
	k.issuer_len = (size_t)i2d_X509_NAME(X509_get_subject_name(ca->cert),
	    &p);
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	if (ncpu < 1)
		ncpu = 1;
	for (i = 0; i < ncpu && i < CHECK_THREADS_MAX; i++) {
		if (pthread_create(&th[i], NULL, check_worker, &k) != 0)
			break;
		nth++;
	}
	memset(&f, 0, sizeof(f));
	f.status = -1;
	if (nth == 0)
		r = ck_err_set(CK_E_INTERNAL, "cannot start checking threads");
	else if ((r = store_cert_list(ca->st, &f, cert_cb, &k)) == 0)
		batch_push(&k);
	pthread_mutex_lock(&k.mu);
	k.stop = 1;
	pthread_cond_broadcast(&k.cv);
	pthread_mutex_unlock(&k.mu);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	/* The workers took every queued batch before they ended; what was
	 * being filled when the walk failed is left. */
	batch_free(k.cur);
	free(k.issuer);
	pthread_mutex_destroy(&k.mu);
	pthread_cond_destroy(&k.cv);
	if (r != 0)
		return r;
	*checked = k.checked;
	if (k.bad)
		return ck_err_set(CK_E_BADSIG, "%llu of %llu restored "
		    "certificates do not verify under the CA (first found: "
		    "%s)", (unsigned long long)k.bad,
		    (unsigned long long)k.checked, k.first_bad);
	return 0;
}

/* Every serial the restored CRL lists must be revoked in the store. */
static int
check_crl(struct ck_ca *ca, uint64_t *listed)
{
	char path[4400];
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len;
	X509_CRL *crl = NULL;
	STACK_OF(X509_REVOKED) *rev;
	int i, r;

	*listed = 0;
	if ((r = ck_ca_path(ca, ca->cfg->crl_file, path, sizeof(path))) != 0)
		return r;
	if ((r = ck_fs_read(path, 256u * 1024 * 1024, &der, &len)) != 0) {
		if (r == CK_E_NOTFOUND) {
			ck_err_clear();
			return 0;	/* no CRL published yet */
		}
		return r;
	}
	p = der;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL) {
		free(der);
		return ck_err_ssl(CK_E_PARSE, "the restored CRL");
	}
	free(der);
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)) != 1) {
		X509_CRL_free(crl);
		return ck_err_set(CK_E_BADSIG, "the restored CRL is not signed "
		    "by the CA");
	}
	rev = X509_CRL_get_REVOKED(crl);
	for (i = 0; i < sk_X509_REVOKED_num(rev); i++) {
		const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(
		    sk_X509_REVOKED_value(rev, i));
		char hex[CK_SERIAL_HEX_MAX];
		enum store_cert_status st;
		int64_t when;
		int reason;

		r = ck_serial_to_hex(sn, hex);
		if (r == 0)
			r = store_cert_status(ca->st, hex, &st, &when, &reason);
		if (r == 0 && st != STORE_CERT_REVOKED)
			r = ck_err_set(CK_E_TAMPER, "the restored CRL lists "
			    "%s, which the restored store has as %s", hex,
			    store_cert_status_name(st));
		else if (r != 0)
			r = ck_err_set(r, "the restored CRL lists %s, which is "
			    "not in the restored store", hex);
		if (r != 0) {
			X509_CRL_free(crl);
			return r;
		}
		(*listed)++;
	}
	X509_CRL_free(crl);
	return 0;
}

/* Point the scratch home's server at 127.0.0.1 with kernel-chosen ports,
 * no service user. */
static int
localize_config(const char *home)
{
	static const char *const keys[] = { "api_listen", "http_listen",
		"user", NULL };
	static const char *const vals[] = { "127.0.0.1:0", "127.0.0.1:0",
		"", NULL };

	return ck_backup_config_set(home, "server", keys, vals);
}

static int
read_urls(const char *home, unsigned *api_port)
{
	char path[4400];
	unsigned char *buf = NULL;
	size_t len;
	const char *p;
	int r;

	snprintf(path, sizeof(path), "%s/%s", home, SERVICE_URLS_FILE);
	if ((r = ck_fs_read(path, 4096, &buf, &len)) != 0)
		return r;
	if ((p = strstr((char *)buf, "api https://127.0.0.1:")) == NULL ||
	    sscanf(p + 22, "%u", api_port) != 1) {
		free(buf);
		return ck_err_set(CK_E_STATE, "the drill server did not say "
		    "where it serves");
	}
	free(buf);
	return 0;
}

/* One HTTPS request to 127.0.0.1:PORT, the server verified against the
 * restored CA chain. *BODY gets the response body. */
static int
https_post(unsigned port, STACK_OF(X509) *chain, const char *path,
    const char *auth, const char *body, int *status, char **resp)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509_STORE *xs;
	struct sockaddr_in sa;
	char *req = NULL, *buf = NULL, *p;
	size_t len = 0, cap = 65536;
	int fd = -1, r = CK_E_IO, i, n;

	*resp = NULL;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return ck_err_ssl(CK_E_CRYPTO, "TLS context");
	xs = SSL_CTX_get_cert_store(ctx);
	for (i = 0; i < sk_X509_num(chain); i++)
		X509_STORE_add_cert(xs, sk_X509_value(chain, i));
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) {
		/* A drill never hangs on its own server. */
		struct timeval tv = { 30, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = ck_err_set(CK_E_IO, "cannot connect to the drill server: "
		    "%s", strerror(errno));
		goto out;
	}
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_connect(ssl) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "TLS with the drill server (is its "
		    "certificate from the restored CA?)");
		goto out;
	}
	n = asprintf(&req, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", path, auth,
	    strlen(body), body);
	if (n < 0) {
		req = NULL;
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	if (SSL_write(ssl, req, n) != n) {
		r = ck_err_ssl(CK_E_IO, "sending to the drill server");
		goto out;
	}
	if ((buf = malloc(cap + 1)) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	while ((n = SSL_read(ssl, buf + len, (int)(cap - len))) > 0) {
		len += (size_t)n;
		if (len == cap) {
			r = ck_err_set(CK_E_TOOBIG, "the drill server's answer "
			    "is too long");
			goto out;
		}
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", status) != 1 ||
	    (p = strstr(buf, "\r\n\r\n")) == NULL) {
		r = ck_err_set(CK_E_PARSE, "the drill server's answer is not "
		    "HTTP");
		goto out;
	}
	if ((*resp = strdup(p + 4)) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	if (req != NULL)
		OPENSSL_cleanse(req, strlen(req));	/* the bearer token */
	free(req);
	free(buf);
	return r;
}

/* A DNS name the tls-server profile allows. */
static int
drill_name(const struct ck_ca *ca, char *buf, size_t bufsz)
{
	const struct ck_profile *p = ck_config_profile(ca->cfg, "tls-server");
	unsigned char rnd[4];
	char hex[9];
	const char *s;

	if (p == NULL)
		return ck_err_set(CK_E_NOTFOUND, "the restored configuration "
		    "has no tls-server profile to issue the test certificate "
		    "under");
	(void)RAND_bytes(rnd, sizeof(rnd));
	ck_hex_encode(rnd, sizeof(rnd), hex);
	if (p->dns_suffixes.n == 0) {
		snprintf(buf, bufsz, "certkeep-drill-%s.example", hex);
		return 0;
	}
	s = p->dns_suffixes.v[0];
	snprintf(buf, bufsz, "certkeep-drill-%s%s%s", hex, s[0] == '.' ? "" :
	    ".", s);
	return 0;
}

static int
make_csr(const char *name, EVP_PKEY **key, char **pem)
{
	X509_REQ *req = NULL;
	X509_NAME *nm = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	BIO *b = NULL;
	char san[320];
	BUF_MEM *bm;
	int r = CK_E_CRYPTO;

	*pem = NULL;
	snprintf(san, sizeof(san), "DNS:%s", name);
	if ((*key = EVP_EC_gen("P-256")) == NULL ||
	    (req = X509_REQ_new()) == NULL ||
	    (nm = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
		(const unsigned char *)name, -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, nm) ||
	    !X509_REQ_set_pubkey(req, *key) ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san))
	    == NULL || !sk_X509_EXTENSION_push(exts, ext) ||
	    !X509_REQ_add_extensions(req, exts) ||
	    !X509_REQ_sign(req, *key, EVP_sha256()) ||
	    (b = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_REQ(b, req)) {
		r = ck_err_ssl(CK_E_CRYPTO, "making the test request");
		goto out;
	}
	if (sk_X509_EXTENSION_num(exts) == 1)
		ext = NULL;	/* owned by the stack now */
	BIO_get_mem_ptr(b, &bm);
	/* Not NUL-terminated: copy exactly its length. */
	if ((*pem = malloc(bm->length + 1)) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	memcpy(*pem, bm->data, bm->length);
	(*pem)[bm->length] = '\0';
	r = 0;
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(nm);
	X509_REQ_free(req);
	BIO_free(b);
	return r;
}

/* Request, receive and check a test certificate from the drill server. */
static int
issue_test(struct ck_ca *ca, unsigned port, char *serial, size_t serialsz)
{
	struct ck_token_params tp = { .name = "restore-drill",
		.profiles = "tls-server" };
	struct ck_secret *tok = NULL;
	EVP_PKEY *key = NULL;
	X509 *leaf = NULL;
	X509_STORE *xs = NULL;
	X509_STORE_CTX *xc = NULL;
	BIO *b = NULL;
	json_t *req = NULL, *resp = NULL;
	char name[300], *csr = NULL, *body = NULL, *answer = NULL;
	const char *certpem, *sn;
	struct store_cert *rec = NULL;
	int status = 0, r, i;

	if ((r = drill_name(ca, name, sizeof(name))) != 0 ||
	    (r = make_csr(name, &key, &csr)) != 0 ||
	    (r = ck_token_create(ca, &tp, &tok)) != 0)
		goto out;
	if ((req = json_pack("{s:s, s:s}", "profile", "tls-server", "csr",
	    csr)) == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	if ((r = https_post(port, ca->chain, "/api/v1/certificates",
	    (const char *)tok->buf, body, &status, &answer)) != 0)
		goto out;
	if (status != 201 && status != 200) {
		r = ck_err_set(CK_E_STATE, "the drill server refused the test "
		    "certificate (HTTP %d): %.300s", status, answer);
		goto out;
	}
	if ((resp = json_loads(answer, 0, NULL)) == NULL ||
	    (certpem = json_string_value(json_object_get(resp,
		"certificate"))) == NULL ||
	    (sn = json_string_value(json_object_get(resp, "serial"))) ==
	    NULL) {
		r = ck_err_set(CK_E_PARSE, "the drill server's answer has no "
		    "certificate");
		goto out;
	}
	snprintf(serial, serialsz, "%s", sn);
	if ((b = BIO_new_mem_buf(certpem, -1)) == NULL ||
	    (leaf = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		r = ck_err_ssl(CK_E_PARSE, "the test certificate");
		goto out;
	}
	if ((xs = X509_STORE_new()) == NULL ||
	    (xc = X509_STORE_CTX_new()) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < sk_X509_num(ca->chain); i++)
		X509_STORE_add_cert(xs, sk_X509_value(ca->chain, i));
	if (!X509_STORE_CTX_init(xc, xs, leaf, ca->chain) ||
	    X509_verify_cert(xc) != 1) {
		r = ck_err_set(CK_E_BADSIG, "the test certificate does not "
		    "verify under the restored CA: %s",
		    X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(xc)));
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1 ||
	    X509_check_host(leaf, name, 0, 0, NULL) != 1) {
		r = ck_err_set(CK_E_STATE, "the test certificate is not for "
		    "the key or the name requested");
		goto out;
	}
	if ((r = store_cert_get(ca->st, serial, &rec)) != 0) {
		r = ck_err_set(r, "the test certificate %s is not in the "
		    "restored store", serial);
		goto out;
	}
	if (rec->status != STORE_CERT_ISSUED) {
		r = ck_err_set(CK_E_STATE, "the test certificate is recorded "
		    "as %s", store_cert_status_name(rec->status));
		goto out;
	}
	r = 0;
out:
	store_cert_free(rec);
	X509_STORE_CTX_free(xc);
	X509_STORE_free(xs);
	X509_free(leaf);
	BIO_free(b);
	json_decref(req);
	json_decref(resp);
	free(csr);
	free(body);
	free(answer);
	EVP_PKEY_free(key);
	ck_secret_free(tok);
	return r;
}

static int
drill_body(const struct ck_backup_reader *rd, const char *const *files,
    size_t nfiles, const struct ck_drill_opts *o, const char *scratch,
    struct ck_manifest *last, char *report, size_t reportsz)
{
	struct ck_restore_opts ro;
	struct ck_ca *ca = NULL;
	struct ck_secret *pw = NULL;
	uint64_t checked = 0;
	char home[4300], kpath[4900] = "", serial[80] = "";
	unsigned char rnd[32];
	unsigned port = 0;
	uint64_t crl_listed = 0;
	int r, started = 0;

	report[0] = '\0';
	snprintf(home, sizeof(home), "%s/home", scratch);
	memset(&ro, 0, sizeof(ro));
	ro.home = home;
	if (o->progress)
		fprintf(stderr, "drill: restoring into a scratch home\n");
	if ((r = ck_backup_restore(rd, files, nfiles, &ro, last)) != 0 ||
	    (r = drill_interrupted()) != 0)
		goto out;
	if ((r = ck_ca_open(home, &ca)) != 0)
		goto out;
	if (ca->cert == NULL) {
		r = ck_err_set(CK_E_STATE, "the restored CA has no certificate");
		goto out;
	}
	/* Every certificate: signed by this CA. */
	if (o->progress)
		fprintf(stderr, "drill: checking every certificate's "
		    "signature\n");
	if ((r = ck_drill_check_certs(ca, &checked)) != 0)
		goto out;
	if (checked != last->counts.issued + last->counts.revoked) {
		r = ck_err_set(CK_E_TAMPER, "%llu signed certificates restored, "
		    "the manifest counts %llu issued and revoked",
		    (unsigned long long)checked, (unsigned long long)
		    (last->counts.issued + last->counts.revoked));
		goto out;
	}
	if ((r = drill_interrupted()) != 0 ||
	    (r = check_crl(ca, &crl_listed)) != 0)
		goto out;
	/* The key. */
	if (EVP_PKEY_eq(o->key, X509_get0_pubkey(ca->cert)) != 1) {
		r = ck_err_set(CK_E_STATE, "the key given is not the key of the "
		    "CA in the backup");
		goto out;
	}
	/* A throwaway server on the scratch home, with a throwaway
	 * passphrase for the key copy it unlocks. */
	if ((pw = ck_secret_new(64)) == NULL ||
	    RAND_priv_bytes(rnd, sizeof(rnd)) != 1) {
		r = ck_err_set(CK_E_CRYPTO, "no random passphrase");
		goto out;
	}
	/* 256 random bits: the KDF's cost adds nothing to that. */
	ck_hex_encode(rnd, sizeof(rnd), (char *)pw->buf);
	ck_wipe(rnd, sizeof(rnd));
	pw->len = 2 * sizeof(rnd);
	if ((r = ck_ca_path(ca, ca->cfg->key_file, kpath, sizeof(kpath))) !=
	    0)
		goto out;
	if ((r = keystore_save(kpath, o->key, pw, 14)) != 0 ||
	    (r = localize_config(home)) != 0)
		goto out;
	ck_ca_close(ca);
	ca = NULL;
	if ((r = drill_interrupted()) != 0)
		goto out;
	if (o->progress)
		fprintf(stderr, "drill: starting a throwaway certkeepd\n");
	r = service_spawn(o->certkeepd, home, pw, 1);
	/* The server holds the key unlocked now: its copy on disk goes. */
	(void)unlink(kpath);
	if (r != 0)
		goto out;
	started = 1;
	if ((r = read_urls(home, &port)) != 0 ||
	    (r = ck_ca_open(home, &ca)) != 0)
		goto out;
	if (o->progress)
		fprintf(stderr, "drill: issuing a test certificate over "
		    "https://127.0.0.1:%u\n", port);
	if ((r = issue_test(ca, port, serial, sizeof(serial))) != 0)
		goto out;
	snprintf(report, reportsz, "ok: restored %zu set%s to sequence %lld; "
	    "%llu certificates verify under the CA, %llu revoked (%llu on the "
	    "CRL), key matches; test certificate %s issued by a restored "
	    "certkeepd", nfiles, nfiles == 1 ? "" : "s",
	    (long long)last->seq_to, (unsigned long long)checked,
	    (unsigned long long)last->counts.revoked,
	    (unsigned long long)crl_listed, serial);
	r = 0;
out:
	if (r != 0)
		snprintf(report, reportsz, "%s", ck_err_msg());
	ck_ca_close(ca);
	if (started) {
		if (service_signal(home, SIGTERM) == 0)
			(void)service_wait_stopped(home, 30);
	}
	if (kpath[0] != '\0')
		(void)unlink(kpath);
	ck_secret_free(pw);
	return r;
}

/* What a drill run in a child process sends back. */
struct drill_reply {
	struct ck_manifest last;
	char report[1024];
};

struct drill_job {
	const struct ck_backup_reader *rd;
	const char *const *files;
	size_t nfiles;
	const struct ck_drill_opts *o;
	const char *scratch;
};

/* In the child, as the service user: the drill, then the user empties
 * what the user made; root only removes the empty directory. */
static int
drill_job_run(void *arg, void *reply)
{
	struct drill_job *j = arg;
	struct drill_reply *rep = reply;
	char home[4300];
	int r;

	r = drill_body(j->rd, j->files, j->nfiles, j->o, j->scratch,
	    &rep->last, rep->report, sizeof(rep->report));
	snprintf(home, sizeof(home), "%s/home", j->scratch);
	ck_backup_rmtree(home);
	if (r != 0)
		ck_err_set(r, "%s", rep->report);
	return r;
}

static int drill_run(const struct ck_backup_reader *rd,
    const char *const *files, size_t nfiles, const struct ck_drill_opts *o,
    struct ck_manifest *last, char *report, size_t reportsz);

int
ck_backup_drill(const struct ck_backup_reader *rd,
    const char *const *files, size_t nfiles, const struct ck_drill_opts *o,
    struct ck_manifest *last, char *report, size_t reportsz)
{
	sigset_t sigs, oldsigs;
	int r;

	report[0] = '\0';
	memset(last, 0, sizeof(*last));
	/* An interrupt waits for the teardown: no throwaway server may be
	 * left running with the key unlocked, nor its home left behind. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, &oldsigs);
	r = drill_run(rd, files, nfiles, o, last, report, reportsz);
	sigprocmask(SIG_SETMASK, &oldsigs, NULL);
	return r;
}

static int
drill_run(const struct ck_backup_reader *rd, const char *const *files,
    size_t nfiles, const struct ck_drill_opts *o, struct ck_manifest *last,
    char *report, size_t reportsz)
{
	char scratch[4200];
	const char *tmp = getenv("TMPDIR");
	struct drill_reply *rep = NULL;
	struct ck_backup_reader rd2;
	struct drill_job job;
	int *fds = NULL, as_child = 0;
	size_t i;
	unsigned uid, gid;
	int r;

	if (o->key == NULL)
		return ck_err_set(CK_E_INVAL, "a drill needs the CA key to "
		    "bring the restored CA up (the live home's, or a key "
		    "backup)");
	snprintf(scratch, sizeof(scratch), "%s/certkeep-drill.XXXXXX",
	    tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(scratch) == NULL)
		return ck_err_set(CK_E_IO, "cannot make a scratch directory: "
		    "%s", strerror(errno));
	if (geteuid() != 0) {
		r = drill_body(rd, files, nfiles, o, scratch, last, report,
		    reportsz);
		goto out;
	}
	as_child = 1;
	/* Run as root: certkeepd never serves as root, so the drill runs in
	 * a child that has become the service user; only the scratch
	 * directory is made and removed as root. */
	if (o->service_user == NULL || o->service_user[0] == '\0') {
		r = ck_err_set(CK_E_INVAL, "run as root, a drill needs the "
		    "service user its throwaway certkeepd serves as");
		goto out;
	}
	if ((r = ck_privs_lookup(o->service_user, &uid, &gid)) != 0)
		goto out;
	if (chown(scratch, (uid_t)uid, (gid_t)gid) != 0) {
		r = ck_err_set(CK_E_IO, "chown %s: %s", scratch,
		    strerror(errno));
		goto out;
	}
	if ((rep = calloc(1, sizeof(*rep))) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	/* The sets are opened here, as root: the child may not be able to. */
	if ((fds = calloc(nfiles, sizeof(*fds))) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < nfiles; i++)
		fds[i] = -1;
	for (i = 0; i < nfiles; i++)
		if ((fds[i] = open(files[i], O_RDONLY | O_CLOEXEC)) < 0) {
			r = ck_err_set(CK_E_IO, "cannot open %s: %s", files[i],
			    strerror(errno));
			goto out;
		}
	memcpy(&rd2, rd, sizeof(rd2));
	rd2.fds = fds;
	job.rd = &rd2;
	job.files = files;
	job.nfiles = nfiles;
	job.o = o;
	job.scratch = scratch;
	r = ck_backup_as_user(o->service_user, drill_job_run, &job, rep,
	    sizeof(*rep));
	if (r != 0 && rep->report[0] == '\0') {
		snprintf(report, reportsz, "%s", ck_err_msg());
		goto out;
	}
	memcpy(last, &rep->last, sizeof(*last));
	snprintf(report, reportsz, "%s", rep->report);
out:
	if (r != 0 && report[0] == '\0')
		snprintf(report, reportsz, "%s", ck_err_msg());
	free(rep);
	if (fds != NULL)
		for (i = 0; i < nfiles; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	free(fds);
	if (as_child) {
		if (rmdir(scratch) != 0)
			fprintf(stderr, "certkeep: warning: the drill's scratch "
			    "directory %s was not left empty: remove it\n",
			    scratch);
	} else
		ck_backup_rmtree(scratch);
	if (r != 0)
		ck_err_set(r, "%s", report);
	return r;
}
