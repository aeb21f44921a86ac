//! Answering one DNS request message: the DNS front end of every server.
//!
//! [`answer`] reads the header first and decides before any lookup (hickory-dns's
//! `handle_request` order): a response (QR=1) or a message too short for a header is
//! dropped; a bad opcode is NOTIMP, a wrong question count or an unparsable body FORMERR
//! with the header's ID; an EDNS version above 0 is BADVERS; a class other than IN is
//! REFUSED. Only then does the role's [`DnsService::resolve`] see a [`Query`], and its
//! [`Resolution`] becomes the answer, authority and additional sections. Every request
//! that has a readable header gets a response, whatever its flags, name or type.
//!
//! The front end knows nothing of zones, caches or upstreams, and the roles know nothing
//! of messages: a role is three answers ([`DnsService`]).
//!
//! [`answer_now`] is the same work in two phases, for a server that must not wait on
//! an upstream where it receives (UDP): the request is read and checked, and answered
//! at once if the role can ([`DnsService::resolve_now`]: a cache hit, a referral);
//! otherwise it is kept, read, as a [`Deferred`], which the role resolves
//! ([`DnsService::resolve_later`]: joined to the same question in flight, or bounded)
//! and [`Deferred::finish`] turns into the response.

use std::fmt;

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query as WireQuery, ResponseCode,
};
use hickory_proto::rr::{self as hrr, rdata as hrd, DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{model_name, rcode_name, wire_name, wire_record, CLASSIC_UDP_PAYLOAD};
use crate::model::name::Name;
use crate::model::{ChainEnd, Outcome, QType, Query, Record, Recursion, Referral, Resolution};
use crate::resolve::inflight::Then;

/// Which transport a request came over: it decides the size limit of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Limited to what the client accepts (512 bytes, or its EDNS payload size).
    Udp,
    /// Up to 65535 bytes, the most TCP framing carries.
    Tcp,
}

/// The DNS front end's settings, shared by every role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// The EDNS UDP payload size we advertise, and the most we send over UDP to a client
    /// that advertises more. Values below 512 count as 512 (RFC 6891).
    pub edns_payload: u16,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            edns_payload: super::DEFAULT_EDNS_PAYLOAD,
        }
    }
}

/// What a server role contributes to answering a DNS request.
pub trait DnsService {
    /// The recursion a request with the RD bit `rd` asks of this server (the root:
    /// RD → [`Recursion::Recursive`], else [`Recursion::Iterative`]; the local server:
    /// RD → its configured mode, else [`Recursion::CacheOnly`]; a TLD server ignores it).
    fn recursion(&self, rd: bool) -> Recursion;
    /// The RA bit of a response to a request whose RD bit is `rd`. A resolver (the
    /// local server) sets it always; the root, which also answers authoritatively, only
    /// to requests that ask for recursion (to an RD=0 probe it would look like an open
    /// recursor: Zonemaster NAMESERVER01); a TLD server never.
    fn recursion_available(&self, rd: bool) -> bool;
    /// Resolves one query: the same call the line protocol makes.
    fn resolve(&self, query: &Query) -> Resolution;
    /// The answer to `query` if it can be had without waiting for another server (a
    /// cache hit, a referral, an authoritative answer); `None` when it cannot, and
    /// [`resolve_later`](Self::resolve_later) is to be asked. By default, every answer
    /// is had at once.
    fn resolve_now(&self, query: &Query) -> Option<Resolution> {
        Some(self.resolve(query))
    }
    /// Resolves a query that [`resolve_now`](Self::resolve_now) could not answer:
    /// `then` gets the answer exactly once: here once resolved (the call may take up to
    /// the upstream timeout, and at most [`held`](Self::held) calls do at once); or at
    /// once (SERVFAIL: too many wait already); or later, from another thread, when the
    /// same question is already being resolved there or waits its turn (the call
    /// returns at once). By default, here and now.
    fn resolve_later(&self, query: Query, then: Then) {
        then(self.resolve(&query))
    }
    /// The most calls to [`resolve_later`](Self::resolve_later) that may hold their
    /// thread at once; by default none.
    fn held(&self) -> usize {
        0
    }
    /// The zone this server transfers out, and to whom ([`super::xfr`]); by default
    /// none, and AXFR and IXFR are REFUSED.
    fn primary(&self) -> Option<&dyn super::xfr::Primary> {
        None
    }
}

/// Why a request got no response at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Fewer bytes than a DNS header: there is not even an ID to answer with.
    ShortHeader {
        /// The request's length in bytes.
        len: usize,
    },
    /// The QR bit is set: the message is a response, and answering responses is how
    /// reflection loops start.
    Response,
}

/// The question of a request, as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub qtype: QType,
    /// The name as the client wrote it: its case kept, with the trailing dot.
    pub name: String,
    /// The class, when it is not IN.
    pub class: Option<u16>,
}

/// One request's outcome: the response to send, and what the caller needs to write one
/// log line and keep its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    /// The response message, `None` when the request is dropped.
    pub response: Option<Vec<u8>>,
    /// Why there is no response, when there is none.
    pub dropped: Option<Dropped>,
    /// The request's ID, if it had a header.
    pub id: Option<u16>,
    /// The request's question, if it could be read.
    pub question: Option<Question>,
    /// The request's RD bit.
    pub rd: bool,
    /// The response code (extended, so BADVERS is 16); 0 when dropped.
    pub rcode: u16,
    /// The response's AA bit.
    pub aa: bool,
    /// The response's RA bit.
    pub ra: bool,
    /// The response was truncated to fit the client's UDP limit (TC set).
    pub tc: bool,
    /// What the role made of the query, when it was asked.
    pub resolution: Option<Resolution>,
    /// A few words on the result: `1 answer`, `referral to com 127.0.0.1:5301`, or why
    /// a request was refused or malformed (`2 questions`, `class CH`).
    pub detail: String,
}

