//! The hierarchy end to end: every reply code, both modes, the cache, the `www.` rule,
//! deep names, several TLDs, each server asked directly, and `dnsd up` as a process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;

use dnsd::ops::metrics::Metrics;
use dnsd::roles::local::LocalConfig;
use dnsd::roles::RoleConfig;
use dnsd::runtime::hierarchy::HierarchyBuilder;
use dnsd::server::Shutdown;
use dnsd::zone::{Format, Zone};

use crate::harness::{ClosedPort, Hierarchy, Line, Proc, PATIENCE, WAIT};

fn zone(text: &str) -> Zone {
    Zone::parse(Path::new("test"), text, Format::Legacy).unwrap()
}

/// A hierarchy built from zones given in code: one TLD server per `(tld, zone)`, a root
/// that lists them (plus `extra` entries), and a local server with an empty cache.
struct Custom {
    local: SocketAddr,
    root: SocketAddr,
    /// Declared before `_logs`: the servers stop before their log directory goes.
    running: dnsd::runtime::hierarchy::Hierarchy,
    _logs: tempfile::TempDir,
}

impl Custom {
    fn start(zones: &[(&str, &str)], extra: &[(&str, SocketAddr)]) -> Custom {
        let logs = tempfile::tempdir().unwrap();
        let mut builder = HierarchyBuilder::new();
        for (tld, text) in zones {
            builder = builder.tld(tld, zone(text));
        }
        for (tld, addr) in extra {
            builder = builder.refer(tld, *addr);
        }
        let running = builder
            .log_dir(logs.path())
            .upstream_timeout(PATIENCE)
            .start()
            .unwrap();
        Custom {
            local: running.local,
            root: running.root,
            running,
            _logs: logs,
        }
    }

    #[track_caller]
    fn client(&self) -> Line {
        let mut c = Line::connect(self.local);
        assert_eq!(c.ask("alice"), "You are connected to the Server");
        c
    }

    fn tld(&self, tld: &str) -> SocketAddr {
        self.running.tld(tld).unwrap()
    }
}

#[test]
fn resolves_in_both_modes_then_from_cache() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask("2, google.com, I"),
        "0X00, default_local, 142.250.72.4"
    );
    assert_eq!(c.ask("3, nasa.gov, I"), "0X01, default_local, 52.0.14.116");
}

/// Acceptance 2: a com, a gov and an org name in each mode, then each again from cache.
#[test]
fn com_gov_org_in_both_modes_then_cached() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    let asked = [
        ("www.google.com", "R", "142.250.72.4"),
        ("www.amazon.com", "I", "205.251.242.103"),
        ("www.nasa.gov", "R", "52.0.14.116"),
        ("www.irs.gov", "I", "23.45.100.10"),
        ("www.wikipedia.org", "R", "208.80.154.224"),
        ("www.mozilla.org", "I", "44.236.72.93"),
    ];
    for (i, (name, mode, addr)) in asked.iter().enumerate() {
        assert_eq!(
            c.ask(&format!("{i}, {name}, {mode}")),
            format!("0X01, default_local, {addr}"),
            "{name} {mode}"
        );
    }
    // The cache is shared: a second connection gets the cached answers, in either mode.
    let mut d = h.client("bob");
    for (name, mode, addr) in asked {
        let other = if mode == "R" { "I" } else { "R" };
        for m in [mode, other] {
            assert_eq!(
                d.ask(&format!("9, {name}, {m}")),
                format!("0X00, default_local, {addr}")
            );
        }
    }
}

#[test]
fn default_cache_answers_without_asking() {
    // The root is a closed port: any miss would be 0XFE, so 0X00 proves the seed.
    let logs = tempfile::tempdir().unwrap();
    let seed = Zone::load(&crate::harness::zones("default.dat")).unwrap();
    let shutdown = Shutdown::new();
    let closed = ClosedPort::new();
    let local = LocalConfig::new(closed.addr, seed, logs.path())
        .start(shutdown.clone(), &Metrics::disabled())
        .unwrap();
    let mut c = Line::connect(local.addr);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.example.com, R"),
        "0X00, default_local, 93.184.216.34"
    );
    assert_eq!(
        c.ask("2, example.com, I"),
        "0X00, default_local, 93.184.216.34"
    );
    assert_eq!(
        c.ask("3, www.google.com, R"),
        "0XFE, default_local, Server failure"
    );
    drop(c);
    shutdown.trigger();
    local.join();
}

