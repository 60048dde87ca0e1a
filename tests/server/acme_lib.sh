# acme_lib.sh - shared helpers for the real-client ACME scenarios
# (acme_certbot.sh, acme_lego.sh, acme_uacme.sh).
#
# Source it first thing from a scenario script, after naming the client
# binary the scenario needs:
#
#   ACME_CLIENT=lego
#   source "$(dirname "${BASH_SOURCE[0]}")/acme_lib.sh"
#
# It sources srvlib.sh. A missing client binary skips the test (exit 77);
# pebble-challtestsrv (Debian's pebble) and python3 are required.
#
# Everything runs on 127.0.0.1. pebble-challtestsrv is the DNS server the
# ACME server validates through: every name resolves to 127.0.0.1 (no
# AAAA), and the scenarios put dns-01 TXT records (and, for uacme, http-01
# answers) there through its management API.
#
# ACME_SERVER=pebble runs the same scenario against pebble (a reference
# ACME server, PEBBLE_VA_NOSLEEP=1, no random nonce rejection, no
# authorization reuse) instead of certkeepd, to tell a client problem
# from a server problem. Pebble has no OCSP or CRL: revocation is then
# checked through its management API.
#
# What it provides:
#   $ACME_DOMAIN           the test names live below it (a.$ACME_DOMAIN,
#                          *.w.$ACME_DOMAIN, ...); the profile allows it
#   $BAD_NAME              a name outside the profile
#   $DIR_URL               the ACME directory
#   $TLS_CA                the certificate clients trust for the server's
#                          TLS
#   $ROOT_CA               the root the issued certificates verify to
#   $CA_HOME               certkeepd's CA home
#   $HTTP01_PORT           where the server validates http-01
#   $TLSALPN_PORT          where the server validates tls-alpn-01
#   $DNS_PORT, $MGMT       challtestsrv's DNS port and management URL
#   acme_start             challtestsrv and the ACME server
#   acme_eab_create        a new external account key: $EAB_KID and
#                          $EAB_KEY (base64url HMAC key)
#   eab_bound KID          the server bound KID to an account
#   acme_require_eab       restart the server requiring EAB for new
#                          accounts ($DIR_URL changes)
#   free_port              a free TCP+UDP port on 127.0.0.1
#   txt_set NAME VALUE / txt_clear NAME
#                          the _acme-challenge TXT record of NAME
#   $CAA_IDENTITY, caa_set NAME ISSUER
#                          certkeepd's CAA identity; a CAA record for NAME
#   http01_add TOKEN CONTENT / http01_del TOKEN
#                          an http-01 answer served by challtestsrv on
#                          $HTTP01_PORT (when acme_start was given
#                          ACME_CHALLTEST_HTTP01=1)
#   wrong_responder_start PORT
#                          an HTTP server on PORT that answers every
#                          /.well-known/acme-challenge/ request with a
#                          wrong key authorization
#   check_cert CERT CHAIN NAMES...
#                          CERT verifies up to the ACME server's root
#                          through CHAIN and names exactly NAMES
#   check_revoked CERT     OCSP and the CRL (pebble: its management API)
#                          say CERT is revoked
#   check_good CERT        OCSP says good (pebble: valid)
#   hook_script FILE BODY  an executable bash script: BODY, after $MGMT,
#                          $HOOKLOG ($T/hooks.log) and _mgmt_hook PATH
#                          JSON (a logged challtestsrv request)
#   show_log FILE [N]      the last N (40) lines of FILE, on stderr

command -v "${ACME_CLIENT:?}" >/dev/null 2>&1 || {
	echo "SKIP: $ACME_CLIENT is not installed (scripts/setup installs it)"
	exit 77
}

source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

command -v pebble-challtestsrv >/dev/null 2>&1 ||
    fail "these tests need pebble-challtestsrv (Debian package pebble)"
command -v python3 >/dev/null 2>&1 || fail "these tests need python3"

ACME_SERVER=${ACME_SERVER:-certkeepd}
CAA_IDENTITY=ca.$SRV_DOMAIN
ACME_DOMAIN=acme.test
BAD_NAME=outside.example.org
CHALL_PID=

# free_port: a port free for TCP and UDP on 127.0.0.1 (the kernel's
# choice; another process may take it before we bind, which is unlikely
# within the ephemeral range's rotation).
free_port() {
	python3 - <<'EOF'
import socket
for _ in range(50):
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    u.close()
    t.close()
    print(port)
    break
else:
    raise SystemExit("no free port")
EOF
}

