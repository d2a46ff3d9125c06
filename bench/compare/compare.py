#!/usr/bin/python3
"""Plexus against its peers, side by side in one run: `make compare`.

On the same ranks and sizes it runs plexus-perf (under plexusrun; again with -R 1, its buffers
from plexus::memAlloc, where the shm all-reduce copies nothing through a staging area: a column
of its own, the targets' Plexus column is heap memory), MPI_Allreduce (Open MPI,
mpirun), Gloo's ring_chunked and halving_doubling (under plexusrun), the raw transport ceiling
(ucx_perftest ucp_put_bw and tag_bw between two processes on this host), memcpy (numpy), and,
from 1 MiB, plexus-zero-copy's memory ceiling (every rank's process copying its own buffer at
once: no all-reduce moves less memory) and, with no more ranks than cores, its zero-copy
all-reduce (ranks that read each other's buffers directly, the least-copy scheme), its staged
all-reduce (private buffers, everything crossing a shared area: what any library must do with
heap buffers here), then prints a ratio table with PASS/FAIL against issue #3's targets (naming
the sizes where a target asks for more than the memory ceiling, the zero-copy or the staged
all-reduce reach), writes
build/compare/compare.json and PNG plots of busbw and latency against message size.

Noise: the machine is shared, so every tool runs once per round, rounds are interleaved
(plexus, mpi, gloo, ucx, memcpy, then again), and each tool's best round counts at each size: a
burst of load from elsewhere hits every tool alike instead of one tool's whole sweep. This VM's
two vCPUs also switch, for seconds to minutes, between sharing a cache and not (a cache-line
hand-off of ~45 against ~220 ns, bench/core_link.cc), which halves or doubles every tool's
bandwidth; --state near (or far) runs a tool's round again, dropping its samples, until the
hand-off before and after it is in that state (up to --retries times), so every tool is
measured in the same one.

Placement: mpirun binds its ranks one per core while they do not outnumber the cores (and
not at all beyond), so Plexus's and Gloo's ranks run under `plexusrun --bind core` (or none)
alike.

Which column counts: Plexus's out-of-place busbw (nccl-tests' headline column) against the best
of each peer's out-of-place and in-place columns, so a PASS holds against the peer's best showing.

Run with Debian's /usr/bin/python3 (it has numpy and matplotlib).
"""

import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

# This directory: sys.path[0] when run as a script.
from core_link import add_state_arguments, core_link, run_in_state

KIB, MIB = 1 << 10, 1 << 20
TINY_MAX = 4 * KIB     # sizes up to here take about a microsecond: many more iterations
SMALL_MAX = 512 * KIB  # sizes up to here are latency-bound: more iterations
MEDIUM_MAX = 4 * MIB   # and up to here, fewer, but still more than the largest get
UCX_MIN = 64 * KIB     # ucx_perftest below this measures message rate, not bandwidth
# From here on, every rank copying its own buffer at once bounds what an all-reduce can reach: it
# must read each rank's input and write each rank's output at least once, the least memory
# traffic there is, with nothing to synchronise (plexus-zero-copy measures it). Below it a call
# is bound by its synchronisation, not by memory.
MEMORY_CEILING_MIN = 1 * MIB


def sweep_sizes(factor, lo=8, hi=64 * MIB):
    sizes, s = [], lo
    while s <= hi:
        sizes.append(s)
        s *= factor
    return sizes


