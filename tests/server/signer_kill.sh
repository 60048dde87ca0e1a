#!/usr/bin/env bash
# signer_kill.sh - certkeepd fails closed when its signer process dies:
# after a kill -9 of the signer (under load), no issuance is answered
# 201, certkeepd stops serving and exits non-zero, the audit log says why
# ('service-stop' failed: the signer process died), every certificate a
# client received verifies, and nothing is left pending as if signed. In
# the foreground, certkeepd exits 3 (not restarted by the systemd unit)
# and its stderr says so plainly.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
srv_start "$ca"
TOK=$(srv_token "$ca" load tls-server)
auth=(-H "Authorization: Bearer $TOK")
json=(-H 'Content-Type: application/json')

# The signer is certkeepd's only child.
signer_of() { cat "/proc/$1/task/"*/children 2>/dev/null | tr ' ' '\n' |
    grep -m1 .; }

say "certkeepd runs a signer process that is not itself"
SIG=$(signer_of "$SRV_PID")
[[ -n $SIG ]] || fail "certkeepd has no child process"
[[ $(tr -d '\0' <"/proc/$SIG/comm") == certkeep-signe* ]] ||
    fail "the child is not the signer: $(cat "/proc/$SIG/comm")"
grep -q '^Seccomp:[[:space:]]*2' "/proc/$SIG/status" ||
    fail "the signer is not under a seccomp filter"
grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$SIG/status" ||
    fail "the signer may gain privileges"
ok "signer pid $SIG, seccomp filter mode, no new privileges"

srv_csr "$T/a.csr" "a.$SRV_DOMAIN"
json_body tls-server "$T/a.csr" 30 >"$T/a.json"
api_issue auth "$T/a.json" "$T/a.pem"
expect_ok openssl verify -CAfile "$SRV_CA" "$T/a.pem"

say "a sub-CA through certkeepd: refused by the signer process"
make_key ec-p256 "$T/sub.key"
make_csr "$T/sub.key" "$T/sub.csr" "/CN=Sub CA" PEM
expect_fail 'the signer process issues no CA certificates: issue them offline with certkeep issue while certkeepd is stopped' \
    ck issue --home "$ca" --profile sub-ca --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/sub.csr"
ok "certkeep issue --profile sub-ca names the way to do it"

say "kill -9 of the signer under load"
mkdir "$T/load"
worker() {
	local w=$1 j f
	for j in $(seq 40); do
		f="$T/load/w$w-$j"
		curl -sS --max-time 30 --cacert "$SRV_CA" "${auth[@]}" \
		    "${json[@]}" --data-binary "@$T/a.json" -o "$f.out" \
		    -w '%{http_code}' "$API/api/v1/certificates" \
		    >"$f.code" 2>/dev/null || true
	done
}
for w in 1 2 3 4; do worker "$w" & bg_track $!; done
sleep 0.5
kill -9 "$SIG"
wait
# Every 201 carries a certificate that verifies; after the kill there
# are only failures.
n201=0
for f in "$T"/load/*.code; do
	c=$(cat "$f")
	if [[ $c == 201 ]]; then
		n201=$((n201 + 1))
		json_str "${f%.code}.out" certificate >"$T/got.pem"
		expect_ok openssl verify -CAfile "$SRV_CA" "$T/got.pem"
	fi
done
ok "$n201 issued before the kill, all verify"

say "certkeepd stopped, non-zero, and says why"
wait_until 20 bash -c "! kill -0 $SRV_PID 2>/dev/null" ||
    fail "certkeepd still runs after its signer died"
api POST "$API/api/v1/certificates" "${auth[@]}" "${json[@]}" \
    --data-binary "@$T/a.json"
[[ $CODE != 201 && $CODE != 200 ]] || fail "issued after the signer died"
_audit_show "$ca" | grep ' service-stop ' | tail -n 1 >"$T/stop"
assert_grep 'service-stop +failed .*signer process died' "$T/stop" \
    "the audit entry of the stop"
# Every certificate handed out is recorded as issued (a signed one may
# be recorded but its answer lost when certkeepd stopped; a 201 is never
# given for what was not signed and recorded).
issued=$(count_certs "$ca" --status issued)
[[ $issued -ge $((n201 + 1)) ]] ||
    fail "$issued issued in the store, $((n201 + 1)) handed out"
ok "stopped; audit: $(sed 's/  */ /g' "$T/stop" | cut -c1-120)"
rm -f "$ca/certkeepd.pid" "$ca/certkeepd.urls"

say "in the foreground: exit status and message"
# Started by hand (srv_start detaches).
(trap - EXIT; cd "$T" && rc=0 && { "$CERTKEEPD" --home "$ca" --passphrase-fd 3 \
    --foreground 3<"$PWFILE" >"$T/fg.out" 2>"$T/fg.err" || rc=$?; } &&
    echo "$rc" >"$T/fg.rc") &
bg_track $!
wait_until 30 test -s "$ca/certkeepd.pid" || fail "no pid file: $(cat "$T/fg.err")"
FG=$(cat "$ca/certkeepd.pid")
wait_until 10 bash -c "[[ -n \$(cat /proc/$FG/task/*/children 2>/dev/null) ]]" ||
    fail "the foreground certkeepd has no signer"
kill -9 "$(signer_of "$FG")"
wait_until 20 test -s "$T/fg.rc" || fail "certkeepd did not exit: $(cat "$T/fg.err")"
[[ $(cat "$T/fg.rc") -eq 3 ]] ||
    fail "certkeepd exited $(cat "$T/fg.rc") after its signer died, not 3"
assert_grep 'signer process died.*stops serving' "$T/fg.err" "stderr"
ok "exit $(cat "$T/fg.rc"): $(head -n 1 "$T/fg.err")"
rm -f "$ca/certkeepd.pid" "$ca/certkeepd.urls"
