/*
 * certkeep backup [make] | verify | list | drill, and certkeep restore.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "backup/backup.h"
#include "backup/drill.h"
#include "backup/keybackup.h"
#include "ca/ca.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "daemon/service.h"
#include "keystore/keystore.h"

static const char backup_usage[] =
    "certkeep backup --home DIR --to DIR [--to DIR]... --recipient CERT...\n"
    "        [--incremental | --incremental-or-full] [--offline]\n"
    "        [--zstd-level N] [--logical] [--quiet]\n"
    "        [--keep-last N] [--daily N] [--weekly N] [--monthly N]\n"
    "        [--operator NAME] [--passphrase-file F | --passphrase-fd N]\n"
    "       certkeep backup verify SET... --recipient-key KEY [--recipient CERT]\n"
    "        [--home DIR | --ca CHAIN.pem] [--single]\n"
    "       certkeep backup list --home DIR [--json]\n"
    "       certkeep backup drill --home DIR [SET... | --set ID]\n"
    "        --recipient-key KEY [--recipient CERT]\n"
    "        [--key-backup FILE --backup-passphrase-file F | --share FILE...]\n"
    "        [--passphrase-file F | --passphrase-fd N]\n"
    "\n"
    "Where options are not given, the [backup] section of certkeep.conf\n"
    "says: to = DIR,DIR  recipients = CERT,CERT  keep_last, daily, weekly,\n"
    "monthly = N  zstd_level = N (-7..-1 fast, 1..19 smaller; default -2).\n"
    "Relative recipient paths are in the home.\n"
    "\n"
    "A backup holds the store, the CA certificates, the configuration and\n"
    "the CRL, never the CA key (see 'certkeep key backup'). It is signed by\n"
    "the CA key and encrypted to each --recipient certificate. Without\n"
    "--offline the service keeps running; with it, certkeepd is stopped for\n"
    "the backup and started again afterwards, also when the backup fails.\n"
    "A full set holds the store's SQLite file as of one moment; --logical\n"
    "writes its rows as JSON lines instead (slower; as incrementals do).\n"
    "verify and drill take a full set and the incrementals after it, in\n"
    "order; drill with no SET uses the newest set in the catalogue.\n"
    "\n"
    "While certkeepd serves the home (and remotely, --server), a backup is\n"
    "made by certkeepd, to [backup] to and recipients (only the home's\n"
    "owner may give --to and --recipient then); verify and drill run here\n"
    "with your keys (--ca CHAIN.pem unless you own the home) and\n"
    "certkeepd records the result.";

static const char restore_usage[] =
    "certkeep restore --home NEWDIR SET... --recipient-key KEY --ca CHAIN.pem\n"
    "        [--recipient CERT] [--upto-seq N | --upto-time T]\n"
    "        [--last-crl CRL] [--user NAME [--key-owner NAME]] [--quiet]\n"
    "\n"
    "Restores a full set and the incrementals after it (in order) into a\n"
    "new or empty CA home. The CA key is not in a data backup: restore it\n"
    "with 'certkeep key restore' afterwards. --last-crl names the last CRL\n"
    "this CA published (DER or PEM, from its CRL URL): CRL numbers then go\n"
    "on after it even if it is newer than the backup. --key-owner (as\n"
    "root, with --user): the home is split between that key owner and the\n"
    "service user (certkeep home split, docs/signer.md).";

enum { O_TO = CLI_OPT__FIRST_LOCAL, O_RECIP, O_INCR, O_OFFLINE, O_ZLEVEL,
	O_QUIET, O_KEEP, O_DAILY, O_WEEKLY, O_MONTHLY, O_OPERATOR, O_RKEY,
	O_CA, O_SINGLE, O_JSON, O_SET, O_KEYBACKUP, O_BPASSFILE, O_SHARE,
	O_UPTOSEQ, O_UPTOTIME, O_USER, O_FULL, O_INCRFULL, O_LASTCRL,
	O_LOGICAL, O_KEYOWNER };

static const struct option backup_longopts[] = {
	CLI_COMMON_LONGOPTS,
	{ "to", required_argument, NULL, O_TO },
	{ "recipient", required_argument, NULL, O_RECIP },
	{ "incremental", no_argument, NULL, O_INCR },
	{ "incremental-or-full", no_argument, NULL, O_INCRFULL },
	{ "logical", no_argument, NULL, O_LOGICAL },
	{ "full", no_argument, NULL, O_FULL },
	{ "offline", no_argument, NULL, O_OFFLINE },
	{ "zstd-level", required_argument, NULL, O_ZLEVEL },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "keep-last", required_argument, NULL, O_KEEP },
	{ "daily", required_argument, NULL, O_DAILY },
	{ "weekly", required_argument, NULL, O_WEEKLY },
	{ "monthly", required_argument, NULL, O_MONTHLY },
	{ "operator", required_argument, NULL, O_OPERATOR },
	{ "recipient-key", required_argument, NULL, O_RKEY },
	{ "ca", required_argument, NULL, O_CA },
	{ "single", no_argument, NULL, O_SINGLE },
	{ "json", no_argument, NULL, O_JSON },
	{ "set", required_argument, NULL, O_SET },
	{ "key-backup", required_argument, NULL, O_KEYBACKUP },
	{ "backup-passphrase-file", required_argument, NULL, O_BPASSFILE },
	{ "share", required_argument, NULL, O_SHARE },
	{ "upto-seq", required_argument, NULL, O_UPTOSEQ },
	{ "upto-time", required_argument, NULL, O_UPTOTIME },
	{ "user", required_argument, NULL, O_USER },
	{ "key-owner", required_argument, NULL, O_KEYOWNER },
	{ "last-crl", required_argument, NULL, O_LASTCRL },
	{ NULL, 0, NULL, 0 }
};

struct bargs {
	struct cli_common com;
	struct ck_backup_opts bo;
	STACK_OF(X509) *recips;
	const char *rkey, *ca, *set, *keybackup, *bpassfile, *user, *last_crl;
	const char *key_owner;
	const char *shares[CK_KEYBACKUP_MAX_SHARES];
	int nshares;
	int offline, quiet, single, json, retention_set;
	char *cfg_dests[CK_BACKUP_MAX_DESTS];
	int64_t upto_seq, upto_time;
};

static int
load_certs(const char *path, STACK_OF(X509) *sk)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x;
	int n = 0;

	if (b == NULL)
		return ck_err_set(CK_E_NOTFOUND, "cannot read %s", path);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			BIO_free(b);
			return ck_err_set(CK_E_NOMEM, "out of memory");
		}
		n++;
	}
	BIO_free(b);
	ERR_clear_error();
	if (n == 0)
		return ck_err_set(CK_E_PARSE, "%s holds no PEM certificate",
		    path);
	return 0;
}

/* The first certificate of FILE only: a PEM that also holds its issuers
 * must not make them recipients too. */
