#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "keystore/unlock.h"

/* The passphrase rebuilt from --unlock-share files: one per process,
 * kept for its life (commands may read it more than once). */
static struct ck_secret *unlock_pw;

/* Rebuild the key's passphrase from C's --unlock-share files. */
static int
unlock_from_shares(struct cli_common *c)
{
	struct unlock_collector *uc = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	char msg[1200];
	int i, r;

	if (c->home == NULL || c->home[0] == '\0')
		return ck_err_set(CK_E_INVAL, "--unlock-share needs --home");
	if (c->pass.kind != CK_PASS_TTY)
		return ck_err_set(CK_E_INVAL, "--unlock-share replaces "
		    "--passphrase-file and --passphrase-fd");
	if ((r = unlock_collector_for_home(c->home, &uc)) != 0)
		return r;
	if (uc == NULL)
		return ck_err_set(CK_E_STATE, "the CA key of %s is not "
		    "protected by key shares: --unlock-share does not apply",
		    c->home);
	for (i = 0; i < c->nunlock && unlock_collector_have(uc) <
	    unlock_collector_need(uc); i++) {
		if ((r = ck_fs_read(c->unlock_shares[i], UNLOCK_SHARE_MAX,
		    &buf, &len)) != 0)
			goto out;
		r = unlock_collector_add(uc, buf, len, c->unlock_shares[i]);
		ck_wipe(buf, len);
		free(buf);
		buf = NULL;
		if (r != 0) {
			snprintf(msg, sizeof(msg), "%s: %s", c->unlock_shares[i],
			    ck_err_msg());
			r = ck_err_set(r, "%s", msg);
			goto out;
		}
	}
	ck_secret_free(unlock_pw);
	unlock_pw = NULL;
	if ((r = unlock_collector_finish(uc, &unlock_pw)) != 0)
		goto out;
	ck_passphrase_set_secret(unlock_pw);
	c->pass.kind = CK_PASS_SECRET;
out:
	unlock_collector_free(uc);
	return r;
}

void
cli_common_init(struct cli_common *c)
{
	memset(c, 0, sizeof(*c));
	c->home = getenv("CERTKEEP_HOME");
	c->pass.kind = CK_PASS_TTY;
	c->pass.fd = -1;
}

int
cli_common_opt(struct cli_common *c, int opt, const char *arg)
{
	uint64_t fd;

	switch (opt) {
	case CLI_OPT_HOME:
		c->home = arg;
		return 1;
	case CLI_OPT_PASSFILE:
		c->pass.kind = CK_PASS_FILE;
		c->pass.file = arg;
		return 1;
	case CLI_OPT_PASSFD:
		if (ck_parse_u64(arg, 0, 1024, "--passphrase-fd", &fd) != 0) {
			fprintf(stderr, "certkeep: %s\n", ck_err_msg());
			return -1;
		}
		c->pass.kind = CK_PASS_FD;
		c->pass.fd = (int)fd;
		return 1;
	case CLI_OPT_HELP:
		c->help = 1;
		return 1;
	case CLI_OPT_UNLOCKSHARE:
		if (c->nunlock == CLI_UNLOCK_SHARES_MAX) {
			fprintf(stderr, "certkeep: at most %d --unlock-share\n",
			    CLI_UNLOCK_SHARES_MAX);
			return -1;
		}
		c->unlock_shares[c->nunlock++] = arg;
		return 1;
	default:
		return 0;
	}
}

int
cli_getopt(int argc, char **argv, const struct option *longopts,
    struct cli_common *c)
{
	int opt, h;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((h = cli_common_opt(c, opt, optarg)) == 0)
			return opt;
		if (h < 0)
			return CLI_OPT_BAD;
	}
	if (c->nunlock > 0 && c->pass.kind != CK_PASS_SECRET &&
	    !c->help && unlock_from_shares(c) != 0) {
		fprintf(stderr, "certkeep: error: %s\n", ck_err_msg());
		return CLI_OPT_BAD;
	}
	return -1;
}

const char *
cli_subcommand(int *argc, char ***argv)
{
	const char *sub;

	if (*argc < 2 || (*argv)[1][0] == '-')
		return NULL;
	sub = (*argv)[1];
	(*argc)--;
	(*argv)++;
	return sub;
}

int
cli_help(const char *usage)
{
	printf("usage: %s\n", usage);
	return CLI_EXIT_OK;
}

const char *
cli_home(const struct cli_common *c)
{
	/* Remotely, the server knows its home. */
	if ((c->home == NULL || c->home[0] == '\0') && cli_remote_active())
		return "";
	if (c->home == NULL || c->home[0] == '\0') {
		fprintf(stderr, "certkeep: no CA home: give --home DIR or set "
		    "CERTKEEP_HOME\n");
		return NULL;
	}
	return c->home;
}

int
cli_fail(int r)
{
	const char *m = ck_err_msg();

	fprintf(stderr, "certkeep: error: %s\n", m[0] ? m : ck_strerror(r));
	return CLI_EXIT_FAIL;
}

int
cli_usage(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

int
cli_read_input(const char *path, size_t max, unsigned char **buf, size_t *len)
{
	if (strcmp(path, "-") == 0)
		return ck_fs_read_fd(STDIN_FILENO, max, buf, len);
	return ck_fs_read(path, max, buf, len);
}

int
cli_write_output(const char *path, const void *data, size_t len)
{
	struct stat st;
	FILE *f;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
			return ck_err_set(CK_E_IO, "cannot write to standard "
			    "output");
		return 0;
	}
	/* A device, FIFO or symlink (/dev/null, /dev/stdout) is written
	 * through: the atomic rename would replace the node itself. */
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if ((f = fopen(path, "w")) == NULL)
			return ck_err_set(CK_E_IO, "cannot open %s: %s", path,
			    strerror(errno));
		if (fwrite(data, 1, len, f) != len) {
			(void)fclose(f);
			return ck_err_set(CK_E_IO, "cannot write %s: %s", path,
			    strerror(errno));
		}
		if (fclose(f) != 0)
			return ck_err_set(CK_E_IO, "cannot write %s: %s", path,
			    strerror(errno));
		return 0;
	}
	return ck_fs_write_atomic(path, data, len, 0644);
}
