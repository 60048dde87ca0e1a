#!/usr/bin/env bash
# limits.sh - slow and abusive clients: a client that sends half a request
# line and stalls is cut off after [server] timeout while others are
# served meanwhile; connections from one address beyond max_per_ip are
# refused while the server stays up; 64 KiB of headers get a 4xx or a
# closed connection. certkeepd answers /health after each. Only bash
# (/dev/tcp), coreutils, openssl and curl.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
conf_set "$ca" server timeout 2
srv_start "$ca"
TOK=$(srv_token "$ca" limits tls-server)
auth=(-H "Authorization: Bearer $TOK")

hostport() { local u=${1#*://}; echo "${u%%/*}"; }
PUB_PORT=$(hostport "$PUB")
PUB_PORT=${PUB_PORT##*:}
API_PORT=$(hostport "$API")
API_PORT=${API_PORT##*:}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# closed_within FD SECONDS OUT: 0 if the server closes (or resets) FD
# within SECONDS; whatever it sent before closing goes to OUT.
closed_within() {
	local rc=0
	timeout "$2" cat <&"$1" >"$3" 2>/dev/null || rc=$?
	[[ $rc -ne 124 ]]
}

say "a stalled request line is cut off after 'timeout = 2'"
exec 5<>"/dev/tcp/127.0.0.1/$PUB_PORT" || fail "cannot connect to $PUB"
printf 'GET /hea' >&5
# And a connection to the TLS port that never starts its handshake.
exec 6<>"/dev/tcp/127.0.0.1/$API_PORT" || fail "cannot connect to $API"
t0=$(now_ms)
# Others are served meanwhile.
srv_csr "$T/www.csr" "www.$SRV_DOMAIN"
json_body tls-server "$T/www.csr" >"$T/www.json"
api_issue auth "$T/www.json" "$T/www.pem"
t_issue=$(( $(now_ms) - t0 ))
_health_ok || fail "/health is not answered during the stall"
closed_within 5 15 "$T/stall.out" ||
    fail "the stalled plain HTTP connection is still open after 15 s"
t_cut=$(( $(now_ms) - t0 ))
closed_within 6 15 "$T/stall-tls.out" ||
    fail "the stalled TLS connection is still open after 15 s"
t_cut_tls=$(( $(now_ms) - t0 ))
exec 5>&- 6>&-
(( t_cut >= 1500 )) || fail "the stalled connection was cut after ${t_cut} ms, before the timeout"
(( t_cut <= 8000 )) || fail "the stalled connection was cut only after ${t_cut} ms"
(( t_cut_tls <= 8000 )) || fail "the stalled TLS connection was cut only after ${t_cut_tls} ms"
# Whatever it got (nothing, or an error status) was no 200.
if [[ -s "$T/stall.out" ]]; then
	assert_no_grep '^HTTP/1\.[01] 2' "$T/stall.out" "the stalled client's answer"
fi
_health_ok || fail "/health is not answered after the stall"
ok "cut off after ${t_cut} ms (TLS: ${t_cut_tls} ms); serial $SERIAL issued meanwhile in ${t_issue} ms"

say "more connections from one address than max_per_ip = 4"
srv_stop "$ca"
conf_set "$ca" server timeout 30
conf_set "$ca" server max_per_ip 4
srv_start "$ca"
PUB_PORT=$(hostport "$PUB")
PUB_PORT=${PUB_PORT##*:}
# Four connections, each proven accepted by one keep-alive request (so
# that each one counts), then left idle.
for fd in 5 6 7 8; do
	eval "exec $fd<>/dev/tcp/127.0.0.1/$PUB_PORT" ||
	    fail "cannot open connection $fd"
	printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
	line=
	read -r -t 10 -u "$fd" line || fail "no answer on held connection $fd"
	[[ "$line" == "HTTP/1.1 200"* ]] || fail "held connection $fd got '$line'"
done
# The fifth is refused (closed without an answer, or an error status).
api GET "$PUB/health"
[[ "$CODE" != 200 ]] || fail "a fifth connection from 127.0.0.1 was served"
fifth="HTTP $CODE, curl exit $CURL_RC"
exec 9<>"/dev/tcp/127.0.0.1/$PUB_PORT" || fail "the listener is gone"
# (In a subshell: the server may already have closed it.)
(printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&9) 2>/dev/null || true
closed_within 9 10 "$T/fifth.out" || fail "a fifth raw connection stays open"
exec 9>&-
if [[ -s "$T/fifth.out" ]]; then
	assert_no_grep '^HTTP/1\.[01] 200' "$T/fifth.out" "the fifth connection's answer"
fi
srv_running "$ca" || fail "certkeepd died under too many connections"
# The API listener has its own count: it still serves.
api_issue auth "$T/www.json" "$T/www2.pem"
exec 5>&- 6>&- 7>&- 8>&-
wait_until 10 _health_ok || fail "/health is not answered once the connections are closed"
ok "fifth refused ($fifth); served again once the four closed"

say "64 KiB of headers"
big=$(head -c 65536 /dev/zero | tr '\0' 'a')
printf 'X-Big: %s\r\n' "$big" >"$T/bighdr"
api GET "$PUB/health" -H "@$T/bighdr"
if [[ "$CODE" != 000 ]]; then
	(( CODE >= 400 && CODE < 500 )) || fail "64 KiB of headers got HTTP $CODE"
fi
pub_answer="${CODE/000/connection closed}"
# Many smaller headers adding up to 64 KiB, on the TLS port with a token.
: >"$T/manyhdr"
for i in $(seq 64); do
	printf 'X-H%d: %s\r\n' "$i" "${big:0:1000}" >>"$T/manyhdr"
done
api POST "$API/api/v1/certificates" "${auth[@]}" \
    -H 'Content-Type: application/json' -H "@$T/manyhdr" \
    --data-binary "@$T/www.json"
if [[ "$CODE" != 000 ]]; then
	(( CODE >= 400 && CODE < 500 )) || fail "64 headers of 1 KiB got HTTP $CODE"
fi
api_answer="${CODE/000/connection closed}"
srv_running "$ca" || fail "certkeepd died on big headers"
wait_until 10 _health_ok || fail "/health is not answered after big headers"
api_issue auth "$T/www.json" "$T/www3.pem"
ok "plain HTTP: $pub_answer; API: $api_answer; still serving"

srv_stop "$ca"
ok "stopped"
