/*
 * certkeep issue: a certificate from a CSR under a profile.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "ca/approval.h"
#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/privs.h"
#include "common/strutil.h"
#include "profile/profile.h"
#include "store/store_authz.h"
#include "x509/csr.h"

/*
 * A profile that needs approval: the request is judged and kept, not
 * signed; its id goes to standard output. The requester is the operator
 * this OS user is, or the OS user, so that they cannot approve it.
 */
static int
issue_pending(struct ck_ca *ca, const struct ck_issue_params *p)
{
	struct ck_request_origin o;
	struct store_request rq;
	struct store_operator op;
	struct passwd *pw;
	char msg[1024], user[64];
	int r, isop;

	memset(&o, 0, sizeof(o));
	/* Who the admin socket would see: root has become the home's owner
	 * by now (main.c), and approves as that owner too. */
	if ((pw = getpwuid(ck_privs_caller_uid())) != NULL &&
	    pw->pw_name != NULL)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "uid:%u",
		    (unsigned)ck_privs_caller_uid());
	o.os_user = user;
	r = store_operator_by_os_user(ca->st, o.os_user, &op);
	if (r != 0 && r != CK_E_NOTFOUND)
		return r;
	ck_err_clear();
	isop = r == 0;
	o.operator_name = isop ? op.name : NULL;
	o.requester = p->requester != NULL ? p->requester : isop ? op.name :
	    audit_os_user();
	if ((r = ck_request_build(ca, p, &o, &rq)) != 0) {
		snprintf(msg, sizeof(msg), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		(void)ck_ca_audit_refusal(ca, o.requester, p->profile, msg);
		return ck_err_set(r, "%s", msg);
	}
	if ((r = ck_request_record(ca, &rq)) == 0) {
		printf("%lld\n", (long long)rq.id);
		fprintf(stderr, "certkeep: request %lld waits for %d "
		    "certificate manager approval(s) (profile %s); see "
		    "'certkeep request show %lld'\n", (long long)rq.id,
		    ck_request_needed(ca, rq.profile), rq.profile,
		    (long long)rq.id);
	}
	store_request_clear(&rq);
	return r;
}

static const char issue_usage[] =
    "certkeep issue --home DIR --profile NAME --csr FILE|-\n"
    "        [--days N] [--path-len N] [--out FILE] [--cert-only]\n"
    "        [--requester NAME] [--passphrase-file FILE | --passphrase-fd N]";

enum { O_PROFILE = CLI_OPT__FIRST_LOCAL, O_CSR, O_DAYS, O_PATHLEN, O_OUT,
	O_CERTONLY, O_REQUESTER };

/* LEN bytes as a new NUL-terminated string (not strndup: the bytes need
 * not be a C string, and strict string checks read to the NUL). */
