//! A lab in one file: `dnsd up --config lab.toml` — which TLDs, their zones (inline or
//! by path), ports, bind addresses, the local server's cache and the limits, so that a
//! course hands out its whole layout as one file. See `examples/lab.toml`.
//!
//! ```toml
//! log_dir = "logs"              # relative paths are relative to the lab file
//! [limits]
//! max_connections = 256
//! max_connections_per_ip = 32
//! [root]
//! port = 5353
//! allow_transfer = ["127.0.0.0/8"]   # who may AXFR/IXFR the root zone (default: no one)
//! [local]
//! port = 5352
//! allow = ["10.0.0.0/24", "127.0.0.0/8"]   # who may ask (default: loopback and the
//!                                          # networks the local server is bound on)
//! cache = ["default.dat"]       # cache files, and/or inline records:
//! [local.records]
//! "www.example.com" = "93.184.216.34"
//! [tld.com]
//! port = 5678
//! zone = "com.dat"              # a zone file, or inline records:
//! allow_transfer = ["127.0.0.0/8"]   # who may AXFR/IXFR it (default: no one)
//! notify = ["127.0.0.1:5300"]   # secondaries told when SIGHUP changes it
//! [tld.edu.records]
//! "www.mit.edu" = ["18.9.22.69", "2001:db8::1"]
//! [zone."example.com"]        # a zone below a TLD, on a server of its own, which the
//! file = "example.com.zone"     # TLD's server delegates to: an RFC 1035 master file
//! port = 5681
//! ```
//!
//! Every table denies unknown keys; every error is `FILE:LINE: what is wrong`. The lab
//! becomes a [`HierarchyBuilder`], so it starts exactly as `dnsd up` does. On SIGHUP
//! each TLD server and the local server re-read their zone (a zone file, or the lab
//! file for inline records); TLDs, ports and limits take a restart.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::dns::xfr::TransferSettings;
use crate::error::Error;
use crate::line::message::{Mode, ServerName};
use crate::model::name::parse_tld;
use crate::model::name::Name;
use crate::ops::reload::Source;
use crate::roles::tld::{self, TldConfig};
use crate::roles::RoleConfig;
use crate::runtime::hierarchy::HierarchyBuilder;
use crate::server::access::{Access, Allow, Net};
use crate::server::{Limits, DEFAULT_BIND};
use crate::zone::{master, FileError, Format, Zone, ZoneFile, ZoneSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabToml {
    /// Where the local server writes `clients/ID.log` and `mapping.log`.
    log_dir: Option<String>,
    /// The address every server binds unless its own table says otherwise.
    bind: Option<Spanned<String>>,
    /// Seconds the root and the local server wait for an upstream.
    upstream_timeout: Option<Spanned<f64>>,
    #[serde(default)]
    limits: LimitsToml,
    #[serde(default)]
    root: ServerToml,
    #[serde(default)]
    local: LocalToml,
    #[serde(default)]
    tld: BTreeMap<String, TldToml>,
    /// Zones below the TLDs, each on a server of its own.
    #[serde(default)]
    zone: BTreeMap<String, ZoneToml>,
}

/// A second-level zone's server: its master file, where it listens.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneToml {
    file: String,
    bind: Option<Spanned<String>>,
    port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsToml {
    max_connections: Option<usize>,
    max_connections_per_ip: Option<Spanned<usize>>,
    idle_timeout: Option<Spanned<f64>>,
    max_line: Option<usize>,
    edns_payload: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerToml {
    bind: Option<Spanned<String>>,
    port: Option<u16>,
    /// `--allow-transfer`: who may transfer the root zone.
    #[serde(default)]
    allow_transfer: Vec<Spanned<String>>,
    /// `--notify`: the secondaries told of its changes.
    #[serde(default)]
    notify: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LocalToml {
    bind: Option<Spanned<String>>,
    port: Option<u16>,
    name: Option<Spanned<String>>,
    /// `--max-ttl`; `ttl`, as it was called before, still reads.
    #[serde(alias = "ttl")]
    max_ttl: Option<Spanned<f64>>,
    cache_size: Option<usize>,
    cache_bytes: Option<usize>,
    dns_mode: Option<Spanned<String>>,
    allow: Option<Vec<Spanned<String>>>,
    delegation_cache: Option<bool>,
    /// `--max-client-logs`.
    max_client_logs: Option<usize>,
    #[serde(default)]
    cache: Vec<String>,
    #[serde(default)]
    records: BTreeMap<String, Spanned<RecordToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TldToml {
    bind: Option<Spanned<String>>,
    port: Option<u16>,
    zone: Option<String>,
    /// `--allow-transfer`: who may transfer the zone.
    #[serde(default)]
    allow_transfer: Vec<Spanned<String>>,
    /// `--notify`: the secondaries told of its changes.
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    #[serde(default)]
    records: BTreeMap<String, Spanned<RecordToml>>,
}

/// An inline record: `"ADDR"` or `["ADDR", ...]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RecordToml {
    One(String),
    Many(Vec<String>),
}

/// A lab file, read and checked: the hierarchy it describes.
#[derive(Debug)]
pub struct Lab {
    builder: HierarchyBuilder,
}

impl Lab {
    /// Reads and checks a lab file.
    pub fn load(path: &Path) -> Result<Lab, Error> {
        let text = read(path)?;
        Ok(Lab::parse(path, &text)?)
    }

    /// Checks a lab's text; `path` names it in errors and anchors its relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Lab, FileError> {
        let at = At { path, text };
        let lab: LabToml = toml::from_str(text).map_err(|e| at.toml(e))?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        let rel = |p: &str| dir.join(p);
        let default_bind = match &lab.bind {
            Some(b) => at.ip(b)?,
            None => DEFAULT_BIND,
        };
        let bind = |b: &Option<Spanned<String>>| match b {
            Some(b) => at.ip(b),
            None => Ok(default_bind),
        };

        let mut builder = HierarchyBuilder::new();
        let mut limits = Limits::default();
        if let Some(n) = lab.limits.max_connections {
            limits.max_connections = n;
        }
        if let Some(n) = &lab.limits.max_connections_per_ip {
            if *n.get_ref() == 0 {
                return Err(at.error(n.span().start, "max_connections_per_ip: must be at least 1"));
            }
            limits.max_connections_per_ip = Some(*n.get_ref());
        }
        if let Some(secs) = &lab.limits.idle_timeout {
            limits.frame.idle_timeout = at.secs(secs)?;
        }
        if let Some(n) = lab.limits.max_line {
            limits.frame.max_line = n;
        }
        if let Some(n) = lab.limits.edns_payload {
            limits.dns.edns_payload = n;
        }
        builder = builder.limits(limits);
        if let Some(secs) = &lab.upstream_timeout {
            builder = builder.upstream_timeout(at.secs(secs)?);
        }
        // Without `log_dir`, the logs go where `dnsd up` is run, as without `--config`
        // (not beside a lab file that may sit in a course's read-only folder).
        if let Some(dir) = &lab.log_dir {
            builder = builder.log_dir(rel(dir));
        }

        let root_bind = SocketAddr::new(
            bind(&lab.root.bind)?,
            lab.root.port.unwrap_or(crate::roles::root::DEFAULT_PORT),
        );
        let root_transfers = at.transfers(&lab.root.allow_transfer, &lab.root.notify)?;
        builder = builder.root(|c| c.with_bind(root_bind).with_transfers(root_transfers));

        let local = &lab.local;
        let local_bind = SocketAddr::new(
            bind(&local.bind)?,
            local.port.unwrap_or(crate::roles::local::DEFAULT_PORT),
        );
        let name = match &local.name {
            Some(n) => Some(
                ServerName::new(n.get_ref())
                    .map_err(|e| at.error(n.span().start, format!("name: {e}")))?,
            ),
            None => None,
        };
        let max_ttl = local.max_ttl.as_ref().map(|t| at.secs(t)).transpose()?;
        let dns_mode = match &local.dns_mode {
            Some(m) => Some(
                m.get_ref()
                    .parse::<Mode>()
                    .map_err(|_| at.error(m.span().start, "dns_mode: R or I"))?,
            ),
            None => None,
        };
        let (cache_size, cache_bytes) = (local.cache_size, local.cache_bytes);
        let allow = match &local.allow {
            Some(nets) => Allow::Only(
                nets.iter()
                    .map(|n| {
                        n.get_ref()
                            .parse::<Net>()
                            .map_err(|e| at.error(n.span().start, format!("allow: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            None => Allow::BoundNetworks,
        };
        let delegation_cache = local.delegation_cache;
        let max_client_logs = local.max_client_logs;
        builder = builder.cache(local_zone(&at, local)?).local(|mut c| {
            c = c.with_bind(local_bind).with_allow(allow);
            if let Some(name) = name {
                c = c.with_name(name);
            }
            if let Some(max_ttl) = max_ttl {
                c = c.with_max_ttl(max_ttl);
            }
            if let Some(mode) = dns_mode {
                c = c.with_dns_mode(mode);
            }
            if let Some(n) = cache_size {
                c = c.with_cache_size(n);
            }
            if let Some(n) = cache_bytes {
                c = c.with_cache_bytes(n);
            }
            if let Some(cached) = delegation_cache {
                c = c.with_delegation_cache(cached);
            }
            if let Some(n) = max_client_logs {
                c = c.with_max_client_logs(n);
            }
            c.with_source(Some(relab(path, |at, lab| local_zone(at, &lab.local))))
        });

        for (tld, t) in &lab.tld {
            // Where its table starts (toml cannot give the span of an implicit table).
            let start = text.find(&format!("[tld.{tld}")).unwrap_or(0);
            let tld =
                parse_tld(tld).map_err(|e| at.error(start, format!("bad TLD {tld:?}: {e}")))?;
            let port = t.port.or_else(|| tld::default_port(&tld)).ok_or_else(|| {
                at.error(
                    start,
                    format!("tld.{tld}: no default port: give `port` (0: any free port)"),
                )
            })?;
            let source = match (&t.zone, t.records.is_empty()) {
                (Some(file), true) => Source::tld_file(rel(file), Name::from_wire(&tld)),
                _ => {
                    let tld = tld.clone();
                    relab(path, move |at, lab| match lab.tld.get(&tld) {
                        Some(t) => tld_zone(at, &tld, t).map(ZoneSet::from),
                        None => Err(at.error(
                            0,
                            format!("tld.{tld} is gone: adding or removing a TLD takes a restart"),
                        )),
                    })
                }
            };
            let config = TldConfig::with_zone(&tld, tld_zone(&at, &tld, t)?)
                .with_bind(SocketAddr::new(bind(&t.bind)?, port))
                .with_source(Some(source))
                .with_transfers(at.transfers(&t.allow_transfer, &t.notify)?)
                .with_limits(limits);
            builder = builder.tld_with(config);
        }
        for (name, z) in &lab.zone {
            let start = text.find(&format!("[zone.\"{name}\"")).unwrap_or(0);
            let origin = Name::from_wire(name);
            if !lab.tld.contains_key(origin.tld()) || !name.contains('.') {
                return Err(at.error(
                    start,
                    format!("zone.{name}: not under a TLD of the lab ([tld.NAME])"),
                ));
            }
            let file = rel(&z.file);
            let zone = master::load(&file, Some(&origin))?;
            let config = TldConfig::with_zone(name, ZoneFile::Master(zone))
                .with_bind(SocketAddr::new(bind(&z.bind)?, z.port.unwrap_or(0)))
                .with_source(Some(Source::master_files(vec![file])));
            builder = builder.zone_with(config);
        }
        if lab.tld.is_empty() {
            return Err(at.error(0, "no [tld.NAME] table: a lab needs at least one TLD"));
        }
        Ok(Lab { builder })
    }

    /// The hierarchy to start.
    pub fn builder(self) -> HierarchyBuilder {
        self.builder
    }
}

/// A source that re-reads the lab file and takes what `pick` finds in it.
fn relab<T: 'static>(
    path: &Path,
    pick: impl Fn(&At, &LabToml) -> Result<T, FileError> + Send + Sync + 'static,
) -> Source<T> {
    let path = path.to_owned();
    Source::new(path.display().to_string(), move || {
        let text = read(&path)?;
        let at = At {
            path: &path,
            text: &text,
        };
        let lab: LabToml = toml::from_str(&text).map_err(|e| at.toml(e))?;
        pick(&at, &lab)
    })
}

/// A TLD's zone: its file (a master file if it ends in `.zone`), or its inline records
/// (not both).
fn tld_zone(at: &At, tld: &str, t: &TldToml) -> Result<ZoneFile, FileError> {
    match (&t.zone, t.records.is_empty()) {
        (Some(_), false) => Err(at.error(
            first_record(&t.records),
            format!("tld.{tld}: give `zone` or `records`, not both"),
        )),
        (Some(file), true) => ZoneFile::load(&at.rel(file), &Name::from_wire(tld)),
        (None, _) => at.records(&t.records).map(ZoneFile::from),
    }
}

/// The local server's fixed entries: its cache files, then its inline records.
fn local_zone(at: &At, local: &LocalToml) -> Result<Zone, FileError> {
    let mut zone = Zone::default();
    for file in &local.cache {
        zone.extend(Zone::load(&at.rel(file))?);
    }
    zone.extend(at.records(&local.records)?);
    Ok(zone)
}

fn first_record(records: &BTreeMap<String, Spanned<RecordToml>>) -> usize {
    records.values().map(|r| r.span().start).min().unwrap_or(0)
}

fn read(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|e| FileError {
        path: path.to_owned(),
        line: 0,
        message: format!("cannot read: {e}"),
    })
}

/// The lab file being read: turns byte offsets into `FILE:LINE` errors.
struct At<'a> {
    path: &'a Path,
    text: &'a str,
}

impl At<'_> {
    /// An error at byte `offset` (0 and an empty file: the file as a whole).
    fn error(&self, offset: usize, message: impl Into<String>) -> FileError {
        let line = if offset == 0 && self.text.is_empty() {
            0
        } else {
            self.line(offset)
        };
        FileError {
            path: self.path.to_owned(),
            line,
            message: message.into(),
        }
    }

    fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text[..offset].bytes().filter(|&b| b == b'\n').count() + 1
    }

    fn toml(&self, e: toml::de::Error) -> FileError {
        let mut err = self.error(0, e.message().trim());
        err.line = e.span().map_or(0, |s| self.line(s.start));
        err
    }

    fn rel(&self, file: &str) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(file)
    }

    fn ip(&self, s: &Spanned<String>) -> Result<IpAddr, FileError> {
        s.get_ref().parse().map_err(|_| {
            self.error(
                s.span().start,
                format!("bad address {:?}: expected an IP address", s.get_ref()),
            )
        })
    }

    fn secs(&self, s: &Spanned<f64>) -> Result<Duration, FileError> {
        let v = *s.get_ref();
        if !(v > 0.0 && v < 1e9) {
            return Err(self.error(s.span().start, format!("{v}: seconds must be above zero")));
        }
        Ok(Duration::from_secs_f64(v))
    }

    /// A server's zone transfer settings: `allow_transfer` networks, `notify` addresses.
    fn transfers(
        &self,
        allow_transfer: &[Spanned<String>],
        notify: &[Spanned<String>],
    ) -> Result<TransferSettings, FileError> {
        let allow = allow_transfer
            .iter()
            .map(|n| {
                n.get_ref()
                    .parse::<Net>()
                    .map_err(|e| self.error(n.span().start, format!("allow_transfer: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let notify = notify
            .iter()
            .map(|a| {
                a.get_ref().parse::<SocketAddr>().map_err(|_| {
                    self.error(
                        a.span().start,
                        format!("notify: {:?} is not an ADDR:PORT", a.get_ref()),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TransferSettings {
            allow: Access::only(allow),
            notify,
        })
    }

    /// Inline records, checked as a zone file's are: each `NAME ADDR` pair goes through
    /// the zone parser, and its errors are moved to the record's line in the lab file.
    fn records(&self, records: &BTreeMap<String, Spanned<RecordToml>>) -> Result<Zone, FileError> {
        let mut entries: Vec<_> = records.iter().collect();
        entries.sort_by_key(|(_, r)| r.span().start);
        let mut text = String::new();
        let mut lines = Vec::new();
        for (name, record) in entries {
            let line = self.line(record.span().start);
            let addrs: Vec<&str> = match record.get_ref() {
                RecordToml::One(a) => vec![a],
                RecordToml::Many(v) => v.iter().map(String::as_str).collect(),
            };
            if addrs.is_empty() {
                return Err(self.error(record.span().start, format!("{name:?} has no address")));
            }
            for addr in addrs {
                if name.contains(char::is_whitespace)
                    || addr.contains(char::is_whitespace)
                    || name.contains('#')
                    || addr.contains('#')
                {
                    return Err(self.error(
                        record.span().start,
                        format!("bad record {name:?} = {addr:?}"),
                    ));
                }
                text.push_str(&format!("{name} {addr}\n"));
                lines.push(line);
            }
        }
        Zone::parse(self.path, &text, Format::Legacy).map_err(|mut e| {
            e.line = lines.get(e.line.wrapping_sub(1)).copied().unwrap_or(0);
            e.path = self.path.to_owned();
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::RoleConfig;

    fn err(text: &str) -> String {
        Lab::parse(Path::new("lab.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_limits_apply_to_the_tld_servers_too() {
        let lab = Lab::parse(
            Path::new("lab.toml"),
            "[limits]\nmax_connections = 7\n[tld.com]\n[tld.org]\n",
        )
        .unwrap();
        let builder = lab.builder();
        let tlds = builder.tld_configs();
        assert_eq!(tlds.len(), 2);
        for tld in tlds {
            assert_eq!(tld.serving().limits().max_connections, 7);
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            err("[tld.com]\nport = 1\n[tld.com.records]\n\"www.a.com\" = \"1.2.3\"\n"),
            "lab.toml:4: bad address \"1.2.3\": not an IPv4 or IPv6 literal"
        );
        assert!(
            err("[tld.com]\nprot = 1\n").starts_with("lab.toml:2: unknown field `prot`"),
            "{}",
            err("[tld.com]\nprot = 1\n")
        );
        assert!(
            err("[tld.edu.records]\n\"a.edu\" = \"1.1.1.1\"\n")
                .starts_with("lab.toml:1: tld.edu: no default port"),
            "{}",
            err("[tld.edu.records]\n\"a.edu\" = \"1.1.1.1\"\n")
        );
        assert_eq!(
            err("[local]\ndns_mode = \"X\"\n[tld.com]\n"),
            "lab.toml:2: dns_mode: R or I"
        );
        assert!(
            err("[local]\ndelegation_cache = \"no\"\n[tld.com]\n").starts_with("lab.toml:2:"),
            "{}",
            err("[local]\ndelegation_cache = \"no\"\n[tld.com]\n")
        );
        assert_eq!(
            err("[local]\nname = \"a,b\"\n[tld.com]\n"),
            "lab.toml:2: name: must be non-empty, without commas or spaces"
        );
        assert_eq!(
            err("[local]\nallow = [\"127.0.0.0/8\",\n  \"10.0.0.0/40\"]\n[tld.com]\n"),
            "lab.toml:3: allow: prefix length \"40\" of \"10.0.0.0/40\" is not a number \
             from 0 to 32"
        );
        assert_eq!(
            err("[limits]\nmax_connections_per_ip = 0\n[tld.com]\n"),
            "lab.toml:2: max_connections_per_ip: must be at least 1"
        );
        assert_eq!(
            err("[tld.com]\nallow_transfer = [\"10.0.0.0/33\"]\n"),
            "lab.toml:2: allow_transfer: prefix length \"33\" of \"10.0.0.0/33\" is not a \
             number from 0 to 32"
        );
        assert_eq!(
            err("[tld.com]\nnotify = [\"127.0.0.1\"]\n"),
            "lab.toml:2: notify: \"127.0.0.1\" is not an ADDR:PORT"
        );
        assert!(
            err("").starts_with("lab.toml: no [tld.NAME]"),
            "{}",
            err("")
        );
    }

    #[test]
    fn the_example_lab_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab.toml");
        let lab = Lab::load(&path).unwrap();
        assert_eq!(lab.builder.fd_needs().len(), 7);
    }
}
