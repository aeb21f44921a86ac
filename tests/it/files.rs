//! The data files: legacy and TOML give the same answers, `zones/` holds the same
//! content in both formats, and a bad file stops the binary with exit 2 and
//! `FILE:LINE: what is wrong`.

use std::net::TcpListener;
use std::path::Path;

use dnsd::zone::{RootTable, Zone};

use crate::harness::{run_dnsd, zones, Hierarchy, Line, Proc};

/// Requests whose answers depend on every zone file and on the default cache.
const QUERIES: &[&str] = &[
    "1, www.google.com, R",
    "2, amazon.com, I",
    "3, github.com, R",
    "4, google.com, I",
    "5, www.nasa.gov, I",
    "6, irs.gov, R",
    "7, wikipedia.org, I",
    "8, www.mozilla.org, R",
    "9, example.com, R",
    "10, nosuch.com, I",
    "11, www.google.zz, R",
    "12, bad, R",
];

#[test]
fn legacy_and_toml_zones_give_the_same_answers() {
    let legacy = Hierarchy::start_with("dat", |c| c);
    let toml = Hierarchy::start_with("toml", |c| c);
    let mut a = legacy.client("alice");
    let mut b = toml.client("alice");
    let answers: Vec<String> = QUERIES.iter().map(|q| a.ask(q)).collect();
    for (q, expected) in QUERIES.iter().zip(&answers) {
        assert_eq!(&b.ask(q), expected, "{q}");
    }
    assert_eq!(answers[0], "0X01, default_local, 142.250.72.4");
    assert_eq!(answers[8], "0X00, default_local, 93.184.216.34");
    assert_eq!(answers[9], "0XFF, default_local, Host not found");
    // The same referral text apart from the port each TLD server landed on.
    let mut ra = Line::connect(legacy.root);
    let mut rb = Line::connect(toml.root);
    assert_eq!(
        ra.ask("1, www.irs.gov, I"),
        format!("0X02, root, gov {}", legacy.tld("gov"))
    );
    assert_eq!(
        rb.ask("1, www.irs.gov, I"),
        format!("0X02, root, gov {}", toml.tld("gov"))
    );
}

#[test]
fn sample_zones_have_the_same_content_in_both_formats() {
    for stem in ["com", "gov", "org", "default"] {
        let dat = Zone::load(&zones(&format!("{stem}.dat"))).unwrap();
        let toml = Zone::load(&zones(&format!("{stem}.toml"))).unwrap();
        assert!(!dat.is_empty(), "{stem}.dat is empty");
        assert_eq!(dat.sorted(), toml.sorted(), "{stem}");
    }
    let dat = RootTable::load(&zones("root.dat")).unwrap();
    let toml = RootTable::load(&zones("root.toml")).unwrap();
    let dat: Vec<_> = dat.iter().collect();
    let toml: Vec<_> = toml.iter().collect();
    assert_eq!(dat, toml);
    let tlds: Vec<&str> = dat.iter().map(|(tld, _)| *tld).collect();
    assert_eq!(tlds, ["com", "gov", "org"]);
}

