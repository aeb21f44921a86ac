//! The command line: clap structs, kept dumb, and their small value parsers.
//! [`crate::runtime::config`] checks what they hold and turns it into the configs the
//! servers and tools take; [`crate::runtime`] runs them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::dns;
use crate::line::client;
use crate::line::frame;
use crate::line::message::Mode;
use crate::model::QType;
use crate::net::resolve_host_port;
use crate::ops::querylog;
use crate::ops::{diagnostics, metrics};
use crate::resolve::inflight;
use crate::resolve::upstream;
use crate::resolve::upstream::UpstreamProtocol;
use crate::roles::local;
use crate::roles::root;
use crate::server;
use crate::server::access::Net;
use crate::tools::bench::{self, DnsTransport};
use crate::tools::trace;

/// dnsd: a small DNS hierarchy — a caching local server, a root server and TLD servers —
/// with recursive (R) and iterative (I) resolution, over a line protocol you can type
/// with `nc`.
#[derive(Parser, Debug)]
#[command(name = "dnsd", version, about, long_about = None)]
#[command(
    after_help = "Logs go to stderr (or --log-file); RUST_LOG=debug shows more, RUST_LOG=warn \
less. One line per query is shown by dnsd up, not by a server run alone: RUST_LOG=info \
shows them, RUST_LOG=info,dnsd::query=off hides them.\n\
Signals: INT and TERM stop; HUP re-reads every server's files and reopens the logs; USR1 \
reopens the logs only (for logrotate); USR2 is ignored.\n\
Exit codes: 0 success, 2 bad usage or a bad file (FILE:LINE: ...), 1 failure at run time."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Where diagnostics go and whether the per-query lines show by default: `dnsd up`
    /// shows them (a learner watches queries flow), a server run alone does not.
    pub fn diagnostics(&self) -> diagnostics::Settings {
        let (process, queries) = match &self.command {
            Command::Up(args) => (Some(&args.process), true),
            Command::Local(args) => (Some(&args.server.process), false),
            Command::Root(args) => (Some(&args.server.process), false),
            Command::Tld(args) => (Some(&args.server.process), false),
            _ => (None, true),
        };
        diagnostics::Settings {
            log_file: process.and_then(|p| p.log_file.clone()),
            queries,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole hierarchy in one process: root, a TLD server per root-table entry,
    /// a server per second-level zone (a master file, delegated by its TLD's server),
    /// and the local server seeded with the default cache.
    Up(UpArgs),
    /// Run the local (caching) server that clients talk to.
    Local(LocalArgs),
    /// Run the root server, which knows the TLD servers from its table.
    Root(RootArgs),
    /// Run a TLD server, authoritative for the names in its zone.
    Tld(TldArgs),
    /// Run an authoritative server for zones given as RFC 1035 master files: a
    /// second-level zone's own server, a reverse zone, several zones at once.
    Auth(AuthArgs),
    /// Talk to a local server: sends ID, then one request per input line.
    Client(ClientArgs),
    /// Measure a server: closed-loop load, queries per second and latency (`dnsd bench
    /// report` and `dnsd bench show` read the `--json` results back).
    Bench(Box<BenchCommand>),
    /// Check zone, cache and root-table files and RFC 1035 master files (.zone) without
    /// starting a server: what each holds, and every problem as FILE:LINE (exit 2 if
    /// any).
    Check(CheckArgs),
    /// Follow a name through the hierarchy hop by hop over DNS, like `dig +trace`:
    /// who was asked what, what each answered, how long it took.
    Trace(TraceArgs),
}

/// Flags about the process a server runs in (every server, and up).
#[derive(Args, Debug, Clone, Default)]
pub struct ProcessArgs {
    /// Once the sockets are bound and the logs open, run as this user (and its groups)
    /// instead of root: needed to bind port 53, not to answer on it. The log directory
    /// must be writable by that user. Running as root on a port below 1024 without it
    /// is warned about at start.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Write diagnostics (the lines otherwise on stderr) to this file, appended, created
    /// 0640; SIGUSR1 or SIGHUP reopens it (for logrotate).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Write the process id to this file once the sockets are bound (for logrotate's
    /// `postrotate`: kill -USR1 $(cat FILE)).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// Flags every server takes.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on (use a non-loopback address to serve other hosts).
    #[arg(long, default_value_t = server::DEFAULT_BIND, value_name = "IP")]
    pub bind: IpAddr,
    /// The address the root and TLD servers (and `dnsd auth`) publish as their own name
    /// server's (ns.root, ns.TLD: the glue resolvers and `dig +trace` reach them by)
    /// [default: --bind's]. Required with --bind 0.0.0.0 or ::, which no client can
    /// reach: such a server refuses to start without it.
    #[arg(long, value_name = "IP")]
    pub advertise: Option<IpAddr>,
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_metrics_addr,
          help = metrics_help(), long_help = metrics_long_help())]
    pub metrics: Option<SocketAddr>,
    /// Serve the live web view of this server at http://HOST:PORT/ (off unless given;
    /// a bare PORT means 127.0.0.1:PORT): its queries as they happen, with the
    /// questions it sent upstream, and the local server's cache, as a page, as JSON
    /// (/api/hierarchy, /api/cache, /api/resolve) and as Server-Sent Events (/events).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_metrics_addr)]
    pub web: Option<SocketAddr>,
    #[command(flatten)]
    pub web_flags: WebFlags,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// What the web view lets others do.
