#!/usr/bin/env python3
"""genreport-style DNS protocol compliance checks for one authoritative server.

A clean re-statement (dnspython, not ISC code) of the tests of ISC's
DNS-Compliance-Testing `genreport` (https://ednscomp.isc.org): each test sends
one query with the same header flags / opcode / EDNS version / options / flags
/ transport as genreport's test of that name, and the response is judged by
the same expectations (RFC 1035, 6891, 3225, 7873, 1034 Z bit, ...).

usage: dnscompliance.py ZONE SERVER_IP PORT [--full] [--tests a,b,c] [--timeout S]
output (one line, genreport style) then 'N passed, N failed':
  com. @127.0.0.1#5300: dns=ok aa=ok ... edns1=ok ... ednstcp=ok
  a failing test shows its tags instead of ok, e.g. edns1=noerror,soa,badversion
exit status 0 when every test is ok, 1 otherwise.
"""
import argparse, socket, struct, sys
import dns.rrset, dns.rdataclass, dns.edns, dns.flags, dns.message, dns.name, dns.opcode, dns.rcode, dns.rdatatype

DO = 0x8000
# name: (edns_version or None for no EDNS, udp payload, ednsflags, options[(code, bytes)],
#        tcp, ignore_tc, header flags set in the request, opcode, qtype, cookie_sent)
F_AA, F_TC, F_RD, F_RA, F_Z, F_AD, F_CD = 0x0400, 0x0200, 0x0100, 0x0080, 0x0040, 0x0020, 0x0010
NSID = (3, b""); ECS = (8, b"\x00\x01\x00\x00"); EXPIRE = (9, b""); COOKIE = (10, bytes(range(1, 9)))
OPT100 = (100, b"")
T = {}
def t(name, v=None, size=0, eflags=0, opts=(), tcp=False, ignore=False, hflags=0, op=0, qtype="SOA", dig=""):
    T[name] = dict(v=v, size=size, eflags=eflags, opts=list(opts), tcp=tcp, ignore=ignore,
                   hflags=hflags, op=op, qtype=qtype, cookie=any(o[0] == 10 for o in opts), dig=dig)
# --- plain DNS (genreport "FULL" set) ---
t("dns", dig="+noedns +noad +norec SOA")
t("aa", hflags=F_AA, dig="+noedns +noad +norec +aaflag SOA")
t("ad", hflags=F_AD, dig="+noedns +ad +norec SOA")
t("cd", hflags=F_CD, dig="+noedns +noad +norec +cd SOA")
t("ra", hflags=F_RA, dig="+noedns +noad +norec +raflag SOA")
t("rd", hflags=F_RD, dig="+noedns +noad +rec SOA")
t("tc", hflags=F_TC, dig="+noedns +noad +norec +tcflag SOA")
t("zflag", hflags=F_Z, dig="+noedns +noad +norec +zflag SOA")
t("opcode", op=15, qtype=None, dig="+noedns +noad +norec +header-only +opcode=15")
t("opcodeflg", op=15, qtype=None, hflags=F_TC | F_RD | F_RA | F_CD | F_AD | F_AA | F_Z,
  dig="+noedns +header-only +opcode=15 +tcflag +rec +raflag +cd +ad +aaflag +zflag")
t("type666", qtype=666, dig="+noedns +noad +norec TYPE666")
t("tcp", tcp=True, dig="+noedns +noad +norec +tcp SOA")
# --- EDNS (genreport default set) ---
t("edns", v=0, size=4096, dig="+edns=0 +nocookie +noad +norec SOA")
t("edns1", v=1, size=4096, dig="+edns=1 +noednsneg +nocookie +noad +norec SOA")
t("edns@512", v=0, size=512, eflags=DO, ignore=True, qtype="DNSKEY",
  dig="+edns=0 +nocookie +noad +norec +dnssec +ignore +bufsize=512 DNSKEY")
t("ednsopt", v=0, size=4096, opts=[OPT100], dig="+edns=0 +nocookie +noad +norec +ednsopt=100 SOA")
t("edns1opt", v=1, size=4096, opts=[OPT100], dig="+edns=1 +noednsneg +nocookie +noad +norec +ednsopt=100 SOA")
t("do", v=0, size=4096, eflags=DO, dig="+edns=0 +nocookie +noad +norec +dnssec SOA")
t("docd", v=0, size=4096, eflags=DO, hflags=F_CD, dig="+edns=0 +nocookie +noad +norec +dnssec +cd SOA")
t("edns1do", v=1, size=4096, eflags=DO, dig="+edns=1 +noednsneg +nocookie +noad +norec +dnssec SOA")
t("ednsflags", v=0, size=4096, eflags=0x0080, dig="+edns=0 +nocookie +noad +norec +ednsflags=0x0080 SOA")
t("optlist", v=0, size=4096, opts=[NSID, ECS, EXPIRE, COOKIE],
  dig="+edns=0 +noad +norec +nsid +subnet=0.0.0.0/0 +expire +cookie=0102030405060708 SOA")
