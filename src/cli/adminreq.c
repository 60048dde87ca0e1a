/*
 * adminreq.c - admin commands as requests (src/authz/admin.h): sent to
 * the certkeepd serving the home over its admin socket, so that the role
 * check happens there and the store has one writer; run here, under the
 * same rules, when no certkeepd serves it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "authz/admin.h"
#include "authz/authz.h"
#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/privs.h"
#include "daemon/adminsock.h"

/* Write an extract to PATH: a new file, synced, then renamed. */
static int
write_data(const char *path, const char *data, size_t len)
{
	char tmp[4200];
	FILE *f;
	int r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return ck_err_set(CK_E_INVAL, "%s: path too long", path);
	if ((f = fopen(tmp, "wx")) == NULL)
		return ck_err_set(CK_E_IO, "cannot create %s", tmp);
	if (fwrite(data, 1, len, f) != len || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0)
		r = ck_err_set(CK_E_IO, "cannot write %s", tmp);
	if (fclose(f) != 0 && r == 0)
		r = ck_err_set(CK_E_IO, "cannot write %s", tmp);
	if (r == 0 && rename(tmp, path) != 0)
		r = ck_err_set(CK_E_IO, "cannot rename %s", tmp);
	if (r != 0)
		unlink(tmp);
	return r;
}

/* Run REQ here, as this process's user (PASS: for an approval that
 * issues, may be NULL). */
static json_t *
run_local(const char *home, const json_t *req,
    const struct ck_pass_src *pass, int *rp)
{
	struct admin_env env;
	struct ck_ca *ca = NULL;
	json_t *reply;
	int r;

	memset(&env, 0, sizeof(env));
	if ((r = admin_home_owner(home, &env.owner)) != 0 ||
	    (r = ck_ca_open(home, &ca)) != 0) {
		*rp = r;
		return NULL;
	}
	env.ca = ca;
	env.rd = ca->st;
	env.pass = pass;
	if ((reply = admin_exec(&env, ck_privs_caller_uid(), req)) == NULL)
		*rp = CK_E_NOMEM;
	else
		*rp = 0;
	ck_ca_close(ca);
	return reply;
}

/* cli_admin_call(), with PASS for a request run here (may be NULL). */
static int
admin_call(const char *home, json_t *req, int local_ok,
    const struct ck_pass_src *pass, json_t **reply)
{
	int r;

	*reply = NULL;
	/* json_pack() refuses strings that are not UTF-8. */
	if (req == NULL)
		return ck_err_set(CK_E_INVAL, "the arguments must be UTF-8 "
		    "text");
	if (cli_remote_active())
		r = cli_remote_call(req, reply);
	else {
		r = adminsock_call(home, req, reply);
		if (r == CK_E_NOTFOUND) {
			ck_err_clear();
			if (local_ok)
				*reply = run_local(home, req, pass, &r);
		}
	}
	json_decref(req);
	if (r == 0 && *reply == NULL)
		r = CK_E_NOMEM;
	return r;
}

int
cli_admin_call(const char *home, json_t *req, int local_ok, json_t **reply)
{
	return admin_call(home, req, local_ok, NULL, reply);
}

int
cli_admin_failed(json_t *reply)
{
	const char *err;

	if (json_is_true(json_object_get(reply, "ok")))
		return 0;
	err = json_string_value(json_object_get(reply, "error"));
	fprintf(stderr, "certkeep: %s\n", err != NULL ? err :
	    "error: the request failed");
	return CLI_EXIT_FAIL;
}

int
cli_admin_run(const char *home, json_t *req, const char *datafile)
{
	return cli_admin_run_pass(home, req, datafile, NULL);
}

int
cli_admin_run_pass(const char *home, json_t *req, const char *datafile,
    const struct ck_pass_src *pass)
{
	json_t *reply = NULL, *v;
	const char *out, *note;
	int r, ex = CLI_EXIT_OK;

	if ((r = admin_call(home, req, 1, pass, &reply)) != 0)
		return cli_fail(r);
	if (cli_admin_failed(reply) != 0) {
		json_decref(reply);
		return CLI_EXIT_FAIL;
	}
	out = json_string_value(json_object_get(reply, "out"));
	note = json_string_value(json_object_get(reply, "note"));
	if (datafile != NULL) {
		v = json_object_get(reply, "data");
		if (!json_is_string(v))
			ex = cli_fail(ck_err_set(CK_E_PARSE, "the reply holds "
			    "no data"));
		else if ((r = write_data(datafile, json_string_value(v),
		    json_string_length(v))) != 0)
			ex = cli_fail(r);
		else
			printf("%s written to %s, ending with a signed "
			    "checkpoint\n", out != NULL ? out : "entries",
			    datafile);
	} else if (out != NULL && out[0] != '\0') {
		fputs(out, stdout);
		if (out[strlen(out) - 1] != '\n')
			fputc('\n', stdout);
	}
	fflush(stdout);
	if (note != NULL)
		fprintf(stderr, "certkeep: %s\n", note);
	json_decref(reply);
	return ex;
}

/* Whether a certkeepd listens on HOME's admin socket. */
int
cli_admin_served(const char *home)
{
	int fd;

	if (adminsock_connect(home, &fd) != 0) {
		ck_err_clear();
		return 0;
	}
	close(fd);
	return 1;
}

/* The action a command that runs here (not through certkeepd) is, by its
 * words and options; -1 for commands outside the table (or routed ones,
 * judged by admin_exec()). */
