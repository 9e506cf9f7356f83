"""Churn on the real PowerCo table: same pipeline, its own config, and scoring a new file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.attributes import build_attributes
from features.ingest.run import run_import
from features.store import apply
from training.config import load_model_config
from training.pipeline import train_binary

pytestmark = [pytest.mark.slow]


def test_powerco_train_then_score_a_new_file(
    shared_data: Path, tmp_path: Path, mlflow_settings
) -> None:  # type: ignore[no-untyped-def]
    from serving.batch import score_file

    src = shared_data / "powerco_churn" / "client_data.csv"
    ds = tmp_path / "powerco"
    run_import("powerco", [src], ds)
    assert build_attributes(ds) > 10_000
    apply(ds)
    cfg = load_model_config(
        "churn_powerco",
        tuning={"trials": 1},
        estimator={"n_estimators": 300, "learning_rate": 0.05},
        split={"kind": "stratified", "folds": 2},
    )
    res = train_binary(cfg, mlflow_settings, dataset_dir=ds)
    assert res.metrics["roc_auc"] > 0.62  # published honest results: 0.66-0.70
    assert res.promotion is not None and res.promotion.moved
    # a new file of the same schema, without the label, scored with the same feature code
    new = pd.read_csv(src).drop(columns=["churn"]).head(300)
    new_file = tmp_path / "new_clients.csv"
    new.to_csv(new_file, index=False)
    out = tmp_path / "scores.csv"
    scores = score_file(mlflow_settings, "churn_powerco", "powerco", [new_file], out)
    written = pd.read_csv(out)
    assert len(written) == 300 and set(written.customer_id) == set(new.id)
    assert written.probability.between(0, 1).all()
    assert scores.probability.std() > 0
