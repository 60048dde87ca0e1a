#!/usr/bin/env bash
# acme_lego.sh - lego (Debian's package) gets certificates from certkeepd's
# ACME server: registration (and with an external account binding), a
# single name and three names by http-01 with lego's own server, a name
# and its wildcard by dns-01 (the exec provider writing TXT records into
# the test DNS server), a name by tls-alpn-01 with lego's own responder,
# 'openssl verify' of every chain, renewal, revocation seen by OCSP and
# the CRL, a name outside the profile refused with rejectedIdentifier and
# a wrong http-01 answer failing validation. See acme_lib.sh.
ACME_CLIENT=lego
source "$(dirname "${BASH_SOURCE[0]}")/acme_lib.sh"

acme_start
export LEGO_CA_CERTIFICATES=$TLS_CA
export LEGO_DISABLE_CNAME_SUPPORT=true

P="$T/lego"
LOG="$T/lego.log"
base=(--server "$DIR_URL" --accept-tos --email "admin@$ACME_DOMAIN"
    --path "$P" --key-type ec256 --cert.timeout 60)
http=(--http --http.port "127.0.0.1:$HTTP01_PORT")

# lego_run WHAT ARGS...: lego, its output kept in $LOG; fails the test
# (showing the log) when lego fails.
lego_run() {
	local what=$1
	shift
	if ! timeout 180 lego "$@" >"$LOG" 2>&1; then
		show_log "$LOG"
		fail "lego: $what"
	fi
}

# lego_fails ERE ARGS...: lego must fail, its output matching ERE.
lego_fails() {
	local re=$1 rc=0
	shift
	timeout 180 lego "$@" >"$LOG" 2>&1 || rc=$?
	if [[ $rc -eq 0 || $rc -eq 124 ]]; then
		show_log "$LOG"
		fail "lego exited $rc where it must fail: $*"
	fi
	grep -Eq -- "$re" "$LOG" || {
		show_log "$LOG"
		fail "lego's error does not match /$re/"
	}
}

crt() { echo "$P/certificates/$1.crt"; }
issuer() { echo "$P/certificates/$1.issuer.crt"; }

say "register and order one name (http-01)"
lego_run "run a.$ACME_DOMAIN" "${base[@]}" "${http[@]}" -d "a.$ACME_DOMAIN" run
check_cert "$(crt "a.$ACME_DOMAIN")" "$(issuer "a.$ACME_DOMAIN")" "a.$ACME_DOMAIN"
check_good "$(crt "a.$ACME_DOMAIN")"
compgen -G "$P/accounts/*/admin@$ACME_DOMAIN/account.json" >/dev/null ||
    fail "lego stored no account"
ok "account registered; a.$ACME_DOMAIN issued, verified, good"

say "three names (http-01)"
lego_run "run b, c, d" "${base[@]}" "${http[@]}" -d "b.$ACME_DOMAIN" \
    -d "c.$ACME_DOMAIN" -d "d.$ACME_DOMAIN" run
check_cert "$(crt "b.$ACME_DOMAIN")" "$(issuer "b.$ACME_DOMAIN")" \
    "b.$ACME_DOMAIN" "c.$ACME_DOMAIN" "d.$ACME_DOMAIN"
ok "b, c, d.$ACME_DOMAIN in one certificate"

say "a name and its wildcard (dns-01, exec provider)"
hook_script "$T/dns-hook" '
# lego exec provider: present|cleanup FQDN VALUE
case "$1" in
present) _mgmt_hook /set-txt "{\"host\":\"$2\",\"value\":\"$3\"}" ;;
cleanup) _mgmt_hook /clear-txt "{\"host\":\"$2\"}" ;;
*) exit 0 ;;
esac'
# The exec provider waits a minute between two records of one name
# (the name and its wildcard) unless told otherwise.
EXEC_PATH="$T/dns-hook" EXEC_POLLING_INTERVAL=1 EXEC_PROPAGATION_TIMEOUT=30 \
    EXEC_SEQUENCE_INTERVAL=1 \
    lego_run "run w, *.w by dns-01" "${base[@]}" --dns exec \
    --dns.resolvers "127.0.0.1:$DNS_PORT" --dns.disable-cp \
    -d "w.$ACME_DOMAIN" -d "*.w.$ACME_DOMAIN" run
check_cert "$(crt "w.$ACME_DOMAIN")" "$(issuer "w.$ACME_DOMAIN")" \
    "w.$ACME_DOMAIN" "*.w.$ACME_DOMAIN"
grep -q "set-txt.*_acme-challenge.w.$ACME_DOMAIN" "$T/hooks.log" ||
    fail "the dns-01 hook did not run"
ok "w.$ACME_DOMAIN and *.w.$ACME_DOMAIN by dns-01"

