//! Asking another server: the local server asks the root and TLD servers, the root asks
//! TLD servers.
//!
//! Connections are kept open and reused (a small pool per address), since a connect per
//! query would double the round trips. A thread keeps the connection it used last to each
//! address for itself (up to [`AFFINE_MAX`] such connections per pool), so that the same
//! thread of the upstream answers it every time, as in a chain of relays: a connection
//! handed from thread to thread moved the upstream's threads between CPUs (about 0.3
//! task migrations per miss on 8 connections, none this way; misses on 8 connections
//! went from 0.78× to 0.87× a chain of relays, see `scripts/bench_notes.md`). It goes
//! back to the shared pool when the thread ends.
//!
//! A pooled connection may have gone stale (the upstream restarted or closed it as
//! idle): that is found on use and the query is retried once on a fresh connection.
//! Every query has one deadline, the upstream timeout, covering connect, write and read;
//! no lock is held during any of them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::dns::{self, exchange::DnsUpstreamError};
use crate::line::frame::{Connection, FrameError, FrameLimits};
use crate::line::message::{ProtocolError, Reply, Request};
use crate::model::{Query, Resolution};
use crate::net::is_timeout;
use crate::sync::lock;

/// How long asking an upstream may take (connect, write, read), unless
/// `--upstream-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Idle connections kept per upstream address.
const POOL_PER_ADDR: usize = 64;

/// Connections a pool lets threads keep for themselves (see the module's doc), all
/// addresses together: beyond it, a thread's connection goes back to the shared pool, so
/// that many clients do not hold as many upstream connections.
pub const AFFINE_MAX: usize = 64;

/// The line-protocol connections of one [`Upstream`], shared with the threads that
/// keep some of them.
#[derive(Debug, Default)]
struct Pools {
    /// Idle connections by upstream address.
    idle: Mutex<HashMap<SocketAddr, Vec<PooledConn>>>,
    /// How many connections threads keep for themselves (at most [`AFFINE_MAX`]).
    held: AtomicUsize,
}

impl Pools {
    /// Pools `conn` to `addr` if there is room.
    fn give_back(&self, addr: SocketAddr, conn: Connection) {
        let mut idle = lock(&self.idle);
        let pool = idle.entry(addr).or_default();
        if pool.len() < POOL_PER_ADDR {
            pool.push(PooledConn(conn));
        }
    }
}

/// A connection a thread keeps for itself, and the pools it came from (and returns to
/// when the thread ends).
struct Affine {
    addr: SocketAddr,
    conn: Option<Connection>,
    pools: Weak<Pools>,
}

impl Drop for Affine {
    fn drop(&mut self) {
        if let Some(pools) = self.pools.upgrade() {
            pools.held.fetch_sub(1, Ordering::Relaxed);
            if let Some(conn) = self.conn.take() {
                pools.give_back(self.addr, conn);
            }
        }
    }
}

thread_local! {
    /// The connections this thread keeps for itself, one per pool and address.
    static AFFINE: RefCell<Vec<Affine>> = const { RefCell::new(Vec::new()) };
}

/// Why an upstream gave no usable reply. Each names the upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, io::Error),
    #[error("{0} did not answer in time")]
    Timeout(SocketAddr),
    #[error("{0} closed the connection without a reply")]
    Closed(SocketAddr),
    #[error("{0}: {1}")]
    Io(SocketAddr, io::Error),
    #[error("{0} sent a reply longer than the line limit")]
    TooLong(SocketAddr),
    #[error("{0} answered nonsense ({1}): {2:?}")]
    Garbage(SocketAddr, ProtocolError, String),
    #[error("{0} answered with an unexpected reply: {1:?}")]
    Unexpected(SocketAddr, String),
    #[error("{0} (DNS): {1}")]
    Dns(SocketAddr, DnsUpstreamError),
}

impl UpstreamError {
    /// The upstream that failed.
    pub fn upstream(&self) -> SocketAddr {
        match self {
            UpstreamError::Connect(addr, _)
            | UpstreamError::Timeout(addr)
            | UpstreamError::Closed(addr)
            | UpstreamError::Io(addr, _)
            | UpstreamError::TooLong(addr)
            | UpstreamError::Garbage(addr, ..)
            | UpstreamError::Unexpected(addr, _)
            | UpstreamError::Dns(addr, _) => *addr,
        }
    }

