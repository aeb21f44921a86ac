//! The line protocol as a server's way upstream: [`LinePool`] asks the root and TLD
//! servers questions as lines, over [`Client`]s it keeps open and reuses (a small pool
//! per address), since a connect per question would double the round trips.
//!
//! A thread keeps the connection it used last to each address for itself (up to
//! [`AFFINE_MAX`] such connections per pool), so that the same thread of the upstream
//! answers it every time, as in a chain of relays: a connection handed from thread to
//! thread moves the upstream's threads between CPUs (`just miss-profile` measures it).
//! It goes back to the shared pool when the thread ends.
//!
//! A pooled connection may have gone stale (the upstream restarted or closed it as
//! idle): that is found on use and the question is asked again once on a fresh
//! connection. No lock is held while talking to an upstream.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::client::{Client, ClientError};
use super::view::{self, Nonsense};
use crate::line::message::{Mode, Request};
use crate::model::{QType, Query, Recursion, Resolution};
use crate::resolve::upstream::{Ask, UpstreamError};
use crate::sync::lock;

/// Idle connections kept per upstream address.
const POOL_PER_ADDR: usize = 64;

/// Connections a pool lets threads keep for themselves (see the module's doc), all
/// addresses together: beyond it, a thread's connection goes back to the shared pool, so
/// that many clients do not hold as many upstream connections.
pub const AFFINE_MAX: usize = 64;

/// Line-protocol connections to upstream servers: the line protocol's [`Ask`].
#[derive(Debug)]
pub struct LinePool {
    pools: Arc<Pools>,
    timeout: Duration,
    max_line: usize,
    /// Labels the questions that came with none (a DNS question sent as a line).
    next_tag: AtomicU64,
}

/// The connections of one [`LinePool`], shared with the threads that keep some of them.
#[derive(Debug, Default)]
struct Pools {
    /// Idle connections by upstream address.
    idle: Mutex<HashMap<SocketAddr, Vec<Pooled>>>,
    /// How many connections threads keep for themselves (at most [`AFFINE_MAX`]).
    held: AtomicUsize,
}

struct Pooled(Client);

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pooled")
    }
}

impl Pools {
    /// Pools `client` to `addr` if there is room.
    fn give_back(&self, addr: SocketAddr, client: Client) {
        let mut idle = lock(&self.idle);
        let pool = idle.entry(addr).or_default();
        if pool.len() < POOL_PER_ADDR {
            pool.push(Pooled(client));
        }
    }
}

/// A connection a thread keeps for itself, and the pools it came from (and returns to
/// when the thread ends).
struct Affine {
    addr: SocketAddr,
    client: Option<Client>,
    pools: Weak<Pools>,
}

impl Drop for Affine {
    fn drop(&mut self) {
        if let Some(pools) = self.pools.upgrade() {
            pools.held.fetch_sub(1, Ordering::Relaxed);
            if let Some(client) = self.client.take() {
                pools.give_back(self.addr, client);
            }
        }
    }
}

thread_local! {
    /// The connections this thread keeps for itself, one per pool and address.
    static AFFINE: RefCell<Vec<Affine>> = const { RefCell::new(Vec::new()) };
}

impl Ask for LinePool {
    fn ask(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        let request = self.request(addr, query)?;
        self.exchange(addr, &request, deadline, |reply| {
            view::resolution(addr, query, reply)
        })
    }
}

impl LinePool {
    /// A pool whose connections wait `timeout` at most and read replies of up to
    /// `max_line` bytes.
    pub fn new(timeout: Duration, max_line: usize) -> LinePool {
        LinePool {
            pools: Arc::default(),
            timeout,
            max_line,
            next_tag: AtomicU64::new(1),
        }
    }

    /// The line that asks `query`: its own tag, or a new one.
    fn request(&self, addr: SocketAddr, query: &Query) -> Result<Request, UpstreamError> {
        if !matches!(query.qtype, QType::Address | QType::A | QType::Aaaa) {
            return Err(UpstreamError::Unaskable(
                addr,
                format!("{} {} as a line", query.qtype, query.name),
            ));
        }
        let mode = match query.recursion {
            Recursion::Recursive => Mode::Recursive,
            Recursion::Iterative | Recursion::CacheOnly => Mode::Iterative,
        };
        let tag = match &query.tag {
            Some(tag) => tag.to_string(),
            None => self.next_tag.fetch_add(1, Ordering::Relaxed).to_string(),
        };
        Ok(Request::new(tag, query.name.clone(), mode))
    }

