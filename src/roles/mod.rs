//! The three server roles, each a [`Handler`] for the shared server loop: they turn
//! lines into typed requests, ask a resolver, and write the reply lines.

pub mod local;
pub mod root;
pub mod tld;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::connection::{Connection, FrameError};
use crate::logs::{Escaped, Micros};
use crate::protocol::{Reply, Request, QUIT};
use crate::server::{Handler, Server, Shutdown};

/// A server running on its own thread.
pub struct Running {
    pub addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Running {
    /// Waits for the server to stop (after its shutdown was triggered).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Runs `server` with `handler` on a new thread until `shutdown` is triggered.
pub fn spawn<H: Handler>(server: Server, handler: Arc<H>, shutdown: Shutdown) -> Running {
    let addr = server.local_addr();
    let thread = std::thread::Builder::new()
        .name(format!("{}-accept", handler.name()))
        .spawn(move || server.run(handler, shutdown))
        .expect("cannot start a server thread");
    Running { addr, thread }
}

/// The request loop of the root and TLD servers: every line is a request, answered with
/// one reply; `q` or end of stream ends the connection. A line over the limit is
/// answered `0XEE` and the connection closed.
fn answer_requests(
    conn: &mut Connection,
    server: &str,
    mut answer: impl FnMut(&Request) -> Reply,
) -> Result<(), FrameError> {
    let peer = fmt_peer(conn.peer());
    loop {
        let line = match conn.read_line() {
            Ok(None) => return Ok(()),
            Ok(Some(line)) => line,
            Err(e @ FrameError::TooLong(_)) => {
                let reply = Reply::invalid(server);
                log::info!("{peer} sent a line too long -> {reply}");
                conn.write_with(|out| reply.write_body(out))?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if line == QUIT.as_bytes() {
            return Ok(());
        }
        let started = Instant::now();
        let reply = match Request::parse(line) {
            Ok(request) => {
                let reply = answer(&request);
                log::info!(
                    "{peer} asked {request} -> {reply} ({})",
                    Micros(started.elapsed())
                );
                reply
            }
            Err(e) => {
                let reply = Reply::invalid(server);
                log::info!("{peer} sent \"{}\" ({e}) -> {reply}", Escaped(line));
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
