//! The three server roles. Each is a [`Role`]: it says what is particular to it (the
//! local server's client id and log, how each role answers a request), and the one
//! request loop here does the rest for all three: bounded lines, `q`, parsing, the
//! per-query log line, the reply. Each role's settings are a [`RoleConfig`], and
//! [`RoleConfig::start`] starts any of them the same way.

pub mod local;
pub mod root;
pub mod tld;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::dns::answer::{Answered, DnsSettings, Role as DnsRole, Transport};
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::message::{Reply, Request, QUIT};
use crate::ops::fds;
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::querylog::{Escaped, Micros};
use crate::ops::reload::{Reload, Source, Summary};
use crate::server::{Handler, Limits, Server, Shutdown};

/// A server running on its own thread.
pub struct Running {
    pub addr: SocketAddr,
    thread: JoinHandle<()>,
    /// Re-reads the server's files (SIGHUP).
    pub reload: Reload,
}

impl Running {
    /// Waits for the server to stop (after its shutdown was triggered).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Runs `server` with `handler` on a new thread until `shutdown` is triggered;
/// `reload` re-reads its files.
fn spawn<H: Handler>(
    server: Server,
    handler: Arc<H>,
    shutdown: Shutdown,
    reload: Reload,
) -> Result<Running, Error> {
    let addr = server.local_addr();
    let thread = std::thread::Builder::new()
        .name(format!("{}-accept", handler.name()))
        .spawn(move || server.run(handler, shutdown))
        .map_err(|e| Error::io(format!("cannot start a server thread for {addr}"), e))?;
    Ok(Running {
        addr,
        thread,
        reload,
    })
}

/// A role's validated settings: what is particular to starting it. The rest is the same
/// for every role and written once, in [`RoleConfig::start`].
///
/// A config holds settings only: what the running process shares (its metrics, its
/// shutdown) is handed to `start`.
pub trait RoleConfig: Sized + 'static {
    /// What answers the server's requests.
    type Handler: Role;
    /// What a reload (SIGHUP) re-reads and swaps in: a zone, the root table.
    type Data: Summary + 'static;
    /// Descriptors each connection holds (see [`fds`]).
    const FDS_PER_CONNECTION: u64 = fds::PER_CONNECTION;

    /// The address the server binds (port 0: any free port).
    fn bind(&self) -> SocketAddr;

    /// The limits the server enforces.
    fn limits(&self) -> Limits;

    /// Where a reload re-reads the server's data (`None`: nothing to re-read).
    fn source(&self) -> Option<Source<Self::Data>>;

    /// The handler, recording through `metrics`. It is made before the server binds,
    /// so that what a role reads or opens of its own (the local server's log directory,
    /// its warm cache) fails before any port is taken.
    fn handler(self, metrics: &Metrics) -> Result<Self::Handler, Error>;

    /// Puts reloaded data in place of the handler's; queries in flight finish with the
    /// old.
    fn swap(handler: &Self::Handler, data: Self::Data);

    /// What the server needs of file descriptors.
    fn fd_need(&self) -> fds::Need {
        fds::Need {
            per_connection: Self::FDS_PER_CONNECTION,
            max_connections: self.limits().max_connections,
        }
    }

    /// Builds the handler, binds, wires the reload, and runs the server on its own
    /// thread until `shutdown` is triggered, recording through `metrics` (the process's,
    /// or [`Metrics::disabled`]).
    fn start(self, shutdown: Shutdown, metrics: &Metrics) -> Result<Running, Error> {
        let (bind, limits, source) = (self.bind(), self.limits(), self.source());
        let handler = Arc::new(self.handler(metrics)?);
        let server = Server::bind(bind, limits)?;
        let swap = handler.clone();
        let reload = Reload::new(Role::name(&*handler), source, move |data| {
            Self::swap(&swap, data)
        })
        .with_metrics(Role::metrics(&*handler).clone());
        spawn(server, handler, shutdown, reload)
    }
}

