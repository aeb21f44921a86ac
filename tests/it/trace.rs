//! `dnsd trace` against an in-process hierarchy on free ports: both modes, as text and as
//! JSON, NXDOMAIN, and a TLD server that never answers (a failed hop, exit 1).

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use dnsd::line::message::Mode;
use dnsd::runtime::hierarchy::{Hierarchy, HierarchyBuilder};
use dnsd::tools::trace::{self, Output, TraceConfig};
use dnsd::zone::{Format, Zone};

use crate::dns::serials_masked;
use crate::harness::{run_dnsd, PATIENCE, WAIT};

fn zone(text: &str) -> Zone {
    Zone::parse(Path::new("test"), text, Format::Legacy).unwrap()
}

/// com with two names, and net listed in the root's table at `net` (a socket that never
/// answers, held by the test), the root giving up on a TLD server after
/// [`PATIENCE`] (a loaded machine must not turn a live server's answer into SERVFAIL).
fn hierarchy(logs: &Path, net: SocketAddr) -> Hierarchy {
    hierarchy_with(logs, net, PATIENCE)
}

fn hierarchy_with(logs: &Path, net: SocketAddr, upstream_timeout: Duration) -> Hierarchy {
    HierarchyBuilder::new()
        .tld(
            "com",
            zone("www.google.com 142.250.72.4\nwww.github.com 140.82.112.4\n"),
        )
        .refer("net", net)
        .upstream_timeout(upstream_timeout)
        .log_dir(logs)
        .start()
        .unwrap()
}

/// A UDP socket that never answers: a dead server's address, held for the test.
fn silent() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// The text with every time (`0.4 ms`) written `T ms`, so lines can be compared exactly.
fn untimed(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" ms") {
        let before = &rest[..at];
        let start = before
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |i| i + 1);
        if start < at && before[start..].contains('.') {
            out.push_str(&before[..start]);
            out.push('T');
        } else {
            out.push_str(before);
        }
        out.push_str(" ms");
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

#[track_caller]
fn dnsd_trace(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut argv = vec!["trace"];
    argv.extend_from_slice(args);
    let started = Instant::now();
    let result = run_dnsd(&argv, dir.path(), "");
    assert!(started.elapsed() < WAIT);
    result
}

#[test]
fn iterative_trace_shows_the_referral_then_the_answer() {
    let logs = tempfile::tempdir().unwrap();
    let net = silent();
    let h = hierarchy(logs.path(), net.local_addr().unwrap());
    let root = h.root.to_string();
    let com = h.tld("com").unwrap();
    let (code, stdout, stderr) = dnsd_trace(&["www.google.com", "--root", &root]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stdout.contains('\x1b'), "colour in a pipe: {stdout:?}");
    let expected = format!(
        "trace A www.google.com, mode I: you ask each server yourself\n\
         1. you -> root {root}   A www.google.com? (no recursion)\n\
         2. root -> you   referral: com is at ns.com {com} (T ms)\n\
         \x20      authority  com. 3600 NS ns.com.\n\
         \x20      additional ns.com. 3600 A 127.0.0.1\n\
         \x20      additional _dns._tcp.com. 3600 SRV 0 0 {port} ns.com.\n\
         3. you -> com {com}   A www.google.com? (no recursion)\n\
         4. com -> you   answer: www.google.com is 142.250.72.4, authoritative (T ms)\n\
         \x20      answer     www.google.com. 3600 A 142.250.72.4\n\
         result: www.google.com is 142.250.72.4 (2 queries, T ms in all)\n",
        port = com.port()
    );
    assert_eq!(untimed(&stdout), expected);
}

