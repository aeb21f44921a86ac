//! Operations: what keeps a server running and observable.

pub mod appender;
pub mod diagnostics;
pub mod fds;
pub mod metrics;
pub mod privileges;
pub mod querylog;
pub mod reload;
