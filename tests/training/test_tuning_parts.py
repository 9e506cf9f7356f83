"""One Optuna study tunes several models: each part takes the trial that scored it best."""

from __future__ import annotations

from typing import Any

from training.config import load_model_config
from training.tuning import tune


def test_each_part_gets_its_own_best_trial(mlflow_settings) -> None:  # type: ignore[no-untyped-def]
    cfg = load_model_config(
        "propensity",
        search_space={"num_leaves": {"type": "int", "low": 4, "high": 64}},
        tuning={"trials": 12, "timeout_s": 60, "pruning": False, "seed": 3},
    )
    mlflow_settings.mlruns_dir.mkdir(parents=True, exist_ok=True)  # the study database lives there
    seen: list[dict[str, float]] = []

    def fit(params: dict[str, Any], report: Any) -> tuple[float, dict[str, float]]:
        x = float(params["num_leaves"])
        parts = {"small": -abs(x - 4), "large": -abs(x - 64), "nan": float("nan")}
        seen.append({"x": x, **parts})
        return (parts["small"] + parts["large"]) / 2, parts

    res = tune(cfg, mlflow_settings, fit, "parts-test")
    assert res.trials_run == 12 and len(seen) == 12
    by = res.best_params_by_part
    assert set(by) == {"small", "large"}  # a part never scored (NaN) gets no parameters
    xs = [s["x"] for s in seen]
    assert by["small"]["num_leaves"] == min(xs) and by["large"]["num_leaves"] == max(xs)
    assert min(xs) < max(xs)
    # the study itself steers by the mean, which every trial ties on here
    assert res.best_value == max((s["small"] + s["large"]) / 2 for s in seen)

    # a resumed study runs new trials and keeps the parts of the earlier ones
    again = tune(cfg, mlflow_settings, fit, "parts-test", trials=2)
    assert (again.trials_run, again.trials_total) == (2, 14) and len(seen) == 14
    xs = [s["x"] for s in seen]
    assert again.best_params_by_part["small"]["num_leaves"] == min(xs)
    assert again.best_params_by_part["large"]["num_leaves"] == max(xs)
