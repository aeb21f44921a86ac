//! The TLD server: authoritative for the names under one top-level domain, answered
//! from its zone in constant time.

use std::net::IpAddr;

use hickory_proto::rr as hrr;

use super::{RoleConfig, Serving};
use crate::dns::answer::DnsService;
use crate::dns::xfr::{self, Notifier, Primary, Transfer, TransferSettings};
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::session::LineService;
use crate::model::{Query, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::resolve::tld::TldResolver;
use crate::server::access::Access;
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
    /// Where it listens, its limits, where a reload re-reads its data.
    serving: Serving<Zone>,
    tld: String,
    zone: Zone,
    transfers: TransferSettings,
}

impl TldConfig {
    /// Settings with the defaults: bound to 127.0.0.1 on port 0 (any free port), no
    /// zone transfers, no one notified.
    pub fn new(tld: &str, zone: Zone) -> TldConfig {
        TldConfig {
            serving: Serving::default(),
            tld: tld.to_ascii_lowercase(),
            zone,
            transfers: TransferSettings::default(),
        }
    }

    /// Who may transfer the zone, and which secondaries are notified of its changes.
    pub fn with_transfers(mut self, transfers: TransferSettings) -> TldConfig {
        self.transfers = transfers;
        self
    }

    pub fn transfers(&self) -> &TransferSettings {
        &self.transfers
    }

    /// The TLD served, lowercase.
    pub fn tld(&self) -> &str {
        &self.tld
    }
}

impl RoleConfig for TldConfig {
    type Handler = TldHandler;
    type Data = Zone;

    fn serving(&self) -> &Serving<Zone> {
        &self.serving
    }

    fn serving_mut(&mut self) -> &mut Serving<Zone> {
        &mut self.serving
    }

    /// The address the server binds is the glue of its NS record.
    /// NOTIFY goes out from that address too: a secondary checks it.
    fn handler(self, metrics: &Metrics) -> Result<TldHandler, Error> {
        let own = self.serving.bind().ip();
        let mut handler = TldHandler::new(&self.tld, self.zone, own);
        handler.metrics = metrics.server(&self.tld);
        handler.allow_transfer = self.transfers.allow;
        handler.notifier = Notifier::new(&self.tld, &self.transfers.notify, own);
        Ok(handler)
    }

    /// The secondaries are told the zone is there: one whose copy is older (dnsd
    /// restarted after an edit, so the serial is newer) transfers it now, not at its
    /// next refresh.
    fn started(handler: &TldHandler) {
        handler
            .notifier
            .notify(&Transfer::soa(&handler.resolver.snapshot()));
    }

    /// A zone that changed gets a newer serial, and the secondaries are told.
    fn swap(handler: &TldHandler, zone: Zone) {
        if handler.resolver.replace_zone(zone) {
            let soa = Transfer::soa(&handler.resolver.snapshot());
            log::info!(
                "{}: zone changed: serial {}",
                handler.tld,
                xfr::serial_of(&soa)
            );
            handler.notifier.notify(&soa);
        }
    }
}

/// The TLD role's handler.
pub struct TldHandler {
    tld: String,
    resolver: TldResolver,
    metrics: ServerMetrics,
    /// Who may transfer the zone (`--allow-transfer`).
    allow_transfer: Access,
    /// Who is told when a reload changes it (`--notify`).
    notifier: Notifier,
}

impl TldHandler {
    /// A handler for `tld` answering from `zone`; `own` is the server's address (the
    /// glue of its NS record).
    pub fn new(tld: &str, zone: Zone, own: IpAddr) -> TldHandler {
        TldHandler {
            tld: tld.to_owned(),
            resolver: TldResolver::new(tld, zone, own),
            metrics: ServerMetrics::DISABLED,
            allow_transfer: TransferSettings::default().allow,
            notifier: Notifier::new(tld, &[], own),
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

    fn primary(&self) -> Option<&dyn Primary> {
        Some(self)
    }
}

/// A TLD server transfers its zone to the addresses `--allow-transfer` lists.
impl Primary for TldHandler {
    fn allow(&self) -> &Access {
        &self.allow_transfer
    }

    fn zone(&self, _apex: &hrr::Name) -> Option<Box<dyn Transfer + '_>> {
        Some(Box::new(self.resolver.snapshot()))
    }
}
