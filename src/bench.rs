//! `dnsd bench`: a closed-loop load generator.
//!
//! Each connection is one thread that sends a query, waits for its reply, notes how long
//! it took and sends the next. The loop is closed: the figure it reports is what the
//! server sustains with that many clients each waiting for its answer, which is how the
//! hierarchy is used. Names come from a list (cycled) or from a pattern whose `{n}` is
//! replaced by a counter shared by all connections, so that every name is unique (a miss
//! at the local server).
//!
//! - [`measure`] runs a [`Workload`] and returns a [`Report`]; it is the library entry
//!   point (the smoke test calls it).
//! - [`Ceiling`] is a server that answers every line at once with a fixed reply and does
//!   nothing else: measured with the same workload, it shows the most this machine's
//!   loopback and this load generator allow.
//! - [`run`] is the command: progress line, `--ceiling`, the table or `--json`.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::parse_secs;
use crate::connection::{Connection, FrameError, FrameLimits};
use crate::error::Error;
use crate::protocol::{Code, Mode, GREETING, QUIT};

/// The name asked for when neither `--names` nor `--pattern` is given.
pub const DEFAULT_NAME: &str = "www.google.com";
/// How long a run lasts when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(5);
/// The longest reply the original's framing reads at once (its `recv(1024)`).
const LEGACY_READ: usize = 1024;
/// How long a connection thread waits before trying again after a failed connect, so
/// that a server that is down does not turn the run into a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The server to measure.
    #[arg(long, default_value = "127.0.0.1:5352", value_name = "HOST:PORT")]
    pub server: String,
    /// Connections, each its own thread with one query in flight.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// How long to run, in seconds [default: 5, unless --requests is given]; with
    /// --requests too, the run stops at whichever comes first.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// How many queries to send in all (over all connections).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// The number of the first query (its tag, its `{n}`, its place in --names), so
    /// that successive runs can ask different names.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub first: u64,
    /// Resolution mode of every query.
    #[arg(long, default_value = "R", value_name = "R|I", value_parser = parse_mode)]
    pub mode: Mode,
    /// A file of names, one per line, asked in turn (cycled).
    #[arg(long, value_name = "FILE", conflicts_with = "pattern")]
    pub names: Option<PathBuf>,
    /// The name to ask; each `{n}` in it is replaced by the query's number, unique over
    /// all connections (e.g. `www.nx{n}.com` for names that do not exist).
    #[arg(long, default_value = DEFAULT_NAME, value_name = "PATTERN")]
    pub pattern: String,
    /// The id each connection sends first, as a client of `dnsd local` does.
    #[arg(
        long,
        default_value = "bench",
        value_name = "ID",
        conflicts_with = "no_id"
    )]
    pub client_id: String,
    /// Send no id line: for measuring a root or TLD server directly.
    #[arg(long)]
    pub no_id: bool,
    /// Speak the original's framing (no line ends, one message per write, one read per
    /// reply), to measure the original Python servers.
    #[arg(long)]
    pub legacy: bool,
    /// A reply must arrive within this many seconds, or the query counts as an error
    /// (and the connection is opened again).
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Duration,
    /// Also measure, with the same workload, an in-process server that answers every
    /// line at once with a fixed reply, and report the server's figures as a share of it.
    #[arg(long)]
    pub ceiling: bool,
    /// With --ceiling: a chain of this many do-nothing servers, each passing every line
    /// on to the next (3 compares a miss at the local server, which crosses local, root
    /// and a TLD server, with the most such a chain allows).
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=8))]
    pub ceiling_hops: u32,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse().map_err(|_| format!("{s:?}: the mode is R or I"))
}

/// Where the names of the queries come from.
#[derive(Clone, Debug)]
pub enum Names {
    /// These names, in turn, cycled.
    List(Vec<String>),
    /// A name in which each `{n}` is replaced by the query's number.
    Pattern(String),
}

