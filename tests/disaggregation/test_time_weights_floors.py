"""Time-of-day input, per-appliance loss weights and fitted output floors of the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.disaggregation.conftest import TINY_EST
from training.disaggregation.config import TIME_FEATURES, load_disagg_config
from training.disaggregation.estimators import (
    TIME_CYCLES,
    NeuralDisaggregator,
    load_estimator,
    save_estimator,
)
from wattwise.errors import ConfigError

T0 = 1_719_792_000.0  # 2024-07-01 00:00 UTC
# a window of 7 hourly readings: long enough to see a 4-hour block, too short to see the day
TIMER_NET = {
    "arch": "tcn",
    "window": 7,
    "channels": 8,
    "hidden": 16,
    "crop": 96,
    "batch_size": 8,
    "epochs": 6,
    "steps_per_epoch": 20,
    "patience": 6,
    "learning_rate": 0.01,
}


def timer_houses(n: int, days: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hourly: a 1 kW pump on a 09:00-13:00 timer and a 1 kW heater for 4 h from a random
    other hour each day. The meter sees two identical blocks; only the clock tells them
    apart."""
    rng = np.random.default_rng(seed)
    T = 24 * days
    hour = np.arange(T) % 24
    pump = np.broadcast_to(np.where((hour >= 9) & (hour < 13), 1000.0, 0.0), (n, T))
    heater = np.zeros((n, T))
    starts = rng.choice([0, 1, 2, 3, 4, 15, 16, 17, 18, 19], (n, days))
    for i in range(n):
        for d in range(days):
            s = d * 24 + starts[i, d]
            heater[i, s : s + 4] = 1000.0
    Y = np.stack([pump, heater], -1).astype(np.float32)
    X = (300 + 30 * rng.standard_normal((n, T)) + Y.sum(-1)).astype(np.float32)
    return X, Y, T0 + 3600.0 * np.arange(T)


def _mae(Y: np.ndarray, P: np.ndarray, j: int) -> float:
    return float(np.abs(Y[..., j] - P[..., j]).mean())


def test_time_of_day_tells_a_timer_from_a_lookalike() -> None:
    X, Y, t = timer_houses(6, 20, 0)
    Xt, Yt, tt = timer_houses(3, 10, 1)
    plain = NeuralDisaggregator(["pump", "heater"], **TIMER_NET).fit(X, Y)
    timed = NeuralDisaggregator(["pump", "heater"], time_features=["day"], **TIMER_NET).fit(
        X, Y, times=t
    )
    p_plain, p_timed = plain.predict(Xt), timed.predict(Xt, times=tt)
    assert _mae(Yt, p_timed, 0) < 0.5 * _mae(Yt, p_plain, 0)
    assert _mae(Yt, p_timed, 1) < 0.5 * _mae(Yt, p_plain, 1)
    # the prediction depends on the readings' clock time, and only on the time of day
    np.testing.assert_allclose(timed.predict(Xt, times=tt + 86_400), p_timed, atol=1e-3)
    shifted = timed.predict(Xt, times=tt + 6 * 3600)
    assert _mae(Yt, shifted, 0) > 2 * _mae(Yt, p_timed, 0)
    # one row of times serves every window; datetime64 works as well as epoch seconds
    as_dt = (tt * 1e9).astype("datetime64[ns]")
    np.testing.assert_allclose(timed.predict(Xt[:1], times=as_dt), p_timed[:1], atol=1e-3)
    with pytest.raises(ValueError, match="time features"):
        timed.predict(Xt)
    with pytest.raises(ValueError, match="times must be"):
        timed.predict(Xt, times=tt[:-1])


def test_time_features_survive_a_round_trip(tmp_path: Path) -> None:
    X, Y, t = timer_houses(2, 4, 2)
    est = NeuralDisaggregator(
        ["pump", "heater"], time_features=["day", "week"], **{**TIMER_NET, "epochs": 1}
    ).fit(X, Y, times=t)
    again = load_estimator(save_estimator(est, tmp_path / "n"), device="cpu")
    np.testing.assert_allclose(again.predict(X, times=t), est.predict(X, times=t), rtol=1e-5)
    # a single reading still gets its padding's times from the step seen in training
    assert again.step_seconds_ == 3600.0
    assert again.predict(X[:, :1], times=t[:1]).shape == (2, 1, 2)