#[test]
fn unknown_name_and_unknown_tld_are_not_found() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    for mode in ["R", "I"] {
        assert_eq!(
            c.ask(&format!("1, www.nosuchhost.com, {mode}")),
            "0XFF, default_local, Host not found"
        );
        assert_eq!(
            c.ask(&format!("2, nosuch.gov, {mode}")),
            "0XFF, default_local, Host not found"
        );
        assert_eq!(
            c.ask(&format!("3, www.google.zz, {mode}")),
            "0XFF, default_local, Host not found"
        );
    }
    // Not found is not cached as an address: asking again is still 0XFF.
    assert_eq!(
        c.ask("4, www.nosuchhost.com, R"),
        "0XFF, default_local, Host not found"
    );
}

#[test]
fn invalid_format() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    for line in [
        "bad",
        "1, www.google.com, X",
        "1, www.google.com, RI",
        "1, www.google.com",
        "1, www.google.com, R, extra",
        "1, google, R",
        "1, www..google.com, R",
        "1, -a.com, R",
        "1, www.google.com, ",
        ", , ",
        "",
    ] {
        assert_eq!(
            c.ask(line),
            "0XEE, default_local, Invalid format",
            "{line:?}"
        );
    }
    // The session goes on after bad lines.
    assert_eq!(
        c.ask("2, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
}

#[test]
fn server_failure_when_the_root_is_down() {
    let logs = tempfile::tempdir().unwrap();
    let shutdown = Shutdown::new();
    let closed = ClosedPort::new();
    let local = LocalConfig::new(closed.addr, Zone::default(), logs.path())
        .start(shutdown.clone(), &Metrics::disabled())
        .unwrap();
    let mut c = Line::connect(local.addr);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0XFE, default_local, Server failure"
    );
    assert_eq!(
        c.ask("2, www.google.com, I"),
        "0XFE, default_local, Server failure"
    );
    // Failures are not cached and not logged as mappings.
    assert_eq!(
        c.ask("3, www.google.com, R"),
        "0XFE, default_local, Server failure"
    );
    assert_eq!(
        std::fs::read_to_string(logs.path().join("mapping.log")).unwrap_or_default(),
        ""
    );
    drop(c);
    shutdown.trigger();
    local.join();
}

