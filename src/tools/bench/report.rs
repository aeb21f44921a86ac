//! `dnsd bench report` and `dnsd bench show`: the results `scripts/bench.sh` collects,
//! read back with the types `dnsd bench --json` wrote them with, turned into
//! `BENCHMARKS.md` (or one summary line per result).
//!
//! The results directory holds one `KEY.json` per `dnsd bench --json` run (a run made in
//! rounds is `KEY-rN.json`, one file per round), `zoneload-dat.json` and
//! `zoneload-toml.json` ([`ZoneLoad`]), `idle.json` ([`Idle`]), and
//! `original-skipped.txt` when the original could not be measured, `only.txt` when
//! only some sections ran (`ONLY=chain`); the relay section's runs,
//! `relay-TARGET-GEN-CONNS-rN.json` (TARGET `chain`, `R`, `I`, `ceiling` or `hits`; GEN
//! `bench` for a `dnsd bench --json` result, `loadgen` for a [`Loadgen`] line); and from
//! `scripts/dnsperf.sh`, dnsperf's own output of each run,
//! `dnsperf-SERVER-PROTO-rN.txt` ([`Dnsperf`]; SERVER is `local`, `tld`, `unbound` or
//! `nsd`, PROTO `udp` or `tcp`), or `dnsperf-skipped.txt` saying why there is none. Keys
//! are those the scripts use; a missing result shows as `–`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::dnsperf::Dnsperf;
use super::output::{Figures, Results};
use crate::error::Error;
use crate::line::message::Code;

/// How long loading a zone took, until the server's `listening on` line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZoneLoad {
    pub secs: f64,
    /// `VmHWM` at that moment.
    pub peak_rss_kb: u64,
}

/// A local server's RSS before and with 1,000 idle client sessions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Idle {
    pub before_kb: u64,
    pub after_kb: u64,
}

/// What `dnsd bench report` needs besides the results: where they are, where the report
/// goes, and the facts about the run that only the script knows (printed as given).
#[derive(Clone, Debug)]
pub struct ReportConfig {
    pub results: PathBuf,
    pub out: PathBuf,
    pub machine: String,
    pub date: String,
    pub commit: String,
    /// Seconds of each dnsd run.
    pub duration: String,
    /// Seconds of each run against the original's 100,000-name zone.
    pub orig_slow_secs: String,
    /// Where the original came from; empty when it was not measured.
    pub original: String,
    /// Seconds the whole run took.
    pub elapsed: String,
    pub load: String,
    /// Seconds of each resolution round.
    pub res_secs: String,
    pub rounds: String,
    /// A Markdown file copied in under "Notes".
    pub notes: Option<PathBuf>,
}

/// The results directory.
struct Dir {
    path: PathBuf,
    /// The names of its files, sorted.
    files: Vec<String>,
}

impl Dir {
    /// The sections given with `ONLY=` (`only.txt`), when not all of them ran.
    fn only(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.path.join("only.txt")).ok()?;
        Some(text.trim().to_owned())
    }

    fn open(path: &Path) -> Result<Dir, Error> {
        let entries = std::fs::read_dir(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let mut files: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        Ok(Dir {
            path: path.to_owned(),
            files,
        })
    }

    /// The file `name`, read as a `T`; `None` if it is missing or not one.
    fn read<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        read_json(&self.path.join(name))
    }

    /// The rounds of `key` (`KEY-rN.json`), by round `N`.
    fn rounds(&self, key: &str) -> BTreeMap<String, Results> {
        let prefix = format!("{key}-r");
        self.files
            .iter()
            .filter_map(|f| {
                let round = f.strip_prefix(&prefix)?.strip_suffix(".json")?;
                Some((round.to_owned(), self.read(f)?))
            })
            .collect()
    }

    /// The result `KEY.json`, or the median (by queries a second) of its rounds.
    fn load(&self, key: &str) -> Option<Results> {
        if let Some(one) = self.read(&format!("{key}.json")) {
            return Some(one);
        }
        let mut runs: Vec<Results> = self.rounds(key).into_values().collect();
        runs.sort_by(|a, b| a.figures.qps.total_cmp(&b.figures.qps));
        let mid = runs.len() / 2;
        runs.into_iter().nth(mid)
    }

    /// The median over rounds of `key`'s queries a second over `reference`'s in the same
    /// round (or, without rounds, the plain ratio).
    fn paired(&self, key: &str, reference: &str) -> Option<f64> {
        let (a, b) = (self.rounds(key), self.rounds(reference));
        let mut ratios: Vec<f64> = a
            .iter()
            .filter_map(|(n, r)| {
                let theirs = b.get(n)?.figures.qps;
                (theirs != 0.0).then(|| r.figures.qps / theirs)
            })
            .collect();
        if ratios.is_empty() {
            return ratio(figures(&self.load(key)), figures(&self.load(reference)));
        }
        ratios.sort_by(f64::total_cmp);
        let mid = ratios.len() / 2;
        Some(if ratios.len() % 2 == 1 {
            ratios[mid]
        } else {
            (ratios[mid - 1] + ratios[mid]) / 2.0
        })
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn figures(r: &Option<Results>) -> Option<&Figures> {
    r.as_ref().map(|r| &r.figures)
}

fn ceiling(r: &Option<Results>) -> Option<&Figures> {
    r.as_ref().and_then(|r| r.ceiling.as_ref())
}

/// `n` with a comma every three digits, as `1,234,567`.
fn thousands(n: u64) -> String {
    group(&n.to_string())
}

/// A string of digits with a comma every three digits.
fn group(digits: &str) -> String {
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn qps(r: Option<&Figures>) -> String {
    r.map_or("–".into(), |r| group(&format!("{:.0}", r.qps.max(0.0))))
}

fn lat(r: Option<&Figures>) -> String {
    r.map_or("–".into(), |r| format!("{} / {}", r.p50_us, r.p99_us))
}

/// The codes that some reply carried, and the errors if there were any.
fn codes(r: Option<&Figures>) -> String {
    let Some(r) = r else { return "–".into() };
    codes_summary(r.codes.iter().filter(|&(_, n)| n > 0), r.errors, "none")
}

/// `0XFF 1,234, 0X00 5; errors 2`: replies by code, then errors if any; `empty` if
/// there is neither.
fn codes_summary<C: std::fmt::Display>(
    codes: impl Iterator<Item = (C, u64)>,
    errors: u64,
    empty: &str,
) -> String {
    let mut text = codes
        .map(|(c, n)| format!("{c} {}", thousands(n)))
        .collect::<Vec<_>>()
        .join(", ");
    if errors > 0 {
        let _ = write!(text, "; errors {}", thousands(errors));
    }
    if text.is_empty() {
        empty.into()
    } else {
        text
    }
}

fn ratio(a: Option<&Figures>, b: Option<&Figures>) -> Option<f64> {
    let (a, b) = (a?, b?);
    (b.qps != 0.0).then(|| a.qps / b.qps)
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:.0}%", 100.0 * x))
}

fn times(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.1}×"))
}

/// One target of the issue: what it asks, what was measured, met or not (`None`: not
/// measured).
struct Target {
    name: String,
    measured: String,
    ok: Option<bool>,
}

/// The report's lines, and the targets gathered while writing them.
struct Doc {
    lines: Vec<String>,
    targets: Vec<Target>,
}

