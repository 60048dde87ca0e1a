# lib.sh - shared helpers for the certkeep integration tests.
#
# Source it first thing from a scenario script:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It needs $CERTKEEP (the certkeep binary; meson passes it) and uses only
# bash, coreutils, openssl and sqlite3 (setsid, when present, to detach
# the test from any terminal so that no command can ever wait for typed
# input).
#
# What it provides:
#   $T                 a private (0700) scratch directory, the working
#                      directory, removed on exit
#   $PW, $PWFILE       a passphrase and a 0600 file holding it
#   say / ok / fail    progress, success and "abort the test" messages
#   fail_cmd MSG       abort, showing the last command and its output
#   run CMD...         run, keeping stdout/stderr in $LAST_OUT/$LAST_ERR
#                      and the exit status in $LAST_RC; never aborts
#   expect_ok CMD...   run; abort unless it exits 0
#   expect_fail RE CMD...
#                      run; abort unless it exits non-zero (and was not
#                      killed by a signal) AND stderr matches the extended
#                      regular expression RE (case-insensitive)
#   ck ARGS...         "$CERTKEEP" ARGS...
#   detached CMD...    CMD without a controlling terminal, under a timeout
#   count_certs HOME [list options]     rows of 'certkeep list'
#   count_audit HOME [RESULT [ACTION]]  entries of 'certkeep audit show'
#   last_audit HOME                     the last 'audit show' line
#   new_root / new_issuing / install_issuing / make_key / make_csr ...

set -euo pipefail

if [[ -z "${CERTKEEP:-}" ]]; then
	echo "FAIL: \$CERTKEEP must name the certkeep binary" >&2
	exit 1
fi
if [[ ! -x "$CERTKEEP" ]]; then
	echo "FAIL: \$CERTKEEP ($CERTKEEP) is not an executable" >&2
	exit 1
fi
# The tests change directory: make the binary's path absolute.
CERTKEEP="$(cd "$(dirname "$CERTKEEP")" && pwd)/$(basename "$CERTKEEP")"
export CERTKEEP

# Detach from any controlling terminal: a command that would fall back to
# asking on the terminal then fails at once instead of waiting forever.
if [[ -z "${CK_INT_DETACHED:-}" ]] && command -v setsid >/dev/null 2>&1; then
	export CK_INT_DETACHED=1
	exec setsid -w bash "$0" "$@"
fi

# Nothing from the caller's environment may steer certkeep or openssl.
unset CERTKEEP_HOME OPENSSL_CONF OPENSSL_ENGINES SSL_CERT_FILE SSL_CERT_DIR \
    CERTKEEP_PASSPHRASE || true
export LC_ALL=C TZ=UTC
umask 077

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/certkeep-int-${TEST_NAME}.XXXXXXXX")
chmod 700 "$T"

_ck_cleanup() {
	local rc=$?
	cd / || true
	# Tests loosen and tighten permissions; make sure everything can go.
	chmod -R u+rwx "$T" 2>/dev/null || true
	rm -rf "$T"
	if [[ $rc -eq 0 ]]; then
		echo "PASS: $TEST_NAME"
	else
		echo "FAIL: $TEST_NAME (exit $rc)" >&2
	fi
	exit "$rc"
}
trap _ck_cleanup EXIT
cd "$T"

LAST_OUT="$T/.last.out"
LAST_ERR="$T/.last.err"
LAST_RC=0
_CMDLINE=""

say() { echo "== $*"; }
ok() { echo "   ok: $*"; }

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# fail_cmd MESSAGE: fail, showing the last command run and its output.
fail_cmd() {
	echo "FAIL: $*" >&2
	if [[ -n "$_CMDLINE" ]]; then
		echo "  command: $_CMDLINE (exit $LAST_RC)" >&2
		if [[ -s "$LAST_OUT" ]]; then
			echo "  --- stdout" >&2
			head -c 4000 "$LAST_OUT" | sed 's/^/  | /' >&2
		fi
		if [[ -s "$LAST_ERR" ]]; then
			echo "  --- stderr" >&2
			head -c 4000 "$LAST_ERR" | sed 's/^/  | /' >&2
		fi
	fi
	exit 1
}

ck() { "$CERTKEEP" "$@"; }

# detached CMD...: CMD in a new session without a controlling terminal,
# killed after $DETACHED_TIMEOUT seconds (exit 124) should it ever wait.
DETACHED_TIMEOUT=20
if command -v setsid >/dev/null 2>&1; then
	detached() { timeout "$DETACHED_TIMEOUT" setsid -w "$@"; }
