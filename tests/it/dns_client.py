"""A dnspython client for the DNS tests (tests/it/dns.rs): asks the queries given as a
JSON list in argv[1], and prints one JSON object per query, one a line.

A query: {"server": "127.0.0.1:PORT", "name": ..., "type": "A", "proto": "udp"|"tcp",
"rd": bool, "edns": null|PAYLOAD, "qr": bool}. With "qr", the message is sent with QR
set (a response), and a normal query follows it: over UDP the result says whether the
first went unanswered ("dropped") once the second's answer is in and "wait" seconds
more have passed; over TCP (same connection) the result is the first response read,
with "id_matches_follow_up" telling whose it is.

A result: rcode, flags, the question, each section as [name, ttl, type, data] lists,
"edns" (-1 without OPT), "payload", "options" (option codes), "size" (bytes, UDP).
"""

import json
import socket
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

TIMEOUT = 10.0


def records(section):
    out = []
    for rrset in section:
        for rdata in rrset:
            out.append(
                [
                    rrset.name.to_text(),
                    rrset.ttl,
                    dns.rdatatype.to_text(rrset.rdtype),
                    rdata.to_text(),
                ]
            )
    return out


def describe(msg, size=None):
    return {
        "id": msg.id,
        "rcode": dns.rcode.to_text(msg.rcode()),
        "flags": dns.flags.to_text(msg.flags).split(),
        "question": [[q.name.to_text(), dns.rdatatype.to_text(q.rdtype)] for q in msg.question],
        "answer": records(msg.answer),
        "authority": records(msg.authority),
        "additional": records(msg.additional),
        "edns": msg.edns,
        "payload": msg.payload if msg.edns >= 0 else None,
        "options": [int(o.otype) for o in msg.options],
        "size": size,
    }


def build(q):
    msg = dns.message.make_query(q["name"], q.get("type", "A"), use_edns=False)
    if not q.get("rd", True):
        msg.flags &= ~dns.flags.RD
    if q.get("edns") is not None:
        msg.use_edns(0, payload=q["edns"])
    return msg


def host_port(server):
    host, port = server.rsplit(":", 1)
    return host, int(port)


def tcp_frame(wire):
    return struct.pack("!H", len(wire)) + wire


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def ask(q):
    host, port = host_port(q["server"])
    msg = build(q)
    proto = q.get("proto", "udp")
    if q.get("qr"):
        msg.flags |= dns.flags.QR
        follow = build(dict(q, qr=False))
        while follow.id == msg.id:
            follow = build(dict(q, qr=False))
        if proto == "udp":
            # The response-as-request, then a query: once the query's answer is in, any
            # answer to the first would have come too (give it "wait" seconds more).
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(TIMEOUT)
                s.sendto(msg.to_wire(), (host, port))
                s.sendto(follow.to_wire(), (host, port))
                ids = []
                while follow.id not in ids:
                    ids.append(dns.message.from_wire(s.recvfrom(65535)[0]).id)
                s.settimeout(q.get("wait", 0.5))
                try:
                    while True:
                        ids.append(dns.message.from_wire(s.recvfrom(65535)[0]).id)
                except socket.timeout:
                    pass
                return {"dropped": msg.id not in ids, "follow_up_answered": True}
        follow = build(dict(q, qr=False))
        with socket.create_connection((host, port), timeout=TIMEOUT) as s:
            s.sendall(tcp_frame(msg.to_wire()) + tcp_frame(follow.to_wire()))
            (length,) = struct.unpack("!H", read_exact(s, 2))
            reply = dns.message.from_wire(read_exact(s, length))
            out = describe(reply)
            out["id_matches_follow_up"] = reply.id == follow.id
            return out
    if proto == "udp":
        # By hand rather than dns.query.udp: the size of what came back matters.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT)
            s.sendto(msg.to_wire(), (host, port))
            while True:
                wire, _ = s.recvfrom(65535)
                reply = dns.message.from_wire(wire)
                if reply.id == msg.id:
                    return describe(reply, len(wire))
    reply = dns.query.tcp(msg, host, port=port, timeout=TIMEOUT)
    return describe(reply)


def main():
    for q in json.loads(sys.argv[1]):
        try:
            out = ask(q)
        except Exception as e:  # reported to the test, which shows the query
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
