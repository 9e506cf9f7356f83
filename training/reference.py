"""The training reference of a model version: a sample of its features and predictions.

Monitoring compares served traffic with what the model saw when it was trained, so every
registered version keeps a seeded sample of its (test-split) feature rows and the model's
predictions on them as the MLflow artifact ``reference/reference.parquet`` of its run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from wattwise.errors import DataError, WattwiseError

REFERENCE_ARTIFACT = "reference/reference.parquet"
PREDICTION_COLUMN = "prediction"


def build_reference(X: pd.DataFrame, predictions: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``n`` rows of ``X`` with a ``prediction`` column."""
    preds = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if len(preds) != len(X):
        raise DataError(f"reference: {len(X)} feature rows but {len(preds)} predictions")
    if PREDICTION_COLUMN in X.columns:
        raise DataError(f"reference: features must not have a column named {PREDICTION_COLUMN!r}")
    if n <= 0:
        raise DataError(f"reference: n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(X), size=min(n, len(X)), replace=False))
    ref = X.iloc[take].reset_index(drop=True).copy()
    ref[PREDICTION_COLUMN] = preds[take]
    return ref


def log_reference(reference: pd.DataFrame) -> None:
    """Log ``reference`` to the active MLflow run as ``reference/reference.parquet``."""
    import mlflow

    if mlflow.active_run() is None:
        raise WattwiseError("log_reference needs an active MLflow run (inside mlflow.start_run)")
    if PREDICTION_COLUMN not in reference.columns:
        raise DataError("reference has no 'prediction' column: build it with build_reference")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        reference.to_parquet(p, index=False)
        mlflow.log_artifact(str(p), str(Path(REFERENCE_ARTIFACT).parent))


def load_reference(model_name: str, version: str) -> pd.DataFrame:
    """The reference logged with ``model_name`` v``version`` (MLflow must be set up)."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        run_id = client.get_model_version(model_name, str(version)).run_id
    except Exception as exc:  # MLflow raises RestException for an unknown name/version
        raise WattwiseError(f"model {model_name} v{version} is not registered") from exc
    if not run_id:
        raise WattwiseError(f"model {model_name} v{version} has no training run")
    with tempfile.TemporaryDirectory() as d:
        try:
            p = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=d
            )
        except Exception as exc:
            raise WattwiseError(
                f"{model_name} v{version} has no training reference ({REFERENCE_ARTIFACT}); "
                "train it again with a pipeline that logs one"
            ) from exc
        return pd.read_parquet(p)
