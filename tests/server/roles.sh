#!/usr/bin/env bash
# roles: operators and separated roles through certkeepd's admin socket.
#
# Four OS users, each an operator with one role, and one OS user who is no
# operator, run every admin action the socket serves (runuser): each is
# allowed exactly what its role allows (docs/roles.md), every refusal says
# which role the action needs and is audited under the caller's name;
# a second role is refused; the home's owner still manages operators but
# nothing else; malformed socket requests do not bring certkeepd down.
# Needs root (to create the users); skipped (77) otherwise.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP: roles needs root to create OS users"
	exit 77
fi
command -v runuser >/dev/null 2>&1 || { echo "SKIP: no runuser"; exit 77; }
# The other users cannot use a python3 under root's home (pyenv shims).
PY=$(PATH=/usr/local/bin:/usr/bin:/bin command -v python3 || true)
[[ -n "$PY" ]] || { echo "SKIP: no python3"; exit 77; }

# OS user -> operator and role ("" for the one who is no operator).
USERS=(ckr-admin ckr-certmgr ckr-auditor ckr-backup ckr-nobody)
declare -A OPNAME=([ckr-admin]=admin1 [ckr-certmgr]=certmgr1
    [ckr-auditor]=auditor1 [ckr-backup]=backup1 [ckr-nobody]=)
declare -A ROLE=([ckr-admin]=ca-admin [ckr-certmgr]=cert-manager
    [ckr-auditor]=auditor [ckr-backup]=backup-operator [ckr-nobody]=)
for u in "${USERS[@]}" ckr-late ckr-late2; do
	getent passwd "$u" >/dev/null 2>&1 ||
	    useradd --system --no-create-home --shell /usr/sbin/nologin \
	    "$u" >/dev/null 2>&1 || true	# maybe a parallel run
	getent passwd "$u" >/dev/null 2>&1 || fail "cannot create user $u"
done

as() {	# as USER CMD...: CMD as USER (certkeep is $CERTKEEP)
	local u=$1
	shift
	runuser -u "$u" -- "$@"
}

ca="$T/ca"
srv_init "$ca"
# The home's owner is a column of the matrix too: no operator, but
# operator management is theirs (recovery).
OWNER=$(stat -c %U "$ca")
USERS+=("$OWNER")
OPNAME[$OWNER]=
ROLE[$OWNER]=
declare -A LATE=([ckr-admin]=ckr-late [$OWNER]=ckr-late2)
mkdir -p "$T/out"
chmod 1777 "$T/out"
say "a new CA separates roles; no operator yet: only the owner acts"
expect_ok ck operator list --home "$ca"
assert_eq 1 "$(sqlite3 "$ca/store.db" "SELECT count(*) FROM meta WHERE \
key = 'role_separation' AND value = 'on'")" "role separation recorded by init"

srv_csr "$T/a.csr" "a.$SRV_DOMAIN"
# certkeep as root acts as the home's owner, who cannot read $T: stdin.
expect_ok ck issue --home "$ca" --profile tls-server --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/a.csr"
cp "$LAST_OUT" "$T/a.pem"
SERIAL=$(serial_of "$T/a.pem")
expect_ok ck token create --home "$ca" --name victim --profiles tls-server
# Operator certificates for the operators the matrix adds, and a CSR
# every user can read.
for u in "${USERS[@]}"; do
	make_key ec-p256 "$T/extra-$u.key"
	make_csr "$T/extra-$u.key" "$T/extra-$u.csr" "/CN=extra-$u" PEM
	expect_ok ck issue --home "$ca" --profile operator --csr - --cert-only \
	    --passphrase-fd 3 3<"$PWFILE" <"$T/extra-$u.csr"
	cp "$LAST_OUT" "$T/out/extra-$u.pem"
