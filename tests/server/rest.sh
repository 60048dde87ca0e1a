#!/usr/bin/env bash
# rest.sh - the REST API end to end: a certificate from POST
# /api/v1/certificates verifies against the chain it came with; GET by
# serial shows it; a token allowed to revoke revokes it; OCSP (POST and the
# RFC 5019 GET form) and the served CRL then say so within a second; a
# good certificate is good (nonce echoed, response verifies) and a serial
# the CA never issued is unknown.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
srv_start "$ca"
ok "certkeepd serves $API and $PUB"

TOK=$(srv_token "$ca" deployer tls-server --dns-suffixes "$SRV_DOMAIN" \
    --allow-revoke)
auth=(-H "Authorization: Bearer $TOK")

say "a certificate from the REST API"
srv_csr "$T/www.csr" "www.$SRV_DOMAIN"
json_body tls-server "$T/www.csr" 30 >"$T/www.json"
api_issue auth "$T/www.json" "$T/www.pem"
S1=$SERIAL
run openssl verify -x509_strict -CAfile "$T/www.pem.chain" "$T/www.pem"
[[ $LAST_RC -eq 0 ]] || fail_cmd "the certificate does not verify against its chain"
cmp -s "$T/www.pem.chain" "$SRV_CA" || fail "the chain is not the CA certificate"
# The key of the CSR, the name asked for, the validity asked for.
[[ "$(openssl x509 -in "$T/www.pem" -noout -pubkey)" == \
   "$(openssl pkey -in "$T/www.csr.key" -pubout)" ]] ||
    fail "the certificate does not certify the CSR's key"
