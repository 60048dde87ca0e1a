/*
 * archive.c - the container of a data backup set (see archive.h).
 *
 * Writing streams: tar bytes go into OpenSSL's streaming CMS BIO chain
 * (BIO_new_CMS: cipher, then BER with indefinite lengths) whose output is a
 * sink BIO writing to the file and hashing what it writes.
 *
 * Reading streams too, but OpenSSL 3.0 cannot parse a CMS structure
 * without holding it whole, so the outer BER is parsed here only as far as
 * needed: the small header (version, recipientInfos, the content type and
 * algorithm) is kept and re-encoded as an EnvelopedData with an empty
 * content, which d2i_CMS_ContentInfo() reads; the encrypted bytes are then
 * fed, chunk by chunk straight from the file, to the cipher BIO that
 * CMS_dataInit() returns when given the content as a BIO (the form meant
 * for detached content). The tar reader pulls plaintext from that BIO.
 * (An empty content rather than none: CMS_decrypt(), which is the only way
 * to set CMS_DEBUG_DECRYPT, refuses a structure without content.)
 */
#include "backup/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>
#include <zstd.h>

#include "backup/tar.h"
#include "common/err.h"

#define IO_CHUNK (64 * 1024)
/* The manifest signature: the manifest plus certificates. */
#define P7S_MAX (CK_ARCHIVE_MANIFEST_MAX + 1024 * 1024)
/* The envelope's header (recipientInfos and algorithm): a recipient takes
 * about half a kilobyte, so this is far beyond any real set. */
#define ENV_HDR_MAX (256 * 1024)
/* Nesting allowed inside a header element of indefinite length. */
#define BER_DEPTH_MAX 16
/* Lengths beyond this are absurd for any file and are refused. */
#define BER_LEN_MAX (1ULL << 56)
/* Reader's bound on zstd window memory (16 MiB); levels up to 19 stay
 * below it, so the writer refuses the levels above. */
#define ZSTD_WLOG_MAX 24
#define ZSTD_LEVEL_MAX 19

#define MANIFEST_JSON "manifest.json"
#define MANIFEST_P7S "manifest.p7s"
#define PART_PREFIX "parts/"

static const unsigned char oid_enveloped[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03
};
static const unsigned char oid_data[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01
};
static const unsigned char oid_pkcs7_prefix[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07
};

static int
write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static long
read_some(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return (long)n;
}

/* ---------------------------------------------------------------------
 * Custom BIOs: a sink that writes to a file descriptor and hashes, and a
 * source that yields the encrypted content parsed from the file. Their
 * methods are made once per process (BIO type indexes are few).
 */

struct sink {
	int fd;
	EVP_MD_CTX *md;
	uint64_t n;
	int err;		/* CK_E* of the first failure */
};

static BIO_METHOD *sink_method, *src_method;
static pthread_once_t methods_once = PTHREAD_ONCE_INIT;

static int
sink_bwrite(BIO *b, const char *buf, int len)
{
	struct sink *s = BIO_get_data(b);

	if (s->err != 0 || len < 0)
		return -1;
	if (write_all(s->fd, buf, (size_t)len) != 0) {
		s->err = ck_err_set(CK_E_IO, "cannot write the backup set: %s",
		    strerror(errno));
		return -1;
	}
	if (EVP_DigestUpdate(s->md, buf, (size_t)len) != 1) {
		s->err = ck_err_ssl(CK_E_INTERNAL, "SHA-256");
		return -1;
	}
	s->n += (uint64_t)len;
	return len;
}

static long
any_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
any_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

struct env;
static long env_content_read(struct env *e, void *buf, size_t len);

static int
src_bread(BIO *b, char *buf, int len)
{
	long n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	n = env_content_read(BIO_get_data(b), buf, (size_t)len);
	return n < 0 ? -1 : (int)n;
}

static void
methods_init(void)
{
	int ti;

	if ((ti = BIO_get_new_index()) != -1 &&
	    (sink_method = BIO_meth_new(ti | BIO_TYPE_SOURCE_SINK,
	    "certkeep backup sink")) != NULL) {
		BIO_meth_set_write(sink_method, sink_bwrite);
		BIO_meth_set_ctrl(sink_method, any_ctrl);
		BIO_meth_set_create(sink_method, any_create);
	}
	if ((ti = BIO_get_new_index()) != -1 &&
	    (src_method = BIO_meth_new(ti | BIO_TYPE_SOURCE_SINK,
	    "certkeep backup content")) != NULL) {
		BIO_meth_set_read(src_method, src_bread);
		BIO_meth_set_ctrl(src_method, any_ctrl);
		BIO_meth_set_create(src_method, any_create);
	}
}

static BIO *
bio_with(BIO_METHOD **m, void *data)
{
	BIO *b;

	if (pthread_once(&methods_once, methods_init) != 0 || *m == NULL)
		return NULL;
	if ((b = BIO_new(*m)) != NULL)
		BIO_set_data(b, data);
	return b;
}

/* ---------------------------------------------------------------------
 * Writer.
 */

/* A finished part waiting to go into the set. */
struct copy_job {
	int spool;
	uint64_t size;
	char name[CK_ARCHIVE_NAME_MAX];
};

/* Parts queued behind the one being copied. */
#define COPY_QUEUE 2
#define COPY_CHUNK (256u * 1024)

struct ck_archive_writer {
	int failed;		/* an error ended the set; only free remains */
	int finished;
	char *tmpdir;
	int64_t mtime;
	struct sink sink;
	BIO *sink_bio;
	BIO *cms_bio;		/* plaintext in, top of the CMS chain */
	CMS_ContentInfo *cms;
	struct ck_tar_io tio;

	/* the part being written */
	int in_part;
	int spool;
	ZSTD_CCtx *zc;
	int zlevel;
	int zworkers;		/* zstd worker threads (0: none) */
	EVP_MD_CTX *part_md;
	struct ck_archive_part cur;
	unsigned char *zbuf;
	size_t zbufsz;

	char names[CK_ARCHIVE_MAX_PARTS][CK_ARCHIVE_NAME_MAX];
	size_t nparts;

	/* the copier (below) and its queue of finished parts */
	pthread_t copier;
	int copier_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct copy_job q[COPY_QUEUE];
	size_t qhead, qlen;
	int busy, stop;
	int abort;		/* stop without copying what is queued */
	int copy_rc;
	char copy_msg[1024];
	unsigned char *cbuf;
};

static void *copier_main(void *arg);
static int copier_check(struct ck_archive_writer *w);

static int
w_tar_write(void *arg, const void *buf, size_t len)
{
	struct ck_archive_writer *w = arg;
	const unsigned char *p = buf;
	int n, chunk;

	while (len > 0) {
		chunk = len > (1u << 20) ? (1 << 20) : (int)len;
		n = BIO_write(w->cms_bio, p, chunk);
		if (n <= 0) {
			if (w->sink.err != 0)
				return w->sink.err;
			return ck_err_ssl(CK_E_CRYPTO,
			    "encrypting the backup set failed");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Which recipients CMS can encrypt to with OpenSSL 3.0: RSA (key
 * transport) and EC (key agreement). */
static int
check_recipient(X509 *cert, int i)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	char subj[256] = "?";

	X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj));
	if (pk == NULL)
		return ck_err_ssl(CK_E_INVAL, "recipient certificate has an "
		    "unreadable public key");
	if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "EC"))
		return 0;
	if (EVP_PKEY_is_a(pk, "ED25519") || EVP_PKEY_is_a(pk, "ED448"))
		return ck_err_set(CK_E_INVAL, "recipient %d (%s) has an %s key:"
		    " Ed25519 and Ed448 keys sign only and cannot do CMS key "
		    "agreement; give an RSA or EC (P-256, P-384) certificate",
		    i + 1, subj, EVP_PKEY_get0_type_name(pk));
	return ck_err_set(CK_E_INVAL, "recipient %d (%s) has a %s key: "
	    "backup sets can be encrypted only to RSA or EC keys", i + 1, subj,
	    EVP_PKEY_get0_type_name(pk));
}

static CMS_ContentInfo *
make_envelope(STACK_OF(X509) *recipients)
{
	CMS_ContentInfo *cms;
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;
	X509 *cert;
	int i, rsa;
	unsigned flags = CMS_BINARY | CMS_STREAM | CMS_PARTIAL;

	if ((cms = CMS_EnvelopedData_create(EVP_aes_256_cbc())) == NULL) {
		ck_err_ssl(CK_E_CRYPTO, "cannot make a CMS EnvelopedData");
		return NULL;
	}
	for (i = 0; i < sk_X509_num(recipients); i++) {
		cert = sk_X509_value(recipients, i);
		rsa = EVP_PKEY_is_a(X509_get0_pubkey(cert), "RSA");
		/* RSA: OAEP with SHA-256 rather than PKCS#1 v1.5 padding;
		 * openssl cms -decrypt reads either. */
		ri = CMS_add1_recipient_cert(cms, cert,
		    flags | (rsa ? CMS_KEY_PARAM : 0));
		if (ri == NULL)
			goto fail;
		if (rsa) {
			pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
			if (pctx == NULL || EVP_PKEY_CTX_set_rsa_padding(pctx,
			    RSA_PKCS1_OAEP_PADDING) <= 0 ||
			    EVP_PKEY_CTX_set_rsa_oaep_md(pctx,
			    EVP_sha256()) <= 0 ||
			    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx,
			    EVP_sha256()) <= 0)
				goto fail;
		}
	}
	return cms;
fail:
	ck_err_ssl(CK_E_CRYPTO, "cannot add a recipient to the backup set");
	CMS_ContentInfo_free(cms);
	return NULL;
}

