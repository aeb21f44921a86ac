//! dnsd's own files mapped into the record store: an address zone becomes a zone with
//! an SOA, an NS naming the server and the server's address, and the original's `www.`
//! rule written out as the CNAME records it stands for; the root's table becomes the
//! root zone, a delegation per TLD.

use std::net::{IpAddr, SocketAddr};

use super::files::{RootTable, Zone};
use super::store::{ZoneBuilder, ZoneData};
use crate::model::name::{within, Name};
use crate::model::{RData, Record, Srv, DEFAULT_TTL};
use crate::resolve::synthesized_soa;
use crate::zone::DEFAULT_NEGATIVE_TTL;

/// The name of a zone's one name server in dnsd's own zones: `ns.<zone>`, and
/// `ns.root` for the root (its SOA's MNAME).
pub fn ns_name(zone: &Name) -> Name {
    if zone.is_root() {
        Name::from_wire(crate::resolve::ROOT_NS)
    } else {
        Name::from_wire(&format!("ns.{zone}"))
    }
}

/// Whether `ip` can be published as an address clients reach (not 0.0.0.0 or `::`).
pub fn publishable(ip: IpAddr) -> bool {
    !ip.is_unspecified()
}

/// The apex every dnsd zone has: its SOA, an NS naming `ns.<zone>`, and that name's
/// address `own` (when it is one a client can reach).
fn apex(b: &mut ZoneBuilder, own: Option<IpAddr>) {
    let origin = b.origin().clone();
    let ns = ns_name(&origin);
    b.add(0, Record::new(origin, DEFAULT_TTL, RData::Ns(ns.clone())));
    if let Some(ip) = own.filter(|ip| publishable(*ip)) {
        b.add(0, Record::new(ns, DEFAULT_TTL, RData::address(ip)));
    }
}

/// A zone below another, served elsewhere: the parent gives its name servers, with the
/// server's address as their glue and its port in dnsd's SRV hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub zone: Name,
    /// The zone's name servers (its apex NS).
    pub servers: Vec<Name>,
    /// Where its server listens.
    pub addr: SocketAddr,
}

impl Delegation {
    /// The records of the delegation, in the parent zone: NS, glue (for the servers
    /// inside the child zone), and the SRV port hint.
    fn add_to(&self, b: &mut ZoneBuilder) {
        let hint = Name::from_wire(&format!("_dns._tcp.{}", self.zone));
        for ns in &self.servers {
            b.add(
                0,
                Record::new(self.zone.clone(), DEFAULT_TTL, RData::Ns(ns.clone())),
            );
            if ns.is_within(self.zone.as_str()) {
                b.add(
                    0,
                    Record::new(ns.clone(), DEFAULT_TTL, RData::address(self.addr.ip())),
                );
            }
            b.add(
                0,
                Record::new(
                    hint.clone(),
                    DEFAULT_TTL,
                    RData::Srv(Srv {
                        priority: 0,
                        weight: 0,
                        port: self.addr.port(),
                        target: ns.clone(),
                    }),
                ),
            );
        }
    }
}

/// The zone `origin` from an address file: every name's addresses, `X CNAME www.X`
/// for each `www.X` with addresses whose `X` has none (the original's `www.` rule), and
/// the apex (an SOA, `NS ns.<origin>`, and `ns.<origin>` at `own`, the server's
/// address, whatever the file says of that name). Names outside `origin` are left out:
/// no query for them reaches this zone.
pub fn address_zone(
    origin: &Name,
    zone: Zone,
    own: Option<IpAddr>,
    delegations: &[Delegation],
) -> ZoneData {
    let mut b = ZoneBuilder::new(origin.clone());
    b.reserve(zone.len() + 2);
    let ns = ns_name(origin);
    let inside = |name: &str| within(name, origin.as_str());
    apex(&mut b, own);
    // The www rule first, while every name can still be looked up.
    let mut cnames = Vec::new();
    for name in zone.names() {
        let Some(bare) = name.strip_prefix("www.") else {
            continue;
        };
        if bare == origin.as_str()
            || bare == ns.as_str()
            || !zone.addresses(bare).is_empty()
            || !inside(bare)
        {
            continue;
        }
        let ttl = zone
            .addresses(name)
            .iter()
            .map(|a| a.ttl)
            .min()
            .unwrap_or(DEFAULT_TTL);
        cnames.push(Record::new(
            Name::from_wire(bare),
            ttl,
            RData::Cname(Name::from_wire(name)),
        ));
    }
    let negative_ttl = zone.negative_ttl();
    zone.drain(|name, addrs| {
        if name == ns.as_str() || !inside(name) {
            return;
        }
        let owner = Name::from_wire(name);
        for addr in addrs {
            b.add(
                0,
                Record::new(owner.clone(), addr.ttl, RData::address(addr.ip)),
            );
        }
    });
    for cname in cnames {
        b.add(0, cname);
    }
    for delegation in delegations {
        delegation.add_to(&mut b);
    }
    b.build(synthesized_soa(origin, negative_ttl))
}

