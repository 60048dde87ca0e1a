#include "ca/config.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/strutil.h"
#include "keystore/pkcs11.h"

static const char *const ocsp_signer_names[CK_OCSP_SIGNER__MAX] = {
	"ca", "delegated"
};

const char *
ck_ocsp_signer_name(enum ck_ocsp_signer s)
{
	if ((unsigned)s >= CK_OCSP_SIGNER__MAX)
		return "unknown";
	return ocsp_signer_names[s];
}

struct parse_state {
	struct ck_config *cfg;
	int failed;
	char err[512];
};

static int
fail(struct parse_state *ps, const char *fmt, const char *a, const char *b)
{
	if (!ps->failed) {
		snprintf(ps->err, sizeof(ps->err), fmt, a, b);
		ps->failed = 1;
	}
	return 0;
}

static int
set_str(struct parse_state *ps, char *dst, size_t dstsz, const char *key,
    const char *value)
{
	if (strlen(value) >= dstsz)
		return fail(ps, "%s: value too long%s", key, "");
	snprintf(dst, dstsz, "%s", value);
	return 1;
}

static int
set_url(struct parse_state *ps, char *dst, const char *key, const char *value)
{
	const char *p;

	if (value[0] != '\0' && strncmp(value, "http://", 7) != 0 &&
	    strncmp(value, "https://", 8) != 0)
		return fail(ps, "%s: '%s' is not an http(s) URL", key, value);
	for (p = value; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == ',' || *p == ';')
			return fail(ps, "%s: URL '%s' has a space, comma or "
			    "semicolon", key, value);
	return set_str(ps, dst, CK_CONFIG_STR, key, value);
}

static int
set_listen(struct parse_state *ps, struct ck_listen *l, const char *key,
    const char *value)
{
	const char *colon;
	uint64_t port;
	size_t alen;

	memset(l, 0, sizeof(*l));
	if (value[0] == '\0')
		return 1;
	if (value[0] == '[') {
		const char *rb = strchr(value, ']');
		if (rb == NULL || rb[1] != ':')
			return fail(ps, "%s: '%s' is not [ADDR]:PORT", key,
			    value);
		alen = (size_t)(rb - value - 1);
		if (alen >= sizeof(l->addr))
			return fail(ps, "%s: bad address '%s'", key, value);
		memcpy(l->addr, value + 1, alen);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(value, ':')) == NULL)
			return fail(ps, "%s: '%s' is not ADDR:PORT", key,
			    value);
		alen = (size_t)(colon - value);
		if (alen >= sizeof(l->addr) || alen == 0)
			return fail(ps, "%s: bad address '%s'", key, value);
		memcpy(l->addr, value, alen);
	}
	l->addr[alen] = '\0';
	if (ck_parse_u64(colon + 1, 0, 65535, key, &port) != 0)
		return fail(ps, "%s%s", ck_err_msg(), "");
	l->port = (uint16_t)port;
	return 1;
}

static int
set_uint(struct parse_state *ps, unsigned *dst, const char *key,
    const char *value, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (ck_parse_u64(value, min, max, key, &v) != 0)
		return fail(ps, "%s%s", ck_err_msg(), "");
	*dst = (unsigned)v;
	return 1;
}

