#!/usr/bin/env bash
# A month's logs, compressed into minutes: does the log directory stay within its bound?
#
# usage: scripts/soak-logs.sh [SECONDS=120]    (`just soak-logs`)
#   DNSD=path/to/dnsd (default target/release/dnsd, built if missing)
#
# Starts a com server with a zone of 300,000 names, a root, and a local server
# (--max-client-logs 100, --cache-size 20000, --max-ttl 30, --log-file, --pid-file), then
# for SECONDS at once:
#   - a unique-name flood: `dnsd bench` asking the zone's names in turn, round and round
#     (each a miss, as the last time it was asked is more than --max-ttl ago: each a
#     mapping.log line), 4 connections, mode I;
#   - a unique-id flood: one short `dnsd bench` after another, each with a new client id;
#   - a rotation every 5 s: Debian's logrotate -f with examples/logrotate.conf (its paths
#     pointed here), whose postrotate sends SIGUSR1.
# At the end it stops the server (SIGTERM, must exit 0), checks every log for torn
# records, and checks the documented bound: at most --max-client-logs files in clients/
# (each with at most `rotate` copies), mapping.log within 2 x max(--cache-size, 10000)
# lines. It prints the figures and exits 1 if a bound or a record is broken.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-120}
DNSD=${DNSD:-target/release/dnsd}
if [ ! -x "$DNSD" ]; then cargo build --release --quiet; fi
command -v logrotate >/dev/null || { echo "needs logrotate: scripts/ci-deps.sh logrotate" >&2; exit 2; }

