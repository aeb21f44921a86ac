//! SIGHUP: a TLD server re-reads its zone, the root its table, the local server its
//! `--cache` files, `dnsd up` all of them; connections opened before the reload are
//! answered from the new data; a file that fails to load leaves the old data serving
//! and the error logged as `FILE:LINE`; learned cache entries survive.

use std::net::SocketAddr;
use std::path::Path;

use dnsd::model::Outcome;
use dnsd::ops::metrics::Metrics;
use dnsd::roles::tld::TldConfig;
use dnsd::roles::{RoleConfig, Running};
use dnsd::server::Shutdown;

use crate::harness::{DnsTcp, Line, Proc};

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

/// A TLD server's zone, reloaded under a line connection and a DNS connection opened
/// before; then a broken zone, which changes nothing.
#[test]
fn sighup_reloads_a_tld_zone_under_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "com.dat", "www.a.com 10.0.0.1\n");
    let tld = Proc::start(&["tld", "com", "com.dat", "--port", "0"], dir.path());
    let mut line = Line::connect(tld.addr());
    let mut dns = DnsTcp::connect(tld.addr());
    assert_eq!(line.ask("1, www.a.com, I"), "0X01, com, 10.0.0.1");
    assert_eq!(dns.address("www.a.com"), Some("10.0.0.1".parse().unwrap()));

    write(
        dir.path(),
        "com.dat",
        "www.a.com 10.0.0.2\nwww.b.com 10.0.0.3\n",
    );
    tld.signal("HUP");
    tld.wait_for("com: reloaded com.dat (2 names)");
    assert_eq!(line.ask("2, www.a.com, I"), "0X01, com, 10.0.0.2");
    assert_eq!(line.ask("3, b.com, I"), "0X01, com, 10.0.0.3");
    assert_eq!(dns.address("www.a.com"), Some("10.0.0.2".parse().unwrap()));
    assert_eq!(dns.address("www.b.com"), Some("10.0.0.3".parse().unwrap()));

    write(
        dir.path(),
        "com.dat",
        "www.a.com 10.0.0.9\nwww.c.com nope\n",
    );
    tld.signal("HUP");
    let error = tld.wait_for("com.dat:2:");
    assert!(
        error.contains(
            "com: reload failed, still serving the old data: com.dat:2: bad address \"nope\""
        ),
        "{error}"
    );
    assert_eq!(line.ask("4, www.a.com, I"), "0X01, com, 10.0.0.2");
    assert_eq!(line.ask("5, www.c.com, I"), "0XFF, com, Host not found");
    assert_eq!(dns.address("www.a.com"), Some("10.0.0.2".parse().unwrap()));
}

/// Two TLD servers in this process, each with www.a.com at its own address.
fn two_tlds(shutdown: &Shutdown) -> (Running, Running) {
    let start = |ip: &str| {
        let zone = format!("www.a.com {ip}").parse().unwrap();
        TldConfig::new("com", zone)
            .start(shutdown.clone(), &Metrics::disabled())
            .unwrap()
    };
    (start("10.0.0.1"), start("10.0.0.2"))
}

/// The root's table, reloaded: the same connections are referred to the new server.
#[test]
fn sighup_reloads_the_root_table() {
    let shutdown = Shutdown::new();
    let servers = two_tlds(&shutdown);
    let (a, b) = (servers.0.addr, servers.1.addr);
    let dir = tempfile::tempdir().unwrap();
    let table = |addr: SocketAddr| format!("com {} {}\n", addr.ip(), addr.port());
    write(dir.path(), "root.dat", &table(a));
    let root = Proc::start(&["root", "root.dat", "--port", "0"], dir.path());
    let mut line = Line::connect(root.addr());
    let mut dns = DnsTcp::connect(root.addr());
    assert_eq!(line.ask("1, www.a.com, I"), format!("0X02, root, com {a}"));
    assert_eq!(line.ask("2, www.a.com, R"), "0X01, root, 10.0.0.1");
    assert!(
        matches!(dns.ask("www.a.com", false).outcome, Outcome::Referral(r) if r.addr() == Some(a))
    );

    write(
        dir.path(),
        "root.dat",
        &format!("{}org 127.0.0.1 9\n", table(b)),
    );
    root.signal("HUP");
    root.wait_for("root: reloaded root.dat (2 TLDs)");
    assert_eq!(line.ask("3, www.a.com, I"), format!("0X02, root, com {b}"));
    assert_eq!(line.ask("4, www.a.com, R"), "0X01, root, 10.0.0.2");
    assert_eq!(line.ask("5, x.org, I"), "0X02, root, org 127.0.0.1:9");
    assert!(
        matches!(dns.ask("www.a.com", false).outcome, Outcome::Referral(r) if r.addr() == Some(b))
    );
    assert_eq!(dns.address("www.a.com"), Some("10.0.0.2".parse().unwrap()));

    write(
        dir.path(),
        "root.dat",
        &format!("{}org 127.0.0.1\n", table(a)),
    );
    root.signal("HUP");
    let error = root.wait_for("root.dat:2:");
    assert!(
        error.contains("root.dat:2: expected `TLD HOST PORT`, found 2 fields"),
        "{error}"
    );
    assert_eq!(line.ask("6, www.a.com, I"), format!("0X02, root, com {b}"));
    shutdown.trigger();
    servers.0.join();
    servers.1.join();
}