impl Doc {
    fn w(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    fn target(&mut self, name: impl Into<String>, measured: impl Into<String>, ok: Option<bool>) {
        self.targets.push(Target {
            name: name.into(),
            measured: measured.into(),
            ok,
        });
    }
}

/// `dnsd bench show`: one summary line per result file, named by the file's stem.
pub fn show(files: &[PathBuf], out: &mut dyn std::io::Write) -> Result<(), Error> {
    for path in files {
        let key = path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        let is_text = path.extension().is_some_and(|e| e == "txt");
        let line = if is_text {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            match Dnsperf::parse(&text) {
                None => format!("  {key:<28} no dnsperf result"),
                Some(d) => format!(
                    "  {key:<28} {:>9.0} q/s  avg {:>6.0} µs  lost {}  {}",
                    d.qps,
                    d.avg_latency_us,
                    d.lost,
                    d.rcodes_text()
                ),
            }
        } else {
            match read_json::<Results>(path) {
                None => format!("  {key:<28} no result"),
                Some(r) => summary(&key, &r),
            }
        };
        writeln!(out, "{line}").map_err(|e| Error::io("cannot write the output", e))?;
    }
    Ok(())
}

/// `KEY  q/s  p50  p99  errors  codes`, and the ceiling's queries a second and share.
fn summary(key: &str, r: &Results) -> String {
    let f = &r.figures;
    let codes: Vec<String> = f
        .codes
        .iter()
        .filter(|&(_, n)| n > 0)
        .map(|(c, n)| format!("{c}:{n}"))
        .collect();
    let mut line = format!(
        "  {key:<28} {:>9.0} q/s  p50 {:>6} µs  p99 {:>6} µs  errors {}  {}",
        f.qps,
        f.p50_us,
        f.p99_us,
        f.errors,
        codes.join(" ")
    );
    if let Some(c) = &r.ceiling {
        let _ = write!(
            line,
            "  | ceiling {:.0} q/s ({:.0}%)",
            c.qps,
            100.0 * r.ceiling_share.unwrap_or(0.0)
        );
    }
    line
}

/// `dnsd bench report`: writes `config.out` from the results in `config.results`.
pub fn write(config: &ReportConfig) -> Result<(), Error> {
    let text = render(config)?;
    std::fs::write(&config.out, text)
        .map_err(|e| Error::io(format!("cannot write {}", config.out.display()), e))
}

/// The whole report, as Markdown.
pub fn render(args: &ReportConfig) -> Result<String, Error> {
    let dir = Dir::open(&args.results)?;
    let mut doc = Doc {
        lines: Vec::new(),
        targets: Vec::new(),
    };
    let d = &mut doc;
    let skipped = std::fs::read_to_string(args.results.join("original-skipped.txt"))
        .ok()
        .map(|s| s.trim().to_owned());
    let orig_note = if args.original.is_empty() {
        "not measured (ORIGINAL was not set)".to_owned()
    } else if let Some(skipped) = skipped {
        format!("not measured ({skipped})")
    } else {
        format!("measured from `{}`", args.original)
    };

    d.w("# Benchmarks");
    d.w("");
    d.w(
        "Written by `just bench` (`scripts/bench.sh`); re-run it to refresh this file. \
         Every figure below comes from that one run.",
    );
    d.w("");
    d.w(format!("- Machine: {}", args.machine));
    d.w(format!("- Date: {}", args.date));
    d.w(format!("- dnsd commit: {}", args.commit));
    d.w(format!("- The original: {orig_note}"));
    d.w(format!("- Load average (1, 5, 15 min): {}", args.load));
    d.w(format!("- Whole run: {} s", args.elapsed));
    if let Some(only) = dir.only() {
        d.w(format!(
            "- Only some sections ran (`ONLY={only}`): the others show as not measured"
        ));
    }
    d.w("");
    d.w("## How it is measured");
    d.w("");
    d.w(format!(
        "`dnsd bench` is a closed loop: each connection is a thread with one query in \
         flight, sending the next as soon as the reply is in. Each dnsd run lasts \
         {} s; the load generator runs on the same 2 cores as the servers. \
         `--ceiling` measures, right after each run and with the same workload, an \
         in-process server that answers every line at once with a fixed reply: the most \
         this loopback and this load generator allow. Latencies are per query, in µs \
         (p50 / p99).",
        args.duration
    ));
    d.w("");
    d.w(
        "The dnsd servers run as separate processes (`dnsd tld`, `dnsd root`, `dnsd local`) \
         on free ports, with their default settings: the local server writes every query \
         and reply to `ID.log` and learned mappings to `mapping.log`, and all servers log \
         to stderr (into a file). The original runs under `PYENV_VERSION=2.7.18 python2 -u` \
         on its fixed ports, its printing going to files, measured with `dnsd bench --legacy` \
         (no line ends, one message per write, one read per reply).",
    );
    d.w("");
    d.w(
        "The yardsticks of issue 10 are processes of their own, as the hierarchy's servers \
         are, and share no code with dnsd: `examples/relay.rs` is one stage of a chain of \
         do-nothing relays (a thread per connection, every line passed on to the next stage \
         over a connection of its own, the last stage answering `0X00, relay, 127.0.0.1`; \
         the first greets the client's id line as the local server does); three of them make \
         the relay chain a miss is measured against, one alone the one-relay ceiling for \
         hits. Those runs are measured twice, with `dnsd bench` and with \
         `examples/loadgen.rs`, an outside closed-loop generator (a thread per connection, \
         one query in flight, std only) that checks `dnsd bench`'s own figures.",
    );
    d.w("");
    d.w("Workloads:");
    d.w("");
    d.w("- **hits**: `www.example.com`, an entry of the local server's default cache, mode R.");
    d.w(
        "- **R misses**, **I misses**: `www.nx{n}.com`, a new name that does not exist for \
         every query (`{n}` is a counter shared by all connections): local server, root and \
         com server each see every query (three hops).",
    );
    d.w(format!(
        "- **resolutions**: names `www.hN.com` of a generated com zone (addresses \
         `10.a.b.c` derived from N; `scripts/genzone.sh`), asked in an order spread over \
         the whole zone (a stride of 7919). Each zone size has its own com server, root and \
         local server; the local server runs with `--cache-size 1` (all else default) so \
         that every query misses its cache and is resolved by the hierarchy for the whole \
         run, whatever the zone size. The reference for \"the same workload on the sample \
         zone\" is a 1,000-name zone made the same way (the sample zone has only 3 names). \
         The three sizes take turns, {} rounds of {} s each, each \
         round starting with the next size; the table shows each size's median round, and \
         the ratios are the median over rounds of the ratio within a round (the machine's \
         speed drifts more between rounds than within one).",
        args.rounds, args.res_secs
    ));
    d.w(format!(
        "- The original's resolutions use the same names from the 100,000-name zone, each \
         run its own (the original caches every answer), {} s each: its \
         `com.py` reads the zone file again for every query, so the file is replaced in \
         place, which is the same as restarting it with that zone.",
        args.orig_slow_secs
    ));
    d.w("");

    hits_and_misses(d, &dir);
    relays(d, &dir);
    resolutions(d, &dir);
    zone_load(d, &dir);
    idle(d, &dir);
    dnsperf(d, &dir);
    targets(d, &dir);

    // The targets come right after the header, before the method and the tables.
    let order = [
        "Hits, 8",
        "Hits, 1",
        "R misses",
        "I misses",
        "Resolutions",
        "1M",
        "1,000 idle",
        "DNS",
    ];
    let rank = |t: &Target| {
        order
            .iter()
            .position(|p| t.name.starts_with(p))
            .unwrap_or(99)
    };
    doc.targets.sort_by_key(rank);
    let met = doc.targets.iter().filter(|t| t.ok == Some(true)).count();
    let missed = doc.targets.iter().filter(|t| t.ok == Some(false)).count();
    let unknown = doc.targets.iter().filter(|t| t.ok.is_none()).count();
    let mut head = vec![
        "## Targets (issues 4 and 10)".to_owned(),
        String::new(),
        format!("{met} met, {missed} missed, {unknown} not measured."),
        String::new(),
        "| target | measured | |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    for t in &doc.targets {
        let mark = match t.ok {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        head.push(format!("| {} | {} | {mark} |", t.name, t.measured));
    }
    head.push(String::new());
    let at = doc
        .lines
        .iter()
        .position(|l| l == "## How it is measured")
        .unwrap_or(doc.lines.len());
    doc.lines.splice(at..at, head);

    if let Some(notes) = &args.notes {
        if let Ok(text) = std::fs::read_to_string(notes) {
            doc.w("## Notes");
            doc.w("");
            doc.w(text.trim());
            doc.w("");
        }
    }
    let mut out = doc.lines.join("\n");
    out.push('\n');
    Ok(out)
}

fn hits_and_misses(d: &mut Doc, dir: &Dir) {
    d.w("## Hits and misses (sample zones)");
    d.w("");
    d.w(
        "| workload | conns | dnsd q/s | p50 / p99 µs | ceiling q/s | share of ceiling | \
         ceiling p99 µs | original q/s | dnsd / original | codes (dnsd) | codes (original) |",
    );
    d.w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for (kind, name) in [
        ("hits", "hits"),
        ("rmiss", "R misses"),
        ("imiss", "I misses"),
    ] {
        for c in [1, 8] {
            let ours = dir.load(&format!("dnsd-{kind}-{c}"));
            let orig = dir.load(&format!("orig-{kind}-{c}"));
            let (dn, ceil, o) = (figures(&ours), ceiling(&ours), figures(&orig));
            d.w(format!(
                "| {name} | {c} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                qps(dn),
                lat(dn),
                qps(ceil),
                pct(ratio(dn, ceil)),
                ceil.map_or("–".into(), |c| c.p99_us.to_string()),
                qps(o),
                times(ratio(dn, o)),
                codes(dn),
                codes(o),
            ));
        }
    }
    d.w("");
}

/// One line of `loadgen`'s JSON (`examples/loadgen.rs`, the outside closed-loop generator
/// of the relay section).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Loadgen {
    pub connections: u64,
    pub secs: f64,
    pub queries: u64,
    pub qps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
    /// Replies by their first four bytes (the code).
    #[serde(default)]
    pub codes: BTreeMap<String, u64>,
}

/// The generators of the relay section, as they appear in its file names
/// (`relay-TARGET-GEN-CONNS-rN.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Generator {
    /// `dnsd bench --json` ([`Results`]).
    Bench,
    /// `examples/loadgen.rs` ([`Loadgen`]).
    Loadgen,
}

