#!/usr/bin/env bash
# acme_uacme.sh - uacme (Debian's package) gets certificates from
# certkeepd's ACME server: registration (and with an external account
# binding), a single name and three names by http-01, a name and its
# wildcard by dns-01, an IP address by http-01 (RFC 8738), a name by tls-alpn-01 through ualpn (uacme's
# tls-alpn-01 responder, same package), 'openssl verify' of every chain,
# forced reissue, revocation by the account key and by the certificate's
# key seen by OCSP and the CRL, a name outside the profile refused with
# rejectedIdentifier and a wrong http-01 answer failing validation.
#
# uacme has no web server of its own: its hook script puts the http-01
# answers into the test DNS server's companion HTTP server (challtestsrv
# on the http-01 port), TXT records into its DNS, and tls-alpn-01
# authorizations into ualpn. The hook takes only the challenge type named
# in $WANT (uacme then tries the next one the server offers).
#
# uacme (libcurl with GnuTLS) has no option for the CA to trust: it trusts
# the system bundle. It runs here in a private mount namespace where the
# system bundle is the test CA's certificate, so nothing else on the
# machine sees the change. See acme_lib.sh.
ACME_CLIENT=uacme
ACME_CHALLTEST_HTTP01=1
source "$(dirname "${BASH_SOURCE[0]}")/acme_lib.sh"

BUNDLE=/etc/ssl/certs/ca-certificates.crt
[[ -e "$BUNDLE" ]] || fail "no $BUNDLE (package ca-certificates) to stand in for"
if [[ $(id -u) -eq 0 ]]; then
	NS=(unshare --mount --propagation private)
else
	NS=(unshare --map-root-user --mount --propagation private)
fi
"${NS[@]}" true 2>/dev/null ||
    fail "cannot make a mount namespace (unshare) for uacme's trust store"

acme_start

C="$T/uacme"
LOG="$T/uacme.log"
HOOK="$T/uacme-hook"
ALPN_SOCK="$T/ualpn.sock"

say "ualpn, the tls-alpn-01 responder"
# Connections that are not tls-alpn-01 challenges would go to the backend;
# none come.
ualpn -b "127.0.0.1@$TLSALPN_PORT" -c "127.0.0.1@$(free_port)" -P 0 \
    -s "$ALPN_SOCK" -p "$T/ualpn.pid" -n 1 -v >"$T/ualpn.log" 2>&1 &
bg_track $!
wait_until 10 _port_open "$TLSALPN_PORT" ||
    fail "ualpn does not listen: $(tail -n 3 "$T/ualpn.log")"
ok "ualpn on 127.0.0.1:$TLSALPN_PORT"

hook_script "$HOOK" "
ALPN_SOCK='$ALPN_SOCK'
"'# uacme hook: METHOD TYPE IDENT TOKEN AUTH
method=$1 type=$2 ident=$3 token=$4 auth=$5
echo "$(date +%T) hook $method $type $ident" >>"$HOOKLOG"
if [[ "$method" == begin && "$type" != "${WANT:-http-01}" ]]; then
	exit 1		# decline: uacme tries the next challenge
fi
[[ -n "${WRONG:-}" ]] && auth="wrong.$auth"
case "$method $type" in
"begin http-01")
	_mgmt_hook /add-http01 "{\"token\":\"$token\",\"content\":\"$auth\"}" ;;
"begin dns-01")
	_mgmt_hook /set-txt "{\"host\":\"_acme-challenge.$ident.\",\"value\":\"$auth\"}" ;;
"begin tls-alpn-01")
	# ualpn in client mode exits 1 even after its server said OK.
	r=$(echo "auth $ident $auth" | ualpn -s "$ALPN_SOCK" || true)
	[[ "$r" == OK* ]] ;;
"done http-01"|"failed http-01")
	_mgmt_hook /del-http01 "{\"token\":\"$token\"}" ;;
"done dns-01"|"failed dns-01")
	_mgmt_hook /clear-txt "{\"host\":\"_acme-challenge.$ident.\"}" ;;
"done tls-alpn-01"|"failed tls-alpn-01")
	echo "unauth $ident" | ualpn -s "$ALPN_SOCK" >/dev/null || true ;;
esac'

