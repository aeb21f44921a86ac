//! The errors that end a command, and the exit code each maps to.
//!
//! The kinds a caller branches on are types: a bad argument or setting is a
//! [`ConfigError`], a bad data file a [`FileError`], a server that cannot bind a
//! [`BindError`]. `dnsd` prints an error with [`Error::report`] and exits with
//! [`Error::exit_code`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::line::client::SessionError;
use crate::line::message::BadServerName;
use crate::model::name::NameError;
use crate::tools::trace::TraceError;
use crate::zone::FileError;

/// Why a `dnsd` command stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad data file: `FILE:LINE: what is wrong`. Exit 2.
    #[error(transparent)]
    File(#[from] FileError),
    /// A bad argument or setting that the parser could not catch. Exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Files found bad (`dnsd check`), each problem already reported as `FILE:LINE`:
    /// how many problems, in how many of the files checked. Exit 2.
    #[error("{} in {bad_files} of {}", count(*.problems, "problem"), count(*.files, "file"))]
    BadFiles {
        problems: usize,
        bad_files: usize,
        files: usize,
    },
    /// A server could not bind its address. Exit 1.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// `dnsd client` lost its server, or its input or output. Exit 1.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// `dnsd trace` got no usable answer from a hop, or could not print. Exit 1.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// `dnsd bench` measured a server that answered nothing. Exit 1.
    #[error("{server}: no query was answered")]
    NoneAnswered { server: SocketAddr },
    /// Any other failure at run time. Exit 1.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// 2 for bad usage or a bad file, 1 for a failure at run time.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::File(_) | Error::Config(_) | Error::BadFiles { .. } => 2,
            Error::Bind(_)
            | Error::Session(_)
            | Error::Trace(_)
            | Error::NoneAnswered { .. }
            | Error::Io { .. } => 1,
        }
    }

    /// What `dnsd` prints: `error: ...`, then a `  caused by: ...` line for each cause
    /// that the lines before do not already say.
    pub fn report(&self) -> Report<'_> {
        Report(self)
    }
}

/// An error and its causes, as `dnsd` prints them (see [`Error::report`]).
pub struct Report<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        write!(f, "error: {said}")?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            let text = err.to_string();
            if !said.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
                said.push('\n');
                said.push_str(&text);
            }
            cause = err.source();
        }
        Ok(())
    }
}

/// A bad argument or setting: what was given, and why it cannot be used. Exit 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--name`: the name a server replies under.
    #[error("--name {name:?}: {source}")]
    ServerName { name: String, source: BadServerName },
    /// The TLD a server is to serve.
    #[error("bad TLD {tld:?}: {source}")]
    Tld { tld: String, source: NameError },
    /// An authoritative server that would publish 0.0.0.0 or `::` as its name
    /// server's address.
    #[error(
        "{flag} {bind}: an authoritative server publishes its own address (ns.root, \
         ns.<tld>: the glue resolvers reach it by), and {bind} reaches no one: give \
         --advertise IP, the address clients reach this server at"
    )]
    Unpublishable {
        bind: std::net::IpAddr,
        flag: &'static str,
    },
    /// A TLD server with no `--port` whose TLD has no default port.
    #[error("no default port for TLD {tld}: give --port")]
    NoDefaultPort { tld: String },
    /// `dnsd client`'s id, which would name its log file at the server.
    #[error(
        "bad client id {id:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'"
    )]
    ClientId { id: String },
    /// A name to follow (`dnsd trace`).
    #[error("bad name {name:?}: {source}")]
    Name { name: String, source: NameError },
    /// A server address that does not resolve (`dnsd bench --server`).
    #[error("--server {server}: {source}")]
    Server {
        server: String,
        source: std::io::Error,
    },
    /// A `--names` file without a name in it.
    #[error("{}: no names in it", .path.display())]
    NoNames { path: PathBuf },
    /// `--user NAME` names no user of this machine.
    #[error("--user {name}: no such user")]
    NoSuchUser { name: String },
    /// After `--user`, the log directory (or a log in it) is not writable.
    #[error(
        "--user {user}: cannot write {paths}: give them to that user (chown) or choose \
         another --log-dir"
    )]
    LogsNotWritable { user: String, paths: String },
    /// `dnsd check` with nothing to check.
    #[error("no file to check: give FILE..., --root FILE or --zone FILE")]
    NoFiles,
    /// A zones directory (`--zones`; `None`: the built-in zones) without a root table.
    #[error("{}: no root.toml or root.dat (the root table)", zones_dir(.dir))]
    NoRootTable { dir: Option<PathBuf> },
    /// A zones directory without the zone of a TLD its root table lists.
    #[error("{}: no {tld}.toml or {tld}.dat (listed in the root table)", zones_dir(.dir))]
    NoZone { dir: Option<PathBuf>, tld: String },
    /// `--max-connections` beyond what the open-file limit can hold: `connections` in
    /// all need up to `need` descriptors (`margin` of them beyond the connections').
    #[error(
        "--max-connections: {connections} connections need up to {need} file descriptors \
         (2 per client at the local server, 1 at root and TLD servers, {margin} more), \
         but this process may open only {limit} (the hard limit, `ulimit -Hn`): lower \
         --max-connections or raise the hard limit"
    )]
    TooManyConnections {
        connections: usize,
        need: u64,
        margin: u64,
        limit: u64,
    },
}

/// `3 problems`, `1 file`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A zones directory as errors name it: the built-in zones have none.
fn zones_dir(dir: &Option<PathBuf>) -> String {
    dir.as_ref()
        .map_or_else(|| "(built-in)".to_owned(), |d| d.display().to_string())
}

/// A server could not bind its address; names the address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message leaves its cause out.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_report_adds_only_causes_not_already_said() {
        let bind = Error::Bind(BindError {
            addr: "127.0.0.1:53".parse().unwrap(),
            source: std::io::Error::other("address in use"),
        });
        assert_eq!(
            bind.report().to_string(),
            "error: cannot listen on 127.0.0.1:53: address in use"
        );
        let outer = Outer(std::io::Error::other("no such file"));
        assert_eq!(
            Report(&outer).to_string(),
            "error: cannot start\n  caused by: no such file"
        );
    }

    #[test]
    fn bad_files_counts_in_words() {
        let one = Error::BadFiles {
            problems: 1,
            bad_files: 1,
            files: 2,
        };
        assert_eq!(one.to_string(), "1 problem in 1 of 2 files");
        let many = Error::BadFiles {
            problems: 3,
            bad_files: 2,
            files: 1,
        };
        assert_eq!(many.to_string(), "3 problems in 2 of 1 file");
        assert_eq!(many.exit_code(), 2);
    }

    #[test]
    fn zones_without_a_directory_are_the_built_in_ones() {
        let e = ConfigError::NoZone {
            dir: None,
            tld: "com".into(),
        };
        assert_eq!(
            e.to_string(),
            "(built-in): no com.toml or com.dat (listed in the root table)"
        );
    }
}
