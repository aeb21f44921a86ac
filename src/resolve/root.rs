//! The root's resolver: which TLD server answers for a name, asked (R) or referred to
//! (I).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::inflight::Resolve;
use super::upstream::Upstream;
use super::{final_answer, soa_serial, synthesized_soa, with_serial, ZoneRecords, ROOT_NS};
use crate::dns::xfr::next_serial;
use crate::model::name::Name;
use crate::model::{
    Outcome, QType, Query, RData, Record, Recursion, Referral, Resolution, Srv, DEFAULT_TTL,
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
    /// The apex SOA: its serial is the table's load time, newer when a reload changes
    /// the table ([`next_serial`]).
    soa: Swap<Record>,
    metrics: ServerMetrics,
}

impl RootResolver {
    pub fn new(table: RootTable, upstream: Upstream) -> RootResolver {
        RootResolver {
            table: Swap::new(table),
            upstream,
            soa: Swap::new(root_soa(next_serial(None, true, SystemTime::now()))),
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

    /// Swaps in a new table (a reload): queries that follow use it. The SOA's serial
    /// stays if the table is the same, and is newer if not; returns whether it changed.
    pub fn replace_table(&self, table: RootTable) -> bool {
        let changed = *self.table.load() != table;
        let serial = next_serial(
            Some(soa_serial(&self.soa.load())),
            changed,
            SystemTime::now(),
        );
        self.table.store(table);
        self.soa.store(root_soa(serial));
        changed
    }

    /// The apex SOA.
    fn soa(&self) -> Record {
        Record::clone(&self.soa.read())
    }

    /// The root zone as it is now, whole, as a zone transfer sends it.
    pub fn snapshot(&self) -> RootSnapshot {
        RootSnapshot {
            table: self.table.load(),
            soa: self.soa.load(),
        }
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

/// The root's SOA with serial `serial`.
fn root_soa(serial: u32) -> Record {
    with_serial(
        synthesized_soa(&Name::from_wire(""), DEFAULT_NEGATIVE_TTL),
        serial,
    )
}

/// The root zone at one moment: its apex, and a delegation per TLD of its table.
pub struct RootSnapshot {
    table: Arc<RootTable>,
    soa: Arc<Record>,
}

impl ZoneRecords for RootSnapshot {
    fn soa_record(&self) -> &Record {
        &self.soa
    }

    /// The SOA, the apex NS, then for each TLD (in order) what its referral holds: its
    /// NS, the address of that server and the SRV record with its port.
    fn all_records(&self) -> Box<dyn Iterator<Item = Record> + '_> {
        let apex = [
            Record::clone(&self.soa),
            Record::new(
                Name::from_wire(""),
                DEFAULT_TTL,
                RData::Ns(Name::from_wire(ROOT_NS)),
            ),
        ];
        let delegations = self.table.iter().flat_map(|(tld, addr)| {
            let referral = Referral::new(Name::from_wire(tld), addr, DEFAULT_TTL);
            let ns = referral.ns_name();
            [
                Record::new(referral.zone.clone(), DEFAULT_TTL, RData::Ns(ns.clone())),
                Record::new(ns.clone(), DEFAULT_TTL, RData::address(addr.ip())),
                Record::new(
                    referral.srv_name(),
                    DEFAULT_TTL,
                    RData::Srv(Srv {
                        priority: 0,
                        weight: 0,
                        port: addr.port(),
                        target: ns,
                    }),
                ),
            ]
        });
        Box::new(apex.into_iter().chain(delegations))
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
                QType::Soa => Outcome::Answer(vec![self.soa()]),
                QType::Ns => Outcome::Answer(vec![ns]),
                QType::Any => Outcome::Answer(vec![self.soa(), ns]),
                _ => Outcome::NoData(self.soa()),
            }));
        }
        let tld = query.name.tld();
        let Some(addr) = self.table.read().lookup(tld) else {
            return Some(Resolution::authoritative(Outcome::NxDomain(self.soa())));
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
            return Resolution::authoritative(Outcome::NxDomain(self.soa()));
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

    /// The root zone a transfer sends: the apex, then each TLD's referral as records;
    /// its serial newer after a reload that changes the table, and only then.
    #[test]
    fn root_snapshot_lists_each_delegation_and_its_serial_follows_the_table() {
        let table = |text: &str| {
            RootTable::parse(
                std::path::Path::new("root.dat"),
                text,
                crate::zone::Format::Legacy,
            )
            .unwrap()
        };
        let root = RootResolver::new(
            table("org 127.0.0.1 5679\ncom 127.0.0.1 5678\n"),
            Upstream::new(Arc::new(Unreachable), Duration::from_secs(1)),
        );
        let listed = |root: &RootResolver| -> Vec<String> {
            root.snapshot()
                .all_records()
                .map(|r| format!("{} {:?}", r.name, r.data))
                .collect()
        };
        let first = listed(&root);
        assert_eq!(
            first[1..],
            [
                " Ns(Name(\"ns.root\"))",
                "com Ns(Name(\"ns.com\"))",
                "ns.com A(127.0.0.1)",
                "_dns._tcp.com Srv(Srv { priority: 0, weight: 0, port: 5678, target: Name(\"ns.com\") })",
                "org Ns(Name(\"ns.org\"))",
                "ns.org A(127.0.0.1)",
                "_dns._tcp.org Srv(Srv { priority: 0, weight: 0, port: 5679, target: Name(\"ns.org\") })",
            ]
        );
        let serial = |root: &RootResolver| soa_serial(root.snapshot().soa_record());
        let before = serial(&root);
        assert!(!root.replace_table(table("com 127.0.0.1 5678\norg 127.0.0.1 5679\n")));
        assert_eq!(serial(&root), before);
        assert!(root.replace_table(table("com 127.0.0.1 5678\n")));
        assert!(crate::dns::xfr::serial_newer(serial(&root), before));
        assert_eq!(listed(&root).len(), 5);
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
