//! Zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995), NOTIFY (RFC 1996) and SOA
//! serials: how a standard secondary (NSD, Knot, BIND) copies a dnsd zone, hears that it
//! changed, and knows a newer copy when it sees one.
//!
//! - A zone is anything that implements [`Transfer`]: its SOA, and every record, the
//!   SOA first. A server that offers transfers is a [`Primary`]: it hands one snapshot
//!   of its zone to each transfer, so a reload in the middle of one does not mix two
//!   versions, and says who may have it.
//! - [`TransferRequest::read`] tells a transfer request (AXFR or IXFR, class IN) from any
//!   other message; [`answer`] answers it: REFUSED to an address not on the allow list
//!   (`--allow-transfer`, empty by default), NOTAUTH for a zone the server does not
//!   hold; over TCP the zone, SOA first and last, in as many messages as it takes
//!   (each under [`TARGET_MESSAGE`] bytes of records, far below the 64 KiB TCP framing
//!   allows). Over UDP, AXFR is REFUSED (RFC 5936 defines it over TCP only), and IXFR is
//!   answered with the current SOA alone, which tells the client to come over TCP
//!   (RFC 1995 §2).
//! - **IXFR is answered as AXFR**: dnsd keeps no history of a zone's versions, so an
//!   IXFR from a serial older than the zone's gets the whole zone, which RFC 1995 §4
//!   allows ("the entire zone is returned"), and the secondary replaces its copy. An
//!   IXFR from the current serial (or a newer one) gets the SOA alone: up to date.
//! - [`Notifier`] tells the secondaries (`--notify ADDR:PORT`) that a zone is served
//!   (at start) or has a new serial (a reload that changed it), over UDP, trying a few
//!   times until each acknowledges.
//! - [`next_serial`] is how a zone that has no SOA of its own in its file (dnsd makes
//!   one) gets a serial that only ever grows: see there.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::Query as WireQuery;
use hickory_proto::op::{Edns, Header, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{self as hrr, DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};

use super::answer::{Answered, Question, Transport};
use super::exchange::new_id;
use super::tcp::MAX_MESSAGE;
use crate::model::QType;
use crate::server::access::Access;

/// A zone as a transfer sends it.
///
/// Implemented by each kind of zone data the servers answer from; a transfer reads one
/// value of it from start to end, so it should be a snapshot (an `Arc` of the data a
/// query answers from), not a handle that a reload changes under it.
pub trait Transfer {
    /// The zone's SOA record; its owner is the zone's apex.
    fn soa(&self) -> hrr::Record;
    /// Every record of the zone, of class IN, the apex SOA first (and only there).
    fn records(&self) -> Box<dyn Iterator<Item = hrr::Record> + '_>;
}

/// A server that transfers its zones out: each as it is now, and who may have them.
pub trait Primary {
    /// Who may transfer the zones.
    fn allow(&self) -> &Access;
    /// The zone whose apex is `apex` as it is now, if the server has it (one holding a
    /// single zone may give it whatever is asked: a zone whose SOA is not at `apex` is
    /// NOTAUTH all the same). One snapshot, read by one transfer from start to end.
    fn zone(&self, apex: &hrr::Name) -> Option<Box<dyn Transfer + '_>>;
}

/// A server's transfer settings: who may transfer its zones (`--allow-transfer`), and
/// which secondaries to tell when one changes (`--notify`).
#[derive(Clone, Debug)]
pub struct TransferSettings {
    /// The clients allowed AXFR and IXFR; by default no one.
    pub allow: Access,
    /// The secondaries sent a NOTIFY when a reload gives a zone a new serial.
    pub notify: Vec<SocketAddr>,
}

impl Default for TransferSettings {
    /// No one may transfer, no one is notified.
    fn default() -> Self {
        TransferSettings {
            allow: Access::only(Vec::new()),
            notify: Vec::new(),
        }
    }
}

/// How many bytes of records (counted uncompressed, so the message itself is smaller)
/// one message of a transfer carries at most, unless a single record is larger: well
/// within [`MAX_MESSAGE`], and a few hundred records of a typical zone per message.
pub const TARGET_MESSAGE: usize = 16 * 1024;

/// Which transfer a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Axfr,
    /// IXFR, with the serial of the copy the client has (the SOA in the request's
    /// authority section; `None` if it sent none).
    Ixfr {
        serial: Option<u32>,
    },
}

