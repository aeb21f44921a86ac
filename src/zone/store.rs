//! The record store and its one lookup: a zone is its origin and the records of each
//! of its names, and every authoritative server (the root, a TLD server, a server for
//! a second-level zone) answers from one or more of them the same way.
//!
//! The lookup follows RFC 1034 4.3.2 as NSD's `query.c` does, over one `HashMap` of
//! names (each name's records inline, so a million-name zone costs little more than its
//! text):
//!
//! 1. A name outside every zone held: REFUSED.
//! 2. Going down from the apex, the first name below it with NS records is a cut: a
//!    referral to that zone, its NS records with their addresses as glue (AA clear), and
//!    dnsd's SRV port hint where the zone has one. A DS question at the cut itself is
//!    the parent's to answer (RFC 4035 3.1.4.1).
//! 3. The name itself: a CNAME (followed within the zone, the chain's end saying NODATA
//!    or NXDOMAIN with the SOA), the records of the type asked, or NODATA with the SOA.
//!    A name with no records but names below it (an empty non-terminal) is NODATA too.
//! 4. Else a wildcard at the closest encloser (`*.<encloser>`, RFC 4592) answers in the
//!    name's place; without one, NXDOMAIN with the SOA.
//!
//! MX, SRV and NS answers carry the addresses of the hosts they name in the additional
//! section, when the zone holds them.

use std::collections::HashMap;
use std::path::Path;

use fnv::FnvBuildHasher;

use crate::model::name::Name;
use crate::model::{
    ChainEnd, NameServer, Outcome, QType, RData, Record, Referral, Resolution, Srv,
};

use super::files::FileError;

/// The most CNAMEs followed within one zone for one answer (NSD follows 8).
const MAX_CHAIN: usize = 8;

/// The port a name server answers on when a referral says nothing else.
const DNS_PORT: u16 = 53;

/// The names of a zone and their records. Hashed with FNV, not SipHash: the keys come
/// from the zone's own file, not from the network, and a million-name zone loads in
/// half the time.
type Nodes<V> = HashMap<Name, V, FnvBuildHasher>;

/// One record of a name: its TTL and data (the owner is the map's key).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rr {
    ttl: u32,
    data: RData,
}

/// The records of one zone, looked up by name.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneData {
    origin: Name,
    /// The apex SOA record.
    soa: Record,
    /// The SOA of negative answers: its TTL no longer than its minimum (RFC 2308 3).
    negative: Record,
    /// Every name of the zone, with its records in file order; empty non-terminals
    /// (names with names below them but no records) are here with none.
    nodes: Nodes<Vec<Rr>>,
    /// Whether any name below the apex has NS records (else no cut is looked for).
    has_cuts: bool,
    /// Whether any name starts with `*.` (else no wildcard is looked for).
    has_wildcards: bool,
    /// How many records.
    len: usize,
    /// Its SOA was made here, not read from a file (an address zone, a root table):
    /// its serial is the server's to keep (see [`ZoneData::with_serial`]).
    synthetic: bool,
}

/// Collects a zone's records, then checks the whole ([`ZoneBuilder::finish`]).
#[derive(Debug)]
pub struct ZoneBuilder {
    origin: Name,
    nodes: Nodes<Vec<Rr>>,

    problems: Vec<(usize, String)>,
    len: usize,
}

impl ZoneBuilder {
    /// An empty zone for `origin` (`""` is the root).
    pub fn new(origin: Name) -> ZoneBuilder {
        ZoneBuilder {
            origin,
            nodes: Nodes::default(),
            problems: Vec::new(),
            len: 0,
        }
    }

    /// Room for `n` more names.
    pub fn reserve(&mut self, n: usize) {
        self.nodes.reserve(n);
    }