MAX_CLIENT_LOGS=100
CACHE_SIZE=20000
ZONE_NAMES=300000
WORK=$(mktemp -d /tmp/dnsd-soak-logs.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Waits (at most 30 s) for `listening on ADDR` in FILE and prints ADDR.
listening() {
  for _ in $(seq 300); do
    if addr=$(grep -o 'listening on [^ ]*' "$1" 2>/dev/null | head -1 | cut -d' ' -f3) && [ -n "$addr" ]; then
      echo "$addr"
      return 0
    fi
    sleep 0.1
  done
  echo "no 'listening on' in $1" >&2
  exit 1
}

scripts/genzone.sh zone "$ZONE_NAMES" dat >"$WORK/com.dat"
scripts/genzone.sh names "$ZONE_NAMES" "$ZONE_NAMES" >"$WORK/names"
"$DNSD" tld com "$WORK/com.dat" --port 0 2>"$WORK/com.err" & pids+=($!)
com=$(listening "$WORK/com.err")
echo "com ${com%:*} ${com##*:}" >"$WORK/root.dat"
"$DNSD" root "$WORK/root.dat" --port 0 2>"$WORK/root.err" & pids+=($!)
root=$(listening "$WORK/root.err")
"$DNSD" local --port 0 --root "$root" --log-dir "$LOGS" --log-file "$LOGS/dnsd.log" \
  --pid-file "$WORK/dnsd.pid" --max-client-logs "$MAX_CLIENT_LOGS" \
  --cache-size "$CACHE_SIZE" --max-ttl 30 & local_pid=$!
pids+=("$local_pid")
local=$(listening "$LOGS/dnsd.log")
sed -e "s|/var/log/dnsd|$LOGS|g" -e "s|/run/dnsd.pid|$WORK/dnsd.pid|g" \
  examples/logrotate.conf >"$WORK/logrotate.conf"
echo "soak-logs: $SECS s; local $local, logs in $LOGS" >&2

"$DNSD" bench --server "$local" --client-id flood --names "$WORK/names" --mode I \
  --connections 4 --duration "$SECS" --json >"$WORK/flood.json" 2>/dev/null & flood=$!
pids+=("$flood")
start=$(date +%s)
ids=0 rotations=0 next_rotation=$((start + 5))
while [ $(($(date +%s) - start)) -lt "$SECS" ]; do
  ids=$((ids + 1))
  "$DNSD" bench --server "$local" --client-id "id$ids" --pattern 'www.h{n}.com' \
    --first $((ids * 7919 % ZONE_NAMES)) --requests 3 --json >/dev/null 2>&1 || true
  if [ "$(date +%s)" -ge "$next_rotation" ]; then
    logrotate -f -s "$WORK/logrotate.state" "$WORK/logrotate.conf"
    rotations=$((rotations + 1))
    next_rotation=$(($(date +%s) + 5))
  fi
done
wait "$flood" || true
kill -TERM "$local_pid"
code=0
wait "$local_pid" || code=$?

# The figures, and the checks.
fail=0
problem() { echo "PROBLEM: $*"; fail=1; }
client_files=$(find "$LOGS/clients" -name '*.log' | wc -l)
client_copies=$(find "$LOGS/clients" -name '*.log.*' | wc -l)
mapping_lines=$(wc -l <"$LOGS/mapping.log")
mapping_bound=$((2 * (CACHE_SIZE > 10000 ? CACHE_SIZE : 10000)))
queries=$(grep -o '"queries": *[0-9]*' "$WORK/flood.json" | grep -o '[0-9]*$' || echo "?")
[ "$code" = 0 ] || problem "dnsd local exited $code on SIGTERM"
[ "$client_files" -le "$MAX_CLIENT_LOGS" ] || problem "$client_files client files (cap $MAX_CLIENT_LOGS)"
[ "$client_copies" -le $((MAX_CLIENT_LOGS * 7)) ] || problem "$client_copies rotated client copies"
[ "$mapping_lines" -le "$mapping_bound" ] || problem "mapping.log: $mapping_lines lines (bound $mapping_bound)"
for f in "$LOGS"/clients/*.log "$LOGS"/clients/*.log.1; do
  [ -s "$f" ] || continue
  [ "$(tail -c 2 "$f" | od -An -c | tr -d ' ')" = '\n\n' ] || problem "$f: a torn record at its end"
done
for f in "$LOGS/queries.log" "$LOGS/queries.log.1"; do
  [ -s "$f" ] || continue
  awk -F'\t' 'NF != 3 { bad = 1 } END { exit bad }' "$f" || problem "$f: a line without its 3 fields"
done
awk 'NF != 4 { bad = 1 } END { exit bad }' "$LOGS/mapping.log" || problem "mapping.log: a torn line"
"$DNSD" local --port 0 --warm "$LOGS/mapping.log" --log-dir "$WORK/warm" 2>"$WORK/warm.err" & warm=$!
pids+=("$warm")
listening "$WORK/warm.err" >/dev/null
kill -TERM "$warm"
wait "$warm" || true
grep -q 'warmed from' "$WORK/warm.err" || problem "--warm did not read mapping.log"
compactions=$(zcat -f "$LOGS"/dnsd.log* 2>/dev/null | grep -c 'compacted' || true)
printf '  %-36s %s\n' \
  "seconds" "$SECS" \
  "name-flood queries" "$queries" \
  "unique client ids" "$ids" \
  "rotations (logrotate -f)" "$rotations" \
  "client files in clients/" "$client_files (cap $MAX_CLIENT_LOGS)" \
  "rotated client copies" "$client_copies" \
  "queries.log lines (+ copies)" "$(zcat -f "$LOGS"/queries.log* 2>/dev/null | wc -l)" \
  "mapping.log lines" "$mapping_lines (bound $mapping_bound)" \
  "compactions (in kept dnsd.log*)" "$compactions" \
  "files in the log directory" "$(find "$LOGS" -type f | wc -l)" \
  "disk used by the log directory" "$(du -sh "$LOGS" | cut -f1)" \
  "local exit code on SIGTERM" "$code"
if [ "$fail" = 0 ]; then echo "result: PASS"; else echo "result: FAIL"; fi
rm -rf "$WORK"
exit "$fail"
