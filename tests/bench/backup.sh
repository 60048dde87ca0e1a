#!/usr/bin/env bash
# backup.sh - certkeep backup on a large CA, against the store's own copy.
#
#   tests/bench/backup.sh                 # SIZES="100000 1000000"
#   SIZES=1000000 tests/bench/backup.sh   # one size
#
# For each size N: a CA (EC P-256) holding N certificates issued through
# certkeepd and loadgen, N/20 of them revoked (50,000 at 1,000,000), and
# one CRL. Then, on a copy of that CA with certkeepd running, each under
# /usr/bin/time (wall seconds, CPU seconds, peak RSS) and peakmem.py (peak
# anonymous memory: RSS also counts the store's pages SQLite may map):
#   reference  sqlite3 store.db ".backup copy.db"; tar -C HOME -cf - . |
#              zstd -T0 -3 (the whole home)
#   certkeep   full backup to two destinations, then to one; INCR (1,000)
#              more issuances, then an incremental; backup verify of
#              full + incremental; restore of both into a new home;
#              backup drill (restore, check every signature, start a
#              throwaway certkeepd, issue a test certificate)
# and prints a table with sizes, ratios and the targets:
#   - full backup within 2x the time of the .backup copy;
#   - an incremental of 1,000 issuances under 1 s, whatever N;
#   - peak memory independent of N (judged across SIZES: at most 1.5x,
#     or 16 MiB more, from the smallest to the largest N).
#
# The fixture's revocations are NOT made through the API: there each one
# asks certkeepd for a new CRL of all revoked so far (quadratic work). They are
# written in one SQL transaction on the stopped server's store, as
# 'certkeep revoke' writes them (revoke-sql.py: certs row, audit entry in
# the hash chain, audit head, one change_seq value each), checked with
# 'certkeep audit verify', and one CRL is then published with 'certkeep
# crl'.
#
# Fixtures take minutes (~1,000-3,500 issuances/s), so they are kept in
# FIXTURE_DIR (default $TMPDIR/certkeep-bench-backup: about 1.3 GB at
# 1,000,000) and reused; each run works on a copy. Delete a fixture
# directory to rebuild it.
#
# Environment: SIZES, FIXTURE_DIR, INCR (1000), NCSR (2000: the CSR pool,
# reused round robin), CONCURRENCY (64), KEEP=1 (keep the work directory),
# PERF=1 (perf record the full and incremental backups and the drill,
# print the hottest functions), CERTKEEP_BUILD (default: build at the top
# of the tree). Run as root (installs time, sqlite3, zstd, python3 with
# apt-get if missing; the CA home belongs to the 'certkeep' user, made if
# missing), or as the user who owns the homes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${CERTKEEP_BUILD:-$top/build}
ck=$build/certkeep
if [ ! -x "$ck" ] || [ ! -x "$build/certkeepd" ]; then
	echo "$0: build certkeep first (or set CERTKEEP_BUILD=DIR)" >&2
	exit 1
fi
sizes=${SIZES:-100000 1000000}
fixdir=${FIXTURE_DIR:-${TMPDIR:-/tmp}/certkeep-bench-backup}
incr=${INCR:-1000}
ncsr=${NCSR:-2000}
conc=${CONCURRENCY:-64}
for v in $sizes $incr $ncsr $conc; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || { echo "$0: not a count: $v" >&2; exit 2; }
done

need=()
[ -x /usr/bin/time ] || need+=(time)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v zstd >/dev/null || need+=(zstd)
command -v python3 >/dev/null || need+=(python3)
[ "${PERF:-0}" = 1 ] && ! command -v perf >/dev/null && need+=(linux-perf)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "$0: install ${need[*]}" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
[ -x "$here/bin/loadgen" ] || "$here/build.sh" >/dev/null

# Root runs everything as the CLI does: the homes belong to the service
# user, and files the CLI writes (sets, restored homes) must be reachable
# by it.
user_opt=() as_owner=()
if [ "$(id -u)" = 0 ]; then
	id certkeep >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /usr/sbin/nologin certkeep
	user_opt=(--user certkeep)
	as_owner=(runuser -u certkeep --)
fi
own() { [ "$(id -u)" != 0 ] || chown -R certkeep: "$@"; }

