//! Resolution, apart from any wire format: what the local server and the root do with a
//! request, as typed values in and out. The line protocol's handlers in [`crate::roles`]
//! call these; a future RFC 1035 front end would call the same.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::cache::Cache;
use crate::logs::LogDir;
use crate::name::Name;
use crate::protocol::{Code, Mode, Referral, Reply, Request};
use crate::upstream::{Upstream, UpstreamError};
use crate::zone::{RootTable, Zone};

/// The outcome of a query at the local server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// From the cache (`0X00`).
    Cached(IpAddr),
    /// Learned from the hierarchy (`0X01`).
    Resolved(IpAddr),
    /// The hierarchy says no such host (`0XFF`).
    NotFound,
    /// An upstream could not be reached, timed out or answered nonsense (`0XFE`).
    Failure,
}

impl Answer {
    pub fn to_reply(&self, server: &str) -> Reply {
        match self {
            Answer::Cached(ip) => Reply::address(Code::Cached, server, *ip),
            Answer::Resolved(ip) => Reply::address(Code::Resolved, server, *ip),
            Answer::NotFound => Reply::not_found(server),
            Answer::Failure => Reply::failure(server),
        }
    }
}

/// The local server's resolver: its cache, then the root (mode R) or the root and then
/// the TLD server it refers to (mode I).
#[derive(Debug)]
pub struct LocalResolver {
    cache: Cache,
    root: SocketAddr,
    upstream: Upstream,
    logs: Option<Arc<LogDir>>,
}

impl LocalResolver {
    /// `logs`, when given, receives each learned mapping (`mapping.log`) before the
    /// answer is returned.
    pub fn new(
        cache: Cache,
        root: SocketAddr,
        upstream: Upstream,
        logs: Option<Arc<LogDir>>,
    ) -> LocalResolver {
        LocalResolver {
            cache,
            root,
            upstream,
            logs,
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Answers `request`. No lock is held while an upstream is asked.
    pub fn resolve(&self, request: &Request) -> Answer {
        if let Some(ip) = self.cache.get(&request.name, Instant::now()) {
            return Answer::Cached(ip);
        }
        let outcome = match request.mode {
            Mode::Recursive => self.recursive(request),
            Mode::Iterative => self.iterative(request),
        };
        match outcome {
            Ok(Some(ip)) => self.learn(&request.name, ip),
            Ok(None) => Answer::NotFound,
            Err(e) => {
                log::warn!("{}: {e}", request.name);
                Answer::Failure
            }
        }
    }

    fn learn(&self, name: &Name, ip: IpAddr) -> Answer {
        if let Some(logs) = &self.logs {
            if let Err(e) = logs.record_mapping(name, ip) {
                log::error!("cannot write mapping.log in {}: {e}", logs.dir().display());
                return Answer::Failure;
            }
        }
        self.cache.insert(name, ip, Instant::now());
        Answer::Resolved(ip)
    }

    /// Mode R: the root asks the TLD server and hands back the answer.
    fn recursive(&self, request: &Request) -> Result<Option<IpAddr>, UpstreamError> {
        let reply = self.upstream.ask(self.root, request)?;
        address_or_not_found(self.root, &reply)
    }

    /// Mode I: the root refers us to the TLD server, which we ask ourselves. Both
    /// questions share one upstream timeout, so a client waits no longer than in mode R.
    fn iterative(&self, request: &Request) -> Result<Option<IpAddr>, UpstreamError> {
        let deadline = Instant::now() + self.upstream.timeout();
        let reply = self.upstream.ask_until(self.root, request, deadline)?;
        match reply.code {
            Code::Referral => {}
            Code::NotFound => return Ok(None),
            _ => return Err(unexpected(self.root, &reply)),
        }
        let referral: Referral = reply
            .text
            .parse()
            .map_err(|e| UpstreamError::Garbage(self.root, e, reply.to_string()))?;
        if referral.tld != request.name.tld() {
            return Err(unexpected(self.root, &reply));
        }
        let reply = self.upstream.ask_until(referral.addr, request, deadline)?;
        address_or_not_found(referral.addr, &reply)
    }
}

/// `0X01` with an address, or `0XFF`; anything else is the upstream's failure.
fn address_or_not_found(from: SocketAddr, reply: &Reply) -> Result<Option<IpAddr>, UpstreamError> {
    match reply.code {
        Code::Resolved => reply.ip().map(Some).ok_or_else(|| unexpected(from, reply)),
        Code::NotFound => Ok(None),
        _ => Err(unexpected(from, reply)),
    }
}

fn unexpected(from: SocketAddr, reply: &Reply) -> UpstreamError {
    UpstreamError::Unexpected(from, reply.to_string())
}

/// The outcome of a query at the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootAnswer {
    /// Mode R: the TLD server's answer (`0X01`).
    Resolved(IpAddr),
    /// Mode I: ask this TLD server (`0X02`).
    Referral(Referral),
    /// No such host, or a TLD the table does not list (`0XFF`).
    NotFound,
    /// The TLD server failed (`0XFE`).
    Failure,
}

impl RootAnswer {
    pub fn to_reply(&self, server: &str) -> Reply {
        match self {
            RootAnswer::Resolved(ip) => Reply::address(Code::Resolved, server, *ip),
            RootAnswer::Referral(r) => Reply::referral(server, r),
            RootAnswer::NotFound => Reply::not_found(server),
            RootAnswer::Failure => Reply::failure(server),
        }
    }
}

/// The root: which TLD server answers for a name, asked (R) or referred to (I).
#[derive(Debug)]
pub struct RootResolver {
    table: RootTable,
    upstream: Upstream,
}

impl RootResolver {
    pub fn new(table: RootTable, upstream: Upstream) -> RootResolver {
        RootResolver { table, upstream }
    }

    pub fn table(&self) -> &RootTable {
        &self.table
    }

    pub fn resolve(&self, request: &Request) -> RootAnswer {
        let tld = request.name.tld();
        let Some(addr) = self.table.lookup(tld) else {
            return RootAnswer::NotFound;
        };
        match request.mode {
            Mode::Iterative => RootAnswer::Referral(Referral {
                tld: tld.to_owned(),
                addr,
            }),
            Mode::Recursive => match self
                .upstream
                .ask(addr, request)
                .and_then(|reply| address_or_not_found(addr, &reply))
            {
                Ok(Some(ip)) => RootAnswer::Resolved(ip),
                Ok(None) => RootAnswer::NotFound,
                Err(e) => {
                    log::warn!("{}: {e}", request.name);
                    RootAnswer::Failure
                }
            },
        }
    }
}

/// A TLD server's answer: authoritative for names under its TLD.
pub fn tld_lookup(tld: &str, zone: &Zone, name: &Name) -> Option<IpAddr> {
    if name.tld() != tld {
        return None;
    }
    zone.lookup(name)
}