/// The root zone from a root table: `. NS ns.root` (with `ns.root` at `own`, the
/// root's address), and for each TLD a delegation to `ns.<tld>` with its address as
/// glue and dnsd's port hint (`_dns._tcp.<tld> SRV 0 0 PORT ns.<tld>`); or the root
/// zone a master file gave, as it is.
pub fn root_zone(table: &RootTable, own: Option<IpAddr>) -> ZoneData {
    if let Some(zone) = table.master() {
        // A root zone file says itself who its servers are and where.
        return zone.clone();
    }
    let root = Name::from_wire("");
    let mut b = ZoneBuilder::new(root.clone());
    apex(&mut b, own);
    for (tld, addr) in table.iter() {
        let zone = Name::from_wire(tld);
        let ns = ns_name(&zone);
        b.add(
            0,
            Record::new(zone.clone(), DEFAULT_TTL, RData::Ns(ns.clone())),
        );
        b.add(
            0,
            Record::new(ns.clone(), DEFAULT_TTL, RData::address(addr.ip())),
        );
        b.add(
            0,
            Record::new(
                Name::from_wire(&format!("_dns._tcp.{tld}")),
                DEFAULT_TTL,
                RData::Srv(Srv {
                    priority: 0,
                    weight: 0,
                    port: addr.port(),
                    target: ns,
                }),
            ),
        );
    }
    b.build(synthesized_soa(&root, DEFAULT_NEGATIVE_TTL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, QType};

    #[test]
    fn the_www_rule_becomes_cnames_and_the_root_refers_with_its_hint() {
        let zone: Zone = "www.google.com 142.250.72.4\nmail.corp.com 192.0.2.1\n"
            .parse()
            .unwrap();
        let com = Name::from_wire("com");
        let example = Delegation {
            zone: Name::from_wire("example.com"),
            servers: vec![Name::from_wire("ns1.example.com")],
            addr: "127.0.0.1:5681".parse().unwrap(),
        };
        let z = address_zone(&com, zone, Some("127.0.0.9".parse().unwrap()), &[example]);
        let Outcome::Referral(r) = z
            .lookup(&Name::from_wire("www.example.com"), QType::A)
            .outcome
        else {
            panic!()
        };
        assert_eq!(r.addr(), Some("127.0.0.1:5681".parse().unwrap()));
        let r = z.lookup(&Name::from_wire("google.com"), QType::Address);
        assert_eq!(crate::resolve::tests::data(&r).len(), 2);
        let r = z.lookup(&Name::from_wire("ns.com"), QType::A);
        assert_eq!(r.first_ip(), Some("127.0.0.9".parse().unwrap()));
        let mut table = RootTable::default();
        table.insert("com", "127.0.0.1:5678".parse().unwrap());
        let root = root_zone(&table, Some("127.0.0.1".parse().unwrap()));
        let Outcome::Referral(r) = root
            .lookup(&Name::from_wire("www.google.com"), QType::A)
            .outcome
        else {
            panic!()
        };
        assert_eq!(r.addr(), Some("127.0.0.1:5678".parse().unwrap()));
        let r = root.lookup(&Name::from_wire("ns.root"), QType::A);
        assert_eq!(r.first_ip(), Some("127.0.0.1".parse().unwrap()));
        let r = root.lookup(&Name::from_wire(""), QType::Ns);
        assert_eq!(r.additional.len(), 1);
        // DS for a delegated TLD is the root's to deny (RFC 4035 3.1.4.1).
        let r = root.lookup(&Name::from_wire("com"), QType::Other(43));
        assert!(matches!(r.outcome, Outcome::NoData(_)));
    }
}