else
	detached() { timeout "$DETACHED_TIMEOUT" "$@"; }
fi

# Run a command, keep its output; never aborts the script.
run() {
	if [[ "$1" == "$CERTKEEP" ]]; then
		_CMDLINE="certkeep ${*:2}"
	else
		_CMDLINE="$*"
	fi
	if "$@" >"$LAST_OUT" 2>"$LAST_ERR"; then
		LAST_RC=0
	else
		LAST_RC=$?
	fi
	return 0
}

expect_ok() {
	run "$@"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "command failed: $_CMDLINE"
}

# expect_fail ERE CMD...: non-zero exit, no crash, ERE on stderr.
expect_fail() {
	local re=$1
	shift
	run "$@"
	[[ $LAST_RC -ne 0 ]] || fail_cmd "command succeeded but must fail: $_CMDLINE"
	[[ $LAST_RC -ne 124 ]] || fail_cmd "command timed out: $_CMDLINE"
	[[ $LAST_RC -lt 126 ]] ||
	    fail_cmd "command crashed or was killed (exit $LAST_RC): $_CMDLINE"
	grep -Eiq -- "$re" "$LAST_ERR" ||
	    fail_cmd "stderr does not match /$re/: $_CMDLINE"
}

# Assertions on values and files.
assert_eq() {	# assert_eq WANT GOT WHAT
	[[ "$1" == "$2" ]] || fail "$3: expected '$1', got '$2'"
}
assert_grep() {	# assert_grep ERE FILE WHAT
	grep -Eq -- "$1" "$2" || {
		echo "  --- $2" >&2
		head -c 6000 "$2" | sed 's/^/  | /' >&2
		fail "$3: /$1/ not found"
	}
}
assert_no_grep() {
	if grep -Eq -- "$1" "$2"; then
		echo "  --- $2" >&2
		head -c 6000 "$2" | sed 's/^/  | /' >&2
		fail "$3: /$1/ must not be there"
	fi
}
assert_file_mode() {	# assert_file_mode MODE FILE
	local m
	m=$(stat -c %a "$2")
	[[ "$m" == "$1" ]] || fail "$2 has mode $m, expected $1"
}

# ---------------------------------------------------------------------
# certkeep store views

# count_certs HOME [list options...]: number of certificate rows.
count_certs() {
	local home=$1
	shift
	run "$CERTKEEP" list --home "$home" "$@"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep list failed: $_CMDLINE"
	awk '$1 != "SERIAL" && NF > 0 { n++ } END { print n + 0 }' "$LAST_OUT"
}

# list_serials HOME [list options...]: the serial column, one a line.
list_serials() {
	local home=$1
	shift
	run "$CERTKEEP" list --home "$home" "$@"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep list failed: $_CMDLINE"
	awk '$1 != "SERIAL" && NF > 0 { print $1 }' "$LAST_OUT"
}

# Audit entries as printed by 'certkeep audit show':
#   ID TIME USER ACTION RESULT OBJECT [-- DETAIL]
_audit_show() {
	run "$CERTKEEP" audit show --home "$1"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep audit show failed: $_CMDLINE"
	grep -E '^ *[0-9]+ [0-9]{4}-[0-9]{2}-[0-9]{2}T' "$LAST_OUT" || true
}

# count_audit HOME [RESULT [ACTION]]
count_audit() {
	# Signed checkpoints are not operations: counted only when asked for.
	_audit_show "$1" | awk -v res="${2:-}" -v act="${3:-}" \
	    '(res == "" || $5 == res) && (act == "" || $4 == act) &&
	     (act == "audit-checkpoint" || $4 != "audit-checkpoint") { n++ }
	     END { print n + 0 }'
}

# The last entry that is not a signed checkpoint (certkeepd writes those
# at start, at stop and periodically).
last_audit() { _audit_show "$1" | awk '$4 != "audit-checkpoint"' | tail -n 1; }

audit_verify_ok() {
	expect_ok "$CERTKEEP" audit verify --home "$1"
	assert_grep 'audit log intact' "$LAST_OUT" "audit verify of $1"
}

# ---------------------------------------------------------------------
# CA set-up (cheap KDF: the key derivation cost is not under test here)

PW='integration test passphrase'
PWFILE="$T/passphrase"
printf '%s\n' "$PW" >"$PWFILE"
chmod 600 "$PWFILE"

