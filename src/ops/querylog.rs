//! The local server's record of what it answered, in `--log-dir`:
//!
//! - `clients/ID.log` per client id: each request line as received (control characters
//!   and invalid UTF-8 escaped as `\xNN`, so a peer can never start a line of its own),
//!   the reply line, then a blank line. Client logs live in a folder of their own, so no
//!   id (`mapping`, say) can name a file the server owns.
//! - `queries.log`: the records of the clients past `--max-client-logs` (every client's
//!   with `--max-client-logs 0`), one line each, the id as the first field:
//!   `ID<TAB>REQUEST<TAB>REPLY`. So the number of files is bounded whatever ids peers
//!   make up.
//! - `mapping.log`: a line for each mapping learned from the hierarchy: `NAME ADDR`,
//!   then when it was learned (UTC) and for how long it may be kept, in seconds:
//!   `www.google.com 142.250.72.4 learned=2026-11-25T22:40:00Z ttl=3600`. Whatever
//!   reads `NAME ADDR` reads the first two fields; `dnsd local --warm` reads them all
//!   ([`Mapping`]). It is compacted as it grows ([`MappingLog`]): it holds the live
//!   mappings and a bounded journal of the latest, never the whole history.
//!
//! Every record is handed to the OS whole, or cut back ([`Appender`]), before the reply
//! it records is sent: concurrent writers never interleave inside a line, a killed
//! process loses nothing that was answered, and a full disk leaves no torn line. A
//! failed record is counted (`dnsd_log_write_failures_total`) and logged once per
//! episode, not once per query.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::line::message::Reply;
use crate::model::name::Name;
use crate::ops::appender::{open_append, write_whole, Appender};
use crate::ops::metrics::ServerMetrics;
use crate::sync::lock;
use crate::zone::FileError;

/// The folder of `--log-dir` that holds the client logs.
pub const CLIENTS_DIR: &str = "clients";
/// The learned mappings, in `--log-dir`.
pub const MAPPING_LOG: &str = "mapping.log";
/// The records of clients without a file of their own, in `--log-dir`.
pub const QUERIES_LOG: &str = "queries.log";
/// How many client ids get a file of their own unless `--max-client-logs` says
/// otherwise.
pub const DEFAULT_MAX_CLIENT_LOGS: usize = 1000;
/// The fewest journal lines `mapping.log` collects before it is compacted.
pub const MIN_MAPPING_JOURNAL: usize = 10_000;

/// How big the log directory may grow: the bounds [`LogDir`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    /// Client ids with a file of their own in `clients/`; the others share
    /// `queries.log` (`--max-client-logs`).
    pub max_client_logs: usize,
    /// The most mappings a compaction keeps (the cache's `--cache-size`: no more can be
    /// live in the cache).
    pub max_mappings: usize,
}

impl Default for LogLimits {
    fn default() -> LogLimits {
        LogLimits {
            max_client_logs: DEFAULT_MAX_CLIENT_LOGS,
            max_mappings: crate::roles::local::DEFAULT_CACHE_SIZE,
        }
    }
}

/// The log directory: `mapping.log`, the client logs and `queries.log`.
#[derive(Debug)]
pub struct LogDir {
    dir: PathBuf,
    limits: LogLimits,
    mapping: Mutex<MappingLog>,
    clients: Mutex<Clients>,
    /// Whether the last record failed: an episode of failures is logged once.
    failing: AtomicBool,
    metrics: ServerMetrics,
}

/// Which client ids have a file of their own.
#[derive(Debug, Default)]
struct Clients {
    /// The ids given a file in `clients/` (by this run, or found there at start): at
    /// most `max_client_logs`.
    with_files: HashSet<String>,
}

fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
}

