//! File descriptors: the soft limit is raised to the hard one at start, so 1,000
//! clients fit under a soft limit of 256; `--max-connections` beyond what the hard
//! limit allows is refused at start.

use std::process::{Command, Stdio};

use crate::harness::{dnsd_bin, Line, Proc, WAIT};

/// `dnsd ARGS` started by a shell that first lowers the limits (`ulimit OPTS`).
fn with_ulimit(ulimit: &str, args: &[&str], dir: &std::path::Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
        .arg(dnsd_bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped());
    command
}

/// 1,000 clients connected at once to a local server started with a soft limit of
/// 256, each answered (each holds a socket and its ID.log open at the server).
#[test]
fn a_thousand_clients_at_once_under_a_low_soft_limit() {
    const CLIENTS: usize = 1000;
    // This process holds the other end of each connection.
    let limit = dnsd::ops::fds::raise().unwrap();
    let (_, hard) = hard_limit();
    if hard < 2 * CLIENTS as u64 + 200 || limit < CLIENTS as u64 + 100 {
        eprintln!("skipped: the hard limit on open files is {hard}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fixed.dat"), "www.fixed.com 10.1.1.1\n").unwrap();
    let args = [
        "local",
        "--port",
        "0",
        "--root",
        "127.0.0.1:9",
        "--log-dir",
        ".",
        "--cache",
        "fixed.dat",
    ];
    let mut local = Proc::run(with_ulimit("-Sn 256", &args, dir.path()));
    local.addr = Some(local.wait_listening());
    let raised = local.wait_for("file descriptors: limit raised from 256 to ");
    eprintln!("{raised}");
    let mut clients: Vec<Line> = (0..CLIENTS)
        .map(|i| {
            let mut c = Line::connect(local.addr());
            c.send(&format!("c{i}"));
            c
        })
        .collect();
    for c in &mut clients {
        assert_eq!(c.recv().as_deref(), Some("You are connected to the Server"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            c.ask(&format!("{i}, www.fixed.com, R")),
            "0X00, default_local, 10.1.1.1"
        );
    }
    let logs = std::fs::read_dir(dir.path().join("clients"))
        .unwrap()
        .count();
    assert_eq!(logs, CLIENTS, "a clients/ID.log per client");
    let top = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(top, 3, "clients/, mapping.log, fixed.dat");
    assert!(
        !local.stderr_text().contains("refusing"),
        "{}",
        local.stderr_text()
    );
}

/// More connections than the hard limit allows: refused at start, exit 2, with the
/// figures.
#[test]
fn max_connections_beyond_the_limit_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("com.dat"), "www.a.com 10.0.0.1\n").unwrap();
    let cases: [(&[&str], &str); 2] = [
        (
            &["local", "--port", "0", "--max-connections", "300"],
            "300 connections need up to 664 file descriptors",
        ),
        (
            &[
                "tld",
                "com",
                "com.dat",
                "--port",
                "0",
                "--max-connections",
                "500",
            ],
            "500 connections need up to 564 file descriptors",
        ),
    ];
    for (args, expected) in cases {
        let mut p = Proc::run(with_ulimit("-n 512", args, dir.path()));
        assert_eq!(p.wait_exit(), 2, "{args:?}: {}", p.stderr_text());
        // The stderr thread may still be reading the last line.
        let deadline = std::time::Instant::now() + WAIT;
        while !p.stderr_text().contains("error: ") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let err = p.stderr_text();
        assert!(
            err.contains(expected) && err.contains("only 512"),
            "{args:?}: {err}"
        );
    }
    // Within the limit, the same server starts.
    let p = Proc::run(with_ulimit(
        "-n 512",
        &[
            "tld",
            "com",
            "com.dat",
            "--port",
            "0",
            "--max-connections",
            "400",
        ],
        dir.path(),
    ));
    p.wait_listening();
}

fn hard_limit() -> (u64, u64) {
    let out = Command::new("sh")
        .args(["-c", "ulimit -Sn; ulimit -Hn"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.lines().map(|l| l.trim().parse().unwrap_or(u64::MAX));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}
