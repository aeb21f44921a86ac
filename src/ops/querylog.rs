//! The local server's record of what it answered, in `--log-dir`:
//!
//! - `ID.log` per client id: each request line as received (control characters and
//!   invalid UTF-8 escaped as `\xNN`, so a peer can never start a line of its own), the
//!   reply line, then a blank line.
//! - `mapping.log`: a line for each mapping learned from the hierarchy: `NAME ADDR`,
//!   then when it was learned (UTC) and for how long it may be kept, in seconds:
//!   `www.google.com 142.250.72.4 learned=2026-11-25T22:40:00Z ttl=3600`. Whatever
//!   reads `NAME ADDR` reads the first two fields; `dnsd local --warm` reads them all
//!   ([`Mapping`]).
//!
//! Files are opened for appending only, and each record is handed to the OS in a single
//! `write` before the reply it records is sent: concurrent writers never interleave
//! inside a line, and a killed process loses nothing that was answered.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::line::message::Reply;
use crate::model::name::Name;
use crate::zone::FileError;

/// The log directory with its open `mapping.log`.
#[derive(Debug)]
pub struct LogDir {
    dir: PathBuf,
    mapping: File,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogDir {
    /// Opens (creating if needed) `dir` and its `mapping.log`.
    pub fn open(dir: &Path) -> io::Result<LogDir> {
        std::fs::create_dir_all(dir)?;
        let mapping = open_append(&dir.join("mapping.log"))?;
        Ok(LogDir {
            dir: dir.to_owned(),
            mapping,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens `ID.log` for appending. `id` must already be a valid client id (see
    /// [`crate::line::message::valid_client_id`]), which keeps the file inside the directory.
    pub fn client_log(&self, id: &str) -> io::Result<ClientLog> {
        debug_assert!(crate::line::message::valid_client_id(id.as_bytes()).is_some());
        Ok(ClientLog {
            file: open_append(&self.dir.join(format!("{id}.log")))?,
            buf: Vec::with_capacity(256),
        })
    }

    /// Appends the mapping's line to `mapping.log`, in one write.
    pub fn record_mapping(&self, mapping: &Mapping) -> io::Result<()> {
        let line = format!("{mapping}\n");
        (&self.mapping).write_all(line.as_bytes())
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
                    "expected `NAME ADDR ...`, found {} fields",
                    fields.len()
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

/// Reads every line of a `mapping.log` that says when it was learned, in file order
/// (older `NAME ADDR` lines are skipped); a line that cannot be read is `FILE:LINE`.
pub fn read_mappings(path: &Path) -> Result<Vec<Mapping>, FileError> {
    let error = |line, message| FileError {
        path: path.to_owned(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(0, format!("cannot read: {e}")))?;
    let mut mappings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(m) = Mapping::parse(line).map_err(|m| error(i + 1, m))? {
            mappings.push(m);
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

/// One client's `ID.log`.
#[derive(Debug)]
pub struct ClientLog {
    file: File,
    buf: Vec<u8>,
}

impl ClientLog {
    /// Appends the request as received, its reply and a blank line, in one write.
    pub fn record(&mut self, request: &[u8], reply: &Reply) -> io::Result<()> {
        self.buf.clear();
        escape_into(&mut self.buf, request);
        self.buf.push(b'\n');
        reply.write_line(&mut self.buf);
        self.buf.push(b'\n');
        self.file.write_all(&self.buf)
    }
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
