//! Forgery resistance (RFC 5452) and the caps on what the local server takes from an
//! upstream. A fake com server over UDP, in this process, sits behind a real dnsd root:
//! it sees where each question came from and answers as each test tells it, forgeries
//! included. The local server is asked over DNS.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dnsd::model::{Outcome, Resolution};
use dnsd::roles::local::LocalConfig;
use dnsd::roles::RoleConfig;
use dnsd::runtime::hierarchy::{Hierarchy, HierarchyBuilder};
use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::{self as hrr, rdata as hrd};

use crate::harness::{DnsTcp, PATIENCE};

/// What the fake does with each question: it is given its socket, who asked, and the
/// question's message.
type Respond = dyn Fn(&UdpSocket, SocketAddr, &Message) + Send + Sync;

/// A fake authoritative server for com over UDP on 127.0.0.1, port 0; every question's
/// source is recorded. Stopped (its thread joined) when dropped.
struct FakeCom {
    addr: SocketAddr,
    /// Where each question came from, in order.
    seen: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCom {
    fn start(respond: impl Fn(&UdpSocket, SocketAddr, &Message) + Send + Sync + 'static) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let respond: Box<Respond> = Box::new(respond);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Bounded: until dropped, or two minutes at most.
            let end = Instant::now() + Duration::from_secs(120);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < end {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(request) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                seen2.lock().unwrap().push(from);
                respond(&socket, from, &request);
            }
        });
        FakeCom {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<SocketAddr> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeCom {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The question's name, as the request spells it, lowercased (`www.x.com.`).
fn qname(request: &Message) -> String {
    request.queries[0].name().to_ascii().to_ascii_lowercase()
}

fn name(s: &str) -> hrr::Name {
    hrr::Name::from_ascii(s).unwrap()
}

fn a(owner: &str, ttl: u32, ip: Ipv4Addr) -> hrr::Record {
    hrr::Record::from_rdata(name(owner), ttl, hrr::RData::A(hrd::A(ip)))
}

/// An authoritative answer to `request` with `id` (the request's own unless forging),
/// holding `answers` and `additionals`.
fn reply(
    request: &Message,
    id: u16,
    answers: Vec<hrr::Record>,
    additionals: Vec<hrr::Record>,
) -> Vec<u8> {
    let mut msg = Message::response(id, OpCode::Query);
    msg.metadata.authoritative = true;
    msg.add_query(request.queries[0].clone());
    for record in answers {
        msg.add_answer(record);
    }
    for record in additionals {
        msg.add_additional(record);
    }
    msg.to_vec().unwrap()
}

/// `request`'s name at `ip`, for `ttl` seconds.
fn address(request: &Message, ttl: u32, ip: Ipv4Addr) -> Vec<u8> {
    let owner = qname(request);
    reply(
        request,
        request.metadata.id,
        vec![a(&owner, ttl, ip)],
        vec![],
    )
}

const REAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const FORGED: Ipv4Addr = Ipv4Addr::new(6, 6, 6, 6);

/// A root referring com to `com`, and a local server bound to `bind` asking it, with
/// `tweak` applied; its logs in `logs`.
fn hierarchy(
    com: SocketAddr,
    bind: IpAddr,
    logs: &tempfile::TempDir,
    tweak: impl FnOnce(LocalConfig) -> LocalConfig,
) -> Hierarchy {
    HierarchyBuilder::new()
        .refer("com", com)
        .log_dir(logs.path())
        .upstream_timeout(PATIENCE)
        .local(|c| tweak(c.with_bind(SocketAddr::new(bind, 0))))
        .start()
        .unwrap()
}

fn localhost() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// The answer's first address, or its outcome.
fn first_ip(r: &Resolution) -> Result<IpAddr, String> {
    r.first_ip().ok_or_else(|| format!("{:?}", r.outcome))
}

/// Every question to an upstream leaves from the address the local server is bound to
/// (not 0.0.0.0), each from a port of its own drawn at random: a forger who saw one
/// question's port learns nothing of the next one's.
#[test]
fn upstream_questions_leave_from_the_bound_address_on_random_ports() {
    const QUESTIONS: usize = 1000;
    let com = FakeCom::start(|socket, from, request| {
        let _ = socket.send_to(&address(request, 60, REAL), from);
    });
    let logs = tempfile::tempdir().unwrap();
    // A loopback address other than the one the kernel would choose itself.
    let bind: IpAddr = "127.0.0.2".parse().unwrap();
    let h = hierarchy(com.addr, bind, &logs, |c| c);
    let mut client = DnsTcp::connect(h.local);
    for i in 0..QUESTIONS {
        assert_eq!(client.address(&format!("n{i}.com")), Some(IpAddr::V4(REAL)));
    }
    let seen = com.seen();
    assert_eq!(seen.len(), QUESTIONS);
    assert!(
        seen.iter().all(|from| from.ip() == bind),
        "sources: {:?}",
        seen.iter().map(|s| s.ip()).collect::<HashSet<_>>()
    );
    let ports: HashSet<u16> = seen.iter().map(SocketAddr::port).collect();
    // Random draws from Linux's ~28,000 ephemeral ports give about 982 distinct
    // among 1,000; one port kept for every question gives 1.
    assert!(ports.len() >= 950, "{} distinct source ports", ports.len());
}

/// Forged answers from another port, with another ID or about another question, all
/// arriving before the real answer: none is taken, the real one is, and it is what the
/// cache keeps.
#[test]
fn forged_answers_never_reach_the_cache() {
    let com = FakeCom::start(|socket, from, request| {
        if qname(request) != "www.victim.com." {
            let _ = socket.send_to(&address(request, 60, REAL), from);
            return;
        }
        let id = request.metadata.id;
        let forged = |id| reply(request, id, vec![a("www.victim.com.", 60, FORGED)], vec![]);
        // From another port (the forger's own socket), with the right ID.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(&forged(id), from).unwrap();
        // From the server's address: the wrong ID, then the right ID about another
        // question.
        socket.send_to(&forged(id ^ 0x5a5a), from).unwrap();
        let mut other = Message::from_vec(&forged(id)).unwrap();
        other.queries[0].set_name(name("www.other.com."));
        socket.send_to(&other.to_vec().unwrap(), from).unwrap();
        socket.send_to(&address(request, 60, REAL), from).unwrap();
    });
    let logs = tempfile::tempdir().unwrap();
    let h = hierarchy(com.addr, localhost(), &logs, |c| c);
    let mut client = DnsTcp::connect(h.local);
    assert_eq!(
        first_ip(&client.ask("www.victim.com", true)),
        Ok(IpAddr::V4(REAL))
    );
    // RD clear: the cache's answer, or REFUSED.
    let cached = client.ask("www.victim.com", false);
    assert_eq!(first_ip(&cached), Ok(IpAddr::V4(REAL)));
}

/// What an off-path attacker does: having seen the port one question came from, it
/// sprays every ID at that port from the server's own address (as a forger who can
/// spoof its source does) while the real answer to the next question is held back, and
/// every ID at the next question's own port from its own address. With a new random
/// port per question and a connected socket, none of the 131,072 forgeries lands, and
/// the cache holds the real answer. (With one socket kept for every question, the
/// first burst poisons the name: `6.6.6.6` for an hour.)
#[test]
fn a_burst_of_every_id_while_the_real_answer_is_held_never_reaches_the_cache() {
    // The port of the question before the victim's, once the test has seen it.
    let earlier_port: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let known = earlier_port.clone();
    let com = FakeCom::start(move |socket, from, request| {
        if qname(request) != "www.victim.com." {
            let _ = socket.send_to(&address(request, 60, REAL), from);
            return;
        }
        let mut forged = reply(request, 0, vec![a("www.victim.com.", 3600, FORGED)], vec![]);
        let earlier = known.lock().unwrap().expect("an earlier question's port");
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        // At the earlier question's port, as if from the server itself; paced in
        // runs of 128 (fewer than a socket's receive buffer holds), so that a socket
        // listening there reads them rather than drops them.
        for id in 0..=u16::MAX {
            forged[..2].copy_from_slice(&id.to_be_bytes());
            let _ = socket.send_to(&forged, earlier);
            if id % 128 == 127 {
                thread::sleep(Duration::from_micros(200));
            }
        }
        // At this question's port, from another address: the kernel drops them.
        for id in 0..=u16::MAX {
            forged[..2].copy_from_slice(&id.to_be_bytes());
            let _ = stranger.send_to(&forged, from);
        }
        let _ = socket.send_to(&address(request, 60, REAL), from);
    });
    let logs = tempfile::tempdir().unwrap();
    // Room for 131,072 datagrams before the real answer goes, on a machine loaded
    // with other test runs (about a second on a quiet one; over 9 s seen under load):
    // the upstream timeout and the client's wait are long, not the test.
    const BURST_WAIT: Duration = Duration::from_secs(60);
    let h = hierarchy(com.addr, localhost(), &logs, |c| {
        c.with_upstream_timeout(BURST_WAIT - Duration::from_secs(5))
    });
    let mut client = DnsTcp::connect(h.local);
    assert_eq!(client.address("warm.com"), Some(IpAddr::V4(REAL)));
    let earlier = *com.seen().last().unwrap();
    *earlier_port.lock().unwrap() = Some(earlier);
    // The earlier question's socket is closed once it was answered: held here, its
    // port cannot be drawn again for the next question by a 1-in-28,000 chance (a
    // server that keeps its socket open keeps the port, and this bind fails).
    let _held = UdpSocket::bind(earlier).ok();
    let answered = client.ask_within("www.victim.com", true, BURST_WAIT);
    assert_eq!(first_ip(&answered), Ok(IpAddr::V4(REAL)));
    let cached = client.ask("www.victim.com", false);
    assert_eq!(first_ip(&cached), Ok(IpAddr::V4(REAL)));
    let seen = com.seen();
    assert_ne!(seen[seen.len() - 1].port(), earlier.port());
}

/// A TTL of 2^31 - 1 is given as `--max-ttl` (a day by default) the first time, not
/// only once cached.
#[test]
fn ttls_are_capped_on_the_first_answer() {
    let com = FakeCom::start(|socket, from, request| {
        let _ = socket.send_to(&address(request, i32::MAX as u32, REAL), from);
    });
    let ttl = |r: &Resolution| match &r.outcome {
        Outcome::Answer(records) if records.len() == 1 => records[0].ttl,
        other => panic!("not one record: {other:?}"),
    };
    let logs = tempfile::tempdir().unwrap();
    let h = hierarchy(com.addr, localhost(), &logs, |c| c);
    let mut client = DnsTcp::connect(h.local);
    assert_eq!(ttl(&client.ask("www.long.com", true)), 86_400);
    let logs = tempfile::tempdir().unwrap();
    let h = hierarchy(com.addr, localhost(), &logs, |c| {
        c.with_max_ttl(Duration::from_secs(60))
    });
    let mut client = DnsTcp::connect(h.local);
    assert_eq!(ttl(&client.ask("www.long.com", true)), 60);
    // Cached, it counts down from the cap.
    let cached = ttl(&client.ask("www.long.com", false));
    assert!((50..=60).contains(&cached), "{cached}");
}

/// An answer over a cap (a CNAME chain of 9, 257 addresses, over 16 KiB) is SERVFAIL,
/// and nothing of it is cached; at the caps it is an answer.
#[test]
fn answers_over_the_caps_are_servfail_and_not_cached() {
    let com = FakeCom::start(|socket, from, request| {
        let owner = qname(request);
        let id = request.metadata.id;
        let label = owner.split('.').next().unwrap_or_default().to_owned();
        let count = |prefix: &str| label.strip_prefix(prefix).and_then(|n| n.parse().ok());
        let message = if let Some(links) = count("chain") {
            // chainN.com. -> c1.chainN.com. -> ... -> cN.chainN.com. A
            let link = |i: u32| match i {
                0 => owner.clone(),
                i => format!("c{i}.{owner}"),
            };
            let mut answers: Vec<hrr::Record> = (0..links)
                .map(|i| {
                    let target = hrr::RData::CNAME(hrd::CNAME(name(&link(i + 1))));
                    hrr::Record::from_rdata(name(&link(i)), 60, target)
                })
                .collect();
            answers.push(a(&link(links), 60, REAL));
            reply(request, id, answers, vec![])
        } else if let Some(n) = count("many") {
            let answers = (0..n).map(|i| a(&owner, 60, Ipv4Addr::from(u32::from(REAL) + i)));
            reply(request, id, answers.collect(), vec![])
        } else if let Some(n) = count("long") {
            // One address, and `n` addresses of other names as additional records.
            let extra = (0..n).map(|i| a(&format!("x{i}.{owner}"), 60, REAL));
            reply(request, id, vec![a(&owner, 60, REAL)], extra.collect())
        } else {
            address(request, 60, REAL)
        };
        assert!(message.len() < 65_000);
        let _ = socket.send_to(&message, from);
    });
    let logs = tempfile::tempdir().unwrap();
    let h = hierarchy(com.addr, localhost(), &logs, |c| c);
    let mut client = DnsTcp::connect(h.local);
    for (name, ok) in [
        ("chain8.com", true),
        ("chain9.com", false),
        ("chain100.com", false),
        ("many256.com", true),
        ("many257.com", false),
        ("many1000.com", false),
        ("long100.com", true),
        ("long1000.com", false),
    ] {
        let answered = client.ask(name, true);
        if ok {
            assert_eq!(first_ip(&answered), Ok(IpAddr::V4(REAL)), "{name}");
            continue;
        }
        assert_eq!(answered.outcome, Outcome::ServFail, "{name}");
        // Not cached: RD clear finds nothing (REFUSED).
        assert_eq!(
            client.ask(name, false).outcome,
            Outcome::Refused,
            "{name} was cached"
        );
    }
}
