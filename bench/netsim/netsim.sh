#!/usr/bin/env bash
# netsim: a multi-node test bed on one host. Each emulated node is a network namespace with one
# interface whose egress is shaped with tc (tbf; netem adds delay where the kernel has it), all
# joined through a bridge that lives in a dedicated "hub" namespace, so nothing is added to the
# host's own network and several test beds (different --prefix) can run side by side.
#
#   netsim.sh up   K [--rate R] [--delay D] [--prefix P] [--check]
#   netsim.sh run  K [--rate R] [--delay D] [--prefix P] [-n N] [--timeout S] -- PROG ARGS...
#   netsim.sh check  [--prefix P]      # timed node0 -> node1 transfer through the shaped link
#   netsim.sh down   [--prefix P]
#
#   K           number of nodes: namespaces P-n0 .. P-n(K-1), node i has 10.77.0.(i+1)/24 on
#               interface "plx0"; P-hub holds the bridge "br0" and one veth per node
#   --rate R    egress rate of every node's link, tc syntax (100mbit, 1gbit, 10gbit) or "none"
#               (unshaped); default 1gbit. Each direction of each link gets R, like a NIC port.
#   --delay D   one-way delay (e.g. 1ms) via netem; skipped with a warning where netem is absent
#   --timeout S per-rank time limit in seconds (default 300)
#   -n N        ranks (default K), spread over the nodes in contiguous blocks as plexusrun
#               --nodes does: rank r runs on node floor(r*K/N)
#
# `run` brings the test bed up, launches every rank inside its node's namespace with the
# torchrun-style environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK,
# MASTER_ADDR=10.77.0.1, MASTER_PORT, PLEXUS_SECRET, PLEXUS_NODE_ID=node<i>), prefixes each output
# line with "[rank] ", kills the others when one fails, exits with the first failure's status, and
# tears the test bed down. An interrupted or failing script always cleans up what it created.
#
# Why the transport is pinned: namespaces of one host share memory, so UCX would pick shared
# memory or CMA between "nodes" and the shaped link would carry nothing. `run` therefore sets (unless
# already set) UCX_TLS=tcp,self and UCX_NET_DEVICES=plx0, and FI_PROVIDER=tcp, FI_TCP_IFACE=plx0
# for libfabric. Ranks of one node then also talk over TCP (through the kernel's local route,
# unshaped), unless the intra-node level gets its own transport instance with shared memory:
# PLEXUS_TRANSPORT_INTRA=ucx:sm,self (the spec's option replaces UCX_TLS for that instance only),
# while inter-node links keep tcp on plx0. A single UCX context cannot be told "shm inside a
# node, tcp across nodes": UCX decides reachability by host identity, which namespaces share.
#
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2; python3 for `check`. Exits 77 (the
# ctest skip code) when network namespaces cannot be created here.
set -euo pipefail

readonly kSkip=77
readonly kIface=plx0
readonly kSubnet=10.77.0

prefix=plexus
rate=1gbit
delay=
ranks=
timeout_s=300
do_check=0
created=0     # this invocation brought the test bed up: take it down on failure/interrupt
keep_up=0     # `up` succeeded: leave it for `run`/`down` later
pids=()

die() { echo "netsim: $*" >&2; exit 1; }
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

hub() { echo "$prefix-hub"; }
node_ns() { echo "$prefix-n$1"; }

# Every namespace of this prefix, hub last.
our_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-n[0-9]+$" || true
  ip netns list 2>/dev/null | awk '{print $1}' | grep -Fx "$(hub)" || true
}

down() {
  # Deleting a namespace deletes the veth ends and the bridge inside it; nothing lives in the
  # root namespace. Processes still inside would keep a namespace alive, so they go first.
  local ns pid
  for ns in $(our_namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  for ns in $(our_namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]:-}"; do
    if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  if ((created && !keep_up)); then down; fi
  exit "$status"
}
on_signal() { echo "netsim: interrupted, cleaning up" >&2; exit 130; }

namespaces_permitted() {
  local probe="$prefix-probe$$"
  if ! ip netns add "$probe" 2>/dev/null; then return 1; fi
  ip netns del "$probe" 2>/dev/null || true
}

