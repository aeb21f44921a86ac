//! `dnsd up`: the whole hierarchy in one process — the root, one TLD server per entry of
//! the root table, and the local server seeded with the default cache.
//!
//! Zones come from a directory (`root`, one file per TLD and `default`, each as `.toml`
//! if present, else `.dat`) or, by default, from the sample zones built into the binary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::roles::local::{self, LocalConfig};
use crate::roles::root::{self, RootConfig};
use crate::roles::tld::TldConfig;
use crate::roles::Running;
use crate::server::{Limits, Shutdown};
use crate::zone::{FileError, Format, RootTable, Zone};

/// The sample zones built into the binary: (file name, text).
pub const BUILTIN_ZONES: &[(&str, &str)] = &[
    ("root.dat", include_str!("../zones/root.dat")),
    ("com.dat", include_str!("../zones/com.dat")),
    ("gov.dat", include_str!("../zones/gov.dat")),
    ("org.dat", include_str!("../zones/org.dat")),
    ("default.dat", include_str!("../zones/default.dat")),
];

/// `dnsd up`'s settings.
#[derive(Debug, Clone)]
pub struct UpConfig {
    /// Where the zones are; `None` for the built-in samples.
    pub zones: Option<PathBuf>,
    pub log_dir: PathBuf,
    /// Bind every server to a free port instead of the default ports; the root's table
    /// then points at wherever the TLD servers landed.
    pub any_port: bool,
    pub limits: Limits,
    pub upstream_timeout: Duration,
}

/// A running hierarchy.
pub struct Hierarchy {
    pub root: SocketAddr,
    pub local: SocketAddr,
    pub tlds: Vec<(String, SocketAddr)>,
    running: Vec<Running>,
}

impl Hierarchy {
    /// Waits for every server to stop (after the shutdown was triggered).
    pub fn join(self) {
        for r in self.running {
            r.join();
        }
    }
}

/// Where zone `stem` is: a file in the directory, or a built-in text.
enum Source {
    File(PathBuf),
    Builtin(&'static str, &'static str),
}

fn find(zones: Option<&Path>, stem: &str) -> Option<Source> {
    match zones {
        Some(dir) => ["toml", "dat"]
            .iter()
            .map(|ext| dir.join(format!("{stem}.{ext}")))
            .find(|p| p.is_file())
            .map(Source::File),
        None => BUILTIN_ZONES
            .iter()
            .find(|(file, _)| file.strip_suffix(".dat") == Some(stem))
            .map(|(file, text)| Source::Builtin(file, text)),
    }
}

fn load_zone(source: &Source) -> Result<Zone, FileError> {
    match source {
        Source::File(path) => Zone::load(path),
        Source::Builtin(file, text) => Zone::parse(
            Path::new(&format!("(built-in) {file}")),
            text,
            Format::Legacy,
        ),
    }
}

fn missing(zones: Option<&Path>, stem: &str, why: &str) -> Error {
    let dir = zones.map_or_else(|| "(built-in)".to_owned(), |d| d.display().to_string());
    Error::Usage(format!("{dir}: no {stem}.toml or {stem}.dat ({why})"))
}

/// Loads the zones and starts every server. If one cannot start, those already started
/// are stopped before the error is returned.
pub fn start(config: UpConfig, shutdown: Shutdown) -> Result<Hierarchy, Error> {
    let mut running = Vec::new();
    match start_all(config, shutdown.clone(), &mut running) {
        Ok((root, local, tlds)) => Ok(Hierarchy {
            root,
            local,
            tlds,
            running,
        }),
        Err(e) => {
            shutdown.trigger();
            for r in running {
                r.join();
            }
            Err(e)
        }
    }
}

type Addrs = (SocketAddr, SocketAddr, Vec<(String, SocketAddr)>);

fn start_all(
    config: UpConfig,
    shutdown: Shutdown,
    running: &mut Vec<Running>,
) -> Result<Addrs, Error> {
    let zones = config.zones.as_deref();
    let table = match find(zones, "root").ok_or_else(|| missing(zones, "root", "the root table"))? {
        Source::File(path) => RootTable::load(&path)?,
        Source::Builtin(file, text) => RootTable::parse(
            Path::new(&format!("(built-in) {file}")),
            text,
            Format::Legacy,
        )?,
    };
    let cache = match find(zones, "default") {
        Some(source) => load_zone(&source)?,
        None => Zone::default(),
    };
    let loopback = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut tlds = Vec::new();
    let mut served = RootTable::default();
    for (tld, addr) in table.iter() {
        let source =
            find(zones, tld).ok_or_else(|| missing(zones, tld, "listed in the root table"))?;
        let mut tld_config = TldConfig::new(tld, load_zone(&source)?);
        tld_config.bind = if config.any_port { loopback(0) } else { addr };
        tld_config.limits = config.limits;
        let server = tld_config.start(shutdown.clone())?;
        served.insert(tld, server.addr);
        tlds.push((tld.to_owned(), server.addr));
        running.push(server);
    }
    let mut root_config = RootConfig::new(served);
    root_config.bind = loopback(if config.any_port {
        0
    } else {
        root::DEFAULT_PORT
    });
    root_config.limits = config.limits;
    root_config.upstream_timeout = config.upstream_timeout;
    let root = root_config.start(shutdown.clone())?;
    let root_addr = root.addr;
    running.push(root);
    let mut local_config = LocalConfig::new(root_addr, cache, config.log_dir);
    local_config.bind = loopback(if config.any_port {
        0
    } else {
        local::DEFAULT_PORT
    });
    local_config.limits = config.limits;
    local_config.upstream_timeout = config.upstream_timeout;
    let local = local_config.start(shutdown)?;
    let local_addr = local.addr;
    running.push(local);
    Ok((root_addr, local_addr, tlds))
}