done
srv_csr "$T/out/new.csr" "new.$SRV_DOMAIN"
chmod 644 "$T"/out/*
# The first EAB key makes the home's EAB key pair (under the passphrase).
expect_ok ck acme eab create --home "$ca" --note victim \
    --passphrase-fd 3 3<"$PWFILE"
EABKID=$(sed -n 's/^kid: //p' "$LAST_OUT")
[[ $EABKID =~ ^[0-9a-f]{32}$ ]] || fail "no kid from acme eab create"

# Backups go where [backup] says, written by certkeepd (the owner).
mkdir -p "$T/bk"
chown "$(stat -c %U "$ca")" "$T/bk"
chmod 711 "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/out/r1.key" -out "$T/out/r1.pem" -subj "/CN=recipient" \
    -days 30 2>/dev/null || fail "recipient"
chmod 644 "$T/out/r1.pem"
conf_set "$ca" backup to "$T/bk"
conf_set "$ca" backup recipients "$T/out/r1.pem"
# The key backup the drill uses, by the owner (offline, as the owner).
printf 'kb passphrase %s\n' "$RANDOM$RANDOM" >"$T/out/kbpw"
chown "$(stat -c %U "$ca")" "$T/out/kbpw"
chmod 600 "$T/out/kbpw"
expect_ok ck key backup --home "$ca" --passphrase-fd 3 3<"$PWFILE" \
    --out "$T/bk/ca-key.p8" --backup-passphrase-file "$T/out/kbpw"
cp "$T/out/kbpw" "$T/out/kbpw.op"
# The backup operator's own files: the recipient's key, the passphrase.
chown ckr-backup "$T/out/r1.key" "$T/out/kbpw.op"
chmod 600 "$T/out/r1.key" "$T/out/kbpw.op"
cp "$T/bk/ca-key.p8" "$T/out/ca-key.p8"
chown ckr-backup "$T/out/ca-key.p8"
ART=$(printf 'an artefact' | sha256sum | cut -c1-64)

srv_start "$ca"

say "before any operator, another OS user may do nothing"
expect_fail "revoke needs the cert-manager role; no operator is defined" \
    as ckr-certmgr "$CERTKEEP" revoke --home "$ca" --serial "$SERIAL"

say "the owner adds one operator per role (through certkeepd)"
for u in "${USERS[@]}"; do
	[[ -n "${OPNAME[$u]}" ]] || continue
	expect_ok ck operator add --home "$ca" --name "${OPNAME[$u]}" \
	    --role "${ROLE[$u]}" --os-user "$u"
	assert_grep "Operator ${OPNAME[$u]} \\(OS user $u\\) is ${ROLE[$u]}" \
	    "$LAST_OUT" "operator add"
done
expect_ok ck operator list --home "$ca"
assert_eq 4 "$(grep -c ' active ' "$LAST_OUT")" "four active operators"

# The routed actions: "ACTION ROLE CMD..." (HOME is added; @U is the
# user running it, for names that must differ; @L an OS user for the
# operator it adds).
ACTIONS=(
	"revoke|cert-manager|revoke --serial $SERIAL --reason superseded"
	"token-create|ca-admin|token create --name tok-@U --profiles tls-server"
	"token-list|ca-admin|token list"
	"operator-list|ca-admin|operator list"
	"operator-add|ca-admin|operator add --name extra-@U --role auditor --os-user @L"
	"operator-cert|ca-admin|operator cert --name extra-@U --cert $T/out/extra-@U.pem"
	"operator-remove|ca-admin|operator remove extra-@U"
	"operator-role-separation|ca-admin|operator role-separation on"
	"audit-show|auditor|audit show"
	"audit-verify|auditor|audit verify"
	"audit-export|auditor|audit export --to 2 --out $T/out/extract-@U.jsonl"
	"token-revoke|ca-admin|token revoke victim"
	"cert-list|cert-manager|list"
	"cert-show|cert-manager|show $SERIAL"
	"issue|cert-manager|issue --profile tls-server --csr $T/out/new.csr --cert-only --out $T/out/new-@U.pem"
	"crl|cert-manager|crl --out $T/out/crl-@U.pem"
	"checkpoint|auditor|audit checkpoint"
	"acme-eab-create|ca-admin|acme eab create --note by-@U"
	"acme-eab-list|ca-admin|acme eab list"
	"acme-eab-revoke|ca-admin|acme eab revoke $EABKID"
	"backup|backup-operator|backup"
	"backup|backup-operator|backup list"
	"custody|backup-operator|custody add --artefact $ART --kind key-share --event stored --place safe-@U"
	"custody|backup-operator|custody show"
	"custody|backup-operator|custody verify"
	"config|ca-admin|service reload"
)
# Expected from the table (docs/roles.md), not from the program: the
# operator holding the role, and the owner for operator management.
allowed() {	# allowed USER ACTION NEED
	[[ -n "${ROLE[$1]}" && "${ROLE[$1]}" == "$3" ]] ||
	    [[ "$1" == "$OWNER" && "$2" == operator-* ]]
}
# certkeepd audits at most 200 refusals a second one by one (the flood
# below): each row of the matrix refuses at most 5 callers, and the rows
# are spaced by 0.2 s, so every refusal here is audited however fast this
# runs.
say "every routed action as every user: allowed exactly by role"
for a in "${ACTIONS[@]}"; do
	IFS='|' read -r action need cmd <<<"$a"
	for u in "${USERS[@]}"; do
		c=${cmd//@U/$u}
		read -r -a argv <<<"${c//@L/${LATE[$u]:-ckr-late}}"
		run as "$u" "$CERTKEEP" "${argv[@]}" --home "$ca"
		[[ $LAST_RC -lt 126 ]] ||
		    fail_cmd "$u: $action crashed (exit $LAST_RC)"
		if allowed "$u" "$action" "$need"; then
			[[ $LAST_RC -eq 0 ]] ||
			    fail_cmd "$u (${ROLE[$u]}) must be allowed $action"
		else
			[[ $LAST_RC -eq 1 ]] ||
			    fail_cmd "$u (${ROLE[$u]:-no operator}) must be refused $action"
			if [[ -n "${OPNAME[$u]}" ]]; then
				want="^certkeep: $action needs the $need role; ${OPNAME[$u]} is ${ROLE[$u]}\$"
			else
				want="^certkeep: $action needs the $need role; OS user $u is no operator\$"
			fi
			grep -Eq -- "$want" "$LAST_ERR" ||
			    fail_cmd "$u: refusal of $action does not say /$want/"
		fi
	done
	ok "$action: only $need"
	sleep 0.2
done
[[ -s "$T/out/extract-ckr-auditor.jsonl" ]] || fail "the auditor's extract is missing"
[[ ! -e "$T/out/extract-ckr-admin.jsonl" ]] || fail "a refused export wrote a file"
expect_ok ck audit verify --extract "$T/out/extract-ckr-auditor.jsonl" \
    --ca "$SRV_CA"
ok "the auditor's extract verifies"

expect_ok openssl verify -CAfile "$SRV_CA" "$T/out/new-ckr-certmgr.pem"
expect_ok openssl crl -in "$T/out/crl-ckr-certmgr.pem" -noout
for u in "${USERS[@]}"; do
	[[ $u == ckr-certmgr ]] && continue
	[[ ! -e "$T/out/new-$u.pem" && ! -e "$T/out/crl-$u.pem" ]] ||
	    fail "a refused issue or crl of $u wrote a file"
done
ok "the cert-manager's certificate and CRL; nobody else's"

say "the backup operator, not the home's owner: verify and drill here, recorded there"
ls "$T"/bk/*-full-*.ckb >"$T/sets" 2>/dev/null
[[ $(wc -l <"$T/sets") -eq 1 ]] || fail "want one set made by certkeepd, got $(cat "$T/sets")"
SET=$(cat "$T/sets")
[[ $(stat -c %U "$SET") == "$(stat -c %U "$ca")" ]] ||
    fail "the set is not the service user's"
# The sets are the service user's (0600, encrypted): the operator works on
# a copy taken from the medium, their own.
cp "$SET" "$T/out/set.ckb"
cp "$SRV_CA" "$T/out/chain.pem"
chown ckr-backup "$T/out/set.ckb"
chmod 600 "$T/out/set.ckb"
chmod 644 "$T/out/chain.pem"
SETID=$(sed -n 's/^\([0-9a-f]\{12\}\) .*/\1/p' <(as ckr-backup "$CERTKEEP" backup list --home "$ca") | head -1)
[[ -n "$SETID" ]] || fail "backup list shows no set"
for u in "${USERS[@]}"; do
	[[ $u == ckr-backup ]] && continue
	run as "$u" "$CERTKEEP" backup verify "$T/out/set.ckb" \
	    --recipient-key "$T/out/r1.key" --ca "$T/out/chain.pem" --home "$ca"
	[[ $LAST_RC -eq 1 ]] || fail_cmd "$u must not verify (nor read the key)"
