/*
 * signer_sandbox.c - the signer process's seccomp filter (libseccomp).
 *
 * An allowlist: what a process that reads requests from one socket,
 * computes and writes replies needs (memory, threads it already has,
 * randomness, time), and nothing that reaches outside: no socket, no
 * connect, no open, no exec, no fork, no ptrace. With a PKCS#11 token
 * the module may need its own files after start (SoftHSM2 re-reads its
 * token directory; a reload after a token failure opens the module
 * again): file system calls are then allowed too, but still no socket
 * (it fails with EACCES so that a module's syslog() falls quiet instead
 * of killing the signer) and no exec. docs/signer.md lists and explains
 * every entry.
 *
 * libseccomp rather than a hand-written BPF program: it resolves system
 * call numbers per architecture (x86-64, i386 compat, aarch64) and adds
 * the architecture check that a raw filter must get right by hand.
 */
#include "signer/signer_proc.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <ucontext.h>
#include <unistd.h>

#include <seccomp.h>

#include "common/err.h"

/* Allowed always. */
static const char *const base_calls[] = {
	"read", "write", "readv", "writev", "close", "lseek",
	"futex", "futex_waitv", "set_robust_list", "get_robust_list",
	"rseq", "restart_syscall", "sched_yield", "sched_getaffinity",
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
	"gettimeofday", "time",
	"mmap", "munmap", "mremap", "mprotect", "madvise", "brk",
	"getrandom",
	"rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack",
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid",
	"fstat", "newfstatat", "statx",
	"exit", "exit_group",
	"mlock", "munlock", "membarrier",
	/* glibc's qsort() (2.36) asks once for the physical memory before
	 * it sorts more than 1 KiB: OpenSSL sorts a CRL's entries. */
	"sysinfo",
};

/* A PKCS#11 module's own files. SoftHSM2 (2.6) at every C_Sign opens
 * its token's "generation" file and the key's object file read-only,
 * takes a read lock on them (fcntl F_SETLKW), fstat()s and reads them;
 * a reload after a token failure (keystore_p11_probe) also reads its
 * configuration, lists the token directory, dlopen()s the module again,
 * opens its token's generation and token.object files O_RDWR | O_CREAT,
 * creates token.lock (O_WRONLY | O_CREAT | O_TRUNC) and rewrites the
 * generation file (ftruncate, write). So with a token, files may be
 * opened and written, but nothing renames, removes, links or makes
 * directories, and nothing opens a socket or runs a program. */
static const char *const token_calls[] = {
	"stat", "lstat", "access", "faccessat", "faccessat2", "fcntl",
	"flock", "getdents64", "pread64", "readlink", "readlinkat",
	"getcwd", "uname", "prlimit64", "getrlimit", "umask",
	"dup", "dup3", "poll", "ppoll", "openat", "open", "ftruncate",
	"pwrite64", "fsync", "fdatasync",
};

/* Denied with an error instead of a kill, with a token: a module that
 * logs with syslog() tries this and must not die for it. */
static const char *const token_denied[] = {
	"socket", "connect",
};

/* The log mode: report, then fail the call as not implemented. Only
 * async-signal-safe calls here. */
static void
sigsys(int sig, siginfo_t *si, void *uc)
{
	static const char msg[] = "certkeep-signer: seccomp: forbidden system "
	    "call ";
	char num[16];
	int n = si->si_syscall, i = (int)sizeof(num);

	(void)sig;
	/* The call's result: it failed, "not implemented" (without this
	 * the register still holds the call's number). */
#if defined(__x86_64__)
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	((ucontext_t *)uc)->uc_mcontext.regs[0] = (unsigned long)-ENOSYS;
#else
	(void)uc;
#endif
	if (n < 0)
		n = 0;
	num[--i] = '\n';
	do {
		num[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0 && i > 0);
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, num + i, sizeof(num) - (size_t)i);
}

static int
allow(scmp_filter_ctx ctx, const char *const *names, size_t n, uint32_t act)
{
	size_t i;
	int nr;

	for (i = 0; i < n; i++) {
		/* A name this architecture lacks (open on aarch64) is
		 * simply not there to allow. */
		if ((nr = seccomp_syscall_resolve_name(names[i])) ==
		    __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(ctx, act, nr, 0) != 0)
			return -1;
	}
	return 0;
}

/* Signals to this process only (abort() on an assertion: glibc's raise()
 * is tgkill(getpid(), gettid(), sig)); the first argument of tgkill and
 * tkill must be our own pid, so that no other process of the same uid
 * (the service, say) can be signalled. */
static int
allow_self_signals(scmp_filter_ctx ctx)
{
	static const char *const names[] = { "tgkill", "tkill" };
	struct scmp_arg_cmp self;
	size_t i;
	int nr;

	memset(&self, 0, sizeof(self));
	self.arg = 0;
	self.op = SCMP_CMP_EQ;
	self.datum_a = (scmp_datum_t)getpid();

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((nr = seccomp_syscall_resolve_name(names[i])) ==
		    __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1,
		    &self) != 0)
			return -1;
	}
	return 0;
}

int
signer_sandbox_apply(int token, int log_mode)
{
	scmp_filter_ctx ctx;
	struct sigaction sa;
	int rc = -1;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return ck_err_set(CK_E_INTERNAL, "PR_SET_NO_NEW_PRIVS: %s",
		    strerror(errno));
	if (log_mode) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSYS, &sa, NULL) != 0)
			return ck_err_set(CK_E_INTERNAL, "SIGSYS handler");
	}
	if ((ctx = seccomp_init(log_mode ? SCMP_ACT_TRAP :
	    SCMP_ACT_KILL_PROCESS)) == NULL)
		return ck_err_set(CK_E_INTERNAL, "seccomp_init failed");
	/* Every thread, the workers included. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0)
		goto out;
	if (allow(ctx, base_calls, sizeof(base_calls) /
	    sizeof(base_calls[0]), SCMP_ACT_ALLOW) != 0 ||
	    allow_self_signals(ctx) != 0)
		goto out;
	if (token && (allow(ctx, token_calls, sizeof(token_calls) /
	    sizeof(token_calls[0]), SCMP_ACT_ALLOW) != 0 ||
	    allow(ctx, token_denied, sizeof(token_denied) /
	    sizeof(token_denied[0]), SCMP_ACT_ERRNO(EACCES)) != 0))
		goto out;
	if (seccomp_load(ctx) != 0)
		goto out;
	rc = 0;
out:
	seccomp_release(ctx);
	if (rc != 0)
		return ck_err_set(CK_E_INTERNAL, "cannot install the seccomp "
		    "filter");
	return 0;
}
