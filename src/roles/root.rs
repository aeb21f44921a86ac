//! The root server: knows, from its table, which TLD server answers for each top-level
//! domain; asks it (mode R) or refers the asker to it (mode I).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr as hrr;

use super::{RoleConfig, Serving};
use crate::dns::answer::DnsService;
use crate::dns::xfr::{self, Notifier, Primary, Transfer, TransferSettings};
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::session::LineService;
use crate::model::{Query, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::resolve::inflight::{Inflight, Then, DEFAULT_MAX_PENDING};
use crate::resolve::root::RootResolver;
use crate::resolve::upstream::UpstreamProtocol;
use crate::server::access::Access;
use crate::zone::RootTable;

/// The root's port in the original design.
pub const DEFAULT_PORT: u16 = 5353;
/// The name the root replies under.
pub const NAME: &str = "root";

/// The root server's settings, built with [`RootConfig::new`] and `with_*`.
#[derive(Debug, Clone)]
pub struct RootConfig {
    /// Where it listens, its limits, where a reload re-reads its data.
    serving: Serving<RootTable>,
    table: RootTable,
    /// Connect and read timeout when asking a TLD server (mode R).
    upstream_timeout: Duration,
    /// The protocol it asks TLD servers in.
    upstream_protocol: UpstreamProtocol,
    /// How many mode R questions may wait for a TLD server at once.
    max_pending: usize,
    /// Who may transfer the root zone, who is told of its changes.
    transfers: TransferSettings,
}

impl RootConfig {
    /// Settings with the defaults: bound to 127.0.0.1 on port 0 (any free port).
    pub fn new(table: RootTable) -> RootConfig {
        RootConfig {
            serving: Serving::default(),
            table,
            upstream_timeout: crate::resolve::upstream::DEFAULT_TIMEOUT,
            upstream_protocol: UpstreamProtocol::default(),
            max_pending: DEFAULT_MAX_PENDING,
            transfers: TransferSettings::default(),
        }
    }

    /// Who may transfer the root zone, and which secondaries are notified of its
    /// changes.
    pub fn with_transfers(mut self, transfers: TransferSettings) -> RootConfig {
        self.transfers = transfers;
        self
    }

    /// How many mode R questions may wait for a TLD server at once (`--max-pending`);
    /// past it, new ones are answered SERVFAIL (`0XFE`) at once.
    pub fn with_max_pending(mut self, max: usize) -> RootConfig {
        self.max_pending = max;
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
        self.serving.source = self.serving.source.take().map(|files| {
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

    fn serving(&self) -> &Serving<RootTable> {
        &self.serving
    }

    fn serving_mut(&mut self) -> &mut Serving<RootTable> {
        &mut self.serving
    }

    fn handler(self, metrics: &Metrics) -> Result<RootHandler, Error> {
        let upstream = super::upstream(
            self.upstream_protocol,
            self.upstream_timeout,
            self.serving.limits().frame.max_line,
            self.serving.bind().ip(),
        );
        let metrics = metrics.server(NAME);
        let mut resolver = RootResolver::new(self.table, upstream).with_metrics(metrics.clone());
        if let Some(own) = self.serving.published() {
            resolver = resolver.with_address(own);
        }
        let bound = self.serving.bind().ip();
        Ok(RootHandler {
            resolver: Inflight::new(resolver, NAME, self.max_pending, metrics.clone()),
            metrics,
            allow_transfer: self.transfers.allow,
            notifier: Notifier::new(NAME, &self.transfers.notify, bound),
        })
    }

    /// The secondaries are told the root zone is there (see the TLD server's).
    fn started(handler: &RootHandler) {
        if let Some(snapshot) = handler.resolver.resolver().snapshot() {
            handler.notifier.notify(&Transfer::soa(&snapshot));
        }
    }

    /// A table that changed gets a newer serial, and the secondaries are told.
    fn swap(handler: &RootHandler, table: RootTable) {
        let resolver = handler.resolver.resolver();
        if resolver.replace_table(table) {
            if let Some(snapshot) = resolver.snapshot() {
                let soa = Transfer::soa(&snapshot);
                log::info!("{NAME}: zone changed: serial {}", xfr::serial_of(&soa));
                handler.notifier.notify(&soa);
            }
        }
    }
}

/// The root role's handler. Mode R questions (RD set) go through one [`Inflight`]:
/// identical ones in flight are joined, and at most `--max-pending` wait for TLD
/// servers, while referrals are answered at once.
pub struct RootHandler {
    resolver: Inflight<RootResolver>,
    metrics: ServerMetrics,
    /// Who may transfer the root zone (`--allow-transfer`).
    allow_transfer: Access,
    /// Who is told when a reload changes it (`--notify`).
    notifier: Notifier,
}

impl RootHandler {
    /// The root's handler around `resolver`, with the default `--max-pending` and no
    /// metrics.
    pub fn new(resolver: RootResolver) -> RootHandler {
        RootHandler {
            resolver: Inflight::new(resolver, NAME, DEFAULT_MAX_PENDING, ServerMetrics::DISABLED),
            metrics: ServerMetrics::DISABLED,
            allow_transfer: TransferSettings::default().allow,
            notifier: Notifier::new(NAME, &[], crate::server::DEFAULT_BIND),
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

    fn resolve_now(&self, query: &Query) -> Option<Resolution> {
        self.resolver.at_once(query)
    }

    fn resolve_later(&self, query: Query, then: Then) {
        self.resolver.resolve_then(query, then)
    }

    fn held(&self) -> usize {
        self.resolver.max_pending()
    }

    fn primary(&self) -> Option<&dyn Primary> {
        Some(self)
    }
}

/// The root transfers its zone (the apex and a delegation per TLD, or its root zone
/// file's records) to the addresses `--allow-transfer` lists.
impl Primary for RootHandler {
    fn allow(&self) -> &Access {
        &self.allow_transfer
    }

    fn zone(&self, _apex: &hrr::Name) -> Option<Box<dyn Transfer + '_>> {
        let snapshot = self.resolver.resolver().snapshot()?;
        Some(Box::new(snapshot))
    }
}
