/*
 * certkeep acme eab create|list|revoke: ACME external account binding
 * keys (RFC 8555 7.3.4), which certkeepd requires of new accounts with
 * [acme] eab_required = true.
 *
 * create prints a new key id and its HMAC key once. The store keeps only
 * the key sealed to the home's EAB key pair (src/ca/eab_seal.h); the first
 * create makes that pair, its private half encrypted under the CA key's
 * passphrase, which is checked against the CA key first so that a typo
 * cannot lock the pair under a passphrase nobody knows. Later creates
 * need only the public half and ask for no passphrase.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "audit/audit.h"
#include "ca/ca.h"
#include "ca/eab_seal.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "proto/jws.h"
#include "store/store_acme.h"

static const char acme_usage[] =
    "certkeep acme eab create --home DIR [--note TEXT]\n"
    "       certkeep acme eab list --home DIR\n"
    "       certkeep acme eab revoke --home DIR KID\n"
    "\n"
    "create prints a new key id and its HMAC key (base64url) for an ACME\n"
    "client's external account binding, once. The first create of a CA\n"
    "makes its EAB key pair and needs the CA key's passphrase\n"
    "(--passphrase-file/-fd or the terminal). A key id binds the first\n"
    "account that uses it, and no other.";

enum { O_NOTE = CLI_OPT__FIRST_LOCAL };

/* Bytes of a new HMAC key (HS256's own size) and of a key id (in hex:
 * a kid never starts with '-', which command lines would take for an
 * option). */
#define EAB_HMAC_BYTES 32
#define EAB_KID_BYTES 16

/* A note is shown in lists and the audit log: one line of text. */
static int
note_check(const char *note)
{
	const unsigned char *p;

	if (strlen(note) > STORE_ACME_EAB_NOTE_MAX)
		return ck_err_set(CK_E_INVAL, "the note is longer than %d "
		    "bytes", STORE_ACME_EAB_NOTE_MAX);
	for (p = (const unsigned char *)note; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return ck_err_set(CK_E_INVAL, "the note holds a control "
			    "character: one line of text, please");
	return 0;
}

static int
count_live(const struct store_acme_eab *e, void *arg)
{
	if (e->revoked_at == 0)
		(*(size_t *)arg)++;
	return 0;
}

/*
 * The home's EAB public key. Without one: the pair is made now under the
 * CA key's passphrase, after unlocking the CA key with it. If only the
 * private half is there (the public file lost), it is written again from
 * the private half. *made says whether a pair was made.
 */
static int
eab_pub_or_make(struct ck_ca *ca, const struct ck_pass_src *src,
    EVP_PKEY **pub, int *made)
{
	struct ck_secret *pw = NULL;
	EVP_PKEY *key = NULL;
	char kpath[4096];
	int r;

	*made = 0;
	if ((r = eab_pub_load(ca->home, pub)) != CK_E_NOTFOUND)
		return r;
	ck_err_clear();
	if ((r = ck_path_join(kpath, sizeof(kpath), ca->home,
	    EAB_SEAL_KEY_FILE)) != 0)
		return r;
	/* A new pair would orphan the keys sealed to the old one (a home
	 * rebuilt from a data backup has the rows but not the pair). */
	if (!ck_fs_exists(kpath)) {
		size_t live = 0;

		if ((r = store_acme_eab_list(ca->st, count_live, &live)) != 0)
			return r;
		if (live > 0)
			return ck_err_set(CK_E_STATE, "the store holds %zu EAB "
			    "key(s) sealed to an EAB key pair that is not in "
			    "this home (%s, %s): bring it back with 'certkeep "
			    "key restore', or revoke them, before a new pair "
			    "is made", live, EAB_SEAL_KEY_FILE,
			    EAB_SEAL_PUB_FILE);
	}
	fprintf(stderr, "certkeep: %s: the CA key's passphrase %s\n",
	    ck_fs_exists(kpath) ? "the EAB public key is missing" :
	    "this CA has no EAB key pair yet", ck_fs_exists(kpath) ?
	    "opens the private key to write it again" : "protects the new "
	    "pair");
	if ((r = ck_passphrase_read(src, "CA key passphrase: ", 0, 0,
	    &pw)) != 0 ||
	    (r = ck_ca_unlock_with(ca, pw)) != 0)
		goto out;
	if (ck_fs_exists(kpath)) {
		if ((r = eab_key_load(ca->home, pw, &key)) != 0 ||
		    (r = eab_pub_save(ca->home, key)) != 0)
			goto out;
	} else {
		if ((r = eab_keypair_generate(&key)) != 0 ||
		    (r = eab_keypair_save(ca->home, key, pw, 0)) != 0)
			goto out;
		*made = 1;
	}
	r = eab_pub_load(ca->home, pub);
out:
	EVP_PKEY_free(key);
	ck_secret_free(pw);
	return r;
}

static int
eab_create(struct ck_ca *ca, const struct ck_pass_src *src, const char *note)
{
	struct store_acme_eab e;
	struct ck_secret *key = NULL, *text = NULL;
	unsigned char idb[EAB_KID_BYTES], *sealed = NULL;
	EVP_PKEY *pub = NULL;
	char detail[512];
	size_t sealed_len = 0;
	int r, made = 0;

	memset(&e, 0, sizeof(e));
	if ((r = note_check(note)) != 0 ||
	    (r = eab_pub_or_make(ca, src, &pub, &made)) != 0)
		goto out;
	if ((key = ck_secret_new(EAB_HMAC_BYTES)) == NULL ||
	    (text = ck_secret_new(ck_jws_b64url_len(EAB_HMAC_BYTES))) ==
	    NULL) {
		r = CK_E_NOMEM;
		goto out;
	}
	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    RAND_priv_bytes(key->buf, EAB_HMAC_BYTES) != 1) {
		r = ck_err_ssl(CK_E_CRYPTO, "random number generator");
		goto out;
	}
	key->len = EAB_HMAC_BYTES;
	ck_hex_encode(idb, sizeof(idb), e.kid);
	ck_jws_b64url_encode(key->buf, key->len, (char *)text->buf);
	text->len = strlen((char *)text->buf);
	if ((r = eab_seal(pub, e.kid, key->buf, key->len, &sealed,
	    &sealed_len)) != 0)
		goto out;
	e.sealed = sealed;
	e.sealed_len = sealed_len;
	e.note = (char *)note;
	e.created_at = ck_time_now();
	snprintf(detail, sizeof(detail), "HS256 key of %d bytes, sealed%s%s%s%s",
	    EAB_HMAC_BYTES, made ? "; made the EAB key pair" : "",
	    note[0] ? "; note \"" : "", note, note[0] ? "\"" : "");
	if ((r = store_tx_begin(ca->st)) != 0)
		goto out;
	if ((r = store_acme_eab_create(ca->st, &e)) != 0 ||
	    (r = ck_ca_audit(ca, "acme-eab-create", e.kid, AUDIT_OK,
	    detail)) != 0) {
		store_tx_rollback(ca->st);
		goto out;
	}
	if ((r = store_tx_commit(ca->st)) != 0)
		goto out;
	/* Shown once; the store holds it sealed only. */
	printf("kid: %s\nhmac-key: %s\n", e.kid, (const char *)text->buf);
	fflush(stdout);
	fprintf(stderr, "certkeep: EAB key id %s created; its HMAC key is "
	    "shown only this once\n", e.kid);
out:
	free(sealed);
	EVP_PKEY_free(pub);
	ck_secret_free(text);
	ck_secret_free(key);
	return r;
}

