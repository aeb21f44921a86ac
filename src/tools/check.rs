//! `dnsd check`: reads zone, cache and root-table files, in either format, without
//! starting a server (as `named-checkzone` or `unbound-checkconf` do), says what each
//! holds, and lists every problem in each as `FILE:LINE: what is wrong`.
//!
//! Whether a file is a root table or a zone (a cache file has the zone format) is
//! decided, in this order, by:
//!
//! 1. `--root FILE` or `--zone FILE`;
//! 2. the name: `root.*` is a root table, as `dnsd up --zones DIR` reads it;
//! 3. the content: a legacy file whose first data line has 3 fields (`TLD HOST PORT`),
//!    or a TOML file whose first table is `[tlds]`, is a root table; anything else
//!    (`NAME ADDR` lines, `[records]`) is a zone.
//!
//! The format follows the extension, as for the servers: `.toml` is TOML, `.zone` an
//! RFC 1035 master file (a zone whose origin is its SOA's owner: read as `dnsd tld` and
//! `dnsd auth` read it, with every problem at its line), anything else legacy.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::zone::{FileError, Format, RootTable, Zone};

/// What a data file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A TLD server's zone, or the local server's cache file (the same format).
    Zone,
    /// The root's table of TLD servers.
    Root,
    /// An RFC 1035 master file (`.zone`).
    Master,
}

/// Why a file was taken for what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `--root` or `--zone` said so.
    Told,
    /// It is named `root.*`.
    Named,
    /// A legacy file's first data line has this many fields.
    Fields(usize),
    /// A legacy file with no data line.
    NoLines,
    /// A TOML file's first table has this name.
    Table(String),
    /// A TOML file with no table.
    NoTable,
    /// The file could not be read.
    Unreadable,
    /// Its extension is `.zone`.
    Extension,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Told => f.write_str("as told"),
            Reason::Named => f.write_str("named root.*"),
            Reason::Fields(3) => f.write_str("its first line has 3 fields: TLD HOST PORT"),
            Reason::Fields(2) => f.write_str("its first line has 2 fields: NAME ADDR"),
            Reason::Fields(n) => write!(f, "its first line has {n} fields"),
            Reason::NoLines => f.write_str("no data lines"),
            Reason::Table(t) => write!(f, "its first table is [{t}]"),
            Reason::NoTable => f.write_str("no table"),
            Reason::Unreadable => f.write_str("not read"),
            Reason::Extension => f.write_str("named *.zone"),
        }
    }
}

/// One file to check, and what it is if the command line said so.
#[derive(Clone, Debug)]
pub struct CheckFile {
    pub path: PathBuf,
    pub kind: Option<Kind>,
}

/// What `dnsd check` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct CheckConfig {
    pub files: Vec<CheckFile>,
}

/// What one file turned out to be, and what is in it or wrong with it.
#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: Format,
    pub kind: Kind,
    pub reason: Reason,
    /// What the file holds, or every problem in it, in file order.
    pub result: Result<Summary, Vec<FileError>>,
}

/// What a good file holds.
#[derive(Debug)]
pub enum Summary {
    Zone(ZoneSummary),
    Root(RootSummary),
    Master(MasterSummary),
}

/// The figures of a master file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MasterSummary {
    /// The zone's origin, with its trailing dot.
    pub origin: String,
    pub serial: u32,
    pub records: usize,
    /// Names, empty non-terminals included.
    pub names: usize,
    /// How many records of each type, by type name, sorted.
    pub types: Vec<(String, usize)>,
    /// The zones it delegates, sorted.
    pub delegations: Vec<String>,
    /// Address records no client can reach (0.0.0.0, `::`, multicast, broadcast),
    /// sorted: warned about, not refused.
    pub unroutable: Vec<(String, IpAddr)>,
}

