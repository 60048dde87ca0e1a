#!/usr/bin/env bash
# custody.sh - the chain-of-custody ledger: 'certkeep custody add' records
# hand-overs of an artefact (and writes its signed .custody record beside
# it), 'show' lists them, 'verify' checks the ledger and records; editing
# the store behind certkeep's back with sqlite3, or the record file, is
# detected and the entry named. Every tampering case works on its own copy
# of the CA home.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
set_file="$T/ca-20261122T180000Z-full.ckb"

say "a CA and an artefact"
new_root "$ca" ec-p256
head -c 20000 /dev/urandom >"$set_file"
SUM=$(sha256sum "$set_file" | cut -d' ' -f1)
other="$T/ca-key-0123.p8"
head -c 3000 /dev/urandom >"$other"
OSUM=$(sha256sum "$other" | cut -d' ' -f1)
AUDIT0=$(count_audit "$ca")

say "events are recorded; the kind follows the file's extension"
expect_ok "$CERTKEEP" custody add --home "$ca" --artefact "$set_file" \
    --event created --place "ca host, /var/backups" --export \
    --passphrase-file "$PWFILE"
assert_grep 'Recorded custody entry 1: created' "$LAST_OUT" "first entry"
[[ -s "$set_file.custody" ]] || fail "no $set_file.custody written"
assert_file_mode 600 "$set_file.custody"
expect_ok "$CERTKEEP" custody add --home "$ca" --artefact "$other" \
    --event created --place "ca host"
expect_ok "$CERTKEEP" custody add --home "$ca" --artefact "$set_file" \
    --event copied --place "USB stick #4" --operator bob \
    --detail "for the safe"
expect_ok "$CERTKEEP" custody add --home "$ca" --artefact "$set_file" \
    --event stored --place "safe 1, shelf 2" --operator bob
# By digest (the file is in the safe, not here).
expect_ok "$CERTKEEP" custody add --home "$ca" --artefact "${SUM^^}" \
    --event verified --place "safe 1, shelf 2" --detail "sha256sum matched"
expect_ok "$CERTKEEP" custody add --home "$ca" --artefact "$OSUM" \
    --event stored --place "safe 2"
N=6
ok "$N entries"

say "refusals change nothing"
expect_fail 'unknown event' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$set_file" --event lost --place x
expect_fail 'unknown kind' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$set_file" --event moved --place x --kind tape
expect_fail 'another kind' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$set_file" --event moved --place x --kind key-share
expect_fail 'first event' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$set_file" --event created --place x
expect_fail 'no such file.*SHA-256' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$T/missing.ckb" --event created --place x
printf 'x' >"$T/notes.txt"
expect_fail 'give --kind' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$T/notes.txt" --event created --place x
expect_fail 'place' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$set_file" --event moved --place ''
expect_fail 'control characters' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$set_file" --event moved --place "$(printf 'a\tb')"
expect_fail 'needs --artefact to name' "$CERTKEEP" custody add --home "$ca" \
    --artefact "$SUM" --event moved --place x --export --passphrase-file "$PWFILE"
expect_fail 'usage' "$CERTKEEP" custody add --home "$ca" --event moved --place x
expect_fail 'usage' "$CERTKEEP" custody frobnicate --home "$ca"

say "show"
expect_ok "$CERTKEEP" custody show --home "$ca"
assert_grep '^ +ID +TIME +OPERATOR +EVENT +KIND +PLACE +DIGEST' "$LAST_OUT" "header"
assert_eq "$N" "$(grep -cE '^ +[0-9]+ [0-9]{4}-' "$LAST_OUT")" "rows shown"
assert_grep "^ +3 [0-9T:Z-]+ +bob +copied +data-backup +USB stick #4 +${SUM:0:12} -- for the safe" \
    "$LAST_OUT" "entry 3"
me=$(id -un)
assert_grep "^ +1 [0-9T:Z-]+ +$me +created +data-backup" "$LAST_OUT" \
    "operator defaults to the login name"
assert_grep "^ +2 [0-9T:Z-]+ +$me +created +key-backup +ca host +${OSUM:0:12}" \
    "$LAST_OUT" "kind from .p8"
