"""Estimators behind the pipeline: frame preprocessing, the LightGBM fit, calibration.

``fit_lightgbm`` is *the* training function: the final fit and every tuning trial call it
(tuning never copies it). Custom estimators follow the scikit-learn contract: ``fit``
returns ``self`` and learned attributes end in ``_``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.isotonic import IsotonicRegression

log = logging.getLogger(__name__)


class FramePreprocessor(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Fix the column order and the categories seen in training; everything else numeric.

    Unknown categories at prediction time become missing, not errors; missing columns
    become NaN, so a source that lacks a feature still scores.
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> FramePreprocessor:
        self.columns_: list[str] = list(X.columns)
        self.categories_: dict[str, list[str]] = {}
        for c in self.columns_:
            s = X[c]
            if (
                s.dtype == object
                or isinstance(s.dtype, pd.CategoricalDtype)
                or pd.api.types.is_string_dtype(s)
            ):
                self.categories_[c] = sorted(str(v) for v in s.dropna().unique())
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c in self.columns_:
            s = X[c] if c in X.columns else pd.Series(np.nan, index=X.index)
            if c in self.categories_:
                out[c] = pd.Categorical(
                    s.astype("string").astype(object).where(s.notna(), None),
                    categories=self.categories_[c],
                )
            else:
                out[c] = pd.to_numeric(
                    s.astype("float64") if s.dtype == bool else s, errors="coerce"
                ).astype("float32")
        return pd.DataFrame(out, index=X.index)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns_, "categories": self.categories_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FramePreprocessor:
        obj = cls()
        obj.columns_ = list(d["columns"])
        obj.categories_ = {k: list(v) for k, v in d["categories"].items()}
        return obj


TIE_SLOPE = 1e-9


class Calibrator(BaseEstimator):  # type: ignore[misc]
    """Map raw scores to calibrated probabilities (isotonic, Platt sigmoid, or identity)."""

    def __init__(self, method: str = "isotonic") -> None:
        self.method = method

    def fit(self, p: Any, y: Any) -> Calibrator:
        p = np.asarray(p, float)
        y = np.asarray(y, float)
        if self.method == "isotonic" and len(np.unique(y)) == 2:
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
            self.x_ = np.asarray(iso.X_thresholds_, float)
            self.y_ = np.asarray(iso.y_thresholds_, float)
        elif self.method == "sigmoid" and len(np.unique(y)) == 2:
            from sklearn.linear_model import LogisticRegression

            z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))
            lr = LogisticRegression(C=1e6).fit(z.reshape(-1, 1), y)
            self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        else:
            self.method = "none"
        return self

    def predict(self, p: Any) -> np.ndarray:
        p = np.asarray(p, float)
        if self.method == "isotonic":
            # The fitted steps tie every score inside a step (a few dozen distinct values
            # from a validation set of a few thousand rows), throwing away the booster's
            # ranking: 0.003-0.007 ROC-AUC on PowerCo. A 1e-9 slope on the raw score breaks
            # the ties in the booster's order and moves no probability by more than 1e-9.
            return np.clip(np.interp(p, self.x_, self.y_) + TIE_SLOPE * p, 0.0, 1.0)
        if self.method == "sigmoid":
            z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))
            return 1.0 / (1.0 + np.exp(-(self.a_ * z + self.b_)))
        return p

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"method": self.method}
        if self.method == "isotonic":
            d |= {"x": self.x_.tolist(), "y": self.y_.tolist()}
        elif self.method == "sigmoid":
            d |= {"a": self.a_, "b": self.b_}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        obj = cls(d["method"])
        if obj.method == "isotonic":
            obj.x_, obj.y_ = np.asarray(d["x"]), np.asarray(d["y"])
        elif obj.method == "sigmoid":
            obj.a_, obj.b_ = float(d["a"]), float(d["b"])
        return obj


@dataclass
class FitResult:
    booster: lgb.Booster
    best_iteration: int
    valid_score: float


@dataclass
class LgbData:
    """Binned LightGBM datasets, built once and shared by every trial of a study.

    Binning 200k rows × 100 features costs about a second; a study of 30 trials would
    otherwise pay it 30 times. ``feature_pre_filter`` is off so that trials may change
    ``min_child_samples`` on the same bins.
    """

    train: lgb.Dataset
    valid: lgb.Dataset

    @classmethod
    def build(
        cls,
        X_train: pd.DataFrame,
        y_train: np.ndarray,
        X_valid: pd.DataFrame,
        y_valid: np.ndarray,
        *,
        weight: np.ndarray | None = None,
        max_bin: int = 255,
    ) -> LgbData:
        params = {"feature_pre_filter": False, "max_bin": max_bin, "verbosity": -1}
        dtrain = lgb.Dataset(
            X_train, label=y_train, weight=weight, free_raw_data=False, params=params
        )
        dvalid = lgb.Dataset(
            X_valid, label=y_valid, reference=dtrain, free_raw_data=False, params=params
        )
        dtrain.construct()
        dvalid.construct()
        return cls(dtrain, dvalid)


def fit_lightgbm(
    params: dict[str, Any],
    X_train: pd.DataFrame | None,
    y_train: np.ndarray | None,
    X_valid: pd.DataFrame | None,
    y_valid: np.ndarray | None,
    *,
    n_jobs: int = 2,
    seed: int = 42,
    report: Callable[[int, float], None] | None = None,
    weight: np.ndarray | None = None,
    data: LgbData | None = None,
    early_stopping: int = 50,
    max_rounds: int | None = None,
) -> FitResult:
    """Train a binary LightGBM with early stopping on the validation set.

    ``report(iteration, valid_auc)`` is called every 10 rounds (tuning uses it to prune; it
    may raise to stop the fit). ``data`` reuses datasets binned once (tuning); otherwise
    they are built from the frames. ``max_rounds`` caps ``n_estimators`` (tuning budgets).
    """
    p: dict[str, Any] = {
        "objective": "binary",
        "metric": "auc",
        "verbosity": -1,
        "num_threads": n_jobs,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 50,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "feature_pre_filter": False,
    }
    p.update(params)
    rounds = int(p.pop("n_estimators", 1000))
    if max_rounds is not None:
        rounds = min(rounds, max_rounds)
    if data is None:
        if X_train is None or y_train is None or X_valid is None or y_valid is None:
            raise ValueError("fit_lightgbm needs the frames or prepared LgbData")
        data = LgbData.build(X_train, y_train, X_valid, y_valid, weight=weight)
    callbacks: list[Any] = [lgb.early_stopping(early_stopping, verbose=False)]
    if report is not None:

        def _cb(env: lgb.callback.CallbackEnv) -> None:
            if env.iteration % 10 == 9 and env.evaluation_result_list:
                report(env.iteration + 1, float(env.evaluation_result_list[0][2]))

        callbacks.append(_cb)
    booster = lgb.train(
        p, data.train, num_boost_round=rounds, valid_sets=[data.valid], callbacks=callbacks
    )
    best = booster.best_iteration or booster.current_iteration()
    score = float(booster.best_score["valid_0"]["auc"]) if booster.best_score else float("nan")
    return FitResult(booster, best, score)


def reason_codes(
    booster: lgb.Booster, X: pd.DataFrame, k: int, names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` features pushing each prediction up (LightGBM ``pred_contrib``).

    Returns (names (n, k), contributions (n, k)) in log-odds; empty names where fewer than
    ``k`` features push up.
    """
    from training.explain import shap_contributions

    contrib = shap_contributions(booster, X, threads=0)  # 0: OpenMP default, as before
    cols = np.asarray(list(names or X.columns), dtype=object)
    k = min(k, contrib.shape[1])
    top = np.argsort(-contrib, axis=1)[:, :k]
    vals = np.take_along_axis(contrib, top, axis=1)
    out = np.where(vals > 0, cols[top], "")
    return out, vals
