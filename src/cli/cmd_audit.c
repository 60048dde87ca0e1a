/*
 * certkeep audit show|verify|checkpoint|export
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"

static const char audit_usage[] =
    "certkeep audit verify --home DIR\n"
    "       certkeep audit verify --extract FILE --ca CERT.pem\n"
    "       certkeep audit show --home DIR [--from ID]\n"
    "       certkeep audit checkpoint --home DIR\n"
    "           [--passphrase-file FILE | --passphrase-fd N]\n"
    "       certkeep audit export --home DIR [--from ID] [--to ID] "
    "--out FILE";

enum { O_FROM = CLI_OPT__FIRST_LOCAL, O_TO, O_OUT, O_EXTRACT, O_CA };

/* The certificates in a PEM file (an auditor's copy of the CA's). */
static int
load_certs(const char *path, STACK_OF(X509) **out)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	STACK_OF(X509) *sk;
	BIO *b;
	X509 *x;
	int r;

	if ((r = ck_fs_read(path, 1024 * 1024, &buf, &len)) != 0)
		return r;
	if ((sk = sk_X509_new_null()) == NULL ||
	    (b = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		sk_X509_free(sk);
		free(buf);
		return CK_E_NOMEM;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x))
			X509_free(x);
	ERR_clear_error();
	BIO_free(b);
	free(buf);
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return ck_err_set(CK_E_PARSE, "%s holds no PEM certificate",
		    path);
	}
	*out = sk;
	return 0;
}

static int
report(int r, const struct audit_signed_report *rep, const char *what)
{
	char t[32];

	if (r == CK_E_TAMPER) {
		fprintf(stderr, "certkeep: %s TAMPERED: entry %lld: %s (%lld "
		    "entries before it verified)\n", what,
		    (long long)rep->chain.first_bad, rep->chain.reason,
		    (long long)rep->chain.entries);
		return CLI_EXIT_FAIL;
	}
	if (r != 0)
		return cli_fail(r);
	printf("%s intact: %lld entries verified, %lld signed "
	    "checkpoint(s)", what, (long long)rep->chain.entries,
	    (long long)rep->checkpoints);
	if (rep->last_checkpoint != 0) {
		ck_time_format(rep->last_checkpoint_time, t, sizeof(t));
		printf("; the last, entry %lld of %s, anchors all but the "
		    "last %lld entries\n", (long long)rep->last_checkpoint, t,
		    (long long)rep->unanchored);
	} else
		printf("; no checkpoint yet: nothing is anchored by a "
		    "signature\n");
	return CLI_EXIT_OK;
}

static int
verify_extract(const char *file, const char *cafile)
{
	struct audit_signed_report rep;
	STACK_OF(X509) *trusted = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	int r, ex;

	if (cafile == NULL) {
		fprintf(stderr, "certkeep: audit verify --extract needs --ca "
		    "(the CA certificate you trust, not the extract's copy)\n");
		return CLI_EXIT_USAGE;
	}
	if ((r = load_certs(cafile, &trusted)) != 0)
		return cli_fail(r);
	if ((r = ck_fs_read(file, AUDIT_EXPORT_MAX, &buf, &len)) != 0) {
		sk_X509_pop_free(trusted, X509_free);
		return cli_fail(r);
	}
	r = audit_export_verify(buf, len, trusted, &rep);
	ex = report(r, &rep, "audit extract");
	free(buf);
	sk_X509_pop_free(trusted, X509_free);
	return ex;
}

int
cmd_audit(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "from", required_argument, NULL, O_FROM },
		{ "to", required_argument, NULL, O_TO },
		{ "out", required_argument, NULL, O_OUT },
		{ "extract", required_argument, NULL, O_EXTRACT },
		{ "ca", required_argument, NULL, O_CA },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_ca *ca = NULL;
	const char *home, *sub, *outf = NULL, *extract = NULL, *cafile = NULL;
	uint64_t from = 1, to = 0;
	int opt, r, ex = CLI_EXIT_OK, written;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(audit_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		if (opt == O_FROM || opt == O_TO) {
			if (ck_parse_u64(optarg, 1, INT64_MAX, opt == O_FROM ?
			    "--from" : "--to", opt == O_FROM ? &from : &to) !=
			    0)
				return cli_fail(CK_E_PARSE), CLI_EXIT_USAGE;
		} else if (opt == O_OUT)
			outf = optarg;
		else if (opt == O_EXTRACT)
			extract = optarg;
		else if (opt == O_CA)
			cafile = optarg;
		else
			return cli_usage(audit_usage);
	}
	if (com.help)
		return cli_help(audit_usage);
	if (optind != argc)
		return cli_usage(audit_usage);
	if (strcmp(sub, "show") != 0 && strcmp(sub, "verify") != 0 &&
	    strcmp(sub, "checkpoint") != 0 && strcmp(sub, "export") != 0)
		return cli_usage(audit_usage);
	if (strcmp(sub, "verify") == 0 && extract != NULL)
		return verify_extract(extract, cafile);
	if (strcmp(sub, "export") == 0 && outf == NULL)
		return cli_usage(audit_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	/* show, verify and export through certkeepd when it serves the
	 * home (admin socket); a checkpoint needs the key, here. */
	if (strcmp(sub, "show") == 0)
		return cli_admin_run(home, json_pack("{s:s, s:I}", "action",
		    "audit-show", "from", (json_int_t)from), NULL);
	if (strcmp(sub, "verify") == 0)
		return cli_admin_run(home, json_pack("{s:s}", "action",
		    "audit-verify"), NULL);
	if (strcmp(sub, "export") == 0)
		return cli_admin_run(home, json_pack("{s:s, s:I, s:I}",
		    "action", "audit-export", "from", (json_int_t)from, "to",
		    (json_int_t)to), outf);
	/* A checkpoint: by certkeepd when it serves the home (it holds the
	 * key), else here. */
	{
		json_t *reply = NULL;
		r = cli_admin_call(home, json_pack("{s:s}", "action",
		    "checkpoint"), 0, &reply);
		if (r == 0) {
			if ((ex = cli_admin_failed(reply)) == 0)
				fputs(json_string_value(json_object_get(reply,
				    "out")) ? json_string_value(json_object_get(
				    reply, "out")) : "", stdout);
			json_decref(reply);
			return ex;
		}
		if (r != CK_E_NOTFOUND)
			return cli_fail(r);
		ck_err_clear();
	}
	if ((r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if ((r = ck_ca_unlock(ca, &com.pass)) != 0 ||
	    (r = audit_checkpoint(ca, NULL, &written)) != 0)
		ex = cli_fail(r);
	else
		printf("%s\n", written ? "checkpoint written" :
		    "the last entry is a checkpoint already");
	ck_ca_close(ca);
	return ex;
}
