#!/usr/bin/env bash
# acme.sh - ACME throughput: complete flows (account, order, http-01,
# finalize, download) against certkeepd and pebble in one run, same
# driver (acme_load.py), same DNS (pebble-challtestsrv), same machine.
#
#   1. pebble-challtestsrv as the DNS server of both (every name ->
#      127.0.0.1); the driver's own http-01 responder on one port, which
#      both servers validate against;
#   2. certkeepd: a fresh EC P-256 root CA, the tls-server profile taking
#      the bench domain, [acme] pointed at that DNS and port, no rate
#      limits;
#   3. pebble (Debian's package), started afresh for each run:
#      PEBBLE_VA_NOSLEEP=1 (no random 0-15 s validation delay),
#      PEBBLE_VA_ALWAYS_VALID unset (it really fetches the http-01 answer,
#      as certkeepd does), PEBBLE_WFE_NONCEREJECT=0 (no deliberate
#      badNonce), PEBBLE_AUTHZREUSE=0;
#   4. for each concurrency in CONCURRENCY, certkeepd then pebble:
#      acme_load.py for DURATION s after WARMUP s; orders/s, p50/p99 per
#      flow, failed and timed-out flows, the median of each step, the
#      server's CPU time per order (/proc/PID/stat) and the driver's own
#      CPU per flow (its ceiling on this machine);
#   5. REST=1 (default): certkeepd's raw issuance over its REST API on the
#      same server (loadgen, concurrency 8, DURATION s), for scale.
#
# Environment: CONCURRENCY="1 4 8 32" DURATION=20 WARMUP=3 REST=1 KEEP=1
# (keep the scratch directory) OUT=FILE (append the JSON lines),
# CERTKEEP_BUILD (default build). Run as root to install what is missing
# (pebble, python3-cryptography, jq).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${CERTKEEP_BUILD:-$top/build}
ck=$build/certkeep
CONCURRENCY=${CONCURRENCY:-"1 4 8 32"}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
REST=${REST:-1}
[ -x "$ck" ] && [ -x "$build/certkeepd" ] ||
    { echo "$0: build certkeep first (ninja -C build)" >&2; exit 1; }

need=()
command -v pebble >/dev/null || need+=(pebble)
command -v jq >/dev/null || need+=(jq)
# The driver runs under Debian's python3 (with its cryptography package).
py=/usr/bin/python3
"$py" -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography)
if [ "${#need[@]}" -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "$0: install ${need[*]}" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
work=$(mktemp -d "${TMPDIR:-/tmp}/certkeep-bench-acme.XXXXXX")
home=$work/ca
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	"$ck" service stop --home "$home" >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	"$py" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {	# wait_port PORT WHAT
	local i
	for i in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done
	echo "$0: $2 does not listen on $1" >&2
	exit 1
}
# cpu_s PID: user + system seconds of a process so far.
cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' \
	    "/proc/$1/stat"
}

domain=bench.acme.test
resp_port=$(free_port)
dns_port=$(free_port)
mgmt_port=$(free_port)

echo "== DNS (pebble-challtestsrv on 127.0.0.1:$dns_port)"
pebble-challtestsrv -dns01 "127.0.0.1:$dns_port" -http01 "" -https01 "" \
    -tlsalpn01 "" -management "127.0.0.1:$mgmt_port" \
    -defaultIPv4 127.0.0.1 -defaultIPv6 "" >"$work/challtestsrv.log" 2>&1 &
pids+=($!)
wait_port "$mgmt_port" pebble-challtestsrv

echo "== certkeepd"
user_opt=()
if [ "$(id -u)" = 0 ]; then
	id certkeep >/dev/null 2>&1 ||
	    useradd --system --no-create-home --shell /usr/sbin/nologin certkeep
	user_opt=(--user certkeep)
	chmod 711 "$work"
fi
pass=$(openssl rand -base64 24)
ckp() { "$ck" "$@" --passphrase-fd 3 3< <(printf '%s\n' "$pass"); }
# The tls-server profile takes the ACME names and gen-csrs.sh's (REST).
ckp init --home "$home" --root --subject "CN=certkeep ACME bench CA" \
    --key-type ec-p256 --domain bench.example.com "${user_opt[@]}" >/dev/null
sed -i -e 's/^api_listen = .*/api_listen = 127.0.0.1:0/' \
    -e 's/^http_listen = .*/http_listen = 127.0.0.1:0/' \
    -e 's/^max_per_ip = .*/max_per_ip = 0/' \
    -e "/^\[profile.tls-server\]/,/^\[/ s/^dns_suffixes = .*/dns_suffixes = bench.example.com, $domain/" \
    "$home/certkeep.conf"
cat >>"$home/certkeep.conf" <<EOF

[acme]
dns_servers = 127.0.0.1:$dns_port
http01_port = $resp_port
tlsalpn01_port = $(free_port)
# The driver's responder is on 127.0.0.1.
validation_allow_loopback = true
caa_identity =
orders_per_hour = 0
certs_per_name_per_week = 0
EOF
ckp service start --home "$home" >/dev/null
ck_pid=$(cat "$home/certkeepd.pid")
api=$(sed -n 's/^api //p' "$home/certkeepd.urls")
cp "$home/ca.pem" "$work/ck-root.pem"
echo "certkeepd $ck_pid at $api/acme/directory"

