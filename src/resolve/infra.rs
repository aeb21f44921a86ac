//! The upstreams remembered, as Unbound's infrastructure cache does: per server address,
//! a smoothed round-trip time, and whether it has stopped answering, so that a dead
//! server costs one timeout at a time instead of one per question.
//!
//! [`Infra`] is an [`Ask`] in front of another: whichever protocol carries a question,
//! the same memory serves it. What it remembers of an address ([`HostState`]) is also
//! there for a resolver that knows several servers for a zone, to ask the fastest live
//! one first and another when one times out ([`Infra::order`], [`Infra::pick`]).
//!
//! The rules, for one address:
//! - Every answer (any reply at all, even SERVFAIL) is a round-trip sample: the smoothed
//!   estimate and its variation follow RFC 6298's arithmetic (TCP's retransmission
//!   timer), and the address is up.
//! - A timeout, on a question given at least half the upstream timeout, marks it down
//!   (a question left only the end of a deadline shared with an earlier hop proves
//!   nothing). Nothing else does: a refused connection or a garbled reply fails that
//!   question at once and costs nothing, and shows that something is there.
//! - While it is down, one question at a time is sent to it, the *probe*, with the
//!   whole timeout; every other question that needs it fails at once
//!   ([`UpstreamError::BackedOff`]: SERVFAIL, `0XFE`). However many questions arrive for
//!   a dead server, one waits on it; and since the next question after a probe is the
//!   next probe, a server that comes back answers the first question asked of it.
//!   Questions for other servers are untouched.
//! - A server asked to recurse (the root in mode R) may be silent because a server *it*
//!   asks is: [`Infra::ask_recursive`] takes its round trips and obeys its backoff, but
//!   its timeouts do not mark it down.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::upstream::{Ask, UpstreamError};
use crate::model::{Query, Resolution};
use crate::sync::lock;

/// The round-trip time assumed of a server never asked (Unbound's figure), so that a
/// known fast server is preferred to an unknown one, and an unknown one to a slow one.
pub const UNKNOWN_RTT: Duration = Duration::from_millis(376);

/// Addresses remembered at most; past it, the one asked least recently is forgotten.
pub const MAX_HOSTS: usize = 4096;

/// What is remembered of one address.
#[derive(Clone, Copy, Debug)]
struct Host {
    /// RFC 6298's SRTT and RTTVAR; `None` before the first answer.
    srtt: Option<Duration>,
    rttvar: Duration,
    /// When it stopped answering, if it has.
    down: Option<Instant>,
    /// A probe is in flight: every other question fails at once.
    probing: bool,
    /// When it was last asked, to forget the stalest first.
    used: Instant,
}

/// What is known of one upstream address, for a resolver choosing among several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostState {
    /// The smoothed round-trip time; `None` if it never answered.
    pub srtt: Option<Duration>,
    /// How much the round-trip time varies (RFC 6298's RTTVAR).
    pub rttvar: Duration,
    /// How long ago it stopped answering, if it has (and has not answered since).
    pub down_for: Option<Duration>,
    /// It is down and a probe is in flight: a question now would fail at once.
    pub probing: bool,
}

impl HostState {
    /// Whether a question may be sent to it now: it is up, or down with no probe in
    /// flight (the question is then the probe).
    pub fn usable(&self) -> bool {
        !self.probing
    }

    /// The round-trip time to rank it by: its estimate, or [`UNKNOWN_RTT`].
    pub fn rtt(&self) -> Duration {
        self.srtt.unwrap_or(UNKNOWN_RTT)
    }
}

/// How a question was let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    /// Normally.
    Ask,
    /// As the probe of a server that is down.
    Probe,
}

/// Whether a timeout is the asked server's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blame {
    /// The server answers from its own data: its silence is its own.
    Server,
    /// The server asks others: its silence may be theirs.
    Unknown,
}

/// An [`Ask`] that remembers each address's round-trip time and holds back questions
/// to the ones that stopped answering. See the [module](self) for the rules.
pub struct Infra {
    ask: Arc<dyn Ask>,
    /// The upstream timeout: what a question is normally given.
    timeout: Duration,
    hosts: Mutex<HashMap<SocketAddr, Host>>,
}