static int
load_recipient(const char *path, STACK_OF(X509) *sk)
{
	STACK_OF(X509) *all = sk_X509_new_null();
	X509 *x;
	int r;

	if (all == NULL)
		return ck_err_set(CK_E_NOMEM, "out of memory");
	if ((r = load_certs(path, all)) == 0) {
		x = sk_X509_shift(all);
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			r = ck_err_set(CK_E_NOMEM, "out of memory");
		}
	}
	sk_X509_pop_free(all, X509_free);
	return r;
}

static int
parse_count(const char *s, const char *what, unsigned *out)
{
	uint64_t v;
	int r;

	if ((r = ck_parse_u64(s, 0, 100000, what, &v)) != 0)
		return r;
	*out = (unsigned)v;
	return 0;
}

/* Returns -1 to go on, else an exit status. */
static int
parse_args(int argc, char **argv, struct bargs *a, const char *usage)
{
	int opt, r = 0;
	uint64_t v;

	while ((opt = cli_getopt(argc, argv, backup_longopts, &a->com)) != -1) {
		if (opt == CLI_OPT_BAD)
			return CLI_EXIT_USAGE;
		switch (opt) {
		case O_TO:
			if (a->bo.ndests == CK_BACKUP_MAX_DESTS)
				return cli_usage(usage);
			a->bo.dests[a->bo.ndests++] = optarg;
			break;
		case O_RECIP:
			r = load_recipient(optarg, a->recips);
			break;
		case O_INCR:
			a->bo.incremental = 1;
			break;
		case O_FULL:
			a->bo.incremental = 0;
			break;
		case O_INCRFULL:
			a->bo.incremental = CK_BACKUP_INCR_IF_POSSIBLE;
			break;
		case O_LOGICAL:
			a->bo.logical = 1;
			break;
		case O_OFFLINE:
			a->offline = 1;
			break;
		case O_ZLEVEL:
			r = ck_parse_zstd_level(optarg, "--zstd-level",
			    &a->bo.zlevel);
			break;
		case O_QUIET:
			a->quiet = 1;
			break;
		case O_KEEP:
			a->retention_set = 1;
			r = parse_count(optarg, "--keep-last",
			    &a->bo.retention.keep_last);
			break;
		case O_DAILY:
			a->retention_set = 1;
			r = parse_count(optarg, "--daily",
			    &a->bo.retention.daily);
			break;
		case O_WEEKLY:
			a->retention_set = 1;
			r = parse_count(optarg, "--weekly",
			    &a->bo.retention.weekly);
			break;
		case O_MONTHLY:
			a->retention_set = 1;
			r = parse_count(optarg, "--monthly",
			    &a->bo.retention.monthly);
			break;
		case O_OPERATOR:
			a->bo.operator_name = optarg;
			break;
		case O_RKEY:
			a->rkey = optarg;
			break;
		case O_CA:
			a->ca = optarg;
			break;
		case O_SINGLE:
			a->single = 1;
			break;
		case O_JSON:
			a->json = 1;
			break;
		case O_SET:
			a->set = optarg;
			break;
		case O_KEYBACKUP:
			a->keybackup = optarg;
			break;
		case O_BPASSFILE:
			a->bpassfile = optarg;
			break;
		case O_SHARE:
			if (a->nshares == CK_KEYBACKUP_MAX_SHARES)
				return cli_usage(usage);
			a->shares[a->nshares++] = optarg;
			break;
		case O_UPTOSEQ:
			if ((r = ck_parse_u64(optarg, 1, INT64_MAX, "--upto-seq",
			    &v)) == 0)
				a->upto_seq = (int64_t)v;
			break;
		case O_UPTOTIME:
			r = ck_time_parse(optarg, &a->upto_time);
			break;
		case O_USER:
			a->user = optarg;
			break;
		case O_KEYOWNER:
			a->key_owner = optarg;
			break;
		case O_LASTCRL:
			a->last_crl = optarg;
			break;
		default:
			return cli_usage(usage);
		}
		if (r != 0)
			return cli_fail(r);
	}
	if (a->com.help)
		return cli_help(usage);
	a->bo.progress = !a->quiet && isatty(2);
	return -1;
}