impl MasterSummary {
    pub fn of(zone: &crate::zone::ZoneData) -> MasterSummary {
        let mut types: BTreeMap<String, usize> = BTreeMap::new();
        let mut delegations = Vec::new();
        let mut unroutable = Vec::new();
        for (name, _, data) in zone.unordered() {
            if let Some(ip) = data.ip().filter(|ip| !routable(*ip)) {
                unroutable.push((format!("{name}."), ip));
            }
            let code = data.code();
            *types
                .entry(hickory_proto::rr::RecordType::from(code).to_string())
                .or_default() += 1;
            if code == 2 && name != zone.origin() {
                delegations.push(format!("{name}."));
            }
        }
        delegations.sort();
        delegations.dedup();
        unroutable.sort();
        MasterSummary {
            unroutable,
            origin: crate::zone::store::display(zone.origin()),
            serial: zone.serial(),
            records: zone.len(),
            names: zone.names(),
            types: types.into_iter().collect(),
            delegations,
        }
    }
}

impl fmt::Display for MasterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{INDENT}zone        {} (serial {})",
            self.origin, self.serial
        )?;
        let types: Vec<String> = self.types.iter().map(|(t, n)| format!("{n} {t}")).collect();
        writeln!(
            f,
            "{INDENT}records     {}: {}; {} names",
            self.records,
            types.join(", "),
            self.names
        )?;
        if self.delegations.is_empty() {
            writeln!(f, "{INDENT}delegates   nothing")?;
        } else {
            writeln!(f, "{INDENT}delegates   {}", self.delegations.join(", "))?;
        }
        for (name, ip) in &self.unroutable {
            writeln!(
                f,
                "{INDENT}warning     {name} {ip}: no client can reach this address"
            )?;
        }
        Ok(())
    }
}

/// The figures of a zone (or cache) file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ZoneSummary {
    pub names: usize,
    /// Address records (a name with two addresses has two).
    pub records: usize,
    pub ipv4: usize,
    pub ipv6: usize,
    /// Distinct addresses.
    pub addresses: usize,
    /// The lowest and highest record TTL, in seconds (`None` without records).
    pub ttl_range: Option<(u32, u32)>,
    /// The TTL of records that give none.
    pub zone_ttl: u32,
    /// How long a resolver may remember that a name does not exist.
    pub negative_ttl: u32,
    /// Names `x` present with `www.x` too: `x` answers for itself, so the `www.` rule
    /// (`x` finds `www.x`) never applies to it. Each as (`x`, its first address,
    /// `www.x`'s first address), sorted by name.
    pub shadowed: Vec<(String, IpAddr, IpAddr)>,
    /// Addresses under more than one name, with those names (sorted).
    pub shared: Vec<(IpAddr, Vec<String>)>,
}

/// The figures of a root table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RootSummary {
    /// Each TLD and its server, sorted by TLD.
    pub tlds: Vec<(String, SocketAddr)>,
    /// Server addresses given for more than one TLD, with those TLDs.
    pub shared: Vec<(SocketAddr, Vec<String>)>,
    /// TLDs whose server address no client can reach (0.0.0.0, `::`, a multicast or
    /// broadcast address): warned about, not refused.
    pub unroutable: Vec<(String, SocketAddr)>,
}

/// Whether a client can reach a server at `ip` (not 0.0.0.0 or `::`, multicast or
/// broadcast): the root gives it as glue.
fn routable(ip: IpAddr) -> bool {
    !(ip.is_unspecified() || ip.is_multicast() || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()))
}

impl ZoneSummary {
    pub fn of(zone: &Zone) -> ZoneSummary {
        let mut summary = ZoneSummary {
            names: zone.len(),
            zone_ttl: zone.ttl(),
            negative_ttl: zone.negative_ttl(),
            ..ZoneSummary::default()
        };
        let mut by_address: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
        for (name, first) in zone.sorted() {
            for addr in zone.addresses(name) {
                summary.records += 1;
                match addr.ip {
                    IpAddr::V4(_) => summary.ipv4 += 1,
                    IpAddr::V6(_) => summary.ipv6 += 1,
                }
                let (low, high) = summary.ttl_range.unwrap_or((addr.ttl, addr.ttl));
                summary.ttl_range = Some((low.min(addr.ttl), high.max(addr.ttl)));
                by_address.entry(addr.ip).or_default().push(name.to_owned());
            }
            if !name.starts_with("www.") {
                if let Some(www) = zone.get(&format!("www.{name}")) {
                    summary.shadowed.push((name.to_owned(), first, www));
                }
            }
        }
        summary.addresses = by_address.len();
        summary.shared = by_address
            .into_iter()
            .filter(|(_, names)| names.len() > 1)
            .collect();
        summary
    }
}

