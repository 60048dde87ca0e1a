/*
 * certkeep list / show: certificates in the store, through certkeepd
 * when it serves the home (admin.h: cert-list, cert-show).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "store/store.h"

static const char list_usage[] =
    "certkeep list --home DIR [--status pending|issued|revoked|failed|expired]\n"
    "        [--expiring-before YYYY-MM-DD] [--profile NAME] [--name TEXT]\n"
    "        [--limit N]";
static const char show_usage[] =
    "certkeep show --home DIR SERIAL [--pem]";

enum { O_STATUS = CLI_OPT__FIRST_LOCAL, O_EXPIRING, O_PROFILE, O_NAME,
	O_LIMIT, O_PEM };

int
cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "status", required_argument, NULL, O_STATUS },
		{ "expiring-before", required_argument, NULL, O_EXPIRING },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "name", required_argument, NULL, O_NAME },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home, *status = NULL, *profile = NULL, *name = NULL;
	int64_t before = 0;
	uint64_t v, limit = 0;
	json_t *req;
	int opt;

	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_STATUS:
			status = optarg;
			if (strcmp(optarg, "expired") != 0 &&
			    store_cert_status_parse(optarg) < 0) {
				fprintf(stderr, "certkeep: unknown status "
				    "'%s'\n", optarg);
				return cli_usage(list_usage);
			}
			break;
		case O_EXPIRING:
			if (ck_time_parse(optarg, &before) != 0)
				return cli_fail(CK_E_PARSE), CLI_EXIT_USAGE;
			break;
		case O_PROFILE:
			profile = optarg;
			break;
		case O_NAME:
			name = optarg;
			break;
		case O_LIMIT:
			if (ck_parse_u64(optarg, 1, 100000000, "--limit",
			    &v) != 0)
				return cli_fail(CK_E_PARSE), CLI_EXIT_USAGE;
			limit = v;
			break;
		default:
			return cli_usage(list_usage);
		}
	}
	if (com.help)
		return cli_help(list_usage);
	if (optind != argc)
		return cli_usage(list_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	/* Through certkeepd when it serves the home (cert-manager). */
	req = json_pack("{s:s, s:s*, s:s*, s:s*, s:I, s:I}", "action",
	    "cert-list", "status", status, "profile", profile, "name", name,
	    "expiring_before", (json_int_t)before, "limit", (json_int_t)limit);
	return cli_admin_run(home, req, NULL);
}

int
cmd_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "pem", no_argument, NULL, O_PEM },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home;
	int opt, aspem = 0;

	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		if (opt == O_PEM)
			aspem = 1;
		else
			return cli_usage(show_usage);
	}
	if (com.help)
		return cli_help(show_usage);
	if (optind + 1 != argc)
		return cli_usage(show_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	return cli_admin_run(home, json_pack("{s:s, s:s, s:b}", "action",
	    "cert-show", "serial", argv[optind], "pem", aspem), NULL);
}