_port_open() {	# _port_open PORT: something accepts TCP there
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# _mgmt PATH JSON: one challtestsrv management request, checked.
_mgmt() {
	local code
	code=$(curl -sS --max-time 10 -o "$T/.mgmt.out" -w '%{http_code}' \
	    -X POST -d "$2" "$MGMT$1" 2>"$T/.mgmt.err") || code=000
	[[ "$code" == 200 ]] || {
		cat "$T/.mgmt.err" "$T/.mgmt.out" >&2 2>/dev/null
		fail "challtestsrv $1 $2 answered $code"
	}
}

txt_set() {
	_mgmt /set-txt "{\"host\":\"_acme-challenge.${1#\*.}.\",\"value\":\"$2\"}"
}
txt_clear() {
	_mgmt /clear-txt "{\"host\":\"_acme-challenge.${1#\*.}.\"}"
}
caa_set() {	# caa_set NAME ISSUER: NAME's CAA record says "0 issue ISSUER"
	_mgmt /add-caa "{\"host\":\"$1.\",\"policies\":[{\"tag\":\"issue\",\"value\":\"$2\"}]}"
}
http01_add() {
	_mgmt /add-http01 "{\"token\":\"$1\",\"content\":\"$2\"}"
}
http01_del() {
	_mgmt /del-http01 "{\"token\":\"$1\"}"
}

# hook_script FILE BODY: an executable bash script; BODY can use $MGMT,
# $HOOKLOG and _mgmt_hook, which are written in before it.
hook_script() {
	{
		echo '#!/usr/bin/env bash'
		echo 'set -euo pipefail'
		echo "MGMT='$MGMT'"
		echo "HOOKLOG='$T/hooks.log'"
		declare -f _mgmt_hook
		echo "$2"
	} >"$1"
	chmod 700 "$1"
}

# _mgmt_hook PATH JSON: _mgmt for hook scripts (no srvlib there).
_mgmt_hook() {
	echo "$(date +%T) $1 $2" >>"$HOOKLOG"
	curl -sf --max-time 10 -X POST -d "$2" "$MGMT$1" >/dev/null
}

_start_challtestsrv() {
	local http01=""
	DNS_PORT=$(free_port)
	local mport
	mport=$(free_port)
	MGMT="http://127.0.0.1:$mport"
	[[ "${ACME_CHALLTEST_HTTP01:-0}" == 1 ]] && http01="127.0.0.1:$HTTP01_PORT"
	pebble-challtestsrv -dns01 "127.0.0.1:$DNS_PORT" \
	    -http01 "$http01" -https01 "" -tlsalpn01 "" \
	    -management "127.0.0.1:$mport" \
	    -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
	    >"$T/challtestsrv.log" 2>&1 &
	CHALL_PID=$!
	bg_track "$CHALL_PID"
	wait_until 10 _port_open "$mport" ||
	    fail "pebble-challtestsrv does not listen (see its log: $(tail -n 3 "$T/challtestsrv.log"))"
	# The management API answers (and the probe name resolves).
	_mgmt /add-a "{\"host\":\"probe.$ACME_DOMAIN.\",\"addresses\":[\"127.0.0.1\"]}"
}

# ---------------------------------------------------------------------
# certkeepd

_start_certkeepd() {
	local ca="$T/ca"
	srv_init "$ca"
	# The tls-server profile (ACME's) takes the test domain besides the
	# usual one, and wildcards (which ACME gives only through dns-01).
	conf_set "$ca" profile.tls-server dns_suffixes "$SRV_DOMAIN, $ACME_DOMAIN"
	conf_set "$ca" profile.tls-server allow_wildcard yes
	conf_set "$ca" acme dns_servers "127.0.0.1:$DNS_PORT"
	conf_set "$ca" acme http01_port "$HTTP01_PORT"
	conf_set "$ca" acme tlsalpn01_port "$TLSALPN_PORT"
	conf_set "$ca" acme validation_allow_loopback true
	# CAA (RFC 8659) is checked for this identity; the test names have
	# no CAA records (any CA may issue) unless a scenario adds one.
	conf_set "$ca" acme caa_identity "$CAA_IDENTITY"
	CA_HOME=$ca
	# certkeepd loads the CA's EAB key pair when it starts, and the first
	# 'acme eab create' makes that pair: one key before the start.
	acme_eab_create
	EAB_FIRST_KID=$EAB_KID EAB_FIRST_KEY=$EAB_KEY
	srv_start "$ca"
	DIR_URL="$API/acme/directory"
	TLS_CA=$SRV_CA
	ROOT_CA=$SRV_CA
}

# acme_eab_create: a new external account key: $EAB_KID, $EAB_KEY
# (base64url HMAC key). pebble: the next key of its configuration.
acme_eab_create() {
	if [[ "$ACME_SERVER" == pebble ]]; then
		PEBBLE_EAB_N=$((PEBBLE_EAB_N + 1))
		EAB_KID=kid-$PEBBLE_EAB_N
		EAB_KEY=${PEBBLE_EAB_KEYS[$EAB_KID]}
		return 0
	fi
	if [[ -n "${EAB_FIRST_KID:-}" ]]; then	# made before the start
		EAB_KID=$EAB_FIRST_KID EAB_KEY=$EAB_FIRST_KEY
		EAB_FIRST_KID=
		return 0
	fi
	# The first key of a CA makes its EAB key pair: the CA passphrase.
	run "$CERTKEEP" acme eab create --home "$CA_HOME" --note "$TEST_NAME" \
	    --passphrase-fd 3 3<"$PWFILE"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep acme eab create failed"
	EAB_KID=$(sed -n 's/^kid: *//p' "$LAST_OUT")
	EAB_KEY=$(sed -n 's/^hmac-key: *//p' "$LAST_OUT")
	[[ "$EAB_KID" =~ ^[A-Za-z0-9_-]+$ && "$EAB_KEY" =~ ^[A-Za-z0-9_-]+$ ]] ||
	    fail_cmd "no kid and hmac-key in the output of certkeep acme eab create"
}

# eab_bound KID: 0 when the server has bound KID to an account.
eab_bound() {
	[[ "$ACME_SERVER" == pebble ]] && return 0
	run "$CERTKEEP" acme eab list --home "$CA_HOME"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep acme eab list failed"
	awk -v k="$1" '$1 == k && $5 != "-" { f = 1 } END { exit !f }' \
	    "$LAST_OUT"
}

# acme_require_eab: restart the server so that a new account needs an
# external account binding ([acme] eab_required); $DIR_URL changes.
acme_require_eab() {
	if [[ "$ACME_SERVER" == pebble ]]; then
		kill "$PEBBLE_PID" 2>/dev/null || true
		wait "$PEBBLE_PID" 2>/dev/null || true
		_start_pebble true
		return 0
	fi
	srv_stop "$CA_HOME"
	conf_set "$CA_HOME" acme eab_required yes
	srv_start "$CA_HOME"
	DIR_URL="$API/acme/directory"
}

# ---------------------------------------------------------------------
# pebble (the reference run)

# The keys of pebble's example configuration.
declare -A PEBBLE_EAB_KEYS=(
	[kid-1]=zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W
	[kid-2]=b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH
)
PEBBLE_EAB_N=0

# _start_pebble [EAB-REQUIRED (false|true)]
_start_pebble() {
	command -v pebble >/dev/null 2>&1 || fail "pebble is not installed"
	local port mport d="$T/pebble" req=${1:-false}
	mkdir -p "$d"
	[[ -s "$d/tls.pem" ]] || _pebble_tls "$d"
	port=$(free_port)
	mport=$(free_port)
	cat >"$d/config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$port",
    "managementListenAddress": "127.0.0.1:$mport",
    "certificate": "$d/tls.pem",
    "privateKey": "$d/tls.key",
    "httpPort": $HTTP01_PORT,
    "tlsPort": $TLSALPN_PORT,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": $req,
    "externalAccountMACKeys": {
      "kid-1": "${PEBBLE_EAB_KEYS[kid-1]}",
      "kid-2": "${PEBBLE_EAB_KEYS[kid-2]}"
    },
    "domainBlocklist": ["example.org"]
  }
}
EOF
	PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
	    pebble -config "$d/config.json" -dnsserver "127.0.0.1:$DNS_PORT" \
	    >>"$T/pebble.log" 2>&1 &
	PEBBLE_PID=$!
	bg_track "$PEBBLE_PID"
	wait_until 10 _port_open "$mport" ||
	    fail "pebble does not listen: $(tail -n 3 "$T/pebble.log")"
	PEBBLE_MGMT="https://127.0.0.1:$mport"
	DIR_URL="https://127.0.0.1:$port/dir"
	TLS_CA="$d/tlsca.pem"
	# Each start makes a new root; certificates verify to the current one.
	ROOT_CA="$d/root.pem"
	curl -sf --cacert "$TLS_CA" "$PEBBLE_MGMT/roots/0" >"$ROOT_CA" ||
	    fail "cannot fetch pebble's root"
}