impl Names {
    /// Appends the name of query number `n` to `out`.
    fn write(&self, n: u64, out: &mut Vec<u8>) {
        match self {
            Names::List(names) => {
                out.extend_from_slice(names[(n % names.len() as u64) as usize].as_bytes())
            }
            Names::Pattern(pattern) => {
                let mut pieces = pattern.split("{n}");
                out.extend_from_slice(pieces.next().unwrap_or("").as_bytes());
                for piece in pieces {
                    let _ = write!(out, "{n}");
                    out.extend_from_slice(piece.as_bytes());
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Names::List(names) => format!("{} names from a list", names.len()),
            Names::Pattern(pattern) => pattern.clone(),
        }
    }
}

/// What to send, where, and for how long.
#[derive(Clone, Debug)]
pub struct Workload {
    pub server: SocketAddr,
    pub connections: usize,
    /// Stop after this long (measured from when every connection is open).
    pub duration: Option<Duration>,
    /// Stop after this many queries in all. With neither limit, the run never ends.
    pub requests: Option<u64>,
    /// The number of the first query: its tag, its `{n}`, its place in a list of names.
    pub first: u64,
    pub mode: Mode,
    pub names: Names,
    /// The id line each connection sends first (and the greeting it expects back).
    pub client_id: Option<String>,
    /// The original's framing: no line end, one message per write, one read per reply.
    pub legacy: bool,
    /// How long a reply (or a connect) may take before it counts as an error.
    pub timeout: Duration,
}

impl Workload {
    /// One connection for 5 seconds, asking `www.google.com` in mode R as client `bench`.
    pub fn new(server: SocketAddr) -> Workload {
        Workload {
            server,
            connections: 1,
            duration: Some(DEFAULT_DURATION),
            requests: None,
            first: 0,
            mode: Mode::Recursive,
            names: Names::Pattern(DEFAULT_NAME.to_owned()),
            client_id: Some("bench".to_owned()),
            legacy: false,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Queries that got no usable reply, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Errors {
    /// The connection (or its id line and greeting) failed.
    pub connect: u64,
    /// No reply within the timeout.
    pub timeout: u64,
    /// The server closed the connection, or sending or reading failed.
    pub closed: u64,
    /// A reply that does not start with a known code.
    pub unparsable: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.closed + self.unparsable
    }

    fn add(&mut self, other: &Errors) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.closed += other.closed;
        self.unparsable += other.unparsable;
    }
}

/// Latency percentiles of the answered queries (nearest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Latency {
    /// The figures with their names, for printing.
    pub fn rows(&self) -> [(&'static str, Duration); 5] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p999),
            ("max", self.max),
        ]
    }

    /// From latencies in microseconds, which it sorts.
    fn from_micros(micros: &mut [u32]) -> Latency {
        micros.sort_unstable();
        let at = |p: f64| -> Duration {
            if micros.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((p * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            Duration::from_micros(micros[rank - 1] as u64)
        };
        Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

/// The outcome of one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Queries answered with a reply that carries a known code.
    pub queries: u64,
    pub errors: Errors,
    /// Connections opened again after one failed or was closed.
    pub reconnects: u64,
    /// From the moment every connection was open until the last reply.
    pub elapsed: Duration,
    pub latency: Latency,
    /// Replies by code, in the order of [`Code::ALL`].
    pub codes: [u64; 6],
}

impl Report {
    pub fn qps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.queries as f64 / secs
        } else {
            0.0
        }
    }

    /// How many replies carried `code`.
    pub fn code(&self, code: Code) -> u64 {
        self.codes[code_index(code)]
    }
}

fn code_index(code: Code) -> usize {
    Code::ALL.iter().position(|&c| c == code).unwrap_or(0)
}

/// What one connection thread counted.
#[derive(Default)]
struct Tally {
    micros: Vec<u32>,
    codes: [u64; 6],
    errors: Errors,
    reconnects: u64,
}

/// A progress sample, handed to the callback of [`measure_reporting`] about four times
/// a second.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    pub elapsed: Duration,
    /// Queries sent so far (answered or not).
    pub sent: u64,
}

/// Runs `workload` and reports what it measured.
pub fn measure(workload: &Workload) -> Report {
    measure_reporting(workload, |_| {})
}

/// Runs `workload`, calling `on_tick` about four times a second while it runs.
pub fn measure_reporting(workload: &Workload, mut on_tick: impl FnMut(Tick)) -> Report {
    let connections = workload.connections.max(1);
    // The next query's number: every connection takes one before each query, so the
    // numbers (and the `{n}` names) are unique, and `--requests` is a limit on them.
    let next = AtomicU64::new(workload.first);
    // Every connection opens (and greets) before the clock starts. The first thread past
    // the start line starts it for all: the connections' deadlines and the run's elapsed
    // time count from one instant, so a timed run never reports less than its duration
    // (and no more queries per second than were made) however the threads are scheduled.
    let start_line = Barrier::new(connections + 1);
    let clock = OnceLock::new();
    thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|_| scope.spawn(|| connection_loop(workload, &next, &start_line, &clock)))
            .collect();
        start_line.wait();
        let start = *clock.get_or_init(Instant::now);
        let mut last_tick = start;
        while !workers.iter().all(|w| w.is_finished()) {
            thread::sleep(Duration::from_millis(20));
            if last_tick.elapsed() >= Duration::from_millis(250) {
                last_tick = Instant::now();
                let sent = next.load(Ordering::Relaxed) - workload.first;
                let sent = workload.requests.map_or(sent, |r| sent.min(r));
                on_tick(Tick {
                    elapsed: start.elapsed(),
                    sent,
                });
            }
        }
        let elapsed = start.elapsed();
        let mut report = Report {
            elapsed,
            ..Report::default()
        };
        let mut micros = Vec::new();
        for worker in workers {
            // A connection thread does not panic on anything a server does; if it did,
            // its counts are lost rather than the whole run.
            let Ok(tally) = worker.join() else { continue };
            micros.extend_from_slice(&tally.micros);
            for (sum, n) in report.codes.iter_mut().zip(tally.codes) {
                *sum += n;
            }
            report.errors.add(&tally.errors);
            report.reconnects += tally.reconnects;
        }
        report.queries = report.codes.iter().sum();
        report.latency = Latency::from_micros(&mut micros);
        report
    })
}