t("ednsnsid", v=0, size=4096, opts=[NSID], dig="+edns=0 +nocookie +noad +norec +nsid SOA")
t("ednscookie", v=0, size=4096, opts=[COOKIE], dig="+edns=0 +noad +norec +cookie=0102030405060708 SOA")
t("ednsexpire", v=0, size=4096, opts=[EXPIRE], dig="+edns=0 +nocookie +noad +norec +expire SOA")
t("ednssubnet", v=0, size=4096, opts=[ECS], dig="+edns=0 +nocookie +noad +norec +subnet=0.0.0.0/0 SOA")
t("edns1nsid", v=1, size=4096, opts=[NSID], dig="+edns=1 +noednsneg +nocookie +noad +norec +nsid SOA")
t("edns1cookie", v=1, size=4096, opts=[COOKIE], dig="+edns=1 +noednsneg +noad +norec +cookie=0102030405060708 SOA")
t("edns1expire", v=1, size=4096, opts=[EXPIRE], dig="+edns=1 +noednsneg +nocookie +noad +norec +expire SOA")
t("edns1subnet", v=1, size=4096, opts=[ECS], dig="+edns=1 +noednsneg +nocookie +noad +norec +subnet=0.0.0.0/0 SOA")
t("ednstcp", v=0, size=512, eflags=DO, tcp=True, qtype="DNSKEY",
  dig="+edns=0 +nocookie +noad +norec +dnssec +bufsize=512 +tcp DNSKEY")

DEFAULT = ["dns", "edns", "edns1", "edns@512", "ednsopt", "edns1opt", "do", "ednsflags", "optlist", "ednstcp"]
FULL = ["dns", "aa", "ad", "cd", "ra", "rd", "tc", "zflag", "opcode", "opcodeflg", "type666", "tcp",
        "edns", "edns1", "edns@512", "ednsopt", "edns1opt", "do", "docd", "edns1do", "ednsflags", "optlist",
        "ednsnsid", "ednscookie", "ednsexpire", "ednssubnet",
        "edns1nsid", "edns1cookie", "edns1expire", "edns1subnet", "ednstcp"]


def build(zone, spec, qid):
    """Request wire bytes, built by hand for the header so odd flag/opcode combinations survive."""
    flags = spec["hflags"] | (spec["op"] << 11)
    q = dns.message.Message(id=qid)
    q.flags = flags
    if spec["qtype"] is not None:
        q.question = [dns.rrset.RRset(dns.name.from_text(zone), dns.rdataclass.IN,
                                      dns.rdatatype.from_text(str(spec["qtype"])) if isinstance(spec["qtype"], str)
                                      else spec["qtype"])]
    if spec["v"] is not None:
        opts = [dns.edns.GenericOption(c, d) for c, d in spec["opts"]]
        q.use_edns(edns=spec["v"], ednsflags=spec["eflags"], payload=spec["size"], options=opts)
    wire = bytearray(q.to_wire())
    struct.pack_into("!H", wire, 2, flags)   # exact header flags as requested (Z, TC, opcode...)
    return bytes(wire)


