//! Asking another server, whichever protocol carries the question.
//!
//! The resolvers ask through an [`Upstream`]: a question, an address and a deadline in,
//! a [`Resolution`] (or an [`UpstreamError`] naming the upstream) out. What carries the
//! question is chosen once, at start ([`UpstreamProtocol`]): an [`Ask`] given to the
//! resolver, written beside its protocol (the line protocol's pooled client, DNS's
//! exchange) and put together where the roles are wired. Nothing here knows either
//! protocol.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::infra::Infra;
use crate::model::name::Name;
use crate::model::{QType, Query, Resolution};
use crate::net::is_timeout;

/// How long asking an upstream may take (connect, write, read), unless
/// `--upstream-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How much of an upstream timeout is kept back for the reply: a twentieth, at most
/// 100 ms. (On a loaded 2-core machine a thread waiting on a socket was seen woken up to
/// 40 ms after its read timeout.)
pub fn reply_margin(timeout: Duration) -> Duration {
    (timeout / 20).min(Duration::from_millis(100))
}

/// One way of asking another server a question.
pub trait Ask: Send + Sync + fmt::Debug {
    /// Asks `addr` the query, within `deadline`.
    fn ask(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError>;
}

/// Which protocol a server asks its upstreams in, chosen at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// The line protocol for the line protocol's own question (a name's address, which
    /// only it can ask) and DNS for typed questions: every hop then carries what the
    /// asker asked (the tag and the first address of a line; TTLs, NXDOMAIN versus
    /// NODATA and the SOA of DNS).
    #[default]
    Both,
    /// Every question as a line (typed questions other than an address cannot be).
    Line,
    /// Every question as a DNS message (a name's address asked as A).
    Dns,
}

impl UpstreamProtocol {
    /// The asker this choice stands for, from the two protocols' own.
    pub fn asker(self, line: Arc<dyn Ask>, dns: Arc<dyn Ask>) -> Arc<dyn Ask> {
        match self {
            UpstreamProtocol::Both => Arc::new(ByQuestion {
                address: line,
                typed: dns,
            }),
            UpstreamProtocol::Line => line,
            UpstreamProtocol::Dns => dns,
        }
    }
}

impl std::str::FromStr for UpstreamProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<UpstreamProtocol, String> {
        match s.to_ascii_lowercase().as_str() {
            "both" => Ok(UpstreamProtocol::Both),
            "line" => Ok(UpstreamProtocol::Line),
            "dns" => Ok(UpstreamProtocol::Dns),
            _ => Err(format!(
                "{s:?} is not an upstream protocol (both, line or dns)"
            )),
        }
    }
}

impl fmt::Display for UpstreamProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamProtocol::Both => "both",
            UpstreamProtocol::Line => "line",
            UpstreamProtocol::Dns => "dns",
        })
    }
}

/// Asks the line protocol's question (a name's address) through one asker and typed
/// questions through another ([`UpstreamProtocol::Both`]).
#[derive(Debug)]
struct ByQuestion {
    address: Arc<dyn Ask>,
    typed: Arc<dyn Ask>,
}

impl Ask for ByQuestion {
    fn ask(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        if query.qtype == QType::Address {
            self.address.ask(addr, query, deadline)
        } else {
            self.typed.ask(addr, query, deadline)
        }
    }
}

/// A server's way upstream: an [`Ask`] behind the memory of every upstream asked
/// ([`Infra`]: round-trip times, and which stopped answering), and the time one
/// question may take.
#[derive(Clone, Debug)]
pub struct Upstream {
    infra: Arc<Infra>,
    timeout: Duration,
}

impl Upstream {
    pub fn new(ask: Arc<dyn Ask>, timeout: Duration) -> Upstream {
        Upstream {
            infra: Arc::new(Infra::new(ask, timeout)),
            timeout,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// What is remembered of each upstream: to ask the fastest live one of several
    /// ([`Infra::pick`], [`Infra::order`], [`Infra::state`]).
    pub fn infra(&self) -> &Infra {
        &self.infra
    }

    /// When a question asked now must be answered (the sockets' time, not a
    /// resolver's [`Clock`](crate::resolve::clock::Clock): the wait is real).
    pub fn deadline(&self) -> Instant {
        self.deadline_after(Instant::now())
    }

    /// When the upstreams of a question that arrived at `arrived` must have answered:
    /// the upstream timeout counts from its arrival, not from when a thread got round
    /// to it, and ends a little early ([`reply_margin`]) so that the SERVFAIL reaches
    /// the client within the timeout even when a loaded machine wakes the waiting
    /// thread late.
    pub fn deadline_after(&self, arrived: Instant) -> Instant {
        arrived + self.timeout - reply_margin(self.timeout)
    }

    /// Asks `addr` the query, within `deadline` (shared by the questions of one
    /// resolution: mode I asks the root, then a TLD server, within one timeout). A
    /// server that stopped answering is asked one question at a time: while one waits
    /// on it, the others fail at once ([`UpstreamError::BackedOff`]).
    pub fn ask(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        self.infra.ask(addr, query, deadline)
    }

    /// [`ask`](Self::ask), to a server that resolves the question through others (the
    /// root in mode R): its silence may be theirs, so a timeout does not back it off.
    pub fn ask_recursive(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        self.infra.ask_recursive(addr, query, deadline)
    }
}

/// Why an upstream gave no usable answer. Each names the upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, io::Error),
    #[error("{0} did not answer in time")]
    Timeout(SocketAddr),
    #[error("{0} closed the connection without a reply")]
    Closed(SocketAddr),
    #[error("{0}: {1}")]
    Io(SocketAddr, io::Error),
    /// The reply is not one of the protocol's: the protocol's own error says why.
    #[error("{0} {1}")]
    Unreadable(SocketAddr, Box<dyn std::error::Error + Send + Sync>),
    /// A well-formed reply, but not what was due.
    #[error("{0} answered with {1}")]
    Unexpected(SocketAddr, Unexpected),
    /// The question cannot be asked in the upstream's protocol.
    #[error("{0}: cannot ask {1}")]
    Unaskable(SocketAddr, String),
    /// Not asked: the upstream has not answered for `down_for`, and another question
    /// is already waiting on it ([`Infra`]).
    #[error(
        "not asking {addr}: silent for {:.1} s, and already asked once more",
        down_for.as_secs_f64()
    )]
    BackedOff {
        addr: SocketAddr,
        down_for: Duration,
    },
}

