//! Resolution, apart from any wire format: what each server does with a [`Query`], as
//! typed values in and out ([`crate::model`]). The line protocol's handlers in
//! [`crate::roles`] and the DNS front end call the same resolvers.

pub mod cache;
pub mod upstream;

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::line::message::{Code, LineReferral, Mode, Reply, Request};
use crate::model::name::Name;
use crate::model::{
    Outcome, QType, Query, RData, Record, Recursion, Referral, Resolution, Soa, DEFAULT_TTL,
};
use crate::ops::metrics::ServerMetrics;
use crate::ops::querylog::{LogDir, Mapping};
use crate::ops::reload::Swap;
use crate::resolve::cache::Cache;
use crate::resolve::upstream::{Upstream, UpstreamError};
use crate::zone::{Addr, RootTable, Zone, DEFAULT_NEGATIVE_TTL};

/// How a query travels upstream: as the line it arrived as (forwarded with its tag),
/// or as a DNS message, so that TTLs, NXDOMAIN versus NODATA and the SOA cross every
/// hop.
#[derive(Clone, Copy, Debug)]
pub enum Via<'a> {
    Line(&'a Request),
    Dns,
}

impl Via<'_> {
    /// Asks `addr` the query, within `deadline`.
    fn ask(
        self,
        upstream: &Upstream,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        match self {
            Via::Line(request) => {
                let mode = match query.recursion {
                    Recursion::Recursive => Mode::Recursive,
                    Recursion::Iterative | Recursion::CacheOnly => Mode::Iterative,
                };
                let request = Request::new(request.tag.clone(), query.name.clone(), mode);
                let reply = upstream.ask_until(addr, &request, deadline)?;
                line_resolution(addr, query, &reply)
            }
            Via::Dns => upstream.ask_dns(addr, query, deadline),
        }
    }
}

/// A line reply as the resolution model sees it. The line protocol carries no TTL and
/// no SOA: an address is kept for as long as the cache allows, and a negative answer
/// gets the TLD's synthesized SOA.
fn line_resolution(
    from: SocketAddr,
    query: &Query,
    reply: &Reply,
) -> Result<Resolution, UpstreamError> {
    let outcome = match reply.code {
        Code::Resolved => {
            let ip = reply.ip().ok_or_else(|| unexpected(from, reply))?;
            Outcome::Answer(vec![Record::new(
                query.name.clone(),
                u32::MAX,
                RData::address(ip),
            )])
        }
        Code::NotFound => Outcome::NxDomain(line_negative_soa(query.name.tld())),
        Code::Referral => {
            let referral: LineReferral = reply
                .text
                .parse()
                .map_err(|e| UpstreamError::Garbage(from, e, reply.to_string()))?;
            Outcome::Referral(Referral {
                zone: Name::from_wire(&referral.tld),
                addr: referral.addr,
                ttl: DEFAULT_TTL,
            })
        }
        Code::Failure => Outcome::ServFail,
        Code::Cached | Code::Invalid => return Err(unexpected(from, reply)),
    };
    Ok(Resolution::new(outcome))
}

/// The SOA that a line protocol's `0XFF` stands for (the TLD's, synthesized), made once
/// per TLD and thread and then cloned: its names are shared, so a miss's negative answer
/// allocates nothing for it.
fn line_negative_soa(tld: &str) -> Record {
    thread_local! {
        static LAST: RefCell<Option<Record>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some(soa) if soa.name.as_str() == tld => soa.clone(),
            _ => {
                let soa = synthesized_soa(&Name::from_wire(tld), DEFAULT_NEGATIVE_TTL);
                *last = Some(soa.clone());
                soa
            }
        }
    })
}

