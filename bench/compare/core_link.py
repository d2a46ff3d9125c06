"""The state of this host's cores, printed beside benchmark rounds (compare.py,
tools/plexus_tune_check.py), and runs kept to one state (--state near|far in both)."""
import json
import os
import subprocess
import sys
import time


def hand_off_ns(build):
    """The one-way cache-line hand-off between two cores as plexus-core-link measures it, or
    None without it: about 45 ns when this VM's two vCPUs share a cache, 220 ns when they do
    not, and the shm all-reduce then takes twice as long (bench/core_link.cc)."""
    try:
        out = subprocess.run([os.path.join(build, "plexus-core-link"), "--json"],
                             capture_output=True, text=True, timeout=30)
        return float(json.loads(out.stdout)["hand_off_ns"])
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None


def core_link(build):
    """hand_off_ns as text: "54 ns", or "-"."""
    ns = hand_off_ns(build)
    return "-" if ns is None else "%.0f ns" % ns


def hand_offs(before, after):
    """ "core hand-off 52 / 48 ns": the hand-offs measured around a run."""
    return "core hand-off %s / %s ns" % tuple("-" if x is None else "%.0f" % x
                                             for x in (before, after))


def in_state(state, ns, limit_ns):
    """Whether a hand-off of `ns` is in `state`: "near" (at most limit_ns), "far" (above it)
    or "any"."""
    if state == "any":
        return True
    if ns is None:
        return False
    return ns <= limit_ns if state == "near" else ns > limit_ns


def add_state_arguments(parser, what="runs"):
    """--state, --state-ns and --retries, as every script that keeps its `what` to one state
    (run_in_state) takes them."""
    parser.add_argument("--state", choices=["any", "near", "far"], default="any",
                        help="keep only %s with the core hand-off (plexus-core-link) at most "
                             "(near) or above (far) --state-ns before and after, running them "
                             "again" % what)
    parser.add_argument("--state-ns", type=float, default=100)
    parser.add_argument("--retries", type=int, default=8,
                        help="runs again per %s for --state" % what.rstrip("s"))


def run_in_state(build, state, limit_ns, retries, label, run, wait=False, discard=None):
    """run()'s result; with state near|far, run again (up to `retries` times) while the
    hand-off measured before or after it is not in that state: on a VM whose vCPUs share a
    cache only some of the time, runs in one state are not compared with runs in the other.
    With `wait`, each try first waits (up to 2 minutes) for the state. `discard()`, when given,
    is called before each run again (to drop what the rejected run recorded)."""
    for attempt in range(retries + 1):
        if attempt > 0 and discard is not None:
            discard()
        waited = 0
        while wait and not in_state(state, hand_off_ns(build), limit_ns) and waited < 120:
            time.sleep(2)
            waited += 2
        before = hand_off_ns(build)
        result = run()
        after = hand_off_ns(build)
        ok = in_state(state, before, limit_ns) and in_state(state, after, limit_ns)
        print(f"# {label}: {hand_offs(before, after)}{'' if ok else ': again'}", file=sys.stderr,
              flush=True)
        if ok:
            return result
    print(f"# {label}: kept after {retries} retries", file=sys.stderr, flush=True)
    return result
