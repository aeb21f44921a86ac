//! The local server's cache, shared by all its connections, and by both protocols: a
//! name learned over either is a hit for both.
//!
//! Entries read from `--cache` files never expire and are never evicted; they are held
//! in an immutable map that a reload swaps whole ([`Swap`]: one uncontended read lock
//! per query). What is learned from the hierarchy (answers,
//! and negative answers: NXDOMAIN and NODATA, RFC 2308) lives for the TTL it came with,
//! never longer than `--max-ttl`; it sits behind one short-held mutex, never held while
//! talking to another server. A hit carries the TTL that remains. Time is an argument,
//! so tests control expiry.
//!
//! What is learned is bounded three ways, the least recently used name going first when
//! either of the first two is reached: in names (`--cache-size`), in bytes
//! (`--cache-bytes`, an estimate of what each entry holds, as Unbound bounds its caches),
//! and per name, at [`MAX_KINDS_PER_NAME`] kinds of question (the oldest going first),
//! so that one name asked for thousands of types holds no more than any other, and a
//! lookup, which looks through one name's kinds under the lock, costs the same for
//! every name.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::name::Name;
use crate::model::{Outcome, QType, Query, RData, Record, Resolution};
use crate::ops::reload::Swap;
use crate::sync::lock;
use crate::zone::Zone;

/// The most kinds of question (query types, the line protocol's question, NXDOMAIN)
/// one name keeps answers for; past it the oldest answer goes. A name in real use has a
/// handful (A, AAAA, MX, TXT, ...).
pub const MAX_KINDS_PER_NAME: usize = 32;

/// The cache handle: callers see `get` and `insert`, never the maps.
#[derive(Debug)]
pub struct Cache {
    fixed: Swap<Zone>,
    learned: Mutex<Lru<Entry>>,
    /// The longest anything learned is kept, in whole seconds (at least 1).
    max_ttl: u32,
}

/// What is known of one name: an item per kind of question answered, the oldest first,
/// at most [`MAX_KINDS_PER_NAME`].
#[derive(Debug, Default)]
struct Entry(Vec<Item>);

#[derive(Debug)]
struct Item {
    kind: Kind,
    /// As learned, TTLs already capped at the cache's longest.
    outcome: Outcome,
    stored: Instant,
    expires: Instant,
    /// What it holds, in bytes ([`outcome_bytes`]).
    bytes: usize,
}

/// Which questions an item answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A DNS question of this type (an answer, or NODATA).
    Type(u16),
    /// The line protocol's question (the name's address).
    Address,
    /// The name does not exist: every question.
    NxDomain,
}

impl Cache {
    /// A cache seeded with `fixed` entries, keeping up to `capacity` learned names for
    /// their TTL, and never longer than `max_ttl`; no bound in bytes until
    /// [`with_max_bytes`](Self::with_max_bytes) sets one.
    pub fn new(fixed: Zone, max_ttl: Duration, capacity: usize) -> Cache {
        Cache {
            fixed: Swap::new(fixed),
            learned: Mutex::new(Lru::new(capacity, usize::MAX)),
            max_ttl: max_ttl.as_secs().clamp(1, u32::MAX as u64) as u32,
        }
    }

