#!/usr/bin/env bash
# Writes a com zone of N names, www.h0.com .. www.h{N-1}.com, with addresses derived
# from the number (10.a.b.c), or a list of names from such a zone.
#
#   scripts/genzone.sh zone N dat|toml > FILE   the zone, legacy (`NAME ADDR`) or TOML
#   scripts/genzone.sh names N K > FILE         K distinct names of the N, spread over
#                                               the whole zone (a stride of 7919, a prime)
set -euo pipefail

usage() {
  echo "usage: $0 zone N dat|toml | $0 names N K" >&2
  exit 2
}

[ $# -eq 3 ] || usage
what=$1 n=$2 arg=$3
case "$what" in
  zone)
    case "$arg" in dat | toml) ;; *) usage ;; esac
    awk -v N="$n" -v F="$arg" 'BEGIN {
      if (F == "toml") print "[records]"
      for (i = 0; i < N; i++) {
        a = sprintf("10.%d.%d.%d", int(i / 65536) % 256, int(i / 256) % 256, i % 256)
        if (F == "toml") printf "\"www.h%d.com\" = \"%s\"\n", i, a
        else printf "www.h%d.com %s\n", i, a
      }
    }'
    ;;
  names)
    # 7919 is prime and divides no power of ten, so the first N multiples are distinct
    # modulo N whenever N is a product of 2s and 5s (1,000, 100,000, 1,000,000 ...).
    awk -v N="$n" -v K="$arg" 'BEGIN {
      if (K > N) K = N
      for (i = 0; i < K; i++) printf "www.h%d.com\n", (i * 7919) % N
    }'
    ;;
  *) usage ;;
esac
