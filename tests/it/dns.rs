//! DNS as outside clients see it: dig and dnspython asking every server (local, root, a
//! TLD server) over UDP and TCP, with assertions on what they parse.
//!
//! The tools are not part of the build. Where the build script (`build.rs`) does not find
//! them, the tests that need them are ignored, saying what to install; unless
//! `DNSD_REQUIRE_DNS_TOOLS` is set (as `.ci/run` does once `scripts/ci-deps.sh` has
//! installed them), in which case they run and a missing tool fails them. A tool gone
//! since the build makes a test print `skipped: ...` and pass.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnsd::resolve::clock::ManualClock;
use dnsd::runtime::hierarchy::{Hierarchy, HierarchyBuilder};
use dnsd::zone::{Format, Zone};
use serde_json::{json, Value};

use crate::harness::{Line, Proc, PATIENCE, WAIT};

/// Whether the outside tool `name` (`dig`, `unbound`, `dnspython`, `kresd`,
/// `pdns_recursor`, `nsd` or `kdig`) works here. If not,
/// prints `skipped: ...` and returns false, or panics when `DNSD_REQUIRE_DNS_TOOLS` is
/// set (in CI, where a skipped DNS test would hide a failure).
pub fn require_tool(name: &str) -> bool {
    let (program, args): (String, &[&str]) = match name {
        "dig" => ("dig".into(), &["-v"]),
        "unbound" => (unbound_bin().into(), &["-V"]),
        "dnspython" => ("python3".into(), &["-c", "import dns.message, dns.query"]),
        "kresd" | "pdns_recursor" => (sbin(name), &["--version"]),
        "nsd" => (sbin(name), &["-v"]),
        "kdig" => ("kdig".into(), &["--version"]),
        "nsd-checkzone" => (sbin(name), &["-h"]),
        "named-checkzone" => (sbin(name), &["-v"]),
        other => panic!("unknown tool {other}"),
    };
    let works = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return true;
    }
    if std::env::var_os("DNSD_REQUIRE_DNS_TOOLS").is_some() {
        panic!("{name} is required (DNSD_REQUIRE_DNS_TOOLS) but does not run here");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a DNS test")
        .to_owned();
    eprintln!("skipped: {test}: {name} does not run here (scripts/ci-deps.sh installs it)");
    false
}

/// A daemon's binary (`kresd`, `pdns_recursor`, `nsd`): `program` if it is on PATH, else
/// `/usr/sbin/program` (where Debian puts them; not on a non-root PATH).
pub fn sbin(program: &str) -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()));
    if on_path {
        program.to_owned()
    } else {
        format!("/usr/sbin/{program}")
    }
}

/// Unbound's binary: on PATH, or in /usr/sbin (not on a non-root PATH).
pub fn unbound_bin() -> &'static str {
    let on_path = Command::new("unbound")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if on_path {
        "unbound"
    } else {
        "/usr/sbin/unbound"
    }
}

/// The TTL of the test zone's records, and of its negative answers.
const TTL: u32 = 3600;
const NEGATIVE_TTL: u32 = 60;
/// The TTL of `short.com`, whose countdown in the cache is watched.
const SHORT_TTL: u32 = 30;
/// How many addresses `big.com` has: about 1,650 bytes of answer, more than 1232.
const BIG: usize = 100;

/// The `com` zone every test uses: the www rule's target, a name with IPv6, a name with
/// its own TTL, one below a name with no records (`corp.com`), and one too large for a
/// datagram.
pub fn com_zone_text() -> String {
    let big: Vec<String> = (0..BIG)
        .map(|i| format!("\"10.0.{}.{}\"", i / 250, i % 250 + 1))
        .collect();
    format!(
        "ttl = {TTL}\nnegative_ttl = {NEGATIVE_TTL}\n[records]\n\
         \"www.google.com\" = \"142.250.72.4\"\n\
         \"www.amazon.com\" = \"205.251.242.103\"\n\
         \"www.v6.com\" = [\"192.0.2.6\", \"2001:db8::6\"]\n\
         \"short.com\" = {{ address = \"192.0.2.30\", ttl = {SHORT_TTL} }}\n\
         \"mail.corp.com\" = \"192.0.2.25\"\n\
         \"big.com\" = [{}]\n",
        big.join(", ")
    )
}

pub fn com_zone() -> Zone {
    Zone::parse(Path::new("com.toml"), &com_zone_text(), Format::Toml).unwrap()
}

/// A hierarchy in this process: `com` from [`com_zone`], root, local (logs in a
/// temporary directory, upstream timeout [`PATIENCE`] unless the test is about it).
pub struct Servers {
    pub hierarchy: Hierarchy,
    pub _logs: tempfile::TempDir,
}

impl Servers {
    pub fn start() -> Servers {
        Servers::with(HierarchyBuilder::new().tld("com", com_zone()))
    }