#[test]
fn server_failure_when_a_tld_server_is_down() {
    let closed = ClosedPort::new();
    let h = Custom::start(
        &[("com", "www.google.com 142.250.72.4\n")],
        &[("net", closed.addr)],
    );
    let mut c = h.client();
    // R: the root cannot reach net's server; I: the local server cannot.
    assert_eq!(
        c.ask("1, www.example.net, R"),
        "0XFE, default_local, Server failure"
    );
    assert_eq!(
        c.ask("2, www.example.net, I"),
        "0XFE, default_local, Server failure"
    );
    let mut root = Line::connect(h.root);
    assert_eq!(
        c.ask("3, www.google.com, I"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        root.ask("1, www.example.net, R"),
        "0XFE, root, Server failure"
    );
}

#[test]
fn www_rule_in_zone_and_in_cache() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    // In the zone, mode R and mode I.
    assert_eq!(
        c.ask("1, google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask("2, amazon.com, I"),
        "0X01, default_local, 205.251.242.103"
    );
    // In the cache: learned as www.nasa.gov, asked as nasa.gov.
    assert_eq!(
        c.ask("3, www.nasa.gov, I"),
        "0X01, default_local, 52.0.14.116"
    );
    assert_eq!(c.ask("4, nasa.gov, I"), "0X00, default_local, 52.0.14.116");
    assert_eq!(c.ask("5, nasa.gov, R"), "0X00, default_local, 52.0.14.116");
    // The original's KeyError case: `google.com, I` after www.google.com was cached.
    assert_eq!(
        c.ask("6, www.github.com, R"),
        "0X01, default_local, 140.82.112.4"
    );
    assert_eq!(
        c.ask("7, github.com, I"),
        "0X00, default_local, 140.82.112.4"
    );
    // The rule adds `www.`, it never removes it.
    let h = Custom::start(&[("com", "example.com 1.2.3.4\n")], &[]);
    let mut c = h.client();
    assert_eq!(
        c.ask("1, www.example.com, R"),
        "0XFF, default_local, Host not found"
    );
    assert_eq!(c.ask("2, example.com, R"), "0X01, default_local, 1.2.3.4");
}

#[test]
fn deep_names() {
    let h = Custom::start(
        &[(
            "com",
            "www.google.com 142.250.72.4\n\
             mail.google.com 142.250.72.5\n\
             www.docs.google.com 142.250.72.6\n\
             a.b.c.d.e.example.com 2001:db8::1\n",
        )],
        &[],
    );
    let mut c = h.client();
    assert_eq!(
        c.ask("1, mail.google.com, R"),
        "0X01, default_local, 142.250.72.5"
    );
    assert_eq!(
        c.ask("2, docs.google.com, I"),
        "0X01, default_local, 142.250.72.6"
    );
    assert_eq!(
        c.ask("3, a.b.c.d.e.example.com, I"),
        "0X01, default_local, 2001:db8::1"
    );
    assert_eq!(
        c.ask("4, b.c.d.e.example.com, R"),
        "0XFF, default_local, Host not found"
    );
    assert_eq!(
        c.ask("5, mail.google.com, I"),
        "0X00, default_local, 142.250.72.5"
    );
    assert_eq!(
        c.ask("6, google.com, I"),
        "0X01, default_local, 142.250.72.4"
    );
    let mut com = Line::connect(h.tld("com"));
    assert_eq!(com.ask("1, MAIL.google.com, R"), "0X01, com, 142.250.72.5");
}

#[test]
fn several_tlds_including_new_ones() {
    let h = Custom::start(
        &[
            ("com", "www.google.com 142.250.72.4\n"),
            ("net", "www.example.net 198.51.100.7\n"),
            ("io", "crates.io 203.0.113.9\n"),
            ("uk", "www.bbc.co.uk 151.101.0.81\n"),
        ],
        &[],
    );
    let mut c = h.client();
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask("2, example.net, I"),
        "0X01, default_local, 198.51.100.7"
    );
    assert_eq!(c.ask("3, crates.io, R"), "0X01, default_local, 203.0.113.9");
    assert_eq!(
        c.ask("4, bbc.co.uk, I"),
        "0X01, default_local, 151.101.0.81"
    );
    assert_eq!(
        c.ask("5, www.example.org, R"),
        "0XFF, default_local, Host not found"
    );
    let mut root = Line::connect(h.root);
    assert_eq!(
        root.ask("1, www.example.net, I"),
        format!("0X02, root, net {}", h.tld("net"))
    );
    assert_eq!(
        root.ask("2, bbc.co.uk, I"),
        format!("0X02, root, uk {}", h.tld("uk"))
    );
}

#[test]
fn root_answers_directly() {
    let h = Hierarchy::start();
    let mut root = Line::connect(h.root);
    assert_eq!(root.ask("1, www.google.com, R"), "0X01, root, 142.250.72.4");
    assert_eq!(
        root.ask("2, www.google.com, I"),
        format!("0X02, root, com {}", h.tld("com"))
    );
    assert_eq!(
        root.ask("3, anything.gov, I"),
        format!("0X02, root, gov {}", h.tld("gov"))
    );
    assert_eq!(root.ask("4, nosuch.org, R"), "0XFF, root, Host not found");
    assert_eq!(
        root.ask("5, www.google.zz, R"),
        "0XFF, root, Host not found"
    );
    assert_eq!(
        root.ask("6, www.google.zz, I"),
        "0XFF, root, Host not found"
    );
    assert_eq!(root.ask("bad"), "0XEE, root, Invalid format");
    assert_eq!(
        root.ask("7, wikipedia.org, r"),
        "0X01, root, 208.80.154.224"
    );
    // No greeting: the first line is a request, and `q` ends the session.
    root.send("q");
    assert!(root.closed());
}

