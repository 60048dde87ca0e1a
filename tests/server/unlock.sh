#!/usr/bin/env bash
# unlock.sh - M-of-N unlock of certkeepd: a CA protected with 2-of-3 key
# shares starts locked (no network listener, status "locked: 0 of 2
# shares"), takes shares one by one over the admin socket ('certkeep
# unlock', also from another OS user: the share is the credential),
# refuses a share of another set, a corrupted one and a duplicate without
# counting them, then serves and issues; the audit log names who gave
# which share; a restart needs the shares again; a locked certkeepd stops
# on 'certkeep service stop'; --unlock-shares-prompt reads the shares from
# standard input.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
other="$T/other"
srv_init "$other"
srv_init "$ca"	# last: $SRV_CA is its certificate

# Share directories the home's owner can write (certkeep runs as the
# owner when started as root).
mkshdir() {
	mkdir -m 700 "$1" || fail "mkdir $1"
	if [[ $(id -u) -eq 0 ]]; then chown "$(stat -c %U "$ca")" "$1"; fi
}
# Files made here for certkeep, which runs as the home's owner.
own() { if [[ $(id -u) -eq 0 ]]; then chown "$(stat -c %U "$ca")" "$@"; fi; }
mkshdir "$T/shares"
mkshdir "$T/oshares"

say "protect the key: 2 of 3 shares"
expect_ok "$CERTKEEP" key protect --home "$ca" --shares 2/3 \
    --custodian alice --custodian bob --custodian carol --out "$T/shares" \
    --passphrase-fd 3 3<"$PWFILE"
