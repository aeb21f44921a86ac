//! The root's resolver: which TLD server answers for a name, asked (R) or referred to
//! (I).

use std::sync::Arc;
use std::time::Instant;

use std::net::IpAddr;

use super::authority::{Authoritative, ZoneSnapshot};
use super::final_answer;
use super::inflight::Resolve;
use super::upstream::Upstream;
use crate::model::{Outcome, Query, Recursion, Resolution};
use crate::ops::metrics::ServerMetrics;
use crate::ops::reload::Swap;
use crate::zone::build::root_zone;
use crate::zone::{Authority, RootTable};

/// The root: which TLD server answers for a name, asked (R) or referred to (I). It is
/// authoritative for `.`: a TLD its table does not list does not exist.
///
/// It answers from the root zone its table maps to ([`root_zone`]): `. NS ns.root`
/// (the SOA's MNAME, RFC 1034 4.2.1) with `ns.root`'s address (the root's own, when it
/// is bound to one a client can reach) as glue, so that `dig +trace` and a resolver's
/// priming find it; and a delegation to each TLD. The TLD server answers a recursive
/// question below a delegation.
#[derive(Debug)]
pub struct RootResolver {
    table: Swap<RootTable>,
    /// The root zone the table maps to, swapped with it.
    zone: Authoritative,
    /// The root's own address: `ns.root`'s.
    own: Option<IpAddr>,
    upstream: Upstream,
    metrics: ServerMetrics,
}

impl RootResolver {
    pub fn new(table: RootTable, upstream: Upstream) -> RootResolver {
        RootResolver {
            zone: Authoritative::new(Authority::single(root_zone(&table, None))),
            table: Swap::new(table),
            own: None,
            upstream,
            metrics: ServerMetrics::DISABLED,
        }
    }

    /// Publishes `own` as the address of `ns.root`, the root's name server.
    pub fn with_address(mut self, own: IpAddr) -> RootResolver {
        self.own = Some(own);
        self.zone
            .replace(Authority::single(root_zone(&self.table.load(), self.own)));
        self
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

    /// Swaps in a new table (a reload): queries that follow use it. The root zone's
    /// serial stays if its records are the same, and is newer if not; returns whether
    /// it changed.
    pub fn replace_table(&self, table: RootTable) -> bool {
        let changed = !self
            .zone
            .replace(Authority::single(root_zone(&table, self.own)))
            .is_empty();
        self.table.store(table);
        changed
    }

    /// The root zone as it is now, whole, as a zone transfer sends it (always there:
    /// the root's authority holds the root zone).
    pub fn snapshot(&self) -> Option<ZoneSnapshot> {
        self.zone.snapshot("")
    }

    /// Answers `query`: from the root zone, or (mode R) through the TLD server.
    pub fn resolve(&self, query: &Query) -> Resolution {
        self.at_once(query)
            .unwrap_or_else(|| self.through_upstream(query, Instant::now()))
    }

    /// The way upstream, and what it remembers of each TLD server.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }
}

/// The most referrals a recursive question follows below a TLD server.
const MAX_REFERRALS: usize = 4;

/// Everything from the root zone at once, but a recursive question below a delegation,
/// which the TLD server answers (or refers on from, to a zone below its own).
impl Resolve for RootResolver {
    fn at_once(&self, query: &Query) -> Option<Resolution> {
        let found = self.zone.resolve(query);
        match (&found.outcome, query.recursion) {
            (Outcome::Referral(_), Recursion::Recursive) => None,
            _ => Some(found),
        }
    }

    fn through_upstream(&self, query: &Query, arrived: Instant) -> Resolution {
        // The zone may have changed since `at_once` (a reload): look again.
        let found = self.zone.resolve(query);
        let Outcome::Referral(referral) = &found.outcome else {
            return found;
        };
        let Some(addr) = referral.addr() else {
            return Resolution::new(Outcome::ServFail);
        };
        let deadline = self.upstream.deadline_after(arrived);
        let mut addr = addr;
        let mut zone = referral.zone.clone();
        let mut answered = self.upstream.ask(addr, query, deadline);
        // A TLD server may refer further down (a second-level zone on a server of its
        // own): followed, each to a zone strictly below the last that holds the name.
        for _ in 0..MAX_REFERRALS {
            let next = match &answered {
                Ok(r) => match &r.outcome {
                    Outcome::Referral(next)
                        if next.zone != zone
                            && next.zone.is_within(zone.as_str())
                            && query.name.is_within(next.zone.as_str()) =>
                    {
                        next.clone()
                    }
                    _ => break,
                },
                Err(_) => break,
            };
            let Some(next_addr) = next.addr() else { break };
            addr = next_addr;
            zone = next.zone;
            answered = self.upstream.ask(addr, query, deadline);
        }
        let answered = answered.and_then(|r| final_answer(addr, r.outcome));
        match answered {
            Ok(outcome) => Resolution::new(outcome),
            Err(e) => {
                log::log!(e.log_level(), "{}: {e}", query.name);
                self.metrics.upstream_failure(&e);
                Resolution::new(Outcome::ServFail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::Name;
    use crate::model::{QType, RData};
    use crate::resolve::tests::data;
    use crate::resolve::upstream::{Ask, UpstreamError};
    use crate::resolve::ROOT_NS;
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