impl Generator {
    const ALL: [Generator; 2] = [Generator::Bench, Generator::Loadgen];

    fn key(self) -> &'static str {
        match self {
            Generator::Bench => "bench",
            Generator::Loadgen => "loadgen",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Generator::Bench => "dnsd bench",
            Generator::Loadgen => "loadgen",
        }
    }
}

/// What the relay section uses of one run, from either generator.
#[derive(Clone, Debug, PartialEq)]
struct Run {
    secs: f64,
    queries: u64,
    qps: f64,
    p99_us: u64,
    errors: u64,
    /// Replies by code, only the codes some reply carried.
    codes: BTreeMap<String, u64>,
}

impl Run {
    /// A run from the text of its result file, as `generator` wrote it.
    fn parse(generator: Generator, text: &str) -> Option<Run> {
        match generator {
            Generator::Bench => {
                let f = serde_json::from_str::<Results>(text).ok()?.figures;
                Some(Run {
                    secs: f.elapsed_s,
                    queries: f.queries,
                    qps: f.qps,
                    p99_us: f.p99_us,
                    errors: f.errors,
                    codes: f
                        .codes
                        .iter()
                        .filter(|&(_, n)| n > 0)
                        .map(|(c, n)| (c.as_str().to_owned(), n))
                        .collect(),
                })
            }
            Generator::Loadgen => {
                let l: Loadgen = serde_json::from_str(text).ok()?;
                Some(Run {
                    secs: l.secs,
                    queries: l.queries,
                    qps: l.qps,
                    p99_us: l.p99_us,
                    errors: l.errors,
                    codes: l.codes.into_iter().filter(|&(_, n)| n > 0).collect(),
                })
            }
        }
    }

    /// Whether every query was answered with `code`, and none failed.
    fn all(&self, code: &str) -> bool {
        self.errors == 0 && self.queries > 0 && self.codes.get(code) == Some(&self.queries)
    }

    /// The codes and errors, as `0XFF 1,234; errors 2`.
    fn codes_text(&self) -> String {
        codes_summary(
            self.codes.iter().map(|(c, n)| (c, *n)),
            self.errors,
            "no reply",
        )
    }
}

/// Rounds of one workload against rounds of its yardstick, by round: medians of each,
/// and the median over rounds of the ratio within a round.
#[derive(Clone, Debug, Default, PartialEq)]
struct Versus {
    /// Rounds in which both were measured.
    rounds: usize,
    ours_qps: Option<f64>,
    theirs_qps: Option<f64>,
    /// Ours over theirs, queries a second.
    qps: Option<f64>,
    ours_p99: Option<f64>,
    theirs_p99: Option<f64>,
    /// Ours over theirs, p99 latency.
    p99: Option<f64>,
}

impl Versus {
    fn of(ours: &BTreeMap<String, Run>, theirs: &BTreeMap<String, Run>) -> Versus {
        let pairs: Vec<(&Run, &Run)> = ours
            .iter()
            .filter_map(|(round, o)| Some((o, theirs.get(round)?)))
            .collect();
        let ratios = |f: fn(&Run) -> f64| {
            median(
                pairs
                    .iter()
                    .filter(|(_, t)| f(t) > 0.0)
                    .map(|(o, t)| f(o) / f(t))
                    .collect(),
            )
        };
        let qps = |r: &Run| r.qps;
        let p99 = |r: &Run| r.p99_us as f64;
        Versus {
            rounds: pairs.len(),
            ours_qps: median(ours.values().map(qps).collect()),
            theirs_qps: median(theirs.values().map(qps).collect()),
            qps: ratios(qps),
            ours_p99: median(ours.values().map(p99).collect()),
            theirs_p99: median(theirs.values().map(p99).collect()),
            p99: ratios(p99),
        }
    }
}

/// A row of the relay section: what is measured (`relay-OURS-...`) against which
/// yardstick (`relay-THEIRS-...`), and the issue's target, if any.
struct RelayRow {
    label: &'static str,
    ours: &'static str,
    theirs: &'static str,
    conns: u32,
    /// At least this share of the yardstick's queries a second.
    min_qps: Option<f64>,
    /// A p99 latency at most this many times the yardstick's.
    max_p99: Option<f64>,
}

