"""The estimators' contract and behaviour on a toy house with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from tests.disaggregation.conftest import TINY_EST
from training.disaggregation.estimators import (
    CombinatorialOptimisation,
    MeanDisaggregator,
    NeuralDisaggregator,
    load_estimator,
    save_estimator,
)
from training.disaggregation.metrics import all_metrics


def toy_houses(n: int, T: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 120 W fridge cycling 10 on / 10 off, a 3 kW heater on in random blocks, base noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    phase = rng.integers(0, 20, n)[:, None]
    fridge = 120.0 * (((t[None, :] + phase) // 10) % 2 == 0)
    heater = np.zeros((n, T))
    for i in range(n):
        for s in rng.integers(0, T - 12, T // 40):
            heater[i, s : s + rng.integers(4, 12)] = 3000.0
    base = 200 + 20 * rng.standard_normal((n, T))
    Y = np.stack([fridge, heater], -1).astype(np.float32)
    return (base + Y.sum(-1)).astype(np.float32), Y


def test_network_learns_what_the_mean_cannot() -> None:
    X, Y = toy_houses(6, 400, 0)
    Xt, Yt = toy_houses(3, 400, 1)
    mean = MeanDisaggregator().fit(X, Y)
    net = NeuralDisaggregator(
        **{**TINY_EST, "epochs": 10, "steps_per_epoch": 15, "learning_rate": 0.01}
    ).fit(X, Y)
    th = {"fridge": 60.0, "heater": 1500.0}
    m_mean = all_metrics(Yt, mean.predict(Xt), ["fridge", "heater"], th)
    m_net = all_metrics(Yt, net.predict(Xt), ["fridge", "heater"], th)
    assert m_net.loc["heater", "mae"] < 0.5 * m_mean.loc["heater", "mae"]
    assert m_net.loc["heater", "f1"] > 0.8
    assert net.predict(Xt).shape == Yt.shape and (net.predict(Xt) >= 0).all()


def test_combinatorial_optimisation_finds_the_states() -> None:
    X, Y = toy_houses(4, 400, 2)
    co = CombinatorialOptimisation(states=2, other_states=2).fit(X, Y)
    assert any(abs(s - 3000) < 100 for s in co.states_[1])
    pred = co.predict(X)
    on = Y[..., 1] > 0
    assert ((pred[..., 1] > 1500) == on).mean() > 0.9


def test_estimators_follow_the_sklearn_contract_and_round_trip(tmp_path: Path) -> None:
    X, Y = toy_houses(3, 200, 3)
    for est in (
        MeanDisaggregator(["a", "b"]),
        CombinatorialOptimisation(["a", "b"], states=2),
        NeuralDisaggregator(["a", "b"], **TINY_EST),
    ):
        fresh = clone(est)
        assert fresh.get_params() == est.get_params()
        assert est.fit(X, Y) is est
        again = load_estimator(save_estimator(est, tmp_path / type(est).__name__), device="cpu")
        np.testing.assert_allclose(again.predict(X[:1, :77]), est.predict(X[:1, :77]), rtol=1e-5)


def test_bad_shapes_are_refused() -> None:
    X, Y = toy_houses(2, 50, 4)
    with pytest.raises(ValueError, match="matching X"):
        MeanDisaggregator().fit(X, Y[:, :40])
    with pytest.raises(ValueError, match="windows, readings"):
        MeanDisaggregator().fit(np.zeros((2, 3, 4)), Y)
