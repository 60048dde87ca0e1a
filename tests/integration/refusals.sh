#!/usr/bin/env bash
# refusals.sh - requests and situations certkeep must refuse: each exits
# non-zero with a clear message, issues nothing, and (once the CA is
# open) leaves exactly one audit entry with result "refused"; the audit
# log still verifies afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
new_root "$ca" ec-p256

# The baseline: one certificate (the root), no pending or failed rows.
N_CERTS=$(count_certs "$ca")
assert_eq 1 "$N_CERTS" "certificates in a new root CA"

# Issue with the right passphrase, everything else from the arguments.
issue() { "$CERTKEEP" issue --home "$ca" --passphrase-file "$PWFILE" "$@"; }

# refused ERE WHAT-IN-AUDIT CMD...: the command fails with ERE on stderr,
# adds no certificate, and adds exactly one audit entry, which is
# "<ACTION> refused" and whose line matches WHAT-IN-AUDIT.
refused() {
	local re=$1 audit_re=$2 a_before a_after
	shift 2
	a_before=$(count_audit "$ca")
	expect_fail "$re" "$@"
	MSG=$(sed 's/^certkeep: error: //' "$LAST_ERR" | head -n 1)
	assert_eq "$N_CERTS" "$(count_certs "$ca")" "certificates after a refusal"
	a_after=$(count_audit "$ca")
	assert_eq "$((a_before + 1))" "$a_after" "audit entries after a refusal"
	last_audit "$ca" >"$T/last-audit"
	assert_grep '^ *[0-9]+ \S+ \S+ +\S+ +refused ' "$T/last-audit" \
	    "the new audit entry's result"
	assert_grep "$audit_re" "$T/last-audit" "the new audit entry"
	ok "$MSG"
}

key() { make_key "$1" "$T/$2.key"; }

say "a CSR whose signature does not verify"
key rsa2048 good
make_csr "$T/good.key" "$T/good.der" "/CN=www.example.com" DER
size=$(stat -c %s "$T/good.der")
last=$(tail -c 1 "$T/good.der" | od -An -tu1 | tr -d ' ')
# shellcheck disable=SC2059 # an octal escape built on purpose
{ head -c $((size - 1)) "$T/good.der"; printf "\\$(printf %03o $((last ^ 0xff)))"; } \
    >"$T/badsig.der"
[[ $(stat -c %s "$T/badsig.der") -eq $size ]] || fail "corrupted CSR has the wrong size"
if cmp -s "$T/good.der" "$T/badsig.der"; then fail "the CSR was not corrupted"; fi
refused 'signature does not verify' 'issue +refused .*signature' \
    issue --profile tls-server --csr "$T/badsig.der"
# The same request, intact, is fine (so the refusal was the signature).
expect_ok openssl req -in "$T/good.der" -inform DER -verify -noout

say "a DNS name outside the profile"
key ec-p256 k1
make_csr "$T/k1.key" "$T/evil.csr" "/CN=www.example.com" PEM \
    -addext "subjectAltName=DNS:www.example.com,DNS:evil.org"
refused "DNS name 'evil.org' is outside the allowed suffixes" 'evil\.org' \
    issue --profile tls-server --csr "$T/evil.csr"
make_csr "$T/k1.key" "$T/evilcn.csr" "/CN=evil.org"
refused "evil\.org.*outside" 'evil\.org' issue --profile tls-server --csr "$T/evilcn.csr"
make_csr "$T/k1.key" "$T/lookalike.csr" "/CN=evilexample.com"
refused "evilexample\.com.*outside" 'evilexample' \
    issue --profile tls-server --csr "$T/lookalike.csr"
make_csr "$T/k1.key" "$T/wild.csr" "/CN=*.example.com"
refused "wildcard" 'wildcard' issue --profile tls-server --csr "$T/wild.csr"

say "an IP address outside the ranges"
make_csr "$T/k1.key" "$T/ip.csr" "/CN=www.example.com" PEM \
    -addext "subjectAltName=DNS:www.example.com,IP:10.1.2.3"
refused 'IP address 10\.1\.2\.3 is outside the allowed ranges' '10\.1\.2\.3' \
    issue --profile tls-server --csr "$T/ip.csr"
make_csr "$T/k1.key" "$T/ip6.csr" "/CN=www.example.com" PEM \
    -addext "subjectAltName=IP:2001:db8::1"
refused 'IP address .*2001:db8::1.* outside' 'refused' \
    issue --profile tls-server --csr "$T/ip6.csr"

say "an RSA 1024 key"
key rsa1024 small
make_csr "$T/small.key" "$T/small.csr" "/CN=www.example.com"
refused 'key type rsa1024 is not allowed' 'rsa1024' \
    issue --profile tls-server --csr "$T/small.csr"

