//! Reloading a server's data without a restart (SIGHUP): the root's table, a TLD
//! server's zone, the local server's `--cache` files.
//!
//! The data a resolver reads sits in a [`Swap`]: a query takes one uncontended read
//! lock and answers from that snapshot (holding the lock for a lookup, never across
//! I/O, or cloning the `Arc` to keep it longer); a reload
//! parses the file first, away from any lock, and swaps the new data in at once. Open
//! connections keep being served throughout, and a query sees the old data or the new,
//! never a mixture. A file that fails to load leaves the old data serving, and the error
//! is logged as `FILE:LINE: what is wrong`.
//!
//! Each server gets a [`Reload`] (its name, where its data comes from, and how to swap
//! it in); a [`Reloader`] holds those of every server in a process and reloads them all.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use crate::model::name::Name;
use crate::ops::metrics::ServerMetrics;
use crate::sync::lock;
use crate::zone::{FileError, RootTable, Zone, ZoneFile, ZoneSet};

/// Data that a reload may replace while queries read it: `load` is one read lock and
/// an `Arc` clone; `store` swaps new data in for the queries that follow.
#[derive(Debug)]
pub struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    pub fn new(value: T) -> Swap<T> {
        Swap(RwLock::new(Arc::new(value)))
    }

    /// The current data, a snapshot that a later `store` does not change.
    pub fn load(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current data for as long as the guard lives: no `Arc` clone (two atomic
    /// operations on a line every thread shares), for lookups that hold it briefly and
    /// never across I/O. A `store` waits for the guard to go.
    pub fn read(&self) -> RwLockReadGuard<'_, Arc<T>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the data; queries already holding a snapshot finish with it.
    pub fn store(&self, value: T) {
        let new = Arc::new(value);
        // The old data is dropped after the lock is released.
        let _old = std::mem::replace(&mut *self.0.write().unwrap_or_else(|e| e.into_inner()), new);
    }
}

/// Where a server's data comes from, and how to read it again: the files (for the log
/// line) and a function that reads and checks them.
pub struct Source<T> {
    /// The files, as the log line names them.
    pub files: String,
    load: Arc<dyn Fn() -> Result<T, FileError> + Send + Sync>,
}

impl<T> Clone for Source<T> {
    fn clone(&self) -> Self {
        Source {
            files: self.files.clone(),
            load: self.load.clone(),
        }
    }
}

impl<T> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({})", self.files)
    }
}

impl<T: 'static> Source<T> {
    /// Data read by `load`, from the files named `files`.
    pub fn new(
        files: impl Into<String>,
        load: impl Fn() -> Result<T, FileError> + Send + Sync + 'static,
    ) -> Source<T> {
        Source {
            files: files.into(),
            load: Arc::new(load),
        }
    }

    /// Reads the data.
    pub fn load(&self) -> Result<T, FileError> {
        (self.load)()
    }

    /// The same files, their data changed by `f` after each read (the root of `dnsd up`
    /// keeps the addresses its TLD servers actually got).
    pub fn map(self, f: impl Fn(T) -> T + Send + Sync + 'static) -> Source<T> {
        let load = self.load;
        Source {
            files: self.files,
            load: Arc::new(move || load().map(&f)),
        }
    }
}

impl<T: 'static> Source<T> {
    /// The same files, their data turned into a `U` (an address zone into a
    /// [`ZoneFile`]).
    pub fn convert<U: From<T>>(self) -> Source<U> {
        let load = self.load;
        Source {
            files: self.files,
            load: Arc::new(move || load().map(U::from)),
        }
    }
}

impl Source<ZoneSet> {
    /// The zone `origin`'s file: a master file (`.zone`) or an address file.
    pub fn tld_file(path: PathBuf, origin: Name) -> Source<ZoneSet> {
        Source::new(path.display().to_string(), move || {
            ZoneFile::load(&path, &origin).map(ZoneSet::from)
        })
    }