static int
load_rkey(const char *path, EVP_PKEY **out)
{
	/* Opened by root before it gave root up, if it was. */
	int fd = ck_fs_preopen_dup(path);
	BIO *b = fd >= 0 ? BIO_new_fd(fd, BIO_CLOSE) : BIO_new_file(path, "r");

	*out = NULL;
	if (b == NULL)
		return ck_err_set(CK_E_NOTFOUND, "cannot read the recipient key "
		    "%s", path);
	*out = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (*out == NULL)
		return ck_err_ssl(CK_E_PASSPHRASE, "reading the recipient key");
	return 0;
}

/* The reader: recipient key, and the CA chain the sets must be signed
 * by (from --ca, else from the home if one is named). */
static int
setup_reader(struct bargs *a, struct ck_ca *ca, struct ck_backup_reader *rd,
    STACK_OF(X509) **trusted)
{
	int r;

	memset(rd, 0, sizeof(*rd));
	*trusted = NULL;
	if (a->rkey == NULL)
		return ck_err_set(CK_E_INVAL, "name the private key of a "
		    "recipient of the backup (--recipient-key FILE)");
	if ((r = load_rkey(a->rkey, &rd->rkey)) != 0)
		return r;
	if (sk_X509_num(a->recips) > 0)
		rd->rcert = sk_X509_value(a->recips, 0);
	if (a->ca != NULL) {
		if ((*trusted = sk_X509_new_null()) == NULL)
			return ck_err_set(CK_E_NOMEM, "out of memory");
		if ((r = load_certs(a->ca, *trusted)) != 0)
			return r;
		rd->trusted = *trusted;
		rd->ca_cert = sk_X509_value(*trusted, 0);
	} else if (ca != NULL && ca->cert != NULL) {
		rd->trusted = ca->chain;
		rd->ca_cert = ca->cert;
	}
	rd->progress = a->bo.progress;
	return 0;
}

static void
free_reader(struct ck_backup_reader *rd, STACK_OF(X509) *trusted)
{
	EVP_PKEY_free(rd->rkey);
	sk_X509_pop_free(trusted, X509_free);
}

/* Settings from [backup] where the command line is silent. */
static int
apply_config(struct bargs *a, const char *home, const struct ck_config *cfg)
{
	const struct ck_backup_config *b = &cfg->backup;
	struct ck_strlist l;
	size_t i;
	int r = 0;

	memset(&l, 0, sizeof(l));
	if (a->bo.ndests == 0 && b->to[0] != '\0') {
		if ((r = ck_strlist_split(&l, b->to)) != 0)
			return r;
		for (i = 0; i < l.n && a->bo.ndests < CK_BACKUP_MAX_DESTS;
		    i++) {
			size_t k = a->bo.ndests;
			if ((a->cfg_dests[k] = strdup(l.v[i])) == NULL)
				break;
			a->bo.dests[k] = a->cfg_dests[k];
			a->bo.ndests = k + 1;
		}
		ck_strlist_clear(&l);
	}
	if (sk_X509_num(a->recips) == 0 && b->recipients[0] != '\0') {
		if ((r = ck_strlist_split(&l, b->recipients)) != 0)
			return r;
		for (i = 0; i < l.n && r == 0; i++) {
			char path[4200];
			if (l.v[i][0] == '/')
				r = load_recipient(l.v[i], a->recips);
			else if ((r = ck_path_join(path, sizeof(path), home,
			    l.v[i])) == 0)
				r = load_recipient(path, a->recips);
		}
		ck_strlist_clear(&l);
		if (r != 0)
			return r;
	}
	if (!a->retention_set) {
		a->bo.retention.keep_last = b->keep_last;
		a->bo.retention.daily = b->daily;
		a->bo.retention.weekly = b->weekly;
		a->bo.retention.monthly = b->monthly;
	}
	if (a->bo.zlevel == 0)
		a->bo.zlevel = b->zstd_level ? b->zstd_level :
		    CK_BACKUP_ZSTD_LEVEL;
	return 0;
}

