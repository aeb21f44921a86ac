//! Integration tests: real servers on port 0, in-process or as the built binary.
//! One crate, one module per area, sharing the harness.

mod harness;

// The hierarchy and its interfaces.
mod allow;
mod check;
mod client_cli;
mod compliance;
mod files;
mod hierarchy;
mod iterative;
mod lab;
mod legacy;
mod logs;
mod month;

// Bad input, limits, forgeries, faults, nothing lost, parsers under arbitrary input.
mod bad_input;
mod dns_props;
mod faults;
mod fds;
mod forgery;
mod limits;
mod metrics;
mod misses;
mod nothing_lost;
mod props;
mod reload;
mod trace;
mod warm;

// Across hosts (network namespaces) and the load generator.
mod bench;
mod multihost;

// Outside DNS clients and resolvers (dig, dnspython, Unbound, Knot Resolver, PowerDNS
// Recursor) against the servers, and dnsd local resolving through NSD; the outside
// daemons that need port 53 run in network namespaces of the tests' own.
mod dns;
mod netns;
mod nsd;
mod resolvers;
mod root_zone;
mod unbound;
mod xfr;
mod zones;

// The web view, in headless Chromium.
mod web;
