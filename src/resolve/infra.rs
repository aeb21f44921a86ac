//! The upstreams remembered, as Unbound's infrastructure cache does: per server address,
//! a smoothed round-trip time, and a backoff once it has stopped answering, so that a
//! dead server costs one timeout, then one short probe per backoff period, instead of a
//! whole timeout per question.
//!
//! [`Infra`] is an [`Ask`] in front of another: whichever protocol carries a question,
//! the same memory serves it. What it remembers of an address ([`HostState`]) is also
//! there for a resolver that knows several servers for a zone to ask the fastest live
//! one first ([`Infra::order`], [`Infra::pick`]).
//!
//! The rules, for one address:
//! - Every answer (any reply at all, even SERVFAIL) is a round-trip sample: the smoothed
//!   estimate and its variation follow RFC 6298's arithmetic (TCP's retransmission
//!   timer), and the address is up.
//! - A timeout, on a question given at least half the upstream timeout, marks it down
//!   (a question left only the end of a deadline shared with an earlier hop proves
//!   nothing). So does nothing else: a refused connection or a garbled reply fails that
//!   question at once and costs nothing, and shows that something is there.
//! - While down, a question that needs it fails at once ([`UpstreamError::BackedOff`]),
//!   except one at a time, the *probe*, which is asked with a short wait (a quarter of
//!   the upstream timeout, or four round trips if the server was known to be slower).
//!   The first probe may go as soon as the server is marked down, so that a server back
//!   from a short cut answers the next question; each probe that times out pushes the
//!   next one back, 1 s, then 2, 4, 8, up to [`MAX_BACKOFF`]. A probe answered brings
//!   the address back up.
//! - A server asked to recurse (the root in mode R) may be silent because a server *it*
//!   asks is: [`Infra::ask_recursive`] takes its round trips and obeys its backoff, but
//!   its timeouts do not mark it down.
//!
//! Backoff periods are read from the resolver's [`Clock`] (tests move a `ManualClock`);
//! round trips and deadlines from the sockets' own time.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::{Clock, SystemClock};
use super::upstream::{Ask, UpstreamError};
use crate::model::{Query, Resolution};
use crate::sync::lock;

/// The first wait between two probes of a server that is down; each probe that times
/// out doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two probes of a server that is down: how long a server back
/// from a long outage may go unasked.
pub const MAX_BACKOFF: Duration = Duration::from_secs(16);

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
    down: Option<Down>,
    /// When it was last asked (by the resolver's clock), to forget the stalest first.
    used: Instant,
}

/// An address that stopped answering.
#[derive(Clone, Copy, Debug)]
struct Down {
    /// Probes that timed out since it went down.
    failed_probes: u32,
    /// When the next probe may go.
    next_probe: Instant,
    /// A probe is in flight: every other question fails at once.
    probing: bool,
}

/// What is known of one upstream address, for a resolver choosing among several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostState {
    /// The smoothed round-trip time; `None` if it never answered.
    pub srtt: Option<Duration>,
    /// How much the round-trip time varies (RFC 6298's RTTVAR).
    pub rttvar: Duration,
    /// Whether it is backed off: it timed out, and has not answered since.
    pub down: bool,
    /// Probes that timed out since it went down.
    pub failed_probes: u32,
    /// How long until a question may be sent to it (zero: now); a probe in flight
    /// counts as a wait of [`UNKNOWN_RTT`].
    pub wait: Duration,
}

