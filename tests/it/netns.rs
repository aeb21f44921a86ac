//! A network namespace of a test's own, for outside DNS servers that only serve a port
//! fixed in advance (NSD, Knot Resolver, PowerDNS Recursor: none can bind port 0 and say
//! which port it got). In a fresh namespace port 53 is always free, so no port is
//! guessed; and the namespace has only its loopback, so nothing a program there sends
//! (a resolver priming the real root, say) can leave the machine.
//!
//! Everything the test runs there (dnsd, the daemon, dig, `dnsd client`) runs through
//! `ip netns exec`, which execs the program: a started process's pid is the program's.
//! Dropping [`Netns`] kills what it started (by pid), then anything still in the
//! namespace (a daemon's forked children, by pid: only the test's own processes are in
//! it), then deletes the namespace.
//!
//! Where the build script finds that namespaces cannot be made (not root, no `ip`), the
//! tests are ignored; where making one fails when a test runs it prints `skipping: ...`
//! and passes, or, with `DNSD_REQUIRE_NETNS` set (as `.ci/run` sets it as root), fails.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::dns::{dig_by, Reply};
use crate::harness::{dnsd_bin, write_input, Proc, PATIENCE, WAIT};

/// The prefix of every namespace these tests make: `dnsdit-PID-N`.
const PREFIX: &str = "dnsdit-";

/// How long an outside daemon may take to answer its first query: they start slowly on
/// a loaded 2-core machine (NSD forks and reads its zones, PowerDNS Recursor sets up its
/// threads), so longer than [`WAIT`]; a daemon that exits fails at once.
pub const READY_WAIT: Duration = Duration::from_secs(30);

/// The pause between two readiness probes; each probe's own wait is at most 1 s.
const PROBE_PAUSE: Duration = Duration::from_millis(100);

/// How long a daemon has to exit after SIGTERM before the namespace's cleanup kills it.
const TERM_WAIT: Duration = Duration::from_secs(5);

/// A network namespace with its loopback up, and the processes started in it.
pub struct Netns {
    name: String,
    procs: Vec<Proc>,
}

