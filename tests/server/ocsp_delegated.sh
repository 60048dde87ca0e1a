#!/usr/bin/env bash
# ocsp_delegated.sh - OCSP signed by a delegated responder (RFC 6960
# section 4.2.2.2) instead of the CA key. With [server] ocsp_signer =
# delegated, certkeepd issues itself a responder certificate at start
# (recorded in the store, OCSPSigning and ocsp-nocheck, not the CA), and
# every answer - POST, the RFC 5019 GET form, cached or with a nonce - is
# signed by it, names it by key hash, carries it, and passes openssl ocsp.
# A revocation shows within a second. A reload renews the certificate;
# answers cached before still verify. An operator's certificate and key
# (ocsp_cert, ocsp_key) are used instead when configured; a key file other
# users can read, a certificate that is no responder's, one that is not
# the key's and incoherent settings are refused at start.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
conf_set "$ca" server ocsp_signer delegated
CA_FP=$(openssl x509 -in "$SRV_CA" -noout -fingerprint -sha256)

# Files written into the home belong to its owner (the service user when
# the test runs as root).
home_owned() {
	if [[ $(id -u) -eq 0 ]]; then
		chown certkeep "$@" || fail "cannot chown $*"
	fi
}

# ocsp_query CHAIN OUT.der CERT [openssl ocsp options...]: POST a request
# for CERT to the responder, verify the answer against CHAIN, keep it in
# OUT.der; prints the status word.
ocsp_query() {
	local chain=$1 out=$2 cert=$3
	shift 3
	run openssl ocsp -url "$PUB/ocsp" -issuer "$SRV_CA" -cert "$cert" \
	    -CAfile "$chain" -respout "$out" -timeout 20 "$@"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl ocsp failed"
	grep -q 'Response verify OK' "$LAST_ERR" "$LAST_OUT" ||
	    fail_cmd "the OCSP response does not verify"
	sed -n 's/^[^ ]*: \(good\|revoked\|unknown\)$/\1/p' "$LAST_OUT" |
	    head -n 1
}

