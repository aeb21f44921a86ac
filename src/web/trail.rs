//! From events to paths: the queue ([`super::events`]) read a batch at a time, each
//! query's hops named and matched to the asked server's own event, and the result sent
//! to every open stream.
//!
//! A server's event is queued when it has answered, before its reply is sent; so the
//! events of the servers a query went through come before its own. Each hop is matched
//! to the most recent event not yet matched of the server it went to, for the same name,
//! read and answered within the hop's own time: mode R's `local -> root -> com` becomes
//! one event at the local server, whose hop to the root holds the root's event, whose
//! hop to com holds com's.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::events::{self, Event};
use crate::server::Shutdown;
use crate::sync::lock;

/// Events kept to be matched to a later hop; a hop's event older than this many later
/// events is not found (it would have been minutes ago under any load a page can show).
const RECENT: usize = 256;

/// What a stream's thread reads: one event, a line of JSON, at a time.
pub type Stream = Receiver<Arc<str>>;

/// The open streams: each a channel of JSON lines to the thread writing its stream (the
/// stream is open while that thread holds its receiver).
#[derive(Default)]
pub struct Watchers {
    streams: Mutex<Vec<Watcher>>,
    dropped: AtomicU64,
}

/// One open stream: where its events go, and whether its thread still reads them.
struct Watcher {
    events: Sender<Arc<str>>,
    reader: Weak<Stream>,
}

impl Watcher {
    fn open(&self) -> bool {
        self.reader.strong_count() > 0
    }
}

impl Watchers {
    /// A new stream's channel, holding up to `backlog` events, unless `max` are open.
    /// Events are made while at least one is open (its receiver alive).
    pub fn add(&self, max: usize, backlog: usize) -> Option<Arc<Stream>> {
        let mut streams = lock(&self.streams);
        streams.retain(Watcher::open);
        if streams.len() >= max {
            return None;
        }
        let (tx, rx) = crossbeam_channel::bounded(backlog);
        let rx = Arc::new(rx);
        streams.push(Watcher {
            events: tx,
            reader: Arc::downgrade(&rx),
        });
        events::set_watching(true);
        Some(rx)
    }

    /// Forgets the streams that have closed; events stop when none is left.
    pub fn prune(&self) {
        let mut streams = lock(&self.streams);
        streams.retain(Watcher::open);
        events::set_watching(!streams.is_empty());
    }

    /// Streams open.
    pub fn len(&self) -> usize {
        let streams = lock(&self.streams);
        streams.iter().filter(|w| w.open()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events a stream missed because its thread was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, line: &Arc<str>) {
        let streams = lock(&self.streams);
        for watcher in streams.iter() {
            if let Err(TrySendError::Full(_)) = watcher.events.try_send(line.clone()) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads the queue until `shutdown`: each event numbered, its hops named (`names`: this
/// process's servers by address) and matched, `seen` called, and the event sent to
/// every stream as one line of JSON. A batch is taken as soon as an event comes, then
/// nothing for [`events::DRAIN_EVERY`]: a lone query shows at once, a flood as at most
/// [`events::CAPACITY`] events per [`events::DRAIN_EVERY`].
pub fn run(
    names: &HashMap<SocketAddr, String>,
    watchers: &Watchers,
    shutdown: &Shutdown,
    mut seen: impl FnMut(&Event),
) {
    let queue = events::receiver();
    let mut trail = Trail::new(names.clone());
    while !shutdown.is_triggered() {
        watchers.prune();
        let first = match queue.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => event,
            Err(_) => continue,
        };
        // The servers a query went through queue their events a moment before it.
        std::thread::sleep(Duration::from_millis(5));
        let batch = std::iter::once(first).chain(queue.try_iter().take(events::CAPACITY - 1));
        for event in batch {
            let event = trail.add(event);
            seen(&event);
            if watchers.is_empty() {
                continue;
            }
            match serde_json::to_string(&event) {
                Ok(line) => watchers.send(&Arc::from(line)),
                Err(e) => log::warn!("web: cannot write an event: {e}"),
            }
        }
        std::thread::sleep(events::DRAIN_EVERY);
    }
}

/// The events being matched.
struct Trail {
    names: HashMap<SocketAddr, String>,
    recent: VecDeque<Event>,
    next_id: u64,
}

impl Trail {
    fn new(names: HashMap<SocketAddr, String>) -> Trail {
        Trail {
            names,
            recent: VecDeque::with_capacity(RECENT),
            next_id: 1,
        }
    }

    /// `event`, numbered, with each hop named and holding the asked server's event
    /// when one matches. The event is kept to be matched to a later hop.
    fn add(&mut self, mut event: Event) -> Event {
        event.id = self.next_id;
        self.next_id += 1;
        for hop in &mut event.hops {
            hop.server = self.names.get(&hop.to).cloned();
            let Some(server) = &hop.server else { continue };
            // A little slack: the two clocks are one, but read a moment apart.
            let slack = Duration::from_millis(1);
            let found = self.recent.iter().rposition(|e| {
                &e.server == server
                    && e.name == hop.name
                    && e.span.0 + slack >= hop.span.0
                    && e.span.1 <= hop.span.1 + slack
            });
            if let Some(i) = found {
                hop.served = self.recent.remove(i).map(Box::new);
            }
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(event.clone());
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::events::Hop;
    use std::time::Instant;

    fn event(server: &str, name: &str, span: (Instant, Instant), hops: Vec<Hop>) -> Event {
        Event {
            id: 0,
            at_ms: 0,
            server: server.to_owned(),
            peer: None,
            protocol: "line",
            mode: "R".to_owned(),
            name: name.to_owned(),
            qtype: "ADDR".to_owned(),
            tag: None,
            code: "0X01".to_owned(),
            cached: false,
            answer: String::new(),
            elapsed_us: 0,
            hops,
            span,
        }
    }

    fn hop(to: SocketAddr, name: &str, span: (Instant, Instant)) -> Hop {
        Hop {
            to,
            server: None,
            name: name.to_owned(),
            qtype: "ADDR".to_owned(),
            mode: "R",
            result: "answer 1.2.3.4".to_owned(),
            ok: true,
            elapsed_us: 0,
            served: None,
            span,
        }
    }

    #[test]
    fn a_recursive_query_becomes_one_path_through_three_servers() {
        let root: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let com: SocketAddr = "127.0.0.1:5678".parse().unwrap();
        let names = HashMap::from([(root, "root".to_owned()), (com, "com".to_owned())]);
        let mut trail = Trail::new(names);
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let at_com = trail.add(event("com", "www.google.com", (ms(3), ms(4)), vec![]));
        assert_eq!(at_com.id, 1);
        let at_root = trail.add(event(
            "root",
            "www.google.com",
            (ms(2), ms(5)),
            vec![hop(com, "www.google.com", (ms(2), ms(5)))],
        ));
        // An unrelated query at com, answered before the root asked: not matched.
        trail.add(event("com", "www.google.com", (ms(0), ms(1)), vec![]));
        let at_local = trail.add(event(
            "default_local",
            "www.google.com",
            (ms(1), ms(7)),
            vec![hop(root, "www.google.com", (ms(1), ms(6)))],
        ));
        assert_eq!(at_root.hops[0].served.as_ref().map(|e| e.id), Some(1));
        let via_root = at_local.hops[0].served.as_ref().expect("the root's event");
        assert_eq!(via_root.id, 2);
        assert_eq!(via_root.hops[0].server.as_deref(), Some("com"));
        assert_eq!(via_root.hops[0].served.as_ref().map(|e| e.id), Some(1));
    }
}