/// The rows of the relay section: misses against the chain, hits against one relay.
const RELAY_ROWS: [RelayRow; 8] = [
    RelayRow {
        label: "R misses",
        ours: "R",
        theirs: "chain",
        conns: 1,
        min_qps: Some(0.9),
        max_p99: None,
    },
    RelayRow {
        label: "R misses",
        ours: "R",
        theirs: "chain",
        conns: 8,
        min_qps: Some(0.8),
        max_p99: None,
    },
    RelayRow {
        label: "I misses",
        ours: "I",
        theirs: "chain",
        conns: 1,
        min_qps: Some(0.9),
        max_p99: None,
    },
    RelayRow {
        label: "I misses",
        ours: "I",
        theirs: "chain",
        conns: 8,
        min_qps: Some(0.8),
        max_p99: None,
    },
    // Mode I against a yardstick of its own shape: no target, what is in the way.
    RelayRow {
        label: "I misses",
        ours: "I",
        theirs: "hub",
        conns: 1,
        min_qps: None,
        max_p99: None,
    },
    RelayRow {
        label: "I misses",
        ours: "I",
        theirs: "hub",
        conns: 8,
        min_qps: None,
        max_p99: None,
    },
    RelayRow {
        label: "Hits",
        ours: "hits",
        theirs: "ceiling",
        conns: 1,
        min_qps: None,
        max_p99: None,
    },
    RelayRow {
        label: "Hits",
        ours: "hits",
        theirs: "ceiling",
        conns: 8,
        min_qps: Some(0.8),
        max_p99: Some(2.0),
    },
];

/// The runs of the relay section, their file key and the code every reply should carry.
const RELAY_RUNS: [(&str, &str, &str); 6] = [
    ("chain", "the relay chain", "0X00"),
    ("hub", "the relay hub", "0X00"),
    ("R", "dnsd, R misses", "0XFF"),
    ("I", "dnsd, I misses", "0XFF"),
    ("ceiling", "the one-relay ceiling", "0X00"),
    ("hits", "dnsd, hits", "0X00"),
];

impl Dir {
    /// The rounds of the relay section's `target` measured by `generator` with `conns`
    /// connections (`relay-TARGET-GEN-CONNS-rN.json`), by round `N`.
    fn relay_runs(&self, target: &str, generator: Generator, conns: u32) -> BTreeMap<String, Run> {
        let prefix = format!("relay-{target}-{}-{conns}-r", generator.key());
        self.files
            .iter()
            .filter_map(|f| {
                let round = f.strip_prefix(&prefix)?.strip_suffix(".json")?;
                let text = std::fs::read_to_string(self.path.join(f)).ok()?;
                Some((round.to_owned(), Run::parse(generator, &text)?))
            })
            .collect()
    }
}

fn times2(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.2}×"))
}

fn float_qps(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| group(&format!("{:.0}", x.max(0.0))))
}

/// Whether `v` meets `row`'s targets (`None`: the row has none, or it was not measured).
fn relay_met(row: &RelayRow, v: &Versus) -> Option<bool> {
    if row.min_qps.is_none() && row.max_p99.is_none() {
        return None;
    }
    let qps_ok = match row.min_qps {
        Some(goal) => v.qps.map(|x| x >= goal),
        None => Some(true),
    };
    let p99_ok = match row.max_p99 {
        Some(goal) => v.p99.map(|x| x <= goal),
        None => Some(true),
    };
    Some(qps_ok? && p99_ok?)
}