static int
server_setting(struct parse_state *ps, const char *name, const char *value)
{
	struct ck_server_config *sv = &ps->cfg->server;
	unsigned v;

	if (strcmp(name, "api_listen") == 0)
		return set_listen(ps, &sv->api, name, value);
	if (strcmp(name, "http_listen") == 0)
		return set_listen(ps, &sv->http, name, value);
	if (strcmp(name, "tls_names") == 0)
		return set_str(ps, sv->tls_names, CK_CONFIG_STR, name, value);
	if (strcmp(name, "tls_cert") == 0)
		return set_str(ps, sv->tls_cert, CK_CONFIG_STR, name, value);
	if (strcmp(name, "tls_key") == 0)
		return set_str(ps, sv->tls_key, CK_CONFIG_STR, name, value);
	if (strcmp(name, "user") == 0)
		return set_str(ps, sv->user, sizeof(sv->user), name, value);
	if (strcmp(name, "client_cert_profiles") == 0)
		return set_str(ps, sv->client_cert_profiles, CK_CONFIG_STR,
		    name, value);
	if (strcmp(name, "threads") == 0)
		return set_uint(ps, &sv->threads, name, value, 1, 64);
	if (strcmp(name, "signers") == 0)
		return set_uint(ps, &sv->signers, name, value, 1, 64);
	if (strcmp(name, "max_connections") == 0)
		return set_uint(ps, &sv->max_connections, name, value, 1,
		    100000);
	if (strcmp(name, "max_per_ip") == 0)
		return set_uint(ps, &sv->max_per_ip, name, value, 0, 100000);
	if (strcmp(name, "timeout") == 0)
		return set_uint(ps, &sv->timeout_s, name, value, 1, 3600);
	if (strcmp(name, "max_body") == 0) {
		if (!set_uint(ps, &v, name, value, 1024, 1024 * 1024))
			return 0;
		sv->max_body = v;
		return 1;
	}
	if (strcmp(name, "ocsp_validity_hours") == 0) {
		if (!set_uint(ps, &v, name, value, 1, 24 * 30))
			return 0;
		sv->ocsp_validity_s = v * 3600;
		return 1;
	}
	if (strcmp(name, "ocsp_signer") == 0) {
		for (v = 0; v < CK_OCSP_SIGNER__MAX; v++)
			if (strcmp(value, ocsp_signer_names[v]) == 0) {
				sv->ocsp_signer = (enum ck_ocsp_signer)v;
				return 1;
			}
		return fail(ps, "ocsp_signer: '%s' is neither ca nor "
		    "delegated%s", value, "");
	}
	if (strcmp(name, "ocsp_signer_validity_hours") == 0) {
		if (!set_uint(ps, &v, name, value, 1, 24 * 366))
			return 0;
		sv->ocsp_signer_validity_s = v * 3600;
		return 1;
	}
	if (strcmp(name, "ocsp_cert") == 0)
		return set_str(ps, sv->ocsp_cert, CK_CONFIG_STR, name, value);
	if (strcmp(name, "ocsp_key") == 0)
		return set_str(ps, sv->ocsp_key, CK_CONFIG_STR, name, value);
	return fail(ps, "[server]: unknown setting '%s'%s", name, "");
}

static int
set_bool(struct parse_state *ps, int *dst, const char *key,
    const char *value)
{
	if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
	    strcmp(value, "1") == 0)
		*dst = 1;
	else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
	    strcmp(value, "0") == 0)
		*dst = 0;
	else
		return fail(ps, "%s: '%s' is not true or false", key, value);
	return 1;
}

static int
acme_setting(struct parse_state *ps, const char *name, const char *value)
{
	struct ck_acme_config *a = &ps->cfg->acme;
	unsigned v;

	if (strcmp(name, "enabled") == 0)
		return set_bool(ps, &a->enabled, name, value);
	if (strcmp(name, "eab_required") == 0)
		return set_bool(ps, &a->eab_required, name, value);
	if (strcmp(name, "validation_allow_loopback") == 0)
		return set_bool(ps, &a->validation_allow_loopback, name,
		    value);
	if (strcmp(name, "profile") == 0)
		return set_str(ps, a->profile, sizeof(a->profile), name, value);
	if (strcmp(name, "days") == 0) {
		if (!set_uint(ps, &v, name, value, 1, 3650))
			return 0;
		a->days = v;
		return 1;
	}
	if (strcmp(name, "dns_servers") == 0)
		return set_str(ps, a->dns_servers, CK_CONFIG_STR, name, value);
	if (strcmp(name, "http01_port") == 0 ||
	    strcmp(name, "tlsalpn01_port") == 0) {
		if (!set_uint(ps, &v, name, value, 1, 65535))
			return 0;
		*(name[0] == 'h' ? &a->http01_port : &a->tlsalpn01_port) =
		    (uint16_t)v;
		return 1;
	}
	if (strcmp(name, "validation_timeout") == 0)
		return set_uint(ps, &a->validation_timeout_s, name, value, 1,
		    300);
	if (strcmp(name, "caa_identity") == 0)
		return set_str(ps, a->caa_identity, sizeof(a->caa_identity),
		    name, value);
	if (strcmp(name, "orders_per_hour") == 0)
		return set_uint(ps, &a->orders_per_hour, name, value, 0,
		    1000000);
	if (strcmp(name, "certs_per_name_per_week") == 0)
		return set_uint(ps, &a->certs_per_name_per_week, name, value, 0,
		    1000000);
	if (strcmp(name, "ari_percent") == 0)
		return set_uint(ps, &a->ari_percent, name, value, 10, 95);
	return fail(ps, "[acme]: unknown setting '%s'%s", name, "");
}

