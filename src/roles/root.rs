//! The root server: knows, from its table, which TLD server answers for each top-level
//! domain; asks it (mode R) or refers the asker to it (mode I).

use std::net::SocketAddr;
use std::time::Duration;

use super::RoleConfig;
use crate::dns::answer::DnsService;
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::session::LineService;
use crate::model::{Query, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::reload::Source;
use crate::resolve::root::RootResolver;
use crate::resolve::upstream::UpstreamProtocol;
use crate::server::Limits;
use crate::zone::RootTable;

/// The root's port in the original design.
pub const DEFAULT_PORT: u16 = 5353;
/// The name the root replies under.
pub const NAME: &str = "root";

/// The root server's settings, built with [`RootConfig::new`] and `with_*`.
#[derive(Debug, Clone)]
pub struct RootConfig {
    table: RootTable,
    /// Where a reload (SIGHUP) re-reads the table from; `None`: nothing to re-read.
    source: Option<Source<RootTable>>,
    bind: SocketAddr,
    limits: Limits,
    /// Connect and read timeout when asking a TLD server (mode R).
    upstream_timeout: Duration,
    /// The protocol it asks TLD servers in.
    upstream_protocol: UpstreamProtocol,
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
        }
    }

    /// Where a reload (SIGHUP) re-reads the table from; `None`: nothing to re-read.
    pub fn with_source(mut self, source: Option<Source<RootTable>>) -> RootConfig {
        self.source = source;
        self
    }

    pub fn with_bind(mut self, bind: SocketAddr) -> RootConfig {
        self.bind = bind;
        self
    }

    /// The port to bind, on the address it has (0: any free port).
    pub fn with_port(mut self, port: u16) -> RootConfig {
        self.bind.set_port(port);
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> RootConfig {
        self.limits = limits;
        self
    }

    /// Connect and read timeout when asking a TLD server (mode R).
    pub fn with_upstream_timeout(mut self, timeout: Duration) -> RootConfig {
        self.upstream_timeout = timeout;
        self
    }

    /// The protocol it asks TLD servers in.
    pub fn with_upstream_protocol(mut self, protocol: UpstreamProtocol) -> RootConfig {
        self.upstream_protocol = protocol;
        self
    }

    /// Lists `tld` in the table, answered by the server at `addr`.
    pub fn refer(mut self, tld: &str, addr: SocketAddr) -> RootConfig {
        self.table.insert(tld, addr);
        self
    }

    /// Keeps the table's entries as they are now through every reload: a reloaded table
    /// still points at the TLD servers started beside the root, wherever they landed.
    pub fn pin_table(mut self) -> RootConfig {
        let pinned: Vec<(String, SocketAddr)> =
            self.table.iter().map(|(t, a)| (t.to_owned(), a)).collect();
        self.source = self.source.map(|files| {
            files.map(move |mut table| {
                for (tld, addr) in &pinned {
                    table.insert(tld, *addr);
                }
                table
            })
        });
        self
    }
}

impl RoleConfig for RootConfig {
    type Handler = RootHandler;
    type Data = RootTable;

    fn bind(&self) -> SocketAddr {
        self.bind
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn source(&self) -> Option<Source<RootTable>> {
        self.source.clone()
    }

    fn handler(self, metrics: &Metrics) -> Result<RootHandler, Error> {
        let upstream = super::upstream(
            self.upstream_protocol,
            self.upstream_timeout,
            self.limits.frame.max_line,
        );
        let metrics = metrics.server(NAME);
        Ok(RootHandler {
            resolver: RootResolver::new(self.table, upstream).with_metrics(metrics.clone()),
            metrics,
        })
    }

    fn swap(handler: &RootHandler, table: RootTable) {
        handler.resolver.replace_table(table)
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
