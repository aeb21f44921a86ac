//! `dnsd up`: the whole hierarchy in one process — the root, one TLD server per entry of
//! the root table, and the local server seeded with the default cache.
//!
//! Zones come from a directory (`root`, one file per TLD and `default`, each as `.toml`
//! if present, else `.dat`), from a lab file ([`crate::runtime::lab`]) or, by default, from the
//! sample zones built into the binary. A master file (`*.zone`) for a zone under one of
//! the TLDs (`example.com.zone`) gets a server of its own, which its TLD's server
//! delegates to: the hierarchy's third level, as the textbook draws it. Each server's [`crate::ops::reload::Reload`] re-reads
//! the files it came from (SIGHUP); built-in zones have nothing to re-read.

use crate::dns::xfr::TransferSettings;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, Error};
use crate::ops::fds;
use crate::ops::metrics::Metrics;
use crate::ops::reload::{Reload, Source as Files};
use crate::resolve::local::Inspect;
use crate::resolve::upstream::UpstreamProtocol;
use crate::roles::local::{self, LocalConfig};
use crate::roles::root::{self, RootConfig};
use crate::roles::tld::TldConfig;
use crate::roles::{RoleConfig, Running};
use crate::server::{Limits, Shutdown};
use crate::zone::build::Delegation;
use crate::zone::{master, FileError, Format, RootTable, Zone, ZoneFile, ZoneSet};

/// The sample zones built into the binary: (file name, text).
pub const BUILTIN_ZONES: &[(&str, &str)] = &[
    ("root.dat", include_str!("../../zones/root.dat")),
    ("com.dat", include_str!("../../zones/com.dat")),
    ("gov.dat", include_str!("../../zones/gov.dat")),
    ("org.dat", include_str!("../../zones/org.dat")),
    ("default.dat", include_str!("../../zones/default.dat")),
];

/// The sample second-level zones built into the binary, as master files: (file name,
/// text). Each gets its own server, delegated to by its TLD's.
pub const BUILTIN_MASTERS: &[(&str, &str)] = &[(
    "example.com.zone",
    include_str!("../../zones/example.com.zone"),
)];

/// The first port of the second-level zones' servers on the original's ports (after
/// com, org and gov's 5678-5680).
pub const FIRST_ZONE_PORT: u16 = 5681;

/// Assembles a hierarchy: TLD servers from zones given as values, a root whose table
/// lists them, and a local server that asks that root. Every server binds port 0 on
/// loopback (any free port) unless told otherwise; the real addresses are read back
/// from the bound listeners. `dnsd up`, the tests and the examples all build through it.
///
/// It holds settings only: the process's metrics and shutdown are handed to
/// [`start_with`](Self::start_with).
///
/// ```no_run
/// # use dnsd::runtime::hierarchy::HierarchyBuilder;
/// # use dnsd::zone::Zone;
/// let com: Zone = "www.google.com 142.250.72.4".parse().unwrap();
/// let hierarchy = HierarchyBuilder::new().tld("com", com).log_dir("/tmp").start().unwrap();
/// println!("ask {}", hierarchy.local);
/// ```
#[derive(Debug, Clone)]
pub struct HierarchyBuilder {
    tlds: Vec<TldConfig>,
    /// Servers of zones below the TLDs, each delegated to by its TLD's server.
    zones: Vec<TldConfig>,
    /// Root-table entries with no server started here (a TLD served elsewhere).
    referrals: Vec<(String, SocketAddr)>,
    root: RootConfig,
    local: LocalConfig,
    /// The limits of TLD servers added from now on.
    limits: Limits,
}

impl Default for HierarchyBuilder {
    fn default() -> Self {
        HierarchyBuilder::new()
    }
}

impl HierarchyBuilder {
    /// The TLD servers' settings, as added so far.
    #[cfg(test)]
    pub(crate) fn tld_configs(&self) -> &[TldConfig] {
        &self.tlds
    }

    /// No TLD yet, an empty cache, logs in the current directory, every port 0.
    pub fn new() -> HierarchyBuilder {
        // The local server's root is filled in once the root is bound.
        let unbound = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        HierarchyBuilder {
            tlds: Vec::new(),
            zones: Vec::new(),
            referrals: Vec::new(),
            root: RootConfig::new(RootTable::default()),
            local: LocalConfig::new(unbound, Zone::default(), local::DEFAULT_LOG_DIR),
            limits: Limits::default(),
        }
    }