static struct ck_profile *
find_or_add_profile(struct parse_state *ps, const char *name)
{
	struct ck_config *cfg = ps->cfg;
	struct ck_profile *np;
	size_t i;
	const char *p;

	for (i = 0; i < cfg->nprofiles; i++)
		if (strcmp(cfg->profiles[i].name, name) == 0)
			return &cfg->profiles[i];
	if (cfg->nprofiles >= CK_CONFIG_MAX_PROFILES) {
		fail(ps, "too many profiles%s%s", "", "");
		return NULL;
	}
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
			fail(ps, "profile name '%s' may only use letters, "
			    "digits, '-' and '_'%s", name, "");
			return NULL;
		}
	np = realloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof(*np));
	if (np == NULL) {
		fail(ps, "out of memory%s%s", "", "");
		return NULL;
	}
	cfg->profiles = np;
	if (ck_profile_init(&np[cfg->nprofiles], name) != 0) {
		fail(ps, "%s%s", ck_err_msg(), "");
		return NULL;
	}
	return &np[cfg->nprofiles++];
}

/* M-of-N unlock: all three settings or none, well formed, not with a
 * token key (whose PIN is not a file's passphrase). */
static int
unlock_check(const struct ck_config *cfg)
{
	unsigned char set[16], fp[32];
	unsigned m = 0, n = 0;
	char tail;

	if (cfg->unlock_shares[0] == '\0' && cfg->unlock_set[0] == '\0' &&
	    cfg->unlock_key_fingerprint[0] == '\0')
		return 0;
	if (cfg->key_uri[0] != '\0')
		return ck_err_set(CK_E_PARSE, "[ca] unlock_shares: a key in a "
		    "PKCS#11 token is not unlocked by shares");
	if (sscanf(cfg->unlock_shares, "%u/%u%c", &m, &n, &tail) != 2 ||
	    m < 2 || n < m || n > 255 || cfg->unlock_shares[0] == '0' ||
	    strspn(cfg->unlock_shares, "0123456789/") !=
	    strlen(cfg->unlock_shares))
		return ck_err_set(CK_E_PARSE, "[ca] unlock_shares must be M/N "
		    "with 2 <= M <= N <= 255");
	if (ck_hex_decode(cfg->unlock_set, strlen(cfg->unlock_set), set,
	    sizeof(set)) != 0 || ck_hex_decode(cfg->unlock_key_fingerprint,
	    strlen(cfg->unlock_key_fingerprint), fp, sizeof(fp)) != 0)
		return ck_err_set(CK_E_PARSE, "[ca] unlock_shares needs "
		    "unlock_set (32 hex digits) and unlock_key_fingerprint "
		    "(64 hex digits)");
	return 0;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	struct ck_config *cfg = ps->cfg;
	struct ck_profile *p;
	uint64_t n;

	if (ps->failed)
		return 0;
	if (strcmp(section, "ca") == 0) {
		if (strcmp(name, "key_file") == 0)
			return set_str(ps, cfg->key_file, CK_CONFIG_STR, name,
			    value);
		if (strcmp(name, "key_uri") == 0)
			return set_str(ps, cfg->key_uri, CK_CONFIG_STR, name,
			    value);
		if (strcmp(name, "pkcs11_module") == 0)
			return set_str(ps, cfg->pkcs11_module, CK_CONFIG_STR,
			    name, value);
		if (strcmp(name, "unlock_shares") == 0)
			return set_str(ps, cfg->unlock_shares,
			    sizeof(cfg->unlock_shares), name, value);
		if (strcmp(name, "unlock_set") == 0)
			return set_str(ps, cfg->unlock_set,
			    sizeof(cfg->unlock_set), name, value);
		if (strcmp(name, "unlock_key_fingerprint") == 0)
			return set_str(ps, cfg->unlock_key_fingerprint,
			    sizeof(cfg->unlock_key_fingerprint), name, value);
		if (strcmp(name, "cert_file") == 0)
			return set_str(ps, cfg->cert_file, CK_CONFIG_STR, name,
			    value);
		if (strcmp(name, "chain_file") == 0)
			return set_str(ps, cfg->chain_file, CK_CONFIG_STR,
			    name, value);
		if (strcmp(name, "csr_file") == 0)
			return set_str(ps, cfg->csr_file, CK_CONFIG_STR, name,
			    value);
		if (strcmp(name, "crl_file") == 0)
			return set_str(ps, cfg->crl_file, CK_CONFIG_STR, name,
			    value);
		if (strcmp(name, "crl_url") == 0)
			return set_url(ps, cfg->crl_url, name, value);
		if (strcmp(name, "ocsp_url") == 0)
			return set_url(ps, cfg->ocsp_url, name, value);
		if (strcmp(name, "issuer_url") == 0)
			return set_url(ps, cfg->issuer_url, name, value);
		if (strcmp(name, "crl_validity_hours") == 0) {
			if (ck_parse_u64(value, 1, 24 * 366,
			    "crl_validity_hours", &n) != 0)
				return fail(ps, "%s%s", ck_err_msg(), "");
			cfg->crl_validity_hours = (uint32_t)n;
			return 1;
		}
		return fail(ps, "[ca]: unknown setting '%s'%s", name, "");
	}
	if (strcmp(section, "store") == 0) {
		if (strcmp(name, "backend") == 0) {
			if (strcmp(value, "sqlite") != 0)
				return fail(ps, "[store]: backend '%s' is not "
				    "supported (use sqlite)%s", value, "");
			return set_str(ps, cfg->store_backend,
			    sizeof(cfg->store_backend), name, value);
		}
		if (strcmp(name, "path") == 0)
			return set_str(ps, cfg->store_path, CK_CONFIG_STR,
			    name, value);
		return fail(ps, "[store]: unknown setting '%s'%s", name, "");
	}
	if (strcmp(section, "backup") == 0) {
		struct ck_backup_config *b = &cfg->backup;
		if (strcmp(name, "to") == 0)
			return set_str(ps, b->to, CK_CONFIG_STR, name, value);
		if (strcmp(name, "recipients") == 0)
			return set_str(ps, b->recipients, CK_CONFIG_STR, name,
			    value);
		if (strcmp(name, "keep_last") == 0)
			return set_uint(ps, &b->keep_last, name, value, 0,
			    100000);
		if (strcmp(name, "daily") == 0)
			return set_uint(ps, &b->daily, name, value, 0, 100000);
		if (strcmp(name, "weekly") == 0)
			return set_uint(ps, &b->weekly, name, value, 0, 100000);
		if (strcmp(name, "monthly") == 0)
			return set_uint(ps, &b->monthly, name, value, 0, 100000);
		if (strcmp(name, "zstd_level") == 0) {
			if (ck_parse_zstd_level(value, name,
			    &b->zstd_level) != 0)
				return fail(ps, "%s%s", ck_err_msg(), "");
			return 1;
		}
		return fail(ps, "[backup]: unknown setting '%s'%s", name, "");
	}
	if (strcmp(section, "server") == 0)
		return server_setting(ps, name, value);
	if (strcmp(section, "acme") == 0)
		return acme_setting(ps, name, value);
	if (strcmp(section, "audit") == 0) {
		if (strcmp(name, "checkpoint_interval") == 0)
			return set_uint(ps,
			    &cfg->audit.checkpoint_interval_s, name, value, 0,
			    86400);
		if (strcmp(name, "syslog") == 0)
			return set_bool(ps, &cfg->audit.syslog, name, value);
		if (strcmp(name, "syslog_socket") == 0) {
			if (value[0] != '/')
				return fail(ps, "[audit] syslog_socket: '%s' "
				    "is not an absolute path%s", value, "");
			return set_str(ps, cfg->audit.syslog_socket,
			    sizeof(cfg->audit.syslog_socket), name, value);
		}
		return fail(ps, "[audit]: unknown setting '%s'%s", name, "");
	}
	if (strcmp(section, "signer") == 0) {
		/* The key in the service process is a certkeepd flag for
		 * benchmarks, not a setting the service user could write;
		 * "process", the only mode, is still taken. */
		if (strcmp(name, "mode") == 0) {
			if (strcmp(value, "process") == 0)
				return 1;
			return fail(ps, "[signer] mode is not a setting: the "
			    "signer always runs in its own process (for a "
			    "benchmark only: certkeepd --signer-inprocess)%s%s",
			    "", "");
		}
		if (strcmp(name, "seccomp") == 0) {
			if (strcmp(value, "kill") == 0)
				cfg->signer.seccomp = CK_SECCOMP_KILL;
			else if (strcmp(value, "log") == 0)
				cfg->signer.seccomp = CK_SECCOMP_LOG;
			else
				return fail(ps, "[signer]: seccomp must be "
				    "kill or log%s%s", "", "");
			return 1;
		}
		if (strcmp(name, "threads") == 0)
			return set_uint(ps, &cfg->signer.threads, name, value,
			    0, 64);
		if (strcmp(name, "timeout") == 0)
			return set_uint(ps, &cfg->signer.timeout_s, name,
			    value, 1, 3600);
		if (strcmp(name, "allow_ca") == 0)
			return set_bool(ps, &cfg->signer.allow_ca, name, value);
		return fail(ps, "[signer]: unknown setting '%s'%s", name, "");
	}
	if (strncmp(section, "profile.", 8) == 0) {
		if ((p = find_or_add_profile(ps, section + 8)) == NULL)
			return 0;
		if (ck_profile_set(p, name, value) != 0)
			return fail(ps, "%s%s", ck_err_msg(), "");
		return 1;
	}
	return fail(ps, "unknown section [%s]%s", section, "");
}

