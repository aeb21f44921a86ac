//! DNS over TCP framing (RFC 1035 4.2.2): each message is preceded by its length as two
//! big-endian bytes.
//!
//! Framing only: what the bytes mean is the business of the `server` and `upstream`
//! modules beside this one. The length prefix is 16 bits, so no message is longer than
//! [`MAX_MESSAGE`], and that is the most a peer can make us allocate per read.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest DNS message TCP framing can carry.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// Why no message could be read.
#[derive(Debug, thiserror::Error)]
pub enum TcpFrameError {
    /// The stream ended after a length prefix had begun but before the message ended.
    #[error("connection closed in the middle of a message")]
    Truncated,
    /// The socket's read timeout expired.
    #[error("timed out waiting for a message")]
    Timeout,
    #[error(transparent)]
    Io(io::Error),
}

impl From<io::Error> for TcpFrameError {
    fn from(e: io::Error) -> Self {
        if crate::net::is_timeout(&e) {
            TcpFrameError::Timeout
        } else if e.kind() == ErrorKind::UnexpectedEof {
            TcpFrameError::Truncated
        } else {
            TcpFrameError::Io(e)
        }
    }
}

/// Reads one length-prefixed message into `buf` (resized to the message's length, at
/// most [`MAX_MESSAGE`]) and returns it.
///
/// `Ok(None)` is a clean end of stream: the peer closed before sending a prefix. A
/// stream that ends anywhere after the first byte of a prefix is
/// [`TcpFrameError::Truncated`]. A zero-length message is returned as an empty slice
/// (the caller decides what an empty message means).
pub fn read_message<'b>(
    reader: &mut impl Read,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b [u8]>, TcpFrameError> {
    let mut prefix = [0u8; 2];
    let mut got = 0;
    while got < prefix.len() {
        match reader.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(TcpFrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = usize::from(u16::from_be_bytes(prefix));
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf)?;
    Ok(Some(&buf[..]))
}

/// How much a [`MessageReader`] reads at once: many pipelined queries (a resolver, or
/// dnsperf, keeps several in flight on one connection) arrive with one read.
pub const READ_SIZE: usize = 16 * 1024;

/// A server's side of a DNS-over-TCP connection: reads length-prefixed messages, each
/// of which must arrive whole within a deadline from its first byte.
///
/// A read timeout alone does not bound a message: it starts again with every read, so
/// a peer sending a length prefix and then one byte every few seconds would hold the
/// connection (and the thread serving it) for ever. Here the deadline runs from the
/// message's first byte to its last, as a line's does in the line protocol; between
/// messages the connection may stay silent for the idle timeout.
pub struct MessageReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// How long the connection may stay silent between messages, and how long one
    /// message may take to arrive from its first byte.
    timeout: Duration,
    /// When the pending message's first byte was seen.
    started: Option<Instant>,
    /// The read timeout currently set on the socket, so it is only changed when needed.
    current: Option<Duration>,
}

impl MessageReader {
    /// A reader whose first bytes are `already` (read before it took over: the bytes a
    /// server peeked at to tell DNS from the line protocol); messages must arrive
    /// whole within `timeout` of their first byte, and silence between them may last
    /// as long.
    pub fn new(already: &[u8], timeout: Duration) -> MessageReader {
        let mut buf = vec![0; READ_SIZE.max(already.len())];
        buf[..already.len()].copy_from_slice(already);
        MessageReader {
            buf,
            start: 0,
            end: already.len(),
            timeout,
            started: None,
            current: None,
        }
    }

    /// Reads the next message from `stream`. `Ok(None)` is a clean end of stream (no
    /// byte of a next message had come); an end anywhere inside a message is
    /// [`TcpFrameError::Truncated`]. [`TcpFrameError::Timeout`] is silence past the
    /// timeout, or a message not whole by its deadline: [`mid_message`](Self::mid_message)
    /// tells them apart.
    pub fn read_message(&mut self, stream: &TcpStream) -> Result<Option<&[u8]>, TcpFrameError> {
        if self.wait_message(stream)? {
            Ok(self.take_message())
        } else {
            Ok(None)
        }
    }

