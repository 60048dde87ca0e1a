#!/usr/bin/env python3
"""syslog_sink.py SOCKET OUT: a stand-in for syslog on a local datagram
socket. Each datagram becomes one line of OUT (flushed at once)."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
# certkeepd runs as the service user when the test runs as root.
os.chmod(path, 0o666)
with open(out, "a", encoding="utf-8", errors="replace") as f:
    while True:
        data = s.recv(65536)
        f.write(data.decode("utf-8", "replace").replace("\n", "\\n") + "\n")
        f.flush()
