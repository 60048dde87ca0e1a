/*
 * certkeep ca install|show|csr|chain
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/timeutil.h"
#include "store/store.h"

static const char ca_usage[] =
    "certkeep ca install --home DIR --cert FILE --chain FILE\n"
    "       certkeep ca show --home DIR\n"
    "       certkeep ca chain --home DIR\n"
    "       certkeep ca csr --home DIR";

enum { O_CERT = CLI_OPT__FIRST_LOCAL, O_CHAIN };

static int
ca_show(struct ck_ca *ca)
{
	char *state = NULL, buf[1024];
	int64_t seq = 0;
	const ASN1_TIME *na;
	BIO *out;
	int i;

	if (store_meta_get(ca->st, "ca_state", &state) != 0)
		state = NULL;
	(void)store_change_seq(ca->st, &seq);
	printf("home:          %s\n", ca->home);
	printf("state:         %s\n", state ? state : "unknown");
	printf("change seq:    %lld\n", (long long)seq);
	free(state);
	if (ca->cert == NULL)
		return CLI_EXIT_OK;
	X509_NAME_oneline(X509_get_subject_name(ca->cert), buf, sizeof(buf));
	printf("subject:       %s\n", buf);
	na = X509_get0_notAfter(ca->cert);
	out = BIO_new_fp(stdout, BIO_NOCLOSE);
	printf("not after:     ");
	fflush(stdout);
	ASN1_TIME_print(out, na);
	BIO_printf(out, "\n");
	BIO_free(out);
	printf("path length:   %ld\n", X509_get_pathlen(ca->cert));
	printf("chain:\n");
	for (i = 0; i < sk_X509_num(ca->chain); i++) {
		X509_NAME_oneline(X509_get_subject_name(
		    sk_X509_value(ca->chain, i)), buf, sizeof(buf));
		printf("  %d: %s\n", i, buf);
	}
	printf("profiles:     ");
	for (size_t j = 0; j < ca->cfg->nprofiles; j++)
		printf(" %s", ca->cfg->profiles[j].name);
	printf("\n");
	return CLI_EXIT_OK;
}

int
cmd_ca(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "cert", required_argument, NULL, O_CERT },
		{ "chain", required_argument, NULL, O_CHAIN },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_ca *ca = NULL;
	const char *home, *sub, *certf = NULL, *chainf = NULL;
	unsigned char *cert = NULL, *chain = NULL;
	size_t certlen = 0, chainlen = 0;
	char path[4096], *pem = NULL;
	size_t pemlen;
	int opt, r, ex = CLI_EXIT_OK;

	if ((sub = cli_subcommand(&argc, &argv)) == NULL)
		return cli_usage(ca_usage);
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_CERT:
			certf = optarg;
			break;
		case O_CHAIN:
			chainf = optarg;
			break;
		default:
			return cli_usage(ca_usage);
		}
	}
	if (com.help)
		return cli_help(ca_usage);
	if (optind != argc)
		return cli_usage(ca_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (strcmp(sub, "install") == 0) {
		if (certf == NULL || chainf == NULL)
			return cli_usage(ca_usage);
		if ((r = cli_read_input(certf, 1024 * 1024, &cert,
		    &certlen)) != 0 ||
		    (r = cli_read_input(chainf, 1024 * 1024, &chain,
		    &chainlen)) != 0)
			goto fail;
		if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = ck_ca_install(ca, cert, certlen, chain,
		    chainlen)) != 0)
			goto fail;
		printf("Installed the CA certificate; %s is ready to issue.\n",
		    home);
	} else if (strcmp(sub, "show") == 0) {
		if ((r = ck_ca_open(home, &ca)) != 0)
			goto fail;
		ex = ca_show(ca);
	} else if (strcmp(sub, "chain") == 0) {
		if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = ck_ca_chain_pem(ca, &pem, &pemlen)) != 0 ||
		    (r = cli_write_output(NULL, pem, pemlen)) != 0)
			goto fail;
	} else if (strcmp(sub, "csr") == 0) {
		if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = ck_ca_path(ca, ca->cfg->csr_file, path,
		    sizeof(path))) != 0 ||
		    (r = ck_fs_read(path, 65536, &cert, &certlen)) != 0 ||
		    (r = cli_write_output(NULL, cert, certlen)) != 0)
			goto fail;
	} else
		ex = cli_usage(ca_usage);
	goto out;
fail:
	ex = cli_fail(r);
out:
	free(pem);
	free(cert);
	free(chain);
	ck_ca_close(ca);
	return ex;
}
