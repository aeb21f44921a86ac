#!/usr/bin/env bash
# Where a miss's time goes: starts a dnsd hierarchy (com, root, local), a chain of three
# relay processes (examples/relay.rs) and a hub of three (`relay --to A --then B`: the
# shape of a miss in mode I) on free loopback ports, then, in alternating runs of
# examples/loadgen.rs, measures the chain, the hub, dnsd's R misses and its I misses:
# queries a second, p50, and each server's CPU per query (user + system, from
# /proc/PID/stat). With `perf` (and the right to use it), also system-wide scheduler
# counts per query: wake-ups, task migrations and function-call IPIs.
#
#     bash scripts/miss-profile.sh [CONNECTIONS [SECONDS [ROUNDS]]]   (default 1 3 2)
#
# PIN=CPU runs every process on that one CPU (taskset), to see what the scheduler's
# placement costs. The figures for issue 10 in scripts/bench_notes.md came from this.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-1}
SECS=${2:-3}
ROUNDS=${3:-2}

cargo build --release --quiet --bin dnsd --example relay --example loadgen
DIR=${CARGO_TARGET_DIR:-target}/release
BIN=$DIR/dnsd
RELAY=$DIR/examples/relay
GEN=$DIR/examples/loadgen
PIN_CMD=()
if [ -n "${PIN:-}" ]; then PIN_CMD=(taskset -c "$PIN"); fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnsd-miss-profile.XXXXXX")
PIDS=()
cleanup() {
  if [ ${#PIDS[@]} -gt 0 ]; then
    kill "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, sets PID and ADDR (its `listening on`).
start() {
  local name=$1 i
  shift
  "${PIN_CMD[@]}" "$@" 2>"$WORK/$name.err" >/dev/null &
  PID=$!
  PIDS+=("$PID")
  for i in $(seq 2000); do
    ADDR=$(grep -m1 -o 'listening on [0-9.:]*' "$WORK/$name.err" 2>/dev/null | awk '{print $3}') || true
    [ -n "$ADDR" ] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.01
  done
  echo "miss-profile: $name did not start: $(tail -3 "$WORK/$name.err")" >&2
  exit 1
}

start com "$BIN" tld com zones/com.dat --port 0
COM_PID=$PID
printf 'com 127.0.0.1 %s\n' "${ADDR##*:}" >"$WORK/root.dat"
start root "$BIN" root "$WORK/root.dat" --port 0
ROOT_PID=$PID
mkdir -p "$WORK/logs"
start local "$BIN" local --cache zones/default.dat --root "$ADDR" --port 0 --log-dir "$WORK/logs"
LOCAL_PID=$PID
LOCAL=$ADDR
start relay3 "$RELAY"
LAST_PID=$PID
start relay2 "$RELAY" --to "$ADDR"
MIDDLE_PID=$PID
start relay1 "$RELAY" --to "$ADDR" --greet
FIRST_PID=$PID
CHAIN=$ADDR
# The shape of a miss in mode I: a hub that asks one relay, then another.
start hub-first "$RELAY"
HUB_FIRST_PID=$PID
HUB_FIRST=$ADDR
start hub-second "$RELAY"
HUB_SECOND_PID=$PID
start hub "$RELAY" --to "$HUB_FIRST" --then "$ADDR" --greet
HUB_PID=$PID
HUB=$ADDR

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
field() { grep -o "\"$1\":[0-9]*" <<<"$2" | cut -d: -f2; }
PERF=0
if command -v perf >/dev/null && perf stat -a -e sched:sched_wakeup -- true >/dev/null 2>&1; then
  PERF=1
fi

echo "miss-profile: $CONNS connection(s), ${SECS}s runs, $ROUNDS round(s)${PIN:+, every process on CPU $PIN}"
printf '%-6s %8s %6s   %-28s %s\n' run q/s p50µs "CPU µs/query (1st 2nd 3rd)" "${PERF:+per query: wake-ups migrations IPIs}"
for round in $(seq "$ROUNDS"); do
  for run in chain hub R I; do
    if [ "$run" = chain ]; then
      pids=("$FIRST_PID" "$MIDDLE_PID" "$LAST_PID") target=$CHAIN mode=R
    elif [ "$run" = hub ]; then
      pids=("$HUB_PID" "$HUB_FIRST_PID" "$HUB_SECOND_PID") target=$HUB mode=R
    else
      pids=("$LOCAL_PID" "$ROOT_PID" "$COM_PID") target=$LOCAL mode=$run
    fi
    before=()
    for p in "${pids[@]}"; do before+=("$(cpu_ticks "$p")"); done
    gen=("${PIN_CMD[@]}" "$GEN" "$target" --connections "$CONNS" --seconds "$SECS" --mode "$mode")
    sched=""
    if [ "$PERF" = 1 ]; then
      out=$(perf stat -a -x, -o "$WORK/perf.txt" \
        -e sched:sched_wakeup,sched:sched_migrate_task,irq_vectors:call_function_single_entry \
        -- "${gen[@]}")
    else
      out=$("${gen[@]}")
    fi
    queries=$(field queries "$out")
    [ "${queries:-0}" -gt 0 ] || { echo "miss-profile: no answers: $out" >&2; exit 1; }
    cpus=""
    for i in 0 1 2; do
      ticks=$(($(cpu_ticks "${pids[$i]}") - before[i]))
      cpus+=$(awk -v t="$ticks" -v hz="$TICK" -v q="$queries" 'BEGIN { printf "%6.1f", t * 1e6 / hz / q }')
    done
    if [ "$PERF" = 1 ]; then
      sched=$(awk -F, -v q="$queries" '/^[0-9]/ { printf "%10.2f", $1 / q }' "$WORK/perf.txt")
    fi
    printf '%-6s %8s %6s   %-28s %s\n' "$run" "$(field qps "$out")" "$(field p50_us "$out")" "$cpus" "$sched"
  done
done
