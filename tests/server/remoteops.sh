#!/usr/bin/env bash
# remoteops: remote operators over HTTPS (POST /admin/v1), known only by a
# TLS client certificate of this CA's 'operator' profile bound to them.
#
# Four operators, one per role, each with a certificate and no OS user,
# and a certificate of this CA bound to nobody, run every admin action the
# remote mode serves (certkeep --server ... COMMAND): each is allowed
# exactly what the table below says its role may do, every refusal names
# the role the action needs and is audited under "NAME/ROLE". Then: a
# second role is refused; a revoked operator certificate, a certificate
# from another CA, no certificate, an unbound certificate are refused
# (401/403 problem documents) and audited; the binding checks the
# certificate (this CA's, operator profile, CN = the operator's name);
# rebinding and unbinding; commands that need the CA's files are not
# offered remotely. The backup operator's column: a hot backup made by
# certkeepd to [backup] "to", the catalogue, a verification and a drill
# made here and recorded there, custody entries; every other role refused
# and audited; the set restores (by the owner) into a CA whose audit log
# verifies and holds every certificate. Runs without root: no OS users
# are needed.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
mkdir -p "$T/out"
chmod 1777 "$T/out"

# cert_csr NAME: a key and CSR with CN=NAME and no other name.
cert_csr() {
	make_key ec-p256 "$T/$1.key"
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1" PEM
}
# issue_op NAME [PROFILE]: NAME's certificate, issued by the owner (before
# any operator exists, the owner may; certkeepd is not running yet).
issue_op() {
	cert_csr "$1"
	expect_ok ck issue --home "$ca" --profile "${2:-operator}" --csr - \
	    --cert-only --passphrase-fd 3 3<"$PWFILE" <"$T/$1.csr"
	cp "$LAST_OUT" "$T/$1.pem"
}

say "the operator profile: clientAuth, short-lived, CN only"
issue_op admin1
cert_text "$T/admin1.pem" "$T/admin1.txt"
assert_grep "TLS Web Client Authentication" "$T/admin1.txt" "clientAuth EKU"
assert_grep "Subject: CN ?= ?admin1$" "$T/admin1.txt" "CN = the operator"
days=$(( ($(cert_not_after "$T/admin1.pem") - $(date +%s)) / 86400 ))
[[ $days -le 30 ]] || fail "an operator certificate valid for $days days"
ok "valid for $days days"
for n in certmgr1 auditor1 backup1 nobody1 late1 extra; do
	issue_op "$n"
done
# extra's second certificate (same name, another key), for rebinding.
make_key ec-p256 "$T/extra.new.key"
make_csr "$T/extra.new.key" "$T/extra.new.csr" "/CN=extra" PEM
expect_ok ck issue --home "$ca" --profile operator --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/extra.new.csr"
cp "$LAST_OUT" "$T/extra.new.pem"
# A tls-client certificate needs a name under the domain: for the
# profile check, one with the right CN from the wrong profile.
srv_csr "$T/tlsc.csr" "admin9.$SRV_DOMAIN"
expect_ok ck issue --home "$ca" --profile tls-client --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/tlsc.csr"
cp "$LAST_OUT" "$T/tlsc.pem"
cp "$T/tlsc.csr.key" "$T/tlsc.key"

say "a foreign CA's certificate with an operator's name"
mkdir -p "$T/other"
make_key ec-p256 "$T/other/ca.key"
openssl req -x509 -new -key "$T/other/ca.key" -subj "/CN=Other CA" \
    -days 30 -addext "basicConstraints=critical,CA:true" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$T/other/ca.pem" 2>/dev/null || fail "other CA"
cert_csr foreign
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' \
    >"$T/other/ext"
openssl x509 -req -in "$T/foreign.csr" -CA "$T/other/ca.pem" \
    -CAkey "$T/other/ca.key" -CAcreateserial -days 5 \
    -extfile "$T/other/ext" -out "$T/foreign.pem" 2>/dev/null ||
    fail "foreign certificate"

