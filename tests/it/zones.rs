//! The record store: `dnsd up`'s third level (a second-level zone on its own server),
//! and dnsd's answers against NSD's: the project's sample master files
//! (`zones/example.com.zone`, every record type dnsd serves with a wildcard, CNAME
//! chains, empty non-terminals, a delegation with glue, MX and SRV with their
//! additional records, and the reverse zone `zones/2.0.192.in-addr.arpa.zone`) served by
//! NSD and by `dnsd auth`, on port 53 of two addresses in a network namespace, and every
//! answer compared name by name and type by type, over UDP and over TCP.
//!
//! NSD (with its default `minimal-responses: no`) also puts the zone's NS records, and
//! their addresses, in the authority and additional sections of a positive answer;
//! dnsd does not (as BIND's `minimal-responses no-auth`): those records, and only
//! those, are left out of NSD's side before comparing.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;

use std::path::Path;
use std::process::Stdio;

use crate::dns::{parse_dig, require_tool, Reply, Rr};
use crate::harness::{run_dnsd, zones, DnsTcp, Line, Proc, WAIT};
use crate::netns::Netns;
use crate::nsd::{nsd_conf, start_nsd};

const NSD_AT: &str = "127.0.0.2";
const DNSD_AT: &str = "127.0.0.3";

const FILES: [(&str, &str); 2] = [
    ("example.com", "example.com.zone"),
    ("2.0.192.in-addr.arpa", "2.0.192.in-addr.arpa.zone"),
];

/// Every name asked (relative to example.com unless it ends with a dot).
const NAMES: &[&str] = &[
    "@",
    "www",
    "ftp",
    "alias",
    "dangling",
    "away",
    "mail",
    "mail2",
    "ns1",
    "ns2",
    "_sip._tcp",
    "_tcp",
    "sip",
    "wild",
    "x.wild",
    "a.b.wild",
    "*.wild",
    "deep",
    "b.deep",
    "a.b.deep",
    "c.b.deep",
    "dept",
    "www.dept",
    "ns.dept",
    "nosuch",
    "info",
    "opaque",
    "2.0.192.in-addr.arpa.",
    "80.2.0.192.in-addr.arpa.",
    "25.2.0.192.in-addr.arpa.",
    "99.2.0.192.in-addr.arpa.",
];

/// Every type asked of each name.
const TYPES: &[&str] = &[
    "A",
    "AAAA",
    "CNAME",
    "NS",
    "SOA",
    "MX",
    "TXT",
    "SRV",
    "PTR",
    "CAA",
    "HINFO",
    "TYPE65280",
];

fn sorted(rrs: &[Rr]) -> Vec<String> {
    let mut v: Vec<String> = rrs
        .iter()
        .map(|r| format!("{} {} {} {}", r.name.to_lowercase(), r.ttl, r.rtype, r.data))
        .collect();
    v.sort();
    v
}

/// What is compared of a reply: the rcode, the AA bit, and the three sections (NSD's
/// extra NS records of a positive answer left out, see the module's doc).
fn comparable(reply: &Reply, nsd: bool) -> (String, bool, Vec<String>, Vec<String>, Vec<String>) {
    let positive = reply.rcode == "NOERROR" && !reply.answer.is_empty();
    let mut authority = reply.authority.clone();
    let mut additional = reply.additional.clone();
    if nsd && positive {
        let servers: Vec<String> = authority
            .iter()
            .filter(|r| r.rtype == "NS")
            .map(|r| r.data.to_lowercase())
            .collect();
        authority.retain(|r| r.rtype != "NS");
        let asked_ns = reply.answer.iter().any(|r| r.rtype == "NS");
        let targets: Vec<String> = reply
            .answer
            .iter()
            .filter_map(|r| match r.rtype.as_str() {
                "MX" | "SRV" | "NS" => r.data.split_whitespace().last().map(str::to_lowercase),
                _ => None,
            })
            .collect();
        additional.retain(|r| {
            let name = r.name.to_lowercase();
            asked_ns || targets.contains(&name) || !servers.contains(&name)
        });
    }
    (
        reply.rcode.clone(),
        reply.flag("aa"),
        sorted(&reply.answer),
        sorted(&authority),
        sorted(&additional),
    )
}

