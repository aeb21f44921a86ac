//! The test harness: real servers on port 0, in-process or as the built binary (found
//! through its `listening on ADDR` line), and a line client with timeouts.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnsd::roles::local::LocalConfig;
use dnsd::runtime::hierarchy::HierarchyBuilder;
use dnsd::server::Shutdown;
use dnsd::zone::Zone;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// How much longer than expected a step may take on a loaded machine (other test runs,
/// builds and busy loops sharing two cores). An upper bound on a duration is "what it
/// should take + `SLACK`": it catches a hang or a wrong timeout, not a slow moment.
pub const SLACK: Duration = Duration::from_secs(4);

/// The path of a file in the repository's `zones/`.
pub fn zones(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("zones")
        .join(file)
}

/// The built `dnsd` binary.
pub fn dnsd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dnsd")
}

/// How long the servers under test wait for an upstream when the test is not about that
/// timeout: a loaded machine can take more than the default 2 s to get a reply through
/// a few threads, and a real hang still shows as `0XFE` well within [`WAIT`]. Tests that
/// are about the upstream timeout set their own.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// An address nothing listens on, for as long as this is held: the local end of a
/// loopback connection kept open, so a connect to it is refused and no other socket can
/// bind it. (A port bound and released at once is free for any process to take, and on a
/// busy machine one does.)
pub struct ClosedPort {
    pub addr: SocketAddr,
    _held: (TcpStream, TcpStream),
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        ClosedPort {
            addr: ours.local_addr().unwrap(),
            _held: (ours, theirs),
        }
    }
}

/// How many times a test tries new ports for a program that cannot bind port 0.
pub const PORT_ATTEMPTS: usize = 5;

/// A port for a program that cannot bind port 0 (the original Python servers, a server
/// whose address others must know before it starts). It lies below the kernel's
/// ephemeral range (`ip_local_port_range`), so no port-0 bind and no outgoing connection
/// on this machine is ever given it; another test may still have picked the same number,
/// so the caller detects a failed bind and tries again with a new one (at most
/// [`PORT_ATTEMPTS`] times), saying so.
pub fn candidate_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let range: Vec<u16> = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let (first, last) = match range[..] {
        [first, last] => (first, last),
        _ => (32768, 60999),
    };
    let (low, high) = if first >= 21_000 {
        (20_000, first)
    } else if last <= 64_000 {
        (last + 1, 65_535)
    } else {
        // The whole range is ephemeral: any port may be taken, and the retry must do.
        (20_000, 30_000)
    };
    // A random number from the standard library: each `RandomState` has its own keys.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    low + (h.finish() % u64::from(high - low)) as u16
}

/// A whole hierarchy in this process, on free ports, its logs in a temporary directory;
/// stopped when dropped.
pub struct Hierarchy {
    pub local: SocketAddr,
    pub root: SocketAddr,
    pub tlds: Vec<(String, SocketAddr)>,
    pub shutdown: Shutdown,
    /// Declared before `logs`: the servers stop before their log directory goes.
    running: dnsd::runtime::hierarchy::Hierarchy,
    pub logs: tempfile::TempDir,
}

impl Hierarchy {
    /// com, gov and org from `zones/*.<ext>`, root, and local seeded with `default.<ext>`,
    /// assembled by the library's [`HierarchyBuilder`], as `dnsd up` does.
    pub fn start_with(ext: &str, tweak: impl FnOnce(LocalConfig) -> LocalConfig) -> Hierarchy {
        let logs = tempfile::tempdir().unwrap();
        let mut builder = HierarchyBuilder::new();
        for tld in ["com", "gov", "org"] {
            builder = builder.tld(tld, Zone::load(&zones(&format!("{tld}.{ext}"))).unwrap());
        }
        let running = builder
            .cache(Zone::load(&zones(&format!("default.{ext}"))).unwrap())
            .log_dir(logs.path())
            .upstream_timeout(PATIENCE)
            .local(tweak)
            .start()
            .unwrap();
        Hierarchy {
            local: running.local,
            root: running.root,
            tlds: running.tlds.clone(),
            shutdown: running.shutdown.clone(),
            running,
            logs,
        }
    }

    pub fn start() -> Hierarchy {
        Hierarchy::start_with("dat", |c| c)
    }

    pub fn tld(&self, tld: &str) -> SocketAddr {
        self.tlds.iter().find(|(t, _)| t == tld).unwrap().1
    }

    /// A client session with the local server, past the greeting.
    #[track_caller]
    pub fn client(&self, id: &str) -> Line {
        let mut c = Line::connect(self.local);
        assert_eq!(c.ask(id), "You are connected to the Server");
        c
    }

    pub fn log(&self, file: &str) -> String {
        std::fs::read_to_string(self.logs.path().join(file)).unwrap_or_default()
    }
}

/// A raw line connection with timeouts, for talking to any server.
pub struct Line {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Line {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Line {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
        Line::from_stream(stream)
    }

    /// A connection to `addr` from the local address `from` (see [`connect_from`]).
    #[track_caller]
    pub fn connect_from(from: IpAddr, addr: SocketAddr) -> Line {
        Line::from_stream(connect_from(from, addr))
    }

