//! The original design's peers: messages with no terminator, one write each, waiting
//! for each reply. dnsd's local server answers them, the original `client.py` gets
//! correct answers from it, and `dnsd client --legacy` gets correct answers from the
//! original `local.py` (and its root and TLD servers).
//!
//! The original programs have fixed ports; the tests run copies of them, in a temporary
//! directory, with those ports rewritten (to candidates, tried again if taken) and a
//! `listening on PORT` line printed once each listens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::harness::{candidate_port, run_dnsd, write_input, Hierarchy, PORT_ATTEMPTS, WAIT};

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
        h.log("clients/alice.log"),
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
/// hand. Otherwise the test is skipped, or, with `DNSD_REQUIRE_PYTHON2` set (as CI does
/// where python2 runs), fails. (Where the build script found them missing, the tests
/// that need them are ignored instead.)
fn python2() -> Option<Command> {
    static FOUND: OnceLock<Result<String, String>> = OnceLock::new();
    match FOUND.get_or_init(find_python2) {
        Ok(executable) => {
            let mut cmd = Command::new(executable);
            cmd.env("PYENV_VERSION", "2.7.18");
            Some(cmd)
        }
        Err(why) if std::env::var_os("DNSD_REQUIRE_PYTHON2").is_some() => {
            panic!("the original programs must run (DNSD_REQUIRE_PYTHON2) but {why}")
        }
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// The python2 interpreter itself, or why there is none. Found once: pyenv's `python2`
/// is a chain of shell scripts that takes a good part of a second to start it, and much
/// longer on a busy machine.
fn find_python2() -> Result<String, String> {
    if seed().is_none() {
        return Err("the original programs (shared/seed) are not beside the repository".into());
    }
    let out = Command::new("python2")
        .args(["-c", "import sys; print(sys.executable)"])
        .env("PYENV_VERSION", "2.7.18")
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() && !out.stdout.trim_ascii().is_empty() => {
            Ok(String::from_utf8_lossy(out.stdout.trim_ascii()).into_owned())
        }
        _ => Err("`python2` with PYENV_VERSION=2.7.18 does not run here".into()),
    }
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

/// The original servers' `listen` line. The tests' copies print `listening on PORT`
/// after it, so that a test knows the port is theirs: a connect could reach whoever else
/// holds it.
const ORIGINAL_LISTEN: &str = "    server_socket_.listen(1)\n";

/// What they print when the bind fails (and then they exit).
const ORIGINAL_BIND_FAILED: &str = "Failed to create socket.";

/// One of the original servers, running from its copy in a test's directory, with its
/// output collected on threads; killed when dropped.
struct Original {
    _child: Killed,
}

impl Original {
    /// Starts `python2 -u SCRIPT DATA` in `dir` (the script's copy prints
    /// `listening on PORT` once it listens) and waits until it listens. `Err` if its port
    /// was taken (it said so and exited); any other end fails the test.
    #[track_caller]
    fn start(dir: &Path, script: &str, data: &str, port: u16) -> Result<Original, String> {
        let mut child = python2()
            .unwrap()
            .args(["-u", script, data])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            collect_lines(child.stdout.take().unwrap(), &output),
            collect_lines(child.stderr.take().unwrap(), &output),
        ];
        let mut child = Killed(child);
        let listening = format!("listening on {port}");
        let deadline = Instant::now() + WAIT;
        loop {
            if output.lock().unwrap().contains(&listening) {
                return Ok(Original { _child: child });
            }
            if let Some(status) = child.0.try_wait().unwrap() {
                // Everything it printed, then why it ended.
                for r in readers {
                    let _ = r.join();
                }
                let text = output.lock().unwrap().join("\n");
                if text.contains(ORIGINAL_BIND_FAILED) {
                    return Err(format!("{script} could not bind port {port}"));
                }
                panic!("{script} exited ({status}) before listening on {port}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "{script} did not listen on {port} within {WAIT:?}:\n{}",
                output.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Reads `pipe` line by line into `into` until it ends, on a thread: a child whose
/// output is never read would block once the pipe is full.
fn collect_lines(
    pipe: impl Read + Send + 'static,
    into: &Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    let into = into.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    })
}

/// Runs `cmd` with `stdin` to completion (bounded by `WAIT`): (exit code, stdout).
fn run_bounded(mut cmd: Command, stdin: &str) -> (i32, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write_input(&mut child, stdin);
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
#[cfg_attr(
    missing_python2,
    ignore = "needs python2 2.7.18 through pyenv (pyenv install 2.7.18) and the original programs in ../shared/seed"
)]
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
        .log("clients/alice.log")
        .starts_with("1, www.google.com, R\n0X01, "));
}

/// Acceptance 5: `dnsd client --legacy` gets correct answers from the original
/// `local.py`, itself asking the original root and TLD servers.
#[test]
#[cfg_attr(
    missing_python2,
    ignore = "needs python2 2.7.18 through pyenv (pyenv install 2.7.18) and the original programs in ../shared/seed"
)]
fn dnsd_client_legacy_against_original_local_py() {
    let Some(_) = python2() else { return };
    // Their ports are written into their source, so not port 0: candidates, and new ones
    // if any is taken.
    for attempt in 1..=PORT_ATTEMPTS {
        let dir = tempfile::tempdir().unwrap();
        match start_originals(dir.path()) {
            Ok((local, running)) => {
                legacy_client_gets_answers(dir.path(), local);
                drop(running);
                return;
            }
            Err(why) => {
                eprintln!("attempt {attempt} of {PORT_ATTEMPTS}: {why}; again with new ports")
            }
        }
    }
    panic!("the original servers found no free ports in {PORT_ATTEMPTS} attempts");
}

/// Copies the original servers into `dir` with new ports and starts them; returns the
/// local server's port and the running servers, or `Err` if a port was taken.
fn start_originals(d: &Path) -> Result<(u16, Vec<Original>), String> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < 5 {
        let p = candidate_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let [local, root, com, gov, org] = ports[..] else {
        unreachable!()
    };
    let port = |p: u16| format!("ServerPort = {p}");
    let listening = || {
        (
            ORIGINAL_LISTEN,
            format!("{ORIGINAL_LISTEN}    print('listening on %d' % port)\n"),
        )
    };
    for (file, from, to) in [
        ("com.py", "ServerPort = 5678", com),
        ("gov.py", "ServerPort = 5680", gov),
        ("org.py", "ServerPort = 5679", org),
        ("root.py", "ServerPort = 5353", root),
    ] {
        copy_seed(d, file, &[(from, port(to)), listening()]);
    }
    copy_seed(
        d,
        "local.py",
        &[
            ("ServerPort = 5352", port(local)),
            ("('127.0.0.1', 5353)", format!("('127.0.0.1', {root})")),
            listening(),
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
        running.push(Original::start(d, script, data, p)?);
    }
    Ok((local, running))
}

/// `dnsd client --legacy` asks the original local server on `local`.
#[track_caller]
fn legacy_client_gets_answers(d: &Path, local: u16) {
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
}