mkdir -p "$fixdir"
chmod 711 "$fixdir"
work=$(mktemp -d "${TMPDIR:-/tmp}/certkeep-bench-backup-run.XXXXXX")
chmod 711 "$work"
own "$work"
running=()
cleanup() {
	local h
	for h in ${running[@]+"${running[@]}"}; do
		"$ck" service stop --home "$h" >/dev/null 2>&1 || true
	done
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ckp HOME PASSFILE ARGS...: certkeep with the CA passphrase on fd 3.
ckp() { local p=$1; shift; "$ck" "$@" --passphrase-fd 3 3<"$p"; }

start_server() { # HOME PASSFILE
	ckp "$2" service start --home "$1" >/dev/null
	running+=("$1")
}
stop_server() { # HOME
	"$ck" service stop --home "$1" >/dev/null
	local keep=() h
	for h in "${running[@]}"; do [ "$h" = "$1" ] || keep+=("$h"); done
	running=(${keep[@]+"${keep[@]}"})
}

# issue HOME TOKENFILE COUNT: COUNT certificates through the REST API
# (loadgen, requests mode, HOME's root.pem beside it as the server's CA),
# all must succeed; prints the rate.
issue() {
	local api line
	api=$(sed -n 's/^api //p' "$1/certkeepd.urls")
	line=$("$here/bin/loadgen" --url "$api/api/v1/certificates" \
	    --cacert "$1/../root.pem" \
	    --header "Authorization: Bearer $(cat "$2")" \
	    --json-template '{"profile":"tls-server","csr":"%CSR%"}' \
	    --csr-dir "$fixdir/csrs" --expect 'BEGIN CERTIFICATE' \
	    --concurrency "$conc" --requests "$3" --json) ||
		{ echo "$0: issuance failed: $line" >&2; return 1; }
	awk -v n="$3" 'match($0, /"rps":[0-9.]+/) {
	    printf "%d certificates at %.0f/s\n", n, substr($0, RSTART + 6, RLENGTH - 6) }' <<<"$line"
}

