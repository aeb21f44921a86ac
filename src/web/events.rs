//! What the servers tell the web view: one event per query answered, with the questions
//! that query sent upstream (its hops), through one bounded queue per process.
//!
//! The hooks are few and cost nothing when nobody watches: every one starts with
//! [`watching`], one relaxed atomic load, and returns at once while no page or stream
//! is open. When someone watches, a query's hops are kept on its own thread (every
//! server resolves a query on the thread that has it, so the upstream questions it asks
//! are the hops of the query that thread answers next), and the answered query becomes
//! an [`Event`] put on a bounded queue without waiting. A full queue drops the event and
//! counts it ([`stats`]): a query is never slowed down to be shown. The queue is read by
//! the web server's thread ([`super::trail`]) a batch at a time, [`DRAIN_EVERY`] apart, so at
//! most [`CAPACITY`] events per [`DRAIN_EVERY`] are shown however fast queries come:
//! a person watching sees a sample of a flood, and the flood keeps its speed.
//!
//! One queue per process, as the `log` crate has one logger: events name the server
//! that answered, and the upstream each hop went to, which is what a page draws.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

use crate::dns::answer::Answered;
use crate::line::message::{Code, Reply, Request};
use crate::model::{Outcome, Query, Recursion, Resolution};
use crate::resolve::upstream::UpstreamError;

/// Events the queue holds: what the web server takes each [`DRAIN_EVERY`]. With
/// [`DRAIN_EVERY`], at most 80 events a second are shown: more than a person can
/// follow, and few enough that a page drawing them costs the machine little (it shares
/// the processors with the servers).
pub const CAPACITY: usize = 20;

/// How often the web server takes what the queue holds.
pub const DRAIN_EVERY: Duration = Duration::from_millis(250);

/// Hops kept for one query at most (a resolution asks at most 32 questions).
const MAX_HOPS: usize = 40;

static WATCHING: AtomicBool = AtomicBool::new(false);
static QUEUED: AtomicU64 = AtomicU64::new(0);
static QUEUE: OnceLock<(Sender<Event>, Receiver<Event>)> = OnceLock::new();

/// Events dropped, counted in stripes a cache line each: under a flood every query
/// drops its event, and one counter written by every thread would bounce its cache
/// line between the cores on every query.
static DROPPED: [Stripe; STRIPES] = [const { Stripe(AtomicU64::new(0)) }; STRIPES];
const STRIPES: usize = 16;

#[repr(align(128))]
struct Stripe(AtomicU64);

static NEXT_STRIPE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The hops of the query this thread is answering.
    static HOPS: RefCell<Vec<Hop>> = const { RefCell::new(Vec::new()) };
    /// This thread's stripe of [`DROPPED`].
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) as usize % STRIPES;
}

fn count_dropped() {
    let stripe = STRIPE.with(|s| *s);
    DROPPED[stripe].0.fetch_add(1, Ordering::Relaxed);
}

/// Whether anyone watches: the one check every hook makes first.
#[inline]
pub fn watching() -> bool {
    WATCHING.load(Ordering::Relaxed)
}

/// Turns the events on (someone opened a page or a stream) or off.
pub(crate) fn set_watching(on: bool) {
    WATCHING.store(on, Ordering::Relaxed);
}

fn queue() -> &'static (Sender<Event>, Receiver<Event>) {
    QUEUE.get_or_init(|| crossbeam_channel::bounded(CAPACITY))
}

/// The events waiting, for the web server's thread.
pub(crate) fn receiver() -> &'static Receiver<Event> {
    &queue().1
}

/// How many events were queued and how many dropped (the queue was full), since the
/// process started.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub queued: u64,
    pub dropped: u64,
}

pub fn stats() -> Stats {
    Stats {
        queued: QUEUED.load(Ordering::Relaxed),
        dropped: DROPPED.iter().map(|s| s.0.load(Ordering::Relaxed)).sum(),
    }
}

/// Whether an event would be dropped now: checked before one is made, so that a full
/// queue costs a query nothing but this check and a count.
fn full() -> bool {
    if queue().0.is_full() {
        count_dropped();
        HOPS.with(|hops| hops.borrow_mut().clear());
        true
    } else {
        false
    }
}