    /// Keeps what is learned within `max_bytes` (an estimate: each entry's records, the
    /// text of their names, and the bookkeeping around them).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Cache {
        self.learned
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .max_bytes = max_bytes;
        self
    }

    /// The answer to `query` if the cache has it at `now`, with the TTLs that remain.
    /// As in the original, a name with no entry of its own is also looked up as `www.`
    /// + name for the line protocol's question.
    pub fn get(&self, query: &Query, now: Instant) -> Option<Resolution> {
        // One snapshot of the fixed entries serves the whole lookup.
        let fixed = self.fixed.read();
        let found = if query.qtype == QType::Address {
            // The fixed entries first, the name's and then its `www.` form's: what was
            // learned of the name (com's NXDOMAIN for `example.com`, say) never hides
            // the fixed `www.example.com` the line protocol's question finds.
            query
                .name
                .or_www(|name| fixed_answer(&fixed, name, query.qtype))
                .or_else(|| {
                    query
                        .name
                        .or_www(|name| self.get_exact(&fixed, name, query.qtype, now))
                })
        } else {
            self.get_exact(&fixed, &query.name, query.qtype, now)
        }?;
        Some(Resolution::cached(found))
    }

    fn get_exact(&self, fixed: &Zone, name: &Name, qtype: QType, now: Instant) -> Option<Outcome> {
        if let Some(outcome) = fixed_answer(fixed, name, qtype) {
            return Some(outcome);
        }
        let mut learned = lock(&self.learned);
        let entry = learned.get(name.as_str(), now)?;
        // Expired items stay until the name's next insert; a lookup passes over them.
        let mut live = entry.0.iter().filter(|item| item.expires > now);
        let item = live.clone().find(|item| match item.kind {
            Kind::NxDomain => true,
            Kind::Type(t) => t == qtype.code() && qtype != QType::Address,
            Kind::Address => false,
        });
        if let Some(item) = item {
            return Some(item.remaining(now));
        }
        // An address learned by either protocol answers the other's question: the
        // first answer that holds one, its CNAMEs and addresses of the type asked.
        if !matches!(qtype, QType::Address | QType::A | QType::Aaaa) {
            return None;
        }
        let item = live.find(|item| {
            matches!(&item.outcome, Outcome::Answer(records)
                if records.iter().any(|r| qtype.matches(&r.data)))
        })?;
        let Outcome::Answer(records) = item.remaining_of(now, |r| {
            qtype.matches(&r.data) || matches!(r.data, RData::Cname(_))
        }) else {
            return None;
        };
        Some(Outcome::Answer(records))
    }

    /// `outcome` with every TTL at most the cache's longest (`--max-ttl`), as it is
    /// given to the asker the first time: no one downstream keeps it longer than this
    /// cache would.
    pub fn capped(&self, outcome: Outcome) -> Outcome {
        let cap = |r: Record| Record {
            ttl: r.ttl.min(self.max_ttl),
            ..r
        };
        match outcome {
            Outcome::Answer(records) => Outcome::Answer(records.into_iter().map(cap).collect()),
            Outcome::NxDomain(soa) => Outcome::NxDomain(cap(soa)),
            Outcome::NoData(soa) => Outcome::NoData(cap(soa)),
            other => other,
        }
    }

    /// Remembers what the hierarchy answered to `query` at `now`: an answer or NODATA
    /// for that question, NXDOMAIN for every question about the name. Failures and
    /// referrals are not kept, nor anything about a name with fixed entries, nor an
    /// entry larger than the whole cache: then `None`.
    pub fn insert(&self, query: &Query, outcome: &Outcome, now: Instant) -> Option<Stored> {
        if !self.fixed.read().addresses(query.name.as_str()).is_empty() {
            return None;
        }
        let (kind, outcome, ttl) = match outcome {
            Outcome::Answer(records) if !records.is_empty() => {
                let records: Vec<Record> = records
                    .iter()
                    .map(|r| Record {
                        ttl: r.ttl.min(self.max_ttl),
                        ..r.clone()
                    })
                    .collect();
                let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
                let kind = match query.qtype {
                    QType::Address => Kind::Address,
                    qtype => Kind::Type(qtype.code()),
                };
                (kind, Outcome::Answer(records), ttl)
            }
            Outcome::NxDomain(soa) | Outcome::NoData(soa) => {
                let ttl = negative_ttl(soa).min(self.max_ttl);
                let soa = Record { ttl, ..soa.clone() };
                match outcome {
                    Outcome::NxDomain(_) => (Kind::NxDomain, Outcome::NxDomain(soa), ttl),
                    _ => (Kind::Type(query.qtype.code()), Outcome::NoData(soa), ttl),
                }
            }
            _ => return None,
        };
        if ttl == 0 {
            return None;
        }
        let expires = now + Duration::from_secs(ttl.into());
        let item = Item {
            kind,
            bytes: outcome_bytes(&outcome),
            outcome,
            stored: now,
            expires,
        };
        let key = query.name.as_str();
        let mut learned = lock(&self.learned);
        // Larger than the whole cache: kept, it would push everything else out first.
        if entry_bytes(key) + item.bytes > learned.max_bytes {
            return None;
        }
        let evicted = learned.upsert(key, now, |old| {
            let mut entry = old.unwrap_or_default();
            entry.0.retain(|i| {
                i.expires > now
                    && i.kind != kind
                    && i.kind != Kind::NxDomain
                    && kind != Kind::NxDomain
            });
            entry.0.push(item);
            let over = entry.0.len().saturating_sub(MAX_KINDS_PER_NAME);
            entry.0.drain(..over);
            let last = entry.0.iter().map(|i| i.expires).max().unwrap_or(expires);
            let bytes = entry_bytes(key) + entry.0.iter().map(|i| i.bytes).sum::<usize>();
            (entry, last, bytes)
        })?;
        Some(Stored {
            learned: learned.map.len(),
            evicted: evicted > 0,
        })
    }

    /// How many names have something learned (expired ones may still count until
    /// touched).
    pub fn learned_len(&self) -> usize {
        lock(&self.learned).map.len()
    }

    /// The bytes what is learned holds, as the bound in bytes counts them.
    pub fn learned_bytes(&self) -> usize {
        lock(&self.learned).bytes
    }

    pub fn fixed_len(&self) -> usize {
        self.fixed.read().len()
    }

    /// Replaces the fixed entries (a reload of the `--cache` files); what was learned
    /// stays.
    pub fn replace_fixed(&self, fixed: Zone) {
        self.fixed.store(fixed);
    }

    /// The longest anything learned is kept, in seconds (`--max-ttl`).
    pub fn max_ttl(&self) -> u32 {
        self.max_ttl
    }

    /// What the cache holds at `now`, for a person to look at (the web view): up to
    /// `max` learned names, most recently used first, each kind of question answered
    /// with the TTL that remains (expired ones left out), then up to `max` fixed names.
    pub fn listing(&self, now: Instant, max: usize) -> Listing {
        let mut learned = Vec::new();
        {
            let lru = lock(&self.learned);
            let mut idx = lru.head;
            while idx != NIL && learned.len() < max {
                let node = &lru.nodes[idx as usize];
                idx = node.next;
                for item in node.value.0.iter().filter(|item| item.expires > now) {
                    learned.push(Listed {
                        name: node.key.to_string(),
                        question: match item.kind {
                            Kind::Type(t) => QType::from_code(t).to_string(),
                            Kind::Address => "ADDR".to_owned(),
                            Kind::NxDomain => "any".to_owned(),
                        },
                        outcome: item.remaining(now),
                        ttl_left: item.expires.saturating_duration_since(now).as_secs(),
                    });
                }
            }
        }
        let fixed = self.fixed.read();
        Listing {
            learned,
            learned_names: self.learned_len(),
            fixed: fixed
                .sorted()
                .into_iter()
                .take(max)
                .map(|(name, ip)| (name.to_owned(), ip))
                .collect(),
            fixed_names: fixed.len(),
        }
    }

    /// Forgets what was learned of `name` (every kind of question), or of every name
    /// with `None`; fixed entries stay. Returns how many names went.
    pub fn flush(&self, name: Option<&Name>) -> usize {
        let mut lru = lock(&self.learned);
        match name {
            Some(name) => match lru.map.get(name.as_str()) {
                Some(&idx) => {
                    lru.remove(idx);
                    1
                }
                None => 0,
            },
            None => {
                let names = lru.map.len();
                let (capacity, max_bytes) = (lru.capacity, lru.max_bytes);
                *lru = Lru::new(capacity, max_bytes);
                names
            }
        }
    }

    /// How many items a lookup of `name` looks through.
    #[cfg(test)]
    fn items_of(&self, name: &str) -> usize {
        let learned = lock(&self.learned);
        learned
            .map
            .get(name)
            .map_or(0, |&idx| learned.nodes[idx as usize].value.0.len())
    }
}

