"""The small interface that is all a model kind adds to the one training pipeline.

:func:`training.pipeline.train` owns everything that is the same for every model: the study
name, the Optuna study with nested MLflow runs, parameters and metrics, the pyfunc with
signature, input example and explicit requirements, the monitoring reference, registration,
@challenger and the promotion gate. A spec says only what differs: how its training data is
read and split, how one trial and the final model are fitted (both through the same
function), how the model is evaluated (including against the synthetic truth) and what the
registered pyfunc holds.
"""

from __future__ import annotations

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
    from training.kinds.base import Kind
    from training.tuning import FitFn


@dataclass(kw_only=True)
class Prepared:
    """The training data as every step sees it (built once by the spec's ``prepare``)."""

    dataset_dir: Path
    fingerprint: str  # content hash of the training data: keys the Optuna study
    params: dict[str, Any] = field(default_factory=dict)  # logged with the run


@dataclass(kw_only=True)
class TabularPrepared(Prepared):
    """A labels table joined point-in-time with a FeatureService, split and preprocessed."""

    df: pd.DataFrame  # rows with a label, every column (ids, time, features, labels)
    X: pd.DataFrame  # preprocessed features of every row
    feats: list[str]  # model inputs (raw feature names)
    split: Split
    pre: FramePreprocessor
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
    example: pd.DataFrame  # input example (raw inputs)
    example_output: pd.DataFrame
    test_set: pd.DataFrame  # logged as eval/test_set.parquet for the promotion gate
    # inputs -> one score per row, with the feature rows it is monitored on (None: the kind
    # has no monitoring reference)
    predict: Callable[[pd.DataFrame], np.ndarray] | None = None
    reference: pd.DataFrame | None = None
    files: dict[Path, str] = field(default_factory=dict)  # local file -> artifact folder
    tags: dict[str, str] = field(default_factory=dict)  # model-version tags
    signature: Any = None  # None: inferred from the example and its output
    params: dict[str, Any] | None = None  # pyfunc parameters (in the inferred signature)
    requirements: list[str] | None = None  # None: training.tracking.PIP_REQUIREMENTS


class ModelSpec(Protocol):
    """How one kind trains: data, split, fit, evaluation and the pyfunc it registers."""

    def load(self, dataset_dir: Path, cfg: ModelConfig, kind: Kind) -> Any:
        """The kind's training data from a dataset (a point-in-time training set, settled
        events, the sub-metered panel, ...)."""
        ...

    def prepare(self, data: Any, cfg: ModelConfig, dataset_dir: Path) -> Prepared:
        """Split (and preprocess) the training data; fingerprint it."""
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
