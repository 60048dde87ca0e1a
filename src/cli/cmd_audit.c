/*
 * certkeep audit show|verify
 */
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"

static const char audit_usage[] =
    "certkeep audit verify --home DIR\n"
    "       certkeep audit show --home DIR [--from ID]";

enum { O_FROM = CLI_OPT__FIRST_LOCAL };

static int
print_entry(const struct store_audit_entry *e, void *arg)
{
	char t[32];

	(void)arg;
	ck_time_format(e->time, t, sizeof(t));
	printf("%6lld %s %-10s %-20s %-8s %s%s%s\n", (long long)e->id, t,
	    e->user, e->action, e->result, e->object,
	    e->detail[0] ? " -- " : "", e->detail);
	return 0;
}

int
cmd_audit(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "from", required_argument, NULL, O_FROM },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_ca *ca = NULL;
	struct audit_report rep;
	const char *home, *sub;
	uint64_t from = 1;
	int opt, r, ex = CLI_EXIT_OK;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(audit_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		if (opt == O_FROM) {
			if (ck_parse_u64(optarg, 1, INT64_MAX, "--from",
			    &from) != 0)
				return cli_fail(CK_E_PARSE), CLI_EXIT_USAGE;
		} else
			return cli_usage(audit_usage);
	}
	if (com.help)
		return cli_help(audit_usage);
	if (optind != argc)
		return cli_usage(audit_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (strcmp(sub, "show") != 0 && strcmp(sub, "verify") != 0)
		return cli_usage(audit_usage);
	if ((r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if (strcmp(sub, "show") == 0) {
		if ((r = store_audit_iter(ca->st, (int64_t)from, print_entry,
		    NULL)) != 0)
			ex = cli_fail(r);
	} else {
		r = audit_verify(ca->st, &rep);
		if (r == 0)
			printf("audit log intact: %lld entries verified\n",
			    (long long)rep.entries);
		else if (r == CK_E_TAMPER) {
			fprintf(stderr, "certkeep: audit log TAMPERED: entry "
			    "%lld: %s (%lld entries before it verified)\n",
			    (long long)rep.first_bad, rep.reason,
			    (long long)rep.entries);
			ex = CLI_EXIT_FAIL;
		} else
			ex = cli_fail(r);
	}
	ck_ca_close(ca);
	return ex;
}
