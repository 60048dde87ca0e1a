#!/usr/bin/env bash
# hsm.sh - CA keys in a PKCS#11 token (SoftHSM2): for RSA-3072 and EC
# P-384, 'certkeep init --pkcs11-generate' makes the key inside the token
# (pkcs11-tool shows it sensitive and never extractable) and writes no key
# file; the CA issues, revokes, publishes a CRL and signs an audit
# checkpoint and a data backup's manifest with it, all verified with
# openssl; the token key must match the CA certificate; a wrong PIN is
# refused; 'key backup' refuses with the explanation; a data backup holds
# the key's reference, not the key. Skipped (77) without SoftHSM2.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so; do
	[[ -r $m ]] && MODULE=$m && break
done
if [[ -z $MODULE ]] || ! command -v softhsm2-util >/dev/null; then
	echo "SKIP: SoftHSM2 is not installed"
	trap - EXIT
	rm -rf "$T"
	exit 77
fi
command -v pkcs11-tool >/dev/null || fail "pkcs11-tool (opensc) is missing"

# A private SoftHSM2 with its tokens under $T.
mkdir -m 700 "$T/tokens"
cat >"$T/softhsm2.conf" <<EOF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF="$T/softhsm2.conf"
PIN=24681357
PINFILE="$T/pin"
printf '%s\n' "$PIN" >"$PINFILE"
chmod 600 "$PINFILE"
expect_ok softhsm2-util --init-token --free --label certkeep-ca \
    --pin "$PIN" --so-pin 97531864
p11() { pkcs11-tool --module "$MODULE" --token-label certkeep-ca "$@"; }

# A recipient for data backups.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/r.key" -out "$T/r.pem" -subj "/CN=backup recipient" \
    -days 30 2>/dev/null

