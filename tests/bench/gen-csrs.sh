#!/usr/bin/env bash
# gen-csrs.sh N DIR [ec-p256|rsa2048]
#
# Writes N distinct CSRs to DIR/csr-000001.pem ... (PEM), subject
# CN=host-<i>.bench.example.com with the same name as a DNS subjectAltName,
# $(nproc) openssl processes at a time.
#
# Keys: EC P-256 (default): a fresh key for every CSR. RSA 2048: making a
# key takes ~0.3 s here, so a pool of RSA_KEYS keys (default: 64, at most N)
# is made and the CSRs take them in turn; RSA_KEYS=N gives every CSR its own.
# The private keys are thrown away unless KEEP_KEYS=1 (DIR/key-*.pem).
# Existing csr-*/key-* files in DIR are replaced.
set -euo pipefail

usage() { echo "usage: $0 N DIR [ec-p256|rsa2048]" >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
n=$1 dir=$2 kt=${3:-ec-p256}
[[ $n =~ ^[1-9][0-9]*$ ]] || usage
case $kt in
ec-p256|ecdsap256|p256) kt=ec-p256 ;;
rsa2048|rsa-2048|rsa) kt=rsa2048 ;;
*) usage ;;
esac
command -v openssl >/dev/null || { echo "$0: openssl is needed" >&2; exit 1; }
mkdir -p "$dir"
rm -f "$dir"/csr-*.pem "$dir"/key-*.pem
jobs=$(nproc)
keep=${KEEP_KEYS:-0}
pool=$(mktemp -d)
trap 'rm -rf "$pool"' EXIT
export GEN_DIR=$dir GEN_KEEP=$keep GEN_POOL=$pool GEN_KT=$kt

nkeys=0
if [ "$kt" = rsa2048 ]; then
	nkeys=${RSA_KEYS:-64}
	[[ $nkeys =~ ^[1-9][0-9]*$ ]] || { echo "$0: bad RSA_KEYS" >&2; exit 2; }
	[ "$nkeys" -gt "$n" ] && nkeys=$n
	seq 1 "$nkeys" | xargs -P "$jobs" -n 4 bash -c '
	for k; do
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
			-out "$GEN_POOL/rsa-$k.pem" 2>/dev/null
	done' _
fi
export GEN_NKEYS=$nkeys

# Batches of 25 indexes per shell.
seq -f '%06g' 1 "$n" | xargs -P "$jobs" -n 25 bash -c '
set -e
for i; do
	num=$((10#$i))
	name="host-$num.bench.example.com"
	out="$GEN_DIR/csr-$i.pem"
	if [ "$GEN_KT" = ec-p256 ]; then
		key=/dev/null
		[ "$GEN_KEEP" = 1 ] && key="$GEN_DIR/key-$i.pem"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$key" -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
			-out "$out" 2>/dev/null
	else
		key="$GEN_POOL/rsa-$(( (num - 1) % GEN_NKEYS + 1 )).pem"
		openssl req -new -key "$key" -subj "/CN=$name" \
			-addext "subjectAltName=DNS:$name" -out "$out" 2>/dev/null
		if [ "$GEN_KEEP" = 1 ]; then cp "$key" "$GEN_DIR/key-$i.pem"; fi
	fi
done' _
got=$(find "$dir" -maxdepth 1 -name 'csr-*.pem' | wc -l)
[ "$got" -eq "$n" ] || { echo "$0: made $got CSRs of $n" >&2; exit 1; }
if [ "$kt" = rsa2048 ]; then
	echo "$n $kt CSRs ($nkeys distinct keys) in $dir"
else
	echo "$n $kt CSRs in $dir"
fi