# ua WHAT ARGS...: uacme in its namespace, the test CA as the system
# bundle; output in $LOG; fails the test (showing the output) when uacme
# fails.
_ua() {
	timeout 180 "${NS[@]}" bash -c \
	    'mount --bind "$1" "$2" && shift 2 && exec uacme "$@"' \
	    uacme "$TLS_CA" "$BUNDLE" -v -c "$C" -a "$DIR_URL" -t EC "$@"
}
ua() {
	local what=$1
	shift
	if ! _ua "$@" >"$LOG" 2>&1; then
		show_log "$LOG"
		fail "uacme: $what"
	fi
}

# ua_fails ERE ARGS...: uacme must fail (exit 2), its output matching ERE.
ua_fails() {
	local re=$1 rc=0
	shift
	_ua "$@" >"$LOG" 2>&1 || rc=$?
	if [[ $rc -ne 2 ]]; then
		show_log "$LOG"
		fail "uacme exited $rc where it must fail: $*"
	fi
	grep -Eq -- "$re" "$LOG" || {
		show_log "$LOG"
		fail "uacme's error does not match /$re/"
	}
}

crt() { echo "$C/$1/cert.pem"; }

say "register"
ua "new" -y new "admin@$ACME_DOMAIN"
[[ -s "$C/private/key.pem" ]] || fail "uacme made no account key"
ok "account registered"

say "one name (http-01)"
WANT=http-01 ua "issue a" -h "$HOOK" issue "a.$ACME_DOMAIN"
check_cert "$(crt "a.$ACME_DOMAIN")" "$(crt "a.$ACME_DOMAIN")" "a.$ACME_DOMAIN"
check_good "$(crt "a.$ACME_DOMAIN")"
grep -q "add-http01" "$T/hooks.log" || fail "the http-01 hook did not run"
ok "a.$ACME_DOMAIN issued, verified, good"

say "three names (http-01)"
WANT=http-01 ua "issue b, c, d" -h "$HOOK" issue "b.$ACME_DOMAIN" \
    "c.$ACME_DOMAIN" "d.$ACME_DOMAIN"
check_cert "$(crt "b.$ACME_DOMAIN")" "$(crt "b.$ACME_DOMAIN")" \
    "b.$ACME_DOMAIN" "c.$ACME_DOMAIN" "d.$ACME_DOMAIN"
ok "b, c, d.$ACME_DOMAIN in one certificate"

say "a name and its wildcard (dns-01)"
WANT=dns-01 ua "issue w, *.w" -h "$HOOK" issue "w.$ACME_DOMAIN" \
    "*.w.$ACME_DOMAIN"
check_cert "$(crt "w.$ACME_DOMAIN")" "$(crt "w.$ACME_DOMAIN")" \
    "w.$ACME_DOMAIN" "*.w.$ACME_DOMAIN"
grep -q "set-txt.*_acme-challenge.w.$ACME_DOMAIN" "$T/hooks.log" ||
    fail "the dns-01 hook did not run"
ok "w.$ACME_DOMAIN and *.w.$ACME_DOMAIN by dns-01"

say "tls-alpn-01 (ualpn)"
WANT=tls-alpn-01 ua "issue t" -h "$HOOK" issue "t.$ACME_DOMAIN"
check_cert "$(crt "t.$ACME_DOMAIN")" "$(crt "t.$ACME_DOMAIN")" "t.$ACME_DOMAIN"
grep -q "hook done tls-alpn-01 t.$ACME_DOMAIN" "$T/hooks.log" ||
    fail "the tls-alpn-01 challenge was not the one completed"
ok "t.$ACME_DOMAIN by tls-alpn-01"

say "an IP address (RFC 8738, http-01)"
WANT=http-01 ua "issue 127.0.0.1" -h "$HOOK" issue 127.0.0.1
run openssl verify -CAfile "$ROOT_CA" -untrusted "$(crt 127.0.0.1)" \
    -purpose sslserver "$(crt 127.0.0.1)"
[[ $LAST_RC -eq 0 ]] || fail_cmd "openssl verify fails for the IP certificate"
openssl x509 -in "$(crt 127.0.0.1)" -noout -ext subjectAltName >"$T/ip-san.txt"
assert_grep '^ *IP Address:127\.0\.0\.1$' "$T/ip-san.txt" "the IP certificate's SAN"
ok "127.0.0.1 issued with an iPAddress SAN"

