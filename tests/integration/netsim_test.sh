#!/usr/bin/env bash
# The multi-node test bed end to end: 2 emulated nodes x 2 ranks run plexus-perf all-reduce over
# 1 Gbit/s shaped links; the values must be right, inter-node bytes must have crossed the links,
# and nothing may be left behind, also when the script is interrupted mid-run. Exits 77 (ctest
# skip) where network namespaces cannot be created.
set -euo pipefail
src=$1 build=$2
netsim=$src/bench/netsim/netsim.sh
prefix="t$(($$ % 10000000))"  # netsim prefixes are at most 8 characters
log=$(mktemp)
trap 'rm -f "$log"; "$netsim" down --prefix "$prefix" >/dev/null 2>&1 || true' EXIT

probe="${prefix}probe"
if [[ $EUID -ne 0 ]] || ! ip netns add "$probe" 2>/dev/null; then
  echo "SKIP: network namespaces are not permitted here (needs root or CAP_SYS_ADMIN)"
  exit 77
fi
ip netns del "$probe"

leftovers() { ip netns list | awk '{print $1}' | grep -E "^${prefix}-" || true; }
fail() { echo "FAIL: $*"; cat "$log"; exit 1; }

"$netsim" run 2 -n 4 --rate 1gbit --prefix "$prefix" --timeout 120 -- \
  "$build/plexus-perf" allreduce -b 8 -e 1M -c 1 2>&1 | tee "$log" ||
  fail "netsim run exited with ${PIPESTATUS[0]}"
grep -q "Out of bounds values : 0 OK" "$log" || fail "plexus-perf reported wrong values"
grep -Eq "sent over the links: node0 [1-9][0-9]* MiB node1 [1-9]" "$log" ||
  fail "no inter-node traffic crossed the shaped links"
[[ -z $(leftovers) ]] || fail "namespaces left behind: $(leftovers)"

# Interrupted mid-run (TERM: a background job of a script ignores INT): everything is removed.
"$netsim" run 2 --prefix "$prefix" -- sleep 60 >"$log" 2>&1 &
runner=$!
# Wait for netsim's own "up" line (not for namespace names, which appear before bring-up is
# complete); generous, since bringing namespaces up can take seconds on a loaded machine.
for _ in $(seq 600); do
  grep -q "node(s) up" "$log" && break
  kill -0 "$runner" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "node(s) up" "$log"; then
  rc=0
  wait "$runner" || rc=$?
  fail "the test bed did not come up (netsim run exited with $rc)"
fi
kill -TERM "$runner"
wait "$runner" || true
[[ -z $(leftovers) ]] || fail "interrupted run left namespaces behind: $(leftovers)"
echo "PASS"
