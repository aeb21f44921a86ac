//! The local server's iterative resolution against authoritative servers it has never
//! met: hand-written DNS servers in this process (each on a loopback UDP port of its
//! own, found by dnsd through the SRV port hint of the referral naming it) that refer
//! any number of levels down, give no glue or glue for the wrong names, or forge; and
//! the delegation cache seen from the root's log.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnsd::model::{Outcome, Resolution};
use dnsd::ops::metrics::Metrics;
use dnsd::resolve::upstream::UpstreamProtocol;
use dnsd::roles::local::LocalConfig;
use dnsd::roles::RoleConfig;
use dnsd::server::Shutdown;
use dnsd::zone::Zone;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{self, rdata, RData, Record};

use crate::harness::{dnsd_bin, DnsTcp, Line, Proc, PATIENCE, WAIT};

/// What a hand-written server answers: the records of each section, by question name.
#[derive(Clone, Default)]
struct Reply {
    aa: bool,
    rcode: Option<ResponseCode>,
    answers: Vec<Record>,
    authority: Vec<Record>,
    additional: Vec<Record>,
}

fn name(s: &str) -> rr::Name {
    rr::Name::from_ascii(s).unwrap()
}

fn a(owner: &str, ip: &str) -> Record {
    let ip = ip.parse().unwrap();
    Record::from_rdata(name(owner), 300, RData::A(rdata::A(ip)))
}

fn cname(owner: &str, target: &str) -> Record {
    Record::from_rdata(name(owner), 300, RData::CNAME(rdata::CNAME(name(target))))
}

/// An authoritative answer.
fn answer(records: Vec<Record>) -> Reply {
    Reply {
        aa: true,
        answers: records,
        ..Reply::default()
    }
}

/// A referral to `zone`, served by `ns`: its NS record, its glue at `glue` if given, and
/// dnsd's SRV port hint naming `ns` with `port`.
fn referral(zone: &str, ns: &str, glue: Option<IpAddr>, port: u16) -> Reply {
    let mut reply = standard_referral(zone, ns, glue);
    reply.additional.push(Record::from_rdata(
        name(&format!("_dns._tcp.{zone}")),
        300,
        RData::SRV(rdata::SRV::new(0, 0, port, name(ns))),
    ));
    reply
}

/// A referral as any authoritative server writes it: NS, and glue if given (no port:
/// every name server is on 53).
fn standard_referral(zone: &str, ns: &str, glue: Option<IpAddr>) -> Reply {
    let mut additional = Vec::new();
    if let Some(ip) = glue {
        let data = match ip {
            IpAddr::V4(ip) => RData::A(rdata::A(ip)),
            IpAddr::V6(ip) => RData::AAAA(rdata::AAAA(ip)),
        };
        additional.push(Record::from_rdata(name(ns), 300, data));
    }
    Reply {
        aa: false,
        authority: vec![Record::from_rdata(
            name(zone),
            300,
            RData::NS(rdata::NS(name(ns))),
        )],
        additional,
        ..Reply::default()
    }
}

/// A referral to the server at `to`, its glue in the zone.
fn refer(zone: &str, to: SocketAddr) -> Reply {
    referral(zone, &format!("ns.{zone}"), Some(to.ip()), to.port())
}

/// A hand-written authoritative server: one UDP socket on loopback, answering each
/// question from `answer` (by question name, lowercase, no trailing dot); NXDOMAIN for
/// names it has no reply for. Every question is written down. Stops when dropped.
struct Auth {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often a server's loop looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);

impl Auth {
    fn start(ip: &str, replies: HashMap<String, Reply>) -> Auth {
        Auth::on(UdpSocket::bind((ip, 0)).unwrap(), replies)
    }

