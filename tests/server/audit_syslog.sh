#!/usr/bin/env bash
# audit_syslog.sh - certkeepd's copy of the audit log in syslog
# ([audit] syslog, syslog_socket): every committed entry arrives once, in
# order, as an RFC 3164 authpriv.notice datagram naming its id, action,
# result and hash; entries committed while syslog is not listening are
# sent when it is back, and certkeepd serves on meanwhile; with syslog
# off nothing is sent.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

SINK_PY="$(dirname "${BASH_SOURCE[0]}")/syslog_sink.py"
mkdir -p "$T/sl" && chmod 755 "$T/sl"
SOCK="$T/sl/log.sock"
LOG="$T/sl/received"
: >"$LOG"
SINK_PID=

sink_start() {
	python3 "$SINK_PY" "$SOCK" "$LOG" &
	SINK_PID=$!
	bg_track "$SINK_PID"
	wait_until 10 test -S "$SOCK" || fail "the syslog stand-in did not start"
}
sink_stop() {
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	rm -f "$SOCK"
}

# The ids, in the order received.
received_ids() { sed -n 's/.*certkeepd\[[0-9]*\]: audit id=\([0-9]*\) .*/\1/p' "$LOG"; }
# "ID ACTION RESULT" of every entry, from the store and from syslog.
store_entries() {
	_audit_show "$1" | awk '{ print $1, $4, $5 }'
}
received_entries() {
	sed -n 's/.*audit id=\([0-9]*\) time=[0-9]* user=.* action=\([^ ]*\) object=.* result=\([^ ]*\) hash=.*/\1 \2 \3/p' "$LOG"
}
# last_id HOME: the last entry's id in the store.
last_id() { _audit_show "$1" | tail -n 1 | awk '{ print $1 }'; }
has_id() { received_ids | grep -qx "$1"; }

ca="$T/ca"
srv_init "$ca"
conf_set "$ca" audit syslog_socket "$SOCK"
TOK=$(srv_token "$ca" syslog tls-server)
auth=(-H "Authorization: Bearer $TOK")

say "syslog listening: every entry arrives, once, in order"
sink_start
srv_start "$ca"
srv_csr "$T/a.csr" a.$SRV_DOMAIN
json_body tls-server "$T/a.csr" >"$T/a.json"
api_issue auth "$T/a.json" "$T/a.pem"
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$SERIAL" \
    --reason keyCompromise
want=$(last_id "$ca")
wait_until 20 has_id "$want" || fail "entry $want never reached syslog"
# Datagrams have the header syslog(3) would write.
grep -v -E '^<85>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} certkeepd\[[0-9]+\]: audit id=[0-9]+ time=[0-9]+ user=[^ ]+ action=[^ ]+ object=.* result=(ok|refused|failed|[a-z-]+) hash=[0-9a-f]{64} detail=' \
    "$LOG" >"$T/bad-lines" || true
[[ ! -s "$T/bad-lines" ]] || {
	head -n 3 "$T/bad-lines" >&2
	fail "datagrams not in RFC 3164 authpriv.notice form"
}
store_entries "$ca" | awk -v w="$want" '$1 <= w' >"$T/store.1"
received_entries >"$T/recv.1"
diff "$T/store.1" "$T/recv.1" >&2 ||
    fail "syslog does not hold exactly the store's entries 1..$want in order"
grep -q "action=revoke .*result=ok" "$LOG" || fail "no revocation in syslog"
grep -q "action=issue .*result=ok" "$LOG" || fail "no issuance in syslog"
ok "$want entries, in order, each once"

say "syslog gone: certkeepd serves on; the entries follow when it is back"
sink_stop
before=$(received_ids | tail -n 1)
srv_csr "$T/b.csr" b.$SRV_DOMAIN
json_body tls-server "$T/b.csr" >"$T/b.json"
api_issue auth "$T/b.json" "$T/b.pem"
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$SERIAL" \
    --reason superseded
missed=$(last_id "$ca")
[[ $missed -gt $before ]] || fail "no new entries while syslog was gone"
sleep 2	# the housekeeper tries and fails meanwhile
has_id "$missed" && fail "an entry reached a syslog that was not there"
sink_start
wait_until 30 has_id "$missed" ||
    fail "entries committed while syslog was gone never arrived"
ok "entries $((before + 1))..$missed arrived after syslog came back"

say "stop: the last entries (service-stop, the final checkpoint) are sent"
srv_stop "$ca"
srv_stopped_cleanly "$ca"
want=$(last_id "$ca")
wait_until 10 has_id "$want" || fail "the entries of the stop were not sent"
store_entries "$ca" >"$T/store.2"
received_entries >"$T/recv.2"
diff "$T/store.2" "$T/recv.2" >&2 ||
    fail "syslog does not hold exactly the store's entries, in order, once"
grep -q "action=service-stop" "$LOG" || fail "no service-stop in syslog"
ok "syslog holds all $want entries exactly once"

say "[audit] syslog = false: nothing is sent"
conf_set "$ca" audit syslog false
n=$(wc -l <"$LOG")
srv_start "$ca"
srv_stop "$ca"
[[ $(wc -l <"$LOG") -eq $n ]] || fail "datagrams sent with syslog off"
ok "no datagram"

say "a relative syslog_socket is refused"
conf_set "$ca" audit syslog_socket relative/log.sock
run "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
[[ $LAST_RC -ne 0 ]] || fail "certkeepd started with a relative syslog_socket"
assert_grep 'syslog_socket.*absolute' "$LAST_ERR" "the refusal"
ok "$(grep -m1 syslog_socket "$LAST_ERR")"
sink_stop
