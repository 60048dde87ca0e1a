/*
 * certkeep - the operator's command line for a certkeep CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "audit/audit.h"
#include "common/err.h"
#include "common/privs.h"
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
	{ "token", cmd_token, "create, list and revoke REST API tokens" },
	{ "acme", cmd_acme, "create, list and revoke ACME EAB keys" },
	{ "service", cmd_service, "start, stop, reload certkeepd; status" },
	{ "backup", cmd_backup, "back up the CA; verify, list and drill "
	    "backups" },
	{ "restore", cmd_restore, "restore a CA from backup sets" },
	{ "key", cmd_key, "back up and restore the CA key itself; M-of-N "
	    "unlock" },
	{ "unlock", cmd_unlock, "give certkeepd a key share while it is "
	    "locked" },
	{ "custody", cmd_custody, "record and check hand-overs of backups" },
	{ "operator", cmd_operator, "add, list and remove operators and "
	    "their roles" },
	{ "request", cmd_request, "list, approve and deny requests that "
	    "wait for approval" },
};

/* The commands that also run remotely (--server): as admin requests to
 * certkeepd over HTTPS. */
static int
remote_command(const char *name)
{
	static const char *const names[] = { "issue", "revoke", "crl",
	    "list", "show", "audit", "token", "operator", "acme", "request",
	    "backup", "custody", NULL };
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: certkeep COMMAND [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'certkeep COMMAND --help' for a command's options."
	    "\nThe CA home is --home DIR or $CERTKEEP_HOME.\n"
	    "\nRemote operators: certkeep --server https://HOST:PORT --cert "
	    "FILE --key FILE\n  [--cacert FILE] COMMAND ... (issue, revoke, "
	    "crl, list, show, audit, token,\n  operator, acme eab, request) over HTTPS with "
	    "the operator's certificate.\n");
}

/* The --home given to a command, else CERTKEEP_HOME. */
static const char *
home_arg(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--home=", 7) == 0)
			return argv[i] + 7;
	}
	return getenv("CERTKEEP_HOME");
}

/*
 * Run as root, certkeep acts as the owner of the CA home, so that every
 * file in it keeps that owner (and certkeepd, which never runs as root,
 * can use them). The audit log still names the operator who ran it.
 */
static int
become_home_owner(int argc, char **argv)
{
	const char *home = home_arg(argc, argv);
	int switched;

	if (geteuid() != 0 || home == NULL || strcmp(argv[1], "init") == 0)
		return 0;
	(void)audit_os_user();
	if (ck_privs_drop(NULL, home, 1, &switched) != 0 &&
	    ck_err_msg()[0] != '\0' && strstr(ck_err_msg(), "does not exist")
	    == NULL) {
		fprintf(stderr, "certkeep: error: %s\n", ck_err_msg());
		return -1;
	}
	ck_err_clear();
	return 0;
}

int
main(int argc, char **argv)
{
	size_t i;

	ck_process_harden();
	ck_ca_checkpoint_on_close(1);
	if ((i = (size_t)cli_remote_options(&argc, &argv)) != CLI_EXIT_OK)
		return (int)i;
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
		if (strcmp(argv[1], commands[i].name) == 0) {
			if (cli_remote_active()) {
				if (!remote_command(argv[1])) {
					fprintf(stderr, "certkeep: %s works on "
					    "the CA's files and cannot run "
					    "remotely (--server): run it on the "
					    "CA's host\n", argv[1]);
					return CLI_EXIT_USAGE;
				}
				return commands[i].fn(argc - 1, argv + 1);
			}
			if (become_home_owner(argc, argv) != 0 ||
			    cli_authorize_local(home_arg(argc, argv),
			    argc - 1, argv + 1) != CLI_EXIT_OK)
				return CLI_EXIT_FAIL;
			return commands[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "certkeep: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
