#!/usr/bin/env bash
# dump.sh - time the store's backup dump and load on a large CA.
#
#   tests/bench/dump.sh [-n CERTS] [-d DER_BYTES] [-k]
#
# Builds libcertkeep (release, in BUILD_DIR, default build-bench at the top
# of the tree) and tests/bench/bin/dump, then runs it on a new store in a
# scratch directory under $TMPDIR (default 1,000,000 certificates of 700
# DER bytes: at most about 4.5 GB of disk at a time for the store, its copy,
# the dump and the loaded store, and a few minutes to fill). See dump.c for what is timed.
# With -k the files stay (the path is printed); bin/dump -r DIR then times
# them again without refilling.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-"$top/build-bench"}
cc=${CC:-cc}

# Warnings are the normal builds' business; here only speed matters.
if [ ! -f "$build/build.ninja" ]; then
	(cd "$top" && meson setup "$build" --buildtype=release \
	    -Dwerror=false >/dev/null)
fi
log=$(ninja -C "$build" libcertkeep.a 2>&1) || { echo "$log" >&2; exit 1; }
mkdir -p "$here/bin"
# shellcheck disable=SC2046
"$cc" -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$top/src" \
	-o "$here/bin/dump" "$here/dump.c" "$build/libcertkeep.a" \
	$(pkg-config --libs sqlite3 jansson openssl inih libmicrohttpd gnutls) \
	-lpthread

work=$(mktemp -d "${TMPDIR:-/tmp}/certkeep-dump.XXXXXX")
case " $* " in
*" -k "*) echo "dump.sh: files kept in $work" ;;
*) trap 'rm -rf "$work"' EXIT ;;
esac
"$here/bin/dump" "$@" "$work"
