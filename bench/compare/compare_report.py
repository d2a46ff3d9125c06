"""compare.py's output: the ratio table, the issue #3 targets (PASS/FAIL), JSON and plots.

Every number here is the best round of a tool at a size (see compare.py on noise); ratios are
Plexus over the peer at the same size in the same run.
"""

import json
import os
import time

KIB, MIB = 1 << 10, 1 << 20

TOOLS = ["plexus", "mpi", "gloo_ring_chunked", "gloo_halving_doubling", "ucx_put_bw",
         "ucx_tag_bw", "memcpy", "memcpy_ranks", "zero_copy", "staged", "plexus_reg"]
COLLECTIVES = TOOLS[:4]
LABELS = {"plexus": "Plexus", "mpi": "Open MPI", "gloo_ring_chunked": "Gloo ring_chunked",
          "gloo_halving_doubling": "Gloo halving_doubling", "ucx_put_bw": "UCX put (1 pair)",
          "ucx_tag_bw": "UCX tag (1 pair)", "memcpy": "memcpy",
          "memcpy_ranks": "memory ceiling (every rank copies at once)",
          "zero_copy": "zero-copy all-reduce (ranks read each other's buffers)",
          "staged": "staged all-reduce (private buffers, through a shared area)",
          "plexus_reg": "Plexus, memAlloc buffers (-R 1)"}


def best(results, tool, size):
    """The sample with the highest busbw (lowest time) of `tool` at `size`, or None."""
    samples = results.get(tool, {}).get(size)
    return max(samples, key=lambda s: s["busbw"]) if samples else None


def busbw(results, tool, size):
    s = best(results, tool, size)
    return s["busbw"] if s else None


def gloo_best(results, size):
    """The better of Gloo's two algorithms at `size`: the targets hold against Gloo's best."""
    vals = [v for v in (busbw(results, t, size) for t in COLLECTIVES[2:]) if v]
    return max(vals) if vals else None


def ratio(a, b):
    return a / b if a and b else None