csr_pool() {
	local have
	mkdir -p "$fixdir/csrs"
	have=$(find "$fixdir/csrs" -maxdepth 1 -name 'csr-*.pem' | wc -l)
	[ "$have" -ge "$ncsr" ] && return 0
	echo "== $ncsr CSRs (EC P-256) for the pool"
	"$here/gen-csrs.sh" "$ncsr" "$fixdir/csrs" ec-p256 >/dev/null
	chmod 755 "$fixdir/csrs"
	chmod 644 "$fixdir/csrs"/*.pem
}

# fixture N: FIXTURE_DIR/nN/{ca,pass,token,info}, built once.
fixture() {
	local n=$1 d=$fixdir/n$1 tmp nrev t0 sql who r
	[ -f "$d/info" ] && return 0
	csr_pool
	tmp=$fixdir/n$n.tmp
	rm -rf "$tmp"
	mkdir -m 711 "$tmp"
	own "$tmp"
	umask 077
	openssl rand -base64 24 >"$tmp/pass"
	umask 022
	echo "== fixture: $n certificates (built once, kept in $d)"
	ckp "$tmp/pass" init --home "$tmp/ca" --root --subject "CN=certkeep backup bench CA" \
	    --key-type ec-p256 --domain bench.example.com ${user_opt[@]+"${user_opt[@]}"} >/dev/null
	sed -i -e 's/^api_listen = .*/api_listen = 127.0.0.1:0/' \
	    -e 's/^http_listen = .*/http_listen = 127.0.0.1:0/' \
	    -e 's/^max_per_ip = .*/max_per_ip = 0/' "$tmp/ca/certkeep.conf"
	cp "$tmp/ca/ca.pem" "$tmp/root.pem"
	chmod 644 "$tmp/root.pem"
	start_server "$tmp/ca" "$tmp/pass"
	"$ck" token create --home "$tmp/ca" --name bench --profiles tls-server \
	    2>/dev/null >"$tmp/token"
	t0=$SECONDS
	# A request lost to a timeout on a loaded machine is made up for.
	local have=0
	for _ in 1 2 3; do
		r=$(issue "$tmp/ca" "$tmp/token" $((n - have))) || true
		have=$(sqlite3 "$tmp/ca/store.db" "SELECT count(*) FROM certs WHERE
		    profile = 'tls-server' AND status = 'issued'")
		echo "issuance: ${r:-errors} ($((SECONDS - t0)) s, $have in the store)"
		[ "$have" -lt "$n" ] || break
	done
	[ "$have" -eq "$n" ] || { echo "$0: $have certificates, $n wanted" >&2; exit 1; }
	stop_server "$tmp/ca"

	nrev=$((n / 20))
	who=$(id -un)
	echo "revocations: $nrev written directly into the stopped server's store" \
	    "(revoke-sql.py + sqlite3, as 'certkeep revoke' by $who writes them), not through the API"
	sql=$tmp/revoke.sql
	python3 "$here/revoke-sql.py" "$tmp/ca/store.db" "$nrev" "$who" >"$sql"
	${as_owner[@]+"${as_owner[@]}"} sqlite3 -bail "$tmp/ca/store.db" <"$sql"
	rm -f "$sql"
	local got
	got=$(sqlite3 "$tmp/ca/store.db" "SELECT count(*) FROM certs WHERE status = 'revoked'")
	[ "$got" = "$nrev" ] || { echo "$0: $got revoked, $nrev wanted" >&2; exit 1; }
	"$ck" audit verify --home "$tmp/ca"
	ckp "$tmp/pass" crl --home "$tmp/ca" >/dev/null
	{
		echo "certificates $n"
		echo "revoked $nrev (written with revoke-sql.py + sqlite3, not through the API)"
		echo "built $(date -u +%FT%TZ) in $((SECONDS - t0)) s"
	} >"$tmp/info"
	# A home holds no absolute path: it can move.
	mv "$tmp" "$d"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

# measure KEY CMD...: run CMD under /usr/bin/time, keep wall and CPU
# seconds and peak RSS, and (peakmem.py) the peak of its anonymous memory:
# RSS also counts the store's pages that SQLite maps, which are page cache.
# CMD gets the CA passphrase (file $passfile) on fd 3; its command line
# is printed with the figures.
declare -A wall cpu rss anon size
passfile=/dev/null
measure() {
	local key=$1 out=$work/time.out w u s m a
	shift
	if ! python3 "$here/peakmem.py" "$work/anon.out" \
	    /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >"$work/cmd.out" \
	    2>"$work/cmd.err" 3<"$passfile"; then
		echo "$0: failed: $*" >&2
		cat "$work/cmd.out" "$work/cmd.err" >&2
		exit 1
	fi
	read -r w u s m < <(tail -1 "$out")
	read -r a <"$work/anon.out"
	wall[$key]=$w
	cpu[$key]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
	rss[$key]=$m
	anon[$key]=$a
	printf '  %-16s %8.2f s wall %8.2f s cpu %8.1f MiB peak RSS %7.1f MiB anon  %s\n' \
	    "$key" "$w" "${cpu[$key]}" "$(mib $((m * 1024)))" "$(mib $((a * 1024)))" "${*//$work/\$W}"
}
# profile KEY CMD...: like measure, under perf (PERF=1), then the top
# functions by inclusive and by self time.
profile() {
	local key=$1
	shift
	if [ "${PERF:-0}" = 1 ]; then
		measure "$key" perf record -q -F 499 --call-graph dwarf,16384 -e cpu-clock \
		    -o "$work/$key.perf" -- "$@"
		echo "  -- perf (the figures above are under perf): hottest functions, inclusive, then by self time"
		# (head closes the pipe early: not a failure)
		{ perf report -i "$work/$key.perf" --children --sort symbol -g none 2>/dev/null |
		    grep -E '^ +[0-9]' | grep -v ' 0x' | head -25; } || true
		{ perf report -i "$work/$key.perf" --no-children --sort dso,symbol -g none 2>/dev/null |
		    grep -E '^ +[0-9]' | head -12; } || true
	else
		measure "$key" "$@"
	fi
}
bytes() { stat -c %s "$1"; }
store_bytes() { # HOME: store.db plus its WAL
	local t=0 f
	for f in "$1/store.db" "$1/store.db-wal"; do [ -f "$f" ] && t=$((t + $(bytes "$f"))); done
	echo "$t"
}
setpath() { grep -o '/[^ ]*\.ckb' "$work/cmd.out" | head -1; }

run() {
	local n=$1 f=$fixdir/n$1 w=$work/n$1 H ref set_full set_incr
	mkdir -m 711 "$w"
	own "$w"
	H=$w/ca
	echo "== $n certificates: copy of the fixture, certkeepd started"
	cp -a "$f/ca" "$H"
	cp "$f/root.pem" "$w/root.pem"
	cp "$f/root.pem" "$w/chain.pem"	# a root CA: its chain is itself
	start_server "$H" "$f/pass"
	passfile=$f/pass
	size[store,$n]=$(store_bytes "$H")
	size[certs,$n]=$(sqlite3 "$H/store.db" "SELECT count(*) FROM certs")
	size[revoked,$n]=$(sqlite3 "$H/store.db" "SELECT count(*) FROM certs WHERE status = 'revoked'")

	# Recipient of the sets: an EC P-256 certificate of its own.
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$w/rcpt.key" -subj "/CN=backup bench recipient" -days 7 \
	    -out "$w/rcpt.pem" 2>/dev/null
	mkdir -p "$w/ref" "$w/two-a" "$w/two-b" "$w/one"
	own "$w/rcpt.key" "$w/rcpt.pem" "$w/ref" "$w/two-a" "$w/two-b" "$w/one"

	ref=$w/ref
	measure ".backup,$n" sqlite3 "$H/store.db" ".backup $ref/copy.db"
	size[.backup,$n]=$(bytes "$ref/copy.db")
	rm -f "$ref/copy.db"
	# shellcheck disable=SC2016 # expanded by the inner shell
	measure "tar|zstd,$n" bash -c 'tar -C "$1" --warning=no-file-changed -cf - . | zstd -q -T0 -3 >"$2"' \
	    _ "$H" "$ref/home.tar.zst"
	size[tar|zstd,$n]=$(bytes "$ref/home.tar.zst")
	rm -f "$ref/home.tar.zst"

	profile "full2,$n" "$ck" backup --home "$H" --to "$w/two-a" --to "$w/two-b" \
	    --recipient "$w/rcpt.pem" --passphrase-fd 3 --quiet
	size[full2,$n]=$(bytes "$(setpath)")
	profile "full,$n" "$ck" backup --home "$H" --to "$w/one" \
	    --recipient "$w/rcpt.pem" --passphrase-fd 3 --quiet
	set_full=$(setpath)
	size[full,$n]=$(bytes "$set_full")

	echo "issuance before the incremental: $(issue "$H" "$f/token" "$incr")"
	profile "incr,$n" "$ck" backup --home "$H" --to "$w/one" \
	    --recipient "$w/rcpt.pem" --incremental --passphrase-fd 3 --quiet
	set_incr=$(setpath)
	size[incr,$n]=$(bytes "$set_incr")
	grep -q '^incremental backup' "$work/cmd.out" ||
		{ echo "$0: not an incremental: $(cat "$work/cmd.out")" >&2; exit 1; }

	measure "verify,$n" "$ck" backup verify "$set_full" "$set_incr" \
	    --recipient-key "$w/rcpt.key" --home "$H"
	measure "restore,$n" "$ck" restore --home "$w/restored" "$set_full" "$set_incr" \
	    --ca "$w/chain.pem" --recipient-key "$w/rcpt.key" ${user_opt[@]+"${user_opt[@]}"} --quiet
	size[restore,$n]=$(store_bytes "$w/restored")
	rm -rf "$w/restored"
	profile "drill,$n" "$ck" backup drill --home "$H" --recipient-key "$w/rcpt.key" \
	    --passphrase-fd 3
	grep -q 'drill passed' "$work/cmd.out" ||
		{ echo "$0: drill: $(cat "$work/cmd.out")" >&2; exit 1; }
	stop_server "$H"
	[ -n "${KEEP:-}" ] || rm -rf "$w"
}


verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { print (v != "-" && v <= lim ? "met" : "MISSED") }'; }
# grows SMALL_KIB LARGE_KIB: the memory target, at most 1.5x or 16 MiB
# more (a sampled peak of a short run is noise at a few MiB).
grows() { awk -v a="$1" -v b="$2" 'BEGIN { print (b <= 1.5 * a || b - a <= 16384 ? "met" : "MISSED") }'; }

report() {
	local n=$1 k label t
	echo
	echo "== $n certificates (${size[certs,$n]} rows, ${size[revoked,$n]} revoked via SQL, see above)," \
	    "store $(mib "${size[store,$n]}") MiB"
	printf '%-40s %8s %8s %10s %10s %10s\n' operation 'wall s' 'cpu s' 'RSS MiB' 'anon MiB' 'size MiB'
	for k in .backup 'tar|zstd' full2 full incr verify restore drill; do
		case $k in
		.backup) label='sqlite3 .backup (reference)' ;;
		'tar|zstd') label='tar | zstd -3 of the home (reference)' ;;
		full2) label='full backup, 2 destinations' ;;
		full) label='full backup, 1 destination' ;;
		incr) label="incremental after $incr issuances" ;;
		verify) label='verify full + incremental' ;;
		restore) label='restore full + incremental' ;;
		drill) label='drill (restore, check, issue)' ;;
		esac
		printf '%-40s %8s %8s %10s %10s %10s\n' "$label" "${wall[$k,$n]}" "${cpu[$k,$n]}" \
		    "$(mib $((${rss[$k,$n]} * 1024)))" "$(mib $((${anon[$k,$n]} * 1024)))" \
		    "$(if [ -n "${size[$k,$n]:-}" ]; then mib "${size[$k,$n]}"; fi)"
	done
	echo "(sizes: the .backup copy, the home's tar.zst, one copy of each set, the restored store)"
	echo "ratios: full/.backup wall $(ratio "${wall[full,$n]}" "${wall[.backup,$n]}")," \
	    "cpu $(ratio "${cpu[full,$n]}" "${cpu[.backup,$n]}");" \
	    "full/tar|zstd wall $(ratio "${wall[full,$n]}" "${wall[tar|zstd,$n]}")," \
	    "cpu $(ratio "${cpu[full,$n]}" "${cpu[tar|zstd,$n]}");" \
	    "2 destinations/1 wall $(ratio "${wall[full2,$n]}" "${wall[full,$n]}")"
	echo "        set/store size $(ratio "${size[full,$n]}" "${size[store,$n]}")," \
	    "set/tar.zst $(ratio "${size[full,$n]}" "${size[tar|zstd,$n]}")," \
	    "incremental/full size $(ratio "${size[incr,$n]}" "${size[full,$n]}")," \
	    "restore/.backup wall $(ratio "${wall[restore,$n]}" "${wall[.backup,$n]}")"
	t=$(ratio "${wall[full,$n]}" "${wall[.backup,$n]}")
	# The issue states the 2x target for a CA of 1,000,000 certificates;
	# smaller CAs show the fixed costs (key unlock, signing, syncs).
	if [ "$n" -ge 1000000 ]; then
		echo "target full backup <= 2x .backup (wall): $t x -> $(verdict "$t" 2)"
	else
		echo "full backup / .backup (wall): $t x (the 2x target is stated at 1,000,000)"
	fi
	echo "target incremental of $incr issuances < 1 s: ${wall[incr,$n]} s ->" \
	    "$(verdict "${wall[incr,$n]}" 0.999)"
}

