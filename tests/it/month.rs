//! Running for a month: logs rotated by Debian's logrotate with the shipped
//! `examples/logrotate.conf`, client files capped, ids that cannot reach the server's
//! files, a full disk that leaves no torn record, and root dropped after binding port 53.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnsd::ops::metrics::Metrics;
use dnsd::roles::local::LocalConfig;
use dnsd::roles::RoleConfig;
use dnsd::server::Shutdown;
use dnsd::zone::Zone;

use crate::harness::{zones, Hierarchy, Line, Proc, WAIT};

/// Waits until `path` holds `needle` (bounded by [`WAIT`]).
#[track_caller]
fn wait_in_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {} within {WAIT:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A file's text; `.gz` files through `gzip -dc`.
fn read_any(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
        assert!(out.status.success(), "gzip -dc {}", path.display());
        String::from_utf8(out.stdout).unwrap()
    } else {
        std::fs::read_to_string(path).unwrap()
    }
}

/// `base`, then its rotated copies `base.1`, `base.2.gz`..., oldest first, as one text.
fn rotated(base: &Path) -> (String, usize) {
    let mut parts = Vec::new();
    for n in (1..20).rev() {
        for suffix in [format!(".{n}.gz"), format!(".{n}")] {
            let mut p = base.as_os_str().to_owned();
            p.push(&suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                parts.push(read_any(&p));
            }
        }
    }
    let copies = parts.len();
    if base.exists() {
        parts.push(read_any(base));
    }
    (parts.concat(), copies)
}

/// A client that keeps asking (a cache hit, numbered) until told to stop, and the
/// records it expects: each request and the reply it got.
fn keep_asking(
    local: SocketAddr,
    id: &'static str,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<(String, String)>> {
    std::thread::spawn(move || {
        let mut c = Line::connect(local);
        assert_eq!(c.ask(id), "You are connected to the Server");
        let mut asked = Vec::new();
        for n in 0..100_000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let request = format!("{n}, www.example.com, R");
            let reply = c.ask(&request);
            assert_eq!(reply, "0X00, default_local, 93.184.216.34");
            asked.push((request, reply));
            count.fetch_add(1, Ordering::Relaxed);
        }
        asked
    })
}