# Shapes node i's egress: [netem delay] -> tbf rate. The bucket holds 1 ms at the rate (never
# below 64 KiB, so a 64 KiB GSO segment fits): small enough that bursts do not hide the rate,
# large enough that tbf's high-resolution timer keeps the link full.
shape() {
  local ns=$1 parent=root
  if [[ -n $delay ]]; then
    if ip netns exec "$ns" tc qdisc add dev $kIface root handle 1: netem delay "$delay" 2>/dev/null; then
      parent="parent 1:"
    else
      echo "netsim: netem is not available on this kernel; no delay added" >&2
      delay=
    fi
  fi
  [[ $rate == none ]] && return 0
  local bits burst
  bits=$(rate_bits "$rate") || die "cannot parse --rate '$rate' (e.g. 100mbit, 1gbit)"
  burst=$((bits / 8 / 1000))
  ((burst < 65536)) && burst=65536
  # shellcheck disable=SC2086  # $parent is "root" or "parent 1:"
  ip netns exec "$ns" tc qdisc add dev $kIface $parent handle 2: tbf rate "$rate" \
    burst "$burst" latency 50ms || die "tc tbf failed on $ns (is sch_tbf available?)"
}

rate_bits() {
  local r=${1,,} n unit
  [[ $r =~ ^([0-9]+)(bit|kbit|mbit|gbit)$ ]] || return 1
  n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
  case $unit in bit) echo "$n" ;; kbit) echo $((n * 1000)) ;; mbit) echo $((n * 1000000)) ;;
    gbit) echo $((n * 1000000000)) ;; esac
}

up() {
  local k=$1 i ns
  ((k >= 1 && k <= 200)) || die "node count must be in 1..200, got $k"
  [[ $EUID -eq 0 ]] || { echo "netsim: needs root (network namespaces)" >&2; exit $kSkip; }
  namespaces_permitted || { echo "netsim: cannot create network namespaces here" >&2; exit $kSkip; }
  [[ -z $(our_namespaces) ]] || die "a test bed with prefix '$prefix' exists: netsim.sh down --prefix $prefix"
  created=1
  ip netns add "$(hub)"
  ip -n "$(hub)" link add br0 type bridge
  ip -n "$(hub)" link set br0 up
  for ((i = 0; i < k; i++)); do
    ns=$(node_ns "$i")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$(hub)" link add "v$i" type veth peer name $kIface netns "$ns"
    ip -n "$(hub)" link set "v$i" master br0 up
    ip -n "$ns" addr add "$kSubnet.$((i + 1))/24" dev $kIface
    ip -n "$ns" link set $kIface up
    shape "$ns"
  done
  echo "netsim: $k node(s) up (prefix $prefix, rate $rate${delay:+, delay $delay}):" \
    "$(node_ns 0)..$(node_ns $((k - 1))) at $kSubnet.1..$kSubnet.$k" >&2
}

# Times a 64 MiB transfer from node 0 to node 1 and prints the goodput the receiver saw.
check() {
  command -v python3 >/dev/null || { echo "netsim: check needs python3; skipped" >&2; return 0; }
  local port=5201 bytes=$((64 << 20))
  ip netns exec "$(node_ns 1)" python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(30)
c, _ = s.accept(); left = int(sys.argv[3]); t0 = None
while left > 0:
    b = c.recv(1 << 20)
    if not b: break
    t0 = t0 or time.perf_counter(); left -= len(b)
dt = time.perf_counter() - t0
print(f"netsim: node0 -> node1: {int(sys.argv[3]) - left} bytes in {dt:.3f} s = "
      f"{(int(sys.argv[3]) - left) * 8 / dt / 1e6:.0f} Mbit/s")' "$kSubnet.2" $port $bytes &
  local server=$!
  ip netns exec "$(node_ns 0)" python3 -c '
import socket, sys, time
for attempt in range(100):  # the receiver may still be starting
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30); break
    except ConnectionRefusedError:
        time.sleep(0.1)
chunk = bytes(1 << 20)
for _ in range(int(sys.argv[3]) >> 20): c.sendall(chunk)
c.close()' "$kSubnet.2" $port $bytes
  wait "$server"
}

