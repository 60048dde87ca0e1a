# srvlib.sh - shared helpers for the certkeepd scenarios (tests/server).
#
# Source it first thing from a scenario script:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"
#
# It sources ../integration/lib.sh (read it: $T, $PW, $PWFILE, run,
# expect_ok, expect_fail, count_certs, count_audit, make_key, make_csr ...
# all come from there) and needs $CERTKEEPD besides $CERTKEEP (the
# certkeep command line runs the certkeepd found beside itself). It uses
# only bash, coreutils, openssl and curl. Everything listens on
# 127.0.0.1, on ports the kernel picks.
#
# What it adds:
#   $SRV_DOMAIN           the DNS domain of the test CAs (tls-server and
#                         tls-client allow names below it)
#   srv_init HOME [init options...]
#                         a root CA (ec-p256, cheap KDF) whose certkeepd
#                         listens on 127.0.0.1:0 (both ports); when run as
#                         root the home belongs to the service user
#                         'certkeep' (created if missing)
#   conf_set HOME SECTION KEY VALUE
#                         set KEY in [SECTION] of HOME/certkeep.conf
#   srv_start HOME        start certkeepd (passphrase through fd 3); sets
#                         $API (https://...), $PUB (http://...), $SRV_PID,
#                         $SRV_CA (a copy of HOME/ca.pem for curl/openssl)
#   srv_stop HOME         stop it (certkeep service stop), checked
#   srv_stopped_cleanly HOME
#                         no pid or urls file, and the last audit entry
#                         is certkeepd's 'service-stop'
#   srv_running HOME      0 when 'certkeep service status' says running
#   srv_token HOME NAME PROFILES [token options...]
#                         create an API token; prints it (once a running
#                         certkeepd accepts it)
#   token_state TOKEN 404|401
#                         whether the API accepts (404 for an unknown
#                         serial) or refuses (401) the token
#   srv_csr OUT CN [SAN] [KEYTYPE]
#                         a key (OUT.key) and a PEM CSR (OUT) for CN, with
#                         subjectAltName SAN (default DNS:CN)
#   json_body PROFILE CSRFILE [DAYS]
#                         the POST /api/v1/certificates body, on stdout
#   api METHOD URL [curl options...]
#                         one HTTPS (or HTTP) request; sets $CODE (HTTP
#                         status, 000 if none), $CTYPE, $CURL_RC and leaves
#                         the body in $BODY (a file); never aborts
#   api_issue AUTH-OPTION BODYFILE OUTCERT
#                         POST a body, expect 201; writes the certificate
#                         to OUTCERT and the chain to OUTCERT.chain; sets
#                         $SERIAL
#   json_str FILE KEY     a string member of a JSON document (unescaped)
#   serial_of CERT.pem    its serial as certkeep writes it
#   expect_problem STATUS [DETAIL-ERE]
#                         the last response is STATUS, a problem+json
#                         document whose detail matches DETAIL-ERE
#   wait_until SECONDS CMD...
#                         poll CMD every 0.1 s until it succeeds; 1 if it
#                         never did within SECONDS
#   bg_track PID          a background job to stop (by pid) on exit
#
# On exit (also after a failure) every certkeepd started here is stopped
# (killed, if it will not stop) and every tracked background job ends; a
# test that leaves a certkeepd running fails. Sanitizer reports of the
# server (which has no terminal) are collected under $T/san and make the
# test fail.

source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

if [[ -z "${CERTKEEPD:-}" || ! -x "$CERTKEEPD" ]]; then
	fail "\$CERTKEEPD must name the certkeepd binary"
fi
command -v curl >/dev/null 2>&1 || fail "these tests need curl"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy \
    CURL_HOME || true
export NO_PROXY='*' no_proxy='*'

SRV_DOMAIN=certkeep.test
SRV_HOMES=()
SRV_BG=()
SRV_USER_OPT=()
BODY="$T/.resp.body"
CODE=000
CTYPE=
CURL_RC=0

# Root: certkeepd never serves as root. The CA home goes to the service
# user, who must be able to reach it; passphrases go through descriptors.
if [[ $(id -u) -eq 0 ]]; then
	if ! getent passwd certkeep >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin \
		    certkeep >/dev/null 2>&1 || true	# maybe a parallel test
		getent passwd certkeep >/dev/null 2>&1 ||
		    fail "cannot create the service user 'certkeep'"
	fi
	chmod 711 "$T"
	SRV_USER_OPT=(--user certkeep)