/// logrotate, with the shipped configuration (its paths pointed at a temporary
/// directory), rotates the client logs, queries.log and the --log-file three times while
/// two clients keep asking: every answered query is in the logs exactly once, in order,
/// across the rotated copies and the new files.
#[test]
#[cfg_attr(
    missing_logrotate,
    ignore = "needs logrotate: scripts/ci-deps.sh logrotate"
)]
fn logrotate_with_the_shipped_config_loses_and_repeats_no_record() {
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let conf = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/logrotate.conf"),
    )
    .unwrap()
    .replace("/var/log/dnsd", &logs.display().to_string())
    .replace(
        "/run/dnsd.pid",
        &logs.join("dnsd.pid").display().to_string(),
    );
    std::fs::write(logs.join("logrotate.conf"), conf).unwrap();
    let root = h.root.to_string();
    let default = zones("default.dat").display().to_string();
    let mut local = Proc::spawn(
        &[
            "local",
            "--port",
            "0",
            "--root",
            &root,
            "--cache",
            &default,
            "--log-dir",
            ".",
            "--log-file",
            "dnsd.log",
            "--pid-file",
            "dnsd.pid",
            "--max-client-logs",
            "1",
        ],
        logs,
    );
    let line = wait_in_file(&logs.join("dnsd.log"), "listening on ");
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    wait_in_file(&logs.join("dnsd.pid"), &local.child.id().to_string());

    let stop = Arc::new(AtomicBool::new(false));
    let counts = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    // alice first: she gets the one client file; bob's records go to queries.log.
    let mut alice = Line::connect(addr);
    assert_eq!(alice.ask("alice"), "You are connected to the Server");
    assert_eq!(
        alice.ask("first, www.example.com, R"),
        "0X00, default_local, 93.184.216.34"
    );
    drop(alice);
    let clients = [
        keep_asking(addr, "alice", stop.clone(), counts[0].clone()),
        keep_asking(addr, "bob", stop.clone(), counts[1].clone()),
    ];
    for round in 1..=3 {
        // Each client has asked since the last rotation (logrotate skips an empty file).
        let seen = counts.each_ref().map(|c| c.load(Ordering::Relaxed));
        let deadline = Instant::now() + WAIT;
        while (0..2).any(|i| counts[i].load(Ordering::Relaxed) < seen[i] + 20) {
            assert!(Instant::now() < deadline, "the clients stopped asking");
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = Command::new("logrotate")
            .args(["-f", "-s"])
            .arg(logs.join("logrotate.state"))
            .arg(logs.join("logrotate.conf"))
            .output()
            .expect("run logrotate");
        assert!(
            out.status.success(),
            "logrotate (round {round}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The postrotate's SIGUSR1 was handled: the new dnsd.log says so.
        wait_in_file(&logs.join("dnsd.log"), "logs reopened");
    }
    stop.store(true, Ordering::Relaxed);
    let [a, b] = clients.map(|c| c.join().unwrap());
    local.signal("TERM");
    assert_eq!(local.wait_exit(), 0);

    let (text, copies) = rotated(&logs.join("clients/alice.log"));
    assert_eq!(copies, 3, "alice.log rotated three times");
    let mut expected =
        String::from("first, www.example.com, R\n0X00, default_local, 93.184.216.34\n\n");
    for (request, reply) in &a {
        expected.push_str(&format!("{request}\n{reply}\n\n"));
    }
    assert!(
        text == expected,
        "alice's records, across the rotations, differ from what she was answered"
    );
    let (text, copies) = rotated(&logs.join("queries.log"));
    assert_eq!(copies, 3, "queries.log rotated three times");
    let expected: String = b
        .iter()
        .map(|(request, reply)| format!("bob\t{request}\t{reply}\n"))
        .collect();
    assert!(
        text == expected,
        "bob's records, across the rotations, differ from what he was answered"
    );
    let (text, copies) = rotated(&logs.join("dnsd.log"));
    assert_eq!(copies, 3, "dnsd.log rotated three times");
    assert_eq!(text.matches("logs reopened").count(), 3, "{text}");
    // mapping.log is not rotated (dnsd compacts it); the files are not world-readable.
    assert!(!logs.join("mapping.log.1").exists());
    use std::os::unix::fs::PermissionsExt;
    for file in [
        "clients/alice.log",
        "queries.log",
        "dnsd.log",
        "mapping.log",
    ] {
        let mode = std::fs::metadata(logs.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o007, 0, "{file}: mode {mode:o}");
    }
}

/// 10,000 distinct ids, each asking once, leave at most --max-client-logs files in
/// clients/; the others' records are in queries.log, one line each, none lost.
#[test]
fn ten_thousand_ids_leave_at_most_the_cap_of_client_files() {
    const IDS: usize = 10_000;
    const CAP: usize = 100;
    const THREADS: usize = 8;
    let h = Hierarchy::start_with("dat", |c| c.with_max_client_logs(CAP));
    let local = h.local;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                for i in (t..IDS).step_by(THREADS) {
                    let mut c = Line::connect(local);
                    assert_eq!(c.ask(&format!("id{i}")), "You are connected to the Server");
                    assert_eq!(
                        c.ask("1, www.example.com, R"),
                        "0X00, default_local, 93.184.216.34"
                    );
                    c.send("q");
                    assert!(c.closed());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let files = std::fs::read_dir(h.logs.path().join("clients"))
        .unwrap()
        .count();
    assert_eq!(files, CAP);
    let shared = h.log("queries.log");
    assert_eq!(shared.lines().count(), IDS - CAP);
    assert!(shared
        .lines()
        .all(|l| l.ends_with("\t1, www.example.com, R\t0X00, default_local, 93.184.216.34")));
}

/// The id `mapping` (or `queries`) names a client file, never the server's own: its
/// queries do not reach mapping.log, and --warm still reads it.
#[test]
fn an_id_named_like_a_server_file_cannot_touch_it() {
    let h = Hierarchy::start();
    for id in ["mapping", "queries", "clients", "..mapping", "mapping.log"] {
        let mut c = Line::connect(h.local);
        let greeting = c.ask(id);
        if id.starts_with('.') {
            assert_eq!(greeting, "0XEE, default_local, Invalid client id");
            continue;
        }
        assert_eq!(greeting, "You are connected to the Server");
        assert_eq!(
            c.ask("1, www.google.com, R").split(", ").nth(2),
            Some("142.250.72.4")
        );
    }
    let mapping = h.log("mapping.log");
    assert_eq!(
        crate::harness::mapping_pairs(&mapping),
        "www.google.com 142.250.72.4\n"
    );
    assert!(h
        .log("clients/mapping.log")
        .starts_with("1, www.google.com, R\n"));
    assert!(h
        .log("clients/mapping.log.log")
        .starts_with("1, www.google.com, R\n"));
    assert!(h.logs.path().join("clients/queries.log").is_file());
    // mapping.log still warms a server.
    let shutdown = Shutdown::new();
    let other = tempfile::tempdir().unwrap();
    let warm = LocalConfig::new(h.root, Zone::default(), other.path())
        .with_warm(Some(h.logs.path().join("mapping.log")))
        .start(shutdown.clone(), &Metrics::disabled())
        .unwrap();
    let mut c = Line::connect(warm.addr);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, I"),
        "0X00, default_local, 142.250.72.4"
    );
    drop(c);
    shutdown.trigger();
    warm.join();
}

/// A full disk (a 64 KiB tmpfs in a mount namespace of the server's own, filled by the
/// test): records that do not fit are cut back, so no log holds a torn record; the
/// client gets 0XFE instead of the answer it could not record; the failure is logged
/// once for the episode and counted; once space returns, answers and records resume and
/// mapping.log warms a new server.
#[test]
#[cfg_attr(missing_mount_ns, ignore = "needs root, unshare and mount")]
fn a_full_disk_leaves_no_torn_record() {
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=64k tmpfs \"$0\" && cd \"$0\" && exec \"$@\"")
        .arg(&logs)
        .arg(crate::harness::dnsd_bin())
        .args([
            "local",
            "--port",
            "0",
            "--log-dir",
            ".",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(["--root", &h.root.to_string(), "--upstream-timeout", "5"])
        .env("RUST_LOG", "info");
    let mut local = Proc::run(command);
    let addr = local.wait_listening();
    let metrics: SocketAddr = local
        .wait_for("metrics on ")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The server's view of its log directory: the tmpfs.
    let seen = PathBuf::from(format!("/proc/{}/root{}", local.child.id(), logs.display()));
    let mut alice = Line::connect(addr);
    assert_eq!(alice.ask("alice"), "You are connected to the Server");
    let mut answered = Vec::new();
    let ask = |c: &mut Line, request: String, answered: &mut Vec<(String, String)>| {
        let reply = c.ask(&request);
        if !reply.starts_with("0XFE") {
            answered.push((request, reply.clone()));
        }
        reply
    };
    assert_eq!(
        ask(&mut alice, "0, www.google.com, R".into(), &mut answered),
        "0X01, default_local, 142.250.72.4"
    );
    // Fill the disk.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(seen.join("filler")).unwrap();
        let chunk = vec![b'x'; 4096];
        while filler.write_all(&chunk).is_ok() {}
        while filler.write_all(b"x").is_ok() {}
    }
    // Hits until one cannot be recorded (what is left of alice.log's last block fills).
    let mut failed = 0;
    for n in 1..500 {
        let reply = ask(&mut alice, format!("{n}, google.com, R"), &mut answered);
        if reply == "0XFE, default_local, Server failure" {
            failed += 1;
            if failed == 5 {
                break;
            }
        } else {
            assert_eq!(reply, "0X00, default_local, 142.250.72.4");
        }
    }
    assert_eq!(failed, 5, "the disk never filled");
    // A miss over DNS: answered only if its mapping could be recorded (what is left of
    // mapping.log's last block may still hold it), else SERVFAIL, as over a line.
    let mut dns = crate::harness::DnsTcp::connect(addr);
    let irs = match dns.ask("www.irs.gov", true).outcome {
        dnsd::model::Outcome::ServFail => "",
        dnsd::model::Outcome::Answer(_) => "www.irs.gov 23.45.100.10\n",
        other => panic!("www.irs.gov: {other:?}"),
    };
    // Logged once for the whole episode; counted each time.
    local.wait_for("cannot write");
    assert_eq!(
        local.stderr_text().matches("cannot write").count(),
        1,
        "{}",
        local.stderr_text()
    );
    let (_, scrape) = crate::metrics::get(metrics, "/metrics");
    let counted = scrape
        .lines()
        .find(|l| l.starts_with("dnsd_log_write_failures_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(counted >= 5.0, "{counted} failures counted:\n{scrape}");
    // Space returns: answers and records resume.
    std::fs::remove_file(seen.join("filler")).unwrap();
    let n = 1000;
    assert_eq!(
        ask(&mut alice, format!("{n}, www.nasa.gov, I"), &mut answered),
        "0X01, default_local, 52.0.14.116"
    );
    local.wait_for("log records are written again");
    let log = std::fs::read_to_string(seen.join("clients/alice.log")).unwrap();
    let expected: String = answered
        .iter()
        .map(|(request, reply)| format!("{request}\n{reply}\n\n"))
        .collect();
    assert!(log == expected, "alice.log:\n{log}\nexpected:\n{expected}");
    let mapping = std::fs::read_to_string(seen.join("mapping.log")).unwrap();
    assert_eq!(
        crate::harness::mapping_pairs(&mapping),
        format!("www.google.com 142.250.72.4\n{irs}www.nasa.gov 52.0.14.116\n")
    );
    // The mapping.log warms a new server.
    let copy = tempfile::tempdir().unwrap();
    std::fs::write(copy.path().join("mapping.log"), &mapping).unwrap();
    drop(alice);
    local.signal("TERM");
    assert_eq!(local.wait_exit(), 0);
    let warm = Proc::local(&h.root.to_string(), copy.path(), &["--warm", "mapping.log"]);
    let kept = mapping.lines().count();
    warm.wait_for(&format!(
        "warmed from mapping.log: {kept} mappings within their TTL"
    ));
}

/// As root in a network namespace of its own, `--user nobody --port 53`: the process
/// binds port 53, then runs as nobody (every uid in /proc/PID/status), still answers,
/// and writes its client log as nobody, mode 0640. Without --user it warns loudly.
#[test]
#[cfg_attr(missing_netns, ignore = "needs root and iproute2 (network namespaces)")]
fn user_nobody_on_port_53_drops_root_and_still_answers() {
    let Some(mut ns) = crate::netns::Netns::new("user_nobody_on_port_53") else {
        return;
    };
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::os::unix::fs::chown(&logs, Some(uid), Some(gid)).unwrap();
    let default = zones("default.dat").display().to_string();
    let logs_arg = logs.display().to_string();
    let local = ns.dnsd(
        &[
            "local",
            "--port",
            "53",
            "--user",
            "nobody",
            "--cache",
            &default,
            "--log-dir",
            &logs_arg,
        ],
        dir.path(),
    );
    assert_eq!(local.port(), 53);
    let (pid, index) = ns.last();
    // Root is dropped right after the sockets are bound (after `listening on`).
    let deadline = Instant::now() + WAIT;
    while !ns.stderr(index).contains("running as user nobody") {
        assert!(Instant::now() < deadline, "{}", ns.stderr(index));
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uids.split_whitespace()
            .skip(1)
            .all(|u| u == uid.to_string()),
        "{uids}"
    );
    assert_eq!(
        ns.client(local, "www.example.com\n"),
        ["0X00, default_local, 93.184.216.34"]
    );
    let log = logs.join("clients/alice.log");
    let meta = std::fs::metadata(&log).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), uid);
    assert_eq!(meta.permissions().mode() & 0o777 & !0o022, 0o640 & !0o022);
    assert_eq!(meta.permissions().mode() & 0o007, 0);

    // Without --user, root on port 53 is warned about.
    let other = tempfile::tempdir().unwrap();
    let other_arg = other.path().display().to_string();
    ns.dnsd(
        &[
            "tld",
            "com",
            &zones("com.dat").display().to_string(),
            "--port",
            "53",
            "--bind",
            "127.0.0.2",
        ],
        other.path(),
    );
    let (_, index) = ns.last();
    let deadline = Instant::now() + WAIT;
    while !ns.stderr(index).contains("RUNNING AS ROOT") {
        assert!(
            Instant::now() < deadline,
            "no warning:\n{}",
            ns.stderr(index)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(other_arg);
}

/// A server run alone writes no line per query unless RUST_LOG asks (tens of megabytes a
/// second at full load); `dnsd up` shows them, for a learner to watch.
#[test]
fn per_query_lines_are_off_alone_and_on_in_up() {
    let dir = tempfile::tempdir().unwrap();
    let zone = zones("com.dat").display().to_string();
    let mut command = Command::new(crate::harness::dnsd_bin());
    command
        .args(["tld", "com", &zone, "--port", "0"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG");
    let mut tld = Proc::run(command);
    let addr = tld.wait_listening();
    let mut c = Line::connect(addr);
    assert_eq!(c.ask("1, www.google.com, R"), "0X01, com, 142.250.72.4");
    drop(c);
    tld.signal("TERM");
    assert_eq!(tld.wait_exit(), 0);
    assert!(
        !tld.stderr_text().contains("asked"),
        "{}",
        tld.stderr_text()
    );

    let mut command = Command::new(crate::harness::dnsd_bin());
    command
        .args(["up", "--any-port", "--log-dir", "."])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .env_remove("RUST_LOG");
    let up = Proc::run(command);
    let line = up.wait_for("default_local: listening on ");
    let local: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let mut c = Line::connect(local);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.example.com, R"),
        "0X00, default_local, 93.184.216.34"
    );
    up.wait_for("alice asked 1, www.example.com, R -> 0X00");
}

/// SIGHUP reopens the logs too (mapping.log moved away: the next mapping starts a new
/// one), and SIGUSR2, which used to kill the process, is ignored.
#[test]
fn sighup_reopens_the_logs_and_sigusr2_is_harmless() {
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let local = Proc::local(&h.root.to_string(), dir.path(), &[]);
    let mut c = Line::connect(local.addr());
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    std::fs::rename(
        dir.path().join("mapping.log"),
        dir.path().join("mapping.old"),
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("clients/alice.log"),
        dir.path().join("alice.old"),
    )
    .unwrap();
    local.signal("USR2");
    local.wait_for("SIGUSR2 received: ignored");
    local.signal("HUP");
    local.wait_for("SIGHUP received: logs reopened");
    assert_eq!(
        c.ask("2, www.nasa.gov, R"),
        "0X01, default_local, 52.0.14.116"
    );
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(
        crate::harness::mapping_pairs(&read("mapping.old")),
        "www.google.com 142.250.72.4\n"
    );
    assert_eq!(
        crate::harness::mapping_pairs(&read("mapping.log")),
        "www.nasa.gov 52.0.14.116\n"
    );
    assert_eq!(
        read("alice.old"),
        "1, www.google.com, R\n0X01, default_local, 142.250.72.4\n\n"
    );
    assert_eq!(
        read("clients/alice.log"),
        "2, www.nasa.gov, R\n0X01, default_local, 52.0.14.116\n\n"
    );
}

/// A --user that names no user is refused before anything is bound (exit 2).
#[test]
fn an_unknown_user_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let zone = zones("com.dat").display().to_string();
    let (code, _, stderr) = crate::harness::run_dnsd(
        &[
            "tld",
            "com",
            &zone,
            "--port",
            "0",
            "--user",
            "no-such-user-dnsd",
        ],
        dir.path(),
        "",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: --user no-such-user-dnsd: no such user"),
        "{stderr}"
    );
}
