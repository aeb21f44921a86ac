//! dnsd's own data files: address zones (and the local server's cache files) and the
//! root's TLD table, each in the legacy space-separated format or in TOML. Both are
//! mapped into the record store ([`super::build`]) before anything is served.
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

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::name::{parse_tld, Name};
use crate::model::DEFAULT_TTL;

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

/// Where a parse puts what is wrong with a file. The servers stop at the first problem
/// and report it; `dnsd check` reads on and reports every one ([`Zone::parse_all`],
/// [`RootTable::parse_all`]).
struct Problems {
    all: bool,
    found: Vec<FileError>,
}

impl Problems {
    /// Stop at the first problem.
    fn first() -> Problems {
        Problems {
            all: false,
            found: Vec::new(),
        }
    }

    /// Collect every problem.
    fn all() -> Problems {
        Problems {
            all: true,
            found: Vec::new(),
        }
    }

    /// Whether reading on is any use: collecting every problem, or none found yet.
    fn reading_on(&self) -> bool {
        self.all || self.found.is_empty()
    }

    fn push(&mut self, problem: FileError) {
        if self.reading_on() {
            self.found.push(problem);
        }
    }

    /// `value` if nothing was found, else every problem found, in file order.
    fn result<T>(self, value: T) -> Result<T, Vec<FileError>> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(self.found)
        }
    }
}