    fn on(socket: UdpSocket, replies: HashMap<String, Reply>) -> Auth {
        let addr = socket.local_addr().unwrap();
        socket.set_read_timeout(Some(POLL)).unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (asked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded however long a test holds it: a test lasts seconds, not minutes.
            let until = Instant::now() + 30 * WAIT;
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let Some(q) = query.queries.first().cloned() else {
                    continue;
                };
                let qname = q.name().to_ascii().to_ascii_lowercase();
                let qname = qname.trim_end_matches('.').to_owned();
                log.lock()
                    .unwrap()
                    .push(format!("{} {qname}", q.query_type()));
                let reply = replies.get(&qname).cloned().unwrap_or_else(|| Reply {
                    aa: true,
                    rcode: Some(ResponseCode::NXDomain),
                    authority: vec![soa()],
                    ..Reply::default()
                });
                let mut response =
                    Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
                response.metadata.authoritative = reply.aa;
                response.metadata.response_code = reply.rcode.unwrap_or(ResponseCode::NoError);
                response.add_query(q);
                for r in reply.answers {
                    response.add_answer(r);
                }
                for r in reply.authority {
                    response.add_authority(r);
                }
                for r in reply.additional {
                    response.add_additional(r);
                }
                let _ = socket.send_to(&response.to_vec().unwrap(), from);
            }
        });
        Auth {
            addr,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    /// The questions asked so far, as `TYPE name`.
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// The root's SOA, for the NXDOMAIN of names a server has no reply for (each server
/// here stands for a zone at most one level below it, so the root's SOA would not do for
/// the others: they are given names they have replies for).
fn soa() -> Record {
    let soa = rdata::SOA::new(
        name("ns.root."),
        name("hostmaster.root."),
        1,
        3600,
        600,
        86400,
        60,
    );
    Record::from_rdata(rr::Name::root(), 60, RData::SOA(soa))
}

impl Drop for Auth {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The replies of a server, by name.
fn replies(entries: Vec<(&str, Reply)>) -> HashMap<String, Reply> {
    entries
        .into_iter()
        .map(|(n, r)| (n.to_owned(), r))
        .collect()
}

/// A local server in this process asking `root` over DNS; stopped when dropped.
struct Local {
    addr: SocketAddr,
    shutdown: Shutdown,
    running: Option<dnsd::roles::Running>,
    _logs: tempfile::TempDir,
}

impl Local {
    fn start(root: SocketAddr) -> Local {
        let logs = tempfile::tempdir().unwrap();
        let config = LocalConfig::new(root, Zone::default(), logs.path())
            .with_upstream_protocol(UpstreamProtocol::Dns)
            .with_upstream_timeout(PATIENCE);
        let shutdown = Shutdown::new();
        let running = config
            .start(shutdown.clone(), &Metrics::disabled())
            .unwrap();
        Local {
            addr: running.addr,
            shutdown,
            running: Some(running),
            _logs: logs,
        }
    }

    /// Asks for `name`'s A record over DNS (RD set: resolve; clear: the cache only).
    fn ask(&self, name: &str, resolve: bool) -> Resolution {
        DnsTcp::connect(self.addr).ask(name, resolve)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(r) = self.running.take() {
            r.join();
        }
    }
}

fn ip_of(r: &Resolution) -> Option<String> {
    r.first_ip().map(|ip| ip.to_string())
}

/// Regression (issue 15): an authoritative answer from the root was believed for any
/// name, so one forged datagram "from the root" poisoned www.victim.com (and the cache).
#[test]
fn an_answer_from_the_root_for_a_name_below_a_tld_is_not_believed() {
    let root = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "www.victim.com",
            answer(vec![a("www.victim.com", "6.6.6.6")]),
        )]),
    );
    let local = Local::start(root.addr);
    let got = local.ask("www.victim.com", true);
    assert_eq!(got.outcome, Outcome::ServFail);
    // Nothing was cached: asked from the cache only, it is not there.
    assert_eq!(local.ask("www.victim.com", false).outcome, Outcome::Refused);
}

/// root -> com -> example.com -> an answer: three servers, each referring one level
/// further down, as deep as the delegations go.
#[test]
fn three_levels_of_delegation_resolve() {
    let example = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "www.example.com",
            answer(vec![a("www.example.com", "93.184.216.34")]),
        )]),
    );
    let com = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "www.example.com",
            refer("example.com", example.addr),
        )]),
    );
    let root = Auth::start(
        "127.0.0.1",
        replies(vec![("www.example.com", refer("com", com.addr))]),
    );
    let local = Local::start(root.addr);
    assert_eq!(
        ip_of(&local.ask("www.example.com", true)).as_deref(),
        Some("93.184.216.34")
    );
    for server in [&root, &com, &example] {
        assert_eq!(server.asked(), ["A www.example.com"]);
    }
    // Over the line protocol too, in mode I: the same walk (here all of it cached).
    let mut c = Line::connect(local.addr);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.example.com, I"),
        "0X00, default_local, 93.184.216.34"
    );
}

