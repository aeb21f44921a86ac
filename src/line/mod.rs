//! The line protocol: one text line a request, one a reply, typed with `nc`.

pub mod client;
pub mod frame;
pub mod message;
