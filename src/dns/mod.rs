//! RFC 1035 DNS messages over UDP and TCP: the second view of the [`crate::model`].
//!
//! Pure building blocks; the servers wire them in:
//!
//! - [`answer`]: one request message in, one response message (or a reasoned drop) out,
//!   through a server's [`answer::DnsService::resolve`].
//! - [`exchange`]: the client side: a query message for a [`Query`], a response message
//!   back to a [`crate::model::Resolution`], and the one UDP-then-TCP exchange
//!   ([`exchange::exchange`]) the resolvers and `dnsd trace` ask through.
//! - [`tcp`]: the two-byte length prefix framing of DNS over TCP.
//! - [`xfr`]: zone transfers out (AXFR, IXFR) to the addresses allowed, NOTIFY to
//!   secondaries, and the serials of the SOAs dnsd makes.
//!
//! Every byte is encoded and decoded by `hickory-proto`; this module only converts
//! between its types and the model's, and makes the checks it does not (question count,
//! QR bit, trailing bytes). The conversions below are the one place names and records
//! cross between the two.

pub mod answer;
pub mod exchange;
pub mod tcp;
pub mod xfr;

use hickory_proto::rr::{self as hrr, rdata as hrd, DNSClass};

use crate::model::name::Name;
use crate::model::{Mx, Opaque, Query, RData, Record, Soa, Srv};

/// The EDNS(0) UDP payload size dnsd advertises by default: the DNS flag day 2020
/// value, which avoids IP fragmentation on practically every path.
pub const DEFAULT_EDNS_PAYLOAD: u16 = 1232;

/// The UDP payload every DNS peer accepts, and the limit for a request without EDNS.
pub const CLASSIC_UDP_PAYLOAD: u16 = 512;

/// A hickory name (from the wire: trailing dot, the asker's case) as the model's
/// [`Name`]: lowercase, without the trailing dot, the root as `""`.
pub fn model_name(name: &hrr::Name) -> Name {
    Name::from_wire(&name.to_ascii())
}

/// The model's [`Name`] as a fully qualified hickory name.
///
/// The exact inverse of [`model_name`] (less the case), including the labels the
/// wire allows and host names do not (a space, a control byte, a byte above 127):
/// hickory's `to_ascii` writes those as `\ooo` in octal and `\c`, and its `from_ascii`
/// refuses them, so the text is read back here, label by label. Fails only for text
/// that no wire name gives (an empty label, a label over 63 bytes, a name over 255).
pub fn wire_name(name: &Name) -> Result<hrr::Name, hickory_proto::ProtoError> {
    if name.is_root() {
        return Ok(hrr::Name::root());
    }
    let mut labels = Vec::new();
    let mut label = Vec::new();
    let mut bytes = name.as_str().bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'.' => labels.push(hrr::Label::from_raw_bytes(&std::mem::take(&mut label))?),
            b'\\' => {
                let first = bytes.next().ok_or("name ends with a backslash")?;
                if first.is_ascii_digit() {
                    let octal = |d: &u8| (b'0'..=b'7').contains(d);
                    let first = Some(first)
                        .filter(octal)
                        .ok_or("bad \\ooo escape in a name")?;
                    let mut value = u32::from(first - b'0');
                    for _ in 0..2 {
                        let d = bytes.next().filter(octal);
                        let d = d.ok_or("bad \\ooo escape in a name")?;
                        value = value * 8 + u32::from(d - b'0');
                    }
                    label.push(u8::try_from(value).map_err(|_| "\\ooo escape above 255")?);
                } else {
                    label.push(first);
                }
            }
            b => label.push(b),
        }
    }
    labels.push(hrr::Label::from_raw_bytes(&label)?);
    let mut n = hrr::Name::from_labels(labels)?;
    n.set_fqdn(true);
    Ok(n)
}

/// A model record as a hickory record of class IN.
pub fn wire_record(record: &Record) -> Result<hrr::Record, hickory_proto::ProtoError> {
    let data = match &record.data {
        RData::A(ip) => hrr::RData::A(hrd::A(*ip)),
        RData::Aaaa(ip) => hrr::RData::AAAA(hrd::AAAA(*ip)),
        RData::Cname(target) => hrr::RData::CNAME(hrd::CNAME(wire_name(target)?)),
        RData::Ns(target) => hrr::RData::NS(hrd::NS(wire_name(target)?)),
        // The SOA timers are unsigned in the model (RFC 1035 says 32-bit unsigned) and
        // signed in hickory: the bits are carried through unchanged both ways.
        RData::Soa(soa) => hrr::RData::SOA(hrd::SOA::new(
            wire_name(&soa.mname)?,
            wire_name(&soa.rname)?,
            soa.serial,
            soa.refresh as i32,
            soa.retry as i32,
            soa.expire as i32,
            soa.minimum,
        )),
        RData::Srv(srv) => hrr::RData::SRV(hrd::SRV::new(
            srv.priority,
            srv.weight,
            srv.port,
            wire_name(&srv.target)?,
        )),
        RData::Ptr(target) => hrr::RData::PTR(hrd::PTR(wire_name(target)?)),
        RData::Mx(mx) => hrr::RData::MX(hrd::MX::new(mx.preference, wire_name(&mx.exchange)?)),
        RData::Other(other) => (*other.0).clone(),
    };
    let mut out = hrr::Record::from_rdata(wire_name(&record.name)?, record.ttl, data);
    out.dns_class = DNSClass::IN;
    Ok(out)
}

