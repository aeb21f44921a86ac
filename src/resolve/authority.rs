//! The authoritative resolver every server answers its own zones with: the TLD
//! servers, the servers of second-level zones, and the root (which differs only in
//! its data: a zone whose names are mostly cuts, [`crate::zone::build::root_zone`]).
//! One lookup over the record store ([`crate::zone::store`]), in constant time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::ZoneRecords;
use crate::dns::xfr::next_serial;
use crate::model::name::Name;
use crate::model::{Query, Record, Resolution};
use crate::ops::reload::Swap;
use crate::zone::{Authority, ZoneData, ZoneFile};

/// Authoritative answers from the zones a server holds, swapped whole by a reload.
#[derive(Debug)]
pub struct Authoritative {
    data: Swap<Authority>,
}

impl Authoritative {
    /// Answers from `zones`. A zone whose SOA is made here (an address zone, the root
    /// table's) gets its load time as its serial; a master file's keeps the file's.
    pub fn new(zones: Authority) -> Authoritative {
        let now = SystemTime::now();
        let zones = zones.map(|zone| {
            if zone.synthetic() {
                zone.with_serial(next_serial(None, true, now))
            } else {
                zone
            }
        });
        Authoritative {
            data: Swap::new(zones),
        }
    }

    /// Answers for `zone` alone: a TLD server's `tld` zone from its file, whose NS
    /// `ns.<tld>` (in an address file) is at `own`, the server's address.
    pub fn zone(tld: &str, zone: impl Into<ZoneFile>, own: IpAddr) -> Authoritative {
        Authoritative::new(Authority::single(data(tld, zone.into(), own)))
    }

    /// Swaps in new zones (a reload): queries that follow answer from them. A zone
    /// whose SOA is made here keeps its serial if its records are the same, and gets a
    /// newer one if not ([`next_serial`]); a master file's serial is the file's. Returns
    /// the zones whose serial changed (a zone new to the server counts).
    pub fn replace(&self, zones: Authority) -> Vec<Name> {
        let old = self.data.load();
        let now = SystemTime::now();
        let mut changed = Vec::new();
        let zones = zones.map(|zone| {
            let before = old.zone(zone.origin().as_str());
            let zone = match before {
                Some(before) if zone.synthetic() => {
                    let same = zone.with_serial(before.serial());
                    if same == *before {
                        same
                    } else {
                        let serial = next_serial(Some(before.serial()), true, now);
                        same.with_serial(serial)
                    }
                }
                None if zone.synthetic() => zone.with_serial(next_serial(None, true, now)),
                _ => zone,
            };
            if before.is_none_or(|b| b.serial() != zone.serial()) {
                changed.push(zone.origin().clone());
            }
            zone
        });
        self.data.store(zones);
        changed
    }

    /// The zone `origin` as it is now, whole, as a zone transfer sends it.
    pub fn snapshot(&self, origin: &str) -> Option<ZoneSnapshot> {
        let zones = self.data.load();
        zones.zone(origin)?;
        Some(ZoneSnapshot {
            zones,
            origin: Name::from_wire(origin),
        })
    }

    /// Every zone's origin, in no particular order.
    pub fn origins(&self) -> Vec<Name> {
        self.data
            .load()
            .zones()
            .map(|z| z.origin().clone())
            .collect()
    }

    /// The zones queries read now.
    pub fn zones(&self) -> Arc<Authority> {
        self.data.load()
    }

    /// Answers `query` from the zone holding its name; REFUSED for a name outside every
    /// zone held.
    pub fn resolve(&self, query: &Query) -> Resolution {
        // One snapshot answers the whole query, whatever a reload does meanwhile.
        self.data.read().lookup(&query.name, query.qtype)
    }
}

/// One zone of a server at one moment: what a zone transfer sends (the SOA, then
/// every record in canonical order).
pub struct ZoneSnapshot {
    zones: Arc<Authority>,
    origin: Name,
}

impl ZoneSnapshot {
    fn zone(&self) -> Option<&ZoneData> {
        self.zones.zone(self.origin.as_str())
    }
}

impl ZoneRecords for ZoneSnapshot {
    fn soa_record(&self) -> &Record {
        match self.zone() {
            Some(zone) => zone.soa(),
            // Never: a snapshot is only made of a zone the server holds.
            None => unreachable_soa(),
        }
    }

    fn all_records(&self) -> Box<dyn Iterator<Item = Record> + '_> {
        match self.zone() {
            Some(zone) => Box::new(zone.records()),
            None => Box::new(std::iter::empty()),
        }
    }
}

/// An SOA for a snapshot of no zone (which [`Authoritative::snapshot`] never makes).
fn unreachable_soa() -> &'static Record {
    static SOA: std::sync::OnceLock<Record> = std::sync::OnceLock::new();
    SOA.get_or_init(|| super::synthesized_soa(&Name::from_wire(""), 0))
}

fn data(tld: &str, zone: ZoneFile, own: IpAddr) -> ZoneData {
    zone.into_data(&Name::from_wire(tld), Some(own))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, QType, RData, Recursion};
    use crate::resolve::tests::data;
    use crate::zone::Zone;

    fn tld() -> Authoritative {
        let zone: Zone = "www.google.com 142.250.72.4\nwww.google.com 2607:f8b0::1\nv6.com ::2\n"
            .parse()
            .unwrap();
        Authoritative::zone("com", zone, "127.0.0.9".parse().unwrap())
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
        let tld = Authoritative::zone("com", zone, "127.0.0.9".parse().unwrap());
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
            ask("www.google.com", QType::Txt).outcome,
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
            ask("_dmarc.google.com", QType::Txt).outcome,
            Outcome::NxDomain(_)
        ));
    }

    /// An address zone's serial is its load time; a reload that changes nothing keeps
    /// it, one that changes the data makes it newer; a master file's is the file's.
    #[test]
    fn a_reload_that_changes_the_zone_gives_a_newer_serial() {
        let tld = tld();
        let serial = |tld: &Authoritative| tld.snapshot("com").unwrap().soa_record().clone();
        let first = crate::resolve::soa_serial(&serial(&tld));
        assert!(first > 1_600_000_000, "the load time: {first}");
        let own = "127.0.0.9".parse().unwrap();
        let same: Zone = "www.google.com 142.250.72.4\nwww.google.com 2607:f8b0::1\nv6.com ::2\n"
            .parse()
            .unwrap();
        assert!(tld
            .replace(Authority::single(super::data("com", same.into(), own)))
            .is_empty());
        assert_eq!(crate::resolve::soa_serial(&serial(&tld)), first);
        let other: Zone = "www.google.com 142.250.72.5\n".parse().unwrap();
        assert_eq!(
            tld.replace(Authority::single(super::data("com", other.into(), own))),
            [Name::from_wire("com")]
        );
        let now = crate::resolve::soa_serial(&serial(&tld));
        assert!(crate::dns::xfr::serial_newer(now, first));
        let snapshot = tld.snapshot("com").unwrap();
        let all: Vec<Record> = snapshot.all_records().collect();
        assert!(matches!(all[0].data, RData::Soa(_)));
        assert!(all.iter().any(|r| r.name.as_str() == "google.com"));
    }
}
