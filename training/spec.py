"""The small interface that is all a model kind adds to the one training pipeline.

:func:`training.pipeline.train` owns everything that is the same for every model: the
training set from the feature store, the split, the preprocessor, the fingerprint, the Optuna
study with nested MLflow runs, logging, the pyfunc with signature/input example/explicit
requirements, registration, @challenger and the promotion gate. A spec says only what
differs: which labels, how one trial and the final model are fitted (both through the same
function), how the model is evaluated (including against the synthetic truth) and what the
registered pyfunc holds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from training.config import ModelConfig
    from training.data import Split
    from training.estimators import FramePreprocessor
    from training.tuning import FitFn


@dataclass
class Prepared:
    """The training set as every step sees it (built once by the pipeline)."""

    dataset_dir: Path
    df: pd.DataFrame  # rows with a label, every column (ids, time, features, labels)
    X: pd.DataFrame  # preprocessed features of every row
    feats: list[str]  # model inputs (raw feature names)
    split: Split
    pre: FramePreprocessor
    fingerprint: str
    labels: list[str]  # label columns (never features)
    weight: np.ndarray | None = None  # per-row training weight (config season_weight_months)


@dataclass
class Evaluation:
    """What evaluation found on the test rows."""

    headline: dict[str, float]  # the metrics the gate and the alias history use
    logged: dict[str, float]  # every metric, logged to MLflow with a ``test_`` prefix
    details: dict[str, Any] = field(default_factory=dict)  # for render() and callers


@dataclass
class Package:
    """What the pipeline logs and registers for a fitted model."""

    python_model: Any  # an mlflow PythonModel instance
    artifacts: dict[str, str]  # name -> local path, passed to log_model
    example: pd.DataFrame  # input example (raw features)
    example_output: pd.DataFrame
    test_set: pd.DataFrame  # logged as eval/test_set.parquet for the promotion gate
    predict: Callable[[pd.DataFrame], np.ndarray]  # raw features -> one score (monitoring)
    files: dict[Path, str] = field(default_factory=dict)  # local file -> artifact folder
    tags: dict[str, str] = field(default_factory=dict)  # model-version tags


class ModelSpec(Protocol):
    """A model kind: churn (binary), propensity (per program + uplift), ..."""

    labels: str  # which labels table (features.labels) the training set joins

    def label_columns(self, df: pd.DataFrame, cfg: ModelConfig) -> list[str]: ...

    def split_target(self, df: pd.DataFrame, cfg: ModelConfig) -> np.ndarray:
        """The label the split balances and checks (one value per row)."""
        ...

    def objective(self, prep: Prepared, cfg: ModelConfig) -> FitFn:
        """``fit(params, report) -> validation score`` for Optuna (calls the same fit)."""
        ...

    def fit(self, prep: Prepared, cfg: ModelConfig, params: dict[str, Any]) -> Any: ...

    def evaluate(self, prep: Prepared, cfg: ModelConfig, fitted: Any) -> Evaluation: ...

    def package(
        self, prep: Prepared, cfg: ModelConfig, fitted: Any, ev: Evaluation, tmp: Path
    ) -> Package: ...

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        """Metrics of a loaded pyfunc on a logged test set (for the promotion gate)."""
        ...

    def render(self, ev: Evaluation) -> list[str]: ...


# spec name (ModelConfig.spec) -> "module:Class"; imported on first use
SPECS: dict[str, str] = {
    "churn": "training.binary:BinarySpec",
    "propensity": "training.propensity:PropensitySpec",
    "dr_response": "training.dr.spec:DRResponseSpec",  # trains via `wattwise dr train`
}


def get_spec(name: str) -> ModelSpec:
    """The spec object of a model kind."""
    from wattwise.errors import ConfigError

    if name not in SPECS:
        raise ConfigError(f"unknown model spec {name!r} (known: {', '.join(sorted(SPECS))})")
    module, cls = SPECS[name].split(":")
    spec: ModelSpec = getattr(importlib.import_module(module), cls)()
    return spec
