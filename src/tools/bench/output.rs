//! What `dnsd bench` prints: the table for a person, or [`Results`] as one JSON object
//! for `scripts/bench.sh`, which `dnsd bench report` reads back with the same types.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DnsTransport, Report, Workload};
use crate::line::message::{Code, Mode};

/// One `dnsd bench --json` result: the workload, the server's figures, and with
/// `--ceiling` the ceiling's figures, its length and the server's share of its queries
/// per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub server: String,
    pub connections: usize,
    #[serde(with = "mode_letter")]
    pub mode: Mode,
    /// The pattern, or how many names came from a list.
    pub names: String,
    pub legacy: bool,
    /// The DNS transport of a `--dns` run; absent for the line protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsTransport>,
    #[serde(flatten)]
    pub figures: Figures,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Figures>,
    /// How many servers the ceiling chains (1: a single server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling_hops: Option<u32>,
    /// The server's queries per second over the ceiling's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling_share: Option<f64>,
}

/// The figures of one run, in the JSON's units: seconds, queries per second and
/// microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub elapsed_s: f64,
    pub queries: u64,
    /// All queries without a usable reply; the four counts after it say why.
    pub errors: u64,
    pub connect_errors: u64,
    pub timeouts: u64,
    pub closed: u64,
    pub unparsable: u64,
    pub reconnects: u64,
    pub qps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub codes: Codes,
    /// DNS replies by response code; absent for the line protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcodes: Option<Rcodes>,
}

/// DNS replies by response code, named as DNS tools print them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub struct Rcodes {
    pub noerror: u64,
    pub formerr: u64,
    pub servfail: u64,
    pub nxdomain: u64,
    pub notimp: u64,
    pub refused: u64,
    /// Any other response code.
    pub other: u64,
}

impl Rcodes {
    /// From counts in the order of [`RCODES`](super::RCODES), then the others.
    pub fn from_counts(c: &[u64; super::RCODES.len() + 1]) -> Rcodes {
        Rcodes {
            noerror: c[0],
            formerr: c[1],
            servfail: c[2],
            nxdomain: c[3],
            notimp: c[4],
            refused: c[5],
            other: c[6],
        }
    }

    /// Every code with its count, the others last (`OTHER`).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("NOERROR", self.noerror),
            ("FORMERR", self.formerr),
            ("SERVFAIL", self.servfail),
            ("NXDOMAIN", self.nxdomain),
            ("NOTIMP", self.notimp),
            ("REFUSED", self.refused),
            ("OTHER", self.other),
        ]
        .into_iter()
    }
}

/// Replies by code, named by the code as it is on the wire (and in [`Code::ALL`]'s
/// order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Codes {
    #[serde(rename = "0X00")]
    pub cached: u64,
    #[serde(rename = "0X01")]
    pub resolved: u64,
    #[serde(rename = "0X02")]
    pub referral: u64,
    #[serde(rename = "0XFF")]
    pub not_found: u64,
    #[serde(rename = "0XEE")]
    pub invalid: u64,
    #[serde(rename = "0XFE")]
    pub failure: u64,
}

impl Codes {
    /// How many replies carried `code`.
    pub fn get(&self, code: Code) -> u64 {
        match code {
            Code::Cached => self.cached,
            Code::Resolved => self.resolved,
            Code::Referral => self.referral,
            Code::NotFound => self.not_found,
            Code::Invalid => self.invalid,
            Code::Failure => self.failure,
        }
    }

    /// Every code with its count, in [`Code::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (Code, u64)> + '_ {
        Code::ALL.into_iter().map(|c| (c, self.get(c)))
    }
}

