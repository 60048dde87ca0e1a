/*
 * fuzz_admin_request.c - the admin socket's requests (src/daemon/
 * adminsock.c, src/authz/admin.c) on arbitrary bytes: the framing and
 * JSON decoder, then, for what decodes, the whole judgement and run by
 * admin_exec() against a scratch store, as an operator who is a
 * certificate manager and backup operator (so revocations, backup
 * records and custody entries run; everything else is refused and
 * audited; a backup itself needs certkeepd and is refused). No CA key is
 * involved.
 *
 * Invariants: a decoded request is a JSON object; every request gets a
 * reply object with a boolean "ok", and a failed one has an error text.
 *
 * Seeds (corpus/admin_request/): framed requests of every action the
 * socket serves (approvals too, on one stored request; an approval stops
 * at the locked key), and broken ones (bad lengths, not JSON, not an object,
 * duplicate keys, wrong argument types).
 */
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "authz/admin.h"
#include "common/err.h"
#include "daemon/adminsock.h"
#include "store/store_authz.h"
#include "store/store_request.h"

#include "fuzz.h"

static struct ck_ca ca;
static struct admin_env env;
static uid_t peer;
static int ready;
static char dir[4096];

/* The scratch store goes when the run ends. */
static void
cleanup(void)
{
	static const char *const names[] = { "store.db", "store.db-wal",
	    "store.db-shm", NULL };
	char path[4200];
	int i;

	store_close(ca.st);
	ca.st = NULL;
	for (i = 0; names[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(void)unlink(path);
	}
	(void)rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct store_operator op;
	struct passwd *pw;
	const char *tmp = getenv("TMPDIR");
	char path[4200];

	(void)argc;
	(void)argv;
	/* nobody: neither root nor the home's owner (this process). */
	peer = 65534;
	if ((pw = getpwuid(peer)) == NULL || peer == getuid())
		return 0;
	snprintf(dir, sizeof(dir), "%s/fuzz-admin.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return 0;
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	if (store_open(path, 1, &ca.st) != 0)
		return 0;
	memset(&op, 0, sizeof(op));
	snprintf(op.name, sizeof(op.name), "fuzzer");
	snprintf(op.os_user, sizeof(op.os_user), "%s", pw->pw_name);
	snprintf(op.created_by, sizeof(op.created_by), "fuzz");
	op.created_at = 1700000000;
	if (store_operator_add(ca.st, &op) != 0 ||
	    store_operator_grant(ca.st, "fuzzer", STORE_ROLE_CERT_MANAGER, 1,
	    "fuzz") != 0 ||
	    /* A backup operator too (the store does not separate roles
	     * itself), so the backup, drill and custody requests are
	     * parsed and run, not only refused. */
	    store_operator_grant(ca.st, "fuzzer", STORE_ROLE_BACKUP_OPERATOR,
	    1, "fuzz") != 0)
		return 0;
	{
		/* A request awaiting approval, for the decisions to find. */
		static unsigned char csr[] = { 0x30, 0x00 };
		struct store_request rq;
		memset(&rq, 0, sizeof(rq));
		snprintf(rq.profile, sizeof(rq.profile), "tls-server");
		rq.path_len = -1;
		rq.csr = csr;
		rq.csr_len = sizeof(csr);
		snprintf(rq.requester, sizeof(rq.requester), "token:fuzz");
		if (store_request_insert(ca.st, &rq) != 0)
			return 0;
	}
	env.ca = &ca;
	env.rd = ca.st;
	env.owner = getuid();
	ready = 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = NULL, *reply;

	if (adminsock_decode(data, size, &req) != 0) {
		FUZZ_CHECK(req == NULL);
		FUZZ_CHECK(ck_err_msg()[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(json_is_object(req));
	if (ready) {
		reply = admin_exec(&env, peer, req);
		FUZZ_CHECK(reply != NULL);
		FUZZ_CHECK(json_is_boolean(json_object_get(reply, "ok")));
		if (!json_is_true(json_object_get(reply, "ok")))
			FUZZ_CHECK(json_is_string(json_object_get(reply,
			    "error")));
		json_decref(reply);
	}
	json_decref(req);
	return 0;
}
