//! File descriptors: every connection holds at least one, so a server that takes
//! `--max-connections` clients must be allowed that many open files. At start the soft
//! limit (`RLIMIT_NOFILE`, often 1024) is raised to the hard limit, as Unbound and nginx
//! do, and the connections asked for are checked against it: a `--max-connections` that
//! could not be held is refused at start, with the figures, rather than failing `accept`
//! later. The default (1024 per server) is only warned about: `dnsd up` must start on a
//! machine whose hard limit is low, where it then serves fewer clients at once.

use crate::error::{ConfigError, Error};

/// Descriptors a server needs beyond its connections: the listening and UDP sockets,
/// `mapping.log`, upstream connections, stdio, the signal thread's pipe.
pub const MARGIN: u64 = 64;

/// Descriptors each client connection holds at the local server: the socket and the
/// client's `ID.log`.
pub const PER_LOCAL_CONNECTION: u64 = 2;
/// Descriptors each connection holds at the root or a TLD server: the socket.
pub const PER_CONNECTION: u64 = 1;

/// One server of a process, as the descriptor count sees it.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// Descriptors per connection ([`PER_LOCAL_CONNECTION`] or [`PER_CONNECTION`]).
    pub per_connection: u64,
    pub max_connections: usize,
}

/// How many descriptors a process running `servers` needs at most.
pub fn needed(servers: &[Need]) -> u64 {
    servers
        .iter()
        .map(|s| s.per_connection.saturating_mul(s.max_connections as u64))
        .fold(MARGIN, u64::saturating_add)
}

/// Checks that `servers` fit in `limit` descriptors: an error if they do not and their
/// `--max-connections` was `asked` for, a warning if it is the default.
pub fn check(servers: &[Need], limit: u64, asked: bool) -> Result<(), Error> {
    let need = needed(servers);
    if need <= limit {
        return Ok(());
    }
    let conns: usize = servers.iter().map(|s| s.max_connections).sum();
    if !asked {
        log::warn!(
            "file descriptors: {conns} connections (the default --max-connections) would \
             need up to {need}, but this process may open only {limit}: past that, new \
             connections wait (raise `ulimit -Hn`, or lower --max-connections)"
        );
        return Ok(());
    }
    Err(ConfigError::TooManyConnections {
        connections: conns,
        need,
        margin: MARGIN,
        limit,
    }
    .into())
}

/// Raises the soft limit on open files to the hard limit and returns the new soft
/// limit; logs the figure.
pub fn raise() -> Result<u64, Error> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map_err(|e| Error::io("cannot read the open-file limit", e))?;
    let now = rlimit::increase_nofile_limit(hard)
        .map_err(|e| Error::io("cannot raise the open-file limit", e))?;
    if now > soft {
        log::info!("file descriptors: limit raised from {soft} to {now}");
    } else {
        log::info!("file descriptors: limit {now}");
    }
    Ok(now)
}

/// Raises the limit and checks that `servers` fit in it: what each server command does
/// at start. `asked`: `--max-connections` was given (not the default).
pub fn prepare(servers: &[Need], asked: bool) -> Result<(), Error> {
    let limit = raise()?;
    check(servers, limit, asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_server_needs_two_per_client() {
        let local = Need {
            per_connection: PER_LOCAL_CONNECTION,
            max_connections: 1000,
        };
        let tld = Need {
            per_connection: PER_CONNECTION,
            max_connections: 1000,
        };
        assert_eq!(needed(&[local]), 2000 + MARGIN);
        assert_eq!(needed(&[local, tld]), 3000 + MARGIN);
        assert!(check(&[local], 2000 + MARGIN, true).is_ok());
        let e = check(&[local], 2000, true).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("need up to 2064"), "{e}");
        // The default is only warned about: `dnsd up` starts under a low hard limit.
        assert!(check(&[local], 2000, false).is_ok());
    }
}
