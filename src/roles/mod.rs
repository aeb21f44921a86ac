//! The three server roles, wired: each role's settings (a [`RoleConfig`], started the
//! same way for all three by [`RoleConfig::start`]) and its handler, which puts a
//! resolver ([`crate::resolve`]) behind both protocols' views (a [`LineService`] and a
//! [`DnsService`]).

pub mod local;
pub mod root;
pub mod tld;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::rr as hrr;

use crate::dns::answer::{Answered, DnsService, DnsSettings, Now, Transport};
use crate::dns::exchange::DnsUpstream;
use crate::dns::{wire_record, xfr};
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::pool::LinePool;
use crate::line::session::LineService;
use crate::ops::fds;
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::reload::{Reload, Source, Summary};
use crate::resolve::local::Inspect;
use crate::resolve::upstream::{Upstream, UpstreamProtocol};
use crate::resolve::ZoneRecords;
use crate::server::access::Allow;
use crate::server::{Handler, Limits, Server, Shutdown};

/// A server running on its own thread.
pub struct Running {
    pub addr: SocketAddr,
    thread: JoinHandle<()>,
    /// Re-reads the server's files (SIGHUP).
    pub reload: Reload,
    /// The local server's caches, for the web view (`None` for the others).
    pub inspect: Option<Arc<dyn Inspect>>,
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
        inspect: None,
    })
}

/// What every role's settings hold alike: where it listens, its limits, and where a
/// reload (SIGHUP) re-reads its data. Set through [`RoleConfig`]'s `with_*`.
#[derive(Debug, Clone)]
pub struct Serving<D> {
    bind: SocketAddr,
    /// The address it publishes as its own (`--advertise`), when not the bound one.
    advertise: Option<std::net::IpAddr>,
    limits: Limits,
    source: Option<Source<D>>,
}

impl<D> Default for Serving<D> {
    /// Bound to 127.0.0.1 on port 0 (any free port), the default limits, nothing to
    /// re-read.
    fn default() -> Self {
        Serving {
            bind: SocketAddr::new(crate::server::DEFAULT_BIND, 0),
            advertise: None,
            limits: Limits::default(),
            source: None,
        }
    }
}

impl<D> Serving<D> {
    pub fn bind(&self) -> SocketAddr {
        self.bind
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The address it publishes as its own name server's (`ns.root`, `ns.<tld>`): the
    /// one given with `--advertise`, else the bound one unless that is 0.0.0.0 or `::`
    /// (`None`: nothing a client could reach is known).
    pub fn published(&self) -> Option<std::net::IpAddr> {
        self.advertise
            .or(Some(self.bind.ip()))
            .filter(|ip| crate::zone::build::publishable(*ip))
    }

    /// Whether a reload has files to re-read.
    pub fn reads_files(&self) -> bool {
        self.source.is_some()
    }
}

/// A role's validated settings: what is particular to starting it. The rest is the same
/// for every role and written once, in [`RoleConfig::start`].
///
/// A config holds settings only: what the running process shares (its metrics, its
/// shutdown) is handed to `start`.
pub trait RoleConfig: Sized + 'static {
    /// What answers the server's requests.
    type Handler: LineService + DnsService;
    /// What a reload (SIGHUP) re-reads and swaps in: a zone, the root table.
    type Data: Summary + 'static;
    /// Descriptors each connection holds (see [`fds`]).
    const FDS_PER_CONNECTION: u64 = fds::PER_CONNECTION;

    /// Where it listens, its limits, where a reload re-reads its data.
    fn serving(&self) -> &Serving<Self::Data>;

    fn serving_mut(&mut self) -> &mut Serving<Self::Data>;