static char *
bytes_str(const void *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

/* The CSR as PEM text (a request carries text): new string, or NULL. */
static char *
csr_pem(const unsigned char *csr, size_t len)
{
	const unsigned char *q = csr;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	BUF_MEM *bm;
	char *s = NULL;

	if (len >= 11 && memmem(csr, len, "-----BEGIN ", 11) != NULL)
		return bytes_str(csr, len);
	if ((req = d2i_X509_REQ(NULL, &q, (long)len)) != NULL &&
	    (bio = BIO_new(BIO_s_mem())) != NULL &&
	    PEM_write_bio_X509_REQ(bio, req)) {
		BIO_get_mem_ptr(bio, &bm);
		s = bytes_str(bm->data, bm->length);
	}
	BIO_free(bio);
	X509_REQ_free(req);
	return s;
}

/*
 * Through certkeepd (admin socket, or HTTPS in the remote mode), which
 * judges the caller (cert-manager) and issues through its durable
 * pipeline; the caller is the requester. CK_E_NOTFOUND when no certkeepd
 * serves HOME: the caller then issues here. Else the exit status.
 */
static int
issue_served(const char *home, const struct ck_issue_params *p,
    const unsigned char *csr, size_t csrlen, int certonly, const char *outf,
    int *ex)
{
	const char *out, *note;
	json_t *req, *reply = NULL;
	char *pem;
	int r;

	if ((pem = csr_pem(csr, csrlen)) == NULL) {
		/* Not a CSR: the judge refuses (and audits) it as such; the
		 * request carries text, so bytes that are not are '?'. */
		size_t i;
		if ((pem = malloc(csrlen + 1)) == NULL)
			return CK_E_NOMEM;
		for (i = 0; i < csrlen; i++)
			pem[i] = csr[i] >= 0x20 && csr[i] < 0x7f ? (char)csr[i] :
			    csr[i] == '\n' ? '\n' : '?';
		pem[csrlen] = '\0';
	}
	req = json_pack("{s:s, s:s, s:s, s:i, s:i, s:b}", "action", "issue",
	    "profile", p->profile, "csr", pem, "days", (int)p->days,
	    "path_len", p->path_len, "cert_only", certonly);
	free(pem);
	if ((r = cli_admin_call(home, req, 0, &reply)) != 0)
		return r;
	if ((*ex = cli_admin_failed(reply)) == 0) {
		out = json_string_value(json_object_get(reply, "out"));
		note = json_string_value(json_object_get(reply, "note"));
		if (json_object_get(reply, "request") != NULL) {
			/* Kept for approval: its id, as the CLI prints it. */
			fputs(out != NULL ? out : "", stdout);
			fflush(stdout);
			if (note != NULL)
				fprintf(stderr, "certkeep: %s\n", note);
		} else if (out == NULL || (r = cli_write_output(outf, out,
		    strlen(out))) != 0)
			*ex = cli_fail(out == NULL ? ck_err_set(CK_E_PARSE,
			    "the reply holds no certificate") : r);
		else if (note != NULL)
			fprintf(stderr, "certkeep: %s\n", note);
	}
	json_decref(reply);
	return 0;
}

int
cmd_issue(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "csr", required_argument, NULL, O_CSR },
		{ "days", required_argument, NULL, O_DAYS },
		{ "path-len", required_argument, NULL, O_PATHLEN },
		{ "out", required_argument, NULL, O_OUT },
		{ "cert-only", no_argument, NULL, O_CERTONLY },
		{ "requester", required_argument, NULL, O_REQUESTER },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_issue_params p;
	struct ck_issue_result res;
	struct ck_ca *ca = NULL;
	const char *home, *csrf = NULL, *outf = NULL;
	unsigned char *csr = NULL;
	size_t csrlen = 0, pemlen = 0, chainlen = 0;
	char *pem = NULL, *chain = NULL, *all = NULL;
	uint64_t v;
	int opt, r, ex = CLI_EXIT_OK, certonly = 0;

	cli_common_init(&com);
	memset(&p, 0, sizeof(p));
	memset(&res, 0, sizeof(res));
	p.path_len = -1;
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_PROFILE:
			p.profile = optarg;
			break;
		case O_CSR:
			csrf = optarg;
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
		case O_OUT:
			outf = optarg;
			break;
		case O_CERTONLY:
			certonly = 1;
			break;
		case O_REQUESTER:
			p.requester = optarg;
			break;
		default:
			return cli_usage(issue_usage);
		}
	}
	if (com.help)
		return cli_help(issue_usage);
	if (optind != argc || p.profile == NULL || csrf == NULL)
		return cli_usage(issue_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if ((r = cli_read_input(csrf, CK_CSR_MAX, &csr, &csrlen)) != 0 &&
	    r != CK_E_TOOBIG)
		return cli_fail(r);
	if (csr != NULL) {
		r = issue_served(home, &p, csr, csrlen, certonly, outf, &ex);
		if (r != CK_E_NOTFOUND) {
			free(csr);
			return r != 0 ? cli_fail(r) : ex;
		}
		ck_err_clear();
	}
	if ((r = ck_ca_open(home, &ca)) != 0)
		goto fail;
	if (csr == NULL) {
		/* Over the limit: refused like any other bad request. */
		char msg[256];
		snprintf(msg, sizeof(msg), "CSR larger than %u bytes",
		    CK_CSR_MAX);
		(void)ck_ca_audit_refusal(ca, p.requester, p.profile, msg);
		r = ck_err_set(CK_E_TOOBIG, "%s", msg);
		goto fail;
	}
	p.csr = csr;
	p.csr_len = csrlen;
	if (ca->cert == NULL) {
		r = ck_err_set(CK_E_STATE, "this CA has no certificate yet: "
		    "install it with 'certkeep ca install'");
		goto fail;
	}
	{
		const struct ck_profile *prof = ck_config_profile(ca->cfg,
		    p.profile);
		if (prof != NULL && prof->approvals > 0) {
			if ((r = issue_pending(ca, &p)) != 0)
				goto fail;
			goto out;
		}
	}
	if ((r = ck_ca_unlock(ca, &com.pass)) != 0 ||
	    (r = ck_ca_issue(ca, &p, &res)) != 0)
		goto fail;
	if ((r = ck_der_to_pem(res.der, res.der_len, &pem, &pemlen)) != 0)
		goto fail;
	if (!certonly) {
		if ((r = ck_ca_chain_pem(ca, &chain, &chainlen)) != 0)
			goto fail;
		if ((all = malloc(pemlen + chainlen + 1)) == NULL) {
			r = CK_E_NOMEM;
			goto fail;
		}
		memcpy(all, pem, pemlen);
		memcpy(all + pemlen, chain, chainlen);
		all[pemlen + chainlen] = '\0';
	}
	if ((r = cli_write_output(outf, certonly ? pem : all,
	    certonly ? pemlen : pemlen + chainlen)) != 0)
		goto fail;
	fprintf(stderr, "certkeep: issued certificate serial %s\n",
	    res.serial);
	goto out;
fail:
	ex = cli_fail(r);
out:
	free(all);
	free(chain);
	free(pem);
	OPENSSL_free(res.der);
	free(csr);
	ck_ca_close(ca);
	return ex;
}
