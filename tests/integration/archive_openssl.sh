#!/usr/bin/env bash
# archive_openssl.sh - a data backup set opens with standard tools only
# (docs/backup.md): written by certkeep's archive code (through the small
# archive_driver, $ARCHIVE_DRIVER), it decrypts with 'openssl cms -decrypt'
# for an RSA and an EC recipient, unpacks with tar, its manifest verifies
# with 'openssl cms -verify', its part digests are those of the files and
# its parts decompress with zstd. The other way round, a set made by
# openssl, tar and zstd is read by certkeep's reader (DER and streamed
# BER). Wrong keys, a foreign signer and truncation are refused.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

drv=${ARCHIVE_DRIVER:?ARCHIVE_DRIVER must name the archive_driver binary}
command -v zstd >/dev/null || fail "zstd is needed (scripts/setup)"
command -v tar >/dev/null || fail "tar is needed"

say "keys and certificates"
# A CA as certkeep makes them (keyCertSign, cRLSign, digitalSignature).
cat >ca.cnf <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment, keyAgreement
EOF
expect_ok openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
expect_ok openssl req -x509 -new -key ca.key -subj "/CN=Backup Test Root" \
    -days 30 -config ca.cnf -extensions ca -out ca.pem
expect_ok openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca2.key
expect_ok openssl req -x509 -new -key ca2.key -subj "/CN=Someone Else" \
    -days 30 -config ca.cnf -extensions ca -out ca2.pem
expect_ok openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out r-rsa.key
expect_ok openssl req -x509 -new -key r-rsa.key -subj "/CN=Custodian RSA" \
    -days 30 -config ca.cnf -extensions leaf -out r-rsa.pem
expect_ok openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out r-ec.key
expect_ok openssl req -x509 -new -key r-ec.key -subj "/CN=Custodian EC" \
    -days 30 -config ca.cnf -extensions leaf -out r-ec.pem
expect_ok openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out stranger.key
ok "CA, two recipients (RSA 2048, EC P-384), a stranger"

say "parts"
mkdir -p src
for i in $(seq 1 3000); do
	printf '{"serial":"%04x","subject":"CN=host%d.example.com","status":"issued"}\n' "$i" "$i"
done >src/certs.jsonl
head -c 300000 /dev/urandom >src/blob.bin
cp ca.pem src/ca.pem
: >src/empty.jsonl

say "certkeep writes a set to both recipients"
expect_ok "$drv" write set.ckb --signer ca.key ca.pem --recip r-rsa.pem \
    --recip r-ec.pem --tmpdir "$T" \
    parts/store/certs.jsonl.zst=src/certs.jsonl \
    parts/store/blob.bin.zst=src/blob.bin \
    parts/ca/ca.pem.zst=src/ca.pem \
    parts/store/empty.jsonl.zst=src/empty.jsonl
assert_file_mode 600 set.ckb
written_sha=$(awk '{print $2}' "$LAST_OUT")
assert_eq "$written_sha" "$(sha256sum set.ckb | awk '{print $1}')" \
    "the digest the writer reports"
ok "set.ckb, $(stat -c %s set.ckb) bytes"

for r in rsa ec; do
	say "openssl cms -decrypt for the $r recipient, then tar"
	rm -rf "x-$r" && mkdir "x-$r"
	expect_ok openssl cms -decrypt -inform DER -in set.ckb \
	    -recip "r-$r.pem" -inkey "r-$r.key" -out "x-$r/set.tar"
	(cd "x-$r" && tar tf set.tar) >"x-$r/list" || fail "tar tf failed"
	printf '%s\n' parts/store/certs.jsonl.zst parts/store/blob.bin.zst \
	    parts/ca/ca.pem.zst parts/store/empty.jsonl.zst manifest.json \
	    manifest.p7s >want.list
	cmp -s want.list "x-$r/list" ||
	    fail "tar entries are not in the documented order: $(cat "x-$r/list")"
	(cd "x-$r" && tar xf set.tar) || fail "tar xf failed"
	ok "entries: parts, manifest.json, manifest.p7s"

	say "openssl cms -verify of the manifest ($r)"
	expect_ok openssl cms -verify -inform DER -in "x-$r/manifest.p7s" \
	    -CAfile ca.pem -out "x-$r/m.json"
	cmp -s "x-$r/m.json" "x-$r/manifest.json" ||
	    fail "manifest.json is not the signed content"
	expect_fail 'verif' openssl cms -verify -inform DER \
	    -in "x-$r/manifest.p7s" -CAfile ca2.pem -out /dev/null
	ok "signed by the CA, not verifiable against another"

	say "part digests and contents ($r)"
	for p in store/certs.jsonl store/blob.bin ca/ca.pem store/empty.jsonl; do
		sum=$(sha256sum "x-$r/parts/$p.zst" | awk '{print $1}')
		grep -q "\"sha256\": \"$sum\"" "x-$r/manifest.json" ||
		    fail "digest of parts/$p.zst is not in the manifest"
		zstd -q -d -c "x-$r/parts/$p.zst" >"x-$r/plain" ||
		    fail "zstd -d parts/$p.zst failed"
		cmp -s "x-$r/plain" "src/$(basename "$p")" ||
		    fail "parts/$p.zst does not decompress to its source"
	done
	ok "sha256sum matches the manifest; zstd -d gives the sources back"