static int
local_action(int argc, char **argv)
{
	const char *cmd = argv[0], *sub = argc > 1 ? argv[1] : "";
	int i;

	if (strcmp(cmd, "backup") == 0) {
		if (strcmp(sub, "drill") == 0)
			return AUTHZ_DRILL;
		if (strcmp(sub, "verify") == 0 || strcmp(sub, "list") == 0)
			return AUTHZ_BACKUP;
		for (i = 1; i < argc; i++)
			if (strcmp(argv[i], "--offline") == 0)
				return AUTHZ_BACKUP_COLD;
		return AUTHZ_BACKUP;
	}
	if (strcmp(cmd, "restore") == 0)
		return AUTHZ_RESTORE;
	if (strcmp(cmd, "custody") == 0)
		return AUTHZ_CUSTODY;
	/* A key backup is a backup, done apart (docs/backup.md); a key
	 * restore is part of a restore, which the home's owner may always
	 * do (recovery of a CA whose operators are gone). */
	if (strcmp(cmd, "key") == 0 && (strcmp(sub, "protect") == 0 ||
	    strcmp(sub, "unprotect") == 0))
		return AUTHZ_CONFIG;	/* how the key is opened */
	if (strcmp(cmd, "key") == 0)
		return strcmp(sub, "restore") == 0 ? AUTHZ_RESTORE :
		    AUTHZ_BACKUP;
	/* What changes how the CA is set up: its certificate, and the
	 * configuration certkeepd takes on reload. */
	if ((strcmp(cmd, "ca") == 0 && strcmp(sub, "install") == 0) ||
	    (strcmp(cmd, "service") == 0 && strcmp(sub, "reload") == 0))
		return AUTHZ_CONFIG;
	/* Run here only when no certkeepd serves the home (otherwise it
	 * judges them); see cli_authorize_local(). */
	if (strcmp(cmd, "issue") == 0)
		return AUTHZ_ISSUE;
	if (strcmp(cmd, "crl") == 0)
		return AUTHZ_CRL;
	if (strcmp(cmd, "audit") == 0 && strcmp(sub, "checkpoint") == 0)
		return AUTHZ_AUDIT_CHECKPOINT;
	if (strcmp(cmd, "acme") == 0 && strcmp(sub, "eab") == 0) {
		sub = argc > 2 ? argv[2] : "";
		if (strcmp(sub, "create") == 0)
			return AUTHZ_EAB_CREATE;
		if (strcmp(sub, "list") == 0)
			return AUTHZ_EAB_LIST;
		if (strcmp(sub, "revoke") == 0)
			return AUTHZ_EAB_REVOKE;
	}
	return -1;
}

int
cli_authorize_local(const char *home, int argc, char **argv)
{
	struct authz_principal p;
	struct authz_decision d;
	struct ck_ca *ca = NULL;
	uid_t owner;
	int action, r, ex = CLI_EXIT_OK;

	if (home == NULL || argc < 1 || (action = local_action(argc, argv)) < 0)
		return CLI_EXIT_OK;
	for (r = 1; r < argc; r++)
		if (strcmp(argv[r], "--help") == 0)
			return CLI_EXIT_OK;
	/* These go to certkeepd when it serves the home: judged there. */
	if ((action == AUTHZ_ISSUE || action == AUTHZ_CRL ||
	    action == AUTHZ_AUDIT_CHECKPOINT || action == AUTHZ_EAB_CREATE ||
	    action == AUTHZ_EAB_LIST || action == AUTHZ_EAB_REVOKE) &&
	    cli_admin_served(home))
		return CLI_EXIT_OK;
	/* Backups (but the cold one), drills, custody and a reload go to
	 * certkeepd when it serves the home: judged there. */
	if ((action == AUTHZ_DRILL || action == AUTHZ_CUSTODY ||
	    (action == AUTHZ_BACKUP && strcmp(argv[0], "backup") == 0) ||
	    (action == AUTHZ_CONFIG && strcmp(argv[0], "service") == 0)) &&
	    cli_admin_served(home))
		return CLI_EXIT_OK;
	/* The key is not certkeepd's to give: a key backup reads the key
	 * file, which only the home's owner can. */
	if (strcmp(argv[0], "key") == 0 && argc > 1 &&
	    strcmp(argv[1], "backup") == 0 && ck_privs_caller_uid() != 0 &&
	    admin_home_owner(home, &owner) == 0 && owner != geteuid()) {
		fprintf(stderr, "certkeep: key backup reads the CA key file: "
		    "run it as the home's owner (or root), with the key's "
		    "passphrase (or M of its shares)%s; certkeepd does not "
		    "hand out the CA key\n", cli_admin_served(home) ?
		    ", certkeepd may keep running" : "");
		return CLI_EXIT_FAIL;
	}
	/* No CA there yet (a restore's new home), or one this user cannot
	 * open: the command itself says what is wrong. */
	if (admin_home_owner(home, &owner) != 0 ||
	    ck_ca_open(home, &ca) != 0) {
		ck_err_clear();
		return CLI_EXIT_OK;
	}
	if ((r = authz_principal_load(ca->st, ck_privs_caller_uid(), owner,
	    &p)) != 0 ||
	    (r = authz_decide(ca->st, &p, action, &d)) != 0) {
		ex = cli_fail(r);
	} else if (!d.allowed) {
		(void)audit_append(ca->st, d.actor, authz_action_name(action),
		    "", AUDIT_REFUSED, d.reason);
		fprintf(stderr, "certkeep: %s\n", d.reason);
		ex = CLI_EXIT_FAIL;
	} else if (p.is_operator)
		/* What the command audits names the operator and role. */
		audit_actor_set(d.actor);
	ck_ca_close(ca);
	return ex;
}
