//! The data files: zones (and the local server's cache files) and the root's TLD table,
//! each in the legacy space-separated format or in TOML.
//!
//! Both are "who answers for this name", held in a `HashMap` and looked up in constant
//! time, however large the file: the original re-read the whole file on every query.
//!
//! Legacy zone / cache file: `NAME ADDR` per line. Legacy root table: `TLD HOST PORT`
//! per line. Blank lines and `#` comments are allowed. A `.toml` extension selects TOML:
//!
//! ```toml
//! [records]            # zone or cache file
//! "www.google.com" = "142.250.72.4"
//!
//! [tlds]               # root table
//! com = "127.0.0.1:5678"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::name::{parse_tld, Name};

/// A problem with a data file, reported as `FILE:LINE: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub struct FileError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem is with the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

fn file_error(path: &Path, line: usize, message: impl Into<String>) -> FileError {
    FileError {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

/// Which syntax a file is in: chosen by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Legacy,
    Toml,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Legacy,
        }
    }
}

fn read(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|e| file_error(path, 0, format!("cannot read: {e}")))
}

/// The lines of a legacy file that carry data: 1-based number and the fields.
fn legacy_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.split('#').next().unwrap_or("");
        let fields: Vec<&str> = line.split_whitespace().collect();
        (!fields.is_empty()).then_some((i + 1, fields))
    })
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn toml_error(path: &Path, text: &str, e: toml::de::Error) -> FileError {
    let line = e.span().map_or(0, |s| line_of(text, s.start));
    let message = e.message().trim().to_owned();
    file_error(path, line, message)
}

/// A TOML table's entries in the order they appear in the file, so that a duplicate
/// (`"A.com"` after `"a.com"`) is reported at its second occurrence.
fn in_file_order(
    table: &BTreeMap<String, toml::Spanned<String>>,
) -> Vec<(&String, &toml::Spanned<String>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(_, value)| value.span().start);
    entries
}

/// Names and their addresses: a TLD server's zone, or the local server's cache seed.
#[derive(Debug, Default, Clone)]
pub struct Zone {
    records: HashMap<Box<str>, IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneToml {
    #[serde(default)]
    records: BTreeMap<String, toml::Spanned<String>>,
}

impl Zone {
    /// Reads a zone or cache file; the format follows the extension.
    pub fn load(path: &Path) -> Result<Zone, FileError> {
        let text = read(path)?;
        Zone::parse(path, &text, Format::of(path))
    }

    /// Parses a zone's text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str, format: Format) -> Result<Zone, FileError> {
        let mut zone = Zone::default();
        let mut add = |line: usize, name: &str, addr: &str| -> Result<(), FileError> {
            let name = Name::parse(name)
                .map_err(|e| file_error(path, line, format!("bad name {name:?}: {e}")))?;
            let addr: IpAddr = addr.parse().map_err(|_| {
                file_error(
                    path,
                    line,
                    format!("bad address {addr:?}: not an IPv4 or IPv6 literal"),
                )
            })?;
            if zone.records.insert(name.as_str().into(), addr).is_some() {
                return Err(file_error(path, line, format!("duplicate name {name}")));
            }
            Ok(())
        };
        match format {
            Format::Legacy => {
                for (line, fields) in legacy_lines(text) {
                    let [name, addr] = fields[..] else {
                        return Err(file_error(
                            path,
                            line,
                            format!("expected `NAME ADDRESS`, found {} fields", fields.len()),
                        ));
                    };
                    add(line, name, addr)?;
                }
            }
            Format::Toml => {
                let parsed: ZoneToml =
                    toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
                for (name, addr) in in_file_order(&parsed.records) {
                    add(line_of(text, addr.span().start), name, addr.get_ref())?;
                }
            }
        }
        zone.records.shrink_to_fit();
        Ok(zone)
    }

    pub fn insert(&mut self, name: &Name, addr: IpAddr) {
        self.records.insert(name.as_str().into(), addr);
    }

    /// The name's own record, or, as in the original, that of `www.` + name.
    pub fn lookup(&self, name: &Name) -> Option<IpAddr> {
        self.get(name.as_str())
            .or_else(|| name.www_alias().and_then(|alias| self.get(&alias)))
    }

    /// The exact record for a normalised name.
    pub fn get(&self, name: &str) -> Option<IpAddr> {
        self.records.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, sorted by name.
    pub fn sorted(&self) -> Vec<(&str, IpAddr)> {
        let mut v: Vec<_> = self.records.iter().map(|(k, v)| (&**k, *v)).collect();
        v.sort_unstable();
        v
    }
}

/// The root's table: which server answers for each top-level domain.
#[derive(Debug, Default, Clone)]
pub struct RootTable {
    tlds: BTreeMap<String, SocketAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RootToml {
    #[serde(default)]
    tlds: BTreeMap<String, toml::Spanned<String>>,
}

impl RootTable {
    pub fn load(path: &Path) -> Result<RootTable, FileError> {
        let text = read(path)?;
        RootTable::parse(path, &text, Format::of(path))
    }

