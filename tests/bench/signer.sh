#!/usr/bin/env bash
# signer.sh - what the signer process costs: certkeepd.sh for EC P-256
# and RSA-2048, each with the key in-process (certkeepd --signer-inprocess),
# in the signer process (the default) and in a SoftHSM2 token behind the
# signer process, one after the other in one run; then, per key type and
# concurrency, certificates/s and the ratio to in-process signing.
# The modes take turns, ROUNDS times (default 2), so that a change in
# the machine's load falls on all of them; the table has every run and,
# per key type, mode and concurrency, the mean and its ratio to the
# in-process mean, with certkeepd's CPU per certificate (the service and
# the signer process together, and each apart). Environment: as
# certkeepd.sh (CONCURRENCY defaults to "8 64", CEILING to 0 here);
# KEYS="ec-p256 rsa2048",
# MODES="inprocess process softhsm", ROUNDS=2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONCURRENCY=${CONCURRENCY:-8 64} CEILING=${CEILING:-0}
out=$(mktemp "${TMPDIR:-/tmp}/certkeep-signer-bench.XXXXXX")
trap 'rm -f "$out"' EXIT
for kt in ${KEYS:-ec-p256 rsa2048}; do
for round in $(seq "${ROUNDS:-2}"); do
	for mode in ${MODES:-inprocess process softhsm}; do
		echo "=== $kt, signer $mode, round $round"
		SIGNER_MODE=$mode "$here/certkeepd.sh" "$kt" | tee -a /dev/stderr |
		    awk -v kt="$kt" -v mode="$mode" '
			/^== issuance/ { on = 1; next }
			/^== / { on = 0 }
			on && $1 ~ /^[0-9]+$/ { print kt, mode, $1, $2, $4, $7, $10, $11 }
			/^ocsp:/ { print kt, mode, "ocsp", $2, 0, 0, 0, 0 }' >>"$out"
	done
done
done
echo "== every run: certificates/s (OCSP: responses/s)"
printf '%-8s %-10s %6s %10s %9s %8s %8s %8s\n' key signer conc 'certs/s' 'p99 ms' 'cpu ms' 'svc ms' 'sgn ms'
awk '{ printf "%-8s %-10s %6s %10.1f %9.2f %8.3f %8.3f %8.3f\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$out"
echo "== means and the ratio to in-process signing"
printf '%-8s %-10s %6s %5s %10s %8s %8s %8s %8s\n' key signer conc runs 'certs/s' ratio 'cpu ms' 'svc ms' 'sgn ms'
awk '{ k = $1 SUBSEP $2 SUBSEP $3; if (!(k in n)) order[++m] = k
	n[k]++; s[k] += $4; cpu[k] += $6; svc[k] += $7; sgn[k] += $8 }
END {
	for (i = 1; i <= m; i++) {
		split(order[i], f, SUBSEP)
		b = f[1] SUBSEP "inprocess" SUBSEP f[3]
		mean = s[order[i]] / n[order[i]]
		base = (b in n) ? s[b] / n[b] : 0
		printf "%-8s %-10s %6s %5d %10.1f %8.3f %8.3f %8.3f %8.3f\n", f[1], f[2], f[3],
		    n[order[i]], mean, (base > 0 ? mean / base : 0),
		    cpu[order[i]] / n[order[i]], svc[order[i]] / n[order[i]],
		    sgn[order[i]] / n[order[i]]
	}
}' "$out"