/// A referral whose name server is outside the zone and comes without glue: its address
/// is looked up from the root like any name, then it is asked.
#[test]
fn a_glueless_delegation_resolves() {
    let example = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "www.example.com",
            answer(vec![a("www.example.com", "10.9.9.9")]),
        )]),
    );
    let net = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "ns.dns-host.net",
            answer(vec![a("ns.dns-host.net", "127.0.0.1")]),
        )]),
    );
    let com = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "www.example.com",
            referral("example.com", "ns.dns-host.net", None, example.addr.port()),
        )]),
    );
    let root = Auth::start(
        "127.0.0.1",
        replies(vec![
            ("www.example.com", refer("com", com.addr)),
            ("ns.dns-host.net", refer("net", net.addr)),
        ]),
    );
    let local = Local::start(root.addr);
    assert_eq!(
        ip_of(&local.ask("www.example.com", true)).as_deref(),
        Some("10.9.9.9")
    );
    assert_eq!(net.asked(), ["A ns.dns-host.net"]);
}

/// Glue for a name server outside the zone referred to is not believed (the root has no
/// say over where ns.evil.net is): the name is looked up instead, and the server at the
/// glue's address is never asked.
#[test]
fn glue_outside_the_delegated_zone_is_ignored_and_the_name_server_looked_up() {
    // The real com server on 127.0.0.2, a forger on 127.0.0.1 on the same port: the
    // referral's SRV gives the port, the glue (forged) or a look-up (real) the address.
    let (com, forger) = (0..20)
        .find_map(|_| {
            let real = UdpSocket::bind("127.0.0.2:0").unwrap();
            let port = real.local_addr().unwrap().port();
            let forger = UdpSocket::bind(("127.0.0.1", port)).ok()?;
            let real = Auth::on(
                real,
                replies(vec![(
                    "www.example.com",
                    answer(vec![a("www.example.com", "10.9.9.9")]),
                )]),
            );
            let forger = Auth::on(
                forger,
                replies(vec![(
                    "www.example.com",
                    answer(vec![a("www.example.com", "6.6.6.6")]),
                )]),
            );
            Some((real, forger))
        })
        .expect("a port free on both 127.0.0.1 and 127.0.0.2 in 20 tries");
    let net = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "ns.evil.net",
            answer(vec![a("ns.evil.net", "127.0.0.2")]),
        )]),
    );
    let glue = Some("127.0.0.1".parse().unwrap());
    let root = Auth::start(
        "127.0.0.1",
        replies(vec![
            (
                "www.example.com",
                referral("com", "ns.evil.net", glue, com.addr.port()),
            ),
            ("ns.evil.net", refer("net", net.addr)),
        ]),
    );
    let local = Local::start(root.addr);
    assert_eq!(
        ip_of(&local.ask("www.example.com", true)).as_deref(),
        Some("10.9.9.9")
    );
    assert_eq!(forger.asked(), Vec::<String>::new());
    assert_eq!(net.asked(), ["A ns.evil.net"]);
}

/// Regression (issue 15): an answer's records for names outside the answering server's
/// zone (a CNAME's target, with an address only the target's own servers may give) were
/// cached with it.
#[test]
fn out_of_bailiwick_answer_records_never_reach_the_cache() {
    let net = Auth::start(
        "127.0.0.1",
        replies(vec![("cdn.b.net", answer(vec![a("cdn.b.net", "1.2.3.4")]))]),
    );
    let com = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "www.a.com",
            answer(vec![
                cname("www.a.com", "cdn.b.net"),
                a("cdn.b.net", "6.6.6.6"),
            ]),
        )]),
    );
    let root = Auth::start(
        "127.0.0.1",
        replies(vec![
            ("www.a.com", refer("com", com.addr)),
            ("cdn.b.net", refer("net", net.addr)),
        ]),
    );
    let local = Local::start(root.addr);
    assert_eq!(
        ip_of(&local.ask("www.a.com", true)).as_deref(),
        Some("1.2.3.4")
    );
    let cached = local.ask("www.a.com", false);
    assert_eq!(ip_of(&cached).as_deref(), Some("1.2.3.4"));
    let Outcome::Answer(records) = &cached.outcome else {
        panic!("{cached:?}")
    };
    assert!(records
        .iter()
        .all(|r| r.data.ip() != Some("6.6.6.6".parse().unwrap())));
    assert_eq!(net.asked(), ["A cdn.b.net"]);
}

