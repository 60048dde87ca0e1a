#!/usr/bin/env bash
# audit_restored.sh - tampering with the audit log of a CA restored from a
# backup is caught as it is on the live CA: removing the last N entries
# (the plain head rewritten to match, as a forger with the store file
# would), editing one, reordering two; a log tampered with before the
# backup is caught by 'audit verify' on the restored copy; and a log whose
# checkpoints were all removed and whose hash chain was recomputed over
# what is left (so that the chain itself is consistent) is still caught,
# by the rule that a CA whose key was used must have checkpoints.
# Every case works on its own copy.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ca="$T/ca"
db() { sqlite3 -bail "$1/store.db" "$2" || fail "sqlite3 failed on $1: $2"; }

say "a CA with some history, checkpointed"
new_root "$ca" ec-p256
make_key ec-p256 "$T/k.key"
for h in www api mail ftp; do
	make_csr "$T/k.key" "$T/$h.csr" "/CN=$h.example.com"
	expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server \
	    --csr "$T/$h.csr" --cert-only --out "$T/$h.pem" \
	    --passphrase-file "$PWFILE"
done
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$(cert_serial "$T/api.pem")" \
    --reason superseded
expect_ok "$CERTKEEP" revoke --home "$ca" --serial "$(cert_serial "$T/ftp.pem")" \
    --reason keyCompromise
expect_ok "$CERTKEEP" crl --home "$ca" --out "$T/crl.pem" --passphrase-file "$PWFILE"
audit_verify_ok "$ca"

say "a backup, restored"
mkdir -p "$T/m1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/r1.key" -out "$T/r1.pem" -subj "/CN=backup recipient" \
    -days 30 2>/dev/null || fail "recipient certificate"
expect_ok "$CERTKEEP" backup --home "$ca" --to "$T/m1" --recipient "$T/r1.pem" \
    --passphrase-file "$PWFILE" --quiet
