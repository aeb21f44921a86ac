//! Framing: one TCP stream turned into bounded lines, and lines written back.
//!
//! Every hop speaks `\n`-terminated lines (a trailing `\r` is dropped). A line longer than
//! the limit is an error, found without reading the rest of it into memory: the buffer
//! has a fixed size. Peers of the original design send each message with no terminator
//! and wait for the reply, so until a connection has sent its first `\n`, a partial line
//! followed by a short pause is taken as a whole message ("legacy framing"). Once a peer
//! has ended a line with `\n`, only `\n` ends its messages.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::net::is_timeout;

/// How long a legacy peer's partial line may pause before it counts as a whole message.
pub const LEGACY_PAUSE: Duration = Duration::from_millis(40);

/// The longest request line, unless `--max-line` says otherwise.
pub const DEFAULT_MAX_LINE: usize = 512;

/// How long a connection may stay silent, unless `--idle-timeout` says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits applied to one connection's reading.
#[derive(Clone, Copy, Debug)]
pub struct FrameLimits {
    /// Longest line accepted, in bytes, without its line end.
    pub max_line: usize,
    /// How long a connection may stay silent, and how long one line may take to arrive.
    pub idle_timeout: Duration,
    /// Whether a partial line followed by [`LEGACY_PAUSE`] counts as a message until the
    /// peer's first `\n`.
    pub legacy: bool,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_line: DEFAULT_MAX_LINE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            legacy: true,
        }
    }
}

/// Why no line could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("line longer than {0} bytes")]
    TooLong(usize),
    #[error("timed out waiting for a line")]
    Timeout,
    #[error("connection closed in the middle of a line")]
    Truncated,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Whether a connection whose first byte is `b` speaks the line protocol. DNS over TCP
/// starts with a two-byte length whose high byte is below 0x20 for any message under
/// 8 KiB (a query is far smaller); a line starts with anything else: a printable byte,
/// a tab or a line end, or a byte over 0x7F that the line protocol then rejects as it
/// always has.
pub fn is_line_protocol(b: u8) -> bool {
    b >= 0x20 || matches!(b, b'\t' | b'\r' | b'\n')
}

/// A framed connection: reads lines, writes lines.
pub struct Connection {
    /// Shared with the server's shutdown registry, which ends its reading side on
    /// shutdown: sharing costs no second file descriptor, as `try_clone` would.
    stream: Arc<TcpStream>,
    peer: Option<SocketAddr>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    limits: FrameLimits,
    /// Still possible for this peer to speak the original's unterminated framing.
    legacy_possible: bool,
    /// When the first byte of the pending partial line arrived.
    line_started: Option<Instant>,
    /// The read timeout currently set on the socket, so it is only changed when needed.
    current_timeout: Option<Duration>,
    out: Vec<u8>,
}

impl Connection {
    pub fn new(stream: TcpStream, limits: FrameLimits) -> Connection {
        Connection::shared(Arc::new(stream), limits)
    }

    /// A connection over a stream that someone else also holds.
    pub fn shared(stream: Arc<TcpStream>, limits: FrameLimits) -> Connection {
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        // Room for one whole line with `\r\n`, and some more so that pipelined lines
        // are read in few system calls.
        let size = (limits.max_line + 2).max(2048);
        Connection {
            stream,
            peer,
            buf: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
            legacy_possible: limits.legacy,
            limits,
            line_started: None,
            current_timeout: None,
            out: Vec::with_capacity(128),
        }
    }

