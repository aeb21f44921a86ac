//! The local server, the one clients talk to: a client's first line is its id, then
//! requests until `q` or end of stream. Answers come from the cache or from the
//! hierarchy (see [`LocalResolver`]); every request and reply goes to the client's log
//! before the reply is sent.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{RoleConfig, Serving};
use crate::dns::answer::DnsService;
use crate::error::Error;
use crate::line::frame::{Connection, FrameError};
use crate::line::message::{
    valid_client_id, Code, Mode, Reply, ServerName, GREETING, INVALID_CLIENT_ID,
};
use crate::line::session::LineService;
use crate::model::{Outcome, QType, Query, RData, Record, Recursion, Resolution};
use crate::ops::fds;
use crate::ops::metrics::{Metrics, ServerMetrics};
use crate::ops::querylog::{escape, read_mappings, ClientLog, LogDir, LogLimits};
use crate::resolve::cache::Cache;
use crate::resolve::clock::{Clock, SystemClock};
use crate::resolve::inflight::{Inflight, Then, DEFAULT_MAX_PENDING};
use crate::resolve::local::LocalResolver;
use crate::resolve::upstream::UpstreamProtocol;
use crate::server::access::Allow;
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
/// The longest a TTL given or kept is, unless `--max-ttl` says otherwise: one day, as
/// Unbound's `cache-max-ttl`.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(86_400);
/// How many learned names are kept at most, unless `--cache-size` says otherwise.
pub const DEFAULT_CACHE_SIZE: usize = 100_000;
/// How many bytes what is learned may hold, unless `--cache-bytes` says otherwise:
/// room for the default count of names at about 670 bytes each (a name with one address
/// counts about 390), so that the count binds first unless answers are large.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;
/// How the local server resolves DNS queries unless `--dns-mode` says otherwise.
pub const DEFAULT_DNS_MODE: Mode = Mode::Iterative;
/// Where `clients/ID.log` and `mapping.log` go unless `--log-dir` says otherwise.
pub const DEFAULT_LOG_DIR: &str = ".";

/// The local server's settings, built with [`LocalConfig::new`] and `with_*`.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where it listens, its limits, where a reload re-reads its data.
    serving: Serving<Zone>,
    /// The name it replies under (a [`ServerName`]).
    name: String,
    root: SocketAddr,
    /// Entries that never expire (from `--cache` files).
    cache: Zone,
    log_dir: PathBuf,
    /// The longest TTL given or kept.
    max_ttl: Duration,
    /// A `mapping.log` whose entries still within their TTL start the cache.
    warm: Option<PathBuf>,
    /// How many learned names are kept at most.
    cache_size: usize,
    /// How many bytes what is learned may hold.
    cache_bytes: usize,
    /// Connect and read timeout when asking the root or a TLD server.
    upstream_timeout: Duration,
    /// How a DNS query with RD set is resolved.
    dns_mode: Mode,
    /// The protocol it asks the root and TLD servers in.
    upstream_protocol: UpstreamProtocol,
    /// Whether delegations learned from referrals are kept (mode I then skips the root
    /// for zones already referred to).
    delegation_cache: bool,
    /// What the cache and `mapping.log` read the time from.
    clock: Arc<dyn Clock>,
    /// How many questions may wait for an upstream at once.
    max_pending: usize,
    /// Who may ask (`--allow`); by default loopback and the networks it is bound on.
    allow: Allow,
    /// How many client ids get a log file of their own.
    max_client_logs: usize,
}