/*
 * A certkeepd run by systemd must be stopped and started by systemd: one
 * started from here would run outside its unit (and its sandbox), and
 * systemd would not know it. Its cgroup tells.
 */
static int
not_systemd(pid_t pid)
{
	char path[64], buf[1024], *unit;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		if ((unit = strrchr(buf, '/')) != NULL && strlen(unit) > 9 &&
		    strcmp(unit + strlen(unit) - 8, ".service") == 0) {
			fclose(f);
			return ck_err_set(CK_E_STATE, "certkeepd runs under "
			    "systemd (%s): stop and start it with systemctl "
			    "around the backup (contrib/certkeep-backup-full."
			    "service does), not with --offline", unit + 1);
		}
	}
	fclose(f);
	return 0;
}

/* Whether the command goes to certkeepd: remotely, or while it serves
 * HOME (the store then has one writer, and an operator who is not the
 * home's owner can act at all). */
static int
routed(const char *home)
{
	return cli_remote_active() || (home != NULL && home[0] != '\0' &&
	    cli_admin_served(home));
}

/* A hot backup made by certkeepd, to [backup] "to", encrypted to
 * [backup] "recipients" (docs/backup.md). */
static int
backup_make_routed(struct bargs *a, const char *home)
{
	const char *kind = a->bo.incremental == CK_BACKUP_INCR_IF_POSSIBLE ?
	    "incremental-or-full" : a->bo.incremental ? "incremental" : "full";
	char abs[PATH_MAX];
	json_t *req, *arr;
	size_t i;
	int k, bad = 0;

	if (a->bo.operator_name != NULL)
		return cli_fail(ck_err_set(CK_E_INVAL, "certkeepd serves this "
		    "CA: the backup is recorded under who asked for it, not "
		    "--operator"));
	if ((req = json_pack("{s:s, s:s, s:s, s:b}", "action", "backup",
	    "op", "make", "kind", kind, "logical", a->bo.logical)) == NULL)
		return cli_fail(ck_err_set(CK_E_NOMEM, "out of memory"));
	/* The home's owner may still say where and to whom; certkeepd
	 * takes them from nobody else (docs/backup.md). */
	if (a->bo.ndests > 0) {
		bad |= (arr = json_array()) == NULL ||
		    json_object_set_new(req, "to", arr) != 0;
		for (i = 0; !bad && i < a->bo.ndests; i++)
			bad |= json_array_append_new(arr, json_string(
			    realpath(a->bo.dests[i], abs) != NULL ? abs :
			    a->bo.dests[i])) != 0;
	}
	if (!bad && sk_X509_num(a->recips) > 0) {
		bad |= (arr = json_array()) == NULL ||
		    json_object_set_new(req, "recipients", arr) != 0;
		for (k = 0; !bad && k < sk_X509_num(a->recips); k++) {
			BIO *b = BIO_new(BIO_s_mem());
			BUF_MEM *bm;
			bad |= b == NULL || !PEM_write_bio_X509(b,
			    sk_X509_value(a->recips, k));
			if (!bad) {
				BIO_get_mem_ptr(b, &bm);
				bad |= json_array_append_new(arr,
				    json_stringn(bm->data, bm->length)) != 0;
			}
			BIO_free(b);
		}
	}
	if (!bad && a->retention_set)
		bad |= json_object_set_new(req, "keep_last", json_integer(
		    a->bo.retention.keep_last)) != 0 ||
		    json_object_set_new(req, "daily", json_integer(
		    a->bo.retention.daily)) != 0 ||
		    json_object_set_new(req, "weekly", json_integer(
		    a->bo.retention.weekly)) != 0 ||
		    json_object_set_new(req, "monthly", json_integer(
		    a->bo.retention.monthly)) != 0;
	if (!bad && a->bo.zlevel != 0)
		bad |= json_object_set_new(req, "zstd_level",
		    json_integer(a->bo.zlevel)) != 0;
	if (bad) {
		json_decref(req);
		return cli_fail(ck_err_set(CK_E_INVAL, "the destinations must "
		    "be UTF-8 text"));
	}
	return cli_admin_run(home, req, NULL);
}

/* Record a check the CLI made (the recipient's key stays here). */
static int
record_routed(const char *home, const char *action, const char *op,
    const char *set, const char *file, int ok, const char *detail)
{
	json_t *reply = NULL, *req;
	int r, ex;

	req = json_pack("{s:s, s:s, s:b, s:s}", "action", action, "op", op,
	    "ok", ok, "detail", detail);
	if (req != NULL && set != NULL && set[0] != '\0' &&
	    json_object_set_new(req, "set", json_string(set)) != 0) {
		json_decref(req);
		req = NULL;
	}
	if (req != NULL && file != NULL &&
	    json_object_set_new(req, "file", json_string(file)) != 0) {
		json_decref(req);
		req = NULL;
	}
	if ((r = cli_admin_call(home, req, 0, &reply)) != 0)
		return cli_fail(r);
	ex = cli_admin_failed(reply);
	json_decref(reply);
	return ex;
}

