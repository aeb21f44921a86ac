//! Two small network helpers, written once for every module that talks TCP.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Whether an I/O error means that a socket's timeout ran out. A read or write past its
/// timeout reports `WouldBlock` on Unix and `TimedOut` elsewhere, and a connect
/// `TimedOut`: callers that count or report timeouts must treat both alike.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Looks `HOST:PORT` up: an address is taken as it is, a host name goes through the
/// system's resolver. Returns every address found, in the resolver's order, and never an
/// empty list (no address is an error). Callers that connect try them in turn (a name
/// like `localhost` often gives `::1` before `127.0.0.1`); callers that need one address
/// take the first.
pub fn resolve_host_port(s: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(addr) = s.parse() {
        return Ok(vec![addr]);
    }
    let addrs: Vec<SocketAddr> = s.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no address found"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_takes_addresses_and_host_names() {
        assert_eq!(
            resolve_host_port("127.0.0.1:5353").unwrap(),
            ["127.0.0.1:5353".parse().unwrap()]
        );
        let local = resolve_host_port("localhost:1").unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 1));
        assert!(resolve_host_port("no port").is_err());
    }

    #[test]
    fn timeouts_of_both_kinds() {
        assert!(is_timeout(&io::ErrorKind::WouldBlock.into()));
        assert!(is_timeout(&io::ErrorKind::TimedOut.into()));
        assert!(!is_timeout(&io::ErrorKind::ConnectionReset.into()));
    }
}