#[derive(Args, Debug, Clone)]
pub struct WebFlags {
    /// Let clients that are not on this machine flush the local server's cache from the
    /// web view (by default only loopback clients may: anything that changes state is
    /// refused to others).
    #[arg(long)]
    pub web_allow_flush: bool,
}

/// `--metrics`, in short.
fn metrics_help() -> String {
    format!(
        "Serve metrics (Prometheus text format) at http://HOST:PORT{}; a bare PORT means \
         {}:PORT [default: off]",
        metrics::PATH,
        metrics::DEFAULT_HOST
    )
}

/// `--metrics`, with every metric (`--help`).
fn metrics_long_help() -> String {
    format!(
        "{}. Port 0 takes any free port; `metrics on ADDR` is logged once bound. Metrics, \
         each with server=\"NAME\":\n{}",
        metrics_help(),
        metrics::CATALOG
            .iter()
            .map(|(name, what)| format!("  {name}: {what}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// Parses `--metrics`: `HOST:PORT`, or a bare `PORT` on loopback.
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    match s.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::new(metrics::DEFAULT_HOST, port)),
        Err(_) => parse_host_port(s),
    }
}

/// The limits every server enforces (`dnsd up` applies them to all its servers).
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Connections served at once; past it, a new one is refused (`0XFE, NAME, Server
    /// busy` over the line protocol, SERVFAIL over DNS) and closed.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// Connections served at once from one client address; past it, a new one from that
    /// address is refused as over --max-connections [default: a quarter of
    /// --max-connections, for every address but loopback; given, for every address].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: Option<u32>,
    /// Close a connection silent this long; a request (a line, or a DNS message over TCP)
    /// must also arrive whole within it, from its first byte.
    #[arg(long, default_value_t = Secs(frame::DEFAULT_IDLE_TIMEOUT), value_name = "SECS", value_parser = parse_secs)]
    pub idle_timeout: Secs,
    /// Longest request line accepted, in bytes (longer: `0XEE` and the connection is closed).
    #[arg(long, default_value_t = frame::DEFAULT_MAX_LINE as u32, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(16..=65536))]
    pub max_line: u32,
    /// The EDNS UDP payload size offered to DNS clients, in bytes: the most a UDP answer
    /// may carry (a larger one is truncated, and the client retries over TCP).
    #[arg(long, default_value_t = dns::DEFAULT_EDNS_PAYLOAD, value_name = "BYTES", value_parser = clap::value_parser!(u16).range(512..))]
    pub edns_payload: u16,
}

/// Parses `HOST:PORT`, looking a host name up (the first address found is used).
pub fn parse_host_port(s: &str) -> Result<SocketAddr, String> {
    resolve_host_port(s)
        .map(|addrs| addrs[0])
        .map_err(|e| format!("{s:?}: {e} (expected HOST:PORT)"))
}

