/*
 * certkeepd - the certificate server.
 *
 *   certkeepd --home DIR [--passphrase-file F | --passphrase-fd N |
 *             --unlock-shares-prompt] [--foreground] [--signer-inprocess]
 *
 * Start-up order (acquire, then drop, then serve): read the passphrase
 * (perhaps from a file only root can read); if started as root, become the
 * user who owns the CA home (or [server] user) and forbid new privileges;
 * take the home's lock (one server per CA); fork the signer process
 * (src/signer/signer_proc.h: the only process that will hold the key);
 * unlock the key there, sending it the passphrase (the ACME EAB key,
 * private/acme-eab.key, if the home has one, is unlocked here); issue our own
 * TLS certificate; start serving (and the admin socket,
 * src/daemon/adminsock.h); then detach, write the pid file and
 * report readiness to the parent. A key protected by M-of-N shares
 * (src/keystore/unlock.h) has no passphrase to read: after dropping
 * privileges and taking the lock, certkeepd reads M shares at the
 * terminal (--unlock-shares-prompt) or, detached, reports "locked" to the
 * parent and waits for them on the admin socket, serving nothing else
 * (src/daemon/unlockd.h); the secret they rebuild is then the passphrase
 * and start-up goes on as above. SIGTERM and SIGINT finish in-flight
 * requests and exit; SIGHUP reloads tokens, configuration and the CRL.
 * If the signer process dies, certkeepd stops serving and exits 3
 * (CERTKEEPD_EXIT_SIGNER_DIED), which the systemd unit does not restart
 * on. --signer-inprocess keeps the key in this process (benchmarks only:
 * a command-line flag, not a setting of the configuration the service
 * user can write).
 *
 * A home split between a key owner and the service user (docs/signer.md,
 * src/ca/home_split.h), started as root: the passphrase is read as root,
 * then certkeepd detaches (the signer dies with its parent, which must
 * be the process that stays), forks the signer while still root (it
 * becomes the key owner and trusts only the key owner's files), becomes
 * the service user and takes the lock; the rest as above.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "ca/ca.h"
#include "ca/eab_seal.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/passphrase.h"
#include "common/privs.h"
#include "common/secmem.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "daemon/adminsock.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "daemon/unlockd.h"
#include "keystore/unlock.h"
#include "signer/signer_proc.h"

static const char usage_text[] =
    "usage: certkeepd --home DIR [--passphrase-file FILE | --passphrase-fd N |"
    "\n                 --unlock-shares-prompt] [--foreground]"
    " [--signer-inprocess]\n                 [--key-owner USER]\n";

/* The signer process died: a restart must be an operator's decision
 * (the service may have edited what a new signer would read). */
#define CERTKEEPD_EXIT_SIGNER_DIED 3

/* The signer process died: stop serving (the main thread's sigwait
 * takes it from here) and exit non-zero. */
static volatile sig_atomic_t signer_died;

static void
signer_death(void *arg, const char *why)
{
	(void)arg;
	signer_died = 1;
	ck_error("%s: certkeepd stops serving (fail closed)", why);
	(void)kill(getpid(), SIGTERM);
}

/* Read just [server] user from the configuration (before opening the
 * store, which must not create files as root). */
static void
configured_user(const char *home, char *out, size_t outsz)
{
	struct ck_config *cfg = NULL;
	unsigned char *text = NULL;
	size_t len;
	char path[4096];

	out[0] = '\0';
	if (ck_path_join(path, sizeof(path), home, CK_CONFIG_FILE) != 0 ||
	    ck_fs_read(path, CK_CONFIG_MAX, &text, &len) != 0)
		return;
	if (ck_config_parse((const char *)text, len, &cfg) == 0)
		snprintf(out, outsz, "%s", cfg->server.user);
	ck_config_free(cfg);
	free(text);
}

/*
 * Started as root: is the home split between a key owner and the
 * service user ([server] user)? Then the configuration that named the
 * service user must be the key owner's (ck_fs_open_trusted), and the
 * ACME EAB key in private/, which the service unlocks, is opened now,
 * as root, and read through that descriptor later.
 */
