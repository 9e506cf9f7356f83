"""Season weights: training rows count by how close their calendar month is to the test
months', the config refuses them without a time split, and the churn fit trains with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.config import load_model_config
from training.data import season_weights
from wattwise.errors import ConfigError


def test_distance_wraps_around_the_year() -> None:
    ts = pd.Series(pd.to_datetime(["2024-01-01", "2024-06-01", "2024-12-01", "2023-11-01"]))
    target = pd.Series(pd.to_datetime(["2025-11-01"]))
    w = season_weights(ts, target, 2.0)
    # Jan-Nov: 2 months around the new year; Jun-Nov: 5; Dec-Nov: 1; Nov-Nov: 0
    np.testing.assert_allclose(w, np.exp(-np.array([2, 5, 1, 0]) / 2.0))
    # the nearest of several test months counts
    two = season_weights(ts, pd.Series(pd.to_datetime(["2025-11-01", "2025-06-01"])), 1.0)
    np.testing.assert_allclose(two, np.exp(-np.array([2, 0, 1, 0]) / 1.0))


def test_config_refuses_season_weights_without_months() -> None:
    with pytest.raises(ConfigError, match="season_weight_months"):
        load_model_config("churn_powerco", season_weight_months=2)
    with pytest.raises(ConfigError, match="season_weight_months"):
        load_model_config("churn", season_weight_months=-1)


def test_churn_trains_on_season_weighted_rows(tiny_feature_store: Path) -> None:
    from training.kinds import get_kind

    cfg = load_model_config("churn", season_weight_months=2)
    kind = get_kind(cfg.kind)
    spec = kind.spec()
    df = spec.load(tiny_feature_store, cfg, kind)
    prep = spec.prepare(df, cfg, tiny_feature_store)
    sp = prep.split
    assert prep.weight is not None
    test_months = set(pd.to_datetime(prep.df.loc[sp.test, "event_timestamp"]).dt.month)
    months = pd.to_datetime(prep.df["event_timestamp"]).dt.month.to_numpy()
    # independent check: the distance from a month to the test months, walking the calendar
    by_month = {m: min(min(abs(m - t), 12 - abs(m - t)) for t in test_months) for m in range(1, 13)}
    d = pd.Series(months).map(by_month).to_numpy(float)
    np.testing.assert_allclose(prep.weight, np.exp(-d / 2.0))
    assert np.all(prep.weight[sp.test] == 1.0)
    assert prep.weight[sp.train].min() < 1.0  # the tiny world's training months vary
    _, data = spec._arrays(prep, cfg)  # type: ignore[attr-defined]
    np.testing.assert_allclose(data.train.get_weight(), prep.weight[sp.train])
    unweighted = spec.prepare(
        df, cfg.model_copy(update={"season_weight_months": None}), tiny_feature_store
    )
    assert unweighted.weight is None
