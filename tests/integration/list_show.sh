#!/usr/bin/env bash
# list_show.sh - 'certkeep list' and its filters, 'certkeep show' and
# 'show --pem', and the serial numbers certkeep hands out.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
new_root "$ca" ec-p256

# issue_as NAME PROFILE CSR [issue options]: certificate in $T/NAME.pem
issue_as() {
	local name=$1 profile=$2 csr=$3
	shift 3
	expect_ok "$CERTKEEP" issue --home "$ca" --profile "$profile" --csr "$csr" \
	    --cert-only --out "$T/$name.pem" --passphrase-file "$PWFILE" "$@"
	cert_serial "$T/$name.pem" >"$T/$name.serial"
}
serial_of() { cat "$T/$1.serial"; }

say "issue server and client certificates, revoke one"
make_key ec-p256 "$T/srv.key"
make_key ed25519 "$T/cli.key"
make_csr "$T/srv.key" "$T/www.csr" "/CN=www.example.com"
make_csr "$T/srv.key" "$T/api.csr" "/CN=api.example.com" PEM \
    -addext "subjectAltName=DNS:api.example.com,IP:127.0.0.1"
make_csr "$T/srv.key" "$T/short.csr" "/CN=short.example.com"
make_csr "$T/cli.key" "$T/alice.csr" "/CN=Alice Example" PEM \
    -addext "subjectAltName=email:alice@example.com"
make_csr "$T/cli.key" "$T/bob.csr" "/CN=Bob Example/O=Example Ltd" PEM \
    -addext "subjectAltName=email:bob@example.com"
issue_as www tls-server "$T/www.csr"
issue_as api tls-server "$T/api.csr"
issue_as short tls-server "$T/short.csr" --days 30
issue_as alice tls-client "$T/alice.csr"
issue_as bob tls-client "$T/bob.csr" --requester "bob's manager"
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$(serial_of api)" --reason superseded
assert_grep 'Revoked' "$LAST_OUT" "revoke message"
ok "5 certificates issued, api revoked"

say "alice's certificate is a client certificate with her e-mail address"
cert_text "$T/alice.pem" "$T/alice.txt"
assert_grep 'Subject: CN ?= ?Alice Example' "$T/alice.txt" "alice subject"
assert_grep 'email:alice@example.com' "$T/alice.txt" "alice SAN"
assert_grep 'TLS Web Client Authentication' "$T/alice.txt" "alice EKU"
expect_ok openssl verify -x509_strict -purpose sslclient -CAfile "$ca/ca.pem" "$T/alice.pem"
ok "verifies for sslclient"

say "list: everything, and each status"
assert_eq 6 "$(count_certs "$ca")" "all rows (5 leaves + the root)"
assert_eq 5 "$(count_certs "$ca" --status issued)" "issued rows (4 leaves + root)"
assert_eq 1 "$(count_certs "$ca" --status revoked)" "revoked rows"
assert_eq "$(serial_of api)" "$(list_serials "$ca" --status revoked)" "the revoked serial"
if list_serials "$ca" --status issued | grep -qx "$(serial_of api)"; then
	fail "the revoked certificate is listed as issued"
fi
assert_eq 0 "$(count_certs "$ca" --status pending)" "pending rows"
assert_eq 0 "$(count_certs "$ca" --status failed)" "failed rows"
assert_eq 0 "$(count_certs "$ca" --status expired)" "expired rows"
expect_fail "unknown status 'bogus'" "$CERTKEEP" list --home "$ca" --status bogus
ok "statuses filter"

say "list --profile"
assert_eq 3 "$(count_certs "$ca" --profile tls-server)" "tls-server rows"
assert_eq 2 "$(count_certs "$ca" --profile tls-client)" "tls-client rows"
assert_eq 1 "$(count_certs "$ca" --profile root)" "root rows"
assert_eq 0 "$(count_certs "$ca" --profile sub-ca)" "sub-ca rows"
assert_eq 2 "$(count_certs "$ca" --profile tls-server --status issued)" \
    "issued tls-server rows"
ok "profiles filter (and combine with --status)"

say "list --name (subject or names, case-insensitive substring)"
assert_eq "$(serial_of alice)" "$(list_serials "$ca" --name alice@example.com)" "--name e-mail"
assert_eq "$(serial_of alice)" "$(list_serials "$ca" --name 'Alice Example')" "--name CN"
assert_eq "$(serial_of alice)" "$(list_serials "$ca" --name ALICE)" "--name upper case"
assert_eq "$(serial_of api)" "$(list_serials "$ca" --name 127.0.0.1)" "--name IP"
assert_eq 2 "$(count_certs "$ca" --name 'example.com' --profile tls-client)" "--name + --profile"
assert_eq 0 "$(count_certs "$ca" --name no-such-name)" "--name without a match"
ok "names filter"