done
run as ckr-backup "$CERTKEEP" backup verify "$T/out/set.ckb" \
    --recipient-key "$T/out/r1.key" --ca "$T/out/chain.pem" --home "$ca"
[[ $LAST_RC -eq 0 ]] || fail_cmd "the backup operator's verify"
run as ckr-backup "$CERTKEEP" backup drill --home "$ca" --recipient-key \
    "$T/out/r1.key" --ca "$T/out/chain.pem" "$T/out/set.ckb" --key-backup "$T/out/ca-key.p8" \
    --backup-passphrase-file "$T/out/kbpw.op"
[[ $LAST_RC -eq 0 ]] || fail_cmd "the backup operator's drill"
run as ckr-backup "$CERTKEEP" backup list --home "$ca"
assert_grep "^$SETID +full .* 1/1 " "$LAST_OUT" "the set, its copy"
assert_no_grep "never|FAILED" "$LAST_OUT" "verification and drill recorded"
run as ckr-backup "$CERTKEEP" key backup --home "$ca" --out "$T/out/k.p8"
[[ $LAST_RC -eq 1 ]] || fail_cmd "key backup by another than the owner"
assert_grep "key backup reads the CA key file: run it as the home's owner" \
    "$LAST_ERR" "key backup says why"
ok "verified, drilled, recorded; key backup stays the owner's"

