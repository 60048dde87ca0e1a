#!/usr/bin/env bash
# three_tier.sh - root -> intermediate (pathlen 1, from a profile that
# allows it) -> issuing CA (pathlen 0) -> leaf, verified by openssl; and
# the path length limits enforced on the way: a pathlen-0 CA signs no
# further CA, a pathlen-1 CA only CAs below it, a profile caps --path-len.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KT=ec-p256
root="$T/root" inter="$T/intermediate" iss="$T/issuing"

SUBCA1_PROFILE='
# Intermediate CAs that may have one more CA below them.
[profile.sub-ca-1]
ca = yes
max_path_length = 1
key_usage = digitalSignature, keyCertSign, cRLSign
max_validity_days = 3650
key_types = rsa2048, rsa3072, rsa4096, ec-p256, ec-p384, ed25519
subject_attributes = *
'

say "root CA without a path length constraint, with a sub-ca-1 profile"
new_root "$root" "$KT"
cert_text "$root/ca.pem" "$T/root.txt"
assert_no_grep 'pathlen' "$T/root.txt" "root path length"
printf '%s' "$SUBCA1_PROFILE" >>"$root/certkeep.conf"
expect_ok "$CERTKEEP" ca show --home "$root"
assert_grep 'profiles:.* sub-ca-1' "$LAST_OUT" "the new profile is loaded"
ok "profile sub-ca-1 appended and loaded"

say "intermediate CA: --path-len 1 under sub-ca-1"
new_issuing "$inter" "$KT"
# The default sub-ca profile caps the path length at 0.
n_before=$(count_certs "$root")
expect_fail 'path length 1 .*too long' "$CERTKEEP" issue --home "$root" \
    --profile sub-ca --path-len 1 --csr "$inter/ca.csr" --passphrase-file "$PWFILE"
assert_eq "$n_before" "$(count_certs "$root")" "certificates after a refusal"
ok "sub-ca refuses --path-len 1"
install_issuing "$root" "$inter" sub-ca-1 --path-len 1
cert_text "$inter/ca.pem" "$T/inter.txt"
assert_grep 'CA:TRUE, pathlen:1' "$T/inter.txt" "intermediate pathlen:1"
expect_ok openssl verify -x509_strict -CAfile "$root/ca.pem" "$inter/ca.pem"
ok "intermediate has pathlen:1 and verifies"

say "issuing CA: signed by the intermediate under sub-ca (pathlen 0)"
new_issuing "$iss" "$KT"
install_issuing "$inter" "$iss" sub-ca
cert_text "$iss/ca.pem" "$T/iss.txt"
assert_grep 'CA:TRUE, pathlen:0' "$T/iss.txt" "issuing pathlen:0"
[[ $(grep -c 'BEGIN CERTIFICATE' "$iss/chain.pem") -eq 3 ]] ||
    fail "the issuing CA's chain.pem should hold 3 certificates"
expect_ok "$CERTKEEP" ca show --home "$iss"
assert_grep '^  2: /CN=Test Root' "$LAST_OUT" "ca show chain ends at the root"
cat "$iss/ca.pem" "$inter/ca.pem" >"$T/untrusted.pem"
ossl_verify "$root/ca.pem" "$inter/ca.pem" "$iss/ca.pem"
[[ $LAST_RC -eq 0 ]] || fail "openssl rejects the issuing CA"
ok "issuing CA has pathlen:0, chain of 3, verifies"

say "leaf under the issuing CA, verified through both intermediates"
make_key "$KT" "$T/leaf.key"
make_csr "$T/leaf.key" "$T/leaf.csr" "/CN=host.example.com"
expect_ok "$CERTKEEP" issue --home "$iss" --profile tls-server \
    --csr "$T/leaf.csr" --out "$T/bundle.pem" --passphrase-file "$PWFILE"
[[ $(grep -c 'BEGIN CERTIFICATE' "$T/bundle.pem") -eq 4 ]] ||
    fail "issue output should be leaf + 3 chain certificates"