/// `x` rounded to `places` decimals, so that the JSON does not carry digits that mean
/// nothing.
fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl Figures {
    pub fn of(r: &Report) -> Figures {
        let l = &r.latency;
        let c = |code| r.code(code);
        Figures {
            elapsed_s: round(r.elapsed.as_secs_f64(), 3),
            queries: r.queries,
            errors: r.errors.total(),
            connect_errors: r.errors.connect,
            timeouts: r.errors.timeout,
            closed: r.errors.closed,
            unparsable: r.errors.unparsable,
            reconnects: r.reconnects,
            qps: round(r.qps(), 1),
            p50_us: micros(l.p50),
            p90_us: micros(l.p90),
            p99_us: micros(l.p99),
            p999_us: micros(l.p999),
            max_us: micros(l.max),
            codes: Codes {
                cached: c(Code::Cached),
                resolved: c(Code::Resolved),
                referral: c(Code::Referral),
                not_found: c(Code::NotFound),
                invalid: c(Code::Invalid),
                failure: c(Code::Failure),
            },
            rcodes: None,
        }
    }
}

impl Results {
    /// The results of a run; `ceiling` is the ceiling's report and its length (see
    /// [`Ceiling::chain`](super::Ceiling::chain)).
    pub fn new(workload: &Workload, report: &Report, ceiling: Option<(&Report, u32)>) -> Results {
        Results {
            server: workload.server.to_string(),
            connections: workload.connections,
            mode: workload.mode,
            names: workload.names.describe(),
            legacy: workload.legacy,
            dns: workload.dns,
            figures: Figures {
                rcodes: workload.dns.map(|_| Rcodes::from_counts(&report.rcodes)),
                ..Figures::of(report)
            },
            ceiling: ceiling.map(|(c, _)| Figures::of(c)),
            ceiling_hops: ceiling.map(|(_, hops)| hops),
            ceiling_share: ceiling.map(|(c, _)| round(share(report.qps(), c.qps()), 4)),
        }
    }

    /// One line of JSON, with its line end.
    pub fn to_json(&self) -> String {
        // Serializing plain numbers, strings and maps cannot fail.
        let mut out = serde_json::to_string(self).unwrap_or_default();
        out.push('\n');
        out
    }
}

/// The mode as its letter (`"R"`, `"I"`), as on the wire.
mod mode_letter {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::line::message::Mode;

    pub fn serialize<S: Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let letter = String::deserialize(d)?;
        letter
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{letter:?}: the mode is R or I")))
    }
}

/// `ours` over `theirs`, or 0 when there is nothing to compare with.
pub fn share(ours: f64, theirs: f64) -> f64 {
    if theirs > 0.0 {
        ours / theirs
    } else {
        0.0
    }
}