/// What the cache holds, as [`Cache::listing`] shows it.
#[derive(Clone, Debug)]
pub struct Listing {
    /// What was learned, one item per name and kind of question.
    pub learned: Vec<Listed>,
    /// How many names hold something learned (expired ones count until touched).
    pub learned_names: usize,
    /// The fixed entries (`--cache` files), by name.
    pub fixed: Vec<(String, std::net::IpAddr)>,
    pub fixed_names: usize,
}

/// One learned answer.
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: String,
    /// The question it answers: a type (`A`), `ADDR` (the line protocol's), or `any`
    /// (NXDOMAIN answers every question).
    pub question: String,
    /// With the TTLs that remain.
    pub outcome: Outcome,
    /// Seconds until it goes.
    pub ttl_left: u64,
}

/// What an insert left in the cache, for its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// How many names have something learned now.
    pub learned: usize,
    /// Whether least recently used names went to make room.
    pub evicted: bool,
}

/// What one name's entry costs besides its items: its key, kept twice (in the index and
/// in its node), the node, and the index's slot.
fn entry_bytes(key: &str) -> usize {
    2 * key.len() + size_of::<Node<Entry>>() + size_of::<(Box<str>, u32)>()
}

/// What an item holding `outcome` costs: the item, its records, and the text of each
/// name they hold (each counted where it appears, although clones share it: the
/// estimate errs high).
fn outcome_bytes(outcome: &Outcome) -> usize {
    let name = |n: &Name| n.as_str().len() + 2 * size_of::<usize>();
    let record = |r: &Record| {
        size_of::<Record>()
            + name(&r.name)
            + match &r.data {
                RData::Cname(n) | RData::Ns(n) => name(n),
                RData::Soa(soa) => name(&soa.mname) + name(&soa.rname),
                RData::Srv(srv) => name(&srv.target),
                RData::Ptr(n) => name(n),
                RData::Mx(mx) => name(&mx.exchange),
                // The boxed data, and about as much again inside it.
                RData::Other(_) => 4 * size_of::<hickory_proto::rr::RData>(),
                RData::A(_) | RData::Aaaa(_) => 0,
            }
    };
    size_of::<Item>()
        + match outcome {
            Outcome::Answer(records) => records.iter().map(record).sum(),
            Outcome::NxDomain(soa) | Outcome::NoData(soa) => record(soa),
            _ => 0,
        }
}