impl Answered {
    fn dropped(why: Dropped, id: Option<u16>) -> Answered {
        Answered {
            response: None,
            dropped: Some(why),
            id,
            question: None,
            rd: false,
            rcode: 0,
            aa: false,
            ra: false,
            tc: false,
            resolution: None,
            detail: String::new(),
        }
    }

    /// Whether the request went unanswered.
    pub fn is_dropped(&self) -> bool {
        self.response.is_none()
    }

    /// The response code's name (`NOERROR`, `NXDOMAIN`, ...).
    pub fn rcode_name(&self) -> std::borrow::Cow<'static, str> {
        rcode_name(self.rcode)
    }
}

/// Answers one request message received over `transport`.
///
/// Never panics and never stays silent on a request with a readable header that is not
/// itself a response; the response always parses, and over UDP it is never larger than
/// the client allows (512 bytes, or the EDNS payload size both sides accept).
pub fn answer(
    request: &[u8],
    transport: Transport,
    settings: &DnsSettings,
    role: &impl DnsService,
) -> Answered {
    match read(request, transport, settings, role) {
        Read::Done(answered) => answered,
        Read::Asks(asked) => {
            let resolution = role.resolve(&asked.query);
            asked.finish(resolution)
        }
    }
}

/// [`answer`], in two phases: the answer if it can be had at once (an error, or what
/// [`DnsService::resolve_now`] answers), else the request, read, to be finished with
/// its resolution once the role has it.
pub fn answer_now(
    request: &[u8],
    transport: Transport,
    settings: &DnsSettings,
    role: &impl DnsService,
) -> Now {
    match read(request, transport, settings, role) {
        Read::Done(answered) => Now::Answered(answered),
        Read::Asks(asked) => match role.resolve_now(&asked.query) {
            Some(resolution) => Now::Answered(asked.finish(resolution)),
            None => Now::Deferred(asked),
        },
    }
}

/// What [`answer_now`] could do at once.
#[derive(Debug)]
pub enum Now {
    /// The request is answered (or dropped).
    Answered(Answered),
    /// Its query waits for another server.
    Deferred(Deferred),
}

/// A request read and checked, whose query waits to be resolved: everything the
/// response needs from the request (its header, question as asked, EDNS) is kept.
#[derive(Debug)]
pub struct Deferred {
    reply: Reply,
    question: WireQuery,
    edns: Option<Edns>,
    query: Query,
}

impl Deferred {
    /// The query that the role resolves.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The response to the request, with `resolution` as the answer.
    pub fn finish(self, resolution: Resolution) -> Answered {
        self.reply
            .resolved(&self.question, self.edns.as_ref(), &self.query, resolution)
    }
}

/// A request read: answered already (an error), or a query for the role.
enum Read {
    Done(Answered),
    Asks(Deferred),
}

/// Reads the header first and decides before any lookup (see the module's doc); a
/// request that passes every check is a query for the role.
fn read(
    request: &[u8],
    transport: Transport,
    settings: &DnsSettings,
    role: &impl DnsService,
) -> Read {
    let header = match Header::read(&mut BinDecoder::new(request)) {
        Ok(header) => header,
        Err(_) => {
            return Read::Done(Answered::dropped(
                Dropped::ShortHeader { len: request.len() },
                None,
            ))
        }
    };
    let meta = header.metadata;
    if meta.message_type == MessageType::Response {
        return Read::Done(Answered::dropped(Dropped::Response, Some(meta.id)));
    }
    let reply = Reply {
        meta,
        transport,
        settings: *settings,
        ra: role.recursion_available(meta.recursion_desired),
    };

    // A wrong count is FORMERR from the header alone: hickory reserves room for every
    // question the header announces before reading the first one.
    let parsed = match header.counts.queries {
        1 => parse(request),
        n => Err(format!("{n} questions")),
    };
    if meta.op_code != OpCode::Query {
        let detail = format!("opcode {}", u8::from(meta.op_code));
        return Read::Done(match &parsed {
            Ok(msg) => reply.error(
                msg.queries.first(),
                msg.edns.as_ref(),
                ResponseCode::NotImp,
                detail,
            ),
            Err(_) => reply.error(None, None, ResponseCode::NotImp, detail),
        });
    }
    let mut msg = match parsed {
        Ok(msg) => msg,
        Err(why) => return Read::Done(reply.error(None, None, ResponseCode::FormErr, why)),
    };
    let edns = msg.edns.take();
    let Some(question) = msg.queries.pop() else {
        return Read::Done(reply.error(None, None, ResponseCode::FormErr, "no question".into()));
    };
    let done =
        |rcode, detail| Read::Done(reply.error(Some(&question), edns.as_ref(), rcode, detail));
    if let Some(version) = edns.as_ref().map(Edns::version).filter(|&v| v > 0) {
        return done(ResponseCode::BADVERS, format!("EDNS version {version}"));
    }
    if question.query_class() != DNSClass::IN {
        let detail = format!("class {}", class_text(question.query_class()));
        return done(ResponseCode::Refused, detail);
    }
    let qtype = QType::from_code(u16::from(question.query_type()));
    match question.query_type() {
        // Meta types that only exist inside a message, never as a question.
        RecordType::OPT | RecordType::TSIG => {
            return done(
                ResponseCode::FormErr,
                format!("type {qtype} cannot be asked"),
            );
        }
        RecordType::AXFR | RecordType::IXFR => {
            return done(
                ResponseCode::Refused,
                "zone transfers are not offered".to_string(),
            );
        }
        _ => {}
    }
    let query = Query::new(
        model_name(question.name()),
        qtype,
        role.recursion(meta.recursion_desired),
    );
    Read::Asks(Deferred {
        reply,
        question,
        edns,
        query,
    })
}