/// Writes `file` with `text` in `dir`, runs `dnsd ARGS` there and checks that it exits 2
/// with an error line that starts with `expected` (`FILE:LINE: ...`).
#[track_caller]
fn bad_file(dir: &Path, file: &str, text: &str, args: &[&str], expected: &str) {
    std::fs::write(dir.join(file), text).unwrap();
    let (code, _, stderr) = run_dnsd(args, dir, "");
    assert_eq!(code, 2, "dnsd {args:?}: {stderr}");
    assert!(
        stderr.contains(&format!("error: {expected}")),
        "dnsd {args:?}: expected `{expected}`, got:\n{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[test]
fn bad_files_stop_the_server_with_exit_2_and_file_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A bad address, for each role that reads a file.
    let zone = "www.a.com 1.2.3.4\nwww.b.com 1.2.3\n";
    bad_file(
        d,
        "bad.dat",
        zone,
        &["tld", "com", "bad.dat", "--port", "0"],
        "bad.dat:2: bad address \"1.2.3\"",
    );
    bad_file(
        d,
        "bad.dat",
        zone,
        &["local", "--cache", "bad.dat", "--port", "0"],
        "bad.dat:2: bad address \"1.2.3\"",
    );
    bad_file(
        d,
        "bad.toml",
        "[tlds]\ncom = \"127.0.0.1:5678\"\nnet = \"127.0.0.1\"\n",
        &["root", "bad.toml", "--port", "0"],
        "bad.toml:3: bad address \"127.0.0.1\"",
    );
    bad_file(
        d,
        "bad2.toml",
        "# zone\n[records]\n\"www.a.com\" = \"1.2.3.4\"\n\"www.b.com\" = \"300.1.1.1\"\n",
        &["tld", "com", "bad2.toml", "--port", "0"],
        "bad2.toml:4: bad address \"300.1.1.1\"",
    );
    // TOML syntax, and an unknown table.
    bad_file(
        d,
        "syn.toml",
        "[records]\n\"a.com\" = \"1.1.1.1\"\n\"b.com\" = \n",
        &["tld", "com", "syn.toml", "--port", "0"],
        "syn.toml:3: invalid string",
    );
    bad_file(
        d,
        "unk.toml",
        "[records]\n\"a.com\" = \"1.1.1.1\"\n[recrods]\n",
        &["local", "--cache", "unk.toml", "--port", "0"],
        "unk.toml:3: unknown field `recrods`",
    );
    // Wrong field counts.
    bad_file(
        d,
        "fields.dat",
        "# two\na.com 1.1.1.1\n\nb.com 1.1.1.1 extra\n",
        &["tld", "com", "fields.dat", "--port", "0"],
        "fields.dat:4: expected `NAME ADDRESS`, found 3 fields",
    );
    bad_file(
        d,
        "root.dat",
        "com 127.0.0.1 5678\norg 127.0.0.1\n",
        &["root", "root.dat", "--port", "0"],
        "root.dat:2: expected `TLD HOST PORT`, found 2 fields",
    );
    bad_file(
        d,
        "port.dat",
        "com 127.0.0.1 99999\n",
        &["root", "port.dat", "--port", "0"],
        "port.dat:1: bad port \"99999\"",
    );
    // Duplicates, whatever the case or a trailing dot.
    bad_file(
        d,
        "dup.dat",
        "a.com 1.1.1.1\n\nA.com. 1.1.1.1\n",
        &["tld", "com", "dup.dat", "--port", "0"],
        "dup.dat:3: duplicate record a.com 1.1.1.1",
    );
    bad_file(
        d,
        "dup.toml",
        "[tlds]\ncom = \"127.0.0.1:1\"\nCOM = \"127.0.0.1:2\"\n",
        &["root", "dup.toml", "--port", "0"],
        "dup.toml:3: duplicate TLD com",
    );
    // A bad name.
    bad_file(
        d,
        "name.dat",
        "www.a.com 1.1.1.1\nwww..b.com 1.1.1.2\n",
        &["local", "--cache", "name.dat", "--port", "0"],
        "name.dat:2: bad name",
    );
    // The second of several --cache files.
    bad_file(
        d,
        "ok.dat",
        "www.a.com 1.1.1.1\n",
        &[
            "local", "--cache", "ok.dat", "--cache", "bad.dat", "--port", "0",
        ],
        "bad.dat:2: ",
    );
}

#[test]
fn missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["tld", "com", "nosuch.dat", "--port", "0"][..],
        &["root", "nosuch.toml", "--port", "0"],
        &["local", "--cache", "nosuch.dat", "--port", "0"],
    ] {
        let (code, _, stderr) = run_dnsd(args, dir.path(), "");
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("error: nosuch."), "{stderr}");
        assert!(stderr.contains("cannot read"), "{stderr}");
    }
}

#[test]
fn unknown_tld_without_port_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let com = zones("com.dat");
    let (code, _, stderr) = run_dnsd(&["tld", "net", com.to_str().unwrap()], dir.path(), "");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no default port for TLD net"), "{stderr}");
    let (code, _, stderr) = run_dnsd(
        &["tld", "n_t", com.to_str().unwrap(), "--port", "0"],
        dir.path(),
        "",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bad TLD"), "{stderr}");
}

#[test]
fn address_in_use_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let com = zones("com.dat");
    let root = zones("root.dat");
    for args in [
        &["tld", "com", com.to_str().unwrap(), "--port", &port][..],
        &["root", root.to_str().unwrap(), "--port", &port],
        &["local", "--port", &port],
    ] {
        let (code, _, stderr) = run_dnsd(args, dir.path(), "");
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
        assert!(stderr.contains("in use"), "{stderr}");
    }
}

/// The binary reads TOML for every role: three processes, all from `.toml` files.
#[test]
fn binary_hierarchy_from_toml_files() {
    let dir = tempfile::tempdir().unwrap();
    let com = Proc::start(
        &[
            "tld",
            "com",
            zones("com.toml").to_str().unwrap(),
            "--port",
            "0",
        ],
        dir.path(),
    );
    let table = format!("# test table\n[tlds]\ncom = \"{}\"\n", com.addr());
    std::fs::write(dir.path().join("root.toml"), table).unwrap();
    let root = Proc::start(&["root", "root.toml", "--port", "0"], dir.path());
    let root_addr = root.addr().to_string();
    let local = Proc::start(
        &[
            "local",
            "--cache",
            zones("default.toml").to_str().unwrap(),
            "--root",
            &root_addr,
            "--port",
            "0",
        ],
        dir.path(),
    );
    let mut c = Line::connect(local.addr());
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, github.com, R"),
        "0X01, default_local, 140.82.112.4"
    );
    assert_eq!(
        c.ask("2, www.amazon.com, I"),
        "0X01, default_local, 205.251.242.103"
    );
    assert_eq!(
        c.ask("3, example.com, I"),
        "0X00, default_local, 93.184.216.34"
    );
    assert_eq!(
        c.ask("4, www.nasa.gov, R"),
        "0XFF, default_local, Host not found"
    );
}
