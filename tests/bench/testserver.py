#!/usr/bin/env python3
"""A small HTTP/1.1 server for loadgen's self-test (selftest.sh).

It writes its responses byte by byte as the test needs them, so that each
framing loadgen must understand gets exercised:

  /cl        200, Content-Length, keep-alive
  /chunked   200, Transfer-Encoding: chunked (several chunks, an extension,
             a trailer), keep-alive
  /eof       200, no length, Connection: close: the body ends at the close
  /http10    HTTP/1.0 200 with Content-Length, then close
  /continue  a 100 Continue first, then 200 with Content-Length
  /nomatch   200 without the CERTIFICATE marker
  /status500 500
  /slow      waits 3 s, then 200
  /count     GET: JSON {"path": requests served, ...} (not counted itself)

POST bodies must be JSON with a "csr" or "certificate_request" member
holding a whole PEM CSR (this checks loadgen's JSON escaping); a bad body
gets a 400. With --token, requests without 'Authorization: Bearer TOKEN'
get a 401. Listens on 127.0.0.1 only; --cert/--key for TLS. Prints the port
on stdout once it listens (--port 0 picks a free one).
"""
import argparse
import json
import socket
import socketserver
import ssl
import threading
import time

PEM_HEAD = "-----BEGIN CERTIFICATE REQUEST-----\n"
PEM_TAIL = "\n-----END CERTIFICATE REQUEST-----"
CERT_BODY = json.dumps({
    "success": True,
    "result": {"certificate": "-----BEGIN CERTIFICATE-----\nMIIBxx\n-----END CERTIFICATE-----\n"},
}).encode()

counts = {}
csrs = set()
lock = threading.Lock()


def count(path, csr=None):
    with lock:
        counts[path] = counts.get(path, 0) + 1
        if csr is not None:
            csrs.add(csr)


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.buf = b""

    def read_until(self, marker):
        while marker not in self.buf:
            data = self.request.recv(65536)
            if not data:
                return None
            self.buf += data
        head, _, self.buf = self.buf.partition(marker)
        return head

    def read_n(self, n):
        while len(self.buf) < n:
            data = self.request.recv(65536)
            if not data:
                return None
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.request.sendall(data)

    def respond(self, status, body, extra=b"", version=b"HTTP/1.1"):
        reason = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 500: b"Internal Server Error"}
        self.send(version + b" %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
                  % (status, reason.get(status, b"X"), len(body), extra, body))

    def handle(self):
        token = self.server.token
        while True:
            head = self.read_until(b"\r\n\r\n")
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = b""
            if "content-length" in headers:
                body = self.read_n(int(headers["content-length"]))
                if body is None:
                    return
            if path == "/count":
                with lock:
                    data = dict(counts)
                    data["distinct_csrs"] = len(csrs)
                self.respond(200, json.dumps(data).encode())
                continue
            if token and headers.get("authorization") != "Bearer " + token:
                count("unauthorized")
                self.respond(401, b'{"error":"unauthorized"}')
                continue
            csr = None
            if method == "POST":
                try:
                    doc = json.loads(body)
                    csr = doc.get("csr") or doc.get("certificate_request")
                    ok = csr.startswith(PEM_HEAD) and csr.endswith(PEM_TAIL)
                except (ValueError, AttributeError):
                    ok = False
                if not ok:
                    count("bad_body")
                    self.respond(400, b'{"error":"bad body"}')
                    continue
            count(path, csr)
            if path == "/cl" or path.startswith("/ocsp/"):
                self.respond(200, CERT_BODY)
            elif path == "/chunked":
                parts = [CERT_BODY[:7], CERT_BODY[7:40], CERT_BODY[40:]]
                out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                for i, p in enumerate(parts):
                    out += b"%x%s\r\n%s\r\n" % (len(p), b";ext=1" if i == 1 else b"", p)
                out += b"0\r\nX-Trailer: yes\r\n\r\n"
                # Split the response over several writes.
                for i in range(0, len(out), 50):
                    self.send(out[i:i + 50])
            elif path == "/eof":
                self.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + CERT_BODY)
                return
            elif path == "/http10":
                self.respond(200, CERT_BODY, version=b"HTTP/1.0")
                return
            elif path == "/continue":
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.respond(200, CERT_BODY)
            elif path == "/nomatch":
                self.respond(200, b'{"success":true}')
            elif path == "/status500":
                self.respond(500, b'{"error":"boom"}')
            elif path == "/slow":
                time.sleep(3)
                self.respond(200, CERT_BODY)
            else:
                self.respond(400, b'{"error":"no such path"}')


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler, tls, token):
        super().__init__(addr, handler)
        self.tls = tls
        self.token = token

    def get_request(self):
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token")
    args = ap.parse_args()
    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
    srv = Server(("127.0.0.1", args.port), Handler, tls, args.token)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