fn relays(d: &mut Doc, dir: &Dir) {
    d.w("## Misses against a chain of three relay processes, hits against one");
    d.w("");
    let runs: Vec<(&str, Generator, u32, BTreeMap<String, Run>)> = RELAY_RUNS
        .iter()
        .flat_map(|(key, _, _)| {
            Generator::ALL
                .into_iter()
                .flat_map(move |g| [1, 8].map(|c| (*key, g, c)))
        })
        .map(|(key, g, c)| (key, g, c, dir.relay_runs(key, g, c)))
        .collect();
    let get = |key: &str, g: Generator, c: u32| {
        runs.iter()
            .find(|(k, gg, cc, _)| *k == key && *gg == g && *cc == c)
            .map(|(_, _, _, r)| r)
    };
    let all: Vec<&Run> = runs.iter().flat_map(|(_, _, _, r)| r.values()).collect();
    if all.is_empty() {
        d.w("Not measured: no result of the relay section.");
        d.w("");
    } else {
        let rounds = runs
            .iter()
            .flat_map(|(_, _, _, r)| r.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let secs = median(all.iter().map(|r| r.secs).collect()).unwrap_or(0.0);
        d.w(format!(
            "A miss crosses three servers (local, root, com); its yardstick is a chain of \
             three relay processes (`examples/relay.rs`) that do nothing but pass each line \
             on, the last answering `0X00, relay, 127.0.0.1`. A hit's yardstick is one such \
             relay answering at once (the one-relay ceiling). A miss in mode I has another \
             shape: the local server asks the root, then the TLD server itself; the relay \
             hub (`relay --to A --then B`: each line to one relay, then to another) has that \
             shape, and the I rows against it show what the shape alone costs (no target). \
             Each is measured with `dnsd \
             bench` and with loadgen (`examples/loadgen.rs`), an outside closed-loop \
             generator that shares no code with dnsd, in {rounds} alternating rounds (runs of \
             about {secs:.1} s, with 1 connection, then with 8: the chain, the hub, dnsd's R \
             misses, its I misses, the ceiling, dnsd's hits, each with both generators). The q/s \
             and p99 columns are medians over rounds; the ratios are the median over rounds \
             of the ratio within a round. Where a target here is missed, the notes at the \
             end say what is in the way, with the profiles that show it (issue 10)."
        ));
        d.w("");
    }
    for g in Generator::ALL {
        d.w(format!("### With {}", g.label()));
        d.w("");
        d.w(
            "| workload | conns | against | its q/s | dnsd q/s | ratio | p99 µs, dnsd / its | \
             p99 ratio | target | |",
        );
        d.w("|---|---:|---|---:|---:|---:|---:|---:|---|---|");
        for row in &RELAY_ROWS {
            let empty = BTreeMap::new();
            let ours = get(row.ours, g, row.conns).unwrap_or(&empty);
            let theirs = get(row.theirs, g, row.conns).unwrap_or(&empty);
            let v = Versus::of(ours, theirs);
            let (against, yardstick) = match row.theirs {
                "chain" => ("relay chain", "relay chain"),
                "hub" => ("relay hub", "relay hub"),
                _ => ("one relay", "one-relay ceiling"),
            };
            let mut goals = Vec::new();
            if let Some(goal) = row.min_qps {
                goals.push(format!("≥ {goal:.1}×"));
            }
            if let Some(goal) = row.max_p99 {
                goals.push(format!("p99 ≤ {goal:.0}×"));
            }
            let ok = relay_met(row, &v);
            let mark = match (ok, goals.is_empty(), v.rounds) {
                (_, true, _) => "no target",
                (_, false, 0) => "not measured",
                (Some(true), _, _) => "met",
                (Some(false), _, _) => "**missed**",
                (None, _, _) => "not measured",
            };
            let p99s = match (v.ours_p99, v.theirs_p99) {
                (Some(o), Some(t)) => format!("{o:.0} / {t:.0}"),
                _ => "–".into(),
            };
            d.w(format!(
                "| {} | {} | {against} | {} | {} | {} | {p99s} | {} | {} | {mark} |",
                row.label,
                row.conns,
                float_qps(v.theirs_qps),
                float_qps(v.ours_qps),
                times2(v.qps),
                times2(v.p99),
                if goals.is_empty() {
                    "–".into()
                } else {
                    goals.join(", ")
                },
            ));
            let conns = if row.conns == 1 { "conn" } else { "conns" };
            let rounds = match v.rounds {
                1 => "1 round".to_owned(),
                n => format!("median of {n} rounds"),
            };
            let measured = |x: Option<f64>| match x {
                Some(x) => format!("{x:.2}× ({rounds})"),
                None => "not measured".into(),
            };
            if let Some(goal) = row.min_qps {
                d.target(
                    format!(
                        "{}, {} {conns}: at least {goal:.1}× the {yardstick} ({})",
                        row.label,
                        row.conns,
                        g.label()
                    ),
                    measured(v.qps),
                    v.qps.map(|x| x >= goal),
                );
            }
            if let Some(goal) = row.max_p99 {
                d.target(
                    format!(
                        "{}, {} {conns}: p99 within {goal:.0}× the {yardstick}'s ({})",
                        row.label,
                        row.conns,
                        g.label()
                    ),
                    match (v.p99, v.ours_p99, v.theirs_p99) {
                        (Some(x), Some(o), Some(t)) => {
                            format!("{x:.2}× ({o:.0} vs {t:.0} µs; {rounds})")
                        }
                        _ => "not measured".into(),
                    },
                    v.p99.map(|x| x <= goal),
                );
            }
        }
        d.w("");
    }
    if all.is_empty() {
        return;
    }
    d.w("The two generators side by side (median q/s over rounds):");
    d.w("");
    d.w("| run | conns | dnsd bench q/s | loadgen q/s | dnsd bench / loadgen |");
    d.w("|---|---:|---:|---:|---:|");
    for (key, label, _) in RELAY_RUNS {
        for c in [1, 8] {
            let of = |g| get(key, g, c).and_then(|r| median(r.values().map(|r| r.qps).collect()));
            let (b, l) = (of(Generator::Bench), of(Generator::Loadgen));
            let x = match (b, l) {
                (Some(b), Some(l)) if l > 0.0 => Some(b / l),
                _ => None,
            };
            d.w(format!(
                "| {label} | {c} | {} | {} | {} |",
                float_qps(b),
                float_qps(l),
                times2(x)
            ));
        }
    }
    d.w("");
    let mut bad = Vec::new();
    for (key, g, c, rounds) in &runs {
        let expected = RELAY_RUNS
            .iter()
            .find(|(k, _, _)| k == key)
            .map_or("0X00", |(_, _, code)| code);
        for (round, run) in rounds {
            if !run.all(expected) {
                bad.push(format!(
                    "relay-{key}-{}-{c}-r{round}: {}",
                    g.key(),
                    run.codes_text()
                ));
            }
        }
    }
    if bad.is_empty() {
        d.w(
            "Every run above answered every query, with `0X00` from the relays and for hits \
             and `0XFF` for misses, and no errors.",
        );
    } else {
        d.w(format!(
            "Not every run answered every query with the expected code: {}",
            bad.join("; ")
        ));
    }
    d.w("");
}

fn resolutions(d: &mut Doc, dir: &Dir) {
    d.w("## Resolutions by zone size");
    d.w("");
    d.w(
        "| mode | conns | 1,000 names q/s (p50 / p99) | 100,000 names | 1,000,000 names | \
         100k / 1k | 1M / 1k | original, 100,000 names | dnsd / original (100k) |",
    );
    d.w("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for mode in ["R", "I"] {
        for c in [1, 8] {
            let runs: Vec<Option<Results>> = ["1000", "100000", "1000000"]
                .iter()
                .map(|size| dir.load(&format!("dnsd-res{mode}-{size}-{c}")))
                .collect();
            let orig = dir.load(&format!("orig-res{mode}-100000-{c}"));
            let cells: Vec<String> = runs
                .iter()
                .map(|r| format!("{} ({})", qps(figures(r)), lat(figures(r))))
                .collect();
            let reference = format!("dnsd-res{mode}-1000-{c}");
            let paired = |size: &str| dir.paired(&format!("dnsd-res{mode}-{size}-{c}"), &reference);
            d.w(format!(
                "| {mode} | {c} | {} | {} | {} | {} | {} |",
                cells.join(" | "),
                pct(paired("100000")),
                pct(paired("1000000")),
                qps(figures(&orig)),
                times(ratio(figures(&runs[1]), figures(&orig))),
            ));
            for size in ["100,000", "1,000,000"] {
                let x = paired(&size.replace(',', ""));
                d.target(
                    format!(
                        "Resolutions {mode}, {c} conn, {size} names: within 10% of 1,000 names"
                    ),
                    pct(x),
                    x.map(|x| x >= 0.9),
                );
            }
        }
    }
    let mut bad = Vec::new();
    for file in &dir.files {
        if !(file.starts_with("dnsd-res") && file.ends_with(".json")) {
            continue;
        }
        let Some(r) = dir.read::<Results>(file) else {
            continue;
        };
        let f = &r.figures;
        if f.errors > 0 || f.codes.get(Code::Resolved) != f.queries {
            let key = file.trim_end_matches(".json");
            bad.push(format!("{key}: {}", codes(Some(f))));
        }
    }
    d.w("");
    if bad.is_empty() {
        d.w("Every resolution above was answered `0X01`, with no errors.");
    } else {
        d.w(format!(
            "Not every resolution was a `0X01`: {}",
            bad.join("; ")
        ));
    }
    let mut orig_codes = Vec::new();
    for mode in ["R", "I"] {
        for c in [1, 8] {
            if let Some(o) = dir.load(&format!("orig-res{mode}-100000-{c}")) {
                orig_codes.push(format!("{mode} {c} conn: {}", codes(Some(&o.figures))));
            }
        }
    }
    if !orig_codes.is_empty() {
        d.w(format!(
            "The original's replies there: {}.",
            orig_codes.join("; ")
        ));
    }
    d.w("");
}

fn zone_load(d: &mut Doc, dir: &Dir) {
    d.w("## Loading a 1,000,000-name zone");
    d.w("");
    d.w("`dnsd tld com ZONE --port 0`, from start until its `listening on` line; peak RSS is");
    d.w("`VmHWM` from `/proc/PID/status` at that moment.");
    d.w("");
    d.w("| form | time | peak RSS |");
    d.w("|---|---:|---:|");
    for (form, label) in [
        ("dat", "legacy (`NAME ADDR` lines)"),
        ("toml", "TOML (`[records]`)"),
    ] {
        match dir.read::<ZoneLoad>(&format!("zoneload-{form}.json")) {
            Some(r) => {
                let mb = r.peak_rss_kb as f64 / 1024.0;
                d.w(format!("| {label} | {:.2} s | {mb:.0} MB |", r.secs));
                d.target(
                    format!("1M-name zone, {form}: loads in under 2 s"),
                    format!("{:.2} s", r.secs),
                    Some(r.secs < 2.0),
                );
                d.target(
                    format!("1M-name zone, {form}: peak RSS under 300 MB"),
                    format!("{mb:.0} MB"),
                    Some(mb < 300.0),
                );
            }
            None if dir.only().is_some() => {
                d.w(format!("| {label} | – | – |"));
                d.target(format!("1M-name zone, {form}: loads"), "not measured", None);
            }
            None => {
                d.w(format!("| {label} | – | – |"));
                d.target(
                    format!("1M-name zone, {form}: loads"),
                    "did not load",
                    Some(false),
                );
            }
        }
    }
    d.w("");
}

fn idle(d: &mut Doc, dir: &Dir) {
    d.w("## 1,000 idle clients");
    d.w("");
    match dir.read::<Idle>("idle.json") {
        Some(r) => {
            let (before, after) = (r.before_kb as f64 / 1024.0, r.after_kb as f64 / 1024.0);
            let cost = after - before;
            d.w(format!(
                "A fresh `dnsd local` used {before:.1} MB RSS; with 1,000 client \
                 sessions open (each sent its id and got the greeting, then stayed silent) it \
                 used {after:.1} MB: {cost:.1} MB for the 1,000 connections, {:.0} kB each.",
                cost * 1024.0 / 1000.0
            ));
            d.target(
                "1,000 idle clients cost under 150 MB RSS",
                format!("{cost:.1} MB ({after:.1} MB in all)"),
                Some(after < 150.0),
            );
        }
        None => {
            d.w("Not measured (the clients could not all connect).");
            d.target(
                "1,000 idle clients cost under 150 MB RSS",
                "not measured",
                None,
            );
        }
    }
    d.w("");
}

/// The targets that compare whole runs (the others are noted with their tables).
fn targets(d: &mut Doc, dir: &Dir) {
    let (h1, h8) = (dir.load("dnsd-hits-1"), dir.load("dnsd-hits-8"));
    if let Some(h8f) = figures(&h8) {
        let x = ratio(Some(h8f), ceiling(&h8));
        d.target(
            "Hits, 8 conns: at least 80% of the ceiling",
            pct(x),
            Some(x.is_some_and(|x| x >= 0.8)),
        );
        let x = ratio(Some(h8f), figures(&dir.load("orig-hits-8")));
        d.target(
            "Hits, 8 conns: at least 7× the original",
            times(x),
            x.map(|x| x >= 7.0),
        );
        if let Some(c) = ceiling(&h8) {
            let cp99 = c.p99_us;
            d.target(
                "Hits, 8 conns: p99 within 2× the ceiling's p99",
                format!(
                    "{} µs vs {cp99} µs ({:.1}×)",
                    h8f.p99_us,
                    h8f.p99_us as f64 / cp99.max(1) as f64
                ),
                Some(h8f.p99_us <= 2 * cp99),
            );
        }
    }
    if let Some(h1f) = figures(&h1) {
        let x = ratio(Some(h1f), ceiling(&h1));
        d.target(
            "Hits, 1 conn: at least 90% of the ceiling",
            pct(x),
            Some(x.is_some_and(|x| x >= 0.9)),
        );
    }
    for (kind, label, factor) in [("rmiss", "R misses", 3.0), ("imiss", "I misses", 6.0)] {
        let r = dir.load(&format!("dnsd-{kind}-8"));
        if let Some(rf) = figures(&r) {
            let x = ratio(Some(rf), ceiling(&r));
            d.target(
                format!("{label}, 8 conns: at least 25% of the ceiling"),
                pct(x),
                Some(x.is_some_and(|x| x >= 0.25)),
            );
            let x = ratio(Some(rf), figures(&dir.load(&format!("orig-{kind}-8"))));
            d.target(
                format!("{label}, 8 conns: at least {factor}× the original"),
                times(x),
                x.map(|x| x >= factor),
            );
        }
    }
}

/// The servers of the dnsperf table: file key, label, what is asked.
const DNSPERF_SERVERS: [(&str, &str, &str); 4] = [
    (
        "local",
        "dnsd local",
        "`www.example.com` A, an entry of the default cache (asked once before)",
    ),
    (
        "tld",
        "dnsd tld com",
        "`www.google.com` A, a name of its zone (authoritative)",
    ),
    (
        "unbound",
        "Unbound (1 thread)",
        "`bench.example` A, a `local-data` name",
    ),
    (
        "nsd",
        "NSD (1 server, no RRL)",
        "`www.example.com` A, a name of its zone",
    ),
];

/// The dnsperf runs of `server` over `proto` (`dnsperf-SERVER-PROTO-rN.txt`), by round.
fn dnsperf_rounds(dir: &Dir, server: &str, proto: &str) -> BTreeMap<String, Dnsperf> {
    let prefix = format!("dnsperf-{server}-{proto}-r");
    dir.files
        .iter()
        .filter_map(|f| {
            let round = f.strip_prefix(&prefix)?.strip_suffix(".txt")?;
            let text = std::fs::read_to_string(dir.path.join(f)).ok()?;
            Some((round.to_owned(), Dnsperf::parse(&text)?))
        })
        .collect()
}

/// The median of `xs` (`None` if empty).
fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    })
}