# Bytes each node sent over its shaped link: shows that inter-node traffic took the link (and
# did not slip through shared memory).
report_traffic() {
  local i bytes line=""
  for ((i = 0; i < $1; i++)); do
    bytes=$(ip netns exec "$(node_ns "$i")" cat /sys/class/net/$kIface/statistics/tx_bytes)
    line+=" node$i $((bytes >> 20)) MiB"
  done
  echo "netsim: sent over the links:$line" >&2
}

run() {
  local k=$1 n=${ranks:-$1} r node secret port
  shift
  [[ $# -gt 0 ]] || die "run needs -- PROG ARGS"
  ((n >= k)) || die "-n $n is fewer than the $k nodes"
  up "$k"
  ((do_check && k >= 2)) && check
  secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  port=$((20000 + RANDOM % 20000))
  local -a first_of_node=() count_of_node=()
  for ((r = 0; r < n; r++)); do
    node=$((r * k / n))
    [[ -n ${first_of_node[node]:-} ]] || first_of_node[node]=$r
    count_of_node[node]=$((${count_of_node[node]:-0} + 1))
  done
  for ((r = 0; r < n; r++)); do
    node=$((r * k / n))
    ip netns exec "$(node_ns "$node")" env \
      RANK="$r" WORLD_SIZE="$n" LOCAL_RANK="$((r - first_of_node[node]))" \
      LOCAL_WORLD_SIZE="${count_of_node[node]}" GROUP_RANK="$node" GROUP_WORLD_SIZE="$k" \
      MASTER_ADDR=$kSubnet.1 MASTER_PORT=$port PLEXUS_SECRET="$secret" PLEXUS_NODE_ID="node$node" \
      UCX_TLS="${UCX_TLS:-tcp,self}" UCX_NET_DEVICES="${UCX_NET_DEVICES:-$kIface}" \
      FI_PROVIDER="${FI_PROVIDER:-tcp}" FI_TCP_IFACE="${FI_TCP_IFACE:-$kIface}" \
      timeout -k 5 "$timeout_s" "$@" > >(sed -u "s/^/[$r] /") 2>&1 &
    pids+=($!)
  done
  # First failure wins: its status is the script's, and the other ranks are stopped. Polled,
  # because `wait -n` cannot be given a set of pids reliably once some have been reaped.
  local status=0 rc left=$n
  local -a finished=()
  while ((left > 0)); do
    for r in "${!pids[@]}"; do
      if [[ -n ${finished[r]:-} ]] || kill -0 "${pids[r]}" 2>/dev/null; then continue; fi
      rc=0
      wait "${pids[r]}" || rc=$?
      finished[r]=1
      left=$((left - 1))
      if ((rc != 0 && status == 0)); then
        status=$rc
        echo "netsim: rank $r exited with $rc; stopping the others" >&2
        kill -TERM "${pids[@]}" 2>/dev/null || true
      fi
    done
    ((left == 0)) || sleep 0.2
  done
  report_traffic "$k"
  pids=()
  wait 2>/dev/null || true  # output filters
  return "$status"
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1 k=
  shift
  if [[ $cmd == up || $cmd == run ]]; then
    [[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || usage
    k=$1
    shift
  fi
  while [[ $# -gt 0 ]]; do
    case $1 in
      --rate) rate=$2; shift 2 ;;
      --delay) delay=$2; shift 2 ;;
      --prefix) prefix=$2; shift 2 ;;
      --timeout) timeout_s=$2; shift 2 ;;
      --check) do_check=1; shift ;;
      -n) ranks=$2; shift 2 ;;
      --) shift; break ;;
      -h | --help) usage ;;
      *) [[ $cmd == run ]] && break; die "unknown argument '$1'" ;;
    esac
  done
  [[ $prefix =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "--prefix must be 1-8 lowercase letters/digits"
  trap cleanup EXIT
  trap on_signal INT TERM
  case $cmd in
    up) up "$k"; ((do_check && k >= 2)) && check; keep_up=1 ;;
    run) run "$k" "$@" ;;
    check) check ;;
    down) down ;;
    *) usage ;;
  esac
}

main "$@"
