"""Synthetic utility → features → Feast → training sets → trained, registered models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import store as fs
from training.config import load_model_config
from training.kinds import get_kind
from training.pipeline import train


def training_set(ds: Path, kind: str) -> pd.DataFrame:
    """A kind's labels joined with its FeatureService, as the pipeline reads them."""
    k = get_kind(kind)
    assert k.labels is not None and k.service_name is not None
    return fs.training_set(ds, k.labels, k.service_name)


pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_training_sets_are_point_in_time(tiny_feature_store: Path) -> None:
    df = training_set(tiny_feature_store, "churn")
    assert len(df) > 0 and df.churned.notna().all()
    usage = pq.read_table(tiny_feature_store / "features" / "usage.parquet").to_pandas()
    row = df.dropna(subset=["usage_mean_daily_kwh_30d"]).iloc[len(df) // 2]
    src = usage[
        (usage.customer_id == row.customer_id) & (usage.event_timestamp <= row.event_timestamp)
    ]
    latest = src.sort_values("event_timestamp").iloc[-1]
    assert latest.event_timestamp == row.event_timestamp  # monthly features line up with labels
    assert np.isclose(latest.usage_mean_daily_kwh_30d, row.usage_mean_daily_kwh_30d)
    prop = training_set(tiny_feature_store, "propensity")
    assert {"enrolled_paperless", "offered_paperless"} <= set(prop.columns)


def test_online_store_serves_latest_values(tiny_feature_store: Path) -> None:
    """Online values equal the offline point-in-time values at the newest snapshot."""
    usage = pq.read_table(tiny_feature_store / "features" / "usage.parquet").to_pandas()
    newest = usage.event_timestamp.max()
    ids = sorted(usage.customer_id.unique())[:40] + ["C9999999"]
    store = fs.open_store(tiny_feature_store)
    offline = fs.historical(
        store, "churn_v1", pd.DataFrame({"customer_id": ids, "event_timestamp": newest})
    )
    got = fs.online(store, "churn_v1", ids)
    for col in ("usage_mean_daily_kwh_30d", "usage_evening_share_90d"):
        want = offline[col].to_numpy(dtype=float)
        assert np.allclose(np.array(got[col], dtype=float), want, equal_nan=True), col
    assert np.isfinite(offline.usage_mean_daily_kwh_30d.to_numpy(dtype=float)).sum() > 20
    assert got["usage_mean_daily_kwh_30d"][-1] is None


def test_churn_and_propensity_train_and_register(tiny_feature_store: Path, mlflow_settings) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from training.registry import history

    # the floor decides the first champion: a tiny world's churn may not pass it (the
    # history says why either way); with no floor the first version is champion
    floored = train(
        load_model_config("churn", tuning={"trials": 1}, estimator={"n_estimators": 60}),
        mlflow_settings,
        dataset_dir=tiny_feature_store,
    )
    assert floored.promotion is not None
    assert floored.promotion.moved == (floored.metrics["roc_auc"] >= 0.55)
    last = history(mlflow_settings, "churn")[-1]
    assert last["to"] == floored.version and ("floor" in last["reason"])
    assert last["alias"] == ("champion" if floored.promotion.moved else "gate-refused")
    churn = train(
        load_model_config(
            "churn", tuning={"trials": 2}, estimator={"n_estimators": 60}, promotion={"floor": {}}
        ),
        mlflow_settings,
        dataset_dir=tiny_feature_store,
    )
    assert churn.promotion is not None
    assert churn.oracle_auc is not None and 0.5 < churn.oracle_auc <= 1
    m = churn.all_metrics  # the bound and the held-drivers reference ride along, with the se
    assert 0.5 < m["oracle_realised_roc_auc"] <= 1 and 0.5 < m["oracle_held_roc_auc"] <= 1
    assert m["oracle_gap"] == m["oracle_roc_auc"] - m["roc_auc"] and m["oracle_gap_se"] > 0
    frame = training_set(tiny_feature_store, "churn").head(20)
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    from training.registry import model_inputs

    out = model.predict(model_inputs(model, frame))
    assert out.probability.between(0, 1).all() and "reason_1" in out

    prop = train(
        load_model_config("propensity", tuning={"trials": 1}, estimator={"n_estimators": 40}),
        mlflow_settings,
        dataset_dir=tiny_feature_store,
    )
    assert set(prop.per_program) <= set(load_model_config("propensity").programs)
    scores = mlflow.pyfunc.load_model("models:/propensity@champion").predict(
        pd.DataFrame(frame.drop(columns=["churned"]))
    )
    assert any(c.endswith("_uplift") for c in scores.columns)
