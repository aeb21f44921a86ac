//! Asking another server: the local server asks the root and TLD servers, the root asks
//! TLD servers.
//!
//! Connections are kept open and reused (a small pool per address), since a connect per
//! query would double the round trips. A pooled connection may have gone stale (the
//! upstream restarted or closed it as idle): that is found on use and the query is
//! retried once on a fresh connection. Every query has one deadline, the upstream
//! timeout, covering connect, write and read; no lock is held during any of them.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::connection::{Connection, FrameError, FrameLimits};
use crate::dns::{self, upstream::DnsUpstreamError};
use crate::model::{Query, Resolution};
use crate::net::is_timeout;
use crate::protocol::{ProtocolError, Reply, Request};
use crate::sync::lock;

/// How long asking an upstream may take (connect, write, read), unless
/// `--upstream-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Idle connections kept per upstream address.
const POOL_PER_ADDR: usize = 64;

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
    pools: Mutex<HashMap<SocketAddr, Vec<PooledConn>>>,
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
            pools: Mutex::new(HashMap::new()),
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
        let message = dns::upstream::query_message(id, query).map_err(fail)?;
        let socket = self
            .udp_socket(addr)
            .map_err(|e| UpstreamError::Io(addr, e))?;
        let response = dns::upstream::exchange_udp(&socket, addr, &message, deadline);
        // A socket that timed out may still get the late answer: it is dropped, not
        // pooled (the ID check would skip it, but it would cost the next query a read).
        if response.is_ok() {
            let mut idle = lock(&self.udp);
            if idle.len() < POOL_PER_ADDR {
                idle.push(socket);
            }
        }
        let response = response.map_err(|e| timeout_or(addr, e))?;
        match dns::upstream::read_response(&response, id, query) {
            Err(DnsUpstreamError::Truncated) => {
                let mut stream =
                    dns::upstream::connect_tcp(addr, deadline).map_err(|e| timeout_or(addr, e))?;
                let response = dns::upstream::exchange_tcp(&mut stream, &message, deadline)
                    .map_err(|e| timeout_or(addr, e))?;
                dns::upstream::read_response(&response, id, query).map_err(fail)
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
                .map_err(|e| UpstreamError::Garbage(addr, e, crate::logs::escape(bytes))),
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
        loop {
            let conn = {
                let mut pools = lock(&self.pools);
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
        let mut pools = lock(&self.pools);
        let pool = pools.entry(addr).or_default();
        if pool.len() < POOL_PER_ADDR {
            pool.push(PooledConn(conn));
        }
    }

    /// Forgets every pooled connection to `addr`: one was stale, so all probably are.
    fn drop_pool(&self, addr: SocketAddr) {
        let stale = {
            let mut pools = lock(&self.pools);
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
