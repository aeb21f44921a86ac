//! `dnsd check`: the sample zones pass with a summary; each kind of bad file exits 2
//! with every problem in it listed, one exact `FILE:LINE: ...` line each.

use std::path::Path;

use crate::harness::{run_dnsd, zones};

/// Writes `file` with `text` in a fresh directory, runs `dnsd check ARGS` there, and
/// checks that it exits 2 with exactly `expected` on stderr, then the count.
#[track_caller]
fn bad(file: &str, text: &str, args: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), text).unwrap();
    let mut argv = vec!["check"];
    argv.extend_from_slice(args);
    let (code, stdout, stderr) = run_dnsd(&argv, dir.path(), "");
    assert_eq!(code, 2, "dnsd {argv:?}:\n{stdout}\n{stderr}");
    let count = match expected.len() {
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    let mut lines: Vec<String> = expected.iter().map(|l| l.to_string()).collect();
    lines.push(format!("error: {count} in 1 of 1 file"));
    assert_eq!(stderr.lines().collect::<Vec<_>>(), lines, "dnsd {argv:?}");
    assert!(
        stdout.ends_with(&format!("\n  {count}\n")),
        "dnsd {argv:?}:\n{stdout}"
    );
}

#[test]
fn sample_zones_are_good_with_a_summary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(dir.join("zones"))
        .unwrap()
        .map(|e| format!("zones/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    let mut argv = vec!["check"];
    argv.extend(files.iter().map(String::as_str));
    let (code, stdout, stderr) = run_dnsd(&argv, dir, "");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stderr, "");
    let lines: Vec<&str> = stdout.lines().collect();
    let com = lines
        .iter()
        .position(|l| l.starts_with("zones/com.dat:"))
        .unwrap();
    assert_eq!(
        lines[com..com + 6],
        [
            "zones/com.dat: zone (or cache) file, legacy (its first line has 2 fields: NAME ADDR)",
            "  names       3",
            "  records     3: 3 IPv4 (A), 0 IPv6 (AAAA); 3 distinct addresses",
            "  TTLs        3600 s on every record; zone TTL 3600 s; negative TTL 300 s",
            "  www. rule   no name is also present as www.NAME",
            "  shared      no address is under two names",
        ]
    );
    for (table, format) in [("zones/root.dat", "legacy"), ("zones/root.toml", "TOML")] {
        let at = lines.iter().position(|l| l.starts_with(table)).unwrap();
        assert_eq!(
            lines[at],
            format!("{table}: root table, {format} (named root.*)")
        );
        assert_eq!(
            lines[at + 1],
            "  TLDs        3: com 127.0.0.1:5678, gov 127.0.0.1:5680, org 127.0.0.1:5679"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("zones/")).count(),
        files.len()
    );
    assert_eq!(lines.last(), Some(&"12 files checked: no problems"));
}

/// A table named anything is found by its content; TOML TTLs, the `www.` rule and
/// shared addresses are explained.
#[test]
fn content_decides_and_warnings_explain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("tlds.dat"),
        "# table\ncom 127.0.0.1 5678\nnet 127.0.0.1 5678\n",
    )
    .unwrap();
    std::fs::write(
        d.join("z.toml"),
        "ttl = 60\nnegative_ttl = 30\n[records]\n\"x.com\" = \"1.1.1.1\"\n\
         \"www.x.com\" = { addresses = [\"2.2.2.2\", \"::1\"], ttl = 600 }\n\"y.com\" = \"1.1.1.1\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_dnsd(&["check", "tlds.dat", "z.toml"], d, "");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "tlds.dat: root table, legacy (its first line has 3 fields: TLD HOST PORT)",
            "  TLDs        2: com 127.0.0.1:5678, net 127.0.0.1:5678",
            "  shared      a TLD server answers for one TLD only; these are given for several:",
            "                127.0.0.1:5678: com, net",
            "z.toml: zone (or cache) file, TOML (its first table is [records])",
            "  names       3",
            "  records     4: 3 IPv4 (A), 1 IPv6 (AAAA); 3 distinct addresses",
            "  TTLs        60 s to 600 s; zone TTL 60 s; negative TTL 30 s",
            "  www. rule   1 name is also present as www.NAME: asked, NAME answers with",
            "              its own address, so the rule (NAME finds www.NAME) never applies to it",
            "              and each name is reached only by itself:",
            "                x.com 1.1.1.1, www.x.com 2.2.2.2",
            "  shared      1 address is under several names:",
            "                1.1.1.1: x.com, y.com",
            "2 files checked: no problems",
        ]
    );
}

