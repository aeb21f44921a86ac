//! Limits, each a flag of the binary: the connection caps (in all and per client
//! address), the idle timeout (which also bounds how long one line or one DNS message
//! may take), the upstream timeout, the line length, their defaults in `--help`, and the
//! memory 1,000 idle connections cost.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;

use crate::bad_input::{rss_kib, Act, FakeUpstream};
use crate::harness::{
    connect_from, dns_frame, dns_id_rcode, dns_query, dns_tcp_refusal, run_dnsd, zones, ClosedPort,
    Hierarchy, Line, Proc, SLACK, WAIT,
};

/// The three servers as processes, started with `flags`: local (asking the in-process
/// hierarchy `h`), root (whose table lists `h`'s com server) and com.
struct Servers {
    local: Proc,
    root: Proc,
    tld: Proc,
    _dir: tempfile::TempDir,
}

impl Servers {
    fn start(h: &Hierarchy, flags: &[&str]) -> Servers {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("root.dat");
        let com = h.tld("com");
        std::fs::write(&table, format!("com {} {}\n", com.ip(), com.port())).unwrap();
        let root_arg = h.root.to_string();
        let with = |args: &[&str]| -> Vec<String> {
            args.iter().chain(flags).map(|s| s.to_string()).collect()
        };
        let start = |args: Vec<String>| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Proc::start(&args, dir.path())
        };
        let local = start(with(&[
            "local",
            "--port",
            "0",
            "--root",
            &root_arg,
            "--log-dir",
            ".",
        ]));
        let root = start(with(&["root", table.to_str().unwrap(), "--port", "0"]));
        let zone = zones("com.dat");
        let tld = start(with(&["tld", "com", zone.to_str().unwrap(), "--port", "0"]));
        Servers {
            local,
            root,
            tld,
            _dir: dir,
        }
    }

    /// (process, the id line local wants, a good request, its answer, the server's name)
    fn each(
        &self,
    ) -> [(
        &Proc,
        Option<&'static str>,
        &'static str,
        &'static str,
        &'static str,
    ); 3] {
        [
            (
                &self.local,
                Some("alice"),
                "1, www.google.com, I",
                "default_local, 142.250.72.4",
                "default_local",
            ),
            (
                &self.root,
                None,
                "1, www.google.com, R",
                "root, 142.250.72.4",
                "root",
            ),
            (
                &self.tld,
                None,
                "1, www.google.com, R",
                "com, 142.250.72.4",
                "com",
            ),
        ]
    }
}

/// Connects and, for local, sends the id; `None` if the server refused (busy).
fn session(addr: SocketAddr, id: Option<&str>) -> (Line, Option<String>) {
    let mut c = Line::connect(addr);
    let first = match id {
        Some(id) => {
            c.send(id);
            c.recv()
        }
        None => None,
    };
    (c, first)
}

