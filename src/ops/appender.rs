//! A log file appended to one whole record at a time: what every log dnsd writes
//! (`mapping.log`, client logs, `queries.log`, `--log-file`) is written through.
//!
//! Three promises, the ones an operator who leaves dnsd running for a month needs:
//!
//! - **Whole records or nothing.** A record is handed to the OS in one `write`; when the
//!   OS takes only part of it (a full disk takes what fits in its last free block) and
//!   then refuses the rest, the part written is cut back (`ftruncate`), so nothing that
//!   reads the file — `--warm`, `grep`, a person — ever finds a torn line.
//! - **Reopened on request.** [`reopen_all`] (SIGUSR1 and SIGHUP) asks every appender in
//!   the process to open its file again, by its path, before its next record: after
//!   logrotate has moved `mapping.log` away, the next record starts a new `mapping.log`.
//!   Records written before the signal go on into the moved file, so none is lost and
//!   none written twice.
//! - **Not world-readable.** Files are created with mode 0640 (less what the umask
//!   removes): client logs say who asked what.
//!
//! Several appenders may write one file (the sessions of one client id): each record is
//! one `write` on a descriptor opened for appending, which the kernel never interleaves
//! with another's. A cut-back first checks that the file still ends with the part it
//! wrote, so it never cuts another writer's record (on a full disk, another writer's
//! append fails too: nothing lands after the torn part).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The mode new log files are created with (before the umask).
pub const FILE_MODE: u32 = 0o640;

/// Bumped by [`reopen_all`]; an appender that has seen an older value reopens.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Asks every log file of the process to be reopened by its path before its next record
/// (what SIGUSR1 and SIGHUP do, for logrotate).
pub fn reopen_all() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Opens `path` for appending (and reading: a cut-back reads what it would cut),
/// creating it with [`FILE_MODE`].
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// One log file, opened on its first record (a client that asks nothing makes no file)
/// and again after [`reopen_all`].
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    file: Option<File>,
    /// The [`GENERATION`] `file` was opened in.
    opened_in: u64,
}

impl Appender {
    /// An appender for `path`; nothing is opened yet.
    pub fn new(path: impl Into<PathBuf>) -> Appender {
        Appender {
            path: path.into(),
            file: None,
            opened_in: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file: the next record opens it again (after a compaction has put a new
    /// file at the path).
    pub fn close(&mut self) {
        self.file = None;
    }

    /// Appends `record` whole, or not at all (see the module's doc).
    pub fn append(&mut self, record: &[u8]) -> io::Result<()> {
        let now = generation();
        let file = match &mut self.file {
            Some(file) if self.opened_in == now => file,
            _ => {
                self.file = None;
                let file = open_append(&self.path)?;
                self.opened_in = now;
                self.file.insert(file)
            }
        };
        write_whole(file, record)
    }
}

/// Writes `record` to `file` (opened for appending) in as few writes as the OS allows;
/// if a write fails part way, truncates the file back by what was written of it.
pub fn write_whole(mut file: &File, record: &[u8]) -> io::Result<()> {
    let mut written = 0;
    let failure = loop {
        if written == record.len() {
            return Ok(());
        }
        match file.write(&record[written..]) {
            Ok(0) => break io::Error::from(io::ErrorKind::WriteZero),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e,
        }
    };
    if written > 0 {
        if let Err(e) = cut_back(file, &record[..written]) {
            return Err(io::Error::new(
                failure.kind(),
                format!("{failure}; and cutting back the {written} bytes written failed: {e}"),
            ));
        }
    }
    Err(failure)
}

/// Truncates `file` by `part`, the start of a record it was just given, if the file
/// still ends with it (appended: it was its last bytes, unless another writer has
/// appended since).
fn cut_back(file: &File, part: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let start = len
        .checked_sub(part.len() as u64)
        .ok_or_else(|| io::Error::other("the file is shorter than what was written"))?;
    let mut tail = vec![0; part.len()];
    file.read_exact_at(&mut tail, start)?;
    if tail != part {
        return Err(io::Error::other("another writer appended after it"));
    }
    file.set_len(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_go_to_a_new_file_after_reopen_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut log = Appender::new(&path);
        log.append(b"one\n").unwrap();
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        log.append(b"two\n").unwrap();
        reopen_all();
        log.append(b"three\n").unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("a.log.1"), "one\ntwo\n");
        assert_eq!(read("a.log"), "three\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077 & !0o040, 0, "{mode:o}");
    }

    /// A part written is cut back only while the file still ends with it.
    #[test]
    fn a_cut_back_takes_only_its_own_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let file = open_append(&path).unwrap();
        write_whole(&file, b"whole\ntor").unwrap();
        cut_back(&file, b"tor").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole\n");
        write_whole(&file, b"tor").unwrap();
        write_whole(&file, b"other\n").unwrap();
        assert!(cut_back(&file, b"tor").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"whole\ntorother\n");
    }

    /// /dev/full takes nothing: the error comes back and the file is as it was.
    #[test]
    fn a_failed_record_is_an_error() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let mut log = Appender::new("/dev/full");
        assert!(log.append(b"x\n").is_err());
    }
}
