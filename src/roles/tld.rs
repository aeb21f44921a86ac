//! The TLD server: authoritative for the names under one top-level domain, answered
//! from its zone in constant time.

use std::net::{IpAddr, SocketAddr};

use super::RoleConfig;
use crate::dns::answer::DnsService;
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::session::LineService;
use crate::model::{Query, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::reload::Source;
use crate::resolve::tld::TldResolver;
use crate::server::Limits;
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

/// A TLD server's settings, built with [`TldConfig::new`] and `with_*`.
#[derive(Debug, Clone)]
pub struct TldConfig {
    tld: String,
    zone: Zone,
    /// Where a reload (SIGHUP) re-reads the zone from; `None`: nothing to re-read.
    source: Option<Source<Zone>>,
    bind: SocketAddr,
    limits: Limits,
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
        }
    }

    /// Where a reload (SIGHUP) re-reads the zone from; `None`: nothing to re-read.
    pub fn with_source(mut self, source: Option<Source<Zone>>) -> TldConfig {
        self.source = source;
        self
    }

    pub fn with_bind(mut self, bind: SocketAddr) -> TldConfig {
        self.bind = bind;
        self
    }

    /// The port to bind, on the address it has (0: any free port).
    pub fn with_port(mut self, port: u16) -> TldConfig {
        self.bind.set_port(port);
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> TldConfig {
        self.limits = limits;
        self
    }

    /// The TLD served, lowercase.
    pub fn tld(&self) -> &str {
        &self.tld
    }
}

impl RoleConfig for TldConfig {
    type Handler = TldHandler;
    type Data = Zone;

    fn bind(&self) -> SocketAddr {
        self.bind
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn source(&self) -> Option<Source<Zone>> {
        self.source.clone()
    }

    /// The address the server binds is the glue of its NS record.
    fn handler(self, metrics: &Metrics) -> Result<TldHandler, Error> {
        let mut handler = TldHandler::new(&self.tld, self.zone, self.bind.ip());
        handler.metrics = metrics.server(&self.tld);
        Ok(handler)
    }

    fn swap(handler: &TldHandler, zone: Zone) {
        handler.resolver.replace_zone(zone)
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
