//! The UDP server loop: one socket, served by threads that each receive a datagram,
//! hand it to the handler with a [`Responder`] for its answer, and go back to receiving.
//!
//! UDP has no connections to cap: a flood queues in the socket's receive buffer (and the
//! kernel drops the excess) instead of spawning work. But a handler may hold its thread
//! (a miss waits for another server), so the threads are a crew that grows as they are
//! held (leaders and followers): whenever a thread takes a datagram and none is left
//! waiting for the next, one more is started, up to the most the handler may hold plus
//! the few that answer everything else; one that has waited [`POLL_INTERVAL`] for a
//! datagram while others wait too ends, down to the first few, and so does one that has
//! answered a datagram while more than the first few wait (under a steady load the kernel
//! hands datagrams to the waiting threads in turn, so none would ever wait out its
//! interval: a crew grown to a hundred on a dead upstream stayed a hundred, and cost live
//! misses a fifth of their rate). So a datagram never waits
//! behind one being resolved, and a miss is resolved on the thread that received it,
//! with no hand-over between threads (which costs a wake-up per miss). Each thread owns
//! one reused 64 KiB buffer, enough for any datagram.
//!
//! Shutdown: every thread blocks in `recv_from` with a [`POLL_INTERVAL`] read timeout and
//! checks `stop` each time it wakes, so [`UdpServer::run`] returns within about one
//! interval of `stop` turning true, once every thread has answered the datagram it had
//! in hand. [`UdpServer::wake`] shortens that wait by sending empty datagrams, which the
//! handler sees as too short to be a DNS message.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Scope};
use std::time::Duration;

use crate::sync::lock;

/// How long a thread waits for a datagram before checking the stop signal again (and,
/// beyond the first few, before it ends for want of work).
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The receive buffer of each thread: the largest UDP payload there is.
pub const RECV_BUFFER: usize = 64 * 1024;

/// Stack size of a UDP thread: buffers are on the heap, as a connection thread's are
/// (128 KiB); twice that, since a thread may resolve a miss.
pub const UDP_STACK: usize = 256 * 1024;

/// A bound UDP socket, ready to be served by [`UdpServer::run`].
#[derive(Debug)]
pub struct UdpServer {
    socket: UdpSocket,
    local: SocketAddr,
}

/// How many threads serve a socket: `min` always, up to `max` while the handler holds
/// some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads {
    pub min: usize,
    pub max: usize,
}

impl UdpServer {
    /// Binds `addr` (port 0 picks a free port; read it back with
    /// [`UdpServer::local_addr`]).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpServer> {
        let socket = UdpSocket::bind(addr)?;
        let local = socket.local_addr()?;
        Ok(UdpServer { socket, local })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves datagrams on `threads.min` threads (at least one), and more while the
    /// handler holds them (at most `threads.max`), until `stop()` returns true; then
    /// returns once every thread has answered the datagram it had in hand.
    ///
    /// Each thread gets its own handler from `handler()`, and calls it with every
    /// datagram received and a [`Responder`] for its answer (dropped unused: no
    /// answer). Errors receiving or sending one datagram are logged at debug level and
    /// the loop goes on; only setting up the socket can fail the whole call.
    pub fn run<M, H, S>(self, threads: Threads, handler: M, stop: S) -> io::Result<()>
    where
        M: Fn() -> H + Sync,
        H: FnMut(&[u8], Responder) + Send,
        S: Fn() -> bool + Sync,
    {
        self.socket.set_read_timeout(Some(POLL_INTERVAL))?;
        let min = threads.min.max(1);
        let socket = Arc::new(self.socket);
        let crew = Crew {
            socket: &socket,
            handler: &handler,
            stop: &stop,
            idle: AtomicUsize::new(0),
            threads: Mutex::new(0),
            running: AtomicUsize::new(0),
            min,
            max: threads.max.max(min),
        };
        thread::scope(|scope| {
            for _ in 0..min {
                crew.enlist(scope)?;
            }
            Ok(())
        })
    }

