#!/usr/bin/env bash
# archive.sh - memory and speed of the backup set container
# (src/backup/archive) on a large set: the reader must stream, so its peak
# resident memory stays far below the size of the set.
#
#   tests/bench/archive.sh [MB]        (default 200: a set of about MB MB)
#
# Uses tests/integration/archive_driver from BUILD_DIR (default build at
# the top of the tree; configured and built with meson/ninja if missing).
# Writes a set of two parts, MB MB of random bytes (incompressible, so
# the set is that large) and MB MB of JSON lines (highly compressible),
# to an RSA 2048 and an EC P-256 recipient, signed by an EC P-256 CA; then
# reads it back with each recipient key and prints, for writing and
# reading, the wall time, throughput and peak RSS, next to what
# 'openssl cms -decrypt' (which holds the whole set) needs for the same
# file. Fails if the reader's peak RSS is not below a quarter of the set.
# Scratch files go to a private directory under $TMPDIR, removed at exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-"$top/build"}
mb=${1:-200}
case $mb in '' | *[!0-9]*) echo "usage: $0 [MB]" >&2; exit 2 ;; esac

if [ ! -f "$build/build.ninja" ]; then
	(cd "$top" && meson setup "$build" >/dev/null)
fi
ninja -C "$build" tests/integration/archive_driver >/dev/null
drv="$build/tests/integration/archive_driver"
[ -x /usr/bin/time ] || { echo "archive.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

w=$(mktemp -d "${TMPDIR:-/tmp}/ck-bench-archive.XXXXXXXX")
chmod 700 "$w"
trap 'rm -rf "$w"' EXIT
cd "$w"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=Bench CA" -days 2 -out ca.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
openssl req -x509 -new -key rsa.key -subj "/CN=Bench RSA" -days 2 -out rsa.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key 2>/dev/null
openssl req -x509 -new -key ec.key -subj "/CN=Bench EC" -days 2 -out ec.pem 2>/dev/null

head -c "${mb}M" /dev/urandom >random.bin
# (yes dies of SIGPIPE when head has enough: not a failure)
{ yes '{"serial":"5a1f03","subject":"CN=www.example.com","status":"issued","not_after":1795000000}' ||
    true; } | head -c "${mb}M" >rows.jsonl

# measure LABEL CMD...: run CMD under /usr/bin/time; prints the wall time
# and peak RSS, leaves them in $secs and $rss_kb.
measure() {
	local label=$1
	shift
	/usr/bin/time -f '%e %M' -o time.out "$@" >cmd.out
	read -r secs rss_kb <time.out
	printf '%-34s %8.2f s %10d KiB peak RSS\n' "$label" "$secs" "$rss_kb"
}

echo "input: ${mb} MiB random + ${mb} MiB JSON lines"
measure "write (zstd -3, 2 recipients)" "$drv" write set.ckb --signer ca.key ca.pem \
    --recip rsa.pem --recip ec.pem --tmpdir "$w" \
    parts/store/random.bin.zst=random.bin parts/store/rows.jsonl.zst=rows.jsonl
size=$(stat -c %s set.ckb)
printf 'set: %d bytes (%.1f MiB); write %.1f MiB/s of input\n' "$size" \
    "$(echo "$size / 1048576" | bc -l)" "$(echo "2 * $mb / $secs" | bc -l)"

for k in ec rsa; do
	measure "read ($k key, parts discarded)" "$drv" read set.ckb \
	    --key "$k.key" --trust ca.pem
	grep -q '^part parts/store/rows.jsonl.zst ' cmd.out || {
		echo "archive.sh: the read did not list the parts" >&2
		exit 1
	}
	printf '  %.1f MiB/s of set; peak RSS %.1f%% of the set size\n' \
	    "$(echo "$size / 1048576 / $secs" | bc -l)" \
	    "$(echo "$rss_kb * 1024 * 100 / $size" | bc -l)"
	if [ $((rss_kb * 1024 * 4)) -ge "$size" ]; then
		echo "archive.sh: the reader's peak RSS ($rss_kb KiB) is not far below the set size" >&2
		exit 1
	fi
done

measure "openssl cms -decrypt (reference)" openssl cms -decrypt -inform DER \
    -in set.ckb -recip ec.pem -inkey ec.key -out set.tar
rm -f set.tar