    /// Adds a TLD server for `tld` with `zone`, on any free loopback port.
    pub fn tld(self, tld: &str, zone: Zone) -> HierarchyBuilder {
        let config = TldConfig::new(tld, zone).with_limits(self.limits);
        self.tld_with(config)
    }

    /// Adds a TLD server with these settings (its own address, limits...).
    pub fn tld_with(mut self, config: TldConfig) -> HierarchyBuilder {
        self.tlds.push(config);
        self
    }

    /// Adds a server for a zone below a TLD (a master file's, see
    /// [`TldConfig::with_zones`]): the TLD's server started here delegates the zone to
    /// it, with its address as glue.
    pub fn zone_with(mut self, config: TldConfig) -> HierarchyBuilder {
        self.zones.push(config);
        self
    }

    /// Lists `tld` in the root's table at `addr` without starting a server for it.
    pub fn refer(mut self, tld: &str, addr: SocketAddr) -> HierarchyBuilder {
        self.referrals.push((tld.to_owned(), addr));
        self
    }

    /// The local server's fixed entries (what `--cache` files give).
    pub fn cache(self, zone: Zone) -> HierarchyBuilder {
        self.local(|c| c.with_cache(zone))
    }

    /// Whether any server re-reads files on SIGHUP (not with the built-in zones).
    pub fn reads_files(&self) -> bool {
        self.root.serving().reads_files()
            || self.local.serving().reads_files()
            || self.tlds.iter().any(|t| t.serving().reads_files())
            || self.zones.iter().any(|z| z.serving().reads_files())
    }

    /// Where the local server writes its logs (`clients/ID.log`, `mapping.log`...).
    pub fn log_dir(self, dir: impl Into<PathBuf>) -> HierarchyBuilder {
        self.local(|c| c.with_log_dir(dir))
    }

    /// The limits of every server, those added so far and those to come (a later
    /// [`root`](Self::root) or [`local`](Self::local) tweak may still change them).
    pub fn limits(mut self, limits: Limits) -> HierarchyBuilder {
        self.limits = limits;
        self.tlds = self
            .tlds
            .into_iter()
            .map(|tld| tld.with_limits(limits))
            .collect();
        self.zones = self
            .zones
            .into_iter()
            .map(|zone| zone.with_limits(limits))
            .collect();
        self.root(|c| c.with_limits(limits))
            .local(|c| c.with_limits(limits))
    }

    /// Who may transfer the zones of the root and the TLD servers added so far, and
    /// which secondaries they notify (`--allow-transfer`, `--notify`).
    pub fn transfers(mut self, transfers: &TransferSettings) -> HierarchyBuilder {
        self.tlds = self
            .tlds
            .into_iter()
            .map(|tld| tld.with_transfers(transfers.clone()))
            .collect();
        self.root(|c| c.with_transfers(transfers.clone()))
    }

    /// The upstream timeout of the root and the local server.
    pub fn upstream_timeout(self, timeout: Duration) -> HierarchyBuilder {
        self.root(|c| c.with_upstream_timeout(timeout))
            .local(|c| c.with_upstream_timeout(timeout))
    }

    /// The protocol the local server and the root ask upstream in.
    pub fn upstream_protocol(self, protocol: UpstreamProtocol) -> HierarchyBuilder {
        self.root(|c| c.with_upstream_protocol(protocol))
            .local(|c| c.with_upstream_protocol(protocol))
    }

    /// How many questions may wait for an upstream at once, at the root and the local
    /// server (`--max-pending`).
    pub fn max_pending(self, max: usize) -> HierarchyBuilder {
        self.root(|c| c.with_max_pending(max))
            .local(|c| c.with_max_pending(max))
    }

    /// Changes the root's settings (its address, say).
    pub fn root(mut self, tweak: impl FnOnce(RootConfig) -> RootConfig) -> HierarchyBuilder {
        self.root = tweak(self.root);
        self
    }

    /// Changes the local server's settings (its TTL, cache size, name...).
    pub fn local(mut self, tweak: impl FnOnce(LocalConfig) -> LocalConfig) -> HierarchyBuilder {
        self.local = tweak(self.local);
        self
    }