cert_text "$T/www.pem" "$T/www.txt"
assert_grep "DNS:www\\.$SRV_DOMAIN" "$T/www.txt" "the certificate's names"
days=$(( ($(cert_not_after "$T/www.pem") - $(cert_not_before "$T/www.pem")) / 86400 ))
[[ $days -ge 29 && $days -le 31 ]] || fail "asked for 30 days, got $days"
# The serial the signer chose, logged and returned, is the certificate's.
sn=$(openssl x509 -in "$T/www.pem" -noout -serial)
sn=${sn#serial=}
[[ "${sn#0}" == "$S1" ]] || fail "serial $S1 returned, the certificate has $sn"
ok "serial $S1 verifies (openssl verify), $days days"

say "GET by serial, the chain, the CA certificate"
api GET "$API/api/v1/certificates/$S1" "${auth[@]}"
assert_eq 200 "$CODE" "GET /api/v1/certificates/$S1"
assert_grep '"status":"issued"' "$BODY" "the certificate's status"
assert_grep "\"serial\":\"$S1\"" "$BODY" "the certificate's serial"
json_str "$BODY" certificate >"$T/www.get.pem"
[[ "$(openssl x509 -in "$T/www.get.pem" -outform DER | sha256sum)" == \
   "$(openssl x509 -in "$T/www.pem" -outform DER | sha256sum)" ]] ||
    fail "GET by serial returns another certificate"
# Lower-case serials name the same certificate.
api GET "$API/api/v1/certificates/${S1,,}" "${auth[@]}"
assert_eq 200 "$CODE" "GET by a lower-case serial"
api GET "$API/api/v1/certificates/$S1"
expect_problem 401
api GET "$API/api/v1/certificates/0BADC0FFEE" "${auth[@]}"
expect_problem 404
api GET "$API/api/v1/ca/chain"
assert_eq 200 "$CODE" "GET /api/v1/ca/chain"
cmp -s "$BODY" "$SRV_CA" || fail "/api/v1/ca/chain is not the CA certificate"
api GET "$PUB/ca.crt"
assert_eq 200 "$CODE" "GET /ca.crt"
openssl x509 -in "$SRV_CA" -outform DER | cmp -s - "$BODY" ||
    fail "/ca.crt is not the CA certificate (DER)"
ok "issued; chain and CA certificate served"

# ocsp_status CERT|-serial:HEX [openssl ocsp options...]: the status word
# openssl ocsp reports (POST to the responder); the response must verify.
ocsp_status() {
	local what=$1 id
	shift
	if [[ "$what" == -serial:* ]]; then
		id=(-serial "0x${what#-serial:}")
	else
		id=(-cert "$what")
	fi
	run openssl ocsp -url "$PUB/ocsp" -issuer "$SRV_CA" "${id[@]}" \
	    -CAfile "$SRV_CA" -timeout 20 "$@"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl ocsp failed"
	grep -q 'Response verify OK' "$LAST_ERR" "$LAST_OUT" ||
	    fail_cmd "the OCSP response does not verify"
	sed -n 's/^[^ ]*: \(good\|revoked\|unknown\)$/\1/p' "$LAST_OUT" | head -n 1
}

say "OCSP: good, with a nonce"
st=$(ocsp_status "$T/www.pem" -nonce)
assert_eq good "$st" "OCSP status of $S1"
grep -qi 'nonce' "$LAST_ERR" && fail_cmd "openssl ocsp complains about the nonce"
# The nonce is echoed: the response's text shows it.
run openssl ocsp -url "$PUB/ocsp" -issuer "$SRV_CA" -cert "$T/www.pem" \
    -CAfile "$SRV_CA" -nonce -resp_text -timeout 20
assert_grep 'OCSP Nonce' "$LAST_OUT" "the OCSP response's nonce"
ok "good, nonce echoed, response verifies"

# ocsp_get CERT OUT.der: the GET form (base64 of the DER request, URL
# encoded), its answer in OUT.der.
ocsp_get() {
	local cert=$1 out=$2 b64
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
	run openssl ocsp -respin "$out" -issuer "$SRV_CA" -cert "$cert" \
	    -CAfile "$SRV_CA" -no_nonce
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl ocsp -respin failed"
	grep -q 'Response verify OK' "$LAST_ERR" "$LAST_OUT" ||
	    fail_cmd "the OCSP GET response does not verify"
	sed -n 's/^[^ ]*: \(good\|revoked\|unknown\)$/\1/p' "$LAST_OUT" | head -n 1
}

say "OCSP: the GET form"
assert_eq good "$(ocsp_get "$T/www.pem" "$T/get1.der")" "OCSP GET status of $S1"
ok "GET /ocsp/<base64> says good"

say "the CRL before any revocation"
fetch_crl() {	# fetch_crl OUT.pem
	api GET "$PUB/crl/ca.crl"
	assert_eq 200 "$CODE" "GET /crl/ca.crl"
	openssl crl -inform DER -in "$BODY" -out "$1" 2>/dev/null ||
	    fail "/crl/ca.crl is not a DER CRL"
}
fetch_crl "$T/crl0.pem"
run openssl crl -in "$T/crl0.pem" -CAfile "$SRV_CA" -noout
grep -q 'verify OK' "$LAST_ERR" "$LAST_OUT" || fail_cmd "the CRL's signature"
run openssl verify -crl_check -CAfile "$SRV_CA" -CRLfile "$T/crl0.pem" "$T/www.pem"
[[ $LAST_RC -eq 0 ]] || fail_cmd "verify -crl_check fails before the revocation"
ok "signed by the CA; the certificate passes -crl_check"

say "a token without revoke rights may not revoke"
TOK2=$(srv_token "$ca" norevoke tls-server)
api POST "$API/api/v1/certificates/$S1/revoke" \
    -H "Authorization: Bearer $TOK2" -H 'Content-Type: application/json' \
    --data-binary '{"reason":"keyCompromise"}'
expect_problem 403 'may not revoke'
ok "403: $PROBLEM_DETAIL"

say "revocation through the API"
api POST "$API/api/v1/certificates/$S1/revoke" "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary '{"reason":"keyCompromise"}'
assert_eq 200 "$CODE" "POST .../revoke"
assert_grep '"status":"revoked"' "$BODY" "the revocation answer"
t0=$(date +%s%N)
api GET "$API/api/v1/certificates/$S1" "${auth[@]}"
assert_grep '"status":"revoked"' "$BODY" "GET after the revocation"
assert_grep '"reason":"keyCompromise"' "$BODY" "the revocation reason"
# Revoking it again is a conflict, not a second revocation.
api POST "$API/api/v1/certificates/$S1/revoke" "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary '{"reason":"keyCompromise"}'
[[ "$CODE" == 409 ]] || expect_problem 400
ok "revoked; a second revocation answers $CODE"

say "OCSP sees the revocation within a second"
# Poll for up to 3 s; a query that began more than a second after the
# revocation must not say good any more.
st=
while :; do
	tq=$(date +%s%N)
	st=$(ocsp_status "$T/www.pem")
	[[ "$st" == revoked ]] && break
	assert_eq good "$st" "OCSP status of $S1 while polling"
	(( (tq - t0) / 1000000 <= 1000 )) ||
	    fail "OCSP still says good $(( (tq - t0) / 1000000 )) ms after the revocation"
	(( ($(date +%s%N) - t0) / 1000000 < 3000 )) || break
	sleep 0.1
done
assert_eq revoked "$st" "OCSP status of $S1 after the revocation"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_eq revoked "$(ocsp_get "$T/www.pem" "$T/get2.der")" "OCSP GET status of $S1"
run openssl ocsp -respin "$T/get2.der" -resp_text -noverify
assert_grep 'Revocation Reason: keyCompromise' "$LAST_OUT" "the OCSP revocation reason"
ok "revoked (seen after ${ms} ms; POST and GET forms)"

say "the served CRL lists it"
crl_lists() {
	fetch_crl "$T/crl1.pem"
	openssl crl -in "$T/crl1.pem" -noout -text >"$T/crl1.txt"
	grep -q "Serial Number: 0*$S1\$" "$T/crl1.txt"
}
wait_until 3 crl_lists || fail "the CRL does not list $S1 within 3 s"
run openssl crl -in "$T/crl1.pem" -CAfile "$SRV_CA" -noout
grep -q 'verify OK' "$LAST_ERR" "$LAST_OUT" || fail_cmd "the new CRL's signature"
expect_fail 'certificate revoked' openssl verify -crl_check -CAfile "$SRV_CA" \
    -CRLfile "$T/crl1.pem" "$T/www.pem"
ok "listed; openssl verify -crl_check: certificate revoked"

say "another certificate stays good; an unknown serial is unknown"
srv_csr "$T/api.csr" "api.$SRV_DOMAIN"
json_body tls-server "$T/api.csr" >"$T/api.json"
api_issue auth "$T/api.json" "$T/api.pem"
S2=$SERIAL
expect_ok openssl verify -CAfile "$T/api.pem.chain" "$T/api.pem"
assert_eq good "$(ocsp_status "$T/api.pem" -nonce)" "OCSP status of $S2"
assert_eq good "$(ocsp_get "$T/api.pem" "$T/get3.der")" "OCSP GET status of $S2"
expect_ok openssl verify -crl_check -CAfile "$SRV_CA" -CRLfile "$T/crl1.pem" \
    "$T/api.pem"
assert_eq unknown "$(ocsp_status -serial:0123456789ABCDEF0123)" \
    "OCSP status of a serial never issued"
ok "$S2 good (POST and GET), 0123456789ABCDEF0123 unknown"

say "the store agrees"
expect_ok "$CERTKEEP" show --home "$ca" "$S1"
assert_grep 'revoked' "$LAST_OUT" "certkeep show $S1"
expect_ok "$CERTKEEP" show --home "$ca" "$S2"
assert_grep 'issued' "$LAST_OUT" "certkeep show $S2"
audit_verify_ok "$ca"

srv_stop "$ca"
ok "stopped"