    fn with(builder: HierarchyBuilder) -> Servers {
        Servers::with_timeout(builder, PATIENCE)
    }

    fn with_timeout(builder: HierarchyBuilder, upstream_timeout: Duration) -> Servers {
        let logs = tempfile::tempdir().unwrap();
        let hierarchy = builder
            .log_dir(logs.path())
            .upstream_timeout(upstream_timeout)
            .start()
            .unwrap();
        Servers {
            hierarchy,
            _logs: logs,
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.hierarchy.local
    }

    pub fn root(&self) -> SocketAddr {
        self.hierarchy.root
    }

    pub fn com(&self) -> SocketAddr {
        self.hierarchy.tld("com").unwrap()
    }

    /// (name, address, is it the TLD server) of each server.
    fn all(&self) -> [(&'static str, SocketAddr, bool); 3] {
        [
            ("local", self.local(), false),
            ("root", self.root(), false),
            ("com", self.com(), true),
        ]
    }
}

/// The upstream timeout of the tests about it: short, but long enough for a live server
/// on a loaded machine.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// What a loaded machine may add to a wait measured around a query: well below the
/// clients' own timeout ([`WAIT`]), so a SERVFAIL inside it is the server's doing.
const SLACK: Duration = Duration::from_secs(3);

/// One resource record as a client printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    pub name: String,
    pub ttl: u32,
    pub rtype: String,
    pub data: String,
}

impl Rr {
    /// `name type data`, without the TTL, for exact comparisons.
    pub fn text(&self) -> String {
        format!("{} {} {}", self.name, self.rtype, self.data)
    }
}

/// A response as a client parsed it, whichever client.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub rcode: String,
    /// Lowercase: `qr`, `aa`, `tc`, `rd`, `ra`...
    pub flags: BTreeSet<String>,
    /// `name type` of each question.
    pub question: Vec<String>,
    pub answer: Vec<Rr>,
    pub authority: Vec<Rr>,
    pub additional: Vec<Rr>,
    /// The OPT record's version and payload size, if there was one.
    pub edns: Option<(u8, u16)>,
    /// EDNS option codes in the response.
    pub options: Vec<u16>,
    /// Bytes received (dig: `MSG SIZE`; dnspython: over UDP only).
    pub size: Option<usize>,
    /// dig: `UDP` or `TCP`, the transport of the response shown.
    pub transport: Option<String>,
    /// dig: it got TC and retried over TCP.
    pub retried_tcp: bool,
    /// What the client printed, for failure messages.
    pub raw: String,
}

impl Reply {
    pub fn flag(&self, f: &str) -> bool {
        self.flags.contains(f)
    }

    pub fn answers(&self) -> Vec<String> {
        self.answer.iter().map(Rr::text).collect()
    }

    pub fn authorities(&self) -> Vec<String> {
        self.authority.iter().map(Rr::text).collect()
    }

    pub fn additionals(&self) -> Vec<String> {
        self.additional.iter().map(Rr::text).collect()
    }

    /// The SOA of a negative answer: the authority's only record.
    #[track_caller]
    pub fn soa(&self) -> &Rr {
        assert_eq!(self.answer, [], "{}", self.raw);
        assert_eq!(self.authority.len(), 1, "{}", self.raw);
        let soa = &self.authority[0];
        assert_eq!(soa.rtype, "SOA", "{}", self.raw);
        soa
    }

