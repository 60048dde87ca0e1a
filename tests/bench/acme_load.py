#!/usr/bin/env python3
"""acme_load.py - closed-loop load of complete ACME (RFC 8555) flows.

Usage:
  acme_load.py --dir URL --cacert FILE --responder-port PORT
               [--concurrency N] [--duration S] [--warmup S]
               [--domain D] [--poll-ms MS] [--timeout S] [--label L]
               [--json] [--flows N]

N worker processes each run one flow at a time, back to back:

  new account (a fresh EC P-256 key) -> new order (one DNS name) ->
  authorization -> http-01 challenge (answered by this program's own
  responder) -> poll the authorization -> finalize (a fresh P-256 key
  and CSR) -> poll the order -> download the certificate

over one keep-alive HTTPS connection per worker. A flow counts when it
starts after the warm-up and ends (certificate downloaded) before the
deadline; orders/s is those flows over the measured time; latency is
per flow. --flows N instead runs exactly N flows in all (no warm-up).

The http-01 responder needs no state shared with the workers: the name
ordered is the account key's JWK thumbprint (RFC 7638) in hex, as two
32-character labels below --domain, and the key authorization is
"TOKEN.THUMBPRINT" (RFC 8555 8.1), so the responder rebuilds it from the
Host header and the path. The CSRs carry no subject (the name would not
fit a commonName): only the subjectAltName, as RFC 8555 allows.

Each request waits at most --timeout seconds (default 30) for its answer;
a flow that times out fails and is counted under "timeouts" (a stalled
server).

Polling: every --poll-ms (default 20) until the object leaves
"pending"/"processing" (Retry-After is ignored, so that two servers are
polled alike).

Steps: the median time of each part of a flow (account, order,
validation: from the authorization fetch to "valid", finalize: CSR to a
"valid" order, download) over every flow run.

Own cost: the CPU time (user + system) of the workers and the responder
is reported per flow;
at that cost the driver alone could do at most nproc / cost flows per
second on this machine (printed as driver_ceiling), the figure to compare
with the measured rate.

Everything must be on 127.0.0.1 (the directory URL is refused otherwise).
Exit: 0 when every counted flow succeeded and at least one did, 1
otherwise, 2 for usage errors.
"""
import argparse
import base64
import hashlib
import http.client
import http.server
import json
import multiprocessing as mp
import os
import re
import resource
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ---------------------------------------------------------------------
# http-01 responder

CHAL_RE = re.compile(r"^/\.well-known/acme-challenge/([A-Za-z0-9_-]{1,256})$")
NAME_RE = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{32})\.")


