/*
 * certkeep home split|join: give a CA home a key owner besides its
 * service user, or give it back whole to the service user
 * (src/ca/home_split.h, docs/signer.md).
 */
#include <stdio.h>
#include <string.h>

#include "ca/home_split.h"
#include "cli/cli.h"
#include "common/err.h"

static const char home_usage[] =
    "certkeep home split --home DIR --user SERVICE-USER --key-owner "
    "KEY-OWNER\n"
    "       certkeep home join --home DIR --user SERVICE-USER\n\n"
    "As root, with certkeepd stopped. split: the home, its configuration,\n"
    "CA certificate files and private/ become KEY-OWNER's, the store stays\n"
    "SERVICE-USER's ([server] user); join: all of it SERVICE-USER's again.";

enum { O_USER = CLI_OPT__FIRST_LOCAL, O_KEYOWNER };

int
cmd_home(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "user", required_argument, NULL, O_USER },
		{ "key-owner", required_argument, NULL, O_KEYOWNER },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home, *sub, *user = NULL, *key_owner = NULL;
	int opt, r, split;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(home_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_USER:
			user = optarg;
			break;
		case O_KEYOWNER:
			key_owner = optarg;
			break;
		default:
			return cli_usage(home_usage);
		}
	}
	if (com.help)
		return cli_help(home_usage);
	split = strcmp(sub, "split") == 0;
	if (optind != argc || user == NULL || (!split &&
	    strcmp(sub, "join") != 0) || (split != (key_owner != NULL)))
		return cli_usage(home_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if ((r = ck_home_layout(home, user, split ? key_owner : NULL)) != 0)
		return cli_fail(r);
	if (split)
		printf("%s belongs to %s (key owner), its store to %s (service "
		    "user)\n", home, key_owner, user);
	else
		printf("%s belongs to %s\n", home, user);
	return CLI_EXIT_OK;
}