    /// The zone's origin.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Adds `record`, read from line `line` (0 when it comes from no file). A record
    /// outside the zone, a duplicate, and CNAME beside other data are problems, reported
    /// by [`finish`](Self::finish) (the record is left out).
    pub fn add(&mut self, line: usize, record: Record) {
        if !record.name.is_within(self.origin.as_str()) {
            let origin = display(&self.origin);
            self.problem(
                line,
                format!("{} is outside the zone {origin}", display(&record.name)),
            );
            return;
        }
        // Most names have one record: room for one, grown only for more.
        let rrs = self
            .nodes
            .entry(record.name.clone())
            .or_insert_with(|| Vec::with_capacity(1));
        if rrs.iter().any(|rr| rr.data == record.data) {
            // The same record twice is one record (RFC 2181 5), as every server has it.
            return;
        }
        let is_cname = matches!(record.data, RData::Cname(_));
        if let Some(other) = rrs.iter().find(|rr| {
            matches!(rr.data, RData::Cname(_)) != is_cname
                // DNSSEC's own types may sit beside a CNAME (RFC 4035 2.5).
                && !matches!(rr.data.code(), 46 | 47)
                && !matches!(record.data.code(), 46 | 47)
        }) {
            let _ = other;
            self.problem(
                line,
                format!(
                    "{} has a CNAME and other data (RFC 1034 3.6.2)",
                    display(&record.name)
                ),
            );
            return;
        }
        if is_cname && !rrs.is_empty() {
            self.problem(
                line,
                format!("{} has more than one CNAME", display(&record.name)),
            );
            return;
        }
        if matches!(record.data, RData::Soa(_)) && record.name != self.origin {
            self.problem(
                line,
                format!(
                    "SOA for {} is not at the zone's apex {}",
                    display(&record.name),
                    display(&self.origin)
                ),
            );
            return;
        }
        if matches!(record.data, RData::Soa(_))
            && rrs.iter().any(|r| matches!(r.data, RData::Soa(_)))
        {
            self.problem(line, "a second SOA record".to_owned());
            return;
        }
        rrs.push(Rr {
            ttl: record.ttl,
            data: record.data,
        });
        self.len += 1;
    }

    /// Records a problem with the file at `line`.
    pub fn problem(&mut self, line: usize, message: String) {
        self.problems.push((line, message));
    }

    /// Whether `name` already has records.
    pub fn has(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|rrs| !rrs.is_empty())
    }

    /// The zone, checked: an SOA and NS records at the apex (a name server inside the
    /// zone without an address is legal, as BIND and NSD hold: its parent's glue or a
    /// look-up may still find it). Every problem is returned (as `path:line: message`) in
    /// line order; the servers report the first.
    pub fn finish(mut self, path: &Path) -> Result<ZoneData, Vec<FileError>> {
        let origin = self.origin.clone();
        let apex: &[Rr] = self
            .nodes
            .get(origin.as_str())
            .map_or(&[], |v| v.as_slice());
        let soa = apex.iter().find_map(|rr| match &rr.data {
            RData::Soa(_) => Some(Record::new(origin.clone(), rr.ttl, rr.data.clone())),
            _ => None,
        });
        let has_ns = apex.iter().any(|rr| matches!(rr.data, RData::Ns(_)));
        if soa.is_none() {
            self.problem(0, format!("no SOA record at the apex {}", display(&origin)));
        }
        if !has_ns {
            self.problem(0, format!("no NS records at the apex {}", display(&origin)));
        }
        if !self.problems.is_empty() {
            let mut problems = std::mem::take(&mut self.problems);
            // Problems of the file as a whole (line 0) come last.
            problems.sort_by_key(|(line, _)| if *line == 0 { usize::MAX } else { *line });
            return Err(problems
                .into_iter()
                .map(|(line, message)| FileError {
                    path: path.to_owned(),
                    line,
                    message,
                })
                .collect());
        }
        let soa = soa.unwrap_or_else(|| unreachable_soa(&origin));
        Ok(self.build(soa))
    }

    /// The zone, without checks: `soa` is its SOA record (dnsd's address files have
    /// none of their own).
    pub fn build(mut self, soa: Record) -> ZoneData {
        let apex = self.nodes.entry(self.origin.clone()).or_default();
        let synthetic = !apex.iter().any(|rr| matches!(rr.data, RData::Soa(_)));
        if synthetic {
            apex.insert(
                0,
                Rr {
                    ttl: soa.ttl,
                    data: soa.data.clone(),
                },
            );
            self.len += 1;
        }
        let origin = self.origin;
        let mut nodes = self.nodes;
        let mut has_cuts = false;
        let mut has_wildcards = false;
        // Empty non-terminals: every name between a name and the apex exists.
        let mut between = Vec::new();
        for (name, rrs) in nodes.iter() {
            if *name != origin && rrs.iter().any(|rr| matches!(rr.data, RData::Ns(_))) {
                has_cuts = true;
            }
            if name.as_str().starts_with("*.") || name.as_str() == "*" {
                has_wildcards = true;
            }
            let mut at = name.as_str();
            while let Some(up) = parent(at) {
                if up.len() <= origin.as_str().len() {
                    break;
                }
                between.push(Name::from_wire(up));
                at = up;
            }
        }
        for name in between {
            nodes.entry(name).or_default();
        }
        let mut negative = soa.clone();
        if let RData::Soa(s) = &soa.data {
            negative.ttl = negative.ttl.min(s.minimum);
        }
        ZoneData {
            origin,
            soa,
            negative,
            nodes,
            has_cuts,
            has_wildcards,
            len: self.len,
            synthetic,
        }
    }
}