impl LocalConfig {
    /// Settings with the defaults, bound to 127.0.0.1 on port 0 (any free port), asking
    /// `root`, with `cache` as its fixed entries and its logs in `log_dir`.
    pub fn new(root: SocketAddr, cache: Zone, log_dir: impl Into<PathBuf>) -> LocalConfig {
        LocalConfig {
            serving: Serving::default(),
            name: DEFAULT_NAME.to_owned(),
            root,
            cache,
            log_dir: log_dir.into(),
            max_ttl: DEFAULT_MAX_TTL,
            warm: None,
            cache_size: DEFAULT_CACHE_SIZE,
            cache_bytes: DEFAULT_CACHE_BYTES,
            upstream_timeout: crate::resolve::upstream::DEFAULT_TIMEOUT,
            dns_mode: DEFAULT_DNS_MODE,
            upstream_protocol: UpstreamProtocol::default(),
            delegation_cache: true,
            clock: Arc::new(SystemClock),
            max_pending: DEFAULT_MAX_PENDING,
            allow: Allow::BoundNetworks,
            max_client_logs: crate::ops::querylog::DEFAULT_MAX_CLIENT_LOGS,
        }
    }

    /// The name it replies under.
    pub fn with_name(mut self, name: ServerName) -> LocalConfig {
        self.name = name.as_str().to_owned();
        self
    }

    /// The root server it asks.
    pub fn with_root(mut self, root: SocketAddr) -> LocalConfig {
        self.root = root;
        self
    }

    /// Its fixed entries: they never expire, and a reload replaces them.
    pub fn with_cache(mut self, cache: Zone) -> LocalConfig {
        self.cache = cache;
        self
    }

    /// Where `clients/ID.log` and `mapping.log` go.
    pub fn with_log_dir(mut self, dir: impl Into<PathBuf>) -> LocalConfig {
        self.log_dir = dir.into();
        self
    }

    /// The longest TTL it gives (a first answer included) or keeps (`--max-ttl`, or
    /// `--ttl` as it was called before).
    pub fn with_max_ttl(mut self, max_ttl: Duration) -> LocalConfig {
        self.max_ttl = max_ttl;
        self
    }

    /// A `mapping.log` whose mappings still within their TTL start the cache, as learned
    /// entries with the TTL that remains (`--warm`).
    pub fn with_warm(mut self, mappings: Option<PathBuf>) -> LocalConfig {
        self.warm = mappings;
        self
    }

    /// How many learned names are kept at most.
    pub fn with_cache_size(mut self, size: usize) -> LocalConfig {
        self.cache_size = size;
        self
    }

    /// How many bytes what is learned may hold (an estimate of each entry).
    pub fn with_cache_bytes(mut self, bytes: usize) -> LocalConfig {
        self.cache_bytes = bytes;
        self
    }

    /// Connect and read timeout when asking the root or a TLD server.
    pub fn with_upstream_timeout(mut self, timeout: Duration) -> LocalConfig {
        self.upstream_timeout = timeout;
        self
    }

    /// How a DNS query with RD set is resolved: iteratively (as real resolvers do) or
    /// by asking the root to recurse.
    pub fn with_dns_mode(mut self, mode: Mode) -> LocalConfig {
        self.dns_mode = mode;
        self
    }

    /// The protocol it asks the root and TLD servers in.
    pub fn with_upstream_protocol(mut self, protocol: UpstreamProtocol) -> LocalConfig {
        self.upstream_protocol = protocol;
        self
    }

    /// Who may ask: [`Allow::BoundNetworks`] by default (loopback and the networks of
    /// the address it binds), [`Allow::Only`] for `--allow`; others are refused.
    pub fn with_allow(mut self, allow: Allow) -> LocalConfig {
        self.allow = allow;
        self
    }

    /// Keeps the delegations learned from referrals, for their TTL (the default), so
    /// that mode I asks a zone's servers directly once referred to them; or not, so that
    /// every miss starts at the root, as in the original (`--no-delegation-cache`).
    pub fn with_delegation_cache(mut self, cached: bool) -> LocalConfig {
        self.delegation_cache = cached;
        self
    }

