//! The root's resolver: which TLD server answers for a name, asked (R) or referred to
//! (I).

use std::sync::Arc;
use std::time::Instant;

use super::inflight::Resolve;
use super::upstream::Upstream;
use super::{final_answer, synthesized_soa, ROOT_NS};
use crate::model::name::Name;
use crate::model::{
    Outcome, QType, Query, RData, Record, Recursion, Referral, Resolution, DEFAULT_TTL,
};
use crate::ops::metrics::ServerMetrics;
use crate::ops::reload::Swap;
use crate::zone::{RootTable, DEFAULT_NEGATIVE_TTL};

/// The root: which TLD server answers for a name, asked (R) or referred to (I). It is
/// authoritative for `.`: a TLD its table does not list does not exist.
///
/// Its apex has an SOA and an NS, both naming `ns.root.` (the SOA's MNAME), as every
/// zone's apex must (RFC 1034 4.2.1) and as zone checkers ask. The root does not know
/// the address it is reached at, and `root` is no TLD of its table, so `ns.root` has
/// no address record: a checker is given the server's address (`ns.root/127.0.0.1`).
#[derive(Debug)]
pub struct RootResolver {
    table: Swap<RootTable>,
    upstream: Upstream,
    soa: Record,
    metrics: ServerMetrics,
}

impl RootResolver {
    pub fn new(table: RootTable, upstream: Upstream) -> RootResolver {
        RootResolver {
            table: Swap::new(table),
            upstream,
            soa: synthesized_soa(&Name::from_wire(""), DEFAULT_NEGATIVE_TTL),
            metrics: ServerMetrics::DISABLED,
        }
    }

    /// Records the failures of TLD servers in `metrics`.
    pub fn with_metrics(mut self, metrics: ServerMetrics) -> RootResolver {
        self.metrics = metrics;
        self
    }

    /// The table queries read now.
    pub fn table(&self) -> Arc<RootTable> {
        self.table.load()
    }

    /// Swaps in a new table (a reload): queries that follow use it.
    pub fn replace_table(&self, table: RootTable) {
        self.table.store(table);
    }

    /// Answers `query`: from the table, or (mode R) through the TLD server.
    pub fn resolve(&self, query: &Query) -> Resolution {
        self.at_once(query)
            .unwrap_or_else(|| self.through_upstream(query, Instant::now()))
    }

    /// The way upstream, and what it remembers of each TLD server.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }
}

/// Everything from the table at once, but a recursive question under a TLD it knows,
/// which the TLD server answers.
impl Resolve for RootResolver {
    fn at_once(&self, query: &Query) -> Option<Resolution> {
        if query.name.is_root() {
            let ns = Record::new(
                query.name.clone(),
                DEFAULT_TTL,
                RData::Ns(Name::from_wire(ROOT_NS)),
            );
            return Some(Resolution::authoritative(match query.qtype {
                QType::Soa => Outcome::Answer(vec![self.soa.clone()]),
                QType::Ns => Outcome::Answer(vec![ns]),
                QType::Any => Outcome::Answer(vec![self.soa.clone(), ns]),
                _ => Outcome::NoData(self.soa.clone()),
            }));
        }
        let tld = query.name.tld();
        let Some(addr) = self.table.read().lookup(tld) else {
            return Some(Resolution::authoritative(Outcome::NxDomain(
                self.soa.clone(),
            )));
        };
        match query.recursion {
            Recursion::Iterative | Recursion::CacheOnly => Some(Resolution::new(
                Outcome::Referral(Referral::new(Name::from_wire(tld), addr, DEFAULT_TTL)),
            )),
            Recursion::Recursive => None,
        }
    }

    fn through_upstream(&self, query: &Query, arrived: Instant) -> Resolution {
        // The table may have changed since `at_once` (a reload): read it again.
        let Some(addr) = self.table.read().lookup(query.name.tld()) else {
            return Resolution::authoritative(Outcome::NxDomain(self.soa.clone()));
        };
        let deadline = self.upstream.deadline_after(arrived);
        let answered = self
            .upstream
            .ask(addr, query, deadline)
            .and_then(|r| final_answer(addr, r.outcome));
        match answered {
            Ok(outcome) => Resolution::new(outcome),
            Err(e) => {
                log::warn!("{}: {e}", query.name);
                self.metrics.upstream_failure(&e);
                Resolution::new(Outcome::ServFail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::tests::data;
    use crate::resolve::upstream::{Ask, UpstreamError};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    /// An upstream that is never reached.
    #[derive(Debug)]
    struct Unreachable;

    impl Ask for Unreachable {
        fn ask(
            &self,
            addr: SocketAddr,
            _: &Query,
            _: Instant,
        ) -> Result<Resolution, UpstreamError> {
            Err(UpstreamError::Timeout(addr))
        }
    }

    #[test]
    fn root_apex_has_an_ns_and_an_soa() {
        // dnsviz and Zonemaster ask the apex NS of the zone they probe; `.` had none.
        let root = RootResolver::new(
            RootTable::default(),
            Upstream::new(Arc::new(Unreachable), Duration::from_secs(1)),
        );
        let ask = |qtype| {
            root.resolve(&Query::new(
                Name::from_wire(""),
                qtype,
                Recursion::Iterative,
            ))
        };
        let ns = ask(QType::Ns);
        assert!(ns.authoritative);
        assert_eq!(data(&ns), [" Ns(Name(\"ns.root\"))"]);
        let soa = ask(QType::Soa);
        assert!(matches!(&soa.outcome, Outcome::Answer(r)
            if matches!(&r[0].data, RData::Soa(s) if s.mname.as_str() == ROOT_NS)));
        assert_eq!(data(&ask(QType::Any)).len(), 2);
        assert!(matches!(ask(QType::A).outcome, Outcome::NoData(_)));
    }
}
