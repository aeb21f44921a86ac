//! `dnsd client` as a process with piped stdin: short and full request forms, `q`, no
//! prompt, exact output; exit codes when the server is unreachable or silent.

use std::net::TcpListener;

use dnsd::roles::RoleConfig;

use crate::harness::{run_dnsd, ClosedPort, Hierarchy, WAIT};

#[test]
fn scripted_session() {
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let server = h.local.to_string();
    let input = "www.google.com\n\
                 nasa.gov I\n\
                 3, wikipedia.org, I\n\
                 \n\
                 google.com\n\
                 Mozilla.ORG. r\n\
                 nosuch.com I\n\
                 www.google.zz\n\
                 bad\n\
                 www.google.com X\n\
                 q\n\
                 www.irs.gov\n";
    let (code, stdout, stderr) =
        run_dnsd(&["client", "alice", "--server", &server], dir.path(), input);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "You are connected to the Server\n\
         0X01, default_local, 142.250.72.4\n\
         0X01, default_local, 52.0.14.116\n\
         0X01, default_local, 208.80.154.224\n\
         0X00, default_local, 142.250.72.4\n\
         0X01, default_local, 44.236.72.93\n\
         0XFF, default_local, Host not found\n\
         0XFF, default_local, Host not found\n\
         0XEE, default_local, Invalid format\n\
         0XEE, default_local, Invalid format\n"
    );
    // dnsd filled in the tags and the default mode; nothing after `q` was sent.
    let log = h.log("clients/alice.log");
    let requests: Vec<&str> = log.split("\n\n").filter_map(|r| r.lines().next()).collect();
    assert_eq!(
        requests,
        [
            "1, www.google.com, R",
            "2, nasa.gov, I",
            "3, wikipedia.org, I",
            "4, google.com, R",
            "5, Mozilla.ORG., r",
            "6, nosuch.com, I",
            "7, www.google.zz, R",
            "8, bad, R",
            "9, www.google.com, X",
        ]
    );
}

#[test]
fn end_of_input_ends_the_session_without_a_prompt() {
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let server = h.local.to_string();
    let (code, stdout, stderr) = run_dnsd(
        &["client", "bob", "--server", &server],
        dir.path(),
        "example.com I",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "You are connected to the Server\n0X00, default_local, 93.184.216.34\n"
    );
    assert!(!stdout.contains(">>"));
    // An empty script: only the greeting.
    let (code, stdout, _) = run_dnsd(&["client", "bob", "--server", &server], dir.path(), "");
    assert_eq!(code, 0);
    assert_eq!(stdout, "You are connected to the Server\n");
}

#[test]
fn unreachable_server_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let closed = ClosedPort::new();
    let server = closed.addr.to_string();
    let (code, stdout, stderr) = run_dnsd(
        &["client", "alice", "--server", &server],
        dir.path(),
        "www.google.com\n",
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains(&server), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn silent_server_times_out_with_exit_1() {
    // Accepts (in its backlog) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_dnsd(
        &["client", "alice", "--server", &server, "--timeout", "1"],
        dir.path(),
        "www.google.com\n",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no reply"), "{stderr}");
}

#[test]
fn bad_id_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let closed = ClosedPort::new();
    for id in ["bad id", "a/b", "", ".hidden", "a,b"] {
        let (code, stdout, stderr) = run_dnsd(
            &["client", id, "--server", &closed.addr.to_string()],
            dir.path(),
            "",
        );
        assert_eq!(code, 2, "{id:?}: {stderr}");
        assert_eq!(stdout, "");
        assert!(stderr.contains("bad client id"), "{id:?}: {stderr}");
    }
}

#[test]
fn legacy_client_against_dnsd_local() {
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let server = h.local.to_string();
    let (code, stdout, stderr) = run_dnsd(
        &["client", "--legacy", "--server", &server, "alice"],
        dir.path(),
        "1, www.google.com, R\nnasa.gov I\nbad\nq\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "You are connected to the Server\n\
         0X01, default_local, 142.250.72.4\n\
         0X01, default_local, 52.0.14.116\n\
         0XEE, default_local, Invalid format\n"
    );
}

/// A person at the prompt easily stays silent past the server's idle timeout: the client
/// opens a new session and asks again instead of failing.
#[test]
fn a_session_closed_for_idleness_is_reopened() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let h = Hierarchy::start_with("dat", |c| {
        let mut limits = c.serving().limits();
        limits.frame.idle_timeout = std::time::Duration::from_millis(300);
        c.with_limits(limits)
    });
    let mut child = Command::new(crate::harness::dnsd_bin())
        .args(["client", "alice", "--server", &h.local.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut next_line = |line: &mut String| {
        line.clear();
        stdout.read_line(line).unwrap();
        line.trim_end().to_owned()
    };
    assert_eq!(next_line(&mut line), "You are connected to the Server");
    stdin.write_all(b"www.google.com\n").unwrap();
    assert_eq!(next_line(&mut line), "0X01, default_local, 142.250.72.4");
    // Stay silent until the server has closed the session for idleness (the point of
    // the test): however long that takes on a loaded machine.
    wait_closed_by(h.local);
    stdin.write_all(b"google.com\n").unwrap();
    assert_eq!(next_line(&mut line), "0X00, default_local, 142.250.72.4");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reconnecting"), "{stderr}");
    // Both sessions are in alice.log, one request each.
    assert_eq!(
        h.log("clients/alice.log"),
        "1, www.google.com, R\n0X01, default_local, 142.250.72.4\n\n\
         2, google.com, R\n0X00, default_local, 142.250.72.4\n\n"
    );
}

/// Waits (up to `WAIT`) until `server` has closed a connection made to it: the client's
/// end is then in CLOSE_WAIT, as `/proc/net/tcp` shows (loopback, IPv4).
#[track_caller]
fn wait_closed_by(server: std::net::SocketAddr) {
    let std::net::SocketAddr::V4(v4) = server else {
        panic!("{server} is not IPv4")
    };
    // As the kernel prints it: the address as a number in host byte order, then the port.
    let remote = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    const CLOSE_WAIT: &str = "08";
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let closed = table.lines().skip(1).any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&CLOSE_WAIT)
        });
        if closed {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{server} closed no connection within {WAIT:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
