//! Outside DNS compliance suites against the root and a TLD server: header flags,
//! unknown opcodes and types, TCP, EDNS versions, options and flags. Every test must be
//! ok.
//!
//! - `dnsviz probe -A -E` + `dnsviz grok` (Debian `dnsviz`): no error, no warning;
//! - `zonemaster-cli --test nameserver` (Debian `zonemaster-cli`): nothing at NOTICE or
//!   above. It only speaks to port 53, so the server runs in a network namespace of its
//!   own (`unshare -n`, loopback only), which takes root;
//! - `dnscompliance.py` (beside this file, ours, with dnspython): ISC genreport's tests
//!   re-stated, which check the header flags of NOTIMP and BADVERS answers that the two
//!   suites above do not.
//!
//! Where the build script (`build.rs`) finds a tool missing (or, for Zonemaster, not
//! being root), the test is ignored, saying what it needs, unless `DNSD_REQUIRE_DNS_TOOLS`
//! is set. A tool missing when the test runs prints `skipping: ...` and passes, unless
//! `DNSD_REQUIRE_DNS_TOOLS=1`, when it fails.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dnsd::ops::metrics::Metrics;
use dnsd::roles::root::RootConfig;
use dnsd::roles::tld::TldConfig;
use dnsd::roles::{RoleConfig, Running};
use dnsd::server::Shutdown;
use dnsd::zone::{RootTable, Zone};

use crate::harness::{dnsd_bin, zones, Proc};

/// The most one suite may take against one server (each takes a few seconds).
const SUITE_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether every one of `tools` is here (and, if `root`, we are root). If not, prints
/// why and returns false, or fails the test when `DNSD_REQUIRE_DNS_TOOLS=1`.
#[track_caller]
fn have(test: &str, tools: &[&str], root: bool) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|tool| !on_path(tool))
        .map(|tool| format!("no `{tool}` on PATH"))
        .collect();
    if root && !is_root() {
        missing.push("not running as root".into());
    }
    missing.is_empty() || skip(test, &missing.join(", "))
}

/// Prints why `test` is skipped and returns false, or fails it when
/// `DNSD_REQUIRE_DNS_TOOLS=1`.
#[track_caller]
fn skip(test: &str, why: &str) -> bool {
    if std::env::var("DNSD_REQUIRE_DNS_TOOLS").is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and DNSD_REQUIRE_DNS_TOOLS=1");
    }
    eprintln!("skipping: {test}: {why}");
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Whether `python3` imports dnspython; a [`skip`] when it does not.
fn have_dnspython(test: &str) -> bool {
    let imports = Command::new("python3")
        .args(["-c", "import dns.message, dns.edns"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    imports || skip(test, "`python3` cannot import dnspython")
}

/// Runs `command` to its end, within [`SUITE_TIMEOUT`] (killed, by its pid, past it).
#[track_caller]
fn run(mut command: Command) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = drain(&mut child, true);
    let stderr = drain(&mut child, false);
    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {SUITE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Reads one of the child's pipes to its end on a thread, so that it never blocks on a
/// full pipe.
fn drain(child: &mut Child, stdout: bool) -> std::thread::JoinHandle<Vec<u8>> {
    let mut pipe: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().unwrap())
    } else {
        Box::new(child.stderr.take().unwrap())
    };
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The root (table `zones/root.dat`) and the `com` server (`zones/com.dat`), in this
/// process on free loopback ports; stopped when dropped.
struct Servers {
    root: SocketAddr,
    com: SocketAddr,
    shutdown: Shutdown,
    running: Vec<Running>,
}

impl Servers {
    fn start() -> Servers {
        let shutdown = Shutdown::new();
        let zone = Zone::load(&zones("com.dat")).unwrap();
        let com = TldConfig::new("com", zone)
            .start(shutdown.clone(), &Metrics::disabled())
            .unwrap();
        let table = RootTable::load(&zones("root.dat")).unwrap();
        let root = RootConfig::new(table)
            .start(shutdown.clone(), &Metrics::disabled())
            .unwrap();
        Servers {
            root: root.addr,
            com: com.addr,
            shutdown,
            running: vec![root, com],
        }
    }

    /// (zone, its server's name, its address) for each server probed.
    fn probed(&self) -> [(&'static str, &'static str, SocketAddr); 2] {
        [(".", "ns.root", self.root), ("com", "ns.com", self.com)]
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.shutdown.trigger();
        for r in self.running.drain(..) {
            r.join();
        }
    }
}

/// Every `errors` and `warnings` entry anywhere in dnsviz's grok output.
fn dnsviz_findings(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("errors" | "warnings", serde_json::Value::Array(list)) => {
                        out.extend(list.iter().map(|e| format!("{path} {key}: {e}")))
                    }
                    _ => dnsviz_findings(v, &format!("{path}/{key}"), out),
                }
            }
        }
        serde_json::Value::Array(list) => {
            for v in list {
                dnsviz_findings(v, path, out);
            }
        }
        _ => {}
    }
}