class Runner:
    """Runs the tools, keeps every round's results: results[tool][bytes] = list of samples."""

    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.results = {}
        self.errors = []
        self.factor = 4 if args.quick else 2
        self.sizes = sweep_sizes(self.factor)
        # (min, max, iters, warmup) per segment, cut from the one size list so that every tool
        # measures the same sizes: small messages get more iterations. A timed loop starts
        # after a barrier, whose exit skew between ranks (tens of us) it also times: 200 calls of
        # 0.3 us (60 us) carried it as +0.1 us per call, so the tiny sizes get 5000.
        # 1-4 MiB take 0.1-0.5 ms: 20 calls were 2-10 ms, a window one preemption spoils.
        tiny = [s for s in self.sizes if s <= TINY_MAX]
        small = [s for s in self.sizes if TINY_MAX < s <= SMALL_MAX]
        medium = [s for s in self.sizes if SMALL_MAX < s <= MEDIUM_MAX]
        large = [s for s in self.sizes if s > MEDIUM_MAX]
        iters = (((1000, 100), (50, 10), (20, 4), (8, 2)) if args.quick else
                 ((5000, 500), (200, 20), (100, 10), (20, 5)))
        self.segments = [(seg[0], seg[-1]) + it
                         for seg, it in zip((tiny, small, medium, large), iters) if seg]

    def record(self, tool, size, time_us, busbw):
        self.results.setdefault(tool, {}).setdefault(size, []).append(
            {"time_us": time_us, "busbw": busbw})

    def run_logged(self, name, cmd, env=None, timeout=600):
        log = os.path.join(self.logs, name + ".log")
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            try:
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                    timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = 124
        if rc != 0:
            self.errors.append("%s exited %d (see %s)" % (name, rc, log))
        return rc == 0

    # --- collectives in plexus-perf's JSON format -------------------------------------------
    def collective(self, tool, launcher, program, extra=(), env=None, own_column=False,
                   small_div=1):
        """One sweep per segment; `small_div` divides the small segment's iterations (and its
        square the tiny one's) for a tool whose calls take milliseconds (Gloo over TCP), where
        fewer still time it precisely."""
        for lo, hi, iters, warmup in self.segments:
            if hi <= SMALL_MAX:
                div = small_div * small_div if hi <= TINY_MAX else small_div
                iters, warmup = max(10, iters // div), max(2, warmup // div)
            js = os.path.join(self.out, "%s-%d.json" % (tool, lo))
            if os.path.exists(js):
                os.remove(js)
            cmd = launcher + program + ["-b", str(lo), "-e", str(hi), "-f", str(self.factor),
                                        "-n", str(iters), "-w", str(warmup), "-c", "1",
                                        "--json", js] + list(extra)
            if not self.run_logged("%s-%d" % (tool, lo), cmd, env) or not os.path.exists(js):
                continue
            with open(js) as f:
                data = json.load(f)
            for r in data["results"]:
                cols = [r["out_of_place"]] if own_column else [r["out_of_place"], r["in_place"]]
                if any(c["wrong"] > 0 for c in cols):
                    self.errors.append("%s: wrong results at %d B" % (tool, r["bytes"]))
                    continue
                best = max(cols, key=lambda c: c["busbw"])
                self.record(tool, r["bytes"], best["time_us"], best["busbw"])

    def plexusrun(self):
        """plexusrun for Plexus and Gloo, their ranks placed as mpirun places Open MPI's: one
        per core (--bind core) while there are no more ranks than cores, else unbound (mpirun
        binds nothing when oversubscribed)."""
        bind = "core" if self.args.ranks <= len(os.sched_getaffinity(0)) else "none"
        return [os.path.join(self.build, "plexusrun"), "-n", str(self.args.ranks),
                "--bind", bind, "--timeout", "600", "--"]

    def run_plexus(self):
        prog = [os.path.join(self.build, "plexus-perf"), "allreduce"]
        self.collective("plexus", self.plexusrun(), prog, own_column=True)

    def run_plexus_registered(self):
        """plexus-perf -R 1: buffers from plexus::memAlloc, which the shm all-reduce reduces
        between without a staging copy (zero copy), as ucx_perftest's put runs on memory the
        peer has mapped. A column of its own: the targets' Plexus column is plain heap memory."""
        prog = [os.path.join(self.build, "plexus-perf"), "allreduce"]
        self.collective("plexus_reg", self.plexusrun(), prog, ["-R", "1"], own_column=True)

    def run_mpi(self):
        mpirun = ["mpirun", "--oversubscribe", "-np", str(self.args.ranks)]
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        self.collective("mpi", mpirun, [os.path.join(self.build, "plexus-compare-mpi")], env=env)

    def run_gloo(self, algo):
        with tempfile.TemporaryDirectory(prefix="plexus-gloo-") as store:
            env = dict(os.environ, PLEXUS_GLOO_STORE=os.path.join(store, "s"))
            self.collective("gloo_" + algo, self.plexusrun(),
                            [os.path.join(self.build, "plexus-compare-gloo")], ["-a", algo], env,
                            small_div=10)

    # --- raw transport ceiling ---------------------------------------------------------------
    def run_ucx(self, test):
        for size in (s for s in self.sizes if s >= UCX_MIN):
            iters = max(20, min(2000, (256 * MIB) // size))
            bw = ucx_perftest(test, size, iters, max(5, iters // 10),
                              os.path.join(self.logs, "ucx_%s-%d.log" % (test, size)))
            if bw is None:
                self.errors.append("ucx_perftest %s %d B failed" % (test, size))
                continue
            self.record("ucx_" + test.replace("ucp_", ""), size, size / bw / 1e3, bw)

    def run_memcpy(self):
        for size in self.sizes:
            src, dst = page_aligned(size, 1), page_aligned(size, 0)
            best = min(copy_seconds(src, dst, copy_reps(size)) for _ in range(3))
            self.record("memcpy", size, best * 1e6, size / best / 1e9)

    def run_memory_bounds(self):
        """plexus-zero-copy from MEMORY_CEILING_MIN: the memory ceiling (every rank copying its
        own buffer at once, recorded as the busbw an all-reduce of that time would have) and,
        with no more ranks than cores, the zero-copy all-reduce (ranks reading each other's
        buffers directly). With more ranks than cores the all-reduce's barriers wait on the
        scheduler and say nothing about the memory system, so it is not run then."""
        sizes = [s for s in self.sizes if s >= MEMORY_CEILING_MIN]
        if not sizes:
            return
        mode = "all" if self.args.ranks <= (os.cpu_count() or 1) else "copy"
        js = os.path.join(self.logs, "zero_copy.json")
        cmd = [os.path.join(self.build, "plexus-zero-copy"), "-n", str(self.args.ranks), "-b",
               str(sizes[0]), "-e", str(sizes[-1]), "-f", str(self.factor), "-m", mode,
               "--json", js]
        if not self.run_logged("zero_copy", cmd) or not os.path.exists(js):
            self.errors.append("plexus-zero-copy failed (see %s)" % self.logs)
            return
        with open(js) as f:
            for r in json.load(f)["results"]:
                self.record("memcpy_ranks", r["bytes"], r["copy_us"], r["ceiling"])
                if mode == "all":
                    self.record("zero_copy", r["bytes"], r["time_us"], r["busbw"])
                    self.record("staged", r["bytes"], r["staged_us"], r["staged"])

    def run_all(self):
        tools = [("plexus", self.run_plexus), ("plexus -R 1", self.run_plexus_registered),
                 ("mpi", self.run_mpi),
                 ("gloo ring_chunked", lambda: self.run_gloo("ring_chunked")),
                 ("gloo halving_doubling", lambda: self.run_gloo("halving_doubling")),
                 ("ucx put_bw", lambda: self.run_ucx("ucp_put_bw")),
                 ("ucx tag_bw", lambda: self.run_ucx("tag_bw")), ("memcpy", self.run_memcpy),
                 ("memory ceiling, zero-copy", self.run_memory_bounds)]
        a = self.args
        for r in range(a.rounds):
            for name, fn in tools:
                label = "round %d/%d  %-22s" % (r + 1, a.rounds, name)
                if a.state != "any":
                    # A round whose state does not hold runs again, without its samples.
                    kept = copy.deepcopy(self.results)

                    def discard(kept=kept):
                        self.results = copy.deepcopy(kept)
                    run_in_state(a.build, a.state, a.state_ns, a.retries, label, fn,
                                 discard=discard)
                    continue
                cores = core_link(a.build)
                t0 = time.time()
                fn()
                print("# %s %6.1f s  load %.2f  core hand-off before: %s" %
                      (label, time.time() - t0, os.getloadavg()[0], cores), flush=True)


def page_aligned(size, fill):
    """`size` bytes at the start of a page: numpy's own buffers land at any offset, and a copy
    between two that sit a few bytes apart modulo 4 KiB ran at 2.3-2.9 GB/s instead of ~30 (4K
    aliasing of loads and stores) at 128-256 KiB."""
    raw = np.full(size + 4096, fill, dtype=np.uint8)
    at = -raw.ctypes.data % 4096
    return raw[at:at + size]


def copy_reps(size):
    return max(5, min(2000, (64 * MIB) // size))


def copy_seconds(src, dst, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        np.copyto(dst, src)
    return (time.perf_counter() - t0) / reps


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """True when something listens on TCP `port` (read from /proc, without connecting: the
    ucx_perftest server accepts exactly one connection)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def ucx_perftest(test, size, iters, warmup, log):
    """One-way bandwidth in GB/s (1e9 B/s) of `test` at `size`, or None. ucx_perftest prints
    MB/s meaning MiB/s (2^20 B/s): its "Final:" line is iterations, then overhead in usec
    (50th percentile, average, overall), bandwidth (average, overall), message rate (average,
    overall); the overall bandwidth is the whole run's bytes over its time."""
    port = free_port()
    args = ["-t", test, "-s", str(size), "-n", str(iters), "-w", str(warmup), "-p", str(port)]
    with open(log, "w") as f:
        server = subprocess.Popen(["ucx_perftest"] + args, stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 10
            while not listening(port) and time.time() < deadline and server.poll() is None:
                time.sleep(0.02)
            client = subprocess.run(["ucx_perftest", "127.0.0.1"] + args, capture_output=True,
                                    text=True, timeout=120)
            f.write(client.stdout + client.stderr)
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    for line in client.stdout.splitlines():
        if line.startswith("Final:"):
            return float(line.split()[6]) * MIB / 1e9
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", type=int, default=2, help="ranks of every collective (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="factor-4 sizes, fewer iterations, one round")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    ap.add_argument("--build", default="build", help="directory with the binaries (build)")
    ap.add_argument("--out", default=None, help="output directory (BUILD/compare)")
    add_state_arguments(ap, "tool rounds")
    args = ap.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.out is None:
        args.out = os.path.join(args.build, "compare")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import compare_report

    load_before = os.getloadavg()
    state = "" if args.state == "any" else ", rounds kept with the core hand-off %s %.0f ns" % (
        "<=" if args.state == "near" else ">", args.state_ns)
    print("# compare: %d ranks, %d cores, %d interleaved rounds, best round per tool and size%s; "
          "load average %.2f %.2f %.2f" % ((args.ranks, os.cpu_count(), args.rounds, state) +
                                           load_before), flush=True)
    runner = Runner(args)
    runner.run_all()
    load_after = os.getloadavg()
    print("# load average after: %.2f %.2f %.2f" % load_after)
    return compare_report.report(runner, load_before, load_after)


if __name__ == "__main__":
    sys.exit(main())
