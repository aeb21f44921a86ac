#!/usr/bin/env bash
# The web view's cost (issue 18), measured; part of `just bench` (scripts/bench.sh), or
# alone. One `dnsd up --any-port` (default settings, its web view on a free loopback
# port); line-protocol hits (www.google.com) and misses (www.w{n}.com, never asked
# before: NXDOMAIN from com) at 8 connections, without anyone watching, with the page
# open in headless Chromium (skipped without chromium), and with `curl -N` reading the
# event stream (what the servers' side costs, without a browser's drawing), in
# alternating rounds, all in one run. The dropped events (the queue was full: a query is
# never slowed to be shown) are read from /api/hierarchy around each run. Each run
# starts from an empty cache (POST /api/flush?all=1).
#
# It writes RESULTS/web.md, a section for BENCHMARKS.md (bench.sh inserts it), and the
# raw results beside it; one line per run goes to stderr.
#
# usage: scripts/web-bench.sh BIN [RESULTS]
# Environment: WEB_SECS (length of each run, default 3), WEB_ROUNDS (alternating rounds,
# default 3). Every process started here is stopped by its pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SECS=${WEB_SECS:-3}
ROUNDS=${WEB_ROUNDS:-3}

log() { printf '%s\n' "$*" >&2; }
die() {
  log "web-bench.sh: $*"
  exit 1
}

BIN=${1:?usage: scripts/web-bench.sh BIN [RESULTS]}
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
[ -x "$BIN" ] || die "no binary at $BIN"
RESULTS=${2:-$(mktemp -d "${TMPDIR:-/tmp}/dnsd-web-results.XXXXXX")}
mkdir -p "$RESULTS"
OUTMD=$RESULTS/web.md
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnsd-web.XXXXXX")
UP=""
WATCHER=""
stop_watcher() {
  if [ -n "$WATCHER" ]; then
    # Chromium runs in a session of its own: its helpers go with it.
    kill -- "-$WATCHER" 2>/dev/null || kill "$WATCHER" 2>/dev/null || true
    wait "$WATCHER" 2>/dev/null || true
    WATCHER=""
  fi
}
cleanup() {
  stop_watcher
  if [ -n "$UP" ]; then
    kill "$UP" 2>/dev/null || true
    wait "$UP" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" up --any-port --log-dir "$WORK" >"$WORK/up.out" 2>"$WORK/up.err" &
UP=$!
for _ in $(seq 100); do
  grep -q '^  web ' "$WORK/up.out" 2>/dev/null && break
  sleep 0.1
done
LOCAL=$(awk '/^  local /{print $2}' "$WORK/up.out")
WEB=$(awk '/^  web /{print $2}' "$WORK/up.out")
[ -n "$LOCAL" ] && [ -n "$WEB" ] || die "dnsd up did not start: $(cat "$WORK/up.err")"

# hierarchy FIELD: watchers, or dropped (events dropped since the start).
hierarchy() {
  curl -s --max-time 5 "${WEB}api/hierarchy" | python3 -c '
import json, sys
h = json.load(sys.stdin)
print(h["watchers"] if sys.argv[1] == "watchers" else h["events"]["dropped"])' "$1"
}

STATES="off stream"
if command -v chromium >/dev/null; then STATES="off page stream"; fi
start_watcher() {
  if [ "$1" = page ]; then
    setsid chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
      --no-first-run --user-data-dir="$WORK/profile" --window-size=1366,1800 "$WEB" \
      >/dev/null 2>&1 &
  else
    setsid curl -sN "${WEB}events" >/dev/null 2>&1 &
  fi
  WATCHER=$!
  for _ in $(seq 200); do
    [ "$(hierarchy watchers)" -ge 1 ] && return 0
    sleep 0.1
  done
  die "the page did not open its stream"
}

# Each run starts from an empty cache (what the runs before it learned would slow its
# misses' inserts), and the rounds take the states in turn, each first as often.
flush() { curl -s --max-time 5 -X POST "${WEB}api/flush?all=1" >/dev/null; }
read -r -a states <<<"$STATES"
first=1
for r in $(seq "$ROUNDS"); do
  for i in "${!states[@]}"; do
    state=${states[$(((i + r) % ${#states[@]}))]}
    [ "$state" = off ] || start_watcher "$state"
    before=$(hierarchy dropped)
    flush
    "$BIN" bench --server "$LOCAL" --connections 8 --duration "$SECS" --json \
      --pattern www.google.com >"$RESULTS/web-hits-$state-r$r.json"
    flush
    "$BIN" bench --server "$LOCAL" --connections 8 --duration "$SECS" --json \
      --pattern 'www.w{n}.com' --first "$first" >"$RESULTS/web-misses-$state-r$r.json"
    first=$((first + 10000000))
    dropped=$(($(hierarchy dropped) - before))
    echo "$dropped" >"$RESULTS/web-dropped-$state-r$r.txt"
    stop_watcher
    log "web-bench.sh: round $r, watcher $state: hits $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["qps"]))' "$RESULTS/web-hits-$state-r$r.json") q/s, misses $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["qps"]))' "$RESULTS/web-misses-$state-r$r.json") q/s, $dropped events dropped"
  done
done

python3 - "$RESULTS" "$ROUNDS" "$SECS" "$STATES" >"$OUTMD" <<'EOF'
import json, statistics, sys
results, rounds, secs, states = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
def qps(kind, state):
    return [json.load(open(f"{results}/web-{kind}-{state}-r{r}.json"))["qps"] for r in range(1, rounds + 1)]
def dropped(state):
    return [int(open(f"{results}/web-dropped-{state}-r{r}.txt").read()) for r in range(1, rounds + 1)]
print("## The web view's cost\n")
print(f"`scripts/web-bench.sh`: `dnsd up --any-port`, line-protocol queries at 8 connections, "
      f"{rounds} alternating rounds of {secs} s: nobody watching, the page open in headless "
      "Chromium and receiving events (*page*), and `curl -N` reading the event stream "
      "(*stream*: the servers' side alone); medians, and the ratio to nobody watching "
      "within each round.\n")
watched = [s for s in states if s != "off"]
print("| 8 connections | nobody watching | " + " | ".join(f"{w} | ratio (per round)" for w in watched)
      + " | events dropped |")
print("|---|---:|" + "---:|---:|" * len(watched) + "---:|")
for kind, label in (("hits", "hits"), ("misses", "misses (R, NXDOMAIN from com)")):
    off = qps(kind, "off")
    cells = [f"{statistics.median(off):,.0f} q/s"]
    for w in watched:
        on = qps(kind, w)
        ratios = [b / a if a else 0 for a, b in zip(off, on)]
        cells.append(f"{statistics.median(on):,.0f} q/s")
        cells.append(f"**{statistics.median(ratios):.3f}** ({', '.join(f'{x:.2f}' for x in ratios)})")
    cells.append(", ".join(f"{w} {sum(dropped(w)):,}" for w in watched))
    print(f"| {label} | " + " | ".join(cells) + " |")
print()
print("Events reach the page through a queue of 20, read every 250 ms: under load most "
      "are dropped (and counted) rather than slowing a query, and the page shows a sample.\n")
EOF
cat "$OUTMD"
