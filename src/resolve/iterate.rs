//! Iterative resolution, as the local server does it in mode I (and for DNS queries with
//! RD set): from the deepest zone whose servers are known (a cached delegation, or the
//! root), down the referrals to the server of the name's zone, then on through CNAMEs
//! into other zones; name servers given without addresses are looked up the same way.
//!
//! What an upstream says is believed only within its bailiwick (RFC 5452; Unbound's
//! `iter_scrub.c`), checked before anything is cached or learned:
//!
//! - an answer only from the servers of the name's zone: the zone asked must hold the
//!   name, and the root holds only itself and its own servers' names under `root.`
//!   (every other name is delegated: one forged
//!   answer "from the root" must not be able to speak for `www.victim.com`); a CNAME
//!   chain is believed up to the first name outside the zone, and followed from there by
//!   asking that name's own servers;
//! - a negative answer only with an SOA between the zone asked and the name;
//! - a referral only to a zone strictly below the one asked, holding the name;
//! - glue only for name servers inside the zone referred to: other addresses are
//!   dropped, and those servers' addresses looked up like any name.
//!
//! Every resolution is bounded: one deadline for all its questions, at most
//! [`MAX_QUESTIONS`] questions, [`MAX_REFERRALS`] referrals, [`MAX_CNAME_ZONES`] zones
//! along a CNAME chain, and name server look-ups nested [`MAX_GLUELESS_DEPTH`] deep.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::delegations::Delegations;
use super::unexpected_outcome;
use super::upstream::{Unexpected, Upstream, UpstreamError};
use crate::model::name::Name;
use crate::model::{NameServer, Outcome, QType, Query, RData, Record, Recursion};

/// Referrals one resolution follows at most, over all its look-ups (a CNAME's target, a
/// name server's address): a chain of delegations longer than any real one, or a loop
/// between servers, ends here (Unbound allows a similar number per query).
pub const MAX_REFERRALS: u32 = 16;

/// Questions one resolution asks at most, retries on other servers included.
pub const MAX_QUESTIONS: u32 = 32;

/// Zones a CNAME chain is followed through at most (a chain inside one zone comes in
/// one answer and costs nothing here).
pub const MAX_CNAME_ZONES: u32 = 8;

/// How deep look-ups of name servers' addresses nest: a referral without glue starts a
/// look-up, which may meet another referral without glue, and so on.
pub const MAX_GLUELESS_DEPTH: usize = 3;

/// The servers of one zone: where a look-up stands.
#[derive(Clone, Debug)]
struct Cut {
    zone: Name,
    servers: Arc<[NameServer]>,
    /// Who referred to it (the root for the root itself): the upstream an error names
    /// when none of the servers can be asked.
    from: SocketAddr,
}

/// What one look-up came to, checked.
enum Found {
    /// Records that answer the question (a CNAME chain within the zone, then the
    /// records asked for).
    Answer(Vec<Record>),
    /// The start of a CNAME chain, whose last target lies outside the zone asked.
    Alias(Vec<Record>, Name),
    /// NXDOMAIN or NODATA.
    Negative(Outcome),
}

/// A server's reply, checked against the zone it was asked as.
enum Checked {
    Found(Found),
    Referral(Cut, u32),
}

/// One resolution's walk: its budget and what it has learned.
pub struct Walk<'a> {
    upstream: &'a Upstream,
    root: SocketAddr,
    delegations: Option<&'a Delegations>,
    /// The longest a delegation is kept (the cache's `--ttl`).
    max_ttl: u32,
    /// The time the delegation cache is read and written with.
    now: Instant,
    deadline: Instant,
    /// The server's name, for log lines.
    server: &'a str,
    referrals: u32,
    questions: u32,
    /// Name servers whose addresses are being looked up, innermost last.
    resolving: Vec<Name>,
}