/* What only the whole [server] section can tell. */
static int
server_check(const struct ck_server_config *sv)
{
	if ((sv->ocsp_cert[0] == '\0') != (sv->ocsp_key[0] == '\0'))
		return ck_err_set(CK_E_PARSE, "configuration: [server] "
		    "ocsp_cert and ocsp_key go together: set both or neither");
	if (sv->ocsp_cert[0] != '\0' &&
	    sv->ocsp_signer != CK_OCSP_SIGNER_DELEGATED)
		return ck_err_set(CK_E_PARSE, "configuration: [server] "
		    "ocsp_cert and ocsp_key are only used with ocsp_signer = "
		    "delegated");
	/* A certificate certkeepd issues itself is renewed at half its
	 * life; a response signed just before must expire before it. */
	if (sv->ocsp_signer == CK_OCSP_SIGNER_DELEGATED &&
	    sv->ocsp_cert[0] == '\0' &&
	    sv->ocsp_signer_validity_s / 2 < sv->ocsp_validity_s)
		return ck_err_set(CK_E_PARSE, "configuration: [server] "
		    "ocsp_signer_validity_hours (%u) must be at least twice "
		    "ocsp_validity_hours (%u), so that no OCSP response "
		    "outlives the certificate that signed it",
		    (unsigned)(sv->ocsp_signer_validity_s / 3600),
		    (unsigned)(sv->ocsp_validity_s / 3600));
	return 0;
}

