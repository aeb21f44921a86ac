//! The line protocol as a view of the resolution model: a request becomes a [`Query`]
//! at the edge, a [`Resolution`] becomes a reply line, and an upstream's reply line
//! becomes a resolution again. Nothing past this module knows that a question came as a
//! line.
//!
//! The codes are a view of an outcome: `0X00`/`0X01` from an answer (cached or not),
//! `0XFF` from NXDOMAIN (or NODATA, or REFUSED), `0X02` from a referral, `0XFE` from
//! SERVFAIL.

use std::cell::RefCell;
use std::net::SocketAddr;

use super::message::{Code, LineReferral, Mode, Reply, Request};
use crate::model::name::Name;
use crate::model::{Outcome, QType, Query, RData, Record, Recursion, Referral, Resolution};
use crate::model::{Tag, DEFAULT_TTL};
use crate::resolve::synthesized_soa;
use crate::resolve::upstream::{Unexpected, UpstreamError};
use crate::zone::DEFAULT_NEGATIVE_TTL;

/// Why a line upstream's reply is not a reply: the line as received, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("answered nonsense ({why}): {line:?}")]
pub struct Nonsense {
    pub why: String,
    pub line: String,
}

impl Request {
    /// The request as the resolution model asks it: the name's address, recursively
    /// (mode R) or iteratively (mode I), labelled with the request's tag.
    pub fn query(&self) -> Query {
        Query {
            name: self.name.clone(),
            qtype: QType::Address,
            recursion: match self.mode {
                Mode::Recursive => Recursion::Recursive,
                Mode::Iterative => Recursion::Iterative,
            },
            tag: Some(Tag::from(self.tag.as_str())),
        }
    }
}

/// The line protocol's view of `resolution`, as server `server` replies it.
pub fn reply(resolution: &Resolution, server: &str) -> Reply {
    match &resolution.outcome {
        Outcome::Answer(_) => match resolution.first_ip() {
            Some(ip) if resolution.cached => Reply::address(Code::Cached, server, ip),
            Some(ip) => Reply::address(Code::Resolved, server, ip),
            None => Reply::not_found(server),
        },
        Outcome::NoData(_) | Outcome::NxDomain(_) | Outcome::Refused => Reply::not_found(server),
        // One address, the first: a line has room for no more. A referral with none (its
        // servers' addresses to be looked up) cannot be said as a line; no dnsd server
        // gives one.
        Outcome::Referral(r) => match r.addr() {
            Some(addr) => Reply::referral(
                server,
                &LineReferral {
                    tld: r.zone.to_string(),
                    addr,
                },
            ),
            None => Reply::failure(server),
        },
        Outcome::ServFail => Reply::failure(server),
    }
}

/// An upstream's reply line (from `from`, to `query`) as the resolution model sees it.
/// The line protocol carries no TTL and no SOA: an address gets [`DEFAULT_TTL`] (what a
/// legacy zone file gives every record, so what the TLD server had), and a negative
/// answer gets the TLD's synthesized SOA.
pub fn resolution(
    from: SocketAddr,
    query: &Query,
    line: &[u8],
) -> Result<Resolution, UpstreamError> {
    let text = || String::from_utf8_lossy(line).into_owned();
    let nonsense =
        |why: String| UpstreamError::Unreadable(from, Box::new(Nonsense { why, line: text() }));
    let reply = Reply::parse(line).map_err(|e| nonsense(e.to_string()))?;
    let unexpected = || UpstreamError::Unexpected(from, Unexpected::Reply(text()));
    let outcome = match reply.code {
        Code::Resolved => {
            let data = RData::address(reply.ip().ok_or_else(unexpected)?);
            if query.qtype.matches(&data) {
                Outcome::Answer(vec![Record::new(query.name.clone(), DEFAULT_TTL, data)])
            } else {
                // A DNS question for A asked as a line, and the first address is IPv6
                // (or the other way round): the name has no address of the type asked
                // that the line protocol can tell.
                Outcome::NoData(negative_soa(query.name.tld()))
            }
        }
        Code::NotFound => Outcome::NxDomain(negative_soa(query.name.tld())),
        Code::Referral => {
            let referral: LineReferral = reply
                .text
                .parse()
                .map_err(|e: super::message::ProtocolError| nonsense(e.to_string()))?;
            Outcome::Referral(Referral::new(
                Name::from_wire(&referral.tld),
                referral.addr,
                DEFAULT_TTL,
            ))
        }
        Code::Failure => Outcome::ServFail,
        Code::Cached | Code::Invalid => return Err(unexpected()),
    };
    Ok(Resolution::new(outcome))
}