# _pebble_tls DIR: pebble's own TLS: a throwaway CA and a certificate
# for 127.0.0.1.
_pebble_tls() {
	local d=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/tlsca.key" -out "$d/tlsca.pem" -days 2 \
	    -subj "/CN=pebble test TLS CA" 2>/dev/null ||
	    fail "cannot make pebble's TLS CA"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/tls.key" -out "$d/tls.csr" -subj /CN=localhost \
	    2>/dev/null || fail "cannot make pebble's TLS key"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/ext"
	openssl x509 -req -in "$d/tls.csr" -CA "$d/tlsca.pem" \
	    -CAkey "$d/tlsca.key" -CAcreateserial -days 2 -extfile "$d/ext" \
	    -out "$d/tls.pem" 2>/dev/null || fail "cannot sign pebble's TLS cert"
}

# ---------------------------------------------------------------------

acme_start() {
	HTTP01_PORT=$(free_port)
	TLSALPN_PORT=$(free_port)
	_start_challtestsrv
	case "$ACME_SERVER" in
	certkeepd) _start_certkeepd ;;
	pebble) _start_pebble ;;
	*) fail "ACME_SERVER must be certkeepd or pebble" ;;
	esac
	ok "$ACME_SERVER serves $DIR_URL; DNS on 127.0.0.1:$DNS_PORT;" \
	    "http-01 on $HTTP01_PORT, tls-alpn-01 on $TLSALPN_PORT"
}