for kt in rsa3072 ec-p384; do
	ca="$T/ca-$kt"
	uri="pkcs11:token=certkeep-ca;object=root-$kt"

	say "[$kt] init: the key pair is generated inside the token"
	expect_fail 'pin|PIN|passphrase' "$CERTKEEP" init --home "$T/bad-$kt" \
	    --root --subject "CN=bad" --key-type "$kt" --pkcs11-module "$MODULE" \
	    --pkcs11-uri "$uri" --pkcs11-generate --passphrase-file "$PWFILE"
	[[ ! -e $T/bad-$kt ]] || fail "a failed init left $T/bad-$kt"
	expect_fail 'PIN|query' "$CERTKEEP" init --home "$T/bad-$kt" --root \
	    --subject "CN=bad" --key-type "$kt" --pkcs11-module "$MODULE" \
	    --pkcs11-uri "$uri?pin-value=$PIN" --pkcs11-generate \
	    --passphrase-file "$PINFILE"
	expect_ok "$CERTKEEP" init --home "$ca" --root \
	    --subject "CN=HSM Root $kt,O=certkeep tests" --key-type "$kt" \
	    --base-url "http://pki.example.test/$kt" --pkcs11-module "$MODULE" \
	    --pkcs11-uri "$uri" --pkcs11-generate --passphrase-file "$PINFILE"
	[[ ! -e $ca/private/ca.key ]] || fail "a key file was written"
	[[ -z $(ls -A "$ca/private") ]] || fail "private/ is not empty"
	assert_grep "^key_uri = $uri\$" "$ca/certkeep.conf" "key_uri in the config"
	assert_no_grep "$PIN" "$ca/certkeep.conf" "the PIN in the config"
	expect_ok openssl verify -x509_strict -CAfile "$ca/ca.pem" "$ca/ca.pem"
	cert_text "$ca/ca.pem" "$T/$kt.txt"
	case $kt in
	rsa3072) assert_grep 'Public-Key: \(3072 bit\)' "$T/$kt.txt" "RSA-3072" ;;
	ec-p384) assert_grep 'NIST CURVE: P-384' "$T/$kt.txt" "P-384" ;;
	esac
	ok "self-signed by the token, verifies"

	say "[$kt] pkcs11-tool: the private key is sensitive, never extractable"
	expect_ok p11 --login --pin "$PIN" --list-objects --type privkey
	awk -v l="root-$kt" '/^Private Key Object/ { blk = $0; next }
	    blk != "" { blk = blk "\n" $0 }
	    /label:/ && $2 == l { want = 1 }
	    /Access:/ && want { print blk; exit }' "$LAST_OUT" >"$T/$kt.obj"
	[[ -s $T/$kt.obj ]] || fail_cmd "no private key root-$kt in the token"
	assert_grep 'never extractable' "$T/$kt.obj" "CKA_NEVER_EXTRACTABLE"
	assert_grep 'Access: +sensitive' "$T/$kt.obj" "CKA_SENSITIVE"
	assert_grep 'Usage: +sign$' "$T/$kt.obj" "sign only"
	# pkcs11-tool prints "extractable" for CKA_EXTRACTABLE true.
	grep -o 'Access:.*' "$T/$kt.obj" | sed 's/never extractable//' |
	    grep -q extractable && fail "the private key is extractable"
	ok "$(grep -o 'Access:.*' "$T/$kt.obj")"

	say "[$kt] issue, revoke, CRL: every signature by the token"
	make_key ec-p256 "$T/leaf.key"
	make_csr "$T/leaf.key" "$T/leaf-$kt.csr" "/CN=www.example.com" PEM \
	    -addext "subjectAltName=DNS:www.example.com"
	expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server \
	    --csr "$T/leaf-$kt.csr" --cert-only --out "$T/leaf-$kt.pem" \
	    --passphrase-file "$PINFILE"
	expect_ok openssl verify -x509_strict -CAfile "$ca/ca.pem" "$T/leaf-$kt.pem"
	expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server \
	    --csr "$T/leaf-$kt.csr" --cert-only --out "$T/leaf2-$kt.pem" \
	    --passphrase-file "$PINFILE"
	serial=$(cert_serial "$T/leaf2-$kt.pem")
	expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$serial" \
	    --reason keyCompromise --passphrase-file "$PINFILE"
	expect_ok "$CERTKEEP" crl --home "$ca" --out "$T/crl-$kt.pem" \
	    --passphrase-file "$PINFILE"
	expect_ok openssl crl -in "$T/crl-$kt.pem" -CAfile "$ca/ca.pem" -noout
	ossl_verify "$ca/ca.pem" "$ca/ca.pem" "$T/leaf-$kt.pem" -crl_check \
	    -CRLfile "$T/crl-$kt.pem"
	[[ $LAST_RC -eq 0 ]] || fail "the unrevoked leaf is rejected"
	ossl_verify "$ca/ca.pem" "$ca/ca.pem" "$T/leaf2-$kt.pem" -crl_check \
	    -CRLfile "$T/crl-$kt.pem"
	[[ $LAST_RC -ne 0 ]] && grep -q 'revoked' "$LAST_OUT" "$LAST_ERR" ||
	    fail "the revoked leaf is not rejected as revoked"
	ok "leaf verifies, CRL verifies, the revoked one is rejected"

	say "[$kt] an audit checkpoint (CMS) signed by the token"
	expect_ok "$CERTKEEP" audit checkpoint --home "$ca" --passphrase-file "$PINFILE"
	expect_ok "$CERTKEEP" audit verify --home "$ca"

	say "[$kt] a wrong PIN is refused and audited"
	printf 'wrong-pin\n' >"$T/badpin"
	chmod 600 "$T/badpin"
	expect_fail 'PIN' "$CERTKEEP" crl --home "$ca" --passphrase-file "$T/badpin"
	[[ $(count_audit "$ca" refused unlock) -ge 1 ]] ||
	    fail "the refused unlock is not in the audit log"

	say "[$kt] key backup refuses: the token's own tools back it up"
	expect_fail "PKCS#11 token.*token's own tools" "$CERTKEEP" key backup \
	    --home "$ca" --out "$T/kb-$kt.p8" --passphrase-file "$PINFILE"
	[[ ! -e $T/kb-$kt.p8 ]] || fail "a key backup was written"

	say "[$kt] a data backup: manifest signed by the token, no key inside"
	mkdir -p "$T/bk-$kt"
	expect_ok "$CERTKEEP" backup --home "$ca" --to "$T/bk-$kt" \
	    --recipient "$T/r.pem" --passphrase-file "$PINFILE" --quiet
	set=$(ls "$T/bk-$kt"/*.ckb | head -1)
	[[ -s $set ]] || fail "no backup set"
	rm -rf "$T/open" && mkdir "$T/open"
	openssl cms -decrypt -inform DER -in "$set" -recip "$T/r.pem" \
	    -inkey "$T/r.key" -out "$T/open/set.tar" || fail "cms -decrypt"
	(cd "$T/open" && tar xf set.tar) || fail "tar"
	openssl cms -verify -inform DER -in "$T/open/manifest.p7s" \
	    -CAfile "$ca/chain.pem" -purpose any -out "$T/open/m.json" \
	    2>/dev/null || fail "the manifest's token signature does not verify"
	for p in $(cd "$T/open" && find parts -name '*.zst'); do
		zstd -dcq "$T/open/$p"
	done >"$T/open/all.txt"
	grep -qa "PRIVATE KEY" "$T/open/all.txt" && fail "a private key in the set"
	grep -qaF "key_uri = $uri" "$T/open/all.txt" ||
	    fail "the key's reference is not in the set"
	if find "$T/open" -path '*private*' | grep -q .; then
		fail "a private/ part in the set"
	fi
	ok "manifest verifies; the set holds key_uri, no key"
done

say "the token key must match the CA certificate"
ca="$T/ca-rsa3072"
cp "$ca/certkeep.conf" "$T/conf.bak"
sed -i 's/^key_uri = .*/key_uri = pkcs11:token=certkeep-ca;object=root-ec-p384/' \
    "$ca/certkeep.conf"
expect_fail 'does not belong|certificate' "$CERTKEEP" crl --home "$ca" \
    --passphrase-file "$PINFILE"
cp "$T/conf.bak" "$ca/certkeep.conf"
expect_ok "$CERTKEEP" crl --home "$ca" --passphrase-file "$PINFILE"
ok "a token key for another certificate is refused"

say "an existing token key, without --pkcs11-generate"
expect_ok "$CERTKEEP" init --home "$T/again" --root --subject "CN=Again" \
    --key-type ec-p384 --pkcs11-module "$MODULE" \
    --pkcs11-uri "pkcs11:token=certkeep-ca;object=root-ec-p384" \
    --passphrase-file "$PINFILE"
cmp -s <(openssl x509 -in "$T/again/ca.pem" -noout -pubkey) \
    <(openssl x509 -in "$T/ca-ec-p384/ca.pem" -noout -pubkey) ||
    fail "init on an existing key used another key"
expect_fail 'already holds' "$CERTKEEP" init --home "$T/dup" --root \
    --subject "CN=Dup" --key-type ec-p384 --pkcs11-module "$MODULE" \
    --pkcs11-uri "pkcs11:token=certkeep-ca;object=root-ec-p384" \
    --pkcs11-generate --passphrase-file "$PINFILE"
ok "reuses an existing key; refuses to generate over one"
