//! The soak run behind `just soak`: the built `dnsd` as separate processes (three TLD
//! servers, the root, the local server), a few hundred clients mixing R and I, hits and
//! misses, valid and invalid lines, while a chaos thread kills the root or a TLD server
//! (SIGKILL) and restarts it on the same port. At the end it prints the counts and exits
//! 1 if any reply was malformed or wrong, any query went unanswered, or the local
//! server's logs miss (or add) a line.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example soak -- --seconds 60 --clients 300
//! ```
//!
//! Every server binds 127.0.0.1 only, on a port it picks (`--port 0`) and keeps across
//! restarts. Each client is a thread with its own connection ([`dnsd::line::client::Client`]);
//! the process needs about one file descriptor per client (`ulimit -n`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use dnsd::line::client::Client;
use dnsd::line::message::GREETING;

/// How long a client waits for a reply before counting the query as unanswered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The name the local server replies under.
const LOCAL: &str = "default_local";
/// What the servers log: warnings, plus the `listening on` line the soak waits for.
const RUST_LOG: &str = "warn,dnsd::server=info";

#[derive(Parser, Debug)]
#[command(about = "Soak dnsd: many clients while upstream servers are killed and restarted")]
struct Args {
    /// How long the clients run, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Client threads, each with its own connection.
    #[arg(long, default_value_t = 300)]
    clients: usize,
    /// Distinct client ids (several clients share each one, and so its ID.log).
    #[arg(long, default_value_t = 40)]
    ids: usize,
    /// Mean pause between two queries of one client, in milliseconds.
    #[arg(long, default_value_t = 40)]
    think_ms: u64,
    /// The dnsd binary [default: $DNSD_BIN, else $CARGO_TARGET_DIR/release/dnsd, else
    /// target/release/dnsd].
    #[arg(long)]
    dnsd: Option<PathBuf>,
    /// Keep the work directory (logs, server stderr) even when the run is clean.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// A small xorshift generator: enough randomness for a workload, no extra crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What a well-behaved local server must answer to a request line.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A name the hierarchy knows: this address (`0X00`/`0X01`), or `0XFE` while its
    /// server is down.
    Known(IpAddr),
    /// A name nobody knows: `0XFF`, or `0XFE` while its server is down.
    Unknown,
    /// Not a request: `0XEE, default_local, Invalid format`.
    Invalid,
}

/// The request lines the clients draw from.
struct Workload {
    known: Vec<(String, IpAddr)>,
    unknown: Vec<String>,
    invalid: Vec<&'static str>,
}

impl Workload {
    /// Every name of the zone files (and its form without `www.`), misses in each TLD
    /// and in one the root does not know, and lines the local server must reject.
    fn new(zones: &Path) -> Result<Workload, String> {
        let mut known = Vec::new();
        for file in ["com.dat", "gov.dat", "org.dat", "default.dat"] {
            let path = zones.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for line in text.lines() {
                let mut words = line.split_whitespace();
                let (Some(name), Some(addr)) = (words.next(), words.next()) else {
                    continue;
                };
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|e| format!("{}: {addr:?}: {e}", path.display()))?;
                known.push((name.to_owned(), addr));
                if let Some(short) = name.strip_prefix("www.") {
                    known.push((short.to_owned(), addr));
                }
            }
        }
        let mut unknown = Vec::new();
        for tld in ["com", "gov", "org", "xyz"] {
            for i in 0..8 {
                unknown.push(format!("nosuch{i}.{tld}"));
            }
        }
        let invalid = vec![
            "",
            "   ",
            ",,,",
            "hello",
            "1,2",
            "1, a..com, R",
            "1, www.google.com, X",
            "1, www.google.com, R, extra",
            "1, 1.2.3.4, R",
            "1, -a.com, I",
            "1, www.goo\0gle.com, R",
            "1, \u{1b}[31mred.com, I",
            "1, aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com, R",
        ];
        Ok(Workload {
            known,
            unknown,
            invalid,
        })
    }

    /// One request line (with its line end) and what it must get: 70% known names,
    /// 15% misses, 15% invalid lines; modes R and I alike, some lines end in `\r\n`.
    fn pick(&self, rng: &mut Rng, tag: u64) -> (String, Expect) {
        let mode = if rng.chance(50) { "R" } else { "I" };
        let end = if rng.chance(10) { "\r\n" } else { "\n" };
        let roll = rng.below(100);
        if roll < 70 {
            let (name, addr) = &self.known[rng.below(self.known.len() as u64) as usize];
            (format!("{tag}, {name}, {mode}{end}"), Expect::Known(*addr))
        } else if roll < 85 {
            let name = &self.unknown[rng.below(self.unknown.len() as u64) as usize];
            (format!("{tag}, {name}, {mode}{end}"), Expect::Unknown)
        } else {
            let line = self.invalid[rng.below(self.invalid.len() as u64) as usize];
            (format!("{line}{end}"), Expect::Invalid)
        }
    }
}