int
cmd_acme(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{ "note", required_argument, NULL, O_NOTE },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_common com;
	struct ck_ca *ca = NULL;
	const char *home, *group, *sub, *note = NULL;
	int opt, r, ex = CLI_EXIT_OK;

	if ((group = cli_subcommand(&argc, &argv)) == NULL ||
	    strcmp(group, "eab") != 0 ||
	    (sub = cli_subcommand(&argc, &argv)) == NULL) {
		if (argc > 1 && strcmp(argv[argc - 1], "--help") == 0)
			return cli_help(acme_usage);
		return cli_usage(acme_usage);
	}
	cli_common_init(&com);
	optind = 1;
	while ((opt = cli_getopt(argc, argv, longopts, &com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_NOTE:
			note = optarg;
			break;
		default:
			return cli_usage(acme_usage);
		}
	}
	if (com.help)
		return cli_help(acme_usage);
	if ((home = cli_home(&com)) == NULL)
		return CLI_EXIT_USAGE;
	if (strcmp(sub, "create") == 0) {
		if (optind != argc)
			return cli_usage(acme_usage);
		/* By certkeepd when it serves the home (it made the pair). */
		{
			json_t *reply = NULL;
			r = cli_admin_call(home, json_pack("{s:s, s:s}",
			    "action", "acme-eab-create", "note", note ? note :
			    ""), 0, &reply);
			if (r == 0) {
				const char *o, *nt;
				if ((ex = cli_admin_failed(reply)) == 0) {
					o = json_string_value(json_object_get(
					    reply, "out"));
					nt = json_string_value(json_object_get(
					    reply, "note"));
					fputs(o ? o : "", stdout);
					fflush(stdout);
					if (nt != NULL)
						fprintf(stderr, "certkeep: %s\n",
						    nt);
				}
				json_decref(reply);
				return ex;
			}
			if (r != CK_E_NOTFOUND)
				goto fail;
			ck_err_clear();
		}
		if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = eab_create(ca, &com.pass, note ? note : "")) != 0)
			goto fail;
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc || note != NULL)
			return cli_usage(acme_usage);
		return cli_admin_run(home, json_pack("{s:s}", "action",
		    "acme-eab-list"), NULL);
	} else if (strcmp(sub, "revoke") == 0) {
		if (optind + 1 != argc || note != NULL)
			return cli_usage(acme_usage);
		return cli_admin_run(home, json_pack("{s:s, s:s}", "action",
		    "acme-eab-revoke", "kid", argv[optind]), NULL);
	} else
		ex = cli_usage(acme_usage);
	goto out;
fail:
	ex = cli_fail(r);
out:
	ck_ca_close(ca);
	return ex;
}