/// A duration given in seconds on the command line (fractions allowed: `0.5`), shown
/// the same way in `--help`, so that each default is written once, as a `Duration`
/// constant beside what it configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// Parses seconds, fractions allowed (`0.5`); must be above zero.
pub fn parse_secs(s: &str) -> Result<Secs, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("{s:?} must be a number of seconds above zero"));
    }
    Ok(Secs(Duration::from_secs_f64(secs)))
}

/// A size in bytes given on the command line, with an optional binary unit (`64M`),
/// shown the same way in `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub usize);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match [(30, "G"), (20, "M"), (10, "K")]
            .into_iter()
            .find(|(shift, _)| self.0 != 0 && self.0.is_multiple_of(1 << shift))
        {
            Some((shift, unit)) => write!(f, "{}{unit}", self.0 >> shift),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Parses a size: bytes (`65536`), or K, M or G of them (`64K`, `64M`, `1G`; binary,
/// case ignored); must be above zero.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let t = s.trim();
    let shift = match t.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => 10,
        Some(b'M') => 20,
        Some(b'G') => 30,
        _ => 0,
    };
    // The unit is one ASCII byte: cutting it off leaves a char boundary.
    let digits = if shift == 0 { t } else { &t[..t.len() - 1] };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (bytes, or a number with K, M or G)"))?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err(format!("{s:?} must be a size above zero")),
        Some(bytes) => Ok(Size(bytes)),
        None => Err(format!("{s:?} is too large a size")),
    }
}

/// Zone transfers out (tld, root, up): who may have the zones, who is told of changes.
#[derive(Args, Debug, Clone)]
pub struct TransferArgs {
    /// Who may transfer the zone (with `dnsd up`, the root's and every TLD server's):
    /// AXFR, IXFR over TCP (IXFR over UDP gets the SOA). A network (`10.0.0.0/24`) or an
    /// address; may be given more than once. Others get REFUSED [default: no one].
    #[arg(long, value_name = "CIDR", value_parser = parse_net)]
    pub allow_transfer: Vec<Net>,
    /// A secondary to send a NOTIFY (over UDP, from the server's --bind address, sent
    /// again until acknowledged, 5 times at most) at start and when SIGHUP changes the
    /// zone, which then gets a newer SOA serial; may be given more than once. The serial
    /// of a zone is its load time in Unix seconds, kept while the data is unchanged.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_host_port)]
    pub notify: Vec<SocketAddr>,
}

/// How a server that asks others (local, root, up) asks them.
#[derive(Args, Debug)]
pub struct UpstreamArgs {
    /// Connect and read timeout when asking the root or a TLD server, in seconds.
    #[arg(long, default_value_t = Secs(upstream::DEFAULT_TIMEOUT), value_name = "SECS", value_parser = parse_secs)]
    pub upstream_timeout: Secs,
    /// The protocol questions are asked upstream in: `both` sends the line protocol's
    /// own question (a name's address) as a line and typed DNS questions as DNS
    /// messages; `line` or `dns` sends every question in that one (only addresses can
    /// be asked as lines: other types are SERVFAIL).
    #[arg(long, default_value_t = UpstreamProtocol::default(), value_name = "both|line|dns")]
    pub upstream_protocol: UpstreamProtocol,
    /// How many questions may wait for an upstream's answer at once (misses, over
    /// every protocol, identical ones joined to one upstream query but each counted);
    /// past it, a new one is answered SERVFAIL (`0XFE` for a line) at once and counted
    /// in dnsd_misses_refused_total. Cache hits never wait behind them.
    #[arg(long, default_value_t = inflight::DEFAULT_MAX_PENDING as u32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_pending: u32,
}

