//! dnsd: a small, complete DNS hierarchy — a client, a caching local server, a root
//! server and TLD servers — with recursive (R) and iterative (I) resolution between
//! them, over a line protocol you can type with `nc` and, on the same ports, standard
//! DNS (RFC 1035) over UDP and TCP.
//!
//! # Layout
//!
//! The two protocols, each a view of one resolution model:
//! - [`model`]: the resolution model both protocols share: a query in, a result
//!   (records with TTLs, a negative answer's SOA, a referral with glue) out;
//!   [`model::name`]: host names, validated and normalised.
//! - [`line`](mod@line): the line protocol — [`line::message`], the meaning of a line (typed
//!   requests, replies and codes), and [`line::frame`], its framing (bytes to bounded
//!   lines, the original's unterminated messages).
//! - [`dns`]: DNS messages (hickory-proto): answering a request message, asking an
//!   upstream, TCP framing.
//!
//! The servers:
//! - [`server`]: the one server loop every role runs: accept, connection cap, timeouts,
//!   shutdown; lines or DNS over TCP, DNS over UDP.
//! - [`roles`]: what each of the three servers adds, for both protocols:
//!   [`roles::local`], [`roles::root`], [`roles::tld`]; each one's validated settings
//!   ([`roles::RoleConfig`], started the same way for all three); and the line
//!   protocol's one request loop.
//! - [`resolve`]: what each server answers, apart from any wire format (zones, the
//!   root's referrals, the recursive and iterative flows); [`resolve::cache`], the local
//!   server's cache: fixed entries, learned ones with their TTLs (negative answers too)
//!   and LRU, shared by both protocols; [`resolve::upstream`], asking another server,
//!   over pooled connections or UDP, with a deadline.
//! - [`runtime`]: running a command: [`runtime::config`] (the flags checked into the
//!   configs the servers and tools take), [`runtime::signals`] (INT and TERM stop, HUP
//!   reloads), [`runtime::hierarchy`] (assembling a hierarchy with
//!   [`runtime::hierarchy::HierarchyBuilder`], as `dnsd up`, the tests and the examples
//!   do) and [`runtime::lab`] (a whole hierarchy described in one TOML file, `dnsd up
//!   --config`).
//!
//! Files and operations:
//! - [`zone`]: the data files, zones and the root table, legacy or TOML.
//! - [`ops`]: keeping servers running and observable: [`ops::querylog`] (the local
//!   server's `ID.log` and `mapping.log`), [`ops::reload`] (SIGHUP: swappable data,
//!   [`ops::reload::Swap`], and each server's [`ops::reload::Reload`]), [`ops::fds`]
//!   (file descriptors: the soft limit raised at start, `--max-connections` checked
//!   against it), [`ops::metrics`] (`--metrics`: counters, gauges and a latency
//!   histogram per server, served over HTTP in the Prometheus text format),
//!   [`ops::diagnostics`] (logging that does not hold up queries).
//!
//! Clients and tools:
//! - [`line::client`]: the client side of the line protocol, written once:
//!   [`line::client::Client`] (which `dnsd client`, `dnsd bench` and the soak use) and
//!   `dnsd client`.
//! - [`tools`]: [`tools::check`] (`dnsd check`: what zone, cache and root-table files
//!   hold, and every problem in them), [`tools::trace`] (`dnsd trace`: a name followed
//!   through the hierarchy hop by hop over DNS), and [`tools::bench`], the load
//!   generator, one file per job: [`tools::bench::load`] (the closed loop),
//!   [`tools::bench::ceiling`] (do-nothing servers to compare with),
//!   [`tools::bench::output`] (the table and the typed JSON), [`tools::bench::report`]
//!   (`BENCHMARKS.md` from the JSON results), [`tools::bench::dnsperf`] (dnsperf's
//!   output).
//! - [`cli`]: the command line's clap structs; [`error`]: the errors a command ends
//!   with ([`error::ConfigError`] for a bad flag or setting) and their exit codes.
//! - [`net`], [`sync`]: `is_timeout` and `resolve_host_port`; taking a lock that a panic
//!   may have poisoned.

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
pub mod zone;

pub use error::{Error, Result};