/// What the fixed entries say of `name`, if it has any: its addresses of the type asked,
/// or, for any other type, NODATA with an SOA of the name's own (the fixed entries are a
/// zone the local server holds: a name there answers every type consistently, never
/// with an upstream's NXDOMAIN beside its own address, RFC 8020).
fn fixed_answer(fixed: &Zone, name: &Name, qtype: QType) -> Option<Outcome> {
    let addrs = fixed.addresses(name.as_str());
    if addrs.is_empty() {
        return None;
    }
    let records: Vec<Record> = addrs
        .iter()
        .map(|a| Record::new(name.clone(), a.ttl, RData::address(a.ip)))
        .filter(|r| qtype.matches(&r.data))
        .collect();
    Some(if records.is_empty() {
        Outcome::NoData(super::synthesized_soa(name, fixed.negative_ttl()))
    } else {
        Outcome::Answer(records)
    })
}

/// How long a negative answer may be kept: the SOA record's TTL, and never longer than
/// its minimum (RFC 2308, section 5).
fn negative_ttl(soa: &Record) -> u32 {
    match &soa.data {
        RData::Soa(s) => soa.ttl.min(s.minimum),
        _ => soa.ttl,
    }
}

impl Item {
    /// The outcome with the TTLs that remain at `now`.
    fn remaining(&self, now: Instant) -> Outcome {
        self.remaining_of(now, |_| true)
    }

