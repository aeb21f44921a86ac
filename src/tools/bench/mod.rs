//! `dnsd bench`: a closed-loop load generator, and the report of its results.
//!
//! Each connection is one thread that sends a query, waits for its reply, notes how long
//! it took and sends the next. The loop is closed: the figure it reports is what the
//! server sustains with that many clients each waiting for its answer, which is how the
//! hierarchy is used. Names come from a list (cycled) or from a pattern whose `{n}` is
//! replaced by a counter shared by all connections, so that every name is unique (a miss
//! at the local server). With `--dns udp|tcp` ([`Workload::dns`]) each query is a DNS
//! message (type A, RD set in mode R) built by `dns::exchange::query_message`, and the
//! replies are counted by response code ([`Report::rcodes`]).
//!
//! - This module: what to measure ([`Workload`], [`Names`]), what was measured
//!   ([`Report`]), and the library entry points: [`measure`] (the smoke tests call it)
//!   and [`run`], the command (progress line, `--ceiling`, the table or `--json`).
//! - [`load`]: the connection threads of the closed loop.
//! - [`ceiling`]: [`Ceiling`], a server that answers every line at once with a fixed
//!   reply and does nothing else (or a chain of them): measured with the same workload,
//!   it shows the most this machine's loopback and this load generator allow.
//! - [`output`]: the table, and [`Results`], the typed JSON of `--json`.
//! - [`dnsperf`]: [`dnsperf::Dnsperf`], the text of a run of Debian's `dnsperf`, read
//!   back for the report (dnsd beside Unbound and NSD).
//! - [`report`]: `dnsd bench report` and `dnsd bench show`, which read those JSON results
//!   back (as `scripts/bench.sh` collects them) and write `BENCHMARKS.md`.

pub mod ceiling;
pub mod dnsperf;
pub mod load;
pub mod output;
pub mod report;

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::error::{ConfigError, Error};
use crate::line::message::{Code, Mode};

pub use ceiling::{Ceiling, CEILING_REPLY};
pub use load::{measure, measure_reporting, Tick};
pub use output::{Codes, Figures, Rcodes, Results};

/// The name asked for when neither `--names` nor `--pattern` is given.
pub const DEFAULT_NAME: &str = "www.google.com";
/// How long a run lasts when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(5);
/// How long a reply may take before the query counts as an error, unless `--timeout`
/// says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the names of the queries come from.
#[derive(Clone, Debug)]
pub enum Names {
    /// These names, in turn, cycled.
    List(Vec<String>),
    /// A name in which each `{n}` is replaced by the query's number.
    Pattern(String),
}

impl Names {
    /// The names of a file, one per line (blank lines skipped); an empty list is an error.
    pub fn load(path: &Path) -> Result<Names, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let list: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if list.is_empty() {
            return Err(ConfigError::NoNames {
                path: path.to_owned(),
            }
            .into());
        }
        Ok(Names::List(list))
    }

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

    /// A short description, for the table and the JSON.
    pub fn describe(&self) -> String {
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
    /// Ask DNS messages over this transport instead of lines (the id line, the mode's
    /// letter and legacy framing are then unused; mode R sets RD, mode I clears it).
    pub dns: Option<DnsTransport>,
}

/// The transport of a DNS run (`--dns udp|tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsTransport {
    /// One socket per connection, one datagram in flight; a reply lost is a timeout.
    Udp,
    /// One connection each, two-byte length prefixes (RFC 1035 4.2.2).
    Tcp,
}

impl DnsTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsTransport::Udp => "udp",
            DnsTransport::Tcp => "tcp",
        }
    }
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
            dns: None,
        }
    }
}

/// `dnsd bench`'s settings, validated: the workload, and what to do besides measuring.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub workload: Workload,
    /// Also measure a [`Ceiling`] chain of this many servers with the same workload.
    pub ceiling_hops: Option<u32>,
    /// Print [`Results`] as JSON instead of the table.
    pub json: bool,
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

/// The outcome of one run, as measured (the JSON form is [`Figures`]).
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
    /// DNS replies by response code, in the order of [`RCODES`] (the last: any other).
    pub rcodes: [u64; RCODES.len() + 1],
}

/// The response codes a DNS run counts apart; any other is counted as one more.
pub const RCODES: [u16; 6] = [0, 1, 2, 3, 4, 5];

/// Where response code `rcode` is counted in [`Report::rcodes`].
fn rcode_index(rcode: u16) -> usize {
    RCODES
        .iter()
        .position(|&c| c == rcode)
        .unwrap_or(RCODES.len())
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

    /// How many DNS replies carried response code `rcode` (for a code not in [`RCODES`],
    /// all such codes together).
    pub fn rcode(&self, rcode: u16) -> u64 {
        self.rcodes[rcode_index(rcode)]
    }
}

fn code_index(code: Code) -> usize {
    Code::ALL.iter().position(|&c| c == code).unwrap_or(0)
}

/// `dnsd bench`: measures the server (and, with a ceiling, the fixed-reply server), then
/// prints a table or one JSON object.
pub fn run(config: BenchConfig) -> Result<(), Error> {
    let workload = &config.workload;
    // Progress on a terminal, for a person; none for a script reading --json.
    let live = io::stderr().is_terminal() && !config.json;
    let report = measure_with_progress(workload, "", live);
    let ceiling = match config.ceiling_hops {
        Some(hops) => {
            let server =
                Ceiling::chain(workload.legacy, workload.client_id.is_some(), hops as usize)
                    .map_err(|e| Error::io("cannot start the ceiling server", e))?;
            let same = Workload {
                server: server.addr(),
                ..workload.clone()
            };
            Some((measure_with_progress(&same, "ceiling: ", live), hops))
        }
        None => None,
    };
    let ceiling = ceiling.as_ref().map(|(report, hops)| (report, *hops));
    let text = if config.json {
        output::Results::new(workload, &report, ceiling).to_json()
    } else {
        output::table(workload, &report, ceiling)
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("cannot write the output", e))?;
    if report.queries == 0 {
        return Err(Error::NoneAnswered {
            server: workload.server,
        });
    }
    Ok(())
}

/// [`measure`], with a live progress line on stderr (elapsed time, queries sent, the
/// current rate) if `live`.
fn measure_with_progress(workload: &Workload, label: &str, live: bool) -> Report {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn nearest_rank_percentiles() {
        let mut micros: Vec<u32> = (1..=1000).rev().collect();
        let l = Latency::from_micros(&mut micros);
        assert_eq!(l.p50, Duration::from_micros(500));
        assert_eq!(l.p99, Duration::from_micros(990));
        assert_eq!(l.p999, Duration::from_micros(999));
        assert_eq!(l.max, Duration::from_micros(1000));
        assert_eq!(Latency::from_micros(&mut []), Latency::default());
    }
}
