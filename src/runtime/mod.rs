//! Starting servers.

pub mod hierarchy;
pub mod lab;
