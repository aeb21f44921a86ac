//! `dnsd bench` smoke tests: short runs against an in-process hierarchy, checking that
//! the counts add up and the codes are the expected ones. Nothing here is timed.

use std::time::Duration;

use dnsd::line::message::{Code, Mode};
use dnsd::tools::bench::{measure, Ceiling, DnsTransport, Errors, Names, Workload};

use crate::harness::{run_dnsd, Hierarchy};

/// A workload of `requests` queries for `pattern` over two connections.
fn workload(server: std::net::SocketAddr, pattern: &str, requests: u64) -> Workload {
    let mut w = Workload::new(server);
    w.connections = 2;
    w.duration = None;
    w.requests = Some(requests);
    w.names = Names::Pattern(pattern.to_owned());
    w
}

/// Finds `"key":value` in the flat part of a JSON object and returns the value's text.
#[track_caller]
fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let needle = format!("\"{key}\":");
    let at = json
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + needle.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn cached_name_gives_only_0x00() {
    let h = Hierarchy::start();
    let report = measure(&workload(h.local, "www.example.com", 300));
    assert_eq!(report.queries, 300);
    assert_eq!(report.errors, Errors::default());
    assert_eq!(report.code(Code::Cached), 300);
    assert!(report.latency.p50 <= report.latency.p99);
    assert!(report.latency.p99 <= report.latency.max);
}

#[test]
fn unique_missing_names_give_only_0xff_in_both_modes() {
    let h = Hierarchy::start();
    for mode in [Mode::Recursive, Mode::Iterative] {
        let mut w = workload(h.local, "www.nx{n}.com", 200);
        w.mode = mode;
        let report = measure(&w);
        assert_eq!(report.queries, 200, "{mode}");
        assert_eq!(report.errors.total(), 0, "{mode}");
        assert_eq!(report.code(Code::NotFound), 200, "{mode}");
    }
}

#[test]
fn timed_run_counts_add_up() {
    let h = Hierarchy::start();
    let mut w = workload(h.local, "www.nx{n}.com", 0);
    w.requests = None;
    w.duration = Some(Duration::from_millis(500));
    let report = measure(&w);
    assert!(report.queries > 0);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(report.codes.iter().sum::<u64>(), report.queries);
    assert_eq!(report.code(Code::NotFound), report.queries);
    assert!(report.elapsed >= Duration::from_millis(500));
}

#[test]
fn a_tld_measured_directly_without_an_id() {
    let h = Hierarchy::start();
    let mut w = workload(h.tld("com"), "www.google.com", 100);
    w.client_id = None;
    let report = measure(&w);
    assert_eq!(report.queries, 100);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(report.code(Code::Resolved), 100);
}

#[test]
fn legacy_framing_against_dnsd_local() {
    // dnsd's local server takes the original's unterminated messages (after a short
    // pause), so a few queries are enough.
    let h = Hierarchy::start();
    let mut w = workload(h.local, "www.example.com", 6);
    w.legacy = true;
    let report = measure(&w);
    assert_eq!(report.queries, 6);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(report.code(Code::Cached), 6);
}

#[test]
fn ceiling_server_with_the_same_workload() {
    let ceiling = Ceiling::start(false, true).unwrap();
    let report = measure(&workload(ceiling.addr(), "www.nx{n}.com", 200));
    assert_eq!(report.queries, 200);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(report.code(Code::Cached), 200);
}

#[test]
fn binary_json_with_ceiling() {
    let h = Hierarchy::start();
    let server = h.local.to_string();
    let (code, out, err) = run_dnsd(
        &[
            "bench",
            "--server",
            &server,
            "--connections",
            "2",
            "--requests",
            "200",
            "--pattern",
            "www.nx{n}.com",
            "--json",
            "--ceiling",
        ],
        h.logs.path(),
        "",
    );
    assert_eq!(code, 0, "stderr: {err}");
    let json = out.trim();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (ours, ceiling) = json.split_once("\"ceiling\":{").expect("a ceiling object");
    assert_eq!(json_field(ours, "server"), format!("\"{server}\""));
    assert_eq!(json_field(ours, "queries"), "200");
    assert_eq!(json_field(ours, "errors"), "0");
    assert_eq!(json_field(ours, "0XFF"), "200");
    assert_eq!(json_field(ours, "0X00"), "0");
    assert_eq!(json_field(ceiling, "queries"), "200");
    assert_eq!(json_field(ceiling, "errors"), "0");
    assert_eq!(json_field(ceiling, "0X00"), "200");
    let share: f64 = json_field(ceiling, "ceiling_share").parse().unwrap();
    assert!(share > 0.0, "{json}");
}

