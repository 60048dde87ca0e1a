/*
 * certkeep operator add|grant|remove|list|role-separation: operators and
 * their roles (docs/roles.md). Through certkeepd when it serves the home.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static const char operator_usage[] =
    "certkeep operator add --home DIR --name NAME --role ROLE\n"
    "           [--os-user USER] [--cert FILE]   (one of them at least)\n"
    "       certkeep operator cert --home DIR --name NAME --cert FILE|--unbind\n"
    "       certkeep operator grant --home DIR --name NAME --role ROLE\n"
    "       certkeep operator remove --home DIR NAME\n"
    "       certkeep operator list --home DIR [--all]\n"
    "       certkeep operator role-separation --home DIR on|off\n"
    "  ROLE: ca-admin, cert-manager, auditor, backup-operator\n"
    "  --cert: a certificate of this CA's 'operator' profile whose CN is\n"
    "  NAME: the operator may then act remotely over HTTPS with it";

enum { O_NAME = CLI_OPT__FIRST_LOCAL, O_ROLE, O_OSUSER, O_ALL, O_CERT,
	O_UNBIND };

/* The PEM text of FILE (a certificate), new string; NULL after an error
 * message. */
static char *
read_cert(const char *file)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	char *s;
	int r;

	if ((r = cli_read_input(file, 16384, &buf, &len)) != 0) {
		cli_fail(r);
		return NULL;
	}
	s = strndup((const char *)buf, len);
	free(buf);
	return s;
}

int
cmd_operator(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "name", required_argument, NULL, O_NAME },
		{ "role", required_argument, NULL, O_ROLE },
		{ "os-user", required_argument, NULL, O_OSUSER },
		{ "all", no_argument, NULL, O_ALL },
		{ "cert", required_argument, NULL, O_CERT },
		{ "unbind", no_argument, NULL, O_UNBIND },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home, *sub, *name = NULL, *role = NULL, *osuser = NULL;
	const char *certf = NULL;
	char *cert = NULL;
	json_t *req;
	int opt, all = 0, unbind = 0;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(operator_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_NAME:
			name = optarg;
			break;
		case O_ROLE:
			role = optarg;
			break;
		case O_OSUSER:
			osuser = optarg;
			break;
		case O_ALL:
			all = 1;
			break;
		case O_CERT:
			certf = optarg;
			break;
		case O_UNBIND:
			unbind = 1;
			break;
		default:
			return cli_usage(operator_usage);
		}
	}
	if (com.help)
		return cli_help(operator_usage);
	if (certf != NULL && (cert = read_cert(certf)) == NULL)
		return CLI_EXIT_FAIL;
	if (strcmp(sub, "add") == 0) {
		if (optind != argc || name == NULL || role == NULL ||
		    (osuser == NULL && cert == NULL)) {
			free(cert);
			return cli_usage(operator_usage);
		}
		req = json_pack("{s:s, s:s, s:s, s:s*, s:s*}", "action",
		    "operator-add", "name", name, "role", role, "os_user",
		    osuser, "cert", cert);
	} else if (strcmp(sub, "cert") == 0) {
		if (optind != argc || name == NULL || (cert == NULL) ==
		    (unbind == 0)) {
			free(cert);
			return cli_usage(operator_usage);
		}
		req = json_pack("{s:s, s:s, s:s*}", "action", "operator-cert",
		    "name", name, "cert", cert);
	} else if (strcmp(sub, "grant") == 0) {
		if (optind != argc || name == NULL || role == NULL)
			return cli_usage(operator_usage);
		req = json_pack("{s:s, s:s, s:s}", "action", "operator-grant",
		    "name", name, "role", role);
	} else if (strcmp(sub, "remove") == 0) {
		if (optind + 1 != argc)
			return cli_usage(operator_usage);
		req = json_pack("{s:s, s:s}", "action", "operator-remove",
		    "name", argv[optind]);
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc)
			return cli_usage(operator_usage);
		req = json_pack("{s:s, s:b}", "action", "operator-list", "all",
		    all);
	} else if (strcmp(sub, "role-separation") == 0) {
		if (optind + 1 != argc || (strcmp(argv[optind], "on") != 0 &&
		    strcmp(argv[optind], "off") != 0))
			return cli_usage(operator_usage);
		req = json_pack("{s:s, s:b}", "action",
		    "operator-role-separation", "on",
		    strcmp(argv[optind], "on") == 0);
	} else {
		free(cert);
		return cli_usage(operator_usage);
	}
	free(cert);
	if ((home = cli_home(&com)) == NULL) {
		json_decref(req);
		return CLI_EXIT_USAGE;
	}
	return cli_admin_run(home, req, NULL);
}