#[test]
fn recursive_trace_names_the_tld_server_the_root_asked() {
    let logs = tempfile::tempdir().unwrap();
    let net = silent();
    let h = hierarchy(logs.path(), net.local_addr().unwrap());
    let root = h.root.to_string();
    let com = h.tld("com").unwrap();
    let (code, stdout, stderr) = dnsd_trace(&["github.com", "--mode", "R", "--root", &root]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let expected = format!(
        "trace A github.com, mode R: the root resolves it for you\n\
         1. you -> root {root}   A github.com? (recursion desired)\n\
         \x20  2. root -> com {com}   A github.com?   (the root asks for you; not seen from here: which server, from step 5)\n\
         \x20  3. com -> root   (its answer, which the root passes on)\n\
         4. root -> you   answer: github.com is www.github.com (CNAME, the www. rule), which is 140.82.112.4, recursion available (T ms)\n\
         \x20      answer     github.com. 3600 CNAME www.github.com.\n\
         \x20      answer     www.github.com. 3600 A 140.82.112.4\n\
         5. you -> root {root}   A github.com? (no recursion: which server did the root ask?)\n\
         6. root -> you   referral: com is at ns.com {com} (T ms)\n\
         \x20      authority  com. 3600 NS ns.com.\n\
         \x20      additional ns.com. 3600 A 127.0.0.1\n\
         \x20      additional _dns._tcp.com. 3600 SRV 0 0 {port} ns.com.\n\
         result: github.com is 140.82.112.4 (2 queries, T ms in all)\n",
        port = com.port()
    );
    assert_eq!(untimed(&stdout), expected);
}

#[test]
fn json_trace_has_every_hop() {
    let logs = tempfile::tempdir().unwrap();
    let net = silent();
    let h = hierarchy(logs.path(), net.local_addr().unwrap());
    let root = h.root.to_string();
    let com = h.tld("com").unwrap().to_string();
    for mode in ["I", "R"] {
        let (code, stdout, stderr) =
            dnsd_trace(&["www.google.com", "--mode", mode, "--root", &root, "--json"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let t: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(t["name"], "www.google.com");
        assert_eq!(t["mode"], mode);
        assert_eq!(t["rcode"], "NOERROR");
        assert_eq!(t["addresses"], serde_json::json!(["142.250.72.4"]));
        let hops = t["hops"].as_array().unwrap();
        assert_eq!(hops.len(), 2, "{stdout}");
        let (first, second) = (&hops[0], &hops[1]);
        assert_eq!(first["server"], "root");
        assert_eq!(first["address"], root.as_str());
        assert_eq!(first["question"], "A www.google.com");
        assert_eq!(first["transport"], "udp");
        assert!(first["elapsed_us"].as_u64().unwrap() > 0);
        assert!(hops.iter().all(|h| h["error"].is_null()));
        let referral = if mode == "I" { first } else { second };
        assert_eq!(
            referral["answer"],
            format!("referral: com is at ns.com {com}").as_str()
        );
        assert_eq!(referral["rcode"], "NOERROR");
        assert_eq!(referral["recursion_desired"], false);
        assert_eq!(
            referral["records"][0],
            serde_json::json!({"section": "authority", "name": "com.", "ttl": 3600,
                               "type": "NS", "data": "ns.com."})
        );
        let answered = if mode == "I" { second } else { first };
        assert_eq!(
            answered["records"],
            serde_json::json!([{"section": "answer", "name": "www.google.com.", "ttl": 3600,
                                "type": "A", "data": "142.250.72.4"}])
        );
        if mode == "I" {
            assert_eq!(second["server"], "com");
            assert_eq!(second["address"], com.as_str());
            assert_eq!(second["authoritative"], true);
            assert!(t["via"].is_null());
        } else {
            assert_eq!(first["recursion_desired"], true);
            assert_eq!(first["recursion_available"], true);
            assert_eq!(
                t["via"],
                serde_json::json!({"tld": "com", "server": "ns.com", "address": com})
            );
        }
    }
}

#[test]
fn nxdomain_is_an_answer() {
    let logs = tempfile::tempdir().unwrap();
    let net = silent();
    let h = hierarchy(logs.path(), net.local_addr().unwrap());
    let root = h.root.to_string();
    let (code, stdout, stderr) = dnsd_trace(&["nope.com", "--root", &root]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let lines: Vec<String> = serials_masked(&untimed(&stdout))
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines[7..],
        [
            "4. com -> you   NXDOMAIN: no such name (the zone com., remember for 300 s), authoritative (T ms)",
            "       authority  com. 300 SOA ns.com. hostmaster.com. S 3600 600 604800 300",
            "result: NXDOMAIN: nope.com has no address (2 queries, T ms in all)",
        ]
    );
    // A TLD the root does not know: the root says NXDOMAIN itself, in both modes.
    let (code, stdout, _) = dnsd_trace(&["www.x.zz", "--mode", "R", "--root", &root]);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<String> = untimed(&stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        lines[1..4],
        [
            format!("1. you -> root {root}   A www.x.zz? (recursion desired)"),
            "   (the root asks no one: it knows no such TLD)".to_owned(),
            "2. root -> you   NXDOMAIN: no such name (the zone ., remember for 300 s), authoritative, recursion available (T ms)".to_owned(),
        ]
    );
    assert_eq!(
        lines.last().unwrap(),
        "result: NXDOMAIN: www.x.zz has no address (2 queries, T ms in all)"
    );
    let (code, stdout, _) = dnsd_trace(&["www.x.zz", "--root", &root, "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let t: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(t["rcode"], "NXDOMAIN");
    assert_eq!(t["hops"].as_array().unwrap().len(), 1);
}

/// A TLD server that never answers: in mode I the hop to it fails after `--timeout`;
/// in mode R the root gives up (SERVFAIL, after its 1 s upstream timeout, well within
/// the trace's 8 s) and the trace names the server it asked. Both exit 1.
#[test]
fn dead_tld_server_is_a_failed_hop() {
    let logs = tempfile::tempdir().unwrap();
    let net = silent();
    let net_addr = net.local_addr().unwrap();
    let h = hierarchy_with(logs.path(), net_addr, Duration::from_secs(1));
    let root = h.root.to_string();
    let started = Instant::now();
    let (code, stdout, stderr) = dnsd_trace(&["www.x.net", "--root", &root, "--timeout", "2"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let lines: Vec<String> = untimed(&stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        lines[6..],
        [
            format!("3. you -> net {net_addr}   A www.x.net? (no recursion)"),
            "4. net -x you   failed: no answer within 2 s (T ms)".to_owned(),
            "result: failed: a server gave no answer (2 queries, T ms in all)".to_owned(),
        ]
    );
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: trace of www.x.net: net at {net_addr} gave no answer: no answer within 2 s"
        )
    );

    let (code, stdout, stderr) = dnsd_trace(&[
        "www.x.net",
        "--mode",
        "R",
        "--root",
        &root,
        "--timeout",
        "8",
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let lines: Vec<String> = untimed(&stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        lines[2..5],
        [
            format!("   2. root -> net {net_addr}   A www.x.net?   (the root asks for you; not seen from here: which server, from step 5)"),
            "   3. net -> root   (no usable answer in time: the root gives up)".to_owned(),
            "4. root -> you   SERVFAIL: the server could not get an answer, recursion available (T ms)".to_owned(),
        ]
    );
    assert_eq!(
        stderr.trim_end(),
        "error: trace of www.x.net: the root could not resolve it (SERVFAIL)"
    );
    assert!(started.elapsed() < WAIT);
}

/// The library's trace: a dead hop takes the timeout, not more, and says so.
#[test]
fn library_trace_bounds_each_hop() {
    let logs = tempfile::tempdir().unwrap();
    let net = silent();
    let h = hierarchy(logs.path(), net.local_addr().unwrap());
    let config = TraceConfig {
        name: dnsd::model::name::Name::parse("www.x.net").unwrap(),
        qtype: dnsd::model::QType::A,
        mode: Mode::Iterative,
        root: h.root,
        // Room for the root's referral on a loaded machine; the dead hop takes all of it.
        timeout: Duration::from_secs(2),
        output: Output::Plain,
    };
    let t = trace::trace(&config);
    assert!(!t.ok());
    assert_eq!(t.rcode, "FAILED");
    let dead = &t.hops[1];
    assert_eq!(dead.server, "net");
    assert_eq!(dead.rcode, None);
    assert_eq!(dead.error.as_deref(), Some("no answer within 2 s"));
    assert!(dead.elapsed_us >= 2_000_000, "{}", dead.elapsed_us);
    assert!(dead.elapsed_us < 2_000_000 + WAIT.as_micros() as u64);
    let text = trace::render(&t, true);
    assert!(
        text.contains("\x1b[31mfailed: no answer within 2 s\x1b[0m"),
        "{text:?}"
    );
}

/// An answer too big for a datagram comes back truncated, and the hop asks again over
/// TCP.
#[test]
fn truncated_answer_is_asked_again_over_tcp() {
    let logs = tempfile::tempdir().unwrap();
    let big: String = (0..150)
        .map(|i| format!("www.big.com 10.0.{}.{}\n", i / 100, i % 100))
        .collect();
    let h = HierarchyBuilder::new()
        .tld("com", zone(&big))
        .log_dir(logs.path())
        .start()
        .unwrap();
    let root = h.root.to_string();
    let (code, stdout, stderr) = dnsd_trace(&["www.big.com", "--root", &root, "--json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let t: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(t["hops"][0]["transport"], "udp");
    assert_eq!(t["hops"][1]["transport"], "udp+tcp");
    assert_eq!(t["addresses"].as_array().unwrap().len(), 150);
    let (code, stdout, _) = dnsd_trace(&["www.big.com", "--root", &root]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(", authoritative, truncated over UDP, asked again over TCP ("),
        "{stdout}"
    );
}

/// `--type`: every hop is asked that type; NODATA names it, and an answer of another
/// kind (NS at a TLD's apex) is shown as records. A TLD is a name `trace` takes.
#[test]
fn trace_asks_the_type_given() {
    let logs = tempfile::tempdir().unwrap();
    let net = silent();
    let h = hierarchy(logs.path(), net.local_addr().unwrap());
    let root = h.root.to_string();
    let (code, stdout, stderr) = dnsd_trace(&["www.google.com", "-t", "aaaa", "--root", &root]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let text = untimed(&stdout);
    assert!(
        text.starts_with("trace AAAA www.google.com, mode I"),
        "{text}"
    );
    assert!(
        text.contains("AAAA www.google.com? (no recursion)"),
        "{text}"
    );
    assert!(
        text.contains("NODATA: www.google.com has no AAAA record"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "result: NOERROR: www.google.com has no AAAA record (2 queries, T ms in all)\n"
        ),
        "{text}"
    );
    let (code, stdout, stderr) = dnsd_trace(&["com", "--type", "NS", "--root", &root, "--json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let t: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(t["qtype"], "NS");
    assert_eq!(t["rcode"], "NOERROR");
    let last = t["hops"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["server"], "com");
    assert_eq!(last["answer"], "answer: com NS ns.com.");
    let (code, stdout, _) = dnsd_trace(&["com", "-t", "SOA", "--mode", "R", "--root", &root]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        serials_masked(&untimed(&stdout))
            .contains("result: com SOA ns.com. hostmaster.com. S 3600 600 604800 300"),
        "{stdout}"
    );
    let (code, _, stderr) = dnsd_trace(&["www.google.com", "-t", "nope", "--root", &root]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a record type"), "{stderr}");
}
