//! Integration tests: real servers on port 0, in-process or as the built binary.
//! One crate, one module per area, sharing the harness.

mod harness;

// The hierarchy and its interfaces.
mod check;
mod client_cli;
mod compliance;
mod files;
mod hierarchy;
mod iterative;
mod lab;
mod legacy;
mod logs;

// Bad input, limits, faults, nothing lost, parsers under arbitrary input.
mod bad_input;
mod dns_props;
mod faults;
mod fds;
mod limits;
mod metrics;
mod nothing_lost;
mod props;
mod reload;
mod trace;
mod warm;

// Across hosts (network namespaces) and the load generator.
mod bench;
mod multihost;

// Outside DNS clients and resolvers (dig, dnspython, Unbound) against the servers.
mod dns;
mod unbound;
