//! The UDP server loop: one socket, a fixed set of receiving threads, each handing
//! every datagram to the handler with a [`Responder`] that sends its answer.
//!
//! UDP has no connections to cap, so the receiving threads are few and fixed: a flood
//! queues in the socket's receive buffer (and the kernel drops the excess) instead of
//! spawning work. A handler answers what it can at once, on the receiving thread; what
//! must wait for another server it passes on with the responder, which answers from
//! whichever thread has the answer (the handler bounds how many such wait). Each
//! thread owns one reused 64 KiB buffer, enough for any datagram.
//!
//! Shutdown: every thread blocks in `recv_from` with a [`POLL_INTERVAL`] read timeout and
//! checks `stop` each time it wakes, so [`UdpServer::run`] returns within about one
//! interval of `stop` turning true (after the datagram each thread has in hand is
//! answered). [`UdpServer::wake`] shortens that wait by sending empty datagrams, which
//! the handler sees as too short to be a DNS message.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How long a thread waits for a datagram before checking the stop signal again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The receive buffer of each thread: the largest UDP payload there is.
pub const RECV_BUFFER: usize = 64 * 1024;

/// A bound UDP socket, ready to be served by [`UdpServer::run`].
#[derive(Debug)]
pub struct UdpServer {
    socket: UdpSocket,
    local: SocketAddr,
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

    /// Serves datagrams on `threads` threads (at least one) until `stop()` returns true,
    /// then returns once every thread has handed on the datagram it had in hand.
    ///
    /// Each thread gets its own handler from `handler()`, and calls it with every
    /// datagram received and a [`Responder`] for its answer (dropped unused: no
    /// answer). Errors receiving or sending one datagram are logged at debug level and
    /// the loop goes on; only setting up the socket can fail the whole call.
    pub fn run<M, H, S>(self, threads: usize, handler: M, stop: S) -> io::Result<()>
    where
        M: Fn() -> H,
        H: FnMut(&[u8], Responder) + Send,
        S: Fn() -> bool + Sync,
    {
        self.socket.set_read_timeout(Some(POLL_INTERVAL))?;
        let sockets = (0..threads.max(1))
            .map(|_| self.socket.try_clone().map(Arc::new))
            .collect::<io::Result<Vec<_>>>()?;
        let stop = &stop;
        thread::scope(|scope| {
            for socket in sockets {
                let handle = handler();
                scope.spawn(move || serve(socket, handle, stop));
            }
        });
        Ok(())
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
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
}

impl Responder {
    /// Who sent the datagram.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `datagram` to the peer; a failure is logged at debug level (the peer's
    /// problem, or a full buffer: UDP promises nothing).
    pub fn send(&self, datagram: &[u8]) {
        if let Err(e) = self.socket.send_to(datagram, self.peer) {
            log::debug!("udp: reply to {} failed: {e}", self.peer);
        }
    }
}

/// One thread's loop. Its socket is its own clone, so that responders made here count
/// references on this thread's `Arc` alone.
fn serve(
    socket: Arc<UdpSocket>,
    mut handle: impl FnMut(&[u8], Responder),
    stop: &(impl Fn() -> bool + ?Sized),
) {
    let mut buf = vec![0u8; RECV_BUFFER].into_boxed_slice();
    while !stop() {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if crate::net::is_timeout(&e) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // E.g. an ICMP port unreachable reported on some systems: not ours to
                // fix, but do not spin on an error that repeats.
                log::debug!("udp: receive failed: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let responder = Responder {
            socket: socket.clone(),
            peer,
        };
        handle(&buf[..len], responder);
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
        let runner =
            thread::spawn(move || server.run(2, handler, move || stop_in.load(Ordering::SeqCst)));

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
    fn an_answer_handed_to_another_thread_leaves_the_receiving_thread_free() {
        // One receiving thread: datagrams starting with 0 are answered later, by a
        // thread of their own; the rest at once, while the others still wait.
        let server = UdpServer::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let handler = move || {
            let released = Arc::clone(&released);
            move |req: &[u8], responder: Responder| {
                let reply = req.to_vec();
                if req.first() == Some(&0) {
                    let released = Arc::clone(&released);
                    thread::spawn(move || {
                        let _ = released
                            .lock()
                            .unwrap()
                            .recv_timeout(Duration::from_secs(10));
                        responder.send(&reply);
                    });
                } else if !req.is_empty() {
                    responder.send(&reply);
                }
            }
        };
        let stop_in = Arc::clone(&stop);
        let runner =
            thread::spawn(move || server.run(1, handler, move || stop_in.load(Ordering::SeqCst)));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        client.send_to(&[0, 7], addr).unwrap();
        for i in 1..=20u8 {
            client.send_to(&[i], addr).unwrap();
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i], "answered while the first still waits");
        }
        release.send(()).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 7]);
        stop.store(true, Ordering::SeqCst);
        UdpServer::wake(addr, 1);
        runner.join().unwrap().unwrap();
    }
}