    /// Reads from `stream` until a whole message is in hand (`Ok(true)`; take it with
    /// [`take_message`](Self::take_message)) or the stream ends cleanly (`Ok(false)`);
    /// errors as [`read_message`](Self::read_message)'s. Apart from taking the message,
    /// so that a caller can ask [`mid_message`](Self::mid_message) about an error.
    pub fn wait_message(&mut self, stream: &TcpStream) -> Result<bool, TcpFrameError> {
        loop {
            if self.whole().is_some() {
                return Ok(true);
            }
            let pending = self.end - self.start;
            if pending > 0 && self.started.is_none() {
                self.started = Some(Instant::now());
            }
            let timeout = match self.started {
                None => self.timeout,
                Some(started) => {
                    let left = self.timeout.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(TcpFrameError::Timeout);
                    }
                    left
                }
            };
            self.make_room();
            if self.current != Some(timeout) {
                stream.set_read_timeout(Some(timeout))?;
                self.current = Some(timeout);
            }
            match (&*stream).read(&mut self.buf[self.end..]) {
                Ok(0) if pending == 0 => return Ok(false),
                Ok(0) => return Err(TcpFrameError::Truncated),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Within a message, the loop checks its deadline.
                Err(e) if crate::net::is_timeout(&e) && pending > 0 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The whole message at the front, taken (the next one's deadline starts when it
    /// is waited for), or `None` if there is none in hand.
    pub fn take_message(&mut self) -> Option<&[u8]> {
        let len = self.whole()?;
        let body = self.start + 2;
        self.start = body + len;
        self.started = None;
        Some(&self.buf[body..body + len])
    }

    /// Whether a whole message is in hand already: reading it needs no system call.
    pub fn has_whole_message(&self) -> bool {
        self.whole().is_some()
    }

    /// Whether some bytes of a message that has not arrived whole are in hand.
    pub fn mid_message(&self) -> bool {
        self.end > self.start
    }

    /// The length of the message at the front, if it is all in hand.
    fn whole(&self) -> Option<usize> {
        match &self.buf[self.start..self.end] {
            [hi, lo, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                (rest.len() >= len).then_some(len)
            }
            _ => None,
        }
    }

    /// Makes room after the pending bytes for the rest of the message at the front:
    /// moves them to the start of the buffer, and grows it for a message larger than
    /// it (up to [`MAX_MESSAGE`] and its prefix, what a peer can make us allocate).
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let needed = match &self.buf[self.start..self.end] {
            [hi, lo, ..] => 2 + usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => 2,
        };
        if self.start + needed > self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if needed > self.buf.len() {
            self.buf.resize(needed, 0);
        }
    }
}

/// Writes `message` with its length prefix, prefix and body from one buffer in one
/// `write_all` (so a peer never sees the prefix in a segment of its own, and a writer
/// shared under a lock never interleaves another message between the two).
///
/// A message longer than [`MAX_MESSAGE`] is refused with [`ErrorKind::InvalidInput`]
/// and nothing is written.
pub fn write_message(writer: &mut impl Write, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| {
        io::Error::new(
            ErrorKind::InvalidInput,
            format!(
                "DNS message of {} bytes is longer than TCP framing allows",
                message.len()
            ),
        )
    })?;
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    writer.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::net::TcpListener;
    use std::thread;

    /// A connected pair: (the peer's end, the server's end).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn reader_takes_bytes_already_read_then_pipelined_and_large_messages() {
        let (mut peer, server) = pair();
        let mut reader = MessageReader::new(b"\x00", Duration::from_secs(10));
        let mut out = b"\x03abc".to_vec();
        write_message(&mut out, b"hello").unwrap();
        write_message(&mut out, &[9u8; MAX_MESSAGE]).unwrap();
        write_message(&mut out, b"").unwrap();
        let writer = thread::spawn(move || {
            peer.write_all(&out).unwrap();
            peer
        });
        assert_eq!(
            reader.read_message(&server).unwrap(),
            Some(&b"abc"[..]),
            "the peeked byte is the prefix's first"
        );
        assert_eq!(reader.read_message(&server).unwrap(), Some(&b"hello"[..]));
        let big = reader.read_message(&server).unwrap().unwrap();
        assert_eq!((big.len(), big[MAX_MESSAGE - 1]), (MAX_MESSAGE, 9));
        assert_eq!(reader.read_message(&server).unwrap(), Some(&b""[..]));
        assert!(!reader.mid_message());
        drop(writer.join().unwrap());
        assert_eq!(reader.read_message(&server).unwrap(), None);
    }

