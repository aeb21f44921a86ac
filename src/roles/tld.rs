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
use crate::model::name::Name;
use crate::model::{Query, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::resolve::authority::Authoritative;
use crate::server::access::Access;
use crate::zone::build::Delegation;
use crate::zone::{Zone, ZoneFile, ZoneSet};

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
    serving: Serving<ZoneSet>,
    tld: String,
    zones: ZoneSet,
    /// Zones below its own served by servers started beside it (`dnsd up`).
    delegations: Vec<Delegation>,
    /// Who may transfer its zones, who is told of their changes.
    transfers: TransferSettings,
}

impl TldConfig {
    /// Settings with the defaults: bound to 127.0.0.1 on port 0 (any free port).
    pub fn new(tld: &str, zone: Zone) -> TldConfig {
        TldConfig::with_zones(tld, ZoneSet::from(zone))
    }

    /// [`TldConfig::new`] with a zone of either kind: an address file or a master file.
    pub fn with_zone(tld: &str, zone: ZoneFile) -> TldConfig {
        TldConfig::with_zones(tld, ZoneSet::from(zone))
    }

    /// An authoritative server named `name` (in its logs and metrics) holding `zones`:
    /// a TLD server (`name` is the TLD, whose zone an address file may give), or a
    /// server for any zones given as master files (`dnsd auth`).
    pub fn with_zones(name: &str, zones: ZoneSet) -> TldConfig {
        TldConfig {
            serving: Serving::default(),
            tld: name.to_ascii_lowercase(),
            zones,
            delegations: Vec::new(),
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

    /// Delegates a zone below its own to a server started beside it: NS, glue and the
    /// SRV port hint are added to an address zone (`dnsd up`'s third level).
    pub fn delegate(mut self, delegation: Delegation) -> TldConfig {
        self.delegations.push(delegation);
        self
    }

    /// The zones it serves: its name servers (inside the zone) and origin, for a
    /// master file; what the parent's delegation to it needs.
    pub fn zone_servers(&self) -> Option<(Name, Vec<Name>)> {
        let zone = self.zones.0.first()?;
        Some((zone.origin()?.clone(), zone.own_servers()))
    }

    /// The TLD served, lowercase.
    pub fn tld(&self) -> &str {
        &self.tld
    }
}

impl RoleConfig for TldConfig {
    type Handler = TldHandler;
    type Data = ZoneSet;

    fn serving(&self) -> &Serving<ZoneSet> {
        &self.serving
    }

    fn serving_mut(&mut self) -> &mut Serving<ZoneSet> {
        &mut self.serving
    }

    /// The address the server binds (or `--advertise`s) is the glue of its NS record.
    fn handler(self, metrics: &Metrics) -> Result<TldHandler, Error> {
        let own = self.serving.published();
        let bound = self.serving.bind().ip();
        let mut handler =
            TldHandler::with_delegations(&self.tld, self.zones, own, self.delegations);
        handler.metrics = metrics.server(&self.tld);
        handler.allow_transfer = self.transfers.allow;
        // NOTIFY goes out from the bound address: a secondary checks it.
        handler.notifier = Notifier::new(&self.tld, &self.transfers.notify, bound);
        Ok(handler)
    }

    /// The secondaries are told the zones are there: one whose copy is older (dnsd
    /// restarted after an edit, so the serial is newer) transfers it now, not at its
    /// next refresh.
    fn started(handler: &TldHandler) {
        for origin in handler.resolver.origins() {
            handler.notify(&origin);
        }
    }

    /// A zone that changed gets a newer serial (a master file's is its own), and the
    /// secondaries are told.
    fn swap(handler: &TldHandler, zones: ZoneSet) {
        for origin in handler.resolver.replace(handler.authority(zones)) {
            if let Some(snapshot) = handler.resolver.snapshot(origin.as_str()) {
                let serial = xfr::serial_of(&Transfer::soa(&snapshot));
                if origin.as_str() == handler.tld {
                    log::info!("{}: zone changed: serial {serial}", handler.tld);
                } else {
                    log::info!("{}: zone {origin}. changed: serial {serial}", handler.tld);
                }
            }
            handler.notify(&origin);
        }
    }
}

impl TldHandler {
    /// Tells the secondaries the zone `origin`'s serial (NOTIFY).
    fn notify(&self, origin: &Name) {
        if let Some(snapshot) = self.resolver.snapshot(origin.as_str()) {
            self.notifier.notify(&Transfer::soa(&snapshot));
        }
    }

    /// What it answers from: `zones`, with its delegations.
    fn authority(&self, zones: ZoneSet) -> crate::zone::Authority {
        zones.into_authority(&Name::from_wire(&self.tld), self.own, &self.delegations)
    }
}

/// The TLD role's handler.
pub struct TldHandler {
    tld: String,
    resolver: Authoritative,
    /// The server's address: `ns.<tld>`'s in an address zone (none when it binds
    /// 0.0.0.0 or `::` and was given no `--advertise`).
    own: Option<IpAddr>,
    /// Zones below its own served beside it (see [`TldConfig::delegate`]).
    delegations: Vec<Delegation>,
    metrics: ServerMetrics,
    /// Who may transfer its zones (`--allow-transfer`).
    allow_transfer: Access,
    /// Who is told when a reload changes one (`--notify`).
    notifier: Notifier,
}

impl TldHandler {
    /// A handler for `tld` answering from `zone`; `own` is the server's address (the
    /// glue of its NS record).
    pub fn new(tld: &str, zone: impl Into<ZoneFile>, own: IpAddr) -> TldHandler {
        TldHandler::with_zones(tld, ZoneSet::from(zone.into()), own)
    }

    /// A handler named `name` answering from `zones` (see [`TldConfig::with_zones`]).
    pub fn with_zones(name: &str, zones: ZoneSet, own: IpAddr) -> TldHandler {
        TldHandler::with_delegations(name, zones, Some(own), Vec::new())
    }

    /// [`TldHandler::with_zones`], with zones below delegated (see
    /// [`TldConfig::delegate`]).
    fn with_delegations(
        name: &str,
        zones: ZoneSet,
        own: Option<IpAddr>,
        delegations: Vec<Delegation>,
    ) -> TldHandler {
        let authority = zones.into_authority(&Name::from_wire(name), own, &delegations);
        TldHandler {
            tld: name.to_owned(),
            resolver: Authoritative::new(authority),
            own,
            delegations,
            metrics: ServerMetrics::DISABLED,
            allow_transfer: TransferSettings::default().allow,
            notifier: Notifier::new(name, &[], own.unwrap_or(crate::server::DEFAULT_BIND)),
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

/// An authoritative server transfers each of its zones to the addresses
/// `--allow-transfer` lists.
impl Primary for TldHandler {
    fn allow(&self) -> &Access {
        &self.allow_transfer
    }

    fn zone(&self, apex: &hrr::Name) -> Option<Box<dyn Transfer + '_>> {
        let origin = crate::dns::model_name(apex);
        let snapshot = self.resolver.snapshot(origin.as_str())?;
        Some(Box::new(snapshot))
    }
}
