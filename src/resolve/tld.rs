//! A TLD server's resolver: authoritative answers for the names under one top-level
//! domain, from its zone, in constant time.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{soa_serial, synthesized_soa, with_serial, ZoneRecords};
use crate::dns::xfr::next_serial;
use crate::model::name::Name;
use crate::model::{Outcome, QType, Query, RData, Record, Resolution, DEFAULT_TTL};
use crate::ops::reload::Swap;
use crate::zone::{Addr, Zone};

/// A TLD server's answers: authoritative for the names under its TLD, from its zone,
/// in constant time.
///
/// At the apex it has an SOA and an NS (`ns.<tld>`, whose address is the server's own);
/// a name that has no record of its own but whose `www.` form has one is a CNAME to it
/// (the original's `www.` rule, as DNS shows it); other names do not exist.
#[derive(Debug)]
pub struct TldResolver {
    tld: Name,
    /// The zone and what it implies, swapped together by a reload.
    data: Swap<TldData>,
    /// The server's own address: the glue of `ns.<tld>`.
    own: IpAddr,
}

/// What a TLD server answers from: its zone, and the SOA and empty non-terminals it
/// implies.
#[derive(Debug)]
struct TldData {
    zone: Zone,
    soa: Record,
    /// Names with no records of their own (nor a `www.` form that has some) but with
    /// names below them: `corp.com` when the zone has `mail.corp.com`. They exist, so
    /// asking for one is NODATA, not NXDOMAIN, which would deny every name below
    /// (RFC 8020).
    empty_non_terminals: HashSet<Box<str>>,
}

impl TldData {
    /// The data of `zone`, whose SOA has serial `serial`.
    fn new(tld: &Name, zone: Zone, serial: u32) -> TldData {
        let soa = with_serial(synthesized_soa(tld, zone.negative_ttl()), serial);
        let empty_non_terminals = empty_non_terminals(&zone, tld.as_str());
        TldData {
            zone,
            soa,
            empty_non_terminals,
        }
    }

    fn serial(&self) -> u32 {
        soa_serial(&self.soa)
    }

    /// NODATA for a name that exists only through names below it, else NXDOMAIN.
    fn no_such(&self, name: &Name) -> Outcome {
        if self.empty_non_terminals.contains(name.as_str()) {
            Outcome::NoData(self.soa.clone())
        } else {
            Outcome::NxDomain(self.soa.clone())
        }
    }
}

impl TldResolver {
    pub fn new(tld: &str, zone: Zone, own: IpAddr) -> TldResolver {
        let tld = Name::from_wire(tld);
        let serial = next_serial(None, true, SystemTime::now());
        TldResolver {
            data: Swap::new(TldData::new(&tld, zone, serial)),
            tld,
            own,
        }
    }

    /// Swaps in a new zone (a reload): queries that follow answer from it. Its SOA's
    /// serial is the old one if the data is the same, a newer one if not
    /// ([`next_serial`]); returns whether it changed.
    pub fn replace_zone(&self, zone: Zone) -> bool {
        let old = self.data.load();
        let changed = old.zone != zone;
        let serial = next_serial(Some(old.serial()), changed, SystemTime::now());
        self.data.store(TldData::new(&self.tld, zone, serial));
        changed
    }

    /// The zone as it is now, whole, as a zone transfer sends it.
    pub fn snapshot(&self) -> TldSnapshot {
        TldSnapshot {
            data: self.data.load(),
            tld: self.tld.clone(),
            ns: self.ns_name(),
            own: self.own,
        }
    }

    /// The TLD server's own name: `ns.<tld>`.
    pub fn ns_name(&self) -> Name {
        Name::from_wire(&format!("ns.{}", self.tld))
    }