#[test]
fn binary_table_for_a_cached_name() {
    let h = Hierarchy::start();
    let server = h.local.to_string();
    let (code, out, err) = run_dnsd(
        &[
            "bench",
            "--server",
            &server,
            "--connections",
            "2",
            "--duration",
            "0.5",
            "--pattern",
            "www.example.com",
        ],
        h.logs.path(),
        "",
    );
    assert_eq!(code, 0, "stderr: {err}");
    let queries: u64 = row(&out, "queries").parse().unwrap();
    assert!(queries > 0, "{out}");
    assert_eq!(row(&out, "errors"), "0", "{out}");
    assert!(
        out.contains(&format!(
            "codes: 0X00 {queries}  0X01 0  0X02 0  0XFF 0  0XEE 0  0XFE 0"
        )),
        "{out}"
    );
}

/// The value in the table row that starts with `label`.
#[track_caller]
fn row<'a>(table: &'a str, label: &str) -> &'a str {
    table
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(label).filter(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {label} row in {table}"))
        .trim()
}

/// A loopback address that refuses connections while the returned streams live: the
/// local end of a connection holds its port without listening on it, so no other
/// socket can take the port meanwhile (as one could a port bound and released).
fn refusing_addr() -> (std::net::SocketAddr, [std::net::TcpStream; 2]) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (theirs, _) = listener.accept().unwrap();
    (ours.local_addr().unwrap(), [ours, theirs])
}

#[test]
fn unreachable_server_is_an_error_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _held) = refusing_addr();
    let server = addr.to_string();
    let (code, out, _) = run_dnsd(
        &["bench", "--server", &server, "--requests", "2", "--json"],
        dir.path(),
        "",
    );
    assert_eq!(code, 1);
    assert_eq!(json_field(&out, "connect_errors"), "2");
}

