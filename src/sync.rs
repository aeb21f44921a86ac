//! Taking a lock that another thread's panic may have poisoned.
//!
//! Every mutex in dnsd guards state that stays usable after a panic elsewhere (a cache,
//! a pool of idle connections, a registry of open sockets): losing the server to a
//! poisoned lock would be worse than going on with what the lock holds.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking it over if a panic poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
