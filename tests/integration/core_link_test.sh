#!/usr/bin/env bash
# plexus-core-link: a measurement on two cores of this process's mask (both figures positive,
# in the text and the JSON form), and a clear error with the documented exit code for bad
# arguments, a core outside the mask, and a mask of one core. Checks no timing.
set -euo pipefail
tool=$1/plexus-core-link
fail() { echo "FAIL: $*"; exit 1; }

# Runs the tool; prints "rc|output".
run() { local out rc=0; out=$("$@" 2>&1) || rc=$?; echo "$rc|$out"; }

if [[ $(nproc) -ge 2 ]]; then
  r=$(run "$tool")
  [[ $r =~ ^0\|cores\ [0-9]+,[0-9]+:\ cache\ line\ hand-off\ [0-9]+\ ns ]] || fail "text: $r"
  r=$(run "$tool" --json)
  [[ $r =~ ^0\|\{\"cores\":\ \[[0-9]+,\ [0-9]+\],\ \"hand_off_ns\":\ ([0-9.]+),\ \"read_GBps\":\ ([0-9.]+)\} ]] ||
    fail "json: $r"
  awk -v a="${BASH_REMATCH[1]}" -v b="${BASH_REMATCH[2]}" 'BEGIN { exit !(a > 0 && b > 0) }' ||
    fail "a figure is not positive: $r"
else
  echo "one core here: only the error paths are checked"
fi

r=$(run "$tool" --cores 1,1)
[[ $r == 2\|*"two different core numbers"* ]] || fail "--cores 1,1: $r"
r=$(run "$tool" --cores x)
[[ $r == 2\|*"two core numbers"* ]] || fail "--cores x: $r"
r=$(run "$tool" --bogus)
[[ $r == 2\|*"unknown option --bogus"* ]] || fail "--bogus: $r"
r=$(run taskset -c 0 "$tool")
[[ $r == 1\|*"one core only"* ]] || fail "one core: $r"
r=$(run taskset -c 0 "$tool" --cores 0,1)
[[ $r == 1\|*"core 1 is not in this process's affinity mask"* ]] || fail "core outside the mask: $r"
echo "PASS"
