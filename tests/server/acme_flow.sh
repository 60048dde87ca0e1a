#!/usr/bin/env bash
# acme_flow.sh - complete ACME flows with the server validating challenges
# itself (acme_flow.py runs the DNS server, the http-01 and tls-alpn-01
# responders on 127.0.0.1 that [acme] points at): http-01, dns-01 (a
# wildcard) and tls-alpn-01 (a name and an address), finalize and its CSR
# checks, download, challenges answered wrongly or not at all, ARI, and
# revocation by the ordering account, by the certificate's key and
# refused to others. Then: the certificates verify, OCSP and the CRL say
# revoked, every step is audited, the ACME state survives a restart, and
# the rate limits refuse with rateLimited.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

command -v python3 >/dev/null 2>&1 || fail "this test needs python3"
if ! python3 -c 'import cryptography' 2>/dev/null; then
	echo "SKIP: python3 has no 'cryptography' package"
	exit 77
fi

free_port() {	# free_port udp|tcp: a port the kernel would give now
	python3 -c 'import socket,sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}

ca="$T/ca"
srv_init "$ca"
conf_set "$ca" profile.tls-server allow_wildcard yes
dns_port=$(free_port udp)
http_port=$(free_port tcp)
tls_port=$(free_port tcp)
conf_set "$ca" acme dns_servers "127.0.0.1:$dns_port"
conf_set "$ca" acme http01_port "$http_port"
conf_set "$ca" acme tlsalpn01_port "$tls_port"
conf_set "$ca" acme validation_timeout 5
conf_set "$ca" acme validation_allow_loopback true	# the responders are here
srv_start "$ca"
ok "certkeepd serves $API"

say "the ACME flows"
out="$T/out"
mkdir -p "$out"
rc=0
SRV_DOMAIN="$SRV_DOMAIN" python3 "$(dirname "${BASH_SOURCE[0]}")/acme_flow.py" \
    "$API" "$SRV_CA" "$dns_port" "$http_port" "$tls_port" "$out" \
    >"$T/flow.out" 2>&1 || rc=$?
cat "$T/flow.out"
[[ $rc -eq 0 ]] || fail "the ACME flows failed (exit $rc)"

say "the certificates verify"
for f in leaf1 wild alpn; do
	# leaf first, then the chain: split the download
	awk -v d="$out/$f" '/BEGIN CERT/{n++} {print > (d "." n ".pem")}' \
	    "$out/$f.pem"
	run openssl verify -CAfile "$SRV_CA" "$out/$f.1.pem"
	[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl verify $f"
	cmp -s <(openssl x509 -in "$out/$f.2.pem") <(openssl x509 -in "$SRV_CA") ||
	    fail "$f: the chain is not the CA certificate"
done
ok "openssl verify accepts the three certificates; the chain is the CA's"
openssl x509 -in "$out/alpn.1.pem" -noout -ext subjectAltName |
    grep -q "IP Address:127.0.0.1" || fail "no IP address in the alpn certificate"
ok "the address identifier is an iPAddress subjectAltName"

say "revocation is published"
for s in "$(cat "$out/revoked1.serial")" "$(cat "$out/revoked2.serial")"; do
	run openssl ocsp -url "$PUB/ocsp" -issuer "$SRV_CA" -serial "0x$s" \
	    -CAfile "$SRV_CA" -timeout 20
	grep -q ": revoked" "$LAST_OUT" || fail_cmd "OCSP does not say revoked for $s"
done
ok "OCSP says revoked for both"
wait_until 10 bash -c "curl -sf '$PUB/crl/ca.crl' | openssl crl -inform DER -noout -text | grep -q \"$(cat "$out/revoked2.serial")\"" ||
    fail "the CRL does not list the certificate revoked by key"
ok "the CRL lists it"

say "audit"
for a in acme-challenge-start acme-challenge-valid acme-order-finalize \
    acme-order-valid; do
	n=$(count_audit "$ca" ok "$a")
	[[ $n -ge 4 ]] || fail "only $n '$a' audit entries"
done
n=$(count_audit "$ca" failed acme-challenge-invalid)
assert_eq 2 "$n" "audited failed challenges"
n=$(count_audit "$ca" ok revoke)
assert_eq 3 "$n" "audited revocations"
n=$(count_audit "$ca" refused revoke)
[[ $n -ge 2 ]] || fail "refused revocations audited: $n"
ok "challenges, finalizations, revocations and refusals audited"

say "the state survives a restart"
srv_stop "$ca"
srv_stopped_cleanly "$ca"
srv_start "$ca"
n=$(sqlite3 "$ca/store.db" "SELECT count(*) FROM acme_orders WHERE status = 'valid'" 2>/dev/null || echo x)
[[ "$n" =~ ^[0-9]+$ && $n -ge 4 ]] || fail "valid orders after restart: $n"
n=$(sqlite3 "$ca/store.db" "SELECT count(*) FROM acme_orders WHERE status = 'processing'" 2>/dev/null || echo x)
assert_eq 0 "$n" "orders left processing"
ok "$(sqlite3 "$ca/store.db" "SELECT count(*) FROM acme_orders") orders kept, none processing"
srv_stop "$ca"

say "rate limits"
conf_set "$ca" acme orders_per_hour 2
conf_set "$ca" acme certs_per_name_per_week 1
srv_start "$ca"
rc=0
SRV_DOMAIN="$SRV_DOMAIN" python3 "$(dirname "${BASH_SOURCE[0]}")/acme_flow.py" \
    --limits "$API" "$SRV_CA" >"$T/limits.out" 2>&1 || rc=$?
cat "$T/limits.out"
[[ $rc -eq 0 ]] || fail "the rate limit checks failed (exit $rc)"
srv_stop "$ca"

say "external account binding required"
conf_set "$ca" acme eab_required true
srv_start "$ca"
rc=0
python3 "$(dirname "${BASH_SOURCE[0]}")/acme_flow.py" --eab-required "$API" \
    "$SRV_CA" >"$T/eab.out" 2>&1 || rc=$?
cat "$T/eab.out"
[[ $rc -eq 0 ]] || fail "the EAB checks failed (exit $rc)"
srv_stop "$ca"
srv_stopped_cleanly "$ca"
ok "stopped"
