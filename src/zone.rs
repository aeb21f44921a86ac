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

use crate::model::DEFAULT_TTL;
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

/// The lines of a legacy file that carry data: 1-based number and the fields (at most
/// four are kept: enough to tell a wrong count).
fn legacy_lines(text: &str) -> impl Iterator<Item = (usize, Fields<'_>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = Fields::default();
        for field in line.split_whitespace() {
            if fields.len < fields.items.len() {
                fields.items[fields.len] = field;
            }
            fields.len += 1;
        }
        (fields.len > 0).then_some((i + 1, fields))
    })
}

/// A legacy line's fields, without allocating.
#[derive(Default)]
struct Fields<'a> {
    items: [&'a str; 4],
    len: usize,
}

impl<'a> Fields<'a> {
    /// The fields if there are exactly `N`.
    fn exactly<const N: usize>(&self) -> Option<[&'a str; N]> {
        (self.len == N).then(|| std::array::from_fn(|i| self.items[i]))
    }
}

/// Where each line starts, to turn many byte offsets into line numbers cheaply.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0).chain(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex(starts.collect())
    }

    /// The 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

/// Reads the one-table TOML that dnsd documents (`[records]` or `[tlds]`, then
/// `KEY = "VALUE"` lines with plain strings) line by line, calling `add(line, key,
/// value)` for each entry; a million-name zone loads this way in about the time of the
/// legacy format, with no document tree in memory.
///
/// Returns `None` as soon as the file uses any other TOML syntax (escapes, dotted keys,
/// other tables, ...): the caller then starts over with the full TOML parser, which
/// gives the answer, or the error, for everything else. After an error from `add`, the
/// rest of the file is still read (without adding), so that a syntax error anywhere is
/// reported as the full parser would, before any bad record.
fn simple_toml(
    text: &str,
    table: &str,
    mut add: impl FnMut(usize, &str, &str) -> Result<(), FileError>,
) -> Option<Result<(), FileError>> {
    let mut in_table = false;
    let mut seen_table = false;
    let mut first_error = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return None;
        }
        let line = line.trim_matches([' ', '\t']);
        let line = strip_comment(line)?;
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if name != table || seen_table {
                return None;
            }
            in_table = true;
            seen_table = true;
            continue;
        }
        if !in_table {
            return None;
        }
        let (key, rest) = simple_key(line)?;
        let rest = rest.trim_start_matches([' ', '\t']).strip_prefix('=')?;
        let value = simple_string(rest.trim_matches([' ', '\t']))?;
        if first_error.is_none() {
            first_error = add(i + 1, key, value).err();
        }
    }
    Some(first_error.map_or(Ok(()), Err))
}

/// The line without a trailing `# comment`; `None` if a `#` may sit inside a string.
fn strip_comment(line: &str) -> Option<&str> {
    match line.find('#') {
        None => Some(line),
        Some(at) if !line[..at].contains(['"', '\'']) => {
            Some(line[..at].trim_end_matches([' ', '\t']))
        }
        Some(at) => {
            // A `#` after a closing quote: the value's string must end before it.
            let before = &line[..at];
            let quotes = before.matches('"').count() + before.matches('\'').count();
            (quotes.is_multiple_of(2) && quotes > 0).then(|| before.trim_end_matches([' ', '\t']))
        }
    }
}

/// A bare key (`com`) or a plain quoted key (`"www.google.com"`), and what follows it.
fn simple_key(line: &str) -> Option<(&str, &str)> {
    if let Some(rest) = line.strip_prefix('"') {
        let end = rest.find('"')?;
        let key = &rest[..end];
        if key.contains('\\') {
            return None;
        }
        return Some((key, &rest[end + 1..]));
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    (end > 0).then(|| (&line[..end], &line[end..]))
}

/// A whole plain string value: `"..."` without escapes, or `'...'`.
fn simple_string(value: &str) -> Option<&str> {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.contains(['"', '\\']))
        .or_else(|| {
            value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .filter(|v| !v.contains('\''))
        })?;
    Some(inner)
}

fn toml_error(path: &Path, text: &str, e: toml::de::Error) -> FileError {
    let line = e.span().map_or(0, |s| LineIndex::new(text).line(s.start));
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

/// One address of a name, with its TTL in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    pub ip: IpAddr,
    pub ttl: u32,
}

