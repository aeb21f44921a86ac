//! The web view: one page, served by the process itself, that draws the hierarchy and
//! every query moving through it, live; the local server's caches, with a flush; and a
//! form that traces a name hop by hop. Everything the page shows is also served as JSON
//! and as a stream of Server-Sent Events, for scripts and `curl -N`.
//!
//! - [`events`]: the hooks the servers call, and the bounded queue between them and
//!   this module (a no-op while nobody watches).
//! - [`trail`]: the queue read a batch at a time; each query's hops matched to the
//!   asked server's own event, so a query carries its whole path.
//! - `api`: the JSON endpoints (the hierarchy, the cache, a flush, a trace), and who
//!   may flush.
//! - this module: the HTTP server (tiny_http, on threads of its own): the page's three
//!   files (built into the binary with `include_str!`: no build step, nothing fetched),
//!   the routes, and the stream, each open stream on a thread of its own.
//!
//! Safe by default: it listens where `--web` says (loopback unless a host is given);
//! the one thing that changes state, a flush, is refused to a client that is not on
//! loopback unless `--web-allow-flush` says otherwise, and to a page from another
//! origin; nothing it serves reads a file.

mod api;
pub mod events;
pub mod trail;

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::resolve::local::Inspect;
use crate::runtime::endpoint;
use crate::server::Shutdown;
use crate::sync::lock;

/// `dnsd up`'s web view unless `--web` says otherwise: loopback, port 5380.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5380);

/// How often the server's threads check for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Streams open at once at most; past it a new one gets 503.
pub const MAX_WATCHERS: usize = 16;

/// Events waiting for one stream's thread; past it that stream misses events (counted
/// with the queue's drops) rather than holding up the others.
const WATCHER_BACKLOG: usize = 1024;

/// How long a write to a client may block: a stream whose client reads nothing ends.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A comment sent on a silent stream this often, so that a closed one is noticed.
const KEEPALIVE: Duration = Duration::from_secs(10);

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
    // Accepted sockets inherit it (Linux): a stream whose client has stopped reading
    // fails its write, and ends, instead of holding its thread and its place.
    socket2::SockRef::from(&listener)
        .set_write_timeout(Some(SEND_TIMEOUT))
        .map_err(|e| Error::io(format!("cannot set up the web view on {addr}"), e))?;
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
        "/" | "/index.html" if get => api::text(200, "text/html; charset=utf-8", PAGE),
        "/style.css" if get => api::text(200, "text/css; charset=utf-8", STYLE),
        "/app.js" if get => api::text(200, "text/javascript; charset=utf-8", SCRIPT),
        "/events" if get => {
            stream(shared, request);
            return;
        }
        "/api/hierarchy" if get => api::json(200, &api::hierarchy(shared)),
        "/api/cache" if get => api::cache(shared),
        "/api/resolve" if get => api::resolve(shared, &params),
        "/api/flush" if post => {
            let peer = request.remote_addr().map(|a| a.ip());
            match api::flush_refused(shared.config.allow_remote_flush, peer, request.headers()) {
                Some(why) => api::error(403, &why),
                None => api::flush(shared, &params),
            }
        }
        "/" | "/index.html" | "/style.css" | "/app.js" | "/events" | "/api/hierarchy"
        | "/api/cache" | "/api/resolve" | "/api/flush" => api::error(405, "method not allowed"),
        _ => api::error(
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

/// `GET /events`: every query as it is answered, one `data:` line of JSON each
/// ([`events::Event`]), until the client goes or the server stops.
fn stream(shared: &Arc<Shared>, request: tiny_http::Request) {
    let Some(events) = shared.watchers.add(MAX_WATCHERS, WATCHER_BACKLOG) else {
        let _ = request.respond(api::error(503, "too many streams open"));
        return;
    };
    let response = tiny_http::Response::empty(200)
        .with_header(api::header("Content-Type", "text/event-stream"))
        .with_header(api::header("Cache-Control", "no-store"));
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

    /// Why the send timeout is set on the listener: tiny_http hands out no socket.
    #[test]
    fn accepted_sockets_inherit_the_listeners_send_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&listener)
            .set_write_timeout(Some(SEND_TIMEOUT))
            .unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.write_timeout().unwrap(), Some(SEND_TIMEOUT));
    }

    #[test]
    fn the_page_is_built_in_and_loads_only_its_own_files() {
        assert!(PAGE.contains("/app.js") && PAGE.contains("/style.css"));
        for text in [PAGE, STYLE, SCRIPT] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
