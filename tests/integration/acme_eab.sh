#!/usr/bin/env bash
# acme_eab.sh - ACME external account binding keys from the command line:
# created (the first one makes the home's EAB key pair under the CA key's
# passphrase, checked first), listed and revoked, audited; the HMAC key is
# printed once and found nowhere in the home, neither as printed nor as raw
# bytes; the EAB private key travels in key backups (passphrase form and
# shares) and comes back with key restore, and an older backup without it
# still restores.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
new_root "$ca" ec-p256

BPW='backup passphrase for the tests'
BPWFILE="$T/backup-pw"
printf '%s\n' "$BPW" >"$BPWFILE"
chmod 600 "$BPWFILE"
PW2='the restored key passphrase'
PW2FILE="$T/pw2"
printf '%s\n' "$PW2" >"$PW2FILE"
chmod 600 "$PW2FILE"

# hex_of FILE...: the bytes of the files as one line of hex.
hex_of() { cat "$@" | od -An -tx1 -v | tr -d ' \n'; }

# b64url_decode TEXT: the bytes, to stdout.
b64url_decode() {
	local s
	s=$(printf '%s' "$1" | tr '_-' '/+')
	while (( ${#s} % 4 )); do s="$s="; done
	printf '%s' "$s" | base64 -d
}

say "a key backup made before there are EAB keys"
mkdir -m 700 "$T/backups"
expect_ok "$CERTKEEP" key backup --home "$ca" --out "$T/backups/old.p8" \
    --scrypt-log2n 14 --passphrase-file "$PWFILE" \
    --backup-passphrase-file "$BPWFILE"
assert_eq 1 "$(grep -c 'BEGIN ENCRYPTED PRIVATE KEY' "$T/backups/old.p8")" \
    "key blocks in a backup without EAB key"
ok "one key in it"

say "no EAB keys yet"
expect_ok "$CERTKEEP" acme eab list --home "$ca"
assert_eq 0 "$(wc -l <"$LAST_OUT")" "list of no keys"
assert_grep 'no EAB keys' "$LAST_ERR" "list of no keys"
ok "empty list"

say "the first create needs the CA key's passphrase, and the right one"
expect_fail 'terminal' detached "$CERTKEEP" acme eab create --home "$ca"
expect_fail 'wrong passphrase' "$CERTKEEP" acme eab create --home "$ca" \
    --passphrase-fd 3 3< <(printf 'not the passphrase\n')
[[ ! -e "$ca/acme-eab.pub" && ! -e "$ca/private/acme-eab.key" ]] ||
    fail "a refused create left an EAB key pair behind"
expect_fail 'control character' "$CERTKEEP" acme eab create --home "$ca" \
    --note $'two\nlines' --passphrase-file "$PWFILE"
expect_fail 'longer than 200' "$CERTKEEP" acme eab create --home "$ca" \
    --note "$(printf '%0201d' 0)" --passphrase-file "$PWFILE"
run "$CERTKEEP" acme eab create --home "$ca" extra --passphrase-file "$PWFILE"
assert_eq 2 "$LAST_RC" "exit status for an extra argument"
run "$CERTKEEP" acme nothing list --home "$ca"
assert_eq 2 "$LAST_RC" "exit status for an unknown group"
ok "no terminal, wrong passphrase, bad notes, usage: refused, nothing made"

say "create: the pair, then the key id and its HMAC key, once"
expect_ok "$CERTKEEP" acme eab create --home "$ca" --note "ci runner" \
    --passphrase-file "$PWFILE"
assert_grep '^kid: [0-9a-f]{32}$' "$LAST_OUT" "printed kid"
assert_grep '^hmac-key: [A-Za-z0-9_-]{43}$' "$LAST_OUT" "printed key"
assert_grep 'shown only this once' "$LAST_ERR" "create message"
kid1=$(sed -n 's/^kid: //p' "$LAST_OUT")
key1=$(sed -n 's/^hmac-key: //p' "$LAST_OUT")
assert_file_mode 644 "$ca/acme-eab.pub"
assert_file_mode 600 "$ca/private/acme-eab.key"
assert_file_mode 700 "$ca/private"
assert_grep 'BEGIN ENCRYPTED PRIVATE KEY' "$ca/private/acme-eab.key" "EAB key"
expect_ok openssl pkey -in "$ca/private/acme-eab.key" -passin "file:$PWFILE" \
    -pubout -out "$T/eab-derived.pub"
cmp -s "$T/eab-derived.pub" "$ca/acme-eab.pub" ||
    fail "acme-eab.pub is not the private key's"
expect_ok openssl pkey -pubin -in "$ca/acme-eab.pub" -noout -text
assert_grep 'X25519' "$LAST_OUT" "EAB key type"
ok "kid $kid1; pair: X25519, private key encrypted under the CA passphrase"

say "later creates need no passphrase"
expect_ok detached "$CERTKEEP" acme eab create --home "$ca"
kid2=$(sed -n 's/^kid: //p' "$LAST_OUT")
key2=$(sed -n 's/^hmac-key: //p' "$LAST_OUT")
[[ -n "$kid2" && "$kid2" != "$kid1" && "$key2" != "$key1" ]] ||
    fail "a second create did not give a new kid and key"
ok "kid $kid2"

say "the HMAC keys are nowhere in the home"
sqlite3 "$ca/store.db" 'PRAGMA wal_checkpoint' >/dev/null
assert_eq 2 "$(sqlite3 "$ca/store.db" 'SELECT count(*) FROM acme_eab')" \
    "rows"
assert_eq 93 "$(sqlite3 "$ca/store.db" \
    "SELECT length(sealed) FROM acme_eab WHERE kid = '$kid1'")" \
    "sealed size (1 + 32 + 12 + 32 + 16)"
mapfile -t files < <(find "$ca" -type f)
for k in "$key1" "$key2"; do
	if grep -rqF -- "$k" "$ca"; then
		fail "the printed HMAC key is in the home: $(grep -rlF -- "$k" "$ca")"
	fi
	raw=$(b64url_decode "$k" | od -An -tx1 -v | tr -d ' \n')
	assert_eq 64 "${#raw}" "decoded key length (hex)"
	for f in "${files[@]}"; do
		if hex_of "$f" | grep -qF -- "$raw"; then
			fail "the HMAC key's bytes are in $f"
		fi
	done
	# Nor half of it, anywhere.
	if hex_of "${files[@]}" | grep -qF -- "${raw:0:32}"; then
		fail "half of an HMAC key's bytes are in the home"
	fi
done
ok "neither base64url nor raw in ${#files[@]} files (store, WAL, keys)"

say "list shows key ids, notes, state, never the key"
expect_ok "$CERTKEEP" acme eab list --home "$ca"
assert_grep "^KID +STATE +CREATED +REVOKED +ACCOUNT +NOTE" "$LAST_OUT" "header"
assert_grep "^$kid1 +valid +[0-9T:-]+Z +- +- +ci runner\$" "$LAST_OUT" "row 1"
assert_grep "^$kid2 +valid " "$LAST_OUT" "row 2"
assert_no_grep "$key1" "$LAST_OUT" "list"
assert_no_grep "$key2" "$LAST_OUT" "list"
ok "two valid keys"

say "revoke"
expect_ok "$CERTKEEP" acme eab revoke --home "$ca" "$kid1"
assert_grep "Revoked EAB key id $kid1" "$LAST_OUT" "revoke"
expect_fail 'revoked' "$CERTKEEP" acme eab revoke --home "$ca" "$kid1"
expect_fail 'no ACME EAB key id' "$CERTKEEP" acme eab revoke --home "$ca" nope
expect_ok "$CERTKEEP" acme eab list --home "$ca"
assert_grep "^$kid1 +revoked +[0-9T:-]+Z +[0-9T:-]+Z +- +ci runner\$" \
    "$LAST_OUT" "revoked row"
assert_grep "^$kid2 +valid " "$LAST_OUT" "row 2"
ok "revoked once; twice and unknown refused"

say "audit"
assert_eq 2 "$(count_audit "$ca" ok acme-eab-create)" "acme-eab-create entries"
assert_eq 1 "$(count_audit "$ca" ok acme-eab-revoke)" "acme-eab-revoke entries"
_audit_show "$ca" >"$T/audit.txt"
assert_grep "acme-eab-create +ok +$kid1 .*made the EAB key pair.*ci runner" \
    "$T/audit.txt" "first create"
for secret in "$key1" "$key2" "$PW"; do
	assert_no_grep "$secret" "$T/audit.txt" "audit log"
done
audit_verify_ok "$ca"
ok "creates and revoke audited, no key in the log"

say "key backup, passphrase form: the EAB key after the CA key"
p8="$T/backups/new.p8"
mkdir -m 700 "$T/tmp"
expect_ok env TMPDIR="$T/tmp" "$CERTKEEP" key backup --home "$ca" --out "$p8" \
    --scrypt-log2n 14 --passphrase-file "$PWFILE" \
    --backup-passphrase-file "$BPWFILE"
assert_grep 'and the ACME EAB key' "$LAST_OUT" "backup message"
assert_eq 2 "$(grep -c 'BEGIN ENCRYPTED PRIVATE KEY' "$p8")" "key blocks"
# openssl reads the first block: the CA key, as before.
expect_ok openssl pkey -in "$p8" -passin "file:$BPWFILE" -pubout -out "$T/p8.pub"
openssl x509 -in "$ca/ca.pem" -noout -pubkey >"$T/ca.pub"
cmp -s "$T/p8.pub" "$T/ca.pub" || fail "the first key is not the CA key"
# The second block, on its own: the EAB key, same scheme.
awk '/BEGIN ENCRYPTED PRIVATE KEY/ { n++ } n == 2' "$p8" >"$T/second.p8"
expect_ok openssl pkey -in "$T/second.p8" -passin "file:$BPWFILE" -pubout \
    -out "$T/second.pub"
cmp -s "$T/second.pub" "$ca/acme-eab.pub" || fail "the second key is not the EAB key"
expect_ok openssl asn1parse -in "$T/second.p8"
assert_grep ':scrypt' "$LAST_OUT" "EAB key block KDF"
[[ -z "$(ls -A "$T/tmp")" ]] || fail "scratch files left behind: $(ls -A "$T/tmp")"
assert_eq 2 "$(find "$T/backups" -type f -name '*.p8' | wc -l)" "backup files"
ok "one file, two blocks: CA key (openssl reads it as before), EAB key"

say "key backup, shares: a set for the EAB key too"
expect_ok "$CERTKEEP" key backup --home "$ca" --shares 3 --threshold 2 \
    --custodian alice --custodian bob --custodian carol \
    --out-dir "$T/shares" --passphrase-file "$PWFILE"
assert_eq 6 "$(wc -l <"$LAST_OUT")" "share files listed"
mapfile -t cas < <(grep -v -- '-acme-eab-' "$LAST_OUT")
mapfile -t eabs < <(grep -- '-acme-eab-' "$LAST_OUT")
assert_eq 3 "${#cas[@]}" "CA key shares"
assert_eq 3 "${#eabs[@]}" "EAB key shares"
for f in "${cas[@]}" "${eabs[@]}"; do
	assert_file_mode 600 "$f"
done
assert_grep '^CA: Test-Root-ec-p256-acme-eab$' "${eabs[0]}" "EAB share label"
ok "3 + 3 shares"

say "the keys are lost; restore from the passphrase form"
mv "$ca/private/ca.key" "$T/ca.key.orig"
mv "$ca/private/acme-eab.key" "$T/acme-eab.key.orig"
expect_ok "$CERTKEEP" key restore --home "$ca" --from "$p8" \
    --backup-passphrase-file "$BPWFILE" --passphrase-file "$PW2FILE"
assert_grep 'Restored the ACME EAB key' "$LAST_OUT" "restore message"
assert_file_mode 600 "$ca/private/acme-eab.key"
expect_ok openssl pkey -in "$ca/private/acme-eab.key" -passin "file:$PW2FILE" \
    -pubout -out "$T/restored.pub"
cmp -s "$T/restored.pub" "$ca/acme-eab.pub" || fail "another EAB key restored"
expect_ok detached "$CERTKEEP" acme eab create --home "$ca" --note after
ok "both keys back, under the new passphrase; creates go on"

say "restore from shares, with --eab-share"
rm "$ca/private/ca.key" "$ca/private/acme-eab.key"
expect_fail 'does not belong' "$CERTKEEP" key restore --home "$ca" \
    --share "${eabs[0]}" --share "${eabs[1]}" --passphrase-file "$PWFILE"
expect_fail 'no ACME EAB key' "$CERTKEEP" key restore --home "$ca" \
    --share "${cas[0]}" --share "${cas[2]}" --eab-share "${cas[1]}" \
    --eab-share "${cas[0]}" --passphrase-file "$PWFILE"
[[ ! -e "$ca/private/ca.key" && ! -e "$ca/private/acme-eab.key" ]] ||
    fail "a refused restore wrote a key"
expect_ok "$CERTKEEP" key restore --home "$ca" --share "${cas[2]}" \
    --share "${cas[0]}" --eab-share "${eabs[1]}" --eab-share "${eabs[2]}" \
    --passphrase-file "$PWFILE"
expect_ok openssl pkey -in "$ca/private/acme-eab.key" -passin "file:$PWFILE" \
    -pubout -out "$T/restored2.pub"
cmp -s "$T/restored2.pub" "$ca/acme-eab.pub" || fail "another EAB key restored"
ok "CA key and EAB key rejoined from 2 of 3 each"

say "an older backup without the EAB key still restores the CA key"
rm "$ca/private/ca.key"
mv "$ca/private/acme-eab.key" "$T/acme-eab.key.2"
expect_ok "$CERTKEEP" key restore --home "$ca" --from "$T/backups/old.p8" \
    --backup-passphrase-file "$BPWFILE" --passphrase-file "$PWFILE"
assert_grep 'holds no EAB private key' "$LAST_ERR" "warning"
[[ ! -e "$ca/private/acme-eab.key" ]] || fail "an EAB key appeared"
expect_ok "$CERTKEEP" key fingerprint --home "$ca"
ok "restored, with a warning that EAB bindings need their key back"

say "a backup's EAB key that is not this home's pair is refused"
other="$T/other"
new_root "$other" ec-p256
expect_ok "$CERTKEEP" acme eab create --home "$other" --passphrase-file "$PWFILE"
rm "$ca/private/ca.key"
cp "$other/acme-eab.pub" "$ca/acme-eab.pub"
expect_fail 'sealed to another key' "$CERTKEEP" key restore --home "$ca" \
    --from "$p8" --backup-passphrase-file "$BPWFILE" --passphrase-file "$PWFILE"
[[ ! -e "$ca/private/ca.key" ]] || fail "a refused restore wrote a key"
ok "refused before writing"

say "no new pair while the store holds live keys sealed to a lost one"
mv "$other/acme-eab.pub" "$other/private/acme-eab.key" "$T/"
expect_fail 'not in this home.*key restore' "$CERTKEEP" acme eab create \
    --home "$other" --passphrase-file "$PWFILE"
[[ ! -e "$other/acme-eab.pub" ]] || fail "a refused create made a pair"
okid=$(sqlite3 "$other/store.db" 'SELECT kid FROM acme_eab')
expect_ok "$CERTKEEP" acme eab revoke --home "$other" "$okid"
expect_ok "$CERTKEEP" acme eab create --home "$other" --passphrase-file "$PWFILE"
assert_grep 'made the EAB key pair' <(last_audit "$other") "new pair audited"
ok "refused until the orphaned key was revoked"
