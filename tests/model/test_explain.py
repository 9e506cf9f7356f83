"""Decision-path contributions: exact decomposition, equal to TreeSHAP where they must be."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from training.explain import PathContributions, agreement, shap_contributions, top_features


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[rng.random((n, 6)) < 0.05] = np.nan
    logit = 2.0 * np.nan_to_num(X[:, 0]) - 1.0 * np.nan_to_num(X[:, 1]) * (X[:, 2] > 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return X, y


def fit(leaves: int, rounds: int = 40) -> lgb.Booster:
    X, y = data(3000, 1)
    params = {"objective": "binary", "num_leaves": leaves, "verbose": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=rounds)


@pytest.mark.parametrize("leaves", [2, 15])
def test_contributions_add_up_to_the_raw_score(leaves: int) -> None:
    booster = fit(leaves)
    pc = PathContributions.from_booster(booster)
    X, _ = data(400, 2)
    c = pc.contributions(booster, X)
    np.testing.assert_allclose(c.sum(axis=1) + pc.bias, booster.predict(X, raw_score=True))
    # one row at a time (dense gather) gives what the batch (sparse product) gives
    np.testing.assert_allclose(pc.contributions(booster, X[:1]), c[:1])


def test_stumps_give_the_shap_values() -> None:
    """With one split per tree, the path credit (leaf - root) is the Shapley value, up to how
    a node's mean is weighted (LightGBM's internal value: hessians; TreeSHAP: row counts)."""
    booster = fit(2)
    pc = PathContributions.from_booster(booster)
    X, _ = data(300, 3)
    np.testing.assert_allclose(
        pc.contributions(booster, X), shap_contributions(booster, X), atol=0.01
    )


def test_deeper_trees_mostly_agree_with_shap_and_name_the_driver() -> None:
    booster = fit(15)
    pc = PathContributions.from_booster(booster)
    X, _ = data(1000, 4)
    path, shap = pc.contributions(booster, X), shap_contributions(booster, X)
    agree = agreement(path, shap, k=2)
    assert agree["top1"] > 0.7 and 0.0 <= agree["topk_overlap"] <= 1.0
    names = ["x0", "x1", "x2", "x3", "x4", "x5"]
    reasons = top_features(path, 2, names)
    strong = np.nan_to_num(X[:, 0]) > 1.5  # feature 0 pushes these far up
    assert np.mean([r[:1] == ["x0"] for r, s in zip(reasons, strong, strict=True) if s]) > 0.9
    assert all(len(r) <= 2 for r in reasons)