impl HostState {
    /// Whether a question may be sent to it now (it is up, or a probe is due).
    pub fn usable(&self) -> bool {
        self.wait.is_zero()
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

/// An [`Ask`] that remembers each address's round-trip time and backs off the ones
/// that stopped answering. See the [module](self) for the rules.
pub struct Infra {
    ask: Arc<dyn Ask>,
    /// The upstream timeout: what a question is normally given.
    timeout: Duration,
    clock: Arc<dyn Clock>,
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
            clock: Arc::new(SystemClock),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Reads backoff periods from `clock` instead of the system's (tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Infra {
        self.clock = clock;
        self
    }

    /// The asker behind this one.
    pub fn inner(&self) -> &Arc<dyn Ask> {
        &self.ask
    }

    /// What is known of `addr`; `None` if it was never asked (or was forgotten).
    pub fn state(&self, addr: SocketAddr) -> Option<HostState> {
        let now = self.clock.now();
        lock(&self.hosts).get(&addr).map(|h| h.state(now))
    }

    /// The candidates a question may be sent to now, the fastest first (by smoothed
    /// round-trip time; one never asked counts as [`UNKNOWN_RTT`]); those backed off
    /// and not yet due a probe are left out. Equals keep their order.
    pub fn order(&self, candidates: &[SocketAddr]) -> Vec<SocketAddr> {
        let now = self.clock.now();
        let hosts = lock(&self.hosts);
        let mut usable: Vec<(Duration, SocketAddr)> = candidates
            .iter()
            .filter_map(|addr| match hosts.get(addr) {
                None => Some((UNKNOWN_RTT, *addr)),
                Some(host) => {
                    let state = host.state(now);
                    state.usable().then(|| (state.rtt(), *addr))
                }
            })
            .collect();
        usable.sort_by_key(|(rtt, _)| *rtt);
        usable.into_iter().map(|(_, addr)| addr).collect()
    }

    /// The fastest of the candidates a question may be sent to now; `None` if every one
    /// is backed off.
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
        let started = Instant::now();
        let deadline = match admit {
            Admit::Ask => deadline,
            Admit::Probe => deadline.min(started + self.probe_wait(addr)),
        };
        // Clears the probe's flag even if the asker panics.
        let mut probe = ProbeGuard {
            infra: self,
            addr,
            armed: admit == Admit::Probe,
        };
        let result = self.ask.ask(addr, query, deadline);
        probe.armed = false;
        let given = deadline.saturating_duration_since(started);
        self.record(addr, admit, blame, started.elapsed(), given, &result);
        result
    }

    /// Lets a question to `addr` through, as itself or as a probe, or fails it.
    fn admit(&self, addr: SocketAddr) -> Result<Admit, UpstreamError> {
        let now = self.clock.now();
        let mut hosts = lock(&self.hosts);
        let Some(down) = hosts.get_mut(&addr).and_then(|h| h.down.as_mut()) else {
            return Ok(Admit::Ask);
        };
        if down.probing || now < down.next_probe {
            let retry_in = down.next_probe.saturating_duration_since(now);
            return Err(UpstreamError::BackedOff {
                addr,
                retry_in: (!down.probing).then_some(retry_in),
            });
        }
        down.probing = true;
        Ok(Admit::Probe)
    }

    /// How long a probe of `addr` waits: a quarter of the upstream timeout, or four
    /// round trips of a server known to be slower, and never more than the timeout.
    fn probe_wait(&self, addr: SocketAddr) -> Duration {
        let srtt = lock(&self.hosts).get(&addr).and_then(|h| h.srtt);
        let wait = (self.timeout / 4).max(srtt.unwrap_or_default() * 4);
        wait.min(self.timeout)
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
        let now = self.clock.now();
        let mut hosts = lock(&self.hosts);
        if !hosts.contains_key(&addr) && hosts.len() >= MAX_HOSTS {
            forget_stalest(&mut hosts);
        }
        let host = hosts.entry(addr).or_insert(Host {
            srtt: None,
            rttvar: Duration::ZERO,
            down: None,
            used: now,
        });
        host.used = now;
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
        match (&mut host.down, admit) {
            (Some(down), Admit::Probe) => {
                down.failed_probes += 1;
                down.probing = false;
                down.next_probe = now + backoff(down.failed_probes);
            }
            // Asked before it went down, and timed out with the rest: nothing new.
            (Some(_), Admit::Ask) => {}
            (None, _) if blame == Blame::Server && given >= self.timeout / 2 => {
                log::warn!(
                    "upstream {addr} did not answer within {given:?}: backing off (questions \
                     that need it fail at once, one at a time probes it)"
                );
                host.down = Some(Down {
                    failed_probes: 0,
                    next_probe: now,
                    probing: false,
                });
            }
            (None, _) => {}
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
            if let Some(down) = lock(&self.infra.hosts)
                .get_mut(&self.addr)
                .and_then(|h| h.down.as_mut())
            {
                down.probing = false;
            }
        }
    }
}

