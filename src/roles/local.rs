//! The local server, the one clients talk to: a client's first line is its id, then
//! requests until `q` or end of stream. Answers come from the cache or from the
//! hierarchy (see [`LocalResolver`]); every request and reply goes to the client's log
//! before the reply is sent.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Running;
use crate::dns::answer::DnsService;
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::message::{valid_client_id, Code, Mode, Reply, GREETING, INVALID_CLIENT_ID};
use crate::line::session::LineService;
use crate::model::{Outcome, QType, Query, RData, Record, Recursion, Resolution};
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::querylog::{escape, read_mappings, ClientLog, LogDir};
use crate::ops::reload::{Reload, Source};
use crate::resolve::cache::Cache;
use crate::resolve::clock::{Clock, SystemClock};
use crate::resolve::local::LocalResolver;
use crate::resolve::upstream::UpstreamProtocol;

use crate::server::{Limits, Server, Shutdown};
use crate::zone::Zone;

/// The local server's port in the original design.
pub const DEFAULT_PORT: u16 = 5352;
/// The name the local server replies under unless `--name` says otherwise.
pub const DEFAULT_NAME: &str = "default_local";
/// The root the local server asks unless `--root` says otherwise: the original's.
pub const DEFAULT_ROOT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(
    Ipv4Addr::LOCALHOST,
    super::root::DEFAULT_PORT,
));
/// The longest a learned answer is kept, unless `--ttl` says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// How many learned names are kept at most, unless `--cache-size` says otherwise.
pub const DEFAULT_CACHE_SIZE: usize = 100_000;
/// How the local server resolves DNS queries unless `--dns-mode` says otherwise.
pub const DEFAULT_DNS_MODE: Mode = Mode::Iterative;
/// Where `ID.log` and `mapping.log` go unless `--log-dir` says otherwise.
pub const DEFAULT_LOG_DIR: &str = ".";

/// The local server's settings.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The name it replies under.
    pub name: String,
    pub bind: SocketAddr,
    pub root: SocketAddr,
    /// Entries that never expire (from `--cache` files).
    pub cache: Zone,
    /// Where a reload (SIGHUP) re-reads `cache` from; `None`: nothing to re-read.
    pub source: Option<Source<Zone>>,
    pub log_dir: PathBuf,
    /// How long a learned mapping is kept.
    pub ttl: Duration,
    /// A `mapping.log` whose entries still within their TTL start the cache, as
    /// learned entries with the TTL that remains (`--warm`).
    pub warm: Option<PathBuf>,
    /// How many learned mappings are kept at most.
    pub cache_size: usize,
    pub limits: Limits,
    /// Connect and read timeout when asking the root or a TLD server.
    pub upstream_timeout: Duration,
    /// How a DNS query with RD set is resolved: iteratively (as real resolvers do) or
    /// by asking the root to recurse.
    pub dns_mode: Mode,
    /// The protocol it asks the root and TLD servers in.
    pub upstream_protocol: UpstreamProtocol,
    /// The process's metrics (disabled unless `--metrics`).
    pub metrics: Metrics,
    /// What the cache and `mapping.log` read the time from.
    pub clock: Arc<dyn Clock>,
}