int
ck_archive_writer_open(int fd, const char *tmpdir,
    STACK_OF(X509) *recipients, int zlevel, struct ck_archive_writer **out)
{
	struct ck_archive_writer *w = NULL;
	int i, rc;

	*out = NULL;
	if (fd < 0 || tmpdir == NULL || recipients == NULL)
		return ck_err_set(CK_E_INVAL, "ck_archive_writer_open: bad "
		    "arguments");
	if (sk_X509_num(recipients) < 1)
		return ck_err_set(CK_E_INVAL, "a backup set needs at least "
		    "one recipient certificate");
	if (zlevel > ZSTD_LEVEL_MAX || zlevel < ZSTD_minCLevel())
		return ck_err_set(CK_E_INVAL, "zstd level %d is out of range "
		    "(%d..%d; higher levels need more memory to read than a "
		    "reader allows)", zlevel, ZSTD_minCLevel(),
		    ZSTD_LEVEL_MAX);
	for (i = 0; i < sk_X509_num(recipients); i++)
		if ((rc = check_recipient(sk_X509_value(recipients, i), i))
		    != 0)
			return rc;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return CK_E_NOMEM;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->spool = -1;
	w->sink.fd = fd;
	w->zlevel = zlevel;
	{
		/* One compression thread per core, at most 4: compressing
		 * is most of the work, reading the store the lesser part. */
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		w->zworkers = n > 1 ? (int)(n < 4 ? n : 4) : 0;
	}
	w->mtime = (int64_t)time(NULL);
	w->tio.write = w_tar_write;
	w->tio.arg = w;
	w->zbufsz = ZSTD_CStreamOutSize();
	rc = CK_E_NOMEM;
	if ((w->tmpdir = strdup(tmpdir)) == NULL ||
	    (w->zbuf = malloc(w->zbufsz)) == NULL ||
	    (w->zc = ZSTD_createCCtx()) == NULL ||
	    (w->part_md = EVP_MD_CTX_new()) == NULL ||
	    (w->sink.md = EVP_MD_CTX_new()) == NULL)
		goto out;
	rc = CK_E_INTERNAL;
	if (EVP_DigestInit_ex(w->sink.md, EVP_sha256(), NULL) != 1 ||
	    (w->sink_bio = bio_with(&sink_method, &w->sink)) == NULL) {
		rc = ck_err_ssl(CK_E_INTERNAL, "backup writer setup");
		goto out;
	}
	if ((w->cms = make_envelope(recipients)) == NULL) {
		rc = CK_E_CRYPTO;
		goto out;
	}
	if ((w->cbuf = malloc(COPY_CHUNK)) == NULL) {
		rc = ck_err_set(CK_E_NOMEM, "out of memory");
		goto out;
	}
	/* Encrypting the content key for each recipient happens here. */
	if ((w->cms_bio = BIO_new_CMS(w->sink_bio, w->cms)) == NULL) {
		rc = w->sink.err != 0 ? w->sink.err : ck_err_ssl(CK_E_CRYPTO,
		    "cannot start the CMS envelope");
		goto out;
	}
	if (pthread_create(&w->copier, NULL, copier_main, w) != 0) {
		rc = ck_err_set(CK_E_INTERNAL, "cannot start the backup "
		    "writer's thread");
		goto out;
	}
	w->copier_started = 1;
	*out = w;
	w = NULL;
	rc = 0;
out:
	ck_archive_writer_free(w);
	return rc;
}

static int
writer_usable(struct ck_archive_writer *w)
{
	if (w == NULL)
		return ck_err_set(CK_E_INVAL, "no backup writer");
	if (w->failed)
		return ck_err_set(CK_E_STATE, "an earlier error ended this "
		    "backup set");
	if (w->finished)
		return ck_err_set(CK_E_STATE, "the backup set is finished");
	if (w->copier_started)
		return copier_check(w);
	return 0;
}

static int
writer_fail(struct ck_archive_writer *w, int rc)
{
	w->failed = 1;
	return rc;
}

static int
open_spool(const char *dir)
{
	char path[4096];
	int fd, saved;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* File systems (or kernels) without O_TMPFILE: a named file,
	 * unlinked at once. */
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		ck_err_set(CK_E_IO, "cannot create a temporary file in %s: %s",
		    dir, strerror(errno));
		return -1;
	}
	if (snprintf(path, sizeof(path), "%s/.ck-part-XXXXXX", dir) >=
	    (int)sizeof(path)) {
		ck_err_set(CK_E_TOOBIG, "path too long: %s", dir);
		return -1;
	}
	if ((fd = mkstemp(path)) < 0) {
		ck_err_set(CK_E_IO, "cannot create a temporary file in %s: %s",
		    dir, strerror(errno));
		return -1;
	}
	if (unlink(path) != 0 || fchmod(fd, 0600) != 0) {
		saved = errno;
		(void)unlink(path);
		close(fd);
		ck_err_set(CK_E_IO, "cannot unlink the temporary file %s: %s",
		    path, strerror(saved));
		return -1;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* ---------------------------------------------------------------------
 * The copier: a thread that moves finished parts from their spools into
 * the set (tar header, data through the CMS encryption, padding) while the
 * caller compresses the next part. Only it writes to the tar stream until
 * it is drained; the writer's finish drains it first.
 */

static int
copy_one(struct ck_archive_writer *w, const struct copy_job *job)
{
	uint64_t off = 0;
	ssize_t n;
	int rc;

	if ((rc = ck_tar_header(&w->tio, job->name, job->size, w->mtime)) !=
	    0)
		return rc;
	while (off < job->size) {
		size_t want = job->size - off < COPY_CHUNK ?
		    (size_t)(job->size - off) : COPY_CHUNK;
		int abort;

		pthread_mutex_lock(&w->mu);
		abort = w->abort;
		pthread_mutex_unlock(&w->mu);
		if (abort)
			return ck_err_set(CK_E_STATE, "the backup set was "
			    "abandoned");
		n = pread(job->spool, w->cbuf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ck_err_set(CK_E_IO, "cannot read back the "
			    "temporary file of part %s: %s", job->name,
			    n < 0 ? strerror(errno) : "it is short");
		if ((rc = w_tar_write(w, w->cbuf, (size_t)n)) != 0)
			return rc;
		off += (uint64_t)n;
	}
	return ck_tar_pad(&w->tio, job->size);
}

static void *
copier_main(void *arg)
{
	struct ck_archive_writer *w = arg;
	struct copy_job job;
	int rc, failed = 0, abandon;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->qlen == 0 && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->qlen == 0)
			break;
		job = w->q[w->qhead];
		w->qhead = (w->qhead + 1) % COPY_QUEUE;
		w->qlen--;
		w->busy = 1;
		abandon = w->abort;
		pthread_mutex_unlock(&w->mu);
		/* After a failure, or once the set is abandoned, spools are
		 * only closed. */
		rc = failed || abandon ? 0 : copy_one(w, &job);
		close(job.spool);
		pthread_mutex_lock(&w->mu);
		if (rc != 0 && !failed) {
			failed = 1;
			w->copy_rc = rc;
			snprintf(w->copy_msg, sizeof(w->copy_msg), "%s",
			    ck_err_msg());
		}
		w->busy = 0;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* The copier's failure, if any, as this thread's error. */
static int
copier_check(struct ck_archive_writer *w)
{
	char msg[sizeof(w->copy_msg)];
	int rc;

	pthread_mutex_lock(&w->mu);
	rc = w->copy_rc;
	memcpy(msg, w->copy_msg, sizeof(msg));
	pthread_mutex_unlock(&w->mu);
	if (rc == 0)
		return 0;
	return writer_fail(w, ck_err_set(rc, "%s", msg));
}

/* Queue JOB (its spool is the copier's from here on); waits while the
 * queue is full, so spools on disk stay few. */
static int
copier_put(struct ck_archive_writer *w, const struct copy_job *job)
{
	pthread_mutex_lock(&w->mu);
	while (w->qlen == COPY_QUEUE && w->copy_rc == 0)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->copy_rc != 0) {
		pthread_mutex_unlock(&w->mu);
		close(job->spool);
		return copier_check(w);
	}
	w->q[(w->qhead + w->qlen) % COPY_QUEUE] = *job;
	w->qlen++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* Wait until every queued part is in the set. */
static int
copier_drain(struct ck_archive_writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->qlen > 0 || w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return copier_check(w);
}

static void
copier_stop(struct ck_archive_writer *w)
{
	if (!w->copier_started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	/* A finished set has nothing queued; any other is thrown away. */
	w->abort = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->copier, NULL);
	w->copier_started = 0;
}

static int
part_name_valid(const char *name)
{
	size_t len = strlen(name);

	return len < CK_ARCHIVE_NAME_MAX &&
	    strncmp(name, PART_PREFIX, strlen(PART_PREFIX)) == 0 &&
	    len > strlen(PART_PREFIX) + 4 &&
	    strcmp(name + len - 4, ".zst") == 0 && ck_tar_name_valid(name);
}

int
ck_archive_part_begin(struct ck_archive_writer *w, const char *name)
{
	size_t i;
	int rc;

	if ((rc = writer_usable(w)) != 0)
		return rc;
	if (w->in_part)
		return ck_err_set(CK_E_STATE, "part %s is still open",
		    w->cur.name);
	if (!part_name_valid(name))
		return ck_err_set(CK_E_INVAL, "invalid part name \"%.120s\" "
		    "(parts/... ending in .zst, under %d bytes, relative, no "
		    "\"..\")", name, CK_ARCHIVE_NAME_MAX);
	for (i = 0; i < w->nparts; i++)
		if (strcmp(w->names[i], name) == 0)
			return ck_err_set(CK_E_EXISTS, "part %s is already in "
			    "the set", name);
	if (w->nparts >= CK_ARCHIVE_MAX_PARTS)
		return ck_err_set(CK_E_TOOBIG, "a set holds at most %d parts",
		    CK_ARCHIVE_MAX_PARTS);
	if ((w->spool = open_spool(w->tmpdir)) < 0)
		return writer_fail(w, CK_E_IO);
	if (ZSTD_isError(ZSTD_CCtx_reset(w->zc, ZSTD_reset_session_only)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->zc,
	    ZSTD_c_compressionLevel, w->zlevel)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag,
	    1)))
		return writer_fail(w, ck_err_set(CK_E_INTERNAL, "zstd setup "
		    "failed"));
	/* Compression runs beside the reading of the store, in worker
	 * threads (where libzstd has them; else in this thread). */
	if (w->zworkers > 0)
		(void)ZSTD_CCtx_setParameter(w->zc, ZSTD_c_nbWorkers,
		    w->zworkers);
	if (EVP_DigestInit_ex(w->part_md, EVP_sha256(), NULL) != 1)
		return writer_fail(w, ck_err_ssl(CK_E_INTERNAL, "SHA-256"));
	memset(&w->cur, 0, sizeof(w->cur));
	memcpy(w->cur.name, name, strlen(name) + 1);
	w->in_part = 1;
	return 0;
}