done

say "certkeep reads its own set"
mkdir out
expect_ok "$drv" read set.ckb --key r-ec.key --cert r-ec.pem --trust ca.pem \
    --out out
assert_grep "^archive $written_sha " "$LAST_OUT" "archive digest on reading"
assert_grep "^signer .*Backup Test Root" "$LAST_OUT" "signer"
cmp -s out/parts/store/certs.jsonl src/certs.jsonl || fail "certs part differs"
cmp -s out/parts/store/blob.bin src/blob.bin || fail "blob part differs"
cmp -s out/manifest.json x-rsa/manifest.json || fail "manifest differs"
ok "parts and manifest as written"

say "refusals"
expect_fail 'not encrypted to the given key' "$drv" read set.ckb --key stranger.key
expect_fail 'not (one of the )?trusted' "$drv" read set.ckb --key r-rsa.key \
    --trust ca2.pem
head -c $(($(stat -c %s set.ckb) - 100)) set.ckb >cut.ckb
expect_fail 'truncated' "$drv" read cut.ckb --key r-rsa.key
ok "stranger's key, foreign trust anchor, truncated copy"

say "a set made with openssl, tar and zstd is read by certkeep"
rm -rf std && mkdir -p std/parts/store
zstd -q -19 src/certs.jsonl -o std/parts/store/certs.jsonl.zst
sum=$(sha256sum std/parts/store/certs.jsonl.zst | awk '{print $1}')
printf '{"format":"certkeep-backup/1","parts":[{"name":"parts/store/certs.jsonl.zst","sha256":"%s"}]}\n' \
    "$sum" >std/manifest.json
(
	cd std || exit 1
	openssl cms -sign -binary -nodetach -nosmimecap -md sha256 -outform DER \
	    -in manifest.json -signer ../ca.pem -inkey ../ca.key \
	    -out manifest.p7s &&
	    tar --format=ustar -cf ../std.tar parts/store/certs.jsonl.zst \
	    manifest.json manifest.p7s
) || fail "building a set with the standard tools failed"
expect_ok openssl cms -encrypt -binary -aes-256-cbc -outform DER \
    -in std.tar -out std-der.ckb r-rsa.pem r-ec.pem
expect_ok openssl cms -encrypt -binary -aes-256-cbc -outform DER -stream \
    -in std.tar -out std-ber.ckb r-ec.pem
for f in std-der std-ber; do
	rm -rf "o-$f" && mkdir "o-$f"
	expect_ok "$drv" read "$f.ckb" --key r-ec.key --trust ca.pem --out "o-$f"
	assert_grep "^part parts/store/certs.jsonl.zst .* $sum\$" "$LAST_OUT" \
	    "part digest of $f"
	cmp -s "o-$f/parts/store/certs.jsonl" src/certs.jsonl ||
	    fail "$f: part differs"
done
expect_ok "$drv" read std-der.ckb --key r-rsa.key --cert r-rsa.pem --trust ca.pem
ok "DER (definite lengths) and streamed BER, RSA and EC"

say "GNU tar's default format and a directory entry are refused"
(cd std && tar --format=gnu -cf ../gnu.tar parts manifest.json manifest.p7s) ||
    fail "tar failed"
expect_ok openssl cms -encrypt -binary -aes-256-cbc -outform DER \
    -in gnu.tar -out gnu.ckb r-ec.pem
expect_fail 'not a regular file' "$drv" read gnu.ckb --key r-ec.key
ok "directory entries are not accepted"
