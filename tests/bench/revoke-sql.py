#!/usr/bin/env python3
"""revoke-sql.py STORE.DB COUNT USER > revoke.sql

Writes one SQL transaction (for the sqlite3 shell) that revokes COUNT
issued tls-server certificates of a stopped CA's store, writing exactly
what `certkeep revoke` writes for each one (ck_ca_revoke_as in
src/ca/ca_revoke.c), so that a large benchmark fixture gets its
revocations in seconds instead of one API call (and one CRL) each:

  store_cert_revoke   certs row: status 'revoked', revoked_at, reason,
                      change_seq = the next value of the change_seq counter
  audit_append        audit row: next id, time, USER, 'revoke', serial,
                      'ok', the reason's name, prev_hash, hash (SHA-256
                      chain of src/audit/audit.c), next change_seq
                      meta 'audit_head' = "<id>:<hex hash>", next change_seq

so three change_seq values per revocation, in that order, and the counter
advanced by 3 * COUNT. The certificates are the first COUNT by serial
(serials are random, so a sample spread over the whole CA); reasons cycle
over keyCompromise, superseded, cessationOfOperation, affiliationChanged.
The store is only read here; nothing is written until the SQL is run.
"""
import hashlib
import sqlite3
import struct
import sys
import time

TAG = b"certkeep-audit-v1\0"
# (code, name) as in src/x509/crlbuild.c
REASONS = [(1, "keyCompromise"), (4, "superseded"),
           (5, "cessationOfOperation"), (3, "affiliationChanged")]


def u64(v):
    return struct.pack(">Q", v & 0xFFFFFFFFFFFFFFFF)


def audit_hash(eid, etime, strs, prev):
    """audit_entry_hash(): tag with its NUL, id and time as 8 bytes
    big-endian, each string as 8-byte length and bytes, then prev."""
    h = hashlib.sha256(TAG + u64(eid) + u64(etime))
    for s in strs:
        b = s.encode()
        h.update(u64(len(b)) + b)
    h.update(prev)
    return h.digest()


def q(s):
    return "'" + s.replace("'", "''") + "'"


def main():
    if len(sys.argv) != 4 or not sys.argv[2].isdigit():
        sys.exit("usage: revoke-sql.py STORE.DB COUNT USER")
    path, count, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    seq = db.execute("SELECT value FROM change_seq WHERE id = 1").fetchone()[0]
    row = db.execute("SELECT id, hash FROM audit ORDER BY id DESC "
                     "LIMIT 1").fetchone()
    last_id, prev = (row[0], bytes(row[1])) if row else (0, bytes(32))
    serials = [r[0] for r in db.execute(
        "SELECT serial FROM certs WHERE status = 'issued' AND is_ca = 0 "
        "AND profile = 'tls-server' ORDER BY serial LIMIT ?", (count,))]
    db.close()
    if len(serials) != count:
        sys.exit("revoke-sql.py: only %d issued certificates, %d wanted"
                 % (len(serials), count))
    now = int(time.time())
    out = sys.stdout
    out.write("-- %d revocations as certkeep revoke makes them "
              "(tests/bench/revoke-sql.py)\nBEGIN IMMEDIATE;\n" % count)
    eid = last_id
    for i, serial in enumerate(serials):
        code, name = REASONS[i % len(REASONS)]
        seq += 1
        out.write("UPDATE certs SET status = 'revoked', change_seq = %d, "
                  "revoked_at = %d, reason = %d WHERE serial = %s AND "
                  "status = 'issued';\n" % (seq, now, code, q(serial)))
        eid += 1
        seq += 1
        strs = [user, "revoke", serial, "ok", name]
        h = audit_hash(eid, now, strs, prev)
        out.write("INSERT INTO audit (id, time, user, action, object, "
                  "result, detail, prev_hash, hash, change_seq) VALUES "
                  "(%d, %d, %s, %s, %s, %s, %s, X'%s', X'%s', %d);\n"
                  % (eid, now, q(user), q("revoke"), q(serial), q("ok"),
                     q(name), prev.hex(), h.hex(), seq))
        prev = h
        seq += 1    # the audit_head upsert of this revocation
    out.write("INSERT INTO meta (key, value, change_seq) VALUES "
              "('audit_head', '%d:%s', %d) ON CONFLICT (key) DO UPDATE SET "
              "value = excluded.value, change_seq = excluded.change_seq;\n"
              % (eid, prev.hex(), seq))
    out.write("UPDATE change_seq SET value = %d WHERE id = 1;\n" % seq)
    out.write("COMMIT;\n")


if __name__ == "__main__":
    main()