static int
spool_put(struct ck_archive_writer *w, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (write_all(w->spool, buf, len) != 0)
		return ck_err_set(CK_E_IO, "cannot write a temporary file in "
		    "%s: %s", w->tmpdir, strerror(errno));
	if (EVP_DigestUpdate(w->part_md, buf, len) != 1)
		return ck_err_ssl(CK_E_INTERNAL, "SHA-256");
	w->cur.size += len;
	return 0;
}

static int
compress_some(struct ck_archive_writer *w, const void *buf, size_t len,
    ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { buf, len, 0 };
	ZSTD_outBuffer zo;
	size_t left;
	int rc;

	do {
		zo.dst = w->zbuf;
		zo.size = w->zbufsz;
		zo.pos = 0;
		left = ZSTD_compressStream2(w->zc, &zo, &in, mode);
		if (ZSTD_isError(left))
			return ck_err_set(CK_E_INTERNAL, "zstd: %s",
			    ZSTD_getErrorName(left));
		if ((rc = spool_put(w, w->zbuf, zo.pos)) != 0)
			return rc;
	} while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

int
ck_archive_part_write(struct ck_archive_writer *w, const void *buf,
    size_t len)
{
	int rc;

	if ((rc = writer_usable(w)) != 0)
		return rc;
	if (!w->in_part)
		return ck_err_set(CK_E_STATE, "no part is open");
	if (len == 0)
		return 0;
	if ((rc = compress_some(w, buf, len, ZSTD_e_continue)) != 0)
		return writer_fail(w, rc);
	w->cur.raw_size += len;
	return 0;
}

int
ck_archive_part_end(struct ck_archive_writer *w,
    struct ck_archive_part *info)
{
	struct copy_job job;
	int rc;

	if ((rc = writer_usable(w)) != 0)
		return rc;
	if (!w->in_part)
		return ck_err_set(CK_E_STATE, "no part is open");
	if ((rc = compress_some(w, "", 0, ZSTD_e_end)) != 0)
		return writer_fail(w, rc);
	if (EVP_DigestFinal_ex(w->part_md, w->cur.sha256, NULL) != 1)
		return writer_fail(w, ck_err_ssl(CK_E_INTERNAL, "SHA-256"));
	job.spool = w->spool;
	job.size = w->cur.size;
	memcpy(job.name, w->cur.name, CK_ARCHIVE_NAME_MAX);
	w->spool = -1;
	w->in_part = 0;
	memcpy(w->names[w->nparts++], w->cur.name, CK_ARCHIVE_NAME_MAX);
	if ((rc = copier_put(w, &job)) != 0)
		return rc;
	if (info != NULL)
		*info = w->cur;
	return 0;
}

int
ck_archive_signer_check(EVP_PKEY *key, X509 *cert)
{
	char subj[256] = "?";

	if (key == NULL || cert == NULL)
		return ck_err_set(CK_E_INVAL, "the manifest needs a signing key "
		    "and its certificate");
	/* XXX: OpenSSL 3.0's CMS can neither sign nor verify with EdDSA
	 * keys (it insists on a digest EdDSA does not take). */
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return ck_err_set(CK_E_INVAL, "a backup manifest cannot be "
		    "signed with an %s key: OpenSSL 3.0's CMS cannot sign or "
		    "verify with EdDSA keys", EVP_PKEY_get0_type_name(key));
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		X509_NAME_oneline(X509_get_subject_name(cert), subj,
		    sizeof(subj));
		return ck_err_set(CK_E_INVAL, "the signing key does not belong "
		    "to the certificate %s", subj);
	}
	return 0;
}

/* CMS SignedData over MANIFEST, content attached, DER in *DER. */
static int
sign_manifest(const char *manifest, size_t len, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *chain, unsigned char **der, size_t *derlen)
{
	unsigned flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	unsigned char *p = NULL;
	int i, j, n, dup, rc = CK_E_CRYPTO;

	if (len > CK_ARCHIVE_MANIFEST_MAX)
		return ck_err_set(CK_E_TOOBIG, "the manifest is larger than %d "
		    "bytes", CK_ARCHIVE_MANIFEST_MAX);
	if ((in = BIO_new_mem_buf(manifest, (int)len)) == NULL ||
	    (cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL) {
		rc = ck_err_ssl(CK_E_NOMEM, "cannot start the manifest "
		    "signature");
		goto out;
	}
	if (CMS_add1_signer(cms, cert, key, EVP_sha256(), flags) == NULL) {
		rc = ck_err_ssl(CK_E_CRYPTO, "cannot sign the manifest with "
		    "this key and certificate");
		goto out;
	}
	/* The chain, without repeating the signer or a certificate (CMS
	 * refuses duplicates). */
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		dup = X509_cmp(x, cert) == 0;
		for (j = 0; j < i && !dup; j++)
			dup = X509_cmp(x, sk_X509_value(chain, j)) == 0;
		if (!dup && !CMS_add1_cert(cms, x)) {
			rc = ck_err_ssl(CK_E_CRYPTO, "cannot add the chain to "
			    "the manifest signature");
			goto out;
		}
	}
	if (!CMS_final(cms, in, NULL, flags)) {
		rc = ck_err_ssl(CK_E_CRYPTO, "signing the manifest failed");
		goto out;
	}
	if ((n = i2d_CMS_ContentInfo(cms, &p)) <= 0) {
		rc = ck_err_ssl(CK_E_CRYPTO, "encoding the manifest signature");
		goto out;
	}
	*der = p;
	*derlen = (size_t)n;
	p = NULL;
	rc = 0;
out:
	OPENSSL_free(p);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return rc;
}

static int
put_entry(struct ck_archive_writer *w, const char *name, const void *buf,
    size_t len)
{
	int rc;

	if ((rc = ck_tar_header(&w->tio, name, len, w->mtime)) != 0 ||
	    (rc = w_tar_write(w, buf, len)) != 0 ||
	    (rc = ck_tar_pad(&w->tio, len)) != 0)
		return rc;
	return 0;
}

/* Flush the CMS chain (writes the last block and the end-of-contents
 * octets) and free it down to the sink. */
static int
close_cms_chain(struct ck_archive_writer *w, int flush)
{
	BIO *b = w->cms_bio, *next;
	int ok = 1;

	if (b == NULL)
		return 0;
	if (flush && BIO_flush(b) <= 0)
		ok = 0;
	while (b != NULL && b != w->sink_bio) {
		next = BIO_pop(b);
		BIO_free(b);
		b = next;
	}
	w->cms_bio = NULL;
	if (!flush)
		return 0;
	if (w->sink.err != 0)
		return w->sink.err;
	if (!ok)
		return ck_err_ssl(CK_E_CRYPTO, "cannot finish the CMS "
		    "envelope");
	return 0;
}

static int verify_manifest(const unsigned char *p7s, size_t p7slen,
    const unsigned char *json, size_t jsonlen, STACK_OF(X509) *trusted,
    struct ck_archive_result *res);

/* Checks common to both ways of finishing; a refusal leaves W usable. */
static int
finish_check(struct ck_archive_writer *w, const char *manifest,
    size_t manifest_len)
{
	int rc;

	if ((rc = writer_usable(w)) != 0)
		return rc;
	if (w->in_part)
		return ck_err_set(CK_E_STATE, "part %s is still open",
		    w->cur.name);
	if (manifest == NULL)
		return ck_err_set(CK_E_INVAL, "no manifest");
	if (manifest_len > CK_ARCHIVE_MANIFEST_MAX)
		return ck_err_set(CK_E_TOOBIG, "the manifest is larger than %d "
		    "bytes", CK_ARCHIVE_MANIFEST_MAX);
	return 0;
}

/* The manifest pair, the end of the tar stream and of the envelope. */
static int
finish_write(struct ck_archive_writer *w, const char *manifest,
    size_t manifest_len, const unsigned char *p7s, size_t p7slen,
    unsigned char archive_sha256[32])
{
	unsigned char md[32];
	int rc;

	if ((rc = copier_drain(w)) != 0)
		return rc;
	if ((rc = put_entry(w, MANIFEST_JSON, manifest, manifest_len)) != 0 ||
	    (rc = put_entry(w, MANIFEST_P7S, p7s, p7slen)) != 0 ||
	    (rc = ck_tar_end(&w->tio)) != 0 ||
	    (rc = close_cms_chain(w, 1)) != 0)
		return writer_fail(w, rc);
	if (fsync(w->sink.fd) != 0 && errno != EINVAL)
		return writer_fail(w, ck_err_set(CK_E_IO, "cannot sync the "
		    "backup set: %s", strerror(errno)));
	if (EVP_DigestFinal_ex(w->sink.md, md, NULL) != 1)
		return writer_fail(w, ck_err_ssl(CK_E_INTERNAL, "SHA-256"));
	if (archive_sha256 != NULL)
		memcpy(archive_sha256, md, sizeof(md));
	w->finished = 1;
	return 0;
}

