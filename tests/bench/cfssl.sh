#!/usr/bin/env bash
# cfssl.sh - CFSSL as a peer: certificate issuance over HTTP, measured with
# loadgen at concurrency 1, 8 and 64, without and with cfssl's SQLite
# certificate database, then the machine's crypto ceiling for comparison.
#
#   tests/bench/cfssl.sh
#
# Environment (all optional):
#   DURATION=10   measured seconds per run      WARMUP=2   unmeasured seconds first
#   CONCURRENCY="1 8 64"                         CSRS=2000  size of the CSR pool
#   KEY=ec-p256   CSR key type (or rsa2048)      PORT=18888
#   CSR_DIR=DIR   use these CSRs instead of making new ones
#   OUT=FILE      also append every run's JSON line to FILE
#   NO_CEILING=1  skip ceiling.sh at the end
#   OCSP=0        skip the OCSP part (cfssl ocspserve, see below)
#   KEEP=1        keep the work directory (CA, logs, certs.db)
#
# Installs what it needs with apt-get when missing (golang-cfssl, sqlite3,
# jq, openssl, a C compiler and libssl-dev for loadgen), starts and stops
# cfssl itself, and removes its work directory. Loopback only.
#
# The CA (as in CFSSL's documentation): EC P-256, signing profile with a
# one-year expiry. `cfssl serve -db-config` in this old cfssl (Debian's
# 1.2.0+git20160825) does not create its tables, so certs.db is made from
# the schema of cfssl's certdb SQLite migration (the columns this cfssl
# version writes).
#
# OCSP: up to 500 of the certificates issued into certs.db get responses
# (cfssl ocsprefresh, ocspdump), served by `cfssl ocspserve` from memory
# (pre-signed responses, as RFC 5019 responders do), loaded with POSTed DER
# requests (this cfssl's ocspserve cannot answer GETs: it does not strip
# the leading '/' of the path before base64-decoding it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-1 8 64}
CSRS=${CSRS:-2000}
KEY=${KEY:-ec-p256}
PORT=${PORT:-18888}

say() { printf '%s\n' "$*" >&2; }

# ---- what it needs -----------------------------------------------------------
missing=()
command -v cfssl >/dev/null || missing+=(golang-cfssl)
command -v cfssljson >/dev/null || missing+=(golang-cfssl)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v jq >/dev/null || missing+=(jq)
command -v openssl >/dev/null || missing+=(openssl)
command -v cc >/dev/null || missing+=(gcc)
printf '#include <openssl/ssl.h>\n' | cc -E -x c - >/dev/null 2>&1 || missing+=(libssl-dev)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		say "cfssl.sh: missing ${missing[*]}; run as root or install them"
		exit 1
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
"$here/build.sh" >/dev/null
LOADGEN=$here/bin/loadgen

# ---- work directory, CA, CSRs ---------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/cfssl-bench.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	if [ "${KEEP:-0}" = 1 ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
	say "cfssl.sh: 127.0.0.1:$PORT is already in use (PORT=... to choose another)"
	exit 1
fi

cat >ca-csr.json <<'EOF'
{"CN":"Peer CA","key":{"algo":"ecdsa","size":256},"ca":{"expiry":"87600h"}}
EOF
cfssl genkey -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
cat >config.json <<'EOF'
{"signing":{"default":{"expiry":"8760h","usages":["digital signature","key encipherment","server auth","client auth"]}}}
EOF
cat >db.json <<'EOF'
{"driver":"sqlite3","data_source":"certs.db"}
EOF
# cfssl's certdb SQLite schema (certdb/sqlite/migrations), as this version
# writes it: it inserts serial_number, authority_key_identifier, ca_label,
# status, reason, expiry, revoked_at and pem.
sqlite3 certs.db <<'EOF'
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier)
);
EOF

if [ -n "${CSR_DIR:-}" ]; then
	csrdir=$CSR_DIR