/// Whether the local server keeps the delegations it learns (local, up).
#[derive(Args, Debug)]
pub struct DelegationArgs {
    /// Do not keep the delegations learned from referrals: every mode I miss then starts
    /// at the root, as in the original, instead of asking the servers of a zone already
    /// referred to (for the referral's TTL, at most --ttl) directly.
    #[arg(long)]
    pub no_delegation_cache: bool,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// A lab file (TOML): the TLDs, their zones, ports, addresses, the cache and the
    /// limits, all in one file; it replaces the other flags (see examples/lab.toml),
    /// which are refused beside it, so that none is silently ignored (`--metrics` is
    /// the exception: one endpoint serves the whole lab).
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "zones", "any_port", "log_dir", "max_client_logs", "dns_mode", "no_delegation_cache", "upstream_timeout",
        "upstream_protocol", "max_pending", "max_connections", "max_connections_per_ip",
        "idle_timeout", "max_line", "edns_payload", "allow_transfer", "notify",
    ])]
    pub config: Option<PathBuf>,
    /// Directory with root.{toml,dat}, one zone per TLD and default.{toml,dat}, and
    /// master files (NAME.zone) of zones under those TLDs, each run on a server of its
    /// own that its TLD's server delegates to [default: the sample zones built into
    /// dnsd, example.com.zone among them].
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,
    /// Directory for the local server's logs: clients/ID.log, queries.log and
    /// mapping.log.
    #[arg(long, default_value = local::DEFAULT_LOG_DIR, value_name = "DIR")]
    pub log_dir: PathBuf,
    #[command(flatten)]
    pub client_logs: ClientLogArgs,
    /// Bind every server to a free port instead of 5352, 5353 and the root table's ports.
    #[arg(long)]
    pub any_port: bool,
    /// How a DNS query with RD set is resolved: I asks the root for a referral and then
    /// the TLD server, as real resolvers do; R asks the root to recurse.
    #[arg(long, default_value_t = local::DEFAULT_DNS_MODE, value_name = "R|I", value_parser = parse_mode)]
    pub dns_mode: Mode,
    #[command(flatten)]
    pub delegations: DelegationArgs,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub transfers: TransferArgs,
    // One endpoint for every server of the hierarchy (with --config too).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_metrics_addr,
          help = metrics_help(), long_help = metrics_long_help())]
    pub metrics: Option<SocketAddr>,
    /// Serve the live web view at http://HOST:PORT/ [default: 127.0.0.1:5380 (a free
    /// port if another dnsd has it), or a free port with --any-port]: the hierarchy drawn, every query's
    /// path through it as it happens, the local server's cache with a flush, and a form
    /// that traces a name; the same as JSON (/api/hierarchy, /api/cache, /api/resolve,
    /// POST /api/flush) and as Server-Sent Events (/events: `curl -N`). A bare PORT
    /// means 127.0.0.1:PORT; give a host to serve other machines.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_metrics_addr, conflicts_with = "no_web")]
    pub web: Option<SocketAddr>,
    /// Do not serve the web view.
    #[arg(long)]
    pub no_web: bool,
    #[command(flatten)]
    pub web_flags: WebFlags,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// How many client logs the local server keeps (local, up).
#[derive(Args, Debug)]
pub struct ClientLogArgs {
    /// How many client ids get a log file of their own (clients/ID.log); the records of
    /// any further id go to queries.log, one line each with the id as the first field
    /// (ID, TAB, request, TAB, reply). 0 puts every client in queries.log. Ids that
    /// already have a file from an earlier run keep it.
    #[arg(long, default_value_t = querylog::DEFAULT_MAX_CLIENT_LOGS, value_name = "N")]
    pub max_client_logs: usize,
}

