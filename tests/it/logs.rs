//! The local server's logs: `ID.log` (request, reply, blank line; appended across
//! connections and restarts) and `mapping.log` (`NAME ADDR learned=TIME ttl=SECS` per
//! learned mapping, written before the reply is sent).

use std::path::Path;

use dnsd::ops::metrics::Metrics;
use dnsd::roles::local::LocalConfig;
use dnsd::roles::RoleConfig;
use dnsd::server::Shutdown;
use dnsd::zone::Zone;

use crate::harness::{mapping_pairs, zones, Hierarchy, Line};

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

#[test]
fn client_log_across_two_connections() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(c.ask("bad"), "0XEE, default_local, Invalid format");
    assert_eq!(
        c.ask("  2 , Nasa.GOV. , i  "),
        "0X01, default_local, 52.0.14.116"
    );
    c.send("q");
    assert!(c.closed());
    // Another client in between writes only its own log.
    let mut b = h.client("bob");
    assert_eq!(
        b.ask("7, example.com, R"),
        "0X00, default_local, 93.184.216.34"
    );
    drop(b);
    // The second session ends with end of stream rather than `q`.
    let mut c = h.client("alice");
    assert_eq!(
        c.ask("3, google.com, I"),
        "0X00, default_local, 142.250.72.4"
    );
    assert_eq!(
        c.ask("4, nosuch.org, R\r"),
        "0XFF, default_local, Host not found"
    );
    drop(c);
    assert_eq!(
        h.log("clients/alice.log"),
        "1, www.google.com, R\n0X01, default_local, 142.250.72.4\n\n\
         bad\n0XEE, default_local, Invalid format\n\n  \
         2 , Nasa.GOV. , i  \n0X01, default_local, 52.0.14.116\n\n\
         3, google.com, I\n0X00, default_local, 142.250.72.4\n\n\
         4, nosuch.org, R\n0XFF, default_local, Host not found\n\n"
    );
    assert_eq!(
        h.log("clients/bob.log"),
        "7, example.com, R\n0X00, default_local, 93.184.216.34\n\n"
    );
}

#[test]
fn control_characters_are_escaped_in_the_client_log() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    assert_eq!(
        c.ask("1, www.goo\u{1}gle.com, R\u{7f}"),
        "0XEE, default_local, Invalid format"
    );
    assert_eq!(
        h.log("clients/alice.log"),
        "1, www.goo\\x01gle.com, R\\x7F\n0XEE, default_local, Invalid format\n\n"
    );
}

#[test]
fn a_session_without_requests_logs_nothing() {
    let h = Hierarchy::start();
    let mut c = h.client("carol");
    c.send("q");
    assert!(c.closed());
    assert_eq!(h.log("clients/carol.log"), "");
    assert_eq!(h.log("mapping.log"), "");
}

#[test]
fn mapping_log_has_each_mapping_when_the_reply_arrives() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    let mut expected = String::new();
    for (request, reply, learned) in [
        (
            "1, www.google.com, R",
            "0X01, default_local, 142.250.72.4",
            Some("www.google.com 142.250.72.4"),
        ),
        (
            "2, amazon.com, I",
            "0X01, default_local, 205.251.242.103",
            Some("amazon.com 205.251.242.103"),
        ),
        (
            "3, WWW.Nasa.Gov., I",
            "0X01, default_local, 52.0.14.116",
            Some("www.nasa.gov 52.0.14.116"),
        ),
        // Cache hits, misses and bad lines learn nothing.
        (
            "4, google.com, R",
            "0X00, default_local, 142.250.72.4",
            None,
        ),
        (
            "5, www.example.com, R",
            "0X00, default_local, 93.184.216.34",
            None,
        ),
        (
            "6, nosuch.com, R",
            "0XFF, default_local, Host not found",
            None,
        ),
        ("7, x.zz, I", "0XFF, default_local, Host not found", None),
        ("bad", "0XEE, default_local, Invalid format", None),
        (
            "8, mozilla.org, R",
            "0X01, default_local, 44.236.72.93",
            Some("mozilla.org 44.236.72.93"),
        ),
    ] {
        assert_eq!(c.ask(request), reply);
        // Read right after the reply: the mapping must already be there.
        if let Some(line) = learned {
            expected.push_str(line);
            expected.push('\n');
        }
        assert_eq!(
            mapping_pairs(&h.log("mapping.log")),
            expected,
            "after {request:?}"
        );
    }
}

#[test]
fn logs_are_appended_across_restarts() {
    let h = Hierarchy::start();
    let logs = tempfile::tempdir().unwrap();
    for (round, (name, addr)) in [
        ("www.irs.gov", "23.45.100.10"),
        ("wikipedia.org", "208.80.154.224"),
    ]
    .into_iter()
    .enumerate()
    {
        let shutdown = Shutdown::new();
        let seed = Zone::load(&zones("default.dat")).unwrap();
        let local = LocalConfig::new(h.root, seed, logs.path())
            .start(shutdown.clone(), &Metrics::disabled())
            .unwrap();
        let mut c = Line::connect(local.addr);
        assert_eq!(c.ask("alice"), "You are connected to the Server");
        assert_eq!(
            c.ask(&format!("{round}, {name}, R")),
            format!("0X01, default_local, {addr}")
        );
        c.send("q");
        assert!(c.closed());
        shutdown.trigger();
        local.join();
    }
    assert_eq!(
        read(logs.path(), "clients/alice.log"),
        "0, www.irs.gov, R\n0X01, default_local, 23.45.100.10\n\n\
         1, wikipedia.org, R\n0X01, default_local, 208.80.154.224\n\n"
    );
    assert_eq!(
        mapping_pairs(&read(logs.path(), "mapping.log")),
        "www.irs.gov 23.45.100.10\nwikipedia.org 208.80.154.224\n"
    );
}

/// An answer is never given without its record: when `ID.log` or `mapping.log` cannot be
/// written (here they lead to /dev/full, which fails every write), the client gets
/// `0XFE` instead.
#[test]
#[cfg_attr(missing_dev_full, ignore = "needs /dev/full")]
fn a_record_that_cannot_be_written_is_a_server_failure() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipping: no /dev/full here");
        return;
    }
    let h = Hierarchy::start();
    std::os::unix::fs::symlink("/dev/full", h.logs.path().join("clients/alice.log")).unwrap();
    let mut alice = h.client("alice");
    assert_eq!(
        alice.ask("1, www.example.com, R"),
        "0XFE, default_local, Server failure"
    );

    let logs = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", logs.path().join("mapping.log")).unwrap();
    let shutdown = Shutdown::new();
    let local = LocalConfig::new(h.root, Zone::default(), logs.path())
        .start(shutdown.clone(), &Metrics::disabled())
        .unwrap();
    let mut bob = Line::connect(local.addr);
    assert_eq!(bob.ask("bob"), "You are connected to the Server");
    assert_eq!(
        bob.ask("1, www.google.com, R"),
        "0XFE, default_local, Server failure"
    );
    // Not cached either: the same failure again, not a 0X00.
    assert_eq!(
        bob.ask("2, www.google.com, R"),
        "0XFE, default_local, Server failure"
    );
    assert_eq!(
        bob.ask("3, nosuch.com, R"),
        "0XFF, default_local, Host not found"
    );
    shutdown.trigger();
    local.join();
}