static int
split_prepare(const char *home, const char *user, struct ck_home_users *hu)
{
	char path[4096];
	int fd, r;

	if ((r = ck_privs_home_users(home, user, hu)) != 0 || !hu->split)
		return r;
	if ((r = ck_fs_check_ancestors(home, hu->key_uid)) != 0)
		return r;
	if ((r = ck_fs_open_trusted(home, CK_CONFIG_FILE, hu->key_uid, 0,
	    &fd)) != 0)
		return r;
	close(fd);
	if ((r = ck_path_join(path, sizeof(path), home,
	    EAB_SEAL_KEY_FILE)) != 0)
		return r;
	r = ck_fs_open_trusted(home, EAB_SEAL_KEY_FILE, hu->key_uid, 1, &fd);
	if (r == CK_E_NOTFOUND) {
		ck_err_clear();
		return 0;
	}
	if (r != 0)
		return r;
	return ck_fs_preopen_add(path, fd);
}

/*
 * --key-owner USER: the home must be split with USER as its key owner.
 * Whether a home is split is read from the home, which the service user
 * might have swapped for one of its own; the unit says whose it must be.
 */
static int
key_owner_check(const char *home, const char *key_owner,
    const struct ck_home_users *hu)
{
	unsigned uid, gid;
	int r;

	if (geteuid() != 0)
		return ck_err_set(CK_E_INVAL, "--key-owner: certkeepd must be "
		    "started as root to run its signer as the key owner");
	if ((r = ck_privs_lookup(key_owner, &uid, &gid)) != 0)
		return r;
	if (!hu->split || hu->key_uid != (uid_t)uid)
		return ck_err_set(CK_E_PERM, "refusing to start: %s is not a "
		    "CA home split with the key owner %s (it is uid %u's, "
		    "%s); split it with 'certkeep home split --home %s --user "
		    "SERVICE-USER --key-owner %s'", home, key_owner,
		    (unsigned)hu->key_uid, hu->split ? "split" : "not split",
		    home, key_owner);
	return 0;
}

/* Who gave which custodian's share while we were locked (and who was
 * refused), now that the audit log is open. */
