#!/usr/bin/env bash
# service.sh - certkeep service start|status|reload|stop: start reports
# where it serves and status says so (exit 0); a second start is refused
# naming the running pid; reload (SIGHUP) keeps serving and applies a
# configuration change (recorded as 'config-change'); stop removes the
# pid and urls files and status then exits 3; a stop while 20 issuances
# are in flight finishes every request it accepted (each client has a
# certificate that is in the store, or never got in); a wrong passphrase
# starts nothing.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"

say "not running yet"
run "$CERTKEEP" service status --home "$ca"
assert_eq 3 "$LAST_RC" "certkeep service status before any start"
assert_grep 'not running' "$LAST_OUT" "status before any start"

say "start and status"
srv_start "$ca"
PID1=$SRV_PID
API1=$API
run "$CERTKEEP" service status --home "$ca"
assert_eq 0 "$LAST_RC" "certkeep service status while running"
assert_grep "is running on .* \\(pid $PID1\\)" "$LAST_OUT" "status names the pid"
grep -qxF "api $API" "$LAST_OUT" || fail_cmd "status does not show the api URL"
grep -qxF "http $PUB" "$LAST_OUT" || fail_cmd "status does not show the http URL"
kill -0 "$PID1" 2>/dev/null || fail "pid $PID1 does not exist"
ok "pid $PID1: $API, $PUB"

say "a second start is refused"
run timeout 60 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
[[ $LAST_RC -ne 0 && $LAST_RC -lt 124 ]] ||
    fail_cmd "a second start did not fail cleanly (exit $LAST_RC)"
assert_grep "already running.*pid $PID1" "$LAST_ERR" "the second start's message"
# certkeepd itself (bypassing the command line's check) is refused too.
run timeout 60 "$CERTKEEPD" --home "$ca" --passphrase-fd 3 3<"$PWFILE"
[[ $LAST_RC -ne 0 && $LAST_RC -lt 124 ]] ||
    fail_cmd "a second certkeepd did not fail cleanly (exit $LAST_RC)"
assert_grep "already running.*pid $PID1" "$LAST_ERR" "the second certkeepd's message"
assert_eq "$PID1" "$(cat "$ca/certkeepd.pid")" "the pid file after refused starts"
_health_ok || fail "the first certkeepd stopped answering"
ok "$(head -n 1 "$LAST_ERR")"

TOK=$(srv_token "$ca" deployer tls-server)
auth=(-H "Authorization: Bearer $TOK")
json=(-H 'Content-Type: application/json')

say "reload picks up a configuration change"
srv_csr "$T/www.csr" "www.$SRV_DOMAIN"
json_body tls-server "$T/www.csr" 60 >"$T/days60.json"
api_issue auth "$T/days60.json" "$T/before.pem"
ok "60 days allowed before the change (serial $SERIAL)"
N_CFG=$(count_audit "$ca" ok config-change)
conf_set "$ca" profile.tls-server max_validity_days 30
# Nothing opens the CA between the edit and the refusal below, so the
# new 'config-change' entry is certkeepd's.
expect_ok "$CERTKEEP" service reload --home "$ca"
refused_now() {
	api POST "$API/api/v1/certificates" "${auth[@]}" "${json[@]}" \
	    --data-binary "@$T/days60.json"
	[[ "$CODE" == 403 ]] && return 0
	[[ "$CODE" == 201 ]] || fail "HTTP $CODE while waiting for the reload"
	return 1
}
wait_until 10 refused_now || fail "60 days still allowed 10 s after reload"
expect_problem 403 'maximum is 30'
ok "after reload: $PROBLEM_DETAIL"
assert_eq "$((N_CFG + 1))" "$(count_audit "$ca" ok config-change)" \
    "config-change audit entries after the reload"
assert_eq "$PID1" "$(cat "$ca/certkeepd.pid")" "the pid after reload"
grep -qxF "api $API" "$ca/certkeepd.urls" || fail "the URLs changed on reload"
_health_ok || fail "/health after reload"
json_body tls-server "$T/www.csr" 30 >"$T/days30.json"
api_issue auth "$T/days30.json" "$T/after.pem"
ok "same pid, same URLs, still issuing (30 days: serial $SERIAL)"

say "stop"
srv_stop "$ca"
run "$CERTKEEP" service status --home "$ca"
assert_eq 3 "$LAST_RC" "certkeep service status after stop"
assert_grep 'not running' "$LAST_OUT" "status after stop"
! kill -0 "$PID1" 2>/dev/null || [[ "$(ps -o stat= -p "$PID1")" == Z* ]] ||
    fail "pid $PID1 is still alive after stop"
api GET "$PUB/health"
assert_eq 000 "$CODE" "/health after stop"
run "$CERTKEEP" service stop --home "$ca"
[[ $LAST_RC -ne 0 ]] || fail_cmd "stopping a stopped server succeeded"
assert_grep 'not running' "$LAST_ERR" "stop when stopped"
ok "status exits 3; pid and urls files gone; nothing listens"