# A certificate to revoke through the matrix (and show), a token to
# revoke: made by the owner before operators exist.
srv_csr "$T/victim.csr" "victim.$SRV_DOMAIN"
expect_ok ck issue --home "$ca" --profile tls-server --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/victim.csr"
cp "$LAST_OUT" "$T/victim.pem"
SERIAL=$(serial_of "$T/victim.pem")
expect_ok ck token create --home "$ca" --name victim --profiles tls-server
srv_csr "$T/new.csr" "new.$SRV_DOMAIN"
# The first EAB key makes the home's EAB key pair (under the passphrase).
expect_ok ck acme eab create --home "$ca" --note victim \
    --passphrase-fd 3 3<"$PWFILE"
EABKID=$(sed -n 's/^kid: //p' "$LAST_OUT")
[[ $EABKID =~ ^[0-9a-f]{32}$ ]] || fail "no kid from acme eab create"

# Backups: certkeepd writes them where [backup] says, to its recipient.
mkdir -p "$T/bk1" "$T/bk2" "$T/kb"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/r1.key" -out "$T/r1.pem" -subj "/CN=backup recipient" \
    -days 30 2>/dev/null || fail "recipient"
chmod 644 "$T/r1.pem"
conf_set "$ca" backup to "$T/bk1, $T/bk2"
conf_set "$ca" backup recipients "$T/r1.pem"
# The CA key for the drill, from a key backup (the owner's, offline).
printf 'a key backup passphrase %s\n' "$RANDOM$RANDOM" >"$T/kbpw"
chmod 600 "$T/kbpw"
as_user=()
if [[ $(id -u) -eq 0 ]]; then
	# certkeepd and the owner's commands run as the home's owner.
	chown "$(stat -c %U "$ca")" "$T/bk1" "$T/bk2" "$T/kb" "$T/kbpw"
	chmod 711 "$T"
	as_user=(--user "$(stat -c %U "$ca")")
fi
expect_ok ck key backup --home "$ca" --passphrase-fd 3 3<"$PWFILE" \
    --out "$T/kb/ca-key.p8" --backup-passphrase-file "$T/kbpw"

srv_start "$ca"
R=(--server "$API" --cacert "$SRV_CA")
remote() {	# remote NAME CMD...: certkeep remotely as NAME's certificate
	local n=$1
	shift
	run "$CERTKEEP" "${R[@]}" --cert "$T/$n.pem" --key "$T/$n.key" "$@"
}

say "before any operator, a certificate of this CA can do nothing"
remote admin1 operator list
[[ $LAST_RC -eq 1 ]] || fail_cmd "an unbound certificate must be refused"
assert_grep "bound to no operator" "$LAST_ERR" "the refusal"

say "the binding checks the certificate"
expect_fail "not issued by this CA" ck operator add --home "$ca" \
    --name foreign --role auditor --cert - <"$T/foreign.pem"
expect_fail "issued under profile tls-client, not operator" ck operator add \
    --home "$ca" --name admin9.$SRV_DOMAIN --role auditor --cert - \
    <"$T/tlsc.pem"
expect_fail "must name the operator \\(CN=someone\\)" ck operator add \
    --home "$ca" --name someone --role auditor --cert - <"$T/admin1.pem"
ok "foreign, wrong profile and wrong name refused"

say "the owner binds one operator per role (through certkeepd's socket)"
declare -A ROLE=([admin1]=ca-admin [certmgr1]=cert-manager
    [auditor1]=auditor [backup1]=backup-operator [nobody1]=)
CALLERS=(admin1 certmgr1 auditor1 backup1 nobody1)
for n in admin1 certmgr1 auditor1 backup1 late1; do
	role=${ROLE[$n]:-backup-operator}
	expect_ok ck operator add --home "$ca" --name "$n" --role "$role" \
	    --cert - <"$T/$n.pem"
	assert_grep "Operator $n \\(certificate [0-9a-f]{16}\\.\\.\\.\\) is $role" \
	    "$LAST_OUT" "operator add --cert"
done
expect_ok ck operator list --home "$ca"
fp=$(openssl x509 -in "$T/admin1.pem" -outform DER | sha256sum | cut -c1-16)
assert_grep "^admin1 +- .* active +ca-admin +$fp\$" "$LAST_OUT" \
    "the list shows the certificate's fingerprint"

say "the home's owner is no operator: refused what is not operator management"
run ck issue --home "$ca" --profile tls-server --csr - --cert-only \
    <"$T/new.csr"
[[ $LAST_RC -eq 1 ]] || fail_cmd "the owner must be refused issue now"
assert_grep "issue needs the cert-manager role; OS user .* is no operator" \
    "$LAST_ERR" "the refusal"