# new_root HOME KEYTYPE [extra init options...]
new_root() {
	local home=$1 kt=$2
	shift 2
	expect_ok "$CERTKEEP" init --home "$home" --root \
	    --subject "CN=Test Root $kt,O=certkeep tests" --key-type "$kt" \
	    --scrypt-log2n 10 --passphrase-file "$PWFILE" "$@"
}

# new_issuing HOME KEYTYPE [extra init options...]: writes HOME/ca.csr
new_issuing() {
	local home=$1 kt=$2
	shift 2
	expect_ok "$CERTKEEP" init --home "$home" --issuing \
	    --subject "CN=Test Issuing $kt,O=certkeep tests" --key-type "$kt" \
	    --scrypt-log2n 10 --passphrase-file "$PWFILE" "$@"
	[[ -s "$home/ca.csr" ]] || fail "$home/ca.csr was not written"
}

# install_issuing PARENT CHILD PROFILE [issue options...]: the parent signs
# the child's ca.csr and the child installs it with the parent's chain.
install_issuing() {
	local parent=$1 child=$2 profile=$3
	shift 3
	expect_ok "$CERTKEEP" issue --home "$parent" --profile "$profile" \
	    --csr "$child/ca.csr" --cert-only --out "$T/$(basename "$child").cert.pem" \
	    --passphrase-file "$PWFILE" "$@"
	expect_ok "$CERTKEEP" ca install --home "$child" \
	    --cert "$T/$(basename "$child").cert.pem" --chain "$parent/chain.pem"
}

# openssl_cnf: a minimal request configuration, independent of the
# system's openssl.cnf.
OSSL_CNF="$T/req.cnf"
cat >"$OSSL_CNF" <<'EOF'
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
EOF

# make_key KEYTYPE FILE: an unencrypted key of a certkeep key type (or
# rsa1024 for refusal tests).
make_key() {
	local kt=$1 out=$2
	case "$kt" in
	rsa*)	expect_ok openssl genpkey -algorithm RSA \
		    -pkeyopt "rsa_keygen_bits:${kt#rsa}" -out "$out" ;;
	ec-p256) expect_ok openssl genpkey -algorithm EC \
		    -pkeyopt ec_paramgen_curve:P-256 -out "$out" ;;
	ec-p384) expect_ok openssl genpkey -algorithm EC \
		    -pkeyopt ec_paramgen_curve:P-384 -out "$out" ;;
	ed25519) expect_ok openssl genpkey -algorithm ED25519 -out "$out" ;;
	*)	fail "make_key: unknown key type $kt" ;;
	esac
}

# make_csr KEYFILE OUT SUBJECT [PEM|DER] [-addext EXT]...
make_csr() {
	local key=$1 out=$2 subj=$3 form=${4:-PEM}
	shift 3
	if [[ $# -gt 0 ]]; then shift; fi
	expect_ok openssl req -new -config "$OSSL_CNF" -key "$key" \
	    -subj "$subj" -outform "$form" -out "$out" "$@"
}

# openssl_serial CERT.pem: the serial as openssl prints it (whole bytes,
# so it may start with a 0); cert_serial CERT.pem: as certkeep prints it
# (upper-case hex without leading zeros).
openssl_serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
cert_serial() { openssl_serial "$1" | sed 's/^0*//'; }

# cert_text CERT.pem OUT: the human-readable dump into OUT.
cert_text() { openssl x509 -in "$1" -noout -text >"$2"; }

# epoch of a certificate's notAfter / notBefore
cert_not_after() {
	date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s
}
cert_not_before() {
	date -u -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s
}

# tbs_sha256 CERT.pem: hex SHA-256 of the DER TBSCertificate.
tbs_sha256() {
	local cert=$1 off
	# The second element of the outer SEQUENCE dump is the TBS.
	off=$(openssl asn1parse -in "$cert" | sed -n 2p | cut -d: -f1 | tr -d ' ')
	[[ "$off" =~ ^[0-9]+$ ]] || fail "cannot locate the TBS of $cert"
	openssl asn1parse -in "$cert" -strparse "$off" -noout -out "$T/.tbs.der" \
	    >/dev/null || fail "cannot extract the TBS of $cert"
	sha256sum "$T/.tbs.der" | cut -d' ' -f1
}

# The openssl command-line in a test's log is long; keep each check short.
ossl_verify() {	# ossl_verify ROOT UNTRUSTED CERT [more options]
	local root=$1 untrusted=$2 cert=$3
	shift 3
	run openssl verify -x509_strict -CAfile "$root" -untrusted "$untrusted" \
	    "$@" "$cert"
}
