"""Feature pipeline speed and memory (issue 5), and the ratio against plain pandas.

Goal: every group for 10,000 customers × 1 year of half-hours (~175 M reads) in <= 60 s on
2 cores with peak memory <= 6 GB; usage features >= 5× faster than a pandas groupby. The
pandas baseline computes 16 of the 21 usage features the same way (local days from
``tz_convert``, complete days, windows of days ending before each monthly snapshot, peak /
evening / night shares, load factor, weekday ratio, CV, trend, export share, anomalies);
EV nights and the degree-day fit are left out, which favours pandas. It runs on a
1,000-customer world (on 175 M rows it needs > 20 GB), and the pipeline is timed on that
same world for the ratio. Each measurement runs in a fresh process
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
r = r.merge(meters[["meter_id", "customer_id", "timezone", "interval_minutes"]], on="meter_id")
parts = []
for tz, g in r.groupby("timezone"):
    g = g.copy(); g["local"] = g["ts"].dt.tz_convert(tz).dt.tz_localize(None); parts.append(g)
r = pd.concat(parts)
h = r["local"].dt.hour; wd = r["local"].dt.dayofweek < 5
r["day"] = r["local"].dt.floor("D")
r["peak"] = r["kwh"].where(wd & (h >= 16) & (h < 21))
r["eve"] = r["kwh"].where((h >= 17) & (h < 20))
r["night"] = r["kwh"].where((h >= 1) & (h < 5))
r["kw"] = r["kwh"] * 60 / r["interval_minutes"]
daily = r.groupby(["customer_id", "day"]).agg(
    kwh=("kwh", "sum"), n=("kwh", "count"), peak=("peak", "sum"), eve=("eve", "sum"),
    night=("night", "sum"), n_night=("night", "count"), kw=("kw", "max"),
    exp=("kwh_export", "sum"), imin=("interval_minutes", "first")).reset_index()
del r, parts
tzmap = meters.groupby("customer_id")["timezone"].first()
ends = [(g["day"] + pd.Timedelta(days=1)).dt.tz_localize(tz, ambiguous="NaT",
         nonexistent="NaT").dt.tz_convert("UTC")
        for tz, g in daily.groupby(daily["customer_id"].map(tzmap))]
daily["end"] = pd.concat(ends)
daily["hours"] = daily["n"] * daily["imin"] / 60
daily["night_h"] = daily["n_night"] * daily["imin"] / 60
daily["complete"] = daily["n"] * daily["imin"] >= 0.9 * 1440
daily["weekend"] = daily["day"].dt.dayofweek >= 5
first, last = daily["day"].min(), daily["day"].max()
snaps = pd.date_range(first + pd.offsets.MonthBegin(1), last + pd.offsets.MonthBegin(1),
                      freq="MS", tz="UTC")
out = []
for s in snaps:
    def win(a, b, complete=True):  # days that ended in (s - a days, s - b days]
        x = daily[(daily["end"] > s - pd.Timedelta(days=a)) & (daily["end"] <= s - pd.Timedelta(days=b))]
        return x[x["complete"]] if complete else x
    c30, c90, c365, ly, bl = win(30, 0), win(90, 0), win(365, 0), win(395, 365), win(120, 30)
    g90 = win(90, 0, complete=False).groupby("customer_id")
    k = lambda x: x.groupby("customer_id")["kwh"]
    a = pd.DataFrame({
        "m30": k(c30).mean(), "n30": k(c30).count(), "m90": k(c90).mean(), "sd90": k(c90).std(),
        "m365": k(c365).mean(), "days365": k(c365).count(), "ly": k(ly).mean(), "nly": k(ly).count(),
        "kwh90": g90["kwh"].sum(), "peak": g90["peak"].sum(), "eve": g90["eve"].sum(),
        "night": g90["night"].sum(), "night_h": g90["night_h"].sum(), "hours": g90["hours"].sum(),
        "kw": g90["kw"].max(), "exp": g90["exp"].sum(min_count=1),
        "wd": k(c90[~c90["weekend"]]).mean(), "we": k(c90[c90["weekend"]]).mean(),
        "bm": k(bl).mean(), "bsd": k(bl).std()})
    a["peak_share"] = a["peak"] / a["kwh90"]; a["offpeak_share"] = 1 - a["peak_share"]
    a["eve_share"] = a["eve"] / a["kwh90"]; a["lf"] = a["kwh90"] / a["hours"] / a["kw"]
    a["base_kw"] = a["night"] / a["night_h"]; a["wk_ratio"] = a["wd"] / a["we"]
    a["cv"] = a["sd90"] / a["m90"]; a["exp_share"] = a["exp"] / (a["kwh90"] + a["exp"])
    a["trend"] = (a["m30"] / a["ly"] - 1).where((a["n30"] >= 20) & (a["nly"] >= 20))
    z = c30.join(a[["bm", "bsd"]], on="customer_id")
    hits = ((z["kwh"] - z["bm"]).abs() / z["bsd"] > 3).groupby(z["customer_id"]).sum()
    a["anomalies"] = hits.reindex(a.index).fillna(0).where(a["bsd"].notna())
    a["snap"] = s
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
                "notes": f"pipeline usage {u['seconds']:.1f} s (all 21 usage features incl. the "
                f"degree-day fit and EV nights) vs pandas {p['seconds']:.1f} s (16 of them: "
                f"means, days, shares, load factor, baseload, weekday ratio, CV, trend, max "
                f"demand, export share, anomalies; no EV nights, no degree-day fit), "
                f"pandas peak {p['peak_mb']:.0f} MB",
            }
        )
    return rows
