//! `--metrics`: the HTTP endpoint that serves the process's [`Metrics`] in the
//! Prometheus text format, on a thread of its own (tiny_http).

use std::net::{SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;

use crate::error::Error;
use crate::ops::metrics::{Metrics, PATH};
use crate::server::Shutdown;

/// How often the endpoint's thread checks for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Serves `GET /metrics` on `addr` (404 for anything else) on a thread of its own
/// until `shutdown` is triggered; logs `metrics on ADDR` once bound.
pub fn serve(metrics: &Metrics, addr: SocketAddr, shutdown: Shutdown) -> Result<Endpoint, Error> {
    let (server, bound) = bind_http(addr, "metrics")?;
    log::info!("metrics on {bound}");
    let metrics = metrics.clone();
    let thread = spawn_http("metrics", server, shutdown, move |request| {
        respond(&metrics, request)
    })?;
    Ok(Endpoint {
        addr: bound,
        thread,
    })
}

/// An HTTP server (tiny_http) listening on `addr` for `what` (`metrics`, `the web
/// view`), and the address it got (the real port when asked for port 0).
pub fn bind_http(addr: SocketAddr, what: &str) -> Result<(tiny_http::Server, SocketAddr), Error> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::io(format!("cannot listen for {what} on {addr}"), e))?;
    http_on(listener, what)
}

/// An HTTP server (tiny_http) on a bound `listener`, and its address.
pub fn http_on(
    listener: TcpListener,
    what: &str,
) -> Result<(tiny_http::Server, SocketAddr), Error> {
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io(format!("cannot listen for {what}"), e))?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::io(format!("cannot serve {what} on {bound}"), to_io(e)))?;
    Ok((server, bound))
}

/// Answers `server`'s requests with `respond`, one at a time on a thread named `name`,
/// until `shutdown` is triggered.
pub fn spawn_http(
    name: &str,
    server: tiny_http::Server,
    shutdown: Shutdown,
    mut respond: impl FnMut(tiny_http::Request) + Send + 'static,
) -> Result<JoinHandle<()>, Error> {
    let label = name.to_owned();
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            while !shutdown.is_triggered() {
                match server.recv_timeout(POLL) {
                    Ok(Some(request)) => respond(request),
                    Ok(None) => {}
                    Err(e) => {
                        log::warn!("{label}: {e}");
                        thread::sleep(POLL);
                    }
                }
            }
        })
        .map_err(|e| Error::io(format!("cannot start the {name} thread"), e))
}

fn to_io(e: Box<dyn std::error::Error + Send + Sync>) -> std::io::Error {
    std::io::Error::other(e)
}

/// Answers one HTTP request: the metrics for `GET /metrics`, 404 otherwise.
fn respond(metrics: &Metrics, request: tiny_http::Request) {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = if *request.method() == tiny_http::Method::Get && path == PATH {
        let header = tiny_http::Header::from_bytes(
            &b"Content-Type"[..],
            prometheus_text::CONTENT_TYPE.as_bytes(),
        )
        .expect("a valid header");
        // Sent whole with its length, never chunked: the page of a hierarchy of six
        // servers passes tiny_http's 32 KiB threshold, and simple scrapers (and curl
        // over HTTP/1.0) read a length more readily than chunks.
        tiny_http::Response::from_string(metrics.encode())
            .with_header(header)
            .with_chunked_threshold(usize::MAX)
    } else {
        tiny_http::Response::from_string("not found: try GET /metrics\n").with_status_code(404)
    };
    if let Err(e) = request.respond(response) {
        log::debug!("metrics: cannot send a response: {e}");
    }
}

/// The metrics endpoint, running.
pub struct Endpoint {
    /// Where it listens (the real port when asked for port 0).
    pub addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Endpoint {
    /// Waits for the endpoint to stop (after the shutdown was triggered).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}