say "--days beyond the profile maximum"
make_csr "$T/k1.key" "$T/ok.csr" "/CN=www.example.com"
refused '398 days \(the maximum is 397\)' 'too long' \
    issue --profile tls-server --days 398 --csr "$T/ok.csr"
refused '3651 days \(the maximum is 3650\)' 'too long' \
    issue --profile sub-ca --days 3651 --csr "$T/ok.csr"

say "malformed, truncated, empty and oversized files"
printf 'this is not a certificate request\n' >"$T/text.csr"
refused 'malformed' 'malformed' issue --profile tls-server --csr "$T/text.csr"
# An EC key with explicit curve parameters (RFC 5480 forbids them in
# certificates; they would be copied into it).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:explicit -out "$T/explicit.key" 2>/dev/null
openssl req -new -key "$T/explicit.key" -subj "/CN=www.example.com" \
    -out "$T/explicit.csr" 2>/dev/null
refused 'name its curve' 'explicit curve' issue --profile tls-server \
    --csr "$T/explicit.csr"
printf '\x30\x82\x01\x00\x02\x01\x00\x30\x00\xff\xfe\xfd' >"$T/garbage.der"
refused 'malformed' 'malformed' issue --profile tls-server --csr "$T/garbage.der"
openssl x509 -in "$ca/ca.pem" -outform DER -out "$T/a-cert.der"
refused 'malformed' 'malformed' issue --profile tls-server --csr "$T/a-cert.der"
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' \
    >"$T/badpem.csr"
refused 'malformed PEM' 'malformed' issue --profile tls-server --csr "$T/badpem.csr"
make_csr "$T/k1.key" "$T/ok.der" "/CN=www.example.com" DER
dsize=$(stat -c %s "$T/ok.der")
head -c $((dsize / 2)) "$T/ok.der" >"$T/trunc.der"
refused 'malformed or truncated' 'truncated' issue --profile tls-server --csr "$T/trunc.der"
head -c $((dsize - 1)) "$T/ok.der" >"$T/trunc1.der"
refused 'malformed or truncated' 'truncated' issue --profile tls-server --csr "$T/trunc1.der"
{ cat "$T/ok.der"; printf 'junk'; } >"$T/trailing.der"
refused 'trailing data' 'trailing' issue --profile tls-server --csr "$T/trailing.der"
: >"$T/empty.csr"
refused 'CSR is empty' 'empty' issue --profile tls-server --csr "$T/empty.csr"
refused 'CSR is empty' 'empty' issue --profile tls-server --csr - </dev/null
# One byte over 64 KiB (a real request, padded), then far over.
{ cat "$T/ok.csr"; head -c $((65537 - $(stat -c %s "$T/ok.csr"))) /dev/zero | tr '\0' '\n'; } \
    >"$T/big.csr"
[[ $(stat -c %s "$T/big.csr") -eq 65537 ]] || fail "big.csr is not 65537 bytes"
refused '(larger than|limit is) 65536' '65536' issue --profile tls-server --csr "$T/big.csr"
head -c 1048576 /dev/zero >"$T/huge.csr"
refused '(larger than|limit is) 65536' '65536' issue --profile tls-server --csr "$T/huge.csr"
# Exactly 64 KiB is still read and parsed (and here accepted).
head -c $((65536 - $(stat -c %s "$T/ok.csr"))) /dev/zero | tr '\0' '\n' >"$T/pad"
cat "$T/ok.csr" "$T/pad" >"$T/max.csr"
[[ $(stat -c %s "$T/max.csr") -eq 65536 ]] || fail "max.csr is not 65536 bytes"

say "a CSR asking for CA:TRUE under tls-server"
make_csr "$T/k1.key" "$T/ca-true.csr" "/CN=www.example.com" PEM \
    -addext "basicConstraints=critical,CA:TRUE"
refused 'asks to be a CA' 'asks to be a CA' issue --profile tls-server --csr "$T/ca-true.csr"

say "other things the profile does not allow"
make_csr "$T/k1.key" "$T/eku.csr" "/CN=www.example.com" PEM \
    -addext "extendedKeyUsage=codeSigning"
refused 'extended key usage codeSigning is not allowed' 'codeSigning' \
    issue --profile tls-server --csr "$T/eku.csr"
make_csr "$T/k1.key" "$T/ku.csr" "/CN=www.example.com" PEM \
    -addext "keyUsage=critical,keyCertSign"
refused 'key usage keyCertSign is not allowed' 'keyCertSign' \
    issue --profile tls-server --csr "$T/ku.csr"
make_csr "$T/k1.key" "$T/attr.csr" "/CN=www.example.com/O=Evil Corp"
refused 'subject attribute O is not allowed' 'subject attribute' \
    issue --profile tls-server --csr "$T/attr.csr"
make_csr "$T/k1.key" "$T/ext.csr" "/CN=www.example.com" PEM \
    -addext "nsComment=please"
refused 'asks for extension' 'extension' issue --profile tls-server --csr "$T/ext.csr"

