//! An outside closed-loop load generator for the line protocol: nothing from dnsd is
//! used, so its figures check `dnsd bench`'s own.
//!
//!     loadgen HOST:PORT [--connections N] [--seconds S] [--pattern P] [--mode R|I]
//!                       [--first N]
//!
//! Each of N connections sends its id line (`loadgenI`), reads the greeting, then sends
//! one request (`N, NAME, MODE`, where NAME is the pattern with `{n}` replaced by a
//! number never used before in the run, counting up from `--first`) and waits for its
//! reply before sending the next, for S seconds. Prints one line of JSON on stdout:
//! `{"connections":N,"secs":S,"queries":Q,"qps":X,"p50_us":A,"p99_us":B,"errors":E,
//! "codes":{"0X00":C,...}}`. A reply that is not a line, or a connection lost, is an
//! error; the connection is then not used again.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

struct Args {
    addr: String,
    connections: u64,
    seconds: f64,
    pattern: String,
    mode: String,
    first: u64,
}

#[derive(Default)]
struct Tally {
    queries: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    codes: BTreeMap<String, u64>,
}

fn main() {
    let args = parse_args();
    let stop = Arc::new(AtomicBool::new(false));
    // Each connection numbers its names from its own block of a billion.
    let threads: Vec<_> = (0..args.connections)
        .map(|i| {
            let addr = args.addr.clone();
            let pattern = args.pattern.clone();
            let mode = args.mode.clone();
            let stop = stop.clone();
            let first = args.first + i * 1_000_000_000;
            thread::spawn(move || connection(&addr, i, &pattern, &mode, first, &stop))
        })
        .collect();
    let started = Instant::now();
    thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::SeqCst);
    let mut total = Tally::default();
    for thread in threads {
        let tally = thread.join().unwrap_or_else(|_| Tally {
            errors: 1,
            ..Tally::default()
        });
        total.queries += tally.queries;
        total.errors += tally.errors;
        total.latencies_us.extend(tally.latencies_us);
        for (code, n) in tally.codes {
            *total.codes.entry(code).or_default() += n;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let at = |q: f64| -> u32 {
        let v = &total.latencies_us;
        if v.is_empty() {
            0
        } else {
            v[((v.len() - 1) as f64 * q).round() as usize]
        }
    };
    let codes: Vec<String> = total
        .codes
        .iter()
        .map(|(code, n)| format!("\"{code}\":{n}"))
        .collect();
    println!(
        "{{\"connections\":{},\"secs\":{secs:.3},\"queries\":{},\"qps\":{:.0},\"p50_us\":{},\"p99_us\":{},\"errors\":{},\"codes\":{{{}}}}}",
        args.connections,
        total.queries,
        total.queries as f64 / secs,
        at(0.5),
        at(0.99),
        total.errors,
        codes.join(",")
    );
}

fn connection(
    addr: &str,
    i: u64,
    pattern: &str,
    mode: &str,
    first: u64,
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally::default();
    let Ok(stream) = TcpStream::connect(addr) else {
        tally.errors += 1;
        return tally;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        tally.errors += 1;
        return tally;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(256);
    let mut request = Vec::with_capacity(256);
    if writeln!(writer, "loadgen{i}").is_err()
        || reader.read_until(b'\n', &mut line).map_or(true, |n| n == 0)
    {
        tally.errors += 1;
        return tally;
    }
    let split = pattern.split_once("{n}");
    let mut n = first;
    while !stop.load(Ordering::Relaxed) {
        request.clear();
        let _ = match split {
            Some((before, after)) => writeln!(request, "{n}, {before}{n}{after}, {mode}"),
            None => writeln!(request, "{n}, {pattern}, {mode}"),
        };
        n += 1;
        let sent = Instant::now();
        line.clear();
        if writer.write_all(&request).is_err()
            || reader.read_until(b'\n', &mut line).map_or(true, |n| n == 0)
        {
            tally.errors += 1;
            return tally;
        }
        let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
        tally.latencies_us.push(us);
        tally.queries += 1;
        let code = String::from_utf8_lossy(line.get(..4).unwrap_or(&line)).into_owned();
        *tally.codes.entry(code).or_default() += 1;
    }
    tally
}

fn parse_args() -> Args {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut args = Args {
        addr: String::new(),
        connections: 1,
        seconds: 3.0,
        pattern: "www.nx{n}.com".into(),
        mode: "R".into(),
        // Names not asked before, even of a server that ran the last run: its cache
        // keeps the negative answers for a while.
        first: (now % 1_000_000) * 1_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--connections" => args.connections = number(&value("--connections")),
            "--seconds" => {
                args.seconds = value("--seconds")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --seconds"))
            }
            "--pattern" => args.pattern = value("--pattern"),
            "--mode" => args.mode = value("--mode"),
            "--first" => args.first = number(&value("--first")),
            "-h" | "--help" => usage(""),
            a if a.starts_with('-') => usage(&format!("unknown argument {a:?}")),
            a => args.addr = a.to_owned(),
        }
    }
    if args.addr.is_empty() {
        usage("no HOST:PORT");
    }
    args
}

fn number(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("not a number: {s:?}")))
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("loadgen: {problem}");
    }
    eprintln!(
        "usage: loadgen HOST:PORT [--connections N] [--seconds S] [--pattern P] [--mode R|I] [--first N]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}