    /// A line connection over `stream`, with the harness's timeouts.
    pub fn from_stream(stream: TcpStream) -> Line {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Line { stream, reader }
    }

    /// Sends `line` + `\n`.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one line (without its `\n`); `None` at end of stream.
    #[track_caller]
    pub fn recv(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                assert_eq!(buf.pop(), Some(b'\n'), "reply without a line end: {buf:?}");
                Some(String::from_utf8(buf).expect("UTF-8 reply"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("no reply within {WAIT:?}: {e}"),
        }
    }

    /// Sends a line and returns the reply line.
    #[track_caller]
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.recv().expect("the server closed the connection")
    }

    /// True if the server closes the connection (within `WAIT`).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A TCP connection to `addr` from the local address `from`: loopback holds all of
/// 127.0.0.0/8, so 127.0.0.2 is a second client address on any machine.
#[track_caller]
pub fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket
        .connect_timeout(&addr.into(), WAIT)
        .unwrap_or_else(|e| panic!("connect from {from} to {addr}: {e}"));
    socket.into()
}

/// A `dnsd` process; killed (by its pid, through `Child`) when dropped. Its stderr is
/// collected on a thread.
pub struct Proc {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub addr: Option<SocketAddr>,
    /// The thread collecting stderr: finished once the pipe has ended.
    stderr_reader: std::thread::JoinHandle<()>,
}

impl Proc {
    /// Starts `dnsd ARGS` in `dir` and waits for its first `listening on ADDR` line.
    #[track_caller]
    pub fn start(args: &[&str], dir: &Path) -> Proc {
        let mut p = Proc::spawn(args, dir);
        p.addr = Some(p.wait_listening());
        p
    }

    /// Starts `dnsd local --port 0 --root ROOT --log-dir . EXTRA...` in `dir` (so its
    /// logs land in `dir`) and waits until it listens.
    #[track_caller]
    pub fn local(root: &str, dir: &Path, extra: &[&str]) -> Proc {
        let mut args = vec!["local", "--port", "0", "--root", root, "--log-dir", "."];
        args.extend_from_slice(extra);
        Proc::start(&args, dir)
    }

    /// Starts `dnsd root TABLE --port 0 EXTRA...` in `dir`, with a table (written to
    /// `dir/root.dat`) whose only TLD is `com` at `com`, and waits until it listens.
    #[track_caller]
    pub fn root_over_com(com: SocketAddr, dir: &Path, extra: &[&str]) -> Proc {
        let table = dir.join("root.dat");
        std::fs::write(&table, format!("com {} {}\n", com.ip(), com.port())).unwrap();
        let mut args = vec!["root", "root.dat", "--port", "0"];
        args.extend_from_slice(extra);
        Proc::start(&args, dir)
    }

    /// Starts `dnsd ARGS` in `dir` without waiting for anything. A server that asks
    /// upstreams (local, root, up) waits [`PATIENCE`] for them unless ARGS set
    /// `--upstream-timeout` (or give a lab file, which `dnsd up` refuses it beside).
    pub fn spawn(args: &[&str], dir: &Path) -> Proc {
        let mut command = Command::new(dnsd_bin());
        command.args(args).current_dir(dir).stdout(Stdio::piped());
        // The tests read the per-query lines, which a server run alone leaves out by
        // default.
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let asks_upstreams = matches!(args.first(), Some(&("local" | "root" | "up")));
        if asks_upstreams && !args.contains(&"--upstream-timeout") && !args.contains(&"--config") {
            command.args(["--upstream-timeout", &PATIENCE.as_secs().to_string()]);
        }
        Proc::run(command)
    }

    /// Starts `command` (a dnsd, possibly behind a wrapper that execs it) with its stderr
    /// collected on a thread.
    pub fn run(mut command: Command) -> Proc {
        let mut child = command
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dnsd");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Proc {
            child,
            stderr,
            addr: None,
            stderr_reader,
        }
    }

