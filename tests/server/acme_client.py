#!/usr/bin/env python3
"""acme_client.py - a small ACME (RFC 8555) client for the server tests.

Usage: acme_client.py API_URL CA_PEM [STORE_DB]

Talks to a running certkeepd with JWS requests it signs itself (Python's
standard library and the 'cryptography' package), and checks the
directory, nonces, accounts (new, existing, lookup, update, deactivate)
and the refusals of RFC 8555 section 6: each with the problem type and
HTTP status the RFC gives. With STORE_DB (the server's store file) it
also checks orders, authorizations, challenges and the orders list; the
store file is where it marks an authorization valid without a
validation (acme_flow.py checks validation). Prints one line per check; exits 1 at
the first failure.
"""
import base64
import hashlib
import json
import ssl
import sys
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature

ERR = "urn:ietf:params:acme:error:"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print("   ok: " + msg)


class Key:
    """An account key and its JWK; sign() gives the JWS signature."""

    def __init__(self, kind):
        self.kind = kind
        if kind == "ES256":
            self.k = ec.generate_private_key(ec.SECP256R1())
            n = self.k.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": "P-256",
                        "x": b64u(n.x.to_bytes(32, "big")),
                        "y": b64u(n.y.to_bytes(32, "big"))}
        elif kind == "RS256":
            self.k = rsa.generate_private_key(65537, 2048)
            n = self.k.public_key().public_numbers()
            self.jwk = {"kty": "RSA",
                        "n": b64u(n.n.to_bytes(256, "big")),
                        "e": b64u(n.e.to_bytes(3, "big"))}
        else:
            self.k = ed25519.Ed25519PrivateKey.generate()
            # (public_bytes_raw() needs cryptography 40; Debian 12 has 38)
            raw = self.k.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        self.alg = kind

    def sign(self, data):
        if self.kind == "ES256":
            r, s = decode_dss_signature(
                self.k.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.kind == "RS256":
            return self.k.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.k.sign(data)

    def thumbprint(self):
        req = {k: self.jwk[k] for k in sorted(self.jwk)}
        return b64u(hashlib.sha256(json.dumps(
            req, separators=(",", ":"), sort_keys=True).encode()).digest())


class Client:
    def __init__(self, api, ca):
        self.api = api
        self.ctx = ssl.create_default_context(cafile=ca)
        self.nonce = None

    def http(self, method, url, body=None, ctype=None, host=None):
        req = urllib.request.Request(url, data=body, method=method)
        if host is not None:
            req.add_header("Host", host)
        if ctype is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=30) as r:
                st, hd, data = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            st, hd, data = e.code, e.headers, e.read()
        n = hd.get("Replay-Nonce")
        if n:
            self.nonce = n
        return st, hd, data

    def get_nonce(self):
        st, hd, _ = self.http("HEAD", self.dir["newNonce"])
        return hd["Replay-Nonce"]

    def jws(self, key, url, payload, kid=None, nonce=None, alg=None,
            jwk=None):
        prot = {"alg": alg or key.alg, "url": url}
        if nonce is not False:      # False: none (an inner JWS)
            prot["nonce"] = nonce if nonce is not None else self.get_nonce()
        if kid is not None:
            prot["kid"] = kid
        else:
            prot["jwk"] = jwk or key.jwk
        p64 = b64u(json.dumps(prot).encode())
        pl64 = "" if payload is None else b64u(json.dumps(payload).encode())
        sig = key.sign((p64 + "." + pl64).encode())
        return {"protected": p64, "payload": pl64, "signature": b64u(sig)}

    def post(self, url, obj, ctype="application/jose+json"):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        return self.http("POST", url, body, ctype)


def problem(res, status, typ, what):
    st, hd, data = res
    if st != status:
        fail("%s: HTTP %d, expected %d: %s" % (what, st, status,
                                               data[:300]))
    if hd.get("Content-Type") != "application/problem+json":
        fail("%s: Content-Type %s" % (what, hd.get("Content-Type")))
    doc = json.loads(data)
    if doc.get("type") != ERR + typ:
        fail("%s: problem type %s, expected %s" % (what, doc.get("type"),
                                                   ERR + typ))
    if not doc.get("detail"):
        fail("%s: no detail" % what)
    if not hd.get("Replay-Nonce"):
        fail("%s: no Replay-Nonce on the problem" % what)
    ok("%s -> %d %s" % (what, st, typ))
    return doc


