#!/usr/bin/env bash
# Kill stress: many trials of "N ranks run an all-reduce loop (plexus-perf), one rank is
# SIGKILLed at a random moment", per transport × all-reduce algorithm × launcher. A trial passes
# when the failure is reported promptly and names the dead rank; anything still running 20 s
# past that bound is a hang (its threads' stacks saved with gdb when installed, then killed; a
# failure). Prints one summary row per combination and exits 1 when any trial failed (2 for bad
# arguments). The ranks inherit the environment: e.g. PLEXUS_UCX_PEER_ERRORS=1 applies to all.
#
# Launchers:
#   manual     each rank a background plexus-perf with the environment torchrun would give it
#              (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1,
#              MASTER_PORT, TORCHELASTIC_RUN_ID) plus PLEXUS_STORE_PORT on a second port, as a
#              job that also runs PyTorch's TCPStore on MASTER_PORT would set. Pass: every
#              survivor exits 1 (not 0, not by a signal) within PLEXUS_TIMEOUT_MS + 2 s, and
#              its stderr names the dead rank ("rank V" as a whole number).
#   plexusrun  build/plexusrun -n N. plexusrun stops the other ranks (SIGTERM) as soon as one
#              dies, so survivors never get to report; pass: plexusrun exits 137 (128+SIGKILL)
#              within the same bound, says "rank V was killed by signal SIGKILL", and no rank
#              process outlives it.
#
# The kill lands 0..--max-delay-ms after rank 0 printed the first table row, i.e. once every
# rank has finished a collective; plexus-perf sweeps 1 KiB..1 MiB so the moment falls on small
# and pipelined messages alike.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [-b BUILD_DIR] [-t TRIALS] [-n RANKS] [--nodes K] [--transports ucx,ofi]
          [--algos ring,tree,rhd] [--launchers manual,plexusrun] [--timeout-ms MS]
          [--max-delay-ms MS] [--seed S] [--logs DIR] [--tolerate REASON,...] [-v]
--nodes: emulate K nodes of N/K ranks each (PLEXUS_NODE_ID; plexusrun --nodes), which the
hierarchical all-reduce needs to be more than a flat one.
--tolerate: failures of these kinds (e.g. unnamed) still count and show, but do not fail the
run; for a known, reported bug in a check that must keep running (ctest).
EOF
  exit 2
}

build=$(cd "$(dirname "$0")/../.." && pwd)/build
trials=50 nranks=3 nodes=1 timeout_ms=3000 max_delay_ms=1000 seed=$$ logs="" verbose=0 tolerate=""
transports=ucx,ofi algos=ring,tree,rhd launchers=manual,plexusrun
while (($#)); do
  case $1 in
    -b) build=$2 ;;
    -t) trials=$2 ;;
    -n) nranks=$2 ;;
    --nodes) nodes=$2 ;;
    --transports) transports=$2 ;;
    --algos) algos=$2 ;;
    --launchers) launchers=$2 ;;
    --timeout-ms) timeout_ms=$2 ;;
    --max-delay-ms) max_delay_ms=$2 ;;
    --seed) seed=$2 ;;
    --logs) logs=$2 ;;
    --tolerate) tolerate=,$2, ;;
    -v) verbose=1 && shift && continue ;;
    *) usage ;;
  esac
  (($# >= 2)) || usage
  shift 2
done
for v in "$trials" "$nranks" "$nodes" "$timeout_ms" "$max_delay_ms" "$seed"; do
  [[ $v =~ ^[0-9]+$ ]] || usage
done
((nranks >= 2)) || { echo "kill_stress: -n needs at least 2 ranks" >&2; exit 2; }
((nodes >= 1 && nranks % nodes == 0)) || { echo "kill_stress: --nodes must divide -n" >&2; exit 2; }
readonly per_node=$((nranks / nodes))
perf=$build/plexus-perf plexusrun=$build/plexusrun
if [[ ! -x $perf || ! -x $plexusrun ]]; then
  echo "kill_stress: no plexus-perf/plexusrun in $build" >&2
  exit 2
fi
RANDOM=$seed  # reproducible victims and delays
# Bash reports every background job that dies by SIGKILL ("line N: PID Killed ..."), which here
# is the point of the exercise: drop those notices, keep everything else on stderr.
exec 2> >(grep -Ev --line-buffered '^.*: line [0-9]+: +[0-9]+ Killed ' >&2)
own_logs=0
[[ -n $logs ]] || logs=$(mktemp -d /tmp/kill_stress.XXXXXX) own_logs=1
mkdir -p "$logs"

readonly bound_us=$(((timeout_ms + 2000) * 1000))  # the promise: survivors gone by then
readonly hang_us=$((bound_us + 20000000))          # past this a process is hung
readonly start_us=30000000                         # ranks must reach the loop by then
perf_args=(allreduce -b 1k -e 1M -f 4 -n 2000 -w 2 -c 1)

now_us() { echo "${EPOCHREALTIME/./}"; }
# Alive and not a zombie (a rank whose parent has not reaped it yet is gone for our purposes).
alive() { [[ -r /proc/$1/stat ]] && [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]; }
# Two free loopback ports: MASTER_PORT (left to the framework) and PLEXUS_STORE_PORT.
free_ports() {
  python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])'
}

