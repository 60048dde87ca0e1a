/*
 * certkeep - the operator's command line for a certkeep CA.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "common/secmem.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{ "init", cmd_init, "create a CA home (root or issuing CA)" },
	{ "ca", cmd_ca, "install an issuing CA's certificate; show the CA" },
	{ "issue", cmd_issue, "issue a certificate from a CSR under a profile" },
	{ "revoke", cmd_revoke, "revoke a certificate" },
	{ "crl", cmd_crl, "sign and publish a new CRL" },
	{ "list", cmd_list, "list certificates" },
	{ "show", cmd_show, "show one certificate" },
	{ "audit", cmd_audit, "show or verify the audit log" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: certkeep COMMAND [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'certkeep COMMAND --help' for a command's options."
	    "\nThe CA home is --home DIR or $CERTKEEP_HOME.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	ck_process_harden();
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0) {
		printf("certkeep %s (%s)\n", CERTKEEP_VERSION,
		    OpenSSL_version(OPENSSL_VERSION));
		return CLI_EXIT_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "certkeep: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
