/*
 * manifest.c - a backup set's manifest: built when a set is made, parsed
 * strictly when one is read (docs/backup.md). The parser sees only signed
 * content, but it is still strict: a manifest says what a restore must
 * find, so every field must be there and of its type.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "backup/backup.h"
#include "backup/manifest.h"
#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"

static int
hex_decode32(const char *hex, unsigned char out[32])
{
	size_t i;

	if (strlen(hex) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		unsigned v = 0, k;
		for (k = 0; k < 2; k++) {
			char c = hex[2 * i + k];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

static int
is_hex(const char *s, size_t len)
{
	size_t i;

	if (strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int
ck_manifest_build(const struct ck_manifest *m, char **out, size_t *outlen)
{
	json_t *root, *parts, *counts, *ca, *parent;
	char ts[32], hex[65];
	size_t i;
	int r = CK_E_NOMEM;

	*out = NULL;
	if ((root = json_object()) == NULL)
		return CK_E_NOMEM;
	ck_time_format(m->created, ts, sizeof(ts));
	ck_hex_encode(m->counts.audit_head, 32, hex);
	if (m->parent_id[0] != '\0')
		parent = json_pack("{s:s, s:s}", "id", m->parent_id,
		    "manifest_sha256", m->parent_manifest_sha256);
	else
		parent = json_null();
	ca = json_pack("{s:s, s:s}", "subject", m->ca_subject, "cert_sha256",
	    m->ca_cert_sha256);
	counts = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, "
	    "s:I}",
	    "certs", (json_int_t)m->counts.certs,
	    "issued", (json_int_t)m->counts.issued,
	    "revoked", (json_int_t)m->counts.revoked,
	    "pending", (json_int_t)m->counts.pending,
	    "failed", (json_int_t)m->counts.failed,
	    "audit", (json_int_t)m->counts.audit,
	    "audit_last_id", (json_int_t)m->counts.audit_last_id,
	    "audit_head", hex,
	    "crl_number", (json_int_t)m->counts.crl_number,
	    "tokens", (json_int_t)m->counts.tokens);
	parts = json_array();
	if (parent == NULL || ca == NULL || counts == NULL || parts == NULL) {
		json_decref(parent);
		json_decref(ca);
		json_decref(counts);
		json_decref(parts);
		goto out;
	}
	for (i = 0; i < m->nparts; i++) {
		ck_hex_encode(m->parts[i].sha256, 32, hex);
		if (json_array_append_new(parts, json_pack(
		    "{s:s, s:I, s:I, s:I, s:s}", "name", m->parts[i].name,
		    "size", (json_int_t)m->parts[i].size,
		    "raw_size", (json_int_t)m->parts[i].raw_size,
		    "rows", (json_int_t)m->parts[i].rows, "sha256", hex)) != 0) {
			json_decref(parent);
			json_decref(ca);
			json_decref(counts);
			json_decref(parts);
			goto out;
		}
	}
	if (json_object_set_new(root, "format", json_string(CK_MANIFEST_FORMAT))
	    || json_object_set_new(root, "id", json_string(m->id))
	    || json_object_set_new(root, "kind", json_string(m->kind))
	    || json_object_set_new(root, "chain", json_string(m->chain))
	    || json_object_set_new(root, "parent", parent)
	    || json_object_set_new(root, "ca", ca)
	    || json_object_set_new(root, "created", json_string(ts))
	    || json_object_set_new(root, "created_unix",
		json_integer((json_int_t)m->created))
	    || json_object_set_new(root, "host", json_string(m->host))
	    || json_object_set_new(root, "operator",
		json_string(m->operator_name))
	    || json_object_set_new(root, "seq_from",
		json_integer((json_int_t)m->seq_from))
	    || json_object_set_new(root, "seq_to",
		json_integer((json_int_t)m->seq_to))
	    || json_object_set_new(root, "counts", counts)
	    || json_object_set_new(root, "parts", parts))
		goto out;
	if ((*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER))
	    == NULL)
		goto out;
	*outlen = strlen(*out);
	r = 0;
out:
	json_decref(root);
	if (r != 0)
		return ck_err_set(r, "cannot build the backup manifest");
	return 0;
}

static int
get_str(json_t *o, const char *key, char *buf, size_t bufsz)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return ck_err_set(CK_E_PARSE, "manifest: '%s' is missing or "
		    "not a string", key);
	if (ck_strcpy_bounded(buf, bufsz, json_string_value(v)) != 0)
		return ck_err_set(CK_E_PARSE, "manifest: '%s' is too long",
		    key);
	return 0;
}

static int
get_int(json_t *o, const char *key, int64_t min, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min)
		return ck_err_set(CK_E_PARSE, "manifest: '%s' is missing or "
		    "not an integer >= %lld", key, (long long)min);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int
get_u64(json_t *o, const char *key, uint64_t *out)
{
	int64_t v;
	int r;

	if ((r = get_int(o, key, 0, &v)) != 0)
		return r;
	*out = (uint64_t)v;
	return 0;
}

int
ck_manifest_parse(const char *json, size_t len, struct ck_manifest *m)
{
	json_t *root, *v, *parts, *counts, *ca, *parent;
	json_error_t jerr;
	char fmt[64], hex[80];
	size_t i;
	int r;

	memset(m, 0, sizeof(*m));
	SHA256((const unsigned char *)json, len, m->manifest_sha256);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return ck_err_set(CK_E_PARSE, "manifest: not a JSON object "
		    "(%s)", jerr.text);
	}
	if ((r = get_str(root, "format", fmt, sizeof(fmt))) != 0)
		goto out;
	if (strcmp(fmt, CK_MANIFEST_FORMAT) != 0) {
		r = ck_err_set(CK_E_PARSE, "manifest: format '%s' is not %s",
		    fmt, CK_MANIFEST_FORMAT);
		goto out;
	}
	if ((r = get_str(root, "id", m->id, sizeof(m->id))) != 0 ||
	    (r = get_str(root, "kind", m->kind, sizeof(m->kind))) != 0 ||
	    (r = get_str(root, "chain", m->chain, sizeof(m->chain))) != 0 ||
	    (r = get_str(root, "host", m->host, sizeof(m->host))) != 0 ||
	    (r = get_str(root, "operator", m->operator_name,
		sizeof(m->operator_name))) != 0 ||
	    (r = get_int(root, "created_unix", 0, &m->created)) != 0 ||
	    (r = get_int(root, "seq_from", 0, &m->seq_from)) != 0 ||
	    (r = get_int(root, "seq_to", 0, &m->seq_to)) != 0)
		goto out;
	if (!is_hex(m->id, 64) || !is_hex(m->chain, 32)) {
		r = ck_err_set(CK_E_PARSE, "manifest: bad id or chain");
		goto out;
	}
	{
		/* The id is what the set's identity fields hash to. */
		char src[256], hex2[65];
		unsigned char md[32];
		int n = snprintf(src, sizeof(src), "%s|%s|%lld|%lld|%lld",
		    m->chain, m->kind, (long long)m->seq_from,
		    (long long)m->seq_to, (long long)m->created);
		SHA256((unsigned char *)src, (size_t)n, md);
		ck_hex_encode(md, 32, hex2);
		if (strcmp(hex2, m->id) != 0) {
			r = ck_err_set(CK_E_PARSE, "manifest: its id does not "
			    "match its chain, kind, sequences and time");
			goto out;
		}
	}
	if (strcmp(m->kind, "full") != 0 && strcmp(m->kind, "incremental")
	    != 0) {
		r = ck_err_set(CK_E_PARSE, "manifest: unknown kind '%s'",
		    m->kind);
		goto out;
	}
	if (m->seq_to < m->seq_from) {
		r = ck_err_set(CK_E_PARSE, "manifest: seq_to %lld is before "
		    "seq_from %lld", (long long)m->seq_to,
		    (long long)m->seq_from);
		goto out;
	}
	parent = json_object_get(root, "parent");
	if (strcmp(m->kind, "full") == 0) {
		if (!json_is_null(parent) || m->seq_from != 0) {
			r = ck_err_set(CK_E_PARSE, "manifest: a full set has "
			    "a parent or does not start at sequence 0");
			goto out;
		}
	} else {
		if (!json_is_object(parent) ||
		    (r = get_str(parent, "id", m->parent_id,
			sizeof(m->parent_id))) != 0 ||
		    (r = get_str(parent, "manifest_sha256",
			m->parent_manifest_sha256,
			sizeof(m->parent_manifest_sha256))) != 0 ||
		    !is_hex(m->parent_id, 64) ||
		    !is_hex(m->parent_manifest_sha256, 64)) {
			if (r == 0)
				r = ck_err_set(CK_E_PARSE, "manifest: an "
				    "incremental set needs a parent");
			goto out;
		}
	}
	ca = json_object_get(root, "ca");
	if (!json_is_object(ca)) {
		r = ck_err_set(CK_E_PARSE, "manifest: 'ca' is missing");
		goto out;
	}
	if ((r = get_str(ca, "subject", m->ca_subject,
	    sizeof(m->ca_subject))) != 0 ||
	    (r = get_str(ca, "cert_sha256", m->ca_cert_sha256,
	    sizeof(m->ca_cert_sha256))) != 0)
		goto out;
	counts = json_object_get(root, "counts");
	if (!json_is_object(counts)) {
		r = ck_err_set(CK_E_PARSE, "manifest: 'counts' is missing");
		goto out;
	}
	if ((r = get_u64(counts, "certs", &m->counts.certs)) != 0 ||
	    (r = get_u64(counts, "issued", &m->counts.issued)) != 0 ||
	    (r = get_u64(counts, "revoked", &m->counts.revoked)) != 0 ||
	    (r = get_u64(counts, "pending", &m->counts.pending)) != 0 ||
	    (r = get_u64(counts, "failed", &m->counts.failed)) != 0 ||
	    (r = get_u64(counts, "audit", &m->counts.audit)) != 0 ||
	    (r = get_int(counts, "audit_last_id", 0,
		&m->counts.audit_last_id)) != 0 ||
	    (r = get_u64(counts, "crl_number", &m->counts.crl_number)) != 0 ||
	    (r = get_u64(counts, "tokens", &m->counts.tokens)) != 0 ||
	    (r = get_str(counts, "audit_head", hex, sizeof(hex))) != 0)
		goto out;
	if (hex_decode32(hex, m->counts.audit_head) != 0) {
		r = ck_err_set(CK_E_PARSE, "manifest: bad audit_head");
		goto out;
	}
	parts = json_object_get(root, "parts");
	if (!json_is_array(parts) || json_array_size(parts) >
	    sizeof(m->parts) / sizeof(m->parts[0])) {
		r = ck_err_set(CK_E_PARSE, "manifest: 'parts' is missing or "
		    "too long");
		goto out;
	}
	json_array_foreach(parts, i, v) {
		if (!json_is_object(v) ||
		    (r = get_str(v, "name", m->parts[i].name,
			sizeof(m->parts[i].name))) != 0 ||
		    (r = get_u64(v, "size", &m->parts[i].size)) != 0 ||
		    (r = get_u64(v, "raw_size", &m->parts[i].raw_size)) != 0 ||
		    (r = get_u64(v, "rows", &m->parts[i].rows)) != 0 ||
		    (r = get_str(v, "sha256", hex, sizeof(hex))) != 0 ||
		    hex_decode32(hex, m->parts[i].sha256) != 0) {
			if (r == 0)
				r = ck_err_set(CK_E_PARSE, "manifest: part %zu "
				    "is malformed", i);
			goto out;
		}
		m->nparts++;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

int
ck_hex_decode32(const char *hex, unsigned char out[32])
{
	return hex_decode32(hex, out) == 0 ? 0 :
	    ck_err_set(CK_E_PARSE, "not a SHA-256 in hex: '%.70s'", hex);
}
