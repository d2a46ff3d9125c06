#!/usr/bin/env bash
# plexus-perf's command line (bench/perf/sweep.h, shared with the peer benchmarks): every bad
# argument exits 2 with the reason and the usage on stderr, before any communicator exists; a
# root outside the job exits 2 on every rank; a good run exits 0 with the nccl-tests table and
# writes its JSON. Checks no timing.
set -euo pipefail
build=$1
perf=$build/plexus-perf
fail() { echo "FAIL: $*"; exit 1; }

# Runs a command; prints "rc|output".
run() { local out rc=0; out=$("$@" 2>&1) || rc=$?; echo "$rc|$out"; }

# expect_usage REASON ARGS...: exit 2, REASON and the synopsis in the output.
expect_usage() {
  local why=$1 r
  shift
  r=$(run "$perf" "$@")
  [[ $r == 2\|*"$why"* ]] || fail "plexus-perf $*: wanted exit 2 and '$why', got: $r"
  [[ $r == *"usage: plexus-perf COLLECTIVE [-b MIN]"* ]] || fail "plexus-perf $*: no usage: $r"
  [[ $r == *"collectives: allreduce broadcast"* ]] || fail "plexus-perf $*: no collectives: $r"
}

expect_usage "missing COLLECTIVE"
expect_usage "unknown collective 'bogus'" bogus
expect_usage "-n wants an integer in [1, 1000000], got '0'" allreduce -n 0
expect_usage "-f wants an integer in [2, 1024], got 'x'" allreduce -f x
expect_usage "-b wants a size like 8, 64k, 32M" allreduce -b 12q
expect_usage "-b is larger than -e" allreduce -b 1M -e 8
expect_usage "unknown type 'f33'" allreduce -d f33
expect_usage "unknown op 'mean'" allreduce -o mean
expect_usage "-w needs a value" allreduce -w
expect_usage "unknown option --bogus" allreduce --bogus 1
expect_usage "-R wants an integer in [0, 1], got '2'" allreduce -R 2

# -h / --help, first or after the collective: the usage on stdout, exit 0.
for args in "-h" "--help" "allreduce -b 8 --help"; do
  # shellcheck disable=SC2086
  out=$("$perf" $args 2>/dev/null) || fail "plexus-perf $args: exit $?"
  [[ $out == *"usage: plexus-perf COLLECTIVE [-b MIN]"* && $out == *"collectives: allreduce"* ]] ||
    fail "plexus-perf $args: no usage on stdout: $out"
done

r=$(run "$build/plexusrun" --timeout 60 -n 2 "$perf" broadcast -r 2 -b 8 -e 8)
[[ $r == 2\|*"plexus-perf broadcast: -r 2 is not a rank of this job (2 ranks)"* ]] ||
  fail "-r past the ranks: $r"

json=$(mktemp)
trap 'rm -f "$json"' EXIT
r=$(run "$build/plexusrun" --timeout 60 -n 2 "$perf" allgather -b 8 -e 64 -f 8 -n 2 -w 1 \
  --json "$json")
[[ $r == 0\|*"plexus-perf allgather: 2 ranks"* ]] || fail "good run: $r"
[[ $r == *"# Out of bounds values : 0 OK"* && $r == *"# Avg bus bandwidth"* ]] ||
  fail "good run, summary: $r"
rows=$(grep -cE '^\[0\] +(8|64) +[0-9]+ +float +sum' <<<"$r") || true
[[ $rows == 2 ]] || fail "good run: wanted rows for 8 and 64 B, got $rows: $r"
grep -q '"collective": "allgather", "ranks": 2' "$json" || fail "json: $(cat "$json")"
[[ $(grep -c '"bytes": ' "$json") == 2 ]] || fail "json rows: $(cat "$json")"
# -R 1: the buffers from plexus::memAlloc (the shm all-reduce's zero-copy path), values checked.
r=$(run "$build/plexusrun" --timeout 60 -n 3 "$perf" allreduce -b 8 -e 1M -f 32 -n 2 -w 1 -R 1)
[[ $r == 0\|*"buffers from the library's allocator (-R 1)"* ]] || fail "-R 1: $r"
[[ $r == *"# Out of bounds values : 0 OK"* ]] || fail "-R 1, summary: $r"
if [[ -x $build/plexus-compare-mpi ]]; then
  r=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 run "$build/plexus-compare-mpi" -R 1)
  [[ $r == 2\|*"-R 1 (buffers from the library's allocator) is not supported"* ]] ||
    fail "plexus-compare-mpi -R 1: $r"
fi
echo "perf_args_test: OK"