started=()  # every pid this script started, for the exit trap (ours only, by pid)
# shellcheck disable=SC2317  # called by the trap
cleanup() { for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Results of the current trial, set by the functions below.
verdict="" last_us=0 seconds=0.00 codes=""
declare -A pid_of=()  # rank -> pid

start_manual() {  # transport algo dir
  local ports master store r job=stress-$$-$RANDOM
  ports=$(free_ports) master=${ports% *} store=${ports#* }
  for ((r = 0; r < nranks; r++)); do
    # torchrun has no node id to give; emulated nodes need one (as plexusrun --nodes sets).
    local node_id=()
    if ((nodes > 1)); then node_id=(PLEXUS_NODE_ID=node$((r / per_node))); fi
    env -u PLEXUS_SECRET -u PLEXUS_STORE_ADDR -u PLEXUS_STORE_HOSTED \
      RANK="$r" WORLD_SIZE="$nranks" LOCAL_RANK=$((r % per_node)) LOCAL_WORLD_SIZE="$per_node" \
      GROUP_RANK=$((r / per_node)) "${node_id[@]}" \
      MASTER_ADDR=127.0.0.1 MASTER_PORT="$master" PLEXUS_STORE_PORT="$store" \
      TORCHELASTIC_RUN_ID="$job" PLEXUS_TRANSPORT="$1" \
      PLEXUS_TIMEOUT_MS="$timeout_ms" "$perf" "${perf_args[@]}" -a "$2" \
      >"$3/out.$r" 2>"$3/err.$r" &
    pid_of[$r]=$! && started+=("$!")
  done
}

start_plexusrun() {  # transport algo dir; sets launcher_pid, then pid_of once ranks exist
  PLEXUS_TRANSPORT=$1 PLEXUS_TIMEOUT_MS=$timeout_ms \
    "$plexusrun" -n "$nranks" --nodes "$nodes" "$perf" "${perf_args[@]}" -a "$2" \
    >"$3/out.0" 2>"$3/err.0" &
  launcher_pid=$! && started+=("$!")
}

# plexusrun's ranks, by their RANK variable (children of plexusrun).
find_plexusrun_ranks() {
  local c r
  for c in $(pgrep -P "$launcher_pid" || true); do
    r=$(tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | sed -n 's/^RANK=//p') || continue
    [[ -n $r ]] && pid_of[$r]=$c && started+=("$c")
  done
  ((${#pid_of[@]} == nranks))
}

# Waits for rank 0's first table row. Fails with the reason in $verdict.
wait_ready() {  # launcher dir
  local t0 p watched=("${pid_of[@]}")
  if [[ -n $launcher_pid ]]; then watched+=("$launcher_pid"); fi
  t0=$(now_us)
  while (($(now_us) - t0 < start_us)); do
    if grep -Eq '^(\[0\])? +[0-9]' "$2/out.0" 2>/dev/null; then
      if [[ $1 == manual ]] || find_plexusrun_ranks; then return 0; fi
    fi
    for p in "${watched[@]}"; do
      alive "$p" && continue
      if grep -hq "algorithm named" "$2"/err.*; then
        verdict="unknown-algorithm: $(grep -hom1 "no allreduce algorithm named[^)]*)" "$2"/err.* |
          head -1)"
      else
        verdict="no-start: exited before the loop: $(grep -hm1 '^plexus' "$2"/err.* | head -1)"
      fi
      return 1
    done
    sleep 0.02
  done
  verdict="no-start: rank 0 printed no row in $((start_us / 1000000)) s"
  if [[ -n $launcher_pid ]]; then
    mapfile -t -O "${#watched[@]}" watched < <(pgrep -P "$launcher_pid")
  fi
  for p in "${watched[@]}"; do dump_stacks "$p" "$2/stacks.$p"; done
  return 1
}

# Polls until every pid in "$@" is gone (sets exit_us[pid]) or the hang limit passes (fails).
declare -A exit_us=()
watch_exits() {  # kill_us pid...
  local k=$1 p left
  shift
  while :; do
    left=0
    for p in "$@"; do
      [[ -n ${exit_us[$p]:-} ]] && continue
      if alive "$p"; then left=1; else exit_us[$p]=$(now_us); fi
    done
    ((left)) || return 0
    if (($(now_us) - k > hang_us)); then return 1; fi
    sleep 0.01
  done
}

# One trial. Sets $verdict ("ok" or "reason: detail"), $last_us (kill to last exit), $seconds
# (the same, formatted) and $codes.
run_trial() {  # transport algo launcher dir
  local transport=$1 algo=$2 launcher=$3 dir=$4 victim delay_ms kill_us r p
  pid_of=() exit_us=() launcher_pid="" verdict="" last_us=0 seconds=0.00 codes=""
  mkdir -p "$dir"
  if [[ $launcher == manual ]]; then
    start_manual "$transport" "$algo" "$dir"
  else
    start_plexusrun "$transport" "$algo" "$dir"
  fi
  if ! wait_ready "$launcher" "$dir"; then
    cleanup_trial
    return 0
  fi
  victim=$((RANDOM % nranks)) delay_ms=$((RANDOM % (max_delay_ms + 1)))
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  echo "victim rank $victim after ${delay_ms} ms" >"$dir/kill"
  if ! alive "${pid_of[$victim]}"; then
    verdict="no-kill: rank $victim ended before the kill (lengthen the sweep)"
    cleanup_trial
    return 0
  fi
  kill -9 "${pid_of[$victim]}"
  kill_us=$(now_us)
  local watched=()
  for r in "${!pid_of[@]}"; do
    if ((r != victim)); then watched+=("${pid_of[$r]}"); fi
  done
  if [[ -n $launcher_pid ]]; then watched+=("$launcher_pid"); fi
  if ! watch_exits "$kill_us" "${watched[@]}"; then
    verdict="hang: still running $((hang_us / 1000000)) s after the kill"
    for p in "${watched[@]}"; do
      if [[ -z ${exit_us[$p]:-} ]]; then
        dump_stacks "$p" "$dir/stacks.$p"
        kill -9 "$p" 2>/dev/null || true
      fi
    done
  fi
  for p in "${watched[@]}"; do
    if [[ -n ${exit_us[$p]:-} ]] && ((exit_us[$p] - kill_us > last_us)); then
      last_us=$((exit_us[$p] - kill_us))
    fi
  done
  seconds=$(fmt_us "$last_us")
  if [[ -z $verdict ]] && ((last_us > bound_us)); then
    verdict="late: last exit ${seconds} s after the kill"
    verdict+=" ($(late_detail "$dir" "$kill_us" "$victim"))"
  fi
  if [[ $launcher == plexusrun ]]; then
    check_plexusrun "$dir" "$victim"
  else
    check_survivors "$dir" "$victim"
  fi
  cleanup_trial
  if [[ -z $verdict ]]; then verdict=ok; fi
}

# Every thread's stack of a hung process, when gdb is installed (the evidence for a bug report),
# and where each library is loaded, to turn frames in stripped libraries into offsets.
dump_stacks() {  # pid file
  if command -v gdb >/dev/null; then
    timeout 60 gdb -p "$1" -batch -ex "thread apply all bt" -ex "info sharedlibrary" >"$2" 2>&1 ||
      true
  fi
}

# When each survivor wrote its error (its stderr's last change) and exited, in seconds after
# the kill: a late message means late detection, a late exit after a prompt message slow exit.
late_detail() {  # dir kill_us victim
  local r p out="" written
  for r in "${!pid_of[@]}"; do
    ((r != $3)) || continue
    p=${pid_of[$r]} written=$(stat -c %.6Y "$1/err.$r" 2>/dev/null || echo 0)
    out+="rank $r: message $(fmt_us $((${written/./} - $2)))"
    out+=" exit $(fmt_us $((${exit_us[$p]:-0} - $2))); "
  done
  echo "${out%; }"
}

fmt_us() { printf '%d.%02d' $(($1 / 1000000)) $(($1 % 1000000 / 10000)); }

# plexusrun's verdict on the kill, and no rank left behind it.
check_plexusrun() {  # dir victim
  local rc=0 p
  wait "$launcher_pid" || rc=$?
  [[ -z $verdict ]] || return 0
  for p in "${pid_of[@]}"; do
    if ((${exit_us[$p]:-0} > exit_us[$launcher_pid] + 100000)); then
      verdict="orphan: rank pid $p outlived plexusrun"
    fi
  done
  if ((rc != 137)); then
    verdict="exit: plexusrun exited $rc, not 137"
  elif ! grep -q "rank $2 was killed by signal SIGKILL" "$1/err.0"; then
    verdict="unnamed: plexusrun did not name rank $2: $(tail -n1 "$1/err.0")"
  fi
}

# Every survivor's exit code and message; appends each one's status code letter to $codes.
check_survivors() {  # dir victim
  local r rc line
  for r in "${!pid_of[@]}"; do
    ((r != $2)) || continue
    rc=0
    wait "${pid_of[$r]}" || rc=$?
    # Sub-communicator ranks are named "rank 1 (world rank 3)": only the world rank counts.
    line=$(grep -m1 '^plexus-perf: ' "$1/err.$r" |
      sed -E 's/rank [0-9]+ \(world (rank [0-9]+)\)/world \1/g' || true)
    case $line in
      *Unavailable*) codes+=U ;;
      *DeadlineExceeded*) codes+=D ;;
      *) codes+=- ;;
    esac
    [[ -z $verdict ]] || continue
    if ((rc != 1)); then
      verdict="exit: survivor rank $r exited $rc (want 1): $line"
    elif ! [[ $line =~ rank\ $2([^0-9]|$) ]]; then
      verdict="unnamed: survivor rank $r: $line"
    fi
  done
}