/// Reads the whole message, refusing bytes after it (hickory accepts them).
fn parse(request: &[u8]) -> Result<Message, String> {
    let mut decoder = BinDecoder::new(request);
    let msg = Message::read(&mut decoder).map_err(|e| format!("unparsable: {e}"))?;
    match decoder.len() {
        0 => Ok(msg),
        n => Err(format!("{n} bytes after the message")),
    }
}

fn class_text(class: DNSClass) -> String {
    match class {
        DNSClass::CH => "CH".into(),
        DNSClass::HS => "HS".into(),
        DNSClass::ANY => "ANY".into(),
        DNSClass::NONE => "NONE".into(),
        other => format!("CLASS{}", u16::from(other)),
    }
}

/// What every response to one request shares.
#[derive(Debug)]
struct Reply {
    meta: Metadata,
    transport: Transport,
    settings: DnsSettings,
    ra: bool,
}

impl Reply {
    /// Our payload size, at least 512.
    fn our_payload(&self) -> u16 {
        self.settings.edns_payload.max(CLASSIC_UDP_PAYLOAD)
    }

    /// The OPT record of the response: present when the request had one (RFC 6891
    /// 6.1.1), version 0, our payload size, the DO bit copied (RFC 3225); the request's
    /// options and other flags are ignored.
    fn edns(&self, request: Option<&Edns>) -> Option<Edns> {
        request.map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(self.our_payload());
            edns.set_version(0);
            edns.set_dnssec_ok(req.flags().dnssec_ok);
            edns
        })
    }

    /// The most a response may take: over UDP, max(512, min(client's payload, ours));
    /// over TCP, what framing carries.
    fn limit(&self, request: Option<&Edns>) -> usize {
        match self.transport {
            Transport::Tcp => super::tcp::MAX_MESSAGE,
            Transport::Udp => {
                let client = request.map_or(CLASSIC_UDP_PAYLOAD, Edns::max_payload);
                usize::from(client.min(self.our_payload()).max(CLASSIC_UDP_PAYLOAD))
            }
        }
    }

    fn message(&self, question: Option<&WireQuery>, edns: Option<&Edns>) -> Message {
        let mut msg = Message::response(self.meta.id, self.meta.op_code);
        msg.metadata = Metadata::response_from_request(&self.meta);
        if self.meta.op_code == OpCode::Query {
            msg.metadata.recursion_available = self.ra;
        } else {
            // An opcode we do not implement echoes the ID and opcode only: RD, CD and RA
            // would describe a query that was never made (genreport's `opcode` tests).
            msg.metadata.recursion_desired = false;
            msg.metadata.checking_disabled = false;
        }
        if let Some(q) = question {
            msg.add_query(q.clone());
        }
        if let Some(edns) = self.edns(edns) {
            msg.set_edns(edns);
        }
        msg
    }

    fn error(
        &self,
        question: Option<&WireQuery>,
        edns: Option<&Edns>,
        rcode: ResponseCode,
        detail: String,
    ) -> Answered {
        let mut msg = self.message(question, edns);
        msg.metadata.response_code = rcode;
        self.finish(msg, question, edns, None, detail)
    }

    fn resolved(
        &self,
        question: &WireQuery,
        edns: Option<&Edns>,
        query: &Query,
        resolution: Resolution,
    ) -> Answered {
        let mut msg = self.message(Some(question), edns);
        let detail = match fill(&mut msg, question.name(), &query.name, &resolution) {
            Ok(detail) => detail,
            Err(e) => {
                // A record whose name hickory cannot write: the answer cannot be had.
                msg = self.message(Some(question), edns);
                msg.metadata.response_code = ResponseCode::ServFail;
                format!("unencodable answer: {e}")
            }
        };
        self.finish(msg, Some(question), edns, Some(resolution), detail)
    }

    /// Encodes `msg` within the size limit and records what the log needs.
    fn finish(
        &self,
        msg: Message,
        question: Option<&WireQuery>,
        request_edns: Option<&Edns>,
        resolution: Option<Resolution>,
        detail: String,
    ) -> Answered {
        let limit = self.limit(request_edns);
        let (bytes, sent) = encode(msg, limit);
        Answered {
            response: Some(bytes),
            dropped: None,
            id: Some(self.meta.id),
            question: question.map(|q| Question {
                qtype: QType::from_code(u16::from(q.query_type())),
                name: q.name().to_ascii(),
                class: (q.query_class() != DNSClass::IN).then(|| u16::from(q.query_class())),
            }),
            rd: self.meta.recursion_desired,
            rcode: u16::from(sent.response_code),
            aa: sent.authoritative,
            ra: sent.recursion_available,
            tc: sent.truncation,
            resolution,
            detail,
        }
    }
}

/// Encodes `msg` in at most `limit` bytes: whole if it fits, else truncated
/// (`Message::truncate`: the question and OPT kept, every other record dropped, TC
/// set), as RFC 2181 9 prefers to a partial RRset. Returns the bytes and the header
/// actually sent.
fn encode(msg: Message, limit: usize) -> (Vec<u8>, Metadata) {
    if let Ok(bytes) = msg.to_vec() {
        if bytes.len() <= limit {
            return (bytes, msg.metadata);
        }
    }
    // Too large for the limit (or, over TCP, for any message): the question and OPT
    // alone are at most 12 + 259 + 4 + 11 bytes, under any limit.
    let truncated = msg.truncate();
    if let Ok(bytes) = truncated.to_vec() {
        if bytes.len() <= limit {
            return (bytes, truncated.metadata);
        }
    }
    let mut bare = Message::response(msg.metadata.id, msg.metadata.op_code);
    bare.metadata = truncated.metadata;
    let bytes = bare
        .to_vec()
        .unwrap_or_else(|_| header_only(&bare.metadata));
    (bytes, bare.metadata)
}