int
ck_archive_writer_finish(struct ck_archive_writer *w, const char *manifest,
    size_t manifest_len, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    unsigned char archive_sha256[32])
{
	unsigned char *p7s = NULL;
	size_t p7slen = 0;
	int rc;

	if ((rc = finish_check(w, manifest, manifest_len)) != 0 ||
	    (rc = ck_archive_signer_check(key, cert)) != 0)
		return rc;
	if ((rc = sign_manifest(manifest, manifest_len, key, cert, chain,
	    &p7s, &p7slen)) != 0)
		return writer_fail(w, rc);
	rc = finish_write(w, manifest, manifest_len, p7s, p7slen,
	    archive_sha256);
	OPENSSL_free(p7s);
	return rc;
}

int
ck_archive_writer_finish_signed(struct ck_archive_writer *w,
    const char *manifest, size_t manifest_len, const unsigned char *p7s,
    size_t p7s_len, unsigned char archive_sha256[32])
{
	struct ck_archive_result chk;
	char msg[512];
	int rc;

	if ((rc = finish_check(w, manifest, manifest_len)) != 0)
		return rc;
	if (p7s == NULL || p7s_len == 0 || p7s_len > P7S_MAX)
		return ck_err_set(CK_E_INVAL, "no usable manifest signature "
		    "(empty or over %d bytes)", P7S_MAX);
	/* What a reader will check, now, rather than a set that cannot be
	 * restored: SignedData, attached, verifying, over this manifest. */
	memset(&chk, 0, sizeof(chk));
	rc = verify_manifest(p7s, p7s_len, (const unsigned char *)manifest,
	    manifest_len, NULL, &chk);
	ck_archive_result_clear(&chk);
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		return ck_err_set(CK_E_CRYPTO, "the manifest signature given "
		    "is not usable: %s", msg);
	}
	return finish_write(w, manifest, manifest_len, p7s, p7s_len,
	    archive_sha256);
}

void
ck_archive_writer_free(struct ck_archive_writer *w)
{
	if (w == NULL)
		return;
	copier_stop(w);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->cbuf);
	close_cms_chain(w, 0);
	BIO_free(w->sink_bio);
	CMS_ContentInfo_free(w->cms);
	if (w->spool >= 0)
		close(w->spool);
	ZSTD_freeCCtx(w->zc);
	EVP_MD_CTX_free(w->part_md);
	EVP_MD_CTX_free(w->sink.md);
	free(w->zbuf);
	free(w->tmpdir);
	free(w);
}

/* ---------------------------------------------------------------------
 * Reading: a buffered source that hashes every byte it takes in.
 */

struct in_src {
	long (*read)(void *arg, void *buf, size_t len);	/* -1: error */
	void *arg;
	unsigned char *buf;
	size_t pos, len;
	uint64_t off;		/* offset of buf[pos] in the file */
	int eof;
	EVP_MD_CTX *md;		/* may be NULL */
	uint64_t total;
};

/* 1 if bytes are buffered, 0 at the end, or a CK_E* error. */
static int
in_fill(struct in_src *s)
{
	long n;

	if (s->pos < s->len)
		return 1;
	if (s->eof)
		return 0;
	n = s->read(s->arg, s->buf, IO_CHUNK);
	if (n < 0)
		return CK_E_IO;
	if (n == 0) {
		s->eof = 1;
		return 0;
	}
	if (s->md != NULL && EVP_DigestUpdate(s->md, s->buf, (size_t)n) != 1)
		return ck_err_ssl(CK_E_INTERNAL, "SHA-256");
	s->total += (uint64_t)n;
	s->pos = 0;
	s->len = (size_t)n;
	return 1;
}

/* ---------------------------------------------------------------------
 * The envelope's outer BER.
 */

enum { C_PRIM, C_DEF, C_INDEF };

struct env {
	struct in_src in;
	int err;		/* CK_E* of a failure inside a callback */

	/* open containers: ContentInfo, [0], EnvelopedData, ECI */
	int depth;
	int indef[4];
	uint64_t end[4];	/* for definite ones */

	/* kept header elements, raw */
	unsigned char *hdr;
	size_t hdrlen, hdrcap;
	size_t ver_off, ver_len, orig_off, orig_len, ri_off, ri_len;
	size_t ct_off, ct_len, alg_off, alg_len;

	/* the encrypted content */
	int cmode;
	uint64_t chunk_left;
	uint64_t cend;		/* C_DEF: where the content ends */
	int cdone;
	uint64_t content_len;
	int in_body;		/* the header was parsed */
};

struct ber {
	unsigned char tag;
	int indef;
	uint64_t len;
	unsigned char raw[10];	/* the identifier and length octets */
	unsigned rawlen;
};

static int
env_truncated(struct env *e, const char *where)
{
	return ck_err_set(CK_E_TAMPER, "the backup set is truncated: it ends "
	    "in %s (after %llu bytes)", where,
	    (unsigned long long)e->in.off);
}

static int
env_byte(struct env *e, unsigned char *c, const char *where)
{
	int rc;

	if ((rc = in_fill(&e->in)) < 0)
		return rc;
	if (rc == 0)
		return env_truncated(e, where);
	*c = e->in.buf[e->in.pos++];
	e->in.off++;
	return 0;
}

/* Copy N bytes to DST (NULL: discard). */
static int
env_bytes(struct env *e, unsigned char *dst, uint64_t n, const char *where)
{
	size_t k;
	int rc;

	while (n > 0) {
		if ((rc = in_fill(&e->in)) < 0)
			return rc;
		if (rc == 0)
			return env_truncated(e, where);
		k = e->in.len - e->in.pos;
		if (k > n)
			k = (size_t)n;
		if (dst != NULL) {
			memcpy(dst, e->in.buf + e->in.pos, k);
			dst += k;
		}
		e->in.pos += k;
		e->in.off += k;
		n -= k;
	}
	return 0;
}

/* Innermost definite end among the open containers. */
static uint64_t
env_limit(const struct env *e)
{
	uint64_t lim = UINT64_MAX;

	for (int i = 0; i < e->depth; i++)
		if (!e->indef[i] && e->end[i] < lim)
			lim = e->end[i];
	return lim;
}

/* Malformed BER: before the content, the file is not a set; from the
 * content on, it is a damaged one. */
static int
env_bad(const struct env *e, const char *what)
{
	if (e->in_body)
		return ck_err_set(CK_E_TAMPER, "the backup set is corrupt: %s "
		    "(at byte %llu)", what, (unsigned long long)e->in.off);
	return ck_err_set(CK_E_PARSE, "not a certkeep backup set: %s", what);
}

/* Identifier and length octets. Single-octet tags only (all CMS needs);
 * indefinite length only for constructed encodings; a definite element
 * must fit in LIMIT. */
static int
ber_hdr(struct env *e, struct ber *b, uint64_t limit, const char *where)
{
	unsigned char c = 0;
	unsigned n, i;
	uint64_t start = e->in.off;
	int rc;

	memset(b, 0, sizeof(*b));
	if ((rc = env_byte(e, &c, where)) != 0)
		return rc;
	b->tag = c;
	b->raw[b->rawlen++] = c;
	if ((c & 0x1f) == 0x1f)
		return env_bad(e, "multi-octet BER tag");
	if ((rc = env_byte(e, &c, where)) != 0)
		return rc;
	b->raw[b->rawlen++] = c;
	if (c == 0x80) {
		if (!(b->tag & 0x20))
			return env_bad(e, "indefinite length on a primitive "
			    "element");
		b->indef = 1;
		if (e->in.off > limit)
			return env_bad(e, "a BER element overruns its container");
		return 0;
	}
	if (c < 0x80) {
		b->len = c;
	} else {
		n = c & 0x7f;
		if (n > 8)
			return env_bad(e, "BER length too long");
		for (i = 0; i < n; i++) {
			if ((rc = env_byte(e, &c, where)) != 0)
				return rc;
			b->raw[b->rawlen++] = c;
			b->len = (b->len << 8) | c;
			if (b->len > BER_LEN_MAX)
				return env_bad(e, "absurd BER length");
		}
	}
	if (b->tag == 0x00 && b->len != 0)
		return env_bad(e, "malformed end-of-contents octets");
	if (start >= limit || e->in.off > limit || b->len > limit - e->in.off)
		return env_bad(e, "a BER element overruns its container");
	return 0;
}

static int
hdr_append(struct env *e, const void *p, size_t n)
{
	unsigned char *nb;
	size_t ncap;

	if (n > ENV_HDR_MAX - e->hdrlen)
		return ck_err_set(CK_E_TOOBIG, "not a certkeep backup set: the "
		    "envelope's header is larger than %d bytes", ENV_HDR_MAX);
	if (e->hdrlen + n > e->hdrcap) {
		ncap = e->hdrcap == 0 ? 4096 : e->hdrcap;
		while (ncap < e->hdrlen + n)
			ncap *= 2;
		if (ncap > ENV_HDR_MAX)
			ncap = ENV_HDR_MAX;
		if ((nb = realloc(e->hdr, ncap)) == NULL)
			return CK_E_NOMEM;
		e->hdr = nb;
		e->hdrcap = ncap;
	}
	if (p != NULL)
		memcpy(e->hdr + e->hdrlen, p, n);
	e->hdrlen += n;
	return 0;
}