say "stop while 20 issuances are in flight (three rounds)"
N=20
one() {	# one R I: an issuance; its status code, exit code and body in files
	local rc=0 f="$T/r$1-c$2"
	curl -sS --max-time 60 --cacert "$SRV_CA" "${auth[@]}" "${json[@]}" \
	    --data-binary "@$f.json" -o "$f.out" -w '%{http_code}' \
	    "$API/api/v1/certificates" >"$f.code" 2>"$f.err" || rc=$?
	echo "$rc" >"$f.rc"
}
# Stop as soon as the first requests are being answered: some are then
# done, some in flight, some not yet connected.
issued_some() {
	curl -s --max-time 5 "$PUB/metrics" 2>/dev/null |
	    grep -q '^certkeep_certificates_issued_total [1-9]'
}
for round in 1 2 3; do
	srv_start "$ca"
	for i in $(seq $N); do
		srv_csr "$T/r$round-c$i.csr" "r$round-h$i.$SRV_DOMAIN"
		json_body tls-server "$T/r$round-c$i.csr" 30 >"$T/r$round-c$i.json"
	done
	N0=$(count_certs "$ca")
	pids=()
	for i in $(seq $N); do
		one "$round" "$i" &
		pids+=($!)
		bg_track "$!"
	done
	wait_until 20 issued_some || fail "no issuance within 20 s"
	run timeout 120 "$CERTKEEP" service stop --home "$ca"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep service stop (in flight) failed"
	srv_stopped_cleanly "$ca"
	for p in "${pids[@]}"; do
		wait "$p" || true
	done
	SRV_BG=()
	got=0
	never=0
	for i in $(seq $N); do
		f="$T/r$round-c$i"
		code=$(cat "$f.code" 2>/dev/null || true)
		rc=$(cat "$f.rc")
		name="r$round-h$i.$SRV_DOMAIN"
		if [[ "$code" == 201 ]]; then
			[[ $rc -eq 0 ]] || fail "client $i: 201 but curl exit $rc"
			s=$(json_str "$f.out" serial)
			json_str "$f.out" certificate >"$f.pem"
			openssl x509 -in "$f.pem" -noout 2>/dev/null ||
			    fail "client $i: 201 with a truncated certificate"
			assert_eq "$s" "$(serial_of "$f.pem")" "client $i's serial"
			expect_ok "$CERTKEEP" show --home "$ca" "$s"
			assert_grep 'issued' "$LAST_OUT" "certkeep show $s (client $i)"
			expect_ok "$CERTKEEP" show --home "$ca" "$s" --pem
			cmp -s "$LAST_OUT" "$f.pem" ||
			    fail "client $i's certificate is not the store's $s"
			got=$((got + 1))
		else
			# Never got in: no connection, or closed before an
			# answer; then no certificate was made for it.
			[[ "$code" == 000 || -z "$code" ]] || {
				cat "$f.out" >&2 || true
				fail "client $i got HTTP $code"
			}
			case $rc in
			7|35|52|55|56) ;;
			*) fail "client $i: curl exit $rc ($(cat "$f.err"))" ;;
			esac
			[[ -z "$(list_serials "$ca" --name "$name")" ]] ||
			    fail "client $i got no answer (curl exit $rc: $(cat "$f.err")), but $name has a certificate"
			never=$((never + 1))
		fi
	done
	assert_eq "$((N0 + got))" "$(count_certs "$ca")" "certificates after the stop"
	assert_eq 0 "$(count_certs "$ca" --status pending)" "pending rows after a clean stop"
	ok "round $round: $got answered 201 (all in the store), $never never got in"
done
audit_verify_ok "$ca"

say "a wrong passphrase starts nothing"
printf 'not the passphrase\n' >"$T/wrong"
run timeout 60 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$T/wrong"
[[ $LAST_RC -ne 0 && $LAST_RC -lt 124 ]] ||
    fail_cmd "start with a wrong passphrase did not fail cleanly (exit $LAST_RC)"
assert_grep 'passphrase' "$LAST_ERR" "the wrong passphrase's message"
run "$CERTKEEP" service status --home "$ca"
assert_eq 3 "$LAST_RC" "certkeep service status after a failed start"
[[ ! -e "$ca/certkeepd.pid" && ! -e "$ca/certkeepd.urls" ]] ||
    fail "a failed start left a pid or urls file"
ok "$(head -n 1 "$LAST_ERR")"

say "and the right one starts it again"
srv_start "$ca"
api_issue auth "$T/days30.json" "$T/again.pem"
srv_stop "$ca"
audit_verify_ok "$ca"
ok "serial $SERIAL; stopped"
