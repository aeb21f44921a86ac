//! The DNS client side: how the local server and the root ask another dnsd server over
//! DNS, and read its answer back into the model.
//!
//! [`query_message`] writes the question; [`read_response`] checks that a message
//! answers it (ID, QR, the question), that it stays within the caps
//! ([`MAX_RESPONSE_BYTES`], [`MAX_RRSET`], [`MAX_CNAME_CHAIN`]), and maps it back to a
//! [`Resolution`], the exact inverse of [`super::answer`]'s mapping, so `answer` then
//! `read_response` gives the resolution back. [`exchange_udp`] and [`exchange_tcp`] move
//! the bytes, blocking, until a deadline.
//!
//! Forgery resistance (RFC 5452): every question goes out on a socket of its own
//! ([`query_socket`]), on a port the kernel draws at random, bound to the server's own
//! address and connected to the server asked, with an ID from the operating system's
//! CSPRNG ([`new_id`]). An off-path forger must guess both the port (about 28,000
//! choices on Linux) and the ID (65,536) within the time one question is open; a
//! datagram from any other address or port never reaches the socket, and one with
//! another ID or question is skipped while the real answer is still awaited.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::tcp::{self, TcpFrameError};
use super::{model_name, model_record, rcode_name, wire_query, DEFAULT_EDNS_PAYLOAD};
use crate::model::name::Name;
use crate::model::{NameServer, Outcome, Query, RData, Record, Recursion, Referral, Resolution};
use crate::resolve::upstream::{Ask, UpstreamError};

/// The port a referral's server is on when the referral carries no SRV record.
pub const DEFAULT_DNS_PORT: u16 = 53;

/// The longest response read, in bytes: a larger one is refused (SERVFAIL), not passed
/// on. Far above anything dnsd's own servers send for a name (a few hundred addresses),
/// well below the 64 KiB a TCP message may hold.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// The most records one set (a name and a type) may hold in a response; more is refused
/// (SERVFAIL), so that no answer of thousands of addresses is cached or passed on.
pub const MAX_RRSET: usize = 256;

/// The most CNAME records an answer may chain through before reaching its data; more is
/// refused (SERVFAIL). Real chains are one or two links; Unbound gives up after about
/// 11.
pub const MAX_CNAME_CHAIN: usize = 8;

