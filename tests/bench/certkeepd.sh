#!/usr/bin/env bash
# certkeepd.sh [ec-p256|rsa2048]
#
# End-to-end benchmark of certkeepd on this machine, everything on
# 127.0.0.1, in one run:
#   1. the crypto ceiling for the key type (ceiling.sh: openssl speed on
#      all cores, 1 / (1/sign + 1/verify));
#   2. a fresh CA home (issuing CA of that key type), certkeepd on it with
#      kernel-chosen ports, an API token, N distinct CSRs of that key type;
#   3. loadgen against POST /api/v1/certificates over HTTPS (keep-alive) at
#      concurrency 1, 8, 64 (CONCURRENCY): certificates/s, p50/p99, and the
#      ratio to the ceiling; every 201 is a durable certificate;
#   4. OCSP: GET /ocsp/<base64> for the issued certificates at concurrency
#      64, answers from the in-memory cache;
#   5. certkeepd's peak memory (VmHWM) and CPU time per certificate
#      (cpu ms/cert: its own threads, its signer process included; svc
#      and sgn ms/cert: the service and the signer process apart; lg
#      ms/cert: loadgen's, which shares the cores), the store's
#      group-commit figures from /metrics.
# Environment: SIGNER_MODE=process (the default: the CA key in certkeepd's
# sandboxed signer process), inprocess (certkeepd --signer-inprocess, the
# key in the service process: only to measure what the isolation costs)
# or softhsm (the signer process, the key in a SoftHSM2 token: a private
# token directory in the scratch directory, the key generated there).
# signer.sh runs them all and prints the ratios.
# CEILING=0 skips step 1 (the ratio column is then 0).
# SERVER_SET="signers = 8; threads = 2" adds [server] settings.
# CONCURRENCY="1 8 64" DURATION=10 WARMUP=2 NCSR=2000 KEEP=1
# (keep the scratch directory), PERF=1 (perf record certkeepd during each
# issuance run, then print its hottest functions and keep perf.data in
# the scratch directory; the figures of that run are then under perf;
# PERF_CG=dwarf for call graphs through libraries without frame pointers,
# PERF_FREQ=299 with it).
# Build first: meson setup build && ninja -C build (or set
# CERTKEEP_BUILD=DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
kt=${1:-ec-p256}
case $kt in ec-p256|rsa2048) ;; *) echo "usage: $0 [ec-p256|rsa2048]" >&2; exit 2 ;; esac
build=${CERTKEEP_BUILD:-$top/build}
ck=$build/certkeep
[ -x "$ck" ] && [ -x "$build/certkeepd" ] || { echo "$0: build certkeep first (ninja -C build)" >&2; exit 1; }
command -v jq >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null; }
[ -x "$here/bin/loadgen" ] || "$here/build.sh" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/certkeep-bench.XXXXXX")
home=$work/ca
cleanup() {
	"$ck" service stop --home "$home" >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
user_opt=()
if [ "$(id -u)" = 0 ]; then
	id certkeep >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin certkeep
	user_opt=(--user certkeep)
	chown certkeep: "$work"
	chmod 711 "$work"
fi
pass=$(openssl rand -base64 24)
ckp() { "$ck" "$@" --passphrase-fd 3 3< <(printf '%s\n' "$pass"); }

ceiling=0
if [ "${CEILING:-1}" != 0 ]; then
	echo "== crypto ceiling ($kt CA, $kt CSRs)"
	ceil_json=$(JSON=1 "$here/ceiling.sh" "$kt" | tail -1)
	echo "$ceil_json"
	ceiling=$(jq -r '.ceiling_certs_per_s' <<<"$ceil_json")
fi

mode=${SIGNER_MODE:-process}
p11_opt=()
case $mode in
process|inprocess) ;;
softhsm)
	module=
	for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
		[ -r "$m" ] && module=$m && break
	done
	[ -n "$module" ] || { echo "$0: SoftHSM2 is not installed" >&2; exit 1; }
	mkdir -m 700 "$work/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	    "$work/tokens" >"$work/softhsm2.conf"
	chmod 644 "$work/softhsm2.conf"
	export SOFTHSM2_CONF=$work/softhsm2.conf
	softhsm2-util --init-token --free --label bench --pin "$pass" --so-pin 97531864 >/dev/null
	[ "$(id -u)" = 0 ] && chown -R certkeep: "$work/tokens"
	p11_opt=(--pkcs11-module "$module" --pkcs11-uri "pkcs11:token=bench;object=ca" --pkcs11-generate)
	;;