impl LocalConfig {
    /// Settings with the defaults, bound to 127.0.0.1 on port 0 (any free port).
    pub fn new(root: SocketAddr, cache: Zone, log_dir: impl Into<PathBuf>) -> LocalConfig {
        LocalConfig {
            name: DEFAULT_NAME.to_owned(),
            bind: SocketAddr::new(crate::server::DEFAULT_BIND, 0),
            root,
            cache,
            source: None,
            log_dir: log_dir.into(),
            ttl: DEFAULT_TTL,
            warm: None,
            cache_size: DEFAULT_CACHE_SIZE,
            limits: Limits::default(),
            upstream_timeout: crate::resolve::upstream::DEFAULT_TIMEOUT,
            dns_mode: DEFAULT_DNS_MODE,
            upstream_protocol: UpstreamProtocol::default(),
            metrics: Metrics::disabled(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Opens the logs, binds and starts the server on its own thread.
    pub fn start(self, shutdown: Shutdown) -> Result<Running, Error> {
        let logs = LogDir::open(&self.log_dir).map_err(|e| {
            Error::io(
                format!("cannot open the log directory {}", self.log_dir.display()),
                e,
            )
        })?;
        let cache = Cache::new(self.cache, self.ttl, self.cache_size);
        if let Some(path) = &self.warm {
            warm(&cache, path, &self.name, &*self.clock)?;
        }
        let server = Server::bind(self.bind, self.limits)?;
        let logs = Arc::new(logs);
        let metrics = self.metrics.server_with_cache(&self.name);
        let upstream = super::upstream(
            self.upstream_protocol,
            self.upstream_timeout,
            self.limits.frame.max_line,
        );
        let resolver = LocalResolver::new(cache, self.root, upstream, Some(logs.clone()))
            .with_metrics(metrics.clone())
            .with_clock(self.clock);
        let handler = Arc::new(LocalHandler {
            dns_mode: self.dns_mode,
            name: self.name,
            resolver,
            logs,
            metrics: metrics.clone(),
        });
        let swap = handler.clone();
        // Learned entries stay: only the fixed ones are replaced.
        let reload = Reload::new(&handler.name, self.source, move |cache| {
            swap.resolver.cache().replace_fixed(cache)
        })
        .with_metrics(metrics);
        super::spawn(server, handler, shutdown, reload)
    }
}

/// Puts the mappings of a `mapping.log` still within their TTL in `cache`, as learned
/// entries with the TTL that remains (capped at `--ttl`); expired ones are skipped. A
/// name learned more than once takes its latest line.
fn warm(cache: &Cache, path: &Path, name: &str, clock: &dyn Clock) -> Result<(), Error> {
    let mappings = read_mappings(path)?;
    let (now, wall) = (clock.now(), clock.wall());
    let mut kept = 0;
    for mapping in &mappings {
        let left = mapping.remaining(wall).as_secs();
        if left == 0 {
            continue;
        }
        let query = Query::new(mapping.name.clone(), QType::Address, Recursion::Iterative);
        let ttl = left.min(u64::from(u32::MAX)) as u32;
        let answer = Record::new(mapping.name.clone(), ttl, RData::address(mapping.addr));
        cache.insert(&query, &Outcome::Answer(vec![answer]), now);
        kept += 1;
    }
    log::info!(
        "{name}: warmed from {}: {kept} mappings within their TTL, {} expired",
        path.display(),
        mappings.len() - kept
    );
    Ok(())
}

/// The local role's handler.
pub struct LocalHandler {
    name: String,
    dns_mode: Mode,
    resolver: LocalResolver,
    logs: Arc<LogDir>,
    metrics: ServerMetrics,
}

/// A client's session: its id (checked by [`valid_client_id`]) and its `ID.log`.
pub struct ClientSession {
    /// ` ID`, as log lines show it after the peer's address.
    who: String,
    log: ClientLog,
}

impl LineService for LocalHandler {
    type Session = ClientSession;

    fn name(&self) -> &str {
        &self.name
    }

    /// Reads the client's id, opens its log and greets it; a bad id is answered
    /// `0XEE, NAME, Invalid client id` and the connection closed.
    fn open(&self, conn: &mut Connection, peer: &str) -> Result<Option<ClientSession>, FrameError> {
        let invalid_id = Reply::new(Code::Invalid, &self.name, INVALID_CLIENT_ID);
        let id = match conn.read_line() {
            Ok(None) => return Ok(None),
            Ok(Some(line)) => match valid_client_id(line.trim_ascii()) {
                Some(id) => id.to_owned(),
                None => {
                    log::warn!("{peer}: invalid client id {:?}", escape(line));
                    conn.write_with(|out| invalid_id.write_body(out))?;
                    return Ok(None);
                }
            },
            // Far longer than any id: refused like one, not just dropped.
            Err(FrameError::TooLong(max)) => {
                log::warn!("{peer}: invalid client id (a line over {max} bytes)");
                conn.write_with(|out| invalid_id.write_body(out))?;
                return Err(FrameError::TooLong(max));
            }
            Err(e) => return Err(e),
        };
        let log = match self.logs.client_log(&id) {
            Ok(log) => log,
            Err(e) => {
                log::error!("{peer}: cannot open {id}.log: {e}");
                let reply = Reply::failure(&self.name);
                conn.write_with(|out| reply.write_body(out))?;
                return Ok(None);
            }
        };
        log::info!("{peer}: client {id} connected");
        conn.write_line(GREETING.as_bytes())?;
        Ok(Some(ClientSession {
            who: format!(" {id}"),
            log,
        }))
    }

    fn who<'s>(&self, session: &'s ClientSession) -> &'s str {
        &session.who
    }

    fn resolve(&self, query: &Query) -> Resolution {
        self.resolver.resolve(query)
    }

    /// Every request and its reply go to the client's log before the reply is sent; a
    /// reply that cannot be logged is not given.
    fn record(&self, session: &mut ClientSession, line: &[u8], reply: Reply) -> Reply {
        match session.log.record(line, &reply) {
            Ok(()) => reply,
            Err(e) => {
                log::error!(
                    "cannot write a client log in {}: {e}",
                    self.logs.dir().display()
                );
                Reply::failure(&self.name)
            }
        }
    }

    fn close(&self, session: ClientSession, peer: &str) {
        log::info!("{peer}: client{} left", session.who);
    }

    fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }
}

/// Over DNS, RD set resolves through the hierarchy, iteratively unless `--dns-mode R`;
/// RD clear answers from the cache only, or REFUSED without asking anyone.
impl DnsService for LocalHandler {
    fn recursion(&self, rd: bool) -> Recursion {
        match (rd, self.dns_mode) {
            (false, _) => Recursion::CacheOnly,
            (true, Mode::Recursive) => Recursion::Recursive,
            (true, Mode::Iterative) => Recursion::Iterative,
        }
    }

    fn recursion_available(&self, _rd: bool) -> bool {
        true
    }

    fn resolve(&self, query: &Query) -> Resolution {
        self.resolver.resolve(query)
    }
}