def human(size):
    if size >= MIB:
        return "%dM" % (size // MIB)
    return "%dK" % (size // KIB) if size >= KIB else "%d" % size


def fmt(v, spec="%7.2f", width=7):
    return spec % v if v is not None else "-".rjust(width)


def print_table(results, sizes):
    print("\n# busbw in GB/s (UCX and memcpy: one-way bytes/s; ceiling: the busbw of an all-reduce"
          " as fast as every rank copying its buffer at once; zcopy: plexus-zero-copy, ranks"
          " reading each other's buffers; staged: plexus-zero-copy through a shared area, as"
          " private buffers must; plx_R1: plexus-perf -R 1, memAlloc buffers); ratios"
          " are Plexus (heap buffers; R1/put: -R 1) over the peer")
    print("# %6s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s | %6s %6s %6s %6s | %9s %9s %6s" %
          ("size", "plexus", "mpi", "gloo_rc", "gloo_hd", "ucx_put", "ucx_tag", "memcpy",
           "ceiling", "zcopy", "staged", "plx_R1", "xMPI", "xGloo", "/put", "R1/put", "plexus_us",
           "mpi_us", "t/MPI"))
    for size in sizes:
        bw = [busbw(results, t, size) for t in TOOLS]
        p, m = best(results, "plexus", size), best(results, "mpi", size)
        print("  %6s %s | %s %s %s | %s %s %s" % (
            human(size), " ".join(fmt(v) for v in bw),
            fmt(ratio(bw[0], bw[1]), "%6.2f", 6), fmt(ratio(bw[0], gloo_best(results, size)),
                                                      "%6.2f", 6),
            fmt(ratio(bw[0], bw[4]), "%6.2f", 6) + " " +
            fmt(ratio(bw[TOOLS.index("plexus_reg")], bw[4]), "%6.2f", 6),
            fmt(p["time_us"] if p else None, "%9.1f", 9), fmt(m["time_us"] if m else None,
                                                             "%9.1f", 9),
            fmt(ratio(p["time_us"], m["time_us"]) if p and m else None, "%6.2f", 6)))


def check_all(name, sizes, value, want, cmp, need=None, limits=()):
    """One target over `sizes`: (name, passed, detail). A size without data fails it. With
    `need` (the busbw the target asks of Plexus at a size) and `limits` ((label, key, busbw at a
    size) of what an all-reduce reaches here: the memory ceiling, the zero-copy all-reduce, the
    staged one), the failing sizes where the target asks for more than one of them reaches are
    named under it."""
    bad, worst = [], None
    beyond = {key: [] for _, key, _ in limits}
    for size in sizes:
        v = value(size)
        if v is None or not cmp(v, want):
            bad.append("%s=%s" % (human(size), "n/a" if v is None else "%.2f" % v))
            n = need(size) if need else None
            for label, key, limit in limits:
                c = limit(size)
                if n and c and n > c:
                    beyond[key].append("%s (needs %.2f, %s %.2f)" % (human(size), n, key, c))
        if v is not None:
            worst = v if worst is None or cmp(worst, v) else worst
    detail = ("worst %.2f" % worst if worst is not None else "no data") + (
        "; failing at " + ", ".join(bad) if bad else "")
    for label, key, _ in limits:
        if beyond[key]:
            detail += "; above %s at %s" % (label, ", ".join(beyond[key]))
    return {"target": name, "pass": not bad and bool(sizes), "detail": detail,
            "above_ceiling": beyond.get("ceiling", []), "above_zero_copy": beyond.get("zcopy", []),
            "above_staged": beyond.get("staged", [])}


def evaluate(results, ranks, sizes):
    """Issue #3's targets for this rank count."""
    ge, le = (lambda v, w: v >= w), (lambda v, w: v <= w)
    plex = lambda s: busbw(results, "plexus", s)
    limits = (("the memory ceiling", "ceiling", lambda s: busbw(results, "memcpy_ranks", s)),
              ("the zero-copy all-reduce", "zcopy", lambda s: busbw(results, "zero_copy", s)),
              ("the staged all-reduce", "staged", lambda s: busbw(results, "staged", s)))
    mpi = lambda s: busbw(results, "mpi", s)

    def at_least(name, sizes, peer, factor, mine=plex, bounds=limits):
        """`mine` (Plexus's heap column unless given) >= factor x peer's busbw at every size;
        what that asks of Plexus is factor x peer's, named against `bounds`."""
        return check_all(name, sizes, lambda s: ratio(mine(s), peer(s)), factor, ge,
                         lambda s: factor * peer(s) if peer(s) else None, bounds)

    if ranks == 2:
        mid = [s for s in sizes if MIB <= s <= 64 * MIB]
        big = [s for s in sizes if s >= 4 * MIB]
        lat = [s for s in sizes if s == 8]

        def lat_ratio(s):
            p, m = best(results, "plexus", s), best(results, "mpi", s)
            return ratio(p["time_us"], m["time_us"]) if p and m else None

        return [
            at_least("busbw >= 1.5x Open MPI, 1M..64M", mid, mpi, 1.5),
            at_least("busbw >= 5x Gloo (best algorithm), 1M..64M", mid,
                     lambda s: gloo_best(results, s), 5.0),
            at_least("busbw >= 0.75x UCX put, >= 4M", big,
                     lambda s: busbw(results, "ucx_put_bw", s), 0.75),
            # Shared buffers: the staged scheme is not their limit.
            at_least("-R 1 (memAlloc) busbw >= 0.75x UCX put, >= 4M", big,
                     lambda s: busbw(results, "ucx_put_bw", s), 0.75,
                     mine=lambda s: busbw(results, "plexus_reg", s), bounds=limits[:2]),
            check_all("8 B latency <= 1.2x Open MPI", lat, lat_ratio, 1.2, le),
        ]
    ge64k = [s for s in sizes if s >= 64 * KIB]
    return [at_least("busbw >= Open MPI, >= 64K (%d ranks)" % ranks, ge64k, mpi, 1.0)]


def print_targets(targets):
    print("\n# targets (issue #3)")
    for t in targets:
        print("  %-4s %-45s %s" % ("PASS" if t["pass"] else "FAIL", t["target"], t["detail"]))


def write_json(path, ranks, entry):
    """compare.json holds one entry per rank count; a run replaces only its own."""
    data = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                data = json.load(f)
        except ValueError:
            data = {}
    data["ranks_%d" % ranks] = entry
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def plot(results, sizes, ranks, out):
    """busbw-vs-size and latency-vs-size (log axes); returns the PNG paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for kind, tools, key, ylabel in (
            ("busbw", TOOLS, "busbw",
             "busbw (GB/s); UCX, memcpy: one-way GB/s; ceiling: see the table"),
            ("latency", COLLECTIVES + ["plexus_reg"], "time_us", "time per all-reduce (us)")):
        fig, ax = plt.subplots(figsize=(8, 5))
        for tool in tools:
            pts = [(s, best(results, tool, s)) for s in sizes]
            pts = [(s, b[key]) for s, b in pts if b]
            if pts:
                style = "--" if tool in ("ucx_put_bw", "ucx_tag_bw", "memcpy",
                                         "memcpy_ranks", "zero_copy", "staged") else "-"
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o",
                        markersize=3, label=LABELS[tool])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("message size (bytes)")
        ax.set_ylabel(ylabel)
        ax.set_title("all-reduce f32 sum, %d ranks: %s (best of rounds)" % (ranks, kind))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        path = os.path.join(out, "%s_%dranks.png" % (kind, ranks))
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def report(runner, load_before, load_after):
    """Prints everything and writes the files; returns the exit code (1 when a target fails)."""
    args, results, sizes = runner.args, runner.results, runner.sizes
    print_table(results, sizes)
    targets = evaluate(results, args.ranks, sizes)
    print_targets(targets)
    for e in runner.errors:
        print("# error: " + e)
    entry = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "ranks": args.ranks,
             "rounds": args.rounds, "quick": args.quick,
             "load_before": load_before, "load_after": load_after,
             "results": {t: {str(s): v for s, v in r.items()} for t, r in results.items()},
             "targets": targets, "errors": runner.errors}
    path = os.path.join(runner.out, "compare.json")
    write_json(path, args.ranks, entry)
    print("# wrote %s" % path)
    for p in plot(results, sizes, args.ranks, runner.out):
        print("# wrote %s" % p)
    return 0 if all(t["pass"] for t in targets) and not runner.errors else 1
