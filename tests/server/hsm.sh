#!/usr/bin/env bash
# hsm.sh - certkeepd on a CA key in a PKCS#11 token (SoftHSM2): issues over
# REST and answers OCSP with token signatures; when the token goes away
# (its directory moved, so the slot and key disappear) issuance is refused
# with 503, the pending row is marked failed, /health says "signer
# unavailable" and certkeep_signer_available is 0; when it comes back,
# issuance works again without a restart. Skipped (77) without SoftHSM2.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so; do
	[[ -r $m ]] && MODULE=$m && break
done
if [[ -z $MODULE ]] || ! command -v softhsm2-util >/dev/null; then
	echo "SKIP: SoftHSM2 is not installed"
	exit 77
fi

# A private SoftHSM2 under $T; the service user must own the tokens.
mkdir -m 700 "$T/tokens"
cat >"$T/softhsm2.conf" <<EOF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
EOF
chmod 644 "$T/softhsm2.conf"
export SOFTHSM2_CONF="$T/softhsm2.conf"
# The PIN comes like a passphrase: the same file, through fd 3.
expect_ok softhsm2-util --init-token --free --label certkeep-ca \
    --pin "$PW" --so-pin 97531864
[[ $(id -u) -eq 0 ]] && chown -R certkeep "$T/tokens"

ca="$T/ca"
srv_init "$ca" --key-type "${HSM_KEY_TYPE:-ec-p384}" --pkcs11-module "$MODULE" \
    --pkcs11-uri "pkcs11:token=certkeep-ca;object=ca" --pkcs11-generate
[[ ! -e $ca/private/ca.key ]] || fail "a key file was written"
srv_start "$ca"
TOK=$(srv_token "$ca" hsm tls-server)
auth=(-H "Authorization: Bearer $TOK")

health() { api GET "$PUB/health"; }
signer_gauge() {
	api GET "$PUB/metrics"
	[[ $CODE == 200 ]] || fail "GET /metrics: $CODE"
	awk '$1 == "certkeep_signer_available" { print $2 }' "$BODY"
}
issue() {	# issue NAME: sets $CODE (and $SERIAL on success)
	srv_csr "$T/$1.csr" "$1.$SRV_DOMAIN"
	json_body tls-server "$T/$1.csr" >"$T/$1.json"
	api POST "$API/api/v1/certificates" "${auth[@]}" \
	    -H 'Content-Type: application/json' --data-binary "@$T/$1.json"
}

say "issuance and OCSP signed by the token"
issue www
[[ $CODE == 201 ]] || fail "issuing: HTTP $CODE $(cat "$BODY")"
json_str "$BODY" certificate >"$T/www.pem"
expect_ok openssl verify -x509_strict -CAfile "$SRV_CA" "$T/www.pem"
run openssl ocsp -url "$PUB/ocsp" -issuer "$SRV_CA" -cert "$T/www.pem" \
    -CAfile "$SRV_CA" -no_nonce
[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl ocsp"
grep -q "$T/www.pem: good" "$LAST_OUT" || fail_cmd "OCSP status is not good"
grep -q 'Response verify OK' "$LAST_ERR" "$LAST_OUT" ||
    fail_cmd "the OCSP response does not verify"
health
[[ $CODE == 200 ]] && grep -q '"signer":"available"' "$BODY" ||
    fail "health before: $CODE $(cat "$BODY")"
[[ $(signer_gauge) == 1 ]] || fail "certkeep_signer_available is not 1"
ok "201, OCSP good and verified, health ok, gauge 1"

say "the token goes away"
FAILED0=$(count_certs "$ca" --status failed)
mv "$T/tokens" "$T/tokens.away"
issue gone
[[ $CODE == 503 ]] || fail "issuing without the token: HTTP $CODE $(cat "$BODY")"
expect_problem 503 'signer unavailable'
ok "503: $(json_str "$BODY" detail)"
health
[[ $CODE == 503 ]] || fail "health without the token: $CODE"
grep -q '"signer":"unavailable"' "$BODY" || fail "health: $(cat "$BODY")"
[[ $(signer_gauge) == 0 ]] || fail "certkeep_signer_available is not 0"
assert_eq $((FAILED0 + 1)) "$(count_certs "$ca" --status failed)" \
    "the pending row marked failed"
assert_eq 0 "$(count_certs "$ca" --status pending)" "pending rows left"
# Still down after a retry interval (a reload finds no token).
sleep 1.2
issue gone2
[[ $CODE == 503 ]] || fail "still without the token: HTTP $CODE"
ok "health 503 signer unavailable, gauge 0, no half-written certificate"

say "the token comes back: issuance works again without a restart"
mv "$T/tokens.away" "$T/tokens"
back() { issue back; [[ $CODE == 201 ]]; }
wait_until 10 back || fail "no issuance after the token returned: $CODE $(cat "$BODY")"
json_str "$BODY" certificate >"$T/back.pem"
expect_ok openssl verify -x509_strict -CAfile "$SRV_CA" "$T/back.pem"
health
[[ $CODE == 200 ]] && grep -q '"signer":"available"' "$BODY" ||
    fail "health after: $CODE $(cat "$BODY")"
[[ $(signer_gauge) == 1 ]] || fail "certkeep_signer_available is not 1 again"
run openssl ocsp -url "$PUB/ocsp" -issuer "$SRV_CA" -cert "$T/back.pem" \
    -CAfile "$SRV_CA" -no_nonce
grep -q "$T/back.pem: good" "$LAST_OUT" || fail_cmd "OCSP after recovery"
ok "201 again, health ok, gauge 1, same process ($SRV_PID)"
[[ $(_srv_pid_of "$ca") == "$SRV_PID" ]] || fail "certkeepd restarted"

srv_stop "$ca"