else
	csrdir=$work/csr
	say "making $CSRS $KEY CSRs"
	"$here/gen-csrs.sh" "$CSRS" "$csrdir" "$KEY" >/dev/null
fi

# ---- cfssl up and down -------------------------------------------------------
start_cfssl() { # start_cfssl none|sqlite
	local args=(serve -address 127.0.0.1 -port "$PORT" -ca ca.pem -ca-key ca-key.pem -config config.json)
	[ "$1" = sqlite ] && args+=(-db-config db.json)
	cfssl "${args[@]}" >>"cfssl-$1.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	say "cfssl serve did not start:"; tail -5 "cfssl-$1.log" >&2
	exit 1
}
stop_cfssl() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
}
rows() { sqlite3 -cmd '.timeout 10000' certs.db 'SELECT count(*) FROM certificates'; }
cpu_ticks() { # utime + stime of $pid, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$pid/stat"
}

lg=(--url "http://127.0.0.1:$PORT/api/v1/cfssl/sign"
    --json-template '{"certificate_request":"%CSR%"}' --csr-dir "$csrdir"
    --expect 'BEGIN CERTIFICATE')
hz=$(getconf CLK_TCK)
results=()

measure_ceiling() {
	SECONDS_PER_TEST=${CEILING_SECONDS:-3} JSON=1 "$here/ceiling.sh" ec-p256 "$KEY"
}
if [ "${NO_CEILING:-0}" != 1 ]; then
	say "crypto ceiling (ceiling.sh ec-p256 $KEY)"
	ceil1=$(measure_ceiling)
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average before the runs: $load_before"
for db in none sqlite; do
	start_cfssl "$db"
	# A first request: the server is up and answering.
	"$LOADGEN" "${lg[@]}" --requests 20 >/dev/null || { say "cfssl does not sign:"; tail -5 "cfssl-$db.log" >&2; exit 1; }
	for c in $CONCURRENCY; do
		say "cfssl db=$db concurrency=$c: ${WARMUP}s warm-up + ${DURATION}s"
		t0=$(cpu_ticks); w0=$(date +%s.%N)
		line=$("$LOADGEN" "${lg[@]}" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" \
			--json --label "cfssl db=$db c=$c") || true
		t1=$(cpu_ticks); w1=$(date +%s.%N)
		# Server CPU over the whole run (warm-up included, same load).
		srv=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v w0="$w0" -v w1="$w1" \
			'BEGIN { printf "%.1f", 100 * (b - a) / hz / (w1 - w0) }')
		line=$(jq -c --arg db "$db" --argjson srv "$srv" \
			'. + {peer: "cfssl", database: $db, server_cpu_pct: $srv}' <<<"$line")
		results+=("$line")
		[ -n "${OUT:-}" ] && printf '%s\n' "$line" >>"$OUT"
	done
	if [ "$db" = sqlite ]; then
		# Exactness: N requests = ok + errors, and one new row per ok.
		# Requests still in flight from the last run finish first.
		before=$(rows)
		for _ in $(seq 20); do
			sleep 1
			now=$(rows)
			[ "$now" = "$before" ] && break
			before=$now
		done
		ex=$("$LOADGEN" "${lg[@]}" --requests 1000 --concurrency 8 --json) || true
		after=$(rows)
		ex_ok=$(jq -r .ok <<<"$ex") ex_err=$(jq -r .errors <<<"$ex")
		exact_line="exact count (sqlite, c=8): 1000 requests -> $ex_ok ok + $ex_err errors -> $((after - before)) new rows"
		if [ $((after - before)) -eq "$ex_ok" ] && [ $((ex_ok + ex_err)) -eq 1000 ]; then
			exact_line+=" (consistent)"
		else
			exact_line+=" (MISMATCH)"
		fi
		total_rows=$after
	fi
	stop_cfssl
done

