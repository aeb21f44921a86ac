# dnsd's everyday commands; `just` lists them.

# The release binary the run recipes start (follows CARGO_TARGET_DIR if set).
dnsd := env_var_or_default("CARGO_TARGET_DIR", "target") / "release/dnsd"

# Where the local server writes ID.log and mapping.log (`just logs=/tmp/dns run-all`).
logs := "."

# Lists the recipes.
default:
    @{{just_executable()}} --list

# On the original's ports (local 5352, root 5353, com 5678, org 5679, gov 5680). Ctrl-C
# stops them all; so does any one of them stopping (e.g. a port already in use).
[doc("The whole hierarchy as five separate processes, zones from zones/")]
run-all:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release --quiet
    pids=()
    stop() {
        trap - EXIT INT TERM
        [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
        wait
    }
    trap stop EXIT
    trap 'exit 0' INT TERM
    "{{dnsd}}" tld com zones/com.dat & pids+=($!)
    "{{dnsd}}" tld org zones/org.dat & pids+=($!)
    "{{dnsd}}" tld gov zones/gov.dat & pids+=($!)
    "{{dnsd}}" root zones/root.dat & pids+=($!)
    "{{dnsd}}" local --cache zones/default.dat --log-dir "{{logs}}" & pids+=($!)
    echo "dnsd: five servers started (pids ${pids[*]}); try: {{dnsd}} client alice" >&2
    wait -n

# Runs every test.
test:
    cargo test

# Builds the integration tests once, then runs ROUNDS rounds of COPIES copies of them at
# once beside HOGS busy loops; prints how many runs failed per round, then the total and
# which tests failed, and fails if any run did (scripts/stress-test.sh).
[doc("Stress: the integration tests, several copies at once under load")]
stress-test rounds="10" copies="4" hogs="2":
    bash scripts/stress-test.sh {{rounds}} {{copies}} {{hogs}}

# The whole hierarchy in one process on the default ports.
up:
    cargo run --release -- up

# Starts dnsd hierarchies on free ports, runs the standard workloads with `dnsd bench
# --json` (1 and 8 connections, with the --ceiling server), misses against a chain of
# three relay processes and hits against one (examples/relay.rs), each with dnsd bench
# and examples/loadgen.rs (ONLY=chain runs only that), measures zone loading and idle
# clients, runs dnsperf against dnsd, Unbound and NSD over UDP and TCP
# (scripts/dnsperf.sh; DNSPERF=0 skips it), and writes BENCHMARKS.md from the results
# with `dnsd bench report` (about 6 minutes; needs bash and cargo, and dnsperf, unbound
# and nsd for the DNS table). ORIGINAL=DIR also measures the original
# Python programs in DIR (e.g. ../shared/seed) on their fixed ports; KEEP=1 keeps the
# raw results.
[doc("Benchmarks: the standard workloads and dnsperf beside Unbound and NSD, written to BENCHMARKS.md")]
bench:
    bash scripts/bench.sh

# Where a miss's time goes: the three-relay chain, R and I misses in alternating runs of
# examples/loadgen.rs, with each server's CPU per query and, with perf, the scheduler's
# wake-ups, migrations and IPIs per query (scripts/miss-profile.sh; PIN=CPU pins all).
[doc("Profile: misses against the relay chain, CPU and scheduler counts per query")]
miss-profile connections="1" seconds="3" rounds="2":
    bash scripts/miss-profile.sh {{connections}} {{seconds}} {{rounds}}

# About a minute of a few hundred clients (R and I, hits and misses, invalid lines) while
# the root and TLD servers are killed and restarted; prints the counts and fails on any
# unanswered, malformed or wrong reply, or a reply missing from the logs.
[doc("Soak: clients under chaos for ~60 s; fails if anything is lost")]
soak seconds="60" clients="300":
    cargo build --release --quiet
    cargo run --release --quiet --example soak -- --dnsd "{{dnsd}}" --seconds {{seconds}} --clients {{clients}}

# Two dnsd binaries side by side in one run: hits and misses at 8 connections,
# alternating rounds, medians and B/A ratios (`just compare /tmp/dnsd-before target/release/dnsd`).
compare A B ROUNDS="5" SECS="3":
    scripts/compare.sh "{{A}}" "{{B}}" {{ROUNDS}} {{SECS}}

# The import graph of src/, one line per module, and whether it has a cycle (exit 1 if so).
imports:
    scripts/imports.sh

# Misses in parallel (scripts/misses.sh; also part of `just bench`): DNS misses over UDP,
# a dead TLD under 50 q/s of misses for it, and dnsd local against Unbound's iterator
# (1 and 2 threads) through dnsd's root and com on port 53 in a network namespace (root
# needed for that part). `just misses /tmp/dnsd-before` measures another build beside.
misses *BEFORE:
    cargo build --release --quiet
    scripts/misses.sh "{{dnsd}}" {{BEFORE}}

# A month of logs in minutes: unique names and unique client ids at full speed, logrotate
# every 5 s; checks that the log directory stays within its documented bound and holds
# no torn record (scripts/soak-logs.sh; needs logrotate).
[doc("Soak the logs: floods and rotations, then the disk bound checked")]
soak-logs seconds="120":
    bash scripts/soak-logs.sh {{seconds}}