#[derive(Args, Debug)]
pub struct LocalArgs {
    /// A file of entries that never expire (`NAME ADDR` lines, or TOML `[records]`);
    /// may be given more than once. SIGHUP re-reads them (learned entries stay).
    #[arg(long, value_name = "FILE")]
    pub cache: Vec<PathBuf>,
    /// The root server to ask on a cache miss (a host name is looked up once, at start).
    #[arg(long, default_value_t = local::DEFAULT_ROOT, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub root: SocketAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = local::DEFAULT_PORT)]
    pub port: u16,
    /// Directory for clients/ID.log (per client), queries.log and mapping.log.
    #[arg(long, default_value = local::DEFAULT_LOG_DIR, value_name = "DIR")]
    pub log_dir: PathBuf,
    #[command(flatten)]
    pub client_logs: ClientLogArgs,
    /// The name the server replies under.
    #[arg(long, default_value = local::DEFAULT_NAME)]
    pub name: String,
    /// The longest TTL given or kept, in seconds: every answer learned from the
    /// hierarchy, the first one included, says at most this, and is kept no longer (as
    /// Unbound's cache-max-ttl). `--ttl` is its older name. A line reply carries no TTL
    /// and counts as 3600.
    #[arg(long, visible_alias = "ttl", default_value_t = Secs(local::DEFAULT_MAX_TTL), value_name = "SECS", value_parser = parse_secs)]
    pub max_ttl: Secs,
    /// Start with what a previous run learned: the mappings of this `mapping.log`
    /// still within their TTL come back as learned entries (expired ones are skipped).
    #[arg(long, value_name = "FILE")]
    pub warm: Option<PathBuf>,
    /// How a DNS query with RD set is resolved: I asks the root for a referral and then
    /// the TLD server, as real resolvers do; R asks the root to recurse.
    #[arg(long, default_value_t = local::DEFAULT_DNS_MODE, value_name = "R|I", value_parser = parse_mode)]
    pub dns_mode: Mode,
    /// How many names learned from the hierarchy are kept at most (least recently used
    /// go first).
    #[arg(long, default_value_t = local::DEFAULT_CACHE_SIZE, value_name = "N")]
    pub cache_size: usize,
    /// How many bytes what is learned may hold at most (least recently used names go
    /// first; an estimate of each entry's records and bookkeeping): a number of bytes,
    /// or with K, M or G (binary: 64M is 64 MiB).
    #[arg(long, default_value_t = Size(local::DEFAULT_CACHE_BYTES), value_name = "SIZE", value_parser = parse_size)]
    pub cache_bytes: Size,
    /// Who may ask: a network (`10.0.0.0/24`, `2001:db8::/32`) or an address; may be given
    /// more than once, and the list replaces the default (add `127.0.0.0/8` to keep
    /// loopback). Others get REFUSED over DNS and `0XFE, NAME, Access refused` over the
    /// line protocol [default: loopback and the networks of --bind; with an unspecified
    /// --bind (0.0.0.0, ::), the networks of every interface of the machine].
    #[arg(long, value_name = "CIDR", value_parser = parse_net)]
    pub allow: Vec<Net>,
    #[command(flatten)]
    pub delegations: DelegationArgs,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct RootArgs {
    /// The TLD table: `TLD HOST PORT` lines, or TOML `[tlds]` with `tld = "HOST:PORT"`;
    /// or (named `*.zone`) an RFC 1035 master file of the root zone, its delegations
    /// and glue served as written (a referral's servers then on port 53, or on the port
    /// of a `_dns._tcp.TLD SRV` record). SIGHUP re-reads it.
    pub table: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = root::DEFAULT_PORT)]
    pub port: u16,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub transfers: TransferArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct TldArgs {
    /// The top-level domain served, e.g. `com`.
    pub tld: String,
    /// The zone: `NAME ADDR` lines, TOML `[records]` with `"name" = "addr"`, or (a
    /// `.zone` file) an RFC 1035 master file whose SOA is the TLD's; SIGHUP re-reads it.
    pub zone: PathBuf,
    /// Port to listen on [default: 5678 for com, 5679 for org, 5680 for gov; required
    /// for any other TLD] (0: any free port).
    #[arg(long)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub transfers: TransferArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct AuthArgs {
    /// The zones: RFC 1035 master files (`$ORIGIN`, `$TTL`, every record type; a type
    /// without a name of its own in RFC 3597's `TYPEn \# LEN HEX` form), a zone each,
    /// whose origin is the owner of its SOA. SIGHUP re-reads them.
    #[arg(required = true, value_name = "FILE")]
    pub zones: Vec<PathBuf>,
    /// The name the server logs and counts its metrics under [default: the first
    /// zone's origin].
    #[arg(long)]
    pub name: Option<String>,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 53)]
    pub port: u16,
    #[command(flatten)]
    pub transfers: TransferArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The client id: letters, digits, `.`, `_`, `-` (it names the server's clients/ID.log).
    pub id: String,
    /// The local server.
    #[arg(long, default_value = client::DEFAULT_SERVER, value_name = "HOST:PORT")]
    pub server: String,
    /// Speak the original's framing (no line ends), to talk to the original local.py.
    #[arg(long)]
    pub legacy: bool,
    /// Give up on a reply after this many seconds.
    #[arg(long, default_value_t = Secs(client::DEFAULT_TIMEOUT), value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Secs,
}

