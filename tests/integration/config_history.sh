#!/usr/bin/env bash
# config_history.sh - editing certkeep.conf is recorded (audit entry
# "config-change" with the new file's SHA-256, and the config history in
# the store) the next time the CA is opened, and takes effect; a
# configuration with an unknown key or section is refused with its line
# number.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
conf="$ca/certkeep.conf"
new_root "$ca" ec-p256
cp -p "$conf" "$T/original.conf"
make_key ec-p256 "$T/k.key"
make_csr "$T/k.key" "$T/www.csr" "/CN=www.example.com"

conf_sha() { sha256sum "$1" | cut -d' ' -f1; }
n_changes() { count_audit "$ca" ok config-change; }
history_rows() { sqlite3 "$ca/store.db" 'SELECT count(*) FROM config_history'; }

say "init records the first configuration"
assert_eq 1 "$(n_changes)" "config-change entries after init"
_audit_show "$ca" | grep ' config-change ' >"$T/changes"
assert_grep "$(conf_sha "$conf")" "$T/changes" "the recorded configuration hash"
assert_eq 1 "$(history_rows)" "config_history rows"
expect_ok "$CERTKEEP" list --home "$ca"
expect_ok "$CERTKEEP" ca show --home "$ca"
assert_eq 1 "$(n_changes)" "config-change entries after opening an unchanged CA"
ok "one config-change entry; opening again adds none"

say "edit tls-server's max_validity_days: recorded at the next open"
a_before=$(count_audit "$ca")
sed -i '/^\[profile\.tls-server\]/,/^\[/ s/^max_validity_days = .*/max_validity_days = 30/' "$conf"
grep -q '^max_validity_days = 30$' "$conf" || fail "the edit did not apply"
[[ $(grep -c '^max_validity_days = 397$' "$conf") -eq 1 ]] ||
    fail "the edit touched more than tls-server"
expect_ok "$CERTKEEP" list --home "$ca"
assert_eq 2 "$(n_changes)" "config-change entries after the edit"
last_audit "$ca" >"$T/last"
assert_grep " config-change +ok +certkeep.conf -- $(conf_sha "$conf")\$" "$T/last" \
    "the new config-change entry"
assert_eq "$((a_before + 1))" "$(count_audit "$ca")" "audit entries after the edit"
assert_eq 2 "$(history_rows)" "config_history rows"
db_content=$(sqlite3 "$ca/store.db" 'SELECT content FROM config_history ORDER BY id DESC LIMIT 1')
[[ "$db_content" == "$(cat "$conf")" ]] || fail "config_history does not hold the new text"
expect_ok "$CERTKEEP" list --home "$ca"
assert_eq 2 "$(n_changes)" "config-change entries after opening again"
ok "recorded once, with the new file's SHA-256 and text"

say "the edit takes effect"
expect_fail '31 days \(the maximum is 30\)' "$CERTKEEP" issue --home "$ca" \
    --profile tls-server --days 31 --csr "$T/www.csr" --passphrase-file "$PWFILE"
expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" \
    --cert-only --out "$T/30.pem" --passphrase-file "$PWFILE"
span=$(( $(cert_not_after "$T/30.pem") - $(cert_not_before "$T/30.pem") ))
# notBefore is back-dated a minute; both ends come from one clock reading.
[[ $span -ge $((30 * 86400)) && $span -le $((30 * 86400 + 3600)) ]] ||
    fail "the default validity is $span s, not 30 days"
# tls-client kept its 397 days.
make_csr "$T/k.key" "$T/client.csr" "/CN=Client"
expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-client --days 397 \
    --csr "$T/client.csr" --cert-only --out "$T/client.pem" --passphrase-file "$PWFILE"
ok "--days 31 refused, default validity now 30 days, tls-client unchanged"

say "restoring the original is another recorded change"
cp "$T/original.conf" "$conf"
expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server --days 397 \
    --csr "$T/www.csr" --cert-only --out "$T/397.pem" --passphrase-file "$PWFILE"
assert_eq 3 "$(n_changes)" "config-change entries after restoring"
assert_eq 3 "$(history_rows)" "config_history rows"
ok "recorded; 397 days accepted again"

# broken_config ERE LINE-TEXT...: append lines, expect every command to
# refuse the configuration, naming the line of the first bad one.
broken_config() {
	local re=$1 first_bad n_before
	shift
	n_before=$(count_audit "$ca")
	cp "$T/original.conf" "$conf"
	printf '%s\n' "$@" >>"$conf"
	first_bad=$(grep -n -F -x -- "$BAD_LINE" "$conf" | tail -n 1 | cut -d: -f1)
	[[ -n "$first_bad" ]] || fail "test bug: '$BAD_LINE' not in the config"
	expect_fail "configuration line $first_bad: .*$re" "$CERTKEEP" list --home "$ca"
	ok "$(head -n 1 "$LAST_ERR")"
	expect_fail "configuration line $first_bad: " "$CERTKEEP" issue --home "$ca" \
	    --profile tls-server --csr "$T/www.csr" --passphrase-file "$PWFILE"
	expect_fail "configuration line $first_bad: " "$CERTKEEP" audit verify --home "$ca"
	cp "$T/original.conf" "$conf"
	# A refused configuration was never in force: nothing recorded.
	assert_eq "$n_before" "$(count_audit "$ca")" "audit entries"
	assert_eq 3 "$(n_changes)" "config-change entries"
}

say "an unknown key is refused with its line number"
BAD_LINE='frobnicate = yes'
cp "$T/original.conf" "$conf"
# In the middle of a profile section, not just at the end.
sed -i "/^\[profile\.tls-server\]/a $BAD_LINE" "$conf"
line=$(grep -n -x "$BAD_LINE" "$conf" | cut -d: -f1)
expect_fail "configuration line $line: .*unknown setting 'frobnicate'" \
    "$CERTKEEP" list --home "$ca"
ok "$(head -n 1 "$LAST_ERR")"
cp "$T/original.conf" "$conf"
BAD_LINE='colour = blue'
broken_config "unknown setting 'colour'" '' '[ca]' "$BAD_LINE"
BAD_LINE='compression = yes'
broken_config "unknown setting 'compression'" '' '[store]' "$BAD_LINE"

say "an unknown section is refused with the line number"
BAD_LINE='key = value'
broken_config 'unknown section \[bogus\]' '' '[bogus]' "$BAD_LINE"
BAD_LINE='ca = yes'
broken_config 'unknown section \[profile\]' '' '[profile]' "$BAD_LINE"

say "other malformed lines"
BAD_LINE='this line has no equals sign'
broken_config 'syntax error' '' '[ca]' "$BAD_LINE"
BAD_LINE='max_validity_days = forever'
broken_config 'max_validity_days' '' '[profile.extra]' "$BAD_LINE" \
    'key_types = ec-p256'
BAD_LINE='crl_url = ftp://example.com/ca.crl'
broken_config 'not an http' '' '[ca]' "$BAD_LINE"

say "the CA works with the restored configuration and its log verifies"
cmp -s "$conf" "$T/original.conf" || fail "the configuration was not restored"
expect_ok "$CERTKEEP" list --home "$ca"
assert_eq 3 "$(n_changes)" "config-change entries at the end"
audit_verify_ok "$ca"
