#!/usr/bin/env bash
# gen-ocsp-gets.sh ISSUER.pem CERTDIR OUT [PREFIX]
#
# Writes loadgen's --get-file for OCSP GET requests (RFC 6960 appendix A /
# RFC 5019): for each certificate CERTDIR/*.pem (one certificate a file,
# issued by ISSUER.pem), one line PREFIX/<url-encoded base64 of the DER
# OCSPRequest> (SHA-1 CertID, no nonce, as RFC 5019 clients send). PREFIX
# defaults to /ocsp; lines are absolute paths, so loadgen's --url only
# chooses the server:
#   loadgen --url http://127.0.0.1:PORT/ --get-file OUT --expect ...
# $(nproc) openssl processes at a time. With DER_DIR=DIR the DER requests
# are kept there too (DIR/<name>.der), for POST: loadgen --body-dir DIR
# --content-type application/ocsp-request.
set -euo pipefail
[ $# -ge 3 ] && [ $# -le 4 ] || { echo "usage: $0 ISSUER.pem CERTDIR OUT [PREFIX]" >&2; exit 2; }
issuer=$1 dir=$2 out=$3 prefix=${4-/ocsp}
prefix=${prefix%/}
[ -f "$issuer" ] || { echo "$0: no issuer $issuer" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GO_ISSUER=$issuer GO_TMP=$tmp GO_PREFIX=$prefix GO_DER=${DER_DIR:-}
[ -n "$GO_DER" ] && mkdir -p "$GO_DER"
find "$dir" -maxdepth 1 -name '*.pem' -print0 | sort -z |
xargs -0 -r -P "$(nproc)" -n 25 bash -c '
set -e
for cert; do
	name=$(basename "$cert" .pem)
	openssl ocsp -issuer "$GO_ISSUER" -cert "$cert" -no_nonce -reqout "$GO_TMP/$name.der" >/dev/null 2>&1
	b64=$(openssl base64 -A -in "$GO_TMP/$name.der")
	b64=${b64//+/%2B}; b64=${b64//\//%2F}; b64=${b64//=/%3D}
	printf "%s/%s\n" "$GO_PREFIX" "$b64" >"$GO_TMP/$name.line"
	if [ -n "$GO_DER" ]; then mv "$GO_TMP/$name.der" "$GO_DER/$name.der"; else rm -f "$GO_TMP/$name.der"; fi
done' _
find "$tmp" -name '*.line' -print0 | sort -z | xargs -0 -r cat >"$out"
n=$(wc -l <"$out")
[ "$n" -gt 0 ] || { echo "$0: no certificates in $dir" >&2; exit 1; }
echo "$n OCSP GET paths in $out"
