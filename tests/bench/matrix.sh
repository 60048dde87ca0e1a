#!/usr/bin/env bash
# matrix.sh LABEL LOADGEN-ARGS...
#
# Runs loadgen with LOADGEN-ARGS once per concurrency of $CONCURRENCY and
# prints one table in cfssl.sh's format, so that any server (certkeepd,
# another peer) is measured the way cfssl is. Environment:
#   CONCURRENCY="1 8 64"  DURATION=10  WARMUP=2
#   SERVER_PID=PID   also report that process's CPU (cfssl.sh's "server%")
#   OUT=FILE         append every run's JSON line to FILE
# Example (certkeepd issuance over TLS):
#   tests/bench/matrix.sh certkeep \
#     --url https://127.0.0.1:8443/api/v1/certificates --cacert chain.pem \
#     --header "Authorization: Bearer $TOKEN" \
#     --json-template '{"profile":"tls-server","csr":"%CSR%"}' \
#     --csr-dir csrs --expect 'BEGIN CERTIFICATE'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: $0 LABEL LOADGEN-ARGS..." >&2; exit 2; }
label=$1
shift
command -v jq >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null; }
[ -x "$here/bin/loadgen" ] || "$here/build.sh" >/dev/null
hz=$(getconf CLK_TCK)
ticks() { if [ -n "${SERVER_PID:-}" ]; then awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; else echo 0; fi; }

echo "$label: loadgen ${WARMUP:-2}s warm-up + ${DURATION:-10}s per run; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %5s %9s %9s %9s %9s %9s %7s %8s %8s\n' label conc 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' 'max ms' errors 'server%' 'loadgen%'
for c in ${CONCURRENCY:-1 8 64}; do
	t0=$(ticks) w0=$(date +%s.%N)
	line=$("$here/bin/loadgen" "$@" --concurrency "$c" --duration "${DURATION:-10}" \
		--warmup "${WARMUP:-2}" --json --label "$label") || true
	t1=$(ticks) w1=$(date +%s.%N)
	srv=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v w0="$w0" -v w1="$w1" \
		'BEGIN { printf "%.1f", 100 * (b - a) / hz / (w1 - w0) }')
	[ -n "${SERVER_PID:-}" ] || srv=null
	line=$(jq -c --argjson srv "$srv" '. + {server_cpu_pct: $srv}' <<<"$line")
	[ -n "${OUT:-}" ] && printf '%s\n' "$line" >>"$OUT"
	jq -r '[.label, .concurrency, .rps, .latency_ms.p50, .latency_ms.p90, .latency_ms.p99,
		.latency_ms.max, .errors, (.server_cpu_pct // "-"), .cpu_pct] | @tsv' <<<"$line" |
	awk -F'\t' '{ printf "%-10s %5d %9.1f %9.2f %9.2f %9.2f %9.2f %7d %8s %8.1f\n",
		$1, $2, $3, $4, $5, $6, $7, $8, ($9 == "-" ? "-" : sprintf("%.1f", $9)), $10 }'
done