/// A referral that goes back up is refused, not followed round in a loop.
#[test]
fn a_referral_not_below_the_zone_asked_is_refused() {
    // example.com's server refers back up to com (never asked: refused on sight).
    let unasked: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let back_up = Auth::start(
        "127.0.0.1",
        replies(vec![("www.example.com", refer("com", unasked))]),
    );
    let com = Auth::start(
        "127.0.0.1",
        replies(vec![(
            "www.example.com",
            refer("example.com", back_up.addr),
        )]),
    );
    let root = Auth::start(
        "127.0.0.1",
        replies(vec![("www.example.com", refer("com", com.addr))]),
    );
    let local = Local::start(root.addr);
    assert_eq!(
        local.ask("www.example.com", true).outcome,
        Outcome::ServFail
    );
    assert_eq!(back_up.asked(), ["A www.example.com"]);
    assert_eq!(com.asked(), ["A www.example.com"]);
}

/// The lines of `p`'s stderr that contain every one of `needles`.
fn count(p: &Proc, needles: &[&str]) -> usize {
    p.stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Asks the root a question of its own and waits for its log line: every line the root
/// logged before is then in.
fn sync_root_log(root: &Proc, marker: &str) {
    let mut c = Line::connect(root.addr());
    c.ask(&format!("0, {marker}.com, I"));
    root.wait_for(&format!("0, {marker}.com, I"));
}

/// Issue 15: after the first miss under com, the local server asks the com server
/// directly (its log says the delegation came from the cache); with
/// `--no-delegation-cache` it asks the root every time, as the original did.
#[test]
fn the_delegation_cache_skips_the_root_and_the_flag_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let zone = crate::harness::zones("com.dat");
    let com = Proc::start(
        &["tld", "com", zone.to_str().unwrap(), "--port", "0"],
        dir.path(),
    );
    let root = Proc::root_over_com(com.addr(), dir.path(), &[]);
    let root_arg = root.addr().to_string();
    for (i, cached) in [true, false].into_iter().enumerate() {
        let logs = tempfile::tempdir().unwrap();
        let extra: &[&str] = if cached {
            &[]
        } else {
            &["--no-delegation-cache"]
        };
        let local = Proc::local(&root_arg, logs.path(), extra);
        let mut c = Line::connect(local.addr());
        assert_eq!(c.ask("alice"), "You are connected to the Server");
        assert_eq!(
            c.ask("1, www.google.com, I"),
            "0X01, default_local, 142.250.72.4"
        );
        assert_eq!(
            c.ask("2, www.amazon.com, I"),
            "0X01, default_local, 205.251.242.103"
        );
        // Over DNS too: one delegation for both protocols.
        let mut dns = DnsTcp::connect(local.addr());
        assert_eq!(
            dns.address("www.github.com"),
            Some("140.82.112.4".parse().unwrap())
        );
        sync_root_log(&root, &format!("marker{i}"));
        let referrals = count(&root, &["asked 1, www.google.com, I -> 0X02"])
            + count(&root, &["asked 2, www.amazon.com, I -> 0X02"])
            + count(&root, &["A www.github.com. -> NOERROR referral"]);
        if cached {
            assert_eq!(referrals, 1, "only the first miss asks the root");
            local.wait_for(
                "www.amazon.com: asking the servers of com. directly: delegation from the cache",
            );
            local.wait_for(
                "www.github.com: asking the servers of com. directly: delegation from the cache",
            );
        } else {
            assert_eq!(referrals, 1 + 3, "every miss asks the root");
            assert_eq!(count(&local, &["delegation from the cache"]), 0);
        }
    }
}

/// Runs `ip ARGS`, returning its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace of this test's own, deleted when dropped. Named `dnsdi53-PID`;
/// those an earlier run left behind (its process gone) are deleted first.
struct Netns(String);

impl Netns {
    fn new() -> Result<Netns, String> {
        if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let name = line.split_whitespace().next().unwrap_or("");
                let Some(pid) = name.strip_prefix("dnsdi53-") else {
                    continue;
                };
                if pid.parse::<u32>().is_ok()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = ip(&["netns", "del", name]);
                }
            }
        }
        let name = format!("dnsdi53-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `f` on a thread of its own inside the namespace: the sockets it makes belong
    /// to the namespace, wherever they are used from afterwards.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: moves only this thread, which ends with `f`, into the namespace
            // whose file is held open for the call.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.0]) {
            eprintln!("iterative: cannot delete namespace {}: {e}", self.0);
        }
    }
}