impl LogDir {
    /// Opens (creating if needed) `dir`, `dir/clients` and `mapping.log`.
    pub fn open(dir: &Path, limits: LogLimits) -> io::Result<LogDir> {
        create_dir(&dir.join(CLIENTS_DIR))?;
        let mapping = MappingLog::open(&dir.join(MAPPING_LOG), limits.max_mappings)?;
        // Ids that already have a file keep it (up to the cap).
        let mut with_files = HashSet::new();
        for entry in std::fs::read_dir(dir.join(CLIENTS_DIR))?.flatten() {
            if with_files.len() >= limits.max_client_logs {
                break;
            }
            let name = entry.file_name();
            let id = name.to_str().and_then(|n| n.strip_suffix(".log"));
            if let Some(id) = id.filter(|id| valid_id(id)) {
                with_files.insert(id.to_owned());
            }
        }
        Ok(LogDir {
            dir: dir.to_owned(),
            limits,
            mapping: Mutex::new(mapping),
            clients: Mutex::new(Clients { with_files }),
            failing: AtomicBool::new(false),
            metrics: ServerMetrics::DISABLED,
        })
    }

    /// Counts failed records in `metrics` (`dnsd_log_write_failures_total`).
    pub fn with_metrics(mut self, metrics: ServerMetrics) -> LogDir {
        self.metrics = metrics;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client's log, for its session. `id` must already be a valid client id (see
    /// [`crate::line::message::valid_client_id`]). Nothing is opened or created until
    /// the first record.
    pub fn client_log(&self, id: &str) -> ClientLog {
        debug_assert!(valid_id(id));
        ClientLog {
            id: id.to_owned(),
            sink: None,
            buf: Vec::with_capacity(256),
        }
    }

    /// Where `id`'s records go: its own file while fewer than `max_client_logs` ids have
    /// one (or it has one already), else `queries.log`. Each session writes through a
    /// descriptor of its own, as the records of one id may come from several sessions
    /// at once: each record is one `write` on a file opened for appending, so they
    /// never interleave, and no lock is shared between sessions.
    fn sink_for(&self, id: &str) -> Sink {
        let mut clients = lock(&self.clients);
        let own = clients.with_files.contains(id)
            || clients.with_files.len() < self.limits.max_client_logs;
        if !own {
            return Sink::Shared(Appender::new(self.dir.join(QUERIES_LOG)));
        }
        clients.with_files.insert(id.to_owned());
        let path = self.dir.join(CLIENTS_DIR).join(format!("{id}.log"));
        Sink::Own(Appender::new(path))
    }

    /// Appends the request as received and its reply to the client's log, whole.
    pub fn record(&self, log: &mut ClientLog, request: &[u8], reply: &Reply) -> io::Result<()> {
        let ClientLog { id, sink, buf } = log;
        let sink = match sink {
            Some(sink) => sink,
            None => sink.insert(self.sink_for(id)),
        };
        buf.clear();
        let result = match sink {
            Sink::Own(file) => {
                escape_into(buf, request);
                buf.push(b'\n');
                reply.write_line(buf);
                buf.push(b'\n');
                file.append(buf)
            }
            Sink::Shared(file) => {
                buf.extend_from_slice(id.as_bytes());
                buf.push(b'\t');
                escape_into(buf, request);
                buf.push(b'\t');
                reply.write_line(buf);
                file.append(buf)
            }
        };
        self.note(result, "a client log")
    }

    /// Appends the mapping's line to `mapping.log`, whole; compacts the file when its
    /// journal has grown to its bound.
    pub fn record_mapping(&self, mapping: &Mapping) -> io::Result<()> {
        let result = lock(&self.mapping).record(mapping);
        self.note(result, MAPPING_LOG)
    }

    /// Counts a failed record, and logs the first of an episode and its end.
    fn note(&self, result: io::Result<()>, what: &str) -> io::Result<()> {
        match &result {
            // A load first: every record passes here, and a write to the flag would
            // bounce its cache line between the cores on every query.
            Ok(()) => {
                if self.failing.load(Ordering::Relaxed)
                    && self.failing.swap(false, Ordering::Relaxed)
                {
                    log::warn!("{}: log records are written again", self.dir.display());
                }
            }
            Err(e) => {
                self.metrics.log_write_failure();
                if !self.failing.swap(true, Ordering::Relaxed) {
                    log::error!(
                        "{}: cannot write {what}: {e}; the queries it would record are answered \
                         0XFE/SERVFAIL until records can be written again (logged once)",
                        self.dir.display()
                    );
                }
            }
        }
        result
    }
}

/// The files and folders dnsd makes in the log directory `dir` that exist now:
/// `clients/` and the client logs in it, `mapping.log`, `queries.log` (what `--user` is
/// given before root is dropped).
pub fn own_files(dir: &Path) -> Vec<PathBuf> {
    let clients = dir.join(CLIENTS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&clients)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.extend([clients, dir.join(MAPPING_LOG), dir.join(QUERIES_LOG)]);
    files.retain(|p| p.exists());
    files
}

/// Whether `id` may name a client log: what [`crate::line::message::valid_client_id`]
/// lets through.
fn valid_id(id: &str) -> bool {
    crate::line::message::valid_client_id(id.as_bytes()).is_some()
}

/// Where one client's records go, through the session's own descriptor.
#[derive(Debug)]
enum Sink {
    /// `clients/ID.log`.
    Own(Appender),
    /// `queries.log`, the id as a field.
    Shared(Appender),
}

/// One client's log, for the length of a session: its own `clients/ID.log`, or its lines
/// in `queries.log`.
#[derive(Debug)]
pub struct ClientLog {
    id: String,
    /// Chosen at the first record.
    sink: Option<Sink>,
    buf: Vec<u8>,
}

/// `mapping.log`, kept bounded: it holds the mappings kept at its last compaction (at
/// most `max_mappings`, the latest of each name still within its TTL) and a journal of
/// those learned since; when the journal is as long as what was kept (and at least
/// [`MIN_MAPPING_JOURNAL`]), the file is compacted again. So it never holds more than
/// `2 x max(max_mappings, MIN_MAPPING_JOURNAL)` lines. A compaction writes the new file
/// beside the old one and renames it over, so a crash leaves one or the other, whole.
#[derive(Debug)]
pub struct MappingLog {
    file: Appender,
    /// Whether it is a regular file (only one is compacted).
    regular: bool,
    max_mappings: usize,
    /// Lines kept at the last compaction.
    kept: usize,
    /// Lines appended since.
    journal: usize,
}

impl MappingLog {
    /// Opens `path` (creating it), counting the lines it holds.
    pub fn open(path: &Path, max_mappings: usize) -> io::Result<MappingLog> {
        let file = open_append(path)?;
        // Only a regular file is read back and compacted (not /dev/null, say).
        let regular = file.metadata()?.is_file();
        let lines = if regular {
            let mut lines = 0;
            let mut reader = io::BufReader::new(std::fs::File::open(path)?);
            loop {
                let buf = io::BufRead::fill_buf(&mut reader)?;
                if buf.is_empty() {
                    break;
                }
                lines += buf.iter().filter(|&&b| b == b'\n').count();
                let n = buf.len();
                io::BufRead::consume(&mut reader, n);
            }
            lines
        } else {
            0
        };
        Ok(MappingLog {
            file: Appender::new(path),
            regular,
            max_mappings,
            kept: 0,
            journal: lines,
        })
    }

