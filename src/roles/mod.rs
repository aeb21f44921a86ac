//! The three server roles, wired: each role's settings, how it starts, and its
//! handler, which puts a resolver ([`crate::resolve`]) behind both protocols' views (a
//! [`LineService`] and a [`DnsService`]).

pub mod local;
pub mod root;
pub mod tld;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::dns::answer::{Answered, DnsService, DnsSettings, Transport};
use crate::dns::exchange::DnsUpstream;
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::pool::LinePool;
use crate::line::session::LineService;
use crate::ops::metrics::ServerMetrics;
use crate::ops::reload::Reload;
use crate::resolve::upstream::{Upstream, UpstreamProtocol};
use crate::server::{Handler, Server, Shutdown};

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
pub fn spawn<H: Handler>(
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

/// Every role answers both protocols, each a view in front of the same resolver: a
/// [`LineService`] and a [`DnsService`] is a server's [`Handler`].
impl<R: LineService + DnsService> Handler for R {
    fn name(&self) -> &str {
        LineService::name(self)
    }

    fn serve(&self, conn: &mut Connection) -> Result<(), FrameError> {
        crate::line::session::serve(self, conn)
    }

    fn answer_dns(&self, request: &[u8], transport: Transport, settings: &DnsSettings) -> Answered {
        crate::dns::answer::answer(request, transport, settings, self)
    }

    fn metrics(&self) -> &ServerMetrics {
        LineService::metrics(self)
    }
}

/// A server's way upstream: `protocol` (chosen at start) over the line protocol's pooled
/// client and DNS's exchange, each question within `timeout`; lines up to `max_line`
/// bytes.
pub fn upstream(protocol: UpstreamProtocol, timeout: Duration, max_line: usize) -> Upstream {
    let line = Arc::new(LinePool::new(timeout, max_line));
    let dns = Arc::new(DnsUpstream::new());
    Upstream::new(protocol.asker(line, dns), timeout)
}
