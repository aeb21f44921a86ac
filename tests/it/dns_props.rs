//! Every server's DNS message handler under arbitrary and mutated messages (proptest):
//! the root, a TLD server and the local server, in-process through the handler and over
//! UDP and TCP to running servers. Whatever arrives:
//!
//! - nothing panics, and every message with a readable header that is not a response
//!   (QR=0) gets a response; only the rest goes unanswered;
//! - the response parses, has QR=1, the request's ID and opcode, Z clear, NOTIMP for
//!   any opcode but QUERY, and FORMERR for a query whose header can be read but not
//!   one question after it;
//! - over UDP it is no larger than the client allows: 512 bytes without EDNS, else its
//!   payload size, at least 512 and at most our 1232;
//! - answering one message takes a bounded amount of memory ([`MEMORY_BOUND`], measured
//!   by a counting allocator on the calling thread).
//!
//! A longer run: `PROPTEST_CASES=100000 cargo test --test it dns_props`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};

use dnsd::dns::answer::{answer, DnsService, DnsSettings, Transport};
use dnsd::resolve::root::RootResolver;
use dnsd::resolve::upstream::UpstreamProtocol;
use dnsd::roles::root::RootHandler;
use dnsd::roles::tld::TldHandler;
use dnsd::roles::upstream;
use dnsd::runtime::hierarchy::{Hierarchy, HierarchyBuilder};
use dnsd::zone::{RootTable, Zone};
use hickory_proto::op::{Message, ResponseCode};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

use crate::harness::{zones, WAIT};

/// The most one call of the handler may allocate above what it started with: a few
/// copies of a 64 KiB message and its parsed form, whatever the message announces.
const MEMORY_BOUND: usize = 256 * 1024;

/// The system allocator, counting each thread's live bytes and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed on to `System` unchanged; the counting beside it does not
// allocate (const-initialised thread locals).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the most it allocated on this thread at once.
fn peak_memory<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, (peak - start).max(0) as usize)
}

/// `cases` unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

/// The OPT record of a request, every field free.
#[derive(Clone, Debug)]
struct Opt {
    payload: u16,
    ext_rcode: u8,
    version: u8,
    flags: u16,
    options: Vec<(u16, Vec<u8>)>,
}

/// A request with one question, every header and question field free.
#[derive(Clone, Debug)]
struct Request {
    id: u16,
    flags: u16,
    labels: Vec<String>,
    qtype: u16,
    qclass: u16,
    opt: Option<Opt>,
}

