"""The scoring service under load with heavy requests injected, measured with locust.

Goals (issue: hostile input and load): churn p99 ≤ 20 ms at 200 requests/s of a mix of every
endpoint, and ≤ 50 ms with one heavy request a second injected (a year's breakdown, a batch
of the batch limit, a region's DR targeting). The service is the one a user starts
(``wattwise serve start``'s service, on the demo's world and its @champion models: run
``make demo`` first, or name a dataset with ``$WATTWISE_BENCH_WORLD``); locust runs in its
own process (``benchmarks/locustfile.py``) and reports every request's latency exactly.

    python -m benchmarks.bench_load [--seconds 60] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def make_plan(dataset_dir: Path, max_batch: int) -> dict[str, Any]:
    """Ids, the last DR event and its enrolled customers, a month and a year of readings."""
    import pandas as pd

    from training.dr.plan import enrolled_customers

    ids = pd.read_parquet(dataset_dir / "customers", columns=["customer_id"]).customer_id
    events = pd.read_parquet(dataset_dir / "events").sort_values("start")
    last = events.iloc[-1]
    enrolled = enrolled_customers(dataset_dir, pd.Timestamp(last.start), last.region)
    months = sorted(p.name.split("=")[1] for p in (dataset_dir / "interval_reads").glob("month=*"))
    month = pd.Timestamp(months[-2] + "-01", tz="UTC")
    year_end = pd.Timestamp(months[-1] + "-01", tz="UTC")
    return {
        "ids": ids.astype(str).tolist(),
        "enrolled": enrolled.customer_id.astype(str).tolist(),
        "event_id": str(last.event_id),
        "month": {"start": month.isoformat(), "end": (month + pd.DateOffset(months=1)).isoformat()},
        "year": {
            "start": (year_end - pd.Timedelta(days=365)).isoformat(),
            "end": year_end.isoformat(),
        },
        "max_batch": max_batch,
    }


def served(url: str) -> list[str]:
    """The kinds whose model the service has loaded (its /readyz)."""
    import urllib.request

    with urllib.request.urlopen(url + "/readyz", timeout=10) as r:
        models = json.load(r)["models"]
    return [k for k, m in models.items() if m["loaded"]]


def summarise(path: Path, seconds: float) -> dict[str, dict[str, float]]:
    """p50/p99/max (ms), count, rate and failures per request name."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    out: dict[str, dict[str, float]] = {}
    for name in sorted({r["name"] for r in rows}):
        ms = np.array([r["ms"] for r in rows if r["name"] == name])
        bad = sum(1 for r in rows if r["name"] == name and r["status"] != 200)
        out[name] = {
            "n": int(ms.size),
            "rate": round(ms.size / seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2),
            "failed": bad,
        }
    return out


def run_locust(url: str, plan: Path, stalls: bool, seconds: int, rate: float, out: Path) -> None:
    """One headless locust run at ``rate`` requests/s of the mix (users at a 2 s pace)."""
    pace = 2.0
    users = int(round(rate * pace)) + (1 if stalls else 0)
    env = {
        **os.environ,
        "WATTWISE_BENCH_LOAD_PLAN": str(plan),
        "WATTWISE_BENCH_LOAD_OUT": str(out),
        "WATTWISE_BENCH_LOAD_STALLS": "1" if stalls else "0",
        "WATTWISE_BENCH_LOAD_PACE": str(pace),
    }
    cmd = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
        "--host", url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    subprocess.run(cmd, env=env, check=False, timeout=seconds + 120)
    if not out.exists():
        raise RuntimeError(
            "locust wrote no latencies (is locust installed? make bench installs it)"
        )


def run(
    quick: bool = False, seconds: int | None = None, rate: float = 200.0
) -> list[dict[str, Any]]:
    """Both runs (without, then with the heavy requests) against one service."""
    from serving.config import load_serving_config
    from serving.server import settings_env, start_server, stop_server
    from wattwise.settings import load_settings

    seconds = seconds or (15 if quick else 60)
    settings = load_settings()
    cfg = load_serving_config()
    dataset = settings.data_dir / os.environ.get("WATTWISE_BENCH_WORLD", cfg.dataset)
    if not (dataset / "customers").exists():
        raise RuntimeError(
            f"no dataset at {dataset}: run make demo first (it builds and trains it)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="ww-load-"))
    plan = tmp / "plan.json"
    env = {**settings_env(settings, dataset), "WW_SERVING_PREDLOG__ROOT": str(tmp / "predlog")}
    server = start_server(env, log_path=tmp / "service.log")
    rows: list[dict[str, Any]] = []
    try:
        loaded = served(server.url)
        plan.write_text(json.dumps({**make_plan(dataset, cfg.max_batch), "kinds": loaded}))
        for kind in ("churn", "propensity", "disaggregation", "dr_response"):
            if kind not in loaded:  # the demo trains churn and propensity only
                print(f"{kind}: no @champion loaded (wattwise train {kind}): not in the mix")
        for stalls in (False, True):
            out = tmp / f"latencies-{int(stalls)}.jsonl"
            run_locust(server.url, plan, stalls, seconds, rate, out)
            label = "with heavy requests" if stalls else "without"
            for name, s in summarise(out, seconds).items():
                goal = (50.0 if stalls else 20.0) if name == "churn" else None
                rows.append(
                    {
                        "benchmark": f"load {label}: {name} p99",
                        "value": s["p99_ms"],
                        "unit": "ms",
                        "goal": goal,
                        "better": "lower",
                        "notes": f"p50 {s['p50_ms']} ms, max {s['max_ms']} ms, {s['n']} requests"
                        f" ({s['rate']}/s), {s['failed']} not 200",
                    }
                )
    finally:
        stop_server(server)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--rate", type=float, default=200.0)
    a = p.parse_args()
    for r in run(seconds=a.seconds, rate=a.rate):
        print(f"{r['benchmark']:<55} {r['value']:>9.2f} {r['unit']}  {r['notes']}")


if __name__ == "__main__":
    main()
