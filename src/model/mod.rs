//! The resolution model both protocols share: a [`Query`] (a name, a type, how much
//! recursion is wanted) goes in, a [`Resolution`] (an [`Outcome`] with records and their
//! TTLs, the SOA of a negative answer, a referral with glue) comes out.
//!
//! The line protocol and DNS messages are two views of the same result: neither front
//! end knows the other exists, and the resolvers (zones, the root table, the cache, the
//! upstreams) know neither. The line protocol's codes are a view of an outcome:
//! `0X00`/`0X01` from an answer, `0XFF` from NXDOMAIN (or NODATA, or REFUSED), `0X02`
//! from a referral, `0XFE` from SERVFAIL.

pub mod name;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use self::name::Name;

/// The TTL of records read from a legacy (`NAME ADDR`) file, which has no field for one.
pub const DEFAULT_TTL: u32 = 3600;

/// The type of record asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QType {
    A,
    Aaaa,
    Cname,
    Ns,
    Soa,
    Ptr,
    Mx,
    Txt,
    Srv,
    Caa,
    /// `ANY` (255).
    Any,
    /// The line protocol's question: the name's address, IPv4 or IPv6, whichever comes
    /// first in the zone (as the original answered with the first line that matched).
    Address,
    /// Any other type, by number: a name that exists has no such record (NODATA).
    Other(u16),
}

impl QType {
    /// The type's number on the wire ([`QType::Address`] has none and reads as A).
    pub fn code(self) -> u16 {
        match self {
            QType::A | QType::Address => 1,
            QType::Ns => 2,
            QType::Cname => 5,
            QType::Soa => 6,
            QType::Ptr => 12,
            QType::Mx => 15,
            QType::Txt => 16,
            QType::Aaaa => 28,
            QType::Srv => 33,
            QType::Any => 255,
            QType::Caa => 257,
            QType::Other(n) => n,
        }
    }

    /// The type with number `n`.
    pub fn from_code(n: u16) -> QType {
        match n {
            1 => QType::A,
            2 => QType::Ns,
            5 => QType::Cname,
            6 => QType::Soa,
            12 => QType::Ptr,
            15 => QType::Mx,
            16 => QType::Txt,
            28 => QType::Aaaa,
            33 => QType::Srv,
            255 => QType::Any,
            257 => QType::Caa,
            n => QType::Other(n),
        }
    }

    /// Whether a record of type `data` answers this question.
    pub fn matches(self, data: &RData) -> bool {
        match self {
            QType::Any => true,
            QType::Address => matches!(data, RData::A(_) | RData::Aaaa(_)),
            qtype => qtype.code() == data.code(),
        }
    }
}

/// How much work the asker wants done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recursion {
    /// Mode R, or DNS with RD set (at the root, or at the local server run with
    /// `--dns-mode R`): the server asked resolves through the next server down.
    Recursive,
    /// Mode I, or DNS at the root with RD clear: the root refers; the local server asks
    /// the root for a referral and then the TLD server itself.
    Iterative,
    /// DNS with RD clear at the local server: the cache, or REFUSED without asking anyone.
    CacheOnly,
}

/// One question, whichever protocol carried it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    pub name: Name,
    pub qtype: QType,
    pub recursion: Recursion,
    /// A label the asker put on its question (the line protocol's TAG), carried to every
    /// server asked on its behalf, so that each hop's log shows the same label. `None`
    /// where the asker gave none (DNS); an upstream then labels the question itself.
    pub tag: Option<Tag>,
}

/// A question's label: shared, so that passing it from hop to hop copies nothing.
pub type Tag = std::sync::Arc<str>;

impl Query {
    /// A question with no label.
    pub fn new(name: Name, qtype: QType, recursion: Recursion) -> Query {
        Query {
            name,
            qtype,
            recursion,
            tag: None,
        }
    }

    /// The same question, asked with `recursion`.
    pub fn with_recursion(&self, recursion: Recursion) -> Query {
        Query {
            recursion,
            ..self.clone()
        }
    }
}

/// The data of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    Ns(Name),
    Soa(Box<Soa>),
    /// Carries the port of a TLD server in a referral (see [`Referral`]).
    Srv(Srv),
    Ptr(Name),
    Mx(Mx),
    /// Every other type (TXT, CAA, and any type in RFC 3597's generic form), kept as the
    /// DNS library holds it: nothing in dnsd looks inside, it is only served and cached.
    Other(Opaque),
}

/// A mail exchanger: the host, and its preference (lower is tried first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    pub exchange: Name,
}

/// The data of a record whose type dnsd does not interpret, as hickory-proto holds it
/// (boxed: the common types stay small).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opaque(pub Box<hickory_proto::rr::RData>);

impl Opaque {
    /// The type's number.
    pub fn code(&self) -> u16 {
        u16::from(self.0.record_type())
    }
}

