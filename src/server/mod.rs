//! The one server loop every role runs: bind, accept, a thread per connection (with a
//! small stack), the connection cap, timeouts and shutdown, written once. A role
//! supplies only a [`Handler`].
//!
//! Every server speaks two protocols on one port number. Over TCP, a connection whose
//! first byte is a control character (not a tab or line end) speaks DNS: that byte is
//! the high byte of DNS's two-byte length prefix (RFC 1035, 4.2.2); any other connection
//! speaks the line protocol ([`is_line_protocol`]). Over UDP, every datagram is
//! a DNS message, received by a fixed set of threads (no thread per datagram), which
//! answer at once what needs no other server and hand the rest to the handler
//! ([`Handler::answer_udp`]), which answers it when it can.

pub mod udp;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::dns::answer::{Answered, DnsSettings, Transport};
use crate::dns::tcp::{self, TcpFrameError};
use crate::error::BindError;
use crate::line::frame::{is_line_protocol, Connection, FrameError, FrameLimits};
use crate::line::message::{Code, Reply, BUSY};
use crate::ops::metrics::ServerMetrics;
use crate::ops::querylog::Micros;
use crate::server::udp::{Responder, UdpServer};
use crate::sync::lock;

/// Stack size of a connection thread: the handlers keep their buffers on the heap, so a
/// small stack is plenty, and 1,000 idle connections cost little memory.
pub const CONNECTION_STACK: usize = 128 * 1024;

/// How long shutdown waits for connections to finish the requests they already read.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections a server serves at once, unless `--max-connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The address servers listen on unless `--bind` says otherwise: loopback only.
pub const DEFAULT_BIND: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// How many threads serve a server's UDP socket.
pub const UDP_THREADS: usize = 2;

/// The limits every server enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; past it, new ones get `0XFE, NAME, Server busy`.
    pub max_connections: usize,
    /// Line length, idle and per-line timeouts, legacy framing.
    pub frame: FrameLimits,
    /// The EDNS payload size offered, which bounds UDP answers.
    pub dns: DnsSettings,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            frame: FrameLimits::default(),
            dns: DnsSettings::default(),
        }
    }
}

/// What a role does with one accepted connection.
pub trait Handler: Send + Sync + 'static {
    /// The name the server replies under (`root`, `com`, `default_local`).
    fn name(&self) -> &str;
    /// Serves one line-protocol connection until it ends. Errors are the connection's
    /// own business: they are logged at debug level and the connection is closed.
    fn serve(&self, conn: &mut Connection) -> Result<(), FrameError>;
    /// Answers one DNS message.
    fn answer_dns(&self, request: &[u8], transport: Transport, settings: &DnsSettings) -> Answered;
    /// Answers one DNS message that came over UDP, by calling `done` once with the
    /// answer: at once, on the receiving thread, when no other server need be asked (a
    /// cache hit, an error); otherwise later, from whichever thread gets the answer, so
    /// that the receiving threads never wait for an upstream. By default, at once.
    fn answer_udp<F>(&self, request: &[u8], settings: &DnsSettings, done: F)
    where
        F: FnOnce(Answered) + Send + 'static,
    {
        done(self.answer_dns(request, Transport::Udp, settings))
    }
    /// Waits, at most `timeout`, for the answers [`answer_udp`](Self::answer_udp) has
    /// still to give (at shutdown); returns how many it has not.
    fn drain_udp(&self, _timeout: Duration) -> usize {
        0
    }
    /// What the server records its connections and DNS queries through.
    fn metrics(&self) -> &ServerMetrics {
        &NO_METRICS
    }
}

/// The metrics of a handler that keeps none.
static NO_METRICS: ServerMetrics = ServerMetrics::DISABLED;

/// A stop signal shared by servers: stop accepting, let connections finish the request
/// they are on, and return from [`Server::run`].
#[derive(Clone, Default)]
pub struct Shutdown(Arc<ShutdownInner>);