/// The local server's resolver: its cache, then the root (mode R) or the root and then
/// the TLD server it refers to (mode I).
#[derive(Debug)]
pub struct LocalResolver {
    cache: Cache,
    root: SocketAddr,
    upstream: Upstream,
    logs: Option<Arc<LogDir>>,
    metrics: ServerMetrics,
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
            metrics: ServerMetrics::DISABLED,
        }
    }

    /// Records cache hits, misses, evictions and upstream failures in `metrics`.
    pub fn with_metrics(mut self, metrics: ServerMetrics) -> LocalResolver {
        self.metrics = metrics;
        self
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Answers `query`, from the cache or through the hierarchy. No lock is held while
    /// an upstream is asked. An upstream that fails, times out or answers nonsense is
    /// SERVFAIL (never cached: the next query tries again).
    pub fn resolve(&self, query: &Query, via: Via) -> Resolution {
        let hit = self.cache.get(query, Instant::now());
        self.metrics.cache_lookup(hit.is_some());
        if let Some(hit) = hit {
            return hit;
        }
        self.resolve_uncached(query, via)
    }

    /// The line protocol's question (`request`'s name, its address): what
    /// [`resolve`](Self::resolve) answers, as server `server`'s line reply. A cache hit
    /// builds no query, records or resolution.
    pub fn resolve_line(&self, request: &Request, server: &str) -> Reply {
        let hit = self.cache.address(&request.name, Instant::now());
        self.metrics.cache_lookup(hit.is_some());
        match hit {
            Some(Some(ip)) => Reply::address(Code::Cached, server, ip),
            Some(None) => Reply::not_found(server),
            None => self
                .resolve_uncached(&request.query(), Via::Line(request))
                .to_reply(server),
        }
    }

    /// [`resolve`](Self::resolve) once the cache has no answer.
    fn resolve_uncached(&self, query: &Query, via: Via) -> Resolution {
        let outcome = match query.recursion {
            Recursion::CacheOnly => return Resolution::new(Outcome::Refused),
            Recursion::Recursive => self.recursive(query, via),
            Recursion::Iterative => self.iterative(query, via),
        };
        match outcome {
            Ok(outcome) => self.learn(query, outcome),
            Err(e) => {
                log::warn!("{}: {e}", query.name);
                self.metrics.upstream_failure(&e);
                Resolution::new(Outcome::ServFail)
            }
        }
    }

    /// Records an answer in `mapping.log`, then in the cache; a mapping that cannot be
    /// recorded is not given.
    fn learn(&self, query: &Query, outcome: Outcome) -> Resolution {
        let resolution = Resolution::new(outcome);
        if let (Some(logs), Some(ip)) = (&self.logs, resolution.first_ip()) {
            let ttl = match &resolution.outcome {
                Outcome::Answer(records) => records.iter().map(|r| r.ttl).min().unwrap_or(0),
                _ => 0,
            };
            let mapping = Mapping {
                name: query.name.clone(),
                addr: ip,
                learned: SystemTime::now(),
                ttl: ttl.min(self.cache.max_ttl()),
            };
            if let Err(e) = logs.record_mapping(&mapping) {
                log::error!("cannot write mapping.log in {}: {e}", logs.dir().display());
                return Resolution::new(Outcome::ServFail);
            }
        }
        // The line protocol never kept negative answers: its next query asks again.
        let negative = matches!(
            resolution.outcome,
            Outcome::NxDomain(_) | Outcome::NoData(_)
        );
        if !(negative && query.qtype == QType::Address) {
            if let Some(stored) = self
                .cache
                .insert(query, &resolution.outcome, Instant::now())
            {
                self.metrics.cache_stored(stored.learned, stored.evicted);
            }
        }
        resolution
    }

    /// Mode R: the root asks the TLD server and hands back the answer.
    fn recursive(&self, query: &Query, via: Via) -> Result<Outcome, UpstreamError> {
        let deadline = Instant::now() + self.upstream.timeout();
        let asked = Query {
            recursion: Recursion::Recursive,
            ..query.clone()
        };
        let outcome = via
            .ask(&self.upstream, self.root, &asked, deadline)?
            .outcome;
        final_answer(self.root, outcome)
    }

    /// Mode I: the root refers us to the TLD server, which we ask ourselves. Both
    /// questions share one upstream timeout, so a client waits no longer than in mode R.
    fn iterative(&self, query: &Query, via: Via) -> Result<Outcome, UpstreamError> {
        let deadline = Instant::now() + self.upstream.timeout();
        let asked = Query {
            recursion: Recursion::Iterative,
            ..query.clone()
        };
        let answered = via.ask(&self.upstream, self.root, &asked, deadline)?;
        let referral = match answered.outcome {
            Outcome::Referral(r) => r,
            // The root knows the TLD does not exist.
            Outcome::NxDomain(_) => return Ok(answered.outcome),
            // The root's own zone (`.` itself, over DNS): its authoritative answer.
            outcome @ (Outcome::Answer(_) | Outcome::NoData(_)) if answered.authoritative => {
                return Ok(outcome)
            }
            other => return Err(unexpected_outcome(self.root, &other)),
        };
        if !query.name.is_within(referral.zone.as_str()) || referral.zone.is_root() {
            return Err(UpstreamError::Unexpected(
                self.root,
                format!("a referral to {} for {}", referral.zone, query.name),
            ));
        }
        let outcome = via
            .ask(&self.upstream, referral.addr, &asked, deadline)?
            .outcome;
        final_answer(referral.addr, outcome)
    }
}