# wrong_responder_start PORT: every http-01 request gets a well-formed
# but wrong key authorization.
wrong_responder_start() {
	python3 - "$1" >"$T/wrong-responder.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"wrongtoken.wrongthumbprint"
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
	WRONG_PID=$!
	bg_track "$WRONG_PID"
	wait_until 10 _port_open "$1" || fail "the wrong responder does not listen"
}

wrong_responder_stop() {
	kill "$WRONG_PID" 2>/dev/null || true
	wait "$WRONG_PID" 2>/dev/null || true
}

# check_cert CERT CHAIN NAMES...: verifies to the root through CHAIN (may
# be empty or CERT itself when the file holds the whole chain); the SAN
# list is exactly NAMES.
check_cert() {
	local cert=$1 chain=$2 want got
	shift 2
	[[ -s "$cert" ]] || fail "no certificate at $cert"
	local untrusted=()
	[[ -n "$chain" && -s "$chain" ]] && untrusted=(-untrusted "$chain")
	run openssl verify -CAfile "$ROOT_CA" "${untrusted[@]}" \
	    -purpose sslserver "$cert"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl verify fails for $cert"
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
	got=$(openssl x509 -in "$cert" -noout -ext subjectAltName 2>/dev/null |
	    tail -n +2 | tr ',' '\n' | sed -n 's/^ *DNS://p' | sort | tr '\n' ' ')
	assert_eq "$want" "$got" "the DNS names of $cert"
}

# _pebble_status CERT: "Valid" or "Revoked" from pebble's management API.
_pebble_status() {
	local s
	s=$(openssl x509 -in "$1" -noout -serial | cut -d= -f2 |
	    tr 'A-F' 'a-f' | sed 's/^0*//')
	curl -sf --cacert "$TLS_CA" "$PEBBLE_MGMT/cert-status-by-serial/$s" |
	    sed -n 's/.*"Status": *"\([A-Za-z]*\)".*/\1/p'
}

# _ocsp CERT: good, revoked or unknown from certkeepd's responder.
_ocsp() {
	run openssl ocsp -url "$PUB/ocsp" -issuer "$ROOT_CA" -cert "$1" \
	    -CAfile "$ROOT_CA" -timeout 20 -no_nonce
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl ocsp failed"
	grep -q 'Response verify OK' "$LAST_ERR" "$LAST_OUT" ||
	    fail_cmd "the OCSP response does not verify"
	sed -n 's/^[^ ]*: \(good\|revoked\|unknown\)$/\1/p' "$LAST_OUT" |
	    head -n 1
}

check_good() {
	if [[ "$ACME_SERVER" == pebble ]]; then
		assert_eq Valid "$(_pebble_status "$1")" "pebble's status of $1"
		return 0
	fi
	assert_eq good "$(_ocsp "$1")" "the OCSP status of $1"
}

_crl_lists() {	# _crl_lists SERIAL
	api GET "$PUB/crl/ca.crl"
	[[ "$CODE" == 200 ]] || return 1
	openssl crl -inform DER -in "$BODY" -noout -text 2>/dev/null |
	    grep -q "Serial Number: 0*$1\$"
}

check_revoked() {
	local cert=$1 serial
	if [[ "$ACME_SERVER" == pebble ]]; then
		assert_eq Revoked "$(_pebble_status "$cert")" \
		    "pebble's status of $cert"
		return 0
	fi
	assert_eq revoked "$(_ocsp "$cert")" "the OCSP status of $cert"
	serial=$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)
	wait_until 5 _crl_lists "${serial#"${serial%%[!0]*}"}" ||
	    fail "the CRL does not list $serial"
	api GET "$PUB/crl/ca.crl"
	openssl crl -inform DER -in "$BODY" -out "$T/crl.pem" 2>/dev/null
	expect_fail 'certificate revoked' openssl verify -crl_check \
	    -CAfile "$ROOT_CA" -CRLfile "$T/crl.pem" "$cert"
}

# show_log FILE: the end of a client's log, for a failure message.
show_log() {
	echo "  --- $1 (last 40 lines)" >&2
	tail -n "${2:-40}" "$1" 2>/dev/null | sed 's/^/  | /' >&2
}
