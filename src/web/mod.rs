//! The web view: one page, served by the process itself, that draws the hierarchy and
//! every query moving through it, live; the local server's caches, with a flush; and a
//! form that traces a name hop by hop. Everything the page shows is also served as JSON
//! and as a stream of Server-Sent Events, for scripts and `curl -N`.
//!
//! - [`events`]: the hooks the servers call, and the bounded queue between them and
//!   this module (a no-op while nobody watches).
//! - [`trail`]: the queue read a batch at a time; each query's hops matched to the
//!   asked server's own event, so a query carries its whole path.
//! - this module: the HTTP server (tiny_http, on threads of its own): the page's three
//!   files (built into the binary with `include_str!`: no build step, nothing fetched),
//!   the JSON endpoints, and the stream, each open stream on a thread of its own.
//!
//! Safe by default: it listens where `--web` says (loopback unless a host is given);
//! the one thing that changes state, a flush, is refused to a client that is not on
//! loopback unless `--web-allow-flush` says otherwise, and to a page from another
//! origin; nothing it serves reads a file.

pub mod events;
pub mod trail;

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::error::Error;
use crate::line::message::Mode;
use crate::model::name::{parse_tld, Name};
use crate::model::{Outcome, QType};
use crate::resolve::local::Inspect;
use crate::runtime::endpoint;
use crate::server::Shutdown;
use crate::sync::lock;
use crate::tools::trace::{self, Output, TraceConfig};

/// `dnsd up`'s web view unless `--web` says otherwise: loopback, port 5380.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5380);

/// How often the server's threads check for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Streams open at once at most; past it a new one gets 503.
pub const MAX_WATCHERS: usize = 16;

/// Events waiting for one stream's thread; past it that stream misses events (counted
/// with the queue's drops) rather than holding up the others.
const WATCHER_BACKLOG: usize = 1024;

/// A comment sent on a silent stream this often, so that a closed one is noticed.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// Cache entries listed at most, of each kind.
const MAX_LISTED: usize = 500;

/// How long each hop of a trace from the form may take.
const TRACE_TIMEOUT: Duration = Duration::from_secs(2);

const PAGE: &str = include_str!("page.html");
const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// One server the page draws.
#[derive(Clone, Debug, Serialize)]
pub struct ServerInfo {
    /// The name it answers under: `default_local`, `root`, `com`...
    pub name: String,
    /// `local`, `root` or `tld`.
    pub role: &'static str,
    pub addr: SocketAddr,
}

/// What the web view shows: the servers of this process, the root a trace starts at,
/// and the local server's caches.
#[derive(Clone)]
pub struct View {
    pub servers: Vec<ServerInfo>,
    /// Where a trace from the form starts (`None`: the form is off).
    pub root: Option<SocketAddr>,
    pub inspect: Option<Arc<dyn Inspect>>,
}

/// How the web view is served (`--web`, `--web-allow-flush`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebConfig {
    pub addr: SocketAddr,
    /// Whether a client that is not on loopback may flush the cache.
    pub allow_remote_flush: bool,
    /// `addr` is a default, not asked for: when it is taken (another `dnsd up` has
    /// it), a free port on the same address is used instead, and said.
    pub or_any_port: bool,
}

