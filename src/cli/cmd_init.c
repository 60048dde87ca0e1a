/*
 * certkeep init: create a CA home.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backup/keybackup.h"
#include "ca/ca.h"
#include "ca/home_split.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/strutil.h"
#include "keystore/unlock.h"
#include "store/store_authz.h"

static const char init_usage[] =
    "certkeep init --home DIR (--root | --issuing) --subject DN\n"
    "        [--key-type rsa2048|rsa3072|rsa4096|ec-p256|ec-p384|ed25519]\n"
    "        [--days N] [--path-len N] [--base-url URL] [--domain DOMAIN]\n"
    "        [--user SERVICE-USER [--key-owner KEY-OWNER] (as root)]\n"
    "        [--pkcs11-module PATH --pkcs11-uri URI [--pkcs11-generate]]\n"
    "        [--passphrase-file FILE | --passphrase-fd N |\n"
    "         --unlock-shares M/N --custodian NAME (N times) --shares-out DIR]"
    "\n\n"
    "--unlock-shares: the key gets no passphrase but a random secret split\n"
    "among the custodians (M-of-N unlock, docs/keys.md).\n"
    "--key-owner: the home, the configuration, the CA certificate and key\n"
    "belong to KEY-OWNER, the store to SERVICE-USER; certkeepd started as\n"
    "root runs its signer as KEY-OWNER (docs/signer.md).";

enum { O_ROOT = CLI_OPT__FIRST_LOCAL, O_ISSUING, O_SUBJECT, O_KEYTYPE,
	O_DAYS, O_PATHLEN, O_BASEURL, O_DOMAIN, O_SCRYPT, O_USER,
	O_P11MODULE, O_P11URI, O_P11GEN, O_UNLOCK, O_CUSTODIAN, O_SHARESOUT,
	O_KEYOWNER };

int
cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "root", no_argument, NULL, O_ROOT },
		{ "issuing", no_argument, NULL, O_ISSUING },
		{ "subject", required_argument, NULL, O_SUBJECT },
		{ "key-type", required_argument, NULL, O_KEYTYPE },
		{ "days", required_argument, NULL, O_DAYS },
		{ "path-len", required_argument, NULL, O_PATHLEN },
		{ "base-url", required_argument, NULL, O_BASEURL },
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "scrypt-log2n", required_argument, NULL, O_SCRYPT },
		{ "user", required_argument, NULL, O_USER },
		{ "pkcs11-module", required_argument, NULL, O_P11MODULE },
		{ "pkcs11-uri", required_argument, NULL, O_P11URI },
		{ "pkcs11-generate", no_argument, NULL, O_P11GEN },
		{ "unlock-shares", required_argument, NULL, O_UNLOCK },
		{ "custodian", required_argument, NULL, O_CUSTODIAN },
		{ "shares-out", required_argument, NULL, O_SHARESOUT },
		{ "key-owner", required_argument, NULL, O_KEYOWNER },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_init_params p;
	struct ck_ca *ca = NULL;
	struct ck_secret *unlock_s = NULL;
	const char *custodians[CK_KEYBACKUP_MAX_SHARES], *shares_out = NULL;
	const char *unlock = NULL, *key_owner = NULL;
	uint64_t v;
	int opt, kt, root = 0, issuing = 0, r, ncust = 0, um = 0, un = 0;

	cli_common_init(&com);
	memset(&p, 0, sizeof(p));
	p.key_type = CK_KEY_EC_P256;
	p.days = 3650;
	p.path_len = -1;
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_ROOT:
			root = 1;
			break;
		case O_ISSUING:
			issuing = 1;
			break;
		case O_SUBJECT:
			p.subject = optarg;
			break;
		case O_KEYTYPE:
			if ((kt = ck_key_type_parse(optarg)) < 0)
				return cli_fail(CK_E_INVAL), CLI_EXIT_USAGE;
			p.key_type = (enum ck_key_type)kt;
			break;
		case O_DAYS:
			if (ck_parse_u64(optarg, 1, 36500, "--days", &v) != 0)
				return cli_fail(CK_E_INVAL), CLI_EXIT_USAGE;
			p.days = (uint32_t)v;
			break;
		case O_PATHLEN:
			if (ck_parse_u64(optarg, 0, 16, "--path-len", &v) != 0)
				return cli_fail(CK_E_INVAL), CLI_EXIT_USAGE;
			p.path_len = (int)v;
			break;
		case O_BASEURL:
			p.base_url = optarg;
			break;
		case O_DOMAIN:
			p.domain = optarg;
			break;
		case O_KEYOWNER:
			key_owner = optarg;
			break;
		case O_USER:
			p.user = optarg;
			break;
		case O_P11MODULE:
			p.pkcs11_module = optarg;
			break;
		case O_P11URI:
			p.pkcs11_uri = optarg;
			break;
		case O_P11GEN:
			p.pkcs11_generate = 1;
			break;
		case O_UNLOCK:
			unlock = optarg;
			break;
		case O_CUSTODIAN:
			if (ncust == CK_KEYBACKUP_MAX_SHARES)
				return cli_usage(init_usage);
			custodians[ncust++] = optarg;
			break;
		case O_SHARESOUT:
			shares_out = optarg;
			break;
		case O_SCRYPT:
			/* For tests only: a cheaper KDF. At most the default 2^15. */
			if (ck_parse_u64(optarg, 10, 15, "--scrypt-log2n",
			    &v) != 0)
				return cli_fail(CK_E_INVAL), CLI_EXIT_USAGE;
			p.scrypt_log2n = (int)v;
			break;
		default:
			return cli_usage(init_usage);
		}
	}
	if (com.help)
		return cli_help(init_usage);
	if (optind != argc || root == issuing || p.subject == NULL)
		return cli_usage(init_usage);
	if ((p.home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (!root && p.path_len >= 0)
		return cli_usage(init_usage);
	/* The PIN comes like a passphrase, never from here or the URI. */
	if ((p.pkcs11_uri == NULL) != (p.pkcs11_module == NULL) ||
	    (p.pkcs11_generate && p.pkcs11_uri == NULL))
		return cli_usage(init_usage);
	if ((unlock != NULL) != (shares_out != NULL) ||
	    (unlock == NULL && ncust != 0))
		return cli_usage(init_usage);
	if (key_owner != NULL) {
		/* Made as today, by a child that becomes the service user;
		 * then split here, as root. */
		pid_t pid;
		int st = 0;
		if (geteuid() != 0 || p.user == NULL) {
			fprintf(stderr, "certkeep: --key-owner needs root and "
			    "--user\n");
			return CLI_EXIT_USAGE;
		}
		fflush(NULL);
		if ((pid = fork()) < 0)
			return cli_fail(ck_err_set(CK_E_IO, "fork failed"));
		if (pid > 0) {
			if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
			    WEXITSTATUS(st) != CLI_EXIT_OK)
				return CLI_EXIT_FAIL;
			if ((r = ck_home_layout(p.home, p.user,
			    key_owner)) != 0) {
				fprintf(stderr, "certkeep: error: %s; the CA "
				    "was made, the home not split: run certkeep "
				    "home split --home %s --user %s --key-owner "
				    "%s\n", ck_err_msg(), p.home, p.user,
				    key_owner);
				return CLI_EXIT_FAIL;
			}
			printf("%s belongs to %s (key owner), its store to %s "
			    "(service user)\n", p.home, key_owner, p.user);
			return CLI_EXIT_OK;
		}
	}
	if (unlock != NULL) {
		char tail;
		if (p.pkcs11_uri != NULL || com.pass.kind != CK_PASS_TTY)
			return cli_usage(init_usage);
		if (sscanf(unlock, "%d/%d%c", &um, &un, &tail) != 2 ||
		    um < 2 || un < um || un > CK_KEYBACKUP_MAX_SHARES ||
		    ncust != un) {
			fprintf(stderr, "certkeep: --unlock-shares M/N needs 2 <= "
			    "M <= N <= %d and N --custodian names\n",
			    CK_KEYBACKUP_MAX_SHARES);
			return CLI_EXIT_USAGE;
		}
		if ((r = cli_init_unlock_begin(custodians, um, un, &com.pass,
		    &unlock_s)) != 0)
			return cli_fail(r);
		if (p.scrypt_log2n == 0)
			p.scrypt_log2n = UNLOCK_SCRYPT_LOG2N;
	}
	p.root = root;
	p.pass = &com.pass;
	r = ck_ca_init(&p);
	if (com.pass.kind == CK_PASS_FD && unlock_s != NULL)
		close(com.pass.fd);
	if (r != 0) {
		ck_secret_free(unlock_s);
		return cli_fail(r);
	}
	/* A new CA separates roles (docs/roles.md); recorded, so that a
	 * later default cannot change it. */
	if ((r = ck_ca_open(p.home, &ca)) != 0 ||
	    (r = store_role_separation_set(ca->st, 1)) != 0) {
		ck_ca_close(ca);
		return cli_fail(r);
	}
	ck_ca_close(ca);
	if (unlock_s != NULL) {
		r = cli_init_unlock_finish(p.home, unlock_s, um, un, custodians,
		    shares_out);
		ck_secret_free(unlock_s);
		if (r != CLI_EXIT_OK)
			return r;
	}
	if (root)
		printf("Created root CA in %s (certificate: %s/ca.pem)\n",
		    p.home, p.home);
	else
		printf("Created issuing CA in %s. Have its request %s/ca.csr "
		    "signed by the parent CA\n(certkeep issue --profile sub-ca)"
		    " and install the result with 'certkeep ca install'.\n",
		    p.home, p.home);
	return CLI_EXIT_OK;
}
