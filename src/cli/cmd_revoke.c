/*
 * certkeep revoke: revoke a certificate by serial.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "x509/certbuild.h"

static const char revoke_usage[] =
    "certkeep revoke --home DIR --serial HEX [--reason REASON]\n"
    "  REASON: unspecified, keyCompromise, cACompromise, affiliationChanged,\n"
    "          superseded, cessationOfOperation, certificateHold,\n"
    "          privilegeWithdrawn, aACompromise";

enum { O_SERIAL = CLI_OPT__FIRST_LOCAL, O_REASON };

int
cmd_revoke(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "serial", required_argument, NULL, O_SERIAL },
		{ "reason", required_argument, NULL, O_REASON },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home, *serial = NULL;
	int opt, reason = 0;

	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_SERIAL:
			serial = optarg;
			break;
		case O_REASON:
			reason = ck_crl_reason_parse(optarg);
			if (reason < 0 || reason == 8) {
				fprintf(stderr, "certkeep: unknown revocation "
				    "reason '%s'\n", optarg);
				return cli_usage(revoke_usage);
			}
			break;
		default:
			return cli_usage(revoke_usage);
		}
	}
	if (com.help)
		return cli_help(revoke_usage);
	if (optind != argc || serial == NULL)
		return cli_usage(revoke_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	/* Through certkeepd when it serves the home (admin socket). */
	return cli_admin_run(home, json_pack("{s:s, s:s, s:i}", "action",
	    "revoke", "serial", serial, "reason", reason), NULL);
}