impl RData {
    /// The address, for A and AAAA.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            RData::A(ip) => Some(IpAddr::V4(*ip)),
            RData::Aaaa(ip) => Some(IpAddr::V6(*ip)),
            _ => None,
        }
    }

    /// The number of the record's type.
    pub fn code(&self) -> u16 {
        match self {
            RData::A(_) => 1,
            RData::Ns(_) => 2,
            RData::Cname(_) => 5,
            RData::Soa(_) => 6,
            RData::Ptr(_) => 12,
            RData::Mx(_) => 15,
            RData::Aaaa(_) => 28,
            RData::Srv(_) => 33,
            RData::Other(o) => o.code(),
        }
    }

    /// The host name whose addresses go in the additional section with this record (RFC
    /// 1035 3.3.9, RFC 2782): an MX's exchange, an SRV's target, an NS's server.
    pub fn target(&self) -> Option<&Name> {
        match self {
            RData::Mx(mx) => Some(&mx.exchange),
            RData::Srv(srv) => Some(&srv.target),
            RData::Ns(ns) => Some(ns),
            _ => None,
        }
    }

    /// An A or AAAA record's data for `ip`.
    pub fn address(ip: IpAddr) -> RData {
        match ip {
            IpAddr::V4(ip) => RData::A(ip),
            IpAddr::V6(ip) => RData::Aaaa(ip),
        }
    }
}

/// A zone's start of authority: its minimum is the TTL of negative answers (RFC 2308).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

/// A service record: `_dns._tcp.<tld>` names the TLD server and its port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: Name,
}

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    /// Seconds: from the zone, or what remains of it in a cache.
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    pub fn new(name: Name, ttl: u32, data: RData) -> Record {
        Record { name, ttl, data }
    }
}

/// A referral: who answers for a zone below the one asked, as an upstream gave it.
///
/// dnsd's root refers to one server per TLD, `ns.<tld>.`, on a port of its own; DNS has
/// no field for a port, so its referral carries three records: NS `ns.<tld>.` in the
/// authority section, its A (or AAAA) glue, and an SRV `_dns._tcp.<tld>.` naming
/// `ns.<tld>.` with the port, in the additional section. A standard resolver ignores the
/// SRV; dnsd's local server reads it. Other authoritative servers refer to several name
/// servers, each on port 53, some with glue and some without (their addresses must then
/// be looked up): all of them are kept, so that another can be tried when one fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    /// The zone referred to.
    pub zone: Name,
    /// TTL of the NS records (and of dnsd's glue and SRV).
    pub ttl: u32,
    /// The zone's name servers, in the order given.
    pub servers: Vec<NameServer>,
}

/// One name server of a delegated zone: its name, the port it answers on, and the
/// addresses it is known at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameServer {
    pub name: Name,
    /// 53, unless a referral's SRV record (dnsd's port hint) said otherwise.
    pub port: u16,
    /// Its addresses (the referral's glue, or looked up since); empty when the referral
    /// gave none.
    pub addrs: Vec<IpAddr>,
}

impl NameServer {
    /// Its addresses, each with its port.
    pub fn sockets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.addrs.iter().map(|ip| SocketAddr::new(*ip, self.port))
    }
}

impl Referral {
    /// dnsd's own referral to `zone`: one server, `ns.<zone>`, at `addr`.
    pub fn new(zone: Name, addr: SocketAddr, ttl: u32) -> Referral {
        let ns = NameServer {
            name: Name::from_wire(&format!("ns.{zone}")),
            port: addr.port(),
            addrs: vec![addr.ip()],
        };
        Referral {
            zone,
            ttl,
            servers: vec![ns],
        }
    }

    /// The first address of the first server that has one: the server the line
    /// protocol's referral names (`0X02, root, com 127.0.0.1:5678`).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.servers.iter().flat_map(NameServer::sockets).next()
    }

    /// The first server's host name (`ns.<tld>` in dnsd's own referrals).
    pub fn ns_name(&self) -> Name {
        match self.servers.first() {
            Some(ns) => ns.name.clone(),
            None => Name::from_wire(&format!("ns.{}", self.zone)),
        }
    }

    /// The name of the SRV records carrying the ports: `_dns._tcp.<zone>`.
    pub fn srv_name(&self) -> Name {
        Name::from_wire(&format!("_dns._tcp.{}", self.zone))
    }
}

/// What a server makes of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Records that answer it: a CNAME first where the `www.` rule applies (`google.com`
    /// is a CNAME to `www.google.com`), then the records of the type asked.
    Answer(Vec<Record>),
    /// The name exists but has no record of the type asked: NOERROR with no answer, the
    /// zone's SOA record in the authority section.
    NoData(Record),
    /// No such name: NXDOMAIN, the zone's SOA record in the authority section.
    NxDomain(Record),
    /// Ask the servers of a zone below (the root asked without recursion, or any
    /// authoritative server for a name it has delegated).
    Referral(Referral),
    /// The answer could not be had: an upstream failed, timed out or answered nonsense,
    /// or a log record could not be written.
    ServFail,
    /// Not this server's business: a name outside a TLD server's zone, or a cache-only
    /// question the cache cannot answer.
    Refused,
}