/// The codes a reply may carry, in the order the report prints them.
const CODES: [(&str, &str); 6] = [
    ("0X00", "cached"),
    ("0X01", "resolved"),
    ("0X02", "referral"),
    ("0XFF", "not found"),
    ("0XEE", "invalid"),
    ("0XFE", "failure"),
];

/// Counters shared by the client threads.
#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    by_code: [AtomicU64; 6],
    unanswered: AtomicU64,
    malformed: AtomicU64,
    wrong: AtomicU64,
    sessions: AtomicU64,
    refused: AtomicU64,
    busy: AtomicU64,
    bad_ids: AtomicU64,
    /// The first few problems, to show in the report.
    problems: Mutex<Vec<String>>,
}

impl Stats {
    fn problem(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if problems.len() < 20 {
            problems.push(what);
        }
    }
}

/// Checks one reply line against the grammar `CODE, default_local, TEXT` and against
/// what the request must get. Returns the index of its code in [`CODES`].
fn check_reply(reply: &str, expect: Expect) -> Result<usize, (bool, String)> {
    let malformed = |why: &str| Err((true, format!("malformed reply {reply:?}: {why}")));
    let fields: Vec<&str> = reply.splitn(3, ", ").collect();
    let [code, server, text] = fields[..] else {
        return malformed("not three fields");
    };
    let Some(index) = CODES.iter().position(|(c, _)| *c == code) else {
        return malformed("unknown code");
    };
    if server != LOCAL {
        return malformed("not the local server's name");
    }
    let text_ok = match code {
        "0X00" | "0X01" => text.parse::<IpAddr>().is_ok(),
        "0XFF" => text == "Host not found",
        "0XEE" => text == "Invalid format",
        "0XFE" => text == "Server failure",
        _ => false,
    };
    if !text_ok {
        return malformed("text does not match the code");
    }
    let right = match (expect, code) {
        (_, "0XFE") => !matches!(expect, Expect::Invalid),
        (Expect::Known(addr), "0X00" | "0X01") => text.parse() == Ok(addr),
        (Expect::Unknown, "0XFF") => true,
        (Expect::Invalid, "0XEE") => true,
        _ => false,
    };
    if right {
        Ok(index)
    } else {
        Err((
            false,
            format!("wrong reply {reply:?} (expected {expect:?})"),
        ))
    }
}

/// Connects as `id` (the id sent, the greeting read). `None` (counted) when the server
/// refuses or is busy.
fn connect(local: SocketAddr, id: &str, stats: &Stats) -> Option<Client> {
    let mut client = match Client::open_addr(local, false, REPLY_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            stats.problem(&stats.refused, format!("connect to the local server: {e}"));
            return None;
        }
    };
    match client.exchange(id) {
        Ok(r) if r == GREETING => {
            stats.sessions.fetch_add(1, Ordering::Relaxed);
            Some(client)
        }
        Ok(r) if r == format!("0XFE, {LOCAL}, Server busy") => {
            stats.busy.fetch_add(1, Ordering::Relaxed);
            None
        }
        Ok(r) => {
            stats.problem(&stats.refused, format!("greeting {r:?}"));
            None
        }
        Err(e) => {
            stats.problem(&stats.refused, format!("no greeting: {e}"));
            None
        }
    }
}

