/*
 * certkeep revoke: revoke a certificate by serial.
 */
#include <stdio.h>
#include <string.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
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
	struct ck_ca *ca = NULL;
	const char *home, *serial = NULL;
	int opt, r, reason = 0, ex = CLI_EXIT_OK;

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
	if ((r = ck_ca_open(home, &ca)) != 0 ||
	    (r = ck_ca_revoke(ca, serial, reason)) != 0)
		ex = cli_fail(r);
	else
		printf("Revoked %s (%s). Publish a new CRL with 'certkeep "
		    "crl'.\n", serial, ck_crl_reason_name(reason));
	ck_ca_close(ca);
	return ex;
}
