#!/usr/bin/env bash
# signer_keyscan.sh - the CA key never appears in the service process:
# the private numbers of the CA key (the EC private scalar; RSA's p, q
# and d), taken from the key file with the passphrase, are searched for
# (big- and little-endian, as OpenSSL's BIGNUMs hold them) in a core of
# the service process (gcore), in every readable mapping of
# /proc/PID/mem of the service process, and in every file under the CA
# home: none may match. As a check that the scanner works, the same scan
# of the signer process's memory finds them. Done for an EC key, an RSA
# key, and an EC key in a home split between a key owner and the service
# user (the signer as the key owner). Root only (reading another user's
# process memory), else skipped (77).
# The split home's case needs a test directory below directories only
# root writes (not /tmp): /run.
# (Kept in the environment: the test library may start this script again.)
export CKK_TMPDIR=${CKK_TMPDIR-x${TMPDIR-}}
[[ $(id -u) -ne 0 ]] || export TMPDIR=/run
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"
# The commands' scratch files, as usual (/run is not the users').
if [[ -n ${CKK_TMPDIR#x} ]]; then export TMPDIR=${CKK_TMPDIR#x}; else unset TMPDIR; fi

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP: reading process memory needs root"
	exit 77
fi
command -v gcore >/dev/null || { echo "SKIP: no gcore (gdb)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
# AddressSanitizer reserves terabytes of address space (shadow memory, its
# allocator's regions) that a scan of every mapping would read for hours.
# (grep without -q reads all of ldd's output: with pipefail, an early exit
# would fail ldd with SIGPIPE and the pipeline with it.)
if ldd "$CERTKEEPD" 2>/dev/null | grep libasan >/dev/null ||
    grep -q __asan_init "$CERTKEEPD"; then
	echo "SKIP: an AddressSanitizer build (its mappings are too large to scan)"
	exit 77
fi

signer_of() { cat "/proc/$1/task/"*/children 2>/dev/null | tr ' ' '\n' |
    grep -m1 .; }

# needles KEYFILE: one hex string per private number.
needles() {
	openssl pkey -in "$1" -passin "file:$PWFILE" -text -noout |
	python3 -c '
import re, sys
text = sys.stdin.read()
names = ("priv", "privateExponent", "prime1", "prime2")
for n in names:
	m = re.search(r"^" + n + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
	if m:
		h = re.sub(r"[^0-9a-f]", "", m.group(1)).lstrip("0")
		if len(h) % 2:
			h = "0" + h
		print(n, h)
'
}

# scan NEEDLES WHAT FILE|PID...: print "FOUND name in what" per match.
scan() {
	python3 - "$@" <<'PY'
import os, sys
needles = {}
for line in open(sys.argv[1]):
	n, h = line.split()
	b = bytes.fromhex(h)
	needles[n] = (b, b[::-1])
what = sys.argv[2]
found = set()
def look(buf, where):
	for n, (be, le) in needles.items():
		if be in buf or le in buf:
			found.add((n, where))
for arg in sys.argv[3:]:
	if arg.startswith("pid:"):
		pid = arg[4:]
		with open(f"/proc/{pid}/maps") as m, \
		    open(f"/proc/{pid}/mem", "rb", 0) as mem:
			for line in m:
				addr, perms = line.split()[:2]
				if perms[0] != "r":
					continue
				lo, hi = (int(x, 16) for x in addr.split("-"))
				# In pieces that overlap by a needle's length.
				step = 1 << 24
				where = f"pid {pid} {line.split()[-1]}"
				for a in range(lo, hi, step):
					try:
						mem.seek(a)
						look(mem.read(min(step + 512, hi - a)), where)
					except (OSError, ValueError, OverflowError):
						pass
	else:
		for root, dirs, files in os.walk(arg):
			for f in files:
				p = os.path.join(root, f)
				if os.path.islink(p) or not os.path.isfile(p):
					continue
				with open(p, "rb") as fh:
					prev = b""
					while True:
						b = fh.read(1 << 24)
						if not b:
							break
						look(prev + b, p)
						prev = b[-512:]
for n, w in sorted(found):
	print(f"FOUND {n} in {w}")
PY
}

check_home() {	# check_home HOME KEYTYPE
	local ca=$1 kt=$2 sig
	say "$kt: the key's numbers"
	needles "$ca/private/ca.key" >"$T/$kt.needles"
	[[ $(wc -l <"$T/$kt.needles") -ge 1 ]] ||
	    fail "no private numbers read from the key file"
	ok "$(awk '{ printf "%s(%d bytes) ", $1, length($2) / 2 }' "$T/$kt.needles")"
	srv_start "$ca"
	TOK=$(srv_token "$ca" scan tls-server)
	srv_csr "$T/$kt.csr" "$kt.$SRV_DOMAIN"
	json_body tls-server "$T/$kt.csr" 30 >"$T/$kt.json"
	# The key at work: certificates, OCSP, a CRL.
	auth=(-H "Authorization: Bearer $TOK")
	api_issue auth "$T/$kt.json" "$T/$kt.pem"
	run openssl ocsp -url "$PUB/ocsp" -issuer "$SRV_CA" -cert "$T/$kt.pem" \
	    -CAfile "$SRV_CA"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl ocsp"
	sig=$(signer_of "$SRV_PID")
	[[ -n $sig ]] || fail "no signer process"

	say "$kt: the service process and the home hold no key bytes"
	expect_ok gcore -o "$T/core-$kt" "$SRV_PID"
	scan "$T/$kt.needles" core "$T/core-$kt.$SRV_PID" >"$T/$kt.core"
	[[ ! -s "$T/$kt.core" ]] || fail "in the core: $(cat "$T/$kt.core")"
	scan "$T/$kt.needles" mem "pid:$SRV_PID" >"$T/$kt.mem"
	[[ ! -s "$T/$kt.mem" ]] || fail "in /proc/PID/mem: $(cat "$T/$kt.mem")"
	scan "$T/$kt.needles" home "$ca" >"$T/$kt.home"
	[[ ! -s "$T/$kt.home" ]] || fail "in the home: $(cat "$T/$kt.home")"
	ok "core ($(stat -c %s "$T/core-$kt.$SRV_PID") bytes), /proc/$SRV_PID/mem, home: none"
	rm -f "$T/core-$kt.$SRV_PID"

	say "$kt: the scanner finds them in the signer process"
	scan "$T/$kt.needles" signer "pid:$sig" >"$T/$kt.signer"
	[[ -s "$T/$kt.signer" ]] || fail "the scan finds nothing in the signer"
	ok "$(awk '{ print $2 }' "$T/$kt.signer" | sort -u | tr '\n' ' ')"
	srv_stop "$ca"
}

ca="$T/ec"
srv_init "$ca"
check_home "$ca" ec-p256
ca="$T/rsa"
srv_init "$ca" --key-type rsa2048
check_home "$ca" rsa2048
# A home split between a key owner and the service user
# (signer_user.sh): the signer runs as the key owner, the same scans.
getent passwd ckk-keyowner >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin \
    ckk-keyowner >/dev/null 2>&1 || true	# maybe a parallel run
getent passwd ckk-keyowner >/dev/null 2>&1 || fail "cannot create ckk-keyowner"
ca="$T/split"
srv_init "$ca" --key-owner ckk-keyowner
check_home "$ca" ec-p256-split