/// Never used: [`ZoneBuilder::finish`] returns early without an SOA.
fn unreachable_soa(origin: &Name) -> Record {
    crate::resolve::synthesized_soa(origin, 0)
}

/// A name as zone files write it: with its trailing dot, the root as `.`.
pub fn display(name: &Name) -> String {
    format!("{name}.")
}

/// The name one label up (`""`, the root, above a TLD); `None` above the root.
fn parent(name: &str) -> Option<&str> {
    if name.is_empty() {
        None
    } else {
        Some(name.split_once('.').map_or("", |(_, up)| up))
    }
}

/// What a lookup in one zone found for a name.
enum Found<'a> {
    /// The name's records (possibly none: NODATA), under `owner` (the name asked, also
    /// when a wildcard's records answer for it).
    Node(&'a [Rr]),
    /// A cut at `.0` above or at the name.
    Cut(&'a str, &'a [Rr]),
    NxDomain,
}

impl ZoneData {
    /// The zone's origin (`""` for the root).
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The apex SOA record.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The SOA's serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::Soa(soa) => soa.serial,
            _ => 0,
        }
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether its SOA was made here (an address zone, a root table), not read from a
    /// master file, whose serial is the file's.
    pub fn synthetic(&self) -> bool {
        self.synthetic
    }

    /// The zone with its SOA's serial `serial` (the apex record, and the SOA of
    /// negative answers).
    pub fn with_serial(mut self, serial: u32) -> ZoneData {
        for soa in [&mut self.soa, &mut self.negative] {
            if let RData::Soa(s) = &mut soa.data {
                s.serial = serial;
            }
        }
        if let Some(apex) = self.nodes.get_mut(self.origin.as_str()) {
            for rr in apex.iter_mut() {
                if let RData::Soa(s) = &mut rr.data {
                    s.serial = serial;
                }
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many names (empty non-terminals included).
    pub fn names(&self) -> usize {
        self.nodes.len()
    }

    /// Every record of the zone: the SOA first, then the others by name in DNSSEC's
    /// canonical order (RFC 4034 6.1), each name's records in file order: what a zone
    /// transfer sends.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let mut names: Vec<&Name> = self.nodes.keys().collect();
        names.sort_by_cached_key(|n| canonical_key(n.as_str()));
        let soa = std::iter::once(self.soa.clone());
        soa.chain(names.into_iter().flat_map(move |name| {
            self.nodes[name.as_str()]
                .iter()
                .filter(move |rr| !(matches!(rr.data, RData::Soa(_)) && *name == self.origin))
                .map(move |rr| Record::new(name.clone(), rr.ttl, rr.data.clone()))
        }))
    }

    /// [`records`](Self::records) as hickory-proto records of class IN: what a zone
    /// transfer (AXFR) sends between the SOA and the SOA again. A record whose name
    /// hickory cannot write (none read from a file) is left out.
    pub fn wire_records(&self) -> impl Iterator<Item = hickory_proto::rr::Record> + '_ {
        self.records()
            .filter_map(|r| crate::dns::wire_record(&r).ok())
    }

    /// Every record of the zone, in no particular order (the apex SOA once): for
    /// figures, where [`records`](Self::records)' sort would cost more than the count.
    pub fn unordered(&self) -> impl Iterator<Item = (&Name, u32, &RData)> + '_ {
        self.nodes
            .iter()
            .flat_map(|(name, rrs)| rrs.iter().map(move |rr| (name, rr.ttl, &rr.data)))
    }

    /// The records `name` owns (none for a name the zone does not hold).
    pub fn records_of(&self, name: &str) -> Vec<Record> {
        self.nodes.get(name).map_or_else(Vec::new, |rrs| {
            let owner = Name::from_wire(name);
            rrs.iter()
                .map(|rr| Record::new(owner.clone(), rr.ttl, rr.data.clone()))
                .collect()
        })
    }

    /// Answers `qtype` for `name`, which must be within the zone.
    pub fn lookup(&self, name: &Name, qtype: QType) -> Resolution {
        let mut answers = Vec::new();
        let mut owner = name.clone();
        for _ in 0..=MAX_CHAIN {
            let found = self.find(owner.as_str(), qtype);
            let rrs = match found {
                Found::Cut(cut, ns) => {
                    if !answers.is_empty() {
                        // A CNAME into a delegated zone: the answer so far; the asker
                        // follows the rest (as NSD does).
                        return self.answer(answers, qtype);
                    }
                    return Resolution::new(Outcome::Referral(self.referral(cut, ns)));
                }
                Found::NxDomain if answers.is_empty() => {
                    return Resolution::authoritative(Outcome::NxDomain(self.negative.clone()));
                }
                Found::NxDomain => {
                    let mut r = self.answer(answers, qtype);
                    r.chain_end = Some(ChainEnd::NxDomain(self.negative.clone()));
                    return r;
                }
                Found::Node(rrs) => rrs,
            };
            let cname = rrs.iter().find_map(|rr| match &rr.data {
                RData::Cname(target) if qtype != QType::Cname && qtype != QType::Any => {
                    Some((rr, target))
                }
                _ => None,
            });
            if let Some((rr, target)) = cname {
                answers.push(Record::new(owner.clone(), rr.ttl, rr.data.clone()));
                if !target.is_within(self.origin.as_str()) || answers.len() > MAX_CHAIN {
                    return self.answer(answers, qtype);
                }
                owner = target.clone();
                continue;
            }
            let before = answers.len();
            let mut matching = rrs.iter().filter(|rr| qtype.matches(&rr.data));
            if qtype == QType::Address {
                // The line protocol's question: the first address, as the original gave.
                answers.extend(
                    matching
                        .next()
                        .map(|rr| Record::new(owner.clone(), rr.ttl, rr.data.clone())),
                );
            } else {
                answers
                    .extend(matching.map(|rr| Record::new(owner.clone(), rr.ttl, rr.data.clone())));
            }
            if answers.len() == before {
                if before == 0 {
                    return Resolution::authoritative(Outcome::NoData(self.negative.clone()));
                }
                let mut r = self.answer(answers, qtype);
                r.chain_end = Some(ChainEnd::NoData(self.negative.clone()));
                return r;
            }
            return self.answer(answers, qtype);
        }
        self.answer(answers, qtype)
    }

    /// An authoritative answer of `records`, with the addresses of the hosts they name.
    fn answer(&self, records: Vec<Record>, qtype: QType) -> Resolution {
        let mut additional = Vec::new();
        if qtype != QType::Address {
            for r in &records {
                if let Some(target) = r.data.target() {
                    self.addresses_of(target, &mut additional);
                }
            }
        }
        let mut r = Resolution::authoritative(Outcome::Answer(records));
        r.additional = additional;
        r
    }

    /// Pushes the A and AAAA records the zone holds for `host` (at any depth, glue
    /// included) onto `out`, once each.
    fn addresses_of(&self, host: &Name, out: &mut Vec<Record>) {
        let Some(rrs) = self.nodes.get(host.as_str()) else {
            return;
        };
        for rr in rrs.iter() {
            if matches!(rr.data, RData::A(_) | RData::Aaaa(_)) {
                let record = Record::new(host.clone(), rr.ttl, rr.data.clone());
                if !out.contains(&record) {
                    out.push(record);
                }
            }
        }
    }

    /// Where `name` leads in this zone: a cut above (or at) it, its own records, a
    /// wildcard's, or nowhere.
    fn find(&self, name: &str, qtype: QType) -> Found<'_> {
        if self.has_cuts {
            if let Some(cut) = self.cut_above(name, qtype) {
                return cut;
            }
        }
        if let Some(rrs) = self.nodes.get(name) {
            return Found::Node(rrs);
        }
        if self.has_wildcards {
            // The closest encloser: the longest existing name above; its wildcard, if
            // it has one, answers (RFC 4592 3.3.1).
            let mut up = parent(name);
            while let Some(encloser) = up {
                if encloser.len() < self.origin.as_str().len() {
                    break;
                }
                if self.nodes.contains_key(encloser) {
                    let wildcard = if encloser.is_empty() {
                        "*".to_owned()
                    } else {
                        format!("*.{encloser}")
                    };
                    if let Some(rrs) = self.nodes.get(wildcard.as_str()) {
                        return Found::Node(rrs);
                    }
                    break;
                }
                up = parent(encloser);
            }
        }
        Found::NxDomain
    }

    /// The highest cut between the apex (excluded) and `name` (included, unless the
    /// question is DS, which the parent side answers).
    fn cut_above(&self, name: &str, qtype: QType) -> Option<Found<'_>> {
        let origin = self.origin.as_str();
        if name.len() <= origin.len() {
            return None;
        }
        // Where the labels below the apex end (the dot before the origin), and from
        // there the names from just below the apex down to `name`, without allocating.
        let stop = if origin.is_empty() {
            name.len()
        } else {
            name.len() - origin.len() - 1
        };
        let bytes = name.as_bytes();
        for start in (0..stop).rev() {
            if start > 0 && bytes[start - 1] != b'.' {
                continue;
            }
            let n = &name[start..];
            if start == 0 && qtype.code() == 43 {
                break;
            }
            if let Some((key, rrs)) = self.nodes.get_key_value(n) {
                if rrs.iter().any(|rr| matches!(rr.data, RData::Ns(_))) {
                    return Some(Found::Cut(key.as_str(), rrs));
                }
            }
        }
        None
    }

    /// A referral to the zone cut at `cut`, whose records are `rrs`: each name server
    /// with the addresses the zone holds for it, and the port of dnsd's SRV hint
    /// (`_dns._tcp.<cut>`) where there is one.
    fn referral(&self, cut: &str, rrs: &[Rr]) -> Referral {
        let zone = Name::from_wire(cut);
        let hint_name = format!("_dns._tcp.{cut}");
        let hints: &[Rr] = self
            .nodes
            .get(hint_name.as_str())
            .map_or(&[], |v| v.as_slice());
        let mut ttl = u32::MAX;
        let mut servers = Vec::new();
        for rr in rrs {
            let RData::Ns(ns) = &rr.data else { continue };
            ttl = ttl.min(rr.ttl);
            let port = hints
                .iter()
                .find_map(|h| match &h.data {
                    RData::Srv(Srv { port, target, .. }) if target == ns => Some(*port),
                    _ => None,
                })
                .unwrap_or(DNS_PORT);
            let mut addrs = Vec::new();
            if let Some(glue) = self.nodes.get(ns.as_str()) {
                addrs.extend(glue.iter().filter_map(|g| g.data.ip()));
            }
            servers.push(NameServer {
                name: ns.clone(),
                port,
                addrs,
            });
        }
        Referral {
            zone,
            ttl: if ttl == u32::MAX { 0 } else { ttl },
            servers,
        }
    }
}

