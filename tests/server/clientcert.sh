#!/usr/bin/env bash
# clientcert.sh - a TLS client certificate from the CA authenticates: with
# [server] client_cert_profiles = tls-server, the holder of a tls-client
# certificate gets a tls-server certificate for its own name without a
# token, is refused other names, may revoke its own certificate (and no
# other), and once revoked it is refused (401). A certificate from
# elsewhere never authenticates.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
CLIENT="client1.$SRV_DOMAIN"

say "a tls-client certificate from the command line"
srv_csr "$T/client.csr" "$CLIENT"
run "$CERTKEEP" issue --home "$ca" --profile tls-client --csr - --cert-only \
    --passphrase-fd 3 3<"$PWFILE" <"$T/client.csr"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep issue --profile tls-client failed"
cp "$LAST_OUT" "$T/client.pem"
CSERIAL=$(serial_of "$T/client.pem")
expect_ok openssl verify -purpose sslclient -CAfile "$SRV_CA" "$T/client.pem"
ok "serial $CSERIAL for $CLIENT"

cert=(--cert "$T/client.pem" --key "$T/client.csr.key")
json=(-H 'Content-Type: application/json')
srv_csr "$T/own.csr" "$CLIENT"
json_body tls-server "$T/own.csr" 30 >"$T/own.json"

say "without client_cert_profiles it may not use tls-server"
srv_start "$ca"
a0=$(count_audit "$ca" refused)
api POST "$API/api/v1/certificates" "${cert[@]}" "${json[@]}" \
    --data-binary "@$T/own.json"
expect_problem 403 "may not use profile 'tls-server'"
assert_eq "$((a0 + 1))" "$(count_audit "$ca" refused)" "refusals audited"
ok "$PROBLEM_DETAIL"

say "client_cert_profiles = tls-server, and a restart"
srv_stop "$ca"
conf_set "$ca" server client_cert_profiles tls-server
srv_start "$ca"
N0=$(count_certs "$ca")
api_issue cert "$T/own.json" "$T/own.pem"
SSERIAL=$SERIAL
expect_ok openssl verify -purpose sslserver -CAfile "$T/own.pem.chain" "$T/own.pem"
cert_text "$T/own.pem" "$T/own.txt"
assert_grep "DNS:client1\\.$SRV_DOMAIN" "$T/own.txt" "the server certificate's name"
assert_eq "$((N0 + 1))" "$(count_certs "$ca")" "certificates after the issuance"
expect_ok "$CERTKEEP" show --home "$ca" "$SSERIAL"
assert_grep "cert:$CSERIAL" "$LAST_OUT" "the requester recorded for $SSERIAL"
ok "tls-server certificate $SSERIAL for $CLIENT, no token, requester cert:$CSERIAL"

say "another name is refused"
srv_csr "$T/other.csr" "other.$SRV_DOMAIN"
json_body tls-server "$T/other.csr" 30 >"$T/other.json"
a0=$(count_audit "$ca" refused)
api POST "$API/api/v1/certificates" "${cert[@]}" "${json[@]}" \
    --data-binary "@$T/other.json"
expect_problem 403 "other\\.$SRV_DOMAIN"
assert_eq "$((N0 + 1))" "$(count_certs "$ca")" "certificates after the refusal"
assert_eq "$((a0 + 1))" "$(count_audit "$ca" refused)" "refusals audited"
srv_csr "$T/mixed.csr" "$CLIENT" "DNS:$CLIENT,DNS:other.$SRV_DOMAIN"
json_body tls-server "$T/mixed.csr" 30 >"$T/mixed.json"
api POST "$API/api/v1/certificates" "${cert[@]}" "${json[@]}" \
    --data-binary "@$T/mixed.json"
expect_problem 403 "other\\.$SRV_DOMAIN"
# Not another profile either.
json_body tls-client "$T/own.csr" 30 >"$T/client2.json"
api POST "$API/api/v1/certificates" "${cert[@]}" "${json[@]}" \
    --data-binary "@$T/client2.json"
expect_problem 403 "may not use profile 'tls-client'"
assert_eq "$((N0 + 1))" "$(count_certs "$ca")" "certificates after the refusals"
ok "other.$SRV_DOMAIN, a mixed request and tls-client all 403"

say "a certificate from elsewhere does not authenticate"
openssl req -x509 -new -config "$OSSL_CNF" -key "$T/client.csr.key" \
    -subj "/CN=$CLIENT" -days 2 -out "$T/selfsigned.pem" 2>/dev/null ||
    fail "cannot make a self-signed certificate"
api POST "$API/api/v1/certificates" --cert "$T/selfsigned.pem" \
    --key "$T/client.csr.key" "${json[@]}" --data-binary "@$T/own.json"
if [[ "$CODE" != 000 ]]; then
	expect_problem 401
fi
assert_eq "$((N0 + 1))" "$(count_certs "$ca")" "certificates after a foreign certificate"
ok "${CODE/000/handshake refused}"

say "a certificate without clientAuth does not authenticate"
api POST "$API/api/v1/certificates" --cert "$T/own.pem" \
    --key "$T/own.csr.key" "${json[@]}" --data-binary "@$T/own.json"
if [[ "$CODE" != 000 ]]; then
	expect_problem 401
fi
assert_eq "$((N0 + 1))" "$(count_certs "$ca")" "certificates after a server certificate"
ok "the tls-server certificate $SSERIAL: ${CODE/000/handshake refused}"

say "it may revoke its own certificate, and no other"
api POST "$API/api/v1/certificates/$SSERIAL/revoke" "${cert[@]}" "${json[@]}" \
    --data-binary '{"reason":"superseded"}'
expect_problem 403 'may not revoke'
expect_ok "$CERTKEEP" show --home "$ca" "$SSERIAL"
assert_grep 'issued' "$LAST_OUT" "$SSERIAL after a refused revocation"
api POST "$API/api/v1/certificates/$CSERIAL/revoke" "${cert[@]}" "${json[@]}" \
    --data-binary '{"reason":"cessationOfOperation"}'
assert_eq 200 "$CODE" "self-revocation"
assert_grep '"status":"revoked"' "$BODY" "the self-revocation answer"
expect_ok "$CERTKEEP" show --home "$ca" "$CSERIAL"
assert_grep 'revoked' "$LAST_OUT" "certkeep show $CSERIAL"
ok "$CSERIAL revoked by its holder; $SSERIAL not"

say "a revoked client certificate is refused"
api POST "$API/api/v1/certificates" "${cert[@]}" "${json[@]}" \
    --data-binary "@$T/own.json"
expect_problem 401
api GET "$API/api/v1/certificates/$SSERIAL" "${cert[@]}"
expect_problem 401
api POST "$API/api/v1/certificates/$CSERIAL/revoke" "${cert[@]}" "${json[@]}" \
    --data-binary '{"reason":"superseded"}'
expect_problem 401
assert_eq "$((N0 + 1))" "$(count_certs "$ca")" "certificates at the end"
ok "401 for issuance, lookup and revocation"

audit_verify_ok "$ca"
srv_stop "$ca"
ok "stopped"
