//! DNS over TCP framing (RFC 1035 4.2.2): each message is preceded by its length as two
//! big-endian bytes.
//!
//! Framing only: what the bytes mean is the business of the `server` and `upstream`
//! modules beside this one. The length prefix is 16 bits, so no message is longer than
//! [`MAX_MESSAGE`], and that is the most a peer can make us allocate per read.

use std::io::{self, ErrorKind, Read, Write};

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
