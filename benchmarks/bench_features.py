"""Feature pipeline speed and memory (issue 5), and the ratio against plain pandas.

Goal: every group for 10,000 customers × 1 year of half-hours (~175 M reads) in <= 60 s on
2 cores with peak memory <= 6 GB; usage features >= 5× faster than a pandas groupby. The
pandas baseline runs on a 1,000-customer world (on 175 M rows it needs > 20 GB), and the
pipeline is timed on that same world for the ratio. Each measurement runs in a fresh process
so its peak RSS is its own. ``WATTWISE_BENCH_WORLD`` points at an existing 10k world.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PIPELINE = r"""
import json, resource, sys, time, pathlib, logging
from features.pipeline import build_features
groups = sys.argv[3].split(",") if len(sys.argv) > 3 and sys.argv[3] else None
t = time.perf_counter()
s = build_features(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), groups=groups)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": s.rows,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PANDAS = r"""
import json, resource, sys, time, pathlib
import numpy as np, pandas as pd
d = pathlib.Path(sys.argv[1])
t = time.perf_counter()
meters = pd.read_parquet(d / "meters")
r = pd.read_parquet(d / "interval_reads", columns=["meter_id", "ts", "kwh", "kwh_export"])
r["meter_id"] = r["meter_id"].astype(str)
r = r.merge(meters[["meter_id", "customer_id", "timezone"]], on="meter_id")
parts = []
for tz, g in r.groupby("timezone"):
    g = g.copy(); g["local"] = g["ts"].dt.tz_convert(tz).dt.tz_localize(None); parts.append(g)
r = pd.concat(parts)
r["day"] = r["local"].dt.floor("D"); h = r["local"].dt.hour; wd = r["local"].dt.dayofweek < 5
r["peak"] = r["kwh"].where(wd & (h >= 16) & (h < 21), 0.0)
r["night"] = r["kwh"].where((h >= 1) & (h < 5)); r["kw"] = r["kwh"] * 2
daily = r.groupby(["customer_id", "day"]).agg(kwh=("kwh", "sum"), n=("kwh", "count"),
    peak=("peak", "sum"), night=("night", "mean"), kw=("kw", "max")).reset_index()
daily["end"] = daily["day"] + pd.Timedelta(days=1)
out = []
for s in pd.date_range(daily["day"].min() + pd.offsets.MonthBegin(1), daily["day"].max()
                       + pd.offsets.MonthBegin(1), freq="MS"):
    for w in (30, 90, 365):
        x = daily[(daily["end"] <= s) & (daily["end"] > s - pd.Timedelta(days=w)) & (daily["n"] >= 43)]
        a = x.groupby("customer_id").agg(m=("kwh", "mean"), sd=("kwh", "std"), pk=("peak", "sum"),
            tot=("kwh", "sum"), nb=("night", "mean"), kw=("kw", "max"))
        a["cv"] = a["sd"] / a["m"]; a["peak_share"] = a["pk"] / a["tot"]; a["snap"] = s; a["w"] = w
        out.append(a)
res = pd.concat(out)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": len(res),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def _generate(customers: int, days: int, out: Path) -> Path:
    from features.synth.config import load_world_config
    from features.synth.generate import generate

    generate(load_world_config(customers=customers, days=days), out)
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time the full build (10k × 1 y, or a small world when quick) and the pandas ratio."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        big_n, big_days, small_n = (300, 120, 300) if quick else (10_000, 365, 1_000)
        env_world = os.environ.get("WATTWISE_BENCH_WORLD")
        big = (
            Path(env_world) if env_world and not quick else _generate(big_n, big_days, tmpd / "big")
        )
        m = _child(PIPELINE, str(big), str(tmpd / "feat_big"), "")
        rows.append(
            {
                "benchmark": f"features: all groups, {big_n:,} customers × {big_days} d",
                "value": m["seconds"],
                "unit": "s",
                "goal": 60,
                "better": "lower",
                "notes": f"rows {sum(m['rows'].values()):,}",
            }
        )
        rows.append(
            {
                "benchmark": "features: peak memory",
                "value": m["peak_mb"],
                "unit": "MB",
                "goal": 6144,
                "better": "lower",
            }
        )
        small = big if quick else _generate(small_n, 365, tmpd / "small")
        p = _child(PANDAS, str(small))
        u = _child(PIPELINE, str(small), str(tmpd / "feat_small"), "usage")
        rows.append(
            {
                "benchmark": f"features: usage vs pandas ({small_n:,} customers)",
                "value": p["seconds"] / u["seconds"],
                "unit": "x",
                "goal": 5,
                "baseline": round(p["seconds"], 1),
                "notes": f"pipeline usage {u['seconds']:.1f} s (incl. degree-day fit, anomalies, "
                f"EV nights) vs pandas subset {p['seconds']:.1f} s, "
                f"pandas peak {p['peak_mb']:.0f} MB",
            }
        )
    return rows