#[test]
fn max_connections_refuses_past_the_cap_and_keeps_serving_the_others() {
    let h = Hierarchy::start();
    let s = Servers::start(&h, &["--max-connections", "2"]);
    for (p, id, good, answer, name) in s.each() {
        let busy = format!("0XFE, {name}, Server busy");
        let (mut a, first) = session(p.addr(), id);
        let (mut b, second) = session(p.addr(), id);
        if id.is_some() {
            assert_eq!(first.as_deref(), Some("You are connected to the Server"));
            assert_eq!(second.as_deref(), Some("You are connected to the Server"));
        }
        // Both are being served (so both were accepted before the third comes).
        assert!(a.ask(good).ends_with(answer));
        assert!(b.ask(good).ends_with(answer));
        let mut third = Line::connect(p.addr());
        assert_eq!(third.recv().as_deref(), Some(busy.as_str()), "{name}");
        assert!(third.closed());
        assert!(a.ask(good).ends_with(answer), "{name}");
        assert!(b.ask(good).ends_with(answer), "{name}");
        // A slot frees up once a connection ends.
        drop(a);
        let deadline = Instant::now() + WAIT;
        loop {
            let mut c = Line::connect(p.addr());
            let first = match id {
                Some(id) => {
                    c.send(id);
                    c.recv()
                }
                None => {
                    c.send(good);
                    c.recv()
                }
            };
            match first.as_deref() {
                Some(l) if l == busy => {}
                None => {}
                Some(l) => {
                    if id.is_some() {
                        assert_eq!(l, "You are connected to the Server");
                    } else {
                        assert!(l.ends_with(answer), "{name}: {l}");
                    }
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{name}: no slot freed up");
            thread::sleep(Duration::from_millis(10));
        }
        assert!(b.ask(good).ends_with(answer), "{name}");
    }
}

/// How long until the server closes `c`, asserting it does within `within`.
#[track_caller]
fn time_to_close(c: &mut Line, started: Instant, within: Duration) -> Duration {
    c.stream.set_read_timeout(Some(within)).unwrap();
    assert!(c.closed(), "not closed within {within:?}");
    started.elapsed()
}

#[test]
fn idle_timeout_closes_silent_and_trickling_peers() {
    let h = Hierarchy::start();
    let s = Servers::start(&h, &["--idle-timeout", "0.5"]);
    // Closed after the idle timeout (0.5 s), give or take a loaded machine.
    let slack = Duration::from_millis(500) + SLACK;
    for (p, id, good, answer, name) in s.each() {
        // Silent from the start.
        let started = Instant::now();
        let mut c = Line::connect(p.addr());
        let t = time_to_close(&mut c, started, slack);
        assert!(
            t >= Duration::from_millis(450),
            "{name}: closed after {t:?}"
        );
        // Silent after a request. Timed from before the request: the server's clock
        // starts when it has answered, which the reply reaches us some time after.
        let (mut c, first) = session(p.addr(), id);
        if id.is_some() {
            assert_eq!(first.as_deref(), Some("You are connected to the Server"));
        }
        let started = Instant::now();
        assert!(c.ask(good).ends_with(answer));
        let t = time_to_close(&mut c, started, slack);
        assert!(
            t >= Duration::from_millis(450),
            "{name}: closed after {t:?}"
        );
        // Trickling one byte every 100 ms, never a line end (after a first line, so the
        // original's unterminated framing is out of the question).
        let (mut c, _) = session(p.addr(), id);
        assert!(c.ask(good).ends_with(answer));
        let mut w = c.stream.try_clone().unwrap();
        let started = Instant::now();
        let trickler = thread::spawn(move || {
            for _ in 0..100 {
                if w.write_all(b"x").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        let t = time_to_close(&mut c, started, slack);
        assert!(
            t >= Duration::from_millis(450),
            "{name}: closed after {t:?}"
        );
        eprintln!("{name}: trickler closed after {t:?}");
        trickler.join().unwrap();
    }
}

#[test]
fn upstream_timeout_bounds_a_silent_or_unreachable_upstream() {
    let fake = FakeUpstream::start(Act::Silent);
    let dir = tempfile::tempdir().unwrap();
    let silent = fake.addr.to_string();
    let closed_port = ClosedPort::new();
    let closed = closed_port.addr.to_string();
    for root in [&silent, &closed] {
        let local = Proc::local(root, dir.path(), &["--upstream-timeout", "0.5"]);
        let mut c = Line::connect(local.addr());
        assert_eq!(c.ask("alice"), "You are connected to the Server");
        for (i, mode) in ["R", "I", "R"].iter().enumerate() {
            let started = Instant::now();
            assert_eq!(
                c.ask(&format!("{i}, h{i}.com, {mode}")),
                "0XFE, default_local, Server failure"
            );
            let t = started.elapsed();
            eprintln!("root {root}: 0XFE after {t:?}");
            assert!(
                t < Duration::from_millis(500) + SLACK,
                "0XFE only after {t:?}"
            );
            if root == &silent {
                assert!(t >= Duration::from_millis(450), "0XFE after {t:?}");
            }
        }
    }
    // The root, asking a silent TLD server in mode R.
    let root = Proc::root_over_com(fake.addr, dir.path(), &["--upstream-timeout", "0.5"]);
    let mut r = Line::connect(root.addr());
    let started = Instant::now();
    assert_eq!(r.ask("1, www.google.com, R"), "0XFE, root, Server failure");
    let t = started.elapsed();
    assert!(
        t >= Duration::from_millis(450) && t < Duration::from_millis(500) + SLACK,
        "{t:?}"
    );
}

#[test]
fn max_line_refuses_one_byte_more() {
    let h = Hierarchy::start();
    let s = Servers::start(&h, &["--max-line", "64"]);
    for (p, id, good, answer, name) in s.each() {
        let pad = |n: usize| format!("{}{good}", "t".repeat(n - good.len()));
        let (mut c, _) = session(p.addr(), id);
        let ok = pad(64);
        assert_eq!(ok.len(), 64);
        assert!(c.ask(&ok).ends_with(answer), "{name}");
        let too_long = pad(65);
        assert_eq!(c.ask(&too_long), format!("0XEE, {name}, Invalid format"));
        assert!(c.closed(), "{name}");
    }
}

/// The help text of one option: its line and any continuation lines.
fn option_help(help: &str, flag: &str) -> String {
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(flag));
    let Some(first) = lines.next() else {
        panic!("{flag} is not in the help:\n{help}");
    };
    let rest = lines.take_while(|l| !l.trim_start().starts_with('-'));
    std::iter::once(first)
        .chain(rest)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn help_shows_every_limit_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        ("--max-connections", "[default: 1024]"),
        ("--idle-timeout", "[default: 30]"),
        ("--max-line", "[default: 512]"),
    ];
    let upstream = ("--upstream-timeout", "[default: 2]");
    for (role, with_upstream) in [("local", true), ("root", true), ("tld", false)] {
        let (code, out, err) = run_dnsd(&[role, "--help"], dir.path(), "");
        assert_eq!(code, 0, "{err}");
        let mut flags = common.to_vec();
        if with_upstream {
            flags.push(upstream);
        }
        for (flag, default) in flags {
            let text = option_help(&out, flag);
            assert!(text.contains(default), "{role} {flag}: {text}");
        }
        if !with_upstream {
            assert!(!out.contains("--upstream-timeout"));
        }
    }
    // Fractions are accepted; zero and junk are not.
    let (code, _, err) = run_dnsd(
        &["local", "--upstream-timeout", "0", "--help"],
        dir.path(),
        "",
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run_dnsd(&["local", "--idle-timeout", "x"], dir.path(), "");
    assert_eq!(code, 2);
}

/// The soft limit on open files of this process.
fn fd_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let soft = line.split_whitespace().nth(3).unwrap();
    soft.parse().unwrap_or(usize::MAX)
}

#[test]
fn a_thousand_idle_connections_cost_little_memory() {
    // Each connection costs this process one descriptor and the server two (its socket
    // and the client's log file); both inherit this limit.
    let limit = fd_limit();
    let n = 1000.min(limit.saturating_sub(100) / 2);
    if n < 1000 {
        eprintln!("open-file limit {limit}: measuring {n} connections instead of 1000");
    }
    assert!(n >= 100, "open-file limit {limit} is too low for this test");
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let root_arg = h.root.to_string();
    let local = Proc::local(&root_arg, dir.path(), &[]);
    let pid = local.child.id();
    let mut warm = Line::connect(local.addr());
    assert_eq!(warm.ask("warm"), "You are connected to the Server");
    assert_eq!(
        warm.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    let before = rss_kib(pid);
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = Line::connect(local.addr());
        c.send(&format!("idle{i}"));
        conns.push(c);
    }
    for c in &mut conns {
        assert_eq!(c.recv().as_deref(), Some("You are connected to the Server"));
    }
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    eprintln!("{n} idle connections: RSS {before} KiB -> {after} KiB ({per:.1} KiB each)");
    assert!(
        after < 150 * 1024,
        "RSS {after} KiB with {n} idle connections"
    );
    // At most two descriptors a connection (the socket, the client's log, opened at its
    // first record), not three: the
    // shutdown registry shares the socket rather than duplicating it.
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(fds < 2 * n + 64, "{fds} descriptors for {n} connections");
    // And they are all still served.
    assert_eq!(
        warm.ask("2, www.google.com, R"),
        "0X00, default_local, 142.250.72.4"
    );
    assert_eq!(
        conns[n / 2].ask("1, www.example.com, R"),
        "0XFF, default_local, Host not found"
    );
    drop(conns);
    // A client that asked nothing made no file.
    assert!(!Path::new(&dir.path().join("clients/idle0.log")).exists());
}

/// Regression: a request of exactly `--max-line` bytes written without spaces is
/// forwarded in its printed form (`TAG, NAME, MODE`), which is longer; servers that all
/// share the limit must still resolve it.
#[test]
fn a_request_at_the_limit_passes_through_servers_sharing_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let zone = zones("com.dat");
    let flags = ["--max-line", "64", "--port", "0"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&flags).map(|s| s.to_string()).collect()
    };
    let start = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Proc::start(&args, dir.path())
    };
    let tld = start(with(&["tld", "com", zone.to_str().unwrap()]));
    let table = dir.path().join("root.dat");
    std::fs::write(&table, format!("com 127.0.0.1 {}\n", tld.addr().port())).unwrap();
    let root = start(with(&["root", table.to_str().unwrap()]));
    let root_arg = root.addr().to_string();
    let local = start(with(&["local", "--root", &root_arg, "--log-dir", "."]));
    let mut c = Line::connect(local.addr());
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    for (name, mode, answer) in [
        ("www.google.com", "R", "0X01, default_local, 142.250.72.4"),
        (
            "www.amazon.com",
            "I",
            "0X01, default_local, 205.251.242.103",
        ),
    ] {
        let tail = format!(",{name},{mode}");
        let line = format!("{}{tail}", "t".repeat(64 - tail.len()));
        assert_eq!(line.len(), 64);
        assert_eq!(c.ask(&line), answer, "{line}");
    }
}

