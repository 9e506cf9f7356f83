"""Synthetic utility generation speed and peak memory (issue: the synthetic utility).

Goals: at least 2 million interval readings per second on 2 cores, parquet writing included
(10,000 customers × 1 year of half-hours in under 90 s), peak memory under 4 GB at any size.
Each size runs in a fresh process so that its peak RSS (parent + largest worker) is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from typing import Any

CHILD = r"""
import json, resource, sys, tempfile, pathlib
from features.synth.config import load_world_config
from features.synth.generate import generate
n = int(sys.argv[1]); days = int(sys.argv[2])
out = pathlib.Path(tempfile.mkdtemp()) / "w"
s = generate(load_world_config(customers=n, days=days), out)
# VmHWM is this process's own peak (ru_maxrss survives exec on Linux and would report the
# benchmark runner's peak); workers are measured through RUSAGE_CHILDREN.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
kid = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"readings": s.readings, "seconds": s.seconds, "parent_mb": hwm / 1024,
                  "worker_mb": kid / 1024}))
import shutil; shutil.rmtree(out.parent)
"""


def measure(customers: int, days: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory():
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(customers), str(days)],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict[str, Any]]:
    sizes = [(1000, 365), (10000, 365)] if not quick else [(200, 60)]
    rows: list[dict[str, Any]] = []
    for n, days in sizes:
        m = measure(n, days)
        rate = m["readings"] / m["seconds"]
        peak = m["parent_mb"] + m["worker_mb"]
        label = f"generate {n:,} customers × {days} d"
        rows.append(
            {
                "benchmark": f"{label}: readings/s",
                "value": rate,
                "unit": "readings/s",
                "goal": 2_000_000,
                "notes": f"{m['readings']:,} readings in {m['seconds']:.1f} s",
            }
        )
        rows.append(
            {
                "benchmark": f"{label}: peak memory",
                "value": peak,
                "unit": "MB",
                "goal": 4096,
                "better": "lower",
                "notes": f"parent {m['parent_mb']:.0f} MB + largest worker {m['worker_mb']:.0f} MB",
            }
        )
        if n == 10000:
            rows.append(
                {
                    "benchmark": f"{label}: wall time",
                    "value": m["seconds"],
                    "unit": "s",
                    "goal": 90,
                    "better": "lower",
                }
            )
    return rows