impl<'a> Walk<'a> {
    /// A walk from `root` (or a delegation from `delegations`, when given) asking
    /// through `upstream`, all by `deadline`.
    pub fn new(
        upstream: &'a Upstream,
        root: SocketAddr,
        delegations: Option<&'a Delegations>,
        now: Instant,
        deadline: Instant,
    ) -> Walk<'a> {
        Walk {
            upstream,
            root,
            delegations,
            max_ttl: u32::MAX,
            now,
            deadline,
            server: "",
            referrals: 0,
            questions: 0,
            resolving: Vec::new(),
        }
    }

    /// Keeps delegations at most `secs`.
    pub fn with_max_ttl(mut self, secs: u32) -> Walk<'a> {
        self.max_ttl = secs;
        self
    }

    /// Names log lines after `server`.
    pub fn with_server_name(mut self, server: &'a str) -> Walk<'a> {
        self.server = server;
        self
    }

    /// Resolves `query`: an answer (following CNAMEs into other zones), NXDOMAIN or
    /// NODATA, or the upstream error that stopped it. A CNAME chain whose end does not
    /// exist gives that end's negative answer.
    pub fn resolve(&mut self, query: &Query) -> Result<Outcome, UpstreamError> {
        let mut chain: Vec<Record> = Vec::new();
        let mut asked = query.with_recursion(Recursion::Iterative);
        let mut zones = 0;
        loop {
            let (from, found) = self.lookup(&asked)?;
            match found {
                Found::Answer(records) => {
                    chain.extend(records);
                    return Ok(Outcome::Answer(chain));
                }
                Found::Negative(outcome) => return Ok(outcome),
                Found::Alias(records, target) => {
                    chain.extend(records);
                    zones += 1;
                    let looped = chain.iter().any(|r| r.name == target);
                    if zones >= MAX_CNAME_ZONES || looped {
                        return Err(UpstreamError::Unexpected(
                            from,
                            Unexpected::CnameChain(target),
                        ));
                    }
                    asked.name = target;
                }
            }
        }
    }

    /// Finds the servers of `query`'s zone, from the deepest delegation known down the
    /// referrals, and their checked answer.
    fn lookup(&mut self, query: &Query) -> Result<(SocketAddr, Found), UpstreamError> {
        let mut cut = self.start(&query.name);
        loop {
            match self.ask_zone(&cut, query)? {
                (from, Checked::Found(found)) => return Ok((from, found)),
                (from, Checked::Referral(next, ttl)) => {
                    self.referrals += 1;
                    if self.referrals > MAX_REFERRALS {
                        return Err(UpstreamError::Unexpected(
                            from,
                            Unexpected::TooManyReferrals(MAX_REFERRALS),
                        ));
                    }
                    self.learn(&next, ttl);
                    cut = next;
                }
            }
        }
    }

    /// Where a look-up of `name` starts: the deepest delegation cached above it, or the
    /// root.
    fn start(&self, name: &Name) -> Cut {
        if let Some(known) = self.delegations.and_then(|d| d.closest(name, self.now)) {
            log::info!(
                "{}: {name}: asking the servers of {}. directly: delegation from the cache \
                 ({}, {} s left)",
                self.server,
                known.zone,
                servers_text(&known.servers),
                known.remaining(self.now).as_secs()
            );
            return Cut {
                zone: known.zone,
                servers: known.servers,
                from: known.from,
            };
        }
        let root = NameServer {
            name: Name::from_wire(super::ROOT_NS),
            port: self.root.port(),
            addrs: vec![self.root.ip()],
        };
        Cut {
            zone: Name::from_wire(""),
            servers: vec![root].into(),
            from: self.root,
        }
    }

    /// Keeps a delegation just learned, if delegations are cached.
    fn learn(&self, cut: &Cut, ttl: u32) {
        let Some(delegations) = self.delegations else {
            return;
        };
        let ttl = ttl.min(self.max_ttl);
        delegations.insert(&cut.zone, cut.servers.clone(), cut.from, ttl, self.now);
        log::info!(
            "{}: delegation of {}. learned from {} ({}), kept {ttl} s",
            self.server,
            cut.zone,
            cut.from,
            servers_text(&cut.servers)
        );
    }

    /// Asks the servers of `cut` in turn until one gives a reply within its bailiwick:
    /// first those with addresses, the fastest live one first (as the infrastructure
    /// cache knows them: [`Infra::order`](super::infra::Infra::order)), then those whose
    /// addresses must be looked up.
    fn ask_zone(
        &mut self,
        cut: &Cut,
        query: &Query,
    ) -> Result<(SocketAddr, Checked), UpstreamError> {
        let mut failed = None;
        let mut known: Vec<SocketAddr> = Vec::new();
        for addr in cut.servers.iter().flat_map(NameServer::sockets) {
            if !known.contains(&addr) {
                known.push(addr);
            }
        }
        // Those down with a probe in flight would fail at once: left out, unless every
        // one is (then the error says why).
        let ordered = self.upstream.infra().order(&known);
        if !ordered.is_empty() {
            known = ordered;
        }
        for (i, addr) in known.iter().enumerate() {
            match self.ask_one(*addr, cut, query, known.len() - i) {
                Ok(checked) => return Ok((*addr, checked)),
                Err(e) => failed = Some(e),
            }
            if Instant::now() >= self.deadline {
                break;
            }
        }
        // Name servers without addresses: outside the zone (those inside could only be
        // found through the zone itself), not already being looked up (a loop), and not
        // nested past the limit.
        let glueless = cut.servers.iter().filter(|ns| {
            ns.addrs.is_empty()
                && !ns.name.is_within(cut.zone.as_str())
                && !self.resolving.contains(&ns.name)
        });
        for ns in glueless.cloned().collect::<Vec<_>>() {
            if self.resolving.len() >= MAX_GLUELESS_DEPTH || Instant::now() >= self.deadline {
                break;
            }
            let ips = match self.addresses_of(&ns.name) {
                Ok(ips) => ips,
                Err(e) => {
                    failed = Some(e);
                    continue;
                }
            };
            if let Some(delegations) = self.delegations {
                delegations.add_addresses(&cut.zone, &ns.name, &ips, self.now);
            }
            for ip in ips {
                let addr = SocketAddr::new(ip, ns.port);
                match self.ask_one(addr, cut, query, 1) {
                    Ok(checked) => return Ok((addr, checked)),
                    Err(e) => failed = Some(e),
                }
            }
        }
        Err(failed.unwrap_or_else(|| {
            UpstreamError::Unexpected(cut.from, Unexpected::NoServerAddress(cut.zone.clone()))
        }))
    }

    /// Asks one server of `cut`, giving it a share of the time left (`left` servers are
    /// still to be tried), and checks its reply.
    fn ask_one(
        &mut self,
        addr: SocketAddr,
        cut: &Cut,
        query: &Query,
        left: usize,
    ) -> Result<Checked, UpstreamError> {
        self.questions += 1;
        if self.questions > MAX_QUESTIONS {
            // Not asked: the error names the server whose referral led here.
            return Err(UpstreamError::Unexpected(
                cut.from,
                Unexpected::TooManyQuestions(MAX_QUESTIONS),
            ));
        }
        let now = Instant::now();
        let share = self.deadline.saturating_duration_since(now) / left.max(1) as u32;
        let answered = self.upstream.ask(addr, query, now + share)?;
        check(cut, query, answered.outcome, addr)
    }

    /// The addresses of name server `ns`, looked up through the same walk (A, then AAAA
    /// if it has none).
    fn addresses_of(&mut self, ns: &Name) -> Result<Vec<IpAddr>, UpstreamError> {
        self.resolving.push(ns.clone());
        let mut result = Ok(Vec::new());
        for qtype in [QType::A, QType::Aaaa] {
            let query = Query::new(ns.clone(), qtype, Recursion::Iterative);
            result = self.resolve(&query).map(|outcome| match outcome {
                Outcome::Answer(records) => records.iter().filter_map(|r| r.data.ip()).collect(),
                _ => Vec::new(),
            });
            if matches!(&result, Ok(ips) if !ips.is_empty()) {
                break;
            }
        }
        self.resolving.pop();
        result
    }
}