    pub fn resolve(&self, query: &Query) -> Resolution {
        let name = &query.name;
        if !name.is_within(self.tld.as_str()) {
            return Resolution::new(Outcome::Refused);
        }
        // One snapshot answers the whole query, whatever a reload does meanwhile.
        let data = self.data.read();
        let outcome = if *name == self.tld {
            self.apex(&data.soa, query.qtype)
        } else if name.as_str().strip_prefix("ns.") == Some(self.tld.as_str()) {
            let own = [Addr {
                ip: self.own,
                ttl: DEFAULT_TTL,
            }];
            self.addresses(&data.soa, name, &own, query.qtype, Vec::new())
        } else {
            let own = data.zone.addresses(name.as_str());
            match name.www_alias() {
                Some(alias) if own.is_empty() => {
                    let target = data.zone.addresses(&alias);
                    if target.is_empty() {
                        return Resolution::authoritative(data.no_such(name));
                    }
                    let alias = Name::from_wire(&alias);
                    let ttl = target.iter().map(|a| a.ttl).min().unwrap_or(DEFAULT_TTL);
                    let cname = Record::new(name.clone(), ttl, RData::Cname(alias.clone()));
                    if query.qtype == QType::Cname {
                        Outcome::Answer(vec![cname])
                    } else {
                        match self.addresses(&data.soa, &alias, target, query.qtype, vec![cname]) {
                            // The CNAME answers, whatever the target holds.
                            Outcome::NoData(_) => Outcome::Answer(vec![Record::new(
                                name.clone(),
                                ttl,
                                RData::Cname(alias),
                            )]),
                            outcome => outcome,
                        }
                    }
                }
                _ if own.is_empty() => data.no_such(name),
                _ => self.addresses(&data.soa, name, own, query.qtype, Vec::new()),
            }
        };
        Resolution::authoritative(outcome)
    }

    /// The apex: SOA and NS; any other type is NODATA.
    fn apex(&self, soa: &Record, qtype: QType) -> Outcome {
        let ns = Record::new(self.tld.clone(), DEFAULT_TTL, RData::Ns(self.ns_name()));
        match qtype {
            QType::Soa => Outcome::Answer(vec![soa.clone()]),
            QType::Ns => Outcome::Answer(vec![ns]),
            QType::Any => Outcome::Answer(vec![soa.clone(), ns]),
            _ => Outcome::NoData(soa.clone()),
        }
    }

    /// The records of `name` (whose addresses are `addrs`) that answer `qtype`, after
    /// `first` (a CNAME leading to it); NODATA if none does.
    fn addresses(
        &self,
        soa: &Record,
        name: &Name,
        addrs: &[Addr],
        qtype: QType,
        mut first: Vec<Record>,
    ) -> Outcome {
        let mut records = addrs
            .iter()
            .map(|a| Record::new(name.clone(), a.ttl, RData::address(a.ip)))
            .filter(|r| qtype.matches(&r.data))
            .peekable();
        if records.peek().is_none() {
            return Outcome::NoData(soa.clone());
        }
        if qtype == QType::Address {
            // The line protocol's question: the first address, as the original gave.
            first.extend(records.take(1));
        } else {
            first.extend(records);
        }
        Outcome::Answer(first)
    }
}

/// A TLD server's zone at one moment: every record its answers show, for a zone
/// transfer.
pub struct TldSnapshot {
    data: Arc<TldData>,
    tld: Name,
    ns: Name,
    own: IpAddr,
}

impl ZoneRecords for TldSnapshot {
    fn soa_record(&self) -> &Record {
        &self.data.soa
    }

    /// Every record, as queries find them: the SOA, the apex NS and its address, each
    /// name's addresses, and the CNAME of each name the `www.` rule answers for (the
    /// names in order, each name's addresses in file order).
    fn all_records(&self) -> Box<dyn Iterator<Item = Record> + '_> {
        let zone = &self.data.zone;
        // The names a query for reaches: under the TLD, neither the apex (which answers
        // SOA and NS only) nor the server's own name (its own address).
        let reached = |name: &str| {
            name != self.tld.as_str()
                && name != self.ns.as_str()
                && Name::from_wire(name).is_within(self.tld.as_str())
        };
        let mut names: Vec<&str> = zone.names().filter(|n| reached(n)).collect();
        names.sort_unstable();
        let apex = [
            self.data.soa.clone(),
            Record::new(self.tld.clone(), DEFAULT_TTL, RData::Ns(self.ns.clone())),
            Record::new(self.ns.clone(), DEFAULT_TTL, RData::address(self.own)),
        ];
        let addresses = names.clone().into_iter().flat_map(move |name| {
            zone.addresses(name)
                .iter()
                .map(move |a| Record::new(Name::from_wire(name), a.ttl, RData::address(a.ip)))
        });
        let cnames = names.into_iter().filter_map(move |name| {
            let alias = name.strip_prefix("www.")?;
            if alias.starts_with("www.") || !reached(alias) || !zone.addresses(alias).is_empty() {
                return None;
            }
            let target = zone.addresses(name);
            let ttl = target.iter().map(|a| a.ttl).min().unwrap_or(DEFAULT_TTL);
            Some(Record::new(
                Name::from_wire(alias),
                ttl,
                RData::Cname(Name::from_wire(name)),
            ))
        });
        Box::new(apex.into_iter().chain(addresses).chain(cnames))
    }
}

