"""The training pipeline with real MLflow (sqlite) and Optuna: register, gate, history, rollback."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from training import registry
from training.config import load_model_config
from training.pipeline import train
from wattwise.settings import Settings, load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def make_set(n: int, seed: int, signal: float) -> pd.DataFrame:
    """Customers × 6 monthly snapshots with a label driven by two features (``signal`` strength)."""
    rng = np.random.default_rng(seed)
    snaps = pd.date_range("2024-02-01", periods=6, freq="MS", tz="UTC")
    cust = np.repeat([f"C{i:05d}" for i in range(n)], len(snaps))
    ts = np.tile(snaps, n)
    a, b = rng.normal(size=len(cust)), rng.normal(size=len(cust))
    seg = rng.choice(["x", "y", "z"], size=len(cust))
    logit = -2.5 + signal * (1.2 * a - 0.8 * b + 0.5 * (seg == "z"))
    y = rng.random(len(cust)) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": cust,
            "event_timestamp": ts,
            "bill_shock": a,
            "satisfaction": b,
            "segment": seg,
            "churned": y,
        }
    )


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WATTWISE_HOME", str(tmp_path))
    (tmp_path / "settings.yaml").write_text("seed: 1\n")
    s = load_settings(tmp_path / "settings.yaml")
    yield s
    mlflow.set_tracking_uri(None)


def cfg(name: str = "churn_test"):  # type: ignore[no-untyped-def]
    return load_model_config(
        Path(__file__).resolve().parents[2] / "configs" / "models" / "churn.yaml",
        registered_name=name,
        tuning={"trials": 2, "timeout_s": 60},
        estimator={"n_estimators": 80},
    )


def test_train_register_gate_history_rollback(settings: Settings) -> None:
    good = make_set(800, 1, signal=1.0)
    r1 = train(cfg(), settings, dataset_dir=settings.data_dir / "x", data=good)
    assert r1.version == "1" and r1.promotion is not None and r1.promotion.moved
    assert r1.metrics["roc_auc"] > 0.7
    assert 0 < r1.threshold < 1
    # the registered pyfunc scores: calibrated probabilities and reason codes
    model = mlflow.pyfunc.load_model("models:/churn_test@champion")
    out = model.predict(good[["bill_shock", "satisfaction", "segment"]].head(50))
    assert out.probability.between(0, 1).all() and {"decision", "reason_1"} <= set(out.columns)
    assert set(out.reason_1) <= {"bill_shock", "satisfaction", "segment", ""}

    # a candidate blind to the two informative features must not replace the champion
    blind = cfg().model_copy(update={"exclude_features": ["bill_shock", "satisfaction"]})
    r2 = train(blind, settings, dataset_dir=settings.data_dir / "x", data=make_set(800, 2, 1.0))
    assert r2.promotion is not None and not r2.promotion.moved
    assert "roc_auc" in r2.promotion.reason
    client = mlflow.MlflowClient()
    assert registry.alias_version(client, "churn_test", "champion") == "1"
    assert registry.alias_version(client, "churn_test", "challenger") == "2"

    r3 = train(cfg(), settings, dataset_dir=settings.data_dir / "x", data=make_set(1600, 3, 1.0))
    assert r3.promotion is not None and r3.promotion.moved, r3.promotion.reason
    assert registry.alias_version(client, "churn_test", "champion") == "3"
    assert registry.rollback(settings, "churn_test") == "1"
    assert registry.alias_version(client, "churn_test", "champion") == "1"
    hist = registry.history(settings, "churn_test")
    champion_moves = [(h["from"], h["to"]) for h in hist if h["alias"] == "champion"]
    assert champion_moves == [(None, "1"), ("1", "3"), ("3", "1")]
    assert any(h["alias"] == "gate-refused" and h["to"] == "2" for h in hist)


def test_study_resumes_and_runs_new_trials(settings: Settings) -> None:
    data = make_set(400, 5, 1.0)
    r1 = train(
        cfg("resume_test"),
        settings,
        dataset_dir=settings.data_dir / "x",
        data=data,
        promote=False,
    )
    r2 = train(
        cfg("resume_test"),
        settings,
        dataset_dir=settings.data_dir / "x",
        data=data,
        promote=False,
    )
    # the second run resumes the study and runs the trials it asked for, as new ones
    assert r1.tune.trials_run == 2 and (r2.tune.trials_run, r2.tune.trials_total) == (2, 4)
    assert r1.tune.study_name == r2.tune.study_name
    assert r2.tune.best_value >= r1.tune.best_value  # the best of all its trials
    # another search space is another study: its trials run, none are borrowed
    narrow = load_model_config(
        Path(__file__).resolve().parents[2] / "configs" / "models" / "churn.yaml",
        registered_name="resume_test",
        tuning={"trials": 2, "timeout_s": 60},
        estimator={"n_estimators": 80, "num_leaves": 5},
        search_space={"num_leaves": {"type": "int", "low": 4, "high": 6}},
    )
    r3 = train(narrow, settings, dataset_dir=settings.data_dir / "x", data=data, promote=False)
    assert r3.tune.study_name != r1.tune.study_name and r3.tune.trials_run == 2


def test_the_floor_decides_the_first_champion_and_a_tie_keeps_it(settings: Settings) -> None:
    client = mlflow.MlflowClient
    noise = make_set(800, 7, signal=0.0)  # labels unrelated to the features
    r1 = train(cfg("floor_test"), settings, dataset_dir=settings.data_dir / "x", data=noise)
    assert r1.promotion is not None and not r1.promotion.moved
    assert r1.metrics["roc_auc"] < 0.55 and "floor" in r1.promotion.reason
    c = client()
    assert registry.alias_version(c, "floor_test", "champion") is None
    (h,) = [h for h in registry.history(settings, "floor_test") if h["alias"] != "challenger"]
    assert h["alias"] == "gate-refused" and h["to"] == "1" and "roc_auc" in h["reason"]

    good = make_set(800, 8, signal=1.0)
    r2 = train(cfg("floor_test"), settings, dataset_dir=settings.data_dir / "x", data=good)
    assert r2.promotion is not None and r2.promotion.moved, r2.promotion.reason
    assert "first champion" in r2.promotion.reason and "floor passed" in r2.promotion.reason
    # the same data and search again: the study resumes with 2 new trials; the champion
    # moves only on a strict gain (a tie keeps it: tests/training/test_train_honest.py)
    r3 = train(cfg("floor_test"), settings, dataset_dir=settings.data_dir / "x", data=good)
    assert (r3.tune.trials_run, r3.tune.trials_total) == (2, 4)
    pr = r3.promotion
    assert pr is not None and pr.champion == r2.version
    gain = pr.candidate_metrics["roc_auc"] > pr.champion_metrics["roc_auc"]
    assert gain if pr.moved else ("required > 0" in pr.reason or "guard" in pr.reason)
    champion = r3.version if pr.moved else r2.version
    assert registry.alias_version(c, "floor_test", "champion") == champion
    last = registry.history(settings, "floor_test")[-1]
    assert last["alias"] == ("champion" if pr.moved else "gate-refused")
    assert last["to"] == r3.version