impl RootSummary {
    pub fn of(table: &RootTable) -> RootSummary {
        let tlds: Vec<(String, SocketAddr)> =
            table.iter().map(|(t, a)| (t.to_owned(), a)).collect();
        let mut by_address: BTreeMap<SocketAddr, Vec<String>> = BTreeMap::new();
        for (tld, addr) in &tlds {
            by_address.entry(*addr).or_default().push(tld.clone());
        }
        let shared = by_address
            .into_iter()
            .filter(|(_, tlds)| tlds.len() > 1)
            .collect();
        let unroutable = tlds
            .iter()
            .filter(|(_, addr)| !routable(addr.ip()))
            .cloned()
            .collect();
        RootSummary {
            tlds,
            shared,
            unroutable,
        }
    }
}

/// The indent of the figures under a file's line, and of the lines that go on from them.
const INDENT: &str = "  ";
const GO_ON: &str = "              ";

impl fmt::Display for ZoneSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(f, "{INDENT}names       {}", self.names)?;
        writeln!(
            f,
            "{INDENT}records     {}: {} IPv4 (A), {} IPv6 (AAAA); {}",
            self.records,
            self.ipv4,
            self.ipv6,
            plural(self.addresses, "distinct address", "distinct addresses"),
        )?;
        let range = match self.ttl_range {
            None => "no records".to_owned(),
            Some((low, high)) if low == high => format!("{low} s on every record"),
            Some((low, high)) => format!("{low} s to {high} s"),
        };
        writeln!(
            f,
            "{INDENT}TTLs        {range}; zone TTL {} s; negative TTL {} s",
            self.zone_ttl, self.negative_ttl
        )?;
        if self.shadowed.is_empty() {
            writeln!(f, "{INDENT}www. rule   no name is also present as www.NAME")?;
        } else {
            writeln!(
                f,
                "{INDENT}www. rule   {} also present as www.NAME: asked, NAME answers with",
                plural(self.shadowed.len(), "name is", "names are")
            )?;
            writeln!(
                f,
                "{GO_ON}its own address, so the rule (NAME finds www.NAME) never applies to it"
            )?;
            writeln!(f, "{GO_ON}and each name is reached only by itself:")?;
            for (name, own, www) in &self.shadowed {
                let note = if own == www {
                    " (the same address: no difference)"
                } else {
                    ""
                };
                writeln!(f, "{GO_ON}  {name} {own}, www.{name} {www}{note}")?;
            }
        }
        if self.shared.is_empty() {
            writeln!(f, "{INDENT}shared      no address is under two names")?;
        } else {
            writeln!(
                f,
                "{INDENT}shared      {} under several names:",
                plural(self.shared.len(), "address is", "addresses are")
            )?;
            for (ip, names) in &self.shared {
                writeln!(f, "{GO_ON}  {ip}: {}", names.join(", "))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for RootSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tlds: Vec<String> = self
            .tlds
            .iter()
            .map(|(tld, addr)| format!("{tld} {addr}"))
            .collect();
        writeln!(f, "{INDENT}TLDs        {}: {}", tlds.len(), tlds.join(", "))?;
        if self.shared.is_empty() {
            writeln!(f, "{INDENT}shared      no server is given for two TLDs")?;
        } else {
            writeln!(
                f,
                "{INDENT}shared      a TLD server answers for one TLD only; these are given for several:"
            )?;
            for (addr, tlds) in &self.shared {
                writeln!(f, "{GO_ON}  {addr}: {}", tlds.join(", "))?;
            }
        }
        for (tld, addr) in &self.unroutable {
            writeln!(
                f,
                "{INDENT}warning     {tld} {addr}: no client can reach {}; the root gives it \
                 as ns.{tld}'s address",
                addr.ip()
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Summary::Zone(z) => z.fmt(f),
            Summary::Root(r) => r.fmt(f),
            Summary::Master(m) => m.fmt(f),
        }
    }
}

/// Decides what a file is (see the [module docs](self)): `told` first, then the name,
/// then the content.
pub fn detect(path: &Path, text: &str, format: Format, told: Option<Kind>) -> (Kind, Reason) {
    if crate::zone::master::is_master(path) {
        return (Kind::Master, Reason::Extension);
    }
    if let Some(kind) = told {
        return (kind, Reason::Told);
    }
    let named_root = path
        .file_stem()
        .is_some_and(|stem| stem.eq_ignore_ascii_case("root"));
    if named_root {
        return (Kind::Root, Reason::Named);
    }
    let data_lines = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty());
    match format {
        Format::Legacy => match data_lines.map(|l| l.split_whitespace().count()).next() {
            Some(3) => (Kind::Root, Reason::Fields(3)),
            Some(n) => (Kind::Zone, Reason::Fields(n)),
            None => (Kind::Zone, Reason::NoLines),
        },
        Format::Toml => {
            let table = data_lines
                .filter_map(|l| l.strip_prefix('['))
                .map(|l| l.trim_end_matches(']').trim().trim_matches('"').to_owned())
                .next();
            match table {
                Some(t) if t == "tlds" => (Kind::Root, Reason::Table(t)),
                Some(t) => (Kind::Zone, Reason::Table(t)),
                None => (Kind::Zone, Reason::NoTable),
            }
        }
    }
}