fi

# Sanitizer reports of the detached server go to files (its stderr is
# /dev/null); harmless for a build without sanitizers.
mkdir -p "$T/san"
chmod 1777 "$T/san"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/san/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/san/ubsan"

_srv_pid_of() {	# the pid in HOME's pid file, or nothing
	local p
	p=$(cat "$1/certkeepd.pid" 2>/dev/null || true)
	[[ "$p" =~ ^[0-9]+$ ]] && echo "$p"
	return 0
}

_srv_cleanup() {
	local rc=$? h p i left=0
	set +e
	for p in "${SRV_BG[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${SRV_BG[@]}"; do
		wait "$p" 2>/dev/null
	done
	for h in "${SRV_HOMES[@]}"; do
		"$CERTKEEP" service status --home "$h" >/dev/null 2>&1 ||
		    continue
		echo "   cleanup: stopping the certkeepd on $h" >&2
		left=1
		p=$(_srv_pid_of "$h")
		timeout 60 "$CERTKEEP" service stop --home "$h" >/dev/null 2>&1
		if "$CERTKEEP" service status --home "$h" >/dev/null 2>&1 &&
		    [[ -n "$p" ]]; then
			kill -9 "$p" 2>/dev/null
			for i in $(seq 50); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
		fi
	done
	if [[ $rc -eq 0 && $left -ne 0 ]]; then
		echo "FAIL: the test left a certkeepd running" >&2
		rc=1
	fi
	if compgen -G "$T/san/*" >/dev/null; then
		echo "FAIL: sanitizer reports:" >&2
		head -c 20000 "$T"/san/* | sed 's/^/  | /' >&2
		rc=1
	fi
	(exit "$rc")
	_ck_cleanup
}
trap _srv_cleanup EXIT
# Fatal signals end the test through the EXIT trap (a write to a socket
# the server closed, a time-out's SIGTERM...), so that cleanup still runs.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

bg_track() { SRV_BG+=("$1"); }

# wait_until SECONDS CMD...: 0 as soon as CMD succeeds, 1 on time-out.
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		if "$@"; then return 0; fi
		sleep 0.1
	done
	"$@"
}

# ---------------------------------------------------------------------
# The CA and its configuration

# conf_set HOME SECTION KEY VALUE: replace or add "KEY = VALUE" in
# [SECTION] (added at the end if missing). The file keeps its owner and
# mode (it is rewritten in place).
conf_set() {
	local home=$1 sec=$2 key=$3 val=$4 f="$1/certkeep.conf"
	awk -v sec="[$sec]" -v key="$key" -v val="$val" '
	function put() { if (!done) print key " = " val; done = 1 }
	/^\[/ { if (insec) put(); insec = ($0 == sec); if (insec) seen = 1 }
	insec && $0 ~ "^[ \t]*" key "[ \t]*=" { put(); next }
	{ print }
	END { if (insec) put(); if (!seen) { print ""; print sec; put() } }
	' "$f" >"$T/.conf.new" || fail "cannot edit $f"
	cat "$T/.conf.new" >"$f"
	rm -f "$T/.conf.new"
}

# conf_get HOME SECTION KEY: the value (first occurrence), or nothing.
conf_get() {
	awk -v sec="[$2]" -v key="$3" '
	/^\[/ { insec = ($0 == sec); next }
	insec && $0 ~ "^[ \t]*" key "[ \t]*=" {
		sub("^[^=]*=[ \t]*", ""); print; exit }' "$1/certkeep.conf"
}

# srv_init HOME [init options...]
srv_init() {
	local home=$1
	shift
	expect_ok "$CERTKEEP" init --home "$home" --root \
	    --subject "CN=Server Test Root,O=certkeep tests" \
	    --key-type ec-p256 --scrypt-log2n 10 --domain "$SRV_DOMAIN" \
	    "${SRV_USER_OPT[@]}" --passphrase-fd 3 "$@" 3<"$PWFILE"
	conf_set "$home" server api_listen 127.0.0.1:0
	conf_set "$home" server http_listen 127.0.0.1:0
	conf_set "$home" server tls_names "localhost, 127.0.0.1"
	SRV_CA="$T/$(basename "$home")-ca.pem"
	cat "$home/ca.pem" >"$SRV_CA" || fail "cannot read $home/ca.pem"
}

# ---------------------------------------------------------------------
# certkeepd

srv_running() {
	"$CERTKEEP" service status --home "$1" >/dev/null 2>&1
}

# _srv_read_urls HOME: $API and $PUB from HOME/certkeepd.urls
_srv_read_urls() {
	local f="$1/certkeepd.urls"
	API=$(awk '$1 == "api" { print $2 }' "$f" 2>/dev/null || true)
	PUB=$(awk '$1 == "http" { print $2 }' "$f" 2>/dev/null || true)
	[[ "$API" =~ ^https://127\.0\.0\.1:[0-9]+$ ]] ||
	    fail "no api URL in $f: '$API'"
	[[ "$PUB" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] ||
	    fail "no http URL in $f: '$PUB'"
}

# srv_start HOME: start certkeepd and wait until it answers.
srv_start() {
	local home=$1 h known=0
	for h in "${SRV_HOMES[@]}"; do
		[[ "$h" == "$home" ]] && known=1
	done
	[[ $known -eq 1 ]] || SRV_HOMES+=("$home")
	run timeout 120 "$CERTKEEP" service start --home "$home" \
	    --passphrase-fd 3 3<"$PWFILE"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start"
	assert_grep '^certkeepd [0-9]+ serving CA ' "$LAST_OUT" \
	    "certkeep service start's report"
	assert_grep '^api https://127\.0\.0\.1:[0-9]+$' "$LAST_OUT" \
	    "the api URL in the report"
	assert_grep '^http http://127\.0\.0\.1:[0-9]+$' "$LAST_OUT" \
	    "the http URL in the report"
	_srv_read_urls "$home"
	# The report and the urls file agree.
	grep -qxF "api $API" "$LAST_OUT" ||
	    fail "the api URL of the report is not that of certkeepd.urls"
	SRV_PID=$(_srv_pid_of "$home")
	[[ -n "$SRV_PID" ]] || fail "no pid file in $home"
	grep -q "^certkeepd $SRV_PID serving" "$LAST_OUT" ||
	    fail "the pid file ($SRV_PID) is not the pid reported"
	wait_until 10 _health_ok || fail "certkeepd does not answer /health"
}

_health_ok() {
	[[ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
	    "$PUB/health" 2>/dev/null)" == 200 ]]
}

# srv_stop HOME: stop it; the pid and urls files go.
srv_stop() {
	local home=$1
	run timeout 120 "$CERTKEEP" service stop --home "$home"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep service stop failed"
	! srv_running "$home" || fail "certkeepd still runs after stop"
	srv_stopped_cleanly "$home"
}

# srv_stopped_cleanly HOME: certkeepd finished its stop (a crash also
# releases the lock that 'service stop' waits for, but leaves the pid
# file and no 'service-stop' audit entry).
srv_stopped_cleanly() {
	[[ ! -e "$1/certkeepd.pid" ]] ||
	    fail "the pid file is still there (did certkeepd crash?)"
	[[ ! -e "$1/certkeepd.urls" ]] || fail "the urls file is still there"
	last_audit "$1" >"$T/.last-audit"
	assert_grep '^ *[0-9]+ \S+ \S+ +service-stop +ok ' "$T/.last-audit" \
	    "the last audit entry after a stop"
	_audit_show "$1" | tail -n 1 >"$T/.last-audit"
	assert_grep '^ *[0-9]+ \S+ \S+ +audit-checkpoint +ok ' \
	    "$T/.last-audit" "a signed checkpoint ends the log after a stop"
}

# srv_token HOME NAME PROFILES [token options...]: prints the token.
srv_token() {
	local home=$1 name=$2 profiles=$3
	shift 3
	run "$CERTKEEP" token create --home "$home" --name "$name" \
	    --profiles "$profiles" "$@"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep token create failed"
	local tok
	tok=$(head -n 1 "$LAST_OUT")
	[[ "$tok" =~ ^ckt_[0-9a-f]+_[A-Za-z0-9_-]+$ ]] ||
	    fail_cmd "certkeep token create printed no token"
	# A running certkeepd accepts a new token at once: a token it does
	# not know makes it look in the store again.
	if srv_running "$home"; then
		_srv_read_urls "$home"
		token_state "$tok" 404 ||
		    fail "certkeepd does not accept the new token '$name' at once"
	fi
	echo "$tok"
}

# token_state TOKEN 404|401: 0 when the API answers a GET of a serial
# that does not exist with that status (404: the token is accepted; 401:
# refused).
token_state() {
	[[ "$(curl -s --max-time 10 --cacert "$SRV_CA" -o /dev/null \
	    -w '%{http_code}' -H "Authorization: Bearer $1" \
	    "$API/api/v1/certificates/0BADC0DE" 2>/dev/null)" == "$2" ]]
}

# ---------------------------------------------------------------------
# Requests

# srv_csr OUT CN [SAN] [KEYTYPE]: key OUT.key, CSR OUT (PEM).
srv_csr() {
	local out=$1 cn=$2 san=${3:-DNS:$2} kt=${4:-ec-p256}
	make_key "$kt" "$out.key"
	make_csr "$out.key" "$out" "/CN=$cn" PEM -addext "subjectAltName=$san"
}

# json_body PROFILE CSRFILE [DAYS]
json_body() {
	local pem
	pem=$(awk '{ printf "%s\\n", $0 }' "$2")
	printf '{"profile":"%s","csr":"%s"%s}' "$1" "$pem" \
	    "${3:+,\"days\":$3}"
}

# api METHOD URL [curl options...]
api() {
	local method=$1 url=$2
	shift 2
	rm -f "$BODY"
	run curl -sS --max-time 60 --cacert "$SRV_CA" -X "$method" \
	    -o "$BODY" -w '%{http_code} %{content_type}' "$@" "$url"
	CURL_RC=$LAST_RC
	CODE=000
	CTYPE=
	read -r CODE CTYPE <"$LAST_OUT" || true
	[[ -n "$CODE" ]] || CODE=000
	[[ -e "$BODY" ]] || : >"$BODY"
}

# serial_of CERT.pem: the serial as certkeep writes it (upper-case hex
# without leading zeros; openssl pads to whole bytes).
serial_of() { cert_serial "$1" | sed 's/^0*\(.\)/\1/'; }

# json_str FILE KEY: the first string member KEY, with \n, \" and \/
# unescaped (enough for PEM, serials and messages).
json_str() {
	local v
	v=$(grep -o "\"$2\":\"\\([^\"\\\\]\\|\\\\.\\)*\"" "$1" | head -n 1 |
	    sed -e "s/^\"$2\":\"//" -e 's/"$//') || true
	v=${v//\\\//\/}
	v=${v//\\\"/\"}
	printf '%b' "$v"
}

# api_issue AUTH-CURL-OPTIONS(array name) BODYFILE OUTCERT
# e.g. auth=(-H "Authorization: Bearer $TOK"); api_issue auth body out.pem
api_issue() {
	local -n _auth=$1
	local body=$2 out=$3
	api POST "$API/api/v1/certificates" "${_auth[@]}" \
	    -H 'Content-Type: application/json' --data-binary "@$body"
	if [[ "$CODE" != 201 ]]; then
		echo "  --- response ($CODE $CTYPE)" >&2
		head -c 3000 "$BODY" | sed 's/^/  | /' >&2
		fail "POST /api/v1/certificates answered $CODE, not 201"
	fi
	[[ "$CTYPE" == application/json* ]] ||
	    fail "201 with content type '$CTYPE'"
	SERIAL=$(json_str "$BODY" serial)
	[[ "$SERIAL" =~ ^[0-9A-F]+$ ]] || fail "no serial in the 201 answer"
	json_str "$BODY" certificate >"$out"
	json_str "$BODY" chain >"$out.chain"
	assert_eq "$SERIAL" "$(serial_of "$out")" "the serial of the answer"
}

# expect_problem STATUS [DETAIL-ERE]: the last api answer.
expect_problem() {
	local want=$1 re=${2:-}
	if [[ "$CODE" != "$want" ]]; then
		echo "  --- response ($CODE $CTYPE, curl exit $CURL_RC)" >&2
		head -c 3000 "$BODY" | sed 's/^/  | /' >&2
		fail "expected HTTP $want, got $CODE"
	fi
	[[ "$CTYPE" == application/problem+json* ]] ||
	    fail "HTTP $want with content type '$CTYPE', not a problem document"
	assert_grep "\"status\":$want[,}]" "$BODY" "the problem's status"
	assert_grep '"detail":"[^"]' "$BODY" "the problem's detail"
	if [[ -n "$re" ]]; then
		json_str "$BODY" detail >"$T/.detail"
		assert_grep "$re" "$T/.detail" "the problem's detail"
	fi
	PROBLEM_DETAIL=$(json_str "$BODY" detail)
}
