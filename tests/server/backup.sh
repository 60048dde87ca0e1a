#!/usr/bin/env bash
# backup.sh - data backups end to end, with a live certkeepd:
#   hot full + incremental backups to two destinations while clients keep
#   getting certificates; every certificate acknowledged before a backup
#   began is in a restore of it; the sets open with openssl cms + tar alone
#   and hold no private key material; verify catches a flipped byte, a
#   truncation, a missing or reordered incremental, a wrong recipient and a
#   set of another CA; restore refuses a non-empty home and a running CA;
#   a restored CA (key restored from a key backup) issues and revokes with
#   CRL numbers that go on, and its next backup is a new full chain; a
#   drill passes and is recorded; an offline backup leaves certkeepd
#   running, also when it fails; retention deletes only what it may.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
srv_start "$ca"
TOK=$(srv_token "$ca" backup tls-server --allow-revoke)
auth=(-H "Authorization: Bearer $TOK")
mkdir -p "$T/m1" "$T/m2" "$T/other" "$T/logical"
if [ "$(id -u)" = 0 ]; then
	# The CLI runs as the home's owner: the media must be theirs.
	chown "$(stat -c %U "$ca")" "$T/m1" "$T/m2" "$T/other" "$T/logical"
	chmod 711 "$T"
fi

# Recipients: an RSA and an EC certificate (the backup operators' keys).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/r1.key" -out "$T/r1.pem" \
    -subj "/CN=backup recipient 1" -days 30 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/r2.key" -out "$T/r2.pem" -subj "/CN=backup recipient 2" \
    -days 30 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/stranger.key" -out "$T/stranger.pem" -subj "/CN=stranger" \
    -days 30 2>/dev/null
chmod 644 "$T"/r1.pem "$T"/r2.pem
# Files the command line reads as the home's owner.
own() { if [ "$(id -u)" = 0 ]; then chown "$(stat -c %U "$ca")" "$@"; fi; }
own "$T"/r1.key "$T"/r2.key "$T"/stranger.key
as_user=()
[ "$(id -u)" = 0 ] && as_user=(--user "$(stat -c %U "$ca")")

issue_n() {	# issue N certificates (names with prefix P); serials to FILE
	local n=$1 p=$2 out=$3 i
	for i in $(seq "$n"); do
		srv_csr "$T/$p$i.csr" "$p$i.$SRV_DOMAIN"
		json_body tls-server "$T/$p$i.csr" >"$T/$p$i.json"
		api POST "$API/api/v1/certificates" "${auth[@]}" \
		    -H 'Content-Type: application/json' --data-binary "@$T/$p$i.json"
		[ "$CODE" = 201 ] || fail "issuing $p$i: HTTP $CODE $(cat "$BODY")"
		echo "$(json_str "$BODY" serial)" >>"$out"
	done
}
bk() { ck backup --home "$ca" --passphrase-fd 3 3<"$PWFILE" --quiet "$@"; }

say "some history: 12 certificates, 2 revoked, a CRL"
: >"$T/serials.a"
issue_n 12 a "$T/serials.a"
for s in $(head -2 "$T/serials.a"); do
	expect_ok ck revoke --home "$ca" --passphrase-fd 3 3<"$PWFILE" --serial "$s" \
	    --reason keyCompromise
done

say "hot full backup to two media while clients keep issuing"
load() {	# issue until told to stop; acknowledged serials to $1
	local i=0
	srv_csr "$T/load.csr" "load.$SRV_DOMAIN"
	json_body tls-server "$T/load.csr" >"$T/load.json"
	while [ ! -e "$T/stop-load" ]; do
		i=$((i + 1))
		if curl -sS --max-time 20 --cacert "$SRV_CA" "${auth[@]}" \
		    -H 'Content-Type: application/json' \
		    --data-binary "@$T/load.json" -o "$T/load.out" \
		    -w '%{http_code}' "$API/api/v1/certificates" \
		    >"$T/load.code" 2>/dev/null &&
		    [ "$(cat "$T/load.code")" = 201 ]; then
			echo "$(date +%s.%N) $(json_str "$T/load.out" serial)" >>"$1"
		fi
	done
}
: >"$T/acked"
load "$T/acked" &
bg_track $!
wait_until 20 test -s "$T/acked" || fail "the load never got a certificate"
t_before=$(date +%s.%N)
expect_ok bk --to "$T/m1" --to "$T/m2" --recipient "$T/r1.pem" \
    --recipient "$T/r2.pem"
