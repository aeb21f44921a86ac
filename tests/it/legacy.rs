//! The original design's peers: messages with no terminator, one write each, waiting
//! for each reply. dnsd's local server answers them, the original `client.py` gets
//! correct answers from it, and `dnsd client --legacy` gets correct answers from the
//! original `local.py` (and its root and TLD servers).
//!
//! The original programs have fixed ports; the tests run copies of them, in a temporary
//! directory, with those ports rewritten to free ones.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{run_dnsd, Hierarchy, WAIT};

/// The original programs: `shared/seed` beside the repository (as in CI), else where
/// the developers' machines keep it.
fn seed() -> Option<PathBuf> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed");
    [beside, PathBuf::from("/work/shared/seed")]
        .into_iter()
        .find(|dir| dir.join("local.py").is_file())
}

/// Sends `message` in one write, with no terminator, and reads one reply the way the
/// original does: whatever arrives, up to the line end dnsd adds.
#[track_caller]
fn legacy_ask(stream: &mut TcpStream, message: &str) -> String {
    stream.write_all(message.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.ends_with(b"\n") {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("no reply to {message:?}: {e}"));
        assert!(n > 0, "connection closed before replying to {message:?}");
        reply.extend_from_slice(&buf[..n]);
    }
    reply.pop();
    String::from_utf8(reply).unwrap()
}

#[test]
fn unterminated_messages_get_answers() {
    let h = Hierarchy::start();
    let mut s = TcpStream::connect_timeout(&h.local, WAIT).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        legacy_ask(&mut s, "alice"),
        "You are connected to the Server"
    );
    assert_eq!(
        legacy_ask(&mut s, "1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        legacy_ask(&mut s, "2, nasa.gov, I"),
        "0X01, default_local, 52.0.14.116"
    );
    assert_eq!(
        legacy_ask(&mut s, "3, google.com, I"),
        "0X00, default_local, 142.250.72.4"
    );
    assert_eq!(
        legacy_ask(&mut s, "4, nosuch.org, R"),
        "0XFF, default_local, Host not found"
    );
    assert_eq!(
        legacy_ask(&mut s, "bad"),
        "0XEE, default_local, Invalid format"
    );
    // `q`, unterminated, ends the session.
    s.write_all(b"q").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    assert_eq!(
        h.log("alice.log"),
        "1, www.google.com, R\n0X01, default_local, 142.250.72.4\n\n\
         2, nasa.gov, I\n0X01, default_local, 52.0.14.116\n\n\
         3, google.com, I\n0X00, default_local, 142.250.72.4\n\n\
         4, nosuch.org, R\n0XFF, default_local, Host not found\n\n\
         bad\n0XEE, default_local, Invalid format\n\n"
    );
}

#[test]
fn root_and_tld_answer_unterminated_messages() {
    let h = Hierarchy::start();
    let mut root = TcpStream::connect_timeout(&h.root, WAIT).unwrap();
    root.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        legacy_ask(&mut root, "1, www.google.com, R"),
        "0X01, root, 142.250.72.4"
    );
    assert_eq!(
        legacy_ask(&mut root, "2, irs.gov, I"),
        format!("0X02, root, gov {}", h.tld("gov"))
    );
    let mut org = TcpStream::connect_timeout(&h.tld("org"), WAIT).unwrap();
    org.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        legacy_ask(&mut org, "1, mozilla.org, R"),
        "0X01, org, 44.236.72.93"
    );
}

