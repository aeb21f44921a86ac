#!/usr/bin/env bash
# Debian's dnsperf against dnsd and, on the same machine in the same run, Unbound and NSD:
#   local    dnsd local (separate processes: com, root, local), a cached name
#            (`www.example.com`, from the default cache; asked once before)
#   tld      dnsd tld com (its own process), an authoritative name (`www.google.com`)
#   unbound  Unbound, 1 thread, a local-data name (`bench.example`)
#   nsd      NSD, 1 server process, rate limiting off, a zone name (`www.example.com`)
# each over UDP and TCP with `dnsperf -c 8 -q 100 -l SECS`, in ROUNDS rounds, each round
# starting with the next server (so that a change in the machine's other load hits them
# alike). Each run's output is saved as it is, RESULTS/dnsperf-SERVER-PROTO-rN.txt, for
# `dnsd bench report` (which parses it); one summary line per run goes to stderr.
#
# usage: scripts/dnsperf.sh [BIN [RESULTS]]   (BIN: the dnsd binary, built if not given;
#        RESULTS: where the outputs go, a new temporary directory if not given)
# Environment: DNSPERF_SECS (default 5), DNSPERF_ROUNDS (default 3), KEEP=1 keeps the
# scratch directory (configurations, server logs).
#
# Unbound and NSD cannot take port 0 (they bind different random UDP and TCP ports), so a
# random free-looking port is tried and another one if they fail to bind. Every process
# started here is stopped by its pid. Without dnsperf, unbound or nsd, it writes
# RESULTS/dnsperf-skipped.txt saying what is missing and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SECS=${DNSPERF_SECS:-5}
ROUNDS=${DNSPERF_ROUNDS:-3}

log() { printf '%s\n' "$*" >&2; }
die() {
  log "dnsperf.sh: $*"
  exit 1
}

BIN=${1:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/dnsd
fi
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
[ -x "$BIN" ] || die "no binary at $BIN"
RESULTS=${2:-$(mktemp -d "${TMPDIR:-/tmp}/dnsd-dnsperf-results.XXXXXX")}
mkdir -p "$RESULTS"

missing=""
for tool in dnsperf unbound nsd; do
  command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  log "dnsperf.sh: not installed:$missing; skipping the dnsperf comparison"
  echo "not installed:$missing" >"$RESULTS/dnsperf-skipped.txt"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnsd-dnsperf.XXXXXX")
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE PATTERN PID: until FILE has PATTERN (0), PID exits or 10 s pass (1).
wait_for() {
  local file=$1 pattern=$2 pid=$3 i
  for ((i = 0; i < 200; i++)); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# start_dnsd NAME ARGS...: `dnsd ARGS --port 0`; sets ADDR from its `listening on` line.
start_dnsd() {
  local name=$1
  shift
  "$BIN" "$@" --port 0 2>"$WORK/$name.err" >/dev/null &
  local pid=$!
  PIDS+=("$pid")
  wait_for "$WORK/$name.err" 'listening on' "$pid" || die "dnsd $name did not start: $(tail -2 "$WORK/$name.err")"
  ADDR=$(grep -m1 -o 'listening on [0-9.:]*' "$WORK/$name.err" | awk '{print $3}')
}

# start_on_a_port NAME READY CONFIG-WRITER COMMAND...: writes the configuration for a
# random port (CONFIG-WRITER PORT), starts COMMAND, and tries another port if it exits
# before printing READY (a port in use). Sets PORT.
start_on_a_port() {
  local name=$1 ready=$2 writer=$3 try pid
  shift 3
  for try in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$((20000 + RANDOM % 40000))
    "$writer" "$PORT"
    "$@" >"$WORK/$name.log" 2>&1 &
    pid=$!
    if wait_for "$WORK/$name.log" "$ready" "$pid"; then
      PIDS+=("$pid")
      return 0
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    log "  $name: port $PORT failed (try $try): $(tail -1 "$WORK/$name.log")"
  done
  die "$name did not start"
}

unbound_conf() {
  sed -e "s|@PORT@|$1|" -e "s|@DIR@|$WORK|" scripts/unbound-base.conf >"$WORK/unbound.conf"
  cat >>"$WORK/unbound.conf" <<EOF
server:
    local-data: "bench.example. 3600 IN A 1.2.3.4"
    # the default, 10 TCP clients per thread, is too few for dnsperf -c 8 -m tcp
    incoming-num-tcp: 100
EOF
}

nsd_conf() {
  cat >"$WORK/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1
    port: $1
    do-ip4: yes
    do-ip6: no
    server-count: 1
    tcp-count: 100
    username: ""
    chroot: ""
    zonesdir: "$WORK"
    database: ""
    zonelistfile: "$WORK/zone.list"
    xfrdfile: "$WORK/xfrd.state"
    xfrdir: "$WORK"
    pidfile: ""
    verbosity: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    rrl-slip: 0
    zonefiles-write: 0
remote-control:
    control-enable: no
zone:
    name: "com."
    zonefile: "com.zone"
EOF
}

cat >"$WORK/com.zone" <<'EOF'
$ORIGIN com.
$TTL 3600
@        IN SOA  ns1.com. hostmaster.com. 1 7200 3600 1209600 3600
@        IN NS   ns1.com.
ns1      IN A    127.0.0.1
example  IN A    192.0.2.1
www.example IN A 192.0.2.2
EOF

log "dnsperf.sh: starting dnsd, Unbound and NSD"
start_dnsd com tld com zones/com.dat
TLD=$ADDR
printf 'com 127.0.0.1 %s\n' "${TLD##*:}" >"$WORK/root.dat"
start_dnsd root root "$WORK/root.dat"
ROOT=$ADDR
mkdir -p "$WORK/logs"
start_dnsd local local --cache zones/default.dat --root "$ROOT" --log-dir "$WORK/logs"
LOCAL=$ADDR
start_on_a_port unbound 'start of service' unbound_conf unbound -d -c "$WORK/unbound.conf"
UNBOUND=127.0.0.1:$PORT
start_on_a_port nsd 'nsd started' nsd_conf nsd -d -c "$WORK/nsd.conf"
NSD=127.0.0.1:$PORT

printf 'www.example.com A\n' >"$WORK/q-local"
printf 'www.google.com A\n' >"$WORK/q-tld"
printf 'bench.example A\n' >"$WORK/q-unbound"
printf 'www.example.com A\n' >"$WORK/q-nsd"
# The local server's name is asked once first, so that it is a cache hit throughout.
"$BIN" bench --server "$LOCAL" --dns udp --pattern www.example.com --requests 1 >/dev/null

declare -A ADDRS=([local]=$LOCAL [tld]=$TLD [unbound]=$UNBOUND [nsd]=$NSD)
SERVERS=(local tld unbound nsd)
log "dnsperf.sh: $ROUNDS rounds of ${SECS}s per server and transport (local $LOCAL, tld $TLD, unbound $UNBOUND, nsd $NSD)"
for round in $(seq "$ROUNDS"); do
  for i in 0 1 2 3; do
    server=${SERVERS[$(((round + i) % 4))]}
    addr=${ADDRS[$server]}
    for proto in udp tcp; do
      out=$RESULTS/dnsperf-$server-$proto-r$round.txt
      echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$out"
      dnsperf -m "$proto" -s "${addr%:*}" -p "${addr##*:}" -d "$WORK/q-$server" \
        -c 8 -q 100 -l "$SECS" >>"$out" 2>&1 || log "  dnsperf failed: $(tail -1 "$out")"
      "$BIN" bench show "$out" >&2 || true
    done
  done
done
log "dnsperf.sh: results in $RESULTS"