say "list --expiring-before, around the leaves' expiry"
short_end=$(cert_not_after "$T/short.pem")
www_end=$(cert_not_after "$T/www.pem")
day() { date -u -d "@$1" +%Y-%m-%d; }
# Whole days either side of each expiry: no dependence on the clock.
assert_eq 0 "$(count_certs "$ca" --expiring-before "$(day $((short_end - 2 * 86400)))")" \
    "expiring before the 30-day certificate"
assert_eq "$(serial_of short)" \
    "$(list_serials "$ca" --expiring-before "$(day $((short_end + 2 * 86400)))")" \
    "expiring just after the 30-day certificate"
assert_eq 1 "$(count_certs "$ca" --expiring-before "$(day $((www_end - 2 * 86400)))")" \
    "expiring before the 397-day certificates"
assert_eq 5 "$(count_certs "$ca" --expiring-before "$(day $((www_end + 2 * 86400)))")" \
    "expiring after the 397-day certificates"
assert_eq 6 "$(count_certs "$ca" --expiring-before 9999-12-31)" "expiring before 9999"
assert_eq 1 "$(count_certs "$ca" --expiring-before "$(day $((www_end + 2 * 86400)))" \
    --status revoked)" "--expiring-before + --status"
expect_fail 'bad date' "$CERTKEEP" list --home "$ca" --expiring-before 31/12/2030
expect_fail 'bad date' "$CERTKEEP" list --home "$ca" --expiring-before 2030-13-01
ok "expiry filter"

say "list --limit"
assert_eq 2 "$(count_certs "$ca" --limit 2)" "--limit 2"
assert_eq 1 "$(count_certs "$ca" --limit 1 --profile tls-client)" "--limit 1 --profile"
assert_eq 6 "$(count_certs "$ca" --limit 100)" "--limit above the total"
expect_fail 'limit' "$CERTKEEP" list --home "$ca" --limit 0
expect_fail 'limit' "$CERTKEEP" list --home "$ca" --limit many
ok "limit"

say "show SERIAL: status, names, profile"
expect_ok "$CERTKEEP" show --home "$ca" "$(serial_of alice)"
cp "$LAST_OUT" "$T/show-alice"
assert_grep "^serial: +$(serial_of alice)\$" "$T/show-alice" "show serial"
assert_grep '^status: +issued$' "$T/show-alice" "show status"
assert_grep '^profile: +tls-client$' "$T/show-alice" "show profile"
assert_grep '^subject: +.*CN ?= ?Alice Example' "$T/show-alice" "show subject"
assert_grep '^names: +.*email:alice@example.com' "$T/show-alice" "show names"
assert_grep '^CA: +no$' "$T/show-alice" "show CA"
expect_ok "$CERTKEEP" show --home "$ca" "$(serial_of api)"
cp "$LAST_OUT" "$T/show-api"
assert_grep '^status: +revoked$' "$T/show-api" "revoked status"
assert_grep '^revoked: .*superseded' "$T/show-api" "revocation reason"
assert_grep '^names: +DNS:api.example.com, IP:127.0.0.1$' "$T/show-api" "show names"
assert_grep '^profile: +tls-server$' "$T/show-api" "show profile"
expect_ok "$CERTKEEP" show --home "$ca" "$(serial_of bob)"
assert_grep "^requester: +bob's manager\$" "$LAST_OUT" "--requester recorded"
# Any spelling of the serial: lower case, 0x, colons, leading zeros.
s=$(serial_of www)
lower=$(printf '%s' "$s" | tr 'A-F' 'a-f')
colons=$(printf '%s' "$s" | sed 's/../&:/g; s/:$//')
for spelling in "$lower" "0x$s" "$colons" "00$s" "$(openssl_serial "$T/www.pem")"; do
	expect_ok "$CERTKEEP" show --home "$ca" "$spelling"
	assert_grep "^serial: +$s\$" "$LAST_OUT" "show $spelling"
done
expect_fail 'no certificate|not found' "$CERTKEEP" show --home "$ca" 0123456789ABCDEF
expect_fail 'not hexadecimal' "$CERTKEEP" show --home "$ca" not-a-serial
ok "show prints status, names, profile; serial spellings accepted"