/// A hickory record as a model record, if it is of class IN; `None` for anything else.
/// Types the model does not interpret are kept whole ([`RData::Other`]), except the
/// ones no zone or cache holds (OPT, and an update's empty data).
pub fn model_record(record: &hrr::Record) -> Option<Record> {
    if record.dns_class != DNSClass::IN {
        return None;
    }
    let data = match &record.data {
        hrr::RData::A(a) => RData::A(a.0),
        hrr::RData::AAAA(a) => RData::Aaaa(a.0),
        hrr::RData::CNAME(c) => RData::Cname(model_name(&c.0)),
        hrr::RData::NS(ns) => RData::Ns(model_name(&ns.0)),
        hrr::RData::SOA(soa) => RData::Soa(Box::new(Soa {
            mname: model_name(&soa.mname),
            rname: model_name(&soa.rname),
            serial: soa.serial,
            refresh: soa.refresh as u32,
            retry: soa.retry as u32,
            expire: soa.expire as u32,
            minimum: soa.minimum,
        })),
        hrr::RData::SRV(srv) => RData::Srv(Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: model_name(&srv.target),
        }),
        hrr::RData::PTR(ptr) => RData::Ptr(model_name(&ptr.0)),
        hrr::RData::MX(mx) => RData::Mx(Mx {
            preference: mx.preference,
            exchange: model_name(&mx.exchange),
        }),
        hrr::RData::OPT(_) | hrr::RData::Update0(_) => return None,
        other => RData::Other(Opaque(Box::new(other.clone()))),
    };
    Some(Record::new(model_name(&record.name), record.ttl, data))
}

/// The question of `query` as a hickory query of class IN.
pub fn wire_query(query: &Query) -> Result<hickory_proto::op::Query, hickory_proto::ProtoError> {
    Ok(hickory_proto::op::Query::query(
        wire_name(&query.name)?,
        hrr::RecordType::from(query.qtype.code()),
    ))
}

/// The name of a response code as DNS tools print it (`NOERROR`, `NXDOMAIN`, ...),
/// `RCODE<n>` for codes without one.
pub fn rcode_name(rcode: u16) -> std::borrow::Cow<'static, str> {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        n => return format!("RCODE{n}").into(),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QType;

    #[test]
    fn names_cross_both_ways() {
        let asked = hrr::Name::from_ascii("WWW.Google.COM.").unwrap();
        let ours = model_name(&asked);
        assert_eq!(ours.as_str(), "www.google.com");
        let back = wire_name(&ours).unwrap();
        assert!(back.is_fqdn());
        assert_eq!(back.to_ascii(), "www.google.com.");
        assert_eq!(model_name(&hrr::Name::root()).as_str(), "");
        assert!(wire_name(&Name::from_wire("")).unwrap().is_root());
        // Labels the line protocol refuses still cross.
        let odd = model_name(&hrr::Name::from_ascii("_dns._tcp.123.").unwrap());
        assert_eq!(odd.as_str(), "_dns._tcp.123");
        assert_eq!(wire_name(&odd).unwrap().to_ascii(), "_dns._tcp.123.");
    }

    #[test]
    fn any_wire_name_crosses_back() {
        let raw: [&[u8]; 6] = [
            b"a\nb",
            b"\xff\x80",
            b"A.B",
            b"a b",
            b"back\\slash",
            b"\x00",
        ];
        for bytes in raw {
            let asked = hrr::Name::from_labels(vec![
                hrr::Label::from_raw_bytes(bytes).unwrap(),
                hrr::Label::from_raw_bytes(b"Com").unwrap(),
            ])
            .unwrap();
            let ours = model_name(&asked);
            assert!(ours.as_str().ends_with(".com"), "{ours}");
            let back = wire_name(&ours).unwrap();
            assert_eq!(back, asked, "{bytes:?} as {ours}");
            assert_eq!(model_name(&back), ours);
        }
        assert!(wire_name(&Name::from_wire("a..com")).is_err());
        assert!(wire_name(&Name::from_wire("a\\")).is_err());
        assert!(wire_name(&Name::from_wire("\\400.com")).is_err());
        assert!(wire_name(&Name::from_wire(&"a".repeat(64))).is_err());
    }

    #[test]
    fn records_cross_both_ways() {
        let n = |s: &str| Name::from_wire(s);
        let records = [
            Record::new(n("a.com"), 1, RData::A("1.2.3.4".parse().unwrap())),
            Record::new(n("a.com"), 2, RData::Aaaa("::1".parse().unwrap())),
            Record::new(n("a.com"), 3, RData::Cname(n("b.com"))),
            Record::new(n("com"), 4, RData::Ns(n("ns.com"))),
            Record::new(
                n("com"),
                5,
                RData::Soa(Box::new(Soa {
                    mname: n("ns.com"),
                    rname: n("admin.com"),
                    serial: 7,
                    refresh: u32::MAX,
                    retry: 2,
                    expire: 3,
                    minimum: 60,
                })),
            ),
            Record::new(
                n("_dns._tcp.com"),
                6,
                RData::Srv(Srv {
                    priority: 0,
                    weight: 0,
                    port: 5353,
                    target: n("ns.com"),
                }),
            ),
        ];
        for r in &records {
            assert_eq!(model_record(&wire_record(r).unwrap()).as_ref(), Some(r));
        }
        let q = wire_query(&Query {
            name: n("x.com"),
            qtype: QType::Other(65280),
            recursion: crate::model::Recursion::Iterative,
            tag: None,
        })
        .unwrap();
        assert_eq!(u16::from(q.query_type()), 65280);
        assert_eq!(q.query_class(), DNSClass::IN);
    }
}
