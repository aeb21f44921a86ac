//! The local server's record of what it answered, in `--log-dir`:
//!
//! - `ID.log` per client id: each request line as received (control characters and
//!   invalid UTF-8 escaped as `\xNN`, so a peer can never start a line of its own), the
//!   reply line, then a blank line.
//! - `mapping.log`: `NAME ADDR` for each mapping learned from the hierarchy.
//!
//! Files are opened for appending only, and each record is handed to the OS in a single
//! `write` before the reply it records is sent: concurrent writers never interleave
//! inside a line, and a killed process loses nothing that was answered.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::name::Name;
use crate::protocol::Reply;

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
    /// [`crate::protocol::valid_client_id`]), which keeps the file inside the directory.
    pub fn client_log(&self, id: &str) -> io::Result<ClientLog> {
        debug_assert!(crate::protocol::valid_client_id(id.as_bytes()).is_some());
        Ok(ClientLog {
            file: open_append(&self.dir.join(format!("{id}.log")))?,
            buf: Vec::with_capacity(256),
        })
    }

    /// Appends `NAME ADDR` to `mapping.log`, in one write.
    pub fn record_mapping(&self, name: &Name, addr: IpAddr) -> io::Result<()> {
        let line = format!("{name} {addr}\n");
        (&self.mapping).write_all(line.as_bytes())
    }
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
    fn escapes_controls_and_invalid_utf8() {
        assert_eq!(escape(b"1, a.com, R"), "1, a.com, R");
        assert_eq!(escape(b"a\nb\rc\td\0"), "a\\x0Ab\\x0Dc\\x09d\\x00");
        assert_eq!(escape(b"x\xffy\xc3"), "x\\xFFy\\xC3");
        assert_eq!(escape("é\u{85}".as_bytes()), "é\\x85");
        assert_eq!(Escaped(b"1, a.com, R").to_string(), "1, a.com, R");
        assert_eq!(Escaped(b"a\nb").to_string(), "a\\x0Ab");
    }
}