say "show --pem: the issued certificate, verifiable with openssl"
for n in www api short alice bob; do
	expect_ok "$CERTKEEP" show --home "$ca" --pem "$(serial_of "$n")"
	cp "$LAST_OUT" "$T/$n.shown.pem"
	cmp -s <(openssl x509 -in "$T/$n.pem" -outform DER) \
	    <(openssl x509 -in "$T/$n.shown.pem" -outform DER) ||
	    fail "show --pem differs from the issued certificate ($n)"
	expect_ok openssl verify -x509_strict -CAfile "$ca/ca.pem" "$T/$n.shown.pem"
done
ok "show --pem output verifies and matches what issue returned"

say "serials: unique, positive, at least 64 bits"
list_serials "$ca" >"$T/serials"
assert_eq 6 "$(wc -l <"$T/serials")" "serials listed"
assert_eq 6 "$(sort -u "$T/serials" | wc -l)" "distinct serials"
while read -r s; do
	[[ "$s" =~ ^[0-9A-F]+$ ]] || fail "serial $s is not upper-case hex"
	[[ "$s" != 0* ]] || fail "serial $s has a leading zero"
	# At least 64 significant bits, at most 20 octets (RFC 5280).
	first=$((16#${s:0:1}))
	bits=$((4 * (${#s} - 1)))
	while [[ $first -gt 0 ]]; do
		bits=$((bits + 1))
		first=$((first >> 1))
	done
	[[ $bits -ge 64 ]] || fail "serial $s has only $bits bits"
	[[ ${#s} -le 40 ]] || fail "serial $s is longer than 20 octets"
	min_bits=$(( ${min_bits:-999} < bits ? ${min_bits:-999} : bits ))
done <"$T/serials"
for n in www api short alice bob; do
	grep -qx "$(serial_of "$n")" "$T/serials" ||
	    fail "the serial of $n is not listed as openssl reads it"
	# A negative serial would print with a minus sign / "(Negative)".
	openssl x509 -in "$T/$n.pem" -noout -text >"$T/$n.txt"
	assert_no_grep 'Negative' "$T/$n.txt" "serial sign of $n"
	openssl asn1parse -in "$T/$n.pem" >"$T/$n.asn1"
	assert_grep ':d=2 +hl=[0-9]+ +l= *(1[6-9]|20) prim: INTEGER +:[0-7]' "$T/$n.asn1" \
	    "DER serial of $n (positive, 16-20 octets)"
done
ok "$(wc -l <"$T/serials") distinct positive serials, the shortest $min_bits bits"

say "serials that start with a small byte are found again (no leading zero)"
# About one serial in eight has a first byte below 0x10; issue until one
# does (the bound makes a miss astronomically unlikely, not timing).
found=""
for _ in $(seq 1 200); do
	expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" \
	    --cert-only --out "$T/small.pem" --passphrase-file "$PWFILE"
	s=$(openssl_serial "$T/small.pem")
	if [[ "$s" == 0* ]]; then
		found=$s
		break
	fi
done
[[ -n "$found" ]] || fail "no serial with a small first byte in 200 certificates"
short_s=${found#0}
assert_eq 1 "$(list_serials "$ca" | grep -cx "$short_s")" "listed without the leading zero"
expect_ok "$CERTKEEP" show --home "$ca" "$found"
assert_grep "^serial: +$short_s\$" "$LAST_OUT" "show with openssl's spelling"
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$found" --reason keyCompromise
expect_ok "$CERTKEEP" crl --home "$ca" --out "$T/crl.pem" --passphrase-file "$PWFILE"
run openssl verify -crl_check -CAfile "$ca/ca.pem" -CRLfile "$T/crl.pem" "$T/small.pem"
grep -q 'certificate revoked' "$LAST_OUT" "$LAST_ERR" ||
    fail "the revoked small-serial certificate is not on the CRL"
ok "serial $found (listed as $short_s) shown, revoked and on the CRL"

say "output files: --out through a symlink writes the target, keeps the link"
: >"$T/target.pem"
ln -s target.pem "$T/link.pem"
expect_ok "$CERTKEEP" crl --home "$ca" --out "$T/link.pem" --passphrase-file "$PWFILE"
[[ -L "$T/link.pem" ]] || fail "--out replaced the symlink"
assert_grep 'BEGIN X509 CRL' "$T/target.pem" "CRL written through the symlink"
ok "symlink kept"

audit_verify_ok "$ca"
