//! Metrics in the Prometheus text format (served over HTTP by [`crate::runtime::endpoint`] with `--metrics HOST:PORT`), as
//! CoreDNS, hickory-dns and the Unbound exporter do: queries by protocol, mode and reply
//! code, latency, the cache, upstream failures, connections, reloads.
//!
//! A process has one [`Metrics`] (one registry, one endpoint), shared by all its servers
//! (`dnsd up` runs several); each server records through its own [`ServerMetrics`], whose
//! series carry `server="NAME"`. Without `--metrics` both handles are disabled: every
//! recording method returns at once, so the servers pay a branch on a `None` per event.
//! Enabled, an event costs an atomic increment (a counter bound to the server when it
//! started), or a family look-up under a read lock for the few series with per-event
//! labels (reply codes, upstream addresses).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

use crate::dns::answer::{Answered, Transport};
use crate::line::message::{Code, Request};
use crate::resolve::upstream::UpstreamError;

/// The only path served; anything else is 404.
pub const PATH: &str = "/metrics";

/// The latency buckets, in seconds: 25 µs doubling up to about 3.3 s (18 buckets), from
/// a cache hit to an upstream that times out.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_025, 2.0, 18))
}

/// Where `--metrics PORT` listens, given a port alone: loopback only.
pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Every metric, as a scrape names it, and what it counts (`--help` lists them too).
pub const CATALOG: &[(&str, &str)] = &[
    (
        "dnsd_queries_total{server,protocol,mode,code}",
        "queries answered, by protocol (line, dns-udp, dns-tcp), mode (R or I for a line, \
         - for a line that is no request; rd or nord for DNS) and reply code (0X00...0XFF \
         for a line, NOERROR, NXDOMAIN, SERVFAIL... for DNS)",
    ),
    (
        "dnsd_query_duration_seconds{server,protocol}",
        "histogram of the time from a request read to its reply ready",
    ),
    (
        "dnsd_cache_hits_total{server}",
        "queries the local server answered from its cache",
    ),
    (
        "dnsd_cache_misses_total{server}",
        "queries the local server's cache could not answer",
    ),
    (
        "dnsd_cache_evictions_total{server}",
        "learned names dropped, least recently used first, to make room (--cache-size)",
    ),
    (
        "dnsd_cache_entries{server}",
        "names the local server has learned (gauge; expired ones count until touched)",
    ),
    (
        "dnsd_upstream_failures_total{server,upstream,kind}",
        "queries that got no usable answer from the upstream HOST:PORT, by kind: timeout, \
         refused (nothing listens there), backoff (not asked: it timed out, and another \
         question already waits on it), error (anything else)",
    ),
    (
        "dnsd_misses_pending{server}",
        "questions waiting for another server's answer (gauge; joined ones included; \
         at most --max-pending)",
    ),
    (
        "dnsd_misses_joined_total{server}",
        "questions that joined an identical one already waiting for an upstream, instead \
         of asking it again",
    ),
    (
        "dnsd_misses_refused_total{server}",
        "questions answered SERVFAIL (0XFE for a line) at once, without asking anyone: \
         --max-pending were already waiting",
    ),
    (
        "dnsd_connections_open{server}",
        "TCP connections being served, line protocol and DNS (gauge)",
    ),
    (
        "dnsd_connections_refused_total{server}",
        "TCP connections refused (`Server busy`, or SERVFAIL over DNS) and closed: \
         --max-connections were open",
    ),
    (
        "dnsd_connections_refused_per_ip_total{server}",
        "TCP connections refused and closed: --max-connections-per-ip were open from the \
         client's address",
    ),
    (
        "dnsd_connections_idle_closed_total{server}",
        "TCP connections closed for being silent longer than --idle-timeout",
    ),
    (
        "dnsd_connections_deadline_closed_total{server}",
        "TCP connections closed because a request (a line, or a DNS message) did not \
         arrive whole within --idle-timeout of its first byte",
    ),
    (
        "dnsd_access_denied_total{server}",
        "TCP connections and UDP queries refused because the client is not in --allow \
         (the local server)",
    ),
    (
        "dnsd_reloads_total{server,result}",
        "reloads of the server's files (SIGHUP), by result: ok, failed",
    ),
    (
        "dnsd_log_write_failures_total{server}",
        "records the local server could not write whole to its logs (a full disk, a \
         log directory it may not write): each is cut back, and its query answered \
         0XFE/SERVFAIL",
    ),
    (
        "dnsd_dns_dropped_total{server}",
        "DNS messages dropped unanswered (shorter than a header, or responses)",
    ),
];

