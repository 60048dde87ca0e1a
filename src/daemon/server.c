/*
 * server.c - bringing certkeepd's parts up and down, and housekeeping.
 */
#include "daemon/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/secmem.h"
#include "common/timeutil.h"
#include "proto/ocsp.h"
#include "x509/keygen.h"
#include "x509/names.h"

/* Housekeeping period. A revocation is visible to OCSP within this. */
#define HK_PERIOD_MS 200
/* How long a stop waits for accepted requests to be answered. */
#define STOP_DRAIN_S 30
/* The TLS certificate certkeepd issues itself at each start. */
#define SELF_TLS_DAYS 30

static int
ocsp_lookup(void *arg, const char *serial, struct ocsp_status *out)
{
	struct server *sv = arg;
	enum store_cert_status st;
	int64_t rat = 0;
	int reason = 0, r;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&sv->rd_mu);
	r = store_cert_status(sv->rd, serial, &st, &rat, &reason);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r == CK_E_NOTFOUND)
		return 0;
	if (r != 0)
		return r;
	/* Pending and failed rows were never handed out: unknown. */
	if (st == STORE_CERT_ISSUED)
		out->known = 1;
	else if (st == STORE_CERT_REVOKED) {
		out->known = 1;
		out->revoked = 1;
		out->revoked_at = rat;
		out->reason = reason;
	}
	return 0;
}

struct crl_out {
	unsigned char *der;
	size_t len;
	uint64_t number;
	int64_t validity;
};

static int
crl_write(struct ck_ca *ca, void *arg)
{
	struct crl_out *co = arg;

	/* The committer is the only thread that swaps the configuration. */
	co->validity = (int64_t)ca->cfg->crl_validity_hours * 3600;
	return ck_ca_crl(ca, &co->der, &co->len, &co->number);
}

/* In the committer too: it alone may read the configuration unlocked. */
static int
crl_publish_write(struct ck_ca *ca, void *arg)
{
	struct crl_out *co = arg;

	return ck_ca_crl_publish(ca, co->der, co->len);
}

int
server_crl_refresh(struct server *sv)
{
	struct crl_out co;
	char msg[512];
	int r;

	memset(&co, 0, sizeof(co));
	r = ck_pipeline_write_wait(sv->pl, crl_write, &co, msg, sizeof(msg));
	if (r != 0) {
		ck_error("cannot sign a new CRL: %s", msg);
		return ck_err_set(r, "%s", msg);
	}
	/* Durable now: publish the files as well. */
	if ((r = ck_pipeline_write_wait(sv->pl, crl_publish_write, &co, msg,
	    sizeof(msg))) != 0)
		ck_error("cannot publish the CRL: %s", msg);
	pthread_rwlock_wrlock(&sv->lock);
	OPENSSL_free(sv->crl_der);
	sv->crl_der = co.der;
	sv->crl_len = co.len;
	sv->crl_number = co.number;
	sv->crl_this_update = ck_time_now();
	sv->crl_next_update = sv->crl_this_update + co.validity;
	pthread_rwlock_unlock(&sv->lock);
	return 0;
}

static int
tokens_reload(struct server *sv)
{
	struct ck_token_set *set = NULL, *old;
	int64_t seq = 0;
	int r;

	pthread_mutex_lock(&sv->rd_mu);
	if ((r = store_token_seq(sv->rd, &seq)) == 0)
		r = ck_token_set_load(sv->rd, &set);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0)
		return r;
	pthread_rwlock_wrlock(&sv->lock);
	old = sv->tokens;
	sv->tokens = set;
	sv->tokens_seq = seq;
	pthread_rwlock_unlock(&sv->lock);
	ck_token_set_free(old);
	return 0;
}

int
server_tokens_refresh(struct server *sv)
{
	int64_t seq = 0, have;
	int r;

	/* One small query; a reload only when a token row changed. */
	pthread_mutex_lock(&sv->rd_mu);
	r = store_token_seq(sv->rd, &seq);
	pthread_mutex_unlock(&sv->rd_mu);
	if (r != 0)
		return r;
	pthread_rwlock_rdlock(&sv->lock);
	have = sv->tokens_seq;
	pthread_rwlock_unlock(&sv->lock);
	return seq == have ? 0 : tokens_reload(sv);
}

struct change_scan {
	struct server *sv;
	int revoked;
};

static int
on_change(const char *serial, enum store_cert_status st, void *arg)
{
	struct change_scan *cs = arg;

	ocsp_invalidate(cs->sv->ocsp, serial);
	if (st == STORE_CERT_REVOKED)
		cs->revoked = 1;
	return 0;
}