impl Request {
    fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let arcount = u16::from(self.opt.is_some());
        for field in [self.id, self.flags, 1, 0, 0, arcount] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        for label in &self.labels {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some(opt) = &self.opt {
            out.push(0);
            out.extend_from_slice(&41u16.to_be_bytes());
            out.extend_from_slice(&opt.payload.to_be_bytes());
            out.extend_from_slice(&[opt.ext_rcode, opt.version]);
            out.extend_from_slice(&opt.flags.to_be_bytes());
            let rdata: Vec<u8> = opt
                .options
                .iter()
                .flat_map(|(code, data)| {
                    let mut o = code.to_be_bytes().to_vec();
                    o.extend_from_slice(&(data.len() as u16).to_be_bytes());
                    o.extend_from_slice(data);
                    o
                })
                .collect();
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }
}

fn opt() -> impl Strategy<Value = Opt> {
    let payload = prop_oneof![
        prop::sample::select(vec![0u16, 100, 511, 512, 1232, 1400, 4096, 65535]),
        any::<u16>(),
    ];
    let version = prop_oneof![3 => Just(0u8), 1 => any::<u8>()];
    let ext_rcode = prop_oneof![3 => Just(0u8), 1 => any::<u8>()];
    let flags = prop_oneof![Just(0u16), Just(0x8000), any::<u16>()];
    let code = prop_oneof![
        prop::sample::select(vec![3u16, 8, 9, 10, 11, 12, 15, 100, 65001]),
        any::<u16>(),
    ];
    let options = prop::collection::vec((code, prop::collection::vec(any::<u8>(), 0..12)), 0..3);
    (payload, ext_rcode, version, flags, options).prop_map(
        |(payload, ext_rcode, version, flags, options)| Opt {
            payload,
            ext_rcode,
            version,
            flags,
            options,
        },
    )
}

fn request() -> impl Strategy<Value = Request> {
    // Header flags: mostly a plain query (RD or not), often any flags with QR clear,
    // sometimes anything at all (QR set: a response, to be dropped).
    let flags = prop_oneof![
        2 => prop::sample::select(vec![0u16, 0x0100]),
        4 => any::<u16>().prop_map(|f| f & 0x7FFF),
        1 => any::<u16>(),
    ];
    let label = prop_oneof![
        4 => prop::sample::select(vec!["www", "google", "WwW", "ns", "nope", "_dns", "_tcp"])
            .prop_map(str::to_owned),
        2 => "[a-z0-9-]{1,12}",
        1 => "[ -~]{0,4}",
    ];
    let tld = prop::sample::select(vec!["com", "CoM", "org", "gov", "zz", ""]);
    let labels = (prop::collection::vec(label, 0..3), tld).prop_map(|(mut labels, tld)| {
        labels.push(tld.to_owned());
        labels.retain(|l| !l.is_empty());
        labels
    });
    let qtype = prop_oneof![
        3 => prop::sample::select(vec![1u16, 2, 5, 6, 15, 16, 28, 33, 41, 250, 251, 252, 255, 666, 65280]),
        1 => any::<u16>(),
    ];
    let qclass = prop_oneof![
        4 => Just(1u16),
        1 => prop::sample::select(vec![0u16, 3, 4, 254, 255]),
        1 => any::<u16>(),
    ];
    let opt = prop::option::weighted(0.6, opt());
    (any::<u16>(), flags, labels, qtype, qclass, opt).prop_map(
        |(id, flags, labels, qtype, qclass, opt)| Request {
            id,
            flags,
            labels,
            qtype,
            qclass,
            opt,
        },
    )
}

/// A request's bytes, then maybe bytes overwritten, cut short or appended.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let flips = prop::collection::vec((any::<usize>(), any::<u8>()), 0..4);
    let cut = prop::option::weighted(0.2, any::<usize>());
    let extra = prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 1..16));
    (request(), flips, cut, extra).prop_map(|(request, flips, cut, extra)| {
        let mut bytes = request.to_wire();
        for (at, byte) in flips {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        bytes.extend(extra.unwrap_or_default());
        bytes
    })
}

/// Arbitrary bytes, or a valid request, or a mutated one.
fn any_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..600),
        2 => request().prop_map(|r| r.to_wire()),
        4 => mutated(),
    ]
}

/// The most a UDP response to `request` may take: 512 without EDNS, else the client's
/// payload size, at least 512 and at most the 1232 the servers offer.
fn udp_limit(request: &[u8]) -> usize {
    // Not one question: FORMERR without OPT (and hickory would reserve room for them).
    if request.get(4..6) != Some(&[0, 1]) {
        return 512;
    }
    Message::from_vec(request)
        .ok()
        .and_then(|m| m.edns)
        .map_or(512, |e| usize::from(e.max_payload().clamp(512, 1232)))
}

/// What the response to `request` over `transport` must be (see the module docs).
fn check(
    request: &[u8],
    response: Option<&[u8]>,
    transport: Transport,
) -> Result<(), TestCaseError> {
    let answerable = request.len() >= 12 && request[2] & 0x80 == 0;
    let Some(response) = response else {
        prop_assert!(!answerable, "no response to a query with a readable header");
        return Ok(());
    };
    prop_assert!(
        answerable,
        "a response to a message without a header, or to a response"
    );
    prop_assert!(response.len() >= 12, "a response shorter than a header");
    prop_assert_eq!(&response[..2], &request[..2], "the ID is the request's");
    prop_assert!(response[2] & 0x80 != 0, "QR set");
    prop_assert_eq!(
        response[2] & 0x78,
        request[2] & 0x78,
        "the opcode is echoed"
    );
    prop_assert_eq!(response[3] & 0x40, 0, "Z clear");
    let msg = Message::from_vec(response);
    prop_assert!(msg.is_ok(), "the response does not parse: {:?}", msg.err());
    let rcode = msg.unwrap().metadata.response_code;
    if request[2] & 0x78 != 0 {
        prop_assert_eq!(rcode, ResponseCode::NotImp, "opcode other than QUERY");
    } else if request[4..6] != [0, 1] || Message::from_vec(request).is_err() {
        prop_assert_eq!(
            rcode,
            ResponseCode::FormErr,
            "a header, then no one question"
        );
    }
    if transport == Transport::Udp {
        let limit = udp_limit(request);
        prop_assert!(
            response.len() <= limit,
            "{} bytes over UDP, over {limit}",
            response.len()
        );
    }
    Ok(())
}

