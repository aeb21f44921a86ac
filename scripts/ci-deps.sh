#!/usr/bin/env bash
# Installs the outside DNS tools the tests drive, from Debian (apt-get), and dnspython for
# the python3 on PATH. Idempotent: installs only what is missing. Never leaves a packaged
# service (unbound, nsd, kresd, pdns-recursor) running: a policy-rc.d forbids starts
# during the install, and on a host that runs systemd the units are stopped and disabled.
#
# usage: scripts/ci-deps.sh [TOOL...]
#   TOOL: dig unbound dnspython (what `cargo test` needs: the default), logrotate (the
#         log rotation test, with examples/logrotate.conf), knot-resolver
#         pdns-recursor nsd (the interop tests; nsd also for the benchmarks and, with
#         named-checkzone, the master-file checks `dnsd check` agrees with), kdig
#         (Knot's dig: the zone transfer tests), dnsperf
#         (benchmarks), dnsviz zonemaster (compliance probes), chromium (headless Chromium
#         and its WebDriver, chromedriver: the web page's browser test), or `all`.
#   DNS_DEPS="TOOL..." gives the list when no argument does.
# Exit 1 if a tool is still missing afterwards.
set -euo pipefail

log() { echo "ci-deps: $*" >&2; }

TEST_TOOLS=(dig unbound dnspython)
ALL_TOOLS=(dig unbound dnspython logrotate knot-resolver pdns-recursor nsd kdig named-checkzone dnsperf dnsviz zonemaster chromium)
if [ $# -gt 0 ]; then
  tools=("$@")
elif [ -n "${DNS_DEPS:-}" ]; then
  read -r -a tools <<<"$DNS_DEPS"
else
  tools=("${TEST_TOOLS[@]}")
fi
if [ "${tools[*]}" = all ]; then tools=("${ALL_TOOLS[@]}"); fi

PY=${PYTHON:-python3}
PATH="$PATH:/usr/sbin"

# Whether TOOL works here, and which Debian package provides it.
has() {
  case "$1" in
    dig) command -v dig >/dev/null 2>&1 ;;
    unbound) command -v unbound >/dev/null 2>&1 ;;
    knot-resolver) command -v kresd >/dev/null 2>&1 ;;
    pdns-recursor) command -v pdns_recursor >/dev/null 2>&1 ;;
    nsd) command -v nsd >/dev/null 2>&1 ;;
    kdig) command -v kdig >/dev/null 2>&1 ;;
    named-checkzone) command -v named-checkzone >/dev/null 2>&1 ;;
    dnsperf) command -v dnsperf >/dev/null 2>&1 ;;
    dnsviz) command -v dnsviz >/dev/null 2>&1 ;;
    zonemaster) command -v zonemaster-cli >/dev/null 2>&1 ;;
    dnspython) "$PY" -c 'import dns.message, dns.query' >/dev/null 2>&1 ;;
    logrotate) command -v logrotate >/dev/null 2>&1 ;;
    chromium) command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 ;;
    *) log "unknown tool $1 (known: ${ALL_TOOLS[*]})"; exit 2 ;;
  esac
}
package() {
  case "$1" in
    dig) echo bind9-dnsutils ;;
    kdig) echo knot-dnsutils ;;
    named-checkzone) echo bind9utils ;;
    zonemaster) echo zonemaster-cli ;;
    dnspython) echo python3-dnspython ;;
    chromium) echo chromium chromium-driver ;;
    *) echo "$1" ;;
  esac
}

missing=()
pip_dnspython=0
for tool in "${tools[@]}"; do
  has "$tool" && continue
  if [ "$tool" = dnspython ] && [ "$(command -v "$PY")" != /usr/bin/python3 ]; then
    pip_dnspython=1 # Debian's package serves /usr/bin/python3 only
  else
    read -r -a pkgs <<<"$(package "$tool")" # chromium is two packages
    missing+=("${pkgs[@]}")
  fi
done

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ]; then
    log "missing ${missing[*]} and not root: cannot install"; exit 1
  fi
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get: install ${missing[*]} by hand"; exit 1; }
  log "installing ${missing[*]}"
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  cleanup() { if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT
  start=$(date +%s)
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  log "apt-get install took $(($(date +%s) - start)) s"
  # On a host that really runs systemd, the units were enabled: stop and disable them.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for unit in unbound.service unbound-resolvconf.service nsd.service kresd@1.service \
      kres-cache-gc.service pdns-recursor.service; do
      $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
  cleanup
  trap - EXIT
fi

if [ "$pip_dnspython" = 1 ]; then
  log "pip-installing dnspython for $(command -v "$PY")"
  "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore dnspython \
    || "$PY" -m pip install -q --disable-pip-version-check dnspython
fi

ok=1
for tool in "${tools[@]}"; do
  if has "$tool"; then log "$tool: ok"; else log "still missing: $tool"; ok=0; fi
done
[ "$ok" = 1 ]