say "the actions took effect, in certkeepd's store"
run as ckr-auditor "$CERTKEEP" audit show --home "$ca"
[[ $LAST_RC -eq 0 ]] || fail_cmd "audit show as the auditor"
cp "$LAST_OUT" "$T/audit.txt"
assert_grep " certmgr1/cert-manager +revoke +ok +$SERIAL " "$T/audit.txt" \
    "the revocation names operator and role"
assert_grep " admin1/ca-admin +token-create +ok +tok-ckr-admin" \
    "$T/audit.txt" "token creation names operator and role"
assert_grep " admin1/ca-admin +operator-add +ok +extra-ckr-admin " "$T/audit.txt" \
    "operator add names operator and role"
assert_grep " admin1/ca-admin +token-revoke +ok +victim" "$T/audit.txt" \
    "token revocation names operator and role"
crl_lists() {
	curl -sf "$PUB/crl/ca.crl" | openssl crl -inform DER -noout -text |
	    grep -qi "Serial Number: 0*$SERIAL\$"
}
wait_until 10 crl_lists ||
    fail "the CRL certkeepd serves does not list $SERIAL soon after the revocation"
ok "certkeepd re-signed its CRL after the revocation through the socket"
run as ckr-admin "$CERTKEEP" token list --home "$ca"
assert_grep "^[0-9a-f]+ +victim +revoked " "$LAST_OUT" "victim revoked"
assert_no_grep "tok-ckr-(certmgr|auditor|backup|nobody)" "$LAST_OUT" \
    "tokens of refused users"

