"""NILM metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from training.disaggregation.metrics import (
    all_metrics,
    appliance_metrics,
    breakdown_accuracy,
    skill,
)


def test_appliance_metrics_match_their_definitions() -> None:
    y = np.array([0.0, 100.0, 100.0, 0.0, np.nan])
    p = np.array([10.0, 90.0, 0.0, 60.0, 500.0])
    m = appliance_metrics(y, p, on_threshold=50.0)
    assert m["mae"] == pytest.approx((10 + 10 + 100 + 60) / 4)
    assert m["sae"] == pytest.approx(abs(160 - 200) / 200)
    assert m["nde"] == pytest.approx((100 + 100 + 10_000 + 3600) / 20_000)
    # on: truth {1, 2}, predicted {1, 3}: precision 1/2, recall 1/2
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)


def test_perfect_prediction_scores_perfectly() -> None:
    rng = np.random.default_rng(0)
    y = rng.gamma(1.0, 100.0, (3, 50, 2)).astype(np.float32)
    m = all_metrics(y, y, ["a", "b"], {"a": 50.0, "b": 50.0})
    assert np.allclose(m["mae"], 0) and np.allclose(m["nde"], 0) and np.allclose(m["f1"], 1)
    assert skill(m["mae"].to_dict(), {"a": 10.0, "b": 10.0}) == pytest.approx(1.0)


def test_breakdown_accuracy_counts_other_and_caps_at_the_total() -> None:
    true = np.array([[30.0, 20.0], [30.0, 20.0], [30.0, 20.0]])
    pred = np.array([[30.0, 20.0], [20.0, 30.0], [200.0, 0.0]])
    acc = breakdown_accuracy(true, pred, np.array([100.0, 100.0, 100.0]))
    assert acc[0] == pytest.approx(1.0)
    assert acc[1] == pytest.approx(0.9)  # 10 points moved between two appliances
    # everything given to the first appliance (scaled to the total): shares 1, 0, other 0
    assert acc[2] == pytest.approx(1 - 0.5 * (0.7 + 0.2 + 0.5))
