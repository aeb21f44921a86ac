//! dnsd's root as real software uses it: its zone's own name server, `ns.root`, has an
//! address, given as glue with `. NS` (a resolver's priming query, RFC 8109), so that
//! `dig +trace` walks from it down to the answer and Unbound, with dnsd's root as its
//! only root hint, answers the very first query after it starts. Before, `ns.root` was
//! NXDOMAIN: dig said "couldn't get address for 'ns.root'" and Unbound's first answer
//! was SERVFAIL.
//!
//! Every server runs on port 53 (as dig +trace and Unbound ask referred servers there)
//! of its own loopback address in a network namespace of the test's own: the root on
//! 127.0.0.2, the `com` TLD server on 127.0.0.3, Unbound on 127.0.0.4, and for dig, which
//! looks the root's name servers up through the machine's resolver (as with the real
//! root), `dnsd local` on 127.0.0.5 as the namespace's resolver.

use std::net::SocketAddr;

use crate::dns::{require_tool, unbound_bin};
use crate::harness::{run_dnsd, zones, DnsTcp, Proc};
use crate::netns::Netns;

const ROOT_AT: &str = "127.0.0.2";
const COM_AT: &str = "127.0.0.3";
const UNBOUND_AT: &str = "127.0.0.4";
const LOCAL_AT: &str = "127.0.0.5";

/// Starts dnsd's root and `com` server in `ns`, on port 53; returns the root's address.
#[track_caller]
fn hierarchy(ns: &mut Netns, dir: &std::path::Path) -> SocketAddr {
    std::fs::write(dir.join("root.dat"), format!("com {COM_AT} 53\n")).unwrap();
    let com = zones("com.dat");
    ns.dnsd(
        &[
            "tld",
            "com",
            com.to_str().unwrap(),
            "--bind",
            COM_AT,
            "--port",
            "53",
        ],
        dir,
    );
    ns.dnsd(
        &["root", "root.dat", "--bind", ROOT_AT, "--port", "53"],
        dir,
    )
}

#[test]
#[cfg_attr(
    any(missing_dig, missing_netns),
    ignore = "needs dig, root and iproute2: scripts/ci-deps.sh dig"
)]
fn dig_trace_from_dnsd_root_reaches_the_answer() {
    if !require_tool("dig") {
        return;
    }
    let Some(mut ns) = Netns::new("dig_trace_from_dnsd_root_reaches_the_answer") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = hierarchy(&mut ns, dir.path());
    ns.dnsd(
        &[
            "local",
            "--root",
            &root.to_string(),
            "--bind",
            LOCAL_AT,
            "--port",
            "53",
            "--log-dir",
            ".",
        ],
        dir.path(),
    );
    ns.resolver(LOCAL_AT);
    let out = ns
        .command("dig")
        .args(["+trace", "+tries=1", "+time=5", &format!("@{}", root.ip())])
        .arg("www.google.com")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("couldn't get address"), "{text}");
    assert!(
        text.contains(&format!("from {ROOT_AT}#53(ns.root)")),
        "the root's own name server has its address:\n{text}"
    );
    assert!(
        text.contains(&format!("from {COM_AT}#53(ns.com)")),
        "the root refers to com:\n{text}"
    );
    let answer = text
        .lines()
        .find(|l| l.starts_with("www.google.com.") && l.contains("\tA\t"))
        .unwrap_or_else(|| panic!("no answer:\n{text}"));
    assert!(answer.ends_with("142.250.72.4"), "{answer}");
}

#[test]
#[cfg_attr(
    any(missing_unbound, missing_dig, missing_netns),
    ignore = "needs unbound, dig, root and iproute2: scripts/ci-deps.sh unbound dig"
)]
fn unbound_iterating_from_dnsd_root_answers_the_first_query() {
    if !(require_tool("unbound") && require_tool("dig")) {
        return;
    }
    let Some(mut ns) = Netns::new("unbound_iterating_from_dnsd_root_answers_the_first_query")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    hierarchy(&mut ns, path);
    std::fs::write(
        path.join("root.hints"),
        format!(".  3600000 NS ns.root.\nns.root. 3600000 A {ROOT_AT}\n"),
    )
    .unwrap();
    // The root hints go in `server:`, which ends where `remote-control:` starts.
    let hints = format!(
        "    root-hints: \"{}\"\nremote-control:\n",
        path.join("root.hints").display()
    );
    let conf = include_str!("../../scripts/unbound-base.conf")
        .replace("interface: 127.0.0.1", &format!("interface: {UNBOUND_AT}"))
        .replace("@PORT@", "53")
        .replace("@DIR@", &path.display().to_string())
        .replace("remote-control:\n", &hints);
    std::fs::write(path.join("unbound.conf"), conf).unwrap();
    let mut unbound = ns.command(unbound_bin());
    unbound.arg("-d").arg("-c").arg(path.join("unbound.conf"));
    let index = ns.spawn(unbound);
    // Ready when it says so: a probe query would be its first, which is what is tested.
    ns.wait_stderr(index, "start of service");
    let unbound = SocketAddr::new(UNBOUND_AT.parse().unwrap(), 53);
    let reply = ns.dig(unbound, &["www.google.com", "A", "+time=10"]);
    assert_eq!(reply.rcode, "NOERROR", "{}", reply.raw);
    assert_eq!(
        reply.answers(),
        ["www.google.com. A 142.250.72.4"],
        "{}",
        reply.raw
    );
}

