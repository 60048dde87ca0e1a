/*
 * certkeep token create|list|revoke: API tokens for the REST API.
 */
#include <stdio.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/token.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/timeutil.h"

static const char token_usage[] =
    "certkeep token create --home DIR --name NAME --profiles P1[,P2...]\n"
    "        [--dns-suffixes S,...] [--ip-ranges CIDR,...]\n"
    "        [--email-domains D,...] [--allow-revoke]\n"
    "       certkeep token list --home DIR\n"
    "       certkeep token revoke --home DIR ID|NAME";

enum { O_NAME = CLI_OPT__FIRST_LOCAL, O_PROFILES, O_DNS, O_IP, O_EMAIL,
	O_REVOKE };

static int
print_token(const struct store_token *t, void *arg)
{
	char c[32], rv[32] = "";
	int *n = arg;

	if ((*n)++ == 0)
		printf("%-16s %-20s %-8s %-20s %s\n", "ID", "NAME", "STATE",
		    "CREATED", "PROFILES / RULES");
	ck_time_format(t->created_at, c, sizeof(c));
	if (t->revoked_at)
		ck_time_format(t->revoked_at, rv, sizeof(rv));
	printf("%-16s %-20s %-8s %-20s %s%s%s%s%s%s%s%s\n", t->id, t->name,
	    t->revoked_at ? "revoked" : "valid", c, t->profiles,
	    t->dns_suffixes[0] ? " dns:" : "", t->dns_suffixes,
	    t->ip_ranges[0] ? " ip:" : "", t->ip_ranges,
	    t->email_domains[0] ? " email:" : "", t->email_domains,
	    t->can_revoke ? " (may revoke)" : "");
	return 0;
}

int
cmd_token(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "name", required_argument, NULL, O_NAME },
		{ "profiles", required_argument, NULL, O_PROFILES },
		{ "dns-suffixes", required_argument, NULL, O_DNS },
		{ "ip-ranges", required_argument, NULL, O_IP },
		{ "email-domains", required_argument, NULL, O_EMAIL },
		{ "allow-revoke", no_argument, NULL, O_REVOKE },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_token_params tp;
	struct ck_ca *ca = NULL;
	struct ck_secret *tok = NULL;
	const char *home, *sub;
	int opt, r, n = 0, ex = CLI_EXIT_OK;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(token_usage);
	cli_common_init(&com);
	memset(&tp, 0, sizeof(tp));
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_NAME:
			tp.name = optarg;
			break;
		case O_PROFILES:
			tp.profiles = optarg;
			break;
		case O_DNS:
			tp.dns_suffixes = optarg;
			break;
		case O_IP:
			tp.ip_ranges = optarg;
			break;
		case O_EMAIL:
			tp.email_domains = optarg;
			break;
		case O_REVOKE:
			tp.can_revoke = 1;
			break;
		default:
			return cli_usage(token_usage);
		}
	}
	if (com.help)
		return cli_help(token_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (strcmp(sub, "create") == 0) {
		if (optind != argc || tp.name == NULL || tp.profiles == NULL)
			return cli_usage(token_usage);
		if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = ck_token_create(ca, &tp, &tok)) != 0)
			goto fail;
		/* Shown once; only its hash is kept. */
		printf("%s\n", (const char *)tok->buf);
		fflush(stdout);
		fprintf(stderr, "certkeep: token '%s' created; it is shown "
		    "only this once\n", tp.name);
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc)
			return cli_usage(token_usage);
		if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = store_token_list(ca->st, print_token, &n)) != 0)
			goto fail;
	} else if (strcmp(sub, "revoke") == 0) {
		if (optind + 1 != argc)
			return cli_usage(token_usage);
		if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = ck_token_revoke(ca, argv[optind])) != 0)
			goto fail;
		printf("Revoked token %s.\n", argv[optind]);
	} else
		ex = cli_usage(token_usage);
	goto out;
fail:
	ex = cli_fail(r);
out:
	ck_secret_free(tok);
	ck_ca_close(ca);
	return ex;
}
