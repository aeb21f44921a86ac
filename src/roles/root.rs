//! The root server: knows, from its table, which TLD server answers for each top-level
//! domain; asks it (mode R) or refers the asker to it (mode I).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::Running;
use crate::dns::answer::DnsService;
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::session::LineService;
use crate::model::{Query, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::reload::{Reload, Source};
use crate::resolve::root::RootResolver;
use crate::resolve::upstream::UpstreamProtocol;
use crate::server::{Limits, Server, Shutdown};
use crate::zone::RootTable;

/// The root's port in the original design.
pub const DEFAULT_PORT: u16 = 5353;
/// The name the root replies under.
pub const NAME: &str = "root";

/// The root server's settings.
#[derive(Debug, Clone)]
pub struct RootConfig {
    pub table: RootTable,
    /// Where a reload (SIGHUP) re-reads the table from; `None`: nothing to re-read.
    pub source: Option<Source<RootTable>>,
    pub bind: SocketAddr,
    pub limits: Limits,
    /// Connect and read timeout when asking a TLD server (mode R).
    pub upstream_timeout: Duration,
    /// The protocol it asks TLD servers in.
    pub upstream_protocol: UpstreamProtocol,
    /// The process's metrics (disabled unless `--metrics`).
    pub metrics: Metrics,
}

impl RootConfig {
    /// Settings with the defaults: bound to 127.0.0.1 on port 0 (any free port).
    pub fn new(table: RootTable) -> RootConfig {
        RootConfig {
            table,
            source: None,
            bind: SocketAddr::new(crate::server::DEFAULT_BIND, 0),
            limits: Limits::default(),
            upstream_timeout: crate::resolve::upstream::DEFAULT_TIMEOUT,
            upstream_protocol: UpstreamProtocol::default(),
            metrics: Metrics::disabled(),
        }
    }

    /// Binds and starts the server on its own thread.
    pub fn start(self, shutdown: Shutdown) -> Result<Running, Error> {
        let server = Server::bind(self.bind, self.limits)?;
        let upstream = super::upstream(
            self.upstream_protocol,
            self.upstream_timeout,
            self.limits.frame.max_line,
        );
        let metrics = self.metrics.server(NAME);
        let handler = Arc::new(RootHandler {
            resolver: RootResolver::new(self.table, upstream).with_metrics(metrics.clone()),
            metrics: metrics.clone(),
        });
        let swap = handler.clone();
        let reload = Reload::new(NAME, self.source, move |table| {
            swap.resolver.replace_table(table)
        })
        .with_metrics(metrics);
        super::spawn(server, handler, shutdown, reload)
    }
}

/// The root role's handler.
pub struct RootHandler {
    resolver: RootResolver,
    metrics: ServerMetrics,
}

impl RootHandler {
    pub fn new(resolver: RootResolver) -> RootHandler {
        RootHandler {
            resolver,
            metrics: ServerMetrics::DISABLED,
        }
    }
}

impl LineService for RootHandler {
    type Session = ();

    fn name(&self) -> &str {
        NAME
    }

    fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }

    fn open(&self, _: &mut Connection, _: &str) -> Result<Option<()>, FrameError> {
        Ok(Some(()))
    }

    fn resolve(&self, query: &Query) -> Resolution {
        self.resolver.resolve(query)
    }
}

/// Over DNS, RD set asks the root to resolve through the TLD server (mode R); RD clear
/// gets the referral (mode I), as `dig +norecurse` shows.
impl DnsService for RootHandler {
    fn recursion(&self, rd: bool) -> Recursion {
        if rd {
            Recursion::Recursive
        } else {
            Recursion::Iterative
        }
    }

    fn recursion_available(&self, rd: bool) -> bool {
        rd
    }

    fn resolve(&self, query: &Query) -> Resolution {
        self.resolver.resolve(query)
    }
}
