#!/usr/bin/env bash
# `just stress-test [ROUNDS] [COPIES] [HOGS] [-- TEST-ARGS...]`: the integration tests
# under load. Builds the `it` test binary once, then for ROUNDS rounds runs COPIES copies
# of the whole suite at once, with HOGS busy loops beside them. Prints how many runs
# failed in each round and, at the end, the total and which tests failed. Exits non-zero
# if any run failed. Each run's output is kept in a temporary directory (printed at the
# end; removed when every run passed, kept otherwise or with KEEP=1).
#
# Arguments after the first three go to the test binary (a filter such as `legacy`).
# The environment passes through, so DNSD_REQUIRE_PYTHON2=1 or DNSD_REQUIRE_NETNS=1
# turn those skips into failures here too. Each run is bounded by RUN_TIMEOUT seconds
# (default 600).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-10}
COPIES=${2:-4}
HOGS=${3:-2}
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = "--" ] && shift
RUN_TIMEOUT=${RUN_TIMEOUT:-600}

for n in "$ROUNDS" "$COPIES" "$HOGS" "$RUN_TIMEOUT"; do
  case "$n" in '' | *[!0-9]*) echo "usage: $0 [ROUNDS] [COPIES] [HOGS] [-- TEST-ARGS...]" >&2; exit 2 ;; esac
done

echo "stress-test: building the integration tests" >&2
BIN=$(cargo test --test it --no-run --message-format=json |
  grep '"reason":"compiler-artifact"' | grep '"kind":\["test"\]' | grep '"name":"it"' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "stress-test: no \`it\` test binary found" >&2; exit 1; }

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/dnsd-stress.XXXXXX")
# A copy, so that a rebuild while this runs does not change the binary under test.
cp "$BIN" "$LOGS/it"
BIN=$LOGS/it
hogs=()
runs=()

stop() {
  local pid
  for pid in ${runs[@]+"${runs[@]}"} ${hogs[@]+"${hogs[@]}"}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${runs[@]+"${runs[@]}"} ${hogs[@]+"${hogs[@]}"}; do
    wait "$pid" 2>/dev/null || true
  done
  runs=()
  hogs=()
}
trap stop EXIT
trap 'echo "stress-test: interrupted; logs in $LOGS" >&2; exit 130' INT TERM

for ((h = 0; h < HOGS; h++)); do
  bash -c 'while :; do :; done' &
  hogs+=($!)
done

echo "stress-test: $ROUNDS rounds of $COPIES copies of $BIN ${*:-} beside $HOGS busy loops" >&2
total_failed=0
total_runs=0
for ((r = 1; r <= ROUNDS; r++)); do
  started=$SECONDS
  runs=()
  for ((c = 1; c <= COPIES; c++)); do
    timeout -k 10 "$RUN_TIMEOUT" "$BIN" "$@" >"$LOGS/round$r-copy$c.log" 2>&1 &
    runs+=($!)
  done
  failed=0
  for ((c = 1; c <= COPIES; c++)); do
    code=0
    wait "${runs[c - 1]}" || code=$?
    if [ "$code" != 0 ]; then
      failed=$((failed + 1))
      echo "exit code $code" >"$LOGS/round$r-copy$c.failed"
    fi
  done
  runs=()
  total_failed=$((total_failed + failed))
  total_runs=$((total_runs + COPIES))
  echo "round $r/$ROUNDS: $failed of $COPIES runs failed ($((SECONDS - started)) s)"
done

stop
echo "total: $total_failed of $total_runs runs failed"
if [ "$total_failed" -gt 0 ]; then
  echo "failed tests (runs):"
  for f in "$LOGS"/*.failed; do
    log=${f%.failed}.log
    names=$(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log")
    if [ -z "$names" ]; then
      echo "(no test named: $(basename "$log"), $(cat "$f"))"
    else
      printf '%s\n' "$names"
    fi
  done | sort | uniq -c | sort -rn
  echo "logs: $LOGS"
  exit 1
fi
if [ -n "${KEEP:-}" ]; then
  echo "logs: $LOGS"
else
  rm -rf "$LOGS"
fi
