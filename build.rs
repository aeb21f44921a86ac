//! Finds the outside tools some integration tests need, checked as `.ci/run` checks them,
//! and sets `cfg(missing_NAME)` for each one that is not here. The tests that need it carry
//! `#[cfg_attr(missing_NAME, ignore = "needs ...")]`, so `cargo test` lists them as
//! ignored, with what to install, instead of passing them without running.
//!
//! A `DNSD_REQUIRE_*` variable (`.ci/run` sets them) keeps its cfgs unset whatever is
//! found: those tests run, and fail if their tool is missing.
//! `DNSD_PRETEND_MISSING="dig netns"` (cfg names, without `missing_`) treats those as
//! missing, to see the ignores on a machine that has the tools.
//! Cargo runs this again when PATH, one of these variables or a directory on PATH changes
//! (installing a tool adds a file there). It never fails the build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DNS_TOOLS: &str = "DNSD_REQUIRE_DNS_TOOLS";
const PYTHON2: &str = "DNSD_REQUIRE_PYTHON2";
const NETNS: &str = "DNSD_REQUIRE_NETNS";
const BROWSER: &str = "DNSD_REQUIRE_BROWSER";

fn main() {
    for var in [
        "PATH",
        DNS_TOOLS,
        PYTHON2,
        NETNS,
        BROWSER,
        "DNSD_PRETEND_MISSING",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let path = env::var_os("PATH").unwrap_or_default();
    for dir in env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]) {
        if dir.is_absolute() && dir.is_dir() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }

    // Running as root with `ip`: the multi-host test makes network namespaces with it.
    let netns = !pretend("netns") && is_root() && on_path("ip");
    let crate_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let checks = [
        ("dig", DNS_TOOLS, runs("dig", &["-v"])),
        ("unbound", DNS_TOOLS, runs_sbin("unbound", &["-V"])),
        (
            "dnspython",
            DNS_TOOLS,
            runs("python3", &["-c", "import dns.message, dns.query"]),
        ),
        ("dnsviz", DNS_TOOLS, on_path("dnsviz")),
        // The interop tests run these on port 53 in network namespaces of their own.
        ("kresd", DNS_TOOLS, runs_sbin("kresd", &["--version"])),
        (
            "pdns_recursor",
            DNS_TOOLS,
            runs_sbin("pdns_recursor", &["--version"]),
        ),
        ("nsd", DNS_TOOLS, runs_sbin("nsd", &["-v"])),
        // The rotation test runs Debian's logrotate with examples/logrotate.conf.
        (
            "logrotate",
            DNS_TOOLS,
            runs_sbin("logrotate", &["--version"]),
        ),
        // The full-disk test mounts a small tmpfs in a mount namespace of its own.
        (
            "mount_ns",
            NETNS,
            is_root() && on_path("unshare") && on_path("mount"),
        ),
        // Knot's dig: the zone transfer tests ask AXFR with it.
        ("kdig", DNS_TOOLS, runs("kdig", &["--version"])),
        // `dnsd check` is compared with these on master files.
        (
            "checkzone",
            DNS_TOOLS,
            runs_sbin("nsd-checkzone", &["-h"]) && runs_sbin("named-checkzone", &["-v"]),
        ),
        // Its test runs dnsd on port 53 in a network namespace of its own.
        (
            "zonemaster",
            DNS_TOOLS,
            on_path("zonemaster-cli") && netns && on_path("unshare") && on_path("nsenter"),
        ),
        ("python2", PYTHON2, python2_runs_the_originals(&crate_dir)),
        // The web view's test drives headless Chromium through chromedriver.
        (
            "chromium",
            BROWSER,
            on_path("chromium") && on_path("chromedriver") && on_path("python3"),
        ),
        ("netns", NETNS, netns),
        ("dev_full", "", Path::new("/dev/full").exists()), // no variable requires it
    ];
    for (name, require, found) in checks {
        println!("cargo::rustc-check-cfg=cfg(missing_{name})");
        let required = !require.is_empty() && env::var_os(require).is_some();
        if !required && (!found || pretend(name)) {
            println!("cargo::rustc-cfg=missing_{name}");
        }
    }
}

/// Whether `DNSD_PRETEND_MISSING` names `name`.
fn pretend(name: &str) -> bool {
    env::var("DNSD_PRETEND_MISSING")
        .unwrap_or_default()
        .split([' ', ','])
        .any(|n| n == name)
}

/// Whether `program ARGS` runs and exits 0.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `program ARGS` runs and exits 0, `program` on PATH or in `/usr/sbin` (where
/// Debian puts daemons; not on a non-root PATH).
fn runs_sbin(program: &str, args: &[&str]) -> bool {
    runs(program, args) || runs(&format!("/usr/sbin/{program}"), args)
}

/// Whether `program` is a file in a directory on PATH (`command -v`).
fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Whether python2 2.7.18 (through pyenv) compiles the original `local.py`: in
/// `shared/seed` beside the repository, else in `/work/shared/seed`.
fn python2_runs_the_originals(crate_dir: &Path) -> bool {
    let beside = crate_dir.join("../shared/seed/local.py");
    let local = if beside.is_file() {
        beside
    } else {
        PathBuf::from("/work/shared/seed/local.py")
    };
    let check = "import socket, sys, thread; compile(open(sys.argv[1]).read(), 'local.py', 'exec')";
    local.is_file()
        && Command::new("python2")
            .env("PYENV_VERSION", "2.7.18")
            .args(["-c", check])
            .arg(&local)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}