/// A root or TLD server bound to 0.0.0.0 or `::` would publish that as its name server's
/// address, which reaches no one: it refuses to start unless told what to publish
/// (`--advertise`); and what it is told is what it publishes.
#[test]
fn an_unspecified_bind_needs_advertise_and_advertise_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let com = zones("com.dat");
    let com = com.to_str().unwrap();
    std::fs::write(dir.path().join("root.dat"), "com 0.0.0.0 5678\n").unwrap();
    for args in [
        vec!["tld", "com", com, "--bind", "0.0.0.0", "--port", "0"],
        vec!["root", "root.dat", "--bind", "::", "--port", "0"],
        vec!["tld", "com", com, "--advertise", "0.0.0.0", "--port", "0"],
    ] {
        let (code, _, stderr) = run_dnsd(&args, dir.path(), "");
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("reaches no one: give --advertise IP"),
            "{stderr}"
        );
    }
    let tld = Proc::start(
        &[
            "tld",
            "com",
            com,
            "--port",
            "0",
            "--advertise",
            "192.0.2.53",
        ],
        dir.path(),
    );
    let mut dns = DnsTcp::connect(tld.addr());
    assert_eq!(dns.address("ns.com"), Some("192.0.2.53".parse().unwrap()));
    let (code, stdout, _) = run_dnsd(&["check", "root.dat"], dir.path(), "");
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("warning     com 0.0.0.0:5678: no client can reach 0.0.0.0"),
        "{stdout}"
    );
    std::fs::write(
        dir.path().join("t.zone"),
        "$ORIGIN t.example.\n$TTL 1\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 0.0.0.0\n",
    )
    .unwrap();
    let (code, stdout, _) = run_dnsd(&["check", "t.zone"], dir.path(), "");
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("warning     ns.t.example. 0.0.0.0: no client can reach this address"),
        "{stdout}"
    );
}

/// A root zone file (RFC 1035) in place of the table: its delegations and glue served
/// as written, dnsd's SRV port hint included, so a hierarchy resolves through it in
/// mode I and mode R.
#[test]
fn a_root_zone_file_is_served_in_place_of_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let com = zones("com.dat");
    let com = Proc::start(
        &["tld", "com", com.to_str().unwrap(), "--port", "0"],
        dir.path(),
    );
    let port = com.addr().port();
    std::fs::write(
        dir.path().join("root.zone"),
        format!(
            "$ORIGIN .\n$TTL 86400\n@ SOA ns.root. hostmaster.root. 1 1800 900 604800 86400\n\
             @ NS ns.root.\nns.root. A 127.0.0.1\ncom. NS ns.com.\nns.com. A 127.0.0.1\n\
             _dns._tcp.com. SRV 0 0 {port} ns.com.\n"
        ),
    )
    .unwrap();
    let root = Proc::start(&["root", "root.zone", "--port", "0"], dir.path());
    let local = Proc::local(&root.addr().to_string(), dir.path(), &[]);
    let mut line = crate::harness::Line::connect(local.addr());
    line.send("alice");
    line.recv();
    assert_eq!(
        line.ask("1, www.google.com, I"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        line.ask("2, amazon.com, R"),
        "0X01, default_local, 205.251.242.103"
    );
    assert_eq!(
        line.ask("3, www.nosuch.org, I"),
        "0XFF, default_local, Host not found"
    );
    let mut dns = DnsTcp::connect(root.addr());
    assert_eq!(dns.address("ns.root"), Some("127.0.0.1".parse().unwrap()));
}
