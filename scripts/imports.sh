#!/usr/bin/env bash
# The import graph of src/: one line per module, `MODULE -> MODULES IT IMPORTS` (from its
# `use crate::...` and `crate::...` paths), then whether the graph has a cycle (tsort
# says so). Exit 1 on a cycle.
#
# usage: scripts/imports.sh [--edges]   (--edges: print `FROM TO` pairs only)
set -euo pipefail
cd "$(dirname "$0")/../src"

# The module a file is: src/a/b.rs and src/a/b/mod.rs are a::b; lib.rs and main.rs are
# the crate itself.
module_of() {
  local f=${1%.rs}
  f=${f%/mod}
  case $f in lib | main) echo crate ;; *) echo "${f//\//::}" ;; esac
}

# The longest prefix of PATH (a::b::c) that is a module with a file of its own.
resolve() {
  local path=$1
  while [ -n "$path" ]; do
    local file=${path//:://}
    if [ -f "$file.rs" ] || [ -f "$file/mod.rs" ]; then
      echo "$path"
      return
    fi
    case $path in *::*) path=${path%::*} ;; *) return ;; esac
  done
}

edges() {
  find . -name '*.rs' | sed 's|^\./||' | sort | while read -r file; do
    local from
    from=$(module_of "$file")
    # Paths named in the file outside its tests: `crate::a::b` and `use crate::a::{b, c}`.
    sed '/^#\[cfg(test)\]/,$d' "$file" |
      grep -v '^\s*//' |
      grep -o 'crate::[a-z_:]*\({[a-z_, :{}A-Za-z]*}\)\?' |
      sed 's/^crate:://' |
      while read -r path; do
        case $path in
          *'{'*)
            local base=${path%%\{*} inner=${path#*\{}
            inner=${inner%\}}
            for part in ${inner//,/ }; do
              part=${part//[{}]/}
              [ -n "$part" ] && [ "$part" != self ] && echo "${base}${part}"
            done
            echo "${base%::}"
            ;;
          *) echo "${path%::}" ;;
        esac
      done |
      while read -r path; do
        local to
        to=$(resolve "$path")
        [ -n "$to" ] && [ "$to" != "$from" ] && echo "$from $to"
      done
  done | sort -u
}

if [ "${1:-}" = --edges ]; then
  edges
  exit 0
fi
graph=$(edges)
# A module imports its own parent's items (`super`, or `crate::a` from `a::b`) without
# a cycle in the sense that matters; keep those edges anyway: tsort decides.
awk '{ out[$1] = out[$1] " " $2 } END { for (m in out) print m " ->" out[m] }' <<<"$graph" | sort
if tsort <<<"$graph" >/dev/null 2>"${TMPDIR:-/tmp}/imports.$$"; then
  echo "no import cycle"
  rm -f "${TMPDIR:-/tmp}/imports.$$"
else
  echo "import cycle:"
  cat "${TMPDIR:-/tmp}/imports.$$"
  rm -f "${TMPDIR:-/tmp}/imports.$$"
  exit 1
fi
