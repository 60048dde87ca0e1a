/*
 * certkeep unlock: give a locked certkeepd key shares over its admin
 * socket (src/daemon/unlockd.h). Any local user holding a share may: the
 * share is the credential. The reply says how many are still needed;
 * after the last, the command waits (up to a minute, unless --no-wait)
 * until certkeepd serves or stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "daemon/adminsock.h"
#include "daemon/service.h"
#include "daemon/unlockd.h"
#include "keystore/unlock.h"

static const char unlock_usage[] =
    "certkeep unlock --home DIR --share FILE [--share FILE ...] [--no-wait]\n"
    "       certkeep unlock --home DIR --status\n"
    "\n"
    "Gives a certkeepd that waits locked for key shares (certkeep key\n"
    "protect) the shares in FILE, one by one; it says how many more it\n"
    "needs. After the last one, waits until certkeepd serves.";

enum { O_SHARE = CLI_OPT__FIRST_LOCAL, O_STATUS, O_NOWAIT };

#define UNLOCK_SERVE_WAIT_S 60

/* Print a reply's output or error; 0 if it was ok. *UNLOCKED set when it
 * says the key's secret is rebuilt. */
static int
print_reply(json_t *reply, int *unlocked)
{
	const char *out = json_string_value(json_object_get(reply, "out"));
	const char *err = json_string_value(json_object_get(reply, "error"));

	if (unlocked != NULL)
		*unlocked = json_is_true(json_object_get(reply, "unlocked"));
	if (!json_is_true(json_object_get(reply, "ok"))) {
		fprintf(stderr, "certkeep: %s\n", err != NULL ? err :
		    "error: refused");
		return -1;
	}
	if (out != NULL)
		fputs(out, stdout);
	fflush(stdout);
	return 0;
}

/* Is certkeepd on HOME serving (its URLs file written)? */
static int
serving(const char *home)
{
	char path[4200];

	return ck_path_join(path, sizeof(path), home, SERVICE_URLS_FILE) ==
	    0 && ck_fs_exists(path);
}

static int
wait_serving(const char *home)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	pid_t pid;
	int i;

	for (i = 0; i < UNLOCK_SERVE_WAIT_S * 10; i++) {
		if (service_running(home, &pid) != 1) {
			fprintf(stderr, "certkeep: certkeepd on %s stopped after "
			    "the unlock: 'certkeep audit' shows why\n", home);
			return CLI_EXIT_FAIL;
		}
		if (serving(home)) {
			printf("certkeepd on %s is serving\n", home);
			return CLI_EXIT_OK;
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "certkeep: certkeepd on %s does not serve yet after "
	    "%d s\n", home, UNLOCK_SERVE_WAIT_S);
	return CLI_EXIT_FAIL;
}

static int
send_share(const char *home, const char *file, int *unlocked)
{
	unsigned char *buf = NULL;
	json_t *req = NULL, *reply = NULL;
	size_t len = 0;
	int r;

	if ((r = ck_fs_read(file, UNLOCK_SHARE_MAX, &buf, &len)) != 0)
		return cli_fail(r);
	req = json_pack("{s:s, s:s%}", "action", "unlock", "share", (char *)buf,
	    len);
	ck_wipe(buf, len);
	free(buf);
	if (req == NULL)
		return cli_fail(CK_E_NOMEM);
	r = adminsock_call(home, req, &reply);
	json_decref(req);
	if (r != 0) {
		if (r == CK_E_NOTFOUND)
			ck_err_set(r, "no certkeepd waits for key shares on %s",
			    home);
		return cli_fail(r);
	}
	printf("%s: ", file);
	r = print_reply(reply, unlocked);
	if (r != 0)
		printf("refused\n");
	json_decref(reply);
	return r == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int
cmd_unlock(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "share", required_argument, NULL, O_SHARE },
		{ "status", no_argument, NULL, O_STATUS },
		{ "no-wait", no_argument, NULL, O_NOWAIT },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *shares[64], *home;
	json_t *req, *reply = NULL;
	int opt, nshare = 0, status = 0, nowait = 0, unlocked = 0, i, r;
	int known;
	pid_t pid;

	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		switch (opt) {
		case CLI_OPT_BAD:
			return CLI_EXIT_USAGE;
		case O_SHARE:
			if (nshare == 64)
				return cli_usage(unlock_usage);
			shares[nshare++] = optarg;
			break;
		case O_STATUS:
			status = 1;
			break;
		case O_NOWAIT:
			nowait = 1;
			break;
		default:
			return cli_usage(unlock_usage);
		}
	}
	if (com.help)
		return cli_help(unlock_usage);
	if (optind != argc || (nshare == 0) == !status ||
	    com.pass.kind != CK_PASS_TTY)
		return cli_usage(unlock_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	/* A custodian who is not the home's owner cannot look inside it:
	 * then only the socket tells. */
	known = access(home, R_OK | X_OK) == 0;
	if (known && service_running(home, &pid) != 1) {
		fprintf(stderr, "certkeep: certkeepd is not running on %s\n",
		    home);
		return CLI_EXIT_FAIL;
	}
	ck_err_clear();
	if (known && serving(home)) {
		fprintf(stderr, "certkeep: certkeepd on %s is not locked: it "
		    "serves\n", home);
		return CLI_EXIT_FAIL;
	}
	/* The share's text passes through jansson: wipe what it frees. */
	unlockd_json_wipe();
	if (status) {
		if ((req = json_pack("{s:s}", "action", "unlock-status")) == NULL)
			return cli_fail(CK_E_NOMEM);
		r = adminsock_call(home, req, &reply);
		json_decref(req);
		if (r != 0)
			return cli_fail(r);
		r = print_reply(reply, NULL);
		json_decref(reply);
		return r == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	}
	for (i = 0; i < nshare && !unlocked; i++)
		if ((r = send_share(home, shares[i], &unlocked)) != CLI_EXIT_OK)
			return r;
	if (i < nshare)
		fprintf(stderr, "certkeep: the key opened before the last "
		    "%d share%s were needed\n", nshare - i,
		    nshare - i == 1 ? "" : "s");
	if (unlocked && !nowait && known)
		return wait_serving(home);
	return CLI_EXIT_OK;
}