# Pebble starts afresh for every run: its in-memory store grows, and
# pebble 2.4 can deadlock under concurrent load (see README.md), which
# must not spill into the next run.
mkdir -p "$work/pebble"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/pebble/tls.key" -out "$work/pebble/tls.pem" -days 2 \
    -subj /CN=localhost -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
    2>/dev/null
pb_pid=
pebble_start() {
	local port mgmt
	port=$(free_port)
	mgmt=$(free_port)
	cat >"$work/pebble/config.json" <<EOF
{ "pebble": {
    "listenAddress": "127.0.0.1:$port",
    "managementListenAddress": "127.0.0.1:$mgmt",
    "certificate": "$work/pebble/tls.pem",
    "privateKey": "$work/pebble/tls.key",
    "httpPort": $resp_port, "tlsPort": $(free_port),
    "ocspResponderURL": "", "externalAccountBindingRequired": false } }
EOF
	PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
	    pebble -config "$work/pebble/config.json" \
	    -dnsserver "127.0.0.1:$dns_port" >>"$work/pebble.log" 2>&1 &
	pb_pid=$!
	pids+=("$pb_pid")
	wait_port "$port" pebble
	pb_dir="https://127.0.0.1:$port/dir"
}
pebble_stop() {
	kill "$pb_pid" 2>/dev/null || true
	wait "$pb_pid" 2>/dev/null || true
}

# run NAME DIR CACERT PID CONC: one measurement; prints the JSON line with
# the server's CPU per order added.
run() {
	local name=$1 dir=$2 ca=$3 pid=$4 conc=$5 c0 c1 j
	c0=$(cpu_s "$pid")
	j=$("$py" "$here/acme_load.py" --dir "$dir" --cacert "$ca" \
	    --responder-port "$resp_port" --concurrency "$conc" \
	    --duration "$DURATION" --warmup "$WARMUP" --domain "$domain" \
	    --label "$name" --json) || true
	c1=$(cpu_s "$pid")
	[ -n "$j" ] || { echo "$0: the driver failed ($name, c=$conc)" >&2; exit 1; }
	# The server's CPU covers warm-up and tail too: divide by every flow.
	jq -c --argjson c "$(awk -v a="$c1" -v b="$c0" 'BEGIN { print a - b }')" \
	    --arg la "$(cut -d' ' -f1-3 /proc/loadavg)" \
	    '. + {server_cpu_s: $c, server_cpu_ms_per_order:
	    (if .flows_all > 0 then ($c * 10000 / .flows_all | round) / 10
	    else 0 end), loadavg: $la}' <<<"$j"
}

results=$work/results.jsonl
: >"$results"
echo "== ACME flows (DURATION=$DURATION s after WARMUP=$WARMUP s)"
for c in $CONCURRENCY; do
	run certkeepd "$api/acme/directory" "$work/ck-root.pem" "$ck_pid" "$c" |
	    tee -a "$results"
	pebble_start
	run pebble "$pb_dir" "$work/pebble/tls.pem" "$pb_pid" "$c" |
	    tee -a "$results"
	pebble_stop
done

rest_line=
if [ "$REST" = 1 ]; then
	echo "== certkeepd REST issuance (loadgen, concurrency 8, $DURATION s)"
	[ -x "$here/bin/loadgen" ] || "$here/build.sh" >/dev/null
	"$here/gen-csrs.sh" 2000 "$work/csrs" ec-p256 >/dev/null
	token=$("$ck" token create --home "$home" --name bench \
	    --profiles tls-server 2>/dev/null)
	rest_line=$("$here/bin/loadgen" --url "$api/api/v1/certificates" \
	    --cacert "$work/ck-root.pem" \
	    --header "Authorization: Bearer $token" \
	    --json-template '{"profile":"tls-server","csr":"%CSR%"}' \
	    --csr-dir "$work/csrs" --expect 'BEGIN CERTIFICATE' \
	    --concurrency 8 --duration "$DURATION" --warmup 2 --json --show-errors 2 \
	    --label rest || true)
	echo "$rest_line"
fi

echo
echo "| server | conc | orders/s | p50 ms | p99 ms | max ms | failed | timed out | server CPU ms/order | driver CPU ms/flow | driver ceiling flows/s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
jq -r '"| \(.label) | \(.concurrency) | \(.orders_per_s) | \(.p50_ms) | \(.p99_ms) | \(.max_ms) | \(.flows_failed) | \(.timeouts) | \(.server_cpu_ms_per_order) | \(.driver_cpu_ms_per_flow) | \(.driver_ceiling_per_s) |"' "$results"
if [ -n "$rest_line" ]; then
	echo
	jq -r '"certkeepd REST issuance, concurrency 8: \(.rps) certificates/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, \(.errors) errors"' \
	    <<<"$rest_line"
fi
jq -r 'select(.errors | length > 0) | "errors (\(.label), c=\(.concurrency)): \(.errors | join("; "))"' "$results"
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "${OUT:-}" ] && cat "$results" >>"$OUT"
exit 0
