//! Resolution, apart from any wire format: what the local server and the root do with a
//! request, as typed values in and out. The line protocol's handlers in [`crate::roles`]
//! call these; a future RFC 1035 front end would call the same.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::cache::Cache;
use crate::logs::LogDir;
use crate::model::{Outcome, QType, Query, RData, Record, Resolution, Soa, DEFAULT_TTL};
use crate::name::Name;
use crate::protocol::{Code, Mode, Referral, Reply, Request};
use crate::upstream::{Upstream, UpstreamError};
use crate::zone::{Addr, RootTable, Zone};

/// The outcome of a query at the local server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// From the cache (`0X00`).
    Cached(IpAddr),
    /// Learned from the hierarchy (`0X01`).
    Resolved(IpAddr),
    /// The hierarchy says no such host (`0XFF`).
    NotFound,
    /// An upstream could not be reached, timed out or answered nonsense (`0XFE`).
    Failure,
}

impl Answer {
    pub fn to_reply(&self, server: &str) -> Reply {
        match self {
            Answer::Cached(ip) => Reply::address(Code::Cached, server, *ip),
            Answer::Resolved(ip) => Reply::address(Code::Resolved, server, *ip),
            Answer::NotFound => Reply::not_found(server),
            Answer::Failure => Reply::failure(server),
        }
    }
}

/// The local server's resolver: its cache, then the root (mode R) or the root and then
/// the TLD server it refers to (mode I).
#[derive(Debug)]
pub struct LocalResolver {
    cache: Cache,
    root: SocketAddr,
    upstream: Upstream,
    logs: Option<Arc<LogDir>>,
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
            logs,
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Answers `request`. No lock is held while an upstream is asked.
    pub fn resolve(&self, request: &Request) -> Answer {
        if let Some(ip) = self.cache.get(&request.name, Instant::now()) {
            return Answer::Cached(ip);
        }
        let outcome = match request.mode {
            Mode::Recursive => self.recursive(request),
            Mode::Iterative => self.iterative(request),
        };
        match outcome {
            Ok(Some(ip)) => self.learn(&request.name, ip),
            Ok(None) => Answer::NotFound,
            Err(e) => {
                log::warn!("{}: {e}", request.name);
                Answer::Failure
            }
        }
    }

    fn learn(&self, name: &Name, ip: IpAddr) -> Answer {
        if let Some(logs) = &self.logs {
            if let Err(e) = logs.record_mapping(name, ip) {
                log::error!("cannot write mapping.log in {}: {e}", logs.dir().display());
                return Answer::Failure;
            }
        }
        self.cache.insert(name, ip, Instant::now());
        Answer::Resolved(ip)
    }

    /// Mode R: the root asks the TLD server and hands back the answer.
    fn recursive(&self, request: &Request) -> Result<Option<IpAddr>, UpstreamError> {
        let reply = self.upstream.ask(self.root, request)?;
        address_or_not_found(self.root, &reply)
    }

    /// Mode I: the root refers us to the TLD server, which we ask ourselves. Both
    /// questions share one upstream timeout, so a client waits no longer than in mode R.
    fn iterative(&self, request: &Request) -> Result<Option<IpAddr>, UpstreamError> {
        let deadline = Instant::now() + self.upstream.timeout();
        let reply = self.upstream.ask_until(self.root, request, deadline)?;
        match reply.code {
            Code::Referral => {}
            Code::NotFound => return Ok(None),
            _ => return Err(unexpected(self.root, &reply)),
        }
        let referral: Referral = reply
            .text
            .parse()
            .map_err(|e| UpstreamError::Garbage(self.root, e, reply.to_string()))?;
        if referral.tld != request.name.tld() {
            return Err(unexpected(self.root, &reply));
        }
        let reply = self.upstream.ask_until(referral.addr, request, deadline)?;
        address_or_not_found(referral.addr, &reply)
    }
}

/// `0X01` with an address, or `0XFF`; anything else is the upstream's failure.
fn address_or_not_found(from: SocketAddr, reply: &Reply) -> Result<Option<IpAddr>, UpstreamError> {
    match reply.code {
        Code::Resolved => reply.ip().map(Some).ok_or_else(|| unexpected(from, reply)),
        Code::NotFound => Ok(None),
        _ => Err(unexpected(from, reply)),
    }
}

fn unexpected(from: SocketAddr, reply: &Reply) -> UpstreamError {
    UpstreamError::Unexpected(from, reply.to_string())
}

/// The outcome of a query at the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootAnswer {
    /// Mode R: the TLD server's answer (`0X01`).
    Resolved(IpAddr),
    /// Mode I: ask this TLD server (`0X02`).
    Referral(Referral),
    /// No such host, or a TLD the table does not list (`0XFF`).
    NotFound,
    /// The TLD server failed (`0XFE`).
    Failure,
}

impl RootAnswer {
    pub fn to_reply(&self, server: &str) -> Reply {
        match self {
            RootAnswer::Resolved(ip) => Reply::address(Code::Resolved, server, *ip),
            RootAnswer::Referral(r) => Reply::referral(server, r),
            RootAnswer::NotFound => Reply::not_found(server),
            RootAnswer::Failure => Reply::failure(server),
        }
    }
}

/// The root: which TLD server answers for a name, asked (R) or referred to (I).
#[derive(Debug)]
pub struct RootResolver {
    table: RootTable,
    upstream: Upstream,
}

