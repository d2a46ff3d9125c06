#!/usr/bin/env bash
# hier_vs_flat: the hierarchical all-reduce against the flat ones in the netsim test bed, side by
# side in one run: for each layout (nodes x ranks per node) and each algorithm (forced with -a,
# and the automatic choice), rounds of plexus-perf over shaped inter-node links, interleaved so
# that the VM's drifts hit every algorithm alike. Prints one table per layout: the best busbw
# (from the time of the faster placement, so to more digits than plexus-perf prints) of the
# rounds per size and algorithm, and hier's ratio to the flat ring.
#
#   hier_vs_flat.sh [--rate 1gbit] [--layouts "2x2 2x4"] [--algos "ring rhd tree hier auto"]
#                   [--rounds 2] [-b 4M] [-e 64M] [--build build]
#
# Intra-node links use UCX shared memory (PLEXUS_TRANSPORT_INTRA=ucx:sm,self unless set);
# inter-node links TCP on the shaped interface (netsim's defaults). Needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rate=1gbit
layouts="2x2 2x4"
algos="ring rhd tree hier auto"
rounds=2
min=4M
max=64M
build=build
while [[ $# -gt 0 ]]; do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --layouts) layouts=$2; shift 2 ;;
    --algos) algos=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -b) min=$2; shift 2 ;;
    -e) max=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
export PLEXUS_TRANSPORT_INTRA=${PLEXUS_TRANSPORT_INTRA:-ucx:sm,self}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for layout in $layouts; do
  nodes=${layout%x*}
  per=${layout#*x}
  for ((round = 0; round < rounds; round++)); do
    for algo in $algos; do
      # plexus-perf's table: "size count type redop root time algbw busbw #wrong" twice.
      # The automatic runs log the selector's choice (PLEXUS_DEBUG=INFO) into "$out/choice".
      debug=WARN
      [[ $algo == auto ]] && debug=INFO
      PLEXUS_DEBUG=$debug "$here/netsim.sh" run "$nodes" --rate "$rate" --prefix pxh \
        -n $((nodes * per)) -- \
        "$build/plexus-perf" allreduce -b "$min" -e "$max" -f 4 -n 3 -w 1 -a "$algo" \
        2>&1 | awk -v a="$algo" -v choice="$out/choice.$layout" -v n=$((nodes * per)) '
          $1 == "[0]" && $2 ~ /^[0-9]+$/ {
            if ($10 != 0 || $14 != 0) { print "WRONG", a, $2 > "/dev/stderr" }
            t = ($7 < $11 ? $7 : $11)  # faster of out-of-place and in-place, us
            print a, $2, $2 / t / 1e3 * 2 * (n - 1) / n }
          $1 == "[0]" && /INFO: allreduce of [0-9]+ bytes/ && index($0, "on " n " ranks:") {
            for (i = 1; i <= NF; i++) if ($i == "of") { b = $(i + 1); c = $(i + 6) }
            print b, c > choice }
          /^netsim: rank|WRONG|plexus-perf:/ { print > "/dev/stderr" }' >> "$out/$layout" ||
        echo "hier_vs_flat: $layout $algo round $round failed; its sizes are missing" >&2
    done
  done
  echo "## $nodes nodes x $per ranks, inter-node links $rate (best of $rounds rounds, busbw GB/s)"
  awk -v algos="$algos" '
    { if (!($1 SUBSEP $2 in best) || $3 > best[$1, $2]) best[$1, $2] = $3; sizes[$2] = 1 }
    END {
      n = split(algos, a, " ")
      printf "| bytes |"; for (i = 1; i <= n; i++) printf " %s |", a[i]; print " hier / ring |"
      printf "|---:|"; for (i = 1; i <= n; i++) printf "---:|"; print "---:|"
      m = 0; for (s in sizes) order[++m] = s + 0
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (order[j] < order[i]) {
        t = order[i]; order[i] = order[j]; order[j] = t }
      for (k = 1; k <= m; k++) {
        s = order[k]; printf "| %d |", s
        for (i = 1; i <= n; i++) printf " %.3f |", best[a[i], s]
        r = best["ring", s] > 0 ? best["hier", s] / best["ring", s] : 0
        printf " %.2f |\n", r
      }
    }' "$out/$layout"
  if [[ -f $out/choice.$layout ]]; then
    sort -un "$out/choice.$layout" |
      awk '{ printf "%s%s B: %s", (NR > 1 ? ", " : "automatic choice: "), $1, $2 } END { print "" }'
  fi
  echo
done
