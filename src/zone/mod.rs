//! Zones: the data every server answers from, and the files it is read from.
//!
//! - [`files`]: dnsd's own address files (legacy `NAME ADDR` and TOML) and the root's
//!   TLD table, read into [`Zone`] and [`RootTable`].
//! - [`master`]: RFC 1035 master files, read with hickory-proto's parser, a record at a
//!   time, into the store.
//! - [`store`]: the record store and its one lookup ([`ZoneData`], several of them an
//!   [`Authority`]): what the root, the TLD servers and every other authoritative
//!   server answer from. Address files and root tables are mapped into it
//!   ([`build`]).

pub mod build;
pub mod files;
pub mod master;
pub mod store;

pub use files::*;
pub use store::{Authority, ZoneBuilder, ZoneData};

use std::net::IpAddr;
use std::path::Path;

use crate::model::name::Name;

/// A zone as a server is given it: one of dnsd's address files, or a master file's
/// records. Both are served from the store ([`ZoneFile::into_data`]).
#[derive(Debug, Clone)]
pub enum ZoneFile {
    Addresses(Zone),
    Master(ZoneData),
}

impl From<Zone> for ZoneFile {
    fn from(zone: Zone) -> ZoneFile {
        ZoneFile::Addresses(zone)
    }
}

impl ZoneFile {
    /// Reads the zone `origin` from `path`: a master file if its extension is `.zone`
    /// (its SOA must then be at `origin`), else an address file (legacy or TOML).
    pub fn load(path: &Path, origin: &Name) -> Result<ZoneFile, FileError> {
        if master::is_master(path) {
            master::load(path, Some(origin)).map(ZoneFile::Master)
        } else {
            Zone::load(path).map(ZoneFile::Addresses)
        }
    }

    /// The records to serve for `origin`; `own` is the server's address, published as
    /// `ns.<origin>` in an address zone (a master file says itself who its servers are).
    pub fn into_data(self, origin: &Name, own: Option<IpAddr>) -> ZoneData {
        self.into_data_with(origin, own, &[])
    }

    /// [`into_data`](Self::into_data), with zones below delegated to servers started
    /// beside this one (`dnsd up`'s second-level zones: an address zone has no NS
    /// records of its own for them; a master file says itself what it delegates).
    pub fn into_data_with(
        self,
        origin: &Name,
        own: Option<IpAddr>,
        delegations: &[build::Delegation],
    ) -> ZoneData {
        match self {
            ZoneFile::Addresses(zone) => build::address_zone(origin, zone, own, delegations),
            ZoneFile::Master(data) => data,
        }
    }

    /// The apex NS names of a master file's zone that lie inside it (the names its
    /// parent gives glue for); none for an address zone.
    pub fn own_servers(&self) -> Vec<Name> {
        match self {
            ZoneFile::Addresses(_) => Vec::new(),
            ZoneFile::Master(data) => data
                .records_of(data.origin().as_str())
                .into_iter()
                .filter_map(|r| match r.data {
                    crate::model::RData::Ns(ns) if ns.is_within(data.origin().as_str()) => Some(ns),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The zone's origin, for a master file.
    pub fn origin(&self) -> Option<&Name> {
        match self {
            ZoneFile::Addresses(_) => None,
            ZoneFile::Master(data) => Some(data.origin()),
        }
    }

    /// How many names (address file) or records (master file), for a reload's summary.
    pub fn summary(&self) -> String {
        match self {
            ZoneFile::Addresses(zone) => format!("{} names", zone.len()),
            ZoneFile::Master(data) => format!("{} records, serial {}", data.len(), data.serial()),
        }
    }
}

/// The zones one authoritative server holds: a TLD server's one zone, or the master
/// files of a server for several (`dnsd auth`).
#[derive(Debug, Clone, Default)]
pub struct ZoneSet(pub Vec<ZoneFile>);

impl From<ZoneFile> for ZoneSet {
    fn from(zone: ZoneFile) -> ZoneSet {
        ZoneSet(vec![zone])
    }
}

impl From<Zone> for ZoneSet {
    fn from(zone: Zone) -> ZoneSet {
        ZoneSet(vec![ZoneFile::Addresses(zone)])
    }
}

impl ZoneSet {
    /// Reads master files, each a zone of its own (its origin is its SOA's owner).
    pub fn load_masters(paths: &[std::path::PathBuf]) -> Result<ZoneSet, FileError> {
        paths
            .iter()
            .map(|path| master::load(path, None).map(ZoneFile::Master))
            .collect::<Result<Vec<_>, _>>()
            .map(ZoneSet)
    }

    /// The zones to serve: an address zone is `origin`'s, with `ns.<origin>` at `own`.
    pub fn into_authority(
        self,
        origin: &Name,
        own: Option<IpAddr>,
        delegations: &[build::Delegation],
    ) -> Authority {
        let mut authority = Authority::default();
        for zone in self.0 {
            authority.insert(zone.into_data_with(origin, own, delegations));
        }
        authority
    }

    /// What a reload loaded.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(ZoneFile::summary)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