impl RootResolver {
    pub fn new(table: RootTable, upstream: Upstream) -> RootResolver {
        RootResolver { table, upstream }
    }

    pub fn table(&self) -> &RootTable {
        &self.table
    }

    pub fn resolve(&self, request: &Request) -> RootAnswer {
        let tld = request.name.tld();
        let Some(addr) = self.table.lookup(tld) else {
            return RootAnswer::NotFound;
        };
        match request.mode {
            Mode::Iterative => RootAnswer::Referral(Referral {
                tld: tld.to_owned(),
                addr,
            }),
            Mode::Recursive => match self
                .upstream
                .ask(addr, request)
                .and_then(|reply| address_or_not_found(addr, &reply))
            {
                Ok(Some(ip)) => RootAnswer::Resolved(ip),
                Ok(None) => RootAnswer::NotFound,
                Err(e) => {
                    log::warn!("{}: {e}", request.name);
                    RootAnswer::Failure
                }
            },
        }
    }
}

/// A zone's SOA record, synthesized: dnsd's zone files hold addresses only. Its
/// minimum, and its own TTL, are the zone's negative TTL (RFC 2308).
pub fn synthesized_soa(zone: &Name, negative_ttl: u32) -> Record {
    let under = |label: &str| {
        if zone.is_root() {
            Name::from_wire(&format!("{label}.root"))
        } else {
            Name::from_wire(&format!("{label}.{zone}"))
        }
    };
    Record::new(
        zone.clone(),
        negative_ttl,
        RData::Soa(Soa {
            mname: under("ns"),
            rname: under("hostmaster"),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 604_800,
            minimum: negative_ttl,
        }),
    )
}

/// A TLD server's answers: authoritative for the names under its TLD, from its zone,
/// in constant time.
///
/// At the apex it has an SOA and an NS (`ns.<tld>`, whose address is the server's own);
/// a name that has no record of its own but whose `www.` form has one is a CNAME to it
/// (the original's `www.` rule, as DNS shows it); other names do not exist.
#[derive(Debug)]
pub struct TldResolver {
    tld: Name,
    zone: Arc<Zone>,
    /// The server's own address: the glue of `ns.<tld>`.
    own: IpAddr,
    soa: Record,
}

impl TldResolver {
    pub fn new(tld: &str, zone: Arc<Zone>, own: IpAddr) -> TldResolver {
        let tld = Name::from_wire(tld);
        let soa = synthesized_soa(&tld, zone.negative_ttl());
        TldResolver {
            tld,
            zone,
            own,
            soa,
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
        let outcome = if *name == self.tld {
            self.apex(query.qtype)
        } else if *name == self.ns_name() {
            let own = [Addr {
                ip: self.own,
                ttl: DEFAULT_TTL,
            }];
            self.addresses(name, &own, query.qtype, Vec::new())
        } else {
            let own = self.zone.addresses(name.as_str());
            match name.www_alias() {
                Some(alias) if own.is_empty() => {
                    let target = self.zone.addresses(&alias);
                    if target.is_empty() {
                        return Resolution::authoritative(Outcome::NxDomain(self.soa.clone()));
                    }
                    let alias = Name::from_wire(&alias);
                    let ttl = target.iter().map(|a| a.ttl).min().unwrap_or(DEFAULT_TTL);
                    let cname = Record::new(name.clone(), ttl, RData::Cname(alias.clone()));
                    if query.qtype == QType::Cname {
                        Outcome::Answer(vec![cname])
                    } else {
                        match self.addresses(&alias, target, query.qtype, vec![cname]) {
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
                _ if own.is_empty() => Outcome::NxDomain(self.soa.clone()),
                _ => self.addresses(name, own, query.qtype, Vec::new()),
            }
        };
        Resolution::authoritative(outcome)
    }

    /// The apex: SOA and NS; any other type is NODATA.
    fn apex(&self, qtype: QType) -> Outcome {
        let ns = Record::new(self.tld.clone(), DEFAULT_TTL, RData::Ns(self.ns_name()));
        match qtype {
            QType::Soa => Outcome::Answer(vec![self.soa.clone()]),
            QType::Ns => Outcome::Answer(vec![ns]),
            QType::Any => Outcome::Answer(vec![self.soa.clone(), ns]),
            _ => Outcome::NoData(self.soa.clone()),
        }
    }

    /// The records of `name` (whose addresses are `addrs`) that answer `qtype`, after
    /// `first` (a CNAME leading to it); NODATA if none does.
    fn addresses(
        &self,
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
            return Outcome::NoData(self.soa.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Recursion;

    fn tld() -> TldResolver {
        let zone: Zone = "www.google.com 142.250.72.4\nwww.google.com 2607:f8b0::1\nv6.com ::2\n"
            .parse()
            .unwrap();
        TldResolver::new("com", Arc::new(zone), "127.0.0.9".parse().unwrap())
    }

    fn ask(name: &str, qtype: QType) -> Resolution {
        tld().resolve(&Query {
            name: Name::from_wire(name),
            qtype,
            recursion: Recursion::Iterative,
        })
    }

    fn data(r: &Resolution) -> Vec<String> {
        match &r.outcome {
            Outcome::Answer(records) => records
                .iter()
                .map(|r| format!("{} {:?}", r.name, r.data))
                .collect(),
            other => vec![format!("{other:?}")],
        }
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