/// The first of the problems a [`Problems::first`] parse found (there is always one).
fn first_problem(mut found: Vec<FileError>) -> FileError {
    found.swap_remove(0)
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
/// Returns `false` as soon as the file uses any other TOML syntax (escapes, dotted
/// keys, other tables, ...): the caller then starts over with the full TOML parser,
/// which gives the answer, or the error, for everything else. `add` is called for every
/// entry up to there, whatever it made of the earlier ones (it records its problems and
/// decides itself whether to read on), so that a syntax error anywhere is reported as
/// the full parser would, before any bad record.
fn simple_toml(text: &str, table: &str, mut add: impl FnMut(usize, &str, &str)) -> bool {
    simple_toml_entries(text, table, &mut add).is_some()
}

fn simple_toml_entries(
    text: &str,
    table: &str,
    add: &mut impl FnMut(usize, &str, &str),
) -> Option<()> {
    let mut in_table = false;
    let mut seen_table = false;
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
        add(i + 1, key, value);
    }
    Some(())
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
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    records: HashMap<Box<str>, Addrs>,
    /// The TTL of records that give none of their own.
    ttl: u32,
    /// The TTL of negative answers from this zone (the SOA's minimum, RFC 2308).
    negative_ttl: u32,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            records: HashMap::new(),
            ttl: DEFAULT_TTL,
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

    /// Parses a zone's text; `path` is only used in error messages. Stops at the first
    /// problem, which is what the servers report.
    pub fn parse(path: &Path, text: &str, format: Format) -> Result<Zone, FileError> {
        Zone::parse_into(path, text, format, Problems::first()).map_err(first_problem)
    }

    /// Parses a zone's text like [`Zone::parse`], but reads on past a problem and returns
    /// every one, in file order (never an empty list): what `dnsd check` reports. A
    /// record with a problem is left out, so one bad line gives one problem. A TOML
    /// syntax error is one problem for the whole file (nothing after it can be trusted).
    pub fn parse_all(path: &Path, text: &str, format: Format) -> Result<Zone, Vec<FileError>> {
        Zone::parse_into(path, text, format, Problems::all())
    }

    fn parse_into(
        path: &Path,
        text: &str,
        format: Format,
        mut problems: Problems,
    ) -> Result<Zone, Vec<FileError>> {
        // Sized up front: a million-name zone then never rehashes while loading.
        let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
        let mut zone = Zone {
            records: HashMap::with_capacity(lines),
            ..Zone::default()
        };
        match format {
            Format::Legacy => {
                for (line, fields) in legacy_lines(text) {
                    if !problems.reading_on() {
                        break;
                    }
                    let Some([name, addr]) = fields.exactly() else {
                        problems.push(file_error(
                            path,
                            line,
                            format!(
                                "expected `NAME ADDRESS`, found {}",
                                fields_found(fields.len)
                            ),
                        ));
                        continue;
                    };
                    if let Err(e) = zone.add(path, line, name, addr, DEFAULT_TTL, true) {
                        problems.push(e);
                    }
                }
            }
            Format::Toml => {
                let simple = simple_toml(text, "records", |line, name, addr| {
                    if problems.reading_on() {
                        if let Err(e) = zone.add(path, line, name, addr, DEFAULT_TTL, false) {
                            problems.push(e);
                        }
                    }
                });
                // A repeated key is a TOML syntax error, which the full parser reports
                // before any bad record; the line-by-line reader sees a repeat only
                // among names it could add. So a file it found a problem in is read
                // again in full (a file without one costs nothing more).
                if !simple || !problems.found.is_empty() {
                    zone.records.clear();
                    problems.found.clear();
                    zone.add_full_toml(path, text, &mut problems);
                }
            }
        }
        zone.records.shrink_to_fit();
        problems.result(zone)
    }

    /// Reads `[records]` with the full TOML parser: any TOML the line-by-line reader
    /// does not take (a zone `ttl`, lists of addresses, records with their own TTL).
    fn add_full_toml(&mut self, path: &Path, text: &str, problems: &mut Problems) {
        let parsed: ZoneToml = match toml::from_str(text) {
            Ok(parsed) => parsed,
            Err(e) => return problems.push(toml_error(path, text, e)),
        };
        let lines = LineIndex::new(text);
        let zone_ttl = parsed.ttl.unwrap_or(DEFAULT_TTL);
        self.ttl = zone_ttl;
        if let Some(ttl) = parsed.negative_ttl {
            self.negative_ttl = ttl;
        }
        let mut records: Vec<_> = parsed.records.iter().collect();
        records.sort_by_key(|(_, value)| value.span().start);
        for (name, value) in records {
            if !problems.reading_on() {
                break;
            }
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
                problems.push(file_error(path, line, format!("{name:?} has no address")));
                continue;
            }
            // The first address must go in for the others to be "more" of the name; a
            // problem with the name itself is reported once, not once per address.
            let mut added = false;
            let mut last: Option<String> = None;
            for addr in addrs {
                match self.add(path, line, name, addr, ttl, added) {
                    Ok(()) => added = true,
                    Err(e) if last.as_ref() == Some(&e.message) => {}
                    Err(e) => {
                        last = Some(e.message.clone());
                        problems.push(e);
                    }
                }
            }
        }
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
        name.or_www(|name| self.get(name.as_str()))
    }

    /// The first address of a normalised name.
    pub fn get(&self, name: &str) -> Option<IpAddr> {
        self.addresses(name).first().map(|a| a.ip)
    }

    /// Every address of a normalised name, in file order (empty if it has none).
    pub fn addresses(&self, name: &str) -> &[Addr] {
        self.records.get(name).map_or(&[], Addrs::as_slice)
    }

    /// The TTL of records that give none of their own: the zone's `ttl` in TOML,
    /// [`DEFAULT_TTL`] otherwise.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The TTL of negative answers from this zone.
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// Hands each name and its addresses to `f`, consuming the zone: each name's text
    /// is freed once `f` has had it (a million-name zone mapped into records is not held
    /// twice over).
    pub fn drain(self, mut f: impl FnMut(&str, &[Addr])) {
        for (name, addrs) in self.records {
            f(&name, addrs.as_slice());
        }
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

/// The root's table: which server answers for each top-level domain; or, read from a
/// master file (`root.zone`), the root zone itself.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RootTable {
    tlds: BTreeMap<String, SocketAddr>,
    /// The root zone as a master file gives it (its delegations, glue and `ns.root`
    /// are the file's): served as it is, instead of a zone made from `tlds`.
    master: Option<Box<super::store::ZoneData>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RootToml {
    #[serde(default)]
    tlds: BTreeMap<String, toml::Spanned<String>>,
}

impl RootTable {
    /// Reads a root table, or (named `*.zone`) a master file of the root zone.
    pub fn load(path: &Path) -> Result<RootTable, FileError> {
        if super::master::is_master(path) {
            let zone = super::master::load(path, Some(&Name::from_wire("")))?;
            return Ok(RootTable {
                tlds: BTreeMap::new(),
                master: Some(Box::new(zone)),
            });
        }
        let text = read(path)?;
        RootTable::parse(path, &text, Format::of(path))
    }

    /// The root zone read from a master file, if that is what this is.
    pub fn master(&self) -> Option<&super::store::ZoneData> {
        self.master.as_deref()
    }

    /// Parses a root table's text; `path` is only used in error messages. Stops at the
    /// first problem, which is what the root server reports.
    pub fn parse(path: &Path, text: &str, format: Format) -> Result<RootTable, FileError> {
        RootTable::parse_into(path, text, format, Problems::first()).map_err(first_problem)
    }

    /// Parses a root table like [`RootTable::parse`], but reads on past a problem and
    /// returns every one, in file order (never an empty list): what `dnsd check`
    /// reports. A TOML syntax error is one problem for the whole file.
    pub fn parse_all(path: &Path, text: &str, format: Format) -> Result<RootTable, Vec<FileError>> {
        RootTable::parse_into(path, text, format, Problems::all())
    }

    fn parse_into(
        path: &Path,
        text: &str,
        format: Format,
        mut problems: Problems,
    ) -> Result<RootTable, Vec<FileError>> {
        let mut table = RootTable::default();
        // A duplicate keeps the first entry.
        let mut add = |line: usize, tld: &str, addr: SocketAddr| -> Result<(), FileError> {
            let tld = parse_tld(tld)
                .map_err(|e| file_error(path, line, format!("bad TLD {tld:?}: {e}")))?;
            match table.tlds.entry(tld) {
                Entry::Occupied(e) => {
                    Err(file_error(path, line, format!("duplicate TLD {}", e.key())))
                }
                Entry::Vacant(e) => {
                    e.insert(addr);
                    Ok(())
                }
            }
        };
        match format {
            Format::Legacy => {
                for (line, fields) in legacy_lines(text) {
                    if !problems.reading_on() {
                        break;
                    }
                    let entry = fields
                        .exactly()
                        .ok_or_else(|| {
                            file_error(
                                path,
                                line,
                                format!(
                                    "expected `TLD HOST PORT`, found {}",
                                    fields_found(fields.len)
                                ),
                            )
                        })
                        .and_then(|[tld, host, port]| {
                            let ip: IpAddr = host.parse().map_err(|_| {
                                file_error(
                                    path,
                                    line,
                                    format!("bad host {host:?}: not an IP address"),
                                )
                            })?;
                            let port: u16 = port.parse().map_err(|_| {
                                file_error(path, line, format!("bad port {port:?}"))
                            })?;
                            add(line, tld, SocketAddr::new(ip, port))
                        });
                    if let Err(e) = entry {
                        problems.push(e);
                    }
                }
            }
            Format::Toml => match toml::from_str::<RootToml>(text) {
                Err(e) => problems.push(toml_error(path, text, e)),
                Ok(parsed) => {
                    let lines = LineIndex::new(text);
                    for (tld, addr) in in_file_order(&parsed.tlds) {
                        if !problems.reading_on() {
                            break;
                        }
                        let line = lines.line(addr.span().start);
                        let entry = addr
                            .get_ref()
                            .parse()
                            .map_err(|_| {
                                file_error(
                                    path,
                                    line,
                                    format!("bad address {:?}: expected IP:PORT", addr.get_ref()),
                                )
                            })
                            .and_then(|sock| add(line, tld, sock));
                        if let Err(e) = entry {
                            problems.push(e);
                        }
                    }
                }
            },
        }
        problems.result(table)
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

    /// How many TLDs: in the table, or delegated by the root zone's master file.
    pub fn len(&self) -> usize {
        match &self.master {
            Some(zone) => zone
                .unordered()
                .filter(|(name, _, data)| {
                    !name.is_root() && matches!(data, crate::model::RData::Ns(_))
                })
                .map(|(name, _, _)| name)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            None => self.tlds.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `1 field`, `3 fields`: how many fields a bad line has.
fn fields_found(n: usize) -> String {
    format!("{n} field{}", if n == 1 { "" } else { "s" })
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

    /// Regression (found by the proptest below): a key written twice, once bare and
    /// once quoted, after a bad name is TOML's duplicate key at the second line, as
    /// the full parser says, not the bad name at the first.
    #[test]
    fn a_repeated_bad_key_is_the_full_parsers_duplicate() {
        let text = "# zone\n[records]\n\"-\" = \"a\"\n- = '.'\n";
        let e = Zone::parse(Path::new("z"), text, Format::Toml).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let all = Zone::parse_all(Path::new("z"), text, Format::Toml).unwrap_err();
        assert_eq!(all[0].to_string(), e.to_string());
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
        assert!(simple_toml(simple, "records", |_, _, _| ()));
        assert!(!simple_toml(full, "records", |_, _, _| ()));
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
            let mut problems = Problems::first();
            full.add_full_toml(Path::new("z"), &text, &mut problems);
            let full = problems.result(full).map_err(first_problem);
            // Reading on past a problem finds the same first one.
            let all = Zone::parse_all(Path::new("z"), &text, Format::Toml);
            match (&fast, &all) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a.sorted(), b.sorted()),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b[0].to_string()),
                _ => proptest::prop_assert!(false, "parse and parse_all disagree on {:?}", text),
            }
            match (fast, full) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a.sorted(), b.sorted()),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a.line, b.line, "{} / {}", a, b),
                (a, b) => proptest::prop_assert!(false, "{:?} / {:?} for {:?}", a.map(|z| z.len()), b.map(|z| z.len()), text),
            }
        }
    }

    fn all_errors(result: Result<impl fmt::Debug, Vec<FileError>>) -> Vec<String> {
        result.unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    /// `parse_all` reads on past each problem and lists every one, in file order, while
    /// `parse` (what the servers use) still stops at the first with the same message.
    #[test]
    fn parse_all_lists_every_problem_of_a_legacy_zone() {
        let text = "a.com 1.1.1.1
b.com
c.com 1.2.3
d..com 4.4.4.4
                    A.com 1.1.1.1
e.com 5.5.5.5 x # three
f.com ::1
";
        let all = all_errors(Zone::parse_all(Path::new("z"), text, Format::Legacy));
        assert_eq!(
            all,
            [
                "z:2: expected `NAME ADDRESS`, found 1 field",
                "z:3: bad address \"1.2.3\": not an IPv4 or IPv6 literal",
                "z:4: bad name \"d..com\": empty label",
                "z:5: duplicate record a.com 1.1.1.1",
                "z:6: expected `NAME ADDRESS`, found 3 fields",
            ]
        );
        let first = zone(text, Format::Legacy).unwrap_err();
        assert_eq!(first.to_string(), all[0]);
        let good = Zone::parse_all(
            Path::new("z"),
            "a.com 1.1.1.1
",
            Format::Legacy,
        )
        .unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!((good.ttl(), good.negative_ttl()), (DEFAULT_TTL, 300));
    }

    /// Both TOML readers collect every problem: the line-by-line one and the full parser
    /// (here because of the zone `ttl`), each with its own line numbers.
    #[test]
    fn parse_all_lists_every_problem_of_a_toml_zone() {
        let simple = "[records]\n\"a.com\" = \"1.1.1.1\"\n\"b.com\" = \"1.2.3\"\n\
                      \"c\" = \"3.3.3.3\"\n\"A.com\" = \"2.2.2.2\"\n";
        assert!(simple_toml(simple, "records", |_, _, _| ()));
        assert_eq!(
            all_errors(Zone::parse_all(Path::new("z"), simple, Format::Toml)),
            [
                "z:3: bad address \"1.2.3\": not an IPv4 or IPv6 literal",
                "z:4: bad name \"c\": a single label is a TLD, not a host name under one",
                "z:5: duplicate name a.com",
            ]
        );
        let full = "ttl = 60\n[records]\n\"a.com\" = [\"1.1.1.1\", \"x\", \"1.1.1.1\"]\n\
                    \"b.com\" = []\n\"c..com\" = [\"3.3.3.3\", \"4.4.4.4\"]\n\
                    \"d.com\" = { address = \"5.5.5.5\", ttl = 5 }\n";
        assert_eq!(
            all_errors(Zone::parse_all(Path::new("z"), full, Format::Toml)),
            [
                "z:3: bad address \"x\": not an IPv4 or IPv6 literal",
                "z:3: duplicate record a.com 1.1.1.1",
                "z:4: \"b.com\" has no address",
                "z:5: bad name \"c..com\": empty label",
            ]
        );
        assert_eq!(
            zone(full, Format::Toml).unwrap_err().to_string(),
            "z:3: bad address \"x\": not an IPv4 or IPv6 literal"
        );
        let good = Zone::parse_all(
            Path::new("z"),
            "ttl = 60\n[records]\n\"a.com\" = \"::1\"\n",
            Format::Toml,
        )
        .unwrap();
        assert_eq!(good.ttl(), 60);
    }

    /// A TOML syntax error is one problem for the file, even after bad records: nothing
    /// read before it can be trusted.
    #[test]
    fn a_toml_syntax_error_is_one_problem() {
        let text = "[records]\n\"a.com\" = \"1.2.3\"\n\"b.com\" = \n\"c\" = \"1.1.1.1\"\n";
        let all = all_errors(Zone::parse_all(Path::new("z"), text, Format::Toml));
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all[0].starts_with("z:3: "), "{all:?}");
        let all = all_errors(RootTable::parse_all(
            Path::new("r"),
            "[tlds]\ncom = \"x\"\n[tlds]\n",
            Format::Toml,
        ));
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all[0].starts_with("r:3: "), "{all:?}");
    }

    #[test]
    fn parse_all_lists_every_problem_of_a_root_table() {
        let text = "com 127.0.0.1 5678\norg 127.0.0.1\nnet localhost 1\nedu 127.0.0.1 99999\n\
                    COM 127.0.0.1 1\n1 127.0.0.1 2\ngov ::1 5680\n";
        assert_eq!(
            all_errors(RootTable::parse_all(Path::new("r"), text, Format::Legacy)),
            [
                "r:2: expected `TLD HOST PORT`, found 2 fields",
                "r:3: bad host \"localhost\": not an IP address",
                "r:4: bad port \"99999\"",
                "r:5: duplicate TLD com",
                "r:6: bad TLD \"1\": all-numeric top-level domain (an IP address is not a name)",
            ]
        );
        let text = "[tlds]\ncom = \"127.0.0.1:1\"\nnet = \"127.0.0.1\"\nCOM = \"127.0.0.1:2\"\n";
        assert_eq!(
            all_errors(RootTable::parse_all(Path::new("r"), text, Format::Toml)),
            [
                "r:3: bad address \"127.0.0.1\": expected IP:PORT",
                "r:4: duplicate TLD com",
            ]
        );
        let ok = RootTable::parse_all(Path::new("r"), "com 127.0.0.1 1\n", Format::Legacy).unwrap();
        assert_eq!(ok.lookup("com"), Some("127.0.0.1:1".parse().unwrap()));
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