say "an unknown profile"
refused "no profile named 'no-such-profile'" 'no-such-profile' \
    issue --profile no-such-profile --csr "$T/ok.csr"

say "no pending or failed rows were left behind"
assert_eq 0 "$(count_certs "$ca" --status pending)" "pending certificates"
assert_eq 0 "$(count_certs "$ca" --status failed)" "failed certificates"
audit_verify_ok "$ca"
ok "store unchanged; audit log intact"

say "a wrong passphrase"
printf 'definitely not it\n' >"$T/wrong-pass"
chmod 600 "$T/wrong-pass"
refused 'wrong passphrase' 'unlock +refused' "$CERTKEEP" issue --home "$ca" \
    --profile tls-server --csr "$T/ok.csr" --passphrase-file "$T/wrong-pass"
refused 'wrong passphrase' 'unlock +refused' "$CERTKEEP" crl --home "$ca" \
    --passphrase-file "$T/wrong-pass"
[[ ! -e "$ca/crl/ca.crl" ]] || fail "a CRL was published with a wrong passphrase"

say "a world-readable CA key file"
chmod 644 "$ca/private/ca.key"
refused "private/ca\\.key.*chmod 600" 'unlock +refused' \
    issue --profile tls-server --csr "$T/ok.csr"
[[ "$MSG" == *"$ca/private/ca.key"* ]] || fail "the message does not name the key file"
chmod 600 "$ca/private/ca.key"

say "a world-readable CA home"
a_before_home=$(count_audit "$ca")
chmod 755 "$ca"
expect_fail "$ca.*chmod 700" issue --profile tls-server --csr "$T/ok.csr"
ok "$(head -n 1 "$LAST_ERR")"
expect_fail "chmod 700" "$CERTKEEP" list --home "$ca"
expect_fail "chmod 700" "$CERTKEEP" audit show --home "$ca"
chmod 700 "$ca"
assert_eq "$N_CERTS" "$(count_certs "$ca")" "certificates"
assert_eq "$a_before_home" "$(count_audit "$ca")" "audit entries (the CA was never opened)"
ok "refused before opening anything"

say "a passphrase file readable by others, or a symlink"
cp "$PWFILE" "$T/open-pass"
chmod 644 "$T/open-pass"
refused "open-pass.*chmod 600" 'unlock +refused' "$CERTKEEP" issue --home "$ca" \
    --profile tls-server --csr "$T/ok.csr" --passphrase-file "$T/open-pass"
ln -s "$PWFILE" "$T/link-pass"
refused "symlink" 'unlock +refused' "$CERTKEEP" issue --home "$ca" \
    --profile tls-server --csr "$T/ok.csr" --passphrase-file "$T/link-pass"

say "no way to give the passphrase on the command line"
a_before=$(count_audit "$ca")
for opt in --passphrase --passphrase= --password --pass -p; do
	if [[ "$opt" == *= ]]; then
		args=("$opt$PW")
	else
		args=("$opt" "$PW")
	fi
	run "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/ok.csr" "${args[@]}"
	assert_eq 2 "$LAST_RC" "exit status for $opt (usage error)"
	assert_grep 'unrecognized|ambiguous|invalid option' "$LAST_ERR" "message for $opt"
done
assert_eq "$N_CERTS" "$(count_certs "$ca")" "certificates"
assert_eq "$a_before" "$(count_audit "$ca")" "audit entries after usage errors"
ok "usage errors (exit 2), nothing done"

say "passphrase environment variables are ignored"
a_before=$(count_audit "$ca")
expect_fail 'no terminal.*--passphrase-file' detached env CERTKEEP_PASSPHRASE="$PW" \
    CERTKEEP_PASS="$PW" CERTKEEP_PASSWORD="$PW" CERTKEEP_KEY_PASSPHRASE="$PW" \
    PASSPHRASE="$PW" "$CERTKEEP" issue --home "$ca" \
    --profile tls-server --csr "$T/ok.csr" </dev/null
assert_eq "$N_CERTS" "$(count_certs "$ca")" "certificates"
assert_eq "$((a_before + 1))" "$(count_audit "$ca" )" "audit entries"
ok "no passphrase taken from the environment"

say "after all that, the CA still works and its log verifies"
audit_verify_ok "$ca"
expect_ok "$CERTKEEP" issue --home "$ca" --passphrase-file "$PWFILE" \
    --profile tls-server --days 397 --csr "$T/max.csr" --cert-only --out "$T/ok.pem"
expect_ok openssl verify -x509_strict -CAfile "$ca/ca.pem" "$T/ok.pem"
assert_eq "$((N_CERTS + 1))" "$(count_certs "$ca")" "certificates after a good issue"
assert_eq 0 "$(count_certs "$ca" --status pending)" "pending certificates"
audit_verify_ok "$ca"
ok "a 64 KiB request for 397 days is issued"
