/*
 * certkeep - the operator's command line for a certkeep CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "ca/ca.h"
#include "ca/eab_seal.h"
#include "ca/home_split.h"
#include "cli/cli.h"
#include "audit/audit.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/privs.h"
#include "common/secmem.h"
#include "daemon/adminsock.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{ "init", cmd_init, "create a CA home (root or issuing CA)" },
	{ "home", cmd_home, "split a CA home between a key owner and the "
	    "service user" },
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

/* The options naming a file that holds a secret the operator gives. */
static const char *const secret_opts[] = {
	"--passphrase-file", "--unlock-share", "--share", "--recipient-key",
	"--backup-passphrase-file", "--new-passphrase-file", "--key-backup",
	NULL
};

/*
 * As root, before giving root up: open the operator's secret files
 * named on the command line (ck_fs_preopen_add), so that they can stay
 * readable by root only; the command reads them through these
 * descriptors as the user it becomes. Regular files only ("-" and
 * pipes are read as usual). A file that cannot be opened is left for
 * the command to report.
 */
static int
preopen_secret_files(int argc, char **argv)
{
	const char *path;
	struct stat st;
	size_t n;
	int i, j, fd, r;

	for (i = 2; i < argc; i++)
		for (j = 0; secret_opts[j] != NULL; j++) {
			n = strlen(secret_opts[j]);
			if (strncmp(argv[i], secret_opts[j], n) != 0)
				continue;
			if (argv[i][n] == '=')
				path = argv[i] + n + 1;
			else if (argv[i][n] == '\0' && i + 1 < argc)
				path = argv[i + 1];
			else
				continue;
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
			    O_NONBLOCK | O_NOCTTY);
			if (fd < 0)
				continue;
			if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
			    fcntl(fd, F_SETFL, 0) != 0) {
				close(fd);
				continue;
			}
			if ((r = ck_fs_preopen_add(path, fd)) != 0)
				return r;
		}
	return 0;
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
	struct ck_home_users hu;
	int switched, r;

	if (geteuid() != 0 || home == NULL || strcmp(argv[1], "init") == 0 ||
	    strcmp(argv[1], "home") == 0)
		return 0;
	(void)audit_os_user();
	memset(&hu, 0, sizeof(hu));
	r = ck_ca_home_users(home, &hu);
	if (r == CK_E_PERM || r == CK_E_INVAL) {
		/* A configuration not even its home's owner may trust. */
		fprintf(stderr, "certkeep: error: %s\n", ck_err_msg());
		return -1;
	}
	if (hu.split && ck_fs_check_ancestors(home, hu.key_uid) != 0) {
		fprintf(stderr, "certkeep: error: %s\n", ck_err_msg());
		return -1;
	}
	if (hu.split) {
		/* A home with a key owner: the key owner's secrets are
		 * opened now, as root, judged as the signer judges them;
		 * then the store is the service user's business. Root still
		 * counts as root in role checks. */
		if (argc > 2 && strcmp(argv[1], "service") == 0 &&
		    strcmp(argv[2], "start") == 0)
			return 0;	/* certkeepd drops root itself */
		if (ck_home_split_preopen(home, &hu) != 0) {
			/* Said, but not fatal: only the commands that need
			 * the key fail (they cannot open it). */
			fprintf(stderr, "certkeep: warning: %s\n",
			    ck_err_msg());
			ck_err_clear();
		}
		if (preopen_secret_files(argc, argv) != 0 ||
		    adminsock_connector_start(home) != 0 ||
		    ck_privs_drop(hu.svc_user, home, 0, &switched) != 0) {
			fprintf(stderr, "certkeep: error: %s\n", ck_err_msg());
			return -1;
		}
		ck_privs_note_root_caller();
		return 0;
	}
	ck_err_clear();
	if (preopen_secret_files(argc, argv) != 0) {
		fprintf(stderr, "certkeep: error: %s\n", ck_err_msg());
		return -1;
	}
	if (ck_privs_drop(NULL, home, 1, &switched) != 0 &&
	    ck_err_msg()[0] != '\0' && strstr(ck_err_msg(), "does not exist")
	    == NULL) {
		fprintf(stderr, "certkeep: error: %s\n", ck_err_msg());
		return -1;
	}
	ck_err_clear();
	return 0;
}

/*
 * The commands that need the key material or write the key owner's files
 * of a split home: a key backup (the key, decrypted), the CA certificate,
 * the key file, the ACME EAB key pair (made by the first 'acme eab
 * create'). Root runs the others as the service user, who must get
 * neither, so these are refused there (split_refuse()).
 */
static int
needs_key_owner(int argc, char **argv, const char *home)
{
	char pub[4200];

	if (argc > 2 && strcmp(argv[1], "ca") == 0)
		return strcmp(argv[2], "install") == 0;
	if (argc > 2 && strcmp(argv[1], "key") == 0)
		return strcmp(argv[2], "backup") == 0 ||
		    strcmp(argv[2], "protect") == 0 ||
		    strcmp(argv[2], "unprotect") == 0 ||
		    strcmp(argv[2], "restore") == 0;
	if (argc > 3 && strcmp(argv[1], "acme") == 0 &&
	    strcmp(argv[2], "eab") == 0 && strcmp(argv[3], "create") == 0)
		return snprintf(pub, sizeof(pub), "%s/%s", home,
		    EAB_SEAL_PUB_FILE) < (int)sizeof(pub) &&
		    !ck_fs_exists(pub) && !cli_admin_served(home);
	return 0;
}

/*
 * Such a command on a split home, as root: refused, with the way to do
 * it. Running it as the service user would hand them the key or the
 * key owner's files; giving the home to them for the moment (as this
 * did once) lets a process they left running take both.
 */
static int
split_refuse(const struct ck_home_users *hu, int argc, char **argv)
{
	const char *home = home_arg(argc, argv);

	fprintf(stderr, "certkeep: error: '%s %s' on %s needs the key "
	    "owner's files, which its service user %s must not get, and is "
	    "refused on a home with a key owner. Stop certkeepd, then run:\n"
	    "  certkeep home join --home %s --user %s\n"
	    "  certkeep %s %s ...\n"
	    "  certkeep home split --home %s --user %s --key-owner %s\n"
	    "(until the split, the key and the configuration are %s's: run "
	    "nothing else as %s meanwhile; docs/signer.md)\n", argv[1],
	    argc > 2 ? argv[2] : "", home, hu->svc_user, home, hu->svc_user,
	    argv[1], argc > 2 ? argv[2] : "", home, hu->svc_user, hu->key_user,
	    hu->svc_user, hu->svc_user);
	return CLI_EXIT_FAIL;
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
			if (geteuid() == 0 && home_arg(argc, argv) != NULL &&
			    needs_key_owner(argc, argv,
			    home_arg(argc, argv))) {
				struct ck_home_users hu;
				if (ck_ca_home_users(home_arg(argc, argv),
				    &hu) == 0 && hu.split)
					return split_refuse(&hu, argc, argv);
				ck_err_clear();
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