    /// The kind of failure, as metrics name it: `timeout` (no answer within the
    /// deadline), `refused` (nothing listens there), `error` (anything else: a
    /// connection lost, nonsense, a failure answered).
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Timeout(_) | UpstreamError::Dns(_, DnsUpstreamError::Timeout) => {
                "timeout"
            }
            UpstreamError::Connect(_, e) if is_timeout(e) => "timeout",
            UpstreamError::Connect(_, e)
            | UpstreamError::Io(_, e)
            | UpstreamError::Dns(_, DnsUpstreamError::Io(e))
                if e.kind() == io::ErrorKind::ConnectionRefused =>
            {
                "refused"
            }
            _ => "error",
        }
    }
}

/// A pool of connections to upstream servers.
#[derive(Debug)]
pub struct Upstream {
    pools: Arc<Pools>,
    /// Idle UDP sockets for DNS queries (one per query in flight, reused after).
    udp: Mutex<Vec<UdpSocket>>,
    /// Makes the IDs of DNS queries hard to guess.
    ids: RandomState,
    next_id: AtomicU64,
    timeout: Duration,
    max_line: usize,
}

struct PooledConn(Connection);

impl std::fmt::Debug for PooledConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PooledConn")
    }
}

impl Upstream {
    pub fn new(timeout: Duration, max_line: usize) -> Upstream {
        Upstream {
            pools: Arc::default(),
            udp: Mutex::new(Vec::new()),
            ids: RandomState::new(),
            next_id: AtomicU64::new(0),
            timeout,
            max_line,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` to `addr` and reads one reply, within the upstream timeout.
    pub fn ask(&self, addr: SocketAddr, request: &Request) -> Result<Reply, UpstreamError> {
        self.ask_until(addr, request, Instant::now() + self.timeout)
    }

    /// Like [`ask`](Self::ask), within a deadline shared with other questions (mode I
    /// asks the root, then a TLD server, within one upstream timeout).
    pub fn ask_until(
        &self,
        addr: SocketAddr,
        request: &Request,
        deadline: Instant,
    ) -> Result<Reply, UpstreamError> {
        let mut line = request.to_string();
        // The printed form adds a space after each comma, so a request that arrived
        // within the line limit without them could exceed it upstream: send it compact.
        if line.len() > self.max_line {
            line = format!("{},{},{}", request.tag, request.name, request.mode);
        }
        loop {
            let (mut conn, reused) = match self.take(addr) {
                Some(c) => (c, true),
                None => (self.connect(addr, deadline)?, false),
            };
            match self.exchange(&mut conn, addr, line.as_bytes(), deadline) {
                Ok(reply) => {
                    self.put(addr, conn);
                    return Ok(reply);
                }
                // A stale pooled connection: try once more on a fresh one.
                Err(UpstreamError::Closed(_) | UpstreamError::Io(..))
                    if reused && Instant::now() < deadline =>
                {
                    self.drop_pool(addr);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Asks `addr` the query as a DNS message, within `deadline`: over UDP, and over
    /// TCP when the answer comes back truncated.
    pub fn ask_dns(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        let fail = |e| UpstreamError::Dns(addr, e);
        let id = self.new_id();
        let message = dns::exchange::query_message(id, query).map_err(fail)?;
        let socket = self
            .udp_socket(addr)
            .map_err(|e| UpstreamError::Io(addr, e))?;
        let response = dns::exchange::exchange_udp(&socket, addr, &message, deadline);
        // A socket that timed out may still get the late answer: it is dropped, not
        // pooled (the ID check would skip it, but it would cost the next query a read).
        if response.is_ok() {
            let mut idle = lock(&self.udp);
            if idle.len() < POOL_PER_ADDR {
                idle.push(socket);
            }
        }
        let response = response.map_err(|e| timeout_or(addr, e))?;
        match dns::exchange::read_response(&response, id, query) {
            Err(DnsUpstreamError::Truncated) => {
                let mut stream =
                    dns::exchange::connect_tcp(addr, deadline).map_err(|e| timeout_or(addr, e))?;
                let response = dns::exchange::exchange_tcp(&mut stream, &message, deadline)
                    .map_err(|e| timeout_or(addr, e))?;
                dns::exchange::read_response(&response, id, query).map_err(fail)
            }
            other => other.map_err(fail),
        }
    }

    /// A query ID no one outside can guess (RFC 5452).
    fn new_id(&self) -> u16 {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.ids.hash_one(n) as u16
    }

    /// An idle UDP socket of `addr`'s family, or a new one.
    fn udp_socket(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        {
            let mut idle = lock(&self.udp);
            if let Some(at) = idle
                .iter()
                .position(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == addr.is_ipv4()))
            {
                return Ok(idle.swap_remove(at));
            }
        }
        let any: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        UdpSocket::bind(any)
    }

    fn exchange(
        &self,
        conn: &mut Connection,
        addr: SocketAddr,
        line: &[u8],
        deadline: Instant,
    ) -> Result<Reply, UpstreamError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(UpstreamError::Timeout(addr));
        }
        // Whole 10 ms steps: the socket's timeout then stays the same from one query to
        // the next, and `Connection` skips the system call that would set it again.
        conn.set_idle_timeout(whole_steps(left));
        conn.write_line(line).map_err(|e| io_error(addr, e))?;
        match conn.read_line() {
            Ok(Some(bytes)) => Reply::parse(bytes)
                .map_err(|e| UpstreamError::Garbage(addr, e, crate::ops::querylog::escape(bytes))),
            Ok(None) | Err(FrameError::Truncated) => Err(UpstreamError::Closed(addr)),
            Err(FrameError::Timeout) => Err(UpstreamError::Timeout(addr)),
            Err(FrameError::TooLong(_)) => Err(UpstreamError::TooLong(addr)),
            Err(FrameError::Io(e)) => Err(io_error(addr, e)),
        }
    }

    fn connect(&self, addr: SocketAddr, deadline: Instant) -> Result<Connection, UpstreamError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(UpstreamError::Timeout(addr));
        }
        let stream = TcpStream::connect_timeout(&addr, left).map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut {
                UpstreamError::Timeout(addr)
            } else {
                UpstreamError::Connect(addr, e)
            }
        })?;
        let _ = stream.set_write_timeout(Some(self.timeout));
        let limits = FrameLimits {
            max_line: self.max_line,
            idle_timeout: self.timeout,
            legacy: false,
        };
        Ok(Connection::new(stream, limits))
    }

    /// A pooled connection to `addr` that is still quiet (see [`quiet`]); the others are
    /// dropped.
    fn take(&self, addr: SocketAddr) -> Option<Connection> {
        if let Some(conn) = self.take_affine(addr) {
            if quiet(&conn) {
                return Some(conn);
            }
        }
        loop {
            let conn = {
                let mut pools = lock(&self.pools.idle);
                pools.get_mut(&addr)?.pop()?.0
            };
            if quiet(&conn) {
                return Some(conn);
            }
        }
    }

    fn put(&self, addr: SocketAddr, conn: Connection) {
        // Replies carry no tag: a line nobody asked for would answer the next query.
        if conn.buffered() > 0 {
            return;
        }
        if let Some(conn) = self.keep_affine(addr, conn) {
            self.pools.give_back(addr, conn);
        }
    }

    /// The connection to `addr` this thread kept for itself, if any. Its slot stays
    /// this thread's (and counted) until the thread ends.
    fn take_affine(&self, addr: SocketAddr) -> Option<Connection> {
        AFFINE
            .try_with(|mine| {
                mine.borrow_mut()
                    .iter_mut()
                    .find(|a| a.addr == addr && self.owns(a))?
                    .conn
                    .take()
            })
            .ok()
            .flatten()
    }

    /// Keeps `conn` as this thread's connection to `addr` if its slot is free (or one
    /// can be had); otherwise gives it back to be pooled.
    fn keep_affine(&self, addr: SocketAddr, conn: Connection) -> Option<Connection> {
        let mut conn = Some(conn);
        let _ = AFFINE.try_with(|mine| {
            let mut mine = mine.borrow_mut();
            if let Some(slot) = mine.iter_mut().find(|a| a.addr == addr && self.owns(a)) {
                if slot.conn.is_none() {
                    slot.conn = conn.take();
                }
                return;
            }
            if self.pools.held.fetch_add(1, Ordering::Relaxed) >= AFFINE_MAX {
                self.pools.held.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            mine.push(Affine {
                addr,
                conn: conn.take(),
                pools: Arc::downgrade(&self.pools),
            });
        });
        conn
    }

    /// Whether a thread's kept connection came from this pool.
    fn owns(&self, affine: &Affine) -> bool {
        std::ptr::eq(affine.pools.as_ptr(), Arc::as_ptr(&self.pools))
    }

    /// Forgets every pooled connection to `addr`: one was stale, so all probably are.
    /// (Those other threads keep for themselves are checked when they next use them.)
    fn drop_pool(&self, addr: SocketAddr) {
        let stale = {
            let mut pools = lock(&self.pools.idle);
            pools.remove(&addr)
        };
        drop(stale);
    }
}

/// `left` rounded down to a whole number of 10 ms steps (unless it is less than one).
fn whole_steps(left: Duration) -> Duration {
    const STEP: Duration = Duration::from_millis(10);
    if left <= STEP {
        left
    } else {
        STEP * (left.as_millis() / STEP.as_millis()) as u32
    }
}

/// Whether an idle connection has nothing to read: an unasked-for line from the
/// upstream (which would be taken as the answer to the next query) or its end of stream
/// (it closed or restarted) both mean it must not be reused.
///
/// One non-blocking peek (`MSG_PEEK | MSG_DONTWAIT`): one system call per query, where
/// switching the socket to non-blocking and back took two more.
fn quiet(conn: &Connection) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: `recv` writes at most 1 byte into `byte`, which lives across the call; the
    // descriptor belongs to `conn`'s stream, open for as long as `conn` is borrowed.
    let n = unsafe {
        libc::recv(
            conn.stream().as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// A DNS exchange's timeout as [`UpstreamError::Timeout`], like the line protocol's.
fn timeout_or(addr: SocketAddr, e: DnsUpstreamError) -> UpstreamError {
    match e {
        DnsUpstreamError::Timeout => UpstreamError::Timeout(addr),
        e => UpstreamError::Dns(addr, e),
    }
}

fn io_error(addr: SocketAddr, e: io::Error) -> UpstreamError {
    if is_timeout(&e) {
        UpstreamError::Timeout(addr)
    } else {
        UpstreamError::Io(addr, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Barrier;

    /// A line server that answers every line with the port of the connection it came
    /// on, as an address (`0X01, x, 0.0.P1.P0`).
    fn port_echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                std::thread::spawn(move || {
                    let port = stream.peer_addr().unwrap().port();
                    let mut writer = stream.try_clone().unwrap();
                    let mut line = String::new();
                    let mut reader = BufReader::new(stream);
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        let reply = format!("0X01, x, 0.0.{}.{}\n", port >> 8, port & 0xff);
                        if writer.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                        line.clear();
                    }
                });
            }
        });
        addr
    }

    /// The client port the server saw for this question.
    fn asked(upstream: &Upstream, addr: SocketAddr) -> u16 {
        let request = Request::parse(b"1, a.com, R").unwrap();
        let reply = upstream.ask(addr, &request).unwrap();
        match reply.ip() {
            Some(std::net::IpAddr::V4(ip)) => u16::from_be_bytes([ip.octets()[2], ip.octets()[3]]),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn idle(upstream: &Upstream, addr: SocketAddr) -> usize {
        lock(&upstream.pools.idle).get(&addr).map_or(0, Vec::len)
    }

    #[test]
    fn a_thread_keeps_its_connection_and_gives_it_back_when_it_ends() {
        let addr = port_echo();
        let upstream = Arc::new(Upstream::new(Duration::from_secs(5), 512));
        let barrier = Arc::new(Barrier::new(2));
        let (u, b) = (upstream.clone(), barrier.clone());
        let first = std::thread::spawn(move || {
            let ports = [asked(&u, addr), asked(&u, addr), asked(&u, addr)];
            b.wait(); // kept, while the other thread asks
            b.wait();
            ports
        });
        barrier.wait();
        // Kept by the first thread: not in the pool, not used by this one.
        assert_eq!(idle(&upstream, addr), 0);
        let mine = asked(&upstream, addr);
        barrier.wait();
        let ports = first.join().unwrap();
        assert_eq!(ports[0], ports[1]);
        assert_eq!(ports[1], ports[2]);
        assert_ne!(mine, ports[0]);
        // The first thread has ended: its connection is pooled again, and another
        // thread gets it.
        assert_eq!(idle(&upstream, addr), 1);
        let u = upstream.clone();
        let later = std::thread::spawn(move || asked(&u, addr)).join().unwrap();
        assert_eq!(later, ports[0]);
        assert_eq!(asked(&upstream, addr), mine);
    }

    #[test]
    fn threads_keep_at_most_affine_max_connections() {
        let addr = port_echo();
        let upstream = Arc::new(Upstream::new(Duration::from_secs(5), 512));
        let threads = AFFINE_MAX + 6;
        let barrier = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (u, b) = (upstream.clone(), barrier.clone());
                std::thread::spawn(move || {
                    asked(&u, addr);
                    b.wait();
                    b.wait();
                })
            })
            .collect();
        barrier.wait();
        assert_eq!(upstream.pools.held.load(Ordering::Relaxed), AFFINE_MAX);
        // The threads over the cap pooled theirs (one may have reused another's).
        let pooled = idle(&upstream, addr);
        assert!(
            (1..=threads - AFFINE_MAX).contains(&pooled),
            "{pooled} pooled"
        );
        barrier.wait();
        for h in handles {
            h.join().unwrap();
        }
        // Every kept connection came back, up to the pool's limit.
        assert_eq!(upstream.pools.held.load(Ordering::Relaxed), 0);
        assert_eq!(
            idle(&upstream, addr),
            POOL_PER_ADDR.min(AFFINE_MAX + pooled)
        );
    }
}