    fn record(&mut self, mapping: &Mapping) -> io::Result<()> {
        self.file.append(format!("{mapping}\n").as_bytes())?;
        self.journal += 1;
        if self.regular && self.journal >= self.kept.max(MIN_MAPPING_JOURNAL) {
            if let Err(e) = self.compact(mapping.learned) {
                // Tried again after another journal's worth.
                log::warn!("cannot compact {}: {e}", self.file.path().display());
                self.journal = 0;
            }
        }
        Ok(())
    }

    /// Rewrites the file with the latest mapping of each name still within its TTL at
    /// `now`, the most recent `max_mappings` of them, in the order they were learned.
    fn compact(&mut self, now: SystemTime) -> io::Result<()> {
        let path = self.file.path().to_owned();
        // Lines that do not read (written by hand, say) are dropped rather than kept
        // forever: the file must stay bounded.
        let mappings: Vec<Mapping> = std::fs::read_to_string(&path)?
            .lines()
            .filter_map(|line| Mapping::parse(line).ok().flatten())
            .collect();
        let read = mappings.len();
        let mut latest: HashMap<&Name, usize> = HashMap::new();
        for (i, m) in mappings.iter().enumerate() {
            latest.insert(&m.name, i);
        }
        let mut live: Vec<usize> = latest
            .into_values()
            .filter(|&i| mappings[i].remaining(now) > Duration::ZERO)
            .collect();
        live.sort_unstable();
        let live = &live[live.len().saturating_sub(self.max_mappings)..];
        let mut text = String::with_capacity(live.len() * 64);
        for &i in live {
            text.push_str(&mappings[i].to_string());
            text.push('\n');
        }
        let mut temp = path.clone().into_os_string();
        temp.push(".compacting");
        let temp = PathBuf::from(temp);
        let _ = std::fs::remove_file(&temp);
        let written = open_append(&temp)
            .and_then(|file| write_whole(&file, text.as_bytes()).and_then(|()| file.sync_data()))
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        self.file.close();
        self.kept = live.len();
        self.journal = 0;
        log::info!(
            "{}: compacted: {read} mappings read, {} kept (live, latest per name)",
            path.display(),
            live.len()
        );
        Ok(())
    }
}

/// One line of `mapping.log`: a name, its address, when it was learned and for how long
/// it may be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub name: Name,
    pub addr: IpAddr,
    /// When it was learned, to the second.
    pub learned: SystemTime,
    /// How long it may be kept from then, in seconds.
    pub ttl: u32,
}