/// The human-readable result: one column for the server, one for the ceiling (with its
/// length, see [`Ceiling::chain`](super::Ceiling::chain)).
pub fn table(workload: &Workload, report: &Report, ceiling: Option<(&Report, u32)>) -> String {
    let mut out = String::new();
    let limit = match (workload.duration, workload.requests) {
        (Some(d), Some(r)) => format!("{:.1} s or {r} queries", d.as_secs_f64()),
        (Some(d), None) => format!("{:.1} s", d.as_secs_f64()),
        (None, Some(r)) => format!("{r} queries"),
        (None, None) => "no limit".to_owned(),
    };
    let _ = writeln!(
        out,
        "dnsd bench: {}, {} connection{}, {limit}, mode {}, {}{}",
        workload.server,
        workload.connections,
        if workload.connections == 1 { "" } else { "s" },
        workload.mode,
        workload.names.describe(),
        match (workload.dns, workload.legacy) {
            (Some(t), _) => format!(", DNS over {}", t.as_str()),
            (None, true) => ", legacy framing".to_owned(),
            (None, false) => String::new(),
        },
    );
    let mut row = |label: &str, ours: String, theirs: Option<String>| {
        let _ = match theirs {
            Some(t) => writeln!(out, "  {label:<14}{ours:>14}{t:>14}"),
            None => writeln!(out, "  {label:<14}{ours:>14}"),
        };
    };
    let hops = ceiling.map_or(1, |(_, hops)| hops);
    let ceiling = ceiling.map(|(c, _)| c);
    let ceiling_name = if hops > 1 {
        format!("{hops}-hop chain")
    } else {
        "ceiling".to_owned()
    };
    row("", "server".into(), ceiling.map(|_| ceiling_name.clone()));
    row(
        "queries",
        report.queries.to_string(),
        ceiling.map(|c| c.queries.to_string()),
    );
    row(
        "errors",
        report.errors.total().to_string(),
        ceiling.map(|c| c.errors.total().to_string()),
    );
    row(
        "queries/s",
        format!("{:.0}", report.qps()),
        ceiling.map(|c| format!("{:.0}", c.qps())),
    );
    let ceiling_rows = ceiling.map(|c| c.latency.rows());
    for (i, (name, ours)) in report.latency.rows().into_iter().enumerate() {
        row(
            &format!("latency {name}"),
            format!("{} µs", micros(ours)),
            ceiling_rows.map(|c| format!("{} µs", micros(c[i].1))),
        );
    }
    let e = report.errors;
    if e.total() > 0 || report.reconnects > 0 {
        let _ = writeln!(
            out,
            "  errors: {} connect, {} timeout, {} closed, {} unparsable; {} reconnects",
            e.connect, e.timeout, e.closed, e.unparsable, report.reconnects
        );
    }
    if workload.dns.is_some() {
        let rcodes: Vec<String> = Rcodes::from_counts(&report.rcodes)
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let _ = writeln!(out, "  rcodes: {}", rcodes.join("  "));
    } else {
        let codes: Vec<String> = Code::ALL
            .iter()
            .map(|&c| format!("{c} {}", report.code(c)))
            .collect();
        let _ = writeln!(out, "  codes: {}", codes.join("  "));
    }
    if let Some(c) = ceiling {
        let _ = writeln!(
            out,
            "  server/{ceiling_name}: {:.0}% of the queries/s; p99 {:.1}x the {ceiling_name}'s",
            share(report.qps(), c.qps()) * 100.0,
            share(
                report.latency.p99.as_secs_f64(),
                c.latency.p99.as_secs_f64()
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::bench::Names;

    fn sample() -> Results {
        let mut workload = Workload::new("127.0.0.1:5352".parse().unwrap());
        workload.names = Names::Pattern("www.nx{n}.com".into());
        let mut report = Report {
            queries: 3,
            elapsed: Duration::from_millis(1500),
            ..Report::default()
        };
        report.codes[3] = 3;
        Results::new(&workload, &report, Some((&report, 3)))
    }

    #[test]
    fn json_keeps_the_field_names_and_reads_back() {
        let results = sample();
        let json = results.to_json();
        assert!(json.ends_with("}\n") && json.lines().count() == 1, "{json}");
        assert!(
            json.starts_with(
                "{\"server\":\"127.0.0.1:5352\",\"connections\":1,\"mode\":\"R\",\
                 \"names\":\"www.nx{n}.com\",\"legacy\":false,\"elapsed_s\":1.5,\
                 \"queries\":3,\"errors\":0,\"connect_errors\":0,\"timeouts\":0,\
                 \"closed\":0,\"unparsable\":0,\"reconnects\":0,\"qps\":2.0,\"p50_us\":0,"
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "\"codes\":{\"0X00\":0,\"0X01\":0,\"0X02\":0,\"0XFF\":3,\"0XEE\":0,\"0XFE\":0}"
            ),
            "{json}"
        );
        assert!(json.ends_with("},\"ceiling_hops\":3,\"ceiling_share\":1.0}\n"));
        let back: Results = serde_json::from_str(&json).unwrap();
        assert_eq!(back, results);
    }

    #[test]
    fn json_without_a_ceiling_has_no_ceiling_fields() {
        let mut results = sample();
        results.ceiling = None;
        results.ceiling_hops = None;
        results.ceiling_share = None;
        let json = results.to_json();
        assert!(!json.contains("ceiling"), "{json}");
        assert_eq!(serde_json::from_str::<Results>(&json).unwrap(), results);
    }

    #[test]
    fn strings_are_escaped() {
        let mut results = sample();
        results.names = "a\"b\\c\n".into();
        let json = results.to_json();
        assert!(json.contains(r#""names":"a\"b\\c\n""#), "{json}");
    }
}