int
ck_config_parse(const char *text, size_t len, struct ck_config **out)
{
	struct parse_state ps;
	struct ck_config *cfg = NULL;
	char *copy = NULL;
	size_t i;
	int line, r;

	if (len > CK_CONFIG_MAX)
		return ck_err_set(CK_E_TOOBIG, "configuration larger than %u "
		    "bytes", CK_CONFIG_MAX);
	if (memchr(text, '\0', len) != NULL)
		return ck_err_set(CK_E_PARSE, "configuration contains a NUL "
		    "byte");
	if ((copy = malloc(len + 1)) == NULL ||
	    (cfg = calloc(1, sizeof(*cfg))) == NULL) {
		free(copy);
		return CK_E_NOMEM;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	snprintf(cfg->key_file, sizeof(cfg->key_file), "private/ca.key");
	snprintf(cfg->cert_file, sizeof(cfg->cert_file), "ca.pem");
	snprintf(cfg->chain_file, sizeof(cfg->chain_file), "chain.pem");
	snprintf(cfg->csr_file, sizeof(cfg->csr_file), "ca.csr");
	snprintf(cfg->crl_file, sizeof(cfg->crl_file), "crl/ca.crl");
	snprintf(cfg->store_backend, sizeof(cfg->store_backend), "sqlite");
	snprintf(cfg->store_path, sizeof(cfg->store_path), "store.db");
	cfg->crl_validity_hours = 168;
	snprintf(cfg->server.api.addr, sizeof(cfg->server.api.addr),
	    "127.0.0.1");
	cfg->server.api.port = 8443;
	snprintf(cfg->server.http.addr, sizeof(cfg->server.http.addr),
	    "127.0.0.1");
	cfg->server.http.port = 8080;
	snprintf(cfg->server.tls_names, sizeof(cfg->server.tls_names),
	    "localhost, 127.0.0.1");
	cfg->server.threads = 2;
	cfg->server.signers = 2;
	cfg->server.max_connections = 1024;
	cfg->server.max_per_ip = 256;
	cfg->server.timeout_s = 15;
	cfg->server.max_body = 64 * 1024;
	cfg->server.ocsp_validity_s = 24 * 3600;
	cfg->server.ocsp_signer = CK_OCSP_SIGNER_CA;
	cfg->server.ocsp_signer_validity_s = 48 * 3600;
	cfg->acme.enabled = 1;
	snprintf(cfg->acme.profile, sizeof(cfg->acme.profile), "tls-server");
	cfg->acme.http01_port = 80;
	cfg->acme.tlsalpn01_port = 443;
	cfg->acme.validation_timeout_s = 10;
	cfg->acme.ari_percent = 67;
	cfg->audit.checkpoint_interval_s = 300;
	cfg->signer.timeout_s = 30;
	cfg->audit.syslog = 1;
	snprintf(cfg->audit.syslog_socket, sizeof(cfg->audit.syslog_socket),
	    "%s", "/dev/log");
	memset(&ps, 0, sizeof(ps));
	ps.cfg = cfg;
	line = ini_parse_string(copy, handler, &ps);
	free(copy);
	if (line != 0 || ps.failed) {
		if (ps.failed)
			r = ck_err_set(CK_E_PARSE, "configuration line %d: %s",
			    line, ps.err);
		else
			r = ck_err_set(CK_E_PARSE, "configuration line %d: "
			    "syntax error", line);
		ck_config_free(cfg);
		return r;
	}
	/* A token key needs both; the URI parser refuses a PIN in it. */
	if (cfg->key_uri[0] != '\0' || cfg->pkcs11_module[0] != '\0') {
		struct keystore_p11_uri u;
		char why[256];
		if (cfg->key_uri[0] == '\0' || cfg->pkcs11_module[0] != '/')
			r = ck_err_set(CK_E_PARSE, "[ca] key_uri and "
			    "pkcs11_module (an absolute path) go together");
		else if ((r = keystore_p11_uri_parse(cfg->key_uri, &u)) !=
		    0) {
			snprintf(why, sizeof(why), "%s", ck_err_msg());
			r = ck_err_set(CK_E_PARSE, "[ca] key_uri: %s", why);
		}
		if (r != 0) {
			ck_config_free(cfg);
			return r;
		}
	}
	if ((r = unlock_check(cfg)) != 0) {
		ck_config_free(cfg);
		return r;
	}
	if ((r = server_check(&cfg->server)) != 0) {
		ck_config_free(cfg);
		return r;
	}
	for (i = 0; i < cfg->nprofiles; i++)
		if ((r = ck_profile_finish(&cfg->profiles[i])) != 0) {
			ck_config_free(cfg);
			return r;
		}
	*out = cfg;
	return 0;
}

void
ck_config_free(struct ck_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nprofiles; i++)
		ck_profile_clear(&cfg->profiles[i]);
	free(cfg->profiles);
	free(cfg);
}

const struct ck_profile *
ck_config_profile(const struct ck_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nprofiles; i++)
		if (strcmp(cfg->profiles[i].name, name) == 0)
			return &cfg->profiles[i];
	return NULL;
}