/* Keep a whole element whose identifier and length were read into B. */
static int
capture(struct env *e, const struct ber *b, int depth, const char *where)
{
	struct ber c;
	size_t at;
	int rc;

	if (depth > BER_DEPTH_MAX)
		return env_bad(e, "BER nested too deeply");
	if ((rc = hdr_append(e, b->raw, b->rawlen)) != 0)
		return rc;
	if (!b->indef) {
		if (b->len > ENV_HDR_MAX)
			return ck_err_set(CK_E_TOOBIG, "not a certkeep backup "
			    "set: an envelope header element of %llu bytes",
			    (unsigned long long)b->len);
		at = e->hdrlen;
		if ((rc = hdr_append(e, NULL, (size_t)b->len)) != 0)
			return rc;
		return env_bytes(e, e->hdr + at, b->len, where);
	}
	for (;;) {
		if ((rc = ber_hdr(e, &c, env_limit(e), where)) != 0)
			return rc;
		if (c.tag == 0x00)
			return hdr_append(e, c.raw, c.rawlen);
		if ((rc = capture(e, &c, depth + 1, where)) != 0)
			return rc;
	}
}

/* Read an element that must have tag TAG and keep it. */
static int
keep(struct env *e, unsigned char tag, size_t *off, size_t *len,
    const char *what)
{
	struct ber b;
	int rc;

	if ((rc = ber_hdr(e, &b, env_limit(e), what)) != 0)
		return rc;
	if (b.tag != tag)
		return env_bad(e, what);
	*off = e->hdrlen;
	if ((rc = capture(e, &b, 0, what)) != 0)
		return rc;
	*len = e->hdrlen - *off;
	return 0;
}

static int
open_container(struct env *e, const struct ber *b)
{
	if (e->depth >= 4)
		return ck_err_set(CK_E_INTERNAL, "envelope parser depth");
	e->indef[e->depth] = b->indef;
	e->end[e->depth] = b->indef ? 0 : e->in.off + b->len;
	e->depth++;
	return 0;
}

/* The header up to the first octet of encrypted content. */
static int
env_parse_header(struct env *e)
{
	static const char *const types[] = {
		NULL, "data", "signedData", "envelopedData",
		"signedAndEnvelopedData", "digestedData", "encryptedData"
	};
	unsigned char oid[sizeof(oid_enveloped)];
	struct ber b;
	int rc;

	if ((rc = ber_hdr(e, &b, UINT64_MAX, "its first bytes")) != 0)
		return rc == CK_E_TAMPER && e->in.off == 0 ?
		    ck_err_set(CK_E_PARSE, "not a certkeep backup set: the "
		    "file is empty") : rc;
	if (b.tag != 0x30)
		return env_bad(e, "not a CMS (DER/BER) file");
	if ((rc = open_container(e, &b)) != 0)
		return rc;
	if ((rc = ber_hdr(e, &b, env_limit(e), "the content type")) != 0)
		return rc;
	if (b.tag != 0x06 || b.len != sizeof(oid) - 2)
		return env_bad(e, "not a CMS ContentInfo");
	memcpy(oid, b.raw, 2);
	if ((rc = env_bytes(e, oid + 2, b.len, "the content type")) != 0)
		return rc;
	if (memcmp(oid, oid_enveloped, sizeof(oid)) != 0) {
		unsigned t = oid[sizeof(oid) - 1];

		if (memcmp(oid, oid_pkcs7_prefix, sizeof(oid_pkcs7_prefix))
		    == 0 && t >= 1 && t <= 6)
			return ck_err_set(CK_E_PARSE, "not a certkeep backup "
			    "set: a CMS %s, not an EnvelopedData", types[t]);
		return env_bad(e, "CMS content type is not EnvelopedData");
	}
	if ((rc = ber_hdr(e, &b, env_limit(e), "the envelope")) != 0)
		return rc;
	if (b.tag != 0xa0 || (rc = open_container(e, &b)) != 0)
		return rc != 0 ? rc : env_bad(e, "malformed ContentInfo");
	if ((rc = ber_hdr(e, &b, env_limit(e), "the envelope")) != 0)
		return rc;
	if (b.tag != 0x30 || (rc = open_container(e, &b)) != 0)
		return rc != 0 ? rc : env_bad(e, "malformed EnvelopedData");
	if ((rc = keep(e, 0x02, &e->ver_off, &e->ver_len,
	    "EnvelopedData without a version")) != 0)
		return rc;
	if ((rc = ber_hdr(e, &b, env_limit(e), "the recipients")) != 0)
		return rc;
	if (b.tag == 0xa0) {	/* originatorInfo */
		e->orig_off = e->hdrlen;
		if ((rc = capture(e, &b, 0, "originatorInfo")) != 0)
			return rc;
		e->orig_len = e->hdrlen - e->orig_off;
		if ((rc = ber_hdr(e, &b, env_limit(e), "the recipients")) != 0)
			return rc;
	}
	if (b.tag != 0x31)
		return env_bad(e, "EnvelopedData without recipientInfos");
	e->ri_off = e->hdrlen;
	if ((rc = capture(e, &b, 0, "the recipients")) != 0)
		return rc;
	e->ri_len = e->hdrlen - e->ri_off;
	if ((rc = ber_hdr(e, &b, env_limit(e), "the content info")) != 0)
		return rc;
	if (b.tag != 0x30 || (rc = open_container(e, &b)) != 0)
		return rc != 0 ? rc : env_bad(e, "malformed EncryptedContentInfo");
	if ((rc = keep(e, 0x06, &e->ct_off, &e->ct_len,
	    "EncryptedContentInfo without a content type")) != 0)
		return rc;
	if (e->ct_len != sizeof(oid_data) ||
	    memcmp(e->hdr + e->ct_off, oid_data, sizeof(oid_data)) != 0)
		return env_bad(e, "the encrypted content is not of type data");
	if ((rc = keep(e, 0x30, &e->alg_off, &e->alg_len,
	    "EncryptedContentInfo without an algorithm")) != 0)
		return rc;

	/* [0] IMPLICIT OCTET STRING: primitive, or chunks. */
	if ((rc = ber_hdr(e, &b, env_limit(e), "the encrypted content")) != 0)
		return rc;
	if (b.tag == 0x80) {
		e->cmode = C_PRIM;
		e->chunk_left = b.len;
		e->cdone = b.len == 0;
		e->in_body = 1;
	} else if (b.tag == 0xa0) {
		e->cmode = b.indef ? C_INDEF : C_DEF;
		e->cend = b.indef ? 0 : e->in.off + b.len;
		e->in_body = 1;
	} else if (b.tag == 0x00 || b.tag == 0xa1) {
		return env_bad(e, "the encrypted content is detached");
	} else {
		return env_bad(e, "unexpected element in EncryptedContentInfo");
	}
	return 0;
}

/* The concatenated encrypted content: bytes, 0 at its end, -1 on error
 * (recorded in e->err). */
static long
env_content_read(struct env *e, void *buf, size_t len)
{
	struct ber b;
	size_t k;
	int rc;

	if (e->err != 0)
		return -1;
	while (e->chunk_left == 0 && !e->cdone) {
		if (e->cmode == C_PRIM) {
			e->cdone = 1;
			break;
		}
		if (e->cmode == C_DEF && e->in.off == e->cend) {
			e->cdone = 1;
			break;
		}
		rc = ber_hdr(e, &b, e->cmode == C_DEF ? e->cend : env_limit(e),
		    "the encrypted content");
		if (rc != 0)
			goto fail;
		if (b.tag == 0x00 && e->cmode == C_INDEF) {
			e->cdone = 1;
			break;
		}
		if (b.tag != 0x04) {
			rc = env_bad(e, "the encrypted content holds something "
			    "other than OCTET STRING chunks");
			goto fail;
		}
		e->chunk_left = b.len;
	}
	if (e->cdone || len == 0)
		return 0;
	if ((rc = in_fill(&e->in)) < 0)
		goto fail;
	if (rc == 0) {
		rc = env_truncated(e, "the encrypted content");
		goto fail;
	}
	k = e->in.len - e->in.pos;
	if (k > len)
		k = len;
	if (k > e->chunk_left)
		k = (size_t)e->chunk_left;
	memcpy(buf, e->in.buf + e->in.pos, k);
	e->in.pos += k;
	e->in.off += k;
	e->chunk_left -= k;
	e->content_len += k;
	if (e->chunk_left == 0 && e->cmode == C_PRIM)
		e->cdone = 1;
	return (long)k;
fail:
	e->err = rc;
	return -1;
}

/* After the content: only the end of every container, then the end of
 * the file. */
static int
env_parse_tail(struct env *e)
{
	static const char *const names[] = {
		"ContentInfo", "the envelope", "EnvelopedData",
		"EncryptedContentInfo"
	};
	struct ber b;
	int rc;

	if (!e->cdone)
		return ck_err_set(CK_E_TAMPER, "the backup set's content ends "
		    "before its encrypted content");
	while (e->depth > 0) {
		int i = e->depth - 1;

		if (e->indef[i]) {
			if ((rc = ber_hdr(e, &b, env_limit(e), names[i])) != 0)
				return rc;
			if (b.tag == 0xa1 && i == 2)
				return ck_err_set(CK_E_TAMPER, "the backup set "
				    "has unprotected attributes after its "
				    "content; a set has none");
			if (b.tag != 0x00)
				return ck_err_set(CK_E_TAMPER, "unexpected data "
				    "after the encrypted content (at byte "
				    "%llu)", (unsigned long long)e->in.off);
		} else if (e->in.off != e->end[i]) {
			return ck_err_set(CK_E_TAMPER, "unexpected data after "
			    "the encrypted content (at byte %llu)",
			    (unsigned long long)e->in.off);
		}
		e->depth--;
	}
	if ((rc = in_fill(&e->in)) < 0)
		return rc;
	if (rc > 0) {
		/* Count what follows for the message; it is hashed too. */
		uint64_t extra = 0;

		while ((rc = in_fill(&e->in)) > 0) {
			extra += e->in.len - e->in.pos;
			e->in.off += e->in.len - e->in.pos;
			e->in.pos = e->in.len;
		}
		return ck_err_set(CK_E_TAMPER, "%llu bytes of unexpected data "
		    "after the end of the CMS structure",
		    (unsigned long long)extra);
	}
	return 0;
}