def expect(res, status, what):
    st, hd, data = res
    if st != status:
        fail("%s: HTTP %d, expected %d: %s" % (what, st, status,
                                               data[:300]))
    return hd, (json.loads(data) if data else None)


def new_order(c, key, kid, idents, extra=None):
    url = c.dir["newOrder"]
    payload = {"identifiers": [{"type": t, "value": v} for t, v in idents]}
    payload.update(extra or {})
    return c.post(url, c.jws(key, url, payload, kid=kid))


def pag(c, key, kid, url):
    """POST-as-GET."""
    return c.post(url, c.jws(key, url, None, kid=kid))


def check_order(api, res, idents, what, status="pending"):
    hd, o = expect(res, 201, what)
    loc = hd.get("Location", "")
    if not loc.startswith(api + "/acme/order/"):
        fail("%s: Location %s" % (what, loc))
    want = [{"type": t, "value": v} for t, v in idents]
    if o.get("status") != status or o.get("identifiers") != want or \
            len(o.get("authorizations", [])) != len(idents) or \
            o.get("finalize") != loc + "/finalize" or not o.get("expires"):
        fail("%s: order object %s" % (what, o))
    for u in o["authorizations"]:
        if not u.startswith(api + "/acme/authz/"):
            fail("%s: authorization URL %s" % (what, u))
    return loc, o


def authz_by_value(c, key, kid, o):
    out = {}
    for u in o["authorizations"]:
        _, a = expect(pag(c, key, kid, u), 200, "authorization " + u)
        out[(a["identifier"]["value"], bool(a.get("wildcard")))] = (u, a)
    return out


def check_challenges(api, a, types, what):
    got = sorted(ch["type"] for ch in a["challenges"])
    if got != sorted(types):
        fail("%s: challenges %s, expected %s" % (what, got, sorted(types)))
    for ch in a["challenges"]:
        t = ch.get("token", "")
        if len(t) != 22 or not all(x.isalnum() or x in "-_" for x in t) \
                or not ch.get("url", "").startswith(api + "/acme/chall/") \
                or ch.get("status") != "pending":
            fail("%s: challenge %s" % (what, ch))
    if len({ch["token"] for ch in a["challenges"]}) != len(types):
        fail("%s: tokens repeat" % what)
    ok("%s: challenges %s, 128-bit tokens" % (what, ", ".join(got)))