/// A zone transfer request, read.
#[derive(Debug)]
pub struct TransferRequest {
    meta: Metadata,
    question: WireQuery,
    edns: Option<Edns>,
    pub kind: Kind,
}

impl TransferRequest {
    /// The transfer `request` asks for; `None` for any other message, or one the
    /// ordinary answer path must refuse or report (a response, another opcode, not one
    /// question, class other than IN, unreadable, EDNS version above 0).
    ///
    /// Only the header and the question are read for any other message, so asking this
    /// of every query costs little.
    pub fn read(request: &[u8]) -> Option<TransferRequest> {
        let mut decoder = BinDecoder::new(request);
        let header = Header::read(&mut decoder).ok()?;
        let meta = header.metadata;
        if meta.message_type != MessageType::Query
            || meta.op_code != OpCode::Query
            || header.counts.queries != 1
        {
            return None;
        }
        let question = WireQuery::read(&mut decoder).ok()?;
        if !matches!(question.query_type(), RecordType::AXFR | RecordType::IXFR)
            || question.query_class() != DNSClass::IN
        {
            return None;
        }
        let msg = Message::from_vec(request).ok()?;
        if msg.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return None;
        }
        let kind = match question.query_type() {
            RecordType::AXFR => Kind::Axfr,
            _ => Kind::Ixfr {
                serial: msg.authorities.iter().find_map(|r| match &r.data {
                    hrr::RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                }),
            },
        };
        Some(TransferRequest {
            meta,
            question,
            edns: msg.edns,
            kind,
        })
    }

    /// A response to this request: its ID and flags, AA set, the question, EDNS if the
    /// request had it.
    fn response(&self, rcode: ResponseCode, with_question: bool) -> Message {
        let mut msg = Message::response(self.meta.id, OpCode::Query);
        msg.metadata = Metadata::response_from_request(&self.meta);
        msg.metadata.response_code = rcode;
        msg.metadata.authoritative = rcode == ResponseCode::NoError;
        if with_question {
            msg.add_query(self.question.clone());
        }
        if self.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(super::DEFAULT_EDNS_PAYLOAD);
            edns.set_version(0);
            msg.set_edns(edns);
        }
        msg
    }

    /// The log line's account of this request's answer.
    fn answered(&self, response: Vec<u8>, rcode: ResponseCode, detail: String) -> Answered {
        Answered {
            response: Some(response),
            dropped: None,
            id: Some(self.meta.id),
            question: Some(Question {
                qtype: QType::from_code(u16::from(self.question.query_type())),
                name: self.question.name().to_string(),
                class: None,
            }),
            rd: self.meta.recursion_desired,
            rcode: u16::from(rcode),
            aa: rcode == ResponseCode::NoError,
            ra: false,
            tc: false,
            resolution: None,
            detail,
        }
    }

    /// A one-message answer with no records: an error.
    fn error(&self, rcode: ResponseCode, detail: String) -> io::Result<Answered> {
        let bytes = self
            .response(rcode, true)
            .to_vec()
            .map_err(io::Error::other)?;
        Ok(self.answered(bytes, rcode, detail))
    }
}

