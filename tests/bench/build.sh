#!/usr/bin/env bash
# Build the benchmark load generator: tests/bench/bin/loadgen.
# Not part of the meson build. Needs a C11 compiler and OpenSSL 3 headers
# (Debian: libssl-dev); installs them with apt-get when missing and root.
#   CC=clang tests/bench/build.sh      another compiler
#   CFLAGS='-O1 -g -fsanitize=address,undefined' tests/bench/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
if ! printf '#include <openssl/ssl.h>\n' | "$cc" -E -x c - >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q libssl-dev >/dev/null
	else
		echo "build.sh: OpenSSL headers missing (apt-get install libssl-dev)" >&2
		exit 1
	fi
fi
mkdir -p "$here/bin"
# shellcheck disable=SC2086
"$cc" -std=c11 ${CFLAGS:--O2} -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-o "$here/bin/loadgen" "$here/loadgen.c" -lssl -lcrypto -lpthread
echo "built tests/bench/bin/loadgen"
