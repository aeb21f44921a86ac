//! The TLD server: authoritative for the names under one top-level domain, answered
//! from its zone in constant time.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::Running;
use crate::dns::answer::DnsService;
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::session::LineService;
use crate::model::{Query, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::reload::{Reload, Source};
use crate::resolve::tld::TldResolver;
use crate::server::{Limits, Server, Shutdown};
use crate::zone::Zone;

/// The ports the original design gave its TLD servers.
pub fn default_port(tld: &str) -> Option<u16> {
    match tld {
        "com" => Some(5678),
        "org" => Some(5679),
        "gov" => Some(5680),
        _ => None,
    }
}

/// A TLD server's settings.
#[derive(Debug, Clone)]
pub struct TldConfig {
    pub tld: String,
    pub zone: Zone,
    /// Where a reload (SIGHUP) re-reads the zone from; `None`: nothing to re-read.
    pub source: Option<Source<Zone>>,
    pub bind: SocketAddr,
    pub limits: Limits,
    /// The process's metrics (disabled unless `--metrics`).
    pub metrics: Metrics,
}

impl TldConfig {
    /// Settings with the defaults: bound to 127.0.0.1 on port 0 (any free port).
    pub fn new(tld: &str, zone: Zone) -> TldConfig {
        TldConfig {
            tld: tld.to_ascii_lowercase(),
            zone,
            source: None,
            bind: SocketAddr::new(crate::server::DEFAULT_BIND, 0),
            limits: Limits::default(),
            metrics: Metrics::disabled(),
        }
    }

    /// Binds and starts the server on its own thread.
    pub fn start(self, shutdown: Shutdown) -> Result<Running, Error> {
        let server = Server::bind(self.bind, self.limits)?;
        let mut handler = TldHandler::new(&self.tld, self.zone, server.local_addr().ip());
        handler.metrics = self.metrics.server(&self.tld);
        let handler = Arc::new(handler);
        let swap = handler.clone();
        let reload = Reload::new(&self.tld, self.source, move |zone| {
            swap.resolver.replace_zone(zone)
        })
        .with_metrics(handler.metrics.clone());
        super::spawn(server, handler, shutdown, reload)
    }
}

/// The TLD role's handler.
pub struct TldHandler {
    tld: String,
    resolver: TldResolver,
    metrics: ServerMetrics,
}

impl TldHandler {
    /// A handler for `tld` answering from `zone`; `own` is the server's address (the
    /// glue of its NS record).
    pub fn new(tld: &str, zone: Zone, own: IpAddr) -> TldHandler {
        TldHandler {
            tld: tld.to_owned(),
            resolver: TldResolver::new(tld, zone, own),
            metrics: ServerMetrics::DISABLED,
        }
    }
}

impl LineService for TldHandler {
    type Session = ();

    fn name(&self) -> &str {
        &self.tld
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

/// Over DNS the TLD server is authoritative and never recurses.
impl DnsService for TldHandler {
    fn recursion(&self, _rd: bool) -> Recursion {
        Recursion::Iterative
    }

    fn recursion_available(&self, _rd: bool) -> bool {
        false
    }

    fn resolve(&self, query: &Query) -> Resolution {
        self.resolver.resolve(query)
    }
}
