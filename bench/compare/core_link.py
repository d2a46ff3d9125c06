"""The state of this host's cores, printed beside benchmark rounds (compare.py,
tools/plexus_tune_check.py)."""
import json
import os
import subprocess


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