    /// The SOA's minimum (its last field).
    #[track_caller]
    pub fn soa_minimum(&self) -> u32 {
        self.soa()
            .data
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// `text` with the serial of every SOA of a TLD (`hostmaster.TLD. SERIAL`) written as
/// `S`: a zone's serial is its load time ([`dnsd::dns::xfr::next_serial`]).
pub fn serials_masked(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("hostmaster.") {
        let Some(end) = rest[at..].find(". ").map(|i| at + i + 2) else {
            break;
        };
        out.push_str(&rest[..end]);
        rest = &rest[end..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push('S');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// Runs `dig @ADDR -p PORT ARGS` with one try and a bounded wait, and parses its output.
#[track_caller]
pub fn dig(server: SocketAddr, args: &[&str]) -> Reply {
    dig_by(Command::new("dig"), server, args).unwrap_or_else(|e| panic!("{e}"))
}

/// [`dig`] run by `dig` (`dig` itself, or a wrapper that execs it, as `ip netns exec`
/// does); a dig that fails (no server there yet, say) is an error saying what it printed.
pub fn dig_by(mut dig: Command, server: SocketAddr, args: &[&str]) -> Result<Reply, String> {
    let out = dig
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+noall", "+comments", "+question", "+answer", "+authority"])
        .args(["+additional", "+stats", "+tries=1"])
        .arg(format!("+time={}", WAIT.as_secs()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run dig: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "dig {args:?} at {server} failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(parse_dig(&text))
}

/// Reads dig's text: the last response it shows (after a TC retry, the TCP one).
pub fn parse_dig(text: &str) -> Reply {
    let mut reply = Reply {
        raw: text.to_owned(),
        ..Reply::default()
    };
    let shown = text.rsplit(";; Got answer:").next().unwrap_or(text);
    reply.retried_tcp = text.contains(";; Truncated, retrying in TCP mode.");
    let mut section = "";
    for line in shown.lines() {
        if line.trim().is_empty() {
            section = "";
        } else if let Some(rest) = line.strip_prefix(";; ->>HEADER<<- ") {
            let status = rest.split("status: ").nth(1).unwrap_or("");
            reply.rcode = status.split(',').next().unwrap_or("").to_owned();
        } else if let Some(rest) = line.strip_prefix(";; flags:") {
            let flags = rest.split(';').next().unwrap_or("");
            reply.flags = flags.split_whitespace().map(str::to_owned).collect();
        } else if let Some(rest) = line.strip_prefix("; EDNS: version: ") {
            let version = rest.split(',').next().unwrap().parse().unwrap();
            let udp = rest.split("udp: ").nth(1).unwrap().trim().parse().unwrap();
            reply.edns = Some((version, udp));
        } else if let Some(rest) = line.strip_prefix("; OPT=") {
            reply
                .options
                .push(rest.split(':').next().unwrap().parse().unwrap());
        } else if let Some(rest) = line.strip_prefix(";; MSG SIZE  rcvd: ") {
            reply.size = Some(rest.trim().parse().unwrap());
        } else if let Some(rest) = line.strip_prefix(";; SERVER: ") {
            let transport = rest.rsplit('(').next().unwrap().trim_end_matches(')');
            reply.transport = Some(transport.to_owned());
        } else if let Some(name) = line.strip_prefix(";; ").and_then(|l| l.strip_suffix(":")) {
            section = match name {
                "QUESTION SECTION" => "question",
                "ANSWER SECTION" => "answer",
                "AUTHORITY SECTION" => "authority",
                "ADDITIONAL SECTION" => "additional",
                _ => "",
            };
        } else if section == "question" {
            let fields: Vec<&str> = line.trim_start_matches(';').split_whitespace().collect();
            reply.question.push(format!("{} {}", fields[0], fields[2]));
        } else if !section.is_empty() && !line.starts_with(';') {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let rr = Rr {
                name: fields[0].to_owned(),
                ttl: fields[1].parse().unwrap(),
                rtype: fields[3].to_owned(),
                data: fields[4..].join(" "),
            };
            match section {
                "answer" => reply.answer.push(rr),
                "authority" => reply.authority.push(rr),
                _ => reply.additional.push(rr),
            }
        }
    }
    assert!(
        !reply.rcode.is_empty(),
        "no response in dig's output:\n{text}"
    );
    reply
}

/// Asks each query with dnspython (`dns_client.py`, one process for all of them) and
/// returns the raw JSON results, in order.
#[track_caller]
pub fn py_raw(queries: &[Value]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/dns_client.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(Value::from(queries.to_vec()).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    // Each query waits at most 10 s inside the script: a bounded wait in all.
    let deadline = Instant::now() + WAIT * (queries.len() as u32 + 1);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dns_client.py did not finish {queries:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dns_client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), queries.len(), "{stdout}");
    for (q, r) in queries.iter().zip(&results) {
        assert!(r.get("error").is_none(), "{q}: {r}");
    }
    results
}

/// Asks each query with dnspython and returns the parsed responses.
#[track_caller]
pub fn py(queries: &[Value]) -> Vec<Reply> {
    py_raw(queries).iter().map(py_reply).collect()
}

/// One query for [`py`]: `name type` at `server` over `proto`, RD set, no EDNS.
pub fn pyq(server: SocketAddr, name: &str, qtype: &str, proto: &str) -> Value {
    json!({"server": server.to_string(), "name": name, "type": qtype, "proto": proto})
}

fn py_reply(v: &Value) -> Reply {
    let rrs = |key: &str| -> Vec<Rr> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Rr {
                name: r[0].as_str().unwrap().to_owned(),
                ttl: r[1].as_u64().unwrap() as u32,
                rtype: r[2].as_str().unwrap().to_owned(),
                data: r[3].as_str().unwrap().to_owned(),
            })
            .collect()
    };
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    Reply {
        rcode: v["rcode"].as_str().unwrap().to_owned(),
        flags: strings("flags")
            .iter()
            .map(|f| f.to_ascii_lowercase())
            .collect(),
        question: v["question"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| format!("{} {}", q[0].as_str().unwrap(), q[1].as_str().unwrap()))
            .collect(),
        answer: rrs("answer"),
        authority: rrs("authority"),
        additional: rrs("additional"),
        edns: (v["edns"].as_i64().unwrap() >= 0).then(|| {
            (
                v["edns"].as_u64().unwrap() as u8,
                v["payload"].as_u64().unwrap() as u16,
            )
        }),
        options: v["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_u64().unwrap() as u16)
            .collect(),
        size: v["size"].as_u64().map(|s| s as usize),
        transport: None,
        retried_tcp: false,
        raw: v.to_string(),
    }
}

fn tools(names: &[&str]) -> bool {
    names.iter().all(|n| require_tool(n))
}

/// The flags of a response from `server`: `aa` from the TLD server only (an answer from
/// its own zone), `ra` from the local server and the root only, `rd` as asked.
#[track_caller]
fn assert_flags(reply: &Reply, tld: bool, rd: bool) {
    assert!(reply.flag("qr"), "{}", reply.raw);
    assert_eq!(reply.flag("aa"), tld, "aa: {}", reply.raw);
    assert_eq!(reply.flag("ra"), !tld, "ra: {}", reply.raw);
    assert_eq!(reply.flag("rd"), rd, "rd: {}", reply.raw);
    assert!(!reply.flag("tc"), "tc: {}", reply.raw);
}

/// The three answers every server gives alike, however asked: an A, the www rule's
/// CNAME chain, NXDOMAIN with the zone's SOA.
#[track_caller]
fn assert_basic_answers(a: &Reply, cname: &Reply, nx: &Reply, tld: bool) {
    for r in [a, cname, nx] {
        assert_flags(r, tld, true);
    }
    assert_eq!(a.rcode, "NOERROR", "{}", a.raw);
    assert_eq!(a.answers(), ["www.google.com. A 142.250.72.4"], "{}", a.raw);
    assert!(a.answer[0].ttl <= TTL && a.answer[0].ttl > TTL - 60);
    assert_eq!(cname.rcode, "NOERROR", "{}", cname.raw);
    assert_eq!(
        cname.answers(),
        [
            "google.com. CNAME www.google.com.",
            "www.google.com. A 142.250.72.4"
        ],
        "{}",
        cname.raw
    );
    assert_eq!(nx.rcode, "NXDOMAIN", "{}", nx.raw);
    assert_eq!(nx.soa().name, "com.", "{}", nx.raw);
    assert_eq!(nx.soa_minimum(), NEGATIVE_TTL, "{}", nx.raw);
    assert!(nx.soa().ttl <= NEGATIVE_TTL, "{}", nx.raw);
}

#[test]
#[cfg_attr(
    any(missing_dig, missing_dnspython),
    ignore = "needs dig and dnspython: scripts/ci-deps.sh dig dnspython"
)]
fn every_server_answers_dig_and_dnspython_over_udp_and_tcp() {
    if !tools(&["dig", "dnspython"]) {
        return;
    }
    let s = Servers::start();
    for (who, addr, tld) in s.all() {
        for (proto, flag) in [("udp", "+notcp"), ("tcp", "+tcp")] {
            let a = dig(addr, &["www.google.com", "A", flag]);
            assert_eq!(a.transport.as_deref(), Some(&*proto.to_uppercase()));
            assert_eq!(a.question, ["www.google.com. A"]);
            assert_eq!(a.edns, Some((0, 1232)), "dig asks with EDNS: {}", a.raw);
            let cname = dig(addr, &["google.com", "A", flag]);
            let nx = dig(addr, &["nope.com", "A", flag]);
            eprintln!("dig {who} {proto}");
            assert_basic_answers(&a, &cname, &nx, tld);

            let got = py(&[
                pyq(addr, "www.google.com", "A", proto),
                pyq(addr, "google.com", "A", proto),
                pyq(addr, "nope.com", "A", proto),
            ]);
            eprintln!("dnspython {who} {proto}");
            assert_basic_answers(&got[0], &got[1], &got[2], tld);
            assert_eq!(got[0].edns, None, "no OPT asked, none answered");
        }
    }
}

#[test]
#[cfg_attr(
    any(missing_dig, missing_dnspython),
    ignore = "needs dig and dnspython: scripts/ci-deps.sh dig dnspython"
)]
fn aaaa_from_a_zone_with_ipv6_and_nodata_for_a_missing_type() {
    if !tools(&["dig", "dnspython"]) {
        return;
    }
    let s = Servers::start();
    for (_, addr, tld) in s.all() {
        let aaaa = dig(addr, &["www.v6.com", "AAAA"]);
        assert_flags(&aaaa, tld, true);
        assert_eq!(
            aaaa.answers(),
            ["www.v6.com. AAAA 2001:db8::6"],
            "{}",
            aaaa.raw
        );
        let a = dig(addr, &["www.v6.com", "A", "+tcp"]);
        assert_eq!(a.answers(), ["www.v6.com. A 192.0.2.6"], "{}", a.raw);

        // NODATA: the name exists, the type does not: NOERROR, no answer, the SOA.
        let got = py(&[
            pyq(addr, "www.google.com", "AAAA", "udp"),
            pyq(addr, "www.google.com", "MX", "tcp"),
        ]);
        let dug = dig(addr, &["www.google.com", "TXT"]);
        // A name that exists only through `mail.corp.com` below it: NODATA too.
        let ent = dig(addr, &["corp.com", "A", "+tcp"]);
        for r in got.iter().chain([&dug, &ent]) {
            assert_flags(r, tld, true);
            assert_eq!(r.rcode, "NOERROR", "{}", r.raw);
            assert_eq!(r.soa().name, "com.", "{}", r.raw);
            assert_eq!(r.soa_minimum(), NEGATIVE_TTL, "{}", r.raw);
            assert!(r.soa().ttl <= NEGATIVE_TTL, "{}", r.raw);
        }
    }
}

#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn nxdomain_soa_ttl_is_its_minimum_at_the_tld() {
    if !tools(&["dig"]) {
        return;
    }
    let s = Servers::start();
    let nx = dig(s.com(), &["nope.com", "AAAA", "+norecurse"]);
    assert_eq!(nx.rcode, "NXDOMAIN");
    assert_flags(&nx, true, false);
    assert_eq!(
        serials_masked(&nx.authorities().join("\n")),
        "com. SOA ns.com. hostmaster.com. S 3600 600 604800 60"
    );
    assert_eq!(nx.soa().ttl, NEGATIVE_TTL);
    // A TLD the root does not list: the root's own SOA, authoritatively.
    let nx = dig(s.root(), &["www.example.zz"]);
    assert_eq!(nx.rcode, "NXDOMAIN");
    assert!(nx.flag("aa") && nx.flag("ra"), "{}", nx.raw);
    assert_eq!(nx.soa().name, ".");
}

#[test]
#[cfg_attr(
    any(missing_dig, missing_dnspython),
    ignore = "needs dig and dnspython: scripts/ci-deps.sh dig dnspython"
)]
fn root_refers_without_recursion_with_glue_and_the_port_in_srv() {
    if !tools(&["dig", "dnspython"]) {
        return;
    }
    let s = Servers::start();
    let port = s.com().port();
    let dug = dig(s.root(), &["www.google.com", "A", "+norecurse"]);
    let got = py(&[
        json!({"server": s.root().to_string(), "name": "www.google.com",
                          "type": "A", "proto": "tcp", "rd": false}),
    ]);
    for r in [&dug, &got[0]] {
        assert_eq!(r.rcode, "NOERROR", "{}", r.raw);
        assert!(!r.flag("aa"), "a referral is not authoritative: {}", r.raw);
        // RA only answers a request that asks for recursion: to an RD=0 probe the root
        // is an authoritative server, not an open recursor (Zonemaster NAMESERVER01).
        assert!(!r.flag("ra") && !r.flag("rd"), "{}", r.raw);
        assert_eq!(r.answer, []);
        assert_eq!(r.authorities(), ["com. NS ns.com."], "{}", r.raw);
        assert_eq!(
            r.additionals(),
            [
                "ns.com. A 127.0.0.1".to_owned(),
                format!("_dns._tcp.com. SRV 0 0 {port} ns.com."),
            ],
            "{}",
            r.raw
        );
    }
}

