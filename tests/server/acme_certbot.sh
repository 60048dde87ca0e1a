#!/usr/bin/env bash
# acme_certbot.sh - certbot (Debian's package) gets certificates from
# certkeepd's ACME server: registration (and with an external account
# binding), a single name and three names by http-01 in standalone mode,
# a name and its wildcard by dns-01 through manual hooks writing TXT
# records into the test DNS server, 'openssl verify' of every chain,
# 'certbot renew --force-renewal', revocation seen by OCSP and the CRL, a
# name outside the profile refused with rejectedIdentifier and a wrong
# http-01 answer failing validation. certbot has no tls-alpn-01. See
# acme_lib.sh.
ACME_CLIENT=certbot
source "$(dirname "${BASH_SOURCE[0]}")/acme_lib.sh"

acme_start
export REQUESTS_CA_BUNDLE=$TLS_CA

C="$T/certbot"
LOG="$T/certbot.log"
dirs() {	# the directories of one certbot installation
	echo --config-dir "$1/conf" --work-dir "$1/work" --logs-dir "$1/logs"
}
# shellcheck disable=SC2207
base=(--server "$DIR_URL" $(dirs "$C") --non-interactive --agree-tos
    --no-eff-email --key-type ecdsa)
standalone=(--standalone --preferred-challenges http
    --http-01-address 127.0.0.1 --http-01-port "$HTTP01_PORT")

# cb WHAT ARGS...: certbot, its output kept in $LOG; fails the test
# (showing the output) when certbot fails.
cb() {
	local what=$1
	shift
	if ! timeout 180 certbot "$@" >"$LOG" 2>&1; then
		show_log "$LOG"
		show_log "$C/logs/letsencrypt.log"
		fail "certbot: $what"
	fi
}

# cb_fails ERE ARGS...: certbot must fail, its output matching ERE.
cb_fails() {
	local re=$1 rc=0
	shift
	timeout 180 certbot "$@" >"$LOG" 2>&1 || rc=$?
	if [[ $rc -eq 0 || $rc -eq 124 ]]; then
		show_log "$LOG"
		fail "certbot exited $rc where it must fail: $*"
	fi
	# Debian 12's certbot 2.1 prints only "AttributeError: can't set
	# attribute" for an ACME error raised by a request: on its way out,
	# python 3.11's contextlib sets __traceback__ on the acme Error,
	# which josepy 1.13 makes immutable. The server's problem document is
	# then only in certbot's debug log.
	grep -Eq -- "$re" "$LOG" ||
	    grep -Eq -- "acme.messages.Error: .*($re)" "$C/logs/letsencrypt.log" || {
		show_log "$LOG"
		show_log "$C/logs/letsencrypt.log"
		fail "certbot's error does not match /$re/"
	}
}

live() { echo "$C/conf/live/$1"; }

say "register"
cb register "${base[@]}" -m "admin@$ACME_DOMAIN" register
find "$C/conf/accounts" -name regr.json | grep -q . ||
    fail "certbot stored no account"
ok "account registered"

say "one name (http-01, standalone)"
cb "certonly a" "${base[@]}" certonly "${standalone[@]}" \
    --cert-name a -d "a.$ACME_DOMAIN"
check_cert "$(live a)/cert.pem" "$(live a)/chain.pem" "a.$ACME_DOMAIN"
check_cert "$(live a)/fullchain.pem" "$(live a)/fullchain.pem" "a.$ACME_DOMAIN"
check_good "$(live a)/cert.pem"
ok "a.$ACME_DOMAIN issued, verified, good"

say "three names (http-01, standalone)"
cb "certonly b, c, d" "${base[@]}" certonly "${standalone[@]}" \
    --cert-name bcd -d "b.$ACME_DOMAIN,c.$ACME_DOMAIN,d.$ACME_DOMAIN"
check_cert "$(live bcd)/cert.pem" "$(live bcd)/chain.pem" \
    "b.$ACME_DOMAIN" "c.$ACME_DOMAIN" "d.$ACME_DOMAIN"
ok "b, c, d.$ACME_DOMAIN in one certificate"

say "a name and its wildcard (dns-01, manual hooks)"
hook_script "$T/dns-hook" '
# certbot manual hook: $1 is auth or cleanup; certbot gives the name
# (without "*.") and the TXT value in the environment.
host="_acme-challenge.$CERTBOT_DOMAIN."
case "$1" in
auth) _mgmt_hook /set-txt "{\"host\":\"$host\",\"value\":\"$CERTBOT_VALIDATION\"}" ;;
cleanup) _mgmt_hook /clear-txt "{\"host\":\"$host\"}" ;;
esac'
cb "certonly w, *.w" "${base[@]}" certonly --manual \
    --preferred-challenges dns --manual-auth-hook "$T/dns-hook auth" \
    --manual-cleanup-hook "$T/dns-hook cleanup" \
    --cert-name w -d "w.$ACME_DOMAIN" -d "*.w.$ACME_DOMAIN"
