//! The local server's resolver: its cache, then the root (mode R) or the root and then
//! the TLD server it refers to (mode I).
//!
//! The two halves are apart ([`Resolve`]): [`LocalResolver::cached`] answers from the
//! cache alone, at once, and the rest asks the hierarchy, so that a server can answer
//! hits on the threads that receive them and hand misses to
//! [`Inflight`](super::inflight::Inflight).

use std::net::SocketAddr;
use std::sync::Arc;

use super::cache::Cache;
use super::clock::{Clock, SystemClock};
use super::inflight::Resolve;
use super::upstream::{Unexpected, Upstream, UpstreamError};
use super::{final_answer, unexpected_outcome};
use crate::model::{Outcome, QType, Query, Recursion, Resolution};
use crate::ops::metrics::ServerMetrics;
use crate::ops::querylog::{LogDir, Mapping};

/// The local server's resolver: its cache, then the root (mode R) or the root and then
/// the TLD server it refers to (mode I).
#[derive(Debug)]
pub struct LocalResolver {
    cache: Cache,
    root: SocketAddr,
    upstream: Upstream,
    logs: Option<Arc<LogDir>>,
    metrics: ServerMetrics,
    clock: Arc<dyn Clock>,
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
            metrics: ServerMetrics::DISABLED,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads the time from `clock` (tests move it) rather than the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> LocalResolver {
        self.clock = clock;
        self
    }

    /// Records cache hits, misses, evictions and upstream failures in `metrics`.
    pub fn with_metrics(mut self, metrics: ServerMetrics) -> LocalResolver {
        self.metrics = metrics;
        self
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The way upstream, and what it remembers of each server.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Answers `query`, from the cache or through the hierarchy. No lock is held while
    /// an upstream is asked. An upstream that fails, times out or answers nonsense is
    /// SERVFAIL (never cached: the next query tries again).
    pub fn resolve(&self, query: &Query) -> Resolution {
        self.at_once(query)
            .unwrap_or_else(|| self.resolve_uncached(query))
    }

    /// The answer from the cache alone, if it has one, without asking anyone; counted
    /// as a cache hit or a miss.
    pub fn cached(&self, query: &Query) -> Option<Resolution> {
        let hit = self.cache.get(query, self.clock.now());
        self.metrics.cache_lookup(hit.is_some());
        hit
    }

    /// [`resolve`](Self::resolve) once the cache has no answer.
    fn resolve_uncached(&self, query: &Query) -> Resolution {
        let outcome = match query.recursion {
            Recursion::CacheOnly => return Resolution::new(Outcome::Refused),
            Recursion::Recursive => self.recursive(query),
            Recursion::Iterative => self.iterative(query),
        };
        match outcome {
            Ok(outcome) => self.learn(query, outcome),
            Err(e) => {
                log::warn!("{}: {e}", query.name);
                self.metrics.upstream_failure(&e);
                Resolution::new(Outcome::ServFail)
            }
        }
    }

    /// Records an answer in `mapping.log`, then in the cache; a mapping that cannot be
    /// recorded is not given. Its TTLs are capped (`--max-ttl`) before anyone sees it.
    fn learn(&self, query: &Query, outcome: Outcome) -> Resolution {
        let resolution = Resolution::new(self.cache.capped(outcome));
        if let (Some(logs), Some(ip)) = (&self.logs, resolution.first_ip()) {
            let ttl = match &resolution.outcome {
                Outcome::Answer(records) => records.iter().map(|r| r.ttl).min().unwrap_or(0),
                _ => 0,
            };
            let mapping = Mapping {
                name: query.name.clone(),
                addr: ip,
                learned: self.clock.wall(),
                ttl: ttl.min(self.cache.max_ttl()),
            };
            if let Err(e) = logs.record_mapping(&mapping) {
                log::error!("cannot write mapping.log in {}: {e}", logs.dir().display());
                return Resolution::new(Outcome::ServFail);
            }
        }
        // The line protocol never kept negative answers: its next query asks again.
        let negative = matches!(
            resolution.outcome,
            Outcome::NxDomain(_) | Outcome::NoData(_)
        );
        if !(negative && query.qtype == QType::Address) {
            if let Some(stored) = self
                .cache
                .insert(query, &resolution.outcome, self.clock.now())
            {
                self.metrics.cache_stored(stored.learned, stored.evicted);
            }
        }
        resolution
    }

    /// Mode R: the root asks the TLD server and hands back the answer.
    fn recursive(&self, query: &Query) -> Result<Outcome, UpstreamError> {
        let deadline = self.upstream.deadline();
        let asked = query.with_recursion(Recursion::Recursive);
        let outcome = self
            .upstream
            .ask_recursive(self.root, &asked, deadline)?
            .outcome;
        final_answer(self.root, outcome)
    }

    /// Mode I: the root refers us to the TLD server, which we ask ourselves. Both
    /// questions share one upstream timeout, so a client waits no longer than in mode R.
    fn iterative(&self, query: &Query) -> Result<Outcome, UpstreamError> {
        let deadline = self.upstream.deadline();
        let asked = query.with_recursion(Recursion::Iterative);
        let answered = self.upstream.ask(self.root, &asked, deadline)?;
        let referral = match answered.outcome {
            Outcome::Referral(r) => r,
            // The root knows the TLD does not exist.
            Outcome::NxDomain(_) => return Ok(answered.outcome),
            // The root's own zone (`.` itself, over DNS): its authoritative answer.
            outcome @ (Outcome::Answer(_) | Outcome::NoData(_)) if answered.authoritative => {
                return Ok(outcome)
            }
            other => return Err(unexpected_outcome(self.root, &other)),
        };
        if !query.name.is_within(referral.zone.as_str()) || referral.zone.is_root() {
            return Err(UpstreamError::Unexpected(
                self.root,
                Unexpected::ReferralOutside {
                    zone: referral.zone,
                    name: query.name.clone(),
                },
            ));
        }
        let outcome = self.upstream.ask(referral.addr, &asked, deadline)?.outcome;
        final_answer(referral.addr, outcome)
    }
}

/// A hit, or a question the cache alone must answer (RD clear: REFUSED), at once; the
/// rest through the hierarchy.
impl Resolve for LocalResolver {
    fn at_once(&self, query: &Query) -> Option<Resolution> {
        if let Some(hit) = self.cached(query) {
            return Some(hit);
        }
        (query.recursion == Recursion::CacheOnly).then(|| Resolution::new(Outcome::Refused))
    }

    fn through_upstream(&self, query: &Query) -> Resolution {
        self.resolve_uncached(query)
    }

    /// A question that waited for the same one's answer is answered from what that one
    /// learned, as from the cache (`0X00`): each answer learned is written to
    /// `mapping.log`, and answered `0X01`, once.
    fn joined(&self, resolution: &Resolution) -> Resolution {
        match resolution.outcome {
            Outcome::Answer(_) => Resolution {
                cached: true,
                ..resolution.clone()
            },
            _ => resolution.clone(),
        }
    }
}