/// A name's labels from the root down, so that sorting the keys sorts the names in
/// canonical order (RFC 4034 6.1).
fn canonical_key(name: &str) -> Vec<&str> {
    if name.is_empty() {
        return Vec::new();
    }
    name.rsplit('.').collect()
}

/// The zones one server holds, found by the longest suffix of the name asked (a root
/// server holds `.`, a TLD server its TLD, a server may hold several zones).
#[derive(Debug, Clone, Default)]
pub struct Authority {
    zones: HashMap<Name, ZoneData>,
}

impl Authority {
    /// Holds `zone` too (in place of one with the same origin).
    pub fn insert(&mut self, zone: ZoneData) {
        self.zones.insert(zone.origin.clone(), zone);
    }

    /// The authority holding just `zone`.
    pub fn single(zone: ZoneData) -> Authority {
        let mut a = Authority::default();
        a.insert(zone);
        a
    }

    /// The zone the answer for `name` comes from: the one with the longest origin that
    /// holds it.
    pub fn zone_for(&self, name: &str) -> Option<&ZoneData> {
        let mut at = Some(name);
        while let Some(n) = at {
            if let Some(zone) = self.zones.get(n) {
                return Some(zone);
            }
            at = parent(n);
        }
        None
    }

    /// The zone with origin `origin`.
    pub fn zone(&self, origin: &str) -> Option<&ZoneData> {
        self.zones.get(origin)
    }

