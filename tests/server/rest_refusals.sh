#!/usr/bin/env bash
# rest_refusals.sh - what the REST API must refuse, and how: a missing,
# bad or revoked token is 401; a profile or a name the token or the
# profile does not allow is 403 (naming the name); bad bodies, bad CSRs
# and weak keys are 4xx with a clear detail; an oversized body is 413 and
# the server keeps serving; revoking without revoke rights is 403. Every
# answer is a problem+json document. No refusal adds a certificate; each
# refusal that certkeepd judged (an authenticated, well-formed request)
# adds exactly one audit entry with result "refused" (unauthenticated
# requests as "authenticate", naming the address; unreadable bodies from
# an authenticated caller as "issue"), while an oversized body, refused
# before anything reads it, adds none; the audit log verifies at the end.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

ca="$T/ca"
srv_init "$ca"
srv_start "$ca"

TOK=$(srv_token "$ca" servers tls-server)
TOK_APP=$(srv_token "$ca" app-only tls-server --dns-suffixes "app.$SRV_DOMAIN")
TOK_CLIENT=$(srv_token "$ca" clients tls-client)
auth=(-H "Authorization: Bearer $TOK")
json=(-H 'Content-Type: application/json')

srv_csr "$T/www.csr" "www.$SRV_DOMAIN"
json_body tls-server "$T/www.csr" >"$T/www.json"

N_CERTS=$(count_certs "$ca")

# refused STATUS DETAIL-ERE AUDITED AUDIT-ERE CURL-ARGS...: POST
# /api/v1/certificates is answered STATUS with a problem document whose
# detail matches DETAIL-ERE; no certificate appears; AUDITED=1: exactly
# one new audit entry, "refused" and matching AUDIT-ERE; AUDITED=0: none.
refused() {
	local want=$1 re=$2 audited=$3 audit_re=$4 a0 a1
	shift 4
	a0=$(count_audit "$ca")
	api POST "$API/api/v1/certificates" "$@"
	expect_problem "$want" "$re"
	assert_eq "$N_CERTS" "$(count_certs "$ca")" "certificates after a refusal"
	a1=$(count_audit "$ca")
	if [[ $audited -eq 1 ]]; then
		assert_eq "$((a0 + 1))" "$a1" "audit entries after a judged refusal"
		last_audit "$ca" >"$T/last-audit"
		assert_grep '^ *[0-9]+ \S+ \S+ +\S+ +refused ' "$T/last-audit" \
		    "the new audit entry's result"
		assert_grep "$audit_re" "$T/last-audit" "the new audit entry"
	else
		assert_eq "$a0" "$a1" "audit entries after an unjudged refusal"
	fi
	ok "$CODE: $PROBLEM_DETAIL"
}

say "authentication"
refused 401 'token' 1 'anonymous@\S+ +authenticate' "${json[@]}" --data-binary "@$T/www.json"
refused 401 'token' 1 'anonymous@\S+ +authenticate' -H "Authorization: Bearer ckt_0123456789abcdef_nope" \
    "${json[@]}" --data-binary "@$T/www.json"
refused 401 'token' 1 'anonymous@\S+ +authenticate' -H "Authorization: Bearer ${TOK%?}x" \
    "${json[@]}" --data-binary "@$T/www.json"
refused 401 'token' 1 'anonymous@\S+ +authenticate' -H "Authorization: Basic dXNlcjpwYXNz" \
    "${json[@]}" --data-binary "@$T/www.json"
TOK_OLD=$(srv_token "$ca" retired tls-server)
expect_ok "$CERTKEEP" token revoke --home "$ca" retired
wait_until 5 token_state "$TOK_OLD" 401 ||
    fail "certkeepd still accepts a revoked token after 5 s"
refused 401 'token' 1 'anonymous@\S+ +authenticate' -H "Authorization: Bearer $TOK_OLD" \
    "${json[@]}" --data-binary "@$T/www.json"

say "no CA profiles through the API"
expect_fail 'CA certificates' "$CERTKEEP" token create --home "$ca" --name ca-maker \
    --profiles sub-ca
ok "a token for the sub-ca profile is refused"