/* One definite-length TLV from [*P, END): 0, 1 if indefinite, -1 if
 * malformed. */
static int
der_next(const unsigned char **p, const unsigned char *end,
    unsigned char *tag, const unsigned char **val, size_t *len)
{
	const unsigned char *q = *p;
	size_t l = 0, n;

	if (end - q < 2)
		return -1;
	*tag = *q++;
	if ((*tag & 0x1f) == 0x1f)
		return -1;
	if (*q == 0x80)
		return 1;
	if (*q < 0x80) {
		l = *q++;
	} else {
		n = *q++ & 0x7f;
		if (n > sizeof(size_t) - 1 || (size_t)(end - q) < n)
			return -1;
		while (n-- > 0)
			l = (l << 8) | *q++;
	}
	if ((size_t)(end - q) < l)
		return -1;
	*val = q;
	*len = l;
	*p = q + l;
	return 0;
}

/* The version numbers are not covered by any key or MAC, so check that
 * they are the ones RFC 5652 (6.1, 6.2) prescribes for the recipients
 * present: a set whose header was altered is refused rather than read. */
static int
env_check_versions(struct env *e)
{
	const unsigned char *p, *end, *ri, *riend, *v, *q, *iv, *rid;
	unsigned char tag, t2;
	size_t vl, il, rl;
	int nonzero = 0, v3 = 0, want, ver, rc;

	p = e->hdr + e->ri_off;
	end = p + e->ri_len;
	if ((rc = der_next(&p, end, &tag, &ri, &vl)) == 1)
		return 0;	/* BER from another encoder: not checked */
	if (rc != 0)
		goto bad;
	riend = ri + vl;
	while (ri < riend) {
		if ((rc = der_next(&ri, riend, &tag, &v, &vl)) == 1)
			return 0;
		if (rc != 0)
			goto bad;
		q = v;
		if (tag == 0xa4) {	/* other recipient info: no version */
			v3 = 1;
			continue;
		}
		if (der_next(&q, v + vl, &t2, &iv, &il) != 0 || t2 != 0x02 ||
		    il != 1)
			goto bad;
		ver = iv[0];
		switch (tag) {
		case 0x30:	/* key transport: by rid form */
			if (der_next(&q, v + vl, &t2, &rid, &rl) != 0)
				goto bad;
			want = t2 == 0x80 ? 2 : 0;
			break;
		case 0xa1:	/* key agreement */
			want = 3;
			break;
		case 0xa2:	/* key encryption key */
			want = 4;
			break;
		case 0xa3:	/* password */
			want = 0;
			v3 = 1;
			break;
		default:
			goto bad;
		}
		if (ver != want)
			goto bad;
		nonzero |= ver != 0;
	}
	p = e->hdr + e->ver_off;
	if (e->ver_len != 3 || p[1] != 1)
		goto bad;
	ver = p[2];
	want = v3 ? 3 : (e->orig_len > 0 || nonzero) ? 2 : 0;
	if (ver == want || (e->orig_len > 0 && ver >= want && ver <= 4))
		return 0;
bad:
	return ck_err_set(CK_E_TAMPER, "the backup set's envelope header is "
	    "inconsistent (wrong version numbers or malformed recipients): "
	    "it was altered or is corrupt");
}

static unsigned char *
der_hdr(unsigned char *p, unsigned char tag, size_t len)
{
	*p++ = tag;
	if (len < 0x80) {
		*p++ = (unsigned char)len;
	} else {
		unsigned n = 0;
		size_t t = len;

		while (t > 0) {
			n++;
			t >>= 8;
		}
		*p++ = (unsigned char)(0x80 | n);
		while (n-- > 0)
			*p++ = (unsigned char)(len >> (8 * n));
	}
	return p;
}

static size_t
der_size(size_t len)
{
	size_t n = 2;

	if (len >= 0x80)
		for (size_t t = len; t > 0; t >>= 8)
			n++;
	return n + len;
}

/* A ContentInfo holding the kept header and an empty content. */
static int
env_reencode(struct env *e, unsigned char **out, size_t *outlen)
{
	static const unsigned char empty[] = { 0x80, 0x00 };
	size_t eci_in, env_in, ctx_in, ci_in, total;
	unsigned char *buf, *p;

	eci_in = e->ct_len + e->alg_len + sizeof(empty);
	env_in = e->ver_len + e->orig_len + e->ri_len + der_size(eci_in);
	ctx_in = der_size(env_in);
	ci_in = sizeof(oid_enveloped) + der_size(ctx_in);
	total = der_size(ci_in);
	if ((buf = malloc(total)) == NULL)
		return CK_E_NOMEM;
	p = der_hdr(buf, 0x30, ci_in);
	memcpy(p, oid_enveloped, sizeof(oid_enveloped));
	p += sizeof(oid_enveloped);
	p = der_hdr(p, 0xa0, ctx_in);
	p = der_hdr(p, 0x30, env_in);
	memcpy(p, e->hdr + e->ver_off, e->ver_len);
	p += e->ver_len;
	if (e->orig_len > 0)
		memcpy(p, e->hdr + e->orig_off, e->orig_len);
	p += e->orig_len;
	memcpy(p, e->hdr + e->ri_off, e->ri_len);
	p += e->ri_len;
	p = der_hdr(p, 0x30, eci_in);
	memcpy(p, e->hdr + e->ct_off, e->ct_len);
	p += e->ct_len;
	memcpy(p, e->hdr + e->alg_off, e->alg_len);
	p += e->alg_len;
	memcpy(p, empty, sizeof(empty));
	p += sizeof(empty);
	if ((size_t)(p - buf) != total) {	/* defensive */
		free(buf);
		return ck_err_set(CK_E_INTERNAL, "envelope re-encoding");
	}
	*out = buf;
	*outlen = total;
	return 0;
}

static int
env_init(struct env *e, long (*rd)(void *, void *, size_t), void *arg,
    int hash)
{
	memset(e, 0, sizeof(*e));
	e->in.read = rd;
	e->in.arg = arg;
	if ((e->in.buf = malloc(IO_CHUNK)) == NULL)
		return CK_E_NOMEM;
	if (hash && ((e->in.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(e->in.md, EVP_sha256(), NULL) != 1))
		return ck_err_ssl(CK_E_NOMEM, "SHA-256");
	return 0;
}

static void
env_clear(struct env *e)
{
	free(e->in.buf);
	EVP_MD_CTX_free(e->in.md);
	free(e->hdr);
	memset(e, 0, sizeof(*e));
}

struct mem_src {
	const unsigned char *p;
	size_t left;
};

static long
mem_read(void *arg, void *buf, size_t len)
{
	struct mem_src *m = arg;

	if (len > m->left)
		len = m->left;
	memcpy(buf, m->p, len);
	m->p += len;
	m->left -= len;
	return (long)len;
}

int
ck_archive_envelope_check(const void *buf, size_t len, unsigned char **hdr,
    size_t *hdrlen, uint64_t *content_len)
{
	struct mem_src m = { buf, len };
	struct env e;
	unsigned char scratch[4096];
	long n;
	int rc;

	if ((rc = env_init(&e, mem_read, &m, 0)) != 0)
		goto out;
	if ((rc = env_parse_header(&e)) != 0 ||
	    (rc = env_check_versions(&e)) != 0)
		goto out;
	while ((n = env_content_read(&e, scratch, sizeof(scratch))) > 0)
		;
	if (n < 0) {
		rc = e.err;
		goto out;
	}
	if ((rc = env_parse_tail(&e)) != 0)
		goto out;
	if (hdr != NULL && (rc = env_reencode(&e, hdr, hdrlen)) != 0)
		goto out;
	if (content_len != NULL)
		*content_len = e.content_len;
out:
	env_clear(&e);
	return rc;
}

/* ---------------------------------------------------------------------
 * Reader.
 */

struct rd {
	struct env env;
	int fd;
	BIO *src;		/* the encrypted content */
	BIO *cont;		/* plaintext out (cipher BIO over src) */
	int err;
	struct ck_tar_io tio;
	struct ck_tar_reader tr;
	ZSTD_DCtx *dz;
	unsigned char *inbuf, *outbuf;
	size_t outsz;
	EVP_MD_CTX *md;
};

static long
fd_read(void *arg, void *buf, size_t len)
{
	struct rd *r = arg;
	long n = read_some(r->fd, buf, len);

	if (n < 0)
		ck_err_set(CK_E_IO, "cannot read the backup set: %s",
		    strerror(errno));
	return n;
}

static long
rd_tar_read(void *arg, void *buf, size_t len)
{
	struct rd *r = arg;
	int n;

	if (r->err != 0)
		return -1;
	if (len > INT_MAX)
		len = INT_MAX;
	n = BIO_read(r->cont, buf, (int)len);
	if (r->env.err != 0) {
		r->err = r->env.err;
		return -1;
	}
	if (n > 0)
		return n;
	if (n < 0) {
		r->err = ck_err_ssl(CK_E_TAMPER, "decrypting the backup set "
		    "failed");
		return -1;
	}
	if (BIO_get_cipher_status(r->cont) <= 0) {
		r->err = ck_err_ssl(CK_E_TAMPER, "the backup set's encrypted "
		    "content does not decrypt cleanly (bad padding in the "
		    "last block): it was altered or is corrupt");
		return -1;
	}
	return 0;
}

/* A failure seen by the tar reader: keep the precise cause (truncation,
 * padding) if the decrypting layer found one, otherwise say it is a tar
 * fault inside the decrypted content. */
static int
rd_tar_fault(struct rd *r, int rc)
{
	char msg[512];

	if (r->err != 0)
		return r->err;
	if (rc == CK_E_NOMEM)
		return rc;
	snprintf(msg, sizeof(msg), "%s", ck_err_msg());
	return ck_err_set(CK_E_TAMPER, "the backup set is corrupt: %s", msg);
}

static int
key_usable(EVP_PKEY *k)
{
	return EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "EC");
}

