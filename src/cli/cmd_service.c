/*
 * certkeep service start|stop|status|reload: certkeepd on a CA home.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "daemon/adminsock.h"
#include "daemon/service.h"

#include <jansson.h>

static const char service_usage[] =
    "certkeep service start --home DIR [--passphrase-file F | --passphrase-fd N |\n"
    "        --unlock-shares-prompt]\n"
    "       certkeep service stop|status|reload --home DIR";

/* certkeepd beside this certkeep, else from PATH. */
void
cli_certkeepd_path(char *buf, size_t bufsz)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		if (ck_path_join(buf, bufsz, dirname(self), "certkeepd") == 0 &&
		    access(buf, X_OK) == 0)
			return;
	}
	snprintf(buf, bufsz, "certkeepd");
}

/* A certkeepd that has not written its URLs may be locked, waiting for
 * key shares (src/daemon/unlockd.h): print "locked: K of M shares". */
static int
locked_status(const char *home)
{
	char path[4200];
	json_t *req, *reply = NULL;
	const char *out;
	int locked = 0;

	if (ck_path_join(path, sizeof(path), home, SERVICE_URLS_FILE) != 0 ||
	    ck_fs_exists(path))
		return 0;
	if ((req = json_pack("{s:s}", "action", "unlock-status")) == NULL)
		return 0;
	if (adminsock_call(home, req, &reply) == 0 &&
	    json_is_true(json_object_get(reply, "locked")) &&
	    (out = json_string_value(json_object_get(reply, "out"))) !=
	    NULL) {
		fputs(out, stdout);
		locked = 1;
	} else
		printf("starting (not serving yet)\n");
	ck_err_clear();
	json_decref(req);
	json_decref(reply);
	return locked;
}

int
cmd_service(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "unlock-shares-prompt", no_argument, NULL,
		    CLI_OPT__FIRST_LOCAL },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home, *sub;
	char exe[PATH_MAX], fdbuf[16];
	const char *args[8];
	pid_t pid;
	int opt, r, n = 0, prompt = 0;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(service_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		if (opt == CLI_OPT__FIRST_LOCAL) {
			prompt = 1;
			continue;
		}
		return cli_usage(service_usage);
	}
	if (com.help)
		return cli_help(service_usage);
	if (optind != argc)
		return cli_usage(service_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (strcmp(sub, "start") == 0) {
		if (service_running(home, &pid) == 1) {
			fprintf(stderr, "certkeep: certkeepd is already running "
			    "on %s (pid %ld)\n", home, (long)pid);
			return CLI_EXIT_FAIL;
		}
		cli_certkeepd_path(exe, sizeof(exe));
		args[n++] = exe;
		args[n++] = "--home";
		args[n++] = home;
		if (com.pass.kind == CK_PASS_FILE) {
			args[n++] = "--passphrase-file";
			args[n++] = com.pass.file;
		} else if (com.pass.kind == CK_PASS_FD) {
			snprintf(fdbuf, sizeof(fdbuf), "%d", com.pass.fd);
			args[n++] = "--passphrase-fd";
			args[n++] = fdbuf;
		}
		if (prompt)
			args[n++] = "--unlock-shares-prompt";
		args[n] = NULL;
		/* certkeepd detaches once it serves, and reports. */
		execvp(exe, (char *const *)args);
		fprintf(stderr, "certkeep: cannot run %s: %s\n", exe,
		    strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (strcmp(sub, "stop") == 0) {
		if ((r = service_signal(home, SIGTERM)) != 0 ||
		    (r = service_wait_stopped(home, 60)) != 0)
			return cli_fail(r);
		printf("certkeepd on %s stopped\n", home);
		return CLI_EXIT_OK;
	}
	if (strcmp(sub, "reload") == 0) {
		/* Through certkeepd when it serves the home: judged there (a
		 * ca-admin), who need not be able to signal it. */
		if (cli_admin_served(home))
			return cli_admin_run(home, json_pack("{s:s, s:s}",
			    "action", "config", "op", "reload"), NULL);
		if ((r = service_signal(home, SIGHUP)) != 0)
			return cli_fail(r);
		printf("certkeepd on %s is reloading\n", home);
		return CLI_EXIT_OK;
	}
	if (strcmp(sub, "status") == 0) {
		if ((r = service_running(home, &pid)) < 0)
			return cli_fail(r);
		if (r == 0) {
			printf("certkeepd is not running on %s\n", home);
			return 3;	/* LSB: not running */
		}
		printf("certkeepd is running on %s (pid %ld)\n", home,
		    (long)pid);
		if (locked_status(home))
			return CLI_EXIT_OK;
		{
			unsigned char *urls = NULL;
			size_t len;
			char path[4200];
			if (ck_path_join(path, sizeof(path), home,
			    SERVICE_URLS_FILE) == 0 &&
			    ck_fs_read(path, 4096, &urls, &len) == 0)
				fputs((char *)urls, stdout);
			free(urls);
		}
		return CLI_EXIT_OK;
	}
	return cli_usage(service_usage);
}