#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn local_without_rd_answers_from_the_cache_or_refuses() {
    if !tools(&["dig"]) {
        return;
    }
    let s = Servers::start();
    let refused = dig(s.local(), &["www.amazon.com", "+norecurse"]);
    assert_eq!(refused.rcode, "REFUSED", "{}", refused.raw);
    assert!(refused.flag("ra") && !refused.flag("rd"));
    let asked = dig(s.local(), &["www.amazon.com"]);
    assert_eq!(asked.answers(), ["www.amazon.com. A 205.251.242.103"]);
    for flag in ["+notcp", "+tcp"] {
        let cached = dig(s.local(), &["www.amazon.com", "+norecurse", flag]);
        assert_eq!(cached.rcode, "NOERROR", "{}", cached.raw);
        assert_flags(&cached, false, false);
        assert_eq!(cached.answers(), ["www.amazon.com. A 205.251.242.103"]);
    }
}

#[test]
#[cfg_attr(
    any(missing_dig, missing_dnspython),
    ignore = "needs dig and dnspython: scripts/ci-deps.sh dig dnspython"
)]
fn too_large_for_udp_is_truncated_and_tcp_gets_it_all() {
    if !tools(&["dig", "dnspython"]) {
        return;
    }
    let s = Servers::start();
    for (_, addr, tld) in s.all() {
        // No EDNS: at most 512 bytes, TC set, nothing but the question.
        let tc = dig(addr, &["big.com", "+noedns", "+ignore"]);
        assert!(tc.flag("tc"), "{}", tc.raw);
        assert!(tc.size.unwrap() <= 512, "{}", tc.raw);
        assert_eq!(tc.answer, []);
        assert_eq!(tc.edns, None);
        // dig retries over TCP by itself and gets every address.
        for edns in ["+noedns", "+edns=0"] {
            let all = dig(addr, &["big.com", edns]);
            assert!(all.retried_tcp, "{}", all.raw);
            assert_eq!(all.transport.as_deref(), Some("TCP"));
            assert_flags(&all, tld, true);
            assert_eq!(all.answer.len(), BIG, "{}", all.raw);
        }
        let got = py(&[
            pyq(addr, "big.com", "A", "udp"),
            json!({"server": addr.to_string(), "name": "big.com", "edns": 4096}),
            pyq(addr, "big.com", "A", "tcp"),
        ]);
        assert!(
            got[0].flag("tc") && got[0].size.unwrap() <= 512,
            "{}",
            got[0].raw
        );
        assert!(
            got[1].flag("tc") && got[1].size.unwrap() <= 1232,
            "{}",
            got[1].raw
        );
        assert_eq!(got[1].edns, Some((0, 1232)), "OPT kept: {}", got[1].raw);
        assert!(!got[2].flag("tc"));
        assert_eq!(got[2].answer.len(), BIG);
        let mut ips: Vec<&str> = got[2].answer.iter().map(|r| &*r.data).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), BIG);
    }
}