/// Registers `metric` as `name` (as a scrape names it), with its help text.
fn add(registry: &mut Registry, name: &str, metric: impl Metric) {
    // Counters are registered without `_total`: the encoder appends it.
    registry.register(name.trim_end_matches("_total"), help(name), metric);
}

/// The help text of the metric `name` (as a scrape names it), from [`CATALOG`].
fn help(name: &str) -> &'static str {
    CATALOG
        .iter()
        .find(|(n, _)| n.split('{').next() == Some(name))
        .map_or("", |(_, help)| help)
}

/// One process's metrics: the registry and every family in it. Cheap to clone (an
/// `Arc`); [`Metrics::disabled`] (the default) records nothing.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Families>>);

struct Families {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    duration: Family<ProtocolLabels, Histogram>,
    cache_hits: Family<ServerLabel, Counter>,
    cache_misses: Family<ServerLabel, Counter>,
    cache_evictions: Family<ServerLabel, Counter>,
    cache_entries: Family<ServerLabel, Gauge>,
    upstream_failures: Family<UpstreamLabels, Counter>,
    misses_pending: Family<ServerLabel, Gauge>,
    misses_joined: Family<ServerLabel, Counter>,
    misses_refused: Family<ServerLabel, Counter>,
    connections_open: Family<ServerLabel, Gauge>,
    connections_refused: Family<ServerLabel, Counter>,
    connections_refused_per_ip: Family<ServerLabel, Counter>,
    connections_idle_closed: Family<ServerLabel, Counter>,
    connections_deadline_closed: Family<ServerLabel, Counter>,
    access_denied: Family<ServerLabel, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    dns_dropped: Family<ServerLabel, Counter>,
    log_write_failures: Family<ServerLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabel {
    server: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    server: Arc<str>,
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    server: Arc<str>,
    protocol: &'static str,
    mode: &'static str,
    code: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    server: Arc<str>,
    upstream: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    server: Arc<str>,
    result: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Metrics(enabled)"
        } else {
            "Metrics(disabled)"
        })
    }
}

