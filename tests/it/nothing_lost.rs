//! Nothing lost: 64 clients at once (some sharing an id) mixing hits, misses, unknown
//! names and invalid lines; every reply they receive is in their `ID.log` as one whole
//! request/reply/blank triple, every learned mapping is one whole line of `mapping.log`
//! (written before its reply arrives), and both files are only ever appended to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::thread;

use dnsd::line::message::{Code, Reply};
use dnsd::model::name::Name;
use dnsd::runtime::hierarchy::HierarchyBuilder;

use crate::harness::{Line, PATIENCE};

const MARKER: &str = "# written before the server started\n";
const CLIENTS: usize = 64;
const QUERIES: usize = 60;
const NAMES: usize = 300;

fn address(i: usize) -> String {
    format!("10.1.{}.{}", i / 256, i % 256)
}

/// A hierarchy with one TLD, `test`, holding `n0.test` .. `n299.test`, and a local
/// server whose cache holds `fixed.test`; stopped when dropped.
fn start(logs: &Path) -> dnsd::runtime::hierarchy::Hierarchy {
    let text: String = (0..NAMES)
        .map(|i| format!("n{i}.test {}\n", address(i)))
        .collect();
    HierarchyBuilder::new()
        .tld("test", text.parse().unwrap())
        .cache("fixed.test 10.9.9.9".parse().unwrap())
        .log_dir(logs)
        .upstream_timeout(PATIENCE)
        .start()
        .unwrap()
}

/// The id client thread `t` uses: 48 ids of their own, and 4 ids shared by 4 threads.
fn id_of(t: usize) -> String {
    if t < 48 {
        format!("c{t}")
    } else {
        format!("shared{}", t % 4)
    }
}

/// What one client received: (request, reply) pairs in order.
type Exchanges = Vec<(String, String)>;

/// One client: `QUERIES` requests mixing cache hits, names to learn (both modes),
/// unknown names and invalid lines. Checks each learned mapping is already in
/// `mapping.log` when its reply arrives.
fn client(local: SocketAddr, t: usize, mapping: &Path) -> Exchanges {
    let mut c = Line::connect(local);
    assert_eq!(c.ask(&id_of(t)), "You are connected to the Server");
    let mut got = Vec::with_capacity(QUERIES);
    for j in 0..QUERIES {
        let n = (t * 7 + j * 13) % NAMES;
        let request = match j % 5 {
            0 => format!("{t}.{j}, fixed.test, R"),
            1 => format!("{t}.{j}, n{n}.test, R"),
            2 => format!("{t}.{j}, n{n}.test, I"),
            3 => format!("{t}.{j}, missing{j}.test, I"),
            _ => format!("{t}.{j} is not a request"),
        };
        let reply = c.ask(&request);
        let parsed = Reply::parse(reply.as_bytes()).expect("a well-formed reply");
        match j % 5 {
            0 => assert_eq!(reply, "0X00, default_local, 10.9.9.9"),
            1 | 2 => {
                assert_eq!(parsed.text, address(n), "{request} -> {reply}");
                assert!(matches!(parsed.code, Code::Cached | Code::Resolved));
            }
            3 => assert_eq!(reply, "0XFF, default_local, Host not found"),
            _ => assert_eq!(reply, "0XEE, default_local, Invalid format"),
        }
        if parsed.code == Code::Resolved {
            let line = format!("n{n}.test {} learned=", address(n));
            let text = std::fs::read_to_string(mapping).unwrap();
            assert!(
                text.lines().any(|l| l.starts_with(&line)),
                "{line:?} not in mapping.log when its reply came"
            );
        }
        got.push((request, reply));
    }
    c.send("q");
    assert_eq!(c.recv(), None);
    got
}

/// The records of an `ID.log` after the marker: (request, reply) triples, checked whole.
fn records(text: &str) -> Exchanges {
    let rest = text
        .strip_prefix(MARKER)
        .expect("the marker is no longer the first line");
    assert!(
        rest.is_empty() || rest.ends_with("\n\n"),
        "a partial record"
    );
    let lines: Vec<&str> = rest.split_terminator('\n').collect();
    assert_eq!(lines.len() % 3, 0, "not whole triples");
    lines
        .chunks(3)
        .map(|r| {
            assert_eq!(r[2], "", "a record without its blank line: {r:?}");
            Reply::parse(r[1].as_bytes()).expect("a whole reply line");
            (r[0].to_owned(), r[1].to_owned())
        })
        .collect()
}

#[test]
fn sixty_four_clients_at_once_lose_no_log_line() {
    let logs = tempfile::tempdir().unwrap();
    let mapping = logs.path().join("mapping.log");
    std::fs::write(&mapping, MARKER).unwrap();
    std::fs::create_dir_all(logs.path().join("clients")).unwrap();
    for t in 0..CLIENTS {
        std::fs::write(
            logs.path().join(format!("clients/{}.log", id_of(t))),
            MARKER,
        )
        .unwrap();
    }
    let setup = start(logs.path());
    let mapping = Arc::new(mapping);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (local, mapping) = (setup.local, mapping.clone());
            thread::spawn(move || client(local, t, &mapping))
        })
        .collect();
    let mut by_id: HashMap<String, Exchanges> = HashMap::new();
    for (t, th) in threads.into_iter().enumerate() {
        let got = th.join().expect("a client failed");
        assert_eq!(got.len(), QUERIES);
        by_id.entry(id_of(t)).or_default().extend(got);
    }
    drop(setup);

    let mut learned: Vec<(String, String)> = Vec::new();
    let mut replies = 0;
    for (id, mut got) in by_id {
        let text = std::fs::read_to_string(logs.path().join(format!("clients/{id}.log"))).unwrap();
        let mut logged = records(&text);
        replies += got.len();
        if !id.starts_with("shared") {
            // One writer: the same pairs, in the same order.
            assert_eq!(logged, got, "{id}.log");
        }
        for (request, reply) in &got {
            if reply.starts_with("0X01") {
                let name = request.split(", ").nth(1).unwrap();
                let ip = reply.rsplit(", ").next().unwrap();
                learned.push((name.to_owned(), ip.to_owned()));
            }
        }
        got.sort();
        logged.sort();
        assert_eq!(
            logged, got,
            "{id}.log does not hold exactly the pairs answered"
        );
    }
    assert_eq!(replies, CLIENTS * QUERIES);

    let text = std::fs::read_to_string(&*mapping).unwrap();
    let rest = text
        .strip_prefix(MARKER)
        .expect("mapping.log was rewritten");
    assert!(rest.ends_with('\n'), "a partial line in mapping.log");
    let mut lines: Vec<(String, String)> = rest
        .lines()
        .map(|l| {
            assert!(
                dnsd::ops::querylog::Mapping::parse(l).is_ok_and(|m| m.is_some()),
                "{l:?}"
            );
            let mut fields = l.split(' ');
            let (name, ip) = (fields.next().unwrap(), fields.next().expect("NAME ADDR"));
            Name::parse(name).expect("a whole name");
            ip.parse::<IpAddr>().expect("a whole address");
            (name.to_owned(), ip.to_owned())
        })
        .collect();
    learned.sort();
    lines.sort();
    assert!(!learned.is_empty());
    assert_eq!(lines, learned, "mapping.log lines vs 0X01 replies");
    eprintln!(
        "{replies} replies, {} learned mappings, all logged",
        learned.len()
    );
}