#[derive(Default)]
struct ShutdownInner {
    triggered: AtomicBool,
    listeners: Mutex<Vec<SocketAddr>>,
    /// UDP sockets served, and by how many threads.
    datagrams: Mutex<Vec<(SocketAddr, usize)>>,
    conns: Mutex<HashMap<u64, Arc<TcpStream>>>,
    next_id: AtomicU64,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    /// Stops every server sharing this handle: wakes their `accept` and ends the reading
    /// side of every open connection, so handlers see end of stream after the request
    /// they are answering.
    pub fn trigger(&self) {
        if self.0.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        for addr in lock(&self.0.listeners).iter() {
            // Waking the blocked accept: a connection it will see and drop.
            let _ = TcpStream::connect_timeout(&wake_addr(*addr), Duration::from_millis(200));
        }
        for (addr, threads) in lock(&self.0.datagrams).iter() {
            UdpServer::wake(*addr, *threads);
        }
        for stream in lock(&self.0.conns).values() {
            let _ = stream.shutdown(NetShutdown::Read);
        }
    }

    fn register(&self, stream: &Arc<TcpStream>) -> Registration {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.0.conns).insert(id, stream.clone());
        if self.is_triggered() {
            let _ = stream.shutdown(NetShutdown::Read);
        }
        Registration {
            shutdown: self.clone(),
            id,
        }
    }
}

/// Where to connect to wake a listener bound to `addr`.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

/// Removes a connection from the shutdown registry when it ends.
struct Registration {
    shutdown: Shutdown,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.shutdown.0.conns).remove(&self.id);
    }
}

/// Counts open connections; a guard per connection, decremented on drop.
#[derive(Default)]
struct Active {
    count: Mutex<usize>,
    zero: Condvar,
}

struct ActiveGuard(Arc<Active>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut n = lock(&self.0.count);
        *n -= 1;
        if *n == 0 {
            self.0.zero.notify_all();
        }
    }
}

impl Active {
    /// Takes a slot unless `max` are taken.
    fn try_acquire(self: &Arc<Self>, max: usize) -> Option<ActiveGuard> {
        let mut n = lock(&self.count);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ActiveGuard(self.clone()))
    }

    /// Waits until no connection is open, or `timeout` passes; returns how many remain.
    fn wait_idle(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut n = lock(&self.count);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            n = self
                .zero
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *n
    }
}

/// A bound server, ready to run: a TCP listener and a UDP socket on the same port.
pub struct Server {
    listener: TcpListener,
    udp: UdpServer,
    addr: SocketAddr,
    limits: Limits,
    drops: Drops,
}

/// How many DNS messages a server dropped unanswered (shorter than a header, or a
/// response), over UDP and TCP. They are logged at debug level only, so that garbage
/// cannot flood the log; the count is what shows them, logged at shutdown.
#[derive(Clone, Debug, Default)]
pub struct Drops(Arc<AtomicU64>);

impl Drops {
    /// The messages dropped so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many times a server asked for any free port tries again when the TCP port it got
/// is taken for UDP by someone else.
const BIND_ATTEMPTS: usize = 16;

impl Server {
    /// Binds TCP and UDP on `addr`. With port 0, the port is the one TCP got, and UDP
    /// binds the same; should another program hold that port for UDP, both are tried
    /// again on another.
    pub fn bind(addr: SocketAddr, limits: Limits) -> Result<Server, BindError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let listener = TcpListener::bind(addr).map_err(|source| BindError { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| BindError { addr, source })?;
            match UdpServer::bind(bound) {
                Ok(udp) => {
                    return Ok(Server {
                        listener,
                        udp,
                        addr: bound,
                        limits,
                        drops: Drops::default(),
                    })
                }
                Err(e)
                    if addr.port() == 0
                        && e.kind() == io::ErrorKind::AddrInUse
                        && attempt < BIND_ATTEMPTS =>
                {
                    continue
                }
                Err(source) => {
                    return Err(BindError {
                        addr: bound,
                        source,
                    })
                }
            }
        }
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The count of DNS messages this server drops, readable while it runs.
    pub fn drops(&self) -> Drops {
        self.drops.clone()
    }

