"""Feast online lookup latency and materialization time (issue: feature store).

Goals: one customer's churn_v1 features from the online store, in process: p50 ≤ 2 ms,
p99 ≤ 5 ms; materializing 10,000 customers ≤ 30 s. Uses ``$WATTWISE_BENCH_WORLD`` (a
generated dataset folder) when set, else generates one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq


def _world(customers: int, days: int) -> tuple[Path, bool]:
    env = os.environ.get("WATTWISE_BENCH_WORLD")
    if env:
        return Path(env), False
    from features.synth.config import load_world_config
    from features.synth.generate import generate

    out = Path(tempfile.mkdtemp(prefix="bench-fs-")) / "synthetic"
    generate(load_world_config(customers=customers, days=days), out)
    return out, True


def run(quick: bool = False) -> list[dict[str, Any]]:
    from features.pipeline import build_features
    from features.store import apply, materialize, online, open_store
    from training.kinds import feature_services

    ds, owned = _world(300 if quick else 10_000, 120 if quick else 365)
    try:
        if not (ds / "features" / "usage.parquet").exists():
            build_features(ds)
        apply(ds, feature_services())
        usage = pq.read_table(ds / "features" / "usage.parquet", columns=["customer_id"])
        n_customers = len(np.unique(usage.column(0).to_numpy()))
        t0 = time.perf_counter()
        materialize(ds)
        mat_s = time.perf_counter() - t0
        store = open_store(ds)
        ids = [f"C{i:07d}" for i in range(min(n_customers, 5000))]
        rng = np.random.default_rng(0)
        for k in ids[:20]:  # warm up
            online(store, "churn_v1", [k])
        lat = []
        for k in rng.choice(ids, size=300 if quick else 2000):
            t = time.perf_counter()
            online(store, "churn_v1", [str(k)])
            lat.append((time.perf_counter() - t) * 1000)
        lat_a = np.array(lat)
        return [
            {
                "benchmark": "online lookup churn_v1 (1 customer): p50",
                "value": float(np.percentile(lat_a, 50)),
                "unit": "ms",
                "goal": 2,
                "better": "lower",
                "notes": f"{len(lat)} lookups, in process, SQLite online store",
            },
            {
                "benchmark": "online lookup churn_v1 (1 customer): p99",
                "value": float(np.percentile(lat_a, 99)),
                "unit": "ms",
                "goal": 5,
                "better": "lower",
            },
            {
                "benchmark": f"materialize {n_customers:,} customers (all views)",
                "value": mat_s,
                "unit": "s",
                "goal": None if quick else 30,
                "better": "lower",
            },
        ]
    finally:
        if owned:
            shutil.rmtree(ds.parent, ignore_errors=True)