/// Answers a transfer request from `peer` over `transport` with `primary`'s zone.
///
/// Every message of the answer but the last is handed to `send`, in order; the last is
/// the returned [`Answered`]'s response, sent as any answer is. Only a TCP answer has
/// more than one message. An error is `send`'s (the connection is then of no more use),
/// or a record too large for any message.
pub fn answer(
    request: &TransferRequest,
    primary: &dyn Primary,
    peer: IpAddr,
    transport: Transport,
    send: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<Answered> {
    if !primary.allow().allows(peer) {
        return request.error(
            ResponseCode::Refused,
            format!("transfer not allowed to {peer} (--allow-transfer)"),
        );
    }
    let asked = request.question.name();
    let zone = primary.zone(asked);
    let Some((zone, soa)) = zone
        .map(|z| {
            let soa = z.soa();
            (z, soa)
        })
        .filter(|(_, soa)| asked.eq_ignore_root(&soa.name))
    else {
        return request.error(
            ResponseCode::NotAuth,
            format!("{asked} is not a zone of this server"),
        );
    };
    let serial = serial_of(&soa);
    let up_to_date = match request.kind {
        Kind::Ixfr {
            serial: Some(theirs),
        } => !serial_newer(serial, theirs),
        _ => false,
    };
    let soa_alone = match (transport, request.kind) {
        (Transport::Udp, Kind::Axfr) => {
            return request.error(ResponseCode::Refused, "AXFR is asked over TCP".into())
        }
        // "Up to date", or "come over TCP" (RFC 1995 §2, §4).
        (Transport::Udp, Kind::Ixfr { .. }) => true,
        (Transport::Tcp, Kind::Ixfr { .. }) => up_to_date,
        (Transport::Tcp, Kind::Axfr) => false,
    };
    if soa_alone {
        let mut msg = request.response(ResponseCode::NoError, true);
        msg.add_answer(soa);
        let bytes = msg.to_vec().map_err(io::Error::other)?;
        let detail = if up_to_date {
            format!("serial {serial}: up to date")
        } else {
            format!("serial {serial}: the changes over TCP")
        };
        return Ok(request.answered(bytes, ResponseCode::NoError, detail));
    }
    let records = zone.records().chain(std::iter::once(soa));
    let (count, messages, last) = stream(request, records, send)?;
    let s = if messages == 1 { "" } else { "s" };
    let whole = match request.kind {
        Kind::Axfr => "",
        Kind::Ixfr { .. } => "the whole zone: ",
    };
    Ok(request.answered(
        last,
        ResponseCode::NoError,
        format!("{whole}serial {serial}, {count} records in {messages} message{s}"),
    ))
}

/// Packs `records` into messages of at most [`TARGET_MESSAGE`] bytes of records each,
/// the first with the question; hands each but the last to `send`. Returns how many
/// records and messages there were, and the last message.
fn stream(
    request: &TransferRequest,
    records: impl Iterator<Item = hrr::Record>,
    send: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(usize, usize, Vec<u8>)> {
    let (mut count, mut messages) = (0, 0);
    let mut batch: Vec<hrr::Record> = Vec::new();
    let mut size = 0;
    let mut pending: Option<Vec<u8>> = None;
    let mut flush = |batch: &mut Vec<hrr::Record>, messages: &mut usize| -> io::Result<()> {
        let mut msg = request.response(ResponseCode::NoError, *messages == 0);
        msg.answers = std::mem::take(batch);
        let bytes = msg.to_vec().map_err(io::Error::other)?;
        if bytes.len() > MAX_MESSAGE {
            return Err(io::Error::other(format!(
                "a record of {} is too large for a DNS message",
                msg.answers[0].name
            )));
        }
        *messages += 1;
        if let Some(previous) = pending.replace(bytes) {
            send(&previous)?;
        }
        Ok(())
    };
    for record in records {
        let len = record.to_bytes().map_or(MAX_MESSAGE, |b| b.len());
        if !batch.is_empty() && size + len > TARGET_MESSAGE {
            flush(&mut batch, &mut messages)?;
            size = 0;
        }
        size += len;
        count += 1;
        batch.push(record);
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut messages)?;
    }
    Ok((count, messages, pending.unwrap_or_default()))
}

/// The serial of an SOA record (0 for any other record, which a [`Transfer`] never
/// gives as its SOA).
pub fn serial_of(soa: &hrr::Record) -> u32 {
    match &soa.data {
        hrr::RData::SOA(soa) => soa.serial,
        _ => 0,
    }
}

/// Whether serial `a` is newer than `b` in serial number arithmetic (RFC 1982): the
/// serial wraps around at 2^32, and `a` is newer when it is less than 2^31 ahead.
pub fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The serial of a zone whose SOA dnsd makes (a TOML or legacy zone has none of its
/// own), given the serial it had before this load (`None` at start) and whether the
/// data changed.
///
/// At start, the load time in Unix seconds: a zone loaded later (a restart after an
/// edit) always has a newer serial than any earlier run gave it, so secondaries pick
/// the change up, as Knot's `serial-policy: unixtime` does. On a reload that changes
/// nothing, the serial stays (no transfer for nothing); on one that changes the data,
/// the time again, or the previous serial plus one if the time is not newer (two edits
/// within a second, or a clock set back).
pub fn next_serial(previous: Option<u32>, changed: bool, now: SystemTime) -> u32 {
    // Unix seconds fit a serial until 2106; past it, serial arithmetic wraps with them.
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32);
    match previous {
        None => now.max(1),
        Some(previous) if !changed => previous,
        Some(previous) if serial_newer(now, previous) => now,
        Some(previous) => previous.wrapping_add(1),
    }
}

/// How many times a NOTIFY is sent to a secondary that does not acknowledge it.
pub const NOTIFY_TRIES: u32 = 5;

/// How long a secondary has to acknowledge a NOTIFY before it is sent again (doubled
/// at each try).
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(1);

/// Tells secondaries that a zone has a new serial (RFC 1996): a NOTIFY over UDP to each,
/// sent again until it is acknowledged, at most [`NOTIFY_TRIES`] times. The secondary
/// then asks for the SOA and transfers the zone.
#[derive(Clone, Debug)]
pub struct Notifier {
    /// Who is told, from which address (the server's own: a secondary checks where a
    /// NOTIFY comes from against its list of primaries).
    targets: Arc<[SocketAddr]>,
    from: IpAddr,
    /// The server's name, for its log lines.
    name: Arc<str>,
}

impl Notifier {
    /// A notifier of `targets`, sending from `from` (port: any), logging as `name`.
    pub fn new(name: &str, targets: &[SocketAddr], from: IpAddr) -> Notifier {
        Notifier {
            targets: targets.into(),
            from,
            name: name.into(),
        }
    }

    /// Whether there is anyone to tell.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Tells every secondary that the zone whose SOA is `soa` changed: each on a thread
    /// of its own, which logs whether it was acknowledged; returns at once.
    pub fn notify(&self, soa: &hrr::Record) {
        for &target in self.targets.iter() {
            let (soa, name, from) = (soa.clone(), self.name.clone(), self.from);
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-notify"))
                .spawn(move || {
                    let zone = soa.name.clone();
                    let serial = serial_of(&soa);
                    match notify(from, target, &soa, NOTIFY_TRIES, NOTIFY_TIMEOUT) {
                        Ok(tries) => log::info!(
                            "{name}: NOTIFY of {zone} serial {serial} to {target} \
                             acknowledged (try {tries})"
                        ),
                        Err(e) => {
                            log::warn!("{name}: NOTIFY of {zone} serial {serial} to {target}: {e}")
                        }
                    }
                });
            if let Err(e) = spawned {
                log::warn!(
                    "{}: cannot start a thread to notify {target}: {e}",
                    self.name
                );
            }
        }
    }
}

/// Why a secondary was not told.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("not acknowledged after {0} tries")]
    NoAnswer(u32),
    #[error("answered {0}")]
    Rcode(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Sends one NOTIFY for `soa` from `from` to `to`, again after `timeout` (doubled each
/// time) until acknowledged, at most `tries` times; the number of the try that was.
pub fn notify(
    from: IpAddr,
    to: SocketAddr,
    soa: &hrr::Record,
    tries: u32,
    timeout: Duration,
) -> Result<u32, NotifyError> {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0))?;
    let mut buf = [0u8; 4096];
    let mut wait = timeout;
    for attempt in 1..=tries {
        let id = new_id();
        let mut msg = Message::new(id, MessageType::Query, OpCode::Notify);
        msg.metadata.authoritative = true;
        msg.add_query(WireQuery::query(soa.name.clone(), RecordType::SOA));
        msg.add_answer(soa.clone());
        socket.send_to(&msg.to_vec().map_err(io::Error::other)?, to)?;
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let (n, peer) = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if crate::net::is_timeout(&e) => break,
                // An ICMP port unreachable from an earlier try: try again later.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Err(e) => return Err(e.into()),
            };
            let Ok(reply) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let meta = &reply.metadata;
            if peer != to
                || meta.id != id
                || meta.message_type != MessageType::Response
                || meta.op_code != OpCode::Notify
            {
                continue;
            }
            return match meta.response_code {
                ResponseCode::NoError => Ok(attempt),
                rcode => Err(NotifyError::Rcode(rcode.to_string())),
            };
        }
        // Sleep out what is left of the wait (an ICMP error ends it early).
        if let Some(left) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        wait *= 2;
    }
    Err(NotifyError::NoAnswer(tries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::access::Net;
    use hickory_proto::rr::rdata as hrd;
    use std::net::Ipv4Addr;

    fn hname(s: &str) -> hrr::Name {
        hrr::Name::from_ascii(s).unwrap()
    }

    /// A zone of `n` A records under `com.`, with serial `serial`.
    struct Zone {
        serial: u32,
        n: usize,
    }

    impl Transfer for Zone {
        fn soa(&self) -> hrr::Record {
            hrr::Record::from_rdata(
                hname("com."),
                300,
                hrr::RData::SOA(hrd::SOA::new(
                    hname("ns.com."),
                    hname("hostmaster.com."),
                    self.serial,
                    3600,
                    600,
                    604_800,
                    300,
                )),
            )
        }

        fn records(&self) -> Box<dyn Iterator<Item = hrr::Record> + '_> {
            Box::new(std::iter::once(self.soa()).chain((0..self.n).map(|i| {
                hrr::Record::from_rdata(
                    hname(&format!("host{i}.com.")),
                    3600,
                    hrr::RData::A(hrd::A(Ipv4Addr::from(i as u32))),
                )
            })))
        }
    }

    /// A server of one [`Zone`].
    struct Server {
        allow: Access,
        zone: Zone,
    }

    impl Primary for Server {
        fn allow(&self) -> &Access {
            &self.allow
        }

        fn zone(&self, _: &hrr::Name) -> Option<Box<dyn Transfer + '_>> {
            Some(Box::new(Zone { ..self.zone }))
        }
    }

    fn request(name: &str, qtype: RecordType, serial: Option<u32>) -> Vec<u8> {
        let mut msg = Message::new(0x1234, MessageType::Query, OpCode::Query);
        msg.add_query(WireQuery::query(hname(name), qtype));
        if let Some(serial) = serial {
            let mut soa = Zone { serial, n: 0 }.soa();
            soa.name = hname(name);
            msg.add_authority(soa);
        }
        msg.to_vec().unwrap()
    }

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    /// Every message of the answer to `request` from [`PEER`], parsed, and the log
    /// line; `allow` lists who may transfer.
    fn ask(
        zone: &Zone,
        request: &[u8],
        allow: &[&str],
        transport: Transport,
    ) -> (Vec<Message>, String) {
        let primary = Server {
            allow: Access::only(allow.iter().map(|n| n.parse::<Net>().unwrap()).collect()),
            zone: Zone { ..*zone },
        };
        let request = TransferRequest::read(request).expect("a transfer request");
        let mut sent = Vec::new();
        let answered = answer(&request, &primary, PEER, transport, &mut |m| {
            sent.push(m.to_vec());
            Ok(())
        })
        .unwrap();
        sent.push(answered.response.clone().unwrap());
        let messages = sent
            .iter()
            .map(|m| {
                assert!(m.len() <= MAX_MESSAGE);
                Message::from_vec(m).unwrap()
            })
            .collect();
        (messages, answered.to_string())
    }

    fn answers(messages: &[Message]) -> Vec<hrr::Record> {
        messages.iter().flat_map(|m| m.answers.clone()).collect()
    }

    #[test]
    fn axfr_streams_the_zone_soa_first_and_last_in_several_messages() {
        let zone = Zone { serial: 7, n: 5000 };
        let (messages, log) = ask(
            &zone,
            &request("COM.", RecordType::AXFR, None),
            &["192.0.2.0/24"],
            Transport::Tcp,
        );
        assert!(messages.len() > 3, "{} messages", messages.len());
        let all = answers(&messages);
        assert_eq!(all.len(), 5002);
        assert_eq!(all[0], zone.soa());
        assert_eq!(all[all.len() - 1], zone.soa());
        assert!(all[1..all.len() - 1]
            .iter()
            .all(|r| r.record_type() == RecordType::A));
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m.metadata.id, 0x1234);
            assert!(m.metadata.authoritative);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(
                m.queries.len(),
                usize::from(i == 0),
                "the question, first only"
            );
        }
        assert_eq!(
            log,
            format!(
                "AXFR COM. -> NOERROR aa serial 7, 5002 records in {} messages",
                messages.len()
            )
        );
    }

    #[test]
    fn ixfr_is_the_whole_zone_from_an_older_serial_and_the_soa_when_up_to_date() {
        let zone = Zone { serial: 10, n: 3 };
        let ixfr = |serial, transport| {
            ask(
                &zone,
                &request("com.", RecordType::IXFR, serial),
                &["0.0.0.0/0"],
                transport,
            )
        };
        let (messages, log) = ixfr(Some(9), Transport::Tcp);
        assert_eq!(answers(&messages).len(), 5, "{log}");
        assert!(log.ends_with("the whole zone: serial 10, 5 records in 1 message"));
        let (messages, _) = ixfr(None, Transport::Tcp);
        assert_eq!(answers(&messages).len(), 5);
        for serial in [10, 11] {
            let (messages, log) = ixfr(Some(serial), Transport::Tcp);
            assert_eq!(answers(&messages), [zone.soa()], "{log}");
        }
        // Over UDP: the SOA alone, whatever the client has.
        for serial in [Some(9), Some(10), None] {
            let (messages, log) = ixfr(serial, Transport::Udp);
            assert_eq!(answers(&messages), [zone.soa()], "{log}");
        }
    }

    #[test]
    fn refused_unless_allowed_or_over_udp_and_notauth_for_another_zone() {
        let zone = Zone { serial: 1, n: 3 };
        let rcode = |req: &[u8], allow: &[&str], transport| {
            let (messages, log) = ask(&zone, req, allow, transport);
            assert_eq!(messages.len(), 1);
            assert!(messages[0].answers.is_empty());
            (messages[0].metadata.response_code, log)
        };
        let axfr = request("com.", RecordType::AXFR, None);
        let (code, log) = rcode(&axfr, &[], Transport::Tcp);
        assert_eq!(code, ResponseCode::Refused);
        assert!(log.ends_with("transfer not allowed to 192.0.2.1 (--allow-transfer)"));
        assert_eq!(
            rcode(&axfr, &["192.0.2.2", "10.0.0.0/8"], Transport::Tcp).0,
            ResponseCode::Refused
        );
        assert_eq!(
            rcode(&axfr, &["192.0.2.1"], Transport::Udp).0,
            ResponseCode::Refused
        );
        let ixfr = request("com.", RecordType::IXFR, Some(0));
        assert_eq!(rcode(&ixfr, &[], Transport::Udp).0, ResponseCode::Refused);
        let other = request("org.", RecordType::AXFR, None);
        assert_eq!(
            rcode(&other, &["192.0.2.1"], Transport::Tcp).0,
            ResponseCode::NotAuth
        );
    }

    #[test]
    fn only_transfer_questions_are_transfer_requests() {
        assert!(TransferRequest::read(&request("com.", RecordType::A, None)).is_none());
        assert!(TransferRequest::read(&request("com.", RecordType::SOA, None)).is_none());
        assert!(TransferRequest::read(b"\x12").is_none());
        let mut notify = Message::new(1, MessageType::Query, OpCode::Notify);
        notify.add_query(WireQuery::query(hname("com."), RecordType::AXFR));
        assert!(TransferRequest::read(&notify.to_vec().unwrap()).is_none());
        let read = TransferRequest::read(&request("com.", RecordType::IXFR, Some(5))).unwrap();
        assert_eq!(read.kind, Kind::Ixfr { serial: Some(5) });
    }

    /// A transfer request, mutated: read it, and if it is still one, answer it over
    /// both transports from a zone everyone may have.
    fn check_mutated(base: &[u8], flips: &[(usize, u8)], cut: Option<usize>) {
        let mut bytes = base.to_vec();
        for &(at, value) in flips {
            let len = bytes.len();
            bytes[at % len] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (base.len() + 1));
        }
        let Some(request) = TransferRequest::read(&bytes) else {
            return;
        };
        let primary = Server {
            allow: Access::everyone(),
            zone: Zone { serial: 3, n: 700 },
        };
        for transport in [Transport::Udp, Transport::Tcp] {
            let mut sent = Vec::new();
            let answered = answer(&request, &primary, PEER, transport, &mut |m| {
                sent.push(m.to_vec());
                Ok(())
            })
            .unwrap();
            sent.push(answered.response.unwrap());
            assert!(transport == Transport::Tcp || sent.len() == 1);
            for m in &sent {
                assert!(m.len() <= MAX_MESSAGE);
                let msg = Message::from_vec(m).unwrap();
                assert_eq!(msg.metadata.id, u16::from_be_bytes([bytes[0], bytes[1]]));
                assert_eq!(msg.metadata.message_type, MessageType::Response);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn mutated_transfer_requests_never_panic_and_get_whole_messages(
            ixfr: bool,
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::option::of(proptest::prelude::any::<usize>()),
        ) {
            let base = if ixfr {
                request("com.", RecordType::IXFR, Some(2))
            } else {
                request("com.", RecordType::AXFR, None)
            };
            check_mutated(&base, &flips, cut);
        }
    }

    #[test]
    fn serials_grow_with_time_and_change_only_with_the_data() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(next_serial(None, true, at(1_700_000_000)), 1_700_000_000);
        assert_eq!(next_serial(Some(5), false, at(1_700_000_000)), 5);
        assert_eq!(next_serial(Some(5), true, at(1_700_000_000)), 1_700_000_000);
        // Two changes within a second, or a clock set back: still newer.
        assert_eq!(
            next_serial(Some(1_700_000_000), true, at(1_700_000_000)),
            1_700_000_001
        );
        assert_eq!(
            next_serial(Some(1_700_000_000), true, at(1_600_000_000)),
            1_700_000_001
        );
        assert!(serial_newer(1, u32::MAX), "wraps around");
        assert!(!serial_newer(u32::MAX, 1));
        assert!(!serial_newer(3, 3));
    }

    #[test]
    fn notify_is_sent_again_until_acknowledged() {
        let secondary = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = secondary.local_addr().unwrap();
        let soa = Zone { serial: 42, n: 0 }.soa();
        let listener = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            secondary
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            // The first NOTIFY goes unanswered; every later one is acknowledged.
            while let Ok((n, from)) = secondary.recv_from(&mut buf) {
                if &buf[..n] == b"stop" {
                    break;
                }
                let notify = Message::from_vec(&buf[..n]).unwrap();
                if !got.is_empty() {
                    let mut ack = Message::response(notify.metadata.id, OpCode::Notify);
                    ack.metadata.authoritative = true;
                    ack.add_query(notify.queries[0].clone());
                    secondary.send_to(&ack.to_vec().unwrap(), from).unwrap();
                }
                got.push(notify);
            }
            got
        });
        let tries = notify(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            to,
            &soa,
            6,
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(tries >= 2, "the first went unanswered");
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"stop", to)
            .unwrap();
        let got = listener.join().unwrap();
        assert_eq!(got.len(), tries as usize);
        let (first, second) = (&got[0], &got[1]);
        for m in [first, second] {
            assert_eq!(m.metadata.op_code, OpCode::Notify);
            assert!(m.metadata.authoritative);
            assert_eq!(m.queries[0].query_type(), RecordType::SOA);
            assert_eq!(serial_of(&m.answers[0]), 42);
        }
        assert_ne!(first.metadata.id, second.metadata.id, "a new ID each try");
    }
}