/// How a CNAME chain in an answer ends when its last name holds nothing of the type
/// asked: NOERROR or NXDOMAIN, with the zone's SOA in the authority section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEnd {
    NoData(Record),
    NxDomain(Record),
}

/// A query's result, and how it was come by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub outcome: Outcome,
    /// The server is authoritative for the name (a TLD server's own zone, the root for
    /// a TLD it does not know): the DNS `aa` flag.
    pub authoritative: bool,
    /// Addresses of the hosts the answer names (an MX's exchange, an SRV's target, an
    /// NS's server): DNS's additional section, which the line protocol does not show.
    pub additional: Vec<Record>,
    /// An answer that is a CNAME chain whose last name has no record of the type asked
    /// (or does not exist): that name's negative answer, whose SOA goes in the
    /// authority section (RFC 2308 2.1, 2.2).
    pub chain_end: Option<ChainEnd>,
    /// The answer came from the local server's cache (`0X00` on the line protocol).
    pub cached: bool,
}

impl Resolution {
    pub fn new(outcome: Outcome) -> Resolution {
        Resolution {
            outcome,
            authoritative: false,
            additional: Vec::new(),
            chain_end: None,
            cached: false,
        }
    }

    pub fn authoritative(outcome: Outcome) -> Resolution {
        Resolution {
            outcome,
            authoritative: true,
            additional: Vec::new(),
            chain_end: None,
            cached: false,
        }
    }

    pub fn cached(outcome: Outcome) -> Resolution {
        Resolution {
            outcome,
            authoritative: false,
            additional: Vec::new(),
            chain_end: None,
            cached: true,
        }
    }

    /// The first address in the answer, if any (what the line protocol shows).
    pub fn first_ip(&self) -> Option<IpAddr> {
        match &self.outcome {
            Outcome::Answer(records) => records.iter().find_map(|r| r.data.ip()),
            _ => None,
        }
    }
}

/// A type as written on a command line (`A`, `aaaa`, `NS`, `TYPE99`, a number): the
/// types `dig` takes, except the line protocol's own question ([`QType::Address`]).
impl std::str::FromStr for QType {
    type Err = String;
    fn from_str(s: &str) -> Result<QType, String> {
        let upper = s.to_ascii_uppercase();
        let number = upper.strip_prefix("TYPE").unwrap_or(&upper);
        Ok(match upper.as_str() {
            "A" => QType::A,
            "AAAA" => QType::Aaaa,
            "CNAME" => QType::Cname,
            "NS" => QType::Ns,
            "SOA" => QType::Soa,
            "SRV" => QType::Srv,
            "PTR" => QType::Ptr,
            "MX" => QType::Mx,
            "TXT" => QType::Txt,
            "CAA" => QType::Caa,
            "ANY" => QType::Any,
            _ => match number.parse::<u16>() {
                Ok(n) => QType::from_code(n),
                Err(_) => {
                    return Err(format!(
                        "{s:?} is not a record type (A, AAAA, CNAME, NS, SOA, PTR, MX, TXT, SRV, CAA, ANY or TYPEn)"
                    ))
                }
            },
        })
    }
}

impl fmt::Display for QType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QType::A => f.write_str("A"),
            QType::Aaaa => f.write_str("AAAA"),
            QType::Cname => f.write_str("CNAME"),
            QType::Ns => f.write_str("NS"),
            QType::Soa => f.write_str("SOA"),
            QType::Srv => f.write_str("SRV"),
            QType::Ptr => f.write_str("PTR"),
            QType::Mx => f.write_str("MX"),
            QType::Txt => f.write_str("TXT"),
            QType::Caa => f.write_str("CAA"),
            QType::Any => f.write_str("ANY"),
            QType::Address => f.write_str("ADDR"),
            QType::Other(251) => f.write_str("IXFR"),
            QType::Other(252) => f.write_str("AXFR"),
            QType::Other(n) => write!(f, "TYPE{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_from_the_command_line() {
        assert_eq!("aaaa".parse(), Ok(QType::Aaaa));
        assert_eq!("NS".parse(), Ok(QType::Ns));
        assert_eq!("TYPE33".parse(), Ok(QType::Srv));
        assert_eq!("99".parse(), Ok(QType::Other(99)));
        assert!("ADDR".parse::<QType>().is_err());
        assert!("nope".parse::<QType>().is_err());
    }

    #[test]
    fn type_codes_round_trip() {
        for n in [1, 2, 5, 6, 12, 15, 16, 28, 33, 255, 257, 99, 65280] {
            assert_eq!(QType::from_code(n).code(), n);
        }
        assert!(QType::Address.matches(&RData::Aaaa(Ipv6Addr::LOCALHOST)));
        assert!(!QType::A.matches(&RData::Aaaa(Ipv6Addr::LOCALHOST)));
    }
}
