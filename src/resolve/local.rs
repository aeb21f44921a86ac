//! The local server's resolver: its cache, then the root (mode R), or the servers of the
//! name's zone found by following referrals from the deepest delegation it knows (mode
//! I, [`super::iterate`]).

use std::net::SocketAddr;
use std::sync::Arc;

use super::cache::Cache;
use super::clock::{Clock, SystemClock};
use super::delegations::{self, Delegations};
use super::final_answer;
use super::iterate::Walk;
use super::upstream::{Upstream, UpstreamError};
use crate::model::{Outcome, QType, Query, Recursion, Resolution};
use crate::ops::metrics::ServerMetrics;
use crate::ops::querylog::{LogDir, Mapping};

/// The local server's resolver: its cache, then the root (mode R), or the servers of
/// the name's zone found by following referrals (mode I).
#[derive(Debug)]
pub struct LocalResolver {
    cache: Cache,
    root: SocketAddr,
    upstream: Upstream,
    /// The delegations learned from referrals; `None` when not cached (every mode I miss
    /// then starts at the root, as in the original).
    delegations: Option<Delegations>,
    /// The server's name, for log lines.
    name: String,
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
            delegations: Some(Delegations::new(delegations::DEFAULT_CAPACITY)),
            name: String::new(),
            logs,
            metrics: ServerMetrics::DISABLED,
            clock: Arc::new(SystemClock),
        }
    }

    /// Caches delegations learned from referrals (the default), or not: then every
    /// mode I miss starts at the root, so that a class can watch it asked every time.
    pub fn with_delegation_cache(mut self, cached: bool) -> LocalResolver {
        self.delegations = cached.then(|| Delegations::new(delegations::DEFAULT_CAPACITY));
        self
    }

    /// Names its log lines after `name` (the server's).
    pub fn with_name(mut self, name: &str) -> LocalResolver {
        self.name = name.to_owned();
        self
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

    /// The delegations learned, if they are cached.
    pub fn delegations(&self) -> Option<&Delegations> {
        self.delegations.as_ref()
    }

    /// Answers `query`, from the cache or through the hierarchy. No lock is held while
    /// an upstream is asked. An upstream that fails, times out or answers nonsense is
    /// SERVFAIL (never cached: the next query tries again).
    pub fn resolve(&self, query: &Query) -> Resolution {
        let hit = self.cache.get(query, self.clock.now());
        self.metrics.cache_lookup(hit.is_some());
        if let Some(hit) = hit {
            return hit;
        }
        self.resolve_uncached(query)
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
    /// recorded is not given.
    fn learn(&self, query: &Query, outcome: Outcome) -> Resolution {
        let resolution = Resolution::new(outcome);
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
        let outcome = self.upstream.ask(self.root, &asked, deadline)?.outcome;
        final_answer(self.root, outcome)
    }

    /// Mode I: from the deepest delegation known (or the root) down the referrals to
    /// the servers of the name's zone, which we ask ourselves, believing each only
    /// within its bailiwick ([`super::iterate`]). Every question shares one upstream
    /// timeout, so a client waits no longer than in mode R.
    fn iterative(&self, query: &Query) -> Result<Outcome, UpstreamError> {
        Walk::new(
            &self.upstream,
            self.root,
            self.delegations.as_ref(),
            self.clock.now(),
            self.upstream.deadline(),
        )
        .with_max_ttl(self.cache.max_ttl())
        .with_server_name(&self.name)
        .resolve(query)
    }
}
