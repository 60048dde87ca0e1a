#!/usr/bin/env bash
# key_unlock.sh - M-of-N unlock of the CA key file: protect with 2-of-3
# shares; the key then opens with any 2 shares (unprotect), never with 1,
# with shares of another set, a key backup's shares or a corrupted share;
# the key file does not hold the secret; the old passphrase no longer
# opens it; unprotect gives it a passphrase again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
other="$T/other"
new_root "$ca" ec-p256
new_root "$other" ec-p256
make_key ec-p256 "$T/www.key"
make_csr "$T/www.key" "$T/www.csr" "/CN=www.example.com"
PW2='the passphrase after unprotect'
PW2FILE="$T/pw2"
printf '%s\n' "$PW2" >"$PW2FILE"
chmod 600 "$PW2FILE"

say "protect: refusals leave the key as it was"
expect_fail 'wrong passphrase' "$CERTKEEP" key protect --home "$ca" \
    --shares 2/3 --custodian alice --custodian bob --custodian carol \
    --out "$T/sh0" --passphrase-fd 3 3< <(printf 'not the passphrase\n')
[[ ! -e "$T/sh0" || -z "$(ls -A "$T/sh0")" ]] || fail "shares left behind"
expect_fail 'custodian' "$CERTKEEP" key protect --home "$ca" \
    --shares 2/3 --custodian alice --custodian bob \
    --out "$T/sh0" --passphrase-file "$PWFILE"
expect_fail 'named twice' "$CERTKEEP" key protect --home "$ca" \
    --shares 2/3 --custodian alice --custodian bob --custodian Alice \
    --out "$T/sh0" --passphrase-file "$PWFILE"
expect_fail 'M/N' "$CERTKEEP" key protect --home "$ca" \
    --shares 4/3 --custodian alice --custodian bob --custodian carol \
    --out "$T/sh0" --passphrase-file "$PWFILE"
expect_ok "$CERTKEEP" issue --home "$ca" --csr "$T/www.csr" \
    --profile tls-server --out "$T/www0.pem" --passphrase-file "$PWFILE"
ok "refused; the passphrase still opens the key"

say "protect 2-of-3"
cp "$ca/private/ca.key" "$T/ca.key.before"
expect_ok "$CERTKEEP" key protect --home "$ca" --shares 2/3 \
    --custodian alice --custodian bob --custodian carol --out "$T/shares" \
    --passphrase-file "$PWFILE"