    /// Sends `count` empty datagrams to a server bound at `addr`, so that threads blocked
    /// in `recv_from` check their stop signal now rather than at their next timeout.
    /// Best effort: errors are ignored.
    pub fn wake(addr: SocketAddr, count: usize) {
        let target = loopback_if_unspecified(addr);
        let bind: SocketAddr = match target {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        if let Ok(socket) = UdpSocket::bind(bind) {
            for _ in 0..count {
                let _ = socket.send_to(&[], target);
            }
        }
    }
}

/// Where the answer to one datagram goes: the socket it came in on, and its sender.
/// Cheap to make and to move to another thread, so that whichever thread has the
/// answer sends it.
#[derive(Clone, Debug)]
pub struct Responder {
    socket: Arc<ThreadSocket>,
    peer: SocketAddr,
}

/// The one socket, as one thread holds it: the responders it makes count references on
/// this thread's `Arc` alone, not on one that every thread increments with every
/// datagram (and no thread needs a descriptor of its own).
#[derive(Debug)]
struct ThreadSocket(Arc<UdpSocket>);

impl Responder {
    /// Who sent the datagram.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `datagram` to the peer; a failure is logged at debug level (the peer's
    /// problem, or a full buffer: UDP promises nothing).
    pub fn send(&self, datagram: &[u8]) {
        if let Err(e) = self.socket.0.send_to(datagram, self.peer) {
            log::debug!("udp: reply to {} failed: {e}", self.peer);
        }
    }
}

/// The threads serving one socket, and how many of them wait for a datagram.
struct Crew<'a, M, S> {
    socket: &'a Arc<UdpSocket>,
    handler: &'a M,
    stop: &'a S,
    /// Threads waiting for a datagram (or about to).
    idle: AtomicUsize,
    /// Threads running; changed only under this lock (the rare case), while `idle`
    /// moves with every datagram.
    threads: Mutex<usize>,
    /// The same, as last written under the lock: read without it, after each datagram.
    running: AtomicUsize,
    min: usize,
    max: usize,
}