/* Say clearly when the key is not one of the recipients. */
static int
rd_check_recipient(CMS_ContentInfo *cms, EVP_PKEY *rkey, X509 *rcert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	STACK_OF(CMS_RecipientEncryptedKey) *reks;
	char subj[256] = "?";
	int i, j, n;

	if (!key_usable(rkey))
		return ck_err_set(CK_E_CRYPTO, "this backup is not encrypted "
		    "to the given key: a %s key cannot be a recipient",
		    EVP_PKEY_get0_type_name(rkey));
	if (rcert == NULL)
		return 0;
	X509_NAME_oneline(X509_get_subject_name(rcert), subj, sizeof(subj));
	if (X509_check_private_key(rcert, rkey) != 1) {
		ERR_clear_error();
		return ck_err_set(CK_E_INVAL, "the key does not belong to the "
		    "certificate %s", subj);
	}
	n = sk_CMS_RecipientInfo_num(ris);
	for (i = 0; i < n; i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		switch (CMS_RecipientInfo_type(ri)) {
		case CMS_RECIPINFO_TRANS:
			if (CMS_RecipientInfo_ktri_cert_cmp(ri, rcert) == 0)
				return 0;
			break;
		case CMS_RECIPINFO_AGREE:
			reks = CMS_RecipientInfo_kari_get0_reks(ri);
			for (j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks);
			    j++)
				if (CMS_RecipientEncryptedKey_cert_cmp(
				    sk_CMS_RecipientEncryptedKey_value(reks, j),
				    rcert) == 0)
					return 0;
			break;
		default:
			break;
		}
	}
	ERR_clear_error();
	return ck_err_set(CK_E_CRYPTO, "this backup is not encrypted to the "
	    "given key: %s is not among its %d recipient(s)", subj, n);
}

/* Parse the header, decrypt the content key, set up the plaintext BIO. */
static int
rd_open(struct rd *r, EVP_PKEY *rkey, X509 *rcert, CMS_ContentInfo **cmsp)
{
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t derlen;
	int rc;

	if ((rc = env_parse_header(&r->env)) != 0 ||
	    (rc = env_check_versions(&r->env)) != 0 ||
	    (rc = env_reencode(&r->env, &der, &derlen)) != 0)
		goto out;
	p = der;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)derlen)) == NULL ||
	    p != der + derlen) {
		rc = ck_err_ssl(CK_E_PARSE, "not a certkeep backup set: "
		    "malformed CMS EnvelopedData header");
		goto out;
	}
	if ((rc = rd_check_recipient(cms, rkey, rcert)) != 0)
		goto out;
	/* Report a key that decrypts no recipient instead of going on with
	 * a random content key (OpenSSL's default against padding oracles,
	 * which do not apply to reading one's own file). */
	if (CMS_decrypt(cms, NULL, NULL, NULL, NULL,
	    CMS_BINARY | CMS_DEBUG_DECRYPT) != 1)
		ERR_clear_error();	/* only flags are set: cannot fail */
	if (CMS_decrypt_set1_pkey_and_peer(cms, rkey, rcert, NULL) != 1) {
		rc = ck_err_ssl(CK_E_CRYPTO, "this backup is not encrypted to "
		    "the given key (no recipient could be decrypted with it)");
		goto out;
	}
	if ((r->src = bio_with(&src_method, &r->env)) == NULL) {
		rc = ck_err_ssl(CK_E_NOMEM, "BIO");
		goto out;
	}
	if ((r->cont = CMS_dataInit(cms, r->src)) == NULL) {
		rc = ck_err_ssl(CK_E_CRYPTO, "cannot start decrypting the "
		    "backup set");
		goto out;
	}
	*cmsp = cms;
	cms = NULL;
	rc = 0;
out:
	free(der);
	CMS_ContentInfo_free(cms);
	return rc;
}

static int
cb_stop(int rc)
{
	if (rc < 0)
		return rc;
	return ck_err_set(CK_E_STATE, "reading the backup set was stopped "
	    "by the caller");
}

static int
rd_part(struct rd *r, const struct ck_archive_reader_cb *cb,
    struct ck_archive_part *info)
{
	ZSTD_inBuffer in;
	ZSTD_outBuffer zo;
	size_t zr = 1;
	long n;
	int rc;

	if (cb != NULL && cb->part_begin != NULL &&
	    (rc = cb->part_begin(cb->arg, info->name)) != 0)
		return cb_stop(rc);
	if (EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1 ||
	    ZSTD_isError(ZSTD_DCtx_reset(r->dz, ZSTD_reset_session_only)))
		return ck_err_set(CK_E_INTERNAL, "digest or zstd setup");
	for (;;) {
		n = ck_tar_read_data(&r->tr, r->inbuf, IO_CHUNK);
		if (n < 0)
			return rd_tar_fault(r, CK_E_PARSE);
		if (n == 0)
			break;
		if (EVP_DigestUpdate(r->md, r->inbuf, (size_t)n) != 1)
			return ck_err_ssl(CK_E_INTERNAL, "SHA-256");
		in.src = r->inbuf;
		in.size = (size_t)n;
		in.pos = 0;
		do {
			size_t before = in.pos, ret;

			zo.dst = r->outbuf;
			zo.size = r->outsz;
			zo.pos = 0;
			ret = ZSTD_decompressStream(r->dz, &zo, &in);
			if (ZSTD_isError(ret))
				return ck_err_set(CK_E_TAMPER, "the backup set "
				    "is corrupt: part %s: zstd: %s", info->name,
				    ZSTD_getErrorName(ret));
			/* A frame that ended as the output filled up is
			 * followed by a call that does nothing and asks for
			 * the next frame: that call does not count. */
			if (zo.pos > 0 || in.pos > before)
				zr = ret;
			info->raw_size += zo.pos;
			if (zo.pos > 0 && cb != NULL && cb->part_data != NULL &&
			    (rc = cb->part_data(cb->arg, r->outbuf, zo.pos))
			    != 0)
				return cb_stop(rc);
		} while (in.pos < in.size || zo.pos == zo.size);
	}
	if (info->size == 0)
		return ck_err_set(CK_E_TAMPER, "the backup set is corrupt: "
		    "part %s is empty (not zstd data)", info->name);
	if (zr != 0)
		return ck_err_set(CK_E_TAMPER, "the backup set is corrupt: "
		    "part %s ends inside a zstd frame", info->name);
	if (EVP_DigestFinal_ex(r->md, info->sha256, NULL) != 1)
		return ck_err_ssl(CK_E_INTERNAL, "SHA-256");
	if (cb != NULL && cb->part_end != NULL &&
	    (rc = cb->part_end(cb->arg, info)) != 0)
		return cb_stop(rc);
	return 0;
}

/* A small entry, read whole. */
static int
rd_whole(struct rd *r, uint64_t size, uint64_t max, const char *name,
    unsigned char **out)
{
	unsigned char *buf;
	size_t got = 0;
	long n;

	if (size > max)
		return ck_err_set(CK_E_TOOBIG, "the backup set's %s is larger "
		    "than %llu bytes", name, (unsigned long long)max);
	if ((buf = malloc((size_t)size + 1)) == NULL)
		return CK_E_NOMEM;
	while (got < size) {
		n = ck_tar_read_data(&r->tr, buf + got, (size_t)size - got);
		if (n <= 0) {
			free(buf);
			return rd_tar_fault(r, CK_E_PARSE);
		}
		got += (size_t)n;
	}
	buf[size] = '\0';
	*out = buf;
	return 0;
}

