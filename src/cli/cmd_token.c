/*
 * certkeep token create|list|revoke: API tokens for the REST API.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ca/token.h"
#include "cli/cli.h"

static const char token_usage[] =
    "certkeep token create --home DIR --name NAME --profiles P1[,P2...]\n"
    "        [--dns-suffixes S,...] [--ip-ranges CIDR,...]\n"
    "        [--email-domains D,...] [--allow-revoke]\n"
    "       certkeep token list --home DIR\n"
    "       certkeep token revoke --home DIR ID|NAME";

enum { O_NAME = CLI_OPT__FIRST_LOCAL, O_PROFILES, O_DNS, O_IP, O_EMAIL,
	O_REVOKE };

int
cmd_token(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "name", required_argument, NULL, O_NAME },
		{ "profiles", required_argument, NULL, O_PROFILES },
		{ "dns-suffixes", required_argument, NULL, O_DNS },
		{ "ip-ranges", required_argument, NULL, O_IP },
		{ "email-domains", required_argument, NULL, O_EMAIL },
		{ "allow-revoke", no_argument, NULL, O_REVOKE },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_token_params tp;
	const char *home, *sub;
	json_t *req;
	int opt;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(token_usage);
	cli_common_init(&com);
	memset(&tp, 0, sizeof(tp));
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_NAME:
			tp.name = optarg;
			break;
		case O_PROFILES:
			tp.profiles = optarg;
			break;
		case O_DNS:
			tp.dns_suffixes = optarg;
			break;
		case O_IP:
			tp.ip_ranges = optarg;
			break;
		case O_EMAIL:
			tp.email_domains = optarg;
			break;
		case O_REVOKE:
			tp.can_revoke = 1;
			break;
		default:
			return cli_usage(token_usage);
		}
	}
	if (com.help)
		return cli_help(token_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	/* Through certkeepd when it serves the home (admin socket). */
	if (strcmp(sub, "create") == 0) {
		if (optind != argc || tp.name == NULL || tp.profiles == NULL)
			return cli_usage(token_usage);
		req = json_pack("{s:s, s:s, s:s, s:s*, s:s*, s:s*, s:b}",
		    "action", "token-create", "name", tp.name, "profiles",
		    tp.profiles, "dns_suffixes", tp.dns_suffixes, "ip_ranges",
		    tp.ip_ranges, "email_domains", tp.email_domains,
		    "can_revoke", tp.can_revoke);
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc)
			return cli_usage(token_usage);
		req = json_pack("{s:s}", "action", "token-list");
	} else if (strcmp(sub, "revoke") == 0) {
		if (optind + 1 != argc)
			return cli_usage(token_usage);
		req = json_pack("{s:s, s:s}", "action", "token-revoke", "id",
		    argv[optind]);
	} else
		return cli_usage(token_usage);
	return cli_admin_run(home, req, NULL);
}