    /// Accepts and serves connections until `shutdown` is triggered, then waits (at most
    /// [`DRAIN_TIMEOUT`]) for open connections to finish.
    pub fn run<H: Handler>(self, handler: Arc<H>, shutdown: Shutdown) {
        lock(&shutdown.0.listeners).push(self.addr);
        lock(&shutdown.0.datagrams).push((self.addr, UDP_THREADS));
        log::info!("{}: listening on {}", handler.name(), self.addr);
        let active = Arc::new(Active::default());
        let role = handler.name().to_owned();
        let udp = serve_udp(
            self.udp,
            self.addr,
            self.limits.dns,
            handler.clone(),
            shutdown.clone(),
            self.drops.clone(),
        );
        while !shutdown.is_triggered() {
            let (stream, peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("{role}: accept failed: {e}");
                    // Out of file descriptors, most likely: let connections close.
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            if shutdown.is_triggered() {
                break;
            }
            let Some(guard) = active.try_acquire(self.limits.max_connections) else {
                log::warn!(
                    "{role}: refusing {peer}: {} connections open",
                    self.limits.max_connections
                );
                handler.metrics().connection_refused();
                refuse(stream, handler.name());
                continue;
            };
            let stream = Arc::new(stream);
            let registration = shutdown.register(&stream);
            let handler = handler.clone();
            let limits = self.limits;
            let drops = self.drops.clone();
            let spawned = thread::Builder::new()
                .name(format!("{role}-conn"))
                .stack_size(CONNECTION_STACK)
                .spawn(move || {
                    let _guard = guard;
                    let _registration = registration;
                    let _open = handler.metrics().connection_open();
                    let _ = stream.set_write_timeout(Some(limits.frame.idle_timeout));
                    let mut conn = Connection::shared(stream, limits.frame);
                    let served = match conn.peek_first() {
                        Ok(None) => Ok(()),
                        Ok(Some(first)) if is_line_protocol(first) => handler.serve(&mut conn),
                        Ok(Some(_)) => serve_dns_tcp(&*handler, &mut conn, &limits.dns, &drops),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = served {
                        if matches!(e, FrameError::Timeout) {
                            handler.metrics().connection_idle_closed();
                        }
                        log::debug!("{}: connection from {peer} ended: {e}", handler.name());
                    }
                    conn.close();
                });
            if let Err(e) = spawned {
                log::warn!("{role}: cannot start a thread for {peer}: {e}");
            }
        }
        if let Some(udp) = udp {
            let _ = udp.join();
        }
        let left = active.wait_idle(DRAIN_TIMEOUT);
        if left > 0 {
            log::warn!("{role}: stopping with {left} connection(s) still open");
        }
        let dropped = self.drops.count();
        if dropped > 0 {
            let s = if dropped == 1 { "" } else { "s" };
            log::info!("{role}: {dropped} DNS message{s} dropped (no header, or a response)");
        }
        log::info!("{role}: stopped");
    }
}

/// Serves the UDP socket on its own threads until shutdown, then waits (at most
/// [`DRAIN_TIMEOUT`]) for the answers still being resolved; `None` if the threads could
/// not be started (the TCP side still serves, and the failure is logged).
fn serve_udp<H: Handler>(
    udp: UdpServer,
    addr: SocketAddr,
    settings: DnsSettings,
    handler: Arc<H>,
    shutdown: Shutdown,
    drops: Drops,
) -> Option<thread::JoinHandle<()>> {
    let name = handler.name().to_owned();
    let started = thread::Builder::new()
        .name(format!("{name}-udp"))
        .spawn(move || {
            // Each receiving thread its own context: the answers it hands on count
            // references on its own `Arc`, not on one the threads share.
            let context = || {
                let context = Arc::new(UdpContext {
                    handler: handler.clone(),
                    settings,
                    shutdown: shutdown.clone(),
                    drops: drops.clone(),
                });
                move |request: &[u8], responder: Responder| context.answer(request, responder)
            };
            if let Err(e) = udp.run(UDP_THREADS, context, || shutdown.is_triggered()) {
                log::error!("{name}: cannot serve UDP: {e}");
            }
            let left = handler.drain_udp(DRAIN_TIMEOUT);
            if left > 0 {
                log::warn!("{name}: stopping with {left} UDP question(s) unanswered");
            }
        });
    match started {
        Ok(thread) => Some(thread),
        Err(e) => {
            log::error!("{addr}: cannot start the UDP threads: {e}");
            None
        }
    }
}

/// What a UDP receiving thread needs to answer a datagram, now or later.
struct UdpContext<H> {
    handler: Arc<H>,
    settings: DnsSettings,
    shutdown: Shutdown,
    drops: Drops,
}

impl<H: Handler> UdpContext<H> {
    /// Hands one datagram to the handler; its answer is logged, counted and sent by
    /// whichever thread has it.
    fn answer(self: &Arc<Self>, request: &[u8], responder: Responder) {
        let started = Instant::now();
        // Shutdown's wake-up datagrams are empty, and not a peer's.
        let waking = request.is_empty() && self.shutdown.is_triggered();
        let context = self.clone();
        self.handler
            .answer_udp(request, &self.settings, move |answered: Answered| {
                let handler = &*context.handler;
                log_dns(handler.name(), responder.peer(), "udp", &answered, started);
                if answered.is_dropped() && !waking {
                    context.drops.add();
                }
                if !waking {
                    handler
                        .metrics()
                        .dns_query(Transport::Udp, &answered, started);
                }
                if let Some(response) = &answered.response {
                    responder.send(response);
                }
            });
    }
}

/// How much of a DNS-over-TCP connection is read at once: many pipelined queries (a
/// resolver, or dnsperf, keeps several in flight on one connection) arrive with one read.
const DNS_TCP_READ: usize = 16 * 1024;

/// Serves DNS over TCP on a connection: length-prefixed messages, each answered in
/// turn, until the peer closes, goes idle past the timeout, or shutdown.
///
/// The stream is read in blocks, and responses are written when no further complete
/// query is already in hand: a lone query is answered at once, and the responses to a
/// batch of pipelined queries go out in one write instead of one each, saving system
/// calls per query. Each query is still logged before its response is written.
fn serve_dns_tcp<H: Handler>(
    handler: &H,
    conn: &mut Connection,
    settings: &DnsSettings,
    drops: &Drops,
) -> Result<(), FrameError> {
    let peer = conn.peer();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut reader = io::BufReader::with_capacity(DNS_TCP_READ, conn);
    loop {
        let request = match tcp::read_message(&mut reader, &mut buf) {
            Ok(None) => return Ok(()),
            Ok(Some(request)) => request,
            Err(TcpFrameError::Timeout) => return Err(FrameError::Timeout),
            Err(TcpFrameError::Truncated) => return Err(FrameError::Truncated),
            Err(TcpFrameError::Io(e)) => return Err(e.into()),
        };
        let started = Instant::now();
        let answered = handler.answer_dns(request, Transport::Tcp, settings);
        if let Some(peer) = peer {
            log_dns(handler.name(), peer, "tcp", &answered, started);
        }
        handler
            .metrics()
            .dns_query(Transport::Tcp, &answered, started);
        match &answered.response {
            Some(response) => tcp::write_message(&mut out, response)?,
            None => drops.add(),
        }
        if !out.is_empty() && !whole_message_in(reader.buffer()) {
            reader.get_ref().stream().write_all(&out)?;
            out.clear();
        }
    }
}

/// Whether `bytes` start with a whole length-prefixed DNS message.
fn whole_message_in(bytes: &[u8]) -> bool {
    match bytes {
        [hi, lo, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => false,
    }
}

/// The per-query log line of a DNS message, like a line query's; a message dropped
/// unanswered (a response, or less than a header) at debug level only, so that a flood
/// of garbage cannot flood the log.
fn log_dns(name: &str, peer: SocketAddr, transport: &str, answered: &Answered, started: Instant) {
    if answered.is_dropped() {
        log::debug!("{name}: {peer} dns/{transport} {answered}");
    } else {
        log::info!(
            "{name}: {peer} dns/{transport} {answered} ({})",
            Micros(started.elapsed())
        );
    }
}

/// Answers a connection over the cap with `0XFE, NAME, Server busy` and closes it.
fn refuse(mut stream: TcpStream, name: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let line = format!("{}\n", Reply::new(Code::Failure, name, BUSY));
    let _ = stream.write_all(line.as_bytes());
    let _ = stream.shutdown(NetShutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::{answer, DnsService};
    use crate::model::{Outcome, Query, Recursion, Resolution};
    use std::io::Read;
    use std::net::UdpSocket;

    /// Refuses every DNS query; never sees a line connection's requests.
    struct Refuser;

    impl DnsService for Refuser {
        fn recursion(&self, _: bool) -> Recursion {
            Recursion::Iterative
        }
        fn recursion_available(&self, _rd: bool) -> bool {
            false
        }
        fn resolve(&self, _: &Query) -> Resolution {
            Resolution::new(Outcome::Refused)
        }
    }

    impl Handler for Refuser {
        fn name(&self) -> &str {
            "test"
        }
        fn serve(&self, _: &mut Connection) -> Result<(), FrameError> {
            Ok(())
        }
        fn answer_dns(
            &self,
            request: &[u8],
            transport: Transport,
            settings: &DnsSettings,
        ) -> Answered {
            answer(request, transport, settings, self)
        }
    }

    /// A query for `com. A` with ID `id`.
    fn query(id: u16) -> Vec<u8> {
        let mut q = vec![(id >> 8) as u8, id as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03com\x00\x00\x01\x00\x01");
        q
    }

    #[test]
    fn messages_without_a_header_or_that_are_responses_are_counted() {
        // Dropped messages go unanswered and unlogged (above debug): the count is the
        // only trace of a flood of garbage, and shutdown's wake-ups are not in it.
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), Limits::default()).unwrap();
        let addr = server.local_addr();
        let drops = server.drops();
        let shutdown = Shutdown::new();
        let running = {
            let shutdown = shutdown.clone();
            thread::spawn(move || server.run(Arc::new(Refuser), shutdown))
        };
        let wait = Duration::from_secs(10);

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(wait)).unwrap();
        let mut response = query(7);
        response[2] |= 0x80;
        for junk in [
            &b""[..],
            &b"\x12\x34\x00"[..],
            &[0u8; 11][..],
            &response[..],
        ] {
            udp.send_to(junk, addr).unwrap();
        }
        udp.send_to(&query(8), addr).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = udp.recv_from(&mut buf).unwrap();
        assert_eq!(
            (n > 12, &buf[..2]),
            (true, &[0u8, 8][..]),
            "the query is answered"
        );
        // Two threads serve UDP: the drops may be counted after the answer is sent.
        let deadline = Instant::now() + wait;
        while drops.count() < 4 && Instant::now() < deadline {
            thread::yield_now();
        }
        assert_eq!(drops.count(), 4);

        // Over TCP, messages are served in order: the answer follows the count.
        let mut tcp = TcpStream::connect_timeout(&addr, wait).unwrap();
        tcp.set_read_timeout(Some(wait)).unwrap();
        let mut framed = vec![0, 5, 1, 2, 3, 4, 5];
        let valid = query(9);
        framed.extend_from_slice(&(valid.len() as u16).to_be_bytes());
        framed.extend_from_slice(&valid);
        tcp.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).unwrap();
        assert_eq!(drops.count(), 5);

        shutdown.trigger();
        running.join().unwrap();
        assert_eq!(drops.count(), 5, "the wake-up datagrams are not counted");
    }
}