set -- "$T"/m1/*.ckb
SET1=$1
expect_ok "$CERTKEEP" restore --home "$T/restored" "$SET1" \
    --recipient-key "$T/r1.key" --ca "$ca/chain.pem"
audit_verify_ok "$T/restored"
assert_grep "signed checkpoint" "$LAST_OUT" "checkpoints in the restored log"
ok "restored: $(cat "$LAST_OUT")"

# tampered NAME HOME SQL ERE: a fresh copy of HOME, SQL applied; audit
# verify fails, says TAMPERED and matches ERE.
tampered() {
	local name=$1 src=$2 sql=$3 re=$4 home="$T/copy-$1"
	rm -rf "$home"
	cp -a "$src" "$home"
	db "$home" "$sql"
	expect_fail "$re" "$CERTKEEP" audit verify --home "$home"
	grep -q 'TAMPERED' "$LAST_ERR" || fail "verify does not say TAMPERED"
	ok "$name: $(head -n 1 "$LAST_ERR")"
}
# Every entry after K removed, the plain head rewritten to the new end.
cut_to() {
	echo "DELETE FROM audit WHERE id > $1;
	UPDATE meta SET value = (SELECT id || ':' || lower(hex(hash)) FROM audit
	    WHERE id = $1) WHERE key = 'audit_head'"
}
swap() {
	echo "UPDATE audit SET id = -1 WHERE id = $1;
	    UPDATE audit SET id = $1 WHERE id = $2;
	    UPDATE audit SET id = $2 WHERE id = -1"
}

for where in live restored; do
	src=$ca
	[[ $where == restored ]] && src=$T/restored
	N=$(db "$src" 'SELECT max(id) FROM audit')
	MID=$(( N / 2 ))
	CP=$(db "$src" "SELECT max(id) FROM audit WHERE action = 'audit-checkpoint'")
	say "on the $where CA ($N entries, the last checkpoint $CP): the last entries removed, one edited, two reordered"
	# Entries after the last checkpoint are not anchored yet (the
	# documented limit): the cuts that matter take a checkpoint along.
	tampered "$where-cut-last-checkpoint" "$src" "$(cut_to $((CP - 1)))" \
	    "signed head names checkpoint $CP"
	tampered "$where-cut-3-more" "$src" "$(cut_to $((CP - 3)))" \
	    "signed head names checkpoint $CP"
	tampered "$where-cut-plain" "$src" "DELETE FROM audit WHERE id > $((N - 2))" \
	    "entry $((N - 1)): .*(deleted|head)"
	tampered "$where-edit" "$src" \
	    "UPDATE audit SET detail = detail || ' (edited)' WHERE id = $MID" \
	    "entry $MID: .*altered"
	tampered "$where-edit-user" "$src" \
	    "UPDATE audit SET user = 'mallory' WHERE id = $((MID + 1))" \
	    "entry $((MID + 1)): "
	tampered "$where-swap" "$src" "$(swap "$MID" "$((MID + 1))")" \
	    "entry $MID: .*(broken|altered)"
	tampered "$where-swap-far" "$src" "$(swap 2 "$((N - 1))")" \
	    "entry 2: "
done

say "tampered before the backup: the restored copy says so"
cp -a "$ca" "$T/pre"
db "$T/pre" "UPDATE audit SET detail = 'nothing to see' WHERE id = $MID"
expect_fail "entry $MID: .*altered" "$CERTKEEP" audit verify --home "$T/pre"
mkdir -p "$T/m2"
run "$CERTKEEP" backup --home "$T/pre" --to "$T/m2" --recipient "$T/r1.pem" \
    --passphrase-file "$PWFILE" --quiet
if [[ $LAST_RC -ne 0 ]]; then
	# Refusing to back up a tampered log is as good.
	assert_grep "TAMPERED|audit|tamper" "$LAST_ERR" "the backup's refusal"
	ok "the backup refused the tampered log: $(head -n 1 "$LAST_ERR")"
else
	set -- "$T"/m2/*.ckb
	expect_ok "$CERTKEEP" backup verify "$1" --recipient-key "$T/r1.key" \
	    --ca "$ca/chain.pem"
	ok "the archive itself is sound (it holds what the store held)"
	expect_ok "$CERTKEEP" restore --home "$T/pre-restored" "$1" \
	    --recipient-key "$T/r1.key" --ca "$ca/chain.pem"
	expect_fail "entry $MID: .*altered" "$CERTKEEP" audit verify \
	    --home "$T/pre-restored"
	grep -q 'TAMPERED' "$LAST_ERR" || fail "verify does not say TAMPERED"
	ok "restored: $(head -n 1 "$LAST_ERR")"
fi

say "every checkpoint removed and the chain recomputed: still caught"
# The forger removes the checkpoints and the signed head, renumbers what
# is left and recomputes every link and hash (certkeep-audit-v1: the tag
# with its NUL, id and time as 8-byte big-endian, five length-prefixed
# strings, the previous hash), and the plain head: the chain is
# consistent again, so only the rule "the CA key was used, so there
# must be checkpoints" can catch it.
rebuild() {
	python3 - "$1/store.db" <<'EOF'
import hashlib, sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT time, user, action, object, result, detail, "
    "change_seq FROM audit WHERE action != 'audit-checkpoint' "
    "ORDER BY id").fetchall()
db.execute("DELETE FROM audit")
prev = bytes(32)
def s(v):
    b = (v or "").encode()
    return struct.pack(">Q", len(b)) + b
for i, (t, user, action, obj, result, detail, seq) in enumerate(rows, 1):
    h = hashlib.sha256(b"certkeep-audit-v1\0" + struct.pack(">QQ", i, t) +
        s(user) + s(action) + s(obj) + s(result) + s(detail) + prev).digest()
    db.execute("INSERT INTO audit (id, time, user, action, object, result, "
        "detail, prev_hash, hash, change_seq) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (i, t, user, action, obj, result, detail, prev, h, seq))
    prev = h
db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'",
    ("%d:%s" % (len(rows), prev.hex()),))
db.execute("DELETE FROM meta WHERE key = 'audit_head_signed'")
db.commit()
EOF
}
for where in live restored; do
	src=$ca
	[[ $where == restored ]] && src=$T/restored
	home="$T/rebuilt-$where"
	rm -rf "$home"
	cp -a "$src" "$home"
	rebuild "$home" || fail "the rebuild script failed"
	assert_eq 0 "$(db "$home" "SELECT count(*) FROM audit WHERE action = \
'audit-checkpoint'")" "checkpoints left in the rebuilt log"
	# The chain alone is consistent: what verify reports is the rule.
	expect_fail "no signed checkpoint, although the CA key was used" \
	    "$CERTKEEP" audit verify --home "$home"
	grep -q 'TAMPERED' "$LAST_ERR" || fail "verify does not say TAMPERED"
	assert_no_grep "altered|broken|missing|out of sequence" "$LAST_ERR" \
	    "only the checkpoint rule fires (the chain was rebuilt well)"
	ok "$where: $(head -n 1 "$LAST_ERR")"
done

say "the originals are untouched and still verify"
audit_verify_ok "$ca"
audit_verify_ok "$T/restored"
ok "done"
