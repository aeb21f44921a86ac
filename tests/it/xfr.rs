//! Zone transfers out: `kdig AXFR` against `dnsd tld` and `dnsd root` (refused from an
//! address not on `--allow-transfer`, the whole zone, SOA first and last, in several
//! messages, from one that is), and NSD as a secondary of a dnsd zone: it transfers the zone, and after an
//! edit, a SIGHUP and dnsd's NOTIFY, serves the new serial's data, answering every test
//! name as dnsd does.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{RData, RecordType};

use crate::dns::{com_zone_text, require_tool, sbin, Reply};
use crate::harness::{Proc, WAIT};
use crate::netns::Netns;
use crate::nsd::nsd_conf;

/// What kdig printed for a transfer: its exit status, the records (`name ttl type
/// data`, blanks squeezed), and its summary line (`;; Received ...`).
struct Kdig {
    ok: bool,
    records: Vec<String>,
    summary: String,
    raw: String,
}

/// `kdig @SERVER -b FROM ZONE TYPE` (a bounded wait).
#[track_caller]
fn kdig(server: SocketAddr, from: &str, zone: &str, qtype: &str) -> Kdig {
    kdig_with(server, from, &[zone, qtype])
}

/// `kdig @SERVER -b FROM ARGS` (a bounded wait).
#[track_caller]
fn kdig_with(server: SocketAddr, from: &str, args: &[&str]) -> Kdig {
    let out = Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-b", from])
        .arg(format!("+time={}", WAIT.as_secs()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kdig");
    let raw =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let records = raw
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let summary = raw
        .lines()
        .find(|l| l.starts_with(";; Received"))
        .unwrap_or("")
        .to_owned();
    Kdig {
        ok: out.status.success(),
        records,
        summary,
        raw,
    }
}

#[test]
#[cfg_attr(missing_kdig, ignore = "needs kdig: scripts/ci-deps.sh kdig")]
fn kdig_axfr_is_refused_from_an_address_not_on_the_list_and_streams_the_zone_to_one_on_it() {
    if !require_tool("kdig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 2,000 names besides the test zone: more than one message's worth.
    let mut zone = com_zone_text();
    for i in 0..2000 {
        zone.push_str(&format!(
            "\"host{i}.bulk.com\" = \"10.1.{}.{}\"\n",
            i / 250,
            i % 250
        ));
    }
    std::fs::write(dir.path().join("com.toml"), zone).unwrap();
    let tld = Proc::start(
        &[
            "tld",
            "com",
            "com.toml",
            "--port",
            "0",
            "--allow-transfer",
            "127.0.0.2",
            "--allow-transfer",
            "10.0.0.0/8",
        ],
        dir.path(),
    );
    let addr = tld.addr();

    let refused = kdig(addr, "127.0.0.1", "com", "AXFR");
    assert!(!refused.ok, "{}", refused.raw);
    assert!(refused.raw.contains("REFUSED"), "{}", refused.raw);
    assert!(refused.records.is_empty(), "{}", refused.raw);
    tld.wait_for("AXFR com. rd -> REFUSED transfer not allowed to 127.0.0.1 (--allow-transfer)");

    let axfr = kdig(addr, "127.0.0.2", "com", "AXFR");
    assert!(axfr.ok, "{}", axfr.raw);
    let n = axfr.records.len();
    // SOA, NS, ns.com A, the addresses (2,000, then 106 of the test zone's 6 names:
    // two of www.v6.com, 100 of big.com), 3 www CNAMEs (google, amazon, v6), SOA.
    assert_eq!(n, 1 + 2 + 2000 + 106 + 3 + 1, "{}", axfr.summary);
    let soa = &axfr.records[0];
    assert!(
        soa.starts_with("com. 60 IN SOA ns.com. hostmaster.com. "),
        "{soa}"
    );
    assert_eq!(&axfr.records[n - 1], soa, "the SOA last, as first");
    for expected in [
        "com. 3600 IN NS ns.com.",
        "ns.com. 3600 IN A 127.0.0.1",
        "google.com. 3600 IN CNAME www.google.com.",
        "www.v6.com. 3600 IN AAAA 2001:db8::6",
        "short.com. 30 IN A 192.0.2.30",
        "host1999.bulk.com. 3600 IN A 10.1.7.249",
    ] {
        assert!(axfr.records.contains(&expected.to_owned()), "{expected}");
    }
    let messages: usize = axfr
        .summary
        .split(" (")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no message count in {:?}", axfr.summary));
    assert!(messages > 1, "{}", axfr.summary);
    tld.wait_for(&format!("records in {messages} messages"));

    // IXFR from an old serial: the whole zone too (dnsd answers IXFR as AXFR).
    let ixfr = kdig(addr, "127.0.0.2", "com", "IXFR=1");
    assert!(ixfr.ok, "{}", ixfr.raw);
    assert_eq!(ixfr.records, axfr.records);
    // Over UDP: IXFR gets the SOA alone (come over TCP), AXFR is refused.
    let udp = kdig_with(addr, "127.0.0.2", &["+notcp", "com", "IXFR=1"]);
    assert!(udp.ok, "{}", udp.raw);
    assert_eq!(udp.records, std::slice::from_ref(soa), "{}", udp.raw);
    let udp = kdig_with(addr, "127.0.0.2", &["+notcp", "com", "AXFR"]);
    assert!(!udp.ok && udp.raw.contains("REFUSED"), "{}", udp.raw);

    // The root's zone: its apex (with its own server's address, issue 16) and the
    // delegation to com, as its referrals give it, in canonical order.
    let root = Proc::root_over_com(addr, dir.path(), &["--allow-transfer", "127.0.0.2"]);
    assert!(!kdig(root.addr(), "127.0.0.1", ".", "AXFR").ok);
    let axfr = kdig(root.addr(), "127.0.0.2", ".", "AXFR");
    assert!(axfr.ok, "{}", axfr.raw);
    let soa = &axfr.records[0];
    assert!(
        soa.starts_with(". 300 IN SOA ns.root. hostmaster.root. "),
        "{soa}"
    );
    assert_eq!(
        axfr.records[1..],
        [
            ". 3600 IN NS ns.root.".to_owned(),
            "com. 3600 IN NS ns.com.".to_owned(),
            format!("_dns._tcp.com. 3600 IN SRV 0 0 {} ns.com.", addr.port()),
            "ns.com. 3600 IN A 127.0.0.1".to_owned(),
            "ns.root. 3600 IN A 127.0.0.1".to_owned(),
            soa.clone(),
        ]
    );
}

/// Where the secondary NSD listens in the test's namespace; dnsd listens on 127.0.0.1.
const SECONDARY: &str = "127.0.0.2";

/// The questions whose answers NSD and dnsd must agree on: every name of the test zone
/// and the apex, by type, and names that do not exist.
const QUESTIONS: &[(&str, &str)] = &[
    ("com", "SOA"),
    ("com", "NS"),
    ("ns.com", "A"),
    ("www.google.com", "A"),
    ("google.com", "A"),
    ("google.com", "CNAME"),
    ("www.amazon.com", "A"),
    ("www.amazon.com", "AAAA"),
    ("amazon.com", "A"),
    ("v6.com", "AAAA"),
    ("www.v6.com", "A"),
    ("www.v6.com", "AAAA"),
    ("short.com", "A"),
    ("mail.corp.com", "A"),
    ("corp.com", "A"),
    ("big.com", "A"),
    ("www.new.com", "A"),
    ("new.com", "A"),
    ("nope.com", "A"),
    ("www.nope.com", "AAAA"),
];

/// A reply as compared: rcode, AA, the answer and authority sections in order of text
/// (with TTLs). The additional sections differ (NSD adds an NS's address).
fn seen(reply: &Reply) -> String {
    let mut answer: Vec<String> = reply
        .answer
        .iter()
        .map(|r| format!("{} {}", r.text(), r.ttl))
        .collect();
    answer.sort();
    let authority: Vec<String> = reply
        .authority
        .iter()
        .filter(|r| r.rtype == "SOA")
        .map(|r| format!("{} {}", r.text(), r.ttl))
        .collect();
    format!(
        "{} aa={} answer={answer:?} authority={authority:?}",
        reply.rcode,
        reply.flag("aa")
    )
}

/// NSD at `secondary` answers every one of [`QUESTIONS`] as dnsd at `primary` does,
/// over UDP and TCP.
#[track_caller]
fn assert_same_answers(ns: &Netns, primary: SocketAddr, secondary: SocketAddr) {
    for (name, qtype) in QUESTIONS {
        for transport in ["+notcp", "+tcp"] {
            let args = [*name, *qtype, "+norecurse", transport];
            let ours = ns.dig(primary, &args);
            let theirs = ns.dig(secondary, &args);
            assert_eq!(
                seen(&theirs),
                seen(&ours),
                "{name} {qtype} {transport}:\nNSD:\n{}\ndnsd:\n{}",
                theirs.raw,
                ours.raw
            );
        }
    }
}

/// The serial of the SOA `server` answers for `com`.
#[track_caller]
fn serial(ns: &Netns, server: SocketAddr) -> String {
    let reply = ns.dig(server, &["com", "SOA", "+norecurse"]);
    reply.answer[0]
        .data
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_owned()
}

#[test]
#[cfg_attr(
    any(missing_nsd, missing_dig, missing_netns),
    ignore = "needs nsd, dig, root and iproute2: scripts/ci-deps.sh nsd dig"
)]
fn nsd_as_a_secondary_transfers_a_dnsd_zone_and_follows_its_notify_after_a_reload() {
    if !(require_tool("nsd") && require_tool("dig")) {
        return;
    }
    let Some(mut ns) = Netns::new(
        "nsd_as_a_secondary_transfers_a_dnsd_zone_and_follows_its_notify_after_a_reload",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::write(path.join("com.toml"), com_zone_text()).unwrap();
    let notify = format!("{SECONDARY}:53");
    // NSD transfers from 127.0.0.1 (the address it reaches dnsd from): on the list.
    let primary = ns.dnsd(
        &[
            "tld",
            "com",
            "com.toml",
            "--port",
            "0",
            "--allow-transfer",
            "127.0.0.1",
            "--notify",
            &notify,
        ],
        path,
    );
    let secondary = SocketAddr::new(SECONDARY.parse::<IpAddr>().unwrap(), 53);
    write_secondary_conf(path, primary);
    let mut nsd = ns.command(&sbin("nsd"));
    nsd.arg("-d").arg("-c").arg(path.join("secondary.conf"));
    let index = ns.spawn(nsd);

    let first = serial(&ns, primary);
    ns.wait_ready(index, secondary, &["com", "SOA", "+norecurse"], |r| {
        r.rcode == "NOERROR"
            && r.flag("aa")
            && r.answer.len() == 1
            && r.answer[0].data.contains(&first)
    });
    assert_same_answers(&ns, primary, secondary);

    // An edit: an address changes, a name comes, a name goes.
    let edited = com_zone_text()
        .replace("142.250.72.4", "142.250.72.5")
        .replace("\"short.com\"", "\"www.new.com\"");
    std::fs::write(path.join("com.toml"), edited).unwrap();
    ns.signal(primary, "HUP");
    wait_log(&ns, primary, "com: zone changed: serial");
    let second = serial(&ns, primary);
    assert_ne!(second, first, "{}", ns.dnsd_stderr(primary));
    // NSD's refresh is an hour away: only the NOTIFY makes it transfer again now.
    ns.wait_ready(index, secondary, &["com", "SOA", "+norecurse"], |r| {
        r.answer.len() == 1 && r.answer[0].data.contains(&second)
    });
    assert_same_answers(&ns, primary, secondary);
    let www = ns.dig(secondary, &["www.google.com", "A", "+norecurse"]);
    assert_eq!(
        www.answers(),
        ["www.google.com. A 142.250.72.5"],
        "{}",
        www.raw
    );
    wait_log(
        &ns,
        primary,
        &format!("NOTIFY of com. serial {second} to {notify} acknowledged"),
    );
    let log = ns.dnsd_stderr(primary);
    for line in log
        .lines()
        .filter(|l| l.contains("XFR") || l.contains("NOTIFY"))
    {
        eprintln!("{line}");
    }
}

/// Waits (at most [`WAIT`]) for the dnsd on `addr` to log a line containing `needle`.
#[track_caller]
fn wait_log(ns: &Netns, addr: SocketAddr, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !ns.dnsd_stderr(addr).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in:\n{}",
            ns.dnsd_stderr(addr)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// NSD's configuration as a secondary of dnsd's `com` at `primary`, in `dir`.
fn write_secondary_conf(dir: &Path, primary: SocketAddr) {
    let mut conf = nsd_conf(dir, "secondary", SECONDARY, &[]);
    conf.push_str(&format!(
        "zone:\n\
         \x20   name: \"com\"\n\
         \x20   zonefile: \"com.secondary\"\n\
         \x20   request-xfr: {}@{} NOKEY\n\
         \x20   allow-notify: {} NOKEY\n",
        primary.ip(),
        primary.port(),
        primary.ip()
    ));
    std::fs::write(dir.join("secondary.conf"), conf).unwrap();
}

/// The address in a server's `NAME: listening on ADDR` line.
#[track_caller]
fn listening(p: &Proc, name: &str) -> SocketAddr {
    let line = p.wait_for(&format!("{name}: listening on "));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
#[cfg_attr(missing_kdig, ignore = "needs kdig: scripts/ci-deps.sh kdig")]
fn dnsd_up_offers_the_root_and_every_tld_zone_to_the_addresses_allowed() {
    if !require_tool("kdig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::spawn(
        &[
            "up",
            "--any-port",
            "--log-dir",
            ".",
            "--allow-transfer",
            "127.0.0.2/32",
        ],
        dir.path(),
    );
    let gov = listening(&p, "gov");
    let root = listening(&p, "root");
    assert!(!kdig(gov, "127.0.0.1", "gov", "AXFR").ok);
    let axfr = kdig(gov, "127.0.0.2", "gov", "AXFR");
    assert!(axfr.ok, "{}", axfr.raw);
    assert!(
        axfr.records
            .contains(&"www.nasa.gov. 3600 IN A 52.0.14.116".to_owned()),
        "{}",
        axfr.raw
    );
    assert!(
        axfr.records
            .contains(&"nasa.gov. 3600 IN CNAME www.nasa.gov.".to_owned()),
        "{}",
        axfr.raw
    );
    let axfr = kdig(root, "127.0.0.2", ".", "AXFR");
    assert!(axfr.ok, "{}", axfr.raw);
    for tld in ["com", "gov", "org"] {
        let ns = format!("{tld}. 3600 IN NS ns.{tld}.");
        assert!(axfr.records.contains(&ns), "{}", axfr.raw);
    }
}

/// Receives one NOTIFY on `secondary` (bounded wait): it, and who sent it.
#[track_caller]
fn receive_notify(secondary: &UdpSocket) -> (Message, SocketAddr) {
    let mut buf = [0u8; 4096];
    let (n, from) = secondary.recv_from(&mut buf).expect("a NOTIFY");
    let notify = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(notify.metadata.op_code, OpCode::Notify);
    assert_eq!(notify.metadata.message_type, MessageType::Query);
    assert!(notify.metadata.authoritative);
    assert_eq!(notify.queries[0].name().to_ascii(), "com.");
    assert_eq!(notify.queries[0].query_type(), RecordType::SOA);
    (notify, from)
}

/// The serial of the SOA a NOTIFY carries.
fn notified_serial(notify: &Message) -> u32 {
    match &notify.answers[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

/// Acknowledges `notify`, as a secondary does.
fn acknowledge(secondary: &UdpSocket, notify: &Message, to: SocketAddr) {
    let mut ack = Message::response(notify.metadata.id, OpCode::Notify);
    ack.metadata.authoritative = true;
    ack.add_query(notify.queries[0].clone());
    secondary.send_to(&ack.to_vec().unwrap(), to).unwrap();
}

#[test]
fn notify_goes_out_at_start_and_after_a_reload_that_changes_the_zone_until_acknowledged() {
    let secondary = UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary.set_read_timeout(Some(WAIT)).unwrap();
    let notify = secondary.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("com.dat"), "www.google.com 142.250.72.4\n").unwrap();
    let tld = Proc::start(
        &["tld", "com", "com.dat", "--port", "0", "--notify", &notify],
        dir.path(),
    );
    // At start: the zone is there.
    let (first, from) = receive_notify(&secondary);
    assert_eq!(from.ip(), tld.addr().ip(), "from the server's address");
    let serial = notified_serial(&first);
    acknowledge(&secondary, &first, from);
    tld.wait_for(&format!(
        "NOTIFY of com. serial {serial} to {notify} acknowledged (try 1)"
    ));

    // A reload that changes nothing tells no one; one that changes the zone does, with
    // a newer serial, and again until acknowledged.
    tld.signal("HUP");
    tld.wait_for("com: reloaded");
    std::fs::write(dir.path().join("com.dat"), "www.google.com 142.250.72.5\n").unwrap();
    tld.signal("HUP");
    let changed = tld.wait_for("com: zone changed: serial ");
    let (unanswered, _) = receive_notify(&secondary);
    let newer = notified_serial(&unanswered);
    assert!(changed.ends_with(&format!("serial {newer}")), "{changed}");
    assert!(newer.wrapping_sub(serial) < 1 << 31 && newer != serial);
    let (again, from) = receive_notify(&secondary);
    assert_eq!(notified_serial(&again), newer);
    assert_ne!(again.metadata.id, unanswered.metadata.id);
    acknowledge(&secondary, &again, from);
    tld.wait_for(&format!(
        "NOTIFY of com. serial {newer} to {notify} acknowledged (try 2)"
    ));
}