    /// Master files, a zone each.
    pub fn master_files(paths: Vec<PathBuf>) -> Source<ZoneSet> {
        let files = joined(&paths);
        Source::new(files, move || ZoneSet::load_masters(&paths))
    }
}

/// Paths as a reload names them: `a.dat, b.dat`.
fn joined(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Source<Zone> {
    /// A zone (or cache) file.
    pub fn zone_file(path: PathBuf) -> Source<Zone> {
        Source::new(path.display().to_string(), move || Zone::load(&path))
    }

    /// The local server's `--cache` files, merged in order (a later file's name wins).
    pub fn cache_files(paths: Vec<PathBuf>) -> Source<Zone> {
        let files = joined(&paths);
        Source::new(files, move || {
            let mut cache = Zone::default();
            for path in &paths {
                cache.extend(Zone::load(path)?);
            }
            Ok(cache)
        })
    }
}

impl Source<RootTable> {
    /// A root table file.
    pub fn table_file(path: PathBuf) -> Source<RootTable> {
        Source::new(path.display().to_string(), move || RootTable::load(&path))
    }
}

/// What a reload says it loaded: `3 names`, `4 TLDs`.
pub trait Summary {
    fn summary(&self) -> String;
}

impl Summary for Zone {
    fn summary(&self) -> String {
        format!("{} names", self.len())
    }
}

impl Summary for ZoneSet {
    fn summary(&self) -> String {
        ZoneSet::summary(self)
    }
}

impl Summary for RootTable {
    fn summary(&self) -> String {
        format!("{} TLDs", self.len())
    }
}

/// One server's reload: its name, its source (none when its data is built in or given
/// in code), and how new data is swapped in. Cheap to clone.
#[derive(Clone)]
pub struct Reload {
    name: String,
    files: Option<String>,
    run: Option<Arc<dyn Fn() -> Result<String, FileError> + Send + Sync>>,
    metrics: ServerMetrics,
}

impl fmt::Debug for Reload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reload({}, {:?})", self.name, self.files)
    }
}

/// What a reload did.
#[derive(Debug)]
pub enum Reloaded {
    /// The data was re-read and swapped in: a summary (`3 names`).
    Done(String),
    /// The file failed to load; the old data still serves.
    Failed(FileError),
    /// The server's data is not from files.
    Nothing,
}

impl Reload {
    /// Reads `source` on each reload and hands the new data to `store`.
    pub fn new<T: Summary + 'static>(
        name: &str,
        source: Option<Source<T>>,
        store: impl Fn(T) + Send + Sync + 'static,
    ) -> Reload {
        let files = source.as_ref().map(|s| s.files.clone());
        let run = source.map(|source| {
            Arc::new(move || {
                let data = source.load()?;
                let summary = data.summary();
                store(data);
                Ok(summary)
            }) as Arc<dyn Fn() -> Result<String, FileError> + Send + Sync>
        });
        Reload {
            name: name.to_owned(),
            files,
            run,
            metrics: ServerMetrics::DISABLED,
        }
    }

    /// Counts each reload, done or failed, in `metrics` (one with nothing to re-read is
    /// neither).
    pub fn with_metrics(mut self, metrics: ServerMetrics) -> Reload {
        self.metrics = metrics;
        self
    }

    /// Re-reads the server's files and swaps the data in, or keeps the old data if they
    /// fail to load; logs what happened:
    /// `com: reloaded zones/com.dat (7 names)`,
    /// `com: reload failed, still serving the old data: zones/com.dat:3: ...`, or
    /// `com: nothing to re-read (its data is built in, not read from a file)`.
    pub fn reload(&self) -> Reloaded {
        let (Some(run), Some(files)) = (&self.run, &self.files) else {
            log::info!(
                "{}: nothing to re-read (its data is built in, not read from a file)",
                self.name
            );
            return Reloaded::Nothing;
        };
        match run() {
            Ok(summary) => {
                self.metrics.reload(true);
                log::info!("{}: reloaded {files} ({summary})", self.name);
                Reloaded::Done(summary)
            }
            Err(e) => {
                self.metrics.reload(false);
                log::error!(
                    "{}: reload failed, still serving the old data: {e}",
                    self.name
                );
                Reloaded::Failed(e)
            }
        }
    }
}