/// The median over rounds of `ours`' queries a second over `theirs`' in the same round.
fn dnsperf_ratio(
    ours: &BTreeMap<String, Dnsperf>,
    theirs: &BTreeMap<String, Dnsperf>,
) -> Option<f64> {
    median(
        ours.iter()
            .filter_map(|(round, d)| {
                let t = theirs.get(round)?;
                (t.qps > 0.0).then(|| d.qps / t.qps)
            })
            .collect(),
    )
}

fn dnsperf(d: &mut Doc, dir: &Dir) {
    d.w("## DNS: dnsperf against Unbound and NSD");
    d.w("");
    if let Ok(why) = std::fs::read_to_string(dir.path.join("dnsperf-skipped.txt")) {
        d.w(format!("Not measured: {}.", why.trim()));
        d.w("");
        d.target("DNS: dnsd beside Unbound and NSD", "not measured", None);
        return;
    }
    let runs: BTreeMap<(&'static str, &'static str), BTreeMap<String, Dnsperf>> = DNSPERF_SERVERS
        .iter()
        .flat_map(|(key, _, _)| ["udp", "tcp"].map(|proto| (*key, proto)))
        .map(|(key, proto)| ((key, proto), dnsperf_rounds(dir, key, proto)))
        .collect();
    let get = |key: &'static str, proto: &'static str| runs.get(&(key, proto));
    let command = runs
        .values()
        .flat_map(|r| r.values())
        .map(|r| r.command.clone())
        .find(|c| !c.is_empty())
        .unwrap_or_default();
    let rounds = runs.values().map(BTreeMap::len).max().unwrap_or(0);
    d.w(format!(
        "Debian's `dnsperf` with 8 clients and 100 queries outstanding, one name asked \
         again and again, against each server in turn on loopback, over UDP and over TCP \
         (`dnsperf -m udp|tcp -s 127.0.0.1 -p PORT -d FILE -c 8 -q 100 -l SECS`; one run \
         was `{command}`). {rounds} rounds; in each round every server is measured once per \
         transport, starting with a different server each round. The table shows each \
         server's median round; the ratios are the median over rounds of the ratio within \
         a round. \"lost\" is over all rounds. dnsd runs as separate processes with its \
         default settings (logging on: one INFO line per query to stderr, into a file); \
         Unbound and NSD with the settings below, their logging at verbosity 0."
    ));
    d.w("");
    d.w("| server | asked | UDP q/s | UDP lost | TCP q/s | TCP lost | avg latency UDP / TCP µs | codes |");
    d.w("|---|---|---:|---:|---:|---:|---:|---|");
    let mid = |rounds: Option<&BTreeMap<String, Dnsperf>>| -> Option<Dnsperf> {
        let mut v: Vec<Dnsperf> = rounds?.values().cloned().collect();
        v.sort_by(|a, b| a.qps.total_cmp(&b.qps));
        let at = v.len() / 2;
        v.into_iter().nth(at)
    };
    let lost = |rounds: Option<&BTreeMap<String, Dnsperf>>| -> String {
        rounds.filter(|r| !r.is_empty()).map_or("–".into(), |r| {
            thousands(r.values().map(|d| d.lost).sum())
        })
    };
    for (key, label, asked) in DNSPERF_SERVERS {
        let (udp, tcp) = (mid(get(key, "udp")), mid(get(key, "tcp")));
        let q = |d: &Option<Dnsperf>| d.as_ref().map_or("–".into(), |d| thousands(d.qps as u64));
        let l = |d: &Option<Dnsperf>| {
            d.as_ref()
                .map_or("–".into(), |d| format!("{:.0}", d.avg_latency_us))
        };
        let mut codes: Vec<String> = Vec::new();
        for (proto, d) in [("UDP", &udp), ("TCP", &tcp)] {
            if let Some(d) = d {
                codes.push(format!("{proto}: {}", d.rcodes_text()));
            }
        }
        d.w(format!(
            "| {label} | {asked} | {} | {} | {} | {} | {} / {} | {} |",
            q(&udp),
            lost(get(key, "udp")),
            q(&tcp),
            lost(get(key, "tcp")),
            l(&udp),
            l(&tcp),
            if codes.is_empty() {
                "–".into()
            } else {
                codes.join("; ")
            },
        ));
    }
    d.w("");
    d.w("| ratio (median over rounds) | measured | target | |");
    d.w("|---|---:|---:|---|");
    let goals = [
        ("local", "unbound", "udp", 0.8, "dnsd local / Unbound, UDP"),
        ("local", "unbound", "tcp", 1.0, "dnsd local / Unbound, TCP"),
        ("tld", "nsd", "udp", 0.9, "dnsd tld / NSD, UDP"),
        ("tld", "unbound", "udp", 1.0, "dnsd tld / Unbound, UDP"),
        ("tld", "nsd", "tcp", 1.0, "dnsd tld / NSD, TCP"),
    ];
    for (ours, theirs, proto, goal, name) in goals {
        let x = match (get(ours, proto), get(theirs, proto)) {
            (Some(a), Some(b)) => dnsperf_ratio(a, b),
            _ => None,
        };
        let mark = match x {
            Some(x) if x >= goal => "met",
            Some(_) => "**missed**",
            None => "not measured",
        };
        d.w(format!(
            "| {name} | {} | ≥ {goal:.1}× | {mark} |",
            x.map_or("–".into(), |x| format!("{x:.2}×"))
        ));
        d.target(
            format!("DNS, dnsperf: {name} at least {goal:.1}×"),
            x.map_or("–".into(), |x| format!("{x:.2}×")),
            x.map(|x| x >= goal),
        );
    }
    let ours: Vec<&Dnsperf> = ["local", "tld"]
        .iter()
        .flat_map(|k| ["udp", "tcp"].map(|p| (*k, p)))
        .filter_map(|(k, p)| get(k, p))
        .flat_map(|r| r.values())
        .collect();
    let lost_total: u64 = ours.iter().map(|d| d.lost).sum();
    d.w("");
    d.target(
        "DNS, dnsperf: no query lost by dnsd",
        format!(
            "{} lost of {}",
            thousands(lost_total),
            thousands(ours.iter().map(|d| d.sent).sum())
        ),
        (!ours.is_empty()).then_some(lost_total == 0),
    );
    let loads: Vec<String> = runs
        .values()
        .flat_map(|r| r.values())
        .filter_map(|d| d.load.clone())
        .collect();
    if let (Some(lo), Some(hi)) = (
        loads.iter().min_by(|a, b| load1(a).total_cmp(&load1(b))),
        loads.iter().max_by(|a, b| load1(a).total_cmp(&load1(b))),
    ) {
        d.w(format!(
            "Load average before each dnsperf run: from {lo} to {hi} (1, 5, 15 min)."
        ));
        d.w("");
    }
    d.w(
        "Unbound: `num-threads: 1`, `module-config: \"iterator\"`, `incoming-num-tcp: 100`, \
         the name from `local-data`. NSD: `server-count: 1`, `tcp-count: 100`, rate limiting \
         off (`rrl-ratelimit: 0`). Both on a free loopback port chosen by the script (neither \
         takes port 0). dnsd: `dnsd tld com zones/com.dat --port 0` and a `dnsd local` in \
         front of a `dnsd root`, each process with its fixed UDP threads and a thread per TCP \
         connection.",
    );
    d.w("");
}

