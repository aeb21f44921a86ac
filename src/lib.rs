//! dnsd: a small, complete DNS hierarchy — a client, a caching local server, a root
//! server and TLD servers — with recursive (R) and iterative (I) resolution between
//! them, over a line protocol you can type with `nc` and, on the same ports, standard
//! DNS (RFC 1035) over UDP and TCP.
//!
//! # Layout
//!
//! One core, two views. A question comes in over either protocol, becomes a
//! [`model::Query`] at its edge, is answered by a resolver as a [`model::Resolution`],
//! and goes back out in the protocol it came in; the resolvers know neither protocol.
//!
//! The model and the resolvers:
//! - [`model`]: the resolution model: a query in; records with TTLs, a negative
//!   answer's SOA, a referral with glue out. [`model::name`]: host names.
//! - [`resolve`]: what each server answers: [`resolve::local`] (the cache, then the
//!   hierarchy), [`resolve::authority`] (every authoritative server's zones: root, TLD,
//!   second-level), [`resolve::root`]; [`resolve::iterate`] (mode I:
//!   referrals followed to any depth, within each server's bailiwick),
//!   [`resolve::delegations`] (the delegations learned, with their TTLs),
//!   [`resolve::cache`], [`resolve::upstream`] (asking another server, in a protocol
//!   chosen at start), [`resolve::infra`] (what is remembered of each upstream:
//!   round-trip time, down or up), [`resolve::inflight`] (misses in flight: identical
//!   ones joined, their number bounded) and [`resolve::clock`] (time, passed in).
//! - [`zone`]: zones: the record store and its one lookup ([`zone::store`]), RFC 1035
//!   master files ([`zone::master`]), dnsd's address files and root table
//!   ([`zone::files`]) and how they map into records ([`zone::build`]).
//!
//! The two views, each in its folder:
//! - [`line`](mod@line): the line protocol: [`line::frame`] (bytes to bounded lines),
//!   [`line::message`] (typed requests and replies), [`line::view`] (a request as a
//!   query, a resolution as a reply), [`line::session`] (the one request loop),
//!   [`line::client`] and [`line::pool`] (the client, plain and pooled upstream).
//! - [`dns`]: DNS messages (hickory-proto): [`dns::answer`] (a request message
//!   answered), [`dns::exchange`] (asking another server: the one UDP-then-TCP
//!   exchange), [`dns::tcp`] (TCP framing), [`dns::xfr`] (zone transfers out, NOTIFY,
//!   serials).
//!
//! The servers:
//! - [`server`]: the one server loop every role runs: accept, connection caps (in all and
//!   per client address), timeouts, shutdown; lines or DNS on the TCP port;
//!   [`server::access`] (who may ask), [`server::refuse`] (refusing in the protocol a
//!   client speaks) and [`server::udp`], the UDP loop.
//! - [`roles`]: each role wired: its settings (a [`roles::RoleConfig`], started one way
//!   for all three) and its handler: [`roles::local`], [`roles::root`], [`roles::tld`]
//!   put a resolver behind both views.
//! - [`runtime`]: running a command: [`runtime::config`] (the flags, a lab file or a
//!   zones folder checked into one validated [`runtime::config::Config`]),
//!   [`runtime::signals`], [`runtime::endpoint`] (`--metrics`), [`runtime::hierarchy`] (a whole hierarchy, as `dnsd up`, the
//!   tests and the examples build it) and [`runtime::lab`] (one described in a TOML
//!   file).
//!
//! Operations, in [`ops`]: [`ops::reload`] (SIGHUP), [`ops::metrics`] (`--metrics`),
//! [`ops::querylog`] (`clients/ID.log`, `queries.log`, `mapping.log`), [`ops::appender`]
//! (whole records, reopened for logrotate), [`ops::privileges`] (`--user`),
//! [`ops::diagnostics`] (stderr logging),
//! [`ops::fds`] (descriptor limits).
//!
//! The web view, in [`web`]: the page (`dnsd up --web`) and its JSON and event
//! stream; [`web::events`], the few hooks through which the servers tell it what they
//! answer, a no-op while nobody watches.
//!
//! The tools, in [`tools`]: [`tools::bench`](mod@tools::bench) (`dnsd bench`),
//! [`tools::trace`] (`dnsd trace`), [`tools::check`] (`dnsd check`).
//!
//! And [`cli`] (the command line), [`error`] (what ends a command, and its exit code),
//! [`net`] and [`sync`] (small helpers for sockets and locks).

pub mod cli;
pub mod dns;
pub mod error;
pub mod line;
pub mod model;
pub mod net;
pub mod ops;
pub mod resolve;
pub mod roles;
pub mod runtime;
pub mod server;
pub mod sync;
pub mod tools;
pub mod web;
pub mod zone;

pub use error::{Error, Result};
