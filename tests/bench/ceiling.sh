#!/usr/bin/env bash
# ceiling.sh [CA_KEY [CSR_KEY]]      keys: ec-p256 (default), ec-p384, rsa2048,
#                                          rsa3072, rsa4096
#
# The crypto ceiling of certificate issuance on this machine: each
# certificate costs one signature with the CA key and one verification of
# the CSR's self-signature (CSR_KEY, the same type as CA_KEY by default).
#
#   1. `openssl speed -multi $(nproc) -seconds S` for both (all cores at
#      once, as a busy server would use them): sign/s, verify/s and
#        ceiling = 1 / (1/sign + 1/verify) certificates/s.
#      This is wall-clock throughput: on a machine that other work shares,
#      it is what is left over for us right now.
#   2. `openssl speed -seconds S` in one process, which divides by CPU time
#      (per-core rates, nearly blind to other load): the crypto CPU cost of
#      one certificate, 1000/sign + 1000/verify ms, and the ceiling of an
#      idle machine, nproc / that cost.
# A server cannot beat the ceiling (unless its crypto library is faster
# than OpenSSL's); throughput / ceiling says how much of the machine goes to
# everything but the two public-key operations (HTTP, TLS, JSON, X.509,
# hashing, the database, the audit log); crypto ms / the server's CPU ms per
# certificate says the same from CPU time, and stays meaningful on a busy
# machine. OCSP: one signature per fresh response, none for a cached one.
#
# Environment: SECONDS_PER_TEST (default 5), JSON=1 for one JSON line.
set -euo pipefail

speed_name() {
	case $1 in
	ec-p256|ecdsap256|p256) echo ecdsap256 ;;
	ec-p384|ecdsap384|p384) echo ecdsap384 ;;
	rsa2048|rsa-2048) echo rsa2048 ;;
	rsa3072|rsa-3072) echo rsa3072 ;;
	rsa4096|rsa-4096) echo rsa4096 ;;
	*) echo "usage: $0 [ec-p256|ec-p384|rsa2048|rsa3072|rsa4096 [same]]" >&2; exit 2 ;;
	esac
}
ca=$(speed_name "${1:-ec-p256}")
csr=$(speed_name "${2:-${1:-ec-p256}}")
secs=${SECONDS_PER_TEST:-5}
cores=$(nproc)
command -v openssl >/dev/null || { echo "$0: openssl is needed" >&2; exit 1; }

# measure ALG [multi] -> "sign/s verify/s" (summed over all cores with multi)
measure() {
	local out args=(-mr -seconds "$secs")
	[ "${2:-}" = multi ] && args+=(-multi "$cores")
	out=$(openssl speed "${args[@]}" "$1" 2>/dev/null) || true
	# The result (with -multi, the summary without "Got:"): +F2:i:bits:sign:verify
	# for RSA, +F4 for ECDSA
	printf '%s\n' "$out" | awk -F: '/^\+F[24]:/ { s = $4; v = $5 } END {
		if (s == "") exit 1; printf "%.1f %.1f\n", s, v }' ||
		{ echo "$0: openssl speed $1 gave no result" >&2; exit 1; }
}
both() { # both ALG-CA ALG-CSR [multi] -> "ca-sign/s csr-verify/s"
	local s v
	read -r s v <<<"$(measure "$1" "${3:-}")"
	[ "$2" = "$1" ] || read -r _ v <<<"$(measure "$2" "${3:-}")"
	echo "$s $v"
}

load_before=$(cut -d' ' -f1 /proc/loadavg)
read -r sign verify <<<"$(both "$ca" "$csr" multi)"
read -r sign1 verify1 <<<"$(both "$ca" "$csr")"
load_after=$(cut -d' ' -f1 /proc/loadavg)
ceiling=$(awk -v s="$sign" -v v="$verify" 'BEGIN { printf "%.0f", 1 / (1 / s + 1 / v) }')
cost_ms=$(awk -v s="$sign1" -v v="$verify1" 'BEGIN { printf "%.4f", 1000 / s + 1000 / v }')
idle=$(awk -v c="$cost_ms" -v n="$cores" 'BEGIN { printf "%.0f", n * 1000 / c }')
ocsp=$(awk -v s="$sign" 'BEGIN { printf "%.0f", s }')
ocsp_idle=$(awk -v s="$sign1" -v n="$cores" 'BEGIN { printf "%.0f", s * n }')
openssl_version=$(openssl version | cut -d' ' -f1-2)

if [ "${JSON:-0}" = 1 ]; then
	printf '{"ca_key":"%s","csr_key":"%s","cores":%s,"seconds":%s,"sign_per_s":%s,"verify_per_s":%s,"ceiling_certs_per_s":%s,"sign_per_core_cpu_s":%s,"verify_per_core_cpu_s":%s,"crypto_cpu_ms_per_cert":%s,"ceiling_idle_certs_per_s":%s,"ocsp_sign_per_s":%s,"ocsp_sign_idle_per_s":%s,"loadavg_before":%s,"loadavg_after":%s,"openssl":"%s"}\n' \
		"$ca" "$csr" "$cores" "$secs" "$sign" "$verify" "$ceiling" "$sign1" "$verify1" "$cost_ms" "$idle" \
		"$ocsp" "$ocsp_idle" "$load_before" "$load_after" "$openssl_version"
	exit 0
fi
cat <<END
crypto ceiling: $openssl_version, $cores cores, $secs s per test (load average $load_before before, $load_after after)
  all cores, wall clock (openssl speed -multi $cores):
    CA signature  $ca  sign/s    $sign
    CSR check     $csr  verify/s  $verify
    ceiling       1/(1/sign + 1/verify) = $ceiling certificates/s
  one core, CPU time (openssl speed):
    CA signature  $ca  sign/s    $sign1
    CSR check     $csr  verify/s  $verify1
    crypto CPU per certificate  $cost_ms ms  ->  idle-machine ceiling $idle certificates/s ($cores cores)
  OCSP: $ocsp fresh responses/s now, $ocsp_idle on an idle machine (one $ca signature each)
END