/// One connection's closed loop: take a number, send the query, wait for the reply.
fn connection_loop(
    workload: &Workload,
    next: &AtomicU64,
    start_line: &Barrier,
    clock: &OnceLock<Instant>,
) -> Tally {
    let mut tally = Tally {
        micros: Vec::with_capacity(1 << 16),
        ..Tally::default()
    };
    // A failure here is not counted: the loop tries again, and counts that.
    let mut wire = Wire::open(workload).ok();
    let mut ever_open = wire.is_some();
    start_line.wait();
    let start = *clock.get_or_init(Instant::now);
    let deadline = workload.duration.map(|d| start + d);
    let mut line = Vec::with_capacity(128);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        if workload.requests.is_some_and(|r| n - workload.first >= r) {
            break;
        }
        if wire.is_none() {
            if ever_open {
                tally.reconnects += 1;
            }
            match Wire::open(workload) {
                Ok(w) => {
                    wire = Some(w);
                    ever_open = true;
                }
                Err(_) => {
                    tally.errors.connect += 1;
                    thread::sleep(RECONNECT_PAUSE);
                    continue;
                }
            }
        }
        let Some(w) = wire.as_mut() else { continue };
        line.clear();
        let _ = write!(line, "{n}, ");
        workload.names.write(n, &mut line);
        let _ = write!(line, ", {}", workload.mode);
        let sent = Instant::now();
        match w.ask(&line) {
            Ok(code) => {
                let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                tally.micros.push(micros);
                tally.codes[code_index(code)] += 1;
            }
            Err(failure) => {
                match failure {
                    Failure::Timeout => tally.errors.timeout += 1,
                    Failure::Closed => tally.errors.closed += 1,
                    Failure::Unparsable => tally.errors.unparsable += 1,
                }
                // After a timeout the late reply would be taken for the next one's: start
                // over on a fresh connection, as after any other failure.
                wire = None;
            }
        }
    }
    if let Some(mut w) = wire {
        if workload.client_id.is_some() {
            w.quit();
        }
    }
    tally
}