/// A name's addresses, in file order: one (nearly always) held inline, so that a
/// million-name zone costs no allocation per name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Addrs {
    One(Addr),
    Many(Box<[Addr]>),
}

impl Addrs {
    fn as_slice(&self) -> &[Addr] {
        match self {
            Addrs::One(a) => std::slice::from_ref(a),
            Addrs::Many(v) => v,
        }
    }

    fn push(&mut self, addr: Addr) {
        let mut all = self.as_slice().to_vec();
        all.push(addr);
        *self = Addrs::Many(all.into_boxed_slice());
    }
}

/// Names and their addresses: a TLD server's zone, or the local server's cache seed.
///
/// A name may have several addresses, IPv4 and IPv6, each with a TTL: a name repeated
/// in a legacy file adds an address (the line protocol answers the first, as the
/// original did), TOML gives a list. Legacy records take [`DEFAULT_TTL`]; a TOML zone
/// may set its own `ttl`, and each record its own.
#[derive(Debug, Clone)]
pub struct Zone {
    records: HashMap<Box<str>, Addrs>,
    /// The TTL of negative answers from this zone (the SOA's minimum, RFC 2308).
    negative_ttl: u32,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            records: HashMap::new(),
            negative_ttl: DEFAULT_NEGATIVE_TTL,
        }
    }
}

/// How long a resolver may remember that a name does not exist, unless a TOML zone
/// says otherwise (`negative_ttl`).
pub const DEFAULT_NEGATIVE_TTL: u32 = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneToml {
    /// The TTL of every record that does not give its own.
    ttl: Option<u32>,
    negative_ttl: Option<u32>,
    #[serde(default)]
    records: BTreeMap<String, toml::Spanned<RecordToml>>,
}

/// A record's value in TOML: `"ADDR"`, `["ADDR", ...]`, or a table with `address` or
/// `addresses` and an optional `ttl`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RecordToml {
    One(String),
    Many(Vec<String>),
    Full(FullRecordToml),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullRecordToml {
    address: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    ttl: Option<u32>,
}

impl Zone {
    /// Reads a zone or cache file; the format follows the extension.
    pub fn load(path: &Path) -> Result<Zone, FileError> {
        let text = read(path)?;
        Zone::parse(path, &text, Format::of(path))
    }