/// One query answered by one server.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Numbered by the web server as it takes them (0 until then).
    pub id: u64,
    /// When it was answered, in milliseconds since 1970.
    pub at_ms: u64,
    /// The server that answered: `default_local`, `root`, `com`...
    pub server: String,
    /// Who asked.
    pub peer: Option<SocketAddr>,
    /// `line`, `dns-udp` or `dns-tcp`.
    pub protocol: &'static str,
    /// `R` or `I` for a line (`-` for a line that is no request), `rd` or `nord` for DNS.
    pub mode: String,
    /// The name asked, lower case, without the final dot (empty when unreadable).
    pub name: String,
    /// `A`, `AAAA`... (`ADDR` for the line protocol's question).
    pub qtype: String,
    /// The line's tag.
    pub tag: Option<String>,
    /// The reply's code: `0X00`...`0XFF`, or the DNS rcode (`NOERROR`, `NXDOMAIN`...).
    pub code: String,
    /// Answered from the local server's cache.
    pub cached: bool,
    /// The reply in words: the line's text, or the DNS answer's few words.
    pub answer: String,
    pub elapsed_us: u64,
    /// The questions it sent to other servers, in order.
    pub hops: Vec<Hop>,
    /// When it was read and answered, to match it to the hop that asked it.
    #[serde(skip)]
    pub(crate) span: (Instant, Instant),
}

/// One question a server sent another while answering a query.
#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    /// The server asked.
    pub to: SocketAddr,
    /// Its name, when it is one of this process's servers (filled by the web server).
    pub server: Option<String>,
    pub name: String,
    pub qtype: String,
    /// `R` (recursion desired) or `I`.
    pub mode: &'static str,
    /// What came back, in words: `answer 142.250.72.4`, `referral to gov`, `NXDOMAIN`,
    /// or why there was no usable answer.
    pub result: String,
    /// Whether a usable answer came.
    pub ok: bool,
    pub elapsed_us: u64,
    /// The asked server's own event for it, when the web server found it.
    pub served: Option<Box<Event>>,
    #[serde(skip)]
    pub(crate) span: (Instant, Instant),
}

/// A server asked `to` the query, from `started`, and got `result` (the hook in
/// [`crate::resolve::upstream`], which reads the clock only while someone watches:
/// `started` is `None` otherwise).
pub fn upstream_hop(
    to: SocketAddr,
    query: &Query,
    result: &Result<Resolution, UpstreamError>,
    started: Option<Instant>,
) {
    // A hop whose query's event would be dropped is not worth making.
    let Some(started) = started else { return };
    if !watching() || queue().0.is_full() {
        return;
    }
    let ended = Instant::now();
    let (ok, result) = match result {
        Ok(resolution) => (true, outcome_words(&resolution.outcome)),
        Err(e) => (false, e.to_string()),
    };
    let hop = Hop {
        to,
        server: None,
        name: query.name.as_str().trim_end_matches('.').to_owned(),
        qtype: query.qtype.to_string(),
        mode: match query.recursion {
            Recursion::Recursive => "R",
            _ => "I",
        },
        result,
        ok,
        elapsed_us: micros(ended - started),
        served: None,
        span: (started, ended),
    };
    HOPS.with(|hops| {
        let mut hops = hops.borrow_mut();
        if hops.len() < MAX_HOPS {
            hops.push(hop);
        }
    });
}

/// A line-protocol request answered by `server` (the hook in [`crate::line::session`]).
pub fn line_query(
    server: &str,
    peer: Option<SocketAddr>,
    request: Option<&Request>,
    reply: &Reply,
    started: Instant,
) {
    if !watching() || full() {
        return;
    }
    let (name, mode, tag) = match request {
        Some(r) => (r.name.as_str().to_owned(), r.mode.as_str(), Some(&r.tag)),
        None => (String::new(), "-", None),
    };
    send(Event {
        server: server.to_owned(),
        peer,
        protocol: "line",
        mode: mode.to_owned(),
        name,
        qtype: "ADDR".to_owned(),
        tag: tag.cloned(),
        code: reply.code.as_str().to_owned(),
        cached: reply.code == Code::Cached,
        answer: reply.text.clone(),
        ..Event::new(started)
    });
}