#[test]
#[cfg_attr(
    any(missing_dig, missing_dnspython),
    ignore = "needs dig and dnspython: scripts/ci-deps.sh dig dnspython"
)]
fn edns_is_answered_versions_above_zero_are_badvers_and_options_ignored() {
    if !tools(&["dig", "dnspython"]) {
        return;
    }
    let s = Servers::start();
    for (_, addr, _) in s.all() {
        let plain = dig(addr, &["www.google.com", "+bufsize=4096"]);
        assert_eq!(plain.edns, Some((0, 1232)), "{}", plain.raw);
        let bad = dig(addr, &["www.google.com", "+edns=1", "+noednsnegotiation"]);
        assert_eq!(bad.rcode, "BADVERS", "{}", bad.raw);
        assert_eq!(
            bad.edns,
            Some((0, 1232)),
            "BADVERS carries OPT: {}",
            bad.raw
        );
        assert_eq!(bad.answer, []);
        let opt = dig(addr, &["www.google.com", "+ednsopt=100:abcd", "+tcp"]);
        assert_eq!(opt.rcode, "NOERROR", "{}", opt.raw);
        assert_eq!(opt.answers(), ["www.google.com. A 142.250.72.4"]);
        assert_eq!(
            opt.options,
            Vec::<u16>::new(),
            "unknown options are not echoed: {}",
            opt.raw
        );
        let got = py(
            &[json!({"server": addr.to_string(), "name": "www.google.com",
                              "edns": 512})],
        );
        assert_eq!(got[0].edns, Some((0, 1232)), "{}", got[0].raw);
        assert_eq!(got[0].answer.len(), 1);
    }
}

