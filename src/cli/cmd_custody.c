/*
 * certkeep custody add|show|verify: the chain-of-custody ledger of backup
 * artefacts (src/backup/custody.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "backup/custody.h"
#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/timeutil.h"

static const char custody_usage[] =
    "certkeep custody add --home DIR --artefact FILE|SHA256 --event EVENT\n"
    "        --place TEXT [--kind KIND] [--operator NAME] [--detail TEXT]\n"
    "        [--export] [--passphrase-file F | --passphrase-fd N]\n"
    "       certkeep custody show --home DIR [--artefact FILE|SHA256] "
    "[--json]\n"
    "       certkeep custody verify --home DIR [--file FILE.custody ...]\n"
    "events: created copied moved verified stored retrieved restored "
    "destroyed\n"
    "kinds:  data-backup key-backup key-share (default: the artefact's, "
    "else by\n"
    "        the file's extension: .ckb, .p8, .share)";

#define MAX_FILES 256

enum { O_ARTEFACT = CLI_OPT__FIRST_LOCAL, O_EVENT, O_PLACE, O_KIND,
	O_OPERATOR, O_DETAIL, O_EXPORT, O_JSON, O_FILE };

struct artefact {
	char id[65];		/* hex SHA-256, lower case */
	const char *file;	/* the file it was computed from, or NULL */
};

/* --artefact: an existing regular file (hashed) or a SHA-256 in hex. */
static int
artefact_resolve(const char *arg, struct artefact *a)
{
	struct stat st;
	size_t i;

	memset(a, 0, sizeof(*a));
	if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
		a->file = arg;
		return ck_custody_file_sha256(arg, a->id);
	}
	if (strlen(arg) != 64 || strspn(arg, "0123456789abcdefABCDEF") != 64)
		return ck_err_set(CK_E_INVAL, "--artefact %s: no such file, "
		    "and not a SHA-256 (64 hex digits)", arg);
	for (i = 0; i < 64; i++)
		a->id[i] = (char)(arg[i] >= 'A' && arg[i] <= 'F' ?
		    arg[i] - 'A' + 'a' : arg[i]);
	a->id[64] = '\0';
	return 0;
}

static int
count_cb(const struct store_custody *e, void *arg)
{
	(void)e;
	(*(int64_t *)arg)++;
	return 0;
}

static int
print_entry(const struct store_custody *e, void *arg)
{
	char t[32];
	int *n = arg;

	if ((*n)++ == 0)
		printf("%5s %-20s %-12s %-9s %-11s %-24s %s\n", "ID", "TIME",
		    "OPERATOR", "EVENT", "KIND", "PLACE", "DIGEST");
	ck_time_format(e->time, t, sizeof(t));
	printf("%5lld %-20s %-12s %-9s %-11s %-24s %.12s%s%s\n",
	    (long long)e->id, t, e->operator_name, e->event, e->kind,
	    e->place, e->artefact, e->detail[0] ? " -- " : "", e->detail);
	return 0;
}

static int
do_add(struct ck_ca *ca, const struct cli_common *com, const char *art_arg,
    const char *event, const char *place, const char *kind,
    const char *op, const char *detail, int export)
{
	struct artefact a;
	unsigned char hash[32];
	char out[4200];
	int64_t n = 0, id;
	int r, guess;

	if ((r = artefact_resolve(art_arg, &a)) != 0)
		return r;
	if (export && a.file == NULL)
		return ck_err_set(CK_E_INVAL, "--export needs --artefact to "
		    "name the artefact's file (the record is written beside "
		    "it)");
	if (kind == NULL) {
		if ((r = store_custody_iter(ca->st, a.id, count_cb, &n)) != 0)
			return r;
		if (n == 0) {
			if (a.file == NULL ||
			    (guess = ck_custody_kind_guess(a.file)) < 0)
				return ck_err_set(CK_E_INVAL, "the artefact "
				    "has no custody entry yet: give --kind "
				    "(data-backup, key-backup, key-share)");
			kind = ck_custody_kind_name(guess);
		}
	}
	if (export && snprintf(out, sizeof(out), "%s%s", a.file,
	    CK_CUSTODY_SUFFIX) >= (int)sizeof(out))
		return ck_err_set(CK_E_TOOBIG, "file name too long");
	/* Unlock and check first: a refusal changes nothing. */
	if (export && ((r = ck_ca_unlock(ca, &com->pass)) != 0 ||
	    (r = ck_custody_export_check(ca)) != 0))
		return r;
	if ((r = ck_custody_record(ca, event, a.id, kind, place, detail,
	    op)) != 0 ||
	    (r = store_custody_last(ca->st, &id, hash)) != 0)
		return r;
	printf("Recorded custody entry %lld: %s, artefact %.16s...\n",
	    (long long)id, event, a.id);
	if (export) {
		if ((r = ck_custody_export(ca, a.id, out)) != 0)
			return r;
		printf("Wrote %s.\n", out);
	}
	return 0;
}

