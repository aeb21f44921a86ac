//! The questions waiting for another server's answer, held together (Unbound's mesh):
//! one resolution per question, identical questions joined to it, their number bounded,
//! and a pool of threads to resolve them, so that a receiving thread never waits for
//! an upstream.
//!
//! A resolver splits its work in two ([`Resolve`]): what it answers at once (a cache
//! hit, a referral, an authoritative answer, a refusal) and what needs other servers.
//! [`Inflight`] puts the second behind two doors:
//!
//! - [`Inflight::resolve`], for a caller that has a thread of its own to wait on (a
//!   line-protocol or DNS-over-TCP connection): answered at once if it can be; else,
//!   if the same question is already being resolved, it waits for that answer; else it
//!   resolves it on its own thread, and whoever joined meanwhile gets the answer too.
//! - [`Inflight::submit`], for a caller that must not wait (the UDP receiving threads):
//!   the question is joined to the same one in flight, or handed to the pool; the
//!   callback gets the answer on the thread that had it.
//!
//! Both count against one bound, `--max-pending`: the questions waiting for an upstream
//! at once, joined ones included. Past it a new one is not queued: it is answered
//! SERVFAIL at once (`0XFE` for a line), counted (`dnsd_misses_refused_total`) and
//! logged once per overload, so memory and threads stay bounded however many misses
//! arrive, and answers from the cache never wait behind them.
//!
//! Nothing here knows a protocol: a callback is whatever turns a resolution into a reply.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::model::name::Name;
use crate::model::{Outcome, QType, Query, Recursion, Resolution};
use crate::ops::metrics::ServerMetrics;
use crate::sync::lock;

/// How many questions may wait for an upstream at once, unless `--max-pending` says
/// otherwise. As Unbound's `num-queries-per-thread`: enough for a load generator's
/// hundreds in flight, few enough that the threads resolving them stay cheap.
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// How long a pool thread with nothing to do waits before it ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

/// Stack size of a pool thread: a resolution keeps its buffers on the heap, as a
/// connection's does (whose threads have 128 KiB); twice that, to spare.
pub const WORKER_STACK: usize = 256 * 1024;

/// A resolver's work, split: what it answers at once, and what needs other servers.
pub trait Resolve: Send + Sync + 'static {
    /// The answer if no other server need be asked (a cache hit, a referral, an
    /// authoritative answer, a refusal); `None` when one must.
    fn at_once(&self, query: &Query) -> Option<Resolution>;

    /// The answer through other servers: may take up to the upstream timeout.
    fn through_upstream(&self, query: &Query) -> Resolution;

    /// What a question that joined another's resolution is answered: by default the
    /// same. (The local server answers it as from its cache, which the first one just
    /// filled: what it learned is recorded once, and answered once as learned.)
    fn joined(&self, resolution: &Resolution) -> Resolution {
        resolution.clone()
    }
}

/// What is done with a resolution handed over later: whatever turns it into a reply.
pub type Then = Box<dyn FnOnce(Resolution) + Send>;

/// Which questions are identical: the name, the type, the recursion asked for.
type Key = (Name, QType, Recursion);

fn key(query: &Query) -> Key {
    (query.name.clone(), query.qtype, query.recursion)
}

/// The questions being resolved and a pool to resolve them; see the [module](self).
pub struct Inflight<R: Resolve> {
    inner: Arc<Inner<R>>,
}

struct Inner<R> {
    resolver: R,
    name: String,
    max_pending: usize,
    table: Mutex<Table>,
    /// Signalled when nothing is pending any more (for a drain at shutdown).
    empty: Condvar,
    pool: Pool,
    metrics: ServerMetrics,
}

#[derive(Default)]
struct Table {
    questions: HashMap<Key, Waiting>,
    /// Questions waiting, joined ones included.
    pending: usize,
    /// New questions are being refused (to log an overload once).
    refusing: bool,
}

/// One question being resolved, and who waits for its answer.
#[derive(Default)]
struct Waiting {
    /// The callback of the question that started it, if it came by `submit`.
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
    /// It starts the resolution: the caller resolves it.
    First,
    /// It joined one in flight.
    Joined(Option<Arc<Slot>>),
    /// Over the bound: refused.
    Refused,
}