# The expected answers: ACTION|ROLE IT NEEDS|COMMAND (@U: the caller).
# From docs/roles.md, not from the program.
ACTIONS=(
	"cert-list|cert-manager|list"
	"cert-show|cert-manager|show $SERIAL"
	"issue|cert-manager|issue --profile tls-server --csr $T/new.csr --cert-only --out $T/out/new-@U.pem"
	"revoke|cert-manager|revoke --serial $SERIAL --reason superseded"
	"crl|cert-manager|crl --out $T/out/crl-@U.pem"
	"token-create|ca-admin|token create --name tok-@U --profiles tls-server"
	"token-list|ca-admin|token list"
	"token-revoke|ca-admin|token revoke victim"
	"operator-list|ca-admin|operator list"
	"acme-eab-create|ca-admin|acme eab create --note by-@U"
	"acme-eab-list|ca-admin|acme eab list"
	"acme-eab-revoke|ca-admin|acme eab revoke $EABKID"
	"operator-add|ca-admin|operator add --name extra --role auditor --cert $T/extra.pem"
	"operator-cert|ca-admin|operator cert --name extra --cert $T/extra.new.pem"
	"operator-remove|ca-admin|operator remove extra"
	"operator-role-separation|ca-admin|operator role-separation on"
	"audit-show|auditor|audit show"
	"audit-verify|auditor|audit verify"
	"audit-export|auditor|audit export --to 2 --out $T/out/extract-@U.jsonl"
	"checkpoint|auditor|audit checkpoint"
)
say "every remote action with every certificate: allowed exactly by role"
for a in "${ACTIONS[@]}"; do
	IFS='|' read -r action need cmd <<<"$a"
	for u in "${CALLERS[@]}"; do
		read -r -a argv <<<"${cmd//@U/$u}"
		remote "$u" "${argv[@]}"
		[[ $LAST_RC -lt 126 ]] ||
		    fail_cmd "$u: $action crashed (exit $LAST_RC)"
		if [[ -n "${ROLE[$u]}" && "${ROLE[$u]}" == "$need" ]]; then
			[[ $LAST_RC -eq 0 ]] ||
			    fail_cmd "$u (${ROLE[$u]}) must be allowed $action"
		else
			[[ $LAST_RC -eq 1 ]] ||
			    fail_cmd "$u (${ROLE[$u]:-unbound}) must be refused $action"
			if [[ -n "${ROLE[$u]}" ]]; then
				want="^certkeep: $action needs the $need role; $u is ${ROLE[$u]}\$"
			else
				want="^certkeep: the client certificate [0-9A-F]+ \\(SHA-256 [0-9a-f]{16}\\.\\.\\.\\) is bound to no operator\$"
			fi
			grep -Eq -- "$want" "$LAST_ERR" ||
			    fail_cmd "$u: refusal of $action does not say /$want/"
		fi
	done
	ok "$action: only $need"
done

say "the actions took effect"
[[ -s "$T/out/new-certmgr1.pem" ]] || fail "the remote issuance wrote nothing"
expect_ok openssl verify -CAfile "$SRV_CA" "$T/out/new-certmgr1.pem"
ls "$T/out" >"$T/out.list"
assert_no_grep "new-(admin1|auditor1|backup1|nobody1)|crl-(admin1|auditor1|backup1|nobody1)|extract-(admin1|certmgr1|backup1|nobody1)" \
    "$T/out.list" "files of refused actions"
expect_ok openssl crl -in "$T/out/crl-certmgr1.pem" -noout -text
assert_grep "Serial Number: 0*$SERIAL\$" "$LAST_OUT" \
    "the remote CRL lists the remote revocation"
expect_ok ck audit verify --extract "$T/out/extract-auditor1.jsonl" \
    --ca "$SRV_CA"
remote admin1 token list
assert_grep "^[0-9a-f]+ +victim +revoked " "$LAST_OUT" "victim revoked"
assert_grep " tok-admin1 " "$LAST_OUT" "the ca-admin's token"
assert_no_grep "tok-(certmgr1|auditor1|backup1|nobody1)" "$LAST_OUT" \
    "tokens of refused callers"