# ---- OCSP ---------------------------------------------------------------------
ocsp_results=()
if [ "${OCSP:-1}" != 0 ]; then
	say "OCSP: responses for up to 500 certificates (cfssl ocsprefresh)"
	mkdir -p certs ocspreq
	sqlite3 -cmd '.timeout 10000' certs.db "SELECT pem FROM certificates LIMIT 500" |
		awk '/-----BEGIN CERTIFICATE-----/ { n++; f = sprintf("certs/c%05d.pem", n) } f { print > f }
		     /-----END CERTIFICATE-----/ { close(f); f = "" }'
	sqlite3 certs.db ".schema" | sqlite3 ocsp.db
	sqlite3 ocsp.db "ATTACH 'certs.db' AS src; INSERT INTO certificates SELECT * FROM src.certificates
		WHERE pem IN (SELECT pem FROM src.certificates LIMIT 500);"
	printf '{"driver":"sqlite3","data_source":"ocsp.db"}\n' >ocsp-db.json
	cfssl ocsprefresh -db-config ocsp-db.json -ca ca.pem -responder ca.pem -responder-key ca-key.pem \
		>ocsprefresh.log 2>&1
	cfssl ocspdump -db-config ocsp-db.json >responses 2>>ocsprefresh.log
	DER_DIR=$work/ocspreq "$here/gen-ocsp-gets.sh" ca.pem certs ocsp-gets.txt / >/dev/null
	cfssl ocspserve -address 127.0.0.1 -port "$PORT" -responses responses >>cfssl-ocsp.log 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
		sleep 0.1
	done
	og=(--url "http://127.0.0.1:$PORT/" --body-dir ocspreq --content-type application/ocsp-request)
	"$LOADGEN" "${og[@]}" --requests 20 >/dev/null || { say "cfssl ocspserve does not answer"; exit 1; }
	# The answers are real OCSP responses for these certificates.
	openssl ocsp -issuer ca.pem -cert certs/c00001.pem -no_nonce -CAfile ca.pem \
		-url "http://127.0.0.1:$PORT/" 2>&1 | grep -q ': good' ||
		{ say "cfssl ocspserve gave no 'good' response"; exit 1; }
	for c in $CONCURRENCY; do
		say "cfssl ocspserve concurrency=$c: ${WARMUP}s warm-up + ${DURATION}s"
		t0=$(cpu_ticks); w0=$(date +%s.%N)
		line=$("$LOADGEN" "${og[@]}" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" \
			--json --label "cfssl ocspserve c=$c") || true
		t1=$(cpu_ticks); w1=$(date +%s.%N)
		srv=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v w0="$w0" -v w1="$w1" \
			'BEGIN { printf "%.1f", 100 * (b - a) / hz / (w1 - w0) }')
		line=$(jq -c --argjson srv "$srv" \
			'. + {peer: "cfssl", database: "ocsp", server_cpu_pct: $srv}' <<<"$line")
		ocsp_results+=("$line")
		[ -n "${OUT:-}" ] && printf '%s\n' "$line" >>"$OUT"
	done
	stop_cfssl
fi

# ---- report ------------------------------------------------------------------
version=$(dpkg-query -W -f '${Version}' golang-cfssl 2>/dev/null || cfssl version | head -1)
echo
echo "CFSSL $version (cfssl serve, HTTP), EC P-256 CA, $KEY CSRs; $(nproc) cores; loadgen ${WARMUP}s warm-up + ${DURATION}s per run"
printf '%-8s %5s %9s %9s %9s %9s %9s %7s %8s %8s\n' database conc 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' 'max ms' errors 'cfssl%' 'loadgen%'
for line in "${results[@]}"; do
	jq -r '[.database, .concurrency, .rps, .latency_ms.p50, .latency_ms.p90, .latency_ms.p99,
		.latency_ms.max, .errors, .server_cpu_pct, .cpu_pct] | @tsv' <<<"$line" |
	awk -F'\t' '{ printf "%-8s %5d %9.1f %9.2f %9.2f %9.2f %9.2f %7d %8.1f %8.1f\n",
		$1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