impl std::fmt::Display for Mapping {
    /// `NAME ADDR learned=YYYY-MM-DDTHH:MM:SSZ ttl=SECS`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self
            .learned
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        write!(
            f,
            "{} {} learned={} ttl={}",
            self.name,
            self.addr,
            Utc(secs),
            self.ttl
        )
    }
}

impl Mapping {
    /// Reads a line as [`Mapping`]'s `Display` writes it; a line of the older
    /// `NAME ADDR` form is `Ok(None)` (nothing says when it was learned).
    pub fn parse(line: &str) -> Result<Option<Mapping>, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name, addr, rest) = match fields.as_slice() {
            [name, addr, rest @ ..] => (name, addr, rest),
            _ => {
                return Err(format!(
                    "expected `NAME ADDR ...`, found {} field{}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ))
            }
        };
        let name = Name::parse(name).map_err(|e| format!("bad name {name:?}: {e}"))?;
        let addr: IpAddr = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
        let (mut learned, mut ttl) = (None, None);
        for field in rest {
            match field.split_once('=') {
                Some(("learned", v)) => {
                    learned =
                        Some(parse_utc(v).ok_or_else(|| {
                            format!("bad time {v:?}: expected YYYY-MM-DDTHH:MM:SSZ")
                        })?)
                }
                Some(("ttl", v)) => {
                    ttl = Some(v.parse::<u32>().map_err(|_| format!("bad ttl {v:?}"))?)
                }
                _ => return Err(format!("unknown field {field:?}")),
            }
        }
        match (learned, ttl) {
            (Some(secs), Some(ttl)) => Ok(Some(Mapping {
                name,
                addr,
                learned: UNIX_EPOCH + Duration::from_secs(secs),
                ttl,
            })),
            (None, None) => Ok(None),
            _ => Err("expected both learned= and ttl=".to_owned()),
        }
    }

    /// How long it may still be kept at `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        let expires = self.learned + Duration::from_secs(self.ttl.into());
        expires.duration_since(now).unwrap_or(Duration::ZERO)
    }
}

