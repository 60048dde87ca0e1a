/*
 * remote.c - the CLI's remote mode: admin requests to certkeepd over
 * HTTPS (POST /admin/v1, src/daemon/adminhttp.h), authenticated by the
 * operator's TLS client certificate.
 *
 *   certkeep --server https://HOST:PORT --cert FILE --key FILE
 *            [--cacert FILE] COMMAND ...
 *
 * The server's certificate is checked against --cacert (the CA's chain;
 * without it, the system's trust store) and against HOST. The key may be
 * encrypted (OpenSSL asks for its passphrase on the terminal).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "authz/admin.h"
#include "cli/cli.h"
#include "common/err.h"
#include "daemon/adminhttp.h"
#include "proto/httpc.h"

static struct {
	int active;
	char host[256];
	char port[8];
	const char *cert, *key, *cacert;
} remote;

int
cli_remote_active(void)
{
	return remote.active;
}

/* "https://HOST[:PORT][/]" or "https://[V6][:PORT][/]" into remote. */
static int
parse_url(const char *url)
{
	const char *p, *h, *he, *port = "443";
	size_t plen = 3, hl;

	if (strncmp(url, "https://", 8) != 0)
		return ck_err_set(CK_E_INVAL, "--server: an https:// URL, "
		    "like https://ca.example.com:8443");
	h = url + 8;
	if (*h == '[') {
		if ((he = strchr(h, ']')) == NULL)
			return ck_err_set(CK_E_INVAL, "--server: a bad IPv6 "
			    "address");
		h++;
		p = he + 1;
	} else {
		he = h + strcspn(h, ":/");
		p = he;
	}
	if (*p == ':') {
		port = p + 1;
		plen = strcspn(port, "/");
		p = port + plen;
	}
	hl = (size_t)(he - h);
	if (hl == 0 || hl >= sizeof(remote.host) || plen == 0 ||
	    plen >= sizeof(remote.port) || strspn(port, "0123456789") < plen ||
	    (*p != '\0' && strcmp(p, "/") != 0))
		return ck_err_set(CK_E_INVAL, "--server: '%s' is not "
		    "https://HOST:PORT", url);
	memcpy(remote.host, h, hl);
	remote.host[hl] = '\0';
	memcpy(remote.port, port, plen);
	remote.port[plen] = '\0';
	return 0;
}

int
cli_remote_options(int *argc, char ***argv)
{
	const char *server = NULL;
	char **v = *argv;
	int n = *argc, i = 1;

	while (i < n && strncmp(v[i], "--", 2) == 0) {
		const char *opt = v[i], *val, *eq = strchr(opt, '=');
		size_t ol = eq ? (size_t)(eq - opt) : strlen(opt);
		const char **dst;

		if (ol == 8 && strncmp(opt, "--server", 8) == 0)
			dst = &server;
		else if (ol == 6 && strncmp(opt, "--cert", 6) == 0)
			dst = &remote.cert;
		else if (ol == 5 && strncmp(opt, "--key", 5) == 0)
			dst = &remote.key;
		else if (ol == 8 && strncmp(opt, "--cacert", 8) == 0)
			dst = &remote.cacert;
		else
			break;
		if (eq != NULL)
			val = eq + 1;
		else if (i + 1 < n)
			val = v[++i];
		else {
			fprintf(stderr, "certkeep: %s needs a value\n", opt);
			return CLI_EXIT_USAGE;
		}
		*dst = val;
		i++;
	}
	if (i == 1)
		return CLI_EXIT_OK;
	if (server == NULL || remote.cert == NULL || remote.key == NULL) {
		fprintf(stderr, "certkeep: the remote mode needs --server URL, "
		    "--cert FILE and --key FILE (the operator's certificate "
		    "and key)\n");
		return CLI_EXIT_USAGE;
	}
	if (parse_url(server) != 0)
		return cli_fail(CK_E_INVAL), CLI_EXIT_USAGE;
	remote.active = 1;
	/* The command's words follow, as if given alone. */
	v[i - 1] = v[0];
	*argv = v + i - 1;
	*argc = n - (i - 1);
	return CLI_EXIT_OK;
}