    /// Parses a zone's text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str, format: Format) -> Result<Zone, FileError> {
        // Sized up front: a million-name zone then never rehashes while loading.
        let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
        let mut zone = Zone {
            records: HashMap::with_capacity(lines),
            negative_ttl: DEFAULT_NEGATIVE_TTL,
        };
        match format {
            Format::Legacy => {
                for (line, fields) in legacy_lines(text) {
                    let Some([name, addr]) = fields.exactly() else {
                        return Err(file_error(
                            path,
                            line,
                            format!("expected `NAME ADDRESS`, found {} fields", fields.len),
                        ));
                    };
                    zone.add(path, line, name, addr, DEFAULT_TTL, true)?;
                }
            }
            Format::Toml => {
                let simple = simple_toml(text, "records", |line, name, addr| {
                    zone.add(path, line, name, addr, DEFAULT_TTL, false)
                });
                match simple {
                    Some(result) => result?,
                    None => {
                        zone.records.clear();
                        zone.add_full_toml(path, text)?;
                    }
                }
            }
        }
        zone.records.shrink_to_fit();
        Ok(zone)
    }

    /// Reads `[records]` with the full TOML parser: any TOML the line-by-line reader
    /// does not take (a zone `ttl`, lists of addresses, records with their own TTL).
    fn add_full_toml(&mut self, path: &Path, text: &str) -> Result<(), FileError> {
        let parsed: ZoneToml = toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
        let lines = LineIndex::new(text);
        let zone_ttl = parsed.ttl.unwrap_or(DEFAULT_TTL);
        if let Some(ttl) = parsed.negative_ttl {
            self.negative_ttl = ttl;
        }
        let mut records: Vec<_> = parsed.records.iter().collect();
        records.sort_by_key(|(_, value)| value.span().start);
        for (name, value) in records {
            let line = lines.line(value.span().start);
            let (addrs, ttl): (Vec<&str>, u32) = match value.get_ref() {
                RecordToml::One(a) => (vec![a.as_str()], zone_ttl),
                RecordToml::Many(v) => (v.iter().map(String::as_str).collect(), zone_ttl),
                RecordToml::Full(full) => (
                    full.address
                        .iter()
                        .chain(&full.addresses)
                        .map(String::as_str)
                        .collect(),
                    full.ttl.unwrap_or(zone_ttl),
                ),
            };
            if addrs.is_empty() {
                return Err(file_error(path, line, format!("{name:?} has no address")));
            }
            for (i, addr) in addrs.into_iter().enumerate() {
                self.add(path, line, name, addr, ttl, i > 0)?;
            }
        }
        Ok(())
    }

    /// Checks and adds one record read from line `line` of `path`. With `more`, a name
    /// already there gets one more address (a repeated legacy line, a TOML list);
    /// otherwise it is a duplicate name. The same address twice is always an error.
    fn add(
        &mut self,
        path: &Path,
        line: usize,
        name: &str,
        addr: &str,
        ttl: u32,
        more: bool,
    ) -> Result<(), FileError> {
        let name = Name::parse(name)
            .map_err(|e| file_error(path, line, format!("bad name {name:?}: {e}")))?;
        let ip: IpAddr = addr.parse().map_err(|_| {
            file_error(
                path,
                line,
                format!("bad address {addr:?}: not an IPv4 or IPv6 literal"),
            )
        })?;
        let addr = Addr { ip, ttl };
        match self.records.get_mut(name.as_str()) {
            None => {
                self.records.insert(name.as_str().into(), Addrs::One(addr));
            }
            Some(addrs) if more => {
                if addrs.as_slice().iter().any(|a| a.ip == ip) {
                    return Err(file_error(
                        path,
                        line,
                        format!("duplicate record {name} {ip}"),
                    ));
                }
                addrs.push(addr);
            }
            Some(_) => return Err(file_error(path, line, format!("duplicate name {name}"))),
        }
        Ok(())
    }

    /// Sets `name`'s one address (with the default TTL).
    pub fn insert(&mut self, name: &Name, ip: IpAddr) {
        self.records.insert(
            name.as_str().into(),
            Addrs::One(Addr {
                ip,
                ttl: DEFAULT_TTL,
            }),
        );
    }

    /// Adds every record of `other` (already checked when it was read); a name in both
    /// takes `other`'s addresses.
    pub fn extend(&mut self, other: Zone) {
        self.records.extend(other.records);
    }

    /// The name's own first address, or, as in the original, that of `www.` + name.
    pub fn lookup(&self, name: &Name) -> Option<IpAddr> {
        self.get(name.as_str())
            .or_else(|| name.www_alias().and_then(|alias| self.get(&alias)))
    }

    /// The first address of a normalised name.
    pub fn get(&self, name: &str) -> Option<IpAddr> {
        self.addresses(name).first().map(|a| a.ip)
    }

    /// Every address of a normalised name, in file order (empty if it has none).
    pub fn addresses(&self, name: &str) -> &[Addr] {
        self.records.get(name).map_or(&[], Addrs::as_slice)
    }

    /// The TTL of negative answers from this zone.
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// Every name that has records, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.records.keys().map(|k| &**k)
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The names and their first addresses, sorted by name.
    pub fn sorted(&self) -> Vec<(&str, IpAddr)> {
        let mut v: Vec<_> = self
            .records
            .iter()
            .map(|(k, v)| (&**k, v.as_slice()[0].ip))
            .collect();
        v.sort_unstable();
        v
    }
}