/// Connects with an id the server must refuse, and checks that it does.
fn try_bad_id(local: SocketAddr, rng: &mut Rng, stats: &Stats) {
    const BAD: [&str; 5] = ["../x", "/etc/passwd", "a/b", "..", ".hidden"];
    let id = BAD[rng.below(BAD.len() as u64) as usize];
    let Ok(mut client) = Client::open_addr(local, false, REPLY_TIMEOUT) else {
        return;
    };
    let reply = client.exchange(id).ok();
    if reply.as_deref() == Some(&format!("0XEE, {LOCAL}, Invalid client id")) {
        stats.bad_ids.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.problem(
            &stats.malformed,
            format!("id {id:?}: got {reply:?} instead of Invalid client id"),
        );
    }
}

/// One client thread: sessions of random length as `id` until `stop`; returns how many
/// of each reply line it received, to compare with `ID.log`.
fn client(
    n: usize,
    id: String,
    local: SocketAddr,
    work: Arc<Workload>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    think_ms: u64,
) -> HashMap<String, u64> {
    let mut rng = Rng::new(n as u64 + 1 + std::process::id() as u64 * 7919);
    let mut received: HashMap<String, u64> = HashMap::new();
    let mut tag = 0;
    while !stop.load(Ordering::Relaxed) {
        if rng.chance(5) {
            try_bad_id(local, &mut rng, &stats);
        }
        let Some(mut session) = connect(local, &id, &stats) else {
            thread::sleep(Duration::from_millis(200));
            continue;
        };
        let queries = 20 + rng.below(200);
        for _ in 0..queries {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tag += 1;
            let (line, expect) = work.pick(&mut rng, tag);
            stats.sent.fetch_add(1, Ordering::Relaxed);
            // The line carries its own end (`\n` or `\r\n`); the client adds the `\n`.
            let message = line.strip_suffix('\n').unwrap_or(&line);
            let Ok(reply) = session.exchange(message) else {
                stats.problem(&stats.unanswered, format!("{id}: no reply to {line:?}"));
                break;
            };
            match check_reply(&reply, expect) {
                Ok(code) => {
                    stats.by_code[code].fetch_add(1, Ordering::Relaxed);
                }
                Err((true, why)) => stats.problem(&stats.malformed, format!("{line:?}: {why}")),
                Err((false, why)) => stats.problem(&stats.wrong, format!("{line:?}: {why}")),
            }
            *received.entry(reply).or_default() += 1;
            thread::sleep(Duration::from_millis(rng.below(2 * think_ms + 1)));
        }
        let _ = session.quit();
    }
    received
}

/// A `dnsd` server process, started with `--port 0` and restartable on the port it got
/// then (the root table and the local server's `--root` name that port).
struct Server {
    name: String,
    bin: PathBuf,
    args: Vec<String>,
    /// Where its stderr is appended, across restarts.
    stderr_path: PathBuf,
    child: Option<Child>,
    addr: Option<SocketAddr>,
}

impl Server {
    fn new(name: &str, bin: &Path, args: Vec<String>, dir: &Path) -> Server {
        Server {
            name: name.to_owned(),
            bin: bin.to_owned(),
            args,
            stderr_path: dir.join(format!("{name}.stderr")),
            child: None,
            addr: None,
        }
    }

    /// Starts it and waits for `listening on`. The first start binds whatever port its
    /// arguments say (`--port 0`: any free one, read back from that line), and every
    /// restart the port it got: a restart may find that port still held for a moment, so
    /// a failed start is retried a few times.
    fn start(&mut self) -> Result<SocketAddr, String> {
        let mut last = String::new();
        for attempt in 0..10 {
            if attempt > 0 {
                thread::sleep(Duration::from_millis(200));
            }
            match self.start_once() {
                Ok(addr) => {
                    self.pin_port(addr.port());
                    return Ok(addr);
                }
                Err(e) => last = e,
            }
        }
        Err(format!("{} did not start: {last}", self.name))
    }

    /// Makes `--port` in its arguments `port`, for the restarts.
    fn pin_port(&mut self, port: u16) {
        if let Some(i) = self.args.iter().position(|a| a == "--port") {
            if let Some(value) = self.args.get_mut(i + 1) {
                *value = port.to_string();
            }
        }
    }

