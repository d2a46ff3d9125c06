#!/usr/bin/env python3
"""plexus-tune's done check: is the automatic all-reduce choice within 5% of the best forced
algorithm at every size of the sweep?

    tools/plexus_tune_check.py --build build -n 4 [--nodes 2 [--netsim RATE]] [--rounds 5]
                               [--table FILE] [-b 8] [-e 32M] [-f 4] [--iters 20]
                               [--algos ring,rhd,tree] [--state near|far [--state-ns 100]]
                               [--tune]

Runs `plexusrun -n N plexus-perf allreduce -a X` for X in auto and every forced algorithm (with
up to 20000 calls per size, 256 MiB worth: a fraction of a second each, so that the
scheduling luck of 4 ranks on 2 cores averages out within a run), in interleaved
rounds (the order rotates each round, so a slow spell of a shared machine hits every algorithm
alike), with PLEXUS_TUNING_FILE=FILE. Per size and algorithm it keeps the best and the median
out-of-place busbw over the rounds; a short run with PLEXUS_DEBUG=INFO first logs which
algorithm the selector chooses at each size and why. Prints one row per size: the auto choice,
its busbw, the best forced algorithm and its busbw, their ratio; the choice ratio (the chosen
algorithm's forced runs against the best forced runs: the choice alone, measured alike) and the
noise (auto against its own algorithm forced: 1.0 on a quiet machine). Exits 1 when a ratio (of
the best rounds) is below 0.95.

With --state near (or far), each run is bracketed by plexus-core-link and done again (up to
--retries times) while the two cores' cache-line hand-off is above (or at most) --state-ns, 100
by default, before or after it: this 2-core VM switches between ~45 ns and ~220 ns
(bench/core_link.cc), and the shm all-reduce runs twice as fast in the first, so auto and the
forced algorithms are compared in one state. With --tune it first runs plexus-tune on the same
ranks and sweep (all-reduce only), in that state, and writes --table: the whole check in one
command.

With --netsim RATE (and --nodes K) every run goes through the multi-node test bed instead of
plexusrun: `bench/netsim/netsim.sh run K --rate RATE -n N -- plexus-perf ...` (needs root), with
intra-node links on UCX shared memory (PLEXUS_TRANSPORT_INTRA=ucx:sm,self unless set), as
bench/netsim/hier_vs_flat.sh runs them; plexus-tune's table must then come from the test bed too.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                                "compare"))
from core_link import add_state_arguments, run_in_state  # noqa: E402

ROW = re.compile(r"^\[0\]\s+(\d+)\s+\d+\s+\S+\s+\S+\s+-?\d+\s+(\S+)\s+(\S+)\s+(\S+)")
# The job's own choices: "on N ranks" for N = -n (hier's sub-communicators log theirs too).
CHOICE = r"^\[0\] plexus\[rank 0\] INFO: allreduce of (\d+) bytes on {n} ranks: (\S+) \((.*)\)$"


def parse_size(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.lower().rstrip("b")
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def size_groups(args):
    """The sweep's sizes (as plexus-perf makes them) in runs of equal iteration counts: enough
    calls that a size's first-call costs (buffers, registration) do not dominate, as they do
    with 20 calls of a few microseconds each."""
    sizes, size = [], parse_size(args.b)
    while True:
        sizes.append(size)
        if size >= parse_size(args.e) or size > parse_size(args.e) // args.f:
            break
        size *= args.f
    groups = []
    for size in sizes:
        iters = max(args.iters, min(20000, (256 << 20) // size))
        if groups and groups[-1][2] == iters:
            groups[-1][1] = size
        else:
            groups.append([size, size, iters])
    return groups


def launch(args, program, env):
    """Runs `program` (a list) on the job's ranks, through plexusrun or the test bed; its
    output. Exits when it fails three times."""
    if args.netsim:
        netsim = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                              "netsim", "netsim.sh")
        cmd = ["bash", netsim, "run", str(args.nodes), "--rate", args.netsim, "--prefix",
               "pxc", "-n", str(args.n), "--timeout", "300", "--"]
    else:
        cmd = [os.path.join(args.build, "plexusrun"), "--timeout", "300", "-n", str(args.n)]
        if args.nodes:
            cmd += ["--nodes", str(args.nodes)]
    cmd += program
    for _ in range(3):  # a port taken by another job's launcher: try again
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode == 0:
            break
        time.sleep(2)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout + out.stderr


def run_perf(args, algo, env, groups=None):
    out_text = ""
    for lo, hi, iters in groups or size_groups(args):
        program = [os.path.join(args.build, "plexus-perf"), "allreduce", "-b", str(lo), "-e",
                   str(hi), "-f", str(args.f), "-n", str(iters), "-w", "20", "-c", "0"]
        if algo != "auto":
            program += ["-a", algo]
        out_text += launch(args, program, env)
    busbw, choices = {}, {}
    for line in out_text.splitlines():
        m = ROW.match(line)
        if m:
            # busbw from the time column: plexus-perf prints busbw with 2 decimals, too
            # coarse for small sizes.
            size, us = int(m.group(1)), float(m.group(2))
            busbw[size] = size / us / 1e3 * 2 * (args.n - 1) / args.n
        m = re.match(CHOICE.format(n=args.n), line)
        if m:
            reason = m.group(3)
            source = "table" if reason.startswith("tuning table") else reason.split(":")[0]
            choices[int(m.group(1))] = (m.group(2), source)
    return busbw, choices


def in_one_state(args, label, run, wait=False):
    """run() kept to --state (core_link.run_in_state)."""
    return run_in_state(args.build, args.state, args.state_ns, args.retries, label, run, wait)


def tune(args, env):
    """--tune: plexus-tune's all-reduce table for this sweep, written to args.table, made in
    the --state asked for (waited for, and made again while it does not hold)."""
    program = [os.path.join(args.build, "plexus-tune"), "-b", args.b, "-e", args.e, "-f",
               str(args.f), "--collectives", "allreduce", "-o", args.table]

    def run():
        if os.path.exists(args.table):
            os.remove(args.table)  # plexus-tune keeps other signatures' tables: start afresh
        return launch(args, program, dict(env, PLEXUS_TUNING_FILE=args.table))

    out = in_one_state(args, "plexus-tune", run, wait=True)
    print("".join(line + "\n" for line in out.splitlines() if not re.search(r"pass \d", line)),
          end="")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("-n", type=int, default=4)
    p.add_argument("--nodes", type=int, default=0)
    p.add_argument("--netsim", default="", metavar="RATE",
                   help="run in the netsim test bed with inter-node links shaped to RATE")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--table", default=os.environ.get("PLEXUS_TUNING_FILE", ""))
    p.add_argument("-b", default="8")
    p.add_argument("-e", default="32M")
    p.add_argument("-f", type=int, default=4)
    p.add_argument("--iters", type=int, default=20, help="fewest calls per size")
    p.add_argument("--algos", default="ring,rhd,tree")
    add_state_arguments(p)
    p.add_argument("--tune", action="store_true",
                   help="run plexus-tune first (same ranks, sweep and --state), writing --table")
    args = p.parse_args()
    if args.netsim and args.nodes < 2:
        p.error("--netsim needs --nodes K (K >= 2)")
    if args.tune and not args.table:
        p.error("--tune needs --table FILE (it writes it)")
    env = dict(os.environ, PLEXUS_TUNING_FILE=args.table or "none")
    if args.netsim:
        env.setdefault("PLEXUS_TRANSPORT_INTRA", "ucx:sm,self")
    if args.tune:
        tune(args, env)
    algos = ["auto"] + args.algos.split(",")
    samples = {a: {} for a in algos}  # algo -> size -> [busbw per round]
    # The selector's choices, from one short run that logs them; the timed runs do not log.
    sizes = size_groups(args)
    _, choices = run_perf(args, "auto", dict(env, PLEXUS_DEBUG="INFO"),
                          [[sizes[0][0], sizes[-1][1], 1]])
    for r in range(args.rounds):
        for k in range(len(algos)):
            algo = algos[(k + r) % len(algos)]
            busbw = in_one_state(args, f"round {r + 1}/{args.rounds} {algo:>5}",
                                 lambda: run_perf(args, algo, env)[0])
            for size, bw in busbw.items():
                samples[algo].setdefault(size, []).append(bw)
        print(f"# round {r + 1}/{args.rounds} done", file=sys.stderr)
    where = f" on {args.nodes} nodes" if args.nodes else ""
    where += f" (netsim, links {args.netsim})" if args.netsim else ""
    near = "" if args.state == "any" else (
        f", runs with core hand-off {'<=' if args.state == 'near' else '>'} {args.state_ns:.0f} ns")
    print(f"# {args.n} ranks{where}, table "
          f"{args.table or 'none'}, {args.rounds} rounds{near}, out-of-place busbw (GB/s): best "
          f"round (median round)")
    print(f"{'size':>10}  {'auto':>6} {'by':>5}  {'auto busbw':>16}  {'best forced':>11}  "
          f"{'its busbw':>16}  {'ratio':>11}  {'choice':>6}  {'noise':>5}")
    worst = worst_choice = 1.0
    for size in sorted(samples["auto"]):
        def stat(algo, f):
            values = samples.get(algo, {}).get(size, [])
            return f(values) if values else 0.0
        forced = [a for a in algos[1:] if samples[a].get(size)]
        best = max(forced, key=lambda a: stat(a, max))
        best_med = max(stat(a, statistics.median) for a in forced)
        auto_best, auto_med = stat("auto", max), stat("auto", statistics.median)
        ratio = auto_best / stat(best, max) if stat(best, max) > 0 else 1.0
        ratio_med = auto_med / best_med if best_med > 0 else 1.0
        algo, source = choices.get(size, ("?", "?"))
        # choice: the chosen algorithm's forced runs against the best forced runs (the choice
        # alone, measured alike); noise: auto against its own algorithm forced (1.0 on a
        # quiet machine).
        # (nan when the chosen algorithm is not among --algos: nothing to compare it with.)
        choice = (stat(algo, max) / stat(best, max) if stat(algo, max) > 0 and stat(best, max) > 0
                  else float("nan"))
        noise = auto_best / stat(algo, max) if stat(algo, max) > 0 else float("nan")
        worst = min(worst, ratio)
        worst_choice = min(worst_choice, choice) if choice == choice else worst_choice
        print(f"{size:>10}  {algo:>6} {source[:5]:>5}  {auto_best:7.3f} ({auto_med:6.3f})  "
              f"{best:>11}  {stat(best, max):7.3f} ({stat(best, statistics.median):6.3f})  "
              f"{ratio:5.3f} ({ratio_med:.2f})  {choice:6.3f}  {noise:5.2f}"
              f"{'' if ratio >= 0.95 else '  <-- FAIL'}")
    # Every forced algorithm side by side (best round), and the best of the others against the
    # ring: issue #4's "tree or rhd beats the ring" check reads off the last column.
    others = [a for a in algos[1:] if a != "ring"]
    print(f"\n{'size':>10}  " + "  ".join(f"{a:>9}" for a in algos[1:]) +
          ("  best-other/ring" if "ring" in algos and others else ""))
    for size in sorted(samples["auto"]):
        bws = {a: max(samples[a].get(size, [0.0])) for a in algos[1:]}
        row = f"{size:>10}  " + "  ".join(f"{bws[a]:9.4f}" for a in algos[1:])
        if "ring" in bws and others and bws["ring"] > 0:
            row += f"  {max(bws[a] for a in others) / bws['ring']:15.2f}"
        print(row)
    print(f"# worst ratio {worst:.3f}: {'PASS' if worst >= 0.95 else 'FAIL'}; worst choice ratio "
          f"{worst_choice:.3f}: {'PASS' if worst_choice >= 0.95 else 'FAIL'}")
    return 0 if worst >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
