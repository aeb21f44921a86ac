//! The closed loop: one thread per connection, each with one query in flight, sending
//! the next as soon as the reply is in. A connection speaks the line protocol, or with
//! [`Workload::dns`] DNS over UDP (a socket of its own) or TCP.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, MessageType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{code_index, rcode_index, DnsTransport, Errors, Latency, Names, Report, Workload};
use crate::dns::exchange::query_message;
use crate::dns::tcp::{self as dns_tcp, TcpFrameError};
use crate::line::client::{Client, ClientError};
use crate::line::message::{Code, Mode};
use crate::model::name::Name;
use crate::model::{QType, Query, Recursion};

/// How long a connection thread waits before trying again after a failed connect, so
/// that a server that is down does not turn the run into a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What one connection thread counted.
#[derive(Default)]
struct Tally {
    micros: Vec<u32>,
    codes: [u64; 6],
    rcodes: [u64; super::RCODES.len() + 1],
    errors: Errors,
    reconnects: u64,
}

/// A progress sample, handed to the callback of [`measure_reporting`] about four times
/// a second.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    pub elapsed: Duration,
    /// Queries sent so far (answered or not).
    pub sent: u64,
}

/// Runs `workload` and reports what it measured.
pub fn measure(workload: &Workload) -> Report {
    measure_reporting(workload, |_| {})
}

/// Runs `workload`, calling `on_tick` about four times a second while it runs.
pub fn measure_reporting(workload: &Workload, mut on_tick: impl FnMut(Tick)) -> Report {
    let connections = workload.connections.max(1);
    // The next query's number: every connection takes one before each query, so the
    // numbers (and the `{n}` names) are unique, and `--requests` is a limit on them.
    let next = AtomicU64::new(workload.first);
    // Every connection opens (and greets) before the clock starts. The first thread past
    // the start line starts it for all: the connections' deadlines and the run's elapsed
    // time count from one instant, so a timed run never reports less than its duration
    // (and no more queries per second than were made) however the threads are scheduled.
    let start_line = Barrier::new(connections + 1);
    let clock = OnceLock::new();
    thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|_| scope.spawn(|| connection_loop(workload, &next, &start_line, &clock)))
            .collect();
        start_line.wait();
        let start = *clock.get_or_init(Instant::now);
        let mut last_tick = start;
        while !workers.iter().all(|w| w.is_finished()) {
            thread::sleep(Duration::from_millis(20));
            if last_tick.elapsed() >= Duration::from_millis(250) {
                last_tick = Instant::now();
                let sent = next.load(Ordering::Relaxed) - workload.first;
                let sent = workload.requests.map_or(sent, |r| sent.min(r));
                on_tick(Tick {
                    elapsed: start.elapsed(),
                    sent,
                });
            }
        }
        let elapsed = start.elapsed();
        let mut report = Report {
            elapsed,
            ..Report::default()
        };
        let mut micros = Vec::new();
        for worker in workers {
            // A connection thread does not panic on anything a server does; if it did,
            // its counts are lost rather than the whole run.
            let Ok(tally) = worker.join() else { continue };
            micros.extend_from_slice(&tally.micros);
            for (sum, n) in report.codes.iter_mut().zip(tally.codes) {
                *sum += n;
            }
            for (sum, n) in report.rcodes.iter_mut().zip(tally.rcodes) {
                *sum += n;
            }
            report.errors.add(&tally.errors);
            report.reconnects += tally.reconnects;
        }
        report.queries = report.codes.iter().sum::<u64>() + report.rcodes.iter().sum::<u64>();
        report.latency = Latency::from_micros(&mut micros);
        report
    })
}