impl<'a, M, H, S> Crew<'a, M, S>
where
    M: Fn() -> H + Sync,
    H: FnMut(&[u8], Responder) + Send,
    S: Fn() -> bool + Sync,
{
    /// Starts one more thread, counted as waiting from now on.
    fn enlist<'scope>(&'scope self, scope: &'scope Scope<'scope, '_>) -> io::Result<()>
    where
        'a: 'scope,
        H: 'scope,
    {
        let mut threads = lock(&self.threads);
        let socket = Arc::new(ThreadSocket(self.socket.clone()));
        let handle = (self.handler)();
        self.idle.fetch_add(1, Ordering::AcqRel);
        let started = thread::Builder::new()
            .stack_size(UDP_STACK)
            .spawn_scoped(scope, move || self.serve(scope, socket, handle));
        match started {
            Ok(_) => {
                *threads += 1;
                self.running.store(*threads, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.idle.fetch_sub(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }

    /// One thread's loop.
    fn serve<'scope>(
        &'scope self,
        scope: &'scope Scope<'scope, '_>,
        socket: Arc<ThreadSocket>,
        mut handle: H,
    ) where
        'a: 'scope,
        H: 'scope,
    {
        let mut buf = vec![0u8; RECV_BUFFER].into_boxed_slice();
        while !(self.stop)() {
            let (len, peer) = match socket.0.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if crate::net::is_timeout(&e) => {
                    if self.retire() {
                        return;
                    }
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // E.g. an ICMP port unreachable reported on some systems: not ours to
                    // fix, but do not spin on an error that repeats.
                    log::debug!("udp: receive failed: {e}");
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            // The last one waiting takes a datagram that may hold it: one more waits.
            if self.idle.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.spare(scope);
            }
            let responder = Responder {
                socket: socket.clone(),
                peer,
            };
            handle(&buf[..len], responder);
            // Enough others wait already (a crew grown while the handler held many
            // threads, say on a dead upstream): end, rather than keep rotating through
            // them under a steady load, which never lets one wait out its interval.
            if self.running.load(Ordering::Relaxed) > self.min
                && self.idle.load(Ordering::Relaxed) > self.min
                && self.retire_busy()
            {
                return;
            }
            self.idle.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Starts a thread to wait for datagrams while this one is busy, unless `max` run.
    fn spare<'scope>(&'scope self, scope: &'scope Scope<'scope, '_>)
    where
        'a: 'scope,
        H: 'scope,
    {
        if *lock(&self.threads) >= self.max {
            return;
        }
        if let Err(e) = self.enlist(scope) {
            log::warn!("udp: cannot start another thread: {e}");
        }
    }

    /// Whether this thread, which waited a whole interval for a datagram, should end:
    /// more than `min` run, and another still waits.
    fn retire(&self) -> bool {
        let mut threads = lock(&self.threads);
        if *threads <= self.min {
            return false;
        }
        let left = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| {
                (i >= 2).then(|| i - 1)
            });
        if left.is_ok() {
            *threads -= 1;
            self.running.store(*threads, Ordering::Relaxed);
        }
        left.is_ok()
    }

    /// Whether this thread, just done with a datagram (not counted as waiting), should
    /// end: more than `min` run, and more than `min` others wait.
    fn retire_busy(&self) -> bool {
        let mut threads = lock(&self.threads);
        if *threads <= self.min || self.idle.load(Ordering::Acquire) <= self.min {
            return false;
        }
        *threads -= 1;
        self.running.store(*threads, Ordering::Relaxed);
        true
    }
}

fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    #[test]
    fn echoes_on_fixed_threads_and_stops() {
        let server = UdpServer::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let seen_in = Arc::clone(&seen);
        let handler = move || {
            let seen = Arc::clone(&seen_in);
            move |req: &[u8], responder: Responder| {
                seen.fetch_add(1, Ordering::SeqCst);
                if !req.is_empty() {
                    let reply: Vec<u8> = req.iter().rev().copied().collect();
                    responder.send(&reply);
                }
            }
        };
        let stop_in = Arc::clone(&stop);
        let runner = thread::spawn(move || {
            server.run(Threads { min: 2, max: 2 }, handler, move || {
                stop_in.load(Ordering::SeqCst)
            })
        });

        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        for i in 0..20u8 {
            client.send_to(&[i, 1, 2], addr).unwrap();
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            assert_eq!(&buf[..n], &[2, 1, i]);
        }
        assert_eq!(seen.load(Ordering::SeqCst), 20);

        stop.store(true, Ordering::SeqCst);
        let started = Instant::now();
        UdpServer::wake(addr, 2);
        runner.join().unwrap().unwrap();
        assert!(started.elapsed() < POLL_INTERVAL * 5);
    }

    #[test]
    fn a_datagram_that_holds_its_thread_holds_up_no_other() {
        // One thread to begin with: datagrams starting with 0 hold the thread that took
        // them until released (as a miss waits for an upstream); the rest are answered
        // at once meanwhile, by threads started as the others were held.
        let server = UdpServer::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let handler = {
            let gate = Arc::clone(&gate);
            move || {
                let gate = Arc::clone(&gate);
                move |req: &[u8], responder: Responder| {
                    if req.first() == Some(&0) {
                        let mut open = lock(&gate.0);
                        while !*open {
                            open = gate
                                .1
                                .wait_timeout(open, Duration::from_secs(10))
                                .unwrap()
                                .0;
                        }
                    }
                    if !req.is_empty() {
                        responder.send(req);
                    }
                }
            }
        };
        let stop_in = Arc::clone(&stop);
        let runner = thread::spawn(move || {
            let threads = Threads { min: 1, max: 3 };
            server.run(threads, handler, move || stop_in.load(Ordering::SeqCst))
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        client.send_to(&[0, 7], addr).unwrap();
        client.send_to(&[0, 8], addr).unwrap();
        for i in 1..=20u8 {
            client.send_to(&[i], addr).unwrap();
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i], "answered while two are held");
        }
        *lock(&gate.0) = true;
        gate.1.notify_all();
        let mut held: Vec<Vec<u8>> = (0..2)
            .map(|_| {
                let (n, _) = client.recv_from(&mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect();
        held.sort();
        assert_eq!(held, [vec![0, 7], vec![0, 8]]);
        stop.store(true, Ordering::SeqCst);
        UdpServer::wake(addr, 3);
        runner.join().unwrap().unwrap();
    }
}