def exchange(server, port, wire, tcp, timeout):
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    if not tcp:
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout); s.sendto(wire, (server, port))
            while True:
                data, peer = s.recvfrom(65535)
                if data[:2] == wire[:2]:
                    return data
    with socket.create_connection((server, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack("!H", len(wire)) + wire)
        def readn(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise EOFError("eof")
                buf += chunk
            return buf
        (n,) = struct.unpack("!H", readn(2))
        return readn(n)


def judge(zone, spec, wire_q, data):
    """Return the list of failure tags (empty = ok), plus informational tags."""
    tags, info = [], []
    if len(data) < 12:
        return ["malformed"], info
    rid, rflags = struct.unpack("!HH", data[:4])
    if rid != struct.unpack("!H", wire_q[:2])[0]:
        tags.append("id")
    if not rflags & 0x8000:
        tags.append("noqr")
    opcode = (rflags >> 11) & 0xF
    aa, rd, ra, z, ad, cd = (bool(rflags & f) for f in (F_AA, F_RD, F_RA, F_Z, F_AD, F_CD))
    try:
        # header fields were taken from the raw bytes above; clear the opcode before parsing
        # because older dnspython (Debian's 2.3) rejects unassigned opcodes such as 15
        plain = bytearray(data); struct.pack_into("!H", plain, 2, rflags & ~0x7800)
        r = dns.message.from_wire(bytes(plain), ignore_trailing=False, one_rr_per_rrset=True)
    except Exception as e:  # unparsable response
        return ["malformed"], [type(e).__name__]
    rcode = r.rcode()            # includes the extended (OPT) bits: BADVERS = 16
    seenopt = r.edns >= 0
    ver = r.edns if seenopt else None
    v = spec["v"]
    if opcode != spec["op"]:
        tags.append({0: "query", 1: "iquery", 2: "status", 4: "notify", 5: "update"}.get(opcode, f"opcode{opcode}"))
    if spec["qtype"] is not None:
        qs = [(rr.name, rr.rdtype) for rr in r.question]
        want = dns.rdatatype.from_text(str(spec["qtype"])) if isinstance(spec["qtype"], str) else spec["qtype"]
        if qs and qs != [(dns.name.from_text(zone), want)]:
            tags.append("question")
    rtext = dns.rcode.to_text(rcode).lower()
    if v in (None, 0):
        if spec["op"] == 0:
            if rcode != 0 and not (spec["cookie"] and rcode == dns.rcode.BADCOOKIE):
                tags.append(rtext)
        elif rcode != dns.rcode.NOTIMP:
            tags.append(rtext)
    else:
        if rcode != dns.rcode.BADVERS:
            tags.append(rtext)
    if seenopt and ver != 0:
        tags.append("version-not-zero")
    if seenopt and v is not None and ((ver < v and rcode != dns.rcode.BADVERS) or
                                      (ver >= v and rcode == dns.rcode.BADVERS)):
        tags.append("badversion")
    if not seenopt and v is not None:
        tags.append("noopt")
    if seenopt and v is None:
        tags.append("opt")
    seensoa = any(rr.rdtype == dns.rdatatype.SOA for rr in r.answer)
    if spec["qtype"] == "SOA":
        if v in (None, 0) and not spec["ignore"] and not seensoa and rcode == 0:
            tags.append("nosoa")
        if seensoa and ((v not in (None, 0)) or rcode != 0):
            tags.append("soa")
    if seenopt:
        sent = {c for c, _ in spec["opts"]}
        known = {3, 8, 9, 10, 11, 12, 15}   # NSID ECS EXPIRE COOKIE keepalive padding EDE
        for o in r.options:
            if o.otype in sent and o.otype not in known:
                tags.append("echoed")
            if o.otype == 3: info.append("nsid")
            if o.otype == 9: info.append("expire")
            if o.otype == 10: info.append("cookie")
            if o.otype == 8: info.append("subnet")
        if spec["eflags"] & DO and not r.ednsflags & DO:
            tags.append("nodo")
        if r.ednsflags & 0x7FFF:
            tags.append("mbz")
    op = spec["op"]; h = spec["hflags"]
    if not aa and v in (None, 0) and rcode == 0 and op == 0:
        tags.append("noaa")
    if aa and op != 0:
        tags.append("aa")
    if ra and op != 0:
        tags.append("ra")
    if rd and (op != 0 or not h & F_RD):
        tags.append("rd")
    if not rd and h & F_RD and op == 0:
        tags.append("nord")
    if ad and (op != 0 or (not h & F_AD and not spec["eflags"] & DO)):
        tags.append("ad")
    if cd and (op != 0 or not h & F_CD):
        tags.append("cd")
    if z:
        tags.append("z")
    if spec["ignore"] and len(data) > (spec["size"] or 512):
        tags.append("toobig")
    return tags, info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zone"); ap.add_argument("server"); ap.add_argument("port", type=int)
    ap.add_argument("--full", action="store_true", help="all tests (flags, opcode, type666, tcp, EDNS options)")
    ap.add_argument("--tests", help="comma-separated test names")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--show-dig", action="store_true", help="print the equivalent dig command of each test")
    a = ap.parse_args()
    zone = a.zone if a.zone.endswith(".") else a.zone + "."
    names = a.tests.split(",") if a.tests else (FULL if a.full else DEFAULT)
    results, failed = [], 0
    for i, name in enumerate(names):
        spec = T[name]
        wire = build(zone, spec, 0x1000 + i)
        try:
            data = exchange(a.server, a.port, wire, spec["tcp"], a.timeout)
            tags, info = judge(zone, spec, wire, data)
        except socket.timeout:
            tags, info = ["timeout"], []
        except (ConnectionError, EOFError, OSError) as e:
            tags, info = [{"ConnectionRefusedError": "connection-refused", "ConnectionResetError": "reset"}
                          .get(type(e).__name__, "eof" if isinstance(e, EOFError) else "failed")], []
        if tags:
            failed += 1
        results.append(f"{name}={','.join(tags) if tags else 'ok'}{''.join(',' + x for x in info)}")
        if a.show_dig:
            print(f"  {name}: dig @{a.server} -p {a.port} {spec['dig'].replace(' SOA', ' SOA ' + zone).replace(' DNSKEY', ' DNSKEY ' + zone).replace(' TYPE666', ' TYPE666 ' + zone)}")
    print(f"{zone} @{a.server}#{a.port}: " + " ".join(results))
    print(f"{len(names) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
