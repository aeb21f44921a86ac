//! `dnsd trace`: `dig +trace` for this hierarchy. It asks each hop itself, over DNS, and
//! draws the path step by step, as the iterative and recursive query figures of Kurose
//! and Ross do: who asked whom what, what each server answered, how long it took.
//!
//! - Mode I: the root without recursion (RD clear) gives a referral (NS, glue, and the
//!   SRV record with the port); the TLD server it names is asked next, and answers.
//! - Mode R: the root with recursion (RD set) asks the TLD server itself and passes the
//!   answer on. That query cannot be seen from here, so the root is asked once more
//!   without recursion: its referral names the TLD server it asked.
//!
//! Each hop goes over UDP, and again over TCP when the answer comes back truncated; a
//! hop that gives no usable answer within the timeout is a failed hop.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use serde::Serialize;

use crate::dns::exchange::{exchange, udp_socket_for, DnsUpstreamError};
use crate::dns::{model_record, rcode_name};
use crate::line::message::Mode;
use crate::model::name::Name;
use crate::model::{Outcome, QType, Query, RData, Record, Recursion, Referral, Resolution};

/// How long each hop may take to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The mode traced unless told otherwise: iterative, as `dig +trace` does.
pub const DEFAULT_MODE: Mode = Mode::Iterative;

/// The most referrals followed in mode I (dnsd's hierarchy has one).
const MAX_HOPS: usize = 8;

/// How the trace is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Plain text (a pipe, or `NO_COLOR`).
    Plain,
    /// Text with ANSI colours (a terminal).
    Color,
    /// One line of JSON ([`Trace`]).
    Json,
}

/// What `dnsd trace` is asked to do.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    pub name: Name,
    /// The type asked at every hop (`A` unless told otherwise).
    pub qtype: QType,
    pub mode: Mode,
    pub root: SocketAddr,
    /// How long each hop may take.
    pub timeout: Duration,
    pub output: Output,
}

/// A whole trace: every hop asked, in order.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub name: String,
    /// The type asked: `A`, `AAAA`, ...
    pub qtype: String,
    /// `R` or `I`.
    pub mode: String,
    pub root: SocketAddr,
    pub hops: Vec<Hop>,
    /// Mode R: the TLD server the root asked, from its referral.
    pub via: Option<RootAsked>,
    /// What it came to: the last hop's rcode (`NOERROR`, `NXDOMAIN`, ...), or `FAILED`
    /// when a hop gave no usable answer.
    pub rcode: String,
    /// The addresses found (empty unless the name was resolved).
    pub addresses: Vec<IpAddr>,
    /// The whole trace, in microseconds.
    pub elapsed_us: u64,
}

/// One question to one server, and what came back.
#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    /// Who was asked: `root`, or the TLD its server answers for.
    pub server: String,
    pub address: SocketAddr,
    /// `A www.google.com`.
    pub question: String,
    pub recursion_desired: bool,
    /// `udp`, or `udp+tcp` when the UDP answer was truncated.
    pub transport: String,
    /// `None` when no usable answer came.
    pub rcode: Option<String>,
    pub authoritative: bool,
    pub recursion_available: bool,
    /// What the answer means, in words.
    pub answer: String,
    /// The records of the answer, in section order.
    pub records: Vec<RecordView>,
    pub elapsed_us: u64,
    /// Why the hop failed, if it did.
    pub error: Option<String>,
}

/// A record as the trace shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecordView {
    /// `answer`, `authority` or `additional`.
    pub section: String,
    pub name: String,
    pub ttl: u32,
    #[serde(rename = "type")]
    pub rtype: String,
    pub data: String,
}

/// Mode R: the TLD server the root resolved through.
#[derive(Clone, Debug, Serialize)]
pub struct RootAsked {
    pub tld: String,
    pub server: String,
    pub address: SocketAddr,
}

impl Trace {
    /// Whether the trace got an answer from every hop, and the answer was not SERVFAIL.
    pub fn ok(&self) -> bool {
        self.hops.iter().all(|h| h.error.is_none()) && self.rcode != "SERVFAIL"
    }
}