remote admin1 acme eab list
assert_grep "^$EABKID +revoked " "$LAST_OUT" "the EAB key revoked remotely"
assert_grep " valid .*by-admin1\$" "$LAST_OUT" "the ca-admin's EAB key"
assert_no_grep "by-(certmgr1|auditor1|backup1|nobody1)" "$LAST_OUT" \
    "EAB keys of refused callers"
remote admin1 operator list --all
assert_grep "^extra .* removed " "$LAST_OUT" "extra added, then removed"
ok "issuance, CRL, revocation, tokens, operators, extract"

say "the backup operator's column: backups, checks and custody remotely"
remote certmgr1 list
ncerts=$(awk 'NR>1' "$LAST_OUT" | wc -l)
[[ $ncerts -ge 8 ]] || fail "only $ncerts certificates before the backup"
# refused_all ACTION CMD...: every caller but backup1 is refused.
refused_all() {
	local action=$1 u want
	shift
	for u in admin1 certmgr1 auditor1 nobody1; do
		remote "$u" "$@"
		[[ $LAST_RC -eq 1 ]] ||
		    fail_cmd "$u (${ROLE[$u]:-unbound}) must be refused $action"
		if [[ -n "${ROLE[$u]}" ]]; then
			want="^certkeep: $action needs the backup-operator role; $u is ${ROLE[$u]}\$"
		else
			want="bound to no operator"
		fi
		grep -Eq -- "$want" "$LAST_ERR" ||
		    fail_cmd "$u: refusal of $action does not say /$want/"
	done
}
refused_all backup backup
ls "$T/bk1" >"$T/bk1.list"
[[ ! -s "$T/bk1.list" ]] || fail "a refused backup wrote $(cat "$T/bk1.list")"
remote backup1 backup --to "$T/out"
[[ $LAST_RC -eq 1 ]] || fail_cmd "an operator must not name the destination"
assert_grep "naming them is the home owner's" "$LAST_ERR" "the refusal"
remote backup1 backup
[[ $LAST_RC -eq 0 ]] || fail_cmd "the backup operator's hot backup"
assert_grep "^full backup [0-9a-f]{64}: sequence 0\.\.[0-9]+, [0-9]+ bytes, SHA-256 [0-9a-f]{64}\$" \
    "$LAST_OUT" "the reply names the set, its size and digest"