#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn ttls_count_down_in_the_local_cache() {
    if !tools(&["dig"]) {
        return;
    }
    let clock = Arc::new(ManualClock::new());
    let moved = clock.clone();
    let s = Servers::with(
        HierarchyBuilder::new()
            .tld("com", com_zone())
            .local(|c| c.with_clock(moved)),
    );
    let first = dig(s.local(), &["short.com"]);
    let first_nx = dig(s.local(), &["gone.com"]);
    assert_eq!(first.answers(), ["short.com. A 192.0.2.30"]);
    assert_eq!(first.answer[0].ttl, SHORT_TTL, "fresh from the zone");
    assert_eq!(first_nx.soa().ttl, NEGATIVE_TTL, "fresh from the zone");
    // Time passes for the TTLs to drop, on the local server's clock.
    clock.advance(Duration::from_secs(2));
    let second = dig(s.local(), &["short.com", "+norecurse"]);
    let second_nx = dig(s.local(), &["gone.com", "+norecurse", "+tcp"]);
    assert_eq!(
        second.answers(),
        ["short.com. A 192.0.2.30"],
        "from the cache"
    );
    let ttl = second.answer[0].ttl;
    assert!(
        (SHORT_TTL - 10..SHORT_TTL).contains(&ttl),
        "not counted down: {ttl}"
    );
    assert_eq!(second_nx.rcode, "NXDOMAIN", "{}", second_nx.raw);
    let ttl = second_nx.soa().ttl;
    assert!(
        (NEGATIVE_TTL - 10..NEGATIVE_TTL).contains(&ttl),
        "not counted down: {ttl}"
    );
}