    /// Reads the time from `clock` instead of the system's (tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> LocalConfig {
        self.clock = clock;
        self
    }

    /// How many questions may wait for an upstream at once (`--max-pending`); past
    /// it, new ones are answered SERVFAIL (`0XFE`) at once.
    pub fn with_max_pending(mut self, max: usize) -> LocalConfig {
        self.max_pending = max;
        self
    }

    /// How many client ids get a log file of their own in `clients/`; the records of
    /// the others go to `queries.log`, the id as a field (`--max-client-logs`; 0: every
    /// client's).
    pub fn with_max_client_logs(mut self, max: usize) -> LocalConfig {
        self.max_client_logs = max;
        self
    }

    /// Where `clients/ID.log` and `mapping.log` go.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The longest TTL given or kept.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// How many bytes what is learned may hold.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// Whether delegations learned from referrals are kept.
    pub fn delegation_cache(&self) -> bool {
        self.delegation_cache
    }
}

impl RoleConfig for LocalConfig {
    type Handler = LocalHandler;
    type Data = Zone;
    const FDS_PER_CONNECTION: u64 = fds::PER_LOCAL_CONNECTION;

    fn serving(&self) -> &Serving<Zone> {
        &self.serving
    }

    fn serving_mut(&mut self) -> &mut Serving<Zone> {
        &mut self.serving
    }

    fn allow(&self) -> Allow {
        self.allow.clone()
    }

    /// Opens the logs and fills the cache (warming it, with `--warm`).
    fn handler(self, metrics: &Metrics) -> Result<LocalHandler, Error> {
        let limits = LogLimits {
            max_client_logs: self.max_client_logs,
            max_mappings: self.cache_size,
        };
        let logs = LogDir::open(&self.log_dir, limits).map_err(|e| {
            Error::io(
                format!("cannot open the log directory {}", self.log_dir.display()),
                e,
            )
        })?;
        let cache =
            Cache::new(self.cache, self.max_ttl, self.cache_size).with_max_bytes(self.cache_bytes);
        if let Some(path) = &self.warm {
            warm(&cache, path, &self.name, &*self.clock)?;
        }
        let metrics = metrics.server_with_cache(&self.name);
        let logs = Arc::new(logs.with_metrics(metrics.clone()));
        let upstream = super::upstream(
            self.upstream_protocol,
            self.upstream_timeout,
            self.serving.limits().frame.max_line,
            self.serving.bind().ip(),
        );
        let resolver = LocalResolver::new(cache, self.root, upstream, Some(logs.clone()))
            .with_metrics(metrics.clone())
            .with_delegation_cache(self.delegation_cache)
            .with_name(&self.name)
            .with_clock(self.clock);
        let resolver = Inflight::new(resolver, &self.name, self.max_pending, metrics.clone());
        Ok(LocalHandler {
            dns_mode: self.dns_mode,
            name: self.name,
            resolver,
            logs,
            metrics,
        })
    }

    /// Learned entries stay: only the fixed ones are replaced.
    fn swap(handler: &LocalHandler, cache: Zone) {
        handler.resolver.resolver().cache().replace_fixed(cache)
    }
}

/// Puts the mappings of a `mapping.log` still within their TTL in `cache`, as learned
/// entries with the TTL that remains (capped at `--max-ttl`); expired ones are skipped. A
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

/// The local role's handler. Every question goes through one [`Inflight`]: hits are
/// answered at once; a miss asked while the same one is being resolved waits for that
/// answer; misses wait at most `--max-pending` at a time, over every protocol.
pub struct LocalHandler {
    name: String,
    dns_mode: Mode,
    resolver: Inflight<LocalResolver>,
    logs: Arc<LogDir>,
    metrics: ServerMetrics,
}

/// A client's session: its id (checked by [`valid_client_id`]) and its log.
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
        let log = self.logs.client_log(&id);
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
        match self.logs.record(&mut session.log, line, &reply) {
            Ok(()) => reply,
            // Logged once per episode by the log directory.
            Err(_) => Reply::failure(&self.name),
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

    fn resolve_now(&self, query: &Query) -> Option<Resolution> {
        self.resolver.at_once(query)
    }

    fn resolve_later(&self, query: Query, then: Then) {
        self.resolver.resolve_then(query, then)
    }

    fn held(&self) -> usize {
        self.resolver.max_pending()
    }
}
