#!/usr/bin/env bash
# signer_user.sh - a CA home split between a key owner and the service
# user (docs/signer.md): certkeepd started as root runs its signer as the
# key owner and serves as the service user; the service user can neither
# read the key or the passphrase file nor change, move or replace what
# the signer trusts; the signer refuses files it must not trust (a
# group-writable configuration, a key of the service user's, a symlinked
# key); the command line as root works on the split home and leaves no
# file of root's; a hot backup restores into a new split home.
# Needs root (to create the users); skipped (77) otherwise.
# A split home must lie below directories only root writes, which /tmp
# (sticky, world-writable) is not: the test's directory goes in /run.
# (Kept in the environment: the test library may start this script again.)
export CKK_TMPDIR=${CKK_TMPDIR-x${TMPDIR-}}
[[ $(id -u) -ne 0 ]] || export TMPDIR=/run
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"
# The commands' scratch files, as usual (/run is not the users').
if [[ -n ${CKK_TMPDIR#x} ]]; then export TMPDIR=${CKK_TMPDIR#x}; else unset TMPDIR; fi

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP: signer_user needs root to create OS users"
	exit 77
fi
command -v runuser >/dev/null 2>&1 || { echo "SKIP: no runuser"; exit 77; }

K=ckk-keyowner
S=ckk-service
for u in "$K" "$S"; do
	getent passwd "$u" >/dev/null 2>&1 ||
	    useradd --system --no-create-home --shell /usr/sbin/nologin \
	    "$u" >/dev/null 2>&1 || true	# maybe a parallel run
	getent passwd "$u" >/dev/null 2>&1 || fail "cannot create user $u"
done
SG=$(id -gn "$S")

as_s() { runuser -u "$S" -- "$@"; }
# join_home HOME: certkeep home join, again while processes of $S run
# (another test's, when tests run in parallel: they end).
join_home() {
	local i
	for i in $(seq 40); do
		run ck home join --home "$1" --user "$S"
		[[ $LAST_RC -ne 0 ]] || return 0
		grep -qE "process.* of $S .*running" "$LAST_ERR" || break
		sleep 1
	done
	fail_cmd "certkeep home join"
}

# A passphrase file only root can read (as a systemd credential is).
cp "$PWFILE" "$T/root-pass"
chmod 600 "$T/root-pass"

ca="$T/ca"
say "init a split home"
expect_ok ck init --home "$ca" --root \
    --subject "CN=Split Test Root,O=certkeep tests" --key-type ec-p256 \
    --scrypt-log2n 10 --domain "$SRV_DOMAIN" --user "$S" --key-owner "$K" \
    --passphrase-fd 3 3<"$PWFILE"
conf_set "$ca" server api_listen 127.0.0.1:0
conf_set "$ca" server http_listen 127.0.0.1:0
SRV_CA="$T/ca-ca.pem"
cat "$ca/ca.pem" >"$SRV_CA"
assert_eq "$K:$SG 1770" "$(stat -c '%U:%G %a' "$ca")" "the home"
for f in certkeep.conf ca.pem chain.pem; do
	assert_eq "$K 644" "$(stat -c '%U %a' "$ca/$f")" "$f"
done
assert_eq "$K 700" "$(stat -c '%U %a' "$ca/private")" "private/"
assert_eq "$K 600" "$(stat -c '%U %a' "$ca/private/ca.key")" "the key"
assert_eq "$S 600" "$(stat -c '%U %a' "$ca/store.db")" "the store"
assert_eq "$S" "$(conf_get "$ca" server user)" "[server] user"
ok "the home is $K's, the store $S's"

# _health_ok_of HOME: its URLs are written and it answers.
_health_ok_of() {
	[[ -s "$1/certkeepd.urls" ]] || return 1
	_srv_read_urls "$1"
	_health_ok
}

# start_split HOME: certkeepd as root with the root-only passphrase file.
start_split() {
	SRV_HOMES+=("$1")
	run timeout 120 "$CERTKEEP" service start --home "$1" \
	    --passphrase-file "$T/root-pass"
}

# AddressSanitizer builds stay dumpable (its leak checker ptraces) and
# are too large to scan (signer_keyscan.sh).
ASAN=0
if ldd "$CERTKEEPD" 2>/dev/null | grep libasan >/dev/null ||
    grep -q __asan_init "$CERTKEEPD"; then
	ASAN=1
fi
# A uid change resets PR_SET_DUMPABLE to fs.suid_dumpable: with it at 1
# the service would be ptrace-able by the service user unless it says
# so again after each drop. Set for this start, then put back.
SUIDD=$(cat /proc/sys/fs/suid_dumpable 2>/dev/null || echo)
restore_suidd() { [[ -z $SUIDD ]] || echo "$SUIDD" >/proc/sys/fs/suid_dumpable 2>/dev/null || true; }
trap 'rc_=$?; restore_suidd; (exit $rc_); _srv_cleanup' EXIT
echo 1 >/proc/sys/fs/suid_dumpable 2>/dev/null || SUIDD=

say "certkeepd as root: the signer runs as $K, the service as $S"
start_split "$ca"
restore_suidd
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start"
_srv_read_urls "$ca"
SRV_PID=$(_srv_pid_of "$ca")
SIG=$(cat "/proc/$SRV_PID/task/"*/children 2>/dev/null | tr ' ' '\n' |
    grep -m1 . || true)
[[ -n $SIG ]] || fail "no signer process"
uid_of() { awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status"; }
KU=$(id -u "$K")
SU=$(id -u "$S")
assert_eq "$SU $SU $SU $SU" "$(uid_of "$SRV_PID")" "the service process's uids"
assert_eq "$KU $KU $KU $KU" "$(uid_of "$SIG")" "the signer process's uids"
assert_eq certkeep-signer "$(cat "/proc/$SIG/comm")" "the signer's name"
ok "service $SRV_PID as $S, signer $SIG as $K"
if [[ $ASAN -eq 0 ]]; then
	# /proc/PID/ of a process that is not dumpable is root's.
	assert_eq "0 0" "$(stat -c %u "/proc/$SRV_PID/status") $(stat -c %u \
	    "/proc/$SIG/status")" "the owners of /proc/PID (0: not dumpable)"
	expect_fail "Operation not permitted|Permission denied|not permitted" \
	    as_s cat "/proc/$SRV_PID/environ"
	# The passphrase's bytes, anywhere in the service's memory.
	python3 - "$SRV_PID" "$PWFILE" >"$T/pwscan" <<'PY' || fail "the scan failed"
import re, sys
pid, pwf = sys.argv[1], sys.argv[2]
needle = open(pwf, "rb").read().rstrip(b"\r\n")
assert len(needle) >= 8
found = 0
with open(f"/proc/{pid}/maps") as m, open(f"/proc/{pid}/mem", "rb", 0) as mem:
	for line in m:
		f = line.split()
		lo, hi = (int(x, 16) for x in f[0].split("-"))
		if "r" not in f[1] or (len(f) > 5 and f[5] in ("[vvar]", "[vsyscall]")):
			continue
		try:
			mem.seek(lo)
			if needle in mem.read(hi - lo):
				found += 1
		except OSError:
			pass
print(found if found else "", end="")
PY
	assert_eq "" "$(cat "$T/pwscan")" "mappings of the service holding the passphrase"
	ok "service and signer not dumpable; no passphrase in the service's memory"
fi
assert_no_grep "runs as the service user" "$LAST_ERR" \
    "no same-uid warning on a split home"
# Started in the background: the signer keeps no descriptor of the
# starter's terminal.
for n in 0 1 2; do
	assert_eq /dev/null "$(readlink "/proc/$SIG/fd/$n")" "the signer's fd $n"
done

say "as $S, what a compromised service process would try"
expect_fail "Permission denied" as_s cat "$ca/private/ca.key"
expect_fail "Permission denied" as_s cat "$T/root-pass"
expect_fail "Permission denied" as_s sh -c "echo '[signer]' >>'$ca/certkeep.conf'"
expect_fail "Operation not permitted|Permission denied" \
    as_s mv "$ca/certkeep.conf" "$ca/certkeep.conf.old"
expect_fail "Operation not permitted|Permission denied" \
    as_s rm -f "$ca/certkeep.conf"
expect_ok as_s sh -c "cp '$ca/certkeep.conf' '$ca/evil.conf' &&
    echo 'allow_ca = yes' >>'$ca/evil.conf'"
expect_fail "Operation not permitted|Permission denied" \
    as_s mv -f "$ca/evil.conf" "$ca/certkeep.conf"
expect_fail "Operation not permitted|Permission denied" \
    as_s mv "$ca/private" "$ca/private.aside"
expect_fail "exists|Permission denied|cannot" \
    as_s mkdir "$ca/private"
expect_fail "Operation not permitted|Permission denied" \
    as_s chmod 0777 "$ca/private"
expect_ok as_s rm -f "$ca/evil.conf"
assert_eq "$K 600" "$(stat -c '%U %a' "$ca/private/ca.key")" "the key, after"
assert_no_grep "allow_ca" "$ca/certkeep.conf" "the configuration, after"
ok "the key, the passphrase and the configuration are out of $S's reach"

say "a certificate over REST"
TOK=$(srv_token "$ca" split tls-server)
srv_csr "$T/a.csr" "a.$SRV_DOMAIN"
json_body tls-server "$T/a.csr" 30 >"$T/a.json"
auth=(-H "Authorization: Bearer $TOK")
api_issue auth "$T/a.json" "$T/a.pem"
expect_ok openssl verify -CAfile "$SRV_CA" "$T/a.pem"
ok "issued $SERIAL and verified"

say "the home's owner is the key owner (and root), not the service user"
expect_fail "needs the ca-admin role.*$S is not" \
    as_s "$CERTKEEP" token create --home "$ca" --name by-s --profiles tls-server
expect_ok runuser -u "$K" -- "$CERTKEEP" token create --home "$ca" \
    --name by-k --profiles tls-server
audit_of() { _audit_show "$ca" | grep -E "token-create +$1 +$2" >/dev/null; }
audit_of refused "by-s -- token-create needs" ||
    fail "the service user's refusal is not audited"
_audit_show "$ca" | grep -qE "$K +token-create +ok +by-k" ||
    fail "the key owner's token is not audited as theirs"
ok "through the admin socket: $S refused, $K acts as the owner"

say "a hot backup by certkeepd (as $S)"
make_key ec-p256 "$T/r1.key"
make_csr "$T/r1.key" "$T/r1.csr" "/CN=backup recipient" PEM
openssl req -x509 -in "$T/r1.csr" -key "$T/r1.key" -days 30 \
    -out "$T/r1.pem" 2>/dev/null || fail "no recipient certificate"
# Read by certkeepd and the command line, both as $S.
chmod 644 "$T/r1.pem"
chown "$S" "$T/r1.key"
mkdir -p "$T/sets"
chown "$S" "$T/sets"
expect_ok ck backup --home "$ca" --to "$T/sets" --recipient "$T/r1.pem" \
    --quiet
FULL=$(ls "$T"/sets/*.ckb | head -n 1)
[[ -f $FULL ]] || fail "no backup set in $T/sets"
ok "$(basename "$FULL")"
srv_stop "$ca"

say "the command line as root while certkeepd is stopped"
srv_csr "$T/b.csr" "b.$SRV_DOMAIN"
expect_ok ck issue --home "$ca" --profile tls-server --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/b.csr"
cp "$LAST_OUT" "$T/b.pem"
expect_ok openssl verify -CAfile "$SRV_CA" "$T/b.pem"
expect_ok ck crl --home "$ca" --passphrase-fd 3 3<"$PWFILE"
# A passphrase file only root can read: opened before root is given up.
expect_ok ck crl --home "$ca" --passphrase-file "$T/root-pass"
expect_ok ck audit checkpoint --home "$ca" --passphrase-fd 3 3<"$PWFILE"
expect_ok ck audit verify --home "$ca"
assert_eq "" "$(find "$ca" -user root)" "files of root's in the home"
assert_eq "$S 600" "$(stat -c '%U %a' "$ca/store.db")" "the store, after"
ok "issue, crl, audit checkpoint; nothing of root's in the home"

say "the first ACME EAB key makes the key owner's EAB key pair"
# Refused as root on the split home: it writes the key owner's files.
expect_fail "needs the key owner's files" \
    ck acme eab create --home "$ca" --note first --passphrase-fd 3 3<"$PWFILE"
assert_grep "certkeep home join --home $ca --user $S" "$LAST_ERR" \
    "the way to do it"
# A process of the service user's running: no join.
setpriv --reuid="$S" --regid="$SG" --clear-groups sleep 600 &
sp=$!
wait_until 10 pgrep -u "$S" -x sleep >/dev/null || true
expect_fail "process.* of $S .*running" ck home join --home "$ca" --user "$S"
assert_eq "$K:$SG 1770" "$(stat -c '%U:%G %a' "$ca")" "the home after a refused join"
kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null || true
join_home "$ca"
assert_grep "are $S's until 'certkeep home split" "$LAST_OUT" "the join's warning"
expect_ok ck acme eab create --home "$ca" --note first \
    --passphrase-fd 3 3<"$PWFILE"
expect_ok ck home split --home "$ca" --user "$S" --key-owner "$K"
assert_eq "$K 644" "$(stat -c '%U %a' "$ca/acme-eab.pub")" "acme-eab.pub"
assert_eq "$K 600" "$(stat -c '%U %a' "$ca/private/acme-eab.key")" \
    "private/acme-eab.key"
assert_eq "$K:$SG 1770" "$(stat -c '%U:%G %a' "$ca")" "the home, after"
expect_ok ck acme eab create --home "$ca" --note second \
    --passphrase-fd 3 3<"$PWFILE"
assert_eq "" "$(find "$ca" -user root)" "files of root's in the home"
ok "the pair is $K's; a second key needs no change of layout"

say "the signer trusts only the key owner's files"
refuse_start() {	# refuse_start ERE WHAT
	start_split "$ca"
	[[ $LAST_RC -ne 0 ]] || { srv_stop "$ca"; fail "started with $2"; }
	cat "$LAST_OUT" "$LAST_ERR" >"$T/.refusal"
	assert_grep "$1" "$T/.refusal" "the refusal of $2"
	! srv_running "$ca" || fail "certkeepd runs with $2"
	ok "$2: $(grep -m1 -oE 'refusing to (trust|use) [^:]+: [^;]+' "$T/.refusal")"
}
chmod g+w "$ca/certkeep.conf"
refuse_start "refusing to trust $ca/certkeep.conf: group or others can write" \
    "a group-writable configuration"
chmod g-w "$ca/certkeep.conf"
chown "$S" "$ca/private/ca.key"
refuse_start "refusing to trust $ca/private/ca.key: it is owned by uid $SU" \
    "a key of the service user's"
# The command line as root: the same refusal for what needs the key, a
# warning for the rest.
expect_ok ck list --home "$ca"
assert_grep "warning: refusing to trust $ca/private/ca.key" "$LAST_ERR" \
    "the command line's warning"
expect_fail "refusing to trust $ca/private/ca.key" \
    ck crl --home "$ca" --passphrase-fd 3 3<"$PWFILE"
chown "$K" "$ca/private/ca.key"
mv "$ca/private/ca.key" "$ca/private/real.key"
ln -s real.key "$ca/private/ca.key"
refuse_start "refusing to trust $ca/private/ca.key: it is a symbolic link" \
    "a symlinked key"
rm "$ca/private/ca.key"
mv "$ca/private/real.key" "$ca/private/ca.key"
chmod o+w "$ca"
chmod -t "$ca"
refuse_start "refusing to trust $ca: others can write into it" \
    "a home that is not sticky"
chmod o-w,+t "$ca"
start_split "$ca"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start again"
srv_stop "$ca"

say "the signer runs only a PKCS#11 module nobody but root or $K can write"
MOD=
for m in /usr/lib/softhsm/libsofthsm2.so \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so; do
	[[ -f $m ]] && { MOD=$m; break; }
done
if [[ -n $MOD ]]; then
	mkdir "$T/mods"
	cp "$MOD" "$T/mods/mod.so"
	chmod 755 "$T/mods"
	chmod 644 "$T/mods/mod.so"
	chown "$S" "$T/mods"
	cp -p "$ca/certkeep.conf" "$T/conf.saved"
	conf_set "$ca" ca key_uri "pkcs11:token=certkeep-ca;object=ca"
	conf_set "$ca" ca pkcs11_module "$T/mods/mod.so"
	refuse_start "refusing to use $T/mods/mod.so: the directory $T/mods above it is owned by uid $SU" \
	    "a module in a directory of $S's"
	chown root "$T/mods"
	chown "$S" "$T/mods/mod.so"
	refuse_start "refusing to trust $T/mods/mod.so: it is owned by uid $SU" \
	    "a module of $S's"
	cat "$T/conf.saved" >"$ca/certkeep.conf"
else
	echo "   (no softhsm module: skipped)"
fi

say "home split adopts no name planted in the home, nor a hard link"
as_s sh -c "echo planted >'$ca/ca.csr'"
expect_fail "belongs to uid $SU, not to root or the home's owner" \
    ck home split --home "$ca" --user "$S" --key-owner "$K"
assert_eq "$S" "$(stat -c %U "$ca/ca.csr")" "the planted name, after"
as_s rm -f "$ca/ca.csr"
echo "root's, elsewhere" >"$T/rootfile"
ln "$T/rootfile" "$ca/ca.csr"
expect_fail "has 2 links" ck home split --home "$ca" --user "$S" --key-owner "$K"
assert_eq "root" "$(stat -c %U "$T/rootfile")" "the file linked in, after"
rm -f "$ca/ca.csr"
expect_ok ck home split --home "$ca" --user "$S" --key-owner "$K"
ok "refused both; split again without them"

say "home join and home split: the conversion both ways"
start_split "$ca"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start"
expect_fail "certkeepd is running|process.* of $S .*running" \
    ck home join --home "$ca" --user "$S"
srv_stop "$ca"
join_home "$ca"
assert_eq "$S 700" "$(stat -c '%U %a' "$ca")" "the joined home"
assert_eq "" "$(find "$ca" ! -user "$S")" "files not $S's in the joined home"
# certkeepd started by root on a home without a key owner: as before
# (it becomes the home's owner), with a warning. (certkeep service start
# would become the home's owner before it starts certkeepd.)
run timeout 120 "$CERTKEEPD" --home "$ca" --passphrase-file "$T/root-pass"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start on the joined home"
assert_grep "signer process runs as the service user" "$LAST_ERR" \
    "the same-uid warning"
SIG=$(cat "/proc/$(_srv_pid_of "$ca")/task/"*/children | tr ' ' '\n' |
    grep -m1 .)
assert_eq "$SU $SU $SU $SU" "$(uid_of "$SIG")" "the signer of a joined home"
srv_stop "$ca"
# --key-owner (the unit's): a home that is not split with that owner is
# refused, not served whole (the service user could have swapped it).
run timeout 120 "$CERTKEEPD" --home "$ca" --key-owner "$K" \
    --passphrase-file "$T/root-pass"
[[ $LAST_RC -ne 0 ]] || { srv_stop "$ca"; fail "--key-owner served a joined home"; }
assert_grep "not a CA home split with the key owner $K" "$LAST_ERR" \
    "the --key-owner refusal"
! srv_running "$ca" || fail "certkeepd runs on the joined home"
expect_fail "two users" ck home split --home "$ca" --user "$S" --key-owner "$S"
expect_ok ck home split --home "$ca" --user "$S" --key-owner "$K"
assert_eq "$K:$SG 1770" "$(stat -c '%U:%G %a' "$ca")" "the home split again"
assert_eq "$K 600" "$(stat -c '%U %a' "$ca/private/ca.key")" "the key split again"
assert_eq "$K 644" "$(stat -c '%U %a' "$ca/certkeep.conf")" \
    "the configuration split again"
SRV_HOMES+=("$ca")
run timeout 120 "$CERTKEEPD" --home "$ca" --key-owner "$K" \
    --passphrase-file "$T/root-pass"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd --key-owner $K did not start"
srv_stop "$ca"
ok "joined: all $S's, the signer as $S (warned); split again"

say "restore into a new split home"
mkdir "$T/rest"
chmod 711 "$T/rest"	# root's: the restore makes the home itself
new="$T/rest/restored"
expect_ok ck restore --home "$new" "$FULL" --recipient-key "$T/r1.key" \
    --ca "$SRV_CA" --user "$S" --key-owner "$K"
assert_eq "$K:$SG 1770" "$(stat -c '%U:%G %a' "$new")" "the restored home"
assert_eq "$K 644" "$(stat -c '%U %a' "$new/certkeep.conf")" \
    "the restored configuration"
assert_eq "$S" "$(stat -c '%U' "$new/store.db")" "the restored store"
assert_eq "" "$(find "$new" -user root)" "files of root's in the restored home"
assert_eq "root 711" "$(stat -c '%U %a' "$T/rest")" "the parent, after"
ok "restored $(stat -c '%U:%G %a' "$new")"

say "a split home below a directory $S can write is refused"
chown "$S" "$T/rest"
refuse_start_of() {	# refuse_start_of HOME ERE WHAT
	start_split "$1"
	[[ $LAST_RC -ne 0 ]] || { srv_stop "$1"; fail "started with $3"; }
	cat "$LAST_OUT" "$LAST_ERR" >"$T/.refusal"
	assert_grep "$2" "$T/.refusal" "the refusal of $3"
	! srv_running "$1" || fail "certkeepd runs with $3"
}
refuse_start_of "$new" "the directory $T/rest above it is owned by uid $SU.*chown root:root $T/rest; chmod 755 $T/rest" \
    "an ancestor of $S's"
expect_fail "the directory $T/rest above it" ck list --home "$new"
chown root "$T/rest"
chmod 1777 "$T/rest"
refuse_start_of "$new" "the directory $T/rest above it .*mode 1777" \
    "a sticky world-writable ancestor"
chmod 711 "$T/rest"
ok "certkeepd and the command line refuse both"

say "the key: a key backup of the split home, restored into the new one"
printf 'a key backup passphrase %s\n' "$RANDOM$RANDOM" >"$T/kbpw"
chmod 600 "$T/kbpw"	# root's alone: read before root is given up
mkdir -p "$T/kb"
chown "$S" "$T/kb"
# Refused as root on a split home (the service user would get the key);
# done joined, certkeepd stopped, then split again.
expect_fail "needs the key owner's files" ck key backup \
    --home "$ca" --passphrase-fd 3 3<"$PWFILE" --out "$T/kb/ca-key.p8" \
    --backup-passphrase-file "$T/kbpw"
[[ ! -e $T/kb/ca-key.p8 ]] || fail "a key backup was written"
join_home "$ca"
expect_ok ck key backup --home "$ca" --passphrase-fd 3 3<"$PWFILE" \
    --out "$T/kb/ca-key.p8" --backup-passphrase-file "$T/kbpw"
expect_ok ck home split --home "$ca" --user "$S" --key-owner "$K"
expect_fail "needs the key owner's files" ck key restore \
    --home "$new" --from "$T/kb/ca-key.p8" --backup-passphrase-file "$T/kbpw" \
    --passphrase-fd 3 3<"$PWFILE"
join_home "$new"
expect_ok ck key restore --home "$new" --from "$T/kb/ca-key.p8" \
    --backup-passphrase-file "$T/kbpw" --passphrase-fd 3 3<"$PWFILE"
expect_ok ck home split --home "$new" --user "$S" --key-owner "$K"
assert_eq "$K:$SG 1770" "$(stat -c '%U:%G %a' "$new")" "the home after key restore"
assert_eq "$K 600" "$(stat -c '%U %a' "$new/private/ca.key")" \
    "the restored key"
assert_eq "" "$(find "$new" -user root)" "files of root's after key restore"
start_split "$new"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start on the restored home"
_srv_read_urls "$new"
TOK=$(srv_token "$new" split2 tls-server)
auth=(-H "Authorization: Bearer $TOK")
srv_csr "$T/c.csr" "c.$SRV_DOMAIN"
json_body tls-server "$T/c.csr" 30 >"$T/c.json"
api_issue auth "$T/c.json" "$T/c.pem"
expect_ok openssl verify -CAfile "$SRV_CA" "$T/c.pem"
srv_stop "$new"
ok "the restored split home serves"

say "M-of-N unlock of a split home: the shares at the terminal, as root"
mkdir "$T/shares"
chown "$S" "$T/shares"	# key protect writes them as the service user
expect_fail "needs the key owner's files" ck key protect --home "$new" \
    --shares 2/3 --custodian a --custodian b --custodian c --out "$T/shares" \
    --passphrase-fd 3 3<"$PWFILE"
join_home "$new"
expect_ok ck key protect --home "$new" --shares 2/3 --custodian a \
    --custodian b --custodian c --out "$T/shares" \
    --passphrase-fd 3 3<"$PWFILE"
expect_ok ck home split --home "$new" --user "$S" --key-owner "$K"
assert_eq "$K 600" "$(stat -c '%U %a' "$new/private/ca.key")" "the protected key"
assert_eq "$K:$SG 1770" "$(stat -c '%U:%G %a' "$new")" "the home after key protect"
# Not through the admin socket: its collector runs as the service user,
# who would rebuild the passphrase.
run timeout 120 "$CERTKEEP" service start --home "$new"
[[ $LAST_RC -ne 0 ]] || { srv_stop "$new"; fail "a locked start of a split home"; }
cat "$LAST_OUT" "$LAST_ERR" >"$T/.refusal"
assert_grep "protected by key shares and the home has a key owner.*--unlock-shares-prompt" \
    "$T/.refusal" "the refusal of the locked start"
! srv_running "$new" || fail "certkeepd runs locked"
ls "$T"/shares/*.share | head -n 2 | xargs cat >"$T/two-shares"
SRV_HOMES+=("$new")
run timeout 120 "$CERTKEEP" service start --home "$new" \
    --unlock-shares-prompt <"$T/two-shares"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeepd did not start with the shares at the terminal"
wait_until 30 _health_ok_of "$new" || fail "certkeepd does not serve after the shares"
TOK=$(srv_token "$new" split3 tls-server)
auth=(-H "Authorization: Bearer $TOK")
srv_csr "$T/d.csr" "d.$SRV_DOMAIN"
json_body tls-server "$T/d.csr" 30 >"$T/d.json"
api_issue auth "$T/d.json" "$T/d.pem"
srv_stop "$new"
assert_eq "" "$(find "$new" -user root)" "files of root's after the locked start"
ok "unlocked by 2 of 3 shares at the terminal; issued $SERIAL"