/// `ns.com 127.0.0.1:5678, ns2.com 10.0.0.2:53`, for log lines.
fn servers_text(servers: &[NameServer]) -> String {
    let text: Vec<String> = servers
        .iter()
        .map(|ns| {
            let addrs: Vec<String> = ns.sockets().map(|a| a.to_string()).collect();
            if addrs.is_empty() {
                format!("{} (no address yet)", ns.name)
            } else {
                format!("{} {}", ns.name, addrs.join(" "))
            }
        })
        .collect();
    text.join(", ")
}

/// Whether the servers of `zone` may answer for `name`: it is in the zone, and the
/// root, whose zone holds only delegations, answers only for itself and for the names
/// under `root.` (its own name server, `ns.root`, which it gives the address of).
fn holds(zone: &Name, name: &Name) -> bool {
    name.is_within(zone.as_str())
        && (!zone.is_root() || name.is_root() || name.is_within(ROOT_SERVERS))
}

/// Where dnsd's root names its own servers (`ns.root`): names the root zone holds.
const ROOT_SERVERS: &str = "root";

/// `outcome`, from `addr` asked `query` as a server of `cut`, checked against the
/// bailiwick rules (see the module's doc).
fn check(
    cut: &Cut,
    query: &Query,
    outcome: Outcome,
    addr: SocketAddr,
) -> Result<Checked, UpstreamError> {
    let refuse = |why| Err(UpstreamError::Unexpected(addr, why));
    match outcome {
        Outcome::Referral(referral) => {
            if referral.zone == cut.zone || !referral.zone.is_within(cut.zone.as_str()) {
                return refuse(Unexpected::ReferralNotBelow {
                    zone: referral.zone,
                    asked: cut.zone.clone(),
                });
            }
            if !query.name.is_within(referral.zone.as_str()) {
                return refuse(Unexpected::ReferralOutside {
                    zone: referral.zone,
                    name: query.name.clone(),
                });
            }
            let zone = referral.zone;
            // Glue only for names inside the zone referred to.
            let servers: Vec<NameServer> = referral
                .servers
                .into_iter()
                .map(|mut ns| {
                    if !ns.name.is_within(zone.as_str()) {
                        ns.addrs.clear();
                    }
                    ns
                })
                .collect();
            let next = Cut {
                zone,
                servers: servers.into(),
                from: addr,
            };
            Ok(Checked::Referral(next, referral.ttl))
        }
        Outcome::Answer(records) => {
            if !holds(&cut.zone, &query.name) {
                return refuse(Unexpected::OutOfBailiwick {
                    name: query.name.clone(),
                    zone: cut.zone.clone(),
                });
            }
            let (kept, end, answered) = in_bailiwick_chain(&cut.zone, query, &records);
            if answered {
                Ok(Checked::Found(Found::Answer(kept)))
            } else if end != query.name {
                Ok(Checked::Found(Found::Alias(kept, end)))
            } else {
                refuse(Unexpected::NoRecordFor(query.name.clone()))
            }
        }
        Outcome::NxDomain(ref soa) | Outcome::NoData(ref soa) => {
            let nodata = matches!(outcome, Outcome::NoData(_));
            // The root knows which TLDs do not exist, but nothing of the names under
            // those that do.
            if nodata && !holds(&cut.zone, &query.name) {
                return refuse(Unexpected::OutOfBailiwick {
                    name: query.name.clone(),
                    zone: cut.zone.clone(),
                });
            }
            if !query.name.is_within(soa.name.as_str()) || !soa.name.is_within(cut.zone.as_str()) {
                return refuse(Unexpected::SoaOutOfBailiwick {
                    name: query.name.clone(),
                    soa: soa.name.clone(),
                    zone: cut.zone.clone(),
                });
            }
            Ok(Checked::Found(Found::Negative(outcome)))
        }
        other @ (Outcome::ServFail | Outcome::Refused) => Err(unexpected_outcome(addr, &other)),
    }
}

