//! The questions waiting for another server's answer, held together (Unbound's mesh):
//! one resolution per question, identical questions joined to it, their number bounded.
//!
//! A resolver splits its work in two ([`Resolve`]): what it answers at once (a cache
//! hit, a referral, an authoritative answer, a refusal) and what needs other servers.
//! [`Inflight`] puts the second behind two doors, both of which resolve a new question
//! on the caller's thread (no hand-over to another thread, which would cost a wake-up
//! per miss):
//!
//! - [`Inflight::resolve`], for a caller that waits for its answer (a line-protocol or
//!   DNS-over-TCP connection): answered at once if it can be; else, if the same question
//!   is already being resolved, it waits for that answer; else it resolves it, and
//!   whoever joined meanwhile gets the answer too.
//! - [`Inflight::resolve_then`], for a caller that hands the answer on (a UDP thread):
//!   the same, but a question joined to one in flight leaves its callback with it and
//!   returns at once, its thread free; the callback gets the answer on the thread that
//!   has it.
//!
//! Both count against one bound, `--max-pending`: the questions waiting for an upstream
//! at once, joined ones included. Past it a new one is not queued: it is answered
//! SERVFAIL at once (`0XFE` for a line), counted (`dnsd_misses_refused_total`) and
//! logged once per overload, so memory and the threads held stay bounded however many
//! misses arrive, and answers from the cache never wait behind them.
//!
//! Nothing here knows a protocol: a callback is whatever turns a resolution into a reply.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::model::name::Name;
use crate::model::{Outcome, QType, Query, Recursion, Resolution};
use crate::ops::metrics::ServerMetrics;
use crate::sync::lock;

/// How many questions may wait for an upstream at once, unless `--max-pending` says
/// otherwise. As Unbound's `num-queries-per-thread`: enough for a load generator's
/// hundreds in flight, few enough that the threads resolving them stay cheap.
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// How many callers' threads resolve questions that came with a callback (UDP's) at
/// once, not counting those held longer than [`SLOW`]; the others wait their turn in a
/// backlog, which each of those threads works through before it returns. Enough that
/// the threads keep the processors busy while each waits for its upstreams; few enough
/// that they do not crowd them (threads switched in and out cost more than the
/// resolving: see BENCHMARKS.md).
pub const RESOLVERS: usize = 16;

/// A thread resolving one question for longer than this is waiting on a slow or dead
/// upstream, not using a processor: it no longer counts against [`RESOLVERS`], so that
/// questions for other servers do not wait behind it (at most `--max-pending` threads
/// in all).
pub const SLOW: Duration = Duration::from_millis(100);

/// A resolver's work, split: what it answers at once, and what needs other servers.
pub trait Resolve: Send + Sync + 'static {
    /// The answer if no other server need be asked (a cache hit, a referral, an
    /// authoritative answer, a refusal); `None` when one must.
    fn at_once(&self, query: &Query) -> Option<Resolution>;

    /// The answer through other servers, to a question that arrived at `arrived`: done
    /// by the upstream timeout counted from then, however long it waited for a
    /// resolving thread.
    fn through_upstream(&self, query: &Query, arrived: Instant) -> Resolution;

    /// What a question that joined another's resolution is answered: by default the
    /// same. (The local server answers it as from its cache, which the first one just
    /// filled: what it learned is recorded once, and answered once as learned.)
    fn joined(&self, resolution: &Resolution) -> Resolution {
        resolution.clone()
    }
}

/// What is done with a resolution: whatever turns it into a reply.
pub type Then = Box<dyn FnOnce(Resolution) + Send>;

/// Which questions are identical: the name, the type, the recursion asked for.
type Key = (Name, QType, Recursion);

fn key(query: &Query) -> Key {
    (query.name.clone(), query.qtype, query.recursion)
}

/// The questions being resolved; see the [module](self).
pub struct Inflight<R: Resolve> {
    resolver: R,
    name: String,
    max_pending: usize,
    /// How many callers' threads may resolve questions that came with a callback.
    resolvers: usize,
    /// How long on one question makes a resolving thread slow ([`SLOW`]).
    slow: Duration,
    table: Mutex<Table>,
    metrics: ServerMetrics,
}

