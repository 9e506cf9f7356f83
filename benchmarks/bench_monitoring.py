"""Drift report speed and memory (issue: monitoring).

Goal: one `wattwise drift report` on 100,000 logged predictions × 50 features in <= 30 s
with peak memory <= 4 GB. A first process registers a model version with a 5,000-row
reference in MLflow (sqlite) and writes the week of predictions to a real prediction log
(45 numeric features, 5 categorical incl. region and tariff; a few shifted); a second,
fresh process runs the whole report (read the log, load the reference from MLflow, every
test, segments, quality, the Evidently HTML, JSON, index, MLflow logging) so its peak RSS
is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

SETUP = r"""
import sys, uuid, json
from datetime import UTC, datetime, timedelta
import numpy as np, pandas as pd, mlflow
from serving.predlog import PredictionLog, PredictionRecord
from training import tracking
from training.reference import build_reference, log_reference
from wattwise.settings import load_settings

n, n_num, n_cat = int(sys.argv[1]), 45, 5
rng = np.random.default_rng(0)
def frame(rows, shift):
    d = {f"num_{i:02d}": rng.normal(shift if i < 5 else 0.0, 1.0, rows) for i in range(n_num)}
    d["region"] = rng.choice(["coastal", "inland", "mountain"], rows)
    d["rate_current_tariff"] = rng.choice(["flat", "tou", "ev"], rows, p=[0.8, 0.15, 0.05])
    d["dwelling_type"] = rng.choice(["detached", "semi", "apartment"], rows)
    for i in range(n_cat - 3):
        d[f"cat_{i}"] = rng.choice(list("abcdef"), rows)
    x = pd.DataFrame(d)
    return x, 1 / (1 + np.exp(-(x["num_00"] - 2)))
s = load_settings()
tracking.setup(s); tracking.experiment(s, "bench_mon")
X, p = frame(20_000, 0.0)
with mlflow.start_run() as run:
    log_reference(build_reference(X, p.to_numpy(), 5000, 0))
c = mlflow.MlflowClient()
c.create_registered_model("bench_mon")
c.create_model_version("bench_mon", f"{run.info.artifact_uri}/reference", run.info.run_id)
end = datetime(2024, 7, 8, tzinfo=UTC)
cur, pc = frame(n, 0.3)
ts = end - pd.to_timedelta(rng.uniform(1, 7 * 86400 - 1, n), unit="s")
recs = cur.to_dict("records")
with PredictionLog(s.data_dir / "predlog", b"bench-monitoring-key-0123") as log:
    for a in range(0, n, 10_000):
        log.append([PredictionRecord(uuid.uuid4().hex, ts[i].to_pydatetime(), "bench_mon", "1",
                    f"C{i:07d}", float(pc.iloc[i]), recs[i]) for i in range(a, min(n, a + 10_000))])
print(json.dumps({"end": end.isoformat()}))
"""

REPORT = r"""
import json, resource, sys, time
from datetime import datetime
from serving.monitoring.config import load_monitoring_config
from serving.monitoring.service import drift_report
from wattwise.settings import load_settings
s, cfg = load_settings(), load_monitoring_config()
t = time.perf_counter()
r0 = resource.getrusage(resource.RUSAGE_SELF)
out = drift_report(s, cfg, "bench_mon", window="7d", end=datetime.fromisoformat(sys.argv[1]))
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
print(json.dumps({"seconds": time.perf_counter() - t, "cpu_s": cpu, "rows": out.summary.rows_current,
                  "features": len(out.summary.features), "status": out.summary.status,
                  "html_mb": out.html.stat().st_size / 1e6 if out.html else 0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 5_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="bench-mon-") as tmp:
        env = {
            **os.environ,
            "WATTWISE_PATHS__DATA_DIR": f"{tmp}/data",
            "WATTWISE_PATHS__REPORTS_DIR": f"{tmp}/reports",
            "WATTWISE_PATHS__MLRUNS_DIR": f"{tmp}/mlruns",
            "WATTWISE_MLFLOW__TRACKING_URI": f"sqlite:///{tmp}/mlruns/mlflow.db",
            "WATTWISE_MLFLOW__ARTIFACT_ROOT": f"{tmp}/mlruns/artifacts",
        }
        setup = _child(SETUP, env, str(n))
        m = _child(REPORT, env, setup["end"])
    load = os.getloadavg()[0]
    notes = (
        f"{m['rows']:,} predictions × {m['features']} features, status {m['status']}, "
        f"HTML {m['html_mb']:.1f} MB; CPU time {m['cpu_s']:.1f} s (the wall time on a shared "
        f"machine is the CPU time stretched by the load); load average {load:.1f} on "
        f"{os.cpu_count()} cores"
    )
    return [
        {
            "benchmark": f"drift report: {n:,} predictions × 50 features",
            "value": m["seconds"],
            "unit": "s",
            "goal": None if quick else 30,
            "better": "lower",
            "notes": notes,
        },
        {
            "benchmark": "drift report: CPU time (≈ wall time on an idle machine)",
            "value": m["cpu_s"],
            "unit": "s",
            "goal": None if quick else 30,
            "better": "lower",
        },
        {
            "benchmark": "drift report: peak memory",
            "value": m["peak_mb"],
            "unit": "MB",
            "goal": None if quick else 4096,
            "better": "lower",
        },
    ]


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