static int
do_show(struct ck_ca *ca, const char *art_arg, int json)
{
	struct artefact a;
	char *text = NULL;
	int r, n = 0;

	if (art_arg != NULL && (r = artefact_resolve(art_arg, &a)) != 0)
		return r;
	if (json) {
		if ((r = ck_custody_list_json(ca->st, art_arg ? a.id : NULL,
		    &text)) != 0)
			return r;
		printf("%s\n", text);
		free(text);
		return 0;
	}
	if ((r = store_custody_iter(ca->st, art_arg ? a.id : NULL,
	    print_entry, &n)) != 0)
		return r;
	if (n == 0)
		printf("No custody entries%s.\n", art_arg ? " for this "
		    "artefact" : "");
	return 0;
}

/* Exit status of verify; faults are named on stderr. */
static int
do_verify(struct ck_ca *ca, const char *const *files, size_t nfiles)
{
	struct ck_custody_report rep;
	int r, ex = CLI_EXIT_OK;
	size_t i;

	r = ck_custody_verify(ca, &rep);
	if (r == CK_E_TAMPER) {
		fprintf(stderr, "certkeep: custody ledger TAMPERED: entry "
		    "%lld: %s (%lld entries before it verified)\n",
		    (long long)rep.first_bad, rep.reason,
		    (long long)rep.entries);
		return CLI_EXIT_FAIL;
	}
	if (r != 0)
		return cli_fail(r);
	printf("custody ledger intact: %lld entries verified\n",
	    (long long)rep.entries);
	if (nfiles > 0 && ca->chain == NULL) {
		fprintf(stderr, "certkeep: error: the CA has no certificate "
		    "yet: custody records cannot be checked\n");
		return CLI_EXIT_FAIL;
	}
	for (i = 0; i < nfiles; i++) {
		ck_err_clear();
		r = ck_custody_check_file(files[i], ca->chain, ca->st, &rep);
		if (r == 0) {
			printf("%s: intact: %lld entr%s of %s %.16s..., up "
			    "to ledger entry %lld", files[i],
			    (long long)rep.entries, rep.entries == 1 ? "y" :
			    "ies", rep.kind, rep.artefact,
			    (long long)rep.last_id);
			/* An older record: not a fault, but say so. */
			if (rep.later > 0)
				printf(" (the ledger has %lld later entr%s "
				    "for it)", (long long)rep.later,
				    rep.later == 1 ? "y" : "ies");
			printf("\n");
			continue;
		}
		ex = CLI_EXIT_FAIL;
		if (r == CK_E_TAMPER)
			fprintf(stderr, "certkeep: %s: custody record "
			    "TAMPERED: entry %lld: %s\n", files[i],
			    (long long)rep.first_bad, rep.reason);
		else
			fprintf(stderr, "certkeep: %s: error: %s\n", files[i],
			    ck_err_msg()[0] ? ck_err_msg() : ck_strerror(r));
	}
	return ex;
}

/* Through certkeepd (remotely, or while it serves the home): the ledger
 * is written by its committer. The artefact's digest is computed here,
 * from the file the operator has. */