impl Netns {
    /// Makes a namespace for `test`. `None` when it cannot be made and the test should
    /// skip (having said why); a panic instead with `DNSD_REQUIRE_NETNS` set.
    pub fn new(test: &str) -> Option<Netns> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        remove_stale_namespaces();
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = ip(&["netns", "add", &name]) {
            return skip(test, &format!("cannot create a network namespace ({e})"));
        }
        let ns = Netns {
            name,
            procs: Vec::new(),
        };
        if let Err(e) = ip(&["-n", &ns.name, "link", "set", "lo", "up"]) {
            panic!("{e}");
        }
        Some(ns)
    }

    /// `program` run in the namespace (through `ip netns exec`, which execs it).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Starts `command` (from [`command`](Self::command)), its stderr collected; it is
    /// killed when the namespace goes. Returns its index for [`stderr`](Self::stderr).
    pub fn spawn(&mut self, mut command: Command) -> usize {
        command.stdout(Stdio::null());
        self.procs.push(Proc::run(command));
        self.procs.len() - 1
    }

    /// The pid of the process started last (the program itself: `ip netns exec` execs
    /// it), and its index for [`stderr`](Self::stderr).
    pub fn last(&self) -> (u32, usize) {
        let index = self.procs.len() - 1;
        (self.procs[index].child.id(), index)
    }

    /// Makes `nameserver` the resolver of programs run in the namespace (`ip netns exec`
    /// mounts `/etc/netns/NAME/resolv.conf` over `/etc/resolv.conf`); removed with the
    /// namespace.
    pub fn resolver(&self, nameserver: &str) {
        let dir = Path::new("/etc/netns").join(&self.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("resolv.conf"),
            format!("nameserver {nameserver}\n"),
        )
        .unwrap();
    }

    /// Waits (bounded) for a stderr line of process `index` containing `needle`: a
    /// daemon's readiness line, where asking it would change what is tested.
    #[track_caller]
    pub fn wait_stderr(&self, index: usize, needle: &str) -> String {
        self.procs[index].wait_for(needle)
    }

    /// What process `index` has written to stderr so far.
    pub fn stderr(&self, index: usize) -> String {
        self.procs[index].stderr_text()
    }

    /// Starts `dnsd ARGS` in `dir` in the namespace and waits for its `listening on`.
    /// A server that asks upstreams waits [`PATIENCE`] for them.
    #[track_caller]
    pub fn dnsd(&mut self, args: &[&str], dir: &Path) -> SocketAddr {
        let mut command = self.command(dnsd_bin());
        command.args(args).current_dir(dir);
        if matches!(args.first(), Some(&("local" | "root"))) {
            command.args(["--upstream-timeout", &PATIENCE.as_secs().to_string()]);
        }
        let index = self.spawn(command);
        let proc = &mut self.procs[index];
        let addr = proc.wait_listening();
        proc.addr = Some(addr);
        addr
    }

    /// Sends `sig` (`HUP`, ...) to the dnsd started with [`dnsd`](Self::dnsd) that
    /// listens on `addr`.
    #[track_caller]
    pub fn signal(&self, addr: SocketAddr, sig: &str) {
        let proc = self.procs.iter().find(|p| p.addr == Some(addr));
        proc.unwrap_or_else(|| panic!("no dnsd on {addr}"))
            .signal(sig);
    }

    /// What the dnsd listening on `addr` has written to stderr so far.
    pub fn dnsd_stderr(&self, addr: SocketAddr) -> String {
        let proc = self.procs.iter().find(|p| p.addr == Some(addr));
        proc.map(Proc::stderr_text).unwrap_or_default()
    }

    /// Asks `server` with dig in the namespace (one try, a bounded wait).
    #[track_caller]
    pub fn dig(&self, server: SocketAddr, args: &[&str]) -> Reply {
        dig_by(self.command("dig"), server, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Asks `server` with dig until `ready` accepts the reply: a daemon is ready when it
    /// answers. Probes at most every [`PROBE_PAUSE`], each waiting at most 1 s, for at
    /// most [`READY_WAIT`]; fails at once if daemon `index` exits.
    #[track_caller]
    pub fn wait_ready(
        &mut self,
        index: usize,
        server: SocketAddr,
        args: &[&str],
        ready: impl Fn(&Reply) -> bool,
    ) {
        let started = Instant::now();
        let mut args = args.to_vec();
        args.push("+time=1");
        let mut last = String::new();
        let mut tries = 0;
        while started.elapsed() < READY_WAIT {
            if let Some(status) = self.procs[index].child.try_wait().unwrap() {
                // Its last lines may still be on their way through the pipe.
                self.procs[index].wait_stderr_end(Duration::from_secs(1));
                panic!(
                    "the server for {server} exited ({status}) before answering:\n{}",
                    self.stderr(index)
                );
            }
            tries += 1;
            match dig_by(self.command("dig"), server, &args) {
                Ok(reply) if ready(&reply) => {
                    eprintln!(
                        "{server} ready after {tries} probes, {:?}",
                        started.elapsed()
                    );
                    return;
                }
                Ok(reply) => last = reply.raw,
                Err(e) => last = e,
            }
            std::thread::sleep(PROBE_PAUSE);
        }
        panic!(
            "{server} did not answer {args:?} within {READY_WAIT:?} ({tries} probes); \
             last:\n{last}\nstderr:\n{}",
            self.stderr(index)
        );
    }

    /// Runs `dnsd client alice --server LOCAL` in the namespace with `input`, and returns
    /// its reply lines after the greeting.
    #[track_caller]
    pub fn client(&self, local: SocketAddr, input: &str) -> Vec<String> {
        let mut child = self
            .command(dnsd_bin())
            .args(["client", "alice", "--server", &local.to_string()])
            .args(["--timeout", &WAIT.as_secs().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dnsd client");
        write_input(&mut child, input);
        // The client gives up on each reply after `--timeout`: a bounded wait in all.
        let deadline = Instant::now() + WAIT * (input.lines().count() as u32 + 1);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dnsd client did not finish (input {input:?})");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
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
        lines
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // SIGTERM first, by pid: a daemon that forks (NSD) then stops its children.
        for proc in &mut self.procs {
            if proc.child.try_wait().ok().flatten().is_none() {
                signal("TERM", proc.child.id());
            }
        }
        let deadline = Instant::now() + TERM_WAIT;
        while Instant::now() < deadline
            && self
                .procs
                .iter_mut()
                .any(|p| p.child.try_wait().ok().flatten().is_none())
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SIGKILL to any still running (by its pid, through `Child`), and reaped.
        self.procs.clear();
        kill_all_in(&self.name);
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cannot delete namespace {}: {e}", self.name);
        }
        let etc = Path::new("/etc/netns").join(&self.name);
        if etc.exists() {
            let _ = std::fs::remove_dir_all(etc);
        }
    }
}

/// Kills (SIGKILL, by pid) every process left in namespace `name`: what the processes
/// a test started there forked, so the test's own. Bounded in time.
fn kill_all_in(name: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = pids(name);
        if left.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in left {
            signal("KILL", pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids of the processes in namespace `name`.
fn pids(name: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `SIG` to `pid`.
fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
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

/// Deletes namespaces left by an earlier test run that was killed before its cleanup
/// ran, with what still runs in them: only ours (`dnsdit-PID-N`) of a PID that no
/// longer runs.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            kill_all_in(name);
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Says why `test` is skipped and returns `None`, or fails it with `DNSD_REQUIRE_NETNS`.
fn skip(test: &str, why: &str) -> Option<Netns> {
    if std::env::var_os("DNSD_REQUIRE_NETNS").is_some() {
        panic!("{test}: network namespaces are required (DNSD_REQUIRE_NETNS) but {why}");
    }
    eprintln!("skipping: {test}: {why}");
    None
}