*) echo "$0: SIGNER_MODE is process, inprocess or softhsm" >&2; exit 2 ;;
esac

echo "== CA and server (signer: $mode)"
ckp init --home "$home" --root --subject "CN=certkeep bench CA" --key-type "$kt" \
    --domain bench.example.com "${user_opt[@]}" "${p11_opt[@]}" >/dev/null
sed -i -e 's/^api_listen = .*/api_listen = 127.0.0.1:0/' \
    -e 's/^http_listen = .*/http_listen = 127.0.0.1:0/' \
    -e 's/^max_per_ip = .*/max_per_ip = 0/' "$home/certkeep.conf"
# SERVER_SET="signers = 8; threads = 2": more [server] settings.
if [ -n "${SERVER_SET:-}" ]; then
	IFS=';' read -ra sets <<<"$SERVER_SET"
	for kv in "${sets[@]}"; do
		sed -i "/^\[server\]/a ${kv# }" "$home/certkeep.conf"
	done
fi
if [ "$mode" = inprocess ]; then
	# What 'certkeep service start' runs, with the benchmark-only flag.
	"$build/certkeepd" --home "$home" --signer-inprocess \
	    --passphrase-fd 3 3< <(printf '%s\n' "$pass")
else
	ckp service start --home "$home"
fi
pid=$(cat "$home/certkeepd.pid")
api=$(sed -n 's/^api //p' "$home/certkeepd.urls")
pub=$(sed -n 's/^http //p' "$home/certkeepd.urls")
token=$("$ck" token create --home "$home" --name bench --profiles tls-server 2>/dev/null)
cp "$home/ca.pem" "$work/root.pem"
chmod 644 "$work/root.pem"

echo "== ${NCSR:-2000} CSRs"
"$here/gen-csrs.sh" "${NCSR:-2000}" "$work/csrs" "$kt" >/dev/null

hz=$(getconf CLK_TCK)
# certkeepd's CPU: the service process and its signer process.
signer=$(cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m1 . || true)
# Ticks of the service process, then of the signer process (0 in-process).
cpu_ticks() {
	local g=0
	[ -n "$signer" ] && g=$(awk '{ print $14 + $15 }' "/proc/$signer/stat")
	echo "$(awk '{ print $14 + $15 }' "/proc/$pid/stat") $g"
}
issued() { curl -s "$pub/metrics" | awk '/^certkeep_certificates_issued_total/ { print $2 }'; }