/// An answer, NXDOMAIN or NODATA from `from`; anything else (a referral where an answer
/// was due, SERVFAIL, REFUSED) is that upstream's failure.
fn final_answer(from: SocketAddr, outcome: Outcome) -> Result<Outcome, UpstreamError> {
    match outcome {
        Outcome::Answer(_) | Outcome::NxDomain(_) | Outcome::NoData(_) => Ok(outcome),
        other => Err(unexpected_outcome(from, &other)),
    }
}

fn unexpected_outcome(from: SocketAddr, outcome: &Outcome) -> UpstreamError {
    let what = match outcome {
        Outcome::Answer(_) => "an answer where a referral was due".to_owned(),
        Outcome::Referral(r) => format!("a referral to {} where an answer was due", r.zone),
        Outcome::ServFail => "SERVFAIL".to_owned(),
        Outcome::Refused => "REFUSED".to_owned(),
        Outcome::NxDomain(_) | Outcome::NoData(_) => "a negative answer".to_owned(),
    };
    UpstreamError::Unexpected(from, what)
}

fn unexpected(from: SocketAddr, reply: &Reply) -> UpstreamError {
    UpstreamError::Unexpected(from, reply.to_string())
}

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

    pub fn resolve(&self, query: &Query, via: Via) -> Resolution {
        if query.name.is_root() {
            let ns = Record::new(
                query.name.clone(),
                DEFAULT_TTL,
                RData::Ns(Name::from_wire(ROOT_NS)),
            );
            return Resolution::authoritative(match query.qtype {
                QType::Soa => Outcome::Answer(vec![self.soa.clone()]),
                QType::Ns => Outcome::Answer(vec![ns]),
                QType::Any => Outcome::Answer(vec![self.soa.clone(), ns]),
                _ => Outcome::NoData(self.soa.clone()),
            });
        }
        let tld = query.name.tld();
        let Some(addr) = self.table.read().lookup(tld) else {
            return Resolution::authoritative(Outcome::NxDomain(self.soa.clone()));
        };
        match query.recursion {
            Recursion::Iterative | Recursion::CacheOnly => {
                Resolution::new(Outcome::Referral(Referral {
                    zone: Name::from_wire(tld),
                    addr,
                    ttl: DEFAULT_TTL,
                }))
            }
            Recursion::Recursive => {
                let deadline = Instant::now() + self.upstream.timeout();
                let answered = via
                    .ask(&self.upstream, addr, query, deadline)
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
    }
}

/// The root's name server, its apex NS and its SOA's MNAME.
pub const ROOT_NS: &str = "ns.root";

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
    fn root_apex_has_an_ns_and_an_soa() {
        // dnsviz and Zonemaster ask the apex NS of the zone they probe; `.` had none.
        let root = RootResolver::new(
            RootTable::default(),
            Upstream::new(std::time::Duration::from_secs(1), 512),
        );
        let ask = |qtype| {
            root.resolve(
                &Query {
                    name: Name::from_wire(""),
                    qtype,
                    recursion: Recursion::Iterative,
                },
                Via::Dns,
            )
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
