//! The hierarchy across hosts: root, each TLD server, the local server and a client each
//! in a network namespace of their own, joined by a private link this test creates.
//!
//! README snippet (for the "Across hosts" section):
//!
//! > The servers talk to each other over TCP by address, so the hierarchy can span
//! > machines. Every server listens on `127.0.0.1` unless told otherwise; give it
//! > `--bind ADDR` (an address of that host, or `0.0.0.0` for all of them) to serve other
//! > hosts. Then point each server at the others by address:
//! >
//! > ```text
//! > host A (10.0.0.11)$ dnsd tld com zones/com.dat --bind 10.0.0.11
//! > host B (10.0.0.12)$ dnsd tld gov zones/gov.dat --bind 10.0.0.12
//! > host C (10.0.0.2)$  dnsd root root.dat --bind 10.0.0.2      # root.dat: com 10.0.0.11 5678
//! >                                                               #           gov 10.0.0.12 5680
//! > host D (10.0.0.3)$  dnsd local --bind 10.0.0.3 --root 10.0.0.2:5353 --log-dir logs
//! > anywhere$           dnsd client alice --server 10.0.0.3:5352
//! > ```
//! >
//! > The root table names each TLD server by the address clients of the root can reach
//! > (in mode I that is the local server, which connects to the TLD server itself).
//! > `--upstream-timeout SECS` (local and root, default 2) bounds what an unreachable
//! > host costs: the client gets `0XFE, default_local, Server failure` in about that
//! > long, and answers resume by themselves once the host is back.
//!
//! The test runs as root (as in CI). Where the build script (`build.rs`) finds that
//! network namespaces cannot be made (not root, no `ip` binary) it is ignored; where
//! making one fails when it runs it prints `skipping: ...` and passes. With
//! `DNSD_REQUIRE_NETNS` set it is never ignored, and fails instead of skipping. It never
//! touches an interface of the machine's own namespace: the bridge lives in a "switch"
//! namespace, and each veth pair is created there with its other end directly in the
//! host's namespace.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{dnsd_bin, write_input, zones, Proc, SLACK, WAIT};

/// The hosts of the test network: (role, last octet of its address on 10.213.0.0/24).
const HOSTS: [(&str, u8); 6] = [
    ("root", 2),
    ("com", 11),
    ("gov", 12),
    ("org", 13),
    ("local", 3),
    ("client", 4),
];

/// The local server's upstream timeout, in seconds, as given on its command line: what
/// a cut link costs, and what a loaded machine has for every answer through two hosts.
const UPSTREAM_TIMEOUT: f64 = 2.0;

/// Namespaces and the processes running in them; dropping it kills the processes (by
/// pid, through `Child`) and then deletes the namespaces, which removes their veths.
struct Lab {
    prefix: String,
    netns: Vec<String>,
    procs: Vec<Proc>,
}

impl Lab {
    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn addr(host: &str) -> String {
        let octet = HOSTS.iter().find(|(h, _)| *h == host).unwrap().1;
        format!("10.213.0.{octet}")
    }

    /// Creates namespace `name`, remembering it for the cleanup.
    fn add_netns(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.netns.push(name.to_owned());
        Ok(())
    }

    /// Starts `dnsd ARGS` inside `host`'s namespace and waits for its `listening on` line.
    #[track_caller]
    fn start(&mut self, host: &str, args: &[&str]) -> SocketAddr {
        let ns = self.ns(host);
        // `ip netns exec` enters the namespace and execs dnsd: the child's pid is dnsd's.
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns, dnsd_bin()])
            .args(args)
            .stdout(Stdio::null());
        let mut proc = Proc::run(command);
        let addr = proc.wait_listening();
        proc.addr = Some(addr);
        self.procs.push(proc);
        addr
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.procs.clear();
        for ns in self.netns.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("multihost: cannot delete namespace {ns}: {e}");
            }
        }
    }
}