/// The answer records of `records` that the servers of `zone` may give for `query`:
/// from the name asked along its CNAME chain, up to the first name outside the zone
/// (the rest is not theirs to say). Returns them, where the chain ends, and whether it
/// ends in records of the type asked.
fn in_bailiwick_chain(zone: &Name, query: &Query, records: &[Record]) -> (Vec<Record>, Name, bool) {
    // A CNAME is itself the answer to a question for CNAME (or ANY).
    let follow = !matches!(query.qtype, QType::Cname | QType::Any);
    let mut kept = Vec::new();
    let mut name = query.name.clone();
    // Each step moves to a new name: a chain has at most one step per record.
    for _ in 0..=records.len() {
        if !holds(zone, &name) {
            return (kept, name, false);
        }
        let mut next = None;
        let mut answered = false;
        for record in records.iter().filter(|r| r.name == name) {
            if query.qtype.matches(&record.data) {
                answered = true;
                kept.push(record.clone());
            } else if let (RData::Cname(target), true, None) = (&record.data, follow, &next) {
                next = Some(target.clone());
                kept.push(record.clone());
            }
        }
        match next {
            Some(target) if !answered && !kept.iter().any(|r| r.name == target) => name = target,
            _ => return (kept, name, answered),
        }
    }
    (kept, name, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Name {
        Name::from_wire(s)
    }

    fn a(owner: &str, ip: [u8; 4]) -> Record {
        Record::new(name(owner), 60, RData::A(Ipv4Addr::from(ip)))
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::new(name(owner), 60, RData::Cname(name(target)))
    }

    fn chain(zone: &str, qname: &str, records: &[Record]) -> (Vec<String>, String, bool) {
        let query = Query::new(name(qname), QType::A, Recursion::Iterative);
        let (kept, end, answered) = in_bailiwick_chain(&name(zone), &query, records);
        let kept = kept
            .iter()
            .map(|r| format!("{} {:?}", r.name, r.data))
            .collect();
        (kept, end.to_string(), answered)
    }

    #[test]
    fn a_chain_is_believed_up_to_the_first_name_outside_the_zone() {
        let records = [
            cname("a.com", "b.com"),
            cname("b.com", "c.net"),
            cname("c.net", "d.com"),
            a("d.com", [6, 6, 6, 6]),
        ];
        let (kept, end, answered) = chain("com", "a.com", &records);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(end, "c.net");
        assert!(!answered);
        // All inside: the whole chain, answered.
        let (kept, end, answered) = chain(
            "com",
            "b.com",
            &[cname("b.com", "d.com"), a("d.com", [1, 2, 3, 4])],
        );
        assert_eq!((kept.len(), end.as_str(), answered), (2, "d.com", true));
    }

    #[test]
    fn the_root_holds_only_itself() {
        assert!(holds(&name(""), &name("")));
        assert!(!holds(&name(""), &name("com")));
        assert!(!holds(&name(""), &name("www.victim.com")));
        assert!(holds(&name("com"), &name("www.victim.com")));
        assert!(!holds(&name("com"), &name("www.victim.org")));
        let (kept, end, answered) =
            chain("", "www.victim.com", &[a("www.victim.com", [6, 6, 6, 6])]);
        assert!(kept.is_empty() && !answered);
        assert_eq!(end, "www.victim.com");
    }

    #[test]
    fn a_cname_loop_inside_an_answer_ends() {
        let records = [cname("a.com", "b.com"), cname("b.com", "a.com")];
        let (kept, _, answered) = chain("com", "a.com", &records);
        assert_eq!(kept.len(), 2);
        assert!(!answered);
    }
}
