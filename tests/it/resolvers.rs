//! Interop with Knot Resolver and PowerDNS Recursor, two real resolvers, each forwarding
//! everything to `dnsd local` (RD set), as Unbound does in `unbound.rs`: A, AAAA, the
//! www rule's CNAME, NXDOMAIN and NODATA must come through them, over UDP and TCP.
//!
//! Neither can listen on port 0 and say which port it got, so each runs on port 53 in a
//! network namespace of the test's own ([`Netns`]), with dnsd's hierarchy beside it on
//! ports 0, and dig asks from there too. Readiness is the resolver's first answer
//! through dnsd, polled a bounded number of times.

use std::net::SocketAddr;
use std::path::Path;

use crate::dns::{com_zone_text, require_tool, sbin, Reply};
use crate::harness::PATIENCE;
use crate::netns::Netns;

/// Where the resolver under test listens, in its namespace.
const RESOLVER: &str = "127.0.0.1:53";

/// The question that tells a resolver is up: a name that only dnsd's zone has.
const PROBE: (&str, &str) = ("www.amazon.com", "www.amazon.com. A 205.251.242.103");

/// dnsd's hierarchy in `ns`: a `com` server with the DNS tests' zone, the root, and the
/// local server, each on port 0, files and logs in `dir`. Returns the local server.
pub fn dnsd_hierarchy(ns: &mut Netns, dir: &Path) -> SocketAddr {
    std::fs::write(dir.join("com.toml"), com_zone_text()).unwrap();
    let com = ns.dnsd(&["tld", "com", "com.toml", "--port", "0"], dir);
    std::fs::write(
        dir.join("root.dat"),
        format!("com {} {}\n", com.ip(), com.port()),
    )
    .unwrap();
    let root = ns.dnsd(&["root", "root.dat", "--port", "0"], dir);
    ns.dnsd(
        &[
            "local",
            "--port",
            "0",
            "--root",
            &root.to_string(),
            "--log-dir",
            ".",
        ],
        dir,
    )
}

/// `reply` is `rcode` with exactly `answers` (`name TYPE data`), from a resolver (`qr`
/// and `ra` set), over `transport`.
#[track_caller]
pub fn check(reply: &Reply, transport: &str, rcode: &str, answers: &[&str]) {
    assert_eq!(reply.rcode, rcode, "{}", reply.raw);
    assert!(reply.flag("qr") && reply.flag("ra"), "{}", reply.raw);
    assert_eq!(reply.transport.as_deref(), Some(transport), "{}", reply.raw);
    assert_eq!(reply.answers(), answers, "{}", reply.raw);
}

/// A negative answer (NXDOMAIN or NODATA) carrying the SOA of `zone`.
#[track_caller]
pub fn check_negative(reply: &Reply, transport: &str, rcode: &str, zone: &str) {
    check(reply, transport, rcode, &[]);
    assert_eq!(reply.soa().name, zone, "{}", reply.raw);
}

/// What each resolver is asked, with dig over UDP and over TCP: an A, an AAAA, the www
/// rule's CNAME chain, NXDOMAIN (a name, and a TLD the root does not list) and NODATA
/// (a type the name does not have, and an empty non-terminal).
#[track_caller]
fn assert_dnsd_answers_come_through(ns: &Netns, resolver: SocketAddr) {
    for (transport, flag) in [("UDP", "+notcp"), ("TCP", "+tcp")] {
        let ask = |name: &str, qtype: &str| ns.dig(resolver, &[name, qtype, flag]);
        check(
            &ask("www.google.com", "A"),
            transport,
            "NOERROR",
            &["www.google.com. A 142.250.72.4"],
        );
        check(
            &ask("www.v6.com", "AAAA"),
            transport,
            "NOERROR",
            &["www.v6.com. AAAA 2001:db8::6"],
        );
        check(
            &ask("google.com", "A"),
            transport,
            "NOERROR",
            &[
                "google.com. CNAME www.google.com.",
                "www.google.com. A 142.250.72.4",
            ],
        );
        check_negative(&ask("nope.com", "A"), transport, "NXDOMAIN", "com.");
        check_negative(&ask("www.example.zz", "A"), transport, "NXDOMAIN", ".");
        check_negative(&ask("www.google.com", "AAAA"), transport, "NOERROR", "com.");
        check_negative(&ask("corp.com", "A"), transport, "NOERROR", "com.");
    }
}