    /// Waits for a stderr line containing `needle` and returns it.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(l) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "no stderr line with {needle:?} within {WAIT:?}; got:\n{}",
            self.stderr.lock().unwrap().join("\n")
        );
    }

    /// Waits for `listening on ADDR` and returns ADDR.
    #[track_caller]
    pub fn wait_listening(&self) -> SocketAddr {
        let line = self.wait_for("listening on ");
        let rest = line.split("listening on ").nth(1).unwrap();
        rest.split_whitespace().next().unwrap().parse().unwrap()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("not listening")
    }

    /// Waits for the process to exit and returns its exit code.
    #[track_caller]
    /// Its stderr has then been collected to the end: the last lines a process writes
    /// can still be in the pipe when it has exited.
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                while !self.stderr_reader.is_finished() {
                    assert!(
                        Instant::now() < deadline,
                        "dnsd exited but its stderr did not end within {WAIT:?}"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("dnsd did not exit within {WAIT:?}");
    }

    /// Sends a signal to this process (by its pid).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Once the process has exited, waits at most `limit` for its stderr to be collected
    /// to the end (a child it forked may hold the pipe longer: then less is collected).
    pub fn wait_stderr_end(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr_reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mapping.log`'s text as `NAME ADDR` lines, the form the original wrote: each line
/// must also carry when it was learned and its TTL, which this drops.
#[track_caller]
pub fn mapping_pairs(text: &str) -> String {
    text.lines()
        .map(|line| {
            let m = dnsd::ops::querylog::Mapping::parse(line)
                .unwrap_or_else(|e| panic!("mapping.log line {line:?}: {e}"))
                .unwrap_or_else(|| panic!("mapping.log line {line:?} without learned= ttl="));
            format!("{} {}\n", m.name, m.addr)
        })
        .collect()
}

/// Runs `dnsd ARGS` to completion with `stdin`, returning (exit code, stdout, stderr).
pub fn run_dnsd(args: &[&str], dir: &Path, stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(dnsd_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dnsd");
    write_input(&mut child, stdin);
    let deadline = Instant::now() + WAIT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dnsd {args:?} did not finish within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `input` to the child's stdin and closes it. A child that exits without reading
/// it all (one that cannot connect, say) may well be gone first: that is no failure of
/// the test's, and its exit code and output tell what happened.
#[track_caller]
pub fn write_input(child: &mut Child, input: &str) {
    let mut stdin = child.stdin.take().expect("stdin piped");
    if let Err(e) = stdin.write_all(input.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing the input: {e}"
        );
    }
}

/// A DNS-over-TCP connection kept open across queries (to any server).
pub struct DnsTcp {
    stream: TcpStream,
    id: u16,
}

impl DnsTcp {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> DnsTcp {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
        DnsTcp { stream, id: 0 }
    }

    /// Asks for `name`'s A record (RD set if `recursive`) and reads the answer back.
    #[track_caller]
    pub fn ask(&mut self, name: &str, recursive: bool) -> dnsd::model::Resolution {
        self.ask_within(name, recursive, WAIT)
    }

    /// [`ask`](Self::ask), waiting `wait` for the answer (a test that makes its upstream
    /// slow on purpose waits longer than [`WAIT`]).
    pub fn ask_within(
        &mut self,
        name: &str,
        recursive: bool,
        wait: Duration,
    ) -> dnsd::model::Resolution {
        use dnsd::dns::exchange::{exchange_tcp, query_message, read_response};
        use dnsd::model::{QType, Query, Recursion};
        self.id = self.id.wrapping_add(1);
        let query = Query {
            name: dnsd::model::name::Name::parse(name).unwrap(),
            qtype: QType::A,
            recursion: if recursive {
                Recursion::Recursive
            } else {
                Recursion::Iterative
            },
            tag: None,
        };
        let request = query_message(self.id, &query).unwrap();
        let response = exchange_tcp(&mut self.stream, &request, Instant::now() + wait)
            .expect("a DNS answer over the open connection");
        read_response(&response, self.id, &query).expect("a readable DNS answer")
    }

    /// The first address of the answer to `name` (RD set).
    #[track_caller]
    pub fn address(&mut self, name: &str) -> Option<std::net::IpAddr> {
        self.ask(name, true).first_ip()
    }
}

/// A DNS query for `name`'s A record with ID `id`, RD set if `rd`: bytes a test sends
/// as they are (over UDP, or with [`dns_frame`] over TCP).
pub fn dns_query(id: u16, name: &str, rd: bool) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = rd;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    msg.to_vec().unwrap()
}

/// `message` with DNS's two-byte TCP length prefix.
pub fn dns_frame(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// The ID and response code of a DNS response; panics on anything that is not one.
#[track_caller]
pub fn dns_id_rcode(response: &[u8]) -> (u16, hickory_proto::op::ResponseCode) {
    let msg = hickory_proto::op::Message::from_vec(response)
        .unwrap_or_else(|e| panic!("not a DNS message ({e}): {response:?}"));
    assert_eq!(
        msg.metadata.message_type,
        hickory_proto::op::MessageType::Response
    );
    (msg.metadata.id, msg.metadata.response_code)
}

/// Everything `stream` receives until the peer closes it (within [`WAIT`]).
#[track_caller]
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("not closed within {WAIT:?} (got {got:?}): {e}"),
        }
    }
}

/// What a DNS-over-TCP client refused at connection gets: `None` for a close, else the
/// one framed DNS message it was sent before the close (its ID and response code).
/// Anything else (the line protocol's text, say) fails the test.
#[track_caller]
pub fn dns_tcp_refusal(
    mut stream: TcpStream,
    id: u16,
) -> Option<(u16, hickory_proto::op::ResponseCode)> {
    stream
        .write_all(&dns_frame(&dns_query(id, "www.google.com.", true)))
        .expect("send the query");
    let got = read_to_close(&mut stream);
    if got.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&got);
    let [hi, lo, message @ ..] = &got[..] else {
        panic!("not a framed DNS message: {text:?}");
    };
    assert_eq!(
        usize::from(u16::from_be_bytes([*hi, *lo])),
        message.len(),
        "not one framed DNS message: {text:?}"
    );
    Some(dns_id_rcode(message))
}