    /// The address the server binds (port 0: any free port).
    fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.serving_mut().bind = bind;
        self
    }

    /// The address to publish as its own (see [`Serving::published`]).
    fn with_advertise(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.serving_mut().advertise = ip;
        self
    }

    /// The port to bind, on the address it has (0: any free port).
    fn with_port(mut self, port: u16) -> Self {
        self.serving_mut().bind.set_port(port);
        self
    }

    /// The limits the server enforces.
    fn with_limits(mut self, limits: Limits) -> Self {
        self.serving_mut().limits = limits;
        self
    }

    /// Where a reload (SIGHUP) re-reads the data from; `None`: nothing to re-read.
    fn with_source(mut self, source: Option<Source<Self::Data>>) -> Self {
        self.serving_mut().source = source;
        self
    }

    /// Which clients the server answers: everyone, unless the role says otherwise (the
    /// local server, which recurses for its clients, answers only those `--allow` lets
    /// in).
    fn allow(&self) -> Allow {
        Allow::Everyone
    }

    /// The handler, recording through `metrics`. It is made before the server binds,
    /// so that what a role reads or opens of its own (the local server's log directory,
    /// its warm cache) fails before any port is taken.
    fn handler(self, metrics: &Metrics) -> Result<Self::Handler, Error>;

    /// Puts reloaded data in place of the handler's; queries in flight finish with the
    /// old.
    fn swap(handler: &Self::Handler, data: Self::Data);

    /// Called once the server is bound and serving: a primary tells its secondaries
    /// (NOTIFY) that its zone is there. By default, nothing.
    fn started(_handler: &Self::Handler) {}

    /// What the web view may see of the handler's caches: only the local server has
    /// them.
    fn inspect(_handler: &Arc<Self::Handler>) -> Option<Arc<dyn Inspect>> {
        None
    }

    /// What the server needs of file descriptors.
    fn fd_need(&self) -> fds::Need {
        fds::Need {
            per_connection: Self::FDS_PER_CONNECTION,
            max_connections: self.serving().limits.max_connections,
        }
    }

    /// Builds the handler, binds, wires the reload, and runs the server on its own
    /// thread until `shutdown` is triggered, recording through `metrics` (the process's,
    /// or [`Metrics::disabled`]).
    fn start(self, shutdown: Shutdown, metrics: &Metrics) -> Result<Running, Error> {
        let serving = self.serving();
        let (bind, limits, source) = (serving.bind, serving.limits, serving.source.clone());
        let access = self.allow().resolve(bind.ip()).map_err(|e| {
            Error::io(
                format!("cannot read the network interfaces, for who may ask {bind}"),
                e,
            )
        })?;
        let handler = Arc::new(self.handler(metrics)?);
        let server = Server::bind(bind, limits)?.with_access(access);
        let swap = handler.clone();
        let reload = Reload::new(LineService::name(&*handler), source, move |data| {
            Self::swap(&swap, data)
        })
        .with_metrics(LineService::metrics(&*handler).clone());
        let inspect = Self::inspect(&handler);
        let serving = handler.clone();
        let mut running = spawn(server, handler, shutdown, reload)?;
        running.inspect = inspect;
        Self::started(&serving);
        Ok(running)
    }
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

    /// Only a role that is a [`Primary`](crate::dns::xfr::Primary) reads its requests
    /// for a transfer: the others answer AXFR and IXFR REFUSED, as any query.
    fn transfer(
        &self,
        request: &[u8],
        peer: IpAddr,
        transport: Transport,
        send: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Option<std::io::Result<Answered>> {
        let primary = DnsService::primary(self)?;
        let request = xfr::TransferRequest::read(request)?;
        Some(xfr::answer(&request, primary, peer, transport, send))
    }

    /// At once what the role answers at once ([`DnsService::resolve_now`]); the rest
    /// goes to [`DnsService::resolve_later`], and the response is made (and `done`
    /// called) on the thread that has the resolution.
    fn answer_udp<F>(&self, request: &[u8], settings: &DnsSettings, done: F)
    where
        F: FnOnce(Answered) + Send + 'static,
    {
        match crate::dns::answer::answer_now(request, Transport::Udp, settings, self) {
            Now::Answered(answered) => done(answered),
            Now::Deferred(deferred) => {
                let query = deferred.query().clone();
                DnsService::resolve_later(
                    self,
                    query,
                    Box::new(move |resolution| done(deferred.finish(resolution))),
                );
            }
        }
    }

    fn udp_held(&self) -> usize {
        DnsService::held(self)
    }

    fn metrics(&self) -> &ServerMetrics {
        LineService::metrics(self)
    }
}

/// A zone as the resolvers list it, as a zone transfer sends it: the one place the
/// servers' zone data become DNS records for [`crate::dns::xfr`].
impl<Z: ZoneRecords> xfr::Transfer for Z {
    /// (The zones' names are checked at start: their SOA is always a DNS record. Were
    /// it not, one owned by the root would make every transfer NOTAUTH, not a panic.)
    fn soa(&self) -> hrr::Record {
        wire_record(self.soa_record()).unwrap_or_else(|_| {
            let nothing = hrr::RData::Update0(hrr::RecordType::SOA);
            hrr::Record::from_rdata(hrr::Name::root(), 0, nothing)
        })
    }

    fn records(&self) -> Box<dyn Iterator<Item = hrr::Record> + '_> {
        Box::new(self.all_records().filter_map(|r| wire_record(&r).ok()))
    }
}

/// A server's way upstream: `protocol` (chosen at start) over the line protocol's pooled
/// client and DNS's exchange, each question within `timeout`; lines up to `max_line`
/// bytes; DNS questions from `local`, the address the server is bound to (its
/// [`Serving::bind`]), each on a socket of its own.
pub fn upstream(
    protocol: UpstreamProtocol,
    timeout: Duration,
    max_line: usize,
    local: IpAddr,
) -> Upstream {
    let line = Arc::new(LinePool::new(timeout, max_line));
    let dns = Arc::new(DnsUpstream::new(local));
    Upstream::new(protocol.asker(line, dns), timeout)
}
