#!/usr/bin/env bash
# Two builds of dnsd side by side, in one run (`just compare A B`). Each build starts its
# own hierarchy (com, root, local, all on free loopback ports); then rounds alternate
# between them, each measuring with `dnsd bench` at 8 connections: hits (a cached name),
# misses in mode R and in mode I (names never asked before, `www.nx{n}.com`, which the
# line protocol never caches, so every one crosses local, root and com). It prints every
# round, then the medians and B's as a share of A's: quote those ratios, since these
# machines are noisy from round to round.
#
# usage: scripts/compare.sh BIN_A BIN_B [ROUNDS] [SECS]   (defaults: 5 rounds of 3 s)
#   CONNS="1 8" measures at each number of connections given (default 8).
#   e.g.  git stash; cargo build --release; cp target/release/dnsd /tmp/dnsd-before
#         git stash pop; cargo build --release
#         scripts/compare.sh /tmp/dnsd-before target/release/dnsd
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-5} SECS=${4:-3} CONNS=${CONNS:-8}
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
cleanup() {
  if [ -f "$WORK/pids" ]; then
    # shellcheck disable=SC2046
    kill $(cat "$WORK/pids") 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# listening FILE: the address a server logged in FILE (`listening on ADDR`), within 20 s.
listening() {
  local addr
  for _ in $(seq 400); do
    addr=$(grep -o 'listening on [0-9.:]*' "$1" | head -1 | cut -d' ' -f3 || true)
    if [ -n "$addr" ]; then
      echo "$addr"
      return
    fi
    sleep 0.05
  done
  echo "compare: no listening line in $1" >&2
  exit 1
}

# start BIN NAME ARGS...: runs `BIN ARGS` in the background and prints its address.
start() {
  local bin=$1 name=$2
  shift 2
  "$bin" "$@" 2>"$WORK/$name.err" >/dev/null &
  echo $! >>"$WORK/pids"
  listening "$WORK/$name.err"
}

# hierarchy BIN NAME: com, root and local from BIN; prints the local server's address.
hierarchy() {
  local bin=$1 n=$2 com root
  com=$(start "$bin" "$n-com" tld com zones/com.dat --port 0)
  printf 'com 127.0.0.1 %s\n' "${com##*:}" >"$WORK/$n-root.dat"
  root=$(start "$bin" "$n-root" root "$WORK/$n-root.dat" --port 0)
  mkdir -p "$WORK/logs-$n"
  start "$bin" "$n-local" local --cache zones/default.dat --root "$root" --port 0 \
    --log-dir "$WORK/logs-$n"
}

# qps BIN CONNS ARGS...: one `dnsd bench` run's queries per second, rounded.
qps() {
  local bin=$1 conns=$2
  shift 2
  "$bin" bench --connections "$conns" --duration "$SECS" --json "$@" |
    grep -o '"qps":[0-9.]*' | cut -d: -f2 | cut -d. -f1
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

LA=$(hierarchy "$A" a)
LB=$(hierarchy "$B" b)
first=0
for round in $(seq "$ROUNDS"); do
  for c in $CONNS; do
    for side in a b; do
      if [ "$side" = a ]; then bin=$A local=$LA; else bin=$B local=$LB; fi
      hits=$(qps "$bin" "$c" --server "$local")
      r=$(qps "$bin" "$c" --server "$local" --mode R --first $first --pattern 'www.nx{n}.com')
      first=$((first + 10000000))
      i=$(qps "$bin" "$c" --server "$local" --mode I --first $first --pattern 'www.nx{n}.com')
      first=$((first + 10000000))
      echo "round $round, $c connection(s), $side: hits $hits, R misses $r, I misses $i"
      printf '%s %s\n' "$hits" "$r $i" | awk -v s="$side" -v c="$c" '{ print s, "hits@" c, $1; print s, "R@" c, $2; print s, "I@" c, $3 }' >>"$WORK/figures"
    done
  done
done
echo "medians of $ROUNDS rounds of $SECS s (queries/s; kind@connections):"
for c in $CONNS; do
  for kind in hits R I; do
    k="$kind@$c"
    a=$(awk -v k="$k" '$1 == "a" && $2 == k { print $3 }' "$WORK/figures" | median)
    b=$(awk -v k="$k" '$1 == "b" && $2 == k { print $3 }' "$WORK/figures" | median)
    awk -v k="$k" -v a="$a" -v b="$b" 'BEGIN { printf "  %-8s A %7d  B %7d  B/A %.2f\n", k, a, b, b / a }'
  done
done