#[derive(Default)]
struct Table {
    questions: HashMap<Key, Waiting>,
    /// Questions waiting, joined ones included.
    pending: usize,
    /// New questions are being refused (to log an overload once).
    refusing: bool,
    /// Questions that came with a callback while `resolvers` were resolving: the next
    /// resolver free takes them, in order.
    backlog: VecDeque<(Key, Query, Instant)>,
    /// The threads resolving questions that came with a callback, each a slot holding
    /// when it started its current question (`None`: a free slot).
    resolving: Vec<Option<Instant>>,
}

impl Table {
    /// The resolving threads that are not held up by a slow upstream (on their
    /// question for less than `slow`).
    fn busy(&self, now: Instant, slow: Duration) -> usize {
        self.resolving
            .iter()
            .flatten()
            .filter(|since| now.saturating_duration_since(**since) < slow)
            .count()
    }

    /// A slot for a new resolving thread, starting now.
    fn take_slot(&mut self, now: Instant) -> usize {
        match self.resolving.iter().position(Option::is_none) {
            Some(free) => {
                self.resolving[free] = Some(now);
                free
            }
            None => {
                self.resolving.push(Some(now));
                self.resolving.len() - 1
            }
        }
    }
}

/// One question being resolved, and who waits for its answer.
#[derive(Default)]
struct Waiting {
    /// The callback of the question that started it, if it came with one.
    first: Option<Then>,
    /// Callbacks of questions joined to it.
    joined: Vec<Then>,
    /// Where callers of `resolve` that joined it wait, and how many do.
    slot: Option<Arc<Slot>>,
    waiters: usize,
}

/// An answer handed to the threads that wait for it.
#[derive(Default)]
struct Slot {
    answer: Mutex<Option<Resolution>>,
    ready: Condvar,
}

/// How a question entered.
enum Entered {
    /// It starts the resolution: the caller resolves it (with a resolving slot, if it
    /// came with a callback).
    First(Option<usize>),
    /// It starts a resolution, which waits in the backlog for a resolver.
    Queued,
    /// It joined one in flight.
    Joined(Option<Arc<Slot>>),
    /// Over the bound: refused.
    Refused,
}

impl<R: Resolve> Inflight<R> {
    /// Resolves with `resolver`; at most `max_pending` questions wait at once (at
    /// least 1). `name` names the server in log lines; `metrics` counts the questions
    /// pending, joined and refused.
    pub fn new(resolver: R, name: &str, max_pending: usize, metrics: ServerMetrics) -> Inflight<R> {
        let max_pending = max_pending.max(1);
        Inflight {
            resolver,
            name: name.to_owned(),
            max_pending,
            resolvers: RESOLVERS.min(max_pending),
            slow: SLOW,
            table: Mutex::new(Table::default()),
            metrics,
        }
    }

    /// Resolves questions that come with a callback on at most `resolvers` callers'
    /// threads at once (not counting those held longer than [`SLOW`]; by default
    /// [`RESOLVERS`]).
    pub fn with_resolvers(mut self, resolvers: usize) -> Inflight<R> {
        self.resolvers = resolvers.clamp(1, self.max_pending);
        self
    }

    /// Counts a resolving thread as held up by a slow upstream after `slow` (tests
    /// move it rather than wait).
    #[cfg(test)]
    fn with_slow(mut self, slow: Duration) -> Inflight<R> {
        self.slow = slow;
        self
    }

    pub fn resolver(&self) -> &R {
        &self.resolver
    }

    /// The most questions that may wait at once.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// How many questions wait for an upstream now.
    pub fn pending(&self) -> usize {
        lock(&self.table).pending
    }

    /// The answer if it needs no other server: the resolver's own
    /// [`at_once`](Resolve::at_once).
    pub fn at_once(&self, query: &Query) -> Option<Resolution> {
        self.resolver.at_once(query)
    }

