/*
 * certkeep request list|show|approve|deny: requests that wait for a
 * certificate manager's approval (docs/roles.md, "Approvals"). Through
 * certkeepd when it serves the home.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/strutil.h"

static const char request_usage[] =
    "certkeep request list --home DIR\n"
    "               [--status pending|approved|denied|issued|all]\n"
    "       certkeep request show --home DIR ID\n"
    "       certkeep request approve --home DIR ID [--reason TEXT]\n"
    "               [--passphrase-file FILE | --passphrase-fd N]\n"
    "       certkeep request deny --home DIR ID --reason TEXT";

enum { O_STATUS = CLI_OPT__FIRST_LOCAL, O_REASON };

int
cmd_request(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "status", required_argument, NULL, O_STATUS },
		{ "reason", required_argument, NULL, O_REASON },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home, *sub, *status = NULL, *reason = NULL;
	json_t *req;
	uint64_t id = 0;
	int opt;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(request_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_STATUS:
			status = optarg;
			break;
		case O_REASON:
			reason = optarg;
			break;
		default:
			return cli_usage(request_usage);
		}
	}
	if (com.help)
		return cli_help(request_usage);
	if (strcmp(sub, "list") == 0) {
		if (optind != argc || reason != NULL)
			return cli_usage(request_usage);
		req = status != NULL ? json_pack("{s:s, s:s}", "action",
		    "request-list", "status", status) : json_pack("{s:s}",
		    "action", "request-list");
	} else if (strcmp(sub, "show") == 0 || strcmp(sub, "approve") == 0 ||
	    strcmp(sub, "deny") == 0) {
		if (optind + 1 != argc || status != NULL)
			return cli_usage(request_usage);
		if (ck_parse_u64(argv[optind], 1, INT64_MAX, "request id",
		    &id) != 0)
			return cli_fail(CK_E_INVAL), CLI_EXIT_USAGE;
		if (strcmp(sub, "show") == 0) {
			if (reason != NULL)
				return cli_usage(request_usage);
			req = json_pack("{s:s, s:I}", "action", "request-list",
			    "id", (json_int_t)id);
		} else if (strcmp(sub, "deny") == 0) {
			if (reason == NULL || reason[0] == '\0') {
				fprintf(stderr, "certkeep: a denial needs "
				    "--reason\n");
				return cli_usage(request_usage);
			}
			req = json_pack("{s:s, s:I, s:s}", "action", "deny",
			    "id", (json_int_t)id, "reason", reason);
		} else
			req = reason != NULL ? json_pack("{s:s, s:I, s:s}",
			    "action", "approve", "id", (json_int_t)id,
			    "reason", reason) : json_pack("{s:s, s:I}",
			    "action", "approve", "id", (json_int_t)id);
	} else
		return cli_usage(request_usage);
	if ((home = cli_home(&com)) == NULL) {
		json_decref(req);
		return CLI_EXIT_USAGE;
	}
	return cli_admin_run_pass(home, req, NULL, &com.pass);
}