    /// Sends `request` to `addr` and reads one reply line, by `deadline`: what `read`
    /// makes of it (the line is lent from the connection's buffer, not copied).
    fn exchange<T>(
        &self,
        addr: SocketAddr,
        request: &Request,
        deadline: Instant,
        read: impl Fn(&[u8]) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        let mut line = request.to_string();
        // The printed form adds a space after each comma, so a request that arrived
        // within the line limit without them could exceed it upstream: send it compact.
        if line.len() > self.max_line {
            line = format!("{},{},{}", request.tag, request.name, request.mode);
        }
        loop {
            let (mut client, reused) = match self.take(addr) {
                Some(c) => (c, true),
                None => (self.dial(addr, deadline)?, false),
            };
            match client.exchange_until(line.as_bytes(), deadline) {
                Ok(reply) => {
                    let read = read(reply);
                    self.put(addr, client);
                    return read;
                }
                // A stale pooled connection: try once more on a fresh one.
                Err(e) if reused && stale(&e) && Instant::now() < deadline => {
                    self.drop_pool(addr);
                    continue;
                }
                Err(e) => return Err(upstream_error(addr, e)),
            }
        }
    }

    fn dial(&self, addr: SocketAddr, deadline: Instant) -> Result<Client, UpstreamError> {
        Client::dial(addr, deadline, self.max_line, self.timeout).map_err(|e| {
            if crate::net::is_timeout(&e) {
                UpstreamError::Timeout(addr)
            } else {
                UpstreamError::Connect(addr, e)
            }
        })
    }

    /// A pooled connection to `addr` that is still quiet ([`Client::is_quiet`]); the
    /// others are dropped.
    fn take(&self, addr: SocketAddr) -> Option<Client> {
        if let Some(client) = self.take_affine(addr) {
            if client.is_quiet() {
                return Some(client);
            }
        }
        loop {
            let client = {
                let mut pools = lock(&self.pools.idle);
                pools.get_mut(&addr)?.pop()?.0
            };
            if client.is_quiet() {
                return Some(client);
            }
        }
    }

    fn put(&self, addr: SocketAddr, client: Client) {
        // Replies carry no tag: a line nobody asked for would answer the next question.
        if client.buffered() > 0 {
            return;
        }
        if let Some(client) = self.keep_affine(addr, client) {
            self.pools.give_back(addr, client);
        }
    }

    /// The connection to `addr` this thread kept for itself, if any. Its slot stays
    /// this thread's (and counted) until the thread ends.
    fn take_affine(&self, addr: SocketAddr) -> Option<Client> {
        AFFINE
            .try_with(|mine| {
                mine.borrow_mut()
                    .iter_mut()
                    .find(|a| a.addr == addr && self.owns(a))?
                    .client
                    .take()
            })
            .ok()
            .flatten()
    }

    /// Keeps `client` as this thread's connection to `addr` if its slot is free (or one
    /// can be had); otherwise gives it back to be pooled.
    fn keep_affine(&self, addr: SocketAddr, client: Client) -> Option<Client> {
        let mut client = Some(client);
        let _ = AFFINE.try_with(|mine| {
            let mut mine = mine.borrow_mut();
            if let Some(slot) = mine.iter_mut().find(|a| a.addr == addr && self.owns(a)) {
                if slot.client.is_none() {
                    slot.client = client.take();
                }
                return;
            }
            if self.pools.held.fetch_add(1, Ordering::Relaxed) >= AFFINE_MAX {
                self.pools.held.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            mine.push(Affine {
                addr,
                client: client.take(),
                pools: Arc::downgrade(&self.pools),
            });
        });
        client
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

/// Whether a failure on a reused connection means it had gone stale (closed or reset
/// by the upstream), so that a fresh one may well work.
fn stale(e: &ClientError) -> bool {
    matches!(e, ClientError::Closed | ClientError::Io(_)) && !e.is_timeout()
}

fn upstream_error(addr: SocketAddr, e: ClientError) -> UpstreamError {
    match e {
        ClientError::Closed => UpstreamError::Closed(addr),
        ClientError::Timeout(_) => UpstreamError::Timeout(addr),
        ClientError::Io(e) => UpstreamError::io(addr, e),
        ClientError::Connect(_, e) => UpstreamError::Connect(addr, e),
        ClientError::Unexpected(what) => UpstreamError::Unreadable(
            addr,
            Box::new(Nonsense {
                why: what,
                line: String::new(),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::Name;
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
    fn asked(pool: &LinePool, addr: SocketAddr) -> u16 {
        let query = Query::new(
            Name::from_wire("a.com"),
            QType::Address,
            Recursion::Recursive,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = pool.ask(addr, &query, deadline).unwrap();
        match answer.first_ip() {
            Some(std::net::IpAddr::V4(ip)) => u16::from_be_bytes([ip.octets()[2], ip.octets()[3]]),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn idle(upstream: &LinePool, addr: SocketAddr) -> usize {
        lock(&upstream.pools.idle).get(&addr).map_or(0, Vec::len)
    }

    #[test]
    fn a_thread_keeps_its_connection_and_gives_it_back_when_it_ends() {
        let addr = port_echo();
        let upstream = Arc::new(LinePool::new(Duration::from_secs(5), 512));
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
        let upstream = Arc::new(LinePool::new(Duration::from_secs(5), 512));
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