static int
verify_manifest(const unsigned char *p7s, size_t p7slen,
    const unsigned char *json, size_t jsonlen, STACK_OF(X509) *trusted,
    struct ck_archive_result *res)
{
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *signers = NULL, *certs = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *xs = NULL;
	BIO *out = NULL;
	const unsigned char *p = p7s;
	char *content = NULL;
	ASN1_OCTET_STRING **pos;
	X509 *signer;
	char subj[256] = "?";
	long clen;
	int i, rc = CK_E_BADSIG;

	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)p7slen)) == NULL ||
	    p != p7s + p7slen) {
		rc = ck_err_ssl(CK_E_TAMPER, "the backup set's manifest.p7s is "
		    "not a CMS structure");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		rc = ck_err_set(CK_E_TAMPER, "the backup set's manifest.p7s is "
		    "not CMS SignedData");
		goto out;
	}
	if ((pos = CMS_get0_content(cms)) == NULL || *pos == NULL) {
		rc = ck_err_set(CK_E_TAMPER, "the backup set's manifest.p7s "
		    "does not hold the manifest (detached signature)");
		goto out;
	}
	if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) != 1) {
		rc = ck_err_set(CK_E_BADSIG, "the manifest must have exactly "
		    "one signer");
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL) {
		rc = CK_E_NOMEM;
		goto out;
	}
	/* The signature first, the signer's chain separately after, so a
	 * failure says which. */
	if (CMS_verify(cms, NULL, NULL, NULL, out,
	    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		rc = ck_err_ssl(CK_E_BADSIG, "the manifest signature in the "
		    "backup set does not verify");
		goto out;
	}
	if ((signers = CMS_get0_signers(cms)) == NULL ||
	    sk_X509_num(signers) != 1 ||
	    (signer = sk_X509_value(signers, 0)) == NULL) {
		rc = ck_err_ssl(CK_E_BADSIG, "the manifest's signer certificate "
		    "is missing");
		goto out;
	}
	X509_NAME_oneline(X509_get_subject_name(signer), subj, sizeof(subj));
	if (trusted != NULL) {
		/* Every trusted certificate is an anchor (the CA need not be
		 * a root), and time is not checked: a set must stay
		 * restorable after the CA certificate expires. Nor is a
		 * purpose: the CA signs its own manifest. */
		if ((store = X509_STORE_new()) == NULL ||
		    (xs = X509_STORE_CTX_new()) == NULL) {
			rc = CK_E_NOMEM;
			goto out;
		}
		for (i = 0; i < sk_X509_num(trusted); i++)
			if (X509_STORE_add_cert(store,
			    sk_X509_value(trusted, i)) != 1) {
				ERR_clear_error();	/* a duplicate */
			}
		X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN |
		    X509_V_FLAG_NO_CHECK_TIME);
		certs = CMS_get1_certs(cms);
		if (X509_STORE_CTX_init(xs, store, signer, certs) != 1) {
			rc = ck_err_ssl(CK_E_INTERNAL, "X509_STORE_CTX_init");
			goto out;
		}
		if (X509_verify_cert(xs) != 1) {
			rc = ck_err_set(CK_E_BADSIG, "the manifest is signed "
			    "by %s, which is not one of the trusted CA "
			    "certificates nor issued by one (%s)", subj,
			    X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(xs)));
			ERR_clear_error();
			goto out;
		}
	}
	clen = BIO_get_mem_data(out, &content);
	if (clen < 0 || (size_t)clen != jsonlen ||
	    (jsonlen > 0 && memcmp(content, json, jsonlen) != 0)) {
		rc = ck_err_set(CK_E_TAMPER, "manifest.json differs from the "
		    "signed manifest in manifest.p7s");
		goto out;
	}
	if ((res->manifest = malloc(jsonlen + 1)) == NULL) {
		rc = CK_E_NOMEM;
		goto out;
	}
	memcpy(res->manifest, json, jsonlen);
	res->manifest[jsonlen] = '\0';
	res->manifest_len = jsonlen;
	if (X509_up_ref(signer) != 1) {
		rc = CK_E_INTERNAL;
		goto out;
	}
	res->signer = signer;
	rc = 0;
out:
	sk_X509_free(signers);
	sk_X509_pop_free(certs, X509_free);
	X509_STORE_CTX_free(xs);
	X509_STORE_free(store);
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	return rc;
}

enum { ST_PARTS, ST_JSON, ST_P7S };

int
ck_archive_read(int fd, EVP_PKEY *rkey, X509 *rcert,
    STACK_OF(X509) *trusted, const struct ck_archive_reader_cb *cb,
    struct ck_archive_result *res)
{
	struct rd r;
	CMS_ContentInfo *cms = NULL;
	unsigned char *json = NULL, *p7s = NULL;
	size_t jsonlen = 0, p7slen = 0, i;
	char name[CK_ARCHIVE_NAME_MAX + 160];
	uint64_t size;
	int state = ST_PARTS, rc;

	if (res == NULL)
		return ck_err_set(CK_E_INVAL, "ck_archive_read: no result");
	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	if (fd < 0 || rkey == NULL)
		return ck_err_set(CK_E_INVAL, "ck_archive_read: bad arguments");
	r.fd = fd;
	r.tio.read = rd_tar_read;
	r.tio.arg = &r;
	r.tr.io = &r.tio;
	r.outsz = ZSTD_DStreamOutSize();
	if ((rc = env_init(&r.env, fd_read, &r, 1)) != 0)
		goto out;
	rc = CK_E_NOMEM;
	if ((r.dz = ZSTD_createDCtx()) == NULL ||
	    (r.inbuf = malloc(IO_CHUNK)) == NULL ||
	    (r.outbuf = malloc(r.outsz)) == NULL ||
	    (r.md = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(r.dz, ZSTD_d_windowLogMax,
	    ZSTD_WLOG_MAX))) {
		rc = ck_err_set(CK_E_INTERNAL, "zstd setup");
		goto out;
	}
	if ((rc = rd_open(&r, rkey, rcert, &cms)) != 0)
		goto out;

	for (;;) {
		rc = ck_tar_next(&r.tr, name, sizeof(name), &size);
		if (rc < 0) {
			rc = rd_tar_fault(&r, rc);
			goto out;
		}
		if (rc == 0)
			break;
		if (state == ST_P7S) {
			rc = ck_err_set(CK_E_TAMPER, "the backup set is corrupt:"
			    " entry \"%s\" after manifest.p7s (nothing may "
			    "follow the manifest)", name);
			goto out;
		}
		if (strncmp(name, PART_PREFIX, strlen(PART_PREFIX)) == 0) {
			struct ck_archive_part *pt;

			if (state != ST_PARTS) {
				rc = ck_err_set(CK_E_TAMPER, "the backup set is "
				    "corrupt: part %s after manifest.json",
				    name);
				goto out;
			}
			if (!part_name_valid(name)) {
				rc = ck_err_set(CK_E_TAMPER, "the backup set is "
				    "corrupt: bad part name \"%s\"", name);
				goto out;
			}
			for (i = 0; i < res->nparts; i++)
				if (strcmp(res->parts[i].name, name) == 0) {
					rc = ck_err_set(CK_E_TAMPER, "the backup "
					    "set is corrupt: part %s appears "
					    "twice", name);
					goto out;
				}
			if (res->nparts >= CK_ARCHIVE_MAX_PARTS) {
				rc = ck_err_set(CK_E_TAMPER, "the backup set is "
				    "corrupt: more than %d parts",
				    CK_ARCHIVE_MAX_PARTS);
				goto out;
			}
			pt = &res->parts[res->nparts];
			memset(pt, 0, sizeof(*pt));
			memcpy(pt->name, name, strlen(name) + 1);
			pt->size = size;
			if ((rc = rd_part(&r, cb, pt)) != 0)
				goto out;
			res->nparts++;
		} else if (strcmp(name, MANIFEST_JSON) == 0) {
			if (state != ST_PARTS) {
				rc = ck_err_set(CK_E_TAMPER, "the backup set is "
				    "corrupt: manifest.json appears twice");
				goto out;
			}
			if ((rc = rd_whole(&r, size, CK_ARCHIVE_MANIFEST_MAX,
			    name, &json)) != 0)
				goto out;
			jsonlen = (size_t)size;
			state = ST_JSON;
		} else if (strcmp(name, MANIFEST_P7S) == 0) {
			if (state != ST_JSON) {
				rc = ck_err_set(CK_E_TAMPER, "the backup set is "
				    "corrupt: manifest.p7s is not right after "
				    "manifest.json");
				goto out;
			}
			if ((rc = rd_whole(&r, size, P7S_MAX, name, &p7s)) != 0)
				goto out;
			p7slen = (size_t)size;
			state = ST_P7S;
		} else {
			rc = ck_err_set(CK_E_TAMPER, "the backup set is corrupt:"
			    " unexpected entry \"%s\"", name);
			goto out;
		}
		if ((rc = ck_tar_skip_pad(&r.tr)) != 0) {
			rc = rd_tar_fault(&r, rc);
			goto out;
		}
	}
	if (state != ST_P7S) {
		rc = ck_err_set(CK_E_TAMPER, "the backup set is corrupt: %s",
		    state == ST_PARTS ? "it has no manifest" :
		    "manifest.p7s is missing");
		goto out;
	}
	/* The tar reader read the plaintext to its end, so the cipher saw
	 * the end of the content; what follows it is checked here. */
	if ((rc = env_parse_tail(&r.env)) != 0)
		goto out;
	if ((rc = verify_manifest(p7s, p7slen, json, jsonlen, trusted,
	    res)) != 0)
		goto out;
	if (EVP_DigestFinal_ex(r.env.in.md, res->archive_sha256, NULL) != 1) {
		rc = ck_err_ssl(CK_E_INTERNAL, "SHA-256");
		goto out;
	}
	res->archive_size = r.env.in.total;
	rc = 0;
out:
	if (rc != 0)
		ck_archive_result_clear(res);
	if (r.cont != NULL) {
		/* Free the cipher BIO(s) down to our source. */
		BIO *b = r.cont, *next;

		while (b != NULL && b != r.src) {
			next = BIO_pop(b);
			BIO_free(b);
			b = next;
		}
	}
	BIO_free(r.src);
	CMS_ContentInfo_free(cms);
	env_clear(&r.env);
	ZSTD_freeDCtx(r.dz);
	EVP_MD_CTX_free(r.md);
	free(r.inbuf);
	free(r.outbuf);
	free(json);
	free(p7s);
	return rc;
}

void
ck_archive_result_clear(struct ck_archive_result *res)
{
	if (res == NULL)
		return;
	free(res->manifest);
	X509_free(res->signer);
	memset(res, 0, sizeof(*res));
}

int
ck_archive_file_sha256(int fd, unsigned char out[32], uint64_t *size)
{
	EVP_MD_CTX *md = NULL;
	unsigned char *buf = NULL;
	uint64_t total = 0;
	long n;
	int rc = CK_E_NOMEM;

	if ((buf = malloc(IO_CHUNK)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = ck_err_ssl(CK_E_INTERNAL, "SHA-256");
		goto out;
	}
	while ((n = read_some(fd, buf, IO_CHUNK)) > 0) {
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			rc = ck_err_ssl(CK_E_INTERNAL, "SHA-256");
			goto out;
		}
		total += (uint64_t)n;
	}
	if (n < 0) {
		rc = ck_err_set(CK_E_IO, "cannot read the file: %s",
		    strerror(errno));
		goto out;
	}
	if (EVP_DigestFinal_ex(md, out, NULL) != 1) {
		rc = ck_err_ssl(CK_E_INTERNAL, "SHA-256");
		goto out;
	}
	if (size != NULL)
		*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}