static void *
housekeeper_main(void *arg)
{
	struct server *sv = arg;
	struct change_scan cs;
	struct timespec ts;
	int64_t seq, last, now;
	int want_crl;

	for (;;) {
		pthread_mutex_lock(&sv->hk_mu);
		if (!sv->stopping && !sv->crl_wanted) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += HK_PERIOD_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(&sv->hk_cv, &sv->hk_mu,
			    &ts);
		}
		if (sv->stopping) {
			pthread_mutex_unlock(&sv->hk_mu);
			break;
		}
		want_crl = sv->crl_wanted;
		sv->crl_wanted = 0;
		pthread_mutex_unlock(&sv->hk_mu);

		memset(&cs, 0, sizeof(cs));
		cs.sv = sv;
		pthread_mutex_lock(&sv->rd_mu);
		if (store_change_seq(sv->rd, &seq) != 0)
			seq = sv->seen_seq;
		last = sv->seen_seq;
		if (seq != sv->seen_seq)
			(void)store_cert_changed(sv->rd, sv->seen_seq,
			    on_change, &cs, &last);
		pthread_mutex_unlock(&sv->rd_mu);
		if (seq != sv->seen_seq) {
			/* Tokens may have been created or revoked by the
			 * command line, or anything else changed. */
			(void)server_tokens_refresh(sv);
			pthread_rwlock_wrlock(&sv->lock);
			sv->seen_seq = seq;
			pthread_rwlock_unlock(&sv->lock);
		}
		now = ck_time_now();
		/* A new CRL on every revocation (ours or the command
		 * line's), and at half its lifetime. */
		if (want_crl || cs.revoked || sv->crl_der == NULL ||
		    now >= sv->crl_this_update +
		    (sv->crl_next_update - sv->crl_this_update) / 2)
			(void)server_crl_refresh(sv);
	}
	return NULL;
}

/* certkeepd's own TLS certificate: a fresh key that exists only in this
 * process, certified by the CA for [server] tls_names, logged like every
 * other certificate. */
