#!/usr/bin/env bash
# `just bench`: starts dnsd hierarchies on free ports, runs the standard workloads with
# `dnsd bench` (each with 1 and with 8 connections), measures misses against a chain of
# three relay processes and hits against one (examples/relay.rs), with `dnsd bench` and
# with an outside generator (examples/loadgen.rs), measures zone loading and idle
# connections, optionally measures the original Python programs (ORIGINAL=DIR), compares
# dnsd with Unbound and NSD under Debian's dnsperf over UDP and TCP (scripts/dnsperf.sh),
# and writes BENCHMARKS.md with `dnsd bench report` (each run is summed up on stderr with
# `dnsd bench show`). Needs bash and the dnsd it builds; the dnsperf comparison also
# needs dnsperf, unbound and nsd (Debian packages), and is skipped, saying so, without.
#
# Environment:
#   ORIGINAL=DIR      also measure the original programs in DIR (com.py, root.py, ... and
#                     their .dat files) on their fixed ports 5352, 5353, 5678-5680
#   DURATION=SECS     length of each dnsd run (default 5)
#   RES_SECS=SECS     length of each resolution run (default 0.6)
#   ROUNDS=N          interleaved rounds of the resolution runs (default 9)
#   ORIG_SLOW_SECS=S  length of each run against the original's 100,000-name zone (3)
#   OUT=FILE          where to write the report (default BENCHMARKS.md)
#   KEEP=1            keep the temporary directory (zones, logs, raw JSON results)
#   DNSPERF=0         skip the dnsperf comparison (it needs dnsperf, unbound and nsd)
#   DNSPERF_SECS=S    length of each dnsperf run (default DURATION)
#   DNSPERF_ROUNDS=N  rounds of dnsperf runs, servers in turn (default 3)
#   ROUNDS_CHAIN=N    alternating rounds of the relay section (default 3): each round
#                     measures the relay chain, dnsd's R and I misses, the one-relay
#                     ceiling and dnsd's hits, each with dnsd bench and with loadgen
#   CHAIN_SECS=S      length of each run of the relay section (default 3)
#   ONLY=chain        run only the relay section (the main hierarchy and the relays), to
#                     try it quickly; the report shows the other sections as not measured
#   MISSES=0          skip the misses section (scripts/misses.sh: DNS misses over UDP, a
#                     dead TLD under load, dnsd local beside Unbound in a namespace)
#   BEFORE=BIN        another dnsd build that the misses section measures beside this
#                     one, in alternating rounds (e.g. main's, built into /tmp), or
#   BEFORE_REF=REF    the commit to build it from (`git archive REF`, built once into
#                     ${TMPDIR:-/tmp}/dnsd-before-REF, then reused)
#   MISSES_SECS=S, MISSES_ROUNDS=N   the misses section's runs (default 3 s, 3 rounds)
#   WEB=0             skip the web view's section (scripts/web-bench.sh: hits and misses
#                     at 8 connections with and without the page open, dropped events)
#   WEB_SECS=S, WEB_ROUNDS=N   its runs (default 3 s, 3 rounds)
#   BIGZONE=0         skip the million-record master file section (scripts/bigzone.sh:
#                     its load beside nsd-checkzone, its lookups beside a small zone's)
#
# scripts/bench_notes.md, if present, is copied into the report under "Notes": the place
# for what the figures and the profiles show, which a re-run keeps.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DURATION=${DURATION:-5}
RES_SECS=${RES_SECS:-0.6}
ROUNDS=${ROUNDS:-9}
ORIG_SLOW_SECS=${ORIG_SLOW_SECS:-3}
OUT=${OUT:-BENCHMARKS.md}
ORIGINAL=${ORIGINAL:-}
ROUNDS_CHAIN=${ROUNDS_CHAIN:-3}
CHAIN_SECS=${CHAIN_SECS:-3}
ONLY=${ONLY:-}
case "$OUT" in /*) ;; *) OUT="$REPO/$OUT" ;; esac

log() { printf '%s\n' "$*" >&2; }
die() {
  log "bench.sh: $*"
  exit 1
}

case "$ONLY" in "" | chain) ;; *) die "ONLY=$ONLY: the only section that runs alone is ONLY=chain" ;; esac
# dnsd, and the relay and the outside load generator of the relay section.
cargo build --release --quiet --bins --example relay --example loadgen
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/dnsd
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
[ -x "$BIN" ] || die "no binary at $BIN"
EXAMPLES=$(dirname "$BIN")/examples
RELAY=$EXAMPLES/relay
LOADGEN=$EXAMPLES/loadgen
[ -x "$RELAY" ] && [ -x "$LOADGEN" ] || die "no relay or loadgen in $EXAMPLES"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnsd-bench.XXXXXX")
RESULTS=$WORK/results
mkdir -p "$RESULTS"
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  if [ ${#PIDS[@]} -gt 0 ]; then
    kill "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 1,000 idle clients and 8-connection runs need more descriptors than some defaults.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 8192 2>/dev/null || true
START=$SECONDS
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- helpers -------------------------------------------------------------------------

# Waits until FILE holds a line with `listening on ADDR` (or PID exits, or SECS pass)
# and prints ADDR.
wait_listening() {
  local file=$1 pid=$2 secs=${3:-20}
  local deadline=$((SECONDS + secs)) addr
  while [ $SECONDS -le $deadline ]; do
    addr=$(grep -m1 -o 'listening on [0-9.:]*' "$file" 2>/dev/null | awk '{print $3}') || true
    if [ -n "$addr" ]; then
      printf '%s\n' "$addr"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  log "bench.sh: no 'listening on' from pid $pid within ${secs}s; its stderr:"
  tail -5 "$file" >&2 || true
  return 1
}

# start_program PROGRAM NAME ARGS...: runs `PROGRAM ARGS` in the background (it must
# listen on a free port and say `listening on ADDR` on stderr), registers it for cleanup
# and sets ADDR to the address it listens on and PID to its process id.
start_program() {
  local program=$1 name=$2
  shift 2
  "$program" "$@" 2>"$WORK/$name.err" >/dev/null &
  PID=$!
  PIDS+=("$PID")
  ADDR=$(wait_listening "$WORK/$name.err" "$PID") || die "$name did not start"
}

# start NAME ARGS...: runs `dnsd ARGS` (with --port 0 among them), as start_program.
start() { start_program "$BIN" "$@"; }

# start_relay NAME ARGS...: runs `relay ARGS` (examples/relay.rs), as start_program.
start_relay() { start_program "$RELAY" "$@"; }

port_of() { printf '%s\n' "${1##*:}"; }

# A hierarchy: com (zone $2), optionally gov and org, root, and local. Sets LOCAL.
# hierarchy NAME COMZONE [LOCAL-ARGS...]
hierarchy() {
  local name=$1 zone=$2
  shift 2
  local table=$WORK/$name-root.dat
  start "$name-com" tld com "$zone" --port 0
  printf 'com 127.0.0.1 %s\n' "$(port_of "$ADDR")" >"$table"
  if [ "$name" = main ]; then
    start "$name-gov" tld gov zones/gov.dat --port 0
    printf 'gov 127.0.0.1 %s\n' "$(port_of "$ADDR")" >>"$table"
    start "$name-org" tld org zones/org.dat --port 0
    printf 'org 127.0.0.1 %s\n' "$(port_of "$ADDR")" >>"$table"
  fi
  start "$name-root" root "$table" --port 0
  local root=$ADDR
  mkdir -p "$WORK/logs-$name"
  start "$name-local" local --cache zones/default.dat --root "$root" --port 0 \
    --log-dir "$WORK/logs-$name" "$@"
  LOCAL=$ADDR
}

# run KEY ARGS...: one `dnsd bench --json ARGS`, saved as $RESULTS/KEY.json, summed up
# on stderr by `dnsd bench show`.
run() {
  local key=$1
  shift
  if ! "$BIN" bench --json "$@" >"$RESULTS/$key.json" 2>"$RESULTS/$key.err"; then
    log "  $key: dnsd bench failed: $(tail -1 "$RESULTS/$key.err")"
  fi
  "$BIN" bench show "$RESULTS/$key.json" >&2 || true
}

# run_loadgen KEY HOST:PORT ARGS...: one `loadgen` run (examples/loadgen.rs), its JSON
# line saved as $RESULTS/KEY.json and repeated on stderr.
run_loadgen() {
  local key=$1
  shift
  if ! "$LOADGEN" "$@" >"$RESULTS/$key.json" 2>"$RESULTS/$key.err"; then
    log "  $key: loadgen failed: $(tail -1 "$RESULTS/$key.err")"
  fi
  log "  $key $(cat "$RESULTS/$key.json")"
}

# The number of the first query of the next `dnsd bench` run of the relay section: each
# run asks names of its own (`www.nx{n}.com`), far from loadgen's (below 10^10).
NEXT_FIRST=100000000000
take_first() {
  FIRST=$NEXT_FIRST
  NEXT_FIRST=$((NEXT_FIRST + 1000000000))
}

# Peak and current RSS of a process, in kB.
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# --- data ------------------------------------------------------------------------------

if [ -z "$ONLY" ]; then
  log "bench.sh: zones and names in $WORK"
  ZONES=$WORK/zones
  mkdir -p "$ZONES"
  for size in 1000 100000 1000000; do
    bash scripts/genzone.sh zone "$size" dat >"$ZONES/com-$size.dat"
    # Enough names for a run at any rate this machine reaches, spread over the zone.
    bash scripts/genzone.sh names "$size" 400000 >"$ZONES/names-$size.txt"
  done
  bash scripts/genzone.sh zone 1000000 toml >"$ZONES/com-1000000.toml"

  # --- zone load -------------------------------------------------------------------------

  log "bench.sh: loading the 1,000,000-name zone"
  for form in dat toml; do
    t0=$(date +%s.%N)
    "$BIN" tld com "$ZONES/com-1000000.$form" --port 0 2>"$WORK/load-$form.err" >/dev/null &
    pid=$!
    PIDS+=("$pid")
    if wait_listening "$WORK/load-$form.err" "$pid" 120 >/dev/null; then
      t1=$(date +%s.%N)
      kb=$(hwm_kb "$pid")
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
      printf '{"secs": %s, "peak_rss_kb": %s}\n' "$secs" "$kb" >"$RESULTS/zoneload-$form.json"
      log "  $form: $(awk -v s="$secs" -v kb="$kb" 'BEGIN { printf "%.2f s, peak RSS %.0f MB", s, kb / 1024 }')"
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
fi

# --- dnsd ------------------------------------------------------------------------------

log "bench.sh: dnsd hierarchies"
hierarchy main zones/com.dat
MAIN=$LOCAL

if [ -z "$ONLY" ]; then
  log "bench.sh: dnsd workloads, ${DURATION}s each, with the ceiling"
  for c in 1 8; do
    run "dnsd-hits-$c" --server "$MAIN" --connections "$c" --duration "$DURATION" \
      --pattern www.example.com --ceiling
    run "dnsd-rmiss-$c" --server "$MAIN" --connections "$c" --duration "$DURATION" \
      --pattern 'www.nx{n}.com' --mode R --ceiling
    run "dnsd-imiss-$c" --server "$MAIN" --connections "$c" --duration "$DURATION" \
      --pattern 'www.nx{n}.com' --mode I --ceiling
  done
fi

# --- the relay chain and the one-relay ceiling ------------------------------------------

# A miss crosses three servers (local, root, com): its yardstick is a chain of three
# do-nothing relay processes (examples/relay.rs: thread per connection, each line passed
# on, the last one answering `0X00, relay, 127.0.0.1`); a hit's is one relay that
# answers at once. Both are separate processes, like the hierarchy, and nothing of dnsd.
# Each is measured with `dnsd bench` and with loadgen (examples/loadgen.rs, an outside
# closed-loop generator), in alternating rounds beside dnsd with the same workload: the
# report takes the median over rounds of the ratio within a round.
log "bench.sh: relays: a chain of three, a hub of three and a one-relay ceiling"
start_relay relay-last
start_relay relay-middle --to "$ADDR"
start_relay relay-first --to "$ADDR" --greet
CHAIN=$ADDR
start_relay relay-ceiling --greet
RELAY_CEILING=$ADDR
# The shape of a miss in mode I: a hub that asks one relay, then another (the local
# server asks the root, then the TLD server). Not the issue's yardstick; shown beside it.
start_relay hub-first
HUB_FIRST=$ADDR
start_relay hub-second
start_relay hub --to "$HUB_FIRST" --then "$ADDR" --greet
HUB=$ADDR
RELAY_PIDS=("${PIDS[@]: -7}")

# relay_pair KEY ROUND SERVER CONNS PATTERN MODE: one run with each generator, saved as
# relay-KEY-bench-CONNS-rROUND.json and relay-KEY-loadgen-CONNS-rROUND.json.
relay_pair() {
  local key=$1 round=$2 server=$3 c=$4 pattern=$5 mode=$6
  take_first
  run "relay-$key-bench-$c-r$round" --server "$server" --connections "$c" \
    --duration "$CHAIN_SECS" --pattern "$pattern" --mode "$mode" --first "$FIRST"
  run_loadgen "relay-$key-loadgen-$c-r$round" "$server" --connections "$c" \
    --seconds "$CHAIN_SECS" --pattern "$pattern" --mode "$mode"
}

log "bench.sh: misses against the relay chain, hits against one relay," \
  "$ROUNDS_CHAIN rounds of ${CHAIN_SECS}s runs"
for c in 1 8; do
  for round in $(seq "$ROUNDS_CHAIN"); do
    relay_pair chain "$round" "$CHAIN" "$c" 'www.nx{n}.com' R
    relay_pair hub "$round" "$HUB" "$c" 'www.nx{n}.com' R
    relay_pair R "$round" "$MAIN" "$c" 'www.nx{n}.com' R
    relay_pair I "$round" "$MAIN" "$c" 'www.nx{n}.com' I
    relay_pair ceiling "$round" "$RELAY_CEILING" "$c" www.example.com R
    relay_pair hits "$round" "$MAIN" "$c" www.example.com R
  done
done
kill "${RELAY_PIDS[@]}" 2>/dev/null || true
wait "${RELAY_PIDS[@]}" 2>/dev/null || true

# --- dnsd: resolutions by zone size -----------------------------------------------------

if [ -z "$ONLY" ]; then
  # Resolutions: every query must miss at the local server and be found at the TLD, for
  # the whole run, whatever the zone size. With --cache-size 1 the local server keeps no
  # learned mapping, so names can be cycled; all else is at its defaults.
  for size in 1000 100000 1000000; do
    hierarchy "z$size" "$ZONES/com-$size.dat" --cache-size 1
    eval "Z$size=\$LOCAL"
  done
  # The three zone sizes take turns, in short rounds (each starting with the next size),
  # so that a change in the machine's other load hits them alike; the report compares
  # sizes within each round and takes the median.
  log "bench.sh: dnsd resolutions by zone size, $ROUNDS rounds of ${RES_SECS}s each"
  sizes=(1000 100000 1000000)
  for mode in R I; do
    for c in 1 8; do
      for round in $(seq "$ROUNDS"); do
        for i in 0 1 2; do
          size=${sizes[$(((round + i) % 3))]}
          eval "server=\$Z$size"
          run "dnsd-res$mode-$size-$c-r$round" --server "$server" --connections "$c" \
            --duration "$RES_SECS" --names "$ZONES/names-$size.txt" --mode "$mode"
        done
      done
    done
  done
fi

# --- idle connections ------------------------------------------------------------------

if [ -z "$ONLY" ]; then
  log "bench.sh: 1,000 idle clients"
  mkdir -p "$WORK/logs-idle"
  start idle-local local --cache zones/default.dat --root "127.0.0.1:9" --port 0 \
    --log-dir "$WORK/logs-idle"
  IDLE_PID=$PID
  before=$(rss_kb "$IDLE_PID")
  # hold_idle HOST:PORT N: opens N client sessions (id line, greeting), prints `ready N`
  # and holds them open until killed (the sockets pass to `sleep`, which keeps the pid).
  hold_idle() {
    local host=${1%:*} port=${1##*:} n=$2 i fd greeting
    for ((i = 0; i < n; i++)); do
      exec {fd}<>"/dev/tcp/$host/$port" || { echo "cannot connect after $i connections" >&2; exit 1; }
      printf 'idle%d\n' "$i" >&"$fd"
      IFS= read -r -t 10 greeting <&"$fd" || { echo "no greeting after $i connections" >&2; exit 1; }
    done
    echo "ready $n"
    exec sleep infinity
  }
  (hold_idle "$ADDR" 1000) >"$WORK/idle.out" 2>"$WORK/idle.err" &
  HOLDER=$!
  PIDS+=("$HOLDER")
  deadline=$((SECONDS + 60))
  while ! grep -q ready "$WORK/idle.out" && kill -0 "$HOLDER" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    sleep 0.05
  done
  if grep -q ready "$WORK/idle.out"; then
    after=$(rss_kb "$IDLE_PID")
    printf '{"before_kb": %s, "after_kb": %s}\n' "$before" "$after" >"$RESULTS/idle.json"
    log "  RSS $((before / 1024)) MB before, $((after / 1024)) MB with 1,000 idle clients"
  else
    log "  the idle clients did not all connect: $(tail -1 "$WORK/idle.err")"
  fi
  kill "$HOLDER" "$IDLE_PID" 2>/dev/null || true
fi

# --- the original ----------------------------------------------------------------------

ORIG_PORTS="5678 5679 5680 5353 5352"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until every port in $ORIG_PORTS accepts connections (the probe is a connection
# that each server handles and drops).
orig_listening() {
  local deadline=$((SECONDS + 15)) port
  for port in $ORIG_PORTS; do
    until port_busy "$port"; do
      [ $SECONDS -lt $deadline ] || return 1
      sleep 0.05
    done
  done
}

run_original() {
  local dir=$WORK/original busy=""
  for port in $ORIG_PORTS; do
    if port_busy "$port"; then busy="$busy $port"; fi
  done
  if [ -n "$busy" ]; then
    log "bench.sh: ports busy:$busy; not measuring the original"
    echo "ports busy:$busy" >"$RESULTS/original-skipped.txt"
    return
  fi
  mkdir -p "$dir"
  cp "$ORIGINAL"/*.py "$ORIGINAL"/*.dat "$dir"/
  # The original's root table names the fixed ports already; com.py reads its zone
  # file again for every query, so replacing com.dat later swaps its zone in place.
  local prog
  for prog in "com.py com.dat" "org.py org.dat" "gov.py gov.dat" "root.py root.dat" \
    "local.py default.dat"; do
    # shellcheck disable=SC2086
    (cd "$dir" && exec env PYENV_VERSION=2.7.18 python2 -u $prog >"${prog%%.*}.out" 2>&1) &
    PIDS+=("$!")
  done
  if ! orig_listening; then
    log "bench.sh: the original did not start; see $dir/*.out"
    echo "did not start" >"$RESULTS/original-skipped.txt"
    return
  fi
  log "bench.sh: the original (--legacy), ${DURATION}s each"
  for c in 1 8; do
    run "orig-hits-$c" --legacy --connections "$c" --duration "$DURATION" \
      --pattern www.example.com
    run "orig-rmiss-$c" --legacy --connections "$c" --duration "$DURATION" \
      --pattern 'www.nx{n}.com' --mode R
    run "orig-imiss-$c" --legacy --connections "$c" --duration "$DURATION" \
      --pattern 'www.nx{n}.com' --mode I
  done
  log "bench.sh: the original with the 100,000-name com zone, ${ORIG_SLOW_SECS}s each"
  cp "$ZONES/com-100000.dat" "$dir/com.tmp" && mv "$dir/com.tmp" "$dir/com.dat"
  # The original's cache keeps every resolved name: each run takes its own names.
  local first=0
  for mode in R I; do
    for c in 1 8; do
      run "orig-res$mode-100000-$c" --legacy --connections "$c" --duration "$ORIG_SLOW_SECS" \
        --names "$ZONES/names-100000.txt" --first "$first" --mode "$mode"
      first=$((first + 20000))
    done
  done
}

if [ -n "$ORIGINAL" ] && [ -z "$ONLY" ]; then
  [ -f "$ORIGINAL/local.py" ] || die "ORIGINAL=$ORIGINAL holds no local.py"
  run_original
fi

# --- DNS: dnsperf beside Unbound and NSD ------------------------------------------------

if [ -n "$ONLY" ]; then
  echo "ONLY=$ONLY was given" >"$RESULTS/dnsperf-skipped.txt"
elif [ "${DNSPERF:-1}" = 1 ]; then
  log "bench.sh: dnsperf against dnsd, Unbound and NSD"
  DNSPERF_SECS=${DNSPERF_SECS:-$DURATION} bash scripts/dnsperf.sh "$BIN" "$RESULTS" ||
    log "bench.sh: the dnsperf comparison failed"
else
  echo "DNSPERF=0 was given" >"$RESULTS/dnsperf-skipped.txt"
fi

# --- Misses in parallel (issue 15): before and after, a dead TLD, beside Unbound --------

if [ -n "$ONLY" ] || [ "${MISSES:-1}" != 1 ]; then
  log "bench.sh: skipping the misses section"
else
  before=${BEFORE:-}
  if [ -z "$before" ] && [ -n "${BEFORE_REF:-}" ]; then
    rev=$(git rev-parse --short "$BEFORE_REF") || die "BEFORE_REF=$BEFORE_REF is no commit"
    dir=${TMPDIR:-/tmp}/dnsd-before-$rev
    if [ ! -x "$dir/target/release/dnsd" ]; then
      log "bench.sh: building $BEFORE_REF ($rev) into $dir"
      mkdir -p "$dir/src"
      git archive "$rev" | tar -x -C "$dir/src"
      (cd "$dir/src" && CARGO_TARGET_DIR="$dir/target" cargo build --release --quiet --bin dnsd)
    fi
    before=$dir/target/release/dnsd
    export MISSES_BEFORE_NOTE="built from $BEFORE_REF, $rev"
  fi
  log "bench.sh: misses in parallel${before:+, beside $before}"
  bash scripts/misses.sh "$BIN" "$before" "$RESULTS" || log "bench.sh: the misses section failed"
fi

# --- The web view's cost (issue 18): with and without a page open ---------------------

if [ -n "$ONLY" ] || [ "${WEB:-1}" != 1 ]; then
  log "bench.sh: skipping the web view's section"
else
  log "bench.sh: the web view's cost"
  bash scripts/web-bench.sh "$BIN" "$RESULTS" || log "bench.sh: the web view's section failed"
fi

# --- A million-record master file (issue 16): load and lookups ------------------------

if [ -n "$ONLY" ] || [ "${BIGZONE:-1}" != 1 ]; then
  log "bench.sh: skipping the million-record zone section"
else
  log "bench.sh: a million-record master file"
  bash scripts/bigzone.sh "$BIN" "$RESULTS" || log "bench.sh: the million-record zone section failed"
fi

# --- the report ------------------------------------------------------------------------

[ -z "$ONLY" ] || echo "$ONLY" >"$RESULTS/only.txt"
log "bench.sh: writing $OUT ($((SECONDS - START)) s so far)"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes in src/)"
fi
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
"$BIN" bench report "$RESULTS" "$OUT" \
  --machine "$(nproc) cores, ${cpu:-unknown CPU}, Linux $(uname -r)" \
  --load "$LOAD_BEFORE at the start, $load_after at the end" --res-secs "$RES_SECS" --rounds "$ROUNDS" \
  --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --commit "$commit" --duration "$DURATION" --orig-slow-secs "$ORIG_SLOW_SECS" \
  --original "${ORIGINAL:-}" --elapsed "$((SECONDS - START))" \
  --notes scripts/bench_notes.md
# The misses, web view and million-record zone sections go before the notes (or last,
# if there are none).
for part in misses web bigzone; do
  [ -f "$RESULTS/$part.md" ] || continue
  awk -v section="$RESULTS/$part.md" '
    /^## Notes/ && !done { while ((getline line < section) > 0) print line; print ""; done = 1 }
    { print }
    END { if (!done) { print ""; while ((getline line < section) > 0) print line } }
  ' "$OUT" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
done
log "bench.sh: done in $((SECONDS - START)) s"