/// The one-minute figure of a load average line.
fn load1(line: &str) -> f64 {
    line.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    const LOADGEN_LINE: &str = "{\"connections\":8,\"secs\":3.002,\"queries\":120000,\
        \"qps\":39973,\"p50_us\":190,\"p99_us\":420,\"errors\":0,\"codes\":{\"0XFF\":120000}}";

    fn run(qps: f64, p99_us: u64) -> Run {
        Run {
            secs: 3.0,
            queries: 100,
            qps,
            p99_us,
            errors: 0,
            codes: BTreeMap::from([("0XFF".to_owned(), 100)]),
        }
    }

    fn rounds(runs: &[(&str, Run)]) -> BTreeMap<String, Run> {
        runs.iter()
            .map(|(n, r)| (n.to_string(), r.clone()))
            .collect()
    }

    #[test]
    fn loadgen_lines_are_read() {
        let l: Loadgen = serde_json::from_str(LOADGEN_LINE).unwrap();
        assert_eq!(
            (l.connections, l.queries, l.p50_us, l.p99_us),
            (8, 120000, 190, 420)
        );
        assert_eq!(l.codes.get("0XFF"), Some(&120000));
        let r = Run::parse(Generator::Loadgen, LOADGEN_LINE).unwrap();
        assert_eq!(
            (r.secs, r.qps, r.p99_us, r.errors),
            (3.002, 39973.0, 420, 0)
        );
        assert!(r.all("0XFF") && !r.all("0X00"));
        // Without codes (no reply at all) it still reads; anything else is not a run.
        let none = "{\"connections\":1,\"secs\":3.0,\"queries\":0,\"qps\":0,\
                    \"p50_us\":0,\"p99_us\":0,\"errors\":1,\"codes\":{}}";
        let r = Run::parse(Generator::Loadgen, none).unwrap();
        assert!(!r.all("0XFF"));
        assert_eq!(r.codes_text(), "; errors 1");
        assert_eq!(Run::parse(Generator::Loadgen, "{}"), None);
        assert_eq!(Run::parse(Generator::Loadgen, ""), None);
        // A loadgen line is not a dnsd bench result, nor the other way round.
        assert_eq!(Run::parse(Generator::Bench, LOADGEN_LINE), None);
    }

    #[test]
    fn bench_results_are_read_as_runs() {
        let mut workload = super::super::Workload::new("127.0.0.1:1".parse().unwrap());
        workload.connections = 8;
        let mut report = super::super::Report {
            queries: 30,
            elapsed: std::time::Duration::from_secs(3),
            ..Default::default()
        };
        report.codes[0] = 30;
        let json = Results::new(&workload, &report, None).to_json();
        let r = Run::parse(Generator::Bench, &json).unwrap();
        assert_eq!((r.secs, r.queries, r.qps, r.errors), (3.0, 30, 10.0, 0));
        assert_eq!(r.codes, BTreeMap::from([("0X00".to_owned(), 30)]));
        assert!(r.all("0X00"));
        assert_eq!(r.codes_text(), "0X00 30");
    }

    #[test]
    fn versus_takes_medians_and_the_median_ratio_within_rounds() {
        let ours = rounds(&[
            ("1", run(80.0, 300)),
            ("2", run(90.0, 200)),
            ("3", run(50.0, 100)),
            ("4", run(1000.0, 1)),
        ]);
        let theirs = rounds(&[
            ("1", run(100.0, 100)),
            ("2", run(100.0, 100)),
            ("3", run(40.0, 100)),
        ]);
        let v = Versus::of(&ours, &theirs);
        // Round 4 has no yardstick: not a pair, but still one of ours.
        assert_eq!(v.rounds, 3);
        assert_eq!(v.qps, Some(0.9)); // 0.8, 0.9, 1.25
        assert_eq!(v.p99, Some(2.0)); // 3, 2, 1
        assert_eq!(v.ours_qps, Some(85.0)); // 50, 80, 90, 1000
        assert_eq!(v.theirs_qps, Some(100.0));
        assert_eq!(v.ours_p99, Some(150.0));
        assert_eq!(v.theirs_p99, Some(100.0));
        // Even counts: the mean of the middle two.
        let two = rounds(&[("1", run(80.0, 300)), ("2", run(90.0, 200))]);
        let x = Versus::of(&two, &theirs).qps.unwrap();
        assert!((x - 0.85).abs() < 1e-9, "{x}");
        // A yardstick that answered nothing gives no ratio; nothing measured, nothing.
        let zero = rounds(&[("1", run(0.0, 0))]);
        assert_eq!(Versus::of(&ours, &zero).qps, None);
        assert_eq!(
            Versus::of(&BTreeMap::new(), &theirs),
            Versus {
                theirs_qps: Some(100.0),
                theirs_p99: Some(100.0),
                ..Versus::default()
            }
        );
    }

    #[test]
    fn relay_targets() {
        let hits8 = &RELAY_ROWS[7];
        assert_eq!((hits8.ours, hits8.conns), ("hits", 8));
        // Mode I against the hub: shown, no target.
        let hub1 = &RELAY_ROWS[4];
        assert_eq!((hub1.theirs, hub1.min_qps), ("hub", None));
        assert_eq!(relay_met(hub1, &Versus::default()), None);
        let v = |qps, p99| Versus {
            rounds: 3,
            qps: Some(qps),
            p99: Some(p99),
            ..Versus::default()
        };
        assert_eq!(relay_met(hits8, &v(0.8, 2.0)), Some(true));
        assert_eq!(relay_met(hits8, &v(0.79, 1.0)), Some(false));
        assert_eq!(relay_met(hits8, &v(0.9, 2.1)), Some(false));
        assert_eq!(relay_met(hits8, &Versus::default()), None);
        let r1 = &RELAY_ROWS[0];
        assert_eq!((r1.conns, r1.min_qps), (1, Some(0.9)));
        assert_eq!(relay_met(r1, &v(0.9, 9.0)), Some(true));
        assert_eq!(relay_met(r1, &v(0.89, 1.0)), Some(false));
        // Hits on one connection have no target.
        assert_eq!(relay_met(&RELAY_ROWS[4], &v(0.1, 9.0)), None);
    }

    fn config(results: &Path) -> ReportConfig {
        ReportConfig {
            results: results.to_owned(),
            out: results.join("out.md"),
            machine: "m".into(),
            date: "d".into(),
            commit: "c".into(),
            duration: "5".into(),
            orig_slow_secs: "3".into(),
            original: String::new(),
            elapsed: "1".into(),
            load: "l".into(),
            res_secs: "0.6".into(),
            rounds: "9".into(),
            notes: None,
        }
    }

    /// The lines of `text` from the heading `heading` to the next `## ` heading.
    fn section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
        let mut lines = text.lines().skip_while(|l| *l != heading);
        let first = lines.next().into_iter();
        first
            .chain(lines.take_while(|l| !l.starts_with("## ")))
            .collect()
    }

    const RELAY_HEADING: &str =
        "## Misses against a chain of three relay processes, hits against one";

    #[test]
    fn the_relay_section_without_results_says_not_measured() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("only.txt"), "chain\n").unwrap();
        let text = render(&config(dir.path())).unwrap();
        let lines = section(&text, RELAY_HEADING);
        assert!(
            lines.contains(&"Not measured: no result of the relay section."),
            "{lines:?}"
        );
        assert!(lines.contains(
            &"| R misses | 8 | relay chain | – | – | – | – | – | ≥ 0.8× | not measured |"
        ));
        assert!(text.contains(
            "| R misses, 8 conns: at least 0.8× the relay chain (loadgen) | not measured | not measured |"
        ));
        assert!(text.contains("- Only some sections ran (`ONLY=chain`)"));
        assert!(text.contains("| 1M-name zone, dat: loads | not measured | not measured |"));
    }

    #[test]
    fn the_relay_section_pairs_rounds_per_generator() {
        let dir = tempfile::tempdir().unwrap();
        let line = |qps: f64, p99: u64, code: &str| {
            format!(
                "{{\"connections\":8,\"secs\":3.0,\"queries\":100,\"qps\":{qps},\
                 \"p50_us\":1,\"p99_us\":{p99},\"errors\":0,\"codes\":{{\"{code}\":100}}}}"
            )
        };
        let put = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        for (round, chain, r) in [(1, 100.0, 85.0), (2, 200.0, 150.0), (3, 100.0, 90.0)] {
            put(
                &format!("relay-chain-loadgen-8-r{round}.json"),
                line(chain, 100, "0X00"),
            );
            put(
                &format!("relay-R-loadgen-8-r{round}.json"),
                line(r, 300, "0XFF"),
            );
            put(
                &format!("relay-ceiling-loadgen-8-r{round}.json"),
                line(1000.0, 100, "0X00"),
            );
            put(
                &format!("relay-hits-loadgen-8-r{round}.json"),
                line(900.0, 150, "0X00"),
            );
        }
        put("relay-hub-loadgen-8-r1.json", line(100.0, 100, "0X00"));
        put("relay-I-loadgen-8-r1.json", line(95.0, 100, "0XFF"));
        // A hit answered with the wrong code is called out.
        put("relay-hits-loadgen-1-r1.json", line(900.0, 150, "0XFF"));
        put("relay-ceiling-loadgen-1-r1.json", line(1000.0, 100, "0X00"));
        let text = render(&config(dir.path())).unwrap();
        let lines = section(&text, RELAY_HEADING);
        // R misses: 0.85, 0.75, 0.9 of the chain: median 0.85; q/s medians 100 and 90.
        assert!(lines.contains(
            &"| R misses | 8 | relay chain | 100 | 90 | 0.85× | 300 / 100 | 3.00× | ≥ 0.8× | met |"
        ), "{lines:#?}");
        assert!(lines.contains(
            &"| Hits | 8 | one relay | 1,000 | 900 | 0.90× | 150 / 100 | 1.50× | ≥ 0.8×, p99 ≤ 2× | met |"
        ));
        assert!(lines.contains(
            &"| Hits | 1 | one relay | 1,000 | 900 | 0.90× | 150 / 100 | 1.50× | – | no target |"
        ));
        assert!(lines.contains(
            &"| I misses | 8 | relay hub | 100 | 95 | 0.95× | 100 / 100 | 1.00× | – | no target |"
        ), "{lines:#?}");
        // dnsd bench measured nothing here.
        assert!(lines.contains(
            &"| R misses | 8 | relay chain | – | – | – | – | – | ≥ 0.8× | not measured |"
        ));
        assert!(lines.contains(&"| dnsd, R misses | 8 | – | 90 | – |"));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("relay-hits-loadgen-1-r1: 0XFF 100")),
            "{lines:#?}"
        );
        assert!(text.contains(
            "| R misses, 8 conns: at least 0.8× the relay chain (loadgen) | 0.85× (median of 3 rounds) | met |"
        ));
        assert!(text.contains(
            "| Hits, 8 conns: p99 within 2× the one-relay ceiling's (loadgen) | 1.50× (150 vs 100 µs; median of 3 rounds) | met |"
        ));
        assert!(text.contains(
            "| I misses, 1 conn: at least 0.9× the relay chain (dnsd bench) | not measured | not measured |"
        ));
    }
}