class Responder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        m = CHAL_RE.match(self.path)
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        n = NAME_RE.match(host)
        if not m or not n:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        thumb = b64u(bytes.fromhex(n.group(1) + n.group(2)))
        body = ("%s.%s" % (m.group(1), thumb)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ThreadedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


# ---------------------------------------------------------------------
# ACME client


class AcmeError(Exception):
    pass


class Client:
    """One keep-alive HTTPS connection to the ACME server."""

    def __init__(self, dir_url, ctx, timeout):
        u = urllib.parse.urlsplit(dir_url)
        self.timeout = timeout
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ctx
        self.conn = None
        self.nonce = None
        self.connects = 0
        self.requests = 0
        self.dir = self.get_json(dir_url)

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(
                self.host, self.port, context=self.ctx,
                timeout=self.timeout)
            self.connects += 1
        return self.conn

    def request(self, method, url, body=None, headers=None):
        path = urllib.parse.urlsplit(url)
        p = path.path + ("?" + path.query if path.query else "")
        for attempt in (0, 1):
            c = self._conn()
            self.requests += 1
            try:
                c.request(method, p, body=body, headers=headers or {})
                r = c.getresponse()
                data = r.read()
            except TimeoutError:
                # No answer in time: not retried (the request may have
                # been processed, and a stalled server stays stalled).
                c.close()
                self.conn = None
                raise
            except (http.client.HTTPException, OSError):
                # A kept-alive connection the server closed: once more
                # on a new one.
                c.close()
                self.conn = None
                if attempt:
                    raise
                continue
            n = r.getheader("Replay-Nonce")
            if n:
                self.nonce = n
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                self.conn = None
            return r.status, r, data
        raise AcmeError("unreachable")

    def get_json(self, url):
        st, _, data = self.request("GET", url)
        if st != 200:
            raise AcmeError("GET %s: %d" % (url, st))
        return json.loads(data)

    def new_nonce(self):
        st, r, _ = self.request("HEAD", self.dir["newNonce"])
        if not self.nonce:
            raise AcmeError("no nonce (%d)" % st)

    def post(self, url, payload, key, kid=None, expect=(200, 201)):
        for attempt in range(3):
            if not self.nonce:
                self.new_nonce()
            prot = {"alg": "ES256", "nonce": self.nonce, "url": url}
            self.nonce = None
            if kid:
                prot["kid"] = kid
            else:
                prot["jwk"] = key.jwk
            p64 = b64u(json.dumps(prot).encode())
            pl64 = "" if payload is None else b64u(json.dumps(payload).encode())
            sig = key.sign(("%s.%s" % (p64, pl64)).encode())
            body = json.dumps({"protected": p64, "payload": pl64,
                               "signature": b64u(sig)})
            st, r, data = self.request(
                "POST", url, body,
                {"Content-Type": "application/jose+json"})
            if st in expect:
                return r, data
            if st == 400 and b"badNonce" in data and attempt < 2:
                continue
            raise AcmeError("POST %s: %d %s" % (
                urllib.parse.urlsplit(url).path, st, data[:300]))
        raise AcmeError("badNonce three times")


class Key:
    def __init__(self):
        self.k = ec.generate_private_key(ec.SECP256R1())
        n = self.k.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC",
                    "x": b64u(n.x.to_bytes(32, "big")),
                    "y": b64u(n.y.to_bytes(32, "big"))}
        canon = json.dumps(self.jwk, sort_keys=True,
                           separators=(",", ":")).encode()
        self.thumb_raw = hashlib.sha256(canon).digest()

    def sign(self, data):
        r, s = decode_dss_signature(
            self.k.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def poll(cl, url, key, kid, poll_s, limit_s=60):
    end = time.monotonic() + limit_s
    while True:
        _, data = cl.post(url, None, key, kid)
        obj = json.loads(data)
        if obj.get("status") not in ("pending", "processing"):
            return obj
        if time.monotonic() > end:
            raise AcmeError("%s still %s after %d s" % (
                urllib.parse.urlsplit(url).path, obj.get("status"), limit_s))
        time.sleep(poll_s)


STEPS = ("account", "order", "validation", "finalize", "download")


def one_flow(cl, domain, poll_s, steps):
    """One complete flow; the time of each step (STEPS) goes to steps."""
    t = time.monotonic()

    def lap(name):
        nonlocal t
        now = time.monotonic()
        steps[name].append(now - t)
        t = now

    key = Key()
    r, _ = cl.post(cl.dir["newAccount"],
                   {"termsOfServiceAgreed": True}, key, expect=(201,))
    kid = r.getheader("Location")
    lap("account")
    h = key.thumb_raw.hex()
    name = "%s.%s.%s" % (h[:32], h[32:], domain)
    r, data = cl.post(cl.dir["newOrder"],
                      {"identifiers": [{"type": "dns", "value": name}]},
                      key, kid, expect=(201,))
    order_url = r.getheader("Location")
    order = json.loads(data)
    lap("order")
    for az in order["authorizations"]:
        _, data = cl.post(az, None, key, kid)
        authz = json.loads(data)
        if authz["status"] == "valid":
            continue
        ch = [c for c in authz["challenges"] if c["type"] == "http-01"]
        if not ch:
            raise AcmeError("no http-01 challenge")
        cl.post(ch[0]["url"], {}, key, kid)
        authz = poll(cl, az, key, kid, poll_s)
        if authz["status"] != "valid":
            raise AcmeError("authorization %s: %s" % (
                authz["status"], json.dumps(authz)[:300]))
    lap("validation")
    ck = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName(
               [x509.DNSName(name)]), critical=False)
           .sign(ck, hashes.SHA256()))
    der = csr.public_bytes(serialization.Encoding.DER)
    _, data = cl.post(order["finalize"], {"csr": b64u(der)}, key, kid)
    order = json.loads(data)
    if order.get("status") in ("pending", "processing", "ready"):
        order = poll(cl, order_url, key, kid, poll_s)
    if order.get("status") != "valid":
        raise AcmeError("order %s: %s" % (order.get("status"),
                                          json.dumps(order)[:300]))
    lap("finalize")
    _, pem = cl.post(order["certificate"], None, key, kid)
    if b"BEGIN CERTIFICATE" not in pem:
        raise AcmeError("the certificate download holds no certificate")
    lap("download")


def worker(idx, args, t0, warm_end, deadline, nflows, counter, out):
    ctx = ssl.create_default_context(cafile=args.cacert)
    recs = []
    errs = []
    steps = {k: [] for k in STEPS}
    try:
        cl = Client(args.dir, ctx, args.timeout)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        out.put((idx, [], ["directory: %s" % e], 0.0, 0, 0, steps))
        return
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    c0, q0 = cl.connects, cl.requests
    while True:
        if nflows:
            with counter.get_lock():
                if counter.value >= nflows:
                    break
                counter.value += 1
        elif time.monotonic() >= deadline:
            break
        s = time.monotonic()
        ok = True
        try:
            one_flow(cl, args.domain, args.poll_ms / 1000.0, steps)
        except Exception as e:  # noqa: BLE001
            ok = "timeout" if isinstance(e, TimeoutError) else False
            if len(errs) < 5:
                errs.append("%s: %s" % (type(e).__name__, e))
            if cl.conn is not None:
                cl.conn.close()
                cl.conn = None
            cl.nonce = None
        recs.append((s, time.monotonic(), ok))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out.put((idx, recs, errs, cpu, cl.connects - c0, cl.requests - q0,
             steps))


