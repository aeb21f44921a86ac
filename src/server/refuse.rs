//! Refusing a TCP connection in the protocol it speaks, without a thread of its own.
//!
//! A connection over a cap (`--max-connections`, `--max-connections-per-ip`) or from a
//! client the access list does not allow is refused, but how depends on what it speaks:
//! a line-protocol client is told in a line (`0XFE, NAME, Server busy` or
//! `0XFE, NAME, Access refused`), a DNS client gets a DNS message (SERVFAIL when busy,
//! REFUSED when not allowed, with its ID and question), never text it would read as a
//! length prefix. Which one it speaks shows in its first byte, as for any connection
//! ([`is_line_protocol`]); that byte may not have arrived when the connection is
//! accepted.
//!
//! Waiting for it must hold neither the accepting thread nor a thread per connection
//! (over the cap is exactly when there are none to spare), so one [`Refuser`] thread per
//! server watches every connection being refused at once (`poll`), each for at most
//! [`REFUSE_WAIT`]:
//! - its first byte is a line's: the refusal line, and the connection is closed;
//! - it is a DNS message's: once the whole message is in (a query is small, and a
//!   client sends it as soon as it is connected), the DNS refusal; a message still
//!   incomplete at the deadline, or longer than [`REFUSE_BUFFER`], is just closed;
//! - nothing came: the refusal line. A DNS client always speaks first; a silent peer is
//!   a line-protocol client waiting to be greeted (`nc`), as before there was DNS.
//!
//! At most [`MAX_REFUSING`] connections are watched at once; past that (a flood), a
//! connection to refuse is closed at once.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::dns::answer::{answer, Answered, DnsService, DnsSettings, Transport};
use crate::dns::tcp;
use crate::line::frame::is_line_protocol;
use crate::line::message::{Code, Reply, ACCESS_REFUSED, BUSY};
use crate::model::{Outcome, Query, Recursion, Resolution};

/// How long a connection being refused has to show which protocol it speaks (and, for
/// DNS, to send its whole query).
pub const REFUSE_WAIT: Duration = Duration::from_millis(250);

/// The longest DNS message read from a connection being refused (a query is far
/// shorter); a longer one is closed unanswered.
pub const REFUSE_BUFFER: usize = 4096;

/// How many connections one server refuses at once; past it, they are closed at once.
pub const MAX_REFUSING: usize = 256;

/// How often the refusing thread looks for new connections while it watches others.
const TICK: Duration = Duration::from_millis(20);

/// Why a client is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Over `--max-connections` or `--max-connections-per-ip`: `Server busy`, SERVFAIL.
    Busy,
    /// Not in the access list (`--allow`): `Access refused`, REFUSED.
    Denied,
}

impl Why {
    /// The text of the line-protocol refusal, after `0XFE, NAME, `.
    pub fn text(self) -> &'static str {
        match self {
            Why::Busy => BUSY,
            Why::Denied => ACCESS_REFUSED,
        }
    }

    /// A few words for the log line of a DNS refusal.
    fn detail(self) -> &'static str {
        match self {
            Why::Busy => "server busy",
            Why::Denied => "not in --allow",
        }
    }
}

/// Refuses every query it is asked, as [`Why`] says, without looking anything up.
struct Refusing(Why);

impl DnsService for Refusing {
    fn recursion(&self, _rd: bool) -> Recursion {
        Recursion::CacheOnly
    }

    fn recursion_available(&self, _rd: bool) -> bool {
        false
    }

    fn resolve(&self, _query: &Query) -> Resolution {
        Resolution::new(match self.0 {
            Why::Busy => Outcome::ServFail,
            Why::Denied => Outcome::Refused,
        })
    }
}

/// The DNS answer to `request` from a client refused for `why`: SERVFAIL (busy) or
/// REFUSED (not allowed), with the request's ID and question; as for any request, a
/// response or a message shorter than a header gets nothing, and a malformed one
/// FORMERR.
pub fn dns_refusal(
    request: &[u8],
    transport: Transport,
    settings: &DnsSettings,
    why: Why,
) -> Answered {
    let mut answered = answer(request, transport, settings, &Refusing(why));
    if answered.resolution.is_some() {
        answered.detail = why.detail().to_owned();
    }
    answered
}