/// The names strictly between `tld` and the zone's names that have no records of their
/// own and no `www.` form with records (see [`TldResolver`]): one pass at start.
fn empty_non_terminals(zone: &Zone, tld: &str) -> HashSet<Box<str>> {
    let has_records = |n: &str| !zone.addresses(n).is_empty();
    let mut out = HashSet::new();
    for name in zone.names() {
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent == tld {
                break;
            }
            if !out.contains(parent) && !has_records(parent) {
                // `www.X` itself is the common case: no new string for it.
                let www_has_records = if rest.strip_prefix("www.") == Some(parent) {
                    has_records(rest)
                } else {
                    has_records(&format!("www.{parent}"))
                };
                if !www_has_records {
                    out.insert(parent.into());
                }
            }
            rest = parent;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Recursion;
    use crate::resolve::tests::data;

    fn tld() -> TldResolver {
        let zone: Zone = "www.google.com 142.250.72.4\nwww.google.com 2607:f8b0::1\nv6.com ::2\n"
            .parse()
            .unwrap();
        TldResolver::new("com", zone, "127.0.0.9".parse().unwrap())
    }

    fn ask(name: &str, qtype: QType) -> Resolution {
        tld().resolve(&Query {
            name: Name::from_wire(name),
            qtype,
            recursion: Recursion::Iterative,
            tag: None,
        })
    }

    #[test]
    fn tld_answers_by_type_with_the_www_rule_as_a_cname() {
        let r = ask("www.google.com.", QType::A);
        assert!(r.authoritative);
        assert_eq!(data(&r), ["www.google.com A(142.250.72.4)"]);
        assert_eq!(
            ask("www.google.com", QType::Aaaa).first_ip(),
            Some("2607:f8b0::1".parse().unwrap())
        );
        assert_eq!(data(&ask("www.google.com", QType::Address)).len(), 1);
        assert_eq!(
            data(&ask("Google.COM", QType::A)),
            [
                "google.com Cname(Name(\"www.google.com\"))",
                "www.google.com A(142.250.72.4)"
            ]
        );
        assert_eq!(data(&ask("v6.com", QType::Address)), ["v6.com Aaaa(::2)"]);
        assert_eq!(data(&ask("ns.com", QType::A)), ["ns.com A(127.0.0.9)"]);
    }

    /// Regression: a name with names below it but no records of its own was NXDOMAIN,
    /// which tells resolvers (RFC 8020) that nothing below it exists either.
    #[test]
    fn tld_empty_non_terminal_is_nodata_not_nxdomain() {
        let zone: Zone = "mail.corp.com 192.0.2.1\na.b.c.com 192.0.2.2\nwww.x.y.com 192.0.2.3\n"
            .parse()
            .unwrap();
        let tld = TldResolver::new("com", zone, "127.0.0.9".parse().unwrap());
        let ask = |name: &str| {
            tld.resolve(&Query {
                name: Name::from_wire(name),
                qtype: QType::A,
                recursion: Recursion::Iterative,
                tag: None,
            })
            .outcome
        };
        for ent in ["corp.com", "b.c.com", "c.com", "y.com"] {
            assert!(matches!(ask(ent), Outcome::NoData(_)), "{ent}");
        }
        assert!(matches!(ask("x.corp.com"), Outcome::NxDomain(_)));
        assert!(matches!(ask("www.corp.com"), Outcome::NxDomain(_)));
        assert!(matches!(ask("mail.corp.com"), Outcome::Answer(_)));
        // `x.y.com` has no records but its www form does: still the www rule's CNAME.
        assert!(
            matches!(&ask("x.y.com"), Outcome::Answer(r) if matches!(r[0].data, RData::Cname(_)))
        );
    }

    /// What a zone transfer sends is what queries find: the apex, the addresses, and
    /// the www rule's CNAMEs; nothing for the names the resolver does not serve.
    #[test]
    fn snapshot_lists_every_record_queries_find() {
        let zone: Zone = "www.google.com 142.250.72.4\nwww.google.com 2607:f8b0::1\n\
                          v6.com ::2\nwww.v6.com 192.0.2.1\nns.com 192.0.2.9\nwww.ns.com 192.0.2.8\n\
                          www.other.org 192.0.2.6\nmail.corp.com 192.0.2.5\n"
            .parse()
            .unwrap();
        let tld = TldResolver::new("com", zone, "127.0.0.9".parse().unwrap());
        let snapshot = tld.snapshot();
        let listed: Vec<String> = snapshot
            .all_records()
            .map(|r| format!("{} {} {:?}", r.name, r.ttl, r.data))
            .collect();
        assert_eq!(
            listed[0],
            format!("com 300 {:?}", snapshot.soa_record().data)
        );
        assert_eq!(
            listed[1..],
            [
                "com 3600 Ns(Name(\"ns.com\"))",
                "ns.com 3600 A(127.0.0.9)",
                "mail.corp.com 3600 A(192.0.2.5)",
                "v6.com 3600 Aaaa(::2)",
                "www.google.com 3600 A(142.250.72.4)",
                "www.google.com 3600 Aaaa(2607:f8b0::1)",
                "www.ns.com 3600 A(192.0.2.8)",
                "www.v6.com 3600 A(192.0.2.1)",
                "google.com 3600 Cname(Name(\"www.google.com\"))",
            ]
        );
        for record in snapshot.all_records().skip(1) {
            let asked = if matches!(record.data, RData::Cname(_)) {
                QType::Cname
            } else {
                QType::Any
            };
            let found = tld.resolve(&Query {
                name: record.name.clone(),
                qtype: asked,
                recursion: Recursion::Iterative,
                tag: None,
            });
            assert!(
                matches!(&found.outcome, Outcome::Answer(rs) if rs.contains(&record)),
                "{record:?}: {found:?}"
            );
        }
    }

    /// The serial grows when a reload changes the data, and only then.
    #[test]
    fn a_reload_that_changes_the_zone_gives_a_newer_serial() {
        let tld = tld();
        let serial = |tld: &TldResolver| tld.data.load().serial();
        let first = serial(&tld);
        assert!(first > 1_600_000_000, "the load time: {first}");
        let same: Zone = "www.google.com 142.250.72.4\nwww.google.com 2607:f8b0::1\nv6.com ::2\n"
            .parse()
            .unwrap();
        assert!(!tld.replace_zone(same));
        assert_eq!(serial(&tld), first);
        assert!(tld.replace_zone("www.google.com 142.250.72.5\n".parse().unwrap()));
        assert!(crate::dns::xfr::serial_newer(serial(&tld), first));
    }

    #[test]
    fn tld_negative_answers_carry_the_soa() {
        let nx = ask("nope.com", QType::A);
        assert!(
            matches!(&nx.outcome, Outcome::NxDomain(soa) if soa.name.as_str() == "com" && soa.ttl == 300)
        );
        assert!(matches!(
            ask("v6.com", QType::A).outcome,
            Outcome::NoData(_)
        ));
        assert!(matches!(
            ask("www.google.com", QType::Other(16)).outcome,
            Outcome::NoData(_)
        ));
        assert!(matches!(ask("com", QType::A).outcome, Outcome::NoData(_)));
        assert!(
            matches!(&ask("com", QType::Soa).outcome, Outcome::Answer(r) if matches!(r[0].data, RData::Soa(_)))
        );
        assert!(
            matches!(&ask("com", QType::Ns).outcome, Outcome::Answer(r) if r[0].data == RData::Ns(Name::from_wire("ns.com")))
        );
        let out = ask("www.google.org", QType::A);
        assert_eq!((out.outcome, out.authoritative), (Outcome::Refused, false));
        assert!(matches!(
            ask("_dmarc.google.com", QType::Other(16)).outcome,
            Outcome::NxDomain(_)
        ));
    }
}
