"""Churn tuning speed and model logging time (issue: training platform).

Goals: 30 Optuna trials of churn on 20,000 customers × 12 monthly snapshots in at most
3 minutes on 2 cores (pruning, LightGBM threads); ``log_model`` at most 1 s. The world
(20,000 customers × 13 months) is generated and featurized first unless
``$WATTWISE_BENCH_WORLD`` points to a dataset whose features are built.
"""

from __future__ import annotations

from typing import Any

from benchmarks.scratch import training_world


def run(quick: bool = False) -> list[dict[str, Any]]:
    import mlflow

    from training.config import load_model_config
    from training.pipeline import train
    from wattwise.settings import load_settings

    with training_world("bench-train-", 1000 if quick else 20_000) as ds:
        settings = load_settings()
        trials = 5 if quick else 30
        cfg = load_model_config("churn", tuning={"trials": trials, "timeout_s": 3600})
        res = train(cfg, settings, dataset_dir=ds, promote=False)
        run = mlflow.get_run(res.run_id)
        rows = int(run.data.params["training_rows"])
        m = res.all_metrics
        return [
            {
                "benchmark": f"churn tuning: {res.tune.trials_run} trials on {rows:,} rows",
                "value": res.tune.seconds,
                "unit": "s",
                "goal": 180 if not quick else None,
                "better": "lower",
                "notes": f"{res.tune.pruned} pruned",
            },
            {
                "benchmark": "churn test ROC-AUC gap to the oracle (pooled)",
                "value": m.get("oracle_gap", float("nan")),
                "unit": "AUC",
                "goal": 0.02,
                "better": "lower",
                "notes": f"model {m['roc_auc']:.4f}, oracle {m.get('oracle_roc_auc', float('nan')):.4f} "
                f"on the same {int(m['rows']):,} test rows",
            },
            {
                "benchmark": "churn test ROC-AUC gap to the oracle (within snapshot)",
                "value": m.get("oracle_gap_within_snapshot", float("nan")),
                "unit": "AUC",
                "goal": 0.02,
                "better": "lower",
                "notes": f"model {m['roc_auc_within_snapshot']:.4f}, oracle "
                f"{m.get('oracle_roc_auc_within_snapshot', float('nan')):.4f} (mean over test snapshots)",
            },
            {
                "benchmark": "log_model (pyfunc, explicit requirements)",
                "value": run.data.metrics["log_model_seconds"],
                "unit": "s",
                "goal": 1,
                "better": "lower",
                "notes": "first call in the process (includes MLflow's lazy imports)",
            },
            {
                "benchmark": "churn training end to end",
                "value": res.seconds,
                "unit": "s",
                "notes": "training set (Feast PIT join) + tuning + final fit + evaluation + MLflow",
            },
        ]
