//! The local server's cache, shared by all its connections.
//!
//! Entries read from `--cache` files never expire and are never evicted; they are held
//! in an immutable map that needs no lock. Mappings learned from the hierarchy live for
//! the TTL, at most `capacity` of them, the least recently used going first; they sit
//! behind one short-held mutex, never held while talking to another server.
//! Time is an argument, so tests control expiry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::name::Name;
use crate::zone::Zone;

/// The cache handle: callers see `get` and `insert`, never the maps.
#[derive(Debug)]
pub struct Cache {
    fixed: Zone,
    learned: Mutex<Lru>,
    ttl: Duration,
}

impl Cache {
    /// A cache seeded with `fixed` entries, keeping up to `capacity` learned mappings
    /// for `ttl` each.
    pub fn new(fixed: Zone, ttl: Duration, capacity: usize) -> Cache {
        Cache {
            fixed,
            learned: Mutex::new(Lru::new(capacity)),
            ttl,
        }
    }

    /// The address for `name` (or, as in the original, for `www.` + name), if cached and
    /// not expired at `now`.
    pub fn get(&self, name: &Name, now: Instant) -> Option<IpAddr> {
        self.get_exact(name.as_str(), now).or_else(|| {
            name.www_alias()
                .and_then(|alias| self.get_exact(&alias, now))
        })
    }

    fn get_exact(&self, name: &str, now: Instant) -> Option<IpAddr> {
        if let Some(addr) = self.fixed.get(name) {
            return Some(addr);
        }
        self.lock().get(name, now)
    }

    /// Remembers a mapping learned from the hierarchy until `now + ttl`.
    pub fn insert(&self, name: &Name, addr: IpAddr, now: Instant) {
        if self.fixed.get(name.as_str()).is_some() {
            return;
        }
        let expires = now + self.ttl;
        self.lock().insert(name.as_str(), addr, expires);
    }

    /// How many learned mappings are held (expired ones may still count until touched).
    pub fn learned_len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn fixed_len(&self) -> usize {
        self.fixed.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        crate::sync::lock(&self.learned)
    }
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Node {
    key: Box<str>,
    addr: IpAddr,
    expires: Instant,
    prev: u32,
    next: u32,
}

/// A least-recently-used map: a slab of nodes in a doubly linked list (most recent at
/// the head), indexed by a `HashMap`.
#[derive(Debug)]
struct Lru {
    map: HashMap<Box<str>, u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    capacity: usize,
}

impl Lru {
    fn new(capacity: usize) -> Lru {
        // Capacity fits in u32 indices; anything larger is clamped.
        let capacity = capacity.min(NIL as usize - 1);
        Lru {
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
        }
    }

    fn get(&mut self, key: &str, now: Instant) -> Option<IpAddr> {
        let idx = *self.map.get(key)?;
        let node = &self.nodes[idx as usize];
        if node.expires <= now {
            self.remove(idx);
            return None;
        }
        let addr = node.addr;
        self.unlink(idx);
        self.push_front(idx);
        Some(addr)
    }

    fn insert(&mut self, key: &str, addr: IpAddr, expires: Instant) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&idx) = self.map.get(key) {
            let node = &mut self.nodes[idx as usize];
            node.addr = addr;
            node.expires = expires;
            self.unlink(idx);
            self.push_front(idx);
            return;
        }
        if self.map.len() >= self.capacity {
            self.remove(self.tail);
        }
        let node = Node {
            key: key.into(),
            addr,
            expires,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(key.into(), idx);
        self.push_front(idx);
    }

    fn remove(&mut self, idx: u32) {
        if idx == NIL {
            return;
        }
        self.unlink(idx);
        let key = std::mem::take(&mut self.nodes[idx as usize].key);
        self.map.remove(&key);
        self.free.push(idx);
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let n = &self.nodes[idx as usize];
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        let n = &mut self.nodes[idx as usize];
        n.prev = NIL;
        n.next = NIL;
    }

    fn push_front(&mut self, idx: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[idx as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old != NIL {
            self.nodes[old as usize].prev = idx;
        }
        self.head = idx;
        if self.tail == NIL {
            self.tail = idx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn learned_entries_expire() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(10), 10);
        let t0 = Instant::now();
        cache.insert(&name("www.a.com"), ip("1.1.1.1"), t0);
        assert_eq!(cache.get(&name("a.com"), t0), Some(ip("1.1.1.1")));
        assert_eq!(
            cache.get(&name("www.a.com"), t0 + Duration::from_secs(11)),
            None
        );
        assert_eq!(cache.learned_len(), 0);
    }

    #[test]
    fn fixed_entries_never_expire() {
        let mut zone = Zone::default();
        zone.insert(&name("www.a.com"), ip("1.1.1.1"));
        let cache = Cache::new(zone, Duration::from_secs(1), 10);
        let later = Instant::now() + Duration::from_secs(100_000);
        assert_eq!(cache.get(&name("a.com"), later), Some(ip("1.1.1.1")));
    }

    #[test]
    fn least_recently_used_goes_first() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(100), 2);
        let t = Instant::now();
        cache.insert(&name("a.com"), ip("1.0.0.1"), t);
        cache.insert(&name("b.com"), ip("1.0.0.2"), t);
        assert!(cache.get(&name("a.com"), t).is_some()); // a is now the most recent
        cache.insert(&name("c.com"), ip("1.0.0.3"), t);
        assert!(cache.get(&name("b.com"), t).is_none());
        assert!(cache.get(&name("a.com"), t).is_some());
        assert!(cache.get(&name("c.com"), t).is_some());
        assert_eq!(cache.learned_len(), 2);
    }

    #[test]
    fn bounded_under_many_names() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(100), 100);
        let t = Instant::now();
        for i in 0..10_000 {
            cache.insert(&name(&format!("h{i}.com")), ip("1.2.3.4"), t);
        }
        assert_eq!(cache.learned_len(), 100);
        assert!(cache.get(&name("h9999.com"), t).is_some());
        assert!(cache.get(&name("h0.com"), t).is_none());
    }
}