echo "== issuance over HTTPS"
printf '%-6s %10s %9s %9s %9s %8s %12s %12s %10s %12s %12s\n' conc 'certs/s' 'p50 ms' 'p99 ms' errors ratio 'cpu ms/cert' 'lg ms/cert' 'batch' 'svc ms/cert' 'sgn ms/cert'
commit_stats() { curl -s "$pub/metrics" | awk '/^certkeep_store_committed_items_total/ {i=$2} /^certkeep_store_commits_total/ {c=$2} END { print i + 0, c + 0 }'; }
for c in ${CONCURRENCY:-1 8 64}; do
	read -r i0 k0 < <(commit_stats)
	read -r s0 g0 < <(cpu_ticks); n0=$(issued)
	perf_pid=
	if [ "${PERF:-0}" = 1 ]; then
		perf record -q -F "${PERF_FREQ:-999}" --call-graph "${PERF_CG:-fp}" -p "$pid${signer:+,$signer}" -o "$work/perf-c$c.data" \
		    -- sleep $(( ${DURATION:-10} + ${WARMUP:-2} )) 2>/dev/null &
		perf_pid=$!
	fi
	line=$("$here/bin/loadgen" --url "$api/api/v1/certificates" --cacert "$work/root.pem" \
	    --header "Authorization: Bearer $token" \
	    --json-template '{"profile":"tls-server","csr":"%CSR%"}' --csr-dir "$work/csrs" \
	    --expect 'BEGIN CERTIFICATE' --concurrency "$c" --duration "${DURATION:-10}" \
	    --warmup "${WARMUP:-2}" --json --label "certkeep-$kt") || true
	read -r s1 g1 < <(cpu_ticks); n1=$(issued)
	[ -n "$perf_pid" ] && wait "$perf_pid"
	# Items (pending rows, issued rows, other writes) per durable
	# transaction during this run.
	read -r i1 k1 < <(commit_stats)
	batch=$(awk -v i=$((i1 - i0)) -v k=$((k1 - k0)) 'BEGIN { if (k) printf "%.1f", i / k }')
	jq -r --arg ceil "${ceiling:-0}" --arg hz "$hz" --arg t "$((s1 - s0 + g1 - g0))" --arg n "$((n1 - n0))" --arg b "$batch" \
	    --arg ts "$((s1 - s0))" --arg tg "$((g1 - g0))" \
	    '[.concurrency, .rps, .latency_ms.p50, .latency_ms.p99, .errors,
	      (if ($ceil|tonumber) > 0 then .rps / ($ceil|tonumber) else 0 end),
	      (if ($n|tonumber) > 0 then 1000 * ($t|tonumber) / ($hz|tonumber) / ($n|tonumber) else 0 end),
	      (if .ok > 0 then 1000 * (.cpu_user_s + .cpu_sys_s) / .ok else 0 end), $b,
	      (if ($n|tonumber) > 0 then 1000 * ($ts|tonumber) / ($hz|tonumber) / ($n|tonumber) else 0 end),
	      (if ($n|tonumber) > 0 then 1000 * ($tg|tonumber) / ($hz|tonumber) / ($n|tonumber) else 0 end)] | @tsv' <<<"$line" |
	awk -F'\t' '{ printf "%-6d %10.1f %9.2f %9.2f %9d %8.3f %12.3f %12.3f %10s %12.3f %12.3f\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
done

if [ "${PERF:-0}" = 1 ]; then
	for c in ${CONCURRENCY:-1 8 64}; do
		echo "== perf, concurrency $c: self time by shared object and symbol ($work/perf-c$c.data)"
		perf report -i "$work/perf-c$c.data" --no-children --sort dso,symbol -g none 2>/dev/null |
		    grep -v '^#' | grep -v '^$' | head -${PERF_TOP:-40}
	done
fi

echo "== OCSP (GET, cached answers)"
mkdir -p "$work/certs"
"$ck" list --home "$home" --status issued --limit 500 | awk 'NR > 1 { print $1 }' |
while read -r s; do "$ck" show --home "$home" --pem "$s" >"$work/certs/$s.pem" 2>/dev/null || true; done
"$here/gen-ocsp-gets.sh" "$work/root.pem" "$work/certs" "$work/gets.txt" /ocsp >/dev/null
"$here/bin/loadgen" --url "$pub/" --get-file "$work/gets.txt" --concurrency 64 \
    --duration "${DURATION:-10}" --warmup "${WARMUP:-2}" --json --label "certkeep-ocsp" |
    jq -r '"ocsp: \(.rps|floor) responses/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, errors \(.errors)"'

echo "== certkeepd"
awk '/^VmHWM/ { printf "peak memory (VmHWM): %s %s\n", $2, $3 }' "/proc/$pid/status"
curl -s "$pub/metrics" | grep -E '^certkeep_(certificates_issued_total|store_commits_total|store_committed_items_total|store_largest_batch|ocsp_(requests|cached|signed)_total) '
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
