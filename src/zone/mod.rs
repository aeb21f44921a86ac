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
