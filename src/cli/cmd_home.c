/*
 * certkeep home split|join: give a CA home a key owner besides its
 * service user, or give it back whole to the service user
 * (src/ca/home_split.h, docs/signer.md).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/home_split.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/privs.h"

static const char home_usage[] =
    "certkeep home split --home DIR --user SERVICE-USER --key-owner "
    "KEY-OWNER\n"
    "       certkeep home join --home DIR --user SERVICE-USER\n\n"
    "As root, with certkeepd stopped. split: the home, its configuration,\n"
    "CA certificate files and private/ become KEY-OWNER's, the store stays\n"
    "SERVICE-USER's ([server] user); join: all of it SERVICE-USER's again.";

/*
 * Joined, the key and the configuration are the service user's: a
 * process of theirs still running (a shell, a job left behind) could
 * copy the key or plant a configuration in that window. CK_E_BUSY
 * naming them; 0 if none. Any of the four uids counts.
 */
static int
user_procs(const char *user)
{
	char path[300], line[256], pids[256];
	unsigned uid, gid, u[4];
	struct dirent *e;
	size_t off = 0;
	int n = 0, r;
	DIR *d;
	FILE *f;

	if ((r = ck_privs_lookup(user, &uid, &gid)) != 0)
		return r;
	if ((d = opendir("/proc")) == NULL)
		return ck_err_set(CK_E_IO, "cannot list the processes in /proc");
	pids[0] = '\0';
	while ((e = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "Uid: %u %u %u %u", &u[0], &u[1], &u[2],
			    &u[3]) == 4) {
				if (u[0] == uid || u[1] == uid || u[2] == uid ||
				    u[3] == uid) {
					if (n++ < 10 && off < sizeof(pids))
						off += (size_t)snprintf(pids + off,
						    sizeof(pids) - off, "%s%s",
						    off ? " " : "", e->d_name);
				}
				break;
			}
		fclose(f);
	}
	closedir(d);
	if (n > 0)
		return ck_err_set(CK_E_BUSY, "%d process%s of %s %s running "
		    "(pid %s%s): joined, the home would be theirs to read and "
		    "change; stop them first", n, n > 1 ? "es" : "", user,
		    n > 1 ? "are" : "is", pids, n > 10 ? " ..." : "");
	return 0;
}

enum { O_USER = CLI_OPT__FIRST_LOCAL, O_KEYOWNER };

int
cmd_home(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "user", required_argument, NULL, O_USER },
		{ "key-owner", required_argument, NULL, O_KEYOWNER },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	const char *home, *sub, *user = NULL, *key_owner = NULL;
	int opt, r, split;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(home_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_USER:
			user = optarg;
			break;
		case O_KEYOWNER:
			key_owner = optarg;
			break;
		default:
			return cli_usage(home_usage);
		}
	}
	if (com.help)
		return cli_help(home_usage);
	split = strcmp(sub, "split") == 0;
	if (optind != argc || user == NULL || (!split &&
	    strcmp(sub, "join") != 0) || (split != (key_owner != NULL)))
		return cli_usage(home_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (!split && (r = user_procs(user)) != 0)
		return cli_fail(r);
	if ((r = ck_home_layout(home, user, split ? key_owner : NULL)) != 0)
		return cli_fail(r);
	if (split)
		printf("%s belongs to %s (key owner), its store to %s (service "
		    "user)\n", home, key_owner, user);
	else
		printf("%s belongs to %s: the CA key and the configuration are "
		    "%s's until 'certkeep home split --home %s --user %s "
		    "--key-owner ...'; run only the commands that need the "
		    "join meanwhile, and nothing else as %s\n", home, user, user,
		    home, user, user);
	return CLI_EXIT_OK;
}