    /// The peer's address, if the socket still knew it when the connection was made.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// How many bytes have been read from the peer but not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Changes the idle timeout (upstream connections use the time left for a query).
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.limits.idle_timeout = timeout;
    }

    /// Reads the next line, without its line end. `Ok(None)` is a clean end of stream.
    /// At end of stream, a pending partial line is returned as the last line.
    pub fn read_line(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line_start = self.start;
                let mut line_end = self.start + pos;
                self.start = line_end + 1;
                self.legacy_possible = false;
                self.line_started = None;
                if line_end > line_start && self.buf[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                if line_end - line_start > self.limits.max_line {
                    return Err(FrameError::TooLong(self.limits.max_line));
                }
                return Ok(Some(&self.buf[line_start..line_end]));
            }
            let pending_len = pending.len();
            // `\r` may still precede the `\n`, hence the + 1.
            if pending_len > self.limits.max_line + 1 {
                return Err(FrameError::TooLong(self.limits.max_line));
            }
            if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = pending_len;
            }
            if pending_len > 0 && self.line_started.is_none() {
                self.line_started = Some(Instant::now());
            }
            let timeout = match self.line_started {
                None => self.limits.idle_timeout,
                Some(started) => {
                    let left = self.limits.idle_timeout.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(FrameError::Timeout);
                    }
                    if self.legacy_possible {
                        left.min(LEGACY_PAUSE)
                    } else {
                        left
                    }
                }
            };
            self.set_read_timeout(timeout)?;
            match (&*self.stream).read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    if self.start == self.end {
                        return Ok(None);
                    }
                    if !self.legacy_possible {
                        self.start = self.end;
                        return Err(FrameError::Truncated);
                    }
                    return Ok(Some(self.take_partial()));
                }
                Ok(n) => self.end += n,
                Err(e) if is_timeout(&e) => {
                    if self.start == self.end {
                        return Err(FrameError::Timeout);
                    }
                    if self.legacy_possible {
                        return Ok(Some(self.take_partial()));
                    }
                    // Not yet past the line's deadline: the loop checks it.
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits (up to the idle timeout) for the peer's first byte and returns it without
    /// consuming it: what a server looks at to tell the line protocol (a printable
    /// byte) from DNS over TCP (the high byte of a two-byte length). `Ok(None)`: the
    /// peer closed without sending anything.
    pub fn peek_first(&mut self) -> Result<Option<u8>, FrameError> {
        while self.start == self.end {
            let timeout = self.limits.idle_timeout;
            self.set_read_timeout(timeout)?;
            match (&*self.stream).read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(None),
                Ok(n) => self.end += n,
                Err(e) if is_timeout(&e) => return Err(FrameError::Timeout),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(self.buf[self.start]))
    }

    /// Takes the pending partial line as one legacy message.
    fn take_partial(&mut self) -> &[u8] {
        let (s, e) = (self.start, self.end);
        self.start = self.end;
        self.line_started = None;
        let line = &self.buf[s..e];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.current_timeout != Some(timeout) {
            self.stream.set_read_timeout(Some(timeout))?;
            self.current_timeout = Some(timeout);
        }
        Ok(())
    }

    /// Writes `line` and a `\n` in one system call.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.clear();
        self.out.extend_from_slice(line);
        self.out.push(b'\n');
        (&*self.stream).write_all(&self.out)
    }

    /// Writes a reply line built by `fill` (which must not add the line end).
    pub fn write_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.out.clear();
        fill(&mut self.out);
        self.out.push(b'\n');
        (&*self.stream).write_all(&self.out)
    }

    /// Writes `bytes` as they are: the original's framing, with no terminator.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        (&*self.stream).write_all(bytes)
    }

    /// Closes both directions.
    pub fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Raw reads, for DNS over TCP on a connection that began as lines would: what was
/// already read (the peeked first bytes) comes first, then the socket.
impl Read for Connection {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start < self.end {
            let n = out.len().min(self.end - self.start);
            out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            return Ok(n);
        }
        self.set_read_timeout(self.limits.idle_timeout)?;
        (&*self.stream).read(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair(limits: FrameLimits) -> (TcpStream, Connection) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, Connection::new(s, limits))
    }

    #[test]
    fn reads_lines_and_strips_cr() {
        let (mut c, mut conn) = pair(FrameLimits::default());
        c.write_all(b"one\r\ntwo\nthree").unwrap();
        assert_eq!(conn.read_line().unwrap(), Some(&b"one"[..]));
        assert_eq!(conn.read_line().unwrap(), Some(&b"two"[..]));
        drop(c);
        assert!(matches!(conn.read_line(), Err(FrameError::Truncated)));
        assert_eq!(conn.read_line().unwrap(), None);
    }

    #[test]
    fn legacy_message_ends_with_a_pause() {
        let (mut c, mut conn) = pair(FrameLimits::default());
        c.write_all(b"alice").unwrap();
        assert_eq!(conn.read_line().unwrap(), Some(&b"alice"[..]));
    }

    #[test]
    fn too_long_without_reading_everything() {
        let limits = FrameLimits {
            max_line: 16,
            ..FrameLimits::default()
        };
        let (mut c, mut conn) = pair(limits);
        c.write_all(&[b'x'; 100]).unwrap();
        assert!(matches!(conn.read_line(), Err(FrameError::TooLong(16))));
    }

    #[test]
    fn idle_timeout() {
        let limits = FrameLimits {
            idle_timeout: Duration::from_millis(50),
            ..FrameLimits::default()
        };
        let (_c, mut conn) = pair(limits);
        assert!(matches!(conn.read_line(), Err(FrameError::Timeout)));
    }
}
