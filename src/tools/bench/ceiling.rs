//! The ceiling: an in-process server that answers every line at once with a fixed reply
//! and does nothing else, or a chain of them that only pass lines on. Measured with the
//! same workload as a real server, it shows the most this machine's loopback and this
//! load generator allow.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::line::client::Client;
use crate::line::message::GREETING;

/// The reply of the [`Ceiling`] server to every line.
pub const CEILING_REPLY: &str = "0X00, ceiling, 127.0.0.1";

/// A server that answers each line at once with [`CEILING_REPLY`] and does nothing else:
/// a thread per connection, reading whatever has arrived and writing one reply per line
/// in it. Measured with the same workload as a real server, it gives the ceiling that
/// the machine's loopback and the load generator set. Stopped when dropped.
pub struct Ceiling {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
    /// The rest of a chain (see [`Ceiling::chain`]), stopped with this one.
    next: Option<Box<Ceiling>>,
}

impl Ceiling {
    /// Listens on a free loopback port. With `legacy`, each read is one message (the
    /// original's framing) and replies carry no line end. With `greet`, the first
    /// message of each connection is answered with the local server's greeting, as an id
    /// line would be.
    pub fn start(legacy: bool, greet: bool) -> io::Result<Ceiling> {
        Ceiling::stage(legacy, greet, None)
    }

    /// A chain of `hops` such servers: each but the last passes every request line on to
    /// the next (over one connection per incoming connection) and returns its reply.
    /// Measured with a workload that crosses as many servers (a miss at the local server
    /// crosses three: local, root, TLD), it shows the most such a chain of
    /// thread-per-connection servers allows on this machine, before any work is done.
    pub fn chain(legacy: bool, greet: bool, hops: usize) -> io::Result<Ceiling> {
        let mut next: Option<Ceiling> = None;
        for hop in (0..hops.max(1)).rev() {
            let first = hop == 0;
            let mut stage = Ceiling::stage(
                legacy && first,
                greet && first,
                next.as_ref().map(|n| n.addr),
            )?;
            stage.next = next.map(Box::new);
            next = Some(stage);
        }
        next.ok_or_else(|| io::Error::other("no hop"))
    }

    fn stage(legacy: bool, greet: bool, upstream: Option<SocketAddr>) -> io::Result<Ceiling> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let acceptor = thread::Builder::new()
            .name("ceiling".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = thread::Builder::new()
                        .name("ceiling-conn".into())
                        .spawn(move || ceiling_connection(stream, legacy, greet, upstream));
                }
            })?;
        Ok(Ceiling {
            addr,
            stop,
            acceptor: Some(acceptor),
            next: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn ceiling_connection(
    mut stream: TcpStream,
    legacy: bool,
    greet: bool,
    upstream: Option<SocketAddr>,
) {
    let _ = stream.set_nodelay(true);
    // A connection left open by its client does not keep the thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    // The next stage, through the line protocol's one client.
    let next = |addr| Client::open_addr(addr, false, Duration::from_secs(60));
    let mut relay = match upstream.map(next).transpose() {
        Ok(relay) => relay,
        Err(_) => return,
    };
    let end = if legacy { "" } else { "\n" };
    let reply = format!("{CEILING_REPLY}{end}");
    let greeting = format!("{GREETING}{end}");
    let mut greeted = !greet;
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let messages: Vec<&[u8]> = if legacy {
            vec![&buf[..n]]
        } else {
            buf[..n]
                .split(|&b| b == b'\n')
                .filter(|m| !m.is_empty())
                .collect()
        };
        out.clear();
        for message in messages {
            if !greeted {
                greeted = true;
                out.extend_from_slice(greeting.as_bytes());
                continue;
            }
            match &mut relay {
                None => out.extend_from_slice(reply.as_bytes()),
                Some(relay) => match relay.exchange_into(message) {
                    Ok(line) => {
                        out.extend_from_slice(line);
                        out.extend_from_slice(end.as_bytes());
                    }
                    Err(_) => return,
                },
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::message::Code;
    use crate::tools::bench::{measure, Errors, Workload};

    #[test]
    fn a_ceiling_chain_passes_every_line_to_its_last_hop() {
        let ceiling = Ceiling::chain(false, true, 3).unwrap();
        let mut workload = Workload::new(ceiling.addr());
        workload.connections = 2;
        workload.duration = None;
        workload.requests = Some(100);
        let report = measure(&workload);
        assert_eq!(report.queries, 100);
        assert_eq!(report.errors, Errors::default());
        assert_eq!(report.code(Code::Cached), 100);
    }

    #[test]
    fn ceiling_answers_lines_and_greets() {
        let ceiling = Ceiling::start(false, true).unwrap();
        let mut workload = Workload::new(ceiling.addr());
        workload.connections = 2;
        workload.duration = None;
        workload.requests = Some(100);
        workload.first = 1_000_000;
        let report = measure(&workload);
        assert_eq!(report.queries, 100);
        assert_eq!(report.errors, Errors::default());
        assert_eq!(report.code(Code::Cached), 100);
    }

    #[test]
    fn legacy_ceiling() {
        let ceiling = Ceiling::start(true, true).unwrap();
        let mut workload = Workload::new(ceiling.addr());
        workload.legacy = true;
        workload.duration = None;
        workload.requests = Some(50);
        let report = measure(&workload);
        assert_eq!(report.queries, 50);
        assert_eq!(report.errors.total(), 0);
    }
}