static int
self_tls(struct server *sv, struct ck_secret **key_pem, char **cert_pem)
{
	struct ck_ca *ca = sv->ca;
	struct ck_profile prof;
	struct ck_strlist names = { 0 };
	struct ck_issue_params p;
	struct ck_issue_result res;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *nm = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	unsigned char *csr = NULL, ip[16];
	char dns[CK_CONFIG_STR] = "", ipr[CK_CONFIG_STR] = "";
	char san[CK_CONFIG_STR * 2] = "", *chain = NULL, *leaf = NULL;
	size_t i, chainlen, leaflen, off;
	int r, csrlen;

	memset(&res, 0, sizeof(res));
	if ((r = ck_profile_init(&prof, "certkeepd-tls")) != 0)
		return r;
	if ((r = ck_strlist_split(&names, ca->cfg->server.tls_names)) != 0)
		goto out;
	if (names.n == 0) {
		r = ck_err_set(CK_E_INVAL, "[server] tls_names is empty");
		goto out;
	}
	for (i = 0; i < names.n; i++) {
		char *dst = ck_ip_parse(names.v[i], ip) ? ipr : dns;
		off = strlen(dst);
		if (dst == ipr)
			snprintf(dst + off, CK_CONFIG_STR - off, "%s%s/%d",
			    off ? "," : "", names.v[i],
			    strchr(names.v[i], ':') ? 128 : 32);
		else
			snprintf(dst + off, CK_CONFIG_STR - off, "%s%s",
			    off ? "," : "", names.v[i]);
		off = strlen(san);
		snprintf(san + off, sizeof(san) - off, "%s%s:%s",
		    off ? "," : "", dst == ipr ? "IP" : "DNS", names.v[i]);
	}
	if ((r = ck_profile_set(&prof, "key_usage", "digitalSignature")) != 0 ||
	    (r = ck_profile_set(&prof, "ext_key_usage", "serverAuth")) != 0 ||
	    (r = ck_profile_set(&prof, "key_types", "ec-p256")) != 0 ||
	    (r = ck_profile_set(&prof, "max_validity_days", "30")) != 0 ||
	    (dns[0] && (r = ck_profile_set(&prof, "dns_suffixes",
	    dns)) != 0) ||
	    (ipr[0] && (r = ck_profile_set(&prof, "ip_ranges", ipr)) != 0) ||
	    (r = ck_profile_finish(&prof)) != 0)
		goto out;
	if ((r = ck_key_generate(CK_KEY_EC_P256, &key)) != 0)
		goto out;
	r = CK_E_NOMEM;
	if ((req = X509_REQ_new()) == NULL || (nm = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
	    (const unsigned char *)names.v[0], -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, nm) ||
	    !X509_REQ_set_pubkey(req, key) ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
	    san)) == NULL || !sk_X509_EXTENSION_push(exts, ext))
		goto out;
	ext = NULL;
	if (!X509_REQ_add_extensions(req, exts) ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    (csrlen = i2d_X509_REQ(req, &csr)) <= 0)
		goto out;
	memset(&p, 0, sizeof(p));
	p.csr = csr;
	p.csr_len = (size_t)csrlen;
	p.profile = "certkeepd-tls";
	p.profile_obj = &prof;
	p.days = SELF_TLS_DAYS;
	p.path_len = -1;
	p.requester = "certkeepd";
	if ((r = ck_ca_issue(ca, &p, &res)) != 0)
		goto out;
	if ((r = ck_der_to_pem(res.der, res.der_len, &leaf, &leaflen)) != 0 ||
	    (r = ck_ca_chain_pem(ca, &chain, &chainlen)) != 0)
		goto out;
	if ((*cert_pem = malloc(leaflen + chainlen + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy(*cert_pem, leaf, leaflen);
	memcpy(*cert_pem + leaflen, chain, chainlen + 1);
	/* The key in PEM, in locked memory, for the TLS library. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		r = CK_E_NOMEM;
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	if ((*key_pem = ck_secret_new(bm->length + 1)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	memcpy((*key_pem)->buf, bm->data, bm->length);
	(*key_pem)->len = bm->length;
	(*key_pem)->buf[bm->length] = '\0';
	r = 0;
out:
	BIO_free(bio);
	free(chain);
	free(leaf);
	OPENSSL_free(res.der);
	OPENSSL_free(csr);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(nm);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	ck_strlist_clear(&names);
	ck_profile_clear(&prof);
	return r;
}

static int
load_chain(struct server *sv)
{
	unsigned char *der = NULL;
	int len;

	if (ck_ca_chain_pem(sv->ca, &sv->chain_pem, &sv->chain_len) != 0)
		return CK_E_NOMEM;
	if ((len = i2d_X509(sv->ca->cert, &der)) <= 0)
		return CK_E_NOMEM;
	sv->ca_der = der;
	sv->ca_der_len = (size_t)len;
	return 0;
}

int
server_start(struct server *sv, struct ck_ca *ca)
{
	const struct ck_server_config *cf = &ca->cfg->server;
	struct http_config hc;
	struct http_route *routes = NULL;
	struct ck_secret *key_pem = NULL;
	char *cert_pem = NULL, path[4096];
	size_t i;
	int r;

	memset(sv, 0, sizeof(*sv));
	sv->ca = ca;
	sv->started_at = ck_time_now();
	pthread_mutex_init(&sv->rd_mu, NULL);
	pthread_mutex_init(&sv->hk_mu, NULL);
	pthread_cond_init(&sv->hk_cv, NULL);
	pthread_mutex_init(&sv->unauth_mu, NULL);
	{
		/* Writers (token reload, configuration swap) must not starve
		 * behind a stream of request threads. */
		pthread_rwlockattr_t ra;
		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra,
		    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&sv->lock, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	if ((r = ck_strlist_split(&sv->client_cert_profiles,
	    cf->client_cert_profiles)) != 0)
		goto fail;
	if ((r = ck_ca_path(ca, ca->cfg->store_path, path,
	    sizeof(path))) != 0 ||
	    (r = store_open(path, 0, &sv->rd)) != 0 ||
	    (r = store_change_seq(sv->rd, &sv->seen_seq)) != 0 ||
	    (r = load_chain(sv)) != 0 ||
	    (r = ck_token_set_load(sv->rd, &sv->tokens)) != 0)
		goto fail;
	/* Before the pipeline owns the store: our own TLS certificate. */
	if (cf->api.addr[0] != '\0' && (r = self_tls(sv, &key_pem,
	    &cert_pem)) != 0)
		goto fail;
	if ((r = ck_pipeline_start(ca, cf->signers, &sv->pl)) != 0)
		goto fail;
	if ((r = ocsp_responder_new(ca->signer, ca->cert, ocsp_lookup, sv,
	    cf->ocsp_validity_s, &sv->ocsp)) != 0)
		goto fail;
	if ((r = server_crl_refresh(sv)) != 0)
		goto fail;
	if (pthread_create(&sv->housekeeper, NULL, housekeeper_main, sv) != 0) {
		r = ck_err_set(CK_E_INTERNAL, "cannot start a thread");
		goto fail;
	}
	sv->hk_running = 1;

	memset(&hc, 0, sizeof(hc));
	hc.threads = cf->threads;
	hc.max_connections = cf->max_connections;
	hc.max_per_ip = cf->max_per_ip;
	hc.timeout_s = cf->timeout_s;
	if (cf->http.addr[0] != '\0') {
		hc.addr = cf->http.addr;
		hc.port = cf->http.port;
		if ((r = http_server_start(&hc, pub_routes, pub_nroutes, sv,
		    &sv->pub)) != 0)
			goto fail;
		sv->pub_port = http_server_port(sv->pub);
	}
	if (cf->api.addr[0] != '\0') {
		if ((routes = calloc(rest_nroutes, sizeof(*routes))) == NULL) {
			r = CK_E_NOMEM;
			goto fail;
		}
		memcpy(routes, rest_routes, rest_nroutes * sizeof(*routes));
		for (i = 0; i < rest_nroutes; i++)
			if (routes[i].max_body > 0 && strcmp(routes[i].path,
			    "/api/v1/certificates") == 0)
				routes[i].max_body = cf->max_body;
		hc.addr = cf->api.addr;
		hc.port = cf->api.port;
		hc.tls_cert_pem = cert_pem;
		hc.tls_key_pem = (const char *)key_pem->buf;
		hc.tls_trust_pem = sv->chain_pem;
		r = http_server_start(&hc, routes, rest_nroutes, sv, &sv->api);
		free(routes);
		if (r != 0)
			goto fail;
		sv->api_port = http_server_port(sv->api);
	}
	ck_secret_free(key_pem);
	free(cert_pem);
	return 0;
fail:
	{
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		ck_secret_free(key_pem);
		free(cert_pem);
		server_stop(sv);
		ck_err_set(r, "%s", msg);
	}
	return r;
}

void
server_stop(struct server *sv)
{
	/* No new requests: those accepted are answered (the pipeline runs
	 * until then). Not http_server_quiesce(): MHD_quiesce_daemon()
	 * races the epoll thread pool's workers and can abort. */
	http_server_drain(sv->api, STOP_DRAIN_S);
	http_server_drain(sv->pub, STOP_DRAIN_S);
	if (sv->hk_running) {
		pthread_mutex_lock(&sv->hk_mu);
		sv->stopping = 1;
		pthread_cond_signal(&sv->hk_cv);
		pthread_mutex_unlock(&sv->hk_mu);
		pthread_join(sv->housekeeper, NULL);
		sv->hk_running = 0;
	}
	/* Drain the pipeline: every accepted request gets its answer. */
	ck_pipeline_stop(sv->pl);
	sv->pl = NULL;
	http_server_stop(sv->api);
	http_server_stop(sv->pub);
	sv->api = sv->pub = NULL;
	ocsp_responder_free(sv->ocsp);
	sv->ocsp = NULL;
	ck_token_set_free(sv->tokens);
	sv->tokens = NULL;
	store_close(sv->rd);
	sv->rd = NULL;
	OPENSSL_free(sv->crl_der);
	OPENSSL_free(sv->ca_der);
	free(sv->chain_pem);
	sv->crl_der = NULL;
	sv->ca_der = NULL;
	sv->chain_pem = NULL;
	ck_strlist_clear(&sv->client_cert_profiles);
}

int
server_reload(struct server *sv)
{
	int r;

	if ((r = tokens_reload(sv)) != 0)
		return r;
	return server_crl_refresh(sv);
}

struct cfg_swap {
	struct server *sv;
	struct ck_config *cfg;
	unsigned char *text;
	size_t len;
};

static int
cfg_swap_write(struct ck_ca *ca, void *arg)
{
	struct cfg_swap *cs = arg;
	struct ck_config *old;
	struct ck_strlist ccp = { 0 };
	int r;

	if ((r = ck_ca_record_config(ca, cs->text, cs->len)) != 0)
		return r;
	if ((r = ck_strlist_split(&ccp,
	    cs->cfg->server.client_cert_profiles)) != 0)
		return r;
	/* Request threads judge under the read lock. */
	pthread_rwlock_wrlock(&cs->sv->lock);
	old = ca->cfg;
	ca->cfg = cs->cfg;
	ck_strlist_clear(&cs->sv->client_cert_profiles);
	cs->sv->client_cert_profiles = ccp;
	pthread_rwlock_unlock(&cs->sv->lock);
	cs->cfg = old;		/* freed by the caller */
	return 0;
}

int
server_reload_config(struct server *sv)
{
	struct cfg_swap cs;
	char path[4096], msg[512];
	int r;

	memset(&cs, 0, sizeof(cs));
	cs.sv = sv;
	if ((r = ck_ca_path(sv->ca, CK_CONFIG_FILE, path, sizeof(path))) != 0 ||
	    (r = ck_fs_read(path, CK_CONFIG_MAX, &cs.text, &cs.len)) != 0 ||
	    (r = ck_config_parse((const char *)cs.text, cs.len, &cs.cfg)) != 0)
		goto out;
	r = ck_pipeline_write_wait(sv->pl, cfg_swap_write, &cs, msg,
	    sizeof(msg));
	if (r != 0)
		ck_err_set(r, "%s", msg);
out:
	ck_config_free(cs.cfg);
	free(cs.text);
	return r;
}