openssl x509 -in "$T/bundle.pem" -out "$T/leaf.pem"
ossl_verify "$root/ca.pem" "$T/untrusted.pem" "$T/leaf.pem" -purpose sslserver
[[ $LAST_RC -eq 0 ]] || fail "openssl rejects the leaf"
ossl_verify "$root/ca.pem" "$T/bundle.pem" "$T/leaf.pem"
[[ $LAST_RC -eq 0 ]] || fail "openssl rejects the leaf with the issued bundle"
ossl_verify "$root/ca.pem" "$iss/ca.pem" "$T/leaf.pem"
[[ $LAST_RC -ne 0 ]] || fail "openssl accepts the leaf without the intermediate"
ok "leaf verifies root -> intermediate -> issuing -> leaf (and not without the middle)"
cert_text "$T/leaf.pem" "$T/leaf.txt"
assert_no_grep 'CRL Distribution|Authority Information Access' "$T/leaf.txt" \
    "leaf of a CA created without --base-url"
ok "no CRL DP or AIA without --base-url"

say "CRLs at every level: -crl_check_all accepts the chain"
for h in "$root" "$inter" "$iss"; do
	expect_ok "$CERTKEEP" crl --home "$h" --passphrase-file "$PWFILE"
	cat "$LAST_OUT" >>"$T/crls.pem"
done
ossl_verify "$root/ca.pem" "$T/untrusted.pem" "$T/leaf.pem" -crl_check_all \
    -CRLfile "$T/crls.pem"
[[ $LAST_RC -eq 0 ]] || fail "openssl -crl_check_all rejects the chain"
ok "all three CRLs accepted"

say "the pathlen-0 issuing CA refuses to sign a further CA"
new_issuing "$T/fourth" "$KT"
n_before=$(count_certs "$iss")
a_before=$(count_audit "$iss")
expect_fail 'path length.*\(0\).*forbids subordinate CAs' "$CERTKEEP" issue \
    --home "$iss" --profile sub-ca --csr "$T/fourth/ca.csr" --passphrase-file "$PWFILE"
assert_eq "$n_before" "$(count_certs "$iss")" "certificates after the refusal"
assert_eq "$((a_before + 1))" "$(count_audit "$iss")" "audit entries after the refusal"
last_audit "$iss" >"$T/last"
assert_grep ' issue +refused ' "$T/last" "refusal audited"
ok "refused, audited, nothing issued"

say "the pathlen-1 intermediate refuses a CA with pathlen 1 below it"
printf '%s' "$SUBCA1_PROFILE" >>"$inter/certkeep.conf"
n_before=$(count_certs "$inter")
expect_fail 'path length must be below this CA.s \(1\)' "$CERTKEEP" issue \
    --home "$inter" --profile sub-ca-1 --path-len 1 --csr "$T/fourth/ca.csr" \
    --passphrase-file "$PWFILE"
expect_fail 'path length must be below this CA.s \(1\)' "$CERTKEEP" issue \
    --home "$inter" --profile sub-ca-1 --csr "$T/fourth/ca.csr" \
    --passphrase-file "$PWFILE"
assert_eq "$n_before" "$(count_certs "$inter")" "certificates after the refusals"
ok "refused (explicit --path-len 1 and the profile's default of 1)"

say "a leaf profile refuses --path-len"
expect_fail 'path length only applies to CA' "$CERTKEEP" issue --home "$iss" \
    --profile tls-server --path-len 0 --csr "$T/leaf.csr" --passphrase-file "$PWFILE"
ok "refused"

say "a root with --path-len 1 cannot make a pathlen-1 intermediate"
new_root "$T/root1" "$KT" --path-len 1
cert_text "$T/root1/ca.pem" "$T/root1.txt"
assert_grep 'CA:TRUE, pathlen:1' "$T/root1.txt" "root --path-len 1"
printf '%s' "$SUBCA1_PROFILE" >>"$T/root1/certkeep.conf"
new_issuing "$T/inter1" "$KT"
expect_fail 'path length must be below this CA.s \(1\)' "$CERTKEEP" issue \
    --home "$T/root1" --profile sub-ca-1 --path-len 1 --csr "$T/inter1/ca.csr" \
    --passphrase-file "$PWFILE"
install_issuing "$T/root1" "$T/inter1" sub-ca-1 --path-len 0
cert_text "$T/inter1/ca.pem" "$T/inter1.txt"
assert_grep 'CA:TRUE, pathlen:0' "$T/inter1.txt" "intermediate under root1"
expect_ok openssl verify -x509_strict -CAfile "$T/root1/ca.pem" "$T/inter1/ca.pem"
ok "pathlen 1 refused, pathlen 0 issued and verified"

for h in "$root" "$inter" "$iss" "$T/root1" "$T/inter1"; do
	audit_verify_ok "$h"
done
ok "audit logs intact"
