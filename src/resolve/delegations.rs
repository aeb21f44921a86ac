//! The local server's delegation cache: which name servers answer for a zone below the
//! root, learned from referrals and kept for their TTL.
//!
//! Without it every miss starts at the root, even right after the root referred the
//! same TLD. With it, as in real resolvers (and in Kurose and Ross: local DNS servers
//! cache TLD servers' addresses, so the root is often bypassed), a miss starts at the
//! deepest zone above the name whose servers are known, and the root is asked only for
//! TLDs not yet seen, or once their delegation has expired.
//!
//! A handle over one short lock (never held while anyone is asked), taking the time as
//! an argument, bounded in zones: past [`DEFAULT_CAPACITY`] the least recently used
//! zone goes first.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::name::Name;
use crate::model::NameServer;
use crate::sync::lock;

/// Zones kept at most: a resolver meets far fewer zones than names (one per TLD and one
/// per domain delegated below it), and a flood of names under new zones must not grow
/// the cache without end.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One zone's delegation, as the cache hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    pub zone: Name,
    /// Its name servers (shared: handing a delegation out copies no list).
    pub servers: Arc<[NameServer]>,
    /// The server whose referral taught it.
    pub from: SocketAddr,
    /// When it stops being used.
    pub expires: Instant,
}

impl Delegation {
    /// How long it is still kept, from `now`.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires.saturating_duration_since(now)
    }
}

/// The delegations learned, by zone (see the module's doc).
#[derive(Debug)]
pub struct Delegations {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    zones: HashMap<Box<str>, Entry>,
    /// The zones by when they were last used, oldest first: the next to evict.
    by_use: BTreeMap<u64, Box<str>>,
    /// The last use's number: every use takes the next.
    uses: u64,
    capacity: usize,
}

#[derive(Debug)]
struct Entry {
    delegation: Delegation,
    used: u64,
}

impl Delegations {
    /// An empty cache holding at most `capacity` zones.
    pub fn new(capacity: usize) -> Delegations {
        Delegations {
            inner: Mutex::new(Inner {
                zones: HashMap::new(),
                by_use: BTreeMap::new(),
                uses: 0,
                capacity,
            }),
        }
    }

    /// The delegation of the deepest zone that is `name` or above it (never the root:
    /// that is where resolution starts without one), if one is known and current at
    /// `now`. Expired ones met on the way are dropped.
    pub fn closest(&self, name: &Name, now: Instant) -> Option<Delegation> {
        let mut inner = lock(&self.inner);
        let Inner {
            zones,
            by_use,
            uses,
            ..
        } = &mut *inner;
        let mut zone = name.as_str();
        while !zone.is_empty() {
            if let Some(entry) = zones.get_mut(zone) {
                if entry.delegation.expires > now {
                    *uses += 1;
                    if let Some(key) = by_use.remove(&entry.used) {
                        by_use.insert(*uses, key);
                    }
                    entry.used = *uses;
                    return Some(entry.delegation.clone());
                }
                let used = entry.used;
                zones.remove(zone);
                by_use.remove(&used);
            }
            zone = zone.split_once('.').map_or("", |(_, parent)| parent);
        }
        None
    }

    /// Keeps `zone` delegated to `servers` (as `from` referred it) for `ttl` seconds from
    /// `now`, in place of what was known of it. A TTL of 0, or a referral with no
    /// server, is not kept. Returns whether another zone was evicted to make room.
    pub fn insert(
        &self,
        zone: &Name,
        servers: Arc<[NameServer]>,
        from: SocketAddr,
        ttl: u32,
        now: Instant,
    ) -> bool {
        if ttl == 0 || servers.is_empty() || zone.is_root() {
            return false;
        }
        let mut inner = lock(&self.inner);
        if inner.capacity == 0 {
            return false;
        }
        inner.remove(zone.as_str());
        let evicted = inner.zones.len() >= inner.capacity;
        if evicted {
            if let Some((_, oldest)) = inner.by_use.pop_first() {
                inner.zones.remove(&oldest);
            }
        }
        inner.uses += 1;
        let used = inner.uses;
        let key: Box<str> = zone.as_str().into();
        inner.by_use.insert(used, key.clone());
        let delegation = Delegation {
            zone: zone.clone(),
            servers,
            from,
            expires: now + Duration::from_secs(u64::from(ttl)),
        };
        inner.zones.insert(key, Entry { delegation, used });
        evicted
    }

    /// Adds `addrs`, looked up for name server `server` of `zone` (the referral gave
    /// none), to the delegation kept for `zone`, if it is still kept at `now`; it keeps
    /// its expiry.
    pub fn add_addresses(&self, zone: &Name, server: &Name, addrs: &[IpAddr], now: Instant) {
        let mut inner = lock(&self.inner);
        let Some(entry) = inner.zones.get_mut(zone.as_str()) else {
            return;
        };
        if entry.delegation.expires <= now {
            return;
        }
        let servers: Vec<NameServer> = entry
            .delegation
            .servers
            .iter()
            .map(|ns| {
                let mut ns = ns.clone();
                if &ns.name == server {
                    for ip in addrs {
                        if !ns.addrs.contains(ip) {
                            ns.addrs.push(*ip);
                        }
                    }
                }
                ns
            })
            .collect();
        entry.delegation.servers = servers.into();
    }

    /// The current delegations at `now` (up to `max`, by zone), for a person to look at.
    pub fn listing(&self, now: Instant, max: usize) -> Vec<Delegation> {
        let inner = lock(&self.inner);
        let mut all: Vec<Delegation> = inner
            .zones
            .values()
            .filter(|e| e.delegation.expires > now)
            .map(|e| e.delegation.clone())
            .collect();
        all.sort_by(|a, b| a.zone.as_str().cmp(b.zone.as_str()));
        all.truncate(max);
        all
    }

