//! `dnsd up --config lab.toml`: a whole hierarchy from one file, zones inline or by
//! path; bad lab files are `FILE:LINE`, exit 2.

use std::net::SocketAddr;
use std::path::Path;

use crate::harness::{run_dnsd, Line, Proc};

/// Every port 0; com's zone from a file, edu's inline, a fixed cache entry inline.
const LAB: &str = r#"log_dir = "logs"
[limits]
max_connections = 64
[root]
port = 0
[local]
port = 0
ttl = 60.0
[local.records]
"www.fixed.com" = "10.1.1.1"
[tld.com]
port = 0
zone = "zones/com.dat"
[tld.edu]
port = 0
[tld.edu.records]
"www.mit.edu" = ["18.9.22.69", "2001:db8::69"]
"#;

fn lab_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/com.dat"), "www.a.com 10.0.0.1\n").unwrap();
    std::fs::write(dir.path().join("lab.toml"), LAB).unwrap();
    dir
}

fn local_addr(up: &Proc) -> SocketAddr {
    let line = up.wait_for("default_local: listening on ");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_lab_file_starts_a_hierarchy_that_answers_and_reloads() {
    let dir = lab_dir();
    let up = Proc::start(&["up", "--config", "lab.toml"], dir.path());
    let mut c = Line::connect(local_addr(&up));
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(c.ask("1, www.a.com, I"), "0X01, default_local, 10.0.0.1");
    assert_eq!(c.ask("2, mit.edu, R"), "0X01, default_local, 18.9.22.69");
    assert_eq!(
        c.ask("3, www.fixed.com, R"),
        "0X00, default_local, 10.1.1.1"
    );
    assert_eq!(
        c.ask("4, www.a.org, R"),
        "0XFF, default_local, Host not found"
    );
    assert!(dir.path().join("logs/clients/alice.log").is_file());

    let edited = LAB.replace("18.9.22.69", "18.9.22.70").replace(
        "\"2001:db8::69\"]",
        "\"2001:db8::69\"]\n\"www.cs.mit.edu\" = \"18.9.22.71\"",
    );
    std::fs::write(dir.path().join("lab.toml"), edited).unwrap();
    std::fs::write(dir.path().join("zones/com.dat"), "www.b.com 10.0.0.2\n").unwrap();
    up.signal("HUP");
    up.wait_for("edu: reloaded lab.toml (2 names)");
    up.wait_for("com: reloaded zones/com.dat (1 names)");
    up.wait_for("default_local: reloaded lab.toml (1 names)");
    up.wait_for("root: nothing to re-read");
    assert_eq!(c.ask("5, cs.mit.edu, I"), "0X01, default_local, 18.9.22.71");
    assert_eq!(c.ask("6, www.b.com, I"), "0X01, default_local, 10.0.0.2");

    std::fs::write(
        dir.path().join("lab.toml"),
        LAB.replace("\"10.1.1.1\"", "\"10.1.1\""),
    )
    .unwrap();
    up.signal("HUP");
    let error = up.wait_for("lab.toml:10:");
    assert!(error.contains("default_local: reload failed"), "{error}");
    assert_eq!(
        c.ask("7, www.fixed.com, R"),
        "0X00, default_local, 10.1.1.1"
    );
}

#[test]
fn bad_lab_files_name_the_file_and_line() {
    let dir = lab_dir();
    let cases = [
        (
            LAB.replace("ttl = 60.0", "tll = 60.0"),
            "lab.toml:8: unknown field `tll`",
        ),
        (
            LAB.replace("\"10.1.1.1\"", "\"10.1.1\""),
            "lab.toml:10: bad address \"10.1.1\"",
        ),
        (
            LAB.replace("[tld.edu]\nport = 0\n", ""),
            "lab.toml:14: tld.edu: no default port",
        ),
        (
            LAB.replace("port = 0\nzone", "port = 0\nbind = \"nope\"\nzone"),
            "lab.toml:13: bad address \"nope\"",
        ),
        (
            LAB.replace("zones/com.dat", "zones/none.dat"),
            "zones/none.dat: cannot read",
        ),
        (LAB.replace("[limits]", "[limits\n"), "lab.toml:2: "),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("bad.toml"), &text).unwrap();
        let (code, _, stderr) = run_dnsd(&["up", "--config", "bad.toml"], dir.path(), "");
        let expected = expected.replace("lab.toml", "bad.toml");
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!("error: {expected}")),
            "want {expected:?}, got {stderr}"
        );
    }
    std::fs::write(dir.path().join("zones/com.dat"), "www.a.com 1.2.3\n").unwrap();
    let (code, _, stderr) = run_dnsd(&["up", "--config", "lab.toml"], dir.path(), "");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("error: zones/com.dat:1: bad address"),
        "{stderr}"
    );
    assert!(!Path::new(&dir.path().join("logs/clients/alice.log")).exists());
}

/// The lab file replaces the other flags: one given beside it is refused, not ignored.
#[test]
fn flags_the_lab_file_replaces_are_refused_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lab.toml"), LAB).unwrap();
    for flag in [
        &["--log-dir", "elsewhere"][..],
        &["--dns-mode", "R"],
        &["--upstream-timeout", "1"],
        &["--max-connections", "10"],
        &["--idle-timeout", "1"],
        &["--max-line", "100"],
        &["--edns-payload", "1232"],
        &["--any-port"],
    ] {
        let mut args = vec!["up", "--config", "lab.toml"];
        args.extend_from_slice(flag);
        let (code, _, stderr) = run_dnsd(&args, dir.path(), "");
        assert_eq!(code, 2, "{flag:?}: {stderr}");
        assert!(
            stderr.contains("cannot be used with") && stderr.contains(flag[0]),
            "{flag:?}: {stderr}"
        );
    }
}

/// The README shows examples/lab.toml as it is: copied from the README, it runs.
#[test]
fn the_readme_lab_block_is_examples_lab_toml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme.find("## A lab in one file").unwrap()..];
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```\n").next())
        .unwrap();
    let file = std::fs::read_to_string(root.join("examples/lab.toml")).unwrap();
    assert!(
        block == file,
        "README.md's lab block differs from examples/lab.toml"
    );
}