/// A DNS message answered by `server` over `protocol` (`dns-udp`, `dns-tcp`; the hook
/// in [`crate::server`]).
pub fn dns_query(
    server: &str,
    peer: Option<SocketAddr>,
    protocol: &'static str,
    answered: &Answered,
    started: Instant,
) {
    if !watching() || answered.is_dropped() || full() {
        return;
    }
    let (name, qtype) = match &answered.question {
        Some(q) => (
            q.name.trim_end_matches('.').to_ascii_lowercase(),
            q.qtype.to_string(),
        ),
        None => (String::new(), String::new()),
    };
    let answer = match &answered.resolution {
        Some(resolution) => outcome_words(&resolution.outcome),
        None => answered.detail.clone(),
    };
    send(Event {
        server: server.to_owned(),
        peer,
        protocol,
        mode: if answered.rd { "rd" } else { "nord" }.to_owned(),
        name,
        qtype,
        code: answered.rcode_name().into_owned(),
        cached: answered.resolution.as_ref().is_some_and(|r| r.cached),
        answer,
        ..Event::new(started)
    });
}

impl Event {
    /// An event for a query read at `started` and answered now, with this thread's hops.
    fn new(started: Instant) -> Event {
        let ended = Instant::now();
        Event {
            id: 0,
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            server: String::new(),
            peer: None,
            protocol: "",
            mode: String::new(),
            name: String::new(),
            qtype: String::new(),
            tag: None,
            code: String::new(),
            cached: false,
            answer: String::new(),
            elapsed_us: micros(ended - started),
            // Hops from before this query (kept while a watcher came and went) are not
            // its own.
            hops: HOPS.with(|hops| {
                let mut hops = std::mem::take(&mut *hops.borrow_mut());
                hops.retain(|hop| hop.span.0 >= started);
                hops
            }),
            span: (started, ended),
        }
    }
}

fn send(event: Event) {
    match queue().0.try_send(event) {
        Ok(()) => {
            QUEUED.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => count_dropped(),
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// An outcome in a few words, as a hop's result or a DNS event's answer.
pub fn outcome_words(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answer(records) => {
            let data: Vec<String> = records
                .iter()
                .map(|r| match r.data.ip() {
                    Some(ip) => ip.to_string(),
                    None => format!("{:?}", r.data),
                })
                .take(4)
                .collect();
            format!("answer {}", data.join(" "))
        }
        Outcome::NoData(_) => "NODATA".to_owned(),
        Outcome::NxDomain(_) => "NXDOMAIN".to_owned(),
        Outcome::Referral(referral) => {
            let to = referral
                .addr()
                .map_or_else(String::new, |a| format!(" at {a}"));
            format!("referral to {}{to}", referral.zone)
        }
        Outcome::ServFail => "SERVFAIL".to_owned(),
        Outcome::Refused => "REFUSED".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::Name;
    use crate::model::{QType, RData, Record};

    #[test]
    fn nothing_is_kept_while_nobody_watches() {
        set_watching(false);
        let query = Query::new(Name::from_wire("a.com"), QType::A, Recursion::Iterative);
        let result = Ok(Resolution::new(Outcome::ServFail));
        upstream_hop(
            "127.0.0.1:1".parse().unwrap(),
            &query,
            &result,
            Some(Instant::now()),
        );
        assert!(HOPS.with(|h| h.borrow().is_empty()));
    }

    #[test]
    fn outcomes_in_words() {
        let a = Record::new(
            Name::from_wire("a.com"),
            60,
            RData::A("1.2.3.4".parse().unwrap()),
        );
        assert_eq!(outcome_words(&Outcome::Answer(vec![a])), "answer 1.2.3.4");
        let referral = crate::model::Referral::new(
            Name::from_wire("com"),
            "127.0.0.1:5678".parse().unwrap(),
            60,
        );
        assert_eq!(
            outcome_words(&Outcome::Referral(referral)),
            "referral to com at 127.0.0.1:5678"
        );
    }
}