static int
audit_unlock_shares(struct ck_ca *ca, struct unlock_collector *uc)
{
	const struct unlock_event *ev;
	char obj[96], detail[512], at[32];
	size_t i, n = unlock_collector_events(uc, &ev);
	int r;

	for (i = 0; i < n; i++) {
		ck_time_format(ev[i].at, at, sizeof(at));
		if (ev[i].custodian[0] != '\0')
			snprintf(obj, sizeof(obj), "share %u (%s)",
			    ev[i].index, ev[i].custodian);
		else
			snprintf(obj, sizeof(obj), "a share");
		snprintf(detail, sizeof(detail), "from %s at %s%s%.300s",
		    ev[i].from, at, ev[i].ok ? "" : ": ", ev[i].why);
		if ((r = ck_ca_audit(ca, "unlock-share", obj, ev[i].ok ?
		    AUDIT_OK : AUDIT_REFUSED, detail)) != 0)
			return r;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "home", required_argument, NULL, 'H' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "passphrase-fd", required_argument, NULL, 'F' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "unlock-shares-prompt", no_argument, NULL, 'U' },
		{ "signer-inprocess", no_argument, NULL, 'I' },
		{ "key-owner", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ck_pass_src pass = { CK_PASS_TTY, NULL, -1 };
	struct ck_secret *pw = NULL;
	struct ck_ca *ca = NULL;
	struct server sv;
	struct adminsock *adm = NULL;
	struct unlock_collector *uc = NULL;
	struct signer_proc *sp = NULL;
	struct ck_home_users hu;
	sigset_t sigs;
	const char *home = getenv("CERTKEEP_HOME"), *key_owner = NULL;
	char user[64], pidpath[4200], urlpath[4200], urls[512];
	int opt, r, sig, foreground = 0, lockfd = -1, ready[2] = { -1, -1 };
	int switched = 0, unlock_prompt = 0, admfd = -1, inprocess = 0;
	uint64_t fd;
	pid_t child;

	ck_process_harden();
	memset(&sv, 0, sizeof(sv));
	memset(&hu, 0, sizeof(hu));
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			home = optarg;
			break;
		case 'P':
			pass.kind = CK_PASS_FILE;
			pass.file = optarg;
			break;
		case 'F':
			if (ck_parse_u64(optarg, 0, 1024, "--passphrase-fd",
			    &fd) != 0) {
				fprintf(stderr, "certkeepd: %s\n", ck_err_msg());
				return 2;
			}
			pass.kind = CK_PASS_FD;
			pass.fd = (int)fd;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'U':
			unlock_prompt = 1;
			break;
		case 'I':
			inprocess = 1;
			break;
		case 'K':
			key_owner = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind != argc || home == NULL || home[0] == '\0') {
		fputs(usage_text, stderr);
		return 2;
	}
	/* Signals are taken by sigwait() in the main thread only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	configured_user(home, user, sizeof(user));
	(void)audit_os_user();	/* who started us, before we switch */
	if ((r = unlock_collector_for_home(home, &uc)) != 0)
		goto fail;
	if (uc != NULL && pass.kind != CK_PASS_TTY && unlock_prompt)
		r = ck_err_set(CK_E_INVAL, "--unlock-shares-prompt or a "
		    "passphrase, not both");
	else if (uc == NULL && unlock_prompt)
		r = ck_err_set(CK_E_INVAL, "the CA key of %s is not protected "
		    "by key shares: --unlock-shares-prompt does not apply",
		    home);
	else if (uc == NULL || pass.kind != CK_PASS_TTY) {
		/* A protected key's passphrase given whole (the hex of its
		 * secret, as 'certkeep backup --offline' rebuilt it from
		 * --unlock-share files to start us again): no waiting. */
		unlock_collector_free(uc);
		uc = NULL;
		r = ck_passphrase_read(&pass, "CA key passphrase: ", 0, 0, &pw);
	}
	/* The descriptor the passphrase came through is not kept open. */
	if (pass.kind == CK_PASS_FD && pass.fd > 2)
		(void)close(pass.fd);
	if (r != 0)
		goto fail;
	if (geteuid() == 0 && (r = split_prepare(home, user, &hu)) != 0)
		goto fail;
	if (key_owner != NULL && (r = key_owner_check(home, key_owner,
	    &hu)) != 0)
		goto fail;
	if (hu.split && uc != NULL && !unlock_prompt) {
		/* The admin socket's collector runs as the service user: it
		 * would rebuild and hold the passphrase. */
		r = ck_err_set(CK_E_INVAL, "the CA key of %s is protected by "
		    "key shares and the home has a key owner: give the shares "
		    "at the terminal (certkeepd --unlock-shares-prompt, started "
		    "as root); they are not taken through the admin socket, "
		    "whose collector runs as the service user", home);
		goto fail;
	}
	if (!hu.split) {
		if ((r = ck_privs_drop(user, home, 0, &switched)) != 0)
			goto fail;
		(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if ((r = service_lock(home, &lockfd)) != 0)
			goto fail;
		if (switched)
			ck_warn("the signer process runs as the service user "
			    "%s, who can read the key file and edit the "
			    "configuration: give the home a key owner "
			    "(certkeep home split; docs/signer.md)", user[0] ?
			    user : "(the home's owner)");
	}
	/* A split home: the shares at the terminal while still root (no
	 * lock yet: it is taken after the signer starts). */
	if (uc != NULL && unlock_prompt &&
	    (r = unlockd_prompt(STDIN_FILENO, stderr, uc, &pw)) != 0)
		goto fail;
	/* Detach before a split home's signer is forked: the signer dies
	 * with its parent (PR_SET_PDEATHSIG), which must be the process
	 * that serves, not the one that exits here. */
	if (!foreground) {
		/* Detach, but report start-up errors to whoever started us.
		 * Before the store is opened: SQLite's POSIX locks are not
		 * inherited by a child, so a connection opened before fork()
		 * would run unlocked once the parent exits. */
		if (pipe(ready) != 0) {
			r = ck_err_set(CK_E_IO, "pipe: %s", strerror(errno));
			goto fail;
		}
		if ((child = fork()) < 0) {
			r = ck_err_set(CK_E_IO, "fork: %s", strerror(errno));
			goto fail;
		}
		if (child > 0) {
			char msg[1024];
			ssize_t n;
			int status;
			close(ready[1]);
			n = read(ready[0], msg, sizeof(msg) - 1);
			if (n > 0 && msg[0] == '+') {
				msg[n] = '\0';
				fputs(msg + 1, stdout);
				fflush(stdout);
				_exit(0);
			}
			if (n > 0) {
				msg[n] = '\0';
				fprintf(stderr, "certkeepd: error: %s\n",
				    msg + 1);
				fflush(stderr);
			} else
				fprintf(stderr, "certkeepd: error: the server "
				    "died while starting\n");
			(void)waitpid(child, &status, 0);
			_exit(1);
		}
		close(ready[0]);
		(void)setsid();
	}
	/* The signer process, before anything is unlocked (and before any
	 * thread: only this one survives the fork; before the locked
	 * wait, so that it inherits no admin socket). */
	signer_proc_keep_stderr(foreground);
	if (hu.split) {
		/* Forked as root: the signer becomes the key owner and reads
		 * the key owner's files; then we become the service user. */
		if (inprocess) {
			r = ck_err_set(CK_E_INVAL, "--signer-inprocess on a "
			    "home with a key owner: the service user cannot "
			    "read the key");
			goto fail;
		}
		if ((r = signer_proc_start_as(home, hu.key_user, &sp)) != 0)
			goto fail;
		/* Still root: the passphrase goes to the signer and opens the
		 * ACME EAB key now, and is wiped before we become the service
		 * user, who never holds it. */
		if ((r = signer_proc_unlock(sp, pw)) != 0)
			goto fail;
		r = eab_key_load(home, pw, &sv.eab_key);
		if (r == CK_E_NOTFOUND)
			ck_err_clear();
		else if (r == CK_E_PASSPHRASE) {
			char msg[1024];
			snprintf(msg, sizeof(msg), "%s", ck_err_msg());
			r = ck_err_set(r, "%s; the ACME EAB key must be under "
			    "the CA key's passphrase", msg);
			goto fail;
		} else if (r != 0)
			goto fail;
		ck_secret_free(pw);
		pw = NULL;
		ck_fs_preopen_clear();
		if ((r = ck_privs_drop(hu.svc_user, home, 0, &switched)) != 0)
			goto fail;
		(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if ((r = service_lock(home, &lockfd)) != 0)
			goto fail;
	} else if (!inprocess && (r = signer_proc_start(home, &sp)) != 0)
		goto fail;
	if (uc != NULL && pw == NULL && !hu.split) {
		/* Locked: say so to whoever started us, then wait. */
		char msg[600];
		int n = snprintf(msg, sizeof(msg), "+certkeepd %ld locked on "
		    "%s: waiting for %u key shares (certkeep unlock --home %s "
		    "--share FILE)\n", (long)getpid(), home,
		    unlock_collector_need(uc), home);
		if ((r = ck_path_join(pidpath, sizeof(pidpath), home,
		    SERVICE_PID_FILE)) != 0 ||
		    (r = service_pid_write(pidpath)) != 0)
			goto fail;
		if (ready[1] >= 0) {
			(void)!write(ready[1], msg, (size_t)n);
			close(ready[1]);
			ready[1] = -1;
			if ((r = open("/dev/null", O_RDWR)) >= 0) {
				dup2(r, 0);
				dup2(r, 1);
				dup2(r, 2);
				if (r > 2)
					close(r);
			}
		} else {
			fputs(msg + 1, stdout);
			fflush(stdout);
		}
		r = unlockd_wait(home, uc, &sigs, &admfd, &pw);
		if (r == CK_E_STATE) {
			/* Stopped while locked: nothing was opened. */
			ck_info("%s", ck_err_msg());
			unlink(pidpath);
			signer_proc_free(sp);
			unlock_collector_free(uc);
			close(lockfd);
			return 0;
		}
		if (r != 0)
			goto fail;
	}
	if ((r = ck_ca_open(home, &ca)) != 0)
		goto fail;
	if (ca->cert == NULL) {
		r = ck_err_set(CK_E_STATE, "this CA has no certificate yet: "
		    "install it with 'certkeep ca install'");
		goto fail;
	}
	/* Listen for the signer's death before unlocking: a death in
	 * between would otherwise go unseen. */
	if (sp != NULL) {
		signer_proc_set_timeout(sp, ca->cfg->signer.timeout_s);
		signer_proc_on_death(sp, signer_death, NULL);
	}
	/* A split home's signer is unlocked already (pw NULL). */
	r = sp != NULL ? ck_ca_unlock_proc(ca, sp, pw) :
	    ck_ca_unlock_with(ca, pw);
	/* The ACME EAB key is under the same passphrase; it is kept, the
	 * passphrase is not. */
	if (r == 0)
		r = server_eab_unlock(&sv, ca, pw);
	ck_secret_free(pw);
	pw = NULL;
	ck_fs_preopen_clear();	/* a split home's EAB key file: read */
	if (r != 0)
		goto fail;
	if ((r = ck_ca_audit(ca, "service-start", home, AUDIT_OK, NULL)) != 0 ||
	    (uc != NULL && (r = audit_unlock_shares(ca, uc)) != 0) ||
	    (r = server_start(&sv, ca)) != 0)
		goto fail;
	/* Admin commands of the CLI, judged by role (src/authz/). */
	r = adminsock_start_fd(&sv, home, admfd, &adm);
	admfd = -1;	/* taken */
	if (r != 0) {
		server_stop(&sv);
		goto fail;
	}
	/* Where we serve (ports may have been chosen by the kernel). */
	snprintf(urls, sizeof(urls), "api https://%s%s%s:%u\n"
	    "http http://%s%s%s:%u\n",
	    strchr(ca->cfg->server.api.addr, ':') ? "[" : "",
	    ca->cfg->server.api.addr,
	    strchr(ca->cfg->server.api.addr, ':') ? "]" : "",
	    (unsigned)sv.api_port,
	    strchr(ca->cfg->server.http.addr, ':') ? "[" : "",
	    ca->cfg->server.http.addr,
	    strchr(ca->cfg->server.http.addr, ':') ? "]" : "",
	    (unsigned)sv.pub_port);
	if ((r = ck_path_join(urlpath, sizeof(urlpath), home,
	    SERVICE_URLS_FILE)) != 0 ||
	    (r = ck_fs_write_atomic(urlpath, urls, strlen(urls), 0644)) != 0 ||
	    (r = ck_path_join(pidpath, sizeof(pidpath), home,
	    SERVICE_PID_FILE)) != 0 ||
	    (r = service_pid_write(pidpath)) != 0) {
		adminsock_stop(adm);
		server_stop(&sv);
		goto fail;
	}
	{
		char msg[512];
		int n = snprintf(msg, sizeof(msg), "+certkeepd %ld serving CA "
		    "%s\n%s", (long)getpid(), home, urls);
		if (ready[1] >= 0) {
			(void)!write(ready[1], msg, (size_t)n);
			close(ready[1]);
			ready[1] = -1;
			r = open("/dev/null", O_RDWR);
			if (r >= 0) {
				dup2(r, 0);
				dup2(r, 1);
				dup2(r, 2);
				if (r > 2)
					close(r);
			}
		} else {
			fputs(msg + 1, stdout);
			fflush(stdout);
		}
	}
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			if (server_reload_config(&sv) != 0 ||
			    server_reload(&sv) != 0)
				ck_error("reload failed: %s", ck_err_msg());
			continue;
		}
		break;
	}
	adminsock_stop(adm);
	server_stop(&sv);
	if (signer_died) {
		char why[300];
		(void)signer_proc_dead(sp, why, sizeof(why));
		(void)ck_ca_audit(ca, "service-stop", home, AUDIT_FAILED,
		    why);
		ck_error("stopped: %s", why);
	} else {
		(void)ck_ca_audit(ca, "service-stop", home, AUDIT_OK,
		    sig == SIGINT ? "SIGINT" : "SIGTERM");
		/* The log ends signed: a truncation of what this run wrote
		 * shows. */
		if (audit_checkpoint(ca, NULL, NULL) != 0)
			ck_error("audit checkpoint at stop: %s", ck_err_msg());
	}
	server_audit_stopped(&sv);
	unlink(pidpath);
	unlink(urlpath);
	ck_ca_close(ca);
	unlock_collector_free(uc);
	signer_proc_free(sp);
	close(lockfd);
	return signer_died ? CERTKEEPD_EXIT_SIGNER_DIED : 0;
fail:
	{
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", ck_err_msg()[0] ?
		    ck_err_msg() : ck_strerror(r));
		if (ready[1] >= 0) {
			char out[1100];
			int n = snprintf(out, sizeof(out), "-%s", msg);
			(void)!write(ready[1], out, (size_t)n);
		} else
			fprintf(stderr, "certkeepd: error: %s\n", msg);
	}
	ck_secret_free(pw);
	EVP_PKEY_free(sv.eab_key);	/* NULL once server_stop() ran */
	ck_ca_close(ca);
	unlock_collector_free(uc);
	if (admfd >= 0)
		close(admfd);
	signer_proc_free(sp);
	if (lockfd >= 0)
		close(lockfd);
	return 1;
}