say "profiles and names"
json_body tls-server "$T/www.csr" >"$T/www-server.json"
refused 403 "may not use profile 'tls-server'" 1 'token:clients' \
    -H "Authorization: Bearer $TOK_CLIENT" "${json[@]}" \
    --data-binary "@$T/www-server.json"
refused 403 "www\\.$SRV_DOMAIN" 1 "www\\.$SRV_DOMAIN" \
    -H "Authorization: Bearer $TOK_APP" "${json[@]}" \
    --data-binary "@$T/www.json"
# The same token may have names below its suffix (so the refusal above
# was the name).
srv_csr "$T/in.csr" "db.app.$SRV_DOMAIN"
json_body tls-server "$T/in.csr" >"$T/in.json"
auth_app=(-H "Authorization: Bearer $TOK_APP")
api_issue auth_app "$T/in.json" "$T/in.pem"
N_CERTS=$(count_certs "$ca")
ok "db.app.$SRV_DOMAIN is allowed to that token (serial $SERIAL)"
srv_csr "$T/evil.csr" "www.$SRV_DOMAIN" "DNS:www.$SRV_DOMAIN,DNS:evil.org"
json_body tls-server "$T/evil.csr" >"$T/evil.json"
refused 403 "evil\\.org" 1 'evil\.org' "${auth[@]}" "${json[@]}" \
    --data-binary "@$T/evil.json"
srv_csr "$T/ip.csr" "www.$SRV_DOMAIN" "DNS:www.$SRV_DOMAIN,IP:10.1.2.3"
json_body tls-server "$T/ip.csr" >"$T/ip.json"
refused 403 '10\.1\.2\.3' 1 '10\.1\.2\.3' "${auth[@]}" "${json[@]}" \
    --data-binary "@$T/ip.json"
json_body no-such-profile "$T/www.csr" >"$T/noprof.json"
refused 403 "no-such-profile" 1 'refused' "${auth[@]}" "${json[@]}" \
    --data-binary "@$T/noprof.json"

say "bodies the API cannot read"
refused 415 'application/json' 1 'token:servers' "${auth[@]}" \
    -H 'Content-Type: text/plain' --data-binary "@$T/www.json"
refused 415 'application/json' 1 'token:servers' "${auth[@]}" \
    -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "@$T/www.json"
refused 400 'not a JSON object' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary 'this is not JSON {'
refused 400 'not a JSON object' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary '["tls-server"]'
refused 400 'not a JSON object' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary ''
refused 400 '"csr"' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary '{"profile":"tls-server"}'
refused 400 '"profile"' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary '{"csr":"x"}'
refused 400 '"profile"' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary '{"profile":7,"csr":"x"}'
refused 400 'days' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary "$(json_body tls-server "$T/www.csr" 0)"
refused 400 'days' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary "$(json_body tls-server "$T/www.csr" '"30"')"
refused 400 'not a JSON object' 1 'token:servers' "${auth[@]}" "${json[@]}" \
    --data-binary '{"profile":"tls-server","profile":"tls-client","csr":"x"}'

say "CSRs certkeep will not sign"
refused 400 'CSR|PEM|parse|request' 1 'refused' "${auth[@]}" "${json[@]}" \
    --data-binary '{"profile":"tls-server","csr":"not a CSR"}'
make_csr "$T/www.csr.key" "$T/good.der" "/CN=www.$SRV_DOMAIN" DER \
    -addext "subjectAltName=DNS:www.$SRV_DOMAIN"
size=$(stat -c %s "$T/good.der")
last=$(tail -c 1 "$T/good.der" | od -An -tu1 | tr -d ' ')
{ head -c $((size - 1)) "$T/good.der"; printf "\\$(printf %03o $((last ^ 0xff)))"; } \
    >"$T/badsig.der"
cmp -s "$T/good.der" "$T/badsig.der" && fail "the CSR was not corrupted"
{
	echo '-----BEGIN CERTIFICATE REQUEST-----'
	base64 -w 64 "$T/badsig.der"
	echo '-----END CERTIFICATE REQUEST-----'
} >"$T/badsig.csr"
json_body tls-server "$T/badsig.csr" >"$T/badsig.json"
refused 400 'signature' 1 'signature' "${auth[@]}" "${json[@]}" \
    --data-binary "@$T/badsig.json"
