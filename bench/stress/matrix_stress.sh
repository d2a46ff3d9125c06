#!/usr/bin/env bash
# Matrix stress: many short plexus-perf runs (-c 1: every value checked), each a random draw of
# collective × algorithm (the selector's own choice among them) × world size × data type ×
# reduction × shm store mode (PLEXUS_SHM_STORES) × heap or memAlloc buffers (-R) × a size range
# that starts and ends at odd byte counts, so that blocks, pieces and the store-mode thresholds
# fall at uneven places. A run passes when plexus-perf exits 0 and reports no wrong value; a
# failure prints the command to replay it and the end of its output. Exits 1 when any run
# failed, 2 for bad arguments. The same seed draws the same runs.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [-b BUILD_DIR] [-r RUNS] [--seed S] [--ranks 2,3,4,5,7] [--max-bytes B]
  -b          build directory with plexusrun and plexus-perf (default: build)
  -r          runs (default 200; about 0.3-1 s each on 2 cores)
  --seed      seed of the draws (default 1)
  --ranks     world sizes to draw from (default 2,3,4,5,7)
  --max-bytes largest message (default 20000000)
EOF
}

build=build runs=200 seed=1 ranks=2,3,4,5,7 maxBytes=20000000
while (($#)); do
  case $1 in
    -b) build=$2; shift 2 ;;
    -r) runs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --max-bytes) maxBytes=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[0-9]+$ && $seed =~ ^[0-9]+$ && $maxBytes =~ ^[0-9]+$ && $ranks =~ ^[0-9,]+$ ]] || {
  usage >&2
  exit 2
}
for tool in plexusrun plexus-perf; do
  [[ -x $build/$tool ]] || { echo "matrix_stress: no $tool in $build" >&2; exit 2; }
done

declare -A algos=([allreduce]="ring rhd tree shm hier auto" [broadcast]="tree ring auto"
                  [reduce]="tree ring auto" [allgather]="ring shm auto"
                  [reducescatter]="ring shm auto" [alltoall]="pairwise" [sendrecv]="group")
collectives=(allreduce broadcast reduce allgather reducescatter alltoall sendrecv)
types=(float double half bfloat16 int8 uint8 int32 int64)
ops=(sum prod min max avg)
stores=(auto plain streaming)
IFS=, read -r -a sizes <<<"$ranks"
pick() {  # pick NAME WORD...: NAME = one of the words
  local -n into=$1
  shift
  local words=("$@")
  into=${words[RANDOM % ${#words[@]}]}
}

RANDOM=$seed
failed=0
for ((i = 1; i <= runs; i++)); do
  pick c "${collectives[@]}"
  read -r -a choices <<<"${algos[$c]}"
  pick a "${choices[@]}"
  pick n "${sizes[@]}"
  pick t "${types[@]}"
  pick o "${ops[@]}"
  pick s "${stores[@]}"
  b=$((1 + RANDOM % 3000))
  e=$((b * (1 + RANDOM % 4000)))
  ((e <= maxBytes)) || e=$maxBytes
  ((b <= e)) || b=$e
  r=$((RANDOM % 4 == 0 ? 1 : 0))
  algo=()
  [[ $a == auto ]] || algo=(-a "$a")
  cmd=(env PLEXUS_SHM_STORES="$s" "$build/plexusrun" -n "$n" --timeout 120 -- "$build/plexus-perf"
       "$c" "${algo[@]}" -b "$b" -e "$e" -f 5 -n 2 -w 1 -c 1 -d "$t" -o "$o" -R "$r")
  if out=$("${cmd[@]}" 2>&1) && grep -q "Out of bounds values : 0 OK" <<<"$out"; then
    continue
  fi
  failed=$((failed + 1))
  echo "FAIL (run $i): ${cmd[*]}"
  grep -v '^\[[0-9]*\] *[0-9]' <<<"$out" | tail -4 | sed 's/^/  /'
done
echo "# matrix_stress: $runs runs (seed $seed), $failed failed"
((failed == 0))