/* OpenSSL's reason for the last failure, after WHAT. */
static int
tls_fail(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return ck_err_set(CK_E_IO, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

int
cli_remote_call(const json_t *req, json_t **reply)
{
	struct httpc_response hr;
	unsigned char addr[16];
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	BIO *bio = NULL;
	char *body = NULL, head[512], target[300];
	unsigned char *buf = NULL;
	size_t len = 0, cap = ADMIN_REPLY_MAX + HTTPC_HEADERS_MAX, blen;
	json_error_t jerr;
	long vr;
	int r, n;

	*reply = NULL;
	if ((body = json_dumps(req, JSON_COMPACT)) == NULL)
		return CK_E_NOMEM;
	blen = strlen(body);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		r = tls_fail("TLS");
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, remote.cert) != 1) {
		r = tls_fail(remote.cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, remote.key, SSL_FILETYPE_PEM) !=
	    1 || SSL_CTX_check_private_key(ctx) != 1) {
		r = tls_fail(remote.key);
		goto out;
	}
	if ((remote.cacert != NULL ? SSL_CTX_load_verify_locations(ctx,
	    remote.cacert, NULL) : SSL_CTX_set_default_verify_paths(ctx)) !=
	    1) {
		r = tls_fail(remote.cacert ? remote.cacert : "trust store");
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((bio = BIO_new_ssl_connect(ctx)) == NULL) {
		r = tls_fail("TLS");
		goto out;
	}
	snprintf(target, sizeof(target), strchr(remote.host, ':') ?
	    "[%s]:%s" : "%s:%s", remote.host, remote.port);
	BIO_set_conn_hostname(bio, target);
	BIO_get_ssl(bio, &ssl);
	SSL_set_mode(ssl, SSL_MODE_AUTO_RETRY);
	/* The server's certificate must name the host we asked for. */
	if (inet_pton(AF_INET, remote.host, addr) == 1 ||
	    inet_pton(AF_INET6, remote.host, addr) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    remote.host) != 1) {
			r = tls_fail("TLS");
			goto out;
		}
	} else if (SSL_set_tlsext_host_name(ssl, remote.host) != 1 ||
	    SSL_set1_host(ssl, remote.host) != 1) {
		r = tls_fail("TLS");
		goto out;
	}
	if (BIO_do_connect(bio) != 1 || BIO_do_handshake(bio) != 1) {
		vr = SSL_get_verify_result(ssl);
		if (vr != X509_V_OK) {
			ERR_clear_error();
			r = ck_err_set(CK_E_IO, "https://%s: the server's "
			    "certificate: %s", target,
			    X509_verify_cert_error_string(vr));
		} else {
			snprintf(head, sizeof(head), "https://%s", target);
			r = tls_fail(head);
		}
		goto out;
	}
	n = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Type: application/json\r\nAccept: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	    ADMINHTTP_PATH, target, blen);
	if (BIO_write(bio, head, n) != n ||
	    BIO_write(bio, body, (int)blen) != (int)blen ||
	    BIO_flush(bio) != 1) {
		r = tls_fail("sending the request");
		goto out;
	}
	if ((buf = malloc(65536)) == NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	cap = 65536;
	for (;;) {
		if (len == cap) {
			unsigned char *nb;
			if (cap >= ADMIN_REPLY_MAX + HTTPC_HEADERS_MAX) {
				r = ck_err_set(CK_E_TOOBIG, "the server's reply "
				    "is larger than %u bytes",
				    ADMIN_REPLY_MAX);
				goto out;
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				r = CK_E_NOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = BIO_read(bio, buf + len, (int)(cap - len));
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	ERR_clear_error();
	if ((r = httpc_parse_response(buf, len, &hr)) != 0)
		goto out;
	*reply = json_loadb((const char *)buf + hr.body_off, hr.body_len, 0,
	    &jerr);
	if (*reply == NULL || !json_is_object(*reply) ||
	    json_object_get(*reply, "ok") == NULL) {
		/* Not an admin reply: a problem document from the HTTP
		 * layer (busy, too large), or not certkeepd at all. */
		const char *d = *reply ? json_string_value(json_object_get(
		    *reply, "detail")) : NULL;
		r = ck_err_set(CK_E_IO, "https://%s answered %d%s%s", target,
		    hr.status, d ? ": " : "", d ? d : "");
		json_decref(*reply);
		*reply = NULL;
		goto out;
	}
	r = 0;
out:
	free(buf);
	free(body);
	BIO_free_all(bio);
	SSL_CTX_free(ctx);
	return r;
}
