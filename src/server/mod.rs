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
//!
//! What bounds a client: the connection caps (`--max-connections`, and
//! `--max-connections-per-ip` per client address), the idle timeout, which also bounds
//! how long one request (a line, or a DNS message) may take to arrive from its first
//! byte, and for the local server the access list ([`access`]). A connection refused
//! for any of these is refused in the protocol it speaks, without a thread of its own
//! ([`refuse`]).

pub mod access;
pub mod refuse;
pub mod udp;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::dns::answer::{Answered, DnsSettings, Transport};
use crate::dns::tcp::{self, MessageReader, TcpFrameError};
use crate::error::BindError;
use crate::line::frame::{is_line_protocol, Connection, FrameError, FrameLimits};
use crate::ops::diagnostics::QUERY_TARGET;
use crate::ops::metrics::ServerMetrics;
use crate::ops::querylog::Micros;
use crate::server::access::Access;
use crate::server::refuse::{dns_refusal, Refuser, Why};
use crate::server::udp::{Responder, Threads, UdpServer};
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

/// How many threads serve a server's UDP socket at least: more are started while some
/// are held resolving misses ([`Handler::udp_held`]).
pub const UDP_THREADS: usize = 2;

/// The share of `--max-connections` one client address may hold when
/// `--max-connections-per-ip` is not given: a quarter, so that no single host can fill
/// the server.
pub const DEFAULT_PER_IP_SHARE: usize = 4;

/// The limits every server enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; past it, new ones are refused (see [`refuse`]).
    pub max_connections: usize,
    /// Connections served at once from one client address; past it, new ones from that
    /// address are refused as over `max_connections`. `None`: a quarter of
    /// `max_connections` for every address but loopback (see [`Limits::per_ip_cap`]).
    pub max_connections_per_ip: Option<usize>,
    /// Line length, idle and per-request timeouts, legacy framing.
    pub frame: FrameLimits,
    /// The EDNS payload size offered, which bounds UDP answers.
    pub dns: DnsSettings,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: None,
            frame: FrameLimits::default(),
            dns: DnsSettings::default(),
        }
    }
}