    pub fn parse(path: &Path, text: &str, format: Format) -> Result<RootTable, FileError> {
        let mut table = RootTable::default();
        let mut add = |line: usize, tld: &str, addr: SocketAddr| -> Result<(), FileError> {
            let tld = parse_tld(tld)
                .map_err(|e| file_error(path, line, format!("bad TLD {tld:?}: {e}")))?;
            if table.tlds.insert(tld.clone(), addr).is_some() {
                return Err(file_error(path, line, format!("duplicate TLD {tld}")));
            }
            Ok(())
        };
        match format {
            Format::Legacy => {
                for (line, fields) in legacy_lines(text) {
                    let [tld, host, port] = fields[..] else {
                        return Err(file_error(
                            path,
                            line,
                            format!("expected `TLD HOST PORT`, found {} fields", fields.len()),
                        ));
                    };
                    let ip: IpAddr = host.parse().map_err(|_| {
                        file_error(path, line, format!("bad host {host:?}: not an IP address"))
                    })?;
                    let port: u16 = port
                        .parse()
                        .map_err(|_| file_error(path, line, format!("bad port {port:?}")))?;
                    add(line, tld, SocketAddr::new(ip, port))?;
                }
            }
            Format::Toml => {
                let parsed: RootToml =
                    toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
                for (tld, addr) in in_file_order(&parsed.tlds) {
                    let line = line_of(text, addr.span().start);
                    let sock: SocketAddr = addr.get_ref().parse().map_err(|_| {
                        file_error(
                            path,
                            line,
                            format!("bad address {:?}: expected IP:PORT", addr.get_ref()),
                        )
                    })?;
                    add(line, tld, sock)?;
                }
            }
        }
        Ok(table)
    }

    pub fn insert(&mut self, tld: &str, addr: SocketAddr) {
        self.tlds.insert(tld.to_ascii_lowercase(), addr);
    }

    /// The server that answers for `tld`.
    pub fn lookup(&self, tld: &str) -> Option<SocketAddr> {
        self.tlds.get(tld).copied()
    }

    /// Every entry, sorted by TLD.
    pub fn iter(&self) -> impl Iterator<Item = (&str, SocketAddr)> {
        self.tlds.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn len(&self) -> usize {
        self.tlds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tlds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(text: &str, format: Format) -> Result<Zone, FileError> {
        Zone::parse(Path::new("z"), text, format)
    }

    #[test]
    fn legacy_and_toml_agree() {
        let a = zone(
            "# c\nwww.google.com 142.250.72.4\n\nWWW.x.com ::1 # v6\n",
            Format::Legacy,
        )
        .unwrap();
        let b = zone(
            "[records]\n\"www.google.com\" = \"142.250.72.4\"\n\"www.x.com\" = \"::1\"\n",
            Format::Toml,
        )
        .unwrap();
        assert_eq!(a.sorted(), b.sorted());
        let google = Name::parse("google.com").unwrap();
        assert_eq!(a.lookup(&google), Some("142.250.72.4".parse().unwrap()));
    }

    #[test]
    fn errors_name_the_line() {
        let e = zone("www.a.com 1.2.3.4\nwww.b.com 1.2.3\n", Format::Legacy).unwrap_err();
        assert_eq!(
            e.to_string(),
            "z:2: bad address \"1.2.3\": not an IPv4 or IPv6 literal"
        );
        let e = zone(
            "[records]\n\"a.com\" = \"1.1.1.1\"\n\"b..com\" = \"1.1.1.1\"\n",
            Format::Toml,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("z:3: bad name"), "{e}");
        let e = zone("[records]\nx = \n", Format::Toml).unwrap_err();
        assert!(e.to_string().starts_with("z:2: "), "{e}");
        let e = zone("a.com 1.1.1.1\nA.com 1.1.1.2\n", Format::Legacy).unwrap_err();
        assert_eq!(e.to_string(), "z:2: duplicate name a.com");
    }

    /// TOML keys differing only in case are duplicates, reported at the later line.
    #[test]
    fn toml_duplicates_name_the_second_line() {
        let e = zone(
            "[records]\n\"b.com\" = \"1.1.1.1\"\n\"B.com\" = \"1.1.1.2\"\n",
            Format::Toml,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "z:3: duplicate name b.com");
        let e = RootTable::parse(
            Path::new("r"),
            "[tlds]\ncom = \"127.0.0.1:1\"\nCOM = \"127.0.0.1:2\"\n",
            Format::Toml,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "r:3: duplicate TLD com");
    }

    #[test]
    fn root_table_both_formats() {
        let a = RootTable::parse(Path::new("r"), "com 127.0.0.1 5678\n", Format::Legacy).unwrap();
        let b = RootTable::parse(
            Path::new("r"),
            "[tlds]\ncom = \"127.0.0.1:5678\"\n",
            Format::Toml,
        )
        .unwrap();
        assert_eq!(a.lookup("com"), b.lookup("com"));
        let e = RootTable::parse(Path::new("r"), "com 127.0.0.1\n", Format::Legacy).unwrap_err();
        assert_eq!(
            e.to_string(),
            "r:1: expected `TLD HOST PORT`, found 2 fields"
        );
    }
}
