#!/usr/bin/env bash
# Misses in parallel (issue 15), measured; part of `just bench` (scripts/bench.sh), or
# alone. Three parts, each comparing dnsd BIN with another build BEFORE when one is
# given (e.g. main's, built into /tmp), in alternating rounds, all in one run:
#
#   udp       DNS misses over UDP with `dnsd bench --dns udp --mode R` (RD set: the local
#             server resolves; mode I over DNS is RD clear, which it answers from its
#             cache only), names never asked before (`www.m{n}.com`, NXDOMAIN from com),
#             at 8 and 64 connections, against a hierarchy (com, root, local) of each
#             build on free loopback ports.
#   dead      One TLD dead (net, referred to a UDP port that never answers) and misses for
#             it arriving at 50 q/s (an open-loop generator, dnspython): a cached org
#             name's median latency over UDP and the rate of misses under org, each idle
#             and under that load; the dead misses' answers (all SERVFAIL? how long?).
#   unbound   dnsperf (-c 8 -q 100) with names never asked before against dnsd local and
#             Unbound (module-config iterator, 1 and 2 threads), both resolving through
#             the same dnsd root and com servers on port 53, in a network namespace made
#             here (each server on its own 127.0.0.x address: a referral has no port).
#             Needs root, iproute2, dnsperf and unbound; skipped, saying so, without.
#
# It writes RESULTS/misses.md, a section for BENCHMARKS.md (bench.sh appends it), and
# the raw results beside it; one line per run goes to stderr.
#
# usage: scripts/misses.sh BIN [BEFORE [RESULTS]]
# Environment: MISSES_SECS (length of each run, default 3), MISSES_ROUNDS (alternating
# rounds, default 3), MISSES_PARTS (default "udp dead unbound"), KEEP=1 keeps the scratch
# directory (server logs). Every process started here is stopped by its pid, and the
# namespace is deleted, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SECS=${MISSES_SECS:-3}
ROUNDS=${MISSES_ROUNDS:-3}
PARTS=${MISSES_PARTS:-udp dead unbound}

log() { printf '%s\n' "$*" >&2; }
die() {
  log "misses.sh: $*"
  exit 1
}