static int
backup_make(struct bargs *a, const char *home)
{
	struct ck_ca *ca = NULL;
	struct ck_backup_result res;
	struct ck_secret *pw = NULL;
	char exe[4096];
	pid_t pid;
	int r, running = 0, ex = CLI_EXIT_OK;
	size_t i;

	if (routed(home))
		return backup_make_routed(a, home);
	a->bo.recipients = a->recips;
	if ((r = ck_ca_open(home, &ca)) != 0 ||
	    (r = apply_config(a, home, ca->cfg)) != 0) {
		ck_ca_close(ca);
		return cli_fail(r);
	}
	ck_ca_close(ca);
	ca = NULL;
	if ((r = ck_passphrase_read(&a->com.pass, "CA key passphrase: ", 0, 0,
	    &pw)) != 0)
		return cli_fail(r);
	if (a->offline) {
		if ((r = service_running(home, &pid)) < 0)
			goto fail;
		running = r == 1;
		if (running && (r = not_systemd(pid)) != 0)
			goto fail;
		if (running) {
			if (!a->quiet)
				fprintf(stderr, "certkeep: stopping certkeepd "
				    "(pid %ld) for an offline backup\n",
				    (long)pid);
			/* From here on, whatever happens, it is started
			 * again below. */
			if ((r = service_signal(home, SIGTERM)) != 0 ||
			    (r = service_wait_stopped(home, 300)) != 0) {
				ex = cli_fail(r);
				goto restart;
			}
		}
	}
	if ((r = ck_ca_open(home, &ca)) != 0 ||
	    (r = ck_ca_unlock_with(ca, pw)) != 0 ||
	    (r = ck_backup_make(ca, &a->bo, &res)) != 0) {
		ex = cli_fail(r);
	} else {
		printf("%s backup %s: sequence %lld..%lld, %llu bytes, "
		    "SHA-256 %s\n", res.kind, res.id, (long long)res.seq_from,
		    (long long)res.seq_to, (unsigned long long)res.size,
		    res.archive_sha256);
		for (i = 0; i < res.npaths; i++)
			printf("  %s (read back: ok)\n", res.paths[i]);
		if (res.deleted)
			printf("retention: %u older set%s deleted\n",
			    res.deleted, res.deleted == 1 ? "" : "s");
		if (res.warning[0] != '\0')
			fprintf(stderr, "certkeep: warning: the backup is good, "
			    "but %s\n", res.warning);
		if (res.npaths == 1 && !a->quiet)
			fprintf(stderr, "certkeep: warning: this restore point "
			    "has a single copy: name a second --to on other "
			    "media\n");
	}
	ck_ca_close(ca);
	ca = NULL;
restart:
	if (running && service_running(home, &pid) != 1) {
		/* Always brought back, whatever became of the backup. */
		cli_certkeepd_path(exe, sizeof(exe));
		if ((r = service_spawn(exe, home, pw, a->quiet)) != 0) {
			fprintf(stderr, "certkeep: error: %s: start it with "
			    "'certkeep service start'\n", ck_err_msg());
			ex = CLI_EXIT_FAIL;
		} else if (!a->quiet)
			fprintf(stderr, "certkeep: certkeepd started again\n");
	}
	ck_secret_free(pw);
	return ex;
fail:
	ck_secret_free(pw);
	return cli_fail(r);
}

