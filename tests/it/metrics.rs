//! `--metrics`: servers scraped over HTTP before and after known traffic (cache hits and
//! misses, NXDOMAIN, an upstream stopped, a connection over the cap, one closed for
//! idleness, reloads that work and one that fails); each counter must have moved by
//! exactly what the traffic implies.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use dnsd::dns::exchange::{exchange_udp, query_message, read_response};
use dnsd::model::{QType, Query, Recursion};

use crate::harness::{DnsTcp, Line, Proc, WAIT};

/// The flag every server under test gets: any free loopback port.
const METRICS: [&str; 2] = ["--metrics", "127.0.0.1:0"];

/// An HTTP GET over a plain `TcpStream`: the status code and the body.
#[track_caller]
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the metrics");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("a whole HTTP response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// One scrape: every series (`name{labels}`) and its value.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    #[track_caller]
    fn of(addr: SocketAddr) -> Scrape {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        let mut series = HashMap::new();
        for line in body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (key, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a value: {line:?}"));
            series.insert(key.to_owned(), value);
        }
        Scrape(series)
    }

    /// The value of `series`, 0 if absent (a labelled counter not yet seen).
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

/// Asserts that each series moved from `before` to `after` by exactly the amount given.
#[track_caller]
fn assert_moved(server: &str, before: &Scrape, after: &Scrape, expected: &[(&str, f64)]) {
    let mut wrong = Vec::new();
    for (series, by) in expected {
        let moved = after.get(series) - before.get(series);
        if moved != *by {
            wrong.push(format!("{series}: moved by {moved}, expected {by}"));
        }
    }
    assert!(wrong.is_empty(), "{server}:\n{}", wrong.join("\n"));
}

/// Every `dnsd_queries_total` series that moved, with how much: none may move unless
/// the test expects it.
fn queries_moved(before: &Scrape, after: &Scrape) -> Vec<(String, f64)> {
    let mut moved: Vec<(String, f64)> = after
        .0
        .iter()
        .filter(|(k, _)| k.starts_with("dnsd_queries_total{"))
        .map(|(k, v)| (k.clone(), v - before.get(k)))
        .filter(|(_, by)| *by != 0.0)
        .collect();
    moved.sort_by(|a, b| a.0.cmp(&b.0));
    moved
}

#[track_caller]
fn assert_queries(server: &str, before: &Scrape, after: &Scrape, expected: &[(&str, f64)]) {
    let mut expected: Vec<(String, f64)> = expected
        .iter()
        .map(|(k, v)| (format!("dnsd_queries_total{{{k}}}"), *v))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(queries_moved(before, after), expected, "{server}");
}

