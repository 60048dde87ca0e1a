#!/usr/bin/env bash
# acme_basic.sh - the ACME server's directory, nonces and accounts (RFC
# 8555 7.1-7.3, 6.2-6.5) through acme_client.py: a new account (201), the
# same key again (200), lookup, contact update, deactivation and then
# refusal, key rollover (7.3.5), and the refusals of section 6 with their
# problem types. Every
# account change is in the audit log.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

command -v python3 >/dev/null 2>&1 || fail "this test needs python3"
if ! python3 -c 'import cryptography' 2>/dev/null; then
	echo "SKIP: python3 has no 'cryptography' package"
	exit 77
fi

ca="$T/ca"
srv_init "$ca"
# Orders are judged by the tls-server profile; let it take wildcards so
# that a wildcard order can be checked.
conf_set "$ca" profile.tls-server allow_wildcard yes
srv_start "$ca"
ok "certkeepd serves $API"

say "the ACME client"
rc=0
python3 "$(dirname "${BASH_SOURCE[0]}")/acme_client.py" "$API" "$SRV_CA" \
    "$ca/store.db" >"$T/client.out" 2>&1 || rc=$?
cat "$T/client.out"
[[ $rc -eq 0 ]] || fail "the ACME client failed (exit $rc)"

say "audit"
n=$(count_audit "$ca" ok acme-account-new)
assert_eq 3 "$n" "audited new accounts"
n=$(count_audit "$ca" ok acme-account-update)
assert_eq 1 "$n" "audited account updates"
n=$(count_audit "$ca" ok acme-account-key-change)
assert_eq 1 "$n" "audited key changes"
n=$(count_audit "$ca" ok acme-account-deactivate)
assert_eq 1 "$n" "audited deactivations"
ok "three accounts created, one update, one key change, one deactivation audited"
n=$(count_audit "$ca" ok acme-order-new)
assert_eq 60 "$n" "audited new orders"
n=$(count_audit "$ca" ok acme-authz-deactivate)
assert_eq 1 "$n" "audited authorization deactivations"
ok "60 orders and one authorization deactivation audited"

srv_stop "$ca"
srv_stopped_cleanly "$ca"
ok "stopped"
