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
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::io(format!("cannot listen for metrics on {addr}"), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io(format!("cannot listen for metrics on {addr}"), e))?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::io(format!("cannot serve metrics on {bound}"), to_io(e)))?;
    log::info!("metrics on {bound}");
    let metrics = metrics.clone();
    let thread = thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            while !shutdown.is_triggered() {
                match server.recv_timeout(POLL) {
                    Ok(Some(request)) => respond(&metrics, request),
                    Ok(None) => {}
                    Err(e) => {
                        log::warn!("metrics: {e}");
                        thread::sleep(POLL);
                    }
                }
            }
        })
        .map_err(|e| Error::io("cannot start the metrics thread", e))?;
    Ok(Endpoint {
        addr: bound,
        thread,
    })
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