/// A connection being refused.
struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    why: Why,
    /// When it must have shown its protocol (and, for DNS, sent its whole query).
    deadline: Instant,
    /// What it sent so far.
    got: Vec<u8>,
}

/// One server's refusing thread: see the module documentation. Dropping it stops the
/// thread once the connections it holds are refused.
pub struct Refuser {
    queue: Option<SyncSender<Pending>>,
    thread: Option<JoinHandle<()>>,
}

impl Refuser {
    /// Starts the thread of the server named `name`. Should it fail to start, every
    /// connection to refuse is closed at once (and the failure is logged).
    pub fn start(name: &str, settings: DnsSettings) -> Refuser {
        let (queue, arrivals) = mpsc::sync_channel(MAX_REFUSING);
        let server = name.to_owned();
        let started = thread::Builder::new()
            .name(format!("{name}-refuse"))
            .stack_size(super::CONNECTION_STACK)
            .spawn(move || run(&arrivals, &server, &settings));
        match started {
            Ok(thread) => Refuser {
                queue: Some(queue),
                thread: Some(thread),
            },
            Err(e) => {
                log::error!("{name}: cannot start the thread that refuses connections: {e}");
                Refuser {
                    queue: None,
                    thread: None,
                }
            }
        }
    }

    /// Refuses `stream` (from `peer`) for `why`, in the protocol it speaks; returns at
    /// once.
    pub fn refuse(&self, stream: TcpStream, peer: SocketAddr, why: Why) {
        let Some(queue) = &self.queue else {
            close(&stream);
            return;
        };
        // Reads from here on must not block the refusing thread.
        if stream.set_nonblocking(true).is_err() {
            close(&stream);
            return;
        }
        let pending = Pending {
            stream,
            peer,
            why,
            deadline: Instant::now() + REFUSE_WAIT,
            got: Vec::new(),
        };
        if let Err(TrySendError::Full(p) | TrySendError::Disconnected(p)) = queue.try_send(pending)
        {
            log::debug!("closing {}: too many connections being refused", p.peer);
            close(&p.stream);
        }
    }
}