#[test]
#[cfg_attr(missing_dnsviz, ignore = "needs dnsviz: scripts/ci-deps.sh dnsviz")]
fn dnsviz_finds_no_error_or_warning() {
    if !have("dnsviz", &["dnsviz"], false) {
        return;
    }
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    for (zone, ns, addr) in servers.probed() {
        let probe = dir.path().join(format!("probe{}.json", addr.port()));
        let grok = dir.path().join(format!("grok{}.json", addr.port()));
        // -A: authoritative servers only, the ones given by -x ("+": ask no ancestor);
        // -E: the EDNS compatibility queries (versions, options, flags, TCP).
        let mut command = Command::new("dnsviz");
        command.args(["probe", "-A", "-E", "-4", "-p", "-x"]);
        command.arg(format!("{zone}+:{ns}={}:{}", addr.ip(), addr.port()));
        command.arg("-o").arg(&probe).arg(zone);
        let out = run(command);
        assert!(out.status.success(), "dnsviz probe: {}", text(&out.stderr));
        let mut command = Command::new("dnsviz");
        command
            .args(["grok", "-r"])
            .arg(&probe)
            .arg("-o")
            .arg(&grok);
        let out = run(command);
        assert!(out.status.success(), "dnsviz grok: {}", text(&out.stderr));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&grok).unwrap()).unwrap();
        let fqdn = if zone == "." { "." } else { "com." };
        assert!(
            report.get(fqdn).is_some(),
            "no analysis of {fqdn}: {report}"
        );
        let mut findings = Vec::new();
        dnsviz_findings(&report, "", &mut findings);
        eprintln!("dnsviz {zone} at {addr}: {} findings", findings.len());
        assert!(
            findings.is_empty(),
            "dnsviz on {zone}:\n{}",
            findings.join("\n")
        );
    }
}

#[test]
#[cfg_attr(
    missing_dnspython,
    ignore = "needs dnspython: scripts/ci-deps.sh dnspython"
)]
fn genreport_tests_are_all_ok() {
    if !have_dnspython("dnscompliance.py") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/dnscompliance.py");
    let servers = Servers::start();
    for (zone, _, addr) in servers.probed() {
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .args([zone, &addr.ip().to_string(), &addr.port().to_string()]);
        // Each query may wait 10 s: a loaded machine is slow, not wrong.
        command.args(["--full", "--timeout", "10"]);
        let out = run(command);
        let report = text(&out.stdout);
        eprint!("{report}");
        assert!(out.status.success(), "{report}{}", text(&out.stderr));
        assert!(report.ends_with("31 passed, 0 failed\n"), "{report}");
    }
}

#[test]
#[cfg_attr(
    missing_zonemaster,
    ignore = "needs zonemaster-cli (scripts/ci-deps.sh zonemaster), root and iproute2 (network namespaces)"
)]
fn zonemaster_nameserver_tests_are_all_ok() {
    let tools = ["zonemaster-cli", "unshare", "nsenter", "ip"];
    if !have("zonemaster-cli", &tools, true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Zonemaster's own root hints, pointed at the namespace's loopback: without them it
    // tries the real root servers for `.` (unreachable there, so errors).
    let hints = dir.path().join("hints.zone");
    std::fs::write(
        &hints,
        ".\t3600000\tIN\tNS\tns.root.\nns.root.\t3600000\tIN\tA\t127.0.0.1\n",
    )
    .unwrap();
    let root_table = zones("root.dat");
    let com_zone = zones("com.dat");
    for (zone, ns, args) in [
        (".", "ns.root", vec!["root", root_table.to_str().unwrap()]),
        (
            "com",
            "ns.com",
            vec!["tld", "com", com_zone.to_str().unwrap()],
        ),
    ] {
        // dnsd on port 53 in a network namespace of its own: `unshare` and the shell
        // exec, so the pid is dnsd's, and killing it (on drop) ends the namespace.
        let mut command = Command::new("unshare");
        command
            .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(dnsd_bin())
            .args(&args)
            .args(["--port", "53", "--bind", "127.0.0.1"]);
        let mut server = Proc::run(command);
        server.addr = Some(server.wait_listening());
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/proc/{}/ns/net", server.child.id()))
            .args(["zonemaster-cli", "--json", "--level", "INFO", "--no-ipv6"])
            .args(["--test", "nameserver", "--hints"])
            .arg(&hints)
            .args(["--ns", &format!("{ns}/127.0.0.1"), zone]);
        let out = run(command);
        assert!(
            out.status.success(),
            "zonemaster-cli: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("zonemaster-cli output: {e}: {}", text(&out.stdout)));
        let level = |e: &serde_json::Value| e["level"].as_str().unwrap_or("").to_owned();
        let findings: Vec<String> = entries
            .iter()
            .filter(|e| !["INFO", "DEBUG"].contains(&level(e).as_str()))
            .map(|e| e.to_string())
            .collect();
        let testcases: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e["testcase"].as_str())
            .filter(|t| t.starts_with("NAMESERVER"))
            .collect();
        eprintln!(
            "zonemaster {zone}: {} testcases reporting, {} findings at NOTICE or above",
            testcases.len(),
            findings.len()
        );
        assert!(
            testcases.contains("NAMESERVER02") && testcases.contains("NAMESERVER08"),
            "Zonemaster did not test {zone}: {}",
            text(&out.stdout)
        );
        assert!(
            findings.is_empty(),
            "zonemaster on {zone}:\n{}",
            findings.join("\n")
        );
    }
}