/// A zone in the legacy `NAME ADDR` format, from text given in code (tests, examples);
/// errors name the file `(text)`.
impl std::str::FromStr for Zone {
    type Err = FileError;
    fn from_str(text: &str) -> Result<Zone, FileError> {
        Zone::parse(Path::new("(text)"), text, Format::Legacy)
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
                    let Some([tld, host, port]) = fields.exactly() else {
                        return Err(file_error(
                            path,
                            line,
                            format!("expected `TLD HOST PORT`, found {} fields", fields.len),
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
                let lines = LineIndex::new(text);
                for (tld, addr) in in_file_order(&parsed.tlds) {
                    let line = lines.line(addr.span().start);
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
        let e = zone("a.com 1.1.1.1\nA.com 1.1.1.1\n", Format::Legacy).unwrap_err();
        assert_eq!(e.to_string(), "z:2: duplicate record a.com 1.1.1.1");
    }

    /// A repeated legacy name and a TOML list give a name several addresses, in file
    /// order; a TOML zone sets its TTLs.
    #[test]
    fn several_addresses_and_ttls() {
        let legacy = zone("a.com 1.1.1.1\nA.com. ::1\n", Format::Legacy).unwrap();
        let ips: Vec<_> = legacy
            .addresses("a.com")
            .iter()
            .map(|a| (a.ip.to_string(), a.ttl))
            .collect();
        assert_eq!(ips, [("1.1.1.1".into(), 3600), ("::1".to_string(), 3600)]);
        assert_eq!(legacy.get("a.com"), Some("1.1.1.1".parse().unwrap()));
        let toml = zone(
            "ttl = 60\nnegative_ttl = 30\n[records]\n\"a.com\" = [\"1.1.1.1\", \"::1\"]\n\
             \"b.com\" = { address = \"2.2.2.2\", ttl = 5 }\n\"c.com\" = \"3.3.3.3\"\n",
            Format::Toml,
        )
        .unwrap();
        assert_eq!(toml.addresses("a.com").len(), 2);
        assert_eq!(toml.addresses("a.com")[1].ttl, 60);
        assert_eq!(toml.addresses("b.com")[0].ttl, 5);
        assert_eq!(toml.addresses("c.com")[0].ttl, 60);
        assert_eq!(toml.negative_ttl(), 30);
        let e = zone("[records]\n\"a.com\" = []\n", Format::Toml).unwrap_err();
        assert_eq!(e.to_string(), "z:2: \"a.com\" has no address");
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

    /// The line-by-line reader and the full TOML parser agree, and anything beyond the
    /// simple subset still parses through the full parser.
    #[test]
    fn toml_fast_path_and_fallback_agree() {
        let simple =
            "# c\n[records]  # the table\n\"www.a.com\" = \"1.1.1.1\" # x\nb-c = '::1'\r\n";
        let full = "[records]\n\"www.a.com\" = \"1.1.1.1\"\n\"b-c\" = \"\\u003a:1\"\n";
        assert!(simple_toml(simple, "records", |_, _, _| Ok(())).is_some());
        assert!(simple_toml(full, "records", |_, _, _| Ok(())).is_none());
        let a = zone(simple, Format::Toml);
        let b = zone(full, Format::Toml);
        // b-c is a single label: both must reject it the same way, at line 4 and 3.
        assert!(a
            .unwrap_err()
            .to_string()
            .starts_with("z:4: bad name \"b-c\""));
        assert!(b
            .unwrap_err()
            .to_string()
            .starts_with("z:3: bad name \"b-c\""));
        let a = zone("[records]\n\"x.com\" = \"::1\"\n", Format::Toml).unwrap();
        let b = zone("[records]\n\"x.com\" = \"\\u003a:1\"\n", Format::Toml).unwrap();
        assert_eq!(a.sorted(), b.sorted());
        let e = zone(
            "[records]\n\"x.com\" = \"1.1.1.1\"\n[other]\n",
            Format::Toml,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("z:3: "), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The line-by-line TOML reader gives exactly what the full TOML parser gives,
        /// records or error line, for files in (and near) the form it takes.
        #[test]
        fn toml_fast_path_matches_the_full_parser(
            entries in proptest::collection::vec(
                ("[a-zA-Z0-9-]{1,8}(\\.[a-z0-9]{1,5}){0,2}", "[0-9.:a-f]{1,15}",
                 0usize..4, proptest::bool::ANY),
                0..12,
            ),
            header_comment in proptest::bool::ANY,
        ) {
            let mut text = String::from("# zone\n[records]");
            if header_comment {
                text.push_str("  # the table");
            }
            text.push('\n');
            for (name, addr, style, comment) in &entries {
                let line = match style {
                    0 => format!("\"{name}\" = \"{addr}\""),
                    1 => format!("  '{name}'='{addr}'"),
                    2 => format!("{name} = '{addr}'"),
                    _ => format!("\t\"{name}\"\t=\t\"{addr}\"\r"),
                };
                text.push_str(&line);
                if *comment {
                    text.push_str(" # note");
                }
                text.push('\n');
            }
            let fast = Zone::parse(Path::new("z"), &text, Format::Toml);
            let mut full = Zone::default();
            let full = full.add_full_toml(Path::new("z"), &text).map(|()| full);
            match (fast, full) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a.sorted(), b.sorted()),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a.line, b.line, "{} / {}", a, b),
                (a, b) => proptest::prop_assert!(false, "{:?} / {:?} for {:?}", a.map(|z| z.len()), b.map(|z| z.len()), text),
            }
        }
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
