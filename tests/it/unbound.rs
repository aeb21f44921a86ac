//! Interop with Unbound, a real resolver: dnsd's answers must come through it, (a) with
//! a `dnsd tld com` server as the stub for `com` (Unbound iterates: RD clear, EDNS 1232,
//! DO and CD set, QNAME minimisation), and (b) with `dnsd local` as the forwarder for
//! everything (RD set).
//!
//! Unbound cannot listen on port 0, nor tell which port it got: each start tries a
//! candidate port below the ephemeral range (where port-0 binds land) and, when that
//! port is taken (`could not open ports`), another one, at most [`ATTEMPTS`] times.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::dns::{com_zone_text, dig, py, pyq, require_tool, unbound_bin, Reply, Servers};
use crate::harness::{Proc, WAIT};

/// How many ports are tried before giving up.
const ATTEMPTS: u32 = 10;

/// Unbound's configuration, shared with the benchmarks' `scripts/dnsperf.sh`: loopback
/// only, foreground, no chroot, pidfile, privilege drop, remote control or DNSSEC
/// validation; upstreams on 127.0.0.1 allowed.
const BASE_CONF: &str = include_str!("../../scripts/unbound-base.conf");

/// A running Unbound, killed (by its pid, through `Child`) when dropped.
struct Unbound {
    _process: Process,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// An Unbound process and its stderr lines (collected on a thread); killed when dropped.
struct Process {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// How one start ended.
enum Started {
    Ready,
    PortTaken,
}

impl Unbound {
    /// Starts Unbound with the base configuration plus `zone` (a `stub-zone:` or
    /// `forward-zone:` clause), on the first free candidate port.
    #[track_caller]
    fn start(zone: &str) -> Unbound {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("unbound.conf");
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            ^ std::process::id().wrapping_mul(2_654_435_761);
        for attempt in 1..=ATTEMPTS {
            // 20000..32000: below Linux's ephemeral range (32768 and up).
            let port = 20_000 + (seed.wrapping_add(attempt.wrapping_mul(7_919)) % 12_000) as u16;
            let text = BASE_CONF
                .replace("@PORT@", &port.to_string())
                .replace("@DIR@", &dir.path().display().to_string())
                + zone;
            std::fs::write(&conf, text).unwrap();
            let mut command = Command::new(unbound_bin());
            command.arg("-d").arg("-c").arg(&conf);
            let mut process = Process::spawn(command);
            match process.wait_ready() {
                Started::Ready => {
                    return Unbound {
                        _process: process,
                        addr: SocketAddr::from(([127, 0, 0, 1], port)),
                        _dir: dir,
                    }
                }
                Started::PortTaken => eprintln!(
                    "unbound: port {port} is taken (attempt {attempt} of {ATTEMPTS}), \
                     trying another"
                ),
            }
        }
        panic!("unbound found no free port in {ATTEMPTS} attempts");
    }
}

impl Process {
    fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start unbound");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Process { child, stderr }
    }

