#!/usr/bin/env bash
# DNS misses, dnsd local against Unbound, resolving through the same authoritative
# servers (`just misses`). In a network namespace of its own (so that port 53 is free
# and nothing leaves the machine): dnsd root on 127.0.0.2:53 and dnsd tld com on
# 127.0.0.3:53, com holding a zone of 1,000,000 names (scripts/genzone.sh). Then, in
# ROUNDS rounds, each starting with the next resolver:
#   dnsd       dnsd local (--upstream-protocol dns, mode I), on 127.0.0.1:5300
#   unbound-1  Unbound, `module-config: "iterator"`, 1 thread, root hints at dnsd's root
#   unbound-2  the same, 2 threads
# each asked with `dnsperf -c 8 -q 100 -l SECS` for names it has never been asked (a
# slice of the zone of its own in every round, so every query is a miss that crosses
# com; the com delegation stays cached, as it would for any resolver at work). dnsperf's
# output is kept as RESULTS/dnsperf-miss-RESOLVER-rN.txt; the summary (queries/s per
# round, medians, dnsd's share of each Unbound's) goes to stdout.
#
# usage: sudo scripts/misses.sh [BIN [RESULTS]]   (root: it makes a network namespace)
# Environment: SECS (default 5), ROUNDS (default 3), NAMES (zone size, 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
NAMES=${NAMES:-1000000}

log() { printf '%s\n' "$*" >&2; }
die() {
  log "misses.sh: $*"
  exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (a network namespace of its own)"
for tool in ip dnsperf; do command -v "$tool" >/dev/null || die "needs $tool"; done
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
[ -x "$UNBOUND" ] || die "needs unbound (scripts/ci-deps.sh unbound)"

BIN=${1:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/dnsd
fi
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
[ -x "$BIN" ] || die "no binary at $BIN"
RESULTS=${2:-$(mktemp -d "${TMPDIR:-/tmp}/dnsd-misses-results.XXXXXX")}
mkdir -p "$RESULTS"

NS=dnsd-misses-$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnsd-misses.XXXXXX")
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  ip netns del "$NS" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then log "misses.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
# (Processes started in the background call `ip netns exec` themselves, not through
# this function, so that $! is theirs: `ip` execs the program.)
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up

# wait_for FILE PID NEEDLE: until FILE holds NEEDLE (a readiness line), within 60 s.
wait_for() {
  for _ in $(seq 600); do
    grep -q "$3" "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -5 "$1" >&2; die "process $2 ended before '$3'"; }
    sleep 0.1
  done
  die "no '$3' in $1 within 60 s"
}

# ready ADDR PORT: until a DNS query there is answered, within 60 s.
ready() {
  for _ in $(seq 600); do
    if in_ns dnsperf -s "$1" -p "$2" -d <(echo "www.h0.com A") -n 1 -t 1 2>/dev/null |
      grep -q 'Queries completed: *1 '; then
      return 0
    fi
    sleep 0.1
  done
  die "nothing answers on $1:$2 within 60 s"
}

log "misses.sh: a com zone of $NAMES names"
scripts/genzone.sh zone "$NAMES" dat >"$WORK/com.dat"
printf 'com 127.0.0.3 53\n' >"$WORK/root.dat"

ip netns exec "$NS" "$BIN" tld com "$WORK/com.dat" --bind 127.0.0.3 --port 53 2>"$WORK/com.err" >/dev/null &
PIDS+=($!)
wait_for "$WORK/com.err" $! "listening on"
ip netns exec "$NS" "$BIN" root "$WORK/root.dat" --bind 127.0.0.2 --port 53 2>"$WORK/root.err" >/dev/null &
PIDS+=($!)
wait_for "$WORK/root.err" $! "listening on"

mkdir -p "$WORK/logs"
RUST_LOG=warn ip netns exec "$NS" "$BIN" local --root 127.0.0.2:53 --port 5300 --upstream-protocol dns \
  --log-dir "$WORK/logs" 2>"$WORK/local.err" >/dev/null &
PIDS+=($!)
ready 127.0.0.1 5300

printf '. 3600000 IN NS ns.root.\nns.root. 3600000 IN A 127.0.0.2\n' >"$WORK/root.hints"
# unbound_conf THREADS PORT
unbound_conf() {
  cat <<EOF
server:
  interface: 127.0.0.1@$2
  port: $2
  num-threads: $1
  so-reuseport: yes
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$WORK"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  root-hints: "$WORK/root.hints"
  do-not-query-localhost: no
  module-config: "iterator"
  qname-minimisation: no
  target-fetch-policy: "0 0 0 0 0"
  harden-referral-path: no
  prefetch: no
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  msg-cache-size: 256m
  rrset-cache-size: 256m
  outgoing-range: 4096
  num-queries-per-thread: 2048
EOF
}
unbound_conf 1 5301 >"$WORK/unbound-1.conf"
unbound_conf 2 5302 >"$WORK/unbound-2.conf"
for n in 1 2; do
  ip netns exec "$NS" "$UNBOUND" -d -c "$WORK/unbound-$n.conf" 2>"$WORK/unbound-$n.err" &
  PIDS+=($!)
  ready 127.0.0.1 530$n
done

# Each run asks names of its own: slices of the zone, in a fixed stride order.
next=1
slice() {
  awk -v S="$1" -v K="$2" -v N="$NAMES" \
    'BEGIN { for (i = 0; i < K; i++) printf "www.h%d.com A\n", ((S + i) * 7919) % N }'
}
PER_RUN=$((NAMES / (3 * ROUNDS) - 1))
declare -A PORT=([dnsd]=5300 [unbound-1]=5301 [unbound-2]=5302)
order=(dnsd unbound-1 unbound-2)
for round in $(seq "$ROUNDS"); do
  for k in 0 1 2; do
    who=${order[$(((round - 1 + k) % 3))]}
    slice "$next" "$PER_RUN" >"$WORK/names"
    next=$((next + PER_RUN))
    out="$RESULTS/dnsperf-miss-$who-r$round.txt"
    in_ns dnsperf -s 127.0.0.1 -p "${PORT[$who]}" -d "$WORK/names" -c 8 -q 100 -l "$SECS" \
      >"$out" 2>&1 || true
    qps=$(grep -o 'Queries per second: *[0-9.]*' "$out" | grep -o '[0-9.]*$' || echo 0)
    lost=$(grep -o 'Queries lost: *[0-9]*' "$out" | grep -o '[0-9]*$' || echo ?)
    printf 'round %s %-9s %10.0f q/s (lost %s)\n' "$round" "$who" "$qps" "$lost"
    echo "$who $qps" >>"$WORK/figures"
  done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
d=$(awk '$1 == "dnsd" { print $2 }' "$WORK/figures" | median)
u1=$(awk '$1 == "unbound-1" { print $2 }' "$WORK/figures" | median)
u2=$(awk '$1 == "unbound-2" { print $2 }' "$WORK/figures" | median)
awk -v d="$d" -v u1="$u1" -v u2="$u2" -v r="$ROUNDS" 'BEGIN {
  printf "medians of %d rounds: dnsd %.0f, unbound-1 %.0f, unbound-2 %.0f q/s\n", r, d, u1, u2
  printf "dnsd / unbound-1 = %.2f (target >= 1.0), dnsd / unbound-2 = %.2f (target >= 0.8)\n",
    d / u1, d / u2
}'
log "misses.sh: dnsperf outputs in $RESULTS"