    /// [`remaining`](Self::remaining), an answer's records kept only where `keep`
    /// says (one copy, made while the cache's lock is held: no more than needed).
    fn remaining_of(&self, now: Instant, keep: impl Fn(&Record) -> bool) -> Outcome {
        let elapsed = now.saturating_duration_since(self.stored).as_secs();
        let age = |r: &Record| Record {
            ttl: r.ttl.saturating_sub(elapsed.min(u32::MAX as u64) as u32),
            ..r.clone()
        };
        match &self.outcome {
            Outcome::Answer(records) => {
                Outcome::Answer(records.iter().filter(|r| keep(r)).map(age).collect())
            }
            Outcome::NxDomain(soa) => Outcome::NxDomain(age(soa)),
            Outcome::NoData(soa) => Outcome::NoData(age(soa)),
            other => other.clone(),
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Node<V> {
    key: Box<str>,
    value: V,
    expires: Instant,
    /// What the value holds, as its owner weighed it.
    bytes: usize,
    prev: u32,
    next: u32,
}

/// A least-recently-used map bounded in entries and in bytes: a slab of nodes in a
/// doubly linked list (most recent at the head), indexed by a `HashMap`.
#[derive(Debug)]
struct Lru<V> {
    map: HashMap<Box<str>, u32>,
    nodes: Vec<Node<V>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    capacity: usize,
    /// The most bytes the values may hold together.
    max_bytes: usize,
    bytes: usize,
}

impl<V: Default> Lru<V> {
    fn new(capacity: usize, max_bytes: usize) -> Lru<V> {
        // Capacity fits in u32 indices; anything larger is clamped.
        let capacity = capacity.min(NIL as usize - 1);
        Lru {
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            max_bytes,
            bytes: 0,
        }
    }

    /// The value under `key`, made the most recent; `None` (and the entry dropped)
    /// once it has expired.
    fn get(&mut self, key: &str, now: Instant) -> Option<&mut V> {
        let idx = *self.map.get(key)?;
        if self.nodes[idx as usize].expires <= now {
            self.remove(idx);
            return None;
        }
        self.unlink(idx);
        self.push_front(idx);
        Some(&mut self.nodes[idx as usize].value)
    }

    /// Changes the value under `key` with `update` (given `None` if there is none, or
    /// it expired), which returns the new value, when it expires and what it weighs;
    /// then the least recently used entries go until the map is within its bounds.
    /// Returns how many others went, or `None` if the entry itself did not fit (it is
    /// then gone too).
    fn upsert(
        &mut self,
        key: &str,
        now: Instant,
        update: impl FnOnce(Option<V>) -> (V, Instant, usize),
    ) -> Option<usize> {
        if self.capacity == 0 {
            return None;
        }
        let idx = match self.map.get(key) {
            Some(&idx) => {
                let node = &mut self.nodes[idx as usize];
                let old = (node.expires > now).then(|| std::mem::take(&mut node.value));
                let (value, expires, bytes) = update(old);
                self.bytes = self.bytes - node.bytes + bytes;
                node.value = value;
                node.expires = expires;
                node.bytes = bytes;
                self.unlink(idx);
                idx
            }
            None => {
                let (value, expires, bytes) = update(None);
                let node = Node {
                    key: key.into(),
                    value,
                    expires,
                    bytes,
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
                self.bytes += bytes;
                idx
            }
        };
        self.push_front(idx);
        let mut evicted = 0;
        while self.map.len() > self.capacity || self.bytes > self.max_bytes {
            // The entry just written is the most recent: last to go, alone over the bound.
            if self.tail == idx {
                self.remove(idx);
                return None;
            }
            self.remove(self.tail);
            evicted += 1;
        }
        Some(evicted)
    }

    fn remove(&mut self, idx: u32) {
        if idx == NIL {
            return;
        }
        self.unlink(idx);
        let node = &mut self.nodes[idx as usize];
        let key = std::mem::take(&mut node.key);
        node.value = V::default();
        self.bytes -= std::mem::take(&mut node.bytes);
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
    use crate::model::Recursion;
    use std::net::IpAddr;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn q(n: &str, qtype: QType) -> Query {
        Query {
            name: Name::from_wire(n),
            qtype,
            recursion: Recursion::Recursive,
            tag: None,
        }
    }

    fn answer(n: &str, ttl: u32, addr: &str) -> Outcome {
        Outcome::Answer(vec![Record::new(name(n), ttl, RData::address(ip(addr)))])
    }

    fn get_ip(cache: &Cache, n: &str, now: Instant) -> Option<IpAddr> {
        cache
            .get(&q(n, QType::Address), now)
            .and_then(|r| r.first_ip())
    }

    fn insert_line(cache: &Cache, n: &str, addr: &str, now: Instant) {
        cache.insert(&q(n, QType::Address), &answer(n, u32::MAX, addr), now);
    }

    #[test]
    fn learned_entries_expire() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(10), 10);
        let t0 = Instant::now();
        insert_line(&cache, "www.a.com", "1.1.1.1", t0);
        assert_eq!(get_ip(&cache, "a.com", t0), Some(ip("1.1.1.1")));
        assert_eq!(
            get_ip(&cache, "www.a.com", t0 + Duration::from_secs(11)),
            None
        );
        assert_eq!(cache.learned_len(), 0);
    }

    #[test]
    fn the_listing_shows_what_is_live_and_a_flush_forgets_learned_names() {
        let mut zone = Zone::default();
        zone.insert(&name("www.fixed.com"), ip("9.9.9.9"));
        let cache = Cache::new(zone, Duration::from_secs(100), 10);
        let t0 = Instant::now();
        insert_line(&cache, "www.a.com", "1.1.1.1", t0);
        insert_line(&cache, "www.b.com", "2.2.2.2", t0);
        let later = t0 + Duration::from_secs(40);
        let listing = cache.listing(later, 10);
        let names: Vec<&str> = listing.learned.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["www.b.com", "www.a.com"], "most recent first");
        assert_eq!(listing.learned[0].ttl_left, 60);
        assert_eq!(listing.learned[0].question, "ADDR");
        assert_eq!(listing.fixed, [("www.fixed.com".to_owned(), ip("9.9.9.9"))]);
        assert_eq!(cache.listing(later, 1).learned.len(), 1, "at most max");
        assert_eq!(cache.flush(Some(&name("www.a.com"))), 1);
        assert_eq!(cache.flush(Some(&name("www.a.com"))), 0);
        assert_eq!(get_ip(&cache, "www.a.com", later), None);
        assert_eq!(get_ip(&cache, "www.b.com", later), Some(ip("2.2.2.2")));
        assert_eq!(cache.flush(None), 1);
        assert_eq!(cache.learned_len(), 0);
        assert_eq!(get_ip(&cache, "www.fixed.com", later), Some(ip("9.9.9.9")));
        insert_line(&cache, "www.c.com", "3.3.3.3", later);
        assert_eq!(get_ip(&cache, "www.c.com", later), Some(ip("3.3.3.3")));
    }

    #[test]
    fn fixed_entries_never_expire() {
        let mut zone = Zone::default();
        zone.insert(&name("www.a.com"), ip("1.1.1.1"));
        let cache = Cache::new(zone, Duration::from_secs(1), 10);
        let later = Instant::now() + Duration::from_secs(100_000);
        assert_eq!(get_ip(&cache, "a.com", later), Some(ip("1.1.1.1")));
    }

    /// Regression (issue 16): a fixed name asked for a type it lacks went upstream and
    /// came back NXDOMAIN beside its own A record; and once com's NXDOMAIN for `a.com`
    /// was learned, the line protocol's `a.com` (the fixed `www.a.com`) was `0XFF`.
    #[test]
    fn fixed_entries_are_a_zone_nodata_for_other_types_and_never_hidden() {
        let mut zone = Zone::default();
        zone.insert(&name("www.a.com"), ip("1.1.1.1"));
        let cache = Cache::new(zone, Duration::from_secs(100), 10);
        let t = Instant::now();
        let ask = |qtype| {
            cache
                .get(
                    &Query::new(name("www.a.com"), qtype, Recursion::Recursive),
                    t,
                )
                .map(|r| r.outcome)
        };
        assert!(
            matches!(ask(QType::Aaaa), Some(Outcome::NoData(soa)) if soa.name == name("www.a.com"))
        );
        assert!(matches!(ask(QType::Mx), Some(Outcome::NoData(_))));
        assert!(matches!(ask(QType::A), Some(Outcome::Answer(_))));
        let nx = Outcome::NxDomain(crate::resolve::synthesized_soa(
            &Name::from_wire("com"),
            300,
        ));
        let query = Query::new(name("a.com"), QType::A, Recursion::Recursive);
        cache.insert(&query, &nx, t);
        assert_eq!(get_ip(&cache, "a.com", t), Some(ip("1.1.1.1")));
    }

    #[test]
    fn least_recently_used_goes_first() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(100), 2);
        let t = Instant::now();
        insert_line(&cache, "a.com", "1.0.0.1", t);
        insert_line(&cache, "b.com", "1.0.0.2", t);
        assert!(get_ip(&cache, "a.com", t).is_some()); // a is now the most recent
        insert_line(&cache, "c.com", "1.0.0.3", t);
        assert!(get_ip(&cache, "b.com", t).is_none());
        assert!(get_ip(&cache, "a.com", t).is_some());
        assert!(get_ip(&cache, "c.com", t).is_some());
        assert_eq!(cache.learned_len(), 2);
    }