def pct(sorted_v, p):
    if not sorted_v:
        return 0.0
    i = min(len(sorted_v) - 1, max(0, int(round(p / 100.0 *
                                                 len(sorted_v) + 0.5)) - 1))
    return sorted_v[i]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cacert", required=True)
    ap.add_argument("--responder-port", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--flows", type=int, default=0)
    ap.add_argument("--domain", default="bench.acme.test")
    ap.add_argument("--poll-ms", type=float, default=20)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    host = urllib.parse.urlsplit(args.dir).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("acme_load.py: only 127.0.0.1 is a target", file=sys.stderr)
        return 2
    if args.concurrency < 1:
        return 2

    # Bound now, served once the workers are forked: a fork while another
    # thread may hold a lock (stdio, the logging or import locks) can
    # leave the child deadlocked.
    srv = ThreadedServer(("127.0.0.1", args.responder_port), Responder)

    t0 = time.monotonic()
    warm_end = t0 + (0 if args.flows else args.warmup)
    deadline = warm_end + args.duration
    counter = mp.Value("i", 0)
    out = mp.Queue()
    procs = [mp.Process(target=worker,
                        args=(i, args, t0, warm_end, deadline, args.flows,
                              counter, out))
             for i in range(args.concurrency)]
    for p in procs:
        p.start()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    t_end = time.monotonic()
    srv.shutdown()

    recs = [r for res in results for r in res[1]]
    errs = [e for res in results for e in res[2]]
    # The workers, and this process (the http-01 responder).
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = sum(res[3] for res in results) + ru.ru_utime + ru.ru_stime
    connects = sum(res[4] for res in results)
    requests = sum(res[5] for res in results)
    if args.flows:
        counted = recs
        span = (max(r[1] for r in recs) - t0) if recs else 0.0
    else:
        counted = [r for r in recs if r[0] >= warm_end and r[1] <= deadline]
        span = args.duration
    ok = [r for r in counted if r[2] is True]
    bad = [r for r in counted if r[2] is not True]
    timeouts = sum(1 for r in recs if r[2] == "timeout")
    lat = sorted((r[1] - r[0]) * 1000.0 for r in ok)
    rate = len(ok) / span if span > 0 else 0.0
    cpu_per_flow = cpu / len(recs) if recs else 0.0
    ncpu = os.cpu_count() or 1
    res = {
        "label": args.label, "concurrency": args.concurrency,
        "flows_ok": len(ok), "flows_failed": len(bad),
        "flows_all": len(recs), "timeouts": timeouts,
        "seconds": round(span, 3),
        "orders_per_s": round(rate, 2),
        "p50_ms": round(pct(lat, 50), 1), "p90_ms": round(pct(lat, 90), 1),
        "p99_ms": round(pct(lat, 99), 1),
        "max_ms": round(lat[-1], 1) if lat else 0.0,
        "driver_cpu_s": round(cpu, 2),
        "driver_cpu_ms_per_flow": round(cpu_per_flow * 1000.0, 1),
        "driver_ceiling_per_s": round(ncpu / cpu_per_flow, 1)
        if cpu_per_flow else 0.0,
        "requests_per_flow": round(requests / len(recs), 1) if recs else 0,
        "connections_per_flow": round(connects / len(recs), 3)
        if recs else 0,
        "step_p50_ms": {k: round(pct(sorted(
            v for res in results for v in res[6][k]), 50) * 1000.0, 1)
            for k in STEPS},
        "wall_s": round(t_end - t0, 2),
        "errors": errs[:5],
    }
    if args.json:
        print(json.dumps(res))
    else:
        print("%s  concurrency %d" % (args.label or args.dir, args.concurrency))
        print("  flows      %d ok, %d failed (%d run in all, %d timed out) "
              "in %.1f s" % (len(ok), len(bad), len(recs), timeouts, span))
        print("  throughput %.1f orders/s" % rate)
        print("  latency ms p50 %.0f  p90 %.0f  p99 %.0f  max %.0f" % (
            res["p50_ms"], res["p90_ms"], res["p99_ms"], res["max_ms"]))
        print("  driver cpu %.1f s = %.1f ms per flow; alone it could do "
              "~%.0f flows/s on %d cores" % (cpu, cpu_per_flow * 1000.0,
                                            res["driver_ceiling_per_s"], ncpu))
        print("  steps p50  " + ", ".join(
            "%s %.0f ms" % (k, res["step_p50_ms"][k]) for k in STEPS))
        print("  requests   %.1f per flow over %.3f connections per flow" % (
            res["requests_per_flow"], res["connections_per_flow"]))
        for e in errs[:5]:
            print("  error      " + e)
    return 0 if ok and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