/// Runs `ip ARGS`, returning its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[track_caller]
fn must(result: Result<(), String>) {
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Deletes namespaces left by an earlier run of this test that was killed before its
/// cleanup ran: ours are named `dnsdmh-PID-...`, and only those of a dead PID go.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("dnsdmh-") else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Builds the network around the (already made) switch namespace: a bridge there, one
/// veth per host with an address on 10.213.0.0/24, `lo` up everywhere.
fn build_network(lab: &mut Lab) {
    let switch = lab.ns("switch");
    must(ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]));
    must(ip(&["-n", &switch, "link", "set", "br0", "up"]));
    for (host, _) in HOSTS {
        let ns = lab.ns(host);
        must(lab.add_netns(&ns));
        let port = format!("p-{host}");
        must(ip(&[
            "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ]));
        must(ip(&["-n", &switch, "link", "set", &port, "master", "br0"]));
        must(ip(&["-n", &switch, "link", "set", &port, "up"]));
        let cidr = format!("{}/24", Lab::addr(host));
        must(ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]));
        must(ip(&["-n", &ns, "link", "set", "eth0", "up"]));
        must(ip(&["-n", &ns, "link", "set", "lo", "up"]));
    }
}

/// Runs `dnsd client alice --server LOCAL` in the client's namespace with `input`;
/// returns its reply lines (after the greeting) and how long it took.
/// `dnsd client alice` in the client's namespace, asking `local`, its input and output
/// piped.
fn client_command(lab: &Lab, local: SocketAddr) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &lab.ns("client"), dnsd_bin()])
        .args(["client", "alice", "--server", &local.to_string()])
        .args(["--timeout", "8"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    command
}

#[track_caller]
fn client(lab: &Lab, local: SocketAddr, input: &str) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let mut child = client_command(lab, local)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dnsd client");
    write_input(&mut child, input);
    let deadline = started + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dnsd client did not finish within {WAIT:?} (input {input:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dnsd client failed: {}\nstdout: {stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("You are connected to the Server")
    );
    lines.remove(0);
    (lines, elapsed)
}

/// Asks one `query` through `dnsd client` in the client's namespace and times it from
/// the greeting to the reply, so that starting the process is not counted.
#[track_caller]
fn timed_query(lab: &Lab, local: SocketAddr, query: &str) -> (String, Duration) {
    // The client gives up on its own after `--timeout`, which bounds the reads below.
    let mut child = client_command(lab, local)
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsd client");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut greeting = String::new();
    stdout.read_line(&mut greeting).unwrap();
    assert_eq!(greeting, "You are connected to the Server\n");
    let started = Instant::now();
    writeln!(stdin, "{query}").unwrap();
    let mut reply = String::new();
    stdout.read_line(&mut reply).unwrap();
    let took = started.elapsed();
    drop(stdin);
    let _ = child.wait();
    (reply.trim_end().to_owned(), took)
}

/// Skips (or, with `DNSD_REQUIRE_NETNS`, fails) when namespaces cannot be made here.
fn skip(why: &str) {
    if std::env::var_os("DNSD_REQUIRE_NETNS").is_some() {
        panic!("network namespaces are required (DNSD_REQUIRE_NETNS) but {why}");
    }
    eprintln!("skipping multihost::resolves_across_namespaces_and_recovers_from_a_cut_link: {why}");
}

#[test]
#[cfg_attr(missing_netns, ignore = "needs root and iproute2 (network namespaces)")]
fn resolves_across_namespaces_and_recovers_from_a_cut_link() {
    remove_stale_namespaces();
    let mut lab = Lab {
        prefix: format!("dnsdmh-{}", std::process::id()),
        netns: Vec::new(),
        procs: Vec::new(),
    };
    // The one probe that decides between running and skipping: can a namespace be made?
    let switch = lab.ns("switch");
    if let Err(e) = lab.add_netns(&switch) {
        return skip(&format!("cannot create a network namespace ({e})"));
    }
    build_network(&mut lab);

    // TLD servers, then the root with a table of their addresses, then the local server.
    let dir = tempfile::tempdir().unwrap();
    let mut table = String::new();
    for tld in ["com", "gov", "org"] {
        let zone = zones(&format!("{tld}.dat"));
        let bind = Lab::addr(tld);
        let addr = lab.start(
            tld,
            &[
                "tld",
                tld,
                zone.to_str().unwrap(),
                "--bind",
                &bind,
                "--port",
                "0",
            ],
        );
        assert_eq!(addr.ip().to_string(), bind);
        table.push_str(&format!("{tld} {} {}\n", addr.ip(), addr.port()));
    }
    let table_path = dir.path().join("root.dat");
    std::fs::write(&table_path, table).unwrap();
    let root = lab.start(
        "root",
        &[
            "root",
            table_path.to_str().unwrap(),
            "--bind",
            &Lab::addr("root"),
            "--port",
            "0",
        ],
    );
    let logs = dir.path().join("logs");
    let local = lab.start(
        "local",
        &[
            "local",
            "--bind",
            &Lab::addr("local"),
            "--port",
            "0",
            "--root",
            &root.to_string(),
            "--upstream-timeout",
            &UPSTREAM_TIMEOUT.to_string(),
            "--log-dir",
            logs.to_str().unwrap(),
        ],
    );

    // Every TLD, through the root (R) and by referral (I), from another host.
    let (replies, _) = client(
        &lab,
        local,
        "www.google.com R\nwww.amazon.com I\nwww.nasa.gov R\nwww.irs.gov I\n\
         www.wikipedia.org R\nwww.mozilla.org I\nwww.google.com R\nnosuch.org I\n",
    );
    assert_eq!(
        replies,
        [
            "0X01, default_local, 142.250.72.4",
            "0X01, default_local, 205.251.242.103",
            "0X01, default_local, 52.0.14.116",
            "0X01, default_local, 23.45.100.10",
            "0X01, default_local, 208.80.154.224",
            "0X01, default_local, 44.236.72.93",
            "0X00, default_local, 142.250.72.4",
            "0XFF, default_local, Host not found",
        ]
    );

    // Cut the com server's link: names under com not in the cache fail within the
    // upstream timeout, in both modes; the other TLDs still answer.
    must(ip(&["-n", &lab.ns("com"), "link", "set", "eth0", "down"]));
    let limit = Duration::from_secs_f64(UPSTREAM_TIMEOUT) + SLACK;
    for query in ["www.github.com R", "nosuch.com I"] {
        let (reply, took) = timed_query(&lab, local, query);
        assert_eq!(reply, "0XFE, default_local, Server failure", "{query}");
        assert!(took < limit, "{query}: 0XFE after {took:?}, over {limit:?}");
    }
    let (replies, _) = client(&lab, local, "nosuch.gov R\nwww.amazon.com I\n");
    assert_eq!(
        replies,
        [
            "0XFF, default_local, Host not found",
            "0X00, default_local, 205.251.242.103",
        ]
    );

    // Restore it: answers come back without restarting anything (the link may take a
    // moment, so a bounded number of tries).
    must(ip(&["-n", &lab.ns("com"), "link", "set", "eth0", "up"]));
    let deadline = Instant::now() + WAIT;
    let mut last = Vec::new();
    while last != ["0X01, default_local, 140.82.112.4"] {
        assert!(
            Instant::now() < deadline,
            "no answer from com within {WAIT:?} of restoring its link; last: {last:?}"
        );
        if !last.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
        last = client(&lab, local, "www.github.com R\n").0;
    }
    let (replies, _) = client(&lab, local, "nosuch.com I\nwww.github.com I\n");
    assert_eq!(
        replies,
        [
            "0XFF, default_local, Host not found",
            "0X00, default_local, 140.82.112.4",
        ]
    );

    // The local server kept its record of the session.
    let log = std::fs::read_to_string(logs.join("clients/alice.log")).unwrap();
    assert!(log.contains("1, www.google.com, R\n0X01, default_local, 142.250.72.4\n\n"));
}
