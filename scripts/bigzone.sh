#!/usr/bin/env bash
# A million-record master file (issue 16), measured; part of `just bench`
# (scripts/bench.sh), or alone:
#
#   load     `dnsd auth BIG.zone` from start to `listening on` (hickory-proto's parser
#            fed a few dozen entries at a time, each record stored compactly as it
#            comes), and its peak memory (VmHWM); `nsd-checkzone` and, when installed,
#            `named-checkzone` reading the same file, for comparison.
#   lookups  `dnsd bench --dns udp --mode I` (RD clear: authoritative answers) with 8
#            connections, asking 10,000 names of the zone in turn, against the
#            million-record zone and against a 1,000-record one, in alternating rounds:
#            the big zone's rate should be within 10% of the small one's.
#
# The zones are generated here (`hostN IN A 10.x.y.z`, under `$TTL` and an SOA). Writes
# RESULTS/bigzone.md, a section for BENCHMARKS.md; one line per run goes to stderr.
#
# usage: scripts/bigzone.sh BIN [RESULTS]
# Environment: BIGZONE_RECORDS (default 1000000), BIGZONE_SECS (each lookup run, default
# 3), BIGZONE_ROUNDS (default 3), KEEP=1 keeps the scratch directory. Every process
# started here is stopped by its pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?usage: scripts/bigzone.sh BIN [RESULTS]}
RESULTS=${2:-.}
RECORDS=${BIGZONE_RECORDS:-1000000}
SECS=${BIGZONE_SECS:-3}
ROUNDS=${BIGZONE_ROUNDS:-3}

log() { printf '%s\n' "$*" >&2; }

SCRATCH=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && log "bigzone.sh: kept $SCRATCH" || rm -rf "$SCRATCH"
}
trap cleanup EXIT

# zone FILE ORIGIN N: a zone of N address records.
zone() {
  awk -v origin="$2" -v n="$3" 'BEGIN {
    printf "$ORIGIN %s.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 604800 300\n", origin
    print "  IN NS ns1\nns1 IN A 192.0.2.1"
    for (i = 0; i < n; i++)
      printf "host%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
  }' >"$1"
}
# names FILE ORIGIN N: 10,000 names of such a zone, spread over all of it.
names() {
  awk -v origin="$2" -v n="$3" 'BEGIN {
    srand(16); for (i = 0; i < 10000; i++) printf "host%d.%s\n", int(rand() * n), origin
  }' >"$1"
}

zone "$SCRATCH/big.zone" big.example "$RECORDS"
zone "$SCRATCH/small.zone" small.example 1000
names "$SCRATCH/big.names" big.example "$RECORDS"
names "$SCRATCH/small.names" small.example 1000

# start NAME FILE: starts `dnsd auth FILE` on a free port; sets ADDR, PID, LOAD_S (start
# to `listening on`), CPU_S (its CPU time by then) and PEAK_MB (VmHWM once listening).
start() {
  local err="$SCRATCH/$1.err" t0 t1
  : >"$err"
  t0=$(date +%s.%N)
  "$BIN" auth "$2" --port 0 2>"$err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 1200); do
    grep -q 'listening on' "$err" && break
    kill -0 "$PID" 2>/dev/null || { cat "$err" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s.%N)
  ADDR=$(grep -o 'listening on [0-9.:]*' "$err" | head -1 | sed 's/listening on //')
  LOAD_S=$(echo "$t1 - $t0" | bc | sed 's/^\./0./' | cut -c1-4)
  # CPU time to there (user + system): what a loaded machine's wall time hides.
  CPU_S=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$PID/stat")
  PEAK_MB=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$PID/status")
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

# measure COMMAND...: wall seconds, CPU seconds and peak MB of a command (GNU time).
measure() {
  /usr/bin/time -f '%e %U %S %M' -o "$SCRATCH/time" "$@" >/dev/null 2>&1 || true
  awk '{ printf "%s s, %.2f s, %d MB", $1, $2 + $3, $4 / 1024 }' "$SCRATCH/time"
}

log "bigzone.sh: loading $RECORDS records"
loads=()
for round in $(seq 1 "$ROUNDS"); do
  start big "$SCRATCH/big.zone"
  stop
  loads+=("$LOAD_S s, $CPU_S s, $PEAK_MB MB")
  log "bigzone.sh: load round $round: $LOAD_S s (CPU $CPU_S s), peak $PEAK_MB MB"
done
nsd=$(command -v nsd-checkzone >/dev/null && measure nsd-checkzone big.example "$SCRATCH/big.zone" || echo "not installed")
named=$(command -v named-checkzone >/dev/null && measure named-checkzone big.example "$SCRATCH/big.zone" || echo "not installed")
log "bigzone.sh: nsd-checkzone $nsd; named-checkzone $named"

qps() { sed -n 's/.*"qps":\([0-9.]*\).*/\1/p'; }
declare -A rates
for round in $(seq 1 "$ROUNDS"); do
  for size in small big; do
    start "$size" "$SCRATCH/$size.zone"
    rate=$("$BIN" bench --server "$ADDR" --dns udp --mode I --names "$SCRATCH/$size.names" \
      --connections 8 --duration "$SECS" --json | qps)
    stop
    rates[$size]="${rates[$size]:-} $rate"
    log "bigzone.sh: round $round, $size zone: $rate q/s"
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
small=$(echo "${rates[small]}" | median)
big=$(echo "${rates[big]}" | median)
ratio=$(echo "scale=1; 100 * $big / $small" | bc)

cat >"$RESULTS/bigzone.md" <<EOF
## A million-record master file

\`scripts/bigzone.sh\` ($(date -u +%Y-%m-%d), $(nproc) cores, shared): a master file of
$RECORDS address records (\`hostN IN A ...\`, $(du -m "$SCRATCH/big.zone" | cut -f1) MB) served by \`dnsd auth\`.

| Load (start to \`listening on\`) | wall, CPU (user + system), peak memory |
|---|---|
$(for i in "${!loads[@]}"; do echo "| dnsd auth, round $((i + 1)) | ${loads[$i]} |"; done)
| nsd-checkzone | $nsd |
| named-checkzone | $named |

Lookups: \`dnsd bench --dns udp --mode I --connections 8\`, 10,000 names of the zone
asked in turn, $SECS s per run, median of $ROUNDS alternating rounds:

| Zone | q/s |
|---|---|
| 1,000 records | $small |
| $RECORDS records | $big ($ratio% of the small zone's) |
EOF
log "bigzone.sh: wrote $RESULTS/bigzone.md"
