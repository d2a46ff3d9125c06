#!/usr/bin/env bash
# plexus-zero-copy (bench/compare/zero_copy_allreduce.cc), the reference compare.py sets beside
# Plexus: bad arguments exit 2 with the reason and the usage; a run on 3 ranks (blocks of
# unequal length), the staged all-reduce alone on 2 and 3 ranks in several rounds (1 MB: blocks over
# the 64 KiB piece) and the copy alone exit 0 with every output checked and write their
# JSON. Checks no timing.
set -euo pipefail
tool=$1/plexus-zero-copy
fail() { echo "FAIL: $*"; exit 1; }
run() { local out rc=0; out=$("$@" 2>&1) || rc=$?; echo "$rc|$out"; }

expect_usage() {
  local why=$1 r
  shift
  r=$(run "$tool" "$@")
  [[ $r == 2\|*"$why"* ]] || fail "plexus-zero-copy $*: wanted exit 2 and '$why', got: $r"
  [[ $r == *"usage: plexus-zero-copy [-n RANKS]"* ]] || fail "plexus-zero-copy $*: no usage: $r"
}
expect_usage "-n wants a whole number from 2 to 64, not '1'" -n 1
expect_usage "-b is larger than -e" -b 1M -e 8k
expect_usage "-b is below one f32" -b 2
expect_usage "-m wants all, allreduce, staged or copy" -m both
expect_usage "-r needs a value" -r
expect_usage "unknown option --bogus" --bogus 1

json=$(mktemp)
trap 'rm -f "$json"' EXIT
r=$(run "$tool" -n 3 -b 1000 -e 64k -f 8 -i 3 -r 1 --json "$json")
[[ $r == 0\|*"# wrong values: 0 OK"* ]] || fail "3 ranks: $r"
/usr/bin/python3 - "$json" <<'PY' || fail "3 ranks: bad JSON: $(cat "$json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ranks"] == 3 and d["wrong"] == 0
assert [x["bytes"] for x in d["results"]] == [1000, 8000, 64000], d
assert all(x["time_us"] > 0 and x["busbw"] > 0 and x["ceiling"] > 0 and x["staged"] > 0
           for x in d["results"]), d
PY
for n in 2 3; do
  r=$(run "$tool" -n $n -m staged -b 1000000 -e 1000000 -i 2 -r 1)
  [[ $r == 0\|*"# wrong values: 0 OK"* ]] || fail "staged alone, $n ranks: $r"
done
r=$(run "$tool" -n 2 -m copy -b 64k -e 64k -i 2 -r 1)
[[ $r == 0\|*"# wrong values: 0 OK"* ]] || fail "copy alone: $r"
echo "zero_copy_test: OK"