#[test]
fn legacy_zone_lists_every_problem() {
    bad(
        "z.dat",
        "www.a.com 1.1.1.1\nwww.b.com\nwww.c.com 1.2.3\n# fine\nwww..d.com 4.4.4.4\n\
         WWW.a.com. 1.1.1.1\nwww.e.com 5.5.5.5 extra\nwww.f.com 300.1.1.1\n",
        &["z.dat"],
        &[
            "z.dat:2: expected `NAME ADDRESS`, found 1 field",
            "z.dat:3: bad address \"1.2.3\": not an IPv4 or IPv6 literal",
            "z.dat:5: bad name \"www..d.com\": empty label",
            "z.dat:6: duplicate record www.a.com 1.1.1.1",
            "z.dat:7: expected `NAME ADDRESS`, found 3 fields",
            "z.dat:8: bad address \"300.1.1.1\": not an IPv4 or IPv6 literal",
        ],
    );
}

#[test]
fn bad_names_are_each_reported() {
    bad(
        "names.dat",
        "bad 1.1.1.1\n-a.com 1.1.1.2\na_b.com 1.1.1.3\nx.123 1.1.1.4\n",
        &["names.dat"],
        &[
            "names.dat:1: bad name \"bad\": a single label is a TLD, not a host name under one",
            "names.dat:2: bad name \"-a.com\": label starts or ends with a hyphen",
            "names.dat:3: bad name \"a_b.com\": character '_' is not a letter, digit, hyphen or dot",
            "names.dat:4: bad name \"x.123\": all-numeric top-level domain (an IP address is not a name)",
        ],
    );
}

#[test]
fn toml_zone_lists_every_problem() {
    // The line-by-line reader.
    bad(
        "z.toml",
        "# zone\n[records]\n\"a.com\" = \"1.1.1.1\"\n\"b.com\" = \"1.2.3\"\n\"A.com\" = \"2.2.2.2\"\n\
         c = \"3.3.3.3\"\n",
        &["z.toml"],
        &[
            "z.toml:4: bad address \"1.2.3\": not an IPv4 or IPv6 literal",
            "z.toml:5: duplicate name a.com",
            "z.toml:6: bad name \"c\": a single label is a TLD, not a host name under one",
        ],
    );
    // The full parser (lists, tables, a zone TTL).
    bad(
        "full.toml",
        "ttl = 60\n[records]\n\"a.com\" = [\"1.1.1.1\", \"x\", \"1.1.1.1\"]\n\"b.com\" = []\n\
         \"c.com\" = { address = \"::g\", ttl = 5 }\n",
        &["full.toml"],
        &[
            "full.toml:3: bad address \"x\": not an IPv4 or IPv6 literal",
            "full.toml:3: duplicate record a.com 1.1.1.1",
            "full.toml:4: \"b.com\" has no address",
            "full.toml:5: bad address \"::g\": not an IPv4 or IPv6 literal",
        ],
    );
}