/// Why one query got no usable reply.
enum Failure {
    Timeout,
    Closed,
    Unparsable,
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout,
            _ => Failure::Closed,
        }
    }
}

/// One client connection, in either framing.
enum Wire {
    /// `\n`-terminated lines, through the same framing code the servers use.
    Lines(Connection),
    /// The original's: a message is what one write sends, a reply what one read gets.
    Legacy(TcpStream, Box<[u8; LEGACY_READ]>),
}

impl Wire {
    /// Connects, and sends the id line and reads the greeting if the workload has an id.
    fn open(workload: &Workload) -> Result<Wire, Failure> {
        let stream = TcpStream::connect_timeout(&workload.server, workload.timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(workload.timeout))?;
        let mut wire = if workload.legacy {
            stream.set_read_timeout(Some(workload.timeout))?;
            Wire::Legacy(stream, Box::new([0; LEGACY_READ]))
        } else {
            let limits = FrameLimits {
                max_line: 4096,
                idle_timeout: workload.timeout,
                legacy: false,
            };
            Wire::Lines(Connection::new(stream, limits))
        };
        if let Some(id) = &workload.client_id {
            let greeting = wire.exchange(id.as_bytes())?;
            if greeting.trim_ascii() != GREETING.as_bytes() {
                return Err(Failure::Unparsable);
            }
        }
        Ok(wire)
    }

