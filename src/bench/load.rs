//! The closed loop: one thread per connection, each with one query in flight, sending
//! the next as soon as the reply is in.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::{code_index, Errors, Latency, Report, Workload};
use crate::client::{Client, ClientError};
use crate::protocol::Code;

/// How long a connection thread waits before trying again after a failed connect, so
/// that a server that is down does not turn the run into a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What one connection thread counted.
#[derive(Default)]
struct Tally {
    micros: Vec<u32>,
    codes: [u64; 6],
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
            report.errors.add(&tally.errors);
            report.reconnects += tally.reconnects;
        }
        report.queries = report.codes.iter().sum();
        report.latency = Latency::from_micros(&mut micros);
        report
    })
}

/// Connects, and sends the id line and checks the greeting if the workload has an id.
fn open(workload: &Workload) -> Result<Client, ClientError> {
    let mut client = Client::open_addr(workload.server, workload.legacy, workload.timeout)?;
    if let Some(id) = &workload.client_id {
        client.hello(id)?;
    }
    Ok(client)
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
    let mut client = open(workload).ok();
    let mut ever_open = client.is_some();
    start_line.wait();
    let start = *clock.get_or_init(Instant::now);
    let deadline = workload.duration.map(|d| start + d);
    let mut line = Vec::with_capacity(128);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        if workload.requests.is_some_and(|r| n - workload.first >= r) {
            break;
        }
        if client.is_none() {
            if ever_open {
                tally.reconnects += 1;
            }
            match open(workload) {
                Ok(c) => {
                    client = Some(c);
                    ever_open = true;
                }
                Err(_) => {
                    tally.errors.connect += 1;
                    thread::sleep(RECONNECT_PAUSE);
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        line.clear();
        let _ = write!(line, "{n}, ");
        workload.names.write(n, &mut line);
        let _ = write!(line, ", {}", workload.mode);
        let sent = Instant::now();
        let code = match c.exchange_into(&line) {
            Ok(reply) => reply_code(reply).ok_or(Failure::Unparsable),
            Err(e) => Err(Failure::from(&e)),
        };
        match code {
            Ok(code) => {
                let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                tally.micros.push(micros);
                tally.codes[code_index(code)] += 1;
            }
            Err(failure) => {
                match failure {
                    Failure::Timeout => tally.errors.timeout += 1,
                    Failure::Closed => tally.errors.closed += 1,
                    Failure::Unparsable => tally.errors.unparsable += 1,
                }
                // After a timeout the late reply would be taken for the next one's: start
                // over on a fresh connection, as after any other failure.
                client = None;
            }
        }
    }
    if let Some(c) = client {
        if workload.client_id.is_some() {
            // Ends the session politely (the original's local server expects it).
            let _ = c.quit();
        }
    }
    tally
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
        let ceiling = crate::bench::ceiling::Ceiling::start(false, true).unwrap();
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
