#!/usr/bin/env bash
# acme_eab_start.sh - certkeepd and the CA home's ACME EAB key pair at
# start: without a pair it makes one (encrypted under the CA key's
# passphrase) so that keys created while it runs can be checked; with the
# pair it unlocks the private key with the CA
# key's passphrase and serves externalAccountRequired; an EAB key under
# another passphrase, or a public key of another pair, stops the start.
source "$(dirname "${BASH_SOURCE[0]}")/srvlib.sh"

# start_fails ERE: certkeep service start fails cleanly, ERE on stderr,
# and leaves no pid or urls file.
start_fails() {
	run timeout 60 "$CERTKEEP" service start --home "$ca" --passphrase-fd 3 \
	    3<"$PWFILE"
	[[ $LAST_RC -ne 0 && $LAST_RC -lt 124 ]] ||
	    fail_cmd "the start did not fail cleanly (exit $LAST_RC)"
	assert_grep "$1" "$LAST_ERR" "the refused start's message"
	[[ ! -e "$ca/certkeepd.pid" && ! -e "$ca/certkeepd.urls" ]] ||
	    fail "a failed start left a pid or urls file"
}

ca="$T/ca"
srv_init "$ca"
conf_set "$ca" acme eab_required yes

say "no EAB key pair yet: certkeepd makes it at start"
srv_start "$ca"
[[ -s "$ca/acme-eab.pub" && -s "$ca/private/acme-eab.key" ]] ||
    fail "no EAB key pair after the start"
[[ $(stat -c %a "$ca/private/acme-eab.key") == 600 ]] ||
    fail "the EAB private key is not 0600"
grep -q 'ENCRYPTED PRIVATE KEY' "$ca/private/acme-eab.key" ||
    fail "the EAB private key is not encrypted"
api GET "$API/acme/directory"
assert_eq 200 "$CODE" "directory status"
assert_grep '"externalAccountRequired": *true' "$BODY" "directory meta"
# A key made while certkeepd runs is sealed to the pair it holds.
expect_ok "$CERTKEEP" acme eab create --home "$ca" --note start \
    --passphrase-fd 3 3<"$PWFILE"
srv_stop "$ca"
ok "the pair was made (encrypted, 0600) and a binding is required"

say "an EAB key under another passphrase: no start"
cp "$ca/private/acme-eab.key" "$T/eab.key.orig"
openssl pkey -in "$T/eab.key.orig" -passin "file:$PWFILE" |
    openssl pkcs8 -topk8 -scrypt -passout pass:another-passphrase \
    -out "$T/eab.key.other" || fail "cannot re-encrypt the EAB key"
# Written into the file in place: it keeps its owner (the service user
# when the test runs as root) and mode.
cat "$T/eab.key.other" >"$ca/private/acme-eab.key"
start_fails "acme-eab.key.*passphrase"
ok "$(head -n 1 "$LAST_ERR")"

say "a public key of another pair: no start"
cat "$T/eab.key.orig" >"$ca/private/acme-eab.key"
cp "$ca/acme-eab.pub" "$T/eab.pub.orig"
openssl genpkey -algorithm X25519 | openssl pkey -pubout >"$ca/acme-eab.pub" ||
    fail "cannot make another X25519 key"
start_fails "acme-eab.pub does not belong"
ok "$(head -n 1 "$LAST_ERR")"

say "eab_required = false and no pair: starts"
cat "$T/eab.pub.orig" >"$ca/acme-eab.pub"
srv_start "$ca"
srv_stop "$ca"
rm "$ca/private/acme-eab.key" "$ca/acme-eab.pub"
conf_set "$ca" acme eab_required no
srv_start "$ca"
api GET "$API/acme/directory"
assert_grep '"externalAccountRequired": *false' "$BODY" "directory meta"
srv_stop "$ca"
ok "the original pair starts again; without one, eab_required = false starts"