/// `dnsd bench`: the flags of a measurement, or one of the tools that read its `--json`
/// results back.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCommand {
    #[command(subcommand)]
    pub tool: Option<BenchTool>,
    #[command(flatten)]
    pub args: BenchArgs,
}

#[derive(Subcommand, Debug)]
pub enum BenchTool {
    /// Write BENCHMARKS.md from a directory of `dnsd bench --json` results, as
    /// `scripts/bench.sh` (`just bench`) collects them.
    Report(Box<BenchReportArgs>),
    /// Print one summary line per `dnsd bench --json` result file.
    Show(BenchShowArgs),
}

/// Help texts that name the `{n}` placeholder. clap turns every `{n}` in a help text into
/// a line break, with no way to escape it; an ANSI reset between `{` and `n` keeps it
/// from matching, and clap strips the reset when stdout is not a terminal (on one it
/// shows nothing).
fn keep_n(help: &str) -> String {
    help.replace("{n}", "{\x1b[0mn}")
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The server to measure.
    #[arg(long, default_value = client::DEFAULT_SERVER, value_name = "HOST:PORT")]
    pub server: String,
    /// Connections, each its own thread with one query in flight.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// How long to run, in seconds [default: 5, unless --requests is given]; with
    /// --requests too, the run stops at whichever comes first.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Secs>,
    /// How many queries to send in all (over all connections).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    #[arg(long, default_value_t = 0, value_name = "N", help = keep_n(
        "The number of the first query (its tag, its `{n}`, its place in --names), so that \
         successive runs can ask different names"
    ))]
    pub first: u64,
    /// Resolution mode of every query.
    #[arg(long, default_value = "R", value_name = "R|I", value_parser = parse_mode)]
    pub mode: Mode,
    /// A file of names, one per line, asked in turn (cycled).
    #[arg(long, value_name = "FILE", conflicts_with = "pattern")]
    pub names: Option<PathBuf>,
    #[arg(long, default_value = bench::DEFAULT_NAME, value_name = "PATTERN", help = keep_n(
        "The name to ask; each `{n}` in it is replaced by the query's number, unique over all \
         connections (e.g. `www.nx{n}.com` for names that do not exist)"
    ))]
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
    #[arg(long, default_value_t = Secs(bench::DEFAULT_TIMEOUT), value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Secs,
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
    /// Ask DNS messages (type A, RD set in mode R and clear in mode I) over UDP or TCP
    /// instead of lines; the reply counts are then by DNS response code.
    #[arg(long, value_name = "udp|tcp", value_parser = parse_dns, conflicts_with_all = ["legacy", "ceiling"])]
    pub dns: Option<DnsTransport>,
}

fn parse_net(s: &str) -> Result<Net, String> {
    s.parse()
        .map_err(|e: crate::server::access::NetError| e.to_string())
}

fn parse_dns(s: &str) -> Result<DnsTransport, String> {
    match s {
        "udp" => Ok(DnsTransport::Udp),
        "tcp" => Ok(DnsTransport::Tcp),
        _ => Err(format!("{s:?}: the transport is udp or tcp")),
    }
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse().map_err(|_| format!("{s:?}: the mode is R or I"))
}

