//! A TLD server's resolver: authoritative answers for the names under one top-level
//! domain, from its zone, in constant time.

use std::collections::HashSet;
use std::net::IpAddr;

use super::synthesized_soa;
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
    fn new(tld: &Name, zone: Zone) -> TldData {
        let soa = synthesized_soa(tld, zone.negative_ttl());
        let empty_non_terminals = empty_non_terminals(&zone, tld.as_str());
        TldData {
            zone,
            soa,
            empty_non_terminals,
        }
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
        TldResolver {
            data: Swap::new(TldData::new(&tld, zone)),
            tld,
            own,
        }
    }

    /// Swaps in a new zone (a reload): queries that follow answer from it.
    pub fn replace_zone(&self, zone: Zone) {
        self.data.store(TldData::new(&self.tld, zone));
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