expect_ok "$CERTKEEP" custody show --home "$ca" --artefact "$set_file"
assert_eq 4 "$(grep -cE '^ +[0-9]+ [0-9]{4}-' "$LAST_OUT")" "rows of the set"
expect_ok "$CERTKEEP" custody show --home "$ca" --artefact "$OSUM" --json
assert_grep '"event": "stored"' "$LAST_OUT" "json event"
assert_grep "\"artefact\": \"$OSUM\"" "$LAST_OUT" "json artefact"
assert_eq 2 "$(grep -c '"hash"' "$LAST_OUT")" "json entries"

say "every entry is in the audit log too"
assert_eq "$N" "$(count_audit "$ca" ok custody)" "custody audit entries"
[[ $(count_audit "$ca" refused custody) -ge 2 ]] ||
    fail "refused custody events are not audited"
audit_verify_ok "$ca"

say "verify: the ledger and the record beside the artefact"
expect_ok "$CERTKEEP" custody verify --home "$ca"
assert_grep "custody ledger intact: $N entries verified" "$LAST_OUT" "verify"
# The record was written at the first event: older than the ledger.
expect_ok "$CERTKEEP" custody verify --home "$ca" --file "$set_file.custody"
assert_grep "intact: 1 entry of data-backup ${SUM:0:16}.*up to ledger entry 1 \(the ledger has 3 later entries" \
    "$LAST_OUT" "older record"
expect_ok "$CERTKEEP" custody add --home "$ca" --artefact "$set_file" \
    --event retrieved --place "safe 1" --export --passphrase-file "$PWFILE"
N=$((N + 1))
expect_ok "$CERTKEEP" custody verify --home "$ca" --file "$set_file.custody"
assert_grep "intact: 5 entries of data-backup .*up to ledger entry $N\$" \
    "$LAST_OUT" "current record"
assert_grep 'custody-export' <("$CERTKEEP" audit show --home "$ca") "export audited"

say "the record opens with openssl alone"
expect_ok openssl cms -verify -binary -inform DER -in "$set_file.custody" \
    -CAfile "$ca/chain.pem" -out "$T/record.json"
assert_grep '"format": "certkeep-custody/1"' "$T/record.json" "format"
assert_eq 5 "$(grep -c '"prev_hash"' "$T/record.json")" "entries in the record"
assert_grep '"place": "USB stick #4"' "$T/record.json" "place in the record"

db() { sqlite3 -bail "$1/store.db" "$2" || fail "sqlite3 failed on $1: $2"; }

say "the schema is what the tests expect"
db "$ca" "SELECT id, time, operator, event, artefact, kind, place, detail,
    prev_hash, hash, change_seq FROM custody LIMIT 1" >/dev/null
assert_eq "$N" "$(db "$ca" 'SELECT count(*) FROM custody')" "custody rows"

# tampered NAME SQL ERE: a fresh copy, SQL applied, verify fails with ERE.
tampered() {
	local name=$1 sql=$2 re=$3 home="$T/copy-$1"
	cp -a "$ca" "$home"
	db "$home" "$sql"
	expect_fail "$re" "$CERTKEEP" custody verify --home "$home"
	grep -q 'TAMPERED' "$LAST_ERR" || fail "verify does not say TAMPERED"
	ok "$name: $(head -n 1 "$LAST_ERR")"
}

say "changed fields are detected at the changed entry"
tampered place "UPDATE custody SET place = 'elsewhere' WHERE id = 3" \
    'entry 3: .*altered'
tampered operator "UPDATE custody SET operator = 'mallory' WHERE id = 4" \
    'entry 4: .*altered'
tampered event "UPDATE custody SET event = 'destroyed' WHERE id = 5" \
    'entry 5: .*altered'
tampered digest "UPDATE custody SET artefact = '$OSUM' WHERE id = 1" \
    'entry 1: .*altered'
tampered time "UPDATE custody SET time = time - 86400 WHERE id = $N" \
    "entry $N: .*altered"
tampered hash "UPDATE custody SET hash = zeroblob(32) WHERE id = 2" \
    'entry 2: .*altered'

