//! Diagnostic logging (`RUST_LOG`, default `info`) that does not hold up queries.
//!
//! Every server logs one line per query, so this is on the hot path. A record is
//! formatted on the calling thread (env_logger's layout: `[TIME LEVEL target] message`)
//! and put on a bounded lock-free queue; a background thread wakes every few
//! milliseconds and writes what has queued up to stderr, in one `write` per batch.
//! Nobody waits for stderr, nobody takes a lock shared with other connections (a shared
//! buffer under a mutex made connections wait on each other), and nobody is woken per
//! record. If stderr stops draining, the queue stops at [`MAX_PENDING`] lines and
//! further lines are counted as dropped instead.
//! [`flush`] writes out everything logged so far (used at exit).
//!
//! Filtering is env_logger's: `RUST_LOG=debug`, `RUST_LOG=dnsd::server=warn`, ...
//! The per-query lines have a target of their own, [`QUERY_TARGET`] (`dnsd::query`): a
//! standalone server leaves them out unless `RUST_LOG` asks for them (at full load they
//! would be tens of megabytes a second), and `dnsd up`, where a learner watches queries
//! flow, shows them ([`Settings`]).
//!
//! With `--log-file FILE` the lines go to that file instead of stderr, appended whole
//! ([`Appender`]) and reopened after SIGUSR1 or SIGHUP, as the query logs are.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{Log, Metadata, Record};

use crate::ops::appender::Appender;
use crate::ops::querylog::Utc;

/// The log target of the one line per query every server writes.
pub const QUERY_TARGET: &str = "dnsd::query";

/// Where diagnostics go and what is shown by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// A file to append them to instead of stderr (`--log-file`).
    pub log_file: Option<std::path::PathBuf>,
    /// Whether the per-query lines are shown when `RUST_LOG` is not set (`dnsd up`).
    pub queries: bool,
}

impl Settings {
    /// The filter used when `RUST_LOG` is not set.
    pub fn default_filter(&self) -> &'static str {
        if self.queries {
            "info"
        } else {
            "info,dnsd::query=warn"
        }
    }
}

/// Queued lines past which new lines are dropped rather than buffered.
pub const MAX_PENDING: usize = 65_536;
/// How often the writer thread drains the buffer.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

struct Logger {
    filter: env_logger::Logger,
    queue: Sender<Vec<u8>>,
    pending: Receiver<Vec<u8>>,
    /// Held while writing, so batches come out in order; the `--log-file`, if any.
    writing: Mutex<Option<Appender>>,
    dropped: AtomicU64,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

thread_local! {
    /// The formatted second (`2026-11-25T18:37:00`), remade once a second.
    static STAMP: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = Vec::with_capacity(160);
        STAMP.with(|s| {
            let (second, stamp) = &mut *s.borrow_mut();
            if now.as_secs() != *second {
                *second = now.as_secs();
                // `YYYY-MM-DDTHH:MM:SS`: the milliseconds and the `Z` follow.
                let mut text = Utc(*second).to_string();
                text.pop();
                *stamp = text;
            }
            let _ = writeln!(
                line,
                "[{stamp}.{:03}Z {:<5} {}] {}",
                now.subsec_millis(),
                record.level(),
                record.target(),
                record.args()
            );
        });
        if let Err(TrySendError::Full(_)) = self.queue.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {
        let mut writing = crate::sync::lock(&self.writing);
        let mut batch = Vec::new();
        for line in self.pending.try_iter().take(MAX_PENDING) {
            batch.extend_from_slice(&line);
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                batch,
                "[dnsd] {dropped} log line(s) dropped: the log was not keeping up"
            );
        }
        if batch.is_empty() {
            return;
        }
        match &mut *writing {
            // A batch that cannot be written whole is cut back and lost, as lines
            // dropped are: diagnostics never hold up a query.
            Some(file) => {
                let _ = file.append(&batch);
            }
            None => {
                let _ = std::io::stderr().lock().write_all(&batch);
            }
        }
    }
}

/// Installs the logger with the default settings (stderr, per-query lines shown).
pub fn init() {
    let _ = init_with(&Settings {
        log_file: None,
        queries: true,
    });
}

/// Installs the logger: `RUST_LOG` if set, else [`Settings::default_filter`]; to the
/// `--log-file` if given (created, or an error if it cannot be), else stderr. Safe to
/// call more than once: the first call's settings stay.
pub fn init_with(settings: &Settings) -> std::io::Result<()> {
    let file = match &settings.log_file {
        Some(path) => {
            // Opened now, so that a bad path is an error at start, not a silence.
            drop(crate::ops::appender::open_append(path)?);
            Some(Appender::new(path))
        }
        None => None,
    };
    let filter = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(settings.default_filter()),
    )
    .build();
    let max = filter.filter();
    let (queue, pending) = crossbeam_channel::bounded(MAX_PENDING);
    let logger = Logger {
        filter,
        queue,
        pending,
        writing: Mutex::new(file),
        dropped: AtomicU64::new(0),
    };
    if LOGGER.set(logger).is_err() {
        return Ok(());
    }
    let Some(logger) = LOGGER.get() else {
        return Ok(());
    };
    if log::set_logger(logger).is_err() {
        return Ok(());
    }
    log::set_max_level(max);
    let _ = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(|| loop {
            std::thread::sleep(DRAIN_EVERY);
            if let Some(logger) = LOGGER.get() {
                logger.flush();
            }
        });
    Ok(())
}

/// Writes out every record logged so far.
pub fn flush() {
    log::logger().flush();
}
