"""`wattwise train` tells the truth: each run listed with its own metric and training rows,
ranked by its config's metric; exit 5 when the gate kept the champion (also on a tie, also for
`registry promote`), exit 4 for an empty training set before any trial; a resumed study runs
the trials that were asked for."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml

from tests.disaggregation.test_pipeline import run_cli
from tests.integration.test_training_registry import make_set
from training import registry
from training.config import GateConfig, load_model_config
from training.pipeline import train
from training.tuning import tune
from wattwise.errors import EmptyResultError, NotPromotedError
from wattwise.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHURN = ROOT / "configs" / "models" / "churn.yaml"


def churn_cfg(name: str, **over: Any):  # type: ignore[no-untyped-def]
    return load_model_config(
        CHURN,
        registered_name=name,
        name=name,
        tuning={"trials": 2, "timeout_s": 60},
        estimator={"n_estimators": 60},
        **over,
    )


def test_a_resumed_study_runs_the_new_trials_asked_for(mlflow_settings: Settings) -> None:
    cfg = load_model_config(
        "churn",
        search_space={"num_leaves": {"type": "int", "low": 4, "high": 64}},
        tuning={"trials": 3, "timeout_s": 60, "pruning": False, "seed": 5},
    )
    mlflow_settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    seen: list[int] = []

    def fit(params: dict[str, Any], report: Any) -> float:
        seen.append(int(params["num_leaves"]))
        return -abs(params["num_leaves"] - 40)

    first = tune(cfg, mlflow_settings, fit, "resume-new")
    assert (first.trials_run, first.trials_total) == (3, 3)
    again = tune(cfg, mlflow_settings, fit, "resume-new", trials=4)  # a finished study
    assert (again.trials_run, again.trials_total) == (4, 7) and len(seen) == 7
    assert again.best_value == max(-abs(x - 40) for x in seen)  # the best of all its trials
    # the resumed run did not redraw the random start-up trials of the first one
    assert seen[3:6] != seen[0:3]
    third = tune(cfg, mlflow_settings, fit, "resume-new")  # the config's trials, again new
    assert (third.trials_run, third.trials_total) == (3, 10)


def test_a_tie_within_rounding_keeps_the_champion() -> None:
    g = GateConfig(metric="roc_auc", min_delta=0.0)
    h = 0.7123456789
    ok, why = registry.gate({"roc_auc": h + 1e-16}, {"roc_auc": h}, g)
    assert not ok and "+0.0000" in why and "required > 0" in why
    assert registry.gate({"roc_auc": h + 1e-6}, {"roc_auc": h}, g)[0]  # a real, tiny gain
    lower = GateConfig(metric="rmse", higher_is_better=False)
    assert not registry.gate({"rmse": 0.3 - 1e-17}, {"rmse": 0.3}, lower)[0]


def test_the_same_model_retrained_runs_new_trials_and_never_moves_the_champion(
    mlflow_settings: Settings,
) -> None:
    """Nothing to search (an empty space): every trial is the estimator, the resumed study's
    new trials tie, the final model is the same and the gate keeps the champion."""
    data = make_set(600, 11, signal=1.0)
    cfg = churn_cfg("tie_test", search_space={}, promotion={"floor": {}})
    ds = mlflow_settings.data_dir / "x"
    r1 = train(cfg, mlflow_settings, dataset_dir=ds, data=data)
    assert r1.promotion is not None and r1.promotion.moved
    r2 = train(cfg, mlflow_settings, dataset_dir=ds, data=data, trials=3)
    assert r2.tune.study_name == r1.tune.study_name
    assert (r2.tune.trials_run, r2.tune.trials_total) == (3, 5)  # new trials, as asked
    assert r2.metrics == r1.metrics  # the same model
    pr = r2.promotion
    assert pr is not None and not pr.moved and "required > 0" in pr.reason
    assert pr.candidate_metrics == pr.champion_metrics  # re-scored by the gate: a tie
    # byte for byte the same predictions from both registered versions
    test = registry.load_test_set(mlflow.MlflowClient(), "tie_test", r2.version)
    models = [mlflow.pyfunc.load_model(f"models:/tie_test/{v}") for v in (r1.version, r2.version)]
    p1, p2 = (m.predict(registry.model_inputs(m, test)) for m in models)
    pd.testing.assert_frame_equal(p1, p2)
    # `registry promote` of the identical version: refused as well, and says so in one line
    again = registry.promote(mlflow_settings, "tie_test", cfg.promotion, candidate=r2.version)
    assert not again.moved and "required > 0" in again.reason
    with pytest.raises(NotPromotedError, match=f"tie_test v{r2.version} not promoted"):
        again.require_moved("tie_test")
    client = mlflow.MlflowClient()
    assert registry.alias_version(client, "tie_test", "champion") == r1.version
    moves = [h for h in registry.history(mlflow_settings, "tie_test") if h["alias"] == "champion"]
    assert [(h["from"], h["to"]) for h in moves] == [(None, r1.version)]


def test_an_empty_training_set_stops_before_tuning(mlflow_settings: Settings) -> None:
    import optuna

    ds = mlflow_settings.data_dir / "nothing"
    one_class = make_set(200, 3, signal=1.0).assign(churned=False)
    with pytest.raises(EmptyResultError, match=r"single class \(0\).*dataset nothing as of 2024"):
        train(churn_cfg("empty_test"), mlflow_settings, dataset_dir=ds, data=one_class)
    with pytest.raises(EmptyResultError, match="dataset nothing has no rows"):
        train(churn_cfg("empty_test"), mlflow_settings, dataset_dir=ds, data=one_class.iloc[:0])
    db = mlflow_settings.mlruns_dir / "optuna.db"
    assert not db.exists() or optuna.get_all_study_names(f"sqlite:///{db}") == []
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    # no labels at all: the feature store says so, with the dataset (exit 4, not 2)
    from features.store import training_set

    with pytest.raises(EmptyResultError, match=f"labels in {ds}"):
        training_set(ds, lambda d, as_of: pd.DataFrame(), "churn_v1")


def _cli_config(tmp_path: Path, name: str, **over: Any) -> Path:
    raw = yaml.safe_load(CHURN.read_text())
    raw.update(name=name, search_space={}, tuning={"trials": 1, "timeout_s": 60}, **over)
    raw["estimator"] = {**raw.get("estimator", {}), "n_estimators": 40}
    raw["promotion"] = {**raw["promotion"], "floor": {}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture()
def store_copy(tiny_feature_store: Path, tmp_path: Path) -> Path:
    ds = tmp_path / "data" / "synthetic"
    shutil.copytree(tiny_feature_store, ds)
    return ds


def _one_line(err: str) -> str:
    """The one error line (MLflow's download progress bars aside), with no traceback."""
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.slow
def test_train_and_promote_exit_codes_a_scheduler_can_trust(
    store_copy: Path, mlflow_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(_cli_config(tmp_path, "churn_cli"))
    base = ("train", "churn", "--model-config", cfg, "--data", str(store_copy))
    code, out, err = run_cli(capsys, *base)
    assert code == 0 and "churn_cli v1" in out and "promoted to @champion" in out, err
    # the same model again, not promoted: exit 0 (nothing was asked of the gate)
    code, out, err = run_cli(capsys, *base, "--no-promote")
    assert code == 0 and "churn_cli v2" in out and "1 new trials (2 total" in out, err
    # `registry promote` of the identical @challenger: a tie keeps the champion, exit 5
    code, out, err = run_cli(capsys, "registry", "promote", "churn_cli")
    assert code == 5 and "kept the champion (candidate v2, champion v1)" in out, (out, err)
    line = _one_line(err)
    assert "churn_cli v2 not promoted" in line and "required > 0" in line
    # training that asked for promotion and did not get it: exit 5, the reason in one line
    code, out, err = run_cli(capsys, *base)
    assert code == 5 and "churn_cli v3" in out and "not promoted" in out, (out, err)
    assert "churn_cli v3 not promoted" in _one_line(err)
    client = mlflow.MlflowClient()
    assert registry.alias_version(client, "churn_cli", "champion") == "1"

    # a single class in the labels: exit 4 naming the dataset and its snapshots, no run
    labels = store_copy / "churn_labels"
    frame = pd.concat(pd.read_parquet(p) for p in sorted(labels.rglob("*.parquet")))
    shutil.rmtree(labels)
    labels.mkdir()
    frame.assign(churned=False).to_parquet(labels / "part-0.parquet", index=False)
    code, out, err = run_cli(capsys, *base)
    line = _one_line(err)
    assert code == 4 and "single class" in line and "dataset synthetic as of" in line, err
    versions = client.search_model_versions("name='churn_cli'")
    assert len(versions) == 3