#[test]
fn tld_servers_answer_directly() {
    let h = Hierarchy::start();
    let mut com = Line::connect(h.tld("com"));
    assert_eq!(com.ask("1, www.google.com, R"), "0X01, com, 142.250.72.4");
    assert_eq!(com.ask("2, github.com, I"), "0X01, com, 140.82.112.4");
    assert_eq!(com.ask("3, nosuch.com, R"), "0XFF, com, Host not found");
    // Not its TLD: not found, whatever the other zones hold.
    assert_eq!(com.ask("4, www.nasa.gov, R"), "0XFF, com, Host not found");
    assert_eq!(com.ask("x"), "0XEE, com, Invalid format");
    com.send("q");
    assert!(com.closed());
    let mut org = Line::connect(h.tld("org"));
    assert_eq!(org.ask("alice, mozilla.org, I"), "0X01, org, 44.236.72.93");
}

#[test]
fn q_ends_a_local_session() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    c.send("q");
    assert!(c.closed());
    // End of stream ends it as well; the server goes on serving others.
    let c = h.client("bob");
    drop(c);
    let mut d = h.client("carol");
    assert_eq!(
        d.ask("1, google.com, R"),
        "0X00, default_local, 142.250.72.4"
    );
}

#[test]
fn names_are_case_insensitive_and_may_end_in_a_dot() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    assert_eq!(
        c.ask("1, WWW.Google.COM., R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask("2, www.google.com, i"),
        "0X00, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask("3, Google.Com., I"),
        "0X00, default_local, 142.250.72.4"
    );
    assert_eq!(c.ask("4, NASA.gov., i"), "0X01, default_local, 52.0.14.116");
    // Spaces around fields and a trailing `\r` are ignored.
    assert_eq!(
        c.ask("  5 ,   www.irs.gov  ,  R \r"),
        "0X01, default_local, 23.45.100.10"
    );
    let mut root = Line::connect(h.root);
    assert_eq!(
        root.ask("1, WWW.Mozilla.ORG., R"),
        "0X01, root, 44.236.72.93"
    );
}

#[test]
fn up_any_port_answers_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut p = Proc::spawn(
        &["up", "--any-port", "--log-dir", logs.to_str().unwrap()],
        dir.path(),
    );
    // `up` prints a table on stdout: `  local           127.0.0.1:PORT   (logs in DIR)`.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = p.child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut table = Vec::new();
    let local: SocketAddr = loop {
        let line = rx.recv_timeout(WAIT).expect("no `local` line from dnsd up");
        table.push(line.clone());
        if let Some(rest) = line.strip_prefix("  local ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    assert!(table.iter().any(|l| l.starts_with("  root ")), "{table:?}");
    for tld in ["com", "gov", "org"] {
        assert!(
            table
                .iter()
                .any(|l| l.starts_with(&format!("  tld {tld} "))),
            "{table:?}"
        );
    }
    // The stderr `listening on` line names the same address.
    let line = p.wait_for("default_local: listening on ");
    assert!(line.ends_with(&format!("listening on {local}")), "{line}");
    assert_ne!(local.port(), 5352);
    let mut c = Line::connect(local);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(c.ask("2, nasa.gov, I"), "0X01, default_local, 52.0.14.116");
    assert_eq!(
        c.ask("3, wikipedia.org, I"),
        "0X01, default_local, 208.80.154.224"
    );
    assert_eq!(
        c.ask("4, google.com, R"),
        "0X00, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask("5, www.example.com, R"),
        "0X00, default_local, 93.184.216.34"
    );
    c.send("q");
    assert!(c.closed());
    let log = std::fs::read_to_string(logs.join("clients/alice.log")).unwrap();
    assert!(log.starts_with("1, www.google.com, R\n0X01, default_local, 142.250.72.4\n\n"));
}

/// What `just run-all` does, on free ports: five `dnsd` processes, found through their
/// `listening on` lines.
#[test]
fn five_processes_answer_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = String::new();
    let mut tlds = Vec::new();
    for tld in ["com", "gov", "org"] {
        let zone = crate::harness::zones(&format!("{tld}.dat"));
        let p = Proc::start(
            &["tld", tld, zone.to_str().unwrap(), "--port", "0"],
            dir.path(),
        );
        let addr = p.addr();
        table.push_str(&format!("{tld} {} {}\n", addr.ip(), addr.port()));
        tlds.push(p);
    }
    std::fs::write(dir.path().join("root.dat"), table).unwrap();
    let root = Proc::start(&["root", "root.dat", "--port", "0"], dir.path());
    let default = crate::harness::zones("default.dat");
    let root_addr = root.addr().to_string();
    let local = Proc::start(
        &[
            "local",
            "--cache",
            default.to_str().unwrap(),
            "--root",
            &root_addr,
            "--port",
            "0",
        ],
        dir.path(),
    );
    let mut c = Line::connect(local.addr());
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, I"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(c.ask("2, irs.gov, R"), "0X01, default_local, 23.45.100.10");
    assert_eq!(
        c.ask("3, mozilla.org, I"),
        "0X01, default_local, 44.236.72.93"
    );
    assert_eq!(
        c.ask("4, www.google.com, R"),
        "0X00, default_local, 142.250.72.4"
    );
    c.send("q");
    assert!(c.closed());
    // The default log directory is the working directory.
    assert!(
        std::fs::read_to_string(dir.path().join("clients/alice.log"))
            .unwrap()
            .starts_with("1, www.google.com, I\n")
    );
    // Each server logs one line per query.
    let line = local.wait_for("irs.gov");
    assert!(line.contains("0X01, default_local, 23.45.100.10"), "{line}");
    root.wait_for("asked 2, irs.gov, R -> 0X01, root, 23.45.100.10");
}