impl<R: Resolve> Inflight<R> {
    /// Resolves with `resolver`; at most `max_pending` questions wait at once (at
    /// least 1). `name` names the pool's threads and log lines; `metrics` counts the
    /// questions pending, joined and refused.
    pub fn new(resolver: R, name: &str, max_pending: usize, metrics: ServerMetrics) -> Inflight<R> {
        let max_pending = max_pending.max(1);
        Inflight {
            inner: Arc::new(Inner {
                resolver,
                name: name.to_owned(),
                max_pending,
                table: Mutex::new(Table::default()),
                empty: Condvar::new(),
                pool: Pool::new(format!("{name}-miss"), max_pending),
                metrics,
            }),
        }
    }

    pub fn resolver(&self) -> &R {
        &self.inner.resolver
    }

    /// The most questions that may wait at once.
    pub fn max_pending(&self) -> usize {
        self.inner.max_pending
    }

    /// How many questions wait for an upstream now.
    pub fn pending(&self) -> usize {
        lock(&self.inner.table).pending
    }

    /// The answer if it needs no other server: the resolver's own
    /// [`at_once`](Resolve::at_once).
    pub fn at_once(&self, query: &Query) -> Option<Resolution> {
        self.inner.resolver.at_once(query)
    }

    /// Answers `query` on the calling thread: at once if it can be; else joined to the
    /// same question in flight, or resolved here (and handed to whoever joins it
    /// meanwhile); SERVFAIL at once over the bound.
    pub fn resolve(&self, query: &Query) -> Resolution {
        if let Some(now) = self.inner.resolver.at_once(query) {
            return now;
        }
        let key = key(query);
        match self.inner.enter(&key, None, true) {
            Entered::First => self.inner.lead(key, query),
            Entered::Joined(slot) => {
                let slot = slot.expect("a waiting caller gets a slot");
                let answer = slot.wait();
                self.inner.resolver.joined(&answer)
            }
            Entered::Refused => refused(),
        }
    }

    /// Hands `query`, which [`at_once`](Self::at_once) could not answer, to be
    /// resolved without waiting for it: joined to the same question in flight, or
    /// resolved by a pool thread. `then` gets the answer exactly once, on the thread
    /// that has it (at once, SERVFAIL, over the bound).
    pub fn submit(&self, query: Query, then: Then) {
        let key = key(&query);
        match self.inner.enter(&key, Some(then), false) {
            Entered::First => {
                let inner = self.inner.clone();
                let job: Job = Box::new(move || {
                    inner.lead(key, &query);
                });
                if let Err(job) = self.inner.pool.execute(job) {
                    // No thread could be started, and none runs: resolve it here
                    // rather than lose it.
                    job();
                }
            }
            // Joined: answered with the question it joined. Refused: answered already.
            Entered::Joined(_) | Entered::Refused => {}
        }
    }

    /// Waits until no question is pending, or `timeout` passes; returns how many still
    /// are (shutdown lets the answers in flight go out).
    pub fn drain(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut table = lock(&self.inner.table);
        while table.pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            table = self
                .inner
                .empty
                .wait_timeout(table, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        table.pending
    }
}

impl<R: Resolve> Drop for Inflight<R> {
    /// The pool's threads end once the questions they hold are answered.
    fn drop(&mut self) {
        self.inner.pool.stop();
    }
}

impl<R: Resolve + std::fmt::Debug> std::fmt::Debug for Inflight<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflight")
            .field("resolver", &self.inner.resolver)
            .field("max_pending", &self.inner.max_pending)
            .finish()
    }
}

/// The answer to a question refused over the bound.
fn refused() -> Resolution {
    Resolution::new(Outcome::ServFail)
}

