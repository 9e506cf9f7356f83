"""DR targeting: whom to call, scored against the truth.

The response model (``training.dr.spec``, trained by the one pipeline) predicts each called
customer's reduction. Targeting compares ranking by it with T- and DR-learner uplift fitted
on called and control rows (randomized), per test event, by the Qini against the true
effects (synthetic utility), the oracle's and random's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.dr.models import dr_learner, t_learner


def qini_by_event(
    frame: pd.DataFrame, score: str, effect: str = "true_reduction_kw"
) -> dict[str, float]:
    """Sum over events of the Qini areas (model, oracle, random) of ranking called customers."""
    from training.dr.oracle import qini_against_truth

    parts = [
        qini_against_truth(g[score].to_numpy(float), g[effect].to_numpy(float), seed=i)
        for i, (_, g) in enumerate(frame.groupby("event_id"))  # events, not customers
    ]
    tot = {
        k: float(sum(p[k] for p in parts))
        for k in ("qini_model", "qini_oracle", "qini_random", "rows")
    }
    tot["share_of_oracle"] = (
        tot["qini_model"] / tot["qini_oracle"] if tot["qini_oracle"] > 0 else float("nan")
    )
    return tot


def score_targeting(
    df: pd.DataFrame,
    X: pd.DataFrame,
    y: np.ndarray,
    called: np.ndarray,
    fit_rows: np.ndarray,
    test_rows: np.ndarray,
    params: dict[str, Any],
    response_pred: np.ndarray,
    n_jobs: int,
) -> dict[str, dict[str, float]]:
    """Qini vs truth of the response model, a T-learner and a DR-learner on the test events."""
    Xf, yf, tf = X[fit_rows], y[fit_rows], called[fit_rows]
    m1, m0 = t_learner(params, Xf, yf, tf, n_jobs)
    Xt = X[test_rows]
    t_uplift = np.asarray(m1.predict(Xt), float) - np.asarray(m0.predict(Xt), float)
    drb = dr_learner(params, Xf, yf, tf, df.loc[fit_rows, "event_id"].to_numpy(), n_jobs)
    test = df.loc[test_rows, ["event_id", "true_reduction_kw"]].assign(
        response=response_pred[test_rows], t_learner=t_uplift, dr_learner=drb.predict(Xt)
    )
    test = test[called[test_rows]]
    return {name: qini_by_event(test, name) for name in ("response", "t_learner", "dr_learner")}