/// Runs `test` on `strategy`'s values; a failure panics with the smallest input found.
#[track_caller]
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// The sample zones' com and org servers, the root and the local server, on free
/// loopback ports; stopped when dropped.
fn hierarchy(logs: &std::path::Path) -> Hierarchy {
    HierarchyBuilder::new()
        .tld("com", Zone::load(&zones("com.dat")).unwrap())
        .tld("org", Zone::load(&zones("org.dat")).unwrap())
        .log_dir(logs)
        .upstream_timeout(WAIT / 4)
        .start()
        .unwrap()
}

/// The real TLD and root handlers, called directly: a panic shows its input, shrunk. The
/// root's table points at running com and org servers, which its RD queries ask.
#[test]
fn tld_and_root_handlers_answer_any_message() {
    let logs = tempfile::tempdir().unwrap();
    let running = hierarchy(logs.path());
    let zone = Zone::load(&zones("com.dat")).unwrap();
    let tld = TldHandler::new("com", zone, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut table = RootTable::default();
    for (name, addr) in &running.tlds {
        table.insert(name, *addr);
    }
    let root = RootHandler::new(RootResolver::new(
        table,
        upstream(
            UpstreamProtocol::default(),
            WAIT / 4,
            512,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ),
    ));
    let settings = DnsSettings::default();
    fn ask(
        role: &impl DnsService,
        request: &[u8],
        settings: &DnsSettings,
    ) -> Result<(), TestCaseError> {
        for transport in [Transport::Udp, Transport::Tcp] {
            let (answered, used) = peak_memory(|| answer(request, transport, settings, role));
            prop_assert!(used <= MEMORY_BOUND, "{used} bytes to answer one message");
            let _ = answered.to_string();
            check(request, answered.response.as_deref(), transport)?;
        }
        Ok(())
    }
    run(2000, any_message(), |request| {
        ask(&tld, &request, &settings)?;
        ask(&root, &request, &settings)
    });
}

/// A server's sockets, for one test.
struct Target {
    addr: SocketAddr,
    udp: UdpSocket,
}

impl Target {
    fn new(addr: SocketAddr) -> Target {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(WAIT)).unwrap();
        Target { addr, udp }
    }

    /// Sends `request` as one datagram; the response if one is due (a message with a
    /// readable header that is not a response). A response to any other is caught by
    /// the next exchange, whose ID it would not carry.
    fn udp(&self, request: &[u8]) -> Result<Option<Vec<u8>>, TestCaseError> {
        self.udp.send_to(request, self.addr).unwrap();
        if request.len() < 12 || request[2] & 0x80 != 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; 65536];
        match self.udp.recv_from(&mut buf) {
            Ok((n, _)) => Ok(Some(buf[..n].to_vec())),
            Err(e) => Err(TestCaseError::fail(format!("no UDP response: {e}"))),
        }
    }

    /// Sends `request` with its length prefix on a new connection; the response if one
    /// is due, read whole.
    fn tcp(&self, request: &[u8]) -> Result<Option<Vec<u8>>, TestCaseError> {
        let mut stream = TcpStream::connect_timeout(&self.addr, WAIT).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut framed = (request.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(request);
        stream.write_all(&framed).unwrap();
        if request.len() < 12 || request[2] & 0x80 != 0 {
            return Ok(None);
        }
        let mut len = [0u8; 2];
        let mut read = || -> std::io::Result<Vec<u8>> {
            stream.read_exact(&mut len)?;
            let mut response = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut response)?;
            Ok(response)
        };
        match read() {
            Ok(response) => Ok(Some(response)),
            Err(e) => Err(TestCaseError::fail(format!("no TCP response: {e}"))),
        }
    }
}

/// The root, a TLD server and the local server, running, over UDP and TCP.
#[test]
fn servers_answer_any_message_over_udp_and_tcp() {
    let logs = tempfile::tempdir().unwrap();
    let running = hierarchy(logs.path());
    let targets = [
        Target::new(running.root),
        Target::new(running.tld("com").unwrap()),
        Target::new(running.local),
    ];
    run(500, any_message(), |request| {
        for target in &targets {
            let response = target.udp(&request)?;
            check(&request, response.as_deref(), Transport::Udp)?;
            let response = target.tcp(&request)?;
            check(&request, response.as_deref(), Transport::Tcp)?;
        }
        Ok(())
    });
}