impl<R: Resolve> Inner<R> {
    /// Enters a question: the first of its kind, joined (with `then`, or as a caller
    /// waiting on a slot when `wait`), or refused (`then` answered at once).
    fn enter(&self, key: &Key, then: Option<Then>, wait: bool) -> Entered {
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
                table.questions.insert(
                    key.clone(),
                    Waiting {
                        first: then,
                        ..Waiting::default()
                    },
                );
                Entered::First
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
    fn lead(&self, key: Key, query: &Query) -> Resolution {
        // Should the resolver panic, whoever waits still gets an answer.
        let mut guard = Finish {
            inner: self,
            key: Some(key),
        };
        let answer = self.resolver.through_upstream(query);
        let key = guard.key.take().expect("finished once");
        self.finish(key, &answer);
        answer
    }

    /// Takes the question off the table and answers everyone that waited for it; only
    /// then are they no longer pending (so a drain waits for their replies to go out).
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
        if pending == 0 {
            self.empty.notify_all();
        }
        drop(table);
        self.metrics.misses_pending(pending);
    }
}

/// Answers a question's waiters with SERVFAIL if its resolution never ended (a panic).
struct Finish<'a, R: Resolve> {
    inner: &'a Inner<R>,
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

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run jobs, started as jobs arrive (at most `max` at once) and ended after
/// [`IDLE_EXIT`] with nothing to do, so that a quiet server holds none.
struct Pool {
    shared: Arc<PoolShared>,
    name: String,
    max: usize,
}

#[derive(Default)]
struct PoolShared {
    state: Mutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Threads running.
    threads: usize,
    stop: bool,
}

impl Pool {
    fn new(name: String, max: usize) -> Pool {
        Pool {
            shared: Arc::default(),
            name,
            max,
        }
    }

    /// Queues `job`, starting a thread for it if none is idle (and fewer than `max`
    /// run). Gives the job back if no thread runs and none could be started.
    fn execute(&self, job: Job) -> Result<(), Job> {
        let mut state = lock(&self.shared.state);
        state.jobs.push_back(job);
        if state.jobs.len() > state.idle && state.threads < self.max {
            match self.spawn() {
                Ok(()) => state.threads += 1,
                Err(e) => {
                    log::warn!("{}: cannot start a thread: {e}", self.name);
                    if state.threads == 0 {
                        let job = state.jobs.pop_back().expect("just queued");
                        return Err(job);
                    }
                }
            }
        }
        drop(state);
        self.shared.work.notify_one();
        Ok(())
    }

    fn spawn(&self) -> std::io::Result<()> {
        let shared = self.shared.clone();
        thread::Builder::new()
            .name(self.name.clone())
            .stack_size(WORKER_STACK)
            .spawn(move || shared.work_until_idle())
            .map(|_| ())
    }

    /// Lets every thread end once the queue is empty.
    fn stop(&self) {
        lock(&self.shared.state).stop = true;
        self.shared.work.notify_all();
    }
}