    /// Answers `query` on the calling thread: at once if it can be; else joined to the
    /// same question in flight (waiting for its answer), or resolved here (and handed
    /// to whoever joins it meanwhile); SERVFAIL at once over the bound.
    pub fn resolve(&self, query: &Query) -> Resolution {
        if let Some(now) = self.resolver.at_once(query) {
            return now;
        }
        let arrived = Instant::now();
        let key = key(query);
        match self.enter(&key, query, None, true) {
            Entered::First(_) => self.lead(key, query, arrived),
            Entered::Queued => unreachable!("a waiting caller resolves its own question"),
            Entered::Joined(slot) => {
                let slot = slot.expect("a waiting caller gets a slot");
                let answer = slot.wait();
                self.resolver.joined(&answer)
            }
            Entered::Refused => refused(),
        }
    }

    /// Resolves `query`, which [`at_once`](Self::at_once) could not answer, and hands
    /// the answer to `then`, exactly once: here, once resolved, and then whatever waits
    /// in the backlog (this call takes as long as the upstreams do, and at most
    /// `--max-pending` calls do so at once); or, while [`RESOLVERS`] threads are
    /// resolving already (none held up by a slow upstream), from one of them, as is the
    /// answer to a question joined to the same one in flight (this call returns at
    /// once); or at once, SERVFAIL, over `--max-pending`.
    pub fn resolve_then(&self, query: Query, then: Then) {
        let arrived = Instant::now();
        let key = key(&query);
        if let Entered::First(Some(slot)) = self.enter(&key, &query, Some(then), false) {
            self.resolve_backlog(slot, (key, query, arrived));
        }
        // Queued or joined: answered by a resolver. Refused: answered already.
    }

    /// Resolves a question, then each waiting in the backlog, until it is empty; `slot`
    /// is this thread's among those resolving.
    fn resolve_backlog(&self, slot: usize, first: (Key, Query, Instant)) {
        // Should the resolver panic, its slot is freed all the same.
        let mut resolving = Resolving {
            inflight: self,
            slot: Some(slot),
        };
        let (mut key, mut query, mut arrived) = first;
        loop {
            self.lead(key, &query, arrived);
            let mut table = lock(&self.table);
            match table.backlog.pop_front() {
                Some(next) => {
                    table.resolving[slot] = Some(Instant::now());
                    (key, query, arrived) = next;
                }
                None => {
                    table.resolving[slot] = None;
                    resolving.slot = None;
                    return;
                }
            }
        }
    }
}

/// The answer to a question refused over the bound.
fn refused() -> Resolution {
    Resolution::new(Outcome::ServFail)
}

impl<R: Resolve> Inflight<R> {
    /// Enters a question: the first of its kind, joined (with `then`, or as a caller
    /// waiting on a slot when `wait`), or refused (`then` answered at once).
    fn enter(&self, key: &Key, query: &Query, then: Option<Then>, wait: bool) -> Entered {
        let mut table = lock(&self.table);
        if table.pending >= self.max_pending {
            if !std::mem::replace(&mut table.refusing, true) {
                log::warn!(
                    "{}: {} questions already wait for an upstream (--max-pending): \
                     refusing new ones until some are answered",
                    self.name,
                    self.max_pending
                );
            }
            drop(table);
            self.metrics.miss_refused();
            if let Some(then) = then {
                then(refused());
            }
            return Entered::Refused;
        }
        table.refusing = false;
        table.pending += 1;
        let pending = table.pending;
        let entered = match table.questions.get_mut(key) {
            Some(waiting) => {
                if let Some(then) = then {
                    waiting.joined.push(then);
                }
                let slot = wait.then(|| {
                    waiting.waiters += 1;
                    waiting.slot.get_or_insert_with(Default::default).clone()
                });
                Entered::Joined(slot)
            }
            None => {
                let callback = then.is_some();
                table.questions.insert(
                    key.clone(),
                    Waiting {
                        first: then,
                        ..Waiting::default()
                    },
                );
                let now = Instant::now();
                if !callback {
                    Entered::First(None)
                } else if table.busy(now, self.slow) < self.resolvers {
                    Entered::First(Some(table.take_slot(now)))
                } else {
                    table.backlog.push_back((key.clone(), query.clone(), now));
                    Entered::Queued
                }
            }
        };
        drop(table);
        if matches!(entered, Entered::Joined(_)) {
            self.metrics.miss_joined();
        }
        self.metrics.misses_pending(pending);
        entered
    }

