"""DR baselines speed (issue 8): all five baselines for 10,000 customers × 1 event.

Goal: at most 10 s on 2 cores for the baselines themselves (CAISO 10-of-10 with adjustment,
high 5-of-10, middle 8-of-10, CalTRACK TOWT, the pooled LightGBM) on hourly panels already
in memory; loading the panels (DuckDB scan of ~100 days of half-hourly reads) is reported
beside it. The world is 10,000 customers × 100 days from May (summer events) generated
once; ``WATTWISE_BENCH_DR_WORLD`` points at an existing one. The event (one of the world's
summer events, its local day and hours) is called for every customer. Fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHILD = r"""
import json, sys, time, pathlib, datetime as dt
import numpy as np
from features.dr.config import load_dr_config
from features.dr.baselines import EventWindow, compute_baselines
from features.dr.events import read_events, local_window
from features.dr.panel import customer_zones, load_panel
ds = pathlib.Path(sys.argv[1]); cfg = load_dr_config()
evs = read_events(ds)
evs = evs[(evs.end - evs.start) >= dt.timedelta(hours=2)]
ev = evs[evs.start <= evs.start.max() - dt.timedelta(days=2)].iloc[-1]
zones = customer_zones(ds)
# the event's local day and hours, called for every customer of every zone
day, s, e = local_window(ev.start, ev.end, zones.tz[zones.region == ev.region].iloc[0])
t = time.perf_counter(); panels = []
for tz, z in zones.groupby("tz"):
    p = load_panel(ds, z.customer_id.tolist(), day - dt.timedelta(days=cfg.baselines.history_days),
                   day, tz, calendar=cfg.baselines.holidays)
    panels.append((p, EventWindow(p.day_index(day), s, e)))
load_s = time.perf_counter() - t
t = time.perf_counter(); per = {}
n = 0; finite = 0
for p, w in panels:
    ex = np.zeros(p.kwh.shape[:2], bool)
    for m in ("caiso_10of10", "high_5of10", "middle_8of10", "towt", "lgbm"):
        t1 = time.perf_counter()
        out = compute_baselines(p, w, cfg.baselines, ex, methods=(m,))[m]
        per[m] = per.get(m, 0.0) + time.perf_counter() - t1
        finite += int(np.isfinite(out).all(axis=1).sum())
    n += len(p.customers)
base_s = time.perf_counter() - t
print("RESULT " + json.dumps({"customers": n, "load_s": load_s, "baselines_s": base_s, "per": per,
                  "finite": finite, "event": ev.event_id}))
"""


def _world(quick: bool) -> Path:
    env = os.environ.get("WATTWISE_BENCH_DR_WORLD")
    if env:
        return Path(env)
    out = Path(tempfile.mkdtemp(prefix="bench-dr-")) / "w"
    n, days = (1000, 100) if quick else (10_000, 100)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "wattwise.cli",
            "data",
            "generate",
            "--customers",
            str(n),
            "--days",
            str(days),
            "--start",
            "2024-05-01",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    world = _world(quick)
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(world)], capture_output=True, text=True, check=True
    )
    out = res.stdout  # DuckDB progress bars may share the line
    m = json.loads(out[out.rindex("RESULT ") + 7 :].splitlines()[0])
    per = ", ".join(f"{k} {v:.2f} s" for k, v in m["per"].items())
    label = f"DR baselines {m['customers']:,} customers × 1 event"
    load = os.getloadavg()[0]
    return [
        {
            "benchmark": f"{label}: all five baselines",
            "value": m["baselines_s"],
            "unit": "s",
            "goal": 10,
            "better": "lower",
            "notes": f"{per}; event {m['event']}; load avg {load:.1f}",
        },
        {
            "benchmark": f"{label}: load hourly panels (DuckDB)",
            "value": m["load_s"],
            "unit": "s",
            "better": "lower",
            "notes": "~100 days of half-hourly reads summed to local hours",
        },
    ]