srv_csr "$T/small.csr" "www.$SRV_DOMAIN" "DNS:www.$SRV_DOMAIN" rsa1024
json_body tls-server "$T/small.csr" >"$T/small.json"
refused 403 'rsa1024' 1 'rsa1024' "${auth[@]}" "${json[@]}" \
    --data-binary "@$T/small.json"
json_body tls-server "$T/www.csr" 400 >"$T/long.json"
refused 403 'valid|days|validity' 1 'refused' "${auth[@]}" "${json[@]}" \
    --data-binary "@$T/long.json"

say "a body over max_body (200 KiB)"
head -c $((200 * 1024)) /dev/zero | tr '\0' 'A' >"$T/big.txt"
{ printf '{"profile":"tls-server","csr":"'; cat "$T/big.txt"; printf '"}'; } \
    >"$T/big.json"
refused 413 'too large' 0 '' "${auth[@]}" "${json[@]}" --data-binary "@$T/big.json"
# Without a Content-Length (chunked): cut off, or 413; never served.
a0=$(count_audit "$ca")
api POST "$API/api/v1/certificates" "${auth[@]}" "${json[@]}" \
    -H 'Transfer-Encoding: chunked' --data-binary "@$T/big.json"
[[ "$CODE" == 413 || "$CODE" == 000 ]] ||
    fail "a chunked 200 KiB body got HTTP $CODE (curl exit $CURL_RC)"
assert_eq "$N_CERTS" "$(count_certs "$ca")" "certificates after a chunked oversized body"
assert_eq "$a0" "$(count_audit "$ca")" "audit entries after a chunked oversized body"
ok "chunked: ${CODE/000/connection closed}"
wait_until 5 _health_ok || fail "certkeepd does not answer /health after big bodies"
api_issue auth "$T/www.json" "$T/www.pem"
S1=$SERIAL
N_CERTS=$(count_certs "$ca")
ok "still serving: issued $S1"

say "revocation without revoke rights"
a0=$(count_audit "$ca")
api POST "$API/api/v1/certificates/$S1/revoke" "${auth[@]}" "${json[@]}" \
    --data-binary '{"reason":"superseded"}'
expect_problem 403 'may not revoke'
assert_eq "$((a0 + 1))" "$(count_audit "$ca")" "audit entries after a refused revocation"
last_audit "$ca" >"$T/last-audit"
assert_grep ' refused ' "$T/last-audit" "the refused revocation's audit entry"
api POST "$API/api/v1/certificates/$S1/revoke" "${json[@]}" \
    --data-binary '{"reason":"superseded"}'
expect_problem 401
TOK_REV=$(srv_token "$ca" revoker tls-server --allow-revoke)
api POST "$API/api/v1/certificates/$S1/revoke" \
    -H "Authorization: Bearer $TOK_REV" "${json[@]}" \
    --data-binary '{"reason":"noSuchReason"}'
expect_problem 400 'reason'
api POST "$API/api/v1/certificates/0BADC0FFEE/revoke" \
    -H "Authorization: Bearer $TOK_REV" "${json[@]}" \
    --data-binary '{"reason":"superseded"}'
expect_problem 404
# Revoke rights stop at the token's name rules: www.* is not under app.*.
TOK_APP_REV=$(srv_token "$ca" app-revoker tls-server --allow-revoke \
    --dns-suffixes "app.$SRV_DOMAIN")
api POST "$API/api/v1/certificates/$S1/revoke" \
    -H "Authorization: Bearer $TOK_APP_REV" "${json[@]}" \
    --data-binary '{"reason":"superseded"}'
expect_problem 403 'may not revoke'
expect_ok "$CERTKEEP" show --home "$ca" "$S1"
assert_grep 'issued' "$LAST_OUT" "certkeep show $S1 after refused revocations"
ok "403 without rights or outside the token's names, 401 without a token, 400 bad reason, 404 unknown"

say "the audit log"
assert_eq "$N_CERTS" "$(count_certs "$ca")" "certificates at the end"
audit_verify_ok "$ca"
srv_stop "$ca"
ok "intact; stopped"