#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn negative_answer_outlives_the_tld_server_and_misses_fail_in_time() {
    if !tools(&["dig"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("com.toml"), com_zone_text()).unwrap();
    let mut tld = Proc::start(&["tld", "com", "com.toml", "--port", "0"], dir.path());
    let s = Servers::with_timeout(
        HierarchyBuilder::new().refer("com", tld.addr()),
        UPSTREAM_TIMEOUT,
    );
    let nx = dig(s.local(), &["nope.com"]);
    assert_eq!(nx.rcode, "NXDOMAIN", "{}", nx.raw);
    let a = dig(s.local(), &["www.google.com"]);
    assert_eq!(a.answers(), ["www.google.com. A 142.250.72.4"]);

    tld.child.kill().unwrap();
    tld.child.wait().unwrap();
    for flag in ["+notcp", "+tcp"] {
        let nx = dig(s.local(), &["nope.com", flag]);
        assert_eq!(nx.rcode, "NXDOMAIN", "from the cache: {}", nx.raw);
        assert_eq!(nx.soa().name, "com.");
        let a = dig(s.local(), &["www.google.com", flag]);
        assert_eq!(a.answers(), ["www.google.com. A 142.250.72.4"]);
    }
    // Not cached, and the TLD server is gone: SERVFAIL, within the upstream timeout.
    let fail = dig(s.local(), &["www.amazon.com"]);
    assert_eq!(fail.rcode, "SERVFAIL", "{}", fail.raw);
    let (rcode, took) = timed_query(s.local(), "www.github.com");
    assert_eq!(rcode, 2, "SERVFAIL");
    assert!(took < UPSTREAM_TIMEOUT + SLACK, "{took:?}");
}

/// Asks `name` A (RD set) over UDP from this process, without starting a client, and
/// returns the response code and how long the answer took: for waits measured against
/// the server's upstream timeout on a loaded machine.
fn timed_query(server: SocketAddr, name: &str) -> (u8, Duration) {
    use dnsd::dns::exchange::{exchange_udp, query_message};
    use dnsd::model::{QType, Query, Recursion};
    let query = Query {
        name: dnsd::model::name::Name::from_wire(name),
        qtype: QType::A,
        recursion: Recursion::Recursive,
        tag: None,
    };
    let request = query_message(7, &query).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let response = exchange_udp(&socket, server, &request, started + WAIT).unwrap();
    (response[3] & 0x0F, started.elapsed())
}

#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn servfail_within_the_upstream_timeout_when_an_upstream_is_silent() {
    if !tools(&["dig"]) {
        return;
    }
    // A TLD server that reads nothing and answers nothing.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = Servers::with_timeout(
        HierarchyBuilder::new()
            .tld("com", com_zone())
            .refer("net", silent.local_addr().unwrap()),
        UPSTREAM_TIMEOUT,
    );
    for (addr, flag) in [(s.local(), "+notcp"), (s.root(), "+tcp")] {
        let fail = dig(addr, &["www.example.net", flag]);
        assert_eq!(fail.rcode, "SERVFAIL", "{}", fail.raw);
        let (rcode, took) = timed_query(addr, "ftp.example.net");
        assert_eq!(rcode, 2, "SERVFAIL");
        // The upstream is given the timeout less its reply margin, so that the SERVFAIL
        // itself arrives within the timeout.
        let margin = dnsd::resolve::upstream::reply_margin(UPSTREAM_TIMEOUT);
        assert!(
            took >= UPSTREAM_TIMEOUT - margin - Duration::from_millis(50),
            "{took:?}"
        );
        assert!(took < UPSTREAM_TIMEOUT + SLACK, "{took:?}");
    }
    // The other TLD is unaffected.
    let a = dig(s.local(), &["www.google.com"]);
    assert_eq!(a.rcode, "NOERROR");
}

#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn a_name_learned_over_dns_is_cached_for_the_line_protocol() {
    if !tools(&["dig"]) {
        return;
    }
    let s = Servers::start();
    let a = dig(s.local(), &["www.amazon.com", "+tcp"]);
    assert_eq!(a.answers(), ["www.amazon.com. A 205.251.242.103"]);
    let mut line = Line::connect(s.local());
    assert_eq!(line.ask("alice"), "You are connected to the Server");
    assert_eq!(
        line.ask("1, www.amazon.com, I"),
        "0X00, default_local, 205.251.242.103"
    );
    assert_eq!(
        line.ask("2, amazon.com, R"),
        "0X00, default_local, 205.251.242.103",
        "the line protocol's www. rule, from the same entry"
    );
}

