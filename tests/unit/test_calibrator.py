"""Isotonic calibration keeps the booster's ranking (its steps would tie scores)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from training.estimators import Calibrator


def test_isotonic_keeps_ranking_and_probabilities() -> None:
    rng = np.random.default_rng(3)
    raw = rng.random(4000)
    y = (rng.random(4000) < 0.05 + 0.3 * raw**2).astype(float)
    cal = Calibrator("isotonic").fit(raw[:1000], y[:1000])
    steps = np.interp(raw[1000:], cal.x_, cal.y_)  # the plain isotonic map
    got = cal.predict(raw[1000:])
    assert len(np.unique(steps)) < 100  # isotonic alone ties most scores
    assert len(np.unique(got)) == len(np.unique(raw[1000:]))  # no ties left
    assert np.all(np.diff(got[np.argsort(raw[1000:])]) > 0)  # strictly in the booster's order
    assert np.abs(got - steps).max() <= 1e-9  # calibration unchanged
    assert roc_auc_score(y[1000:], got) == roc_auc_score(y[1000:], raw[1000:])
    assert roc_auc_score(y[1000:], steps) < roc_auc_score(y[1000:], got)
    back = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(back.predict(raw[1000:]), got)