    /// Sends one message and returns the reply's bytes (without a line end).
    fn exchange(&mut self, message: &[u8]) -> Result<&[u8], Failure> {
        match self {
            Wire::Lines(conn) => {
                conn.write_line(message)?;
                match conn.read_line() {
                    Ok(Some(reply)) => Ok(reply),
                    Ok(None) | Err(FrameError::Truncated) => Err(Failure::Closed),
                    Err(FrameError::Timeout) => Err(Failure::Timeout),
                    Err(FrameError::TooLong(_)) => Err(Failure::Unparsable),
                    Err(FrameError::Io(e)) => Err(e.into()),
                }
            }
            Wire::Legacy(stream, buf) => {
                stream.write_all(message)?;
                match stream.read(&mut buf[..]) {
                    Ok(0) => Err(Failure::Closed),
                    Ok(n) => Ok(&buf[..n]),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Sends one query and returns the code of its reply.
    fn ask(&mut self, query: &[u8]) -> Result<Code, Failure> {
        let reply = self.exchange(query)?;
        reply_code(reply).ok_or(Failure::Unparsable)
    }

    /// Ends a client session politely (the original's local server expects it).
    fn quit(&mut self) {
        let _ = match self {
            Wire::Lines(conn) => conn.write_line(QUIT.as_bytes()),
            Wire::Legacy(stream, _) => stream.write_all(QUIT.as_bytes()),
        };
    }
}

/// The code a reply starts with: `0X00, server, text` gives `0X00`. Only the code is
/// looked at (the original's replies carry stray line ends in their text).
fn reply_code(reply: &[u8]) -> Option<Code> {
    let first = reply.split(|&b| b == b',').next()?;
    std::str::from_utf8(first).ok()?.trim().parse().ok()
}

/// The reply of the [`Ceiling`] server to every line.
pub const CEILING_REPLY: &str = "0X00, ceiling, 127.0.0.1";

/// A server that answers each line at once with [`CEILING_REPLY`] and does nothing else:
/// a thread per connection, reading whatever has arrived and writing one reply per line
/// in it. Measured with the same workload as a real server, it gives the ceiling that
/// the machine's loopback and the load generator set. Stopped when dropped.
pub struct Ceiling {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
    /// The rest of a chain (see [`Ceiling::chain`]), stopped with this one.
    next: Option<Box<Ceiling>>,
}

impl Ceiling {
    /// Listens on a free loopback port. With `legacy`, each read is one message (the
    /// original's framing) and replies carry no line end. With `greet`, the first
    /// message of each connection is answered with the local server's greeting, as an id
    /// line would be.
    pub fn start(legacy: bool, greet: bool) -> io::Result<Ceiling> {
        Ceiling::stage(legacy, greet, None)
    }

    /// A chain of `hops` such servers: each but the last passes every request line on to
    /// the next (over one connection per incoming connection) and returns its reply.
    /// Measured with a workload that crosses as many servers (a miss at the local server
    /// crosses three: local, root, TLD), it shows the most such a chain of
    /// thread-per-connection servers allows on this machine, before any work is done.
    pub fn chain(legacy: bool, greet: bool, hops: usize) -> io::Result<Ceiling> {
        let mut next: Option<Ceiling> = None;
        for hop in (0..hops.max(1)).rev() {
            let first = hop == 0;
            let mut stage = Ceiling::stage(
                legacy && first,
                greet && first,
                next.as_ref().map(|n| n.addr),
            )?;
            stage.next = next.map(Box::new);
            next = Some(stage);
        }
        next.ok_or_else(|| io::Error::other("no hop"))
    }

    fn stage(legacy: bool, greet: bool, upstream: Option<SocketAddr>) -> io::Result<Ceiling> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let acceptor = thread::Builder::new()
            .name("ceiling".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = thread::Builder::new()
                        .name("ceiling-conn".into())
                        .spawn(move || ceiling_connection(stream, legacy, greet, upstream));
                }
            })?;
        Ok(Ceiling {
            addr,
            stop,
            acceptor: Some(acceptor),
            next: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn ceiling_connection(
    mut stream: TcpStream,
    legacy: bool,
    greet: bool,
    upstream: Option<SocketAddr>,
) {
    let _ = stream.set_nodelay(true);
    // A connection left open by its client does not keep the thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut relay = match upstream.map(Relay::connect).transpose() {
        Ok(relay) => relay,
        Err(_) => return,
    };
    let end = if legacy { "" } else { "\n" };
    let reply = format!("{CEILING_REPLY}{end}");
    let greeting = format!("{GREETING}{end}");
    let mut greeted = !greet;
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let messages: Vec<&[u8]> = if legacy {
            vec![&buf[..n]]
        } else {
            buf[..n]
                .split(|&b| b == b'\n')
                .filter(|m| !m.is_empty())
                .collect()
        };
        out.clear();
        for message in messages {
            if !greeted {
                greeted = true;
                out.extend_from_slice(greeting.as_bytes());
                continue;
            }
            match &mut relay {
                None => out.extend_from_slice(reply.as_bytes()),
                Some(relay) => match relay.ask(message) {
                    Ok(line) => {
                        out.extend_from_slice(line);
                        out.extend_from_slice(end.as_bytes());
                    }
                    Err(_) => return,
                },
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// A chain stage's connection to the next stage.
struct Relay {
    stream: TcpStream,
    reader: io::BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Relay {
    fn connect(addr: SocketAddr) -> io::Result<Relay> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let reader = io::BufReader::new(stream.try_clone()?);
        Ok(Relay {
            stream,
            reader,
            line: Vec::with_capacity(128),
        })
    }

    /// Passes one message on as a line and returns the reply line, without its `\n`.
    fn ask(&mut self, message: &[u8]) -> io::Result<&[u8]> {
        use std::io::BufRead;
        self.line.clear();
        self.line.extend_from_slice(message);
        self.line.push(b'\n');
        self.stream.write_all(&self.line)?;
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(self.line.strip_suffix(b"\n").unwrap_or(&self.line))
    }
}

impl BenchArgs {
    /// The validated workload these flags describe.
    pub fn workload(&self) -> Result<Workload, Error> {
        let server = self
            .server
            .to_socket_addrs()
            .map_err(|e| Error::Usage(format!("--server {}: {e}", self.server)))?
            .next()
            .ok_or_else(|| Error::Usage(format!("--server {}: no address", self.server)))?;
        let names = match &self.names {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
                let list: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                if list.is_empty() {
                    return Err(Error::Usage(format!("{}: no names in it", path.display())));
                }
                Names::List(list)
            }
            None => Names::Pattern(self.pattern.clone()),
        };
        let duration = match (self.duration, self.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        Ok(Workload {
            server,
            connections: self.connections as usize,
            duration,
            requests: self.requests,
            first: self.first,
            mode: self.mode,
            names,
            client_id: (!self.no_id).then(|| self.client_id.clone()),
            legacy: self.legacy,
            timeout: self.timeout,
        })
    }
}

/// `dnsd bench`: measures the server (and, with `--ceiling`, the fixed-reply server),
/// then prints a table or one JSON object.
pub fn run(args: BenchArgs) -> Result<(), Error> {
    let workload = args.workload()?;
    let report = measure_with_progress(&workload, "");
    let ceiling = if args.ceiling {
        let server = Ceiling::chain(
            workload.legacy,
            workload.client_id.is_some(),
            args.ceiling_hops as usize,
        )
        .map_err(|e| Error::io("cannot start the ceiling server", e))?;
        let same = Workload {
            server: server.addr(),
            ..workload.clone()
        };
        Some(measure_with_progress(&same, "ceiling: "))
    } else {
        None
    };
    let text = if args.json {
        json(&workload, &report, ceiling.as_ref(), args.ceiling_hops)
    } else {
        table(&workload, &report, ceiling.as_ref(), args.ceiling_hops)
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("cannot write the output", e))?;
    if report.queries == 0 {
        return Err(Error::Runtime(format!(
            "{}: no query was answered",
            workload.server
        )));
    }
    Ok(())
}

/// [`measure`], with a live progress line on stderr if it is a terminal.
fn measure_with_progress(workload: &Workload, label: &str) -> Report {
    let live = io::stderr().is_terminal();
    let mut last = (Duration::ZERO, 0u64);
    let report = measure_reporting(workload, |tick| {
        if !live {
            return;
        }
        let span = (tick.elapsed - last.0).as_secs_f64();
        let rate = if span > 0.0 {
            (tick.sent - last.1) as f64 / span
        } else {
            0.0
        };
        last = (tick.elapsed, tick.sent);
        eprint!(
            "\r\x1b[K{label}{:5.1} s  {:>10} queries  {:>9.0} q/s",
            tick.elapsed.as_secs_f64(),
            tick.sent,
            rate
        );
    });
    if live {
        eprint!("\r\x1b[K");
    }
    report
}

fn micros(d: Duration) -> u128 {
    d.as_micros()
}

/// The human-readable result: one column for the server, one for the ceiling.
/// `hops` is the ceiling's length (see [`Ceiling::chain`]).
pub fn table(workload: &Workload, report: &Report, ceiling: Option<&Report>, hops: u32) -> String {
    let mut out = String::new();
    let limit = match (workload.duration, workload.requests) {
        (Some(d), Some(r)) => format!("{:.1} s or {r} queries", d.as_secs_f64()),
        (Some(d), None) => format!("{:.1} s", d.as_secs_f64()),
        (None, Some(r)) => format!("{r} queries"),
        (None, None) => "no limit".to_owned(),
    };
    let _ = writeln!(
        out,
        "dnsd bench: {}, {} connection{}, {limit}, mode {}, {}{}",
        workload.server,
        workload.connections,
        if workload.connections == 1 { "" } else { "s" },
        workload.mode,
        workload.names.describe(),
        if workload.legacy {
            ", legacy framing"
        } else {
            ""
        },
    );
    let mut row = |label: &str, ours: String, theirs: Option<String>| {
        let _ = match theirs {
            Some(t) => writeln!(out, "  {label:<14}{ours:>14}{t:>14}"),
            None => writeln!(out, "  {label:<14}{ours:>14}"),
        };
    };
    let ceiling_name = if hops > 1 {
        format!("{hops}-hop chain")
    } else {
        "ceiling".to_owned()
    };
    row("", "server".into(), ceiling.map(|_| ceiling_name.clone()));
    row(
        "queries",
        report.queries.to_string(),
        ceiling.map(|c| c.queries.to_string()),
    );
    row(
        "errors",
        report.errors.total().to_string(),
        ceiling.map(|c| c.errors.total().to_string()),
    );
    row(
        "queries/s",
        format!("{:.0}", report.qps()),
        ceiling.map(|c| format!("{:.0}", c.qps())),
    );
    let ceiling_rows = ceiling.map(|c| c.latency.rows());
    for (i, (name, ours)) in report.latency.rows().into_iter().enumerate() {
        row(
            &format!("latency {name}"),
            format!("{} µs", micros(ours)),
            ceiling_rows.map(|c| format!("{} µs", micros(c[i].1))),
        );
    }
    let e = report.errors;
    if e.total() > 0 || report.reconnects > 0 {
        let _ = writeln!(
            out,
            "  errors: {} connect, {} timeout, {} closed, {} unparsable; {} reconnects",
            e.connect, e.timeout, e.closed, e.unparsable, report.reconnects
        );
    }
    let codes: Vec<String> = Code::ALL
        .iter()
        .map(|&c| format!("{c} {}", report.code(c)))
        .collect();
    let _ = writeln!(out, "  codes: {}", codes.join("  "));
    if let Some(c) = ceiling {
        let _ = writeln!(
            out,
            "  server/{ceiling_name}: {:.0}% of the queries/s; p99 {:.1}x the {ceiling_name}'s",
            share(report.qps(), c.qps()) * 100.0,
            share(
                report.latency.p99.as_secs_f64(),
                c.latency.p99.as_secs_f64()
            ),
        );
    }
    out
}

fn share(ours: f64, theirs: f64) -> f64 {
    if theirs > 0.0 {
        ours / theirs
    } else {
        0.0
    }
}

/// The result as one JSON object: the workload, the figures, and with `--ceiling` the
/// ceiling's figures under `"ceiling"`, its length (`"ceiling_hops"`) and the server's
/// share of its queries per second.
pub fn json(workload: &Workload, report: &Report, ceiling: Option<&Report>, hops: u32) -> String {
    let mut out = String::from("{");
    let _ = write!(
        out,
        "\"server\":{},\"connections\":{},\"mode\":\"{}\",\"names\":{},\"legacy\":{},",
        json_string(&workload.server.to_string()),
        workload.connections,
        workload.mode,
        json_string(&workload.names.describe()),
        workload.legacy,
    );
    json_figures(&mut out, report);
    if let Some(c) = ceiling {
        out.push_str(",\"ceiling\":{");
        json_figures(&mut out, c);
        let _ = write!(
            out,
            "}},\"ceiling_hops\":{hops},\"ceiling_share\":{:.4}",
            share(report.qps(), c.qps())
        );
    }
    out.push_str("}\n");
    out
}

fn json_figures(out: &mut String, r: &Report) {
    let l = &r.latency;
    let _ = write!(
        out,
        "\"elapsed_s\":{:.3},\"queries\":{},\"errors\":{},\"connect_errors\":{},\
         \"timeouts\":{},\"closed\":{},\"unparsable\":{},\"reconnects\":{},\"qps\":{:.1},\
         \"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"codes\":{{",
        r.elapsed.as_secs_f64(),
        r.queries,
        r.errors.total(),
        r.errors.connect,
        r.errors.timeout,
        r.errors.closed,
        r.errors.unparsable,
        r.reconnects,
        r.qps(),
        micros(l.p50),
        micros(l.p90),
        micros(l.p99),
        micros(l.p999),
        micros(l.max),
    );
    for (i, code) in Code::ALL.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(out, "{comma}\"{code}\":{}", r.codes[i]);
    }
    out.push('}');
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timed run reports at least its duration: the connections' deadlines and the
    /// run's clock start at one instant (each thread once took its own, and under load
    /// the report came out shorter than the run, its rate higher than measured).
    #[test]
    fn timed_run_lasts_at_least_its_duration() {
        let ceiling = Ceiling::start(false, true).unwrap();
        let duration = Duration::from_millis(50);
        for _ in 0..5 {
            let mut w = Workload::new(ceiling.addr());
            w.connections = 8;
            w.duration = Some(duration);
            let report = measure(&w);
            assert!(report.queries > 0);
            assert!(report.elapsed >= duration, "{:?}", report.elapsed);
        }
    }

    #[test]
    fn pattern_numbers_every_placeholder() {
        let mut out = Vec::new();
        Names::Pattern("www.nx{n}.com".into()).write(42, &mut out);
        assert_eq!(out, b"www.nx42.com");
        out.clear();
        Names::Pattern("a{n}b{n}".into()).write(7, &mut out);
        assert_eq!(out, b"a7b7");
        out.clear();
        Names::List(vec!["a.com".into(), "b.com".into()]).write(3, &mut out);
        assert_eq!(out, b"b.com");
    }

    #[test]
    fn reply_codes_of_both_framings() {
        assert_eq!(reply_code(b"0X00, local, 1.2.3.4"), Some(Code::Cached));
        assert_eq!(
            reply_code(b"0XFF, default_local, Host not found"),
            Some(Code::NotFound)
        );
        assert_eq!(
            reply_code(b"0X01, default_local, 1.2.3.4\n"),
            Some(Code::Resolved)
        );
        assert_eq!(reply_code(b"You are connected"), None);
        assert_eq!(reply_code(b""), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut micros: Vec<u32> = (1..=1000).rev().collect();
        let l = Latency::from_micros(&mut micros);
        assert_eq!(l.p50, Duration::from_micros(500));
        assert_eq!(l.p99, Duration::from_micros(990));
        assert_eq!(l.p999, Duration::from_micros(999));
        assert_eq!(l.max, Duration::from_micros(1000));
        assert_eq!(Latency::from_micros(&mut []), Latency::default());
    }

    #[test]
    fn json_escapes_strings() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn a_ceiling_chain_passes_every_line_to_its_last_hop() {
        let ceiling = Ceiling::chain(false, true, 3).unwrap();
        let mut workload = Workload::new(ceiling.addr());
        workload.connections = 2;
        workload.duration = None;
        workload.requests = Some(100);
        let report = measure(&workload);
        assert_eq!(report.queries, 100);
        assert_eq!(report.errors, Errors::default());
        assert_eq!(report.code(Code::Cached), 100);
    }

    #[test]
    fn ceiling_answers_lines_and_greets() {
        let ceiling = Ceiling::start(false, true).unwrap();
        let mut workload = Workload::new(ceiling.addr());
        workload.connections = 2;
        workload.duration = None;
        workload.requests = Some(100);
        workload.first = 1_000_000;
        let report = measure(&workload);
        assert_eq!(report.queries, 100);
        assert_eq!(report.errors, Errors::default());
        assert_eq!(report.code(Code::Cached), 100);
    }

    #[test]
    fn legacy_ceiling() {
        let ceiling = Ceiling::start(true, true).unwrap();
        let mut workload = Workload::new(ceiling.addr());
        workload.legacy = true;
        workload.duration = None;
        workload.requests = Some(50);
        let report = measure(&workload);
        assert_eq!(report.queries, 50);
        assert_eq!(report.errors.total(), 0);
    }

    #[test]
    fn a_server_that_is_down_counts_connect_errors() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut workload = Workload::new(addr);
        workload.duration = None;
        workload.requests = Some(3);
        let report = measure(&workload);
        assert_eq!(report.queries, 0);
        assert_eq!(report.errors.connect, 3);
    }
}