#[test]
fn help_shows_the_n_placeholder() {
    // clap turns `{n}` in a help text into a line break unless it is kept from matching.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_dnsd(&["bench", "--help"], dir.path(), "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("its `{n}`"), "{out}");
    assert!(out.contains("`www.nx{n}.com`"), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
}

#[test]
fn report_and_show_read_json_results_back() {
    let h = Hierarchy::start();
    let server = h.local.to_string();
    let results = tempfile::tempdir().unwrap();
    let (code, json, err) = run_dnsd(
        &[
            "bench",
            "--server",
            &server,
            "--requests",
            "50",
            "--pattern",
            "www.example.com",
            "--json",
            "--ceiling",
        ],
        h.logs.path(),
        "",
    );
    assert_eq!(code, 0, "stderr: {err}");
    let file = results.path().join("dnsd-hits-1.json");
    std::fs::write(&file, json).unwrap();

    let (code, out, err) = run_dnsd(
        &["bench", "show", file.to_str().unwrap()],
        results.path(),
        "",
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.starts_with("  dnsd-hits-1 "), "{out}");
    assert!(out.contains("errors 0  0X00:50  | ceiling "), "{out}");

    let report = results.path().join("BENCHMARKS.md");
    let (code, _, err) = run_dnsd(
        &[
            "bench",
            "report",
            results.path().to_str().unwrap(),
            report.to_str().unwrap(),
            "--machine",
            "test machine",
        ],
        results.path(),
        "",
    );
    assert_eq!(code, 0, "stderr: {err}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.starts_with("# Benchmarks\n"), "{text}");
    assert!(text.contains("- Machine: test machine\n"), "{text}");
    let hits = text
        .lines()
        .find(|l| l.starts_with("| hits | 1 | "))
        .unwrap_or_else(|| panic!("no hits row in {text}"));
    assert!(hits.ends_with("| – | – | 0X00 50 | – |"), "{hits}");
    assert!(
        text.contains("| hits | 8 | – | – | – | – | – | – | – | – | – |"),
        "{text}"
    );
    assert!(
        text.contains("| Hits, 1 conn: at least 90% of the ceiling | "),
        "{text}"
    );
}

/// An in-process hierarchy with one cached name at the local server and one name in com.
fn dns_hierarchy(logs: &std::path::Path) -> dnsd::runtime::hierarchy::Hierarchy {
    let com: dnsd::zone::Zone = "www.google.com 142.250.72.4".parse().unwrap();
    let cache: dnsd::zone::Zone = "www.example.com 93.184.216.34".parse().unwrap();
    dnsd::runtime::hierarchy::HierarchyBuilder::new()
        .tld("com", com)
        .cache(cache)
        .log_dir(logs)
        .start()
        .unwrap()
}

#[test]
fn dns_over_udp_and_tcp_counts_response_codes() {
    let logs = tempfile::tempdir().unwrap();
    let h = dns_hierarchy(logs.path());
    let com = h.tld("com").unwrap();
    for transport in [DnsTransport::Udp, DnsTransport::Tcp] {
        let cases = [
            (h.local, "www.example.com", 0u16),
            (com, "www.google.com", 0),
            (com, "www.nx{n}.com", 3),
        ];
        for (server, pattern, rcode) in cases {
            let mut w = workload(server, pattern, 100);
            w.dns = Some(transport);
            let report = measure(&w);
            let what = format!("{transport:?} {pattern} at {server}");
            assert_eq!(report.queries, 100, "{what}");
            assert_eq!(report.errors, Errors::default(), "{what}");
            assert_eq!(report.rcode(rcode), 100, "{what}");
            assert_eq!(report.codes, [0; 6], "{what}");
        }
        // Mode I clears RD: the local server answers from its cache only, and refuses
        // a name it does not have.
        let mut w = workload(h.local, "www.nx{n}.com", 20);
        w.dns = Some(transport);
        w.mode = Mode::Iterative;
        let report = measure(&w);
        assert_eq!(report.rcode(5), 20, "{transport:?}");
    }
}

#[test]
fn binary_dns_json_has_the_transport_and_rcodes() {
    let logs = tempfile::tempdir().unwrap();
    let h = dns_hierarchy(logs.path());
    let server = h.local.to_string();
    for transport in ["udp", "tcp"] {
        let (code, out, err) = run_dnsd(
            &[
                "bench",
                "--server",
                &server,
                "--dns",
                transport,
                "--connections",
                "2",
                "--requests",
                "50",
                "--pattern",
                "www.example.com",
                "--json",
            ],
            logs.path(),
            "",
        );
        assert_eq!(code, 0, "stderr: {err}");
        assert_eq!(json_field(&out, "dns"), format!("\"{transport}\""));
        assert_eq!(json_field(&out, "queries"), "50");
        assert_eq!(json_field(&out, "errors"), "0");
        assert!(
            out.contains(
                "\"rcodes\":{\"NOERROR\":50,\"FORMERR\":0,\"SERVFAIL\":0,\"NXDOMAIN\":0,\
                 \"NOTIMP\":0,\"REFUSED\":0,\"OTHER\":0}"
            ),
            "{out}"
        );
    }
}

/// Guards the batched writes of DNS over TCP (added for dnsperf's pipelined queries):
/// queries sent together in one write each get their response, in order, and a lone
/// query after them is answered without waiting for more.
#[test]
fn pipelined_dns_over_tcp_gets_every_response() {
    use dnsd::dns::{exchange, tcp};
    use dnsd::model::{QType, Query, Recursion};
    let logs = tempfile::tempdir().unwrap();
    let h = dns_hierarchy(logs.path());
    let mut stream = std::net::TcpStream::connect(h.tld("com").unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let query = Query {
        name: dnsd::model::name::Name::from_wire("www.google.com"),
        qtype: QType::A,
        recursion: Recursion::Recursive,
        tag: None,
    };
    let mut batch = Vec::new();
    for id in 1..=5u16 {
        let msg = exchange::query_message(id, &query).unwrap();
        tcp::write_message(&mut batch, &msg).unwrap();
    }
    std::io::Write::write_all(&mut stream, &batch).unwrap();
    let mut buf = Vec::new();
    for id in 1..=5u16 {
        let response = tcp::read_message(&mut stream, &mut buf).unwrap().unwrap();
        exchange::read_response(response, id, &query).unwrap();
    }
    let lone = exchange::query_message(6, &query).unwrap();
    tcp::write_message(&mut stream, &lone).unwrap();
    let response = tcp::read_message(&mut stream, &mut buf).unwrap().unwrap();
    exchange::read_response(response, 6, &query).unwrap();
}
