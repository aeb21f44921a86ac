//! The output of Debian's `dnsperf` (2.10), read back: `scripts/dnsperf.sh` saves each
//! run's text as it is, and `dnsd bench report` and `dnsd bench show` read it here, so
//! that dnsd, Unbound and NSD are measured by the same tool and reported side by side.

use serde::{Deserialize, Serialize};

/// What one dnsperf run printed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dnsperf {
    /// The command line dnsperf reports (`dnsperf -m udp -s ... -c 8 -q 100 -l 5`).
    pub command: String,
    pub sent: u64,
    pub completed: u64,
    pub lost: u64,
    pub qps: f64,
    pub run_time_s: f64,
    /// The average latency of a query, in µs.
    pub avg_latency_us: f64,
    /// Replies by response code, as dnsperf names them (`NOERROR`, `NXDOMAIN`, ...).
    pub rcodes: Vec<(String, u64)>,
    /// TCP only: connections dnsperf had to open again.
    pub reconnections: Option<u64>,
    /// The load average line `scripts/dnsperf.sh` writes before the run, if any.
    pub load: Option<String>,
}

impl Dnsperf {
    /// Reads dnsperf's text; `None` unless it has the statistics of a finished run (the
    /// queries sent, completed and lost, and the queries per second).
    pub fn parse(text: &str) -> Option<Dnsperf> {
        let mut out = Dnsperf::default();
        let (mut sent, mut completed, mut lost, mut qps) = (None, None, None, None);
        let mut latency_seen = false;
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("load before:") {
                out.load = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("[Status] Command line:") {
                out.command = rest.trim().to_owned();
            } else if let Some(rest) = line.strip_prefix("Queries sent:") {
                sent = first_number(rest);
            } else if let Some(rest) = line.strip_prefix("Queries completed:") {
                completed = first_number(rest);
            } else if let Some(rest) = line.strip_prefix("Queries lost:") {
                lost = first_number(rest);
            } else if let Some(rest) = line.strip_prefix("Queries per second:") {
                qps = rest.trim().parse().ok();
            } else if let Some(rest) = line.strip_prefix("Run time (s):") {
                out.run_time_s = rest.trim().parse().unwrap_or(0.0);
            } else if let Some(rest) = line.strip_prefix("Reconnections:") {
                out.reconnections = first_number(rest);
            } else if let Some(rest) = line.strip_prefix("Average Latency (s):") {
                // TCP runs print a second one, for connections: the first is per query.
                if !latency_seen {
                    latency_seen = true;
                    let secs: f64 = rest
                        .split_whitespace()
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0.0);
                    out.avg_latency_us = secs * 1e6;
                }
            } else if let Some(rest) = line.strip_prefix("Response codes:") {
                // `NOERROR 406511 (100.00%), NXDOMAIN 3 (0.00%)`
                out.rcodes = rest
                    .split(',')
                    .filter_map(|part| {
                        let mut words = part.split_whitespace();
                        let name = words.next()?.to_owned();
                        let n = words.next()?.parse().ok()?;
                        Some((name, n))
                    })
                    .collect();
            }
        }
        out.sent = sent?;
        out.completed = completed?;
        out.lost = lost?;
        out.qps = qps?;
        Some(out)
    }

    /// Replies with response code `name`.
    pub fn rcode(&self, name: &str) -> u64 {
        self.rcodes
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c)
            .sum()
    }

    /// `NOERROR 406,511`, the codes joined by commas.
    pub fn rcodes_text(&self) -> String {
        if self.rcodes.is_empty() {
            return "none".into();
        }
        self.rcodes
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The first whole number in `text` (`406511 (100.00%)` gives 406511).
fn first_number(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP_RUN: &str = "load before: 36.07 36.52 22.88
DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -m tcp -s 127.0.0.1 -p 15371 -d /tmp/q-nsd -c 8 -q 100 -l 10
[Status] Sending queries (to 127.0.0.1:15371)
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         406511
  Queries completed:    406500 (100.00%)
  Queries lost:         11 (0.00%)

  Response codes:       NOERROR 406000 (99.88%), NXDOMAIN 500 (0.12%)
  Average packet size:  request 33, response 83
  Run time (s):         10.106938
  Queries per second:   40220.984832

  Average Latency (s):  0.002203 (min 0.000030, max 0.150295)
  Latency StdDev (s):   0.006311

Connection Statistics:

  Reconnections:        2

  Average Latency (s):  0.005417 (min 0.004388, max 0.005697)
  Latency StdDev (s):   0.000421
";

    #[test]
    fn reads_a_tcp_run() {
        let d = Dnsperf::parse(TCP_RUN).unwrap();
        assert_eq!(
            d.command,
            "dnsperf -m tcp -s 127.0.0.1 -p 15371 -d /tmp/q-nsd -c 8 -q 100 -l 10"
        );
        assert_eq!((d.sent, d.completed, d.lost), (406511, 406500, 11));
        assert_eq!(d.qps, 40220.984832);
        assert_eq!(d.run_time_s, 10.106938);
        assert!((d.avg_latency_us - 2203.0).abs() < 1e-6);
        assert_eq!(d.rcode("NOERROR"), 406000);
        assert_eq!(d.rcode("NXDOMAIN"), 500);
        assert_eq!(d.rcode("SERVFAIL"), 0);
        assert_eq!(d.reconnections, Some(2));
        assert_eq!(d.load.as_deref(), Some("36.07 36.52 22.88"));
        assert_eq!(d.rcodes_text(), "NOERROR 406000, NXDOMAIN 500");
    }

    #[test]
    fn an_unfinished_run_is_none() {
        assert_eq!(Dnsperf::parse(""), None);
        let cut = TCP_RUN.split("  Queries per second").next().unwrap();
        assert_eq!(Dnsperf::parse(cut), None);
        assert_eq!(
            Dnsperf::parse("dnsperf: unable to open socket\n").map(|d| d.qps),
            None
        );
    }
}
