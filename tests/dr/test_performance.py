"""Difference in differences on frames with a known effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.dr.performance import did
from wattwise.errors import DataError


def frame(effect: float, n_cust: int, events: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cust = np.repeat(np.arange(n_cust), events)
    called = rng.random(n_cust * events) > 0.2
    bias = rng.normal(-0.3, 0.2, n_cust)[cust]  # the baseline's error, shared by both groups
    y = bias + rng.normal(0, 0.5, len(cust)) + effect * called
    return pd.DataFrame(
        {
            "customer_id": [f"C{c}" for c in cust],
            "called": called,
            "reduction_kw": y,
            "baseline_kw": 2.0,
        }
    )


def test_did_removes_the_baseline_bias_and_covers_the_effect() -> None:
    f = frame(0.5, 400, 10, 0)
    d = did(f, n_boot=400)
    assert d.ci_low < 0.5 < d.ci_high
    assert abs(d.treated_kw - 0.5) > 0.2  # the raw measured reduction is biased
    assert d.percent == pytest.approx(100 * d.estimate_kw / 2.0)
    wide = did(frame(0.5, 40, 10, 1), n_boot=400)
    assert (wide.ci_high - wide.ci_low) > (d.ci_high - d.ci_low)


def test_did_needs_both_groups() -> None:
    f = frame(0.5, 20, 2, 0)
    with pytest.raises(DataError):
        did(f[f.called])