/// What is particular to a role; the request loop ([`serve_lines`]) is shared.
///
/// A role also answers DNS ([`DnsRole`]): the same resolver behind both protocols.
pub trait Role: DnsRole + Send + Sync + 'static {
    /// What a connection carries from its first line to its end: the local server's
    /// client id and log; nothing for the root and TLD servers.
    type Session;

    /// The name the server replies under (`root`, `com`, `default_local`).
    fn name(&self) -> &str;

    /// Starts a session before the first request (the local server reads and checks
    /// the client's id, and greets it). `Ok(None)` ends the connection.
    fn open(&self, conn: &mut Connection, peer: &str) -> Result<Option<Self::Session>, FrameError>;

    /// Who is asking, for log lines: `""`, or ` alice` at the local server.
    fn who<'s>(&self, _session: &'s Self::Session) -> &'s str {
        ""
    }

    /// The reply to one line: `request` is `None` when the line is not a valid request
    /// (then `line` is what was received, or a marker for a line over the limit).
    fn answer(&self, session: &mut Self::Session, line: &[u8], request: Option<&Request>) -> Reply;

    /// The session has ended (cleanly or not).
    fn close(&self, _session: Self::Session, _peer: &str) {}

    /// What the server records its queries, connections and reloads through.
    fn metrics(&self) -> &ServerMetrics;
}

impl<R: Role> Handler for R {
    fn name(&self) -> &str {
        Role::name(self)
    }

    fn serve(&self, conn: &mut Connection) -> Result<(), FrameError> {
        serve_lines(self, conn)
    }

    fn answer_dns(&self, request: &[u8], transport: Transport, settings: &DnsSettings) -> Answered {
        crate::dns::answer::answer(request, transport, settings, self)
    }

    fn metrics(&self) -> &ServerMetrics {
        Role::metrics(self)
    }
}

/// The request loop of every role: after the role's opening, every line is a request
/// answered with one reply; `q` (spaces around it allowed) or end of stream ends the
/// session. A line over the limit is answered `0XEE` and the connection closed.
pub fn serve_lines<R: Role>(role: &R, conn: &mut Connection) -> Result<(), FrameError> {
    let peer = fmt_peer(conn.peer());
    let Some(mut session) = role.open(conn, &peer)? else {
        return Ok(());
    };
    let result = request_loop(role, conn, &peer, &mut session);
    role.close(session, &peer);
    result
}

fn request_loop<R: Role>(
    role: &R,
    conn: &mut Connection,
    peer: &str,
    session: &mut R::Session,
) -> Result<(), FrameError> {
    loop {
        let line = match conn.read_line() {
            Ok(None) => return Ok(()),
            Ok(Some(line)) => line,
            Err(FrameError::TooLong(max)) => {
                let marker = format!("[line longer than {max} bytes]");
                let started = Instant::now();
                let reply = role.answer(session, marker.as_bytes(), None);
                role.metrics().line_query(None, reply.code, started);
                log::info!(
                    "{}: {peer}{} sent {marker} -> {reply}",
                    role.name(),
                    role.who(session)
                );
                conn.write_with(|out| reply.write_body(out))?;
                return Err(FrameError::TooLong(max));
            }
            Err(e) => return Err(e),
        };
        if line.trim_ascii() == QUIT.as_bytes() {
            return Ok(());
        }
        let started = Instant::now();
        let reply = match Request::parse(line) {
            Ok(request) => {
                let reply = role.answer(session, line, Some(&request));
                role.metrics()
                    .line_query(Some(&request), reply.code, started);
                log::info!(
                    "{}: {peer}{} asked {request} -> {reply} ({})",
                    role.name(),
                    role.who(session),
                    Micros(started.elapsed())
                );
                reply
            }
            Err(e) => {
                let reply = role.answer(session, line, None);
                role.metrics().line_query(None, reply.code, started);
                log::info!(
                    "{}: {peer}{} sent \"{}\" ({e}) -> {reply}",
                    role.name(),
                    role.who(session),
                    Escaped(line)
                );
                reply
            }
        };
        conn.write_with(|out| reply.write_body(out))?;
    }
}

/// A peer address for log lines.
fn fmt_peer(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "?".to_owned(), |p| p.to_string())
}
