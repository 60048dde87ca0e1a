/*
 * certkeep list / show: certificates in the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "store/store.h"
#include "x509/certbuild.h"
#include "x509/serial.h"

static const char list_usage[] =
    "certkeep list --home DIR [--status pending|issued|revoked|failed|expired]\n"
    "        [--expiring-before YYYY-MM-DD] [--profile NAME] [--name TEXT]\n"
    "        [--limit N]";
static const char show_usage[] =
    "certkeep show --home DIR SERIAL [--pem]";

enum { O_STATUS = CLI_OPT__FIRST_LOCAL, O_EXPIRING, O_PROFILE, O_NAME,
	O_LIMIT, O_PEM };

static int
print_row(const struct store_cert *c, void *arg)
{
	char nb[32], na[32];
	int *count = arg;

	ck_time_format(c->not_before, nb, sizeof(nb));
	ck_time_format(c->not_after, na, sizeof(na));
	if (*count == 0)
		printf("%-34s %-8s %-12s %-20s %s\n", "SERIAL", "STATUS",
		    "PROFILE", "NOT AFTER", "SUBJECT / NAMES");
	printf("%-34s %-8s %-12s %-20s %s%s%s\n", c->serial,
	    store_cert_status_name(c->status), c->profile, na, c->subject,
	    c->names[0] ? "  " : "", c->names);
	(*count)++;
	return 0;
}

int
cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "status", required_argument, NULL, O_STATUS },
		{ "expiring-before", required_argument, NULL, O_EXPIRING },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "name", required_argument, NULL, O_NAME },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct store_cert_filter f;
	struct ck_ca *ca = NULL;
	const char *home;
	uint64_t v;
	int opt, r, count = 0;

	cli_common_init(&com);
	memset(&f, 0, sizeof(f));
	f.status = -1;
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_STATUS:
			if (strcmp(optarg, "expired") == 0) {
				f.expired = 1;
				f.now = ck_time_now();
			} else if ((f.status = store_cert_status_parse(
			    optarg)) < 0) {
				fprintf(stderr, "certkeep: unknown status "
				    "'%s'\n", optarg);
				return cli_usage(list_usage);
			}
			break;
		case O_EXPIRING:
			if (ck_time_parse(optarg, &f.expiring_before) != 0)
				return cli_fail(CK_E_PARSE), CLI_EXIT_USAGE;
			break;
		case O_PROFILE:
			f.profile = optarg;
			break;
		case O_NAME:
			f.name = optarg;
			break;
		case O_LIMIT:
			if (ck_parse_u64(optarg, 1, 100000000, "--limit",
			    &v) != 0)
				return cli_fail(CK_E_PARSE), CLI_EXIT_USAGE;
			f.limit = (size_t)v;
			break;
		default:
			return cli_usage(list_usage);
		}
	}
	if (com.help)
		return cli_help(list_usage);
	if (optind != argc)
		return cli_usage(list_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if ((r = ck_ca_open(home, &ca)) != 0 ||
	    (r = store_cert_list(ca->st, &f, print_row, &count)) != 0) {
		ck_ca_close(ca);
		return cli_fail(r);
	}
	ck_ca_close(ca);
	return CLI_EXIT_OK;
}

int
cmd_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "pem", no_argument, NULL, O_PEM },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_ca *ca = NULL;
	struct store_cert *c = NULL;
	const char *home;
	char serial[CK_SERIAL_HEX_MAX], t1[32], t2[32], t3[32], *pem = NULL;
	size_t pemlen;
	int opt, r, ex = CLI_EXIT_OK, aspem = 0;

	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		if (opt == O_PEM)
			aspem = 1;
		else
			return cli_usage(show_usage);
	}
	if (com.help)
		return cli_help(show_usage);
	if (optind + 1 != argc)
		return cli_usage(show_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if ((r = ck_serial_normalize(argv[optind], serial)) != 0 ||
	    (r = ck_ca_open(home, &ca)) != 0 ||
	    (r = store_cert_get(ca->st, serial, &c)) != 0)
		goto fail;
	if (aspem) {
		if (c->der == NULL) {
			r = ck_err_set(CK_E_STATE, "certificate %s was never "
			    "issued (status %s)", serial,
			    store_cert_status_name(c->status));
			goto fail;
		}
		if ((r = ck_der_to_pem(c->der, c->der_len, &pem,
		    &pemlen)) != 0 ||
		    (r = cli_write_output(NULL, pem, pemlen)) != 0)
			goto fail;
		goto out;
	}
	ck_time_format(c->not_before, t1, sizeof(t1));
	ck_time_format(c->not_after, t2, sizeof(t2));
	ck_time_format(c->created_at, t3, sizeof(t3));
	printf("serial:      %s\n", c->serial);
	printf("status:      %s\n", store_cert_status_name(c->status));
	printf("subject:     %s\n", c->subject);
	printf("names:       %s\n", c->names);
	printf("profile:     %s\n", c->profile);
	printf("requester:   %s\n", c->requester);
	printf("CA:          %s\n", c->is_ca ? "yes" : "no");
	printf("not before:  %s\n", t1);
	printf("not after:   %s\n", t2);
	printf("recorded:    %s\n", t3);
	printf("TBS SHA-256: %s\n", c->tbs_sha256);
	if (c->status == STORE_CERT_REVOKED) {
		ck_time_format(c->revoked_at, t1, sizeof(t1));
		printf("revoked:     %s (%s)\n", t1,
		    ck_crl_reason_name(c->reason));
	}
	printf("change seq:  %lld\n", (long long)c->change_seq);
	goto out;
fail:
	ex = cli_fail(r);
out:
	free(pem);
	store_cert_free(c);
	ck_ca_close(ca);
	return ex;
}