SET=$(ls "$T"/bk1/*-full-*.ckb)
[[ -f "$T/bk2/$(basename "$SET")" ]] || fail "no copy in the second destination"
assert_grep "^  $SET \\(read back: ok\\)\$" "$LAST_OUT" "the reply names the artefact"
[[ $(stat -c %s "$SET") -eq $(sed -n 's/.*, \([0-9]*\) bytes,.*/\1/p' "$LAST_OUT") ]] ||
    fail "the size in the reply is not the set's"
[[ $(sha256sum "$SET" | cut -c1-64) == "$(sed -n 's/.*SHA-256 //p' "$LAST_OUT")" ]] ||
    fail "the digest in the reply is not the set's"
[[ -f "$SET.custody" ]] || fail "no custody record beside the set"
[[ "$(stat -c %a "$SET")" == 600 ]] || fail "the set is not 0600"
SETID=$(sed -n 's/^full backup \([0-9a-f]*\):.*/\1/p' "$LAST_OUT")
remote backup1 backup --incremental-or-full
[[ $LAST_RC -eq 0 ]] || fail_cmd "an incremental through certkeepd"
assert_grep "^incremental backup " "$LAST_OUT" "the chain goes on"
ok "a full and an incremental by certkeepd, on two media"

refused_all backup backup list
remote backup1 backup list
[[ $LAST_RC -eq 0 ]] || fail_cmd "backup list"
assert_grep "^${SETID:0:12} +full " "$LAST_OUT" "the catalogue lists the set"
refused_all backup backup verify "$SET" --recipient-key "$T/r1.key" --ca "$SRV_CA"
remote backup1 backup verify "$SET" --recipient-key "$T/r1.key" --ca "$SRV_CA"
[[ $LAST_RC -eq 0 ]] || fail_cmd "backup verify"
assert_grep "^ok  $SET  full " "$LAST_OUT" "verified here"
remote backup1 backup verify "$SET" --recipient-key "$T/r1.key"
[[ $LAST_RC -eq 1 ]] || fail_cmd "remotely, verify needs the chain (--ca)"
# The operator's own copy of the passphrase (they run the drill here).
cp "$T/kbpw" "$T/kbpw.op"
chmod 600 "$T/kbpw.op"
remote backup1 backup drill --recipient-key "$T/r1.key" --ca "$SRV_CA" \
    --key-backup "$T/kb/ca-key.p8" --backup-passphrase-file "$T/kbpw.op"
[[ $LAST_RC -eq 0 ]] || fail_cmd "the drill, recorded through certkeepd"
assert_grep "restore drill passed" "$LAST_OUT" "the drill"
for u in admin1 certmgr1 auditor1 nobody1; do
	api POST "$API/admin/v1" --cert "$T/$u.pem" --key "$T/$u.key" \
	    -H 'Content-Type: application/json' \
	    --data "{\"action\":\"drill\",\"op\":\"record\",\"set\":\"$SETID\",\"ok\":true,\"detail\":\"forged\"}"
	expect_problem 403
done
remote backup1 backup list
assert_no_grep "FAILED" "$LAST_OUT" "verification and drill recorded as good"
assert_no_grep "^${SETID:0:12} .* never +never\$" "$LAST_OUT" \
    "the set's verification and drill are recorded"
ok "list, verify (key here), drill (key backup here), recorded there"

refused_all custody custody add --artefact "$SET" --event stored \
    --place "safe B"
remote backup1 custody add --artefact "$SET" --event stored \
    --place "safe B, shelf 2" --detail "sealed bag 7"
[[ $LAST_RC -eq 0 ]] || fail_cmd "custody add"
assert_grep "^Recorded custody entry [0-9]+: stored" "$LAST_OUT" "custody add"
refused_all custody custody show
remote backup1 custody show --artefact "$SET"
assert_grep " backup1/backup-operator +created " "$LAST_OUT" \
    "the set's creation names who asked for it"
assert_grep " backup1/backup-operator +verified " "$LAST_OUT" \
    "the verification"
assert_grep " backup1/backup-operator +stored +data-backup +safe B, shelf 2 " \
    "$LAST_OUT" "the hand-over"
remote backup1 custody verify
[[ $LAST_RC -eq 0 ]] || fail_cmd "custody verify"
assert_grep "custody ledger intact" "$LAST_OUT" "the ledger"
remote backup1 custody add --artefact "$SET" --event stored --place x --export
[[ $LAST_RC -eq 1 ]] || fail_cmd "--export is not remote"
ok "custody entries through certkeepd"

remote auditor1 audit show
cp "$LAST_OUT" "$T/audit-bk.txt"
for u in admin1 certmgr1 auditor1; do
	for action in backup custody; do
		assert_grep " $u/${ROLE[$u]} +$action +refused .*$action needs the backup-operator role" \
		    "$T/audit-bk.txt" "the refusal of $action to $u"
	done
	assert_grep " $u/${ROLE[$u]} +drill +refused " "$T/audit-bk.txt" \
	    "the refusal of the drill record to $u"
done
assert_grep " backup1/backup-operator +backup +ok +$SETID " "$T/audit-bk.txt" \
    "the backup names operator and role"
assert_grep " backup1/backup-operator +backup-verify +ok +$SETID " \
    "$T/audit-bk.txt" "the verification"
assert_grep " backup1/backup-operator +backup-drill +ok " "$T/audit-bk.txt" \
    "the drill"
ok "refusals and acts audited"

say "a reload is the ca-admin's, through certkeepd"
api POST "$API/admin/v1" --cert "$T/backup1.pem" --key "$T/backup1.key" \
    -H 'Content-Type: application/json' --data '{"action":"config","op":"reload"}'
expect_problem 403 "config needs the ca-admin role; backup1 is backup-operator"
api POST "$API/admin/v1" --cert "$T/admin1.pem" --key "$T/admin1.key" \
    -H 'Content-Type: application/json' --data '{"action":"config","op":"reload"}'
[[ $CODE == 200 ]] || fail "the ca-admin's reload: HTTP $CODE $(cat "$BODY")"
wait_until 20 srv_running "$ca" || fail "certkeepd is gone after a reload"
remote auditor1 audit show
assert_grep " admin1/ca-admin +config +ok +reload " "$LAST_OUT" "the reload audited"
ok "reloaded"

say "the set certkeepd made restores"
expect_ok ck restore --home "$T/kb/rest" "$SET" --recipient-key "$T/r1.key" \
    --ca "$SRV_CA" "${as_user[@]}"
assert_grep " $ncerts certificates " "$LAST_OUT" "the restore's count"
# The operators came with it: the owner makes itself the restored CA's
# auditor, then its certificate manager, to look (owner's recovery right).
own_user=$(stat -c %U "$T/kb/rest")
expect_ok ck operator add --home "$T/kb/rest" --name rest-aud --role auditor \
    --os-user "$own_user"
expect_ok ck audit verify --home "$T/kb/rest"
expect_ok ck operator remove --home "$T/kb/rest" rest-aud
expect_ok ck operator add --home "$T/kb/rest" --name rest-cm \
    --role cert-manager --os-user "$own_user"
[[ $(ck list --home "$T/kb/rest" | awk 'NR>1' | wc -l) -eq $ncerts ]] ||
    fail "the restored CA does not hold the $ncerts certificates"
ok "restored: audit log verifies, $ncerts certificates"

say "every refusal is audited with the role it needed; reads are audited"
remote auditor1 audit show
[[ $LAST_RC -eq 0 ]] || fail_cmd "audit show as the auditor"
cp "$LAST_OUT" "$T/audit.txt"
for a in "${ACTIONS[@]}"; do
	IFS='|' read -r action need cmd <<<"$a"
	for u in admin1 certmgr1 auditor1 backup1; do
		[[ "${ROLE[$u]}" == "$need" ]] && continue
		assert_grep " $u/${ROLE[$u]} +$action +refused .*$action needs the $need role" \
		    "$T/audit.txt" "the refusal of $action to $u"
	done
done
assert_grep " cert:[0-9A-F]+@127\\.0\\.0\\.1 +admin-authenticate +refused .*bound to no operator" \
    "$T/audit.txt" "the unbound certificate's refusals"
assert_grep " certmgr1/cert-manager +issue +ok " "$T/audit.txt" \
    "the remote issuance names operator and role"
assert_grep " certmgr1/cert-manager +revoke +ok +$SERIAL" "$T/audit.txt" \
    "the remote revocation"
assert_grep " certmgr1/cert-manager +crl +ok " "$T/audit.txt" "the remote CRL"
assert_grep " auditor1/auditor +audit-export +ok .*entries 1 to [0-9]+ exported" \
    "$T/audit.txt" "who exported the log"
assert_grep " auditor1/auditor +audit-verify +ok " "$T/audit.txt" \
    "who verified the log"
assert_grep " auditor1/auditor +audit-checkpoint +ok +covers entries" \
    "$T/audit.txt" "the auditor's checkpoint"
remote auditor1 audit show
assert_grep " auditor1/auditor +audit-show +ok .*entries from 1 read" \
    "$LAST_OUT" "who read the log"
ok "all audited"

say "role separation: a second role is refused"
remote admin1 operator grant --name certmgr1 --role auditor
[[ $LAST_RC -eq 1 ]] || fail_cmd "a second role must be refused"
assert_grep "role separation is on: operator certmgr1 is cert-manager and may not also be auditor" \
    "$LAST_ERR" "the refusal"

say "rebinding: a new certificate replaces the old one"
cp "$T/backup1.pem" "$T/backup1.old.pem"
cp "$T/backup1.key" "$T/backup1.old.key"
cert_csr backup1
remote certmgr1 issue --profile operator --csr "$T/backup1.csr" --cert-only \
    --out "$T/backup1.pem"
[[ $LAST_RC -eq 0 ]] || fail_cmd "a cert-manager issues an operator certificate"
remote admin1 operator cert --name backup1 --cert "$T/backup1.pem"
[[ $LAST_RC -eq 0 ]] || fail_cmd "rebinding"
remote backup1.old operator list
assert_grep "bound to no operator" "$LAST_ERR" "the old certificate"
remote backup1 token list
[[ $LAST_RC -eq 1 ]] || fail_cmd "backup1 must stay refused"
assert_grep "token-list needs the ca-admin role; backup1 is backup-operator" \
    "$LAST_ERR" "the new certificate is backup1"
ok "the new certificate acts as backup1"

say "a revoked operator certificate is refused (401)"
remote late1 operator list
assert_grep "operator-list needs the ca-admin role; late1 is" "$LAST_ERR" \
    "late1 acts before the revocation"
remote certmgr1 revoke --serial "$(serial_of "$T/late1.pem")" \
    --reason keyCompromise
[[ $LAST_RC -eq 0 ]] || fail_cmd "revoking late1's certificate"
remote late1 operator list
[[ $LAST_RC -eq 1 ]] || fail_cmd "a revoked certificate must be refused"
assert_grep "the client certificate [0-9A-F]+ is revoked" "$LAST_ERR" \
    "the refusal"
api POST "$API/admin/v1" --cert "$T/late1.pem" --key "$T/late1.key" \
    -H 'Content-Type: application/json' --data '{"action":"operator-list"}'
expect_problem 401 "is revoked"
ok "$PROBLEM_DETAIL"

say "no certificate, a foreign one: 401"
api POST "$API/admin/v1" -H 'Content-Type: application/json' \
    --data '{"action":"operator-list"}'
expect_problem 401 "need the TLS client certificate of an operator"
remote foreign operator list
[[ $LAST_RC -eq 1 ]] || fail_cmd "a foreign certificate must be refused"
assert_grep "need the TLS client certificate of an operator|certificate" \
    "$LAST_ERR" "the refusal"
api POST "$API/admin/v1" --cert "$T/foreign.pem" --key "$T/foreign.key" \
    -H 'Content-Type: application/json' --data '{"action":"operator-list"}'
if [[ $CODE != 000 ]]; then
	expect_problem 401
fi
ok "refused (HTTP $CODE)"
api POST "$API/admin/v1" --cert "$T/nobody1.pem" --key "$T/nobody1.key" \
    -H 'Content-Type: application/json' --data '{"action":"operator-list"}'
expect_problem 403 "bound to no operator"
assert_grep '"refused":true' "$BODY" "the problem carries the admin reply"
api POST "$API/admin/v1" --cert "$T/admin1.pem" --key "$T/admin1.key" \
    -H 'Content-Type: application/json' --data '{"action":"revoke","serial":"01"}'
expect_problem 403 "revoke needs the cert-manager role; admin1 is ca-admin"
api POST "$API/admin/v1" --cert "$T/admin1.pem" --key "$T/admin1.key" \
    -H 'Content-Type: application/json' --data '{"action":'
expect_problem 400
api POST "$API/admin/v1" --cert "$T/admin1.pem" --key "$T/admin1.key" \
    -H 'Content-Type: application/json' --data '{"action":"restore"}'
expect_problem 400 "unknown admin action"
remote auditor1 audit show
assert_grep " anonymous@127\\.0\\.0\\.1 +admin-authenticate +refused .*client certificate of an operator" \
    "$LAST_OUT" "the anonymous refusal"
assert_grep " cert:[0-9A-F]+@127\\.0\\.0\\.1 +admin-authenticate +refused .*is revoked" \
    "$LAST_OUT" "the revoked certificate's refusal"
ok "audited"

say "unbinding; commands on the CA's files are not remote"
remote admin1 operator cert --name backup1 --unbind
[[ $LAST_RC -eq 1 ]] || fail_cmd "unbinding an operator without an OS user"
assert_grep "has no OS user" "$LAST_ERR" "the refusal"
remote admin1 operator remove backup1
[[ $LAST_RC -eq 0 ]] || fail_cmd "remove backup1"
remote backup1 operator list
assert_grep "bound to no operator" "$LAST_ERR" "a removed operator's certificate"
remote admin1 restore --home "$T/out/r" "$SET"
[[ $LAST_RC -eq 2 ]] || fail_cmd "restore must not be offered remotely"
assert_grep "cannot run remotely" "$LAST_ERR" "the message"
remote admin1 key backup --out "$T/out/k.p8"
[[ $LAST_RC -eq 2 ]] || fail_cmd "key backup must not be offered remotely"
run "$CERTKEEP" --server http://127.0.0.1:1 --cert x --key y list
[[ $LAST_RC -eq 2 ]] || fail_cmd "an http:// server must be refused"
ok "done"

# Not srv_stop: its check reads the log as the owner, who is no auditor.
run timeout 120 "$CERTKEEP" service stop --home "$ca"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep service stop failed"
! srv_running "$ca" || fail "certkeepd still runs after stop"
echo "PASS remoteops"
