#!/usr/bin/env python3
"""Writes BENCHMARKS.md from the JSON results scripts/bench.sh collected.

Usage: bench_report.py RESULTS_DIR OUT --machine M --date D --commit C --duration S
       --orig-slow-secs S --original DIR --elapsed S
"""

import argparse
import glob
import json
import os

p = argparse.ArgumentParser()
p.add_argument("results")
p.add_argument("out")
p.add_argument("--machine", default="unknown")
p.add_argument("--date", default="unknown")
p.add_argument("--commit", default="unknown")
p.add_argument("--duration", default="5")
p.add_argument("--orig-slow-secs", default="3")
p.add_argument("--original", default="")
p.add_argument("--elapsed", default="?")
p.add_argument("--load", default="unknown")
p.add_argument("--res-secs", default="0.6")
p.add_argument("--rounds", default="9")
p.add_argument("--notes", default="", help="a Markdown file appended under 'Notes'")
args = p.parse_args()


def load_one(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load(key):
    """The result KEY.json, or the median (by queries a second) of KEY-r*.json."""
    one = load_one(os.path.join(args.results, key + ".json"))
    if one:
        return one
    rounds = sorted(glob.glob(os.path.join(args.results, glob.escape(key) + "-r*.json")))
    runs = [r for r in map(load_one, rounds) if r]
    if not runs:
        return None
    runs.sort(key=lambda r: r["qps"])
    return runs[len(runs) // 2]


def rounds(key):
    """The rounds of KEY (KEY-rN.json), by round number."""
    found = {}
    for path in glob.glob(os.path.join(args.results, glob.escape(key) + "-r*.json")):
        r = load_one(path)
        if r:
            found[path.rsplit("-r", 1)[1][:-5]] = r
    return found


def paired(key, reference):
    """The median over rounds of KEY's queries a second over REFERENCE's in that round
    (or, without rounds, the plain ratio)."""
    a, b = rounds(key), rounds(reference)
    ratios = sorted(a[n]["qps"] / b[n]["qps"] for n in a if n in b and b[n]["qps"])
    if not ratios:
        return ratio(load(key), load(reference))
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2


def qps(r):
    return f"{r['qps']:,.0f}" if r else "–"


def lat(r):
    return f"{r['p50_us']} / {r['p99_us']}" if r else "–"


def codes(r):
    if not r:
        return "–"
    text = ", ".join(f"{k} {v:,}" for k, v in r["codes"].items() if v)
    if r["errors"]:
        text += f"; errors {r['errors']:,}"
    return text or "none"


def ratio(a, b):
    if not a or not b or not b["qps"]:
        return None
    return a["qps"] / b["qps"]


def pct(x):
    return "–" if x is None else f"{100 * x:.0f}%"


def times(x):
    return "–" if x is None else f"{x:.1f}×"


skipped = None
try:
    with open(os.path.join(args.results, "original-skipped.txt")) as f:
        skipped = f.read().strip()
except OSError:
    pass
if not args.original:
    orig_note = "not measured (ORIGINAL was not set)"
elif skipped:
    orig_note = f"not measured ({skipped})"
else:
    orig_note = f"measured from `{args.original}`"

out = []
w = out.append
w("# Benchmarks")
w("")
w(
    "Written by `just bench` (`scripts/bench.sh`); re-run it to refresh this file. "
    "Every figure below comes from that one run."
)
w("")
w(f"- Machine: {args.machine}")
w(f"- Date: {args.date}")
w(f"- dnsd commit: {args.commit}")
w(f"- The original: {orig_note}")
w(f"- Load average (1, 5, 15 min): {args.load}")
w(f"- Whole run: {args.elapsed} s")
w("")
w("## How it is measured")
w("")
w(
    f"`dnsd bench` is a closed loop: each connection is a thread with one query in "
    f"flight, sending the next as soon as the reply is in. Each dnsd run lasts "
    f"{args.duration} s; the load generator runs on the same 2 cores as the servers. "
    f"`--ceiling` measures, right after each run and with the same workload, an "
    f"in-process server that answers every line at once with a fixed reply: the most "
    f"this loopback and this load generator allow. Latencies are per query, in µs "
    f"(p50 / p99)."
)
w("")
w(
    "The dnsd servers run as separate processes (`dnsd tld`, `dnsd root`, `dnsd local`) "
    "on free ports, with their default settings: the local server writes every query "
    "and reply to `ID.log` and learned mappings to `mapping.log`, and all servers log "
    "to stderr (into a file). The original runs under `PYENV_VERSION=2.7.18 python2 -u` "
    "on its fixed ports, its printing going to files, measured with `dnsd bench --legacy` "
    "(no line ends, one message per write, one read per reply)."
)
w("")
w("Workloads:")
w("")
w(
    "- **hits**: `www.example.com`, an entry of the local server's default cache, mode R."
)
w(
    "- **R misses**, **I misses**: `www.nx{n}.com`, a new name that does not exist for "
    "every query (`{n}` is a counter shared by all connections): local server, root and "
    "com server each see every query (three hops)."
)
w(
    "- **resolutions**: names `www.hN.com` of a generated com zone (addresses "
    "`10.a.b.c` derived from N; `scripts/genzone.sh`), asked in an order spread over "
    "the whole zone (a stride of 7919). Each zone size has its own com server, root and "
    "local server; the local server runs with `--cache-size 1` (all else default) so "
    "that every query misses its cache and is resolved by the hierarchy for the whole "
    "run, whatever the zone size. The reference for \"the same workload on the sample "
    "zone\" is a 1,000-name zone made the same way (the sample zone has only 3 names). "
    f"The three sizes take turns, {args.rounds} rounds of {args.res_secs} s each, each "
    "round starting with the next size; the table shows each size's median round, and "
    "the ratios are the median over rounds of the ratio within a round (the machine's "
    "speed drifts more between rounds than within one)."
)
w(
    f"- The original's resolutions use the same names from the 100,000-name zone, each "
    f"run its own (the original caches every answer), {args.orig_slow_secs} s each: its "
    f"`com.py` reads the zone file again for every query, so the file is replaced in "
    f"place, which is the same as restarting it with that zone."
)
w("")

# --- results -------------------------------------------------------------------------

targets = []


def target(name, measured, ok):
    targets.append((name, measured, ok))


w("## Hits and misses (sample zones)")
w("")
w(
    "| workload | conns | dnsd q/s | p50 / p99 µs | ceiling q/s | share of ceiling | "
    "ceiling p99 µs | original q/s | dnsd / original | codes (dnsd) | codes (original) |"
)
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
names = {"hits": "hits", "rmiss": "R misses", "imiss": "I misses"}
for kind in ["hits", "rmiss", "imiss"]:
    for c in [1, 8]:
        d = load(f"dnsd-{kind}-{c}")
        o = load(f"orig-{kind}-{c}")
        ceil = d.get("ceiling") if d else None
        w(
            f"| {names[kind]} | {c} | {qps(d)} | {lat(d)} | {qps(ceil)} | "
            f"{pct(ratio(d, ceil))} | {ceil['p99_us'] if ceil else '–'} | {qps(o)} | "
            f"{times(ratio(d, o))} | {codes(d)} | {codes(o)} |"
        )
w("")

w("## Misses against a chain of three do-nothing servers")
w("")
w(
    "A miss crosses three servers (local, root, TLD). `--ceiling --ceiling-hops 3` measures, "
    "right after dnsd, a chain of three servers that only pass each line on: the most a "
    "chain of thread-per-connection servers allows on this machine before any work is done."
)
w("")
w("| workload | conns | dnsd q/s | three-hop chain q/s | share of the chain | one-server ceiling (from the table above) | chain / one-server ceiling |")
w("|---|---:|---:|---:|---:|---:|---:|")
for mode, kind in [("R", "rmiss"), ("I", "imiss")]:
    d = load(f"dnsd-miss3{mode}-8")
    chain = d.get("ceiling") if d else None
    one = load(f"dnsd-{kind}-8")
    one_ceil = one.get("ceiling") if one else None
    w(
        f"| {mode} misses | 8 | {qps(d)} | {qps(chain)} | {pct(ratio(d, chain))} | "
        f"{qps(one_ceil)} | {pct(ratio(chain, one_ceil))} |"
    )
w("")

w("## Resolutions by zone size")
w("")
w(
    "| mode | conns | 1,000 names q/s (p50 / p99) | 100,000 names | 1,000,000 names | "
    "100k / 1k | 1M / 1k | original, 100,000 names | dnsd / original (100k) |"
)
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode in ["R", "I"]:
    for c in [1, 8]:
        small = load(f"dnsd-res{mode}-1000-{c}")
        mid = load(f"dnsd-res{mode}-100000-{c}")
        big = load(f"dnsd-res{mode}-1000000-{c}")
        o = load(f"orig-res{mode}-100000-{c}")
        cells = [f"{qps(r)} ({lat(r)})" for r in (small, mid, big)]
        ref = f"dnsd-res{mode}-1000-{c}"
        w(
            f"| {mode} | {c} | {' | '.join(cells)} | "
            f"{pct(paired(f'dnsd-res{mode}-100000-{c}', ref))} | "
            f"{pct(paired(f'dnsd-res{mode}-1000000-{c}', ref))} | {qps(o)} | "
            f"{times(ratio(mid, o))} |"
        )
        for size in ["100,000", "1,000,000"]:
            x = paired(f"dnsd-res{mode}-{size.replace(',', '')}-{c}", ref)
            target(
                f"Resolutions {mode}, {c} conn, {size} names: within 10% of 1,000 names",
                pct(x),
                None if x is None else x >= 0.9,
            )
bad = []
for path in sorted(glob.glob(os.path.join(args.results, "dnsd-res*.json"))):
    r = load_one(path)
    if r and (r["errors"] or r["codes"].get("0X01", 0) != r["queries"]):
        bad.append(f"{os.path.basename(path)[:-5]}: {codes(r)}")
w("")
if bad:
    w("Not every resolution was a `0X01`: " + "; ".join(bad))
else:
    w("Every resolution above was answered `0X01`, with no errors.")
o_codes = [
    f"{mode} {c} conn: {codes(load(f'orig-res{mode}-100000-{c}'))}"
    for mode in "RI"
    for c in [1, 8]
    if load(f"orig-res{mode}-100000-{c}")
]
if o_codes:
    w("The original's replies there: " + "; ".join(o_codes) + ".")
w("")

w("## Loading a 1,000,000-name zone")
w("")
w("`dnsd tld com ZONE --port 0`, from start until its `listening on` line; peak RSS is")
w("`VmHWM` from `/proc/PID/status` at that moment.")
w("")
w("| form | time | peak RSS |")
w("|---|---:|---:|")
for form, label in [("dat", "legacy (`NAME ADDR` lines)"), ("toml", "TOML (`[records]`)")]:
    r = load(f"zoneload-{form}")
    if r:
        mb = r["peak_rss_kb"] / 1024
        w(f"| {label} | {r['secs']:.2f} s | {mb:.0f} MB |")
        target(
            f"1M-name zone, {form}: loads in under 2 s",
            f"{r['secs']:.2f} s",
            r["secs"] < 2,
        )
        target(f"1M-name zone, {form}: peak RSS under 300 MB", f"{mb:.0f} MB", mb < 300)
    else:
        w(f"| {label} | – | – |")
        target(f"1M-name zone, {form}: loads", "did not load", False)
w("")

w("## 1,000 idle clients")
w("")
r = load("idle")
if r:
    cost = (r["after_kb"] - r["before_kb"]) / 1024
    w(
        f"A fresh `dnsd local` used {r['before_kb'] / 1024:.1f} MB RSS; with 1,000 client "
        f"sessions open (each sent its id and got the greeting, then stayed silent) it used "
        f"{r['after_kb'] / 1024:.1f} MB: {cost:.1f} MB for the 1,000 connections, "
        f"{cost * 1024 / 1000:.0f} kB each."
    )
    target(
        "1,000 idle clients cost under 150 MB RSS",
        f"{cost:.1f} MB ({r['after_kb'] / 1024:.1f} MB in all)",
        r["after_kb"] / 1024 < 150,
    )
else:
    w("Not measured (the clients could not all connect).")
    target("1,000 idle clients cost under 150 MB RSS", "not measured", None)
w("")

# --- targets -------------------------------------------------------------------------

h1, h8 = load("dnsd-hits-1"), load("dnsd-hits-8")
if h8:
    x = ratio(h8, h8["ceiling"])
    target("Hits, 8 conns: at least 80% of the ceiling", pct(x), x is not None and x >= 0.8)
    x = ratio(h8, load("orig-hits-8"))
    target("Hits, 8 conns: at least 7× the original", times(x), None if x is None else x >= 7)
    cp99 = h8["ceiling"]["p99_us"]
    target(
        "Hits, 8 conns: p99 within 2× the ceiling's p99",
        f"{h8['p99_us']} µs vs {cp99} µs ({h8['p99_us'] / max(cp99, 1):.1f}×)",
        h8["p99_us"] <= 2 * cp99,
    )
if h1:
    x = ratio(h1, h1["ceiling"])
    target("Hits, 1 conn: at least 90% of the ceiling", pct(x), x is not None and x >= 0.9)
for kind, label, factor in [("rmiss", "R misses", 3), ("imiss", "I misses", 6)]:
    r = load(f"dnsd-{kind}-8")
    if r:
        x = ratio(r, r["ceiling"])
        target(f"{label}, 8 conns: at least 25% of the ceiling", pct(x), x is not None and x >= 0.25)
        x = ratio(r, load(f"orig-{kind}-8"))
        target(
            f"{label}, 8 conns: at least {factor}× the original",
            times(x),
            None if x is None else x >= factor,
        )

order = [
    "Hits, 8", "Hits, 1", "R misses", "I misses", "Resolutions", "1M", "1,000 idle",
]
targets.sort(key=lambda t: next((i for i, p in enumerate(order) if t[0].startswith(p)), 99))
met = sum(1 for t in targets if t[2] is True)
missed = [t for t in targets if t[2] is False]
unknown = [t for t in targets if t[2] is None]

head = [
    "## Targets (issue 4)",
    "",
    f"{met} met, {len(missed)} missed, {len(unknown)} not measured.",
    "",
    "| target | measured | |",
    "|---|---|---|",
]
for name, measured, ok in targets:
    mark = {True: "met", False: "**missed**", None: "not measured"}[ok]
    head.append(f"| {name} | {measured} | {mark} |")
head.append("")

# The targets come right after the header, before the method and the tables.
at = out.index("## How it is measured")
out[at:at] = head

if args.notes and os.path.exists(args.notes):
    with open(args.notes) as f:
        w("## Notes")
        w("")
        w(f.read().strip())
        w("")

with open(args.out, "w") as f:
    f.write("\n".join(out) + "\n")