static int
backup_verify(struct bargs *a, int argc, char **argv)
{
	struct ck_backup_reader rd;
	STACK_OF(X509) *trusted = NULL;
	struct ck_manifest *m = NULL;
	struct ck_ca *ca = NULL, *rdca = NULL;
	const char *home = a->com.home;
	int r, i, n = argc - optind, ex = CLI_EXIT_OK, via = 0;

	if (n <= 0)
		return cli_usage(backup_usage);
	/* Through certkeepd: the sets are checked here, with the key here,
	 * against the chain the operator names; certkeepd records it. */
	if (cli_remote_active() && home == NULL)
		home = "";
	if (home != NULL && routed(home))
		via = 1;
	if (via && a->ca == NULL) {
		/* The home's owner reads the chain from the home (and only
		 * reads: certkeepd records). */
		if (home[0] == '\0' || ck_ca_open(home, &rdca) != 0) {
			ck_err_clear();
			return cli_fail(ck_err_set(CK_E_INVAL, "certkeepd serves "
			    "this CA: name the CA certificate and chain the "
			    "sets must be signed by (--ca CHAIN.pem)"));
		}
	}
	if (!via && home != NULL && a->ca == NULL &&
	    (r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if ((r = setup_reader(a, ca != NULL ? ca : rdca, &rd, &trusted)) != 0)
		goto fail;
	if ((m = calloc((size_t)n, sizeof(*m))) == NULL) {
		r = ck_err_set(CK_E_NOMEM, "out of memory");
		goto fail;
	}
	if (rd.trusted == NULL)
		fprintf(stderr, "certkeep: warning: no --ca or --home: the "
		    "manifest signatures are checked but not who made them\n");
	r = ck_backup_verify(&rd, (const char *const *)argv + optind,
	    (size_t)n, !a->single, m);
	if (r != 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", ck_err_msg());
		/* Audited; the catalogue keeps the state of the sets
		 * themselves, and a fault in how they were named (a gap,
		 * an order) is not a fault of any one set. */
		if (ca != NULL)
			(void)ck_ca_audit(ca, "backup-verify", argv[optind],
			    AUDIT_FAILED, msg);
		else if (via)
			(void)record_routed(home, "backup", "verify", NULL,
			    argv[optind], 0, msg);
		ck_err_set(r, "%s", msg);
		goto fail;
	}
	for (i = 0; i < n; i++) {
		char ts[32];
		ck_time_format(m[i].created, ts, sizeof(ts));
		printf("ok  %s  %-11s %s  sequence %lld..%lld  %zu parts  CA %s\n",
		    argv[optind + i], m[i].kind, ts, (long long)m[i].seq_from,
		    (long long)m[i].seq_to, m[i].nparts, m[i].ca_subject);
		if (ca != NULL && (r = ck_backup_record_check(ca, "verify",
		    &m[i], argv[optind + i], 1, "every signature, digest and "
		    "link checked")) != 0)
			goto fail;
		if (via && record_routed(home, "backup", "verify", m[i].id,
		    argv[optind + i], 1, "every signature, digest and link "
		    "checked") != CLI_EXIT_OK)
			ex = CLI_EXIT_FAIL;
	}
	goto out;
fail:
	ex = cli_fail(r);
out:
	free(m);
	free_reader(&rd, trusted);
	ck_ca_close(ca);
	ck_ca_close(rdca);
	return ex;
}

/* The CA key for a drill: a key backup, shares, or the live home's key. */
static int
drill_key(struct bargs *a, struct ck_ca *ca, EVP_PKEY **key)
{
	struct ck_secret *pw = NULL;
	struct ck_pass_src src;
	char path[4200];
	int r;

	*key = NULL;
	if (a->nshares > 0)
		return ck_keybackup_join(a->shares, a->nshares, key);
	if (a->keybackup != NULL) {
		memset(&src, 0, sizeof(src));
		src.kind = a->bpassfile ? CK_PASS_FILE : CK_PASS_TTY;
		src.file = a->bpassfile;
		if ((r = ck_passphrase_read(&src, "Key backup passphrase: ", 0,
		    0, &pw)) != 0)
			return r;
		r = ck_keybackup_read_pass(a->keybackup, pw, key);
		ck_secret_free(pw);
		return r;
	}
	if ((r = ck_ca_path(ca, ca->cfg->key_file, path, sizeof(path))) != 0 ||
	    (r = ck_passphrase_read(&a->com.pass, "CA key passphrase: ", 0, 0,
		&pw)) != 0)
		return r;
	r = keystore_load(path, pw, key);
	ck_secret_free(pw);
	return r;
}

/* The newest set's chain (or set ID's), as certkeepd's catalogue has it. */
static int
drill_files_routed(const char *home, const char *set, char ***files,
    size_t *nfiles)
{
	json_t *reply = NULL, *req;
	const char *out, *p, *nl;
	size_t n = 0, cap = 0;
	char **v = NULL;
	int r;

	*files = NULL;
	*nfiles = 0;
	req = json_pack("{s:s, s:s}", "action", "drill", "op", "files");
	if (req != NULL && set != NULL &&
	    json_object_set_new(req, "set", json_string(set)) != 0) {
		json_decref(req);
		req = NULL;
	}
	if ((r = cli_admin_call(home, req, 0, &reply)) != 0)
		return r;
	if (cli_admin_failed(reply) != 0) {
		json_decref(reply);
		return ck_err_set(CK_E_STATE, "certkeepd named no set to drill");
	}
	out = json_string_value(json_object_get(reply, "out"));
	for (p = out != NULL ? out : ""; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p) - 1;
		if (n == cap) {
			void *q = realloc(v, (cap = cap ? 2 * cap : 8) *
			    sizeof(*v));
			if (q == NULL)
				break;
			v = q;
		}
		if ((v[n] = strndup(p, (size_t)(nl - p + (*nl != '\n')))) ==
		    NULL)
			break;
		n++;
	}
	json_decref(reply);
	*files = v;
	*nfiles = n;
	if (n == 0)
		return ck_err_set(CK_E_NOTFOUND, "the catalogue names no set "
		    "to drill");
	return 0;
}

static int
backup_drill(struct bargs *a, const char *home, int argc, char **argv)
{
	struct ck_backup_reader rd;
	struct ck_drill_opts dopt;
	struct ck_manifest last;
	STACK_OF(X509) *trusted = NULL;
	struct ck_ca *ca = NULL;
	char **files = NULL, report[1024], exe[4096];
	size_t nfiles = 0, i;
	int r, ex = CLI_EXIT_OK, owned = 0, via = routed(home);

	memset(&dopt, 0, sizeof(dopt));
	memset(&rd, 0, sizeof(rd));
	memset(&last, 0, sizeof(last));
	/* Through certkeepd, the drill runs here (the recipient's key and
	 * the CA key stay here) and certkeepd records it. The live home is
	 * read only by its owner, for the key; never written. */
	if (via && (home[0] == '\0' || ck_ca_open(home, &ca) != 0)) {
		ck_err_clear();
		ca = NULL;
		if (a->ca == NULL)
			return cli_fail(ck_err_set(CK_E_INVAL, "certkeepd serves "
			    "this CA: name the CA certificate and chain the "
			    "sets must be signed by (--ca CHAIN.pem)"));
		if (a->nshares == 0 && a->keybackup == NULL)
			return cli_fail(ck_err_set(CK_E_INVAL, "the drill needs "
			    "the CA key: give --key-backup FILE or --share "
			    "FILE... (the live key file is the home owner's)"));
	} else if (!via && (r = ck_ca_open(home, &ca)) != 0)
		return cli_fail(r);
	if (optind < argc) {
		files = argv + optind;
		nfiles = (size_t)(argc - optind);
	} else {
		if ((r = via ? drill_files_routed(home, a->set, &files,
		    &nfiles) : ck_backup_chain_files(ca, a->set, &files,
		    &nfiles)) != 0) {
			owned = 1;
			goto fail;
		}
		owned = 1;
	}
	if ((r = setup_reader(a, ca, &rd, &trusted)) != 0 ||
	    (r = drill_key(a, ca, &dopt.key)) != 0)
		goto fail;
	cli_certkeepd_path(exe, sizeof(exe));
	dopt.certkeepd = exe;
	dopt.service_user = ca != NULL && ca->cfg->server.user[0] ?
	    ca->cfg->server.user : "certkeep";
	dopt.progress = a->bo.progress;
	r = ck_backup_drill(&rd, (const char *const *)files, nfiles, &dopt,
	    &last, report, sizeof(report));
	if (via) {
		int ex2 = record_routed(home, "drill", "record",
		    last.id[0] != '\0' ? last.id : NULL,
		    last.id[0] != '\0' ? NULL : files[0], r == 0,
		    r == 0 ? report + 4 : report);
		if (r == 0 && ex2 != CLI_EXIT_OK) {
			ex = ex2;
			goto out;
		}
	} else if (last.id[0] != '\0' || r == 0) {
		int r2 = ck_backup_record_check(ca, "drill", &last, NULL,
		    r == 0, r == 0 ? report + 4 : report);
		if (r == 0)
			r = r2;
	} else
		/* It failed before a manifest could be read: audited by the
		 * first set's name. */
		(void)ck_ca_audit(ca, "backup-drill", files[0], AUDIT_FAILED,
		    report);
	if (r != 0) {
		ck_err_set(r, "restore drill failed: %s", report);
		goto fail;
	}
	printf("restore drill passed: %s\n", report + 4);
	goto out;
fail:
	ex = cli_fail(r);
out:
	EVP_PKEY_free(dopt.key);
	free_reader(&rd, trusted);
	if (owned) {
		for (i = 0; i < nfiles; i++)
			free(files[i]);
		free(files);
	}
	ck_ca_close(ca);
	return ex;
}

int
cmd_backup(int argc, char **argv)
{
	struct bargs a;
	struct ck_ca *ca = NULL;
	const char *home, *sub = "make";
	int r, ex;

	memset(&a, 0, sizeof(a));
	if (argc > 1 && argv[1][0] != '-') {
		if ((sub = cli_subcommand(&argc, &argv)) == NULL)
			return cli_usage(backup_usage);
	}
	if ((a.recips = sk_X509_new_null()) == NULL)
		return cli_fail(ck_err_set(CK_E_NOMEM, "out of memory"));
	cli_common_init(&a.com);
	optind = 1;
	if ((ex = parse_args(argc, argv, &a, backup_usage)) >= 0)
		goto out;
	if (strcmp(sub, "verify") == 0) {
		ex = backup_verify(&a, argc, argv);
		goto out;
	}
	if ((home = cli_home(&a.com)) == NULL) {
		ex = CLI_EXIT_USAGE;
		goto out;
	}
	if (strcmp(sub, "make") == 0) {
		if (optind != argc) {
			ex = cli_usage(backup_usage);
			goto out;
		}
		ex = backup_make(&a, home);
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc) {
			ex = cli_usage(backup_usage);
			goto out;
		}
		if (routed(home))
			ex = cli_admin_run(home, json_pack("{s:s, s:s, s:b}",
			    "action", "backup", "op", "list", "json", a.json),
			    NULL);
		else if ((r = ck_ca_open(home, &ca)) != 0 ||
		    (r = ck_backup_catalogue_print(ca, a.json)) != 0)
			ex = cli_fail(r);
		else
			ex = CLI_EXIT_OK;
	} else if (strcmp(sub, "drill") == 0)
		ex = backup_drill(&a, home, argc, argv);
	else
		ex = cli_usage(backup_usage);
out:
	ck_ca_close(ca);
	sk_X509_pop_free(a.recips, X509_free);
	for (size_t i = 0; i < CK_BACKUP_MAX_DESTS; i++)
		free(a.cfg_dests[i]);
	return ex;
}

