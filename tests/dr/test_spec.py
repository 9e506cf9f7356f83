"""The DR response kind's spec: regression metrics, the mean-predictor floor and the gate's
direction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import load_model_config
from training.dr.spec import BASELINE, DRResponseSpec, regression_metrics
from training.kinds import get_kind
from training.registry import gate
from wattwise.errors import DataError


class _Pyfunc:
    """A loaded model's predict: expected_kw from one input column (no MLflow needed)."""

    def __init__(self, noise: float, seed: int) -> None:
        self.noise, self.rng = noise, np.random.default_rng(seed)
        self.metadata = type("M", (), {"get_input_schema": staticmethod(lambda: None)})()

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        mu = X["x"].to_numpy() + self.noise * self.rng.normal(size=len(X))
        return pd.DataFrame({"expected_kw": mu, "sd_kw": 0.1})


def test_dr_response_is_a_kind_with_a_regression_gate() -> None:
    spec = get_kind("dr_response").spec()
    assert isinstance(spec, DRResponseSpec)
    cfg = load_model_config("dr_response")  # what `wattwise registry promote` loads
    assert cfg.kind == "dr_response" and cfg.promotion.metric == "rmse"
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 0.3, 400)
    test = pd.DataFrame({"x": x, "reduction_kw": x + 0.05 * rng.normal(size=400)})
    test[BASELINE] = float(test.reduction_kw.mean())  # the training mean, as logged
    good = spec.gate_metrics(_Pyfunc(0.02, 1), test, {})
    bad = spec.gate_metrics(_Pyfunc(0.3, 2), test, {})
    assert good["rmse"] < bad["rmse"] and good["r2"] > bad["r2"]
    assert good["spearman"] > bad["spearman"] and good["rows"] == 400
    # the floor: beat the mean predictor (a noisy model that does not is refused)
    assert good["rmse_skill"] == pytest.approx(1 - good["rmse"] / good["rmse_mean_predictor"])
    assert cfg.promotion.floor_failures(good) == []
    worse = spec.gate_metrics(_Pyfunc(0.5, 3), test, {})
    assert worse["rmse"] > worse["rmse_mean_predictor"]
    (fail,) = cfg.promotion.floor_failures(worse)
    assert "rmse_skill" in fail and "> 0" in fail
    g = cfg.promotion
    assert gate(good, bad, g)[0]  # lower RMSE passes
    assert not gate(bad, good, g)[0]
    # a candidate with lower RMSE but a much worse ranking is refused by the guard
    worse_rank = {**good, "spearman": bad["spearman"]}
    ok, why = gate(worse_rank, bad | {"spearman": good["spearman"]}, g)
    assert not ok and "spearman" in why


def test_regression_metrics_are_right_and_refuse_empty_sets() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, y + np.array([0.5, -0.5, 0.5, -0.5]))
    assert m["rmse"] == pytest.approx(0.5) and m["mae"] == pytest.approx(0.5)
    assert m["r2"] == pytest.approx(1 - 0.25 / np.var(y)) and m["bias"] == pytest.approx(0.0)
    assert regression_metrics(y, y[::-1].copy())["spearman"] == pytest.approx(-1.0)
    with pytest.raises(DataError, match="scorable rows"):
        regression_metrics(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def test_error_guards_regress_when_they_grow() -> None:
    from training.config import GateConfig
    from training.registry import gate

    g = GateConfig(metric="spearman", higher_is_better=True, min_delta=0.0, guards={"mae": 0.01})
    champ = {"spearman": 0.50, "mae": 0.40}
    assert gate({"spearman": 0.55, "mae": 0.405}, champ, g)[0]  # mae up 0.005: allowed
    ok, why = gate({"spearman": 0.55, "mae": 0.45}, champ, g)  # mae up 0.05: refused
    assert not ok and "mae" in why