/// One connection to the server, in the workload's protocol.
enum Conn {
    Line(Client),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// What a reply said.
enum Answer {
    /// A line reply's code.
    Line(Code),
    /// A DNS response's code.
    Dns(u16),
}

/// Why one query got no usable reply.
enum Failure {
    Timeout,
    Closed,
    Unparsable,
}

impl From<&ClientError> for Failure {
    fn from(e: &ClientError) -> Failure {
        if e.is_timeout() {
            Failure::Timeout
        } else if matches!(e, ClientError::Unexpected(_)) {
            Failure::Unparsable
        } else {
            Failure::Closed
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if crate::net::is_timeout(&e) {
            Failure::Timeout
        } else {
            Failure::Closed
        }
    }
}

impl From<TcpFrameError> for Failure {
    fn from(e: TcpFrameError) -> Failure {
        match e {
            TcpFrameError::Timeout => Failure::Timeout,
            TcpFrameError::Truncated | TcpFrameError::Io(_) => Failure::Closed,
        }
    }
}

/// Connects (over DNS: binds a UDP socket of its own and connects it, or opens a TCP
/// connection), and on the line protocol sends the id line and checks the greeting if
/// the workload has an id.
fn open(workload: &Workload) -> Result<Conn, Failure> {
    let server = workload.server;
    match workload.dns {
        None => {
            let mut client = Client::open_addr(server, workload.legacy, workload.timeout)
                .map_err(|e| Failure::from(&e))?;
            if let Some(id) = &workload.client_id {
                client.hello(id).map_err(|e| Failure::from(&e))?;
            }
            Ok(Conn::Line(client))
        }
        Some(DnsTransport::Udp) => {
            let any: SocketAddr = match server {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let socket = UdpSocket::bind(any)?;
            socket.connect(server)?;
            socket.set_read_timeout(Some(workload.timeout))?;
            Ok(Conn::Udp(socket))
        }
        Some(DnsTransport::Tcp) => {
            let stream = TcpStream::connect_timeout(&server, workload.timeout)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(workload.timeout))?;
            stream.set_write_timeout(Some(workload.timeout))?;
            Ok(Conn::Tcp(stream))
        }
    }
}

/// The query messages of a DNS run. A name without `{n}` gives the same message every
/// time but for its ID, so that message is built once and only its ID (the first two
/// bytes, RFC 1035 4.1.1) changes, keeping the load generator's own cost down.
struct Queries<'w> {
    workload: &'w Workload,
    fixed: Option<Vec<u8>>,
    name: Vec<u8>,
}

impl<'w> Queries<'w> {
    fn new(workload: &'w Workload) -> Queries<'w> {
        let fixed = match &workload.names {
            Names::Pattern(p) if !p.contains("{n}") => build(workload, p.as_bytes(), 0),
            Names::List(names) if names.len() == 1 => build(workload, names[0].as_bytes(), 0),
            _ => None,
        };
        Queries {
            workload,
            fixed,
            name: Vec::with_capacity(128),
        }
    }

    /// Query number `n`, with ID `id`; `None` if its name cannot be written in a DNS
    /// message.
    fn message(&mut self, n: u64, id: u16) -> Option<Vec<u8>> {
        if let Some(fixed) = &self.fixed {
            let mut msg = fixed.clone();
            msg[..2].copy_from_slice(&id.to_be_bytes());
            return Some(msg);
        }
        self.name.clear();
        self.workload.names.write(n, &mut self.name);
        build(self.workload, &self.name, id)
    }
}

/// The A query for `name` with ID `id` (RD set in mode R, clear in mode I).
fn build(workload: &Workload, name: &[u8], id: u16) -> Option<Vec<u8>> {
    let recursion = match workload.mode {
        Mode::Recursive => Recursion::Recursive,
        Mode::Iterative => Recursion::Iterative,
    };
    let name = Name::from_wire(std::str::from_utf8(name).ok()?);
    let query = Query::new(name, QType::A, recursion);
    query_message(id, &query).ok().filter(|m| m.len() >= 12)
}

/// The response code of `response` if it is a response (QR set) to the query with ID
/// `id`; `None` for anything else.
fn dns_rcode(response: &[u8], id: u16) -> Option<u16> {
    let header = Header::read(&mut BinDecoder::new(response)).ok()?;
    let meta = header.metadata;
    (meta.id == id && meta.message_type == MessageType::Response)
        .then(|| u16::from(meta.response_code))
}

/// One connection's closed loop: take a number, send the query, wait for the reply.
fn connection_loop(
    workload: &Workload,
    next: &AtomicU64,
    start_line: &Barrier,
    clock: &OnceLock<Instant>,
) -> Tally {
    let mut tally = Tally {
        micros: Vec::with_capacity(1 << 16),
        ..Tally::default()
    };
    // A failure here is not counted: the loop tries again, and counts that.
    let mut conn = open(workload).ok();
    let mut ever_open = conn.is_some();
    start_line.wait();
    let start = *clock.get_or_init(Instant::now);
    let deadline = workload.duration.map(|d| start + d);
    let mut line = Vec::with_capacity(128);
    let mut queries = Queries::new(workload);
    let mut buf = vec![0u8; dns_tcp::MAX_MESSAGE];
    let mut frame = Vec::new();
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        if workload.requests.is_some_and(|r| n - workload.first >= r) {
            break;
        }
        if conn.is_none() {
            if ever_open {
                tally.reconnects += 1;
            }
            match open(workload) {
                Ok(c) => {
                    conn = Some(c);
                    ever_open = true;
                }
                Err(_) => {
                    tally.errors.connect += 1;
                    thread::sleep(RECONNECT_PAUSE);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let id = n as u16;
        let sent = Instant::now();
        let answer = match c {
            Conn::Line(client) => {
                line.clear();
                let _ = write!(line, "{n}, ");
                workload.names.write(n, &mut line);
                let _ = write!(line, ", {}", workload.mode);
                match client.exchange_into(&line) {
                    Ok(reply) => reply_code(reply)
                        .map(Answer::Line)
                        .ok_or(Failure::Unparsable),
                    Err(e) => Err(Failure::from(&e)),
                }
            }
            Conn::Udp(socket) => match queries.message(n, id) {
                None => Err(Failure::Unparsable),
                Some(query) => socket
                    .send(&query)
                    .and_then(|_| socket.recv(&mut buf))
                    .map_err(Failure::from)
                    .and_then(|len| {
                        dns_rcode(&buf[..len], id)
                            .map(Answer::Dns)
                            .ok_or(Failure::Unparsable)
                    }),
            },
            Conn::Tcp(stream) => match queries.message(n, id) {
                None => Err(Failure::Unparsable),
                Some(query) => dns_tcp::write_message(stream, &query)
                    .map_err(Failure::from)
                    .and_then(|()| match dns_tcp::read_message(stream, &mut frame) {
                        Ok(Some(response)) => dns_rcode(response, id)
                            .map(Answer::Dns)
                            .ok_or(Failure::Unparsable),
                        Ok(None) => Err(Failure::Closed),
                        Err(e) => Err(Failure::from(e)),
                    }),
            },
        };
        match answer {
            Ok(answer) => {
                let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                tally.micros.push(micros);
                match answer {
                    Answer::Line(code) => tally.codes[code_index(code)] += 1,
                    Answer::Dns(rcode) => tally.rcodes[rcode_index(rcode)] += 1,
                }
            }
            Err(failure) => {
                match failure {
                    Failure::Timeout => tally.errors.timeout += 1,
                    Failure::Closed => tally.errors.closed += 1,
                    Failure::Unparsable => tally.errors.unparsable += 1,
                }
                // After a timeout the late reply would be taken for the next one's: start
                // over on a fresh connection (or UDP socket), as after any other failure.
                conn = None;
            }
        }
    }
    if let Some(Conn::Line(c)) = conn {
        if workload.client_id.is_some() {
            // Ends the session politely (the original's local server expects it).
            let _ = c.quit();
        }
    }
    tally
}

/// The code a reply starts with: `0X00, server, text` gives `0X00`. Only the code is
/// looked at (the original's replies carry stray line ends in their text).
fn reply_code(reply: &[u8]) -> Option<Code> {
    let first = reply.split(|&b| b == b',').next()?;
    std::str::from_utf8(first).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timed run reports at least its duration: the connections' deadlines and the
    /// run's clock start at one instant (each thread once took its own, and under load
    /// the report came out shorter than the run, its rate higher than measured).
    #[test]
    fn timed_run_lasts_at_least_its_duration() {
        let ceiling = crate::tools::bench::ceiling::Ceiling::start(false, true).unwrap();
        let duration = Duration::from_millis(50);
        for _ in 0..5 {
            let mut w = Workload::new(ceiling.addr());
            w.connections = 8;
            w.duration = Some(duration);
            let report = measure(&w);
            assert!(report.queries > 0);
            assert!(report.elapsed >= duration, "{:?}", report.elapsed);
        }
    }

    #[test]
    fn reply_codes_of_both_framings() {
        assert_eq!(reply_code(b"0X00, local, 1.2.3.4"), Some(Code::Cached));
        assert_eq!(
            reply_code(b"0XFF, default_local, Host not found"),
            Some(Code::NotFound)
        );
        assert_eq!(
            reply_code(b"0X01, default_local, 1.2.3.4\n"),
            Some(Code::Resolved)
        );
        assert_eq!(reply_code(b"You are connected"), None);
        assert_eq!(reply_code(b""), None);
    }

    #[test]
    fn a_server_that_is_down_counts_connect_errors() {
        // The local end of a connection holds its port without listening on it: a
        // connect there is refused, and no other socket can take the port meanwhile.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _accepted = listener.accept().unwrap();
        let mut workload = Workload::new(held.local_addr().unwrap());
        workload.duration = None;
        workload.requests = Some(3);
        let report = measure(&workload);
        assert_eq!(report.queries, 0);
        assert_eq!(report.errors.connect, 3);
    }
}