say "deleted and reordered entries are detected"
tampered delete-middle "DELETE FROM custody WHERE id = 3" \
    'entry 3: .*(missing|deleted)'
tampered delete-first "DELETE FROM custody WHERE id = 1" 'entry 1: '
tampered delete-last "DELETE FROM custody WHERE id = $N" \
    "entry $N: .*(deleted|head)"
tampered swap "UPDATE custody SET id = -1 WHERE id = 3;
    UPDATE custody SET id = 3 WHERE id = 4;
    UPDATE custody SET id = 4 WHERE id = -1" 'entry 3: '
tampered wipe "DELETE FROM custody" 'entry 1: '
tampered head "DELETE FROM meta WHERE key = 'custody_head'" 'entry 1: .*head'

say "a tampered ledger fails the check of a record too"
home="$T/copy-place"
expect_fail 'TAMPERED: entry 3' "$CERTKEEP" custody verify --home "$home" \
    --file "$set_file.custody"

say "a damaged or foreign record is refused, naming the file"
cp "$set_file.custody" "$T/flipped.custody"
# Flip one byte inside the signed JSON.
off=$(grep -abo 'USB stick' "$T/flipped.custody" | head -n 1 | cut -d: -f1)
[[ -n "$off" ]] || fail "cannot find the place text in the record"
printf 'V' | dd of="$T/flipped.custody" bs=1 seek="$off" conv=notrunc 2>/dev/null
expect_fail "flipped.custody: error: .*signature" "$CERTKEEP" custody verify \
    --home "$ca" --file "$T/flipped.custody"
head -c 1000 "$set_file.custody" >"$T/short.custody"
expect_fail "short.custody: error: " "$CERTKEEP" custody verify --home "$ca" \
    --file "$T/short.custody"
# Two files: the good one passes, the bad one fails the run.
expect_fail "flipped.custody" "$CERTKEEP" custody verify --home "$ca" \
    --file "$set_file.custody" --file "$T/flipped.custody"
assert_grep "$(basename "$set_file").custody: intact" "$LAST_OUT" "good file reported"
ca2="$T/ca2"
new_root "$ca2" rsa2048
expect_ok "$CERTKEEP" custody add --home "$ca2" --artefact "$set_file" \
    --event created --place "elsewhere" --export --passphrase-file "$PWFILE"
expect_fail "error: .*not this CA" "$CERTKEEP" custody verify --home "$ca" \
    --file "$set_file.custody"
ok "refused"

say "a record that holds what the ledger lost is detected"
# ca2's record is of its own ledger; checked against a rolled-back copy
# of that ledger (its only entry removed, head gone too) it names it.
expect_ok "$CERTKEEP" custody verify --home "$ca2" --file "$set_file.custody"
cp -a "$ca2" "$T/ca2-rolled"
db "$T/ca2-rolled" "DELETE FROM custody; DELETE FROM meta WHERE key = 'custody_head'"
expect_ok "$CERTKEEP" custody verify --home "$T/ca2-rolled"
expect_fail 'TAMPERED: entry 1: .*not in the ledger' "$CERTKEEP" custody \
    verify --home "$T/ca2-rolled" --file "$set_file.custody"

say "an Ed25519 CA keeps a ledger but cannot sign records"
ca3="$T/ca3"
new_root "$ca3" ed25519
expect_fail 'EdDSA' "$CERTKEEP" custody add --home "$ca3" \
    --artefact "$set_file" --event created --place x --export \
    --passphrase-file "$PWFILE"
expect_ok "$CERTKEEP" custody verify --home "$ca3"
assert_grep 'intact: 0 entries' "$LAST_OUT" "nothing recorded on refusal"
expect_ok "$CERTKEEP" custody add --home "$ca3" --artefact "$set_file" \
    --event created --place x

say "the original is untouched and still verifies"
expect_ok "$CERTKEEP" custody verify --home "$ca"
assert_grep "custody ledger intact: $N entries verified" "$LAST_OUT" "original"
audit_verify_ok "$ca"
[[ $(count_audit "$ca") -gt $AUDIT0 ]] || fail "no audit entries added"
ok "original intact"
