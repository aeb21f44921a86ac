//! The local server's resolver: its cache, then the root (mode R), or the servers of the
//! name's zone found by following referrals from the deepest delegation it knows (mode
//! I, [`super::iterate`]).
//!
//! The two halves are apart ([`Resolve`]): [`LocalResolver::cached`] answers from the
//! cache alone, at once, and the rest asks the hierarchy, so that a server can answer
//! hits on the threads that receive them and hand misses to
//! [`Inflight`](super::inflight::Inflight).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::cache::Cache;
use super::clock::{Clock, SystemClock};
use super::delegations::{self, Delegations};
use super::final_answer;
use super::inflight::Resolve;
use super::iterate::Walk;
use super::upstream::{Upstream, UpstreamError};
use crate::model::{Outcome, QType, Query, Recursion, Resolution};
use crate::ops::metrics::ServerMetrics;
use crate::ops::querylog::{LogDir, Mapping};

/// The local server's resolver: its cache, then the root (mode R), or the servers of
/// the name's zone found by following referrals (mode I).
#[derive(Debug)]
pub struct LocalResolver {
    cache: Cache,
    root: SocketAddr,
    upstream: Upstream,
    /// The delegations learned from referrals; `None` when not cached (every mode I miss
    /// then starts at the root, as in the original).
    delegations: Option<Delegations>,
    /// The server's name, for log lines.
    name: String,
    logs: Option<Arc<LogDir>>,
    metrics: ServerMetrics,
    clock: Arc<dyn Clock>,
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
            delegations: Some(Delegations::new(delegations::DEFAULT_CAPACITY)),
            name: String::new(),
            logs,
            metrics: ServerMetrics::DISABLED,
            clock: Arc::new(SystemClock),
        }
    }

    /// Caches delegations learned from referrals (the default), or not: then every
    /// mode I miss starts at the root, so that a class can watch it asked every time.
    pub fn with_delegation_cache(mut self, cached: bool) -> LocalResolver {
        self.delegations = cached.then(|| Delegations::new(delegations::DEFAULT_CAPACITY));
        self
    }

    /// Names its log lines after `name` (the server's).
    pub fn with_name(mut self, name: &str) -> LocalResolver {
        self.name = name.to_owned();
        self
    }

    /// Reads the time from `clock` (tests move it) rather than the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> LocalResolver {
        self.clock = clock;
        self
    }

    /// Records cache hits, misses, evictions and upstream failures in `metrics`.
    pub fn with_metrics(mut self, metrics: ServerMetrics) -> LocalResolver {
        self.metrics = metrics;
        self
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The delegations learned, if they are cached.
    pub fn delegations(&self) -> Option<&Delegations> {
        self.delegations.as_ref()
    }

    /// The way upstream, and what it remembers of each server.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Answers `query`, from the cache or through the hierarchy. No lock is held while
    /// an upstream is asked. An upstream that fails, times out or answers nonsense is
    /// SERVFAIL (never cached: the next query tries again).
    pub fn resolve(&self, query: &Query) -> Resolution {
        self.at_once(query)
            .unwrap_or_else(|| self.resolve_uncached(query, Instant::now()))
    }

    /// The answer from the cache alone, if it has one, without asking anyone; counted
    /// as a cache hit or a miss.
    pub fn cached(&self, query: &Query) -> Option<Resolution> {
        let hit = self.cache.get(query, self.clock.now());
        self.metrics.cache_lookup(hit.is_some());
        hit
    }

    /// [`resolve`](Self::resolve) once the cache has no answer.
    fn resolve_uncached(&self, query: &Query, arrived: Instant) -> Resolution {
        let deadline = self.upstream.deadline_after(arrived);
        let outcome = match query.recursion {
            Recursion::CacheOnly => return Resolution::new(Outcome::Refused),
            Recursion::Recursive => self.recursive(query, deadline),
            Recursion::Iterative => self.iterative(query, deadline),
        };
        match outcome {
            Ok(outcome) => self.learn(query, outcome),
            Err(e) => {
                log::log!(e.log_level(), "{}: {e}", query.name);
                self.metrics.upstream_failure(&e);
                Resolution::new(Outcome::ServFail)
            }
        }
    }

    /// Records an answer in `mapping.log`, then in the cache; a mapping that cannot be
    /// recorded is not given. Its TTLs are capped (`--max-ttl`) before anyone sees it.
    fn learn(&self, query: &Query, outcome: Outcome) -> Resolution {
        let resolution = Resolution::new(self.cache.capped(outcome));
        if let (Some(logs), Some(ip)) = (&self.logs, resolution.first_ip()) {
            let ttl = match &resolution.outcome {
                Outcome::Answer(records) => records.iter().map(|r| r.ttl).min().unwrap_or(0),
                _ => 0,
            };
            let mapping = Mapping {
                name: query.name.clone(),
                addr: ip,
                learned: self.clock.wall(),
                ttl: ttl.min(self.cache.max_ttl()),
            };
            if logs.record_mapping(&mapping).is_err() {
                // Logged once per episode by the log directory.
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
                .insert(query, &resolution.outcome, self.clock.now())
            {
                self.metrics.cache_stored(stored.learned, stored.evicted);
            }
        }
        resolution
    }

    /// Mode R: the root asks the TLD server and hands back the answer.
    fn recursive(&self, query: &Query, deadline: Instant) -> Result<Outcome, UpstreamError> {
        let asked = query.with_recursion(Recursion::Recursive);
        let outcome = self
            .upstream
            .ask_recursive(self.root, &asked, deadline)?
            .outcome;
        final_answer(self.root, outcome)
    }

    /// Mode I: from the deepest delegation known (or the root) down the referrals to
    /// the servers of the name's zone, which we ask ourselves, believing each only
    /// within its bailiwick ([`super::iterate`]). Every question shares one upstream
    /// timeout, so a client waits no longer than in mode R.
    fn iterative(&self, query: &Query, deadline: Instant) -> Result<Outcome, UpstreamError> {
        Walk::new(
            &self.upstream,
            self.root,
            self.delegations.as_ref(),
            self.clock.now(),
            deadline,
        )
        .with_max_ttl(self.cache.max_ttl())
        .with_server_name(&self.name)
        .resolve(query)
    }
}

/// A hit, or a question the cache alone must answer (RD clear: REFUSED), at once; the
/// rest through the hierarchy.
impl Resolve for LocalResolver {
    fn at_once(&self, query: &Query) -> Option<Resolution> {
        if let Some(hit) = self.cached(query) {
            return Some(hit);
        }
        (query.recursion == Recursion::CacheOnly).then(|| Resolution::new(Outcome::Refused))
    }

    fn through_upstream(&self, query: &Query, arrived: Instant) -> Resolution {
        self.resolve_uncached(query, arrived)
    }

    /// A question that waited for the same one's answer is answered from what that one
    /// learned, as from the cache (`0X00`): each answer learned is written to
    /// `mapping.log`, and answered `0X01`, once.
    fn joined(&self, resolution: &Resolution) -> Resolution {
        match resolution.outcome {
            Outcome::Answer(_) => Resolution {
                cached: true,
                ..resolution.clone()
            },
            _ => resolution.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::Name;
    use crate::model::{NameServer, RData, Record, Referral};
    use crate::resolve::clock::ManualClock;
    use crate::resolve::iterate::MAX_REFERRALS;
    use crate::resolve::tests::data;
    use crate::resolve::upstream::Ask;
    use crate::sync::lock;
    use crate::zone::Zone;
    use std::collections::HashMap;
    use std::fmt;
    use std::net::IpAddr;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    type Server = Box<dyn Fn(&Query) -> Resolution + Send + Sync>;

    /// Authoritative servers by address, answering from closures; every question asked
    /// is written down. An address with no server times out at once.
    #[derive(Default)]
    struct Net {
        servers: HashMap<SocketAddr, Server>,
        asked: Mutex<Vec<String>>,
    }

    impl fmt::Debug for Net {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Net")
        }
    }

    impl Ask for Net {
        fn ask(
            &self,
            addr: SocketAddr,
            q: &Query,
            _: Instant,
        ) -> Result<Resolution, UpstreamError> {
            lock(&self.asked).push(format!("{addr} {} {}", q.qtype, q.name));
            match self.servers.get(&addr) {
                Some(server) => Ok(server(q)),
                None => Err(UpstreamError::Timeout(addr)),
            }
        }
    }

    impl Net {
        fn serve(
            mut self,
            addr: &str,
            server: impl Fn(&Query) -> Resolution + Send + Sync + 'static,
        ) -> Net {
            self.servers.insert(sock(addr), Box::new(server));
            self
        }

        /// The questions asked since the last call.
        fn asked(&self) -> Vec<String> {
            std::mem::take(&mut *lock(&self.asked))
        }
    }

    const ROOT: &str = "192.0.2.1:53";
    const COM: &str = "192.0.2.2:53";

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn name(s: &str) -> Name {
        Name::from_wire(s)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A referral to `zone`: each server with its addresses, on port 53.
    fn referral(zone: &str, ttl: u32, servers: &[(&str, &[&str])]) -> Resolution {
        let servers = servers
            .iter()
            .map(|(ns, addrs)| NameServer {
                name: name(ns),
                port: 53,
                addrs: addrs.iter().map(|a| ip(a)).collect(),
            })
            .collect();
        Resolution::new(Outcome::Referral(Referral {
            zone: name(zone),
            ttl,
            servers,
        }))
    }

    fn a(owner: &str, addr: &str) -> Record {
        Record::new(name(owner), 300, RData::address(ip(addr)))
    }

    fn answer(records: Vec<Record>) -> Resolution {
        Resolution::authoritative(Outcome::Answer(records))
    }

    fn nxdomain(zone: &str) -> Resolution {
        Resolution::authoritative(Outcome::NxDomain(super::super::synthesized_soa(
            &name(zone),
            60,
        )))
    }

    /// A root referring com (to `COM`) and net (to 192.0.2.4), and nothing else.
    fn root(q: &Query) -> Resolution {
        match q.name.tld() {
            "com" => referral("com", 3600, &[("a.gtld.com", &["192.0.2.2"])]),
            "net" => referral("net", 3600, &[("a.gtld.net", &["192.0.2.4"])]),
            _ => nxdomain(""),
        }
    }

    fn start(net: Net, clock: Arc<ManualClock>) -> (LocalResolver, Arc<Net>) {
        let net = Arc::new(net);
        let upstream = Upstream::new(net.clone(), Duration::from_secs(2));
        let cache = Cache::new(Zone::default(), Duration::from_secs(3600), 100);
        let resolver = LocalResolver::new(cache, sock(ROOT), upstream, None).with_clock(clock);
        (resolver, net)
    }

    fn ask(resolver: &LocalResolver, n: &str) -> Vec<String> {
        data(&resolver.resolve(&Query::new(name(n), QType::A, Recursion::Iterative)))
    }

    const SERVFAIL: &str = "ServFail";

    #[test]
    fn three_levels_of_delegation_resolve_and_are_cached_with_their_ttls() {
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |q| match q.name.is_within("example.com") {
                true => referral("example.com", 60, &[("ns1.example.com", &["192.0.2.3"])]),
                false => nxdomain("com"),
            })
            .serve("192.0.2.3:53", |q| {
                answer(vec![a(q.name.as_str(), "93.184.216.34")])
            });
        let clock = Arc::new(ManualClock::new());
        let (resolver, net) = start(net, clock.clone());
        assert_eq!(
            ask(&resolver, "www.example.com"),
            [r#"www.example.com A(93.184.216.34)"#]
        );
        assert_eq!(
            net.asked(),
            [
                "192.0.2.1:53 A www.example.com",
                "192.0.2.2:53 A www.example.com",
                "192.0.2.3:53 A www.example.com",
            ]
        );
        // The next miss in example.com asks its server straight away.
        assert_eq!(
            ask(&resolver, "mail.example.com"),
            [r#"mail.example.com A(93.184.216.34)"#]
        );
        assert_eq!(net.asked(), ["192.0.2.3:53 A mail.example.com"]);
        // example.com's delegation (60 s) has expired, com's (3600 s) not: com is asked.
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            ask(&resolver, "ftp.example.com"),
            [r#"ftp.example.com A(93.184.216.34)"#]
        );
        assert_eq!(
            net.asked(),
            [
                "192.0.2.2:53 A ftp.example.com",
                "192.0.2.3:53 A ftp.example.com"
            ]
        );
        // Both expired: the root again.
        clock.advance(Duration::from_secs(3600));
        ask(&resolver, "ssh.example.com");
        assert_eq!(net.asked().len(), 3);
    }

    #[test]
    fn without_the_delegation_cache_every_miss_asks_the_root() {
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |q| answer(vec![a(q.name.as_str(), "10.0.0.1")]));
        let (resolver, net) = start(net, Arc::new(ManualClock::new()));
        let resolver = resolver.with_delegation_cache(false);
        for n in ["a.com", "b.com", "c.com"] {
            assert_eq!(ask(&resolver, n), [format!("{n} A(10.0.0.1)")]);
            assert_eq!(
                net.asked(),
                [format!("{ROOT} A {n}"), format!("{COM} A {n}")]
            );
        }
        assert!(resolver.delegations().is_none());
    }

    /// Regression: an authoritative answer from the root was taken for any name, so one
    /// forged datagram "from the root" poisoned www.victim.com.
    #[test]
    fn an_answer_from_the_root_for_a_name_below_a_tld_is_refused_and_not_cached() {
        let net = Net::default().serve(ROOT, |q| answer(vec![a(q.name.as_str(), "6.6.6.6")]));
        let (resolver, _) = start(net, Arc::new(ManualClock::new()));
        assert_eq!(ask(&resolver, "www.victim.com"), [SERVFAIL]);
        assert_eq!(resolver.cache().learned_len(), 0);
        // The root's own apex is its to answer.
        let net = Net::default().serve(ROOT, |q| {
            Resolution::authoritative(Outcome::Answer(vec![Record::new(
                q.name.clone(),
                60,
                RData::Ns(name("ns.root")),
            )]))
        });
        let (resolver, _) = start(net, Arc::new(ManualClock::new()));
        let apex = resolver.resolve(&Query::new(name(""), QType::Ns, Recursion::Iterative));
        assert_eq!(data(&apex), [r#" Ns(Name("ns.root"))"#]);
    }

    #[test]
    fn a_referral_that_does_not_lead_down_is_refused() {
        for (zone, to) in [("com", "com"), ("com", ""), ("example.com", "com")] {
            let up = to.to_owned();
            let net = Net::default()
                .serve(ROOT, root)
                .serve(COM, move |_| match zone {
                    "com" => referral(&up, 60, &[("ns.evil.com", &["192.0.2.66"])]),
                    _ => referral("example.com", 60, &[("ns.example.com", &["192.0.2.3"])]),
                })
                .serve("192.0.2.3:53", |_| {
                    referral("com", 60, &[("ns.evil.com", &["192.0.2.66"])])
                });
            let (resolver, net) = start(net, Arc::new(ManualClock::new()));
            assert_eq!(
                ask(&resolver, "www.example.com"),
                [SERVFAIL],
                "{zone} -> {to:?}"
            );
            let asked = net.asked();
            assert!(
                asked.iter().all(|q| !q.starts_with("192.0.2.66")),
                "{asked:?}"
            );
            assert!(asked.len() <= 3, "{asked:?}");
        }
    }

    #[test]
    fn glue_outside_the_delegated_zone_is_ignored_and_the_name_server_looked_up() {
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |_| {
                referral("example.com", 300, &[("ns.evil.net", &["192.0.2.66"])])
            })
            .serve("192.0.2.4:53", |q| match q.name.as_str() {
                "ns.evil.net" if q.qtype == QType::A => answer(vec![a("ns.evil.net", "192.0.2.5")]),
                _ => nxdomain("net"),
            })
            .serve("192.0.2.5:53", |q| {
                answer(vec![a(q.name.as_str(), "10.9.9.9")])
            })
            .serve("192.0.2.66:53", |q| {
                answer(vec![a(q.name.as_str(), "6.6.6.6")])
            });
        let (resolver, net) = start(net, Arc::new(ManualClock::new()));
        assert_eq!(
            ask(&resolver, "www.example.com"),
            ["www.example.com A(10.9.9.9)"]
        );
        assert_eq!(
            net.asked(),
            [
                "192.0.2.1:53 A www.example.com",
                "192.0.2.2:53 A www.example.com",
                "192.0.2.1:53 A ns.evil.net",
                "192.0.2.4:53 A ns.evil.net",
                "192.0.2.5:53 A www.example.com",
            ]
        );
        // The address found joins the cached delegation: no look-up the second time.
        assert_eq!(
            ask(&resolver, "ftp.example.com"),
            ["ftp.example.com A(10.9.9.9)"]
        );
        assert_eq!(net.asked(), ["192.0.2.5:53 A ftp.example.com"]);
    }

    #[test]
    fn a_glueless_delegation_resolves() {
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |_| {
                referral("example.com", 300, &[("ns.dns-host.net", &[])])
            })
            .serve("192.0.2.4:53", |q| match q.name.as_str() {
                "ns.dns-host.net" => answer(vec![a("ns.dns-host.net", "192.0.2.5")]),
                _ => nxdomain("net"),
            })
            .serve("192.0.2.5:53", |q| {
                answer(vec![a(q.name.as_str(), "10.9.9.9")])
            });
        let (resolver, _) = start(net, Arc::new(ManualClock::new()));
        assert_eq!(
            ask(&resolver, "www.example.com"),
            ["www.example.com A(10.9.9.9)"]
        );
    }

    #[test]
    fn name_servers_that_can_only_be_found_through_each_other_fail_in_bounds() {
        // example.com is served by ns.example.net, and example.net by ns.example.com.
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |_| {
                referral("example.com", 300, &[("ns.example.net", &[])])
            })
            .serve("192.0.2.4:53", |_| {
                referral("example.net", 300, &[("ns.example.com", &[])])
            });
        let (resolver, net) = start(net, Arc::new(ManualClock::new()));
        assert_eq!(ask(&resolver, "www.example.com"), [SERVFAIL]);
        assert!(net.asked().len() <= 12);
    }

    /// Regression: records for names outside the answering server's zone were cached
    /// with the answer (a CNAME's target's address, from the wrong server).
    #[test]
    fn out_of_bailiwick_answer_records_never_reach_the_cache() {
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |_| {
                answer(vec![
                    Record::new(name("www.a.com"), 300, RData::Cname(name("cdn.b.net"))),
                    a("cdn.b.net", "6.6.6.6"),
                ])
            })
            .serve("192.0.2.4:53", |q| {
                answer(vec![a(q.name.as_str(), "1.2.3.4")])
            });
        let (resolver, net) = start(net, Arc::new(ManualClock::new()));
        let expected = [
            r#"www.a.com Cname(Name("cdn.b.net"))"#,
            "cdn.b.net A(1.2.3.4)",
        ];
        assert_eq!(ask(&resolver, "www.a.com"), expected);
        assert_eq!(
            net.asked(),
            [
                "192.0.2.1:53 A www.a.com",
                "192.0.2.2:53 A www.a.com",
                "192.0.2.1:53 A cdn.b.net",
                "192.0.2.4:53 A cdn.b.net",
            ]
        );
        let cached = resolver
            .cache()
            .get(
                &Query::new(name("www.a.com"), QType::A, Recursion::CacheOnly),
                Instant::now(),
            )
            .unwrap();
        assert!(cached.cached);
        assert_eq!(data(&cached), expected);
    }

    #[test]
    fn a_cname_loop_across_zones_ends_in_servfail() {
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |_| {
                answer(vec![Record::new(
                    name("a.com"),
                    300,
                    RData::Cname(name("b.net")),
                )])
            })
            .serve("192.0.2.4:53", |_| {
                answer(vec![Record::new(
                    name("b.net"),
                    300,
                    RData::Cname(name("a.com")),
                )])
            });
        let (resolver, net) = start(net, Arc::new(ManualClock::new()));
        assert_eq!(ask(&resolver, "a.com"), [SERVFAIL]);
        assert!(net.asked().len() <= 6);
    }

    #[test]
    fn referrals_stop_at_the_cap() {
        // A server that refers every question one label further down, forever.
        let deeper = Mutex::new(1usize);
        let net = Net::default().serve(ROOT, root).serve(COM, move |q| {
            let mut labels = lock(&deeper);
            *labels += 1;
            let zone: Vec<&str> = q.name.as_str().rsplit('.').take(*labels).collect();
            let zone: Vec<&str> = zone.into_iter().rev().collect();
            let zone = zone.join(".");
            referral(&zone, 60, &[(&format!("ns.{zone}"), &["192.0.2.2"])])
        });
        let (resolver, net) = start(net, Arc::new(ManualClock::new()));
        let deep = format!("{}com", "a.".repeat(40));
        assert_eq!(ask(&resolver, &deep), [SERVFAIL]);
        assert_eq!(net.asked().len(), MAX_REFERRALS as usize + 1);
    }

    #[test]
    fn another_name_server_is_tried_when_one_fails() {
        let net = Net::default()
            .serve(ROOT, |_| {
                referral(
                    "com",
                    3600,
                    &[
                        ("a.gtld.com", &["192.0.2.20"]),
                        ("b.gtld.com", &["192.0.2.2"]),
                    ],
                )
            })
            .serve(COM, |q| answer(vec![a(q.name.as_str(), "10.0.0.1")]));
        let (resolver, net) = start(net, Arc::new(ManualClock::new()));
        assert_eq!(ask(&resolver, "a.com"), ["a.com A(10.0.0.1)"]);
        assert_eq!(
            net.asked(),
            [
                "192.0.2.1:53 A a.com",
                "192.0.2.20:53 A a.com",
                "192.0.2.2:53 A a.com"
            ]
        );
        // The one that answered is known fast; the one that failed is not: the next
        // miss under com asks the fast one first.
        assert_eq!(ask(&resolver, "b.com"), ["b.com A(10.0.0.1)"]);
        assert_eq!(net.asked(), ["192.0.2.2:53 A b.com"]);
    }

    #[test]
    fn a_negative_answer_with_another_zones_soa_is_refused() {
        let net = Net::default()
            .serve(ROOT, root)
            .serve(COM, |_| nxdomain("org"));
        let (resolver, _) = start(net, Arc::new(ManualClock::new()));
        assert_eq!(ask(&resolver, "a.com"), [SERVFAIL]);
        // The root's NXDOMAIN for a TLD it does not know is its own to give.
        let net = Net::default().serve(ROOT, root);
        let (resolver, _) = start(net, Arc::new(ManualClock::new()));
        assert!(ask(&resolver, "a.zzz")[0].starts_with("NxDomain"));
    }
}