cleanup_trial() {
  local p
  for p in "${pid_of[@]}" $launcher_pid; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pid_of[@]}" $launcher_pid; do wait "$p" 2>/dev/null || true; done
  started=()
}

rows=() failed_any=0 kept_logs=0
IFS=, read -ra transport_list <<<"$transports"
IFS=, read -ra algo_list <<<"$algos"
IFS=, read -ra launcher_list <<<"$launchers"
for launcher in "${launcher_list[@]}"; do
  if [[ $launcher != manual && $launcher != plexusrun ]]; then
    echo "kill_stress: unknown launcher $launcher" >&2
    exit 2
  fi
done
echo "# kill_stress: $nranks ranks on $nodes node(s), $trials trials per row," \
  "PLEXUS_TIMEOUT_MS=$timeout_ms," \
  "bound $((bound_us / 1000)) ms, seed $seed, logs in $logs"
for transport in "${transport_list[@]}"; do
  for algo in "${algo_list[@]}"; do
    for launcher in "${launcher_list[@]}"; do
      ok=0 fail=0 hangs=0 max_us=0 max=0.00 why="" ucodes=0 dcodes=0
      declare -A reasons=()
      for ((t = 1; t <= trials; t++)); do
        dir=$logs/$transport-$algo-$launcher-$t
        run_trial "$transport" "$algo" "$launcher" "$dir"
        u=${codes//[^U]/} d=${codes//[^D]/}
        ucodes=$((ucodes + ${#u})) dcodes=$((dcodes + ${#d}))
        if [[ $verdict == ok ]]; then
          ok=$((ok + 1))
          rm -rf "$dir"
        else
          fail=$((fail + 1)) kept_logs=1
          if [[ $tolerate != *,${verdict%%:*},* ]]; then failed_any=1; fi
          [[ $verdict == hang* ]] && hangs=$((hangs + 1))
          reasons[${verdict%%:*}]=$((${reasons[${verdict%%:*}]:-0} + 1))
          echo "FAIL $transport/$algo/$launcher trial $t: $verdict" \
            "[$(cat "$dir/kill" 2>/dev/null || true); logs $dir]"
        fi
        if ((last_us > max_us)); then max_us=$last_us max=$seconds; fi
        ((verbose)) && echo "$transport/$algo/$launcher trial $t: $verdict ${seconds}s $codes"
        # An algorithm this build does not have fails every trial the same way: stop at one.
        [[ $verdict == unknown-algorithm* ]] && break
      done
      for k in "${!reasons[@]}"; do why+="$k=${reasons[$k]} "; done
      [[ $launcher == manual ]] && why+="(survivor codes: U=$ucodes D=$dcodes)"
      rows+=("$(printf '%-9s %-9s %-9s %6d %4d %8d %5d %8s  %s' "$transport" "$algo" "$launcher" \
        "$((ok + fail))" "$ok" "$fail" "$hangs" "$max" "$why")")
      unset reasons
    done
  done
done
printf '\n%-9s %-9s %-9s %6s %4s %8s %5s %8s  %s\n' transport algorithm launcher trials ok \
  failures hangs max_s "failure reasons (U=Unavailable, D=DeadlineExceeded)"
printf '%s\n' "${rows[@]}"
echo "# max_s: seconds from the kill to the last survivor's exit (plexusrun: to its own exit;" \
  "hung processes are in 'hangs', not here)"
if [[ -n $tolerate ]]; then echo "# tolerated (counted, not fatal): ${tolerate:1:-1}"; fi
if ((own_logs && !kept_logs)); then rm -rf "$logs"; fi
exit "$failed_any"
