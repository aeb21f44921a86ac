//! Operations: what keeps a server running and observable.

pub mod diagnostics;
pub mod fds;
pub mod metrics;
pub mod querylog;
pub mod reload;