/// The reloads of every server in a process, filled in once they have started (a
/// SIGHUP that comes earlier is done then).
#[derive(Clone, Default)]
pub struct Reloader(Arc<Mutex<Servers>>);

/// The servers a [`Reloader`] reloads, once they have started, and whether a reload was
/// asked for before they had.
#[derive(Default)]
struct Servers {
    reloads: Option<Vec<Reload>>,
    pending: bool,
}

impl Reloader {
    pub fn new() -> Reloader {
        Reloader::default()
    }

    /// The servers to reload from now on. A reload asked for while they were starting
    /// (a SIGHUP between the first `listening on` line and this call) is done now: a
    /// signal is never lost.
    pub fn set(&self, reloads: Vec<Reload>) {
        let pending = {
            let mut servers = lock(&self.0);
            servers.reloads = Some(reloads);
            std::mem::take(&mut servers.pending)
        };
        if pending {
            self.reload_all();
        }
    }

    /// Reloads every server, one after the other; before they have started, remembers
    /// to once they have.
    pub fn reload_all(&self) {
        let reloads = {
            let mut servers = lock(&self.0);
            match &servers.reloads {
                Some(reloads) => reloads.clone(),
                None => {
                    servers.pending = true;
                    log::info!("reload asked for while the servers start: done once they have");
                    return;
                }
            }
        };
        for reload in &reloads {
            reload.reload();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_outlives_a_store() {
        let swap = Swap::new(1);
        let before = swap.load();
        swap.store(2);
        assert_eq!((*before, *swap.load()), (1, 2));
    }

    #[test]
    fn a_failed_reload_keeps_the_old_data() {
        let swap = Arc::new(Swap::new("a.com 1.1.1.1".parse::<Zone>().unwrap()));
        let text = Arc::new(RwLock::new("a.com 2.2.2.2\n".to_owned()));
        let t = text.clone();
        let source = Source::new("z", move || t.read().unwrap().parse::<Zone>());
        let s = swap.clone();
        let reload = Reload::new("com", Some(source), move |z| s.store(z));
        assert!(matches!(reload.reload(), Reloaded::Done(n) if n == "1 names"));
        assert_eq!(swap.load().get("a.com"), Some("2.2.2.2".parse().unwrap()));
        *text.write().unwrap() = "a.com 2.2.2.2\nb.com nope\n".to_owned();
        let Reloaded::Failed(e) = reload.reload() else {
            panic!("a bad file was loaded")
        };
        assert_eq!(e.line, 2);
        assert_eq!(swap.load().get("a.com"), Some("2.2.2.2".parse().unwrap()));
        let none = Reload::new::<Zone>("com", None, |_| {});
        assert!(matches!(none.reload(), Reloaded::Nothing));
    }

    /// Regression: a SIGHUP between the servers' start and `set` was ignored (a test
    /// that waited for `listening on` and then sent it saw no reload, now and then).
    #[test]
    fn a_reload_asked_for_while_the_servers_start_is_done_once_they_have() {
        let swap = Arc::new(Swap::new(Zone::default()));
        let source = Source::new("z", || "a.com 1.1.1.1".parse::<Zone>());
        let s = swap.clone();
        let reload = Reload::new("com", Some(source), move |z| s.store(z));
        let reloader = Reloader::new();
        reloader.reload_all();
        assert!(swap.load().is_empty());
        reloader.set(vec![reload]);
        assert_eq!(swap.load().get("a.com"), Some("1.1.1.1".parse().unwrap()));
    }
}