done
if [ ${#ocsp_results[@]} -gt 0 ]; then
	for line in "${ocsp_results[@]}"; do
		jq -r '[.database, .concurrency, .rps, .latency_ms.p50, .latency_ms.p90, .latency_ms.p99,
			.latency_ms.max, .errors, .server_cpu_pct, .cpu_pct] | @tsv' <<<"$line" |
		awk -F'\t' '{ printf "%-8s %5d %9.1f %9.2f %9.2f %9.2f %9.2f %7d %8.1f %8.1f\n",
			$1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
	done
	echo "  ocsp = POST of a DER OCSP request to cfssl ocspserve (pre-signed responses held in memory)"
fi
echo "  cfssl% = cfssl's CPU over the run (200 = both cores); loadgen% = loadgen's own CPU"
echo "  $exact_line; $total_rows rows in all"
for line in "${results[@]}"; do
	jq -r 'select(.errors > 0) | "  errors at \(.database) c=\(.concurrency): " +
		([.error_classes | to_entries[] | select(.value > 0) | "\(.key) \(.value)"] | join(", "))' <<<"$line"
done
locked=$(grep -c 'database is locked' "$work/cfssl-sqlite.log" || true)
[ "$locked" -gt 0 ] && echo "  cfssl logged 'database is locked' $locked times (SQLite busy under concurrent inserts)"
echo "  load average (1, 5, 15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${NO_CEILING:-0}" != 1 ]; then
	ceil2=$(measure_ceiling)
	c1=$(jq -r .ceiling_certs_per_s <<<"$ceil1") c2=$(jq -r .ceiling_certs_per_s <<<"$ceil2")
	best=$ceil1
	[ "$c2" -gt "$c1" ] && best=$ceil2
	ceil=$(jq -r .ceiling_certs_per_s <<<"$best")
	idle=$(jq -r .ceiling_idle_certs_per_s <<<"$best")
	cost=$(jq -r .crypto_cpu_ms_per_cert <<<"$best")
	echo
	echo "crypto ceiling (ceiling.sh ec-p256 $KEY: CA ecdsap256 sign + CSR verify, OpenSSL):"
	echo "  all cores now: $c1 certificates/s before the runs, $c2 after (the higher counts);" \
		"idle machine: $idle; crypto CPU per certificate: $cost ms"
	printf '%-8s %5s %9s %9s %9s %14s %12s\n' database conc 'req/s' '% ceiling' '% idle' 'cfssl CPU ms' '% crypto'
	for line in "${results[@]}"; do
		jq -r --argjson ceil "$ceil" --argjson idle "$idle" --argjson cost "$cost" '
			(if .rps > 0 then .server_cpu_pct * 10 / .rps else 0 end) as $ms |
			[.database, .concurrency, .rps, 100 * .rps / $ceil, 100 * .rps / $idle, $ms,
			 (if $ms > 0 then 100 * $cost / $ms else 0 end)] | @tsv' <<<"$line" |
		awk -F'\t' '{ printf "%-8s %5d %9.1f %9.1f %9.1f %14.3f %12.1f\n", $1, $2, $3, $4, $5, $6, $7 }'
	done
	echo "  % ceiling = req/s / all-cores ceiling now; % idle = req/s / idle-machine ceiling;"
	echo "  cfssl CPU ms = cfssl's CPU time per certificate; % crypto = the crypto's share of it"
	echo "  (cfssl uses Go's crypto, not OpenSSL's: its share can exceed 100% if Go's is faster)"
	if [ ${#ocsp_results[@]} -gt 0 ]; then
		sign=$(jq -r .ocsp_sign_per_s <<<"$best")
		for line in "${ocsp_results[@]}"; do
			jq -r --argjson s "$sign" '"  ocsp c=\(.concurrency): \(.rps) responses/s = \((1000 * .rps / $s | round) / 10)% of ecdsap256 sign/s now (pre-signed responses need no signature: over 100% is expected)"' <<<"$line"
		done
	fi
fi
