#!/usr/bin/env bash
# approvals: profiles that need a certificate manager's approval
# (docs/roles.md, "Approvals").
#
# A REST request under an approvals = 1 profile is answered 202 with a
# request to poll and nothing is signed; the request is listed, denied
# with a reason (the poll says so) or approved (the poll returns a
# certificate that verifies); a request cannot be decided twice; the
# requester cannot approve their own request; an ACME order under such a
# profile stays processing (Retry-After) until approved, then is valid
# (invalid, with the reason, when denied);
# an approved request a stop left unissued is issued once at the next
# start. As root, with OS users: approvals = 2 needs two distinct
# certificate managers (the same one twice is refused), other roles are
# refused and audited. Without root that part is skipped.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

for c in jq sqlite3; do
	command -v "$c" >/dev/null 2>&1 || { echo "SKIP: no $c"; exit 77; }
done

# profile_copy HOME FROM TO KEY=VALUE...: a new profile TO like FROM.
profile_copy() {
	local home=$1 from=$2 to=$3 kv
	shift 3
	awk -v sec="[profile.$from]" '
	/^\[/ { insec = ($0 == sec); next }
	insec && /=/ { print }' "$home/certkeep.conf" >"$T/.prof"
	[[ -s "$T/.prof" ]] || fail "no profile $from in $home"
	{ echo; echo "[profile.$to]"; cat "$T/.prof"; } >>"$home/certkeep.conf"
	for kv in "$@"; do
		conf_set "$home" "profile.$to" "${kv%%=*}" "${kv#*=}"
	done
}

certs_in() { sqlite3 "$1/store.db" "SELECT count(*) FROM certs"; }
# certkeepd issues itself a TLS certificate at every start: these count
# only those of the approvals profiles.
approved_certs() {
	sqlite3 "$1/store.db" "SELECT count(*) FROM certs WHERE profile LIKE \
'tls-approve%'"
}

# post_request NAME PROFILE: a REST request for NAME.certkeep.test; sets
# $RQ_ID (202 expected).
post_request() {
	srv_csr "$T/$1.csr" "$1.$SRV_DOMAIN"
	json_body "$2" "$T/$1.csr" >"$T/$1.json"
	api POST "$API/api/v1/certificates" -H "Authorization: Bearer $TOK" \
	    -H 'Content-Type: application/json' --data-binary "@$T/$1.json" \
	    -D "$T/$1.hdr"
	[[ "$CODE" == 202 ]] || fail "POST under $2: HTTP $CODE, not 202: $(head -c 300 "$BODY")"
	RQ_ID=$(jq -r .id "$BODY")
	[[ "$RQ_ID" =~ ^[0-9]+$ ]] || fail "202 without a request id: $(cat "$BODY")"
	[[ "$(jq -r .status "$BODY")" == pending ]] || fail "202 not pending"
	grep -qi "^location: /api/v1/requests/$RQ_ID"$'\r'"\?$" "$T/$1.hdr" ||
	    fail "no Location of the request: $(cat "$T/$1.hdr")"
	grep -qi '^retry-after: [0-9]' "$T/$1.hdr" || fail "no Retry-After"
}

poll() {	# poll ID: GET /api/v1/requests/ID; the body in $BODY
	api GET "$API/api/v1/requests/$1" -H "Authorization: Bearer $TOK"
	[[ "$CODE" == 200 ]] || fail "poll of request $1: HTTP $CODE: $(head -c 300 "$BODY")"
}

ca="$T/ca"
srv_init "$ca"
profile_copy "$ca" tls-server tls-approve approvals=1
profile_copy "$ca" tls-server tls-approve2 approvals=2
conf_set "$ca" acme profile tls-approve
srv_start "$ca"
TOK=$(srv_token "$ca" approvals "tls-approve,tls-approve2,tls-server")
OTHER=$(srv_token "$ca" other "tls-approve")

say "REST under approvals = 1: 202, pending, nothing signed"
before=$(certs_in "$ca")
post_request r1 tls-approve
R1=$RQ_ID
assert_eq "$before" "$(certs_in "$ca")" "certs after a request awaiting approval"
assert_eq 1 "$(jq '.approvals_needed' "$BODY")" "approvals_needed"
poll "$R1"
assert_eq pending "$(jq -r .status "$BODY")" "the poll of a new request"
api GET "$API/api/v1/requests/$R1" -H "Authorization: Bearer $OTHER"
assert_eq 404 "$CODE" "another token polling the request"
api GET "$API/api/v1/requests/$R1"
assert_eq 401 "$CODE" "an unauthenticated poll"
assert_grep " token:approvals +request +ok +request $R1 " \
    <(ck audit show --home "$ca") "the request is audited"
ok "request $R1 pending; only its requester sees it"

say "listed; denied with a reason"
expect_ok ck request list --home "$ca"
assert_grep "^$R1 +pending .* tls-approve +0/1 +token:approvals " \
    "$LAST_OUT" "request list"
expect_ok ck request list --home "$ca" --status denied
assert_no_grep "^$R1 " "$LAST_OUT" "the pending one among the denied"
run ck request deny --home "$ca" "$R1"
assert_eq 2 "$LAST_RC" "deny without --reason is a usage error"
expect_ok ck request deny --home "$ca" "$R1" --reason "not our host"
poll "$R1"
assert_eq denied "$(jq -r .status "$BODY")" "the poll after the denial"
assert_eq "not our host" "$(jq -r .reason "$BODY")" "the denial's reason"
expect_fail "request $R1 is denied, not pending" \
    ck request approve --home "$ca" "$R1"
expect_ok ck request show --home "$ca" "$R1"
assert_grep "^denied: .*not our host" "$LAST_OUT" "request show"
assert_eq "$before" "$(certs_in "$ca")" "certs after the denial"

say "another one approved: the poll returns a certificate that verifies"
post_request r2 tls-approve
R2=$RQ_ID
expect_ok ck request approve --home "$ca" "$R2" --reason "ticket 42"
assert_grep "Request $R2 approved \\(1 of 1\\) and issued: serial [0-9A-F]+" \
    "$LAST_OUT" "approve's report"
poll "$R2"
assert_eq issued "$(jq -r .status "$BODY")" "the poll after the approval"
jq -r .certificate "$BODY" >"$T/r2.pem"
jq -r .chain "$BODY" >"$T/r2.chain"
ossl_verify "$SRV_CA" "$T/r2.chain" "$T/r2.pem"
[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl verify of the approved certificate"
assert_eq "$(jq -r .serial "$BODY")" "$(serial_of "$T/r2.pem")" "serial"
openssl x509 -in "$T/r2.pem" -noout -ext subjectAltName >"$T/r2.san"
assert_grep "DNS:r2.$SRV_DOMAIN" "$T/r2.san" "the certificate's name"
assert_eq $((before + 1)) "$(certs_in "$ca")" "certs after the approval"
expect_fail "request $R2 is issued, not pending" \
    ck request approve --home "$ca" "$R2"
ck audit show --home "$ca" >"$T/audit1.txt"
assert_grep " approve +ok +request $R2 -- approval 1 of 1: ticket 42" \
    "$T/audit1.txt" "the approval is audited with its reason"
assert_grep " token:approvals +issue +ok +$(jq -r .serial "$BODY") " \
    "$T/audit1.txt" "the issuance is audited for the requester"
assert_grep " deny +ok +request $R1 -- not our host" "$T/audit1.txt" \
    "the denial is audited"
assert_grep " approve +refused +request $R2 -- request $R2 is issued" \
    "$T/audit1.txt" "the refused second approval is audited"
ok "approved, issued once, verified"

say "the requester cannot approve their own request"
srv_csr "$T/own.csr" "own.$SRV_DOMAIN"
run ck issue --home "$ca" --profile tls-approve --csr - <"$T/own.csr"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep issue under tls-approve"
OWN=$(head -n 1 "$LAST_OUT")
[[ "$OWN" =~ ^[0-9]+$ ]] || fail_cmd "certkeep issue printed no request id"
assert_grep "request $OWN waits for 1 certificate manager approval" \
    "$LAST_ERR" "certkeep issue's note"
expect_fail "a certificate manager cannot approve their own request" \
    ck request approve --home "$ca" "$OWN"
expect_ok ck request show --home "$ca" "$OWN"
assert_grep "^status: +pending" "$LAST_OUT" "still pending"

say "ACME under an approvals profile: processing, then valid"
if python3 -c 'import cryptography' 2>/dev/null; then
	cat >"$T/acme_wait.py" <<'EOF'
import json, sqlite3, sys, time
sys.path.insert(0, sys.argv[3])
from acme_client import Client, Key, expect, new_order, pag, fail, ok
api, ca, _, store, name, out, want = sys.argv[1:8]
c = Client(api, ca)
st, hd, data = c.http("GET", api + "/acme/directory")
c.dir = json.loads(data)
k = Key("ES256")
hd, _ = expect(c.post(c.dir["newAccount"], c.jws(k, c.dir["newAccount"],
               {"termsOfServiceAgreed": True})), 201, "newAccount")
kid = hd["Location"]
hd, o = expect(new_order(c, k, kid, [("dns", name)]), 201, "newOrder")
aid = o["authorizations"][0].rsplit("/", 1)[1]
db = sqlite3.connect(store, timeout=30)
with db:
    db.execute("UPDATE acme_authzs SET status = 'valid' WHERE id = ?",
               (aid,))
db.close()
hd, o = expect(new_order(c, k, kid, [("dns", name)]), 201, "newOrder again")
url = hd["Location"]
if o["status"] != "ready":
    fail("order not ready: %s" % o)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
ck = ec.generate_private_key(ec.SECP256R1())
csr = x509.CertificateSigningRequestBuilder().subject_name(
    x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
).add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                False).sign(ck, hashes.SHA256())
der = csr.public_bytes(serialization.Encoding.DER)
import base64
b = base64.urlsafe_b64encode(der).rstrip(b"=").decode()
hd, o = expect(c.post(o["finalize"], c.jws(k, o["finalize"], {"csr": b},
               kid=kid)), 200, "finalize")
if o["status"] != "processing" or not hd.get("Retry-After"):
    fail("finalize under approvals: %s, Retry-After %s" %
         (o, hd.get("Retry-After")))
ok("finalize: processing, Retry-After %s" % hd["Retry-After"])
print("WAITING", flush=True)
deadline = time.time() + 90
while time.time() < deadline:
    hd, o = expect(pag(c, k, kid, url), 200, "order poll")
    if o["status"] != "processing":
        break
    if not hd.get("Retry-After"):
        fail("a processing order without Retry-After")
    time.sleep(0.5)
if o["status"] != want:
    fail("order after the decision: %s" % o)
if want == "invalid":
    err = o.get("error", {})
    if not err.get("type", "").endswith(":unauthorized") or \
            "denied: wrong team" not in err.get("detail", ""):
        fail("the denied order's error: %s" % err)
    ok("order invalid after the denial: %s" % err["detail"])
    sys.exit(0)
st, hd, data = c.post(o["certificate"], c.jws(k, o["certificate"], None,
                      kid=kid))
if st != 200:
    fail("certificate download: %d" % st)
open(out, "wb").write(data)
ok("order valid after the approval; certificate downloaded")
EOF
	python3 "$T/acme_wait.py" "$API" "$SRV_CA" \
	    "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" "$ca/store.db" \
	    "acme1.$SRV_DOMAIN" "$T/acme1.pem" valid >"$T/acme.out" 2>&1 &
	APID=$!
	bg_track "$APID"
	wait_until 60 grep -qs WAITING "$T/acme.out" ||
	    { cat "$T/acme.out"; fail "the ACME client did not get to wait"; }
	sleep 2
	grep -q '^   ok: order valid' "$T/acme.out" &&
	    fail "the order became valid before any approval"
	AID=$(sqlite3 "$ca/store.db" "SELECT id FROM requests WHERE \
acme_order IS NOT NULL ORDER BY id DESC LIMIT 1")
	[[ "$AID" =~ ^[0-9]+$ ]] || fail "no request for the ACME order"
	expect_ok ck request approve --home "$ca" "$AID"
	rc=0
	wait "$APID" || rc=$?
	cat "$T/acme.out"
	[[ $rc -eq 0 ]] || fail "the ACME client failed (exit $rc)"
	ossl_verify "$SRV_CA" "$T/acme1.pem" "$T/acme1.pem"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl verify of the ACME certificate"
	ok "ACME order waited for approval request $AID, then valid"
	python3 "$T/acme_wait.py" "$API" "$SRV_CA" \
	    "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" "$ca/store.db" \
	    "acme2.$SRV_DOMAIN" "$T/acme2.pem" invalid >"$T/acme2.out" 2>&1 &
	APID=$!
	bg_track "$APID"
	wait_until 60 grep -qs WAITING "$T/acme2.out" ||
	    { cat "$T/acme2.out"; fail "the ACME client did not get to wait"; }
	AID2=$(sqlite3 "$ca/store.db" "SELECT id FROM requests WHERE \
acme_order IS NOT NULL ORDER BY id DESC LIMIT 1")
	[[ "$AID2" != "$AID" ]] || fail "no request for the second ACME order"
	expect_ok ck request deny --home "$ca" "$AID2" --reason "wrong team"
	rc=0
	wait "$APID" || rc=$?
	cat "$T/acme2.out"
	[[ $rc -eq 0 ]] || fail "the second ACME client failed (exit $rc)"
	ok "ACME order of denied request $AID2: invalid, with the reason"
else
	echo "   skip: python3 has no 'cryptography' package (ACME part)"
fi

say "an approved request a stop left unissued is issued once at start"
post_request r3 tls-approve
R3=$RQ_ID
srv_stop "$ca"
sqlite3 "$ca/store.db" "UPDATE requests SET status = 'approved' WHERE \
id = $R3" || fail "cannot mark request $R3 approved"
n0=$(approved_certs "$ca")
srv_start "$ca"
poll "$R3"
assert_eq issued "$(jq -r .status "$BODY")" "the left request after a start"
assert_eq $((n0 + 1)) "$(approved_certs "$ca")" "certs after the settling start"
srv_stop "$ca"
srv_start "$ca"
assert_eq $((n0 + 1)) "$(approved_certs "$ca")" "certs after one more start"
ok "issued exactly once"

say "the profile as it is now: a request it no longer allows is denied"
post_request r4 tls-approve
R4=$RQ_ID
srv_stop "$ca"
conf_set "$ca" profile.tls-approve dns_suffixes nowhere.example
srv_start "$ca"
expect_fail "request $R4 is approved, but request $R4 is denied: profile tls-approve no longer allows it" \
    ck request approve --home "$ca" "$R4"
poll "$R4"
assert_eq denied "$(jq -r .status "$BODY")" "a request the profile refuses now"
srv_stop "$ca"
conf_set "$ca" profile.tls-approve dns_suffixes "$SRV_DOMAIN"

say "without certkeepd the CLI decides, and issues, itself"
expect_ok ck request list --home "$ca" --status pending
assert_grep "^$OWN +pending " "$LAST_OUT" "listed by the CLI itself"
sqlite3 "$ca/store.db" "UPDATE requests SET requester_os_user = NULL WHERE \
id = $OWN" || fail "cannot reset request $OWN's requester"
n0=$(approved_certs "$ca")
expect_ok ck request approve --home "$ca" "$OWN" --passphrase-fd 3 3<"$PWFILE"
assert_grep "Request $OWN approved \\(1 of 1\\) and issued" "$LAST_OUT" \
    "a local approval"
assert_eq $((n0 + 1)) "$(approved_certs "$ca")" "certs after the local approval"
srv_start "$ca"

if [[ $(id -u) -ne 0 ]] || ! command -v runuser >/dev/null 2>&1; then
	echo "   skip: distinct certificate managers need root (OS users)"
	srv_stop "$ca"
	ok "done"
	exit 0
fi

say "approvals = 2: two distinct certificate managers"
for u in cka-cm1 cka-cm2 cka-aud; do
	getent passwd "$u" >/dev/null 2>&1 ||
	    useradd --system --no-create-home --shell /usr/sbin/nologin \
	    "$u" >/dev/null 2>&1 || true
	getent passwd "$u" >/dev/null 2>&1 || fail "cannot create user $u"
done
as() { local u=$1; shift; runuser -u "$u" -- "$@"; }
expect_ok ck operator add --home "$ca" --name cm1 --role cert-manager \
    --os-user cka-cm1
expect_ok ck operator add --home "$ca" --name cm2 --role cert-manager \
    --os-user cka-cm2
expect_ok ck operator add --home "$ca" --name aud1 --role auditor \
    --os-user cka-aud
post_request r5 tls-approve2
R5=$RQ_ID
assert_eq 2 "$(jq '.approvals_needed' "$BODY")" "approvals_needed"
n0=$(certs_in "$ca")
expect_fail "request-list needs the cert-manager role; aud1 is auditor" \
    as cka-aud "$CERTKEEP" request list --home "$ca"
expect_fail "approve needs the cert-manager role; aud1 is auditor" \
    as cka-aud "$CERTKEEP" request approve --home "$ca" "$R5"
expect_fail "approve needs the cert-manager role; OS user $(stat -c %U "$ca") is no operator" \
    ck request approve --home "$ca" "$R5"
expect_ok as cka-cm1 "$CERTKEEP" request approve --home "$ca" "$R5" \
    --reason "looks right"
assert_grep "Request $R5: approval 1 of 2 recorded" "$LAST_OUT" "first"
poll "$R5"
assert_eq pending "$(jq -r .status "$BODY")" "after one of two approvals"
assert_eq 1 "$(jq .approvals "$BODY")" "approvals in the poll"
expect_fail "cm1 approved request $R5 already" \
    as cka-cm1 "$CERTKEEP" request approve --home "$ca" "$R5"
assert_eq "$n0" "$(certs_in "$ca")" "certs before the second approval"
expect_ok as cka-cm1 "$CERTKEEP" request list --home "$ca"
assert_grep "^$R5 +pending .* 1/2 " "$LAST_OUT" "1/2 in the list"
expect_ok as cka-cm2 "$CERTKEEP" request approve --home "$ca" "$R5"
assert_grep "Request $R5 approved \\(2 of 2\\) and issued" "$LAST_OUT" \
    "second"
poll "$R5"
assert_eq issued "$(jq -r .status "$BODY")" "after two approvals"
jq -r .certificate "$BODY" >"$T/r5.pem"
ossl_verify "$SRV_CA" "$SRV_CA" "$T/r5.pem"
[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl verify (approvals = 2)"
expect_fail "request $R5 is issued, not pending" \
    as cka-cm2 "$CERTKEEP" request deny --home "$ca" "$R5" --reason late
as cka-aud "$CERTKEEP" audit show --home "$ca" >"$T/audit2.txt" ||
    fail "audit show as the auditor"
assert_grep " cm1/cert-manager +approve +ok +request $R5 -- approval 1 of 2: looks right" \
    "$T/audit2.txt" "the first approval names operator and role"
assert_grep " cm2/cert-manager +approve +ok +request $R5 -- approval 2 of 2" \
    "$T/audit2.txt" "the second approval"
assert_grep " cm1/cert-manager +approve +refused +request $R5 -- cm1 approved request $R5 already" \
    "$T/audit2.txt" "the same approver twice, audited"
assert_grep " aud1/auditor +approve +refused +request $R5 -- approve needs the cert-manager role" \
    "$T/audit2.txt" "the wrong role, audited"
assert_grep " aud1/auditor +request-list +refused " "$T/audit2.txt" \
    "the wrong role listing, audited"

say "an operator cannot approve what they asked for"
owner=$(stat -c %U "$ca")
expect_ok ck operator add --home "$ca" --name svc --role cert-manager \
    --os-user "$owner"
srv_csr "$T/svc.csr" "svc.$SRV_DOMAIN"
chmod 644 "$T/svc.csr"
run as "$owner" "$CERTKEEP" issue --home "$ca" --profile tls-approve \
    --csr "$T/svc.csr"
[[ $LAST_RC -eq 0 ]] || fail_cmd "certkeep issue as $owner"
SVC=$(head -n 1 "$LAST_OUT")
expect_fail "a certificate manager cannot approve their own request" \
    as "$owner" "$CERTKEEP" request approve --home "$ca" "$SVC"
expect_ok as cka-cm1 "$CERTKEEP" request approve --home "$ca" "$SVC"
ok "svc's request approved by cm1, not by svc"
# The owner is an operator now (not an auditor): stopped without
# srv_stop's audit checks.
expect_ok ck service stop --home "$ca"
! srv_running "$ca" || fail "certkeepd still runs"
ok "done"
