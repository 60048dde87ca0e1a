#!/usr/bin/env bash
# two_tier.sh - root CA -> issuing CA -> TLS server leaf, for every key
# type certkeep supports, checked end to end with openssl: chain
# verification (strict), CRLs before and after revocation, the encrypted
# CA key, the leaf's extensions, and PEM and DER requests.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KEY_TYPES=(rsa2048 rsa3072 rsa4096 ec-p256 ec-p384 ed25519)
BASE=http://pki.example.test

# key_text_re KEYTYPE: what 'openssl x509 -text' says about such a key
key_text_re() {
	case "$1" in
	rsa*) echo "Public-Key: \\(${1#rsa} bit\\)" ;;
	ec-p256) echo 'NIST CURVE: P-256' ;;
	ec-p384) echo 'NIST CURVE: P-384' ;;
	ed25519) echo 'Public Key Algorithm: ED25519' ;;
	esac
}

# ext_value TEXTFILE HEADER: the first line after an extension header
ext_value() {
	awk -v h="$2" 'found { sub(/^ +/, ""); print; exit } index($0, h) { found = 1 }' "$1"
}

for kt in "${KEY_TYPES[@]}"; do
	d="$T/$kt"
	mkdir "$d"
	root="$d/root" iss="$d/issuing"

	say "[$kt] root CA"
	new_root "$root" "$kt" --base-url "$BASE/root-$kt"
	assert_file_mode 700 "$root"
	assert_file_mode 600 "$root/private/ca.key"
	cert_text "$root/ca.pem" "$d/root.txt"
	assert_grep "$(key_text_re "$kt")" "$d/root.txt" "root key type"
	assert_grep 'CA:TRUE' "$d/root.txt" "root basicConstraints"
	assert_no_grep 'pathlen' "$d/root.txt" "root without --path-len"
	expect_ok openssl verify -x509_strict -CAfile "$root/ca.pem" "$root/ca.pem"
	ok "self-signed root verifies"

	say "[$kt] issuing CA: init, signed by the root under sub-ca, installed"
	new_issuing "$iss" "$kt" --base-url "$BASE/issuing-$kt"
	assert_grep 'BEGIN CERTIFICATE REQUEST' "$iss/ca.csr" "issuing CA request"
	# Not usable before its certificate is installed.
	make_key "$kt" "$d/early.key"
	make_csr "$d/early.key" "$d/early.csr" "/CN=early.example.com"
	expect_fail 'no certificate|install' "$CERTKEEP" issue --home "$iss" \
	    --profile tls-server --csr "$d/early.csr" --passphrase-file "$PWFILE"
	ok "an issuing CA without its certificate refuses to issue"
	install_issuing "$root" "$iss" sub-ca
	cp "$T/issuing.cert.pem" "$d/issuing.pem"
	cmp -s <(openssl x509 -in "$iss/ca.pem" -outform DER) \
	    <(openssl x509 -in "$d/issuing.pem" -outform DER) ||
	    fail "installed ca.pem differs from the issued certificate"
	[[ $(grep -c 'BEGIN CERTIFICATE' "$iss/chain.pem") -eq 2 ]] ||
	    fail "issuing chain.pem should hold 2 certificates"
	cert_text "$iss/ca.pem" "$d/iss.txt"
	assert_grep "$(key_text_re "$kt")" "$d/iss.txt" "issuing CA key type"
	assert_grep 'CA:TRUE, pathlen:0' "$d/iss.txt" "issuing CA pathlen:0"
	assert_grep 'Certificate Sign' "$d/iss.txt" "issuing CA keyCertSign"
	assert_grep "URI:$BASE/root-$kt/crl/ca.crl" "$d/iss.txt" \
	    "issuing CA CRL distribution point (root's --base-url)"
	expect_ok openssl verify -x509_strict -CAfile "$root/ca.pem" "$iss/ca.pem"
	ok "issuing CA certificate: pathlen:0, verifies against the root"
	expect_ok "$CERTKEEP" ca show --home "$iss"
	assert_grep '^state: +active' "$LAST_OUT" "ca show state"
	assert_grep '^path length: +0' "$LAST_OUT" "ca show path length"

	say "[$kt] leaf certificates from openssl requests, PEM and DER"
	make_key "$kt" "$d/leaf.key"
	make_csr "$d/leaf.key" "$d/leaf.csr" "/CN=www.example.com" PEM \
	    -addext "subjectAltName=DNS:www.example.com,IP:127.0.0.1"
	expect_ok "$CERTKEEP" issue --home "$iss" --profile tls-server \
	    --csr "$d/leaf.csr" --out "$d/leaf-bundle.pem" --passphrase-file "$PWFILE"
	assert_grep 'issued certificate serial [0-9A-F]+' "$LAST_ERR" "issue message"
	[[ $(grep -c 'BEGIN CERTIFICATE' "$d/leaf-bundle.pem") -eq 3 ]] ||
	    fail "issue output should be leaf + issuing + root"
	openssl x509 -in "$d/leaf-bundle.pem" -out "$d/leaf.pem"
	make_key "$kt" "$d/leaf2.key"
	make_csr "$d/leaf2.key" "$d/leaf2.der" "/CN=api.example.com" DER
	if head -c 20 "$d/leaf2.der" | grep -q -- '-----BEGIN'; then fail "DER CSR is PEM"; fi
	expect_ok "$CERTKEEP" issue --home "$iss" --profile tls-server \
	    --csr "$d/leaf2.der" --cert-only --out "$d/leaf2.pem" --passphrase-file "$PWFILE"
	[[ $(grep -c 'BEGIN CERTIFICATE' "$d/leaf2.pem") -eq 1 ]] ||
	    fail "--cert-only output should be one certificate"
	# The public key in each certificate is the requester's.
	cmp -s <(openssl pkey -in "$d/leaf.key" -pubout) \
	    <(openssl x509 -in "$d/leaf.pem" -noout -pubkey) ||
	    fail "leaf public key differs from the request's"
	cmp -s <(openssl pkey -in "$d/leaf2.key" -pubout) \
	    <(openssl x509 -in "$d/leaf2.pem" -noout -pubkey) ||
	    fail "DER-request leaf public key differs from the request's"
	ok "PEM and DER requests both accepted"

	say "[$kt] openssl verify -x509_strict accepts the leaves with the chain"
	ossl_verify "$root/ca.pem" "$iss/ca.pem" "$d/leaf.pem"
	[[ $LAST_RC -eq 0 ]] || fail "openssl verify rejects the leaf"
	ossl_verify "$root/ca.pem" "$d/leaf-bundle.pem" "$d/leaf2.pem" -purpose sslserver
	[[ $LAST_RC -eq 0 ]] || fail "openssl verify rejects the DER-request leaf"
	ok "both leaves verify"

	say "[$kt] leaf extensions"
	cert_text "$d/leaf.pem" "$d/leaf.txt"
	assert_grep "$(key_text_re "$kt")" "$d/leaf.txt" "leaf key type"
	assert_grep 'CA:FALSE' "$d/leaf.txt" "leaf basicConstraints"
	assert_grep 'TLS Web Server Authentication' "$d/leaf.txt" "leaf EKU"
	assert_grep 'DNS:www.example.com, IP Address:127.0.0.1' "$d/leaf.txt" "leaf SAN"
	assert_grep 'X509v3 Subject Key Identifier' "$d/leaf.txt" "leaf SKI"
	assert_grep 'X509v3 Authority Key Identifier' "$d/leaf.txt" "leaf AKI"
	aki=$(ext_value "$d/leaf.txt" 'X509v3 Authority Key Identifier')
	aki=${aki#keyid:}
	ski=$(ext_value "$d/iss.txt" 'X509v3 Subject Key Identifier')
	[[ -n "$aki" && "$aki" == "$ski" ]] ||
	    fail "leaf AKI ($aki) is not the issuing CA's SKI ($ski)"
	assert_grep "URI:$BASE/issuing-$kt/crl/ca.crl" "$d/leaf.txt" "leaf CRL DP"
	assert_grep "OCSP - URI:$BASE/issuing-$kt/ocsp" "$d/leaf.txt" "leaf AIA OCSP"
	assert_grep "CA Issuers - URI:$BASE/issuing-$kt/ca.crt" "$d/leaf.txt" \
	    "leaf AIA caIssuers"
	ok "SKI, AKI (= issuing SKI), CRL DP and AIA OCSP/caIssuers present"

	say "[$kt] CRL: leaf accepted with -crl_check"
	expect_ok "$CERTKEEP" crl --home "$iss" --out "$d/crl1.pem" --passphrase-file "$PWFILE"
	assert_grep 'published CRL number 1' "$LAST_ERR" "first CRL number"
	cmp -s "$d/crl1.pem" "$iss/crl/ca.crl.pem" || fail "published CRL PEM differs"
	cmp -s <(openssl crl -in "$iss/crl/ca.crl" -inform DER -outform DER) \
	    "$iss/crl/ca.crl" || fail "crl/ca.crl is not DER"
	expect_ok openssl crl -in "$d/crl1.pem" -CAfile "$iss/ca.pem" -noout
	assert_grep 'verify OK' "$LAST_ERR" "CRL signature"
	ossl_verify "$root/ca.pem" "$iss/ca.pem" "$d/leaf.pem" -crl_check -CRLfile "$d/crl1.pem"
	[[ $LAST_RC -eq 0 ]] || fail "openssl verify -crl_check rejects the unrevoked leaf"
	expect_ok "$CERTKEEP" crl --home "$root" --out "$d/root-crl.pem" --passphrase-file "$PWFILE"
	cat "$d/crl1.pem" "$d/root-crl.pem" >"$d/crls.pem"
	ossl_verify "$root/ca.pem" "$iss/ca.pem" "$d/leaf.pem" -crl_check_all -CRLfile "$d/crls.pem"
	[[ $LAST_RC -eq 0 ]] || fail "openssl verify -crl_check_all rejects the chain"
	ok "CRL 1 signed by the issuing CA; leaf passes -crl_check and -crl_check_all"

	say "[$kt] revoke (keyCompromise): leaf rejected with the new CRL"
	serial=$(cert_serial "$d/leaf.pem")
	expect_ok "$CERTKEEP" revoke --home "$iss" --serial "$serial" --reason keyCompromise
	expect_ok "$CERTKEEP" crl --home "$iss" --out "$d/crl2.pem" --passphrase-file "$PWFILE"
	assert_grep 'published CRL number 2' "$LAST_ERR" "second CRL number"
	ossl_verify "$root/ca.pem" "$iss/ca.pem" "$d/leaf.pem" -crl_check -CRLfile "$d/crl2.pem"
	[[ $LAST_RC -ne 0 ]] || fail "openssl verify accepts a revoked leaf"
	grep -q 'certificate revoked' "$LAST_OUT" "$LAST_ERR" ||
	    fail "openssl verify does not say 'certificate revoked'"
	ossl_verify "$root/ca.pem" "$iss/ca.pem" "$d/leaf2.pem" -crl_check -CRLfile "$d/crl2.pem"
	[[ $LAST_RC -eq 0 ]] || fail "the other leaf is rejected with the new CRL"
	ok "revoked leaf: 'certificate revoked'; the other leaf still verifies"

	say "[$kt] openssl crl -text: CRL number increases, reason shown"
	openssl crl -in "$d/crl1.pem" -noout -text >"$d/crl1.txt"
	openssl crl -in "$d/crl2.pem" -noout -text >"$d/crl2.txt"
	n1=$(ext_value "$d/crl1.txt" 'X509v3 CRL Number')
	n2=$(ext_value "$d/crl2.txt" 'X509v3 CRL Number')
	[[ "$n1" =~ ^[0-9]+$ && "$n2" =~ ^[0-9]+$ && $n2 -gt $n1 ]] ||
	    fail "CRL number does not increase ($n1 -> $n2)"
	assert_grep 'No Revoked Certificates' "$d/crl1.txt" "first CRL is empty"
	assert_grep "Serial Number: 0*$serial" "$d/crl2.txt" "revoked serial in the CRL"
	assert_grep 'Key Compromise' "$d/crl2.txt" "revocation reason in the CRL"
	ok "CRL number $n1 -> $n2; serial and 'Key Compromise' listed"

	say "[$kt] the CA keys are encrypted PKCS#8 that openssl opens"
	for home in "$root" "$iss"; do
		assert_grep 'BEGIN ENCRYPTED PRIVATE KEY' "$home/private/ca.key" \
		    "$home key encrypted"
		expect_ok openssl pkey -in "$home/private/ca.key" -passin "file:$PWFILE" \
		    -pubout -out "$d/pub.pem"
		cmp -s "$d/pub.pem" <(openssl x509 -in "$home/ca.pem" -noout -pubkey) ||
		    fail "$home: the key does not match ca.pem"
		printf 'not the passphrase\n' >"$d/wrong"
		run openssl pkey -in "$home/private/ca.key" -passin "file:$d/wrong" -noout
		[[ $LAST_RC -ne 0 ]] || fail "$home key opens with a wrong passphrase"
	done
	ok "ca.key opens with openssl pkey -passin file:..., matches ca.pem"

	audit_verify_ok "$root"
	audit_verify_ok "$iss"
	ok "audit logs intact"
	# RSA 4096 and friends are big: keep the scratch space small.
	rm -rf "$d"
done

say "all key types passed"