BIN=${1:?usage: scripts/misses.sh BIN [BEFORE [RESULTS]]}
BEFORE=${2:-}
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
[ -x "$BIN" ] || die "no binary at $BIN"
if [ -n "$BEFORE" ]; then
  case "$BEFORE" in /*) ;; *) BEFORE="$REPO/$BEFORE" ;; esac
  [ -x "$BEFORE" ] || die "no binary at $BEFORE"
fi
RESULTS=${3:-$(mktemp -d "${TMPDIR:-/tmp}/dnsd-misses-results.XXXXXX")}
mkdir -p "$RESULTS"
OUTMD=$RESULTS/misses.md

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnsd-misses.XXXXXX")
# The pid of every process started here, one a line: servers are started inside command
# substitutions, whose variables do not reach this shell.
PIDFILE=$WORK/pids
: >"$PIDFILE"
NETNS=""
track() { echo "$1" >>"$PIDFILE"; }

# stop_all: stops every process started so far, by pid, and waits (at most 5 s) until
# they are gone.
stop_all() {
  local pid
  for pid in $(cat "$PIDFILE"); do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $(cat "$PIDFILE"); do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  done
  : >"$PIDFILE"
}

cleanup() {
  trap - EXIT INT TERM
  stop_all
  [ -z "$NETNS" ] || ip netns delete "$NETNS" 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The builds measured: "after" (BIN), and "before" (BEFORE) if given.
BUILDS=(after)
[ -z "$BEFORE" ] || BUILDS+=(before)
bin_of() { if [ "$1" = before ]; then echo "$BEFORE"; else echo "$BIN"; fi; }

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
  die "no listening line in $1"
}

# start NAME CMD...: runs CMD in the background, its stderr in WORK/NAME.err; prints the
# address it logs.
start() {
  local name=$1
  shift
  "$@" 2>"$WORK/$name.err" >/dev/null &
  track $!
  listening "$WORK/$name.err"
}

# A UDP port that never answers: a socket bound and never read. Prints the port.
silent_port() {
  python3 -u -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
sys.stdout.flush()
time.sleep(100000)
' >"$WORK/silent.port" &
  track $!
  for _ in $(seq 200); do
    [ -s "$WORK/silent.port" ] && break
    sleep 0.05
  done
  [ -s "$WORK/silent.port" ] || die "the silent socket did not start"
  cat "$WORK/silent.port"
}

# hierarchy BUILD TAG [TLD LINE]...: com and org from BUILD, a root whose table also holds
# each extra LINE (`TLD HOST PORT`), and a local server; prints the local server's
# address, and leaves the root's in WORK/TAG-root.addr.
hierarchy() {
  local bin build=$1 tag=$2 com org root
  bin=$(bin_of "$build")
  shift 2
  com=$(start "$tag-com" "$bin" tld com zones/com.dat --port 0)
  org=$(start "$tag-org" "$bin" tld org zones/org.dat --port 0)
  {
    printf 'com 127.0.0.1 %s\n' "${com##*:}"
    printf 'org 127.0.0.1 %s\n' "${org##*:}"
    for line in "$@"; do printf '%s\n' "$line"; done
  } >"$WORK/$tag-root.dat"
  root=$(start "$tag-root" "$bin" root "$WORK/$tag-root.dat" --port 0)
  echo "$root" >"$WORK/$tag-root.addr"
  mkdir -p "$WORK/logs-$tag"
  start "$tag-local" "$bin" local --cache zones/default.dat --root "$root" --port 0 \
    --log-dir "$WORK/logs-$tag"
}

# bench BUILD OUT ARGS...: `dnsd bench --json ARGS` with BUILD's binary (the load
# generator is the same build as the server: both are measured as they ship). A run in
# which nothing was answered (dnsd bench exits 1) is written as a result with no
# queries, its error in "failed".
bench() {
  local build=$1 out=$2
  shift 2
  if ! "$(bin_of "$build")" bench --json "$@" >"$out" 2>"$out.err"; then
    python3 -c '
import json, sys
print(json.dumps({"qps": 0.0, "p50_us": 0, "p99_us": 0, "errors": 0, "queries": 0,
                  "failed": open(sys.argv[1]).read().strip()}))' "$out.err" >"$out"
  fi
}

# field FILE NAME: a number from a `dnsd bench --json` result.
field() {
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r[sys.argv[2]])' "$1" "$2"
}

# Medians and ratios of results named PREFIX-BUILD-rN.json: `BUILD median` lines.
median_of() {
  python3 - "$@" <<'EOF'
import json, statistics, sys
key, files = sys.argv[1], sys.argv[2:]
values = [json.load(open(f))[key] for f in files]
print(statistics.median(values))
EOF
}

{
  echo "## Misses in parallel (issue 15)"
  echo
  echo "From \`scripts/misses.sh\` (part of \`just bench\`): $ROUNDS alternating rounds of ${SECS}-second runs;"
  if [ -n "$BEFORE" ]; then
    echo "\"before\" is \`$(basename "$BEFORE")\` (${MISSES_BEFORE_NOTE:-another build}), \"after\" this build; medians, and after / before."
  else
    echo "this build only (give a second binary to compare)."
  fi
  echo
} >"$OUTMD"

# --- udp: DNS misses over UDP, before and after -----------------------------------------

part_udp() {
  log "misses.sh: DNS misses over UDP, ${SECS}s runs, $ROUNDS rounds"
  local build local first=0 r c
  for build in "${BUILDS[@]}"; do
    hierarchy "$build" "udp-$build" >"$WORK/udp-$build.local"
  done
  for r in $(seq "$ROUNDS"); do
    for c in 8 64; do
      for build in "${BUILDS[@]}"; do
        local=$(cat "$WORK/udp-$build.local")
        bench "$build" "$RESULTS/misses-udp-$c-$build-r$r.json" --server "$local" --dns udp \
          --mode R --connections "$c" --duration "$SECS" --first "$first" \
          --pattern 'www.m{n}.com'
        first=$((first + 10000000))
        log "  udp misses, $c connections, $build, round $r: $(field "$RESULTS/misses-udp-$c-$build-r$r.json" qps) q/s"
      done
    done
  done
  stop_all
  {
    echo "### DNS misses over UDP (\`dnsd bench --dns udp --mode R\`, names never asked before)"
    echo
    echo "| connections | before q/s | after q/s | after / before | after p99 |"
    echo "|---:|---:|---:|---:|---:|"
    for c in 8 64; do
      local a b p99
      a=$(median_of qps "$RESULTS"/misses-udp-$c-after-r*.json)
      p99=$(median_of p99_us "$RESULTS"/misses-udp-$c-after-r*.json)
      if [ -n "$BEFORE" ]; then
        b=$(median_of qps "$RESULTS"/misses-udp-$c-before-r*.json)
        python3 -c "import sys; a, b, p = map(float, sys.argv[1:]); print(f'| $c | {b:,.0f} | {a:,.0f} | {a / b:.2f}x | {p / 1000:.1f} ms |')" "$a" "$b" "$p99"
      else
        python3 -c "import sys; a, p = map(float, sys.argv[1:]); print(f'| $c | | {a:,.0f} | | {p / 1000:.1f} ms |')" "$a" "$p99"
      fi
    done
    echo
  } >>"$OUTMD"
}

# --- dead: one TLD dead, misses for it at 50 q/s ----------------------------------------

# The dead misses: 50 q/s of A questions (RD set) for names never asked under net, sent to
# ADDR for SECS seconds from one socket, open loop; then every answer's rcode and time.
# Writes a JSON summary to OUT.
dead_load() {
  python3 - "$@" <<'EOF'
import json, socket, sys, threading, time
import dns.message, dns.rcode
host, port = sys.argv[1].rsplit(":", 1)
secs, out, rate = float(sys.argv[2]), sys.argv[3], 50.0
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.2)
sent, got = {}, {}
done = threading.Event()
def receive():
    while not done.is_set() or len(got) < len(sent):
        try:
            data = sock.recv(4096)
        except socket.timeout:
            if done.is_set() and time.monotonic() > done.deadline:
                return
            continue
        msg = dns.message.from_wire(data)
        if msg.id in sent and msg.id not in got:
            got[msg.id] = (dns.rcode.to_text(msg.rcode()), time.monotonic() - sent[msg.id])
rx = threading.Thread(target=receive)
rx.start()
start = time.monotonic()
n = 0
while time.monotonic() - start < secs:
    q = dns.message.make_query(f"d{n}.{int(start)}.example.net", "A")
    q.flags |= dns.flags.RD
    q.id = n
    sent[n] = time.monotonic()
    sock.sendto(q.to_wire(), (host, int(port)))
    n += 1
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
done.deadline = time.monotonic() + 10
done.set()
rx.join()
times = sorted(t for _, t in got.values())
rcodes = {}
for rcode, _ in got.values():
    rcodes[rcode] = rcodes.get(rcode, 0) + 1
json.dump({
    "sent": len(sent), "answered": len(got), "rcodes": rcodes,
    "p50_ms": times[len(times) // 2] * 1000 if times else None,
    "max_ms": times[-1] * 1000 if times else None,
}, open(out, "w"))
EOF
}

part_dead() {
  log "misses.sh: one TLD dead, misses for it at 50 q/s"
  local silent build local r first=0 load state
  # Each build, each round, a fresh hierarchy: one that falls behind under the load (the
  # dead TLD's misses queued) would still be behind when the next round measures it idle.
  for r in $(seq "$ROUNDS"); do
    for build in "${BUILDS[@]}"; do
      silent_port >/dev/null
      silent=$(cat "$WORK/silent.port")
      hierarchy "$build" "dead-$build-r$r" "net 127.0.0.1 $silent" >"$WORK/dead.local"
      local=$(cat "$WORK/dead.local")
      bench "$build" "$WORK/warm.json" --server "$local" --dns udp --mode R --requests 1 \
        --pattern www.wikipedia.org
      for state in idle loaded; do
        load=""
        if [ "$state" = loaded ]; then
          # Measured from 3 s into the load: the first misses for the dead server wait
          # out the upstream timeout (2 s) before it is known to be dead.
          dead_load "$local" "$((2 * SECS + 4))" "$RESULTS/misses-deadload-$build-r$r.json" &
          load=$!
          track "$load"
          sleep 3
        fi
        bench "$build" "$RESULTS/misses-dead-hit-$state-$build-r$r.json" --server "$local" \
          --dns udp --mode R --connections 1 --duration "$SECS" --pattern www.wikipedia.org
        bench "$build" "$RESULTS/misses-dead-miss-$state-$build-r$r.json" --server "$local" \
          --dns udp --mode R --connections 8 --duration "$SECS" --first "$first" \
          --pattern 'www.l{n}.org'
        first=$((first + 10000000))
        [ -z "$load" ] || wait "$load"
        log "  dead TLD, $build, round $r, $state: cached p50 $(field "$RESULTS/misses-dead-hit-$state-$build-r$r.json" p50_us) µs, org misses $(field "$RESULTS/misses-dead-miss-$state-$build-r$r.json" qps) q/s"
      done
      stop_all
      rm -f "$WORK/silent.port"
    done
  done
  {
    echo "### One TLD dead, misses for it at 50 q/s (upstream timeout 2 s)"
    echo
    echo "A cached org name (\`www.wikipedia.org\`, 1 connection) and misses under org (8"
    echo "connections), over UDP, each idle and while misses for names under the dead TLD"
    echo "arrive at 50 q/s (measured from 3 s into that load, once the first of them have"
    echo "timed out). Targets: cached median within 2x of idle; org misses at least 0.8x"
    echo "their idle rate; the dead misses SERVFAIL within the upstream timeout. A fresh"
    echo "hierarchy for each build and round."
    echo
    echo "| build | cached p50 idle / loaded | loaded / idle | org misses q/s idle / loaded | loaded / idle | errors under load | dead misses answered | their rcodes | their slowest |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|"
    for build in "${BUILDS[@]}"; do
      python3 - "$RESULTS" "$build" <<'EOF'
import glob, json, statistics, sys
d, b = sys.argv[1], sys.argv[2]
def med(kind, state, key):
    return statistics.median(json.load(open(f))[key] for f in glob.glob(f"{d}/misses-dead-{kind}-{state}-{b}-r*.json"))
def total(kind, state, key):
    return sum(json.load(open(f))[key] for f in glob.glob(f"{d}/misses-dead-{kind}-{state}-{b}-r*.json"))
def failed(kind, state):
    return sum(1 for f in glob.glob(f"{d}/misses-dead-{kind}-{state}-{b}-r*.json") if json.load(open(f)).get("failed"))
hi, hl = med("hit", "idle", "p50_us"), med("hit", "loaded", "p50_us")
mi, ml = med("miss", "idle", "qps"), med("miss", "loaded", "qps")
errors = total("hit", "loaded", "errors") + total("miss", "loaded", "errors")
unanswered = failed("hit", "loaded") + failed("miss", "loaded")
loads = [json.load(open(f)) for f in glob.glob(f"{d}/misses-deadload-{b}-r*.json")]
sent = sum(l["sent"] for l in loads)
answered = sum(l["answered"] for l in loads)
rcodes = {}
for l in loads:
    for k, v in l["rcodes"].items():
        rcodes[k] = rcodes.get(k, 0) + v
slowest = max((l["max_ms"] or 0) for l in loads) if loads else 0
codes = ", ".join(f"{k} {v}" for k, v in sorted(rcodes.items()))
hit = f"{hl / hi:.2f}x" if hi and hl else "-"
miss = f"{ml / mi:.2f}x" if mi else "-"
if unanswered:
    errors = f"{errors}, and {unanswered} run(s) with no answer at all"
print(f"| {b} | {hi:.0f} / {hl:.0f} µs | {hit} | {mi:,.0f} / {ml:,.0f} | {miss} | {errors} | {answered} of {sent} | {codes} | {slowest / 1000:.2f} s |")
EOF
    done
    echo
  } >>"$OUTMD"
}

# --- unbound: dnsd local against Unbound as iterators, in a network namespace ------------

part_unbound() {
  local missing=""
  [ "$(id -u)" = 0 ] || missing="$missing root"
  for tool in ip dnsperf unbound; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
  done
  if [ -n "$missing" ]; then
    log "misses.sh: no$missing: skipping the comparison with Unbound"
    printf '### DNS misses beside Unbound\n\nNot measured: no%s.\n\n' "$missing" >>"$OUTMD"
    return
  fi
  NETNS=dnsd-misses-$$
  ip netns add "$NETNS" || {
    log "misses.sh: cannot make a network namespace; skipping the comparison with Unbound"
    NETNS=""
    printf '### DNS misses beside Unbound\n\nNot measured: no network namespace could be made.\n\n' >>"$OUTMD"
    return
  }
  ip netns exec "$NETNS" ip link set lo up
  log "misses.sh: DNS misses, dnsd local beside Unbound, dnsperf -c 8 -q 100 -l $SECS, in $NETNS"
  local ns=(ip netns exec "$NETNS")
  # The authorities, on port 53 each at its own address, from BIN.
  start ns-com "${ns[@]}" "$BIN" tld com zones/com.dat --bind 127.0.0.11 --port 53 >/dev/null
  printf 'com 127.0.0.11 53\n' >"$WORK/ns-root.dat"
  start ns-root "${ns[@]}" "$BIN" root "$WORK/ns-root.dat" --bind 127.0.0.2 --port 53 >/dev/null
  # The resolvers: each build's local server, and Unbound with 1 and 2 threads.
  local targets=() build port=5400 threads
  for build in "${BUILDS[@]}"; do
    mkdir -p "$WORK/ns-logs-$build"
    start "ns-local-$build" "${ns[@]}" "$(bin_of "$build")" local --root 127.0.0.2:53 \
      --port "$port" --log-dir "$WORK/ns-logs-$build" >/dev/null
    targets+=("dnsd-$build:$port")
    port=$((port + 1))
  done
  for threads in 1 2; do
    sed -e "s|@PORT@|$port|" -e "s|@DIR@|$WORK|" scripts/unbound-base.conf |
      sed -e "s|num-threads: 1|num-threads: $threads|" >"$WORK/unbound-$threads.conf"
    cat >>"$WORK/unbound-$threads.conf" <<EOF
server:
    qname-minimisation: no
stub-zone:
    name: "."
    stub-addr: 127.0.0.2@53
    stub-prime: no
EOF
    "${ns[@]}" unbound -d -c "$WORK/unbound-$threads.conf" 2>"$WORK/unbound-$threads.err" &
    track $!
    targets+=("unbound-$threads:$port")
    port=$((port + 1))
  done
  # Wait (bounded) until each answers a name from com.
  local t name p ok
  for t in "${targets[@]}"; do
    name=${t%%:*} p=${t##*:} ok=""
    for _ in $(seq 100); do
      if "${ns[@]}" dig +short +time=1 +tries=1 @127.0.0.1 -p "$p" www.google.com A 2>/dev/null | grep -q .; then
        ok=1
        break
      fi
      sleep 0.1
    done
    [ -n "$ok" ] || die "$name (port $p) does not resolve www.google.com"
  done
  local r n
  for r in $(seq "$ROUNDS"); do
    for t in "${targets[@]}"; do
      name=${t%%:*} p=${t##*:}
      # Names never asked before, more than a run can use.
      awk -v r="$r" -v s="$name" 'BEGIN { for (i = 0; i < 400000; i++) printf "www.%s-r%d-%d.com A\n", s, r, i }' \
        >"$WORK/names.txt"
      "${ns[@]}" dnsperf -s 127.0.0.1 -p "$p" -c 8 -q 100 -l "$SECS" -d "$WORK/names.txt" \
        >"$RESULTS/misses-dnsperf-$name-r$r.txt" 2>&1 || true
      n=$(grep -o 'Queries per second: *[0-9.]*' "$RESULTS/misses-dnsperf-$name-r$r.txt" | grep -o '[0-9.]*$' || echo 0)
      log "  $name, round $r: $n q/s"
    done
  done
  stop_all
  ip netns delete "$NETNS" 2>/dev/null || true
  NETNS=""
  {
    echo "### DNS misses beside Unbound (dnsperf -c 8 -q 100, names never asked before)"
    echo
    echo "dnsd local and Unbound (\`module-config: \"iterator\"\`, qname minimisation off, \`.\`"
    echo "a stub zone at the dnsd root), each resolving \`www.NAME.com\` through the same"
    echo "dnsd root (127.0.0.2:53) and com (127.0.0.11:53) servers, in a network namespace."
    echo "Unbound caches the com delegation and asks the root once; so does dnsd local since"
    echo "its delegation cache (a build without one asks the root for every miss)."
    echo
    python3 - "$RESULTS" "${targets[@]}" <<'EOF'
import glob, re, statistics, sys
d, targets = sys.argv[1], [t.split(":")[0] for t in sys.argv[2:]]
def qps(name):
    values = []
    for f in glob.glob(f"{d}/misses-dnsperf-{name}-r*.txt"):
        m = re.search(r"Queries per second:\s*([0-9.]+)", open(f).read())
        values.append(float(m.group(1)) if m else 0.0)
    return statistics.median(values) if values else 0.0
def lost(name):
    total = 0
    for f in glob.glob(f"{d}/misses-dnsperf-{name}-r*.txt"):
        m = re.search(r"Queries lost:\s*([0-9]+)", open(f).read())
        total += int(m.group(1)) if m else 0
    return total
u1, u2 = qps("unbound-1"), qps("unbound-2")
print("| resolver | misses q/s | × Unbound 1 thread | × Unbound 2 threads | lost |")
print("|---|---:|---:|---:|---:|")
for t in targets:
    q = qps(t)
    a = f"{q / u1:.2f}x" if u1 else "-"
    b = f"{q / u2:.2f}x" if u2 else "-"
    print(f"| {t} | {q:,.0f} | {a} | {b} | {lost(t)} |")
EOF
    echo
  } >>"$OUTMD"
}

for part in $PARTS; do
  case "$part" in
    udp) part_udp ;;
    dead) part_dead ;;
    unbound) part_unbound ;;
    *) die "unknown part $part (udp, dead, unbound)" ;;
  esac
done
log "misses.sh: wrote $OUTMD"
cat "$OUTMD" >&2
