/*
 * acme_validate.h - ACME challenge validation (RFC 8555 section 8,
 * RFC 8737, RFC 8738) and CAA checking (RFC 8659, RFC 8657), done by the
 * server itself over the network.
 *
 * Both calls are synchronous and block the calling thread until they are
 * done or the configured time is up (every connect, read and write is
 * bounded by what is left of it: non-blocking sockets and poll). They
 * keep no state and are safe to call from several threads at once.
 *
 * What may be contacted: the configured DNS servers (dns.h: never the
 * system resolver), and the addresses those servers give for the
 * identifier (or for a redirect target), or the identifier's own address
 * for an "ip" identifier; never unspecified, multicast, broadcast or
 * link-local addresses, and loopback ones only with allow_loopback. A body
 * that is not the key authorization is quoted in the error only if it
 * looks like one, and a redirect's target never: the validator must not
 * become a way to read what other services answer.
 *
 *  http-01: A and AAAA of the name (IPv6 addresses tried first), each
 *    address on http_port until one accepts the connection (that one
 *    decides); "GET /.well-known/acme-challenge/TOKEN HTTP/1.1" with Host
 *    (the name or the address, IPv6 in brackets, ":port" unless 80) and
 *    Connection: close. Status 200 and a body (at most
 *    ACME_V_HTTP_MAX_BODY bytes; more is refused) equal to the key
 *    authorization once trailing white space is trimmed. Redirects (301,
 *    302, 303, 307, 308) are followed, at most ACME_V_MAX_REDIRECTS, only
 *    to "http://" URLs or absolute paths, always on the configured
 *    http_port: a URL naming another port, an https:// or any other URL,
 *    user information, or an IP address (other than an ip identifier's
 *    own) is refused. The token must be base64url characters only.
 *  dns-01: the TXT records at "_acme-challenge.NAME"; valid if one
 *    record, its strings joined (as RFC 7208 3.3 reads TXT), or one of its
 *    strings equals base64url(SHA-256(key authorization)). Not for ip
 *    identifiers. A wildcard is validated on its base name.
 *  tls-alpn-01: TLS 1.2 or later to tls_port (each address as for
 *    http-01), SNI the name (for an ip identifier the reverse name,
 *    "4.3.2.1.in-addr.arpa" or the ip6.arpa nibbles, RFC 8738), ALPN
 *    offering only "acme-tls/1", the chain not verified (a self-signed
 *    certificate is expected). acme-tls/1 must be negotiated; the
 *    certificate must hold exactly one subjectAltName entry, the
 *    identifier (dNSName, or iPAddress for ip), and exactly one
 *    id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31), critical,
 *    whose value is an OCTET STRING of SHA-256(key authorization).
 *
 * Results: 0 when valid. Otherwise a CK_E_* code, *ptype an RFC 8555
 * problem type without its "urn:ietf:params:acme:error:" prefix, and a
 * sentence in detail saying which address and what was seen (the same
 * text in ck_err_msg()):
 *   CK_E_INVAL   "malformed": bad arguments (challenge or identifier
 *                type, token, key authorization);
 *                "rejectedIdentifier": the identifier cannot be validated
 *                this way (not a valid name or address, dns-01 for an
 *                address, a wildcard with http-01 or tls-alpn-01);
 *   CK_E_IO      "dns": the DNS lookup failed (SERVFAIL, time-out) or
 *                gave no address; "connection": no address could be
 *                connected to, or the exchange broke off or timed out;
 *                "tls": the TLS handshake failed or did not negotiate
 *                acme-tls/1;
 *   CK_E_POLICY  "unauthorized": nothing provisioned (HTTP 404, no TXT
 *                record at all); "incorrectResponse": an answer that is
 *                wrong (other status, other body, a body over the limit,
 *                a redirect that is not followed, TXT records none of
 *                which match, a certificate that does not fit);
 *                "caa": CAA forbids issuance;
 *   CK_E_NOMEM, CK_E_INTERNAL, CK_E_CRYPTO "serverInternal".
 *
 * XXX Only one vantage point, and no DNSSEC validation.
 */