/// The facts about a `just bench` run that only the script knows are printed as given.
#[derive(Args, Debug)]
pub struct BenchReportArgs {
    /// The directory of results (`KEY.json` from `dnsd bench --json`, `zoneload-*.json`,
    /// `idle.json`).
    pub results: PathBuf,
    /// The Markdown file to write.
    pub out: PathBuf,
    /// The machine, e.g. `2 cores, AMD EPYC, Linux 6.1`.
    #[arg(long, default_value = "unknown")]
    pub machine: String,
    /// When the run was made.
    #[arg(long, default_value = "unknown")]
    pub date: String,
    /// The dnsd commit measured.
    #[arg(long, default_value = "unknown")]
    pub commit: String,
    /// Seconds of each dnsd run.
    #[arg(long, default_value = "5", value_name = "SECS")]
    pub duration: String,
    /// Seconds of each run against the original's 100,000-name zone.
    #[arg(long, default_value = "3", value_name = "SECS")]
    pub orig_slow_secs: String,
    /// Where the original programs came from (empty: not measured).
    #[arg(long, default_value = "", value_name = "DIR")]
    pub original: String,
    /// Seconds the whole run took.
    #[arg(long, default_value = "?", value_name = "SECS")]
    pub elapsed: String,
    /// The load average at the start and the end.
    #[arg(long, default_value = "unknown")]
    pub load: String,
    /// Seconds of each resolution round.
    #[arg(long, default_value = "0.6", value_name = "SECS")]
    pub res_secs: String,
    /// How many resolution rounds were made.
    #[arg(long, default_value = "9", value_name = "N")]
    pub rounds: String,
    /// A Markdown file copied into the report under "Notes".
    #[arg(long, value_name = "FILE")]
    pub notes: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchShowArgs {
    /// `dnsd bench --json` result files; each line is named by the file's stem.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What a file is is told by its name (`root.*`), else by its content; see `dnsd check
/// --help`.
#[derive(Args, Debug)]
#[command(
    after_help = "A file is a root table when given with --root, or named root.*, \
or (legacy) its first line has 3 fields TLD HOST PORT, or (TOML) its first table is [tlds]; \
otherwise it is a zone (or cache) file. `.toml` files are TOML, others legacy.\n\
Exit codes: 0 every file is good, 2 a problem in any (each listed as FILE:LINE: ...)."
)]
pub struct CheckArgs {
    /// Zone, cache or root-table files, legacy or TOML, or master files (named
    /// *.zone, read as `dnsd tld` and `dnsd auth` read them); what each is is worked out.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A file to check as a root table, whatever its name and content.
    #[arg(long, value_name = "FILE")]
    pub root: Vec<PathBuf>,
    /// A file to check as a zone (or cache) file, whatever its name and content.
    #[arg(long, value_name = "FILE")]
    pub zone: Vec<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 every hop answered, 1 a hop gave no usable answer \
within --timeout (or the root answered SERVFAIL), 2 bad usage."
)]
pub struct TraceArgs {
    /// The name to follow: a host name (www.google.com) or a TLD (com).
    pub name: String,
    /// The record type asked at every hop: A, AAAA, CNAME, NS, SOA, PTR, MX, TXT, SRV,
    /// CAA, ANY or TYPEn.
    #[arg(long = "type", short = 't', default_value = "A", value_name = "TYPE")]
    pub qtype: QType,
    /// I: ask the root for a referral, then the TLD server yourself; R: ask the root to
    /// resolve it (and, to name the TLD server it asked, for its referral too).
    #[arg(long, default_value_t = trace::DEFAULT_MODE, value_name = "R|I", value_parser = parse_mode)]
    pub mode: Mode,
    /// The root server to start from.
    #[arg(long, default_value_t = local::DEFAULT_ROOT, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub root: SocketAddr,
    /// How long each hop may take to answer, in seconds.
    #[arg(long, default_value_t = Secs(trace::DEFAULT_TIMEOUT), value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Secs,
    /// Print one line of JSON (every hop: server, question, rcode, records, time).
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_takes_addresses_and_host_names() {
        assert_eq!(
            parse_host_port("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        let local = parse_host_port("localhost:1").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 1, "{local}");
        assert!(parse_host_port("no port").is_err());
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("65536"), Ok(Size(65536)));
        assert_eq!(parse_size("64K"), Ok(Size(64 << 10)));
        assert_eq!(parse_size("64m"), Ok(Size(64 << 20)));
        assert_eq!(parse_size("1G"), Ok(Size(1 << 30)));
        assert!(parse_size("0").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1K").is_err());
        assert!(parse_size("64 MB").is_err());
        assert_eq!(Size(64 << 20).to_string(), "64M");
        assert_eq!(Size(1000).to_string(), "1000");
        assert_eq!(Size(3 << 10).to_string(), "3K");
    }

    #[test]
    fn seconds_allow_fractions_but_not_zero() {
        assert_eq!(parse_secs("0.5"), Ok(Secs(Duration::from_millis(500))));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("x").is_err());
    }
}
