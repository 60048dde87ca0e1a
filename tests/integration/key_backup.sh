#!/usr/bin/env bash
# key_backup.sh - key backups of a CA: the passphrase form (standard
# PKCS#8 that openssl opens at a cost it accepts) and 3-of-5 shares; the
# key moved away and restored from each, then used to issue a certificate
# that openssl verifies. Refusals along the way leave the home as it was.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
new_root "$ca" ec-p256
make_key ec-p256 "$T/www.key"
make_csr "$T/www.key" "$T/www.csr" "/CN=www.example.com"

BPW='backup passphrase for the tests'
BPWFILE="$T/backup-pw"
printf '%s\n' "$BPW" >"$BPWFILE"
chmod 600 "$BPWFILE"
PW2='the restored key passphrase'
PW2FILE="$T/pw2"
printf '%s\n' "$PW2" >"$PW2FILE"
chmod 600 "$PW2FILE"

say "key fingerprint is SHA-256 of the SubjectPublicKeyInfo"
expect_ok "$CERTKEEP" key fingerprint --home "$ca"
fp=$(cat "$LAST_OUT")
want=$(openssl x509 -in "$ca/ca.pem" -noout -pubkey |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$fp" "key fingerprint"
ok "$fp"

say "passphrase form"
mkdir -m 700 "$T/backups"
expect_ok "$CERTKEEP" key backup --home "$ca" --out "$T/backups" \
    --scrypt-log2n 14 --passphrase-file "$PWFILE" \
    --backup-passphrase-file "$BPWFILE"
p8="$T/backups/Test-Root-ec-p256-key-${fp:0:16}.p8"
[[ -f "$p8" ]] || fail_cmd "no $p8"
assert_file_mode 600 "$p8"
assert_grep 'BEGIN ENCRYPTED PRIVATE KEY' "$p8" "backup file"
# Standard PKCS#8: openssl opens it (N=2^14 is within its limit) and it
# holds the CA certificate's key.
expect_ok openssl pkey -in "$p8" -passin "file:$BPWFILE" -pubout -out "$T/p8.pub"
openssl x509 -in "$ca/ca.pem" -noout -pubkey >"$T/ca.pub"
cmp -s "$T/p8.pub" "$T/ca.pub" || fail "the backup holds another key"
expect_ok openssl asn1parse -in "$p8"
assert_grep ':PBES2' "$LAST_OUT" "backup scheme"
assert_grep ':scrypt' "$LAST_OUT" "backup KDF"
assert_grep 'aes-256-cbc' "$LAST_OUT" "backup cipher"
ok "written 0600, opened by openssl pkey, PBES2/scrypt/AES-256-CBC"

say "passphrase form: refusals"
expect_fail 'already exists' "$CERTKEEP" key backup --home "$ca" --out "$p8" \
    --scrypt-log2n 14 --passphrase-file "$PWFILE" \
    --backup-passphrase-file "$BPWFILE"
expect_fail 'must differ' "$CERTKEEP" key backup --home "$ca" \
    --out "$T/backups/same.p8" --scrypt-log2n 14 --passphrase-file "$PWFILE" \
    --backup-passphrase-file "$PWFILE"
expect_fail 'too short' "$CERTKEEP" key backup --home "$ca" \
    --out "$T/backups/short.p8" --scrypt-log2n 14 --passphrase-file "$PWFILE" \
    --backup-passphrase-fd 3 3< <(printf 'elevenchars\n')
expect_fail 'wrong passphrase' "$CERTKEEP" key backup --home "$ca" \
    --out "$T/backups/wrong.p8" --scrypt-log2n 14 \
    --passphrase-fd 3 3< <(printf 'not the passphrase\n') \
    --backup-passphrase-file "$BPWFILE"
expect_fail 'no terminal' detached "$CERTKEEP" key backup --home "$ca" \
    --out "$T/backups/tty.p8" --scrypt-log2n 14 --passphrase-file "$PWFILE"
run "$CERTKEEP" key backup --home "$ca" --out "$T/x.p8" --shares 3 \
    --threshold 2 --passphrase-file "$PWFILE"
assert_eq 2 "$LAST_RC" "exit status for --out with --shares"
[[ $(find "$T/backups" -type f ! -name "*.custody" | wc -l) -eq 1 ]] ||
    fail "a refused backup left a file behind"
ok "existing file, same passphrase, short passphrase, wrong CA passphrase, no terminal"

say "3-of-5 shares"
expect_ok "$CERTKEEP" key backup --home "$ca" --shares 5 --threshold 3 \
    --custodian alice --custodian bob --custodian carol --custodian dave \
    --custodian erin --out-dir "$T/shares" --passphrase-file "$PWFILE"
assert_file_mode 700 "$T/shares"
for i in 1 2 3 4 5; do
	c=$(sed -n "${i}p" <<<"alice
bob
carol
dave
erin")
	f="$T/shares/Test-Root-ec-p256-key-${fp:0:16}-share-${i}of5-$c.share"
	[[ -f "$f" ]] || fail "no share file $f"
	assert_file_mode 600 "$f"
	assert_grep "^Custodian: $c\$" "$f" "share $i"
	assert_grep "^Share: $i of 5\$" "$f" "share $i"
	assert_grep '^Threshold: 3$' "$f" "share $i"
	assert_grep "^Key-Fingerprint: $fp\$" "$f" "share $i"
	s[$i]=$f
done
assert_eq 5 "$(wc -l <"$LAST_OUT")" "share files listed"
run "$CERTKEEP" key backup --home "$ca" --shares 3 --threshold 2 \
    --custodian a --custodian b --out-dir "$T/s2" --passphrase-file "$PWFILE"
assert_eq 2 "$LAST_RC" "exit status for 3 shares with 2 custodians"
expect_fail 'named twice' "$CERTKEEP" key backup --home "$ca" --shares 2 \
    --threshold 2 --custodian a --custodian A --out-dir "$T/s2" \
    --passphrase-file "$PWFILE"
expect_fail 'bad custodian' "$CERTKEEP" key backup --home "$ca" --shares 2 \
    --threshold 2 --custodian a --custodian 'b c' --out-dir "$T/s2" \
    --passphrase-file "$PWFILE"
[[ ! -e "$T/s2" ]] || [[ -z "$(ls -A "$T/s2")" ]] ||
    fail "a refused share backup left files behind"
assert_eq 2 "$(count_audit "$ca" ok key-backup)" "key-backup audit entries"
ok "five 0600 files in a 0700 directory, audited"

say "restore needs a home without a key"
expect_fail 'already' "$CERTKEEP" key restore --home "$ca" --from "$p8" \
    --backup-passphrase-file "$BPWFILE" --passphrase-file "$PW2FILE"
ok "refused while private/ca.key is there"

say "the key is lost"
mv "$ca/private/ca.key" "$T/ca.key.orig"
expect_fail 'ca.key does not exist' "$CERTKEEP" issue --home "$ca" \
    --profile tls-server --csr "$T/www.csr" --passphrase-file "$PWFILE"
ok "nothing can be issued"

say "restore from the passphrase form"
expect_fail 'wrong passphrase' "$CERTKEEP" key restore --home "$ca" \
    --from "$p8" --backup-passphrase-file "$PWFILE" --passphrase-file "$PW2FILE"
[[ ! -e "$ca/private/ca.key" ]] || fail "a refused restore wrote a key"
expect_ok "$CERTKEEP" key restore --home "$ca" --from "$p8" \
    --backup-passphrase-file "$BPWFILE" --passphrase-file "$PW2FILE"
assert_file_mode 600 "$ca/private/ca.key"
expect_ok openssl pkey -in "$ca/private/ca.key" -passin "file:$PW2FILE" -noout
expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" \
    --cert-only --out "$T/a.pem" --passphrase-file "$PW2FILE"
expect_ok openssl verify -CAfile "$ca/ca.pem" "$T/a.pem"
ok "restored under a new passphrase; issued and verified"

say "restore from 3 of 5 shares"
rm -f "$ca/private/ca.key"
rmdir "$ca/private"
expect_fail '2 shares given, 3 needed' "$CERTKEEP" key restore --home "$ca" \
    --share "${s[1]}" --share "${s[4]}" --passphrase-file "$PW2FILE"
expect_fail 'given twice' "$CERTKEEP" key restore --home "$ca" \
    --share "${s[1]}" --share "${s[4]}" --share "${s[1]}" \
    --passphrase-file "$PW2FILE"
cp "${s[2]}" "$T/bob.share"
# One base64 character of bob's share changed.
awk 'done || length($0) != 64 || !/^[A-Za-z0-9+\/]+$/ { print; next }
     { c = substr($0, 10, 1); r = (c == "A") ? "B" : "A";
       print substr($0, 1, 9) r substr($0, 11); done = 1 }' \
    "${s[2]}" >"$T/bob-altered.share"
expect_fail 'share 2 \(bob\) is altered: checksum mismatch' "$CERTKEEP" key \
    restore --home "$ca" --share "$T/bob-altered.share" --share "${s[3]}" \
    --share "${s[5]}" --passphrase-file "$PW2FILE"
[[ ! -e "$ca/private/ca.key" ]] || fail "a refused restore wrote a key"
expect_ok "$CERTKEEP" key restore --home "$ca" --share "${s[5]}" \
    --share "${s[1]}" --share "${s[3]}" --passphrase-file "$PW2FILE"
assert_file_mode 700 "$ca/private"
assert_file_mode 600 "$ca/private/ca.key"
expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" \
    --cert-only --out "$T/b.pem" --passphrase-file "$PW2FILE"
expect_ok openssl verify -CAfile "$ca/ca.pem" "$T/b.pem"
ok "shares 5, 1, 3 restored the key (private/ made again); issued and verified"

say "a key backup of another CA is refused"
other="$T/other"
new_root "$other" ec-p256
mv "$other/private/ca.key" "$T/other.key"
expect_fail 'does not belong' "$CERTKEEP" key restore --home "$other" \
    --from "$p8" --backup-passphrase-file "$BPWFILE" --passphrase-file "$PW2FILE"
[[ ! -e "$other/private/ca.key" ]] || fail "a foreign key was restored"
ok "refused"

say "audit"
assert_eq 2 "$(count_audit "$ca" ok key-restore)" "key-restore audit entries"
[[ $(count_audit "$ca" refused key-restore) -ge 3 ]] ||
    fail "refused restores were not audited"
_audit_show "$ca" >"$T/audit.txt"
assert_grep "key-backup +ok +$fp" "$T/audit.txt" "key-backup entry"
for secret in "$PW" "$BPW" "$PW2"; do
	assert_no_grep "$secret" "$T/audit.txt" "audit log"
done
audit_verify_ok "$ca"
ok "backups and restores audited, no passphrase in the log"

say "every key backup and share has its custody record, here and beside it"
expect_ok "$CERTKEEP" custody show --home "$ca"
grep -q "key-backup" "$LAST_OUT" || fail "no custody entry for the key backup"
[[ $(grep -c "key-share" "$LAST_OUT") -eq 5 ]] ||
    fail "not one custody entry per share"
[[ -f "$p8.custody" ]] || fail "no .custody record beside the key backup"
files=()
for f in "$T"/shares/*.share; do
	[[ -f "$f.custody" ]] || fail "no .custody record beside $f"
	files+=(--file "$f.custody")
done
expect_ok "$CERTKEEP" custody verify --home "$ca" --file "$p8.custody" "${files[@]}"
ok "custody: 1 key backup and 5 shares recorded and signed"