    fn start_once(&mut self) -> Result<SocketAddr, String> {
        let mut child = Command::new(&self.bin)
            .args(&self.args)
            .env("RUST_LOG", RUST_LOG)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let pipe = child.stderr.take().ok_or("no stderr pipe")?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .map_err(|e| format!("{}: {e}", self.stderr_path.display()))?;
        let (tx, rx) = mpsc::channel();
        // Drains stderr for the life of the process (a full pipe would stall the
        // server), copying it to a file and reporting the address it listens on.
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                    let _ = tx.send(addr);
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(addr)) => {
                self.child = Some(child);
                self.addr = Some(addr);
                Ok(addr)
            }
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(format!(
                    "no `listening on` line ({status}); see {}",
                    self.stderr_path.display()
                ))
            }
        }
    }

    /// SIGKILL, through `Child` (by pid).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (the server stops, answers what it has read, flushes its logs), then its
    /// exit code, waiting at most `START_TIMEOUT`.
    fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The chaos thread: every 1.5-4.5 s kills the root or a TLD server and restarts it on
/// the same port 0.3-2 s later. Returns (kills, failed restarts).
fn chaos(servers: Arc<Vec<Mutex<Server>>>, stop: Arc<AtomicBool>) -> (u64, u64) {
    let mut rng = Rng::new(std::process::id() as u64);
    let (mut kills, mut failed) = (0, 0);
    let pause = |ms: u64, stop: &AtomicBool| {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20));
        }
    };
    loop {
        pause(1500 + rng.below(3000), &stop);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let victim = &servers[rng.below(servers.len() as u64) as usize];
        let mut server = victim.lock().unwrap_or_else(|e| e.into_inner());
        server.kill();
        kills += 1;
        // Sleep with the lock held: nobody else uses a killed server.
        pause(300 + rng.below(1700), &AtomicBool::new(false));
        if let Err(e) = server.start() {
            eprintln!("soak: {e}");
            failed += 1;
        }
    }
    (kills, failed)
}

/// Reads `/proc/self/limits` for the soft limit on open files, where there is one.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The dnsd binary to soak: `--dnsd`, `$DNSD_BIN`, or the release build.
fn dnsd_bin(args: &Args) -> PathBuf {
    if let Some(path) = &args.dnsd {
        return path.clone();
    }
    if let Some(path) = std::env::var_os("DNSD_BIN") {
        return path.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release").join("dnsd")
}

/// What the local server's log directory holds: `ID.log` replies per id, the number of
/// records, and problems with their shape or with files that should not be there.
struct LogCheck {
    replies: HashMap<String, HashMap<String, u64>>,
    records: u64,
    mapping_lines: u64,
    problems: Vec<String>,
}

/// Reads every `clients/ID.log` as records of three lines (request, reply, blank) and counts
/// `mapping.log`'s lines.
fn check_logs(dir: &Path, ids: &[String]) -> Result<LogCheck, String> {
    let mut check = LogCheck {
        replies: HashMap::new(),
        records: 0,
        mapping_lines: 0,
        problems: Vec::new(),
    };
    let list = |dir: &Path| std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()));
    // mapping.log beside the clients' folder; the client logs in it.
    for entry in list(dir)?.chain(list(&dir.join("clients"))?) {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_dir() {
            continue;
        }
        let file = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read(entry.path()).map_err(|e| format!("{file}: {e}"))?;
        let text = String::from_utf8_lossy(&text);
        if file == "mapping.log" {
            for line in text.lines() {
                check.mapping_lines += 1;
                // `NAME ADDR learned=TIME ttl=SECS`.
                let words: Vec<&str> = line.split(' ').collect();
                if words.len() != 4 || words[1].parse::<IpAddr>().is_err() {
                    check
                        .problems
                        .push(format!("mapping.log: bad line {line:?}"));
                }
            }
            continue;
        }
        let Some(id) = file
            .strip_suffix(".log")
            .filter(|id| ids.iter().any(|i| i == id))
        else {
            check.problems.push(format!("unexpected file {file}"));
            continue;
        };
        if !text.is_empty() && !text.ends_with("\n\n") {
            check
                .problems
                .push(format!("{file}: does not end with a whole record"));
        }
        let lines: Vec<&str> = text.lines().collect();
        let counts = check.replies.entry(id.to_owned()).or_default();
        for (i, record) in lines.chunks(3).enumerate() {
            match record {
                [_, reply, ""] if reply.starts_with("0X") => {
                    *counts.entry((*reply).to_owned()).or_default() += 1;
                    check.records += 1;
                }
                _ => check.problems.push(format!(
                    "{file}: record {} is not request, reply, blank: {record:?}",
                    i + 1
                )),
            }
        }
    }
    Ok(check)
}

