//! The client side of the line protocol, written once: [`Client`] is what `dnsd client`,
//! `dnsd bench` and the soak (`examples/soak.rs`) speak through, and the library API (see
//! `examples/`); [`run`] is `dnsd client`, which reads lines from a terminal or a script.
//!
//! [`Client::exchange_into`] is the load generator's hot path: it sends a line and lends
//! the reply's bytes out of the connection's buffer, allocating nothing.
//! [`Client::exchange`] and [`Client::query`] are the friendly forms.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::line::frame::{Connection, FrameError, FrameLimits};
use crate::line::message::{Mode, Reply, Request, GREETING, QUIT};
use crate::model::name::Name;
use crate::net::{is_timeout, resolve_host_port};

/// The longest reply line read, in bytes.
const MAX_REPLY: usize = 4096;
/// The longest reply the original's framing reads at once (its `recv(1024)`).
const LEGACY_READ: usize = 1024;

/// A connection to a dnsd server (or the original's), in dnsd's framing or the
/// original's.
pub struct Client {
    framing: Framing,
    timeout: Duration,
    next_tag: u64,
}

enum Framing {
    /// `\n`-terminated lines, through the same framing code the servers use.
    Lines(Connection),
    /// The original's: no line end, one message per write, a reply is what one read
    /// gets.
    Legacy(TcpStream, Box<[u8]>),
}