say "every refusal is audited, with the role it needed"
for a in "${ACTIONS[@]}"; do
	IFS='|' read -r action need cmd <<<"$a"
	for u in "${USERS[@]}"; do
		! allowed "$u" "$action" "$need" || continue
		if [[ -n "${OPNAME[$u]}" ]]; then
			who="${OPNAME[$u]}/${ROLE[$u]}"
		else
			who="$u"
		fi
		grep -Eq -- " $who +$action +refused .*-- $action needs the $need role" \
		    "$T/audit.txt" ||
		    fail "no audited refusal of $action for $who"
	done
done
ok "refusals audited for every user and action"

say "role separation: a second role is refused"
expect_fail "role separation is on: operator auditor1 is auditor and may not also be cert-manager" \
    as ckr-admin "$CERTKEEP" operator grant --home "$ca" --name auditor1 \
    --role cert-manager
run as ckr-auditor "$CERTKEEP" audit show --home "$ca"
assert_grep " admin1/ca-admin +operator-grant +refused +auditor1 .*role separation is on" \
    "$LAST_OUT" "the refused grant is audited"

say "the home's owner: operators yes (recovery), other actions no"
expect_ok ck operator add --home "$ca" --name late --role backup-operator \
    --os-user ckr-late
owner=$(stat -c %U "$ca")
expect_fail "revoke needs the cert-manager role; OS user $owner is no operator" \
    ck revoke --home "$ca" --serial "$SERIAL"
expect_fail "token-list needs the ca-admin role" ck token list --home "$ca"

