//! `dnsd local --warm mapping.log`: a restarted local server remembers what it learned,
//! as learned entries with the TTL that remains (not fixed ones); expired mappings are
//! skipped.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dnsd::ops::metrics::Metrics;
use dnsd::resolve::clock::ManualClock;
use dnsd::roles::local::LocalConfig;
use dnsd::roles::RoleConfig;
use dnsd::runtime::hierarchy::HierarchyBuilder;
use dnsd::server::Shutdown;
use dnsd::zone::Zone;

use crate::harness::{Line, Proc};

/// com (two names) and the root, in this process, through the library's builder (its
/// local server, unused, logs to a directory of its own); stopped when dropped.
fn hierarchy() -> (dnsd::runtime::hierarchy::Hierarchy, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let h = HierarchyBuilder::new()
        .tld(
            "com",
            "www.a.com 10.0.0.1\nwww.b.com 10.0.0.2\n".parse().unwrap(),
        )
        .log_dir(logs.path())
        .start()
        .unwrap();
    (h, logs)
}

fn session(local: &Proc) -> Line {
    let mut c = Line::connect(local.addr());
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    c
}

fn stop(mut local: Proc) {
    local.signal("TERM");
    assert_eq!(local.wait_exit(), 0);
}

/// Learned, stopped, restarted with --warm: a cache hit at once, and mapping.log says
/// when each name was learned and for how long.
#[test]
fn a_warm_restart_answers_learned_names_from_the_cache() {
    let (h, _logs) = hierarchy();
    let root_arg = h.root.to_string();
    let dir = tempfile::tempdir().unwrap();
    let local = Proc::local(&root_arg, dir.path(), &[]);
    let mut c = session(&local);
    assert_eq!(c.ask("1, www.a.com, I"), "0X01, default_local, 10.0.0.1");
    assert_eq!(c.ask("2, b.com, R"), "0X01, default_local, 10.0.0.2");
    drop(c);
    stop(local);
    let mapping = std::fs::read_to_string(dir.path().join("mapping.log")).unwrap();
    let lines: Vec<&str> = mapping.lines().collect();
    assert_eq!(lines.len(), 2, "{mapping}");
    for (line, start) in lines
        .iter()
        .zip(["www.a.com 10.0.0.1 learned=", "b.com 10.0.0.2 learned="])
    {
        assert!(
            line.starts_with(start) && line.ends_with("Z ttl=3600"),
            "{line}"
        );
    }

    let local = Proc::local(&root_arg, dir.path(), &["--warm", "mapping.log"]);
    local
        .wait_for("default_local: warmed from mapping.log: 2 mappings within their TTL, 0 expired");
    let mut c = session(&local);
    assert_eq!(c.ask("3, www.a.com, I"), "0X00, default_local, 10.0.0.1");
    assert_eq!(c.ask("4, b.com, R"), "0X00, default_local, 10.0.0.2");
    // Nothing was asked upstream: nothing new in mapping.log.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mapping.log")).unwrap(),
        mapping
    );
    drop(c);
    stop(local);
    h.stop();
}

/// Learned with --ttl 60: after a restart the name is a hit until its TTL has passed,
/// then asked again (a learned entry, not a fixed one); an expired line and a line in
/// the original's `NAME ADDR` form are skipped. The restarted server runs in this
/// process on a clock the test moves: no waiting for the TTL.
#[test]
fn warm_entries_expire_with_the_ttl_they_had_left() {
    let (h, _logs) = hierarchy();
    let root_arg = h.root.to_string();
    let dir = tempfile::tempdir().unwrap();
    let local = Proc::local(&root_arg, dir.path(), &["--ttl", "60"]);
    let mut c = session(&local);
    assert_eq!(c.ask("1, www.a.com, I"), "0X01, default_local, 10.0.0.1");
    drop(c);
    stop(local);
    let an_hour_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let old = format!(
        "www.b.com 10.9.9.9 learned={} ttl=60\nwww.b.com 10.9.9.8\n",
        utc(an_hour_ago)
    );
    append(dir.path(), &old);

    let local = Proc::local(&root_arg, dir.path(), &["--warm", "mapping.log"]);
    local.wait_for("warmed from mapping.log: 1 mappings within their TTL, 1 expired");
    stop(local);

    let clock = Arc::new(ManualClock::new());
    let config = LocalConfig::new(h.root, Zone::default(), dir.path())
        .with_warm(Some(dir.path().join("mapping.log")))
        .with_clock(clock.clone());
    let shutdown = Shutdown::new();
    let running = config
        .start(shutdown.clone(), &Metrics::disabled())
        .unwrap();
    let mut c = Line::connect(running.addr);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(c.ask("2, www.b.com, I"), "0X01, default_local, 10.0.0.2");
    assert_eq!(c.ask("3, www.a.com, I"), "0X00, default_local, 10.0.0.1");
    clock.advance(Duration::from_secs(30));
    assert_eq!(c.ask("4, www.a.com, I"), "0X00, default_local, 10.0.0.1");
    // Past the 60 s it had when it was learned: asked again.
    clock.advance(Duration::from_secs(31));
    assert_eq!(c.ask("5, www.a.com, I"), "0X01, default_local, 10.0.0.1");
    assert_eq!(c.ask("6, www.a.com, I"), "0X00, default_local, 10.0.0.1");
    drop(c);
    shutdown.trigger();
    running.join();
    h.stop();
}

/// A bad line in the file to warm from is `FILE:LINE`, exit 2.
#[test]
fn a_bad_warm_file_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    append(
        dir.path(),
        "www.a.com 10.0.0.1 learned=2026-01-01T00:00:00Z ttl=60\nwww.b.com 10.0.0.2 ttl=x\n",
    );
    let (code, _, stderr) = crate::harness::run_dnsd(
        &["local", "--port", "0", "--warm", "mapping.log"],
        dir.path(),
        "",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("error: mapping.log:2: "), "{stderr}");
}

fn append(dir: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("mapping.log"))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Unix seconds as mapping.log writes them, through the library's own line.
fn utc(secs: u64) -> String {
    let m = dnsd::ops::querylog::Mapping {
        name: dnsd::model::name::Name::parse("x.com").unwrap(),
        addr: "1.1.1.1".parse().unwrap(),
        learned: UNIX_EPOCH + Duration::from_secs(secs),
        ttl: 0,
    };
    let line = m.to_string();
    line.split("learned=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}
