"""`wattwise train list` tells the truth: each run with its own headline metrics (its
config's metric first) and its training rows, the best runs by the config's metric in its
direction, for every kind (disaggregation has no ROC-AUC)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

from tests.disaggregation.test_pipeline import run_cli
from tests.integration.test_training_registry import make_set
from tests.training.test_train_honest import churn_cfg
from training.pipeline import train
from wattwise.settings import Settings


@pytest.mark.slow
def test_train_list_shows_each_runs_own_metric_rows_and_best_by_its_direction(
    tiny_world: Any, mlflow_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.disaggregation.conftest import TINY_NET, TINY_SPACE
    from training.disaggregation.config import load_disagg_config

    # a kind without ROC-AUC: disaggregation (skill, windows)
    ds = tmp_path / "synthetic"
    shutil.copytree(tiny_world.out_dir, ds)
    dcfg = load_disagg_config(
        "disaggregation",
        estimator=TINY_NET,
        search_space=TINY_SPACE,
        tuning={"trials": 1, "timeout_s": 60},
        compare_archs=[],
    )
    dis = train(dcfg, mlflow_settings, dataset_dir=ds, promote=False)
    # a config whose metric is minimised: Brier, on sets whose Brier and ROC-AUC disagree
    # (rare noisy labels: low Brier, AUC near 0.5; frequent informative ones: the reverse)
    bcfg = churn_cfg("churn_brier", metric={"name": "brier", "direction": "minimize"})
    sets = [make_set(500, 21, 0.0), make_set(500, 22, 1.5), make_set(500, 23, 0.7)]
    sets[0]["churned"] = np.random.default_rng(1).random(len(sets[0])) < 0.03
    runs = [
        train(bcfg, mlflow_settings, dataset_dir=tmp_path / "b", data=d, promote=False)
        for d in sets
    ]
    by_brier = sorted(runs, key=lambda r: r.all_metrics["brier"])
    assert by_brier != sorted(runs, key=lambda r: -r.all_metrics["roc_auc"])  # they disagree

    code, out, err = run_cli(capsys, "train", "list")
    assert code == 0, err
    assert "nan" not in out and "rows ?" not in out, out
    lines = out.splitlines()
    head = lines.index(next(ln for ln in lines if ln.startswith("wattwise/disaggregation:")))
    assert "best by test skill (maximize)" in lines[head]
    (run_line,) = [ln for ln in lines[head + 1 :] if dis.run_id[:8] in ln]
    windows = int(mlflow.get_run(dis.run_id).data.params["training_rows"])
    assert windows > 0 and f"training rows {windows}" in run_line
    assert f"skill {dis.metrics['skill']:.4f}" in run_line and "roc_auc" not in run_line

    head = lines.index(next(ln for ln in lines if ln.startswith("wattwise/churn_brier:")))
    assert "3 training runs, best by test brier (minimize)" in lines[head]
    listed = lines[head + 1 : head + 4]
    assert [ln.split()[1] for ln in listed] == [r.run_id[:8] for r in by_brier]
    for r, ln in zip(by_brier, listed, strict=True):
        assert ln.split("test ")[1].startswith(f"brier {r.all_metrics['brier']:.4f}")
        assert f"roc_auc {r.all_metrics['roc_auc']:.4f}" in ln and "training rows 3000" in ln