    /// The servers `dnsd up` starts from `zones` (a directory, or `None` for the sample
    /// zones built in): the root table's TLDs, each from its zone file, and the local
    /// server seeded with `default`. On the original's ports unless `any_port`.
    pub fn from_zones(zones: Option<&Path>, any_port: bool) -> Result<HierarchyBuilder, Error> {
        let root = find(zones, "root").ok_or_else(|| ConfigError::NoRootTable {
            dir: zones.map(Path::to_owned),
        })?;
        let table = match &root {
            Data::File(path) => RootTable::load(path)?,
            Data::Builtin(file, text) => RootTable::parse(
                Path::new(&format!("(built-in) {file}")),
                text,
                Format::Legacy,
            )?,
        };
        let mut builder = HierarchyBuilder::new();
        if let Data::File(path) = root {
            builder = builder.root(|c| c.with_source(Some(Files::table_file(path))));
        }
        if let Some(source) = find(zones, "default") {
            builder = builder
                .cache(load_zone(&source)?)
                .local(|c| c.with_source(source.reloadable()));
        }
        for (tld, addr) in table.iter() {
            let source = find(zones, tld).ok_or_else(|| ConfigError::NoZone {
                dir: zones.map(Path::to_owned),
                tld: tld.to_owned(),
            })?;
            let mut config = TldConfig::new(tld, load_zone(&source)?)
                .with_source(source.reloadable().map(Files::convert));
            if !any_port {
                config = config.with_bind(addr);
            }
            builder = builder.tld_with(config);
        }
        for (i, (path, zone)) in second_level(zones, &table)?.into_iter().enumerate() {
            let name = zone.origin().map(ToString::to_string).unwrap_or_default();
            let mut config = TldConfig::with_zones(&name, ZoneSet::from(zone))
                .with_source(path.map(|p| Files::master_files(vec![p])));
            if !any_port {
                let port = FIRST_ZONE_PORT.saturating_add(i as u16);
                config = config.with_bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
            }
            builder = builder.zone_with(config);
        }
        if !any_port {
            builder = builder
                .root(|c| c.with_port(root::DEFAULT_PORT))
                .local(|c| c.with_port(local::DEFAULT_PORT));
        }
        Ok(builder)
    }

    /// What the servers to start need of file descriptors (see [`crate::ops::fds`]).
    pub fn fd_needs(&self) -> Vec<fds::Need> {
        let mut needs: Vec<fds::Need> = self
            .tlds
            .iter()
            .chain(&self.zones)
            .map(RoleConfig::fd_need)
            .collect();
        needs.push(self.root.fd_need());
        needs.push(self.local.fd_need());
        needs
    }

    /// Where the local server will write its logs.
    /// The name the local server replies under.
    pub fn local_name(&self) -> &str {
        self.local.name()
    }

    pub fn log_dir_path(&self) -> &Path {
        self.local.log_dir()
    }

    /// Starts every server, stopped together through a new [`Shutdown`], with no
    /// metrics.
    pub fn start(self) -> Result<Hierarchy, Error> {
        self.start_with(Shutdown::new(), &Metrics::disabled())
    }

    /// Starts every server, recording through `metrics`: the servers of zones below the
    /// TLDs, then the TLD servers that delegate to where they landed, then the root that
    /// lists where those landed, then the local server. If one cannot start, those
    /// already started are stopped before the error is returned.
    pub fn start_with(self, shutdown: Shutdown, metrics: &Metrics) -> Result<Hierarchy, Error> {
        let mut hierarchy = Hierarchy {
            root: self.root.serving().bind(),
            local: self.local.serving().bind(),
            tlds: Vec::new(),
            zones: Vec::new(),
            shutdown,
            running: Vec::new(),
        };
        // On an error, dropping `hierarchy` stops what was started.
        let HierarchyBuilder {
            tlds,
            zones,
            referrals,
            mut root,
            local,
            ..
        } = self;
        let mut delegations = Vec::new();
        for config in zones {
            let Some((zone, servers)) = config.zone_servers() else {
                continue;
            };
            let server = config.start(hierarchy.shutdown.clone(), metrics)?;
            hierarchy.zones.push((zone.to_string(), server.addr));
            delegations.push(Delegation {
                zone,
                servers,
                addr: server.addr,
            });
            hierarchy.running.push(server);
        }
        for mut config in tlds {
            let tld = config.tld().to_owned();
            for d in &delegations {
                if d.zone.is_within(&tld) {
                    config = config.delegate(d.clone());
                }
            }
            let server = config.start(hierarchy.shutdown.clone(), metrics)?;
            root = root.refer(&tld, server.addr);
            hierarchy.tlds.push((tld, server.addr));
            hierarchy.running.push(server);
        }
        for (tld, addr) in referrals {
            root = root.refer(&tld, addr);
        }
        // A reloaded table keeps pointing at where the TLD servers started here are.
        let server = root
            .pin_table()
            .start(hierarchy.shutdown.clone(), metrics)?;
        hierarchy.root = server.addr;
        hierarchy.running.push(server);
        let server = local
            .with_root(hierarchy.root)
            .start(hierarchy.shutdown.clone(), metrics)?;
        hierarchy.local = server.addr;
        hierarchy.running.push(server);
        Ok(hierarchy)
    }
}

