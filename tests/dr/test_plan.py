"""The planning rule shared by ``wattwise dr plan`` and ``POST /dr/target``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from features.dr.config import PlanningConfig
from training.dr.plan import planned_event, response_kw, select_customers


def test_smallest_prefix_whose_lower_bound_reaches_the_target() -> None:
    rng = np.random.default_rng(0)
    mu = rng.gamma(2.0, 0.4, 200)
    sd = rng.uniform(0.1, 0.6, 200)
    ids = [f"C{i:07d}" for i in range(200)]
    target, conf = 0.4 * mu.sum(), 0.9
    sel = select_customers(ids, mu, sd, target, conf)
    order = np.argsort(-mu, kind="stable")
    k = len(sel.order)
    assert sel.reached and np.array_equal(sel.order, order[:k])
    lower = mu[order].cumsum() - norm.ppf(conf) * np.sqrt((sd[order] ** 2).cumsum())
    np.testing.assert_allclose(sel.cum_lower_kw, lower[:k])
    assert lower[k - 1] >= target > lower[k - 2]
    # the expected sum alone reaches the target sooner: the confidence costs customers
    assert np.searchsorted(mu[order].cumsum(), target) + 1 < k
    assert len(select_customers(ids, mu, sd, target, 0.99).order) > k


def test_input_order_and_uncallable_customers_do_not_change_the_answer() -> None:
    ids = np.array(["C3", "C1", "C2", "C4", "C5", "C6"])
    mu = np.array([1.0, 1.0, 2.0, -0.5, np.nan, 0.0])
    sd = np.array([0.2, 0.2, 0.3, 0.1, 0.1, 0.1])
    sel = select_customers(ids, mu, sd, 100.0, 0.9)
    # ties by id; negative, zero and missing expectations are never called
    assert ids[sel.order].tolist() == ["C2", "C1", "C3"]
    perm = np.array([5, 3, 0, 4, 2, 1])
    again = select_customers(ids[perm], mu[perm], sd[perm], 100.0, 0.9)
    assert ids[perm][again.order].tolist() == ["C2", "C1", "C3"]
    # out of reach: the prefix with the highest lower bound, not reached
    assert not sel.reached and sel.lower_kw == sel.cum_lower_kw.max()
    assert sel.expected_kw == 4.0
    none = select_customers(ids[3:], mu[3:], sd[3:], 1.0, 0.9)
    assert len(none.order) == 0 and not none.reached and none.expected_kw == 0.0


def test_a_wide_spread_stops_adding_customers_that_lower_the_bound() -> None:
    mu = np.array([5.0, 0.1, 0.1])
    sd = np.array([0.1, 3.0, 3.0])
    sel = select_customers(["a", "b", "c"], mu, sd, 50.0, 0.9)
    assert sel.order.tolist() == [0] and not sel.reached


def test_model_outputs_and_event_defaults() -> None:
    mu, sd = response_kw(pd.DataFrame({"expected_kw": [1.0, 2.0], "sd_kw": [0.5, 0.5]}))
    assert mu.tolist() == [1.0, 2.0] and sd.tolist() == [0.5, 0.5]
    mu, sd = response_kw(np.array([3.0]))
    assert mu.tolist() == [3.0] and sd.tolist() == [0.0]
    planning = PlanningConfig(default_notice_hours=6, default_incentive_per_kwh=2.0)
    start = pd.Timestamp("2031-07-01T22:00:00Z")
    ev = planned_event({"start": start, "notified_at": None}, planning)
    assert ev["notified_at"] == start - pd.Timedelta(hours=6) and ev["incentive_per_kwh"] == 2.0
    given = start - pd.Timedelta(hours=30)
    kept = planned_event({"start": start, "notified_at": given, "incentive_per_kwh": 0.5}, planning)
    assert kept["notified_at"] == given and kept["incentive_per_kwh"] == 0.5