full1=$(ls "$T"/m1/*-full-*.ckb)
[ -f "$T/m2/$(basename "$full1")" ] || fail "no copy on the second medium"
[ -f "$full1.custody" ] || fail "no custody record beside the set"
[ "$(stat -c %a "$full1")" = 600 ] || fail "the set is not 0600"
grep -q "read back: ok" "$LAST_OUT" || fail "copies not reported read back"
sleep 0.3
t_inc=$(date +%s.%N)
expect_ok bk --incremental --to "$T/m1" --to "$T/m2" --recipient "$T/r1.pem"
touch "$T/stop-load"
wait
incr1=$(ls "$T"/m1/*-incr-*.ckb | head -1)
ok "a full and an incremental, each on two media"

say "standard tools open a set: openssl cms -decrypt, tar, openssl cms -verify"
mkdir "$T/open"
openssl cms -decrypt -inform DER -in "$full1" -recip "$T/r2.pem" \
    -inkey "$T/r2.key" -out "$T/open/set.tar" || fail "openssl cms -decrypt"
(cd "$T/open" && tar xf set.tar) || fail "tar"
openssl cms -verify -inform DER -in "$T/open/manifest.p7s" \
    -CAfile "$ca/chain.pem" -purpose any -out "$T/open/m.json" 2>/dev/null ||
    fail "openssl cms -verify of the manifest"
cmp -s "$T/open/m.json" "$T/open/manifest.json" || fail "manifest copies differ"
for p in $(cd "$T/open" && find parts -type f); do
	want=$(jq -r --arg n "$p" '.parts[] | select(.name == $n) | .sha256' \
	    "$T/open/m.json")
	got=$(sha256sum "$T/open/$p" | cut -d' ' -f1)
	[ "$want" = "$got" ] || fail "part $p: digest differs from the manifest"
done
# A full set's store is the SQLite file itself, in pieces named by their
# offsets: in name order they are the file.
ls "$T"/open/parts/store/store.db.0000000000000000.zst >/dev/null ||
    fail "no first page of the store file"
cat "$T"/open/parts/store/store.db.*.zst | zstd -dcq >"$T/open/store.db"
[ "$(sqlite3 "file:$T/open/store.db?immutable=1" 'PRAGMA integrity_check')" = ok ] ||
    fail "the store file in the set is not a sound SQLite database"
[ "$(sqlite3 "file:$T/open/store.db?immutable=1" 'SELECT count(*) FROM certs')" -ge 13 ] ||
    fail "too few certificates in the store file"
zstd -dcq "$T/open/parts/ca/ca.pem.zst" | cmp -s - "$ca/ca.pem" ||
    fail "the CA certificate in the set differs"
ok "opened and checked with openssl, tar, zstd, sha256sum and sqlite3"

say "a data backup holds no private key material"
for p in $(cd "$T/open" && find parts -name '*.zst'); do
	zstd -dcq "$T/open/$p"
done >"$T/open/all.txt"
if grep -qa "PRIVATE KEY" "$T/open/all.txt"; then
	fail "PRIVATE KEY text in a data backup"
fi
keyb64=$(sed -n '2p' "$ca/private/ca.key" | cut -c1-40)
if grep -qaF "$keyb64" "$T/open/all.txt"; then
	fail "the encrypted CA key is in a data backup"
fi
openssl pkey -in "$ca/private/ca.key" -passin "file:$PWFILE" -outform DER \
    -out "$T/cakey.der" 2>/dev/null
# The private scalar (bytes 8..39 of a P-256 PKCS#8 key's ECPrivateKey) in
# hex and base64 must appear nowhere.
priv_hex=$(openssl ec -in "$T/cakey.der" -inform DER -text -noout 2>/dev/null |
    sed -n '/priv:/,/pub:/p' | grep -v 'priv:\|pub:' | tr -d ' :\n')
[ -n "$priv_hex" ] || fail "cannot read the CA private scalar"
if grep -qai "$priv_hex" "$T/open/all.txt"; then
	fail "the CA private scalar is in a data backup"
fi
# ... nor as raw bytes (the store file is binary).
if od -An -v -tx1 "$T/open/all.txt" | tr -d ' \n' | grep -qi "$priv_hex"; then
	fail "the CA private scalar's bytes are in a data backup"
fi
rm -f "$T/cakey.der"
ok "no PEM key, no key file bytes, no private scalar"

say "verify: good sets pass, every fault is named"
rv=(--recipient-key "$T/r1.key" --home "$ca")
expect_ok ck backup verify "$full1" "$incr1" "${rv[@]}"
cp "$full1" "$T/flip.ckb"
size=$(stat -c %s "$T/flip.ckb")
printf '\xff' | dd of="$T/flip.ckb" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
own "$T/flip.ckb"
expect_fail "altered|digest|decrypt|corrupt|bad|zstd|tar" \
    ck backup verify "$T/flip.ckb" "${rv[@]}"
head -c $((size - 700)) "$full1" >"$T/trunc.ckb"
own "$T/trunc.ckb"
expect_fail "truncat|end|short|incomplete" ck backup verify "$T/trunc.ckb" "${rv[@]}"
expect_fail "not encrypted to|recipient|decrypt" ck backup verify "$full1" \
    --recipient-key "$T/stranger.key" --home "$ca"

say "an incremental missing or out of order"
sleep 1
issue_n 2 b "$T/serials.b"
expect_ok bk --incremental --to "$T/m1" --recipient "$T/r1.pem"
incr2=$(ls -t "$T"/m1/*-incr-*.ckb | head -1)
[ "$incr2" != "$incr1" ] || fail "no second incremental"
expect_fail "missing or out of order|parent" \
    ck backup verify "$full1" "$incr2" "${rv[@]}"
expect_fail "missing or out of order|parent|full" \
    ck backup verify "$full1" "$incr2" "$incr1" "${rv[@]}"
expect_fail "full|incremental" ck backup verify "$incr1" "$incr2" "$full1" "${rv[@]}"

say "a set of another CA"
other="$T/otherca"
srv_init "$other"
SRV_CA="$T/ca-ca.pem"	# srv_init points it at the other CA
expect_ok ck backup --home "$other" --passphrase-fd 3 3<"$PWFILE" --quiet \
    --to "$T/other" --recipient "$T/r1.pem"
ofull=$(ls "$T"/other/*.ckb)
expect_fail "another CA|not signed|signer|trusted" \
    ck backup verify "$ofull" "${rv[@]}"
expect_fail "another|chain|CA" ck backup verify "$full1" "$ofull" "${rv[@]}"
ok "flipped byte, truncation, wrong recipient, missing/reordered incremental, another CA"

say "backup list: chains, copies, verification"
expect_ok ck backup list --home "$ca"
grep -q "full" "$LAST_OUT" && grep -q "incremental" "$LAST_OUT" ||
    fail "list does not show the sets"
grep -q "single copy" "$LAST_OUT" || fail "no warning for the single-copy set"
rm -f "$T/m2/$(basename "$incr1")"
expect_ok ck backup list --home "$ca"
[ "$(grep -c 'single copy' "$LAST_OUT")" -ge 2 ] ||
    fail "a lost copy is not noticed"
cp "$T/m1/$(basename "$incr1")" "$T/m2/"

say "restore refuses a non-empty home and a running CA"
mkdir "$T/busy" && touch "$T/busy/x"
rk=(--recipient-key "$T/r1.key" --ca "$ca/chain.pem")
expect_fail "CA certificate and chain" ck restore --home "$T/noca" "$full1" --recipient-key "$T/r1.key"
expect_fail "not empty" ck restore --home "$T/busy" "$full1" "${rk[@]}"
expect_fail "running|not empty" ck restore --home "$ca" "$full1" "${rk[@]}"
expect_fail "missing or out of order|parent" ck restore --home "$T/gap" \
    "$full1" "$incr2" "${rk[@]}"
[ ! -e "$T/gap" ] || fail "a refused restore left a home behind"
expect_fail "altered|digest|decrypt|corrupt|bad|zstd|tar" ck restore \
    --home "$T/bad" "$T/flip.ckb" "${rk[@]}"
[ ! -e "$T/bad" ] || fail "a refused restore left a home behind"

say "restore full + incrementals; every acknowledged certificate is there"
mkdir "$T/rest"
own "$T/rest"	# a restore run as root works as the service user
new="$T/rest/restored"
# CRLs published after the last backup: the restore is told of the last.
expect_ok ck crl --home "$ca" --passphrase-fd 3 3<"$PWFILE"
expect_ok ck crl --home "$ca" --passphrase-fd 3 3<"$PWFILE"
cp "$ca/crl/ca.crl" "$T/last.crl"
expect_ok ck restore --home "$new" "$full1" "$incr1" "$incr2" \
    --recipient-key "$T/r1.key" --recipient "$T/r1.pem" --ca "$ca/chain.pem" \
    --last-crl "$T/last.crl" "${as_user[@]}"
restored_serials() { ck list --home "$new" --json 2>/dev/null |
    jq -r '.[].serial' 2>/dev/null || ck list --home "$new" | awk 'NR>1 {print $1}'; }
restored_serials >"$T/restored.serials"
for s in $(cat "$T/serials.a" "$T/serials.b"); do
	grep -qx "$s" "$T/restored.serials" || fail "certificate $s lost"
done
# Acknowledged before the incremental began: must be in it.
awk -v t="$t_inc" '$1 < t { print $2 }' "$T/acked" >"$T/acked.before"
[ -s "$T/acked.before" ] || fail "the load acknowledged nothing before the backup"
while read -r s; do
	grep -qx "$s" "$T/restored.serials" ||
	    fail "certificate $s was acknowledged before the backup and is lost"
done <"$T/acked.before"
ok "$(wc -l <"$T/acked.before") certificates acknowledged under load before the backup are restored"
expect_ok ck audit verify --home "$new"
for s in $(head -2 "$T/serials.a"); do
	ck show --home "$new" "$s" | grep -qi revoked || fail "$s lost its revocation"
done

say "restored CA: key from a key backup, issues, revokes, CRL numbers go on"
printf 'a key backup passphrase %s\n' "$RANDOM$RANDOM" >"$T/kbpw"
chmod 600 "$T/kbpw"
own "$T/kbpw"
expect_ok ck key backup --home "$ca" --passphrase-fd 3 3<"$PWFILE" \
    --out "$T/m1/ca-key.p8" --backup-passphrase-file "$T/kbpw"
expect_ok ck key restore --home "$new" --from "$T/m1/ca-key.p8" \
    --backup-passphrase-file "$T/kbpw" --passphrase-fd 3 3<"$PWFILE"
crl_before=$(openssl crl -in "$T/last.crl" -inform DER -noout -crlnumber | cut -d= -f2)
srv_stop "$ca"
conf_set "$new" server api_listen 127.0.0.1:0
conf_set "$new" server http_listen 127.0.0.1:0
srv_start "$new"
TOK2=$(srv_token "$new" after tls-server --allow-revoke)
srv_csr "$T/post.csr" "post.$SRV_DOMAIN"
json_body tls-server "$T/post.csr" >"$T/post.json"
api POST "$API/api/v1/certificates" -H "Authorization: Bearer $TOK2" \
    -H 'Content-Type: application/json' --data-binary "@$T/post.json"
[ "$CODE" = 201 ] || fail "the restored CA does not issue: $CODE $(cat "$BODY")"
json_str "$BODY" certificate >"$T/post.pem"
openssl verify -CAfile "$new/chain.pem" "$T/post.pem" >/dev/null ||
    fail "openssl does not verify the restored CA's certificate"
post_serial=$(json_str "$BODY" serial)
grep -qx "$post_serial" "$T/restored.serials" && fail "a serial was reused"
expect_ok ck revoke --home "$new" --passphrase-fd 3 3<"$PWFILE" --serial "$post_serial"
ocsp_says() {	# the restored server's OCSP status word for a certificate
	openssl ocsp -url "$PUB/ocsp" -issuer "$new/ca.pem" -cert "$1" \
	    -CAfile "$new/chain.pem" -timeout 20 2>&1 |
	    sed -n 's/^[^ ]*: \(good\|revoked\|unknown\)$/\1/p' | head -n 1
}
wait_until 5 test "$(ocsp_says "$T/post.pem")" = revoked ||
    fail "the restored CA's OCSP responder does not say revoked"
# A certificate revoked before the backup is revoked after the restore.
api GET "$API/api/v1/certificates/$(head -1 "$T/serials.a")" \
    -H "Authorization: Bearer $TOK2"
json_str "$BODY" certificate >"$T/old.pem"
[ "$(ocsp_says "$T/old.pem")" = revoked ] ||
    fail "a revocation from before the backup is lost to OCSP"
crl_after=$(openssl crl -in "$new/crl/ca.crl" -inform DER -noout -crlnumber | cut -d= -f2)
[ $((crl_after)) -gt $((crl_before)) ] ||
    fail "CRL number went back: $crl_after after $crl_before"
openssl crl -in "$new/crl/ca.crl" -inform DER -CAfile "$new/chain.pem" \
    -noout 2>&1 | grep -q "verify OK" || fail "openssl does not verify the CRL"
ok "issued $post_serial, revoked it, CRL $crl_before -> $crl_after"

say "after a restore the next backup starts a new chain"
expect_fail "full backup" ck backup --home "$new" --passphrase-fd 3 3<"$PWFILE" \
    --quiet --incremental --to "$T/other" --recipient "$T/r1.pem"
expect_ok ck backup --home "$new" --passphrase-fd 3 3<"$PWFILE" --quiet \
    --to "$T/other" --recipient "$T/r1.pem" --keep-last 1
# Its catalogue came from the source CA: those sets are not its to delete.
[ -f "$full1" ] && [ -f "$incr1" ] ||
    fail "the restored CA's retention deleted the source CA's sets"
srv_stop "$new"

say "drill: restore, check, serve, issue; recorded in list and metrics"
srv_start "$ca"
expect_ok ck backup drill --home "$ca" --passphrase-fd 3 3<"$PWFILE" \
    --recipient-key "$T/r1.key"
grep -q "restore drill passed" "$LAST_OUT" || fail "drill did not pass"
expect_ok ck backup list --home "$ca"
grep -qi "FAILED" "$LAST_OUT" && fail "list shows a failure after a good drill"
curl -s "$PUB/metrics" >"$T/metrics"
grep -q '^certkeep_last_good_backup_timestamp_seconds [1-9]' "$T/metrics" ||
    fail "metrics do not show the last good backup"
grep -q '^certkeep_last_good_drill_timestamp_seconds [1-9]' "$T/metrics" ||
    fail "metrics do not show the last good drill"
expect_fail "trusted" ck backup drill --home "$ca" --recipient-key "$T/r1.key" \
    --key-backup "$T/m1/ca-key.p8" --backup-passphrase-file "$T/kbpw" \
    "$ofull"
expect_fail "not the key" ck backup drill --home "$ca" --recipient-key "$T/r1.key" \
    --key-backup "$T/m1/ca-key.p8" --backup-passphrase-file "$T/kbpw" \
    --ca "$other/chain.pem" "$ofull"

say "a logical full set (rows as JSON lines) restores the same CA"
expect_ok bk --logical --to "$T/logical" --recipient "$T/r1.pem"
lfull=$(ls "$T"/logical/*-full-*.ckb)
mkdir "$T/lopen"
openssl cms -decrypt -inform DER -in "$lfull" -recip "$T/r1.pem" \
    -inkey "$T/r1.key" -out "$T/lopen/set.tar" || fail "openssl cms -decrypt"
(cd "$T/lopen" && tar xf set.tar) || fail "tar"
ls "$T"/lopen/parts/store/store.db.* >/dev/null 2>&1 && fail "a logical set holds the store file"
zstd -dcq "$T/lopen/parts/store/certs.jsonl.zst" >"$T/lopen/certs.jsonl"
nrows=$(jq -s length "$T/lopen/certs.jsonl")
[ "$nrows" -ge 13 ] || fail "too few cert rows in the logical set"
expect_ok ck restore --home "$T/rest/logical" "$lfull" "${rk[@]}" "${as_user[@]}"
[ "$(ck list --home "$T/rest/logical" | awk 'NR>1' | wc -l)" = "$nrows" ] ||
    fail "the logical restore does not hold the set's $nrows certificates"
expect_ok ck audit verify --home "$T/rest/logical"
ok "JSON lines open with zstd and jq; the restore holds all $nrows certificates"

say "offline backup: certkeepd stopped for it and running again after"
pid_before=$SRV_PID
expect_ok ck backup --home "$ca" --passphrase-fd 3 3<"$PWFILE" --quiet \
    --offline --to "$T/m1" --to "$T/m2" --recipient "$T/r1.pem"
srv_running "$ca" || fail "certkeepd is not running after an offline backup"
# The same with the passphrase from a file (the restarted server gets it
# through a pipe on descriptor 3, which is then free in the command).
cp "$PWFILE" "$T/pw.own"
own "$T/pw.own"
expect_ok ck backup --home "$ca" --passphrase-file "$T/pw.own" --quiet \
    --offline --to "$T/m1" --recipient "$T/r1.pem"
srv_running "$ca" || fail "certkeepd is not running after an offline backup (passphrase file)"
expect_fail "not a directory" ck backup --home "$ca" --passphrase-fd 3 \
    3<"$PWFILE" --quiet --offline --to "$T/nonexistent" --recipient "$T/r1.pem"
srv_running "$ca" || fail "a failed offline backup left certkeepd stopped"
[ $(( $(count_audit "$ca" failed backup) + $(count_audit "$ca" refused backup) )) -ge 1 ] ||
    fail "the failed backup is not audited"

say "retention keeps the newest sets and what they need"
n_before=$(ls "$T"/m1/*.ckb | wc -l)
expect_ok bk --to "$T/m1" --to "$T/m2" --recipient "$T/r1.pem" --keep-last 1
expect_ok bk --incremental --to "$T/m1" --to "$T/m2" --recipient "$T/r1.pem" \
    --keep-last 1
left=$(ls "$T"/m1/*.ckb | wc -l)
[ "$left" = 2 ] || fail "retention left $left sets, want the newest full and its incremental"
ls "$T"/m1/*-full-*.ckb >/dev/null || fail "retention deleted the full a kept incremental needs"
expect_ok ck custody show --home "$ca"
grep -q destroyed "$LAST_OUT" || fail "deletions are not in the custody ledger"
expect_ok ck custody verify --home "$ca"
ok "retention: $n_before sets -> $left"
srv_stop "$ca"