    /// Forgets the delegation of `zone`, or of every zone with `None`. Returns how many
    /// went.
    pub fn flush(&self, zone: Option<&Name>) -> usize {
        let mut inner = lock(&self.inner);
        match zone {
            Some(zone) => {
                let had = inner.zones.contains_key(zone.as_str());
                inner.remove(zone.as_str());
                usize::from(had)
            }
            None => {
                let zones = inner.zones.len();
                inner.zones.clear();
                inner.by_use.clear();
                zones
            }
        }
    }

    /// The zones kept (expired ones count until met).
    pub fn len(&self) -> usize {
        lock(&self.inner).zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn remove(&mut self, zone: &str) {
        if let Some(entry) = self.zones.remove(zone) {
            self.by_use.remove(&entry.used);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_wire(s)
    }

    fn servers(ns: &str, ip: &str) -> Arc<[NameServer]> {
        vec![NameServer {
            name: name(ns),
            port: 53,
            addrs: vec![ip.parse().unwrap()],
        }]
        .into()
    }

    const ROOT: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5353);

    #[test]
    fn the_deepest_zone_above_a_name_is_found() {
        let cache = Delegations::new(10);
        let t = Instant::now();
        cache.insert(&name("com"), servers("ns.com", "10.0.0.1"), ROOT, 60, t);
        cache.insert(
            &name("example.com"),
            servers("ns.example.com", "10.0.0.2"),
            ROOT,
            60,
            t,
        );
        let zone = |n: &str| cache.closest(&name(n), t).map(|d| d.zone.to_string());
        assert_eq!(zone("www.example.com").as_deref(), Some("example.com"));
        assert_eq!(zone("example.com").as_deref(), Some("example.com"));
        assert_eq!(zone("www.google.com").as_deref(), Some("com"));
        assert_eq!(zone("com").as_deref(), Some("com"));
        // Not a label boundary: `xample.com` is not under `example.com`.
        assert_eq!(zone("xample.com").as_deref(), Some("com"));
        assert_eq!(zone("nasa.gov"), None);
        assert_eq!(zone(""), None);
    }

    #[test]
    fn the_listing_shows_current_zones_and_a_flush_forgets_them() {
        let cache = Delegations::new(10);
        let t = Instant::now();
        cache.insert(&name("org"), servers("ns.org", "10.0.0.2"), ROOT, 60, t);
        cache.insert(&name("com"), servers("ns.com", "10.0.0.1"), ROOT, 10, t);
        let zones = |at| -> Vec<String> {
            cache
                .listing(at, 10)
                .iter()
                .map(|d| d.zone.to_string())
                .collect()
        };
        assert_eq!(zones(t), ["com", "org"]);
        assert_eq!(zones(t + Duration::from_secs(20)), ["org"]);
        assert_eq!(cache.flush(Some(&name("org"))), 1);
        assert_eq!(cache.flush(Some(&name("org"))), 0);
        assert_eq!(cache.flush(None), 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_delegation_expires_with_its_ttl() {
        let cache = Delegations::new(10);
        let t = Instant::now();
        cache.insert(&name("com"), servers("ns.com", "10.0.0.1"), ROOT, 60, t);
        let found = cache.closest(&name("a.com"), t + Duration::from_secs(59));
        assert_eq!(
            found.map(|d| d.remaining(t + Duration::from_secs(59))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            cache.closest(&name("a.com"), t + Duration::from_secs(60)),
            None
        );
        assert!(cache.is_empty(), "an expired delegation met is dropped");
        // A TTL of 0 is not kept at all.
        cache.insert(&name("com"), servers("ns.com", "10.0.0.1"), ROOT, 0, t);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_least_recently_used_zone_goes_first() {
        let cache = Delegations::new(2);
        let t = Instant::now();
        let ns = || servers("ns.x", "10.0.0.1");
        assert!(!cache.insert(&name("com"), ns(), ROOT, 60, t));
        assert!(!cache.insert(&name("org"), ns(), ROOT, 60, t));
        assert!(cache.closest(&name("a.com"), t).is_some());
        assert!(cache.insert(&name("gov"), ns(), ROOT, 60, t), "one evicted");
        assert_eq!(cache.len(), 2);
        assert!(
            cache.closest(&name("a.org"), t).is_none(),
            "org was the oldest"
        );
        assert!(cache.closest(&name("a.com"), t).is_some());
        assert!(cache.closest(&name("a.gov"), t).is_some());
        // Learning a zone again replaces it without evicting another.
        assert!(!cache.insert(&name("com"), servers("ns2.com", "10.0.0.9"), ROOT, 60, t));
        let com = cache.closest(&name("a.com"), t).unwrap();
        assert_eq!(com.servers[0].name.as_str(), "ns2.com");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn addresses_looked_up_later_join_the_delegation() {
        let cache = Delegations::new(10);
        let t = Instant::now();
        let glueless: Arc<[NameServer]> = vec![NameServer {
            name: name("ns.example.net"),
            port: 53,
            addrs: Vec::new(),
        }]
        .into();
        cache.insert(&name("example.com"), glueless, ROOT, 60, t);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        cache.add_addresses(&name("example.com"), &name("ns.example.net"), &[ip], t);
        let d = cache.closest(&name("www.example.com"), t).unwrap();
        assert_eq!(d.servers[0].addrs, [ip]);
        assert_eq!(d.expires, t + Duration::from_secs(60));
    }
}