say "tls-alpn-01"
lego_run "run t by tls-alpn-01" "${base[@]}" --tls \
    --tls.port "127.0.0.1:$TLSALPN_PORT" -d "t.$ACME_DOMAIN" run
check_cert "$(crt "t.$ACME_DOMAIN")" "$(issuer "t.$ACME_DOMAIN")" "t.$ACME_DOMAIN"
ok "t.$ACME_DOMAIN by tls-alpn-01"

say "renew"
old=$(serial_of "$(crt "a.$ACME_DOMAIN")")
cp "$(crt "a.$ACME_DOMAIN")" "$T/a-old.pem"
# Every certificate here (pebble: 5 years) has fewer than 10000 days left.
lego_run "renew a" "${base[@]}" "${http[@]}" -d "a.$ACME_DOMAIN" renew \
    --days 10000 --no-random-sleep
new=$(serial_of "$(crt "a.$ACME_DOMAIN")")
[[ "$new" != "$old" ]] || fail "renew left the same certificate ($old)"
check_cert "$(crt "a.$ACME_DOMAIN")" "$(issuer "a.$ACME_DOMAIN")" "a.$ACME_DOMAIN"
ok "a.$ACME_DOMAIN renewed: $old -> $new"

say "revoke"
cp "$(crt "a.$ACME_DOMAIN")" "$T/a-new.pem"
lego_run "revoke a" "${base[@]}" -d "a.$ACME_DOMAIN" revoke --reason 4
check_revoked "$T/a-new.pem"
check_good "$T/a-old.pem"
ok "the renewed certificate is revoked; the old one is not"

say "a name outside the profile"
lego_fails 'rejectedIdentifier' "${base[@]}" "${http[@]}" -d "$BAD_NAME" run
ok "$BAD_NAME refused with rejectedIdentifier"

if [[ "$ACME_SERVER" == certkeepd ]]; then	# pebble checks no CAA
	say "CAA"
	caa_set "caa-no.$ACME_DOMAIN" other-ca.example
	lego_fails 'error:caa' "${base[@]}" "${http[@]}" -d "caa-no.$ACME_DOMAIN" run
	ok "a CAA record naming another CA refuses the name (caa)"
	caa_set "caa-yes.$ACME_DOMAIN" "$CAA_IDENTITY"
	lego_run "run caa-yes" "${base[@]}" "${http[@]}" -d "caa-yes.$ACME_DOMAIN" run
	check_cert "$(crt "caa-yes.$ACME_DOMAIN")" \
	    "$(issuer "caa-yes.$ACME_DOMAIN")" "caa-yes.$ACME_DOMAIN"
	ok "a CAA record naming $CAA_IDENTITY allows it"
fi

say "a wrong http-01 answer"
wrong_responder_start "$HTTP01_PORT"
lego_fails 'unauthorized|incorrectResponse' "${base[@]}" --http \
    --http.port "127.0.0.1:$(free_port)" -d "x.$ACME_DOMAIN" run
wrong_responder_stop
[[ ! -e "$(crt "x.$ACME_DOMAIN")" ]] || fail "a certificate for x despite the wrong answer"
ok "validation failed on a wrong key authorization"

say "external account binding"
# eab_run DIR EMAIL NAME [EAB options]: register and order NAME (http-01).
eab_run() {
	local p=$1 email=$2 name=$3
	shift 3
	lego_run "run $name" --server "$DIR_URL" --accept-tos --email "$email" \
	    --path "$p" "$@" "${http[@]}" -d "$name" run
	check_cert "$p/certificates/$name.crt" \
	    "$p/certificates/$name.issuer.crt" "$name"
}
acme_eab_create
eab_run "$T/lego-eab" "eab@$ACME_DOMAIN" "e.$ACME_DOMAIN" \
    --eab --kid="$EAB_KID" --hmac="$EAB_KEY"
eab_bound "$EAB_KID" || fail "the server did not bind $EAB_KID"
ok "account bound to $EAB_KID; e.$ACME_DOMAIN issued"

say "external account binding required"
acme_require_eab
lego_fails 'externalAccountRequired|[Ee]xternal [Aa]ccount' --server "$DIR_URL" \
    --accept-tos --email "no-eab@$ACME_DOMAIN" --path "$T/lego-noeab" \
    "${http[@]}" -d "f.$ACME_DOMAIN" run
ok "an account without a binding is refused"
acme_eab_create
eab_run "$T/lego-eab2" "eab2@$ACME_DOMAIN" "f.$ACME_DOMAIN" \
    --eab --kid="$EAB_KID" --hmac="$EAB_KEY"
ok "with $EAB_KID: f.$ACME_DOMAIN issued"

if [[ "$ACME_SERVER" == certkeepd ]]; then
	srv_stop "$CA_HOME"
	ok "stopped"
fi
