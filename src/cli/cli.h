/*
 * cli.h - the certkeep command line: one file per command group and a
 * dispatch table in main.c. Every command takes --home (or CERTKEEP_HOME);
 * commands that need the CA key take --passphrase-file or --passphrase-fd,
 * or ask on the terminal, or --unlock-share FILE (M times) for a key
 * protected by M-of-N shares. Exit status: 0 success, 1 failure or refusal,
 * 2 usage error.
 */
#ifndef CK_CLI_CLI_H
#define CK_CLI_CLI_H

#include <getopt.h>
#include <stddef.h>

#include "common/passphrase.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Long options every command accepts; short codes above 0x100. */
enum {
	CLI_OPT_HOME = 0x100,
	CLI_OPT_PASSFILE,
	CLI_OPT_PASSFD,
	CLI_OPT_HELP,
	CLI_OPT_BAD,
	CLI_OPT_UNLOCKSHARE,
	CLI_OPT__FIRST_LOCAL	/* commands number their own from here */
};

#define CLI_COMMON_LONGOPTS \
	{ "home", required_argument, NULL, CLI_OPT_HOME }, \
	{ "passphrase-file", required_argument, NULL, CLI_OPT_PASSFILE }, \
	{ "passphrase-fd", required_argument, NULL, CLI_OPT_PASSFD }, \
	{ "help", no_argument, NULL, CLI_OPT_HELP }, \
	{ "unlock-share", required_argument, NULL, CLI_OPT_UNLOCKSHARE }

/* --unlock-share FILE (M times) instead of a passphrase, for a key
 * protected by M-of-N shares (docs/keys.md): once the options are parsed,
 * cli_getopt() rebuilds the passphrase and points `pass` at it. */
#define CLI_UNLOCK_SHARES_MAX 32

struct cli_common {
	const char *home;
	struct ck_pass_src pass;
	int help;
	const char *unlock_shares[CLI_UNLOCK_SHARES_MAX];
	int nunlock;
};

/* Set defaults (home from CERTKEEP_HOME, passphrase from the terminal). */
void cli_common_init(struct cli_common *c);

/* Handle a common option: 1 if handled, 0 if not ours, -1 on a bad value. */
int cli_common_opt(struct cli_common *c, int opt, const char *arg);

/* getopt_long() that handles the common options itself: returns the next
 * command-specific option, -1 at the end, or CLI_OPT_BAD after a bad value
 * of a common option (already reported). Call cli_common_init() first. */
int cli_getopt(int argc, char **argv, const struct option *longopts,
    struct cli_common *c);

/* Take the subcommand word ("certkeep ca install ..."): returns it and
 * shifts argc/argv past it, or NULL if there is none. */
const char *cli_subcommand(int *argc, char ***argv);

/* --help asked: print the usage to stdout. */
int cli_help(const char *usage);

/* The CA home or NULL after printing how to name one. */
const char *cli_home(const struct cli_common *c);

/* Print "certkeep: error: reason" for code r; returns CLI_EXIT_FAIL. */
int cli_fail(int r);

/* Print a usage error; returns CLI_EXIT_USAGE. */
int cli_usage(const char *usage);

/* Read a file ("-" for standard input) of at most `max` bytes. */
int cli_read_input(const char *path, size_t max, unsigned char **buf,
    size_t *len);

/* Write to a file (replaced atomically, mode 0644) or to standard output
 * when path is NULL or "-". */
int cli_write_output(const char *path, const void *data, size_t len);

/* The certkeepd program: beside this certkeep, else from PATH. */
void cli_certkeepd_path(char *buf, size_t bufsz);

/*
 * Run an admin request (src/authz/admin.h; REQ is taken, may be NULL when
 * out of memory) through the certkeepd serving HOME, or here when none
 * does, and print its reply: the output on stdout, a refusal or error on
 * stderr; DATAFILE (may be NULL) gets the reply's data. Returns the exit
 * status.
 */
struct json_t;
int cli_admin_run(const char *home, struct json_t *req,
    const char *datafile);

/* The same; PASS (may be NULL) unlocks the CA key when the request runs
 * here and needs it (an approval that issues). */
int cli_admin_run_pass(const char *home, struct json_t *req,
    const char *datafile, const struct ck_pass_src *pass);

/*
 * Send an admin request (REQ taken) to whoever serves it: certkeepd over
 * HTTPS in the remote mode, else the certkeepd serving HOME over its
 * admin socket, else, when LOCAL_OK, this process. *REPLY is the reply
 * object (caller decrefs). CK_E_NOTFOUND (no message) when nobody serves
 * HOME and not LOCAL_OK: commands that need the key then run here.
 */
int cli_admin_call(const char *home, struct json_t *req, int local_ok,
    struct json_t **reply);

/* Whether a certkeepd serves HOME (listens on its admin socket). */
int cli_admin_served(const char *home);

/* Print a failed reply's error on stderr; CLI_EXIT_FAIL. 0 (printing
 * nothing) if it succeeded. */
int cli_admin_failed(struct json_t *reply);

/*
 * The remote mode: leading "--server URL --cert FILE --key FILE
 * [--cacert FILE]" before the command are taken off ARGC/ARGV (which then
 * start at the command as usual). An exit status: CLI_EXIT_OK, or
 * CLI_EXIT_USAGE after printing why.
 */
int cli_remote_options(int *argc, char ***argv);
/* Whether the remote mode is on. */
int cli_remote_active(void);
/* Send REQ to the server over HTTPS; *REPLY as cli_admin_call(). */
int cli_remote_call(const struct json_t *req, struct json_t **reply);

/*
 * The role check of a command that runs here rather than through
 * certkeepd (backup, restore, custody, key, acme eab, ca install, service
 * reload; src/authz/authz.h):
 * ARGV[0] is the command. A refusal is audited and printed and returns
 * CLI_EXIT_FAIL; an operator's command then audits as "NAME/ROLE".
 * Commands outside the table, and homes that cannot be opened, pass.
 */
int cli_authorize_local(const char *home, int argc, char **argv);

int cmd_init(int argc, char **argv);
int cmd_home(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_issue(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_crl(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_acme(int argc, char **argv);
int cmd_service(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_custody(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_operator(int argc, char **argv);
int cmd_request(int argc, char **argv);
int cmd_unlock(int argc, char **argv);
/* certkeep init --unlock-shares: begin draws the unlock secret (*S) and
 * points PASS at a pipe holding its passphrase for ck_ca_init(); finish
 * splits it into the share files in OUT and records the protection in
 * the new home. finish returns the exit status. */
struct ck_secret;
int cli_init_unlock_begin(const char *const *custodians, int m, int n,
    struct ck_pass_src *pass, struct ck_secret **s);
int cli_init_unlock_finish(const char *home, const struct ck_secret *s,
    int m, int n, const char *const *custodians, const char *out);
/* certkeep key protect|unprotect (SUB), from cmd_key(). */
int cmd_key_protect(const char *sub, int argc, char **argv);

/* A name for share file names: the CA certificate's common name with
 * everything but [A-Za-z0-9._-] turned into '-', else the home's name. */
struct ck_ca;
void cli_ca_label(const struct ck_ca *ca, char *out, size_t outsz);

#endif