say "reissue (-f)"
cp "$(crt "a.$ACME_DOMAIN")" "$T/a-old.pem"
old=$(serial_of "$T/a-old.pem")
# Without -f uacme keeps a certificate with more than 30 days left.
rc=0
WANT=http-01 _ua -h "$HOOK" issue "a.$ACME_DOMAIN" >"$LOG" 2>&1 || rc=$?
assert_eq 1 "$rc" "uacme's exit status for a current certificate"
WANT=http-01 ua "issue -f a" -h "$HOOK" -f issue "a.$ACME_DOMAIN"
new=$(serial_of "$(crt "a.$ACME_DOMAIN")")
[[ "$new" != "$old" ]] || fail "-f left the same certificate ($old)"
check_cert "$(crt "a.$ACME_DOMAIN")" "$(crt "a.$ACME_DOMAIN")" "a.$ACME_DOMAIN"
ok "a.$ACME_DOMAIN kept without -f, reissued with it: $old -> $new"

say "revoke with the account key"
cp "$(crt "a.$ACME_DOMAIN")" "$T/a-new.pem"
ua "revoke a" -r 4 revoke "$(crt "a.$ACME_DOMAIN")"
check_revoked "$T/a-new.pem"
check_good "$T/a-old.pem"
ok "the reissued certificate is revoked; the old one is not"

say "revoke with the certificate's key"
cp "$(crt "b.$ACME_DOMAIN")" "$T/bcd.pem"
ua "revoke bcd by its key" revoke "$(crt "b.$ACME_DOMAIN")" \
    "$C/private/b.$ACME_DOMAIN/key.pem"
check_revoked "$T/bcd.pem"
ok "revoked, signed by the certificate's own key"

say "a name outside the profile"
WANT=http-01 ua_fails 'rejectedIdentifier' -h "$HOOK" issue "$BAD_NAME"
ok "$BAD_NAME refused with rejectedIdentifier"

say "a wrong http-01 answer"
WRONG=1 WANT=http-01 ua_fails 'unauthorized|incorrectResponse' -h "$HOOK" \
    issue "x.$ACME_DOMAIN"
[[ ! -e "$(crt "x.$ACME_DOMAIN")" ]] || fail "a certificate for x despite the wrong answer"
grep -q "hook failed http-01 x.$ACME_DOMAIN" "$T/hooks.log" ||
    fail "uacme did not report the failed challenge to its hook"
ok "validation failed on a wrong key authorization"

say "external account binding"
acme_eab_create
C_SAVE=$C
C="$T/uacme-eab"
ua "new with EAB" -y -e "$EAB_KID:$EAB_KEY" new "eab@$ACME_DOMAIN"
WANT=http-01 ua "issue e" -h "$HOOK" issue "e.$ACME_DOMAIN"
check_cert "$(crt "e.$ACME_DOMAIN")" "$(crt "e.$ACME_DOMAIN")" "e.$ACME_DOMAIN"
eab_bound "$EAB_KID" || fail "the server did not bind $EAB_KID"
ok "account bound to $EAB_KID; e.$ACME_DOMAIN issued"

say "external account binding required"
acme_require_eab
C="$T/uacme-noeab"
# uacme, like certbot and lego, refuses by itself when the directory's
# meta says externalAccountRequired.
ua_fails 'externalAccountRequired|[Ee]xternal ([Aa]ccount|credentials)' -y new "no-eab@$ACME_DOMAIN"
ok "an account without a binding is refused"
acme_eab_create
C="$T/uacme-eab2"
ua "new with EAB" -y -e "$EAB_KID:$EAB_KEY" new "eab2@$ACME_DOMAIN"
WANT=http-01 ua "issue f" -h "$HOOK" issue "f.$ACME_DOMAIN"
check_cert "$(crt "f.$ACME_DOMAIN")" "$(crt "f.$ACME_DOMAIN")" "f.$ACME_DOMAIN"
C=$C_SAVE
ok "with $EAB_KID: f.$ACME_DOMAIN issued"

if [[ "$ACME_SERVER" == certkeepd ]]; then
	srv_stop "$CA_HOME"
	ok "stopped"
fi
