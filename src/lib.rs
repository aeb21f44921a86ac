//! dnsd: a small, complete DNS hierarchy — a client, a caching local server, a root
//! server and TLD servers — with recursive (R) and iterative (I) resolution between
//! them, over a line protocol you can type with `nc`.
//!
//! # Layout
//!
//! - [`name`]: host names, validated and normalised.
//! - [`protocol`]: the meaning of a line: typed requests, replies and codes.
//! - [`connection`]: framing: bytes to bounded lines (and the original's unterminated
//!   messages), lines back to bytes.
//! - [`server`]: the one server loop every role runs: accept, connection cap, timeouts,
//!   shutdown.
//! - [`roles`]: the handlers of the three servers: [`roles::local`], [`roles::root`],
//!   [`roles::tld`].
//! - [`model`]: the resolution model both protocols share: a query in, a result
//!   (records with TTLs, a negative answer's SOA, a referral with glue) out.
//! - [`resolver`]: what the local server and the root do with a request, apart from any
//!   wire format (the recursive and iterative flows).
//! - [`cache`]: the local server's cache: fixed entries, learned ones with TTL and LRU.
//! - [`zone`]: the data files, zones and the root table, legacy or TOML.
//! - [`reload`]: SIGHUP: swappable data ([`reload::Swap`]) and each server's
//!   [`reload::Reload`].
//! - [`lab`]: a whole hierarchy described in one TOML file (`dnsd up --config`).
//! - [`fds`]: file descriptors: the soft limit raised at start, `--max-connections`
//!   checked against it.
//! - [`upstream`]: asking another server, over pooled connections with a deadline.
//! - [`dns`]: RFC 1035 DNS messages over UDP and TCP: answering a request message,
//!   asking an upstream, TCP framing and the UDP server loop.
//! - [`net`]: the two helpers every TCP module needs: `is_timeout`, `resolve_host_port`.
//! - [`logs`]: the local server's `ID.log` and `mapping.log`.
//! - [`metrics`]: `--metrics`: counters, gauges and a latency histogram per server,
//!   served over HTTP in the Prometheus text format.
//! - [`client`]: the client side of the protocol, written once: [`client::Client`]
//!   (which `dnsd client`, `dnsd bench` and the soak use) and `dnsd client`.
//! - [`up`]: the whole hierarchy in one process.
//! - [`check`]: `dnsd check`: what zone, cache and root-table files hold, and every
//!   problem in them.
//! - [`trace`]: `dnsd trace`: a name followed through the hierarchy hop by hop over DNS.
//! - [`bench`](mod@bench): the load generator, one file per job: [`bench::load`] (the
//!   closed loop), [`bench::ceiling`] (do-nothing servers to compare with),
//!   [`bench::output`] (the table and the typed JSON), [`bench::report`]
//!   (`BENCHMARKS.md` from the JSON results).
//! - [`cli`], [`logging`], [`error`]: the command line (and its signals), diagnostics,
//!   exit codes.
//! - [`sync`]: taking a lock that a panic may have poisoned.

pub mod bench;
pub mod cache;
pub mod check;
pub mod cli;
pub mod client;
pub mod connection;
pub mod dns;
pub mod error;
pub mod fds;
pub mod lab;
pub mod logging;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod name;
pub mod net;
pub mod protocol;
pub mod reload;
pub mod resolver;
pub mod roles;
pub mod server;
pub mod sync;
pub mod trace;
pub mod up;
pub mod upstream;
pub mod zone;

pub use error::{Error, Result};