    /// Resolves the question that `key` stands for, and hands the answer to every one
    /// waiting for it; returns it for the caller that started it.
    fn lead(&self, key: Key, query: &Query, arrived: Instant) -> Resolution {
        // Should the resolver panic, whoever waits still gets an answer.
        let mut guard = Finish {
            inner: self,
            key: Some(key),
        };
        let answer = self.resolver.through_upstream(query, arrived);
        let key = guard.key.take().expect("finished once");
        self.finish(key, &answer);
        answer
    }

    /// Takes the question off the table and answers everyone that waited for it; only
    /// then are they no longer pending (their replies are part of the work).
    fn finish(&self, key: Key, answer: &Resolution) {
        let waiting = lock(&self.table).questions.remove(&key).unwrap_or_default();
        let done = 1 + waiting.joined.len() + waiting.waiters;
        if let Some(slot) = &waiting.slot {
            *lock(&slot.answer) = Some(answer.clone());
            slot.ready.notify_all();
        }
        for then in waiting.joined {
            then(self.resolver.joined(answer));
        }
        if let Some(first) = waiting.first {
            first(answer.clone());
        }
        let mut table = lock(&self.table);
        table.pending = table.pending.saturating_sub(done);
        let pending = table.pending;
        drop(table);
        self.metrics.misses_pending(pending);
    }
}

/// Frees a resolving thread's slot if it panicked while it held it.
struct Resolving<'a, R: Resolve> {
    inflight: &'a Inflight<R>,
    slot: Option<usize>,
}

impl<R: Resolve> Drop for Resolving<'_, R> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            lock(&self.inflight.table).resolving[slot] = None;
        }
    }
}

/// Answers a question's waiters with SERVFAIL if its resolution never ended (a panic).
struct Finish<'a, R: Resolve> {
    inner: &'a Inflight<R>,
    key: Option<Key>,
}

impl<R: Resolve> Drop for Finish<'_, R> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.inner.finish(key, &refused());
        }
    }
}

