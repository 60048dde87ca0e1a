#!/usr/bin/env bash
# run.sh - fuzz every target (or the ones named) for a while.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     (default: every target)
#
# Configures BUILD_DIR (default build-fuzz at the top of the tree) with
# clang, -Dfuzzing=true and ASan+UBSan if it is not configured yet, builds
# the libFuzzer binaries, then runs each fuzz_<target> for SECONDS (default
# 60) on a fresh copy of corpus/<target>/, so the seed corpus in the tree
# is never changed. A crash, leak, UB report or timeout fails the run; the
# input that caused it is written to tests/fuzz/crashes/ (ignored by git):
# replay it with replay_<target>, fix the bug, and add the file to
# corpus/<target>/ so the normal test run keeps replaying it.
#
# Environment: BUILD_DIR, CC (default clang), FUZZ_KEEP=1 keeps the working
# copies of the corpora (their path is printed), FUZZ_ARGS adds libFuzzer
# flags (e.g. FUZZ_ARGS=-jobs=2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-"$top/build-fuzz"}
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	# Every target: each fuzz_<name>.c with a corpus/<name>/.
	for f in "$here"/fuzz_*.c; do
		t=${f##*/fuzz_}
		t=${t%.c}
		[ -d "$here/corpus/$t" ] && targets+=("$t")
	done
fi

case $secs in
'' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
	echo "run.sh: configuring $build"
	(cd "$top" && CC=${CC:-clang} meson setup "$build" -Dfuzzing=true \
	    -Db_sanitize=address,undefined -Db_lundef=false)
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz_}" >/dev/null || {
	echo "run.sh: build failed; is $build configured with clang and" \
	    "-Dfuzzing=true? (meson configure $build -Dfuzzing=true)" >&2
	exit 1
}

# Sanitizer reports end the run: UBSan by default only prints and goes on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

work=$(mktemp -d "${TMPDIR:-/tmp}/certkeep-fuzz.XXXXXX")
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
	echo "run.sh: working corpora kept in $work"
else
	trap 'rm -rf "$work"' EXIT
fi
crashes="$here/crashes"
mkdir -p "$crashes"

max_len() {
	case $1 in
	csr) echo 8192 ;;
	config) echo 4096 ;;
	names) echo 1100 ;;
	tar) echo 12288 ;;
	envelope) echo 8192 ;;
	share) echo 8192 ;;	# an RSA-4096 key's share file
	manifest) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

failed=0
summary=()
for t in "${targets[@]}"; do
	bin="$build/tests/fuzz/fuzz_$t"
	if [ ! -x "$bin" ] || [ ! -d "$here/corpus/$t" ]; then
		echo "run.sh: unknown target '$t'" >&2
		exit 2
	fi
	mkdir -p "$work/$t"
	cp -R "$here/corpus/$t/." "$work/$t/"
	dict=()
	[ -f "$here/$t.dict" ] && dict=("-dict=$here/$t.dict")
	log="$work/$t.log"
	echo "=== fuzz_$t: ${secs}s on $(ls "$work/$t" | wc -l) seeds"
	rc=0
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -max_len="$(max_len "$t")" -print_final_stats=1 \
	    -artifact_prefix="$crashes/$t-" "${dict[@]+"${dict[@]}"}" \
	    ${FUZZ_ARGS:-} "$work/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
	if [ "$rc" -ne 0 ]; then
		tail -n 60 "$log"
		summary+=("fuzz_$t: FAILED (exit $rc) after ${execs:-?} runs; see $crashes")
		failed=1
	else
		summary+=("fuzz_$t: ok, ${secs}s, ${execs:-?} runs, $cov")
	fi
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