    #[test]
    fn a_trickled_message_times_out_at_its_deadline_not_at_each_read() {
        let (mut peer, server) = pair();
        let timeout = Duration::from_millis(300);
        let mut reader = MessageReader::new(&[], timeout);
        let started = Instant::now();
        let trickler = thread::spawn(move || {
            // A prefix announcing 100 bytes, then a byte every 50 ms: each read finds
            // a byte well within the timeout, the message never whole within it.
            let _ = peer.write_all(&[0, 100]);
            for _ in 0..100 {
                thread::sleep(Duration::from_millis(50));
                if peer.write_all(b"x").is_err() {
                    break;
                }
            }
        });
        let err = reader.read_message(&server).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, TcpFrameError::Timeout), "{err:?}");
        assert!(reader.mid_message());
        assert!(
            took >= timeout && took < timeout * 10,
            "timed out after {took:?}"
        );
        server.shutdown(std::net::Shutdown::Both).unwrap();
        trickler.join().unwrap();
    }

    #[test]
    fn silence_between_messages_is_the_idle_timeout() {
        let (_peer, server) = pair();
        let mut reader = MessageReader::new(&[], Duration::from_millis(50));
        let err = reader.read_message(&server).unwrap_err();
        assert!(matches!(err, TcpFrameError::Timeout), "{err:?}");
        assert!(!reader.mid_message());
    }

    /// Counts write calls, to prove the prefix and body go out together.
    struct CountingWriter {
        out: Vec<u8>,
        calls: usize,
    }

    impl Write for CountingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn round_trip_of_several_messages() {
        let mut w = CountingWriter {
            out: Vec::new(),
            calls: 0,
        };
        write_message(&mut w, b"hello").unwrap();
        write_message(&mut w, b"").unwrap();
        write_message(&mut w, &[7u8; 300]).unwrap();
        assert_eq!(w.calls, 3, "one write per message");
        assert_eq!(&w.out[..7], b"\x00\x05hello");

        let mut r = Cursor::new(w.out);
        let mut buf = Vec::new();
        assert_eq!(read_message(&mut r, &mut buf).unwrap(), Some(&b"hello"[..]));
        assert_eq!(read_message(&mut r, &mut buf).unwrap(), Some(&b""[..]));
        assert_eq!(
            read_message(&mut r, &mut buf).unwrap().map(<[u8]>::len),
            Some(300)
        );
        assert_eq!(read_message(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn eof_mid_prefix_or_body_is_truncated() {
        let mut buf = Vec::new();
        let err = read_message(&mut Cursor::new(vec![0u8]), &mut buf).unwrap_err();
        assert!(matches!(err, TcpFrameError::Truncated), "{err:?}");
        let err = read_message(&mut Cursor::new(b"\x00\x05hel".to_vec()), &mut buf).unwrap_err();
        assert!(matches!(err, TcpFrameError::Truncated), "{err:?}");
    }

    #[test]
    fn largest_message_round_trips_and_larger_is_refused() {
        let big = vec![1u8; MAX_MESSAGE];
        let mut out = Vec::new();
        write_message(&mut out, &big).unwrap();
        let mut buf = Vec::new();
        let got = read_message(&mut Cursor::new(out), &mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), MAX_MESSAGE);

        let mut out = Vec::new();
        let err = write_message(&mut out, &vec![0u8; MAX_MESSAGE + 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(out.is_empty());
    }
}