/// Why a trace failed (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A hop gave no usable answer within the timeout: `server` (a name such as `root`
    /// or `com`) at `address`, and why.
    #[error("trace of {name}: {server} at {address} gave no answer: {why}")]
    NoAnswer {
        name: String,
        server: String,
        address: SocketAddr,
        why: String,
    },
    /// The root, asked to resolve the name (mode R), answered SERVFAIL.
    #[error("trace of {name}: the root could not resolve it (SERVFAIL)")]
    RootFailed { name: String },
    #[error("cannot write JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("cannot write the trace: {0}")]
    Write(#[source] std::io::Error),
}

/// Runs the trace and prints it; an error (exit 1) if a hop failed.
pub fn run(config: &TraceConfig, out: &mut dyn std::io::Write) -> Result<(), TraceError> {
    let trace = trace(config);
    let text = match config.output {
        Output::Json => {
            let mut line = serde_json::to_string(&trace).map_err(TraceError::Json)?;
            line.push('\n');
            line
        }
        Output::Plain => render(&trace, false),
        Output::Color => render(&trace, true),
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(TraceError::Write)?;
    if trace.ok() {
        return Ok(());
    }
    Err(match trace.hops.iter().find(|h| h.error.is_some()) {
        Some(hop) => TraceError::NoAnswer {
            name: trace.name.clone(),
            server: hop.server.clone(),
            address: hop.address,
            why: hop.error.clone().unwrap_or_default(),
        },
        None => TraceError::RootFailed {
            name: trace.name.clone(),
        },
    })
}

/// Asks each hop in turn and records what each answered.
pub fn trace(config: &TraceConfig) -> Trace {
    let started = Instant::now();
    let query = |recursion| Query {
        name: config.name.clone(),
        qtype: config.qtype,
        recursion,
        tag: None,
    };
    let mut hops = Vec::new();
    let mut via = None;
    let last = match config.mode {
        Mode::Iterative => {
            let mut server = ("root".to_owned(), config.root);
            loop {
                let (hop, resolution) = ask(
                    &server.0,
                    server.1,
                    &query(Recursion::Iterative),
                    config.timeout,
                );
                hops.push(hop);
                match resolution.map(|r| r.outcome) {
                    Some(Outcome::Referral(r)) if hops.len() < MAX_HOPS => match r.addr() {
                        Some(addr) => server = (r.zone.to_string(), addr),
                        // No glue: trace shows the hierarchy's own path, whose referrals
                        // always carry an address.
                        None => break Some(Outcome::Referral(r)),
                    },
                    other => break other,
                }
            }
        }
        Mode::Recursive => {
            let (hop, resolution) = ask(
                "root",
                config.root,
                &query(Recursion::Recursive),
                config.timeout,
            );
            hops.push(hop);
            let (probe, referral) = ask(
                "root",
                config.root,
                &query(Recursion::Iterative),
                config.timeout,
            );
            hops.push(probe);
            if let Some(Outcome::Referral(r)) = referral.map(|r| r.outcome) {
                via = r.addr().map(|address| RootAsked {
                    tld: r.zone.to_string(),
                    server: r.ns_name().to_string(),
                    address,
                });
            }
            resolution.map(|r| r.outcome)
        }
    };
    // What the name came to: the last hop's answer in mode I, the root's recursive
    // answer in mode R.
    let main = main_hop(config.mode, &hops);
    let rcode = match main.and_then(|h| h.rcode.clone()) {
        Some(rcode) if hops.iter().all(|h| h.error.is_none()) => rcode,
        _ => "FAILED".to_owned(),
    };
    let addresses = match &last {
        Some(Outcome::Answer(records)) => records.iter().filter_map(|r| r.data.ip()).collect(),
        _ => Vec::new(),
    };
    Trace {
        name: config.name.to_string(),
        qtype: config.qtype.to_string(),
        mode: config.mode.to_string(),
        root: config.root,
        hops,
        via,
        rcode,
        addresses,
        elapsed_us: micros(started.elapsed()),
    }
}

/// The hop whose answer is the trace's: the last in mode I, the root's recursive answer
/// (the first) in mode R.
fn main_hop(mode: Mode, hops: &[Hop]) -> Option<&Hop> {
    match mode {
        Mode::Iterative => hops.last(),
        Mode::Recursive => hops.first(),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Asks `server` at `addr` one question: over UDP, over TCP if the answer is truncated,
/// within `timeout` ([`exchange`], as the servers ask).
fn ask(
    server: &str,
    addr: SocketAddr,
    query: &Query,
    timeout: Duration,
) -> (Hop, Option<Resolution>) {
    let started = Instant::now();
    let deadline = started + timeout;
    let (over_tcp, result) = match udp_socket_for(addr) {
        Ok(socket) => {
            let exchanged = exchange(&socket, addr, query, deadline);
            (exchanged.over_tcp, exchanged.result)
        }
        Err(e) => (false, Err(e.into())),
    };
    let transport = if over_tcp { "udp+tcp" } else { "udp" };
    let elapsed = started.elapsed();
    let mut hop = Hop {
        server: server.to_owned(),
        address: addr,
        question: format!("{} {}", query.qtype, query.name),
        recursion_desired: query.recursion == Recursion::Recursive,
        transport: transport.to_owned(),
        rcode: None,
        authoritative: false,
        recursion_available: false,
        answer: String::new(),
        records: Vec::new(),
        elapsed_us: micros(elapsed),
        error: None,
    };
    match result {
        Ok((bytes, resolution)) => {
            if let Ok(msg) = Message::from_vec(&bytes) {
                hop.rcode = Some(rcode_name(u16::from(msg.metadata.response_code)).into_owned());
                hop.authoritative = msg.metadata.authoritative;
                hop.recursion_available = msg.metadata.recursion_available;
                hop.records = records(&msg);
            }
            hop.answer = meaning(&query.name, query.qtype, &resolution.outcome);
            (hop, Some(resolution))
        }
        Err(e) => {
            let why = match e {
                DnsUpstreamError::Timeout => {
                    format!("no answer within {}", seconds(timeout))
                }
                e => e.to_string(),
            };
            hop.answer = format!("failed: {why}");
            hop.error = Some(why);
            (hop, None)
        }
    }
}

/// A duration as the command line gives it: `2 s`, `0.3 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Every record of the message that the model knows, by section.
fn records(msg: &Message) -> Vec<RecordView> {
    let sections = [
        ("answer", &msg.answers),
        ("authority", &msg.authorities),
        ("additional", &msg.additionals),
    ];
    sections
        .into_iter()
        .flat_map(|(section, records)| {
            records
                .iter()
                .filter_map(model_record)
                .map(move |r| record_view(section, &r))
        })
        .collect()
}

/// A record as the trace (and the web view) shows it, in `section`.
pub fn record_view(section: &str, r: &Record) -> RecordView {
    let (rtype, data): (std::borrow::Cow<'static, str>, String) = match &r.data {
        RData::A(ip) => ("A".into(), ip.to_string()),
        RData::Aaaa(ip) => ("AAAA".into(), ip.to_string()),
        RData::Cname(n) => ("CNAME".into(), format!("{n}.")),
        RData::Ns(n) => ("NS".into(), format!("{n}.")),
        RData::Soa(s) => (
            "SOA".into(),
            format!(
                "{}. {}. {} {} {} {} {}",
                s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
            ),
        ),
        RData::Srv(s) => (
            "SRV".into(),
            format!("{} {} {} {}.", s.priority, s.weight, s.port, s.target),
        ),
        RData::Ptr(n) => ("PTR".into(), format!("{n}.")),
        RData::Mx(mx) => ("MX".into(), format!("{} {}.", mx.preference, mx.exchange)),
        RData::Other(o) => (o.0.record_type().to_string().into(), o.0.to_string()),
    };
    RecordView {
        section: section.to_owned(),
        name: format!("{}.", r.name),
        ttl: r.ttl,
        rtype: rtype.into(),
        data,
    }
}

/// What an answer means, in words.
fn meaning(name: &Name, qtype: QType, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answer(records) => {
            let ips: Vec<String> = records
                .iter()
                .filter_map(|r| r.data.ip())
                .map(|ip| ip.to_string())
                .collect();
            // Records that are neither the alias nor an address (NS, SOA, SRV), as
            // `TYPE data`.
            let others: Vec<String> = records
                .iter()
                .filter(|r| r.data.ip().is_none() && !matches!(r.data, RData::Cname(_)))
                .map(|r| {
                    let view = record_view("answer", r);
                    format!("{} {}", view.rtype, view.data)
                })
                .collect();
            let alias = records.iter().find_map(|r| match &r.data {
                RData::Cname(target) => Some(target),
                _ => None,
            });
            let what = match (ips.is_empty(), others.is_empty()) {
                (false, _) => ips.join(", "),
                (true, false) => others.join(", "),
                (true, true) => String::new(),
            };
            match alias {
                Some(target) if what.is_empty() => {
                    format!("answer: {name} is {target} (CNAME, the www. rule)")
                }
                Some(target) => {
                    format!("answer: {name} is {target} (CNAME, the www. rule), which is {what}")
                }
                None if ips.is_empty() => format!("answer: {name} {what}"),
                None => format!("answer: {name} is {what}"),
            }
        }
        Outcome::NoData(soa) => format!(
            "NODATA: {name} has no {qtype} record (the zone {}, remember for {} s)",
            zone_of(soa),
            minimum(soa)
        ),
        Outcome::NxDomain(soa) => format!(
            "NXDOMAIN: no such name (the zone {}, remember for {} s)",
            zone_of(soa),
            minimum(soa)
        ),
        Outcome::Referral(r) => referral_text(r),
        Outcome::ServFail => "SERVFAIL: the server could not get an answer".to_owned(),
        Outcome::Refused => "REFUSED: not this server's business".to_owned(),
    }
}

fn referral_text(r: &Referral) -> String {
    match r.addr() {
        Some(addr) => format!("referral: {} is at {} {addr}", r.zone, r.ns_name()),
        None => format!(
            "referral: {} is at {} (no address given)",
            r.zone,
            r.ns_name()
        ),
    }
}

fn zone_of(soa: &Record) -> String {
    if soa.name.is_root() {
        ".".to_owned()
    } else {
        format!("{}.", soa.name)
    }
}

fn minimum(soa: &Record) -> u32 {
    match &soa.data {
        RData::Soa(s) => s.minimum.min(soa.ttl),
        _ => soa.ttl,
    }
}

/// ANSI styles, or nothing.
struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn step(&self, n: usize) -> String {
        self.wrap("1", &format!("{n}."))
    }
    fn server(&self, s: &str) -> String {
        self.wrap("36", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    /// An answer's text: green for an answer or a referral, yellow for a negative one,
    /// red for a failure.
    fn answer(&self, hop: &Hop) -> String {
        let code = match hop.rcode.as_deref() {
            None | Some("SERVFAIL") => "31",
            Some("NOERROR") if !hop.answer.starts_with("NODATA") => "32",
            _ => "33",
        };
        self.wrap(code, &hop.answer)
    }
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// The trace as text: numbered steps with arrows, each answer's records under it.
pub fn render(trace: &Trace, color: bool) -> String {
    let p = Paint(color);
    let mut s = String::new();
    let how = match trace.mode.as_str() {
        "R" => "mode R: the root resolves it for you",
        _ => "mode I: you ask each server yourself",
    };
    let _ = writeln!(s, "trace {} {}, {how}", trace.qtype, trace.name);
    let mut step = 0;
    let mut next = || {
        step += 1;
        step
    };
    let question = |s: &mut String, n: usize, hop: &Hop, note: &str| {
        let rd = if hop.recursion_desired {
            "recursion desired"
        } else {
            "no recursion"
        };
        let _ = writeln!(
            s,
            "{} you -> {} {}   {}? ({rd}{note})",
            p.step(n),
            p.server(&hop.server),
            hop.address,
            hop.question
        );
    };
    let answer = |s: &mut String, n: usize, hop: &Hop| {
        let mut flags = Vec::new();
        if hop.authoritative {
            flags.push("authoritative");
        }
        if hop.recursion_available && hop.recursion_desired {
            flags.push("recursion available");
        }
        if hop.transport != "udp" {
            flags.push("truncated over UDP, asked again over TCP");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(", {}", flags.join(", "))
        };
        let arrow = if hop.error.is_some() { "-x" } else { "->" };
        let _ = writeln!(
            s,
            "{} {} {arrow} you   {}{flags} {}",
            p.step(n),
            p.server(&hop.server),
            p.answer(hop),
            p.dim(&format!("({})", ms(hop.elapsed_us)))
        );
        for r in &hop.records {
            let _ = writeln!(
                s,
                "       {:<10} {} {} {} {}",
                r.section, r.name, r.ttl, r.rtype, r.data
            );
        }
    };
    match trace.mode.as_str() {
        "R" => {
            let Some(hop) = trace.hops.first() else {
                return s;
            };
            question(&mut s, next(), hop, "");
            if let Some(via) = &trace.via {
                let probe_step = 5;
                let _ = writeln!(
                    s,
                    "   {} {} -> {} {}   {}?   (the root asks for you; not seen from here: \
                     which server, from step {probe_step})",
                    p.step(next()),
                    p.server("root"),
                    p.server(&via.tld),
                    via.address,
                    hop.question
                );
                let what = match hop.rcode.as_deref() {
                    Some("SERVFAIL") => "no usable answer in time: the root gives up",
                    None => "unknown",
                    _ => "its answer, which the root passes on",
                };
                let _ = writeln!(
                    s,
                    "   {} {} -> {}   ({what})",
                    p.step(next()),
                    p.server(&via.tld),
                    p.server("root")
                );
            } else if hop.rcode.as_deref() == Some("NXDOMAIN") && hop.authoritative {
                let _ = writeln!(s, "   (the root asks no one: it knows no such TLD)");
            } else {
                let _ = writeln!(s, "   (which TLD server the root asked is not known)");
            }
            answer(&mut s, next(), hop);
            if let Some(probe) = trace.hops.get(1) {
                question(&mut s, next(), probe, ": which server did the root ask?");
                answer(&mut s, next(), probe);
            }
        }
        _ => {
            for hop in &trace.hops {
                question(&mut s, next(), hop, "");
                answer(&mut s, next(), hop);
            }
        }
    }
    let total = p.dim(&ms(trace.elapsed_us));
    let servers = trace.hops.len();
    let asked = if servers == 1 {
        "1 query".to_owned()
    } else {
        format!("{servers} queries")
    };
    let result = match trace.rcode.as_str() {
        "NOERROR" if !trace.addresses.is_empty() => {
            let ips: Vec<String> = trace.addresses.iter().map(|ip| ip.to_string()).collect();
            format!("{} is {}", trace.name, ips.join(", "))
        }
        "FAILED" => p.wrap("31", "failed: a server gave no answer"),
        "NOERROR" => {
            // What the answer held, as the main hop's answer section shows it.
            let mode = trace.mode.parse().unwrap_or(DEFAULT_MODE);
            let main = main_hop(mode, &trace.hops);
            let found: Vec<String> = main
                .map(|h| &h.records[..])
                .unwrap_or_default()
                .iter()
                .filter(|r| r.section == "answer" && r.rtype == trace.qtype)
                .map(|r| r.data.clone())
                .collect();
            if found.is_empty() {
                format!("NOERROR: {} has no {} record", trace.name, trace.qtype)
            } else {
                format!("{} {} {}", trace.name, trace.qtype, found.join(", "))
            }
        }
        rcode => format!("{rcode}: {} has no address", trace.name),
    };
    let _ = writeln!(s, "result: {result} ({asked}, {total} in all)");
    s
}