/// Why a server's response gave no [`Resolution`].
#[derive(Debug, thiserror::Error)]
pub enum DnsUpstreamError {
    /// TC was set: the answer did not fit in a datagram.
    #[error("truncated, retry over TCP")]
    Truncated,
    /// No (matching) response before the deadline.
    #[error("no response before the deadline")]
    Timeout,
    /// The peer closed the TCP connection without a response.
    #[error("connection closed before a response")]
    Closed,
    /// The response's ID is not the query's.
    #[error("response ID {got} does not match query ID {expected}")]
    WrongId { expected: u16, got: u16 },
    /// The message has QR clear.
    #[error("message is a query, not a response")]
    NotAResponse,
    /// The response answers another question.
    #[error("response is about {got}, not {expected}")]
    WrongQuestion { expected: String, got: String },
    /// The bytes are not a DNS message.
    #[error("unparsable response: {0}")]
    Malformed(String),
    /// A well-formed response that is not a usable answer.
    #[error(transparent)]
    Unusable(#[from] Unusable),
    /// The query's name cannot be written in a DNS message.
    #[error("name {0:?} cannot be written in a DNS message")]
    BadName(String),
    #[error(transparent)]
    Frame(#[from] TcpFrameError),
    #[error(transparent)]
    Io(io::Error),
}

/// What makes a well-formed response unusable.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("response opcode {0}")]
    OpCode(u8),
    #[error("response code {0}")]
    ResponseCode(String),
    #[error("NXDOMAIN without an SOA record")]
    NxDomainWithoutSoa,
    #[error("NOERROR with {records} answer records, none for {name} of a type dnsd knows")]
    NoneForName { records: usize, name: Name },
    #[error("a referral to {zone}, which does not contain {name}")]
    ReferralOutside { zone: Name, name: Name },
    #[error("a referral to {zone} without glue for {target}")]
    NoGlue { zone: Name, target: Name },
    #[error("NOERROR with no answer, no SOA and no NS")]
    Empty,
    #[error("{bytes} bytes, over the {max}-byte cap on a response")]
    TooLong { bytes: usize, max: usize },
    #[error("{count} {rtype} records for {name}, over the cap of {max} per set")]
    LargeSet {
        name: String,
        rtype: String,
        count: usize,
        max: usize,
    },
    #[error("a CNAME chain from {name} of more than {max} links (the cap)")]
    LongChain { name: Name, max: usize },
}

impl From<io::Error> for DnsUpstreamError {
    fn from(e: io::Error) -> Self {
        if crate::net::is_timeout(&e) {
            DnsUpstreamError::Timeout
        } else {
            DnsUpstreamError::Io(e)
        }
    }
}

/// The query message for `query` with ID `id`: RD set when the query is
/// [`Recursion::Recursive`], an EDNS(0) OPT record advertising
/// [`DEFAULT_EDNS_PAYLOAD`].
///
/// [`crate::model::QType::Address`] has no DNS type of its own and is asked as A.
pub fn query_message(id: u16, query: &Query) -> Result<Vec<u8>, DnsUpstreamError> {
    let bad_name = |_| DnsUpstreamError::BadName(query.name.to_string());
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = query.recursion == Recursion::Recursive;
    msg.add_query(wire_query(query).map_err(bad_name)?);
    let mut edns = Edns::new();
    edns.set_max_payload(DEFAULT_EDNS_PAYLOAD);
    msg.set_edns(edns);
    msg.to_vec().map_err(bad_name)
}

/// Reads `bytes` as the response to `query` sent with ID `id`.
///
/// NOERROR with answers is [`Outcome::Answer`] (the records of the name asked and of
/// the CNAME chain from it, in order, TTLs kept; others are ignored); NOERROR without
/// answers is [`Outcome::NoData`] with an SOA in authority, or [`Outcome::Referral`]
/// with an NS for a zone containing the name, its glue, and the port from the SRV
/// `_dns._tcp.<zone>` ([`DEFAULT_DNS_PORT`] without one); NXDOMAIN with an SOA is
/// [`Outcome::NxDomain`]; SERVFAIL and REFUSED are themselves. AA becomes
/// [`Resolution::authoritative`]. Anything else is an error saying what was wrong, and
/// so is a response over a cap: longer than [`MAX_RESPONSE_BYTES`], a set of more than
/// [`MAX_RRSET`] records in any section, a CNAME chain of more than [`MAX_CNAME_CHAIN`].
pub fn read_response(bytes: &[u8], id: u16, query: &Query) -> Result<Resolution, DnsUpstreamError> {
    let header = Header::read(&mut BinDecoder::new(bytes))
        .map_err(|_| DnsUpstreamError::Malformed("shorter than a DNS header".into()))?;
    let meta = header.metadata;
    if meta.id != id {
        return Err(DnsUpstreamError::WrongId {
            expected: id,
            got: meta.id,
        });
    }
    if meta.message_type != MessageType::Response {
        return Err(DnsUpstreamError::NotAResponse);
    }
    // Before parsing: a truncated message may well be cut short.
    if meta.truncation {
        return Err(DnsUpstreamError::Truncated);
    }
    if meta.op_code != OpCode::Query {
        return Err(Unusable::OpCode(u8::from(meta.op_code)).into());
    }
    if header.counts.queries != 1 {
        return Err(DnsUpstreamError::Malformed(format!(
            "{} questions",
            header.counts.queries
        )));
    }
    let mut decoder = BinDecoder::new(bytes);
    let msg =
        Message::read(&mut decoder).map_err(|e| DnsUpstreamError::Malformed(e.to_string()))?;
    if !decoder.is_empty() {
        return Err(DnsUpstreamError::Malformed(format!(
            "{} bytes after the message",
            decoder.len()
        )));
    }
    check_question(&msg, query)?;
    check_caps(bytes.len(), &msg)?;

    let outcome = match msg.metadata.response_code {
        ResponseCode::NoError if !msg.answers.is_empty() => answer(&msg, &query.name)?,
        ResponseCode::NoError => match soa(&msg) {
            Some(soa) => Outcome::NoData(soa),
            None => Outcome::Referral(referral(&msg, &query.name)?),
        },
        ResponseCode::NXDomain => Outcome::NxDomain(soa(&msg).ok_or(Unusable::NxDomainWithoutSoa)?),
        ResponseCode::ServFail => Outcome::ServFail,
        ResponseCode::Refused => Outcome::Refused,
        other => {
            return Err(Unusable::ResponseCode(rcode_name(u16::from(other)).into_owned()).into())
        }
    };
    Ok(Resolution {
        outcome,
        authoritative: msg.metadata.authoritative,
        additional: Vec::new(),
        chain_end: None,
        cached: false,
    })
}

fn check_question(msg: &Message, query: &Query) -> Result<(), DnsUpstreamError> {
    let expected = || format!("{} {}", query.qtype, query.name);
    let Some(q) = msg.queries.first() else {
        return Err(DnsUpstreamError::Malformed("no question".into()));
    };
    if model_name(q.name()) != query.name
        || u16::from(q.query_type()) != query.qtype.code()
        || q.query_class() != DNSClass::IN
    {
        return Err(DnsUpstreamError::WrongQuestion {
            expected: expected(),
            got: format!("{} {} {}", q.query_class(), q.query_type(), q.name()),
        });
    }
    Ok(())
}

/// Whether the whole message, every section of it, is within [`MAX_RESPONSE_BYTES`] and
/// [`MAX_RRSET`] (the CNAME chain is counted where the answer is read).
fn check_caps(len: usize, msg: &Message) -> Result<(), Unusable> {
    if len > MAX_RESPONSE_BYTES {
        return Err(Unusable::TooLong {
            bytes: len,
            max: MAX_RESPONSE_BYTES,
        });
    }
    let mut sets: HashMap<(hickory_proto::rr::Name, RecordType), usize> = HashMap::new();
    let records = msg.answers.iter().chain(&msg.authorities);
    for record in records.chain(&msg.additionals) {
        *sets
            .entry((record.name.to_lowercase(), record.record_type()))
            .or_default() += 1;
    }
    if let Some(((name, rtype), count)) = sets.into_iter().find(|(_, n)| *n > MAX_RRSET) {
        return Err(Unusable::LargeSet {
            name: name.to_ascii(),
            rtype: rtype.to_string(),
            count,
            max: MAX_RRSET,
        });
    }
    Ok(())
}

/// The answer records that belong to the name asked: its own, and those of each CNAME
/// target met on the way (so an answer cannot slip in records for unrelated names), the
/// chain no longer than [`MAX_CNAME_CHAIN`].
fn answer(msg: &Message, qname: &Name) -> Result<Outcome, DnsUpstreamError> {
    let mut names: HashSet<Name> = HashSet::from([qname.clone()]);
    let mut records = Vec::new();
    let mut links = 0;
    for record in msg.answers.iter().filter_map(model_record) {
        if !names.contains(&record.name) {
            continue;
        }
        if let RData::Cname(target) = &record.data {
            links += 1;
            if links > MAX_CNAME_CHAIN {
                return Err(Unusable::LongChain {
                    name: qname.clone(),
                    max: MAX_CNAME_CHAIN,
                }
                .into());
            }
            names.insert(target.clone());
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(Unusable::NoneForName {
            records: msg.answers.len(),
            name: qname.clone(),
        }
        .into());
    }
    Ok(Outcome::Answer(records))
}

/// The first SOA record of the authority section.
fn soa(msg: &Message) -> Option<Record> {
    msg.authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .find_map(model_record)
}

/// A referral: the NS records in authority for the deepest zone there that contains
/// `qname`, each name server with its addresses from the additional section and its
/// port from an SRV `_dns._tcp.<zone>` naming it ([`DEFAULT_DNS_PORT`] without one).
///
/// A name server inside the zone with no glue cannot be reached (its address is in the
/// zone it serves) and is left out; one outside the zone is kept even without addresses,
/// for the resolver to look them up. Which glue to believe is the resolver's call
/// ([`crate::resolve`]'s bailiwick rules): this says what the message says.
fn referral(msg: &Message, qname: &Name) -> Result<Referral, DnsUpstreamError> {
    let ns_records: Vec<Record> = msg
        .authorities
        .iter()
        .filter_map(model_record)
        .filter(|r| matches!(r.data, RData::Ns(_)))
        .collect();
    let Some(zone) = ns_records
        .iter()
        .map(|r| &r.name)
        .filter(|zone| qname.is_within(zone.as_str()))
        .max_by_key(|zone| zone.as_str().len())
    else {
        return Err(match ns_records.first() {
            Some(ns) => Unusable::ReferralOutside {
                zone: ns.name.clone(),
                name: qname.clone(),
            },
            None => Unusable::Empty,
        }
        .into());
    };
    let srv_name = Name::from_wire(&format!("_dns._tcp.{zone}"));
    let mut servers: Vec<NameServer> = Vec::new();
    let mut ttl = u32::MAX;
    let mut unreachable = None;
    for ns in ns_records.iter().filter(|r| &r.name == zone) {
        let RData::Ns(target) = &ns.data else {
            continue;
        };
        if servers.iter().any(|s| &s.name == target) {
            continue;
        }
        let mut addrs: Vec<IpAddr> = Vec::new();
        for ip in additional(msg, target).filter_map(|r| r.data.ip()) {
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
        if addrs.is_empty() && target.is_within(zone.as_str()) {
            unreachable = Some(Unusable::NoGlue {
                zone: zone.clone(),
                target: target.clone(),
            });
            continue;
        }
        let port = additional(msg, &srv_name)
            .find_map(|r| match &r.data {
                RData::Srv(srv) if &srv.target == target => Some(srv.port),
                _ => None,
            })
            .unwrap_or(DEFAULT_DNS_PORT);
        ttl = ttl.min(ns.ttl);
        servers.push(NameServer {
            name: target.clone(),
            port,
            addrs,
        });
    }
    if servers.is_empty() {
        return Err(unreachable.unwrap_or(Unusable::Empty).into());
    }
    Ok(Referral {
        zone: zone.clone(),
        ttl,
        servers,
    })
}

/// The additional records owned by `name`, as model records.
fn additional<'m>(msg: &'m Message, name: &'m Name) -> impl Iterator<Item = Record> + 'm {
    msg.additionals
        .iter()
        .filter_map(model_record)
        .filter(move |r| &r.name == name)
}

/// The ID of a message (its first two bytes).
fn message_id(message: &[u8]) -> Option<[u8; 2]> {
    message.get(..2).and_then(|id| id.try_into().ok())
}

/// The time left until `deadline`, or [`DnsUpstreamError::Timeout`] if none.
fn remaining(deadline: Instant) -> Result<Duration, DnsUpstreamError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(DnsUpstreamError::Timeout)
}

/// Sends `request` to `addr` on `socket` and returns the first datagram from `addr` with
/// the request's ID, waiting until `deadline` at the latest.
///
/// Datagrams from other addresses, or with another ID (a late answer to an earlier
/// query), are ignored: they are how spoofed or stale answers arrive. The socket's read
/// timeout is changed.
pub fn exchange_udp(
    socket: &UdpSocket,
    addr: SocketAddr,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, DnsUpstreamError> {
    let id = message_id(request)
        .ok_or_else(|| DnsUpstreamError::Malformed("request shorter than an ID".into()))?;
    udp_until(socket, addr, request, deadline, |message| {
        (message_id(message) == Some(id)).then(|| message.to_vec())
    })
}

/// Sends `request` to `addr` on `socket`, then reads datagrams until `take` makes
/// something of one from `addr`, or `deadline`. Datagrams from anyone else, and those
/// `take` passes over, are logged and skipped.
fn udp_until<T>(
    socket: &UdpSocket,
    addr: SocketAddr,
    request: &[u8],
    deadline: Instant,
    mut take: impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, DnsUpstreamError> {
    socket.send_to(request, addr)?;
    RECEIVE.with_borrow_mut(|buf| udp_receive(socket, addr, deadline, buf, &mut take))
}

thread_local! {
    /// Each thread's buffer for upstream answers: made once, not per question (zeroing
    /// a fresh 64 KiB per miss was a tenth of a miss's processor time).
    static RECEIVE: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; crate::server::udp::RECV_BUFFER].into_boxed_slice());
}

/// [`udp_until`]'s reading, into `buf`.
fn udp_receive<T>(
    socket: &UdpSocket,
    addr: SocketAddr,
    deadline: Instant,
    buf: &mut [u8],
    take: &mut impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, DnsUpstreamError> {
    loop {
        socket.set_read_timeout(Some(remaining(deadline)?))?;
        match socket.recv_from(buf) {
            Ok((len, from)) if same_peer(from, addr) => match take(&buf[..len]) {
                Some(taken) => return Ok(taken),
                None => log::debug!("dns upstream: skipped {len} bytes from {from}"),
            },
            Ok((len, from)) => log::debug!("dns upstream: ignored {len} bytes from {from}"),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether a datagram from `from` comes from `addr`: the same port and the same address,
/// an IPv4 address and its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`, as a dual-stack
/// socket reports it) counting as the same.
fn same_peer(from: SocketAddr, addr: SocketAddr) -> bool {
    from.port() == addr.port() && from.ip().to_canonical() == addr.ip().to_canonical()
}

/// Connects to `addr` over TCP, giving up at `deadline`.
pub fn connect_tcp(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, DnsUpstreamError> {
    let stream = TcpStream::connect_timeout(&addr, remaining(deadline)?)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// [`connect_tcp`] from `local`'s address (the asking server's own, as its UDP question
/// went out from: [`query_socket`]), on a port the kernel picks; from any address when
/// `local` is the unspecified one.
pub fn connect_tcp_from(
    local: IpAddr,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<TcpStream, DnsUpstreamError> {
    let source = source_for(local, addr);
    if source.is_unspecified() {
        return connect_tcp(addr, deadline);
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&addr.into(), remaining(deadline)?)?;
    let stream: TcpStream = socket.into();
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Sends `request` on `stream` (framed, [`tcp::write_message`]) and returns the first
/// message back with the request's ID, waiting until `deadline` at the latest.
///
/// Messages with another ID (a late answer on a reused connection) are skipped. The
/// stream's timeouts are changed.
pub fn exchange_tcp(
    stream: &mut TcpStream,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, DnsUpstreamError> {
    let id = message_id(request)
        .ok_or_else(|| DnsUpstreamError::Malformed("request shorter than an ID".into()))?;
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    tcp::write_message(stream, request)?;
    let mut buf = Vec::new();
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match tcp::read_message(stream, &mut buf)? {
            None => return Err(DnsUpstreamError::Closed),
            Some(message) if message_id(message) == Some(id) => return Ok(message.to_vec()),
            Some(message) => log::debug!("dns upstream: skipped {} stale bytes", message.len()),
        }
    }
}

/// A query ID no one outside can guess (RFC 5452), from the operating system's
/// cryptographic random source, drawn 32 at a time per thread.
pub fn new_id() -> u16 {
    thread_local! {
        static IDS: RefCell<(usize, [u8; 64])> = const { RefCell::new((64, [0; 64])) };
    }
    IDS.with(|ids| {
        let (used, bytes) = &mut *ids.borrow_mut();
        if *used >= bytes.len() {
            getrandom::fill(bytes).expect("the operating system's random source failed");
            *used = 0;
        }
        let id = u16::from_be_bytes([bytes[*used], bytes[*used + 1]]);
        *used += 2;
        id
    })
}

/// One question asked by [`exchange`]: whether it went on over TCP, and what came of it.
#[derive(Debug)]
pub struct Exchange {
    /// The UDP answer was truncated, and the question was asked again over TCP.
    pub over_tcp: bool,
    /// The response's bytes and what they say.
    pub result: Result<(Vec<u8>, Resolution), DnsUpstreamError>,
}

/// Asks `addr` the query, the one way dnsd does it (the resolvers and `dnsd trace`
/// alike): with a new unguessable ID, over UDP on `socket`, and over TCP when the
/// answer comes back truncated, all by `deadline`. Only a response from `addr` with that
/// ID and question is taken: a datagram with another ID, or about another question, or
/// that is not a response, is skipped, and the real answer still awaited (a forger's
/// one lucky guess must not cost the real answer).
pub fn exchange(
    socket: &UdpSocket,
    addr: SocketAddr,
    query: &Query,
    deadline: Instant,
) -> Exchange {
    let mut over_tcp = false;
    let id = new_id();
    let result = query_message(id, query).and_then(|request| {
        let (response, read) =
            udp_until(
                socket,
                addr,
                &request,
                deadline,
                |message| match read_response(message, id, query) {
                    Err(
                        e @ (DnsUpstreamError::WrongId { .. }
                        | DnsUpstreamError::NotAResponse
                        | DnsUpstreamError::WrongQuestion { .. }),
                    ) => {
                        log::debug!("dns upstream: {addr}: not the answer: {e}");
                        None
                    }
                    read => Some((message.to_vec(), read)),
                },
            )?;
        match read {
            Err(DnsUpstreamError::Truncated) => {
                over_tcp = true;
                // From the address the question went out from over UDP.
                let local = socket.local_addr()?.ip();
                let mut stream = connect_tcp_from(local, addr, deadline)?;
                let response = exchange_tcp(&mut stream, &request, deadline)?;
                read_response(&response, id, query).map(|r| (response, r))
            }
            other => other.map(|r| (response, r)),
        }
    });
    Exchange { over_tcp, result }
}

/// A UDP socket for one question to `to`: bound to `local` (the asking server's own
/// address) on a port the kernel draws at random, and connected to `to`, so that only
/// `to`'s datagrams reach it. Linux draws each unbound port at random from the whole
/// ephemeral range (`ip_local_port_range`, about 28,000 ports) and skips ports in use,
/// so no retry loop is needed here; a test checks the spread.
///
/// `local` is used as it is when it can reach `to`: of the same family, and not a
/// loopback address when `to` is elsewhere (a loopback source cannot leave the host).
/// Otherwise, and when `local` is itself the unspecified address, the socket is bound
/// to the unspecified address of `to`'s family and the kernel picks the source.
pub fn query_socket(local: IpAddr, to: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(source_for(local, to), 0))?;
    socket.connect(to)?;
    Ok(socket)
}

/// The address a question to `to` leaves from, for a server bound to `local` (see
/// [`query_socket`]).
fn source_for(local: IpAddr, to: SocketAddr) -> IpAddr {
    let local = local.to_canonical();
    let reaches = local.is_ipv4() == to.is_ipv4()
        && (!local.is_loopback() || to.ip().to_canonical().is_loopback());
    match (reaches, to) {
        (true, _) => local,
        (false, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (false, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// [`query_socket`] from the unspecified address: for a tool (`dnsd trace`), which has
/// no address of its own.
pub fn udp_socket_for(addr: SocketAddr) -> io::Result<UdpSocket> {
    let any = match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    query_socket(any, addr)
}

/// DNS as a server's way upstream: [`exchange`] on a new [`query_socket`] per
/// question, from the server's own address. A socket is never reused: a port kept
/// would tell a forger where the next answer is awaited (RFC 5452).
#[derive(Debug)]
pub struct DnsUpstream {
    local: IpAddr,
}

/// A failed DNS exchange, as an upstream's error says it.
#[derive(Debug, thiserror::Error)]
#[error("(DNS): {0}")]
pub struct OverDns(pub DnsUpstreamError);

impl DnsUpstream {
    /// Asking from `local`, the address the server itself is bound to.
    pub fn new(local: IpAddr) -> DnsUpstream {
        DnsUpstream { local }
    }
}

impl Ask for DnsUpstream {
    fn ask(
        &self,
        addr: SocketAddr,
        query: &Query,
        deadline: Instant,
    ) -> Result<Resolution, UpstreamError> {
        let socket = query_socket(self.local, addr).map_err(|e| UpstreamError::Io(addr, e))?;
        match exchange(&socket, addr, query, deadline).result {
            Ok((_, resolution)) => Ok(resolution),
            Err(DnsUpstreamError::Timeout) => Err(UpstreamError::Timeout(addr)),
            Err(DnsUpstreamError::Io(e)) => Err(UpstreamError::io(addr, e)),
            Err(e) => Err(UpstreamError::Unreadable(addr, Box::new(OverDns(e)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::{answer as serve, DnsService, DnsSettings, Transport};
    use crate::model::{QType, Soa, Srv};
    use hickory_proto::rr::{self as hrr, rdata as hrd};
    use std::net::TcpListener;

    #[test]
    fn an_ipv4_upstream_seen_through_a_dual_stack_socket_is_the_same_peer() {
        let v4: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5353".parse().unwrap();
        assert!(same_peer(v4, v4));
        assert!(same_peer(mapped, v4));
        assert!(same_peer(v4, mapped));
        assert!(!same_peer("[::ffff:127.0.0.2]:5353".parse().unwrap(), v4));
        assert!(!same_peer("127.0.0.1:5354".parse().unwrap(), v4));
        assert!(!same_peer("[::1]:5353".parse().unwrap(), v4));
    }

    fn name(s: &str) -> Name {
        Name::from_wire(s)
    }

    fn query(s: &str, qtype: QType, recursion: Recursion) -> Query {
        Query {
            name: name(s),
            qtype,
            recursion,
            tag: None,
        }
    }

    fn soa_record(zone: &str) -> Record {
        Record::new(
            name(zone),
            300,
            RData::Soa(Box::new(Soa {
                mname: name(&format!("ns.{zone}")),
                rname: name(&format!("admin.{zone}")),
                serial: 2024,
                refresh: 3600,
                retry: 600,
                expire: 86400,
                minimum: 60,
            })),
        )
    }

    /// A role that answers every query with one fixed resolution.
    struct Fixed(Resolution);

    impl DnsService for Fixed {
        fn recursion(&self, rd: bool) -> Recursion {
            if rd {
                Recursion::Recursive
            } else {
                Recursion::Iterative
            }
        }
        fn recursion_available(&self, _rd: bool) -> bool {
            true
        }
        fn resolve(&self, _: &Query) -> Resolution {
            self.0.clone()
        }
    }

    fn through_server(q: &Query, resolution: Resolution) -> Result<Resolution, DnsUpstreamError> {
        let request = query_message(0x4242, q).unwrap();
        let answered = serve(
            &request,
            Transport::Udp,
            &DnsSettings::default(),
            &Fixed(resolution),
        );
        read_response(&answered.response.unwrap(), 0x4242, q)
    }

    #[test]
    fn query_message_sets_rd_and_edns() {
        let q = query("www.google.com", QType::Aaaa, Recursion::Recursive);
        let msg = Message::from_vec(&query_message(7, &q).unwrap()).unwrap();
        assert_eq!(msg.metadata.id, 7);
        assert!(msg.metadata.recursion_desired);
        assert_eq!(msg.metadata.message_type, MessageType::Query);
        assert_eq!(msg.queries.len(), 1);
        assert_eq!(msg.queries[0].name().to_ascii(), "www.google.com.");
        assert_eq!(msg.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(
            msg.edns.as_ref().map(Edns::max_payload),
            Some(DEFAULT_EDNS_PAYLOAD)
        );

        let q = query("www.google.com", QType::A, Recursion::Iterative);
        let msg = Message::from_vec(&query_message(7, &q).unwrap()).unwrap();
        assert!(!msg.metadata.recursion_desired);
    }

    #[test]
    fn every_outcome_round_trips_through_the_server() {
        let q = query("google.com", QType::A, Recursion::Recursive);
        let ip: Ipv4Addr = "142.250.1.1".parse().unwrap();
        let cases = [
            Resolution::authoritative(Outcome::Answer(vec![
                Record::new(name("google.com"), 60, RData::Cname(name("www.google.com"))),
                Record::new(name("www.google.com"), 30, RData::A(ip)),
                Record::new(name("www.google.com"), 30, RData::A(Ipv4Addr::LOCALHOST)),
            ])),
            Resolution::new(Outcome::Answer(vec![Record::new(
                name("google.com"),
                5,
                RData::A(ip),
            )])),
            Resolution::authoritative(Outcome::NoData(soa_record("com"))),
            Resolution::authoritative(Outcome::NxDomain(soa_record("com"))),
            Resolution::new(Outcome::Referral(Referral::new(
                name("com"),
                "127.0.0.1:5301".parse().unwrap(),
                86400,
            ))),
            Resolution::new(Outcome::Referral(Referral::new(
                name("com"),
                "[::1]:5302".parse().unwrap(),
                10,
            ))),
            Resolution::new(Outcome::ServFail),
            Resolution::new(Outcome::Refused),
        ];
        for resolution in cases {
            assert_eq!(through_server(&q, resolution.clone()).unwrap(), resolution);
        }
    }

    #[test]
    fn a_referral_to_several_servers_round_trips_through_the_server() {
        let q = query("www.example.com", QType::A, Recursion::Iterative);
        let referral = Referral {
            zone: name("example.com"),
            ttl: 600,
            servers: vec![
                NameServer {
                    name: name("ns1.example.com"),
                    port: 5301,
                    addrs: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                },
                NameServer {
                    name: name("ns2.example.com"),
                    port: 53,
                    addrs: vec!["127.0.0.2".parse().unwrap()],
                },
                NameServer {
                    name: name("ns.dns-host.net"),
                    port: 53,
                    addrs: Vec::new(),
                },
            ],
        };
        let resolution = Resolution::new(Outcome::Referral(referral));
        assert_eq!(through_server(&q, resolution.clone()).unwrap(), resolution);
    }

    #[test]
    fn truncated_response_says_retry_over_tcp() {
        let q = query("big.com", QType::A, Recursion::Iterative);
        let records = (0..200u8)
            .map(|i| Record::new(name("big.com"), 60, RData::A(Ipv4Addr::new(10, 0, 0, i))))
            .collect();
        let err = through_server(&q, Resolution::new(Outcome::Answer(records))).unwrap_err();
        assert!(matches!(err, DnsUpstreamError::Truncated), "{err:?}");
        assert_eq!(err.to_string(), "truncated, retry over TCP");
    }

    /// A response message for `q` built by hand, for the cases our server never sends.
    fn response(q: &Query, id: u16, rcode: ResponseCode) -> Message {
        let mut msg = Message::response(id, OpCode::Query);
        msg.metadata.response_code = rcode;
        msg.add_query(wire_query(q).unwrap());
        msg
    }

    fn hname(s: &str) -> hrr::Name {
        hrr::Name::from_ascii(s).unwrap()
    }

    #[test]
    fn referral_without_srv_uses_port_53() {
        let q = query("www.example.org", QType::A, Recursion::Iterative);
        let mut msg = response(&q, 1, ResponseCode::NoError);
        msg.add_authority(hrr::Record::from_rdata(
            hname("org."),
            100,
            hrr::RData::NS(hrd::NS(hname("a.nic.org."))),
        ));
        msg.add_additional(hrr::Record::from_rdata(
            hname("a.nic.org."),
            100,
            hrr::RData::A(hrd::A(Ipv4Addr::new(192, 0, 2, 1))),
        ));
        let got = read_response(&msg.to_vec().unwrap(), 1, &q).unwrap();
        assert_eq!(
            got.outcome,
            Outcome::Referral(Referral {
                zone: name("org"),
                ttl: 100,
                servers: vec![NameServer {
                    name: name("a.nic.org"),
                    port: 53,
                    addrs: vec!["192.0.2.1".parse().unwrap()],
                }],
            })
        );
    }

    #[test]
    fn a_referral_keeps_every_name_server_with_its_addresses_and_port() {
        let q = query("www.example.com", QType::A, Recursion::Iterative);
        let mut msg = response(&q, 1, ResponseCode::NoError);
        for ns in ["ns1.example.com.", "ns.dns-host.net.", "ns2.example.com."] {
            msg.add_authority(hrr::Record::from_rdata(
                hname("example.com."),
                300,
                hrr::RData::NS(hrd::NS(hname(ns))),
            ));
        }
        let glue = |owner: &str, ip: [u8; 4]| {
            hrr::Record::from_rdata(hname(owner), 300, hrr::RData::A(hrd::A(ip.into())))
        };
        msg.add_additional(glue("ns1.example.com.", [192, 0, 2, 1]));
        msg.add_additional(glue("ns1.example.com.", [192, 0, 2, 2]));
        // In-zone without glue: unreachable, left out.
        msg.add_additional(hrr::Record::from_rdata(
            hname("_dns._tcp.example.com."),
            300,
            hrr::RData::SRV(hrd::SRV::new(0, 0, 5300, hname("ns1.example.com."))),
        ));
        let got = read_response(&msg.to_vec().unwrap(), 1, &q).unwrap();
        let Outcome::Referral(r) = got.outcome else {
            panic!("{:?}", got.outcome)
        };
        assert_eq!(r.zone, name("example.com"));
        assert_eq!(
            r.servers,
            [
                NameServer {
                    name: name("ns1.example.com"),
                    port: 5300,
                    addrs: vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
                },
                // Outside the zone, no glue: kept, for the resolver to look up.
                NameServer {
                    name: name("ns.dns-host.net"),
                    port: 53,
                    addrs: Vec::new(),
                },
            ]
        );
        assert_eq!(r.addr(), Some("192.0.2.1:5300".parse().unwrap()));
    }

    #[test]
    fn referral_checks() {
        let q = query("www.example.org", QType::A, Recursion::Iterative);
        // To a zone that does not contain the name.
        let mut msg = response(&q, 1, ResponseCode::NoError);
        msg.add_authority(hrr::Record::from_rdata(
            hname("com."),
            100,
            hrr::RData::NS(hrd::NS(hname("ns.com."))),
        ));
        msg.add_additional(hrr::Record::from_rdata(
            hname("ns.com."),
            100,
            hrr::RData::A(hrd::A(Ipv4Addr::LOCALHOST)),
        ));
        let err = read_response(&msg.to_vec().unwrap(), 1, &q).unwrap_err();
        assert!(err.to_string().contains("does not contain"), "{err}");
        // Without glue.
        let mut msg = response(&q, 1, ResponseCode::NoError);
        msg.add_authority(hrr::Record::from_rdata(
            hname("org."),
            100,
            hrr::RData::NS(hrd::NS(hname("ns.org."))),
        ));
        msg.add_additional(hrr::Record::from_rdata(
            hname("_dns._tcp.org."),
            100,
            hrr::RData::SRV(hrd::SRV::new(0, 0, 5300, hname("ns.org."))),
        ));
        let err = read_response(&msg.to_vec().unwrap(), 1, &q).unwrap_err();
        assert!(err.to_string().contains("without glue"), "{err}");
        // Nothing at all.
        let msg = response(&q, 1, ResponseCode::NoError);
        let err = read_response(&msg.to_vec().unwrap(), 1, &q).unwrap_err();
        assert!(matches!(err, DnsUpstreamError::Unusable(_)), "{err:?}");
    }

    #[test]
    fn wrong_id_qr_question_and_rcode_are_errors() {
        let q = query("a.com", QType::A, Recursion::Iterative);
        let ok = response(&q, 9, ResponseCode::ServFail).to_vec().unwrap();
        assert!(read_response(&ok, 9, &q).is_ok());
        assert!(matches!(
            read_response(&ok, 10, &q),
            Err(DnsUpstreamError::WrongId {
                expected: 10,
                got: 9
            })
        ));
        let mut as_query = response(&q, 9, ResponseCode::NoError);
        as_query.metadata.message_type = MessageType::Query;
        assert!(matches!(
            read_response(&as_query.to_vec().unwrap(), 9, &q),
            Err(DnsUpstreamError::NotAResponse)
        ));
        let other = query("b.com", QType::A, Recursion::Iterative);
        assert!(matches!(
            read_response(&ok, 9, &other),
            Err(DnsUpstreamError::WrongQuestion { .. })
        ));
        let aaaa = query("a.com", QType::Aaaa, Recursion::Iterative);
        assert!(matches!(
            read_response(&ok, 9, &aaaa),
            Err(DnsUpstreamError::WrongQuestion { .. })
        ));
        let notimp = response(&q, 9, ResponseCode::NotImp).to_vec().unwrap();
        let err = read_response(&notimp, 9, &q).unwrap_err();
        assert_eq!(err.to_string(), "response code NOTIMP");
        let nx = response(&q, 9, ResponseCode::NXDomain).to_vec().unwrap();
        assert!(matches!(
            read_response(&nx, 9, &q),
            Err(DnsUpstreamError::Unusable(_))
        ));
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(matches!(
            read_response(&trailing, 9, &q),
            Err(DnsUpstreamError::Malformed(_))
        ));
        assert!(matches!(
            read_response(&ok[..5], 9, &q),
            Err(DnsUpstreamError::Malformed(_))
        ));
    }

    #[test]
    fn answer_keeps_only_the_cname_chain() {
        let q = query("a.com", QType::A, Recursion::Iterative);
        let mut msg = response(&q, 1, ResponseCode::NoError);
        msg.add_answer(hrr::Record::from_rdata(
            hname("A.com."),
            10,
            hrr::RData::CNAME(hrd::CNAME(hname("b.com."))),
        ));
        msg.add_answer(hrr::Record::from_rdata(
            hname("evil.org."),
            10,
            hrr::RData::A(hrd::A(Ipv4Addr::new(6, 6, 6, 6))),
        ));
        msg.add_answer(hrr::Record::from_rdata(
            hname("b.com."),
            20,
            hrr::RData::A(hrd::A(Ipv4Addr::new(1, 2, 3, 4))),
        ));
        let got = read_response(&msg.to_vec().unwrap(), 1, &q).unwrap();
        assert_eq!(
            got.outcome,
            Outcome::Answer(vec![
                Record::new(name("a.com"), 10, RData::Cname(name("b.com"))),
                Record::new(name("b.com"), 20, RData::A(Ipv4Addr::new(1, 2, 3, 4))),
            ])
        );
    }

    fn a_record(owner: &str, ip: Ipv4Addr) -> hrr::Record {
        hrr::Record::from_rdata(hname(owner), 60, hrr::RData::A(hrd::A(ip)))
    }

    /// A chain of `links` CNAMEs from `a.com.` and the address at its end.
    fn chain(q: &Query, links: usize) -> Vec<u8> {
        let mut msg = response(q, 1, ResponseCode::NoError);
        for i in 0..links {
            let (from, to) = (format!("c{i}.a.com."), format!("c{}.a.com.", i + 1));
            let from = if i == 0 { "a.com.".to_owned() } else { from };
            msg.add_answer(hrr::Record::from_rdata(
                hname(&from),
                60,
                hrr::RData::CNAME(hrd::CNAME(hname(&to))),
            ));
        }
        msg.add_answer(a_record(&format!("c{links}.a.com."), Ipv4Addr::LOCALHOST));
        msg.to_vec().unwrap()
    }

    /// A set of `n` addresses for `a.com.`, and `extra` addresses of other names.
    fn addresses(q: &Query, n: u32, extra: u32) -> Vec<u8> {
        let mut msg = response(q, 1, ResponseCode::NoError);
        for i in 0..n {
            msg.add_answer(a_record("a.com.", Ipv4Addr::from(0x0a00_0000 + i)));
        }
        for i in 0..extra {
            msg.add_additional(a_record(&format!("n{i}.a.com."), Ipv4Addr::LOCALHOST));
        }
        msg.to_vec().unwrap()
    }

    /// What is over a cap is an error (SERVFAIL for the asker), what is at it is read.
    #[test]
    fn responses_over_a_cap_are_refused() {
        let q = query("a.com", QType::A, Recursion::Iterative);
        let at = read_response(&chain(&q, MAX_CNAME_CHAIN), 1, &q).unwrap();
        assert!(matches!(&at.outcome, Outcome::Answer(r) if r.len() == MAX_CNAME_CHAIN + 1));
        let err = read_response(&chain(&q, MAX_CNAME_CHAIN + 1), 1, &q).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a CNAME chain from a.com of more than 8 links (the cap)"
        );

        let at = read_response(&addresses(&q, MAX_RRSET as u32, 0), 1, &q).unwrap();
        assert!(matches!(&at.outcome, Outcome::Answer(r) if r.len() == MAX_RRSET));
        let err = read_response(&addresses(&q, 500, 0), 1, &q).unwrap_err();
        assert_eq!(
            err.to_string(),
            "500 A records for a.com., over the cap of 256 per set"
        );
        // The same name in another case is the same set.
        let mut msg = Message::from_vec(&addresses(&q, MAX_RRSET as u32, 0)).unwrap();
        msg.add_additional(a_record("A.COM.", Ipv4Addr::LOCALHOST));
        let err = read_response(&msg.to_vec().unwrap(), 1, &q).unwrap_err();
        assert!(matches!(
            err,
            DnsUpstreamError::Unusable(Unusable::LargeSet { count: 257, .. })
        ));

        let long = addresses(&q, 1, 1000);
        assert!(long.len() > MAX_RESPONSE_BYTES);
        let err = read_response(&long, 1, &q).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} bytes, over the 16384-byte cap on a response",
                long.len()
            )
        );
    }

    #[test]
    fn a_question_leaves_from_the_servers_own_address_where_it_can() {
        let lo: IpAddr = "127.0.0.2".parse().unwrap();
        let there: IpAddr = "192.0.2.1".parse().unwrap();
        let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(source_for(lo, at("127.0.0.1:53")), lo);
        assert_eq!(source_for(there, at("127.0.0.1:53")), there);
        assert_eq!(source_for(there, at("198.51.100.1:53")), there);
        assert_eq!(source_for(any4, at("127.0.0.1:53")), any4);
        // A loopback source cannot leave the host; the other family cannot be used.
        assert_eq!(source_for(lo, at("198.51.100.1:53")), any4);
        assert_eq!(source_for(lo, at("[::1]:53")), any6);
        assert_eq!(
            source_for("::1".parse().unwrap(), at("[::1]:53")),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            source_for("::ffff:127.0.0.2".parse().unwrap(), at("127.0.0.1:53")),
            lo
        );
    }

    /// A TCP retry leaves from the address the UDP question left from.
    #[test]
    fn a_tcp_retry_is_bound_to_the_servers_own_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let own: IpAddr = "127.0.0.2".parse().unwrap();
        let _stream = connect_tcp_from(own, to, deadline).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), own);
        // Unbound (a tool's), it is the kernel's choice.
        let unspecified: IpAddr = "0.0.0.0".parse().unwrap();
        let _stream = connect_tcp_from(unspecified, to, deadline).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert!(peer.ip().is_loopback());
    }

    /// Each question's socket is its own: bound to the address given, on a port drawn at
    /// random, connected, so that a datagram from anyone but the server never arrives.
    #[test]
    fn query_sockets_are_bound_connected_and_on_random_ports() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let local: IpAddr = "127.0.0.2".parse().unwrap();
        let mut ports = HashSet::new();
        for _ in 0..1000 {
            let socket = query_socket(local, to).unwrap();
            assert_eq!(socket.local_addr().unwrap().ip(), local);
            assert_eq!(socket.peer_addr().unwrap(), to);
            ports.insert(socket.local_addr().unwrap().port());
        }
        // About 982 expected from ~28,000 ports; a fixed or sequential port gives 1.
        assert!(ports.len() >= 950, "{} distinct ports", ports.len());

        let socket = query_socket(local, to).unwrap();
        let me = socket.local_addr().unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"forged", me).unwrap();
        server.send_to(b"real", me).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        let (len, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..len], from), (&b"real"[..], to));
    }

    /// A datagram from the server with the right ID but another question, or that is
    /// not a response, is passed over: the real answer after it is taken.
    #[test]
    fn exchange_skips_what_does_not_answer_the_question() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let q = query("a.com", QType::A, Recursion::Iterative);
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (len, from) = server.recv_from(&mut buf).unwrap();
            let id = Message::from_vec(&buf[..len]).unwrap().metadata.id;
            let other = query("b.com", QType::A, Recursion::Iterative);
            let mut wrong_question = response(&other, id, ResponseCode::NoError);
            wrong_question.add_answer(a_record("b.com.", Ipv4Addr::new(6, 6, 6, 6)));
            server
                .send_to(&wrong_question.to_vec().unwrap(), from)
                .unwrap();
            let mut as_query = response(&q2, id, ResponseCode::NoError);
            as_query.metadata.message_type = MessageType::Query;
            as_query.add_answer(a_record("a.com.", Ipv4Addr::new(6, 6, 6, 6)));
            server.send_to(&as_query.to_vec().unwrap(), from).unwrap();
            let mut real = response(&q2, id, ResponseCode::NoError);
            real.add_answer(a_record("a.com.", Ipv4Addr::new(1, 2, 3, 4)));
            server.send_to(&real.to_vec().unwrap(), from).unwrap();
        });
        let socket = query_socket(IpAddr::V4(Ipv4Addr::LOCALHOST), addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = exchange(&socket, addr, &q, deadline).result.unwrap().1;
        t.join().unwrap();
        assert_eq!(got.first_ip(), Some("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn srv_records_are_read() {
        // SRV answers (not only in referrals) come back as model records.
        let q = query("_dns._tcp.com", QType::Srv, Recursion::Iterative);
        let srv = Record::new(
            name("_dns._tcp.com"),
            60,
            RData::Srv(Srv {
                priority: 0,
                weight: 0,
                port: 5301,
                target: name("ns.com"),
            }),
        );
        let res = Resolution::authoritative(Outcome::Answer(vec![srv]));
        assert_eq!(through_server(&q, res.clone()).unwrap(), res);
    }

    #[test]
    fn udp_exchange_ignores_strangers_and_wrong_ids() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let q = query("a.com", QType::A, Recursion::Iterative);
        let request = query_message(0x1234, &q).unwrap();
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (_, from) = server.recv_from(&mut buf).unwrap();
            let reply = response(&q2, 0x1234, ResponseCode::Refused)
                .to_vec()
                .unwrap();
            stranger.send_to(&reply, from).unwrap();
            let mut wrong_id = reply.clone();
            wrong_id[1] ^= 1;
            server.send_to(&wrong_id, from).unwrap();
            server.send_to(&reply, from).unwrap();
            reply
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = exchange_udp(&client, server_addr, &request, deadline).unwrap();
        assert_eq!(got, t.join().unwrap());

        // Nobody answers: a timeout at the deadline.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let started = Instant::now();
        let err = exchange_udp(
            &client,
            silent.local_addr().unwrap(),
            &request,
            started + Duration::from_millis(150),
        )
        .unwrap_err();
        assert!(matches!(err, DnsUpstreamError::Timeout), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn tcp_exchange_skips_stale_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let q = query("a.com", QType::A, Recursion::Iterative);
        let request = query_message(77, &q).unwrap();
        let reply = response(&q, 77, ResponseCode::Refused).to_vec().unwrap();
        let stale = response(&q, 76, ResponseCode::Refused).to_vec().unwrap();
        let expected = reply.clone();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let got = tcp::read_message(&mut s, &mut buf)
                .unwrap()
                .unwrap()
                .to_vec();
            tcp::write_message(&mut s, &stale).unwrap();
            tcp::write_message(&mut s, &reply).unwrap();
            got
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut stream = connect_tcp(addr, deadline).unwrap();
        let got = exchange_tcp(&mut stream, &request, deadline).unwrap();
        assert_eq!(got, expected);
        assert_eq!(t.join().unwrap(), request);
        let res = read_response(&got, 77, &q).unwrap();
        assert_eq!(res.outcome, Outcome::Refused);
    }
}
