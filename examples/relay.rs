//! The yardstick for a miss: one stage of a chain of do-nothing relays, as a process of
//! its own. Nothing from dnsd is used, so that it measures only what the machine gives a
//! thread-per-connection server that passes lines on.
//!
//!     relay [--to HOST:PORT [--then HOST:PORT]] [--greet]
//!
//! Listens on a free loopback port and prints `relay: listening on ADDR` on stderr. Each
//! connection gets a thread and, with `--to`, one connection of its own to the next
//! stage: every line read is written there, and the line that comes back is written to
//! the client. Without `--to` the stage is the last one and answers every line with a
//! fixed `0X00` reply. With `--greet`, the first line of each connection (a client's id
//! line) is answered with the local server's greeting instead of being passed on.
//!
//! With `--then`, each line also goes to a second server once the first has answered,
//! and that second reply is the one passed back: the shape of a miss in mode I, where the
//! local server asks the root and then the TLD server itself (a hub), rather than a chain.
//!
//! `scripts/bench.sh` starts three of them (`relay --to B --greet`, `relay --to C`,
//! `relay`) beside the hierarchy it measures: a miss at the local server crosses three
//! servers, so does a line through the chain.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

const GREETING: &[u8] = b"You are connected to the Server\n";
const REPLY: &[u8] = b"0X00, relay, 127.0.0.1\n";

fn main() {
    let mut to: Option<SocketAddr> = None;
    let mut then: Option<SocketAddr> = None;
    let mut greet = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--to" => {
                let addr = args.next().and_then(|a| a.parse().ok());
                to = Some(addr.unwrap_or_else(|| usage("--to needs HOST:PORT")));
            }
            "--then" => {
                let addr = args.next().and_then(|a| a.parse().ok());
                then = Some(addr.unwrap_or_else(|| usage("--then needs HOST:PORT")));
            }
            "--greet" => greet = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if then.is_some() && to.is_none() {
        usage("--then needs --to");
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail("bind", e));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail("local_addr", e));
    eprintln!("relay: listening on {addr}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        thread::spawn(move || {
            let _ = serve(stream, to, then, greet);
        });
    }
}

type Next = (BufReader<TcpStream>, TcpStream);

/// A connection of its own to the next server.
fn connect(to: Option<SocketAddr>) -> std::io::Result<Option<Next>> {
    let Some(addr) = to else { return Ok(None) };
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    Ok(Some((BufReader::new(stream.try_clone()?), stream)))
}

/// Writes `line` to the next server and reads its reply into `line`; false at its end.
fn ask((reader, writer): &mut Next, line: &mut Vec<u8>) -> std::io::Result<bool> {
    writer.write_all(line)?;
    line.clear();
    Ok(reader.read_until(b'\n', line)? > 0)
}

fn serve(
    client: TcpStream,
    to: Option<SocketAddr>,
    then: Option<SocketAddr>,
    greet: bool,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut next = connect(to)?;
    let mut after = connect(then)?;
    let mut writer = client.try_clone()?;
    let mut reader = BufReader::new(client);
    let mut line = Vec::with_capacity(256);
    let mut request = Vec::with_capacity(256);
    let mut greeted = !greet;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if !greeted {
            greeted = true;
            writer.write_all(GREETING)?;
            continue;
        }
        match &mut next {
            None => writer.write_all(REPLY)?,
            Some(next) => {
                request.clear();
                request.extend_from_slice(&line);
                if !ask(next, &mut line)? {
                    return Ok(());
                }
                if let Some(after) = &mut after {
                    line.clear();
                    line.extend_from_slice(&request);
                    if !ask(after, &mut line)? {
                        return Ok(());
                    }
                }
                writer.write_all(&line)?;
            }
        }
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("relay: {problem}");
    }
    eprintln!("usage: relay [--to HOST:PORT [--then HOST:PORT]] [--greet]");
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

fn fail(what: &str, e: std::io::Error) -> ! {
    eprintln!("relay: {what}: {e}");
    std::process::exit(1)
}
