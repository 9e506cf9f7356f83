"""Baselines on hand-made panels whose right answer is known."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from features.dr.baselines import METHODS, EventWindow, compute_baselines
from features.dr.config import BaselineConfig, DRConfig, load_dr_config
from features.dr.panel import HourlyPanel, holiday_days
from wattwise.errors import ConfigError, DataError

FIRST = dt.date(2024, 4, 1)  # a Monday


def panel(kwh: np.ndarray, temp: np.ndarray | None = None) -> HourlyPanel:
    C, D, _ = kwh.shape
    t = np.full((1, D, 24), 20.0) if temp is None else temp[None]
    return HourlyPanel(
        customers=np.array([f"C{i}" for i in range(C)], dtype=object),
        first_day=FIRST,
        kwh=kwh.astype(float),
        temp_c=t,
        region=np.zeros(C, np.int64),
        regions=["r"],
        day_off=holiday_days(FIRST, D, "none"),
        tz="UTC",
    )


def weekdays_before(p: HourlyPanel, day: int, n: int) -> list[int]:
    return [d for d in range(day - 1, -1, -1) if not p.day_off[d]][:n]


def test_x_of_y_pick_recent_days_and_rank_them() -> None:
    D = 40
    kwh = np.ones((2, D, 24))
    p = panel(kwh)
    day = 36  # a weekday
    assert not p.day_off[day]
    recent = weekdays_before(p, day, 10)
    for rank, d in enumerate(sorted(recent)):  # event-window load 1..10 on the 10 recent weekdays
        p.kwh[:, d, 16:19] = rank + 1
    p.kwh[:, :, 12:15] = 1.0  # adjustment window: baseline and event day agree
    out = compute_baselines(p, EventWindow(day, 16, 19), BaselineConfig(), methods=METHODS[:3])
    assert np.allclose(out["caiso_10of10"], 5.5)
    assert np.allclose(out["high_5of10"], np.mean([6, 7, 8, 9, 10]))
    assert np.allclose(out["middle_8of10"], np.mean(range(2, 10)))


def test_same_day_adjustment_is_capped_and_excluded_days_are_skipped() -> None:
    kwh = np.ones((2, 40, 24))
    p = panel(kwh)
    day = 36
    p.kwh[0, day, 12:15] = 3.0  # customer 0 ran 3x its usual load before the event
    p.kwh[1, day, 12:15] = 1.2
    cfg = BaselineConfig()
    out = compute_baselines(p, EventWindow(day, 16, 19), cfg, methods=("caiso_10of10",))
    assert np.allclose(out["caiso_10of10"][0], 1 + cfg.adjustment_cap)
    assert np.allclose(out["caiso_10of10"][1], 1.2)
    # an excluded (event) day with a huge load must not enter the baseline
    excl = np.zeros((2, 40), bool)
    last = weekdays_before(p, day, 1)[0]
    p.kwh[:, last, :] = 50.0
    excl[:, last] = True
    p.kwh[:, day, 12:15] = 1.0
    out = compute_baselines(p, EventWindow(day, 16, 19), cfg, excl, methods=("middle_8of10",))
    assert np.allclose(out["middle_8of10"], 1.0)


def test_too_few_days_give_no_baseline_and_bad_windows_are_refused() -> None:
    p = panel(np.ones((1, 6, 24)))
    out = compute_baselines(p, EventWindow(5, 16, 19), BaselineConfig(), methods=("caiso_10of10",))
    assert np.isnan(out["caiso_10of10"]).all()
    with pytest.raises(DataError):
        EventWindow(5, 20, 25)
    with pytest.raises(DataError):
        compute_baselines(p, EventWindow(5, 16, 19), BaselineConfig(), methods=("magic",))


def test_towt_recovers_a_temperature_response() -> None:
    rng = np.random.default_rng(0)
    D = 120
    temp = 15 + 12 * rng.random((D, 24)) + np.linspace(0, 8, 24)[None, :]
    tf = temp * 1.8 + 32
    dow = np.array([(FIRST + dt.timedelta(days=d)).weekday() for d in range(D)])
    base = 0.5 + 0.3 * np.sin(np.arange(24) / 24 * 2 * np.pi)[None, :] + 0.1 * (dow[:, None] >= 5)
    kwh = base + 0.04 * np.maximum(tf - 65, 0)
    p = panel(np.stack([kwh, 2 * kwh]), temp)
    day = D - 2
    hot = p.temp_c.copy()
    hot[0, day, 16:19] = 38.0  # hotter than most training hours
    p.temp_c = hot
    truth = base[day, 16:19] + 0.04 * np.maximum(38 * 1.8 + 32 - 65, 0)
    cfg = BaselineConfig(regression_days=90)
    out = compute_baselines(p, EventWindow(day, 16, 19), cfg, methods=("towt",))["towt"]
    assert np.allclose(out[0], truth, rtol=0.05)
    assert np.allclose(out[1], 2 * truth, rtol=0.05)


def test_learned_baseline_tracks_a_stationary_load() -> None:
    rng = np.random.default_rng(1)
    C, D = 60, 90
    level = rng.uniform(0.5, 3.0, C)[:, None, None]
    shape = (1 + 0.5 * np.sin(np.arange(24) / 24 * 2 * np.pi))[None, None, :]
    kwh = level * shape * rng.lognormal(0, 0.05, (C, D, 24))
    p = panel(kwh)
    day = D - 1
    cfg = BaselineConfig(lgbm_rounds=60, lgbm_threads=1)
    out = compute_baselines(p, EventWindow(day, 16, 19), cfg, methods=("lgbm",))["lgbm"]
    expected = (level * shape)[:, 0, 16:19]
    assert np.median(np.abs(out / expected - 1)) < 0.08


def test_config_errors_name_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(load_dr_config(), DRConfig)
    bad = tmp_path / "dr.yaml"
    bad.write_text("baselines: {adjustment_cap: -1}\n")
    with pytest.raises(ConfigError, match="adjustment_cap"):
        load_dr_config(bad)


def _hot_world(seed: int = 3) -> tuple[HourlyPanel, int, np.ndarray, np.ndarray]:
    """80 homes of different sizes and air-conditioning, 90 days of weather; some homes were
    called on earlier hot days (load halved in 16-19, marked excluded). Returns the panel,
    the event day (the hottest but one), the excluded days and the true event-hour load."""
    rng = np.random.default_rng(seed)
    C, D = 80, 90
    daily = 22 + 7 * np.sin(np.arange(D) / 9.0) + rng.normal(0, 2.5, D)
    temp = daily[:, None] + 6 * np.sin((np.arange(24) - 9) / 24 * 2 * np.pi)[None, :]
    level = rng.uniform(0.4, 2.5, C)[:, None, None]
    ac = rng.uniform(0.0, 0.12, C)[:, None, None]
    shape = (0.6 + 0.4 * np.sin((np.arange(24) - 10) / 24 * 2 * np.pi))[None, None, :]
    clean = level * (shape + ac * np.maximum(temp[None] - 24, 0))
    kwh = clean * rng.lognormal(0, 0.08, (C, D, 24))
    p = panel(kwh, temp)
    weekdays = np.flatnonzero(~p.day_off)
    hot = weekdays[np.argsort(-daily[weekdays])]
    day = int(hot[hot >= 70][0])  # a hot weekday late enough for 60 days of history
    excl = np.zeros((C, D), bool)
    for d in hot[(hot < day)][:4]:  # earlier events: half the homes cut their load
        who = rng.random(C) < 0.5
        excl[who, d] = True
        p.kwh[who, d, 16:19] *= 0.5
    return p, day, excl, clean[:, day, 16:19]


def test_pooled_lgbm_recovers_a_hot_day_better_than_mean_days() -> None:
    p, day, excl, truth = _hot_world()
    cfg = BaselineConfig(lgbm_rounds=80, lgbm_threads=1)
    win = EventWindow(day, 16, 19)
    got = compute_baselines(p, win, cfg, excl, methods=("lgbm", "caiso_10of10"))
    # the naive baseline: each home's mean of its non-event weekdays at the event hours
    prior = (~excl & ~p.day_off[None, :]) & (np.arange(p.n_days) < day)[None, :]
    naive = np.nanmean(np.where(prior[:, :, None], p.kwh[:, :, 16:19], np.nan), axis=1)
    err = {k: np.abs(v / truth - 1) for k, v in {"lgbm": got["lgbm"], "naive": naive}.items()}
    bias = {k: v.sum() / truth.sum() - 1 for k, v in {"lgbm": got["lgbm"], "naive": naive}.items()}
    assert np.isfinite(got["lgbm"]).all()
    assert bias["naive"] < -0.1  # a hot day: mean days under-predict
    assert abs(bias["lgbm"]) < 0.05  # the pooled model learned the temperature response
    assert np.median(err["lgbm"]) < 0.5 * np.median(err["naive"])


def test_pooled_lgbm_never_reads_excluded_days_and_caps_its_rows() -> None:
    p, day, excl, truth = _hot_world(seed=4)
    win = EventWindow(day, 16, 19)
    cfg = BaselineConfig(lgbm_rounds=40, lgbm_threads=1, lgbm_max_rows=3000)
    a = compute_baselines(p, win, cfg, excl, methods=("lgbm",))["lgbm"]
    p.kwh[excl] = 40.0  # whatever happened on a home's event days
    b = compute_baselines(p, win, cfg, excl, methods=("lgbm",))["lgbm"]
    assert np.array_equal(a, b)
    # 3,000 sampled rows of ~14,000 still give a sensible baseline
    assert abs(a.sum() / truth.sum() - 1) < 0.1