static int
custody_routed(const char *home, const char *sub, const char *art_arg,
    const char *event, const char *place, const char *kind, const char *op,
    const char *detail, int export, int json, size_t nfiles)
{
	struct artefact a;
	json_t *req;
	int r, guess;

	if (export)
		return cli_fail(ck_err_set(CK_E_INVAL, "certkeepd serves this "
		    "CA: it writes the signed .custody record beside the sets "
		    "it makes; --export (signed by the CA key, here) needs "
		    "certkeepd stopped"));
	if (nfiles > 0)
		return cli_fail(ck_err_set(CK_E_INVAL, "certkeepd serves this "
		    "CA: 'custody verify' checks the ledger through it; check "
		    "a .custody file against the CA's chain with 'openssl cms "
		    "-verify' (docs/backup.md), or with certkeepd stopped"));
	if (art_arg != NULL && (r = artefact_resolve(art_arg, &a)) != 0)
		return cli_fail(r);
	if ((req = json_pack("{s:s, s:s}", "action", "custody", "op", sub)) ==
	    NULL)
		return cli_fail(ck_err_set(CK_E_NOMEM, "out of memory"));
	r = 0;
	if (art_arg != NULL)
		r |= json_object_set_new(req, "artefact", json_string(a.id));
	if (event != NULL)
		r |= json_object_set_new(req, "event", json_string(event));
	if (place != NULL)
		r |= json_object_set_new(req, "place", json_string(place));
	if (kind != NULL)
		r |= json_object_set_new(req, "kind", json_string(kind));
	else if (art_arg != NULL && a.file != NULL &&
	    (guess = ck_custody_kind_guess(a.file)) >= 0)
		r |= json_object_set_new(req, "kind_guess",
		    json_string(ck_custody_kind_name(guess)));
	if (op != NULL)
		r |= json_object_set_new(req, "operator", json_string(op));
	if (detail != NULL)
		r |= json_object_set_new(req, "detail", json_string(detail));
	if (json)
		r |= json_object_set_new(req, "json", json_true());
	if (r != 0) {
		json_decref(req);
		/* json_string() refuses text that is not UTF-8. */
		return cli_fail(ck_err_set(CK_E_INVAL, "the arguments must be "
		    "UTF-8 text"));
	}
	return cli_admin_run(home, req, NULL);
}

int
cmd_custody(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "artefact", required_argument, NULL, O_ARTEFACT },
		{ "event", required_argument, NULL, O_EVENT },
		{ "place", required_argument, NULL, O_PLACE },
		{ "kind", required_argument, NULL, O_KIND },
		{ "operator", required_argument, NULL, O_OPERATOR },
		{ "detail", required_argument, NULL, O_DETAIL },
		{ "export", no_argument, NULL, O_EXPORT },
		{ "json", no_argument, NULL, O_JSON },
		{ "file", required_argument, NULL, O_FILE },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_ca *ca = NULL;
	const char *home, *sub, *art = NULL, *event = NULL, *place = NULL;
	const char *kind = NULL, *op = NULL, *detail = NULL;
	const char *files[MAX_FILES];
	size_t nfiles = 0;
	int opt, r, export = 0, json = 0, ex = CLI_EXIT_OK;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(custody_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		switch (opt) {
		case CLI_OPT_BAD:
			return CLI_EXIT_USAGE;
		case O_ARTEFACT:
			art = optarg;
			break;
		case O_EVENT:
			event = optarg;
			break;
		case O_PLACE:
			place = optarg;
			break;
		case O_KIND:
			kind = optarg;
			break;
		case O_OPERATOR:
			op = optarg;
			break;
		case O_DETAIL:
			detail = optarg;
			break;
		case O_EXPORT:
			export = 1;
			break;
		case O_JSON:
			json = 1;
			break;
		case O_FILE:
			if (nfiles == MAX_FILES) {
				fprintf(stderr, "certkeep: at most %d --file "
				    "options\n", MAX_FILES);
				return CLI_EXIT_USAGE;
			}
			files[nfiles++] = optarg;
			break;
		default:
			return cli_usage(custody_usage);
		}
	}
	if (com.help)
		return cli_help(custody_usage);
	if (optind != argc)
		return cli_usage(custody_usage);
	if (strcmp(sub, "add") == 0) {
		if (art == NULL || event == NULL || place == NULL || json ||
		    nfiles > 0)
			return cli_usage(custody_usage);
	} else if (strcmp(sub, "show") == 0) {
		if (event || place || kind || op || detail || export ||
		    nfiles > 0)
			return cli_usage(custody_usage);
	} else if (strcmp(sub, "verify") == 0) {
		if (art || event || place || kind || op || detail || export ||
		    json)
			return cli_usage(custody_usage);
	} else
		return cli_usage(custody_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (cli_remote_active() || cli_admin_served(home))
		return custody_routed(home, sub, art, event, place, kind, op,
		    detail, export, json, nfiles);
	if ((r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if (strcmp(sub, "add") == 0) {
		if ((r = do_add(ca, &com, art, event, place, kind, op, detail,
		    export)) != 0)
			ex = cli_fail(r);
	} else if (strcmp(sub, "show") == 0) {
		if ((r = do_show(ca, art, json)) != 0)
			ex = cli_fail(r);
	} else
		ex = do_verify(ca, files, nfiles);
	ck_ca_close(ca);
	return ex;
}