check_cert "$(live w)/cert.pem" "$(live w)/chain.pem" \
    "w.$ACME_DOMAIN" "*.w.$ACME_DOMAIN"
grep -q "set-txt.*_acme-challenge.w.$ACME_DOMAIN" "$T/hooks.log" ||
    fail "the dns-01 hook did not run"
ok "w.$ACME_DOMAIN and *.w.$ACME_DOMAIN by dns-01"

say "renew"
cp "$(live a)/cert.pem" "$T/a-old.pem"
old=$(serial_of "$T/a-old.pem")
# The renewal configuration certbot saved (server, standalone, port) is
# what it uses here.
cb "renew a" renew $(dirs "$C") --non-interactive --cert-name a \
    --force-renewal --no-random-sleep-on-renew
new=$(serial_of "$(live a)/cert.pem")
[[ "$new" != "$old" ]] || fail "renew left the same certificate ($old)"
check_cert "$(live a)/cert.pem" "$(live a)/chain.pem" "a.$ACME_DOMAIN"
ok "a.$ACME_DOMAIN renewed: $old -> $new"

say "revoke"
cp "$(live a)/cert.pem" "$T/a-new.pem"
cb "revoke a" revoke "${base[@]}" --cert-name a --reason superseded \
    --no-delete-after-revoke
check_revoked "$T/a-new.pem"
check_good "$T/a-old.pem"
ok "the renewed certificate is revoked; the old one is not"

say "a name outside the profile"
cb_fails 'rejectedIdentifier' "${base[@]}" certonly "${standalone[@]}" \
    --cert-name bad -d "$BAD_NAME"
ok "$BAD_NAME refused with rejectedIdentifier"

say "a wrong http-01 answer"
wrong_responder_start "$HTTP01_PORT"
cb_fails 'unauthorized|incorrectResponse' "${base[@]}" certonly --standalone \
    --preferred-challenges http --http-01-address 127.0.0.1 \
    --http-01-port "$(free_port)" --cert-name x -d "x.$ACME_DOMAIN"
wrong_responder_stop
[[ ! -e "$(live x)/cert.pem" ]] || fail "a certificate for x despite the wrong answer"
ok "validation failed on a wrong key authorization"

say "external account binding"
# eab_register DIR EMAIL [EAB options] / eab_issue DIR NAME
eab_register() {
	local c=$1 email=$2
	shift 2
	# shellcheck disable=SC2046
	cb "register $email" --server "$DIR_URL" $(dirs "$c") \
	    --non-interactive --agree-tos --no-eff-email -m "$email" "$@" register
}
eab_issue() {
	# shellcheck disable=SC2046
	cb "certonly $2" --server "$DIR_URL" $(dirs "$1") --non-interactive \
	    certonly "${standalone[@]}" --cert-name "$2" -d "$2"
	check_cert "$1/conf/live/$2/cert.pem" "$1/conf/live/$2/chain.pem" "$2"
}
acme_eab_create
eab_register "$T/certbot-eab" "eab@$ACME_DOMAIN" \
    --eab-kid="$EAB_KID" --eab-hmac-key="$EAB_KEY"
eab_issue "$T/certbot-eab" "e.$ACME_DOMAIN"
eab_bound "$EAB_KID" || fail "the server did not bind $EAB_KID"
ok "account bound to $EAB_KID; e.$ACME_DOMAIN issued"

say "external account binding required"
acme_require_eab
# shellcheck disable=SC2046
cb_fails 'externalAccountRequired|[Ee]xternal [Aa]ccount' --server "$DIR_URL" \
    $(dirs "$T/certbot-noeab") --non-interactive --agree-tos --no-eff-email \
    -m "no-eab@$ACME_DOMAIN" register
ok "an account without a binding is refused"
acme_eab_create
eab_register "$T/certbot-eab2" "eab2@$ACME_DOMAIN" \
    --eab-kid="$EAB_KID" --eab-hmac-key="$EAB_KEY"
eab_issue "$T/certbot-eab2" "f.$ACME_DOMAIN"
ok "with $EAB_KID: f.$ACME_DOMAIN issued"

if [[ "$ACME_SERVER" == certkeepd ]]; then
	srv_stop "$CA_HOME"
	ok "stopped"
fi
