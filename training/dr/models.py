"""LightGBM regressors for DR: the training function, the uplift meta-learners, the pyfunc.

``fit_regressor`` is the one training function (tuning trials and the final fit call it).
Uplift (expected reduction if called, per customer and event): called and control customers
are randomized, so

- **T-learner**: mu1 on called rows, mu0 on control rows of the outcome (baseline - metered,
  kW); uplift = mu1 - mu0 (the baseline's own error cancels out);
- **DR-learner** (doubly robust, Kennedy 2020): cross-fitted mu0, mu1 and the known share
  e of called customers give the pseudo-outcome
  ``mu1 - mu0 + T (Y - mu1) / e - (1 - T) (Y - mu0) / (1 - e)``, regressed on the features.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.estimators import FramePreprocessor

try:
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[misc,assignment]


@dataclass
class RegFit:
    booster: lgb.Booster
    best_iteration: int
    valid_rmse: float


def fit_regressor(
    params: dict[str, Any],
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame | None = None,
    y_valid: np.ndarray | None = None,
    *,
    n_jobs: int = 1,
    seed: int = 42,
    report: Callable[[int, float], None] | None = None,
) -> RegFit:
    """L2 LightGBM regression, early-stopped on the validation RMSE when one is given."""
    p: dict[str, Any] = {
        "objective": "huber",
        "alpha": 1.5,
        "metric": "rmse",
        "verbosity": -1,
        "num_threads": n_jobs,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 30,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
    }
    p.update(params)
    rounds = int(p.pop("n_estimators", 400))
    dtrain = lgb.Dataset(X_train, label=y_train, free_raw_data=False)
    if X_valid is None or y_valid is None or len(y_valid) == 0:
        booster = lgb.train(p, dtrain, num_boost_round=min(rounds, 200))
        return RegFit(booster, booster.current_iteration(), float("nan"))
    dvalid = lgb.Dataset(X_valid, label=y_valid, reference=dtrain, free_raw_data=False)
    callbacks: list[Any] = [lgb.early_stopping(50, verbose=False)]
    if report is not None:

        def _cb(env: lgb.callback.CallbackEnv) -> None:
            if env.iteration % 10 == 9 and env.evaluation_result_list:
                report(env.iteration + 1, float(env.evaluation_result_list[0][2]))

        callbacks.append(_cb)
    booster = lgb.train(p, dtrain, num_boost_round=rounds, valid_sets=[dvalid], callbacks=callbacks)
    best = booster.best_iteration or booster.current_iteration()
    pred = booster.predict(X_valid, num_iteration=best)
    return RegFit(booster, best, float(np.sqrt(np.mean((pred - y_valid) ** 2))))


def t_learner(
    params: dict[str, Any], X: pd.DataFrame, y: np.ndarray, t: np.ndarray, n_jobs: int = 1
) -> tuple[lgb.Booster, lgb.Booster]:
    """mu1 (called) and mu0 (control) regressors."""
    m1 = fit_regressor(params, X[t], y[t], n_jobs=n_jobs).booster
    m0 = fit_regressor({**params, "min_child_samples": 10}, X[~t], y[~t], n_jobs=n_jobs).booster
    return m1, m0


def dr_learner(
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    t: np.ndarray,
    groups: np.ndarray,
    n_jobs: int = 1,
    folds: int = 3,
) -> lgb.Booster:
    """Cross-fitted doubly-robust pseudo-outcomes (folds by event), regressed on X."""
    e = float(t.mean())
    mu0, mu1 = np.zeros(len(y)), np.zeros(len(y))
    uniq = np.unique(groups)
    fold_of = {g: i % folds for i, g in enumerate(uniq)}
    f = (
        pd.Series(groups).map(fold_of).to_numpy()
        if len(uniq) >= folds
        else np.arange(len(y)) % folds
    )
    for k in range(folds):
        tr, te = f != k, f == k
        m1, m0 = t_learner(params, X[tr], y[tr], t[tr], n_jobs)
        mu1[te], mu0[te] = m1.predict(X[te]), m0.predict(X[te])
    phi = mu1 - mu0 + t * (y - mu1) / e - (~t) * (y - mu0) / (1 - e)
    return fit_regressor(params, X, phi, n_jobs=n_jobs).booster


def save_bundle(
    path: Path, booster: lgb.Booster, pre: FramePreprocessor, meta: dict[str, Any]
) -> Path:
    """A response-model bundle: booster text, preprocessor, residual spread and metadata."""
    path.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path / "booster.txt"))
    (path / "meta.json").write_text(
        json.dumps({"preprocessor": pre.to_dict(), **meta}, default=float)
    )
    return path


class ResponseBundle:
    """Loaded bundle: features in, expected kW reduction and its spread out."""

    def __init__(self, path: Path) -> None:
        self.meta = json.loads((path / "meta.json").read_text())
        self.booster = lgb.Booster(model_file=str(path / "booster.txt"))
        self.pre = FramePreprocessor.from_dict(self.meta["preprocessor"])

    @property
    def features(self) -> list[str]:
        return list(self.pre.columns_)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        mu = np.asarray(self.booster.predict(self.pre.transform(X)), float)
        sd = np.full(len(mu), float(self.meta["residual_sd_kw"]))
        return pd.DataFrame({"expected_kw": mu, "sd_kw": sd}, index=X.index)


class DRResponseModel(PythonModel):  # type: ignore[misc,valid-type]
    """pyfunc: features + event context in -> expected_kw, sd_kw out."""

    def load_context(self, context: Any) -> None:
        self.bundle = ResponseBundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.bundle.predict(model_input)