/// Checks one file's text; `path` names it and decides the format.
pub fn check_text(path: &Path, text: &str, told: Option<Kind>) -> FileReport {
    let format = Format::of(path);
    let (kind, reason) = detect(path, text, format, told);
    let result = match kind {
        Kind::Zone => {
            Zone::parse_all(path, text, format).map(|z| Summary::Zone(ZoneSummary::of(&z)))
        }
        Kind::Root => {
            RootTable::parse_all(path, text, format).map(|t| Summary::Root(RootSummary::of(&t)))
        }
        Kind::Master => crate::zone::master::parse(path, text, None)
            .map(|z| Summary::Master(MasterSummary::of(&z))),
    };
    FileReport {
        path: path.to_owned(),
        format,
        kind,
        reason,
        result,
    }
}

/// Reads and checks one file.
pub fn check_file(file: &CheckFile) -> FileReport {
    match std::fs::read_to_string(&file.path) {
        Ok(text) => check_text(&file.path, &text, file.kind),
        Err(e) => FileReport {
            path: file.path.clone(),
            format: Format::of(&file.path),
            kind: file.kind.unwrap_or(Kind::Zone),
            reason: Reason::Unreadable,
            result: Err(vec![FileError {
                path: file.path.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            }]),
        },
    }
}

impl fmt::Display for FileReport {
    /// The file's heading line, then its figures or how many problems it has.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Zone => "zone (or cache) file",
            Kind::Root => "root table",
            Kind::Master => "zone",
        };
        let format = match (self.kind, self.format) {
            (Kind::Master, _) => "RFC 1035 master file",
            (_, Format::Legacy) => "legacy",
            (_, Format::Toml) => "TOML",
        };
        if self.reason == Reason::Unreadable {
            writeln!(f, "{}: not read", self.path.display())?;
        } else {
            writeln!(
                f,
                "{}: {kind}, {format} ({})",
                self.path.display(),
                self.reason
            )?;
        }
        match &self.result {
            Ok(summary) => summary.fmt(f),
            Err(problems) if problems.len() == 1 => writeln!(f, "{INDENT}1 problem"),
            Err(problems) => writeln!(f, "{INDENT}{} problems", problems.len()),
        }
    }
}