    #[test]
    fn bounded_under_many_names() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(100), 100);
        let t = Instant::now();
        for i in 0..10_000 {
            insert_line(&cache, &format!("h{i}.com"), "1.2.3.4", t);
        }
        assert_eq!(cache.learned_len(), 100);
        assert!(get_ip(&cache, "h9999.com", t).is_some());
        assert!(get_ip(&cache, "h0.com", t).is_none());
    }

    /// TTLs count down, are capped at the cache's longest, and a DNS-learned address
    /// answers the line protocol's question (and the other way round).
    #[test]
    fn ttls_count_down_and_both_protocols_share_entries() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(100), 10);
        let t = Instant::now();
        cache.insert(&q("x.com", QType::A), &answer("x.com", 60, "1.2.3.4"), t);
        let hit = cache
            .get(&q("x.com", QType::A), t + Duration::from_secs(15))
            .unwrap();
        assert!(hit.cached);
        assert!(matches!(&hit.outcome, Outcome::Answer(r) if r[0].ttl == 45));
        assert_eq!(get_ip(&cache, "x.com", t), Some(ip("1.2.3.4")));
        assert!(cache.get(&q("x.com", QType::Aaaa), t).is_none());
        insert_line(&cache, "y.com", "5.6.7.8", t);
        let hit = cache.get(&q("y.com", QType::A), t).unwrap();
        assert!(matches!(&hit.outcome, Outcome::Answer(r) if r[0].ttl == 100));
        assert!(cache
            .get(&q("x.com", QType::A), t + Duration::from_secs(61))
            .is_none());
    }

    /// Negative answers are kept for the SOA's minimum (RFC 2308).
    #[test]
    fn negative_answers_for_the_soa_minimum() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(3600), 10);
        let t = Instant::now();
        let soa = crate::resolve::synthesized_soa(&Name::from_wire("com"), 30);
        cache.insert(&q("nx.com", QType::A), &Outcome::NxDomain(soa.clone()), t);
        let hit = cache
            .get(&q("nx.com", QType::Aaaa), t + Duration::from_secs(10))
            .unwrap();
        assert!(matches!(&hit.outcome, Outcome::NxDomain(s) if s.ttl == 20));
        assert!(cache
            .get(&q("nx.com", QType::A), t + Duration::from_secs(31))
            .is_none());
        cache.insert(&q("v4.com", QType::Aaaa), &Outcome::NoData(soa), t);
        assert!(matches!(
            cache.get(&q("v4.com", QType::Aaaa), t).unwrap().outcome,
            Outcome::NoData(_)
        ));
        assert!(cache.get(&q("v4.com", QType::A), t).is_none());
    }

    /// The line protocol's question, through the one read path, as the line reply shows it:
    /// fixed entries, the `www.` alias, addresses learned over DNS (behind a CNAME),
    /// NXDOMAIN learned over DNS, NODATA (not an answer to the line's question), expiry.
    #[test]
    fn the_line_question_is_answered_by_the_one_read_path() {
        let mut zone = Zone::default();
        zone.insert(&name("www.fixed.com"), ip("1.1.1.1"));
        let cache = Cache::new(zone, Duration::from_secs(100), 10);
        let t = Instant::now();
        let cname = Record::new(name("c.com"), 60, RData::Cname(name("www.c.com")));
        let a = Record::new(name("www.c.com"), 60, RData::address(ip("2.2.2.2")));
        cache.insert(&q("c.com", QType::A), &Outcome::Answer(vec![cname, a]), t);
        let soa = crate::resolve::synthesized_soa(&Name::from_wire("com"), 30);
        cache.insert(&q("nx.com", QType::A), &Outcome::NxDomain(soa.clone()), t);
        cache.insert(&q("v4.com", QType::Aaaa), &Outcome::NoData(soa), t);
        insert_line(&cache, "www.l.com", "3.3.3.3", t);
        // What the line protocol's question gets: an address, NXDOMAIN (`Some(None)`),
        // or nothing cached (`None`).
        let line = |n: &str, now| cache.get(&q(n, QType::Address), now).map(|r| r.first_ip());
        let (one, two, three) = (
            Some(ip("1.1.1.1")),
            Some(ip("2.2.2.2")),
            Some(ip("3.3.3.3")),
        );
        for later in [0, 40] {
            let now = t + Duration::from_secs(later);
            assert_eq!(line("fixed.com", now), Some(one));
            assert_eq!(line("www.fixed.com", now), Some(one));
            assert_eq!(line("c.com", now), Some(two), "after {later} s");
            let nx = if later < 30 { Some(None) } else { None };
            assert_eq!(
                line("nx.com", now),
                nx,
                "NXDOMAIN for 30 s, after {later} s"
            );
            assert_eq!(
                line("v4.com", now),
                None,
                "NODATA for AAAA answers no address"
            );
            assert_eq!(line("l.com", now), Some(three), "after {later} s");
            assert_eq!(line("www.l.com", now), Some(three), "after {later} s");
            assert_eq!(line("none.com", now), None);
        }
        let now = t + Duration::from_secs(200);
        assert_eq!(
            line("fixed.com", now),
            Some(one),
            "fixed entries never expire"
        );
        for n in ["c.com", "nx.com", "l.com", "www.l.com"] {
            assert_eq!(line(n, now), None, "{n} expired");
        }
    }

    fn addresses(n: &str, count: u32) -> Outcome {
        Outcome::Answer(
            (0..count)
                .map(|i| Record::new(name(n), 60, RData::A(std::net::Ipv4Addr::from(i))))
                .collect(),
        )
    }

    /// Large answers fill the bytes, not the count: the least recently used names go
    /// until what is learned is within the bound again.
    #[test]
    fn bounded_in_bytes() {
        const MAX: usize = 256 * 1024;
        let cache =
            Cache::new(Zone::default(), Duration::from_secs(100), 100_000).with_max_bytes(MAX);
        let t = Instant::now();
        let mut evicted = 0;
        for i in 0..1000 {
            let n = format!("big{i}.com");
            let stored = cache
                .insert(&q(&n, QType::A), &addresses(&n, 256), t)
                .unwrap();
            evicted += usize::from(stored.evicted);
            assert!(
                cache.learned_bytes() <= MAX,
                "{} bytes",
                cache.learned_bytes()
            );
        }
        // 256 addresses count about 32 KB: a few fit, and each later one pushed an
        // older one out.
        let kept = cache.learned_len();
        assert!((4..16).contains(&kept), "{kept} names kept");
        assert!(evicted > 900, "{evicted} inserts evicted");
        assert!(cache.get(&q("big999.com", QType::A), t).is_some());
        assert!(cache.get(&q("big0.com", QType::A), t).is_none());
        // An answer larger than the whole cache is not kept, and pushes nothing out.
        let small = Cache::new(Zone::default(), Duration::from_secs(100), 10).with_max_bytes(4096);
        insert_line(&small, "a.com", "1.1.1.1", t);
        assert!(small
            .insert(&q("x.com", QType::A), &addresses("x.com", 256), t)
            .is_none());
        assert!(small.get(&q("x.com", QType::A), t).is_none());
        assert_eq!(get_ip(&small, "a.com", t), Some(ip("1.1.1.1")));
        // Expired and evicted entries give their bytes back.
        let later = t + Duration::from_secs(101);
        assert!(get_ip(&small, "a.com", later).is_none());
        assert_eq!(small.learned_bytes(), 0);
    }

    /// One name asked for every type there is keeps its newest answers only, as many as
    /// any name may: a lookup of it, or of any other name, looks through a bounded list
    /// (the counts, not timings, are what is checked).
    #[test]
    fn a_name_keeps_a_bounded_number_of_kinds_the_oldest_going_first() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(100), 10);
        let t = Instant::now();
        insert_line(&cache, "other.com", "1.1.1.1", t);
        for code in 0..=u16::MAX {
            let stored = cache.insert(
                &q("many.com", QType::Other(code)),
                &answer("many.com", 60, "2.2.2.2"),
                t,
            );
            assert!(stored.is_some());
        }
        assert_eq!(cache.items_of("many.com"), MAX_KINDS_PER_NAME);
        assert_eq!(cache.items_of("other.com"), 1);
        assert!(cache.get(&q("many.com", QType::Other(0)), t).is_none());
        let newest = u16::MAX - MAX_KINDS_PER_NAME as u16 + 1;
        assert!(cache.get(&q("many.com", QType::Other(newest)), t).is_some());
        assert!(cache
            .get(&q("many.com", QType::Other(newest - 1)), t)
            .is_none());
        assert_eq!(get_ip(&cache, "other.com", t), Some(ip("1.1.1.1")));
        // An address answers the line's question too, found among the bounded kinds.
        assert_eq!(get_ip(&cache, "many.com", t), Some(ip("2.2.2.2")));
        assert!(
            cache.learned_bytes() < 32 * 1024,
            "{}",
            cache.learned_bytes()
        );
    }

    /// The first answer is capped as a cached one would be: no one downstream keeps it
    /// longer than this cache would.
    #[test]
    fn capped_caps_every_ttl_the_first_answer_included() {
        let cache = Cache::new(Zone::default(), Duration::from_secs(86_400), 10);
        let huge = (1u32 << 31) - 1;
        let capped = cache.capped(answer("a.com", huge, "1.2.3.4"));
        assert!(matches!(&capped, Outcome::Answer(r) if r[0].ttl == 86_400));
        let short = cache.capped(answer("a.com", 30, "1.2.3.4"));
        assert!(matches!(&short, Outcome::Answer(r) if r[0].ttl == 30));
        let mut soa = crate::resolve::synthesized_soa(&Name::from_wire("com"), 300);
        soa.ttl = huge;
        let capped = cache.capped(Outcome::NxDomain(soa));
        assert!(matches!(&capped, Outcome::NxDomain(s) if s.ttl == 86_400));
    }
}