#[test]
#[cfg_attr(
    any(missing_dig, missing_dnspython),
    ignore = "needs dig and dnspython: scripts/ci-deps.sh dig dnspython"
)]
fn the_case_of_the_question_is_kept() {
    if !tools(&["dig", "dnspython"]) {
        return;
    }
    let s = Servers::start();
    for (_, addr, _) in s.all() {
        for flag in ["+notcp", "+tcp"] {
            let r = dig(addr, &["WwW.GooGle.CoM", flag]);
            assert_eq!(r.question, ["WwW.GooGle.CoM. A"], "{}", r.raw);
            assert_eq!(r.answers(), ["WwW.GooGle.CoM. A 142.250.72.4"], "{}", r.raw);
        }
        let got = py(&[pyq(addr, "GooGle.CoM", "A", "udp")]);
        assert_eq!(got[0].question, ["GooGle.CoM. A"]);
        assert_eq!(
            got[0].answers(),
            [
                "GooGle.CoM. CNAME www.google.com.",
                "www.google.com. A 142.250.72.4"
            ],
            "{}",
            got[0].raw
        );
    }
}

#[test]
#[cfg_attr(
    missing_dnspython,
    ignore = "needs dnspython: scripts/ci-deps.sh dnspython"
)]
fn a_response_sent_as_a_request_is_dropped() {
    if !tools(&["dnspython"]) {
        return;
    }
    let s = Servers::start();
    let mut queries = Vec::new();
    for (_, addr, _) in s.all() {
        let server = addr.to_string();
        queries.push(json!({"server": server, "name": "www.google.com", "qr": true}));
        queries.push(
            json!({"server": server, "name": "www.google.com", "qr": true,
                            "proto": "tcp"}),
        );
    }
    let got = py_raw(&queries);
    for ((who, _, _), got) in s.all().iter().zip(got.chunks(2)) {
        assert_eq!(
            got[0]["dropped"], true,
            "{who} answered a response: {}",
            got[0]
        );
        assert_eq!(
            got[1]["id_matches_follow_up"], true,
            "{who}: over TCP the first response read is the follow-up's: {}",
            got[1]
        );
        assert_eq!(
            got[1]["rcode"], "NOERROR",
            "{who} still answers: {}",
            got[1]
        );
    }
}

#[test]
#[cfg_attr(missing_dig, ignore = "needs dig: scripts/ci-deps.sh dig")]
fn names_the_line_protocol_rejects_still_get_an_rcode() {
    if !tools(&["dig"]) {
        return;
    }
    let s = Servers::start();
    let soa = dig(s.com(), &["com.", "SOA"]);
    assert_eq!(soa.rcode, "NOERROR");
    assert!(soa.flag("aa"));
    assert_eq!(
        serials_masked(&soa.answers().join("\n")),
        "com. SOA ns.com. hostmaster.com. S 3600 600 604800 60"
    );
    let ns = dig(s.com(), &["com.", "NS", "+tcp"]);
    assert_eq!(ns.rcode, "NOERROR");
    assert_eq!(ns.answers(), ["com. NS ns.com."]);
    for addr in [s.com(), s.local()] {
        let txt = dig(addr, &["_dmarc.google.com", "TXT"]);
        assert_eq!(txt.rcode, "NXDOMAIN", "{}", txt.raw);
        assert_eq!(txt.soa().name, "com.");
    }
    let ip = dig(s.local(), &["1.2.3.4", "A"]);
    assert_eq!(ip.rcode, "NXDOMAIN", "no TLD `4`: {}", ip.raw);
    assert_eq!(ip.soa().name, ".");
    let root = dig(s.local(), &[".", "SOA"]);
    assert_eq!(root.rcode, "NOERROR", "{}", root.raw);
    assert_eq!(root.answer[0].rtype, "SOA", "{}", root.raw);
}

/// Regression: in mode I the local server took the root's answer about `.` itself (its
/// SOA, or NODATA) for a missing referral and said SERVFAIL.
#[test]
fn local_in_mode_i_passes_on_the_roots_answers_about_the_root() {
    use dnsd::dns::exchange::{exchange_udp, query_message, read_response};
    use dnsd::model::{Outcome, QType, Query, Recursion};
    let s = Servers::start();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (id, qtype) in [(1, QType::Soa), (2, QType::A)] {
        let query = Query {
            name: dnsd::model::name::Name::from_wire(""),
            qtype,
            recursion: Recursion::Recursive,
            tag: None,
        };
        let request = query_message(id, &query).unwrap();
        let response = exchange_udp(&socket, s.local(), &request, Instant::now() + WAIT);
        let got = read_response(&response.unwrap(), id, &query).unwrap();
        match (qtype, &got.outcome) {
            (QType::Soa, Outcome::Answer(records)) => assert_eq!(records.len(), 1),
            (QType::A, Outcome::NoData(soa)) => assert!(soa.name.is_root()),
            (_, other) => panic!("{qtype} . at the local server: {other:?}"),
        }
    }
}