/// Checks every file: what each holds on `out`, every problem on `err` as `FILE:LINE:
/// what is wrong`. An error (exit 2) if any file has a problem.
pub fn run(config: &CheckConfig, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Error> {
    let io = |e| Error::io("cannot write the report", e);
    let mut problems = 0;
    let mut bad_files = 0;
    for file in &config.files {
        let report = check_file(file);
        write!(out, "{report}").map_err(io)?;
        if let Err(found) = &report.result {
            out.flush().map_err(io)?;
            for problem in found {
                // One line each: the TOML parser's messages may run over several.
                let line = problem.to_string().replace('\n', "; ");
                writeln!(err, "{line}").map_err(io)?;
            }
            problems += found.len();
            bad_files += 1;
        }
    }
    let files = config.files.len();
    if problems == 0 {
        let checked = if files == 1 {
            "1 file".to_owned()
        } else {
            format!("{files} files")
        };
        writeln!(out, "{checked} checked: no problems").map_err(io)?;
        return Ok(());
    }
    Err(Error::BadFiles {
        problems,
        bad_files,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone_summary(text: &str) -> ZoneSummary {
        match check_text(Path::new("z.dat"), text, None).result {
            Ok(Summary::Zone(z)) => z,
            other => panic!("not a good zone: {other:?}"),
        }
    }

    #[test]
    fn detects_root_tables_by_name_fields_or_table() {
        let kind = |path: &str, text: &str| {
            let path = Path::new(path);
            detect(path, text, Format::of(path), None)
        };
        assert_eq!(kind("zones/root.dat", "").0, Kind::Root);
        assert_eq!(kind("ROOT.toml", "[records]\n").0, Kind::Root);
        assert_eq!(
            kind("t.dat", "# c\n\ncom 127.0.0.1 5678\n"),
            (Kind::Root, Reason::Fields(3))
        );
        assert_eq!(
            kind("z.dat", "a.com 1.1.1.1\n"),
            (Kind::Zone, Reason::Fields(2))
        );
        assert_eq!(kind("z.dat", "# nothing\n"), (Kind::Zone, Reason::NoLines));
        assert_eq!(
            kind("t.toml", "# c\n[tlds] # x\n"),
            (Kind::Root, Reason::Table("tlds".into()))
        );
        assert_eq!(
            kind("z.toml", "ttl = 5\n[records]\n"),
            (Kind::Zone, Reason::Table("records".into()))
        );
        assert_eq!(kind("z.toml", "x = 1\n"), (Kind::Zone, Reason::NoTable));
        let told = detect(Path::new("root.dat"), "", Format::Legacy, Some(Kind::Zone));
        assert_eq!(told, (Kind::Zone, Reason::Told));
    }

    #[test]
    fn zone_figures() {
        let z = zone_summary(
            "x.com 1.1.1.1\nwww.x.com 2.2.2.2\ny.com 3.3.3.3\nwww.y.com 3.3.3.3\n\
             www.z.com ::1\nwww.z.com 1.1.1.1\n",
        );
        assert_eq!(
            (z.names, z.records, z.ipv4, z.ipv6, z.addresses),
            (5, 6, 5, 1, 4)
        );
        assert_eq!(z.ttl_range, Some((3600, 3600)));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            z.shadowed,
            [
                ("x.com".into(), ip("1.1.1.1"), ip("2.2.2.2")),
                ("y.com".into(), ip("3.3.3.3"), ip("3.3.3.3")),
            ]
        );
        assert_eq!(
            z.shared,
            [
                (ip("1.1.1.1"), vec!["www.z.com".into(), "x.com".into()]),
                (ip("3.3.3.3"), vec!["www.y.com".into(), "y.com".into()]),
            ]
        );
        let toml = check_text(
            Path::new("z.toml"),
            "ttl = 60\nnegative_ttl = 30\n[records]\n\"a.com\" = { address = \"1.1.1.1\", ttl = 5 }\n\
             \"b.com\" = \"2.2.2.2\"\n",
            None,
        );
        let Ok(Summary::Zone(z)) = toml.result else {
            panic!("{toml:?}")
        };
        assert_eq!(
            (z.ttl_range, z.zone_ttl, z.negative_ttl),
            (Some((5, 60)), 60, 30)
        );
    }

    #[test]
    fn root_figures() {
        let report = check_text(
            Path::new("t.dat"),
            "com 127.0.0.1 5678\nnet 127.0.0.1 5678\norg ::1 5679\n",
            None,
        );
        let Ok(Summary::Root(r)) = report.result else {
            panic!("{report:?}")
        };
        assert_eq!(r.tlds.len(), 3);
        assert_eq!(
            r.shared,
            [(
                "127.0.0.1:5678".parse().unwrap(),
                vec!["com".into(), "net".into()]
            )]
        );
    }
}