def test_a_zero_loss_weight_leaves_that_appliance_untrained() -> None:
    X, Y, _ = timer_houses(3, 6, 3)
    kw = {**TINY_EST, "epochs": 2, "steps_per_epoch": 5}
    init = NeuralDisaggregator(["pump", "heater"], **{**kw, "epochs": 0}).fit(X, Y)
    est = NeuralDisaggregator(["pump", "heater"], loss_weights={"heater": 0.0}, **kw).fit(X, Y)
    w0, w1 = init.net_.out.weight.detach(), est.net_.out.weight.detach()
    b0, b1 = init.net_.out.bias.detach(), est.net_.out.bias.detach()
    # no gradient reaches the heater's output unit; the pump's (weight 1) moves
    assert torch_equal(w0[1], w1[1]) and torch_equal(b0[1], b1[1])
    assert not torch_equal(w0[0], w1[0])
    with pytest.raises(ValueError, match="not modelled"):
        NeuralDisaggregator(["pump", "heater"], loss_weights={"pool": 2.0}, **kw).fit(X, Y)


def torch_equal(a: object, b: object) -> bool:
    import torch

    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    return bool(torch.equal(a, b))


def test_floors_fitted_on_homes_without_the_appliance_remove_its_phantom_load(
    tmp_path: Path,
) -> None:
    X, Y, _ = timer_houses(4, 6, 4)
    cands = [5.0, 50.0, 500.0, 5000.0]
    est = NeuralDisaggregator(["pump", "heater"], floor_candidates_w=cands, **TINY_EST).fit(X, Y)
    raw = est.predict(X)
    assert (est.floor_w_ == 0).all()  # no floors before fit_floors
    # validation homes whose heater never runs: any heater output is error
    Yv = Y.copy()
    Yv[..., 1] = 0.0
    est.fit_floors(X, Yv)
    assert est.floor_w_[1] > 0
    floored = est.predict(X)
    assert _mae(Yv, floored, 1) <= _mae(Yv, raw, 1)
    # every output is zero or at least its floor, and the floor is the best candidate
    for j in range(2):
        p = floored[..., j]
        assert ((p == 0) | (p >= est.floor_w_[j])).all()
        errs = {c: _mae(Yv, np.where(raw < c, 0, raw), j) for c in [0.0, *cands]}
        assert errs[float(est.floor_w_[j])] == pytest.approx(min(errs.values()))
    again = load_estimator(save_estimator(est, tmp_path / "f"), device="cpu")
    np.testing.assert_array_equal(again.floor_w_, est.floor_w_)


def test_new_knobs_are_validated_by_the_config() -> None:
    assert set(TIME_FEATURES) == set(TIME_CYCLES)
    cfg = load_disagg_config("disaggregation")
    assert set(cfg.estimator.get("time_features", [])) <= set(TIME_FEATURES)
    bad = [
        ({"time_features": ["hour"]}, "time_features"),
        ({"loss_weights": {"pool": 2}}, "loss_weights"),
        ({"loss_weights": {"pool_pump": -1}}, "loss_weights.pool_pump"),
        ({"floor_candidates_w": [10, -5]}, "floor_candidates_w"),
    ]
    for est, field in bad:
        with pytest.raises(ConfigError, match=field):
            load_disagg_config("disaggregation", estimator=est)
    with pytest.raises(ConfigError, match="REDD"):
        load_disagg_config("disaggregation_redd", estimator={"time_features": ["day"]})


def test_a_30_minute_model_reads_15_minute_data_on_its_own_clock(tmp_path: Path) -> None:
    from training.disaggregation.pyfunc import DisaggBundle, save_bundle
    from training.disaggregation.service import _predict_w

    X, Y, _ = timer_houses(2, 10, 5)
    t30 = T0 + 1800.0 * np.arange(X.shape[1])
    est = NeuralDisaggregator(
        ["pump", "heater"], time_features=["day"], **{**TIMER_NET, "epochs": 1}
    ).fit(X, Y, times=t30)
    meta = {
        "appliances": ["pump", "heater"],
        "input_column": "kwh",
        "to_watts": 2000.0,
        "interval_minutes": 30,
        "time_features": ["day"],
    }
    b = DisaggBundle(save_bundle(tmp_path / "b", est, meta), device="cpu")
    w15 = np.repeat(X, 2, axis=1)  # each half-hour read as two quarter-hour reads
    t15 = T0 + 900.0 * np.arange(w15.shape[1])
    got = _predict_w(b, 15)(w15, t15)
    np.testing.assert_allclose(got[:, ::2], est.predict(X, times=t30), rtol=1e-5, atol=1e-3)
