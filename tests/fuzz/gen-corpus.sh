#!/bin/sh
# gen-corpus.sh - (re)generate the seed corpora in tests/fuzz/corpus/.
#
#   tests/fuzz/gen-corpus.sh [BUILD_DIR]
#
# CSRs are made with openssl (fresh keys every run, so the files change);
# the configuration seeds start from the certkeep.conf that
# `BUILD_DIR/certkeep init` writes (BUILD_DIR defaults to build/). Crash
# reproducers (files named crash-*, leak-*, oom-*, timeout-*) are kept.
# Seeds stay small: a few dozen files per target, each under 64 KiB.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-"$top/build"}
certkeep="$build/certkeep"
corpus="$here/corpus"

[ -x "$certkeep" ] || { echo "gen-corpus: no $certkeep; build first" >&2; exit 1; }
command -v openssl >/dev/null || { echo "gen-corpus: openssl not found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in csr config names; do
	mkdir -p "$corpus/$t"
	find "$corpus/$t" -type f ! -name 'crash-*' ! -name 'leak-*' \
	    ! -name 'oom-*' ! -name 'timeout-*' -exec rm -f {} +
done

# ---------------------------------------------------------------- CSRs
out="$corpus/csr"
key() {	# name algorithm [genpkey options]
	n=$1; shift
	openssl genpkey -quiet -algorithm "$@" -out "$tmp/$n.key" 2>/dev/null ||
	    openssl genpkey -algorithm "$@" -out "$tmp/$n.key" 2>/dev/null
}
key rsa2048 RSA -pkeyopt rsa_keygen_bits:2048
key p256 EC -pkeyopt ec_paramgen_curve:P-256
key p384 EC -pkeyopt ec_paramgen_curve:P-384
key ed25519 ED25519
key ed448 ED448
key rsapss RSA-PSS -pkeyopt rsa_keygen_bits:2048
key p521 EC -pkeyopt ec_paramgen_curve:P-521
key p256explicit EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:explicit

# csr NAME KEY SUBJECT [openssl req options...]: NAME.pem and NAME.der
csr() {
	n=$1 k=$2 s=$3; shift 3
	openssl req -new -key "$tmp/$k.key" -subj "$s" "$@" \
	    -out "$out/$n.pem" 2>/dev/null
	openssl req -in "$out/$n.pem" -outform DER -out "$out/$n.der"
}
san='subjectAltName=DNS:www.example.com,DNS:example.com,IP:127.0.0.1,IP:::1'
ku='keyUsage=critical,digitalSignature,keyEncipherment'
eku='extendedKeyUsage=serverAuth'

csr rsa2048-plain rsa2048 /CN=www.example.com
csr rsa2048-tls rsa2048 /CN=www.example.com -addext "$san" -addext "$ku" \
    -addext "$eku" -addext 'basicConstraints=critical,CA:FALSE'
csr p256-tls p256 /CN=host.example.net -addext \
    'subjectAltName=DNS:host.example.net,IP:10.1.2.3,IP:2001:db8::1' \
    -addext 'keyUsage=digitalSignature' -addext "$eku"
csr p256-wildcard p256 '/CN=*.example.com' \
    -addext 'subjectAltName=DNS:*.example.com'
csr p384-subca p384 '/C=DE/O=Example/OU=PKI/CN=Example Issuing CA 1' \
    -addext 'basicConstraints=critical,CA:TRUE,pathlen:1' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'
csr p384-ca-nopathlen p384 '/CN=Example CA' \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=keyCertSign'
csr ed25519-client ed25519 '/O=Example/OU=People/CN=Alice' \
    -addext 'subjectAltName=email:alice@example.com,URI:https://example.com/a' \
    -addext 'extendedKeyUsage=clientAuth,emailProtection,1.3.6.1.4.1.99999.1'
csr ed25519-email-cn ed25519 /CN=bob@example.com \
    -addext 'subjectAltName=email:bob@example.com'
csr ed448 ed448 /CN=ed448.example.com
csr rsapss rsapss /CN=pss.example.com
csr p521 p521 /CN=p521.example.com -addext "$san"
csr p256-explicit p256explicit /CN=explicit.example.com
csr p256-no-subject p256 / -addext 'subjectAltName=DNS:nosubject.example.com'
csr p256-two-cn p256 '/CN=a.example.com/CN=b.example.com'
csr p256-other-ext p256 /CN=o.example.com -addext 'nsComment=hello' \
    -addext 'subjectKeyIdentifier=hash'
csr p256-all-ku p256 /CN=ku.example.com -addext \
    'keyUsage=digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyAgreement,keyCertSign,cRLSign,encipherOnly,decipherOnly'
# The same request in other PEM layouts: CRLF lines (the quick reading),
# 76-character lines (OpenSSL's reading).
sed 's/$/\r/' "$out/p256-all-ku.pem" >"$out/p256-crlf.pem"
{ echo '-----BEGIN CERTIFICATE REQUEST-----'
  base64 -w 76 "$out/p256-all-ku.der"
  echo '-----END CERTIFICATE REQUEST-----'; } >"$out/p256-wide-lines.pem"
csr p256-outside p256 /CN=evil.example.org \
    -addext 'subjectAltName=DNS:evil.example.org,IP:192.0.2.1,email:x@evil.example'
csr rsa2048-bigpath rsa2048 /CN=deep \
    -addext 'basicConstraints=critical,CA:TRUE,pathlen:4294967296'
# pathlen 2^32 - 1 once became path_len -1 (no constraint at all).
csr p256-pathlen-wrap p256 /CN=wrap \
    -addext 'basicConstraints=critical,CA:TRUE,pathlen:4294967295'
csr p256-utf8 p256 "$(printf '/CN=caf\303\251.example.com/O=\303\234ber')" -utf8
csr p256-long-attr p256 "/CN=long.example.com/description=$(printf '%0300d' 0)"
# otherName and dirName need a config section; build that one by hand.
cat >"$tmp/dn.cnf" <<'EOF'
[req]
distinguished_name = dn_req
[dn_req]
[dn]
CN = directory name
EOF
openssl req -new -key "$tmp/p256.key" -subj /CN=on.example.com \
    -config "$tmp/dn.cnf" -addext \
    'subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:u@example.com,dirName:dn,RID:1.2.3.4' \
    -out "$out/p256-othername.pem" 2>/dev/null
openssl req -in "$out/p256-othername.pem" -outform DER \
    -out "$out/p256-othername.der"

# Broken ones: bad signature, truncated, trailing data, PEM damage.
python3 - "$out" <<'EOF'
import sys, os
d = sys.argv[1]
der = open(os.path.join(d, 'rsa2048-tls.der'), 'rb').read()
bad = bytearray(der); bad[-10] ^= 0x01
open(os.path.join(d, 'bad-signature.der'), 'wb').write(bad)
tbs = der.replace(b'www.example.com', b'www.examplf.com', 1)  # the subject
open(os.path.join(d, 'bad-signature-tbs.der'), 'wb').write(tbs)
open(os.path.join(d, 'truncated-half.der'), 'wb').write(der[:len(der)//2])
open(os.path.join(d, 'truncated-1.der'), 'wb').write(der[:-1])
open(os.path.join(d, 'trailing.der'), 'wb').write(der + b'\0junk')
pem = open(os.path.join(d, 'p256-tls.pem'), 'rb').read()
open(os.path.join(d, 'truncated.pem'), 'wb').write(pem[:len(pem)//2])
open(os.path.join(d, 'no-end.pem'), 'wb').write(pem.replace(b'-----END CERTIFICATE REQUEST-----', b''))
open(os.path.join(d, 'trailing.pem'), 'wb').write(pem + b'trailing junk\n')
open(os.path.join(d, 'leading.pem'), 'wb').write(b'Subject: text before\n' + pem)
open(os.path.join(d, 'two.pem'), 'wb').write(pem + pem)
open(os.path.join(d, 'wrong-type.pem'), 'wb').write(pem.replace(b'CERTIFICATE REQUEST', b'CERTIFICATE'))
open(os.path.join(d, 'begin-only.txt'), 'wb').write(b'-----BEGIN ')
open(os.path.join(d, 'empty-seq.der'), 'wb').write(b'\x30\x00')
EOF

# ---------------------------------------------------------------- config
out="$corpus/config"
printf 'fuzz corpus passphrase\n' >"$tmp/pass"
chmod 600 "$tmp/pass"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} "$certkeep" init --home "$tmp/ca" --root --subject CN=x \
    --passphrase-file "$tmp/pass" --scrypt-log2n 10 >/dev/null
cp "$tmp/ca/certkeep.conf" "$out/default.conf"
chmod 644 "$out/default.conf"
base=$(sed -n '/^\[profile\./q;p' "$out/default.conf")
cf() {	# NAME, text on stdin
	cat >"$out/$1.conf"
}
cf ca-urls <<'EOF'
[ca]
key_file = private/ca.key
crl_url = http://crl.example.com/ca.crl
ocsp_url = https://ocsp.example.com/
issuer_url = http://pki.example.com/ca.cer
crl_validity_hours = 24
[store]
backend = sqlite
path = /var/lib/certkeep/store.db
EOF
i=0
while IFS='|' read -r k v; do
	i=$((i + 1))
	printf '%s\n\n[profile.p%02d]\nkey_types = ec-p256\n%s = %s\n' \
	    "$base" "$i" "$k" "$v" | cf "profile-$(printf %02d $i)-$k"
done <<'EOF'
key_usage|digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement, encipherOnly, decipherOnly
ext_key_usage|serverAuth clientAuth codeSigning emailProtection timeStamping OCSPSigning 1.3.6.1.4.1.311.10.3.4
max_validity_days|36500
max_path_length|16
key_types|rsa2048,rsa3072,rsa4096,ec-p256,ec-p384,ed25519
dns_suffixes|example.com, .example.net, a-b.c0.example
ip_ranges|10.0.0.0/8 192.168.1.1 0.0.0.0/0 ::/0 fe80::/10 2001:db8::1/128
email_domains|example.com, mail.example.org
subject_attributes|CN, O, OU, C, L, ST, 2.5.4.5
common_name|email
allow_wildcard|yes
ca|no
EOF
cf server-all <<'EOF'
[server]
api_listen = [::1]:8443
http_listen =
tls_names = ca.example.com, 192.0.2.10, ::1
tls_cert = tls/cert.pem
tls_key = tls/key.pem
threads = 8
signers = 2
max_connections = 100000
max_per_ip = 0
timeout = 3600
max_body = 1048576
user = certkeep
client_cert_profiles = tls-client, sub-ca
ocsp_validity_hours = 720
EOF
cf bad-server-listen <<'EOF'
[server]
api_listen = [::1:8443
http_listen = 0.0.0.0:65536
EOF
cf bad-server-values <<'EOF'
[server]
api_listen = :443
threads = 0
max_body = 1023
ocsp_validity_hours = 721
listen = 0.0.0.0:80
EOF
cf ca-profile <<'EOF'
[profile.root-like]
ca = true
max_path_length = 3
key_usage = keyCertSign, cRLSign
key_types = ec-p384
common_name = none
EOF
{ printf '\357\273\277'; cat; } <<'EOF' | cf multiline-bom-comments
; a comment
# another
[profile.m]  ; inline
key_types = rsa2048
  ec-p256
dns_suffixes = example.com ; inline comment
common_name = any
EOF
cf bad-unknown-section <<'EOF'
[client]
listen = 0.0.0.0
EOF
cf bad-unknown-key <<'EOF'
[profile.x]
key_types = rsa2048
key_usages = digitalSignature
EOF
cf bad-values <<'EOF'
[profile.x]
key_types = rsa1024
max_validity_days = 0
ip_ranges = 10.0.0.0/33
EOF
cf bad-ca-no-certsign <<'EOF'
[profile.x]
ca = yes
key_types = rsa2048
key_usage = digitalSignature
EOF
cf bad-leaf-certsign <<'EOF'
[profile.x]
key_types = rsa2048
key_usage = keyCertSign
EOF
cf bad-url <<'EOF'
[ca]
crl_url = ldap://x,y
ocsp_url = http://a b
EOF
cf bad-profile-name <<'EOF'
[profile.a/b]
key_types = rsa2048
[profile.]
key_types = rsa2048
EOF
cf bad-syntax <<'EOF'
[ca
key_file
= value
EOF
cf bad-backend <<'EOF'
[store]
backend = postgres
EOF
cf bad-empty-key-types <<'EOF'
[profile.x]
common_name = dns
EOF
{
	i=0
	while [ $i -le 64 ]; do
		printf '[profile.p%d]\nkey_types=ed25519\n' $i
		i=$((i + 1))
	done
} | cf bad-too-many-profiles
printf '[ca]\nkey_file = %0600d\n' 0 | cf long-line
printf '[ca]\ncrl_validity_hours = 99999999999999999999999\n' | cf bad-number
printf '[profile.x]\r\nkey_types = rsa2048\r\ncommon_name = dns\r\n' | cf crlf
: | cf empty

# ---------------------------------------------------------------- names
out="$corpus/names"
n=0
while IFS= read -r s; do
	n=$((n + 1))
	printf '%s' "$s" >"$out/$(printf %02d $n)"
done <<'EOF'
www.example.com
*.example.com
*.
a..b
-a.example.com
a-.example.com
xn--bcher-kva.example
a123456789012345678901234567890123456789012345678901234567890123.com
alice@example.com
a@b@example.com
"quoted"@example.com
user@*.example.com
127.0.0.1
10.0.0.0/8
192.168.1.1/32
0.0.0.0/0
10.0.0.0/33
10.0.0.0/-1
10.0.0.0/
::1
::1/128
2001:db8::/32
fe80::1%eth0/64
::ffff:1.2.3.4/96
1.2.3
01
0x00:00:FF
0x7F:12:ab:CD
deadbeefDEADBEEF0123456789abcdef
00000000
0x
zz
2024-02-29
2024-02-30
1969-12-31
9999-12-31T23:59:60Z
2024-01-01T12:34:56Z
2024-01-01 12:34:56
2024-01-01X12:34:56
+024-01-01
2024-1-01T1:2:3Z
EOF
printf '%0100d' 0 | tr 0 f >"$out/serial-long"
printf 'a%.0s.' $(seq 1 130) >"$out/dns-long"

for t in csr config names; do
	echo "gen-corpus: $t: $(ls "$corpus/$t" | wc -l) files"
done
