//! `dnsd bench report` and `dnsd bench show`: the results `scripts/bench.sh` collects,
//! read back with the types `dnsd bench --json` wrote them with, turned into
//! `BENCHMARKS.md` (or one summary line per result).
//!
//! The results directory holds one `KEY.json` per `dnsd bench --json` run (a run made in
//! rounds is `KEY-rN.json`, one file per round), `zoneload-dat.json` and
//! `zoneload-toml.json` ([`ZoneLoad`]), `idle.json` ([`Idle`]), and
//! `original-skipped.txt` when the original could not be measured; and from
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
use crate::protocol::Code;

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
    let mut text = r
        .codes
        .iter()
        .filter(|&(_, n)| n > 0)
        .map(|(c, n)| format!("{c} {}", thousands(n)))
        .collect::<Vec<_>>()
        .join(", ");
    if r.errors > 0 {
        let _ = write!(text, "; errors {}", thousands(r.errors));
    }
    if text.is_empty() {
        "none".into()
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
    chain(d, &dir);
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
        "## Targets (issue 4)".to_owned(),
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

fn chain(d: &mut Doc, dir: &Dir) {
    d.w("## Misses against a chain of three do-nothing servers");
    d.w("");
    d.w(
        "A miss crosses three servers (local, root, TLD). `--ceiling --ceiling-hops 3` measures, \
         right after dnsd, a chain of three servers that only pass each line on: the most a \
         chain of thread-per-connection servers allows on this machine before any work is done.",
    );
    d.w("");
    d.w(
        "| workload | conns | dnsd q/s | three-hop chain q/s | share of the chain | \
         one-server ceiling (from the table above) | chain / one-server ceiling |",
    );
    d.w("|---|---:|---:|---:|---:|---:|---:|");
    for (mode, kind) in [("R", "rmiss"), ("I", "imiss")] {
        let ours = dir.load(&format!("dnsd-miss3{mode}-8"));
        let one = dir.load(&format!("dnsd-{kind}-8"));
        let (dn, chain, one_ceil) = (figures(&ours), ceiling(&ours), ceiling(&one));
        d.w(format!(
            "| {mode} misses | 8 | {} | {} | {} | {} | {} |",
            qps(dn),
            qps(chain),
            pct(ratio(dn, chain)),
            qps(one_ceil),
            pct(ratio(chain, one_ceil)),
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
}
