//! dnsd: a small, complete DNS hierarchy — a client, a caching local server, a root
//! server and TLD servers — with recursive (R) and iterative (I) resolution between
//! them, over a line protocol you can type with `nc` and, on the same ports, standard
//! DNS (RFC 1035) over UDP and TCP.
//!
//! # Layout
//!
//! The two protocols, each a view of one resolution model:
//! - [`model`]: the resolution model both protocols share: a query in, a result
//!   (records with TTLs, a negative answer's SOA, a referral with glue) out.
//! - [`protocol`] and [`connection`]: the line protocol — the meaning of a line (typed
//!   requests, replies and codes), and its framing (bytes to bounded lines, the
//!   original's unterminated messages).
//! - [`dns`]: DNS messages (hickory-proto): answering a request message, asking an
//!   upstream, TCP framing and the UDP server loop.
//! - [`name`]: host names, validated and normalised.
//!
//! The servers:
//! - [`server`]: the one server loop every role runs: accept, connection cap, timeouts,
//!   shutdown; lines or DNS over TCP, DNS over UDP.
//! - [`roles`]: what each of the three servers adds, for both protocols:
//!   [`roles::local`], [`roles::root`], [`roles::tld`]; and the line protocol's one
//!   request loop.
//! - [`resolver`]: what each server answers, apart from any wire format (zones, the
//!   root's referrals, the recursive and iterative flows).
//! - [`cache`]: the local server's cache: fixed entries, learned ones with their TTLs
//!   (negative answers too) and LRU, shared by both protocols.
//! - [`upstream`]: asking another server, over pooled connections or UDP, with a
//!   deadline.
//! - [`up`]: assembling a hierarchy ([`up::HierarchyBuilder`]), as `dnsd up`, the tests
//!   and the examples do.
//!
//! Files and operations:
//! - [`zone`]: the data files, zones and the root table, legacy or TOML.
//! - [`logs`]: the local server's `ID.log` and `mapping.log`.
//! - [`reload`]: SIGHUP: swappable data ([`reload::Swap`]) and each server's
//!   [`reload::Reload`].
//! - [`lab`]: a whole hierarchy described in one TOML file (`dnsd up --config`).
//! - [`fds`]: file descriptors: the soft limit raised at start, `--max-connections`
//!   checked against it.
//! - [`metrics`]: `--metrics`: counters, gauges and a latency histogram per server,
//!   served over HTTP in the Prometheus text format.
//! - [`check`]: `dnsd check`: what zone, cache and root-table files hold, and every
//!   problem in them.
//! - [`trace`]: `dnsd trace`: a name followed through the hierarchy hop by hop over DNS.
//!
//! Clients and tools:
//! - [`client`]: the client side of the line protocol, written once: [`client::Client`]
//!   (which `dnsd client`, `dnsd bench` and the soak use) and `dnsd client`.
//! - [`bench`](mod@bench): the load generator, one file per job: [`bench::load`] (the
//!   closed loop), [`bench::ceiling`] (do-nothing servers to compare with),
//!   [`bench::output`] (the table and the typed JSON), [`bench::report`]
//!   (`BENCHMARKS.md` from the JSON results), [`bench::dnsperf`] (dnsperf's output).
//! - [`cli`], [`logging`], [`error`]: the command line (and its signals), diagnostics,
//!   exit codes.
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