/// `python2` (2.7.18 through pyenv), if it runs here and the original programs are at
/// hand.
fn python2() -> Option<Command> {
    if seed().is_none() {
        eprintln!("skipped: the original programs (shared/seed) are not beside the repository");
        return None;
    }
    let ok = Command::new("python2")
        .args(["-c", "1"])
        .env("PYENV_VERSION", "2.7.18")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: `python2 -c 1` with PYENV_VERSION=2.7.18 does not run here");
        return None;
    }
    let mut cmd = Command::new("python2");
    cmd.env("PYENV_VERSION", "2.7.18");
    Some(cmd)
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copies `file` from the seed into `dir`, replacing each `(from, to)`; each `from`
/// must occur.
fn copy_seed(dir: &Path, file: &str, replace: &[(&str, String)]) -> PathBuf {
    let seed = seed().expect("python2() checked that the seed is there");
    let mut text = std::fs::read_to_string(seed.join(file)).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{file} has no {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// A child process killed (by its `Child`) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `port` accepts a connection, or fails after `WAIT`.
#[track_caller]
fn wait_accepting(port: u16, child: &mut Killed) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + WAIT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the original server for port {port} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "nothing accepts on {port} within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with `stdin` to completion (bounded by `WAIT`): (exit code, stdout).
fn run_bounded(mut cmd: Command, stdin: &str) -> (i32, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let mut child = Killed(child);
    let deadline = Instant::now() + WAIT;
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{cmd:?} did not finish within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let code = child
        .0
        .try_wait()
        .unwrap()
        .and_then(|s| s.code())
        .unwrap_or(-1);
    if code != 0 {
        eprintln!("{cmd:?} stderr:\n{err}");
    }
    (code, out)
}

/// Acceptance 5: the original `client.py` gets correct answers from `dnsd local`.
#[test]
fn original_client_py_against_dnsd_local() {
    let Some(mut python) = python2() else { return };
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let client = copy_seed(
        dir.path(),
        "client.py",
        &[(
            "ServerPort = 5352",
            format!("ServerPort = {}", h.local.port()),
        )],
    );
    python.arg(&client).arg("alice").current_dir(dir.path());
    let (code, out) = run_bounded(
        python,
        "1, www.google.com, R\n2, www.nasa.gov, I\n3, google.com, I\n\
         4, wikipedia.org, R\n5, nosuch.com, R\nbad\nq\n",
    );
    assert_eq!(code, 0, "{out}");
    // dnsd ends each reply with `\n`, which the original prints as it is.
    let replies: Vec<&str> = out
        .split("Server: ")
        .skip(1)
        .map(|r| r.split('\n').next().unwrap())
        .collect();
    assert_eq!(
        replies,
        [
            "You are connected to the Server",
            "0X01, default_local, 142.250.72.4",
            "0X01, default_local, 52.0.14.116",
            "0X00, default_local, 142.250.72.4",
            "0X01, default_local, 208.80.154.224",
            "0XFF, default_local, Host not found",
            "0XEE, default_local, Invalid format",
        ],
        "client.py printed:\n{out}"
    );
    assert!(h
        .log("alice.log")
        .starts_with("1, www.google.com, R\n0X01, "));
}

/// Acceptance 5: `dnsd client --legacy` gets correct answers from the original
/// `local.py`, itself asking the original root and TLD servers.
#[test]
fn dnsd_client_legacy_against_original_local_py() {
    let Some(_) = python2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let [local, root, com, gov, org] = [(); 5].map(|_| free_port());
    let port = |p: u16| format!("ServerPort = {p}");
    for (file, from, to) in [
        ("com.py", "ServerPort = 5678", com),
        ("gov.py", "ServerPort = 5680", gov),
        ("org.py", "ServerPort = 5679", org),
        ("root.py", "ServerPort = 5353", root),
    ] {
        copy_seed(d, file, &[(from, port(to))]);
    }
    copy_seed(
        d,
        "local.py",
        &[
            ("ServerPort = 5352", port(local)),
            ("('127.0.0.1', 5353)", format!("('127.0.0.1', {root})")),
        ],
    );
    copy_seed(
        d,
        "root.dat",
        &[
            ("com 127.0.0.1 5678", format!("com 127.0.0.1 {com}")),
            ("gov 127.0.0.1 5680", format!("gov 127.0.0.1 {gov}")),
            ("org 127.0.0.1 5679", format!("org 127.0.0.1 {org}")),
        ],
    );
    for file in ["com.dat", "gov.dat", "org.dat", "default.dat"] {
        copy_seed(d, file, &[]);
    }
    // Start in dependency order: each server connects to the next one down when it
    // gets a connection.
    let mut running = Vec::new();
    for (script, data, p) in [
        ("com.py", "com.dat", com),
        ("gov.py", "gov.dat", gov),
        ("org.py", "org.dat", org),
        ("root.py", "root.dat", root),
        ("local.py", "default.dat", local),
    ] {
        let mut cmd = python2().unwrap();
        let child = cmd
            .args(["-u", script, data])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        running.push(Killed(child));
        wait_accepting(p, running.last_mut().unwrap());
    }
    let server = format!("127.0.0.1:{local}");
    let (code, stdout, stderr) = run_dnsd(
        &["client", "--legacy", "--server", &server, "alice"],
        d,
        "1, www.google.com, R\n\
         2, www.nasa.gov, I\n\
         3, www.example.com, R\n\
         4, www.google.com, I\n\
         5, nosuch.org, R\n\
         6, www.mozilla.org, I\n\
         q\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "You are connected to the Server\n\
         0X01, default_local, 142.250.72.4\n\
         0X01, default_local, 52.0.14.116\n\
         0X00, default_local, 93.184.216.34\n\
         0X00, default_local, 142.250.72.4\n\
         0XFF, default_local, Host not found\n\
         0X01, default_local, 44.236.72.93\n"
    );
    drop(running);
}
