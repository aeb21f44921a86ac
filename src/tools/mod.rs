//! The tools beside the servers.

pub mod bench;
pub mod check;
pub mod trace;