/// Asks `server` every question of `batch` (dig's `-f` lines) with one dig in the
/// namespace, over `transport` (`+notcp` or `+tcp`: in a batch, only dig's own options
/// choose it), and returns the replies in order.
#[track_caller]
fn dig_batch(
    ns: &Netns,
    server: SocketAddr,
    transport: &str,
    batch: &Path,
    count: usize,
) -> Vec<Reply> {
    let out = ns
        .command("dig")
        .arg(transport)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-f"])
        .arg(batch)
        .args(["+noall", "+comments", "+question", "+answer", "+authority"])
        .args(["+additional", "+stats", "+tries=1", "+time=5"])
        .stdin(Stdio::null())
        .output()
        .expect("cannot run dig");
    let text = String::from_utf8_lossy(&out.stdout);
    let replies: Vec<Reply> = text
        .split(";; Got answer:")
        .skip(1)
        .map(|one| parse_dig(&format!(";; Got answer:{one}")))
        .collect();
    assert_eq!(replies.len(), count, "{text}");
    replies
}

#[test]
#[cfg_attr(
    any(missing_nsd, missing_dig, missing_netns),
    ignore = "needs nsd, dig, root and iproute2: scripts/ci-deps.sh nsd dig"
)]
fn master_files_are_served_as_nsd_serves_them_over_udp_and_tcp() {
    if !(require_tool("nsd") && require_tool("dig")) {
        return;
    }
    let Some(mut ns) = Netns::new("master_files_are_served_as_nsd_serves_them_over_udp_and_tcp")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    for (_, file) in FILES {
        std::fs::copy(zones(file), path.join(file)).unwrap();
    }
    let conf = path.join("nsd.conf");
    std::fs::write(&conf, nsd_conf(path, "nsd", NSD_AT, &FILES)).unwrap();
    start_nsd(&mut ns, &conf, NSD_AT, "example.com");
    let nsd = SocketAddr::new(NSD_AT.parse().unwrap(), 53);
    let mut args = vec!["auth", "--bind", DNSD_AT, "--port", "53"];
    args.extend(FILES.iter().map(|(_, file)| *file));
    let dnsd = ns.dnsd(&args, path);

    let mut questions = Vec::new();
    for name in NAMES {
        let name = match *name {
            "@" => "example.com.".to_owned(),
            n if n.ends_with('.') => n.to_owned(),
            n => format!("{n}.example.com."),
        };
        for qtype in TYPES {
            questions.push(format!("{name} {qtype} +norecurse"));
        }
    }
    let batch = path.join("questions");
    std::fs::write(&batch, questions.join("\n") + "\n").unwrap();
    let mut compared = 0;
    let mut all = Vec::new();
    for transport in ["+notcp", "+tcp"] {
        let theirs = dig_batch(&ns, nsd, transport, &batch, questions.len());
        let ours = dig_batch(&ns, dnsd, transport, &batch, questions.len());
        for ((question, ours), theirs) in questions.iter().zip(&ours).zip(&theirs) {
            assert_eq!(
                comparable(ours, false),
                comparable(theirs, true),
                "{question} {transport}: dnsd (left) and NSD (right) differ\n\
                 dnsd:\n{}\nNSD:\n{}",
                ours.raw,
                theirs.raw
            );
            compared += 1;
        }
        all.extend(ours);
    }
    let ours = all;
    assert_eq!(compared, 2 * NAMES.len() * TYPES.len());
    // The comparison saw what the file holds: answers, additional records, referrals,
    // negative answers, over both transports.
    let count = |f: &dyn Fn(&Reply) -> bool| ours.iter().filter(|r| f(r)).count();
    assert!(count(&|r| !r.answer.is_empty()) > 60);
    assert!(count(&|r| r.answer.iter().any(|a| a.rtype == "MX") && r.additional.len() == 3) == 2);
    assert!(count(&|r| r.answer.iter().any(|a| a.rtype == "SRV") && r.additional.len() == 1) == 2);
    assert!(count(&|r| !r.flag("aa") && r.authority.len() == 2) >= 2 * 2 * TYPES.len());
    assert!(count(&|r| r.rcode == "NXDOMAIN") > 10);
    assert!(count(&|r| r.transport.as_deref() == Some("TCP")) == questions.len());
}

