//! Resolution, apart from any wire format: what each server does with a
//! [`Query`](crate::model::Query), as typed values in and out ([`crate::model`]). The
//! line protocol and DNS are views in front of the same resolvers; nothing here knows
//! either.
//!
//! - [`local`]: the local server's resolver: its cache, then the hierarchy.
//! - [`iterate`]: mode I: referrals followed down from the deepest delegation known,
//!   each server believed only within its bailiwick.
//! - [`delegations`]: the delegations learned from referrals, with their TTLs.
//! - [`authority`]: every server's own zones (the root's, a TLD's, a second-level
//!   zone's): authoritative answers and referrals from the record store.
//! - [`root`]: the root's: its zone's answer, or (mode R) the TLD server's.
//! - [`cache`]: the local server's cache, with TTLs, negative answers and LRU.
//! - [`upstream`]: asking another server, by whichever protocol was chosen at start.
//! - [`infra`]: what is remembered of each upstream: round-trip times, and a backoff
//!   for the ones that stopped answering.
//! - [`inflight`]: the questions waiting for an upstream: identical ones joined, their
//!   number bounded.
//! - [`clock`]: time, passed in, so that tests move it.
//!
//! The authoritative resolvers (root, TLD) also list their zone whole, at one moment,
//! as [`ZoneRecords`]: what a zone transfer sends ([`crate::dns::xfr`]).

pub mod authority;
pub mod cache;
pub mod clock;
pub mod delegations;
pub mod inflight;
pub mod infra;
pub mod iterate;
pub mod local;
pub mod root;
pub mod upstream;

use std::net::SocketAddr;

use crate::model::name::Name;
use crate::model::{Outcome, RData, Record, Soa};
use upstream::{Unexpected, UpstreamError};

/// An answer, NXDOMAIN or NODATA from `from`; anything else (a referral where an answer
/// was due, SERVFAIL, REFUSED) is that upstream's failure.
fn final_answer(from: SocketAddr, outcome: Outcome) -> Result<Outcome, UpstreamError> {
    match outcome {
        Outcome::Answer(_) | Outcome::NxDomain(_) | Outcome::NoData(_) => Ok(outcome),
        other => Err(unexpected_outcome(from, &other)),
    }
}

fn unexpected_outcome(from: SocketAddr, outcome: &Outcome) -> UpstreamError {
    let what = match outcome {
        Outcome::Answer(_) => Unexpected::Answer,
        Outcome::Referral(r) => Unexpected::Referral(r.zone.clone()),
        Outcome::ServFail => Unexpected::ServFail,
        Outcome::Refused => Unexpected::Refused,
        Outcome::NxDomain(_) | Outcome::NoData(_) => Unexpected::Negative,
    };
    UpstreamError::Unexpected(from, what)
}

/// A zone at one moment, whole: what a zone transfer sends ([`crate::dns::xfr`]), as
/// model records (the roles turn them into DNS records).
pub trait ZoneRecords {
    /// The zone's SOA.
    fn soa_record(&self) -> &Record;
    /// Every record queries can find, the SOA first.
    fn all_records(&self) -> Box<dyn Iterator<Item = Record> + '_>;
}

/// The root's name server, its apex NS and its SOA's MNAME.
pub const ROOT_NS: &str = "ns.root";

/// A zone's SOA record, synthesized: dnsd's zone files hold addresses only. Its
/// minimum, and its own TTL, are the zone's negative TTL (RFC 2308).
pub fn synthesized_soa(zone: &Name, negative_ttl: u32) -> Record {
    let under = |label: &str| {
        if zone.is_root() {
            Name::from_wire(&format!("{label}.root"))
        } else {
            Name::from_wire(&format!("{label}.{zone}"))
        }
    };
    Record::new(
        zone.clone(),
        negative_ttl,
        RData::Soa(Box::new(Soa {
            mname: under("ns"),
            rname: under("hostmaster"),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 604_800,
            minimum: negative_ttl,
        })),
    )
}

/// `soa` (an SOA record, as [`synthesized_soa`] makes) with serial `serial`.
pub fn with_serial(mut soa: Record, serial: u32) -> Record {
    if let RData::Soa(s) = &mut soa.data {
        s.serial = serial;
    }
    soa
}

/// The serial of an SOA record (0 for any other record).
pub fn soa_serial(soa: &Record) -> u32 {
    match &soa.data {
        RData::Soa(s) => s.serial,
        _ => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::model::{Outcome, Resolution};

    /// A resolution's answer records as `NAME DATA`, or its outcome.
    pub fn data(r: &Resolution) -> Vec<String> {
        match &r.outcome {
            Outcome::Answer(records) => records
                .iter()
                .map(|r| format!("{} {:?}", r.name, r.data))
                .collect(),
            other => vec![format!("{other:?}")],
        }
    }
}