/// The web view, running.
pub struct Web {
    /// Where it listens (the real port when asked for port 0).
    pub addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl Web {
    /// Waits for its threads to stop (after the shutdown was triggered).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Shared between the HTTP thread, the trail's thread and the streams' threads.
struct Shared {
    view: View,
    config: WebConfig,
    shutdown: Shutdown,
    watchers: trail::Watchers,
    counters: Mutex<HashMap<String, [u64; 3]>>,
}

/// Serves the web view on `config.addr` until `shutdown` is triggered; logs
/// `web view on http://ADDR/` once bound.
pub fn serve(view: View, config: WebConfig, shutdown: Shutdown) -> Result<Web, Error> {
    let addr = config.addr;
    let listener = match TcpListener::bind(addr) {
        Err(e) if config.or_any_port && e.kind() == std::io::ErrorKind::AddrInUse => {
            log::warn!("web view: {addr} is taken; on a free port instead");
            TcpListener::bind(SocketAddr::new(addr.ip(), 0))
        }
        bound => bound,
    }
    .map_err(|e| Error::io(format!("cannot listen for the web view on {addr}"), e))?;
    let (server, bound) = endpoint::http_on(listener, "the web view")?;
    log::info!("web view on http://{bound}/");
    let shared = Arc::new(Shared {
        view,
        config,
        shutdown: shutdown.clone(),
        watchers: trail::Watchers::default(),
        counters: Mutex::new(HashMap::new()),
    });
    let http = {
        let shared = shared.clone();
        endpoint::spawn_http("web", server, shutdown, move |request| {
            respond(&shared, request)
        })?
    };
    let trail = {
        let shared = shared.clone();
        thread::Builder::new()
            .name("web-events".to_owned())
            .spawn(move || {
                let mut names: HashMap<SocketAddr, String> = shared
                    .view
                    .servers
                    .iter()
                    .map(|s| (s.addr, s.name.clone()))
                    .collect();
                // A standalone local server's root is another process: still the root.
                if let Some(root) = shared.view.root {
                    names.entry(root).or_insert_with(|| "root".to_owned());
                }
                trail::run(&names, &shared.watchers, &shared.shutdown, |event| {
                    count(&shared.counters, event)
                })
            })
            .map_err(|e| Error::io("cannot start the web events thread", e))?
    };
    Ok(Web {
        addr: bound,
        threads: vec![http, trail],
    })
}

/// Counts a query in its server's protocol counters.
fn count(counters: &Mutex<HashMap<String, [u64; 3]>>, event: &events::Event) {
    let i = match event.protocol {
        "line" => 0,
        "dns-udp" => 1,
        _ => 2,
    };
    lock(counters).entry(event.server.clone()).or_default()[i] += 1;
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

/// A header of the server's own (never a peer's text).
fn header(name: &'static str, value: &'static str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn text(status: u16, content_type: &'static str, body: &str) -> Response {
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

fn json_response(status: u16, value: &serde_json::Value) -> Response {
    text(status, "application/json", &value.to_string())
}

fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// Answers one request; a stream is handed to a thread of its own.
fn respond(shared: &Arc<Shared>, mut request: tiny_http::Request) {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = *request.method() == tiny_http::Method::Get;
    let post = *request.method() == tiny_http::Method::Post;
    let response = match path {
        "/" | "/index.html" if get => text(200, "text/html; charset=utf-8", PAGE),
        "/style.css" if get => text(200, "text/css; charset=utf-8", STYLE),
        "/app.js" if get => text(200, "text/javascript; charset=utf-8", SCRIPT),
        "/events" if get => {
            stream(shared, request);
            return;
        }
        "/api/hierarchy" if get => json_response(200, &hierarchy(shared)),
        "/api/cache" if get => cache(shared),
        "/api/resolve" if get => resolve(shared, &params),
        "/api/flush" if post => {
            let peer = request.remote_addr().map(|a| a.ip());
            match flush_refused(shared.config.allow_remote_flush, peer, request.headers()) {
                Some(why) => error(403, &why),
                None => flush(shared, &params),
            }
        }
        "/" | "/index.html" | "/style.css" | "/app.js" | "/events" | "/api/hierarchy"
        | "/api/cache" | "/api/resolve" | "/api/flush" => error(405, "method not allowed"),
        _ => error(
            404,
            "not found: try /, /events, /api/hierarchy, /api/cache, /api/resolve, /api/flush",
        ),
    };
    // The body of a POST is not used; reading it keeps the connection usable.
    let _ = std::io::copy(
        &mut std::io::Read::take(request.as_reader(), 64 * 1024),
        &mut std::io::sink(),
    );
    if let Err(e) = request.respond(response) {
        log::debug!("web: cannot send a response: {e}");
    }
}

/// `GET /api/hierarchy`: the servers, each with its queries by protocol (counted
/// while someone watches), and the event queue's figures.
fn hierarchy(shared: &Shared) -> serde_json::Value {
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
fn cache(shared: &Shared) -> Response {
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
    json_response(
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
fn flush_refused(
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
fn flush(shared: &Shared, params: &HashMap<String, String>) -> Response {
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
    json_response(
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
fn resolve(shared: &Shared, params: &HashMap<String, String>) -> Response {
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
        Ok(value) => json_response(200, &value),
        Err(e) => error(500, &e.to_string()),
    }
}

/// `GET /events`: every query as it is answered, one `data:` line of JSON each
/// ([`events::Event`]), until the client goes or the server stops.
fn stream(shared: &Arc<Shared>, request: tiny_http::Request) {
    let Some(events) = shared.watchers.add(MAX_WATCHERS, WATCHER_BACKLOG) else {
        let _ = request.respond(error(503, "too many streams open"));
        return;
    };
    let response = tiny_http::Response::empty(200)
        .with_header(header("Content-Type", "text/event-stream"))
        .with_header(header("Cache-Control", "no-store"));
    // tiny_http's own response body is buffered; the raw stream, after tiny_http has
    // written the head, lets each event be flushed as it comes.
    let mut out = request.upgrade("sse", response);
    let shared = shared.clone();
    let spawned = thread::Builder::new()
        .name("web-stream".to_owned())
        .spawn(move || {
            let _ = out.write_all(b"retry: 1000\n: dnsd events\n\n");
            let _ = out.flush();
            let mut quiet = Duration::ZERO;
            while !shared.shutdown.is_triggered() {
                let sent = match events.recv_timeout(POLL) {
                    Ok(line) => {
                        quiet = Duration::ZERO;
                        write!(out, "data: {line}\n\n")
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        quiet += POLL;
                        if quiet < KEEPALIVE {
                            continue;
                        }
                        quiet = Duration::ZERO;
                        out.write_all(b": keepalive\n\n")
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                };
                if sent.and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
            // Dropping `events` ends this stream's place among the watchers.
            drop(events);
            shared.watchers.prune();
        });
    if let Err(e) = spawned {
        log::warn!("web: cannot start a stream's thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_page_is_built_in_and_loads_only_its_own_files() {
        assert!(PAGE.contains("/app.js") && PAGE.contains("/style.css"));
        for text in [PAGE, STYLE, SCRIPT] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
