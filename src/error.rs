//! The errors that end a command, and the exit code each maps to.

use std::net::SocketAddr;

use crate::zone::FileError;

/// Why a `dnsd` command stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad data file: `FILE:LINE: what is wrong`. Exit 2.
    #[error(transparent)]
    File(#[from] FileError),
    /// A bad argument that the parser could not catch. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// Files found bad (`dnsd check`), each problem already reported as `FILE:LINE`:
    /// the summary. Exit 2.
    #[error("{0}")]
    BadFiles(String),
    /// A server could not bind its address. Exit 1.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Any other failure at run time. Exit 1.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A failure at run time described by a message. Exit 1.
    #[error("{0}")]
    Runtime(String),
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
            Error::File(_) | Error::Usage(_) | Error::BadFiles(_) => 2,
            Error::Bind(_) | Error::Io { .. } | Error::Runtime(_) => 1,
        }
    }
}

/// A server could not bind its address; names the address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
