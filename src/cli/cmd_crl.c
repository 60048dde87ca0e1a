/*
 * certkeep crl: sign, record and publish a new CRL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"

static const char crl_usage[] =
    "certkeep crl --home DIR [--out FILE] [--der]\n"
    "        [--passphrase-file FILE | --passphrase-fd N]";

enum { O_OUT = CLI_OPT__FIRST_LOCAL, O_DER };

int
cmd_crl(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "out", required_argument, NULL, O_OUT },
		{ "der", no_argument, NULL, O_DER },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_ca *ca = NULL;
	const char *home, *outf = NULL;
	unsigned char *der = NULL;
	const unsigned char *q;
	size_t der_len = 0;
	uint64_t number = 0;
	X509_CRL *crl = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	int opt, r, ex = CLI_EXIT_OK, asder = 0;

	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_OUT:
			outf = optarg;
			break;
		case O_DER:
			asder = 1;
			break;
		default:
			return cli_usage(crl_usage);
		}
	}
	if (com.help)
		return cli_help(crl_usage);
	if (optind != argc)
		return cli_usage(crl_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	/* Through certkeepd when it serves the home (or remotely). */
	{
		json_t *reply = NULL;
		const char *pem, *note;
		r = cli_admin_call(home, json_pack("{s:s}", "action", "crl"), 0,
		    &reply);
		if (r == 0) {
			if ((ex = cli_admin_failed(reply)) == 0) {
				pem = json_string_value(json_object_get(reply,
				    "out"));
				note = json_string_value(json_object_get(reply,
				    "note"));
				if (pem == NULL)
					r = ck_err_set(CK_E_PARSE, "the reply "
					    "holds no CRL");
				else if (!asder)
					r = cli_write_output(outf, pem,
					    strlen(pem));
				else if ((bio = BIO_new_mem_buf(pem, -1)) ==
				    NULL || (crl = PEM_read_bio_X509_CRL(bio,
				    NULL, NULL, NULL)) == NULL ||
				    (r = i2d_X509_CRL(crl, &der)) <= 0)
					r = ck_err_set(CK_E_PARSE, "the reply "
					    "holds no CRL");
				else
					r = cli_write_output(outf, der,
					    (size_t)r);
				if (r != 0)
					ex = cli_fail(r);
				else if (note != NULL)
					fprintf(stderr, "certkeep: %s\n", note);
			}
			json_decref(reply);
			goto out;
		}
		if (r != CK_E_NOTFOUND)
			goto fail;
		ck_err_clear();
	}
	if ((r = ck_ca_open(home, &ca)) != 0 ||
	    (r = ck_ca_unlock(ca, &com.pass)) != 0 ||
	    (r = ck_ca_crl(ca, &der, &der_len, &number)) != 0)
		goto fail;
	if (asder)
		r = cli_write_output(outf, der, der_len);
	else {
		q = der;
		if ((crl = d2i_X509_CRL(NULL, &q, (long)der_len)) == NULL ||
		    (bio = BIO_new(BIO_s_mem())) == NULL ||
		    !PEM_write_bio_X509_CRL(bio, crl)) {
			r = CK_E_NOMEM;
			goto fail;
		}
		BIO_get_mem_ptr(bio, &bm);
		r = cli_write_output(outf, bm->data, bm->length);
	}
	if (r != 0)
		goto fail;
	fprintf(stderr, "certkeep: published CRL number %llu\n",
	    (unsigned long long)number);
	goto out;
fail:
	ex = cli_fail(r);
out:
	BIO_free(bio);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	ck_ca_close(ca);
	return ex;
}