mapfile -t sh < <(ls "$T/shares"/*-unlock-*.share | sort)
[[ ${#sh[@]} -eq 3 ]] || fail "expected 3 share files"
expect_ok "$CERTKEEP" key protect --home "$other" --shares 2/3 \
    --custodian alice --custodian bob --custodian carol --out "$T/oshares" \
    --passphrase-fd 3 3<"$PWFILE"
mapfile -t osh < <(ls "$T/oshares"/*-unlock-*.share | sort)
ok "protected"

say "the old passphrase no longer starts it"
SRV_HOMES+=("$ca" "$other")
run timeout 60 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 \
    3<"$PWFILE"
[[ $LAST_RC -ne 0 && $LAST_RC -lt 124 ]] || fail_cmd "started with a passphrase"
assert_grep 'wrong passphrase' "$LAST_ERR" "start with the old passphrase"
! srv_running "$ca" || fail "certkeepd runs"
ok "refused"

# locked_start HOME: start; it reports "locked" and keeps running.
locked_start() {
	run timeout 60 "$CERTKEEP" service start --home "$1"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start locked"
	assert_grep '^certkeepd [0-9]+ locked on .*waiting for 2 key shares' \
	    "$LAST_OUT" "the locked start's report"
	SRV_PID=$(_srv_pid_of "$1")
	[[ -n "$SRV_PID" ]] || fail "no pid file while locked"
	[[ ! -e "$1/certkeepd.urls" ]] || fail "a urls file while locked"
}

# status_is HOME K: service status says "locked: K of 2 shares".
status_is() {
	run "$CERTKEEP" service status --home "$1"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "service status failed"
	assert_grep "^locked: $2 of 2 shares" "$LAST_OUT" "status"
}

# tcp_listeners PID: its listening TCP sockets (inodes from /proc).
tcp_listeners() {
	local pid=$1 inodes n=0 ino
	inodes=$(ls -l "/proc/$pid/fd" 2>/dev/null |
	    sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p')
	for ino in $inodes; do
		# state 0A: LISTEN
		if awk -v i="$ino" '$4 == "0A" && $10 == i { f = 1 }
		    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
		then n=$((n + 1)); fi
	done
	echo "$n"
}

say "start: locked, nothing on the network"
locked_start "$ca"
status_is "$ca" 0
assert_eq 0 "$(tcp_listeners "$SRV_PID")" "TCP listeners while locked"
run "$CERTKEEP" unlock --home "$ca" --status
assert_grep 'locked: 0 of 2' "$LAST_OUT" "unlock --status"
# Admin requests other than unlock are refused while locked.
run "$CERTKEEP" token list --home "$ca"
[[ $LAST_RC -ne 0 ]] || fail_cmd "token list served while locked"
assert_grep 'locked' "$LAST_ERR" "token list while locked"
ok "pid $SRV_PID locked; no TCP listener; other requests refused"

say "wrong shares do not count"
expect_fail 'another key' "$CERTKEEP" unlock --home "$ca" --share "${osh[0]}"
cp "${sh[1]}" "$T/bad.share"
line=$(grep -n '^[A-Za-z0-9+/=]\{64\}$' "$T/bad.share" | sed -n 2p | cut -d: -f1)
c=$(sed -n "${line}p" "$T/bad.share" | cut -c10)
[[ "$c" == A ]] && r=B || r=A
sed -i "${line}s/^\(.\{9\}\)./\1$r/" "$T/bad.share"
own "$T/bad.share"
expect_fail 'altered|damaged' "$CERTKEEP" unlock --home "$ca" \
    --share "$T/bad.share"
printf 'not a share\n' >"$T/junk.share"
own "$T/junk.share"
expect_fail 'not a certkeep key share' "$CERTKEEP" unlock --home "$ca" \
    --share "$T/junk.share"
status_is "$ca" 0
ok "another set, a corrupted share, junk: refused, 0 of 2"

say "share 1 (from another OS user when run as root)"
if [[ $(id -u) -eq 0 ]] && command -v runuser >/dev/null 2>&1 &&
    getent passwd nobody >/dev/null 2>&1; then
	cp "${sh[0]}" "$T/nobody.share"
	chown nobody "$T/nobody.share"
	chmod 600 "$T/nobody.share"
	run runuser -u nobody -- "$CERTKEEP" unlock --home "$ca" \
	    --share "$T/nobody.share"
	FROM1='uid [0-9]+ \(nobody\)'
else
	run "$CERTKEEP" unlock --home "$ca" --share "${sh[0]}"
	FROM1='uid [0-9]+'
fi
[[ $LAST_RC -eq 0 ]] || fail_cmd "share 1 refused"
assert_grep 'locked: 1 of 2 shares \(1 more needed\)' "$LAST_OUT" "progress"
status_is "$ca" 1
expect_fail 'given already' "$CERTKEEP" unlock --home "$ca" --share "${sh[0]}"
status_is "$ca" 1
ok "1 of 2; the same share again refused"

say "share 3: unlocked, serving"
expect_ok timeout 90 "$CERTKEEP" unlock --home "$ca" --share "${sh[2]}"
assert_grep 'secret is rebuilt' "$LAST_OUT" "last share"
assert_grep 'is serving' "$LAST_OUT" "unlock waits until serving"
_srv_read_urls "$ca"
wait_until 10 _health_ok || fail "certkeepd does not answer /health"
[[ "$(tcp_listeners "$SRV_PID")" -ge 1 ]] || fail "no TCP listener now"
TOK=$(srv_token "$ca" deployer tls-server --dns-suffixes "$SRV_DOMAIN")
auth=(-H "Authorization: Bearer $TOK")
srv_csr "$T/www.csr" "www.$SRV_DOMAIN"
json_body tls-server "$T/www.csr" 30 >"$T/www.json"
api_issue auth "$T/www.json" "$T/www.pem"
run openssl verify -CAfile "$SRV_CA" "$T/www.pem"
[[ $LAST_RC -eq 0 ]] || fail_cmd "the certificate does not verify"
expect_fail 'not locked' "$CERTKEEP" unlock --home "$ca" --share "${sh[1]}"
ok "serving; certificate $SERIAL issued"

say "an offline backup with --unlock-share starts certkeepd again"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/r1.key" -out "$T/r1.pem" -subj "/CN=backup recipient" \
    -days 30 2>/dev/null || fail "openssl req"
own "$T/r1.pem"
mkshdir "$T/bk"
expect_ok timeout 120 "$CERTKEEP" backup --home "$ca" --to "$T/bk" \
    --recipient "$T/r1.pem" --offline --quiet \
    --unlock-share "${sh[0]}" --unlock-share "${sh[1]}"
run "$CERTKEEP" service status --home "$ca"
assert_grep '^api https://' "$LAST_OUT" "serving again after the backup"
SRV_PID=$(_srv_pid_of "$ca")
ok "backed up offline and serving again"

say "the audit log names who gave which share"
_audit_show "$ca" >"$T/audit.txt"
assert_grep "unlock-share +ok +share 1 \\(alice\\) -- from $FROM1" \
    "$T/audit.txt" "share 1's entry"
assert_grep 'unlock-share +ok +share 3 \(carol\) -- from uid [0-9]+' \
    "$T/audit.txt" "share 3's entry"
assert_grep 'unlock-share +refused +share 1 \(alice\) -- .*another key' \
    "$T/audit.txt" "the other set's share"
assert_grep 'unlock-share +refused +.*given already' "$T/audit.txt" \
    "the duplicate"
[[ $(grep -Ec "unlock-share +ok" "$T/audit.txt") -eq 2 ]] ||
    fail "expected 2 accepted shares in the audit log"
audit_verify_ok "$ca"
ok "2 accepted, the refusals too"

say "restart: locked again"
srv_stop "$ca"
locked_start "$ca"
status_is "$ca" 0
expect_ok "$CERTKEEP" unlock --home "$ca" --share "${sh[1]}" --no-wait
status_is "$ca" 1
ok "locked again, 1 of 2"

say "a locked certkeepd stops"
run timeout 60 "$CERTKEEP" service stop --home "$ca"
[[ $LAST_RC -eq 0 ]] || fail_cmd "service stop of a locked certkeepd failed"
! srv_running "$ca" || fail "still running"
[[ ! -e "$ca/certkeepd.pid" ]] || fail "pid file left"
ok "stopped"

say "--unlock-shares-prompt: shares on standard input"
# A refused share in the stream does not count; the next two do.
cat "${osh[0]}" "${sh[1]}" "${sh[2]}" >"$T/stdin.txt"
run timeout 90 "$CERTKEEP" service start --home "$ca" \
    --unlock-shares-prompt <"$T/stdin.txt"
[[ $LAST_RC -eq 0 ]] || fail_cmd "prompt start failed"
assert_grep 'refused: share 1 \(alice\) is for another key' "$LAST_ERR" \
    "the prompt's refusal"
assert_grep 'accepted: 2 of 2 shares' "$LAST_ERR" "the prompt's progress"
assert_grep '^certkeepd [0-9]+ serving CA ' "$LAST_OUT" "serving"
_srv_read_urls "$ca"
wait_until 10 _health_ok || fail "certkeepd does not answer /health"
srv_stop "$ca"
# Too few shares: the input ends, nothing starts.
run timeout 60 "$CERTKEEP" service start --home "$ca" \
    --unlock-shares-prompt <"${sh[0]}"
[[ $LAST_RC -ne 0 && $LAST_RC -lt 124 ]] || fail_cmd "started with 1 share"
assert_grep '1 of 2 key shares given' "$LAST_ERR" "too few at the prompt"
! srv_running "$ca" || fail "running after too few shares"
ok "the prompt unlocks with 2 shares, refuses 1"