/// A running hierarchy; stopped when dropped.
pub struct Hierarchy {
    pub root: SocketAddr,
    pub local: SocketAddr,
    /// Each TLD and where its server listens, in the order they were added.
    pub tlds: Vec<(String, SocketAddr)>,
    /// Each zone below a TLD with a server of its own, and where it listens.
    pub zones: Vec<(String, SocketAddr)>,
    pub shutdown: Shutdown,
    running: Vec<Running>,
}

impl Hierarchy {
    /// Where the server for `tld` listens.
    pub fn tld(&self, tld: &str) -> Option<SocketAddr> {
        self.tlds.iter().find(|(t, _)| t == tld).map(|(_, a)| *a)
    }

    /// The local server's caches, to look at and flush (the web view).
    pub fn inspect(&self) -> Option<Arc<dyn Inspect>> {
        self.running.iter().find_map(|r| r.inspect.clone())
    }

    /// The reload of every server (SIGHUP): the TLD servers, the root, the local server.
    pub fn reloads(&self) -> Vec<Reload> {
        self.running.iter().map(|r| r.reload.clone()).collect()
    }

    /// Waits for every server to stop (after the shutdown was triggered elsewhere, by a
    /// signal say).
    pub fn join(mut self) {
        for r in self.running.drain(..) {
            r.join();
        }
    }

    /// Stops every server and waits for them.
    pub fn stop(self) {
        self.shutdown.trigger();
        self.join();
    }
}

impl Drop for Hierarchy {
    fn drop(&mut self) {
        if self.running.is_empty() {
            return;
        }
        self.shutdown.trigger();
        for r in self.running.drain(..) {
            r.join();
        }
    }
}

/// Where zone `stem` is: a file in the directory, or a built-in text.
enum Data {
    File(PathBuf),
    Builtin(&'static str, &'static str),
}

fn find(zones: Option<&Path>, stem: &str) -> Option<Data> {
    match zones {
        Some(dir) => ["toml", "dat"]
            .iter()
            .map(|ext| dir.join(format!("{stem}.{ext}")))
            .find(|p| p.is_file())
            .map(Data::File),
        None => BUILTIN_ZONES
            .iter()
            .find(|(file, _)| file.strip_suffix(".dat") == Some(stem))
            .map(|(file, text)| Data::Builtin(file, text)),
    }
}

impl Data {
    /// How a reload reads it again: a file is re-read; built-in text never changes.
    fn reloadable(&self) -> Option<Files<Zone>> {
        match self {
            Data::File(path) => Some(Files::zone_file(path.clone())),
            Data::Builtin(..) => None,
        }
    }
}

/// The master files of zones under the table's TLDs (`example.com.zone`): in `zones`,
/// or built in; each with the path a reload re-reads (none when built in).
fn second_level(
    zones: Option<&Path>,
    table: &RootTable,
) -> Result<Vec<(Option<PathBuf>, ZoneFile)>, FileError> {
    let mut found = Vec::new();
    match zones {
        Some(dir) => {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| master::is_master(p))
                        .collect()
                })
                .unwrap_or_default();
            paths.sort();
            for path in paths {
                let zone = master::load(&path, None)?;
                found.push((Some(path), zone));
            }
        }
        None => {
            for (file, text) in BUILTIN_MASTERS {
                let path = Path::new(&format!("(built-in) {file}")).to_owned();
                let zone = master::parse(&path, text, None).map_err(|mut e| e.swap_remove(0))?;
                found.push((None, zone));
            }
        }
    }
    Ok(found
        .into_iter()
        .filter(|(_, zone)| {
            let origin = zone.origin();
            origin.as_str().contains('.') && table.lookup(origin.tld()).is_some()
        })
        .map(|(path, zone)| (path, ZoneFile::Master(zone)))
        .collect())
}

fn load_zone(source: &Data) -> Result<Zone, FileError> {
    match source {
        Data::File(path) => Zone::load(path),
        Data::Builtin(file, text) => Zone::parse(
            Path::new(&format!("(built-in) {file}")),
            text,
            Format::Legacy,
        ),
    }
}