# across SMALL LARGE: how peak memory and time grow with the CA.
across() {
	local first=$1 last=$2 k r ra
	echo
	echo "== independent of CA size: $first -> $last certificates ($(ratio "$last" "$first") x);" \
	    "memory target: peak at most 1.5x (or 16 MiB more)"
	printf '%-9s %9s %9s %6s %7s | %9s %9s %6s %7s | %8s %8s %6s\n' operation \
	    "RSS@small" "RSS@large" ratio target "anon@sm" "anon@lg" ratio target "wall@sm" "wall@lg" ratio
	for k in full2 full incr verify restore drill .backup 'tar|zstd'; do
		r=$(ratio "${rss[$k,$last]}" "${rss[$k,$first]}")
		ra=$(ratio "${anon[$k,$last]}" "${anon[$k,$first]}")
		printf '%-9s %9s %9s %6s %7s | %9s %9s %6s %7s | %8s %8s %6s\n' "$k" \
		    "$(mib $((${rss[$k,$first]} * 1024)))" "$(mib $((${rss[$k,$last]} * 1024)))" "$r" \
		    "$(case $k in .backup|'tar|zstd') echo ref ;; *) grows "${rss[$k,$first]}" "${rss[$k,$last]}" ;; esac)" \
		    "$(mib $((${anon[$k,$first]} * 1024)))" "$(mib $((${anon[$k,$last]} * 1024)))" "$ra" \
		    "$(case $k in .backup|'tar|zstd') echo ref ;; *) grows "${anon[$k,$first]}" "${anon[$k,$last]}" ;; esac)" \
		    "${wall[$k,$first]}" "${wall[$k,$last]}" "$(ratio "${wall[$k,$last]}" "${wall[$k,$first]}")"
	done
	echo "(RSS counts the store's pages SQLite maps (mmap) as well; anon is memory of the process's own)"
}

echo "certkeep backup benchmark: sizes $sizes, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "W=$work (commands below name it \$W)"
echo "certkeep: $("$ck" --version), $ck" \
    "(tree $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?'))"
for n in $sizes; do fixture "$n"; done
for n in $sizes; do run "$n"; done
for n in $sizes; do report "$n"; done
read -ra sz <<<"$sizes"
[ ${#sz[@]} -gt 1 ] && across "${sz[0]}" "${sz[-1]}"
echo
echo "fixture revocations were written with revoke-sql.py + sqlite3 (as 'certkeep revoke' writes them), not through the API"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