#ifndef CK_PROTO_ACME_VALIDATE_H
#define CK_PROTO_ACME_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#define ACME_V_HTTP_PORT 80
#define ACME_V_TLS_PORT 443
#define ACME_V_TIMEOUT_MS 10000
#define ACME_V_HTTP_MAX_BODY 4096
#define ACME_V_MAX_REDIRECTS 10
#define ACME_V_ALPN "acme-tls/1"

struct acme_vconf {
	const char *dns_servers;  /* "ADDR:PORT, [V6]:PORT" (dns.h); required */
	uint16_t http_port;	  /* 0: ACME_V_HTTP_PORT */
	uint16_t tls_port;	  /* 0: ACME_V_TLS_PORT */
	int timeout_ms;		  /* one whole validation or CAA check;
				     <= 0: ACME_V_TIMEOUT_MS */
	const char *caa_identity; /* the CA's issuer domain name for CAA,
				     e.g. "ca.example"; NULL or "": skip CAA */
	int allow_loopback;	  /* connect to 127.0.0.0/8 and ::1 (tests,
				     single-host setups) */
};

/*
 * Validate one challenge: chtype "http-01", "dns-01" or "tls-alpn-01";
 * idtype "dns" (idvalue lower case, without "*.") or "ip" (idvalue an
 * address in text form); wildcard set if the identifier was "*.idvalue";
 * token the challenge's token; keyauth the key authorization the caller
 * built (token "." thumbprint). ptype and detail (detail_len bytes,
 * always NUL-terminated when detail_len > 0) as described above; *ptype
 * is NULL on success. Returns 0 when the challenge is met.
 */
int acme_validate(const struct acme_vconf *cf, const char *chtype,
    const char *idtype, const char *idvalue, int wildcard, const char *token,
    const char *keyauth, const char **ptype, char *detail, size_t detail_len);

/*
 * CAA (RFC 8659 section 3): may cf->caa_identity issue for dnsname (lower
 * case, without "*."; wildcard set for "*.dnsname")? The relevant RRset is
 * the first non-empty CAA RRset found climbing from dnsname towards the
 * root (the top-level domain included, the root not). None: issuance
 * allowed. Else a property with the critical flag (128) and a tag other
 * than issue, issuewild and iodef forbids it; for a wildcard the
 * "issuewild" properties govern if there is one, "issue" otherwise; no
 * property of that tag allows; one that names caa_identity
 * (case-insensitively) and whose parameters fit allows: "accounturi"
 * (RFC 8657) must equal account_uri (NULL: never equal),
 * "validationmethods" must list method ("http-01", ...; NULL: never
 * listed); either given twice, or a value not of RFC 8659 4.2's grammar,
 * makes the property fit nobody ("issue ;" forbids everyone); other
 * parameters are ignored. A lookup that fails (SERVFAIL, time-out,
 * malformed) forbids issuance (type "dns"). Returns 0 (also when
 * caa_identity is NULL or "", without any lookup); CK_E_POLICY with
 * *ptype "caa"; CK_E_IO with "dns"; CK_E_INVAL with "malformed" or
 * "rejectedIdentifier". detail as for acme_validate().
 */
int acme_caa_check(const struct acme_vconf *cf, const char *dnsname,
    int wildcard, const char *account_uri, const char *method,
    const char **ptype, char *detail, size_t dlen);

/*
 * The reverse-mapping name of an address (RFC 8738 section 6, for the
 * SNI of tls-alpn-01): "4.3.2.1.in-addr.arpa" or the 32 nibbles of an
 * IPv6 address followed by "ip6.arpa". 0, or CK_E_INVAL if ip is not an
 * address or out (outsz bytes; 74 are always enough) is too small.
 */
int acme_validate_reverse_name(const char *ip, char *out, size_t outsz);

#endif