/// Sets the servers up, runs the clients and the chaos, checks and reports. `Ok(true)`
/// when the run is clean.
fn run(args: &Args) -> Result<bool, String> {
    let bin = dnsd_bin(args);
    if !bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release` (or give --dnsd)",
            bin.display()
        ));
    }
    if let Some(limit) = open_files_limit() {
        let needed = args.clients as u64 + 200;
        if limit < needed {
            eprintln!("soak: warning: open files limit {limit} < {needed}: raise `ulimit -n`");
        }
    }
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    let work = tempfile::Builder::new()
        .prefix("dnsd-soak-")
        .tempdir()
        .map_err(|e| format!("cannot make a work directory: {e}"))?;
    let logs = work.path().join("logs");
    let workload = Arc::new(Workload::new(&zones)?);

    // The TLD servers and the root on free ports, each read back from its `listening on`
    // line and kept across restarts, so the root table and the local server's --root
    // stay right.
    let mut servers = Vec::new();
    let mut table = String::new();
    for tld in ["com", "gov", "org"] {
        let zone = zones.join(format!("{tld}.dat"));
        let args = vec![
            "tld".into(),
            tld.into(),
            zone.display().to_string(),
            "--port".into(),
            "0".into(),
        ];
        let mut server = Server::new(tld, &bin, args, work.path());
        let addr = server.start()?;
        table.push_str(&format!("{tld} 127.0.0.1 {}\n", addr.port()));
        servers.push(server);
    }
    let table_path = work.path().join("root.dat");
    std::fs::write(&table_path, table).map_err(|e| format!("root.dat: {e}"))?;
    let root_args = vec![
        "root".into(),
        table_path.display().to_string(),
        "--port".into(),
        "0".into(),
        "--upstream-timeout".into(),
        "1".into(),
    ];
    let mut root = Server::new("root", &bin, root_args, work.path());
    let root_addr = root.start()?;
    servers.push(root);
    // Learned mappings expire after 2 s, so names keep going up to the hierarchy.
    let local_args = vec![
        "local".into(),
        "--port".into(),
        "0".into(),
        "--root".into(),
        root_addr.to_string(),
        "--cache".into(),
        zones.join("default.dat").display().to_string(),
        "--log-dir".into(),
        logs.display().to_string(),
        "--ttl".into(),
        "2".into(),
        "--upstream-timeout".into(),
        "1".into(),
    ];
    let mut local = Server::new("local", &bin, local_args, work.path());
    let local_addr = local.start()?;

    eprintln!(
        "soak: {} s, {} clients over {} ids, local {local_addr}, work dir {}",
        args.seconds,
        args.clients,
        args.ids,
        work.path().display()
    );
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ids: Vec<String> = (0..args.ids.max(1))
        .map(|i| format!("soak-{i:02}"))
        .collect();
    let mut clients = Vec::new();
    for n in 0..args.clients {
        let (id, work, stats, stop) = (
            ids[n % ids.len()].clone(),
            workload.clone(),
            stats.clone(),
            stop.clone(),
        );
        let think = args.think_ms;
        let handle = thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                (
                    id.clone(),
                    client(n, id, local_addr, work, stats, stop, think),
                )
            })
            .map_err(|e| format!("cannot start client thread {n}: {e}"))?;
        clients.push(handle);
    }
    let servers = Arc::new(servers.into_iter().map(Mutex::new).collect::<Vec<_>>());
    let chaos_thread = {
        let (servers, stop) = (servers.clone(), stop.clone());
        thread::spawn(move || chaos(servers, stop))
    };

    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let mut received: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for handle in clients {
        let (id, counts) = handle.join().map_err(|_| "a client thread panicked")?;
        let merged = received.entry(id).or_default();
        for (reply, n) in counts {
            *merged.entry(reply).or_default() += n;
        }
    }
    let (kills, failed_restarts) = chaos_thread
        .join()
        .map_err(|_| "the chaos thread panicked")?;
    let local_exit = local.terminate();
    for server in servers.iter() {
        server.lock().unwrap_or_else(|e| e.into_inner()).kill();
    }

    let logs_seen = check_logs(&logs, &ids)?;
    let replies: u64 = received.values().flat_map(|m| m.values()).sum();
    let resolved: u64 = received
        .values()
        .flat_map(|m| m.iter())
        .filter(|(r, _)| r.starts_with("0X01,"))
        .map(|(_, n)| n)
        .sum();
    // Per id, the replies in ID.log against the replies received: missing ones were
    // given but not logged, extra ones logged but never received.
    let (mut missing, mut extra) = (0u64, 0u64);
    for id in &ids {
        let empty = HashMap::new();
        let got = received.get(id).unwrap_or(&empty);
        let logged = logs_seen.replies.get(id).unwrap_or(&empty);
        for (reply, &n) in got {
            missing += n.saturating_sub(*logged.get(reply).unwrap_or(&0));
        }
        for (reply, &n) in logged {
            extra += n.saturating_sub(*got.get(reply).unwrap_or(&0));
        }
    }

    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let sent = get(&stats.sent);
    println!();
    println!(
        "dnsd soak: {} s, {} clients, {} ids",
        args.seconds,
        args.clients,
        ids.len()
    );
    println!("  servers killed and restarted   {kills:>10}");
    println!("  failed restarts                {failed_restarts:>10}");
    println!(
        "  client sessions                {:>10}",
        get(&stats.sessions)
    );
    println!(
        "  connections refused            {:>10}",
        get(&stats.refused)
    );
    println!("  connections told busy          {:>10}", get(&stats.busy));
    println!(
        "  invalid ids rejected           {:>10}",
        get(&stats.bad_ids)
    );
    println!("  queries sent                   {sent:>10}");
    println!("  replies received               {replies:>10}");
    for (i, (code, what)) in CODES.iter().enumerate() {
        println!("    {code} {what:<24} {:>10}", get(&stats.by_code[i]));
    }
    println!(
        "  unanswered queries             {:>10}",
        get(&stats.unanswered)
    );
    println!(
        "  malformed replies              {:>10}",
        get(&stats.malformed)
    );
    println!("  wrong replies                  {:>10}", get(&stats.wrong));
    println!("  ID.log records                 {:>10}", logs_seen.records);
    println!("    replies missing from logs    {missing:>10}");
    println!("    logged but not received      {extra:>10}");
    println!(
        "  mapping.log lines              {:>10}",
        logs_seen.mapping_lines
    );
    println!("    0X01 replies                 {resolved:>10}");
    let exit = local_exit.map_or("none (killed)".to_owned(), |c| c.to_string());
    println!("  local exit code on SIGTERM     {exit:>10}");

    let mut violations = Vec::new();
    let mut require = |ok: bool, what: &str| {
        if !ok {
            violations.push(what.to_owned());
        }
    };
    require(sent > 0, "no query was sent");
    require(get(&stats.unanswered) == 0, "queries went unanswered");
    require(get(&stats.malformed) == 0, "malformed replies");
    require(get(&stats.wrong) == 0, "wrong replies");
    require(
        replies + get(&stats.unanswered) == sent,
        "sent != replies + unanswered",
    );
    require(get(&stats.refused) == 0, "connections refused");
    require(failed_restarts == 0, "a server failed to restart");
    require(
        missing == 0 && extra == 0,
        "ID.log does not match the replies",
    );
    require(logs_seen.records == replies, "ID.log records != replies");
    require(
        logs_seen.mapping_lines == resolved,
        "mapping.log lines != 0X01 replies",
    );
    require(logs_seen.problems.is_empty(), "bad log files");
    require(local_exit == Some(0), "local did not exit 0 on SIGTERM");
    let problems = stats.problems.lock().unwrap_or_else(|e| e.into_inner());
    for p in problems.iter().chain(logs_seen.problems.iter().take(20)) {
        println!("  problem: {p}");
    }
    if violations.is_empty() {
        println!("result: PASS");
        if args.keep {
            println!("work dir kept: {}", work.keep().display());
        }
        Ok(true)
    } else {
        println!("result: FAIL: {}", violations.join("; "));
        println!("work dir kept: {}", work.keep().display());
        Ok(false)
    }
}