impl Drop for Refuser {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The refusing thread: takes connections from `arrivals` and refuses each as soon as
/// it shows what it speaks, or at its deadline; returns once `arrivals` is closed and
/// every connection it held is refused.
fn run(arrivals: &Receiver<Pending>, name: &str, settings: &DnsSettings) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut open = true;
    while open || !pending.is_empty() {
        if pending.is_empty() {
            match arrivals.recv() {
                Ok(p) => pending.push(p),
                Err(_) => return,
            }
        }
        while open {
            match arrivals.try_recv() {
                Ok(p) if pending.len() < MAX_REFUSING => pending.push(p),
                Ok(p) => {
                    log::debug!("{name}: closing {}: too many being refused", p.peer);
                    close(&p.stream);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let now = Instant::now();
        let next = pending.iter().map(|p| p.deadline).min().unwrap_or(now);
        let wait = next.saturating_duration_since(now).min(TICK);
        let ready = readable(&pending, wait);
        let now = Instant::now();
        let mut i = 0;
        pending.retain_mut(|p| {
            let was_ready = ready.get(i).copied().unwrap_or(true);
            i += 1;
            !(was_ready || now >= p.deadline) || !step(p, now, name, settings)
        });
    }
}

/// Which of `pending` have something to read (or an error, or an end) within `wait`.
/// Should `poll` fail, all of them, as a read will tell.
fn readable(pending: &[Pending], wait: Duration) -> Vec<bool> {
    let mut fds: Vec<libc::pollfd> = pending
        .iter()
        .map(|p| libc::pollfd {
            fd: p.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd
    // structures for the whole call, and each fd stays open (owned by `pending`).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if n < 0 {
        return vec![true; pending.len()];
    }
    fds.iter().map(|f| f.revents != 0).collect()
}

/// Reads what `p` has sent and refuses it if that (or its deadline, at `now`) says how;
/// returns whether it is done with.
fn step(p: &mut Pending, now: Instant, name: &str, settings: &DnsSettings) -> bool {
    let mut ended = false;
    let mut chunk = [0u8; 1024];
    while p.got.len() < REFUSE_BUFFER + 2 {
        let room = (REFUSE_BUFFER + 2 - p.got.len()).min(chunk.len());
        match (&p.stream).read(&mut chunk[..room]) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(n) => p.got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => {
                ended = true;
                break;
            }
        }
    }
    let late = now >= p.deadline;
    let line_client = match p.got.first() {
        Some(&first) => is_line_protocol(first),
        // Silent: a line-protocol client waiting for its greeting, unless it has gone.
        None => !ended && late,
    };
    if line_client {
        let line = format!("{}\n", Reply::new(Code::Failure, name, p.why.text()));
        let _ = (&p.stream).write_all(line.as_bytes());
        log::debug!("{name}: {}: refused in a line", p.peer);
        close(&p.stream);
        return true;
    }
    if let Some(request) = whole_message(&p.got) {
        let answered = dns_refusal(request, Transport::Tcp, settings, p.why);
        if let Some(response) = &answered.response {
            let mut out = Vec::with_capacity(response.len() + 2);
            if tcp::write_message(&mut out, response).is_ok() {
                let _ = (&p.stream).write_all(&out);
            }
        }
        log::debug!("{name}: {}: refused dns/tcp {answered}", p.peer);
        close(&p.stream);
        return true;
    }
    let too_long = p.got.len() > REFUSE_BUFFER + 1;
    if ended || late || too_long {
        log::debug!("{name}: {}: closed, no whole DNS message to refuse", p.peer);
        close(&p.stream);
        return true;
    }
    false
}

/// The DNS message at the front of `bytes`, if it is all there.
fn whole_message(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [hi, lo, rest @ ..] => rest.get(..usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

/// Closes both directions; what was written is still delivered.
fn close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, ResponseCode};
    use std::net::TcpListener;

    /// A connection whose server side `refuser` refuses for `why`; the client's side.
    fn refused(refuser: &Refuser, why: Why) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (server, peer) = listener.accept().unwrap();
        refuser.refuse(server, peer, why);
        client
    }

    fn read_all(mut stream: &TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        stream.read_to_end(&mut got).expect("closed within 10 s");
        got
    }

    /// A query for `com. A` with ID `id`, framed for TCP.
    fn framed_query(id: u16) -> Vec<u8> {
        let mut q = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03com\x00\x00\x01\x00\x01");
        let mut out = Vec::new();
        tcp::write_message(&mut out, &q).unwrap();
        out
    }

    #[test]
    fn each_protocol_is_refused_in_its_own() {
        let refuser = Refuser::start("test", DnsSettings::default());
        // A line client, whether it speaks first or waits to be greeted.
        let line = refused(&refuser, Why::Busy);
        (&line).write_all(b"alice\n").unwrap();
        let silent = refused(&refuser, Why::Denied);
        let started = Instant::now();
        // DNS clients: their whole query answered, with its ID.
        let busy = refused(&refuser, Why::Busy);
        (&busy).write_all(&framed_query(0x1234)).unwrap();
        let denied = refused(&refuser, Why::Denied);
        (&denied).write_all(&framed_query(0x4321)).unwrap();
        // A DNS query that never comes whole, and a peer that leaves: closed.
        let partial = refused(&refuser, Why::Busy);
        (&partial).write_all(&[0, 40, 1, 2]).unwrap();
        let gone = refused(&refuser, Why::Busy);
        gone.shutdown(Shutdown::Write).unwrap();

        assert_eq!(read_all(&line), b"0XFE, test, Server busy\n");
        for (stream, id, rcode) in [
            (&busy, 0x1234, ResponseCode::ServFail),
            (&denied, 0x4321, ResponseCode::Refused),
        ] {
            let got = read_all(stream);
            let msg = Message::from_vec(&got[2..]).unwrap();
            assert_eq!(
                usize::from(u16::from_be_bytes([got[0], got[1]])),
                got.len() - 2
            );
            assert_eq!((msg.metadata.id, msg.metadata.response_code), (id, rcode));
            assert_eq!(msg.queries.len(), 1, "the question is echoed");
        }
        assert_eq!(read_all(&silent), b"0XFE, test, Access refused\n");
        assert!(started.elapsed() >= REFUSE_WAIT - Duration::from_millis(20));
        assert_eq!(read_all(&partial), b"");
        assert_eq!(read_all(&gone), b"");
        // Dropping it waits for its thread, which has nothing left to refuse.
        drop(refuser);
    }
}
