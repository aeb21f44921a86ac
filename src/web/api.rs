//! The web view's JSON endpoints: the hierarchy and the event queue's figures, the local
//! server's caches, a flush (and who may ask for one), a trace from the form.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;

use super::{events, Shared};
use crate::line::message::Mode;
use crate::model::name::{parse_tld, Name};
use crate::model::{Outcome, QType};
use crate::sync::lock;
use crate::tools::trace::{self, Output, TraceConfig};

/// Cache entries listed at most, of each kind.
const MAX_LISTED: usize = 500;

/// How long each hop of a trace from the form may take.
const TRACE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

/// A header of the server's own (never a peer's text).
pub(super) fn header(name: &'static str, value: &'static str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

pub(super) fn text(status: u16, content_type: &'static str, body: &str) -> Response {
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

pub(super) fn json(status: u16, value: &serde_json::Value) -> Response {
    text(status, "application/json", &value.to_string())
}

pub(super) fn error(status: u16, message: &str) -> Response {
    json(status, &json!({ "error": message }))
}

/// `GET /api/hierarchy`: the servers, each with its queries by protocol (counted
/// while someone watches), and the event queue's figures.
pub(super) fn hierarchy(shared: &Shared) -> serde_json::Value {
    let counters = lock(&shared.counters).clone();
    let servers: Vec<_> = shared
        .view
        .servers
        .iter()
        .map(|s| {
            let c = counters.get(&s.name).copied().unwrap_or_default();
            json!({
                "name": s.name, "role": s.role, "addr": s.addr,
                "queries": { "line": c[0], "dns-udp": c[1], "dns-tcp": c[2] },
            })
        })
        .collect();
    let stats = events::stats();
    json!({
        "servers": servers,
        "root": shared.view.root,
        "watchers": shared.watchers.len(),
        "events": { "queued": stats.queued, "dropped": stats.dropped + shared.watchers.dropped() },
        "flush_allowed_remotely": shared.config.allow_remote_flush,
    })
}

/// `GET /api/cache`: the local server's caches.
pub(super) fn cache(shared: &Shared) -> Response {
    let Some(inspect) = &shared.view.inspect else {
        return error(404, "no local server here: no cache");
    };
    let caches = inspect.caches(MAX_LISTED);
    let learned: Vec<_> = caches
        .cache
        .learned
        .iter()
        .map(|l| {
            let (kind, records) = match &l.outcome {
                Outcome::Answer(records) => ("answer", records.clone()),
                Outcome::NoData(soa) => ("nodata", vec![soa.clone()]),
                Outcome::NxDomain(soa) => ("nxdomain", vec![soa.clone()]),
                _ => ("other", Vec::new()),
            };
            let records: Vec<_> = records
                .iter()
                .map(|r| {
                    let view = trace::record_view("answer", r);
                    json!({ "name": view.name, "ttl": view.ttl, "type": view.rtype, "data": view.data })
                })
                .collect();
            json!({
                "name": l.name, "question": l.question, "kind": kind,
                "negative": kind == "nxdomain" || kind == "nodata",
                "ttl_left": l.ttl_left, "records": records,
            })
        })
        .collect();
    let fixed: Vec<_> = caches
        .cache
        .fixed
        .iter()
        .map(|(name, ip)| json!({ "name": name, "address": ip }))
        .collect();
    let delegations: Vec<_> = caches
        .delegations
        .iter()
        .map(|d| {
            let servers: Vec<_> = d
                .servers
                .iter()
                .map(|ns| {
                    let addrs: Vec<String> = ns.sockets().map(|a| a.to_string()).collect();
                    json!({ "name": ns.name.as_str(), "addresses": addrs })
                })
                .collect();
            json!({
                "zone": d.zone.as_str(), "servers": servers, "from": d.from,
                "ttl_left": d.remaining(caches.now).as_secs(),
            })
        })
        .collect();
    json(
        200,
        &json!({
            "learned": learned,
            "learned_names": caches.cache.learned_names,
            "fixed": fixed,
            "fixed_names": caches.cache.fixed_names,
            "delegation_cache": caches.delegation_cache,
            "delegations": delegations,
        }),
    )
}

/// Why a flush is refused, if it is: a client not on loopback (unless
/// `--web-allow-flush`), or a page from another origin (a site the browser has open
/// must not flush a cache on this machine).
pub(super) fn flush_refused(
    allow_remote: bool,
    peer: Option<IpAddr>,
    headers: &[tiny_http::Header],
) -> Option<String> {
    let local = peer.is_some_and(|ip| ip.is_loopback());
    if !local && !allow_remote {
        return Some(
            "a flush is only taken from this machine (loopback), unless dnsd runs with \
             --web-allow-flush"
                .to_owned(),
        );
    }
    let value = |name: &'static str| {
        headers
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    if let (Some(origin), Some(host)) = (value("Origin"), value("Host")) {
        if origin != format!("http://{host}") {
            return Some(format!("a flush from a page of {origin} is refused"));
        }
    }
    None
}

/// `POST /api/flush?name=NAME` (one name, and its delegation if it is a zone) or
/// `?all=1`.
pub(super) fn flush(shared: &Shared, params: &HashMap<String, String>) -> Response {
    let Some(inspect) = &shared.view.inspect else {
        return error(404, "no local server here: no cache");
    };
    let name = match (params.get("name"), params.get("all")) {
        (Some(name), _) if !name.trim().is_empty() => match parse_name(name) {
            Ok(name) => Some(name),
            Err(e) => return error(400, &e),
        },
        (_, Some(_)) => None,
        _ => return error(400, "say which: ?name=NAME, or ?all=1"),
    };
    let (names, zones) = inspect.flush(name.as_ref());
    match &name {
        Some(name) => log::info!("web: flushed {name}: {names} names, {zones} zones"),
        None => log::info!("web: flushed everything learned: {names} names, {zones} zones"),
    }
    json(
        200,
        &json!({ "flushed": name.as_ref().map(Name::as_str), "names": names, "zones": zones }),
    )
}

/// A host name, or a TLD alone (as `dnsd trace` takes them).
fn parse_name(s: &str) -> Result<Name, String> {
    let s = s.trim();
    Name::parse(s)
        .or_else(|e| parse_tld(s).map(|tld| Name::from_wire(&tld)).map_err(|_| e))
        .map_err(|e| format!("bad name {s:?}: {e}"))
}

/// `GET /api/resolve?name=NAME&type=TYPE&mode=R|I`: the name traced from the root, hop
/// by hop, as `dnsd trace --json` prints it.
pub(super) fn resolve(shared: &Shared, params: &HashMap<String, String>) -> Response {
    let Some(root) = shared.view.root else {
        return error(404, "no root known here: nothing to resolve through");
    };
    let name = match parse_name(params.get("name").map_or("", String::as_str)) {
        Ok(name) => name,
        Err(e) => return error(400, &e),
    };
    let qtype = match params.get("type").map(|t| t.trim()) {
        None | Some("") => QType::A,
        Some(t) => match t.parse::<QType>() {
            Ok(t) => t,
            Err(e) => return error(400, &format!("bad type {t:?}: {e}")),
        },
    };
    let mode = match params.get("mode").map(|m| m.trim().to_ascii_uppercase()) {
        None => trace::DEFAULT_MODE,
        Some(m) if m == "I" || m.is_empty() => Mode::Iterative,
        Some(m) if m == "R" => Mode::Recursive,
        Some(m) => return error(400, &format!("bad mode {m:?}: R or I")),
    };
    let traced = trace::trace(&TraceConfig {
        name,
        qtype,
        mode,
        root,
        timeout: TRACE_TIMEOUT,
        output: Output::Json,
    });
    match serde_json::to_value(&traced) {
        Ok(value) => json(200, &value),
        Err(e) => error(500, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn headers(pairs: &[(&'static str, &'static str)]) -> Vec<tiny_http::Header> {
        pairs.iter().map(|(k, v)| header(k, v)).collect()
    }

    #[test]
    fn a_flush_is_taken_from_loopback_only_unless_allowed() {
        let loopback = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let remote = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(flush_refused(false, loopback, &[]), None);
        assert!(flush_refused(false, remote, &[]).is_some());
        assert!(flush_refused(false, None, &[]).is_some());
        assert_eq!(flush_refused(true, remote, &[]), None);
    }

    #[test]
    fn a_flush_from_a_page_of_another_origin_is_refused() {
        let loopback = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let same = headers(&[
            ("Host", "127.0.0.1:5380"),
            ("Origin", "http://127.0.0.1:5380"),
        ]);
        assert_eq!(flush_refused(false, loopback, &same), None);
        let other = headers(&[
            ("Host", "127.0.0.1:5380"),
            ("Origin", "https://evil.example"),
        ]);
        let why = flush_refused(false, loopback, &other).unwrap();
        assert!(why.contains("evil.example"), "{why}");
        // curl sends no Origin.
        let curl = headers(&[("Host", "127.0.0.1:5380")]);
        assert_eq!(flush_refused(false, loopback, &curl), None);
    }

    #[test]
    fn names_and_tlds_are_taken_and_nonsense_refused() {
        assert_eq!(parse_name(" NASA.gov ").unwrap().as_str(), "nasa.gov");
        assert_eq!(parse_name("com").unwrap().as_str(), "com");
        assert!(parse_name("a..b").is_err());
        assert!(parse_name("").is_err());
    }
}