/// Why a query got no reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("no reply from the server within {0:?}")]
    Timeout(Duration),
    #[error("the server sent an unexpected line: {0:?}")]
    Unexpected(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ClientError {
    /// The connection was closed or reset by the server.
    pub fn is_closed(&self) -> bool {
        match self {
            ClientError::Closed => true,
            ClientError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// No reply (or no room to send) within the timeout.
    pub fn is_timeout(&self) -> bool {
        match self {
            ClientError::Timeout(_) => true,
            ClientError::Io(e) => is_timeout(e),
            _ => false,
        }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Timeout => ClientError::Timeout(Duration::ZERO),
            FrameError::Truncated => ClientError::Closed,
            FrameError::TooLong(n) => ClientError::Unexpected(format!("a line over {n} bytes")),
            FrameError::Io(e) => ClientError::Io(e),
        }
    }
}

/// Connects to the first of `addrs` that answers, within `timeout` each.
fn connect(addrs: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(timeout))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Client {
    /// Connects to `server` (`HOST:PORT`), sends `id` and checks the greeting. `timeout`
    /// bounds the connect and every reply.
    pub fn connect(server: &str, id: &str, timeout: Duration) -> Result<Client, ClientError> {
        let mut client = Client::open(server, false, timeout)?;
        client.hello(id)?;
        Ok(client)
    }

    /// Connects to `server` (`HOST:PORT`, trying each address a host name has) without
    /// sending anything; `legacy` selects the original's framing.
    pub fn open(server: &str, legacy: bool, timeout: Duration) -> Result<Client, ClientError> {
        let addrs =
            resolve_host_port(server).map_err(|e| ClientError::Connect(server.to_owned(), e))?;
        let stream =
            connect(&addrs, timeout).map_err(|e| ClientError::Connect(server.to_owned(), e))?;
        Client::over(stream, legacy, timeout)
    }

    /// [`Client::open`] on an address already looked up (no resolver call: the load
    /// generator reconnects in its measured loop).
    pub fn open_addr(
        addr: SocketAddr,
        legacy: bool,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let stream =
            connect(&[addr], timeout).map_err(|e| ClientError::Connect(addr.to_string(), e))?;
        Client::over(stream, legacy, timeout)
    }

    fn over(stream: TcpStream, legacy: bool, timeout: Duration) -> Result<Client, ClientError> {
        let framing = if legacy {
            stream.set_read_timeout(Some(timeout))?;
            Framing::Legacy(stream, vec![0; LEGACY_READ].into_boxed_slice())
        } else {
            let limits = FrameLimits {
                max_line: MAX_REPLY,
                idle_timeout: timeout,
                legacy: false,
            };
            Framing::Lines(Connection::new(stream, limits))
        };
        Ok(Client {
            framing,
            timeout,
            next_tag: 1,
        })
    }

    /// Sends the id line and checks that the greeting comes back.
    pub fn hello(&mut self, id: &str) -> Result<(), ClientError> {
        let greeting = self.exchange_into(id.as_bytes())?;
        if greeting != GREETING.as_bytes() {
            return Err(ClientError::Unexpected(
                String::from_utf8_lossy(greeting).into_owned(),
            ));
        }
        Ok(())
    }

    /// Sends one message (`line`, without a line end) and returns the reply without its
    /// line end, lent from the connection's buffer: nothing is allocated. In the
    /// original's framing the reply is what one read got, with stray line ends trimmed.
    pub fn exchange_into(&mut self, line: &[u8]) -> Result<&[u8], ClientError> {
        let timeout = self.timeout;
        match &mut self.framing {
            Framing::Lines(conn) => {
                conn.write_line(line)?;
                match conn.read_line() {
                    Ok(Some(reply)) => Ok(reply),
                    Ok(None) => Err(ClientError::Closed),
                    Err(FrameError::Timeout) => Err(ClientError::Timeout(timeout)),
                    Err(e) => Err(e.into()),
                }
            }
            Framing::Legacy(stream, buf) => {
                stream.write_all(line)?;
                match stream.read(buf) {
                    Ok(0) => Err(ClientError::Closed),
                    Ok(n) => Ok(buf[..n].trim_ascii()),
                    Err(e) if is_timeout(&e) => Err(ClientError::Timeout(timeout)),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Connects to `addr` by `deadline`, in dnsd's framing, for the questions a server
    /// asks another ([`crate::line::pool`]): replies up to `max_line` bytes, writes
    /// bounded by `timeout`.
    pub fn dial(
        addr: SocketAddr,
        deadline: Instant,
        max_line: usize,
        timeout: Duration,
    ) -> io::Result<Client> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let stream = TcpStream::connect_timeout(&addr, left)?;
        let _ = stream.set_write_timeout(Some(timeout));
        let limits = FrameLimits {
            max_line,
            idle_timeout: timeout,
            legacy: false,
        };
        Ok(Client {
            framing: Framing::Lines(Connection::new(stream, limits)),
            timeout,
            next_tag: 1,
        })
    }

    /// [`exchange_into`](Self::exchange_into) with the reply due by `deadline` rather
    /// than within the client's timeout.
    pub fn exchange_until(&mut self, line: &[u8], deadline: Instant) -> Result<&[u8], ClientError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Timeout(Duration::ZERO));
        }
        if let Framing::Lines(conn) = &mut self.framing {
            // Whole 10 ms steps: the socket's timeout then stays the same from one
            // query to the next, and `Connection` skips the system call that would set
            // it again.
            conn.set_idle_timeout(whole_steps(left));
        }
        self.exchange_into(line)
    }

    /// Bytes read from the server but not yet returned as a reply: a line nobody asked
    /// for, if any.
    pub fn buffered(&self) -> usize {
        match &self.framing {
            Framing::Lines(conn) => conn.buffered(),
            Framing::Legacy(..) => 0,
        }
    }

    /// Whether nothing waits to be read: neither a line nobody asked for (which would
    /// be taken as the answer to the next question) nor the end of the stream (the
    /// server closed or restarted). Only then may a kept connection be used again.
    ///
    /// One non-blocking peek (`MSG_PEEK | MSG_DONTWAIT`): one system call per query, where
    /// switching the socket to non-blocking and back took two more.
    pub fn is_quiet(&self) -> bool {
        use std::os::fd::AsRawFd;
        let (stream, buffered) = match &self.framing {
            Framing::Lines(conn) => (conn.stream(), conn.buffered()),
            Framing::Legacy(stream, _) => (stream, 0),
        };
        if buffered > 0 {
            return false;
        }
        let mut byte = 0u8;
        // SAFETY: `recv` writes at most 1 byte into `byte`, which lives across the call;
        // the descriptor belongs to `stream`, open for as long as `self` is borrowed.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }

    /// Sends one message and returns the reply, without its line end.
    pub fn exchange(&mut self, line: &str) -> Result<String, ClientError> {
        let reply = self.exchange_into(line.as_bytes())?;
        Ok(String::from_utf8_lossy(reply).into_owned())
    }

    /// Asks for `name` in `mode` and returns the parsed reply.
    pub fn query(&mut self, name: &Name, mode: Mode) -> Result<Reply, ClientError> {
        let request = Request::new(self.next_tag.to_string(), name.clone(), mode);
        self.next_tag += 1;
        let line = self.exchange(&request.to_string())?;
        Reply::parse(line.as_bytes()).map_err(|_| ClientError::Unexpected(line))
    }

    /// Ends the session with `q`.
    pub fn quit(mut self) -> Result<(), ClientError> {
        match &mut self.framing {
            Framing::Lines(conn) => conn.write_line(QUIT.as_bytes())?,
            Framing::Legacy(stream, _) => stream.write_all(QUIT.as_bytes())?,
        }
        Ok(())
    }
}

/// `left` rounded down to a whole number of 10 ms steps (unless it is less than one).
fn whole_steps(left: Duration) -> Duration {
    const STEP: Duration = Duration::from_millis(10);
    if left <= STEP {
        left
    } else {
        STEP * (left.as_millis() / STEP.as_millis()) as u32
    }
}

/// The local server `dnsd client` talks to unless `--server` says otherwise.
pub const DEFAULT_SERVER: &str = "127.0.0.1:5352";
/// How long `dnsd client` waits for a reply unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `dnsd client`'s settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub id: String,
    pub server: String,
    /// Speak the original's framing: no line end, one message per write, one read per
    /// reply.
    pub legacy: bool,
    pub timeout: Duration,
}

/// Turns an input line into a request line: `TAG, NAME, MODE` is sent as it is; the
/// short form `NAME [MODE]` gets tag `n` and mode R by default.
pub fn expand_line(line: &str, tag: u64) -> String {
    if line.contains(',') {
        return line.to_owned();
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        [name] => format!("{tag}, {name}, R"),
        [name, mode] => format!("{tag}, {name}, {mode}"),
        _ => line.to_owned(),
    }
}

/// Why `dnsd client` stopped (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The server could not be reached, or stopped answering.
    #[error("{server}: {source}")]
    Server { server: String, source: ClientError },
    #[error("cannot read the input: {0}")]
    Input(#[source] io::Error),
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
}

/// `dnsd client`: sends the id, then each input line, printing every reply line. A
/// prompt `ID >> ` is shown when `interactive`.
pub fn run(
    config: &ClientConfig,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    interactive: bool,
) -> Result<(), SessionError> {
    let fail = |source: ClientError| SessionError::Server {
        server: config.server.clone(),
        source,
    };
    let out_err = SessionError::Output;
    let (mut client, greeting) = session(config).map_err(fail)?;
    writeln!(output, "{greeting}").map_err(out_err)?;
    let mut tag = 0;
    let mut line = String::new();
    loop {
        if interactive {
            write!(output, "{} >> ", config.id).map_err(out_err)?;
            output.flush().map_err(out_err)?;
        }
        line.clear();
        if input.read_line(&mut line).map_err(SessionError::Input)? == 0 {
            break;
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == QUIT {
            break;
        }
        tag += 1;
        let request = expand_line(text, tag);
        let reply = match client.exchange(&request) {
            Ok(reply) => reply,
            // The server ends sessions that stay silent past its idle timeout (30 s by
            // default), which a person at the prompt easily does: start a new session
            // and ask again (a query can safely be asked twice).
            Err(e) if e.is_closed() => {
                eprintln!("(the server had closed the session; reconnecting)");
                client = session(config).map_err(fail)?.0;
                client.exchange(&request).map_err(fail)?
            }
            Err(e) => return Err(fail(e)),
        };
        writeln!(output, "{reply}").map_err(out_err)?;
        output.flush().map_err(out_err)?;
    }
    // The server may already have closed the session; nothing is lost either way.
    let _ = client.quit();
    Ok(())
}

/// Opens a session: connects and sends the id; returns the client and the greeting.
fn session(config: &ClientConfig) -> Result<(Client, String), ClientError> {
    let mut client = Client::open(&config.server, config.legacy, config.timeout)?;
    let greeting = client.exchange(&config.id)?;
    Ok((client, greeting))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_short_forms() {
        assert_eq!(expand_line("www.google.com", 3), "3, www.google.com, R");
        assert_eq!(expand_line("nasa.gov I", 4), "4, nasa.gov, I");
        assert_eq!(expand_line("1, a.com, R", 5), "1, a.com, R");
        assert_eq!(expand_line("a b c", 6), "a b c");
    }
}