/// What an upstream answered that was not due.
#[derive(Debug, thiserror::Error)]
pub enum Unexpected {
    #[error("an answer where a referral was due")]
    Answer,
    #[error("a referral to {0} where an answer was due")]
    Referral(Name),
    #[error("a referral to {zone} for {name}")]
    ReferralOutside { zone: Name, name: Name },
    #[error("a negative answer where a referral was due")]
    Negative,
    #[error("SERVFAIL")]
    ServFail,
    #[error("REFUSED")]
    Refused,
    /// Records the server's zone does not hold (RFC 5452's bailiwick): an answer from
    /// the root for a name below a TLD, or a name outside the zone it was asked as.
    #[error("an answer for {name}, which its zone {zone}. does not hold")]
    OutOfBailiwick { name: Name, zone: Name },
    /// A negative answer whose SOA is not the asked zone's, or not above the name.
    #[error("a negative answer for {name} with the SOA of {soa}., outside its zone {zone}.")]
    SoaOutOfBailiwick { name: Name, soa: Name, zone: Name },
    /// A referral that does not lead down from the zone asked (a loop, or a way out).
    #[error("a referral to {zone}., not below its zone {asked}.")]
    ReferralNotBelow { zone: Name, asked: Name },
    /// An answer that holds no record of the type asked for the name.
    #[error("an answer without a record of the type asked for {0}")]
    NoRecordFor(Name),
    /// The resolution met more referrals than a resolver follows.
    #[error("a referral past the {0} a resolution may follow")]
    TooManyReferrals(u32),
    /// The resolution asked as many questions as a resolver asks for one.
    #[error("a referral or a CNAME past the {0} questions a resolution may ask")]
    TooManyQuestions(u32),
    /// A CNAME chain that goes on through more zones than a resolver follows, or
    /// comes back to a name already on it.
    #[error("a CNAME chain to {0} that is too long, or loops")]
    CnameChain(Name),
    /// A delegation none of whose name servers has an address that could be found.
    #[error("a referral to {0}. with no name server address that could be found")]
    NoServerAddress(Name),
    /// A reply that the protocol allows but no upstream should send (a cache hit's
    /// code from a root, say): as received.
    #[error("an unexpected reply: {0:?}")]
    Reply(String),
}

impl UpstreamError {
    /// The upstream that failed.
    pub fn upstream(&self) -> SocketAddr {
        match self {
            UpstreamError::Connect(addr, _)
            | UpstreamError::Timeout(addr)
            | UpstreamError::Closed(addr)
            | UpstreamError::Io(addr, _)
            | UpstreamError::Unreadable(addr, _)
            | UpstreamError::Unexpected(addr, _)
            | UpstreamError::Unaskable(addr, _)
            | UpstreamError::BackedOff { addr, .. } => *addr,
        }
    }

    /// An I/O error on the way to `addr`: a timeout is [`UpstreamError::Timeout`].
    pub fn io(addr: SocketAddr, e: io::Error) -> UpstreamError {
        if is_timeout(&e) {
            UpstreamError::Timeout(addr)
        } else {
            UpstreamError::Io(addr, e)
        }
    }

    /// How loudly to log a question failed this way: a question not asked because its
    /// server is down is at debug level, since the server's going down was logged once
    /// (a warning per question would be one per query while it stays down, and a full
    /// disk or a slow terminal would then hold up every query); the rest are warnings.
    pub fn log_level(&self) -> log::Level {
        match self {
            UpstreamError::BackedOff { .. } => log::Level::Debug,
            _ => log::Level::Warn,
        }
    }

    /// The kind of failure, as metrics name it: `timeout` (no answer within the
    /// deadline), `refused` (nothing listens there), `backoff` (not asked: it timed out
    /// and another question already waits on it), `error` (anything else: a connection
    /// lost, nonsense, a failure answered).
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::BackedOff { .. } => "backoff",
            UpstreamError::Connect(_, e) if is_timeout(e) => "timeout",
            UpstreamError::Connect(_, e) | UpstreamError::Io(_, e)
                if e.kind() == io::ErrorKind::ConnectionRefused =>
            {
                "refused"
            }
            _ => "error",
        }
    }
}
