"""Propensity against its oracle, per program, and its training time (issue: training platform).

Goal: every program's test ROC-AUC within 0.02 of the oracle's, both on the same test rows
(the oracle is the true probability of the label: :func:`training.oracle.enrollment_oracle`).
Also reported: the Qini of the T-learner uplift as a share of the oracle's (true effects),
and the end-to-end training time. The world (20,000 customers × 396 days) is generated and
featurized first unless ``$WATTWISE_BENCH_WORLD`` points to a dataset whose features are
built; ``$WATTWISE_BENCH_PROPENSITY_TRIALS`` sets the Optuna trials (default: the config's).
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.scratch import training_world


def run(quick: bool = False) -> list[dict[str, Any]]:

    from training.config import load_model_config
    from training.pipeline import train
    from wattwise.settings import load_settings

    with training_world("bench-prop-", 1000 if quick else 20_000) as ds:
        over: dict[str, Any] = {"timeout_s": 3600}
        if quick:
            over["trials"] = 1
        elif os.environ.get("WATTWISE_BENCH_PROPENSITY_TRIALS"):
            over["trials"] = int(os.environ["WATTWISE_BENCH_PROPENSITY_TRIALS"])
        cfg = load_model_config("propensity", tuning=over)
        res = train(cfg, load_settings(), dataset_dir=ds, promote=False)
        nan = float("nan")
        rows: list[dict[str, Any]] = []
        for p, m in res.per_program.items():
            rows.append(
                {
                    "benchmark": f"propensity {p}: test ROC-AUC gap to the oracle",
                    "value": m.get("oracle_gap", nan),
                    "unit": "AUC",
                    "goal": 0.02,
                    "better": "lower",
                    "notes": f"model {m['roc_auc']:.4f}, oracle {m.get('oracle_roc_auc', nan):.4f} "
                    f"on the same {int(m['rows']):,} test rows ({int(m.get('positives', 0))} "
                    f"enrolments; {m.get('truth_coverage', nan):.0%} eligible at the snapshot)",
                }
            )
        for p, m in res.per_program.items():
            rows.append(
                {
                    "benchmark": f"propensity {p}: uplift Qini share of the oracle's",
                    "value": m.get("qini_share_of_oracle", nan),
                    "unit": "share",
                    "better": "higher",
                    "notes": "T-learner uplift ranked against the true offer effects, eligible rows",
                }
            )
        rows.append(
            {
                "benchmark": "propensity training end to end",
                "value": res.seconds,
                "unit": "s",
                "better": "lower",
                "notes": f"{res.tune.trials_run} trials in {res.tune.seconds:.0f} s, 7 programs "
                "(response + T-learner), training set, evaluation, MLflow",
            }
        )
        return rows