/// A header with all counts zero, written without the encoder: the last resort of
/// [`encode`], which cannot fail.
fn header_only(meta: &Metadata) -> Vec<u8> {
    let header = Header {
        metadata: *meta,
        counts: Default::default(),
    };
    let mut out = Vec::with_capacity(12);
    let mut encoder = hickory_proto::serialize::binary::BinEncoder::new(&mut out);
    if hickory_proto::serialize::binary::BinEncodable::emit(&header, &mut encoder).is_err() {
        out.clear();
    }
    out
}

/// Puts `resolution` into `msg`'s sections, rcode and AA bit; returns the log detail.
///
/// Records owned by the name asked carry the client's spelling of it (which also lets
/// the encoder point them at the question).
fn fill(
    msg: &mut Message,
    asked: &hrr::Name,
    qname: &Name,
    resolution: &Resolution,
) -> Result<String, hickory_proto::ProtoError> {
    let record = |r: &Record| -> Result<hrr::Record, hickory_proto::ProtoError> {
        let mut out = wire_record(r)?;
        if &r.name == qname {
            out.name = asked.clone();
        }
        Ok(out)
    };
    msg.metadata.authoritative = resolution.authoritative;
    let cached = if resolution.cached { ", cached" } else { "" };
    let detail = match &resolution.outcome {
        Outcome::Answer(records) => {
            let cnames = records
                .iter()
                .filter(|r| matches!(r.data, crate::model::RData::Cname(_)));
            let others = records
                .iter()
                .filter(|r| !matches!(r.data, crate::model::RData::Cname(_)));
            for r in cnames.chain(others) {
                msg.add_answer(record(r)?);
            }
            match &resolution.chain_end {
                Some(ChainEnd::NoData(soa)) => {
                    msg.add_authority(record(soa)?);
                }
                Some(ChainEnd::NxDomain(soa)) => {
                    msg.metadata.response_code = ResponseCode::NXDomain;
                    msg.add_authority(record(soa)?);
                }
                None => {}
            }
            for r in &resolution.additional {
                msg.add_additional(record(r)?);
            }
            let n = records.len();
            format!("{n} answer{}{cached}", if n == 1 { "" } else { "s" })
        }
        Outcome::NoData(soa) => {
            msg.add_authority(record(soa)?);
            format!("no data{cached}")
        }
        Outcome::NxDomain(soa) => {
            msg.metadata.response_code = ResponseCode::NXDomain;
            msg.add_authority(record(soa)?);
            format!("no such name{cached}")
        }
        Outcome::Referral(referral) => {
            msg.metadata.authoritative = false;
            add_referral(msg, referral)?;
            match referral.addr() {
                Some(addr) => format!("referral to {} at {addr}", referral.zone),
                None => format!("referral to {}", referral.zone),
            }
        }
        Outcome::ServFail => {
            msg.metadata.response_code = ResponseCode::ServFail;
            String::new()
        }
        Outcome::Refused => {
            msg.metadata.response_code = ResponseCode::Refused;
            String::new()
        }
    };
    Ok(detail)
}

/// A referral's records (see [`Referral`]): for each server, its NS in authority, and
/// its glue and the SRV carrying its port in additional. AA is left clear (hickory's own
/// server sets it and omits glue; we do neither).
fn add_referral(msg: &mut Message, referral: &Referral) -> Result<(), hickory_proto::ProtoError> {
    let zone = wire_name(&referral.zone)?;
    let ttl = referral.ttl;
    for server in &referral.servers {
        let ns = wire_name(&server.name)?;
        msg.add_authority(hrr::Record::from_rdata(
            zone.clone(),
            ttl,
            hrr::RData::NS(hrd::NS(ns.clone())),
        ));
        for ip in &server.addrs {
            let glue = match ip {
                std::net::IpAddr::V4(ip) => hrr::RData::A(hrd::A(*ip)),
                std::net::IpAddr::V6(ip) => hrr::RData::AAAA(hrd::AAAA(*ip)),
            };
            msg.add_additional(hrr::Record::from_rdata(ns.clone(), ttl, glue));
        }
        // Port 53 goes without saying: no hint for it, as in any other server's referral.
        if !server.addrs.is_empty() && server.port != 53 {
            msg.add_additional(hrr::Record::from_rdata(
                wire_name(&referral.srv_name())?,
                ttl,
                hrr::RData::SRV(hrd::SRV::new(0, 0, server.port, ns)),
            ));
        }
    }
    Ok(())
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            Some(class) => write!(f, "{} CLASS{class} {}", self.qtype, self.name),
            None => write!(f, "{} {}", self.qtype, self.name),
        }
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::ShortHeader { len } => {
                write!(f, "{len}-byte message, shorter than a DNS header")
            }
            Dropped::Response => f.write_str("a response (QR=1), not a query"),
        }
    }
}