/// dnsd's local server resolves through standard authoritative servers, each on port 53
/// of its own address, that know nothing of dnsd's SRV port hint, laid out as on the
/// Internet: com and net served by one server named under net (the root's glue for it,
/// outside com, is not believed: its address is asked of net's server, whose own glue
/// is inside net), and example.com by a server named under net given without glue.
/// They live in a network namespace this test makes (port 53 on addresses of its
/// own), as does the local server.
#[test]
#[cfg_attr(missing_netns, ignore = "needs root and iproute2 (network namespaces)")]
fn standard_servers_on_port_53_without_port_hints_resolve() {
    let ns = match Netns::new() {
        Ok(ns) => ns,
        Err(e) if std::env::var_os("DNSD_REQUIRE_NETNS").is_some() => {
            panic!("network namespaces are required (DNSD_REQUIRE_NETNS) but {e}")
        }
        Err(e) => return eprintln!("skipping: cannot create a network namespace ({e})"),
    };
    let [root, gtld, example] = ns.run(|| {
        ["127.0.0.1", "127.0.0.2", "127.0.0.4"].map(|ip| UdpSocket::bind((ip, 53)).unwrap())
    });
    let gtld_ip = Some("127.0.0.2".parse().unwrap());
    let to_net = standard_referral("net", "a.gtld-servers.net", gtld_ip);
    let (root, gtld, example) = (
        Auth::on(
            root,
            replies(vec![
                (
                    "www.example.com",
                    standard_referral("com", "a.gtld-servers.net", gtld_ip),
                ),
                ("a.gtld-servers.net", to_net.clone()),
                ("ns.dns-host.net", to_net),
            ]),
        ),
        Auth::on(
            gtld,
            replies(vec![
                (
                    "www.example.com",
                    standard_referral("example.com", "ns.dns-host.net", None),
                ),
                (
                    "a.gtld-servers.net",
                    answer(vec![a("a.gtld-servers.net", "127.0.0.2")]),
                ),
                (
                    "ns.dns-host.net",
                    answer(vec![a("ns.dns-host.net", "127.0.0.4")]),
                ),
            ]),
        ),
        Auth::on(
            example,
            replies(vec![(
                "www.example.com",
                answer(vec![a("www.example.com", "93.184.216.34")]),
            )]),
        ),
    );
    let logs = tempfile::tempdir().unwrap();
    let mut command = Command::new("ip");
    command
        .args([
            "netns",
            "exec",
            &ns.0,
            dnsd_bin(),
            "local",
            "--port",
            "0",
            "--root",
            "127.0.0.1:53",
        ])
        .args([
            "--upstream-protocol",
            "dns",
            "--upstream-timeout",
            &PATIENCE.as_secs().to_string(),
        ])
        .arg("--log-dir")
        .arg(logs.path());
    let mut local = Proc::run(command);
    let addr = local.wait_listening();
    local.addr = Some(addr);
    let mut stream = ns.run(move || TcpStream::connect_timeout(&addr, WAIT).unwrap());
    let query = dnsd::model::Query::new(
        dnsd::model::name::Name::parse("www.example.com").unwrap(),
        dnsd::model::QType::A,
        dnsd::model::Recursion::Recursive,
    );
    let request = dnsd::dns::exchange::query_message(7, &query).unwrap();
    let response =
        dnsd::dns::exchange::exchange_tcp(&mut stream, &request, Instant::now() + WAIT).unwrap();
    let resolution = dnsd::dns::exchange::read_response(&response, 7, &query).unwrap();
    assert_eq!(
        ip_of(&resolution).as_deref(),
        Some("93.184.216.34"),
        "{resolution:?}"
    );
    assert_eq!(root.asked(), ["A www.example.com", "A a.gtld-servers.net"]);
    assert_eq!(
        gtld.asked(),
        [
            "A a.gtld-servers.net",
            "A www.example.com",
            "A ns.dns-host.net"
        ]
    );
    assert_eq!(example.asked(), ["A www.example.com"]);
    drop(local);
}
