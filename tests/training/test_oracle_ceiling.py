"""The oracle-ceiling diagnostic: its fits recover an oracle the features determine, stay at
chance when the features say nothing, and read the same oracle as the pipeline's evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmarks.oracle_ceiling import ceiling, churn_ceiling


def _world(
    n: int, informative: bool, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(2.0 * x - 2.0)))
    y = (rng.random(n) < p).astype(float)
    X = pd.DataFrame({"x": x if informative else rng.normal(size=n), "noise": rng.normal(size=n)})
    groups = np.arange(n).astype(str)
    train = np.arange(n) < n * 0.7
    return X, y, groups, train, ~train, p


def test_fits_recover_an_oracle_the_features_determine() -> None:
    X, y, groups, train, test, p = _world(6000, informative=True)
    c = ceiling("toy", X, y, groups, train, test, p[train], p[test], n_jobs=1)
    assert c.oracle == roc_auc_score(y[test], p[test])
    assert c.test_rows == test.sum() and c.positives == y[test].sum()
    # the oracle is a monotone function of x: both regressions rank as it does
    assert abs(c.fitted_on_test - c.oracle) < 0.01
    assert abs(c.fitted_on_past - c.oracle) < 0.01
    assert c.oracle - 0.03 < c.label_fit <= c.oracle + 0.01


def test_fits_stay_at_chance_when_the_features_say_nothing() -> None:
    X, y, groups, train, test, p = _world(6000, informative=False)
    c = ceiling("toy", X, y, groups, train, test, p[train], p[test], n_jobs=1)
    assert c.oracle > 0.75
    for auc in (c.fitted_on_test, c.fitted_on_past, c.label_fit):
        assert abs(auc - 0.5) < 0.06


def test_churn_ceiling_reads_the_pipelines_oracle(tiny_feature_store: Path) -> None:
    from training.config import load_model_config
    from training.kinds import get_kind
    from training.oracle import churn_oracle_auc, churn_oracle_probability

    cfg = load_model_config("churn")
    kind = get_kind(cfg.kind)
    spec = kind.spec()
    df = spec.load(tiny_feature_store, cfg, kind)
    (c,) = churn_ceiling(tiny_feature_store, df)
    prep = spec.prepare(df, cfg, tiny_feature_store)
    test = prep.df[prep.split.test]
    assert c.test_rows == len(test)
    assert c.positives == int(test[cfg.label].sum())
    assert c.oracle == churn_oracle_auc(tiny_feature_store, test, cfg.label)
    # the three fits are those of the pipeline's features, label and split (train rows fit,
    # test rows scored, folds by customer) against the stored true probabilities of each row
    p = churn_oracle_probability(tiny_feature_store, prep.df)
    assert p is not None
    known = np.isfinite(p)
    train, held = prep.split.train & known, prep.split.test & known
    assert train.sum() > 0 and (held == prep.split.test).all()
    y = prep.df[cfg.label].astype(float).to_numpy()
    groups = prep.df["customer_id"].astype(str).to_numpy()
    again = ceiling("churn", prep.X, y, groups, train, held, p[train], p[held])
    assert (c.fitted_on_test, c.fitted_on_past, c.label_fit) == (
        again.fitted_on_test,
        again.fitted_on_past,
        again.label_fit,
    )
    # (which is a check: the past fit depends on which row's truth it is given)
    rng = np.random.default_rng(0)
    shuffled = ceiling("churn", prep.X, y, groups, train, held, rng.permutation(p[train]), p[held])
    assert shuffled.fitted_on_past != c.fitted_on_past