/* The number of the last CRL the CA published, checked to be the CA's:
 * the restored CA's CRL numbers go on after it. */
static int
crl_number_of(const char *crlpath, STACK_OF(X509) *trusted, uint64_t *n)
{
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num = NULL;
	BIO *b;
	int crit;

	if ((b = BIO_new_file(crlpath, "r")) == NULL)
		return ck_err_set(CK_E_NOTFOUND, "cannot read %s", crlpath);
	crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	if (crl == NULL) {
		(void)BIO_reset(b);
		crl = d2i_X509_CRL_bio(b, NULL);
	}
	BIO_free(b);
	ERR_clear_error();
	if (crl == NULL)
		return ck_err_set(CK_E_PARSE, "%s is not a CRL", crlpath);
	if (X509_CRL_verify(crl, X509_get0_pubkey(sk_X509_value(trusted, 0)))
	    != 1) {
		X509_CRL_free(crl);
		ERR_clear_error();
		return ck_err_set(CK_E_BADSIG, "%s is not signed by the CA",
		    crlpath);
	}
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	X509_CRL_free(crl);
	if (num == NULL || ASN1_INTEGER_get_uint64(n, num) != 1) {
		ASN1_INTEGER_free(num);
		return ck_err_set(CK_E_PARSE, "%s has no CRL number", crlpath);
	}
	ASN1_INTEGER_free(num);
	return 0;
}

