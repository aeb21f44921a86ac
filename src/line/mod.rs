//! The line protocol: one text line a request (`TAG, NAME, MODE`), one a reply
//! (`CODE, SERVER, TEXT`), typed with `nc`. A view of the resolution model, beside DNS.
//!
//! - [`frame`]: bytes to bounded lines (and the original's unterminated messages).
//! - [`message`]: the meaning of a line: typed requests, replies and codes.
//! - [`view`]: a request as a model query, a resolution as a reply, and back.
//! - [`session`]: the one request loop every server runs on a connection.
//! - [`client`]: the client side, written once ([`client::Client`]) and `dnsd client`.
//! - [`pool`]: the client as a server's way upstream, connections pooled.

pub mod client;
pub mod frame;
pub mod message;
pub mod pool;
pub mod session;
pub mod view;
