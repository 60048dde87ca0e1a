#!/usr/bin/env bash
# audit_tamper.sh - the audit log is a hash chain: 'certkeep audit verify'
# passes on an honest log and fails (naming the entry) when the store is
# edited behind certkeep's back with sqlite3. Every case works on its own
# copy of the CA home.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"

say "a CA with some history"
new_root "$ca" ec-p256
make_key ec-p256 "$T/k.key"
for h in www api mail; do
	make_csr "$T/k.key" "$T/$h.csr" "/CN=$h.example.com"
	expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server \
	    --csr "$T/$h.csr" --cert-only --out "$T/$h.pem" --passphrase-file "$PWFILE"
done
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$(cert_serial "$T/api.pem")" \
    --reason superseded
expect_ok "$CERTKEEP" crl --home "$ca" --out "$T/crl.pem" --passphrase-file "$PWFILE"
make_csr "$T/k.key" "$T/evil.csr" "/CN=evil.org"
expect_fail 'outside' "$CERTKEEP" issue --home "$ca" --profile tls-server \
    --csr "$T/evil.csr" --passphrase-file "$PWFILE"
expect_ok "$CERTKEEP" crl --home "$ca" --out "$T/crl.pem" --passphrase-file "$PWFILE"

N=$(sqlite3 "$ca/store.db" 'SELECT count(*) FROM audit')	# checkpoints too
[[ $N -ge 8 ]] || fail "expected at least 8 audit entries, have $N"
MID=$(( (N + 1) / 2 ))
ok "$N audit entries; tampering around entry $MID"

say "an honest log verifies"
audit_verify_ok "$ca"
assert_grep "$N entries verified" "$LAST_OUT" "verified entry count"
ok "$(cat "$LAST_OUT")"

db() { sqlite3 -bail "$1/store.db" "$2" || fail "sqlite3 failed on $1: $2"; }

# tampered NAME SQL ERE: a fresh copy, SQL applied, verify fails with ERE.
tampered() {
	local name=$1 sql=$2 re=$3 home="$T/copy-$1"
	cp -a "$ca" "$home"
	db "$home" "$sql"
	expect_fail "$re" "$CERTKEEP" audit verify --home "$home"
	grep -q 'TAMPERED' "$LAST_ERR" || fail "verify does not say TAMPERED"
	ok "$name: $(head -n 1 "$LAST_ERR")"
}

say "the schema is what the tests expect"
db "$ca" "SELECT id, time, user, action, object, result, detail, prev_hash, hash,
    change_seq FROM audit LIMIT 1" >/dev/null
db "$ca" "SELECT key, value, change_seq FROM meta LIMIT 1" >/dev/null
assert_eq "$N" "$(db "$ca" 'SELECT count(*) FROM audit')" "audit rows in sqlite"

say "changed fields are detected at the changed entry"
tampered detail "UPDATE audit SET detail = detail || ' (edited)' WHERE id = $MID" \
    "entry $MID: .*altered"
tampered result "UPDATE audit SET result = 'ok' WHERE result = 'refused'" \
    "entry $(db "$ca" "SELECT min(id) FROM audit WHERE result = 'refused'"): "
tampered user "UPDATE audit SET user = 'mallory' WHERE id = 2" 'entry 2: '
tampered time "UPDATE audit SET time = time + 1 WHERE id = $N" "entry $N: "
tampered hash "UPDATE audit SET hash = zeroblob(32) WHERE id = $MID" "entry $MID: "

say "deleted entries are detected"
tampered delete-middle "DELETE FROM audit WHERE id = $MID" \
    "entry $MID: .*(missing|deleted)"
tampered delete-first "DELETE FROM audit WHERE id = 1" 'entry 1: '
tampered delete-last "DELETE FROM audit WHERE id = $N" \
    "entry $N: .*(deleted|head)"
tampered delete-last-two "DELETE FROM audit WHERE id >= $((N - 1))" \
    "entry $((N - 1)): .*(deleted|head)"

say "reordered (swapped) entries are detected"
# Swap the full contents of two rows, keeping the ids in place.
tampered swap "UPDATE audit SET id = -1 WHERE id = $MID;
    UPDATE audit SET id = $MID WHERE id = $((MID + 1));
    UPDATE audit SET id = $((MID + 1)) WHERE id = -1" "entry $MID: "
tampered swap-far "UPDATE audit SET id = -1 WHERE id = 2;
    UPDATE audit SET id = 2 WHERE id = $N;
    UPDATE audit SET id = $N WHERE id = -1" 'entry 2: '

say "forged and head-of-log edits are detected"
tampered append "INSERT INTO audit (id, time, user, action, object, result, detail,
    prev_hash, hash, change_seq) SELECT id + 1, time, user, 'issue', 'forged',
    'ok', '', hash, hash, change_seq + 1 FROM audit WHERE id = $N" "entry $((N + 1)): "
tampered head "UPDATE meta SET value = '1:' || substr(value, instr(value, ':') + 1)
    WHERE key = 'audit_head'" 'entry [0-9]+: .*head'
tampered wipe "DELETE FROM audit" 'entry 1: .*deleted'

say "the original is untouched and still verifies"
audit_verify_ok "$ca"
assert_eq "$N" "$(sqlite3 "$ca/store.db" 'SELECT count(*) FROM audit')" \
    "audit entries in the original"
ok "original intact"