impl Metrics {
    /// A registry with every dnsd metric in it, no series yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let families = Families {
            queries: Family::default(),
            duration: Family::new_with_constructor(latency_buckets),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cache_evictions: Family::default(),
            cache_entries: Family::default(),
            upstream_failures: Family::default(),
            misses_pending: Family::default(),
            misses_joined: Family::default(),
            misses_refused: Family::default(),
            connections_open: Family::default(),
            connections_refused: Family::default(),
            connections_refused_per_ip: Family::default(),
            connections_idle_closed: Family::default(),
            connections_deadline_closed: Family::default(),
            access_denied: Family::default(),
            reloads: Family::default(),
            dns_dropped: Family::default(),
            log_write_failures: Family::default(),
            registry: Registry::default(),
        };
        add(
            &mut registry,
            "dnsd_queries_total",
            families.queries.clone(),
        );
        add(
            &mut registry,
            "dnsd_query_duration_seconds",
            families.duration.clone(),
        );
        add(
            &mut registry,
            "dnsd_cache_hits_total",
            families.cache_hits.clone(),
        );
        add(
            &mut registry,
            "dnsd_cache_misses_total",
            families.cache_misses.clone(),
        );
        add(
            &mut registry,
            "dnsd_cache_evictions_total",
            families.cache_evictions.clone(),
        );
        add(
            &mut registry,
            "dnsd_cache_entries",
            families.cache_entries.clone(),
        );
        add(
            &mut registry,
            "dnsd_upstream_failures_total",
            families.upstream_failures.clone(),
        );
        add(
            &mut registry,
            "dnsd_misses_pending",
            families.misses_pending.clone(),
        );
        add(
            &mut registry,
            "dnsd_misses_joined_total",
            families.misses_joined.clone(),
        );
        add(
            &mut registry,
            "dnsd_misses_refused_total",
            families.misses_refused.clone(),
        );
        add(
            &mut registry,
            "dnsd_connections_open",
            families.connections_open.clone(),
        );
        add(
            &mut registry,
            "dnsd_connections_refused_total",
            families.connections_refused.clone(),
        );
        add(
            &mut registry,
            "dnsd_connections_refused_per_ip_total",
            families.connections_refused_per_ip.clone(),
        );
        add(
            &mut registry,
            "dnsd_connections_idle_closed_total",
            families.connections_idle_closed.clone(),
        );
        add(
            &mut registry,
            "dnsd_connections_deadline_closed_total",
            families.connections_deadline_closed.clone(),
        );
        add(
            &mut registry,
            "dnsd_access_denied_total",
            families.access_denied.clone(),
        );
        add(
            &mut registry,
            "dnsd_reloads_total",
            families.reloads.clone(),
        );
        add(
            &mut registry,
            "dnsd_dns_dropped_total",
            families.dns_dropped.clone(),
        );
        add(
            &mut registry,
            "dnsd_log_write_failures_total",
            families.log_write_failures.clone(),
        );
        Metrics(Some(Arc::new(Families {
            registry,
            ..families
        })))
    }

    /// Records nothing, at next to no cost.
    pub fn disabled() -> Metrics {
        Metrics(None)
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// The handle a server named `name` records through. Its connection, drop and reload
    /// series start at zero, so that a scrape shows them before the first event.
    pub fn server(&self, name: &str) -> ServerMetrics {
        self.bind(name, false)
    }

    /// Like [`server`](Self::server), with the cache series too (the local server).
    pub fn server_with_cache(&self, name: &str) -> ServerMetrics {
        self.bind(name, true)
    }

    fn bind(&self, name: &str, cache: bool) -> ServerMetrics {
        let Some(families) = &self.0 else {
            return ServerMetrics(None);
        };
        let server: Arc<str> = name.into();
        let label = ServerLabel {
            server: server.clone(),
        };
        let latency = |protocol| {
            families.duration.get_or_create_owned(&ProtocolLabels {
                server: server.clone(),
                protocol,
            })
        };
        let reload = |result| {
            families.reloads.get_or_create_owned(&ReloadLabels {
                server: server.clone(),
                result,
            })
        };
        let cache = cache.then(|| CacheMetrics {
            hits: families.cache_hits.get_or_create_owned(&label),
            misses: families.cache_misses.get_or_create_owned(&label),
            evictions: families.cache_evictions.get_or_create_owned(&label),
            entries: families.cache_entries.get_or_create_owned(&label),
        });
        ServerMetrics(Some(Arc::new(Bound {
            families: families.clone(),
            latency: [latency(LINE), latency(DNS_UDP), latency(DNS_TCP)],
            cache,
            pending: families.misses_pending.get_or_create_owned(&label),
            joined: families.misses_joined.get_or_create_owned(&label),
            refused_misses: families.misses_refused.get_or_create_owned(&label),
            open: families.connections_open.get_or_create_owned(&label),
            refused: families.connections_refused.get_or_create_owned(&label),
            refused_per_ip: families
                .connections_refused_per_ip
                .get_or_create_owned(&label),
            idle_closed: families.connections_idle_closed.get_or_create_owned(&label),
            deadline_closed: families
                .connections_deadline_closed
                .get_or_create_owned(&label),
            denied: families.access_denied.get_or_create_owned(&label),
            dropped: families.dns_dropped.get_or_create_owned(&label),
            log_write_failures: families.log_write_failures.get_or_create_owned(&label),
            reload_ok: reload("ok"),
            reload_failed: reload("failed"),
            server,
        })))
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Some(families) = &self.0 {
            // Writing to a String cannot fail.
            let _ = prometheus_text::encode(&mut text, &families.registry);
        }
        text
    }
}

