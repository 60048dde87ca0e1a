#!/usr/bin/env bash
# audit_signed.sh - signed checkpoints anchor the audit log: 'certkeep
# audit checkpoint' signs the head with the CA key; 'audit verify' checks
# every checkpoint and the signed head, so that cutting entries off the end
# is detected even when the forger also rewrites the plain head; extracts
# ('audit export') verify offline against the CA certificate alone and
# fail when edited, cut short, or checked against another CA; and a
# restored backup verifies, and is checked, the same way.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
new_root "$ca" ec-p256
make_key ec-p256 "$T/k.key"
issue() {
	make_csr "$T/k.key" "$T/$1.csr" "/CN=$1.example.com"
	expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server \
	    --csr "$T/$1.csr" --cert-only --out "$T/$1.pem" --passphrase-file "$PWFILE"
}
cp_now() {
	expect_ok "$CERTKEEP" audit checkpoint --home "$ca" --passphrase-file "$PWFILE"
}
db() { sqlite3 -bail "$1/store.db" "$2" || fail "sqlite3 failed on $1: $2"; }

say "checkpoints"
audit_verify_ok "$ca"
assert_grep "1 signed checkpoint" "$LAST_OUT" "a new root's log starts anchored"
issue www
issue api
audit_verify_ok "$ca"
assert_grep "3 signed checkpoint\(s\)" "$LAST_OUT" "a checkpoint after each command that used the key"
assert_grep "anchors all but the last 0 entries" "$LAST_OUT" "fully anchored"
cp_now
assert_grep "is a checkpoint already" "$LAST_OUT" "no checkpoint of a checkpoint"
# revoke does not unlock the key: its entry stays unanchored until the next
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$(cert_serial "$T/api.pem")" \
    --reason superseded
audit_verify_ok "$ca"
assert_grep "anchors all but the last 1 entries" "$LAST_OUT" "unanchored entries reported"
ok "entries after the last checkpoint are reported as not yet anchored"
cp_now
assert_grep "checkpoint written" "$LAST_OUT" "an offline checkpoint"
issue mail
N=$(db "$ca" 'SELECT max(id) FROM audit')
CP1=$(db "$ca" "SELECT min(id) FROM audit WHERE action = 'audit-checkpoint'")
audit_verify_ok "$ca"
ok "$(cat "$LAST_OUT")"

# tampered NAME SQL ERE: a fresh copy, SQL applied, verify fails with ERE.
tampered() {
	local name=$1 sql=$2 re=$3 home="$T/copy-$1"
	rm -rf "$home"
	cp -a "${4:-$ca}" "$home"
	db "$home" "$sql"
	expect_fail "$re" "$CERTKEEP" audit verify --home "$home"
	grep -q 'TAMPERED' "$LAST_ERR" || fail "verify does not say TAMPERED"
	ok "$name: $(head -n 1 "$LAST_ERR")"
}
# SQL that cuts the log after entry K and rewrites the plain head to match,
# as a forger with write access to the store file would.
cut_to() {
	echo "DELETE FROM audit WHERE id > $1;
	UPDATE meta SET value = (SELECT id || ':' || lower(hex(hash)) FROM audit
	    WHERE id = $1) WHERE key = 'audit_head'"
}

say "cutting the end of the log is detected, even with the head rewritten"
tampered cut-last-checkpoint "$(cut_to $((N - 1)))" "signed head names checkpoint $N"
tampered cut-three "$(cut_to $((N - 3)))" "signed head names checkpoint $N"
tampered cut-to-first-checkpoint "$(cut_to "$CP1")" "signed head names checkpoint $N"
tampered no-signed-head "DELETE FROM meta WHERE key = 'audit_head_signed'" \
    "signed head is missing"
tampered no-checkpoints-left "DELETE FROM audit WHERE action = 'audit-checkpoint';
    DELETE FROM meta WHERE key = 'audit_head_signed'" "entry .*"