impl fmt::Debug for Infra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Infra")
            .field("ask", &self.ask)
            .field("timeout", &self.timeout)
            .field("hosts", &lock(&self.hosts).len())
            .finish()
    }
}

impl Infra {
    /// Remembers the servers `ask` asks, whose questions are normally given `timeout`.
    pub fn new(ask: Arc<dyn Ask>, timeout: Duration) -> Infra {
        Infra {
            ask,
            timeout,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The asker behind this one.
    pub fn inner(&self) -> &Arc<dyn Ask> {
        &self.ask
    }

    /// What is known of `addr`; `None` if it was never asked (or was forgotten).
    pub fn state(&self, addr: SocketAddr) -> Option<HostState> {
        let now = Instant::now();
        lock(&self.hosts).get(&addr).map(|h| h.state(now))
    }

    /// The candidates a question may be sent to now, the fastest first (by smoothed
    /// round-trip time; one never asked counts as [`UNKNOWN_RTT`], one that is down
    /// comes after every one up); those down with a probe in flight are left out.
    /// Equals keep their order.
    pub fn order(&self, candidates: &[SocketAddr]) -> Vec<SocketAddr> {
        let now = Instant::now();
        let hosts = lock(&self.hosts);
        let mut usable: Vec<((bool, Duration), SocketAddr)> = candidates
            .iter()
            .filter_map(|addr| match hosts.get(addr) {
                None => Some(((false, UNKNOWN_RTT), *addr)),
                Some(host) => {
                    let state = host.state(now);
                    state
                        .usable()
                        .then(|| ((state.down_for.is_some(), state.rtt()), *addr))
                }
            })
            .collect();
        usable.sort_by_key(|(rank, _)| *rank);
        usable.into_iter().map(|(_, addr)| addr).collect()
    }

    /// The first of [`order`](Self::order): the fastest candidate that may be asked
    /// now; `None` if every one is down with a probe in flight.
    pub fn pick(&self, candidates: &[SocketAddr]) -> Option<SocketAddr> {
        self.order(candidates).into_iter().next()
    }

    /// Asks `addr` a question that it answers itself, or asks another server for when
    /// it is not itself the one to answer (see [`ask_recursive`](Self::ask_recursive)):
    /// a timeout marks it down.
    pub fn ask(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        self.ask_as(addr, query, deadline, Blame::Server)
    }

    /// Asks `addr` to resolve a question through other servers: its round trips are
    /// remembered and its backoff obeyed, but a timeout does not mark it down, since the
    /// silence may be that of a server it asks.
    pub fn ask_recursive(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        self.ask_as(addr, query, deadline, Blame::Unknown)
    }

    fn ask_as(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
        blame: Blame,
    ) -> Result<Resolution, UpstreamError> {
        let admit = self.admit(addr)?;
        // Ends the probe even if the asker panics.
        let mut probe = ProbeGuard {
            infra: self,
            addr,
            armed: admit == Admit::Probe,
        };
        let started = Instant::now();
        let result = self.ask.ask(addr, query, deadline);
        probe.armed = false;
        let given = deadline.saturating_duration_since(started);
        self.record(addr, admit, blame, started.elapsed(), given, &result);
        result
    }

    /// Lets a question to `addr` through, as itself or as a probe, or fails it.
    fn admit(&self, addr: SocketAddr) -> Result<Admit, UpstreamError> {
        let mut hosts = lock(&self.hosts);
        let Some(host) = hosts.get_mut(&addr).filter(|h| h.down.is_some()) else {
            return Ok(Admit::Ask);
        };
        if host.probing {
            let down_for = host.down.map(|since| since.elapsed()).unwrap_or_default();
            return Err(UpstreamError::BackedOff { addr, down_for });
        }
        host.probing = true;
        Ok(Admit::Probe)
    }

    /// Remembers what came of one question to `addr`, which took `took` of the `given`.
    fn record(
        &self,
        addr: SocketAddr,
        admit: Admit,
        blame: Blame,
        took: Duration,
        given: Duration,
        result: &Result<Resolution, UpstreamError>,
    ) {
        let now = Instant::now();
        let mut hosts = lock(&self.hosts);
        if !hosts.contains_key(&addr) && hosts.len() >= MAX_HOSTS {
            forget_stalest(&mut hosts);
        }
        let host = hosts.entry(addr).or_insert(Host {
            srtt: None,
            rttvar: Duration::ZERO,
            down: None,
            probing: false,
            used: now,
        });
        host.used = now;
        if admit == Admit::Probe {
            host.probing = false;
        }
        let timed_out = matches!(result, Err(e) if e.kind() == "timeout");
        if !timed_out {
            if result.is_ok() {
                host.sample(took);
            }
            if host.down.take().is_some() {
                log::info!("upstream {addr} answers again");
            }
            return;
        }
        if host.down.is_none() && blame == Blame::Server && given >= self.timeout / 2 {
            log::warn!(
                "upstream {addr} did not answer within {given:?}: until it does, one \
                 question at a time is sent to it, and the others that need it fail at once"
            );
            host.down = Some(now);
        }
    }
}

impl Ask for Infra {
    fn ask(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        Infra::ask(self, addr, query, deadline)
    }
}

/// Ends a probe that did not come back (its asker panicked), so that the address is
/// probed again rather than refused for good.
struct ProbeGuard<'a> {
    infra: &'a Infra,
    addr: SocketAddr,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(host) = lock(&self.infra.hosts).get_mut(&self.addr) {
                host.probing = false;
            }
        }
    }
}

