#!/usr/bin/env bash
# selftest.sh - checks loadgen against testserver.py (plain and TLS): exact
# request counts on every response framing (Content-Length, chunked, read to
# close, HTTP/1.0, 100 Continue), JSON escaping of the CSRs, GET mode, each
# error class, TLS verification, resumption, duration/warm-up and threads.
# Needs openssl and python3 (installed with apt-get when missing, as root).
# Ends with "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need() { command -v "$1" >/dev/null || { [ "$(id -u)" = 0 ] &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }; }
need python3 python3
need openssl openssl
"$here/build.sh" >/dev/null || exit 1
L=$here/bin/loadgen
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT

passed=0 failed=0
check() { # check NAME CONDITION-EXIT-STATUS
	if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "ok   $1"
	else failed=$((failed + 1)); echo "FAIL $1"; fi
}
# field JSON KEY (dotted path)
field() { python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"; }

"$here/gen-csrs.sh" 50 "$T/csr" >/dev/null || exit 1
# A CA and a certificate for 127.0.0.1 and localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" \
	-out "$T/ca.pem" -subj /CN=selftest-ca -days 2 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/srv.key" \
	-out "$T/srv.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
	-days 2 -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" \
	-out "$T/other.pem" -subj /CN=other -days 2 2>/dev/null

start() { # start NAME ARGS... -> sets PORT_NAME
	python3 "$here/testserver.py" --token s3cret "${@:2}" >"$T/$1.port" 2>"$T/$1.log" &
	pids+=($!)
	for _ in $(seq 50); do [ -s "$T/$1.port" ] && break; sleep 0.1; done
	printf -v "PORT_$1" '%s' "$(head -1 "$T/$1.port")"
}
start plain
start tls --cert "$T/srv.pem" --key "$T/srv.key"
# shellcheck disable=SC2154
base_plain=http://127.0.0.1:$PORT_plain
# shellcheck disable=SC2154
base_tls=https://127.0.0.1:$PORT_tls
counts() { curl -s "$1/count" 2>/dev/null || python3 -c 'import sys,urllib.request,ssl
c=ssl.create_default_context(cafile=sys.argv[2]) if sys.argv[1].startswith("https") else None
print(urllib.request.urlopen(sys.argv[1]+"/count",context=c).read().decode())' "$1" "$T/ca.pem"; }
auth=(--header 'Authorization: Bearer s3cret')
post=(--json-template '{"profile":"tls-server","csr":"%CSR%"}' --csr-dir "$T/csr")

N=1000
for scheme in plain tls; do
	if [ $scheme = plain ]; then base=$base_plain tlsopt=(); else base=$base_tls tlsopt=(--cacert "$T/ca.pem"); fi
	for path in cl chunked eof http10 continue; do
		before=$(field "$(counts "$base")" "/$path" 2>/dev/null || echo 0)
		out=$("$L" --url "$base/$path" "${tlsopt[@]}" "${auth[@]}" "${post[@]}" \
			--expect 'BEGIN CERTIFICATE' --requests $N --concurrency 8 --json)
		rc=$?
		after=$(field "$(counts "$base")" "/$path")
		[ $rc -eq 0 ] && [ "$(field "$out" ok)" = $N ] && [ "$(field "$out" errors)" = 0 ] &&
			[ $((after - before)) -eq $N ]
		check "$scheme /$path: $N requests, $N ok, server saw exactly $N" $?
	done
	c=$(counts "$base")
	[ "$(field "$c" distinct_csrs)" = 50 ] && ! grep -q bad_body <<<"$c"
	check "$scheme: every CSR arrived intact as JSON (50 distinct, no bad body)" $?
	out=$("$L" --url "$base/cl" "${tlsopt[@]}" "${auth[@]}" "${post[@]}" --requests 300 --concurrency 4 --json)
	c1=$(field "$out" connections)
	[ "$c1" = 4 ]
	check "$scheme: keep-alive (300 requests over 4 connections, got $c1)" $?
done

# GET mode: absolute, relative and whole-URL lines, comments skipped.
printf '/ocsp/MFYwVKADAgEAME0wSzBJMAkGBSsOAwIaBQAEFA%%3D%%3D\n# comment\nMEMwQTA%%2F\n%s/ocsp/abc\n' \
	"$base_plain" >"$T/get.txt"
before=$(field "$(counts "$base_plain")" "/ocsp/abc" 2>/dev/null || echo 0)
out=$("$L" --url "$base_plain/ocsp" "${auth[@]}" --get-file "$T/get.txt" --requests 300 --concurrency 3 --json)
[ $? -eq 0 ] && [ "$(field "$out" ok)" = 300 ] && [ "$(field "$out" method)" = GET ]
check "GET mode: 300 ok" $?
after=$(field "$(counts "$base_plain")" "/ocsp/abc")
[ $((after - before)) -eq 100 ]
check "GET mode: the 3 paths in turn (100 of /ocsp/abc, got $((after - before)))" $?

# Error classes.
out=$("$L" --url "$base_plain/status500" "${auth[@]}" "${post[@]}" --requests 50 --concurrency 2 --json)
[ $? -eq 1 ] && [ "$(field "$out" error_classes.status_5xx)" = 50 ] && [ "$(field "$out" ok)" = 0 ]
check "500s counted as status_5xx, exit 1" $?
out=$("$L" --url "$base_tls/nomatch" --cacert "$T/ca.pem" "${auth[@]}" "${post[@]}" \
	--expect 'BEGIN CERTIFICATE' --requests 50 --concurrency 2 --json)
[ "$(field "$out" error_classes.expect)" = 50 ]
check "2xx without --expect counted as expect" $?
out=$("$L" --url "$base_plain/cl" "${post[@]}" --requests 20 --json)
[ "$(field "$out" error_classes.status_4xx)" = 20 ]
check "no Authorization: 401s counted as status_4xx" $?
out=$("$L" --url "$base_plain/slow" "${auth[@]}" "${post[@]}" --requests 2 --concurrency 2 --timeout 1 --json)
[ "$(field "$out" error_classes.timeout)" = 2 ]
check "--timeout 1 on a 3 s response: timeout errors" $?
out=$("$L" --url "http://127.0.0.1:1/x" --requests 3 --json 2>/dev/null)
[ "$(field "$out" error_classes.connect)" = 3 ]
check "refused connections counted as connect" $?
"$L" --url "http://192.0.2.1/" --requests 1 >/dev/null 2>&1
[ $? -eq 2 ]
check "a non-loopback target is refused" $?

# TLS verification.
out=$("$L" --url "$base_tls/cl" --cacert "$T/other.pem" "${auth[@]}" "${post[@]}" --requests 5 --json 2>/dev/null)
[ "$(field "$out" error_classes.tls)" = 5 ]
check "TLS: an untrusted server fails verification" $?
out=$("$L" --url "$base_tls/cl" --cacert "$T/ca.pem" --verify-name www.example.com "${auth[@]}" "${post[@]}" \
	--requests 5 --json 2>/dev/null)
[ "$(field "$out" error_classes.tls)" = 5 ]
check "TLS: a name mismatch fails verification" $?
out=$("$L" --url "https://localhost:$PORT_tls/cl" --cacert "$T/ca.pem" "${auth[@]}" "${post[@]}" --requests 5 --json)
[ "$(field "$out" ok)" = 5 ]
check "TLS: a DNS name (localhost) verifies" $?
out=$("$L" --url "$base_tls/cl" --insecure "${auth[@]}" "${post[@]}" --requests 5 --json)
[ "$(field "$out" ok)" = 5 ]
check "TLS: --insecure" $?
out=$("$L" --url "$base_tls/cl" --cacert "$T/ca.pem" "${auth[@]}" "${post[@]}" --no-keepalive \
	--requests 100 --concurrency 2 --json)
[ "$(field "$out" ok)" = 100 ] && [ "$(field "$out" connections)" = 100 ] && [ "$(field "$out" tls_resumed)" -ge 90 ]
check "TLS: --no-keepalive, one connection per request, sessions resumed ($(field "$out" tls_resumed)/100)" $?

# Duration, warm-up, threads.
out=$("$L" --url "$base_plain/cl" "${auth[@]}" "${post[@]}" --duration 1.5 --warmup 0.5 --concurrency 4 --threads 2 --json)
el=$(field "$out" elapsed_s)
[ $? -eq 0 ] && [ "$(field "$out" ok)" -gt 0 ] && [ "$(field "$out" threads)" = 2 ] &&
	awk -v e="$el" 'BEGIN { exit !(e >= 1.45 && e <= 1.6) }'
check "--duration 1.5 --warmup 0.5 --threads 2 (elapsed $el s)" $?
out=$("$L" --url "$base_tls/chunked" --cacert "$T/ca.pem" "${auth[@]}" "${post[@]}" --expect CERTIFICATE \
	--requests 1001 --concurrency 7 --threads 3 --json)
[ "$(field "$out" ok)" = 1001 ] && [ "$(field "$out" errors)" = 0 ]
check "1001 requests over 3 threads, exact" $?

echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