int
cmd_restore(int argc, char **argv)
{
	struct bargs a;
	struct ck_backup_reader rd;
	struct ck_restore_opts ro;
	struct ck_manifest last;
	STACK_OF(X509) *trusted = NULL;
	int r, ex;

	memset(&a, 0, sizeof(a));
	memset(&rd, 0, sizeof(rd));
	if ((a.recips = sk_X509_new_null()) == NULL)
		return cli_fail(ck_err_set(CK_E_NOMEM, "out of memory"));
	cli_common_init(&a.com);
	optind = 1;
	if ((ex = parse_args(argc, argv, &a, restore_usage)) >= 0)
		goto out;
	if (a.com.home == NULL || optind >= argc) {
		ex = cli_usage(restore_usage);
		goto out;
	}
	if (a.ca == NULL) {
		/* Without it, anyone who has a recipient's certificate could
		 * make sets that restore. */
		r = ck_err_set(CK_E_INVAL, "name the CA certificate and chain "
		    "the sets must be signed by (--ca CHAIN.pem, from your "
		    "records, not from the backup)");
		goto fail;
	}
	if ((r = setup_reader(&a, NULL, &rd, &trusted)) != 0)
		goto fail;
	memset(&ro, 0, sizeof(ro));
	ro.home = a.com.home;
	ro.upto_seq = a.upto_seq;
	ro.upto_time = a.upto_time;
	ro.user = a.user;
	ro.key_owner = a.key_owner;
	if (a.key_owner != NULL && (a.user == NULL || geteuid() != 0)) {
		r = ck_err_set(CK_E_INVAL, "--key-owner needs root and --user");
		goto fail;
	}
	if (a.last_crl != NULL &&
	    (r = crl_number_of(a.last_crl, trusted, &ro.crl_floor)) != 0)
		goto fail;
	if ((r = ck_backup_restore(&rd, (const char *const *)argv + optind,
	    (size_t)(argc - optind), &ro, &last)) != 0)
		goto fail;
	printf("restored %s into %s: set %s, sequence %lld, %llu "
	    "certificates (%llu revoked), CRL number %llu\n", last.ca_subject,
	    ro.home, last.id, (long long)last.seq_to,
	    (unsigned long long)last.counts.certs,
	    (unsigned long long)last.counts.revoked,
	    (unsigned long long)last.counts.crl_number);
	printf("next: restore the CA key ('certkeep key restore --home %s "
	    "...'), then 'certkeep service start'\n", ro.home);
	ex = CLI_EXIT_OK;
	goto out;
fail:
	ex = cli_fail(r);
out:
	free_reader(&rd, trusted);
	sk_X509_pop_free(a.recips, X509_free);
	return ex;
}