/// Starts `dnsd up --any-port` in `dir` and returns it with its banner's lines.
#[track_caller]
fn up(dir: &Path) -> (Proc, Vec<String>) {
    let mut up = Proc::spawn(&["up", "--any-port", "--log-dir", "."], dir);
    let stdout = up.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    while let Ok(line) = rx.recv_timeout(WAIT) {
        let done = line.starts_with("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    (up, banner)
}

/// The address on the banner's line that starts with `prefix`.
#[track_caller]
fn address(banner: &[String], prefix: &str) -> SocketAddr {
    let line = banner
        .iter()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {banner:#?}"));
    line.split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// Through `dnsd local`, every type of a dnsd zone reaches a DNS client: MX (with the
/// type the local server does not interpret kept whole: TXT, CAA, RFC 3597's generic
/// form), from the third level's server.
#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn every_type_reaches_a_client_through_dnsd_local() {
    if !require_tool("dig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_up, banner) = up(dir.path());
    let local = address(&banner, "local ");
    for (name, qtype, answer) in [
        ("example.com", "MX", "example.com. MX 10 mail.example.com."),
        ("example.com", "TXT", "example.com. TXT \"v=spf1 mx -all\""),
        (
            "example.com",
            "CAA",
            "example.com. CAA 0 issue \"letsencrypt.org\"",
        ),
        (
            "_sip._tcp.example.com",
            "SRV",
            "_sip._tcp.example.com. SRV 10 60 5060 sip.example.com.",
        ),
        (
            "opaque.example.com",
            "TYPE65280",
            "opaque.example.com. TYPE65280 \\# 4 0A000001",
        ),
        (
            "x.wild.example.com",
            "A",
            "x.wild.example.com. A 192.0.2.99",
        ),
    ] {
        let reply = crate::dns::dig(local, &[name, qtype]);
        assert_eq!(reply.rcode, "NOERROR", "{}", reply.raw);
        assert!(
            reply.answers().contains(&answer.to_owned()),
            "{answer}: {}",
            reply.raw
        );
    }
}

/// `dnsd up` (the sample zones built in) runs a third level as the textbook draws it:
/// `example.com` on a server of its own, which `com` delegates to; its banner shows it
/// under com, `dnsd trace` walks root -> com -> example.com, and the local server
/// resolves a name there over DNS and over the line protocol.
#[test]
fn up_runs_a_second_level_zone_on_its_own_server_delegated_by_com() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, banner) = up(dir.path());
    let at = |prefix: &str| address(&banner, prefix);
    let (root, com, local) = (at("root "), at("tld com "), at("local "));
    let zone = banner
        .iter()
        .position(|l| l.trim_start().starts_with("zone example.com"))
        .unwrap_or_else(|| panic!("no example.com in {banner:#?}"));
    assert!(banner[zone - 1].contains("tld com"), "{banner:#?}");
    assert!(banner[zone].ends_with("(delegated by com)"), "{banner:#?}");
    let example = at("zone example.com");

    let (code, trace, _) = run_dnsd(
        &["trace", "www.example.com", "--root", &root.to_string()],
        dir.path(),
        "",
    );
    assert_eq!(code, 0, "{trace}");
    for hop in [
        format!("you -> root {root}"),
        format!("referral: com is at ns.com {com}"),
        format!("referral: example.com is at ns1.example.com {example}"),
        format!("you -> example.com {example}"),
        "result: www.example.com is 192.0.2.80 (3 queries".to_owned(),
    ] {
        assert!(trace.contains(&hop), "{hop:?} not in:\n{trace}");
    }

    let mut dns = DnsTcp::connect(local);
    assert_eq!(
        dns.address("mail.example.com"),
        Some("192.0.2.25".parse().unwrap())
    );
    let mut line = Line::connect(local);
    line.send("alice");
    line.recv();
    assert_eq!(
        line.ask("1, sip.example.com, I"),
        "0X01, default_local, 192.0.2.60"
    );
}

/// The verdict of a checker on a master file: good, or bad with the line it names first
/// (`FILE:LINE:` in its messages), if any.
fn verdict(ok: bool, output: &str, file: &str) -> (bool, Option<usize>) {
    let line = output.lines().find_map(|l| {
        let at = l.find(&format!("{file}:"))?;
        let rest = &l[at + file.len() + 1..];
        rest.split(':').next()?.parse().ok()
    });
    (ok, if ok { None } else { line })
}

fn run_checker(program: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `dnsd check` says of master files what BIND's `named-checkzone` and NSD's
/// `nsd-checkzone` say: the project's sample files are good; each broken file that both
/// refuse (a bad address, CNAME and other data, `$INCLUDE` of a missing file, no SOA,
/// a record cut short, two SOAs, an unknown type) it refuses too, at the line BIND names;
/// and a delegation without glue, which both take, it takes.
#[test]
#[cfg_attr(
    missing_checkzone,
    ignore = "needs named-checkzone and nsd-checkzone: scripts/ci-deps.sh nsd named-checkzone"
)]
fn dnsd_check_agrees_with_named_checkzone_and_nsd_checkzone() {
    if !(require_tool("named-checkzone") && require_tool("nsd-checkzone")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let head = "$ORIGIN t.example.\n$TTL 3600\n@ SOA ns hm 1 3600 600 604800 300\n  NS ns\n\
                ns A 192.0.2.1\n";
    let mut cases: Vec<(String, String)> = vec![
        ("good.zone".into(), head.into()),
        ("noglue.zone".into(), format!("{head}sub NS ns.sub\n")),
        ("address.zone".into(), format!("{head}x A 300.1.1.1\n")),
        (
            "cname.zone".into(),
            format!("{head}c CNAME ns\nc A 192.0.2.3\n"),
        ),
        (
            "include.zone".into(),
            format!("{head}$INCLUDE missing.zone\n"),
        ),
        (
            "nosoa.zone".into(),
            "$ORIGIN t.example.\n$TTL 1\nwww A 192.0.2.1\n".into(),
        ),
        ("short.zone".into(), format!("{head}m MX 10\n")),
        (
            "twosoa.zone".into(),
            format!("{head}@ SOA ns hm 2 3600 600 604800 300\n"),
        ),
        ("type.zone".into(), format!("{head}x BOGUS 1\n")),
    ];
    for (_, file) in FILES {
        cases.push((file.into(), std::fs::read_to_string(zones(file)).unwrap()));
    }
    for (file, text) in &cases {
        std::fs::write(path.join(file), text).unwrap();
    }
    for (file, _) in &cases {
        let origin = FILES
            .iter()
            .find(|(_, f)| f == file)
            .map_or("t.example", |(origin, _)| origin);
        let (ok, out) = run_checker("named-checkzone", &[origin, file], path);
        let named = verdict(ok, &out, file);
        let (ok, out) = run_checker(&crate::dns::sbin("nsd-checkzone"), &[origin, file], path);
        let nsd = verdict(ok, &out, file);
        let (ok, out) = run_checker(crate::harness::dnsd_bin(), &["check", file], path);
        let dnsd = verdict(ok, &out, file);
        assert_eq!(
            named.0, nsd.0,
            "{file}: BIND and NSD disagree, no use as a case"
        );
        assert_eq!(dnsd.0, named.0, "{file}: dnsd says {out}");
        if !dnsd.0 && named.1.is_some() {
            assert_eq!(dnsd.1, named.1, "{file}: dnsd says {out}");
        }
    }
}

/// A lab file's `[zone."NAME"]` runs a second-level zone from its master file on a
/// server of its own, which the lab's TLD server delegates to: mode I and mode R reach
/// it through the root and `com`.
#[test]
fn a_lab_zone_table_runs_a_delegated_second_level_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        zones("example.com.zone"),
        dir.path().join("example.com.zone"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("lab.toml"),
        "[root]\nport = 0\n[local]\nport = 0\n[tld.com]\nport = 0\n\
         [tld.com.records]\n\"www.a.com\" = \"10.0.0.1\"\n\
         [zone.\"example.com\"]\nfile = \"example.com.zone\"\nport = 0\n",
    )
    .unwrap();
    let up = Proc::start(&["up", "--config", "lab.toml"], dir.path());
    let line = up.wait_for("default_local: listening on ");
    let local: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let mut c = Line::connect(local);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.example.com, I"),
        "0X01, default_local, 192.0.2.80"
    );
    assert_eq!(
        c.ask("2, mail.example.com, R"),
        "0X01, default_local, 192.0.2.25"
    );
    assert_eq!(c.ask("3, www.a.com, I"), "0X01, default_local, 10.0.0.1");
}