/// Starts `command` (a resolver forwarding to dnsd) in `ns` and waits until it answers
/// [`PROBE`] through dnsd.
#[track_caller]
fn start_resolver(ns: &mut Netns, command: std::process::Command) -> SocketAddr {
    let resolver: SocketAddr = RESOLVER.parse().unwrap();
    let index = ns.spawn(command);
    ns.wait_ready(index, resolver, &[PROBE.0, "A"], |r| {
        r.rcode == "NOERROR" && r.answers() == [PROBE.1]
    });
    resolver
}

#[test]
#[cfg_attr(
    any(missing_kresd, missing_dig, missing_netns),
    ignore = "needs kresd, dig, root and iproute2: scripts/ci-deps.sh knot-resolver dig"
)]
fn knot_resolver_forwards_everything_to_dnsd_local() {
    if !(require_tool("kresd") && require_tool("dig")) {
        return;
    }
    let Some(mut ns) = Netns::new("knot_resolver_forwards_everything_to_dnsd_local") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dnsd_hierarchy(&mut ns, dir.path());
    // Loopback only; dnsd's zones are unsigned, so no trust anchor (validation would
    // find the root bogus); the cache in the test's directory.
    let config = dir.path().join("kresd.conf");
    std::fs::write(
        &config,
        format!(
            "net.listen('127.0.0.1', 53, {{ kind = 'dns' }})\n\
             cache.open(10 * MB, 'lmdb://{cache}')\n\
             trust_anchors.remove('.')\n\
             policy.add(policy.all(policy.FORWARD({{'{ip}@{port}'}})))\n",
            cache = dir.path().join("cache").display(),
            ip = local.ip(),
            port = local.port(),
        ),
    )
    .unwrap();
    let mut kresd = ns.command(&sbin("kresd"));
    kresd.arg("-n").arg("-c").arg(&config).arg(dir.path());
    let resolver = start_resolver(&mut ns, kresd);
    assert_dnsd_answers_come_through(&ns, resolver);
}

#[test]
#[cfg_attr(
    any(missing_pdns_recursor, missing_dig, missing_netns),
    ignore = "needs pdns_recursor, dig, root and iproute2: scripts/ci-deps.sh pdns-recursor dig"
)]
fn powerdns_recursor_forwards_everything_to_dnsd_local() {
    if !(require_tool("pdns_recursor") && require_tool("dig")) {
        return;
    }
    let Some(mut ns) = Netns::new("powerdns_recursor_forwards_everything_to_dnsd_local") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dnsd_hierarchy(&mut ns, dir.path());
    // PowerDNS Recursor 4.8's settings (Debian 12): loopback only, in the foreground,
    // logging to stderr; no DNSSEC (dnsd's zones are unsigned, and dig sets AD, which
    // asks for validation); no security poll (a query to the outside); dnsd given as
    // long as it gives its own upstreams (the default 1.5 s is short on a loaded
    // machine, and a forwarder that times out is throttled).
    std::fs::write(
        dir.path().join("recursor.conf"),
        format!(
            "local-address=127.0.0.1\nlocal-port=53\n\
             forward-zones-recurse=.={local}\n\
             dnssec=off\nsecurity-poll-suffix=\nnetwork-timeout={timeout}\n\
             daemon=no\nwrite-pid=no\nsocket-dir={dir}\n\
             disable-syslog=yes\nlog-timestamp=no\nthreads=1\n",
            dir = dir.path().display(),
            timeout = PATIENCE.as_millis(),
        ),
    )
    .unwrap();
    let mut recursor = ns.command(&sbin("pdns_recursor"));
    recursor.arg(format!("--config-dir={}", dir.path().display()));
    let resolver = start_resolver(&mut ns, recursor);
    assert_dnsd_answers_come_through(&ns, resolver);
}