/// Where a server process serves its metrics, from its `metrics on ADDR` line.
#[track_caller]
fn metrics_addr(p: &Proc) -> SocketAddr {
    let line = p.wait_for("metrics on ");
    let rest = line.split("metrics on ").nth(1).unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// Waits (at most [`WAIT`]) until `ready` holds for a scrape, and returns it: for what
/// a server records after the client has its answer (a connection's end, a dropped
/// message).
#[track_caller]
fn scrape_until(addr: SocketAddr, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let scrape = Scrape::of(addr);
        if ready(&scrape) {
            return scrape;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asks `server` over UDP for `name`'s A record, with RD set if `rd`: the response
/// code and the first address.
#[track_caller]
fn ask_udp(server: SocketAddr, name: &str, rd: bool, id: u16) -> (u8, Option<IpAddr>) {
    let query = Query {
        name: dnsd::model::name::Name::parse(name).unwrap(),
        qtype: QType::A,
        recursion: if rd {
            Recursion::Recursive
        } else {
            Recursion::Iterative
        },
        tag: None,
    };
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let request = query_message(id, &query).unwrap();
    let response = exchange_udp(&socket, server, &request, Instant::now() + WAIT)
        .expect("a DNS response over UDP");
    let rcode = response[3] & 0x0f;
    let ip = (rcode == 0)
        .then(|| read_response(&response, id, &query).ok()?.first_ip())
        .flatten();
    (rcode, ip)
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

/// The acceptance test of `--metrics`: a local server, a root and a com server, each its
/// own process with its own endpoint; line and DNS traffic whose every effect is known;
/// then com is stopped, and the failures are counted where they happen.
#[test]
fn metrics_count_queries_cache_and_upstream_failures_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "com.dat",
        "www.a.com 10.0.0.1\nwww.b.com 10.0.0.2\nwww.c.com 10.0.0.3\nwww.d.com 10.0.0.4\n",
    );
    let mut com_args = vec!["tld", "com", "com.dat", "--port", "0"];
    com_args.extend(METRICS);
    let mut com = Proc::start(&com_args, dir.path());
    let root = Proc::root_over_com(com.addr(), dir.path(), &METRICS);
    let root_addr = root.addr().to_string();
    let mut local_args = METRICS.to_vec();
    // Every mode I miss asks the root (the root's counts below include each one).
    local_args.extend(["--cache-size", "2", "--no-delegation-cache"]);
    let local = Proc::local(&root_addr, dir.path(), &local_args);
    let (com_m, root_m, local_m) = (
        metrics_addr(&com),
        metrics_addr(&root),
        metrics_addr(&local),
    );
    let (com_0, root_0, local_0) = (Scrape::of(com_m), Scrape::of(root_m), Scrape::of(local_m));

    let mut client = Line::connect(local.addr());
    assert_eq!(client.ask("alice"), "You are connected to the Server");
    let d = "default_local";
    assert_eq!(
        client.ask("1, www.a.com, I"),
        format!("0X01, {d}, 10.0.0.1")
    );
    assert_eq!(
        client.ask("2, www.a.com, I"),
        format!("0X00, {d}, 10.0.0.1")
    );
    assert_eq!(
        client.ask("3, nope.com, R"),
        format!("0XFF, {d}, Host not found")
    );
    assert_eq!(
        client.ask("4, bad, I"),
        format!("0XEE, {d}, Invalid format")
    );
    let b: IpAddr = "10.0.0.2".parse().unwrap();
    assert_eq!(ask_udp(local.addr(), "www.b.com", true, 1), (0, Some(b)));
    assert_eq!(ask_udp(local.addr(), "www.b.com", true, 2), (0, Some(b)));
    // NXDOMAIN is cached over DNS: the third name evicts www.a.com (--cache-size 2).
    assert_eq!(ask_udp(local.addr(), "nx.com", true, 3).0, 3);
    // RD clear and not cached: REFUSED without asking anyone, a miss all the same.
    assert_eq!(ask_udp(local.addr(), "www.c.com", false, 4).0, 5);
    let mut tcp = DnsTcp::connect(local.addr());
    assert_eq!(tcp.address("www.b.com"), Some(b));

    let local_1 = Scrape::of(local_m);
    let l = |labels: &str| format!("{{server=\"{d}\"{labels}}}");
    assert_eq!(
        local_1.get(&format!("dnsd_connections_open{}", l(""))),
        2.0,
        "the line session and the DNS connection"
    );

    // A message too short for a header: dropped, and counted once the server has seen it.
    let garbage = UdpSocket::bind("127.0.0.1:0").unwrap();
    garbage.send_to(b"\x12", com.addr()).unwrap();
    let dropped = "dnsd_dns_dropped_total{server=\"com\"}";
    let com_1 = scrape_until(com_m, "the dropped message", |s| s.get(dropped) == 1.0);
    assert_queries(
        "com",
        &com_0,
        &com_1,
        &[
            (r#"server="com",protocol="line",mode="I",code="0X01""#, 1.0),
            (r#"server="com",protocol="line",mode="R",code="0XFF""#, 1.0),
            (
                r#"server="com",protocol="dns-udp",mode="nord",code="NOERROR""#,
                1.0,
            ),
            (
                r#"server="com",protocol="dns-udp",mode="nord",code="NXDOMAIN""#,
                1.0,
            ),
        ],
    );

    // com stops: the local server (mode I) and the root (mode R) find nothing there.
    com.child.kill().unwrap();
    com.child.wait().unwrap();
    let failure = format!("0XFE, {d}, Server failure");
    assert_eq!(client.ask("5, www.c.com, I"), failure);
    assert_eq!(client.ask("6, www.d.com, R"), failure);

    let (root_1, local_2) = (Scrape::of(root_m), Scrape::of(local_m));
    let com_at = com.addr();
    let root_at = root.addr();
    assert_queries(
        "root",
        &root_0,
        &root_1,
        &[
            (r#"server="root",protocol="line",mode="I",code="0X02""#, 2.0),
            (r#"server="root",protocol="line",mode="R",code="0XFF""#, 1.0),
            (r#"server="root",protocol="line",mode="R",code="0XFE""#, 1.0),
            (
                r#"server="root",protocol="dns-udp",mode="nord",code="NOERROR""#,
                2.0,
            ),
        ],
    );
    assert_moved(
        "root",
        &root_0,
        &root_1,
        &[
            (
                &format!(
                    "dnsd_upstream_failures_total{{server=\"root\",upstream=\"{com_at}\",kind=\"refused\"}}"
                ),
                1.0,
            ),
            ("dnsd_query_duration_seconds_count{server=\"root\",protocol=\"line\"}", 4.0),
            ("dnsd_query_duration_seconds_count{server=\"root\",protocol=\"dns-udp\"}", 2.0),
        ],
    );
    let q = |labels: &str| format!("server=\"{d}\",{labels}");
    let expected: Vec<(String, f64)> = [
        ("protocol=\"line\",mode=\"I\",code=\"0X01\"", 1.0),
        ("protocol=\"line\",mode=\"I\",code=\"0X00\"", 1.0),
        ("protocol=\"line\",mode=\"R\",code=\"0XFF\"", 1.0),
        ("protocol=\"line\",mode=\"-\",code=\"0XEE\"", 1.0),
        ("protocol=\"line\",mode=\"I\",code=\"0XFE\"", 1.0),
        ("protocol=\"line\",mode=\"R\",code=\"0XFE\"", 1.0),
        ("protocol=\"dns-udp\",mode=\"rd\",code=\"NOERROR\"", 2.0),
        ("protocol=\"dns-udp\",mode=\"rd\",code=\"NXDOMAIN\"", 1.0),
        ("protocol=\"dns-udp\",mode=\"nord\",code=\"REFUSED\"", 1.0),
        ("protocol=\"dns-tcp\",mode=\"rd\",code=\"NOERROR\"", 1.0),
    ]
    .iter()
    .map(|(labels, by)| (q(labels), *by))
    .collect();
    let expected: Vec<(&str, f64)> = expected.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_queries(d, &local_0, &local_2, &expected);
    assert_moved(
        d,
        &local_0,
        &local_2,
        &[
            // www.a.com (line), www.b.com (UDP), www.b.com (TCP).
            (&format!("dnsd_cache_hits_total{}", l("")), 3.0),
            // www.a.com, nope.com, www.b.com, nx.com, www.c.com twice, www.d.com.
            (&format!("dnsd_cache_misses_total{}", l("")), 7.0),
            (&format!("dnsd_cache_evictions_total{}", l("")), 1.0),
            (&format!("dnsd_cache_entries{}", l("")), 2.0),
            (
                &format!(
                    "dnsd_upstream_failures_total{}",
                    l(&format!(",upstream=\"{com_at}\",kind=\"refused\""))
                ),
                1.0,
            ),
            // The root answered its own failure: an error of the root's, to the local server.
            (
                &format!(
                    "dnsd_upstream_failures_total{}",
                    l(&format!(",upstream=\"{root_at}\",kind=\"error\""))
                ),
                1.0,
            ),
            (
                &format!(
                    "dnsd_query_duration_seconds_count{}",
                    l(",protocol=\"line\"")
                ),
                6.0,
            ),
            (
                &format!(
                    "dnsd_query_duration_seconds_count{}",
                    l(",protocol=\"dns-udp\"")
                ),
                4.0,
            ),
            (
                &format!(
                    "dnsd_query_duration_seconds_count{}",
                    l(",protocol=\"dns-tcp\"")
                ),
                1.0,
            ),
            (&format!("dnsd_connections_refused_total{}", l("")), 0.0),
            (&format!("dnsd_connections_idle_closed_total{}", l("")), 0.0),
            (&format!("dnsd_dns_dropped_total{}", l("")), 0.0),
        ],
    );
    // No other upstream failure anywhere.
    let failures = |s: &Scrape| -> f64 {
        s.0.iter()
            .filter(|(k, _)| k.starts_with("dnsd_upstream_failures_total"))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(failures(&local_2) - failures(&local_0), 2.0);
    assert_eq!(failures(&root_1) - failures(&root_0), 1.0);

    drop((client, tcp));
    let open = format!("dnsd_connections_open{}", l(""));
    scrape_until(local_m, "both connections closed", |s| s.get(&open) == 0.0);
}

/// A connection over `--max-connections` is refused (+1), one silent past
/// `--idle-timeout` closed (+1), the open gauge follows both; a reload that works and
/// one that fails are counted apart.
#[test]
fn metrics_count_refused_and_idle_connections_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "org.dat", "www.x.org 10.0.0.9\n");
    // Long enough an idle timeout that the first connection is surely still open when
    // the second arrives, on a loaded machine too.
    let mut args = vec!["tld", "org", "org.dat", "--port", "0"];
    args.extend(["--max-connections", "1", "--idle-timeout", "2"]);
    args.extend(METRICS);
    let org = Proc::start(&args, dir.path());
    let m = metrics_addr(&org);
    let before = Scrape::of(m);
    let s = |name: &str| format!("{name}{{server=\"org\"}}");

    let mut first = Line::connect(org.addr());
    assert_eq!(first.ask("1, www.x.org, I"), "0X01, org, 10.0.0.9");
    let mut second = Line::connect(org.addr());
    assert_eq!(second.recv().as_deref(), Some("0XFE, org, Server busy"));
    assert!(second.closed());
    let during = Scrape::of(m);
    assert_eq!(during.get(&s("dnsd_connections_open")), 1.0);
    assert_moved(
        "org",
        &before,
        &during,
        &[
            (&s("dnsd_connections_refused_total"), 1.0),
            (&s("dnsd_connections_idle_closed_total"), 0.0),
        ],
    );

    assert!(first.closed(), "the idle connection is closed");
    let open = s("dnsd_connections_open");
    let after = scrape_until(m, "the idle connection's end", |s| s.get(&open) == 0.0);
    assert_moved(
        "org",
        &before,
        &after,
        &[
            (&s("dnsd_connections_refused_total"), 1.0),
            (&s("dnsd_connections_idle_closed_total"), 1.0),
        ],
    );
    assert_queries(
        "org",
        &before,
        &after,
        &[(r#"server="org",protocol="line",mode="I",code="0X01""#, 1.0)],
    );

    write(
        dir.path(),
        "org.dat",
        "www.x.org 10.0.0.9\nwww.y.org 10.0.0.8\n",
    );
    org.signal("HUP");
    org.wait_for("org: reloaded org.dat (2 names)");
    write(dir.path(), "org.dat", "www.x.org nope\n");
    org.signal("HUP");
    org.wait_for("org: reload failed");
    let reloaded = Scrape::of(m);
    assert_moved(
        "org",
        &after,
        &reloaded,
        &[
            ("dnsd_reloads_total{server=\"org\",result=\"ok\"}", 1.0),
            ("dnsd_reloads_total{server=\"org\",result=\"failed\"}", 1.0),
        ],
    );
}

/// The bounds on a client, each counted apart: a connection over
/// `--max-connections-per-ip` (+1), one silent past `--idle-timeout` (idle +1), and a
/// line and a DNS message trickled past it from their first byte (deadline +2).
#[test]
fn metrics_count_per_address_refusals_and_trickling_peers_apart() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "org.dat", "www.x.org 10.0.0.9\n");
    let mut args = vec!["tld", "org", "org.dat", "--port", "0"];
    args.extend(["--max-connections-per-ip", "1", "--idle-timeout", "0.5"]);
    args.extend(METRICS);
    let org = Proc::start(&args, dir.path());
    let m = metrics_addr(&org);
    let before = Scrape::of(m);
    let s = |name: &str| format!("{name}{{server=\"org\"}}");
    let open = s("dnsd_connections_open");

    let mut first = Line::connect(org.addr());
    assert_eq!(first.ask("1, www.x.org, I"), "0X01, org, 10.0.0.9");
    let mut second = Line::connect(org.addr());
    assert_eq!(second.recv().as_deref(), Some("0XFE, org, Server busy"));
    assert!(second.closed());
    // Silent after its question: closed as idle.
    assert!(first.closed(), "the idle connection is closed");
    scrape_until(m, "the idle connection's end", |s| s.get(&open) == 0.0);

    // A line after a first one (the original's unterminated framing is over), and a
    // DNS message after its length prefix, each a byte every 100 ms.
    for (opening, trickle) in [(&b"2, www.x.org, I\n"[..], b'x'), (&[0u8, 200][..], 0)] {
        let mut c = Line::connect(org.addr());
        c.send_raw(opening);
        if opening[0] != 0 {
            assert_eq!(c.recv().as_deref(), Some("0X01, org, 10.0.0.9"));
        }
        let mut w = c.stream.try_clone().unwrap();
        let trickler = std::thread::spawn(move || {
            for _ in 0..100 {
                if w.write_all(&[trickle]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        assert!(c.closed(), "the trickling connection is closed");
        trickler.join().unwrap();
        scrape_until(m, "the trickling connection's end", |s| s.get(&open) == 0.0);
    }
    let after = Scrape::of(m);
    assert_moved(
        "org",
        &before,
        &after,
        &[
            (&s("dnsd_connections_refused_total"), 0.0),
            (&s("dnsd_connections_refused_per_ip_total"), 1.0),
            (&s("dnsd_connections_idle_closed_total"), 1.0),
            (&s("dnsd_connections_deadline_closed_total"), 2.0),
        ],
    );
}

/// Clients the local server's `--allow` leaves out are counted, over UDP and TCP, and
/// their DNS queries as REFUSED.
#[test]
fn metrics_count_clients_refused_by_the_access_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "local",
        "--port",
        "0",
        "--root",
        "127.0.0.1:9",
        "--log-dir",
        ".",
    ];
    args.extend(["--allow", "127.0.0.2"]);
    args.extend(METRICS);
    let local = Proc::start(&args, dir.path());
    let m = metrics_addr(&local);
    let before = Scrape::of(m);
    let request = crate::harness::dns_query(5, "www.x.org.", true);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    udp.send_to(&request, local.addr()).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = udp.recv_from(&mut buf).expect("an answer");
    assert_eq!(
        crate::harness::dns_id_rcode(&buf[..n]),
        (5, hickory_proto::op::ResponseCode::Refused)
    );
    let mut line = Line::connect(local.addr());
    line.send("alice");
    assert_eq!(
        line.recv().as_deref(),
        Some("0XFE, default_local, Access refused")
    );
    let l = |name: &str| format!("{name}{{server=\"default_local\"}}");
    let after = scrape_until(m, "both refusals", |s| {
        s.get(&l("dnsd_access_denied_total")) == 2.0
    });
    assert_moved(
        "default_local",
        &before,
        &after,
        &[(&l("dnsd_access_denied_total"), 2.0)],
    );
    assert_queries(
        "default_local",
        &before,
        &after,
        &[(
            r#"server="default_local",protocol="dns-udp",mode="rd",code="REFUSED""#,
            1.0,
        )],
    );
}

/// `dnsd up` serves one endpoint for every server, each series labelled with its
/// server; only `GET /metrics` is served; the endpoint stops with the servers.
#[test]
fn up_serves_every_server_on_one_endpoint_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["up", "--any-port", "--log-dir", "."];
    args.extend(METRICS);
    let mut up = Proc::spawn(&args, dir.path());
    let m = metrics_addr(&up);
    up.wait_for("default_local: listening on");
    let scrape = Scrape::of(m);
    for server in ["root", "com", "gov", "org", "default_local"] {
        let series = format!("dnsd_connections_refused_total{{server=\"{server}\"}}");
        assert_eq!(scrape.0.get(&series), Some(&0.0), "{series}");
    }
    assert_eq!(get(m, "/").0, 404);
    assert_eq!(get(m, "/metrics/x").0, 404);

    // The endpoint's thread stops with the servers, or the process would not exit.
    up.signal("TERM");
    assert_eq!(up.wait_exit(), 0, "{}", up.stderr_text());
}

/// Without `--metrics` nothing listens for them, and nothing says so.
#[test]
fn metrics_are_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "com.dat", "www.a.com 10.0.0.1\n");
    let com = Proc::start(&["tld", "com", "com.dat", "--port", "0"], dir.path());
    let mut line = Line::connect(com.addr());
    assert_eq!(line.ask("1, www.a.com, I"), "0X01, com, 10.0.0.1");
    assert!(!com.stderr_text().contains("metrics on"));
}