/// The wait after the `failed`th probe that timed out: [`FIRST_BACKOFF`], doubling, at
/// most [`MAX_BACKOFF`].
fn backoff(failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(16);
    (FIRST_BACKOFF * (1u32 << doublings)).min(MAX_BACKOFF)
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
        let wait = match &self.down {
            None => Duration::ZERO,
            Some(down) if down.probing => UNKNOWN_RTT,
            Some(down) => down.next_probe.saturating_duration_since(now),
        };
        HostState {
            srtt: self.srtt,
            rttvar: self.rttvar,
            down: self.down.is_some(),
            failed_probes: self.down.map_or(0, |d| d.failed_probes),
            wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::Name;
    use crate::model::{Outcome, QType, Recursion};
    use crate::resolve::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TIMEOUT: Duration = Duration::from_millis(400);

    /// An upstream whose servers answer at once, time out (after sleeping until the
    /// deadline) or refuse, by port; it counts the questions each port was asked.
    #[derive(Debug, Default)]
    struct Scripted {
        dead: Mutex<Vec<u16>>,
        asked: Mutex<HashMap<u16, usize>>,
        /// The time each question was given, in order.
        given: Mutex<Vec<Duration>>,
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
    }

    impl Ask for Scripted {
        fn ask(
            &self,
            addr: SocketAddr,
            query: &Query,
            deadline: Instant,
        ) -> Result<Resolution, UpstreamError> {
            *lock(&self.asked).entry(addr.port()).or_default() += 1;
            lock(&self.given).push(deadline.saturating_duration_since(Instant::now()));
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

    fn infra() -> (Arc<Scripted>, Arc<ManualClock>, Infra) {
        let scripted = Arc::new(Scripted::default());
        let clock = Arc::new(ManualClock::new());
        let infra = Infra::new(scripted.clone(), TIMEOUT).with_clock(clock.clone());
        (scripted, clock, infra)
    }

    fn ask(infra: &Infra, port: u16) -> Result<Resolution, UpstreamError> {
        infra.ask(addr(port), &query(), Instant::now() + TIMEOUT)
    }

    #[test]
    fn a_dead_server_costs_one_timeout_then_one_probe_per_backoff_period() {
        let (scripted, clock, infra) = infra();
        scripted.set_dead(1, true);
        let started = Instant::now();
        assert!(matches!(ask(&infra, 1), Err(UpstreamError::Timeout(_))));
        assert!(started.elapsed() >= TIMEOUT);
        assert_eq!(scripted.asked(1), 1);
        // The next question probes it, with a quarter of the timeout.
        assert!(matches!(ask(&infra, 1), Err(UpstreamError::Timeout(_))));
        assert_eq!(scripted.asked(1), 2);
        let probe_given = *lock(&scripted.given).last().unwrap();
        assert!(probe_given <= TIMEOUT / 4, "{probe_given:?}");
        // Then every question fails at once, without asking it, for the backoff.
        for _ in 0..50 {
            let e = ask(&infra, 1).unwrap_err();
            assert!(matches!(e, UpstreamError::BackedOff { .. }), "{e}");
            assert_eq!(e.kind(), "backoff");
        }
        assert_eq!(scripted.asked(1), 2);
        let state = infra.state(addr(1)).unwrap();
        assert!(state.down && !state.usable());
        assert_eq!(state.failed_probes, 1);
        assert!(state.wait <= FIRST_BACKOFF && state.wait > Duration::ZERO);
        // Other servers are untouched.
        assert!(ask(&infra, 2).is_ok());
        // Past the backoff, one probe; it fails, and the next wait is twice as long.
        clock.advance(FIRST_BACKOFF);
        assert!(matches!(ask(&infra, 1), Err(UpstreamError::Timeout(_))));
        assert_eq!(scripted.asked(1), 3);
        assert!(infra.state(addr(1)).unwrap().wait > FIRST_BACKOFF);
        clock.advance(FIRST_BACKOFF);
        assert!(matches!(
            ask(&infra, 1),
            Err(UpstreamError::BackedOff { .. })
        ));
        // Back up: the first probe due brings it back for every question.
        scripted.set_dead(1, false);
        clock.advance(FIRST_BACKOFF);
        assert!(ask(&infra, 1).is_ok());
        assert!(ask(&infra, 1).is_ok());
        assert_eq!(scripted.asked(1), 5);
        assert!(!infra.state(addr(1)).unwrap().down);
    }

    #[test]
    fn a_server_back_from_a_short_cut_answers_the_next_question() {
        // The first probe may go at once: a server whose link came back is asked.
        let (scripted, _clock, infra) = infra();
        scripted.set_dead(1, true);
        assert!(ask(&infra, 1).is_err());
        scripted.set_dead(1, false);
        assert!(ask(&infra, 1).is_ok());
        assert!(!infra.state(addr(1)).unwrap().down);
    }

    #[test]
    fn only_one_probe_is_in_flight() {
        let (scripted, _clock, infra) = infra();
        scripted.set_dead(1, true);
        assert!(ask(&infra, 1).is_err());
        let infra = Arc::new(infra);
        let probe = {
            let infra = infra.clone();
            std::thread::spawn(move || ask(&infra, 1))
        };
        // Wait (bounded) for the probe to be in flight.
        let until = Instant::now() + Duration::from_secs(10);
        while scripted.asked(1) < 2 && Instant::now() < until {
            std::thread::yield_now();
        }
        assert_eq!(scripted.asked(1), 2);
        let e = ask(&infra, 1).unwrap_err();
        assert!(e.to_string().contains("a try is in flight"), "{e}");
        assert!(probe.join().unwrap().is_err());
        assert_eq!(scripted.asked(1), 2);
    }

    #[test]
    fn refusals_and_recursive_silences_do_not_back_off() {
        let (scripted, _clock, infra) = infra();
        for _ in 0..3 {
            assert_eq!(ask(&infra, REFUSING).unwrap_err().kind(), "refused");
        }
        assert_eq!(scripted.asked(REFUSING), 3);
        assert!(!infra.state(addr(REFUSING)).unwrap().down);
        scripted.set_dead(1, true);
        let deadline = || Instant::now() + TIMEOUT;
        assert!(infra.ask_recursive(addr(1), &query(), deadline()).is_err());
        assert!(infra.ask_recursive(addr(1), &query(), deadline()).is_err());
        assert_eq!(scripted.asked(1), 2);
        assert!(!infra.state(addr(1)).unwrap().down);
        // Nor does the end of a deadline shared with an earlier hop.
        let short = Instant::now() + TIMEOUT / 4;
        assert!(infra.ask(addr(1), &query(), short).is_err());
        assert!(!infra.state(addr(1)).unwrap().down);
    }

    #[test]
    fn the_fastest_live_server_is_picked() {
        let (scripted, _clock, infra) = infra();
        let (fast, slow, dead, unknown) = (addr(10), addr(11), addr(12), addr(13));
        assert!(ask(&infra, 10).is_ok());
        scripted.slow.store(30, Ordering::SeqCst);
        assert!(ask(&infra, 11).is_ok());
        scripted.slow.store(0, Ordering::SeqCst);
        scripted.set_dead(12, true);
        assert!(ask(&infra, 12).is_err());
        assert!(ask(&infra, 12).is_err());
        let srtt = |a| infra.state(a).unwrap().srtt.unwrap();
        assert!(srtt(fast) < srtt(slow));
        assert_eq!(
            infra.order(&[unknown, dead, slow, fast]),
            [fast, slow, unknown]
        );
        assert_eq!(infra.pick(&[dead, slow]), Some(slow));
        assert_eq!(infra.pick(&[dead]), None);
        assert_eq!(infra.state(unknown), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_most() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(5), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
