#!/usr/bin/env bash
# passphrase_sources.sh - the CA passphrase from a file descriptor (a
# redirected file, a pipe, standard input), and a clear error, never a
# hang, when there is no terminal to ask on.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Every command here that could wait for input runs under a timeout, and
# in its own session without a controlling terminal (lib.sh: detached).

ca="$T/ca"
make_key ec-p256 "$T/k.key"
make_csr "$T/k.key" "$T/www.csr" "/CN=www.example.com"

say "init with --passphrase-fd 3 (3< file)"
# The descriptor's file may have any mode: certkeep only reads the fd.
printf '%s\n' "$PW" >"$T/pw-fd"
chmod 644 "$T/pw-fd"
expect_ok "$CERTKEEP" init --home "$ca" --root --subject "CN=FD Root" \
    --key-type ec-p256 --scrypt-log2n 10 --passphrase-fd 3 3<"$T/pw-fd"
expect_ok openssl pkey -in "$ca/private/ca.key" -passin "pass:$PW" -noout
ok "the key is encrypted under the passphrase read from fd 3 (newline stripped)"

say "issue with --passphrase-fd 3 (3< file)"
expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" \
    --cert-only --out "$T/a.pem" --passphrase-fd 3 3<"$T/pw-fd"
expect_ok openssl verify -CAfile "$ca/ca.pem" "$T/a.pem"
ok "issued"

say "issue with the passphrase from a pipe"
run bash -c 'printf "%s\n" "$1" | "$2" issue --home "$3" --profile tls-server \
    --csr "$4" --cert-only --out "$5" --passphrase-fd 0' _ "$PW" "$CERTKEEP" \
    "$ca" "$T/www.csr" "$T/b.pem"
[[ $LAST_RC -eq 0 ]] || fail "issue with the passphrase piped to fd 0 failed"
expect_ok openssl verify -CAfile "$ca/ca.pem" "$T/b.pem"
# A pipe on another descriptor, and without a final newline.
expect_ok "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" \
    --cert-only --out "$T/c.pem" --passphrase-fd 5 5< <(printf '%s' "$PW")
# CR LF line ending (a file edited on Windows).
expect_ok "$CERTKEEP" crl --home "$ca" --out "$T/crl.pem" \
    --passphrase-fd 4 4< <(printf '%s\r\n' "$PW")
# The CSR from standard input while the passphrase comes on fd 3.
run bash -c '"$1" issue --home "$2" --profile tls-server --csr - --cert-only \
    --out "$3" --passphrase-fd 3 <"$4" 3<"$5"' _ "$CERTKEEP" "$ca" "$T/d.pem" \
    "$T/www.csr" "$T/pw-fd"
[[ $LAST_RC -eq 0 ]] || fail "CSR on stdin with the passphrase on fd 3 failed"
ok "pipes on fd 0 and fd 5, no newline, CR LF, CSR on stdin + passphrase on fd 3"

say "bad passphrases and descriptors through --passphrase-fd"
expect_fail 'wrong passphrase' "$CERTKEEP" issue --home "$ca" --profile tls-server \
    --csr "$T/www.csr" --passphrase-fd 3 3< <(printf 'not the passphrase\n')
expect_fail 'empty passphrase' "$CERTKEEP" issue --home "$ca" --profile tls-server \
    --csr "$T/www.csr" --passphrase-fd 3 3</dev/null
expect_fail 'cannot read passphrase|bad file descriptor' "$CERTKEEP" issue \
    --home "$ca" --profile tls-server --csr "$T/www.csr" --passphrase-fd 9
run "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" \
    --passphrase-fd three
assert_eq 2 "$LAST_RC" "exit status for --passphrase-fd three"
assert_grep 'passphrase-fd' "$LAST_ERR" "message for --passphrase-fd three"
expect_fail 'longer than' "$CERTKEEP" issue --home "$ca" --profile tls-server \
    --csr "$T/www.csr" --passphrase-fd 3 3< <(head -c 5000 /dev/zero | tr '\0' x)
assert_eq 5 "$(count_certs "$ca")" "certificates (root + 4 issued)"
ok "each refused with a clear message, nothing issued"

say "init: a too short passphrase leaves nothing behind"
expect_fail 'too short' "$CERTKEEP" init --home "$T/short" --root --subject CN=x \
    --scrypt-log2n 10 --passphrase-fd 3 3< <(printf 'abc\n')
[[ ! -e "$T/short" ]] || fail "a failed init left $T/short behind"
ok "refused, no home created"

say "no terminal and no passphrase option: a clear error, no hang"
expect_fail 'no terminal.*(--passphrase-file|--passphrase-fd)' detached \
    "$CERTKEEP" issue --home "$ca" --profile tls-server --csr "$T/www.csr" </dev/null
ok "issue: $(head -n 1 "$LAST_ERR")"
expect_fail 'no terminal' detached "$CERTKEEP" crl --home "$ca" </dev/null
ok "crl: refused"
# Standard input being a pipe with a passphrase in it changes nothing:
# only an explicit --passphrase-fd 0 reads it.
# shellcheck disable=SC2016 # expanded by the inner shell
run detached bash -c 'printf "%s\n" "$1" | "$2" crl --home "$3"' \
    _ "$PW" "$CERTKEEP" "$ca"
[[ $LAST_RC -ne 0 && $LAST_RC -ne 124 ]] ||
    fail "crl with a passphrase on stdin but no option: exit $LAST_RC"
assert_grep 'no terminal' "$LAST_ERR" "message without a terminal"
expect_fail 'no terminal' detached "$CERTKEEP" init --home "$T/notty" --root \
    --subject CN=x --scrypt-log2n 10 </dev/null
[[ ! -e "$T/notty" ]] || fail "init without a passphrase left $T/notty behind"
ok "init: refused, no home created"
assert_eq 5 "$(count_certs "$ca")" "certificates"

say "CERTKEEP_HOME names the CA home"
expect_ok env CERTKEEP_HOME="$ca" "$CERTKEEP" list
assert_grep 'CN ?= ?FD Root|/CN=FD Root' "$LAST_OUT" "list via CERTKEEP_HOME"
expect_ok env CERTKEEP_HOME="$ca" "$CERTKEEP" issue --profile tls-server \
    --csr "$T/www.csr" --cert-only --out "$T/e.pem" --passphrase-fd 3 3<"$T/pw-fd"
expect_fail 'no CA home' env -u CERTKEEP_HOME "$CERTKEEP" list
ok "CERTKEEP_HOME works; without it or --home a clear error"

audit_verify_ok "$ca"