mapfile -t sh < <(ls "$T/shares"/*-unlock-*.share | sort)
[[ ${#sh[@]} -eq 3 ]] || fail "expected 3 share files, got ${#sh[@]}"
for f in "${sh[@]}"; do assert_file_mode 600 "$f"; done
assert_file_mode 600 "$ca/private/ca.key"
assert_grep '^Purpose: unlock$' "${sh[0]}" "share header"
assert_grep 'Share: 1 of 3' "${sh[0]}" "share header"
set_id=$(sed -n 's/^Set: //p' "${sh[0]}")
fp=$(sed -n 's/^Key-Fingerprint: //p' "${sh[0]}")
assert_grep "^unlock_shares = 2/3$" "$ca/certkeep.conf" "config"
assert_grep "^unlock_set = $set_id$" "$ca/certkeep.conf" "config"
assert_grep "^unlock_key_fingerprint = $fp$" "$ca/certkeep.conf" "config"
[[ ! -e "$ca/private/ca.key.new" ]] || fail "ca.key.new left behind"
cmp -s "$T/ca.key.before" "$ca/private/ca.key" && fail "key file unchanged"
[[ $(count_audit "$ca" ok key-protect) -eq 1 ]] || fail "key-protect not audited"
ok "3 share files 0600, set $set_id recorded, key file re-encrypted"

say "the old passphrase no longer opens the key"
expect_fail 'wrong passphrase|shares' "$CERTKEEP" issue --home "$ca" \
    --csr "$T/www.csr" --profile tls-server --out "$T/www1.pem" \
    --passphrase-file "$PWFILE"
expect_fail 'bad decrypt|unable to load|error' openssl pkey \
    -in "$ca/private/ca.key" -passin "file:$PWFILE" -noout
ok "refused by certkeep and openssl"

say "the key file does not hold the secret; the shares do not either"
# Rebuild the secret the slow way (2 shares) to look for it: unprotect
# with shares into a copy of the home, then compare.
cp -a "$ca" "$T/copy"
expect_ok "$CERTKEEP" key unprotect --home "$T/copy" --share "${sh[0]}" \
    --share "${sh[1]}" --new-passphrase-file "$PW2FILE" --scrypt-log2n 10
# The secret is 64 hex digits: none of the files under the home (or the
# share files) holds a 64-hex-digit run that opens the key file.
for cand in $(grep -rhoE '[0-9a-f]{64}' "$ca" "$T/shares" 2>/dev/null |
    sort -u); do
	if openssl pkey -in "$ca/private/ca.key" -passin "pass:$cand" \
	    -noout 2>/dev/null; then
		fail "a 64-hex-digit string in the home opens the key"
	fi
done
ok "no file under the home holds the passphrase of the key file"

say "one share is not enough"
expect_fail '1 of 2 shares given' "$CERTKEEP" key unprotect --home "$ca" \
    --share "${sh[2]}" --new-passphrase-file "$PW2FILE"
ok "M-1 shares refused"

say "shares of another set are refused"
expect_ok "$CERTKEEP" key protect --home "$other" --shares 2/3 \
    --custodian alice --custodian bob --custodian carol --out "$T/oshares" \
    --passphrase-file "$PWFILE"
mapfile -t osh < <(ls "$T/oshares"/*-unlock-*.share | sort)
expect_fail 'another key' "$CERTKEEP" key unprotect --home "$ca" \
    --share "${sh[0]}" --share "${osh[1]}" --new-passphrase-file "$PW2FILE"
# Same key, a later set: protect, unprotect, protect again; the first
# set's shares are then of another set.
cp -a "$ca" "$T/reprot"
expect_ok "$CERTKEEP" key unprotect --home "$T/reprot" --share "${sh[0]}" \
    --share "${sh[2]}" --new-passphrase-file "$PW2FILE" --scrypt-log2n 10
expect_ok "$CERTKEEP" key protect --home "$T/reprot" --shares 2/3 \
    --custodian alice --custodian bob --custodian carol --out "$T/rshares" \
    --passphrase-file "$PW2FILE"
mapfile -t rsh < <(ls "$T/rshares"/*-unlock-*.share | sort)
expect_fail 'of share set .* needs set' "$CERTKEEP" key unprotect \
    --home "$T/reprot" --share "${rsh[0]}" --share "${sh[1]}" \
    --new-passphrase-file "$PW2FILE"
ok "another key's and another set's shares refused"

say "a key backup's shares are not unlock shares (and the reverse)"
run "$CERTKEEP" key backup --home "$T/copy" --shares 3 --threshold 2 \
    --custodian alice --custodian bob --custodian carol --out-dir "$T/bk2" \
    --passphrase-file "$PW2FILE"
[[ $LAST_RC -eq 0 ]] || fail_cmd "key backup of the copy failed"
mapfile -t bsh < <(ls "$T/bk2"/*-key-*.share | sort)
expect_fail 'key backup' "$CERTKEEP" key unprotect --home "$ca" \
    --share "${bsh[0]}" --share "${bsh[1]}" --new-passphrase-file "$PW2FILE"
cp -a "$T/copy" "$T/nokey"
rm "$T/nokey/private/ca.key"
expect_fail 'not of a key backup' "$CERTKEEP" key restore \
    --home "$T/nokey" --share "${sh[0]}" --share "${sh[1]}" \
    --passphrase-file "$PW2FILE"
ok "purposes kept apart"

say "a corrupted share is refused"
cp "${sh[1]}" "$T/bad.share"
# One base64 character changed in the body: the checksum catches it.
line=$(grep -n '^[A-Za-z0-9+/=]\{64\}$' "$T/bad.share" | sed -n 2p | cut -d: -f1)
c=$(sed -n "${line}p" "$T/bad.share" | cut -c10)
[[ "$c" == A ]] && r=B || r=A
sed -i "${line}s/^\(.\{9\}\)./\1$r/" "$T/bad.share"
expect_fail 'altered|damaged' "$CERTKEEP" key unprotect --home "$ca" \
    --share "${sh[0]}" --share "$T/bad.share" --new-passphrase-file "$PW2FILE"
# A changed header line.
sed 's/^Share: 2 of 3/Share: 3 of 3/' "${sh[1]}" >"$T/bad2.share"
expect_fail 'altered' "$CERTKEEP" key unprotect --home "$ca" \
    --share "${sh[0]}" --share "$T/bad2.share" --new-passphrase-file "$PW2FILE"
expect_fail 'given already' "$CERTKEEP" key unprotect --home "$ca" \
    --share "${sh[0]}" --share "${sh[0]}" --new-passphrase-file "$PW2FILE"
ok "checksum, header and duplicate refused"

say "still protected after the refusals: any 2 shares open it"
for pair in "0 1" "0 2" "1 2"; do
	set -- $pair
	cp -a "$ca" "$T/pair$1$2"
	expect_ok "$CERTKEEP" key unprotect --home "$T/pair$1$2" \
	    --share "${sh[$1]}" --share "${sh[$2]}" \
	    --new-passphrase-file "$PW2FILE" --scrypt-log2n 10
	expect_ok "$CERTKEEP" issue --home "$T/pair$1$2" --csr "$T/www.csr" \
	    --profile tls-server --out "$T/www-$1$2.pem" \
	    --passphrase-file "$PW2FILE"
	assert_no_grep '^unlock_' "$T/pair$1$2/certkeep.conf" "config"
done
ok "shares {1,2}, {1,3}, {2,3} each open it; unprotect removes the settings"

say "--unlock-share: commands that use the key take M shares"
expect_ok "$CERTKEEP" issue --home "$ca" --csr "$T/www.csr" \
    --profile tls-server --out "$T/www-us.pem" \
    --unlock-share "${sh[2]}" --unlock-share "${sh[0]}"
expect_fail '1 of 2 shares given' "$CERTKEEP" crl --home "$ca" \
    --unlock-share "${sh[1]}"
expect_fail 'another key' "$CERTKEEP" crl --home "$ca" \
    --unlock-share "${sh[1]}" --unlock-share "${osh[0]}"
expect_fail 'replaces' "$CERTKEEP" crl --home "$ca" \
    --unlock-share "${sh[1]}" --unlock-share "${sh[0]}" \
    --passphrase-file "$PWFILE"
expect_fail 'not protected' "$CERTKEEP" crl --home "$T/copy" \
    --unlock-share "${sh[1]}" --unlock-share "${sh[0]}"
mkdir -m 700 "$T/kb"
expect_ok "$CERTKEEP" key backup --home "$ca" --out "$T/kb" \
    --scrypt-log2n 14 --backup-passphrase-file "$PW2FILE" \
    --unlock-share "${sh[1]}" --unlock-share "${sh[2]}"
ok "issue and key backup with 2 shares; 1, a foreign one, both forms refused"

say "unprotect gives a passphrase that openssl takes"
expect_ok openssl pkey -in "$T/copy/private/ca.key" -passin "file:$PW2FILE" \
    -pubout -out "$T/copy.pub"
openssl x509 -in "$ca/ca.pem" -noout -pubkey >"$T/ca.pub"
cmp -s "$T/copy.pub" "$T/ca.pub" || fail "another key after unprotect"
[[ $(count_audit "$T/copy" ok key-unprotect) -eq 1 ]] ||
    fail "key-unprotect not audited"
audit_verify_ok "$ca"
ok "the CA key, under the new passphrase; the audit log verifies"

say "init --unlock-shares: a key that never had a passphrase"
expect_ok "$CERTKEEP" init --home "$T/born" --root \
    --subject "CN=Born Protected,O=certkeep tests" --key-type ec-p256 \
    --unlock-shares 2/3 --custodian alice --custodian bob --custodian carol \
    --shares-out "$T/born-shares"
mapfile -t bs < <(ls "$T/born-shares"/*-unlock-*.share | sort)
[[ ${#bs[@]} -eq 3 ]] || fail "expected 3 share files"
assert_grep "^unlock_shares = 2/3$" "$T/born/certkeep.conf" "config"
expect_fail 'wrong passphrase' "$CERTKEEP" issue --home "$T/born" \
    --csr "$T/www.csr" --profile tls-server --out "$T/born0.pem" \
    --passphrase-file "$PWFILE"
expect_fail '1 of 2 shares given' "$CERTKEEP" key unprotect \
    --home "$T/born" --share "${bs[1]}" --new-passphrase-file "$PW2FILE"
expect_ok "$CERTKEEP" key unprotect --home "$T/born" --share "${bs[2]}" \
    --share "${bs[0]}" --new-passphrase-file "$PW2FILE" --scrypt-log2n 10
expect_ok "$CERTKEEP" issue --home "$T/born" --csr "$T/www.csr" \
    --profile tls-server --out "$T/born1.pem" --passphrase-file "$PW2FILE"
expect_fail 'custodian' "$CERTKEEP" init --home "$T/born2" --root \
    --subject "CN=x" --unlock-shares 2/3 --custodian a --custodian b \
    --shares-out "$T/born2-shares"
[[ ! -e "$T/born2" ]] || fail "init left a home after a usage error"
ok "born protected; opened by 2 shares; usage errors leave nothing"