/// The local server's `--cache` files, reloaded: new fixed entries, and what it had
/// learned from the hierarchy is still there.
#[test]
fn sighup_reloads_the_local_cache_and_keeps_what_was_learned() {
    let shutdown = Shutdown::new();
    let servers = two_tlds(&shutdown);
    let a = servers.0.addr;
    let root = dnsd::roles::root::RootConfig::new({
        let mut t = dnsd::zone::RootTable::default();
        t.insert("com", a);
        t
    })
    .start(shutdown.clone(), &Metrics::disabled())
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fixed.dat", "www.fixed.com 10.1.1.1\n");
    let local = Proc::local(
        &root.addr.to_string(),
        dir.path(),
        &["--cache", "fixed.dat"],
    );
    let mut c = Line::connect(local.addr());
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    let mut dns = DnsTcp::connect(local.addr());
    assert_eq!(
        c.ask("1, www.fixed.com, I"),
        "0X00, default_local, 10.1.1.1"
    );
    assert_eq!(c.ask("2, www.a.com, I"), "0X01, default_local, 10.0.0.1");

    write(
        dir.path(),
        "fixed.dat",
        "www.fixed.com 10.1.1.2\nwww.more.com 10.1.1.3\n",
    );
    local.signal("HUP");
    local.wait_for("default_local: reloaded fixed.dat (2 names)");
    assert_eq!(
        c.ask("3, www.fixed.com, I"),
        "0X00, default_local, 10.1.1.2"
    );
    assert_eq!(c.ask("4, www.more.com, I"), "0X00, default_local, 10.1.1.3");
    assert_eq!(c.ask("5, www.a.com, I"), "0X00, default_local, 10.0.0.1");
    assert_eq!(
        dns.address("www.fixed.com"),
        Some("10.1.1.2".parse().unwrap())
    );

    write(dir.path(), "fixed.dat", "www.fixed.com 10.1.1.9 extra\n");
    local.signal("HUP");
    let error = local.wait_for("fixed.dat:1:");
    assert!(
        error.contains("reload failed, still serving the old data"),
        "{error}"
    );
    assert_eq!(
        c.ask("6, www.fixed.com, I"),
        "0X00, default_local, 10.1.1.2"
    );
    assert_eq!(c.ask("7, www.a.com, I"), "0X00, default_local, 10.0.0.1");
    assert_eq!(
        dns.address("www.more.com"),
        Some("10.1.1.3".parse().unwrap())
    );
    shutdown.trigger();
    root.join();
    servers.0.join();
    servers.1.join();
}

/// `dnsd up --zones DIR --any-port` reloads every server; the root's table keeps
/// pointing at where the TLD servers actually listen, not at the file's ports.
#[test]
fn sighup_reloads_every_server_of_dnsd_up() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    write(&zones, "root.dat", "com 127.0.0.1 1\n");
    write(&zones, "com.dat", "www.a.com 10.0.0.1\n");
    write(&zones, "default.dat", "www.fixed.com 10.1.1.1\n");
    let up = Proc::start(
        &["up", "--zones", "zones", "--any-port", "--log-dir", "."],
        dir.path(),
    );
    let local = up.wait_for("default_local: listening on ");
    let local: SocketAddr = local.rsplit(' ').next().unwrap().parse().unwrap();
    let mut c = Line::connect(local);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(c.ask("1, www.a.com, I"), "0X01, default_local, 10.0.0.1");

    write(
        &zones,
        "com.dat",
        "www.a.com 10.0.0.1\nwww.b.com 10.0.0.2\n",
    );
    write(&zones, "default.dat", "www.fixed.com 10.1.1.2\n");
    up.signal("HUP");
    up.wait_for("com: reloaded zones/com.dat (2 names)");
    up.wait_for("root: reloaded zones/root.dat (1 TLDs)");
    up.wait_for("default_local: reloaded zones/default.dat (1 names)");
    assert_eq!(c.ask("2, www.b.com, I"), "0X01, default_local, 10.0.0.2");
    assert_eq!(c.ask("3, www.b.com, R"), "0X00, default_local, 10.0.0.2");
    assert_eq!(
        c.ask("4, www.fixed.com, R"),
        "0X00, default_local, 10.1.1.2"
    );
}

/// With the zones built in, there is nothing to re-read, and the log says so.
#[test]
fn sighup_with_built_in_zones_says_there_is_nothing_to_re_read() {
    let dir = tempfile::tempdir().unwrap();
    let up = Proc::start(&["up", "--any-port", "--log-dir", "."], dir.path());
    up.wait_for("default_local: listening on ");
    up.signal("HUP");
    for server in ["com", "gov", "org", "root", "default_local"] {
        up.wait_for(&format!("{server}: nothing to re-read"));
    }
    let local = up.wait_for("default_local: listening on ");
    let local: SocketAddr = local.rsplit(' ').next().unwrap().parse().unwrap();
    let mut c = Line::connect(local);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, I"),
        "0X01, default_local, 142.250.72.4"
    );
}