/// `dnsd up` applies the limit flags to every server it starts.
#[test]
fn up_applies_the_limits_to_its_servers() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::spawn(&["up", "--any-port", "--max-line", "40"], dir.path());
    let local = listening_addr(&p, "default_local");
    let root = listening_addr(&p, "root");
    let mut c = Line::connect(local);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask(&format!("1, {}.com, R", "a".repeat(40))),
        "0XEE, default_local, Invalid format"
    );
    assert!(c.closed());
    let mut r = Line::connect(root);
    assert_eq!(
        r.ask(&format!("1, {}.com, R", "a".repeat(40))),
        "0XEE, root, Invalid format"
    );
    assert!(r.closed());
}

/// The address in `NAME: listening on ADDR` on a process's stderr.
#[track_caller]
fn listening_addr(p: &Proc, name: &str) -> SocketAddr {
    let line = p.wait_for(&format!("{name}: listening on "));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// One request loop serves every role: ` q ` (spaces around it) ends a session on the
/// local server, the root and a TLD server alike (root and TLD once compared untrimmed).
#[test]
fn q_with_spaces_ends_a_session_on_every_server() {
    let h = Hierarchy::start();
    let mut local = h.client("alice");
    local.send(" q ");
    assert!(local.closed(), "local");
    for addr in [h.root, h.tld("com")] {
        let mut c = Line::connect(addr);
        assert_eq!(
            c.ask("1, www.google.com, R").split(", ").next(),
            Some("0X01")
        );
        c.send("\tq ");
        assert!(c.closed(), "{addr}");
    }
}

/// The protocol a server asks upstream in is chosen at start (`--upstream-protocol`),
/// not by the protocol a question arrived in: with `dns`, a line client's question
/// reaches the root as a DNS message; with `line`, a DNS client's reaches it as a line.
#[test]
fn the_upstream_protocol_is_chosen_at_start_not_by_the_asker() {
    let dir = tempfile::tempdir().unwrap();
    let zone = crate::harness::zones("com.dat");
    let com = Proc::start(
        &["tld", "com", zone.to_str().unwrap(), "--port", "0"],
        dir.path(),
    );
    let root = Proc::root_over_com(com.addr(), dir.path(), &[]);
    let root_arg = root.addr().to_string();

    let over_dns = tempfile::tempdir().unwrap();
    let local = Proc::local(&root_arg, over_dns.path(), &["--upstream-protocol", "dns"]);
    let mut c = Line::connect(local.addr());
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("7, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    root.wait_for("dns/udp A www.google.com. rd -> NOERROR");

    let over_lines = tempfile::tempdir().unwrap();
    let local = Proc::local(
        &root_arg,
        over_lines.path(),
        &["--upstream-protocol", "line"],
    );
    let mut d = crate::harness::DnsTcp::connect(local.addr());
    assert_eq!(
        d.address("www.google.com"),
        Some("142.250.72.4".parse().unwrap())
    );
    root.wait_for("asked 1, www.google.com, I -> 0X02, root, com ");
}