impl Slot {
    /// Waits for the answer. The thread resolving it always hands one over, within
    /// the upstream timeout (or at once, SERVFAIL, should it panic).
    fn wait(&self) -> Resolution {
        let mut answer = lock(&self.answer);
        loop {
            if let Some(answer) = &*answer {
                return answer.clone();
            }
            answer = self.ready.wait(answer).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RData;
    use crate::model::Record;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(10);

    /// Answers `hit.test` at once; every other name only once `release` is called,
    /// counting how many times each name went upstream.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        upstream: Mutex<HashMap<String, usize>>,
        started: AtomicUsize,
        /// When each name's question arrived, as its resolver was told.
        arrived: Mutex<HashMap<String, Instant>>,
    }

    impl Gate {
        fn release(&self) {
            *lock(&self.open) = true;
            self.opened.notify_all();
        }

        fn asked(&self, name: &str) -> usize {
            lock(&self.upstream).get(name).copied().unwrap_or(0)
        }

        /// Waits (bounded) until `n` resolutions have started upstream.
        fn wait_started(&self, n: usize) {
            let until = Instant::now() + WAIT;
            while self.started.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < until, "{n} resolutions never started");
                thread::yield_now();
            }
        }
    }

    fn answer(name: &Name) -> Resolution {
        Resolution::new(Outcome::Answer(vec![Record::new(
            name.clone(),
            60,
            RData::A([10, 0, 0, 1].into()),
        )]))
    }

    impl Resolve for Arc<Gate> {
        fn at_once(&self, query: &Query) -> Option<Resolution> {
            (query.name.as_str() == "hit.test")
                .then(|| Resolution::cached(answer(&query.name).outcome))
        }

        fn through_upstream(&self, query: &Query, arrived: Instant) -> Resolution {
            lock(&self.arrived).insert(query.name.to_string(), arrived);
            *lock(&self.upstream)
                .entry(query.name.to_string())
                .or_default() += 1;
            self.started.fetch_add(1, Ordering::SeqCst);
            let mut open = lock(&self.open);
            let until = Instant::now() + WAIT;
            while !*open && Instant::now() < until {
                open = self.opened.wait_timeout(open, WAIT).unwrap().0;
            }
            answer(&query.name)
        }

        fn joined(&self, resolution: &Resolution) -> Resolution {
            Resolution {
                cached: true,
                ..resolution.clone()
            }
        }
    }

    fn q(name: &str) -> Query {
        Query::new(Name::from_wire(name), QType::A, Recursion::Iterative)
    }

    type Shared = Arc<Inflight<Arc<Gate>>>;

    fn inflight(max: usize) -> (Arc<Gate>, Shared) {
        with(max, |i| i)
    }

    fn with(
        max: usize,
        tweak: impl FnOnce(Inflight<Arc<Gate>>) -> Inflight<Arc<Gate>>,
    ) -> (Arc<Gate>, Shared) {
        let gate = Arc::new(Gate::default());
        let inflight = Inflight::new(gate.clone(), "test", max, ServerMetrics::DISABLED);
        (gate, Arc::new(tweak(inflight)))
    }

    /// Asks `name` with a callback; its answer (the name, or SERVFAIL, and whether it
    /// came as joined) arrives on `tx`. The first of a kind holds the calling thread,
    /// so it is asked from a thread of its own; the others return at once.
    fn ask(inflight: &Shared, name: &str, tx: &mpsc::Sender<(String, bool)>) {
        let (inflight, tx, n) = (inflight.clone(), tx.clone(), name.to_owned());
        let then: Then = Box::new(move |r: Resolution| {
            let ok = !matches!(r.outcome, Outcome::ServFail);
            let _ = tx.send((if ok { n } else { "SERVFAIL".into() }, r.cached));
        });
        inflight.resolve_then(q(name), then);
    }

    fn ask_on_a_thread(inflight: &Shared, name: &str, tx: &mpsc::Sender<(String, bool)>) {
        let (inflight, tx, name) = (inflight.clone(), tx.clone(), name.to_owned());
        thread::spawn(move || ask(&inflight, &name, &tx));
    }

    #[test]
    fn identical_questions_in_flight_go_upstream_once() {
        let (gate, inflight) = inflight(100);
        let (tx, rx) = mpsc::channel();
        ask_on_a_thread(&inflight, "a.test", &tx);
        ask_on_a_thread(&inflight, "b.test", &tx);
        gate.wait_started(2);
        // Joined: each returns at once, its answer to come from the first one's thread.
        for _ in 0..9 {
            ask(&inflight, "a.test", &tx);
        }
        assert_eq!(inflight.pending(), 11);
        // A caller that waits for its answer joins too.
        let waiter = {
            let inflight = inflight.clone();
            thread::spawn(move || inflight.resolve(&q("a.test")))
        };
        let until = Instant::now() + WAIT;
        while inflight.pending() < 12 {
            assert!(Instant::now() < until, "the waiter never joined");
            thread::yield_now();
        }
        gate.release();
        assert!(
            waiter.join().unwrap().cached,
            "a joined caller is answered as joined"
        );
        let got: Vec<(String, bool)> = (0..11).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        let count = |name: &str, cached: bool| {
            got.iter()
                .filter(|(n, c)| n == name && *c == cached)
                .count()
        };
        assert_eq!(
            (count("a.test", false), count("a.test", true)),
            (1, 9),
            "{got:?}"
        );
        assert_eq!(count("b.test", false), 1);
        assert_eq!(gate.asked("a.test"), 1);
        assert_eq!(gate.asked("b.test"), 1);
        wait_idle(&inflight);
    }

    #[test]
    fn over_the_bound_new_questions_are_refused_at_once_and_hits_still_answered() {
        let (gate, inflight) = inflight(3);
        let (tx, rx) = mpsc::channel();
        for name in ["a.test", "b.test", "c.test"] {
            ask_on_a_thread(&inflight, name, &tx);
        }
        gate.wait_started(3);
        // Full: a new question, and one that would join, are refused at once.
        ask(&inflight, "d.test", &tx);
        ask(&inflight, "a.test", &tx);
        assert_eq!(rx.recv_timeout(WAIT).unwrap().0, "SERVFAIL");
        assert_eq!(rx.recv_timeout(WAIT).unwrap().0, "SERVFAIL");
        assert!(matches!(
            inflight.resolve(&q("e.test")).outcome,
            Outcome::ServFail
        ));
        // Answers that need no upstream are not held up.
        assert!(inflight.resolve(&q("hit.test")).cached);
        assert_eq!(gate.asked("d.test") + gate.asked("e.test"), 0);
        gate.release();
        for _ in 0..3 {
            assert_ne!(rx.recv_timeout(WAIT).unwrap().0, "SERVFAIL");
        }
        // Room again, once the callbacks are through.
        wait_idle(&inflight);
        ask(&inflight, "d.test", &tx);
        assert_eq!(rx.recv_timeout(WAIT).unwrap().0, "d.test");
        wait_idle(&inflight);
    }

    /// Waits (bounded) until nothing is pending: a question stops counting once its
    /// callbacks have run, just after they have sent their answers.
    fn wait_idle(inflight: &Shared) {
        let until = Instant::now() + WAIT;
        while inflight.pending() > 0 {
            assert!(Instant::now() < until, "still pending");
            thread::yield_now();
        }
    }

    #[test]
    fn questions_past_the_resolvers_wait_their_turn_on_a_resolving_thread() {
        // One resolving thread, never counted slow: b and c wait in the backlog, and
        // the thread that resolves a resolves them next; their callers return at once.
        let never = Duration::from_secs(3600);
        let (gate, inflight) = with(10, |i| i.with_resolvers(1).with_slow(never));
        let (tx, rx) = mpsc::channel();
        ask_on_a_thread(&inflight, "a.test", &tx);
        gate.wait_started(1);
        ask(&inflight, "b.test", &tx);
        ask(&inflight, "c.test", &tx);
        ask(&inflight, "b.test", &tx);
        assert_eq!(inflight.pending(), 4);
        assert_eq!(gate.asked("b.test") + gate.asked("c.test"), 0);
        let queued = Instant::now();
        gate.release();
        let mut got: Vec<(String, bool)> = (0..4).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        got.sort();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.test", "b.test", "b.test", "c.test"]);
        assert_eq!(
            (
                gate.asked("a.test"),
                gate.asked("b.test"),
                gate.asked("c.test")
            ),
            (1, 1, 1)
        );
        // Their upstream timeout counts from when they arrived, not from when the
        // resolving thread got to them: a miss waits no longer than the timeout in all.
        for name in ["b.test", "c.test"] {
            assert!(
                lock(&gate.arrived)[name] < queued,
                "{name}: arrival time lost"
            );
        }
        let until = Instant::now() + WAIT;
        while inflight.pending() > 0 {
            assert!(Instant::now() < until, "still pending");
            thread::yield_now();
        }
    }

    #[test]
    fn a_resolving_thread_held_by_a_slow_upstream_holds_up_no_other_question() {
        // One resolving thread, counted slow at once (as after SLOW on a dead upstream):
        // b does not wait behind a, but is resolved on its caller's thread meanwhile.
        let (gate, inflight) = with(10, |i| i.with_resolvers(1).with_slow(Duration::ZERO));
        let (tx, rx) = mpsc::channel();
        ask_on_a_thread(&inflight, "a.test", &tx);
        gate.wait_started(1);
        ask_on_a_thread(&inflight, "b.test", &tx);
        gate.wait_started(2);
        assert_eq!(gate.asked("b.test"), 1);
        gate.release();
        let mut got: Vec<String> = (0..2).map(|_| rx.recv_timeout(WAIT).unwrap().0).collect();
        got.sort();
        assert_eq!(got, ["a.test", "b.test"]);
    }

    #[test]
    fn a_resolver_that_panics_still_answers_its_waiters() {
        struct Panics;
        impl Resolve for Panics {
            fn at_once(&self, _: &Query) -> Option<Resolution> {
                None
            }
            fn through_upstream(&self, _: &Query, _: Instant) -> Resolution {
                panic!("a bug")
            }
        }
        let inflight = Inflight::new(Panics, "test", 10, ServerMetrics::DISABLED);
        let (tx, rx) = mpsc::channel();
        let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inflight.resolve_then(
                q("a.test"),
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
        }));
        assert!(asked.is_err(), "the panic reaches the caller");
        let r = rx.recv_timeout(WAIT).unwrap();
        assert!(matches!(r.outcome, Outcome::ServFail));
        assert_eq!(inflight.pending(), 0);
    }
}