def orders(c, api, kid, k1, kid2, k2, store_db):
    """newOrder (RFC 8555 7.4, RFC 8738), orders, authorizations,
    challenges and the account's orders list."""
    dom = "certkeep.test"
    # One name.
    res = new_order(c, k1, kid, [("dns", "www." + dom)])
    o1_url, o1 = check_order(api, res, [("dns", "www." + dom)],
                             "newOrder for one name")
    ok("newOrder for one name: 201, pending, Location %s" % o1_url)
    _, o1b = expect(pag(c, k1, kid, o1_url), 200, "order POST-as-GET")
    if o1b != o1:
        fail("order POST-as-GET: %s, was %s" % (o1b, o1))
    ok("order POST-as-GET returns the same order")
    az = authz_by_value(c, k1, kid, o1)
    u1, a1 = az[("www." + dom, False)]
    if a1["status"] != "pending" or \
            a1["identifier"] != {"type": "dns", "value": "www." + dom}:
        fail("authorization: %s" % a1)
    check_challenges(api, a1, ["http-01", "dns-01", "tls-alpn-01"],
                     "www." + dom)
    ch = a1["challenges"][0]
    _, chg = expect(pag(c, k1, kid, ch["url"]), 200, "challenge GET")
    if chg != ch:
        fail("challenge POST-as-GET: %s, expected %s" % (chg, ch))
    # POST {} starts validation (on an order of its own: nothing answers
    # here, so it fails; acme_flow.sh checks validation itself).
    _, ox = check_order(api, new_order(c, k1, kid, [("dns", "x." + dom)]),
                        [("dns", "x." + dom)], "newOrder for x")
    _, ax = authz_by_value(c, k1, kid, ox)[("x." + dom, False)]
    chx = ax["challenges"][0]
    hd, chp = expect(c.post(chx["url"], c.jws(k1, chx["url"], {}, kid=kid)),
                     200, "challenge POST {}")
    if chp.get("status") not in ("processing", "invalid") or \
            'rel="up"' not in hd.get("Link", ""):
        fail("challenge POST {}: %s, Link %s" % (chp, hd.get("Link")))
    ok("challenge POST-as-GET returns it; POST {} starts validation "
       "(%s, Link rel=up)" % chp["status"])

    # Two names, with a validity window.
    two = [("dns", "api." + dom), ("dns", "mail." + dom)]
    res = new_order(c, k1, kid, two, {"notBefore": "2030-01-01T00:00:00Z",
                                      "notAfter": "2030-02-01T00:00:00Z"})
    o2_url, o2 = check_order(api, res, two, "newOrder for two names")
    if o2.get("notBefore") != "2030-01-01T00:00:00Z" or \
            o2.get("notAfter") != "2030-02-01T00:00:00Z":
        fail("notBefore/notAfter: %s" % o2)
    az2 = authz_by_value(c, k1, kid, o2)
    if sorted(az2) != [("api." + dom, False), ("mail." + dom, False)]:
        fail("two names: authorizations for %s" % sorted(az2))
    ok("newOrder for two names: two authorizations, notBefore/notAfter "
       "kept")

    # An IP address (RFC 8738): no dns-01.
    res = new_order(c, k1, kid, [("ip", "127.0.0.1")])
    _, o3 = check_order(api, res, [("ip", "127.0.0.1")],
                        "newOrder for an address")
    _, a3 = authz_by_value(c, k1, kid, o3)[("127.0.0.1", False)]
    if a3["identifier"] != {"type": "ip", "value": "127.0.0.1"}:
        fail("ip authorization: %s" % a3)
    check_challenges(api, a3, ["http-01", "tls-alpn-01"], "ip 127.0.0.1")

    # A wildcard: only dns-01; the authorization names the base domain.
    res = new_order(c, k1, kid, [("dns", "*.apps." + dom)])
    _, o4 = check_order(api, res, [("dns", "*.apps." + dom)],
                        "newOrder for a wildcard")
    _, a4 = authz_by_value(c, k1, kid, o4)[("apps." + dom, True)]
    if a4["identifier"] != {"type": "dns", "value": "apps." + dom} or \
            a4.get("wildcard") is not True:
        fail("wildcard authorization: %s" % a4)
    check_challenges(api, a4, ["dns-01"], "*.apps." + dom)

    # Names outside the profile: one subproblem per refused identifier.
    doc = problem(new_order(c, k1, kid, [
        ("dns", "www." + dom), ("dns", "www.example.org"),
        ("ip", "10.1.2.3")]), 400, "rejectedIdentifier",
        "names outside the profile")
    subs = doc.get("subproblems", [])
    if sorted((s["identifier"]["type"], s["identifier"]["value"])
              for s in subs) != [("dns", "www.example.org"),
                                 ("ip", "10.1.2.3")] or \
            any(s.get("type") != ERR + "rejectedIdentifier" for s in subs):
        fail("subproblems: %s" % subs)
    ok("subproblems name exactly the two refused identifiers")
    problem(new_order(c, k1, kid, [("dns", "a.*." + dom)]), 400,
            "rejectedIdentifier", "a wildcard not in front")
    problem(new_order(c, k1, kid, [("ip", "*.0.0.1")]), 400,
            "rejectedIdentifier", "a wildcard address")
    problem(new_order(c, k1, kid, [("email", "a@" + dom)]), 400,
            "unsupportedIdentifier", "an e-mail identifier")
    problem(new_order(c, k1, kid, []), 400, "malformed", "no identifiers")

    # Another account sees none of it.
    problem(pag(c, k2, kid2, o1_url), 403, "unauthorized",
            "another account's order")
    problem(pag(c, k2, kid2, u1), 403, "unauthorized",
            "another account's authorization")
    problem(pag(c, k2, kid2, ch["url"]), 403, "unauthorized",
            "another account's challenge")

    # Reuse: the store is told directly that www's authorization was
    # validated (http-01), without any responder.
    import sqlite3
    import time
    db = sqlite3.connect(store_db, timeout=30)
    aid = u1.rsplit("/", 1)[1]
    with db:
        db.execute("UPDATE acme_authzs SET status = 'valid' WHERE id = ?",
                   (aid,))
        db.execute("UPDATE acme_challenges SET status = 'valid', "
                   "validated = ? WHERE authz_id = ? AND type = 'http-01'",
                   (int(time.time()), aid))
    db.close()
    res = new_order(c, k1, kid, [("dns", "www." + dom)])
    o5_url, o5 = check_order(api, res, [("dns", "www." + dom)],
                             "a second order for www", status="ready")
    u5, a5 = authz_by_value(c, k1, kid, o5)[("www." + dom, False)]
    if u5 == u1 or a5["status"] != "valid" or a5["expires"] != \
            a1["expires"] or not any(x["type"] == "http-01" and
                                     x["status"] == "valid"
                                     for x in a5["challenges"]):
        fail("reused authorization: %s" % a5)
    if o5["expires"] > a5["expires"]:
        fail("the order outlives its reused authorization: %s" % o5)
    ok("a second order for www reuses its valid authorization: ready")
    res = new_order(c, k1, kid, [("dns", "www." + dom), ("dns", "ftp." + dom)])
    _, o6 = check_order(api, res, [("dns", "www." + dom),
                                   ("dns", "ftp." + dom)],
                        "order with one known name")
    az6 = authz_by_value(c, k1, kid, o6)
    if az6[("www." + dom, False)][1]["status"] != "valid" or \
            az6[("ftp." + dom, False)][1]["status"] != "pending":
        fail("mixed order: %s" % az6)
    ok("an order with one known and one new name: pending, one valid")
    res = new_order(c, k2, kid2, [("dns", "www." + dom)])
    _, o7 = check_order(api, res, [("dns", "www." + dom)],
                        "the same name for another account")
    ok("another account does not get the first one's authorization")

    # Deactivation (RFC 8555 7.5.2): the order can no longer complete.
    ua, _ = az2[("api." + dom, False)]
    _, ad = expect(c.post(ua, c.jws(k1, ua, {"status": "deactivated"},
                                    kid=kid)), 200,
                   "authorization deactivation")
    if ad.get("status") != "deactivated":
        fail("deactivation: %s" % ad)
    _, o2b = expect(pag(c, k1, kid, o2_url), 200, "order after deactivation")
    if o2b.get("status") != "invalid":
        fail("order after deactivation: %s" % o2b)
    ok("authorization deactivated; its order is invalid")
    problem(c.post(ua, c.jws(k1, ua, {"status": "deactivated"}, kid=kid)),
            400, "malformed", "deactivating it again")
    problem(c.post(ua, c.jws(k2, ua, {"status": "deactivated"}, kid=kid2)),
            403, "unauthorized", "another account deactivating it")

    # The account's orders list, paged (50 a page): invalid orders are
    # left out.
    _, acct = expect(pag(c, k1, kid, kid), 200, "account")
    lst = acct["orders"]
    if lst != kid + "/orders":
        fail("orders URL %s" % lst)
    problem(pag(c, k2, kid2, lst), 403, "unauthorized",
            "another account's orders list")
    mine = {o1_url, o5_url}
    for _ in range(52):
        hd, _ = expect(new_order(c, k1, kid, [("dns", "www." + dom)]), 201,
                       "more orders")
        mine.add(hd["Location"])
    seen, url, pages = [], lst, 0
    while url:
        hd, page = expect(pag(c, k1, kid, url), 200, "orders list page " + url)
        seen += page["orders"]
        pages += 1
        url = None
        for part in (hd.get("Link") or "").split(","):
            if part.strip().endswith('rel="next"'):
                url = part.strip().split(">")[0].lstrip("<")
    if pages < 2 or len(seen) != len(set(seen)) or not mine <= set(seen) \
            or o2_url in seen:
        fail("orders list: %d pages, %d orders" % (pages, len(seen)))
    ok("orders list: %d orders on %d pages (Link rel=next), the invalid "
       "one left out" % (len(seen), pages))
    return 4 + 3 + 52 + 1   # orders created for the audit count