impl Limits {
    /// How many connections a client at `ip` may have open at once, if fewer than
    /// `max_connections`. Given, `max_connections_per_ip` holds for every address. By
    /// default, a quarter of `max_connections` (at least one), except for loopback:
    /// clients on this machine are its own programs (the other servers of `dnsd up`, a
    /// forwarding Unbound, `dnsd bench`), which the global cap bounds as it always has.
    pub fn per_ip_cap(&self, ip: IpAddr) -> Option<usize> {
        match self.max_connections_per_ip {
            Some(n) => Some(n),
            None if ip.to_canonical().is_loopback() => None,
            None => Some((self.max_connections / DEFAULT_PER_IP_SHARE).max(1)),
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
    /// Answers a zone transfer request (AXFR, IXFR) from `peer`, handing every message
    /// of the answer but the last to `send` (see [`crate::dns::xfr::answer`]); `None`
    /// when `request` is no such request or the role transfers nothing: then
    /// [`answer_dns`](Self::answer_dns) answers it. By default, `None`.
    fn transfer(
        &self,
        _request: &[u8],
        _peer: IpAddr,
        _transport: Transport,
        _send: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Option<io::Result<Answered>> {
        None
    }
    /// Answers one DNS message that came over UDP, by calling `done` once with the
    /// answer: at once when no other server need be asked (a cache hit, an error);
    /// after resolving it on this thread, which it may hold up to the upstream timeout
    /// (the UDP loop keeps others receiving); or, for a question joined to the same one
    /// being resolved, later, from the thread resolving it (this one returns at once).
    /// By default, at once.
    fn answer_udp<F>(&self, request: &[u8], settings: &DnsSettings, done: F)
    where
        F: FnOnce(Answered) + Send + 'static,
    {
        done(self.answer_dns(request, Transport::Udp, settings))
    }
    /// The most UDP threads [`answer_udp`](Self::answer_udp) may hold at once (each
    /// resolving misses); by default none.
    fn udp_held(&self) -> usize {
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

/// Counts open connections, in all and per client address; a guard per connection,
/// decremented on drop.
#[derive(Default)]
struct Active {
    counts: Mutex<Counts>,
    zero: Condvar,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Only addresses with a connection open: the map is as large as the open
    /// connections, whoever has connected before.
    per_ip: HashMap<IpAddr, usize>,
}

struct ActiveGuard {
    active: Arc<Active>,
    ip: IpAddr,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut counts = lock(&self.active.counts);
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
        if counts.total == 0 {
            self.active.zero.notify_all();
        }
    }
}

/// Which cap a connection is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Full {
    /// `--max-connections`.
    Server,
    /// `--max-connections-per-ip`.
    Address,
}

impl Active {
    /// Takes a slot for a client at `ip`, unless `max` are taken in all or `per_ip`
    /// (if any) by that address.
    fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max: usize,
        per_ip: Option<usize>,
    ) -> Result<ActiveGuard, Full> {
        let ip = ip.to_canonical();
        let mut counts = lock(&self.counts);
        if counts.total >= max {
            return Err(Full::Server);
        }
        let mine = counts.per_ip.entry(ip).or_insert(0);
        if per_ip.is_some_and(|cap| *mine >= cap) {
            if *mine == 0 {
                counts.per_ip.remove(&ip);
            }
            return Err(Full::Address);
        }
        *mine += 1;
        counts.total += 1;
        Ok(ActiveGuard {
            active: self.clone(),
            ip,
        })
    }

    /// Waits until no connection is open, or `timeout` passes; returns how many remain.
    fn wait_idle(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut counts = lock(&self.counts);
        while counts.total > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            counts = self
                .zero
                .wait_timeout(counts, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        counts.total
    }
}

/// A bound server, ready to run: a TCP listener and a UDP socket on the same port.
pub struct Server {
    listener: TcpListener,
    udp: UdpServer,
    addr: SocketAddr,
    limits: Limits,
    access: Access,
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
                        access: Access::everyone(),
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

    /// Answers only the clients `access` allows (everyone, unless this is called); the
    /// others are refused: REFUSED over DNS, `0XFE, NAME, Access refused` over the line
    /// protocol.
    pub fn with_access(mut self, access: Access) -> Server {
        self.access = access;
        self
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
        if self.access.networks().is_some() {
            log::info!("{}: answering only {}", handler.name(), self.access);
        }
        let active = Arc::new(Active::default());
        let role = handler.name().to_owned();
        let refuser = Refuser::start(&role, self.limits.dns);
        let udp = serve_udp(
            self.udp,
            self.addr,
            self.limits.dns,
            self.access.clone(),
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
            if !self.access.allows(peer.ip()) {
                log::info!("{role}: refusing {peer}: not in the access list (--allow)");
                handler.metrics().access_denied();
                refuser.refuse(stream, peer, Why::Denied);
                continue;
            }
            let (max, per_ip) = (
                self.limits.max_connections,
                self.limits.per_ip_cap(peer.ip()),
            );
            let guard = match active.try_acquire(peer.ip(), max, per_ip) {
                Ok(guard) => guard,
                Err(full) => {
                    match (full, per_ip) {
                        (Full::Address, Some(cap)) => {
                            log::warn!(
                                "{role}: refusing {peer}: {cap} connections open from its address"
                            );
                            handler.metrics().connection_refused_per_ip();
                        }
                        _ => {
                            log::warn!("{role}: refusing {peer}: {max} connections open");
                            handler.metrics().connection_refused();
                        }
                    }
                    refuser.refuse(stream, peer, Why::Busy);
                    continue;
                }
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
                        Ok(Some(first)) if is_line_protocol(first) => {
                            handler.serve(&mut conn).map_err(|e| Ended::line(e, &conn))
                        }
                        Ok(Some(_)) => serve_dns_tcp(&*handler, &mut conn, &limits.dns, &drops),
                        Err(e) => Err(Ended::line(e, &conn)),
                    };
                    if let Err(ended) = served {
                        match ended {
                            Ended::Idle => handler.metrics().connection_idle_closed(),
                            Ended::Deadline => handler.metrics().connection_deadline_closed(),
                            Ended::Error(_) => {}
                        }
                        log::debug!("{}: connection from {peer} ended: {ended}", handler.name());
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
        drop(refuser);
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

/// Serves the UDP socket on its own threads until shutdown (and the questions they hold
/// are answered); `None` if the threads could not be started (the TCP side still serves,
/// and the failure is logged).
fn serve_udp<H: Handler>(
    udp: UdpServer,
    addr: SocketAddr,
    settings: DnsSettings,
    access: Access,
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
                    access: access.clone(),
                    shutdown: shutdown.clone(),
                    drops: drops.clone(),
                });
                move |request: &[u8], responder: Responder| context.answer(request, responder)
            };
            // UDP_THREADS for whatever comes, one more for each the handler may hold.
            let threads = Threads {
                min: UDP_THREADS,
                max: UDP_THREADS + handler.udp_held(),
            };
            if let Err(e) = udp.run(threads, context, || shutdown.is_triggered()) {
                log::error!("{name}: cannot serve UDP: {e}");
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
    access: Access,
    shutdown: Shutdown,
    drops: Drops,
}

impl<H: Handler> UdpContext<H> {
    /// Hands one datagram to the handler (a client the access list refuses is answered
    /// at once); its answer is logged, counted and sent by whichever thread has it.
    fn answer(self: &Arc<Self>, request: &[u8], responder: Responder) {
        let started = Instant::now();
        // Shutdown's wake-up datagrams are empty, and not a peer's.
        let waking = request.is_empty() && self.shutdown.is_triggered();
        let peer = responder.peer();
        let context = self.clone();
        let done = move |answered: Answered| {
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
        };
        if self.access.allows(peer.ip()) {
            let no_more = &mut |_: &[u8]| Ok(());
            match self
                .handler
                .transfer(request, peer.ip(), Transport::Udp, no_more)
            {
                // Over UDP a transfer request is answered in one message, never an error.
                Some(Ok(answered)) => done(answered),
                Some(Err(e)) => log::debug!("{}: {peer}: {e}", self.handler.name()),
                None => self.handler.answer_udp(request, &self.settings, done),
            }
        } else {
            done(denied(self.handler.metrics(), request, &self.settings));
        }
    }
}

/// The answer to a UDP query from a client the access list does not allow: REFUSED,
/// without asking the handler (counted in `dnsd_access_denied_total`).
fn denied(metrics: &ServerMetrics, request: &[u8], settings: &DnsSettings) -> Answered {
    let answered = dns_refusal(request, Transport::Udp, settings, Why::Denied);
    if !answered.is_dropped() {
        metrics.access_denied();
    }
    answered
}

/// Why a connection ended other than cleanly.
#[derive(Debug)]
enum Ended {
    /// Silent longer than the idle timeout.
    Idle,
    /// A request (a line, or a DNS message) begun but not whole within the idle
    /// timeout of its first byte.
    Deadline,
    /// Anything else: a line too long, a connection reset, a stream ended mid-request.
    Error(FrameError),
}

impl Ended {
    /// How a line-protocol connection ended: a timeout with part of a line in hand is
    /// that line's deadline, one without is silence.
    fn line(e: FrameError, conn: &Connection) -> Ended {
        match e {
            FrameError::Timeout if conn.buffered() > 0 => Ended::Deadline,
            FrameError::Timeout => Ended::Idle,
            e => Ended::Error(e),
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Idle => f.write_str("silent past the idle timeout"),
            Ended::Deadline => f.write_str("a request not whole within the idle timeout"),
            Ended::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Serves DNS over TCP on a connection: length-prefixed messages, each answered in
/// turn, until the peer closes, goes idle past the timeout, takes longer than it to send
/// a whole message (see [`MessageReader`]), or shutdown.
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
) -> Result<(), Ended> {
    let peer = conn.peer();
    let mut out = Vec::new();
    // The bytes peeked at to tell DNS from lines are the first of the first message.
    let mut peeked = vec![0; conn.buffered()];
    conn.read_exact(&mut peeked)
        .map_err(|e| Ended::Error(e.into()))?;
    let mut reader = MessageReader::new(&peeked, conn.limits().idle_timeout);
    let stream = conn.stream();
    loop {
        match reader.wait_message(stream) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(TcpFrameError::Timeout) if reader.mid_message() => return Err(Ended::Deadline),
            Err(TcpFrameError::Timeout) => return Err(Ended::Idle),
            Err(TcpFrameError::Truncated) => return Err(Ended::Error(FrameError::Truncated)),
            Err(TcpFrameError::Io(e)) => return Err(Ended::Error(e.into())),
        }
        let Some(request) = reader.take_message() else {
            continue;
        };
        let started = Instant::now();
        // A zone transfer writes every message but its last as it goes (after the
        // responses pipelined before it).
        let mut send = |message: &[u8]| {
            if !out.is_empty() {
                (&*stream).write_all(&out)?;
                out.clear();
            }
            tcp::write_message(&mut &*stream, message)
        };
        let from = peer.map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |p| p.ip());
        let answered = match handler.transfer(request, from, Transport::Tcp, &mut send) {
            Some(Ok(answered)) => answered,
            Some(Err(e)) => return Err(Ended::Error(e.into())),
            None => handler.answer_dns(request, Transport::Tcp, settings),
        };
        if let Some(peer) = peer {
            log_dns(handler.name(), peer, "tcp", &answered, started);
        }
        handler
            .metrics()
            .dns_query(Transport::Tcp, &answered, started);
        match &answered.response {
            Some(response) => {
                tcp::write_message(&mut out, response).map_err(|e| Ended::Error(e.into()))?
            }
            None => drops.add(),
        }
        if !out.is_empty() && !reader.has_whole_message() {
            (&*stream)
                .write_all(&out)
                .map_err(|e| Ended::Error(e.into()))?;
            out.clear();
        }
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
                    target: QUERY_TARGET,
            "{name}: {peer} dns/{transport} {answered} ({})",
            Micros(started.elapsed())
        );
    }
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
    fn the_per_address_cap_counts_each_address_apart_and_frees_on_drop() {
        let active = Arc::new(Active::default());
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let a = active.try_acquire(ip("10.0.0.1"), 3, Some(1)).unwrap();
        // The same client seen on an IPv6 socket is the same address.
        let again = active.try_acquire(ip("::ffff:10.0.0.1"), 3, Some(1));
        assert_eq!(again.err(), Some(Full::Address));
        let b = active.try_acquire(ip("10.0.0.2"), 3, Some(1)).unwrap();
        let c = active.try_acquire(ip("10.0.0.3"), 3, None).unwrap();
        let over = active.try_acquire(ip("10.0.0.4"), 3, None);
        assert_eq!(over.err(), Some(Full::Server));
        drop(a);
        let a = active.try_acquire(ip("10.0.0.1"), 3, Some(1)).unwrap();
        drop((a, b, c));
        let counts = lock(&active.counts);
        assert_eq!((counts.total, counts.per_ip.len()), (0, 0));
    }

    #[test]
    fn the_default_per_address_cap_is_a_quarter_and_spares_loopback() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let limits = Limits::default();
        assert_eq!(limits.per_ip_cap(ip("10.0.0.1")), Some(256));
        assert_eq!(limits.per_ip_cap(ip("2001:db8::1")), Some(256));
        for loopback in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(limits.per_ip_cap(ip(loopback)), None, "{loopback}");
        }
        let small = Limits {
            max_connections: 2,
            ..Limits::default()
        };
        assert_eq!(small.per_ip_cap(ip("10.0.0.1")), Some(1));
        let given = Limits {
            max_connections_per_ip: Some(5),
            ..Limits::default()
        };
        assert_eq!(given.per_ip_cap(ip("127.0.0.1")), Some(5));
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