#[test]
fn idle_timeout_closes_a_peer_trickling_from_its_first_byte() {
    // Bytes 10 ms apart never make the original's 40 ms pause, so this is one line that
    // never ends: closed once the idle timeout has passed since its first byte. On a
    // loaded machine a pause can stretch past 40 ms; the bytes so far are then one
    // (invalid) legacy message, answered, and the clock starts again: so the bound is
    // generous, and any reply must be such an answer.
    let h = Hierarchy::start();
    let s = Servers::start(&h, &["--idle-timeout", "0.5"]);
    for (p, _, _, _, name) in s.each() {
        let mut c = Line::connect(p.addr());
        let mut w = c.stream.try_clone().unwrap();
        let started = Instant::now();
        let trickler = thread::spawn(move || {
            for _ in 0..1000 {
                if w.write_all(b"x").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        c.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let read = std::io::Read::read_to_end(&mut c.stream, &mut got);
        let t = started.elapsed();
        assert!(
            read.is_ok()
                || read.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
            "{name}: not closed within 10 s: {read:?}"
        );
        let got = String::from_utf8(got).unwrap();
        eprintln!("{name}: trickler from the first byte closed after {t:?}, got {got:?}");
        for line in got.lines() {
            // At the local server the first such message is the client's id: over 64
            // bytes (a pause came late), it is an invalid one.
            assert!(
                line == "You are connected to the Server"
                    || line == format!("0XEE, {name}, Invalid format")
                    || line == format!("0XEE, {name}, Invalid client id"),
                "{name}: {line}"
            );
        }
        assert!(
            t >= Duration::from_millis(450),
            "{name}: closed after {t:?}"
        );
        trickler.join().unwrap();
    }
}

/// A second (and third) client address: loopback holds all of 127.0.0.0/8.
const SECOND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const THIRD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// Regression: a DNS-over-TCP client that sent a length prefix and then one byte every
/// 100 ms kept its connection (and the thread serving it) for ever, each read's timeout
/// starting again; now the whole message must come within --idle-timeout of its first
/// byte, as a line must.
#[test]
fn a_dns_client_trickling_a_message_is_closed_at_its_deadline() {
    let h = Hierarchy::start();
    let s = Servers::start(&h, &["--idle-timeout", "0.5"]);
    let slack = Duration::from_millis(500) + SLACK;
    for (p, _, _, _, name) in s.each() {
        let mut c = Line::connect(p.addr());
        let mut w = c.stream.try_clone().unwrap();
        let started = Instant::now();
        let trickler = thread::spawn(move || {
            // A prefix announcing 200 bytes, then a byte every 100 ms: each read finds one
            // well within the idle timeout, and the message would take 20 s.
            if w.write_all(&[0, 200]).is_err() {
                return;
            }
            for _ in 0..100 {
                thread::sleep(Duration::from_millis(100));
                if w.write_all(&[0]).is_err() {
                    return;
                }
            }
        });
        let t = time_to_close(&mut c, started, slack);
        eprintln!("{name}: DNS trickler closed after {t:?}");
        assert!(
            t >= Duration::from_millis(450),
            "{name}: closed after {t:?}"
        );
        trickler.join().unwrap();
        // A whole query in two halves well within the deadline is answered as ever.
        let mut d = TcpStream::connect_timeout(&p.addr(), WAIT).unwrap();
        let framed = dns_frame(&dns_query(77, "www.google.com.", false));
        d.write_all(&framed[..5]).unwrap();
        thread::sleep(Duration::from_millis(50));
        d.write_all(&framed[5..]).unwrap();
        d.shutdown(std::net::Shutdown::Write).unwrap();
        let got = crate::harness::read_to_close(&mut d);
        assert!(got.len() > 2, "{name}: no answer");
        assert_eq!(dns_id_rcode(&got[2..]).0, 77, "{name}");
    }
}

/// Regression: one client address could take every connection; now
/// --max-connections-per-ip refuses its next one, while other addresses are served up
/// to --max-connections. Over either cap a line client gets `Server busy`, a DNS client
/// SERVFAIL with its ID (or a close), never the line protocol's text.
#[test]
fn the_per_address_cap_refuses_one_address_and_serves_the_others() {
    let h = Hierarchy::start();
    let s = Servers::start(
        &h,
        &["--max-connections", "3", "--max-connections-per-ip", "2"],
    );
    for (p, id, good, answer, name) in s.each() {
        let busy = format!("0XFE, {name}, Server busy");
        let (mut a, _) = session(p.addr(), id);
        let (mut b, _) = session(p.addr(), id);
        // Both are being served (so both were accepted before the next comes).
        assert!(a.ask(good).ends_with(answer), "{name}");
        assert!(b.ask(good).ends_with(answer), "{name}");

        // 127.0.0.1 has its two: a line client is told, a DNS client is not sent text.
        let mut third = Line::connect(p.addr());
        assert_eq!(third.recv().as_deref(), Some(busy.as_str()), "{name}");
        assert!(third.closed(), "{name}");
        let stream = TcpStream::connect_timeout(&p.addr(), WAIT).unwrap();
        let refusal = dns_tcp_refusal(stream, 0x4242);
        eprintln!("{name}: DNS client over the per-address cap: {refusal:?}");
        if let Some(got) = refusal {
            assert_eq!(got, (0x4242, ResponseCode::ServFail), "{name}");
        }

        // Another address is served: the server's third connection.
        let mut other = Line::connect_from(SECOND, p.addr());
        if let Some(id) = id {
            assert_eq!(other.ask(id), "You are connected to the Server", "{name}");
        }
        assert!(other.ask(good).ends_with(answer), "{name}");

        // Now the server is full: a third address is refused too, in its protocol.
        let refusal = dns_tcp_refusal(connect_from(THIRD, p.addr()), 0x4343);
        eprintln!("{name}: DNS client over --max-connections: {refusal:?}");
        if let Some(got) = refusal {
            assert_eq!(got, (0x4343, ResponseCode::ServFail), "{name}");
        }
        let mut fourth = Line::connect_from(THIRD, p.addr());
        fourth.send(id.unwrap_or(good));
        assert_eq!(fourth.recv().as_deref(), Some(busy.as_str()), "{name}");

        // The connections held are still served.
        assert!(a.ask(good).ends_with(answer), "{name}");
        assert!(other.ask(good).ends_with(answer), "{name}");
    }
}

/// `--max-connections-per-ip` is every server's (and `dnsd up`'s), says its default, and
/// takes no zero.
#[test]
fn the_per_address_cap_is_in_every_help_and_refuses_zero() {
    let dir = tempfile::tempdir().unwrap();
    for role in ["local", "root", "tld", "up"] {
        let (code, out, err) = run_dnsd(&[role, "--help"], dir.path(), "");
        assert_eq!(code, 0, "{err}");
        let text = option_help(&out, "--max-connections-per-ip");
        assert!(
            text.contains("[default: a quarter of --max-connections"),
            "{role}: {text}"
        );
    }
    let (code, _, err) = run_dnsd(&["local", "--max-connections-per-ip", "0"], dir.path(), "");
    assert_eq!(code, 2, "{err}");
}