impl PoolShared {
    /// One thread's loop: jobs until none comes for [`IDLE_EXIT`], or the pool stops.
    /// A job that panics is reported and the thread goes on (its question's waiters
    /// were answered SERVFAIL on the way out).
    fn work_until_idle(&self) {
        while let Some(job) = self.next_job() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                log::error!("a resolution panicked; its question was answered SERVFAIL");
            }
        }
    }

    /// The next job, or `None` when the thread should end (and is no longer counted).
    fn next_job(&self) -> Option<Job> {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.stop {
                return self.leave(state);
            }
            state.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.jobs.is_empty() {
                return self.leave(state);
            }
        }
    }

    fn leave(&self, mut state: MutexGuard<'_, PoolState>) -> Option<Job> {
        state.threads -= 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RData;
    use crate::model::Record;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    const WAIT: Duration = Duration::from_secs(10);

    /// Answers `hit.test` at once; every other name only once `release` is called,
    /// counting how many times each name went upstream.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        upstream: Mutex<HashMap<String, usize>>,
        started: AtomicUsize,
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

        fn through_upstream(&self, query: &Query) -> Resolution {
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

    fn inflight(max: usize) -> (Arc<Gate>, Inflight<Arc<Gate>>) {
        let gate = Arc::new(Gate::default());
        (
            gate.clone(),
            Inflight::new(gate, "test", max, ServerMetrics::DISABLED),
        )
    }

    /// Submits `name`; its answer (whether it came as joined) arrives on `tx`.
    fn submit(inflight: &Inflight<Arc<Gate>>, name: &str, tx: &mpsc::Sender<(String, bool)>) {
        let tx = tx.clone();
        let n = name.to_owned();
        inflight.submit(
            q(name),
            Box::new(move |r: Resolution| {
                let ok = !matches!(r.outcome, Outcome::ServFail);
                let _ = tx.send((if ok { n } else { "SERVFAIL".into() }, r.cached));
            }),
        );
    }

    #[test]
    fn identical_questions_in_flight_go_upstream_once() {
        let (gate, inflight) = inflight(100);
        let (tx, rx) = mpsc::channel();
        for _ in 0..10 {
            submit(&inflight, "a.test", &tx);
        }
        submit(&inflight, "b.test", &tx);
        gate.wait_started(2);
        assert_eq!(inflight.pending(), 11);
        // A caller with a thread of its own joins too.
        let waiter = {
            let inflight = Arc::new(inflight);
            let joined = {
                let inflight = inflight.clone();
                thread::spawn(move || inflight.resolve(&q("a.test")))
            };
            let until = Instant::now() + WAIT;
            while inflight.pending() < 12 && Instant::now() < until {
                thread::yield_now();
            }
            assert_eq!(inflight.pending(), 12);
            gate.release();
            let r = joined.join().unwrap();
            assert!(r.cached, "a joined caller is answered as joined");
            inflight
        };
        let mut got: Vec<(String, bool)> =
            (0..11).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        got.sort();
        let first = got
            .iter()
            .filter(|(n, cached)| n == "a.test" && !cached)
            .count();
        let joined = got
            .iter()
            .filter(|(n, cached)| n == "a.test" && *cached)
            .count();
        assert_eq!((first, joined), (1, 9), "{got:?}");
        assert_eq!(gate.asked("a.test"), 1);
        assert_eq!(gate.asked("b.test"), 1);
        assert_eq!(waiter.drain(WAIT), 0);
    }

    #[test]
    fn over_the_bound_new_questions_are_refused_at_once_and_hits_still_answered() {
        let (gate, inflight) = inflight(3);
        let (tx, rx) = mpsc::channel();
        for name in ["a.test", "b.test", "c.test"] {
            submit(&inflight, name, &tx);
        }
        gate.wait_started(3);
        // Full: a new question, and one that would join, are refused at once.
        submit(&inflight, "d.test", &tx);
        submit(&inflight, "a.test", &tx);
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
        assert_eq!(inflight.drain(WAIT), 0);
        // Room again.
        submit(&inflight, "d.test", &tx);
        assert_eq!(rx.recv_timeout(WAIT).unwrap().0, "d.test");
    }

    #[test]
    fn a_resolver_that_panics_still_answers_its_waiters() {
        struct Panics;
        impl Resolve for Panics {
            fn at_once(&self, _: &Query) -> Option<Resolution> {
                None
            }
            fn through_upstream(&self, _: &Query) -> Resolution {
                panic!("a bug")
            }
        }
        let inflight = Inflight::new(Panics, "test", 10, ServerMetrics::DISABLED);
        let (tx, rx) = mpsc::channel();
        inflight.submit(
            q("a.test"),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        let r = rx.recv_timeout(WAIT).unwrap();
        assert!(matches!(r.outcome, Outcome::ServFail));
        assert_eq!(inflight.drain(WAIT), 0);
    }

    #[test]
    fn pool_threads_grow_with_the_work_and_end_with_the_pool() {
        let pool = Pool::new("test-pool".into(), 4);
        let (tx, rx) = mpsc::channel::<usize>();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        for i in 0..6 {
            let (tx, gate) = (tx.clone(), gate.clone());
            let job: Job = Box::new(move || {
                let mut open = lock(&gate.0);
                while !*open {
                    open = gate.1.wait_timeout(open, WAIT).unwrap().0;
                }
                let _ = tx.send(i);
            });
            assert!(pool.execute(job).is_ok());
        }
        assert_eq!(lock(&pool.shared.state).threads, 4, "no more than the most");
        *lock(&gate.0) = true;
        gate.1.notify_all();
        let mut done: Vec<usize> = (0..6).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        done.sort();
        assert_eq!(done, [0, 1, 2, 3, 4, 5]);
        pool.stop();
        let until = Instant::now() + WAIT;
        while lock(&pool.shared.state).threads > 0 {
            assert!(Instant::now() < until, "the threads did not end");
            thread::yield_now();
        }
    }
}