/// The SOA that a line protocol's `0XFF` stands for (the TLD's, synthesized), made once
/// per TLD and thread and then cloned: its names are shared, so a miss's negative answer
/// allocates nothing for it.
fn negative_soa(tld: &str) -> Record {
    thread_local! {
        static LAST: RefCell<Option<Record>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some(soa) if soa.name.as_str() == tld => soa.clone(),
            _ => {
                let soa = synthesized_soa(&Name::from_wire(tld), DEFAULT_NEGATIVE_TTL);
                *last = Some(soa.clone());
                soa
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Name {
        Name::from_wire(s)
    }

    #[test]
    fn line_view_of_each_outcome() {
        let ip: Ipv4Addr = "1.2.3.4".parse().unwrap();
        let answer = Outcome::Answer(vec![
            Record::new(name("google.com"), 60, RData::Cname(name("www.google.com"))),
            Record::new(name("www.google.com"), 60, RData::A(ip)),
        ]);
        assert_eq!(
            reply(&Resolution::new(answer.clone()), "root").to_string(),
            "0X01, root, 1.2.3.4"
        );
        assert_eq!(
            reply(&Resolution::cached(answer), "l").to_string(),
            "0X00, l, 1.2.3.4"
        );
        let referral = Referral::new(name("com"), "127.0.0.1:5678".parse().unwrap(), 60);
        assert_eq!(referral.ns_name().as_str(), "ns.com");
        assert_eq!(
            reply(&Resolution::new(Outcome::Referral(referral)), "root").to_string(),
            "0X02, root, com 127.0.0.1:5678"
        );
        assert_eq!(
            reply(&Resolution::new(Outcome::ServFail), "root").to_string(),
            "0XFE, root, Server failure"
        );
        assert_eq!(
            reply(&Resolution::new(Outcome::Refused), "com").to_string(),
            "0XFF, com, Host not found"
        );
    }

    #[test]
    fn an_upstream_line_as_a_resolution() {
        let from = "127.0.0.1:5353".parse().unwrap();
        let ask = |qtype, line: &str| {
            let query = Query::new(name("www.x.com"), qtype, Recursion::Iterative);
            resolution(from, &query, line.as_bytes())
        };
        let answer = ask(QType::Address, "0X01, root, ::1").unwrap();
        assert_eq!(answer.first_ip(), Some("::1".parse().unwrap()));
        // A line carries no TTL: the address gets a legacy zone file's.
        assert!(matches!(&answer.outcome, Outcome::Answer(r) if r[0].ttl == DEFAULT_TTL));
        // Asked for A as a line, answered with the first address, which is IPv6.
        let nodata = ask(QType::A, "0X01, root, ::1").unwrap();
        assert!(matches!(nodata.outcome, Outcome::NoData(soa) if soa.name.as_str() == "com"));
        assert!(matches!(
            ask(QType::Address, "0XFF, com, Host not found")
                .unwrap()
                .outcome,
            Outcome::NxDomain(_)
        ));
        let referral = ask(QType::Address, "0X02, root, com 127.0.0.1:5678").unwrap();
        assert!(matches!(referral.outcome, Outcome::Referral(r) if r.zone.as_str() == "com"));
        assert!(matches!(
            ask(QType::Address, "0X00, root, 1.2.3.4"),
            Err(UpstreamError::Unexpected(_, Unexpected::Reply(_)))
        ));
        assert!(matches!(
            ask(QType::Address, "nonsense"),
            Err(UpstreamError::Unreadable(..))
        ));
    }
}