const LINE: &str = "line";
const DNS_UDP: &str = "dns-udp";
const DNS_TCP: &str = "dns-tcp";

/// What one server records through: its series, bound when it started. Cheap to clone;
/// the default records nothing.
#[derive(Clone, Default)]
pub struct ServerMetrics(Option<Arc<Bound>>);

struct Bound {
    families: Arc<Families>,
    server: Arc<str>,
    /// By protocol: line, dns-udp, dns-tcp.
    latency: [Histogram; 3],
    cache: Option<CacheMetrics>,
    pending: Gauge,
    joined: Counter,
    refused_misses: Counter,
    open: Gauge,
    refused: Counter,
    refused_per_ip: Counter,
    idle_closed: Counter,
    deadline_closed: Counter,
    denied: Counter,
    dropped: Counter,
    log_write_failures: Counter,
    reload_ok: Counter,
    reload_failed: Counter,
}

struct CacheMetrics {
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    entries: Gauge,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(bound) => write!(f, "ServerMetrics({})", bound.server),
            None => f.write_str("ServerMetrics(disabled)"),
        }
    }
}

/// One open connection in `dnsd_connections_open`, until dropped.
pub struct OpenConnection(Option<Gauge>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

impl ServerMetrics {
    /// Records nothing.
    pub const DISABLED: ServerMetrics = ServerMetrics(None);

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// A line-protocol request, read at `started`, answered with `code`; `request` is
    /// `None` for a line that is no valid request.
    pub fn line_query(&self, request: Option<&Request>, code: Code, started: Instant) {
        let Some(m) = &self.0 else { return };
        let mode = request.map_or("-", |r| r.mode.as_str());
        m.query(LINE, mode, Cow::Borrowed(code.as_str()));
        m.latency[0].observe(started.elapsed().as_secs_f64());
    }

    /// A DNS message, read at `started`, answered (a dropped one counts in
    /// `dnsd_dns_dropped_total`).
    pub fn dns_query(&self, transport: Transport, answered: &Answered, started: Instant) {
        let Some(m) = &self.0 else { return };
        if answered.is_dropped() {
            m.dropped.inc();
            return;
        }
        let (protocol, index) = match transport {
            Transport::Udp => (DNS_UDP, 1),
            Transport::Tcp => (DNS_TCP, 2),
        };
        let mode = if answered.rd { "rd" } else { "nord" };
        m.query(protocol, mode, answered.rcode_name());
        m.latency[index].observe(started.elapsed().as_secs_f64());
    }

    /// A cache hit (`true`) or miss.
    pub fn cache_lookup(&self, hit: bool) {
        if let Some(cache) = self.cache() {
            if hit {
                cache.hits.inc();
            } else {
                cache.misses.inc();
            }
        }
    }

    /// An insert into the cache: how many names it now holds, and whether one was
    /// evicted to make room.
    pub fn cache_stored(&self, entries: usize, evicted: bool) {
        if let Some(cache) = self.cache() {
            cache.entries.set(entries.try_into().unwrap_or(i64::MAX));
            if evicted {
                cache.evictions.inc();
            }
        }
    }

    fn cache(&self) -> Option<&CacheMetrics> {
        self.0.as_ref()?.cache.as_ref()
    }

    /// A query that got no usable answer from an upstream.
    pub fn upstream_failure(&self, error: &UpstreamError) {
        let Some(m) = &self.0 else { return };
        let labels = UpstreamLabels {
            server: m.server.clone(),
            upstream: error.upstream().to_string(),
            kind: error.kind(),
        };
        m.families.upstream_failures.get_or_create(&labels).inc();
    }

    /// How many questions wait for an upstream now.
    pub fn misses_pending(&self, pending: usize) {
        if let Some(m) = &self.0 {
            m.pending.set(pending.try_into().unwrap_or(i64::MAX));
        }
    }

    /// A question joined an identical one waiting for an upstream.
    pub fn miss_joined(&self) {
        if let Some(m) = &self.0 {
            m.joined.inc();
        }
    }

    /// A question refused at once: `--max-pending` were waiting.
    pub fn miss_refused(&self) {
        if let Some(m) = &self.0 {
            m.refused_misses.inc();
        }
    }

    /// A connection accepted and served, until the guard is dropped.
    pub fn connection_open(&self) -> OpenConnection {
        OpenConnection(self.0.as_ref().map(|m| {
            m.open.inc();
            m.open.clone()
        }))
    }

    /// A connection refused: `--max-connections` were open.
    pub fn connection_refused(&self) {
        if let Some(m) = &self.0 {
            m.refused.inc();
        }
    }

    /// A connection refused: `--max-connections-per-ip` were open from its address.
    pub fn connection_refused_per_ip(&self) {
        if let Some(m) = &self.0 {
            m.refused_per_ip.inc();
        }
    }

    /// A connection closed for being silent past `--idle-timeout`.
    pub fn connection_idle_closed(&self) {
        if let Some(m) = &self.0 {
            m.idle_closed.inc();
        }
    }

    /// A connection closed because a request did not arrive whole within
    /// `--idle-timeout` of its first byte (a slow-trickling peer).
    pub fn connection_deadline_closed(&self) {
        if let Some(m) = &self.0 {
            m.deadline_closed.inc();
        }
    }

    /// A TCP connection or a UDP query refused: the client is not in `--allow`.
    pub fn access_denied(&self) {
        if let Some(m) = &self.0 {
            m.denied.inc();
        }
    }

    /// A log record that could not be written whole (and was cut back).
    pub fn log_write_failure(&self) {
        if let Some(m) = &self.0 {
            m.log_write_failures.inc();
        }
    }

    /// A reload of the server's files, done (`true`) or failed.
    pub fn reload(&self, ok: bool) {
        if let Some(m) = &self.0 {
            if ok {
                m.reload_ok.inc();
            } else {
                m.reload_failed.inc();
            }
        }
    }
}

impl Bound {
    fn query(&self, protocol: &'static str, mode: &'static str, code: Cow<'static, str>) {
        let labels = QueryLabels {
            server: self.server.clone(),
            protocol,
            mode,
            code,
        };
        self.families.queries.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::message::Mode;

    #[test]
    fn a_disabled_handle_records_nothing_and_encodes_nothing() {
        let metrics = Metrics::disabled();
        let server = metrics.server_with_cache("root");
        server.cache_lookup(true);
        server.connection_refused();
        drop(server.connection_open());
        assert!(!server.is_enabled());
        assert_eq!(metrics.encode(), "");
    }

    #[test]
    fn series_carry_the_server_and_counters_end_in_total() {
        let metrics = Metrics::new();
        let root = metrics.server("root");
        let local = metrics.server_with_cache("default_local");
        let request = Request::parse(b"1, www.a.com, R").unwrap();
        assert_eq!(request.mode, Mode::Recursive);
        root.line_query(Some(&request), Code::Resolved, Instant::now());
        local.cache_lookup(false);
        local.cache_stored(1, false);
        let open = local.connection_open();
        let text = metrics.encode();
        for line in [
            "# TYPE dnsd_queries_total counter",
            "dnsd_queries_total{server=\"root\",protocol=\"line\",mode=\"R\",code=\"0X01\"} 1",
            "dnsd_query_duration_seconds_count{server=\"root\",protocol=\"line\"} 1",
            "dnsd_query_duration_seconds_count{server=\"root\",protocol=\"dns-udp\"} 0",
            "dnsd_cache_misses_total{server=\"default_local\"} 1",
            "dnsd_cache_entries{server=\"default_local\"} 1",
            "dnsd_connections_open{server=\"default_local\"} 1",
            "dnsd_connections_refused_total{server=\"root\"} 0",
            "dnsd_reloads_total{server=\"root\",result=\"failed\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(!text.contains("dnsd_cache_hits_total{server=\"root\"}"));
        drop(open);
        assert!(metrics
            .encode()
            .contains("dnsd_connections_open{server=\"default_local\"} 0\n"));
    }
}
