//! RFC 1035 DNS messages over UDP and TCP: the second view of the [`crate::model`].
//!
//! Pure building blocks; the servers wire them in:
//!
//! - [`tcp`]: the two-byte length prefix framing of DNS over TCP.
//! - [`udp`]: the UDP server loop on a fixed set of threads.

pub mod tcp;
pub mod udp;