# ocsp_get CHAIN CERT OUT.der: the GET form (base64 of the DER request,
# URL-encoded); the answer, verified, in OUT.der; prints the status word.
ocsp_get() {
	local chain=$1 cert=$2 out=$3 b64
	expect_ok openssl ocsp -issuer "$SRV_CA" -cert "$cert" -no_nonce \
	    -reqout "$T/ocsp-req.der"
	b64=$(base64 -w 0 "$T/ocsp-req.der")
	b64=${b64//+/%2B}
	b64=${b64//\//%2F}
	b64=${b64//=/%3D}
	api GET "$PUB/ocsp/$b64"
	assert_eq 200 "$CODE" "GET /ocsp/..."
	assert_eq application/ocsp-response "$CTYPE" "the OCSP GET content type"
	cp "$BODY" "$out"
	ocsp_verify "$chain" "$cert" "$out"
}

# ocsp_verify CHAIN CERT RESP.der: openssl accepts a saved answer; prints
# the status word.
ocsp_verify() {
	run openssl ocsp -respin "$3" -issuer "$SRV_CA" -cert "$2" \
	    -CAfile "$1" -no_nonce
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl ocsp -respin failed"
	grep -q 'Response verify OK' "$LAST_ERR" "$LAST_OUT" ||
	    fail_cmd "the OCSP response $3 does not verify"
	sed -n 's/^[^ ]*: \(good\|revoked\|unknown\)$/\1/p' "$LAST_OUT" |
	    head -n 1
}

# responder RESP.der OUT.pem: the certificate the answer carries (exactly
# one), and a check that the responder ID is its key hash (byKey, which
# is its subject key identifier: both are the SHA-1 of the key).
responder() {
	local resp=$1 out=$2 rid ski
	expect_ok openssl ocsp -respin "$resp" -resp_text -noverify
	cp "$LAST_OUT" "$out.txt"
	awk '/-----BEGIN CERTIFICATE-----/ { n++ } n == 1 { print }
	    /-----END CERTIFICATE-----/ && n == 1 { n++ }' "$out.txt" >"$out"
	[[ $(grep -c -- '-----BEGIN CERTIFICATE-----' "$out.txt") -eq 1 ]] ||
	    fail "the OCSP response does not carry exactly one certificate"
	openssl x509 -in "$out" -noout 2>/dev/null ||
	    fail "no certificate in the OCSP response"
	rid=$(sed -n 's/^ *Responder Id: *//p' "$out.txt" | head -n 1)
	[[ "$rid" =~ ^[0-9A-F]{40}$ ]] ||
	    fail "the responder ID '$rid' is not a key hash (byKey)"
	ski=$(openssl x509 -in "$out" -noout -ext subjectKeyIdentifier |
	    sed -n '2p' | tr -d ' :')
	assert_eq "$rid" "${ski^^}" "the responder ID (key hash of the responder certificate)"
}

# is_responder_cert CERT.pem: a delegated responder of this CA, not the CA.
is_responder_cert() {
	local c=$1
	[[ "$(openssl x509 -in "$c" -noout -fingerprint -sha256)" != "$CA_FP" ]] ||
	    fail "the responder certificate is the CA certificate"
	cert_text "$c" "$c.txt"
	assert_grep 'X509v3 Extended Key Usage' "$c.txt" "the responder's EKU"
	assert_grep '^ *OCSP Signing$' "$c.txt" "the responder's EKU (OCSP Signing only)"
	assert_grep 'OCSP No Check' "$c.txt" "id-pkix-ocsp-nocheck"
	assert_grep '^ *Digital Signature$' "$c.txt" "the responder's key usage"
	assert_grep 'CA:FALSE' "$c.txt" "the responder's basic constraints"
	assert_grep 'X509v3 Authority Key Identifier' "$c.txt" "the responder's AKI"
	expect_ok openssl verify -purpose ocsphelper -CAfile "$SRV_CA" "$c"
}

say "ocsp_signer = delegated: certkeepd issues itself a responder certificate"
N0=$(count_certs "$ca" --profile certkeepd-ocsp)
srv_start "$ca"
assert_eq "$((N0 + 1))" "$(count_certs "$ca" --profile certkeepd-ocsp)" \
    "certkeepd-ocsp certificates in the store after the start"
R1=$(list_serials "$ca" --profile certkeepd-ocsp | head -n 1)
expect_ok "$CERTKEEP" show --home "$ca" "$R1"
assert_grep 'issued' "$LAST_OUT" "certkeep show $R1"
assert_grep 'certkeepd' "$LAST_OUT" "the requester of $R1"
ok "responder certificate $R1 recorded (profile certkeepd-ocsp)"

TOK=$(srv_token "$ca" deployer tls-server --dns-suffixes "$SRV_DOMAIN" \
    --allow-revoke)
auth=(-H "Authorization: Bearer $TOK")
srv_csr "$T/www.csr" "www.$SRV_DOMAIN"
json_body tls-server "$T/www.csr" 30 >"$T/www.json"
api_issue auth "$T/www.json" "$T/www.pem"
S1=$SERIAL
CHAIN="$T/www.pem.chain"

say "openssl ocsp: good, verified, signed by the delegated responder"
assert_eq good "$(ocsp_query "$CHAIN" "$T/r1.der" "$T/www.pem" -nonce)" \
    "OCSP status of $S1 (nonce)"
responder "$T/r1.der" "$T/resp1.pem"
is_responder_cert "$T/resp1.pem"
assert_eq "$R1" "$(serial_of "$T/resp1.pem")" "the responder certificate's serial"
nb=$(cert_not_before "$T/resp1.pem")
na=$(cert_not_after "$T/resp1.pem")
(( na - nb >= 48 * 3600 && na - nb <= 48 * 3600 + 120 )) ||
    fail "the responder certificate is valid for $(( na - nb )) s, not 48 h"
# Without a nonce (the cached path) as well.
assert_eq good "$(ocsp_query "$CHAIN" "$T/r2.der" "$T/www.pem" -no_nonce)" \
    "OCSP status of $S1 (no nonce)"
assert_eq good "$(ocsp_query "$CHAIN" "$T/r3.der" "$T/www.pem" -no_nonce)" \
    "OCSP status of $S1 (cached)"
cmp -s "$T/r2.der" "$T/r3.der" || fail "the second answer was not the cached one"
responder "$T/r3.der" "$T/resp3.pem"
cmp -s "$T/resp1.pem" "$T/resp3.pem" || fail "the cached answer has another signer"
ok "good; byKey responder ID; certificate $R1 included: OCSPSigning, nocheck, 48 h, not the CA"

say "the GET form (RFC 5019)"
assert_eq good "$(ocsp_get "$CHAIN" "$T/www.pem" "$T/get1.der")" "OCSP GET status of $S1"
responder "$T/get1.der" "$T/respg.pem"
cmp -s "$T/resp1.pem" "$T/respg.pem" || fail "the GET answer has another signer"
ok "GET /ocsp/<base64> says good, signed by $R1"

say "revocation: OCSP says revoked within a second"
api POST "$API/api/v1/certificates/$S1/revoke" "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary '{"reason":"keyCompromise"}'
assert_eq 200 "$CODE" "POST .../revoke"
t0=$(date +%s%N)
st=
while :; do
	tq=$(date +%s%N)
	st=$(ocsp_query "$CHAIN" "$T/r4.der" "$T/www.pem")
	[[ "$st" == revoked ]] && break
	assert_eq good "$st" "OCSP status of $S1 while polling"
	(( (tq - t0) / 1000000 <= 1000 )) ||
	    fail "OCSP still says good $(( (tq - t0) / 1000000 )) ms after the revocation"
	(( ($(date +%s%N) - t0) / 1000000 < 3000 )) || break
	sleep 0.1
done
assert_eq revoked "$st" "OCSP status of $S1 after the revocation"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
responder "$T/r4.der" "$T/resp4.pem"
cmp -s "$T/resp1.pem" "$T/resp4.pem" || fail "the revoked answer has another signer"
assert_eq revoked "$(ocsp_get "$CHAIN" "$T/www.pem" "$T/get2.der")" \
    "OCSP GET status of $S1"
run openssl ocsp -respin "$T/get2.der" -resp_text -noverify
assert_grep 'Revocation Reason: keyCompromise' "$LAST_OUT" "the OCSP revocation reason"
ok "revoked (seen after ${ms} ms; POST and GET), signed by $R1"

say "a reload renews the responder certificate; cached answers stay valid"
srv_csr "$T/api.csr" "api.$SRV_DOMAIN"
json_body tls-server "$T/api.csr" 30 >"$T/api.json"
api_issue auth "$T/api.json" "$T/api.pem"
# The responder refreshes what changed in the store every 200 ms: an
# answer fetched before it has seen this issuance is replaced then. Wait
# until two fetches give the same cached answer.
stable_get() {
	[[ "$(ocsp_get "$CHAIN" "$T/api.pem" "$T/get3a.der")" == good ]] &&
	    sleep 0.5 &&
	    [[ "$(ocsp_get "$CHAIN" "$T/api.pem" "$T/get3.der")" == good ]] &&
	    cmp -s "$T/get3a.der" "$T/get3.der"
}
wait_until 10 stable_get || fail "no stable cached OCSP answer for $SERIAL"
expect_ok "$CERTKEEP" service reload --home "$ca"
renewed() {
	[[ "$(ocsp_query "$CHAIN" "$T/r5.der" "$T/api.pem" -nonce)" == good ]] &&
	    responder "$T/r5.der" "$T/resp5.pem" &&
	    ! cmp -s "$T/resp1.pem" "$T/resp5.pem"
}
wait_until 10 renewed || fail "no new responder certificate 10 s after the reload"
is_responder_cert "$T/resp5.pem"
R2=$(serial_of "$T/resp5.pem")
assert_eq "$((N0 + 2))" "$(count_certs "$ca" --profile certkeepd-ocsp)" \
    "certkeepd-ocsp certificates after the reload"
list_serials "$ca" --profile certkeepd-ocsp | grep -qx "$R2" ||
    fail "the new responder certificate $R2 is not in the store"
# The answer cached before the reload is served as it was, and verifies.
assert_eq good "$(ocsp_get "$CHAIN" "$T/api.pem" "$T/get4.der")" "OCSP GET status after the reload"
cmp -s "$T/get3.der" "$T/get4.der" || fail "the cached GET answer changed with the reload"
responder "$T/get4.der" "$T/respg4.pem"
cmp -s "$T/resp1.pem" "$T/respg4.pem" || fail "the cached answer's signer changed"
ok "renewed: $R1 -> $R2; the cached answer (signed by $R1) still verifies"
srv_stop "$ca"

say "incoherent settings are refused at start"
conf_set "$ca" server ocsp_signer_validity_hours 24
expect_fail 'ocsp_signer_validity_hours \(24\) must be at least twice ocsp_validity_hours \(24\)' \
    timeout 120 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
conf_set "$ca" server ocsp_signer_validity_hours 48
conf_set "$ca" server ocsp_cert ocsp-responder.pem
expect_fail 'ocsp_cert and ocsp_key go together' \
    timeout 120 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
! srv_running "$ca" || fail "certkeepd runs after a refused start"
conf_set "$ca" server ocsp_cert ""
conf_set "$ca" server ocsp_signer someone
expect_fail "ocsp_signer: 'someone' is neither ca nor delegated" \
    timeout 120 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
conf_set "$ca" server ocsp_signer delegated
! srv_running "$ca" || fail "certkeepd runs after a refused start"
ok "validity below twice ocsp_validity_hours; ocsp_cert without ocsp_key; an unknown signer"

say "an operator's responder certificate (ocsp_cert, ocsp_key)"
conf_set "$ca" profile.ocsp-signer key_usage digitalSignature
conf_set "$ca" profile.ocsp-signer ext_key_usage OCSPSigning
conf_set "$ca" profile.ocsp-signer key_types ec-p256
conf_set "$ca" profile.ocsp-signer common_name any
conf_set "$ca" profile.ocsp-signer max_validity_days 30
make_key ec-p256 "$T/op.key"
make_csr "$T/op.key" "$T/op.csr" "/CN=Operator OCSP responder"
run "$CERTKEEP" issue --home "$ca" --profile ocsp-signer --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/op.csr"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep issue --profile ocsp-signer failed"
cp "$LAST_OUT" "$T/op.pem"
OPS=$(serial_of "$T/op.pem")
cp "$T/op.pem" "$ca/ocsp-responder.pem"
cp "$T/op.key" "$ca/ocsp-responder.key"
chmod 644 "$ca/ocsp-responder.pem"
chmod 600 "$ca/ocsp-responder.key"
home_owned "$ca/ocsp-responder.pem" "$ca/ocsp-responder.key"
conf_set "$ca" server ocsp_cert ocsp-responder.pem
conf_set "$ca" server ocsp_key ocsp-responder.key
NS=$(count_certs "$ca" --profile certkeepd-ocsp)
srv_start "$ca"
assert_eq good "$(ocsp_query "$CHAIN" "$T/r6.der" "$T/api.pem" -nonce)" \
    "OCSP status (operator's responder)"
responder "$T/r6.der" "$T/resp6.pem"
[[ "$(openssl x509 -in "$T/resp6.pem" -noout -fingerprint -sha256)" == \
   "$(openssl x509 -in "$T/op.pem" -noout -fingerprint -sha256)" ]] ||
    fail "the answer is not signed by the operator's certificate"
assert_eq revoked "$(ocsp_get "$CHAIN" "$T/www.pem" "$T/get5.der")" \
    "OCSP GET status of $S1 (operator's responder)"
responder "$T/get5.der" "$T/respg5.pem"
cmp -s "$T/resp6.pem" "$T/respg5.pem" || fail "the GET answer has another signer"
assert_eq "$NS" "$(count_certs "$ca" --profile certkeepd-ocsp)" \
    "certkeepd-ocsp certificates (none issued with ocsp_cert)"
srv_stop "$ca"
ok "answers signed by $OPS (POST and GET); certkeepd issued itself none"

say "a key file other users can read is refused"
chmod 644 "$ca/ocsp-responder.key"
expect_fail 'ocsp_key: refusing to use .*ocsp-responder\.key: other users can access it' \
    timeout 120 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
! srv_running "$ca" || fail "certkeepd runs with a world-readable ocsp_key"
assert_grep 'chmod 600' "$LAST_ERR" "the fix named in the refusal"
chmod 600 "$ca/ocsp-responder.key"
ok "$(head -n 1 "$LAST_ERR")"

say "certificates that are no responder's, or not the key's, are refused"
# A TLS server certificate with its own key: no OCSPSigning.
cp "$T/api.pem" "$ca/ocsp-responder.pem"
cp "$T/api.csr.key" "$ca/ocsp-responder.key"
chmod 600 "$ca/ocsp-responder.key"
home_owned "$ca/ocsp-responder.pem" "$ca/ocsp-responder.key"
expect_fail 'ocsp_cert .*ocsp-responder\.pem: .*does not carry the extended key usage id-kp-OCSPSigning' \
    timeout 120 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
# The operator's certificate with another key.
cp "$T/op.pem" "$ca/ocsp-responder.pem"
expect_fail 'does not belong to its key' \
    timeout 120 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
# A responder certificate of another CA.
openssl req -x509 -new -config "$OSSL_CNF" -key "$T/op.key" \
    -subj "/CN=Elsewhere" -days 2 -addext extendedKeyUsage=OCSPSigning \
    -out "$ca/ocsp-responder.pem" 2>/dev/null ||
    fail "cannot make a self-signed certificate"
cp "$T/op.key" "$ca/ocsp-responder.key"
chmod 600 "$ca/ocsp-responder.key"
home_owned "$ca/ocsp-responder.pem" "$ca/ocsp-responder.key"
expect_fail 'not issued by this CA' \
    timeout 120 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 3<"$PWFILE"
! srv_running "$ca" || fail "certkeepd runs after a refused start"
ok "no OCSPSigning, another key, another CA: all refused at start"

audit_verify_ok "$ca"