#[test]
fn toml_syntax_error_is_one_problem() {
    bad(
        "syn.toml",
        "[records]\n\"a.com\" = \"1.2.3\"\n\"b.com\" = \n\"c\" = \"1.1.1.1\"\n",
        &["syn.toml"],
        &["syn.toml:3: invalid string; expected `\"`, `'`"],
    );
    bad(
        "unk.toml",
        "[records]\n\"a.com\" = \"1.1.1.1\"\n[recrods]\n\"b.com\" = \"1.1.1.1\"\n",
        &["unk.toml"],
        &["unk.toml:3: unknown field `recrods`, expected one of `ttl`, `negative_ttl`, `records`"],
    );
}

#[test]
fn legacy_root_table_lists_every_problem() {
    bad(
        "root.dat",
        "com 127.0.0.1 5678\norg 127.0.0.1\nnet localhost 5681\nedu 127.0.0.1 99999\n\
         COM 127.0.0.1 5690\nn_t 127.0.0.1 5691\n",
        &["root.dat"],
        &[
            "root.dat:2: expected `TLD HOST PORT`, found 2 fields",
            "root.dat:3: bad host \"localhost\": not an IP address",
            "root.dat:4: bad port \"99999\"",
            "root.dat:5: duplicate TLD com",
            "root.dat:6: bad TLD \"n_t\": character '_' is not a letter, digit, hyphen or dot",
        ],
    );
}

#[test]
fn toml_root_table_lists_every_problem() {
    bad(
        "tlds.toml",
        "[tlds]\ncom = \"127.0.0.1:5678\"\nnet = \"127.0.0.1\"\nCOM = \"127.0.0.1:1\"\n\
         org = \"[::1]:5679\"\n\"9\" = \"127.0.0.1:2\"\n",
        &["tlds.toml"],
        &[
            "tlds.toml:3: bad address \"127.0.0.1\": expected IP:PORT",
            "tlds.toml:4: duplicate TLD com",
            "tlds.toml:6: bad TLD \"9\": all-numeric top-level domain (an IP address is not a name)",
        ],
    );
}

/// `--root` and `--zone` override the name and the content.
#[test]
fn told_kind_wins() {
    bad(
        "root.dat",
        "www.a.com 1.1.1.1\nwww.b.com 2.2.2.2\n",
        &["--root", "root.dat"],
        &[
            "root.dat:1: expected `TLD HOST PORT`, found 2 fields",
            "root.dat:2: expected `TLD HOST PORT`, found 2 fields",
        ],
    );
    bad(
        "t.dat",
        "com 127.0.0.1 5678\n",
        &["--zone", "t.dat"],
        &["t.dat:1: expected `NAME ADDRESS`, found 3 fields"],
    );
}

#[test]
fn unreadable_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.dat"), "www.a.com 1.1.1.1\n").unwrap();
    let (code, stdout, stderr) = run_dnsd(&["check", "ok.dat", "nosuch.dat"], dir.path(), "");
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "nosuch.dat: cannot read: No such file or directory (os error 2)",
            "error: 1 problem in 1 of 2 files",
        ]
    );
    assert!(
        stdout.starts_with("ok.dat: zone (or cache) file"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("nosuch.dat: not read\n  1 problem\n"),
        "{stdout}"
    );
    let (code, _, stderr) = run_dnsd(&["check"], dir.path(), "");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no file to check"), "{stderr}");
}

/// Problems in several files: each file's own, and the count over all.
#[test]
fn several_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.dat"), "a.com 1.1.1.1\na.com 1.1.1.1\n").unwrap();
    std::fs::write(d.join("b.toml"), "[tlds]\ncom = \"x\"\norg = \"y\"\n").unwrap();
    let com = zones("com.dat");
    let (code, _, stderr) = run_dnsd(&["check", "a.dat", com.to_str().unwrap(), "b.toml"], d, "");
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "a.dat:2: duplicate record a.com 1.1.1.1",
            "b.toml:2: bad address \"x\": expected IP:PORT",
            "b.toml:3: bad address \"y\": expected IP:PORT",
            "error: 3 problems in 2 of 3 files",
        ]
    );
}