say "malformed socket requests: an error, the connection closed, still serving"
cat >"$T/poke.py" <<'EOF'
import hashlib, os, socket, struct, sys
home = os.path.realpath(sys.argv[1])
name = "\0certkeep-admin-" + hashlib.sha256(home.encode()).hexdigest()[:32]
def talk(data, close_early=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(name)
    s.sendall(data)
    if close_early:
        s.close()
        return "closed"
    buf = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    s.close()
    return buf[4:].decode(errors="replace") if len(buf) >= 4 else "(none)"
frame = lambda b: struct.pack(">I", len(b)) + b
print("huge:", talk(struct.pack(">I", 0xffffffff) + b"{}"))
print("zero:", talk(struct.pack(">I", 0)))
print("notjson:", talk(frame(b"\x00\xff not json")))
print("array:", talk(frame(b"[1,2]")))
print("dup:", talk(frame(b'{"action":"audit-show","action":"x"}')))
print("unknown:", talk(frame(b'{"action":"format-disk"}')))
print("badtype:", talk(frame(b'{"action":"revoke","serial":42}')))
print("short:", talk(struct.pack(">I", 100) + b"{", close_early=True))
print("nothing:", talk(b"", close_early=True))
EOF
run as ckr-nobody "$PY" - "$ca" <"$T/poke.py"
[[ $LAST_RC -eq 0 ]] || fail_cmd "the socket client failed"
assert_grep '^huge: .*"ok": ?false.*length of 4294967295' "$LAST_OUT" "oversized"
assert_grep '^zero: .*"ok": ?false' "$LAST_OUT" "empty"
assert_grep '^notjson: .*not JSON' "$LAST_OUT" "not JSON"
assert_grep '^array: .*not a JSON object' "$LAST_OUT" "array"
assert_grep '^dup: .*not JSON' "$LAST_OUT" "duplicate keys"
assert_grep '^unknown: .*unknown admin action' "$LAST_OUT" "unknown action"
assert_grep '^badtype: .*(needs the cert-manager role|must be a string)' \
    "$LAST_OUT" "bad argument type"
srv_running "$ca" || fail "certkeepd died"
wait_until 10 _health_ok || fail "certkeepd does not answer /health"
expect_ok as ckr-auditor "$CERTKEEP" audit verify --home "$ca"
assert_grep 'audit log intact' "$LAST_OUT" "audit verify after the pokes"
ok "certkeepd still serves"

say "a flood of refused requests is not all audited (the store stays small)"
nobody_refusals() {
	run as ckr-auditor "$CERTKEEP" audit show --home "$ca"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "audit show as the auditor"
	grep -Ec " ckr-nobody +token-list +refused " "$LAST_OUT" || true
}
before=$(nobody_refusals)
cat >"$T/flood.py" <<'EOF'
import hashlib, os, socket, struct, sys, time
home = os.path.realpath(sys.argv[1])
name = "\0certkeep-admin-" + hashlib.sha256(home.encode()).hexdigest()[:32]
req = b'{"action":"token-list"}'
t0 = time.time()
refused = 0
for i in range(1000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(name)
    s.sendall(struct.pack(">I", len(req)) + req)
    buf = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    s.close()
    if b'needs the ca-admin role' in buf:
        refused += 1
print(refused, int(time.time() - t0) + 1)
EOF
run as ckr-nobody "$PY" - "$ca" <"$T/flood.py"
[[ $LAST_RC -eq 0 ]] || fail_cmd "the flood client failed"
read -r refused secs <"$LAST_OUT"
assert_eq 1000 "$refused" "every flooded request answered with a refusal"
audited=$(( $(nobody_refusals) - before ))
(( audited <= 200 * (secs + 1) )) ||
    fail "$audited refusals audited in $secs s: more than 200 a second"
(( secs > 4 || audited < 1000 )) || fail "all 1000 refusals audited in $secs s"
# The refusals that were not audited one by one are counted in the next
# that is: in each new second's first, and in one more asked after a pause.
sleep 1.1
run as ckr-nobody "$CERTKEEP" token list --home "$ca"
[[ $LAST_RC -eq 1 ]] || fail_cmd "ckr-nobody's token list after the flood"
run as ckr-auditor "$CERTKEEP" audit show --home "$ca"
grep -E " ckr-nobody +token-list +refused " "$LAST_OUT" | tail -n "$((audited + 1))" >"$T/flood-entries"
over=$(sed -n 's/.*after \([0-9]*\) refusals over the limit of 200 a second.*/\1/p' \
    "$T/flood-entries" | awk '{ n += $1 } END { print n + 0 }')
[[ $over -gt 0 ]] || fail "no audited refusal counts the unaudited ones"
assert_eq 1001 "$((audited + 1 + over))" "refusals audited one by one plus those counted"
ok "$audited of 1000 refusals audited one by one in ${secs} s, the other $over counted in the next; all were answered"

say "stopped: the owner still may not act as an operator"
expect_ok ck service stop --home "$ca"
! srv_running "$ca" || fail "certkeepd still runs"
expect_fail "revoke needs the cert-manager role" ck revoke --home "$ca" \
    --serial "$SERIAL"
expect_ok ck operator list --home "$ca" --all
assert_grep "^extra-ckr-admin +ckr-late .* removed " "$LAST_OUT" \
    "removed operator listed"

say "commands that run here follow the same table (backup, custody, acme eab, ca install)"
expect_fail "backup needs the backup-operator role; OS user $owner is no operator" \
    ck backup list --home "$ca"
expect_ok ck operator add --home "$ca" --name keeper --role backup-operator \
    --os-user "$owner"
expect_ok ck backup list --home "$ca"
expect_ok ck custody show --home "$ca"
expect_fail "acme-eab-list needs the ca-admin role; keeper is backup-operator" \
    ck acme eab list --home "$ca"
expect_fail "config needs the ca-admin role; keeper is backup-operator" \
    ck ca install --home "$ca" --cert "$SRV_CA" --chain "$SRV_CA"
expect_fail "revoke needs the cert-manager role; keeper is backup-operator" \
    ck revoke --home "$ca" --serial "$SERIAL"
sqlite3 "$ca/store.db" "SELECT user || ' ' || action || ' ' || result FROM \
audit ORDER BY id" >"$T/audit-tail.txt"
assert_grep "^$owner backup refused$" "$T/audit-tail.txt" \
    "the owner's refused backup is audited"
assert_grep "^keeper/backup-operator acme-eab-list refused$" \
    "$T/audit-tail.txt" "the operator's refused EAB listing is audited"
ok "done"