/// Forgets the address asked least recently (among those up, if any is).
fn forget_stalest(hosts: &mut HashMap<SocketAddr, Host>) {
    let stalest = hosts
        .iter()
        .min_by_key(|(_, h)| (h.down.is_some(), h.used))
        .map(|(addr, _)| *addr);
    if let Some(addr) = stalest {
        hosts.remove(&addr);
    }
}

impl Host {
    /// One round trip of `rtt` (RFC 6298, 2.2 and 2.3).
    fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
    }

    fn state(&self, now: Instant) -> HostState {
        HostState {
            srtt: self.srtt,
            rttvar: self.rttvar,
            down_for: self.down.map(|since| now.saturating_duration_since(since)),
            probing: self.down.is_some() && self.probing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::Name;
    use crate::model::{Outcome, QType, Recursion};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TIMEOUT: Duration = Duration::from_millis(300);
    const WAIT: Duration = Duration::from_secs(10);

    /// An upstream whose servers answer at once, time out (after sleeping until the
    /// deadline) or refuse, by port; it counts the questions each port was asked.
    #[derive(Debug, Default)]
    struct Scripted {
        dead: Mutex<Vec<u16>>,
        asked: Mutex<HashMap<u16, usize>>,
        slow: AtomicUsize,
    }

    const REFUSING: u16 = 3;

    impl Scripted {
        fn asked(&self, port: u16) -> usize {
            lock(&self.asked).get(&port).copied().unwrap_or(0)
        }

        fn set_dead(&self, port: u16, dead: bool) {
            let mut d = lock(&self.dead);
            d.retain(|p| *p != port);
            if dead {
                d.push(port);
            }
        }

        /// Waits (bounded) until `port` was asked `n` times.
        fn wait_asked(&self, port: u16, n: usize) {
            let until = Instant::now() + WAIT;
            while self.asked(port) < n {
                assert!(Instant::now() < until, "port {port} never asked {n} times");
                std::thread::yield_now();
            }
        }
    }

    impl Ask for Scripted {
        fn ask(
            &self,
            addr: SocketAddr,
            query: &Query,
            deadline: Instant,
        ) -> Result<Resolution, UpstreamError> {
            *lock(&self.asked).entry(addr.port()).or_default() += 1;
            if lock(&self.dead).contains(&addr.port()) {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return Err(UpstreamError::Timeout(addr));
            }
            if addr.port() == REFUSING {
                return Err(UpstreamError::Connect(
                    addr,
                    std::io::ErrorKind::ConnectionRefused.into(),
                ));
            }
            let slow = self.slow.load(Ordering::SeqCst) as u64;
            std::thread::sleep(Duration::from_millis(slow));
            Ok(Resolution::new(Outcome::NxDomain(
                super::super::synthesized_soa(&query.name, 60),
            )))
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn query() -> Query {
        Query::new(Name::from_wire("www.x.com"), QType::A, Recursion::Iterative)
    }

    fn infra() -> (Arc<Scripted>, Arc<Infra>) {
        let scripted = Arc::new(Scripted::default());
        let infra = Arc::new(Infra::new(scripted.clone(), TIMEOUT));
        (scripted, infra)
    }

    fn ask(infra: &Infra, port: u16) -> Result<Resolution, UpstreamError> {
        infra.ask(addr(port), &query(), Instant::now() + TIMEOUT)
    }

    #[test]
    fn a_dead_server_is_asked_one_question_at_a_time_and_the_rest_fail_at_once() {
        let (scripted, infra) = infra();
        scripted.set_dead(1, true);
        assert!(matches!(ask(&infra, 1), Err(UpstreamError::Timeout(_))));
        assert!(infra.state(addr(1)).unwrap().down_for.is_some());
        // The next question is the probe; while it waits, every other one for that
        // server fails at once without asking it, and other servers are untouched.
        let probe = {
            let infra = infra.clone();
            std::thread::spawn(move || ask(&infra, 1))
        };
        scripted.wait_asked(1, 2);
        assert!(!infra.state(addr(1)).unwrap().usable());
        for _ in 0..50 {
            let e = ask(&infra, 1).unwrap_err();
            assert!(matches!(e, UpstreamError::BackedOff { .. }), "{e}");
            assert_eq!(e.kind(), "backoff");
        }
        assert_eq!(scripted.asked(1), 2);
        assert!(ask(&infra, 2).is_ok());
        assert!(matches!(
            probe.join().unwrap(),
            Err(UpstreamError::Timeout(_))
        ));
        // The probe is over: the next question is the next probe. The server is back,
        // so it answers, and it is up again.
        scripted.set_dead(1, false);
        assert!(ask(&infra, 1).is_ok());
        assert_eq!(infra.state(addr(1)).unwrap().down_for, None);
        assert!(ask(&infra, 1).is_ok());
        assert_eq!(scripted.asked(1), 4);
    }

    #[test]
    fn refusals_and_recursive_silences_do_not_mark_a_server_down() {
        let (scripted, infra) = infra();
        for _ in 0..3 {
            assert_eq!(ask(&infra, REFUSING).unwrap_err().kind(), "refused");
        }
        assert_eq!(scripted.asked(REFUSING), 3);
        assert_eq!(infra.state(addr(REFUSING)).unwrap().down_for, None);
        scripted.set_dead(1, true);
        let deadline = || Instant::now() + TIMEOUT;
        assert!(infra.ask_recursive(addr(1), &query(), deadline()).is_err());
        assert_eq!(infra.state(addr(1)).unwrap().down_for, None);
        // Nor does the end of a deadline shared with an earlier hop.
        let short = Instant::now() + TIMEOUT / 4;
        assert!(infra.ask(addr(1), &query(), short).is_err());
        assert_eq!(infra.state(addr(1)).unwrap().down_for, None);
    }

    #[test]
    fn the_fastest_live_server_is_picked() {
        let (scripted, infra) = infra();
        let (fast, slow, dead, unknown) = (addr(10), addr(11), addr(12), addr(13));
        assert!(ask(&infra, 10).is_ok());
        scripted.slow.store(30, Ordering::SeqCst);
        assert!(ask(&infra, 11).is_ok());
        scripted.slow.store(0, Ordering::SeqCst);
        scripted.set_dead(12, true);
        assert!(ask(&infra, 12).is_err());
        let srtt = |a| infra.state(a).unwrap().srtt.unwrap();
        assert!(srtt(fast) < srtt(slow));
        // A server that is down comes last, while it may be probed ...
        assert_eq!(
            infra.order(&[unknown, dead, slow, fast]),
            [fast, slow, unknown, dead]
        );
        assert_eq!(infra.pick(&[dead, slow]), Some(slow));
        assert_eq!(infra.pick(&[dead]), Some(dead));
        // ... and not at all while a probe is in flight.
        let probe = {
            let infra = infra.clone();
            std::thread::spawn(move || ask(&infra, 12))
        };
        scripted.wait_asked(12, 2);
        assert_eq!(infra.pick(&[dead]), None);
        assert_eq!(infra.order(&[dead, unknown]), [unknown]);
        assert!(probe.join().unwrap().is_err());
        assert_eq!(infra.state(unknown), None);
    }
}