/// Reads every line of a `mapping.log` that says when it was learned, in file order;
/// a line that cannot be read is `FILE:LINE`. Every form dnsd ever wrote is read: the
/// original's `NAME ADDR` lines are skipped (nothing says when they were learned), and
/// so is a last line without its line end that does not read (a record torn by a full
/// disk, as versions before whole records could leave).
pub fn read_mappings(path: &Path) -> Result<Vec<Mapping>, FileError> {
    let error = |line, message| FileError {
        path: path.to_owned(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(0, format!("cannot read: {e}")))?;
    let mut mappings = Vec::new();
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let count = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Mapping::parse(line) {
            Ok(Some(m)) => mappings.push(m),
            Ok(None) => {}
            Err(_) if torn_tail && i + 1 == count => {
                log::warn!(
                    "{}:{}: skipped: a record cut short (no line end)",
                    path.display(),
                    i + 1
                );
            }
            Err(m) => return Err(error(i + 1, m)),
        }
    }
    Ok(mappings)
}

/// Unix seconds shown as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC): `mapping.log`'s times
/// and the stamps of diagnostics.
pub struct Utc(pub u64);

impl std::fmt::Display for Utc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (days, secs) = ((self.0 / 86_400) as i64, self.0 % 86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` back to unix seconds.
fn parse_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()
}

/// Copies `bytes` to `out`, writing control characters, DEL and bytes that are not part
/// of valid UTF-8 as `\xNN`.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    // The common case, on every query: printable ASCII, copied as it is.
    if is_printable_ascii(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, invalid) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (v, i) = rest.split_at(e.valid_up_to());
                // Safe to unwrap: `valid_up_to` marks a valid UTF-8 prefix.
                (std::str::from_utf8(v).unwrap_or(""), i)
            }
        };
        for c in valid.chars() {
            if c.is_control() {
                // Control characters (C0, DEL, C1) are all below U+00A0.
                let _ = write!(out, "\\x{:02X}", c as u32);
            } else {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
        }
        if let Some((&b, tail)) = invalid.split_first() {
            let _ = write!(out, "\\x{b:02X}");
            rest = tail;
        } else {
            rest = &[];
        }
    }
}

/// Bytes that need no escaping: printable ASCII (every valid request line).
fn is_printable_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x20..0x7f).contains(b))
}

/// Displays bytes escaped as [`escape_into`] does, without allocating when they are
/// printable ASCII (every valid request): for the per-query log line.
pub struct Escaped<'a>(pub &'a [u8]);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(s) if is_printable_ascii(self.0) => f.write_str(s),
            _ => f.write_str(&escape(self.0)),
        }
    }
}

/// How long something took, in whole microseconds (`213µs`): cheaper to print than a
/// `Duration`'s `Debug`, on every query's log line.
pub struct Micros(pub std::time::Duration);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}µs", self.0.as_micros())
    }
}

/// `escape_into` as a `String`, for log messages.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_dates() {
        assert_eq!(Utc(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Utc(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Utc(1_795_624_620).to_string(), "2026-11-25T16:37:00Z");
    }

    #[test]
    fn mapping_lines_read_back() {
        let m = Mapping {
            name: Name::parse("www.google.com").unwrap(),
            addr: "142.250.72.4".parse().unwrap(),
            learned: UNIX_EPOCH + Duration::from_secs(1_795_646_400),
            ttl: 3600,
        };
        let line = m.to_string();
        assert_eq!(
            line,
            "www.google.com 142.250.72.4 learned=2026-11-25T22:40:00Z ttl=3600"
        );
        assert_eq!(Mapping::parse(&line), Ok(Some(m.clone())));
        assert_eq!(Mapping::parse("a.com 1.1.1.1"), Ok(None));
        assert!(Mapping::parse("a.com 1.1.1.1 ttl=3").is_err());
        assert!(Mapping::parse("a.com 1.1.1.1 learned=2026-13-01T00:00:00Z ttl=3").is_err());
        assert_eq!(Utc(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Utc(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        for secs in [0, 951_782_400, 1_795_646_399, 4_102_444_800] {
            assert_eq!(parse_utc(&Utc(secs).to_string()), Some(secs));
        }
        let later = m.learned + Duration::from_secs(3000);
        assert_eq!(m.remaining(later), Duration::from_secs(600));
        assert_eq!(
            m.remaining(later + Duration::from_secs(601)),
            Duration::ZERO
        );
    }

    fn reply() -> Reply {
        Reply::new(
            crate::line::message::Code::Resolved,
            "default_local",
            "1.2.3.4",
        )
    }

    /// Past the cap, a new id's records go to queries.log, one line each with the id;
    /// ids that have a file keep it, and no id can reach a file the server owns.
    #[test]
    fn client_files_are_capped_and_the_rest_share_queries_log() {
        let dir = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            max_client_logs: 2,
            max_mappings: 10,
        };
        let logs = LogDir::open(dir.path(), limits).unwrap();
        for id in ["mapping", "queries", "c", "mapping"] {
            let mut log = logs.client_log(id);
            logs.record(&mut log, b"1, a.com, R", &reply()).unwrap();
        }
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        let record = "1, a.com, R\n0X01, default_local, 1.2.3.4\n\n";
        assert_eq!(read("clients/mapping.log"), record.repeat(2));
        assert_eq!(read("clients/queries.log"), record);
        assert_eq!(
            read("queries.log"),
            "c\t1, a.com, R\t0X01, default_local, 1.2.3.4\n"
        );
        assert_eq!(read("mapping.log"), "");
        // A restart finds the two ids with files, and keeps the cap.
        drop(logs);
        let logs = LogDir::open(dir.path(), limits).unwrap();
        let mut log = logs.client_log("d");
        logs.record(&mut log, b"x", &reply()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("clients"))
                .unwrap()
                .count(),
            2
        );
    }

    /// mapping.log keeps the live mappings, the latest per name, and a bounded journal.
    #[test]
    fn mapping_log_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping.log");
        let mut log = MappingLog::open(&path, 5).unwrap();
        let start = UNIX_EPOCH + Duration::from_secs(1_795_646_400);
        let mapping = |i: usize, ttl| Mapping {
            name: Name::parse(&format!("n{}.com", i % 7)).unwrap(),
            addr: "10.0.0.1".parse().unwrap(),
            learned: start + Duration::from_secs(i as u64),
            ttl,
        };
        for i in 0..3 * MIN_MAPPING_JOURNAL {
            log.record(&mapping(i, 3600)).unwrap();
            if i % 1000 != 999 {
                continue;
            }
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            assert!(lines <= MIN_MAPPING_JOURNAL + 5, "{lines} lines after {i}");
        }
        let kept = read_mappings(&path).unwrap();
        assert!(kept.len() < MIN_MAPPING_JOURNAL, "{}", kept.len());
        // An expired mapping is dropped at the next compaction.
        log.record(&mapping(0, 0)).unwrap();
        log.compact(start + Duration::from_secs(10 * 3600)).unwrap();
        assert_eq!(read_mappings(&path).unwrap(), vec![]);
    }

    #[test]
    fn a_torn_last_line_is_skipped_when_warming() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping.log");
        let line = "www.a.com 10.0.0.1 learned=2026-01-01T00:00:00Z ttl=60";
        std::fs::write(&path, format!("{line}\nwww.b.com 10.0.0.2 learned=2026-0")).unwrap();
        assert_eq!(read_mappings(&path).unwrap().len(), 1);
        std::fs::write(
            &path,
            format!("{line}\nwww.b.com 10.0.0.2 learned=2026-0\n"),
        )
        .unwrap();
        assert!(read_mappings(&path).is_err());
    }

    #[test]
    fn escapes_controls_and_invalid_utf8() {
        assert_eq!(escape(b"1, a.com, R"), "1, a.com, R");
        assert_eq!(escape(b"a\nb\rc\td\0"), "a\\x0Ab\\x0Dc\\x09d\\x00");
        assert_eq!(escape(b"x\xffy\xc3"), "x\\xFFy\\xC3");
        assert_eq!(escape("é\u{85}".as_bytes()), "é\\x85");
        assert_eq!(Escaped(b"1, a.com, R").to_string(), "1, a.com, R");
        assert_eq!(Escaped(b"a\nb").to_string(), "a\\x0Ab");
    }
}
