#!/usr/bin/env bash
# log_before_sign.sh - certkeep records the SHA-256 of a certificate's
# TBSCertificate in the store before it signs; the recorded digest must be
# that of the certificate it then hands out (self-signed roots, CA
# certificates and leaves, for each signature algorithm).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# row SERIAL COLUMN: one column of the certs table
row() {
	sqlite3 -bail "$home/store.db" \
	    "SELECT $2 FROM certs WHERE serial = '$1'" ||
	    fail "sqlite3 query on $home/store.db failed"
}

# check_logged HOME CERT.pem WHAT: the store row for the certificate's
# serial holds its TBS digest, status issued, and exactly its DER.
check_logged() {
	local cert=$2 what=$3 serial want got der_hex
	home=$1
	serial=$(cert_serial "$cert")
	want=$(tbs_sha256 "$cert")
	[[ "$want" =~ ^[0-9a-f]{64}$ ]] || fail "no TBS digest for $cert"
	got=$(row "$serial" tbs_sha256)
	[[ -n "$got" ]] || fail "$what: no store row for serial $serial"
	assert_eq "$want" "$(printf '%s' "$got" | tr 'A-F' 'a-f')" \
	    "$what: logged TBS SHA-256 (serial $serial)"
	assert_eq issued "$(row "$serial" status)" "$what: status"
	der_hex=$(openssl x509 -in "$cert" -outform DER | od -An -v -tx1 | tr -d ' \n' |
	    tr 'a-f' 'A-F')
	assert_eq "$der_hex" "$(row "$serial" 'hex(der)')" "$what: stored DER"
	# The digest is also what 'certkeep show' reports.
	expect_ok "$CERTKEEP" show --home "$home" "$serial"
	assert_grep "^TBS SHA-256: +$want\$" "$LAST_OUT" "$what: show TBS SHA-256"
	ok "$what: tbs_sha256 = $want"
}

# Cross-check the TBS extraction once against a plain byte slice of the
# DER (offset and length read from the outer structure).
tbs_by_slice() {
	local cert=$1 der="$T/slice.der" line off hl len
	openssl x509 -in "$cert" -outform DER -out "$der"
	line=$(openssl asn1parse -inform DER -in "$der" | sed -n 2p)
	[[ "$line" =~ ^\ *([0-9]+):d=1\ +hl=([0-9]+)\ +l=\ *([0-9]+)\ cons:\ SEQUENCE ]] ||
	    fail "unexpected asn1parse line: $line"
	off=${BASH_REMATCH[1]} hl=${BASH_REMATCH[2]} len=${BASH_REMATCH[3]}
	tail -c +$((off + 1)) "$der" | head -c $((hl + len)) | sha256sum | cut -d' ' -f1
}

for kt in rsa2048 ec-p256 ec-p384 ed25519; do
	say "[$kt] root, issuing CA and leaf"
	root="$T/$kt-root" iss="$T/$kt-issuing"
	new_root "$root" "$kt"
	new_issuing "$iss" "$kt"
	install_issuing "$root" "$iss" sub-ca
	make_key "$kt" "$T/$kt.key"
	make_csr "$T/$kt.key" "$T/$kt.csr" "/CN=www.example.com"
	expect_ok "$CERTKEEP" issue --home "$iss" --profile tls-server \
	    --csr "$T/$kt.csr" --cert-only --out "$T/$kt-leaf.pem" --passphrase-file "$PWFILE"

	assert_eq "$(tbs_by_slice "$T/$kt-leaf.pem")" "$(tbs_sha256 "$T/$kt-leaf.pem")" \
	    "TBS digest by asn1parse -strparse and by byte slice"
	check_logged "$root" "$root/ca.pem" "self-signed root"
	check_logged "$root" "$iss/ca.pem" "issuing CA certificate (in the root's store)"
	check_logged "$iss" "$T/$kt-leaf.pem" "leaf"

	home=$iss
	assert_eq 0 "$(count_certs "$iss" --status pending)" "pending rows"
	assert_eq 0 "$(count_certs "$iss" --status failed)" "failed rows"
	# Every row's digest is distinct (a digest is never reused).
	assert_eq "$(sqlite3 "$root/store.db" 'SELECT count(*) FROM certs')" \
	    "$(sqlite3 "$root/store.db" 'SELECT count(DISTINCT tbs_sha256) FROM certs')" \
	    "distinct TBS digests"
	# The signature over that TBS verifies.
	ossl_verify "$root/ca.pem" "$iss/ca.pem" "$T/$kt-leaf.pem"
	[[ $LAST_RC -eq 0 ]] || fail "openssl rejects the leaf"
done

say "a refused request logs no row at all"
home="$T/ec-p256-issuing"
n_rows=$(sqlite3 "$home/store.db" 'SELECT count(*) FROM certs')
make_csr "$T/ec-p256.key" "$T/evil.csr" "/CN=evil.org"
expect_fail 'outside' "$CERTKEEP" issue --home "$home" --profile tls-server \
    --csr "$T/evil.csr" --passphrase-file "$PWFILE"
assert_eq "$n_rows" "$(sqlite3 "$home/store.db" 'SELECT count(*) FROM certs')" "cert rows"
ok "no row"
