"""The service's fast scoring paths give exactly what the registered pyfunc gives."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from serving.models import ChurnScorer, FastMatrix
from training.estimators import Calibrator, FramePreprocessor
from training.pyfunc import Bundle, save_bundle


def mixed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "kwh": rng.gamma(2, 5, n),
            "days": rng.integers(0, 365, n),
            "flag": rng.random(n) < 0.3,
            "tariff": rng.choice(["flat", "tou", "ev"], n).astype(object),
            "consent": rng.choice([True, False], n).astype(object),
        }
    )
    df.loc[rng.random(n) < 0.1, "kwh"] = np.nan
    df.loc[rng.random(n) < 0.1, "tariff"] = None
    return df


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    X = mixed(3000, 1)
    y = ((X.kwh.fillna(10) > 12) ^ (X.tariff == "tou")).to_numpy(dtype=float)
    pre = FramePreprocessor().fit(X)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 8, "verbose": -1, "num_threads": 1},
        lgb.Dataset(pre.transform(X), y),
        num_boost_round=25,
    )
    cal = Calibrator("isotonic").fit(booster.predict(pre.transform(X)), y)
    path = save_bundle(tmp_path_factory.mktemp("bundle"), booster, pre, cal, 0.4, 2)
    return Bundle(Path(path))


def test_matrix_equals_frame_preprocessor_on_awkward_values() -> None:
    train = mixed(500, 2)
    pre = FramePreprocessor().fit(train)
    new = mixed(200, 3)
    new.loc[:5, "tariff"] = "dynamic"  # unseen category -> missing
    new["kwh"] = new["kwh"].astype(object)
    new.loc[6:8, "kwh"] = "n/a"  # text in a numeric column -> missing
    new = new.drop(columns=["days"])  # a missing column -> missing
    want = pre.transform(new)
    want_np = np.column_stack(
        [want[c].cat.codes.replace(-1, np.nan) if c in pre.categories_ else want[c] for c in want]
    ).astype(np.float32)
    fast = FastMatrix(pre.columns_, pre.categories_)
    lists = {c: new[c].where(new[c].notna(), None).tolist() for c in new.columns}
    np.testing.assert_array_equal(fast.matrix(lists, len(new)), want_np)
    for i in range(len(new)):  # one row (a single-customer request) takes its own path
        row = {c: v[i : i + 1] for c, v in lists.items()}
        np.testing.assert_array_equal(fast.matrix(row, 1), want_np[i : i + 1])
    np.testing.assert_array_equal(fast.frame_matrix(new), want_np)


def test_churn_scorer_matches_bundle_including_reasons(bundle: Bundle) -> None:
    X = mixed(300, 4)
    want = bundle.score(X, with_reasons=True)  # TreeSHAP reasons
    sc = ChurnScorer(bundle, reason_method="shap")
    lists = {c: X[c].where(X[c].notna(), None).tolist() for c in X.columns}
    got = sc.score(lists, len(X))
    np.testing.assert_allclose(got["probability"], want.probability.to_numpy())
    assert (got["decision"] == want.decision.to_numpy()).all()
    want_reasons = [
        [r for r in row if r] for row in want[["reason_1", "reason_2"]].to_numpy().tolist()
    ]
    assert got["reasons"] == want_reasons
    frame = sc.score_frame(X, reasons=True)
    np.testing.assert_allclose(frame.probability.to_numpy(), want.probability.to_numpy())
    assert (frame.reason_1 == want.reason_1).all()
    # a configured threshold changes decisions, not probabilities
    strict = ChurnScorer(bundle, threshold=0.9).score(lists, len(X))
    assert (strict["decision"] == (got["probability"] >= 0.9)).all()
    assert strict["decision"].sum() < got["decision"].sum()


def test_path_reasons_are_the_top_positive_path_contributions(bundle: Bundle) -> None:
    X = mixed(200, 5)
    sc = ChurnScorer(bundle, reason_method="path")
    assert sc.reason_method == "path" and sc.paths is not None
    lists = {c: X[c].where(X[c].notna(), None).tolist() for c in X.columns}
    got = sc.score(lists, len(X))
    Xm = sc.fast.matrix(lists, len(X))
    contrib = sc.paths.contributions(bundle.booster, Xm)
    for row, c in zip(got["reasons"], contrib, strict=True):
        order = [sc.features[j] for j in np.argsort(-c) if c[j] > 0][: sc.reasons]
        assert row == order
    # one customer at a time (the request path) gives the same reasons and probabilities
    for i in (0, 7, 42):
        one = sc.score({c: [v[i]] for c, v in lists.items()}, 1)
        assert one["reasons"][0] == got["reasons"][i]
        np.testing.assert_allclose(one["probability"], got["probability"][i : i + 1])
    # the method can be chosen per call
    shap = sc.score(lists, len(X), method="shap")
    np.testing.assert_allclose(shap["probability"], got["probability"])


def test_auto_picks_shap_when_it_is_cheap_enough(bundle: Bundle) -> None:
    cheap = ChurnScorer(bundle, reason_method="auto", shap_budget_ms=1e6)
    dear = ChurnScorer(bundle, reason_method="auto", shap_budget_ms=1e-9)
    assert cheap.shap_ms > 0
    assert cheap.reason_method == "shap" and dear.reason_method == "path"


def test_row_predictor_equals_booster_predict(bundle: Bundle) -> None:
    from serving.rowpredict import RowPredictor

    sc = ChurnScorer(bundle, reason_method="shap")
    X = sc.fast.frame_matrix(mixed(50, 6))
    rp = RowPredictor(bundle.booster, X.shape[1])
    assert rp.enabled
    for kind, kw in (
        ("normal", {}),
        ("leaf", {"pred_leaf": True}),
        ("contrib", {"pred_contrib": True}),
    ):
        want = np.asarray(bundle.booster.predict(X, **kw)).reshape(len(X), -1)
        got = np.vstack([rp.predict(X[i : i + 1], kind).reshape(1, -1) for i in range(len(X))])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=kind)
    # more than one row, or a row of the wrong width, goes through Booster.predict
    np.testing.assert_allclose(rp.predict(X[:3]), bundle.booster.predict(X[:3]))
    rp.close()
    # one-row SHAP reasons (the fast contrib path) equal the batch reasons
    lists = {c: v.tolist() for c, v in mixed(40, 7).where(lambda d: d.notna(), None).items()}
    batch = sc.score(lists, 40)
    for i in range(40):
        one = sc.score({c: [v[i]] for c, v in lists.items()}, 1)
        assert one["reasons"][0] == batch["reasons"][i]
        np.testing.assert_allclose(one["probability"], batch["probability"][i : i + 1])
