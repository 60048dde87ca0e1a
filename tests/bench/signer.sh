#!/usr/bin/env bash
# signer.sh - what the signer process costs: certkeepd.sh for EC P-256
# and RSA-2048, each with the key in-process ([signer] mode = inprocess),
# in the signer process (the default) and in a SoftHSM2 token behind the
# signer process, one after the other in one run; then, per key type and
# concurrency, certificates/s and the ratio to in-process signing.
# Environment: as certkeepd.sh (CONCURRENCY defaults to "8 64" here);
# KEYS="ec-p256 rsa2048", MODES="inprocess process softhsm".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONCURRENCY=${CONCURRENCY:-8 64}
out=$(mktemp "${TMPDIR:-/tmp}/certkeep-signer-bench.XXXXXX")
trap 'rm -f "$out"' EXIT
for kt in ${KEYS:-ec-p256 rsa2048}; do
	for mode in ${MODES:-inprocess process softhsm}; do
		echo "=== $kt, signer $mode"
		SIGNER_MODE=$mode "$here/certkeepd.sh" "$kt" | tee -a /dev/stderr |
		    awk -v kt="$kt" -v mode="$mode" '
			/^== issuance/ { on = 1; next }
			/^== / { on = 0 }
			on && $1 ~ /^[0-9]+$/ { print kt, mode, $1, $2, $4 }
			/^ocsp:/ { print kt, mode, "ocsp", $2, 0 }' >>"$out"
	done
done
echo "== certificates/s (OCSP: responses/s) and ratio to in-process"
printf '%-8s %-10s %6s %10s %9s %8s\n' key signer conc 'certs/s' 'p99 ms' ratio
awk '{ k = $1 " " $3; v[$1, $2, $3] = $4; p[$1, $2, $3] = $5; keys[k] = 1; rows[NR] = $0 }
END {
	for (i = 1; i <= NR; i++) {
		split(rows[i], f, " ")
		base = v[f[1], "inprocess", f[3]]
		printf "%-8s %-10s %6s %10.1f %9.2f %8.3f\n", f[1], f[2], f[3],
		    f[4], f[5], (base > 0 ? f[4] / base : 0)
	}
}' "$out"