    /// Waits (bounded) for `start of service`, or for an exit because the port is taken;
    /// panics on anything else.
    #[track_caller]
    fn wait_ready(&mut self) -> Started {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.has_line("start of service") {
                return Started::Ready;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread may still hold the last lines: wait for it, bounded.
                let until = Instant::now() + WAIT;
                while !self.has_line("could not open ports") && Instant::now() < until {
                    if Arc::strong_count(&self.stderr) == 1 {
                        break; // the reader is done: every line is in
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                if self.has_line("could not open ports") {
                    return Started::PortTaken;
                }
                panic!("unbound exited ({status}):\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("unbound not ready within {WAIT:?}:\n{}", self.stderr_text());
    }

    fn has_line(&self, needle: &str) -> bool {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every test asks Unbound, with dig over UDP and dnspython over TCP: an A, the
/// www rule's CNAME chain, NXDOMAIN with the SOA, an AAAA, 100 addresses (too many for
/// Unbound's 1232-byte EDNS buffer: dnsd truncates and Unbound retries over TCP), and a
/// name below an empty non-terminal (NODATA for `corp.com`, with QNAME minimisation).
#[track_caller]
fn assert_dnsd_answers_come_through(unbound: SocketAddr) {
    let a = dig(unbound, &["www.google.com"]);
    let cname = dig(unbound, &["google.com"]);
    let nx = dig(unbound, &["nope.com"]);
    let got = py(&[
        pyq(unbound, "www.google.com", "A", "tcp"),
        pyq(unbound, "google.com", "A", "tcp"),
        pyq(unbound, "nope.com", "A", "tcp"),
        pyq(unbound, "www.v6.com", "AAAA", "tcp"),
        pyq(unbound, "big.com", "A", "tcp"),
        pyq(unbound, "deep.nope.com", "A", "udp"),
        pyq(unbound, "corp.com", "A", "udp"),
        pyq(unbound, "mail.corp.com", "A", "udp"),
    ]);
    for (a, cname, nx) in [(&a, &cname, &nx), (&got[0], &got[1], &got[2])] {
        check(a, "NOERROR", &["www.google.com. A 142.250.72.4"]);
        check(
            cname,
            "NOERROR",
            &[
                "google.com. CNAME www.google.com.",
                "www.google.com. A 142.250.72.4",
            ],
        );
        check(nx, "NXDOMAIN", &[]);
        assert_eq!(nx.soa().name, "com.", "{}", nx.raw);
        assert_eq!(nx.soa_minimum(), 60, "{}", nx.raw);
    }
    check(&got[3], "NOERROR", &["www.v6.com. AAAA 2001:db8::6"]);
    check(&got[4], "NOERROR", &[]);
    check(&got[5], "NXDOMAIN", &[]);
    check(&got[6], "NOERROR", &[]);
    check(&got[7], "NOERROR", &["mail.corp.com. A 192.0.2.25"]);
}

#[track_caller]
fn check(reply: &Reply, rcode: &str, answers: &[&str]) {
    assert_eq!(reply.rcode, rcode, "{}", reply.raw);
    assert!(reply.flag("qr") && reply.flag("ra"), "{}", reply.raw);
    if reply.answer.len() > 10 {
        assert_eq!(reply.answer.len(), 100, "{}", reply.raw);
    } else {
        assert_eq!(reply.answers(), answers, "{}", reply.raw);
    }
}

#[test]
#[cfg_attr(
    any(missing_unbound, missing_dig, missing_dnspython),
    ignore = "needs unbound, dig and dnspython: scripts/ci-deps.sh unbound dig dnspython"
)]
fn unbound_iterates_to_a_dnsd_tld_server_as_its_stub_for_com() {
    if !(require_tool("unbound") && require_tool("dig") && require_tool("dnspython")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("com.toml"), com_zone_text()).unwrap();
    let tld = Proc::start(&["tld", "com", "com.toml", "--port", "0"], dir.path());
    let unbound = Unbound::start(&format!(
        "stub-zone:\n    name: \"com.\"\n    stub-addr: {}@{}\n",
        tld.addr().ip(),
        tld.addr().port()
    ));
    assert_dnsd_answers_come_through(unbound.addr);
}

#[test]
#[cfg_attr(
    any(missing_unbound, missing_dig, missing_dnspython),
    ignore = "needs unbound, dig and dnspython: scripts/ci-deps.sh unbound dig dnspython"
)]
fn unbound_forwards_everything_to_dnsd_local() {
    if !(require_tool("unbound") && require_tool("dig") && require_tool("dnspython")) {
        return;
    }
    let s = Servers::start();
    let unbound = Unbound::start(&format!(
        "forward-zone:\n    name: \".\"\n    forward-addr: {}@{}\n",
        s.local().ip(),
        s.local().port()
    ));
    assert_dnsd_answers_come_through(unbound.addr);
    // A TLD the root does not list: NXDOMAIN from the root, through both.
    let nx = dig(unbound.addr, &["www.example.zz"]);
    assert_eq!(nx.rcode, "NXDOMAIN", "{}", nx.raw);
}