def main():
    api, ca = sys.argv[1], sys.argv[2]
    store_db = sys.argv[3] if len(sys.argv) > 3 else None
    c = Client(api, ca)

    # Directory: absolute URLs on this server, nonce and index link.
    st, hd, data = c.http("GET", api + "/acme/directory")
    if st != 200:
        fail("directory: HTTP %d" % st)
    d = json.loads(data)
    c.dir = d
    for k, path in (("newNonce", "new-nonce"), ("newAccount", "new-account"),
                    ("newOrder", "new-order"), ("revokeCert", "revoke-cert"),
                    ("keyChange", "key-change")):
        if d.get(k) != api + "/acme/" + path:
            fail("directory %s is %s" % (k, d.get(k)))
    index = '<%s/acme/directory>;rel="index"' % api
    if hd.get("Link") != index or not hd.get("Replay-Nonce"):
        fail("directory: Link %s, Replay-Nonce %s" % (hd.get("Link"),
                                                     hd.get("Replay-Nonce")))
    ok("directory lists the five URLs, with a nonce and the index link")

    # URLs come from Host: one that is not a host name is refused.
    problem(c.http("GET", api + "/acme/directory", host="ca/../evil"),
            400, "malformed", "directory with an unusable Host")

    # new-nonce: HEAD 200, GET 204, not cached, all different.
    seen = set()
    for m, want in (("HEAD", 200), ("GET", 204), ("HEAD", 200)):
        st, hd, data = c.http(m, d["newNonce"])
        n = hd.get("Replay-Nonce")
        if st != want or not n or hd.get("Cache-Control") != "no-store":
            fail("%s new-nonce: %d, nonce %s, Cache-Control %s" % (
                m, st, n, hd.get("Cache-Control")))
        if len(n) < 22 or n in seen or \
                not all(ch.isalnum() or ch in "-_" for ch in n):
            fail("%s new-nonce: nonce %r" % (m, n))
        if hd.get("Link") != index:
            fail("%s new-nonce: Link %s" % (m, hd.get("Link")))
        seen.add(n)
    ok("new-nonce: HEAD 200, GET 204, no-store, fresh base64url nonces")

    # newAccount: created (201), then the same key finds it (200).
    k1 = Key("ES256")
    new_acct = d["newAccount"]
    res = c.post(new_acct, c.jws(k1, new_acct, {
        "termsOfServiceAgreed": True,
        "contact": ["mailto:ops@certkeep.test"]}))
    hd, acct = expect(res, 201, "newAccount")
    kid = hd.get("Location")
    if not kid or not kid.startswith(api + "/acme/acct/"):
        fail("newAccount: Location %s" % kid)
    if acct.get("status") != "valid" or \
            acct.get("contact") != ["mailto:ops@certkeep.test"] or \
            acct.get("termsOfServiceAgreed") is not True or \
            not acct.get("orders"):
        fail("newAccount: account object %s" % acct)
    if hd.get("Content-Type") != "application/json" or \
            not hd.get("Replay-Nonce") or hd.get("Link") != index:
        fail("newAccount: headers %s" % dict(hd))
    ok("newAccount 201, Location %s" % kid)
    res = c.post(new_acct, c.jws(k1, new_acct, {"contact": []}))
    hd, a2 = expect(res, 200, "newAccount with a known key")
    if hd.get("Location") != kid or \
            a2.get("contact") != ["mailto:ops@certkeep.test"]:
        fail("newAccount again: Location %s, %s" % (hd.get("Location"),
                                                    a2))
    ok("newAccount with the same key: 200, the same account, unchanged")
    res = c.post(new_acct, c.jws(k1, new_acct,
                                 {"onlyReturnExisting": True}))
    hd, _ = expect(res, 200, "onlyReturnExisting, known key")
    if hd.get("Location") != kid:
        fail("onlyReturnExisting: Location %s" % hd.get("Location"))
    ok("onlyReturnExisting finds the account")

    # Other key types register too.
    others, other_kids = [], []
    for kind in ("RS256", "EdDSA"):
        k = Key(kind)
        others.append(k)
        res = c.post(new_acct, c.jws(k, new_acct,
                                     {"termsOfServiceAgreed": True}))
        h, _ = expect(res, 201, "newAccount " + kind)
        other_kids.append(h["Location"])
        ok("newAccount with an %s key: 201" % kind)

    # POST-as-GET, contact update.
    res = c.post(kid, c.jws(k1, kid, None, kid=kid))
    hd, a3 = expect(res, 200, "account POST-as-GET")
    if a3.get("status") != "valid" or a3.get("contact") != \
            ["mailto:ops@certkeep.test"]:
        fail("POST-as-GET: %s" % a3)
    ok("account POST-as-GET: 200, valid")
    res = c.post(kid, c.jws(k1, kid, {"contact": [
        "mailto:pki@certkeep.test", "mailto:oncall@certkeep.test"]},
        kid=kid))
    hd, a4 = expect(res, 200, "contact update")
    if a4.get("contact") != ["mailto:pki@certkeep.test",
                             "mailto:oncall@certkeep.test"]:
        fail("contact update: %s" % a4)
    res = c.post(kid, c.jws(k1, kid, None, kid=kid))
    _, a5 = expect(res, 200, "POST-as-GET after the update")
    if a5.get("contact") != a4.get("contact"):
        fail("the contact update did not last: %s" % a5)
    ok("contact updated and kept")
    problem(c.post(kid, c.jws(k1, kid, {"contact": ["tel:+1555"]},
                              kid=kid)),
            400, "unsupportedContact", "a tel: contact")
    problem(c.post(kid, c.jws(k1, kid, {"contact": [
        "mailto:a@certkeep.test,b@certkeep.test"]}, kid=kid)),
            400, "invalidContact", "two addresses in one contact")

    # Negatives (RFC 8555 section 6).
    n = c.get_nonce()
    body = c.jws(k1, kid, None, kid=kid, nonce=n)
    expect(c.post(kid, body), 200, "first use of a nonce")
    problem(c.post(kid, body), 400, "badNonce", "replayed nonce")
    problem(c.post(kid, c.jws(k1, kid, None, kid=kid, nonce="AAAA")),
            400, "badNonce", "a nonce never issued")
    problem(c.post(kid, c.jws(k1, api + "/acme/acct/other", None,
                              kid=kid)),
            403, "unauthorized", "wrong url in the protected header")
    body = c.jws(k1, kid, {"contact": ["mailto:x@certkeep.test"]}, kid=kid)
    body["payload"] = b64u(json.dumps(
        {"contact": ["mailto:evil@certkeep.test"]}).encode())
    problem(c.post(kid, body), 403, "unauthorized", "tampered payload")
    _, a6 = expect(c.post(kid, c.jws(k1, kid, None, kid=kid)), 200,
                   "POST-as-GET after the tampered request")
    if a6.get("contact") != a4.get("contact"):
        fail("a tampered request changed the account: %s" % a6)
    ok("the tampered request changed nothing")
    ghost = api + "/acme/acct/NoSuchAccount0000000000"
    problem(c.post(ghost, c.jws(k1, ghost, None, kid=ghost)),
            400, "accountDoesNotExist", "unknown kid")
    problem(c.post(new_acct, c.jws(Key("ES256"), new_acct,
                                   {"onlyReturnExisting": True})),
            400, "accountDoesNotExist", "onlyReturnExisting, unknown key")
    body = c.jws(k1, kid, None, kid=kid)
    prot = json.loads(base64.urlsafe_b64decode(body["protected"] + "=="))
    prot["alg"] = "none"
    body["protected"] = b64u(json.dumps(prot).encode())
    # The signature is left in place: an empty one is refused as
    # malformed before the algorithm is looked at.
    doc = problem(c.post(kid, body), 400, "badSignatureAlgorithm",
                  "alg none")
    if "ES256" not in doc.get("algorithms", []):
        fail("badSignatureAlgorithm without \"algorithms\": %s" % doc)
    ok("badSignatureAlgorithm lists the algorithms")
    problem(c.post(kid, c.jws(k1, kid, None, kid=kid),
                   ctype="application/json"),
            415, "malformed", "wrong Content-Type")
    problem(c.post(kid, b"{not json"), 400, "malformed", "not a JWS")
    problem(c.post(new_acct, c.jws(k1, new_acct, {}, kid=kid)),
            400, "malformed", "newAccount signed with kid")
    problem(c.post(kid, c.jws(k1, kid, None)),
            400, "malformed", "account request signed with jwk")
    k2 = Key("ES256")
    problem(c.post(kid, c.jws(k2, kid, None, kid=kid)),
            403, "unauthorized", "signed with another key")
    big = c.jws(k1, kid, {"contact": ["mailto:" + "a" * 70000 +
                                      "@certkeep.test"]}, kid=kid)
    st, _, _ = c.post(kid, big)
    if st != 413:
        fail("oversized body: HTTP %d, expected 413" % st)
    ok("oversized body -> 413")

    # Key rollover (RFC 8555 7.3.5): the inner JWS is signed by the new
    # key and names the account and its old key.
    kc = d["keyChange"]

    def rollover(old, new, account=None, old_jwk=None, inner_url=None):
        inner = c.jws(new, inner_url or kc, {
            "account": account or kid, "oldKey": old_jwk or old.jwk},
            nonce=False)
        return c.post(kc, c.jws(old, kc, inner, kid=kid))

    kn = Key("ES256")
    problem(rollover(k1, kn, old_jwk=Key("ES256").jwk), 400, "malformed",
            "key change naming another old key")
    problem(rollover(k1, kn, account=api + "/acme/acct/x"), 400,
            "malformed", "key change naming another account")
    problem(rollover(k1, kn, inner_url=d["newAccount"]), 400, "malformed",
            "key change with another inner url")
    res = rollover(k1, others[0])
    problem(res, 409, "malformed", "key change to another account's key")
    if not res[1].get("Location", "").startswith(api + "/acme/acct/") or \
            res[1].get("Location") == kid:
        fail("409 without the other account's Location: %s" %
             res[1].get("Location"))
    ok("409 names the account that holds the key")
    _, a8 = expect(rollover(k1, kn), 200, "key change")
    if a8.get("status") != "valid":
        fail("key change: %s" % a8)
    ok("account key changed (to another ES256 key)")
    problem(c.post(kid, c.jws(k1, kid, None, kid=kid)), 403,
            "unauthorized", "a request signed with the old key")
    expect(c.post(kid, c.jws(kn, kid, None, kid=kid)), 200,
           "POST-as-GET signed with the new key")
    hd, _ = expect(c.post(new_acct, c.jws(kn, new_acct,
                                          {"onlyReturnExisting": True})),
                   200, "lookup by the new key")
    if hd.get("Location") != kid:
        fail("the new key finds %s" % hd.get("Location"))
    problem(c.post(new_acct, c.jws(k1, new_acct,
                                   {"onlyReturnExisting": True})),
            400, "accountDoesNotExist", "lookup by the old key")
    ok("the new key signs for the account and finds it; the old one not")
    k1 = kn

    if store_db:
        orders(c, api, kid, k1, other_kids[1], others[1], store_db)

    # Deactivation: then every request with that kid is refused, and the
    # key no longer finds its account.
    res = c.post(kid, c.jws(k1, kid, {"status": "deactivated"}, kid=kid))
    _, a7 = expect(res, 200, "deactivate")
    if a7.get("status") != "deactivated":
        fail("deactivate: %s" % a7)
    ok("account deactivated")
    problem(c.post(kid, c.jws(k1, kid, None, kid=kid)),
            403, "unauthorized", "POST-as-GET of a deactivated account")
    problem(c.post(kid, c.jws(k1, kid, {"contact": []}, kid=kid)),
            403, "unauthorized", "update of a deactivated account")
    problem(c.post(new_acct, c.jws(k1, new_acct, {})),
            403, "unauthorized", "newAccount with a deactivated key")
    print("acme-account-url " + kid)


if __name__ == "__main__":
    main()
