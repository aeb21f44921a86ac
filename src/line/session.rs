//! The line protocol's one request loop, for every server: bounded lines, `q`, parsing,
//! the per-query log line, the reply. What a server adds is a [`LineService`]: how it
//! opens a session (the local server reads a client's id) and how it resolves a
//! [`Query`]; the loop turns each request into that query and its resolution into the
//! reply ([`super::view`]).

use std::net::SocketAddr;
use std::time::Instant;

use super::frame::{Connection, FrameError};
use super::message::{Reply, Request, QUIT};
use super::view;
use crate::model::{Query, Resolution};
use crate::ops::diagnostics::QUERY_TARGET;
use crate::ops::metrics::ServerMetrics;
use crate::ops::querylog::{Escaped, Micros};

/// What a server is to the line protocol.
pub trait LineService: Send + Sync + 'static {
    /// What a connection carries from its first line to its end: the local server's
    /// client id and log; nothing for the root and TLD servers.
    type Session;

    /// The name the server replies under (`root`, `com`, `default_local`).
    fn name(&self) -> &str;

    /// What the server records its queries through.
    fn metrics(&self) -> &ServerMetrics;

    /// Starts a session before the first request (the local server reads and checks
    /// the client's id, and greets it). `Ok(None)` ends the connection.
    fn open(&self, conn: &mut Connection, peer: &str) -> Result<Option<Self::Session>, FrameError>;

    /// Who is asking, for log lines: `""`, or ` alice` at the local server.
    fn who<'s>(&self, _session: &'s Self::Session) -> &'s str {
        ""
    }

    /// The answer to one question.
    fn resolve(&self, query: &Query) -> Resolution;

    /// The reply to `line` is about to be sent: the local server writes both to the
    /// client's log first, and a reply it cannot log is not given (another is).
    fn record(&self, _session: &mut Self::Session, _line: &[u8], reply: Reply) -> Reply {
        reply
    }

    /// The session has ended (cleanly or not).
    fn close(&self, _session: Self::Session, _peer: &str) {}
}

/// The reply to one line: `request` is `None` when the line is not a valid request
/// (then `line` is what was received, or a marker for a line over the limit).
fn answer<S: LineService>(
    service: &S,
    session: &mut S::Session,
    line: &[u8],
    request: Option<&Request>,
) -> Reply {
    let reply = match request {
        Some(request) => view::reply(&service.resolve(&request.query()), service.name()),
        None => Reply::invalid(service.name()),
    };
    service.record(session, line, reply)
}

/// Serves one connection: after the service's opening, every line is a request
/// answered with one reply; `q` (spaces around it allowed) or end of stream ends the
/// session. A line over the limit is answered `0XEE` and the connection closed.
pub fn serve<S: LineService>(service: &S, conn: &mut Connection) -> Result<(), FrameError> {
    let peer = fmt_peer(conn.peer());
    let Some(mut session) = service.open(conn, &peer)? else {
        return Ok(());
    };
    let result = request_loop(service, conn, &peer, &mut session);
    service.close(session, &peer);
    result
}

fn request_loop<S: LineService>(
    service: &S,
    conn: &mut Connection,
    peer: &str,
    session: &mut S::Session,
) -> Result<(), FrameError> {
    loop {
        let line = match conn.read_line() {
            Ok(None) => return Ok(()),
            Ok(Some(line)) => line,
            Err(FrameError::TooLong(max)) => {
                let marker = format!("[line longer than {max} bytes]");
                let started = Instant::now();
                let reply = answer(service, session, marker.as_bytes(), None);
                service.metrics().line_query(None, reply.code, started);
                log::info!(
                    target: QUERY_TARGET,
                    "{}: {peer}{} sent {marker} -> {reply}",
                    service.name(),
                    service.who(session)
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
                let reply = answer(service, session, line, Some(&request));
                service
                    .metrics()
                    .line_query(Some(&request), reply.code, started);
                log::info!(
                    target: QUERY_TARGET,
                    "{}: {peer}{} asked {request} -> {reply} ({})",
                    service.name(),
                    service.who(session),
                    Micros(started.elapsed())
                );
                reply
            }
            Err(e) => {
                let reply = answer(service, session, line, None);
                service.metrics().line_query(None, reply.code, started);
                log::info!(
                    target: QUERY_TARGET,
                    "{}: {peer}{} sent \"{}\" ({e}) -> {reply}",
                    service.name(),
                    service.who(session),
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