/// One log line's worth: `A www.google.com. rd -> NOERROR 1 answer`, or
/// `dropped: a response (QR=1), not a query`.
impl fmt::Display for Answered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.dropped {
            return write!(f, "dropped: {why}");
        }
        match &self.question {
            Some(q) => write!(f, "{q}")?,
            None => f.write_str("(no question)")?,
        }
        if self.rd {
            f.write_str(" rd")?;
        }
        write!(f, " -> {}", self.rcode_name())?;
        for (set, flag) in [(self.aa, "aa"), (self.tc, "tc")] {
            if set {
                write!(f, " {flag}")?;
            }
        }
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::exchange::read_response;
    use crate::model::{RData, Soa};
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Mutex;

    const ID: u16 = 0xBEEF;

    fn name(s: &str) -> Name {
        Name::from_wire(s)
    }

    fn hname(s: &str) -> hrr::Name {
        hrr::Name::from_ascii(s).unwrap()
    }

    fn soa(zone: &str) -> Record {
        Record::new(
            name(zone),
            300,
            RData::Soa(Box::new(Soa {
                mname: name(&format!("ns.{zone}")),
                rname: name(&format!("admin.{zone}")),
                serial: 1,
                refresh: 3600,
                retry: 600,
                expire: 86400,
                minimum: 60,
            })),
        )
    }

    /// A tiny zone behind the [`DnsService`] trait, remembering the last query it was asked.
    struct Zone {
        last: Mutex<Option<Query>>,
    }

    fn zone() -> Zone {
        Zone {
            last: Mutex::new(None),
        }
    }

    impl DnsService for Zone {
        fn recursion(&self, rd: bool) -> Recursion {
            if rd {
                Recursion::Recursive
            } else {
                Recursion::CacheOnly
            }
        }
        fn recursion_available(&self, rd: bool) -> bool {
            rd
        }
        fn resolve(&self, query: &Query) -> Resolution {
            *self.last.lock().unwrap() = Some(query.clone());
            let www = Ipv4Addr::new(142, 250, 1, 1);
            let rec = |n: &str, data| Record::new(name(n), 60, data);
            let auth = Resolution::authoritative;
            match (query.name.as_str(), query.qtype) {
                ("www.google.com", QType::A) => {
                    auth(Outcome::Answer(vec![rec("www.google.com", RData::A(www))]))
                }
                ("google.com", QType::A) => auth(Outcome::Answer(vec![
                    rec("www.google.com", RData::A(www)),
                    rec("google.com", RData::Cname(name("www.google.com"))),
                ])),
                ("www.google.com" | "google.com", _) => auth(Outcome::NoData(soa("com"))),
                ("big.com", _) => Resolution::new(Outcome::Answer(
                    (0..100u8)
                        .map(|i| rec("big.com", RData::A(Ipv4Addr::new(10, 0, 0, i))))
                        .collect(),
                )),
                ("fail.com", _) => Resolution::new(Outcome::ServFail),
                ("refused.com", _) => Resolution::new(Outcome::Refused),
                (n, _) if query.name.is_within("org") && n != "org" => {
                    Resolution::new(Outcome::Referral(Referral::new(
                        name("org"),
                        "127.0.0.1:5301".parse().unwrap(),
                        86400,
                    )))
                }
                _ => auth(Outcome::NxDomain(soa("com"))),
            }
        }
    }

    fn request(qname: &str, qtype: RecordType) -> Message {
        let mut msg = Message::new(ID, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(WireQuery::query(hname(qname), qtype));
        msg
    }

    fn with_edns(mut msg: Message, payload: u16) -> Message {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        msg.set_edns(edns);
        msg
    }

    fn ask_bytes(
        bytes: &[u8],
        transport: Transport,
        settings: &DnsSettings,
    ) -> (Answered, Message) {
        let answered = answer(bytes, transport, settings, &zone());
        let response = answered.response.as_ref().expect("a response");
        let msg = Message::from_vec(response).expect("the response parses");
        assert_eq!(msg.metadata.message_type, MessageType::Response);
        (answered, msg)
    }

    fn ask(msg: &Message, transport: Transport) -> (Answered, Message) {
        ask_bytes(&msg.to_vec().unwrap(), transport, &DnsSettings::default())
    }

    #[test]
    fn echoes_id_and_question_case() {
        let (answered, msg) = ask(&request("WwW.GooGle.CoM.", RecordType::A), Transport::Udp);
        assert_eq!(msg.metadata.id, ID);
        assert_eq!(msg.queries.len(), 1);
        assert!(msg.queries[0].name().eq_case(&hname("WwW.GooGle.CoM.")));
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert!(msg.metadata.authoritative && msg.metadata.recursion_available);
        assert!(msg.metadata.recursion_desired);
        assert_eq!(msg.answers.len(), 1);
        assert_eq!(
            msg.answers[0].data,
            hrr::RData::A(hrd::A(Ipv4Addr::new(142, 250, 1, 1)))
        );
        assert_eq!(
            answered.to_string(),
            "A WwW.GooGle.CoM. rd -> NOERROR aa 1 answer"
        );
    }

    #[test]
    fn cname_comes_first_and_names_are_compressed() {
        let req = request("google.com.", RecordType::A);
        let (_, msg) = ask(&req, Transport::Udp);
        assert_eq!(msg.answers.len(), 2);
        assert_eq!(msg.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(msg.answers[1].record_type(), RecordType::A);
        // Uncompressed, the three names would take 12 + 16 + 16 + 16 bytes; compressed,
        // the CNAME's owner and the A's owner are pointers.
        let bytes = answer(
            &req.to_vec().unwrap(),
            Transport::Udp,
            &DnsSettings::default(),
            &zone(),
        )
        .response
        .unwrap();
        let uncompressed = 12 + (12 + 4) + (12 + 10 + 16) + (16 + 10 + 4);
        assert!(bytes.len() < uncompressed - 20, "{} bytes", bytes.len());
    }

    #[test]
    fn role_sees_lowercase_name_and_rd_mapped() {
        let z = zone();
        let mut req = request("WWW.Google.com.", RecordType::AAAA);
        answer(
            &req.to_vec().unwrap(),
            Transport::Tcp,
            &DnsSettings::default(),
            &z,
        );
        let q = z.last.lock().unwrap().take().unwrap();
        assert_eq!(q.name.as_str(), "www.google.com");
        assert_eq!(q.qtype, QType::Aaaa);
        assert_eq!(q.recursion, Recursion::Recursive);
        req.metadata.recursion_desired = false;
        let answered = answer(
            &req.to_vec().unwrap(),
            Transport::Tcp,
            &DnsSettings::default(),
            &z,
        );
        assert_eq!(
            z.last.lock().unwrap().take().unwrap().recursion,
            Recursion::CacheOnly
        );
        assert!(!answered.rd);
    }

    #[test]
    fn responses_are_dropped() {
        let mut req = request("www.google.com.", RecordType::A);
        req.metadata.message_type = MessageType::Response;
        let answered = answer(
            &req.to_vec().unwrap(),
            Transport::Udp,
            &DnsSettings::default(),
            &zone(),
        );
        assert_eq!(answered.response, None);
        assert_eq!(answered.dropped, Some(Dropped::Response));
        assert_eq!(answered.id, Some(ID));
        assert_eq!(
            answered.to_string(),
            "dropped: a response (QR=1), not a query"
        );
    }

    #[test]
    fn short_header_is_dropped() {
        let bytes = request("www.google.com.", RecordType::A).to_vec().unwrap();
        for len in 0..12 {
            let answered = answer(
                &bytes[..len],
                Transport::Udp,
                &DnsSettings::default(),
                &zone(),
            );
            assert!(answered.is_dropped());
            assert_eq!(answered.dropped, Some(Dropped::ShortHeader { len }));
        }
    }

    #[test]
    fn garbage_after_a_header_is_formerr_with_the_id() {
        let bytes = request("www.google.com.", RecordType::A).to_vec().unwrap();
        let mut garbage = bytes[..12].to_vec();
        garbage.extend_from_slice(&[0xC0, 0xFF, 0x3F, 0x01]);
        let (answered, msg) = ask_bytes(&garbage, Transport::Udp, &DnsSettings::default());
        assert_eq!(msg.metadata.id, ID);
        assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
        assert!(msg.queries.is_empty());
        assert!(answered
            .to_string()
            .starts_with("(no question) rd -> FORMERR unparsable"));

        // hickory reads the message and ignores what follows it; we do not.
        let mut trailing = bytes.clone();
        trailing.push(0);
        let (answered, msg) = ask_bytes(&trailing, Transport::Udp, &DnsSettings::default());
        assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(answered.detail, "1 bytes after the message");
    }

    #[test]
    fn question_count_other_than_one_is_formerr() {
        let mut none = Message::new(ID, MessageType::Query, OpCode::Query);
        none.metadata.recursion_desired = true;
        let (answered, msg) = ask(&none, Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(answered.detail, "0 questions");
        let mut two = request("www.google.com.", RecordType::A);
        two.add_query(WireQuery::query(hname("google.com."), RecordType::A));
        let (answered, msg) = ask(&two, Transport::Udp);
        assert_eq!(msg.metadata.id, ID);
        assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(answered.detail, "2 questions");
        // A header announcing 65535 questions is refused without reading them.
        let mut many = two.to_vec().unwrap();
        many[4] = 0xFF;
        many[5] = 0xFF;
        let (_, msg) = ask_bytes(&many, Transport::Udp, &DnsSettings::default());
        assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn other_opcodes_are_notimp() {
        for op in [
            OpCode::Notify,
            OpCode::Update,
            OpCode::Status,
            OpCode::Unknown(3),
        ] {
            let mut req = request("www.google.com.", RecordType::SOA);
            req.metadata.op_code = op;
            let (answered, msg) = ask(&req, Transport::Udp);
            assert_eq!(msg.metadata.response_code, ResponseCode::NotImp, "{op:?}");
            assert_eq!(msg.metadata.op_code, op);
            assert_eq!(msg.metadata.id, ID);
            assert!(answered.resolution.is_none());
        }
    }

    #[test]
    fn notimp_clears_every_flag_but_echoes_id_and_opcode() {
        // genreport `opcodeflg`: opcode 15 with every header flag set gets NOTIMP with
        // AA, TC, RD, RA, Z, AD and CD all clear, with or without a question.
        let mut with_question = request("com.", RecordType::SOA).to_vec().unwrap();
        let mut header_only = with_question[..12].to_vec();
        header_only[4..12].fill(0);
        for req in [&mut with_question, &mut header_only] {
            req[2] = 0x7F; // opcode 15, AA, TC, RD
            req[3] = 0xF0; // RA, Z, AD, CD
            let (answered, msg) = ask_bytes(req, Transport::Udp, &DnsSettings::default());
            assert_eq!(msg.metadata.response_code, ResponseCode::NotImp);
            assert_eq!(msg.metadata.op_code, OpCode::Unknown(15));
            assert_eq!(msg.metadata.id, ID);
            let response = answered.response.unwrap();
            assert_eq!(response[2] & 0x07, 0, "AA, TC and RD clear");
            assert_eq!(response[3] & 0xF0, 0, "RA, Z, AD and CD clear");
        }
    }

    #[test]
    fn ra_only_answers_a_request_that_asks_for_recursion() {
        // Zonemaster NAMESERVER01 calls a server that sets RA on an RD=0 query an open
        // recursor; the root recurses only when asked.
        let mut req = request("www.google.com.", RecordType::A);
        let (_, msg) = ask(&req, Transport::Udp);
        assert!(msg.metadata.recursion_available);
        req.metadata.recursion_desired = false;
        let (_, msg) = ask(&req, Transport::Udp);
        assert!(!msg.metadata.recursion_available && !msg.metadata.recursion_desired);
    }

    #[test]
    fn class_other_than_in_is_refused() {
        let mut req = Message::new(ID, MessageType::Query, OpCode::Query);
        let mut q = WireQuery::query(hname("version.bind."), RecordType::TXT);
        q.set_query_class(DNSClass::CH);
        req.add_query(q);
        let (answered, msg) = ask(&req, Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
        assert_eq!(msg.queries[0].query_class(), DNSClass::CH);
        assert_eq!(
            answered.to_string(),
            "TXT CLASS3 version.bind. -> REFUSED class CH"
        );
    }

    #[test]
    fn edns_version_above_zero_is_badvers_with_opt() {
        let mut req = with_edns(request("www.google.com.", RecordType::A), 4096);
        if let Some(edns) = req.edns.as_mut() {
            edns.set_version(1);
        }
        let (answered, msg) = ask(&req, Transport::Udp);
        // 16 is both BADVERS and BADSIG; hickory reads it back as the latter.
        assert_eq!(u16::from(msg.metadata.response_code), 16);
        let edns = msg.edns.expect("BADVERS carries an OPT record");
        assert_eq!(edns.version(), 0);
        assert_eq!(edns.max_payload(), 1232);
        assert!(msg.answers.is_empty());
        assert_eq!(answered.rcode, 16);
        assert_eq!(answered.rcode_name(), "BADVERS");
    }

    #[test]
    fn unknown_edns_options_and_flags_are_ignored() {
        let mut req = with_edns(request("www.google.com.", RecordType::A), 1400);
        if let Some(edns) = req.edns.as_mut() {
            edns.options_mut()
                .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
            edns.flags_mut().z = 0x1234;
            edns.set_dnssec_ok(true);
        }
        let (_, msg) = ask(&req, Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert_eq!(msg.answers.len(), 1);
        let edns = msg.edns.expect("OPT answered");
        assert!(edns.option(EdnsCode::Unknown(65001)).is_none());
        assert_eq!(edns.flags().z, 0);
        assert!(edns.flags().dnssec_ok, "DO is copied (RFC 3225)");
    }

    #[test]
    fn no_opt_in_request_means_no_opt_in_answer() {
        let (_, msg) = ask(&request("www.google.com.", RecordType::A), Transport::Udp);
        assert!(msg.edns.is_none());
        let (_, msg) = ask(
            &with_edns(request("www.google.com.", RecordType::A), 512),
            Transport::Udp,
        );
        assert_eq!(msg.edns.map(|e| e.max_payload()), Some(1232));
    }

    /// Asks for `big.com` (100 A records, about 1,650 bytes) and returns the size sent
    /// and the parsed response.
    fn big(client: Option<u16>, ours: u16, transport: Transport) -> (usize, Message) {
        let mut req = request("big.com.", RecordType::A);
        if let Some(payload) = client {
            req = with_edns(req, payload);
        }
        let settings = DnsSettings { edns_payload: ours };
        let answered = answer(&req.to_vec().unwrap(), transport, &settings, &zone());
        let bytes = answered.response.unwrap();
        assert_eq!(
            answered.tc,
            Message::from_vec(&bytes).unwrap().metadata.truncation
        );
        (bytes.len(), Message::from_vec(&bytes).unwrap())
    }

    #[test]
    fn udp_truncates_to_the_clients_limit_and_keeps_opt() {
        // No EDNS: 512, no OPT.
        let (len, msg) = big(None, 4096, Transport::Udp);
        assert!(len <= 512 && msg.metadata.truncation && msg.edns.is_none());
        assert!(msg.answers.is_empty());
        assert_eq!(msg.queries.len(), 1, "the question is kept");
        // The client's 4096, our 1232: 1232.
        let (len, msg) = big(Some(4096), 1232, Transport::Udp);
        assert!(len <= 1232 && msg.metadata.truncation);
        assert_eq!(msg.edns.map(|e| e.max_payload()), Some(1232), "OPT kept");
        // The client's 700, our 4096: 700.
        let (len, msg) = big(Some(700), 4096, Transport::Udp);
        assert!(len <= 700 && msg.metadata.truncation && msg.edns.is_some());
        // Both 4096: it fits.
        let (len, msg) = big(Some(4096), 4096, Transport::Udp);
        assert!(len > 1232 && !msg.metadata.truncation);
        assert_eq!(msg.answers.len(), 100);
        // Ours below 512 counts as 512.
        let (len, msg) = big(Some(4096), 100, Transport::Udp);
        assert!(len <= 512 && msg.metadata.truncation);
        assert_eq!(msg.edns.map(|e| e.max_payload()), Some(512));
    }

    #[test]
    fn tcp_is_not_size_limited() {
        let (len, msg) = big(None, 1232, Transport::Tcp);
        assert!(len > 1232 && !msg.metadata.truncation);
        assert_eq!(msg.answers.len(), 100);
    }

    #[test]
    fn referral_layout() {
        let (answered, msg) = ask(&request("www.example.org.", RecordType::A), Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert!(!msg.metadata.authoritative);
        assert!(msg.answers.is_empty());
        assert_eq!(msg.authorities.len(), 1);
        let ns = &msg.authorities[0];
        assert_eq!(ns.name, hname("org."));
        assert_eq!(ns.data, hrr::RData::NS(hrd::NS(hname("ns.org."))));
        assert_eq!(msg.additionals.len(), 2);
        assert_eq!(msg.additionals[0].name, hname("ns.org."));
        assert_eq!(
            msg.additionals[0].data,
            hrr::RData::A(hrd::A(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(msg.additionals[1].name, hname("_dns._tcp.org."));
        assert_eq!(
            msg.additionals[1].data,
            hrr::RData::SRV(hrd::SRV::new(0, 0, 5301, hname("ns.org.")))
        );
        assert!(msg.all_sections().all(|r| r.ttl == 86400));
        assert_eq!(
            answered.to_string(),
            "A www.example.org. rd -> NOERROR referral to org at 127.0.0.1:5301"
        );
    }

    #[test]
    fn nxdomain_and_nodata_carry_the_soa() {
        let (answered, msg) = ask(&request("nope.com.", RecordType::A), Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
        assert!(msg.answers.is_empty() && msg.metadata.authoritative);
        assert_eq!(msg.authorities.len(), 1);
        assert_eq!(msg.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(msg.authorities[0].name, hname("com."));
        assert_eq!(
            answered.to_string(),
            "A nope.com. rd -> NXDOMAIN aa no such name"
        );

        let (answered, msg) = ask(&request("www.google.com.", RecordType::MX), Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert!(msg.answers.is_empty());
        assert_eq!(msg.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(answered.detail, "no data");
    }

    #[test]
    fn servfail_and_refused() {
        let (_, msg) = ask(&request("fail.com.", RecordType::A), Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
        let (_, msg) = ask(&request("refused.com.", RecordType::A), Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn unknown_qtype_gets_a_normal_answer() {
        let (answered, msg) = ask(
            &request("www.google.com.", RecordType::Unknown(65280)),
            Transport::Udp,
        );
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert_eq!(u16::from(msg.queries[0].query_type()), 65280);
        assert_eq!(
            answered.to_string(),
            "TYPE65280 www.google.com. rd -> NOERROR aa no data"
        );
    }

    #[test]
    fn meta_types_are_refused_or_formerr() {
        let (_, msg) = ask(&request("google.com.", RecordType::AXFR), Transport::Tcp);
        assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
        let (_, msg) = ask(&request("google.com.", RecordType::OPT), Transport::Udp);
        assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn weird_names_still_get_an_rcode() {
        for n in [
            ".",
            "com.",
            "_dns._tcp.com.",
            "1.2.3.4.",
            "a_b.com.",
            "x.org.",
        ] {
            let (answered, msg) = ask(&request(n, RecordType::A), Transport::Udp);
            assert!(!answered.is_dropped(), "{n}");
            assert!(msg.queries[0].name().eq_case(&hname(n)), "{n}");
        }
    }

    #[test]
    fn every_header_flag_combination_is_answered() {
        let bytes = request("www.google.com.", RecordType::A).to_vec().unwrap();
        for high in [0u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07] {
            for low in 0..=255u8 {
                let mut req = bytes.clone();
                req[2] = high; // QR 0, opcode QUERY, AA TC RD
                req[3] = low; // RA Z AD CD RCODE
                let (_, msg) = ask_bytes(&req, Transport::Udp, &DnsSettings::default());
                assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
                assert_eq!(msg.metadata.recursion_desired, high & 1 == 1);
                assert_eq!(msg.metadata.checking_disabled, low & 0x10 != 0);
                assert!(!msg.metadata.truncation && msg.answers.len() == 1);
            }
        }
    }

    #[test]
    fn answer_then_read_response_round_trips() {
        let q = Query {
            name: name("google.com"),
            qtype: QType::A,
            recursion: Recursion::Recursive,
            tag: None,
        };
        let z = zone();
        let expected = z.resolve(&q);
        let bytes = crate::dns::exchange::query_message(ID, &q).unwrap();
        let answered = answer(&bytes, Transport::Udp, &DnsSettings::default(), &z);
        let got = read_response(&answered.response.unwrap(), ID, &q).unwrap();
        // The CNAME is moved first; otherwise the same records.
        let Outcome::Answer(mut records) = expected.outcome else {
            panic!("the zone answers google.com");
        };
        records.reverse();
        assert_eq!(got, Resolution::authoritative(Outcome::Answer(records)));
    }

    #[test]
    fn aaaa_glue_for_an_ipv6_referral() {
        struct V6;
        impl DnsService for V6 {
            fn recursion(&self, _: bool) -> Recursion {
                Recursion::Iterative
            }
            fn recursion_available(&self, _rd: bool) -> bool {
                false
            }
            fn resolve(&self, _: &Query) -> Resolution {
                Resolution::new(Outcome::Referral(Referral::new(
                    Name::from_wire("net"),
                    (Ipv6Addr::LOCALHOST, 5399).into(),
                    5,
                )))
            }
        }
        let req = request("a.net.", RecordType::A).to_vec().unwrap();
        let answered = answer(&req, Transport::Udp, &DnsSettings::default(), &V6);
        let msg = Message::from_vec(&answered.response.unwrap()).unwrap();
        assert!(!msg.metadata.recursion_available);
        assert_eq!(
            msg.additionals[0].data,
            hrr::RData::AAAA(hrd::AAAA(Ipv6Addr::LOCALHOST))
        );
    }

    /// The most a response to `request` may take over UDP with the default settings.
    fn udp_limit(request: &[u8]) -> usize {
        Message::from_vec(request)
            .ok()
            .and_then(|m| m.edns)
            .map_or(512, |e| usize::from(e.max_payload().clamp(512, 1232)))
    }

    fn check_any_request(request: &[u8]) -> Result<(), TestCaseError> {
        for transport in [Transport::Udp, Transport::Tcp] {
            let answered = answer(request, transport, &DnsSettings::default(), &zone());
            let _ = answered.to_string();
            let Some(response) = answered.response else {
                continue;
            };
            let msg = Message::from_vec(&response);
            prop_assert!(msg.is_ok(), "response does not parse: {:?}", msg.err());
            let msg = msg.unwrap();
            prop_assert_eq!(msg.metadata.message_type, MessageType::Response);
            prop_assert_eq!(Some(msg.metadata.id), answered.id);
            if transport == Transport::Udp {
                prop_assert!(response.len() <= udp_limit(request));
            }
        }
        Ok(())
    }

    fn valid_requests() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (n, t) in [
            ("big.com.", RecordType::A),
            ("www.example.org.", RecordType::A),
            ("google.com.", RecordType::A),
            ("nope.com.", RecordType::AAAA),
        ] {
            out.push(request(n, t).to_vec().unwrap());
            out.push(with_edns(request(n, t), 600).to_vec().unwrap());
        }
        out
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_any_request(&bytes)?;
        }

        #[test]
        fn mutated_requests_are_answered_within_limits(
            which in 0usize..8,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in proptest::option::of(any::<usize>()),
            extra in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut bytes = valid_requests().swap_remove(which);
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes.extend_from_slice(&extra);
            check_any_request(&bytes)?;
        }
    }
}