    /// The zones, in no particular order.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneData> {
        self.zones.values()
    }

    /// The same origins, each zone changed by `f`.
    pub fn map(self, mut f: impl FnMut(ZoneData) -> ZoneData) -> Authority {
        Authority {
            zones: self
                .zones
                .into_iter()
                .map(|(origin, zone)| (origin, f(zone)))
                .collect(),
        }
    }

    /// Answers `qtype` for `name`: from the zone holding it, or REFUSED.
    pub fn lookup(&self, name: &Name, qtype: QType) -> Resolution {
        match self.zone_for(name.as_str()) {
            Some(zone) => zone.lookup(name, qtype),
            None => Resolution::new(Outcome::Refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mx, Soa};
    use std::net::Ipv4Addr;

    fn n(s: &str) -> Name {
        Name::from_wire(s)
    }

    fn a(s: &str) -> RData {
        RData::A(s.parse::<Ipv4Addr>().unwrap())
    }

    fn zone() -> ZoneData {
        let mut b = ZoneBuilder::new(n("example.com"));
        let soa = RData::Soa(Box::new(Soa {
            mname: n("ns1.example.com"),
            rname: n("admin.example.com"),
            serial: 7,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
        }));
        for (name, data) in [
            ("example.com", soa),
            ("example.com", RData::Ns(n("ns1.example.com"))),
            ("ns1.example.com", a("192.0.2.1")),
            ("www.example.com", a("192.0.2.10")),
            ("www.example.com", a("192.0.2.11")),
            ("alias.example.com", RData::Cname(n("www.example.com"))),
            ("dangling.example.com", RData::Cname(n("nope.example.com"))),
            (
                "example.com",
                RData::Mx(Mx {
                    preference: 10,
                    exchange: n("mail.example.com"),
                }),
            ),
            ("mail.example.com", a("192.0.2.25")),
            ("a.b.c.example.com", a("192.0.2.3")),
            ("*.wild.example.com", a("192.0.2.99")),
            ("sub.example.com", RData::Ns(n("ns.sub.example.com"))),
            ("ns.sub.example.com", a("192.0.2.53")),
        ] {
            b.add(1, Record::new(n(name), 60, data));
        }
        b.finish(Path::new("z")).unwrap()
    }

    fn answers(r: &Resolution) -> Vec<String> {
        crate::resolve::tests::data(r)
    }

    #[test]
    fn exact_cname_and_negative_answers() {
        let z = zone();
        let r = z.lookup(&n("www.example.com"), QType::A);
        assert!(r.authoritative);
        assert_eq!(answers(&r).len(), 2);
        let r = z.lookup(&n("alias.example.com"), QType::A);
        assert_eq!(answers(&r).len(), 3, "{r:?}");
        let r = z.lookup(&n("alias.example.com"), QType::Aaaa);
        assert!(matches!(r.chain_end, Some(ChainEnd::NoData(_))), "{r:?}");
        let r = z.lookup(&n("dangling.example.com"), QType::A);
        assert!(matches!(r.chain_end, Some(ChainEnd::NxDomain(_))), "{r:?}");
        assert!(matches!(
            z.lookup(&n("nope.example.com"), QType::A).outcome,
            Outcome::NxDomain(_)
        ));
        assert!(matches!(
            z.lookup(&n("www.example.com"), QType::Txt).outcome,
            Outcome::NoData(_)
        ));
        // Empty non-terminals exist.
        for ent in ["b.c.example.com", "c.example.com", "wild.example.com"] {
            assert!(
                matches!(z.lookup(&n(ent), QType::A).outcome, Outcome::NoData(_)),
                "{ent}"
            );
        }
    }

    #[test]
    fn mx_carries_its_address_and_wildcards_answer_for_the_name() {
        let z = zone();
        let r = z.lookup(&n("example.com"), QType::Mx);
        assert_eq!(r.additional.len(), 1);
        let r = z.lookup(&n("x.y.wild.example.com"), QType::A);
        assert_eq!(answers(&r), ["x.y.wild.example.com A(192.0.2.99)"]);
        assert!(matches!(
            z.lookup(&n("x.wild.example.com"), QType::Aaaa).outcome,
            Outcome::NoData(_)
        ));
    }

    #[test]
    fn cuts_refer_with_glue_and_ds_is_the_parents() {
        let z = zone();
        for name in [
            "sub.example.com",
            "www.sub.example.com",
            "ns.sub.example.com",
        ] {
            let r = z.lookup(&n(name), QType::A);
            assert!(!r.authoritative);
            let Outcome::Referral(referral) = r.outcome else {
                panic!("{name}: {r:?}")
            };
            assert_eq!(referral.zone, n("sub.example.com"));
            assert_eq!(referral.servers[0].port, 53);
            assert_eq!(
                referral.servers[0].addrs,
                ["192.0.2.53".parse::<std::net::IpAddr>().unwrap()]
            );
        }
        assert!(matches!(
            z.lookup(&n("sub.example.com"), QType::Other(43)).outcome,
            Outcome::NoData(_)
        ));
    }

    #[test]
    fn records_come_soa_first_in_canonical_order() {
        let z = zone();
        let all: Vec<_> = z.records().collect();
        assert!(matches!(all[0].data, RData::Soa(_)));
        assert_eq!(
            all.iter()
                .filter(|r| matches!(r.data, RData::Soa(_)))
                .count(),
            1
        );
        assert_eq!(all.len(), z.len());
        assert_eq!(all[1].name, n("example.com"));
        assert_eq!(z.wire_records().count(), all.len());
    }

    #[test]
    fn problems_are_found() {
        let mut b = ZoneBuilder::new(n("example.com"));
        b.add(1, Record::new(n("x.org"), 60, a("192.0.2.1")));
        b.add(
            2,
            Record::new(n("c.example.com"), 60, RData::Cname(n("d.example.com"))),
        );
        b.add(3, Record::new(n("c.example.com"), 60, a("192.0.2.1")));
        let e = b.finish(Path::new("z")).unwrap_err();
        let e: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            e,
            [
                "z:1: x.org. is outside the zone example.com.",
                "z:3: c.example.com. has a CNAME and other data (RFC 1034 3.6.2)",
                "z: no SOA record at the apex example.com.",
                "z: no NS records at the apex example.com.",
            ]
        );
    }

    #[test]
    fn authority_finds_the_longest_origin() {
        let mut auth = Authority::single(zone());
        let mut b = ZoneBuilder::new(n("sub.example.com"));
        b.add(
            0,
            Record::new(n("www.sub.example.com"), 60, a("192.0.2.80")),
        );
        auth.insert(b.build(crate::resolve::synthesized_soa(&n("sub.example.com"), 60)));
        assert_eq!(
            answers(&auth.lookup(&n("www.sub.example.com"), QType::A)).len(),
            1
        );
        assert_eq!(
            auth.lookup(&n("www.example.org"), QType::A).outcome,
            Outcome::Refused
        );
    }
}