tampered old-signed-head "UPDATE meta SET value = (SELECT detail FROM audit
    WHERE id = $CP1) WHERE key = 'audit_head_signed'" "not a head"

say "a checkpoint cannot be moved or forged"
tampered checkpoint-edited "UPDATE audit SET detail = replace(detail, substr(detail, 200, 2),
    'ff') WHERE id = $CP1" "entry $CP1: "
tampered checkpoint-object "UPDATE audit SET object = '1' WHERE id = $CP1" "entry $CP1: "

say "extracts verify offline against the CA certificate"
expect_ok "$CERTKEEP" audit export --home "$ca" --from 2 --to 5 --out "$T/x.jsonl"
assert_grep "ending with a signed checkpoint" "$LAST_OUT" "export"
cp "$ca/ca.pem" "$T/auditor-ca.pem"
expect_ok "$CERTKEEP" audit verify --extract "$T/x.jsonl" --ca "$T/auditor-ca.pem"
assert_grep "audit extract intact" "$LAST_OUT" "extract verify"
ok "$(cat "$LAST_OUT")"
expect_fail "needs --ca" "$CERTKEEP" audit verify --extract "$T/x.jsonl"
# edited entry
sed '3s/"result":"ok"/"result":"no"/' "$T/x.jsonl" >"$T/x-edit.jsonl"
cmp -s "$T/x.jsonl" "$T/x-edit.jsonl" && fail "the edit did not apply"
expect_fail "TAMPERED.*altered" "$CERTKEEP" audit verify --extract "$T/x-edit.jsonl" \
    --ca "$T/auditor-ca.pem"
ok "an edited entry: $(head -n 1 "$LAST_ERR")"
# cut short
head -n -1 "$T/x.jsonl" >"$T/x-cut.jsonl"
expect_fail "does not end with a checkpoint" "$CERTKEEP" audit verify \
    --extract "$T/x-cut.jsonl" --ca "$T/auditor-ca.pem"
ok "an extract cut short: $(head -n 1 "$LAST_ERR")"
# an entry removed from the middle
sed '4d' "$T/x.jsonl" >"$T/x-del.jsonl"
expect_fail "TAMPERED.*(missing|deleted)" "$CERTKEEP" audit verify \
    --extract "$T/x-del.jsonl" --ca "$T/auditor-ca.pem"
ok "an entry removed: $(head -n 1 "$LAST_ERR")"
# another CA's certificate
new_root "$T/other" ec-p256
expect_fail "TAMPERED.*not this CA|signed by" "$CERTKEEP" audit verify \
    --extract "$T/x.jsonl" --ca "$T/other/ca.pem"
ok "checked against another CA: $(head -n 1 "$LAST_ERR")"

say "a restored backup is checked the same way"
mkdir -p "$T/m1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/r1.key" -out "$T/r1.pem" -subj "/CN=backup recipient" \
    -days 30 2>/dev/null
expect_ok "$CERTKEEP" backup --home "$ca" --to "$T/m1" --recipient "$T/r1.pem" \
    --passphrase-file "$PWFILE" --quiet
set -- "$T"/m1/*.ckb
expect_ok "$CERTKEEP" restore --home "$T/restored" "$1" --recipient-key "$T/r1.key" \
    --ca "$ca/chain.pem"
audit_verify_ok "$T/restored"
assert_grep "signed checkpoint" "$LAST_OUT" "checkpoints in the restored log"
ok "restored: $(cat "$LAST_OUT")"
RN=$(db "$T/restored" 'SELECT max(id) FROM audit')
RCP=$(db "$T/restored" "SELECT max(id) FROM audit WHERE action = 'audit-checkpoint'")
tampered restored-cut "$(cut_to $((RCP - 1)))" "signed head names checkpoint" "$T/restored"
ok "restored log has $RN entries; cutting it is detected"

say "the original still verifies"
audit_verify_ok "$ca"
